//! The topology as a picture (`rrlab graph`): Mermaid and Graphviz DOT text, an inline SVG, and a
//! self-contained HTML page with the SVG and tables of nodes, clusters, sites and links. Pure functions of a
//! [`Topology`]; the SVG has no scripts and no external references (its look is presentation attributes plus a
//! `<style>` scoped to `svg.topo-svg`), so that a report can embed it as it is.
//!
//! What is drawn, in every format:
//! - a **site** per `bridge` node (its subnet, the clusters on it, its counts) holding its nodes: cluster nodes
//!   whose `rrlab.io/calico-node-interface` is linked to the bridge, other nodes whose only link goes there;
//!   the clusters are groups inside the sites (Mermaid/DOT subgraphs; `data-cluster` in the SVG), not nodes;
//! - the **WAN** node (the topology's `linux` node, as [`crate::wan::wan_node`] finds it) between the sites;
//! - every **link**, labelled with its two interfaces; a link with an end on the WAN is a `wan` link;
//! - each node's **role** ([`NodeRole`]): `rr` when its labels mark it a route reflector (to be) ([`RR_LABELS`]),
//!   else its kind role (`control-plane`, `worker`); `wan`; `router` (another linux node); `site` (a bridge).
//!   Topology files say nothing else about RRs: hybrid-rr's RRs are its runbooks' choice, so it has none here
//!   (its nodes show their cluster, site, kind and labels); `rrlab gen` labels its RRs `rr-candidate: "true"`.
//!
//! The SVG puts two sites left and right of the WAN, more in a row above and a row below it. A site of more than
//! [`COMPACT_ABOVE`] nodes is a grid of small markers with its counts instead of labelled boxes, so that a
//! 200-node topology stays readable (and small); every node keeps its element and hover title.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use ipnet::Ipv4Net;

use crate::model::topology::{Link, NodeKind, Role, Topology};

/// Labels that mark a node a route reflector (to be), on its kind config entry (or its containerlab node):
/// `(key, value)`, a `None` value meaning any value but `false`. `rr-candidate` is what `rrlab gen` sets;
/// `rr-partition` is what the hybrid-rr runbooks label their RRs with.
pub const RR_LABELS: &[(&str, Option<&str>)] = &[
    ("rr-candidate", Some("true")),
    ("route-reflector", Some("true")),
    ("routeReflector", None),
    ("rr-partition", None),
];

/// A site with more nodes than this is drawn as a grid of markers with counts.
pub const COMPACT_ABOVE: usize = 40;

/// What a node is, as drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeRole {
    /// A cluster node labelled as a route reflector (to be): [`RR_LABELS`].
    RouteReflector,
    ControlPlane,
    Worker,
    /// The WAN router between the sites.
    Wan,
    /// Another `linux` node.
    Router,
    /// A `bridge` node: a site.
    Site,
    /// A `k8s-kind` node: a cluster (drawn as a group, not a node).
    Cluster,
    /// An `ext-container` of no cluster (the loader rejects those).
    Other,
}

impl NodeRole {
    /// The `data-role` value.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::RouteReflector => "rr",
            NodeRole::ControlPlane => "control-plane",
            NodeRole::Worker => "worker",
            NodeRole::Wan => "wan",
            NodeRole::Router => "router",
            NodeRole::Site => "site",
            NodeRole::Cluster => "cluster",
            NodeRole::Other => "container",
        }
    }

    /// Mermaid class name.
    fn class(self) -> &'static str {
        match self {
            NodeRole::RouteReflector => "rr",
            NodeRole::ControlPlane => "cp",
            NodeRole::Worker => "worker",
            NodeRole::Wan => "wan",
            NodeRole::Router => "router",
            NodeRole::Site => "bridge",
            NodeRole::Cluster | NodeRole::Other => "other",
        }
    }

    fn look(self) -> (&'static str, &'static str) {
        match self {
            NodeRole::RouteReflector => ("#fde68a", "#b45309"),
            NodeRole::ControlPlane => ("#e2e8f0", "#334155"),
            NodeRole::Worker => ("#dbeafe", "#2563eb"),
            NodeRole::Wan => ("#fee2e2", "#b91c1c"),
            NodeRole::Router => ("#ede9fe", "#6d28d9"),
            NodeRole::Site => ("#d1fae5", "#047857"),
            NodeRole::Cluster | NodeRole::Other => ("#f1f5f9", "#64748b"),
        }
    }
}

/// The label (`key=value`) that marks a node a route reflector, if one does.
pub fn rr_label(labels: &BTreeMap<String, String>) -> Option<String> {
    RR_LABELS.iter().find_map(|(k, want)| {
        let v = labels.get(*k)?;
        let hit = match want {
            Some(w) => v == w,
            None => v != "false",
        };
        hit.then(|| if v.is_empty() { k.to_string() } else { format!("{k}={v}") })
    })
}

/// A node's containerlab labels, then (for a cluster node) its Kubernetes labels from the kind config.
fn node_labels(t: &Topology, node: &str) -> BTreeMap<String, String> {
    let mut labels = t.nodes.get(node).map(|n| n.labels.clone()).unwrap_or_default();
    if let Some(cn) = t.clusters.iter().find_map(|c| c.node(node)) {
        labels.extend(cn.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    labels
}

/// A node's role as drawn.
pub fn node_role(t: &Topology, node: &str) -> NodeRole {
    let Some(n) = t.nodes.get(node) else { return NodeRole::Other };
    match n.kind {
        NodeKind::K8sKind => NodeRole::Cluster,
        NodeKind::Bridge => NodeRole::Site,
        NodeKind::Linux if crate::wan::wan_node(t).as_deref() == Some(node) => NodeRole::Wan,
        NodeKind::Linux => NodeRole::Router,
        NodeKind::ExtContainer => match t.clusters.iter().find_map(|c| c.node(node)) {
            None => NodeRole::Other,
            Some(_) if rr_label(&node_labels(t, node)).is_some() => NodeRole::RouteReflector,
            Some(cn) => match cn.role {
                Role::ControlPlane => NodeRole::ControlPlane,
                Role::Worker => NodeRole::Worker,
            },
        },
    }
}

// ---------------------------------------------------------------------------------------------------------
// The view every format draws

struct NodeInfo {
    name: String,
    kind: NodeKind,
    role: NodeRole,
    kube_role: Option<Role>,
    rr: Option<String>,
    cluster: Option<String>,
    site: Option<String>,
    /// A cluster node's address on its calico-node interface; another node's first address.
    ip: Option<Ipv4Net>,
    addrs: Vec<(String, Ipv4Net)>,
    labels: BTreeMap<String, String>,
}

struct SiteInfo {
    bridge: String,
    subnet: Option<String>,
    /// Nodes on the site (not the WAN), in link order.
    members: Vec<String>,
    clusters: Vec<String>,
}

struct LinkInfo<'a> {
    link: &'a Link,
    wan: bool,
    /// A link between a site's bridge and one of its members: (site index, the member is end `a`).
    stub: Option<(usize, bool)>,
}

struct View<'a> {
    t: &'a Topology,
    /// Every node but the k8s-kind ones.
    nodes: BTreeMap<String, NodeInfo>,
    sites: Vec<SiteInfo>,
    wan: Option<String>,
    /// Nodes on no site, the WAN apart.
    unsited: Vec<String>,
    links: Vec<LinkInfo<'a>>,
}

impl<'a> View<'a> {
    fn of(t: &'a Topology) -> View<'a> {
        let wan = crate::wan::wan_node(t);
        let bridges: BTreeSet<&str> =
            t.nodes.values().filter(|n| n.kind == NodeKind::Bridge).map(|n| n.name.as_str()).collect();
        let addrs = t.addresses();
        let mut nodes = BTreeMap::new();
        for (name, n) in &t.nodes {
            if n.kind == NodeKind::K8sKind {
                continue;
            }
            let cluster = t.clusters.iter().find(|c| c.node(name).is_some());
            let labels = node_labels(t, name);
            let role = node_role(t, name);
            let site = match n.kind {
                NodeKind::Bridge => Some(name.clone()),
                _ if wan.as_deref() == Some(name.as_str()) => None,
                _ => t.site_of(name).filter(|s| bridges.contains(s.as_str())),
            };
            let a = addrs.get(name).cloned().unwrap_or_default();
            let ip = match cluster {
                Some(c) => a.iter().find(|(d, _)| *d == c.node_interface).map(|(_, ip)| *ip),
                None => a.first().map(|(_, ip)| *ip),
            };
            nodes.insert(
                name.clone(),
                NodeInfo {
                    name: name.clone(),
                    kind: n.kind,
                    role,
                    kube_role: cluster.and_then(|c| c.node(name)).map(|cn| cn.role),
                    rr: if role == NodeRole::RouteReflector { rr_label(&labels) } else { None },
                    cluster: cluster.map(|c| c.name.clone()),
                    site,
                    ip,
                    addrs: a,
                    labels,
                },
            );
        }
        let mut sites = Vec::new();
        for (bridge, linked) in t.sites() {
            let mut members: Vec<String> = Vec::new();
            for m in linked {
                let on_site = nodes
                    .get(&m)
                    .is_some_and(|n: &NodeInfo| n.role != NodeRole::Site && n.site.as_deref() == Some(bridge.as_str()));
                if on_site && !members.contains(&m) {
                    members.push(m);
                }
            }
            let mut clusters: Vec<String> = Vec::new();
            for c in members.iter().filter_map(|m| nodes[m].cluster.clone()) {
                if !clusters.contains(&c) {
                    clusters.push(c);
                }
            }
            sites.push(SiteInfo { subnet: t.site_cidr(&bridge).ok(), bridge, members, clusters });
        }
        let site_idx: HashMap<&str, usize> = sites.iter().enumerate().map(|(i, s)| (s.bridge.as_str(), i)).collect();
        let unsited = nodes
            .values()
            .filter(|n| n.site.is_none() && !matches!(n.role, NodeRole::Wan | NodeRole::Site))
            .map(|n| n.name.clone())
            .collect();
        let member_of = |node: &str, bridge: &str| {
            nodes.get(node).is_some_and(|n| n.role != NodeRole::Site && n.site.as_deref() == Some(bridge))
        };
        let links = t
            .links
            .iter()
            .map(|l| {
                let wan = wan.as_deref().is_some_and(|w| l.a.node == w || l.b.node == w);
                let stub = if member_of(&l.a.node, &l.b.node) {
                    site_idx.get(l.b.node.as_str()).map(|&i| (i, true))
                } else if member_of(&l.b.node, &l.a.node) {
                    site_idx.get(l.a.node.as_str()).map(|&i| (i, false))
                } else {
                    None
                };
                LinkInfo { link: l, wan, stub }
            })
            .collect();
        View { t, nodes, sites, wan, unsited, links }
    }

    /// Every node, site by site (its bridge, then its nodes in link order), then the WAN and the rest.
    fn ordered(&self) -> Vec<&NodeInfo> {
        let mut names: Vec<&str> = Vec::with_capacity(self.nodes.len());
        for s in &self.sites {
            names.push(&s.bridge);
            names.extend(s.members.iter().map(String::as_str));
        }
        names.extend(self.wan.as_deref());
        names.extend(self.unsited.iter().map(String::as_str));
        names.extend(self.nodes.keys().map(String::as_str));
        let mut seen = HashSet::new();
        names.into_iter().filter(|n| seen.insert(*n)).filter_map(|n| self.nodes.get(n)).collect()
    }

    fn rr_count(&self) -> usize {
        self.nodes.values().filter(|n| n.role == NodeRole::RouteReflector).count()
    }

    fn cluster_nodes(&self) -> usize {
        self.nodes.values().filter(|n| n.cluster.is_some()).count()
    }

    /// A site's members grouped by cluster (in order of first appearance); nodes of no cluster last.
    fn groups<'s>(&self, s: &'s SiteInfo) -> Vec<(Option<&'s str>, Vec<&'s str>)> {
        let mut out: Vec<(Option<&str>, Vec<&str>)> =
            s.clusters.iter().map(|c| (Some(c.as_str()), Vec::new())).collect();
        let mut loose = Vec::new();
        for m in &s.members {
            match &self.nodes[m].cluster {
                Some(c) => {
                    if let Some(g) = out.iter_mut().find(|(gc, _)| *gc == Some(c.as_str())) {
                        g.1.push(m.as_str());
                    }
                }
                None => loose.push(m.as_str()),
            }
        }
        if !loose.is_empty() {
            out.push((None, loose));
        }
        out
    }

    fn site_counts(&self, s: &SiteInfo) -> String {
        let by = |r: NodeRole| s.members.iter().filter(|m| self.nodes[*m].role == r).count();
        let mut parts = vec![
            plural(by(NodeRole::RouteReflector), "RR", "RRs"),
            plural(by(NodeRole::ControlPlane), "control plane", "control planes"),
            plural(by(NodeRole::Worker), "worker", "workers"),
        ];
        let other = s.members.len() - by(NodeRole::RouteReflector) - by(NodeRole::ControlPlane) - by(NodeRole::Worker);
        if other > 0 {
            parts.push(plural(other, "other", "others"));
        }
        format!("{}: {}", plural(s.members.len(), "node", "nodes"), parts.join(", "))
    }

    fn site_detail(&self, s: &SiteInfo) -> String {
        let mut d = s.subnet.clone().unwrap_or_else(|| "no addressed node".to_string());
        if !s.clusters.is_empty() {
            let _ = write!(
                d,
                " · {} {}",
                if s.clusters.len() == 1 { "cluster" } else { "clusters" },
                s.clusters.join(", ")
            );
        }
        d
    }

    /// The text lines of a node's label: name, what it is (with its address), its labels.
    fn lines(&self, n: &NodeInfo) -> Vec<String> {
        let ips = || n.addrs.iter().map(|(_, a)| a.addr().to_string()).collect::<Vec<_>>().join(", ");
        let detail = match n.role {
            NodeRole::Site => match self.sites.iter().find(|s| s.bridge == n.name).and_then(|s| s.subnet.clone()) {
                Some(net) => format!("bridge · {net}"),
                None => "bridge".to_string(),
            },
            NodeRole::Wan => format!("WAN · {}", ips()),
            NodeRole::Router => format!("linux · {}", ips()),
            NodeRole::Cluster | NodeRole::Other => n.kind.as_str().to_string(),
            NodeRole::RouteReflector | NodeRole::ControlPlane | NodeRole::Worker => {
                let ip = n.ip.map(|ip| ip.addr().to_string()).unwrap_or_else(|| "no IP".to_string());
                format!("{ip} · {}", role_text(n))
            }
        };
        let mut out = vec![n.name.clone(), detail];
        if !n.labels.is_empty() {
            out.push(labels_text(&n.labels));
        }
        out
    }

    /// Everything about a node, for hover titles and DOT tooltips.
    fn tooltip(&self, n: &NodeInfo) -> String {
        let mut s = format!("{} ({})", n.name, n.kind);
        let mut where_ = Vec::new();
        if let Some(c) = &n.cluster {
            where_.push(format!("cluster {c}"));
        }
        if let Some(site) = &n.site {
            where_.push(format!("site {site}"));
        }
        if !where_.is_empty() {
            let _ = write!(s, "\n{}", where_.join(" · "));
        }
        if !n.addrs.is_empty() {
            let a: Vec<String> = n.addrs.iter().map(|(d, a)| format!("{d} {a}")).collect();
            let _ = write!(s, "\n{}", a.join(", "));
        }
        let _ = write!(s, "\nrole {}", role_text(n));
        if !n.labels.is_empty() {
            let _ = write!(s, "\nlabels {}", labels_text(&n.labels));
        }
        s
    }
}

fn role_text(n: &NodeInfo) -> String {
    let kube = match n.kube_role {
        Some(Role::ControlPlane) => "control-plane",
        Some(Role::Worker) => "worker",
        None => n.kind.as_str(),
    };
    match n.role {
        NodeRole::RouteReflector => format!("{kube} · RR"),
        NodeRole::ControlPlane | NodeRole::Worker => kube.to_string(),
        NodeRole::Wan => "WAN".to_string(),
        NodeRole::Router => "linux router".to_string(),
        NodeRole::Site => "site bridge".to_string(),
        NodeRole::Cluster | NodeRole::Other => n.kind.as_str().to_string(),
    }
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| if v.is_empty() { k.clone() } else { format!("{k}={v}") }).collect::<Vec<_>>().join(", ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn rr_note(v: &View) -> String {
    let mut rules: Vec<String> = RR_LABELS
        .iter()
        .map(|(k, val)| match val {
            Some(val) => format!("{k}={val}"),
            None => k.to_string(),
        })
        .collect();
    let last = rules.pop().unwrap_or_default();
    let rule = if rules.is_empty() { last } else { format!("{} or {last}", rules.join(", ")) };
    if v.rr_count() == 0 {
        format!("No node is marked a route reflector: RRs are nodes labelled {rule} (kind config).")
    } else {
        format!("RR: a node labelled {rule} (kind config).")
    }
}

fn summary(v: &View) -> String {
    format!(
        "{} · {} on {} · {} · WAN {}",
        plural(v.cluster_nodes(), "cluster node", "cluster nodes"),
        plural(v.t.clusters.len(), "cluster", "clusters"),
        plural(v.sites.len(), "site", "sites"),
        plural(v.rr_count(), "RR", "RRs"),
        v.wan.as_deref().unwrap_or("none"),
    )
}

// ---------------------------------------------------------------------------------------------------------
// Mermaid

/// Identifiers made of `[A-Za-z0-9_]`, one per (namespace, name), distinct.
#[derive(Default)]
struct Ids {
    by_key: HashMap<(&'static str, String), String>,
    used: HashSet<String>,
}

impl Ids {
    fn get(&mut self, ns: &'static str, name: &str) -> String {
        if let Some(id) = self.by_key.get(&(ns, name.to_string())) {
            return id.clone();
        }
        let base: String =
            format!("{ns}_{name}").chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let mut id = base.clone();
        let mut k = 2;
        while self.used.contains(&id) {
            id = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(id.clone());
        self.by_key.insert((ns, name.to_string()), id.clone());
        id
    }
}

/// Mermaid label text: characters Mermaid's grammar would read as syntax become entity codes (`#34;`).
fn mm(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '#' | '<' | '>' | '&' | '|' | '[' | ']' | '{' | '}' | '(' | ')' | '`' | ';' | '\\' => {
                let _ = write!(o, "#{};", c as u32);
            }
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn mermaid_node(o: &mut String, indent: &str, v: &View, name: &str, ids: &mut Ids) {
    let Some(n) = v.nodes.get(name) else { return };
    let id = ids.get("n", name);
    let label = v.lines(n).iter().map(|l| mm(l)).collect::<Vec<_>>().join("<br/>");
    let (open, close) = match n.role {
        NodeRole::RouteReflector => ("{{", "}}"),
        NodeRole::ControlPlane => ("(", ")"),
        NodeRole::Wan => ("((", "))"),
        NodeRole::Router => ("([", "])"),
        NodeRole::Site => ("[[", "]]"),
        NodeRole::Worker | NodeRole::Cluster | NodeRole::Other => ("[", "]"),
    };
    let _ = writeln!(o, "{indent}{id}{open}\"{label}\"{close}:::{}", n.role.class());
}

/// The topology as a Mermaid flowchart (`graph LR`): a subgraph per site with one per cluster inside, the WAN
/// between them, every link an edge labelled `<iface> — <iface>` (WAN links thick and red), RRs hexagons.
pub fn mermaid(t: &Topology) -> String {
    let v = View::of(t);
    let mut ids = Ids::default();
    let mut o = String::new();
    let _ = writeln!(o, "%% rrlab graph: {} ({})", one_line(&t.name), one_line(&t.file.display().to_string()));
    let _ = writeln!(o, "%% {}", one_line(&summary(&v)));
    o.push_str("graph LR\n");
    for s in &v.sites {
        let sid = ids.get("s", &s.bridge);
        let title = format!("site {} · {}", s.bridge, v.site_detail(s));
        let _ = writeln!(o, "  subgraph {sid}[\"{}\"]", mm(&title));
        mermaid_node(&mut o, "    ", &v, &s.bridge, &mut ids);
        for (cluster, members) in v.groups(s) {
            match cluster {
                Some(c) => {
                    let cid = ids.get("c", &format!("{}/{c}", s.bridge));
                    let _ = writeln!(o, "    subgraph {cid}[\"{}\"]", mm(&format!("cluster {c}")));
                    for m in members {
                        mermaid_node(&mut o, "      ", &v, m, &mut ids);
                    }
                    o.push_str("    end\n");
                }
                None => {
                    for m in members {
                        mermaid_node(&mut o, "    ", &v, m, &mut ids);
                    }
                }
            }
        }
        o.push_str("  end\n");
    }
    if let Some(w) = &v.wan {
        mermaid_node(&mut o, "  ", &v, w, &mut ids);
    }
    for u in &v.unsited {
        mermaid_node(&mut o, "  ", &v, u, &mut ids);
    }
    let mut wan_edges = Vec::new();
    for (i, l) in v.links.iter().enumerate() {
        let (a, b) = (ids.get("n", &l.link.a.node), ids.get("n", &l.link.b.node));
        let op = if l.wan { "===" } else { "---" };
        let text = mm(&format!("{} — {}", l.link.a.iface, l.link.b.iface));
        let _ = writeln!(o, "  {a} {op}|{text}| {b}");
        if l.wan {
            wan_edges.push(i.to_string());
        }
    }
    for role in [
        NodeRole::Worker,
        NodeRole::ControlPlane,
        NodeRole::RouteReflector,
        NodeRole::Wan,
        NodeRole::Router,
        NodeRole::Site,
        NodeRole::Other,
    ] {
        let (fill, stroke) = role.look();
        let width = if role == NodeRole::RouteReflector { "3px" } else { "1px" };
        let _ = writeln!(o, "  classDef {} fill:{fill},stroke:{stroke},stroke-width:{width}", role.class());
    }
    if !wan_edges.is_empty() {
        let _ = writeln!(o, "  linkStyle {} stroke:#b91c1c,stroke-width:3px", wan_edges.join(","));
    }
    o
}

// ---------------------------------------------------------------------------------------------------------
// DOT

/// A DOT quoted string.
fn dq(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn dot_node(o: &mut String, indent: &str, v: &View, name: &str) {
    let Some(n) = v.nodes.get(name) else { return };
    let (fill, stroke) = n.role.look();
    let (shape, style) = match n.role {
        NodeRole::RouteReflector => ("hexagon", "filled,bold"),
        NodeRole::ControlPlane | NodeRole::Worker => ("box", "rounded,filled"),
        NodeRole::Wan => ("doublecircle", "filled"),
        NodeRole::Router => ("octagon", "filled"),
        NodeRole::Site => ("box", "filled,bold"),
        NodeRole::Cluster | NodeRole::Other => ("ellipse", "filled"),
    };
    let _ = writeln!(
        o,
        "{indent}{} [shape={shape}, style={}, fillcolor={}, color={}, label={}, tooltip={}, class={}];",
        dq(name),
        dq(style),
        dq(fill),
        dq(stroke),
        dq(&v.lines(n).join("\n")),
        dq(&v.tooltip(n)),
        dq(&format!("node {}", n.role.as_str())),
    );
}

/// The topology as Graphviz DOT: `subgraph "cluster_<site>"` per site with `"cluster_<site>/<cluster>"` inside,
/// the WAN between them, links with their interfaces as tail and head labels (WAN links `class="link wan"`,
/// thick and red), RRs hexagons. Every ID is quoted.
pub fn dot(t: &Topology) -> String {
    let v = View::of(t);
    let mut o = String::new();
    let _ = writeln!(o, "graph {} {{", dq(&t.name));
    let _ = writeln!(
        o,
        "  graph [rankdir=LR, labelloc=t, fontname=\"Helvetica\", label={}];",
        dq(&format!("{} ({})\n{}", t.name, t.file.display(), summary(&v)))
    );
    o.push_str("  node [fontname=\"Helvetica\", fontsize=10];\n");
    o.push_str("  edge [fontname=\"Helvetica\", fontsize=8, color=\"#64748b\"];\n");
    for s in &v.sites {
        let _ = writeln!(o, "  subgraph {} {{", dq(&format!("cluster_{}", s.bridge)));
        let _ = writeln!(
            o,
            "    label={}; style=\"rounded,filled\"; fillcolor=\"#f8fafc\"; color=\"#94a3b8\";",
            dq(&format!("site {}\n{}\n{}", s.bridge, v.site_detail(s), v.site_counts(s)))
        );
        dot_node(&mut o, "    ", &v, &s.bridge);
        for (cluster, members) in v.groups(s) {
            match cluster {
                Some(c) => {
                    let _ = writeln!(o, "    subgraph {} {{", dq(&format!("cluster_{}/{c}", s.bridge)));
                    let _ = writeln!(
                        o,
                        "      label={}; style=\"rounded,dashed\"; color=\"#64748b\";",
                        dq(&format!("cluster {c}"))
                    );
                    for m in members {
                        dot_node(&mut o, "      ", &v, m);
                    }
                    o.push_str("    }\n");
                }
                None => {
                    for m in members {
                        dot_node(&mut o, "    ", &v, m);
                    }
                }
            }
        }
        o.push_str("  }\n");
    }
    if let Some(w) = &v.wan {
        dot_node(&mut o, "  ", &v, w);
    }
    for u in &v.unsited {
        dot_node(&mut o, "  ", &v, u);
    }
    for l in &v.links {
        let extra = if l.wan { ", color=\"#b91c1c\", penwidth=3" } else { "" };
        let _ = writeln!(
            o,
            "  {} -- {} [taillabel={}, headlabel={}, class={}{extra}];",
            dq(&l.link.a.node),
            dq(&l.link.b.node),
            dq(&l.link.a.iface),
            dq(&l.link.b.iface),
            dq(if l.wan { "link wan" } else { "link" }),
        );
    }
    o.push_str("}\n");
    o
}

// ---------------------------------------------------------------------------------------------------------
// SVG

/// Text for XML content and attribute values: [`super::xml_escape`], other control characters (tab, CR) as
/// blanks and newlines as character references (they survive in attributes).
fn xml(s: &str) -> String {
    super::xml_escape(&s.replace(['\t', '\r'], " ")).replace('\n', "&#10;")
}

/// A coordinate: at most one decimal.
fn num(x: f64) -> String {
    let r = (x * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// Monospace glyph width at a font size.
fn text_w(s: &str, size: f64) -> f64 {
    s.chars().count() as f64 * size * 0.6
}

const PAD: f64 = 20.0;
const PAD_IN: f64 = 14.0;
const TITLE_H: f64 = 52.0;
const HEADER: f64 = 58.0;
const BRIDGE_H: f64 = 26.0;
const GRID_COLS: usize = 20;
const CELL: f64 = 14.0;
const GAP: f64 = 40.0;
/// Label lines are cut to this many characters (the hover title has them whole).
const LINE_MAX: usize = 40;
const FONT: &str = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace";

#[derive(Clone, Copy)]
struct Anchor {
    x: f64,
    y: f64,
    /// Half extents of the shape, for where a line leaves it.
    hw: f64,
    hh: f64,
}

impl Anchor {
    /// Where a line from the centre towards (dx, dy) (a unit vector) leaves the shape.
    fn exit(&self, dx: f64, dy: f64) -> (f64, f64) {
        let tx = if dx.abs() > 1e-9 { self.hw / dx.abs() } else { f64::INFINITY };
        let ty = if dy.abs() > 1e-9 { self.hh / dy.abs() } else { f64::INFINITY };
        let t = tx.min(ty);
        (self.x + dx * t, self.y + dy * t)
    }
}

struct Spot {
    name: String,
    x: f64,
    y: f64,
    /// Left of the bus (its link leaves by its right side).
    left: bool,
}

/// A site box's geometry, relative to its top-left corner.
struct SiteLayout {
    w: f64,
    h: f64,
    compact: bool,
    bridge: (f64, f64),
    bridge_w: f64,
    spots: Vec<Spot>,
    node_w: f64,
    node_h: f64,
    bus_x: f64,
    bus_y: (f64, f64),
}

fn node_box_w(v: &View, names: &[&str]) -> f64 {
    names
        .iter()
        .filter_map(|m| v.nodes.get(*m))
        .map(|n| {
            let l = v.lines(n);
            let mut w = text_w(&l[0], 12.0);
            if let Some(d) = l.get(1) {
                w = w.max(text_w(&truncate(d, LINE_MAX), 10.0));
            }
            if let Some(d) = l.get(2) {
                w = w.max(text_w(&truncate(d, LINE_MAX), 9.0));
            }
            w + 18.0
        })
        .fold(130.0, f64::max)
}

fn node_box_h(v: &View, names: &[&str]) -> f64 {
    if names.iter().any(|m| v.nodes.get(*m).is_some_and(|n| !n.labels.is_empty())) {
        46.0
    } else {
        34.0
    }
}

fn layout_site(v: &View, si: usize, bridge_bottom: bool) -> SiteLayout {
    let s = &v.sites[si];
    let n = s.members.len();
    let compact = n > COMPACT_ABOVE;
    let bridge_w = (text_w(&s.bridge, 11.0) + 24.0).max(110.0);
    let header_w = [text_w(&s.bridge, 13.0), text_w(&v.site_detail(s), 10.0), text_w(&v.site_counts(s), 10.0)]
        .into_iter()
        .fold(0.0, f64::max)
        + 2.0 * PAD_IN;
    if compact {
        let cols = n.clamp(1, GRID_COLS);
        let rows = n.div_ceil(cols);
        let grid_w = cols as f64 * CELL;
        let grid_h = rows as f64 * CELL;
        let w = (grid_w + 2.0 * PAD_IN).max(header_w).max(bridge_w + 2.0 * PAD_IN);
        let (bridge_cy, grid_y0, h) = if bridge_bottom {
            let gy = HEADER + 4.0;
            let by = gy + grid_h + 18.0 + BRIDGE_H / 2.0;
            (by, gy, by + BRIDGE_H / 2.0 + 12.0)
        } else {
            let gy = HEADER + 8.0 + BRIDGE_H + 18.0;
            (HEADER + 8.0 + BRIDGE_H / 2.0, gy, gy + grid_h + 12.0)
        };
        let gx0 = (w - grid_w) / 2.0;
        let spots = s
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| Spot {
                name: m.clone(),
                x: gx0 + (i % cols) as f64 * CELL + CELL / 2.0,
                y: grid_y0 + (i / cols) as f64 * CELL + CELL / 2.0,
                left: true,
            })
            .collect();
        let bus_end = if bridge_bottom { grid_y0 + grid_h + 4.0 } else { grid_y0 - 4.0 };
        return SiteLayout {
            w,
            h,
            compact,
            bridge: (w / 2.0, bridge_cy),
            bridge_w,
            spots,
            node_w: 9.0,
            node_h: 9.0,
            bus_x: w / 2.0,
            bus_y: (bridge_cy, bus_end),
        };
    }
    let names: Vec<&str> = s.members.iter().map(String::as_str).collect();
    let node_w = node_box_w(v, &names);
    let node_h = node_box_h(v, &names);
    let row_h = node_h + 10.0;
    let stub = v
        .links
        .iter()
        .filter(|l| l.stub.is_some_and(|(i, _)| i == si))
        .map(|l| text_w(&l.link.a.iface, 9.0) + text_w(&l.link.b.iface, 9.0) + 28.0)
        .fold(70.0, f64::max);
    let cols = if n >= 2 { 2 } else { 1 };
    let rows = n.div_ceil(cols);
    let mut bus_x = PAD_IN + node_w + stub;
    let natural = if cols == 2 { 2.0 * bus_x } else { bus_x + (bridge_w / 2.0 + PAD_IN).max(stub) };
    let w = natural.max(header_w).max(bridge_w + 2.0 * PAD_IN);
    let dx = (w - natural) / 2.0;
    bus_x += dx;
    let (bridge_cy, y0, h) = if bridge_bottom {
        let y0 = HEADER + 4.0;
        let by = y0 + rows as f64 * row_h + 14.0 + BRIDGE_H / 2.0;
        (by, y0, by + BRIDGE_H / 2.0 + 12.0)
    } else {
        let y0 = HEADER + 8.0 + BRIDGE_H + 18.0;
        (HEADER + 8.0 + BRIDGE_H / 2.0, y0, y0 + rows as f64 * row_h + 4.0)
    };
    let spots: Vec<Spot> = s
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let left = i % cols == 0;
            Spot {
                name: m.clone(),
                x: if left { dx + PAD_IN + node_w / 2.0 } else { bus_x + stub + node_w / 2.0 },
                y: y0 + (i / cols) as f64 * row_h + node_h / 2.0,
                left,
            }
        })
        .collect();
    let (first, last) = match (spots.first(), spots.last()) {
        (Some(f), Some(l)) => (f.y, l.y),
        _ => (bridge_cy, bridge_cy),
    };
    let bus_y = if bridge_bottom { (first, bridge_cy) } else { (bridge_cy, last) };
    SiteLayout { w, h, compact, bridge: (bus_x, bridge_cy), bridge_w, spots, node_w, node_h, bus_x, bus_y }
}

fn g_node_open(o: &mut String, n: &NodeInfo) {
    let _ = write!(
        o,
        "<g class=\"node\" data-node=\"{}\" data-site=\"{}\" data-cluster=\"{}\" data-role=\"{}\">",
        xml(&n.name),
        xml(n.site.as_deref().unwrap_or("")),
        xml(n.cluster.as_deref().unwrap_or("")),
        n.role.as_str()
    );
}

fn g_node_close(o: &mut String, v: &View, n: &NodeInfo) {
    let _ = writeln!(o, "<title>{}</title></g>", xml(&v.tooltip(n)));
}

fn text(o: &mut String, x: f64, y: f64, size: f64, anchor: &str, extra: &str, s: &str) {
    let _ = write!(
        o,
        "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{anchor}\"{extra}>{}</text>",
        num(x),
        num(y),
        num(size),
        xml(s)
    );
}

/// A hexagon with pointed left and right ends, in the box (x, y, w, h).
fn hexagon(x: f64, y: f64, w: f64, h: f64) -> String {
    let e = (h / 2.0).min(10.0);
    let pts = [(x + e, y), (x + w - e, y), (x + w, y + h / 2.0), (x + w - e, y + h), (x + e, y + h), (x, y + h / 2.0)];
    pts.iter().map(|(a, b)| format!("{},{}", num(*a), num(*b))).collect::<Vec<_>>().join(" ")
}

/// A labelled node box centred at (cx, cy).
fn draw_node_box(o: &mut String, v: &View, n: &NodeInfo, cx: f64, cy: f64, w: f64, h: f64) {
    let (fill, stroke) = n.role.look();
    let (x, y) = (cx - w / 2.0, cy - h / 2.0);
    g_node_open(o, n);
    if n.role == NodeRole::RouteReflector {
        let _ = write!(
            o,
            "<polygon points=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"2.5\"/>",
            hexagon(x, y, w, h)
        );
    } else {
        let _ = write!(
            o,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"7\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"/>",
            num(x),
            num(y),
            num(w),
            num(h)
        );
    }
    let lines = v.lines(n);
    text(o, cx, y + 14.0, 12.0, "middle", " font-weight=\"bold\"", &lines[0]);
    if let Some(l) = lines.get(1) {
        text(o, cx, y + 27.0, 10.0, "middle", "", &truncate(l, LINE_MAX));
    }
    if let Some(l) = lines.get(2) {
        text(o, cx, y + 39.0, 9.0, "middle", " fill=\"#475569\"", &truncate(l, LINE_MAX));
    }
    g_node_close(o, v, n);
}

/// A compact site's marker: worker circle, control-plane square, RR diamond.
fn draw_marker(o: &mut String, v: &View, n: &NodeInfo, cx: f64, cy: f64) {
    let (fill, stroke) = n.role.look();
    g_node_open(o, n);
    o.push_str(&marker_shape(n.role, cx, cy, fill, stroke));
    g_node_close(o, v, n);
}

fn marker_shape(role: NodeRole, cx: f64, cy: f64, fill: &str, stroke: &str) -> String {
    match role {
        NodeRole::RouteReflector => format!(
            "<polygon points=\"{},{} {},{} {},{} {},{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"/>",
            num(cx),
            num(cy - 6.0),
            num(cx + 6.0),
            num(cy),
            num(cx),
            num(cy + 6.0),
            num(cx - 6.0),
            num(cy)
        ),
        NodeRole::ControlPlane => format!(
            "<rect x=\"{}\" y=\"{}\" width=\"9\" height=\"9\" fill=\"{fill}\" stroke=\"{stroke}\"/>",
            num(cx - 4.5),
            num(cy - 4.5)
        ),
        _ => format!("<circle cx=\"{}\" cy=\"{}\" r=\"4.5\" fill=\"{fill}\" stroke=\"{stroke}\"/>", num(cx), num(cy)),
    }
}

fn draw_bridge(o: &mut String, v: &View, n: &NodeInfo, cx: f64, cy: f64, w: f64) {
    let (fill, stroke) = n.role.look();
    g_node_open(o, n);
    let _ = write!(
        o,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"2\"/>",
        num(cx - w / 2.0),
        num(cy - BRIDGE_H / 2.0),
        num(w),
        num(BRIDGE_H)
    );
    text(o, cx, cy + 4.0, 11.0, "middle", " font-weight=\"bold\"", &n.name);
    g_node_close(o, v, n);
}

fn wan_radius(n: &NodeInfo) -> f64 {
    (text_w(&n.name, 12.0) / 2.0 + 10.0).max(28.0)
}

fn draw_wan(o: &mut String, v: &View, n: &NodeInfo, cx: f64, cy: f64, text_right: bool) {
    let (fill, stroke) = n.role.look();
    let r = wan_radius(n);
    g_node_open(o, n);
    let _ = write!(
        o,
        "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"2.5\"/>",
        num(cx),
        num(cy),
        num(r)
    );
    let lines = v.lines(n);
    text(o, cx, cy + 4.0, 12.0, "middle", " font-weight=\"bold\"", &lines[0]);
    let (tx, ty, anchor) = if text_right { (cx + r + 6.0, cy - 2.0, "start") } else { (cx, cy + r + 14.0, "middle") };
    for (i, l) in lines.iter().skip(1).enumerate() {
        let size = if i == 0 { 10.0 } else { 9.0 };
        text(o, tx, ty + i as f64 * 12.0, size, anchor, "", &truncate(l, LINE_MAX));
    }
    g_node_close(o, v, n);
}

/// A straight link between two anchors, with each end's interface next to where it leaves its shape and, for
/// WAN links, the WAN's address on it and any declared impairment in the middle.
fn draw_line_link(o: &mut String, v: &View, l: &LinkInfo, a: Anchor, b: Anchor) {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len = (dx * dx + dy * dy).sqrt().max(1e-6);
    let (ux, uy) = (dx / len, dy / len);
    // "Above" the line: the normal with a negative y (or the left side of a vertical line).
    let (mut nx, mut ny) = (uy, -ux);
    if ny > 0.0 || (ny.abs() < 1e-9 && nx > 0.0) {
        nx = -nx;
        ny = -ny;
    }
    let (stroke, width) = if l.wan { ("#b91c1c", "3") } else { ("#64748b", "1.5") };
    let _ = write!(
        o,
        "<g class=\"{}\" data-a=\"{}\" data-b=\"{}\">",
        if l.wan { "link wan" } else { "link" },
        xml(&l.link.a.to_string()),
        xml(&l.link.b.to_string())
    );
    let _ = write!(
        o,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{stroke}\" stroke-width=\"{width}\"/>",
        num(a.x),
        num(a.y),
        num(b.x),
        num(b.y)
    );
    let ea = a.exit(ux, uy);
    let eb = b.exit(-ux, -uy);
    for ((ex, ey), (sx, sy), iface) in [(ea, (ux, uy), &l.link.a.iface), (eb, (-ux, -uy), &l.link.b.iface)] {
        let off = text_w(iface, 9.0) / 2.0 * sx.abs() + 8.0;
        text(o, ex + sx * off + nx * 6.0, ey + sy * off + ny * 6.0 + 3.0, 9.0, "middle", "", iface);
    }
    if l.wan {
        let w = v.wan.as_deref().unwrap_or("");
        let wan_iface = if l.link.a.node == w { &l.link.a.iface } else { &l.link.b.iface };
        let mut mid = Vec::new();
        if let Some(n) = v.nodes.get(w) {
            mid.extend(n.addrs.iter().filter(|(d, _)| d == wan_iface).map(|(_, a)| a.to_string()));
        }
        if let Some(imp) = v.t.impairments.get(wan_iface) {
            mid.push(format!("out of {wan_iface}: {imp}"));
        }
        let (mx, my) = ((ea.0 + eb.0) / 2.0, (ea.1 + eb.1) / 2.0);
        for (i, m) in mid.iter().enumerate() {
            text(o, mx - nx * 12.0, my - ny * 12.0 + 3.0 + i as f64 * 11.0, 9.0, "middle", " fill=\"#7f1d1d\"", m);
        }
    }
    o.push_str("</g>\n");
}

/// A member's link to its site's bridge: a short horizontal line from the node box to the bus.
fn draw_stub(o: &mut String, l: &LinkInfo, member_is_a: bool, spot: &Spot, lay: &SiteLayout, ox: f64, oy: f64) {
    let (member, port) = if member_is_a { (&l.link.a, &l.link.b) } else { (&l.link.b, &l.link.a) };
    let y = oy + spot.y;
    let bus = ox + lay.bus_x;
    let edge = if spot.left { ox + spot.x + lay.node_w / 2.0 } else { ox + spot.x - lay.node_w / 2.0 };
    let _ = write!(
        o,
        "<g class=\"link\" data-a=\"{}\" data-b=\"{}\">",
        xml(&l.link.a.to_string()),
        xml(&l.link.b.to_string())
    );
    let _ = write!(
        o,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#64748b\" stroke-width=\"1.5\"/>",
        num(edge),
        num(y),
        num(bus),
        num(y)
    );
    let (ia, pa, di) = if spot.left { ("start", "end", 4.0) } else { ("end", "start", -4.0) };
    text(o, edge + di, y - 4.0, 9.0, ia, "", &member.iface);
    text(o, bus - 2.0 * di, y - 4.0, 9.0, pa, " fill=\"#047857\"", &port.iface);
    o.push_str("</g>\n");
}

fn draw_site_frame(o: &mut String, v: &View, s: &SiteInfo, lay: &SiteLayout, ox: f64, oy: f64) {
    let _ = write!(
        o,
        "<g class=\"topo-site\" data-site=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"10\" fill=\"#f8fafc\" stroke=\"#94a3b8\" stroke-width=\"1.5\"/>",
        xml(&s.bridge),
        num(ox),
        num(oy),
        num(lay.w),
        num(lay.h)
    );
    text(o, ox + PAD_IN, oy + 20.0, 13.0, "start", " font-weight=\"bold\"", &s.bridge);
    text(o, ox + PAD_IN, oy + 35.0, 10.0, "start", " fill=\"#334155\"", &v.site_detail(s));
    text(o, ox + PAD_IN, oy + 49.0, 10.0, "start", " fill=\"#334155\"", &v.site_counts(s));
    if lay.bus_y.0 != lay.bus_y.1 {
        let _ = write!(
            o,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#047857\" stroke-width=\"4\" stroke-linecap=\"round\"/>",
            num(ox + lay.bus_x),
            num(oy + lay.bus_y.0),
            num(ox + lay.bus_x),
            num(oy + lay.bus_y.1)
        );
    }
    o.push_str("</g>\n");
}

struct Legend {
    out: String,
    x: f64,
    y: f64,
    max_w: f64,
    bottom: f64,
}

impl Legend {
    fn item(&mut self, w: f64, label: &str, shape: impl FnOnce(f64, f64) -> String) {
        let item_w = w + 8.0 + text_w(label, 10.0) + 22.0;
        if self.x + item_w > self.max_w && self.x > PAD {
            self.x = PAD;
            self.y += 24.0;
        }
        self.out.push_str(&shape(self.x, self.y));
        text(&mut self.out, self.x + w + 8.0, self.y + 4.0, 10.0, "start", "", label);
        self.x += item_w;
        self.bottom = self.y + 12.0;
    }
}

fn legend(v: &View, compact: bool, y: f64, max_w: f64) -> (String, f64) {
    let mut lg = Legend { out: String::from("<g class=\"topo-legend\">"), x: PAD, y: y + 10.0, max_w, bottom: y };
    let boxed = |role: NodeRole| {
        move |x: f64, y: f64| {
            let (fill, stroke) = role.look();
            if role == NodeRole::RouteReflector {
                format!(
                    "<polygon points=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"2.5\"/>",
                    hexagon(x, y - 8.0, 30.0, 16.0)
                )
            } else {
                format!(
                    "<rect x=\"{}\" y=\"{}\" width=\"30\" height=\"16\" rx=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"/>",
                    num(x),
                    num(y - 8.0),
                    if role == NodeRole::Site { 3 } else { 6 }
                )
            }
        }
    };
    lg.item(30.0, "worker", boxed(NodeRole::Worker));
    lg.item(30.0, "control plane", boxed(NodeRole::ControlPlane));
    lg.item(30.0, "route reflector (to be)", boxed(NodeRole::RouteReflector));
    lg.item(18.0, "WAN router", |x, y| {
        let (fill, stroke) = NodeRole::Wan.look();
        format!(
            "<circle cx=\"{}\" cy=\"{}\" r=\"9\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"2\"/>",
            num(x + 9.0),
            num(y)
        )
    });
    if v.nodes.values().any(|n| n.role == NodeRole::Router) {
        lg.item(30.0, "other linux node", boxed(NodeRole::Router));
    }
    lg.item(30.0, "site bridge (L2)", boxed(NodeRole::Site));
    lg.item(30.0, "site link", |x, y| {
        format!(
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#64748b\" stroke-width=\"1.5\"/>",
            num(x),
            num(y),
            num(x + 30.0),
            num(y)
        )
    });
    lg.item(30.0, "WAN link", |x, y| {
        format!(
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#b91c1c\" stroke-width=\"3\"/>",
            num(x),
            num(y),
            num(x + 30.0),
            num(y)
        )
    });
    if compact {
        for (role, label) in [
            (NodeRole::Worker, "worker (compact site)"),
            (NodeRole::ControlPlane, "control plane (compact)"),
            (NodeRole::RouteReflector, "RR (compact)"),
        ] {
            lg.item(12.0, label, |x, y| {
                let (fill, stroke) = role.look();
                marker_shape(role, x + 6.0, y, fill, stroke)
            });
        }
    }
    let note_y = lg.bottom + 16.0;
    text(&mut lg.out, PAD, note_y, 10.0, "start", " fill=\"#475569\"", &rr_note(v));
    lg.out.push_str("</g>\n");
    (lg.out, note_y + 6.0)
}

/// The topology as an inline `<svg>`: sites as boxes left and right of the WAN (more sites: in a row above and a
/// row below it), each with its bridge and nodes; RRs amber hexagons; a legend. Every node is a
/// `<g class="node" data-node data-site data-cluster data-role>` with a hover `<title>`; every drawn link a
/// `<g class="link">` (`class="link wan"` when it ends on the WAN). A site of more than [`COMPACT_ABOVE`] nodes is
/// a grid of markers with its counts, its member links not drawn one by one. No scripts, no external references:
/// presentation attributes and a `<style>` scoped to `svg.topo-svg`.
pub fn topology_svg(t: &Topology) -> String {
    let v = View::of(t);
    let ns = v.sites.len();
    let mut lays: Vec<SiteLayout> = Vec::with_capacity(ns);
    let mut pos: Vec<(f64, f64)> = Vec::with_capacity(ns);
    let wan = v.wan.as_deref().and_then(|w| v.nodes.get(w));
    let wan_r = wan.map(wan_radius).unwrap_or(0.0);
    let unsited: Vec<&str> = v.unsited.iter().map(String::as_str).collect();
    let (u_w, u_h) = (node_box_w(&v, &unsited), node_box_h(&v, &unsited));
    let mut unsited_pos: Vec<(f64, f64)> = Vec::new();
    let wan_text_right;
    let (wan_x, wan_y, content_w, content_h);
    if ns <= 2 {
        wan_text_right = false;
        let imp_w = v
            .links
            .iter()
            .filter(|l| l.wan)
            .map(|l| {
                let i =
                    if Some(l.link.a.node.as_str()) == v.wan.as_deref() { &l.link.a.iface } else { &l.link.b.iface };
                v.t.impairments.get(i).map(|imp| text_w(&format!("out of {i}: {imp}"), 9.0)).unwrap_or(0.0)
            })
            .fold(0.0, f64::max);
        let wc = (2.0 * wan_r + 150.0).max(imp_w + 40.0).max(u_w + 40.0).max(240.0);
        let mut x = PAD;
        for i in 0..ns {
            let lay = layout_site(&v, i, false);
            if i == 1 {
                x += wc;
            }
            pos.push((x, TITLE_H));
            x += lay.w;
            lays.push(lay);
        }
        if ns < 2 {
            x += wc;
        }
        wan_x = if ns == 0 { PAD + wc / 2.0 } else { pos[0].0 + lays[0].w + wc / 2.0 };
        wan_y = TITLE_H + lays.first().map(|l| l.bridge.1).unwrap_or(60.0);
        let mut y = wan_y + wan_r + 48.0;
        for _ in &unsited {
            unsited_pos.push((wan_x, y + u_h / 2.0));
            y += u_h + 16.0;
        }
        content_w = x + PAD;
        content_h = lays.iter().map(|l| TITLE_H + l.h).fold(y, f64::max);
    } else {
        wan_text_right = true;
        let k = ns.div_ceil(2);
        for i in 0..ns {
            lays.push(layout_site(&v, i, i < k));
        }
        let band_w = |r: std::ops::Range<usize>| {
            let n = r.len();
            lays[r].iter().map(|l| l.w).sum::<f64>() + GAP * n.saturating_sub(1) as f64
        };
        let (top_w, bot_w) = (band_w(0..k), band_w(k..ns));
        let top_h = lays[..k].iter().map(|l| l.h).fold(0.0, f64::max);
        let bot_h = lays[k..].iter().map(|l| l.h).fold(0.0, f64::max);
        let mid_w = unsited.len() as f64 * (u_w + 20.0);
        let inner = top_w.max(bot_w).max(mid_w).max(2.0 * wan_r + 200.0);
        let mid_h = 150.0 + if unsited.is_empty() { 0.0 } else { u_h + 30.0 };
        content_w = inner + 2.0 * PAD;
        wan_x = content_w / 2.0;
        wan_y = TITLE_H + top_h + 75.0;
        let mut x = (content_w - top_w) / 2.0;
        for l in &lays[..k] {
            pos.push((x, TITLE_H + top_h - l.h));
            x += l.w + GAP;
        }
        let by = TITLE_H + top_h + mid_h;
        let mut x = (content_w - bot_w) / 2.0;
        for l in &lays[k..] {
            pos.push((x, by));
            x += l.w + GAP;
        }
        let mut ux = wan_x - mid_w / 2.0 + (u_w + 20.0) / 2.0;
        for _ in &unsited {
            unsited_pos.push((ux, wan_y + wan_r + 50.0 + u_h / 2.0));
            ux += u_w + 20.0;
        }
        content_h = by + bot_h;
    }

    // Where every drawn node is.
    let mut anchors: HashMap<&str, Anchor> = HashMap::new();
    for (i, s) in v.sites.iter().enumerate() {
        let (lay, (ox, oy)) = (&lays[i], pos[i]);
        anchors.insert(
            s.bridge.as_str(),
            Anchor { x: ox + lay.bridge.0, y: oy + lay.bridge.1, hw: lay.bridge_w / 2.0, hh: BRIDGE_H / 2.0 },
        );
        for sp in &lay.spots {
            anchors.insert(
                sp.name.as_str(),
                Anchor { x: ox + sp.x, y: oy + sp.y, hw: lay.node_w / 2.0, hh: lay.node_h / 2.0 },
            );
        }
    }
    if let Some(w) = wan {
        anchors.insert(w.name.as_str(), Anchor { x: wan_x, y: wan_y, hw: wan_r, hh: wan_r });
    }
    for (u, (x, y)) in unsited.iter().zip(&unsited_pos) {
        anchors.insert(u, Anchor { x: *x, y: *y, hw: u_w / 2.0, hh: u_h / 2.0 });
    }

    let title = format!("{} ({})", t.name, t.file.display());
    let sub = truncate(&summary(&v), 150);
    let any_compact = lays.iter().any(|l| l.compact);
    let width = content_w.max(text_w(&title, 14.0) + 2.0 * PAD).max(text_w(&sub, 10.0) + 2.0 * PAD).max(760.0);
    let (legend_svg, legend_bottom) = legend(&v, any_compact, content_h + 8.0, width - PAD);
    let height = legend_bottom + PAD;

    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"topo-svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\" font-family=\"{}\" style=\"max-width:100%;height:auto\">",
        xml(&format!("topology {}", t.name)),
        xml(FONT),
        w = num(width),
        h = num(height)
    );
    let _ = writeln!(o, "<title>{}</title>", xml(&format!("{title}: {}", summary(&v))));
    o.push_str("<style>svg.topo-svg text{dominant-baseline:auto;fill:#0f172a}svg.topo-svg g.node:hover>:first-child{stroke-width:3.5}svg.topo-svg g.link:hover line{stroke-width:4}</style>\n");
    let _ = writeln!(o, "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>", num(width), num(height));
    text(&mut o, PAD, 22.0, 14.0, "start", " font-weight=\"bold\"", &title);
    text(&mut o, PAD, 38.0, 10.0, "start", " fill=\"#475569\"", &sub);
    o.push('\n');
    for (i, s) in v.sites.iter().enumerate() {
        draw_site_frame(&mut o, &v, s, &lays[i], pos[i].0, pos[i].1);
    }
    for l in &v.links {
        match l.stub {
            Some((si, member_is_a)) => {
                let lay = &lays[si];
                if lay.compact {
                    continue;
                }
                let member = if member_is_a { &l.link.a.node } else { &l.link.b.node };
                if let Some(sp) = lay.spots.iter().find(|sp| &sp.name == member) {
                    draw_stub(&mut o, l, member_is_a, sp, lay, pos[si].0, pos[si].1);
                }
            }
            None => {
                if let (Some(a), Some(b)) = (anchors.get(l.link.a.node.as_str()), anchors.get(l.link.b.node.as_str())) {
                    draw_line_link(&mut o, &v, l, *a, *b);
                }
            }
        }
    }
    for (i, s) in v.sites.iter().enumerate() {
        let (lay, (ox, oy)) = (&lays[i], pos[i]);
        if let Some(b) = v.nodes.get(&s.bridge) {
            draw_bridge(&mut o, &v, b, ox + lay.bridge.0, oy + lay.bridge.1, lay.bridge_w);
        }
        for sp in &lay.spots {
            let Some(n) = v.nodes.get(&sp.name) else { continue };
            if lay.compact {
                draw_marker(&mut o, &v, n, ox + sp.x, oy + sp.y);
            } else {
                draw_node_box(&mut o, &v, n, ox + sp.x, oy + sp.y, lay.node_w, lay.node_h);
            }
        }
    }
    if let Some(w) = wan {
        draw_wan(&mut o, &v, w, wan_x, wan_y, wan_text_right);
    }
    for (u, (x, y)) in unsited.iter().zip(&unsited_pos) {
        if let Some(n) = v.nodes.get(*u) {
            draw_node_box(&mut o, &v, n, *x, *y, u_w, u_h);
        }
    }
    o.push_str(&legend_svg);
    o.push_str("</svg>\n");
    o
}

// ---------------------------------------------------------------------------------------------------------
// HTML

const PAGE_CSS: &str = "\
body.topo-page{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#0f172a;background:#fff}
.topo-page h1{font-size:20px;margin:0 0 4px}
.topo-page h2{font-size:15px;margin:24px 0 8px}
.topo-meta{color:#475569;font-size:13px;margin:0 0 16px}
.topo-figure{margin:0;overflow-x:auto;border:1px solid #e2e8f0;border-radius:8px;padding:8px}
table.topo-table{border-collapse:collapse;font-size:12px}
.topo-table th,.topo-table td{border:1px solid #e2e8f0;padding:3px 8px;text-align:left;vertical-align:top}
.topo-table th{background:#f1f5f9;position:sticky;top:0}
.topo-table tr.topo-rr td{background:#fef3c7}
.topo-table tr.topo-wan td{background:#fee2e2}
.topo-mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
";

fn row(o: &mut String, class: &str, cells: &[String]) {
    if class.is_empty() {
        o.push_str("<tr>");
    } else {
        let _ = write!(o, "<tr class=\"{class}\">");
    }
    for c in cells {
        let _ = write!(o, "<td>{}</td>", xml(c));
    }
    o.push_str("</tr>\n");
}

fn head(o: &mut String, cols: &[&str]) {
    o.push_str("<table class=\"topo-table\">\n<thead><tr>");
    for c in cols {
        let _ = write!(o, "<th>{}</th>", xml(c));
    }
    o.push_str("</tr></thead>\n<tbody>\n");
}

/// A complete, self-contained HTML document (inline CSS, no script, nothing fetched): the SVG, then tables of
/// the clusters, sites, nodes (name, kind, cluster, site, IP, role, labels) and links. Well-formed XML too
/// (void elements closed), so XML tools read it.
pub fn html_page(t: &Topology, title: &str) -> String {
    let v = View::of(t);
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    let _ = writeln!(o, "<title>{}</title>", xml(title));
    let _ = write!(o, "<style>\n{PAGE_CSS}</style>\n</head>\n<body class=\"topo-page\">\n");
    let _ = writeln!(o, "<h1>{}</h1>", xml(title));
    let _ = writeln!(
        o,
        "<p class=\"topo-meta\">Lab <b>{}</b> from <span class=\"topo-mono\">{}</span>: {}. {}</p>",
        xml(&t.name),
        xml(&t.file.display().to_string()),
        xml(&summary(&v)),
        xml(&rr_note(&v))
    );
    o.push_str("<figure class=\"topo-figure\">\n");
    o.push_str(&topology_svg(t));
    o.push_str("</figure>\n");

    o.push_str("<h2>Clusters</h2>\n");
    head(
        &mut o,
        &["cluster", "pods (IPPool)", "services", "AS", "IPIP", "calico-node interface", "nodes", "kind config"],
    );
    for c in &t.clusters {
        row(
            &mut o,
            "",
            &[
                c.name.clone(),
                c.pod_subnet.to_string(),
                c.service_subnet.map(|s| s.to_string()).unwrap_or_default(),
                c.as_number.to_string(),
                c.ipip_mode.clone(),
                c.node_interface.clone(),
                c.nodes.len().to_string(),
                c.config_file.display().to_string(),
            ],
        );
    }
    o.push_str("</tbody></table>\n");

    o.push_str("<h2>Sites</h2>\n");
    head(&mut o, &["site (bridge)", "subnet", "clusters", "nodes"]);
    for s in &v.sites {
        row(
            &mut o,
            "",
            &[s.bridge.clone(), s.subnet.clone().unwrap_or_default(), s.clusters.join(", "), v.site_counts(s)],
        );
    }
    o.push_str("</tbody></table>\n");

    o.push_str("<h2>Nodes</h2>\n");
    head(&mut o, &["name", "kind", "cluster", "site", "IP", "role", "labels"]);
    for n in v.ordered() {
        let ip = match (n.ip, n.cluster.is_some()) {
            (Some(ip), true) => ip.to_string(),
            _ => n.addrs.iter().map(|(d, a)| format!("{d} {a}")).collect::<Vec<_>>().join(", "),
        };
        let mut role = role_text(n);
        if let Some(rr) = &n.rr {
            let _ = write!(role, " ({rr})");
        }
        let class = match n.role {
            NodeRole::RouteReflector => "topo-rr",
            NodeRole::Wan => "topo-wan",
            _ => "",
        };
        row(
            &mut o,
            class,
            &[
                n.name.clone(),
                n.kind.as_str().to_string(),
                n.cluster.clone().unwrap_or_default(),
                n.site.clone().unwrap_or_default(),
                ip,
                role,
                labels_text(&n.labels),
            ],
        );
    }
    o.push_str("</tbody></table>\n");

    o.push_str("<h2>Links</h2>\n");
    head(&mut o, &["#", "end A", "end B", "addresses", "crosses"]);
    for (i, l) in v.links.iter().enumerate() {
        let addrs: Vec<String> = [(&l.link.a, l.link.a_ipv4), (&l.link.b, l.link.b_ipv4)]
            .into_iter()
            .filter_map(|(e, ip)| ip.map(|ip| format!("{e} {ip}")))
            .collect();
        let crosses = match (l.wan, l.stub) {
            (true, _) => "WAN".to_string(),
            (false, Some((si, _))) => format!("site {}", v.sites[si].bridge),
            (false, None) => String::new(),
        };
        row(
            &mut o,
            if l.wan { "topo-wan" } else { "" },
            &[(i + 1).to_string(), l.link.a.to_string(), l.link.b.to_string(), addrs.join(", "), crosses],
        );
    }
    o.push_str("</tbody></table>\n</body>\n</html>\n");
    o
}

#[cfg(test)]
#[path = "topology_view_tests.rs"]
mod tests;
