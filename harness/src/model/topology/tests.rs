use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::*;
use crate::model::yaml::{parse_documents, Value};

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn topologies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies")
}

fn load_file(name: &str) -> Topology {
    let path = topologies().join(name);
    match load(&path) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

// ----------------------------------------------------------------------------------------------------------
// The real topology files

#[test]
fn hybrid_rr() {
    let t = load_file("hybrid-rr.clab.yml");
    assert_eq!(t.name, "hybrid-rr");
    assert_eq!(t.clusters.len(), 1);
    let c = &t.clusters[0];
    assert_eq!(c.name, "hybrid");
    assert!(c.config_file.ends_with("hybrid-rr.kind.yaml"));
    assert_eq!(c.pod_subnet, net("172.16.0.0/16"));
    assert_eq!(c.service_subnet, Some(net("10.96.0.0/16")));
    assert_eq!((c.as_number, c.ipip_mode.as_str(), c.node_interface.as_str()), (64512, "Always", "eth1"));
    let names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "hybrid-control-plane",
            "hybrid-worker",
            "hybrid-worker2",
            "hybrid-worker3",
            "hybrid-worker4",
            "hybrid-worker5",
            "hybrid-worker6",
            "hybrid-worker7"
        ]
    );
    assert_eq!(c.nodes[0].role, Role::ControlPlane);
    assert!(c.nodes[1..].iter().all(|n| n.role == Role::Worker));
    let public: Vec<&str> = c
        .nodes
        .iter()
        .filter(|n| n.labels.get("cloud-type").map(String::as_str) == Some("public"))
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(public, ["hybrid-worker4", "hybrid-worker5", "hybrid-worker6", "hybrid-worker7"]);

    // Sites: partition A on site-a (10.0.1.0/24), partition B on site-b (10.0.2.0/24).
    let site_a = net("10.0.1.0/24");
    let site_b = net("10.0.2.0/24");
    for (i, n) in c.nodes.iter().enumerate() {
        let (site, subnet) = if i < 4 { ("site-a", site_a) } else { ("site-b", site_b) };
        assert_eq!(t.site_of(&n.name).as_deref(), Some(site), "{}", n.name);
        let nip = t.node_ip(&n.name).unwrap();
        assert_eq!(nip.trunc(), subnet, "{}", n.name);
        assert_eq!(t.cluster_of(&n.name).map(|c| c.name.as_str()), Some("hybrid"));
    }
    assert_eq!(t.node_ip("hybrid-control-plane"), Some(net("10.0.1.2/24")));
    assert_eq!(t.node_ip("hybrid-worker"), Some(net("10.0.1.3/24")));
    assert_eq!(t.node_ip("hybrid-worker3"), Some(net("10.0.1.5/24")));
    assert_eq!(t.node_ip("hybrid-worker4"), Some(net("10.0.2.2/24")));
    assert_eq!(t.node_ip("hybrid-worker7"), Some(net("10.0.2.5/24")));
    assert_eq!(t.node_ip("wan"), None);
    assert_eq!(t.site_of("wan"), None);

    // WAN: on both sites, forwarding.
    let addrs = t.addresses();
    assert_eq!(addrs["wan"], vec![("eth1".to_string(), net("10.0.1.1/24")), ("eth2".to_string(), net("10.0.2.1/24"))]);
    assert!(t.nodes["wan"].exec.iter().any(|e| e == "sysctl -w net.ipv4.ip_forward=1"));
    assert_eq!(t.nodes["wan"].kind, NodeKind::Linux);
    assert_eq!(t.container_name("wan"), "clab-hybrid-rr-wan");
    assert_eq!(t.container_name("hybrid-worker"), "hybrid-worker");

    // Routes: each site reaches the other through the WAN.
    let routes = t.routes();
    assert_eq!(routes["hybrid-worker2"], vec![(site_b, ip("10.0.1.1"), Some("eth1".to_string()))]);
    assert_eq!(routes["hybrid-worker6"], vec![(site_a, ip("10.0.2.1"), Some("eth1".to_string()))]);
    assert!(routes["wan"].is_empty());
    for n in &c.nodes {
        let (dst, via, _) = &routes[&n.name][0];
        let on_a = site_a.contains(&t.node_ip(&n.name).unwrap().addr());
        assert_eq!((*dst, *via), if on_a { (site_b, ip("10.0.1.1")) } else { (site_a, ip("10.0.2.1")) });
        // The gateway is the WAN's address on the node's own site.
        assert!(addrs["wan"].iter().any(|(_, a)| a.addr() == *via && a.contains(&t.node_ip(&n.name).unwrap().addr())));
    }

    let sites = t.sites();
    assert_eq!(sites.keys().collect::<Vec<_>>(), ["site-a", "site-b"]);
    assert_eq!(sites["site-a"].len(), 5);
    assert_eq!(sites["site-b"].len(), 5);
    assert!(sites["site-a"].contains(&"wan".to_string()) && sites["site-b"].contains(&"wan".to_string()));
    assert_eq!(t.nodes.len(), 8 + 1 + 2 + 1);
    assert_eq!(t.links.len(), 10);
}

#[test]
fn two_clusters() {
    let t = load_file("two-clusters.clab.yml");
    assert_eq!(t.name, "two-clusters");
    let pools: Vec<(&str, Ipv4Net)> = t.clusters.iter().map(|c| (c.name.as_str(), c.pod_subnet)).collect();
    assert_eq!(pools, [("cluster1", net("172.16.0.0/16")), ("cluster2", net("172.28.0.0/16"))]);
    for (c, site, wan_ip, remote) in
        [(&t.clusters[0], "site-1", "10.1.1.1", "10.2.0.0/16"), (&t.clusters[1], "site-2", "10.2.1.1", "10.1.0.0/16")]
    {
        assert_eq!(c.nodes.len(), 3);
        assert_eq!(c.nodes[0].name, format!("{}-control-plane", c.name));
        assert_eq!(c.nodes[1].name, format!("{}-worker", c.name));
        assert_eq!(c.nodes[2].name, format!("{}-worker2", c.name));
        assert_eq!(c.node_interface, "eth1");
        for n in &c.nodes {
            assert_eq!(t.site_of(&n.name).as_deref(), Some(site));
            let nip = t.node_ip(&n.name).unwrap();
            assert!(!c.pod_subnet.contains(&nip.addr()));
            assert_eq!(t.routes()[&n.name], vec![(net(remote), ip(wan_ip), Some("eth1".to_string()))]);
        }
    }
    assert_eq!(t.node_ip("cluster1-worker"), Some(net("10.1.1.3/24")));
    assert_eq!(t.node_ip("cluster2-worker"), Some(net("10.2.1.3/24")));
    // Node subnets are distinct and outside both pools.
    let a = t.node_ip("cluster1-control-plane").unwrap().trunc();
    let b = t.node_ip("cluster2-control-plane").unwrap().trunc();
    assert_ne!(a, b);
    assert_eq!(
        t.addresses()["wan"],
        vec![("eth1".to_string(), net("10.1.1.1/24")), ("eth2".to_string(), net("10.2.1.1/24"))]
    );
}

/// Both files, read as plain YAML, carry what containerlab itself requires, and their kind configs what kind
/// requires: independent of rrlab's own reader.
#[test]
fn files_are_valid_containerlab_and_kind() {
    const CLAB_KINDS: &[&str] = &["k8s-kind", "ext-container", "linux", "bridge"];
    for file in ["hybrid-rr.clab.yml", "two-clusters.clab.yml"] {
        let path = topologies().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let docs = parse_documents(&text).unwrap();
        assert_eq!(docs.len(), 1);
        let root = &docs[0].root;
        let Some(Value::Str(name)) = root.get("name").map(|n| &n.value) else { panic!("{file}: name") };
        assert!(valid_name(name, &[]), "{file}: name {name}");
        let topo = root.get("topology").unwrap();
        let Some(Value::Map(nodes)) = topo.get("nodes").map(|n| &n.value) else { panic!("{file}: topology.nodes") };
        assert!(!nodes.is_empty());
        let mut k8s = 0;
        for (n, _, v) in nodes {
            assert!(valid_name(n, &['|']), "{file}: node name {n}");
            let kind = v.get("kind").and_then(|k| k.scalar_text()).unwrap_or_else(|| panic!("{file}: {n} has no kind"));
            assert!(CLAB_KINDS.contains(&kind.as_str()), "{file}: {n}: {kind}");
            if kind == "linux" {
                assert!(v.get("image").is_some(), "{file}: linux node {n} needs an image");
            }
            if kind == "k8s-kind" {
                k8s += 1;
                let sc = v.get("startup-config").and_then(|s| s.scalar_text()).unwrap();
                let kind_text = std::fs::read_to_string(topologies().join(&sc)).unwrap();
                let kdoc = &parse_documents(&kind_text).unwrap()[0].root;
                assert_eq!(kdoc.get("kind").unwrap().value, Value::Str("Cluster".into()));
                assert_eq!(kdoc.get("apiVersion").unwrap().value, Value::Str("kind.x-k8s.io/v1alpha4".into()));
                let netw = kdoc.get("networking").unwrap();
                assert_eq!(netw.get("disableDefaultCNI").unwrap().value, Value::Bool(true));
                assert!(kdoc.get("name").is_none(), "containerlab names the cluster after the node");
            }
        }
        assert!(k8s >= 1);
        let Some(Value::Seq(links)) = topo.get("links").map(|n| &n.value) else { panic!("{file}: links") };
        for l in links {
            let Some(Value::Seq(eps)) = l.get("endpoints").map(|e| &e.value) else { panic!("{file}: endpoints") };
            assert_eq!(eps.len(), 2);
            for e in eps {
                let s = e.scalar_text().unwrap();
                let (n, i) = s.split_once(':').unwrap();
                assert!(nodes.iter().any(|(x, _, _)| x == n), "{file}: {s}");
                assert!(valid_iface(i), "{file}: {s}");
            }
        }
    }
    // Bridge-side interface names share the host's namespace: unique across both labs.
    let a = load_file("hybrid-rr.clab.yml");
    let b = load_file("two-clusters.clab.yml");
    let mut host = BTreeMap::new();
    for t in [&a, &b] {
        for l in &t.links {
            for ep in [&l.a, &l.b] {
                if t.nodes[&ep.node].kind == NodeKind::Bridge {
                    assert!(host.insert(ep.iface.clone(), ()).is_none(), "{}", ep.iface);
                }
            }
        }
        // So are bridge names.
        for n in t.nodes.values().filter(|n| n.kind == NodeKind::Bridge) {
            assert!(host.insert(n.name.clone(), ()).is_none(), "{}", n.name);
        }
    }
}

// ----------------------------------------------------------------------------------------------------------
// Errors

const BASE: &str = r#"name: t
topology:
  nodes:
    c1:
      kind: k8s-kind
      startup-config: c1.kind.yaml
    s1:
      kind: bridge
    c1-control-plane:
      kind: ext-container
      exec:
        - ip addr add 10.0.1.2/24 dev eth1
    c1-worker:
      kind: ext-container
      exec:
        - ip addr add 10.0.1.3/24 dev eth1
    wan:
      kind: linux
      image: alpine
      exec:
        - ip addr add 10.0.1.1/24 dev eth1
  links:
    - endpoints: ["c1-control-plane:eth1", "s1:s1-cp"]
    - endpoints: ["c1-worker:eth1", "s1:s1-w"]
    - endpoints: ["wan:eth1", "s1:s1-wan"]
"#;

const KIND1: &str = "kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  disableDefaultCNI: true
  podSubnet: 172.16.0.0/16
nodes:
  - role: control-plane
  - role: worker
";

const FILE: &str = "/lab/t.clab.yml";

fn files(extra: &[(&str, &str)]) -> BTreeMap<PathBuf, String> {
    let mut m = BTreeMap::new();
    m.insert(PathBuf::from("/lab/c1.kind.yaml"), KIND1.to_string());
    for (p, t) in extra {
        m.insert(PathBuf::from(p), t.to_string());
    }
    m
}

fn parse_with(text: &str, files: &BTreeMap<PathBuf, String>) -> Result<Topology, TopologyError> {
    let read = |p: &Path| files.get(p).cloned().ok_or_else(|| "No such file or directory".to_string());
    parse(Path::new(FILE), text, &read)
}

fn err_with(text: &str, files: &BTreeMap<PathBuf, String>) -> TopologyError {
    match parse_with(text, files) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

fn err(text: &str) -> TopologyError {
    err_with(text, &files(&[]))
}

/// Replace exactly one occurrence.
fn edit(from: &str, to: &str) -> String {
    assert_eq!(BASE.matches(from).count(), 1, "{from}");
    BASE.replace(from, to)
}

fn assert_err(e: &TopologyError, file: &str, line: usize, needle: &str) {
    assert_eq!((e.file.as_str(), e.line), (file, line), "{e}");
    assert!(e.to_string().contains(needle), "{e}\n  does not contain: {needle}");
}

#[test]
fn base_is_valid() {
    let t = parse_with(BASE, &files(&[])).unwrap();
    assert_eq!(t.clusters[0].nodes.len(), 2);
    assert_eq!(t.node_ip("c1-worker"), Some(net("10.0.1.3/24")));
    assert_eq!(t.site_of("c1-worker").as_deref(), Some("s1"));
    assert_eq!(t.site_of("wan").as_deref(), Some("s1"));
    assert_eq!(t.nodes["c1"].startup_config.as_deref(), Some(Path::new("/lab/c1.kind.yaml")));
    assert_eq!(t.nodes["wan"].line, 17);
    assert_eq!(t.links[2].line, 25);
    // Defaults: AS 64512, IPIP Always, eth1.
    assert_eq!((t.clusters[0].as_number, t.clusters[0].ipip_mode.as_str()), (64512, "Always"));
}

#[test]
fn display_format() {
    let e = err(&edit("      image: alpine\n", "      image: alpine\n      colour: red\n"));
    assert_eq!(e.to_string(), "/lab/t.clab.yml:20:7: field topology.nodes.wan.colour: unknown field \"colour\"");
    assert_eq!((e.line, e.column, e.field.as_deref()), (20, 7, Some("topology.nodes.wan.colour")));
}

#[test]
fn malformed_yaml() {
    let e = err(&edit("    s1:\n      kind: bridge\n", "    s1:\n      kind: [bridge\n"));
    assert_eq!(e.file, FILE);
    assert!(e.line >= 8, "{e}");
    let e = err("name: t\nname: u\n");
    assert_err(&e, FILE, 2, "duplicate key");
}

#[test]
fn unknown_top_level_and_node_fields() {
    let e = err(&format!("{BASE}extra: 1\n"));
    assert_err(&e, FILE, 26, "unknown field \"extra\"");
    let e = err(&BASE.replace("  links:\n", "  linkz: []\n  links:\n"));
    assert_err(&e, FILE, 22, "field topology.linkz: unknown field");
    // Real containerlab node fields are accepted.
    let ok = edit(
        "      image: alpine\n",
        "      image: alpine\n      binds: [a:/b]\n      mgmt-ipv4: 172.20.20.9\n      cmd: sleep 1\n      group: g\n",
    );
    let ok = ok.replace("topology:\n", "topology:\n  groups:\n    g: {}\n");
    parse_with(&ok, &files(&[])).unwrap();
    let e = err(&BASE.replace("name: t\n", ""));
    assert!(e.to_string().contains("field name: is required"), "{e}");
}

#[test]
fn unknown_kind() {
    let e = err(&edit("      kind: bridge\n", "      kind: nokia_srlinux\n"));
    assert_err(&e, FILE, 8, "field topology.nodes.s1.kind: unknown kind \"nokia_srlinux\"");
    let e = err(&edit("    s1:\n      kind: bridge\n", "    s1:\n      image: x\n"));
    assert_err(&e, FILE, 7, "has no kind");
}

#[test]
fn link_to_unknown_node_or_malformed_endpoint() {
    let e = err(&edit("\"wan:eth1\", \"s1:s1-wan\"", "\"wan:eth1\", \"s2:s1-wan\""));
    assert_err(&e, FILE, 25, "field topology.links[2].endpoints[1]: unknown node \"s2\"");
    let e = err(&edit("\"wan:eth1\", \"s1:s1-wan\"", "\"wan-eth1\", \"s1:s1-wan\""));
    assert_err(&e, FILE, 25, "malformed endpoint \"wan-eth1\": expected \"node:interface\"");
    let e = err(&edit("\"wan:eth1\", \"s1:s1-wan\"", "\"wan:eth1\", \"s1:a-very-long-interface\""));
    assert_err(&e, FILE, 25, "not a Linux interface name");
    let e = err(&edit("\"wan:eth1\", \"s1:s1-wan\"", "\"wan:eth1\", \"c1:eth1\""));
    assert_err(&e, FILE, 25, "is a k8s-kind node");
}

#[test]
fn interface_used_twice() {
    let e = err(&edit("\"wan:eth1\", \"s1:s1-wan\"", "\"c1-worker:eth1\", \"s1:s1-wan\""));
    assert_err(&e, FILE, 25, "interface c1-worker:eth1 is already used by the link at line 24");
    let e = err(&edit("\"wan:eth1\", \"s1:s1-wan\"", "\"wan:eth1\", \"s1:s1-w\""));
    assert_err(&e, FILE, 25, "interface s1:s1-w is already used by the link at line 24");
    // Bridge ports live in the host namespace: unique across bridges too.
    let two = edit("    s1:\n      kind: bridge\n", "    s1:\n      kind: bridge\n    s2:\n      kind: bridge\n")
        .replace("\"wan:eth1\", \"s1:s1-wan\"", "\"wan:eth1\", \"s2:s1-w\"");
    let e = err(&two);
    assert_err(&e, FILE, 27, "host interface s1-w is already used by the link at line 26");
}

#[test]
fn ext_container_outside_any_cluster() {
    let e = err(&edit("    wan:\n", "    c1-worker9:\n      kind: ext-container\n    wan:\n"));
    assert_err(&e, FILE, 17, "ext-container c1-worker9 is not a node of any kind cluster");
    assert!(e.message.contains("c1: c1-control-plane, c1-worker"), "{e}");
}

#[test]
fn cluster_node_without_ext_container() {
    let kind = KIND1.to_string() + "  - role: worker\n";
    let e = err_with(BASE, &files(&[("/lab/c1.kind.yaml", &kind)]));
    assert_err(&e, "/lab/c1.kind.yaml", 9, "kind creates node container c1-worker2");
    assert!(e.message.contains("has no ext-container node c1-worker2"), "{e}");
    // A node container that is not an ext-container.
    let e = err(&edit(
        "    c1-worker:\n      kind: ext-container\n",
        "    c1-worker:\n      kind: linux\n      image: x\n",
    ));
    assert_err(&e, FILE, 13, "its kind must be ext-container");
}

#[test]
fn startup_config_missing_or_invalid() {
    let e = err(&edit("      startup-config: c1.kind.yaml\n", ""));
    assert_err(&e, FILE, 4, "a k8s-kind node needs startup-config");
    let e = err(&edit("c1.kind.yaml", "nope.yaml"));
    assert_err(&e, FILE, 6, "cannot read kind config /lab/nope.yaml: No such file");
    let bad = |k: &str| err_with(BASE, &files(&[("/lab/c1.kind.yaml", k)]));
    let e = bad(&KIND1.replace("disableDefaultCNI: true", "disableDefaultCNI: false"));
    assert_err(
        &e,
        "/lab/c1.kind.yaml",
        4,
        "field networking.disableDefaultCNI: must be true: otherwise kind installs kindnet",
    );
    // Absent: reported at the `networking:` key.
    let e = bad(&KIND1.replace("  disableDefaultCNI: true\n", ""));
    assert_err(&e, "/lab/c1.kind.yaml", 3, "must be true");
    let e = bad(&KIND1.replace("kind: Cluster", "kind: Clusterr"));
    assert_err(&e, "/lab/c1.kind.yaml", 1, "field kind: \"Clusterr\": a kind config's kind is Cluster");
    let e = bad(&KIND1.replace("v1alpha4", "v1alpha3"));
    assert_err(&e, "/lab/c1.kind.yaml", 2, "kind.x-k8s.io/v1alpha4");
    let e = bad(&KIND1.replace("  podSubnet: 172.16.0.0/16\n", ""));
    assert_err(&e, "/lab/c1.kind.yaml", 3, "field networking.podSubnet: is required");
    let e = bad(&KIND1.replace("172.16.0.0/16", "172.16.0.1/16"));
    assert_err(&e, "/lab/c1.kind.yaml", 5, "did you mean 172.16.0.0/16");
    let e = bad(&KIND1.replace("role: worker", "role: master"));
    assert_err(&e, "/lab/c1.kind.yaml", 8, "control-plane or worker");
    let e = bad(&(KIND1.to_string() + "name: other\n"));
    assert_err(&e, "/lab/c1.kind.yaml", 9, "containerlab creates this cluster as \"c1\"");
    let e = bad(&KIND1.replace("nodes:", "nodez:"));
    assert_err(&e, "/lab/c1.kind.yaml", 6, "unknown field \"nodez\"");
    let e = bad("kind: Cluster\n  bad: [\n");
    assert_eq!(e.file, "/lab/c1.kind.yaml");
}

#[test]
fn embedded_startup_config() {
    let embedded = KIND1.lines().map(|l| format!("        {l}\n")).collect::<String>();
    let t = edit("      startup-config: c1.kind.yaml\n", &format!("      startup-config: |\n{embedded}"));
    let topo = parse_with(&t, &BTreeMap::new()).unwrap();
    assert_eq!(topo.clusters[0].pod_subnet, net("172.16.0.0/16"));
    assert_eq!(topo.clusters[0].config_file, PathBuf::from(FILE));
}

#[test]
fn overlapping_pod_subnets() {
    let two = BASE
        .replace("    s1:\n", "    c2:\n      kind: k8s-kind\n      startup-config: c2.kind.yaml\n    s1:\n")
        .replace(
            "    wan:\n",
            "    c2-control-plane:\n      kind: ext-container\n      exec:\n        - ip addr add 10.0.1.9/24 dev eth1\n    wan:\n",
        )
        .replace("  links:\n", "  links:\n    - endpoints: [\"c2-control-plane:eth1\", \"s1:s1-c2\"]\n");
    let c2 = KIND1.replace("172.16.0.0/16", "172.16.128.0/17").replace("  - role: worker\n", "");
    let e = err_with(&two, &files(&[("/lab/c2.kind.yaml", &c2)]));
    assert_err(
        &e,
        "/lab/c2.kind.yaml",
        5,
        "pod subnet 172.16.128.0/17 of cluster c2 overlaps pod subnet 172.16.0.0/16 of cluster c1",
    );
    let c2 = c2.replace("172.16.128.0/17", "172.28.0.0/16");
    let t = parse_with(&two, &files(&[("/lab/c2.kind.yaml", &c2)])).unwrap();
    assert_eq!(t.clusters.len(), 2);
    assert_eq!(t.cluster_of("c2-control-plane").unwrap().pod_subnet, net("172.28.0.0/16"));
}

#[test]
fn unparsable_exec_address() {
    let e = err(&edit("ip addr add 10.0.1.3/24 dev eth1", "ip addr add 10.0.1.300/24 dev eth1"));
    assert_err(
        &e,
        FILE,
        16,
        "field topology.nodes.c1-worker.exec[0]: \"ip addr add 10.0.1.300/24 dev eth1\": cannot parse",
    );
    let e = err(&edit("ip addr add 10.0.1.3/24 dev eth1", "ip addr add 10.0.1.3/24"));
    assert_err(&e, FILE, 16, "needs `dev <interface>`");
    let e = err(&edit("ip addr add 10.0.1.3/24 dev eth1", "ip addr add 10.0.1.3/24 dev eth3"));
    assert_err(&e, FILE, 16, "interface eth3 does not exist on this node");
    let e = err(&edit("ip addr add 10.0.1.3/24 dev eth1", "echo 'unterminated"));
    assert_err(&e, FILE, 16, "unterminated");
}

#[test]
fn duplicate_ips() {
    let e = err(&edit("ip addr add 10.0.1.3/24 dev eth1", "ip addr add 10.0.1.2/24 dev eth1"));
    assert_err(&e, FILE, 16, "duplicate IP 10.0.1.2: c1-worker eth1 and c1-control-plane eth1 both have it");
}

#[test]
fn routes_need_a_reachable_gateway() {
    let e = err(&edit(
        "        - ip addr add 10.0.1.3/24 dev eth1\n",
        "        - ip route add 10.0.2.0/24 via 10.0.1.1 dev eth1\n        - ip addr add 10.0.1.3/24 dev eth1\n",
    ));
    assert_err(&e, FILE, 16, "gateway 10.0.1.1 is not on eth1's subnets");
    let ok = edit(
        "        - ip addr add 10.0.1.3/24 dev eth1\n",
        "        - ip addr add 10.0.1.3/24 dev eth1\n        - ip route add 10.0.2.0/24 via 10.0.1.1 dev eth1\n",
    );
    let t = parse_with(&ok, &files(&[])).unwrap();
    assert_eq!(t.routes()["c1-worker"], vec![(net("10.0.2.0/24"), ip("10.0.1.1"), Some("eth1".into()))]);
}

#[test]
fn calico_interface_must_have_an_address() {
    let e = err(&edit(
        "    c1:\n      kind: k8s-kind\n",
        "    c1:\n      kind: k8s-kind\n      labels:\n        rrlab.io/calico-node-interface: eth2\n",
    ));
    assert_err(&e, FILE, 11, "calico-node on c1-control-plane autodetects its IP on eth2");
}

#[test]
fn rrlab_labels() {
    let with = |l: &str| {
        edit("    c1:\n      kind: k8s-kind\n", &format!("    c1:\n      kind: k8s-kind\n      labels:\n        {l}\n"))
    };
    let t = parse_with(&with("rrlab.io/calico-as: \"63400\""), &files(&[])).unwrap();
    assert_eq!(t.clusters[0].as_number, 63400);
    let e = err(&with("rrlab.io/calico-as: sixty"));
    assert_err(&e, FILE, 7, "is not an AS number");
    let e = err(&with("rrlab.io/ipip-mode: always"));
    assert_err(&e, FILE, 7, "Always, CrossSubnet or Never");
    let e = err(&with("rrlab.io/calico-asn: \"1\""));
    assert_err(&e, FILE, 7, "unknown rrlab label \"rrlab.io/calico-asn\"");
    let e =
        err(&edit("      image: alpine\n", "      image: alpine\n      labels:\n        rrlab.io/calico-as: \"1\"\n"));
    assert_err(&e, FILE, 21, "belong on its k8s-kind node");
    // Other labels are containerlab's business.
    parse_with(&with("team: net"), &files(&[])).unwrap();
}

#[test]
fn addresses_stay_out_of_pod_and_service_subnets() {
    let e = err(&edit("ip addr add 10.0.1.1/24 dev eth1", "ip addr add 172.16.5.1/24 dev eth1"));
    assert_err(&e, FILE, 21, "172.16.5.1 on eth1 lies in pod subnet 172.16.0.0/16 of cluster c1");
}

#[test]
fn exec_on_a_bridge_and_defaults() {
    let e = err(&edit(
        "    s1:\n      kind: bridge\n",
        "    s1:\n      kind: bridge\n      exec: [\"ip link set s1 up\"]\n",
    ));
    assert_err(&e, FILE, 9, "containerlab runs no exec on a bridge node");
    // kinds/defaults are applied as containerlab applies them.
    let t = BASE
        .replace("      image: alpine\n", "")
        .replace("topology:\n", "topology:\n  kinds:\n    linux:\n      image: debian\n      labels: {site: x}\n");
    let topo = parse_with(&t, &files(&[])).unwrap();
    assert_eq!(topo.nodes["wan"].image.as_deref(), Some("debian"));
    assert_eq!(topo.nodes["wan"].labels.get("site").map(String::as_str), Some("x"));
    let e = err(&BASE.replace("      image: alpine\n", ""));
    assert_err(&e, FILE, 17, "a linux node needs an image");
}

#[test]
fn link_ipv4_is_an_address() {
    let t = edit("      exec:\n        - ip addr add 10.0.1.1/24 dev eth1\n", "").replace(
        "- endpoints: [\"wan:eth1\", \"s1:s1-wan\"]",
        "- endpoints: [\"wan:eth1\", \"s1:s1-wan\"]\n      ipv4: [10.0.1.1/24]",
    );
    let topo = parse_with(&t, &files(&[])).unwrap();
    assert_eq!(topo.addresses()["wan"], vec![("eth1".to_string(), net("10.0.1.1/24"))]);
    assert_eq!(topo.links[2].a_ipv4, Some(net("10.0.1.1/24")));
    let e = err(&edit(
        "- endpoints: [\"wan:eth1\", \"s1:s1-wan\"]",
        "- endpoints: [\"wan:eth1\", \"s1:s1-wan\"]\n      ipv4: [\"\", 10.0.1.1/24]",
    ));
    assert_err(&e, FILE, 25, "a bridge endpoint takes no address");
    let e = err(&edit(
        "- endpoints: [\"wan:eth1\", \"s1:s1-wan\"]",
        "- type: host\n      endpoints: [\"wan:eth1\", \"s1:s1-wan\"]",
    ));
    assert_err(&e, FILE, 25, "link type \"host\" is not supported");
}

#[test]
fn unreadable_topology_file() {
    let e = load(Path::new("/nonexistent/rrlab/t.clab.yml")).unwrap_err();
    assert_eq!((e.line, e.file.as_str()), (0, "/nonexistent/rrlab/t.clab.yml"));
    assert!(e.to_string().starts_with("/nonexistent/rrlab/t.clab.yml: cannot read"), "{e}");
}

#[test]
fn impairments_declared_on_the_wans_links() {
    let with = |node_line: &str, l: &str| edit(node_line, &format!("{node_line}      labels:\n        {l}\n"));
    let wan = "      image: alpine\n";
    let t =
        parse_with(&with(wan, "rrlab.io/impair.eth1: \"delay: 20ms, jitter: 2ms, loss: 1%\""), &files(&[])).unwrap();
    let imp = &t.impairments["eth1"];
    assert_eq!((imp.delay.as_millis(), imp.jitter.as_millis()), (20, 2));
    assert_eq!(imp.loss, crate::impair::Loss::Random { percent: 1.0 });
    assert!(parse_with(BASE, &files(&[])).unwrap().impairments.is_empty());
    // Each error names the label, its line and what is wrong.
    let e = err(&with(wan, "rrlab.io/impair.eth9: \"delay: 20ms\""));
    assert_err(&e, FILE, 21, "wan has no link on \"eth9\" (its links: eth1)");
    assert!(e.to_string().contains("field topology.nodes.wan.labels.rrlab.io/impair.eth9"), "{e}");
    let e = err(&with(wan, "rrlab.io/impair.eth1: \"delay: soon\""));
    assert_err(&e, FILE, 21, "soon");
    let e = err(&with("      startup-config: c1.kind.yaml\n", "rrlab.io/impair.eth1: \"delay: 20ms\""));
    assert_err(&e, FILE, 8, "impairments belong on the WAN's links: label the linux node");
}

// ----------------------------------------------------------------------------------------------------------
// rrlab.io/node-names and rrlab.io/calico-state (imported clusters)

/// BASE with its two node containers named `a1` (control plane) and `a2`.
fn named(names: &str, extra_label: &str) -> String {
    BASE.replace(
        "      startup-config: c1.kind.yaml\n",
        &format!("      startup-config: c1.kind.yaml\n      labels:\n        rrlab.io/node-names: \"{names}\"\n{extra_label}"),
    )
    .replace("c1-control-plane", "a1")
    .replace("c1-worker", "a2")
}

#[test]
fn node_names_label_names_the_containers_in_kinds_order() {
    let t = parse_with(&named("a1, a2", ""), &files(&[])).unwrap();
    let c = &t.clusters[0];
    assert!(c.named_nodes);
    assert_eq!(
        c.nodes.iter().map(|n| (n.name.as_str(), n.role)).collect::<Vec<_>>(),
        [("a1", Role::ControlPlane), ("a2", Role::Worker)]
    );
    assert_eq!(t.node_ip("a2"), Some(net("10.0.1.3/24")));
    assert_eq!(t.cluster_of("a1").map(|c| c.name.as_str()), Some("c1"));
    // Without the label, kind's names.
    assert!(!parse_with(BASE, &files(&[])).unwrap().clusters[0].named_nodes);
}

#[test]
fn node_names_label_errors_name_the_label() {
    let e = err(&named("a1", ""));
    assert_err(&e, FILE, 8, "1 names for the 2 nodes of /lab/c1.kind.yaml");
    assert!(e.to_string().contains("topology.nodes.c1.labels.rrlab.io/node-names"), "{e}");
    let e = err(&named("a1,a1", ""));
    assert_err(&e, FILE, 8, "\"a1\" is named twice");
    let e = err(&named("a1,A_2", ""));
    assert_err(&e, FILE, 8, "\"A_2\": node names are lower-case");
    // The names must match the ext-container nodes.
    let e = err(&named("a1,a3", ""));
    assert!(e.to_string().contains("a3"), "{e}");
}

const STATE: &str = "apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: prod-pool
spec:
  cidr: 172.16.0.0/16
  ipipMode: CrossSubnet
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  asNumber: 65010
  nodeToNodeMeshEnabled: true
";

#[test]
fn calico_state_label_is_read_and_checked_at_load() {
    let label = "        rrlab.io/calico-state: c1.calico.yaml\n";
    let t = parse_with(&named("a1,a2", label), &files(&[("/lab/c1.calico.yaml", STATE)])).unwrap();
    let st = t.clusters[0].calico_state.as_ref().unwrap();
    assert_eq!(st.file, PathBuf::from("/lab/c1.calico.yaml"));
    assert!(st.text.contains("prod-pool"));
    // Missing file: the label's line.
    let e = err(&named("a1,a2", label));
    assert_err(&e, FILE, 9, "cannot read /lab/c1.calico.yaml");
    // A bad resource: the state file's own line and field.
    let bad = STATE.replace("asNumber: 65010", "asNumber: sixty");
    let e = err_with(&named("a1,a2", label), &files(&[("/lab/c1.calico.yaml", &bad)]));
    assert_eq!(e.file, "/lab/c1.calico.yaml", "{e}");
    assert_eq!(e.line, 14, "{e}");
    assert!(e.to_string().contains("asNumber"), "{e}");
}
