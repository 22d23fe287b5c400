//! The kind backend's container work through the Docker Engine API (`rrlab::kind::docker_ops`), for real,
//! on a container of the locally built node image: exec with exit codes and separate streams, copying a file
//! in, listing by label, stop/start, and the host's own tools in the container's network namespace (how the
//! kind backend drives the WAN). The same operations the kind backend performs on kind nodes and the WAN
//! container; kind itself cannot run here. Needs root, a Docker daemon and the node image; fails loudly
//! without them.

use rrlab::kind::docker_ops::DockerOp;
use rrlab::kind::plan::PlanStep;
use rrlab::kind::{ProcessRunner, Runner};
use testcontainers::runners::SyncRunner;
use testcontainers::{GenericImage, ImageExt};

fn run(op: DockerOp) -> rrlab::process::Output {
    ProcessRunner.run(&PlanStep::docker("test", op)).expect("the Docker daemon answers")
}

#[test]
fn kind_container_work_goes_through_the_api() {
    let d = rrlab::runtime::docker::Docker::new()
        .unwrap_or_else(|e| panic!("this test needs a Docker daemon (CI has one): {e}"));
    assert!(d.image_present(), "{} is missing: run `rrlab image` first (.ci/run does)", d.image);
    let (name, tag) = d.image.split_once(':').expect("name:tag");
    let label = format!("kind-ops-{}", std::process::id());
    let c = GenericImage::new(name, tag)
        .with_cmd(["sleep", "infinity"])
        .with_network("none")
        .with_label("rrlab.test", &label)
        .start()
        .expect("start a node-image container");
    let id = c.id().to_string();

    // exec: exit code and streams kept apart.
    let o = run(DockerOp::Exec {
        container: id.clone(),
        argv: vec!["sh".into(), "-c".into(), "echo out; echo err >&2; exit 3".into()],
    });
    assert_eq!((o.status, o.stdout.as_str(), o.stderr.as_str()), (Some(3), "out\n", "err\n"));

    // cp: a host file into the container, executable.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("hello");
    std::fs::write(&f, "#!/bin/sh\necho hello from the host\n").unwrap();
    let o = run(DockerOp::CopyInto {
        file: f.display().to_string(),
        container: id.clone(),
        path: "/usr/local/bin/hello".into(),
    });
    assert!(o.success(), "{o:?}");
    let o = run(DockerOp::Exec { container: id.clone(), argv: vec!["/usr/local/bin/hello".into()] });
    assert_eq!(o.stdout, "hello from the host\n");

    // ps by label: exactly this container.
    let o = run(DockerOp::NamesByLabel { label: format!("rrlab.test={label}") });
    assert_eq!(o.stdout.lines().count(), 1, "{o:?}");

    // The host's `ip` in the container's network namespace sees the container's links (network none: lo).
    let o = run(DockerOp::InNetns {
        container: id.clone(),
        argv: vec!["ip".into(), "-o".into(), "link".into(), "show".into()],
    });
    assert!(o.success(), "{o:?}");
    let links: Vec<&str> = o.stdout.lines().filter_map(|l| l.split(": ").nth(1)).collect();
    assert_eq!(links, ["lo"], "{}", o.stdout);

    // stop and start.
    assert!(run(DockerOp::Stop { container: id.clone() }).success());
    let o = run(DockerOp::Exec { container: id.clone(), argv: vec!["true".into()] });
    assert!(!o.success(), "exec in a stopped container must fail: {o:?}");
    assert!(run(DockerOp::Start { container: id.clone() }).success());
    assert!(run(DockerOp::Exec { container: id.clone(), argv: vec!["true".into()] }).success());

    // Errors the daemon reports are failed outputs, named after the equivalent command.
    let o = run(DockerOp::Stop { container: "rrlab-no-such-container".into() });
    assert!(!o.success() && o.stderr.contains("docker stop rrlab-no-such-container"), "{o:?}");
}
