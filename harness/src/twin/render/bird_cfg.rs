//! `bird.cfg` as calico-node v3.30's confd renders it (confd/etc/calico/confd/templates/bird.cfg.template):
//! router id, listen, logging, kernel/device/direct protocols, the BGP template, the node-to-node mesh and the
//! explicit peers. Peer selection is in `peers.rs`, the RR rule in `rr.rs`.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::peers::{listen_port_of, peer_set, PeerData};
use super::rr::rr_client_cluster_id;
use super::{Flavor, RenderContext};
use crate::model::resources::{is_community, parse_duration_secs};

/// `debug …;` line per confd's LOGGING template: node-specific level, else global, default info.
fn logging(cx: &RenderContext) -> &'static str {
    let level = cx
        .node_bgp_config()
        .and_then(|c| c.spec.log_severity_screen.clone())
        .or_else(|| cx.ds.default_bgp_configuration().and_then(|c| c.spec.log_severity_screen.clone()));
    let level = match level.map(|l| l.to_lowercase()) {
        None => "info".to_string(),
        Some(l) if l == "debug" || l == "info" => l,
        Some(_) => "none".to_string(),
    };
    match level.as_str() {
        "debug" => "  debug all;\n",
        "none" => "",
        _ => "  debug { states };\n",
    }
}

/// Calico's hashToIPv4 (CALICO_ROUTER_ID=hash): first 4 bytes of sha256(node name), first octet kept below 224.
pub fn hash_to_ipv4(node: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(node.as_bytes());
    let mut first = h[0] as u32;
    if first > 223 {
        first -= 32;
    }
    format!("{}.{}.{}.{}", first, h[1], h[2], h[3])
}

fn apply_communities(cx: &RenderContext, out: &mut String) {
    out.push_str("function apply_communities ()\n{\n");
    // Node-specific prefixAdvertisements win over global ones (whole list).
    let cfg = cx
        .node_bgp_config()
        .filter(|c| !c.spec.prefix_advertisements.is_empty())
        .or_else(|| cx.ds.default_bgp_configuration().filter(|c| !c.spec.prefix_advertisements.is_empty()));
    if let Some(cfg) = cfg {
        for pa in &cfg.spec.prefix_advertisements {
            if pa.cidr.contains(':') {
                continue;
            }
            let mut set: Vec<String> = Vec::new();
            for c in &pa.communities {
                let v = if is_community(c) {
                    Some(c.clone())
                } else {
                    cfg.spec.communities.iter().find(|d| d.name == *c).map(|d| d.value.clone())
                };
                if let Some(v) = v {
                    if !set.contains(&v) {
                        set.push(v);
                    }
                }
            }
            set.sort();
            let _ = writeln!(out, "      if ( net ~ {} ) then {{", pa.cidr);
            for v in set {
                let p: Vec<&str> = v.split(':').collect();
                if p.len() == 2 {
                    let _ = writeln!(out, "          bgp_community.add(({}, {}));", p[0], p[1]);
                } else {
                    let _ = writeln!(out, "          bgp_large_community.add(({}, {}, {}));", p[0], p[1], p[2]);
                }
            }
            out.push_str("      }\n");
        }
    }
    out.push_str("}\n\n");
}

fn peer_protocol(
    cx: &RenderContext,
    out: &mut String,
    kind: &str,
    key: &str,
    p: &PeerData,
    (node_ip, node_as): (&str, u32),
    global: bool,
) {
    let mut id = p.ip.to_string().replace('.', "_");
    if p.port != 0 {
        id = format!("{id}_port_{}", p.port);
    }
    let _ = writeln!(out, "\n# For peer {key}");
    if p.ip.to_string() == node_ip {
        let _ = writeln!(out, "# Skipping ourselves ({node_ip})");
        return;
    }
    let _ = writeln!(out, "protocol bgp {kind}_{id} from bgp_template {{");
    if p.ttl_security != 0 {
        let _ = writeln!(out, "  ttl security on;\n  multihop {};", p.ttl_security);
    } else {
        out.push_str("  ttl security off;\n  multihop;\n");
    }
    let port = if p.port != 0 { format!("port {} ", p.port) } else { String::new() };
    let _ = writeln!(out, "  neighbor {} {port}as {};", p.ip, p.as_num);
    // v3.31's localASNumber; v3.30 has no such field (accepted by rrlab, see docs).
    let effective_local_as = p.local_as.unwrap_or(node_as);
    if let Some(l) = p.local_as {
        let _ = writeln!(out, "  local as {l};");
    }
    if p.source_addr == "UseNodeIP" {
        let _ = writeln!(out, "  source address {node_ip};  # The local address we use for the TCP connection");
    }
    out.push_str("  import filter {\n");
    out.push_str("    accept; # Prior to introduction of BGP Filters we used \"import all\" so use default accept behaviour on import\n");
    out.push_str("  };\n  export filter {\n");
    let _ = writeln!(out, "    calico_export_to_bgp_peers({});", p.as_num == effective_local_as);
    out.push_str("    reject;\n  };  # Only want to export routes for workloads.\n");
    if global && p.calico_node && p.ip.to_string().as_str() > node_ip {
        out.push_str("  passive on; # Peering is unidirectional, peer will connect to us.\n");
    }
    if !p.restart_time.is_empty() {
        let _ = writeln!(out, "  graceful restart time {};", p.restart_time);
    }
    if let Some(cid) =
        rr_client_cluster_id(p.as_num, effective_local_as, cx.host.rr_cluster_id.as_deref(), &p.rr_cluster_id)
    {
        let _ = writeln!(out, "  rr client;\n  rr cluster id {cid};");
    }
    if let Some(pw) = &p.password {
        let _ = writeln!(out, "  password \"{pw}\";");
    }
    if p.as_num != effective_local_as && p.keep_next_hop {
        out.push_str("  next hop keep;\n");
    }
    if p.num_allow_local_as != 0 {
        let _ = writeln!(out, "  allow local as {};", p.num_allow_local_as);
    }
    out.push_str("}\n");
}

/// The node-to-node mesh section (template "Node-to-node mesh").
fn mesh(cx: &RenderContext, out: &mut String, node_ip: &str) {
    out.push_str("# ------------- Node-to-node mesh -------------\n");
    if let Some(cid) = &cx.host.rr_cluster_id {
        let _ = writeln!(out, "# This node ({}) is configured as a route reflector with cluster ID {cid};", cx.node);
        out.push_str("# ignore node-to-node mesh setting.\n");
        return;
    }
    let global = cx.ds.default_bgp_configuration();
    let enabled = global.and_then(|c| c.spec.node_to_node_mesh_enabled).unwrap_or(true);
    if !enabled {
        out.push_str("\n# Node-to-node mesh disabled\n");
        return;
    }
    let restart = global
        .and_then(|c| c.spec.node_mesh_max_restart_time.as_deref())
        .and_then(|t| parse_duration_secs(t).ok())
        .map(|s| format!("{}", s.round() as i64));
    let password =
        global.and_then(|c| c.spec.node_mesh_password.as_ref()).and_then(|r| cx.ds.secret_value(&r.name, &r.key));
    for (name, rec) in &cx.ds.nodes {
        let b = rec.bgp();
        let _ = writeln!(out, "\n# For peer /bgp/v1/host/{name}/ip_addr_v4");
        let Some(ip) = b.ipv4 else { continue };
        let ip_s = ip.to_string();
        if ip_s == node_ip {
            let _ = writeln!(out, "# Skipping ourselves ({node_ip})");
            continue;
        }
        if let Some(cid) = &b.rr_cluster_id {
            let _ = writeln!(out, "# Skipping {ip_s} ({name}) as it is a route reflector with cluster ID {cid}");
            continue;
        }
        let port = listen_port_of(cx.ds, name);
        let port = if port != 0 { format!("port {port} ") } else { String::new() };
        let peer_as = b.as_num.unwrap_or_else(|| cx.ds.global_as());
        let _ = writeln!(out, "protocol bgp Mesh_{} from bgp_template {{", ip_s.replace('.', "_"));
        let _ = writeln!(out, "  neighbor {ip_s} {port}as {peer_as};");
        let _ = writeln!(out, "  source address {node_ip};  # The local address we use for the TCP connection");
        out.push_str("  import all;        # Import all routes, since we don't know what the upstream\n");
        out.push_str("                     # topology is and therefore have to trust the ToR/RR.\n");
        // v3.30 quirk: the mesh always passes `true` (internal), even between different ASes.
        out.push_str("  export filter {\n    calico_export_to_bgp_peers(true);\n    reject;\n  };  # Only want to export routes for workloads.\n");
        // Go template string comparison: exactly one side of each pair is passive.
        if ip_s.as_str() > node_ip {
            out.push_str("  passive on; # Mesh is unidirectional, peer will connect to us.\n");
        }
        if let Some(r) = &restart {
            let _ = writeln!(out, "  graceful restart time {r};");
        }
        if let Some(pw) = &password {
            let _ = writeln!(out, "  password \"{pw}\";");
        }
        out.push_str("}\n");
    }
}

pub fn render(cx: &RenderContext) -> String {
    let mut out = String::new();
    apply_communities(cx, &mut out);
    out.push_str("# Generated by confd\ninclude \"bird_aggr.cfg\";\ninclude \"bird_ipam.cfg\";\n\n");
    let node_ip = cx.host.ipv4.map(|i| i.to_string()).unwrap_or_default();
    let router_id = match cx.env("CALICO_ROUTER_ID") {
        Some("hash") => hash_to_ipv4(cx.node),
        Some(r) if !r.is_empty() => r.to_string(),
        _ => node_ip.clone(),
    };
    let _ = writeln!(out, "router id {router_id};");

    let global = cx.ds.default_bgp_configuration();
    let bind_mode = global.and_then(|c| c.spec.bind_mode.clone()).unwrap_or_default();
    let listen_address =
        if bind_mode == "NodeIP" && !node_ip.is_empty() { format!(" address {node_ip}") } else { String::new() };
    let listen_port = match cx.node_bgp_config().and_then(|c| c.spec.listen_port) {
        Some(p) => {
            out.push_str("# Set node listen_port\n");
            format!(" port {p}")
        }
        None => match global.and_then(|c| c.spec.listen_port) {
            Some(p) => {
                out.push_str("# Set global listen_port\n");
                format!(" port {p}")
            }
            None => String::new(),
        },
    };
    if !listen_address.is_empty() || !listen_port.is_empty() {
        let _ = writeln!(out, "listen bgp{listen_address}{listen_port};");
    }

    out.push_str("\n# Configure synchronization between routing tables and kernel.\nprotocol kernel {\n");
    out.push_str("  learn;             # Learn all alien routes from the kernel\n");
    out.push_str("  persist;           # Don't remove routes on bird shutdown\n");
    out.push_str("  scan time 2;       # Scan kernel routing table every 2 seconds\n");
    out.push_str("  import all;\n  export filter calico_kernel_programming; # Default is export none\n");
    out.push_str("  graceful restart;  # Turn on graceful restart to reduce potential flaps in\n");
    out.push_str("                     # routes when reloading BIRD configuration.\n");
    out.push_str("  merge paths on;    # Allow export multipath routes (ECMP)\n");
    if cx.flavor == Flavor::Upstream {
        // The twin: BIRD programs a private table; rrlab's agent mirrors it into main as Calico's BIRD
        // fork would (tunl0 + onlink + BGP next hop), see twin/agent.
        let _ = writeln!(
            out,
            "  kernel table {};  # rrlab twin: mirrored into main by the agent",
            super::TWIN_KERNEL_TABLE
        );
    }
    out.push_str("}\n\n# Watch interface up/down events.\nprotocol device {\n");
    out.push_str(logging(cx));
    out.push_str("  scan time 2;    # Scan interfaces every 2 seconds\n}\n\nprotocol direct {\n");
    out.push_str(logging(cx));
    let ignored = global.and_then(|c| c.spec.ignored_interfaces.clone()).unwrap_or_default();
    if ignored.is_empty() {
        out.push_str("  interface -\"cali*\", -\"kube-ipvs*\", \"*\"; # Exclude cali* and kube-ipvs* but include everything else.\n");
    } else {
        let list: String = ignored.iter().map(|i| format!("-\"{i}\", ")).collect();
        let _ = writeln!(out, "  interface {list}-\"cali*\", -\"kube-ipvs*\", \"*\";");
    }
    out.push_str("}\n\n");

    if node_ip.is_empty() {
        out.push_str("# IPv4 disabled on this node.\n");
        return out;
    }
    let node_as = cx.ds.node_as(cx.node);
    out.push_str("# Template for all BGP clients\ntemplate bgp bgp_template {\n");
    out.push_str(logging(cx));
    out.push_str("  description \"Connection to BGP peer\";\n");
    let _ = writeln!(out, "  local as {node_as};");
    out.push_str("  gateway recursive; # This should be the default, but just in case.\n  add paths on;\n");
    out.push_str("  graceful restart;  # See comment in kernel section about graceful restart.\n");
    out.push_str("  connect delay time 2;\n  connect retry time 5;\n  error wait time 5,30;\n}\n\n");
    out.push_str("# -------------- BGP Filters ------------------\n# No v4 BGPFilters configured\n\n");

    mesh(cx, &mut out, &node_ip);

    let peers = peer_set(cx.ds, cx.node);
    out.push_str("\n\n# ------------- Global peers -------------\n");
    let v4 = |p: &&PeerData| matches!(p.ip, IpAddr::V4(_));
    let globals: Vec<(&String, &PeerData)> = peers.global.iter().filter(|(_, p)| v4(p)).collect();
    if globals.is_empty() {
        out.push_str("# No global peers configured.\n");
    }
    for (k, p) in globals {
        peer_protocol(cx, &mut out, "Global", &format!("/bgp/v1/global/peer_v4/{k}"), p, (&node_ip, node_as), true);
    }
    out.push_str("\n\n# ------------- Node-specific peers -------------\n");
    let nodes: Vec<(&String, &PeerData)> = peers.node.iter().filter(|(_, p)| v4(p)).collect();
    if nodes.is_empty() {
        out.push_str("# No node-specific peers configured.\n");
    }
    for (k, p) in nodes {
        peer_protocol(
            cx,
            &mut out,
            "Node",
            &format!("/bgp/v1/host/{}/peer_v4/{k}", cx.node),
            p,
            (&node_ip, node_as),
            false,
        );
    }
    out
}
