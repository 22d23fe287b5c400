//! Explicit BGP peerings: confd's `updatePeersV1` (confd/pkg/backends/calico/client.go, v3.30) — global pass,
//! node pass, reverse pass, first-emitted-key-wins dedup, node keys dropped when a global key exists for the
//! same IP and port. The node-to-node mesh is in `mesh.rs`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::resources::{parse_duration_secs, parse_peer_ip, BgpPeer};
use crate::model::selector::Selector;
use crate::twin::datastore::Datastore;

/// One peering as confd stores it under `/calico/bgp/v1/{global,host/<node>}/peer_v4/<ip>[-<port>]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerData {
    pub ip: IpAddr,
    /// 0 = not set (a peerIP BGPPeer without asNumber).
    pub as_num: u32,
    pub rr_cluster_id: String,
    pub password: Option<String>,
    /// "UseNodeIP" or "None".
    pub source_addr: String,
    /// 0 = default port.
    pub port: u16,
    pub keep_next_hop: bool,
    /// Seconds, "" when unset.
    pub restart_time: String,
    /// The peer IP is a Calico node's IP (only computed for peerIP BGPPeers).
    pub calico_node: bool,
    pub num_allow_local_as: i32,
    pub ttl_security: u8,
    pub reachable_by: String,
    pub filters: Vec<String>,
    /// v3.31's BGPPeer.localASNumber (accepted by rrlab; renders a per-protocol `local as`).
    pub local_as: Option<u32>,
    /// The BGPPeer this peering came from.
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum PeerScope {
    Global,
    Node,
}

/// The peerings relevant to one node, keyed and sorted as confd's memkv lists them.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct PeerSet {
    /// Key suffix (`10.0.0.1` or `10.0.0.1-179`) → peering, for `/global/peer_v4`.
    pub global: BTreeMap<String, PeerData>,
    /// Same for `/host/<node>/peer_v4`.
    pub node: BTreeMap<String, PeerData>,
}

fn key_suffix(ip: &IpAddr, port: u16) -> String {
    if port == 0 {
        ip.to_string()
    } else {
        format!("{ip}-{port}")
    }
}

/// Node names whose labels match a selector (confd's nodeLabelManager); an unparsable selector matches nothing.
pub fn nodes_matching(ds: &Datastore, selector: &str) -> Vec<String> {
    let Ok(sel) = Selector::parse(selector) else { return Vec::new() };
    ds.nodes.values().filter(|n| sel.matches(&n.labels)).map(|n| n.name.clone()).collect()
}

fn node_listen_port(ds: &Datastore, node: &str) -> Option<u16> {
    ds.bgp_configurations.get(&format!("node.{node}")).and_then(|c| c.spec.listen_port)
}

fn global_listen_port(ds: &Datastore) -> u16 {
    ds.default_bgp_configuration().and_then(|c| c.spec.listen_port).unwrap_or(0)
}

/// The port a Calico node listens on: its own BGPConfiguration, else the global one, else 0 (default).
pub fn listen_port_of(ds: &Datastore, node: &str) -> u16 {
    node_listen_port(ds, node).unwrap_or_else(|| global_listen_port(ds))
}

/// `nodesWithIPPortAndAS`: Calico nodes with this IP and AS (0 ⇒ the global AS), and a compatible port.
fn nodes_with_ip_port_as(ds: &Datastore, ip: &IpAddr, as_num: u32, port: u16) -> Vec<String> {
    let want_as = if as_num == 0 { ds.global_as() } else { as_num };
    let gport = global_listen_port(ds);
    let mut out = Vec::new();
    for n in ds.nodes.values() {
        let b = n.bgp();
        let matches_ip = b.ipv4.map(IpAddr::V4) == Some(*ip) || b.ipv6 == Some(*ip);
        if !matches_ip || b.as_num.unwrap_or_else(|| ds.global_as()) != want_as {
            continue;
        }
        if port != 0 {
            // Mirrors Calico's check exactly, including its else-branch on the global port.
            match node_listen_port(ds, &n.name) {
                Some(np) if np != port => continue,
                Some(_) => {}
                None if gport != 0 && gport != port => continue,
                None => {}
            }
        }
        out.push(n.name.clone());
    }
    out
}

/// `nodeAsBGPPeers`: a Calico node as a peer (its IP of the wanted family, its AS, its cluster ID, its port).
fn node_as_peers(ds: &Datastore, node: &str, v4: bool, v6: bool, res: &BgpPeer) -> Vec<PeerData> {
    let Some(rec) = ds.nodes.get(node) else { return Vec::new() };
    let b = rec.bgp();
    let mut ips = Vec::new();
    if v4 {
        if let Some(ip) = b.ipv4 {
            ips.push(IpAddr::V4(ip));
        }
    }
    if v6 {
        if let Some(ip) = b.ipv6 {
            ips.push(ip);
        }
    }
    ips.into_iter()
        .map(|ip| PeerData {
            ip,
            as_num: b.as_num.unwrap_or_else(|| ds.global_as()),
            rr_cluster_id: b.rr_cluster_id.clone().unwrap_or_default(),
            password: None,
            source_addr: String::new(),
            port: listen_port_of(ds, node),
            keep_next_hop: false,
            restart_time: String::new(),
            calico_node: false,
            num_allow_local_as: 0,
            ttl_security: res.spec.ttl_security.unwrap_or(0),
            reachable_by: res.spec.reachable_by.clone().unwrap_or_default(),
            filters: res.spec.filters.clone(),
            local_as: res.spec.local_as_number,
            source: res.metadata.name.clone(),
        })
        .collect()
}

/// `setPeerConfigFieldsFromV3Resource`: password, source address, restart time.
fn set_common_fields(ds: &Datastore, peers: &mut [PeerData], res: &BgpPeer) {
    let password = res.spec.password.as_ref().and_then(|r| ds.secret_value(&r.name, &r.key));
    for p in peers {
        p.password = password.clone();
        p.source_addr = res.spec.source_address.clone().unwrap_or_else(|| "UseNodeIP".to_string());
        if let Some(t) = &res.spec.max_restart_time {
            if let Ok(secs) = parse_duration_secs(t) {
                p.restart_time = format!("{}", secs.round() as i64);
            }
        }
    }
}

/// The peerings a BGPPeer's remote side names (peerSelector nodes, or its peerIP).
fn forward_peers(ds: &Datastore, res: &BgpPeer) -> Vec<PeerData> {
    let s = &res.spec;
    if s.local_workload_selector.is_some() {
        // Local workload peers need workload BGP speakers, which the twin does not run.
        return Vec::new();
    }
    let mut peers = Vec::new();
    if let Some(sel) = &s.peer_selector {
        for n in nodes_matching(ds, sel) {
            peers.extend(node_as_peers(ds, &n, true, true, res));
        }
    } else {
        let Some(peer_ip) = &s.peer_ip else { return Vec::new() };
        let Ok((ip, port)) = parse_peer_ip(peer_ip) else { return Vec::new() };
        let mut port = port.unwrap_or(0);
        if port == 0 {
            let names = nodes_with_ip_port_as(ds, &ip, s.as_number, 0);
            if let Some(first) = names.first() {
                port = listen_port_of(ds, first);
            }
        }
        let calico_node = ds.nodes.values().any(|n| {
            let b = n.bgp();
            b.ipv4.map(IpAddr::V4) == Some(ip) || b.ipv6 == Some(ip)
        });
        let reachable_by = match &s.reachable_by {
            Some(rb) => match rb.parse::<IpAddr>() {
                Ok(gw) if gw.is_ipv4() == ip.is_ipv4() => rb.clone(),
                _ => return Vec::new(),
            },
            None => String::new(),
        };
        peers.push(PeerData {
            ip,
            as_num: s.as_number,
            rr_cluster_id: String::new(),
            password: None,
            source_addr: String::new(),
            port,
            keep_next_hop: s.keep_original_next_hop,
            restart_time: String::new(),
            calico_node,
            num_allow_local_as: s.num_allowed_local_as_numbers.unwrap_or(0),
            ttl_security: s.ttl_security.unwrap_or(0),
            reachable_by,
            filters: s.filters.clone(),
            local_as: s.local_as_number,
            source: res.metadata.name.clone(),
        });
    }
    set_common_fields(ds, &mut peers, res);
    peers
}

/// Compute the peerings confd would store, restricted to what `node` renders (its global and node keys).
/// BGPPeers are visited in name order (Calico iterates a Go map; rrlab is deterministic).
pub fn peer_set(ds: &Datastore, node: &str) -> PeerSet {
    let mut out = PeerSet::default();
    // The emitted keys for *this* node and the global keys, with Calico's dedup rules.
    let emit = |scope: PeerScope, p: PeerData, out: &mut PeerSet| {
        let key = key_suffix(&p.ip, p.port);
        match scope {
            PeerScope::Global => {
                out.global.entry(key).or_insert(p);
            }
            PeerScope::Node => {
                if out.global.contains_key(&key) || out.node.contains_key(&key) {
                    return;
                }
                out.node.insert(key, p);
            }
        }
    };

    for global_pass in [true, false] {
        for res in ds.bgp_peers.values() {
            let is_global = res.spec.node_selector.is_none() && res.spec.node.is_none();
            if global_pass != is_global {
                continue;
            }
            let local_nodes: Vec<String> = if let Some(sel) = &res.spec.node_selector {
                nodes_matching(ds, sel)
            } else if let Some(n) = &res.spec.node {
                vec![n.clone()]
            } else {
                Vec::new()
            };
            for p in forward_peers(ds, res) {
                if global_pass {
                    emit(PeerScope::Global, p, &mut out);
                } else if local_nodes.iter().any(|n| n == node) {
                    emit(PeerScope::Node, p, &mut out);
                }
            }
        }
    }

    // Reverse pass: nodes matching the remote side peer back with every node matching the local side.
    for res in ds.bgp_peers.values() {
        let s = &res.spec;
        if s.local_workload_selector.is_some() {
            continue;
        }
        let (local_nodes, v4, v6) = if let Some(sel) = &s.peer_selector {
            (nodes_matching(ds, sel), true, true)
        } else {
            let Some(peer_ip) = &s.peer_ip else { continue };
            let Ok((ip, port)) = parse_peer_ip(peer_ip) else { continue };
            (nodes_with_ip_port_as(ds, &ip, s.as_number, port.unwrap_or(0)), ip.is_ipv4(), ip.is_ipv6())
        };
        if !local_nodes.iter().any(|n| n == node) {
            continue;
        }
        let peer_nodes: Vec<String> = if let Some(sel) = &s.node_selector {
            nodes_matching(ds, sel)
        } else if let Some(n) = &s.node {
            vec![n.clone()]
        } else {
            nodes_matching(ds, "all()")
        };
        let mut peers: Vec<PeerData> = peer_nodes.iter().flat_map(|n| node_as_peers(ds, n, v4, v6, res)).collect();
        set_common_fields(ds, &mut peers, res);
        for p in peers {
            emit(PeerScope::Node, p, &mut out);
        }
    }
    out
}
