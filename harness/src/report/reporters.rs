//! Reporters: each consumes the runner's events ([`crate::runner::Events`]) and tells the run its own way —
//! the terminal (a line per step, a spinner while waiting), JUnit, the text report, the HTML report.
//! cargo-nextest's split between the runner and its reporters is the model: the runner knows nothing of
//! formats, and a run can feed any set of reporters ([`crate::runner::Fanout`]).

use std::path::Path;
use std::sync::Mutex;

use super::html::HtmlRun;
use super::junit::JunitRun;
use super::{failure_text, step_line, summary_line, StepReport};
use crate::runner::{Events, RunResult};

/// What a run failed with outside its steps (teardown), for JUnit and HTML.
fn run_error(r: &RunResult) -> Option<String> {
    match &r.teardown {
        Some(Err(e)) => Some(format!("teardown failed: {e}")),
        _ => None,
    }
}

/// The terminal: progress into a spinner (or, without one, every message as a line), a line per step with the
/// failure text of a step that is not fine, the summary at the end.
pub struct Terminal<'a> {
    /// Where the lines go (stdout for the CLI; the e2e writes to stderr, past the test harness's capture).
    pub out: &'a (dyn Fn(&str) + Sync),
    /// Where progress goes (a spinner's message); None: progress is not shown.
    pub progress: Option<&'a (dyn Fn(&str) + Sync)>,
    /// Print each failing step's failure text (with its dump) as it happens.
    pub failures: bool,
}

impl Events for Terminal<'_> {
    fn progress(&self, m: &str) {
        if let Some(p) = self.progress {
            p(m)
        }
    }
    fn step_finished(&self, r: &StepReport) {
        (self.out)(&step_line(r));
        if self.failures && !r.verdict().ok() {
            (self.out)(&failure_text(r));
        }
        if let (Some(want), super::Verdict::IntendedFail) = (&r.intended, r.verdict()) {
            (self.out)(&format!("      (seeded fault failed as intended: found {want:?})"));
        }
    }
    fn run_finished(&self, r: &RunResult) {
        (self.out)(&format!("{}  (lab up in {:.1}s)", summary_line(&r.steps), r.up.as_secs_f64()));
    }
    fn run_failed(&self, runbook: &Path, on: &str, error: &str) {
        (self.out)(&format!("ERROR {} ({on}): {error}", runbook.display()));
    }
}

/// Collects every run as a JUnit suite; [`Junit::xml`] is one document.
#[derive(Default)]
pub struct Junit {
    runs: Mutex<Vec<JunitRun>>,
}

impl Junit {
    pub fn xml(&self, name: &str) -> String {
        super::junit::junit_xml(name, &self.runs.lock().expect("junit reporter"))
    }
    pub fn is_empty(&self) -> bool {
        self.runs.lock().expect("junit reporter").is_empty()
    }
}

impl Events for Junit {
    fn run_finished(&self, r: &RunResult) {
        self.runs.lock().expect("junit reporter").push(JunitRun {
            suite: format!("{} ({})", r.runbook, r.on),
            file: r.file.display().to_string(),
            steps: r.steps.clone(),
            error: run_error(r),
        });
    }
    fn run_failed(&self, runbook: &Path, on: &str, error: &str) {
        self.runs.lock().expect("junit reporter").push(JunitRun {
            suite: format!("{} ({on})", runbook.display()),
            file: runbook.display().to_string(),
            steps: vec![],
            error: Some(error.to_string()),
        });
    }
}

/// The text report: every failing step's failure text with its dump (seeded faults that failed as intended
/// included, marked), per run.
#[derive(Default)]
pub struct Text {
    text: Mutex<String>,
}

impl Text {
    pub fn text(&self) -> String {
        self.text.lock().expect("text reporter").clone()
    }
}

impl Events for Text {
    fn run_finished(&self, r: &RunResult) {
        let mut t = self.text.lock().expect("text reporter");
        for s in r.steps.iter().filter(|s| !s.passed) {
            let mark = if s.verdict().ok() { " (seeded fault, failed as intended)" } else { "" };
            t.push_str(&format!("{} ({}){mark}:\n{}\n", r.file.display(), r.on, failure_text(s)));
        }
        if let Some(e) = run_error(r) {
            t.push_str(&format!("{} ({}): {e}\n", r.file.display(), r.on));
        }
    }
    fn run_failed(&self, runbook: &Path, on: &str, error: &str) {
        self.text.lock().expect("text reporter").push_str(&format!("{} ({on}): {error}\n", runbook.display()));
    }
}

/// The HTML report: asks for each step's snapshot, keeps every run; [`Html::html`] is the page.
#[derive(Default)]
pub struct Html {
    runs: Mutex<Vec<HtmlRun>>,
}

impl Html {
    pub fn html(&self, title: &str) -> String {
        super::html::report(title, &self.runs.lock().expect("html reporter"))
    }
    pub fn is_empty(&self) -> bool {
        self.runs.lock().expect("html reporter").is_empty()
    }
}

impl Events for Html {
    fn wants_snapshots(&self) -> bool {
        true
    }
    fn run_finished(&self, r: &RunResult) {
        self.runs.lock().expect("html reporter").push(HtmlRun::Ran(Box::new(r.clone())));
    }
    fn run_failed(&self, runbook: &Path, on: &str, error: &str) {
        self.runs.lock().expect("html reporter").push(HtmlRun::Failed {
            name: runbook.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            file: runbook.display().to_string(),
            on: on.to_string(),
            error: error.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Fanout;

    fn result(passed: bool) -> RunResult {
        let topo = crate::model::topology::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("topologies/hybrid-rr.clab.yml"),
        )
        .unwrap();
        RunResult {
            runbook: "p1".into(),
            file: "labs/p1.yaml".into(),
            lab: "hybrid-rr".into(),
            on: "twin, netns".into(),
            topology: topo,
            nodes: vec![],
            steps: vec![StepReport {
                runbook: "p1".into(),
                step: "step 1 x".into(),
                passed,
                failures: if passed {
                    vec![]
                } else {
                    vec![crate::runbook::Mismatch { expectation: "sessions".into(), line: 3, diff: "boom".into() }]
                },
                ..Default::default()
            }],
            up: std::time::Duration::from_secs(1),
            timelines: Default::default(),
            teardown: Some(Err("netns busy".into())),
        }
    }

    #[test]
    fn every_reporter_hears_every_event() {
        let lines = Mutex::new(Vec::<String>::new());
        let out = |l: &str| lines.lock().unwrap().push(l.to_string());
        let term = Terminal { out: &out, progress: None, failures: true };
        let (junit, text, html) = (Junit::default(), Text::default(), Html::default());
        let all = Fanout(vec![&term, &junit, &text, &html]);
        assert!(all.wants_snapshots(), "the HTML reporter draws snapshots");
        assert!(!Fanout(vec![&term, &junit]).wants_snapshots());
        all.step_finished(&result(false).steps[0]);
        all.run_finished(&result(false));
        all.run_failed(Path::new("labs/broken.yaml"), "twin, docker", "labs/broken.yaml:2:1: bad");
        let l = lines.lock().unwrap().join("\n");
        assert!(l.contains("FAIL  p1 step 1 x") && l.contains("boom") && l.contains("ERROR labs/broken.yaml"), "{l}");
        let x = junit.xml("t");
        assert_eq!(x.matches("<testsuites").count(), 1);
        assert_eq!(x.matches("<testsuite ").count(), 2, "{x}");
        assert!(x.contains("teardown failed: netns busy") && x.contains("labs/broken.yaml:2:1: bad"));
        let t = text.text();
        assert!(t.contains("boom") && t.contains("teardown failed") && t.contains("labs/broken.yaml:2:1: bad"));
        let h = html.html("t");
        assert!(h.contains("data-verdict=\"FAIL\"") && h.contains("data-verdict=\"ERROR\""));
    }
}
