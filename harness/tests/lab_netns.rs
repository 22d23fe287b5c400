//! The lab runtime on `netns`, for real: BIRD 1.6.8 per node, the agent, userspace tunl0, pods, the WAN.
//! Needs root (CI runs as root); fails loudly without it.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

use rrlab::lab::{self, converge, LabState};
use rrlab::observe::parse_ip_route_json;
use rrlab::runtime::netns::list_netns;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/labs").join(name)
}

fn rrlab() -> Command {
    let mut c = Command::cargo_bin("rrlab").unwrap();
    c.env("RRLAB_BIN", env!("CARGO_BIN_EXE_rrlab"));
    c
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the lab tests need root (network namespaces, veths, iptables); CI runs them as root"
    );
}

/// Everything a lab leaves on the host: namespaces, processes in them, veths named by rrlab, state.
fn leftovers(lab: &str) -> Vec<String> {
    let mut v: Vec<String> = list_netns()
        .into_iter()
        .filter(|n| n.starts_with(&format!("rrlab-{lab}-")))
        .map(|n| format!("netns {n}"))
        .collect();
    if Path::new("/run/rrlab").join(lab).exists() {
        v.push(format!("state dir /run/rrlab/{lab}"));
    }
    let ps = Command::new("pgrep").args(["-af", &format!("/run/rrlab/{lab}/")]).output().unwrap();
    for l in String::from_utf8_lossy(&ps.stdout).lines() {
        v.push(format!("process {l}"));
    }
    v
}

struct Down(&'static str);
impl Drop for Down {
    fn drop(&mut self) {
        let _ = rrlab().args(["down", self.0]).output();
    }
}

#[test]
fn mini_lab_converges_on_netns_and_down_leaves_nothing() {
    require_root();
    let _d = Down("mini");
    let _ = rrlab().args(["down", "mini"]).output();
    let out =
        rrlab().args(["up", "--runtime", "netns", "--timeout", "120"]).arg(fixture("mini.clab.yml")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "rrlab up failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // 3 nodes in a full mesh: 2 sessions each, all Established; 6 pods, 30 pings.
    assert!(
        stdout.contains("lab mini up on netns: 4 nodes, 6 BGP sessions Established, 30 pod-to-pod pings OK"),
        "{stdout}"
    );

    let state = LabState::load("mini").unwrap();
    let rt = lab::runtime_for(rrlab::runtime::RuntimeKind::Netns).unwrap();
    // Every node's FIB: the other nodes' blocks via their node IP on tunl0, onlink, proto bird.
    let fib = converge::fib(&state, rt.as_ref(), "mini-worker2").unwrap();
    let tunnel: Vec<String> =
        fib.iter().filter(|r| r.dev.as_deref() == Some("tunl0") && r.is_onlink()).map(|r| r.to_string()).collect();
    assert_eq!(tunnel.len(), 2, "{tunnel:?}");
    assert!(
        tunnel.iter().all(|r| r.contains("proto bird") && (r.contains("via 10.30.1.2") || r.contains("via 10.30.1.3"))),
        "{tunnel:?}"
    );
    // calicoctl node status, as the operator sees it.
    let st = rrlab().args(["status", "mini"]).output().unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(text.contains("| 10.30.2.2    | node-to-node mesh | up    |"), "{text}");
    assert_eq!(text.matches("Established").count(), 6, "{text}");
    // Packets between sites are IP protocol 4 on the wire (the WAN counts them).
    let c = rrlab::wan::counters(&rrlab::backend::twin::TwinBackend::attach("mini").unwrap()).unwrap();
    assert!(c.ipip_packets > 0, "no IPIP crossed the WAN: {c:?}");
    assert!(c.bgp_packets > 0, "no BGP crossed the WAN: {c:?}");
    // The WAN delays on this kernel too (userspace NFQUEUE where there is no netem): pod-to-pod RTT across it is
    // twice the one-way delay, ± 2 ms, as the median of 100 pings; healed, the delay is gone and so is impaird.
    {
        use rrlab::backend::{Backend, Target};
        let b = rrlab::backend::twin::TwinBackend::attach("mini").unwrap();
        let nodes = b.nodes();
        let pod_on = |n: &str| nodes.iter().find(|x| x.name == n).and_then(|x| x.pods.first()).cloned().unwrap();
        let (src, dst) = (pod_on("mini-worker"), pod_on("mini-worker2"));
        let rtts = |count: &str| -> Vec<f64> {
            let ip = dst.ip.to_string();
            let o = b.exec(Target::Pod(&src.name), &["ping", "-n", "-c", count, "-i", "0.02", "-W", "2", &ip]).unwrap();
            o.stdout.lines().filter_map(|l| l.split("time=").nth(1)?.split_whitespace().next()?.parse().ok()).collect()
        };
        let median = |mut v: Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let base = median(rtts("20"));
        let out = rrlab().args(["wan", "--lab", "mini", "delay", "20"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "rrlab wan delay failed: {err}");
        let want_path = if rrlab::impair::netem_available() { "netem" } else { "userspace NFQUEUE" };
        assert!(err.contains(want_path), "the path in use is not said: {err}");
        let v = rtts("100");
        assert!(v.len() >= 95, "only {} of 100 pings answered", v.len());
        let m = median(v);
        assert!((m - base - 40.0).abs() <= 2.0, "median RTT {m:.2} ms with 20 ms each way (base {base:.2} ms)");
        let show = rrlab().args(["wan", "--lab", "mini", "show"]).output().unwrap();
        let show = String::from_utf8_lossy(&show.stdout);
        if want_path != "netem" {
            assert_eq!(show.matches("NFQUEUE").count(), 2, "{show}");
            assert_eq!(show.matches("impaird").count(), 2, "{show}");
        }
        let out = rrlab().args(["wan", "--lab", "mini", "heal"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let m = median(rtts("20"));
        assert!(m < base + 5.0, "healed, the RTT is still {m:.2} ms (base {base:.2} ms)");
        let show = rrlab().args(["wan", "--lab", "mini", "show"]).output().unwrap();
        let show = String::from_utf8_lossy(&show.stdout);
        assert!(!show.contains("NFQUEUE") && !show.contains("impaird"), "heal left: {show}");
        let ps = Command::new("pgrep").args(["-af", "rrlab-mini-impair"]).output().unwrap();
        assert!(String::from_utf8_lossy(&ps.stdout).trim().is_empty(), "impaird still runs after heal");
        // Bad input names the field and the value, and changes nothing.
        let out = rrlab().args(["wan", "--lab", "mini", "impair", "delay: 20ms, jitter: 5 parsecs"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("jitter") && err.contains("5 parsecs"), "{err}");
    }
    // Felix's drop rule is there and counts nothing from Calico hosts.
    let ipt = rrlab().args(["exec", "mini-worker", "--lab", "mini", "--", "iptables-save", "-c"]).output().unwrap();
    let ipt = String::from_utf8_lossy(&ipt.stdout);
    assert!(ipt.contains("Drop IPIP packets from non-Calico hosts"), "{ipt}");
    let routes = rrlab().args(["exec", "mini-control-plane", "--", "ip", "-j", "route"]).output().unwrap();
    assert!(parse_ip_route_json(&String::from_utf8_lossy(&routes.stdout))
        .unwrap()
        .iter()
        .any(|r| r.to_string().starts_with("blackhole ")));

    let out = rrlab().args(["down", "mini"]).output().unwrap();
    assert!(out.status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(leftovers("mini"), Vec::<String>::new());
}

#[test]
fn a_failed_up_removes_what_it_made() {
    require_root();
    let _d = Down("broken");
    let out =
        rrlab().args(["up", "--runtime", "netns", "--timeout", "30"]).arg(fixture("broken.clab.yml")).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mtu 70000"), "the error names the failing command: {err}");
    assert_eq!(leftovers("broken"), Vec::<String>::new());
}

#[test]
fn ctrl_c_during_up_leaves_nothing() {
    require_root();
    let _d = Down("hybrid-rr-int");
    // A copy of hybrid-rr under another lab name, so that it does not collide with other tests.
    let dir = tempfile::tempdir().unwrap();
    let topo_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies");
    let clab = std::fs::read_to_string(topo_dir.join("hybrid-rr.clab.yml"))
        .unwrap()
        .replace("name: hybrid-rr", "name: hybrid-rr-int");
    std::fs::write(dir.path().join("hybrid-rr-int.clab.yml"), clab).unwrap();
    std::fs::copy(topo_dir.join("hybrid-rr.kind.yaml"), dir.path().join("hybrid-rr.kind.yaml")).unwrap();
    let mut child =
        rrlab().args(["up", "--runtime", "netns"]).arg(dir.path().join("hybrid-rr-int.clab.yml")).spawn().unwrap();
    // Interrupt once the lab is partly built.
    let t = std::time::Instant::now();
    while !Path::new("/run/rrlab/hybrid-rr-int/lab.json").exists() && t.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(400));
    // SAFETY: signalling our child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let st = child.wait().unwrap();
    assert!(!st.success(), "an interrupted up must fail");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(leftovers("hybrid-rr-int"), Vec::<String>::new());
}
