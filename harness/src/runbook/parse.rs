//! Runbook YAML → [`Runbook`]. Every error names the file, line, column and field
//! (`labs/p1.yaml:42:9: field steps[3].expect[0].rib.prefix: bad CIDR "172.16.0.0/33": …`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::fields::{Fields, Origin};
use crate::model::topology::Topology;
use crate::model::yaml::{parse_documents, Node, Pos, Value};
use crate::model::InputError;
use crate::observe::{PeerType, Prefix};

use super::model::*;

/// Names a topology defines, to check a runbook's references before a lab comes up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabNames {
    /// node → cluster
    pub nodes: BTreeMap<String, String>,
    pub clusters: BTreeSet<String>,
    pub sites: BTreeSet<String>,
    /// (node, interface) of every link end on a node (not a bridge): what `link_down` can cut.
    pub links: BTreeSet<(String, String)>,
}

impl LabNames {
    pub fn from_topology(t: &Topology) -> LabNames {
        let mut n = LabNames::default();
        for c in &t.clusters {
            n.clusters.insert(c.name.clone());
            for node in &c.nodes {
                n.nodes.insert(node.name.clone(), c.name.clone());
                if let Some(s) = t.site_of(&node.name) {
                    n.sites.insert(s);
                }
            }
        }
        n.sites.extend(t.sites().into_keys());
        for l in &t.links {
            for e in [&l.a, &l.b] {
                if t.nodes.get(&e.node).is_some_and(|x| x.kind != crate::model::topology::NodeKind::Bridge) {
                    n.links.insert((e.node.clone(), e.iface.clone()));
                }
            }
        }
        n
    }

    fn check_sel(&self, i: &NodeSel) -> Result<(), String> {
        match i {
            NodeSel::Node(n) => self.check_node(n),
            NodeSel::Cluster(c) if !self.clusters.contains(c) => {
                Err(format!("unknown cluster {c:?} (clusters: {})", join(&self.clusters)))
            }
            NodeSel::Site(s) if !self.sites.contains(s) => {
                Err(format!("unknown site {s:?} (sites: {})", join(&self.sites)))
            }
            _ => Ok(()),
        }
    }

    fn check_node(&self, n: &str) -> Result<(), String> {
        if self.nodes.contains_key(n) {
            Ok(())
        } else {
            let v: Vec<&str> = self.nodes.keys().map(String::as_str).collect();
            Err(format!("unknown node {n:?} (nodes: {})", v.join(", ")))
        }
    }
}

fn join(s: &BTreeSet<String>) -> String {
    s.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// Read and parse a runbook, then check every node, cluster and site it names against its topology.
pub fn load(path: &Path) -> Result<Runbook, InputError> {
    let file = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| InputError::new(&file, format!("cannot read the runbook: {e}")))?;
    let loader = |p: &Path| -> Result<LabNames, String> {
        crate::model::topology::load(p).map(|t| LabNames::from_topology(&t)).map_err(|e| e.to_string())
    };
    parse_inner(path, &text, Some(&loader))
}

/// [`load`], on another topology than the runbook names (`rrlab run --topology`: the same procedure on an
/// imported cluster): names are checked against that one, and it is the lab the runbook runs on.
pub fn load_on(path: &Path, topology: Option<&Path>) -> Result<Runbook, InputError> {
    let Some(t) = topology else { return load(path) };
    let file = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| InputError::new(&file, format!("cannot read the runbook: {e}")))?;
    let names = crate::model::topology::load(t)
        .map(|t| LabNames::from_topology(&t))
        .map_err(|e| InputError::new(&t.display().to_string(), e.to_string()))?;
    let mut rb = parse_with(path, &text, &names)?;
    rb.topology = t.to_path_buf();
    Ok(rb)
}

/// Parse a runbook without looking at its topology (names are checked when the lab is known).
pub fn parse(file: &Path, text: &str) -> Result<Runbook, InputError> {
    parse_inner(file, text, None)
}

/// Parse a runbook, checking node, cluster and site names against `names`.
pub fn parse_with(file: &Path, text: &str, names: &LabNames) -> Result<Runbook, InputError> {
    let n = names.clone();
    let loader = move |_: &Path| -> Result<LabNames, String> { Ok(n.clone()) };
    parse_inner(file, text, Some(&loader))
}

type Loader<'a> = &'a dyn Fn(&Path) -> Result<LabNames, String>;

struct Ctx<'a> {
    origin: Origin,
    text: &'a str,
    names: Option<LabNames>,
    probes: Vec<String>,
}

type R<T> = Result<T, InputError>;

fn parse_inner(file: &Path, text: &str, loader: Option<Loader>) -> R<Runbook> {
    let fname = file.display().to_string();
    let origin = Origin::new(&fname, None);
    let docs = parse_documents(text).map_err(|e| {
        let message = if e.message.contains("mapping values are not allowed") {
            format!(
                "{} (a command line with `: ` in it goes in a block: `run: |`, the command on the next line)",
                e.message
            )
        } else {
            e.message.clone()
        };
        InputError::at(&fname, e.pos, message)
    })?;
    let mut docs = docs;
    for d in &mut docs {
        restore_keys(&mut d.root, text);
    }
    let root = match docs.as_slice() {
        [d] => &d.root,
        [] => return Err(InputError::new(&fname, "the runbook is empty")),
        [_, d, ..] => {
            return Err(origin.error(d.root.pos, "", "a runbook is one YAML document (found a second one here)"));
        }
    };
    let mut cx = Ctx { origin: origin.clone(), text, names: None, probes: Vec::new() };
    let f = Fields::new(&cx.origin, root, "")?;
    allow(&f, &["name", "description", "topology", "defaults", "probes", "steps"])?;
    let name = f.required_string("name")?;
    let description = f.string("description")?;
    let topo_text = f.required_string("topology")?;
    let topology = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.join(&topo_text),
        _ => PathBuf::from(&topo_text),
    };
    if let Some(load) = loader {
        match load(&topology) {
            Ok(n) => cx.names = Some(n),
            Err(e) => {
                return Err(f.err(f.get("topology"), "topology", format!("cannot load {}: {e}", topology.display())))
            }
        }
    }
    let defaults = match f.sub("defaults")? {
        None => Defaults::default(),
        Some(d) => {
            allow(&d, &["timeout", "poll", "block_size"])?;
            let mut out = Defaults::default();
            if let Some(t) = duration(&d, "timeout")? {
                out.timeout = t;
            }
            if let Some(p) = duration(&d, "poll")? {
                out.poll = p;
            }
            if let Some(b) = d.int("block_size", 0, 32)? {
                out.block_size = b as u8;
            }
            d.finish(&[])?;
            out
        }
    };
    let mut probes = Vec::new();
    for p in f.list("probes")? {
        allow(&p, &["name", "from", "to", "rate"])?;
        let name = p.required_string("name")?;
        if probes.iter().any(|q: &ProbeSpec| q.name == name) {
            return Err(p.err(p.get("name"), "name", format!("a probe named {name:?} is already declared")));
        }
        let from = pod_selector(&cx, &p, "from")?;
        let to = pod_selector(&cx, &p, "to")?;
        let rate_pps = match p.get("rate") {
            None => DEFAULT_PROBE_PPS,
            Some(n) => {
                let s = n.scalar_text().unwrap_or_default();
                let num = s.trim().trim_end_matches("pps").trim();
                match num.parse::<u32>() {
                    Ok(r) if (MIN_PROBE_PPS..=MAX_PROBE_PPS).contains(&r) => r,
                    Ok(r) => {
                        return Err(p.err(
                            Some(n),
                            "rate",
                            format!(
                                "{r} packets per second is out of range ({MIN_PROBE_PPS}..={MAX_PROBE_PPS}; below {MIN_PROBE_PPS} an outage cannot be measured to 10 ms)"
                            ),
                        ))
                    }
                    Err(_) => return Err(p.err(Some(n), "rate", format!("expected packets per second (e.g. 200 or 200pps), found {s:?}"))),
                }
            }
        };
        p.finish(&[])?;
        probes.push(ProbeSpec { name, from, to, rate_pps, line: line_of(&p) });
    }
    cx.probes = probes.iter().map(|p| p.name.clone()).collect();
    if !f.has("steps") {
        return Err(f.err(None, "steps", "is required (a runbook has at least one step)"));
    }
    let mut steps = Vec::new();
    for s in f.list("steps")? {
        steps.extend(step(&cx, &s)?);
    }
    if steps.is_empty() {
        return Err(f.err(f.get("steps"), "steps", "a runbook has at least one step"));
    }
    f.finish(&[])?;
    let expect_fail = expected_failures(&fname, text, steps.len())?;
    Ok(Runbook { name, file: file.to_path_buf(), description, topology, probes, steps, defaults, expect_fail })
}

/// `# expect-fail: step N: <text>` comment lines (a seeded-fault runbook's header): step N must fail with
/// the text in its failure.
fn expected_failures(file: &str, text: &str, steps: usize) -> R<Vec<ExpectedFailure>> {
    let mut out: Vec<ExpectedFailure> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let Some(rest) = l.trim_start().strip_prefix("# expect-fail:") else { continue };
        let line = i + 1;
        let err = |m: String| InputError {
            file: file.to_string(),
            document: None,
            pos: Some(crate::model::yaml::Pos { line, col: 1 }),
            field: Some("expect-fail".into()),
            message: m,
        };
        let parsed = rest.trim().strip_prefix("step ").and_then(|r| r.split_once(':')).and_then(|(n, t)| {
            let n: usize = n.trim().parse().ok()?;
            Some((n, t.trim().to_string()))
        });
        let Some((step, want)) = parsed.filter(|(_, t)| !t.is_empty()) else {
            return Err(err(format!(
                "expected `# expect-fail: step <n>: <text of the failure>`, found {:?}",
                l.trim()
            )));
        };
        if step == 0 || step > steps {
            return Err(err(format!("step {step} does not exist (the runbook has {steps} steps)")));
        }
        if let Some(prev) = out.iter().find(|e| e.step == step) {
            return Err(err(format!("step {step} already has an expected failure (line {})", prev.line)));
        }
        out.push(ExpectedFailure { step, text: want, line });
    }
    Ok(out)
}

/// YAML 1.1 reads the key `on` (and `yes`, `no`, `off`, …) as a boolean; runbooks mean the word. Put the
/// word back for keys written that way.
fn restore_keys(n: &mut Node, text: &str) {
    match &mut n.value {
        Value::Map(entries) => {
            for (k, kp, v) in entries.iter_mut() {
                if k == "true" || k == "false" {
                    let line = text.lines().nth(kp.line.saturating_sub(1)).unwrap_or("");
                    let raw: String =
                        line.chars().skip(kp.col.saturating_sub(1)).take_while(|c| c.is_ascii_alphabetic()).collect();
                    if !raw.is_empty() && raw != *k {
                        *k = raw;
                    }
                }
                restore_keys(v, text);
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|i| restore_keys(i, text)),
        _ => {}
    }
}

fn line_of(f: &Fields) -> usize {
    f.node.pos.map(|p| p.line).unwrap_or(0)
}

// ------------------------------------------------------------------------------------------ helpers

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn suggest(word: &str, known: &[&str]) -> String {
    let best = known.iter().map(|k| (edit_distance(word, k), *k)).min();
    match best {
        Some((d, k)) if d <= 2 || (d <= 3 && word.len() > 6) => format!(" (did you mean {k:?}?)"),
        _ => format!(" (known: {})", known.join(", ")),
    }
}

/// Reject unknown keys with a suggestion, before any is read.
fn allow(f: &Fields, known: &[&str]) -> R<()> {
    if let Value::Map(entries) = &f.node.value {
        for (k, kp, _) in entries {
            if !known.contains(&k.as_str()) {
                return Err(f.origin.error(
                    Some(*kp),
                    &f.field_path(k),
                    format!("unknown field {k:?}{}", suggest(k, known)),
                ));
            }
        }
    }
    Ok(())
}

/// `500ms`, `30s`, `1.5s`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let bad = || format!("bad duration {s:?}: write a number and a unit, e.g. 500ms, 30s, 2m");
    if num.is_empty() {
        return Err(bad());
    }
    let x: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => x / 1000.0,
        "s" => x,
        "m" | "min" => x * 60.0,
        "h" => x * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || !(0.0..=7.0 * 86400.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn duration(f: &Fields, key: &str) -> R<Option<Duration>> {
    match f.get(key) {
        None => Ok(None),
        Some(n) => {
            let s = n.scalar_text().ok_or_else(|| {
                f.err(Some(n), key, format!("expected a duration such as 30s, found {}", n.type_name()))
            })?;
            parse_duration(&s).map(Some).map_err(|e| f.err(Some(n), key, e))
        }
    }
}

/// A prefix, network-aligned.
pub fn parse_cidr(s: &str) -> Result<Prefix, String> {
    let p: Prefix = s.trim().parse().map_err(|e: String| format!("bad CIDR {s:?}: {e}"))?;
    let aligned = super::lab::block_of(
        match p.addr {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => return Ok(p),
        },
        p.len,
    );
    if aligned.addr != p.addr {
        return Err(format!("bad CIDR {s:?}: host bits are set (did you mean {aligned}?)"));
    }
    Ok(p)
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !s.starts_with(['-', '.'])
}

/// One node-set item: a node name, `all`, `cluster:<name>`, `site:<bridge>`, `label:<k>=<v>`,
/// `label:<k>!=<v>`, `label:<k>`.
pub fn parse_node_sel(s: &str) -> Result<NodeSel, String> {
    let s = s.trim();
    if s == "all" {
        return Ok(NodeSel::All);
    }
    if let Some((kind, rest)) = s.split_once(':') {
        let rest = rest.trim();
        return match kind {
            "cluster" if !rest.is_empty() => Ok(NodeSel::Cluster(rest.to_string())),
            "site" if !rest.is_empty() => Ok(NodeSel::Site(rest.to_string())),
            "label" => {
                let (key, value, negated) = if let Some((k, v)) = rest.split_once("!=") {
                    (k, Some(v), true)
                } else if let Some((k, v)) = rest.split_once("==") {
                    (k, Some(v), false)
                } else if let Some((k, v)) = rest.split_once('=') {
                    (k, Some(v), false)
                } else {
                    (rest, None, false)
                };
                let key = key.trim();
                if key.is_empty() {
                    return Err(format!("{s:?}: a label selector is label:<key>=<value>, label:<key>!=<value> or label:<key>"));
                }
                Ok(NodeSel::Label { key: key.to_string(), value: value.map(|v| v.trim().to_string()), negated })
            }
            _ => Err(format!(
                "{s:?} is not a node set item: write a node name, all, cluster:<name>, site:<bridge> or label:<key>=<value>"
            )),
        };
    }
    if is_dns_name(s) {
        Ok(NodeSel::Node(s.to_string()))
    } else {
        Err(format!("{s:?} is not a node name (nor all, cluster:<name>, site:<bridge>, label:<key>=<value>)"))
    }
}

/// Items of a scalar (comma-separated) or a list of scalars, each with its node.
fn items_of<'n>(f: &Fields, key: &str, n: &'n Node) -> R<Vec<(String, &'n Node)>> {
    match &n.value {
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                it.scalar_text().map(|s| (s, it)).ok_or_else(|| {
                    f.err(Some(it), &format!("{key}[{i}]"), format!("expected a string, found {}", it.type_name()))
                })
            })
            .collect(),
        _ => match n.scalar_text() {
            Some(s) => Ok(s.split(',').map(|p| (p.trim().to_string(), n)).filter(|(p, _)| !p.is_empty()).collect()),
            None => Err(f.err(
                Some(n),
                key,
                format!("expected a node set (a name, a list, all, cluster:…), found {}", n.type_name()),
            )),
        },
    }
}

fn node_set_of(cx: &Ctx, f: &Fields, key: &str, n: &Node) -> R<NodeSet> {
    let mut items = Vec::new();
    for (s, node) in items_of(f, key, n)? {
        let sel = parse_node_sel(&s).map_err(|e| f.err(Some(node), key, e))?;
        if let Some(names) = &cx.names {
            names.check_sel(&sel).map_err(|e| f.err(Some(node), key, e))?;
        }
        items.push(sel);
    }
    if items.is_empty() {
        return Err(f.err(Some(n), key, "an empty node set"));
    }
    Ok(NodeSet { items })
}

fn node_set(cx: &Ctx, f: &Fields, key: &str) -> R<Option<NodeSet>> {
    match f.get(key) {
        None => Ok(None),
        Some(n) => node_set_of(cx, f, key, n).map(Some),
    }
}

fn required_node_set(cx: &Ctx, f: &Fields, key: &str) -> R<NodeSet> {
    node_set(cx, f, key)?.ok_or_else(|| {
        f.err(None, key, "is required (a node, a list of nodes, all, cluster:<name>, site:<bridge>, label:<k>=<v>)")
    })
}

fn pod_set(cx: &Ctx, f: &Fields, key: &str) -> R<PodSet> {
    let n = f.get(key).ok_or_else(|| f.err(None, key, "is required (pods: pod:<name>, or nodes whose pods count)"))?;
    let mut set = PodSet { pods: Vec::new(), nodes: NodeSet { items: Vec::new() } };
    for (s, node) in items_of(f, key, n)? {
        if let Some(p) = s.strip_prefix("pod:") {
            set.pods.push(p.trim().to_string());
        } else {
            let sel = parse_node_sel(&s).map_err(|e| f.err(Some(node), key, e))?;
            if let Some(names) = &cx.names {
                names.check_sel(&sel).map_err(|e| f.err(Some(node), key, e))?;
            }
            set.nodes.items.push(sel);
        }
    }
    if set.pods.is_empty() && set.nodes.items.is_empty() {
        return Err(f.err(Some(n), key, "an empty pod set"));
    }
    Ok(set)
}

fn pod_selector(cx: &Ctx, f: &Fields, key: &str) -> R<PodSelector> {
    let n = f.get(key).ok_or_else(|| f.err(None, key, "is required (a node name, or pod:<name>)"))?;
    let s = n
        .scalar_text()
        .ok_or_else(|| f.err(Some(n), key, format!("expected a node name or pod:<name>, found {}", n.type_name())))?;
    if let Some(p) = s.strip_prefix("pod:") {
        return Ok(PodSelector::Pod(p.trim().to_string()));
    }
    if !is_dns_name(&s) {
        return Err(f.err(Some(n), key, format!("{s:?} is not a node name (write a node name, or pod:<name>)")));
    }
    if let Some(names) = &cx.names {
        names.check_node(&s).map_err(|e| f.err(Some(n), key, e))?;
    }
    Ok(PodSelector::Node(s))
}

fn addr_ref_str(cx: &Ctx, s: &str) -> Result<AddrRef, String> {
    let s = s.trim();
    if s == "owner" {
        return Ok(AddrRef::Owner);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(AddrRef::Ip(ip));
    }
    if s.contains('/') {
        return Err(format!("{s:?}: expected an address (an IP or a node name), not a prefix"));
    }
    if !is_dns_name(s) {
        return Err(format!("{s:?} is neither an IP address nor a node name"));
    }
    if let Some(names) = &cx.names {
        names.check_node(s)?;
    }
    Ok(AddrRef::Node(s.to_string()))
}

fn addr_ref(cx: &Ctx, f: &Fields, key: &str) -> R<Option<AddrRef>> {
    match f.get(key) {
        None => Ok(None),
        Some(n) => {
            let s = n.scalar_text().ok_or_else(|| {
                f.err(Some(n), key, format!("expected an IP or a node name, found {}", n.type_name()))
            })?;
            addr_ref_str(cx, &s).map(Some).map_err(|e| f.err(Some(n), key, e))
        }
    }
}

fn prefix_ref_str(cx: &Ctx, s: &str) -> Result<PrefixRef, String> {
    let s = s.trim();
    for kw in ["blocks:", "block:"] {
        if let Some(rest) = s.strip_prefix(kw) {
            let mut items = Vec::new();
            for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let sel = parse_node_sel(part)?;
                if let Some(names) = &cx.names {
                    names.check_sel(&sel)?;
                }
                items.push(sel);
            }
            if items.is_empty() {
                return Err(format!("{s:?}: write {kw}<node set>, e.g. {kw}hybrid-worker or blocks:all"));
            }
            return Ok(PrefixRef::Blocks(NodeSet { items }));
        }
    }
    parse_cidr(s).map(PrefixRef::Cidr)
}

/// `4`, `"<= 20000"`, `">= 1"`, `"2..5"`.
pub fn parse_bound(s: &str) -> Result<Bound, String> {
    let t = s.trim();
    let num = |x: &str| -> Result<u64, String> {
        x.trim()
            .replace('_', "")
            .parse::<u64>()
            .map_err(|_| format!("bad bound {s:?}: write a number (exactly), <= n, >= n, < n, > n or a..b"))
    };
    if let Some(r) = t.strip_prefix("<=") {
        return Ok(Bound { min: None, max: Some(num(r)?) });
    }
    if let Some(r) = t.strip_prefix(">=") {
        return Ok(Bound { min: Some(num(r)?), max: None });
    }
    if let Some(r) = t.strip_prefix("==").or_else(|| t.strip_prefix('=')) {
        return Ok(Bound::exactly(num(r)?));
    }
    if let Some(r) = t.strip_prefix('<') {
        let n = num(r)?;
        if n == 0 {
            return Err(format!("bad bound {s:?}: nothing is < 0"));
        }
        return Ok(Bound { min: None, max: Some(n - 1) });
    }
    if let Some(r) = t.strip_prefix('>') {
        return Ok(Bound { min: Some(num(r)? + 1), max: None });
    }
    if let Some((a, b)) = t.split_once("..") {
        let (a, b) = (num(a)?, num(b.trim_start_matches('='))?);
        if a > b {
            return Err(format!("bad bound {s:?}: {a} > {b}"));
        }
        return Ok(Bound { min: Some(a), max: Some(b) });
    }
    Ok(Bound::exactly(num(t)?))
}

fn bound(f: &Fields, key: &str) -> R<Option<Bound>> {
    match f.get(key) {
        None => Ok(None),
        Some(n) => {
            let s = n
                .scalar_text()
                .ok_or_else(|| f.err(Some(n), key, format!("expected a number or a bound, found {}", n.type_name())))?;
            parse_bound(&s).map(Some).map_err(|e| f.err(Some(n), key, e))
        }
    }
}

/// A scalar or a list of scalars, as strings (for lists of lines, routes, members).
fn strings(f: &Fields, key: &str) -> R<Option<Vec<(String, Pos)>>> {
    match f.get(key) {
        None => Ok(None),
        Some(n) => match &n.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, it)| {
                    it.scalar_text().map(|s| (s, it.pos.unwrap_or_default())).ok_or_else(|| {
                        f.err(Some(it), &format!("{key}[{i}]"), format!("expected a string, found {}", it.type_name()))
                    })
                })
                .collect::<R<Vec<_>>>()
                .map(Some),
            _ => match n.scalar_text() {
                Some(s) => Ok(Some(vec![(s, n.pos.unwrap_or_default())])),
                None => {
                    Err(f.err(Some(n), key, format!("expected a string or a list of strings, found {}", n.type_name())))
                }
            },
        },
    }
}

fn at(f: &Fields, pos: Pos, key: &str, msg: String) -> InputError {
    f.origin.error(Some(pos), &f.field_path(key), msg)
}

// ------------------------------------------------------------------------------------------ steps

/// A step's fields besides its one action (one of [`ACTIONS`]).
const STEP_FIELDS: &[&str] = &["name", "cluster", "expect", "timeout", "settle"];

const ACTIONS: &[&str] = &[
    "run",
    "wan",
    "stop_node",
    "start_node",
    "stop_bird",
    "start_bird",
    "restart_calico_node",
    "freeze_node",
    "thaw_node",
    "link_down",
    "link_up",
    "wait",
];

/// The runbook line where a scalar's text starts (the line after `|`/`>` for block scalars).
fn text_line(cx: &Ctx, n: &Node) -> usize {
    let Some(p) = n.pos else { return 0 };
    let line = cx.text.lines().nth(p.line.saturating_sub(1)).unwrap_or("");
    let rest: String = line.chars().skip(p.col.saturating_sub(1)).collect();
    if rest.starts_with('|') || rest.starts_with('>') {
        p.line + 1
    } else {
        p.line
    }
}

fn step(cx: &Ctx, f: &Fields) -> R<Vec<Step>> {
    // In the order an operator writes them: name, cluster, the action, then what is expected of it.
    let fields: Vec<&str> = STEP_FIELDS[..2].iter().chain(ACTIONS).chain(&STEP_FIELDS[2..]).copied().collect();
    allow(f, &fields)?;
    let name = f.required_string("name")?;
    let line = line_of(f);
    let present: Vec<&str> = ACTIONS.iter().copied().filter(|a| f.has(a)).collect();
    if present.len() > 1 {
        return Err(f.err(
            f.get(present[1]),
            present[1],
            format!("a step does one thing: it has both {} and {} (split it into two steps)", present[0], present[1]),
        ));
    }
    let cluster = f.string("cluster")?;
    if let (Some(c), Some(names)) = (&cluster, &cx.names) {
        if !names.clusters.contains(c) {
            return Err(f.err(
                f.get("cluster"),
                "cluster",
                format!("unknown cluster {c:?} (clusters: {})", join(&names.clusters)),
            ));
        }
    }
    let node_arg = |key: &str| -> R<String> {
        let s = f.required_string(key)?;
        if let Some(names) = &cx.names {
            names.check_node(&s).map_err(|e| f.err(f.get(key), key, e))?;
        } else if !is_dns_name(&s) {
            return Err(f.err(f.get(key), key, format!("{s:?} is not a node name")));
        }
        Ok(s)
    };
    let mut scripts: Vec<(Option<String>, StepAction)> = Vec::new();
    let what = match present.first().copied() {
        None => StepAction::None,
        Some("run") => {
            let n = f.get("run").expect("present");
            match &n.value {
                Value::Map(entries) => {
                    if cluster.is_some() {
                        return Err(f.err(Some(n), "run", "give either `cluster:` or a `run:` per cluster, not both"));
                    }
                    for (c, kp, v) in entries {
                        if let Some(names) = &cx.names {
                            if !names.clusters.contains(c) {
                                return Err(at(
                                    f,
                                    *kp,
                                    "run",
                                    format!("unknown cluster {c:?} (clusters: {})", join(&names.clusters)),
                                ));
                            }
                        }
                        let script = v.scalar_text().ok_or_else(|| {
                            f.origin.error(
                                v.pos,
                                &format!("{}.{c}", f.field_path("run")),
                                format!("expected the command lines, found {}", v.type_name()),
                            )
                        })?;
                        scripts.push((Some(c.clone()), StepAction::Run { script, script_line: text_line(cx, v) }));
                    }
                    if scripts.is_empty() {
                        return Err(f.err(Some(n), "run", "no commands"));
                    }
                    StepAction::None
                }
                _ => {
                    let script = n.scalar_text().ok_or_else(|| {
                        f.err(Some(n), "run", format!("expected the command lines, found {}", n.type_name()))
                    })?;
                    if script.trim().is_empty() {
                        return Err(f.err(Some(n), "run", "no commands"));
                    }
                    if cluster.is_none() {
                        if let Some(names) = &cx.names {
                            if names.clusters.len() > 1 {
                                return Err(f.err(
                                    Some(n),
                                    "run",
                                    format!("the topology has several clusters ({}): say which with `cluster:`, or give a `run:` per cluster", join(&names.clusters)),
                                ));
                            }
                        }
                    }
                    StepAction::Run { script, script_line: text_line(cx, n) }
                }
            }
        }
        Some("wan") => StepAction::Wan(wan_action(cx, f)?),
        Some("stop_node") => StepAction::StopNode(node_arg("stop_node")?),
        Some("start_node") => StepAction::StartNode(node_arg("start_node")?),
        Some("stop_bird") => StepAction::StopBird(node_arg("stop_bird")?),
        Some("start_bird") => StepAction::StartBird(node_arg("start_bird")?),
        Some("restart_calico_node") => StepAction::RestartCalicoNode(node_arg("restart_calico_node")?),
        Some("freeze_node") => StepAction::FreezeNode(node_arg("freeze_node")?),
        Some("thaw_node") => StepAction::ThawNode(node_arg("thaw_node")?),
        Some(k @ ("link_down" | "link_up")) => {
            let (node, iface) = link_arg(cx, f, k)?;
            if k == "link_down" {
                StepAction::LinkDown { node, iface }
            } else {
                StepAction::LinkUp { node, iface }
            }
        }
        Some("wait") => StepAction::Wait(duration(f, "wait")?.expect("present")),
        Some(_) => unreachable!(),
    };
    let timeout = duration(f, "timeout")?;
    let settle = duration(f, "settle")?;
    let mut expect = Vec::new();
    if let Some(n) = f.get("expect") {
        match &n.value {
            Value::Seq(items) => {
                for (i, it) in items.iter().enumerate() {
                    expect.push(expectation(cx, f, &format!("{}[{i}]", f.field_path("expect")), it)?);
                }
            }
            _ => {
                return Err(f.err(
                    Some(n),
                    "expect",
                    format!("expected a list of expectations, found {}", n.type_name()),
                ))
            }
        }
    }
    f.finish(&[])?;
    if scripts.is_empty() {
        return Ok(vec![Step { name, line, cluster, what, expect, timeout, settle }]);
    }
    // `run:` per cluster: one step per cluster, in order; the expectations go with the last one.
    let count = scripts.len();
    let mut out = Vec::new();
    for (i, (c, action)) in scripts.into_iter().enumerate() {
        let last = i + 1 == count;
        out.push(Step {
            name: format!("{name} [{}]", c.as_deref().unwrap_or("")),
            line,
            cluster: c,
            what: action,
            expect: if last { std::mem::take(&mut expect) } else { Vec::new() },
            timeout: if last { timeout } else { None },
            settle: if last { settle } else { None },
        });
    }
    Ok(out)
}

fn endpoint(cx: &Ctx, s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.contains('/') || s.parse::<IpAddr>().is_ok() || s.starts_with(|c: char| c.is_ascii_digit()) {
        return parse_cidr(s).map(|p| p.to_string());
    }
    if !is_dns_name(s) {
        return Err(format!("{s:?} is neither a site name nor a CIDR"));
    }
    if let Some(names) = &cx.names {
        if !names.sites.contains(s) {
            return Err(format!("unknown site {s:?} (sites: {})", join(&names.sites)));
        }
    }
    Ok(s.to_string())
}

fn percent(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches('%').trim();
    match t.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("bad percentage {s:?}: write e.g. 5% (0 to 100)")),
    }
}

fn rate_kbit(s: &str) -> Result<u32, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let x: f64 = num.parse().map_err(|_| format!("bad rate {s:?}: write e.g. 512kbit or 10mbit"))?;
    let k = match unit.trim() {
        "kbit" => x,
        "mbit" => x * 1000.0,
        "gbit" => x * 1_000_000.0,
        _ => return Err(format!("bad rate {s:?}: write e.g. 512kbit or 10mbit")),
    };
    if !(1.0..=u32::MAX as f64).contains(&k) {
        return Err(format!("bad rate {s:?}: out of range"));
    }
    Ok(k as u32)
}

/// `node:iface` (containerlab's endpoint form), or a node with one link. Checked against the topology's links.
fn link_arg(cx: &Ctx, f: &Fields, key: &str) -> R<(String, String)> {
    let s = f.required_string(key)?;
    let bad = |m: String| f.err(f.get(key), key, m);
    let (node, iface) = match s.trim().split_once(':') {
        Some((n, i)) => (n.trim().to_string(), Some(i.trim().to_string())),
        None => (s.trim().to_string(), None),
    };
    if !is_dns_name(&node) {
        return Err(bad(format!("{s:?}: write <node>:<interface>, e.g. hybrid-worker3:eth1")));
    }
    let Some(names) = &cx.names else {
        return match iface {
            Some(i) if !i.is_empty() => Ok((node, i)),
            _ => Err(bad(format!("{s:?}: write <node>:<interface>, e.g. hybrid-worker3:eth1"))),
        };
    };
    if !names.links.iter().any(|(n, _)| *n == node) {
        let mut with: Vec<&str> = names.links.iter().map(|(n, _)| n.as_str()).collect();
        with.dedup();
        return Err(bad(format!("unknown node {node:?} (nodes with links: {})", with.join(", "))));
    }
    let ifaces: Vec<&String> = names.links.iter().filter(|(n, _)| *n == node).map(|(_, i)| i).collect();
    match iface {
        Some(i) if ifaces.contains(&&i) => Ok((node, i)),
        Some(i) => Err(bad(format!(
            "node {node} has no link on {i:?} (its links: {})",
            ifaces.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
        ))),
        None if ifaces.len() == 1 => Ok((node, ifaces[0].clone())),
        None => Err(bad(format!(
            "node {node} has {} links: say which, e.g. {node}:{}",
            ifaces.len(),
            ifaces.first().map(|x| x.as_str()).unwrap_or("eth1")
        ))),
    }
}

/// `flap: {between: [site-a, site-b], down: 5s, up: 10s, times: 3}`.
fn flap(cx: &Ctx, f: &Fields, w: &Fields) -> R<WanAction> {
    let v = w.get("flap").expect("present");
    if !matches!(v.value, Value::Map(_)) {
        return Err(w.err(Some(v), "flap", "write {between: [<site>, <site>], down: 5s, up: 10s, times: 3}"));
    }
    let p = Fields::new(f.origin, v, &w.field_path("flap"))?;
    allow(&p, &["between", "down", "up", "times"])?;
    let between = p
        .string_list("between")?
        .ok_or_else(|| p.err(None, "between", "missing: the two sites (or CIDRs) the WAN joins"))?;
    let [a, b] = between.as_slice() else {
        return Err(p.err(p.get("between"), "between", format!("expected two sites, found {}", between.len())));
    };
    let from = endpoint(cx, a).map_err(|m| p.err(p.get("between"), "between", m))?;
    let to = endpoint(cx, b).map_err(|m| p.err(p.get("between"), "between", m))?;
    let need = |k: &str| -> R<Duration> {
        match duration(&p, k)? {
            Some(d) if !d.is_zero() => Ok(d),
            Some(_) => Err(p.err(p.get(k), k, "must be longer than 0s")),
            None => Err(p.err(None, k, format!("missing: how long the WAN stays {k} each time, e.g. 5s"))),
        }
    };
    let (down, up) = (need("down")?, need("up")?);
    let times = p.int("times", 1, 1000)?.unwrap_or(1) as u32;
    p.finish(&[])?;
    Ok(WanAction::Flap { from, to, down, up, times })
}

/// The keys of a `wan:` mapping.
const WAN_KEYS: &[&str] =
    &["partition", "heal", "loss", "delay", "rate", "jitter", "duplicate", "reorder", "corrupt", "flap", "toward"];

fn wan_action(cx: &Ctx, f: &Fields) -> R<WanAction> {
    let n = f.get("wan").expect("present");
    let err = |m: String| f.err(Some(n), "wan", m);
    match &n.value {
        Value::Map(_) => {
            let w = Fields::new(f.origin, n, &f.field_path("wan"))?;
            allow(&w, WAN_KEYS)?;
            if w.has("flap") {
                if WAN_KEYS.iter().any(|k| *k != "flap" && w.has(k)) {
                    return Err(err("flap is a step of its own: give it alone".into()));
                }
                return flap(cx, f, &w);
            }
            // netem's knobs together (anything beyond a lone delay or a plain loss percentage): one impairment.
            let netem: Vec<&str> = ["delay", "jitter", "loss", "duplicate", "reorder", "corrupt"]
                .into_iter()
                .filter(|k| w.has(k))
                .collect();
            let plain = |k: &str| w.get(k).and_then(|v| v.scalar_text()).unwrap_or_default();
            // One direction of one link: netem's knobs on what the WAN sends towards a site.
            if w.has("toward") {
                if netem.is_empty() || ["partition", "heal", "rate"].iter().any(|k| w.has(k)) {
                    return Err(w.err(
                        w.get("toward"),
                        "toward",
                        "give the impairment for that direction: delay, jitter, loss, duplicate, reorder or corrupt",
                    ));
                }
                let site =
                    endpoint(cx, &w.required_string("toward")?).map_err(|m| w.err(w.get("toward"), "toward", m))?;
                if site.contains('/') {
                    return Err(w.err(w.get("toward"), "toward", "name a site (a bridge on the WAN), not a CIDR"));
                }
                let mut imp = crate::impair::Impairment::default();
                for k in &netem {
                    imp.set(k, plain(k).trim()).map_err(|e| w.err(w.get(k), k, e.to_string()))?;
                }
                w.finish(&[])?;
                return Ok(WanAction::ImpairToward { site, imp });
            }
            let lone =
                netem.len() == 1 && (netem[0] == "delay" || (netem[0] == "loss" && percent(&plain("loss")).is_ok()));
            if !netem.is_empty() && !lone && !["partition", "heal", "rate"].iter().any(|k| w.has(k)) {
                let mut imp = crate::impair::Impairment::default();
                for k in &netem {
                    imp.set(k, plain(k).trim()).map_err(|e| w.err(w.get(k), k, e.to_string()))?;
                }
                w.finish(&[])?;
                return Ok(WanAction::Impair { imp });
            }
            let keys: Vec<&str> =
                ["partition", "heal", "loss", "delay", "rate"].into_iter().filter(|k| w.has(k)).collect();
            if keys.len() != 1 {
                return Err(err("give exactly one of partition, heal, loss, delay, rate".into()));
            }
            let key = keys[0];
            let v = w.get(key).expect("present");
            let a = match key {
                "partition" => match &v.value {
                    Value::Seq(items) if items.len() == 2 => {
                        let e = |i: usize| -> R<String> {
                            let s = items[i].scalar_text().unwrap_or_default();
                            endpoint(cx, &s).map_err(|m| w.err(Some(&items[i]), "partition", m))
                        };
                        WanAction::Partition { from: e(0)?, to: e(1)?, one_way: false }
                    }
                    Value::Map(_) => {
                        let p = Fields::new(f.origin, v, &w.field_path("partition"))?;
                        allow(&p, &["from", "to", "one_way"])?;
                        let from =
                            endpoint(cx, &p.required_string("from")?).map_err(|m| p.err(p.get("from"), "from", m))?;
                        let to = endpoint(cx, &p.required_string("to")?).map_err(|m| p.err(p.get("to"), "to", m))?;
                        let one_way = p.bool("one_way")?.unwrap_or(false);
                        p.finish(&[])?;
                        WanAction::Partition { from, to, one_way }
                    }
                    _ => {
                        return Err(w.err(
                            Some(v),
                            "partition",
                            "write [<site or CIDR>, <site or CIDR>] or {from, to, one_way}",
                        ))
                    }
                },
                "heal" => WanAction::Heal,
                "loss" => WanAction::Loss {
                    percent: percent(&v.scalar_text().unwrap_or_default()).map_err(|m| w.err(Some(v), key, m))?,
                },
                "delay" => {
                    let d = parse_duration(&v.scalar_text().unwrap_or_default()).map_err(|m| w.err(Some(v), key, m))?;
                    WanAction::Delay { ms: d.as_millis().min(u32::MAX as u128) as u32 }
                }
                _ => WanAction::Rate {
                    kbit: rate_kbit(&v.scalar_text().unwrap_or_default()).map_err(|m| w.err(Some(v), key, m))?,
                },
            };
            w.finish(&[])?;
            Ok(a)
        }
        _ => {
            let s = n.scalar_text().ok_or_else(|| err(format!("expected a WAN action, found {}", n.type_name())))?;
            let words: Vec<&str> = s.split_whitespace().collect();
            match words.as_slice() {
                ["heal"] => Ok(WanAction::Heal),
                ["partition", a, b] => Ok(WanAction::Partition { from: endpoint(cx, a).map_err(err)?, to: endpoint(cx, b).map_err(err)?, one_way: false }),
                ["partition", a, arrow, b] if *arrow == "<->" || *arrow == "->" => Ok(WanAction::Partition {
                    from: endpoint(cx, a).map_err(err)?,
                    to: endpoint(cx, b).map_err(err)?,
                    one_way: *arrow == "->",
                }),
                ["loss", p] => Ok(WanAction::Loss { percent: percent(p).map_err(err)? }),
                ["delay", d] => {
                    let d = parse_duration(d).map_err(err)?;
                    Ok(WanAction::Delay { ms: d.as_millis().min(u32::MAX as u128) as u32 })
                }
                ["rate", r] => Ok(WanAction::Rate { kbit: rate_kbit(r).map_err(err)? }),
                _ => Err(err(format!(
                    "unknown WAN action {s:?}: write heal, partition <a> <b>, partition <a> -> <b>, loss 5%, delay 100ms or rate 512kbit"
                ))),
            }
        }
    }
}

// ------------------------------------------------------------------------------------------ expectations

fn expectation(cx: &Ctx, step: &Fields, path: &str, item: &Node) -> R<Expectation> {
    let entries = match &item.value {
        Value::Map(e) => e,
        _ => {
            return Err(step.origin.error(
                item.pos,
                path,
                format!("an expectation is a mapping such as `sessions: {{…}}`, found {}", item.type_name()),
            ))
        }
    };
    let (kind, kpos, v) = match entries.as_slice() {
        [one] => one,
        [] => return Err(step.origin.error(item.pos, path, "an empty expectation")),
        [(a, _, _), (b, bp, _), ..] => {
            return Err(step.origin.error(
                Some(*bp),
                path,
                format!("one expectation per list item: found {a} and {b} (write `- {b}: …` as its own item)"),
            ))
        }
    };
    let line = kpos.line;
    let epath = format!("{path}.{kind}");
    if !EXPECTATION_KINDS.contains(&kind.as_str()) {
        return Err(step.origin.error(
            Some(*kpos),
            path,
            format!("unknown expectation kind {kind:?}{}", suggest(kind, EXPECTATION_KINDS)),
        ));
    }
    // Scalar shorthands.
    match (kind.as_str(), &v.value) {
        ("converge", Value::Str(_) | Value::Int(_) | Value::Float(_)) => {
            let s = v.scalar_text().unwrap_or_default();
            let within = parse_duration(&s).map_err(|e| step.origin.error(v.pos, &epath, e))?;
            return Ok(Expectation::Converge(ConvergeExpect { line, within }));
        }
        ("fails", Value::Str(s)) => {
            return Ok(Expectation::Fails(FailsExpect { line, message: s.clone(), on: None }));
        }
        _ => {}
    }
    let f = Fields::new(step.origin, v, &epath)?;
    let e = match kind.as_str() {
        "sessions" => sessions(cx, &f, line)?,
        "rib" => rib(cx, &f, line)?,
        "fib" => fib(cx, &f, line)?,
        "reach" => {
            allow(&f, &["from", "to", "result", "both_ways"])?;
            let from = pod_set(cx, &f, "from")?;
            let to = pod_set(cx, &f, "to")?;
            let pass = match f.string("result")?.as_deref() {
                None | Some("pass") => true,
                Some("fail") => false,
                Some(o) => return Err(f.err(f.get("result"), "result", format!("expected pass or fail, found {o:?}"))),
            };
            let both_ways = f.bool("both_ways")?.unwrap_or(false);
            Expectation::Reach(ReachExpect { line, from, to, pass, both_ways })
        }
        "ipset" => {
            allow(&f, &["on", "set", "contains", "absent", "exact"])?;
            let on = required_node_set(cx, &f, "on")?;
            let set = f.required_string("set")?;
            let contains = members(cx, &f, "contains")?.unwrap_or_default();
            let absent = members(cx, &f, "absent")?.unwrap_or_default();
            let exact = members(cx, &f, "exact")?;
            if contains.is_empty() && absent.is_empty() && exact.is_none() {
                return Err(f.err(None, "contains", "say what the set holds: contains, absent or exact"));
            }
            Expectation::Ipset(IpsetExpect { line, on, set, contains, absent, exact })
        }
        "iptables" => {
            allow(&f, &["on", "chain", "rule", "present", "packets", "bytes"])?;
            let on = required_node_set(cx, &f, "on")?;
            let chain = f.required_string("chain")?;
            let rule = f.required_string("rule")?;
            let present = f.bool("present")?.unwrap_or(true);
            let packets = counter(&f, "packets")?;
            let bytes = counter(&f, "bytes")?;
            if !present && (packets.is_some() || bytes.is_some()) {
                return Err(f.err(f.get("present"), "present", "an absent rule has no counters to check"));
            }
            Expectation::Iptables(IptablesExpect { line, on, chain, rule, present, packets, bytes })
        }
        "config" => {
            allow(&f, &["on", "file", "contains", "lacks"])?;
            let on = required_node_set(cx, &f, "on")?;
            let file = f.string("file")?;
            let contains: Vec<String> =
                strings(&f, "contains")?.unwrap_or_default().into_iter().map(|(s, _)| s).collect();
            let lacks: Vec<String> = strings(&f, "lacks")?.unwrap_or_default().into_iter().map(|(s, _)| s).collect();
            if contains.is_empty() && lacks.is_empty() {
                return Err(f.err(None, "contains", "say which lines: contains or lacks"));
            }
            Expectation::Config(ConfigExpect { line, on, file, contains, lacks })
        }
        "fails" => {
            allow(&f, &["message", "on"])?;
            let message = f.required_string("message")?;
            let on = node_set(cx, &f, "on")?;
            Expectation::Fails(FailsExpect { line, message, on })
        }
        "loss" => {
            allow(
                &f,
                &["probe", "max_lost", "max_outage", "min_lost", "min_outage", "min_duplicates", "min_reordered"],
            )?;
            let probe = f.string("probe")?;
            if cx.probes.is_empty() {
                return Err(step.origin.error(
                    Some(*kpos),
                    path,
                    "`loss` measures probes, and the runbook declares none (add `probes:`)",
                ));
            }
            if let Some(p) = &probe {
                if !cx.probes.contains(p) {
                    return Err(f.err(
                        f.get("probe"),
                        "probe",
                        format!("unknown probe {p:?} (probes: {})", cx.probes.join(", ")),
                    ));
                }
            }
            let budget = |key: &str| -> Result<Option<LostBudget>, InputError> {
                match f.get(key) {
                    None => Ok(None),
                    Some(n) => {
                        let s = n.scalar_text().unwrap_or_default();
                        let t = s.trim();
                        Ok(Some(if t.ends_with('%') {
                            LostBudget::Percent(percent(t).map_err(|e| f.err(Some(n), key, e))?)
                        } else {
                            LostBudget::Packets(t.parse().map_err(|_| {
                                f.err(
                                    Some(n),
                                    key,
                                    format!(
                                        "expected a number of packets or a percentage (e.g. 0, 20, 1%), found {s:?}"
                                    ),
                                )
                            })?)
                        }))
                    }
                }
            };
            let max_lost = budget("max_lost")?;
            let min_lost = budget("min_lost")?;
            let max_outage = duration(&f, "max_outage")?;
            let min_outage = duration(&f, "min_outage")?;
            let count = |key: &str| -> Result<Option<u64>, InputError> {
                match f.get(key) {
                    None => Ok(None),
                    Some(n) => {
                        let s = n.scalar_text().unwrap_or_default();
                        s.trim().parse().map(Some).map_err(|_| {
                            f.err(Some(n), key, format!("expected a number of packets (e.g. 1), found {s:?}"))
                        })
                    }
                }
            };
            let min_duplicates = count("min_duplicates")?;
            let min_reordered = count("min_reordered")?;
            if max_lost.is_none()
                && max_outage.is_none()
                && min_lost.is_none()
                && min_outage.is_none()
                && min_duplicates.is_none()
                && min_reordered.is_none()
            {
                return Err(f.err(
                    None,
                    "max_lost",
                    "give a budget: max_lost and/or max_outage (or min_lost/min_outage for loss that must be seen, \
                     min_duplicates/min_reordered for a WAN that duplicates or reorders)",
                ));
            }
            Expectation::Loss(LossExpect {
                line,
                probe,
                max_lost,
                max_outage,
                min_lost,
                min_outage,
                min_duplicates,
                min_reordered,
            })
        }
        "converge" => {
            allow(&f, &["within"])?;
            let within = duration(&f, "within")?.ok_or_else(|| f.err(None, "within", "is required (e.g. 30s)"))?;
            Expectation::Converge(ConvergeExpect { line, within })
        }
        "wan" => {
            allow(&f, &["bgp_sessions", "bgp_bytes", "bgp_packets", "ipip_bytes", "ipip_packets"])?;
            let w = WanExpect {
                line,
                bgp_sessions: bound(&f, "bgp_sessions")?,
                bgp_bytes: bound(&f, "bgp_bytes")?,
                bgp_packets: bound(&f, "bgp_packets")?,
                ipip_bytes: bound(&f, "ipip_bytes")?,
                ipip_packets: bound(&f, "ipip_packets")?,
            };
            if w.bgp_sessions.is_none()
                && w.bgp_bytes.is_none()
                && w.bgp_packets.is_none()
                && w.ipip_bytes.is_none()
                && w.ipip_packets.is_none()
            {
                return Err(f.err(
                    None,
                    "bgp_sessions",
                    "say what to count: bgp_sessions, bgp_bytes, bgp_packets, ipip_bytes, ipip_packets",
                ));
            }
            Expectation::Wan(w)
        }
        _ => unreachable!(),
    };
    f.finish(&[])?;
    Ok(e)
}

fn counter(f: &Fields, key: &str) -> R<Option<CounterCheck>> {
    match f.get(key) {
        None => Ok(None),
        Some(n) => {
            let s = n.scalar_text().unwrap_or_default();
            match s.trim() {
                "increases" => Ok(Some(CounterCheck::Increases)),
                "unchanged" => Ok(Some(CounterCheck::Unchanged)),
                t => parse_bound(t).map(|b| Some(CounterCheck::Value(b))).map_err(|e| {
                    f.err(Some(n), key, format!("{e}; or increases / unchanged (since the step started)"))
                }),
            }
        }
    }
}

fn type_word(s: &str) -> Option<(PeerType, &str)> {
    for (w, t) in
        [("node-to-node mesh", PeerType::Mesh), ("node specific", PeerType::NodeSpecific), ("global", PeerType::Global)]
    {
        if let Some(rest) = s.strip_prefix(w) {
            if rest.is_empty() || rest.starts_with(' ') {
                return Some((t, rest.trim()));
            }
        }
    }
    None
}

fn peer_ref(cx: &Ctx, s: &str) -> Result<PeerRef, String> {
    let s = s.trim();
    if s.parse::<IpAddr>().is_ok() || (s.starts_with(|c: char| c.is_ascii_digit()) && s.contains(".port.")) {
        return Ok(PeerRef::Address(s.to_string()));
    }
    let mut items = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let sel = parse_node_sel(part)?;
        if let Some(names) = &cx.names {
            names.check_sel(&sel)?;
        }
        items.push(sel);
    }
    if items.is_empty() {
        return Err("an empty peer".into());
    }
    Ok(PeerRef::Nodes(NodeSet { items }))
}

fn sessions(cx: &Ctx, f: &Fields, line: usize) -> R<Expectation> {
    allow(f, &["on", "peers"])?;
    let on = required_node_set(cx, f, "on")?;
    let n = f
        .get("peers")
        .ok_or_else(|| f.err(None, "peers", "is required: every peer the node has (`peers: []` for none)"))?;
    let items = match &n.value {
        Value::Seq(items) => items,
        _ => return Err(f.err(Some(n), "peers", format!("expected a list of peers, found {}", n.type_name()))),
    };
    let mut peers = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let key = format!("peers[{i}]");
        let pline = it.pos.map(|p| p.line).unwrap_or(line);
        match &it.value {
            Value::Map(_) => {
                let p = Fields::new(f.origin, it, &f.field_path(&key))?;
                allow(&p, &["peer", "type", "state"])?;
                let s = p.required_string("peer")?;
                let peer = peer_ref(cx, &s).map_err(|e| p.err(p.get("peer"), "peer", e))?;
                let peer_type = match p.string("type")? {
                    None => None,
                    Some(t) => match type_word(&t) {
                        Some((pt, "")) => Some(pt),
                        _ => {
                            return Err(p.err(
                                p.get("type"),
                                "type",
                                format!("{t:?} is not a peer type: write it as calicoctl prints it (node-to-node mesh, node specific, global)"),
                            ))
                        }
                    },
                };
                let state = match p.string("state")? {
                    None => None,
                    Some(s) => Some(PeerState::parse(&s).ok_or_else(|| p.err(p.get("state"), "state", bad_state(&s)))?),
                };
                p.finish(&[])?;
                peers.push(PeerSpec { line: pline, peer, peer_type, state });
            }
            _ => {
                let s = it
                    .scalar_text()
                    .ok_or_else(|| f.err(Some(it), &key, format!("expected a peer, found {}", it.type_name())))?;
                let words: Vec<&str> = s.split_whitespace().collect();
                let Some((first, rest)) = words.split_first() else {
                    return Err(f.err(Some(it), &key, "an empty peer"));
                };
                let peer = peer_ref(cx, first).map_err(|e| f.err(Some(it), &key, e))?;
                let rest = rest.join(" ");
                let (peer_type, state_word) = match type_word(&rest) {
                    Some((t, st)) => (Some(t), st.to_string()),
                    None => (None, rest.clone()),
                };
                let state = if state_word.is_empty() {
                    None
                } else {
                    match PeerState::parse(&state_word) {
                        Some(st) if !state_word.contains(' ') => Some(st),
                        _ => {
                            return Err(f.err(
                                Some(it),
                                &key,
                                format!(
                                    "after the peer, expected a peer type (node-to-node mesh, node specific, global) and/or a state (Established, up, Active, …), found {rest:?}"
                                ),
                            ))
                        }
                    }
                };
                peers.push(PeerSpec { line: pline, peer, peer_type, state });
            }
        }
    }
    Ok(Expectation::Sessions(SessionsExpect { line, on, peers }))
}

fn bad_state(s: &str) -> String {
    format!(
        "{s:?} is not a session state: write a BGP state ({}) or a BIRD protocol state ({})",
        BGP_STATES.join(", "),
        PROTOCOL_STATES.join(", ")
    )
}

fn rib(cx: &Ctx, f: &Fields, line: usize) -> R<Expectation> {
    allow(
        f,
        &[
            "on",
            "prefix",
            "present",
            "absent",
            "kind",
            "next_hop",
            "from",
            "cluster_list",
            "originator_id",
            "as_path",
            "count",
            "path",
        ],
    )?;
    let on = required_node_set(cx, f, "on")?;
    let ps = f.required_string("prefix")?;
    let prefix = prefix_ref_str(cx, &ps).map_err(|e| f.err(f.get("prefix"), "prefix", e))?;
    let present = f.bool("present")?;
    let absent_flag = f.bool("absent")?;
    let absent = match (present, absent_flag) {
        (Some(p), Some(a)) if p == a => {
            return Err(f.err(f.get("absent"), "absent", "present and absent contradict each other"))
        }
        (_, Some(a)) => a,
        (Some(p), None) => !p,
        (None, None) => false,
    };
    let kind = match f.string("kind")? {
        None => None,
        Some(k) => {
            const KINDS: &[&str] = &["unicast", "blackhole", "unreachable", "prohibited", "multipath"];
            if !KINDS.contains(&k.as_str()) {
                return Err(f.err(
                    f.get("kind"),
                    "kind",
                    format!("unknown route kind {k:?} (kinds: {})", KINDS.join(", ")),
                ));
            }
            Some(k)
        }
    };
    let next_hop = addr_ref(cx, f, "next_hop")?;
    let from = addr_ref(cx, f, "from")?;
    let originator_id = addr_ref(cx, f, "originator_id")?;
    let cluster_list = match f.get("cluster_list") {
        None => None,
        Some(n) => {
            let items: Vec<(String, &Node)> = match &n.value {
                Value::Seq(v) => v.iter().map(|it| (it.scalar_text().unwrap_or_default(), it)).collect(),
                _ => n.scalar_text().unwrap_or_default().split_whitespace().map(|s| (s.to_string(), n)).collect(),
            };
            let mut v = Vec::new();
            for (s, node) in items {
                v.push(addr_ref_str(cx, &s).map_err(|e| f.err(Some(node), "cluster_list", e))?);
            }
            Some(v)
        }
    };
    let as_path = match f.get("as_path") {
        None => None,
        Some(n) => {
            let words: Vec<String> = match &n.value {
                Value::Seq(v) => v.iter().map(|it| it.scalar_text().unwrap_or_default()).collect(),
                _ => n.scalar_text().unwrap_or_default().split_whitespace().map(str::to_string).collect(),
            };
            let mut v = Vec::new();
            for w in words {
                v.push(w.trim_start_matches("AS").parse::<u32>().map_err(|_| {
                    f.err(
                        Some(n),
                        "as_path",
                        format!("{w:?} is not an AS number (write the path as a list, e.g. [63401], or [] for none)"),
                    )
                })?);
            }
            Some(v)
        }
    };
    let count = bound(f, "count")?;
    let path = match f.string("path")?.as_deref() {
        None | Some("best") => PathChoice::Best,
        Some("any") => PathChoice::Any,
        Some(o) => return Err(f.err(f.get("path"), "path", format!("expected best or any, found {o:?}"))),
    };
    let has_attrs = kind.is_some()
        || next_hop.is_some()
        || from.is_some()
        || cluster_list.is_some()
        || originator_id.is_some()
        || as_path.is_some();
    if absent && (has_attrs || count.is_some()) {
        return Err(f.err(
            f.get("absent").or(f.get("present")),
            "absent",
            "an absent route has no attributes to check",
        ));
    }
    let uses_owner = [&next_hop, &from, &originator_id].iter().any(|a| matches!(a, Some(AddrRef::Owner)))
        || cluster_list.as_ref().is_some_and(|c| c.contains(&AddrRef::Owner));
    if uses_owner && !matches!(prefix, PrefixRef::Blocks(_)) {
        return Err(f.err(f.get("prefix"), "prefix", "`owner` needs a block:<node> or blocks:<node set> prefix"));
    }
    Ok(Expectation::Rib(RibExpect {
        line,
        on,
        prefix,
        absent,
        kind,
        next_hop,
        from,
        cluster_list,
        originator_id,
        as_path,
        count,
        path,
    }))
}

fn fib(cx: &Ctx, f: &Fields, line: usize) -> R<Expectation> {
    allow(f, &["on", "contains", "absent", "exact"])?;
    let on = required_node_set(cx, f, "on")?;
    let read = |key: &str| -> R<Option<Vec<RouteSpec>>> {
        match strings(f, key)? {
            None => Ok(None),
            Some(v) => v
                .into_iter()
                .map(|(s, pos)| route_spec(cx, &s).map_err(|e| at(f, pos, key, e)))
                .collect::<R<Vec<_>>>()
                .map(Some),
        }
    };
    let contains = read("contains")?.unwrap_or_default();
    let absent = read("absent")?.unwrap_or_default();
    let exact = read("exact")?;
    if contains.is_empty() && absent.is_empty() && exact.is_none() {
        return Err(f.err(None, "contains", "say which routes: contains, absent or exact"));
    }
    Ok(Expectation::Fib(FibExpect { line, on, contains, absent, exact }))
}

const ROUTE_TYPES: &[&str] =
    &["unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable", "prohibit", "throw", "nat"];

/// `[type] <prefix> [via <ip|node|owner>] [dev <if>] [proto <p>] [onlink] [metric <n>] [scope <s>] [src <ip>]`
fn route_spec(cx: &Ctx, s: &str) -> Result<RouteSpec, String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    let mut i = 0;
    let mut kind = None;
    if let Some(w) = words.first() {
        if ROUTE_TYPES.contains(w) {
            kind = Some(w.to_string());
            i = 1;
        }
    }
    let dst_word = words.get(i).ok_or_else(|| {
        format!("{s:?}: expected a route, e.g. 172.16.3.0/26 via 10.0.1.3 dev tunl0 proto bird onlink")
    })?;
    let dst =
        if *dst_word == "default" { PrefixRef::Cidr(Prefix::default_v4()) } else { prefix_ref_str(cx, dst_word)? };
    i += 1;
    let mut spec = RouteSpec {
        text: s.trim().to_string(),
        kind,
        dst,
        via: None,
        dev: None,
        proto: None,
        onlink: false,
        metric: None,
        scope: None,
        src: None,
    };
    while i < words.len() {
        let w = words[i];
        let arg = || words.get(i + 1).copied().ok_or_else(|| format!("{s:?}: {w} needs a value"));
        match w {
            "onlink" => {
                spec.onlink = true;
                i += 1;
                continue;
            }
            "via" => spec.via = Some(addr_ref_str(cx, arg()?)?),
            "dev" => spec.dev = Some(arg()?.to_string()),
            "proto" => spec.proto = Some(arg()?.to_string()),
            "metric" => spec.metric = Some(arg()?.parse().map_err(|_| format!("{s:?}: metric needs a number"))?),
            "scope" => spec.scope = Some(arg()?.to_string()),
            "src" => spec.src = Some(arg()?.parse().map_err(|_| format!("{s:?}: src needs an IP address"))?),
            _ => {
                return Err(format!(
                    "{s:?}: unknown word {w:?} (a route is [type] <prefix> [via <ip|node>] [dev <if>] [proto <p>] [onlink] [metric <n>] [scope <s>] [src <ip>])"
                ))
            }
        }
        i += 2;
    }
    if matches!(spec.via, Some(AddrRef::Owner)) && !matches!(spec.dst, PrefixRef::Blocks(_)) {
        return Err(format!("{s:?}: `via owner` needs a block:<node> or blocks:<node set> prefix"));
    }
    Ok(spec)
}

fn members(cx: &Ctx, f: &Fields, key: &str) -> R<Option<Vec<MemberRef>>> {
    let Some(v) = strings(f, key)? else { return Ok(None) };
    let mut out = Vec::new();
    for (s, pos) in v {
        let t = s.trim();
        if t.parse::<IpAddr>().is_ok() || t.contains('/') {
            parse_cidr(t).map_err(|e| at(f, pos, key, e))?;
            out.push(MemberRef::Literal(t.to_string()));
        } else if t.contains(',') || t.starts_with(|c: char| c.is_ascii_digit()) {
            // ip,port and other set element syntaxes: compared as written.
            out.push(MemberRef::Literal(t.to_string()));
        } else {
            let sel = parse_node_sel(t).map_err(|e| at(f, pos, key, e))?;
            if let Some(names) = &cx.names {
                names.check_sel(&sel).map_err(|e| at(f, pos, key, e))?;
            }
            out.push(MemberRef::Nodes(NodeSet { items: vec![sel] }));
        }
    }
    Ok(Some(out))
}
