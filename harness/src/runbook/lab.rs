//! What expectations observe: the [`LabView`] trait (implemented for live labs by the executor, and by
//! [`super::fake::FakeLab`] in tests), what a step produced ([`StepOutcome`]), and how node sets, pod sets
//! and blocks written in a runbook resolve against a lab.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::observe::{IpSet, IpTables, KernelRoute, Prefix, Protocol, Route};
use crate::twin::commands::Outcome;
use crate::wan::WanCounters;

use super::model::{AddrRef, Expectation, NodeSel, NodeSet, PodSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub name: String,
    pub node: String,
    pub ip: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub cluster: String,
    /// The site bridge the node is on.
    pub site: Option<String>,
    /// The node's IP (what calico-node autodetects; peers' session addresses).
    pub ip: Ipv4Addr,
    /// Kubernetes node labels as they are now.
    pub labels: BTreeMap<String, String>,
    pub pods: Vec<PodInfo>,
}

/// Why an observation could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObserveError {
    /// Its command or query did not answer (node stopped, BIRD down, calico-node restarting).
    #[error("{0}")]
    Unavailable(String),
    /// It answered with something the parser does not accept.
    #[error(transparent)]
    Parse(#[from] crate::observe::ParseError),
}

impl From<crate::backend::BackendError> for ObserveError {
    fn from(e: crate::backend::BackendError) -> ObserveError {
        ObserveError::Unavailable(e.to_string())
    }
}

/// Observations' results.
pub type Observed<T> = Result<T, ObserveError>;

/// A per-node observation, for reading many at once ([`LabView::observe_many`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Obs {
    Protocols,
    Rib,
    Fib,
    Ipsets,
    Iptables,
    Config,
}

/// One [`Obs`]'s result.
#[derive(Debug, Clone)]
pub enum ObsResult {
    Protocols(Observed<Vec<Protocol>>),
    Rib(Observed<Vec<Route>>),
    Fib(Observed<Vec<KernelRoute>>),
    Ipsets(Observed<Vec<IpSet>>),
    Iptables(Observed<IpTables>),
    Config(Observed<BTreeMap<String, String>>),
}

/// Read one [`Obs`] through a view.
pub fn observe_one(lab: &(impl LabView + ?Sized), what: Obs, node: &str) -> ObsResult {
    match what {
        Obs::Protocols => ObsResult::Protocols(lab.protocols(node)),
        Obs::Rib => ObsResult::Rib(lab.rib(node)),
        Obs::Fib => ObsResult::Fib(lab.fib(node)),
        Obs::Ipsets => ObsResult::Ipsets(lab.ipsets(node)),
        Obs::Iptables => ObsResult::Iptables(lab.iptables(node)),
        Obs::Config => ObsResult::Config(lab.config(node)),
    }
}

/// A lab, as expectations see it.
pub trait LabView {
    fn nodes(&self) -> Vec<NodeInfo>;
    /// BIRD `show protocols`.
    fn protocols(&self, node: &str) -> Observed<Vec<Protocol>>;
    /// BIRD `show route all`.
    fn rib(&self, node: &str) -> Observed<Vec<Route>>;
    /// `ip -j route` (main table).
    fn fib(&self, node: &str) -> Observed<Vec<KernelRoute>>;
    fn ipsets(&self, node: &str) -> Observed<Vec<IpSet>>;
    /// `iptables-save -c`.
    fn iptables(&self, node: &str) -> Observed<IpTables>;
    /// The BIRD config files as running: file name (`bird.cfg`, `bird_ipam.cfg`, …) → text.
    fn config(&self, node: &str) -> Observed<BTreeMap<String, String>>;
    /// The error BIRD gave when it last rejected a new config (calico-node keeps the old one), if any.
    fn bird_config_error(&self, node: &str) -> Option<String>;
    fn ping(&self, from: &PodInfo, to: &PodInfo) -> bool;
    fn wan(&self) -> Observed<WanCounters>;

    /// Many pings; override to run them in parallel. Same order as `pairs`.
    fn ping_many(&self, pairs: &[(PodInfo, PodInfo)]) -> Vec<bool> {
        pairs.iter().map(|(a, b)| self.ping(a, b)).collect()
    }

    /// Many per-node observations; override to read them concurrently. Same order as `needs`.
    fn observe_many(&self, needs: &[(Obs, String)]) -> Vec<ObsResult> {
        needs.iter().map(|(w, n)| observe_one(self, *w, n)).collect()
    }
}

/// One probe's measurement over a step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeStats {
    pub sent: u64,
    pub received: u64,
    pub longest_outage: Duration,
    /// Packets that arrived a second time (a WAN duplicating).
    pub duplicates: u64,
    /// Packets that arrived after a later one (a WAN reordering, e.g. jitter).
    pub reordered: u64,
}

impl ProbeStats {
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

/// What the step itself produced, for `fails`, `loss`, `converge`, `iptables` and `wan`.
#[derive(Debug, Clone, Default)]
pub struct StepOutcome {
    /// Every command the step's script ran, in order (empty for harness actions).
    pub commands: Vec<Outcome>,
    /// Per probe name, traffic since the step started.
    pub probes: BTreeMap<String, ProbeStats>,
    /// WAN counters when the step started (for `wan` byte/packet deltas).
    pub wan_before: Option<WanCounters>,
    /// `iptables-save -c` per node when the step started (for `increases`/`unchanged`).
    pub iptables_before: BTreeMap<String, IpTables>,
    /// When every polled expectation first held together. `wait_all` fills it in before judging
    /// `converge`; None means they did not.
    pub converged: Option<Duration>,
}

impl StepOutcome {
    /// What to capture before a step runs: the WAN counters (when a `wan` expectation is there) and the
    /// iptables of every node an `iptables` expectation reads. Capture errors are left out; the
    /// expectation then reports the missing baseline.
    pub fn baseline(es: &[Expectation], lab: &dyn LabView) -> StepOutcome {
        let mut out = StepOutcome::default();
        let nodes = lab.nodes();
        if es.iter().any(|e| matches!(e, Expectation::Wan(_))) {
            out.wan_before = lab.wan().ok();
        }
        let mut want: BTreeSet<String> = BTreeSet::new();
        for e in es {
            if let Expectation::Iptables(i) = e {
                if let Ok(ns) = resolve_nodes(&i.on, &nodes) {
                    want.extend(ns.into_iter().map(|n| n.name));
                }
            }
        }
        for n in want {
            if let Ok(t) = lab.iptables(&n) {
                out.iptables_before.insert(n, t);
            }
        }
        out
    }
}

// ------------------------------------------------------------------------------------------ resolution

fn names(nodes: &[NodeInfo]) -> String {
    let v: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    v.join(", ")
}

/// The nodes of a set, in the lab's order. Unknown names, clusters and sites are errors, and so is a set
/// that selects no node (almost always a typo).
pub fn resolve_nodes(set: &NodeSet, nodes: &[NodeInfo]) -> Result<Vec<NodeInfo>, String> {
    let mut pick: BTreeSet<&str> = BTreeSet::new();
    for item in &set.items {
        match item {
            NodeSel::All => pick.extend(nodes.iter().map(|n| n.name.as_str())),
            NodeSel::Node(name) => {
                if !nodes.iter().any(|n| &n.name == name) {
                    return Err(format!("unknown node {name:?} (nodes: {})", names(nodes)));
                }
                pick.insert(name);
            }
            NodeSel::Cluster(c) => {
                let v: Vec<&str> = nodes.iter().filter(|n| &n.cluster == c).map(|n| n.name.as_str()).collect();
                if v.is_empty() {
                    let cs: BTreeSet<&str> = nodes.iter().map(|n| n.cluster.as_str()).collect();
                    return Err(format!(
                        "unknown cluster {c:?} (clusters: {})",
                        cs.into_iter().collect::<Vec<_>>().join(", ")
                    ));
                }
                pick.extend(v);
            }
            NodeSel::Site(s) => {
                let v: Vec<&str> =
                    nodes.iter().filter(|n| n.site.as_deref() == Some(s.as_str())).map(|n| n.name.as_str()).collect();
                if v.is_empty() {
                    let ss: BTreeSet<&str> = nodes.iter().filter_map(|n| n.site.as_deref()).collect();
                    return Err(format!(
                        "unknown site {s:?} (sites: {})",
                        ss.into_iter().collect::<Vec<_>>().join(", ")
                    ));
                }
                pick.extend(v);
            }
            NodeSel::Label { key, value, negated } => {
                let v: Vec<&str> = nodes
                    .iter()
                    .filter(|n| {
                        let has = n.labels.get(key);
                        match value {
                            None => has.is_some(),
                            Some(v) => (has == Some(v)) != *negated,
                        }
                    })
                    .map(|n| n.name.as_str())
                    .collect();
                if v.is_empty() {
                    return Err(format!("{item} selects no node"));
                }
                pick.extend(v);
            }
        }
    }
    if pick.is_empty() {
        return Err(format!("{set} selects no node"));
    }
    Ok(nodes.iter().filter(|n| pick.contains(n.name.as_str())).cloned().collect())
}

/// The pods of a pod set, in the lab's order.
pub fn resolve_pods(set: &PodSet, nodes: &[NodeInfo]) -> Result<Vec<PodInfo>, String> {
    let mut out: Vec<PodInfo> = Vec::new();
    let all: Vec<&PodInfo> = nodes.iter().flat_map(|n| n.pods.iter()).collect();
    for p in &set.pods {
        match all.iter().find(|q| &q.name == p) {
            Some(q) => {
                if !out.iter().any(|o| o.name == q.name) {
                    out.push((*q).clone())
                }
            }
            None => {
                let v: Vec<&str> = all.iter().map(|q| q.name.as_str()).collect();
                return Err(format!("unknown pod {p:?} (pods: {})", v.join(", ")));
            }
        }
    }
    if !set.nodes.items.is_empty() {
        for n in resolve_nodes(&set.nodes, nodes)? {
            if n.pods.is_empty() {
                return Err(format!("node {} has no pods", n.name));
            }
            for q in n.pods {
                if !out.iter().any(|o| o.name == q.name) {
                    out.push(q);
                }
            }
        }
    }
    Ok(out)
}

/// A node's IPAM blocks: the /`block_size` prefixes around its pods' addresses.
pub fn node_blocks(node: &NodeInfo, block_size: u8) -> Result<Vec<Prefix>, String> {
    if node.pods.is_empty() {
        return Err(format!("node {} has no pods, so its block is unknown", node.name));
    }
    let mut v: Vec<Prefix> = Vec::new();
    for p in &node.pods {
        let b = block_of(p.ip, block_size);
        if !v.contains(&b) {
            v.push(b);
        }
    }
    Ok(v)
}

pub fn block_of(ip: Ipv4Addr, len: u8) -> Prefix {
    let len = len.min(32);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
    Prefix { addr: IpAddr::V4(Ipv4Addr::from(u32::from(ip) & mask)), len }
}

/// Resolve an address written in an expectation. `owner` is the node owning the block being checked.
pub fn resolve_addr(a: &AddrRef, nodes: &[NodeInfo], owner: Option<&NodeInfo>) -> Result<IpAddr, String> {
    match a {
        AddrRef::Ip(ip) => Ok(*ip),
        AddrRef::Node(n) => nodes
            .iter()
            .find(|x| &x.name == n)
            .map(|x| IpAddr::V4(x.ip))
            .ok_or_else(|| format!("unknown node {n:?} (nodes: {})", names(nodes))),
        AddrRef::Owner => owner.map(|o| IpAddr::V4(o.ip)).ok_or_else(|| {
            "`owner` means the node whose block is checked: use it with a block:/blocks: prefix".to_string()
        }),
    }
}

/// `10.0.1.3 (hybrid-worker)` when the address is a node's.
pub fn label_addr(addr: &str, nodes: &[NodeInfo]) -> String {
    match nodes.iter().find(|n| n.ip.to_string() == addr) {
        Some(n) => format!("{addr} ({})", n.name),
        None => addr.to_string(),
    }
}

// ------------------------------------------------------------------------------------------ caching

type ConfigFiles = BTreeMap<String, String>;

/// A [`LabView`] that reads each observation at most once (one polling round).
pub struct CachedLab<'a> {
    inner: &'a dyn LabView,
    nodes: RefCell<Option<Vec<NodeInfo>>>,
    protocols: RefCell<HashMap<String, Observed<Vec<Protocol>>>>,
    rib: RefCell<HashMap<String, Observed<Vec<Route>>>>,
    fib: RefCell<HashMap<String, Observed<Vec<KernelRoute>>>>,
    ipsets: RefCell<HashMap<String, Observed<Vec<IpSet>>>>,
    iptables: RefCell<HashMap<String, Observed<IpTables>>>,
    config: RefCell<HashMap<String, Observed<ConfigFiles>>>,
    bird_err: RefCell<HashMap<String, Option<String>>>,
    pings: RefCell<HashMap<(String, String), bool>>,
    wan: RefCell<Option<Observed<WanCounters>>>,
}

impl<'a> CachedLab<'a> {
    /// Read `needs` at once (concurrently where the inner view can) into the cache.
    pub fn prefetch(&self, needs: &[(Obs, String)]) {
        let todo: Vec<(Obs, String)> = needs
            .iter()
            .filter(|(w, n)| {
                let n = n.as_str();
                !match w {
                    Obs::Protocols => self.protocols.borrow().contains_key(n),
                    Obs::Rib => self.rib.borrow().contains_key(n),
                    Obs::Fib => self.fib.borrow().contains_key(n),
                    Obs::Ipsets => self.ipsets.borrow().contains_key(n),
                    Obs::Iptables => self.iptables.borrow().contains_key(n),
                    Obs::Config => self.config.borrow().contains_key(n),
                }
            })
            .cloned()
            .collect();
        if todo.is_empty() {
            return;
        }
        for ((_, n), r) in todo.iter().zip(self.inner.observe_many(&todo)) {
            let n = n.clone();
            match r {
                ObsResult::Protocols(v) => self.protocols.borrow_mut().insert(n, v).map(|_| ()),
                ObsResult::Rib(v) => self.rib.borrow_mut().insert(n, v).map(|_| ()),
                ObsResult::Fib(v) => self.fib.borrow_mut().insert(n, v).map(|_| ()),
                ObsResult::Ipsets(v) => self.ipsets.borrow_mut().insert(n, v).map(|_| ()),
                ObsResult::Iptables(v) => self.iptables.borrow_mut().insert(n, v).map(|_| ()),
                ObsResult::Config(v) => self.config.borrow_mut().insert(n, v).map(|_| ()),
            };
        }
    }

    pub fn new(inner: &'a dyn LabView) -> CachedLab<'a> {
        CachedLab {
            inner,
            nodes: RefCell::new(None),
            protocols: RefCell::default(),
            rib: RefCell::default(),
            fib: RefCell::default(),
            ipsets: RefCell::default(),
            iptables: RefCell::default(),
            config: RefCell::default(),
            bird_err: RefCell::default(),
            pings: RefCell::default(),
            wan: RefCell::new(None),
        }
    }
}

fn memo<T: Clone>(m: &RefCell<HashMap<String, T>>, k: &str, f: impl FnOnce() -> T) -> T {
    if let Some(v) = m.borrow().get(k) {
        return v.clone();
    }
    let v = f();
    m.borrow_mut().insert(k.to_string(), v.clone());
    v
}

impl LabView for CachedLab<'_> {
    fn nodes(&self) -> Vec<NodeInfo> {
        if let Some(v) = self.nodes.borrow().as_ref() {
            return v.clone();
        }
        let v = self.inner.nodes();
        *self.nodes.borrow_mut() = Some(v.clone());
        v
    }
    fn protocols(&self, node: &str) -> Observed<Vec<Protocol>> {
        memo(&self.protocols, node, || self.inner.protocols(node))
    }
    fn rib(&self, node: &str) -> Observed<Vec<Route>> {
        memo(&self.rib, node, || self.inner.rib(node))
    }
    fn fib(&self, node: &str) -> Observed<Vec<KernelRoute>> {
        memo(&self.fib, node, || self.inner.fib(node))
    }
    fn ipsets(&self, node: &str) -> Observed<Vec<IpSet>> {
        memo(&self.ipsets, node, || self.inner.ipsets(node))
    }
    fn iptables(&self, node: &str) -> Observed<IpTables> {
        memo(&self.iptables, node, || self.inner.iptables(node))
    }
    fn config(&self, node: &str) -> Observed<BTreeMap<String, String>> {
        memo(&self.config, node, || self.inner.config(node))
    }
    fn bird_config_error(&self, node: &str) -> Option<String> {
        memo(&self.bird_err, node, || self.inner.bird_config_error(node))
    }
    fn ping(&self, from: &PodInfo, to: &PodInfo) -> bool {
        self.ping_many(&[(from.clone(), to.clone())])[0]
    }
    fn ping_many(&self, pairs: &[(PodInfo, PodInfo)]) -> Vec<bool> {
        let key = |a: &PodInfo, b: &PodInfo| (a.name.clone(), b.name.clone());
        let todo: Vec<(PodInfo, PodInfo)> = {
            let cache = self.pings.borrow();
            let mut seen = BTreeSet::new();
            pairs.iter().filter(|(a, b)| !cache.contains_key(&key(a, b)) && seen.insert(key(a, b))).cloned().collect()
        };
        if !todo.is_empty() {
            let res = self.inner.ping_many(&todo);
            let mut cache = self.pings.borrow_mut();
            for ((a, b), ok) in todo.iter().zip(res) {
                cache.insert(key(a, b), ok);
            }
        }
        let cache = self.pings.borrow();
        pairs.iter().map(|(a, b)| cache.get(&key(a, b)).copied().unwrap_or(false)).collect()
    }
    fn wan(&self) -> Observed<WanCounters> {
        if let Some(v) = self.wan.borrow().as_ref() {
            return v.clone();
        }
        let v = self.inner.wan();
        *self.wan.borrow_mut() = Some(v.clone());
        v
    }
}
