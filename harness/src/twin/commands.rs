//! Running an operator's `kubectl`/`calicoctl` command lines against the twin's datastore, with the outputs and
//! error messages of the real tools. A script is parsed whole first (a syntax error runs nothing); each command
//! is then all-or-nothing: a failed command leaves the datastore as it was.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::cmdline::{
    self, ApplyMode, CalicoOutput, CalicoTarget, KubectlOutput, Op, Parsed, ResourceKind as CmdKind, Source,
};
use super::datastore::{Datastore, WriteMode};
use super::shell::{self, CommandLine};
use crate::model::fields::Origin;
use crate::model::output::{merge_patch, to_json, to_yaml};
use crate::model::resources::{decode, parse_resources, validate_label, Located, Resource, ResourceKind, CALICO_API};
use crate::model::selector::Selector;
use crate::model::yaml::Node;
use crate::model::InputError;

/// A script could not be read: nothing ran.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScriptError {
    #[error("{file}:{line}:{column}: {message}")]
    Shell { file: String, line: usize, column: usize, message: String },
    #[error("{file}:{line}: {message}\n  {text}")]
    Command { file: String, line: usize, text: String, message: String },
}

/// What one command did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outcome {
    pub line: usize,
    pub command: String,
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
    /// The datastore changed.
    pub changed: bool,
}

/// Commands that need a running lab (observations) rather than the datastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabQuery {
    NodeStatus,
}

/// The result of running one parsed command.
#[derive(Debug, Clone, PartialEq)]
pub enum Ran {
    Done(Outcome),
    NeedsLab { query: LabQuery, line: usize, command: String },
}

/// A command line, parsed, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub cl: CommandLine,
    pub parsed: Parsed,
}

/// Parse a whole script (shell syntax and every command's grammar). `file` names it in errors.
pub fn prepare(file: &str, src: &str, env: &HashMap<String, String>) -> Result<Vec<Prepared>, ScriptError> {
    let lines = shell::parse_script_with_env(src, env).map_err(|e| ScriptError::Shell {
        file: file.to_string(),
        line: e.line,
        column: e.column,
        message: e.message,
    })?;
    lines
        .into_iter()
        .map(|cl| match cmdline::parse_command(&cl) {
            Ok(parsed) => Ok(Prepared { cl, parsed }),
            Err(e) => Err(ScriptError::Command {
                file: file.to_string(),
                line: e.line,
                text: cl.text.clone(),
                message: e.message,
            }),
        })
        .collect()
}

/// Reads `-f FILE` arguments (relative to the runbook or the working directory).
pub type FileReader<'a> = &'a dyn Fn(&str) -> Result<String, String>;

fn ok(p: &Prepared, stdout: String, changed: bool) -> Ran {
    Ran::Done(Outcome { line: p.cl.line, command: p.cl.text.clone(), ok: true, stdout, stderr: String::new(), changed })
}

fn fail(p: &Prepared, stderr: String) -> Ran {
    Ran::Done(Outcome {
        line: p.cl.line,
        command: p.cl.text.clone(),
        ok: false,
        stdout: String::new(),
        stderr,
        changed: false,
    })
}

fn read_source(src: &Source, read: FileReader) -> Result<(String, String), String> {
    match src {
        Source::Stdin(s) => Ok(("STDIN".to_string(), s.clone())),
        Source::File(path) => read(path).map(|t| (path.clone(), t)),
    }
}

fn kind_of(k: CmdKind) -> ResourceKind {
    match k {
        CmdKind::BgpConfiguration => ResourceKind::BGPConfiguration,
        CmdKind::BgpPeer => ResourceKind::BGPPeer,
        CmdKind::FelixConfiguration => ResourceKind::FelixConfiguration,
        CmdKind::IpPool => ResourceKind::IPPool,
        CmdKind::Node => ResourceKind::Node,
    }
}

fn mode_of(m: ApplyMode) -> WriteMode {
    match m {
        ApplyMode::Apply => WriteMode::Apply,
        ApplyMode::Create => WriteMode::Create,
        ApplyMode::Replace => WriteMode::Replace,
    }
}

fn input_error_text(e: &InputError) -> String {
    format!("Failed to execute command: {e}")
}

/// Run one prepared command against the datastore.
pub fn run(ds: &mut Datastore, p: &Prepared, read: FileReader) -> Ran {
    match &p.parsed.op {
        Op::ShellAssign { .. } => ok(p, String::new(), false),
        Op::Label { nodes, all, selector, set, remove, overwrite } => {
            label_or_annotate(ds, p, nodes, *all, selector.as_deref(), set, remove, *overwrite, true)
        }
        Op::Annotate { nodes, all, selector, set, remove, overwrite } => {
            label_or_annotate(ds, p, nodes, *all, selector.as_deref(), set, remove, *overwrite, false)
        }
        Op::KubectlGetNodes { names, output, show_labels, selector, no_headers } => {
            get_nodes(ds, p, names, *output, *show_labels, selector.as_deref(), *no_headers)
        }
        Op::SetEnv { namespace: _, object, container: _, set, remove } => {
            if object != "calico-node" {
                return fail(p, format!("Error from server (NotFound): daemonsets.apps \"{object}\" not found"));
            }
            let before = ds.calico_node_env.clone();
            for (k, v) in set {
                ds.calico_node_env.insert(k.clone(), v.clone());
            }
            for k in remove {
                ds.calico_node_env.remove(k);
            }
            let changed = before != ds.calico_node_env;
            ok(p, if changed { format!("daemonset.apps/{object} env updated") } else { String::new() }, changed)
        }
        Op::KubectlApply { source, .. } | Op::KubectlCreate { source, .. } => {
            let create = matches!(p.parsed.op, Op::KubectlCreate { .. });
            kubectl_write(ds, p, source, read, if create { WriteMode::Create } else { WriteMode::Apply })
        }
        Op::KubectlDelete { source, .. } => {
            let (name, text) = match read_source(source, read) {
                Ok(x) => x,
                Err(e) => return fail(p, format!("error: {e}")),
            };
            let res = match parse_resources(&name, &text) {
                Ok(r) => r,
                Err(e) => return fail(p, format!("error: {e}")),
            };
            let mut next = ds.clone();
            let mut out = Vec::new();
            for r in &res {
                if next.delete(r.resource.kind(), r.resource.name()).is_err() {
                    return fail(
                        p,
                        format!(
                            "Error from server (NotFound): {}s \"{}\" not found",
                            r.resource.kind().calico_name().to_lowercase(),
                            r.resource.name()
                        ),
                    );
                }
                out.push(format!("{}/{} deleted", r.resource.kind().calico_name().to_lowercase(), r.resource.name()));
            }
            *ds = next;
            ok(p, out.join("\n"), true)
        }
        Op::CalicoApply { mode, source, .. } => calico_write(ds, p, source, read, mode_of(*mode)),
        Op::CalicoDelete { target, skip_not_exists, .. } => calico_delete(ds, p, target, read, *skip_not_exists),
        Op::CalicoGet { target, output, .. } => calico_get(ds, p, target, output, read),
        Op::CalicoPatch { kind, name, patch, .. } => calico_patch(ds, p, kind_of(*kind), name, patch),
        Op::CalicoNodeStatus => {
            Ran::NeedsLab { query: LabQuery::NodeStatus, line: p.cl.line, command: p.cl.text.clone() }
        }
        Op::CalicoIpamShow { .. } => ok(p, ipam_show(ds), false),
    }
}

#[allow(clippy::too_many_arguments)]
fn label_or_annotate(
    ds: &mut Datastore,
    p: &Prepared,
    nodes: &[String],
    all: bool,
    selector: Option<&str>,
    set: &[(String, String)],
    remove: &[String],
    overwrite: bool,
    labels: bool,
) -> Ran {
    let mut targets: Vec<String> = nodes.to_vec();
    if all {
        targets = ds.nodes.keys().cloned().collect();
    }
    if let Some(sel) = selector {
        match kube_selector(sel) {
            Ok(f) => targets = ds.nodes.values().filter(|n| f(&n.labels)).map(|n| n.name.clone()).collect(),
            Err(e) => return fail(p, format!("error: {e}")),
        }
    }
    for t in &targets {
        if !ds.nodes.contains_key(t) {
            return fail(p, format!("Error from server (NotFound): nodes \"{t}\" not found"));
        }
    }
    let mut next = ds.clone();
    let mut out = Vec::new();
    let mut changed_any = false;
    for t in &targets {
        let Some(rec) = next.nodes.get_mut(t) else { continue };
        let map = if labels { &mut rec.labels } else { &mut rec.annotations };
        let before = map.clone();
        for (k, v) in set {
            if labels {
                if let Err(e) = validate_label(k, v) {
                    return fail(p, format!("error: {e}"));
                }
            }
            if let Some(old) = map.get(k) {
                if old != v && !overwrite {
                    return fail(p, format!("error: '{k}' already has a value ({old}), and --overwrite is false"));
                }
            }
            map.insert(k.clone(), v.clone());
        }
        let mut notes = Vec::new();
        for k in remove {
            if map.remove(k).is_none() {
                notes.push(format!("{} \"{k}\" not found.", if labels { "label" } else { "annotation" }));
            }
        }
        let changed = before != *map;
        changed_any |= changed;
        out.extend(notes);
        let verb = if labels { "labeled" } else { "annotated" };
        out.push(if changed { format!("node/{t} {verb}") } else { format!("node/{t} not {verb}") });
    }
    *ds = next;
    ok(p, out.join("\n"), changed_any)
}

/// A Kubernetes equality-based label selector (`k=v,k!=v,k`, `!k`), as `kubectl -l` takes it.
fn kube_selector(s: &str) -> Result<impl Fn(&BTreeMap<String, String>) -> bool, String> {
    let mut terms: Vec<(String, Option<String>, bool)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        if let Some((k, v)) = part.split_once("!=") {
            terms.push((k.trim().into(), Some(v.trim().into()), false));
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            terms.push((k.trim().into(), Some(v.trim().into()), true));
        } else if let Some(k) = part.strip_prefix('!') {
            terms.push((k.trim().into(), None, false));
        } else if part.contains(['(', ' ']) {
            return Err(format!(
                "unable to parse requirement: {part:?} (set-based selectors are not supported by rrlab)"
            ));
        } else {
            terms.push((part.into(), None, true));
        }
    }
    Ok(move |labels: &BTreeMap<String, String>| {
        terms.iter().all(|(k, v, pos)| match v {
            Some(v) => (labels.get(k) == Some(v)) == *pos,
            None => labels.contains_key(k) == *pos,
        })
    })
}

fn get_nodes(
    ds: &Datastore,
    p: &Prepared,
    names: &[String],
    output: KubectlOutput,
    show_labels: bool,
    selector: Option<&str>,
    no_headers: bool,
) -> Ran {
    let mut list: Vec<&super::datastore::NodeRecord> = Vec::new();
    if names.is_empty() {
        list = ds.nodes.values().collect();
    } else {
        for n in names {
            match ds.nodes.get(n) {
                Some(r) => list.push(r),
                None => return fail(p, format!("Error from server (NotFound): nodes \"{n}\" not found")),
            }
        }
    }
    if let Some(sel) = selector {
        match kube_selector(sel) {
            Ok(f) => list.retain(|n| f(&n.labels)),
            Err(e) => return fail(p, format!("error: {e}")),
        }
    }
    match output {
        KubectlOutput::Name => {
            ok(p, list.iter().map(|n| format!("node/{}", n.name)).collect::<Vec<_>>().join("\n"), false)
        }
        KubectlOutput::Yaml | KubectlOutput::Json => {
            let items: Vec<Value> =
                list.iter().filter_map(|n| ds.get(ResourceKind::KubeNode, &n.name)).map(|r| to_json(&r)).collect();
            let v = if items.len() == 1 && !names.is_empty() {
                items[0].clone()
            } else {
                serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
            };
            let text = if output == KubectlOutput::Json {
                serde_json::to_string_pretty(&v).unwrap_or_default()
            } else {
                to_yaml(&v)
            };
            ok(p, text, false)
        }
        KubectlOutput::Table | KubectlOutput::Wide => {
            let mut rows = Vec::new();
            if !no_headers {
                let mut h = vec!["NAME", "STATUS", "ROLES", "AGE", "VERSION"];
                if output == KubectlOutput::Wide {
                    h.push("INTERNAL-IP");
                }
                if show_labels {
                    h.push("LABELS");
                }
                rows.push(h.into_iter().map(String::from).collect::<Vec<_>>());
            }
            for n in &list {
                let roles: Vec<&str> =
                    n.labels.keys().filter_map(|k| k.strip_prefix("node-role.kubernetes.io/")).collect();
                let mut r = vec![
                    n.name.clone(),
                    if n.unschedulable { "Ready,SchedulingDisabled".into() } else { "Ready".into() },
                    if roles.is_empty() { "<none>".into() } else { roles.join(",") },
                    "-".into(),
                    "v1.31.0".into(),
                ];
                if output == KubectlOutput::Wide {
                    r.push(n.bgp().ipv4.map(|i| i.to_string()).unwrap_or_else(|| "<none>".into()));
                }
                if show_labels {
                    let l: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    r.push(if l.is_empty() { "<none>".into() } else { l.join(",") });
                }
                rows.push(r);
            }
            ok(p, table(&rows), false)
        }
    }
}

/// Column-aligned table as kubectl/calicoctl `ps` print.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.len()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, s)| if i + 1 == r.len() { s.clone() } else { format!("{s:<w$}   ", w = widths[i]) })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_calico_v3(r: &Located) -> bool {
    !matches!(
        r.resource,
        Resource::KubeNode(_)
            | Resource::Secret(_)
            | Resource::BlockAffinity(_)
            | Resource::Service(_)
            | Resource::Endpoints(_)
    )
}

fn kubectl_write(ds: &mut Datastore, p: &Prepared, source: &Source, read: FileReader, mode: WriteMode) -> Ran {
    let (name, text) = match read_source(source, read) {
        Ok(x) => x,
        Err(e) => return fail(p, format!("error: {e}")),
    };
    let res = match parse_resources(&name, &text) {
        Ok(r) => r,
        Err(e) => return fail(p, format!("error: error parsing {e}")),
    };
    // projectcalico.org/v3 is served by Calico's API server, which the post's clusters (and the twin) do not
    // run: kubectl cannot write those kinds (the post: create the default BGPConfiguration with calicoctl).
    if let Some(r) = res.iter().find(|r| is_calico_v3(r)) {
        return fail(p, format!(
            "error: resource mapping not found for name: \"{}\" namespace: \"\" from \"{name}\": no matches for kind \"{}\" in version \"{CALICO_API}\"\nensure CRDs are installed first",
            r.resource.name(), r.resource.kind().calico_name()
        ));
    }
    let mut next = ds.clone();
    let mut out = Vec::new();
    for r in &res {
        let existed = next.exists(r.resource.kind(), r.resource.name());
        if let Err(e) = next.write(r.resource.clone(), mode) {
            return fail(p, format!("Error from server: {e}"));
        }
        let kind = match r.resource.kind() {
            ResourceKind::BlockAffinity => "blockaffinity.crd.projectcalico.org".to_string(),
            k => k.calico_name().to_lowercase(),
        };
        out.push(format!("{kind}/{} {}", r.resource.name(), if existed { "configured" } else { "created" }));
    }
    *ds = next;
    ok(p, out.join("\n"), true)
}

fn calico_write(ds: &mut Datastore, p: &Prepared, source: &Source, read: FileReader, mode: WriteMode) -> Ran {
    let (name, text) = match read_source(source, read) {
        Ok(x) => x,
        Err(e) => return fail(p, format!("Failed to execute command: {e}")),
    };
    let res = match parse_resources(&name, &text) {
        Ok(r) => r,
        Err(e) => return fail(p, input_error_text(&e)),
    };
    if let Some(r) = res.iter().find(|r| !is_calico_v3(r)) {
        return fail(p, format!("Failed to execute command: {name}: resource kind {} is not a projectcalico.org/v3 resource: use kubectl", r.resource.kind().calico_name()));
    }
    let verb = match mode {
        WriteMode::Apply => "apply",
        WriteMode::Create => "create",
        WriteMode::Replace => "replace",
    };
    let mut next = ds.clone();
    for r in &res {
        if let Err(e) = next.write(r.resource.clone(), mode) {
            return fail(p, format!("Failed to {verb} '{}' resource: [{e}]", r.resource.kind().calico_name()));
        }
    }
    *ds = next;
    ok(p, super::apply::success_message(&res, mode), true)
}

fn calico_delete(
    ds: &mut Datastore,
    p: &Prepared,
    target: &CalicoTarget,
    read: FileReader,
    skip_not_exists: bool,
) -> Ran {
    let items: Vec<(ResourceKind, String)> = match target {
        CalicoTarget::Resources { kind, names } => names.iter().map(|n| (kind_of(*kind), n.clone())).collect(),
        CalicoTarget::Source(src) => {
            let (name, text) = match read_source(src, read) {
                Ok(x) => x,
                Err(e) => return fail(p, format!("Failed to execute command: {e}")),
            };
            match parse_resources(&name, &text) {
                Ok(r) => r.iter().map(|l| (l.resource.kind(), l.resource.name().to_string())).collect(),
                Err(e) => return fail(p, input_error_text(&e)),
            }
        }
    };
    let mut next = ds.clone();
    let mut n = 0;
    for (kind, name) in &items {
        match next.delete(*kind, name) {
            Ok(()) => n += 1,
            Err(_) if skip_not_exists => {}
            Err(e) => return fail(p, format!("Failed to delete '{}' resource: [{e}]", kind.calico_name())),
        }
    }
    *ds = next;
    let kind = items.first().map(|(k, _)| k.calico_name()).unwrap_or("resource");
    ok(p, format!("Successfully deleted {n} '{kind}' resource(s)"), n > 0)
}

fn calico_get(ds: &Datastore, p: &Prepared, target: &CalicoTarget, output: &CalicoOutput, read: FileReader) -> Ran {
    let (kind, names): (ResourceKind, Vec<String>) = match target {
        CalicoTarget::Resources { kind, names } => (kind_of(*kind), names.clone()),
        CalicoTarget::Source(src) => {
            let (name, text) = match read_source(src, read) {
                Ok(x) => x,
                Err(e) => return fail(p, format!("Failed to execute command: {e}")),
            };
            match parse_resources(&name, &text) {
                Ok(r) if !r.is_empty() => {
                    (r[0].resource.kind(), r.iter().map(|l| l.resource.name().to_string()).collect())
                }
                Ok(_) => return ok(p, String::new(), false),
                Err(e) => return fail(p, input_error_text(&e)),
            }
        }
    };
    let names = if names.is_empty() { ds.names(kind) } else { names };
    let mut objs = Vec::new();
    for n in &names {
        match ds.get(kind, n) {
            Some(r) => objs.push(r),
            None => return fail(p, format!("Failed to get resources: resource does not exist: {}({n}) with error: {}.projectcalico.org \"{n}\" not found", kind.calico_name(), kind.calico_name())),
        }
    }
    let single = matches!(target, CalicoTarget::Resources { names, .. } if names.len() == 1);
    match output {
        CalicoOutput::Yaml | CalicoOutput::Json => {
            let items: Vec<Value> = objs.iter().map(to_json).collect();
            let v = if single {
                items[0].clone()
            } else {
                serde_json::json!({"apiVersion": CALICO_API, "kind": format!("{}List", kind.calico_name()), "items": items})
            };
            let text = if *output == CalicoOutput::Json {
                serde_json::to_string_pretty(&v).unwrap_or_default()
            } else {
                to_yaml(&v)
            };
            ok(p, text, false)
        }
        _ => {
            let mut rows = vec![ps_header(kind)];
            for r in &objs {
                rows.push(ps_row(ds, r));
            }
            ok(p, table(&rows), false)
        }
    }
}

fn ps_header(kind: ResourceKind) -> Vec<String> {
    let h: &[&str] = match kind {
        ResourceKind::BGPPeer => &["NAME", "PEERIP", "NODE", "ASN"],
        ResourceKind::IPPool => &["NAME", "CIDR", "SELECTOR"],
        ResourceKind::BGPConfiguration => &["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"],
        _ => &["NAME"],
    };
    h.iter().map(|s| s.to_string()).collect()
}

fn ps_row(ds: &Datastore, r: &Resource) -> Vec<String> {
    match r {
        Resource::BGPPeer(b) => vec![
            b.metadata.name.clone(),
            b.spec
                .peer_ip
                .clone()
                .or_else(|| b.spec.peer_selector.as_ref().map(|s| format!("({s})")))
                .unwrap_or_default(),
            b.spec
                .node
                .clone()
                .or_else(|| b.spec.node_selector.as_ref().map(|s| format!("({s})")))
                .unwrap_or_else(|| "(global)".into()),
            if b.spec.as_number == 0 { String::new() } else { b.spec.as_number.to_string() },
        ],
        Resource::IPPool(i) => vec![i.metadata.name.clone(), i.spec.cidr.to_string(), i.spec.node_selector.clone()],
        Resource::BGPConfiguration(c) => vec![
            c.metadata.name.clone(),
            c.spec.log_severity_screen.clone().unwrap_or_else(|| "Info".into()),
            c.spec.node_to_node_mesh_enabled.map(|b| b.to_string()).unwrap_or_else(|| {
                if c.metadata.name == "default" {
                    "true".into()
                } else {
                    String::new()
                }
            }),
            c.spec.as_number.map(|a| a.to_string()).unwrap_or_else(|| {
                if c.metadata.name == "default" {
                    ds.global_as().to_string()
                } else {
                    String::new()
                }
            }),
        ],
        other => vec![other.name().to_string()],
    }
}

fn calico_patch(ds: &mut Datastore, p: &Prepared, kind: ResourceKind, name: &str, patch: &Value) -> Ran {
    let Some(current) = ds.get(kind, name) else {
        return fail(p, format!(
            "Failed to patch '{k}' resource: resource does not exist: {k}({name}) with error: {k}.projectcalico.org \"{name}\" not found",
            k = kind.calico_name()
        ));
    };
    let mut v = to_json(&current);
    merge_patch(&mut v, patch);
    // The name and kind cannot be patched away.
    v["metadata"]["name"] = Value::String(name.to_string());
    v["kind"] = Value::String(kind.calico_name().to_string());
    v["apiVersion"] = Value::String(CALICO_API.to_string());
    let origin = Origin::new(&format!("patch of {}({name})", kind.calico_name()), None);
    let res = match decode(&origin, &Node::from_json(&v)) {
        Ok(r) => r,
        Err(e) => return fail(p, format!("Failed to patch '{}' resource: {e}", kind.calico_name())),
    };
    let mut next = ds.clone();
    if let Err(e) = next.write(res, WriteMode::Apply) {
        return fail(p, format!("Failed to patch '{}' resource: {e}", kind.calico_name()));
    }
    let changed = next != *ds;
    *ds = next;
    ok(p, format!("Successfully patched 1 '{}' resource", kind.calico_name()), changed)
}

fn ipam_show(ds: &Datastore) -> String {
    let mut rows =
        vec![vec!["GROUPING".to_string(), "CIDR".into(), "IPS TOTAL".into(), "IPS IN USE".into(), "IPS FREE".into()]];
    for pool in ds.ip_pools.values() {
        let total: u128 = match pool.spec.cidr {
            ipnet::IpNet::V4(n) => 1u128 << (32 - n.prefix_len()),
            ipnet::IpNet::V6(n) => 1u128 << (128 - n.prefix_len()).min(127),
        };
        rows.push(vec![
            "IP Pool".into(),
            pool.spec.cidr.to_string(),
            total.to_string(),
            "0 (0%)".into(),
            format!("{total} (100%)"),
        ]);
        for b in ds.block_affinities.values().filter(|b| pool.spec.cidr.contains(&b.cidr)) {
            rows.push(vec![
                "Block".into(),
                b.cidr.to_string(),
                (1u128 << (32u8.saturating_sub(b.cidr.prefix_len()))).to_string(),
                "-".into(),
                "-".into(),
            ]);
        }
    }
    table(&rows)
}

/// Run a whole script, stopping at the first failing command (as `set -e` would). Returns every outcome;
/// commands that need a lab are reported as failures here (use the lab's runner for those).
pub fn run_script(
    ds: &mut Datastore,
    file: &str,
    src: &str,
    env: &HashMap<String, String>,
    read: FileReader,
) -> Result<Vec<Outcome>, ScriptError> {
    let prepared = prepare(file, src, env)?;
    let mut out = Vec::new();
    for p in &prepared {
        let o = match run(ds, p, read) {
            Ran::Done(o) => o,
            Ran::NeedsLab { line, command, .. } => Outcome {
                line,
                command,
                ok: false,
                stdout: String::new(),
                stderr: "this command reads a running node: run it in a lab (rrlab calicoctl / a runbook)".into(),
                changed: false,
            },
        };
        let failed = !o.ok;
        out.push(o);
        if failed {
            break;
        }
    }
    Ok(out)
}

/// The selector check the post's BGPPeers rely on, exposed for tests and observers.
pub fn selector_matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    Selector::parse(selector).map(|s| s.matches(labels)).unwrap_or(false)
}
