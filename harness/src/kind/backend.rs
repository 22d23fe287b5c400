//! The kind backend as the step runner drives it ([`Backend`]), through a [`Runner`]: the observations are
//! the twin's ([`crate::backend::observe`]), read inside calico-node with `kubectl exec`.
//!
//! - nodes: the topology's clusters (names, sites, node IPs) with the live Kubernetes labels (`kubectl get
//!   nodes -o json`) and the probe pods `plan_up` creates (`<node>-p1`, `<node>-p2`, …, IPs from `kubectl get
//!   pod <pod> -o jsonpath={.status.podIP}`; an IP, once read, is kept: the pods are never recreated);
//! - [`Target::CalicoNode`]: `kubectl exec` into the node's calico-node pod (the node → pod map is read once
//!   and again after a command there fails: a restarted calico-node has a new pod name); BIRD is asked with
//!   `birdcl -s /var/run/calico/bird.ctl`; [`Target::Pod`]: `kubectl exec` into the pod; [`Target::Node`]:
//!   the kind node's container; [`Target::Wan`]: the host's own tools in the WAN container's network
//!   namespace ([`super::exec::in_wan`]: the WAN image need not have iptables or tc);
//! - `bird_config_error`: a heuristic over calico-node's log, see [`bird_config_error_from_logs`];
//! - operator commands: the step's whole script as one `bash -e -c '<script>'` against the step's cluster
//!   ([`super::exec::operator_command`]), one [`Outcome`]; with `bash -e` the first failing line stops it,
//!   but which line it was is not known (the twin reports per line);
//! - node actions: `sv stop|start /etc/service/enabled/bird` in calico-node (runit; calico-node's liveness
//!   probe includes `-bird-live`, so a BIRD stopped for longer than it tolerates, 6 × 10 s in the manifest,
//!   gets calico-node restarted by the kubelet), `docker stop|start` of the node's container, `kubectl
//!   delete pod` of its calico-node (the DaemonSet makes a new one);
//! - probes (simple, not the twin's UDP stream): a busybox `ping -i <1/rate s, ≥ 0.01>` runs in the source
//!   probe pod in the background. Every time the step's probe statistics are read, the ping is interrupted
//!   (SIGINT: busybox prints its statistics), its log read and parsed with [`crate::observe::parse_ping`], and
//!   a new ping started; a step's [`ProbeStats`] add up the segments (sent, received, longest run of missing
//!   sequence numbers × interval, continued across segments). A packet still in flight when a segment is
//!   interrupted is not counted; the moment between two segments is not measured.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::exec;
use super::parse;
use super::plan::{probe_pod_names, ClusterAccess, PlanOptions, PlanStep};
use super::runner::{run_step, ProcessRunner, Runner};
use crate::backend::observe::BIRD_SOCKET;
use crate::backend::{Backend, BackendError, BackendKind, NodeAction, Target, UpOptions};
use crate::model::topology::Topology;
use crate::observe::{parse_ping, ParseError};
use crate::process::Output;
use crate::runbook::lab::{NodeInfo, PodInfo, ProbeStats};
use crate::runbook::model::{PodSelector, ProbeSpec};
use crate::twin::commands::Outcome;

/// Step timeouts on kind are this many times the runbook's (real calico-node restarts and rollouts take
/// minutes where the twin takes seconds); `RRLAB_KIND_TIMEOUT_SCALE` overrides it.
pub const TIMEOUT_SCALE: f64 = 3.0;

/// `kubectl get nodes -o json` (parse with [`parse_node_labels`]).
pub fn nodes_step(a: &ClusterAccess) -> PlanStep {
    exec::kubectl(a, format!("{}: nodes", a.cluster), &["get", "nodes", "-o", "json"])
}

/// `kubectl logs -n kube-system <pod> -c calico-node --since=<since>` (read with
/// [`bird_config_error_from_logs`]).
pub fn calico_node_logs(a: &ClusterAccess, pod: &str, since: &str) -> PlanStep {
    exec::kubectl(
        a,
        format!("{pod}: calico-node log"),
        &["-n", exec::CALICO_NAMESPACE, "logs", pod, "-c", exec::CALICO_NODE_CONTAINER, &format!("--since={since}")],
    )
}

/// Node name → labels, from `kubectl get nodes -o json` (a `List`/`NodeList`, or one `Node`).
pub fn parse_node_labels(json: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>, ParseError> {
    const INPUT: &str = "kubectl get nodes -o json";
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| ParseError::new(INPUT, e.line(), "a JSON document", e.to_string()))?;
    let items: Vec<&serde_json::Value> = match v.get("kind").and_then(|k| k.as_str()).unwrap_or("") {
        "List" | "NodeList" => v
            .get("items")
            .and_then(|i| i.as_array())
            .ok_or_else(|| ParseError::new(INPUT, 0, "items", "a list without items"))?
            .iter()
            .collect(),
        "Node" => vec![&v],
        other => return Err(ParseError::new(INPUT, 0, "kind List, NodeList or Node", other)),
    };
    let mut out = BTreeMap::new();
    for it in items {
        let meta = it.get("metadata");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
            .ok_or_else(|| ParseError::new(INPUT, 0, "metadata.name", "a node without a name"))?;
        let labels = meta
            .and_then(|m| m.get("labels"))
            .and_then(|l| l.as_object())
            .map(|l| l.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
            .unwrap_or_default();
        out.insert(name.to_string(), labels);
    }
    Ok(out)
}

/// Unquote a Go `%q` string at the start of `s` (after optional spaces): (text, rest).
fn go_unquote(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let mut chars = s.char_indices();
    if chars.next()?.1 != '"' {
        return None;
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            },
            c => out.push(c),
        }
    }
    None
}

/// The confd destination a staged file stands for: `/etc/calico/confd/config/.bird.cfg123456` → `bird.cfg`.
fn staged_dest(cmd: &str) -> Option<String> {
    cmd.split_whitespace().find_map(|w| {
        let base = w.rsplit('/').next()?;
        let base = base.strip_prefix('.')?;
        Some(base.trim_end_matches(|c: char| c.is_ascii_digit()).to_string())
    })
}

const CHECKCMD: &str = "Error from checkcmd";

/// The error BIRD gave when it last rejected a new config, from calico-node's log. **A heuristic**:
/// calico-node's confd checks every staged BIRD file with its `check_cmd` (`bird -p -c <staged file>`), and
/// when that fails it logs `Error from checkcmd "<command>": "<output>"` (Calico's confd fork,
/// `pkg/resource/template/resource.go`, both Go `%q`-quoted) and keeps the old file; a file that passes is
/// logged as `Target config …/<file> has been updated`. So: the latest checkcmd error whose file (from the
/// staged name `.<file><digits>`) was not updated after it; its BIRD output, unquoted and trimmed (the rest
/// of the line when it does not have that shape). Only what the log window holds is seen (`--since`).
pub fn bird_config_error_from_logs(logs: &str) -> Option<String> {
    // file → (line index, message); "" when the file is unknown.
    let mut open: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for (i, l) in logs.lines().enumerate() {
        if let Some(p) = l.find(CHECKCMD) {
            let rest = &l[p + CHECKCMD.len()..];
            let (file, msg) = match go_unquote(rest) {
                Some((cmd, after)) => {
                    let after = after.trim_start().strip_prefix(':').unwrap_or(after);
                    let msg = go_unquote(after).map(|(o, _)| o).unwrap_or_else(|| after.trim().to_string());
                    (staged_dest(&cmd).unwrap_or_default(), msg)
                }
                None => (String::new(), rest.trim().to_string()),
            };
            let msg = msg.trim().to_string();
            open.insert(file, (i, if msg.is_empty() { rest.trim().to_string() } else { msg }));
        } else if l.contains("Target config") && l.contains("has been updated") {
            if let Some(f) = open.keys().find(|f| !f.is_empty() && l.contains(&format!("/{f}"))).cloned() {
                open.remove(&f);
            }
        }
    }
    open.into_values().max_by_key(|(i, _)| *i).map(|(_, m)| m)
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
    duplicates: u64,
    reordered: u64,
}

struct Probe {
    name: String,
    access: ClusterAccess,
    pod: String,
    dst: String,
    interval: Duration,
    acc: Mutex<Acc>,
}

impl Probe {
    fn step(&self, restart: bool) -> PlanStep {
        probe_cycle(
            &self.access,
            &self.name,
            &self.pod,
            &self.dst,
            &format!("{}", self.interval.as_secs_f64()),
            restart,
        )
    }

    /// Add a segment's ping output (busybox numbers from 0).
    fn add(&self, text: &str) {
        let Ok(r) = parse_ping(text) else { return };
        let replied: std::collections::BTreeSet<u32> = r.replied_seqs().into_iter().collect();
        let mut sent = u64::from(r.transmitted);
        let mut a = self.acc.lock().expect("probe");
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
        // Replies in arrival order: ping's `(DUP!)` lines and replies that overtook earlier ones.
        let arrivals: Vec<u64> = r.replies.iter().map(|x| u64::from(x.seq)).collect();
        let (dups, reordered) = crate::runner::probe::order_stats(&arrivals, 0, sent);
        a.duplicates += dups;
        a.reordered += reordered;
        a.sent += sent;
        a.received += (replied.iter().filter(|s| u64::from(**s) < sent).count()) as u64;
    }

    fn stats(&self) -> ProbeStats {
        let a = self.acc.lock().expect("probe");
        ProbeStats {
            sent: a.sent,
            received: a.received,
            longest_outage: self.interval * (a.longest as u32),
            duplicates: a.duplicates,
            reordered: a.reordered,
        }
    }
}

/// The node of one of rrlab's probe pods (`<node>-p<N>`, [`probe_pod_names`]).
pub fn probe_pod_node<'a>(topo: &Topology, pod: &'a str) -> Option<&'a str> {
    let (node, n) = pod.rsplit_once("-p")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && topo.cluster_of(node).is_some()).then_some(node)
}

/// A kind lab that is up, through a runner.
pub struct KindBackend {
    pub runner: Arc<dyn Runner>,
    pub topo: Topology,
    pub opts: PlanOptions,
    /// calico-node's log window for `bird_config_error` (`kubectl logs --since`, e.g. `10m`).
    pub log_since: String,
    /// Tear the clusters down at the end (false for a lab this run did not bring up).
    pub owned: bool,
    /// cluster → (node → calico-node pod).
    calico_pods: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    /// probe pod → IP.
    pod_ips: Mutex<BTreeMap<String, Ipv4Addr>>,
    probes: Vec<Probe>,
}

/// Bring a topology up on kind (the registry's `up`): the real tools, through [`ProcessRunner`].
pub fn up(topology: &Path, opts: &UpOptions, progress: &dyn Fn(&str)) -> Result<Box<dyn Backend>, BackendError> {
    let topo = crate::model::topology::load(topology).map_err(|e| BackendError::Usage(e.to_string()))?;
    refuse_named_nodes(&topo)?;
    let mut popts = PlanOptions::for_lab(&topo.name);
    popts.pods_per_node = opts.pods_per_node;
    Ok(Box::new(KindBackend::up(Arc::new(ProcessRunner), topo, popts, opts.reuse, progress)?))
}

/// kind names a cluster's node containers itself (`<cluster>-control-plane`, `<cluster>-worker`, …): a
/// topology whose nodes keep other names (`rrlab.io/node-names`, an imported cluster) runs on the twin.
pub fn refuse_named_nodes(topo: &Topology) -> Result<(), BackendError> {
    match topo.clusters.iter().find(|c| c.named_nodes) {
        None => Ok(()),
        Some(c) => Err(BackendError::Usage(format!(
            "{file}: cluster {c} names its nodes ({label}), but kind names them itself ({c}-control-plane, {c}-worker, …): rehearse this topology on the twin (--backend twin)",
            file = topo.file.display(),
            c = c.name,
            label = crate::model::topology::LABEL_NODE_NAMES
        ))),
    }
}

impl KindBackend {
    /// A lab over `runner`: brought up now with [`super::up`], or (`reuse`) taken as it is.
    pub fn up(
        runner: Arc<dyn Runner>,
        topo: Topology,
        opts: PlanOptions,
        reuse: bool,
        progress: &dyn Fn(&str),
    ) -> Result<KindBackend, BackendError> {
        if !reuse {
            let n = super::plan_up(&topo, &opts).steps.len();
            let report = super::up(&topo, &opts, runner.as_ref(), &mut |i, st| {
                progress(&format!("[{}/{n}] {}", i + 1, st.what))
            })?;
            for w in &report.warnings {
                progress(&format!("warning: {w}"));
            }
        }
        Ok(KindBackend::attach(runner, topo, opts, !reuse))
    }

    /// The lab as it is; `owned`: this run brought it up and tears it down.
    pub fn attach(runner: Arc<dyn Runner>, topo: Topology, opts: PlanOptions, owned: bool) -> KindBackend {
        KindBackend {
            runner,
            topo,
            opts,
            log_since: "1h".to_string(),
            owned,
            calico_pods: Mutex::default(),
            pod_ips: Mutex::default(),
            probes: Vec::new(),
        }
    }

    fn access_of(&self, node: &str) -> Result<ClusterAccess, BackendError> {
        let c = self
            .topo
            .cluster_of(node)
            .ok_or_else(|| BackendError::Usage(format!("{node} is not a node of any kind cluster")))?;
        Ok(self.opts.access(&c.name))
    }

    /// The node's calico-node pod (read once per cluster, again after it was forgotten).
    pub fn calico_pod(&self, node: &str) -> Result<(ClusterAccess, String), BackendError> {
        let a = self.access_of(node)?;
        if let Some(p) = self.calico_pods.lock().expect("pods").get(&a.cluster).and_then(|m| m.get(node)) {
            return Ok((a, p.clone()));
        }
        let out = run_step(self.runner.as_ref(), 0, &exec::calico_node_pods(&a))?;
        let map = parse::calico_node_pods(&out.stdout).map_err(|e| BackendError::Other(e.to_string()))?;
        let pod = map.get(node).cloned();
        self.calico_pods.lock().expect("pods").insert(a.cluster.clone(), map);
        let pod = pod.ok_or_else(|| BackendError::Other(format!("no calico-node pod runs on {node}")))?;
        Ok((a, pod))
    }

    fn pod_ip(&self, a: &ClusterAccess, pod: &str) -> Option<Ipv4Addr> {
        if let Some(ip) = self.pod_ips.lock().expect("pods").get(pod) {
            return Some(*ip);
        }
        let out = run_step(self.runner.as_ref(), 0, &exec::pod_ip(a, pod)).ok()?;
        let ip: Ipv4Addr = out.stdout.trim().parse().ok()?;
        self.pod_ips.lock().expect("pods").insert(pod.to_string(), ip);
        Some(ip)
    }

    fn run(&self, step: &PlanStep) -> Result<Output, BackendError> {
        self.runner.run(step).map_err(|e| BackendError::Other(format!("cannot run `{}`: {e}", step.command_line())))
    }

    fn run_ok(&self, step: &PlanStep) -> Result<(), BackendError> {
        run_step(self.runner.as_ref(), 0, step)?;
        Ok(())
    }

    fn probe_pod(&self, sel: &PodSelector) -> Result<PodInfo, BackendError> {
        let nodes = self.nodes();
        match sel {
            PodSelector::Pod(p) => nodes.iter().flat_map(|n| n.pods.iter()).find(|x| &x.name == p),
            PodSelector::Node(n) => nodes.iter().find(|x| &x.name == n).and_then(|n| n.pods.first()),
        }
        .cloned()
        .ok_or_else(|| BackendError::Usage(format!("probe endpoint {sel:?} matches no pod of the lab")))
    }
}

impl Backend for KindBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Kind
    }

    fn lab(&self) -> &str {
        &self.topo.name
    }

    fn topology(&self) -> &Topology {
        &self.topo
    }

    /// Nodes without an address in the topology and probe pods without an IP yet are left out; when the
    /// live labels cannot be read, the kind config's are used.
    fn nodes(&self) -> Vec<NodeInfo> {
        let mut out = Vec::new();
        for c in &self.topo.clusters {
            let a = self.opts.access(&c.name);
            let live =
                run_step(self.runner.as_ref(), 0, &nodes_step(&a)).ok().and_then(|o| parse_node_labels(&o.stdout).ok());
            for n in &c.nodes {
                let Some(ip) = self.topo.node_ip(&n.name) else { continue };
                let labels = live.as_ref().and_then(|m| m.get(&n.name).cloned()).unwrap_or_else(|| n.labels.clone());
                let pods = probe_pod_names(&n.name, self.opts.pods_per_node)
                    .into_iter()
                    .filter_map(|p| self.pod_ip(&a, &p).map(|ip| PodInfo { name: p, node: n.name.clone(), ip }))
                    .collect();
                out.push(NodeInfo {
                    name: n.name.clone(),
                    cluster: c.name.clone(),
                    site: self.topo.site_of(&n.name),
                    ip: ip.addr(),
                    labels,
                    pods,
                });
            }
        }
        out
    }

    fn exec(&self, target: Target<'_>, argv: &[&str]) -> Result<Output, BackendError> {
        match target {
            Target::CalicoNode(node) => {
                let (a, pod) = self.calico_pod(node)?;
                let mut args =
                    vec!["-n", exec::CALICO_NAMESPACE, "exec", &pod, "-c", exec::CALICO_NODE_CONTAINER, "--"];
                args.extend_from_slice(argv);
                let out = self.run(&exec::kubectl(&a, format!("{node}: {}", argv.join(" ")), &args))?;
                if !out.success() {
                    // The pod may have been replaced: read the map again next time.
                    self.calico_pods.lock().expect("pods").remove(&a.cluster);
                }
                Ok(out)
            }
            Target::Pod(pod) => {
                let node = probe_pod_node(&self.topo, pod)
                    .ok_or_else(|| BackendError::Usage(format!("{pod} is not one of rrlab's probe pods")))?;
                let a = self.access_of(node)?;
                let mut args = vec!["-n", "default", "exec", pod, "--"];
                args.extend_from_slice(argv);
                self.run(&exec::kubectl(&a, format!("{pod}: {}", argv.join(" ")), &args))
            }
            Target::Node(node) => {
                let op = super::docker_ops::DockerOp::Exec {
                    container: self.topo.container_name(node),
                    argv: argv.iter().map(|s| s.to_string()).collect(),
                };
                self.run(&PlanStep::docker(format!("{node}: {}", argv.join(" ")), op))
            }
            Target::Wan => {
                let step = exec::in_wan(&self.topo, "WAN", argv)
                    .ok_or_else(|| BackendError::Usage("the topology has no WAN (linux) node".into()))?;
                self.run(&step)
            }
        }
    }

    fn bird(&self, node: &str, query: &str) -> Result<String, BackendError> {
        let mut argv = vec![exec::BIRDCL, "-s", BIRD_SOCKET];
        argv.extend(query.split_whitespace());
        let out = self.exec(Target::CalicoNode(node), &argv)?;
        crate::process::checked(&argv, out)
            .map_err(|source| BackendError::Process { target: Target::CalicoNode(node).to_string(), source })
    }

    fn read_file(&self, node: &str, path: &str) -> Result<String, BackendError> {
        let argv = ["cat", path];
        let out = self.exec(Target::CalicoNode(node), &argv)?;
        crate::process::checked(&argv, out)
            .map_err(|source| BackendError::Process { target: Target::CalicoNode(node).to_string(), source })
    }

    fn bird_config_error(&self, node: &str) -> Option<String> {
        let (a, pod) = self.calico_pod(node).ok()?;
        let out = run_step(self.runner.as_ref(), 0, &calico_node_logs(&a, &pod, &self.log_since)).ok()?;
        bird_config_error_from_logs(&out.stdout)
    }

    fn run_commands(&mut self, cluster: &str, _label: &str, script: &str) -> Result<Vec<Outcome>, BackendError> {
        let o = self.run(&exec::operator_command(&self.opts.access(cluster), script))?;
        Ok(vec![Outcome {
            line: 1,
            command: script.trim_end().to_string(),
            ok: o.success(),
            stdout: o.stdout,
            stderr: o.stderr,
            changed: false,
        }])
    }

    fn node_action(&mut self, node: &str, action: NodeAction) -> Result<(), BackendError> {
        match action {
            NodeAction::StopBird | NodeAction::StartBird => {
                let (a, pod) = self.calico_pod(node)?;
                self.run_ok(&bird_service(&a, node, &pod, action == NodeAction::StartBird))
            }
            NodeAction::StopNode => self.run_ok(&exec::node_container(&self.topo, node, false)),
            NodeAction::StartNode => self.run_ok(&exec::node_container(&self.topo, node, true)),
            NodeAction::FreezeNode => self.run_ok(&exec::freeze_container(&self.topo, node, true)),
            NodeAction::ThawNode => self.run_ok(&exec::freeze_container(&self.topo, node, false)),
            NodeAction::RestartCalicoNode => {
                let (a, pod) = self.calico_pod(node)?;
                let r = self.run_ok(&delete_calico_node(&a, node, &pod));
                self.calico_pods.lock().expect("pods").clear();
                r
            }
        }
    }

    fn set_link(&mut self, node: &str, iface: &str, up: bool) -> Result<(), BackendError> {
        let step = exec::set_link(&self.topo, node, iface, up)
            .ok_or_else(|| BackendError::Usage(format!("node {node} has no link on {iface}")))?;
        self.run_ok(&step)
    }

    fn start_probes(&mut self, specs: &[ProbeSpec]) -> Result<(), BackendError> {
        let mut out = Vec::new();
        for p in specs {
            let from = self.probe_pod(&p.from)?;
            let to = self.probe_pod(&p.to)?;
            out.push(Probe {
                name: p.name.clone(),
                access: self.access_of(&from.node)?,
                pod: from.name,
                dst: to.ip.to_string(),
                interval: Duration::from_micros(1_000_000 / u64::from(p.rate_pps.clamp(1, 100))),
                acc: Mutex::default(),
            });
        }
        self.probes = out;
        Ok(())
    }

    fn mark_probes(&mut self) {
        for p in &self.probes {
            *p.acc.lock().expect("probe") = Acc::default();
            let _ = self.runner.run(&p.step(true));
        }
    }

    fn probe_stats(&self) -> BTreeMap<String, ProbeStats> {
        let mut stats = BTreeMap::new();
        for p in &self.probes {
            if let Ok(out) = self.runner.run(&p.step(true)) {
                p.add(&out.stdout);
            }
            stats.insert(p.name.clone(), p.stats());
        }
        stats
    }

    fn timeout_scale(&self) -> f64 {
        std::env::var("RRLAB_KIND_TIMEOUT_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(TIMEOUT_SCALE)
    }

    /// calico-node's pods and the last lines of each calico-node's log, read before teardown.
    fn failure_dump(&self) -> String {
        let mut s = String::new();
        for c in &self.topo.clusters {
            let a = self.opts.access(&c.name);
            let pods = exec::kubectl(&a, "pods", &["get", "pods", "-A", "-o", "wide"]);
            s.push_str(&format!("--- {}: kubectl get pods -A -o wide\n", c.name));
            match self.run(&pods) {
                Ok(o) => s.push_str(&o.stdout),
                Err(e) => s.push_str(&format!("(unavailable: {e})\n")),
            }
            for n in &c.nodes {
                if let Ok((a, pod)) = self.calico_pod(&n.name) {
                    s.push_str(&format!("--- {}: calico-node log ({pod}, last 40 lines)\n", n.name));
                    let logs = exec::kubectl(
                        &a,
                        "logs",
                        &["-n", exec::CALICO_NAMESPACE, "logs", &pod, "-c", exec::CALICO_NODE_CONTAINER, "--tail=40"],
                    );
                    match self.run(&logs) {
                        Ok(o) => s.push_str(&o.stdout),
                        Err(e) => s.push_str(&format!("(unavailable: {e})\n")),
                    }
                }
            }
        }
        s
    }

    fn teardown(&mut self) -> Result<Vec<String>, BackendError> {
        for p in &self.probes {
            let _ = self.runner.run(&p.step(false));
        }
        if !self.owned {
            return Ok(vec![format!("lab {} kept: this run did not bring it up", self.topo.name)]);
        }
        // The WAN's userspace impairment runs with the host's tools in the WAN container's namespace: it would
        // outlive the container, so it is stopped first (by the pids it recorded; nothing when none ran).
        if crate::wan::wan_node(&self.topo).is_some() {
            let _ = crate::wan::apply(self, &[crate::wan::impaird_stop(&self.topo.name)]);
        }
        let t = super::down(&self.topo, &self.opts, self.runner.as_ref(), &mut |_, _| {})?;
        Ok(vec![t.to_string()])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::backend::observe::SeamView;
    use crate::kind::plan::{plan_down, plan_up};
    use crate::kind::runner::{RecordingRunner, StepOutput};
    use crate::kind::versions::Arch;
    use crate::runbook::lab::LabView;
    use crate::wan::WanCounters;
    use std::path::Path;

    pub(crate) fn topo(name: &str) -> Topology {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("topologies").join(name);
        crate::model::topology::load(&p).unwrap()
    }

    pub(crate) fn opts() -> PlanOptions {
        let mut o = PlanOptions::for_lab("two-clusters");
        o.arch = Arch::Amd64;
        o.host_path = "/usr/bin:/bin".into();
        o
    }

    /// A sample from kind/testdata or observe/testdata, without `# source:` lines.
    pub(crate) fn sample(dir: &str, name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir).join("testdata").join(name);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        text.lines().filter(|l| !l.starts_with("# source:")).map(|l| format!("{l}\n")).collect()
    }

    /// `kubectl get nodes -o json` for cluster1, written here (no public real sample found): the List
    /// envelope kubectl prints, with the labels kind and kubeadm put on nodes and one added by a runbook.
    pub(crate) const NODES_JSON: &str = r#"{
    "apiVersion": "v1",
    "items": [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cluster1-control-plane", "labels": {
            "kubernetes.io/hostname": "cluster1-control-plane", "kubernetes.io/os": "linux",
            "node-role.kubernetes.io/control-plane": ""}}},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cluster1-worker", "labels": {
            "kubernetes.io/hostname": "cluster1-worker", "route-reflector": "true"}}},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cluster1-worker2", "labels": {
            "kubernetes.io/hostname": "cluster1-worker2"}}}
    ],
    "kind": "List",
    "metadata": {"resourceVersion": ""}
}"#;

    /// calico-node pods of cluster1 (the real kind pod JSON's shape; see kind/tests.rs for the List).
    pub(crate) fn calico_pods_json(cluster: &str) -> String {
        let pod = |n: &str, p: &str| {
            format!(
                r#"{{"kind":"Pod","metadata":{{"name":"{p}","namespace":"kube-system","labels":{{"k8s-app":"calico-node"}}}},"spec":{{"nodeName":"{n}","hostNetwork":true}},"status":{{"phase":"Running","conditions":[{{"type":"Ready","status":"True"}}]}}}}"#
            )
        };
        let items: Vec<String> = ["control-plane", "worker", "worker2"]
            .iter()
            .enumerate()
            .map(|(i, r)| pod(&format!("{cluster}-{r}"), &format!("calico-node-{cluster}{i}")))
            .collect();
        format!(r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#, items.join(","))
    }

    /// The WAN's `iptables-save -c -t filter` with the chains plan_up installs, written here in the format
    /// of the real `observe/testdata/iptables-save-c-b.txt` (iptables 1.8.9 prints `-p 4` as `-p ipencap`).
    pub(crate) const WAN_SAVE: &str = "# Generated by iptables-save v1.8.9 (nf_tables) on Wed Nov 25 13:31:54 2026\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [120:9000]\n:OUTPUT ACCEPT [0:0]\n:rrlab-IMPAIR - [0:0]\n:rrlab-WAN - [0:0]\n[120:9000] -A FORWARD -j rrlab-WAN\n[120:9000] -A FORWARD -j rrlab-IMPAIR\n[40:2600] -A rrlab-WAN -p tcp -m tcp --dport 179 -m comment --comment bgp-to-179\n[38:2500] -A rrlab-WAN -p tcp -m tcp --sport 179 -m comment --comment bgp-from-179\n[42:3900] -A rrlab-WAN -p ipencap -m comment --comment ipip\nCOMMIT\n# Completed on Wed Nov 25 13:31:54 2026\n";

    /// A kind lab over a recording runner (taken as up: no bring-up).
    pub(crate) fn lab_on(r: RecordingRunner) -> (Arc<RecordingRunner>, KindBackend) {
        let r = Arc::new(r);
        let b = KindBackend::attach(r.clone(), topo("two-clusters.clab.yml"), opts(), false);
        (r, b)
    }

    fn lab_runner() -> RecordingRunner {
        RecordingRunner::new()
            .reply("get nodes -o json", StepOutput::ok(NODES_JSON))
            .reply("get pod cluster1-control-plane-p1 -o", StepOutput::ok("172.16.10.1"))
            .reply("get pod cluster1-control-plane-p2 -o", StepOutput::ok("172.16.10.2"))
            .reply("get pod cluster1-worker-p1 -o", StepOutput::ok("172.16.20.1"))
            .reply("get pod cluster1-worker-p2 -o", StepOutput::ok("172.16.20.2"))
            .reply("get pod cluster1-worker2-p1 -o", StepOutput::ok("172.16.30.1"))
            .reply("get pod cluster1-worker2-p2 -o", StepOutput::ok(""))
            .reply("-o 'jsonpath", StepOutput::failed(1, "Error from server (NotFound): pods \"x\" not found"))
            .reply(
                "kind-cluster1 -n kube-system get pods -l k8s-app=calico-node",
                StepOutput::ok(calico_pods_json("cluster1")),
            )
            .reply("show protocols", StepOutput::ok(sample("kind", "calico-node-birdcl-show-protocols.txt")))
            .reply("show route all", StepOutput::ok(sample("observe", "bird-b-show-route-all.txt")))
            .reply("ip -j route show table main", StepOutput::ok(sample("observe", "ip-b-j-route.json")))
            .reply("ipset list", StepOutput::ok(sample("observe", "ipset-b-list.txt")))
            .reply("rrlab-wan iptables-save -c -t filter", StepOutput::ok(WAN_SAVE))
            .reply("iptables-nft-save -c", StepOutput::ok(sample("observe", "iptables-save-c-b.txt")))
            .reply("confd/config/bird.cfg", StepOutput::ok(sample("observe", "a.cfg")))
            .reply("confd/config/bird_ipam.cfg", StepOutput::ok("# ipam\n"))
            .reply("confd/config/bird_aggr.cfg", StepOutput::ok("# aggr\n"))
            .reply("ping -c 1 -W 1 172.16.20.1", StepOutput::ok(sample("observe", "ping-ok.txt")))
            .reply(
                "ping -c 1 -W 1",
                StepOutput { status: Some(1), ..StepOutput::ok(sample("observe", "ping-loss.txt")) },
            )
    }

    #[test]
    fn nodes_from_topology_live_labels_and_probe_pods() {
        let (r, b) = lab_on(lab_runner());
        let nodes = b.nodes();
        let c1: Vec<&NodeInfo> = nodes.iter().filter(|n| n.cluster == "cluster1").collect();
        assert_eq!(
            c1.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["cluster1-control-plane", "cluster1-worker", "cluster1-worker2"]
        );
        let w = c1[1];
        assert_eq!(w.ip, Ipv4Addr::new(10, 1, 1, 3));
        assert_eq!(w.site.as_deref(), Some("site-1"));
        assert_eq!(w.labels.get("route-reflector").map(String::as_str), Some("true"));
        assert_eq!(
            w.pods,
            vec![
                PodInfo {
                    name: "cluster1-worker-p1".into(),
                    node: "cluster1-worker".into(),
                    ip: Ipv4Addr::new(172, 16, 20, 1)
                },
                PodInfo {
                    name: "cluster1-worker-p2".into(),
                    node: "cluster1-worker".into(),
                    ip: Ipv4Addr::new(172, 16, 20, 2)
                },
            ]
        );
        // A pod without an IP yet is left out.
        assert_eq!(c1[2].pods.len(), 1);
        // Exact commands for cluster1's nodes and the first pod IP.
        let lines = r.command_lines();
        assert_eq!(lines[0], "kubectl --kubeconfig /run/rrlab/two-clusters/kind/cluster1.kubeconfig --context kind-cluster1 get nodes -o json");
        assert_eq!(lines[1], "kubectl --kubeconfig /run/rrlab/two-clusters/kind/cluster1.kubeconfig --context kind-cluster1 -n default get pod cluster1-control-plane-p1 -o 'jsonpath={.status.podIP}'");
        // IPs are read once.
        let before = r.command_lines().len();
        let _ = b.nodes();
        let again: Vec<String> = r.command_lines()[before..].to_vec();
        assert!(again.iter().all(|l| !l.contains("cluster1-worker-p1")), "{again:#?}");
        assert!(again.iter().any(|l| l.contains("cluster1-worker2-p2")), "pods without IP are asked again");
    }

    #[test]
    fn observations_go_through_calico_node_and_the_twins_parsers() {
        let (r, b) = lab_on(lab_runner());
        let v = SeamView::new(&b);
        let p = v.protocols("cluster1-worker").unwrap();
        assert!(p.iter().any(|x| x.proto == "BGP"), "{p:?}");
        assert_eq!(
            r.command_lines(),
            [
                "kubectl --kubeconfig /run/rrlab/two-clusters/kind/cluster1.kubeconfig --context kind-cluster1 -n kube-system get pods -l k8s-app=calico-node -o json",
                "kubectl --kubeconfig /run/rrlab/two-clusters/kind/cluster1.kubeconfig --context kind-cluster1 -n kube-system exec calico-node-cluster11 -c calico-node -- birdcl -s /var/run/calico/bird.ctl show protocols",
            ]
        );
        assert!(!v.rib("cluster1-worker").unwrap().is_empty());
        assert!(!v.fib("cluster1-worker").unwrap().is_empty());
        assert!(!v.ipsets("cluster1-worker").unwrap().is_empty());
        assert!(v
            .iptables("cluster1-worker")
            .unwrap()
            .rule_by_comment("cali-INPUT", "Allow IPIP packets from Calico hosts")
            .is_some());
        let cfg = v.config("cluster1-worker").unwrap();
        assert_eq!(cfg.keys().collect::<Vec<_>>(), ["bird.cfg", "bird_aggr.cfg", "bird_ipam.cfg"]);
        // The pod map was read once.
        assert_eq!(r.command_lines().iter().filter(|l| l.contains("k8s-app=calico-node")).count(), 1);
        // Unknown nodes are errors, not commands.
        assert!(v.protocols("wan").unwrap_err().to_string().contains("not a node of any kind cluster"));
        // Felix's iptables: the nft dump has Calico's chains, so the legacy one is not read.
        assert!(r.command_lines().iter().all(|l| !l.contains("iptables-legacy-save")));
    }

    #[test]
    fn a_failed_observation_reads_the_pod_map_again() {
        let r = RecordingRunner::new()
            .reply("get pods -l k8s-app=calico-node", StepOutput::ok(calico_pods_json("cluster1")))
            .reply(
                "show protocols",
                StepOutput::failed(1, "Error from server (NotFound): pods \"calico-node-cluster11\" not found"),
            );
        let (r, b) = lab_on(r);
        let v = SeamView::new(&b);
        assert!(v.protocols("cluster1-worker").unwrap_err().to_string().contains("NotFound"));
        let _ = v.protocols("cluster1-worker");
        assert_eq!(r.command_lines().iter().filter(|l| l.contains("k8s-app=calico-node")).count(), 2);
    }

    #[test]
    fn ping_and_wan() {
        let (r, b) = lab_on(lab_runner());
        let v = SeamView::new(&b);
        let a = PodInfo {
            name: "cluster1-control-plane-p1".into(),
            node: "cluster1-control-plane".into(),
            ip: Ipv4Addr::new(172, 16, 10, 1),
        };
        let b = PodInfo {
            name: "cluster1-worker-p1".into(),
            node: "cluster1-worker".into(),
            ip: Ipv4Addr::new(172, 16, 20, 1),
        };
        let c = PodInfo {
            name: "cluster1-worker2-p1".into(),
            node: "cluster1-worker2".into(),
            ip: Ipv4Addr::new(172, 16, 30, 1),
        };
        assert!(v.ping(&a, &b));
        assert!(!v.ping(&a, &c));
        assert_eq!(r.command_lines()[0], "kubectl --kubeconfig /run/rrlab/two-clusters/kind/cluster1.kubeconfig --context kind-cluster1 -n default exec cluster1-control-plane-p1 -- ping -c 1 -W 1 172.16.20.1");
        let w = v.wan().unwrap();
        assert_eq!(w, WanCounters { bgp_packets: 78, bgp_bytes: 5100, ipip_packets: 42, ipip_bytes: 3900 });
        assert!(r.command_lines().last().unwrap().ends_with(" rrlab-wan iptables-save -c -t filter"));
    }

    #[test]
    fn bird_config_error_from_calico_node_logs() {
        // Lines in calico-node's log format; the checkcmd line is confd's `Errorf("Error from checkcmd %q:
        // %q", cmd, output)` with BIRD's real rejection text (observe/testdata/raw-b-configure-errors.txt
        // has BIRD's own wording for config errors).
        let logs = "2026-03-20 10:00:01.000 [INFO][81] confd/resource.go 277: Target config /etc/calico/confd/config/bird.cfg has been updated\n\
2026-03-20 10:00:05.000 [ERROR][81] confd/resource.go 305: Error from checkcmd \"bird -p -c /etc/calico/confd/config/.bird.cfg3620150917\": \"bird: /etc/calico/confd/config/.bird.cfg3620150917:77:1 Remote AS number must be set\\n\"\n\
2026-03-20 10:00:06.000 [INFO][81] confd/resource.go 277: Target config %s has been updated/etc/calico/confd/config/bird_ipam.cfg\n";
        assert_eq!(
            bird_config_error_from_logs(logs).as_deref(),
            Some("bird: /etc/calico/confd/config/.bird.cfg3620150917:77:1 Remote AS number must be set")
        );
        // bird.cfg accepted later: no error any more.
        let fixed = format!("{logs}2026-03-20 10:00:09.000 [INFO][81] confd/resource.go 277: Target config %s has been updated/etc/calico/confd/config/bird.cfg\n");
        assert_eq!(bird_config_error_from_logs(&fixed), None);
        assert_eq!(bird_config_error_from_logs(""), None);
        // An unexpected shape still returns the line's text.
        assert_eq!(
            bird_config_error_from_logs("x Error from checkcmd something odd").as_deref(),
            Some("something odd")
        );

        let (r, mut b) = lab_on(
            RecordingRunner::new()
                .reply("get pods -l k8s-app=calico-node", StepOutput::ok(calico_pods_json("cluster1")))
                .reply(" logs ", StepOutput::ok(logs)),
        );
        b.log_since = "120s".into();
        assert!(b.bird_config_error("cluster1-worker").unwrap().contains("Remote AS number must be set"));
        assert_eq!(
            r.command_lines()[1],
            "kubectl --kubeconfig /run/rrlab/two-clusters/kind/cluster1.kubeconfig --context kind-cluster1 -n kube-system logs calico-node-cluster11 -c calico-node --since=120s"
        );
    }

    #[test]
    fn probe_pods_belong_to_their_nodes() {
        let t = topo("two-clusters.clab.yml");
        assert_eq!(probe_pod_node(&t, "cluster1-worker2-p1"), Some("cluster1-worker2"));
        assert_eq!(probe_pod_node(&t, "cluster1-worker-p12"), Some("cluster1-worker"));
        assert_eq!(probe_pod_node(&t, "nginx-pod"), None);
        assert_eq!(probe_pod_node(&t, "elsewhere-p1"), None);
        assert_eq!(probe_pod_node(&t, "cluster1-worker-px"), None);
    }

    #[test]
    fn node_labels_json() {
        let m = parse_node_labels(NODES_JSON).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            m["cluster1-control-plane"].get("node-role.kubernetes.io/control-plane").map(String::as_str),
            Some("")
        );
        assert!(parse_node_labels("{\"kind\":\"Pod\"}").is_err());
        assert!(parse_node_labels("nope").is_err());
    }

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

    fn tiny_runner() -> RecordingRunner {
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
        let r = Arc::new(tiny_runner());
        let mut po = opts();
        po.strict_versions = false; // the recording runner prints no tool versions
        let rb = crate::runbook::load(&rb).unwrap();
        let t = topo("two-clusters.clab.yml");
        let lab = KindBackend::up(r.clone(), t.clone(), po.clone(), false, &|_| {}).unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let on_step = |s: &crate::report::StepReport| seen.lock().unwrap().push(crate::report::step_line(s));
        let ev = crate::runner::Callbacks { on_step: &on_step, progress: &|_| {} };
        static NEVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let res = crate::runner::run_on(Box::new(lab), &rb, &Default::default(), Duration::ZERO, &ev, &NEVER).unwrap();
        assert_eq!(res.steps.len(), 3);
        assert!(res.steps[0].passed, "{}", crate::report::failure_text(&res.steps[0]));
        assert!(res.steps[1].passed, "{}", crate::report::failure_text(&res.steps[1]));
        assert!(!res.steps[2].passed);
        assert!(
            crate::report::failure_text(&res.steps[2]).contains("Invalid resource type: nodez"),
            "{}",
            crate::report::failure_text(&res.steps[2])
        );
        assert_eq!(seen.lock().unwrap().len(), 3);

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
        let start = lines.iter().position(|l| l.contains("rrlab-IMPAIR -s 10.1.1.0/24")).unwrap() - 4;
        let end = lines.iter().position(|l| l.contains("calicoctl get nodez")).unwrap() - 4;
        const WAN: &str = r#"sh -c 'pid=$(docker inspect -f '\''{{.State.Pid}}'\'' clab-two-clusters-wan) && exec nsenter -t "$pid" -n -- "$@"' rrlab-wan"#;
        let kc2 = "kubectl --kubeconfig /run/rrlab/two-clusters/kind/cluster2.kubeconfig --context kind-cluster2";
        assert_eq!(
            lines[start..start + 9],
            [
                probe.clone(),
                format!("{kc} get nodes -o json"),
                format!("{kc2} get nodes -o json"),
                // The WAN's counters when the step starts ...
                format!("{WAN} iptables-save -c -t filter"),
                format!("{WAN} iptables -I rrlab-IMPAIR -s 10.1.1.0/24 -d 10.2.1.0/24 -m comment --comment partition -j DROP"),
                format!("{WAN} iptables -I rrlab-IMPAIR -s 10.2.1.0/24 -d 10.1.1.0/24 -m comment --comment partition -j DROP"),
                probe.clone(),
                probe.clone(),
                // ... and when it ends, with the sessions crossing the WAN (every node's BIRD, read concurrently).
                format!("{WAN} iptables-save -c -t filter"),
            ]
        );
        let mut tail = lines[start + 9..end].to_vec();
        tail.sort();
        let birdcl = |pod: &str| {
            format!(
                "{kc} -n kube-system exec {pod} -c calico-node -- birdcl -s /var/run/calico/bird.ctl show protocols"
            )
        };
        let pods2 = format!("{kc2} -n kube-system get pods -l k8s-app=calico-node -o json");
        let mut want = vec![
            format!("{kc} get nodes -o json"),
            format!("{kc2} get nodes -o json"),
            birdcl("calico-node-cluster10"),
            birdcl("calico-node-cluster11"),
            birdcl("calico-node-cluster12"),
            pods2.clone(),
            pods2.clone(),
            pods2,
        ];
        want.sort();
        assert_eq!(tail, want);
        assert_eq!(
            lines[end..end + 4],
            [
                probe.clone(),
                format!("{kc} get nodes -o json"),
                format!("{kc2} get nodes -o json"),
                format!("{WAN} iptables-save -c -t filter")
            ]
        );
        // Step 1's script ran as typed, by bash -e, against cluster1.
        assert!(lines.contains(&"KUBECONFIG=/run/rrlab/two-clusters/kind/cluster1.kubeconfig DATASTORE_TYPE=kubernetes PATH=/var/lib/rrlab/kind/bin:/usr/bin:/bin bash -e -c 'calicoctl get nodes'".to_string()), "{lines:#?}");
        // The probes stop at the end (no restart).
        assert!(lines.iter().any(|l| l.contains("rm -f /tmp/rrlab-probe-p.pid; fi'")));
        // Defect (review, kind 9): the failing step's dump (calico-node's pods and logs) is read while the lab
        // is up, before the teardown's first command; it is in the step's report.
        let first_down = lines.len() - down.len();
        let logs = lines.iter().position(|l| l.contains("-c calico-node --tail=40")).expect("calico-node logs read");
        assert!(logs < first_down, "logs read at {logs}, teardown from {first_down}");
        let dump = res.steps[2].dump.as_deref().unwrap();
        assert!(dump.contains("kubectl get pods -A -o wide") && dump.contains("calico-node log"), "{dump}");
    }

    #[test]
    fn probe_segments_add_up() {
        let p = Probe {
            name: "p".into(),
            access: opts().access("cluster1"),
            pod: "a".into(),
            dst: "1.2.3.4".into(),
            interval: Duration::from_millis(10),
            acc: Mutex::default(),
        };
        // 6 sent, replies 0, 2, 4 (busybox numbering), the 6th (seq 5) in flight.
        p.add("PING 1.2.3.4 (1.2.3.4): 56 data bytes\n64 bytes from 1.2.3.4: seq=0 ttl=64 time=0.1 ms\n64 bytes from 1.2.3.4: seq=2 ttl=64 time=0.1 ms\n64 bytes from 1.2.3.4: seq=4 ttl=64 time=0.1 ms\n\n--- 1.2.3.4 ping statistics ---\n6 packets transmitted, 3 packets received, 50% packet loss\nround-trip min/avg/max = 0.1/0.1/0.1 ms\n");
        assert_eq!(
            p.stats(),
            ProbeStats { sent: 5, received: 3, longest_outage: Duration::from_millis(10), ..Default::default() }
        );
        // A segment with nothing back continues the outage.
        p.add("PING 1.2.3.4 (1.2.3.4): 56 data bytes\n\n--- 1.2.3.4 ping statistics ---\n3 packets transmitted, 0 packets received, 100% packet loss\n");
        assert_eq!(
            p.stats(),
            ProbeStats { sent: 7, received: 3, longest_outage: Duration::from_millis(20), ..Default::default() }
        );
        p.add("");
        assert_eq!(p.stats().sent, 7);
        // A WAN that reorders and duplicates: seq 1 after seq 2, seq 2 twice (busybox marks the copy `(DUP!)`).
        p.add("PING 1.2.3.4 (1.2.3.4): 56 data bytes\n64 bytes from 1.2.3.4: seq=0 ttl=64 time=40.1 ms\n64 bytes from 1.2.3.4: seq=2 ttl=64 time=40.2 ms\n64 bytes from 1.2.3.4: seq=1 ttl=64 time=52.0 ms\n64 bytes from 1.2.3.4: seq=2 ttl=64 time=40.3 ms (DUP!)\n64 bytes from 1.2.3.4: seq=3 ttl=64 time=40.1 ms\n\n--- 1.2.3.4 ping statistics ---\n4 packets transmitted, 4 packets received, +1 duplicates, 0% packet loss\nround-trip min/avg/max = 40.1/42.5/52.0 ms\n");
        let st = p.stats();
        assert_eq!((st.sent, st.received, st.duplicates, st.reordered), (11, 7, 1, 1));
    }

    #[test]
    fn harness_actions_map_to_kind_commands() {
        use crate::runbook::model::{StepAction, WanAction};
        let t = topo("two-clusters.clab.yml");
        let (r, mut b) = lab_on(
            RecordingRunner::new()
                .reply("get pods -l k8s-app=calico-node", StepOutput::ok(calico_pods_json("cluster1"))),
        );
        let act = crate::runner::act;
        act(&mut b, &StepAction::StopBird("cluster1-worker".into())).unwrap();
        act(&mut b, &StepAction::RestartCalicoNode("cluster1-worker".into())).unwrap();
        act(&mut b, &StepAction::StopNode("cluster1-worker2".into())).unwrap();
        act(&mut b, &StepAction::Wan(WanAction::Loss { percent: 5.0 })).unwrap();
        const WAN: &str = r#"sh -c 'pid=$(docker inspect -f '\''{{.State.Pid}}'\'' clab-two-clusters-wan) && exec nsenter -t "$pid" -n -- "$@"' rrlab-wan"#;
        let kc = "kubectl --kubeconfig /run/rrlab/two-clusters/kind/cluster1.kubeconfig --context kind-cluster1";
        assert_eq!(
            r.command_lines(),
            [
                format!("{kc} -n kube-system get pods -l k8s-app=calico-node -o json"),
                format!("{kc} -n kube-system exec calico-node-cluster11 -c calico-node -- sv stop /etc/service/enabled/bird"),
                format!("{kc} -n kube-system delete pod calico-node-cluster11"),
                "docker stop cluster1-worker2".to_string(),
                format!("{WAN} iptables -I rrlab-IMPAIR -m statistic --mode random --probability 0.0500 -m comment --comment loss -j DROP"),
            ]
        );
        assert_eq!(t.site_cidr("site-2").unwrap(), "10.2.1.0/24");
        assert!(t.site_cidr("nowhere").is_err());
    }
}
