//! `cargo test --test e2e`: every runbook in `labs/` on the default backend (the twin), one trial per
//! (runtime, runbook), one step at a time, with per-step results, convergence times and loss printed as they
//! happen; one JUnit XML and the full report (failure diffs and dumps) in `$RRLAB_REPORT_DIR` (default
//! `target/rrlab-report/`) after the trials.
//!
//! Trials are named `<runtime>::<runbook path without labs/ and .yaml>` (`netns::p1-partitioned-route-reflectors`,
//! `docker::issues/calico-3819-mesh-off-loss`, `kind::p3-two-clusters` on the kind backend), so
//! `cargo test --test e2e -- netns::p3` runs one, `-- p3` runs it on every runtime and `-- --list` lists them
//! all (a libtest-mimic harness: `--exact`, `--skip` and nextest work too). Labs of the same topology share
//! names, so trials run one at a time unless `--test-threads` says otherwise.
//!
//! Runbooks under `labs/negative/` are seeded faults: their header lists `# expect-fail: step N: <text>`, and
//! exactly those steps must fail, with that text in the failure (the runbook loader reads those lines; a step
//! that failed as intended is a pass, here and in the JUnit).
//!
//! Environment: `RRLAB_RUNTIME` = `netns` or `docker` (unset: every runtime the host has, netns and, where a
//! Docker daemon answers, docker); `RRLAB_BACKEND` = `twin`
//! (default) or `kind` (the kind backend through the same runner, with real processes: kind, containerlab, kubectl;
//! the nightly workflow). Needs root (CI runs as root) and, for the twin, BIRD 1.6.8; fails loudly without
//! them.

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Failed, Trial};
use rrlab_e2e::rrlab::backend::{self, BackendKind};
use rrlab_e2e::rrlab::report::html::{self, HtmlRun};
use rrlab_e2e::rrlab::report::junit::{junit_xml, JunitRun};
use rrlab_e2e::rrlab::report::{self, reporters};
use rrlab_e2e::rrlab::runner::{self, Events, Fanout, RunOptions, RunResult};
use rrlab_e2e::rrlab::runtime::RuntimeKind;

fn out(s: &str) {
    // Straight to stderr: the per-step lines are the point of this target.
    let _ = std::io::stderr().write_all(format!("{s}\n").as_bytes());
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn runbooks() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in
        [root().join("labs"), root().join("labs/negative"), root().join("labs/issues"), root().join("labs/imported")]
    {
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

/// `labs/issues/calico-3819-mesh-off-loss.yaml` → `issues/calico-3819-mesh-off-loss`.
fn short_name(p: &Path) -> String {
    let rel = p.strip_prefix(root().join("labs")).unwrap_or(p);
    rel.with_extension("").to_string_lossy().into_owned()
}

/// One (runtime, runbook) pair.
struct Job {
    /// Its place among all trials, for the reports' order.
    index: usize,
    book: PathBuf,
    backend: BackendKind,
    /// None on the kind backend.
    runtime: Option<RuntimeKind>,
}

/// `netns`, `docker`, `kind`: a trial name's prefix (the runtime, or the backend where there is none).
fn prefix(backend: BackendKind, runtime: Option<RuntimeKind>) -> String {
    runtime.map_or_else(|| backend.to_string(), |r| r.to_string())
}

impl Job {
    /// The runner's options for this job.
    fn opts(&self) -> RunOptions {
        RunOptions { backend: self.backend, runtime: self.runtime, ..Default::default() }
    }

    /// `twin, netns`, `kind`: what the runner calls where the lab runs.
    fn on(&self) -> String {
        self.opts().on()
    }

    /// `labs/p1-partitioned-route-reflectors.yaml (twin, netns)`
    fn label(&self) -> String {
        format!("{} ({})", self.book.strip_prefix(root()).unwrap_or(&self.book).display(), self.on())
    }
}

/// What a trial leaves for the reports.
#[derive(Clone)]
struct Record {
    junit: JunitRun,
    html: HtmlRun,
}

/// What each trial leaves for the reports, in trial order (None: filtered out, or not run yet).
type Slots = Arc<Mutex<Vec<Option<Record>>>>;

fn main() {
    let mut args = Arguments::from_args();
    // Labs of one topology share names (namespaces, bridges, containers): one at a time unless asked otherwise.
    if args.test_threads.is_none() {
        args.test_threads = Some(1);
    }
    // RRLAB_BACKEND=kind (the nightly workflow): kind clusters with real processes; else the twin.
    let backend =
        backend::from_env(std::env::var(backend::BACKEND_ENV).ok().as_deref()).unwrap_or_else(|e| panic!("{e}"));
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
    let books = runbooks();
    assert!(!books.is_empty(), "no runbook in labs/");

    let jobs: Vec<Job> = runtimes
        .iter()
        .flat_map(|&runtime| books.iter().map(move |b| (b.clone(), runtime)))
        .enumerate()
        .map(|(index, (book, runtime))| Job { index, book, backend, runtime })
        .collect();
    let slots: Slots = Arc::new(Mutex::new(vec![None; jobs.len()]));
    let dir =
        std::env::var("RRLAB_REPORT_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target/rrlab-report"));
    // The browser check renders the reports of P1 and of the seeded faults on the first runtime: the trials'
    // own when they ran before it in this invocation, else it runs them itself.
    let first = |stem: &str| jobs.iter().find(|j| short_name(&j.book) == stem).map(|j| (j.index, j.book.clone()));
    let browser = match (first("p1-partitioned-route-reflectors"), first("negative/seeded-faults")) {
        (Some(p1), Some(sf)) => {
            let (slots, dir, job0) = (slots.clone(), dir.clone(), (jobs[0].backend, jobs[0].runtime));
            Some(Trial::test("browser::p1-and-seeded-faults-report", move || {
                browser_check(&slots, &dir, job0, &[p1.clone(), sf.clone()])
            }))
        }
        _ => None,
    };
    let mut trials: Vec<Trial> = jobs
        .into_iter()
        .map(|job| {
            let name = format!("{}::{}", prefix(job.backend, job.runtime), short_name(&job.book));
            let slots = slots.clone();
            let dir = dir.clone();
            Trial::test(name, move || run_trial(&job, &slots, &dir))
        })
        .collect();
    // `rrlab check --ssh` against a live lab over real SSH (the docker runtime: a node with its own files).
    if runtimes.contains(&Some(RuntimeKind::Docker)) && backend == BackendKind::Twin {
        trials.push(Trial::test("docker::check/p1-over-ssh", || {
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                return Err(
                    "rrlab check --ssh against a live lab needs root (it brings a lab up); CI runs it as root".into()
                );
            }
            out("\n=== rrlab check --ssh on procedure 1's lab (twin, docker)");
            let bin = PathBuf::from(env!("CARGO_BIN_EXE_rrlab-e2e-bin"));
            rrlab_e2e::live::ssh_check(&root(), &bin, &out).map_err(Failed::from)
        }));
    }
    // Last: it looks at what the runbook trials wrote.
    trials.extend(browser);
    if !args.list {
        // For the nodes' agents, and consent to raise the host limits the bigger labs need (labs/scale:
        // neighbour table, open files). Set before any trial's thread starts.
        std::env::set_var("RRLAB_BIN", env!("CARGO_BIN_EXE_rrlab-e2e-bin"));
        std::env::set_var("RRLAB_RAISE_LIMITS", "1");
        // Said now: the test runner's summary stays the last line.
        out(&format!(
            "e2e: {} runbooks on {} runtime(s); JUnit and report of the trials that run in {}",
            books.len(),
            runtimes.len(),
            dir.display()
        ));
    }
    let conclusion = libtest_mimic::run(&args, trials);

    let runs: Vec<Record> = slots.lock().unwrap_or_else(|p| p.into_inner()).drain(..).flatten().collect();
    if !runs.is_empty() {
        if let Err(e) = write_reports(&dir, &runs) {
            out(&format!("e2e: writing the reports in {}: {e}", dir.display()));
            std::process::exit(101);
        }
    }
    conclusion.exit();
}

/// The reports of the trials that ran, in `dir`: `junit.xml` (one document for all of them), `report.txt`
/// (every failed step's diffs and dump, and every run's error) and `report.html` (every run, one page; each
/// trial also wrote its own page in `html/`).
fn write_reports(dir: &Path, runs: &[Record]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let junit: Vec<JunitRun> = runs.iter().map(|r| r.junit.clone()).collect();
    std::fs::write(dir.join("junit.xml"), junit_xml("rrlab e2e", &junit))?;
    let mut full = String::new();
    for run in &junit {
        for s in run.steps.iter().filter(|s| !s.passed) {
            let mark = if s.verdict().ok() { " (seeded fault, failed as intended)" } else { "" };
            full.push_str(&format!("{} ({}){mark}:\n{}\n", run.file, run.suite, report::failure_text(s)));
        }
        if let Some(e) = &run.error {
            full.push_str(&format!("{} ({}): {e}\n\n", run.file, run.suite));
        }
    }
    std::fs::write(dir.join("report.txt"), &full)?;
    let pages: Vec<HtmlRun> = runs.iter().map(|r| r.html.clone()).collect();
    std::fs::write(dir.join("report.html"), html::report("rrlab e2e", &pages))?;
    Ok(())
}

/// A trial's own HTML page: `html/<runtime>-<runbook>.html`.
fn page_path(dir: &Path, job_on: &str, book: &Path) -> PathBuf {
    let slug: String = format!("{job_on}-{}", short_name(book))
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    dir.join("html").join(format!("{slug}.html"))
}

/// One runbook on one runtime: its steps' lines on stderr (the terminal reporter), its JUnit suite and HTML
/// run in `slots`, its HTML page in `dir/html/`; fails when a step's verdict is not ok (seeded faults judged
/// against their intended failure), the run errors or the teardown fails.
fn run_trial(job: &Job, slots: &Slots, dir: &Path) -> Result<(), Failed> {
    let label = job.label();
    let file = job.book.strip_prefix(root()).unwrap_or(&job.book).display().to_string();
    // The suite is named after the runbook even when it cannot run (its name, else its file).
    let title = rrlab_e2e::rrlab::runbook::load(&job.book).map(|rb| rb.name).unwrap_or_else(|_| file.clone());
    let failed = |error: String| Record {
        junit: JunitRun {
            suite: format!("{title} ({})", job.on()),
            file: file.clone(),
            steps: Vec::new(),
            error: Some(error.clone()),
        },
        html: HtmlRun::Failed { name: title.clone(), file: file.clone(), on: job.on(), error },
    };
    let store = |r: Record| slots.lock().unwrap_or_else(|p| p.into_inner())[job.index] = Some(r);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let e = "the e2e runbooks need root (network namespaces, iptables); CI runs them as root";
        store(failed(e.to_string()));
        return Err(format!("{label}: {e}").into());
    }
    out(&format!("\n=== {label}"));
    // A runbook on an imported topology: import again first (import → up → procedure), so that the lab is
    // exactly what `rrlab import` makes of the captured cluster today.
    if let Ok(rb) = rrlab_e2e::rrlab::runbook::load(&job.book) {
        let topology = rb.topology.canonicalize().unwrap_or_else(|_| rb.topology.clone());
        if topology.starts_with(rrlab_e2e::live::imported_dir(&root())) {
            match rrlab_e2e::live::reimport_matches(&root(), &topology) {
                Ok(n) => {
                    out(&format!("      rrlab import again: its {n} files are the ones this runbook runs on"));
                    if let Err(e) = rrlab_e2e::live::reimport_detects_drift(&root(), &topology) {
                        store(failed(e.clone()));
                        return Err(format!("{label}: {e}").into());
                    }
                }
                Err(e) => {
                    store(failed(e.clone()));
                    return Err(format!("{label}: {e}").into());
                }
            }
        }
    }

    let opts = job.opts();
    let quiet = job.backend == BackendKind::Twin;
    let progress = |m: &str| {
        if !quiet {
            out(&format!("      {m}"))
        }
    };
    let terminal = reporters::Terminal { out: &out, progress: Some(&progress), failures: false };
    let html_r = reporters::Html::default();
    // A panic in the runner still leaves the trial's JUnit suite (the lab is torn down as the runner unwinds).
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runner::run(&job.book, &opts, &Fanout(vec![&terminal, &html_r])).map_err(|e| e.to_string())
    }));
    let result = match result {
        Ok(r) => r,
        Err(p) => Err(format!("the runner panicked: {}", panic_text(p.as_ref()))),
    };
    let page = page_path(dir, &prefix(job.backend, job.runtime), &job.book);
    let mut problems = Vec::new();
    match result {
        Ok(res) => {
            for s in &res.steps {
                if let Some(p) = s.problem() {
                    problems.push(format!("{p}:\n{}", report::failure_text(s)));
                }
            }
            if let Some(Err(e)) = &res.teardown {
                problems.push(format!("teardown failed: {e}"));
            }
            let junit = JunitRun {
                suite: format!("{} ({})", res.runbook, res.on),
                file: file.clone(),
                steps: res.steps.clone(),
                error: match &res.teardown {
                    Some(Err(e)) => Some(format!("teardown failed: {e}")),
                    _ => None,
                },
            };
            store(Record { junit, html: HtmlRun::Ran(Box::new(res)) });
        }
        Err(e) => {
            out(&format!("ERROR {label}: {e}"));
            store(failed(e.clone()));
            problems.push(e);
        }
    }
    if let Some(r) = slots.lock().unwrap_or_else(|p| p.into_inner())[job.index].as_ref() {
        let written = std::fs::create_dir_all(page.parent().expect("html/"))
            .and_then(|_| std::fs::write(&page, html::report(&label, std::slice::from_ref(&r.html))));
        if let Err(e) = written {
            problems.push(format!("writing {}: {e}", page.display()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{label}: {} problem(s):\n\n{}", problems.len(), problems.join("\n\n")).into())
    }
}

/// The HTML reports of real runs (P1 and the seeded faults) rendered in headless Chromium: a PNG screenshot of
/// each (kept in the report directory) and assertions on the rendered DOM — every peering-graph node and
/// session, every loss bar and step laid out; no failure in P1; every seeded fault marked as failing as
/// intended; loss bars and Established sessions painted in the P1 screenshot.
fn browser_check(
    slots: &Slots,
    dir: &Path,
    (backend, runtime): (BackendKind, Option<RuntimeKind>),
    books: &[(usize, PathBuf)],
) -> Result<(), Failed> {
    use rrlab_e2e::browser;
    browser::chromium().map_err(|e| format!("the HTML report's browser check: {e}"))?;
    let on = prefix(backend, runtime);
    for (index, book) in books {
        let have = slots.lock().unwrap_or_else(|p| p.into_inner())[*index].as_ref().map(|r| r.html.clone());
        let run: RunResult = match have {
            Some(HtmlRun::Ran(r)) => *r,
            Some(HtmlRun::Failed { error, .. }) => {
                return Err(format!("{}: did not run: {error}", book.display()).into())
            }
            None => {
                // Not run in this invocation (a filter): run it here.
                out(&format!("\n=== {} ({on}), for the browser check", book.display()));
                let terminal = reporters::Terminal { out: &out, progress: None, failures: false };
                let html_r = reporters::Html::default();
                let opts = RunOptions { backend, runtime, ..Default::default() };
                runner::run(book, &opts, &Fanout(vec![&terminal as &dyn Events, &html_r]))
                    .map_err(|e| format!("{}: {e}", book.display()))?
            }
        };
        let page = dir.join("browser").join(format!("{}.html", short_name(book).replace('/', "-")));
        let png = page.with_extension("png");
        std::fs::create_dir_all(page.parent().expect("browser/")).map_err(|e| e.to_string())?;
        let source = html::report(&format!("{} ({on})", book.display()), &[HtmlRun::Ran(Box::new(run.clone()))]);
        std::fs::write(&page, &source).map_err(|e| e.to_string())?;
        let summary = browser::check_report(&page, &source, &run, &png)?;
        out(&format!("browser: {} — {summary}", short_name(book)));
    }
    Ok(())
}

/// A panic's message (a `&str` or `String` payload).
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    match (p.downcast_ref::<&str>(), p.downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "(no message)".to_string(),
    }
}
