//! `rrlab import` on the twin's own output, on real outputs published in Calico's issues and docs
//! (testdata/README.md has their sources), on synthetic inputs for what those lack, and on bad input.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::*;
use crate::model::topology;
use crate::twin::apply::apply_text;
use crate::twin::datastore::{Datastore, WriteMode, ANN_ASN, ANN_IPV4, ANN_RR_CLUSTER_ID};

macro_rules! td {
    ($p:literal) => {
        ($p.to_string(), include_str!(concat!("testdata/", $p)).to_string())
    };
}

fn hybrid_capture() -> Vec<(String, String)> {
    vec![
        td!("synthetic-hybrid-p1/kubectl-get-nodes.yaml"),
        td!("synthetic-hybrid-p1/calicoctl-get-nodes.yaml"),
        td!("synthetic-hybrid-p1/calicoctl-get-ippools.yaml"),
        td!("synthetic-hybrid-p1/calicoctl-get-bgpconfigurations.yaml"),
        td!("synthetic-hybrid-p1/calicoctl-get-bgppeers.yaml"),
        td!("synthetic-hybrid-p1/calicoctl-get-felixconfigurations.yaml"),
    ]
}

fn opts(name: &str) -> ImportOptions {
    ImportOptions { name: name.into(), seed: Some(7), ..Default::default() }
}

fn run(inputs: &[(String, String)], name: &str) -> Imported {
    import(inputs, &opts(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// The Calico state applied to an empty datastore, as the twin applies it at `up` (all or nothing).
fn applied(imp: &Imported) -> Datastore {
    let mut ds = Datastore::new();
    let text = imp.file(&imp.calico_file()).expect("calico state");
    apply_text(&mut ds, &imp.calico_file(), text, WriteMode::Apply).unwrap_or_else(|e| panic!("{e}\n{text}"));
    ds
}

/// The topology as rrlab reads it, its kind config read from the import's own files.
fn parsed(imp: &Imported) -> Result<topology::Topology, topology::TopologyError> {
    let files: BTreeMap<String, String> = imp.files.iter().cloned().collect();
    let read = move |p: &Path| {
        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        files.get(&n).cloned().ok_or_else(|| format!("no file {n}"))
    };
    topology::parse(&Path::new("/imported").join(imp.clab_file()), imp.file(&imp.clab_file()).unwrap(), &read)
}

fn all_text(imp: &Imported) -> String {
    imp.files.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join("\n")
}

#[test]
fn twin_capture_becomes_hybrid_rr_again() {
    let imp = run(&hybrid_capture(), "hybrid");
    assert_eq!(
        imp.files.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["hybrid.clab.yml", "hybrid.kind.yaml", "hybrid.calico.yaml", "hybrid.import.md"]
    );
    let clab = imp.file("hybrid.clab.yml").unwrap();
    // The cluster node and its labels.
    assert!(clab.contains("    hybrid:\n      kind: k8s-kind\n      startup-config: hybrid.kind.yaml\n"), "{clab}");
    assert!(clab.contains("        rrlab.io/calico-as: \"64512\"\n        rrlab.io/ipip-mode: Always\n        rrlab.io/calico-node-interface: eth1\n"));
    assert!(clab.contains("        rrlab.io/node-names: \"hybrid-control-plane,hybrid-worker,hybrid-worker2,hybrid-worker3,hybrid-worker4,hybrid-worker5,hybrid-worker6,hybrid-worker7\"\n"), "{clab}");
    assert!(clab.contains("        rrlab.io/calico-state: hybrid.calico.yaml\n"));
    // Sites from the node subnets, the real addresses, the WAN on .1 of each.
    assert!(clab.contains("    site-1:\n      kind: bridge\n    hybrid-control-plane:\n      kind: ext-container\n      exec:\n        - ip addr add 10.0.1.2/24 dev eth1\n        - ip route add 10.0.2.0/24 via 10.0.1.1 dev eth1\n"), "{clab}");
    assert!(clab.contains("    hybrid-worker7:\n      kind: ext-container\n      exec:\n        - ip addr add 10.0.2.5/24 dev eth1\n        - ip route add 10.0.1.0/24 via 10.0.2.1 dev eth1\n"));
    assert!(clab.contains("    wan:\n      kind: linux\n      image: ghcr.io/srl-labs/network-multitool\n      exec:\n        - ip addr add 10.0.1.1/24 dev eth1\n        - ip addr add 10.0.2.1/24 dev eth2\n        - sysctl -w net.ipv4.ip_forward=1\n"));
    assert!(clab.contains("    - endpoints: [\"hybrid-worker4:eth1\", \"site-2:s2n1\"]\n"), "{clab}");
    assert!(clab.contains("    - endpoints: [\"wan:eth2\", \"site-2:s2w\"]\n"));
    // The kind config: roles, the kubelet's labels left out, the others kept, the real names as comments.
    let kind = imp.file("hybrid.kind.yaml").unwrap();
    assert!(kind.contains("  disableDefaultCNI: true\n"));
    assert!(kind.contains("  podSubnet: 172.16.0.0/16\n  serviceSubnet: 10.96.0.0/12\n"), "{kind}");
    assert!(kind.contains("  - role: control-plane  # hybrid-control-plane 10.0.1.2\n  - role: worker         # hybrid-worker 10.0.1.3\n    labels:\n      rr-partition: A\n"), "{kind}");
    assert!(
        kind.contains("  - role: worker         # hybrid-worker7 10.0.2.5\n    labels:\n      cloud-type: public\n")
    );
    assert!(!kind.contains("kubernetes.io/hostname"));
    // The Calico state applies cleanly and holds the cluster's state.
    let ds = applied(&imp);
    assert_eq!(ds.nodes.len(), 8);
    let w = &ds.nodes["hybrid-worker"];
    assert_eq!(w.annotations.get(ANN_IPV4).map(String::as_str), Some("10.0.1.3/24"));
    assert_eq!(w.annotations.get(ANN_RR_CLUSTER_ID).map(String::as_str), Some("244.0.0.1"));
    assert_eq!(w.labels.get("kubernetes.io/hostname").map(String::as_str), Some("hybrid-worker"));
    assert_eq!(ds.nodes["hybrid-worker6"].labels.get("cloud-type").map(String::as_str), Some("public"));
    assert_eq!(ds.ip_pools["default-ipv4-ippool"].spec.cidr.to_string(), "172.16.0.0/16");
    assert_eq!(ds.bgp_peers.len(), 3);
    assert_eq!(ds.default_bgp_configuration().and_then(|c| c.spec.node_to_node_mesh_enabled), Some(false));
    // rr-full-mesh refers to bgp-secrets, which the capture does not hold: generated, and said so.
    let pw = ds.secret_value("bgp-secrets", "rr-password").expect("a generated secret");
    assert_eq!(pw.len(), 32);
    assert!(
        imp.notes.replaced.iter().any(|n| n.contains("kube-system/bgp-secrets") && n.contains("was not in the input")),
        "{:?}",
        imp.notes
    );
    // The notes say what was derived.
    let md = imp.file("hybrid.import.md").unwrap();
    assert!(md.contains("site-1 = 10.0.1.0/24, site-2 = 10.0.2.0/24"), "{md}");
    assert!(md.contains("the WAN (wan, a forwarding linux node between the sites) takes 10.0.1.1 on site-1 (eth1), 10.0.2.1 on site-2 (eth2)"));
    assert!(md.contains(
        "8 node(s) under their real names, addresses kept: 1 control plane(s) (hybrid-control-plane), 7 worker(s)"
    ));
}

#[test]
fn imported_topology_round_trips_through_the_topology_reader() {
    let imp = run(&hybrid_capture(), "hybrid");
    let topo = parsed(&imp).unwrap_or_else(|e| panic!("{e}\n{}", imp.file("hybrid.clab.yml").unwrap()));
    let c = topo.cluster("hybrid").expect("the cluster");
    let names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names[0], "hybrid-control-plane");
    assert_eq!(names.len(), 8);
    assert_eq!(c.pod_subnet.to_string(), "172.16.0.0/16");
    assert_eq!(topo.node_ip("hybrid-worker5").map(|a| a.to_string()).as_deref(), Some("10.0.2.3/24"));
    assert_eq!(topo.site_of("hybrid-worker5").as_deref(), Some("site-2"));
}

#[test]
fn real_calicoctl_node_from_calico_issue_5705() {
    let imp = run(&[td!("real-calico-5705/calicoctl-get-node-k3s-master.yaml")], "k3s");
    let clab = imp.file("k3s.clab.yml").unwrap();
    // One node: a control plane by its labels; its /32 is put in its /24; one site, so no WAN.
    assert!(clab.contains("    site-1:\n      kind: bridge\n    k3s-master:\n      kind: ext-container\n      exec:\n        - ip addr add 10.200.0.1/24 dev eth1\n"), "{clab}");
    assert!(!clab.contains("kind: linux"));
    let kind = imp.file("k3s.kind.yaml").unwrap();
    assert!(kind.contains("  - role: control-plane  # k3s-master 10.200.0.1\n    labels:\n      csi.hetzner.cloud/location: nbg1\n      node.kubernetes.io/instance-type: k3s\n"), "{kind}");
    // The Calico Node keeps its real /32, its tunnel address and every label.
    let ds = applied(&imp);
    let n = &ds.nodes["k3s-master"];
    assert_eq!(n.annotations.get(ANN_IPV4).map(String::as_str), Some("10.200.0.1/32"));
    assert_eq!(n.ipip_tunnel_addr().map(|a| a.to_string()).as_deref(), Some("10.42.0.1"));
    assert_eq!(n.labels.get("beta.kubernetes.io/instance-type").map(String::as_str), Some("k3s"));
    // What the twin does not model is in the notes, not lost silently.
    let dropped = imp.notes.dropped.join("\n");
    for f in ["Node spec.addresses (k3s-master)", "Node spec.orchRefs (k3s-master)", "Node spec.wireguard (k3s-master)"]
    {
        assert!(dropped.contains(f), "{f} in {dropped}");
    }
    assert!(dropped.contains("annotation projectcalico.org/kube-labels on 1 node(s) (k3s-master)"));
    assert!(dropped.contains("labels left out of the kind config (set by the kubelet): beta.kubernetes.io/arch (1 node(s)), beta.kubernetes.io/instance-type (1 node(s))"), "{dropped}");
    assert!(dropped.contains("metadata.uid"), "{dropped}");
    assert!(imp.notes.derived.iter().any(|n| n.contains("k3s-master (10.200.0.1/32)")), "{:?}", imp.notes.derived);
}

#[test]
fn real_rack_lab_has_three_sites_per_rack_as_numbers_and_tor_peers() {
    let imp = run(&[td!("real-lab-racks/bgpcofig.yaml")], "racks");
    let clab = imp.file("racks.clab.yml").unwrap();
    // The ToRs own .1 of each rack (BGPPeer peerIPs): the WAN takes the highest free address.
    assert!(clab.contains("        - ip addr add 10.50.1.254/24 dev eth1\n        - ip addr add 10.50.2.254/24 dev eth2\n        - ip addr add 10.50.3.254/24 dev eth3\n"), "{clab}");
    assert!(clab.contains("    k8s-worker-2:\n      kind: ext-container\n      exec:\n        - ip addr add 10.50.3.10/24 dev eth1\n        - ip route add 10.50.1.0/24 via 10.50.3.254 dev eth1\n        - ip route add 10.50.2.0/24 via 10.50.3.254 dev eth1\n"));
    // No role label: the first node by name is the control plane.
    let kind = imp.file("racks.kind.yaml").unwrap();
    assert!(
        kind.contains("  - role: control-plane  # k8s-master 10.50.1.10\n    labels:\n      rack: rack1\n"),
        "{kind}"
    );
    assert!(imp.notes.derived.iter().any(|n| n.contains("k8s-master (the first by name) is the kind control plane")));
    // Per-node AS numbers and the peers reach the twin; the mesh is off.
    let ds = applied(&imp);
    assert_eq!(ds.nodes["k8s-worker-1"].annotations.get(ANN_ASN).map(String::as_str), Some("65102"));
    assert_eq!(ds.node_as("k8s-worker-2"), 65103);
    assert_eq!(ds.bgp_peers["rack2-tor"].spec.peer_ip.as_deref(), Some("10.50.2.1"));
    assert_eq!(ds.default_bgp_configuration().and_then(|c| c.spec.node_to_node_mesh_enabled), Some(false));
    let notes = imp.notes.imported.join("\n");
    assert!(
        notes.contains("AS numbers: global 64512; 65101 on k8s-master; 65102 on k8s-worker-1; 65103 on k8s-worker-2"),
        "{notes}"
    );
    assert!(imp.notes.dropped.iter().any(|n| n.contains("rack1-tor (10.50.1.1)") && n.contains("stay down")));
    // No pool in the input: Calico's manifest default.
    assert!(kind.contains("  podSubnet: 192.168.0.0/16\n"));
}

#[test]
fn sites_file_groups_racks() {
    let mut o = opts("racks");
    o.sites = Some(td!("sites/good.yaml"));
    let imp = import(&[td!("real-lab-racks/bgpcofig.yaml")], &o).unwrap_or_else(|e| panic!("{e}"));
    let clab = imp.file("racks.clab.yml").unwrap();
    // Racks 2 and 3 share dc-b (10.50.2.0/23): their eth1 takes the site's prefix. The WAN is on .1 of
    // dc-a; on dc-b, 10.50.2.1 is rack2-tor's: the WAN takes the highest free address.
    assert!(clab.contains("    dc-b:\n      kind: bridge\n    k8s-worker-1:\n      kind: ext-container\n      exec:\n        - ip addr add 10.50.2.10/23 dev eth1\n        - ip route add 10.50.0.0/23 via 10.50.3.254 dev eth1\n"), "{clab}");
    assert!(
        clab.contains("        - ip addr add 10.50.0.1/23 dev eth1\n        - ip addr add 10.50.3.254/23 dev eth2\n")
    );
    assert!(!clab.contains("dc-c"), "the empty site is left out");
    assert!(imp.notes.dropped.iter().any(|n| n.contains("dc-c 10.60.0.0/24")));
    // The Calico Node keeps its own /24.
    let ds = applied(&imp);
    assert_eq!(ds.nodes["k8s-worker-2"].annotations.get(ANN_IPV4).map(String::as_str), Some("10.50.3.10/24"));
}

#[test]
fn real_docs_samples_with_real_node_and_peer() {
    let imp = run(
        &[
            td!("real-calico-5705/calicoctl-get-node-k3s-master.yaml"),
            td!("real-calico-docs/bgpconfiguration-sample.yaml"),
            td!("real-calico-docs/ippool-sample.yaml"),
            td!("real-calico-4963/bgppeer-peer-with-rr.yaml"),
        ],
        "docs",
    );
    let clab = imp.file("docs.clab.yml").unwrap();
    assert!(
        clab.contains("        rrlab.io/calico-as: \"63400\"\n        rrlab.io/ipip-mode: CrossSubnet\n"),
        "{clab}"
    );
    let kind = imp.file("docs.kind.yaml").unwrap();
    // The only pool is the pod subnet; the cluster's service range comes from serviceClusterIPs.
    assert!(kind.contains("  podSubnet: 10.1.0.0/16\n  serviceSubnet: 10.96.0.0/12\n"), "{kind}");
    assert!(imp.notes.derived.iter().any(|n| n.contains("serviceClusterIPs")));
    let ds = applied(&imp);
    let c = ds.default_bgp_configuration().unwrap();
    assert_eq!(c.spec.as_number, Some(63400));
    assert_eq!(c.spec.listen_port, Some(178));
    assert_eq!(c.spec.communities[0].value, "63400:300:100");
    assert_eq!(ds.ip_pools["my.ippool-1"].spec.allowed_uses, ["Workload", "Tunnel"]);
    assert_eq!(ds.bgp_peers["peer-with-rr"].spec.peer_selector.as_deref(), Some("route-reflector == 'true'"));
    assert!(
        imp.notes.dropped.iter().any(|n| n.starts_with("IPPool spec.assignmentMode (my.ippool-1)")),
        "{:?}",
        imp.notes.dropped
    );
}

#[test]
fn real_node_without_addresses_from_cloud_provider_openstack_1208() {
    let e = import(&[td!("real-cpo-1208/kubectl-get-node-extcloud.yaml")], &opts("x")).unwrap_err();
    let text = e.to_string();
    assert!(matches!(&e, ImportError::NoAddress { node, line: 44, .. } if node == "extcloud"), "{e:?}");
    assert!(
        text.starts_with(
            "real-cpo-1208/kubectl-get-node-extcloud.yaml:44: metadata.name: node extcloud has no address"
        ),
        "{text}"
    );
}

#[test]
fn secrets_are_never_copied() {
    let mut inputs = hybrid_capture();
    inputs.push(td!("synthetic-secret/kubectl-get-secret-bgp-secrets.yaml"));
    let imp = run(&inputs, "hybrid");
    let everything = all_text(&imp);
    for original in ["s3cr3t-Original-Value", "czNjcjN0LU9yaWdpbmFsLVZhbHVl", "other-Secret-42", "b3RoZXItU2VjcmV0LTQy"]
    {
        assert!(!everything.contains(original), "{original} leaked");
    }
    assert!(!everything.contains("last-applied-configuration"));
    let ds = applied(&imp);
    let pw = ds.secret_value("bgp-secrets", "rr-password").unwrap();
    assert_eq!(pw.len(), 32);
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(ds.secret_value("bgp-secrets", "other").is_some(), "every key of the Secret gets a generated value");
    assert_eq!(ds.secrets.keys().collect::<Vec<_>>(), ["kube-system/bgp-secrets"]);
    assert!(
        imp.notes.replaced.iter().any(|n| n
            .contains("Secret kube-system/bgp-secrets (key(s) other, rr-password; used by BGPPeer rr-full-mesh)")
            && n.contains("was not copied")),
        "{:?}",
        imp.notes.replaced
    );
    // The same input twice (another seed) gives other values; the references stay.
    let again = import(&inputs, &ImportOptions { seed: Some(8), ..opts("hybrid") }).unwrap();
    assert_ne!(applied(&again).secret_value("bgp-secrets", "rr-password"), Some(pw));
    assert_eq!(
        applied(&again).bgp_peers["rr-full-mesh"].spec.password.as_ref().map(|p| p.key.as_str()),
        Some("rr-password")
    );

    // A mesh password given with stringData, in another namespace; an unrelated Secret is not written.
    let imp = run(&[td!("synthetic-hybrid-p1/kubectl-get-nodes.yaml"), td!("synthetic-secret/mesh.yaml")], "mesh");
    let everything = all_text(&imp);
    assert!(!everything.contains("mesh-Secret-77") && !everything.contains("bWVzaC1TZWNyZXQtNzc="));
    let ds = applied(&imp);
    assert!(ds.secrets.contains_key("calico-system/mesh-secret"));
    assert!(!ds.secrets.keys().any(|k| k.ends_with("/unrelated")));
    assert_eq!(
        ds.default_bgp_configuration().and_then(|c| c.spec.node_mesh_password.as_ref()).map(|p| p.name.as_str()),
        Some("mesh-secret")
    );
    assert!(imp.notes.dropped.iter().any(|n| n.starts_with("Secret unrelated")));
}

#[test]
fn daemonset_env_and_internal_ips() {
    let imp = run(
        &[
            td!("synthetic-daemonset/kubectl-get-nodes-internal-ip.yaml"),
            td!("synthetic-daemonset/kubectl-get-ds-calico-node.yaml"),
        ],
        "dc",
    );
    let clab = imp.file("dc.clab.yml").unwrap();
    // InternalIPs alone: their /24, two sites; the IPv6 InternalIP is not used.
    assert!(clab.contains("    cp-1:\n      kind: ext-container\n      exec:\n        - ip addr add 10.0.1.10/24 dev eth1\n        - ip route add 10.0.2.0/24 via 10.0.1.1 dev eth1\n"), "{clab}");
    assert!(clab.contains("        - ip addr add 10.0.2.11/24 dev eth1\n"));
    let kind = imp.file("dc.kind.yaml").unwrap();
    // No pool: CALICO_IPV4POOL_CIDR and CALICO_IPV4POOL_IPIP of the DaemonSet.
    assert!(kind.contains("  podSubnet: 172.20.0.0/16\n"), "{kind}");
    assert!(clab.contains("        rrlab.io/ipip-mode: CrossSubnet\n"));
    assert!(kind.contains("    labels:\n      topology.kubernetes.io/zone: zone-b\n"));
    let md = imp.file("dc.import.md").unwrap();
    assert!(
        md.contains("IP_AUTODETECTION_METHOD=can-reach=10.0.1.1 (the lab puts each node's address on eth1"),
        "{md}"
    );
    assert!(md.contains("calico-node env not modelled by the twin: DATASTORE_TYPE, WAIT_FOR_DATASTORE, NODENAME, CLUSTER_TYPE, IP, FELIX_IPINIPMTU, FELIX_HEALTHENABLED"), "{md}");
    assert!(md.contains("spec.unschedulable of worker-1"));
    assert!(md.contains("2 node(s) had only a Kubernetes InternalIP"));
    let ds = applied(&imp);
    assert_eq!(ds.nodes["worker-1"].annotations.get(ANN_IPV4).map(String::as_str), Some("10.0.2.11/24"));
    assert!(ds.ip_pools.is_empty(), "the twin creates the default pool itself");
}

#[test]
fn crd_capture_without_calicos_api_server() {
    let imp = run(
        &[td!("synthetic-daemonset/kubectl-get-nodes-internal-ip.yaml"), td!("synthetic-crd/kubectl-get-crds.yaml")],
        "crd",
    );
    let ds = applied(&imp);
    assert_eq!(ds.ip_pools["default-ipv4-ippool"].spec.cidr.to_string(), "172.20.0.0/16");
    assert_eq!(ds.block_affinities.keys().collect::<Vec<_>>(), ["cp-1-172-20-5-0-26"]);
    let calico = imp.file("crd.calico.yaml").unwrap();
    assert!(
        !calico.contains("crd.projectcalico.org/v1\nkind: IPPool") && !calico.contains("projectcalico.org/metadata")
    );
    // The peer's router has 10.0.1.1: the WAN takes the highest free address of that site.
    let clab = imp.file("crd.clab.yml").unwrap();
    assert!(
        clab.contains("        - ip addr add 10.0.1.254/24 dev eth1\n        - ip addr add 10.0.2.1/24 dev eth2\n"),
        "{clab}"
    );
    let dropped = imp.notes.dropped.join("\n");
    assert!(dropped.contains("gone-172-20-9-0-26 (gone)"), "{dropped}");
    assert!(dropped.contains("metadata.annotations.projectcalico.org/metadata"));
}

#[test]
fn sequences_and_json_are_read() {
    // calicoctl -o yaml prints several objects as a top-level sequence; -o json as a JSON array.
    let seq = "- apiVersion: projectcalico.org/v3\n  kind: Node\n  metadata:\n    name: a\n  spec:\n    bgp:\n      ipv4Address: 10.9.0.2/24\n- apiVersion: projectcalico.org/v3\n  kind: Node\n  metadata:\n    name: b\n  spec:\n    bgp:\n      ipv4Address: 10.9.0.3/24\n";
    let json = r#"{"apiVersion": "projectcalico.org/v3", "kind": "IPPoolList", "items": [{"apiVersion": "projectcalico.org/v3", "kind": "IPPool", "metadata": {"name": "p"}, "spec": {"cidr": "172.30.0.0/16", "ipipMode": "Never"}}]}"#;
    let imp = run(&[("seq.yaml".into(), seq.into()), ("pools.json".into(), json.into())], "s");
    assert!(imp.file("s.kind.yaml").unwrap().contains("  podSubnet: 172.30.0.0/16\n"));
    assert!(imp.file("s.clab.yml").unwrap().contains("        rrlab.io/node-names: \"a,b\"\n"));
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let e = import(&[td!("negative/malformed.yaml")], &opts("x")).unwrap_err();
    assert!(matches!(e, ImportError::Yaml { line: 9, .. } | ImportError::Yaml { line: 8, .. }), "{e:?}");
    assert!(e.to_string().starts_with("negative/malformed.yaml:"), "{e}");
    assert!(e.to_string().contains("malformed YAML"));
}

#[test]
fn unknown_kind_names_kind_file_line_and_field() {
    let e = import(&[td!("negative/unknown-kind.yaml")], &opts("x")).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("negative/unknown-kind.yaml:11: items[1].kind: unknown kind \"GlobalNetworkPolicy\" (apiVersion \"projectcalico.org/v3\"): rrlab import reads {}", read::KINDS)
    );
}

#[test]
fn node_without_addresses_names_node_file_line() {
    let e = import(&[td!("negative/no-address.yaml")], &opts("x")).unwrap_err();
    assert!(
        e.to_string().starts_with("negative/no-address.yaml:13: items[1].metadata.name: node n2 has no address"),
        "{e}"
    );
}

#[test]
fn bad_values_name_the_field() {
    let e = import(&[td!("negative/bad-annotation.yaml")], &opts("x")).unwrap_err();
    assert!(
        e.to_string().starts_with("negative/bad-annotation.yaml:9: items[0].metadata.annotations.projectcalico.org/IPv4Address: invalid IP address or CIDR"),
        "{e}"
    );
    let rr = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  annotations:\n    projectcalico.org/IPv4Address: 10.0.1.2/24\n    projectcalico.org/RouteReflectorClusterID: 244.0.0\n";
    let e = import(&[("rr.yaml".into(), rr.into())], &opts("x")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "rr.yaml:7: metadata.annotations.projectcalico.org/RouteReflectorClusterID: \"244.0.0\" is not an IPv4 address (node n1)"
    );
    // A Calico field the twin validates: the twin's message, at the item's field.
    let bad = "apiVersion: projectcalico.org/v3\nkind: IPPoolList\nitems:\n- apiVersion: projectcalico.org/v3\n  kind: IPPool\n  metadata:\n    name: p\n  spec:\n    cidr: 172.16.0.0/16\n    ipipMode: Sometimes\n";
    let mut inputs = vec![td!("negative/no-address.yaml")];
    inputs[0] = ("pools.yaml".into(), bad.into());
    let e = import(&inputs, &opts("x")).unwrap_err();
    assert!(e.to_string().starts_with("pools.yaml:10: items[0].spec.ipipMode: invalid value \"Sometimes\""), "{e}");
}

#[test]
fn bad_sites_files_name_file_line_and_field() {
    let inputs = [td!("real-lab-racks/bgpcofig.yaml")];
    let with = |f: (String, String)| {
        import(&inputs, &ImportOptions { sites: Some(f), ..opts("racks") }).unwrap_err().to_string()
    };
    let e = with(td!("sites/bad-cidr.yaml"));
    assert_eq!(e, "sites/bad-cidr.yaml:3: sites.dc-b: \"10.50.2.0/33\" is not an IPv4 CIDR (10.0.1.0/24)");
    let e = with(td!("sites/overlap.yaml"));
    assert_eq!(e, "sites/overlap.yaml:3: sites.dc-b: 10.50.2.0/23 overlaps site dc-a (10.50.0.0/16, line 2)");
    let e = with(td!("sites/missing.yaml"));
    assert!(e.starts_with("sites/missing.yaml: sites: node k8s-worker-1 (10.50.2.10, real-lab-racks/bgpcofig.yaml:31) is in no site of this file"), "{e}");
    let e = with(("s.yaml".into(), "sites:\n  this-name-is-far-too-long: 10.50.0.0/16\n".into()));
    assert!(e.starts_with("s.yaml:2: sites.this-name-is-far-too-long: "), "{e}");
    let e = with(("s.yaml".into(), "sites:\n  a: 10.50.0.0/16\nnodes: {}\n".into()));
    assert!(e.starts_with("s.yaml:3: nodes: unknown field"), "{e}");
}

#[test]
fn option_errors() {
    let e = import(&hybrid_capture(), &opts("Bad_Name")).unwrap_err();
    assert!(e.to_string().contains("--name \"Bad_Name\""), "{e}");
    let e = import(&hybrid_capture(), &opts("hybrid-worker")).unwrap_err();
    assert!(e.to_string().contains("a node of the cluster has that name"), "{e}");
    let o = ImportOptions { service_subnet: Some("10.0.0.0/16".parse().unwrap()), ..opts("hybrid") };
    let e = import(&hybrid_capture(), &o).unwrap_err();
    assert_eq!(e.to_string(), "--service-subnet 10.0.0.0/16 overlaps site site-1 (10.0.1.0/24)");
}

#[test]
fn service_subnet_moves_off_node_addresses() {
    let nodes = "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: a\nspec:\n  bgp:\n    ipv4Address: 10.100.0.2/16\n";
    let imp = run(&[("n.yaml".into(), nodes.into())], "svc");
    assert!(imp.file("svc.kind.yaml").unwrap().contains("  serviceSubnet: 10.96.0.0/16\n"));
    assert!(imp
        .notes
        .derived
        .iter()
        .any(|n| n.contains("kubeadm's default 10.96.0.0/12 overlaps site site-1 (10.100.0.0/16)")));
}

/// A `kubectl get nodes -o yaml` of `n` nodes over three /24 sites, as the twin prints it.
fn big_cluster(n: usize) -> String {
    let mut s = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for i in 0..n {
        let site = i % 3 + 1;
        let host = i / 3 + 2;
        let role = if i == 0 { "      node-role.kubernetes.io/control-plane: \"\"\n" } else { "" };
        s.push_str(&format!(
            "- apiVersion: v1\n  kind: Node\n  metadata:\n    name: node-{i:03}\n    labels:\n      kubernetes.io/hostname: node-{i:03}\n{role}      rack: r{site}\n    annotations:\n      projectcalico.org/IPv4Address: 10.{site}.0.{host}/24\n"
        ));
    }
    s
}

#[test]
fn scale_250_nodes_well_under_a_second() {
    let inputs = vec![
        ("nodes.yaml".to_string(), big_cluster(250)),
        td!("synthetic-hybrid-p1/calicoctl-get-ippools.yaml"),
        td!("synthetic-hybrid-p1/calicoctl-get-bgppeers.yaml"),
    ];
    let t = Instant::now();
    let imp = run(&inputs, "big");
    let took = t.elapsed();
    assert!(took.as_millis() < 500, "250 nodes took {took:?}");
    let clab = imp.file("big.clab.yml").unwrap();
    assert_eq!(clab.matches("kind: ext-container").count(), 250);
    assert_eq!(clab.matches("kind: bridge").count(), 3);
    assert!(
        clab.contains("    - endpoints: [\"node-249:eth1\", \"site-1:s1n84\"]\n"),
        "node-249 is the 84th of site 1"
    );
    assert_eq!(imp.file("big.kind.yaml").unwrap().matches("  - role: ").count(), 250);
    let ds = applied(&imp);
    assert_eq!(ds.nodes.len(), 250);
}

#[test]
fn live_commands_are_built_for_both_paths() {
    let k = live_commands(Some("/k/config"), Some("prod"), false);
    let lines: Vec<String> = k.iter().map(|c| c.join(" ")).collect();
    assert_eq!(
        lines,
        [
            "kubectl --kubeconfig /k/config --context prod get nodes -o yaml",
            "kubectl --kubeconfig /k/config --context prod get daemonsets --all-namespaces -l k8s-app=calico-node -o yaml",
            "kubectl --kubeconfig /k/config --context prod get ippools.projectcalico.org -o yaml",
            "kubectl --kubeconfig /k/config --context prod get bgpconfigurations.projectcalico.org -o yaml",
            "kubectl --kubeconfig /k/config --context prod get bgppeers.projectcalico.org -o yaml",
            "kubectl --kubeconfig /k/config --context prod get felixconfigurations.projectcalico.org -o yaml",
            "kubectl --kubeconfig /k/config --context prod get blockaffinities.crd.projectcalico.org -o yaml",
        ]
    );
    assert_eq!(
        crd_fallback(&k[2]).map(|c| c.join(" ")).as_deref(),
        Some("kubectl --kubeconfig /k/config --context prod get ippools.crd.projectcalico.org -o yaml")
    );
    assert_eq!(crd_fallback(&k[0]), None);
    assert_eq!(crd_fallback(&k[6]), None);
    let c = live_commands(None, None, true);
    assert_eq!(c[0].join(" "), "kubectl get nodes -o yaml");
    assert_eq!(c[2].join(" "), "env DATASTORE_TYPE=kubernetes calicoctl get nodes -o yaml --allow-version-mismatch");
    assert_eq!(c[3].join(" "), "env DATASTORE_TYPE=kubernetes calicoctl get ippools -o yaml --allow-version-mismatch");
    let c = live_commands(Some("/k"), Some("ctx"), true);
    assert_eq!(
        c[4].join(" "),
        "env DATASTORE_TYPE=kubernetes KUBECONFIG=/k calicoctl get bgpconfigurations -o yaml --allow-version-mismatch --context ctx"
    );
    assert!(c.iter().all(|cmd| !cmd.iter().any(|a| a.contains("secret"))), "secrets are never read");
}

#[test]
fn write_puts_every_file_in_the_directory() {
    let imp = run(&hybrid_capture(), "hybrid");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported");
    let paths = write(&imp, &out).unwrap();
    assert_eq!(paths.len(), 4);
    for (n, t) in &imp.files {
        assert_eq!(&std::fs::read_to_string(out.join(n)).unwrap(), t);
    }
}

fn edge20_capture() -> Vec<(String, String)> {
    vec![
        td!("twin-edge20/kubectl-get-nodes.yaml"),
        td!("twin-edge20/calicoctl-get-nodes.yaml"),
        td!("twin-edge20/calicoctl-get-bgppeers.yaml"),
        td!("twin-edge20/calicoctl-get-bgpconfigurations.yaml"),
        td!("twin-edge20/calicoctl-get-ippools.yaml"),
        td!("twin-edge20/calicoctl-get-felixconfigurations.yaml"),
    ]
}

/// The lab the edge20 capture was taken from: its topology, its Calico state rebuilt from its commands.
fn edge20_source() -> (topology::Topology, Datastore) {
    let files: BTreeMap<&str, &str> = BTreeMap::from([
        ("edge20.clab.yml", include_str!("testdata/twin-edge20/source/edge20.clab.yml")),
        ("edge20.kind.yaml", include_str!("testdata/twin-edge20/source/edge20.kind.yaml")),
    ]);
    let read = |p: &Path| {
        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        files.get(n).map(|t| t.to_string()).ok_or_else(|| format!("no file {n}"))
    };
    let topo = topology::parse(Path::new("/src/edge20.clab.yml"), files["edge20.clab.yml"], &read).unwrap();
    let mut ds = crate::lab::initial_datastore(&topo, &topo.clusters[0]).unwrap();
    crate::lab::allocate(&mut ds);
    let commands = include_str!("testdata/twin-edge20/source/commands.sh");
    let script: String = commands
        .lines()
        .take_while(|l| !l.starts_with("# The capture"))
        .map(|l| format!("{}\n", l.strip_prefix("rrlab ").unwrap_or(l)))
        .collect();
    let none = |f: &str| Err::<String, String>(f.to_string());
    for o in crate::twin::commands::run_script(&mut ds, "commands.sh", &script, &Default::default(), &none).unwrap() {
        assert!(o.ok, "{}: {}", o.command, o.stderr);
    }
    crate::lab::allocate(&mut ds);
    (topo, ds)
}

#[test]
fn live_twin_capture_edge20_comes_back_as_the_lab_it_was_taken_from() {
    let imp = run(&edge20_capture(), "edge20");
    let topo = parsed(&imp).unwrap_or_else(|e| panic!("{e}"));
    let (src, src_ds) = edge20_source();
    let (c, sc) = (&topo.clusters[0], &src.clusters[0]);
    // The same nodes with the same addresses, on the same sites, with the same WAN addresses.
    let mut names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
    let mut src_names: Vec<&str> = sc.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names[0], "onprem-01", "the control plane first");
    names.sort();
    src_names.sort();
    assert_eq!(names, src_names);
    let group = |t: &topology::Topology| -> Vec<Vec<String>> {
        let mut v: Vec<Vec<String>> = t
            .sites()
            .into_values()
            .map(|mut s| {
                s.sort();
                s
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(group(&topo), group(&src));
    for n in &names {
        assert_eq!(topo.node_ip(n), src.node_ip(n), "{n}");
    }
    assert_eq!(topo.routes()["cloud-07"], src.routes()["cloud-07"]);
    assert_eq!(topo.addresses()["wan"], src.addresses()["wan"]);
    // Kubernetes labels: the kind config's and those labelled since, the kubelet's left to the kubelet.
    for n in &sc.nodes {
        let mut want = n.labels.clone();
        if let Some(z) = src_ds.nodes[&n.name].labels.get("topology.kubernetes.io/zone") {
            want.insert("topology.kubernetes.io/zone".into(), z.clone());
        }
        assert_eq!(c.node(&n.name).unwrap().labels, want, "{}", n.name);
    }
    assert_eq!(c.as_number, 64600);
    assert_eq!(c.pod_subnet.to_string(), "10.244.0.0/16");
    // Brought up as the twin brings it up: the same datastore, so the same BIRD configuration on every node.
    let mut ds = crate::lab::initial_datastore(&topo, c).unwrap();
    crate::lab::allocate(&mut ds);
    assert_eq!(ds.ip_pools.keys().collect::<Vec<_>>(), ["default-ipv4-ippool", "legacy-pool"]);
    assert!(ds.ip_pools["legacy-pool"].spec.disabled);
    assert_eq!(ds.felix_configurations["default"], src_ds.felix_configurations["default"]);
    assert_eq!(ds.global_as(), 64600);
    for n in &names {
        assert_eq!(ds.nodes[*n].labels, src_ds.nodes[*n].labels, "{n}");
        let flavor = crate::twin::render::Flavor::Upstream;
        let mine = crate::twin::render::render_node(&ds, n, flavor).unwrap();
        let theirs = crate::twin::render::render_node(&src_ds, n, flavor).unwrap();
        assert_eq!(mine.files(), theirs.files(), "{n}");
    }
    // The foreign annotation is not Calico's; the notes say so.
    assert!(
        imp.notes.dropped.iter().any(|d| d.starts_with("1 Kubernetes node annotation(s) that are not Calico's")),
        "{:?}",
        imp.notes.dropped
    );
}

#[test]
fn an_invalid_real_node_name_is_an_error_naming_it() {
    let nodes = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata:\n    name: Node_A\n";
    let e = import(&[("nodes.yaml".into(), nodes.into())], &opts("x")).unwrap_err();
    assert!(e.to_string().starts_with("nodes.yaml:7: items[0].metadata.name: invalid name \"Node_A\""), "{e}");
}
