//! Runtime `docker`: a node is a container (network-admin capabilities, no --privileged) of the locally built node image (Debian bookworm with
//! BIRD 1.6.8, iproute2, iptables, ipset), with no Docker network at all (`--network none`): rrlab plumbs its
//! links into the container's namespace itself, so the lab has no route off the host. Containers are named like
//! kind's node containers and labelled `rrlab.lab=<lab>`; BIRD's files and socket sit at Calico's paths inside,
//! bind-mounted from the node's state directory; the rrlab binary is bind-mounted read-only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{cmd, NodeRef, Runtime, RuntimeError};

/// Packages of the node image. Changing this list changes the image tag.
pub const PACKAGES: &[&str] = &["bird", "iproute2", "iptables", "ipset", "iputils-ping", "procps", "tcpdump"];
pub const SUITE: &str = "bookworm";

pub struct Docker {
    pub image: String,
}

/// The image tag: a hash of the recipe.
pub fn image_tag() -> String {
    use sha2::{Digest, Sha256};
    let recipe = format!("mmdebstrap --variant=apt --include={} {SUITE}", PACKAGES.join(","));
    let h = Sha256::digest(recipe.as_bytes());
    format!("rrlab/node:{}", h.iter().take(6).map(|b| format!("{b:02x}")).collect::<String>())
}

fn docker(args: &[&str]) -> Result<String, RuntimeError> {
    let mut argv = vec!["docker"];
    argv.extend_from_slice(args);
    cmd(&argv)
}

impl Docker {
    /// A runtime bound to a running Docker daemon.
    pub fn new() -> Result<Docker, RuntimeError> {
        let ok = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match ok {
            Ok(s) if s.success() => Ok(Docker { image: image_tag() }),
            _ => Err(RuntimeError::Unavailable(
                "docker".into(),
                "no Docker daemon answers (`docker info` failed)".into(),
            )),
        }
    }

    pub fn image_present(&self) -> bool {
        docker(&["image", "inspect", &self.image]).is_ok()
    }

    /// Build the node image with no registry: a Debian rootfs from mmdebstrap piped into `docker import`.
    pub fn build_image(&self) -> Result<(), RuntimeError> {
        if self.image_present() {
            return Ok(());
        }
        if Command::new("mmdebstrap").arg("--version").stdout(Stdio::null()).status().is_err() {
            return Err(RuntimeError::Unavailable(
                "docker".into(),
                "mmdebstrap is needed to build the node image (apt-get install mmdebstrap)".into(),
            ));
        }
        let include = format!("--include={}", PACKAGES.join(","));
        let script = format!(
            "set -o pipefail; mmdebstrap --quiet --variant=apt {include} --customize-hook='rm -f \"$1\"/etc/bird/bird.conf' {SUITE} - | docker import --change 'CMD [\"sleep\",\"infinity\"]' - {}",
            self.image
        );
        let out = Command::new("bash").args(["-c", &script]).output().map_err(|e| RuntimeError::Io(e.to_string()))?;
        if !out.status.success() {
            return Err(RuntimeError::Command(format!(
                "building {}: {}",
                self.image,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    fn pid(&self, name: &str) -> Result<String, RuntimeError> {
        Ok(docker(&["inspect", "-f", "{{.State.Pid}}", name])?.trim().to_string())
    }

    /// Remove a lab's containers (by label); returns what was removed.
    pub fn remove_lab(&self, lab: &str) -> Vec<String> {
        self.remove_by_filter(&format!("label=rrlab.lab={lab}"))
    }

    /// Remove every rrlab container.
    pub fn remove_all(&self) -> Vec<String> {
        self.remove_by_filter("label=rrlab.lab")
    }

    fn remove_by_filter(&self, filter: &str) -> Vec<String> {
        let ids = docker(&["ps", "-aq", "--filter", filter]).unwrap_or_default();
        let mut out = Vec::new();
        for id in ids.split_whitespace() {
            let name = docker(&["inspect", "-f", "{{.Name}}", id])
                .unwrap_or_default()
                .trim()
                .trim_start_matches('/')
                .to_string();
            if docker(&["rm", "-f", id]).is_ok() {
                out.push(format!("container {name}"));
            }
        }
        out
    }
}

impl Runtime for Docker {
    fn kind(&self) -> super::RuntimeKind {
        super::RuntimeKind::Docker
    }

    fn inside_dir(&self, _state_dir: &Path) -> PathBuf {
        PathBuf::from("/var/lib/rrlab")
    }

    fn inside_bin(&self) -> Result<PathBuf, RuntimeError> {
        Ok(PathBuf::from("/usr/local/bin/rrlab"))
    }

    fn create_node(&self, n: &NodeRef, state_dir: &Path) -> Result<(), RuntimeError> {
        self.build_image()?;
        let dir = state_dir.to_path_buf();
        let exe = super::rrlab_binary()?;
        let v = |host: PathBuf, inside: &str, ro: bool| {
            format!("{}:{inside}{}", host.display(), if ro { ":ro" } else { "" })
        };
        docker(&[
            "run",
            "-d",
            // What a calico-node needs, without --privileged (which also wants CAP_SYS_MODULE, refused on
            // hosts that are themselves containers): network admin, raw sockets (IPIP), mounts (pod netns),
            // the TUN device (tunl0 without the ipip module) and a writable /proc/sys (Felix's sysctls).
            "--cap-add",
            "NET_ADMIN",
            "--cap-add",
            "NET_RAW",
            "--cap-add",
            "SYS_ADMIN",
            "--device",
            "/dev/net/tun",
            "--security-opt",
            "systempaths=unconfined",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
            "--network",
            "none",
            "--name",
            &n.node,
            "--hostname",
            &n.node,
            "--label",
            &format!("rrlab.lab={}", n.lab),
            "--label",
            &format!("rrlab.node={}", n.node),
            "-v",
            &v(exe, "/usr/local/bin/rrlab", true),
            "-v",
            &v(dir.clone(), "/var/lib/rrlab", false),
            "-v",
            &v(dir.join("etc/calico"), "/etc/calico", false),
            "-v",
            &v(dir.join("run/calico"), "/var/run/calico", false),
            &self.image,
            "sleep",
            "infinity",
        ])?;
        Ok(())
    }

    fn netns_handle(&self, n: &NodeRef) -> Result<String, RuntimeError> {
        self.pid(&n.node)
    }

    fn exec(&self, n: &NodeRef, argv: &[&str]) -> Result<std::process::Output, RuntimeError> {
        Command::new("docker").arg("exec").arg(&n.node).args(argv).output().map_err(|e| RuntimeError::Io(e.to_string()))
    }

    fn spawn_agent(&self, n: &NodeRef, _state_dir: &Path, _rrlab_bin: &Path) -> Result<u32, RuntimeError> {
        docker(&[
            "exec",
            "-d",
            &n.node,
            "sh",
            "-c",
            &format!(
                "exec /usr/local/bin/rrlab agent --node {} --state-dir /var/lib/rrlab >/var/lib/rrlab/agent.log 2>&1",
                n.node
            ),
        ])?;
        Ok(0)
    }

    fn node_path(&self, _n: &NodeRef, state_dir: &Path, calico_path: &str) -> PathBuf {
        match calico_path {
            "/var/run/calico/bird.ctl" => state_dir.join("run/calico/bird.ctl"),
            p => state_dir.join(p.trim_start_matches('/')),
        }
    }

    fn destroy_node(&self, n: &NodeRef) -> Result<(), RuntimeError> {
        let _ = docker(&["rm", "-f", &n.node]);
        Ok(())
    }
}
