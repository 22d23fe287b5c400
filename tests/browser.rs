//! The HTML report's browser check (`rrlab_e2e::browser::check_report`, used by the e2e on real runs) on a
//! report built in memory: it passes on a faithful page and fails, naming what differs, when the page hides its
//! peering graph or its script does not run (seeded faults). Needs Debian's `chromium` (.ci/run installs it).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rrlab_e2e::browser::check_report;
use rrlab_e2e::rrlab::report::html::{report, HtmlRun};
use rrlab_e2e::rrlab::report::snapshot::{NodeSnap, Session, Snapshot};
use rrlab_e2e::rrlab::report::StepReport;
use rrlab_e2e::rrlab::runbook::Mismatch;
use rrlab_e2e::rrlab::runner::probe::ProbeTimeline;
use rrlab_e2e::rrlab::runner::RunResult;

fn node(name: &str, site: &str, peer: (&str, &str), state: &str) -> NodeSnap {
    NodeSnap {
        name: name.into(),
        cluster: "hybrid".into(),
        site: Some(site.into()),
        ip: peer.1.into(),
        route_reflector: false,
        sessions: Ok(vec![Session {
            protocol: "Mesh_x".into(),
            kind: "node-to-node mesh".into(),
            peer_address: "10.0.0.9".into(),
            peer_node: Some(peer.0.into()),
            state: state.into(),
        }]),
        rib: Ok(vec![]),
        fib: Ok(vec![]),
    }
}

fn run() -> RunResult {
    let topo = rrlab_e2e::rrlab::model::topology::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/hybrid-rr.clab.yml"),
    )
    .unwrap();
    let snap = Snapshot {
        taken_ms: 0,
        nodes: vec![
            node("a", "site-a", ("b", "10.0.1.2"), "Established"),
            node("b", "site-b", ("a", "10.0.2.2"), "Established"),
        ],
    };
    let step = |n: usize, passed: bool| StepReport {
        runbook: "browser check".into(),
        step: format!("step {n} s{n}"),
        passed,
        failures: if passed {
            vec![]
        } else {
            vec![Mismatch { expectation: "sessions".into(), line: 4, diff: "missing".into() }]
        },
        duration: Duration::from_secs(2),
        started_ms: 10_000 + 2_000 * (n as u64 - 1),
        snapshot: Some(snap.clone()),
        ..Default::default()
    };
    let mut timelines = BTreeMap::new();
    timelines.insert(
        "a-to-b".to_string(),
        ProbeTimeline {
            start_ms: 10_000,
            period: Duration::from_millis(10),
            sent: 400,
            lost: vec![(100, 150)],
            ..Default::default()
        },
    );
    RunResult {
        runbook: "browser check".into(),
        file: "labs/x.yaml".into(),
        lab: "hybrid-rr".into(),
        on: "twin, netns".into(),
        topology: topo,
        nodes: vec![],
        steps: vec![step(1, true), step(2, false)],
        up: Duration::from_secs(1),
        timelines,
        teardown: Some(Ok(vec![])),
    }
}

fn render(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> Result<String, String> {
    let r = run();
    let source = edit(report("browser check", &[HtmlRun::Ran(Box::new(r.clone()))]));
    let page = dir.join(format!("{name}.html"));
    std::fs::write(&page, &source).unwrap();
    check_report(&page, &source, &r, &dir.join(format!("{name}.png")))
}

#[test]
fn a_faithful_report_passes_and_seeded_faults_fail_naming_what_differs() {
    rrlab_e2e::browser::chromium().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let ok = render(dir.path(), "ok", |s| s).unwrap_or_else(|e| panic!("a faithful report failed:\n{e}"));
    assert!(ok.contains("2 steps, 4 peering nodes, 2 sessions") && ok.contains("1 failures"), "{ok}");

    // Seeded fault: the peering graphs are not displayed.
    let hidden = render(dir.path(), "hidden", |s| s.replace("</style>", "svg.peering{display:none}</style>"));
    let e = hidden.expect_err("a hidden peering graph must fail the check");
    assert!(e.contains("peering-graph nodes: the browser laid out 0, the report has 4"), "{e}");

    // Seeded fault: the page's script never runs.
    let dead = render(dir.path(), "noscript", |s| s.replace("<script>", "<script type=\"text/plain\">"));
    let e = dead.expect_err("a page whose script did not run must fail the check");
    assert!(e.contains("the report's script did not run in Chromium"), "{e}");

    // Seeded fault: the loss bars are painted white.
    let e = render(dir.path(), "white", |s| s.replace("fill=\"#e53935\"", "fill=\"#ffffff\""))
        .expect_err("unpainted loss bars must fail the check");
    assert!(e.contains("pixels of loss bars painted, though the run lost packets"), "{e}");
}
