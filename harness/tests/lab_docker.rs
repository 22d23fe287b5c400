//! The lab runtime on `docker` (the default where a Docker daemon answers): nodes are containers of the
//! locally built node image, wired by rrlab with no Docker network, driven through the Docker API only. Needs
//! root and a Docker daemon; fails loudly without them.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use bollard::query_parameters::ListContainersOptionsBuilder;
use rrlab::runtime::docker::{block_on, label_filter, Docker};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/labs").join(name)
}

/// A `docker` executable that only records that it was called, first on PATH.
fn fake_docker(dir: &Path) -> (String, PathBuf) {
    let log = dir.join("docker-calls.log");
    let bin = dir.join("docker");
    std::fs::write(&bin, format!("#!/bin/sh\necho \"docker $*\" >> {}\nexit 1\n", log.display())).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    (path, log)
}

fn rrlab(path: &str) -> Command {
    let mut c = Command::cargo_bin("rrlab").unwrap();
    c.env("RRLAB_BIN", env!("CARGO_BIN_EXE_rrlab")).env("PATH", path);
    c
}

/// Names of the containers of a lab, through the API.
fn containers(d: &Docker, lab: &str) -> Vec<String> {
    let o = ListContainersOptionsBuilder::default().all(true).filters(&label_filter(Some(lab))).build();
    let mut v: Vec<String> = block_on(d.client().list_containers(Some(o)))
        .expect("listing containers")
        .into_iter()
        .filter_map(|c| c.names?.first().map(|n| n.trim_start_matches('/').to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn dmini_lab_converges_on_docker_and_down_leaves_nothing_and_no_docker_process_ran() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the lab tests need root; CI runs them as root");
    let d = Docker::new().unwrap_or_else(|e| panic!("the docker runtime test needs a Docker daemon (CI has one): {e}"));
    assert!(d.image_present(), "{} is missing: run `rrlab image` first (.ci/run does)", d.image);
    let tmp = tempfile::tempdir().unwrap();
    let (path, calls) = fake_docker(tmp.path());
    let _ = rrlab(&path).args(["down", "dmini"]).output();
    let out = rrlab(&path)
        .args(["up", "--runtime", "docker", "--timeout", "120"])
        .arg(fixture("dmini.clab.yml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ok = out.status.success();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let nodes = containers(&d, "dmini");
    let exec = rrlab(&path)
        .args(["exec", "dmini-worker", "--lab", "dmini", "--", "ip", "-br", "link", "show", "eth1"])
        .output()
        .unwrap();
    let down = rrlab(&path).args(["down", "dmini"]).output().unwrap();
    assert!(ok, "rrlab up failed:\n{stdout}\n{err}");
    assert!(
        stdout.contains("lab dmini up on docker: 4 nodes, 6 BGP sessions Established, 30 pod-to-pod pings OK"),
        "{stdout}"
    );
    // Containers are named like kind's node containers and labelled with their lab.
    assert_eq!(nodes, vec!["dmini-control-plane", "dmini-wan", "dmini-worker", "dmini-worker2"]);
    assert!(exec.status.success() && String::from_utf8_lossy(&exec.stdout).starts_with("eth1"), "{exec:?}");
    assert!(down.status.success(), "{down:?}");
    assert_eq!(containers(&d, "dmini"), Vec::<String>::new());
    let ns: Vec<String> =
        rrlab::runtime::netns::list_netns().into_iter().filter(|n| n.starts_with("rrlab-dmini-")).collect();
    assert_eq!(ns, Vec::<String>::new());
    assert!(!Path::new("/run/rrlab/dmini").exists());
    // Everything went through the Docker API: the `docker` first on PATH was never run.
    let called = std::fs::read_to_string(&calls).unwrap_or_default();
    assert_eq!(called, "", "rrlab ran the docker CLI");
}

#[test]
fn the_fake_docker_records_calls() {
    // The check above is only as good as its fake: a `docker` run from that PATH is recorded.
    let tmp = tempfile::tempdir().unwrap();
    let (path, calls) = fake_docker(tmp.path());
    let st = Command::new("sh").args(["-c", "docker ps -a"]).env("PATH", &path).status().unwrap();
    assert!(!st.success());
    assert_eq!(std::fs::read_to_string(calls).unwrap(), "docker ps -a\n");
}
