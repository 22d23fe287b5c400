//! A [`Backend`] of canned answers that records every call: the fake behind the step runner's unit tests
//! (actions, expectations, probes, Ctrl-C, failing commands, failing teardown), for every backend alike.
//!
//! Every call is written as one line (`exec calico-node on n1: ip -j route show table main`, `bird n1: show
//! protocols`, `file n1: /etc/…`, `run cluster1: <script>`, `action n1: stop BIRD`, `probes: start a,b`,
//! `teardown`) and recorded; answers are the newest [`FakeBackend::reply`] whose needle occurs in the line.
//! [`FakeBackend::on`] adds an answer when a later call matches a trigger (the lab changing after an action).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{Backend, BackendError, BackendKind, NodeAction, Target};
use crate::model::topology::Topology;
use crate::process::Output;
use crate::runbook::lab::{NodeInfo, PodInfo, ProbeStats};
use crate::runbook::model::ProbeSpec;
use crate::twin::commands::Outcome;

struct Trigger {
    when: String,
    needle: String,
    out: Output,
}

#[derive(Default)]
struct State {
    replies: Vec<(String, Output)>,
    triggers: Vec<Trigger>,
    calls: Vec<String>,
    probes: BTreeMap<String, ProbeStats>,
}

/// The calls a [`FakeBackend`] saw.
#[derive(Clone)]
pub struct Recorder(Arc<Mutex<State>>);

impl Recorder {
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().expect("fake").calls.clone()
    }
}

pub struct FakeBackend {
    topo: Topology,
    nodes: Vec<NodeInfo>,
    state: Arc<Mutex<State>>,
    /// `teardown` fails with this.
    pub teardown_error: Option<String>,
    /// Set `flag` when a call's line contains the needle (a Ctrl-C while that runs).
    pub interrupt: Option<(String, &'static AtomicBool)>,
    /// What `timeout_scale` returns.
    pub timeout_scale: f64,
}

impl FakeBackend {
    /// A lab of the topology: every cluster node with its address, `pods` pods each (`<node>-p<i>`,
    /// addresses 10.200.<node index>.<i>).
    pub fn new(topo: Topology, pods: u32) -> FakeBackend {
        let mut nodes = Vec::new();
        for c in &topo.clusters {
            for n in &c.nodes {
                let k = nodes.len() as u8;
                let ip = topo.node_ip(&n.name).map(|i| i.addr()).unwrap_or(Ipv4Addr::new(10, 199, 0, k));
                nodes.push(NodeInfo {
                    name: n.name.clone(),
                    cluster: c.name.clone(),
                    site: topo.site_of(&n.name),
                    ip,
                    labels: n.labels.clone(),
                    pods: (1..=pods)
                        .map(|i| PodInfo {
                            name: format!("{}-p{i}", n.name),
                            node: n.name.clone(),
                            ip: Ipv4Addr::new(10, 200, k, i as u8),
                        })
                        .collect(),
                });
            }
        }
        FakeBackend { topo, nodes, state: Arc::default(), teardown_error: None, interrupt: None, timeout_scale: 1.0 }
    }

    pub fn node(&self, name: &str) -> &NodeInfo {
        self.nodes.iter().find(|n| n.name == name).unwrap_or_else(|| panic!("no node {name} in the fake lab"))
    }

    /// Answer calls whose line contains `needle` with `out` (newer answers win).
    pub fn reply(&self, needle: &str, out: Output) -> &FakeBackend {
        self.state.lock().expect("fake").replies.push((needle.to_string(), out));
        self
    }

    /// Once a call's line contains `when`, answer `needle` with `out`.
    pub fn on(&self, when: &str, needle: &str, out: Output) -> &FakeBackend {
        let t = Trigger { when: when.to_string(), needle: needle.to_string(), out };
        self.state.lock().expect("fake").triggers.push(t);
        self
    }

    /// What `probe_stats` returns.
    pub fn set_probe(&self, name: &str, s: ProbeStats) {
        self.state.lock().expect("fake").probes.insert(name.to_string(), s);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<String> {
        self.recorder().calls()
    }

    /// A handle on the calls that outlives the lab (the runner consumes it).
    pub fn recorder(&self) -> Recorder {
        Recorder(self.state.clone())
    }

    fn call(&self, line: String) -> Option<Output> {
        if let Some((needle, flag)) = &self.interrupt {
            if line.contains(needle.as_str()) {
                flag.store(true, Ordering::Relaxed);
            }
        }
        let mut st = self.state.lock().expect("fake");
        let fired: Vec<(String, Output)> = st
            .triggers
            .iter()
            .filter(|t| line.contains(t.when.as_str()))
            .map(|t| (t.needle.clone(), t.out.clone()))
            .collect();
        st.triggers.retain(|t| !line.contains(t.when.as_str()));
        st.replies.extend(fired);
        st.calls.push(line.clone());
        st.replies.iter().rev().find(|(n, _)| line.contains(n.as_str())).map(|(_, o)| o.clone())
    }

    fn known(&self, node: &str) -> Result<(), BackendError> {
        if self.nodes.iter().any(|n| n.name == node) || self.topo.nodes.contains_key(node) {
            Ok(())
        } else {
            Err(BackendError::Unknown {
                lab: self.topo.name.clone(),
                what: "node",
                name: node.to_string(),
                known: self.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", "),
            })
        }
    }
}

impl Backend for FakeBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Twin
    }

    fn lab(&self) -> &str {
        &self.topo.name
    }

    fn topology(&self) -> &Topology {
        &self.topo
    }

    fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.clone()
    }

    /// Unanswered commands succeed with no output.
    fn exec(&self, target: Target<'_>, argv: &[&str]) -> Result<Output, BackendError> {
        if let Target::Node(n) | Target::CalicoNode(n) = target {
            self.known(n)?;
        }
        Ok(self.call(format!("exec {target}: {}", argv.join(" "))).unwrap_or_else(|| Output::ok("")))
    }

    /// Unanswered queries fail, as a node whose BIRD is not running.
    fn bird(&self, node: &str, query: &str) -> Result<String, BackendError> {
        self.known(node)?;
        match self.call(format!("bird {node}: {query}")) {
            Some(o) if o.success() => Ok(o.stdout),
            Some(o) => Err(BackendError::exec(Target::CalicoNode(node), o.detail().to_string())),
            None => Err(BackendError::exec(Target::CalicoNode(node), "BIRD: no such file or directory (fake)")),
        }
    }

    fn read_file(&self, node: &str, path: &str) -> Result<String, BackendError> {
        self.known(node)?;
        match self.call(format!("file {node}: {path}")) {
            Some(o) if o.success() => Ok(o.stdout),
            _ => Err(BackendError::exec(Target::CalicoNode(node), format!("{path}: no such file (fake)"))),
        }
    }

    fn bird_config_error(&self, node: &str) -> Option<String> {
        self.call(format!("bird-error {node}")).filter(|o| !o.stdout.is_empty()).map(|o| o.stdout)
    }

    /// One outcome per non-empty line; a line answered with a failure fails and stops the script.
    fn run_commands(&mut self, cluster: &str, _label: &str, script: &str) -> Result<Vec<Outcome>, BackendError> {
        if self.topo.cluster(cluster).is_none() {
            return Err(BackendError::Usage(format!("no cluster {cluster:?} in lab {}", self.topo.name)));
        }
        let mut out = Vec::new();
        for (i, l) in script.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let o = self.call(format!("run {cluster}: {}", l.trim())).unwrap_or_else(|| Output::ok(""));
            let ok = o.success();
            out.push(Outcome {
                line: i + 1,
                command: l.trim().to_string(),
                ok,
                stdout: o.stdout,
                stderr: o.stderr,
                changed: ok,
            });
            if !ok {
                break;
            }
        }
        Ok(out)
    }

    fn node_action(&mut self, node: &str, action: NodeAction) -> Result<(), BackendError> {
        self.known(node)?;
        match self.call(format!("action {node}: {action}")) {
            Some(o) if !o.success() => Err(BackendError::Other(format!("{action} on {node}: {}", o.detail()))),
            _ => Ok(()),
        }
    }

    fn set_link(&mut self, node: &str, iface: &str, up: bool) -> Result<(), BackendError> {
        self.known(node)?;
        let state = if up { "up" } else { "down" };
        match self.call(format!("link {node}:{iface} {state}")) {
            Some(o) if !o.success() => Err(BackendError::Other(format!("link {node}:{iface} {state}: {}", o.detail()))),
            _ => Ok(()),
        }
    }

    fn start_probes(&mut self, specs: &[ProbeSpec]) -> Result<(), BackendError> {
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        self.call(format!("probes: start {}", names.join(",")));
        let mut st = self.state.lock().expect("fake");
        for s in specs {
            st.probes.entry(s.name.clone()).or_default();
        }
        Ok(())
    }

    fn mark_probes(&mut self) {
        self.call("probes: mark".to_string());
    }

    fn probe_stats(&self) -> BTreeMap<String, ProbeStats> {
        self.state.lock().expect("fake").probes.clone()
    }

    fn timeout_scale(&self) -> f64 {
        self.timeout_scale
    }

    fn teardown(&mut self) -> Result<Vec<String>, BackendError> {
        self.call("teardown".to_string());
        match &self.teardown_error {
            Some(e) => Err(BackendError::Other(e.clone())),
            None => Ok(vec![format!("lab {}", self.topo.name)]),
        }
    }
}
