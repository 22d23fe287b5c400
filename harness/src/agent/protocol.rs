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
    /// Queries sent to BIRD's control socket, and of those full `show route all` dumps: the agent's own load
    /// on BIRD. Not a reason to write the status: they are as fresh as its last write (at most 10 s old).
    #[serde(default)]
    pub bird_queries: u64,
    #[serde(default)]
    pub full_dumps: u64,
}

pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_without_the_query_counters_still_reads() {
        let old = r#"{"applied_version":3,"bird_config_error":null,"bird_pid":7,"routes":[],"tunnel":null,"errors":[],"heartbeat_ms":1}"#;
        let s: Status = serde_json::from_str(old).unwrap();
        assert_eq!((s.applied_version, s.bird_queries, s.full_dumps), (3, 0, 0));
        let s2 = Status { bird_queries: 5, full_dumps: 2, ..s };
        let back: Status = serde_json::from_str(&serde_json::to_string(&s2).unwrap()).unwrap();
        assert_eq!((back.bird_queries, back.full_dumps), (5, 2));
    }
}
