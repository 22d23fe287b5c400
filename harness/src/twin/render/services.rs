//! Service IP advertisement (confd/pkg/backends/calico/routes.go and client.go updateGlobalRoutes): the
//! BGPConfiguration's service CIDRs are advertised from every node (static blackhole + export) and never
//! programmed into the kernel (reject), unless the node carries
//! `node.kubernetes.io/exclude-from-external-load-balancers=true`; single service IPs (/32) are advertised
//! from nodes with a local endpoint (externalTrafficPolicy Local) or, for single-IP ranges, from every node.

use std::net::IpAddr;

use ipnet::IpNet;

use super::RenderContext;
use crate::model::resources::Service;

const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// Static routes (advertised) and reject CIDRs (kept out of the kernel), in confd's key order.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ServiceRoutes {
    pub static_routes: Vec<IpNet>,
    pub reject_cidrs: Vec<IpNet>,
    /// serviceLoadBalancerIPs (RR nodes also accept these when exporting).
    pub load_balancer_ranges: Vec<IpNet>,
}

fn nets(v: &[String]) -> Vec<IpNet> {
    v.iter().filter_map(|c| c.parse::<IpNet>().ok()).collect()
}

fn is_single(n: &IpNet) -> bool {
    n.prefix_len() == n.max_prefix_len()
}

fn host(ip: &str) -> Option<IpNet> {
    let a: IpAddr = ip.parse().ok()?;
    IpNet::new(a, if a.is_ipv4() { 32 } else { 128 }).ok()
}

fn key_sorted(mut v: Vec<IpNet>) -> Vec<IpNet> {
    v.sort_by_key(|c| c.to_string().replace('/', "-"));
    v.dedup();
    v
}

pub fn service_routes(cx: &RenderContext) -> ServiceRoutes {
    let cfg = cx.ds.default_bgp_configuration();
    let cluster: Vec<IpNet> = match cx.env("CALICO_ADVERTISE_CLUSTER_IPS") {
        Some(v) => nets(&v.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>()),
        None => cfg.map(|c| nets(&c.spec.service_cluster_ips)).unwrap_or_default(),
    };
    let external = cfg.map(|c| nets(&c.spec.service_external_ips)).unwrap_or_default();
    let lb = cfg.map(|c| nets(&c.spec.service_load_balancer_ips)).unwrap_or_default();
    let excluded = cx.ds.node(cx.node).and_then(|n| n.labels.get(EXCLUDE_LABEL)).is_some_and(|v| v == "true");

    let global: Vec<IpNet> = cluster
        .iter()
        .cloned()
        .chain(external.iter().filter(|n| !is_single(n)).cloned())
        .chain(lb.iter().filter(|n| !is_single(n)).cloned())
        .collect();
    let mut statics = if excluded { Vec::new() } else { global.clone() };
    if !excluded {
        for (key, svc) in &cx.ds.services {
            if advertise(cx, key, svc, &external, &lb) {
                statics.extend(routes_for(svc, !cluster.is_empty(), &external, &lb));
            }
        }
    }
    ServiceRoutes { static_routes: key_sorted(statics), reject_cidrs: key_sorted(global), load_balancer_ranges: lb }
}

fn in_any(ip: &str, ranges: &[IpNet]) -> bool {
    ip.parse::<IpAddr>().is_ok_and(|a| ranges.iter().any(|r| r.contains(&a)))
}

fn single_in(ip: &str, ranges: &[IpNet]) -> bool {
    ip.parse::<IpAddr>().is_ok_and(|a| ranges.iter().any(|r| r.contains(&a) && is_single(r)))
}

/// routeGenerator.advertiseThisService.
fn advertise(cx: &RenderContext, key: &str, svc: &Service, external: &[IpNet], lb: &[IpNet]) -> bool {
    if !["ClusterIP", "NodePort", "LoadBalancer"].contains(&svc.service_type.as_str()) {
        return false;
    }
    let Some(cip) = svc.cluster_ip.as_deref().filter(|c| *c != "None") else { return false };
    if svc.external_traffic_policy == "Cluster" {
        if svc.service_type == "LoadBalancer" && svc.load_balancer_ip.as_deref().is_some_and(|ip| single_in(ip, lb)) {
            return true;
        }
        if (svc.service_type == "LoadBalancer" || svc.service_type == "NodePort")
            && svc.external_ips.iter().any(|ip| single_in(ip, external))
        {
            return true;
        }
    }
    if svc.external_traffic_policy != "Local" {
        return false;
    }
    let v6 = cip.contains(':');
    cx.ds.endpoints.get(key).is_some_and(|ep| {
        ep.addresses.iter().any(|(ip, node)| node.as_deref() == Some(cx.node) && ip.contains(':') == v6)
    })
}

/// routeGenerator.getAllRoutesForService.
fn routes_for(svc: &Service, advertise_cluster_ips: bool, external: &[IpNet], lb: &[IpNet]) -> Vec<IpNet> {
    let mut out = Vec::new();
    if advertise_cluster_ips {
        out.extend(svc.cluster_ip.as_deref().and_then(host));
    }
    out.extend(svc.external_ips.iter().filter(|ip| in_any(ip, external)).filter_map(|ip| host(ip)));
    out.extend(svc.ingress_ips.iter().filter(|ip| in_any(ip, lb)).filter_map(|ip| host(ip)));
    out
}
