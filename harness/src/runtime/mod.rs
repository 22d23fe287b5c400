//! Node runtimes: what a twin node is. One small trait, one module per kind (like containerlab's
//! `nodes/<kind>`): `netns` (a network namespace on this host) and `docker` (a privileged container). Links,
//! bridges and the lab fabric are built the same way for both, from the node's network namespace handle.

pub mod docker;
pub mod netlink;
pub mod netns;

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Command(String),
    #[error("{0}")]
    Io(String),
    #[error("runtime {0} is not available here: {1}")]
    Unavailable(String, String),
}

/// What a twin node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// A container of the locally built node image.
    Docker,
    /// A network namespace on this host.
    Netns,
}

impl RuntimeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Docker => "docker",
            RuntimeKind::Netns => "netns",
        }
    }

    /// The runtime asked for, else docker where a Docker daemon answers, else netns.
    pub fn or_default(asked: Option<RuntimeKind>) -> RuntimeKind {
        match asked {
            Some(k) => k,
            None if docker::Docker::new().is_ok() => RuntimeKind::Docker,
            None => RuntimeKind::Netns,
        }
    }
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = RuntimeError;
    fn from_str(s: &str) -> Result<RuntimeKind, RuntimeError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "docker" => Ok(RuntimeKind::Docker),
            "netns" => Ok(RuntimeKind::Netns),
            other => Err(RuntimeError::Unavailable(other.to_string(), "the runtimes are docker and netns".into())),
        }
    }
}

/// The runtime of a kind.
pub fn runtime_for(kind: RuntimeKind) -> Result<Box<dyn Runtime>, RuntimeError> {
    match kind {
        RuntimeKind::Netns => Ok(Box::new(netns::Netns)),
        RuntimeKind::Docker => Ok(Box::new(docker::Docker::new()?)),
    }
}

/// A node of a lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    pub lab: String,
    pub node: String,
}

pub trait Runtime: Send + Sync {
    fn kind(&self) -> RuntimeKind;
    /// Create the node (namespace or container), loopback up, nothing else.
    /// `state_dir` is the node's state directory (BIRD files, socket, desired/status).
    fn create_node(&self, n: &NodeRef, state_dir: &Path) -> Result<(), RuntimeError>;
    /// The node's network namespace as a path (`/var/run/netns/<name>`, `/proc/<pid>/ns/net`).
    fn netns_path(&self, n: &NodeRef) -> Result<PathBuf, RuntimeError>;
    /// What `ip link set X netns <handle>` accepts for this node (a netns name or a PID).
    fn netns_handle(&self, n: &NodeRef) -> Result<String, RuntimeError>;
    /// Run a command inside the node.
    fn exec(&self, n: &NodeRef, argv: &[&str]) -> Result<std::process::Output, RuntimeError>;
    /// Start `rrlab agent` in the node; returns its PID (host view).
    fn spawn_agent(&self, n: &NodeRef, state_dir: &Path, rrlab_bin: &Path) -> Result<u32, RuntimeError>;
    /// Where a Calico path of the node (e.g. `/var/run/calico/bird.ctl`) is reachable from this host.
    fn node_path(&self, n: &NodeRef, state_dir: &Path, calico_path: &str) -> PathBuf;
    /// Where the node's state directory is, as seen from inside the node.
    fn inside_dir(&self, state_dir: &Path) -> PathBuf {
        state_dir.to_path_buf()
    }
    /// The rrlab binary, as seen from inside the node.
    fn inside_bin(&self) -> Result<PathBuf, RuntimeError> {
        rrlab_binary()
    }
    /// Freeze every process of the node (`frozen`), or let them run again.
    fn freeze(&self, n: &NodeRef, frozen: bool) -> Result<(), RuntimeError>;
    /// Remove the node and everything running in it.
    fn destroy_node(&self, n: &NodeRef) -> Result<(), RuntimeError>;
}

/// The rrlab binary that nodes run as their agent: `$RRLAB_BIN`, else this executable.
pub fn rrlab_binary() -> Result<PathBuf, RuntimeError> {
    match std::env::var_os("RRLAB_BIN") {
        Some(p) => Ok(PathBuf::from(p)),
        None => std::env::current_exe().map_err(|e| RuntimeError::Io(e.to_string())),
    }
}

/// Run a host command; Err with its stderr.
pub fn cmd(argv: &[&str]) -> Result<String, RuntimeError> {
    crate::process::run_ok(argv).map_err(|e| RuntimeError::Command(e.to_string()))
}

/// Output of a command run in a node, as text; Err when it failed.
pub fn exec_ok(rt: &dyn Runtime, n: &NodeRef, argv: &[&str]) -> Result<String, RuntimeError> {
    let out = rt.exec(n, argv)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(RuntimeError::Command(format!(
            "{}: `{}` failed: {}{}",
            n.node,
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )))
    }
}

/// The lab's fabric namespace, which holds the site bridges.
pub fn fabric_ns(lab: &str) -> String {
    format!("rrlab-{lab}-fabric")
}

/// A veth between two namespaces (by handle), named `a_if` / `b_if` inside them. Temporary names are unique
/// per lab and link index so that concurrent labs do not collide in the root namespace.
pub fn veth(tag: &str, a_handle: &str, a_if: &str, b_handle: &str, b_if: &str) -> Result<(), RuntimeError> {
    let ta = format!("rr{tag}a");
    let tb = format!("rr{tag}b");
    cmd(&["ip", "link", "add", &ta, "type", "veth", "peer", "name", &tb])?;
    let r = (|| {
        cmd(&["ip", "link", "set", &ta, "netns", a_handle])?;
        cmd(&["ip", "link", "set", &tb, "netns", b_handle])?;
        in_ns(a_handle, &["ip", "link", "set", &ta, "name", a_if])?;
        in_ns(b_handle, &["ip", "link", "set", &tb, "name", b_if])?;
        in_ns(a_handle, &["ip", "link", "set", a_if, "up"])?;
        in_ns(b_handle, &["ip", "link", "set", b_if, "up"])?;
        Ok(())
    })();
    if r.is_err() {
        let _ = cmd(&["ip", "link", "del", &ta]);
    }
    r
}

/// Run `ip …` in a namespace given by name or PID.
pub fn in_ns(handle: &str, argv: &[&str]) -> Result<String, RuntimeError> {
    if handle.bytes().all(|b| b.is_ascii_digit()) {
        let mut full = vec!["nsenter", "-t", handle, "-n"];
        full.extend_from_slice(argv);
        cmd(&full)
    } else {
        let mut full = vec!["ip", "netns", "exec", handle];
        full.extend_from_slice(argv);
        cmd(&full)
    }
}
