//! The renderer: datastore → what calico-node v3.30 would produce on one node (confd's three BIRD files, the
//! kernel programming decisions, Felix's IPIP state). Pure functions; one file per Calico behaviour:
//!
//! | Calico behaviour                               | file           |
//! |------------------------------------------------|----------------|
//! | explicit peer selection (updatePeersV1)        | `peers.rs`     |
//! | node-to-node mesh, template, options           | `bird_cfg.rs`  |
//! | route-reflector client rule                    | `rr.rs`        |
//! | BGP export filter (calico_export_to_bgp_peers) | `ipam_cfg.rs`  |
//! | block aggregation and blackholes               | `aggr_cfg.rs`  |
//! | kernel programming per pool (krt_tunnel)       | `kernel.rs`    |
//! | Felix IPIP ipset/iptables/tunl0                | `felix.rs`     |
//! | service IP advertisement (static routes)       | `services.rs`  |

pub mod aggr_cfg;
pub mod bird_cfg;
pub mod felix;
pub mod ipam_cfg;
pub mod kernel;
pub mod peers;
pub mod rr;
pub mod services;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::model::resources::{parse_peer_ip, BgpConfiguration};
use crate::twin::datastore::{Datastore, HostBgp};

pub use felix::FelixState;
pub use kernel::{KernelDecision, KernelProgramming};

/// The private kernel table the twin's BIRD exports into (the agent mirrors it into main).
pub const TWIN_KERNEL_TABLE: u32 = 201;

/// Which BIRD the text is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Flavor {
    /// Exactly what calico-node writes for Calico's BIRD fork (`krt_tunnel`).
    Calico,
    /// What the twin runs on upstream BIRD 1.6.8: `krt_tunnel` is a filter-local variable (the agent applies the
    /// kernel decision) and BIRD programs a private kernel table.
    Upstream,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("unknown node {node:?} (known nodes: {known})")]
    UnknownNode { node: String, known: String },
}

/// What the renderer reads, for one node.
pub struct RenderContext<'a> {
    pub ds: &'a Datastore,
    pub node: &'a str,
    pub host: HostBgp,
    pub flavor: Flavor,
}

impl<'a> RenderContext<'a> {
    pub fn new(ds: &'a Datastore, node: &'a str, flavor: Flavor) -> Result<RenderContext<'a>, RenderError> {
        let rec = ds.node(node).ok_or_else(|| RenderError::UnknownNode {
            node: node.to_string(),
            known: if ds.nodes.is_empty() {
                "none".into()
            } else {
                ds.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })?;
        Ok(RenderContext { ds, node, host: rec.bgp(), flavor })
    }

    /// calico-node's environment (the DaemonSet's env).
    pub fn env(&self, key: &str) -> Option<&str> {
        self.ds.calico_node_env.get(key).map(String::as_str)
    }

    /// BGPConfiguration `node.<this node>`.
    pub fn node_bgp_config(&self) -> Option<&BgpConfiguration> {
        self.ds.bgp_configurations.get(&format!("node.{}", self.node))
    }

    /// `reachableBy` static routes (peer IP, gateway) of IPv4 peers rendered on this node.
    pub fn reachable_by_routes(&self) -> Vec<(String, String)> {
        let set = peers::peer_set(self.ds, self.node);
        set.global
            .values()
            .chain(set.node.values())
            .filter(|p| p.ip.is_ipv4() && !p.reachable_by.is_empty())
            .map(|p| (p.ip.to_string(), p.reachable_by.clone()))
            .collect()
    }
}

/// One BGP session this node's BIRD will have, as data (for observers and the status table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSpec {
    pub protocol: String,
    pub neighbor: IpAddr,
    pub port: Option<u16>,
    pub remote_as: u32,
}

/// Everything calico-node produces on a node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Render {
    pub node: String,
    pub flavor: Flavor,
    pub bird_cfg: String,
    pub bird_ipam_cfg: String,
    pub bird_aggr_cfg: String,
    pub kernel: KernelProgramming,
    pub felix: FelixState,
}

impl Render {
    /// confd's check_cmd (`bird -p -c`) on the three files, in a scratch directory; Err(BIRD's stderr).
    pub fn bird_check(&self, bird: &str) -> Result<(), String> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rrlab-check-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let result = (|| {
            for (name, text) in self.files() {
                std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
            }
            let out = std::process::Command::new(bird)
                .arg("-p")
                .arg("-c")
                .arg(dir.join("bird.cfg"))
                .current_dir(&dir)
                .output()
                .map_err(|e| format!("running {bird} (BIRD 1.6.8 must be installed): {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        })();
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    /// The three files by their names in `/etc/calico/confd/config/`.
    pub fn files(&self) -> BTreeMap<&'static str, &str> {
        BTreeMap::from([
            ("bird.cfg", self.bird_cfg.as_str()),
            ("bird_ipam.cfg", self.bird_ipam_cfg.as_str()),
            ("bird_aggr.cfg", self.bird_aggr_cfg.as_str()),
        ])
    }
}

/// Render one node.
pub fn render_node(ds: &Datastore, node: &str, flavor: Flavor) -> Result<Render, RenderError> {
    let cx = RenderContext::new(ds, node, flavor)?;
    let kernel = ipam_cfg::kernel_programming(&cx);
    Ok(Render {
        node: node.to_string(),
        flavor,
        bird_cfg: bird_cfg::render(&cx),
        bird_ipam_cfg: ipam_cfg::render(&cx, &kernel),
        bird_aggr_cfg: aggr_cfg::render(&cx),
        kernel,
        felix: felix::felix_state(&cx),
    })
}

/// Peer addresses of a BGPPeer's peerIP (helper for commands and observers).
pub fn peer_ip_of(s: &str) -> Option<IpAddr> {
    parse_peer_ip(s).ok().map(|(ip, _)| ip)
}
