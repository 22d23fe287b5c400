//! kind's `Cluster` config (`kind.x-k8s.io/v1alpha4`), strictly decoded as `kind create cluster --config` does,
//! with what Calico needs checked: no default CNI, an IPv4 pod subnet that becomes the IPPool.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

use super::super::fields::{Fields, Origin};
use super::super::yaml::{self, Node, Pos, Value};
use super::{Role, TopologyError};

pub(super) const KIND_API: &str = "kind.x-k8s.io/v1alpha4";

#[derive(Debug, Clone, PartialEq)]
pub(super) struct KindNode {
    pub role: Role,
    pub labels: BTreeMap<String, String>,
    pub pos: Option<Pos>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct KindConfig {
    pub pod_subnet: Ipv4Net,
    pub pod_subnet_pos: Option<Pos>,
    pub service_subnet: Option<Ipv4Net>,
    pub nodes: Vec<KindNode>,
}

/// Cluster fields kind has that rrlab accepts without modelling.
const CLUSTER_IGNORED: &[&str] = &[
    "featureGates",
    "runtimeConfig",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
    "containerdConfigPatches",
    "containerdConfigPatchesJSON6902",
];
const NETWORKING_IGNORED: &[&str] = &["apiServerPort", "apiServerAddress", "kubeProxyMode", "dnsSearch"];
const NODE_IGNORED: &[&str] =
    &["image", "extraMounts", "extraPortMappings", "gpus", "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902"];

fn key_pos(node: &Node, key: &str) -> Option<Pos> {
    match &node.value {
        Value::Map(entries) => entries.iter().find(|(k, _, _)| k == key).map(|(_, p, _)| *p),
        _ => None,
    }
}

fn cidr(f: &Fields, key: &str) -> Result<Option<Ipv4Net>, TopologyError> {
    let Some(text) = f.string(key)? else { return Ok(None) };
    let node = f.get(key);
    let net: Ipv4Net =
        text.parse().map_err(|_| f.err(node, key, format!("{text:?} is not an IPv4 CIDR (e.g. 172.16.0.0/16)")))?;
    if net.trunc() != net {
        return Err(f.err(node, key, format!("{net} has host bits set; did you mean {}?", net.trunc())).into());
    }
    Ok(Some(net))
}

/// Kubernetes node container names kind gives a cluster's nodes, in kind's order: control planes first
/// (`-control-plane`, `-control-plane2`, …), then workers (`-worker`, `-worker2`, …). Returns indexes into
/// `nodes` with the container name.
pub(super) fn container_names(cluster: &str, nodes: &[KindNode]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (role, suffix) in [(Role::ControlPlane, "control-plane"), (Role::Worker, "worker")] {
        let mut n = 0;
        for (i, _) in nodes.iter().enumerate().filter(|(_, k)| k.role == role) {
            n += 1;
            let name = if n == 1 { format!("{cluster}-{suffix}") } else { format!("{cluster}-{suffix}{n}") };
            out.push((i, name));
        }
    }
    out
}

/// Parse a kind config. `file` names it in errors; `line_offset` is added to every line (for a config embedded
/// in the topology file as a multi-line `startup-config`).
pub(super) fn parse(file: &str, text: &str, line_offset: usize, cluster: &str) -> Result<KindConfig, TopologyError> {
    parse_inner(file, text, cluster)
        .map_err(|mut e| {
            if e.line > 0 {
                e.line += line_offset;
            }
            e
        })
        .map(|mut c| {
            let shift = |p: &mut Option<Pos>| {
                if let Some(p) = p {
                    p.line += line_offset;
                }
            };
            shift(&mut c.pod_subnet_pos);
            c.nodes.iter_mut().for_each(|n| shift(&mut n.pos));
            c
        })
}

fn parse_inner(file: &str, text: &str, cluster: &str) -> Result<KindConfig, TopologyError> {
    let docs = yaml::parse_documents(text).map_err(|e| TopologyError::at(file, Some(e.pos), None, e.message))?;
    let root = match docs.as_slice() {
        [d] => &d.root,
        [] => return Err(TopologyError::at(file, None, None, "empty kind config: expected a kind Cluster")),
        [_, d, ..] => {
            return Err(TopologyError::at(file, d.root.pos, None, "a kind config holds exactly one Cluster document"))
        }
    };
    let origin = Origin::new(file, None);
    let f = Fields::new(&origin, root, "")?;
    let kind = f.required_string("kind")?;
    if kind != "Cluster" {
        return Err(f.err(f.get("kind"), "kind", format!("{kind:?}: a kind config's kind is Cluster")).into());
    }
    let api = f.required_string("apiVersion")?;
    if api != KIND_API {
        return Err(f
            .err(f.get("apiVersion"), "apiVersion", format!("{api:?}: kind's Cluster config is {KIND_API}"))
            .into());
    }
    if let Some(name) = f.string("name")? {
        if name != cluster {
            return Err(f
                .err(
                    f.get("name"),
                    "name",
                    format!(
                        "{name:?}: containerlab creates this cluster as {cluster:?} (the k8s-kind node's name) and ignores this field; make them equal or drop it"
                    ),
                )
                .into());
        }
    }
    let Some(net) = f.sub("networking")? else {
        return Err(f
            .err(
                None,
                "networking",
                "is required: it must set disableDefaultCNI: true and the podSubnet Calico's IPPool uses",
            )
            .into());
    };
    if let Some(fam) = net.string("ipFamily")? {
        if fam != "ipv4" {
            return Err(net
                .err(net.get("ipFamily"), "ipFamily", format!("{fam:?}: rrlab models IPv4 clusters only"))
                .into());
        }
    }
    // A field missing from networking is reported at the `networking:` key.
    let net_key = key_pos(root, "networking");
    let at = |key: &str, msg: &str| match net.get(key).and_then(|n| n.pos) {
        Some(p) => TopologyError::at(file, Some(p), Some(format!("networking.{key}")), msg),
        None => TopologyError::at(file, net_key, Some(format!("networking.{key}")), msg),
    };
    if net.bool("disableDefaultCNI")? != Some(true) {
        return Err(at(
            "disableDefaultCNI",
            "must be true: otherwise kind installs kindnet, its own CNI, and Calico must be the cluster's only CNI (rrlab installs Calico after kind brings the cluster up)",
        ));
    }
    let Some(pod_subnet) = cidr(&net, "podSubnet")? else {
        return Err(at(
            "podSubnet",
            "is required: it is the CIDR of the cluster's Calico IPPool (CALICO_IPV4POOL_CIDR)",
        ));
    };
    if pod_subnet.prefix_len() > 26 {
        return Err(net
            .err(net.get("podSubnet"), "podSubnet", format!("{pod_subnet} is smaller than one Calico IPAM block (/26)"))
            .into());
    }
    let pod_subnet_pos = net.pos_of("podSubnet");
    let service_subnet = cidr(&net, "serviceSubnet")?;
    if let Some(s) = service_subnet {
        if s.contains(&pod_subnet.network()) || pod_subnet.contains(&s.network()) {
            return Err(net
                .err(net.get("serviceSubnet"), "serviceSubnet", format!("{s} overlaps podSubnet {pod_subnet}"))
                .into());
        }
    }
    net.finish(NETWORKING_IGNORED)?;

    let mut nodes = Vec::new();
    let list = f.list("nodes")?;
    for n in &list {
        let role = match n.string("role")?.as_deref() {
            None | Some("control-plane") => Role::ControlPlane,
            Some("worker") => Role::Worker,
            Some(other) => {
                return Err(n
                    .err(n.get("role"), "role", format!("{other:?}: a kind node's role is control-plane or worker"))
                    .into())
            }
        };
        let labels = n.string_map("labels")?;
        n.finish(NODE_IGNORED)?;
        nodes.push(KindNode { role, labels, pos: n.node.pos });
    }
    if list.is_empty() {
        // kind's default: one control-plane node.
        nodes.push(KindNode { role: Role::ControlPlane, labels: BTreeMap::new(), pos: root.pos });
    }
    if !nodes.iter().any(|n| n.role == Role::ControlPlane) {
        return Err(f.err(f.get("nodes"), "nodes", "has no control-plane node: kind needs at least one").into());
    }
    f.finish(CLUSTER_IGNORED)?;
    Ok(KindConfig { pod_subnet, pod_subnet_pos, service_subnet, nodes })
}
