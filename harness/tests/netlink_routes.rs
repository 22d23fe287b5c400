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

#[test]
fn route_events_name_the_kernel_tables_prefixes_and_flag_underlay_changes_only() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root (network namespaces); CI runs it as root");
    let (ns, _del) = scratch_netns("rrlab-nlev");
    sh(&format!("ip -n {ns} link set lo up && ip -n {ns} link add v0 type veth peer name v1 && ip -n {ns} link set v0 up && ip -n {ns} link set v1 up"));
    let table = rrlab::twin::render::TWIN_KERNEL_TABLE;
    let path = format!("/var/run/netns/{ns}");
    // The agent subscribes inside its node: here a thread that entered the scratch namespace.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(Vec<String>, bool)>();
    let t = std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        // SAFETY: a valid namespace descriptor; only this thread changes namespace.
        assert_eq!(unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) }, 0);
        let mut ev = rrlab::runtime::netlink::RouteEvents::subscribe().unwrap();
        // At first the underlay counts as changed (the agent mirrors it once), then not until it changes.
        assert!(ev.take_underlay_changed());
        assert!(!ev.take_underlay_changed());
        done_tx.send((Vec::new(), false)).unwrap();
        while let Ok(cmd) = rx.recv() {
            if cmd == "stop" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            let changed = ev.changed(table).expect("no events lost");
            done_tx
                .send((changed.iter().map(|p| format!("{}/{}", p.addr, p.len)).collect(), ev.take_underlay_changed()))
                .unwrap();
        }
    });
    done_rx.recv().unwrap();
    let step = |cmd: &str| {
        sh(&format!("ip -n {ns} {cmd}"));
        tx.send(cmd.to_string()).unwrap();
        done_rx.recv().unwrap()
    };
    // BIRD's kernel table: its prefixes, not the underlay.
    assert_eq!(
        step(&format!("route add 172.16.3.0/26 via 10.0.2.3 dev v0 proto bird onlink table {table}")),
        (vec!["172.16.3.0/26".to_string()], false)
    );
    // The agent's own routes in main (proto bird): neither.
    assert_eq!(step("route add 172.16.3.0/26 via 10.0.2.3 dev v0 proto bird onlink"), (vec![], false));
    // The node's underlay (a route with a gateway, not BIRD's): flagged.
    assert_eq!(step("route add 10.2.0.0/24 via 10.0.2.1 dev v0 onlink proto static"), (vec![], true));
    assert_eq!(step(&format!("route del 172.16.3.0/26 table {table}")), (vec!["172.16.3.0/26".to_string()], false));
    tx.send("stop".into()).unwrap();
    t.join().unwrap();
}
