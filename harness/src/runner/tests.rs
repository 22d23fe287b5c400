//! The one step runner over [`FakeBackend`]: every harness action and expectation kind, probes, Ctrl-C, a
//! failing command, a failing teardown, a panic, kept labs. No root, no lab.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::*;
use crate::backend::fake::FakeBackend;
use crate::process::Output;
use crate::runbook::lab::ProbeStats;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn sample(name: &str) -> String {
    let p = repo().join("harness/src/observe/testdata").join(name);
    let t = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    t.lines().filter(|l| !l.starts_with("# source:")).map(|l| format!("{l}\n")).collect()
}

/// hybrid-rr as a fake lab, two pods per node.
fn fake() -> FakeBackend {
    let topo = crate::model::topology::load(&repo().join("topologies/hybrid-rr.clab.yml")).unwrap();
    FakeBackend::new(topo, 2)
}

/// A runbook on hybrid-rr from its steps (YAML list items, indented as `steps:` entries).
fn runbook(steps: &str, probes: &str) -> Runbook {
    let text = format!(
        "name: fake\ntopology: {}\ndefaults:\n  timeout: 300ms\n  poll: 10ms\n{probes}steps:\n{steps}",
        repo().join("topologies/hybrid-rr.clab.yml").display()
    );
    crate::runbook::parse(Path::new("fake.yaml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

struct Seen(std::sync::Mutex<Vec<String>>);

impl Events for Seen {
    fn step_finished(&self, r: &StepReport) {
        self.0.lock().unwrap().push(report::step_line(r));
    }
}

fn seen() -> Seen {
    Seen(std::sync::Mutex::new(Vec::new()))
}

static NEVER: AtomicBool = AtomicBool::new(false);

fn run(b: FakeBackend, rb: &Runbook) -> (RunResult, Vec<String>) {
    let rec = b.recorder();
    let r = run_on(Box::new(b), rb, &RunOptions::default(), Duration::ZERO, &seen(), &NEVER).unwrap();
    (r, rec.calls())
}

fn failure(r: &RunResult, step: usize) -> String {
    report::failure_text(&r.steps[step - 1])
}

#[test]
fn every_harness_action_reaches_the_backend() {
    let b = fake();
    // eth1 carries a qdisc of rrlab's, eth2 only the kernel's default: heal removes the first only.
    b.reply("exec the WAN: tc qdisc show dev eth1", Output::ok("qdisc tbf 5252: root refcnt 2 rate 512Kbit\n"));
    b.reply("exec the WAN: tc qdisc show dev eth2", Output::ok("qdisc noqueue 0: root refcnt 2\n"));
    let rb = runbook(
        "  - {name: type, run: 'calicoctl get nodes'}\n  - {name: cut, wan: partition site-a site-b}\n  - {name: one way, wan: partition site-a -> site-b}\n  - {name: lossy, wan: loss 5%}\n  - {name: slow, wan: delay 40ms}\n  - {name: thin, wan: rate 512kbit}\n  - {name: heal, wan: heal}\n  - {name: a, stop_bird: hybrid-worker3}\n  - {name: b, start_bird: hybrid-worker3}\n  - {name: c, stop_node: hybrid-worker4}\n  - {name: d, start_node: hybrid-worker4}\n  - {name: e, restart_calico_node: hybrid-worker5}\n  - {name: f, wait: 20ms}\n  - {name: g, freeze_node: hybrid-worker6}\n  - {name: h, thaw_node: hybrid-worker6}\n  - {name: i, link_down: 'hybrid-worker7:eth1'}\n  - {name: j, link_up: 'hybrid-worker7:eth1'}\n  - {name: k, wan: {flap: {between: [site-a, site-b], down: 10ms, up: 10ms, times: 2}}}\n",
        "",
    );
    let (r, calls) = run(b, &rb);
    assert!(r.passed(), "{:#?}", r.steps.iter().map(report::failure_text).collect::<Vec<_>>());
    // Every step reads the WAN's counters when it starts and when it ends (its report's WAN traffic).
    let reads = calls.iter().filter(|c| *c == "exec the WAN: iptables-save -c -t filter").count();
    assert!(reads >= 2 * rb.steps.len(), "{reads} counter reads for {} steps", rb.steps.len());
    assert!(r.steps.iter().all(|s| s.wan.is_some()), "every step of a lab with a WAN reports its WAN traffic");
    let wan: Vec<&str> = calls
        .iter()
        .filter_map(|c| c.strip_prefix("exec the WAN: "))
        .filter(|c| *c != "iptables-save -c -t filter")
        .collect();
    // Delay: netem where this kernel has it, else one impaird per WAN interface behind NFQUEUE rules (the old
    // ones removed first); heal stops the impairds before it reads the qdiscs.
    let topo = crate::model::topology::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies/hybrid-rr.clab.yml"),
    )
    .unwrap();
    let line = |c: &Vec<String>| c.join(" ");
    let mut delay: Vec<String> = Vec::new();
    if crate::impair::Path::host() == crate::impair::Path::Netem {
        delay.extend(wan::delay(&topo, 40).iter().map(line));
    } else {
        let bin = crate::runtime::rrlab_binary().unwrap().display().to_string();
        let imp = crate::impair::Impairment { delay: std::time::Duration::from_millis(40), ..Default::default() };
        delay.extend(wan::queue_rules_off(&topo).iter().map(line));
        delay.push(line(&wan::impaird_stop("hybrid-rr")));
        delay.extend([5252, 5253].map(|q| line(&wan::impaird_start(&bin, "hybrid-rr", q, &imp))));
        delay.extend(wan::queue_rules(&topo).iter().map(line));
    }
    let mut want: Vec<String> = [
        "iptables -I rrlab-IMPAIR -s 10.0.1.0/24 -d 10.0.2.0/24 -m comment --comment partition -j DROP",
        "iptables -I rrlab-IMPAIR -s 10.0.2.0/24 -d 10.0.1.0/24 -m comment --comment partition -j DROP",
        "iptables -I rrlab-IMPAIR -s 10.0.1.0/24 -d 10.0.2.0/24 -m comment --comment partition -j DROP",
        "iptables -I rrlab-IMPAIR -m statistic --mode random --probability 0.0500 -m comment --comment loss -j DROP",
    ]
    .map(String::from)
    .to_vec();
    want.extend(delay);
    want.extend(
        [
            "tc qdisc replace dev eth1 root handle 5252: tbf rate 512kbit burst 32kbit latency 400ms",
            "tc qdisc replace dev eth2 root handle 5252: tbf rate 512kbit burst 32kbit latency 400ms",
        ]
        .map(String::from),
    );
    want.extend(
        [
            "tc qdisc show dev eth1",
            "tc qdisc show dev eth2",
            "iptables -F rrlab-IMPAIR",
            "tc qdisc del dev eth1 root handle 5252:",
        ]
        .map(String::from),
    );
    // Heal flushes the queue rules before it stops their daemons (a queue without its daemon drops).
    want.push(line(&wan::impaird_stop("hybrid-rr")));
    // The flap: the partition inserted and deleted again, twice; nothing else on the WAN changes.
    for _ in 0..2 {
        for op in ["-I", "-D"] {
            for (s, d) in [("10.0.1.0/24", "10.0.2.0/24"), ("10.0.2.0/24", "10.0.1.0/24")] {
                want.push(format!("iptables {op} rrlab-IMPAIR -s {s} -d {d} -m comment --comment partition -j DROP"));
            }
        }
    }
    assert_eq!(wan, want);
    let actions: Vec<&str> = calls
        .iter()
        .filter(|c| c.starts_with("action ") || c.starts_with("run ") || c.starts_with("link "))
        .map(String::as_str)
        .collect();
    assert_eq!(
        actions,
        [
            "run hybrid: calicoctl get nodes",
            "action hybrid-worker3: stop BIRD",
            "action hybrid-worker3: start BIRD",
            "action hybrid-worker4: stop node",
            "action hybrid-worker4: start node",
            "action hybrid-worker5: restart calico-node",
            "action hybrid-worker6: freeze node",
            "action hybrid-worker6: thaw node",
            "link hybrid-worker7:eth1 down",
            "link hybrid-worker7:eth1 up",
        ]
    );
    // Probes are marked at every step; the lab is torn down last.
    assert_eq!(calls.iter().filter(|c| *c == "probes: mark").count(), 18);
    assert_eq!(calls.last().unwrap(), "teardown");
    assert_eq!(r.teardown, Some(Ok(vec!["lab hybrid-rr".to_string()])));
}

#[test]
fn a_failing_action_fails_its_step_with_the_backends_message() {
    let b = fake();
    b.reply("action hybrid-worker3: stop BIRD", Output::failed(1, "sv: cannot stop bird"));
    b.reply(
        "exec the WAN: iptables -I rrlab-IMPAIR",
        Output::failed(4, "iptables: No chain/target/match by that name."),
    );
    let rb = runbook(
        "  - {name: a, stop_bird: hybrid-worker3}\n  - {name: b, wan: partition site-a site-b}\n  - {name: c, stop_bird: nowhere}\n  - {name: d}\n",
        "",
    );
    let (r, _) = run(b, &rb);
    assert!(failure(&r, 1).contains("stop BIRD on hybrid-worker3: sv: cannot stop bird"), "{}", failure(&r, 1));
    assert!(failure(&r, 2).contains("No chain/target/match by that name"), "{}", failure(&r, 2));
    assert!(failure(&r, 3).contains("no node \"nowhere\" in lab hybrid-rr"), "{}", failure(&r, 3));
    assert!(r.steps[3].passed);
}

#[test]
fn an_impairment_that_cannot_start_fails_its_step_and_installs_no_queue_rule() {
    // Seeded fault: impaird does not come up on the WAN (its start script exits 1 with impaird's log).
    let b = fake();
    b.reply(
        "exec the WAN: sh -c rm -f /tmp/rrlab-hybrid-rr-impair-5252",
        Output::failed(1, "rrlab impaird did not start: NFQUEUE queue 5252: bind: Operation not permitted"),
    );
    let rb = runbook("  - {name: jittery, wan: {delay: 40ms, jitter: 5ms}}\n  - {name: d}\n", "");
    let (r, calls) = run(b, &rb);
    assert!(failure(&r, 1).contains("rrlab impaird did not start: NFQUEUE queue 5252"), "{}", failure(&r, 1));
    assert!(r.steps[1].passed);
    // Without a daemon the queue rules would drop every packet: none was added.
    assert!(!calls.iter().any(|c| c.contains("-A rrlab-IMPAIR") && c.contains("NFQUEUE")), "{calls:#?}");
}

/// What a healthy fake hybrid-worker3 answers: observations in the real tools' formats.
fn healthy() -> FakeBackend {
    let b = fake();
    b.reply(
        "bird hybrid-worker3: show protocols",
        Output::ok("BIRD 1.6.8 ready.\nname     proto    table    state  since       info\nkernel1  Kernel   master   up     13:29:47    \nNode_10_99_0_1 BGP      master   up     13:29:49    Established   \n"),
    );
    b.reply("bird hybrid-worker3: show route all", Output::ok(sample("bird-b-show-route-all.txt")));
    b.reply("calico-node on hybrid-worker3: ip -j route show table main", Output::ok(sample("ip-b-j-route.json")));
    b.reply("calico-node on hybrid-worker3: ipset list", Output::ok(sample("ipset-b-list.txt")));
    b.reply("calico-node on hybrid-worker3: iptables-nft-save -c", Output::ok(sample("iptables-save-c-b.txt")));
    b.reply("file hybrid-worker3: /etc/calico/confd/config/bird.cfg", Output::ok(sample("a.cfg")));
    b.reply("file hybrid-worker3: /etc/calico/confd/config/bird_", Output::ok("# other\n"));
    b.reply("ping -c 1 -W 1", Output::ok(sample("ping-ok.txt")));
    b.reply("exec the WAN: iptables-save -c -t filter", Output::ok(crate::kind::backend::tests::WAN_SAVE.to_string()));
    b.reply("run hybrid: calicoctl get nodez", Output::failed(1, "Invalid resource type: nodez"));
    b.set_probe(
        "p",
        ProbeStats { sent: 100, received: 97, longest_outage: Duration::from_millis(30), ..Default::default() },
    );
    b
}

const EVERY_KIND: &str = "  - name: all hold
    expect:
      - sessions: {on: hybrid-worker3, peers: [10.99.0.1 node specific Established]}
      - rib: {on: hybrid-worker3, prefix: 172.16.9.0/24, next_hop: 10.99.0.1}
      - fib: {on: hybrid-worker3, contains: ['172.16.3.0/26 via 10.99.1.3 dev tunl0 proto bird onlink']}
      - reach: {from: hybrid-worker3, to: hybrid-worker7}
      - ipset: {on: hybrid-worker3, set: cali40all-hosts-net, contains: [10.99.1.3]}
      - iptables: {on: hybrid-worker3, chain: cali-INPUT, rule: Allow IPIP packets from Calico hosts, packets: '>= 3'}
      - config: {on: hybrid-worker3, file: bird.cfg, contains: ['neighbor 10.99.0.2 as 64512;']}
      - loss: {probe: p, max_lost: 5%}
      - converge: 30s
      - wan: {bgp_packets: 0}
  - name: a command that fails as expected
    run: calicoctl get nodez
    expect:
      - fails: Invalid resource type
";

const SEEDED: &str = "  - name: sessions
    expect: [{sessions: {on: hybrid-worker3, peers: [10.9.9.9 global Established]}}]
  - name: rib
    expect: [{rib: {on: hybrid-worker3, prefix: 172.16.9.0/24, next_hop: 10.9.9.9}}]
  - name: fib
    expect: [{fib: {on: hybrid-worker3, contains: ['172.16.250.0/26 via 10.0.2.9 dev tunl0 proto bird onlink']}}]
  - name: reach
    expect: [{reach: {from: hybrid-worker3, to: hybrid-worker7, result: fail}}]
  - name: ipset
    expect: [{ipset: {on: hybrid-worker3, set: cali40all-hosts-net, contains: [10.99.9.9]}}]
  - name: iptables
    expect: [{iptables: {on: hybrid-worker3, chain: cali-INPUT, rule: Allow IPIP packets from Calico hosts, packets: increases}}]
  - name: config
    expect: [{config: {on: hybrid-worker3, file: bird.cfg, contains: ['neighbor 10.9.9.9 as 64512;']}}]
  - name: fails
    run: calicoctl get nodes
    expect: [{fails: already has a value}]
  - name: loss
    expect: [{loss: {probe: p, max_lost: 0}}]
  - name: converge
    expect: [{sessions: {on: hybrid-worker3, peers: [10.9.9.9 global Established]}}, {converge: 10ms}]
  - name: wan
    expect: [{wan: {bgp_packets: '>= 1'}}]
  - name: a command that fails unexpectedly
    run: calicoctl get nodez
";

const PROBE: &str = "probes:\n  - {name: p, from: hybrid-worker3, to: hybrid-worker7, rate: 100}\n";

fn b_node_pod_ip(node: &str) -> String {
    fake().node(node).pods[0].ip.to_string()
}

#[test]
fn every_expectation_kind_holds_through_the_seam() {
    let (r, calls) = run(healthy(), &runbook(EVERY_KIND, PROBE));
    for (i, s) in r.steps.iter().enumerate() {
        assert!(s.passed, "step {}: {}", i + 1, report::failure_text(s));
    }
    assert!(r.steps[0].converge.is_some());
    assert_eq!(calls[0], "probes: start p");
    // Observations went through the seam as data: BIRD queries, calico-node commands, pods' pings, the WAN.
    for want in [
        "bird hybrid-worker3: show protocols",
        "bird hybrid-worker3: show route all",
        "exec calico-node on hybrid-worker3: ip -j route show table main",
        "exec calico-node on hybrid-worker3: ipset list",
        "exec calico-node on hybrid-worker3: iptables-nft-save -c",
        "file hybrid-worker3: /etc/calico/confd/config/bird.cfg",
        "exec the WAN: iptables-save -c -t filter",
    ] {
        assert!(calls.iter().any(|c| c == want), "no call {want:?} in {calls:#?}");
    }
    let dst = &b_node_pod_ip("hybrid-worker7");
    assert!(calls.iter().any(|c| c == &format!("exec pod hybrid-worker3-p1: ping -c 1 -W 1 {dst}")), "{calls:#?}");
}

#[test]
fn every_expectation_kind_fails_on_its_seeded_fault() {
    let b = healthy();
    let (r, calls) = run(b, &runbook(SEEDED, PROBE));
    let want = [
        "10.9.9.9  global  Established",
        "next_hop: expected 10.9.9.9, found 10.99.0.1",
        "172.16.250.0/26",
        "expected every ping to fail",
        "10.99.9.9",
        "packets: expected increases",
        "missing: neighbor 10.9.9.9 as 64512;",
        "found none: every command succeeded",
        "p: lost 3",
        "converge within",
        "bgp_packets: expected >= 1 during the step, found 0 (78 -> 78)",
        "Invalid resource type: nodez",
    ];
    assert_eq!(r.steps.len(), want.len());
    for (i, w) in want.iter().enumerate() {
        let t = failure(&r, i + 1);
        assert!(!r.steps[i].passed, "step {} passed", i + 1);
        assert!(t.contains(w), "step {}: {w:?} not in:\n{t}", i + 1);
        // A failing step carries the lab's dump, taken before the teardown.
        assert!(r.steps[i].dump.as_deref().is_some_and(|d| d.contains("=== hybrid-worker3")), "step {}", i + 1);
    }
    assert_eq!(calls.last().unwrap(), "teardown");
    assert!(!r.passed());
}

#[test]
fn ctrl_c_stops_the_run_and_tears_the_lab_down() {
    static CTRL_C: AtomicBool = AtomicBool::new(false);
    let mut b = fake();
    b.interrupt = Some(("run hybrid: kubectl label".into(), &CTRL_C));
    let rec = b.recorder();
    let rb = runbook(
        "  - {name: one, run: 'calicoctl get nodes'}\n  - name: two\n    run: kubectl label node hybrid-worker3 a=b\n    expect: [{sessions: {on: hybrid-worker3, peers: [10.9.9.9 global Established]}}]\n    timeout: 30s\n  - {name: three, run: 'calicoctl get bgppeers'}\n",
        "",
    );
    let t = std::time::Instant::now();
    let e = run_on(Box::new(b), &rb, &RunOptions::default(), Duration::ZERO, &seen(), &CTRL_C).unwrap_err();
    assert!(matches!(e, RunError::Interrupted { step: 2 }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(20), "the wait did not stop at Ctrl-C");
    let calls = rec.calls();
    assert_eq!(calls.last().unwrap(), "teardown");
    assert!(!calls.iter().any(|c| c.contains("bgppeers")), "step 3 ran after Ctrl-C");
}

#[test]
fn a_failing_command_fails_its_step_and_the_run_goes_on() {
    let b = fake();
    b.reply("run hybrid: calicoctl apply", Output::failed(1, "Failed to execute command: error with field asNumber"));
    let rb = runbook(
        "  - name: bad\n    run: |\n      calicoctl get nodes\n      calicoctl apply -f peers.yaml\n      calicoctl get bgppeers\n  - {name: next, run: 'calicoctl get nodes'}\n",
        "",
    );
    let (r, calls) = run(b, &rb);
    let t = failure(&r, 1);
    assert!(t.contains("every command succeeds") && t.contains("error with field asNumber"), "{t}");
    assert!(!calls.iter().any(|c| c.contains("get bgppeers")), "the script went on after its failing line");
    assert!(r.steps[1].passed);
}

#[test]
fn a_failing_teardown_fails_the_run() {
    let mut b = fake();
    b.teardown_error = Some("containerlab destroy: cleanup cannot be used with node-filter".into());
    let (r, _) = run(b, &runbook("  - {name: check}\n", ""));
    assert!(r.steps[0].passed);
    assert_eq!(r.teardown, Some(Err("containerlab destroy: cleanup cannot be used with node-filter".into())));
    assert!(!r.passed());
}

#[test]
fn a_panic_still_tears_the_lab_down() {
    struct Boom;
    impl Events for Boom {
        fn step_finished(&self, _: &StepReport) {
            panic!("reporter bug");
        }
    }
    let b = fake();
    let rec = b.recorder();
    let rb = runbook("  - {name: check}\n", "");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_on(Box::new(b), &rb, &RunOptions::default(), Duration::ZERO, &Boom, &NEVER)
    }));
    assert!(r.is_err());
    assert_eq!(rec.calls().last().unwrap(), "teardown");
}

#[test]
fn kept_labs_are_not_torn_down() {
    let rb = runbook(
        "  - name: fails\n    expect: [{sessions: {on: hybrid-worker3, peers: [10.9.9.9 global Established]}}]\n",
        "",
    );
    let b = fake();
    let rec = b.recorder();
    let keep = RunOptions { keep_on_failure: true, ..RunOptions::default() };
    let r = run_on(Box::new(b), &rb, &keep, Duration::ZERO, &seen(), &NEVER).unwrap();
    assert_eq!(r.teardown, None);
    assert!(!rec.calls().contains(&"teardown".to_string()));
    // A run that passed is torn down even with keep_on_failure.
    let b = fake();
    let rec = b.recorder();
    run_on(Box::new(b), &runbook("  - {name: ok}\n", ""), &keep, Duration::ZERO, &seen(), &NEVER).unwrap();
    assert_eq!(rec.calls().last().unwrap(), "teardown");
}

#[test]
fn step_timeouts_scale_with_the_backend() {
    let mut b = fake();
    b.timeout_scale = 4.0;
    let rb = runbook("  - name: never\n    expect: [{sessions: {on: hybrid-worker3, peers: [10.9.9.9 global Established]}}]\n    timeout: 100ms\n", "");
    let (r, _) = run(b, &rb);
    assert!(!r.steps[0].passed);
    assert!(r.steps[0].duration >= Duration::from_millis(400), "{:?}", r.steps[0].duration);
}

#[test]
fn an_impairment_towards_a_site_replaces_only_that_links_daemon_and_rule() {
    let b = fake();
    let rb = runbook("  - {name: one way, wan: {toward: site-b, delay: 40ms}}\n  - {name: lifted, wan: {toward: site-b, delay: 0ms}}\n", "");
    let (r, calls) = run(b, &rb);
    assert!(r.passed(), "{:#?}", r.steps.iter().map(report::failure_text).collect::<Vec<_>>());
    let wan: Vec<String> = calls
        .iter()
        .filter_map(|c| c.strip_prefix("exec the WAN: "))
        .filter(|c| *c != "iptables-save -c -t filter")
        .map(String::from)
        .collect();
    let bin = crate::runtime::rrlab_binary().unwrap().display().to_string();
    let imp = crate::impair::Impairment { delay: std::time::Duration::from_millis(40), ..Default::default() };
    let rule = "iptables -A rrlab-IMPAIR -o eth2 -m comment --comment impair -j NFQUEUE --queue-num 5253";
    let off = format!(
        "sh -c {}",
        crate::process::shell_quote(&format!("{} 2>/dev/null; true", rule.replace(" -A ", " -D ")))
    );
    let stop = wan::impaird_stop_queue("hybrid-rr", 5253).join(" ");
    let start = wan::impaird_start(&bin, "hybrid-rr", 5253, &imp).join(" ");
    // eth2 (towards site-b) only, queue 5253; lifting it removes that link's rule and daemon and starts nothing.
    assert_eq!(wan.len(), 6, "{wan:#?}");
    assert_eq!(wan[1], stop);
    assert_eq!(wan[2], start);
    assert_eq!(wan[3], rule);
    assert_eq!(wan[4..], [wan[0].clone(), stop.clone()]);
    assert!(wan[0].contains("-D rrlab-IMPAIR -o eth2") && wan[0].contains("--queue-num 5253"), "{}: {off}", wan[0]);
}
