//! Behaviour comparison.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;

use super::ast::*;
use super::behaviour::*;

/// Knobs for [`compare_with`].
#[derive(Clone, Debug, Default)]
pub struct CompareOptions {
    /// Compare only whether a password is set, not its value.
    pub password_presence_only: bool,
    /// Option keys (of BGP sessions and other protocols) to ignore, e.g. `"debug"`.
    pub ignore_options: BTreeSet<String>,
}

/// One behavioural difference between an expected and an actual configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // a few per comparison; boxing would only hurt matching
pub enum Difference {
    RouterId {
        expected: Option<Ipv4Addr>,
        actual: Option<Ipv4Addr>,
    },
    Listen {
        expected: Option<Listen>,
        actual: Option<Listen>,
    },
    /// A protocol (BGP or other) present only in the expected config.
    MissingProtocol {
        name: String,
    },
    /// A protocol present only in the actual config.
    ExtraProtocol {
        name: String,
    },
    /// A typed BGP session field differs (`field` as in BIRD: "rr cluster id", "passive", ...).
    BgpField {
        protocol: String,
        field: String,
        expected: String,
        actual: String,
    },
    /// An untyped option differs (`None` = absent).
    ProtocolOption {
        protocol: String,
        key: String,
        expected: Option<String>,
        actual: Option<String>,
    },
    Import {
        protocol: String,
        expected: SessionFilter,
        actual: SessionFilter,
    },
    Export {
        protocol: String,
        expected: SessionFilter,
        actual: SessionFilter,
    },
    /// `calico_export_to_bgp_peers` defined in one config only.
    ExportFunction {
        expected: Option<String>,
        actual: Option<String>,
    },
    /// Export decisions for a prefix differ.
    ExportPrefix {
        prefix: Prefix,
        expected: PrefixExport,
        actual: PrefixExport,
    },
    /// Export decisions for a route via an interface differ.
    ExportInterface {
        ifname: String,
        expected: PeerDecision,
        actual: PeerDecision,
    },
    /// Kernel protocol present in one config only (its export clause otherwise).
    KernelExport {
        expected: Option<String>,
        actual: Option<String>,
    },
    /// Kernel decision differs for a prefix (`None` = the default route / unmatched prefixes).
    Kernel {
        prefix: Option<Prefix>,
        expected: KernelDecision,
        actual: KernelDecision,
    },
    MissingStaticRoute {
        route: StaticRoute,
    },
    ExtraStaticRoute {
        route: StaticRoute,
    },
    Communities {
        prefix: Prefix,
        expected: BTreeSet<String>,
        actual: BTreeSet<String>,
    },
    MissingBgpFilter {
        function: String,
    },
    ExtraBgpFilter {
        function: String,
    },
    BgpFilter {
        function: String,
        probe: String,
        expected: Decision,
        actual: Decision,
    },
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    match v {
        Some(x) => x.to_string(),
        None => "none".to_string(),
    }
}

fn set_text(s: &BTreeSet<String>) -> String {
    if s.is_empty() {
        "none".into()
    } else {
        s.iter().cloned().collect::<Vec<_>>().join(" ")
    }
}

fn listen_text(l: &Option<Listen>) -> String {
    match l {
        None => "none (default)".into(),
        Some(l) => {
            let mut parts = Vec::new();
            if let Some(a) = l.address {
                parts.push(format!("address {a}"));
            }
            if let Some(p) = l.port {
                parts.push(format!("port {p}"));
            }
            if let Some(m) = &l.mode {
                parts.push(m.clone());
            }
            if parts.is_empty() {
                "listen bgp".into()
            } else {
                parts.join(" ")
            }
        }
    }
}

/// Describe the differing slots of two prefix-export entries.
fn export_prefix_text(prefix: &Prefix, e: &PrefixExport, a: &PrefixExport) -> String {
    // (scope, peer) -> (expected, actual)
    let mut diffs: Vec<(bool, &str, String, String)> = Vec::new();
    let mut push = |inside: bool, e: Option<&PeerDecision>, a: Option<&PeerDecision>| {
        let (Some(e), Some(a)) = (e, a) else { return };
        if e.internal == a.internal && e.external == a.external {
            return;
        }
        if e.internal != a.internal && e.external != a.external && e.internal == e.external && a.internal == a.external
        {
            diffs.push((inside, "internal=true,false", e.internal.to_string(), a.internal.to_string()));
            return;
        }
        if e.internal != a.internal {
            diffs.push((inside, "internal=true", e.internal.to_string(), a.internal.to_string()));
        }
        if e.external != a.external {
            diffs.push((inside, "internal=false", e.external.to_string(), a.external.to_string()));
        }
    };
    push(false, Some(&e.exact), Some(&a.exact));
    push(true, e.inside.as_ref(), a.inside.as_ref());
    let sub = prefix.first_half().map(|h| h.to_string()).unwrap_or_default();
    let mut parts = Vec::new();
    let mut used = vec![false; diffs.len()];
    for i in 0..diffs.len() {
        if used[i] {
            continue;
        }
        let (inside, peers, ex, ac) = &diffs[i];
        // Merge exact + inside entries that say the same thing.
        let twin = (i + 1..diffs.len()).find(|&j| {
            !used[j] && diffs[j].0 != *inside && diffs[j].1 == *peers && diffs[j].2 == *ex && diffs[j].3 == *ac
        });
        let what = match (inside, twin) {
            (_, Some(j)) => {
                used[j] = true;
                format!("{prefix} and more-specifics")
            }
            (false, None) => prefix.to_string(),
            (true, None) => format!("more-specifics of {prefix} (probe {sub})"),
        };
        parts.push(format!("export {peers}: {what} expected {ex}, got {ac}"));
        used[i] = true;
    }
    parts.join("; ")
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::RouterId { expected, actual } => {
                write!(f, "router id: expected {}, got {}", opt(expected), opt(actual))
            }
            Difference::Listen { expected, actual } => {
                write!(f, "listen bgp: expected {}, got {}", listen_text(expected), listen_text(actual))
            }
            Difference::MissingProtocol { name } => write!(f, "missing protocol {name}"),
            Difference::ExtraProtocol { name } => write!(f, "unexpected protocol {name}"),
            Difference::BgpField { protocol, field, expected, actual } => {
                write!(f, "protocol {protocol}: {field}: expected {expected}, got {actual}")
            }
            Difference::ProtocolOption { protocol, key, expected, actual } => write!(
                f,
                "protocol {protocol}: option '{key}': expected {}, got {}",
                expected.as_deref().map(|s| if s.is_empty() { "(set)" } else { s }).unwrap_or("none"),
                actual.as_deref().map(|s| if s.is_empty() { "(set)" } else { s }).unwrap_or("none"),
            ),
            Difference::Import { protocol, expected, actual } => {
                write!(f, "protocol {protocol}: import: expected {expected}, got {actual}")
            }
            Difference::Export { protocol, expected, actual } => {
                write!(f, "protocol {protocol}: export: expected {expected}, got {actual}")
            }
            Difference::ExportFunction { expected, actual } => {
                write!(f, "export function: expected {}, got {}", opt(expected), opt(actual))
            }
            Difference::ExportPrefix { prefix, expected, actual } => {
                write!(f, "{}", export_prefix_text(prefix, expected, actual))
            }
            Difference::ExportInterface { ifname, expected, actual } => {
                let mut parts = Vec::new();
                if expected.internal != actual.internal {
                    parts.push(format!(
                        "export internal=true: route via interface \"{ifname}\" expected {}, got {}",
                        expected.internal, actual.internal
                    ));
                }
                if expected.external != actual.external {
                    parts.push(format!(
                        "export internal=false: route via interface \"{ifname}\" expected {}, got {}",
                        expected.external, actual.external
                    ));
                }
                write!(f, "{}", parts.join("; "))
            }
            Difference::KernelExport { expected, actual } => write!(
                f,
                "kernel protocol export: expected {}, got {}",
                expected.as_deref().unwrap_or("no kernel protocol"),
                actual.as_deref().unwrap_or("no kernel protocol")
            ),
            Difference::Kernel { prefix, expected, actual } => match prefix {
                Some(p) => write!(f, "kernel {p}: expected {expected}, got {actual}"),
                None => write!(f, "kernel default (other prefixes): expected {expected}, got {actual}"),
            },
            Difference::MissingStaticRoute { route } => write!(f, "missing static {route}"),
            Difference::ExtraStaticRoute { route } => write!(f, "unexpected static {route}"),
            Difference::Communities { prefix, expected, actual } => write!(
                f,
                "communities on export of {prefix}: expected {}, got {}",
                set_text(expected),
                set_text(actual)
            ),
            Difference::MissingBgpFilter { function } => {
                write!(f, "missing BGP filter function {function}")
            }
            Difference::ExtraBgpFilter { function } => {
                write!(f, "unexpected BGP filter function {function}")
            }
            Difference::BgpFilter { function, probe, expected, actual } => {
                write!(f, "BGP filter {function}, route {probe}: expected {expected}, got {actual}")
            }
        }
    }
}

/// A list of differences, printable one per line.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report(pub Vec<Difference>);

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return writeln!(f, "same behaviour");
        }
        writeln!(f, "{} behavioural difference(s):", self.0.len())?;
        for d in &self.0 {
            writeln!(f, "  - {d}")?;
        }
        Ok(())
    }
}

/// Differences between `expected` and `actual` (empty = same behaviour).
pub fn compare(expected: &Behaviour, actual: &Behaviour) -> Vec<Difference> {
    compare_with(expected, actual, &CompareOptions::default())
}

fn field<T: PartialEq + ToString>(out: &mut Vec<Difference>, protocol: &str, name: &str, e: &T, a: &T) {
    if e != a {
        out.push(Difference::BgpField {
            protocol: protocol.to_string(),
            field: name.to_string(),
            expected: e.to_string(),
            actual: a.to_string(),
        });
    }
}

fn opt_field<T: PartialEq + fmt::Display>(
    out: &mut Vec<Difference>,
    protocol: &str,
    name: &str,
    e: &Option<T>,
    a: &Option<T>,
) {
    if e != a {
        out.push(Difference::BgpField {
            protocol: protocol.to_string(),
            field: name.to_string(),
            expected: opt(e),
            actual: opt(a),
        });
    }
}

fn options_diff(
    out: &mut Vec<Difference>,
    protocol: &str,
    e: &BTreeMap<String, String>,
    a: &BTreeMap<String, String>,
    o: &CompareOptions,
) {
    let keys: BTreeSet<&String> = e.keys().chain(a.keys()).collect();
    for k in keys {
        if o.ignore_options.contains(k.as_str()) {
            continue;
        }
        let (ev, av) = (e.get(k), a.get(k));
        if ev != av {
            out.push(Difference::ProtocolOption {
                protocol: protocol.to_string(),
                key: k.clone(),
                expected: ev.cloned(),
                actual: av.cloned(),
            });
        }
    }
}

fn session_diff(out: &mut Vec<Difference>, name: &str, e: &BgpBehaviour, a: &BgpBehaviour, o: &CompareOptions) {
    field(out, name, "neighbor", &e.neighbor, &a.neighbor);
    field(out, name, "port", &e.port, &a.port);
    field(out, name, "remote as", &e.remote_as, &a.remote_as);
    opt_field(out, name, "local as", &e.local_as, &a.local_as);
    field(out, name, "rr client", &e.rr_client, &a.rr_client);
    opt_field(out, name, "rr cluster id", &e.rr_cluster_id, &a.rr_cluster_id);
    field(out, name, "passive", &e.passive, &a.passive);
    field(out, name, "multihop", &e.hops, &a.hops);
    field(out, name, "ttl security", &e.ttl_security, &a.ttl_security);
    field(out, name, "next hop keep", &e.next_hop_keep, &a.next_hop_keep);
    field(out, name, "next hop self", &e.next_hop_self, &a.next_hop_self);
    opt_field(out, name, "source address", &e.source_address, &a.source_address);
    opt_field(out, name, "graceful restart time", &e.graceful_restart_time, &a.graceful_restart_time);
    if o.password_presence_only {
        let p = |x: &Option<String>| if x.is_some() { "set" } else { "none" }.to_string();
        field(out, name, "password", &p(&e.password), &p(&a.password));
    } else {
        let p = |x: &Option<String>| x.as_ref().map(|s| format!("\"{s}\""));
        opt_field(out, name, "password", &p(&e.password), &p(&a.password));
    }
    opt_field(out, name, "allow local as", &e.allow_local_as, &a.allow_local_as);
    options_diff(out, name, &e.options, &a.options, o);
}

/// [`compare`] with options.
pub fn compare_with(expected: &Behaviour, actual: &Behaviour, o: &CompareOptions) -> Vec<Difference> {
    let mut out = Vec::new();
    if expected.router_id != actual.router_id {
        out.push(Difference::RouterId { expected: expected.router_id, actual: actual.router_id });
    }
    if expected.listen != actual.listen {
        out.push(Difference::Listen { expected: expected.listen.clone(), actual: actual.listen.clone() });
    }

    // Protocols (BGP and others).
    let mut e_names: BTreeSet<&String> = expected.bgp.keys().collect();
    e_names.extend(expected.other_protocols.keys());
    let mut a_names: BTreeSet<&String> = actual.bgp.keys().collect();
    a_names.extend(actual.other_protocols.keys());
    for n in e_names.difference(&a_names) {
        out.push(Difference::MissingProtocol { name: (*n).clone() });
    }
    for n in a_names.difference(&e_names) {
        out.push(Difference::ExtraProtocol { name: (*n).clone() });
    }
    for (name, e) in &expected.bgp {
        let Some(a) = actual.bgp.get(name) else {
            continue;
        };
        session_diff(&mut out, name, e, a, o);
        let (ei, ai) = (expected.import.get(name), actual.import.get(name));
        if let (Some(ei), Some(ai)) = (ei, ai) {
            if ei != ai {
                out.push(Difference::Import { protocol: name.clone(), expected: ei.clone(), actual: ai.clone() });
            }
        }
        let (ee, ae) = (expected.export.get(name), actual.export.get(name));
        if let (Some(ee), Some(ae)) = (ee, ae) {
            if ee != ae {
                out.push(Difference::Export { protocol: name.clone(), expected: ee.clone(), actual: ae.clone() });
            }
        }
    }
    for (name, e) in &expected.other_protocols {
        if let Some(a) = actual.other_protocols.get(name) {
            if actual.bgp.contains_key(name) {
                continue;
            }
            options_diff(&mut out, name, e, a, o);
        }
    }

    // Static routes.
    for r in expected.static_routes.difference(&actual.static_routes) {
        out.push(Difference::MissingStaticRoute { route: r.clone() });
    }
    for r in actual.static_routes.difference(&expected.static_routes) {
        out.push(Difference::ExtraStaticRoute { route: r.clone() });
    }

    // Decision tables, re-derived on the union of both configs' probes when possible.
    let (et, at) = match (&expected.program, &actual.program) {
        (Some(ep), Some(ap)) => {
            let probes = ep.probes().union(&ap.probes());
            (ep.tables(&probes, true), ap.tables(&probes, true))
        }
        _ => (stored_tables(expected), stored_tables(actual)),
    };
    tables_diff(&mut out, &et, &at);
    out
}

fn stored_tables(b: &Behaviour) -> Tables {
    Tables {
        export: b.export_policy.clone(),
        kernel: b.kernel.clone(),
        communities: b.communities.clone(),
        bgp_filters: b.bgp_filters.clone(),
    }
}

fn tables_diff(out: &mut Vec<Difference>, e: &Tables, a: &Tables) {
    if e.export.function != a.export.function {
        out.push(Difference::ExportFunction { expected: e.export.function.clone(), actual: a.export.function.clone() });
    } else {
        for (p, ed) in &e.export.prefixes {
            if let Some(ad) = a.export.prefixes.get(p) {
                if ed != ad {
                    out.push(Difference::ExportPrefix { prefix: *p, expected: ed.clone(), actual: ad.clone() });
                }
            }
        }
        for (i, ed) in &e.export.interfaces {
            if let Some(ad) = a.export.interfaces.get(i) {
                if ed != ad {
                    out.push(Difference::ExportInterface {
                        ifname: i.clone(),
                        expected: ed.clone(),
                        actual: ad.clone(),
                    });
                }
            }
        }
    }

    match (&e.kernel, &a.kernel) {
        (Some(ek), Some(ak)) => {
            for (p, ed) in &ek.prefixes {
                if let Some(ad) = ak.prefixes.get(p) {
                    if ed != ad {
                        out.push(Difference::Kernel { prefix: Some(*p), expected: ed.clone(), actual: ad.clone() });
                    }
                }
            }
            if ek.default != ak.default {
                out.push(Difference::Kernel { prefix: None, expected: ek.default.clone(), actual: ak.default.clone() });
            }
        }
        (None, None) => {}
        (ek, ak) => out.push(Difference::KernelExport {
            expected: ek.as_ref().map(|k| k.export.clone()),
            actual: ak.as_ref().map(|k| k.export.clone()),
        }),
    }

    let none = BTreeSet::new();
    let keys: BTreeSet<&Prefix> = e.communities.keys().chain(a.communities.keys()).collect();
    for p in keys {
        let (ec, ac) = (e.communities.get(p).unwrap_or(&none), a.communities.get(p).unwrap_or(&none));
        if ec != ac {
            out.push(Difference::Communities { prefix: *p, expected: ec.clone(), actual: ac.clone() });
        }
    }

    for (name, et) in &e.bgp_filters {
        let Some(at) = a.bgp_filters.get(name) else {
            out.push(Difference::MissingBgpFilter { function: name.clone() });
            continue;
        };
        let undecided = Decision { verdict: super::eval::Verdict::NoDecision, by: None, reason: None };
        let keys: BTreeSet<&String> = et.keys().chain(at.keys()).collect();
        for k in keys {
            let (ed, ad) = (et.get(k).unwrap_or(&undecided), at.get(k).unwrap_or(&undecided));
            if ed != ad {
                out.push(Difference::BgpFilter {
                    function: name.clone(),
                    probe: k.clone(),
                    expected: ed.clone(),
                    actual: ad.clone(),
                });
            }
        }
    }
    for name in a.bgp_filters.keys() {
        if !e.bgp_filters.contains_key(name) {
            out.push(Difference::ExtraBgpFilter { function: name.clone() });
        }
    }
}
