//! Deciding the lab: the nodes with their real names, addresses, roles and labels; the sites and the WAN; the
//! pod and service subnets; the Calico resources to write and the secrets that replace the real ones. Pure, and
//! linear in the number of nodes (maps by name, sites by CIDR).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value as J};

use crate::model::output::to_json;
use crate::model::resources::{
    parse_as_number, parse_cidr_or_ip, parse_peer_ip, CalicoNode, EncapMode, Meta, NodeBgpSpec, Resource,
};
use crate::model::topology::{Role, DEFAULT_AS, DEFAULT_IPIP_MODE};
use crate::twin::datastore::{ANN_ASN, ANN_IPIP_TUNNEL, ANN_IPV4, ANN_IPV6, ANN_RR_CLUSTER_ID, ANN_VXLAN_TUNNEL};

use super::read::{Loc, Read};
use super::sites::{valid_site_name, SitesFile};
use super::{ImportError, ImportOptions, Notes};

/// Calico's manifest default pool when neither an IPPool nor `CALICO_IPV4POOL_CIDR` is given.
const CALICO_DEFAULT_POOL: &str = "192.168.0.0/16";
/// kubeadm's (and kind's) default service subnet.
const DEFAULT_SERVICE_SUBNET: &str = "10.96.0.0/12";
/// The interface every imported node's address is on in the lab.
pub(super) const NODE_IFACE: &str = "eth1";
/// How many names a note lists before "and N more".
const LIST_MAX: usize = 8;

/// A cluster node as the lab will have it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PNode {
    pub name: String,
    pub role: Role,
    /// The node's Kubernetes labels (its Calico Node's labels).
    pub labels: BTreeMap<String, String>,
    /// The labels the kind config gives it.
    pub kind_labels: BTreeMap<String, String>,
    pub ip: Ipv4Addr,
    /// Index into [`Plan::sites`].
    pub site: usize,
    /// The bridge port (host side of its eth1).
    pub port: String,
    /// The Calico Node's BGP spec (ipv4Address always set: the twin's node keeps the real one).
    pub bgp: NodeBgpSpec,
    pub vxlan_tunnel: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct PSite {
    /// The bridge's name.
    pub name: String,
    pub cidr: Ipv4Net,
    /// The WAN's address here, its interface and bridge port (with ≥2 sites).
    pub wan: Option<(Ipv4Addr, String, String)>,
    /// Indexes into [`Plan::nodes`], in kind's order.
    pub nodes: Vec<usize>,
}

/// A Secret the import writes, with generated values.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct GenSecret {
    pub name: String,
    pub namespace: String,
    pub values: Vec<(String, String)>,
}

/// Everything the files say, decided once.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    pub name: String,
    /// In kind's order: control planes, then workers, each by name.
    pub nodes: Vec<PNode>,
    pub sites: Vec<PSite>,
    pub wan_name: String,
    pub pod_subnet: Ipv4Net,
    pub service_subnet: Ipv4Net,
    pub as_number: u32,
    pub ipip_mode: String,
    /// The Calico resources to write, in order (JSON as the API serves them).
    pub docs: Vec<J>,
    pub secrets: Vec<GenSecret>,
    pub peers: usize,
    pub notes: Notes,
}

/// A node's facts gathered from its Kubernetes Node and its Calico Node.
#[derive(Debug, Clone, Default)]
struct Facts {
    labels: Option<BTreeMap<String, String>>,
    /// projectcalico.org/* annotations.
    calico: BTreeMap<String, String>,
    bgp: Option<NodeBgpSpec>,
    vxlan: Option<String>,
    internal_ip: Option<Ipv4Addr>,
    loc: Option<Loc>,
    /// Line of each projectcalico.org annotation of the Kubernetes Node.
    ann_lines: BTreeMap<String, usize>,
}

/// "a, b, c and 5 more".
fn list(names: &[String]) -> String {
    let mut s = names.iter().take(LIST_MAX).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > LIST_MAX {
        s.push_str(&format!(" and {} more", names.len() - LIST_MAX));
    }
    s
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Whether a label key marks a control plane (kubeadm's current and former role labels).
fn is_control_plane(labels: &BTreeMap<String, String>) -> bool {
    labels.contains_key("node-role.kubernetes.io/control-plane")
        || labels.contains_key("node-role.kubernetes.io/master")
}

/// Why a node label stays out of the kind config (None: it goes in). The twin adds `kubernetes.io/arch`,
/// `os`, `hostname` and the control-plane role itself (`lab::kind_labels`); kind and kubeadm set the role
/// labels; the kubelet refuses `--node-labels` in the kubernetes.io and k8s.io namespaces except its own
/// well-known ones (k8s.io/kubernetes pkg/kubelet/apis: zone, region, instance-type, os, arch, hostname and the
/// kubelet.kubernetes.io and node.kubernetes.io namespaces).
pub(super) fn kind_label_exclusion(key: &str) -> Option<&'static str> {
    match key {
        "kubernetes.io/hostname" | "kubernetes.io/os" | "kubernetes.io/arch" => return Some("set by the kubelet"),
        "node.kubernetes.io/exclude-from-external-load-balancers" => return Some("set by kubeadm"),
        _ => {}
    }
    if key.starts_with("beta.kubernetes.io/") {
        return Some("set by the kubelet");
    }
    if key.starts_with("node-role.kubernetes.io/") {
        return Some("the node's role, set by kubeadm (the kind config gives the role)");
    }
    let (domain, _) = key.rsplit_once('/')?;
    let k8s = domain == "kubernetes.io"
        || domain.ends_with(".kubernetes.io")
        || domain == "k8s.io"
        || domain.ends_with(".k8s.io");
    let allowed = matches!(
        key,
        "topology.kubernetes.io/zone"
            | "topology.kubernetes.io/region"
            | "failure-domain.beta.kubernetes.io/zone"
            | "failure-domain.beta.kubernetes.io/region"
            | "node.kubernetes.io/instance-type"
    ) || domain == "kubelet.kubernetes.io"
        || domain == "node.kubernetes.io";
    if k8s && !allowed {
        return Some("the kubelet refuses it in --node-labels");
    }
    None
}

/// A node name the lab can use: a containerlab node name (`^[a-zA-Z0-9][a-zA-Z0-9-._]*$`) that is also a
/// Kubernetes node name (RFC 1123: lower case, no `_`), as `rrlab.io/node-names` requires.
fn valid_node_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
}

/// A name not in `taken`: `base`, else `base-2`, `base-3`, … (kept within `max` characters).
fn free_name(base: &str, taken: &HashSet<String>, max: usize) -> String {
    if !taken.contains(base) {
        return base.to_string();
    }
    (2..)
        .map(|i| {
            let suffix = format!("-{i}");
            let keep = max.saturating_sub(suffix.len()).min(base.len());
            format!("{}{suffix}", &base[..keep])
        })
        .find(|n| !taken.contains(n))
        .unwrap_or_else(|| base.to_string())
}

/// Gather every node's facts: its Kubernetes Node (labels, projectcalico.org annotations, InternalIP) and
/// its Calico Node (labels when there is no Kubernetes Node, spec.bgp).
fn gather(read: &Read, notes: &mut Notes) -> BTreeMap<String, Facts> {
    let mut facts: BTreeMap<String, Facts> = BTreeMap::new();
    let mut other_calico: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut other_annotations = 0usize;
    let known = [ANN_IPV4, ANN_IPV6, ANN_ASN, ANN_RR_CLUSTER_ID, ANN_IPIP_TUNNEL, ANN_VXLAN_TUNNEL];
    let mut take_annotations = |name: &str, anns: &BTreeMap<String, String>, f: &mut Facts| {
        for (k, v) in anns {
            if known.contains(&k.as_str()) {
                f.calico.entry(k.clone()).or_insert_with(|| v.clone());
            } else if k.starts_with("projectcalico.org/") {
                other_calico.entry(k.clone()).or_default().push(name.to_string());
            } else {
                other_annotations += 1;
            }
        }
    };
    for k in &read.kube_nodes {
        let f = facts.entry(k.name.clone()).or_default();
        f.labels = Some(k.labels.clone());
        take_annotations(&k.name, &k.annotations, f);
        f.internal_ip = f.internal_ip.or(k.internal_ip);
        f.loc = Some(k.loc.clone());
        f.ann_lines = k.ann_lines.clone();
    }
    for c in &read.calico_nodes {
        let name = c.node.metadata.name.clone();
        let f = facts.entry(name.clone()).or_default();
        if f.labels.is_none() {
            f.labels = Some(c.node.metadata.labels.clone());
        }
        take_annotations(&name, &c.node.metadata.annotations, f);
        f.bgp = c.node.bgp.clone();
        f.vxlan = c.node.ipv4_vxlan_tunnel_addr.clone();
        f.internal_ip = f.internal_ip.or(c.internal_ip);
        if f.loc.is_none() {
            f.loc = Some(c.loc.clone());
        }
    }
    for (k, names) in other_calico {
        let why = if k == "projectcalico.org/kube-labels" {
            "Calico's copy of the node's labels (the labels themselves are imported)"
        } else {
            "not modelled by the twin"
        };
        notes.dropped.push(format!("annotation {k} on {} node(s) ({}): {why}", names.len(), list(&names)));
    }
    if other_annotations > 0 {
        notes.dropped.push(format!(
            "{other_annotations} Kubernetes node annotation(s) that are not Calico's (kubeadm, CSI, cloud providers): nothing in calico-node reads them"
        ));
    }
    let unschedulable: Vec<String> =
        read.kube_nodes.iter().filter(|n| n.unschedulable).map(|n| n.name.clone()).collect();
    if !unschedulable.is_empty() {
        notes.dropped.push(format!(
            "spec.unschedulable of {} (cordoned): the lab's nodes start schedulable",
            list(&unschedulable)
        ));
    }
    facts
}

/// The node's address with the prefix it has (None: only an InternalIP, whose prefix is its site's).
struct Addr {
    ip: Ipv4Addr,
    prefix: Option<u8>,
}

/// An error in the value of a node's projectcalico.org annotation, at the annotation's line.
fn ann_err(name: &str, f: &Facts, ann: &str, message: String) -> ImportError {
    let loc = f.loc.clone().unwrap_or(Loc { file: String::new(), line: 0, path: String::new() });
    let line = f.ann_lines.get(ann).copied().unwrap_or(loc.line);
    ImportError::field(
        &loc.file,
        line,
        &loc.field(&format!("metadata.annotations.{ann}")),
        format!("{message} (node {name})"),
    )
}

fn node_addr(name: &str, f: &Facts) -> Result<Option<Addr>, ImportError> {
    let v4 = |s: &str| -> Result<Addr, String> {
        match parse_cidr_or_ip(s) {
            Ok((IpAddr::V4(ip), net)) => Ok(Addr { ip, prefix: s.contains('/').then_some(net.prefix_len()) }),
            Ok(_) => Err(format!("{s:?} is not an IPv4 address")),
            Err(e) => Err(e),
        }
    };
    if let Some(v) = f.calico.get(ANN_IPV4).filter(|s| !s.is_empty()) {
        return v4(v).map(Some).map_err(|e| ann_err(name, f, ANN_IPV4, e));
    }
    if let Some(v) = f.bgp.as_ref().and_then(|b| b.ipv4_address.clone()) {
        // Validated by the twin's decoder already.
        return v4(&v).map(Some).map_err(|e| ann_err(name, f, ANN_IPV4, e));
    }
    Ok(f.internal_ip.map(|ip| Addr { ip, prefix: None }))
}

/// The other projectcalico.org annotations the Calico Node carries, checked as calicoctl checks its fields
/// (KDD would ignore a bad one; the twin's apply would refuse it).
fn check_annotations(name: &str, f: &Facts) -> Result<(), ImportError> {
    for (ann, v) in &f.calico {
        let ok = match ann.as_str() {
            ANN_ASN => parse_as_number(v).map(|_| ()),
            ANN_RR_CLUSTER_ID | ANN_IPIP_TUNNEL | ANN_VXLAN_TUNNEL => {
                v.parse::<Ipv4Addr>().map(|_| ()).map_err(|_| format!("{v:?} is not an IPv4 address"))
            }
            ANN_IPV6 => match parse_cidr_or_ip(v) {
                Ok((IpAddr::V6(_), _)) => Ok(()),
                Ok(_) => Err(format!("{v:?} is not an IPv6 address")),
                Err(e) => Err(e),
            },
            _ => Ok(()),
        };
        if v.is_empty() {
            continue;
        }
        ok.map_err(|e| ann_err(name, f, ann, e))?;
    }
    Ok(())
}

/// The projectcalico.org annotation, else the Calico Node field.
fn pick(f: &Facts, ann: &str, spec: impl Fn(&NodeBgpSpec) -> Option<String>) -> Option<String> {
    f.calico.get(ann).filter(|s| !s.is_empty()).cloned().or_else(|| f.bgp.as_ref().and_then(spec))
}

/// Decide the lab.
pub(super) fn plan(
    name: &str,
    read: &Read,
    sites_file: Option<&SitesFile>,
    opts: &ImportOptions,
) -> Result<Plan, ImportError> {
    let mut notes = Notes::default();
    let facts = gather(read, &mut notes);
    if facts.is_empty() {
        return Err(ImportError::Options(
            "no nodes in the input: give `kubectl get nodes -o yaml` or `calicoctl get nodes -o yaml` output".into(),
        ));
    }
    if let Some((n, f)) = facts.iter().find(|(n, _)| !valid_node_name(n)) {
        let loc = f.loc.clone().unwrap_or(Loc { file: String::new(), line: 0, path: String::new() });
        return Err(loc.err(
            "metadata.name",
            format!("node name {n:?} cannot name a lab node: containerlab node names match ^[a-zA-Z0-9][a-zA-Z0-9-._]*$ and rrlab.io/node-names takes lower-case letters, digits, '.' and '-'"),
        ));
    }
    if let Some(f) = facts.get(name) {
        let loc = f.loc.clone().unwrap_or(Loc { file: String::new(), line: 0, path: String::new() });
        return Err(ImportError::Options(format!(
            "--name {name}: a node of the cluster has that name ({}:{}); the cluster's k8s-kind node needs another",
            loc.file, loc.line
        )));
    }

    // Addresses: explicit ones first; an InternalIP alone takes the prefix of a subnet already known.
    let mut addrs: BTreeMap<String, Addr> = BTreeMap::new();
    let mut bare: Vec<String> = Vec::new();
    for (n, f) in &facts {
        check_annotations(n, f)?;
        match node_addr(n, f)? {
            Some(a) => {
                if a.prefix.is_none() {
                    bare.push(n.clone());
                }
                addrs.insert(n.clone(), a);
            }
            None => {
                let loc = f.loc.clone().unwrap_or(Loc { file: String::new(), line: 0, path: String::new() });
                return Err(ImportError::NoAddress {
                    node: n.clone(),
                    file: loc.file.clone(),
                    line: loc.line,
                    field: loc.field("metadata.name"),
                });
            }
        }
    }
    let mut seen_ip: BTreeMap<Ipv4Addr, &str> = BTreeMap::new();
    for (n, a) in &addrs {
        if let Some(other) = seen_ip.insert(a.ip, n) {
            let loc = facts[n].loc.clone().unwrap_or(Loc { file: String::new(), line: 0, path: String::new() });
            return Err(loc.err("metadata.name", format!("node {n} has address {}, as node {other} has", a.ip)));
        }
    }

    // Sites.
    let mut site_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut sites: Vec<PSite> = Vec::new();
    let mut widened: Vec<String> = Vec::new();
    let mut reprefixed: Vec<String> = Vec::new();
    match sites_file {
        Some(sf) => {
            for s in &sf.sites {
                sites.push(PSite { name: s.name.clone(), cidr: s.cidr, wan: None, nodes: Vec::new() });
            }
            for (n, a) in &addrs {
                let Some(i) = sites.iter().position(|s| s.cidr.contains(&a.ip)) else {
                    let loc = facts[n].loc.clone().unwrap_or(Loc { file: String::new(), line: 0, path: String::new() });
                    return Err(ImportError::field(
                        &sf.file,
                        0,
                        "sites",
                        format!(
                            "node {n} ({}, {}:{}) is in no site of this file (sites: {})",
                            a.ip,
                            loc.file,
                            loc.line,
                            sf.sites.iter().map(|s| format!("{} {}", s.name, s.cidr)).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                };
                if a.prefix.is_some_and(|p| p != sites[i].cidr.prefix_len()) {
                    reprefixed.push(n.clone());
                }
                site_of.insert(n.clone(), i);
            }
            // A site without nodes would be a bridge with only the WAN on it.
            let used: BTreeSet<usize> = site_of.values().copied().collect();
            let empty: Vec<String> = sites
                .iter()
                .enumerate()
                .filter(|(i, _)| !used.contains(i))
                .map(|(_, s)| format!("{} {}", s.name, s.cidr))
                .collect();
            if !empty.is_empty() {
                let renumber: BTreeMap<usize, usize> = used.iter().enumerate().map(|(new, old)| (*old, new)).collect();
                let mut i = 0;
                sites.retain(|_| {
                    i += 1;
                    used.contains(&(i - 1))
                });
                for v in site_of.values_mut() {
                    *v = renumber[v];
                }
                notes.dropped.push(format!(
                    "site(s) of {} with no node: {}; not in the lab",
                    sf.file,
                    empty.join(", ")
                ));
            }
            notes.derived.push(format!(
                "sites from {}: {}",
                sf.file,
                sites.iter().map(|s| format!("{} = {}", s.name, s.cidr)).collect::<Vec<_>>().join(", ")
            ));
        }
        None => {
            // Each explicit address's network; /31 and /32 say nothing about the subnet: their /24.
            let mut nets: BTreeSet<Ipv4Net> = BTreeSet::new();
            for (n, a) in &addrs {
                if let Some(p) = a.prefix {
                    let p = if p > 30 {
                        widened.push(format!("{n} ({}/{p})", a.ip));
                        24
                    } else {
                        p
                    };
                    nets.insert(Ipv4Net::new(a.ip, p).map(|x| x.trunc()).unwrap_or_default());
                }
            }
            // A network inside a wider one joins it: widest first.
            let mut ordered: Vec<Ipv4Net> = nets.into_iter().collect();
            ordered.sort_by_key(|c| (c.prefix_len(), c.network()));
            let mut cidrs: Vec<Ipv4Net> = Vec::new();
            for c in ordered {
                if !cidrs.iter().any(|s| s.contains(&c.network())) {
                    cidrs.push(c);
                }
            }
            for n in &bare {
                let ip = addrs[n].ip;
                if !cidrs.iter().any(|s| s.contains(&ip)) {
                    cidrs.push(Ipv4Net::new(ip, 24).map(|x| x.trunc()).unwrap_or_default());
                }
            }
            cidrs.sort_by_key(|c| c.network());
            for (i, c) in cidrs.iter().enumerate() {
                sites.push(PSite { name: format!("site-{}", i + 1), cidr: *c, wan: None, nodes: Vec::new() });
            }
            for (n, a) in &addrs {
                let i = sites.iter().position(|s| s.cidr.contains(&a.ip)).unwrap_or(0);
                if a.prefix.is_some_and(|p| p <= 30 && p != sites[i].cidr.prefix_len()) {
                    reprefixed.push(n.clone());
                }
                site_of.insert(n.clone(), i);
            }
            notes.derived.push(format!(
                "sites from the node subnets: {}",
                sites.iter().map(|s| format!("{} = {}", s.name, s.cidr)).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if !widened.is_empty() {
        notes.derived.push(format!(
            "{} node address(es) with a /31 or /32 prefix (no subnet to learn from) put in their /24: {}",
            widened.len(),
            list(&widened)
        ));
    }
    if !bare.is_empty() {
        notes.derived.push(format!(
            "{} node(s) had only a Kubernetes InternalIP (no projectcalico.org/IPv4Address, no Calico Node): their address takes their site's prefix: {}",
            bare.len(),
            list(&bare)
        ));
    }
    if !reprefixed.is_empty() {
        notes.derived.push(format!(
            "{} node(s) sit on a site wider than their own prefix, and take the site's prefix on {NODE_IFACE} (their Calico address keeps its own): {}",
            reprefixed.len(),
            list(&reprefixed)
        ));
    }

    // Names: the cluster, the nodes, the bridges and the WAN share containerlab's node namespace.
    let mut taken: HashSet<String> = facts.keys().cloned().collect();
    taken.insert(name.to_string());
    for s in &mut sites {
        if taken.contains(&s.name) {
            if let Some(sf) = sites_file {
                let line = sf.sites.iter().find(|x| x.name == s.name).map(|x| x.line).unwrap_or(0);
                return Err(ImportError::field(
                    &sf.file,
                    line,
                    &format!("sites.{}", s.name),
                    format!("{:?} is also the name of a node or of the cluster: give the site another name", s.name),
                ));
            }
            s.name = free_name(&s.name, &taken, 15);
        }
        debug_assert!(valid_site_name(&s.name));
        taken.insert(s.name.clone());
    }
    let wan_name = free_name("wan", &taken, 63);

    // The WAN: on each site .1 when free, else the highest free host address.
    let mut peer_ips: HashSet<Ipv4Addr> = HashSet::new();
    for r in &read.resources {
        if let Resource::BGPPeer(p) = &r.resource {
            if let Some(Ok((IpAddr::V4(ip), _))) = p.spec.peer_ip.as_deref().map(parse_peer_ip) {
                peer_ips.insert(ip);
            }
        }
    }
    let node_ips: HashSet<Ipv4Addr> = addrs.values().map(|a| a.ip).collect();
    if sites.len() >= 2 {
        let mut wan_notes = Vec::new();
        for (i, s) in sites.iter_mut().enumerate() {
            let net = u32::from(s.cidr.network());
            let bcast = u32::from(s.cidr.broadcast());
            let free = |ip: u32| !node_ips.contains(&Ipv4Addr::from(ip)) && !peer_ips.contains(&Ipv4Addr::from(ip));
            let pick = if free(net + 1) { Some(net + 1) } else { (net + 1..bcast).rev().find(|ip| free(*ip)) };
            let Some(ip) = pick.map(Ipv4Addr::from) else {
                return Err(ImportError::Options(format!(
                    "site {} ({}) has no free address for the WAN: every host address is a node's or a BGP peer's; give a wider site with --sites",
                    s.name, s.cidr
                )));
            };
            s.wan = Some((ip, format!("eth{}", i + 1), format!("s{}w", i + 1)));
            wan_notes.push(format!("{} on {} (eth{})", ip, s.name, i + 1));
        }
        notes.derived.push(format!(
            "the WAN ({wan_name}, a forwarding linux node between the sites) takes {}",
            wan_notes.join(", ")
        ));
    }

    // Roles and kind's order: control planes, then workers, each by name.
    let mut cps: Vec<&String> =
        facts.iter().filter(|(_, f)| f.labels.as_ref().is_some_and(is_control_plane)).map(|(n, _)| n).collect();
    let mut workers: Vec<&String> = facts.keys().filter(|n| !cps.contains(n)).collect();
    if cps.is_empty() {
        let first = workers.remove(0);
        notes.derived.push(format!(
            "no node has a node-role.kubernetes.io/control-plane or /master label: {first} (the first by name) is the kind control plane"
        ));
        cps.push(first);
    }
    let mut kind_dropped: BTreeMap<String, (&'static str, usize)> = BTreeMap::new();
    let mut nodes: Vec<PNode> = Vec::new();
    for (role, names) in [(Role::ControlPlane, &cps), (Role::Worker, &workers)] {
        for n in names.iter() {
            let f = &facts[*n];
            let a = &addrs[*n];
            let si = site_of[*n];
            let labels = f.labels.clone().unwrap_or_default();
            let mut kind_labels = BTreeMap::new();
            for (k, v) in &labels {
                match kind_label_exclusion(k) {
                    Some(why) => kind_dropped.entry(k.clone()).or_insert((why, 0)).1 += 1,
                    None => {
                        kind_labels.insert(k.clone(), v.clone());
                    }
                }
            }
            let prefix = a.prefix.unwrap_or(sites[si].cidr.prefix_len());
            let as_number =
                pick(f, ANN_ASN, |b| b.as_number.map(|x| x.to_string())).and_then(|s| parse_as_number(&s).ok());
            let bgp = NodeBgpSpec {
                ipv4_address: Some(format!("{}/{prefix}", a.ip)),
                ipv6_address: pick(f, ANN_IPV6, |b| b.ipv6_address.clone()),
                as_number,
                route_reflector_cluster_id: pick(f, ANN_RR_CLUSTER_ID, |b| b.route_reflector_cluster_id.clone()),
                ipv4_ipip_tunnel_addr: pick(f, ANN_IPIP_TUNNEL, |b| b.ipv4_ipip_tunnel_addr.clone()),
            };
            let vxlan_tunnel = f.calico.get(ANN_VXLAN_TUNNEL).cloned().or_else(|| f.vxlan.clone());
            nodes.push(PNode {
                name: (*n).clone(),
                role,
                labels,
                kind_labels,
                ip: a.ip,
                site: si,
                port: String::new(),
                bgp,
                vxlan_tunnel,
            });
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        sites[n.site].nodes.push(i);
    }
    for (si, s) in sites.iter().enumerate() {
        for (k, &ni) in s.nodes.iter().enumerate() {
            nodes[ni].port = format!("s{}n{}", si + 1, k + 1);
        }
    }
    let mut by_reason: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (k, (why, count)) in &kind_dropped {
        by_reason.entry(why).or_default().push(format!("{k} ({count} node(s))"));
    }
    for (why, labels) in by_reason {
        notes.dropped.push(format!(
            "labels left out of the kind config ({why}): {}; they stay on the Calico Nodes of the Calico state, so selectors still see them",
            labels.join(", ")
        ));
    }

    // Pools: the pod subnet is the first enabled IPv4 pool, default-ipv4-ippool first.
    let pools: Vec<&crate::model::resources::IpPool> = {
        let mut v: Vec<_> = read
            .resources
            .iter()
            .filter_map(|r| if let Resource::IPPool(p) = &r.resource { Some(p) } else { None })
            .collect();
        v.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        v
    };
    let ds = read.daemonsets.first();
    let env = |k: &str| ds.and_then(|d| d.env.iter().find(|(n, _)| n == k)).and_then(|(_, v)| v.clone());
    let pod_pool = pools
        .iter()
        .filter(|p| !p.spec.disabled && matches!(p.spec.cidr, IpNet::V4(_)))
        .min_by_key(|p| (p.metadata.name != "default-ipv4-ippool", p.metadata.name.clone()))
        .copied();
    let (pod_subnet, ipip_mode) = match pod_pool {
        Some(p) => {
            let IpNet::V4(c) = p.spec.cidr else { unreachable!("filtered to IPv4") };
            let mode = match p.spec.ipip_mode {
                EncapMode::Always => "Always",
                EncapMode::CrossSubnet => "CrossSubnet",
                EncapMode::Never => "Never",
            };
            notes.derived.push(format!(
                "kind's podSubnet {c} and rrlab.io/ipip-mode {mode} from IPPool {} (the first enabled IPv4 pool{})",
                p.metadata.name,
                if p.metadata.name == "default-ipv4-ippool" { ", the default one" } else { " by name" }
            ));
            (c, mode.to_string())
        }
        None => {
            let (cidr_s, from) = match env("CALICO_IPV4POOL_CIDR") {
                Some(c) => (c, "the calico-node DaemonSet's CALICO_IPV4POOL_CIDR"),
                None => (
                    CALICO_DEFAULT_POOL.to_string(),
                    "Calico's manifest default (no IPPool and no CALICO_IPV4POOL_CIDR in the input)",
                ),
            };
            let c: Ipv4Net = cidr_s.trim().parse().map_err(|_| {
                ImportError::Options(format!(
                    "CALICO_IPV4POOL_CIDR {cidr_s:?} of the calico-node DaemonSet is not an IPv4 CIDR"
                ))
            })?;
            let mode = match env("CALICO_IPV4POOL_IPIP").as_deref() {
                Some("Always") | Some("always") => "Always",
                Some("CrossSubnet") | Some("cross-subnet") => "CrossSubnet",
                Some("Never") | Some("never") | Some("Off") | Some("off") => "Never",
                _ => DEFAULT_IPIP_MODE,
            };
            notes.derived.push(format!(
                "no enabled IPv4 IPPool in the input: podSubnet {} from {from}; the twin creates default-ipv4-ippool from it with ipipMode {mode}",
                c.trunc()
            ));
            (c.trunc(), mode.to_string())
        }
    };
    if pod_subnet.prefix_len() > 26 {
        return Err(ImportError::Options(format!(
            "pod subnet {pod_subnet} is smaller than one Calico IPAM block (/26): kind's podSubnet cannot be it"
        )));
    }
    for p in &pools {
        if let IpNet::V4(c) = p.spec.cidr {
            if let Some(s) = sites.iter().find(|s| overlaps(&s.cidr, &c)) {
                let loc = read
                    .resources
                    .iter()
                    .find(|r| matches!(&r.resource, Resource::IPPool(x) if x.metadata.name == p.metadata.name))
                    .map(|r| r.loc.clone())
                    .unwrap_or(Loc { file: String::new(), line: 0, path: String::new() });
                return Err(loc.err(
                    "spec.cidr",
                    format!(
                        "IPPool {} ({c}) overlaps site {} ({}): node and pod addresses must not overlap",
                        p.metadata.name, s.name, s.cidr
                    ),
                ));
            }
        }
    }

    // The AS: the default BGPConfiguration's, else Calico's default.
    let default_conf = read.resources.iter().find_map(|r| match &r.resource {
        Resource::BGPConfiguration(c) if c.metadata.name == "default" => Some(c),
        _ => None,
    });
    let as_number = default_conf.and_then(|c| c.spec.as_number).unwrap_or(DEFAULT_AS);
    notes.derived.push(format!(
        "rrlab.io/calico-as {as_number} ({})",
        if default_conf.and_then(|c| c.spec.as_number).is_some() {
            "the default BGPConfiguration's asNumber"
        } else {
            "Calico's default: no asNumber in a default BGPConfiguration"
        }
    ));

    // The service subnet: given, else the cluster's (serviceClusterIPs), else kubeadm's default, else a free /16.
    let mut occupied: Vec<(String, Ipv4Net)> = sites.iter().map(|s| (format!("site {}", s.name), s.cidr)).collect();
    occupied.push(("the pod subnet".into(), pod_subnet));
    for p in &pools {
        if let IpNet::V4(c) = p.spec.cidr {
            occupied.push((format!("IPPool {}", p.metadata.name), c));
        }
    }
    let service_subnet = service_subnet(opts.service_subnet, default_conf, &occupied, &mut notes)?;

    // Secrets: every referenced password, with a generated value.
    let default_ns = ds.and_then(|d| d.namespace.clone()).unwrap_or_else(|| "kube-system".to_string());
    let secrets = secrets(read, &default_ns, opts.seed, &mut notes);

    // The Calico resources, in apply order.
    let node_names: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut docs: Vec<J> = Vec::new();
    let of_kind = |k: crate::model::resources::ResourceKind| -> Vec<&Resource> {
        let mut v: Vec<&Resource> = read.resources.iter().map(|r| &r.resource).filter(|r| r.kind() == k).collect();
        v.sort_by(|a, b| (a.name() != "default", a.name()).cmp(&(b.name() != "default", b.name())));
        v
    };
    use crate::model::resources::ResourceKind as K;
    for r in of_kind(K::IPPool) {
        docs.push(to_json(r));
    }
    for r in of_kind(K::BGPConfiguration) {
        docs.push(bgp_configuration_json(r));
    }
    for r in of_kind(K::FelixConfiguration) {
        docs.push(to_json(r));
    }
    let mut sorted: Vec<&PNode> = nodes.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for n in sorted {
        let cn = CalicoNode {
            metadata: Meta {
                name: n.name.clone(),
                namespace: None,
                labels: n.labels.clone(),
                annotations: BTreeMap::new(),
            },
            bgp: Some(n.bgp.clone()),
            ipv4_vxlan_tunnel_addr: n.vxlan_tunnel.clone(),
        };
        docs.push(to_json(&Resource::Node(cn)));
    }
    let peers = of_kind(K::BGPPeer);
    let mut external: Vec<String> = Vec::new();
    let mut unknown_node: Vec<String> = Vec::new();
    for r in &peers {
        if let Resource::BGPPeer(p) = r {
            if let Some(Ok((IpAddr::V4(ip), _))) = p.spec.peer_ip.as_deref().map(parse_peer_ip) {
                if !node_ips.contains(&ip) {
                    external.push(format!("{} ({ip})", p.metadata.name));
                }
            }
            if let Some(n) = &p.spec.node {
                if !node_names.contains(n.as_str()) {
                    unknown_node.push(format!("{} (node {n})", p.metadata.name));
                }
            }
        }
        docs.push(to_json(r));
    }
    if !external.is_empty() {
        notes.dropped.push(format!(
            "BGPPeer(s) to addresses no node has (routers outside the cluster): {}; the lab has no BGP speaker there, so those sessions stay down",
            list(&external)
        ));
    }
    if !unknown_node.is_empty() {
        notes
            .dropped
            .push(format!("BGPPeer(s) for nodes not in the input: {}; they select no node", list(&unknown_node)));
    }
    let mut blocks = 0;
    let mut orphan_blocks: Vec<String> = Vec::new();
    for r in of_kind(K::BlockAffinity) {
        if let Resource::BlockAffinity(b) = r {
            if !node_names.contains(b.node.as_str()) {
                orphan_blocks.push(format!("{} ({})", b.name, b.node));
                continue;
            }
        }
        blocks += 1;
        docs.push(to_json(r));
    }
    if !orphan_blocks.is_empty() {
        notes
            .dropped
            .push(format!("BlockAffinity(s) of nodes not in the input: {}; not written", list(&orphan_blocks)));
    }

    // What was imported.
    let cp_names: Vec<String> = nodes.iter().filter(|n| n.role == Role::ControlPlane).map(|n| n.name.clone()).collect();
    notes.imported.insert(
        0,
        format!(
            "{} node(s) under their real names, addresses kept: {} control plane(s) ({}), {} worker(s)",
            nodes.len(),
            cp_names.len(),
            list(&cp_names),
            nodes.len() - cp_names.len()
        ),
    );
    notes.imported.push(format!(
        "{} site(s): {}",
        sites.len(),
        sites
            .iter()
            .map(|s| format!("{} {} ({} node(s))", s.name, s.cidr, s.nodes.len()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let pool_text: Vec<String> = pools
        .iter()
        .map(|p| {
            format!(
                "{} {} (ipipMode {:?}, vxlanMode {:?}, blockSize {}{})",
                p.metadata.name,
                p.spec.cidr,
                p.spec.ipip_mode,
                p.spec.vxlan_mode,
                p.spec.block_size,
                if p.spec.disabled { ", disabled" } else { "" }
            )
        })
        .collect();
    notes.imported.push(if pool_text.is_empty() {
        "no IPPool".to_string()
    } else {
        format!("IPPool(s): {}", pool_text.join("; "))
    });
    let mut as_nodes: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for n in &nodes {
        if let Some(a) = n.bgp.as_number {
            as_nodes.entry(a).or_default().push(n.name.clone());
        }
    }
    let mut as_text = format!("AS numbers: global {as_number}");
    for (a, ns) in &as_nodes {
        as_text.push_str(&format!("; {a} on {}", list(ns)));
    }
    notes.imported.push(as_text);
    let rrs: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.bgp.route_reflector_cluster_id.as_ref().map(|c| format!("{} ({c})", n.name)))
        .collect();
    if !rrs.is_empty() {
        notes.imported.push(format!("route reflectors (routeReflectorClusterID): {}", list(&rrs)));
    }
    let confs: Vec<String> = of_kind(K::BGPConfiguration)
        .iter()
        .filter_map(|r| match r {
            Resource::BGPConfiguration(c) => Some(format!(
                "{} (asNumber {}, nodeToNodeMeshEnabled {})",
                c.metadata.name,
                c.spec.as_number.map(|a| a.to_string()).unwrap_or_else(|| "unset".into()),
                c.spec.node_to_node_mesh_enabled.map(|b| b.to_string()).unwrap_or_else(|| "unset (true)".into())
            )),
            _ => None,
        })
        .collect();
    notes.imported.push(if confs.is_empty() {
        "no BGPConfiguration (the node-to-node mesh is on, as Calico starts)".to_string()
    } else {
        format!("BGPConfiguration(s): {}", confs.join("; "))
    });
    let peer_names: Vec<String> = peers.iter().map(|p| p.name().to_string()).collect();
    notes.imported.push(format!(
        "{} BGPPeer(s){}",
        peers.len(),
        if peers.is_empty() { String::new() } else { format!(": {}", list(&peer_names)) }
    ));
    let felix = of_kind(K::FelixConfiguration).len();
    if felix > 0 {
        notes.imported.push(format!("{felix} FelixConfiguration(s)"));
    }
    if blocks > 0 {
        notes.imported.push(format!("{blocks} BlockAffinity(s) (IPAM blocks)"));
    }

    // The calico-node DaemonSet's env.
    if let Some(d) = ds {
        let mut used = Vec::new();
        let mut others = Vec::new();
        for (k, v) in &d.env {
            let shown = v.clone().unwrap_or_else(|| "<valueFrom>".into());
            match k.as_str() {
                "CALICO_IPV4POOL_CIDR" | "CALICO_IPV4POOL_IPIP" if pod_pool.is_none() => used.push(format!("{k}={shown}")),
                "CALICO_IPV4POOL_CIDR" | "CALICO_IPV4POOL_IPIP" => {
                    used.push(format!("{k}={shown} (only read when calico-node creates the first pool; the IPPools given win)"))
                }
                "IP_AUTODETECTION_METHOD" => used.push(format!(
                    "{k}={shown} (the lab puts each node's address on {NODE_IFACE} and autodetects it there: interface={NODE_IFACE})"
                )),
                "CALICO_NETWORKING_BACKEND" if v.as_deref().is_some_and(|b| b != "bird") => used.push(format!(
                    "{k}={shown}: this cluster does not run BIRD; the twin does, so its BGP sessions exist only in the lab"
                )),
                "CALICO_NETWORKING_BACKEND" => used.push(format!("{k}={shown}")),
                "AS" => used.push(format!(
                    "AS={shown} (calico-node writes it on nodes without an AS at startup; the nodes' AS numbers are imported as they are)"
                )),
                _ => others.push(k.clone()),
            }
        }
        notes.imported.push(format!(
            "calico-node DaemonSet {}/{} ({}:{}): {}",
            d.namespace.clone().unwrap_or_default(),
            d.name,
            d.loc.file,
            d.loc.line,
            if used.is_empty() { "none of the variables rrlab reads".to_string() } else { used.join("; ") }
        ));
        if !others.is_empty() {
            notes.dropped.push(format!("calico-node env not modelled by the twin: {}", others.join(", ")));
        }
    }
    if read.daemonsets.len() > 1 {
        notes.dropped.push(format!(
            "{} calico-node DaemonSets: only the first ({}:{}) is read",
            read.daemonsets.len(),
            read.daemonsets[0].loc.file,
            read.daemonsets[0].loc.line
        ));
    }

    // What the twin does not model.
    if !read.stripped.is_empty() {
        notes.dropped.push(format!(
            "server-side metadata and status: {}",
            read.stripped.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    for ((kind, field), names) in &read.unmodelled {
        notes.dropped.push(format!("{kind} {field} ({}): not modelled by the twin", list(names)));
    }
    notes.dropped.extend(read.remarks.iter().cloned());

    Ok(Plan {
        name: name.to_string(),
        nodes,
        sites,
        wan_name,
        pod_subnet,
        service_subnet,
        as_number,
        ipip_mode,
        docs,
        secrets,
        peers: peers.len(),
        notes,
    })
}

/// kind's serviceSubnet: `given` (which must not overlap), else the cluster's own (the default
/// BGPConfiguration's serviceClusterIPs), else kubeadm's default, else a free /16 of 10.96-10.127.
fn service_subnet(
    given: Option<Ipv4Net>,
    default_conf: Option<&crate::model::resources::BgpConfiguration>,
    occupied: &[(String, Ipv4Net)],
    notes: &mut Notes,
) -> Result<Ipv4Net, ImportError> {
    let clash = |c: &Ipv4Net| occupied.iter().find(|(_, o)| overlaps(o, c)).map(|(w, o)| format!("{w} ({o})"));
    match given {
        Some(s) => {
            if let Some(w) = clash(&s.trunc()) {
                return Err(ImportError::Options(format!("--service-subnet {s} overlaps {w}")));
            }
            Ok(s.trunc())
        }
        None => {
            let from_conf: Option<Ipv4Net> = default_conf
                .and_then(|c| c.spec.service_cluster_ips.iter().find_map(|x| x.parse::<Ipv4Net>().ok()))
                .map(|c| c.trunc());
            let default: Ipv4Net = DEFAULT_SERVICE_SUBNET.parse().expect("a CIDR");
            match from_conf.filter(|c| clash(c).is_none()) {
                Some(c) => {
                    notes
                        .derived
                        .push(format!("kind's serviceSubnet {c}: the default BGPConfiguration's serviceClusterIPs"));
                    Ok(c)
                }
                None if clash(&default).is_none() => {
                    notes.derived.push(format!("kind's serviceSubnet {default} (kubeadm's default)"));
                    Ok(default)
                }
                None => {
                    let why = clash(&default).unwrap_or_default();
                    let free = (96..=127u8)
                        .map(|b| Ipv4Net::new(Ipv4Addr::new(10, b, 0, 0), 16).expect("a /16"))
                        .find(|c| clash(c).is_none())
                        .ok_or_else(|| {
                            ImportError::Options(format!(
                                "no free service subnet: {default} overlaps {why} and so does every /16 of 10.96.0.0-10.127.0.0; give --service-subnet"
                            ))
                        })?;
                    notes
                        .derived
                        .push(format!("kind's serviceSubnet {free}: kubeadm's default {default} overlaps {why}"));
                    Ok(free)
                }
            }
        }
    }
}

/// The Secrets the BGP passwords refer to (BGPPeer `password`, BGPConfiguration `nodeMeshPassword`), every
/// key with a generated value; the input's own Secrets give only their namespace and key names.
fn secrets(read: &Read, default_ns: &str, seed: Option<u64>, notes: &mut Notes) -> Vec<GenSecret> {
    let mut refs: BTreeMap<String, (BTreeSet<String>, Vec<String>)> = BTreeMap::new();
    for r in &read.resources {
        let (owner, sref) = match &r.resource {
            Resource::BGPPeer(p) => (format!("BGPPeer {}", p.metadata.name), p.spec.password.clone()),
            Resource::BGPConfiguration(c) => {
                (format!("BGPConfiguration {} nodeMeshPassword", c.metadata.name), c.spec.node_mesh_password.clone())
            }
            _ => continue,
        };
        if let Some(s) = sref {
            let e = refs.entry(s.name.clone()).or_default();
            e.0.insert(s.key.clone());
            e.1.push(owner);
        }
    }
    let mut rng = match seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_rng(&mut rand::rng()),
    };
    let mut secrets = Vec::new();
    for (sname, (keys, owners)) in &refs {
        let input = read.secrets.iter().find(|s| &s.name == sname);
        let namespace = input.and_then(|s| s.namespace.clone()).unwrap_or_else(|| default_ns.to_string());
        let mut all: BTreeSet<String> = keys.clone();
        if let Some(s) = input {
            all.extend(s.keys.iter().cloned());
        }
        let values: Vec<(String, String)> = all.iter().map(|k| (k.clone(), generate_password(&mut rng))).collect();
        let keys_text = all.iter().cloned().collect::<Vec<_>>().join(", ");
        notes.replaced.push(match input {
            Some(s) => format!(
                "Secret {namespace}/{sname} (key(s) {keys_text}; used by {}): written with freshly generated value(s); the original ({}:{}) was not copied",
                owners.join(", "),
                s.loc.file,
                s.loc.line
            ),
            None => format!(
                "Secret {namespace}/{sname} (key(s) {keys_text}; used by {}) was not in the input: written with freshly generated value(s) so that the sessions come up with a password",
                owners.join(", ")
            ),
        });
        secrets.push(GenSecret { name: sname.clone(), namespace, values });
    }
    for s in &read.secrets {
        if !refs.contains_key(&s.name) {
            notes.dropped.push(format!(
                "Secret {} ({}:{}): no BGPPeer or BGPConfiguration refers to it; not written (its values are never copied)",
                s.name, s.loc.file, s.loc.line
            ));
        }
    }
    secrets
}

/// A BGPConfiguration as calicoctl writes it: `nodeMeshPassword` is `{secretKeyRef: {name, key}}` (the twin's
/// `to_json` writes the reference unwrapped, which its own decoder rejects).
fn bgp_configuration_json(r: &Resource) -> J {
    let mut v = to_json(r);
    if let Some(spec) = v.get_mut("spec").and_then(J::as_object_mut) {
        if let Some(pw) = spec.remove("nodeMeshPassword") {
            let wrapped = if pw.get("secretKeyRef").is_some() { pw } else { json!({"secretKeyRef": pw}) };
            spec.insert("nodeMeshPassword".into(), wrapped);
        }
    }
    v
}

/// A random password: 32 letters and digits (BIRD takes it as a quoted string).
fn generate_password(rng: &mut StdRng) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..32).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_labels_keep_what_kubelet_accepts() {
        assert!(kind_label_exclusion("kubernetes.io/hostname").is_some());
        assert!(kind_label_exclusion("beta.kubernetes.io/arch").is_some());
        assert!(kind_label_exclusion("node-role.kubernetes.io/control-plane").is_some());
        assert!(kind_label_exclusion("node-restriction.kubernetes.io/x").is_some());
        assert_eq!(kind_label_exclusion("topology.kubernetes.io/zone"), None);
        assert_eq!(kind_label_exclusion("node.kubernetes.io/instance-type"), None);
        assert_eq!(kind_label_exclusion("rr-partition"), None);
        assert_eq!(kind_label_exclusion("csi.hetzner.cloud/location"), None);
    }

    #[test]
    fn free_names() {
        let taken: HashSet<String> = ["wan".to_string(), "wan-2".to_string()].into();
        assert_eq!(free_name("wan", &taken, 15), "wan-3");
        assert_eq!(free_name("site-1", &taken, 15), "site-1");
    }
}
