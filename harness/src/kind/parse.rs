//! Typed parsers for what the kind backend reads that the twin has no parser for: `kubectl get pods -o
//! json`, `kubectl get blockaffinities -o json`, `calicoctl version`, `kind version`, `containerlab
//! version`. BIRD, kernel, ipset and iptables output from calico-node is read with [`crate::observe`]'s
//! parsers, exactly as on a twin node. Pure; errors are [`ParseError`]s.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::observe::ParseError;

// ---------------------------------------------------------------------------------------------------------
// kubectl get pods -o json

/// The parts of a Pod the backend uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodInfo {
    pub name: String,
    pub namespace: String,
    /// `spec.nodeName` (None while unscheduled).
    pub node: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `status.phase` (`Pending`, `Running`, …).
    pub phase: String,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    pub host_ip: Option<IpAddr>,
    pub pod_ip: Option<IpAddr>,
    pub host_network: bool,
    /// Container name → ready.
    pub containers: BTreeMap<String, bool>,
}

#[derive(Deserialize)]
struct RawList {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    items: Option<Vec<RawPod>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawPod {
    kind: Option<String>,
    metadata: RawMeta,
    spec: RawSpec,
    status: RawStatus,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMeta {
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawSpec {
    node_name: Option<String>,
    host_network: bool,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawStatus {
    phase: String,
    conditions: Vec<RawCondition>,
    #[serde(rename = "hostIP")]
    host_ip: Option<String>,
    #[serde(rename = "podIP")]
    pod_ip: Option<String>,
    container_statuses: Vec<RawContainerStatus>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCondition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawContainerStatus {
    name: String,
    ready: bool,
}

const PODS_INPUT: &str = "kubectl get pods -o json";

fn ip(field: &str, s: &Option<String>) -> Result<Option<IpAddr>, ParseError> {
    match s.as_deref() {
        None | Some("") => Ok(None),
        Some(t) => {
            t.parse().map(Some).map_err(|_| ParseError::new(PODS_INPUT, 0, format!("an IP address in {field}"), t))
        }
    }
}

fn pod_info(p: RawPod) -> Result<PodInfo, ParseError> {
    if p.metadata.name.is_empty() {
        return Err(ParseError::new(PODS_INPUT, 0, "metadata.name", "a pod without a name"));
    }
    Ok(PodInfo {
        ready: p.status.conditions.iter().any(|c| c.kind == "Ready" && c.status == "True"),
        host_ip: ip("status.hostIP", &p.status.host_ip)?,
        pod_ip: ip("status.podIP", &p.status.pod_ip)?,
        containers: p.status.container_statuses.into_iter().map(|c| (c.name, c.ready)).collect(),
        name: p.metadata.name,
        namespace: p.metadata.namespace,
        node: p.spec.node_name.filter(|n| !n.is_empty()),
        labels: p.metadata.labels,
        phase: p.status.phase,
        host_network: p.spec.host_network,
    })
}

/// `kubectl get pods … -o json`: a `List` (what kubectl prints for a selector), a `PodList` (the API's
/// form), or a single `Pod` (`kubectl get pod NAME -o json`).
pub fn parse_pods(json: &str) -> Result<Vec<PodInfo>, ParseError> {
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| ParseError::new(PODS_INPUT, e.line(), "a JSON document", e.to_string()))?;
    let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    match kind {
        "List" | "PodList" => {
            let l: RawList = serde_json::from_value(v)
                .map_err(|e| ParseError::new(PODS_INPUT, 0, "a list of pods", e.to_string()))?;
            let items = l
                .items
                .ok_or_else(|| ParseError::new(PODS_INPUT, 0, "items", format!("a {} without items", l.kind)))?;
            items
                .into_iter()
                .map(|p| match p.kind.as_deref() {
                    None | Some("Pod") => pod_info(p),
                    Some(other) => Err(ParseError::new(PODS_INPUT, 0, "items of kind Pod", other)),
                })
                .collect()
        }
        "Pod" => {
            let p: RawPod =
                serde_json::from_value(v).map_err(|e| ParseError::new(PODS_INPUT, 0, "a Pod", e.to_string()))?;
            Ok(vec![pod_info(p)?])
        }
        other => Err(ParseError::new(PODS_INPUT, 0, "kind List, PodList or Pod", other)),
    }
}

/// Node → calico-node pod, from `kubectl get pods -n kube-system -l k8s-app=calico-node -o json`. Pods
/// without the label or a node are skipped; when a node has two (a rollout), the Ready one wins.
pub fn calico_node_pods(json: &str) -> Result<BTreeMap<String, String>, ParseError> {
    let mut out: BTreeMap<String, (String, bool)> = BTreeMap::new();
    for p in parse_pods(json)? {
        if p.labels.get("k8s-app").map(String::as_str) != Some("calico-node") {
            continue;
        }
        let Some(node) = p.node.clone() else { continue };
        match out.get(&node) {
            Some((_, true)) if !p.ready => {}
            _ => {
                out.insert(node, (p.name.clone(), p.ready));
            }
        }
    }
    Ok(out.into_iter().map(|(n, (p, _))| (n, p)).collect())
}

// ---------------------------------------------------------------------------------------------------------
// kubectl get blockaffinities.crd.projectcalico.org -o json

/// A BlockAffinity read from the live cluster (`crd.projectcalico.org/v1`; spec fields as in Calico's
/// CRD: `cidr`, `deleted` (a string), `node`, `state`, `type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveBlockAffinity {
    pub name: String,
    pub node: String,
    pub cidr: IpNet,
    pub state: String,
    pub deleted: bool,
    pub kind: String,
}

const AFF_INPUT: &str = "kubectl get blockaffinities -o json";

/// `kubectl get blockaffinities.crd.projectcalico.org -o json`.
pub fn parse_block_affinities(json: &str) -> Result<Vec<LiveBlockAffinity>, ParseError> {
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| ParseError::new(AFF_INPUT, e.line(), "a JSON document", e.to_string()))?;
    let items = v.get("items").and_then(|i| i.as_array()).ok_or_else(|| {
        ParseError::new(AFF_INPUT, 0, "a list with items", v.get("kind").and_then(|k| k.as_str()).unwrap_or("?"))
    })?;
    let s = |x: &serde_json::Value, k: &str| x.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    items
        .iter()
        .map(|it| {
            let spec = it.get("spec").cloned().unwrap_or_default();
            let name = it.get("metadata").map(|m| s(m, "name")).unwrap_or_default();
            let cidr_s = s(&spec, "cidr");
            let cidr = cidr_s
                .parse::<IpNet>()
                .map_err(|_| ParseError::new(AFF_INPUT, 0, format!("a CIDR in {name} spec.cidr"), &cidr_s))?;
            Ok(LiveBlockAffinity {
                node: s(&spec, "node"),
                cidr,
                state: s(&spec, "state"),
                deleted: s(&spec, "deleted") == "true",
                kind: s(&spec, "type"),
                name,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// tool versions

/// `calicoctl version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalicoctlVersion {
    pub client: String,
    pub git_commit: Option<String>,
    /// `Cluster Version` (None when calicoctl could not tell: "Unable to detect installed Calico version").
    pub cluster: Option<String>,
    /// `Cluster Type`, split on commas (`typha`, `kdd`, `k8s`, `operator`, `bgp`, `kubeadm`, …).
    pub cluster_type: Vec<String>,
}

/// `calicoctl version` as calicoctl v3 prints it (`calicoctl/commands/version.go`: `Client Version:`,
/// `Git commit:`, then `Cluster Version:` and `Cluster Type:` or `Unable to detect installed Calico
/// version`). Older releases' `Build date:` and `Cluster Calico Version:` lines are accepted too.
pub fn parse_calicoctl_version(text: &str) -> Result<CalicoctlVersion, ParseError> {
    let mut client = None;
    let mut out = CalicoctlVersion { client: String::new(), git_commit: None, cluster: None, cluster_type: Vec::new() };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty()
            || line.starts_with("Unable to detect")
            || line.starts_with("Build date:")
            || line.starts_with("Release:")
        {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(ParseError::new("calicoctl version", i + 1, "`Field: value`", raw));
        };
        let v = v.trim().to_string();
        match k.trim() {
            "Client Version" => client = Some(v),
            "Git commit" => out.git_commit = Some(v),
            "Cluster Version" | "Cluster Calico Version" => out.cluster = Some(v),
            "Cluster Type" => {
                out.cluster_type = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
            }
            _ => {}
        }
    }
    out.client = client.ok_or_else(|| {
        ParseError::new("calicoctl version", 0, "a `Client Version:` line", text.lines().next().unwrap_or(""))
    })?;
    Ok(out)
}

/// `kind version` (`kind v0.27.0 go1.23.6 linux/amd64`, from `pkg/cmd/kind/version`) → `v0.27.0`.
pub fn parse_kind_version(text: &str) -> Result<String, ParseError> {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut w = line.split_whitespace();
    match (w.next(), w.next()) {
        (Some("kind"), Some(v)) if v.starts_with('v') => Ok(v.to_string()),
        _ => Err(ParseError::new("kind version", 1, "`kind vX.Y.Z go… os/arch`", line)),
    }
}

/// `containerlab version` (the logo, then `    version: 0.79.0`, `commit:`, …) or `containerlab version
/// --short` (just `0.79.0`) → `0.79.0`.
pub fn parse_containerlab_version(text: &str) -> Result<String, ParseError> {
    for l in text.lines() {
        let t = l.trim();
        if let Some(v) = t.strip_prefix("version:") {
            return Ok(v.trim().trim_start_matches('v').to_string());
        }
    }
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    match lines.as_slice() {
        [one] if one.chars().next().is_some_and(|c| c.is_ascii_digit() || c == 'v') && !one.contains(' ') => {
            Ok(one.trim_start_matches('v').to_string())
        }
        _ => Err(ParseError::new("containerlab version", 0, "a `version:` line", lines.first().copied().unwrap_or(""))),
    }
}
