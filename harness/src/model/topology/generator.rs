//! `rrlab gen`: a topology shaped like `hybrid-rr` at any size, written in exactly the format
//! [`load`](super::load) reads and containerlab/kind accept. Pure: a [`GenSpec`] in, file texts out; the same
//! spec gives byte-identical files.
//!
//! What a spec becomes:
//! - **Clusters**: one `k8s-kind` node each, named `<name>` when there is one cluster, `<name>-c1`, `<name>-c2`,
//!   … otherwise; its kind config is `<cluster>.kind.yaml`. The N nodes are dealt to the clusters in order,
//!   evenly (the first `N % clusters` clusters get one more). Cluster k's pod subnet is the k-th subnet of
//!   `pod_subnet`'s size after it (`172.16.0.0/16`, `172.17.0.0/16`, …); its service subnet is
//!   `192.168.<k>.0/24`. Each cluster has one control plane (its first node), the rest are workers, named as
//!   kind names them (`<cluster>-control-plane`, `<cluster>-worker`, `<cluster>-worker2`, …).
//! - **Sites** (= partitions): `a`, `b`, …, `z`, `aa`, `ab`, … Every cluster spans every site: a cluster's
//!   nodes, in kind's order, are split into contiguous runs, one per site, evenly (the remainder goes to the
//!   sites from `clusters mod sites` on, so that the sites stay even over several clusters). The control plane
//!   is therefore on site `a`. Site i is bridge `<name>-<site>` with subnet `10.<i+1>.0.0/<len>`, `<len>` the
//!   longest prefix from /24 to /16 that holds the site's nodes and the WAN; the WAN is `.1`, the nodes
//!   `.2`, `.3`, … in file order.
//! - **Route reflectors to be**: on each site, for each cluster, the first `rrs_per_site` nodes of the site
//!   that are not the control plane (on site `a` the control plane comes first and is skipped). They are
//!   only *marked*: the node-to-node mesh is on, as Calico starts; a runbook makes them RRs.
//! - **Kubernetes node labels** (kind config), on every node: `site: <site>`, `site-role: <site>-rr` or
//!   `<site>-client`, and on RRs-to-be `rr-candidate: "true"`. Runbooks select with them (`label:site=a`,
//!   `label:rr-candidate=true`, `label:site-role=a-client`; `kubectl … -l rr-candidate=true,site=a`), so the
//!   same steps work at any size (the runbooks' node sets are unions; `site-role` is the one-label
//!   intersection of the other two). On each site, for each cluster, the last [`SAMPLE_PER_SITE`] clients also
//!   carry `reach-sample: <site>`: reach checks of large labs ping between these samples (every pair of two
//!   100-client sets would be 40,000 pings per check) while the FIB checks still read every node.
//! - **The WAN**: one `linux` node `wan`, on every site (`eth1` on site a, `eth2` on site b, …) with `.1`
//!   there, `net.ipv4.ip_forward=1`. Every cluster node has `ip addr add <ip>/<len> dev eth1` and
//!   `ip route add <other site> via <its site's .1> dev eth1` for every other site.
//! - **Host interface names** (bridges and bridge ports are in the host's namespace on the kind backend):
//!   bridge `<name>-<site>`, node ports `<name>-<i>` (i = the node's index in the file, from 0), WAN ports
//!   `<name>-w<site>`; at most 15 characters, unique.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{DEFAULT_AS, DEFAULT_IPIP_MODE, LABEL_CALICO_AS, LABEL_IPIP_MODE, LABEL_NODE_INTERFACE};

/// At most this many sites: site i uses 10.<i+1>.0.0/16's space.
pub const MAX_SITES: usize = 250;
/// The WAN node's name.
pub const WAN: &str = "wan";
/// The WAN container's image (as in hybrid-rr).
pub const WAN_IMAGE: &str = "ghcr.io/srl-labs/network-multitool";
/// Kubernetes node labels the generator sets.
pub const LABEL_SITE: &str = "site";
pub const LABEL_SITE_ROLE: &str = "site-role";
pub const LABEL_RR_CANDIDATE: &str = "rr-candidate";
pub const LABEL_REACH_SAMPLE: &str = "reach-sample";
/// Clients per site and cluster labelled `reach-sample: <site>` (the last ones of the site).
pub const SAMPLE_PER_SITE: usize = 3;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSpec {
    /// The lab (containerlab topology) name; also the cluster name (one cluster) or its prefix.
    pub name: String,
    /// Cluster nodes in all (control planes included).
    pub nodes: usize,
    /// Sites = partitions, one bridge and one subnet each.
    pub sites: usize,
    /// Route reflectors to be per site and cluster.
    pub rrs_per_site: usize,
    pub clusters: usize,
    pub as_number: u32,
    /// The first cluster's pod subnet (Calico IPPool); the others follow it.
    pub pod_subnet: Ipv4Net,
    /// `Always`, `CrossSubnet` or `Never`.
    pub ipip_mode: String,
}

impl GenSpec {
    /// One cluster, Calico's defaults (AS 64512, IPIP Always), pods in 172.16.0.0/16.
    pub fn new(name: &str, nodes: usize, sites: usize, rrs_per_site: usize) -> GenSpec {
        GenSpec {
            name: name.to_string(),
            nodes,
            sites,
            rrs_per_site,
            clusters: 1,
            as_number: DEFAULT_AS,
            pod_subnet: Ipv4Net::new(Ipv4Addr::new(172, 16, 0, 0), 16).expect("a /16"),
            ipip_mode: DEFAULT_IPIP_MODE.to_string(),
        }
    }
}

/// A spec that cannot be generated: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {message}")]
pub struct GenError {
    /// The [`GenSpec`] field (`rrlab gen`'s option without `--`, `_` for `-`).
    pub field: &'static str,
    pub message: String,
}

fn gen_err(field: &'static str, message: impl Into<String>) -> GenError {
    GenError { field, message: message.into() }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSite {
    /// `a`, `b`, …
    pub name: String,
    /// The bridge node: `<name>-<site>`.
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// The WAN's address here (`.1`).
    pub wan_ip: Ipv4Addr,
    /// The WAN's interface on this site (`eth1`, …) and its bridge port.
    pub wan_iface: String,
    pub wan_port: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenCluster {
    pub name: String,
    pub pod_subnet: Ipv4Net,
    pub service_subnet: Ipv4Net,
    /// Indexes into [`Plan::nodes`], in kind's order.
    pub nodes: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenNode {
    /// As kind names it.
    pub name: String,
    /// Index into [`Plan::clusters`].
    pub cluster: usize,
    /// Index into [`Plan::sites`].
    pub site: usize,
    pub control_plane: bool,
    pub rr: bool,
    pub ip: Ipv4Addr,
    /// The bridge port (host side of its eth1).
    pub port: String,
}

/// Everything the files say, decided once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub spec: GenSpec,
    pub sites: Vec<GenSite>,
    pub clusters: Vec<GenCluster>,
    /// In file order: site by site, and within a site cluster by cluster in kind's order.
    pub nodes: Vec<GenNode>,
}

/// The generated files: (file name, text), the topology first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub plan: Plan,
    pub files: Vec<(String, String)>,
}

/// Site name of index i: a..z, aa..az, ba.. (bijective base 26).
pub fn site_name(i: usize) -> String {
    let mut n = i + 1;
    let mut s = Vec::new();
    while n > 0 {
        n -= 1;
        s.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

/// kind's name for a cluster's i-th node (0 = the control plane, then workers).
pub fn kind_node_name(cluster: &str, i: usize) -> String {
    match i {
        0 => format!("{cluster}-control-plane"),
        1 => format!("{cluster}-worker"),
        n => format!("{cluster}-worker{n}"),
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `n` split into `parts` even shares; the remainder goes to the shares from `start` on (cyclically).
fn split(n: usize, parts: usize, start: usize) -> Vec<usize> {
    let (q, r) = (n / parts, n % parts);
    (0..parts).map(|i| q + usize::from((i + parts - start % parts) % parts < r)).collect()
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Decide names, sites, addresses and RRs, or say which field makes the spec impossible.
pub fn plan(spec: &GenSpec) -> Result<Plan, GenError> {
    let name = &spec.name;
    if !is_dns_label(name) {
        return Err(gen_err(
            "name",
            format!("{name:?} is not a DNS label (lower-case letters, digits and '-', starting with a letter, ending with a letter or digit, at most 63 characters): it names the lab, the clusters and the kind node containers"),
        ));
    }
    if name == WAN {
        return Err(gen_err("name", format!("{name:?} is the WAN node's name; choose another")));
    }
    if spec.nodes == 0 {
        return Err(gen_err("nodes", "must be at least 1"));
    }
    if spec.sites == 0 {
        return Err(gen_err("sites", "must be at least 1"));
    }
    if spec.sites > MAX_SITES {
        return Err(gen_err(
            "sites",
            format!("{} sites: at most {MAX_SITES} (site i is addressed in 10.<i+1>.0.0/16)", spec.sites),
        ));
    }
    if spec.clusters == 0 {
        return Err(gen_err("clusters", "must be at least 1"));
    }
    if spec.clusters > 256 {
        return Err(gen_err(
            "clusters",
            format!("{}: at most 256 (cluster k's services are 192.168.<k>.0/24)", spec.clusters),
        ));
    }
    if spec.as_number == 0 {
        return Err(gen_err("as_number", "0 is not an AS number (1..=4294967295)"));
    }
    if !matches!(spec.ipip_mode.as_str(), "Always" | "CrossSubnet" | "Never") {
        return Err(gen_err(
            "ipip_mode",
            format!("{:?}: an IPPool's ipipMode is Always, CrossSubnet or Never", spec.ipip_mode),
        ));
    }
    let pod = spec.pod_subnet;
    if pod.trunc() != pod {
        return Err(gen_err("pod_subnet", format!("{pod} has host bits set; did you mean {}?", pod.trunc())));
    }
    if pod.prefix_len() > 26 {
        return Err(gen_err("pod_subnet", format!("{pod} is smaller than one Calico IPAM block (/26)")));
    }

    // Clusters: names and node counts; every cluster spans every site.
    let per_cluster = split(spec.nodes, spec.clusters, 0);
    let cluster_names: Vec<String> = if spec.clusters == 1 {
        vec![name.clone()]
    } else {
        (1..=spec.clusters).map(|k| format!("{name}-c{k}")).collect()
    };
    for (k, (cname, &n)) in cluster_names.iter().zip(&per_cluster).enumerate() {
        if n < spec.sites {
            return Err(gen_err(
                "nodes",
                format!(
                    "{} nodes over {} clusters leave cluster {cname} (cluster {}) {n} nodes, fewer than the {} sites every cluster spans",
                    spec.nodes,
                    spec.clusters,
                    k + 1,
                    spec.sites
                ),
            ));
        }
    }
    // Per (cluster, site): how many nodes, in kind's order.
    let shares: Vec<Vec<usize>> = per_cluster.iter().enumerate().map(|(k, &n)| split(n, spec.sites, k)).collect();
    for (k, share) in shares.iter().enumerate() {
        for (s, &n) in share.iter().enumerate() {
            // The control plane (first node) is on site a and is never an RR.
            let eligible = if s == 0 { n - 1 } else { n };
            if spec.rrs_per_site > eligible {
                return Err(gen_err(
                    "rrs_per_site",
                    format!(
                        "{} route reflectors per site, but site {} has only {eligible} node(s) of cluster {} that can be one ({n} nodes{})",
                        spec.rrs_per_site,
                        site_name(s),
                        cluster_names[k],
                        if s == 0 { ", the control plane excluded" } else { "" }
                    ),
                ));
            }
        }
    }

    // Sites: subnets sized for their nodes plus the WAN.
    let mut sites = Vec::new();
    for s in 0..spec.sites {
        let count: usize = shares.iter().map(|sh| sh[s]).sum();
        let need = count + 3; // network, broadcast, the WAN
        let len = (16..=24).rev().find(|l| (1usize << (32 - l)) >= need).ok_or_else(|| {
            gen_err("nodes", format!("site {} would hold {count} nodes: more than a /16 holds (65533)", site_name(s)))
        })?;
        let base = Ipv4Addr::new(10, (s + 1) as u8, 0, 0);
        let subnet = Ipv4Net::new(base, len).expect("prefix length 16..=24");
        let sname = site_name(s);
        sites.push(GenSite {
            bridge: format!("{name}-{sname}"),
            subnet,
            wan_ip: Ipv4Addr::from(u32::from(base) + 1),
            wan_iface: format!("eth{}", s + 1),
            wan_port: format!("{name}-w{sname}"),
            name: sname,
        });
    }

    // Clusters: pod and service subnets.
    let size = 1u64 << (32 - pod.prefix_len());
    let mut clusters = Vec::new();
    for (k, cname) in cluster_names.iter().enumerate() {
        let start = u64::from(u32::from(pod.network())) + k as u64 * size;
        if start + size > 1 << 32 {
            return Err(gen_err(
                "pod_subnet",
                format!("{} clusters of {pod}'s size do not fit after {pod} in the IPv4 space", spec.clusters),
            ));
        }
        let cpod = Ipv4Net::new(Ipv4Addr::from(start as u32), pod.prefix_len()).expect("same prefix");
        let blocks = 1u64 << (26 - pod.prefix_len());
        if (per_cluster[k] as u64) > blocks {
            return Err(gen_err(
                "pod_subnet",
                format!(
                    "cluster {cname}'s pod subnet {cpod} holds {blocks} /26 blocks, fewer than its {} nodes (one block each): use a larger pod_subnet",
                    per_cluster[k]
                ),
            ));
        }
        let service = Ipv4Net::new(Ipv4Addr::new(192, 168, k as u8, 0), 24).expect("a /24");
        for site in &sites {
            if overlaps(&cpod, &site.subnet) {
                return Err(gen_err(
                    "pod_subnet",
                    format!("cluster {cname}'s pod subnet {cpod} overlaps site {}'s subnet {}", site.name, site.subnet),
                ));
            }
        }
        for k2 in 0..spec.clusters {
            let s2 = Ipv4Net::new(Ipv4Addr::new(192, 168, k2 as u8, 0), 24).expect("a /24");
            if overlaps(&cpod, &s2) {
                return Err(gen_err(
                    "pod_subnet",
                    format!("cluster {cname}'s pod subnet {cpod} overlaps the service subnet {s2}"),
                ));
            }
        }
        clusters.push(GenCluster { name: cname.clone(), pod_subnet: cpod, service_subnet: service, nodes: Vec::new() });
    }

    // Nodes, in file order: site by site, cluster by cluster, kind's order within.
    let mut nodes = Vec::new();
    let mut next_host: Vec<u32> = vec![2; spec.sites];
    for (s, site) in sites.iter().enumerate() {
        for (k, share) in shares.iter().enumerate() {
            let first: usize = share[..s].iter().sum();
            let mut rrs = 0;
            for i in first..first + share[s] {
                let control_plane = i == 0;
                let rr = !control_plane && rrs < spec.rrs_per_site;
                if rr {
                    rrs += 1;
                }
                let ip = Ipv4Addr::from(u32::from(site.subnet.network()) + next_host[s]);
                next_host[s] += 1;
                let idx = nodes.len();
                clusters[k].nodes.push(idx);
                nodes.push(GenNode {
                    name: kind_node_name(&clusters[k].name, i),
                    cluster: k,
                    site: s,
                    control_plane,
                    rr,
                    ip,
                    port: format!("{name}-{idx}"),
                });
            }
        }
    }
    for c in &mut clusters {
        c.nodes.sort_by_key(|&i| kind_index(&nodes[i].name, &c.name));
    }

    // Host interface names: Linux allows 15 characters.
    let longest = sites
        .iter()
        .flat_map(|s| [s.bridge.as_str(), s.wan_port.as_str()])
        .chain(nodes.iter().map(|n| n.port.as_str()))
        .max_by_key(|s| s.len())
        .unwrap_or_default();
    if longest.len() > 15 {
        return Err(gen_err(
            "name",
            format!(
                "{name:?} is too long for this size: host interface {longest:?} would have {} characters, Linux allows 15 (bridges are <name>-<site>, bridge ports <name>-<node index>)",
                longest.len()
            ),
        ));
    }
    Ok(Plan { spec: spec.clone(), sites, clusters, nodes })
}

/// A kind node name's position in its cluster (0 = control plane, then workers).
fn kind_index(node: &str, cluster: &str) -> usize {
    match node.strip_prefix(cluster).unwrap_or(node) {
        "-control-plane" => 0,
        "-worker" => 1,
        w => w.strip_prefix("-worker").and_then(|n| n.parse().ok()).unwrap_or(usize::MAX),
    }
}

impl Plan {
    pub fn clab_file(&self) -> String {
        format!("{}.clab.yml", self.spec.name)
    }

    pub fn kind_file(&self, cluster: usize) -> String {
        format!("{}.kind.yaml", self.clusters[cluster].name)
    }

    /// The nodes of a site, in file order.
    pub fn site_nodes(&self, site: usize) -> impl Iterator<Item = &GenNode> {
        self.nodes.iter().filter(move |n| n.site == site)
    }

    /// BGP sessions crossing the WAN (each counted once): with the mesh on, every pair of a cluster's nodes on
    /// different sites.
    pub fn wan_mesh_sessions(&self) -> usize {
        let mut n = 0;
        for c in 0..self.clusters.len() {
            let per_site: Vec<usize> =
                (0..self.sites.len()).map(|s| self.site_nodes(s).filter(|x| x.cluster == c).count()).collect();
            let total: usize = per_site.iter().sum();
            n += per_site.iter().map(|&k| k * (total - k)).sum::<usize>() / 2;
        }
        n
    }

    /// BGP sessions crossing the WAN once the marked RRs of every site mesh with each other (procedure 1's
    /// `rr-full-mesh` peer) and the mesh is off: RR pairs of a cluster on different sites.
    pub fn wan_rr_sessions(&self) -> usize {
        let mut n = 0;
        for c in 0..self.clusters.len() {
            let per_site: Vec<usize> =
                (0..self.sites.len()).map(|s| self.site_nodes(s).filter(|x| x.cluster == c && x.rr).count()).collect();
            let total: usize = per_site.iter().sum();
            n += per_site.iter().map(|&k| k * (total - k)).sum::<usize>() / 2;
        }
        n
    }

    /// What `rrlab gen` prints: nodes per site, RRs, subnets.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} nodes in {} cluster(s) over {} site(s), {} RR(s) per site and cluster, AS {}, IPIP {}",
            self.spec.name,
            self.nodes.len(),
            self.clusters.len(),
            self.sites.len(),
            self.spec.rrs_per_site,
            self.spec.as_number,
            self.spec.ipip_mode
        );
        for (i, site) in self.sites.iter().enumerate() {
            let nodes: Vec<&GenNode> = self.site_nodes(i).collect();
            let rrs: Vec<&str> = nodes.iter().filter(|n| n.rr).map(|n| n.name.as_str()).collect();
            let _ = writeln!(
                s,
                "  site {} (bridge {}, {}, WAN {} on {}): {} nodes, RRs to be: {}",
                site.name,
                site.bridge,
                site.subnet,
                site.wan_ip,
                site.wan_iface,
                nodes.len(),
                if rrs.is_empty() { "none".to_string() } else { rrs.join(", ") }
            );
        }
        for c in &self.clusters {
            let _ = writeln!(
                s,
                "  cluster {}: {} nodes, pods {}, services {}",
                c.name,
                c.nodes.len(),
                c.pod_subnet,
                c.service_subnet
            );
        }
        let _ = writeln!(
            s,
            "  BGP sessions across the WAN: {} with the mesh, {} with RRs only",
            self.wan_mesh_sessions(),
            self.wan_rr_sessions()
        );
        s
    }

    fn command(&self) -> String {
        let sp = &self.spec;
        let mut c = format!(
            "rrlab gen --name {} --nodes {} --sites {} --rrs-per-site {}",
            sp.name, sp.nodes, sp.sites, sp.rrs_per_site
        );
        if sp.clusters != 1 {
            let _ = write!(c, " --clusters {}", sp.clusters);
        }
        if sp.as_number != DEFAULT_AS {
            let _ = write!(c, " --as-number {}", sp.as_number);
        }
        if sp.pod_subnet.to_string() != "172.16.0.0/16" {
            let _ = write!(c, " --pod-subnet {}", sp.pod_subnet);
        }
        if sp.ipip_mode != DEFAULT_IPIP_MODE {
            let _ = write!(c, " --ipip-mode {}", sp.ipip_mode);
        }
        c
    }

    /// The containerlab topology's text.
    pub fn clab_text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "# Generated by `{}`; regenerate rather than edit.", self.command());
        for line in self.summary().lines() {
            let _ = writeln!(t, "# {}", line.trim_start());
        }
        let _ = writeln!(
            t,
            "# Site bridges are host Linux bridges on the kind backend; rrlab creates them (topologies/README.md)."
        );
        let _ = writeln!(t, "name: {}", self.spec.name);
        t.push_str("\ntopology:\n  nodes:\n");
        for (k, c) in self.clusters.iter().enumerate() {
            let _ = writeln!(t, "    {}:", c.name);
            t.push_str("      kind: k8s-kind\n");
            let _ = writeln!(t, "      startup-config: {}", self.kind_file(k));
            t.push_str("      labels:\n");
            let _ = writeln!(t, "        {LABEL_CALICO_AS}: \"{}\"", self.spec.as_number);
            let _ = writeln!(t, "        {LABEL_IPIP_MODE}: {}", self.spec.ipip_mode);
            let _ = writeln!(t, "        {LABEL_NODE_INTERFACE}: eth1");
        }
        for (s, site) in self.sites.iter().enumerate() {
            let _ = writeln!(t, "\n    # Site {} ({}).", site.name, site.subnet);
            let _ = writeln!(t, "    {}:\n      kind: bridge", site.bridge);
            for n in self.site_nodes(s) {
                let _ = writeln!(t, "    {}:", n.name);
                t.push_str("      kind: ext-container\n      exec:\n");
                let _ = writeln!(t, "        - ip addr add {}/{} dev eth1", n.ip, site.subnet.prefix_len());
                for (o, other) in self.sites.iter().enumerate() {
                    if o != s {
                        let _ = writeln!(t, "        - ip route add {} via {} dev eth1", other.subnet, site.wan_ip);
                    }
                }
            }
        }
        t.push_str(
            "\n    # The WAN between the sites (rrlab partitions it, adds loss and delay, and counts BGP across it).\n",
        );
        let _ = writeln!(t, "    {WAN}:\n      kind: linux\n      image: {WAN_IMAGE}\n      exec:");
        for site in &self.sites {
            let _ = writeln!(
                t,
                "        - ip addr add {}/{} dev {}",
                site.wan_ip,
                site.subnet.prefix_len(),
                site.wan_iface
            );
        }
        t.push_str("        - sysctl -w net.ipv4.ip_forward=1\n");
        t.push_str("\n  links:\n");
        for n in &self.nodes {
            let _ = writeln!(t, "    - endpoints: [\"{}:eth1\", \"{}:{}\"]", n.name, self.sites[n.site].bridge, n.port);
        }
        for site in &self.sites {
            let _ =
                writeln!(t, "    - endpoints: [\"{WAN}:{}\", \"{}:{}\"]", site.wan_iface, site.bridge, site.wan_port);
        }
        t
    }

    /// The kind config of cluster k.
    pub fn kind_text(&self, k: usize) -> String {
        let c = &self.clusters[k];
        let mut t = String::new();
        let _ = writeln!(
            t,
            "# kind cluster config of cluster {} in {} (generated by `{}`).",
            c.name,
            self.clab_file(),
            self.command()
        );
        let _ = writeln!(
            t,
            "# kind names the node containers {0}-control-plane, {0}-worker, {0}-worker2, ... in this order.",
            c.name
        );
        t.push_str("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n");
        t.push_str("  # Calico is the only CNI: kind must not install kindnet.\n  disableDefaultCNI: true\n");
        let _ = writeln!(t, "  # = the Calico IPPool CIDR (CALICO_IPV4POOL_CIDR).\n  podSubnet: {}", c.pod_subnet);
        let _ = writeln!(t, "  serviceSubnet: {}", c.service_subnet);
        t.push_str("nodes:\n");
        for &i in &c.nodes {
            let n = &self.nodes[i];
            let site = &self.sites[n.site];
            let role = if n.control_plane { "control-plane" } else { "worker" };
            let _ = writeln!(
                t,
                "  - role: {role}{:pad$}# {} {} {}",
                "",
                n.name,
                n.ip,
                if n.rr { "route reflector to be" } else { "client" },
                pad = 15 - role.len()
            );
            t.push_str("    labels:\n");
            let mut labels: BTreeMap<&str, String> = BTreeMap::new();
            labels.insert(LABEL_SITE, site.name.clone());
            labels.insert(LABEL_SITE_ROLE, format!("{}-{}", site.name, if n.rr { "rr" } else { "client" }));
            if n.rr {
                labels.insert(LABEL_RR_CANDIDATE, "\"true\"".into());
            }
            if self.in_reach_sample(i) {
                labels.insert(LABEL_REACH_SAMPLE, site.name.clone());
            }
            for (k, v) in labels {
                let _ = writeln!(t, "      {k}: {v}");
            }
        }
        t
    }
}

impl Plan {
    /// Whether node `i` is one of the last [`SAMPLE_PER_SITE`] clients of its site in its cluster.
    pub fn in_reach_sample(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        if n.rr {
            return false;
        }
        let later = (i + 1..self.nodes.len())
            .filter(|&j| {
                let m = &self.nodes[j];
                m.site == n.site && m.cluster == n.cluster && !m.rr
            })
            .count();
        later < SAMPLE_PER_SITE
    }
}

/// The files of a spec: `<name>.clab.yml`, then `<cluster>.kind.yaml` per cluster.
pub fn generate(spec: &GenSpec) -> Result<Generated, GenError> {
    let plan = plan(spec)?;
    let mut files = vec![(plan.clab_file(), plan.clab_text())];
    for k in 0..plan.clusters.len() {
        files.push((plan.kind_file(k), plan.kind_text(k)));
    }
    Ok(Generated { plan, files })
}

#[cfg(test)]
#[path = "generator_tests.rs"]
mod tests;
