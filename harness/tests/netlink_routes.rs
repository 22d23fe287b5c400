//! The twin reads a node's FIB through rtnetlink (`rrlab::runtime::netlink`); it must see exactly what
//! `ip -j route show table main` prints, on a real namespace with the kinds of routes a calico-node has
//! (BIRD's onlink IPIP routes, blackhole blocks, unreachable, metrics, scope link with src and realm, a
//! default). Needs root; fails loudly without it.

use rrlab::observe::parse_ip_route_json;
use rrlab::runtime::netlink::RouteReader;

fn sh(cmd: &str) {
    let out = std::process::Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(out.status.success(), "`{cmd}` failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Removes a scratch namespace when dropped.
struct Del(String);
impl Drop for Del {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A new namespace `<prefix>-<pid>`, removed when the guard drops.
fn scratch_netns(prefix: &str) -> (String, Del) {
    let ns = format!("{prefix}-{}", std::process::id());
    sh(&format!("ip netns add {ns}"));
    (ns.clone(), Del(ns))
}

#[test]
fn netlink_reads_the_main_table_as_ip_prints_it() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root (network namespaces); CI runs it as root");
    let (ns, _del) = scratch_netns("rrlab-nltest");
    for c in [
        "ip link set lo up",
        "ip link add v0 type veth peer name v1",
        "ip link set v0 up",
        "ip link set v1 up",
        "ip addr add 10.9.0.1/24 dev v0",
        "ip route add 172.16.3.0/26 via 10.0.2.3 dev v0 proto bird onlink",
        "ip route add blackhole 172.16.1.0/26 proto bird",
        "ip route add unreachable 172.16.8.0/24 proto static",
        "ip route add 10.50.0.0/16 via 10.9.0.2 metric 100",
        "ip route add default via 10.9.0.2",
        "ip route add 10.60.0.0/16 dev v0 scope link src 10.9.0.1 realm 1",
        "ip route add 10.70.0.0/16 via 10.9.0.2 table 201",
    ] {
        sh(&format!("ip netns exec {ns} {c}"));
    }
    let out =
        std::process::Command::new("ip").args(["-n", &ns, "-j", "route", "show", "table", "main"]).output().unwrap();
    let before = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let mut want = parse_ip_route_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let mut got =
        RouteReader::open(std::path::Path::new(&format!("/var/run/netns/{ns}"))).unwrap().main_table().unwrap();
    want.sort_by_key(|r| r.to_string());
    got.sort_by_key(|r| r.to_string());
    assert_eq!(want.len(), 7, "{want:#?}");
    pretty_assertions::assert_eq!(got, want);
    // This thread's namespace was never changed (the reader entered it in a thread of its own).
    assert_eq!(std::fs::read_link("/proc/thread-self/ns/net").unwrap(), before);
}

#[test]
fn the_route_monitor_stamps_birds_main_table_changes_when_the_kernel_announces_them() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root (network namespaces); CI runs it as root");
    let (ns, _del) = scratch_netns("rrlab-nlmon");
    sh(&format!("ip -n {ns} link set lo up && ip -n {ns} link add v0 type veth peer name v1 && ip -n {ns} link set v0 up && ip -n {ns} link set v1 up"));
    let path = std::path::PathBuf::from(format!("/var/run/netns/{ns}"));
    let mon = rrlab::runtime::netlink::RouteMonitor::start(&[("n1".to_string(), path)]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    // Not BIRD's, or not the main table: nothing is stamped.
    sh(&format!("ip -n {ns} route add 10.70.0.0/16 dev v0 proto static"));
    sh(&format!("ip -n {ns} route add 10.71.0.0/16 dev v0 proto bird table 201"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(mon.last_change("n1"), None);
    let before = std::time::SystemTime::now();
    sh(&format!("ip -n {ns} route add 172.16.3.0/26 via 10.0.2.3 dev v0 proto bird onlink"));
    let after = std::time::SystemTime::now();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (at, n) = mon.last_change("n1").expect("the BIRD route was seen");
    assert_eq!(n, 1);
    assert!(at >= before, "stamped before the change: {at:?} < {before:?}");
    // Stamped when announced (within 50 ms of the `ip` process returning), not when the test looked.
    assert!(at <= after + std::time::Duration::from_millis(50), "stamped late: {at:?} vs {after:?}");
    sh(&format!("ip -n {ns} route del 172.16.3.0/26"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(mon.last_change("n1").map(|(_, n)| n), Some(2));
    assert_eq!(mon.latest(), mon.last_change("n1").map(|(t, _)| t));
}
