use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::*;
use crate::model::topology::{self, NodeKind, Role, Topology};

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Write the files into a fresh directory and load them as rrlab does.
fn load_generated(g: &Generated) -> (tempfile::TempDir, Topology) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in &g.files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let t = topology::load(&dir.path().join(g.plan.clab_file())).unwrap_or_else(|e| panic!("{e}"));
    (dir, t)
}

fn spec(name: &str, nodes: usize, sites: usize, rrs: usize, clusters: usize) -> GenSpec {
    GenSpec { clusters, ..GenSpec::new(name, nodes, sites, rrs) }
}

/// The loaded topology says what the plan says: every node's cluster, site, IP, role and labels; the WAN.
fn assert_matches_plan(t: &Topology, p: &Plan) {
    assert_eq!(t.name, p.spec.name);
    assert_eq!(t.clusters.len(), p.clusters.len());
    for (tc, pc) in t.clusters.iter().zip(&p.clusters) {
        assert_eq!(tc.name, pc.name);
        assert_eq!(tc.pod_subnet, pc.pod_subnet);
        assert_eq!(tc.service_subnet, Some(pc.service_subnet));
        assert_eq!(tc.as_number, p.spec.as_number);
        assert_eq!(tc.ipip_mode, p.spec.ipip_mode);
        let names: Vec<&str> = tc.nodes.iter().map(|n| n.name.as_str()).collect();
        let want: Vec<&str> = pc.nodes.iter().map(|&i| p.nodes[i].name.as_str()).collect();
        assert_eq!(names, want, "cluster {} in kind's order", pc.name);
        for (j, cn) in tc.nodes.iter().enumerate() {
            assert_eq!(cn.name, kind_node_name(&pc.name, j));
            assert_eq!(cn.role == Role::ControlPlane, j == 0, "{}", cn.name);
        }
    }
    let sites = t.sites();
    assert_eq!(sites.len(), p.sites.len());
    for n in &p.nodes {
        let site = &p.sites[n.site];
        assert_eq!(t.node_ip(&n.name), Some(Ipv4Net::new(n.ip, site.subnet.prefix_len()).unwrap()), "{}", n.name);
        assert!(site.subnet.contains(&n.ip));
        assert_eq!(t.site_of(&n.name).as_deref(), Some(site.bridge.as_str()), "{}", n.name);
        assert_eq!(t.cluster_of(&n.name).map(|c| c.name.as_str()), Some(p.clusters[n.cluster].name.as_str()));
        let cn = t.cluster_of(&n.name).unwrap().node(&n.name).unwrap();
        assert_eq!(cn.labels.get("site"), Some(&site.name), "{}", n.name);
        assert_eq!(cn.labels.get("rr-candidate").map(String::as_str), if n.rr { Some("true") } else { None });
        let role = format!("{}-{}", site.name, if n.rr { "rr" } else { "client" });
        assert_eq!(cn.labels.get("site-role"), Some(&role));
        // The reach sample: the last SAMPLE_PER_SITE clients of the site in this cluster.
        let idx = p.nodes.iter().position(|m| m.name == n.name).unwrap();
        let later_clients =
            p.nodes[idx + 1..].iter().filter(|m| m.site == n.site && m.cluster == n.cluster && !m.rr).count();
        let sampled = !n.rr && later_clients < SAMPLE_PER_SITE;
        assert_eq!(cn.labels.get("reach-sample"), if sampled { Some(&site.name) } else { None }, "{}", n.name);
        // A route to every other site via this site's WAN address.
        let routes = &t.routes()[&n.name];
        let want: Vec<(Ipv4Net, Ipv4Addr, Option<String>)> = p
            .sites
            .iter()
            .filter(|o| o.name != site.name)
            .map(|o| (o.subnet, site.wan_ip, Some("eth1".to_string())))
            .collect();
        assert_eq!(routes, &want, "{}", n.name);
    }
    // The WAN: a linux node with .1 on every site, one interface per site, forwarding.
    let wan = &t.nodes[WAN];
    assert_eq!(wan.kind, NodeKind::Linux);
    assert!(wan.exec.contains(&"sysctl -w net.ipv4.ip_forward=1".to_string()));
    let addrs = &t.addresses()[WAN];
    let want: Vec<(String, Ipv4Net)> = p
        .sites
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("eth{}", i + 1), Ipv4Net::new(s.wan_ip, s.subnet.prefix_len()).unwrap()))
        .collect();
    assert_eq!(addrs, &want);
    for (i, s) in p.sites.iter().enumerate() {
        assert_eq!(t.peer_of(WAN, &format!("eth{}", i + 1)).map(|e| e.node.as_str()), Some(s.bridge.as_str()));
        assert_eq!(s.wan_ip, Ipv4Addr::from(u32::from(s.subnet.network()) + 1));
    }
    assert_eq!(t.site_of(WAN), if p.sites.len() == 1 { Some(p.sites[0].bridge.clone()) } else { None });
}

#[test]
fn site_names_are_bijective_base_26() {
    let names: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 249].into_iter().map(site_name).collect();
    assert_eq!(names, ["a", "b", "z", "aa", "ab", "az", "ba", "ip"]);
    let all: std::collections::BTreeSet<String> = (0..MAX_SITES).map(site_name).collect();
    assert_eq!(all.len(), MAX_SITES);
}

#[test]
fn split_is_even_and_rotates_the_remainder() {
    assert_eq!(split(40, 2, 0), [20, 20]);
    assert_eq!(split(41, 2, 0), [21, 20]);
    assert_eq!(split(41, 2, 1), [20, 21]);
    assert_eq!(split(10, 3, 0), [4, 3, 3]);
    assert_eq!(split(11, 3, 2), [4, 3, 4]);
    assert_eq!(split(3, 5, 0), [1, 1, 1, 0, 0]);
}

#[test]
fn forty_nodes_two_sites_two_rrs() {
    let g = generate(&GenSpec::new("scale40", 40, 2, 2)).unwrap();
    let p = &g.plan;
    let files: Vec<&str> = g.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(files, ["scale40.clab.yml", "scale40.kind.yaml"]);
    assert_eq!(p.nodes.len(), 40);
    assert_eq!(p.site_nodes(0).count(), 20);
    assert_eq!(p.site_nodes(1).count(), 20);
    // Site a: the control plane, worker .. worker19; site b: worker20 .. worker39.
    let a: Vec<&str> = p.site_nodes(0).map(|n| n.name.as_str()).collect();
    assert_eq!(a[..3], ["scale40-control-plane", "scale40-worker", "scale40-worker2"]);
    assert_eq!(a[19], "scale40-worker19");
    let b: Vec<&str> = p.site_nodes(1).map(|n| n.name.as_str()).collect();
    assert_eq!((b[0], b[19]), ("scale40-worker20", "scale40-worker39"));
    // RRs: the first two of each site after the control plane.
    let rrs: Vec<&str> = p.nodes.iter().filter(|n| n.rr).map(|n| n.name.as_str()).collect();
    assert_eq!(rrs, ["scale40-worker", "scale40-worker2", "scale40-worker20", "scale40-worker21"]);
    // Addresses: /24 sites, the WAN .1, nodes from .2 in order.
    assert_eq!((p.sites[0].subnet, p.sites[1].subnet), (net("10.1.0.0/24"), net("10.2.0.0/24")));
    assert_eq!(p.nodes[0].ip, ip("10.1.0.2"));
    assert_eq!(p.nodes[19].ip, ip("10.1.0.21"));
    assert_eq!(p.nodes[20].ip, ip("10.2.0.2"));
    assert_eq!(p.nodes[39].ip, ip("10.2.0.21"));
    assert_eq!((p.sites[0].bridge.as_str(), p.sites[1].bridge.as_str()), ("scale40-a", "scale40-b"));
    assert_eq!((p.nodes[0].port.as_str(), p.nodes[39].port.as_str()), ("scale40-0", "scale40-39"));
    assert_eq!(p.sites[1].wan_port, "scale40-wb");
    assert_eq!(p.wan_mesh_sessions(), 400);
    assert_eq!(p.wan_rr_sessions(), 4);
    let (_d, t) = load_generated(&g);
    assert_matches_plan(&t, p);
    assert_eq!(t.site_cidr("scale40-b").unwrap(), "10.2.0.0/24");
}

#[test]
fn two_hundred_nodes_load_and_validate() {
    let g = generate(&GenSpec::new("scale200", 200, 2, 2)).unwrap();
    let p = &g.plan;
    assert_eq!(p.site_nodes(0).count(), 100);
    assert_eq!(p.site_nodes(1).count(), 100);
    assert_eq!(p.nodes[199].name, "scale200-worker199");
    assert_eq!(p.wan_mesh_sessions(), 10_000);
    assert_eq!(p.wan_rr_sessions(), 4);
    let (_d, t) = load_generated(&g);
    assert_matches_plan(&t, p);
    // Bridge-side names are unique and fit Linux's 15 characters.
    let ports: Vec<&str> = t.links.iter().map(|l| l.b.iface.as_str()).collect();
    assert_eq!(ports.len(), 202);
    assert!(ports.iter().all(|p| p.len() <= 15));
    assert_eq!(ports.iter().collect::<std::collections::BTreeSet<_>>().len(), ports.len());
}

#[test]
fn subnets_grow_with_the_site() {
    // 300 nodes on one site: 300 + network + broadcast + WAN need a /23.
    let p = plan(&GenSpec::new("big", 300, 1, 0)).unwrap();
    assert_eq!(p.sites[0].subnet, net("10.1.0.0/23"));
    assert_eq!(p.nodes[253].ip, ip("10.1.0.255"));
    assert_eq!(p.nodes[254].ip, ip("10.1.1.0"));
    assert_eq!(p.nodes[299].ip, ip("10.1.1.45"));
    // 253 nodes + the WAN fill a /24 exactly; one more needs a /23.
    assert_eq!(plan(&GenSpec::new("x", 253, 1, 0)).unwrap().sites[0].subnet, net("10.1.0.0/24"));
    assert_eq!(plan(&GenSpec::new("x", 254, 1, 0)).unwrap().sites[0].subnet, net("10.1.0.0/23"));
    let g = generate(&GenSpec::new("big", 300, 1, 0)).unwrap();
    let (_d, t) = load_generated(&g);
    assert_matches_plan(&t, &g.plan);
}

#[test]
fn one_site_and_three_sites() {
    for (nodes, sites, rrs) in [(1, 1, 0), (5, 1, 2), (100, 1, 0), (30, 3, 2), (31, 3, 1), (3, 3, 0)] {
        let g = generate(&GenSpec::new("t", nodes, sites, rrs)).unwrap();
        let p = &g.plan;
        assert_eq!(p.nodes.len(), nodes);
        let counts: Vec<usize> = (0..sites).map(|s| p.site_nodes(s).count()).collect();
        assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1, "{counts:?}");
        for s in 0..sites {
            assert_eq!(p.site_nodes(s).filter(|n| n.rr).count(), rrs, "site {s} of {nodes}/{sites}");
            assert!(p.site_nodes(s).all(|n| !(n.rr && n.control_plane)));
        }
        let (_d, t) = load_generated(&g);
        assert_matches_plan(&t, p);
    }
    // 31 over 3 sites: 11, 10, 10.
    let p = plan(&GenSpec::new("t", 31, 3, 1)).unwrap();
    assert_eq!((0..3).map(|s| p.site_nodes(s).count()).collect::<Vec<_>>(), [11, 10, 10]);
    assert_eq!(p.wan_mesh_sessions(), 11 * 10 + 11 * 10 + 10 * 10);
    assert_eq!(p.wan_rr_sessions(), 3);
}

#[test]
fn several_clusters_spread_over_the_sites() {
    let g = generate(&spec("multi", 41, 2, 1, 3)).unwrap();
    let p = &g.plan;
    let names: Vec<&str> = g.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["multi.clab.yml", "multi-c1.kind.yaml", "multi-c2.kind.yaml", "multi-c3.kind.yaml"]);
    // 41 over 3 clusters: 14, 14, 13; each cluster on both sites, the remainders rotated.
    let sizes: Vec<usize> = p.clusters.iter().map(|c| c.nodes.len()).collect();
    assert_eq!(sizes, [14, 14, 13]);
    let per: Vec<Vec<usize>> =
        (0..3).map(|c| (0..2).map(|s| p.site_nodes(s).filter(|n| n.cluster == c).count()).collect()).collect();
    assert_eq!(per, [[7, 7], [7, 7], [7, 6]]);
    let pods: Vec<Ipv4Net> = p.clusters.iter().map(|c| c.pod_subnet).collect();
    assert_eq!(pods, [net("172.16.0.0/16"), net("172.17.0.0/16"), net("172.18.0.0/16")]);
    let svcs: Vec<Ipv4Net> = p.clusters.iter().map(|c| c.service_subnet).collect();
    assert_eq!(svcs, [net("192.168.0.0/24"), net("192.168.1.0/24"), net("192.168.2.0/24")]);
    // One control plane per cluster, on site a; one RR per site and cluster.
    for c in 0..3 {
        let cp: Vec<&GenNode> = p.nodes.iter().filter(|n| n.cluster == c && n.control_plane).collect();
        assert_eq!(cp.len(), 1);
        assert_eq!((cp[0].site, cp[0].name.clone()), (0, format!("multi-c{}-control-plane", c + 1)));
        for s in 0..2 {
            assert_eq!(p.site_nodes(s).filter(|n| n.cluster == c && n.rr).count(), 1);
        }
    }
    // Site b's nodes of cluster 1 continue its numbering.
    let b1: Vec<&str> = p.site_nodes(1).filter(|n| n.cluster == 0).map(|n| n.name.as_str()).collect();
    assert_eq!(b1[0], "multi-c1-worker7");
    assert_eq!(p.wan_mesh_sessions(), 7 * 7 + 7 * 7 + 7 * 6);
    assert_eq!(p.wan_rr_sessions(), 3);
    let (_d, t) = load_generated(&g);
    assert_matches_plan(&t, p);
    // Addresses are unique over all clusters.
    let ips: std::collections::BTreeSet<Ipv4Addr> = p.nodes.iter().map(|n| n.ip).collect();
    assert_eq!(ips.len(), 41);
}

#[test]
fn spec_fields_reach_the_files() {
    let s = GenSpec {
        as_number: 63400,
        ipip_mode: "CrossSubnet".into(),
        pod_subnet: net("10.244.0.0/20"),
        ..GenSpec::new("opts", 6, 2, 1)
    };
    let g = generate(&s).unwrap();
    let (_d, t) = load_generated(&g);
    assert_matches_plan(&t, &g.plan);
    assert_eq!(t.clusters[0].as_number, 63400);
    assert_eq!(t.clusters[0].ipip_mode, "CrossSubnet");
    assert_eq!(t.clusters[0].pod_subnet, net("10.244.0.0/20"));
    assert!(g.files[0].1.starts_with(
        "# Generated by `rrlab gen --name opts --nodes 6 --sites 2 --rrs-per-site 1 --as-number 63400 --pod-subnet 10.244.0.0/20 --ipip-mode CrossSubnet`"
    ));
}

#[test]
fn same_spec_same_bytes() {
    for s in [GenSpec::new("scale40", 40, 2, 2), spec("m", 41, 3, 1, 2), GenSpec::new("one", 1, 1, 0)] {
        let a = generate(&s).unwrap();
        let b = generate(&s.clone()).unwrap();
        assert_eq!(a, b);
        // And through the file system: written twice, read back, the same bytes.
        let (d1, _) = load_generated(&a);
        let (d2, _) = load_generated(&b);
        for (name, _) in &a.files {
            assert_eq!(std::fs::read(d1.path().join(name)).unwrap(), std::fs::read(d2.path().join(name)).unwrap());
        }
    }
}

#[test]
fn impossible_specs_name_their_field() {
    let field = |s: GenSpec| generate(&s).unwrap_err().field;
    let msg = |s: GenSpec| generate(&s).unwrap_err().to_string();
    assert_eq!(field(GenSpec::new("x", 0, 1, 0)), "nodes");
    assert_eq!(msg(GenSpec::new("x", 0, 1, 0)), "field nodes: must be at least 1");
    assert_eq!(field(GenSpec::new("x", 4, 0, 0)), "sites");
    assert_eq!(field(GenSpec::new("x", 400, 251, 0)), "sites");
    assert!(msg(GenSpec::new("x", 400, 251, 0)).contains("at most 250"));
    assert!(generate(&GenSpec::new("x", 250, 250, 0)).is_ok());
    // More RRs than nodes in a site: site a's control plane never counts.
    assert_eq!(field(GenSpec::new("x", 4, 2, 2)), "rrs_per_site");
    assert!(
        msg(GenSpec::new("x", 4, 2, 2)).contains("site a has only 1 node(s) of cluster x"),
        "{}",
        msg(GenSpec::new("x", 4, 2, 2))
    );
    assert!(generate(&GenSpec::new("x", 5, 2, 2)).is_ok()); // site a: the control plane + 2, site b: 2
    assert!(generate(&GenSpec::new("x", 6, 2, 2)).is_ok());
    assert_eq!(field(GenSpec::new("x", 1, 1, 1)), "rrs_per_site");
    // Fewer nodes than sites, per cluster.
    assert_eq!(field(GenSpec::new("x", 2, 3, 0)), "nodes");
    assert_eq!(field(spec("x", 5, 3, 0, 2)), "nodes");
    assert_eq!(field(spec("x", 4, 1, 0, 0)), "clusters");
    for bad in ["", "Scale", "scale_40", "4scale", "scale-", "-s", "a.b", "wan", &"x".repeat(64)] {
        assert_eq!(field(GenSpec::new(bad, 4, 1, 0)), "name", "{bad:?}");
    }
    // The name must leave room for host interface names.
    assert!(generate(&GenSpec::new("abcdefghijk", 100, 2, 0)).is_ok()); // abcdefghijk-99 = 14
    let e = generate(&GenSpec::new("abcdefghijklm", 100, 2, 0)).unwrap_err();
    assert_eq!(e.field, "name");
    assert!(e.message.contains("\"abcdefghijklm-99\" would have 16 characters"), "{e}");
    assert_eq!(field(GenSpec { as_number: 0, ..GenSpec::new("x", 2, 1, 0) }), "as_number");
    assert_eq!(field(GenSpec { ipip_mode: "always".into(), ..GenSpec::new("x", 2, 1, 0) }), "ipip_mode");
    assert_eq!(field(GenSpec { pod_subnet: net("172.16.0.1/16"), ..GenSpec::new("x", 2, 1, 0) }), "pod_subnet");
    assert_eq!(field(GenSpec { pod_subnet: net("172.16.0.0/27"), ..GenSpec::new("x", 2, 1, 0) }), "pod_subnet");
    // 65 nodes need 65 /26 blocks; a /20 has 64.
    let e = generate(&GenSpec { pod_subnet: net("172.16.0.0/20"), ..GenSpec::new("x", 65, 1, 0) }).unwrap_err();
    assert_eq!(e.field, "pod_subnet");
    assert!(e.message.contains("holds 64 /26 blocks, fewer than its 65 nodes"), "{e}");
    // Pods inside a site's subnet, or the services.
    assert_eq!(field(GenSpec { pod_subnet: net("10.0.0.0/8"), ..GenSpec::new("x", 2, 1, 0) }), "pod_subnet");
    assert_eq!(field(GenSpec { pod_subnet: net("192.168.0.0/16"), ..GenSpec::new("x", 2, 1, 0) }), "pod_subnet");
    assert_eq!(field(spec("x", 4, 1, 0, 2).clone_with_pod("255.255.0.0/16")), "pod_subnet");
}

impl GenSpec {
    fn clone_with_pod(self, p: &str) -> GenSpec {
        GenSpec { pod_subnet: net(p), ..self }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The committed generated topologies are what the generator writes today.
#[test]
fn committed_generated_topologies_are_current() {
    for (name, nodes) in [("scale40", 40), ("scale200", 200)] {
        let g = generate(&GenSpec::new(name, nodes, 2, 2)).unwrap();
        for (file, text) in &g.files {
            let path = repo().join("topologies/generated").join(file);
            let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                committed == *text,
                "{} differs from the generator's output: run `rrlab gen --name {name} --nodes {nodes} --sites 2 --rrs-per-site 2 --out topologies/generated/`",
                path.display()
            );
        }
        let t = topology::load(&repo().join("topologies/generated").join(g.plan.clab_file())).unwrap();
        assert_matches_plan(&t, &g.plan);
    }
}

/// labs/scale: the 40- and 200-node runbooks load against their topologies, name no node in their steps
/// (node sets only), and differ only in what depends on the size: the lab's name, the topology, the probes'
/// nodes and the WAN's mesh session count.
#[test]
fn scale_runbooks_share_one_body() {
    let read = |n: &str| std::fs::read_to_string(repo().join("labs/scale").join(n)).unwrap();
    let (a, b) = (read("p1-scale40.yaml"), read("p1-scale200.yaml"));
    let steps = |s: &str, lab: &str, mesh: usize| -> String {
        let body = &s[s.find("\nsteps:").expect("a steps: section")..];
        assert!(!body.contains(&format!("{lab}-")), "{lab}: a node name in the steps");
        body.replace(&format!("bgp_sessions: {mesh}}}"), "bgp_sessions: MESH}")
    };
    let p40 = plan(&GenSpec::new("scale40", 40, 2, 2)).unwrap();
    let p200 = plan(&GenSpec::new("scale200", 200, 2, 2)).unwrap();
    assert!(a.contains(&format!("bgp_sessions: {}}}", p40.wan_mesh_sessions())));
    assert!(b.contains(&format!("bgp_sessions: {}}}", p200.wan_mesh_sessions())));
    assert_eq!(steps(&a, "scale40", p40.wan_mesh_sessions()), steps(&b, "scale200", p200.wan_mesh_sessions()));
    for n in ["p1-scale40.yaml", "p1-scale200.yaml"] {
        let rb = crate::runbook::load(&repo().join("labs/scale").join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert!(rb.steps.len() >= 5, "{n}");
    }
}

#[test]
fn every_site_of_every_cluster_has_its_reach_sample() {
    for spec in [GenSpec::new("s40", 40, 2, 2), GenSpec::new("s9", 9, 3, 1), GenSpec::new("s200", 200, 2, 2)] {
        let p = plan(&spec).unwrap();
        for (si, _) in p.sites.iter().enumerate() {
            for (ci, _) in p.clusters.iter().enumerate() {
                let clients = p.nodes.iter().filter(|n| n.site == si && n.cluster == ci && !n.rr).count();
                let sampled = (0..p.nodes.len())
                    .filter(|&i| p.nodes[i].site == si && p.nodes[i].cluster == ci && p.in_reach_sample(i))
                    .count();
                assert_eq!(sampled, clients.min(SAMPLE_PER_SITE), "{} site {si}", spec.name);
            }
        }
    }
}
