//! Running a runbook on a twin lab: bring the lab up, start the probes, then per step type the operator's
//! commands (or perform the harness action), poll the step's expectations until they hold, attribute probe
//! loss to the step, and report. The lab is removed at the end, on failure and on Ctrl-C.

pub mod probe;
pub mod view;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::lab::converge::{self, UpOptions};
use crate::lab::{self, node_dir, node_ref, wan, LabError, LabState};
use crate::model::topology::Topology;
use crate::report::{self, StepReport};
use crate::runbook::check;
use crate::runbook::lab::{LabView, ProbeStats, StepOutcome};
use crate::runbook::model::{PodSelector, ProbeSpec, Runbook, StepAction, WanAction};
use crate::runtime::{exec_ok, rrlab_binary, Runtime};
use view::TwinView;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub runtime: String,
    /// Keep the lab after the run (for inspection).
    pub keep: bool,
    pub up_timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { runtime: "netns".into(), keep: false, up_timeout: Duration::from_secs(180) }
    }
}

#[derive(Debug)]
pub struct RunResult {
    pub runbook: String,
    pub lab: String,
    pub steps: Vec<StepReport>,
    pub up: Duration,
}

impl RunResult {
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.passed)
    }
}

struct RunningProbe {
    spec: ProbeSpec,
    /// Host paths of the sender's start file and the receiver's log.
    start: PathBuf,
    log: PathBuf,
}

fn pod_for(v: &TwinView, sel: &PodSelector) -> Result<(String, String, std::net::Ipv4Addr, String), String> {
    let nodes = v.nodes();
    let pod = match sel {
        PodSelector::Pod(p) => nodes.iter().flat_map(|n| n.pods.iter()).find(|x| &x.name == p),
        PodSelector::Node(n) => nodes.iter().find(|x| &x.name == n).and_then(|n| n.pods.first()),
    }
    .ok_or_else(|| format!("probe endpoint {sel:?} matches no pod of the lab"))?;
    let (node, ns) = v.pod_netns(&pod.name).cloned().ok_or_else(|| format!("pod {} has no namespace", pod.name))?;
    Ok((pod.name.clone(), node, pod.ip, ns))
}

/// Where a node's state directory is, as seen from inside the node.
fn inside_dir(rt: &dyn Runtime, state_dir: &Path) -> PathBuf {
    if rt.kind() == "docker" {
        PathBuf::from("/var/lib/rrlab")
    } else {
        state_dir.to_path_buf()
    }
}

fn inside_bin(rt: &dyn Runtime) -> Result<String, LabError> {
    if rt.kind() == "docker" {
        Ok("/usr/local/bin/rrlab".into())
    } else {
        Ok(rrlab_binary()?.display().to_string())
    }
}

/// Start a long-running process in a node, detached, with no stdio tied to us (else waiting for the
/// command's output would wait for the process).
fn detach(rt: &dyn Runtime, lab: &str, node: &str, argv: &[&str]) -> Result<(), LabError> {
    let quoted: Vec<String> = argv.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
    let line = format!("setsid -f {} </dev/null >/dev/null 2>&1", quoted.join(" "));
    exec_ok(rt, &node_ref(lab, node), &["sh", "-c", &line])?;
    Ok(())
}

fn start_probes(
    state: &LabState,
    rt: &dyn Runtime,
    v: &TwinView,
    specs: &[ProbeSpec],
) -> Result<Vec<RunningProbe>, LabError> {
    let bin = inside_bin(rt)?;
    let mut out = Vec::new();
    for (i, p) in specs.iter().enumerate() {
        let (_, src_node, _, src_ns) = pod_for(v, &p.from).map_err(LabError::Other)?;
        let (_, dst_node, dst_ip, dst_ns) = pod_for(v, &p.to).map_err(LabError::Other)?;
        let port = 17000 + i as u16;
        let period_us = 1_000_000 / p.rate_pps.max(100);
        for (node, file) in [(&src_node, "start"), (&dst_node, "recv")] {
            let dir = node_dir(&state.name, node).join("probes");
            std::fs::create_dir_all(&dir).map_err(|e| LabError::Io(e.to_string()))?;
            let _ = std::fs::remove_file(dir.join(format!("{}.{file}", p.name)));
        }
        let dst_in = inside_dir(rt, &node_dir(&state.name, &dst_node)).join("probes").join(format!("{}.recv", p.name));
        detach(
            rt,
            &state.name,
            &dst_node,
            &[
                "ip",
                "netns",
                "exec",
                &dst_ns,
                &bin,
                "probe",
                "recv",
                "--port",
                &port.to_string(),
                "--log",
                &dst_in.display().to_string(),
            ],
        )?;
        std::thread::sleep(Duration::from_millis(50));
        let src_in = inside_dir(rt, &node_dir(&state.name, &src_node)).join("probes").join(format!("{}.start", p.name));
        detach(
            rt,
            &state.name,
            &src_node,
            &[
                "ip",
                "netns",
                "exec",
                &src_ns,
                &bin,
                "probe",
                "send",
                "--to",
                &format!("{dst_ip}:{port}"),
                "--period-us",
                &period_us.to_string(),
                "--start-file",
                &src_in.display().to_string(),
            ],
        )?;
        out.push(RunningProbe {
            spec: p.clone(),
            start: node_dir(&state.name, &src_node).join("probes").join(format!("{}.start", p.name)),
            log: node_dir(&state.name, &dst_node).join("probes").join(format!("{}.recv", p.name)),
        });
    }
    // Wait for every probe to be sending.
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) && !out.iter().all(|p| p.start.exists()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(out)
}

fn probe_stats(probes: &[RunningProbe], from_ms: u64, to_ms: u64, grace: Duration) -> BTreeMap<String, ProbeStats> {
    probes
        .iter()
        .map(|p| {
            let st = match probe::read_start(&p.start) {
                Some((start, period)) => {
                    probe::window_stats(start, period, &probe::read_received(&p.log), from_ms, to_ms, grace)
                }
                None => ProbeStats::default(),
            };
            (p.spec.name.clone(), st)
        })
        .collect()
}

fn set_links(rt: &dyn Runtime, state: &LabState, topo: &Topology, node: &str, up: bool) -> Result<(), LabError> {
    for (iface, _) in topo.links_of(node) {
        exec_ok(rt, &node_ref(&state.name, node), &["ip", "link", "set", iface, if up { "up" } else { "down" }])?;
    }
    Ok(())
}

/// Hand the new state to every node and wait until every agent applied it (actions take effect before the
/// step's expectations are polled).
fn push_and_wait(state: &mut LabState, topo: &Topology) -> Result<(), LabError> {
    lab::push(state, topo)?;
    for c in &topo.clusters {
        converge::wait_applied(state, c, Duration::from_secs(10));
    }
    Ok(())
}

/// Perform a harness action.
fn act(state: &mut LabState, topo: &Topology, rt: &dyn Runtime, a: &StepAction) -> Result<(), LabError> {
    match a {
        StepAction::Wan(w) => match w {
            WanAction::Partition { from, to, one_way } => wan::partition(
                rt,
                &state.name,
                topo,
                &topo.site_cidr(from).map_err(LabError::Other)?,
                &topo.site_cidr(to).map_err(LabError::Other)?,
                !one_way,
            ),
            WanAction::Heal => wan::heal(rt, &state.name, topo),
            WanAction::Loss { percent } => wan::loss(rt, &state.name, topo, *percent),
            WanAction::Delay { ms } => wan::delay(rt, &state.name, topo, *ms),
            WanAction::Rate { kbit } => wan::rate(rt, &state.name, topo, *kbit),
        },
        StepAction::StopBird(n) | StepAction::StartBird(n) => {
            let stop = matches!(a, StepAction::StopBird(_));
            state.bird_stopped.retain(|x| x != n);
            if stop {
                state.bird_stopped.push(n.clone());
            }
            push_and_wait(state, topo)
        }
        // A stopped node: its links go down and its BIRD stops (a powered-off machine, as its peers see it).
        StepAction::StopNode(n) => {
            set_links(rt, state, topo, n, false)?;
            state.bird_stopped.retain(|x| x != n);
            state.bird_stopped.push(n.clone());
            push_and_wait(state, topo)
        }
        StepAction::StartNode(n) => {
            set_links(rt, state, topo, n, true)?;
            state.bird_stopped.retain(|x| x != n);
            push_and_wait(state, topo)
        }
        // calico-node restarts: the agent (and its BIRD) go away and come back, BIRD with graceful restart.
        StepAction::RestartCalicoNode(n) => {
            let dir = node_dir(&state.name, n);
            if let Some(pid) =
                std::fs::read_to_string(dir.join("agent.pid")).ok().and_then(|s| s.trim().parse::<i32>().ok())
            {
                // SAFETY: signalling the agent's pid.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
                std::thread::sleep(Duration::from_millis(500));
            } else {
                let _ = exec_ok(rt, &node_ref(&state.name, n), &["pkill", "-TERM", "-f", "rrlab agent"]);
                std::thread::sleep(Duration::from_millis(500));
            }
            let _ = std::fs::remove_file(dir.join("status.json"));
            rt.spawn_agent(&node_ref(&state.name, n), &dir, &rrlab_binary()?)?;
            Ok(())
        }
        StepAction::Wait(d) => {
            std::thread::sleep(*d);
            Ok(())
        }
        StepAction::Run { .. } | StepAction::None => Ok(()),
    }
}

/// Bring the runbook's lab up, run every step, tear the lab down (unless `keep`).
pub fn run(
    runbook_path: &Path,
    opts: &RunOptions,
    on_step: &dyn Fn(&StepReport),
    progress: &dyn Fn(&str),
) -> Result<RunResult, LabError> {
    let rb: Runbook = crate::runbook::load(runbook_path).map_err(|e| LabError::Other(e.to_string()))?;
    let t0 = Instant::now();
    let up = converge::up(
        &rb.topology,
        &UpOptions { runtime: opts.runtime.clone(), pods_per_node: 2, timeout: opts.up_timeout, ping_matrix: true },
        progress,
    )?;
    let lab_name = up.lab.clone();
    struct Down(String, bool);
    impl Drop for Down {
        fn drop(&mut self) {
            if !self.1 {
                let _ = converge::down(&self.0);
            }
        }
    }
    let _down = Down(lab_name.clone(), opts.keep);
    let up_time = t0.elapsed();
    let mut state = LabState::load(&lab_name)?;
    let topo = state.topology()?;
    let rt = lab::runtime_for(&state.runtime)?;
    let probes = {
        let v = TwinView::new(&state, &topo, rt.as_ref()).map_err(LabError::Other)?;
        start_probes(&state, rt.as_ref(), &v, &rb.probes)?
    };
    let mut reports = Vec::new();
    for (i, step) in rb.steps.iter().enumerate() {
        converge::INTERRUPTED
            .load(std::sync::atomic::Ordering::Relaxed)
            .then_some(())
            .map_or(Ok(()), |_| Err(LabError::Other("interrupted".into())))?;
        progress(&format!("step {}: {}", i + 1, step.name));
        let st = Instant::now();
        let from_ms = probe::now_ms();
        let baseline = {
            let v = TwinView::new(&state, &topo, rt.as_ref()).map_err(LabError::Other)?;
            StepOutcome::baseline(&step.expect, &v)
        };
        let mut commands = Vec::new();
        let mut action_error = None;
        match &step.what {
            StepAction::Run { script, .. } => {
                let cluster = step.cluster_in(&topo);
                match lab::run_commands(&mut state, &topo, &cluster, &format!("{} step {}", rb.name, i + 1), script) {
                    Ok(o) => commands = o,
                    Err(e) => action_error = Some(e.to_string()),
                }
            }
            a => {
                if let Err(e) = act(&mut state, &topo, rt.as_ref(), a) {
                    action_error = Some(e.to_string());
                }
            }
        }
        let v = TwinView::new(&state, &topo, rt.as_ref()).map_err(LabError::Other)?;
        let outcome = || {
            let mut o = baseline.clone();
            o.commands = commands.clone();
            o.probes = probe_stats(&probes, from_ms, probe::now_ms(), Duration::from_millis(50));
            o
        };
        let mut wo = check::WaitOptions::for_step(step, &rb.defaults);
        wo.since = Some(st);
        let wr = check::wait_all_with(&step.expect, &v, &outcome, &wo);
        let mut extra = Vec::new();
        if let Some(e) = action_error {
            extra.push(check::Mismatch { expectation: step.what.describe(), line: step.line, diff: e });
        }
        extra.extend(check::unexpected_command_failures(step, &outcome()));
        let mut r = StepReport::new(&rb, i, &wr, extra, st.elapsed());
        if !r.passed {
            r.dump = Some(report::dump(&v));
        }
        on_step(&r);
        reports.push(r);
    }
    Ok(RunResult { runbook: rb.name, lab: lab_name, steps: reports, up: up_time })
}
