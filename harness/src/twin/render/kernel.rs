//! Calico's kernel programming decision per IP pool (bird_ipam.cfg.template `calico_kernel_programming`):
//! VXLAN pools are left to Felix (reject), IPIP Always goes through tunl0, IPIP CrossSubnet goes through
//! tunl0 unless the BGP next hop is in this node's subnet, no encapsulation installs a plain route; routes
//! outside every pool are accepted as they are. Calico's BIRD fork does this with `krt_tunnel`; the twin's
//! agent applies the same decision itself (see the design notes on tunl0).

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};

use crate::model::resources::{EncapMode, IpPool};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum KernelDecision {
    /// `krt_tunnel = "tunl0"`: `<block> via <BGP next hop> dev tunl0 onlink`.
    Tunnel { device: String },
    /// `krt_tunnel = ""`: a plain route via the next hop.
    NoTunnel,
    /// IPIP CrossSubnet: no tunnel when the BGP next hop is inside `local_subnet`, tunl0 otherwise.
    CrossSubnet { local_subnet: Ipv4Net, device: String },
    /// Not programmed by BIRD (VXLAN: Felix does it).
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolDecision {
    pub pool: IpNet,
    #[serde(flatten)]
    pub decision: KernelDecision,
}

/// The whole kernel filter: prefixes rejected outright (static routes), then per pool, then accept.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KernelProgramming {
    pub reject_cidrs: Vec<IpNet>,
    pub pools: Vec<PoolDecision>,
}

/// Decision for one pool, given the node's subnet (`network_v4`).
pub fn pool_decision(pool: &IpPool, node_network: Ipv4Net) -> KernelDecision {
    if pool.spec.vxlan_mode != EncapMode::Never {
        return KernelDecision::Reject;
    }
    match pool.spec.ipip_mode {
        EncapMode::Always => KernelDecision::Tunnel { device: "tunl0".into() },
        EncapMode::CrossSubnet => KernelDecision::CrossSubnet { local_subnet: node_network, device: "tunl0".into() },
        EncapMode::Never => KernelDecision::NoTunnel,
    }
}

impl KernelProgramming {
    /// Where a route for `net` learned with BGP next hop `next_hop` goes: `None` = not installed, `Some(None)`
    /// = plain route, `Some(Some(dev))` = through the tunnel device.
    pub fn route_for(&self, net: &IpNet, next_hop: Option<std::net::Ipv4Addr>) -> Option<Option<String>> {
        if self.reject_cidrs.iter().any(|c| c.contains(net)) {
            return None;
        }
        for p in &self.pools {
            if p.pool.contains(net) {
                return match &p.decision {
                    KernelDecision::Reject => None,
                    KernelDecision::NoTunnel => Some(None),
                    KernelDecision::Tunnel { device } => Some(Some(device.clone())),
                    KernelDecision::CrossSubnet { local_subnet, device } => match next_hop {
                        Some(nh) if local_subnet.contains(&nh) => Some(None),
                        _ => Some(Some(device.clone())),
                    },
                };
            }
        }
        Some(None)
    }
}
