//! The twin's datastore: what calico-node sees in a Kubernetes-datastore (KDD) cluster. Nodes are Kubernetes
//! Nodes whose labels are Calico's node labels and whose `projectcalico.org/*` annotations carry the Calico
//! Node's BGP spec; Calico resources are kept by kind and name; the calico-node DaemonSet's env is kept too.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};
use serde::Serialize;

use crate::model::resources::{
    parse_as_number, parse_cidr_or_ip, BgpConfiguration, BgpPeer, BlockAffinity, CalicoNode, Endpoints,
    FelixConfiguration, IpPool, KubeNode, Meta, NodeBgpSpec, Resource, ResourceKind, Secret, Service,
};

/// KDD stores the Calico Node's BGP spec in these Kubernetes Node annotations (libcalico-go k8s/resources/node.go).
pub const ANN_IPV4: &str = "projectcalico.org/IPv4Address";
pub const ANN_IPV6: &str = "projectcalico.org/IPv6Address";
pub const ANN_ASN: &str = "projectcalico.org/ASNumber";
pub const ANN_RR_CLUSTER_ID: &str = "projectcalico.org/RouteReflectorClusterID";
pub const ANN_IPIP_TUNNEL: &str = "projectcalico.org/IPv4IPIPTunnelAddr";
pub const ANN_VXLAN_TUNNEL: &str = "projectcalico.org/IPv4VXLANTunnelAddr";

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct NodeRecord {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub pod_cidr: Option<String>,
    pub unschedulable: bool,
}

/// A node's BGP facts as confd sees them (`/calico/bgp/v1/host/<node>/…`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct HostBgp {
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<IpAddr>,
    pub network_v4: Option<Ipv4Net>,
    pub as_num: Option<u32>,
    pub rr_cluster_id: Option<String>,
}

impl NodeRecord {
    /// The BGP keys confd derives from the node (bgpnodeprocessor): unparsable values count as unset.
    pub fn bgp(&self) -> HostBgp {
        let mut h = HostBgp::default();
        if let Some(v4) = self.annotations.get(ANN_IPV4) {
            if let Ok((IpAddr::V4(ip), IpNet::V4(net))) = parse_cidr_or_ip(v4) {
                h.ipv4 = Some(ip);
                h.network_v4 = Some(net.trunc());
            }
        }
        if let Some(v6) = self.annotations.get(ANN_IPV6) {
            if let Ok((ip @ IpAddr::V6(_), _)) = parse_cidr_or_ip(v6) {
                h.ipv6 = Some(ip);
            }
        }
        h.as_num = self.annotations.get(ANN_ASN).and_then(|a| parse_as_number(a).ok());
        h.rr_cluster_id = self.annotations.get(ANN_RR_CLUSTER_ID).filter(|s| !s.is_empty()).cloned();
        h
    }

    pub fn ipip_tunnel_addr(&self) -> Option<Ipv4Addr> {
        self.annotations.get(ANN_IPIP_TUNNEL).and_then(|s| Ipv4Addr::from_str(s).ok())
    }

    /// The Calico Node view of this record (what `calicoctl get node -o yaml` shows).
    pub fn as_calico_node(&self) -> CalicoNode {
        let a = |k: &str| self.annotations.get(k).filter(|s| !s.is_empty()).cloned();
        let bgp = NodeBgpSpec {
            ipv4_address: a(ANN_IPV4),
            ipv6_address: a(ANN_IPV6),
            as_number: a(ANN_ASN).and_then(|s| parse_as_number(&s).ok()),
            route_reflector_cluster_id: a(ANN_RR_CLUSTER_ID),
            ipv4_ipip_tunnel_addr: a(ANN_IPIP_TUNNEL),
        };
        let has_bgp = bgp
            != NodeBgpSpec {
                ipv4_address: None,
                ipv6_address: None,
                as_number: None,
                route_reflector_cluster_id: None,
                ipv4_ipip_tunnel_addr: None,
            };
        CalicoNode {
            metadata: Meta {
                name: self.name.clone(),
                namespace: None,
                labels: self.labels.clone(),
                annotations: BTreeMap::new(),
            },
            bgp: has_bgp.then_some(bgp),
            ipv4_vxlan_tunnel_addr: a(ANN_VXLAN_TUNNEL),
        }
    }
}

/// How a resource is written: calicoctl's apply, create and replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WriteMode {
    Apply,
    Create,
    Replace,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("resource already exists: {kind}({name})")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("resource does not exist: {kind}({name}) with error: {kind}.projectcalico.org \"{name}\" not found")]
    NotFound { kind: &'static str, name: String },
    #[error("IPPool({new}) CIDR overlaps with IPPool({other}) CIDR {cidr}")]
    PoolOverlap { new: String, other: String, cidr: String },
    #[error("IPPool CIDR cannot be modified")]
    PoolCidrChanged,
    #[error("{0}")]
    Invalid(String),
}

/// Everything calico-node's BGP control plane and Felix read.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Datastore {
    pub nodes: BTreeMap<String, NodeRecord>,
    pub bgp_configurations: BTreeMap<String, BgpConfiguration>,
    pub bgp_peers: BTreeMap<String, BgpPeer>,
    pub ip_pools: BTreeMap<String, IpPool>,
    pub felix_configurations: BTreeMap<String, FelixConfiguration>,
    pub block_affinities: BTreeMap<String, BlockAffinity>,
    /// Keyed `<namespace>/<name>`.
    pub secrets: BTreeMap<String, Secret>,
    /// Keyed `<namespace>/<name>`.
    pub services: BTreeMap<String, Service>,
    /// Keyed `<namespace>/<name>`.
    pub endpoints: BTreeMap<String, Endpoints>,
    /// The calico-node DaemonSet's container env (`kubectl set env daemonset/calico-node …`).
    pub calico_node_env: BTreeMap<String, String>,
}

impl Datastore {
    pub fn new() -> Datastore {
        Datastore::default()
    }

    pub fn node(&self, name: &str) -> Option<&NodeRecord> {
        self.nodes.get(name)
    }

    pub fn default_bgp_configuration(&self) -> Option<&BgpConfiguration> {
        self.bgp_configurations.get("default")
    }

    /// Write one resource (calicoctl apply/create/replace, or kubectl apply for v1 kinds).
    pub fn write(&mut self, res: Resource, mode: WriteMode) -> Result<(), StoreError> {
        let kind = res.kind();
        let name = res.name().to_string();
        let exists = self.exists(kind, &name);
        match (mode, exists) {
            (WriteMode::Create, true) => return Err(StoreError::AlreadyExists { kind: kind.calico_name(), name }),
            (WriteMode::Replace, false) => return Err(StoreError::NotFound { kind: kind.calico_name(), name }),
            _ => {}
        }
        match res {
            Resource::Node(n) => self.write_calico_node(n),
            Resource::KubeNode(k) => self.write_kube_node(k),
            Resource::BGPConfiguration(c) => {
                self.bgp_configurations.insert(name, c);
            }
            Resource::BGPPeer(p) => {
                self.bgp_peers.insert(name, p);
            }
            Resource::IPPool(p) => {
                if let Some(old) = self.ip_pools.get(&name) {
                    if old.spec.cidr != p.spec.cidr {
                        return Err(StoreError::PoolCidrChanged);
                    }
                }
                // Calico's IPPool client: a new pool may not overlap any other pool.
                for (other_name, other) in &self.ip_pools {
                    if *other_name != name && nets_overlap(&other.spec.cidr, &p.spec.cidr) {
                        return Err(StoreError::PoolOverlap {
                            new: name,
                            other: other_name.clone(),
                            cidr: other.spec.cidr.to_string(),
                        });
                    }
                }
                self.ip_pools.insert(name, p);
            }
            Resource::FelixConfiguration(f) => {
                self.felix_configurations.insert(name, f);
            }
            Resource::BlockAffinity(b) => {
                self.block_affinities.insert(name, b);
            }
            Resource::Secret(s) => {
                let key =
                    format!("{}/{}", s.metadata.namespace.clone().unwrap_or_else(|| "default".into()), s.metadata.name);
                self.secrets.insert(key, s);
            }
            Resource::Service(s) => {
                let key =
                    format!("{}/{}", s.metadata.namespace.clone().unwrap_or_else(|| "default".into()), s.metadata.name);
                self.services.insert(key, s);
            }
            Resource::Endpoints(e) => {
                let key =
                    format!("{}/{}", e.metadata.namespace.clone().unwrap_or_else(|| "default".into()), e.metadata.name);
                self.endpoints.insert(key, e);
            }
        }
        Ok(())
    }

    pub fn exists(&self, kind: ResourceKind, name: &str) -> bool {
        match kind {
            ResourceKind::Node | ResourceKind::KubeNode => self.nodes.contains_key(name),
            ResourceKind::BGPConfiguration => self.bgp_configurations.contains_key(name),
            ResourceKind::BGPPeer => self.bgp_peers.contains_key(name),
            ResourceKind::IPPool => self.ip_pools.contains_key(name),
            ResourceKind::FelixConfiguration => self.felix_configurations.contains_key(name),
            ResourceKind::BlockAffinity => self.block_affinities.contains_key(name),
            ResourceKind::Secret => self.secrets.keys().any(|k| k.rsplit('/').next() == Some(name)),
            ResourceKind::Service => self.services.keys().any(|k| k.rsplit('/').next() == Some(name)),
            ResourceKind::Endpoints => self.endpoints.keys().any(|k| k.rsplit('/').next() == Some(name)),
        }
    }

    /// Delete by kind and name; deleting a missing object fails as calicoctl does.
    pub fn delete(&mut self, kind: ResourceKind, name: &str) -> Result<(), StoreError> {
        let removed = match kind {
            ResourceKind::Node | ResourceKind::KubeNode => self.nodes.remove(name).is_some(),
            ResourceKind::BGPConfiguration => self.bgp_configurations.remove(name).is_some(),
            ResourceKind::BGPPeer => self.bgp_peers.remove(name).is_some(),
            ResourceKind::IPPool => self.ip_pools.remove(name).is_some(),
            ResourceKind::FelixConfiguration => self.felix_configurations.remove(name).is_some(),
            ResourceKind::BlockAffinity => self.block_affinities.remove(name).is_some(),
            ResourceKind::Secret => {
                let key = self.secrets.keys().find(|k| k.rsplit('/').next() == Some(name)).cloned();
                key.map(|k| self.secrets.remove(&k)).is_some()
            }
            ResourceKind::Service => {
                let key = self.services.keys().find(|k| k.rsplit('/').next() == Some(name)).cloned();
                key.map(|k| self.services.remove(&k)).is_some()
            }
            ResourceKind::Endpoints => {
                let key = self.endpoints.keys().find(|k| k.rsplit('/').next() == Some(name)).cloned();
                key.map(|k| self.endpoints.remove(&k)).is_some()
            }
        };
        if removed {
            Ok(())
        } else {
            Err(StoreError::NotFound { kind: kind.calico_name(), name: name.to_string() })
        }
    }

    /// The resource as calicoctl would show it (for `get` and for patches).
    pub fn get(&self, kind: ResourceKind, name: &str) -> Option<Resource> {
        match kind {
            ResourceKind::Node => self.nodes.get(name).map(|n| Resource::Node(n.as_calico_node())),
            ResourceKind::KubeNode => self.nodes.get(name).map(|n| {
                Resource::KubeNode(KubeNode {
                    metadata: Meta {
                        name: n.name.clone(),
                        namespace: None,
                        labels: n.labels.clone(),
                        annotations: n.annotations.clone(),
                    },
                    pod_cidr: n.pod_cidr.clone(),
                    unschedulable: n.unschedulable,
                })
            }),
            ResourceKind::BGPConfiguration => {
                self.bgp_configurations.get(name).cloned().map(Resource::BGPConfiguration)
            }
            ResourceKind::BGPPeer => self.bgp_peers.get(name).cloned().map(Resource::BGPPeer),
            ResourceKind::IPPool => self.ip_pools.get(name).cloned().map(Resource::IPPool),
            ResourceKind::FelixConfiguration => {
                self.felix_configurations.get(name).cloned().map(Resource::FelixConfiguration)
            }
            ResourceKind::BlockAffinity => self.block_affinities.get(name).cloned().map(Resource::BlockAffinity),
            ResourceKind::Secret => self
                .secrets
                .iter()
                .find(|(k, _)| k.rsplit('/').next() == Some(name))
                .map(|(_, s)| Resource::Secret(s.clone())),
            ResourceKind::Service => self
                .services
                .iter()
                .find(|(k, _)| k.rsplit('/').next() == Some(name))
                .map(|(_, s)| Resource::Service(s.clone())),
            ResourceKind::Endpoints => self
                .endpoints
                .iter()
                .find(|(k, _)| k.rsplit('/').next() == Some(name))
                .map(|(_, s)| Resource::Endpoints(s.clone())),
        }
    }

    pub fn names(&self, kind: ResourceKind) -> Vec<String> {
        match kind {
            ResourceKind::Node | ResourceKind::KubeNode => self.nodes.keys().cloned().collect(),
            ResourceKind::BGPConfiguration => self.bgp_configurations.keys().cloned().collect(),
            ResourceKind::BGPPeer => self.bgp_peers.keys().cloned().collect(),
            ResourceKind::IPPool => self.ip_pools.keys().cloned().collect(),
            ResourceKind::FelixConfiguration => self.felix_configurations.keys().cloned().collect(),
            ResourceKind::BlockAffinity => self.block_affinities.keys().cloned().collect(),
            ResourceKind::Secret => self.secrets.values().map(|s| s.metadata.name.clone()).collect(),
            ResourceKind::Service => self.services.values().map(|s| s.metadata.name.clone()).collect(),
            ResourceKind::Endpoints => self.endpoints.values().map(|s| s.metadata.name.clone()).collect(),
        }
    }

    fn write_calico_node(&mut self, n: CalicoNode) {
        let rec = self
            .nodes
            .entry(n.metadata.name.clone())
            .or_insert_with(|| NodeRecord { name: n.metadata.name.clone(), ..Default::default() });
        // KDD: the Calico Node's labels are the Kubernetes Node's labels.
        rec.labels = n.metadata.labels.clone();
        let bgp = n.bgp.clone().unwrap_or(NodeBgpSpec {
            ipv4_address: None,
            ipv6_address: None,
            as_number: None,
            route_reflector_cluster_id: None,
            ipv4_ipip_tunnel_addr: None,
        });
        let mut set = |k: &str, v: Option<String>| match v {
            Some(v) => {
                rec.annotations.insert(k.to_string(), v);
            }
            None => {
                rec.annotations.remove(k);
            }
        };
        set(ANN_IPV4, bgp.ipv4_address);
        set(ANN_IPV6, bgp.ipv6_address);
        set(ANN_ASN, bgp.as_number.map(|a| a.to_string()));
        set(ANN_RR_CLUSTER_ID, bgp.route_reflector_cluster_id);
        set(ANN_IPIP_TUNNEL, bgp.ipv4_ipip_tunnel_addr);
        set(ANN_VXLAN_TUNNEL, n.ipv4_vxlan_tunnel_addr);
    }

    fn write_kube_node(&mut self, k: KubeNode) {
        let rec = self
            .nodes
            .entry(k.metadata.name.clone())
            .or_insert_with(|| NodeRecord { name: k.metadata.name.clone(), ..Default::default() });
        rec.labels = k.metadata.labels;
        // Keep Calico's annotations, which calico-node writes on the node object, unless given.
        let calico: BTreeMap<String, String> = rec
            .annotations
            .iter()
            .filter(|(key, _)| key.starts_with("projectcalico.org/"))
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect();
        rec.annotations = calico;
        rec.annotations.extend(k.metadata.annotations);
        rec.pod_cidr = k.pod_cidr;
        rec.unschedulable = k.unschedulable;
    }

    /// The global AS (default BGPConfiguration, else 64512).
    pub fn global_as(&self) -> u32 {
        self.default_bgp_configuration().and_then(|c| c.spec.as_number).unwrap_or(64512)
    }

    /// A node's effective AS: its own, else the global one.
    pub fn node_as(&self, node: &str) -> u32 {
        self.nodes.get(node).and_then(|n| n.bgp().as_num).unwrap_or_else(|| self.global_as())
    }

    /// Value of a Secret key, looked up in any namespace (calico-node reads its own namespace).
    pub fn secret_value(&self, name: &str, key: &str) -> Option<String> {
        self.secrets.values().find(|s| s.metadata.name == name).and_then(|s| s.data.get(key).cloned())
    }
}

pub fn nets_overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::resources::parse_resources;

    fn load(ds: &mut Datastore, src: &str) {
        for r in parse_resources("t.yaml", src).unwrap() {
            ds.write(r.resource, WriteMode::Apply).unwrap();
        }
    }

    #[test]
    fn calico_node_lands_in_annotations() {
        let mut ds = Datastore::new();
        load(&mut ds, "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: n1\nspec:\n  bgp:\n    ipv4Address: 10.0.0.1/24\n    routeReflectorClusterID: 244.0.0.1\n");
        let n = ds.node("n1").unwrap();
        assert_eq!(n.annotations.get(ANN_IPV4).map(String::as_str), Some("10.0.0.1/24"));
        let b = n.bgp();
        assert_eq!(b.ipv4, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(b.network_v4.map(|n| n.to_string()), Some("10.0.0.0/24".to_string()));
        assert_eq!(b.rr_cluster_id.as_deref(), Some("244.0.0.1"));
    }

    #[test]
    fn overlapping_pools_are_rejected() {
        let mut ds = Datastore::new();
        load(
            &mut ds,
            "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: a\nspec:\n  cidr: 172.16.0.0/16\n",
        );
        let r = parse_resources(
            "t.yaml",
            "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: b\nspec:\n  cidr: 172.16.4.0/24\n",
        )
        .unwrap();
        let e = ds.write(r[0].resource.clone(), WriteMode::Apply).unwrap_err();
        assert_eq!(e.to_string(), "IPPool(b) CIDR overlaps with IPPool(a) CIDR 172.16.0.0/16");
    }

    #[test]
    fn create_and_replace_semantics() {
        let mut ds = Datastore::new();
        let r = parse_resources(
            "t.yaml",
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  peerSelector: all()\n",
        )
        .unwrap();
        assert!(matches!(ds.write(r[0].resource.clone(), WriteMode::Replace), Err(StoreError::NotFound { .. })));
        ds.write(r[0].resource.clone(), WriteMode::Create).unwrap();
        assert!(matches!(ds.write(r[0].resource.clone(), WriteMode::Create), Err(StoreError::AlreadyExists { .. })));
        assert_eq!(ds.delete(ResourceKind::BGPPeer, "p"), Ok(()));
        assert!(ds.delete(ResourceKind::BGPPeer, "p").is_err());
    }
}
