//! `rrlab check <runbook> [--step N]`: one step's expectations against a live cluster, with the rehearsal's
//! diffs and reporters. Read-only unless `--apply` (then the step's `run:` script is typed first, with
//! `bash -e` on this host, and the step is judged as a rehearsal judges it, `converge` and `fails` included).
//!
//! What a read-only check cannot judge is listed as not checked, with the reason ([`plan`]), and counts
//! neither as passed nor as failed: the exit status is non-zero only when an expectation that was checked
//! failed (or the step's typed commands failed).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::backend::observe::SeamView;
use crate::backend::Backend;
use crate::report::{self, StepReport};
use crate::runbook::check::{reads, unexpected_command_failures, wait_all_with, Mismatch, WaitOptions};
use crate::runbook::lab::{resolve_nodes, LabView, NodeInfo, Obs, ObsResult, Observed, PodInfo, StepOutcome};
use crate::runbook::model::{
    CounterCheck, Expectation, IptablesExpect, PrefixRef, Runbook, Step, StepAction, WanExpect,
};
use crate::runner::{Events, LabUp, RunResult, INTERRUPTED};

use super::kubectl::{parse_contexts, KubectlAccess, KubectlTransport};
use super::ssh::SshTransport;
use super::{process_runner, ApplyOptions, Inventory, Labels, RemoteBackend, RemoteError, Runner, Transport};

/// How long a read-only check gives the expectations to hold (a state still converging gets a moment).
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why `reach` is not checked.
pub const REACH_NOT_CHECKED: &str =
    "pings between rrlab's probe pods: a live cluster has none, and rrlab check starts nothing";
/// Why `loss` is not checked.
pub const LOSS_NOT_CHECKED: &str =
    "loss is measured on rrlab's own probe traffic during a rehearsal; rrlab check sends none";
/// Why the WAN counters are not checked.
pub const WAN_NOT_CHECKED: &str = "counted on rrlab's WAN emulator, which a live cluster does not have";
/// Why what the step's commands did is not checked without `--apply`.
pub const NOT_TYPED: &str = "the step's commands were not typed (use --apply)";

/// `rrlab check`'s command line.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CheckArgs {
    /// The runbook; its topology names the nodes, their addresses, sites and clusters.
    pub runbook: PathBuf,
    /// The step whose expectations are checked (1-based; default: the last step that has expectations).
    #[arg(long)]
    pub step: Option<usize>,
    /// Reach the nodes over SSH as this inventory says (YAML: hosts, user, identity, known_hosts, how
    /// calico-node runs).
    #[arg(long, value_name = "INVENTORY", conflicts_with = "kubectl", required_unless_present = "kubectl")]
    pub ssh: Option<PathBuf>,
    /// Reach calico-node with `kubectl exec` into its pod.
    #[arg(long)]
    pub kubectl: bool,
    /// kubectl's kubeconfig (also KUBECONFIG for --apply); with --ssh, giving it (or --context, --kubectl-bin)
    /// reads the nodes' labels live.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// kubectl's context: CONTEXT for every cluster, or CLUSTER=CONTEXT per topology cluster (repeatable).
    #[arg(long)]
    pub context: Vec<String>,
    /// calico-node's namespace.
    #[arg(long, default_value = "kube-system")]
    pub namespace: String,
    /// The kubectl program words, e.g. "microk8s kubectl".
    #[arg(long, value_name = "WORDS")]
    pub kubectl_bin: Option<String>,
    /// The calicoctl program words for --apply, e.g. "kubectl calico".
    #[arg(long, value_name = "WORDS")]
    pub calicoctl_bin: Option<String>,
    /// Type the step's commands first (its `run:` script, `bash -e` on this host), then judge the step.
    #[arg(long)]
    pub apply: bool,
    /// How long the expectations may take to hold (default 10s; with --apply the step's own timeout).
    #[arg(long, value_parser = crate::runbook::parse_duration)]
    pub timeout: Option<Duration>,
    /// Write JUnit XML here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the HTML report here (it reads every reachable node's sessions and routes after the step).
    #[arg(long)]
    pub html: Option<PathBuf>,
}

/// What the check does beyond reading.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// 1-based.
    pub step: Option<usize>,
    pub apply: bool,
    pub timeout: Option<Duration>,
}

/// A check's outcome: the run as the reporters saw it.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub run: RunResult,
    /// Every checked expectation held (a seeded fault's step: failed as intended).
    pub passed: bool,
}

/// Which of a step's expectations are checked, and why the others are not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// As written, or with the parts that cannot be judged removed.
    pub checked: Vec<Expectation>,
    /// Each not-checked expectation (or part of one): `diff` is the reason.
    pub not_checked: Vec<Mismatch>,
}

/// Split a step's expectations: `typed` is whether its commands were typed (`--apply` on a `run:` step).
pub fn plan(step: &Step, typed: bool) -> Plan {
    let mut p = Plan::default();
    for e in &step.expect {
        let skip = |what: String, reason: &str| Mismatch { expectation: what, line: e.line(), diff: reason.into() };
        match e {
            Expectation::Reach(_) => p.not_checked.push(skip(e.describe(), REACH_NOT_CHECKED)),
            Expectation::Loss(_) => p.not_checked.push(skip(e.describe(), LOSS_NOT_CHECKED)),
            Expectation::Converge(_) if !typed => p.not_checked.push(skip(
                e.describe(),
                "the time to converge after the step's commands; they were not typed (use --apply)",
            )),
            Expectation::Fails(_) if !typed => p.not_checked.push(skip(e.describe(), NOT_TYPED)),
            Expectation::Iptables(x) if !typed => {
                let relative = |c: &Option<CounterCheck>| {
                    matches!(c, Some(CounterCheck::Increases) | Some(CounterCheck::Unchanged))
                };
                let mut kept = IptablesExpect { ..x.clone() };
                let mut parts = Vec::new();
                for (name, c, k) in [("packets", &x.packets, &mut kept.packets), ("bytes", &x.bytes, &mut kept.bytes)] {
                    if relative(c) {
                        parts.push(format!("{name} {}", c.as_ref().expect("relative")));
                        *k = None;
                    }
                }
                if !parts.is_empty() {
                    p.not_checked.push(skip(
                        format!("{}: {}", e.describe(), parts.join(", ")),
                        &format!("a change during the step; {NOT_TYPED}"),
                    ));
                }
                p.checked.push(Expectation::Iptables(kept));
            }
            Expectation::Wan(x) => {
                let counters: Vec<&str> = [
                    ("bgp_bytes", x.bgp_bytes.is_some()),
                    ("bgp_packets", x.bgp_packets.is_some()),
                    ("ipip_bytes", x.ipip_bytes.is_some()),
                    ("ipip_packets", x.ipip_packets.is_some()),
                ]
                .into_iter()
                .filter(|(_, on)| *on)
                .map(|(n, _)| n)
                .collect();
                if !counters.is_empty() {
                    p.not_checked.push(skip(format!("wan {}", counters.join(", ")), WAN_NOT_CHECKED));
                }
                if x.bgp_sessions.is_some() {
                    p.checked.push(Expectation::Wan(WanExpect {
                        line: x.line,
                        bgp_sessions: x.bgp_sessions,
                        bgp_bytes: None,
                        bgp_packets: None,
                        ipip_bytes: None,
                        ipip_packets: None,
                    }));
                }
            }
            _ => p.checked.push(e.clone()),
        }
    }
    p
}

/// The nodes whose IPAM blocks the expectations name (`block:<node>`, `blocks:<set>`).
pub fn block_nodes(es: &[Expectation], nodes: &[NodeInfo]) -> BTreeSet<String> {
    let mut sets = Vec::new();
    for e in es {
        match e {
            Expectation::Rib(r) => sets.push(&r.prefix),
            Expectation::Fib(f) => {
                let exact = f.exact.iter().flatten();
                sets.extend(f.contains.iter().chain(&f.absent).chain(exact).map(|r| &r.dst))
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for p in sets {
        if let PrefixRef::Blocks(set) = p {
            out.extend(resolve_nodes(set, nodes).unwrap_or_default().into_iter().map(|n| n.name));
        }
    }
    out
}

/// Every node the expectations read: their observations, the blocks they name, a `fails`'s nodes.
pub fn nodes_read(es: &[Expectation], nodes: &[NodeInfo]) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = reads(es, nodes).into_iter().map(|(_, n)| n).collect();
    out.extend(block_nodes(es, nodes));
    for e in es {
        if let Expectation::Fails(f) = e {
            if let Some(set) = &f.on {
                out.extend(resolve_nodes(set, nodes).unwrap_or_default().into_iter().map(|n| n.name));
            }
        }
    }
    out
}

/// The step to check: `--step N` (1-based), else the last step that has expectations.
pub fn pick_step(rb: &Runbook, step: Option<usize>) -> Result<usize, RemoteError> {
    let file = rb.file.display();
    match step {
        Some(0) => Err(RemoteError::Usage("--step counts from 1".into())),
        Some(n) if n > rb.steps.len() => {
            Err(RemoteError::Usage(format!("{file} has {} steps: there is no step {n}", rb.steps.len())))
        }
        Some(n) => Ok(n - 1),
        None => rb
            .steps
            .iter()
            .rposition(|s| !s.expect.is_empty())
            .ok_or_else(|| RemoteError::Usage(format!("no step of {file} has expectations"))),
    }
}

/// A view of some nodes only (the failure dump of the nodes a step reads).
struct Only<'a> {
    inner: &'a dyn LabView,
    nodes: Vec<NodeInfo>,
}

impl LabView for Only<'_> {
    fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.clone()
    }
    fn protocols(&self, n: &str) -> Observed<Vec<crate::observe::Protocol>> {
        self.inner.protocols(n)
    }
    fn rib(&self, n: &str) -> Observed<Vec<crate::observe::Route>> {
        self.inner.rib(n)
    }
    fn fib(&self, n: &str) -> Observed<Vec<crate::observe::KernelRoute>> {
        self.inner.fib(n)
    }
    fn ipsets(&self, n: &str) -> Observed<Vec<crate::observe::IpSet>> {
        self.inner.ipsets(n)
    }
    fn iptables(&self, n: &str) -> Observed<crate::observe::IpTables> {
        self.inner.iptables(n)
    }
    fn config(&self, n: &str) -> Observed<std::collections::BTreeMap<String, String>> {
        self.inner.config(n)
    }
    fn bird_config_error(&self, n: &str) -> Option<String> {
        self.inner.bird_config_error(n)
    }
    fn ping(&self, a: &PodInfo, b: &PodInfo) -> bool {
        self.inner.ping(a, b)
    }
    fn wan(&self) -> Observed<crate::wan::WanCounters> {
        self.inner.wan()
    }
    fn observe_many(&self, needs: &[(Obs, String)]) -> Vec<ObsResult> {
        self.inner.observe_many(needs)
    }
}

/// `  not checked: reach a -> b (line 27): <reason>`, one per item.
pub fn not_checked_lines(r: &StepReport) -> Vec<String> {
    r.not_checked
        .iter()
        .map(|m| format!("      not checked: {} (line {}): {}", m.expectation, m.line, m.diff))
        .collect()
}

/// Check one step of `rb` on a live cluster behind `backend`: the inventory's coverage first (before any
/// connection), the live labels and the blocks the expectations name, then (with `--apply`) the step's
/// commands, then its expectations polled for the timeout. Events go to the reporters, the check's own lines
/// (transport, what is not typed, what is not checked) to `out`.
pub fn check_on(
    rb: &Runbook,
    backend: &mut RemoteBackend,
    opts: &CheckOptions,
    events: &dyn Events,
    out: &dyn Fn(&str),
) -> Result<CheckResult, RemoteError> {
    let t0 = Instant::now();
    let i = pick_step(rb, opts.step)?;
    let step = &rb.steps[i];
    let n = i + 1;
    let typed = opts.apply && matches!(step.what, StepAction::Run { .. });
    let p = plan(step, typed);
    let on = format!("live, {}", backend.transport().name());
    let warnings = backend.refresh_labels()?;
    let needed = nodes_read(&p.checked, &backend.nodes());
    backend.transport().require(&needed)?;
    let mode = if typed { "--apply: the step's commands are typed first" } else { "read-only" };
    out(&format!("rrlab check {}, step {n} ({}): {mode}", rb.file.display(), step.name));
    out(&format!("  through {}", backend.transport().describe()));
    out(&format!(
        "  labels: {}",
        if backend.live_labels() {
            "live (kubectl get nodes)"
        } else {
            "the topology's (no kubectl given: --kubectl, or with --ssh --kubeconfig/--context, reads them live)"
        }
    ));
    let mut names: Vec<String> = needed.iter().take(12).cloned().collect();
    if needed.len() > names.len() {
        names.push(format!("… and {} more", needed.len() - names.len()));
    }
    out(&format!("  reads {} node{}: {}", needed.len(), if needed.len() == 1 { "" } else { "s" }, names.join(", ")));
    let needed_list: Vec<String> = needed.iter().cloned().collect();
    backend.transport().connect(&needed_list)?;
    let blocks: Vec<String> = block_nodes(&p.checked, &backend.nodes()).into_iter().collect();
    let mut warnings = warnings;
    if !blocks.is_empty() {
        warnings.extend(backend.read_blocks(&blocks, rb.defaults.block_size));
    }
    for w in &warnings {
        out(&format!("  warning: {w}"));
    }
    let nodes = backend.nodes();
    let topology = backend.topology().clone();
    let lab = backend.lab().to_string();
    events.lab_up(&LabUp { runbook: rb, lab: &lab, on: &on, topology: &topology, nodes: &nodes, took: t0.elapsed() });
    events.step_started(i, step);
    let (st, started_ms) = (Instant::now(), crate::runner::probe::now_ms());
    let baseline = StepOutcome::baseline(&p.checked, &SeamView::new(&*backend));
    let mut commands = Vec::new();
    let mut action_error = None;
    match &step.what {
        StepAction::Run { script, .. } if opts.apply => {
            out(&format!("applying step {n}'s commands:"));
            for l in script.lines() {
                out(&format!("  $ {l}"));
            }
            let cluster = step.cluster_in(&topology);
            match backend.run_commands(&cluster, &format!("{} step {n}", rb.name), script) {
                Ok(o) => commands = o,
                Err(e) => action_error = Some(e.to_string()),
            }
        }
        StepAction::Run { .. } => out(&format!("read-only: step {n}'s commands were not typed (use --apply)")),
        StepAction::None => {}
        a => out(&format!(
            "read-only: step {n} is a harness action ({}); rrlab check does not perform it on a live cluster",
            a.describe()
        )),
    }
    let b: &RemoteBackend = backend;
    let view = SeamView::new(b);
    let outcome = |_last: bool| {
        let mut o = baseline.clone();
        o.commands = commands.clone();
        o
    };
    let mut wo = WaitOptions::for_step(step, &rb.defaults);
    wo.timeout = opts.timeout.unwrap_or(if typed { step.timeout_or(&rb.defaults) } else { DEFAULT_CHECK_TIMEOUT });
    if !typed {
        wo.settle = Duration::ZERO;
    }
    wo.since = Some(st);
    wo.cancel = Some(&INTERRUPTED);
    let wr = wait_all_with(&p.checked, &view, &outcome, &wo);
    if INTERRUPTED.load(Ordering::Relaxed) {
        return Err(RemoteError::Usage(format!("interrupted (Ctrl-C) while checking step {n}")));
    }
    let mut extra = Vec::new();
    if let Some(e) = action_error {
        extra.push(Mismatch { expectation: step.what.describe(), line: step.line, diff: e });
    }
    let ran = StepOutcome { commands: commands.clone(), ..Default::default() };
    extra.extend(unexpected_command_failures(step, &ran));
    let mut r = StepReport::new(rb, i, &wr, extra, st.elapsed());
    r.started_ms = started_ms;
    r.commands = commands;
    r.not_checked = p.not_checked;
    let reachable = |n: &NodeInfo| b.transport().reachable().is_none_or(|r| r.contains(&n.name));
    if events.wants_snapshots() {
        let snap_nodes: Vec<NodeInfo> = b.nodes().into_iter().filter(reachable).collect();
        let is_rr = |n: &str| {
            b.read_file(n, &format!("{}/bird.cfg", crate::backend::observe::CONFD_DIR))
                .is_ok_and(|c| report::snapshot::config_reflects(&c))
        };
        r.snapshot = Some(report::snapshot::take(&view, &snap_nodes, &is_rr));
    }
    if !r.passed {
        let read: Vec<NodeInfo> = b.nodes().into_iter().filter(|x| needed.contains(&x.name)).collect();
        r.dump = Some(report::dump(&Only { inner: &view, nodes: read }));
    }
    events.step_finished(&r);
    for l in not_checked_lines(&r) {
        out(&l);
    }
    if p.checked.is_empty() && !r.not_checked.is_empty() {
        out(&format!("  nothing of step {n} can be checked read-only"));
    }
    let passed = r.verdict().ok();
    let run = RunResult {
        runbook: rb.name.clone(),
        file: rb.file.clone(),
        lab,
        on,
        topology,
        nodes,
        steps: vec![r],
        up: Duration::ZERO,
        timelines: Default::default(),
        teardown: None,
    };
    events.run_finished(&run);
    Ok(CheckResult { run, passed })
}

/// The backend the command line asks for (the inventory read, the kubectl access built; nothing connected).
pub fn backend_for(args: &CheckArgs, rb: &Runbook, run: Box<Runner>) -> Result<RemoteBackend, RemoteError> {
    let topo = crate::model::topology::load(&rb.topology)
        .map_err(|e| RemoteError::Runbook(format!("{}: topology: {e}", rb.file.display())))?;
    let (context, contexts) = parse_contexts(&args.context)?;
    let access = KubectlAccess {
        program: match &args.kubectl_bin {
            Some(w) => words(w, "--kubectl-bin")?,
            None => vec!["kubectl".into()],
        },
        kubeconfig: args.kubeconfig.clone(),
        context,
        contexts,
        namespace: if args.namespace.is_empty() {
            crate::kind::exec::CALICO_NAMESPACE.to_string()
        } else {
            args.namespace.clone()
        },
    };
    let calicoctl = match &args.calicoctl_bin {
        Some(w) => words(w, "--calicoctl-bin")?,
        None => vec!["calicoctl".into()],
    };
    for c in access.contexts.keys() {
        if topo.cluster(c).is_none() {
            let known: Vec<&str> = topo.clusters.iter().map(|c| c.name.as_str()).collect();
            return Err(RemoteError::Usage(format!(
                "--context {c}=…: no cluster {c} in the topology (clusters: {})",
                known.join(", ")
            )));
        }
    }
    let live = args.kubectl || args.kubeconfig.is_some() || !args.context.is_empty() || args.kubectl_bin.is_some();
    if live && topo.clusters.len() > 1 && access.contexts.len() < topo.clusters.len() {
        let missing: Vec<&str> =
            topo.clusters.iter().map(|c| c.name.as_str()).filter(|c| !access.contexts.contains_key(*c)).collect();
        return Err(RemoteError::Usage(format!(
            "the topology has {} clusters: give each its kubectl context (--context CLUSTER=CONTEXT; missing: {})",
            topo.clusters.len(),
            missing.join(", ")
        )));
    }
    let transport: Box<dyn Transport> = match (&args.ssh, args.kubectl) {
        (Some(inv), false) => Box::new(SshTransport::new(Inventory::load(inv)?)),
        (None, true) => Box::new(KubectlTransport::new(access.clone(), &topo, process_runner())),
        _ => return Err(RemoteError::Usage("give one of --ssh <inventory> and --kubectl".into())),
    };
    let labels = if live { Labels::Live(access.clone()) } else { Labels::Topology };
    let apply = args.apply.then_some(ApplyOptions { kubectl: access, calicoctl });
    Ok(RemoteBackend::new(topo, transport, labels, apply, run))
}

fn words(s: &str, flag: &str) -> Result<Vec<String>, RemoteError> {
    let w: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    if w.is_empty() {
        return Err(RemoteError::Usage(format!("{flag}: empty")));
    }
    Ok(w)
}

/// Load the runbook, build the backend from the command line and check.
pub fn check(args: &CheckArgs, events: &dyn Events, out: &dyn Fn(&str)) -> Result<CheckResult, RemoteError> {
    let rb = crate::runbook::load(&args.runbook).map_err(|e| RemoteError::Runbook(e.to_string()))?;
    let mut backend = backend_for(args, &rb, process_runner())?;
    let opts = CheckOptions { step: args.step, apply: args.apply, timeout: args.timeout };
    check_on(&rb, &mut backend, &opts, events, out)
}

/// The terminal for a check: the rehearsal's step line and failure text, then the summary (no lab bring-up
/// time: the cluster was already there).
struct CheckTerminal<'a>(report::reporters::Terminal<'a>);

impl Events for CheckTerminal<'_> {
    fn step_finished(&self, r: &StepReport) {
        self.0.step_finished(r)
    }
    fn run_finished(&self, r: &RunResult) {
        (self.0.out)(&report::summary_line(&r.steps))
    }
    fn run_failed(&self, runbook: &Path, on: &str, error: &str) {
        self.0.run_failed(runbook, on, error)
    }
}

/// The CLI edge of `rrlab check`: reporters (terminal; JUnit and HTML when asked), Ctrl-C, the report
/// files. Ok(true) when every checked expectation held.
pub fn cli_check(args: CheckArgs) -> Result<bool, RemoteError> {
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::Relaxed));
    let print = |l: &str| println!("{l}");
    let terminal = CheckTerminal(report::reporters::Terminal { out: &print, progress: None, failures: true });
    let (junit, html) = (report::reporters::Junit::default(), report::reporters::Html::default());
    let mut all: Vec<&dyn Events> = vec![&terminal];
    if args.junit.is_some() {
        all.push(&junit);
    }
    if args.html.is_some() {
        all.push(&html);
    }
    let events = crate::runner::Fanout(all);
    let on = if args.kubectl { "live, kubectl" } else { "live, ssh" };
    let res = check(&args, &events, &print);
    if let Err(e) = &res {
        events.run_failed(&args.runbook, on, &e.to_string());
    }
    let write = |path: &Path, text: String| -> Result<(), RemoteError> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).map_err(|e| RemoteError::Io(format!("{}: {e}", d.display())))?;
        }
        std::fs::write(path, text).map_err(|e| RemoteError::Io(format!("{}: {e}", path.display())))
    };
    if let Some(h) = &args.html {
        write(h, html.html(&format!("rrlab check {}", args.runbook.display())))?;
        eprintln!("HTML report: {}", h.display());
    }
    if let Some(j) = &args.junit {
        write(j, junit.xml("rrlab check"))?;
    }
    Ok(res?.passed)
}
