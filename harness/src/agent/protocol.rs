//! What the lab controller tells a node's agent (`desired.json`) and what the agent reports (`status.json`),
//! both in the node's state directory. Files are replaced atomically (write + rename).

use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::twin::render::{FelixState, KernelProgramming};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodSpec {
    /// Kubernetes-style name, e.g. `hybrid-worker2-p1`.
    pub name: String,
    pub ip: Ipv4Addr,
    /// Host-side veth, `cali` + 11 hex of sha1("<namespace>.<pod>").
    pub veth: String,
    /// Network namespace name on the host running the node.
    pub netns: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    /// Increases with every push.
    pub version: u64,
    pub node: String,
    /// bird.cfg, bird_ipam.cfg, bird_aggr.cfg (upstream flavour).
    pub bird_files: Vec<(String, String)>,
    pub kernel: KernelProgramming,
    pub felix: FelixState,
    pub pods: Vec<PodSpec>,
    /// BIRD should run (harness action "stop BIRD" sets false).
    pub bird_running: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Status {
    /// Last `Desired.version` fully applied.
    pub applied_version: u64,
    /// BIRD refused the last config (confd's check_cmd / `configure` reply); the old config stays.
    pub bird_config_error: Option<String>,
    pub bird_pid: Option<u32>,
    /// Routes the agent programmed into main (`proto bird`), as `ip route` prints them.
    pub routes: Vec<String>,
    pub tunnel: Option<String>,
    pub errors: Vec<String>,
    /// Milliseconds since the epoch of the last loop.
    pub heartbeat_ms: u64,
}

pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
