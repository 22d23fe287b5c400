//! Topologies: a containerlab topology file (`topologies/*.clab.yml`) plus the kind cluster configs its
//! `k8s-kind` nodes name. One format for both backends: the kind backend hands the file to containerlab as it
//! is; the twin reads the same facts from this model.
//!
//! - A cluster is a `k8s-kind` node; its `startup-config` is a kind `Cluster` config (nodes, roles, labels,
//!   `podSubnet` = the Calico IPPool CIDR, `disableDefaultCNI: true`). The cluster's name is the node's name.
//! - Its node containers appear as `ext-container` nodes named as kind names them (`<cluster>-control-plane`,
//!   `<cluster>-worker`, `<cluster>-worker2`, …), linked to the rest of the lab.
//! - `bridge` nodes are sites (one L3 subnet each), `linux` nodes are the WAN and external routers.
//! - Addressing and static routes are the nodes' containerlab `exec` commands (`ip addr add`, `ip route add`),
//!   interpreted here as the kernel would run them, in order.
//! - Facts neither tool has a field for are containerlab `labels` on the `k8s-kind` node, prefixed `rrlab.io/`
//!   (see [`LABEL_CALICO_AS`], [`LABEL_IPIP_MODE`], [`LABEL_NODE_INTERFACE`]).
//!
//! Everything here is pure: [`parse`] takes the file's text and a reader for the configs it names.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::fields::{Fields, Origin};
use super::yaml::{self, Node, Pos, Value};
use super::InputError;

mod exec;
pub mod generator;
mod kind_config;
#[cfg(test)]
mod tests;

/// The AS number calico-node starts with (the k8s-kind node's label; Calico's default when absent).
pub const LABEL_CALICO_AS: &str = "rrlab.io/calico-as";
/// The default IPPool's IPIP mode, `Always`, `CrossSubnet` or `Never` (`CALICO_IPV4POOL_IPIP`; default `Always`).
pub const LABEL_IPIP_MODE: &str = "rrlab.io/ipip-mode";
/// The interface calico-node autodetects its IP on (`IP_AUTODETECTION_METHOD=interface=<it>`; default `eth1`).
pub const LABEL_NODE_INTERFACE: &str = "rrlab.io/calico-node-interface";
/// The Kubernetes node names, comma-separated in kind's order (control planes, then workers), for a cluster
/// whose nodes are not named as kind names them (an imported cluster, `rrlab import`). Twin only: kind names
/// its nodes itself.
pub const LABEL_NODE_NAMES: &str = "rrlab.io/node-names";
/// A file of calicoctl/kubectl resources (relative to the topology) the cluster holds from the start, as if
/// applied right after Calico was installed (an imported cluster's pools, peers, BGP configuration, nodes).
pub const LABEL_CALICO_STATE: &str = "rrlab.io/calico-state";
pub const RRLAB_LABELS: &[&str] =
    &[LABEL_CALICO_AS, LABEL_IPIP_MODE, LABEL_NODE_INTERFACE, LABEL_NODE_NAMES, LABEL_CALICO_STATE];
pub const DEFAULT_AS: u32 = 64512;
pub const DEFAULT_IPIP_MODE: &str = "Always";
pub const DEFAULT_NODE_INTERFACE: &str = "eth1";

/// An error in a topology file or a kind config it names: `file:line:col: field X: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyError {
    pub file: String,
    /// 1-based; 0 when the error has no position (an unreadable file).
    pub line: usize,
    pub column: usize,
    /// Dotted path, e.g. `topology.nodes.wan.exec[0]`.
    pub field: Option<String>,
    pub message: String,
}

impl TopologyError {
    fn at(file: &str, pos: Option<Pos>, field: Option<String>, message: impl Into<String>) -> TopologyError {
        let pos = pos.unwrap_or(Pos { line: 0, col: 0 });
        TopologyError { file: file.to_string(), line: pos.line, column: pos.col, field, message: message.into() }
    }
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field {field}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for TopologyError {}

impl From<InputError> for TopologyError {
    fn from(e: InputError) -> TopologyError {
        TopologyError::at(&e.file, e.pos, e.field, e.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    /// A kind cluster (not a container: containerlab runs `kind create cluster`).
    K8sKind,
    /// A container someone else runs: here, a kind cluster's node.
    ExtContainer,
    /// A plain container containerlab runs (the WAN emulator, an external router).
    Linux,
    /// A Linux bridge on the host: one site's L2 segment.
    Bridge,
}

impl NodeKind {
    pub const ALL: [NodeKind; 4] = [NodeKind::K8sKind, NodeKind::ExtContainer, NodeKind::Linux, NodeKind::Bridge];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::K8sKind => "k8s-kind",
            NodeKind::ExtContainer => "ext-container",
            NodeKind::Linux => "linux",
            NodeKind::Bridge => "bridge",
        }
    }

    pub fn from_name(s: &str) -> Option<NodeKind> {
        NodeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node of the topology, with `defaults`, `kinds` and `groups` already applied as containerlab applies them.
#[derive(Debug, Clone, PartialEq)]
pub struct TopoNode {
    pub name: String,
    pub kind: NodeKind,
    pub image: Option<String>,
    pub exec: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    /// Resolved against the topology file's directory; None when absent or embedded in the file.
    pub startup_config: Option<PathBuf>,
    /// Line of the node's name in the topology file.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub node: String,
    pub iface: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, self.iface)
    }
}

/// A veth link. For a bridge endpoint, `iface` is the veth's name in the host's namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub a: Endpoint,
    pub b: Endpoint,
    /// IPv4 addresses containerlab puts on the endpoints (the link's or endpoints' `ipv4`), if any.
    pub a_ipv4: Option<Ipv4Net>,
    pub b_ipv4: Option<Ipv4Net>,
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    ControlPlane,
    Worker,
}

/// One Kubernetes node of a kind cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterNode {
    /// The node container's name, which is also the Kubernetes node name.
    pub name: String,
    pub role: Role,
    /// Kubernetes node labels from the kind config.
    pub labels: BTreeMap<String, String>,
}

/// A kind cluster running Calico.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The k8s-kind node's name = the kind cluster's name.
    pub name: String,
    pub config_file: PathBuf,
    /// kind's `networking.podSubnet` = the Calico IPPool CIDR.
    pub pod_subnet: Ipv4Net,
    pub service_subnet: Option<Ipv4Net>,
    pub as_number: u32,
    /// `Always`, `CrossSubnet` or `Never`.
    pub ipip_mode: String,
    pub node_interface: String,
    /// In kind's order: control planes, then workers.
    pub nodes: Vec<ClusterNode>,
    /// Node names given by [`LABEL_NODE_NAMES`] (not kind's own): the kind backend cannot make this cluster.
    pub named_nodes: bool,
    /// Resources the cluster holds from the start ([`LABEL_CALICO_STATE`]), read and checked when the
    /// topology is loaded.
    pub calico_state: Option<CalicoState>,
}

/// A cluster's starting Calico state: the file and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct CalicoState {
    pub file: PathBuf,
    pub text: String,
}

impl Cluster {
    pub fn node(&self, name: &str) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// containerlab's lab name.
    pub name: String,
    pub file: PathBuf,
    /// containerlab's `prefix` (None: the default `clab`).
    pub prefix: Option<String>,
    pub nodes: BTreeMap<String, TopoNode>,
    pub links: Vec<Link>,
    pub clusters: Vec<Cluster>,
    /// Impairments declared on the WAN node's links (`rrlab.io/impair.<iface>` labels): what leaves the WAN by
    /// `<iface>`, i.e. one direction of that link, from the moment the lab is up.
    pub impairments: BTreeMap<String, crate::impair::Impairment>,
}

/// The label that declares an impairment on one of the WAN node's links: `rrlab.io/impair.eth2: "delay: 20ms,
/// jitter: 2ms"` impairs what leaves the WAN by eth2 (towards the site on that link).
pub const LABEL_IMPAIR_PREFIX: &str = "rrlab.io/impair.";

/// Read a topology file and every kind config it names.
pub fn load(path: &Path) -> Result<Topology, TopologyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TopologyError::at(&path.display().to_string(), None, None, format!("cannot read: {e}")))?;
    parse(path, &text, &|p: &Path| std::fs::read_to_string(p).map_err(|e| e.to_string()))
}

/// Parse a topology file's text; `read` reads the kind configs it names (paths resolved against `file`'s
/// directory).
pub fn parse(
    file: &Path,
    text: &str,
    read: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<Topology, TopologyError> {
    Parser { file, fname: file.display().to_string(), read }.run(text)
}

// ---------------------------------------------------------------------------------------------------------
// Reading

/// Node fields of containerlab's schema that rrlab accepts without modelling.
const CLAB_NODE_IGNORED: &[&str] = &[
    "aliases",
    "auto-remove",
    "binds",
    "cap-add",
    "certificate",
    "cgroup-parent",
    "cgroupns-mode",
    "cmd",
    "components",
    "config",
    "cpu",
    "cpu-set",
    "credentials",
    "devices",
    "dns",
    "enforce-startup-config",
    "entrypoint",
    "env-files",
    "extras",
    "healthcheck",
    "hostname",
    "image-pull-policy",
    "license",
    "link-apply-mode",
    "memory",
    "mgmt-ipv4",
    "mgmt-ipv6",
    "network-mode",
    "pid-mode",
    "ports",
    "privileged",
    "restart-policy",
    "runtime",
    "security-opts",
    "shm-size",
    "stages",
    "startup-delay",
    "suppress-startup-config",
    "sysctls",
    "tmpfs",
    "type",
    "user",
    "volumes",
];

#[derive(Debug, Clone)]
struct Spanned {
    text: String,
    pos: Option<Pos>,
}

/// One `node-config` object (a node, a group, a kind's or the defaults' settings), before inheritance.
#[derive(Debug, Clone, Default)]
struct NodeCfg {
    kind: Option<Spanned>,
    image: Option<Spanned>,
    exec: Option<Vec<Spanned>>,
    labels: Vec<(String, Spanned)>,
    env: Vec<(String, String)>,
    startup_config: Option<Spanned>,
    group: Option<Spanned>,
}

/// A string→scalar map with each value's position.
fn spanned_map(f: &Fields, key: &str) -> Result<Vec<(String, Spanned)>, InputError> {
    let mut out = Vec::new();
    if let Some(n) = f.get(key) {
        let Value::Map(entries) = &n.value else {
            return Err(f.err(Some(n), key, format!("expected a mapping, found {}", n.type_name())));
        };
        for (k, kp, v) in entries {
            let text = match &v.value {
                Value::Null => String::new(),
                _ => v.scalar_text().ok_or_else(|| {
                    f.err(Some(v), &format!("{key}.{k}"), format!("expected a string, found {}", v.type_name()))
                })?,
            };
            out.push((k.clone(), Spanned { text, pos: v.pos.or(Some(*kp)) }));
        }
    }
    Ok(out)
}

fn spanned_string(f: &Fields, key: &str) -> Result<Option<Spanned>, InputError> {
    Ok(f.string(key)?.map(|text| Spanned { text, pos: f.get(key).and_then(|n| n.pos) }))
}

fn read_node_cfg(f: &Fields) -> Result<NodeCfg, InputError> {
    let exec = match f.get("exec") {
        None => None,
        Some(n) => match &n.value {
            Value::Seq(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| match &it.value {
                        Value::Str(s) => Ok(Spanned { text: s.clone(), pos: it.pos }),
                        _ => Err(f.err(
                            Some(it),
                            &format!("exec[{i}]"),
                            format!("expected a command string, found {}", it.type_name()),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            _ => return Err(f.err(Some(n), "exec", format!("expected a list of commands, found {}", n.type_name()))),
        },
    };
    let cfg = NodeCfg {
        kind: spanned_string(f, "kind")?,
        image: spanned_string(f, "image")?,
        exec,
        labels: spanned_map(f, "labels")?,
        env: spanned_map(f, "env")?.into_iter().map(|(k, v)| (k, v.text)).collect(),
        startup_config: spanned_string(f, "startup-config")?,
        group: spanned_string(f, "group")?,
    };
    f.finish(CLAB_NODE_IGNORED)?;
    Ok(cfg)
}

fn valid_name(s: &str, extra: &[char]) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') || extra.contains(&c))
}

/// The names of [`LABEL_NODE_NAMES`]: containerlab node names (also Kubernetes node names), each once.
fn node_names(text: &str) -> Result<Vec<String>, String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for n in text.split(',').map(str::trim) {
        if !valid_name(n, &[]) || n.chars().any(|c| c.is_ascii_uppercase() || c == '_') {
            return Err(format!("{n:?}: node names are lower-case letters, digits, '.' and '-' (RFC 1123)"));
        }
        if !seen.insert(n.to_string()) {
            return Err(format!("{n:?} is named twice"));
        }
        out.push(n.to_string());
    }
    Ok(out)
}

fn valid_iface(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.contains(['/', ':'])
        && !s.chars().any(char::is_whitespace)
}

struct Parser<'a> {
    file: &'a Path,
    fname: String,
    read: &'a dyn Fn(&Path) -> Result<String, String>,
}

/// Per-node parse state kept for validation (positions the public model does not carry).
struct NodeExtra {
    exec_pos: Vec<Option<Pos>>,
    labels: Vec<(String, Spanned)>,
    startup: Option<Spanned>,
    pos: Option<Pos>,
}

/// Where each cluster node container comes from: (kind config file, position of its entry).
type Origins = BTreeMap<String, (String, Option<Pos>)>;

/// Where a link endpoint was written: the link's line.
struct EpPos {
    line: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, pos: Option<Pos>, field: &str, message: impl Into<String>) -> TopologyError {
        TopologyError::at(&self.fname, pos, if field.is_empty() { None } else { Some(field.to_string()) }, message)
    }

    fn run(&self, text: &str) -> Result<Topology, TopologyError> {
        let docs = yaml::parse_documents(text).map_err(|e| self.err(Some(e.pos), "", e.message))?;
        let root = match docs.as_slice() {
            [d] => &d.root,
            [] => return Err(self.err(None, "", "empty topology file: expected name and topology")),
            [_, d, ..] => return Err(self.err(d.root.pos, "", "a containerlab topology file holds one document")),
        };
        let origin = Origin::new(&self.fname, None);
        let f = Fields::new(&origin, root, "")?;
        let name = f.required_string("name")?;
        if !valid_name(&name, &[]) {
            return Err(f
                .err(
                    f.get("name"),
                    "name",
                    format!("{name:?}: containerlab lab names match ^[a-zA-Z0-9][a-zA-Z0-9-._]*$"),
                )
                .into());
        }
        let prefix = f.string("prefix")?;
        let Some(topo) = f.sub("topology")? else {
            return Err(f.err(None, "topology", "is required (topology.nodes and topology.links)").into());
        };
        f.finish(&["mgmt", "settings", "debug"])?;

        // defaults, kinds, groups
        let defaults = match topo.sub("defaults")? {
            Some(d) => read_node_cfg(&d)?,
            None => NodeCfg::default(),
        };
        let mut kinds: BTreeMap<NodeKind, NodeCfg> = BTreeMap::new();
        if let Some(k) = topo.get("kinds") {
            let Value::Map(entries) = &k.value else {
                return Err(topo.err(Some(k), "kinds", format!("expected a mapping, found {}", k.type_name())).into());
            };
            for (kname, kpos, v) in entries {
                let field = format!("topology.kinds.{kname}");
                let Some(kind) = NodeKind::from_name(kname) else {
                    return Err(self.err(Some(*kpos), &field, unknown_kind(kname)));
                };
                let cfg =
                    if v.is_null() { NodeCfg::default() } else { read_node_cfg(&Fields::new(&origin, v, &field)?)? };
                kinds.insert(kind, cfg);
            }
        }
        let mut groups: BTreeMap<String, NodeCfg> = BTreeMap::new();
        if let Some(g) = topo.get("groups") {
            let Value::Map(entries) = &g.value else {
                return Err(topo.err(Some(g), "groups", format!("expected a mapping, found {}", g.type_name())).into());
            };
            for (gname, _, v) in entries {
                let field = format!("topology.groups.{gname}");
                let cfg =
                    if v.is_null() { NodeCfg::default() } else { read_node_cfg(&Fields::new(&origin, v, &field)?)? };
                groups.insert(gname.clone(), cfg);
            }
        }

        // nodes
        let Some(nodes_node) = topo.get("nodes") else {
            return Err(topo.err(None, "nodes", "is required: a topology has nodes").into());
        };
        let Value::Map(node_entries) = &nodes_node.value else {
            return Err(topo
                .err(Some(nodes_node), "nodes", format!("expected a mapping, found {}", nodes_node.type_name()))
                .into());
        };
        if node_entries.is_empty() {
            return Err(topo.err(Some(nodes_node), "nodes", "is empty: a topology has nodes").into());
        }
        let mut nodes = BTreeMap::new();
        let mut extra: BTreeMap<String, NodeExtra> = BTreeMap::new();
        for (nname, npos, v) in node_entries {
            let field = format!("topology.nodes.{nname}");
            if !valid_name(nname, &['|']) {
                return Err(self.err(
                    Some(*npos),
                    &field,
                    format!("{nname:?}: containerlab node names match ^[a-zA-Z0-9][a-zA-Z0-9-._|]*$"),
                ));
            }
            let own = if v.is_null() { NodeCfg::default() } else { read_node_cfg(&Fields::new(&origin, v, &field)?)? };
            let group = match &own.group {
                None => None,
                Some(g) => Some(groups.get(&g.text).ok_or_else(|| {
                    self.err(
                        g.pos,
                        &format!("{field}.group"),
                        format!("unknown group {:?} (not in topology.groups)", g.text),
                    )
                })?),
            };
            let kind_s = own
                .kind
                .clone()
                .or_else(|| group.and_then(|g| g.kind.clone()))
                .or_else(|| defaults.kind.clone())
                .ok_or_else(|| {
                    self.err(Some(*npos), &field, "has no kind (set kind on the node, its group or topology.defaults)")
                })?;
            let kind = NodeKind::from_name(&kind_s.text).ok_or_else(|| {
                self.err(kind_s.pos.or(Some(*npos)), &format!("{field}.kind"), unknown_kind(&kind_s.text))
            })?;
            let empty = NodeCfg::default();
            let kcfg = kinds.get(&kind).unwrap_or(&empty);
            // containerlab's precedence: node, then group, then kind, then defaults.
            let layers: Vec<&NodeCfg> =
                [Some(&own), group, Some(kcfg), Some(&defaults)].into_iter().flatten().collect();
            let image = layers.iter().find_map(|l| l.image.clone()).map(|s| s.text);
            let exec = layers.iter().find_map(|l| l.exec.clone()).unwrap_or_default();
            let startup = layers.iter().find_map(|l| l.startup_config.clone());
            let mut labels: Vec<(String, Spanned)> = Vec::new();
            let mut env = BTreeMap::new();
            for l in layers.iter().rev() {
                for (k, v) in &l.labels {
                    labels.retain(|(x, _)| x != k);
                    labels.push((k.clone(), v.clone()));
                }
                env.extend(l.env.iter().cloned());
            }
            if kind == NodeKind::Linux && image.is_none() {
                return Err(self.err(
                    Some(*npos),
                    &field,
                    "a linux node needs an image (on the node, its group, topology.kinds.linux or topology.defaults)",
                ));
            }
            if matches!(kind, NodeKind::K8sKind | NodeKind::Bridge) {
                if let Some(e) = exec.first() {
                    return Err(self.err(
                        e.pos,
                        &format!("{field}.exec"),
                        format!("containerlab runs no exec on a {kind} node (it is not a container); put the commands on the nodes linked to it"),
                    ));
                }
            }
            let startup_config = match (&startup, kind) {
                (Some(s), _) if s.text.contains('\n') => None,
                (Some(s), _) => Some(self.resolve(&s.text)),
                _ => None,
            };
            nodes.insert(
                nname.clone(),
                TopoNode {
                    name: nname.clone(),
                    kind,
                    image,
                    exec: exec.iter().map(|e| e.text.clone()).collect(),
                    labels: labels.iter().map(|(k, v)| (k.clone(), v.text.clone())).collect(),
                    env,
                    startup_config,
                    line: npos.line,
                },
            );
            extra.insert(
                nname.clone(),
                NodeExtra { exec_pos: exec.iter().map(|e| e.pos).collect(), labels, startup, pos: Some(*npos) },
            );
        }

        // links
        let mut links = Vec::new();
        let mut ep_seen: BTreeMap<Endpoint, EpPos> = BTreeMap::new();
        let mut host_ifaces: BTreeMap<String, EpPos> = BTreeMap::new();
        for (i, l) in topo.list("links")?.iter().enumerate() {
            let field = format!("topology.links[{i}]");
            let line = l.node.pos.map(|p| p.line).unwrap_or(0);
            if let Some(t) = l.string("type")? {
                if t != "veth" {
                    return Err(l
                        .err(
                            l.get("type"),
                            "type",
                            format!("link type {t:?} is not supported: rrlab wires nodes with veth links"),
                        )
                        .into());
                }
            }
            let Some(eps) = l.get("endpoints") else {
                return Err(l.err(None, "endpoints", "is required: a link has two endpoints").into());
            };
            let Value::Seq(items) = &eps.value else {
                return Err(l
                    .err(Some(eps), "endpoints", format!("expected a list of two endpoints, found {}", eps.type_name()))
                    .into());
            };
            if items.len() != 2 {
                return Err(l
                    .err(Some(eps), "endpoints", format!("a link has exactly two endpoints, found {}", items.len()))
                    .into());
            }
            let mut ends = Vec::new();
            for (j, it) in items.iter().enumerate() {
                let efield = format!("{field}.endpoints[{j}]");
                let (ep, ip) = self.endpoint(&origin, it, &efield)?;
                ends.push((ep, ip, it.pos, efield));
            }
            let mut ipv4 = [None, None];
            if let Some(list) = l.string_list("ipv4")? {
                if list.len() > 2 {
                    return Err(l.err(l.get("ipv4"), "ipv4", "at most two addresses, one per endpoint").into());
                }
                for (j, s) in list.iter().enumerate() {
                    if !s.is_empty() {
                        ipv4[j] = Some(exec::parse_prefix(s).map_err(|m| l.err(l.get("ipv4"), "ipv4", m))?);
                    }
                }
            }
            l.finish(&["mtu", "vars", "labels", "ipv6"])?;
            for (j, (ep, ip, pos, efield)) in ends.iter_mut().enumerate() {
                if ip.is_some() && ipv4[j].is_some() {
                    return Err(self.err(
                        *pos,
                        efield,
                        "the address is given twice (on the endpoint and in the link's ipv4)",
                    ));
                }
                if ip.is_none() {
                    *ip = ipv4[j];
                }
                let Some(n) = nodes.get(&ep.node) else {
                    return Err(self.err(*pos, efield, format!("unknown node {:?} (not in topology.nodes)", ep.node)));
                };
                match n.kind {
                    NodeKind::K8sKind => {
                        return Err(self.err(
                            *pos,
                            efield,
                            format!(
                                "{:?} is a k8s-kind node (a whole cluster, not a container); link its node containers ({0}-control-plane, {0}-worker, …) instead",
                                ep.node
                            ),
                        ))
                    }
                    NodeKind::Bridge if ip.is_some() => {
                        return Err(self.err(*pos, efield, "a bridge endpoint takes no address (it is a port of the host's bridge)"))
                    }
                    _ => {}
                }
                if !valid_iface(&ep.iface) {
                    return Err(self.err(
                        *pos,
                        efield,
                        format!(
                            "{:?} is not a Linux interface name (1 to 15 characters, no '/', ':' or spaces)",
                            ep.iface
                        ),
                    ));
                }
                if let Some(prev) = ep_seen.get(ep) {
                    return Err(self.err(
                        *pos,
                        efield,
                        format!("interface {ep} is already used by the link at line {}", prev.line),
                    ));
                }
                if n.kind == NodeKind::Bridge {
                    if let Some(prev) = host_ifaces.get(&ep.iface) {
                        return Err(self.err(
                            *pos,
                            efield,
                            format!(
                                "host interface {} is already used by the link at line {} (bridge ports are veths in the host's namespace: their names must be unique across all bridges)",
                                ep.iface, prev.line
                            ),
                        ));
                    }
                    host_ifaces.insert(ep.iface.clone(), EpPos { line });
                }
                ep_seen.insert(ep.clone(), EpPos { line });
            }
            let mut it = ends.into_iter();
            let (Some((a, a_ipv4, _, _)), Some((b, b_ipv4, _, _))) = (it.next(), it.next()) else {
                continue;
            };
            links.push(Link { a, b, a_ipv4, b_ipv4, line });
        }
        topo.finish(&[])?;

        let mut topology = Topology {
            name,
            file: self.file.to_path_buf(),
            prefix,
            nodes,
            links,
            clusters: Vec::new(),
            impairments: BTreeMap::new(),
        };
        topology.impairments = self.impairments(&topology, &extra)?;
        let origins = self.clusters(&mut topology, &extra)?;
        self.check_membership(&topology, &extra, &origins)?;
        self.check_addressing(&topology, &extra)?;
        Ok(topology)
    }

    fn resolve(&self, p: &str) -> PathBuf {
        self.file.parent().unwrap_or(Path::new("")).join(p)
    }

    fn endpoint(&self, origin: &Origin, it: &Node, field: &str) -> Result<(Endpoint, Option<Ipv4Net>), TopologyError> {
        match &it.value {
            Value::Str(s) => {
                let ep = s
                    .split_once(':')
                    .filter(|(n, i)| !n.is_empty() && !i.is_empty() && !s.chars().any(char::is_whitespace))
                    .map(|(n, i)| Endpoint { node: n.to_string(), iface: i.to_string() })
                    .ok_or_else(|| {
                        self.err(it.pos, field, format!("malformed endpoint {s:?}: expected \"node:interface\""))
                    })?;
                Ok((ep, None))
            }
            Value::Map(_) => {
                let f = Fields::new(origin, it, field)?;
                let node = f.required_string("node")?;
                let iface = f.required_string("interface")?;
                let ip = match f.string("ipv4")? {
                    Some(s) if !s.is_empty() => {
                        Some(exec::parse_prefix(&s).map_err(|m| f.err(f.get("ipv4"), "ipv4", m))?)
                    }
                    _ => None,
                };
                f.finish(&["mac", "vars", "ipv6"])?;
                Ok((Endpoint { node, iface }, ip))
            }
            _ => Err(self.err(it.pos, field, format!("expected \"node:interface\", found {}", it.type_name()))),
        }
    }

    /// `rrlab.io/impair.<iface>` labels of the WAN (linux) node: each names one of its links and holds an
    /// impairment in the operator's syntax.
    fn impairments(
        &self,
        topo: &Topology,
        extra: &BTreeMap<String, NodeExtra>,
    ) -> Result<BTreeMap<String, crate::impair::Impairment>, TopologyError> {
        let mut out = BTreeMap::new();
        for (name, x) in extra {
            for (k, v) in &x.labels {
                let Some(iface) = k.strip_prefix(LABEL_IMPAIR_PREFIX) else { continue };
                let lfield = format!("topology.nodes.{name}.labels.{k}");
                if topo.nodes.get(name).map(|n| n.kind) != Some(NodeKind::Linux) {
                    return Err(self.err(
                        v.pos,
                        &lfield,
                        "impairments belong on the WAN's links: label the linux node",
                    ));
                }
                let ifaces: Vec<&str> = topo.links_of(name).into_iter().map(|(i, _)| i).collect();
                if !ifaces.contains(&iface) {
                    return Err(self.err(
                        v.pos,
                        &lfield,
                        format!("{name} has no link on {iface:?} (its links: {})", ifaces.join(", ")),
                    ));
                }
                let imp =
                    crate::impair::Impairment::parse(&v.text).map_err(|e| self.err(v.pos, &lfield, e.to_string()))?;
                out.insert(iface.to_string(), imp);
            }
        }
        Ok(out)
    }

    /// Build every k8s-kind node's cluster from its labels and kind config.
    /// Returns where each cluster node container comes from: (kind config file, its entry's position).
    fn clusters(&self, topo: &mut Topology, extra: &BTreeMap<String, NodeExtra>) -> Result<Origins, TopologyError> {
        let mut origins = Origins::new();
        let names: Vec<String> = topo.nodes.keys().cloned().collect();
        for name in &names {
            let node = &topo.nodes[name];
            let x = &extra[name];
            let field = format!("topology.nodes.{name}");
            for (k, v) in &x.labels {
                if !k.starts_with("rrlab.io/") || k.starts_with(LABEL_IMPAIR_PREFIX) {
                    continue;
                }
                let lfield = format!("{field}.labels.{k}");
                if node.kind != NodeKind::K8sKind {
                    return Err(self.err(
                        v.pos,
                        &lfield,
                        "rrlab.io/ labels describe a cluster: they belong on its k8s-kind node",
                    ));
                }
                if !RRLAB_LABELS.contains(&k.as_str()) {
                    return Err(self.err(
                        v.pos,
                        &lfield,
                        format!("unknown rrlab label {k:?} (known: {})", RRLAB_LABELS.join(", ")),
                    ));
                }
            }
            if node.kind != NodeKind::K8sKind {
                continue;
            }
            if !valid_name(name, &[]) || name.chars().any(|c| c.is_ascii_uppercase() || c == '_') {
                return Err(self.err(
                    x.pos,
                    &field,
                    format!("{name:?}: kind cluster names are lower-case letters, digits, '.' and '-'"),
                ));
            }
            let label = |k: &str| x.labels.iter().find(|(n, _)| n == k).map(|(_, v)| v);
            let as_number = match label(LABEL_CALICO_AS) {
                None => DEFAULT_AS,
                Some(v) => v.text.parse::<u32>().ok().filter(|a| *a > 0).ok_or_else(|| {
                    self.err(
                        v.pos,
                        &format!("{field}.labels.{LABEL_CALICO_AS}"),
                        format!("{:?} is not an AS number (1..=4294967295)", v.text),
                    )
                })?,
            };
            let ipip_mode = match label(LABEL_IPIP_MODE) {
                None => DEFAULT_IPIP_MODE.to_string(),
                Some(v) if matches!(v.text.as_str(), "Always" | "CrossSubnet" | "Never") => v.text.clone(),
                Some(v) => {
                    return Err(self.err(
                        v.pos,
                        &format!("{field}.labels.{LABEL_IPIP_MODE}"),
                        format!("{:?}: an IPPool's ipipMode is Always, CrossSubnet or Never", v.text),
                    ))
                }
            };
            let node_interface = match label(LABEL_NODE_INTERFACE) {
                None => DEFAULT_NODE_INTERFACE.to_string(),
                Some(v) if valid_iface(&v.text) => v.text.clone(),
                Some(v) => {
                    return Err(self.err(
                        v.pos,
                        &format!("{field}.labels.{LABEL_NODE_INTERFACE}"),
                        format!("{:?} is not an interface name", v.text),
                    ))
                }
            };
            let Some(sc) = &x.startup else {
                return Err(self.err(
                    x.pos,
                    &field,
                    "a k8s-kind node needs startup-config: a kind Cluster config with disableDefaultCNI: true and the podSubnet Calico uses (without it kind makes a one-node cluster with kindnet)",
                ));
            };
            let sfield = format!("{field}.startup-config");
            let (config_file, text, offset) = if sc.text.contains('\n') {
                (self.file.to_path_buf(), sc.text.clone(), sc.pos.map(|p| p.line).unwrap_or(0))
            } else if sc.text.contains("://") {
                return Err(self.err(sc.pos, &sfield, "rrlab reads kind configs from local files, not URLs"));
            } else {
                let path = self.resolve(&sc.text);
                let text = (self.read)(&path).map_err(|e| {
                    self.err(sc.pos, &sfield, format!("cannot read kind config {}: {e}", path.display()))
                })?;
                (path, text, 0)
            };
            let cfg = kind_config::parse(&config_file.display().to_string(), &text, offset, name)?;
            let mut names = kind_config::container_names(name, &cfg.nodes);
            let named_nodes = match label(LABEL_NODE_NAMES) {
                None => false,
                Some(v) => {
                    let lfield = format!("{field}.labels.{LABEL_NODE_NAMES}");
                    let given = node_names(&v.text).map_err(|m| self.err(v.pos, &lfield, m))?;
                    if given.len() != names.len() {
                        return Err(self.err(
                            v.pos,
                            &lfield,
                            format!("{} names for the {} nodes of {}", given.len(), names.len(), config_file.display()),
                        ));
                    }
                    for ((_, kind_name), real) in names.iter_mut().zip(given) {
                        *kind_name = real;
                    }
                    true
                }
            };
            let calico_state = match label(LABEL_CALICO_STATE) {
                None => None,
                Some(v) => {
                    let lfield = format!("{field}.labels.{LABEL_CALICO_STATE}");
                    let path = self.resolve(&v.text);
                    let text = (self.read)(&path)
                        .map_err(|e| self.err(v.pos, &lfield, format!("cannot read {}: {e}", path.display())))?;
                    // Checked now, so that a bad resource stops the lab before anything starts.
                    crate::model::resources::parse_resources(&path.display().to_string(), &text)
                        .map_err(TopologyError::from)?;
                    Some(CalicoState { file: path, text })
                }
            };
            let nodes = names
                .iter()
                .map(|(i, cname)| ClusterNode {
                    name: cname.clone(),
                    role: cfg.nodes[*i].role,
                    labels: cfg.nodes[*i].labels.clone(),
                })
                .collect();
            // Pod subnets of different clusters must not overlap.
            for other in &topo.clusters {
                if other.pod_subnet.contains(&cfg.pod_subnet.network())
                    || cfg.pod_subnet.contains(&other.pod_subnet.network())
                {
                    return Err(TopologyError::at(
                        &config_file.display().to_string(),
                        cfg.pod_subnet_pos,
                        Some("networking.podSubnet".into()),
                        format!(
                            "pod subnet {} of cluster {name} overlaps pod subnet {} of cluster {} ({}): pods of both clusters would get the same IPs",
                            cfg.pod_subnet,
                            other.pod_subnet,
                            other.name,
                            other.config_file.display()
                        ),
                    ));
                }
            }
            let config_file_name = config_file.display().to_string();
            topo.clusters.push(Cluster {
                name: name.clone(),
                config_file,
                pod_subnet: cfg.pod_subnet,
                service_subnet: cfg.service_subnet,
                as_number,
                ipip_mode,
                node_interface,
                nodes,
                named_nodes,
                calico_state,
            });
            for (i, cname) in names {
                origins.insert(cname, (config_file_name.clone(), cfg.nodes[i].pos));
            }
        }
        Ok(origins)
    }

    /// Every cluster node has an ext-container node, and every ext-container node is a cluster's node.
    fn check_membership(
        &self,
        topo: &Topology,
        extra: &BTreeMap<String, NodeExtra>,
        origins: &Origins,
    ) -> Result<(), TopologyError> {
        for c in &topo.clusters {
            for cn in &c.nodes {
                match topo.nodes.get(&cn.name) {
                    Some(n) if n.kind == NodeKind::ExtContainer => {}
                    Some(n) => {
                        return Err(self.err(
                            extra[&cn.name].pos,
                            &format!("topology.nodes.{}.kind", cn.name),
                            format!(
                                "{} is a node container of kind cluster {}: its kind must be ext-container, not {}",
                                cn.name, c.name, n.kind
                            ),
                        ))
                    }
                    None => {
                        let (file, pos) =
                            origins.get(&cn.name).cloned().unwrap_or((self.fname.clone(), extra[&c.name].pos));
                        return Err(TopologyError::at(
                            &file,
                            pos,
                            Some("nodes".into()),
                            format!(
                                "kind creates node container {} for this entry of cluster {}, but {} has no ext-container node {0}: add `{0}: {{kind: ext-container}}` there and link it, or drop this entry",
                                cn.name,
                                c.name,
                                self.fname
                            ),
                        ));
                    }
                }
            }
        }
        for (name, n) in &topo.nodes {
            if n.kind == NodeKind::ExtContainer && topo.cluster_of(name).is_none() {
                let known: Vec<String> = topo
                    .clusters
                    .iter()
                    .map(|c| {
                        format!(
                            "{}: {}",
                            c.name,
                            c.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    })
                    .collect();
                return Err(self.err(
                    extra[name].pos,
                    &format!("topology.nodes.{name}"),
                    format!(
                        "ext-container {name} is not a node of any kind cluster in this topology (kind names them <cluster>-control-plane, <cluster>-worker, <cluster>-worker2, …; here: {})",
                        if known.is_empty() { "no clusters".to_string() } else { known.join("; ") }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Run every node's exec as the kernel would; check that addresses are unique, outside the pod and service
    /// subnets, and that calico-node finds an address on its interface.
    fn check_addressing(&self, topo: &Topology, extra: &BTreeMap<String, NodeExtra>) -> Result<(), TopologyError> {
        let mut seen: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        for (name, node) in &topo.nodes {
            if !matches!(node.kind, NodeKind::ExtContainer | NodeKind::Linux) {
                continue;
            }
            let x = &extra[name];
            let (net, err) = topo.run_exec(name);
            let pos_of = |idx: Option<usize>| idx.and_then(|i| x.exec_pos.get(i).copied().flatten()).or(x.pos);
            let field_of = |idx: Option<usize>| match idx {
                Some(i) => format!("topology.nodes.{name}.exec[{i}]"),
                None => format!("topology.nodes.{name}"),
            };
            if let Some((idx, msg)) = err {
                return Err(self.err(pos_of(Some(idx)), &field_of(Some(idx)), format!("{:?}: {msg}", node.exec[idx])));
            }
            for (dev, addr, idx) in &net.addrs {
                if addr.addr().is_loopback() {
                    continue;
                }
                let here = format!("{name} {dev}");
                if let Some(other) = seen.get(&addr.addr()) {
                    return Err(self.err(
                        pos_of(*idx),
                        &field_of(*idx),
                        format!("duplicate IP {}: {here} and {other} both have it", addr.addr()),
                    ));
                }
                seen.insert(addr.addr(), here);
                for c in &topo.clusters {
                    let hit = if c.pod_subnet.contains(&addr.addr()) {
                        Some(("pod subnet", c.pod_subnet))
                    } else {
                        c.service_subnet.filter(|s| s.contains(&addr.addr())).map(|s| ("service subnet", s))
                    };
                    if let Some((what, net)) = hit {
                        return Err(self.err(
                            pos_of(*idx),
                            &field_of(*idx),
                            format!("{} on {dev} lies in {what} {net} of cluster {}: node and site addresses must stay out of it", addr.addr(), c.name),
                        ));
                    }
                }
            }
            if let Some(c) = topo.cluster_of(name) {
                if !net.addrs.iter().any(|(d, _, _)| *d == c.node_interface) {
                    return Err(self.err(
                        x.pos,
                        &format!("topology.nodes.{name}.exec"),
                        format!(
                            "calico-node on {name} autodetects its IP on {} ({LABEL_NODE_INTERFACE} of cluster {}), but no exec command gives {} an IPv4 address",
                            c.node_interface, c.name, c.node_interface
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn unknown_kind(k: &str) -> String {
    format!("unknown kind {k:?}: rrlab topologies use k8s-kind, ext-container, linux and bridge")
}

// ---------------------------------------------------------------------------------------------------------
// Queries

impl Topology {
    /// The node's linked interfaces with the addresses containerlab puts on them.
    fn link_state(&self, node: &str) -> (BTreeSet<String>, Vec<(String, Ipv4Net)>) {
        let mut ifaces = BTreeSet::new();
        let mut addrs = Vec::new();
        for l in &self.links {
            for (ep, ip) in [(&l.a, l.a_ipv4), (&l.b, l.b_ipv4)] {
                if ep.node == node {
                    ifaces.insert(ep.iface.clone());
                    if let Some(ip) = ip {
                        addrs.push((ep.iface.clone(), ip));
                    }
                }
            }
        }
        (ifaces, addrs)
    }

    fn run_exec(&self, node: &str) -> (exec::NodeNet, Option<(usize, String)>) {
        let Some(n) = self.nodes.get(node) else { return Default::default() };
        let (ifaces, initial) = self.link_state(node);
        exec::run(&initial, &ifaces, &n.exec)
    }

    /// Addresses each container node (ext-container, linux) gets from its links and exec commands, in the
    /// order they are added: node -> [(iface, address)].
    pub fn addresses(&self) -> BTreeMap<String, Vec<(String, Ipv4Net)>> {
        self.container_nodes()
            .map(|n| (n.to_string(), self.run_exec(n).0.addrs.into_iter().map(|(d, a, _)| (d, a)).collect()))
            .collect()
    }

    /// Static routes with a gateway each container node gets from exec: node -> [(dst, via, dev)].
    pub fn routes(&self) -> BTreeMap<String, Vec<(Ipv4Net, Ipv4Addr, Option<String>)>> {
        self.container_nodes()
            .map(|n| {
                let routes =
                    self.run_exec(n).0.routes.into_iter().filter_map(|(d, g, dev, _)| g.map(|g| (d, g, dev))).collect();
                (n.to_string(), routes)
            })
            .collect()
    }

    fn container_nodes(&self) -> impl Iterator<Item = &str> {
        self.nodes
            .values()
            .filter(|n| matches!(n.kind, NodeKind::ExtContainer | NodeKind::Linux))
            .map(|n| n.name.as_str())
    }

    /// The IP calico-node would pick for a cluster node: the first address on its cluster's `node_interface`.
    pub fn node_ip(&self, node: &str) -> Option<Ipv4Net> {
        let c = self.clusters.iter().find(|c| c.node(node).is_some())?;
        self.run_exec(node).0.addrs.into_iter().find(|(d, _, _)| *d == c.node_interface).map(|(_, a, _)| a)
    }

    /// The cluster a node container (or the k8s-kind node itself) belongs to.
    pub fn cluster_of(&self, node: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == node || c.node(node).is_some())
    }

    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The other end of a node's interface.
    pub fn peer_of(&self, node: &str, iface: &str) -> Option<&Endpoint> {
        self.links.iter().find_map(|l| {
            if l.a.node == node && l.a.iface == iface {
                Some(&l.b)
            } else if l.b.node == node && l.b.iface == iface {
                Some(&l.a)
            } else {
                None
            }
        })
    }

    /// The links of a node as (its interface, the other end), in file order.
    pub fn links_of(&self, node: &str) -> Vec<(&str, &Endpoint)> {
        let mut out = Vec::new();
        for l in &self.links {
            if l.a.node == node {
                out.push((l.a.iface.as_str(), &l.b));
            }
            if l.b.node == node {
                out.push((l.b.iface.as_str(), &l.a));
            }
        }
        out
    }

    /// Which site bridge (or directly linked node) a node is on: for a cluster node, what its
    /// `node_interface` is linked to; for another node, what its only link goes to (None with several links,
    /// as for the WAN node, which is on every site).
    /// A site name (its bridge) or a CIDR, as a CIDR: the subnet of the site's addressed nodes. Runbooks name
    /// WAN partitions this way on both backends.
    pub fn site_cidr(&self, s: &str) -> Result<String, String> {
        if s.contains('/') {
            return Ok(s.to_string());
        }
        let sites = self.sites();
        let nodes = sites.get(s).ok_or_else(|| {
            format!("no site {s:?} in the topology (sites: {})", sites.keys().cloned().collect::<Vec<_>>().join(", "))
        })?;
        nodes
            .iter()
            .find_map(|n| self.node_ip(n).map(|ip| ip.trunc().to_string()))
            .ok_or_else(|| format!("site {s} has no addressed node"))
    }

    pub fn site_of(&self, node: &str) -> Option<String> {
        if let Some(c) = self.clusters.iter().find(|c| c.node(node).is_some()) {
            return self.peer_of(node, &c.node_interface).map(|e| e.node.clone());
        }
        match self.links_of(node).as_slice() {
            [(_, peer)] => Some(peer.node.clone()),
            _ => None,
        }
    }

    /// Site bridges with the nodes linked to them, in link order.
    pub fn sites(&self) -> BTreeMap<String, Vec<String>> {
        self.nodes
            .values()
            .filter(|n| n.kind == NodeKind::Bridge)
            .map(|b| (b.name.clone(), self.links_of(&b.name).into_iter().map(|(_, e)| e.node.clone()).collect()))
            .collect()
    }

    /// The name of a node's container (or host bridge) once deployed: ext-containers and bridges keep their
    /// names; containerlab names its own containers `clab-<lab>-<node>` unless `prefix` says otherwise.
    pub fn container_name(&self, node: &str) -> String {
        match self.nodes.get(node).map(|n| n.kind) {
            Some(NodeKind::ExtContainer | NodeKind::Bridge | NodeKind::K8sKind) => node.to_string(),
            _ => match self.prefix.as_deref() {
                None => format!("clab-{}-{node}", self.name),
                Some("") => node.to_string(),
                Some("__lab-name") => format!("{}-{node}", self.name),
                Some(p) => format!("{p}-{}-{node}", self.name),
            },
        }
    }
}
