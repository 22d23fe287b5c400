//! Runtime `docker`: a node is a container (network-admin capabilities, no --privileged) of the locally built node
//! image (Debian bookworm with BIRD 1.6.8, iproute2, iptables, ipset), with no Docker network at all (network mode
//! `none`): rrlab plumbs its links into the container's namespace itself, so the lab has no route off the host.
//! Containers are named like kind's node containers and labelled `rrlab.lab=<lab>`, `rrlab.node=<node>`; BIRD's
//! files and socket sit at Calico's paths inside, bind-mounted from the node's state directory; the rrlab binary
//! is bind-mounted read-only.
//!
//! Everything goes through the Docker Engine API ([bollard]) on one small process-wide tokio runtime; no `docker`
//! process is ever started. The API version is negotiated down to what the daemon speaks (Docker 20.10: 1.41;
//! see `connect`).

#[path = "docker_image.rs"]
pub mod image;

use std::collections::HashMap;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::sync::OnceLock;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, DeviceMapping, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::ClientVersion;
use futures_util::StreamExt;

use super::{NodeRef, Runtime, RuntimeError};

pub use image::{image_tag, PACKAGES, SUITE};

/// Where the daemon is looked for when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// How long `Docker::new` waits for a daemon to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of any one API request (image imports stream for longer: see `docker_image.rs`).
const REQUEST_TIMEOUT_S: u64 = 600;

/// Errors of the Docker API client.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("no Docker daemon answers at {host}: {reason}")]
    NoDaemon { host: String, reason: String },
    #[error("DOCKER_HOST={0:?} is not supported (unix://… or tcp://…)")]
    UnsupportedHost(String),
    #[error("docker API: {what}: {source}")]
    Api {
        what: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("node image: {0}")]
    Image(String),
    #[error("{0}")]
    Io(String),
}

impl DockerError {
    fn api(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
        let what = what.into();
        move |source| DockerError::Api { what, source }
    }
}

impl From<DockerError> for RuntimeError {
    fn from(e: DockerError) -> RuntimeError {
        match e {
            DockerError::NoDaemon { .. } | DockerError::UnsupportedHost(_) => {
                RuntimeError::Unavailable("docker".into(), e.to_string())
            }
            DockerError::Io(m) => RuntimeError::Io(m),
            e => RuntimeError::Command(e.to_string()),
        }
    }
}

/// The process-wide tokio runtime the Docker client runs on (two workers: the API calls are I/O-bound).
pub fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rrlab-docker")
            .enable_all()
            .build()
            .expect("building the tokio runtime")
    })
}

/// Run a future to completion from synchronous code (any thread that is not itself a runtime worker).
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio_runtime().block_on(f)
}

/// The maximum API version in a daemon's refusal of a too-new client, e.g. Docker 20.10's
/// `client version 1.53 is too new. Maximum supported API version is 1.41`.
pub fn max_api_version(message: &str) -> Option<ClientVersion> {
    let rest = message.split("Maximum supported API version is ").nth(1)?;
    let v = rest.split(|c: char| !(c.is_ascii_digit() || c == '.')).next()?;
    let (major, minor) = v.split_once('.')?;
    Some(ClientVersion { major_version: major.parse().ok()?, minor_version: minor.parse().ok()? })
}

fn connect_with(host: &str, v: &ClientVersion) -> Result<bollard::Docker, DockerError> {
    let r = if host.starts_with("unix://") || host.starts_with('/') {
        bollard::Docker::connect_with_unix(host, REQUEST_TIMEOUT_S, v)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        bollard::Docker::connect_with_http(host, REQUEST_TIMEOUT_S, v)
    } else {
        return Err(DockerError::UnsupportedHost(host.to_string()));
    };
    r.map_err(|e| DockerError::NoDaemon { host: host.to_string(), reason: e.to_string() })
}

/// Connect and negotiate the API version: bollard's newest first, lowered to the daemon's (`negotiate_version`).
/// A daemon that refuses a too-new version names its maximum (Docker 20.10 refuses every request versioned above
/// 1.41, `/version` included), and that is used instead. Note: bollard 0.21.1 joins each endpoint onto its
/// versioned base URL as an absolute path, which drops the `/v1.xx` prefix, so its requests go out unversioned
/// and a daemon serves them at its own API version; the fallback is for a bollard that sends the prefix.
async fn connect(host: &str) -> Result<bollard::Docker, DockerError> {
    let no_daemon = |reason: String| DockerError::NoDaemon { host: host.to_string(), reason };
    let mut version = *bollard::API_DEFAULT_VERSION;
    for _ in 0..2 {
        let client = connect_with(host, &version)?;
        match tokio::time::timeout(CONNECT_TIMEOUT, client.negotiate_version()).await {
            Err(_) => return Err(no_daemon(format!("no answer within {CONNECT_TIMEOUT:?}"))),
            Ok(Ok(c)) => return Ok(c),
            Ok(Err(bollard::errors::Error::DockerResponseServerError { status_code: 400, message })) => {
                match max_api_version(&message) {
                    Some(v) if v < version => version = v,
                    _ => return Err(no_daemon(message)),
                }
            }
            Ok(Err(e)) => return Err(no_daemon(e.to_string())),
        }
    }
    Err(no_daemon("API version negotiation did not settle".into()))
}

/// A runtime bound to a running Docker daemon.
pub struct Docker {
    pub image: String,
    client: bollard::Docker,
}

/// The labels that mark a container as a node of an rrlab lab.
pub fn node_labels(n: &NodeRef) -> HashMap<String, String> {
    HashMap::from([("rrlab.lab".to_string(), n.lab.clone()), ("rrlab.node".to_string(), n.node.clone())])
}

/// What `docker run` is asked for a node: what a calico-node needs, without --privileged (which also wants
/// CAP_SYS_MODULE, refused on hosts that are themselves containers): network admin, raw sockets (IPIP), mounts
/// (pod netns), the TUN device (tunl0 without the ipip module) and a writable /proc/sys (Felix's sysctls; the
/// CLI's `--security-opt systempaths=unconfined` is empty masked and read-only path lists in the API).
pub fn node_container_body(image: &str, n: &NodeRef, state_dir: &Path, rrlab_bin: &Path) -> ContainerCreateBody {
    let bind =
        |host: &Path, inside: &str, ro: bool| format!("{}:{inside}{}", host.display(), if ro { ":ro" } else { "" });
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["sleep".into(), "infinity".into()]),
        hostname: Some(n.node.clone()),
        labels: Some(node_labels(n)),
        host_config: Some(HostConfig {
            cap_add: Some(vec!["NET_ADMIN".into(), "NET_RAW".into(), "SYS_ADMIN".into()]),
            devices: Some(vec![DeviceMapping {
                path_on_host: Some("/dev/net/tun".into()),
                path_in_container: Some("/dev/net/tun".into()),
                cgroup_permissions: Some("rwm".into()),
            }]),
            security_opt: Some(vec!["seccomp=unconfined".into(), "apparmor=unconfined".into()]),
            masked_paths: Some(Vec::new()),
            readonly_paths: Some(Vec::new()),
            network_mode: Some("none".into()),
            binds: Some(vec![
                bind(rrlab_bin, "/usr/local/bin/rrlab", true),
                bind(state_dir, "/var/lib/rrlab", false),
                bind(&state_dir.join("etc/calico"), "/etc/calico", false),
                bind(&state_dir.join("run/calico"), "/var/run/calico", false),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The label filter of a lab's containers, or of every rrlab container.
pub fn label_filter(lab: Option<&str>) -> HashMap<String, Vec<String>> {
    let f = match lab {
        Some(l) => format!("rrlab.lab={l}"),
        None => "rrlab.lab".to_string(),
    };
    HashMap::from([("label".to_string(), vec![f])])
}

/// A process exit status from an exit code (as `waitpid` reports a normal exit).
pub fn exit_status(code: i64) -> ExitStatus {
    ExitStatus::from_raw(((code & 0xff) as i32) << 8)
}

impl Docker {
    /// A runtime bound to a running Docker daemon (`DOCKER_HOST`, else the local socket). Fails within a few
    /// seconds with `RuntimeError::Unavailable` when none answers.
    pub fn new() -> Result<Docker, RuntimeError> {
        let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| DEFAULT_HOST.into());
        let client = block_on(connect(&host))?;
        Ok(Docker { image: image_tag(), client })
    }

    /// The bollard client (for tests and the image builder).
    pub fn client(&self) -> &bollard::Docker {
        &self.client
    }

    /// The API version agreed with the daemon.
    pub fn api_version(&self) -> String {
        let v = self.client.client_version();
        format!("{}.{}", v.major_version, v.minor_version)
    }

    pub fn image_present(&self) -> bool {
        block_on(self.client.inspect_image(&self.image)).is_ok()
    }

    /// Build the node image if it is not there (see `docker_image.rs`), printing progress on stderr.
    pub fn build_image(&self) -> Result<(), RuntimeError> {
        self.build_image_with(&|m| eprintln!("rrlab image: {m}"))
    }

    pub fn build_image_with(&self, progress: &(dyn Fn(&str) + Sync)) -> Result<(), RuntimeError> {
        if self.image_present() {
            return Ok(());
        }
        block_on(image::build(&self.client, &self.image, progress))?;
        Ok(())
    }

    /// The container's main process (host view), whose network namespace is the node's.
    pub fn pid(&self, name: &str) -> Result<u32, DockerError> {
        let c =
            block_on(self.client.inspect_container(name, None)).map_err(DockerError::api(format!("inspect {name}")))?;
        match c.state.and_then(|s| s.pid) {
            Some(p) if p > 0 => Ok(p as u32),
            _ => Err(DockerError::Image(format!("container {name} is not running"))),
        }
    }

    /// Run a command in a container; stdout and stderr apart, the exit code as the status.
    pub async fn exec_async(&self, container: &str, argv: &[&str]) -> Result<Output, DockerError> {
        let what = || format!("exec in {container}: {}", argv.join(" "));
        let e = self
            .client
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(argv.iter().map(|s| s.to_string()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(DockerError::api(what()))?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        if let StartExecResults::Attached { mut output, .. } =
            self.client.start_exec(&e.id, None).await.map_err(DockerError::api(what()))?
        {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(DockerError::api(what()))? {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        stdout.extend_from_slice(&message)
                    }
                    LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                    LogOutput::StdIn { .. } => {}
                }
            }
        }
        // The stream ends when the process closes its output; its exit code follows shortly.
        for _ in 0..200 {
            let i = self.client.inspect_exec(&e.id).await.map_err(DockerError::api(what()))?;
            if i.running != Some(true) {
                if let Some(code) = i.exit_code {
                    return Ok(Output { status: exit_status(code), stdout, stderr });
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Err(DockerError::Image(format!("{}: no exit code", what())))
    }

    /// Start a command in a container and return at once (`docker exec -d`).
    pub async fn exec_detached(&self, container: &str, argv: &[&str]) -> Result<(), DockerError> {
        let what = || format!("exec -d in {container}: {}", argv.join(" "));
        let e = self
            .client
            .create_exec(
                container,
                CreateExecOptions { cmd: Some(argv.iter().map(|s| s.to_string()).collect()), ..Default::default() },
            )
            .await
            .map_err(DockerError::api(what()))?;
        self.client
            .start_exec(&e.id, Some(StartExecOptions { detach: true, ..Default::default() }))
            .await
            .map_err(DockerError::api(what()))?;
        Ok(())
    }

    /// Stop a container (SIGTERM, then SIGKILL after `grace`).
    pub fn stop(&self, name: &str, grace: Duration) -> Result<(), DockerError> {
        let o = bollard::query_parameters::StopContainerOptionsBuilder::default().t(grace.as_secs() as i32).build();
        block_on(self.client.stop_container(name, Some(o))).map_err(DockerError::api(format!("stop {name}")))
    }

    /// Remove a lab's containers (by label); returns what was removed.
    pub fn remove_lab(&self, lab: &str) -> Vec<String> {
        block_on(self.remove_by_filter(label_filter(Some(lab))))
    }

    /// Remove every rrlab container (those carrying the `rrlab.lab` label, nothing else).
    pub fn remove_all(&self) -> Vec<String> {
        block_on(self.remove_by_filter(label_filter(None)))
    }

    async fn remove_by_filter(&self, filters: HashMap<String, Vec<String>>) -> Vec<String> {
        let o = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let Ok(list) = self.client.list_containers(Some(o)).await else { return Vec::new() };
        let removals = list.into_iter().filter_map(|c| {
            // The daemon filtered by label; check again so that nothing else is ever removed.
            c.labels.as_ref()?.get("rrlab.lab")?;
            let id = c.id?;
            let name = c.names.and_then(|n| n.first().cloned()).unwrap_or_else(|| id.clone());
            Some(async move {
                let o = RemoveContainerOptionsBuilder::default().force(true).build();
                self.client
                    .remove_container(&id, Some(o))
                    .await
                    .ok()
                    .map(|_| format!("container {}", name.trim_start_matches('/')))
            })
        });
        futures_util::future::join_all(removals).await.into_iter().flatten().collect()
    }

    async fn create_and_start(&self, n: &NodeRef, state_dir: &Path) -> Result<(), DockerError> {
        let exe = super::rrlab_binary().map_err(|e| DockerError::Io(e.to_string()))?;
        let body = node_container_body(&self.image, n, state_dir, &exe);
        let o = CreateContainerOptionsBuilder::default().name(&n.node).build();
        self.client.create_container(Some(o), body).await.map_err(DockerError::api(format!("create {}", n.node)))?;
        self.client.start_container(&n.node, None).await.map_err(DockerError::api(format!("start {}", n.node)))?;
        Ok(())
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
        block_on(self.create_and_start(n, state_dir))?;
        Ok(())
    }

    fn netns_handle(&self, n: &NodeRef) -> Result<String, RuntimeError> {
        Ok(self.pid(&n.node)?.to_string())
    }

    fn netns_path(&self, n: &NodeRef) -> Result<PathBuf, RuntimeError> {
        Ok(PathBuf::from(format!("/proc/{}/ns/net", self.pid(&n.node)?)))
    }

    fn exec(&self, n: &NodeRef, argv: &[&str]) -> Result<Output, RuntimeError> {
        Ok(block_on(self.exec_async(&n.node, argv))?)
    }

    fn spawn_agent(&self, n: &NodeRef, _state_dir: &Path, _rrlab_bin: &Path) -> Result<u32, RuntimeError> {
        let cmd = format!(
            "exec /usr/local/bin/rrlab agent --node {} --state-dir /var/lib/rrlab >/var/lib/rrlab/agent.log 2>&1",
            n.node
        );
        block_on(self.exec_detached(&n.node, &["sh", "-c", &cmd]))?;
        Ok(0)
    }

    fn node_path(&self, _n: &NodeRef, state_dir: &Path, calico_path: &str) -> PathBuf {
        match calico_path {
            "/var/run/calico/bird.ctl" => state_dir.join("run/calico/bird.ctl"),
            p => state_dir.join(p.trim_start_matches('/')),
        }
    }

    // The container's cgroup frozen (`docker pause`), as a hung machine.
    fn freeze(&self, n: &NodeRef, frozen: bool) -> Result<(), RuntimeError> {
        let r = if frozen {
            block_on(self.client.pause_container(&n.node))
        } else {
            block_on(self.client.unpause_container(&n.node))
        };
        r.map_err(|e| RuntimeError::Command(format!("{} {}: {e}", if frozen { "pause" } else { "unpause" }, n.node)))
    }

    fn destroy_node(&self, n: &NodeRef) -> Result<(), RuntimeError> {
        // A frozen node is thawed first, so that nothing of it waits on the freezer (none when it is not paused).
        let _ = block_on(self.client.unpause_container(&n.node));
        let o = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = block_on(self.client.remove_container(&n.node, Some(o)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_api_version_from_docker_20_10s_refusal() {
        let v = max_api_version("client version 1.53 is too new. Maximum supported API version is 1.41").unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(max_api_version("page not found").is_none());
        assert!(max_api_version("Maximum supported API version is x").is_none());
    }

    #[test]
    fn exit_status_carries_the_code() {
        assert!(exit_status(0).success());
        assert_eq!(exit_status(1).code(), Some(1));
        assert_eq!(exit_status(127).code(), Some(127));
    }

    #[test]
    fn node_container_is_what_docker_run_made() {
        let n = NodeRef { lab: "dmini".into(), node: "dmini-worker".into() };
        let b = node_container_body(
            "rrlab/node:x",
            &n,
            Path::new("/run/rrlab/dmini/dmini-worker"),
            Path::new("/bin/rrlab"),
        );
        assert_eq!(b.image.as_deref(), Some("rrlab/node:x"));
        assert_eq!(b.hostname.as_deref(), Some("dmini-worker"));
        let l = b.labels.unwrap();
        assert_eq!(l["rrlab.lab"], "dmini");
        assert_eq!(l["rrlab.node"], "dmini-worker");
        let h = b.host_config.unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert_eq!(h.cap_add.unwrap(), vec!["NET_ADMIN", "NET_RAW", "SYS_ADMIN"]);
        assert_eq!(h.privileged, None);
        assert_eq!(h.masked_paths, Some(vec![]));
        assert_eq!(h.readonly_paths, Some(vec![]));
        assert_eq!(h.devices.unwrap()[0].path_in_container.as_deref(), Some("/dev/net/tun"));
        assert_eq!(
            h.binds.unwrap(),
            vec![
                "/bin/rrlab:/usr/local/bin/rrlab:ro",
                "/run/rrlab/dmini/dmini-worker:/var/lib/rrlab",
                "/run/rrlab/dmini/dmini-worker/etc/calico:/etc/calico",
                "/run/rrlab/dmini/dmini-worker/run/calico:/var/run/calico",
            ]
        );
    }

    #[test]
    fn label_filters_only_match_rrlab_containers() {
        assert_eq!(label_filter(Some("dmini"))["label"], vec!["rrlab.lab=dmini"]);
        assert_eq!(label_filter(None)["label"], vec!["rrlab.lab"]);
    }

    #[test]
    fn unsupported_docker_host_is_a_typed_error() {
        let e = connect_with("ssh://somewhere", bollard::API_DEFAULT_VERSION).unwrap_err();
        assert!(matches!(e, DockerError::UnsupportedHost(_)));
        assert!(matches!(RuntimeError::from(e), RuntimeError::Unavailable(..)));
    }

    #[test]
    fn no_daemon_fails_fast_with_a_typed_error() {
        let t = std::time::Instant::now();
        let e = block_on(connect("unix:///nonexistent/docker.sock")).unwrap_err();
        assert!(matches!(e, DockerError::NoDaemon { .. }), "{e}");
        assert!(e.to_string().contains("no Docker daemon answers at unix:///nonexistent/docker.sock"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(6));
    }
}
