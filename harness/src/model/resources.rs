//! Typed `projectcalico.org/v3` resources (v3.30 fields) and the Kubernetes objects the twin needs, decoded
//! from positioned YAML with calicoctl's validation. Unknown kinds, unknown fields and bad values are errors
//! naming file, document, line and field.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::Serialize;

use super::fields::{Fields, Origin};
use super::selector::Selector;
use super::yaml::{self, Node};
use super::InputError;

pub const CALICO_API: &str = "projectcalico.org/v3";

/// Kubernetes-style object metadata (the parts that matter here).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Meta {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A reference to a key of a Kubernetes Secret (BGP passwords).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EncapMode {
    Never,
    Always,
    CrossSubnet,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeBgpSpec {
    #[serde(rename = "ipv4Address", skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(rename = "ipv6Address", skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_number: Option<u32>,
    #[serde(rename = "routeReflectorClusterID", skip_serializing_if = "Option::is_none")]
    pub route_reflector_cluster_id: Option<String>,
    #[serde(rename = "ipv4IPIPTunnelAddr", skip_serializing_if = "Option::is_none")]
    pub ipv4_ipip_tunnel_addr: Option<String>,
}

/// Calico's Node (in KDD it is a view of the Kubernetes Node: labels are the node's labels, `spec.bgp` lives in
/// `projectcalico.org/*` annotations).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalicoNode {
    pub metadata: Meta,
    pub bgp: Option<NodeBgpSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_vxlan_tunnel_addr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Community {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixAdvertisement {
    pub cidr: String,
    pub communities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpConfigurationSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_severity_screen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_to_node_mesh_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_number: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_mesh_password: Option<SecretKeyRef>,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_mesh_max_restart_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored_interfaces: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<Community>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prefix_advertisements: Vec<PrefixAdvertisement>,
    #[serde(rename = "serviceClusterIPs", skip_serializing_if = "Vec::is_empty")]
    pub service_cluster_ips: Vec<String>,
    #[serde(rename = "serviceExternalIPs", skip_serializing_if = "Vec::is_empty")]
    pub service_external_ips: Vec<String>,
    #[serde(rename = "serviceLoadBalancerIPs", skip_serializing_if = "Vec::is_empty")]
    pub service_load_balancer_ips: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BgpConfiguration {
    pub metadata: Meta,
    pub spec: BgpConfigurationSpec,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeerSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    #[serde(rename = "peerIP", skip_serializing_if = "Option::is_none")]
    pub peer_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_selector: Option<String>,
    /// 0 when absent (Calico's numorstring zero value).
    #[serde(skip_serializing_if = "is_zero")]
    pub as_number: u32,
    #[serde(rename = "localASNumber", skip_serializing_if = "Option::is_none")]
    pub local_as_number: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_original_next_hop: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretKeyRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_restart_time: Option<String>,
    #[serde(rename = "numAllowedLocalASNumbers", skip_serializing_if = "Option::is_none")]
    pub num_allowed_local_as_numbers: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_security: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reachable_by: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_workload_selector: Option<String>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BgpPeer {
    pub metadata: Meta,
    pub spec: BgpPeerSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpPoolSpec {
    pub cidr: IpNet,
    pub block_size: u8,
    #[serde(rename = "ipipMode")]
    pub ipip_mode: EncapMode,
    #[serde(rename = "vxlanMode")]
    pub vxlan_mode: EncapMode,
    pub nat_outgoing: bool,
    pub disabled: bool,
    #[serde(rename = "disableBGPExport")]
    pub disable_bgp_export: bool,
    pub node_selector: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_uses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpPool {
    pub metadata: Meta,
    pub spec: IpPoolSpec,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FelixConfigurationSpec {
    #[serde(rename = "externalNodesList", skip_serializing_if = "Option::is_none")]
    pub external_nodes_list: Option<Vec<String>>,
    #[serde(rename = "ipipEnabled", skip_serializing_if = "Option::is_none")]
    pub ipip_enabled: Option<bool>,
    #[serde(rename = "ipipMTU", skip_serializing_if = "Option::is_none")]
    pub ipip_mtu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_filter_allow_action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_filter_deny_action: Option<String>,
    /// Other fields of the v3.30 API, kept as given.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FelixConfiguration {
    pub metadata: Meta,
    pub spec: FelixConfigurationSpec,
}

/// A Kubernetes Node (`v1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KubeNode {
    pub metadata: Meta,
    #[serde(rename = "podCIDR", skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unschedulable: bool,
}

/// `crd.projectcalico.org/v1` BlockAffinity (as in the golden `common/ipam.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockAffinity {
    pub name: String,
    pub node: String,
    pub cidr: IpNet,
    /// "", "confirmed", "pending", "pendingDeletion".
    pub state: String,
    pub deleted: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

/// A Kubernetes Secret (`v1`), for BGP passwords.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Secret {
    pub metadata: Meta,
    pub data: BTreeMap<String, String>,
}

/// A Kubernetes Service (`v1`): what confd's route generator reads for service advertisement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub metadata: Meta,
    /// ClusterIP (default), NodePort, LoadBalancer, ExternalName.
    pub service_type: String,
    pub cluster_ip: Option<String>,
    pub external_ips: Vec<String>,
    /// Cluster (default) or Local.
    pub external_traffic_policy: String,
    pub load_balancer_ip: Option<String>,
    /// status.loadBalancer.ingress[].ip as a load-balancer controller would set it (never from an apply).
    pub ingress_ips: Vec<String>,
}

/// Kubernetes Endpoints (`v1`): ready addresses and the nodes they are on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Endpoints {
    pub metadata: Meta,
    /// (ip, nodeName)
    pub addresses: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum Resource {
    Node(CalicoNode),
    BGPConfiguration(BgpConfiguration),
    BGPPeer(BgpPeer),
    IPPool(IpPool),
    FelixConfiguration(FelixConfiguration),
    KubeNode(KubeNode),
    BlockAffinity(BlockAffinity),
    Secret(Secret),
    Service(Service),
    Endpoints(Endpoints),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ResourceKind {
    Node,
    BGPConfiguration,
    BGPPeer,
    IPPool,
    FelixConfiguration,
    KubeNode,
    BlockAffinity,
    Secret,
    Service,
    Endpoints,
}

impl ResourceKind {
    pub fn calico_name(&self) -> &'static str {
        match self {
            ResourceKind::Node | ResourceKind::KubeNode => "Node",
            ResourceKind::BGPConfiguration => "BGPConfiguration",
            ResourceKind::BGPPeer => "BGPPeer",
            ResourceKind::IPPool => "IPPool",
            ResourceKind::FelixConfiguration => "FelixConfiguration",
            ResourceKind::BlockAffinity => "BlockAffinity",
            ResourceKind::Secret => "Secret",
            ResourceKind::Service => "Service",
            ResourceKind::Endpoints => "Endpoints",
        }
    }
}

impl Resource {
    pub fn kind(&self) -> ResourceKind {
        match self {
            Resource::Node(_) => ResourceKind::Node,
            Resource::BGPConfiguration(_) => ResourceKind::BGPConfiguration,
            Resource::BGPPeer(_) => ResourceKind::BGPPeer,
            Resource::IPPool(_) => ResourceKind::IPPool,
            Resource::FelixConfiguration(_) => ResourceKind::FelixConfiguration,
            Resource::KubeNode(_) => ResourceKind::KubeNode,
            Resource::BlockAffinity(_) => ResourceKind::BlockAffinity,
            Resource::Secret(_) => ResourceKind::Secret,
            Resource::Service(_) => ResourceKind::Service,
            Resource::Endpoints(_) => ResourceKind::Endpoints,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Resource::Node(r) => &r.metadata.name,
            Resource::BGPConfiguration(r) => &r.metadata.name,
            Resource::BGPPeer(r) => &r.metadata.name,
            Resource::IPPool(r) => &r.metadata.name,
            Resource::FelixConfiguration(r) => &r.metadata.name,
            Resource::KubeNode(r) => &r.metadata.name,
            Resource::BlockAffinity(r) => &r.name,
            Resource::Secret(r) => &r.metadata.name,
            Resource::Service(r) => &r.metadata.name,
            Resource::Endpoints(r) => &r.metadata.name,
        }
    }
}

/// A decoded resource and where it came from (for error messages of later steps).
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub resource: Resource,
    pub origin: Origin,
    pub pos: Option<yaml::Pos>,
}

// ---------------------------------------------------------------------------------------------------------
// Value parsers shared by the decoders and the command interpreter.

/// An AS number as Calico's `numorstring.ASNumber` accepts it: `64512`, `"64512"` or dotted `"1.10"`.
pub fn parse_as_number(s: &str) -> Result<u32, String> {
    let s = s.trim();
    if let Some((hi, lo)) = s.split_once('.') {
        let hi: u16 = hi.parse().map_err(|_| format!("invalid AS number {s:?}"))?;
        let lo: u16 = lo.parse().map_err(|_| format!("invalid AS number {s:?}"))?;
        return Ok(((hi as u32) << 16) | lo as u32);
    }
    s.parse::<u32>().map_err(|_| format!("invalid AS number {s:?}: must be 0-4294967295 or dotted (1.10)"))
}

/// A Kubernetes duration (`120s`, `2m`, `1h30m`, `500ms`) in seconds.
pub fn parse_duration_secs(s: &str) -> Result<f64, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(0.0);
    }
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if n == 0 {
            return Err(format!("invalid duration {s:?} (expected e.g. 120s, 2m, 1h30m)"));
        }
        let num: f64 = rest[..n].parse().map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[n..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("invalid duration {s:?}: unknown unit {other:?}")),
        };
        total += num * mult;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// `ip` or `ip/len`; returns the address and its network (a bare IP is a host route), as
/// `net.ParseCIDROrIP` does.
pub fn parse_cidr_or_ip(s: &str) -> Result<(IpAddr, IpNet), String> {
    if let Ok(ip) = IpAddr::from_str(s) {
        let len = if ip.is_ipv4() { 32 } else { 128 };
        return Ok((ip, IpNet::new(ip, len).map_err(|e| e.to_string())?));
    }
    let net = IpNet::from_str(s).map_err(|_| format!("invalid IP address or CIDR {s:?}"))?;
    Ok((net.addr(), net))
}

/// A strictly masked CIDR (IPPool), with the error messages of Calico's validator.
pub fn parse_pool_cidr(s: &str) -> Result<IpNet, String> {
    let net = IpNet::from_str(s.trim()).map_err(|_| format!("IPPool CIDR must be a valid subnet (got {s:?})"))?;
    if net.trunc() != net {
        return Err(format!("IP pool CIDR is not strictly masked ({s} should be {})", net.trunc()));
    }
    Ok(net)
}

/// `ip`, `ip:port` or `[v6]:port`, as Calico's `parseIPPort`.
pub fn parse_peer_ip(s: &str) -> Result<(IpAddr, Option<u16>), String> {
    if let Ok(ip) = IpAddr::from_str(s) {
        return Ok((ip, None));
    }
    let err = || format!("invalid peer IP {s:?}: expected an IP address, ip:port or [ipv6]:port");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(err)?;
        (h, p)
    } else {
        s.rsplit_once(':').ok_or_else(err)?
    };
    let ip = IpAddr::from_str(host).map_err(|_| err())?;
    let port: u16 = port.parse().map_err(|_| err())?;
    Ok((ip, Some(port)))
}

/// DNS-1123 subdomain, as Kubernetes and Calico require of resource names.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name is required".into());
    }
    if name.len() > 253 {
        return Err(format!("name {name:?} is longer than 253 characters"));
    }
    let ok = name.split('.').all(|part| {
        !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !part.starts_with('-')
            && !part.ends_with('-')
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name {name:?}: must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

fn parse_selector_field(f: &Fields, key: &str) -> Result<Option<String>, InputError> {
    match f.string(key)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => match Selector::parse(&s) {
            Ok(_) => Ok(Some(s)),
            Err(e) => {
                let mut pos = f.pos_of(key);
                if let Some(p) = pos.as_mut() {
                    // Point at the offending column when the value is on one line.
                    p.col += e.column.saturating_sub(1);
                }
                Err(f.origin.error(pos, &f.field_path(key), format!("{e}\n{}", e.caret())))
            }
        },
    }
}

fn secret_ref(f: &Fields, key: &str) -> Result<Option<SecretKeyRef>, InputError> {
    let Some(p) = f.sub(key)? else { return Ok(None) };
    let r = p.sub("secretKeyRef")?.ok_or_else(|| p.err(None, "secretKeyRef", "is required"))?;
    let out = SecretKeyRef { name: r.required_string("name")?, key: r.required_string("key")? };
    r.finish(&["optional"])?;
    p.finish(&[])?;
    Ok(Some(out))
}

fn duration_field(f: &Fields, key: &str) -> Result<Option<String>, InputError> {
    match f.string(key)? {
        None => Ok(None),
        Some(s) => match parse_duration_secs(&s) {
            Ok(_) => Ok(Some(s)),
            Err(e) => Err(f.err(f.get(key), key, e)),
        },
    }
}

fn as_field(f: &Fields, key: &str) -> Result<Option<u32>, InputError> {
    match f.string(key)? {
        None => Ok(None),
        Some(s) => parse_as_number(&s).map(Some).map_err(|e| f.err(f.get(key), key, e)),
    }
}

fn encap(f: &Fields, key: &str) -> Result<EncapMode, InputError> {
    match f.string(key)?.as_deref() {
        None | Some("") | Some("Never") => Ok(EncapMode::Never),
        Some("Always") => Ok(EncapMode::Always),
        Some("CrossSubnet") => Ok(EncapMode::CrossSubnet),
        Some(other) => {
            Err(f.err(f.get(key), key, format!("invalid value {other:?}: must be Always, CrossSubnet or Never")))
        }
    }
}

fn meta(f: &Fields, cluster_scoped: bool) -> Result<Meta, InputError> {
    let m = f.sub("metadata")?.ok_or_else(|| f.err(None, "metadata", "is required"))?;
    let name = m.string("name")?.unwrap_or_default();
    validate_name(&name).map_err(|e| m.err(m.get("name"), "name", e))?;
    let namespace = m.string("namespace")?.filter(|s| !s.is_empty());
    if cluster_scoped {
        // Cluster-scoped resources ignore an empty namespace, as the golden files write it.
    }
    let labels = m.string_map("labels")?;
    for (k, v) in &labels {
        validate_label(k, v).map_err(|e| m.err(m.get("labels"), &format!("labels.{k}"), e))?;
    }
    let annotations = m.string_map("annotations")?;
    m.finish(&[
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "managedFields",
        "generateName",
        "finalizers",
        "ownerReferences",
    ])?;
    Ok(Meta { name, namespace, labels, annotations })
}

/// Kubernetes label key/value rules (qualified name; value ≤ 63 chars of `[A-Za-z0-9_.-]`, alphanumeric ends).
pub fn validate_label(key: &str, value: &str) -> Result<(), String> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
    };
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if validate_name(p).is_err() {
            return Err(format!("invalid label key {key:?}: prefix must be a DNS subdomain"));
        }
    }
    if !name_ok(name) {
        return Err(format!(
            "invalid label key {key:?}: name part must be 63 characters or less, alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character"
        ));
    }
    if !value.is_empty() && !name_ok(value) {
        return Err(format!(
            "invalid label value {value:?} for {key:?}: must be 63 characters or less, alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Decoders.

fn decode_node(f: &Fields) -> Result<CalicoNode, InputError> {
    let metadata = meta(f, true)?;
    let mut bgp = None;
    let mut vx = None;
    if let Some(spec) = f.sub("spec")? {
        if let Some(b) = spec.sub("bgp")? {
            let v4 = b.string("ipv4Address")?.filter(|s| !s.is_empty());
            if let Some(s) = &v4 {
                let (ip, _) = parse_cidr_or_ip(s).map_err(|e| b.err(b.get("ipv4Address"), "ipv4Address", e))?;
                if !ip.is_ipv4() {
                    return Err(b.err(b.get("ipv4Address"), "ipv4Address", format!("{s:?} is not an IPv4 address")));
                }
            }
            let v6 = b.string("ipv6Address")?.filter(|s| !s.is_empty());
            if let Some(s) = &v6 {
                let (ip, _) = parse_cidr_or_ip(s).map_err(|e| b.err(b.get("ipv6Address"), "ipv6Address", e))?;
                if !ip.is_ipv6() {
                    return Err(b.err(b.get("ipv6Address"), "ipv6Address", format!("{s:?} is not an IPv6 address")));
                }
            }
            let cid = b.string("routeReflectorClusterID")?.filter(|s| !s.is_empty());
            if let Some(c) = &cid {
                Ipv4Addr::from_str(c).map_err(|_| {
                    b.err(
                        b.get("routeReflectorClusterID"),
                        "routeReflectorClusterID",
                        format!("{c:?} is not an IPv4 address"),
                    )
                })?;
            }
            let tun = b.string("ipv4IPIPTunnelAddr")?.filter(|s| !s.is_empty());
            if let Some(t) = &tun {
                Ipv4Addr::from_str(t).map_err(|_| {
                    b.err(b.get("ipv4IPIPTunnelAddr"), "ipv4IPIPTunnelAddr", format!("{t:?} is not an IPv4 address"))
                })?;
            }
            let as_number = as_field(&b, "asNumber")?;
            b.finish(&["interfaceIPv4Address", "interfaceIPv6Address"])?;
            bgp = Some(NodeBgpSpec {
                ipv4_address: v4,
                ipv6_address: v6,
                as_number,
                route_reflector_cluster_id: cid,
                ipv4_ipip_tunnel_addr: tun,
            });
        }
        vx = spec.string("ipv4VXLANTunnelAddr")?.filter(|s| !s.is_empty());
        spec.finish(&[
            "vxlanTunnelMACAddr",
            "ipv6VXLANTunnelAddr",
            "vxlanTunnelMACAddrV6",
            "orchRefs",
            "wireguard",
            "addresses",
        ])?;
    }
    f.finish(&["status"])?;
    Ok(CalicoNode { metadata, bgp, ipv4_vxlan_tunnel_addr: vx })
}

fn decode_bgp_configuration(f: &Fields) -> Result<BgpConfiguration, InputError> {
    let metadata = meta(f, true)?;
    if metadata.name != "default" && !metadata.name.starts_with("node.") {
        return Err(f.err(
            f.sub("metadata")?.and_then(|m| m.get("name")),
            "metadata.name",
            format!("BGPConfiguration name {:?} must be \"default\" or \"node.<nodename>\"", metadata.name),
        ));
    }
    let mut spec = BgpConfigurationSpec::default();
    if let Some(s) = f.sub("spec")? {
        spec.log_severity_screen = s.string("logSeverityScreen")?;
        if let Some(l) = &spec.log_severity_screen {
            if !["debug", "info", "warning", "error", "fatal", "none"].contains(&l.to_lowercase().as_str()) {
                return Err(s.err(s.get("logSeverityScreen"), "logSeverityScreen", format!("invalid log level {l:?}")));
            }
        }
        spec.node_to_node_mesh_enabled = s.bool("nodeToNodeMeshEnabled")?;
        spec.as_number = as_field(&s, "asNumber")?;
        spec.listen_port = s.int("listenPort", 1, 65535)?.map(|p| p as u16);
        spec.bind_mode = s.string("bindMode")?;
        if let Some(b) = &spec.bind_mode {
            if b != "None" && b != "NodeIP" {
                return Err(s.err(
                    s.get("bindMode"),
                    "bindMode",
                    format!("invalid bind mode {b:?}: must be None or NodeIP"),
                ));
            }
        }
        spec.node_mesh_password = secret_ref(&s, "nodeMeshPassword")?;
        spec.node_mesh_max_restart_time = duration_field(&s, "nodeMeshMaxRestartTime")?;
        spec.ignored_interfaces = s.string_list("ignoredInterfaces")?;
        for c in s.list("communities")? {
            let name = c.required_string("name")?;
            let value = c.required_string("value")?;
            if !is_community(&value) {
                return Err(c.err(
                    c.get("value"),
                    "value",
                    format!("invalid community {value:?}: expected aa:nn or aa:nn:mm"),
                ));
            }
            c.finish(&[])?;
            spec.communities.push(Community { name, value });
        }
        for p in s.list("prefixAdvertisements")? {
            let cidr = p.required_string("cidr")?;
            parse_cidr_or_ip(&cidr).map_err(|e| p.err(p.get("cidr"), "cidr", e))?;
            let communities = p.string_list("communities")?.unwrap_or_default();
            p.finish(&[])?;
            spec.prefix_advertisements.push(PrefixAdvertisement { cidr, communities });
        }
        for (key, out) in [
            ("serviceClusterIPs", &mut spec.service_cluster_ips),
            ("serviceExternalIPs", &mut spec.service_external_ips),
            ("serviceLoadBalancerIPs", &mut spec.service_load_balancer_ips),
        ] {
            for b in s.list(key)? {
                if let Some(c) = b.string("cidr")? {
                    parse_cidr_or_ip(&c).map_err(|e| b.err(b.get("cidr"), "cidr", e))?;
                    out.push(c);
                }
                b.finish(&[])?;
            }
        }
        s.finish(&["localWorkloadPeeringIPV4", "localWorkloadPeeringIPV6"])?;
    }
    f.finish(&[])?;
    Ok(BgpConfiguration { metadata, spec })
}

pub fn is_community(v: &str) -> bool {
    let parts: Vec<&str> = v.split(':').collect();
    (parts.len() == 2 || parts.len() == 3)
        && parts.iter().all(|p| p.parse::<u32>().is_ok())
        && (parts.len() == 3 || parts.iter().all(|p| p.parse::<u16>().is_ok()))
}

fn decode_bgp_peer(f: &Fields) -> Result<BgpPeer, InputError> {
    let metadata = meta(f, true)?;
    let mut spec = BgpPeerSpec::default();
    if let Some(s) = f.sub("spec")? {
        spec.node = s.string("node")?.filter(|x| !x.is_empty());
        spec.node_selector = parse_selector_field(&s, "nodeSelector")?;
        spec.peer_ip = s.string("peerIP")?.filter(|x| !x.is_empty());
        if let Some(p) = &spec.peer_ip {
            parse_peer_ip(p).map_err(|e| s.err(s.get("peerIP"), "peerIP", e))?;
        }
        spec.peer_selector = parse_selector_field(&s, "peerSelector")?;
        spec.as_number = as_field(&s, "asNumber")?.unwrap_or(0);
        spec.local_as_number = as_field(&s, "localASNumber")?;
        spec.keep_original_next_hop = s.bool("keepOriginalNextHop")?.unwrap_or(false);
        spec.password = secret_ref(&s, "password")?;
        spec.source_address = s.string("sourceAddress")?.filter(|x| !x.is_empty());
        if let Some(sa) = &spec.source_address {
            if sa != "UseNodeIP" && sa != "None" {
                return Err(s.err(
                    s.get("sourceAddress"),
                    "sourceAddress",
                    format!("invalid value {sa:?}: must be UseNodeIP or None"),
                ));
            }
        }
        spec.max_restart_time = duration_field(&s, "maxRestartTime")?;
        spec.num_allowed_local_as_numbers = s.int("numAllowedLocalASNumbers", 0, i32::MAX as i64)?.map(|v| v as i32);
        spec.ttl_security = s.int("ttlSecurity", 0, 255)?.map(|v| v as u8);
        spec.reachable_by = s.string("reachableBy")?.filter(|x| !x.is_empty());
        spec.filters = s.string_list("filters")?.unwrap_or_default();
        spec.local_workload_selector = parse_selector_field(&s, "localWorkloadSelector")?;
        // calicoctl's validateBGPPeerSpec.
        let rule = |key: &str, msg: &str| Err(s.err(s.get(key), key, msg.to_string()));
        if spec.node.is_some() && spec.node_selector.is_some() {
            return rule("node", "Node field must be empty when NodeSelector is specified");
        }
        if spec.peer_ip.is_some() && spec.peer_selector.is_some() {
            return rule("peerIP", "PeerIP field must be empty when PeerSelector is specified");
        }
        if spec.as_number != 0 && spec.peer_selector.is_some() {
            return rule("asNumber", "ASNumber field must be empty when PeerSelector is specified");
        }
        if spec.as_number == 0 && spec.local_workload_selector.is_some() {
            return rule("asNumber", "ASNumber field must NOT be empty when LocalWorkloadSelector is specified");
        }
        if spec.peer_ip.is_some() && spec.local_workload_selector.is_some() {
            return rule("peerIP", "PeerIP field must be empty when LocalWorkloadSelector is specified");
        }
        if let Some(rb) = &spec.reachable_by {
            let Some(peer) = &spec.peer_ip else {
                return rule("reachableBy", "ReachablyBy field must be empty when PeerIP is empty");
            };
            let gw = IpAddr::from_str(rb)
                .map_err(|_| s.err(s.get("reachableBy"), "reachableBy", "ReachableBy is invalid address"))?;
            let (pip, _) = parse_peer_ip(peer).map_err(|e| s.err(s.get("peerIP"), "peerIP", e))?;
            if gw.is_ipv4() != pip.is_ipv4() {
                return rule("reachableBy", "ReachableBy and PeerIP address family mismatched");
            }
        }
        s.finish(&[])?;
    }
    f.finish(&[])?;
    Ok(BgpPeer { metadata, spec })
}

fn decode_ip_pool(f: &Fields) -> Result<IpPool, InputError> {
    let metadata = meta(f, true)?;
    let s = f.sub("spec")?.ok_or_else(|| f.err(None, "spec", "is required"))?;
    let cidr_s = s.string("cidr")?.unwrap_or_default();
    if cidr_s.is_empty() {
        return Err(s.err(s.get("cidr"), "cidr", "IPPool CIDR must be specified"));
    }
    let cidr = parse_pool_cidr(&cidr_s).map_err(|e| s.err(s.get("cidr"), "cidr", e))?;
    let v4 = matches!(cidr, IpNet::V4(_));
    let block_size = match s.int("blockSize", 0, 128)? {
        None => {
            if v4 {
                26
            } else {
                122
            }
        }
        Some(b) => b as u8,
    };
    if v4 && !(20..=32).contains(&block_size) {
        return Err(s.err(s.get("blockSize"), "blockSize", "IPv4 block size must be between 20 and 32"));
    }
    if !v4 && !(116..=128).contains(&block_size) {
        return Err(s.err(s.get("blockSize"), "blockSize", "IPv6 block size must be between 116 and 128"));
    }
    if cidr.prefix_len() > block_size {
        return Err(s.err(
            s.get("cidr"),
            "cidr",
            "IP pool size is too small for use with Calico IPAM. It must be equal to or greater than the block size.",
        ));
    }
    let link_local: IpNet =
        if v4 { "169.254.0.0/16".parse().unwrap_or(cidr) } else { "fe80::/10".parse().unwrap_or(cidr) };
    if link_local.contains(&cidr.network()) || cidr.contains(&link_local.network()) {
        let m = if v4 {
            "IP pool range overlaps with IPv4 Link Local range 169.254.0.0/16"
        } else {
            "IP pool range overlaps with IPv6 Link Local range fe80::/10"
        };
        return Err(s.err(s.get("cidr"), "cidr", m));
    }
    let ipip_mode = encap(&s, "ipipMode")?;
    let vxlan_mode = encap(&s, "vxlanMode")?;
    if ipip_mode != EncapMode::Never && vxlan_mode != EncapMode::Never {
        return Err(s.err(s.get("vxlanMode"), "vxlanMode", "Cannot enable both VXLAN and IPIP on the same IPPool"));
    }
    if ipip_mode != EncapMode::Never && !v4 {
        return Err(s.err(
            s.get("ipipMode"),
            "ipipMode",
            "IPIPMode other than 'Never' is not supported on an IPv6 IP pool",
        ));
    }
    let node_selector = parse_selector_field(&s, "nodeSelector")?.unwrap_or_else(|| "all()".to_string());
    let spec = IpPoolSpec {
        cidr,
        block_size,
        ipip_mode,
        vxlan_mode,
        nat_outgoing: s.bool("natOutgoing")?.unwrap_or(false),
        disabled: s.bool("disabled")?.unwrap_or(false),
        disable_bgp_export: s.bool("disableBGPExport")?.unwrap_or(false),
        node_selector,
        allowed_uses: s.string_list("allowedUses")?.unwrap_or_default(),
    };
    for u in &spec.allowed_uses {
        if !["Workload", "Tunnel", "LoadBalancer"].contains(&u.as_str()) {
            return Err(s.err(s.get("allowedUses"), "allowedUses", format!("invalid allowed use {u:?}")));
        }
    }
    s.finish(&["ipip", "nat-outgoing", "assignmentMode"])?;
    f.finish(&[])?;
    Ok(IpPool { metadata, spec })
}

/// Every field of FelixConfigurationSpec in the v3.30 API that rrlab does not model is still accepted.
const FELIX_KNOWN_FIELDS: &[&str] = &[
    "useInternalDataplaneDriver",
    "dataplaneDriver",
    "dataplaneWatchdogTimeout",
    "ipv6Support",
    "routeRefreshInterval",
    "interfaceRefreshInterval",
    "iptablesRefreshInterval",
    "iptablesPostWriteCheckInterval",
    "iptablesLockFilePath",
    "iptablesLockTimeout",
    "iptablesLockProbeInterval",
    "featureDetectOverride",
    "featureGates",
    "ipsetsRefreshInterval",
    "maxIpsetSize",
    "iptablesBackend",
    "xdpRefreshInterval",
    "netlinkTimeout",
    "metadataAddr",
    "metadataPort",
    "openstackRegion",
    "interfacePrefix",
    "interfaceExclude",
    "chainInsertMode",
    "defaultEndpointToHostAction",
    "iptablesMangleAllowAction",
    "logPrefix",
    "logFilePath",
    "logSeverityFile",
    "logSeverityScreen",
    "logSeveritySys",
    "logDebugFilenameRegex",
    "vxlanEnabled",
    "vxlanPort",
    "vxlanVNI",
    "vxlanMTU",
    "vxlanMTUV6",
    "wireguardEnabled",
    "wireguardEnabledV6",
    "wireguardListeningPort",
    "wireguardListeningPortV6",
    "wireguardRoutingRulePriority",
    "wireguardInterfaceName",
    "wireguardInterfaceNameV6",
    "wireguardMTU",
    "wireguardMTUV6",
    "wireguardHostEncryptionEnabled",
    "wireguardKeepAlive",
    "wireguardThreadingEnabled",
    "reportingInterval",
    "reportingTTL",
    "endpointReportingEnabled",
    "endpointReportingDelay",
    "endpointStatusPathPrefix",
    "iptablesMarkMask",
    "disableConntrackInvalidCheck",
    "healthEnabled",
    "healthHost",
    "healthPort",
    "healthTimeoutOverrides",
    "prometheusMetricsEnabled",
    "prometheusMetricsHost",
    "prometheusMetricsPort",
    "prometheusGoMetricsEnabled",
    "prometheusProcessMetricsEnabled",
    "prometheusWireGuardMetricsEnabled",
    "failsafeInboundHostPorts",
    "failsafeOutboundHostPorts",
    "kubeNodePortRanges",
    "pdEnabled",
    "usageReportingEnabled",
    "usageReportingInitialDelay",
    "usageReportingInterval",
    "natPortRange",
    "natOutgoingAddress",
    "natOutgoingExclusions",
    "deviceRouteSourceAddress",
    "deviceRouteSourceAddressIPv6",
    "deviceRouteProtocol",
    "removeExternalRoutes",
    "programClusterRoutes",
    "ipForwarding",
    "ipipEnabled",
    "ipipMTU",
    "bpfEnabled",
    "bpfDisableUnprivileged",
    "bpfLogLevel",
    "bpfLogFilters",
    "bpfCTLBLogFilter",
    "bpfDataIfacePattern",
    "bpfL3IfacePattern",
    "bpfConnectTimeLoadBalancingEnabled",
    "bpfConnectTimeLoadBalancing",
    "bpfHostNetworkedNATWithoutCTLB",
    "bpfExternalServiceMode",
    "bpfDSROptoutCIDRs",
    "bpfKubeProxyIptablesCleanupEnabled",
    "bpfKubeProxyMinSyncPeriod",
    "bpfKubeProxyEndpointSlicesEnabled",
    "bpfExtToServiceConnmark",
    "bpfPSNATPorts",
    "bpfMapSizeNATFrontend",
    "bpfMapSizeNATBackend",
    "bpfMapSizeNATAffinity",
    "bpfMapSizeRoute",
    "bpfMapSizeConntrack",
    "bpfMapSizeIPSets",
    "bpfMapSizeIfState",
    "bpfHostConntrackBypass",
    "bpfEnforceRPF",
    "bpfPolicyDebugEnabled",
    "bpfForceTrackPacketsFromIfaces",
    "bpfDisableGROForIfaces",
    "bpfExcludeCIDRsFromNAT",
    "bpfRedirectToPeer",
    "bpfAttachType",
    "bpfExportBufferSizeMB",
    "bpfConntrackLogLevel",
    "bpfConntrackMode",
    "bpfConntrackCleanupMode",
    "bpfConntrackTimeouts",
    "bpfMapSizePerCPUConntrack",
    "bpfProfiling",
    "bpfJITHardening",
    "routeSource",
    "routeTableRange",
    "routeTableRanges",
    "routeSyncDisabled",
    "serviceLoopPrevention",
    "workloadSourceSpoofing",
    "mtuIfacePattern",
    "floatingIPs",
    "windowsManageFirewallRules",
    "genericXDPEnabled",
    "xdpEnabled",
    "sidecarAccelerationEnabled",
    "flowLogsFlushInterval",
    "flowLogsMaxOriginalIPsIncluded",
    "flowLogsCollectorDebugTrace",
    "flowLogsGoldmaneServer",
    "flowLogsLocalReporter",
    "flowLogsPolicyEvaluationMode",
    "nftablesMode",
    "nftablesRefreshInterval",
    "nftablesFilterAllowAction",
    "nftablesMangleAllowAction",
    "nftablesFilterDenyAction",
    "nftablesMarkMask",
    "iptablesNATOutgoingInterfaceFilter",
    "ipsetsRefreshInterval",
    "allowVXLANPacketsFromWorkloads",
    "allowIPIPPacketsFromWorkloads",
    "awsSrcDstCheck",
    "awsRequestTimeout",
    "externalNodesList",
    "debugMemoryProfilePath",
    "debugDisableLogDropping",
    "debugSimulateCalcGraphHangAfter",
    "debugSimulateDataplaneHangAfter",
    "debugSimulateDataplaneApplyDelay",
    "debugHost",
    "debugPort",
    "policySyncPathPrefix",
    "routeRefreshInterval",
    "ipv6Support",
    "requireMTUFile",
    "cgroupV2Path",
    "liveMigrationRouteConvergenceTime",
    "goGCThreshold",
    "goMemoryLimitMB",
    "goMaxProcs",
];

fn decode_felix_configuration(f: &Fields) -> Result<FelixConfiguration, InputError> {
    let metadata = meta(f, true)?;
    if metadata.name != "default" && !metadata.name.starts_with("node.") {
        return Err(f.err(
            None,
            "metadata.name",
            format!("FelixConfiguration name {:?} must be \"default\" or \"node.<nodename>\"", metadata.name),
        ));
    }
    let mut spec = FelixConfigurationSpec::default();
    if let Some(s) = f.sub("spec")? {
        spec.external_nodes_list = s.string_list("externalNodesList")?;
        if let Some(l) = &spec.external_nodes_list {
            for (i, c) in l.iter().enumerate() {
                parse_cidr_or_ip(c)
                    .map_err(|e| s.err(s.get("externalNodesList"), &format!("externalNodesList[{i}]"), e))?;
            }
        }
        spec.ipip_enabled = s.bool("ipipEnabled")?;
        spec.ipip_mtu = s.int("ipipMTU", 0, 65535)?.map(|v| v as u32);
        spec.iptables_filter_allow_action = s.string("iptablesFilterAllowAction")?;
        spec.iptables_filter_deny_action = s.string("iptablesFilterDenyAction")?;
        for key in ["iptablesFilterAllowAction", "iptablesFilterDenyAction"] {
            let v = s.string(key)?;
            if let Some(v) = v {
                let ok = if key.ends_with("DenyAction") {
                    ["Drop", "Reject"].contains(&v.as_str())
                } else {
                    ["Accept", "Return"].contains(&v.as_str())
                };
                if !ok {
                    return Err(s.err(s.get(key), key, format!("invalid value {v:?}")));
                }
            }
        }
        for key in FELIX_KNOWN_FIELDS {
            if let Some(n) = s.get(key) {
                if !matches!(*key, "externalNodesList" | "ipipEnabled" | "ipipMTU") {
                    spec.other.insert(key.to_string(), n.to_json());
                }
            }
        }
        s.finish(&[])?;
    }
    f.finish(&[])?;
    Ok(FelixConfiguration { metadata, spec })
}

fn decode_kube_node(f: &Fields) -> Result<KubeNode, InputError> {
    let metadata = meta(f, true)?;
    let mut pod_cidr = None;
    let mut unschedulable = false;
    if let Some(s) = f.sub("spec")? {
        pod_cidr = s.string("podCIDR")?.filter(|x| !x.is_empty());
        if let Some(c) = &pod_cidr {
            IpNet::from_str(c).map_err(|_| s.err(s.get("podCIDR"), "podCIDR", format!("invalid CIDR {c:?}")))?;
        }
        unschedulable = s.bool("unschedulable")?.unwrap_or(false);
        s.finish(&["externalID", "podCIDRs", "providerID", "taints", "configSource"])?;
    }
    f.finish(&["status"])?;
    Ok(KubeNode { metadata, pod_cidr, unschedulable })
}

fn decode_block_affinity(f: &Fields) -> Result<BlockAffinity, InputError> {
    let metadata = meta(f, true)?;
    let s = f.sub("spec")?.ok_or_else(|| f.err(None, "spec", "is required"))?;
    let node = s.required_string("node")?;
    let cidr_s = s.required_string("cidr")?;
    let cidr =
        IpNet::from_str(&cidr_s).map_err(|_| s.err(s.get("cidr"), "cidr", format!("invalid CIDR {cidr_s:?}")))?;
    let state = s.string("state")?.unwrap_or_default();
    if !["", "confirmed", "pending", "pendingDeletion"].contains(&state.as_str()) {
        return Err(s.err(s.get("state"), "state", format!("invalid state {state:?}")));
    }
    let deleted = matches!(s.string("deleted")?.as_deref(), Some("true"));
    let kind = s.string("type")?.unwrap_or_default();
    s.finish(&[])?;
    f.finish(&[])?;
    Ok(BlockAffinity { name: metadata.name, node, cidr, state, deleted, kind })
}

fn decode_secret(f: &Fields) -> Result<Secret, InputError> {
    let metadata = meta(f, false)?;
    let mut data = BTreeMap::new();
    for (k, v) in f.string_map("data")? {
        let decoded =
            base64_decode(&v).ok_or_else(|| f.err(f.get("data"), &format!("data.{k}"), "value is not valid base64"))?;
        data.insert(k, decoded);
    }
    for (k, v) in f.string_map("stringData")? {
        data.insert(k, v);
    }
    f.finish(&["type", "immutable"])?;
    Ok(Secret { metadata, data })
}

fn base64_decode(s: &str) -> Option<String> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            break;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).ok()
}

fn decode_service(f: &Fields) -> Result<Service, InputError> {
    let metadata = meta(f, false)?;
    let mut svc = Service {
        metadata,
        service_type: "ClusterIP".into(),
        cluster_ip: None,
        external_ips: Vec::new(),
        external_traffic_policy: "Cluster".into(),
        load_balancer_ip: None,
        ingress_ips: Vec::new(),
    };
    if let Some(s) = f.sub("spec")? {
        if let Some(t) = s.string("type")? {
            if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&t.as_str()) {
                return Err(s.err(s.get("type"), "type", format!("unsupported service type {t:?}")));
            }
            svc.service_type = t;
        }
        svc.cluster_ip = s.string("clusterIP")?.filter(|x| !x.is_empty());
        svc.external_ips = s.string_list("externalIPs")?.unwrap_or_default();
        if let Some(p) = s.string("externalTrafficPolicy")? {
            svc.external_traffic_policy = p;
        }
        svc.load_balancer_ip = s.string("loadBalancerIP")?.filter(|x| !x.is_empty());
        // Ports, selectors and the rest do not affect BGP advertisement.
        for k in [
            "ports",
            "selector",
            "sessionAffinity",
            "clusterIPs",
            "ipFamilies",
            "ipFamilyPolicy",
            "internalTrafficPolicy",
            "loadBalancerSourceRanges",
            "allocateLoadBalancerNodePorts",
            "healthCheckNodePort",
            "externalName",
            "publishNotReadyAddresses",
            "loadBalancerClass",
            "sessionAffinityConfig",
        ] {
            s.get(k);
        }
        s.finish(&[])?;
    }
    if let Some(st) = f.sub("status")? {
        if let Some(lb) = st.sub("loadBalancer")? {
            for ing in lb.list("ingress")? {
                // Validated but not kept: `kubectl apply` cannot write a Service's status (the load-balancer
                // controller does), so applied ingress IPs never reach calico-node.
                ing.string("ip")?;
                ing.finish(&["hostname", "ports", "ipMode"])?;
            }
            lb.finish(&[])?;
        }
        st.finish(&["conditions"])?;
    }
    f.finish(&[])?;
    Ok(svc)
}

fn decode_endpoints(f: &Fields) -> Result<Endpoints, InputError> {
    let metadata = meta(f, false)?;
    let mut addresses = Vec::new();
    for sub in f.list("subsets")? {
        for a in sub.list("addresses")? {
            let ip = a.required_string("ip")?;
            addresses.push((ip, a.string("nodeName")?));
            a.finish(&["targetRef", "hostname"])?;
        }
        sub.finish(&["ports", "notReadyAddresses"])?;
    }
    f.finish(&[])?;
    Ok(Endpoints { metadata, addresses })
}

/// Decode one document's root into a resource.
pub fn decode(origin: &Origin, root: &Node) -> Result<Resource, InputError> {
    let f = Fields::new(origin, root, "")?;
    let api = f.string("apiVersion")?.unwrap_or_default();
    let kind = f.string("kind")?.unwrap_or_default();
    if kind.is_empty() {
        return Err(f.err(None, "kind", "is required"));
    }
    let api_ok = |allowed: &[&str]| -> Result<(), InputError> {
        if allowed.contains(&api.as_str()) {
            Ok(())
        } else {
            Err(f.err(
                f.get("apiVersion"),
                "apiVersion",
                format!("apiVersion {api:?} is not valid for kind {kind} (expected {})", allowed.join(" or ")),
            ))
        }
    };
    match kind.as_str() {
        "Node" if api == "v1" => decode_kube_node(&f).map(Resource::KubeNode),
        "Node" => {
            api_ok(&[CALICO_API])?;
            decode_node(&f).map(Resource::Node)
        }
        "BGPConfiguration" => {
            api_ok(&[CALICO_API])?;
            decode_bgp_configuration(&f).map(Resource::BGPConfiguration)
        }
        "BGPPeer" => {
            api_ok(&[CALICO_API])?;
            decode_bgp_peer(&f).map(Resource::BGPPeer)
        }
        "IPPool" => {
            api_ok(&[CALICO_API])?;
            decode_ip_pool(&f).map(Resource::IPPool)
        }
        "FelixConfiguration" => {
            api_ok(&[CALICO_API])?;
            decode_felix_configuration(&f).map(Resource::FelixConfiguration)
        }
        "BlockAffinity" => {
            api_ok(&["crd.projectcalico.org/v1", CALICO_API])?;
            decode_block_affinity(&f).map(Resource::BlockAffinity)
        }
        "Secret" => {
            api_ok(&["v1"])?;
            decode_secret(&f).map(Resource::Secret)
        }
        "Service" => {
            api_ok(&["v1"])?;
            decode_service(&f).map(Resource::Service)
        }
        "Endpoints" => {
            api_ok(&["v1"])?;
            decode_endpoints(&f).map(Resource::Endpoints)
        }
        other => Err(f.err(f.get("kind"), "kind", format!(
            "unknown or unsupported kind {other:?} (rrlab models Node, BGPConfiguration, BGPPeer, IPPool, FelixConfiguration, BlockAffinity, and v1 Node, Secret, Service, Endpoints)"
        ))),
    }
}

/// Parse and decode every document of a file. `List` documents (`kind: List` or `*List` with `items`) are
/// expanded.
pub fn parse_resources(file: &str, src: &str) -> Result<Vec<Located>, InputError> {
    let docs = yaml::parse_documents(src)
        .map_err(|e| InputError::at(file, e.pos, format!("malformed YAML: {}", e.message)))?;
    let mut out = Vec::new();
    for d in docs {
        let origin = Origin::new(file, Some(d.index));
        let is_list = d.root.get("kind").and_then(|k| k.scalar_text()).is_some_and(|k| k.ends_with("List"));
        if is_list {
            let f = Fields::new(&origin, &d.root, "")?;
            if let Some(items) = f.get("items") {
                if let yaml::Value::Seq(items) = &items.value {
                    for it in items {
                        out.push(Located { resource: decode(&origin, it)?, origin: origin.clone(), pos: it.pos });
                    }
                }
            }
            continue;
        }
        out.push(Located { resource: decode(&origin, &d.root)?, origin, pos: d.root.pos });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Result<Resource, InputError> {
        parse_resources("t.yaml", src).map(|mut v| v.remove(0).resource)
    }

    #[test]
    fn bgp_peer_from_the_post() {
        let r = one("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: node-rr-partition-a\nspec:\n  nodeSelector: cloud-type != 'public'\n  peerSelector: rr-partition == 'A'\n").unwrap();
        let Resource::BGPPeer(p) = r else { panic!("not a peer") };
        assert_eq!(p.spec.node_selector.as_deref(), Some("cloud-type != 'public'"));
        assert_eq!(p.spec.as_number, 0);
    }

    #[test]
    fn unknown_field_names_line_and_field() {
        let e =
            one("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  peerIp: 10.0.0.1\n")
                .unwrap_err();
        assert_eq!(e.pos.map(|p| p.line), Some(6));
        assert_eq!(e.field.as_deref(), Some("spec.peerIp"));
        assert!(e.to_string().starts_with("t.yaml:6:3: document 1, field spec.peerIp: unknown field"), "{e}");
    }

    #[test]
    fn bad_cidr_and_bad_selector() {
        let e =
            one("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n  cidr: 172.16.0.0/33\n")
                .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("spec.cidr"));
        assert_eq!(e.pos.map(|p| p.line), Some(6));
        let e =
            one("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n  cidr: 172.16.0.1/16\n")
                .unwrap_err();
        assert!(e.message.contains("not strictly masked"), "{e}");
        let e = one("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  nodeSelector: has(rr-partition\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("spec.nodeSelector"));
        assert_eq!(e.pos.map(|p| p.line), Some(6));
    }

    #[test]
    fn peer_validation_rules() {
        let e = one("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  peerSelector: all()\n  asNumber: 64512\n").unwrap_err();
        assert!(e.message.contains("ASNumber field must be empty when PeerSelector is specified"));
        let e = one("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  node: a\n  nodeSelector: all()\n").unwrap_err();
        assert!(e.message.contains("Node field must be empty"));
        // A peerIP without asNumber is valid (BIRD rejects it later).
        let Resource::BGPPeer(p) = one("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  node: a\n  peerIP: 10.0.0.5\n").unwrap() else { panic!() };
        assert_eq!(p.spec.as_number, 0);
    }

    #[test]
    fn as_number_forms() {
        assert_eq!(parse_as_number("63400"), Ok(63400));
        assert_eq!(parse_as_number("1.10"), Ok(65546));
        assert!(parse_as_number("x").is_err());
        let Resource::BGPConfiguration(c) = one("apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  asNumber: \"63400\"\n").unwrap() else { panic!() };
        assert_eq!(c.spec.as_number, Some(63400));
    }

    #[test]
    fn labels_accept_scalars_and_names_are_checked() {
        let Resource::Node(n) = one("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: kube-master\n  labels:\n    routeReflector: true\nspec:\n  bgp:\n    ipv4Address: 10.192.0.2/16\n    routeReflectorClusterID: 10.0.0.1\n").unwrap() else { panic!() };
        assert_eq!(n.metadata.labels.get("routeReflector").map(String::as_str), Some("true"));
        let e = one("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: Bad_Name\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("metadata.name"));
    }

    #[test]
    fn unknown_kind_and_malformed_yaml() {
        let e = one("apiVersion: projectcalico.org/v3\nkind: BGPPeers\nmetadata:\n  name: p\n").unwrap_err();
        assert!(e.message.contains("unknown or unsupported kind"));
        assert_eq!(e.pos.map(|p| p.line), Some(2));
        let e = parse_resources("f.yaml", "kind: IPPool\nmetadata: {name: x\n").unwrap_err();
        assert!(e.message.starts_with("malformed YAML"), "{e}");
        assert!(e.pos.is_some());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("120s"), Ok(120.0));
        assert_eq!(parse_duration_secs("1h30m"), Ok(5400.0));
        assert_eq!(parse_duration_secs("1500ms"), Ok(1.5));
        assert!(parse_duration_secs("10x").is_err());
    }
}
