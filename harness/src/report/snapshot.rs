//! The lab's state at the end of a step, as the HTML report draws it: every node's BGP sessions (the peering
//! graph), BIRD's routes and the kernel's routes (the RIB/FIB difference from the previous step). Taken once
//! per step, only when a reporter asks for it ([`crate::runner::Events::wants_snapshots`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::observe::{PeerStatus, Protocol};
use crate::runbook::lab::{LabView, NodeInfo};
use crate::runbook::route_line;

/// Every node's state at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Wall clock, ms since the epoch.
    pub taken_ms: u64,
    pub nodes: Vec<NodeSnap>,
}

/// One node's state.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSnap {
    pub name: String,
    pub cluster: String,
    pub site: Option<String>,
    pub ip: String,
    /// The node reflects routes (its BIRD config has `rr client` peers: calico-node renders that for a node
    /// with a `routeReflectorClusterID`).
    pub route_reflector: bool,
    /// BGP sessions as BIRD shows them, or why they could not be read.
    pub sessions: Result<Vec<Session>, String>,
    /// BIRD's routes, one line each ([`route_line`]), sorted.
    pub rib: Result<Vec<String>, String>,
    /// The kernel's routes (`ip route` lines), sorted.
    pub fib: Result<Vec<String>, String>,
}

/// One BGP session seen from one end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// BIRD's protocol name (`Mesh_10_0_1_2`, `Node_…`, `Global_…`).
    pub protocol: String,
    /// `node-to-node mesh`, `node specific` or `global` (calicoctl's peer type).
    pub kind: String,
    pub peer_address: String,
    /// The lab node with that address, if any (else an external peer).
    pub peer_node: Option<String>,
    /// BIRD's BGP state (`Established`, `Active`, `Connect`, `Idle`, …), or the protocol state when it has
    /// none.
    pub state: String,
}

impl Session {
    pub fn established(&self) -> bool {
        self.state == "Established"
    }
}

/// The sessions of one node's `show protocols`.
pub fn sessions_of(protocols: &[Protocol], nodes: &[NodeInfo]) -> Vec<Session> {
    let mut out = Vec::new();
    for p in protocols.iter().filter(|p| p.is_bgp()) {
        let Some(ps) = PeerStatus::from_protocol(p, 4) else { continue };
        let peer_node = ps
            .address
            .parse::<IpAddr>()
            .ok()
            .and_then(|ip| nodes.iter().find(|n| IpAddr::V4(n.ip) == ip).map(|n| n.name.clone()));
        let state = p.bgp_state().map(str::to_string).unwrap_or_else(|| p.state.clone());
        out.push(Session {
            protocol: p.name.clone(),
            kind: ps.peer_type.as_str().to_string(),
            peer_address: ps.address.clone(),
            peer_node,
            state,
        });
    }
    out
}

/// Read every node's sessions, routes and role through the view, concurrently.
pub fn take(lab: &(dyn LabView + Sync), nodes: &[NodeInfo], is_rr: &(dyn Fn(&str) -> bool + Sync)) -> Snapshot {
    let taken_ms = crate::runner::probe::now_ms();
    let snaps = crate::backend::observe::fan_out(nodes, |n| NodeSnap {
        name: n.name.clone(),
        cluster: n.cluster.clone(),
        site: n.site.clone(),
        ip: n.ip.to_string(),
        route_reflector: is_rr(&n.name),
        sessions: lab.protocols(&n.name).map(|p| sessions_of(&p, nodes)).map_err(|e| e.to_string()),
        rib: lab.rib(&n.name).map(|v| sorted(v.iter().map(route_line))).map_err(|e| e.to_string()),
        fib: lab.fib(&n.name).map(|v| sorted(v.iter().map(|r| r.to_string()))).map_err(|e| e.to_string()),
    });
    Snapshot { taken_ms, nodes: snaps }
}

/// A BIRD config makes its node a route reflector (`rr client;` on a peer: calico-node's template for a node
/// with `routeReflectorClusterID`).
pub fn config_reflects(bird_cfg: &str) -> bool {
    bird_cfg.lines().any(|l| l.trim() == "rr client;")
}

fn sorted(it: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = it.collect();
    v.sort();
    v.dedup();
    v
}

/// What changed in a list of lines: (added, removed).
pub fn line_diff(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
    let b: BTreeSet<&String> = before.iter().collect();
    let a: BTreeSet<&String> = after.iter().collect();
    (a.difference(&b).map(|s| s.to_string()).collect(), b.difference(&a).map(|s| s.to_string()).collect())
}

/// One session between two ends (or a node and an external peer), both ends' views merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub a: String,
    /// The peer node, or the external peer's address.
    pub b: String,
    pub external: bool,
    pub kind: String,
    /// Both ends Established (an external peer: the one end we see).
    pub established: bool,
    /// The states seen from each end, `a`'s first (`Established`, `Active`, …).
    pub states: Vec<String>,
    /// The two ends are in different sites: the session crosses the WAN.
    pub wan: bool,
}

/// The peering graph: every session once, with the state at both ends.
pub fn edges(s: &Snapshot) -> Vec<Edge> {
    let site: BTreeMap<&str, Option<&str>> = s.nodes.iter().map(|n| (n.name.as_str(), n.site.as_deref())).collect();
    let mut map: BTreeMap<(String, String), Edge> = BTreeMap::new();
    for n in &s.nodes {
        let Ok(sessions) = &n.sessions else { continue };
        for x in sessions {
            let (b, external) = match &x.peer_node {
                Some(p) => (p.clone(), false),
                None => (x.peer_address.clone(), true),
            };
            let key = if external || n.name <= b { (n.name.clone(), b.clone()) } else { (b.clone(), n.name.clone()) };
            let e = map.entry(key.clone()).or_insert_with(|| Edge {
                a: key.0.clone(),
                b: key.1.clone(),
                external,
                kind: x.kind.clone(),
                established: true,
                states: Vec::new(),
                wan: !external
                    && match (site.get(key.0.as_str()).copied().flatten(), site.get(key.1.as_str()).copied().flatten())
                    {
                        (Some(p), Some(q)) => p != q,
                        _ => false,
                    },
            });
            e.established &= x.established();
            e.states.push(x.state.clone());
        }
    }
    // A session one end has and the other does not (its BIRD has no such protocol) is not established.
    for e in map.values_mut().filter(|e| !e.external && e.states.len() < 2) {
        let other_read = s.nodes.iter().any(|n| (n.name == e.a || n.name == e.b) && n.sessions.is_err());
        if !other_read {
            e.established = false;
            e.states.push("(none)".into());
        }
    }
    map.into_values().collect()
}

/// Sessions counted by kind and state (the aggregate view of a big lab): (kind, established, crosses WAN) →
/// count.
pub fn session_counts(edges: &[Edge]) -> BTreeMap<(String, bool, bool), usize> {
    let mut m = BTreeMap::new();
    for e in edges {
        *m.entry((e.kind.clone(), e.established, e.wan)).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn node(name: &str, site: &str, ip: [u8; 4]) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            cluster: "c".into(),
            site: Some(site.into()),
            ip: Ipv4Addr::from(ip),
            labels: Default::default(),
            pods: vec![],
        }
    }

    fn proto(name: &str, state: &str, info: &str) -> Protocol {
        Protocol {
            name: name.into(),
            proto: "BGP".into(),
            table: "master".into(),
            state: state.into(),
            since: "10:00:00".into(),
            info: info.into(),
        }
    }

    fn snap(name: &str, site: &str, ip: [u8; 4], sessions: Vec<Session>) -> NodeSnap {
        NodeSnap {
            name: name.into(),
            cluster: "c".into(),
            site: Some(site.into()),
            ip: Ipv4Addr::from(ip).to_string(),
            route_reflector: false,
            sessions: Ok(sessions),
            rib: Ok(vec![]),
            fib: Ok(vec![]),
        }
    }

    #[test]
    fn sessions_name_their_peer_node_and_state() {
        let nodes = vec![node("a", "s1", [10, 0, 0, 1]), node("b", "s2", [10, 0, 0, 2])];
        let p = vec![
            proto("Mesh_10_0_0_2", "up", "Established"),
            proto("Global_10_9_9_9", "start", "Active        Socket: Connection refused"),
            Protocol { proto: "Kernel".into(), ..proto("kernel1", "up", "") },
        ];
        let s = sessions_of(&p, &nodes);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].peer_node.as_deref(), s[0].kind.as_str(), s[0].established()),
            (Some("b"), "node-to-node mesh", true)
        );
        assert_eq!((s[1].peer_node.as_deref(), s[1].state.as_str()), (None, "Active"));
    }

    #[test]
    fn edges_merge_both_ends_and_mark_the_wan() {
        let nodes =
            vec![node("a", "s1", [10, 0, 0, 1]), node("b", "s2", [10, 0, 0, 2]), node("c", "s1", [10, 0, 0, 3])];
        let a = sessions_of(
            &[proto("Mesh_10_0_0_2", "up", "Established"), proto("Mesh_10_0_0_3", "up", "Established")],
            &nodes,
        );
        let b = sessions_of(&[proto("Mesh_10_0_0_1", "start", "Connect")], &nodes);
        let c = sessions_of(&[], &nodes);
        let s = Snapshot {
            taken_ms: 0,
            nodes: vec![
                snap("a", "s1", [10, 0, 0, 1], a),
                snap("b", "s2", [10, 0, 0, 2], b),
                snap("c", "s1", [10, 0, 0, 3], c),
            ],
        };
        let e = edges(&s);
        assert_eq!(e.len(), 2);
        let ab = e.iter().find(|e| e.b == "b").unwrap();
        assert!(ab.wan && !ab.established, "{ab:?}");
        assert_eq!(ab.states, vec!["Established", "Connect"]);
        // c has no session to a: the edge is not established, and does not cross the WAN.
        let ac = e.iter().find(|e| e.b == "c").unwrap();
        assert!(!ac.wan && !ac.established, "{ac:?}");
        let counts = session_counts(&e);
        assert_eq!(counts.get(&("node-to-node mesh".to_string(), false, true)), Some(&1));
    }

    #[test]
    fn line_diff_is_by_value() {
        let b = vec!["x".to_string(), "y".to_string()];
        let a = vec!["y".to_string(), "z".to_string()];
        assert_eq!(line_diff(&b, &a), (vec!["z".to_string()], vec!["x".to_string()]));
        assert_eq!(line_diff(&a, &a), (vec![], vec![]));
    }

    #[test]
    fn rr_role_from_calicos_template() {
        assert!(config_reflects("protocol bgp Node_1 {\n  rr client;\n  rr cluster id 244.0.0.1;\n}\n"));
        assert!(!config_reflects("protocol bgp Mesh_1 {\n  import all;\n}\n"));
    }
}
