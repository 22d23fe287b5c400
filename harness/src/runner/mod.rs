//! The one step runner, for every backend: bring the runbook's lab up (or take one that is up), start the
//! probes, then per step type the operator's commands (or perform the harness action), poll the step's
//! expectations until they hold, attribute probe loss to the step, and report. A failing step's dump is
//! taken while the lab is still up. The lab is removed at the end, on failure, on panic and on Ctrl-C
//! (kept with `keep`, or when a step failed and `keep_on_failure` / `RRLAB_KEEP_ON_FAILURE=1`).

pub mod probe;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::backend::observe::SeamView;
use crate::backend::{self, Backend, BackendError, BackendKind, NodeAction, UpOptions};
use crate::report::{self, StepReport};
use crate::runbook::check;
use crate::runbook::lab::StepOutcome;
use crate::runbook::model::{Runbook, StepAction, WanAction};
use crate::runtime::RuntimeKind;
use crate::wan;

/// Set by the CLI's Ctrl-C handler: the runner stops at the next poll and tears the lab down.
pub use crate::lab::converge::INTERRUPTED;

/// `RRLAB_KEEP_ON_FAILURE=1`: a lab whose run failed stays up for inspection.
pub const KEEP_ON_FAILURE_ENV: &str = "RRLAB_KEEP_ON_FAILURE";

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub backend: BackendKind,
    /// The twin's runtime (None: docker where a Docker daemon answers, else netns).
    pub runtime: Option<RuntimeKind>,
    /// Keep the lab after the run (for inspection).
    pub keep: bool,
    /// Keep the lab when a step failed.
    pub keep_on_failure: bool,
    /// kind: the lab is already up.
    pub reuse: bool,
    pub up_timeout: Duration,
    /// Run on this topology instead of the runbook's (an imported cluster, `rrlab run --topology`).
    pub topology: Option<std::path::PathBuf>,
    /// twin, docker runtime: the nodes serve SSH (`rrlab up --ssh`), for `rrlab check --ssh` on a kept lab.
    pub ssh: bool,
}

impl RunOptions {
    /// `twin, netns`, `twin` (runtime chosen at up), `kind`.
    pub fn on(&self) -> String {
        match (self.backend, self.runtime) {
            (BackendKind::Twin, Some(r)) => format!("twin, {r}"),
            (k, _) => k.to_string(),
        }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            backend: BackendKind::Twin,
            runtime: None,
            keep: false,
            keep_on_failure: std::env::var(KEEP_ON_FAILURE_ENV).is_ok_and(|v| v == "1"),
            reuse: false,
            up_timeout: Duration::from_secs(180),
            topology: None,
            ssh: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunResult {
    pub runbook: String,
    /// The runbook's file.
    pub file: std::path::PathBuf,
    pub lab: String,
    /// `twin, netns`, `kind`, …
    pub on: String,
    pub topology: crate::model::topology::Topology,
    /// The nodes as the lab came up (names, sites, addresses, pods).
    pub nodes: Vec<crate::runbook::lab::NodeInfo>,
    pub steps: Vec<StepReport>,
    pub up: Duration,
    /// Every probe over the whole run (the backends that record packet by packet).
    pub timelines: std::collections::BTreeMap<String, probe::ProbeTimeline>,
    /// What the teardown did: removed items, or why it failed; None when the lab was kept.
    pub teardown: Option<Result<Vec<String>, String>>,
}

impl RunResult {
    /// Every step is fine (passed, or a seeded fault that failed as intended) and the teardown (if any)
    /// succeeded.
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.verdict().ok()) && !matches!(self.teardown, Some(Err(_)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Runbook(String),
    #[error("bringing the lab up: {0}")]
    Up(BackendError),
    #[error("{0}")]
    Backend(#[from] BackendError),
    #[error("interrupted (Ctrl-C) at step {step}; the lab was removed")]
    Interrupted { step: usize },
}

/// The lab a run is on, when it is up.
pub struct LabUp<'a> {
    pub runbook: &'a Runbook,
    pub lab: &'a str,
    /// `twin, netns`, `kind`, …
    pub on: &'a str,
    pub topology: &'a crate::model::topology::Topology,
    pub nodes: &'a [crate::runbook::lab::NodeInfo],
    pub took: Duration,
}

/// What the runner reports as it goes (cargo-nextest's split: the runner emits, reporters consume). Every
/// method has a default, so a reporter implements the events it uses.
pub trait Events {
    /// Work in progress (a spinner's message).
    fn progress(&self, _message: &str) {}
    fn lab_up(&self, _lab: &LabUp<'_>) {}
    /// Step `index` (0-based) starts.
    fn step_started(&self, _index: usize, _step: &crate::runbook::model::Step) {}
    fn step_finished(&self, _report: &StepReport) {}
    /// The run is over (the lab removed or kept).
    fn run_finished(&self, _result: &RunResult) {}
    /// The run could not start or stopped outside a step (invalid runbook, lab not up, Ctrl-C).
    fn run_failed(&self, _runbook: &Path, _on: &str, _error: &str) {}
    /// This reporter draws each step's sessions and routes: the runner reads every node after each step.
    fn wants_snapshots(&self) -> bool {
        false
    }
}

/// Several reporters as one: each event goes to all, in order.
pub struct Fanout<'a>(pub Vec<&'a dyn Events>);

impl Events for Fanout<'_> {
    fn progress(&self, m: &str) {
        self.0.iter().for_each(|e| e.progress(m))
    }
    fn lab_up(&self, l: &LabUp<'_>) {
        self.0.iter().for_each(|e| e.lab_up(l))
    }
    fn step_started(&self, i: usize, s: &crate::runbook::model::Step) {
        self.0.iter().for_each(|e| e.step_started(i, s))
    }
    fn step_finished(&self, r: &StepReport) {
        self.0.iter().for_each(|e| e.step_finished(r))
    }
    fn run_finished(&self, r: &RunResult) {
        self.0.iter().for_each(|e| e.run_finished(r))
    }
    fn run_failed(&self, p: &Path, on: &str, error: &str) {
        self.0.iter().for_each(|e| e.run_failed(p, on, error))
    }
    fn wants_snapshots(&self) -> bool {
        self.0.iter().any(|e| e.wants_snapshots())
    }
}

/// Closures as [`Events`].
pub struct Callbacks<'a> {
    pub on_step: &'a dyn Fn(&StepReport),
    pub progress: &'a dyn Fn(&str),
}

impl Events for Callbacks<'_> {
    fn progress(&self, m: &str) {
        (self.progress)(m)
    }
    fn step_finished(&self, r: &StepReport) {
        (self.on_step)(r)
    }
}

/// Load a runbook, bring its lab up on the chosen backend, run it, tear the lab down.
pub fn run(path: &Path, opts: &RunOptions, events: &dyn Events) -> Result<RunResult, RunError> {
    let r = run_inner(path, opts, events);
    if let Err(e) = &r {
        events.run_failed(path, &opts.on(), &e.to_string());
    }
    r
}

fn run_inner(path: &Path, opts: &RunOptions, events: &dyn Events) -> Result<RunResult, RunError> {
    let rb: Runbook =
        crate::runbook::load_on(path, opts.topology.as_deref()).map_err(|e| RunError::Runbook(e.to_string()))?;
    let t0 = Instant::now();
    let up = UpOptions {
        runtime: opts.runtime,
        timeout: opts.up_timeout,
        reuse: opts.reuse,
        ssh: opts.ssh,
        ..Default::default()
    };
    let lab = backend::up(opts.backend, &rb.topology, &up, &|m| events.progress(m)).map_err(RunError::Up)?;
    run_on(lab, &rb, opts, t0.elapsed(), events, &INTERRUPTED)
}

/// Tears the lab down when dropped (a panic, an early return), unless kept.
struct Guard {
    lab: Option<Box<dyn Backend>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut b) = self.lab.take() {
            let _ = b.teardown();
        }
    }
}

impl Guard {
    fn get(&mut self) -> &mut dyn Backend {
        self.lab.as_deref_mut().expect("the lab is held until the end of the run")
    }
}

/// Run a runbook on a lab that is up; the lab is torn down at the end (see [`RunOptions`]).
pub fn run_on(
    lab: Box<dyn Backend>,
    rb: &Runbook,
    opts: &RunOptions,
    up_time: Duration,
    events: &dyn Events,
    cancel: &'static AtomicBool,
) -> Result<RunResult, RunError> {
    let mut guard = Guard { lab: Some(lab) };
    let lab_name = guard.get().lab().to_string();
    let on = RunOptions { backend: guard.get().kind(), ..opts.clone() }.on();
    let topology = guard.get().topology().clone();
    let nodes = guard.get().nodes();
    events.lab_up(&LabUp { runbook: rb, lab: &lab_name, on: &on, topology: &topology, nodes: &nodes, took: up_time });
    let snapshots = events.wants_snapshots();
    // The topology's declared link impairments hold from the first step on.
    for line in crate::wan::apply_declared(guard.get())? {
        events.progress(&format!("WAN {line}"));
    }
    guard.get().start_probes(&rb.probes)?;
    let scale = guard.get().timeout_scale();
    let has_wan = crate::wan::wan_node(guard.get().topology()).is_some();
    // Route changes stamped on the nodes, for each step's `routes settled` time.
    let monitor = guard.get().route_monitor();
    let mut reports: Vec<StepReport> = Vec::new();
    for (i, step) in rb.steps.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(RunError::Interrupted { step: i + 1 });
        }
        events.step_started(i, step);
        events.progress(&format!("step {}: {}", i + 1, step.name));
        let b = guard.get();
        let (st, st_wall) = (Instant::now(), std::time::SystemTime::now());
        let started_ms = probe::now_ms();
        b.mark_probes();
        let baseline = StepOutcome::baseline(&step.expect, &SeamView::new(b));
        let wan_before = if has_wan { crate::wan::counters(b).ok() } else { None };
        let mut commands = Vec::new();
        let mut action_error = None;
        match &step.what {
            StepAction::Run { script, .. } => {
                let cluster = step.cluster_in(b.topology());
                match b.run_commands(&cluster, &format!("{} step {}", rb.name, i + 1), script) {
                    Ok(o) => commands = o,
                    Err(e) => action_error = Some(e.to_string()),
                }
            }
            a => {
                if let Err(e) = act(b, a) {
                    action_error = Some(e.to_string());
                }
            }
        }
        let b: &dyn Backend = guard.get();
        let view = SeamView::new(b);
        let outcome = |last: bool| {
            let mut o = baseline.clone();
            o.commands = commands.clone();
            o.probes = if last { b.probe_stats_final() } else { b.probe_stats() };
            o
        };
        let mut wo = check::WaitOptions::for_step(step, &rb.defaults);
        wo.timeout = wo.timeout.mul_f64(scale);
        wo.since = Some(st);
        wo.cancel = Some(cancel);
        let wr = check::wait_all_with(&step.expect, &view, &outcome, &wo);
        if cancel.load(Ordering::Relaxed) {
            return Err(RunError::Interrupted { step: i + 1 });
        }
        let mut extra = Vec::new();
        if let Some(e) = action_error {
            extra.push(check::Mismatch { expectation: step.what.describe(), line: step.line, diff: e });
        }
        // Only the commands matter here (reading the probes again would cost kind a probe cycle).
        let ran = StepOutcome { commands: commands.clone(), ..Default::default() };
        extra.extend(check::unexpected_command_failures(step, &ran));
        let mut r = StepReport::new(rb, i, &wr, extra, st.elapsed());
        r.started_ms = started_ms;
        r.commands = commands;
        // The nodes as they are after the step (labels change), read once, when first needed (the snapshot, the
        // WAN sessions).
        let nodes_now = std::cell::OnceCell::new();
        let nodes_now = || nodes_now.get_or_init(|| b.nodes());
        if snapshots {
            let is_rr = |n: &str| {
                b.read_file(n, &format!("{}/bird.cfg", crate::backend::observe::CONFD_DIR))
                    .is_ok_and(|c| report::snapshot::config_reflects(&c))
            };
            r.snapshot = Some(report::snapshot::take(&view, nodes_now(), &is_rr));
        }
        r.routes_settled = monitor.as_ref().and_then(|m| m.latest()).and_then(|t| t.duration_since(st_wall).ok());
        if let (Some(before), Ok(after)) = (&wan_before, crate::wan::counters(b)) {
            let (sessions, _) = check::wan_sessions(&view, nodes_now());
            r.wan = Some(report::WanStep::between(before, &after, sessions.len()));
        }
        if !r.passed {
            let mut d = report::dump(&view);
            d.push_str(&b.failure_dump());
            r.dump = Some(d);
        }
        events.step_finished(&r);
        reports.push(r);
    }
    let failed = reports.iter().any(|r| !r.passed);
    let timelines = guard.get().probe_timelines();
    let teardown = if opts.keep || (failed && opts.keep_on_failure) {
        guard.lab = None;
        None
    } else {
        let mut b = guard.lab.take().expect("the lab is held until the end of the run");
        Some(b.teardown().map_err(|e| e.to_string()))
    };
    let result = RunResult {
        runbook: rb.name.clone(),
        file: rb.file.clone(),
        lab: lab_name,
        on,
        topology,
        nodes,
        steps: reports,
        up: up_time,
        timelines,
        teardown,
    };
    events.run_finished(&result);
    Ok(result)
}

/// Perform a harness action.
pub fn act(b: &mut dyn Backend, a: &StepAction) -> Result<(), BackendError> {
    match a {
        StepAction::Wan(w) => {
            let topo = b.topology();
            let site = |s: &str| topo.site_cidr(s).map_err(BackendError::Usage);
            let action = match w {
                WanAction::Partition { from, to, one_way } => {
                    wan::Action::Partition { from: site(from)?, to: site(to)?, both: !one_way }
                }
                WanAction::Heal => wan::Action::Heal,
                WanAction::Loss { percent } => wan::Action::Loss { percent: *percent },
                WanAction::Delay { ms } => wan::Action::Delay { ms: *ms },
                WanAction::Rate { kbit } => wan::Action::Rate { kbit: *kbit },
                WanAction::Impair { imp } => wan::Action::Impair { imp: imp.clone() },
                WanAction::ImpairToward { site, imp } => {
                    wan::Action::ImpairLink { iface: wan::iface_toward(topo, site)?, imp: imp.clone() }
                }
                WanAction::Flap { from, to, down, up, times } => {
                    wan::Action::Flap { from: site(from)?, to: site(to)?, down: *down, up: *up, times: *times }
                }
            };
            wan::act(b, &action)
        }
        StepAction::StopBird(n) => b.node_action(n, NodeAction::StopBird),
        StepAction::StartBird(n) => b.node_action(n, NodeAction::StartBird),
        StepAction::StopNode(n) => b.node_action(n, NodeAction::StopNode),
        StepAction::StartNode(n) => b.node_action(n, NodeAction::StartNode),
        StepAction::RestartCalicoNode(n) => b.node_action(n, NodeAction::RestartCalicoNode),
        StepAction::FreezeNode(n) => b.node_action(n, NodeAction::FreezeNode),
        StepAction::ThawNode(n) => b.node_action(n, NodeAction::ThawNode),
        StepAction::LinkDown { node, iface } => b.set_link(node, iface, false),
        StepAction::LinkUp { node, iface } => b.set_link(node, iface, true),
        StepAction::Wait(d) => {
            std::thread::sleep(*d);
            Ok(())
        }
        StepAction::Run { .. } | StepAction::None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
