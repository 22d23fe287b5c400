//! Running a runbook on the kind backend, the twin runner's flow (`crate::runner::run`) over a [`Runner`]:
//! bring the lab up with [`super::up`] (unless `reuse`), then per step capture the baseline, type the
//! operator's script or perform the harness action, poll the expectations with
//! [`check::wait_all_with`] on a [`KindView`], report with [`StepReport::new`]; tear down with
//! [`super::down`] at the end (unless `keep`), also when a step errors out.
//!
//! What each step kind maps to on kind:
//! - `run`: the whole script as **one** `bash -e -c '<script>'` against the step's cluster
//!   ([`super::exec::operator_command`]), reported as one command [`Outcome`] (line 1, the script as its
//!   command, its stdout/stderr); with `bash -e` the first failing line stops it, but which line it was is
//!   not known (the twin reports per line);
//! - `wan partition`/`heal`: iptables DROP rules in the WAN's `rrlab-IMPAIR` chain / flush it and reset
//!   netem ([`super::exec::wan_partition`], [`super::exec::wan_heal`]); `wan loss`/`delay`/`rate`:
//!   `containerlab tools netem set` on every WAN interface ([`super::exec::wan_impair`]); netem sets all
//!   parameters at once, so each of these replaces the previous impairment (the twin's loss is an iptables
//!   rule that stacks with delay and rate);
//! - `stop_bird`/`start_bird`: `kubectl exec <calico-node pod> -c calico-node -- sv stop|start
//!   /etc/service/enabled/bird` (calico-node runs BIRD under runit). calico-node's liveness probe includes
//!   `-bird-live`, so a BIRD stopped for longer than the probe tolerates (6 × 10 s in the manifest) gets
//!   calico-node restarted by the kubelet;
//! - `stop_node`/`start_node`: `docker stop|start <node container>` ([`super::exec::node_container`]);
//! - `restart_calico_node`: `kubectl -n kube-system delete pod <calico-node pod>` (the DaemonSet makes a
//!   new one; the view forgets the node → pod map);
//! - `wait`: a sleep.
//!
//! Probes (simple, not the twin's UDP stream): a busybox `ping -i <1/rate s, ≥ 0.01>` runs in the source
//! probe pod in the background (`kubectl exec … sh -c`, output to `/tmp/rrlab-probe-<name>.log`). Every
//! time the step's outcome is read (each polling round, and at the end), the ping is interrupted (SIGINT:
//! busybox prints its statistics), its log read and parsed with [`crate::observe::parse_ping`], and a new
//! ping started; the step's [`ProbeStats`] add up the segments (sent, received, longest run of missing
//! sequence numbers × interval, continued across segments). A packet still in flight when a segment is
//! interrupted is not counted; the moment between two segments is not measured.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::exec::{self, Impairment};
use super::plan::{plan_up, ClusterAccess, PlanOptions, PlanStep};
use super::runner::{run_step, Runner};
use super::view::KindView;
use crate::model::topology::Topology;
use crate::observe::parse_ping;
use crate::report::{self, StepReport};
use crate::runbook::check;
use crate::runbook::lab::{LabView, ProbeStats, StepOutcome};
use crate::runbook::model::{PodSelector, ProbeSpec, Runbook, StepAction, WanAction};
use crate::runner::RunResult;
use crate::twin::commands::Outcome;

/// How to run a runbook on kind.
#[derive(Debug, Clone, Default)]
pub struct KindRunOptions {
    /// Work directory, calicoctl, pods per node… (None: [`PlanOptions::for_lab`] of the topology's name).
    pub plan: Option<PlanOptions>,
    /// Keep the lab afterwards (`rrlab down --backend kind --topology …` removes it).
    pub keep: bool,
    /// The lab is already up (`rrlab up --backend kind`): skip the bring-up.
    pub reuse: bool,
}

/// `kubectl exec -n kube-system <pod> -c calico-node -- sv stop|start /etc/service/enabled/bird`.
pub fn bird_service(a: &ClusterAccess, node: &str, pod: &str, start: bool) -> PlanStep {
    let verb = if start { "start" } else { "stop" };
    exec::kubectl(
        a,
        format!("{verb} BIRD on {node}"),
        &[
            "-n",
            exec::CALICO_NAMESPACE,
            "exec",
            pod,
            "-c",
            exec::CALICO_NODE_CONTAINER,
            "--",
            "sv",
            verb,
            "/etc/service/enabled/bird",
        ],
    )
}

/// `kubectl -n kube-system delete pod <calico-node pod>`.
pub fn delete_calico_node(a: &ClusterAccess, node: &str, pod: &str) -> PlanStep {
    exec::kubectl(a, format!("restart calico-node on {node}"), &["-n", exec::CALICO_NAMESPACE, "delete", "pod", pod])
}

/// One probe cycle in the source pod: interrupt the running ping (if any), print its log, and (`restart`)
/// start a new one in the background. Output: the previous segment's ping output.
pub fn probe_cycle(a: &ClusterAccess, name: &str, pod: &str, dst: &str, interval: &str, restart: bool) -> PlanStep {
    let f = format!("/tmp/rrlab-probe-{name}");
    let mut script = format!(
        "if [ -f {f}.pid ]; then kill -INT $(cat {f}.pid) 2>/dev/null; sleep 0.2; cat {f}.log; rm -f {f}.pid; fi"
    );
    if restart {
        script.push_str(&format!("; ping -i {interval} {dst} >{f}.log 2>&1 </dev/null & echo $! >{f}.pid"));
    }
    exec::kubectl(a, format!("probe {name}"), &["-n", "default", "exec", pod, "--", "sh", "-c", &script])
}

#[derive(Debug, Default, Clone)]
struct Acc {
    sent: u64,
    received: u64,
    run: u64,
    longest: u64,
}

struct Probe {
    name: String,
    access: ClusterAccess,
    pod: String,
    dst: String,
    interval: Duration,
    acc: RefCell<Acc>,
}

impl Probe {
    fn interval_arg(&self) -> String {
        format!("{}", self.interval.as_secs_f64())
    }

    fn step(&self, restart: bool) -> PlanStep {
        probe_cycle(&self.access, &self.name, &self.pod, &self.dst, &self.interval_arg(), restart)
    }

    /// Add a segment's ping output (busybox numbers from 0).
    fn add(&self, text: &str) {
        let Ok(r) = parse_ping(text) else { return };
        let replied: std::collections::BTreeSet<u32> = r.replied_seqs().into_iter().collect();
        let mut sent = u64::from(r.transmitted);
        let mut a = self.acc.borrow_mut();
        if sent > 0 && !replied.contains(&(r.transmitted - 1)) {
            sent -= 1; // in flight when interrupted
        }
        for s in 0..sent as u32 {
            if replied.contains(&s) {
                a.run = 0;
            } else {
                a.run += 1;
                a.longest = a.longest.max(a.run);
            }
        }
        a.sent += sent;
        a.received += (replied.iter().filter(|s| u64::from(**s) < sent).count()) as u64;
    }

    fn stats(&self) -> ProbeStats {
        let a = self.acc.borrow();
        ProbeStats { sent: a.sent, received: a.received, longest_outage: self.interval * (a.longest as u32) }
    }
}

fn probe_pod(view: &KindView, sel: &PodSelector) -> Result<(String, String, std::net::Ipv4Addr), String> {
    let nodes = view.nodes();
    let pod = match sel {
        PodSelector::Pod(p) => nodes.iter().flat_map(|n| n.pods.iter()).find(|x| &x.name == p),
        PodSelector::Node(n) => nodes.iter().find(|x| &x.name == n).and_then(|n| n.pods.first()),
    }
    .ok_or_else(|| format!("probe endpoint {sel:?} matches no pod of the lab"))?;
    Ok((pod.name.clone(), pod.node.clone(), pod.ip))
}

fn make_probes(view: &KindView, opts: &PlanOptions, specs: &[ProbeSpec]) -> Result<Vec<Probe>, String> {
    let mut out = Vec::new();
    for p in specs {
        let (pod, node, _) = probe_pod(view, &p.from)?;
        let (_, _, dst) = probe_pod(view, &p.to)?;
        let cluster = view.topo.cluster_of(&node).map(|c| c.name.clone()).unwrap_or_default();
        let interval = Duration::from_micros(1_000_000 / u64::from(p.rate_pps.clamp(1, 100)));
        out.push(Probe {
            name: p.name.clone(),
            access: opts.access(&cluster),
            pod,
            dst: dst.to_string(),
            interval,
            acc: RefCell::default(),
        });
    }
    Ok(out)
}

fn run_all(runner: &dyn Runner, steps: &[PlanStep]) -> Result<(), String> {
    for (i, s) in steps.iter().enumerate() {
        run_step(runner, i, s).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Perform a harness action.
fn act(view: &KindView, a: &StepAction) -> Result<(), String> {
    let (runner, topo) = (view.runner, view.topo);
    let netem = |imp: Impairment| run_all(runner, &exec::wan_impair(topo, &imp));
    match a {
        StepAction::Wan(w) => match w {
            WanAction::Partition { from, to, one_way } => {
                let steps = exec::wan_partition(topo, &topo.site_cidr(from)?, &topo.site_cidr(to)?, !one_way);
                if steps.is_empty() {
                    return Err("the topology has no WAN (linux) node".into());
                }
                run_all(runner, &steps)
            }
            WanAction::Heal => run_all(runner, &exec::wan_heal(topo)),
            WanAction::Loss { percent } => netem(Impairment { loss: Some(*percent), ..Default::default() }),
            WanAction::Delay { ms } => netem(Impairment { delay: Some(format!("{ms}ms")), ..Default::default() }),
            WanAction::Rate { kbit } => netem(Impairment { rate_kbit: Some(u64::from(*kbit)), ..Default::default() }),
        },
        StepAction::StopBird(n) | StepAction::StartBird(n) => {
            let (acc, pod) = view.calico_pod(n)?;
            run_all(runner, &[bird_service(&acc, n, &pod, matches!(a, StepAction::StartBird(_)))])
        }
        StepAction::StopNode(n) => run_all(runner, &[exec::node_container(topo, n, false)]),
        StepAction::StartNode(n) => run_all(runner, &[exec::node_container(topo, n, true)]),
        StepAction::RestartCalicoNode(n) => {
            let (acc, pod) = view.calico_pod(n)?;
            let r = run_all(runner, &[delete_calico_node(&acc, n, &pod)]);
            view.forget_pods();
            r
        }
        StepAction::Wait(d) => {
            std::thread::sleep(*d);
            Ok(())
        }
        StepAction::Run { .. } | StepAction::None => Ok(()),
    }
}

/// The step's script as one command outcome.
fn run_script(runner: &dyn Runner, a: &ClusterAccess, script: &str) -> Result<Outcome, String> {
    let o = runner.run(&exec::operator_command(a, script)).map_err(|e| format!("cannot run bash: {e}"))?;
    Ok(Outcome {
        line: 1,
        command: script.trim_end().to_string(),
        ok: o.success(),
        stdout: o.stdout,
        stderr: o.stderr,
        changed: false,
    })
}

struct Down<'a> {
    topo: &'a Topology,
    opts: &'a PlanOptions,
    runner: &'a dyn Runner,
    keep: bool,
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if !self.keep {
            let _ = super::down(self.topo, self.opts, self.runner, &mut |_, _| {});
        }
    }
}

/// Bring the runbook's lab up on kind (unless `reuse`), run every step, tear it down (unless `keep`).
pub fn run(
    runbook: &Path,
    opts: &KindRunOptions,
    runner: &dyn Runner,
    on_step: &dyn Fn(&StepReport),
    progress: &dyn Fn(&str),
) -> Result<RunResult, String> {
    let rb: Runbook = crate::runbook::load(runbook).map_err(|e| e.to_string())?;
    let topo = crate::model::topology::load(&rb.topology).map_err(|e| e.to_string())?;
    let popts = opts.plan.clone().unwrap_or_else(|| PlanOptions::for_lab(&topo.name));
    let t0 = Instant::now();
    if !opts.reuse {
        let n = plan_up(&topo, &popts).steps.len();
        super::up(&topo, &popts, runner, &mut |i, st| progress(&format!("[{}/{n}] {}", i + 1, st.what)))
            .map_err(|e| e.to_string())?;
    }
    let _down = Down { topo: &topo, opts: &popts, runner, keep: opts.keep };
    let up_time = t0.elapsed();
    let mut view = KindView::new(runner, &topo, &popts);
    let probes = make_probes(&view, &popts, &rb.probes)?;
    let mut reports = Vec::new();
    for (i, step) in rb.steps.iter().enumerate() {
        progress(&format!("step {}: {}", i + 1, step.name));
        // calico-node's log since shortly before the run (bird_config_error).
        view.log_since = format!("{}s", t0.elapsed().as_secs() + 60);
        let st = Instant::now();
        let baseline = StepOutcome::baseline(&step.expect, &view);
        for p in &probes {
            *p.acc.borrow_mut() = Acc::default();
            let _ = runner.run(&p.step(true));
        }
        let mut commands = Vec::new();
        let mut action_error = None;
        match &step.what {
            StepAction::Run { script, .. } => {
                let cluster = step.cluster_in(&topo);
                match run_script(runner, &popts.access(&cluster), script) {
                    Ok(o) => commands.push(o),
                    Err(e) => action_error = Some(e),
                }
            }
            a => {
                if let Err(e) = act(&view, a) {
                    action_error = Some(e);
                }
            }
        }
        let outcome = || {
            let mut o = baseline.clone();
            o.commands = commands.clone();
            let mut stats = BTreeMap::new();
            for p in &probes {
                if let Ok(out) = runner.run(&p.step(true)) {
                    p.add(&out.stdout);
                }
                stats.insert(p.name.clone(), p.stats());
            }
            o.probes = stats;
            o
        };
        let mut wo = check::WaitOptions::for_step(step, &rb.defaults);
        wo.since = Some(st);
        let wr = check::wait_all_with(&step.expect, &view, &outcome, &wo);
        let mut extra = Vec::new();
        if let Some(e) = action_error {
            extra.push(check::Mismatch { expectation: step.what.describe(), line: step.line, diff: e });
        }
        let only_commands = StepOutcome { commands: commands.clone(), ..Default::default() };
        extra.extend(check::unexpected_command_failures(step, &only_commands));
        let mut r = StepReport::new(&rb, i, &wr, extra, st.elapsed());
        if !r.passed {
            r.dump = Some(report::dump(&view as &dyn LabView));
        }
        on_step(&r);
        reports.push(r);
    }
    for p in &probes {
        let _ = runner.run(&p.step(false));
    }
    Ok(RunResult { runbook: rb.name, lab: topo.name.clone(), steps: reports, up: up_time })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::plan::plan_down;
    use crate::kind::runner::{RecordingRunner, StepOutput};
    use crate::kind::view::tests::{calico_pods_json, opts, sample, topo, NODES_JSON, WAN_SAVE};
    use std::cell::RefCell as Cell;

    fn runbook(dir: &Path) -> std::path::PathBuf {
        let t = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("topologies/two-clusters.clab.yml");
        let text = format!(
            "name: tiny\ntopology: {}\ndefaults:\n  timeout: 300ms\n  poll: 10ms\nprobes:\n  - {{name: p, from: cluster1-control-plane, to: cluster1-worker, rate: 100}}\nsteps:\n  - name: list nodes\n    cluster: cluster1\n    run: calicoctl get nodes\n    expect:\n      - reach: {{from: cluster1-control-plane, to: cluster1-worker}}\n      - loss: {{max_lost: 0}}\n  - name: cut the WAN\n    wan: partition site-1 <-> site-2\n  - name: bad command\n    cluster: cluster1\n    run: calicoctl get nodez\n",
            t.display()
        );
        let p = dir.join("tiny.yaml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn lab_runner() -> RecordingRunner {
        let mut busy = sample("observe", "ping-ok.txt")
            .replace("icmp_seq=1", "icmp_seq=0")
            .replace("icmp_seq=2", "icmp_seq=1")
            .replace("icmp_seq=3", "icmp_seq=2");
        busy = busy.replace("3 packets transmitted", "4 packets transmitted");
        RecordingRunner::new()
            .reply("get nodes -o json", StepOutput::ok(NODES_JSON))
            .reply("get pod cluster1-control-plane-p1 -o", StepOutput::ok("172.16.10.1"))
            .reply("get pod cluster1-worker-p1 -o", StepOutput::ok("172.16.20.1"))
            .reply("-o 'jsonpath", StepOutput::ok("172.16.99.9"))
            .reply("get pods -l k8s-app=calico-node", StepOutput::ok(calico_pods_json("cluster1")))
            .reply("ping -c 1 -W 1", StepOutput::ok(sample("observe", "ping-ok.txt")))
            // A probe segment: busybox-numbered replies 0..2 of 4 sent, the 4th in flight.
            .reply("/tmp/rrlab-probe-p", StepOutput::ok(busy))
            .reply("iptables-save -c -t filter", StepOutput::ok(WAN_SAVE))
            .reply("calicoctl get nodez", StepOutput::failed(1, "Invalid resource type: nodez\n"))
            .reply("calicoctl get nodes", StepOutput::ok("NAME\ncluster1-control-plane\n"))
    }

    #[test]
    fn a_tiny_runbook_end_to_end_over_a_recording_runner() {
        let dir = tempfile::tempdir().unwrap();
        let rb = runbook(dir.path());
        let r = lab_runner();
        let mut po = opts();
        po.strict_versions = false; // the recording runner prints no tool versions
        let o = KindRunOptions { plan: Some(po.clone()), keep: false, reuse: false };
        let seen = Cell::new(Vec::new());
        let res = run(&rb, &o, &r, &|s| seen.borrow_mut().push(report::step_line(s)), &|_| {}).unwrap();
        assert_eq!(res.steps.len(), 3);
        assert!(res.steps[0].passed, "{}", report::failure_text(&res.steps[0]));
        assert!(res.steps[1].passed, "{}", report::failure_text(&res.steps[1]));
        assert!(!res.steps[2].passed);
        assert!(
            report::failure_text(&res.steps[2]).contains("Invalid resource type: nodez"),
            "{}",
            report::failure_text(&res.steps[2])
        );
        assert_eq!(seen.borrow().len(), 3);

        let t = topo("two-clusters.clab.yml");
        let lines = r.command_lines();
        // Bring-up first, teardown last.
        let up = plan_up(&t, &po).command_lines();
        let down = plan_down(&t, &po).command_lines();
        assert_eq!(lines[..up.len()], up[..]);
        assert_eq!(lines[lines.len() - down.len()..], down[..]);

        // Step 2 exactly: the baseline reads the nodes (pod IPs are known by now), the probe restarts, the
        // partition both ways, one polling round (no polled expectation: only the probe cycle), the final
        // outcome (probe cycle).
        let kc = "kubectl --kubeconfig /run/rrlab/two-clusters/kind/cluster1.kubeconfig --context kind-cluster1";
        let probe = format!("{kc} -n default exec cluster1-control-plane-p1 -- sh -c 'if [ -f /tmp/rrlab-probe-p.pid ]; then kill -INT $(cat /tmp/rrlab-probe-p.pid) 2>/dev/null; sleep 0.2; cat /tmp/rrlab-probe-p.log; rm -f /tmp/rrlab-probe-p.pid; fi; ping -i 0.01 172.16.20.1 >/tmp/rrlab-probe-p.log 2>&1 </dev/null & echo $! >/tmp/rrlab-probe-p.pid'");
        let start = lines.iter().position(|l| l.contains("rrlab-IMPAIR -s 10.1.1.0/24")).unwrap() - 3;
        let end = lines.iter().position(|l| l.contains("calicoctl get nodez")).unwrap() - 3;
        let kc2 = "kubectl --kubeconfig /run/rrlab/two-clusters/kind/cluster2.kubeconfig --context kind-cluster2";
        assert_eq!(
            lines[start..end],
            [
                format!("{kc} get nodes -o json"),
                format!("{kc2} get nodes -o json"),
                probe.clone(),
                "docker exec clab-two-clusters-wan iptables -A rrlab-IMPAIR -s 10.1.1.0/24 -d 10.2.1.0/24 -m comment --comment partition -j DROP".to_string(),
                "docker exec clab-two-clusters-wan iptables -A rrlab-IMPAIR -s 10.2.1.0/24 -d 10.1.1.0/24 -m comment --comment partition -j DROP".to_string(),
                probe.clone(),
                probe.clone(),
            ]
        );
        assert_eq!(
            lines[end..end + 3],
            [format!("{kc} get nodes -o json"), format!("{kc2} get nodes -o json"), probe.clone()]
        );
        // Step 1's script ran as typed, by bash -e, against cluster1.
        assert!(lines.contains(&"KUBECONFIG=/run/rrlab/two-clusters/kind/cluster1.kubeconfig DATASTORE_TYPE=kubernetes PATH=/var/lib/rrlab/kind/bin:/usr/bin:/bin bash -e -c 'calicoctl get nodes'".to_string()), "{lines:#?}");
        // The probes stop at the end (no restart).
        assert!(lines.iter().any(|l| l.contains("rm -f /tmp/rrlab-probe-p.pid; fi'")));
    }

    #[test]
    fn probe_segments_add_up() {
        let p = Probe {
            name: "p".into(),
            access: opts().access("cluster1"),
            pod: "a".into(),
            dst: "1.2.3.4".into(),
            interval: Duration::from_millis(10),
            acc: RefCell::default(),
        };
        // 6 sent, replies 0, 2, 4 (busybox numbering), the 6th (seq 5) in flight.
        p.add("PING 1.2.3.4 (1.2.3.4): 56 data bytes\n64 bytes from 1.2.3.4: seq=0 ttl=64 time=0.1 ms\n64 bytes from 1.2.3.4: seq=2 ttl=64 time=0.1 ms\n64 bytes from 1.2.3.4: seq=4 ttl=64 time=0.1 ms\n\n--- 1.2.3.4 ping statistics ---\n6 packets transmitted, 3 packets received, 50% packet loss\nround-trip min/avg/max = 0.1/0.1/0.1 ms\n");
        assert_eq!(p.stats(), ProbeStats { sent: 5, received: 3, longest_outage: Duration::from_millis(10) });
        // A segment with nothing back continues the outage.
        p.add("PING 1.2.3.4 (1.2.3.4): 56 data bytes\n\n--- 1.2.3.4 ping statistics ---\n3 packets transmitted, 0 packets received, 100% packet loss\n");
        assert_eq!(p.stats(), ProbeStats { sent: 7, received: 3, longest_outage: Duration::from_millis(20) });
        p.add("");
        assert_eq!(p.stats().sent, 7);
    }

    #[test]
    fn harness_actions_map_to_kind_commands() {
        let t = topo("two-clusters.clab.yml");
        let o = opts();
        let r = RecordingRunner::new()
            .reply("get pods -l k8s-app=calico-node", StepOutput::ok(calico_pods_json("cluster1")));
        let v = KindView::new(&r, &t, &o);
        act(&v, &StepAction::StopBird("cluster1-worker".into())).unwrap();
        act(&v, &StepAction::RestartCalicoNode("cluster1-worker".into())).unwrap();
        act(&v, &StepAction::StopNode("cluster1-worker2".into())).unwrap();
        act(&v, &StepAction::Wan(WanAction::Loss { percent: 5.0 })).unwrap();
        let kc = "kubectl --kubeconfig /run/rrlab/two-clusters/kind/cluster1.kubeconfig --context kind-cluster1";
        assert_eq!(
            r.command_lines(),
            [
                format!("{kc} -n kube-system get pods -l k8s-app=calico-node -o json"),
                format!("{kc} -n kube-system exec calico-node-cluster11 -c calico-node -- sv stop /etc/service/enabled/bird"),
                format!("{kc} -n kube-system delete pod calico-node-cluster11"),
                "docker stop cluster1-worker2".to_string(),
                "containerlab tools netem set -n clab-two-clusters-wan -i eth1 --loss 5".to_string(),
                "containerlab tools netem set -n clab-two-clusters-wan -i eth2 --loss 5".to_string(),
            ]
        );
        assert_eq!(t.site_cidr("site-2").unwrap(), "10.2.1.0/24");
        assert!(t.site_cidr("nowhere").is_err());
    }
}
