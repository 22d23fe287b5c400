//! Fidelity suite: Calico v3.30's own confd golden cases (`testdata/calico-golden-v3.30.0/`, carried by the repository). For each case the
//! twin renders kube-master from the same inputs, and a BIRD-config reader compares *behaviour* with the
//! configs calico-node rendered: BGP protocols and options, export decisions, kernel decisions, static
//! routes, router id. The twin's own flavour must also be accepted by upstream BIRD 1.6.8 (`bird -p -c`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rrlab::birdconf::{
    self, behaviour, compare, compare_with, Behaviour, CompareOptions, KernelDecision as ReadDecision, Report,
};
use rrlab::twin::apply::apply_text;
use rrlab::twin::datastore::{Datastore, WriteMode};
use rrlab::twin::render::{render_node, Flavor, KernelDecision, Render};

/// The cases, carried by the repository (`testdata/calico-golden-v3.30.0/`, Apache-2.0, from Calico's confd
/// tests at v3.30.0; its README says where each file came from).
fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/calico-golden-v3.30.0")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The input of a case: its input.yaml, or (for cases whose input Calico's suite writes inline) ours.
fn case_input(case: &str) -> (String, String) {
    let root = golden_root();
    let p = root.join(case).join("input.yaml");
    if p.exists() {
        return (p.display().to_string(), read(&p));
    }
    let ours = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{}.input.yaml", case.replace('/', "-")));
    (ours.display().to_string(), read(&ours))
}

fn datastore_for(case: &str) -> Datastore {
    let root = golden_root();
    let mut ds = Datastore::new();
    for f in ["common/nodes.yaml", "common/ipam.yaml"] {
        apply_text(&mut ds, f, &read(&root.join(f)), WriteMode::Apply).unwrap();
    }
    if let Some(parent) = case.strip_suffix("/step2") {
        let (name, text) = case_input(parent);
        apply_text(&mut ds, &name, &text, WriteMode::Apply).unwrap();
    }
    let (name, text) = case_input(case);
    apply_text(&mut ds, &name, &text, WriteMode::Apply).unwrap_or_else(|e| panic!("{e}"));
    ds
}

fn expected_behaviour(case: &str) -> Behaviour {
    let dir = golden_root().join(case);
    let mut files = BTreeMap::new();
    for f in ["bird.cfg", "bird_ipam.cfg", "bird_aggr.cfg"] {
        files.insert(f.to_string(), read(&dir.join(format!("expected.{f}"))));
    }
    behaviour(&birdconf::load_set(&files).unwrap_or_else(|e| panic!("{case}: expected config unreadable: {e}")))
}

fn render_behaviour(r: &Render) -> Behaviour {
    let files: BTreeMap<String, String> = r.files().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    behaviour(&birdconf::load_set(&files).unwrap_or_else(|e| panic!("our render is unreadable: {e}\n{}", r.bird_cfg)))
}

fn bird_accepts(r: &Render) -> Result<(), String> {
    r.bird_check("bird")
}

/// The twin's kernel decisions (data for its agent) against the kernel filter Calico rendered.
fn kernel_mismatches(expected: &Behaviour, twin: &Render) -> Vec<String> {
    let mut out = Vec::new();
    let Some(kernel) = &expected.kernel else { return vec!["Calico's render has no kernel protocol".into()] };
    let exp = &kernel.prefixes;
    for p in &twin.kernel.pools {
        let want = exp.iter().find(|(k, _)| k.to_string() == p.pool.to_string()).map(|(_, v)| v);
        let same = match (want, &p.decision) {
            (Some(ReadDecision::Tunnel(t)), KernelDecision::Tunnel { device }) => t == device,
            (Some(ReadDecision::NoTunnel), KernelDecision::NoTunnel) => true,
            (Some(ReadDecision::Reject), KernelDecision::Reject) => true,
            (
                Some(ReadDecision::CrossSubnet { local_net, tunnel }),
                KernelDecision::CrossSubnet { local_subnet, device },
            ) => local_net.to_string() == local_subnet.to_string() && tunnel == device,
            _ => false,
        };
        if !same {
            out.push(format!(
                "kernel decision for {}: Calico renders {want:?}, the twin's agent gets {:?}",
                p.pool, p.decision
            ));
        }
    }
    let twin_pools: Vec<String> = twin.kernel.pools.iter().map(|p| p.pool.to_string()).collect();
    for (k, v) in exp {
        let ks = k.to_string();
        if !twin_pools.contains(&ks) && !twin.kernel.reject_cidrs.iter().any(|c| c.to_string() == ks) {
            out.push(format!("kernel decision for {ks} ({v:?}) is missing from the twin's data"));
        }
    }
    out
}

fn check_case(case: &str) {
    let ds = datastore_for(case);
    let calico = render_node(&ds, "kube-master", Flavor::Calico).unwrap();
    let expected = expected_behaviour(case);
    let diffs = compare(&expected, &render_behaviour(&calico));
    assert!(
        diffs.is_empty(),
        "golden case {case}: the twin's render behaves differently from calico-node's:\n{}",
        Report(diffs)
    );

    let twin = render_node(&ds, "kube-master", Flavor::Upstream).unwrap();
    bird_accepts(&twin)
        .unwrap_or_else(|e| panic!("golden case {case}: upstream BIRD 1.6.8 rejects the twin's render: {e}"));
    // The twin's own files (what `rrlab render` writes at the top level) behave like calico-node's too; only
    // the kernel protocol's private table differs.
    let opts = CompareOptions {
        ignore_options: ["kernel table".to_string(), "table".to_string()].into(),
        ..Default::default()
    };
    let diffs = compare_with(&expected, &render_behaviour(&twin), &opts);
    assert!(
        diffs.is_empty(),
        "golden case {case}: the twin's upstream-BIRD render behaves differently:\n{}",
        Report(diffs)
    );
    let k = kernel_mismatches(&expected, &twin);
    assert!(k.is_empty(), "golden case {case}:\n{}", k.join("\n"));
}

macro_rules! golden {
    ($($name:ident => $case:literal,)*) => {
        $( #[test] fn $name() { check_case($case); } )*
        const NAMED: &[&str] = &[$($case),*];
    };
}

golden! {
    explicit_peering_global => "explicit_peering/global",
    explicit_peering_global_external => "explicit_peering/global-external",
    explicit_peering_keepnexthop => "explicit_peering/keepnexthop",
    explicit_peering_local_as => "explicit_peering/local-as",
    explicit_peering_route_reflector => "explicit_peering/route_reflector",
    explicit_peering_selectors => "explicit_peering/selectors",
    explicit_peering_specific_node => "explicit_peering/specific_node",
    mesh_bgp_export => "mesh/bgp-export",
    mesh_ipip_always => "mesh/ipip-always",
    mesh_ipip_cross_subnet => "mesh/ipip-cross-subnet",
    mesh_ipip_off => "mesh/ipip-off",
    mesh_vxlan_always => "mesh/vxlan-always",
    ttl_security_global => "ttl_security/global",
}

/// Every case directory in testdata/ is tested, including ones added after this file was written.
#[test]
fn every_case_in_testdata_is_covered() {
    let root = golden_root();
    let mut found = Vec::new();
    for group in std::fs::read_dir(&root).unwrap().flatten() {
        if !group.path().is_dir() || group.file_name() == "common" {
            continue;
        }
        for case in std::fs::read_dir(group.path()).unwrap().flatten() {
            if case.path().join("expected.bird.cfg").exists() {
                found.push(format!("{}/{}", group.file_name().to_string_lossy(), case.file_name().to_string_lossy()));
            }
            if case.path().join("step2/expected.bird.cfg").exists() {
                found.push(format!(
                    "{}/{}/step2",
                    group.file_name().to_string_lossy(),
                    case.file_name().to_string_lossy()
                ));
            }
        }
    }
    found.sort();
    assert!(found.len() >= 13, "expected at least the 13 golden cases, found {found:?}");
    for case in found.iter().filter(|c| !NAMED.contains(&c.as_str())) {
        check_case(case);
    }
}

/// A seeded fault is caught, with a readable difference.
#[test]
fn a_wrong_render_is_reported_readably() {
    let ds = datastore_for("explicit_peering/route_reflector");
    let mut r = render_node(&ds, "kube-master", Flavor::Calico).unwrap();
    r.bird_cfg = r.bird_cfg.replacen("rr cluster id 10.0.0.1;", "rr cluster id 10.0.0.9;", 1);
    r.bird_ipam_cfg = r.bird_ipam_cfg.replace("krt_tunnel = \"tunl0\";", "krt_tunnel = \"\";");
    let diffs = compare(&expected_behaviour("explicit_peering/route_reflector"), &render_behaviour(&r));
    let text = Report(diffs.clone()).to_string();
    assert_eq!(diffs.len(), 2, "{text}");
    assert!(text.contains("Node_10_192_0_3") && text.contains("10.0.0.1") && text.contains("10.0.0.9"), "{text}");
    assert!(text.contains("192.168.0.0/16"), "{text}");
}
