//! `rrlab check`: a runbook's expectations judged against a LIVE cluster, read-only. The observations are the
//! rehearsal's own ([`crate::backend::observe`]: BIRD over its socket, `ip -j route`, ipset, iptables-save,
//! confd's files), read through a [`Transport`]:
//! - [`ssh::SshTransport`] (`--ssh <inventory>`): one SSH session per node (the `ssh2` crate, key or agent
//!   auth, host keys verified against known_hosts, never accepted when unknown), commands run on the host
//!   (calico-node as a service) or in its container (`docker exec`, `crictl exec`, `nerdctl exec`);
//! - [`kubectl::KubectlTransport`] (`--kubectl`): `kubectl exec` into the node's calico-node pod.
//!
//! [`RemoteBackend`] puts a transport behind the [`Backend`] seam, read-only: every mutator refuses, except
//! the step's operator commands when `--apply` is given ([`ApplyOptions`]). [`check::check`] evaluates one
//! step and feeds the rehearsal's reporters. Expectations a read-only check cannot judge (probe loss, pings
//! between rrlab's probe pods, WAN emulator counters, a step's own commands when they were not typed) are
//! listed as not checked with the reason, never counted as passed ([`check::plan`]).
//!
//! A live cluster has no rrlab probe pods; so that `block:<node>` / `blocks:<set>` resolve, each node's IPAM
//! blocks (confd's `bird_aggr.cfg`, the `route <block> blackhole;` lines of its `protocol static`) stand in
//! [`NodeInfo::pods`] as one address each, named `ipam-block:<cidr>` ([`block_pods`]); nothing pings them.

pub mod check;
pub mod inventory;
pub mod kubectl;
pub mod ssh;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Mutex;

use crate::backend::observe::{BIRD_SOCKET, CONFD_DIR};
use crate::backend::{Backend, BackendError, BackendKind, NodeAction, Target};
use crate::model::topology::Topology;
use crate::model::InputError;
use crate::process::{Output, Spec};
use crate::runbook::lab::{NodeInfo, PodInfo, ProbeStats};
use crate::runbook::model::ProbeSpec;
use crate::twin::commands::Outcome;

pub use check::{cli_check, CheckArgs, CheckOptions, CheckResult};
pub use inventory::Inventory;

/// BIRD's client in calico-node (calico-node's own health check runs `birdcl -s … show status`).
pub const BIRDCL: &str = "birdcl";

/// Why a check could not be made (bad input, a node out of reach, a host key refused).
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The runbook or its topology does not load.
    #[error("{0}")]
    Runbook(String),
    /// The inventory file is wrong (file, line and field named).
    #[error(transparent)]
    Inventory(#[from] InputError),
    /// Nodes an expectation reads have no entry in the inventory.
    #[error(
        "{} read by the step's expectations {} not in the inventory {inventory} (add them under `nodes:`)",
        nodes.join(", "),
        if nodes.len() == 1 { "is" } else { "are" }
    )]
    MissingNodes { inventory: String, nodes: Vec<String> },
    /// The TCP connection to a node's SSH server failed.
    #[error("cannot reach {node} at {host}:{port} (inventory {inventory}): {error}")]
    Unreachable { node: String, host: String, port: u16, inventory: String, error: String },
    /// The node's host key differs from the one known_hosts has for it.
    #[error(
        "host key of {node} ({host}:{port}) does not match {known_hosts}{} — possible MITM or a reinstalled node{hint}; \
         not connecting",
        line.map(|l| format!(":{l}")).unwrap_or_default()
    )]
    HostKeyMismatch { node: String, host: String, port: u16, known_hosts: String, line: Option<usize>, hint: String },
    /// known_hosts marks the node's key `@revoked`.
    #[error("host key of {node} ({host}:{port}) is marked @revoked in {known_hosts}:{line}; not connecting")]
    HostKeyRevoked { node: String, host: String, port: u16, known_hosts: String, line: usize },
    /// known_hosts has no key for the node: unknown keys are never accepted.
    #[error(
        "host key of {node} ({host}:{port}) is not in {known_hosts}: add it with ssh-keyscan after verifying it \
         (`{keyscan}`, compare with the node's own `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub`){note}; not connecting"
    )]
    HostKeyUnknown { node: String, host: String, port: u16, known_hosts: String, keyscan: String, note: String },
    /// Any other SSH failure (handshake, authentication, a channel).
    #[error("ssh {node} ({user}@{host}:{port}): {message}")]
    Ssh { node: String, user: String, host: String, port: u16, message: String },
    /// A kubectl call failed.
    #[error("{0}")]
    Kubectl(String),
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// A report file could not be written.
    #[error("{0}")]
    Io(String),
    /// Several nodes could not be reached, each with its error.
    #[error("{} nodes cannot be reached:\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Nodes(Vec<RemoteError>),
}

impl RemoteError {
    /// One error for many: none, the only one, or [`RemoteError::Nodes`].
    pub fn all(mut errors: Vec<RemoteError>) -> Result<(), RemoteError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(RemoteError::Nodes(errors)),
        }
    }
}

impl From<RemoteError> for BackendError {
    fn from(e: RemoteError) -> BackendError {
        BackendError::Other(e.to_string())
    }
}

/// How the nodes' calico-node is reached: one implementation per way in.
pub trait Transport: Send + Sync {
    /// `ssh`, `kubectl`.
    fn name(&self) -> &'static str;
    /// One line for the output: `ssh (inventory /x/inventory.yaml, calico-node in docker container calico-node)`.
    fn describe(&self) -> String;
    /// Run `argv` where calico-node's processes run (its container, or the host for a service); a non-zero
    /// exit is an [`Output`], not an error.
    fn calico_node(&self, node: &str, argv: &[&str]) -> Result<Output, RemoteError>;
    /// Run `argv` on the node's host.
    fn host(&self, node: &str, argv: &[&str]) -> Result<Output, RemoteError>;
    /// BIRD's client program on that node.
    fn bird_client(&self, _node: &str) -> String {
        BIRDCL.to_string()
    }
    /// BIRD's IPv4 control socket on that node.
    fn bird_socket(&self, _node: &str) -> String {
        BIRD_SOCKET.to_string()
    }
    /// confd's output directory on that node.
    fn confd_dir(&self, _node: &str) -> String {
        CONFD_DIR.to_string()
    }
    /// calico-node's log of the last hour (for BIRD config rejections); None where it cannot be read.
    fn calico_node_log(&self, _node: &str) -> Option<String> {
        None
    }
    /// The nodes this transport can reach (None: every node of the topology).
    fn reachable(&self) -> Option<BTreeSet<String>> {
        None
    }
    /// Every node of `nodes` can be reached, else an error naming those that cannot (before connecting).
    fn require(&self, _nodes: &BTreeSet<String>) -> Result<(), RemoteError> {
        Ok(())
    }
    /// Open the way to each of `nodes` now (SSH: connect, verify the host key, authenticate; kubectl: find
    /// the calico-node pods), so that an unreachable node or a refused host key stops the check at once.
    fn connect(&self, _nodes: &[String]) -> Result<(), RemoteError> {
        Ok(())
    }
}

/// Runs a local program (the operator's kubectl, `bash -e -c` for `--apply`); replaced in tests.
pub type Runner = dyn Fn(&Spec<'_>) -> std::io::Result<Output> + Send + Sync;

/// The real [`Runner`]: [`crate::process::run_spec`].
pub fn process_runner() -> Box<Runner> {
    Box::new(|s: &Spec<'_>| crate::process::run_spec(s))
}

/// Drop birdcl's banner (`BIRD v0.3.3+birdv1.6.8 ready.`) and interactive prompt lines: what is left is the
/// reply as birdcl prints it (the observe parsers accept it with or without the banner).
pub fn clean_birdcl(out: &str) -> String {
    let mut s = String::with_capacity(out.len());
    for l in out.split_inclusive('\n') {
        let t = l.trim_end();
        let banner = t.starts_with("BIRD ") && t.ends_with(" ready.");
        if banner || t == "bird>" || t.starts_with("bird> ") {
            continue;
        }
        s.push_str(l);
    }
    s
}

/// A node's IPAM blocks from confd's `bird_aggr.cfg`: the `route <cidr> blackhole;` lines of its
/// `protocol static` ("IP blocks for this host", Calico's `bird_aggr.cfg.template`).
pub fn parse_aggr_blocks(bird_aggr: &str) -> Vec<ipnet::Ipv4Net> {
    let mut out = Vec::new();
    let mut in_static = false;
    for l in bird_aggr.lines() {
        let t = l.trim();
        if t.starts_with("protocol static") {
            in_static = true;
        } else if in_static && t.starts_with('}') {
            in_static = false;
        } else if in_static {
            let w: Vec<&str> = t.trim_end_matches(';').split_whitespace().collect();
            if let ["route", cidr, "blackhole"] = w.as_slice() {
                if let Ok(n) = cidr.parse::<ipnet::Ipv4Net>() {
                    out.push(n.trunc());
                }
            }
        }
    }
    out
}

/// The stand-in pods of a node's blocks: `ipam-block:<cidr>` at the block's first address.
pub fn block_pods(node: &str, blocks: &[ipnet::Ipv4Net]) -> Vec<PodInfo> {
    blocks
        .iter()
        .map(|b| PodInfo { name: format!("ipam-block:{b}"), node: node.to_string(), ip: b.network() })
        .collect()
}

/// Where a live node's labels come from.
pub enum Labels {
    /// `kubectl get nodes -o json` per cluster, read at the start and after `--apply`.
    Live(kubectl::KubectlAccess),
    /// The topology's (no kubectl given).
    Topology,
}

/// `--apply`: the step's script is run here, as the operator would type it.
pub struct ApplyOptions {
    pub kubectl: kubectl::KubectlAccess,
    /// calicoctl's program words (default `calicoctl`).
    pub calicoctl: Vec<String>,
}

/// `bash -e -c <script>`, with `kubectl`/`calicoctl` shell functions when other program words, a kubeconfig
/// or a context are given, and `KUBECONFIG` exported for calicoctl's Kubernetes datastore.
pub fn apply_command(script: &str, kubectl_words: &[String], calicoctl: &[String]) -> Vec<String> {
    let mut prelude = String::new();
    let func = |name: &str, words: &[String]| -> Option<String> {
        (words.len() != 1 || words[0] != name)
            .then(|| format!("{name}() {{ command {} \"$@\"; }}\n", crate::process::shell_line(words)))
    };
    if let Some(f) = func("kubectl", kubectl_words) {
        prelude.push_str(&f);
    }
    if let Some(f) = func("calicoctl", calicoctl) {
        prelude.push_str(&f);
    }
    vec!["bash".into(), "-e".into(), "-c".into(), format!("{prelude}{script}")]
}

/// A live cluster behind the [`Backend`] seam, read-only.
pub struct RemoteBackend {
    topo: Topology,
    transport: Box<dyn Transport>,
    labels: Labels,
    apply: Option<ApplyOptions>,
    run: Box<Runner>,
    /// Live labels per node (empty: the topology's).
    live: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    /// IPAM blocks per node, read once when an expectation names blocks.
    blocks: Mutex<BTreeMap<String, Vec<ipnet::Ipv4Net>>>,
}

impl RemoteBackend {
    /// A backend over `transport`; `apply` None: read-only. `run` runs kubectl and `--apply`'s scripts.
    pub fn new(
        topo: Topology,
        transport: Box<dyn Transport>,
        labels: Labels,
        apply: Option<ApplyOptions>,
        run: Box<Runner>,
    ) -> RemoteBackend {
        RemoteBackend { topo, transport, labels, apply, run, live: Mutex::default(), blocks: Mutex::default() }
    }

    pub fn transport(&self) -> &dyn Transport {
        self.transport.as_ref()
    }

    /// Whether labels are the live ones.
    pub fn live_labels(&self) -> bool {
        matches!(self.labels, Labels::Live(_))
    }

    /// Read every cluster's live labels (a no-op with the topology's); the nodes whose live address
    /// (`projectcalico.org/IPv4Address`) differs from the topology's, as warnings.
    pub fn refresh_labels(&self) -> Result<Vec<String>, RemoteError> {
        let Labels::Live(k) = &self.labels else { return Ok(Vec::new()) };
        let mut all = BTreeMap::new();
        let mut warnings = Vec::new();
        for c in &self.topo.clusters {
            let live = k.live_nodes(&c.name, self.run.as_ref())?;
            for n in &c.nodes {
                match live.get(&n.name) {
                    Some(l) => {
                        let topo_ip = self.topo.node_ip(&n.name).map(|i| i.addr());
                        if let (Some(a), Some(b)) = (l.calico_ip, topo_ip) {
                            if a != b {
                                warnings.push(format!(
                                    "{}: calico-node's address is {a} (projectcalico.org/IPv4Address), the topology says {b}; expectations use the topology's",
                                    n.name
                                ));
                            }
                        }
                        all.insert(n.name.clone(), l.labels.clone());
                    }
                    None => warnings.push(format!(
                        "{}: no such node in cluster {} (kubectl get nodes); its labels are the topology's",
                        n.name, c.name
                    )),
                }
            }
        }
        *self.live.lock().expect("labels") = all;
        Ok(warnings)
    }

    /// Read the IPAM blocks of `nodes` (confd's `bird_aggr.cfg`); a node whose file cannot be read, or whose
    /// blocks are not of `block_size`, as a warning.
    pub fn read_blocks(&self, nodes: &[String], block_size: u8) -> Vec<String> {
        let read = crate::backend::observe::fan_out(nodes, |n| {
            let path = format!("{}/bird_aggr.cfg", self.transport.confd_dir(n));
            self.read_file(n, &path).map(|t| parse_aggr_blocks(&t))
        });
        let mut warnings = Vec::new();
        let mut blocks = self.blocks.lock().expect("blocks");
        for (n, r) in nodes.iter().zip(read) {
            match r {
                Ok(b) => {
                    if b.is_empty() {
                        warnings.push(format!("{n}: no IPAM block in bird_aggr.cfg (block:{n} resolves to nothing)"));
                    }
                    for x in b.iter().filter(|x| x.prefix_len() != block_size) {
                        warnings.push(format!(
                            "{n}: block {x} is a /{}, the runbook's block_size is {block_size} (defaults.block_size)",
                            x.prefix_len()
                        ));
                    }
                    blocks.insert(n.clone(), b);
                }
                Err(e) => warnings.push(format!("{n}: its IPAM blocks are unknown: {e}")),
            }
        }
        warnings
    }

    fn refuse(what: &str) -> BackendError {
        BackendError::Usage(format!("rrlab check is read-only: it does not {what} on a live cluster"))
    }

    fn exec_err(target: Target<'_>, e: RemoteError) -> BackendError {
        BackendError::exec(target, e.to_string())
    }
}

impl Backend for RemoteBackend {
    /// Only `runner::run_on` reads a backend's kind, and `rrlab check` does not go through it; a live cluster
    /// runs real calico-node, as kind's labs do.
    fn kind(&self) -> BackendKind {
        BackendKind::Kind
    }

    fn lab(&self) -> &str {
        &self.topo.name
    }

    fn topology(&self) -> &Topology {
        &self.topo
    }

    /// The topology's cluster nodes (name, cluster, site, address), with the live labels when read and each
    /// IPAM block as a stand-in pod (see the module doc).
    fn nodes(&self) -> Vec<NodeInfo> {
        let live = self.live.lock().expect("labels");
        let blocks = self.blocks.lock().expect("blocks");
        let mut out = Vec::new();
        for c in &self.topo.clusters {
            for n in &c.nodes {
                let Some(ip) = self.topo.node_ip(&n.name) else { continue };
                out.push(NodeInfo {
                    name: n.name.clone(),
                    cluster: c.name.clone(),
                    site: self.topo.site_of(&n.name),
                    ip: ip.addr(),
                    labels: live.get(&n.name).cloned().unwrap_or_else(|| n.labels.clone()),
                    pods: blocks.get(&n.name).map(|b| block_pods(&n.name, b)).unwrap_or_default(),
                });
            }
        }
        out
    }

    fn exec(&self, target: Target<'_>, argv: &[&str]) -> Result<Output, BackendError> {
        match target {
            Target::CalicoNode(n) => self.transport.calico_node(n, argv).map_err(|e| Self::exec_err(target, e)),
            Target::Node(n) => self.transport.host(n, argv).map_err(|e| Self::exec_err(target, e)),
            Target::Pod(p) => Err(BackendError::exec(
                target,
                format!("rrlab check starts no probe pods on a live cluster, so there is no pod {p} to run in"),
            )),
            Target::Wan => Err(BackendError::exec(target, "a live cluster has no rrlab WAN emulator")),
        }
    }

    fn bird(&self, node: &str, query: &str) -> Result<String, BackendError> {
        let (client, sock) = (self.transport.bird_client(node), self.transport.bird_socket(node));
        let mut argv = vec![client.as_str(), "-s", sock.as_str()];
        argv.extend(query.split_whitespace());
        let out = self.exec(Target::CalicoNode(node), &argv)?;
        let text = crate::process::checked(&argv, out)
            .map_err(|source| BackendError::Process { target: Target::CalicoNode(node).to_string(), source })?;
        Ok(clean_birdcl(&text))
    }

    /// `cat <path>` in calico-node; a path under calico-node's confd directory is read from the inventory's.
    fn read_file(&self, node: &str, path: &str) -> Result<String, BackendError> {
        let dir = self.transport.confd_dir(node);
        let path = match path.strip_prefix(CONFD_DIR) {
            Some(rest) if dir != CONFD_DIR && (rest.is_empty() || rest.starts_with('/')) => format!("{dir}{rest}"),
            _ => path.to_string(),
        };
        let argv = ["cat", path.as_str()];
        let out = self.exec(Target::CalicoNode(node), &argv)?;
        crate::process::checked(&argv, out)
            .map_err(|source| BackendError::Process { target: Target::CalicoNode(node).to_string(), source })
    }

    /// From calico-node's log where the transport can read it (see
    /// [`crate::kind::backend::bird_config_error_from_logs`], a heuristic); else None.
    fn bird_config_error(&self, node: &str) -> Option<String> {
        crate::kind::backend::bird_config_error_from_logs(&self.transport.calico_node_log(node)?)
    }

    /// Only with `--apply`: the whole script through `bash -e -c` on this host, one [`Outcome`].
    fn run_commands(&mut self, cluster: &str, _label: &str, script: &str) -> Result<Vec<Outcome>, BackendError> {
        let Some(a) = &self.apply else {
            return Err(BackendError::Usage(
                "rrlab check is read-only: it types the step's commands only with --apply".into(),
            ));
        };
        let argv = apply_command(script, &a.kubectl.words(cluster), &a.calicoctl);
        let env: Vec<(String, String)> =
            a.kubectl.kubeconfig.iter().map(|k| ("KUBECONFIG".to_string(), k.display().to_string())).collect();
        let out = (self.run)(&Spec { argv: &argv, env: &env, ..Default::default() })
            .map_err(|e| BackendError::Other(format!("cannot run bash for the step's commands: {e}")))?;
        let ok = out.success();
        // Labels may have changed (`kubectl label node …`).
        if let Err(e) = self.refresh_labels() {
            return Err(BackendError::Other(format!("the commands ran, but the labels cannot be read again: {e}")));
        }
        Ok(vec![Outcome {
            line: 1,
            command: script.trim_end().to_string(),
            ok,
            stdout: out.stdout,
            stderr: out.stderr,
            changed: ok,
        }])
    }

    fn node_action(&mut self, _node: &str, action: NodeAction) -> Result<(), BackendError> {
        Err(Self::refuse(&action.to_string()))
    }

    fn set_link(&mut self, _node: &str, _iface: &str, _up: bool) -> Result<(), BackendError> {
        Err(Self::refuse("pull or plug links"))
    }

    fn start_probes(&mut self, _specs: &[ProbeSpec]) -> Result<(), BackendError> {
        Err(Self::refuse("start probe traffic"))
    }

    fn mark_probes(&mut self) {}

    fn probe_stats(&self) -> BTreeMap<String, ProbeStats> {
        BTreeMap::new()
    }

    fn wan_rrlab_bin(&self) -> Result<String, BackendError> {
        Err(Self::refuse("run rrlab's WAN emulator"))
    }

    /// Nothing: the cluster is not ours.
    fn teardown(&mut self) -> Result<Vec<String>, BackendError> {
        Ok(Vec::new())
    }
}

/// An IPv4 address from `a.b.c.d` or `a.b.c.d/len` (Calico's node address annotation).
pub fn addr_of(s: &str) -> Option<Ipv4Addr> {
    s.split('/').next()?.trim().parse().ok()
}
