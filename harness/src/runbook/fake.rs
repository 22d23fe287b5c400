//! A lab made of canned observations, for tests of expectations, reports and executors.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use crate::observe::{IpSet, IpTables, KernelRoute, Protocol, Route};
use crate::wan::WanCounters;

use super::lab::{LabView, NodeInfo, ObserveError, Observed, PodInfo};

/// Every observation is a map entry; a node without an entry reads as an error (`node x: no … here`), as a
/// stopped node would.
#[derive(Debug, Clone, Default)]
pub struct FakeLab {
    pub nodes: Vec<NodeInfo>,
    pub protocols: BTreeMap<String, Vec<Protocol>>,
    pub rib: BTreeMap<String, Vec<Route>>,
    pub fib: BTreeMap<String, Vec<KernelRoute>>,
    pub ipsets: BTreeMap<String, Vec<IpSet>>,
    pub iptables: BTreeMap<String, IpTables>,
    pub config: BTreeMap<String, BTreeMap<String, String>>,
    pub bird_errors: BTreeMap<String, String>,
    /// Pod pairs (by name) whose pings fail; every other ping passes.
    pub ping_fails: BTreeSet<(String, String)>,
    pub wan: WanCounters,
    /// How many times `protocols` was called (for polling tests).
    pub protocol_reads: Cell<usize>,
}

impl FakeLab {
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

fn missing(what: &str, node: &str) -> ObserveError {
    ObserveError::Unavailable(format!("node {node}: no {what} here"))
}

/// A `show protocols` row.
pub fn protocol(name: &str, proto: &str, state: &str, info: &str) -> Protocol {
    Protocol {
        name: name.to_string(),
        proto: proto.to_string(),
        table: "master".to_string(),
        state: state.to_string(),
        since: "13:29:49".to_string(),
        info: info.to_string(),
    }
}

/// A BGP session row, named as Calico names it (`Mesh_10_0_1_3`, `Node_…`, `Global_…`).
pub fn bgp(kind: &str, peer: &str, state: &str, bgp_state: &str) -> Protocol {
    protocol(&format!("{kind}_{}", peer.replace('.', "_")), "BGP", state, bgp_state)
}

impl LabView for FakeLab {
    fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.clone()
    }
    fn protocols(&self, node: &str) -> Observed<Vec<Protocol>> {
        self.protocol_reads.set(self.protocol_reads.get() + 1);
        self.protocols.get(node).cloned().ok_or_else(|| missing("BIRD", node))
    }
    fn rib(&self, node: &str) -> Observed<Vec<Route>> {
        self.rib.get(node).cloned().ok_or_else(|| missing("BIRD", node))
    }
    fn fib(&self, node: &str) -> Observed<Vec<KernelRoute>> {
        self.fib.get(node).cloned().ok_or_else(|| missing("routes", node))
    }
    fn ipsets(&self, node: &str) -> Observed<Vec<IpSet>> {
        self.ipsets.get(node).cloned().ok_or_else(|| missing("ipsets", node))
    }
    fn iptables(&self, node: &str) -> Observed<IpTables> {
        self.iptables.get(node).cloned().ok_or_else(|| missing("iptables", node))
    }
    fn config(&self, node: &str) -> Observed<BTreeMap<String, String>> {
        self.config.get(node).cloned().ok_or_else(|| missing("BIRD config", node))
    }
    fn bird_config_error(&self, node: &str) -> Option<String> {
        self.bird_errors.get(node).cloned()
    }
    fn ping(&self, from: &PodInfo, to: &PodInfo) -> bool {
        !self.ping_fails.contains(&(from.name.clone(), to.name.clone()))
    }
    fn wan(&self) -> Observed<WanCounters> {
        Ok(self.wan.clone())
    }
}
