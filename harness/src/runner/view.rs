//! A running twin lab as runbook expectations see it (`LabView`): BIRD over its socket, the kernel over `ip`,
//! Felix's ipsets and iptables, the running BIRD files, pings from pod namespaces, the WAN's counters.

use std::collections::BTreeMap;
use std::path::Path;

use crate::lab::converge::{self, ping_once, read_status};
use crate::lab::wan::{self, WanCounters};
use crate::lab::{cluster_datastore, node_dir, node_ref, pods_for, LabState};
use crate::model::topology::Topology;
use crate::observe::{parse_ipset, parse_iptables_save, parse_routes, IpSet, IpTables, KernelRoute, Protocol, Route};
use crate::runbook::lab::{LabView, NodeInfo, PodInfo};
use crate::runtime::{exec_ok, Runtime};

pub struct TwinView<'a> {
    pub state: &'a LabState,
    pub topo: &'a Topology,
    pub rt: &'a dyn Runtime,
    nodes: Vec<NodeInfo>,
    /// pod name → (node, netns)
    pods: BTreeMap<String, (String, String)>,
}

impl<'a> TwinView<'a> {
    pub fn new(state: &'a LabState, topo: &'a Topology, rt: &'a dyn Runtime) -> Result<TwinView<'a>, String> {
        let base = state.topology.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut nodes = Vec::new();
        let mut pods = BTreeMap::new();
        for c in &topo.clusters {
            let ds = cluster_datastore(topo, c, state.scripts.get(&c.name).map(Vec::as_slice).unwrap_or(&[]), &base)
                .map_err(|e| e.to_string())?;
            for n in &c.nodes {
                let ip = topo.node_ip(&n.name).ok_or_else(|| format!("node {} has no address", n.name))?.addr();
                let specs = pods_for(&state.name, &n.name, &ds, state.pods_per_node);
                for p in &specs {
                    pods.insert(p.name.clone(), (n.name.clone(), p.netns.clone()));
                }
                nodes.push(NodeInfo {
                    name: n.name.clone(),
                    cluster: c.name.clone(),
                    site: topo.site_of(&n.name),
                    ip,
                    labels: ds.node(&n.name).map(|r| r.labels.clone()).unwrap_or_default(),
                    pods: specs.into_iter().map(|p| PodInfo { name: p.name, node: n.name.clone(), ip: p.ip }).collect(),
                });
            }
        }
        Ok(TwinView { state, topo, rt, nodes, pods })
    }

    pub fn pod_netns(&self, pod: &str) -> Option<&(String, String)> {
        self.pods.get(pod)
    }

    fn exec(&self, node: &str, argv: &[&str]) -> Result<String, String> {
        exec_ok(self.rt, &node_ref(&self.state.name, node), argv).map_err(|e| e.to_string())
    }
}

impl LabView for TwinView<'_> {
    fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.clone()
    }

    fn protocols(&self, node: &str) -> Result<Vec<Protocol>, String> {
        converge::protocols(self.state, self.rt, node)
    }

    fn rib(&self, node: &str) -> Result<Vec<Route>, String> {
        let sock = self.rt.node_path(
            &node_ref(&self.state.name, node),
            &node_dir(&self.state.name, node),
            "/var/run/calico/bird.ctl",
        );
        let text = crate::agent::birdsock::query(&sock, "show route all").map_err(|e| e.to_string())?;
        parse_routes(&text).map_err(|e| e.to_string())
    }

    fn fib(&self, node: &str) -> Result<Vec<KernelRoute>, String> {
        converge::fib(self.state, self.rt, node)
    }

    fn ipsets(&self, node: &str) -> Result<Vec<IpSet>, String> {
        parse_ipset(&self.exec(node, &["ipset", "list"])?).map_err(|e| e.to_string())
    }

    fn iptables(&self, node: &str) -> Result<IpTables, String> {
        parse_iptables_save(&self.exec(node, &["iptables-save", "-c"])?).map_err(|e| e.to_string())
    }

    fn config(&self, node: &str) -> Result<BTreeMap<String, String>, String> {
        let dir = node_dir(&self.state.name, node).join("etc/calico/confd/config");
        let mut out = BTreeMap::new();
        for f in ["bird.cfg", "bird_ipam.cfg", "bird_aggr.cfg"] {
            let t = std::fs::read_to_string(dir.join(f)).map_err(|e| format!("{}: {e}", dir.join(f).display()))?;
            out.insert(f.to_string(), t);
        }
        Ok(out)
    }

    fn bird_config_error(&self, node: &str) -> Option<String> {
        read_status(&self.state.name, node).and_then(|s| s.bird_config_error)
    }

    fn ping(&self, from: &PodInfo, to: &PodInfo) -> bool {
        match self.pods.get(&from.name) {
            Some((node, ns)) => ping_once(self.rt, &self.state.name, node, ns, &to.ip.to_string(), 1),
            None => false,
        }
    }

    fn ping_many(&self, pairs: &[(PodInfo, PodInfo)]) -> Vec<bool> {
        let mut out = vec![false; pairs.len()];
        std::thread::scope(|s| {
            let hs: Vec<_> = pairs
                .chunks(8)
                .map(|chunk| s.spawn(move || chunk.iter().map(|(a, b)| self.ping(a, b)).collect::<Vec<_>>()))
                .collect();
            let mut i = 0;
            for h in hs {
                for r in h.join().unwrap_or_default() {
                    if i < out.len() {
                        out[i] = r;
                    }
                    i += 1;
                }
            }
        });
        out
    }

    fn wan(&self) -> Result<WanCounters, String> {
        wan::counters(self.rt, &self.state.name, self.topo).map_err(|e| e.to_string())
    }
}
