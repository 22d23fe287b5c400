//! The HTML report from runs built in memory: every part present, nothing fetched, big labs aggregated.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::report::snapshot::{NodeSnap, Session, Snapshot};
use crate::runbook::lab::{NodeInfo, ProbeStats};
use crate::runbook::Mismatch;

fn topo() -> crate::model::topology::Topology {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("topologies/hybrid-rr.clab.yml");
    crate::model::topology::load(&p).unwrap()
}

fn mesh(n: usize, sites: usize, rr: &[usize], down: &[(usize, usize)]) -> Snapshot {
    let name = |i: usize| format!("node{i}");
    let ip = |i: usize| format!("10.0.{}.{}", i / 250, i % 250 + 1);
    let nodes = (0..n)
        .map(|i| {
            let sessions = (0..n)
                .filter(|j| *j != i)
                .map(|j| Session {
                    protocol: format!("Mesh_{}", ip(j).replace('.', "_")),
                    kind: "node-to-node mesh".into(),
                    peer_address: ip(j),
                    peer_node: Some(name(j)),
                    state: if down.contains(&(i.min(j), i.max(j))) { "Active".into() } else { "Established".into() },
                })
                .collect();
            NodeSnap {
                name: name(i),
                cluster: "c".into(),
                site: Some(format!("site-{}", i % sites)),
                ip: ip(i),
                route_reflector: rr.contains(&i),
                sessions: Ok(sessions),
                rib: Ok(vec![format!("10.244.{i}.0/26 via {} [Mesh] *", ip(i))]),
                fib: Ok(vec![format!("10.244.{i}.0/26 via {} dev tunl0 proto bird onlink", ip(i))]),
            }
        })
        .collect();
    Snapshot { taken_ms: 0, nodes }
}

fn step(n: usize, passed: bool, intended: Option<&str>, snap: Snapshot, started_ms: u64) -> StepReport {
    let mut probes = BTreeMap::new();
    probes.insert(
        "across".to_string(),
        ProbeStats { sent: 200, received: 180, longest_outage: Duration::from_millis(200), ..Default::default() },
    );
    StepReport {
        runbook: "p1 <test> & co".into(),
        step: format!("step {n} apply the <BGPPeers>"),
        passed,
        converge: Some(Duration::from_millis(1420)),
        probes,
        failures: if passed {
            vec![]
        } else {
            vec![Mismatch {
                expectation: "sessions on kube-master".into(),
                line: 12,
                diff: "missing: 10.9.9.9  global  Established".into(),
            }]
        },
        dump: (!passed).then(|| "=== kube-master ===\n--- BIRD routes\n".to_string()),
        duration: Duration::from_secs(2),
        intended: intended.map(str::to_string),
        commands: vec![crate::twin::commands::Outcome {
            line: 3,
            command: "kubectl label node a rr=\"x\" <y>".into(),
            ok: true,
            stdout: "node/a labeled\n".into(),
            stderr: String::new(),
            changed: true,
        }],
        started_ms,
        snapshot: Some(snap),
        ..Default::default()
    }
}

fn run(steps: Vec<StepReport>, nodes: usize) -> RunResult {
    let mut timelines = BTreeMap::new();
    timelines.insert(
        "across".to_string(),
        ProbeTimeline {
            start_ms: 10_000,
            period: Duration::from_millis(10),
            sent: 400,
            lost: vec![(120, 20), (300, 1)],
            duplicates: vec![50],
            reordered: vec![60, 61],
        },
    );
    RunResult {
        runbook: "p1 <test> & co".into(),
        file: "labs/p1.yaml".into(),
        lab: "hybrid-rr".into(),
        on: "twin, netns".into(),
        topology: topo(),
        nodes: (0..nodes)
            .map(|i| NodeInfo {
                name: format!("node{i}"),
                cluster: "c".into(),
                site: None,
                ip: std::net::Ipv4Addr::new(10, 0, 0, i as u8),
                labels: Default::default(),
                pods: vec![],
            })
            .collect(),
        steps,
        up: Duration::from_secs(5),
        timelines,
        teardown: Some(Ok(vec![])),
    }
}

fn count(h: &str, needle: &str) -> usize {
    h.matches(needle).count()
}

#[test]
fn a_run_has_every_part_and_fetches_nothing() {
    let s1 = step(1, true, None, mesh(6, 2, &[], &[]), 10_000);
    let s2 = step(2, false, None, mesh(6, 2, &[0, 3], &[(0, 1)]), 12_000);
    let s3 = step(3, false, Some("10.9.9.9  global  Established"), mesh(6, 2, &[0, 3], &[]), 14_000);
    let h = report("rrlab: <e2e>", &[HtmlRun::Ran(Box::new(run(vec![s1, s2, s3], 6)))]);
    // Self-contained: no fetched resource of any kind.
    for bad in ["src=\"http", "href=\"http", "@import", "url(", "<link", "<script src"] {
        assert!(!h.contains(bad), "the report references {bad}");
    }
    // Escaped.
    assert!(h.contains("p1 &lt;test&gt; &amp; co") && !h.contains("<test>") && !h.contains("<BGPPeers>"));
    assert!(h.contains("rr=&quot;x&quot; &lt;y&gt;"), "the command typed, escaped");
    // Topology, one peering graph per step with every node and session (15 of a 6-node mesh).
    assert!(h.contains("class=\"topology\""));
    assert_eq!(count(&h, "<svg class=\"peering\""), 3);
    assert_eq!(count(&h, "<g class=\"pnode"), 18);
    assert_eq!(count(&h, "<g class=\"pnode rr\""), 4);
    assert_eq!(count(&h, "<line class=\"session"), 45);
    assert_eq!(count(&h, "<line class=\"session down"), 1);
    // Sessions between site-0 and site-1 cross the WAN: 9 per step.
    assert_eq!(
        count(&h, "<line class=\"session established wan\"") + count(&h, "<line class=\"session down wan\""),
        27
    );
    // Timelines: the run-wide one and one per step, each loss run a bar.
    assert_eq!(count(&h, "<svg class=\"timeline\""), 4);
    assert!(h.contains("data-packets=\"20\"") && h.contains("data-ms=\"200\""), "20 packets at 10 ms: 200 ms");
    assert!(count(&h, "class=\"tick dup\"") >= 1 && count(&h, "class=\"tick reorder\"") >= 2);
    // Verdicts: a failure (open, with its folded dump) and a seeded fault as intended.
    assert!(h.contains("data-verdict=\"FAIL\" open>"));
    assert_eq!(count(&h, "<details class=\"dump\">"), 1);
    assert!(h.contains("data-verdict=\"XFAIL\"") && h.contains("seeded fault failed as intended"));
    assert_eq!(count(&h, "<div class=\"failure\">"), 1);
    // Route changes: step 1 is the first, steps 2 and 3 compare with the one before (no change here).
    assert!(h.contains("class=\"routes-first"));
    assert_eq!(count(&h, "class=\"routes-same"), 2);
}

#[test]
fn a_timeline_counts_only_the_loss_inside_its_window() {
    let t = ProbeTimeline {
        start_ms: 1_000,
        period: Duration::from_millis(10),
        sent: 100,
        lost: vec![(10, 50)],
        ..Default::default()
    };
    // Window 1.2 s .. 1.4 s: packets 20..40 of the 10..60 run.
    let svg = timeline_svg("p", &t, 1_200, 1_400, &[], 1000);
    assert!(svg.contains("data-packets=\"20\"") && svg.contains("20 lost over 0.2 s"), "{svg}");
    // The whole run: all 50, one bar.
    let svg = timeline_svg("p", &t, 1_000, 2_000, &[], 1000);
    assert!(svg.contains("data-packets=\"50\"") && svg.contains("50 lost over 1.0 s"), "{svg}");
    assert_eq!(count(&timeline_svg("p", &t, 1_700, 2_000, &[], 1000), "class=\"loss\""), 0);
}

#[test]
fn route_changes_name_the_node_and_the_routes() {
    let a = mesh(3, 1, &[], &[]);
    let mut b = a.clone();
    b.nodes[1].fib = Ok(vec![]);
    b.nodes[2].rib =
        Ok(vec!["10.244.9.0/26 via 10.0.0.9 [Node_10_0_0_9] *".into(), "10.244.2.0/26 via 10.0.0.3 [Mesh] *".into()]);
    let h = report("t", &[HtmlRun::Ran(Box::new(run(vec![step(1, true, None, a, 1), step(2, true, None, b, 2)], 3)))]);
    assert!(h.contains("Routes changed since the previous step (2 of 3 nodes)"), "{h}");
    assert!(h.contains("<tr class=\"routediff\" data-node=\"node1\"><td>node1</td><td class=\"num\">+0 −0</td><td class=\"num\">+0 −1</td>"));
    assert!(h.contains("<span class=\"add\">+ 10.244.9.0/26 via 10.0.0.9 [Node_10_0_0_9] *</span>"));
    assert!(h.contains("<span class=\"del\">− 10.244.1.0/26 via 10.0.0.2 dev tunl0 proto bird onlink</span>"));
}

#[test]
fn a_200_node_lab_is_aggregated_not_drawn_edge_by_edge() {
    let rr = [0, 1, 2, 3];
    let sn = mesh(200, 2, &rr, &[(5, 6)]);
    let svg = peering_svg(&sn);
    assert!(svg
        .contains("class=\"peering aggregate\" data-nodes=\"200\" data-sessions=\"19900\" data-established=\"19899\""));
    // Groups: site-0/site-1 × RRs/nodes.
    assert_eq!(count(&svg, "<g class=\"pnode group"), 4);
    assert!(!svg.contains("<line class=\"session"), "no per-session lines at 200 nodes");
    assert!(svg.contains("data-down=\"1\""), "the one session down is counted");
    let h = report("t", &[HtmlRun::Ran(Box::new(run(vec![step(1, true, None, sn, 1)], 200)))]);
    assert!(h.len() < 400_000, "{} bytes for a 200-node step", h.len());
}

#[test]
fn a_run_that_did_not_start_is_shown_with_its_error() {
    let h = report(
        "t",
        &[HtmlRun::Failed {
            name: "broken".into(),
            file: "labs/broken.yaml".into(),
            on: "twin, docker".into(),
            error: "labs/broken.yaml:3:1: field steps: is required".into(),
        }],
    );
    assert!(h.contains("data-verdict=\"ERROR\"") && h.contains("field steps: is required"));
    assert!(h.contains("did not run"));
}
