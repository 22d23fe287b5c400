//! The one seam between plans and the machine: a [`Runner`] runs a [`PlanStep`]. [`ProcessRunner`] runs it
//! with `std::process`; [`RecordingRunner`] records what would run and answers from canned outputs (tests,
//! and `--dry-run` style checks). [`execute`] runs a plan in order, checking exit codes and the steps'
//! [`Check`]s.

use std::fmt;

use super::parse;
use super::plan::{Check, Plan, PlanStep};

/// What a command printed and how it ended (the one process output type).
pub use crate::process::Output as StepOutput;

/// Runs one step.
pub trait Runner: Send + Sync {
    fn run(&self, step: &PlanStep) -> std::io::Result<StepOutput>;
}

/// Runs steps as processes: argv without a shell, the step's env on top of ours, its cwd, its stdin piped.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessRunner;

impl Runner for ProcessRunner {
    fn run(&self, step: &PlanStep) -> std::io::Result<StepOutput> {
        crate::process::run_spec(&crate::process::Spec {
            argv: &step.argv,
            env: &step.env,
            cwd: step.cwd.as_deref(),
            stdin: step.stdin.as_deref(),
        })
    }
}

/// Records every step and answers with the first canned reply whose needle occurs in the step's command
/// line (success with empty output otherwise).
#[derive(Debug, Default)]
pub struct RecordingRunner {
    pub ran: std::sync::Mutex<Vec<PlanStep>>,
    replies: Vec<(String, StepOutput)>,
}

impl RecordingRunner {
    pub fn new() -> RecordingRunner {
        RecordingRunner::default()
    }

    /// Answer steps whose command line contains `needle` with `out`.
    pub fn reply(mut self, needle: &str, out: StepOutput) -> RecordingRunner {
        self.replies.push((needle.to_string(), out));
        self
    }

    /// The command lines run so far.
    pub fn command_lines(&self) -> Vec<String> {
        self.ran.lock().expect("recording").iter().map(PlanStep::command_line).collect()
    }
}

impl Runner for RecordingRunner {
    fn run(&self, step: &PlanStep) -> std::io::Result<StepOutput> {
        self.ran.lock().expect("recording").push(step.clone());
        let line = step.command_line();
        Ok(self
            .replies
            .iter()
            .find(|(n, _)| line.contains(n.as_str()))
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| StepOutput::ok("")))
    }
}

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// The program could not be started.
    Spawn { index: usize, what: String, command: String, error: String },
    /// It exited non-zero (or was killed).
    Failed { index: usize, what: String, command: String, status: Option<i32>, stdout: String, stderr: String },
    /// It succeeded but its output failed the step's check.
    Check { index: usize, what: String, command: String, message: String },
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::Spawn { index, what, command, error } => {
                write!(f, "step {} ({what}): cannot run `{command}`: {error}", index + 1)
            }
            ExecError::Failed { index, what, command, status, stdout, stderr } => {
                let code = status.map(|c| format!("exit code {c}")).unwrap_or_else(|| "killed by a signal".into());
                write!(f, "step {} ({what}): `{command}` failed ({code})", index + 1)?;
                let detail = if stderr.trim().is_empty() { stdout.trim() } else { stderr.trim() };
                if !detail.is_empty() {
                    write!(f, ": {}", crate::observe::shorten(detail, 400))?;
                }
                Ok(())
            }
            ExecError::Check { index, what, command, message } => {
                write!(f, "step {} ({what}): `{command}`: {message}", index + 1)
            }
        }
    }
}

impl std::error::Error for ExecError {}

/// Apply a step's check to its output: Err(message) when it does not hold.
pub fn check_output(check: &Check, out: &StepOutput) -> Result<(), String> {
    let text = if out.stdout.trim().is_empty() { &out.stderr } else { &out.stdout };
    match check {
        Check::KindVersion(want) => {
            let got = parse::parse_kind_version(text).map_err(|e| e.to_string())?;
            (got == *want).then_some(()).ok_or_else(|| {
                format!("kind {got} is installed; rrlab pins kind {want} (harness/src/kind/versions.rs)")
            })
        }
        Check::ContainerlabVersion(want) => {
            let got = parse::parse_containerlab_version(text).map_err(|e| e.to_string())?;
            (got == *want).then_some(()).ok_or_else(|| {
                format!(
                    "containerlab {got} is installed; rrlab pins containerlab {want} (harness/src/kind/versions.rs)"
                )
            })
        }
        Check::CalicoctlVersion { client, cluster } => {
            let v = parse::parse_calicoctl_version(text).map_err(|e| e.to_string())?;
            if v.client != *client {
                return Err(format!("calicoctl is {}, rrlab pins {client}", v.client));
            }
            match (cluster, &v.cluster) {
                (Some(want), Some(got)) if got != want => {
                    Err(format!("the cluster runs Calico {got}, rrlab pins {want}"))
                }
                (Some(want), None) => Err(format!("calicoctl cannot see the cluster's Calico version (want {want})")),
                _ => Ok(()),
            }
        }
    }
}

/// Run one step: Ok with its output when it exits 0 and passes its check.
pub fn run_step(runner: &dyn Runner, index: usize, step: &PlanStep) -> Result<StepOutput, ExecError> {
    let command = step.command_line();
    let out = runner.run(step).map_err(|e| ExecError::Spawn {
        index,
        what: step.what.clone(),
        command: command.clone(),
        error: e.to_string(),
    })?;
    if !out.success() {
        return Err(ExecError::Failed {
            index,
            what: step.what.clone(),
            command,
            status: out.status,
            stdout: out.stdout,
            stderr: out.stderr,
        });
    }
    if let Some(c) = &step.check {
        check_output(c, &out).map_err(|message| ExecError::Check {
            index,
            what: step.what.clone(),
            command,
            message,
        })?;
    }
    Ok(out)
}

/// Run a plan in order. A failing step stops it, unless the step tolerates failure; the tolerated
/// failures are returned with the outputs. `progress` sees each step before it runs.
pub fn execute(
    plan: &Plan,
    runner: &dyn Runner,
    progress: &mut dyn FnMut(usize, &PlanStep),
) -> Result<(Vec<StepOutput>, Vec<ExecError>), ExecError> {
    let mut outputs = Vec::new();
    let mut tolerated = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        progress(i, step);
        match run_step(runner, i, step) {
            Ok(o) => outputs.push(o),
            Err(e) if step.allow_failure => {
                tolerated.push(e);
                outputs.push(StepOutput::default());
            }
            Err(e) => return Err(e),
        }
    }
    Ok((outputs, tolerated))
}
