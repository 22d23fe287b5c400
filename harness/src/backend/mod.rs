//! The one seam between the step runner and a lab, whatever the lab is made of. A [`Backend`] is a lab that
//! is up: it runs a command on a node, in calico-node, in a pod or on the WAN router ([`Target`]), asks a
//! node's BIRD, reads calico-node's files, types the operator's commands into a cluster, performs the
//! node-level harness actions, runs the probes and tears the lab down. Everything above it (the step runner,
//! the observations, the WAN emulator, the expectations) is written once.
//!
//! Backends, one folder each, chosen from one table ([`REGISTRY`], like containerlab's `nodes/<kind>`
//! registry):
//! - `twin` ([`twin`]): calico-node twins (real BIRD 1.6.8 + rrlab's agent) on a node runtime, `docker`
//!   or `netns` ([`crate::runtime`]);
//! - `kind` ([`crate::kind`]): real kind clusters with Calico v3.30 and containerlab;
//! - [`fake`]: canned observations that record every call, for the runner's unit tests.

pub mod fake;
pub mod observe;
pub mod twin;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::topology::Topology;
use crate::process::{Output, ProcessError};
use crate::runbook::lab::{NodeInfo, ProbeStats};
use crate::runbook::model::ProbeSpec;
use crate::runtime::RuntimeKind;
use crate::twin::commands::Outcome;

/// Where clusters come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Twin,
    Kind,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Twin => "twin",
            BackendKind::Kind => "kind",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<BackendKind, BackendError> {
        REGISTRY.iter().find(|e| e.name.eq_ignore_ascii_case(s.trim())).map(|e| e.kind).ok_or_else(|| {
            BackendError::Usage(format!(
                "unknown backend {s:?} (backends: {})",
                REGISTRY.iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

/// The environment variable that selects the backend for the e2e target (`RRLAB_BACKEND=kind cargo test
/// --test e2e`).
pub const BACKEND_ENV: &str = "RRLAB_BACKEND";

/// The backend `RRLAB_BACKEND` names (unset or empty: the twin).
pub fn from_env(value: Option<&str>) -> Result<BackendKind, BackendError> {
    match value.map(str::trim) {
        None | Some("") => Ok(BackendKind::Twin),
        Some(v) => v.parse().map_err(|e: BackendError| BackendError::Usage(format!("{BACKEND_ENV}: {e}"))),
    }
}

/// Where a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The node's own namespace (the twin's node; kind's node container).
    Node(&'a str),
    /// calico-node on that node (the twin's node itself; kind: the node's calico-node pod).
    CalicoNode(&'a str),
    /// A pod, by name.
    Pod(&'a str),
    /// The WAN router between the sites.
    Wan,
}

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(n) => write!(f, "node {n}"),
            Target::CalicoNode(n) => write!(f, "calico-node on {n}"),
            Target::Pod(p) => write!(f, "pod {p}"),
            Target::Wan => f.write_str("the WAN"),
        }
    }
}

/// Harness actions on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAction {
    StopBird,
    StartBird,
    /// The machine goes away: links down and BIRD gone (twin), container stopped (kind).
    StopNode,
    StartNode,
    /// calico-node restarts (BIRD with graceful restart).
    RestartCalicoNode,
    /// The node hangs, as a paused VM: every process frozen, its links cut (no carrier), nothing said to peers.
    FreezeNode,
    ThawNode,
}

impl fmt::Display for NodeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeAction::StopBird => "stop BIRD",
            NodeAction::StartBird => "start BIRD",
            NodeAction::StopNode => "stop node",
            NodeAction::StartNode => "start node",
            NodeAction::RestartCalicoNode => "restart calico-node",
            NodeAction::FreezeNode => "freeze node",
            NodeAction::ThawNode => "thaw node",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Bad input from the caller (names, options).
    #[error("{0}")]
    Usage(String),
    #[error("no {what} {name:?} in lab {lab} ({known})")]
    Unknown { lab: String, what: &'static str, name: String, known: String },
    #[error("{target}: {source}")]
    Process { target: String, source: ProcessError },
    #[error("{target}: {message}")]
    Exec { target: String, message: String },
    #[error("{0}")]
    Lab(#[from] crate::lab::LabError),
    #[error("{0}")]
    KindStep(#[from] crate::kind::ExecError),
    #[error("{0}")]
    Kind(#[from] crate::kind::KindError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error("interrupted (Ctrl-C)")]
    Interrupted,
    #[error("{0}")]
    Other(String),
}

impl BackendError {
    pub fn exec(target: Target<'_>, message: impl Into<String>) -> BackendError {
        BackendError::Exec { target: target.to_string(), message: message.into() }
    }
}

/// A lab that is up.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    /// The lab's name.
    fn lab(&self) -> &str;
    fn topology(&self) -> &Topology;
    /// The nodes as expectations see them: sites, addresses, live labels, pods.
    fn nodes(&self) -> Vec<NodeInfo>;
    /// Run `argv` at `target`; a non-zero exit is an [`Output`], not an error.
    fn exec(&self, target: Target<'_>, argv: &[&str]) -> Result<Output, BackendError>;
    /// Ask a node's BIRD over its control socket (`birdcl -s /var/run/calico/bird.ctl <query>`).
    fn bird(&self, node: &str, query: &str) -> Result<String, BackendError>;
    /// A file of calico-node's (e.g. `/etc/calico/confd/config/bird.cfg`).
    fn read_file(&self, node: &str, path: &str) -> Result<String, BackendError>;
    /// The error BIRD gave when it last rejected a new config (calico-node keeps the old one), if any.
    fn bird_config_error(&self, node: &str) -> Option<String>;
    /// The kernel's main table read natively (the twin: rtnetlink in the node's namespace), instead of the
    /// FIB observation's command; None: run the command. Same content as `ip -j route show table main`.
    fn kernel_routes(&self, _node: &str) -> Option<Result<Vec<crate::observe::KernelRoute>, BackendError>> {
        None
    }
    /// Type the operator's command lines into a cluster; one [`Outcome`] per command that ran.
    fn run_commands(&mut self, cluster: &str, label: &str, script: &str) -> Result<Vec<Outcome>, BackendError>;
    /// A harness action on one node.
    fn node_action(&mut self, node: &str, action: NodeAction) -> Result<(), BackendError>;
    /// One link's cable pulled (`up` false) or plugged back: `node`'s end `iface` and its peer lose carrier;
    /// addresses and routes stay, as with a real cable.
    fn set_link(&mut self, node: &str, iface: &str, up: bool) -> Result<(), BackendError>;
    /// Start continuous pod-to-pod probes.
    fn start_probes(&mut self, specs: &[ProbeSpec]) -> Result<(), BackendError>;
    /// A step begins: probe statistics count from now.
    fn mark_probes(&mut self);
    /// Per probe, traffic since [`Backend::mark_probes`].
    fn probe_stats(&self) -> BTreeMap<String, ProbeStats>;
    /// [`Backend::probe_stats`] for the step's final judgement: where the backend can, it waits until the
    /// receivers have logged what arrived (so a late log is not loss).
    fn probe_stats_final(&self) -> BTreeMap<String, ProbeStats> {
        self.probe_stats()
    }
    /// Every probe over the whole run, packet by packet (the report's timelines); empty where the backend
    /// only counts per step.
    fn probe_timelines(&self) -> BTreeMap<String, crate::runner::probe::ProbeTimeline> {
        BTreeMap::new()
    }
    /// Step timeouts are multiplied by this (real calico-node restarts and rollouts take longer).
    fn timeout_scale(&self) -> f64 {
        1.0
    }
    /// Extra material for a failure report, read while the lab is still up (e.g. calico-node's logs).
    fn failure_dump(&self) -> String {
        String::new()
    }
    /// A monitor of every cluster node's BIRD route changes, stamped on the node (None where the nodes'
    /// namespaces are not this host's to enter).
    fn route_monitor(&self) -> Option<crate::runtime::netlink::RouteMonitor> {
        None
    }
    /// The rrlab binary as commands on the WAN see it (`rrlab impaird` runs there). Default: this host's (the
    /// WAN's commands run with the host's tools in its network namespace).
    fn wan_rrlab_bin(&self) -> Result<String, BackendError> {
        crate::runtime::rrlab_binary()
            .map(|p| p.display().to_string())
            .map_err(|e| BackendError::exec(Target::Wan, e.to_string()))
    }
    /// Remove the lab; what was removed.
    fn teardown(&mut self) -> Result<Vec<String>, BackendError>;
}

/// How to bring a lab up.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The twin's node runtime (None: docker where a Docker daemon answers, else netns).
    pub runtime: Option<RuntimeKind>,
    pub pods_per_node: u32,
    pub timeout: Duration,
    /// Check every pod against every pod before declaring convergence.
    pub ping_matrix: bool,
    /// kind: the lab is already up (`rrlab up --backend kind`).
    pub reuse: bool,
    /// twin (docker runtime): every node serves SSH for `rrlab check --ssh` ([`crate::lab::ssh`]).
    pub ssh: bool,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            runtime: None,
            pods_per_node: 2,
            timeout: Duration::from_secs(180),
            ping_matrix: true,
            reuse: false,
            ssh: false,
        }
    }
}

type UpFn = fn(&Path, &UpOptions, &dyn Fn(&str)) -> Result<Box<dyn Backend>, BackendError>;

/// One backend of the registry.
pub struct Entry {
    pub kind: BackendKind,
    pub name: &'static str,
    pub about: &'static str,
    /// Bring a topology up and return the lab.
    pub up: UpFn,
}

/// Every backend, in one table.
pub const REGISTRY: &[Entry] = &[
    Entry {
        kind: BackendKind::Twin,
        name: "twin",
        about: "calico-node twins: real BIRD 1.6.8 with calico-node v3.30's configs and Felix's state (offline)",
        up: twin::up,
    },
    Entry {
        kind: BackendKind::Kind,
        name: "kind",
        about: "real kind clusters with Calico v3.30 and containerlab (needs registries)",
        up: crate::kind::backend::up,
    },
];

pub fn entry(kind: BackendKind) -> &'static Entry {
    REGISTRY.iter().find(|e| e.kind == kind).expect("every BackendKind is in the registry")
}

/// Bring a topology up on a backend.
pub fn up(
    kind: BackendKind,
    topology: &Path,
    opts: &UpOptions,
    progress: &dyn Fn(&str),
) -> Result<Box<dyn Backend>, BackendError> {
    (entry(kind).up)(topology, opts, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_by_name_and_env() {
        assert_eq!("twin".parse::<BackendKind>().unwrap(), BackendKind::Twin);
        assert_eq!("KIND".parse::<BackendKind>().unwrap(), BackendKind::Kind);
        assert_eq!(from_env(None).unwrap(), BackendKind::Twin);
        assert_eq!(from_env(Some(" ")).unwrap(), BackendKind::Twin);
        assert_eq!(from_env(Some("kind")).unwrap(), BackendKind::Kind);
        let e = from_env(Some("docker")).unwrap_err().to_string();
        assert_eq!(e, "RRLAB_BACKEND: unknown backend \"docker\" (backends: twin, kind)");
        for k in [BackendKind::Twin, BackendKind::Kind] {
            assert_eq!(entry(k).name, k.as_str());
        }
    }
}
