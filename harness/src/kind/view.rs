//! A running kind lab as runbook expectations see it ([`LabView`]), through a [`Runner`]: the same
//! observations and parsers as the twin ([`crate::observe`]), read inside calico-node with `kubectl exec`.
//!
//! - nodes: the topology's clusters (names, sites, node IPs) with the live Kubernetes labels (`kubectl get
//!   nodes -o json`) and the probe pods `plan_up` creates (`<node>-p1`, `<node>-p2`, …, IPs from `kubectl get
//!   pod <pod> -o jsonpath={.status.podIP}`; an IP, once read, is kept: the pods are never recreated);
//! - BIRD, FIB, ipsets, iptables, confd files: [`super::exec::Observation`]s in the node's calico-node pod.
//!   The node → pod map is read once and read again after an observation fails (a restarted calico-node
//!   has a new pod name);
//! - `bird_config_error`: a heuristic over calico-node's log, see [`bird_config_error_from_logs`];
//! - ping: one busybox `ping -c 1 -W 1` from the source probe pod;
//! - WAN: `iptables-save -c -t filter` in the WAN container, the rule counters of the `rrlab-WAN` chain (the
//!   chain and comments `plan_up` installs, as the twin's WAN has them).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::exec::{self, Observation};
use super::fidelity::CONFD_FILES;
use super::parse;
use super::plan::{probe_pod_names, ClusterAccess, PlanOptions, PlanStep};
use super::runner::{run_step, Runner};
use crate::lab::wan::WanCounters;
use crate::model::topology::Topology;
use crate::observe::{
    parse_ip_route_json, parse_ipset, parse_iptables_save, parse_ping, parse_protocols, parse_routes, IpSet, IpTables,
    KernelRoute, ParseError, Protocol, Route,
};
use crate::runbook::lab::{LabView, NodeInfo, PodInfo};

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

/// The WAN counters from the WAN's `iptables-save -c -t filter`: the `rrlab-WAN` chain's rules with the
/// comments `bgp-to-179`, `bgp-from-179` (BGP) and `ipip` (as [`crate::lab::wan::counters`] reads them).
pub fn wan_counters_from(t: &IpTables) -> WanCounters {
    let mut c = WanCounters::default();
    for (comment, bgp) in [("bgp-to-179", true), ("bgp-from-179", true), ("ipip", false)] {
        if let Some(r) = t.rule_by_comment(crate::lab::wan::CHAIN, comment) {
            let (p, b) = r.counters.map(|c| (c.packets, c.bytes)).unwrap_or((0, 0));
            if bgp {
                c.bgp_packets += p;
                c.bgp_bytes += b;
            } else {
                c.ipip_packets += p;
                c.ipip_bytes += b;
            }
        }
    }
    c
}

/// A kind lab through a runner.
pub struct KindView<'a> {
    pub runner: &'a dyn Runner,
    pub topo: &'a Topology,
    pub opts: &'a PlanOptions,
    /// calico-node's log window for [`LabView::bird_config_error`] (`kubectl logs --since`, e.g. `10m`).
    pub log_since: String,
    /// cluster → (node → calico-node pod).
    calico_pods: RefCell<BTreeMap<String, BTreeMap<String, String>>>,
    /// probe pod → IP.
    pod_ips: RefCell<BTreeMap<String, Ipv4Addr>>,
}

impl<'a> KindView<'a> {
    pub fn new(runner: &'a dyn Runner, topo: &'a Topology, opts: &'a PlanOptions) -> KindView<'a> {
        KindView {
            runner,
            topo,
            opts,
            log_since: "1h".to_string(),
            calico_pods: RefCell::default(),
            pod_ips: RefCell::default(),
        }
    }

    fn access_of(&self, node: &str) -> Result<ClusterAccess, String> {
        let c = self.topo.cluster_of(node).ok_or_else(|| format!("{node} is not a node of any kind cluster"))?;
        Ok(self.opts.access(&c.name))
    }

    /// The node's calico-node pod (read once per cluster, again after [`Self::forget_pods`]).
    pub fn calico_pod(&self, node: &str) -> Result<(ClusterAccess, String), String> {
        let a = self.access_of(node)?;
        if let Some(p) = self.calico_pods.borrow().get(&a.cluster).and_then(|m| m.get(node)) {
            return Ok((a, p.clone()));
        }
        let out = run_step(self.runner, 0, &exec::calico_node_pods(&a)).map_err(|e| e.to_string())?;
        let map = parse::calico_node_pods(&out.stdout).map_err(|e| e.to_string())?;
        let pod = map.get(node).cloned();
        self.calico_pods.borrow_mut().insert(a.cluster.clone(), map);
        let pod = pod.ok_or_else(|| format!("no calico-node pod runs on {node}"))?;
        Ok((a, pod))
    }

    /// Forget the node → calico-node pod maps (after calico-node restarts).
    pub fn forget_pods(&self) {
        self.calico_pods.borrow_mut().clear();
    }

    /// Run an observation in the node's calico-node; its text.
    pub fn observe_text(&self, node: &str, o: &Observation) -> Result<String, String> {
        let (a, pod) = self.calico_pod(node)?;
        super::observe(self.runner, &a, node, &pod, o).map_err(|e| {
            // The pod may have been replaced: read the map again next time.
            self.calico_pods.borrow_mut().remove(&a.cluster);
            e.to_string()
        })
    }

    fn pod_ip(&self, a: &ClusterAccess, pod: &str) -> Option<Ipv4Addr> {
        if let Some(ip) = self.pod_ips.borrow().get(pod) {
            return Some(*ip);
        }
        let out = run_step(self.runner, 0, &exec::pod_ip(a, pod)).ok()?;
        let ip: Ipv4Addr = out.stdout.trim().parse().ok()?;
        self.pod_ips.borrow_mut().insert(pod.to_string(), ip);
        Some(ip)
    }
}

impl LabView for KindView<'_> {
    /// Nodes without an address in the topology and probe pods without an IP yet are left out; when the
    /// live labels cannot be read, the kind config's are used.
    fn nodes(&self) -> Vec<NodeInfo> {
        let mut out = Vec::new();
        for c in &self.topo.clusters {
            let a = self.opts.access(&c.name);
            let live = run_step(self.runner, 0, &nodes_step(&a)).ok().and_then(|o| parse_node_labels(&o.stdout).ok());
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

    fn protocols(&self, node: &str) -> Result<Vec<Protocol>, String> {
        parse_protocols(&self.observe_text(node, &Observation::Protocols)?).map_err(|e| e.to_string())
    }

    fn rib(&self, node: &str) -> Result<Vec<Route>, String> {
        parse_routes(&self.observe_text(node, &Observation::RoutesAll)?).map_err(|e| e.to_string())
    }

    fn fib(&self, node: &str) -> Result<Vec<KernelRoute>, String> {
        parse_ip_route_json(&self.observe_text(node, &Observation::KernelRoutes)?).map_err(|e| e.to_string())
    }

    fn ipsets(&self, node: &str) -> Result<Vec<IpSet>, String> {
        parse_ipset(&self.observe_text(node, &Observation::Ipsets)?).map_err(|e| e.to_string())
    }

    fn iptables(&self, node: &str) -> Result<IpTables, String> {
        parse_iptables_save(&self.observe_text(node, &Observation::IptablesSave)?).map_err(|e| e.to_string())
    }

    fn config(&self, node: &str) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        for f in CONFD_FILES {
            out.insert(f.to_string(), self.observe_text(node, &Observation::ConfdFile(f.to_string()))?);
        }
        Ok(out)
    }

    fn bird_config_error(&self, node: &str) -> Option<String> {
        let (a, pod) = self.calico_pod(node).ok()?;
        let out = run_step(self.runner, 0, &calico_node_logs(&a, &pod, &self.log_since)).ok()?;
        bird_config_error_from_logs(&out.stdout)
    }

    fn ping(&self, from: &PodInfo, to: &PodInfo) -> bool {
        let Ok(a) = self.access_of(&from.node) else { return false };
        // Not run_step: ping exits 1 when nothing came back, which is an answer, not an error.
        match self.runner.run(&exec::ping(&a, &from.name, &to.ip.to_string(), 1)) {
            Ok(o) => parse_ping(&o.stdout).map(|r| r.all_replied()).unwrap_or(false),
            Err(_) => false,
        }
    }

    fn wan(&self) -> Result<WanCounters, String> {
        let Some(step) = exec::wan_counters(self.topo) else { return Ok(WanCounters::default()) };
        let out = run_step(self.runner, 0, &step).map_err(|e| e.to_string())?;
        Ok(wan_counters_from(&parse_iptables_save(&out.stdout).map_err(|e| e.to_string())?))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kind::runner::{RecordingRunner, StepOutput};
    use crate::kind::versions::Arch;
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
            .reply("exec clab-two-clusters-wan iptables-save", StepOutput::ok(WAN_SAVE))
            .reply("iptables-save -c", StepOutput::ok(sample("observe", "iptables-save-c-b.txt")))
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
        let t = topo("two-clusters.clab.yml");
        let o = opts();
        let r = lab_runner();
        let v = KindView::new(&r, &t, &o);
        let nodes = v.nodes();
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
        let _ = v.nodes();
        let again: Vec<String> = r.command_lines()[before..].to_vec();
        assert!(again.iter().all(|l| !l.contains("cluster1-worker-p1")), "{again:#?}");
        assert!(again.iter().any(|l| l.contains("cluster1-worker2-p2")), "pods without IP are asked again");
    }

    #[test]
    fn observations_go_through_calico_node_and_the_twins_parsers() {
        let t = topo("two-clusters.clab.yml");
        let o = opts();
        let r = lab_runner();
        let v = KindView::new(&r, &t, &o);
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
        assert!(v.protocols("wan").unwrap_err().contains("not a node of any kind cluster"));
    }

    #[test]
    fn a_failed_observation_reads_the_pod_map_again() {
        let t = topo("two-clusters.clab.yml");
        let o = opts();
        let r = RecordingRunner::new()
            .reply("get pods -l k8s-app=calico-node", StepOutput::ok(calico_pods_json("cluster1")))
            .reply(
                "show protocols",
                StepOutput::failed(1, "Error from server (NotFound): pods \"calico-node-cluster11\" not found"),
            );
        let v = KindView::new(&r, &t, &o);
        assert!(v.protocols("cluster1-worker").unwrap_err().contains("NotFound"));
        let _ = v.protocols("cluster1-worker");
        assert_eq!(r.command_lines().iter().filter(|l| l.contains("k8s-app=calico-node")).count(), 2);
    }

    #[test]
    fn ping_and_wan() {
        let t = topo("two-clusters.clab.yml");
        let o = opts();
        let r = lab_runner();
        let v = KindView::new(&r, &t, &o);
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
        assert_eq!(r.command_lines().last().unwrap(), "docker exec clab-two-clusters-wan iptables-save -c -t filter");
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

        let t = topo("two-clusters.clab.yml");
        let o = opts();
        let r = RecordingRunner::new()
            .reply("get pods -l k8s-app=calico-node", StepOutput::ok(calico_pods_json("cluster1")))
            .reply(" logs ", StepOutput::ok(logs));
        let mut v = KindView::new(&r, &t, &o);
        v.log_since = "120s".into();
        assert!(v.bird_config_error("cluster1-worker").unwrap().contains("Remote AS number must be set"));
        assert_eq!(
            r.command_lines()[1],
            "kubectl --kubeconfig /run/rrlab/two-clusters/kind/cluster1.kubeconfig --context kind-cluster1 -n kube-system logs calico-node-cluster11 -c calico-node --since=120s"
        );
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
}
