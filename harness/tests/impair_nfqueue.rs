//! The userspace impairment path for real (root only: it fails, not skips, without root; CI runs as root):
//! three scratch namespaces a — router — b, `rrlab impaird` in the router on an NFQUEUE queue that the router's
//! forwarded packets are sent to ([`rrlab::impair::queue_rules`] in `rrlab-IMPAIR`), and pings across.
//! Namespaces `rrimp-<pid>-{a,r,b}`, removed (with the daemon) by a guard, also on panic.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rrlab::impair::{queue_rules, Counters, Direction};

const QUEUE: u16 = 7;
const B_ADDR: &str = "10.250.2.2";

fn run(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn must(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "{args:?}: {}\n{}", o.status, String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

struct Lab {
    ns: [String; 3],
    made: Vec<String>,
    daemon: Option<Child>,
    dir: tempfile::TempDir,
}

impl Lab {
    fn a(&self) -> &str {
        &self.ns[0]
    }
    fn r(&self) -> &str {
        &self.ns[1]
    }
    fn b(&self) -> &str {
        &self.ns[2]
    }

    fn exec(&self, ns: &str, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        must(&v)
    }

    fn new() -> Lab {
        let pid = std::process::id();
        let ns = ["a", "r", "b"].map(|s| format!("rrimp-{pid}-{s}"));
        let mut lab = Lab { ns, made: Vec::new(), daemon: None, dir: tempfile::tempdir().unwrap() };
        for n in lab.ns.clone() {
            must(&["ip", "netns", "add", &n]);
            lab.made.push(n);
        }
        let (a, r, b) = (lab.a().to_string(), lab.r().to_string(), lab.b().to_string());
        // Created inside the namespaces: no name is ever taken in the host's.
        must(&["ip", "-n", &r, "link", "add", "ra", "type", "veth", "peer", "name", "a0", "netns", &a]);
        must(&["ip", "-n", &r, "link", "add", "rb", "type", "veth", "peer", "name", "b0", "netns", &b]);
        for (n, dev, addr) in [
            (&a, "a0", "10.250.1.2/24"),
            (&r, "ra", "10.250.1.1/24"),
            (&r, "rb", "10.250.2.1/24"),
            (&b, "b0", "10.250.2.2/24"),
        ] {
            must(&["ip", "-n", n, "addr", "add", addr, "dev", dev]);
            must(&["ip", "-n", n, "link", "set", dev, "up"]);
        }
        for n in [&a, &r, &b] {
            must(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        must(&["ip", "-n", &a, "route", "add", "default", "via", "10.250.1.1"]);
        must(&["ip", "-n", &b, "route", "add", "default", "via", "10.250.2.1"]);
        lab.exec(&r, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        for c in rrlab::wan::setup() {
            let argv: Vec<&str> = c.iter().map(String::as_str).collect();
            lab.exec(&r, &argv);
        }
        lab
    }

    fn counters_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.counters.json"))
    }

    /// Start impaird with `spec` and send `dir` of the router's forwarded packets to its queue.
    fn impair(&mut self, name: &str, spec: &str, dir: Direction) {
        let spec_path = self.dir.path().join(format!("{name}.spec.json"));
        std::fs::write(&spec_path, spec).unwrap();
        let counters = self.counters_path(name);
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", self.r(), env!("CARGO_BIN_EXE_rrlab"), "impaird", "--queue", &QUEUE.to_string()])
            .arg("--spec")
            .arg(&spec_path)
            .arg("--counters")
            .arg(&counters)
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning impaird");
        self.daemon = Some(child);
        let t = Instant::now();
        while !counters.exists() {
            if let Some(st) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("impaird exited ({st}) before binding: {}", self.log(name));
            }
            assert!(t.elapsed() < Duration::from_secs(10), "impaird did not bind in 10s: {}", self.log(name));
            std::thread::sleep(Duration::from_millis(20));
        }
        for c in queue_rules(dir, "ra", "rb", QUEUE) {
            let argv: Vec<&str> = c.iter().map(String::as_str).collect();
            self.exec(self.r(), &argv);
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Heal (the queue rules go), stop impaird, and read its last counters.
    fn heal(&mut self, name: &str) -> Counters {
        for c in rrlab::wan::heal(&[]) {
            let argv: Vec<&str> = c.iter().map(String::as_str).collect();
            self.exec(self.r(), &argv);
        }
        let rules = self.exec(self.r(), &["iptables", "-S", rrlab::wan::IMPAIR_CHAIN]);
        assert!(!rules.contains("NFQUEUE"), "heal left queue rules:\n{rules}");
        let mut child = self.daemon.take().expect("a daemon");
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(t.elapsed() < Duration::from_secs(5), "impaird ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "impaird: {status}: {}", self.log(name));
        let text = std::fs::read_to_string(self.counters_path(name)).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn ping(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", self.a(), "ping", "-n"];
        v.extend_from_slice(args);
        v.push(B_ADDR);
        // ping exits 1 when replies are missing: that is what some phases want.
        let o = run(&v);
        assert!(o.status.code().is_some_and(|c| c <= 1), "{v:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let t = Instant::now();
            while c.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(3) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Only the namespaces this test made (their veths go with them).
        for n in self.made.drain(..) {
            let _ = Command::new("ip").args(["netns", "del", &n]).status();
        }
    }
}

/// The `time=` of every reply line.
fn rtts(ping: &str) -> Vec<f64> {
    ping.lines()
        .filter(|l| !l.contains("DUP!"))
        .filter_map(|l| l.split("time=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect()
}

/// (transmitted, received, duplicates) from ping's summary line.
fn summary(ping: &str) -> (u64, u64, u64) {
    let line = ping.lines().find(|l| l.contains("packets transmitted")).unwrap_or_else(|| panic!("{ping}"));
    let num = |key: &str| -> u64 {
        line.split(',')
            .find(|p| p.contains(key))
            .and_then(|p| p.trim().trim_start_matches('+').split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (num("transmitted"), num("received"), num("duplicates"))
}

fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty());
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
fn impaird_delays_drops_duplicates_reorders_and_corrupts() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "tests/impair_nfqueue.rs needs root (network namespaces, iptables, NFQUEUE): run it as root"
    );
    let started = Instant::now();
    eprintln!("this kernel: {}", rrlab::impair::Path::detect());
    let mut lab = Lab::new();
    // Unimpaired, the path works (and ARP is resolved).
    lab.ping(&["-c", "3", "-i", "0.05", "-W", "1"]);

    // Delay: 20 ms each way, 40 ms round trip.
    lab.impair("delay", r#"{"impairment": {"delay": "20ms"}, "seed": 1}"#, Direction::Both);
    let out = lab.ping(&["-c", "100", "-i", "0.01", "-W", "2"]);
    let c = lab.heal("delay");
    let times = rtts(&out);
    assert_eq!(times.len(), 100, "{out}");
    let m = median(times);
    eprintln!("delay 20ms each way: median RTT {m:.2} ms; counters {c:?}");
    assert!((m - 40.0).abs() <= 2.0, "median RTT {m} ms, want 40 ± 2 ms");
    assert!(c.delayed >= 200 && c.dropped == 0, "{c:?}");

    // Loss: 10% of a→b, 10,000 pings.
    lab.impair("loss", r#"{"impairment": {"loss": "10%"}, "seed": 2}"#, Direction::AtoB);
    let out = lab.ping(&["-q", "-c", "10000", "-i", "0.0005", "-W", "1"]);
    let c = lab.heal("loss");
    let (tx, rx, _) = summary(&out);
    let lost = (tx - rx) as f64 / tx as f64 * 100.0;
    eprintln!("loss 10% a->b: {tx} sent, {rx} received: {lost:.2}% lost; counters {c:?}");
    assert_eq!(tx, 10_000, "{out}");
    assert!((lost - 10.0).abs() <= 1.0, "lost {lost}%, want 10 ± 1");
    assert_eq!(c.seen, 10_000, "only a→b is queued: {c:?}");
    assert_eq!(c.dropped, tx - rx, "{c:?}");

    // Duplicates: 10% of a→b; each duplicated request is answered twice.
    lab.impair("dup", r#"{"impairment": {"duplicate": "10%"}, "seed": 3}"#, Direction::AtoB);
    let out = lab.ping(&["-c", "200", "-i", "0.005", "-W", "1"]);
    let c = lab.heal("dup");
    let (_, rx, dups) = summary(&out);
    let dup_lines = out.lines().filter(|l| l.contains("DUP!")).count() as u64;
    eprintln!("duplicate 10% a->b: {dups} duplicates ({dup_lines} DUP! lines), {rx}/200 received; counters {c:?}");
    assert!(dups > 0 && dup_lines == dups, "{out}");
    assert!((5..=40).contains(&dups), "{dups} duplicates of 200 at 10%");
    // ping stops at its 200th reply: a copy of the last request's reply may come after it has gone.
    assert!(dups <= c.duplicated && c.duplicated <= dups + 1, "ping saw {dups}: {c:?}");

    // Reorder: 25% of a→b sent without the 10 ms delay.
    lab.impair("reorder", r#"{"impairment": {"delay": "10ms", "reorder": "25%"}, "seed": 4}"#, Direction::AtoB);
    let out = lab.ping(&["-c", "200", "-i", "0.005", "-W", "1"]);
    let c = lab.heal("reorder");
    let times = rtts(&out);
    let fast = times.iter().filter(|t| **t < 5.0).count();
    eprintln!("reorder 25% a->b (delay 10ms): counters {c:?}; {fast} of {} replies under 5 ms", times.len());
    assert_eq!(times.len(), 200, "{out}");
    assert!(c.reordered > 0 && (20..=80).contains(&c.reordered), "{c:?}");
    assert_eq!(fast as u64, c.reordered, "each reordered request overtakes the delay");
    assert_eq!(c.delayed + c.reordered, c.seen, "{c:?}");

    // Corrupt: 10% of a→b get one bit flipped after the IP header; b's ICMP checksum drops them.
    lab.impair("corrupt", r#"{"impairment": {"corrupt": "10%"}, "seed": 5}"#, Direction::AtoB);
    let out = lab.ping(&["-c", "300", "-i", "0.003", "-W", "1"]);
    let c = lab.heal("corrupt");
    let (tx, rx, _) = summary(&out);
    eprintln!("corrupt 10% a->b: {} of {tx} lost; counters {c:?}", tx - rx);
    assert!(c.corrupted > 0, "{c:?}");
    assert_eq!(tx - rx, c.corrupted, "every corrupted request is lost at b");

    drop(lab);
    eprintln!("impair_nfqueue: {:.1}s", started.elapsed().as_secs_f64());
}
