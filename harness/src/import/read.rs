//! Reading the operator's files: every document (or `List` item, or top-level sequence item) becomes a typed
//! input with where it came from. Calico kinds are decoded by the twin's own decoder
//! ([`crate::model::resources::decode`]), so that what is imported is exactly what `rrlab calicoctl apply`
//! accepts; fields it does not model are removed and reported, not silently lost. Kubernetes Nodes, Secrets
//! and the calico-node DaemonSet are read leniently: only the facts Calico uses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::model::fields::{Fields, Origin};
use crate::model::output::to_json;
use crate::model::resources::{decode, validate_label, validate_name, CalicoNode, Resource, CALICO_API};
use crate::model::yaml::{self, Node, Value};

use super::ImportError;

pub(super) const CRD_API: &str = "crd.projectcalico.org/v1";
/// What `rrlab import` reads (for the unknown-kind error).
pub(super) const KINDS: &str = "v1 Node and Secret, apps/v1 DaemonSet (calico-node), projectcalico.org/v3 or crd.projectcalico.org/v1 Node, IPPool, BGPConfiguration, BGPPeer, FelixConfiguration and BlockAffinity, and Lists of them";

/// Metadata the API server sets; stripped from everything imported.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "generateName",
];
/// Annotations that are copies of the object or of its server-side metadata (the first one holds a Secret's
/// value in clear when it was created with `kubectl apply`).
const SERVER_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration", "projectcalico.org/metadata"];

/// Where an input object is: file, line of its name (or of the object), and its path in the document
/// (`items[3]`, empty for a whole document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Loc {
    pub file: String,
    pub line: usize,
    pub path: String,
}

impl Loc {
    /// A field of this object, as errors name it (`items[3].metadata.annotations`).
    pub fn field(&self, f: &str) -> String {
        if self.path.is_empty() {
            f.to_string()
        } else {
            format!("{}.{f}", self.path)
        }
    }

    pub fn err(&self, field: &str, message: impl Into<String>) -> ImportError {
        ImportError::field(&self.file, self.line, &self.field(field), message)
    }
}

/// A `v1` Node: what Calico reads of it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct KubeNodeIn {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub internal_ip: Option<Ipv4Addr>,
    pub unschedulable: bool,
    pub loc: Loc,
    /// Line of each `projectcalico.org/*` annotation (for errors in their values).
    pub ann_lines: BTreeMap<String, usize>,
}

/// A Calico Node (calicoctl's view), decoded by the twin, with the InternalIP of `spec.addresses`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CalicoNodeIn {
    pub node: CalicoNode,
    pub internal_ip: Option<Ipv4Addr>,
    pub loc: Loc,
}

/// Any other Calico resource, decoded by the twin.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CalicoIn {
    pub resource: Resource,
    pub loc: Loc,
}

/// A Secret: its name and the names of its keys (values are never read).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SecretIn {
    pub name: String,
    pub namespace: Option<String>,
    pub keys: Vec<String>,
    pub loc: Loc,
}

/// The calico-node container's env: name and literal value (None: `valueFrom`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DaemonSetIn {
    pub name: String,
    pub namespace: Option<String>,
    pub env: Vec<(String, Option<String>)>,
    pub loc: Loc,
}

/// Everything read from the inputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Read {
    pub kube_nodes: Vec<KubeNodeIn>,
    pub calico_nodes: Vec<CalicoNodeIn>,
    pub resources: Vec<CalicoIn>,
    pub secrets: Vec<SecretIn>,
    pub daemonsets: Vec<DaemonSetIn>,
    /// (kind, field with `[]` for indexes) → names of the resources that had it: fields the twin does not model.
    pub unmodelled: BTreeMap<(String, String), Vec<String>>,
    /// Server-side metadata and status keys that were stripped.
    pub stripped: BTreeSet<String>,
    /// Other remarks made while reading (ignored DaemonSets, duplicates).
    pub remarks: Vec<String>,
}

/// Read every input file.
pub(super) fn read_all(inputs: &[(String, String)]) -> Result<Read, ImportError> {
    let mut out = Read::default();
    for (file, text) in inputs {
        let docs = yaml::parse_documents(text).map_err(|e| ImportError::Yaml {
            file: file.clone(),
            line: e.pos.line,
            message: e.message.clone(),
        })?;
        for d in &docs {
            walk(file, d.index, &d.root, "", &mut out)?;
        }
    }
    dedup(&mut out);
    Ok(out)
}

fn join(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_string()
    } else {
        format!("{path}.{seg}")
    }
}

fn line_of(n: &Node) -> usize {
    n.pos.map(|p| p.line).unwrap_or(0)
}

fn scalar(n: &Node, key: &str) -> Option<String> {
    n.get(key).and_then(Node::scalar_text)
}

/// One document, list item or sequence item.
fn walk(file: &str, doc: usize, node: &Node, path: &str, out: &mut Read) -> Result<(), ImportError> {
    match &node.value {
        Value::Seq(items) => {
            for (i, it) in items.iter().enumerate() {
                walk(file, doc, it, &format!("{path}[{i}]"), out)?;
            }
            Ok(())
        }
        Value::Map(_) => {
            let kind = scalar(node, "kind").unwrap_or_default();
            if kind.ends_with("List") {
                if let Some(items) = node.get("items") {
                    return match &items.value {
                        Value::Seq(list) => {
                            for (i, it) in list.iter().enumerate() {
                                walk(file, doc, it, &join(path, &format!("items[{i}]")), out)?;
                            }
                            Ok(())
                        }
                        Value::Null => Ok(()),
                        _ => Err(ImportError::field(
                            file,
                            line_of(items),
                            &join(path, "items"),
                            format!("expected a list, found {}", items.type_name()),
                        )),
                    };
                }
            }
            resource(file, doc, node, path, &kind, out)
        }
        Value::Null => Ok(()),
        _ => Err(ImportError::field(
            file,
            line_of(node),
            path,
            format!("expected a resource (a mapping with apiVersion and kind), found {}", node.type_name()),
        )),
    }
}

fn resource(file: &str, doc: usize, node: &Node, path: &str, kind: &str, out: &mut Read) -> Result<(), ImportError> {
    let api = scalar(node, "apiVersion").unwrap_or_default();
    let loc = Loc { file: file.to_string(), line: line_of(node), path: path.to_string() };
    let kind_line = node.get("kind").map(line_of).unwrap_or(loc.line);
    if kind.is_empty() {
        return Err(loc.err("kind", "is required (a resource has apiVersion and kind)"));
    }
    let api_err = |allowed: &str| {
        ImportError::field(
            file,
            node.get("apiVersion").map(line_of).unwrap_or(loc.line),
            &loc.field("apiVersion"),
            format!("apiVersion {api:?} is not valid for kind {kind} (expected {allowed})"),
        )
    };
    match kind {
        "Node" if api == "v1" => {
            let n = read_kube_node(file, node, path)?;
            out.kube_nodes.push(n);
        }
        "Node" | "IPPool" | "BGPConfiguration" | "BGPPeer" | "FelixConfiguration" | "BlockAffinity" => {
            if api != CALICO_API && api != CRD_API {
                return Err(api_err(&format!("{CALICO_API} or {CRD_API}")));
            }
            let internal_ip = if kind == "Node" { calico_internal_ip(node) } else { None };
            let (res, loc) = decode_calico(file, doc, node, path, kind, &api, out)?;
            match res {
                Resource::Node(n) => out.calico_nodes.push(CalicoNodeIn { node: n, internal_ip, loc }),
                r => out.resources.push(CalicoIn { resource: r, loc }),
            }
        }
        "Secret" => {
            if api != "v1" {
                return Err(api_err("v1"));
            }
            let s = read_secret(file, node, path)?;
            out.secrets.push(s);
        }
        "DaemonSet" => {
            if !matches!(api.as_str(), "apps/v1" | "apps/v1beta2" | "extensions/v1beta1") {
                return Err(api_err("apps/v1"));
            }
            if let Some(ds) = read_daemonset(file, node, path)? {
                out.daemonsets.push(ds);
            } else {
                out.remarks.push(format!(
                    "{}:{}: DaemonSet {} has no calico-node container: ignored",
                    file,
                    loc.line,
                    node.get("metadata").and_then(|m| scalar(m, "name")).unwrap_or_default()
                ));
            }
        }
        other => {
            return Err(ImportError::UnknownKind {
                file: file.to_string(),
                line: kind_line,
                field: loc.field("kind"),
                kind: other.to_string(),
                api,
            })
        }
    }
    Ok(())
}

/// Remove server-side metadata, copies of the object and `status` (all set by the API server).
fn strip_server_side(node: &mut Node, stripped: &mut BTreeSet<String>) {
    let Value::Map(entries) = &mut node.value else { return };
    let before = entries.len();
    entries.retain(|(k, _, _)| k != "status");
    if entries.len() != before {
        stripped.insert("status".into());
    }
    for (k, _, v) in entries.iter_mut() {
        if k != "metadata" {
            continue;
        }
        let Value::Map(meta) = &mut v.value else { continue };
        meta.retain(|(mk, _, _)| {
            let server = SERVER_METADATA.contains(&mk.as_str());
            if server {
                stripped.insert(format!("metadata.{mk}"));
            }
            !server
        });
        for (mk, _, mv) in meta.iter_mut() {
            if mk != "annotations" {
                continue;
            }
            if let Value::Map(anns) = &mut mv.value {
                anns.retain(|(ak, _, _)| {
                    let server = SERVER_ANNOTATIONS.contains(&ak.as_str());
                    if server {
                        stripped.insert(format!("metadata.annotations.{ak}"));
                    }
                    !server
                });
            }
        }
    }
}

/// A field path of a model error (`spec.communities[0].foo`) as segments: keys and `[i]` indexes.
fn segments(field: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(rest[..i].to_string());
            }
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                out.push(rest[..=end].to_string());
                rest = &rest[end + 1..];
            }
        } else {
            out.push(rest.to_string());
        }
    }
    out
}

/// Remove the value at `path` from a tree; false when it is not there.
fn remove_at(node: &mut Node, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else { return false };
    if let Some(idx) = first.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let Ok(i) = idx.parse::<usize>() else { return false };
        let Value::Seq(items) = &mut node.value else { return false };
        return match items.get_mut(i) {
            Some(it) if !rest.is_empty() => remove_at(it, rest),
            _ => false,
        };
    }
    let Value::Map(entries) = &mut node.value else { return false };
    if rest.is_empty() {
        let before = entries.len();
        entries.retain(|(k, _, _)| k != first);
        return entries.len() != before;
    }
    match entries.iter_mut().find(|(k, _, _)| k == first) {
        Some((_, _, v)) => remove_at(v, rest),
        None => false,
    }
}

/// A field path for the notes: indexes written `[]`, so that the same field of many items is one note.
fn note_path(path: &[String]) -> String {
    let mut s = String::new();
    for seg in path {
        if seg.starts_with('[') {
            s.push_str("[]");
        } else {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(seg);
        }
    }
    s
}

fn is_zero(v: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match v {
        J::Null => true,
        J::Bool(b) => !b,
        J::Number(n) => n.as_f64() == Some(0.0),
        J::String(s) => s.is_empty(),
        J::Array(a) => a.is_empty(),
        J::Object(o) => o.is_empty(),
    }
}

/// Leaf paths of `v` that carry a value (Go's omitempty zero values do not count).
fn leaves(v: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        serde_json::Value::Object(o) if !o.is_empty() => {
            for (k, x) in o {
                path.push(k.clone());
                leaves(x, path, out);
                path.pop();
            }
        }
        serde_json::Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                path.push(format!("[{i}]"));
                leaves(x, path, out);
                path.pop();
            }
        }
        x if !is_zero(x) => out.push(path.clone()),
        _ => {}
    }
}

fn has_path(v: &serde_json::Value, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else { return true };
    let next = match first.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(i) => i.parse::<usize>().ok().and_then(|i| v.as_array().and_then(|a| a.get(i))),
        None => v.as_object().and_then(|o| o.get(first)),
    };
    next.is_some_and(|n| has_path(n, rest))
}

/// Decode a Calico resource with the twin's decoder: server-side metadata stripped, `crd.projectcalico.org/v1`
/// read as v3 (same spec), fields the twin rejects as unknown removed and recorded, and fields it accepts but
/// does not model (absent from what it would write back) recorded.
fn decode_calico(
    file: &str,
    doc: usize,
    node: &Node,
    path: &str,
    kind: &str,
    api: &str,
    out: &mut Read,
) -> Result<(Resource, Loc), ImportError> {
    let mut tree = node.clone();
    strip_server_side(&mut tree, &mut out.stripped);
    if api == CRD_API && kind != "BlockAffinity" {
        if let Value::Map(entries) = &mut tree.value {
            for (k, _, v) in entries.iter_mut() {
                if k == "apiVersion" {
                    v.value = Value::Str(CALICO_API.to_string());
                }
            }
        }
    }
    let name = node.get("metadata").and_then(|m| scalar(m, "name")).unwrap_or_default();
    let line = node.get("metadata").and_then(|m| m.get("name")).map(line_of).unwrap_or(line_of(node));
    let loc = Loc { file: file.to_string(), line, path: path.to_string() };
    let input = tree.to_json();
    let origin = Origin::new(file, Some(doc));
    let mut removed: Vec<Vec<String>> = Vec::new();
    let res = loop {
        match decode(&origin, &tree) {
            Ok(r) => break r,
            Err(e) if e.message.starts_with("unknown field") => {
                let segs = segments(e.field.as_deref().unwrap_or_default());
                if segs.is_empty() || !remove_at(&mut tree, &segs) {
                    return Err(ImportError::from_input(e, path));
                }
                removed.push(segs);
            }
            Err(e) => return Err(ImportError::from_input(e, path)),
        }
    };
    let mut record = |segs: &[String]| {
        let names = out.unmodelled.entry((kind.to_string(), note_path(segs))).or_default();
        if names.last() != Some(&name) {
            names.push(name.clone());
        }
    };
    for segs in &removed {
        record(segs);
    }
    // What the twin accepted but would not write back: fields it does not model.
    let written = to_json(&res);
    let mut paths = Vec::new();
    leaves(&input, &mut Vec::new(), &mut paths);
    for p in paths {
        let first = p.first().map(String::as_str).unwrap_or_default();
        if matches!(first, "apiVersion" | "kind") || removed.iter().any(|r| p.starts_with(r)) {
            continue;
        }
        // A Calico Node's annotations are the Kubernetes node's; the plan reads and reports them.
        if kind == "Node" && p.len() >= 2 && p[0] == "metadata" && p[1] == "annotations" {
            continue;
        }
        // Report the outermost field the twin left out (`spec.addresses`, not each of its leaves).
        if let Some(k) = (1..=p.len()).find(|&k| !has_path(&written, &p[..k])) {
            record(&p[..k]);
        }
    }
    Ok((res, loc))
}

/// The InternalIP of a Calico Node's `spec.addresses` (calicoctl shows the node's addresses there).
fn calico_internal_ip(node: &Node) -> Option<Ipv4Addr> {
    let Value::Seq(list) = &node.get("spec")?.get("addresses")?.value else { return None };
    list.iter()
        .filter(|a| scalar(a, "type").as_deref() == Some("InternalIP"))
        .find_map(|a| scalar(a, "address").and_then(|s| Ipv4Addr::from_str(s.split('/').next()?).ok()))
}

/// A `v1` Node: name, labels, annotations, the InternalIP, `spec.unschedulable`. Other fields (taints,
/// capacity, conditions) do not reach Calico and are not read.
fn read_kube_node(file: &str, node: &Node, path: &str) -> Result<KubeNodeIn, ImportError> {
    let origin = Origin::new(file, None);
    let conv = |e| ImportError::from_input(e, "");
    let f = Fields::new(&origin, node, path).map_err(conv)?;
    let m = f.sub("metadata").map_err(conv)?.ok_or_else(|| {
        ImportError::field(file, line_of(node), &join(path, "metadata"), "is required (a Node has metadata.name)")
    })?;
    let name = m.required_string("name").map_err(conv)?;
    let line = m.get("name").map(line_of).unwrap_or(line_of(node));
    let loc = Loc { file: file.to_string(), line, path: path.to_string() };
    validate_name(&name).map_err(|e| loc.err("metadata.name", e))?;
    let labels = m.string_map("labels").map_err(conv)?;
    for (k, v) in &labels {
        validate_label(k, v).map_err(|e| {
            ImportError::field(
                file,
                m.pos_of("labels").map(|p| p.line).unwrap_or(line),
                &m.field_path(&format!("labels.{k}")),
                e,
            )
        })?;
    }
    let mut annotations = m.string_map("annotations").map_err(conv)?;
    for a in SERVER_ANNOTATIONS {
        annotations.remove(*a);
    }
    let unschedulable = match f.sub("spec").map_err(conv)? {
        Some(s) => s.bool("unschedulable").map_err(conv)?.unwrap_or(false),
        None => false,
    };
    let mut internal_ip = None;
    if let Some(st) = f.sub("status").map_err(conv)? {
        for a in st.list("addresses").map_err(conv)? {
            if a.string("type").map_err(conv)?.as_deref() != Some("InternalIP") {
                continue;
            }
            let addr = a.string("address").map_err(conv)?.unwrap_or_default();
            // Dual-stack nodes list an IPv4 and an IPv6 InternalIP; rrlab models IPv4.
            if let Ok(ip) = Ipv4Addr::from_str(&addr) {
                internal_ip.get_or_insert(ip);
            }
        }
    }
    let mut ann_lines = BTreeMap::new();
    if let Some(Value::Map(entries)) = node.get("metadata").and_then(|m| m.get("annotations")).map(|a| &a.value) {
        for (k, kp, v) in entries {
            if k.starts_with("projectcalico.org/") {
                ann_lines.insert(k.clone(), v.pos.map(|p| p.line).unwrap_or(kp.line));
            }
        }
    }
    Ok(KubeNodeIn { name, labels, annotations, internal_ip, unschedulable, loc, ann_lines })
}

/// A Secret's name, namespace and key names. Its values (`data`, `stringData`, and the
/// last-applied-configuration annotation that repeats them) are never read.
fn read_secret(file: &str, node: &Node, path: &str) -> Result<SecretIn, ImportError> {
    let meta = node.get("metadata");
    let name = meta.and_then(|m| scalar(m, "name")).unwrap_or_default();
    let line = meta.and_then(|m| m.get("name")).map(line_of).unwrap_or(line_of(node));
    let loc = Loc { file: file.to_string(), line, path: path.to_string() };
    validate_name(&name).map_err(|e| loc.err("metadata.name", e))?;
    let namespace = meta.and_then(|m| scalar(m, "namespace")).filter(|s| !s.is_empty());
    let mut keys = Vec::new();
    for section in ["data", "stringData"] {
        if let Some(Value::Map(entries)) = node.get(section).map(|n| &n.value) {
            for (k, _, _) in entries {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    Ok(SecretIn { name, namespace, keys, loc })
}

/// The calico-node container's env of a DaemonSet (None: the DaemonSet has no calico-node container).
fn read_daemonset(file: &str, node: &Node, path: &str) -> Result<Option<DaemonSetIn>, ImportError> {
    let meta = node.get("metadata");
    let name = meta.and_then(|m| scalar(m, "name")).unwrap_or_default();
    let namespace = meta.and_then(|m| scalar(m, "namespace")).filter(|s| !s.is_empty());
    let line = meta.and_then(|m| m.get("name")).map(line_of).unwrap_or(line_of(node));
    let loc = Loc { file: file.to_string(), line, path: path.to_string() };
    let containers =
        node.get("spec").and_then(|s| s.get("template")).and_then(|t| t.get("spec")).and_then(|s| s.get("containers"));
    let Some(Value::Seq(list)) = containers.map(|c| &c.value) else { return Ok(None) };
    let Some((ci, c)) = list.iter().enumerate().find(|(_, c)| scalar(c, "name").as_deref() == Some("calico-node"))
    else {
        return Ok(None);
    };
    let mut env = Vec::new();
    if let Some(e) = c.get("env") {
        let Value::Seq(vars) = &e.value else {
            return Err(ImportError::field(
                file,
                line_of(e),
                &join(path, &format!("spec.template.spec.containers[{ci}].env")),
                format!("expected a list, found {}", e.type_name()),
            ));
        };
        for v in vars {
            let Some(n) = scalar(v, "name") else { continue };
            let value = if v.get("valueFrom").is_some_and(|x| !x.is_null()) {
                None
            } else {
                Some(scalar(v, "value").unwrap_or_default())
            };
            env.push((n, value));
        }
    }
    Ok(Some(DaemonSetIn { name, namespace, env, loc }))
}

/// The same resource read twice (two captures of one kind): the last one is kept.
fn dedup(out: &mut Read) {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut keep = vec![true; out.resources.len()];
    for (i, r) in out.resources.iter().enumerate() {
        let key = (r.resource.kind().calico_name().to_string(), r.resource.name().to_string());
        if let Some(prev) = seen.insert(key.clone(), i) {
            keep[prev] = false;
            out.remarks.push(format!(
                "{} {} is given twice ({}:{} and {}:{}): the second is kept",
                key.0, key.1, out.resources[prev].loc.file, out.resources[prev].loc.line, r.loc.file, r.loc.line
            ));
        }
    }
    let mut it = keep.into_iter();
    out.resources.retain(|_| it.next().unwrap_or(true));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_removal() {
        assert_eq!(segments("spec.communities[0].foo"), vec!["spec", "communities", "[0]", "foo"]);
        let mut n = yaml::parse_documents("spec:\n  a: 1\n  l:\n  - x: 1\n    z: 2\n").unwrap().remove(0).root;
        assert!(remove_at(&mut n, &segments("spec.l[0].z")));
        assert!(!remove_at(&mut n, &segments("spec.nope")));
        assert_eq!(n.to_json(), serde_json::json!({"spec": {"a": 1, "l": [{"x": 1}]}}));
        assert_eq!(note_path(&segments("spec.l[3].z")), "spec.l[].z");
    }
}
