//! `rrlab render` as a user runs it: files written, errors naming file/line/field, BIRD accepting the output.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn rrlab() -> Command {
    Command::cargo_bin("rrlab").unwrap()
}

#[test]
fn renders_files_that_bird_accepts() {
    let out = tempfile::tempdir().unwrap();
    let st = rrlab()
        .args(["render", "--input"])
        .arg(fixture("hybrid-cluster.yaml"))
        .arg("--input")
        .arg(fixture("procedure1.sh"))
        .args(["--node", "hybrid-control-plane", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    for f in [
        "bird.cfg",
        "bird_ipam.cfg",
        "bird_aggr.cfg",
        "felix.json",
        "kernel.json",
        "calico/bird.cfg",
        "calico/bird_ipam.cfg",
    ] {
        assert!(out.path().join(f).exists(), "{f} missing");
    }
    let calico = std::fs::read_to_string(out.path().join("calico/bird_ipam.cfg")).unwrap();
    assert!(calico.contains("krt_tunnel = \"tunl0\";"));
    let kernel: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("kernel.json")).unwrap()).unwrap();
    assert_eq!(kernel["pools"][0]["pool"], "172.16.0.0/16");
    assert_eq!(kernel["pools"][0]["decision"], "tunnel");
    let bird = Command::new("bird")
        .arg("-p")
        .arg("-c")
        .arg(out.path().join("bird.cfg"))
        .current_dir(out.path())
        .output()
        .expect("bird installed");
    assert!(bird.status.success(), "{}", String::from_utf8_lossy(&bird.stderr));
}

#[test]
fn unknown_node_is_an_error_naming_the_known_ones() {
    let out = tempfile::tempdir().unwrap();
    let st = rrlab()
        .args(["render", "--input"])
        .arg(fixture("hybrid-cluster.yaml"))
        .args(["--node", "nosuch", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!st.status.success());
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(err.contains("unknown node \"nosuch\" (known nodes: hybrid-control-plane, hybrid-worker,"), "{err}");
}

#[test]
fn malformed_yaml_and_bad_fields_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("malformed.yaml", "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: x\n", "malformed.yaml:", "malformed YAML"),
        ("unknown-field.yaml", "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: x\nspec:\n  cidr: 10.0.0.0/16\n  ipipmode: Always\n", "unknown-field.yaml:7:3: document 1, field spec.ipipmode", "unknown field"),
        ("bad-cidr.yaml", "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: x\nspec:\n  cidr: 10.0.0.0/40\n", "bad-cidr.yaml:6:9: document 1, field spec.cidr", "valid subnet"),
        ("bad-selector.yaml", "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: x\nspec:\n  nodeSelector: has(a) &&\n", "bad-selector.yaml:6", "field spec.nodeSelector"),
        ("bad-kind.yaml", "apiVersion: projectcalico.org/v3\nkind: BGPPeeer\nmetadata:\n  name: x\n", "bad-kind.yaml:2:7: document 1, field kind", "unknown or unsupported kind"),
        ("bad-command.sh", "kubectl label node hybrid-worker a=b\nkubectl cordon hybrid-worker\n", "bad-command.sh:2", "kubectl cordon"),
    ];
    for (name, text, at, what) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let st = rrlab()
            .args(["render", "--input"])
            .arg(fixture("hybrid-cluster.yaml"))
            .arg("--input")
            .arg(&p)
            .args(["--node", "hybrid-worker", "--out"])
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        assert!(!st.status.success(), "{name} should fail");
        let err = String::from_utf8_lossy(&st.stderr);
        assert!(err.contains(at) && err.contains(what), "{name}: expected {at:?} and {what:?} in:\n{err}");
        assert!(!dir.path().join("out").exists(), "{name}: nothing is written on error");
    }
}
