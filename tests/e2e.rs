//! `cargo test --test e2e`: every runbook in `labs/` on the default backend (the twin), one step at a time,
//! with per-step results, convergence times and loss printed as they happen; JUnit XML and the full report
//! (failure diffs and dumps) in `$RRLAB_REPORT_DIR` (default `target/rrlab-report/`).
//!
//! Runbooks under `labs/negative/` are seeded faults: their header lists `# expect-fail: step N: <text>`, and
//! exactly those steps must fail, with that text in the failure.
//!
//! Environment: `RRLAB_RUNTIME` = `netns` or `docker` (unset: every runtime the host has, netns and, where a
//! Docker daemon answers, docker); `RRLAB_BACKEND` = `twin`
//! (default) or `kind` (the kind backend through the same runner, with real processes: kind, containerlab, kubectl;
//! the nightly workflow). Needs root (CI runs as root) and, for the twin, BIRD 1.6.8; fails loudly without
//! them.

use std::io::Write;
use std::path::{Path, PathBuf};

use rrlab_e2e::rrlab::backend::{self, BackendKind};
use rrlab_e2e::rrlab::report::{self, StepReport};
use rrlab_e2e::rrlab::runner::{self, Callbacks, RunOptions};
use rrlab_e2e::rrlab::runtime::RuntimeKind;

fn out(s: &str) {
    // Not captured by the test harness: the per-step lines are the point of this target.
    let _ = std::io::stderr().write_all(format!("{s}\n").as_bytes());
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn runbooks() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in [root().join("labs"), root().join("labs/negative"), root().join("labs/issues")] {
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                v.push(p);
            }
        }
    }
    // labs/scale: only the small size of the scale runbook (the 200-node one runs by hand, docs/benchmarks.md).
    v.push(root().join("labs/scale/p1-scale40.yaml"));
    v.sort();
    v
}

/// `# expect-fail: step N: text` lines.
fn expected_failures(p: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("# expect-fail: step "))
        .filter_map(|rest| {
            let (n, text) = rest.split_once(": ")?;
            Some((n.trim().parse().ok()?, text.trim().to_string()))
        })
        .collect()
}

#[test]
fn every_runbook_in_labs() {
    // RRLAB_BACKEND=kind (the nightly workflow): kind clusters with real processes; else the twin.
    let backend =
        backend::from_env(std::env::var(backend::BACKEND_ENV).ok().as_deref()).unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the e2e runbooks need root (network namespaces, iptables); CI runs them as root"
    );
    // RRLAB_RUNTIME=netns|docker: that runtime only; unset: every runtime this host has (docker where a
    // Docker daemon answers), so the one runner is proven on both.
    let runtimes: Vec<Option<RuntimeKind>> = match (backend, std::env::var("RRLAB_RUNTIME")) {
        (BackendKind::Kind, _) => vec![None],
        (_, Ok(r)) => vec![Some(r.parse().unwrap_or_else(|e| panic!("RRLAB_RUNTIME: {e}")))],
        (_, Err(_)) => {
            let mut v = vec![Some(RuntimeKind::Netns)];
            if rrlab_e2e::rrlab::runtime::docker::Docker::new().is_ok() {
                v.push(Some(RuntimeKind::Docker));
            }
            v
        }
    };
    std::env::set_var("RRLAB_BIN", env!("CARGO_BIN_EXE_rrlab-e2e-bin"));
    // Consent to raise the host limits the bigger labs need (labs/scale: neighbour table, open files).
    std::env::set_var("RRLAB_RAISE_LIMITS", "1");
    let report_dir =
        std::env::var("RRLAB_REPORT_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target/rrlab-report"));
    std::fs::create_dir_all(&report_dir).unwrap();

    let mut problems = Vec::new();
    let mut junit = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    let mut full = String::new();
    let t0 = std::time::Instant::now();
    let books = runbooks();
    assert!(!books.is_empty(), "no runbook in labs/");
    for (p, runtime) in runtimes.iter().flat_map(|r| books.iter().map(move |b| (b, *r))) {
        let on = match runtime {
            Some(r) => format!("twin, {r}"),
            None => backend.to_string(),
        };
        let rel = format!("{} ({on})", p.strip_prefix(root()).unwrap_or(p).display());
        let expect_fail = expected_failures(p);
        out(&format!("\n=== {rel}"));
        let opts = RunOptions { backend, runtime, ..Default::default() };
        let quiet = backend == BackendKind::Twin;
        let progress = |m: &str| {
            if !quiet {
                out(&format!("      {m}"))
            }
        };
        let on_step = |r: &StepReport| out(&report::step_line(r));
        let res = runner::run(p, &opts, &Callbacks { on_step: &on_step, progress: &progress });
        let res = match res {
            Ok(r) if matches!(r.teardown, Some(Err(_))) => {
                let e = r.teardown.as_ref().and_then(|t| t.as_ref().err()).cloned().unwrap_or_default();
                problems.push(format!("{rel}: teardown failed: {e}"));
                r
            }
            Ok(r) => r,
            Err(e) => {
                out(&format!("ERROR {rel}: {e}"));
                problems.push(format!("{rel}: {e}"));
                continue;
            }
        };
        out(&format!("{}  (lab up in {:.1}s)", report::summary_line(&res.steps), res.up.as_secs_f64()));
        let xml = report::junit_xml(&res.runbook, &res.steps);
        junit.push_str(
            xml.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
                .replace("<testsuites>\n", "")
                .replace("</testsuites>\n", "")
                .as_str(),
        );
        for (i, s) in res.steps.iter().enumerate() {
            let n = i + 1;
            let text = report::failure_text(s);
            if !s.passed {
                full.push_str(&format!("{rel}:\n{text}\n"));
            }
            match expect_fail.iter().find(|(k, _)| *k == n) {
                Some((_, want)) => {
                    if s.passed {
                        problems.push(format!(
                            "{rel} step {n} ({}) passed, but its seeded fault must make it fail",
                            s.step
                        ));
                    } else if !text.contains(want.as_str()) {
                        problems.push(format!("{rel} step {n} failed, but without {want:?} in its message:\n{text}"));
                    } else {
                        out(&format!("      (expected failure: found {want:?})"));
                    }
                }
                None if !s.passed => problems.push(format!("{rel} step {n} ({}) failed:\n{text}", s.step)),
                None => {}
            }
        }
    }
    junit.push_str("</testsuites>\n");
    std::fs::write(report_dir.join("junit.xml"), &junit).unwrap();
    std::fs::write(report_dir.join("report.txt"), &full).unwrap();
    out(&format!(
        "\ne2e: {} runbooks on {} runtime(s) in {:.1}s; JUnit and report in {}",
        books.len(),
        runtimes.len(),
        t0.elapsed().as_secs_f64(),
        report_dir.display()
    ));
    assert!(problems.is_empty(), "{} problem(s):\n\n{}", problems.len(), problems.join("\n\n"));
}
