//! Behaviour extraction: a normalised, comparable summary of a [`BirdConfig`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use serde::Serialize;

use super::ast::*;
use super::eval::{self, Code, EvalResult, Route, Value, Verdict};

/// Calico's export function (bird_ipam.cfg); its bool argument is `internal_peer`.
pub const EXPORT_FUNCTION: &str = "calico_export_to_bgp_peers";

/// Comparable summary of what a configuration does.
#[derive(Clone, Debug, Serialize)]
pub struct Behaviour {
    pub router_id: Option<Ipv4Addr>,
    pub listen: Option<Listen>,
    /// BGP sessions by protocol name.
    pub bgp: BTreeMap<String, BgpBehaviour>,
    /// What each BGP session imports.
    pub import: BTreeMap<String, SessionFilter>,
    /// What each BGP session exports (normally `calico_export_to_bgp_peers(<internal>)`).
    pub export: BTreeMap<String, SessionFilter>,
    /// `calico_export_to_bgp_peers` as a decision table.
    pub export_policy: ExportPolicy,
    /// Kernel programming (the kernel protocol's export filter) as a decision table.
    pub kernel: Option<KernelPolicy>,
    pub static_routes: BTreeSet<StaticRoute>,
    /// Communities attached on export (internal peers), per probed prefix.
    pub communities: BTreeMap<Prefix, BTreeSet<String>>,
    /// BGP filter functions called from sessions' import/export filters, as decision tables
    /// (only decided probes are listed).
    pub bgp_filters: BTreeMap<String, FilterTable>,
    /// Options of the other protocols (kernel, device, direct, static), by protocol name, with
    /// `(kind)` = protocol type and `import` / `export` clauses (a kernel protocol's export is
    /// in `kernel` instead).
    pub other_protocols: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(skip)]
    pub(crate) program: Option<Arc<Program>>,
}

impl Behaviour {
    /// Pretty JSON dump.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// Multihop setting in effect (BIRD defaults applied: iBGP multihop 64, eBGP direct).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hops {
    Direct,
    Multihop(u8),
}

impl fmt::Display for Hops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hops::Direct => write!(f, "direct"),
            Hops::Multihop(n) => write!(f, "multihop {n}"),
        }
    }
}

/// A BGP session, normalised (defaults made explicit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BgpBehaviour {
    pub neighbor: IpAddr,
    /// Remote port (BIRD default 179).
    pub port: u16,
    pub remote_as: u32,
    pub local_as: Option<u32>,
    pub rr_client: bool,
    pub rr_cluster_id: Option<Ipv4Addr>,
    pub passive: bool,
    pub hops: Hops,
    pub ttl_security: bool,
    pub next_hop_keep: bool,
    pub next_hop_self: bool,
    pub source_address: Option<IpAddr>,
    pub graceful_restart_time: Option<u32>,
    pub password: Option<String>,
    pub allow_local_as: Option<u32>,
    /// Remaining options (template's and own), key → canonical value.
    pub options: BTreeMap<String, String>,
}

/// A session's import or export clause, normalised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionFilter {
    /// Accept everything (`import all;`, `filter { accept; }`).
    All,
    /// Reject everything (`export none;`, `filter { reject; }`, no export clause).
    None,
    /// `filter name;`
    Named(String),
    /// `filter { f1(); f2(); [calico_export_to_bgp_peers(B);] accept|reject; }`
    Calico { bgp_filters: Vec<String>, internal_peer: Option<bool>, default: Verdict },
    /// Anything else, as canonical text.
    Raw(String),
}

impl fmt::Display for SessionFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionFilter::All => write!(f, "all"),
            SessionFilter::None => write!(f, "none"),
            SessionFilter::Named(n) => write!(f, "filter {n}"),
            SessionFilter::Calico { bgp_filters, internal_peer, default } => {
                let mut parts: Vec<String> = bgp_filters.iter().map(|c| format!("{}()", symbol_text(c))).collect();
                if let Some(i) = internal_peer {
                    parts.push(format!("{EXPORT_FUNCTION}({i})"));
                }
                parts.push(default.to_string());
                write!(f, "{}", parts.join("; "))
            }
            SessionFilter::Raw(s) => write!(f, "{s}"),
        }
    }
}

/// Result of running filter code on one probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    /// Function / filter whose `accept` / `reject` decided.
    pub by: Option<String>,
    /// Calico role of the deciding code, derived from `verdict` and `by` ("disabled pool",
    /// "aggr block exact", ...); `None` for other functions.
    pub reason: Option<String>,
}

impl Decision {
    pub(crate) fn from_result(r: &EvalResult) -> Decision {
        let reason = r.by.as_deref().and_then(|by| {
            Some(match (&r.verdict, by) {
                (Verdict::Reject, "reject_disabled_pools") => "disabled pool",
                (Verdict::Reject, "reject_tunnel_routes") => "tunnel route",
                (Verdict::Reject, "reject_local_routes") => "local route",
                (Verdict::Accept, "calico_aggr") => "aggr block exact",
                (Verdict::Reject, "calico_aggr") => "aggr block sub",
                (Verdict::Accept, EXPORT_FUNCTION) => "pool or static route",
                _ => return None,
            })
        });
        Decision { verdict: r.verdict.clone(), by: r.by.clone(), reason: reason.map(str::to_string) }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.reason, &self.by) {
            (Some(r), _) => write!(f, "{} ({r})", self.verdict),
            (None, Some(by)) => write!(f, "{} (in {by})", self.verdict),
            (None, None) => write!(f, "{}", self.verdict),
        }
    }
}

/// Decision for internal (`internal_peer = true`) and external peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerDecision {
    pub internal: Decision,
    pub external: Decision,
}

/// Export decisions for a prefix literal of the config: the prefix itself, and a more specific
/// prefix inside it (its first half).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrefixExport {
    pub exact: PeerDecision,
    pub inside: Option<PeerDecision>,
}

/// `calico_export_to_bgp_peers` as decision tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct ExportPolicy {
    /// Name of the export function, if the config defines it.
    pub function: Option<String>,
    /// Per prefix literal reachable from the export function.
    pub prefixes: BTreeMap<Prefix, PrefixExport>,
    /// Per interface name (synthesised from `ifname ~ "pattern"` literals; a route to the
    /// family's default prefix via that interface).
    pub interfaces: BTreeMap<String, PeerDecision>,
}

/// Kernel programming decision for a prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelDecision {
    /// Accepted with `krt_tunnel = "<if>"`.
    Tunnel(String),
    /// Accepted with no tunnel (`krt_tunnel = ""` or unset).
    NoTunnel,
    /// No tunnel when `bgp_next_hop` is inside `local_net`, else `tunnel`.
    CrossSubnet {
        local_net: Prefix,
        tunnel: String,
    },
    Reject,
    /// Anything else, described.
    Other(String),
}

impl fmt::Display for KernelDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelDecision::Tunnel(t) => write!(f, "tunnel \"{t}\""),
            KernelDecision::NoTunnel => write!(f, "no tunnel"),
            KernelDecision::CrossSubnet { local_net, tunnel } => {
                write!(f, "cross-subnet (no tunnel within {local_net}, else tunnel \"{tunnel}\")")
            }
            KernelDecision::Reject => write!(f, "reject"),
            KernelDecision::Other(s) => write!(f, "{s}"),
        }
    }
}

/// Kernel protocol export behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelPolicy {
    /// What the kernel protocol exports (`filter calico_kernel_programming`, `all`, ...).
    pub export: String,
    /// Per prefix literal of the kernel filter.
    pub prefixes: BTreeMap<Prefix, KernelDecision>,
    /// For a prefix matching no literal (the family's default route).
    pub default: KernelDecision,
}

/// Probe description → decision.
pub type FilterTable = BTreeMap<String, Decision>;

// ---------------------------------------------------------------------------------------------
// Program: the parts of a config needed to (re-)derive decision tables on any probe set
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub(crate) enum KernelCode {
    AcceptAll,
    RejectAll,
    Filter(String),
    Inline(Vec<Stmt>),
}

#[derive(Clone, Debug)]
pub(crate) struct Program {
    code: Code,
    export_fn: Option<String>,
    kernel: Option<(String, KernelCode)>,
    bgp_filter_fns: BTreeSet<String>,
    v4: bool,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct FnProbes {
    nets: BTreeSet<Prefix>,
    ifnames: BTreeSet<String>,
    sources: BTreeSet<String>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Probes {
    export_nets: BTreeSet<Prefix>,
    export_ifnames: BTreeSet<String>,
    kernel_nets: BTreeSet<Prefix>,
    nexthop_nets: BTreeSet<Prefix>,
    filters: BTreeMap<String, FnProbes>,
    v4: bool,
}

impl Probes {
    pub(crate) fn union(&self, o: &Probes) -> Probes {
        let mut p = self.clone();
        p.export_nets.extend(o.export_nets.iter().copied());
        p.export_ifnames.extend(o.export_ifnames.iter().cloned());
        p.kernel_nets.extend(o.kernel_nets.iter().copied());
        p.nexthop_nets.extend(o.nexthop_nets.iter().copied());
        for (k, v) in &o.filters {
            let e = p.filters.entry(k.clone()).or_default();
            e.nets.extend(v.nets.iter().copied());
            e.ifnames.extend(v.ifnames.iter().cloned());
            e.sources.extend(v.sources.iter().cloned());
        }
        p
    }
}

/// Decision tables derived on a probe set.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tables {
    pub export: ExportPolicy,
    pub kernel: Option<KernelPolicy>,
    pub communities: BTreeMap<Prefix, BTreeSet<String>>,
    pub bgp_filters: BTreeMap<String, FilterTable>,
}

/// A concrete interface name matching a pattern (`*.cali` → `x.cali`).
fn ifname_for(pattern: &str) -> String {
    pattern.replace(['*', '?'], "x")
}

fn default_net(v4: bool) -> Prefix {
    Prefix::default_route(v4)
}

fn body_and_reachable(code: &Code, stmts: &[Stmt], root: Option<&str>) -> Vec<Stmt> {
    let mut all = stmts.to_vec();
    for f in eval::reachable_functions(code, stmts, root) {
        if let Some(func) = code.functions.get(&f) {
            all.extend(func.body.iter().cloned());
        }
    }
    all
}

fn communities_of(r: &EvalResult) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for attr in ["bgp_community", "bgp_large_community", "bgp_ext_community"] {
        if let Some(Value::List(l)) = r.changed.get(attr) {
            for t in l {
                out.insert(Value::Tuple(t.clone()).to_string());
            }
        }
    }
    out
}

impl Program {
    fn from_config(cfg: &BirdConfig) -> Program {
        let code = Code::from_config(cfg);
        let export_fn = cfg.functions.contains_key(EXPORT_FUNCTION).then(|| EXPORT_FUNCTION.to_string());
        let kernel = cfg.protocols.iter().find(|p| p.kind == "kernel").map(|p| {
            let fr = cfg.effective_export(p);
            let kc = match &fr {
                FilterRef::Default | FilterRef::None => KernelCode::RejectAll,
                FilterRef::All => KernelCode::AcceptAll,
                FilterRef::Named(n) => KernelCode::Filter(n.clone()),
                FilterRef::Inline(s) => KernelCode::Inline(s.clone()),
                FilterRef::Where(e) => KernelCode::Inline(vec![
                    Stmt::If { cond: e.clone(), then: vec![Stmt::Accept(None)], otherwise: None },
                    Stmt::Reject(None),
                ]),
            };
            let label = match fr {
                FilterRef::Default => "none".to_string(),
                other => other.to_string(),
            };
            (label, kc)
        });
        let mut bgp_filter_fns = BTreeSet::new();
        for s in cfg.bgp_sessions() {
            for fr in [&s.import, &s.export] {
                if let FilterRef::Inline(stmts) = fr {
                    eval::walk_stmts(stmts, &mut |e| {
                        if let Expr::Call(n, _) = e {
                            if n != EXPORT_FUNCTION && cfg.functions.contains_key(n) {
                                bgp_filter_fns.insert(n.clone());
                            }
                        }
                    });
                }
            }
        }
        // Address family: IPv6 if the static routes / functions only mention IPv6 prefixes.
        let mut nets = BTreeSet::new();
        for f in cfg.functions.values() {
            eval::prefixes_compared_with(&f.body, "net", &mut nets);
        }
        for f in cfg.filters.values() {
            eval::prefixes_compared_with(&f.body, "net", &mut nets);
        }
        nets.extend(cfg.static_routes().map(|r| r.prefix));
        let any_v4 = nets.iter().any(|p| p.is_v4());
        let any_v6 = nets.iter().any(|p| !p.is_v4());
        let v6_neighbors = cfg.bgp_sessions().next().is_some_and(|s| s.neighbor.is_ipv6());
        let v6 = (any_v6 && !any_v4) || (nets.is_empty() && v6_neighbors);
        let v4 = !v6;
        Program { code, export_fn, kernel, bgp_filter_fns, v4 }
    }

    fn kernel_stmts(&self) -> Option<Vec<Stmt>> {
        match &self.kernel {
            Some((_, KernelCode::Filter(n))) => self.code.filters.get(n).map(|f| f.body.clone()),
            Some((_, KernelCode::Inline(s))) => Some(s.clone()),
            _ => None,
        }
    }

    pub(crate) fn probes(&self) -> Probes {
        let mut p = Probes { v4: self.v4, ..Default::default() };
        if let Some(f) = self.export_fn.as_deref().and_then(|n| self.code.functions.get(n)) {
            let all = body_and_reachable(&self.code, &f.body, Some(&f.name));
            eval::prefixes_compared_with(&all, "net", &mut p.export_nets);
            let mut pats = BTreeSet::new();
            eval::patterns_compared_with(&all, "ifname", &mut pats);
            p.export_ifnames = pats.iter().map(|s| ifname_for(s)).collect();
        }
        if let Some(stmts) = self.kernel_stmts() {
            let all = body_and_reachable(&self.code, &stmts, None);
            eval::prefixes_compared_with(&all, "net", &mut p.kernel_nets);
            eval::prefixes_compared_with(&all, "bgp_next_hop", &mut p.nexthop_nets);
        }
        for name in &self.bgp_filter_fns {
            let Some(f) = self.code.functions.get(name) else {
                continue;
            };
            let all = body_and_reachable(&self.code, &f.body, Some(name));
            let mut fp = FnProbes::default();
            eval::prefixes_compared_with(&all, "net", &mut fp.nets);
            let mut pats = BTreeSet::new();
            eval::patterns_compared_with(&all, "ifname", &mut pats);
            fp.ifnames = pats.iter().map(|s| ifname_for(s)).collect();
            eval::enums_compared_with(&all, "source", &mut fp.sources);
            p.filters.insert(name.clone(), fp);
        }
        p
    }

    fn export_decision(&self, f: &str, route: &Route) -> PeerDecision {
        let run = |internal: bool| Decision::from_result(&self.code.run_function(f, &[Value::Bool(internal)], route));
        PeerDecision { internal: run(true), external: run(false) }
    }

    fn kernel_decision(&self, net: Prefix, nexthop_nets: &BTreeSet<Prefix>) -> KernelDecision {
        let Some((_, kc)) = &self.kernel else {
            return KernelDecision::Reject;
        };
        let run = |nh: Option<IpAddr>| -> KernelDecision {
            let mut route = Route::new(net);
            route.bgp_next_hop = nh;
            let r = match kc {
                KernelCode::AcceptAll => return KernelDecision::NoTunnel,
                KernelCode::RejectAll => return KernelDecision::Reject,
                KernelCode::Filter(n) => self.code.run_filter(n, &route),
                KernelCode::Inline(s) => self.code.run_stmts("kernel export filter", s, &route),
            };
            match r.verdict {
                Verdict::Reject | Verdict::NoDecision => KernelDecision::Reject,
                Verdict::Error(e) => KernelDecision::Other(format!("error: {e}")),
                Verdict::Accept => {
                    let mut tunnel = None;
                    let mut others = Vec::new();
                    for (k, v) in &r.changed {
                        match (k.as_str(), v) {
                            ("krt_tunnel", Value::Str(t)) => tunnel = Some(t.clone()),
                            ("krt_tunnel", Value::Undef) => tunnel = None,
                            _ => others.push(format!("{k} = {v}")),
                        }
                    }
                    if !others.is_empty() {
                        let mut s = format!("accept with {}", others.join(", "));
                        if let Some(t) = tunnel {
                            s.push_str(&format!(", krt_tunnel = \"{t}\""));
                        }
                        KernelDecision::Other(s)
                    } else {
                        match tunnel {
                            Some(t) if !t.is_empty() => KernelDecision::Tunnel(t),
                            _ => KernelDecision::NoTunnel,
                        }
                    }
                }
            }
        };
        let base = run(None);
        let cands: Vec<Prefix> = nexthop_nets.iter().copied().filter(|n| n.is_v4() == net.is_v4()).collect();
        if cands.is_empty() {
            return base;
        }
        let outside_choices: Vec<IpAddr> = if net.is_v4() {
            ["192.0.2.1", "198.51.100.1", "203.0.113.1", "240.0.0.1"]
                .iter()
                .filter_map(|s| s.parse::<Ipv4Addr>().ok().map(IpAddr::V4))
                .collect()
        } else {
            ["2001:db8::1", "3fff::1", "fec0::1"]
                .iter()
                .filter_map(|s| s.parse::<Ipv6Addr>().ok().map(IpAddr::V6))
                .collect()
        };
        let outside = outside_choices.into_iter().find(|a| !cands.iter().any(|n| n.contains_ip(*a)));
        let out_dec = outside.map(|a| run(Some(a)));
        let inside: Vec<(Prefix, KernelDecision)> = cands.iter().map(|n| (*n, run(Some(n.first_host())))).collect();
        if inside.iter().all(|(_, d)| *d == base) && out_dec.as_ref().is_none_or(|d| *d == base) {
            return base;
        }
        if let KernelDecision::Tunnel(t) = &base {
            if out_dec.as_ref().is_none_or(|d| *d == base) {
                let local: Vec<Prefix> =
                    inside.iter().filter(|(_, d)| *d == KernelDecision::NoTunnel).map(|(n, _)| *n).collect();
                let rest_same = inside.iter().all(|(_, d)| *d == KernelDecision::NoTunnel || *d == base);
                if local.len() == 1 && rest_same {
                    return KernelDecision::CrossSubnet { local_net: local[0], tunnel: t.clone() };
                }
            }
        }
        let mut parts = vec![format!("no next hop: {base}")];
        for (n, d) in &inside {
            parts.push(format!("next hop in {n}: {d}"));
        }
        if let (Some(a), Some(d)) = (outside, out_dec) {
            parts.push(format!("next hop {a}: {d}"));
        }
        KernelDecision::Other(parts.join("; "))
    }

    /// Derive all decision tables on `probes`; `full` keeps undecided BGP-filter probes too.
    pub(crate) fn tables(&self, probes: &Probes, full: bool) -> Tables {
        let mut t = Tables::default();
        if let Some(f) = &self.export_fn {
            t.export.function = Some(f.clone());
            for net in &probes.export_nets {
                let exact = self.export_decision(f, &Route::new(*net));
                let inside = net.first_half().map(|h| self.export_decision(f, &Route::new(h)));
                t.export.prefixes.insert(*net, PrefixExport { exact, inside });
                let r = self.code.run_function(f, &[Value::Bool(true)], &Route::new(*net));
                let comms = communities_of(&r);
                if !comms.is_empty() {
                    t.communities.insert(*net, comms);
                }
            }
            for ifname in &probes.export_ifnames {
                let mut route = Route::new(default_net(probes.v4));
                route.ifname = Some(ifname.clone());
                t.export.interfaces.insert(ifname.clone(), self.export_decision(f, &route));
            }
        }
        if let Some((label, _)) = &self.kernel {
            let mut prefixes = BTreeMap::new();
            for net in &probes.kernel_nets {
                prefixes.insert(*net, self.kernel_decision(*net, &probes.nexthop_nets));
            }
            let default = self.kernel_decision(default_net(probes.v4), &probes.nexthop_nets);
            t.kernel = Some(KernelPolicy { export: label.clone(), prefixes, default });
        }
        for name in &self.bgp_filter_fns {
            let fp = probes.filters.get(name).cloned().unwrap_or_default();
            t.bgp_filters.insert(name.clone(), self.filter_table(name, &fp, probes.v4, full));
        }
        t
    }

    fn filter_table(&self, name: &str, fp: &FnProbes, v4: bool, full: bool) -> FilterTable {
        let mut table = FilterTable::new();
        let Some(f) = self.code.functions.get(name) else {
            return table;
        };
        if f.params.iter().any(|p| p.ty != "bool") || f.params.len() > 3 {
            table.insert(
                "(not evaluated)".into(),
                Decision {
                    verdict: Verdict::Error("function parameters other than bool".into()),
                    by: None,
                    reason: None,
                },
            );
            return table;
        }
        let mut nets: BTreeSet<Prefix> = BTreeSet::new();
        nets.insert(default_net(v4));
        for n in &fp.nets {
            nets.insert(*n);
            if let Some(h) = n.first_half() {
                nets.insert(h);
            }
        }
        let mut sources: BTreeSet<String> = fp.sources.clone();
        sources.insert("RTS_STATIC".into());
        let mut ifnames: Vec<Option<String>> = vec![None];
        ifnames.extend(fp.ifnames.iter().cloned().map(Some));
        let combos = 1usize << f.params.len();
        for net in &nets {
            for src in &sources {
                for ifn in &ifnames {
                    for c in 0..combos {
                        let args: Vec<Value> = (0..f.params.len()).map(|i| Value::Bool(c & (1 << i) != 0)).collect();
                        let mut route = Route::new(*net);
                        route.source = src.clone();
                        route.ifname = ifn.clone();
                        let r = self.code.run_function(name, &args, &route);
                        if !full && r.verdict == Verdict::NoDecision {
                            continue;
                        }
                        let mut key = format!("net {net} source {src}");
                        if let Some(i) = ifn {
                            key.push_str(&format!(" ifname \"{i}\""));
                        }
                        if !args.is_empty() {
                            let a: Vec<String> = args.iter().map(|v| v.to_string()).collect();
                            key.push_str(&format!(" args ({})", a.join(", ")));
                        }
                        table.insert(key, Decision::from_result(&r));
                    }
                }
            }
        }
        table
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

fn session_behaviour(s: &BgpSession) -> BgpBehaviour {
    let internal = s.local_as == Some(s.remote_as);
    let hops = match s.multihop {
        Some(Some(n)) => Hops::Multihop(n),
        Some(None) => Hops::Multihop(64),
        None if s.direct => Hops::Direct,
        None if internal => Hops::Multihop(64),
        None => Hops::Direct,
    };
    BgpBehaviour {
        neighbor: s.neighbor,
        port: s.port.unwrap_or(179),
        remote_as: s.remote_as,
        local_as: s.local_as,
        rr_client: s.rr_client,
        rr_cluster_id: s.rr_cluster_id,
        passive: s.passive,
        hops,
        ttl_security: s.ttl_security.unwrap_or(false),
        next_hop_keep: s.next_hop_keep,
        next_hop_self: s.next_hop_self,
        source_address: s.source_address,
        graceful_restart_time: s.graceful_restart_time,
        password: s.password.clone(),
        allow_local_as: s.allow_local_as,
        options: s.other.clone(),
    }
}

/// Normalise an import (`default_all = true`) or export clause.
pub fn session_filter(fr: &FilterRef, default_all: bool) -> SessionFilter {
    let stmts = match fr {
        FilterRef::Default => return if default_all { SessionFilter::All } else { SessionFilter::None },
        FilterRef::All => return SessionFilter::All,
        FilterRef::None => return SessionFilter::None,
        FilterRef::Named(n) => return SessionFilter::Named(n.clone()),
        FilterRef::Where(_) => return SessionFilter::Raw(fr.to_string()),
        FilterRef::Inline(s) => s,
    };
    let raw = || SessionFilter::Raw(fr.to_string());
    let Some((last, calls)) = stmts.split_last() else {
        // An empty filter rejects (falls off the end).
        return SessionFilter::None;
    };
    let default = match last {
        Stmt::Accept(None) => Verdict::Accept,
        Stmt::Reject(None) => Verdict::Reject,
        _ => return raw(),
    };
    let mut bgp_filters = Vec::new();
    let mut internal_peer = None;
    for s in calls {
        let Stmt::Expr(Expr::Call(name, args)) = s else {
            return raw();
        };
        if internal_peer.is_some() {
            return raw();
        }
        if name == EXPORT_FUNCTION {
            match args.as_slice() {
                [Expr::Bool(b)] => internal_peer = Some(*b),
                _ => return raw(),
            }
        } else if args.is_empty() {
            bgp_filters.push(name.clone());
        } else {
            return raw();
        }
    }
    if bgp_filters.is_empty() && internal_peer.is_none() {
        return if default == Verdict::Accept { SessionFilter::All } else { SessionFilter::None };
    }
    SessionFilter::Calico { bgp_filters, internal_peer, default }
}

/// The behaviour of a configuration.
pub fn behaviour(cfg: &BirdConfig) -> Behaviour {
    let mut b = Behaviour {
        router_id: cfg.router_id,
        listen: cfg.listen.clone(),
        bgp: BTreeMap::new(),
        import: BTreeMap::new(),
        export: BTreeMap::new(),
        export_policy: ExportPolicy::default(),
        kernel: None,
        static_routes: cfg.static_routes().cloned().collect(),
        communities: BTreeMap::new(),
        bgp_filters: BTreeMap::new(),
        other_protocols: BTreeMap::new(),
        program: None,
    };
    for s in cfg.bgp_sessions() {
        b.bgp.insert(s.name.clone(), session_behaviour(s));
        b.import.insert(s.name.clone(), session_filter(&s.import, true));
        b.export.insert(s.name.clone(), session_filter(&s.export, false));
    }
    for p in cfg.protocols.iter().filter(|p| p.kind != "bgp") {
        let mut opts = cfg.effective_options(p);
        match cfg.effective_import(p) {
            FilterRef::Default => {}
            fr => {
                opts.insert("import".into(), fr.to_string());
            }
        }
        // A kernel protocol's export is compared as the `kernel` decision table instead.
        if p.kind != "kernel" {
            match cfg.effective_export(p) {
                FilterRef::Default => {}
                fr => {
                    opts.insert("export".into(), fr.to_string());
                }
            }
        }
        opts.insert("(kind)".into(), p.kind.clone());
        b.other_protocols.insert(p.effective_name.clone(), opts);
    }
    let program = Arc::new(Program::from_config(cfg));
    let t = program.tables(&program.probes(), false);
    b.export_policy = t.export;
    b.kernel = t.kernel;
    b.communities = t.communities;
    b.bgp_filters = t.bgp_filters;
    b.program = Some(program);
    b
}
