//! The post's procedures typed against the twin's datastore: every command parses and applies, and the
//! rendered configs change the way calico-node's would. BIRD itself (`bird -p -c`) judges the configs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rrlab::twin::apply::apply_text;
use rrlab::twin::commands::{run_script, Outcome};
use rrlab::twin::datastore::{Datastore, WriteMode};
use rrlab::twin::render::{render_node, Flavor, Render};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn no_files(f: &str) -> Result<String, String> {
    Err(format!("{f}: no such file"))
}

fn hybrid() -> Datastore {
    let mut ds = Datastore::new();
    let text = std::fs::read_to_string(fixture("hybrid-cluster.yaml")).unwrap();
    apply_text(&mut ds, "hybrid-cluster.yaml", &text, WriteMode::Apply).unwrap();
    ds
}

fn run(ds: &mut Datastore, script: &str) -> Vec<Outcome> {
    run_script(ds, "script.sh", script, &HashMap::new(), &no_files).unwrap()
}

fn run_fixture(ds: &mut Datastore, name: &str) -> Vec<Outcome> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let out = run_script(ds, name, &text, &HashMap::new(), &no_files).unwrap();
    for o in &out {
        assert!(o.ok, "{name}:{}: `{}` failed: {}", o.line, o.command, o.stderr);
    }
    out
}

/// Protocol blocks of a rendered bird.cfg: name → body lines.
fn protocols(r: &Render) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, Vec<String>)> = None;
    for line in r.bird_cfg.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("protocol bgp ") {
            cur = Some((rest.split_whitespace().next().unwrap_or("").to_string(), Vec::new()));
        } else if t == "}" {
            if let Some(c) = cur.take() {
                out.push(c);
            }
        } else if let Some((_, body)) = cur.as_mut() {
            body.push(t.split('#').next().unwrap_or("").trim().to_string());
        }
    }
    out
}

fn names(r: &Render) -> Vec<String> {
    protocols(r).into_iter().map(|(n, _)| n).collect()
}

/// `bird -p -c` on the three files of a render; Err(stderr) when BIRD rejects them.
fn bird_parse(r: &Render) -> Result<(), String> {
    r.bird_check("bird")
}

#[test]
fn the_default_is_a_full_mesh() {
    let ds = hybrid();
    let r = render_node(&ds, "hybrid-worker2", Flavor::Upstream).unwrap();
    let n = names(&r);
    assert_eq!(n.len(), 7, "{n:?}");
    assert!(n.iter().all(|p| p.starts_with("Mesh_")), "{n:?}");
    bird_parse(&r).unwrap();
}

#[test]
fn procedure_1_gives_partitioned_route_reflectors() {
    let mut ds = hybrid();
    let out = run_fixture(&mut ds, "procedure1.sh");
    assert_eq!(out.len(), 11);
    assert_eq!(out[8].stdout, "Successfully applied 3 'BGPPeer' resource(s)");
    assert_eq!(out[10].stdout, "Successfully patched 1 'BGPConfiguration' resource");

    // The RR of partition A: clients are A's workers, the other RRs are non-clients (same cluster ID).
    let rr = render_node(&ds, "hybrid-control-plane", Flavor::Upstream).unwrap();
    assert!(rr
        .bird_cfg
        .contains("# This node (hybrid-control-plane) is configured as a route reflector with cluster ID 244.0.0.1;"));
    let protos = protocols(&rr);
    let mut got: Vec<(String, bool)> =
        protos.iter().map(|(n, b)| (n.clone(), b.iter().any(|l| l == "rr client;"))).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("Node_10_0_1_3".into(), false),
            ("Node_10_0_1_4".into(), true),
            ("Node_10_0_1_5".into(), true),
            ("Node_10_0_2_2".into(), false),
            ("Node_10_0_2_3".into(), false),
        ]
    );
    for (name, body) in &protos {
        let is_client = body.iter().any(|l| l == "rr client;");
        assert_eq!(is_client, body.iter().any(|l| l == "rr cluster id 244.0.0.1;"), "{name}");
    }
    bird_parse(&rr).unwrap();

    // A client of partition B peers with exactly B's RRs; no mesh remains.
    let c = render_node(&ds, "hybrid-worker6", Flavor::Upstream).unwrap();
    assert_eq!(names(&c), vec!["Node_10_0_2_2", "Node_10_0_2_3"]);
    assert!(c.bird_cfg.contains("# Node-to-node mesh disabled"));
    bird_parse(&c).unwrap();
}

#[test]
fn procedure_2_rolls_back_to_the_mesh() {
    let mut ds = hybrid();
    run_fixture(&mut ds, "procedure1.sh");
    run_fixture(&mut ds, "procedure2.sh");
    assert!(ds.bgp_peers.is_empty());
    for node in ["hybrid-control-plane", "hybrid-worker6"] {
        let r = render_node(&ds, node, Flavor::Upstream).unwrap();
        let n = names(&r);
        assert_eq!(n.len(), 7, "{node}: {n:?}");
        assert!(n.iter().all(|p| p.starts_with("Mesh_")), "{node}: {n:?}");
        assert!(!r.bird_cfg.contains("rr client"));
    }
}

#[test]
fn patching_a_missing_default_bgpconfiguration_fails_like_calicoctl() {
    let mut ds = hybrid();
    let out =
        run(&mut ds, "calicoctl patch bgpconfiguration default -p '{\"spec\": {\"nodeToNodeMeshEnabled\": false}}'\n");
    assert!(!out[0].ok);
    assert!(
        out[0].stderr.starts_with(
            "Failed to patch 'BGPConfiguration' resource: resource does not exist: BGPConfiguration(default)"
        ),
        "{}",
        out[0].stderr
    );
    assert!(ds.bgp_configurations.is_empty(), "a failed patch changes nothing");
    // kubectl cannot create it either: projectcalico.org/v3 needs Calico's API server.
    let out = run(&mut ds, "kubectl apply -f - <<EOF\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  nodeToNodeMeshEnabled: false\nEOF\n");
    assert!(!out[0].ok);
    assert!(
        out[0].stderr.contains("no matches for kind \"BGPConfiguration\" in version \"projectcalico.org/v3\""),
        "{}",
        out[0].stderr
    );
}

#[test]
fn a_peer_without_as_number_renders_as_0_and_bird_rejects_it() {
    let mut ds = hybrid();
    let out = run(
        &mut ds,
        "calicoctl apply -f - << EOF\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: rr-external-node\nspec:\n  node: hybrid-control-plane\n  peerIP: 10.1.1.2\nEOF\n",
    );
    assert!(out[0].ok, "{}", out[0].stderr);
    let r = render_node(&ds, "hybrid-control-plane", Flavor::Upstream).unwrap();
    assert!(r.bird_cfg.contains("  neighbor 10.1.1.2 as 0;"), "{}", r.bird_cfg);
    let err = bird_parse(&r).unwrap_err();
    assert!(err.contains("Remote AS number must be set"), "{err}");
    // With the AS the same config is accepted.
    run(&mut ds, "calicoctl patch bgppeer rr-external-node -p '{\"spec\": {\"asNumber\": 63401}}'\n");
    let r = render_node(&ds, "hybrid-control-plane", Flavor::Upstream).unwrap();
    assert!(r.bird_cfg.contains("  neighbor 10.1.1.2 as 63401;"));
    bird_parse(&r).unwrap();
}

#[test]
fn procedure_3_cross_cluster_pieces() {
    let mut ds = hybrid();
    let script = r#"calicoctl apply -f - << EOF
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  nodeToNodeMeshEnabled: true
EOF
calicoctl patch bgpconfiguration default -p '{"spec": {"asNumber": "63400"}}'
calicoctl apply -f - << EOF
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: rr-external-node
spec:
  node: hybrid-control-plane
  peerIP: 10.1.1.2
  asNumber: 63401
EOF
calicoctl apply -f - << EOF
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: cluster2-pool
spec:
  cidr: 172.28.0.0/16
  ipipMode: Always
  natOutgoing: false
  disabled: true
EOF
kubectl set env daemonset/calico-node -n kube-system FELIX_EXTERNALNODESCIDRLIST=10.1.1.0/24
"#;
    for o in run(&mut ds, script) {
        assert!(o.ok, "line {}: {}", o.line, o.stderr);
    }
    let r = render_node(&ds, "hybrid-control-plane", Flavor::Calico).unwrap();
    assert!(r.bird_cfg.contains("local as 63400;"));
    let body = &protocols(&r).into_iter().find(|(n, _)| n == "Node_10_1_1_2").unwrap().1;
    assert!(body.contains(&"neighbor 10.1.1.2 as 63401;".to_string()));
    assert!(body.contains(&"calico_export_to_bgp_peers(false);".to_string()), "eBGP: external export");
    assert!(r.bird_ipam_cfg.contains("if ( net ~ 172.28.0.0/16 ) then {\n    accept;\n  }"));
    assert!(r.felix.all_hosts_net.contains(&"10.1.1.0/24".to_string()));
    assert!(r.felix.all_hosts_net.contains(&"10.0.2.5".to_string()));
    assert_eq!(r.felix.external_nodes_source.as_deref(), Some("env FELIX_EXTERNALNODESCIDRLIST"));

    // FelixConfiguration form, and the env var's precedence over it.
    let fc = "calicoctl apply -f - << EOF\napiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec:\n  externalNodesList:\n  - 10.9.9.0/24\nEOF\n";
    assert!(run(&mut ds, fc)[0].ok);
    let r = render_node(&ds, "hybrid-worker2", Flavor::Upstream).unwrap();
    assert!(r.felix.all_hosts_net.contains(&"10.1.1.0/24".to_string()));
    assert!(!r.felix.all_hosts_net.contains(&"10.9.9.0/24".to_string()), "the env var wins");
    assert!(run(&mut ds, "kubectl set env daemonset/calico-node -n kube-system FELIX_EXTERNALNODESCIDRLIST-\n")[0].ok);
    let r = render_node(&ds, "hybrid-worker2", Flavor::Upstream).unwrap();
    assert!(r.felix.all_hosts_net.contains(&"10.9.9.0/24".to_string()));
    assert_eq!(r.felix.external_nodes_source.as_deref(), Some("felixconfiguration default"));

    // An overlapping pool is refused, and nothing changes.
    let before = ds.clone();
    let out = run(&mut ds, "calicoctl apply -f - << EOF\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: overlap\nspec:\n  cidr: 172.16.128.0/17\nEOF\n");
    assert!(!out[0].ok);
    assert!(
        out[0].stderr.contains("IPPool(overlap) CIDR overlaps with IPPool(default-ipv4-ippool) CIDR 172.16.0.0/16"),
        "{}",
        out[0].stderr
    );
    assert_eq!(ds, before);
}

#[test]
fn bad_commands_leave_the_datastore_unchanged() {
    let mut ds = hybrid();
    let before = ds.clone();
    // Unknown command: the whole script is refused before anything runs.
    let err = run_script(
        &mut ds,
        "s.sh",
        "kubectl label node hybrid-worker a=b\nkubectl drain hybrid-worker\n",
        &HashMap::new(),
        &no_files,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("s.sh:2: "), "{err}");
    assert!(err.to_string().contains("kubectl drain"), "{err}");
    assert_eq!(ds, before);
    // Unknown flag.
    let err =
        run_script(&mut ds, "s.sh", "calicoctl patch bgpconfiguration default --foo x\n", &HashMap::new(), &no_files)
            .unwrap_err();
    assert!(err.to_string().contains("--foo"), "{err}");
    // Unknown node.
    let out = run(&mut ds, "kubectl label node nosuch rr-partition=A\n");
    assert_eq!(out[0].stderr, "Error from server (NotFound): nodes \"nosuch\" not found");
    // Overwrite without --overwrite.
    run(&mut ds, "kubectl label node hybrid-worker rr-partition=A\n");
    let out = run(&mut ds, "kubectl label node hybrid-worker rr-partition=B\n");
    assert_eq!(out[0].stderr, "error: 'rr-partition' already has a value (A), and --overwrite is false");
    assert_eq!(ds.node("hybrid-worker").unwrap().labels.get("rr-partition").map(String::as_str), Some("A"));
    // A bad resource in a multi-document apply: nothing of it is applied, the error names line and field.
    let before = ds.clone();
    let out = run(&mut ds, "calicoctl apply -f - << EOF\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: good\nspec:\n  peerSelector: all()\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: bad\nspec:\n  peerSelector: rr-partition = 'A'\nEOF\n");
    assert!(!out[0].ok);
    assert!(out[0].stderr.contains("STDIN:13:30: document 2, field spec.peerSelector"), "{}", out[0].stderr);
    assert_eq!(ds, before);
}
