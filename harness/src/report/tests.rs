use std::collections::BTreeMap;
use std::time::Duration;

use pretty_assertions::assert_eq;

use super::*;
use crate::runbook::tests::sample_lab;
use crate::runbook::{check, parse, Expectation, ProbeStats, StepOutcome};

fn probes() -> BTreeMap<String, ProbeStats> {
    [(
        "a-to-b".to_string(),
        ProbeStats { sent: 312, received: 312, longest_outage: Duration::ZERO, ..Default::default() },
    )]
    .into()
}

fn passed() -> StepReport {
    StepReport {
        runbook: "P1".into(),
        step: "step 3 apply BGPPeers".into(),
        passed: true,
        converge: Some(Duration::from_millis(1420)),
        probes: probes(),
        failures: vec![],
        dump: None,
        duration: Duration::from_millis(3210),
        routes_settled: None,
        wan: None,
        ..Default::default()
    }
}

/// A failed step with a real mismatch from the sample lab (b lacks c's session).
fn failed() -> StepReport {
    let text = "name: t\ntopology: x\nsteps:\n  - name: s\n    expect:\n      - sessions: {on: b, peers: [a node specific Established, c node specific Established]}\n";
    let rb = parse(std::path::Path::new("labs/t.yaml"), text).unwrap();
    let e: &Expectation = &rb.steps[0].expect[0];
    let lab = sample_lab();
    let m = check(e, &lab, &StepOutcome::default()).unwrap_err();
    StepReport {
        runbook: "P1".into(),
        step: "step 5 turn the mesh off".into(),
        passed: false,
        converge: None,
        probes: [(
            "a-to-b".to_string(),
            ProbeStats { sent: 500, received: 488, longest_outage: Duration::from_millis(120), ..Default::default() },
        )]
        .into(),
        failures: vec![m],
        dump: Some(dump(&lab)),
        duration: Duration::from_secs(30),
        routes_settled: None,
        wan: None,
        ..Default::default()
    }
}

#[test]
fn a_step_line_carries_the_node_stamped_settle_time_and_the_wan_traffic() {
    let before = crate::wan::WanCounters { bgp_packets: 10, bgp_bytes: 1_000, ipip_packets: 5, ipip_bytes: 500 };
    let after = crate::wan::WanCounters { bgp_packets: 250, bgp_bytes: 31_000, ipip_packets: 5, ipip_bytes: 900 };
    let w = WanStep::between(&before, &after, 4);
    assert_eq!(w, WanStep { sessions: 4, bgp_packets: 240, bgp_bytes: 30_000, ipip_packets: 0, ipip_bytes: 400 });
    // Counters reset (a restarted WAN node) never read as negative traffic.
    assert_eq!(WanStep::between(&after, &before, 4).bgp_bytes, 0);
    let r = StepReport { routes_settled: Some(Duration::from_millis(870)), wan: Some(w), ..passed() };
    assert_eq!(
        step_line(&r),
        format!(
            "PASS  {:<44}  converged 1.42s  routes settled 0.87s (on the nodes)  loss a-to-b 0/312 (0 ms)  \
             WAN 4 BGP sessions, 240 BGP pkts/30000 B  [3.21s]",
            "P1 step 3 apply BGPPeers"
        )
    );
}

#[test]
fn one_line_per_step() {
    assert_eq!(
        step_line(&passed()),
        format!("PASS  {:<44}  converged 1.42s  loss a-to-b 0/312 (0 ms)  [3.21s]", "P1 step 3 apply BGPPeers")
    );
    assert_eq!(
        step_line(&failed()),
        format!(
            "FAIL  {:<44}  not converged  loss a-to-b 12/500 (120 ms)  1 expectation failed  [30.00s]",
            "P1 step 5 turn the mesh off"
        )
    );
    let bare = StepReport {
        runbook: "P2".into(),
        step: "wait".into(),
        passed: true,
        duration: Duration::from_secs(5),
        ..Default::default()
    };
    assert_eq!(step_line(&bare), format!("PASS  {:<44}  [5.00s]", "P2 wait"));
    assert_eq!(summary_line(&[passed(), failed()]), "Summary [   33.21s] 2 steps: 1 passed, 1 failed");
    // A seeded fault that failed as intended is not a failure; one that passed is.
    let want = failed().failures[0].diff.lines().next().unwrap().to_string();
    let xfail = StepReport { intended: Some(want), ..failed() };
    let xpass = StepReport { intended: Some("anything".into()), ..passed() };
    assert_eq!((xfail.verdict(), xpass.verdict()), (Verdict::IntendedFail, Verdict::UnexpectedPass));
    assert_eq!(
        summary_line(&[passed(), xfail.clone(), xpass]),
        "Summary [   36.42s] 3 steps: 1 passed, 1 seeded fault failed as intended, 1 failed"
    );
    let wrong = StepReport { intended: Some("not in the failure".into()), ..failed() };
    assert_eq!(wrong.verdict(), Verdict::WrongFailure);
    assert!(wrong.problem().unwrap().contains("without \"not in the failure\""));
    assert_eq!(xfail.problem(), None);
}

#[test]
fn failure_text_has_the_diff_the_probes_and_the_dump() {
    let t = failure_text(&failed());
    assert!(
        t.starts_with(
            "P1 step 5 turn the mesh off: FAILED

  ✗ sessions on b (line 6)
      on b:
        missing:
          10.99.1.3 (c)  node specific  Established
        unexpected:
          10.99.0.9  node-to-node mesh  start  Active Socket: No route to host

  probes during the step:
    a-to-b 12/500 lost (2.4%), longest outage 120ms

---------------------------------------------------------------- lab state
=== a (cluster lab, site lan0, 10.99.0.1) ===
"
        ),
        "{t}"
    );
}

#[test]
fn dump_shows_every_node() {
    let mut lab = sample_lab();
    lab.bird_errors.insert("b".into(), "/tmp/rrobs/b-noas.cfg:77:1 Remote AS number must be set".into());
    let d = dump(&lab);
    for want in [
        "=== a (cluster lab, site lan0, 10.99.0.1) ===\nlabels: rr=true\npods: a-p1 172.16.1.2\n--- calicoctl node status\nCalico process is running.\n",
        "| 10.99.0.9    | node-to-node mesh | start | 13:29:47 | Active Socket: No route to     |\n|              |                   |       |          | host                           |",
        "--- BIRD protocols\nstatic1",
        "Node_10_99_0_1           BGP      master   up     13:29:49   Established",
        "172.16.3.0/26 via 10.99.0.1 on veth-ba [Node_10_99_0_1] * next_hop 10.99.1.3 as_path [64513] originator_id 10.99.1.3 cluster_list [1.0.0.1]",
        "--- kernel routes\n(unavailable: node a: no routes here)",
        "172.16.3.0/26 via 10.99.1.3 dev tunl0 proto bird onlink\n",
        "cali40all-hosts-net (hash:net): 10.99.0.1, 10.99.0.2, 10.99.1.3, 192.168.100.0/24",
        "[2:96] -t filter -A cali-INPUT -p ipencap -m comment --comment cali:_wjq-Yrma8Ly1Svo -m comment --comment Drop IPIP packets from non-Calico hosts -j DROP",
        "--- bird.cfg\n",
        "  rr cluster id 1.0.0.1;\n",
        "--- BIRD rejected its new config\n/tmp/rrobs/b-noas.cfg:77:1 Remote AS number must be set\n",
        "=== c (cluster lab, site lan1, 10.99.1.3) ===",
        "=== WAN: BGP 40 packets / 4000 bytes, IPIP 10 packets / 1000 bytes\n",
    ] {
        assert!(d.contains(want), "missing {want:?} in:\n{d}");
    }
}

#[test]
fn escaping() {
    assert_eq!(xml_escape("a<b>&\"c'\u{7}\td"), "a&lt;b&gt;&amp;&quot;c&apos;\td");
}

#[test]
fn report_from_a_wait_result() {
    let rb = parse(
        std::path::Path::new("t.yaml"),
        "name: P1\ntopology: x\nsteps:\n  - name: a\n  - name: b\n  - name: apply BGPPeers\n",
    )
    .unwrap();
    let w = crate::runbook::WaitResult {
        converged: Some(Duration::from_millis(1420)),
        probes: probes(),
        ..Default::default()
    };
    let r = StepReport::new(&rb, 2, &w, vec![], Duration::from_millis(3210));
    assert_eq!(step_line(&r), step_line(&passed()));
    let extra = crate::runbook::Mismatch { expectation: "every command succeeds".into(), line: 3, diff: "x".into() };
    let r = StepReport::new(&rb, 2, &w, vec![extra], Duration::from_millis(3210));
    assert!(!r.passed);
}
