//! Calico IPAM as a lab needs it: each node claims a block (BlockAffinity, confirmed) from the first enabled
//! IPv4 pool whose nodeSelector matches it; the IPIP tunnel address is the block's first free IP (calico-node's
//! allocateip, often `.0`), pods get the next ones. Deterministic: nodes in name order, lowest free block first.

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};

use crate::model::resources::{BlockAffinity, EncapMode};
use crate::model::selector::Selector;
use crate::twin::datastore::{Datastore, ANN_IPIP_TUNNEL};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("no enabled IPv4 IP pool selects node {0}")]
    NoPool(String),
    #[error("IP pool {0} has no free block of size /{1}")]
    PoolFull(String, u8),
    #[error("node {0} is unknown")]
    UnknownNode(String),
}

/// Blocks affine to a node (confirmed or state-less), IPv4.
pub fn node_blocks(ds: &Datastore, node: &str) -> Vec<Ipv4Net> {
    let mut v: Vec<Ipv4Net> = ds
        .block_affinities
        .values()
        .filter(|b| b.node == node && !b.deleted && (b.state.is_empty() || b.state == "confirmed"))
        .filter_map(|b| match b.cidr {
            IpNet::V4(n) => Some(n),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// Ensure `node` has a block; returns it.
pub fn ensure_block(ds: &mut Datastore, node: &str) -> Result<Ipv4Net, IpamError> {
    let rec = ds.nodes.get(node).ok_or_else(|| IpamError::UnknownNode(node.to_string()))?;
    let labels = rec.labels.clone();
    let mut pools: Vec<_> = ds
        .ip_pools
        .values()
        .filter(|p| !p.spec.disabled && matches!(p.spec.cidr, IpNet::V4(_)))
        .filter(|p| Selector::parse(&p.spec.node_selector).map(|s| s.matches(&labels)).unwrap_or(false))
        .cloned()
        .collect();
    pools.sort_by_key(|p| p.metadata.name.clone());
    if let Some(b) =
        node_blocks(ds, node).into_iter().find(|b| pools.iter().any(|p| p.spec.cidr.contains(&IpNet::V4(*b))))
    {
        return Ok(b);
    }
    let pool = pools.first().ok_or_else(|| IpamError::NoPool(node.to_string()))?;
    let IpNet::V4(cidr) = pool.spec.cidr else { return Err(IpamError::NoPool(node.to_string())) };
    let taken: Vec<IpNet> = ds.block_affinities.values().map(|b| b.cidr).collect();
    let block = cidr
        .subnets(pool.spec.block_size)
        .map_err(|_| IpamError::PoolFull(pool.metadata.name.clone(), pool.spec.block_size))?
        .find(|b| !taken.iter().any(|t| t.contains(&std::net::IpAddr::V4(b.network())) || IpNet::V4(*b).contains(t)))
        .ok_or_else(|| IpamError::PoolFull(pool.metadata.name.clone(), pool.spec.block_size))?;
    let name = format!("{node}-{}", block.to_string().replace(['.', '/'], "-"));
    ds.block_affinities.insert(
        name.clone(),
        BlockAffinity {
            name,
            node: node.to_string(),
            cidr: IpNet::V4(block),
            state: "confirmed".into(),
            deleted: false,
            kind: String::new(),
        },
    );
    Ok(block)
}

/// calico-node's tunnel address allocation: the block's first address, recorded on the node, for IPIP pools.
pub fn ensure_tunnel_address(ds: &mut Datastore, node: &str) -> Result<Option<Ipv4Addr>, IpamError> {
    let block = ensure_block(ds, node)?;
    let ipip =
        ds.ip_pools.values().any(|p| p.spec.ipip_mode != EncapMode::Never && p.spec.cidr.contains(&IpNet::V4(block)));
    let rec = ds.nodes.get_mut(node).ok_or_else(|| IpamError::UnknownNode(node.to_string()))?;
    if !ipip {
        rec.annotations.remove(ANN_IPIP_TUNNEL);
        return Ok(None);
    }
    let addr = block.network();
    rec.annotations.insert(ANN_IPIP_TUNNEL.to_string(), addr.to_string());
    Ok(Some(addr))
}

/// The `n`-th pod IP of a node's block (after the tunnel address).
pub fn pod_ip(block: Ipv4Net, n: u32) -> Option<Ipv4Addr> {
    let base = u32::from(block.network());
    let ip = base.checked_add(1 + n)?;
    (ip < u32::from(block.broadcast())).then(|| Ipv4Addr::from(ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::apply::apply_text;
    use crate::twin::datastore::WriteMode;

    #[test]
    fn blocks_are_deterministic_and_distinct() {
        let mut ds = Datastore::new();
        apply_text(&mut ds, "t", "apiVersion: v1\nkind: Node\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: b\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n  cidr: 172.16.0.0/16\n  ipipMode: Always\n", WriteMode::Apply).unwrap();
        assert_eq!(ensure_block(&mut ds, "a").unwrap().to_string(), "172.16.0.0/26");
        assert_eq!(ensure_block(&mut ds, "b").unwrap().to_string(), "172.16.0.64/26");
        assert_eq!(ensure_block(&mut ds, "a").unwrap().to_string(), "172.16.0.0/26", "idempotent");
        assert_eq!(ensure_tunnel_address(&mut ds, "b").unwrap(), Some(Ipv4Addr::new(172, 16, 0, 64)));
        assert_eq!(pod_ip("172.16.0.64/26".parse().unwrap(), 0), Some(Ipv4Addr::new(172, 16, 0, 65)));
        assert_eq!(pod_ip("172.16.0.64/26".parse().unwrap(), 62), None);
    }
}
