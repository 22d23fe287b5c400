//! Runtime `netns`: a node is a network namespace named `rrlab-<lab>-<node>` on this host; its processes (BIRD,
//! the agent) are host processes entered into that namespace; its files live in the lab's state directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{cmd, NodeRef, Runtime, RuntimeError};

pub struct Netns;

/// The host programs a netns node runs (its BIRD, Felix's ipset/iptables, the pods' plumbing, pings), with the
/// Debian package of each.
pub const HOST_TOOLS: &[(&str, &str)] = &[
    ("bird", "bird"),
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("ipset", "ipset"),
    ("iptables", "iptables"),
    ("iptables-restore", "iptables"),
    ("ping", "iputils-ping"),
];

/// Which of `tools` are on none of the directories of `path` (a `PATH` value).
pub fn missing_tools<'a>(path: &str, tools: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let dirs: Vec<&Path> = path.split(':').filter(|d| !d.is_empty()).map(Path::new).collect();
    tools.iter().copied().filter(|(t, _)| !dirs.iter().any(|d| d.join(t).is_file())).collect()
}

/// Checked before a netns lab is started: every host tool its nodes run is installed.
pub fn check_host_tools() -> Result<(), RuntimeError> {
    let path = std::env::var("PATH").unwrap_or_default();
    // sbin directories hold bird and ipset; a non-login root shell may lack them.
    let path = format!("{path}:/usr/sbin:/sbin:/usr/local/sbin");
    let missing = missing_tools(&path, HOST_TOOLS);
    if missing.is_empty() {
        return Ok(());
    }
    let mut pkgs: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    pkgs.dedup();
    Err(RuntimeError::Unavailable(
        "netns".into(),
        format!(
            "it runs its nodes' programs from this host, and {} not installed ({}); on Debian: \
         apt-get install {}",
            if missing.len() == 1 { "this one is" } else { "these are" },
            missing.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", "),
            pkgs.join(" ")
        ),
    ))
}

pub fn ns_name(lab: &str, node: &str) -> String {
    format!("rrlab-{lab}-{node}")
}

impl Runtime for Netns {
    fn kind(&self) -> super::RuntimeKind {
        super::RuntimeKind::Netns
    }

    fn create_node(&self, n: &NodeRef, _state_dir: &Path) -> Result<(), RuntimeError> {
        let ns = ns_name(&n.lab, &n.node);
        cmd(&["ip", "netns", "add", &ns])?;
        cmd(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    fn netns_path(&self, n: &NodeRef) -> Result<PathBuf, RuntimeError> {
        Ok(Path::new("/var/run/netns").join(ns_name(&n.lab, &n.node)))
    }

    fn netns_handle(&self, n: &NodeRef) -> Result<String, RuntimeError> {
        Ok(ns_name(&n.lab, &n.node))
    }

    fn exec(&self, n: &NodeRef, argv: &[&str]) -> Result<std::process::Output, RuntimeError> {
        let ns = ns_name(&n.lab, &n.node);
        let mut full = vec!["ip", "netns", "exec", ns.as_str()];
        full.extend_from_slice(argv);
        Command::new(full[0])
            .args(&full[1..])
            .output()
            .map_err(|e| RuntimeError::Io(format!("{}: {e}", argv.join(" "))))
    }

    fn spawn_agent(&self, n: &NodeRef, state_dir: &Path, rrlab_bin: &Path) -> Result<u32, RuntimeError> {
        let ns = ns_name(&n.lab, &n.node);
        let log = std::fs::File::create(state_dir.join("agent.log")).map_err(|e| RuntimeError::Io(e.to_string()))?;
        // nsenter switches only the network namespace: `ip netns exec` would also give the agent a private mount
        // namespace, and the pod namespaces it creates (`ip netns add`) would then be invisible outside it.
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/var/run/netns/{ns}"))
            .arg("--")
            .arg(rrlab_bin)
            .args(["agent", "--node", &n.node, "--state-dir"])
            .arg(state_dir)
            .arg("--config-dir")
            .arg(state_dir.join("etc/calico/confd/config"))
            .arg("--socket")
            .arg(state_dir.join("run/calico/bird.ctl"))
            .env("RRLAB_LAB", &n.lab)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| RuntimeError::Io(e.to_string()))?)
            .stderr(log);
        // The agent outlives this process: it must not keep whatever descriptors our caller gave us (a
        // `flock` around `rrlab up` would stay locked as long as the lab runs).
        // Marked close-on-exec (not closed: std's own exec-error pipe must stay usable).
        // SAFETY: close_range is async-signal-safe and only changes descriptor flags in the child.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| RuntimeError::Io(format!("spawning agent: {e}")))?;
        let pid = child.id();
        std::fs::write(state_dir.join("agent.pid"), pid.to_string()).map_err(|e| RuntimeError::Io(e.to_string()))?;
        // The child is reaped by init when rrlab exits; keep no handle.
        std::mem::forget(child);
        Ok(pid)
    }

    fn node_path(&self, _n: &NodeRef, state_dir: &Path, calico_path: &str) -> PathBuf {
        // Calico's paths map into the node's state directory.
        match calico_path {
            "/var/run/calico/bird.ctl" => state_dir.join("run/calico/bird.ctl"),
            p => state_dir.join(p.trim_start_matches('/')),
        }
    }

    // SIGSTOP/SIGCONT to every process in the namespace: the netns runtime's stand-in for a cgroup freezer.
    fn freeze(&self, n: &NodeRef, frozen: bool) -> Result<(), RuntimeError> {
        let ns = ns_name(&n.lab, &n.node);
        let pids = ns_pids(&ns);
        if pids.is_empty() {
            return Err(RuntimeError::Command(format!(
                "namespace {ns}: no process to {}",
                if frozen { "freeze" } else { "thaw" }
            )));
        }
        for p in pids {
            // SAFETY: sending a signal to a pid has no memory-safety implications.
            unsafe {
                libc::kill(p, if frozen { libc::SIGSTOP } else { libc::SIGCONT });
            }
        }
        Ok(())
    }

    fn destroy_node(&self, n: &NodeRef) -> Result<(), RuntimeError> {
        let ns = ns_name(&n.lab, &n.node);
        kill_ns_processes(&ns);
        let _ = cmd(&["ip", "netns", "del", &ns]);
        Ok(())
    }
}

pub fn list_netns() -> Vec<String> {
    std::fs::read_dir("/var/run/netns")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// The processes whose network namespace is `ns` (`ip netns pids`).
fn ns_pids(ns: &str) -> Vec<i32> {
    match Command::new("ip").args(["netns", "pids", ns]).output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Kill every process whose network namespace is `ns` (`ip netns pids`).
pub fn kill_ns_processes(ns: &str) {
    for p in ns_pids(ns) {
        // SAFETY: sending a signal to a pid has no memory-safety implications.
        unsafe {
            libc::kill(p, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_host_tools_are_named_with_their_packages() {
        let d = std::env::temp_dir().join(format!("rrlab-tools-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("ip"), "").unwrap();
        let tools = [("ip", "iproute2"), ("bird", "bird")];
        assert_eq!(missing_tools(&format!("/nonexistent:{}", d.display()), &tools), vec![("bird", "bird")]);
        assert_eq!(missing_tools("", &tools), tools.to_vec());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
