//! The one way rrlab runs a program on this host, and the one shell quoter. Everything else (runtimes,
//! backends, the agent, plans) calls these.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The exit code (None: killed by a signal).
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(stdout: impl Into<String>) -> Output {
        Output { status: Some(0), stdout: stdout.into(), stderr: String::new() }
    }

    pub fn failed(code: i32, stderr: impl Into<String>) -> Output {
        Output { status: Some(code), stdout: String::new(), stderr: stderr.into() }
    }

    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// What to show of a failure: stderr, else stdout.
    pub fn detail(&self) -> &str {
        if self.stderr.trim().is_empty() {
            self.stdout.trim()
        } else {
            self.stderr.trim()
        }
    }
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Output {
        Output {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A command that could not run, or ran and failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot run `{command}`: {error}")]
    Spawn { command: String, error: String },
    #[error("`{command}` failed ({}){}", exit_text(*.status), detail_text(.detail))]
    Failed { command: String, status: Option<i32>, detail: String },
}

fn exit_text(status: Option<i32>) -> String {
    status.map(|c| format!("exit code {c}")).unwrap_or_else(|| "killed by a signal".into())
}

fn detail_text(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(": {d}")
    }
}

/// A program to run: argv (no shell in between), extra environment, working directory, standard input.
#[derive(Debug, Clone, Default)]
pub struct Spec<'a> {
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: Option<&'a Path>,
    pub stdin: Option<&'a str>,
}

/// Run a program and collect its output (a non-zero exit is an [`Output`], not an error).
pub fn run_spec(spec: &Spec) -> std::io::Result<Output> {
    let (prog, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
    let mut cmd = Command::new(prog);
    cmd.args(args);
    for (k, v) in spec.env {
        cmd.env(k, v);
    }
    if let Some(d) = spec.cwd {
        cmd.current_dir(d);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if spec.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn()?;
    if let Some(text) = spec.stdin {
        let mut sin = child.stdin.take().expect("stdin is piped");
        let text = text.to_string();
        // Write from a thread so a child that fills its stdout before reading stdin cannot deadlock us.
        let writer = std::thread::spawn(move || sin.write_all(text.as_bytes()));
        let out = child.wait_with_output()?;
        let _ = writer.join();
        return Ok(out.into());
    }
    Ok(child.wait_with_output()?.into())
}

/// Run `argv` (with `stdin`); its output, or a [`ProcessError`].
pub fn run(argv: &[&str], stdin: Option<&str>) -> Result<Output, ProcessError> {
    let owned: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    run_spec(&Spec { argv: &owned, stdin, ..Default::default() })
        .map_err(|e| ProcessError::Spawn { command: shell_line(argv), error: e.to_string() })
}

/// Run `argv`; its stdout when it exits 0, else a [`ProcessError`] with its stderr.
pub fn run_ok(argv: &[&str]) -> Result<String, ProcessError> {
    checked(argv, run(argv, None)?)
}

/// Ok(stdout) for a successful output, else [`ProcessError::Failed`].
pub fn checked(argv: &[&str], out: Output) -> Result<String, ProcessError> {
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(ProcessError::Failed { command: shell_line(argv), status: out.status, detail: out.detail().to_string() })
    }
}

/// Quote a word for a POSIX shell: unchanged when it only has characters no shell treats specially,
/// otherwise single-quoted (`'` written as `'\''`).
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// argv as one shell line.
pub fn shell_line<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter().map(|a| shell_quote(a.as_ref())).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("kubectl"), "kubectl");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_line(&["echo", "a b", "$X"]), "echo 'a b' '$X'");
    }

    #[test]
    fn runs_and_reports() {
        assert_eq!(run_ok(&["sh", "-c", "echo hi"]).unwrap(), "hi\n");
        let e = run_ok(&["sh", "-c", "echo oops >&2; exit 3"]).unwrap_err();
        assert_eq!(e.to_string(), "`sh -c 'echo oops >&2; exit 3'` failed (exit code 3): oops");
        assert!(matches!(run_ok(&["/nonexistent/x"]), Err(ProcessError::Spawn { .. })));
        let out = run(&["cat"], Some("in")).unwrap();
        assert_eq!(out, Output::ok("in"));
    }
}
