//! The docker runtime's node image, `rrlab/node:<recipe hash>` (built locally by `rrlab image`, never pulled),
//! started with testcontainers' sync runner: it runs BIRD 1.6.8, which answers on its control socket, and has
//! the tools the agent drives (ip, ipset, iptables-save). Needs a Docker daemon with the image; fails loudly
//! without them.

use std::time::{Duration, Instant};

use testcontainers::core::ExecCommand;
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, GenericImage, ImageExt};

/// (exit code, stdout, stderr) of `sh -c script` in the container.
fn sh(c: &Container<GenericImage>, script: &str) -> (i64, String, String) {
    let mut r = c.exec(ExecCommand::new(["sh", "-c", script])).expect("exec");
    let out = String::from_utf8_lossy(&r.stdout_to_vec().expect("stdout")).into_owned();
    let err = String::from_utf8_lossy(&r.stderr_to_vec().expect("stderr")).into_owned();
    // The output ends when the process closes it; its exit code follows shortly.
    let t = Instant::now();
    loop {
        if let Some(code) = r.exit_code().expect("exit code") {
            return (code, out, err);
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no exit code for {script}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn node_image_runs_bird_1_6_8_and_has_the_agents_tools() {
    let d = rrlab::runtime::docker::Docker::new()
        .unwrap_or_else(|e| panic!("the node image test needs a Docker daemon (CI has one): {e}"));
    assert!(d.image_present(), "{} is missing: run `rrlab image` first (.ci/run does)", d.image);
    let (name, tag) = d.image.split_once(':').expect("name:tag");
    // Present locally, so testcontainers creates the container without pulling.
    let c = GenericImage::new(name, tag)
        .with_cmd(["sleep", "infinity"])
        .with_network("none")
        .with_cap_add("NET_ADMIN")
        .with_cap_add("NET_RAW")
        .with_label("rrlab.lab", "node-image-test")
        .start()
        .expect("starting a container of the node image with testcontainers");

    let (code, _, err) = sh(&c, "bird --version");
    assert_eq!(code, 0);
    assert_eq!(err.trim(), "BIRD version 1.6.8");
    // The stock config is removed (the agent writes Calico's).
    assert_eq!(sh(&c, "test -e /etc/bird/bird.conf").0, 1);

    // BIRD starts and answers on its control socket (birdc: Debian's bird 1.6.8 ships birdc, not birdcl).
    let (code, out, err) = sh(
        &c,
        "printf 'router id 10.0.0.1;\\nprotocol device {}\\n' > /tmp/bird.conf \
         && bird -c /tmp/bird.conf -s /tmp/bird.ctl \
         && for i in 1 2 3 4 5 6 7 8 9 10; do [ -S /tmp/bird.ctl ] && break; sleep 0.1; done \
         && birdc -s /tmp/bird.ctl show status",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("BIRD 1.6.8 ready."), "{out}");
    assert!(out.contains("Router ID is 10.0.0.1"), "{out}");
    assert!(out.contains("Daemon is up and running"), "{out}");

    let (code, out, _) = sh(&c, "ip -V && ip -j link show lo");
    assert_eq!(code, 0);
    assert!(out.starts_with("ip utility, iproute2-"), "{out}");
    assert!(out.contains("\"ifname\":\"lo\""), "{out}");

    let (code, out, err) = sh(
        &c,
        "ipset version && ipset create rrlab-test hash:ip && ipset add rrlab-test 10.0.0.9 && ipset list rrlab-test",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ipset v7."), "{out}");
    assert!(out.contains("10.0.0.9"), "{out}");

    let (code, out, err) =
        sh(&c, "iptables -N rrlab-TEST && iptables -A rrlab-TEST -j RETURN && iptables-save -t filter");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(":rrlab-TEST - [0:0]") && out.contains("-A rrlab-TEST -j RETURN"), "{out}");

    for tool in ["ping", "ps", "tcpdump"] {
        assert_eq!(sh(&c, &format!("command -v {tool}")).0, 0, "{tool} missing");
    }
}

/// rrlab's own exec (the runtime's `exec`) on a container of the image: stdout and stderr apart, the exit code
/// as the status, a missing executable an error status rather than a hang.
#[test]
fn runtime_exec_keeps_streams_apart_and_reports_exit_codes() {
    let d = rrlab::runtime::docker::Docker::new()
        .unwrap_or_else(|e| panic!("the node image test needs a Docker daemon (CI has one): {e}"));
    let (name, tag) = d.image.split_once(':').expect("name:tag");
    let c = GenericImage::new(name, tag)
        .with_cmd(["sleep", "infinity"])
        .with_network("none")
        .with_label("rrlab.lab", "node-image-test")
        .start()
        .expect("starting a container of the node image with testcontainers");
    let exec = |argv: &[&str]| rrlab::runtime::docker::block_on(d.exec_async(c.id(), argv)).expect("exec");
    let o = exec(&["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    let o = exec(&["true"]);
    assert!(o.status.success());
    let big = exec(&["sh", "-c", "seq 1 100000"]);
    assert_eq!(String::from_utf8_lossy(&big.stdout).lines().count(), 100000);
    let o = exec(&["no-such-command"]);
    assert!(!o.status.success(), "{o:?}");
}
