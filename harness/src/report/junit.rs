//! JUnit XML for CI (Jenkins, GitLab, GitHub test reporters): one `<testsuites>` document for any number of
//! runbook runs, built with [`quick_junit`] and valid against Jenkins' `junit-10.xsd` (vendored in
//! `testdata/`, checked with `xmllint` in the tests).
//!
//! One `<testsuite>` per run, one `<testcase>` per step; a run that failed outside its steps (the lab did not
//! come up, the runbook is invalid, the teardown failed) gets a testcase named `lab` with an `<error>`.
//! Seeded faults that failed as intended are passes, with what they caught kept in `<system-out>`.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{failure_text, step_line, StepReport, Verdict};

/// One runbook run, for [`junit_xml`].
#[derive(Debug, Clone, Default)]
pub struct JunitRun {
    /// The suite's name and every testcase's classname, e.g. `p1 partitioned route reflectors (twin, netns)`.
    pub suite: String,
    /// The runbook's path (the testsuite's `file` attribute).
    pub file: String,
    pub steps: Vec<StepReport>,
    /// The run failed before or outside its steps: the lab did not come up, the runbook is invalid, the
    /// teardown failed.
    pub error: Option<String>,
}

/// The JUnit document of `runs`, named `name`: a single `<testsuites>` root, a `<testsuite>` per run (in
/// order), a `<testcase>` per step (classname the suite, time the step's wall time) with the step's line as
/// `<system-out>`.
///
/// Failed steps, wrong failures of seeded faults and seeded faults that passed are `<failure>`s of type
/// `expectation`, with [`failure_text`] as the body; a seeded fault that failed as intended is a pass.
pub fn junit_xml(name: &str, runs: &[JunitRun]) -> String {
    let mut report = Report::new(clean(name));
    let mut total = Duration::ZERO;
    for run in runs {
        let mut suite = TestSuite::new(clean(&run.suite));
        suite.extra.insert("file".into(), clean(&run.file).into());
        let mut time = Duration::ZERO;
        for step in &run.steps {
            time += step.duration;
            suite.add_test_case(test_case(&run.suite, step));
        }
        if let Some(e) = &run.error {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            let first = e.lines().next().unwrap_or_default();
            status.set_message(clean(first)).set_type("lab").set_description(clean(e));
            let mut case = TestCase::new("lab", status);
            case.set_classname(clean(&run.suite));
            suite.add_test_case(case);
        }
        suite.set_time(time);
        total += time;
        report.add_test_suite(suite);
    }
    report.set_time(total);
    let xml = report.to_string().expect("a JUnit report of strings serializes to memory");
    drop_root_skipped(xml)
}

/// The testcase of one step, judged by its [`Verdict`].
fn test_case(suite: &str, step: &StepReport) -> TestCase {
    let line = step_line(step);
    let (status, out) = match step.verdict() {
        Verdict::Pass => (TestCaseStatus::success(), line),
        Verdict::IntendedFail => {
            let intended = step.intended.as_deref().unwrap_or_default();
            let out = format!("{line}\n\nseeded fault failed as intended: {intended}\n{}", failure_text(step));
            (TestCaseStatus::success(), out)
        }
        v @ (Verdict::Fail | Verdict::WrongFailure | Verdict::UnexpectedPass) => {
            let problem = || step.problem().unwrap_or_else(|| format!("{} failed", step.step));
            // A plain failure names the expectation that failed; a seeded fault's problem is the verdict itself
            // (it passed, or failed for another reason than the one it seeds).
            let message = match (v, step.failures.first()) {
                (Verdict::Fail, Some(m)) => format!("{} (line {})", m.expectation, m.line),
                _ => problem(),
            };
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(clean(&message)).set_type("expectation").set_description(clean(&failure_text(step)));
            (status, line)
        }
    };
    let mut case = TestCase::new(clean(&step.step), status);
    case.set_classname(clean(suite)).set_time(step.duration).set_system_out(clean(&out));
    case
}

/// Text XML 1.0 can carry. Its `Char` production is tab, newline, carriage return and U+0020 and up, less the
/// surrogates (which a `str` cannot hold) and U+FFFE/U+FFFF. [`quick_junit::XmlString`] (which every setter
/// goes through) drops ANSI escape sequences (colours in command output) and every C0 control but the
/// newline, tabs included, and keeps U+FFFE/U+FFFF. So tabs become spaces first (8-column stops, keeping
/// tables in command output aligned), then the escapes go the same way quick-junit strips them, then whatever
/// XML 1.0 still forbids, so the document does not depend on how quick-junit cleans.
fn clean(s: &str) -> String {
    let mut expanded = String::with_capacity(s.len());
    let mut column = 0;
    for c in s.chars() {
        match c {
            '\t' => {
                let n = 8 - column % 8;
                expanded.extend(std::iter::repeat_n(' ', n));
                column += n;
            }
            '\n' => {
                expanded.push(c);
                column = 0;
            }
            c => {
                expanded.push(c);
                column += 1;
            }
        }
    }
    let s = quick_junit::XmlString::new(expanded).into_string();
    s.chars().filter(|&c| matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')).collect()
}

/// quick-junit writes `skipped="N"` on the `<testsuites>` root, which `junit-10.xsd` does not allow there
/// (only on `<testsuite>`); no step is ever skipped, so the attribute carries nothing and goes. Attribute
/// values are escaped (`"` as `&quot;`), so ` skipped="` inside the root's start tag is the attribute.
fn drop_root_skipped(mut xml: String) -> String {
    let Some(start) = xml.find("<testsuites") else { return xml };
    let Some(len) = xml[start..].find('>') else { return xml };
    let tag = &xml[start..start + len];
    if let Some(at) = tag.find(" skipped=\"") {
        let value_start = at + " skipped=\"".len();
        if let Some(value_len) = tag[value_start..].find('"') {
            xml.replace_range(start + at..start + value_start + value_len + 1, "");
        }
    }
    xml
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use pretty_assertions::assert_eq;

    use super::*;
    use crate::runbook::{Mismatch, ProbeStats};

    const XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/report/testdata/junit-10.xsd");

    fn pass(step: &str) -> StepReport {
        StepReport {
            runbook: "P1".into(),
            step: step.into(),
            passed: true,
            converge: Some(Duration::from_millis(1420)),
            duration: Duration::from_millis(3210),
            ..Default::default()
        }
    }

    fn fail(step: &str, expectation: &str, diff: &str) -> StepReport {
        StepReport {
            runbook: "P1".into(),
            step: step.into(),
            passed: false,
            failures: vec![Mismatch { expectation: expectation.into(), line: 42, diff: diff.into() }],
            duration: Duration::from_millis(1500),
            ..Default::default()
        }
    }

    fn run(suite: &str, steps: Vec<StepReport>) -> JunitRun {
        JunitRun { suite: suite.into(), file: "labs/p1.yaml".into(), steps, error: None }
    }

    fn parse(xml: &str) -> Report {
        Report::deserialize_from_str(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"))
    }

    #[test]
    fn one_root_for_every_run() {
        let x = junit_xml(
            "rrlab e2e",
            &[run("P1 (twin, netns)", vec![pass("step 1 a")]), run("P1 (twin, docker)", vec![pass("step 1 a")])],
        );
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rrlab e2e\""), "{x}");
        assert_eq!(x.matches("<testsuites").count(), 1, "{x}");
        assert_eq!(x.matches("</testsuites>").count(), 1, "{x}");
        assert_eq!(x.matches("<testsuite ").count(), 2, "{x}");
        assert!(
            !x[..x.find("<testsuite ").unwrap()].contains("skipped="),
            "junit-10.xsd has no skipped on the root: {x}"
        );
        let r = parse(&x);
        assert_eq!(r.tests, 2);
        assert_eq!(r.test_suites[1].name.as_str(), "P1 (twin, docker)");
        assert_eq!(r.test_suites[0].extra.get("file").map(|f| f.as_str()), Some("labs/p1.yaml"));
        assert_eq!(r.time, Some(Duration::from_millis(6420)));
    }

    #[test]
    fn a_testcase_per_step() {
        let x = junit_xml(
            "rrlab e2e",
            &[run("P1 (twin, netns)", vec![pass("step 1 a"), pass("step 2 b"), pass("step 3 apply BGPPeers")])],
        );
        let r = parse(&x);
        let s = &r.test_suites[0];
        assert_eq!((s.tests, s.failures, s.errors), (3, 0, 0));
        let names: Vec<&str> = s.test_cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["step 1 a", "step 2 b", "step 3 apply BGPPeers"]);
        let c = &s.test_cases[2];
        assert_eq!(c.classname.as_ref().map(|c| c.as_str()), Some("P1 (twin, netns)"));
        assert_eq!(c.time, Some(Duration::from_millis(3210)));
        assert_eq!(c.system_out.as_ref().map(|o| o.as_str()), Some(step_line(&pass("step 3 apply BGPPeers")).as_str()));
        assert!(matches!(c.status, TestCaseStatus::Success { .. }));
    }

    #[test]
    fn an_intended_failure_is_a_pass_that_keeps_its_message() {
        let mut s = fail("step 2 no asNumber", "fails with \"remote AS\"", "BIRD: Remote AS number must be set");
        s.intended = Some("Remote AS number must be set".into());
        assert_eq!(s.verdict(), Verdict::IntendedFail);
        let x = junit_xml("rrlab e2e", &[run("negative (twin, netns)", vec![s.clone()])]);
        let r = parse(&x);
        assert_eq!((r.tests, r.failures, r.errors), (1, 0, 0));
        let c = &r.test_suites[0].test_cases[0];
        assert!(matches!(c.status, TestCaseStatus::Success { .. }), "{x}");
        let out = c.system_out.as_ref().unwrap().as_str();
        assert!(out.starts_with(&format!("{}\n", step_line(&s))), "{out}");
        assert!(out.contains("seeded fault failed as intended: Remote AS number must be set\n"), "{out}");
        assert!(out.contains("BIRD: Remote AS number must be set"), "the failure text is kept: {out}");
        assert!(out.contains(failure_text(&s).trim_end()), "{out}");
    }

    #[test]
    fn a_failure_is_a_failure() {
        let f = fail("step 5 turn the mesh off", "sessions on b", "missing: 10.99.1.3 (c)");
        let mut wrong = fail("step 6 seeded", "routes on c", "unexpected: 172.16.3.0/26");
        wrong.intended = Some("Remote AS number must be set".into());
        let mut xpass = pass("step 7 seeded");
        xpass.intended = Some("cannot happen".into());
        let x = junit_xml("rrlab e2e", &[run("P1 (twin, netns)", vec![pass("step 1 a"), f.clone(), wrong, xpass])]);
        let r = parse(&x);
        assert_eq!((r.tests, r.failures, r.errors), (4, 3, 0));
        let status = |i: usize| match &r.test_suites[0].test_cases[i].status {
            TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, message, ty, description, .. } => (
                message.as_ref().unwrap().as_str().to_string(),
                ty.as_ref().unwrap().as_str().to_string(),
                description.as_ref().unwrap().as_str().to_string(),
            ),
            other => panic!("step {i}: {other:?}"),
        };
        let (m, ty, d) = status(1);
        assert_eq!((m.as_str(), ty.as_str()), ("sessions on b (line 42)", "expectation"));
        assert_eq!(d.trim_end(), failure_text(&f).trim_end());
        assert_eq!(status(2).0, "step 6 seeded failed, but without \"Remote AS number must be set\" in its message");
        assert_eq!(status(3).0, "step 7 seeded passed, but its seeded fault must make it fail");
        assert!(r.test_suites[0].test_cases.iter().all(|c| c.system_out.is_some()), "{x}");
    }

    #[test]
    fn a_run_that_errored_has_a_lab_error() {
        let up = JunitRun {
            suite: "P3 (twin, netns)".into(),
            file: "labs/p3.yaml".into(),
            steps: vec![],
            error: Some("bringing the lab up: node a: BIRD did not start\nbird: /etc/bird.conf:3: syntax error".into()),
        };
        let teardown = JunitRun {
            error: Some("teardown failed: netns rrlab-a busy".into()),
            ..run("P1 (twin, netns)", vec![pass("step 1 a")])
        };
        let x = junit_xml("rrlab e2e", &[up, teardown]);
        let r = parse(&x);
        assert_eq!((r.tests, r.failures, r.errors), (3, 0, 2));
        let c = &r.test_suites[0].test_cases[0];
        assert_eq!(c.name.as_str(), "lab");
        match &c.status {
            TestCaseStatus::NonSuccess { kind: NonSuccessKind::Error, message, description, .. } => {
                assert_eq!(message.as_ref().unwrap().as_str(), "bringing the lab up: node a: BIRD did not start");
                assert!(description.as_ref().unwrap().as_str().ends_with("syntax error"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.test_suites[1].test_cases.len(), 2);
        assert_eq!(r.test_suites[1].test_cases[1].name.as_str(), "lab");
    }

    #[test]
    fn characters_xml_forbids_are_dropped() {
        assert_eq!(
            clean("a\u{0}b\u{7}c\u{1b}[31mred\u{1b}[0m d\r\ne\u{FFFE}\u{FFFF}f\u{7f}<&>\u{1b}"),
            "abcred d\nef\u{7f}<&>"
        );
        // Tabs survive as spaces to the next 8-column stop (quick-junit would drop them).
        assert_eq!(clean("ab\tc\n\tx\ty"), "ab      c\n        x       y");
    }

    /// A report with everything in it: passes, a seeded fault caught, failures with control characters and
    /// markup in command output, a run that never came up.
    fn mixed() -> Vec<JunitRun> {
        let mut caught = fail("step 2 no asNumber", "fails with \"remote AS\"", "Remote AS number must be set");
        caught.intended = Some("Remote AS number must be set".into());
        let mut f = fail(
            "step 5 <turn> the mesh off & \"wait\"",
            "sessions on b <a & c>",
            "calicoctl said: \u{1b}[31merror\u{1b}[0m <none> & 'more'\u{0}\u{7}\u{8}\u{b}\u{c}\u{1f}\u{FFFE}\u{FFFF} ]]> done",
        );
        f.probes = [(
            "a-to-b".to_string(),
            ProbeStats { sent: 500, received: 488, longest_outage: Duration::from_millis(120), ..Default::default() },
        )]
        .into();
        f.dump = Some(
            "=== a ===\n--- BIRD protocols\nstatic1  Static  master  up  13:29:49\u{1}\n<bird> & </bird>\n".into(),
        );
        f.commands = vec![crate::twin::commands::Outcome {
            line: 12,
            command: "calicoctl get bgpconfig -o yaml".into(),
            ok: false,
            stdout: "\u{1b}[1m<&>\u{0}\n".into(),
            stderr: "error: \u{7}bell".into(),
            changed: false,
        }];
        let mut xpass = pass("step 6 seeded");
        xpass.intended = Some("cannot happen".into());
        vec![
            run("P1 <partitioned> & \"RRs\" (twin, netns)", vec![pass("step 1 a"), caught, f, xpass]),
            JunitRun {
                suite: "P3 (twin, docker)".into(),
                file: "labs/p3.yaml".into(),
                steps: vec![],
                error: Some("bringing the lab up: \u{1b}[0m<docker> & \u{0}no daemon".into()),
            },
        ]
    }

    #[test]
    fn a_mixed_report_validates_against_the_jenkins_schema() {
        let x = junit_xml("rrlab e2e <nightly> & co", &mixed());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("junit.xml");
        std::fs::write(&file, &x).unwrap();
        let out = match Command::new("xmllint").arg("--noout").arg("--schema").arg(XSD).arg(&file).output() {
            Ok(o) => o,
            Err(e) => panic!(
                "xmllint could not run ({e}): it checks the JUnit XML against junit-10.xsd; install it with \
                 `apt-get install -y libxml2-utils` (.ci/run does)"
            ),
        };
        assert!(
            out.status.success(),
            "xmllint rejected the JUnit XML ({}):\n{}{}\n--- the document:\n{x}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let r = parse(&x);
        assert_eq!((r.tests, r.failures, r.errors), (5, 2, 1));
        assert!(x.contains("calicoctl said: error &lt;none&gt; &amp;"), "colours stripped, markup escaped: {x}");
    }

    #[test]
    fn the_schema_check_catches_an_invalid_document() {
        // The schema is the real one: a testcase without a name, or text outside the root, is refused.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.xml");
        std::fs::write(
            &file,
            "<?xml version=\"1.0\"?>\n<testsuites><testsuite name=\"x\"><testcase/></testsuite></testsuites>\n",
        )
        .unwrap();
        let out = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(XSD)
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("xmllint could not run ({e}): `apt-get install -y libxml2-utils`"));
        assert!(!out.status.success(), "xmllint accepted an invalid document");
    }
}
