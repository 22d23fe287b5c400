//! The kind backend's container work, through the Docker Engine API (bollard, as the twin's docker runtime):
//! a plan step carries a typed [`DockerOp`], [`super::runner::ProcessRunner`] performs it through the API, and
//! the step's argv is the equivalent `docker` command line, so a printed plan (`--dry-run`) still reads as
//! the commands one would type and the recording runner's tests keep checking exact lines. No `docker`
//! process runs.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

use crate::process::Output;
use crate::runtime::docker::{block_on, Docker};

/// One Docker Engine operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DockerOp {
    /// `docker exec <container> <argv…>`.
    Exec { container: String, argv: Vec<String> },
    /// `docker start <container>`.
    Start { container: String },
    /// `docker stop <container>`.
    Stop { container: String },
    /// `docker pause <container>` (the cgroup freezer).
    Pause { container: String },
    /// `docker unpause <container>`.
    Unpause { container: String },
    /// `docker pull <image>`.
    Pull { image: String },
    /// `docker tag <source> <target>` (`target` as `repo:tag`).
    Tag { source: String, target: String },
    /// `docker cp <host file> <container>:<path>` (one file).
    CopyInto { file: String, container: String, path: String },
    /// `docker ps -a --filter label=<label> --format {{.Names}}`: the names, one per line.
    NamesByLabel { label: String },
    /// The host's own `argv` in the container's network namespace (`nsenter -t <its PID> -n`).
    InNetns { container: String, argv: Vec<String> },
}

impl DockerOp {
    /// The equivalent command line (what a dry run prints).
    pub fn argv(&self) -> Vec<String> {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        match self {
            DockerOp::Exec { container, argv } => {
                let mut out = v(&["docker", "exec", container]);
                out.extend(argv.iter().cloned());
                out
            }
            DockerOp::Start { container } => v(&["docker", "start", container]),
            DockerOp::Stop { container } => v(&["docker", "stop", container]),
            DockerOp::Pause { container } => v(&["docker", "pause", container]),
            DockerOp::Unpause { container } => v(&["docker", "unpause", container]),
            DockerOp::Pull { image } => v(&["docker", "pull", image]),
            DockerOp::Tag { source, target } => v(&["docker", "tag", source, target]),
            DockerOp::CopyInto { file, container, path } => v(&["docker", "cp", file, &format!("{container}:{path}")]),
            DockerOp::NamesByLabel { label } => {
                v(&["docker", "ps", "-a", "--filter", &format!("label={label}"), "--format", "{{.Names}}"])
            }
            DockerOp::InNetns { container, argv } => {
                let script = format!(
                    "pid=$(docker inspect -f '{{{{.State.Pid}}}}' {}) && exec nsenter -t \"$pid\" -n -- \"$@\"",
                    crate::process::shell_quote(container)
                );
                let mut out = v(&["sh", "-c", &script, "rrlab-wan"]);
                out.extend(argv.iter().cloned());
                out
            }
        }
    }
}

fn api(what: &str, e: impl std::fmt::Display) -> Output {
    Output::failed(1, format!("{what}: {e}"))
}

/// Perform an operation through the Engine API. A failure the daemon reports is a failed [`Output`] (as the
/// CLI's exit status would be); only an unreachable daemon is an error.
pub fn perform(op: &DockerOp) -> std::io::Result<Output> {
    let d = Docker::new().map_err(|e| std::io::Error::other(e.to_string()))?;
    let c = d.client();
    let line = crate::process::shell_line(&op.argv());
    Ok(match op {
        DockerOp::Exec { container, argv } => {
            let a: Vec<&str> = argv.iter().map(String::as_str).collect();
            match block_on(d.exec_async(container, &a)) {
                Ok(o) => o.into(),
                Err(e) => api(&line, e),
            }
        }
        DockerOp::Start { container } => match block_on(c.start_container(container, None)) {
            Ok(()) => Output::ok(format!("{container}\n")),
            Err(e) => api(&line, e),
        },
        DockerOp::Stop { container } => match d.stop(container, Duration::from_secs(10)) {
            Ok(()) => Output::ok(format!("{container}\n")),
            Err(e) => api(&line, e),
        },
        DockerOp::Pause { container } => match block_on(c.pause_container(container)) {
            Ok(()) => Output::ok(format!("{container}\n")),
            Err(e) => api(&line, e),
        },
        DockerOp::Unpause { container } => match block_on(c.unpause_container(container)) {
            Ok(()) => Output::ok(format!("{container}\n")),
            Err(e) => api(&line, e),
        },
        DockerOp::Pull { image } => {
            let o = bollard::query_parameters::CreateImageOptionsBuilder::default().from_image(image).build();
            let r = block_on(async {
                let mut s = c.create_image(Some(o), None, None);
                while let Some(x) = s.next().await {
                    x?;
                }
                Ok::<(), bollard::errors::Error>(())
            });
            match r {
                Ok(()) => Output::ok(format!("{image}\n")),
                Err(e) => api(&line, e),
            }
        }
        DockerOp::Tag { source, target } => {
            let (repo, tag) = split_tag(target);
            let o = bollard::query_parameters::TagImageOptions { repo: Some(repo), tag: Some(tag) };
            match block_on(c.tag_image(source, Some(o))) {
                Ok(()) => Output::ok(""),
                Err(e) => api(&line, e),
            }
        }
        DockerOp::CopyInto { file, container, path } => {
            let p = std::path::Path::new(path);
            let (dir, name) =
                (p.parent().map(|d| d.display().to_string()).unwrap_or_else(|| "/".into()), p.file_name());
            let Some(name) = name else { return Ok(api(&line, "the destination names no file")) };
            let tar = match one_file_tar(std::path::Path::new(file), &name.to_string_lossy()) {
                Ok(t) => t,
                Err(e) => return Ok(api(&line, e)),
            };
            let o = bollard::query_parameters::UploadToContainerOptions { path: dir, ..Default::default() };
            match block_on(c.upload_to_container(container, Some(o), bollard::body_full(tar.into()))) {
                Ok(()) => Output::ok(""),
                Err(e) => api(&line, e),
            }
        }
        DockerOp::NamesByLabel { label } => {
            let filters = std::collections::HashMap::from([("label".to_string(), vec![label.clone()])]);
            let o =
                bollard::query_parameters::ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
            match block_on(c.list_containers(Some(o))) {
                Ok(list) => Output::ok(names_text(list.iter().map(|x| x.names.clone().unwrap_or_default()))),
                Err(e) => api(&line, e),
            }
        }
        DockerOp::InNetns { container, argv } => match d.pid(container) {
            Ok(pid) => {
                let pid = pid.to_string();
                let mut a = vec!["nsenter", "-t", pid.as_str(), "-n", "--"];
                a.extend(argv.iter().map(String::as_str));
                match crate::process::run(&a, None) {
                    Ok(o) => o,
                    Err(e) => api(&line, e),
                }
            }
            Err(e) => api(&line, e),
        },
    })
}

/// `repo[:tag]` → (repo, tag); the tag defaults to `latest` (a `:` inside a registry's host:port is not one).
pub fn split_tag(target: &str) -> (String, String) {
    match target.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (target.to_string(), "latest".to_string()),
    }
}

/// The names the API lists (`/clab-lab-wan`), as `docker ps --format {{.Names}}` prints them.
pub fn names_text(names: impl Iterator<Item = Vec<String>>) -> String {
    names.filter_map(|n| n.first().map(|s| format!("{}\n", s.trim_start_matches('/')))).collect()
}

/// A tar archive holding one file, executable, under `name` (what `docker cp` sends).
pub fn one_file_tar(file: &std::path::Path, name: &str) -> std::io::Result<Vec<u8>> {
    let data = std::fs::read(file)?;
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o755);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, name, data.as_slice())?;
    b.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_command_lines() {
        let line = |op: DockerOp| crate::process::shell_line(&op.argv());
        assert_eq!(line(DockerOp::Stop { container: "cluster1-worker2".into() }), "docker stop cluster1-worker2");
        assert_eq!(line(DockerOp::Pause { container: "hybrid-worker3".into() }), "docker pause hybrid-worker3");
        assert_eq!(line(DockerOp::Unpause { container: "hybrid-worker3".into() }), "docker unpause hybrid-worker3");
        assert_eq!(
            line(DockerOp::CopyInto {
                file: "/b/calicoctl".into(),
                container: "n1".into(),
                path: "/usr/local/bin/calicoctl".into()
            }),
            "docker cp /b/calicoctl n1:/usr/local/bin/calicoctl"
        );
        assert_eq!(
            line(DockerOp::NamesByLabel { label: "containerlab=hybrid-rr".into() }),
            "docker ps -a --filter label=containerlab=hybrid-rr --format '{{.Names}}'"
        );
    }

    #[test]
    fn tags_names_and_archives() {
        assert_eq!(
            split_tag("docker.io/library/busybox:1.36.1"),
            ("docker.io/library/busybox".into(), "1.36.1".into())
        );
        assert_eq!(split_tag("localhost:5000/x"), ("localhost:5000/x".into(), "latest".into()));
        assert_eq!(names_text(vec![vec!["/clab-lab-wan".to_string()], vec![]].into_iter()), "clab-lab-wan\n");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("calicoctl");
        std::fs::write(&f, b"#!/bin/sh\n").unwrap();
        let t = one_file_tar(&f, "calicoctl").unwrap();
        let mut a = tar::Archive::new(t.as_slice());
        let e: Vec<(String, u32, u64)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.header().mode().unwrap(), e.size())
            })
            .collect();
        assert_eq!(e, vec![("calicoctl".to_string(), 0o755, 10)]);
    }
}
