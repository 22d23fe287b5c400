//! The lab runtime on `docker` (the default where a Docker daemon answers): nodes are containers of the
//! locally built node image, wired by rrlab with no Docker network. Needs root and a Docker daemon; fails
//! loudly without them.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/labs").join(name)
}

fn rrlab() -> Command {
    let mut c = Command::cargo_bin("rrlab").unwrap();
    c.env("RRLAB_BIN", env!("CARGO_BIN_EXE_rrlab"));
    c
}

fn containers(label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "--filter", label, "--format", "{{.Names}}"])
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

#[test]
fn dmini_lab_converges_on_docker_and_down_leaves_nothing() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the lab tests need root; CI runs them as root");
    let info = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    assert!(
        info.is_ok_and(|o| o.status.success()),
        "no Docker daemon answers: the docker runtime test needs one (CI has it)"
    );
    let _ = rrlab().args(["down", "dmini"]).output();
    let out = rrlab()
        .args(["up", "--runtime", "docker", "--timeout", "120"])
        .arg(fixture("dmini.clab.yml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ok = out.status.success();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let nodes = containers("label=rrlab.lab=dmini");
    let down = rrlab().args(["down", "dmini"]).output().unwrap();
    assert!(ok, "rrlab up failed:\n{stdout}\n{err}");
    assert!(
        stdout.contains("lab dmini up on docker: 4 nodes, 6 BGP sessions Established, 30 pod-to-pod pings OK"),
        "{stdout}"
    );
    // Containers are named like kind's node containers and labelled with their lab.
    let mut nodes = nodes;
    nodes.sort();
    assert_eq!(nodes, vec!["dmini-control-plane", "dmini-wan", "dmini-worker", "dmini-worker2"]);
    assert!(down.status.success());
    assert_eq!(containers("label=rrlab.lab=dmini"), Vec::<String>::new());
    let ns: Vec<String> =
        rrlab::runtime::netns::list_netns().into_iter().filter(|n| n.starts_with("rrlab-dmini-")).collect();
    assert_eq!(ns, Vec::<String>::new());
    assert!(!Path::new("/run/rrlab/dmini").exists());
}
