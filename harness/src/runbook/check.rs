//! Expectations against a lab: [`check`] one, [`wait_all`] poll a step's until they hold. A failure is a
//! [`Mismatch`]: the expectation as written, its line, and a readable expected-vs-actual diff (missing and
//! unexpected items listed separately, the nearest actual thing shown beside what was missing).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::observe::{IpTables, KernelRoute, PeerStatus, PeerType, Prefix, Route, RouteKind};

use super::lab::{
    label_addr, node_blocks, resolve_addr, resolve_nodes, resolve_pods, CachedLab, LabView, NodeInfo, Obs, PodInfo,
    ProbeStats, StepOutcome,
};
use super::model::*;

/// A failed expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// As written, e.g. `sessions on hybrid-worker3`.
    pub expectation: String,
    /// Runbook line of the expectation.
    pub line: usize,
    /// Expected vs actual.
    pub diff: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} (line {})", self.expectation, self.line)?;
        for l in self.diff.lines() {
            writeln!(f, "    {l}")?;
        }
        Ok(())
    }
}

/// Check one expectation now (IPAM blocks of Calico's default size, /26).
pub fn check(e: &Expectation, lab: &dyn LabView, outcome: &StepOutcome) -> Result<(), Mismatch> {
    check_with(e, lab, outcome, DEFAULT_BLOCK_SIZE)
}

/// Check one expectation now; `block_size` is the runbook's `defaults.block_size`.
pub fn check_with(e: &Expectation, lab: &dyn LabView, outcome: &StepOutcome, block_size: u8) -> Result<(), Mismatch> {
    let nodes = lab.nodes();
    let cx = Cx { lab, nodes: &nodes, outcome, block_size };
    let r = match e {
        Expectation::Sessions(x) => sessions(&cx, x),
        Expectation::Rib(x) => rib(&cx, x),
        Expectation::Fib(x) => fib(&cx, x),
        Expectation::Reach(x) => reach(&cx, x),
        Expectation::Ipset(x) => ipset(&cx, x),
        Expectation::Iptables(x) => iptables(&cx, x),
        Expectation::Config(x) => config(&cx, x),
        Expectation::Fails(x) => fails(&cx, x),
        Expectation::Loss(x) => loss(&cx, x),
        Expectation::Converge(x) => converge(&cx, x),
        Expectation::Wan(x) => wan(&cx, x),
    };
    r.map_err(|diff| Mismatch { expectation: e.describe(), line: e.line(), diff })
}

struct Cx<'a> {
    lab: &'a dyn LabView,
    nodes: &'a [NodeInfo],
    outcome: &'a StepOutcome,
    block_size: u8,
}

type Diff = Result<(), String>;

/// Per-node results of an expectation on a node set: Ok if every node passes, else the failing nodes'
/// sections.
fn per_node(cx: &Cx, on: &NodeSet, mut f: impl FnMut(&NodeInfo) -> Diff) -> Diff {
    let nodes = resolve_nodes(on, cx.nodes)?;
    let total = nodes.len();
    let mut bad = Vec::new();
    for n in &nodes {
        if let Err(d) = f(n) {
            bad.push((n.name.clone(), d));
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    if total == 1 {
        let (name, d) = bad.remove(0);
        return Err(format!("on {name}:\n{}", indent(&d, "  ")));
    }
    let mut out = format!("{} of {total} nodes differ:\n", bad.len());
    for (name, d) in bad {
        out.push_str(&format!("{name}:\n{}\n", indent(&d, "  ")));
    }
    Err(out.trim_end().to_string())
}

fn indent(s: &str, by: &str) -> String {
    s.lines().map(|l| if l.is_empty() { String::new() } else { format!("{by}{l}") }).collect::<Vec<_>>().join("\n")
}

/// At most `max` lines, then `… and N more`.
fn capped(lines: Vec<String>, max: usize) -> Vec<String> {
    let n = lines.len();
    if n <= max {
        return lines;
    }
    let mut v: Vec<String> = lines.into_iter().take(max).collect();
    v.push(format!("… and {} more", n - max));
    v
}

fn node_name_of<'a>(nodes: &'a [NodeInfo], ip: &IpAddr) -> Option<&'a NodeInfo> {
    nodes.iter().find(|n| IpAddr::V4(n.ip) == *ip)
}

fn fmt_ip(ip: &IpAddr, nodes: &[NodeInfo]) -> String {
    label_addr(&ip.to_string(), nodes)
}

// ------------------------------------------------------------------------------------------ sessions

#[derive(Debug, Clone, PartialEq)]
struct WantPeer {
    peer_type: Option<crate::observe::PeerType>,
    state: Option<PeerState>,
    line: usize,
}

fn state_matches(want: &PeerState, p: &PeerStatus) -> bool {
    match want {
        PeerState::Protocol(s) => p.state == *s,
        PeerState::Bgp(s) => p.bgp_state() == s,
    }
}

fn peer_row(p: &PeerStatus) -> String {
    let info = if p.info.is_empty() { String::new() } else { format!("  {}", p.info) };
    format!("{}  {}{info}", p.peer_type.as_str(), p.state)
}

fn want_row(w: &WantPeer) -> String {
    let t = w.peer_type.map(|t| t.as_str()).unwrap_or("any type");
    match &w.state {
        Some(s) => format!("{t}  {s}"),
        None => t.to_string(),
    }
}

fn sessions(cx: &Cx, e: &SessionsExpect) -> Diff {
    per_node(cx, &e.on, |node| {
        // One address may be expected with several session types: with the mesh on and a BGPPeer to the
        // same node, BIRD has a Mesh_ and a Node_ protocol for one neighbour.
        let mut want: Vec<(String, WantPeer)> = Vec::new();
        for spec in &e.peers {
            let addrs: Vec<String> = match &spec.peer {
                PeerRef::Address(a) => vec![a.clone()],
                PeerRef::Nodes(set) => resolve_nodes(set, cx.nodes)?
                    .into_iter()
                    .filter(|n| n.name != node.name)
                    .map(|n| n.ip.to_string())
                    .collect(),
            };
            for a in addrs {
                let w = WantPeer { peer_type: spec.peer_type, state: spec.state.clone(), line: spec.line };
                if let Some((_, prev)) = want.iter().find(|(pa, pw)| *pa == a && pw.peer_type == w.peer_type) {
                    if prev.state != w.state {
                        return Err(format!(
                            "peer {} is expected twice, differently: {} (line {}) and {} (line {})",
                            label_addr(&a, cx.nodes),
                            want_row(prev),
                            prev.line,
                            want_row(&w),
                            w.line
                        ));
                    }
                    continue;
                }
                want.push((a, w));
            }
        }
        let protocols = cx.lab.protocols(&node.name).map_err(|e| format!("cannot read BGP sessions: {e}"))?;
        let actual: Vec<PeerStatus> = protocols.iter().filter_map(|p| PeerStatus::from_protocol(p, 4)).collect();
        let mut missing = Vec::new();
        let mut wrong = Vec::new();
        let mut unexpected = Vec::new();
        let mut explained: Vec<(String, PeerType)> = Vec::new();
        for (addr, w) in &want {
            let found: Vec<&PeerStatus> =
                actual.iter().filter(|p| &p.address == addr && w.peer_type.is_none_or(|t| t == p.peer_type)).collect();
            if found.is_empty() {
                // A session to that address of another type that nothing else expects: a wrong type.
                let others: Vec<&PeerStatus> = actual
                    .iter()
                    .filter(|p| {
                        &p.address == addr
                            && !want.iter().any(|(a, w2)| a == addr && w2.peer_type.is_none_or(|t| t == p.peer_type))
                    })
                    .collect();
                if others.is_empty() {
                    missing.push(format!("{}  {}", label_addr(addr, cx.nodes), want_row(w)));
                } else {
                    let rows: Vec<String> = others.iter().map(|p| peer_row(p)).collect();
                    wrong.push(format!(
                        "{}  expected {}, found {}",
                        label_addr(addr, cx.nodes),
                        want_row(w),
                        rows.join(" and ")
                    ));
                    explained.extend(others.iter().map(|p| (p.address.clone(), p.peer_type)));
                }
                continue;
            }
            let ok = found.iter().any(|p| {
                w.peer_type.is_none_or(|t| t == p.peer_type) && w.state.as_ref().is_none_or(|s| state_matches(s, p))
            });
            if !ok {
                let rows: Vec<String> = found.iter().map(|p| peer_row(p)).collect();
                wrong.push(format!(
                    "{}  expected {}, found {}",
                    label_addr(addr, cx.nodes),
                    want_row(w),
                    rows.join(" and ")
                ));
            }
        }
        for p in &actual {
            if !want.iter().any(|(a, w)| *a == p.address && w.peer_type.is_none_or(|t| t == p.peer_type))
                && !explained.contains(&(p.address.clone(), p.peer_type))
            {
                unexpected.push(format!("{}  {}", label_addr(&p.address, cx.nodes), peer_row(p)));
            }
        }
        if missing.is_empty() && wrong.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        let mut out = Vec::new();
        for (title, v) in [("missing", missing), ("wrong", wrong), ("unexpected", unexpected)] {
            if !v.is_empty() {
                out.push(format!("{title}:"));
                out.extend(v.into_iter().map(|l| format!("  {l}")));
            }
        }
        Err(out.join("\n"))
    })
}

// ------------------------------------------------------------------------------------------ rib

/// One line for a BIRD route, with its BGP attributes:
/// `172.16.3.0/26 via 10.99.0.1 on veth-ba [Node_10_99_0_1 from 10.99.0.1] * next_hop 10.99.1.3 as_path [64513] originator_id 10.99.1.3 cluster_list [1.0.0.1]`.
pub fn route_line(r: &Route) -> String {
    let mut s = r.prefix.to_string();
    match r.kind {
        RouteKind::Unicast => {
            if let Some(v) = r.via {
                s.push_str(&format!(" via {v}"));
                if let Some(d) = &r.dev {
                    s.push_str(&format!(" on {d}"));
                }
            } else if let Some(d) = &r.dev {
                s.push_str(&format!(" dev {d}"));
            }
        }
        RouteKind::Multipath => {
            s.push_str(" multipath");
            for nh in &r.nexthops {
                s.push_str(&format!(" via {}", nh.via));
            }
        }
        k => s.push_str(&format!(" {}", format!("{k:?}").to_lowercase())),
    }
    s.push_str(&format!(" [{}", r.protocol));
    if let Some(f) = r.from {
        s.push_str(&format!(" from {f}"));
    }
    s.push(']');
    if r.primary {
        s.push_str(" *");
    }
    if r.is_bgp() {
        if let Some(nh) = r.bgp_next_hop() {
            s.push_str(&format!(" next_hop {nh}"));
        }
        s.push_str(&format!(" as_path {:?}", r.as_path()));
        if let Some(o) = r.originator_id() {
            s.push_str(&format!(" originator_id {o}"));
        }
        if !r.cluster_list().is_empty() {
            let v: Vec<String> = r.cluster_list().iter().map(|c| c.to_string()).collect();
            s.push_str(&format!(" cluster_list [{}]", v.join(", ")));
        }
    }
    s
}

fn kind_word(k: RouteKind) -> &'static str {
    match k {
        RouteKind::Unicast => "unicast",
        RouteKind::Blackhole => "blackhole",
        RouteKind::Unreachable => "unreachable",
        RouteKind::Prohibited => "prohibited",
        RouteKind::Multipath => "multipath",
    }
}

/// Prefixes to check on `node`, each with the node owning it (for `blocks:`).
fn targets<'a>(cx: &'a Cx, p: &PrefixRef, node: &NodeInfo) -> Result<Vec<(Prefix, Option<&'a NodeInfo>)>, String> {
    match p {
        PrefixRef::Cidr(c) => Ok(vec![(*c, None)]),
        PrefixRef::Blocks(set) => {
            let owners = resolve_nodes(set, cx.nodes)?;
            // A set of several nodes means the other nodes' blocks; `block:<this node>` its own.
            let skip_self = owners.len() > 1;
            let mut out = Vec::new();
            for o in owners.iter().filter(|o| !(skip_self && o.name == node.name)) {
                let owner = cx.nodes.iter().find(|n| n.name == o.name).expect("resolved from these nodes");
                for b in node_blocks(owner, cx.block_size)? {
                    out.push((b, Some(owner)));
                }
            }
            Ok(out)
        }
    }
}

fn rib_attr_diffs(cx: &Cx, e: &RibExpect, r: &Route, owner: Option<&NodeInfo>) -> Result<Vec<String>, String> {
    let mut d = Vec::new();
    let show = |ip: Option<IpAddr>| ip.map(|i| fmt_ip(&i, cx.nodes)).unwrap_or_else(|| "none".into());
    if let Some(k) = &e.kind {
        if kind_word(r.kind) != k {
            d.push(format!("kind: expected {k}, found {}", kind_word(r.kind)));
        }
    }
    if let Some(a) = &e.next_hop {
        let want = resolve_addr(a, cx.nodes, owner)?;
        let got = if r.is_bgp() { r.bgp_next_hop() } else { r.via };
        if got != Some(want) {
            d.push(format!("next_hop: expected {}, found {}", fmt_ip(&want, cx.nodes), show(got)));
        }
    }
    if let Some(a) = &e.from {
        let want = resolve_addr(a, cx.nodes, owner)?;
        let got = r.learned_from();
        if got != Some(want) {
            d.push(format!("from: expected {}, found {}", fmt_ip(&want, cx.nodes), show(got)));
        }
    }
    if let Some(a) = &e.originator_id {
        let want = resolve_addr(a, cx.nodes, owner)?;
        let got = r.originator_id().map(IpAddr::V4);
        if got != Some(want) {
            d.push(format!("originator_id: expected {}, found {}", fmt_ip(&want, cx.nodes), show(got)));
        }
    }
    if let Some(list) = &e.cluster_list {
        let want: Vec<IpAddr> = list.iter().map(|a| resolve_addr(a, cx.nodes, owner)).collect::<Result<_, _>>()?;
        let got: Vec<IpAddr> = r.cluster_list().iter().map(|c| IpAddr::V4(*c)).collect();
        if want != got {
            let f = |v: &[IpAddr]| format!("[{}]", v.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
            d.push(format!("cluster_list: expected {}, found {}", f(&want), f(&got)));
        }
    }
    if let Some(p) = &e.as_path {
        if p.as_slice() != r.as_path() {
            d.push(format!("as_path: expected {p:?}, found {:?}", r.as_path()));
        }
    }
    Ok(d)
}

fn rib(cx: &Cx, e: &RibExpect) -> Diff {
    per_node(cx, &e.on, |node| {
        let routes = cx.lab.rib(&node.name).map_err(|e| format!("cannot read BIRD's routes: {e}"))?;
        let mut out = Vec::new();
        for (prefix, owner) in targets(cx, &e.prefix, node)? {
            let label = match owner {
                Some(o) => format!("{prefix} (block of {})", o.name),
                None => prefix.to_string(),
            };
            let paths: Vec<&Route> = routes.iter().filter(|r| r.prefix == prefix).collect();
            if e.absent {
                if !paths.is_empty() {
                    out.push(format!("{label}: expected absent, found {} path(s):", paths.len()));
                    out.extend(paths.iter().map(|r| format!("  {}", route_line(r))));
                }
                continue;
            }
            if paths.is_empty() {
                let near: Vec<String> = routes
                    .iter()
                    .filter(|r| r.prefix.contains(prefix.addr) || prefix.contains(r.prefix.addr))
                    .map(|r| format!("  {}", route_line(r)))
                    .collect();
                out.push(format!("{label}: missing (BIRD has no route for it)"));
                if !near.is_empty() {
                    out.push("overlapping routes:".into());
                    out.extend(capped(near, 5));
                }
                continue;
            }
            let mut lines = Vec::new();
            if let Some(b) = &e.count {
                if !b.holds(paths.len() as u64) {
                    lines.push(format!("count: expected {b} path(s), found {}", paths.len()));
                }
            }
            let best = paths.iter().find(|r| r.primary).copied().unwrap_or(paths[0]);
            match e.path {
                PathChoice::Best => lines.extend(rib_attr_diffs(cx, e, best, owner)?),
                PathChoice::Any => {
                    let mut first = None;
                    let mut any_ok = false;
                    for r in &paths {
                        let d = rib_attr_diffs(cx, e, r, owner)?;
                        if d.is_empty() {
                            any_ok = true;
                            break;
                        }
                        first.get_or_insert(d);
                    }
                    if !any_ok {
                        lines.push("no path has all the attributes; the best path differs in:".into());
                        lines.extend(first.unwrap_or_default().into_iter().map(|l| format!("  {l}")));
                    }
                }
            }
            if !lines.is_empty() {
                out.push(format!("{label}:"));
                out.extend(lines.into_iter().map(|l| format!("  {l}")));
                out.push("  paths:".into());
                out.extend(paths.iter().map(|r| format!("    {}", route_line(r))));
            }
        }
        if out.is_empty() {
            Ok(())
        } else {
            Err(out.join("\n"))
        }
    })
}

// ------------------------------------------------------------------------------------------ fib

/// A route spec with node names, `owner` and blocks resolved.
#[derive(Debug, Clone)]
struct Concrete {
    kind: Option<String>,
    dst: Prefix,
    via: Option<IpAddr>,
    dev: Option<String>,
    proto: Option<String>,
    onlink: bool,
    metric: Option<u32>,
    scope: Option<String>,
    src: Option<IpAddr>,
}

impl Concrete {
    fn show(&self, nodes: &[NodeInfo]) -> String {
        let mut p = Vec::new();
        if let Some(k) = &self.kind {
            p.push(k.clone());
        }
        p.push(self.dst.to_string());
        if let Some(v) = &self.via {
            p.push(format!("via {}", fmt_ip(v, nodes)));
        }
        if let Some(d) = &self.dev {
            p.push(format!("dev {d}"));
        }
        if let Some(x) = &self.proto {
            p.push(format!("proto {x}"));
        }
        if let Some(x) = &self.scope {
            p.push(format!("scope {x}"));
        }
        if let Some(x) = &self.src {
            p.push(format!("src {x}"));
        }
        if let Some(x) = &self.metric {
            p.push(format!("metric {x}"));
        }
        if self.onlink {
            p.push("onlink".into());
        }
        p.join(" ")
    }

    fn matches(&self, r: &KernelRoute) -> bool {
        let proto_ok = |want: &str| {
            let got = r.effective_protocol();
            got == want || (want == "bird" && got == "12") || (want == "12" && got == "bird")
        };
        r.dst == self.dst
            && self.kind.as_deref().is_none_or(|k| r.kind.as_str() == k)
            && self.via.is_none_or(|v| r.gateway == Some(v))
            && self.dev.as_deref().is_none_or(|d| r.dev.as_deref() == Some(d))
            && self.proto.as_deref().is_none_or(proto_ok)
            && (!self.onlink || r.is_onlink())
            && self.metric.is_none_or(|m| r.metric == Some(m))
            && self.scope.as_deref().is_none_or(|s| r.effective_scope() == s)
            && self.src.is_none_or(|s| r.prefsrc == Some(s))
    }
}

fn concretes(cx: &Cx, spec: &RouteSpec, node: &NodeInfo) -> Result<Vec<Concrete>, String> {
    let mut out = Vec::new();
    for (dst, owner) in targets(cx, &spec.dst, node)? {
        out.push(Concrete {
            kind: spec.kind.clone(),
            dst,
            via: spec.via.as_ref().map(|a| resolve_addr(a, cx.nodes, owner)).transpose()?,
            dev: spec.dev.clone(),
            proto: spec.proto.clone(),
            onlink: spec.onlink,
            metric: spec.metric,
            scope: spec.scope.clone(),
            src: spec.src,
        });
    }
    Ok(out)
}

fn fib(cx: &Cx, e: &FibExpect) -> Diff {
    per_node(cx, &e.on, |node| {
        let routes = cx.lab.fib(&node.name).map_err(|e| format!("cannot read the kernel's routes: {e}"))?;
        let same_dst = |c: &Concrete| -> Vec<String> {
            routes.iter().filter(|r| r.dst == c.dst).map(|r| format!("    found: {r}")).collect()
        };
        let mut missing = Vec::new();
        let mut present = Vec::new();
        let mut unexpected = Vec::new();
        for spec in &e.contains {
            for c in concretes(cx, spec, node)? {
                if !routes.iter().any(|r| c.matches(r)) {
                    missing.push(format!("  {}", c.show(cx.nodes)));
                    missing.extend(same_dst(&c));
                }
            }
        }
        for spec in &e.absent {
            for c in concretes(cx, spec, node)? {
                for r in routes.iter().filter(|r| c.matches(r)) {
                    present.push(format!("  {r}   (matches `{}`)", spec.text));
                }
            }
        }
        if let Some(exact) = &e.exact {
            let bird: Vec<&KernelRoute> = routes.iter().filter(|r| r.is_bird()).collect();
            let mut used = vec![false; bird.len()];
            for spec in exact {
                for c in concretes(cx, spec, node)? {
                    match bird.iter().enumerate().position(|(i, r)| !used[i] && c.matches(r)) {
                        Some(i) => used[i] = true,
                        None => {
                            missing.push(format!("  {}", c.show(cx.nodes)));
                            missing.extend(same_dst(&c));
                        }
                    }
                }
            }
            for (i, r) in bird.iter().enumerate() {
                if !used[i] {
                    unexpected.push(format!("  {r}"));
                }
            }
        }
        let mut out = Vec::new();
        for (title, v) in
            [("missing:", missing), ("present, expected absent:", present), ("unexpected (proto bird):", unexpected)]
        {
            if !v.is_empty() {
                out.push(title.to_string());
                out.extend(v);
            }
        }
        if out.is_empty() {
            Ok(())
        } else {
            Err(out.join("\n"))
        }
    })
}

// ------------------------------------------------------------------------------------------ reach

fn pod_label(p: &PodInfo) -> String {
    format!("{} ({}, {})", p.name, p.ip, p.node)
}

fn reach(cx: &Cx, e: &ReachExpect) -> Diff {
    let from = resolve_pods(&e.from, cx.nodes)?;
    let to = resolve_pods(&e.to, cx.nodes)?;
    let mut pairs: Vec<(PodInfo, PodInfo)> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut add = |a: &PodInfo, b: &PodInfo, pairs: &mut Vec<(PodInfo, PodInfo)>| {
        if a.name != b.name && seen.insert((a.name.clone(), b.name.clone())) {
            pairs.push((a.clone(), b.clone()));
        }
    };
    for a in &from {
        for b in &to {
            add(a, b, &mut pairs);
        }
    }
    if e.both_ways {
        for a in &to {
            for b in &from {
                add(a, b, &mut pairs);
            }
        }
    }
    if pairs.is_empty() {
        return Err("no pod pairs to ping (the two sets are the same single pod)".into());
    }
    let results = cx.lab.ping_many(&pairs);
    let bad: Vec<String> = pairs
        .iter()
        .zip(&results)
        .filter(|(_, ok)| **ok != e.pass)
        .map(|((a, b), _)| format!("  {} -> {}", pod_label(a), pod_label(b)))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let head = if e.pass {
        format!("expected every ping to pass; {} of {} failed:", bad.len(), pairs.len())
    } else {
        format!("expected every ping to fail; {} of {} passed:", bad.len(), pairs.len())
    };
    let mut out = vec![head];
    out.extend(capped(bad, 40));
    Err(out.join("\n"))
}

// ------------------------------------------------------------------------------------------ ipset

/// Set members compare as prefixes when they are IPs or CIDRs (`10.0.1.3` = `10.0.1.3/32`).
fn member_key(m: &str) -> String {
    match m.parse::<Prefix>() {
        Ok(p) if p.is_host() => p.addr.to_string(),
        Ok(p) => p.to_string(),
        Err(_) => m.to_string(),
    }
}

fn expand_members(cx: &Cx, ms: &[MemberRef]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for m in ms {
        match m {
            MemberRef::Literal(s) => out.push(member_key(s)),
            MemberRef::Nodes(set) => out.extend(resolve_nodes(set, cx.nodes)?.into_iter().map(|n| n.ip.to_string())),
        }
    }
    Ok(out)
}

fn ipset(cx: &Cx, e: &IpsetExpect) -> Diff {
    let contains = expand_members(cx, &e.contains)?;
    let absent = expand_members(cx, &e.absent)?;
    let exact = e.exact.as_ref().map(|x| expand_members(cx, x)).transpose()?;
    per_node(cx, &e.on, |node| {
        let sets = cx.lab.ipsets(&node.name).map_err(|e| format!("cannot read ipsets: {e}"))?;
        let set = sets.iter().find(|s| s.name == e.set);
        let have: BTreeSet<String> = set.map(|s| s.members.iter().map(|m| member_key(m)).collect()).unwrap_or_default();
        if set.is_none() && (!contains.is_empty() || exact.is_some()) {
            let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
            return Err(format!("no ipset named {} (sets: {})", e.set, names.join(", ")));
        }
        let label = |m: &str| format!("  {}", label_addr(m, cx.nodes));
        let mut missing: Vec<String> = contains.iter().filter(|m| !have.contains(*m)).map(|m| label(m)).collect();
        let present: Vec<String> = absent.iter().filter(|m| have.contains(*m)).map(|m| label(m)).collect();
        let mut unexpected = Vec::new();
        if let Some(x) = &exact {
            let want: BTreeSet<&String> = x.iter().collect();
            missing.extend(x.iter().filter(|m| !have.contains(*m)).map(|m| label(m)));
            unexpected.extend(have.iter().filter(|m| !want.contains(m)).map(|m| label(m)));
        }
        missing.dedup();
        if missing.is_empty() && present.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        let mut out = Vec::new();
        for (title, v) in [("missing:", missing), ("present, expected absent:", present), ("unexpected:", unexpected)] {
            if !v.is_empty() {
                out.push(title.to_string());
                out.extend(v);
            }
        }
        let all: Vec<&str> = have.iter().map(String::as_str).collect();
        out.push(format!("members now: {}", if all.is_empty() { "(none)".to_string() } else { all.join(", ") }));
        Err(out.join("\n"))
    })
}

// ------------------------------------------------------------------------------------------ iptables

fn rule_counters(t: &IpTables, chain: &str, rule: &str) -> Option<Option<crate::observe::Counters>> {
    t.rule_by_comment(chain, rule).map(|r| r.counters)
}

fn iptables(cx: &Cx, e: &IptablesExpect) -> Diff {
    let nodes = resolve_nodes(&e.on, cx.nodes)?;
    let mut problems = Vec::new();
    // (node, before, now) per counter kind
    let mut rows: Vec<(String, Option<crate::observe::Counters>, crate::observe::Counters)> = Vec::new();
    for n in &nodes {
        let t = match cx.lab.iptables(&n.name) {
            Ok(t) => t,
            Err(err) => {
                problems.push(format!("{}: cannot read iptables: {err}", n.name));
                continue;
            }
        };
        match t.rule_by_comment(&e.chain, &e.rule) {
            None if e.present => {
                let comments: Vec<String> = t
                    .chain(&e.chain)
                    .map(|c| {
                        c.rules
                            .iter()
                            .flat_map(|r| r.comments.iter().filter(|c| !c.starts_with("cali:")).cloned())
                            .collect()
                    })
                    .unwrap_or_default();
                problems.push(if t.chain(&e.chain).is_none() {
                    format!("{}: no chain {}", n.name, e.chain)
                } else {
                    format!(
                        "{}: no rule in {} with comment {:?} (comments there: {})",
                        n.name,
                        e.chain,
                        e.rule,
                        comments.join("; ")
                    )
                });
            }
            None => {}
            Some(r) if !e.present => {
                problems.push(format!("{}: rule present, expected absent: -A {} {}", n.name, r.chain, r.args.join(" ")))
            }
            Some(r) => {
                let Some(now) = r.counters else {
                    if e.packets.is_some() || e.bytes.is_some() {
                        problems.push(format!("{}: the rule has no counters (read with iptables-save -c)", n.name));
                    }
                    continue;
                };
                let before = cx
                    .outcome
                    .iptables_before
                    .get(&n.name)
                    .and_then(|b| rule_counters(b, &e.chain, &e.rule))
                    .map(|c| c.unwrap_or_default());
                rows.push((n.name.clone(), before, now));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let mut out = Vec::new();
    for (what, check) in [("packets", &e.packets), ("bytes", &e.bytes)] {
        let Some(check) = check else { continue };
        let pick = |c: &crate::observe::Counters| if what == "packets" { c.packets } else { c.bytes };
        let now: u64 = rows.iter().map(|(_, _, c)| pick(c)).sum();
        let needs_before = matches!(check, CounterCheck::Increases | CounterCheck::Unchanged);
        let missing_before: Vec<&str> =
            rows.iter().filter(|(_, b, _)| b.is_none()).map(|(n, _, _)| n.as_str()).collect();
        if needs_before && !missing_before.is_empty() {
            out.push(format!(
                "{what}: no value from the step's start for {} (StepOutcome.iptables_before), so \"{check}\" cannot be judged",
                missing_before.join(", ")
            ));
            continue;
        }
        let before: u64 = rows.iter().filter_map(|(_, b, _)| b.as_ref().map(pick)).sum();
        let ok = match check {
            CounterCheck::Increases => now > before,
            CounterCheck::Unchanged => now == before,
            CounterCheck::Value(b) => b.holds(now),
        };
        if !ok {
            let per: Vec<String> = rows
                .iter()
                .map(|(n, b, c)| match b {
                    Some(b) => format!("{n} {} -> {}", pick(b), pick(c)),
                    None => format!("{n} {}", pick(c)),
                })
                .collect();
            let detail = if rows.len() > 1 { format!(" ({})", per.join(", ")) } else { String::new() };
            out.push(match check {
                CounterCheck::Value(b) => format!("{what}: expected {b}, found {now}{detail}"),
                _ => format!("{what}: expected {check}, was {before} when the step started, now {now}{detail}"),
            });
        }
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(format!("rule {:?} in {}:\n{}", e.rule, e.chain, indent(&out.join("\n"), "  ")))
    }
}

// ------------------------------------------------------------------------------------------ config

fn norm_line(l: &str) -> String {
    l.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn norm_lines(text: &str) -> Vec<(usize, String)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, norm_line(l))).filter(|(_, l)| !l.is_empty()).collect()
}

/// Where `want` (normalised lines) appears as consecutive lines: the line number of its first line.
fn find_lines(have: &[(usize, String)], want: &[String]) -> Option<usize> {
    if want.is_empty() || want.len() > have.len() {
        return None;
    }
    (0..=have.len() - want.len()).find(|&i| want.iter().zip(&have[i..]).all(|(w, (_, h))| w == h)).map(|i| have[i].0)
}

/// Up to 3 lines sharing the most leading words with `want`.
fn closest(have: &[(usize, String)], want: &str) -> Vec<(usize, String)> {
    let ww: Vec<&str> = want.split(' ').collect();
    let mut scored: Vec<(usize, usize, String)> = have
        .iter()
        .map(|(n, l)| {
            let common = l.split(' ').zip(&ww).take_while(|(a, b)| a == *b).count();
            (common, *n, l.clone())
        })
        .filter(|(c, _, _)| *c > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let best = scored.first().map(|s| s.0).unwrap_or(0);
    scored.into_iter().filter(|s| s.0 == best).take(3).map(|(_, n, l)| (n, l)).collect()
}

fn config(cx: &Cx, e: &ConfigExpect) -> Diff {
    per_node(cx, &e.on, |node| {
        let files = cx.lab.config(&node.name).map_err(|e| format!("cannot read the BIRD config: {e}"))?;
        let chosen: Vec<(&String, &String)> = match &e.file {
            Some(f) => match files.get_key_value(f) {
                Some(kv) => vec![kv],
                None => {
                    let names: Vec<&str> = files.keys().map(String::as_str).collect();
                    return Err(format!("no config file {f} (files: {})", names.join(", ")));
                }
            },
            None => files.iter().collect(),
        };
        let parsed: Vec<(&String, Vec<(usize, String)>)> = chosen.iter().map(|(n, t)| (*n, norm_lines(t))).collect();
        let mut out = Vec::new();
        for want in &e.contains {
            let w: Vec<String> = want.lines().map(norm_line).filter(|l| !l.is_empty()).collect();
            if parsed.iter().any(|(_, have)| find_lines(have, &w).is_some()) {
                continue;
            }
            out.push(format!("missing: {}", w.join(" / ")));
            if let Some(first) = w.first() {
                for (f, have) in &parsed {
                    for (n, l) in closest(have, first) {
                        out.push(format!("  nearest, {f}:{n}: {l}"));
                    }
                }
            }
        }
        for lack in &e.lacks {
            let w: Vec<String> = lack.lines().map(norm_line).filter(|l| !l.is_empty()).collect();
            for (f, have) in &parsed {
                let mut from = 0;
                while let Some(n) = find_lines(&have[from..], &w) {
                    out.push(format!("present, expected absent: {} ({f}:{n})", w.join(" / ")));
                    from += have[from..].iter().position(|(k, _)| *k == n).unwrap_or(0) + 1;
                    if from >= have.len() {
                        break;
                    }
                }
            }
        }
        if out.is_empty() {
            Ok(())
        } else {
            Err(out.join("\n"))
        }
    })
}

// ------------------------------------------------------------------------------------------ fails

fn norm_lower(s: &str) -> String {
    norm_line(&s.to_lowercase())
}

fn fails(cx: &Cx, e: &FailsExpect) -> Diff {
    let needle = norm_lower(&e.message);
    let failed: Vec<_> = cx.outcome.commands.iter().filter(|c| !c.ok).collect();
    if failed.iter().any(|c| norm_lower(&format!("{}\n{}", c.stderr, c.stdout)).contains(&needle)) {
        return Ok(());
    }
    let nodes = match &e.on {
        Some(set) => resolve_nodes(set, cx.nodes)?,
        None => cx.nodes.to_vec(),
    };
    let mut bird = Vec::new();
    for n in &nodes {
        if let Some(err) = cx.lab.bird_config_error(&n.name) {
            if norm_lower(&err).contains(&needle) {
                return Ok(());
            }
            bird.push(format!("  BIRD on {}: {}", n.name, err.trim()));
        }
    }
    let mut out = vec![format!("expected a failure with {:?}", e.message)];
    if failed.is_empty() && bird.is_empty() {
        out.push(format!(
            "found none: every command succeeded ({} command{}) and no node reports a BIRD configuration error",
            cx.outcome.commands.len(),
            if cx.outcome.commands.len() == 1 { "" } else { "s" }
        ));
    } else {
        out.push("found other failures:".into());
        for c in failed {
            out.push(format!("  line {}: {}", c.line, c.command));
            out.extend(c.stderr.trim().lines().map(|l| format!("    {l}")));
        }
        out.extend(bird);
    }
    Err(out.join("\n"))
}

// ------------------------------------------------------------------------------------------ loss

fn pct(lost: u64, sent: u64) -> f64 {
    if sent == 0 {
        0.0
    } else {
        lost as f64 * 100.0 / sent as f64
    }
}

/// `a-to-b 3/312 (1.0%), longest outage 30ms`
pub fn probe_text(name: &str, s: &ProbeStats) -> String {
    let mut t = format!(
        "{name} {}/{} lost ({:.1}%), longest outage {}",
        s.lost(),
        s.sent,
        pct(s.lost(), s.sent),
        fmt_duration(s.longest_outage)
    );
    if s.duplicates > 0 || s.reordered > 0 {
        t.push_str(&format!(", {} duplicated, {} reordered", s.duplicates, s.reordered));
    }
    t
}

fn loss(cx: &Cx, e: &LossExpect) -> Diff {
    let names: Vec<String> = match &e.probe {
        Some(p) => vec![p.clone()],
        None => cx.outcome.probes.keys().cloned().collect(),
    };
    if names.is_empty() {
        return Err("no probe measured anything in this step".into());
    }
    let mut out = Vec::new();
    for name in names {
        let Some(s) = cx.outcome.probes.get(&name) else {
            out.push(format!("{name}: no measurement for this step"));
            continue;
        };
        let mut why = Vec::new();
        if s.sent == 0 {
            why.push("no packet was sent".to_string());
        }
        if let Some(b) = e.max_lost {
            let ok = match b {
                LostBudget::Packets(n) => s.lost() <= n,
                LostBudget::Percent(p) => pct(s.lost(), s.sent) <= p,
            };
            if !ok {
                why.push(format!("lost {} of {} ({:.1}%), budget {b}", s.lost(), s.sent, pct(s.lost(), s.sent)));
            }
        }
        if let Some(b) = e.min_lost {
            let ok = match b {
                LostBudget::Packets(n) => s.lost() >= n,
                LostBudget::Percent(p) => pct(s.lost(), s.sent) >= p,
            };
            if !ok {
                why.push(format!(
                    "lost {} of {} ({:.1}%), but at least {b} must be lost",
                    s.lost(),
                    s.sent,
                    pct(s.lost(), s.sent)
                ));
            }
        }
        if let Some(m) = e.min_outage {
            if s.longest_outage < m {
                why.push(format!(
                    "longest outage {}, but an outage of at least {} must be seen",
                    fmt_duration(s.longest_outage),
                    fmt_duration(m)
                ));
            }
        }
        if let Some(m) = e.min_duplicates {
            if s.duplicates < m {
                why.push(format!("{} packets arrived twice, but at least {m} must", s.duplicates));
            }
        }
        if let Some(m) = e.min_reordered {
            if s.reordered < m {
                why.push(format!("{} packets arrived out of order, but at least {m} must", s.reordered));
            }
        }
        if let Some(m) = e.max_outage {
            if s.longest_outage > m {
                why.push(format!("longest outage {}, budget {}", fmt_duration(s.longest_outage), fmt_duration(m)));
            }
        }
        if !why.is_empty() {
            out.push(format!("{name}: {}", why.join("; ")));
        }
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(out.join("\n"))
    }
}

fn converge(cx: &Cx, e: &ConvergeExpect) -> Diff {
    match cx.outcome.converged {
        Some(d) if d <= e.within => Ok(()),
        Some(d) => Err(format!("converged in {}, budget {}", fmt_duration(d), fmt_duration(e.within))),
        None => {
            Err(format!("did not converge: the step's expectations never all held (budget {})", fmt_duration(e.within)))
        }
    }
}

// ------------------------------------------------------------------------------------------ wan

/// Established BGP sessions whose two ends are nodes on different sites, each counted once:
/// `(node a, node b)` with a < b. Nodes whose sessions cannot be read are returned apart.
pub fn wan_sessions(lab: &dyn LabView, nodes: &[NodeInfo]) -> (Vec<(String, String)>, Vec<String>) {
    let mut seen = BTreeSet::new();
    let mut unreadable = Vec::new();
    for n in nodes {
        let protocols = match lab.protocols(&n.name) {
            Ok(p) => p,
            Err(e) => {
                unreadable.push(format!("{}: {e}", n.name));
                continue;
            }
        };
        for p in protocols.iter().filter(|p| p.is_established()) {
            let Some(ps) = PeerStatus::from_protocol(p, 4) else {
                continue;
            };
            let Ok(ip) = ps.address.parse::<IpAddr>() else { continue };
            let Some(peer) = node_name_of(nodes, &ip) else { continue };
            if peer.site.is_some() && n.site.is_some() && peer.site != n.site {
                let (a, b) = if n.name < peer.name { (&n.name, &peer.name) } else { (&peer.name, &n.name) };
                seen.insert((a.clone(), b.clone()));
            }
        }
    }
    (seen.into_iter().collect(), unreadable)
}

fn wan(cx: &Cx, e: &WanExpect) -> Diff {
    let mut out = Vec::new();
    if let Some(b) = &e.bgp_sessions {
        let (sessions, unreadable) = wan_sessions(cx.lab, cx.nodes);
        if !b.holds(sessions.len() as u64) {
            out.push(format!("bgp_sessions: expected {b}, found {} crossing the WAN", sessions.len()));
            let site = |n: &str| cx.nodes.iter().find(|x| x.name == n).and_then(|x| x.site.clone()).unwrap_or_default();
            out.extend(capped(
                sessions.iter().map(|(a, b)| format!("  {a} ({}) — {b} ({})", site(a), site(b))).collect(),
                30,
            ));
            out.extend(unreadable.into_iter().map(|u| format!("  (not counted) {u}")));
        }
    }
    let counters = [
        ("bgp_bytes", &e.bgp_bytes),
        ("bgp_packets", &e.bgp_packets),
        ("ipip_bytes", &e.ipip_bytes),
        ("ipip_packets", &e.ipip_packets),
    ];
    if counters.iter().any(|(_, b)| b.is_some()) {
        let Some(before) = &cx.outcome.wan_before else {
            out.push(
                "no WAN counters from the step's start (StepOutcome.wan_before), so deltas cannot be judged".into(),
            );
            return Err(out.join("\n"));
        };
        let now = cx.lab.wan().map_err(|e| format!("cannot read the WAN counters: {e}"))?;
        for (name, b) in counters {
            let Some(b) = b else { continue };
            let (x, y) = match name {
                "bgp_bytes" => (before.bgp_bytes, now.bgp_bytes),
                "bgp_packets" => (before.bgp_packets, now.bgp_packets),
                "ipip_bytes" => (before.ipip_bytes, now.ipip_bytes),
                _ => (before.ipip_packets, now.ipip_packets),
            };
            let d = y.saturating_sub(x);
            if !b.holds(d) {
                out.push(format!("{name}: expected {b} during the step, found {d} ({x} -> {y})"));
            }
        }
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(out.join("\n"))
    }
}

// ------------------------------------------------------------------------------------------ commands

/// A command of the step failed and the step has no `fails` expectation: one mismatch naming every failed
/// command (runbook line, command line, stderr). None when all succeeded or a failure was expected.
pub fn unexpected_command_failures(step: &Step, outcome: &StepOutcome) -> Option<Mismatch> {
    if step.expects_failure() {
        return None;
    }
    let failed: Vec<_> = outcome.commands.iter().filter(|c| !c.ok).collect();
    if failed.is_empty() {
        return None;
    }
    let base = match &step.what {
        StepAction::Run { script_line, .. } => Some(*script_line),
        _ => None,
    };
    let mut out = Vec::new();
    for c in &failed {
        let at = match base {
            Some(b) if b > 0 && c.line > 0 => format!("line {}", b + c.line - 1),
            _ => format!("script line {}", c.line),
        };
        out.push(format!("{at}: {}", c.command));
        let err = if c.stderr.trim().is_empty() { c.stdout.trim() } else { c.stderr.trim() };
        out.extend(err.lines().map(|l| format!("  {l}")));
    }
    Some(Mismatch {
        expectation: "every command succeeds (add a `fails` expectation if the failure is the point)".to_string(),
        line: failed.first().map(|c| base.map(|b| b + c.line.max(1) - 1).unwrap_or(step.line)).unwrap_or(step.line),
        diff: out.join("\n"),
    })
}

// ------------------------------------------------------------------------------------------ waiting

#[derive(Debug, Clone)]
pub struct WaitOptions {
    pub timeout: Duration,
    pub poll: Duration,
    /// After everything held: keep going this long, then check it all again and judge `loss`.
    pub settle: Duration,
    pub block_size: u8,
    /// Times are measured from here (e.g. when the step's command started); default: the call.
    pub since: Option<Instant>,
    /// Stop polling when this is set (Ctrl-C).
    pub cancel: Option<&'static std::sync::atomic::AtomicBool>,
}

impl WaitOptions {
    pub fn for_step(step: &Step, d: &Defaults) -> WaitOptions {
        WaitOptions {
            timeout: step.timeout_or(d),
            poll: d.poll,
            settle: step.settle.unwrap_or_default(),
            block_size: d.block_size,
            since: None,
            cancel: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct WaitResult {
    /// Per expectation (index into the step's list): when it first held, if it did.
    pub held: Vec<(usize, Option<Duration>)>,
    /// When all polled expectations first held together.
    pub converged: Option<Duration>,
    /// Expectations that did not hold in the end, in the step's order.
    pub failures: Vec<Mismatch>,
    /// Probe measurements when the end-of-step expectations were judged.
    pub probes: BTreeMap<String, ProbeStats>,
    /// Polling rounds.
    pub rounds: usize,
}

impl WaitResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Poll every expectation until all hold or `timeout`; returns per-expectation time to hold and the time
/// until all held.
pub fn wait_all(
    es: &[Expectation],
    lab: &dyn LabView,
    outcome: &dyn Fn() -> StepOutcome,
    timeout: Duration,
    poll: Duration,
) -> WaitResult {
    wait_all_with(
        es,
        lab,
        &|_| outcome(),
        &WaitOptions {
            timeout,
            poll,
            settle: Duration::ZERO,
            block_size: DEFAULT_BLOCK_SIZE,
            since: None,
            cancel: None,
        },
    )
}

/// [`wait_all`] with settle time, block size and start time. The state expectations (all but `loss` and
/// `converge`) are checked each round, each round reading every observation once; when all hold together,
/// the step has converged. After `settle`, they are checked once more (something that held and stopped
/// holding fails the step), then `loss` and `converge` are judged on the step outcome.
/// The per-node observations a set of expectations reads, each once, in the lab's node order (read together
/// before a polling round, concurrently where the lab can).
pub fn reads<'e>(es: impl IntoIterator<Item = &'e Expectation>, nodes: &[NodeInfo]) -> Vec<(Obs, String)> {
    let mut out: Vec<(Obs, String)> = Vec::new();
    let all = NodeSet { items: vec![NodeSel::All] };
    for e in es {
        let (what, on) = match e {
            Expectation::Sessions(x) => (Obs::Protocols, &x.on),
            Expectation::Rib(x) => (Obs::Rib, &x.on),
            Expectation::Fib(x) => (Obs::Fib, &x.on),
            Expectation::Ipset(x) => (Obs::Ipsets, &x.on),
            Expectation::Iptables(x) => (Obs::Iptables, &x.on),
            Expectation::Config(x) => (Obs::Config, &x.on),
            Expectation::Wan(x) if x.bgp_sessions.is_some() => (Obs::Protocols, &all),
            _ => continue,
        };
        for n in resolve_nodes(on, nodes).unwrap_or_default() {
            if !out.iter().any(|(w, m)| *w == what && *m == n.name) {
                out.push((what, n.name));
            }
        }
    }
    out
}

pub fn wait_all_with(
    es: &[Expectation],
    lab: &dyn LabView,
    outcome: &dyn Fn(bool) -> StepOutcome,
    o: &WaitOptions,
) -> WaitResult {
    let start = o.since.unwrap_or_else(Instant::now);
    let deadline = start + o.timeout;
    let polled: Vec<usize> = (0..es.len()).filter(|&i| es[i].is_polled()).collect();
    let mut held: Vec<Option<Duration>> = vec![None; es.len()];
    let mut last: Vec<Option<Mismatch>> = vec![None; es.len()];
    let mut converged = None;
    let mut rounds = 0;
    let needs = if polled.is_empty() { Vec::new() } else { reads(polled.iter().map(|&i| &es[i]), &lab.nodes()) };
    loop {
        rounds += 1;
        let view = CachedLab::new(lab);
        view.prefetch(&needs);
        let out = outcome(false);
        let mut all = true;
        for &i in &polled {
            match check_with(&es[i], &view, &out, o.block_size) {
                Ok(()) => {
                    held[i].get_or_insert_with(|| start.elapsed());
                    last[i] = None;
                }
                Err(m) => {
                    all = false;
                    last[i] = Some(m);
                }
            }
        }
        if all {
            converged = Some(start.elapsed());
            break;
        }
        let now = Instant::now();
        if now >= deadline || o.cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed)) {
            break;
        }
        std::thread::sleep(o.poll.min(deadline - now).max(Duration::from_millis(1)));
    }
    let mut failures: Vec<(usize, Mismatch)> = Vec::new();
    if converged.is_none() {
        for &i in &polled {
            if let Some(m) = last[i].take() {
                failures.push((i, m));
            }
        }
    } else if !o.settle.is_zero() && !polled.is_empty() {
        std::thread::sleep(o.settle);
        rounds += 1;
        let view = CachedLab::new(lab);
        let out = outcome(false);
        for &i in &polled {
            if let Err(mut m) = check_with(&es[i], &view, &out, o.block_size) {
                let at = held[i].map(fmt_duration).unwrap_or_default();
                m.diff = format!(
                    "held at {at}, then stopped holding within the {} settle time:\n{}",
                    fmt_duration(o.settle),
                    m.diff
                );
                failures.push((i, m));
            }
        }
    } else if !o.settle.is_zero() {
        std::thread::sleep(o.settle);
    }
    // The final judgement (non-polled expectations: loss, fails, converge): probes read to the end.
    let mut out = outcome(true);
    out.converged = converged;
    for (i, e) in es.iter().enumerate().filter(|(_, e)| !e.is_polled()) {
        match check_with(e, lab, &out, o.block_size) {
            Ok(()) => held[i] = Some(start.elapsed()),
            Err(m) => failures.push((i, m)),
        }
    }
    failures.sort_by_key(|(i, _)| *i);
    WaitResult {
        held: held.into_iter().enumerate().collect(),
        converged,
        failures: failures.into_iter().map(|(_, m)| m).collect(),
        probes: out.probes,
        rounds,
    }
}
