//! Plans: the exact commands the kind backend runs, in order, as data. Pure: built from a [`Topology`] and
//! [`PlanOptions`], printed as a shell script by `Display` (what `rrlab up --backend kind --dry-run` shows),
//! run by [`super::runner::execute`].
//!
//! Bring-up, and why in this order:
//! 1. check the tools (kind, containerlab, kubectl) and fetch the pinned Calico manifest and calicoctl,
//!    verifying both against checksums;
//! 2. create the site bridges on the host (containerlab's `bridge` kind expects them to exist);
//! 3. `kind create cluster` per `k8s-kind` node, with its kind config unchanged, the pinned node image and a
//!    kubeconfig of its own. rrlab creates the clusters itself instead of letting containerlab's `k8s-kind`
//!    kind do it: containerlab creates them through kind's library with `CreateWithWaitForReady(15m)` and
//!    no way to set the image or kubeconfig from the command line, and with `disableDefaultCNI: true` the
//!    control plane is not Ready until Calico runs, so that deploy would sit out the full 15 minutes;
//! 4. `containerlab deploy --node-filter <every node but the k8s-kind ones>`: containerlab wires the
//!    `ext-container` kind nodes and the WAN to the bridges and runs every `exec` command (addresses,
//!    routes), exactly as the topology file says;
//! 5. Calico per cluster: the pinned manifest through a kustomize overlay that sets only
//!    `CALICO_IPV4POOL_CIDR` (the pod subnet), `CALICO_IPV4POOL_IPIP` and `IP_AUTODETECTION_METHOD`
//!    (`interface=eth1`, which exists now), applied with `kubectl create -k` (Calico's kind guide: the CRD
//!    bundle is too large for client-side `apply`); then wait for calico-node and the nodes;
//! 6. calicoctl against each cluster (its version must be the pinned one on both sides), the AS number when
//!    the topology asks for a non-default one, the probe pods, and calicoctl copied into every node
//!    container so that `calicoctl node status` can run where calico-node runs.
//!
//! Teardown ([`plan_down_for`]) removes what the run recorded as created ([`super::record`]), nothing else.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::docker_ops::DockerOp;
use super::record::{Record, Resource};
use super::versions::{self, Arch};
use crate::model::topology::{Cluster, NodeKind, Topology, DEFAULT_AS};

/// A check on a step's output, applied by the executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Check {
    /// `kind version` reports this version.
    KindVersion(String),
    /// `containerlab version` reports this version.
    ContainerlabVersion(String),
    /// `calicoctl version` reports this client version and, when given, this cluster version.
    CalicoctlVersion { client: String, cluster: Option<String> },
    /// The inner check, but a failure is a warning (reported, returned by the executor), not an error:
    /// version checks without `--strict-versions`.
    Warn(Box<Check>),
    /// The command prints nothing on stdout (what remains, otherwise: the message names it).
    NoOutput(String),
}

/// One command the backend runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanStep {
    /// What the step does, for people (a comment in the printed plan).
    pub what: String,
    /// The program and its arguments, exactly as executed (no shell in between).
    pub argv: Vec<String>,
    /// Variables set for this command on top of the caller's environment.
    pub env: Vec<(String, String)>,
    /// Directory to run in (None: the caller's).
    pub cwd: Option<PathBuf>,
    /// Bytes fed on standard input.
    pub stdin: Option<String>,
    /// Checked against the output after a successful run.
    pub check: Option<Check>,
    /// A failure is reported but does not stop the plan (teardown).
    pub allow_failure: bool,
    /// Performed through the Docker Engine API instead of running `argv` (which is its equivalent command
    /// line, for printed plans).
    pub docker: Option<super::docker_ops::DockerOp>,
}

impl PlanStep {
    pub fn new<S: AsRef<str>>(what: impl Into<String>, argv: &[S]) -> PlanStep {
        PlanStep {
            what: what.into(),
            argv: argv.iter().map(|s| s.as_ref().to_string()).collect(),
            env: Vec::new(),
            cwd: None,
            stdin: None,
            check: None,
            allow_failure: false,
            docker: None,
        }
    }

    /// A Docker Engine operation (performed through the API; `argv` is its equivalent command line).
    pub fn docker(what: impl Into<String>, op: super::docker_ops::DockerOp) -> PlanStep {
        let mut s = PlanStep::new(what, &op.argv());
        s.docker = Some(op);
        s
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> PlanStep {
        self.env.push((key.to_string(), value.into()));
        self
    }

    pub fn envs(mut self, vars: &[(String, String)]) -> PlanStep {
        self.env.extend(vars.iter().cloned());
        self
    }

    pub fn stdin(mut self, text: impl Into<String>) -> PlanStep {
        self.stdin = Some(text.into());
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> PlanStep {
        self.cwd = Some(dir.into());
        self
    }

    pub fn check(mut self, c: Check) -> PlanStep {
        self.check = Some(c);
        self
    }

    pub fn allow_failure(mut self) -> PlanStep {
        self.allow_failure = true;
        self
    }

    /// Write `text` to `path` (the plan's one way of creating a file: `cp /dev/stdin <path>`).
    pub fn write_file(what: impl Into<String>, path: &Path, text: impl Into<String>) -> PlanStep {
        PlanStep::new(what, &["cp".to_string(), "/dev/stdin".to_string(), path.display().to_string()]).stdin(text)
    }

    /// The command as one shell line: `(cd DIR && VAR=value argv…)`, without the here-document.
    pub fn command_line(&self) -> String {
        let mut parts: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={}", shell_quote(v))).collect();
        parts.extend(self.argv.iter().map(|a| shell_quote(a)));
        let line = parts.join(" ");
        match &self.cwd {
            Some(d) => format!("(cd {} && {line})", shell_quote(&d.display().to_string())),
            None => line,
        }
    }
}

impl fmt::Display for PlanStep {
    /// The command as a shell would run it, with its standard input as a quoted here-document.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.command_line();
        match &self.stdin {
            None => write!(f, "{line}"),
            Some(text) => {
                let tag = heredoc_tag(text);
                write!(f, "{line} <<'{tag}'\n{text}")?;
                if !text.is_empty() && !text.ends_with('\n') {
                    // A here-document always ends its text with a newline; say so rather than hide it.
                    writeln!(f)?;
                    write!(f, "# (the step's input has no final newline; the here-document adds one)\n{tag}")
                } else {
                    write!(f, "{tag}")
                }
            }
        }
    }
}

/// A here-document delimiter that no line of `text` equals.
fn heredoc_tag(text: &str) -> String {
    let mut tag = "RRLAB_EOF".to_string();
    let mut n = 0;
    while text.lines().any(|l| l == tag) {
        n += 1;
        tag = format!("RRLAB_EOF_{n}");
    }
    tag
}

pub use crate::process::shell_quote;

/// An ordered list of steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The first comment line of the printed plan.
    pub title: String,
    pub steps: Vec<PlanStep>,
}

impl Plan {
    /// Every step's command line, in order (for tests and logs).
    pub fn command_lines(&self) -> Vec<String> {
        self.steps.iter().map(PlanStep::command_line).collect()
    }

    /// Index of the first step whose command line contains `needle`.
    pub fn position(&self, needle: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.command_line().contains(needle))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "#!/bin/sh")?;
        writeln!(f, "# {}", self.title)?;
        writeln!(
            f,
            "# Pins (harness/src/kind/versions.rs): kind {}, {}, kubectl {}, Calico {}, containerlab {}",
            versions::KIND_VERSION,
            versions::KIND_NODE_IMAGE,
            versions::KUBECTL_VERSION,
            versions::CALICO_VERSION,
            versions::CONTAINERLAB_VERSION
        )?;
        writeln!(f, "set -eu")?;
        for (i, s) in self.steps.iter().enumerate() {
            writeln!(f)?;
            let note = if s.allow_failure { " (failure tolerated)" } else { "" };
            writeln!(f, "# {}. {}{note}", i + 1, s.what)?;
            if s.allow_failure {
                writeln!(f, "{} || true", s.command_line())?;
                if s.stdin.is_some() {
                    // Not used by rrlab's plans; keep the output honest if it ever is.
                    writeln!(f, "# (this step also reads standard input)")?;
                }
            } else {
                writeln!(f, "{s}")?;
            }
        }
        Ok(())
    }
}

/// Where [`PlanOptions::for_lab`] installs the pinned calicoctl.
pub const DEFAULT_BIN_DIR: &str = "/var/lib/rrlab/kind/bin";

/// Where the backend keeps its files, and how it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Kubeconfigs, the manifest, kustomize overlays, downloads: `/run/rrlab/<lab>/kind` by default.
    pub work_dir: PathBuf,
    /// Where calicoctl is installed (`<work_dir>/bin` with [`PlanOptions::in_dir`], [`DEFAULT_BIN_DIR`] with
    /// [`PlanOptions::for_lab`]).
    pub bin_dir: PathBuf,
    pub arch: Arch,
    /// `PATH` for operator commands, with `bin_dir` put first (default: this process's `PATH`).
    pub host_path: String,
    /// Probe pods per Kubernetes node (named `<node>-p1`, `<node>-p2`, … as in the twin).
    pub pods_per_node: u32,
    /// The kind node image (default: the pinned one).
    pub node_image: String,
    /// How long each wait (rollout, nodes Ready, pods Ready) may take, as kubectl's `--timeout`.
    pub wait_timeout: String,
    /// A kind/containerlab/calicoctl version other than versions.rs's stops the bring-up (`--strict-versions`,
    /// the nightly workflow); without it a mismatch is a warning.
    pub strict_versions: bool,
    /// Use existing kind clusters of the topology's cluster names as they are (`--reuse`): not created, not
    /// recorded, so teardown leaves them.
    pub reuse: bool,
    /// Pull Calico's images from this registry instead of `docker.io` (`--image-registry quay.io` →
    /// `quay.io/calico/node:<version>`; Calico's release tooling pushes every image to docker.io/calico,
    /// quay.io/calico and gcr.io/projectcalico-org: `release/pkg/manager/calico/manager.go`).
    pub image_registry: Option<String>,
    /// Raise too-low inotify limits with `sysctl -w` instead of stopping (`--raise-limits`).
    pub raise_limits: bool,
}

/// `RRLAB_STRICT_VERSIONS=1` (or `true`) makes [`PlanOptions::for_lab`] strict about versions: how the
/// nightly e2e (which builds its options itself) gets `--strict-versions`.
pub const STRICT_VERSIONS_ENV: &str = "RRLAB_STRICT_VERSIONS";

/// Whether a value of [`STRICT_VERSIONS_ENV`] asks for strict versions.
pub fn strict_from_env(v: Option<&str>) -> bool {
    matches!(v.map(str::trim), Some(x) if x == "1" || x.eq_ignore_ascii_case("true") || x.eq_ignore_ascii_case("yes"))
}

impl PlanOptions {
    /// Defaults for a lab: state in `/run/rrlab/<lab>/kind`, calicoctl in [`DEFAULT_BIN_DIR`] (not under
    /// `/run`, which distributions mount `noexec`).
    pub fn for_lab(lab: &str) -> PlanOptions {
        let mut o = PlanOptions::in_dir(Path::new("/run/rrlab").join(lab).join("kind"));
        o.bin_dir = PathBuf::from(DEFAULT_BIN_DIR);
        o.strict_versions = strict_from_env(std::env::var(STRICT_VERSIONS_ENV).ok().as_deref());
        o
    }

    /// Defaults with an explicit work directory.
    pub fn in_dir(work_dir: impl Into<PathBuf>) -> PlanOptions {
        let work_dir = work_dir.into();
        PlanOptions {
            bin_dir: work_dir.join("bin"),
            work_dir,
            arch: Arch::host(),
            host_path: std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            pods_per_node: 2,
            node_image: versions::KIND_NODE_IMAGE.to_string(),
            wait_timeout: "600s".to_string(),
            strict_versions: false,
            reuse: false,
            image_registry: None,
            raise_limits: false,
        }
    }

    /// The created-resources record ([`super::record`]).
    pub fn record_file(&self) -> PathBuf {
        self.work_dir.join(super::record::RECORD_FILE)
    }

    /// Calico's images at the pinned version, from [`PlanOptions::image_registry`].
    pub fn calico_images(&self) -> Vec<String> {
        versions::calico_images(self.image_registry.as_deref())
    }

    /// Every image the clusters run besides the node image, as loaded into them.
    pub fn cluster_images(&self) -> Vec<String> {
        let mut v = self.calico_images();
        v.push(versions::POD_IMAGE_TAG.to_string());
        v
    }

    /// The kubeconfig `kind create cluster` writes for a cluster.
    pub fn kubeconfig(&self, cluster: &str) -> PathBuf {
        self.work_dir.join(format!("{cluster}.kubeconfig"))
    }

    pub fn calicoctl(&self) -> PathBuf {
        self.bin_dir.join("calicoctl")
    }

    fn downloads(&self) -> PathBuf {
        self.work_dir.join("downloads")
    }

    fn calico_base(&self) -> PathBuf {
        self.work_dir.join("calico")
    }

    fn calico_overlay(&self, cluster: &str) -> PathBuf {
        self.work_dir.join(cluster).join("calico")
    }

    /// How to reach one cluster.
    pub fn access(&self, cluster: &str) -> ClusterAccess {
        ClusterAccess {
            cluster: cluster.to_string(),
            kubeconfig: self.kubeconfig(cluster),
            calicoctl: self.calicoctl(),
            path: format!("{}:{}", self.bin_dir.display(), self.host_path),
        }
    }
}

/// How to reach one kind cluster: its kubeconfig, its context, calicoctl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAccess {
    pub cluster: String,
    pub kubeconfig: PathBuf,
    pub calicoctl: PathBuf,
    /// `PATH` for operator commands (calicoctl's directory first).
    pub path: String,
}

impl ClusterAccess {
    /// kind's context name for the cluster.
    pub fn context(&self) -> String {
        format!("kind-{}", self.cluster)
    }

    /// `kubectl --kubeconfig <kc> --context kind-<c> <args…>`.
    pub fn kubectl<S: AsRef<str>>(&self, args: &[S]) -> Vec<String> {
        let mut v = vec![
            "kubectl".to_string(),
            "--kubeconfig".to_string(),
            self.kubeconfig.display().to_string(),
            "--context".to_string(),
            self.context(),
        ];
        v.extend(args.iter().map(|a| a.as_ref().to_string()));
        v
    }

    /// The environment calicoctl reads for the Kubernetes datastore (Calico docs, "Configure calicoctl to
    /// connect to the Kubernetes API datastore": `DATASTORE_TYPE=kubernetes KUBECONFIG=…`).
    pub fn calicoctl_env(&self) -> Vec<(String, String)> {
        vec![
            ("DATASTORE_TYPE".to_string(), "kubernetes".to_string()),
            ("KUBECONFIG".to_string(), self.kubeconfig.display().to_string()),
        ]
    }

    /// `calicoctl <args…>` (the pinned binary) with [`Self::calicoctl_env`].
    pub fn calicoctl_step<S: AsRef<str>>(&self, what: impl Into<String>, args: &[S]) -> PlanStep {
        let mut argv = vec![self.calicoctl.display().to_string()];
        argv.extend(args.iter().map(|a| a.as_ref().to_string()));
        PlanStep::new(what, &argv).envs(&self.calicoctl_env())
    }
}

/// The `k8s-kind` nodes are kind's business; containerlab deploys every other node.
pub fn containerlab_nodes(topo: &Topology) -> Vec<String> {
    topo.nodes.values().filter(|n| n.kind != NodeKind::K8sKind).map(|n| n.name.clone()).collect()
}

fn bridges(topo: &Topology) -> Vec<String> {
    topo.nodes.values().filter(|n| n.kind == NodeKind::Bridge).map(|n| n.name.clone()).collect()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

fn containerlab_filter_args(topo: &Topology) -> Vec<String> {
    vec!["-t".to_string(), path_str(&topo.file), "--node-filter".to_string(), containerlab_nodes(topo).join(",")]
}

/// `kustomization.yaml` of the shared base: the pinned manifest as downloaded.
pub fn calico_base_kustomization() -> String {
    format!(
        "# Calico {} manifest, unchanged (sha256 {}).\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - calico.yaml\n",
        versions::CALICO_VERSION,
        versions::CALICO_MANIFEST_SHA256
    )
}

/// `kustomization.yaml` of a cluster's overlay.
pub fn calico_overlay_kustomization(c: &Cluster) -> String {
    calico_overlay_kustomization_with(c, None)
}

/// The overlay, with Calico's images taken from `registry` when given: a kustomize `images:` transformer
/// (`name` is the manifest's image name without its tag, `newName` the same image elsewhere; the tag stays).
pub fn calico_overlay_kustomization_with(c: &Cluster, registry: Option<&str>) -> String {
    let mut y = format!(
        "# Calico for kind cluster {}: the pinned manifest with the topology's pool and IPIP mode.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../calico\npatches:\n  - path: calico-node-env.yaml\n",
        c.name
    );
    if let Some(r) = registry {
        y.push_str("images:\n");
        for (from, to) in versions::calico_images(None).iter().zip(versions::calico_images(Some(r))) {
            let strip = |i: &str| i.rsplit_once(':').map(|(n, _)| n.to_string()).unwrap_or_else(|| i.to_string());
            y.push_str(&format!("  - name: {}\n    newName: {}\n", q(&strip(from)), q(&strip(&to))));
        }
    }
    y
}

fn q(s: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    serde_json::to_string(s).unwrap_or_default()
}

/// The strategic-merge patch for calico-node's environment (env entries merge by name, so everything else
/// in the manifest stays as Calico ships it).
pub fn calico_node_env_patch(c: &Cluster) -> String {
    format!(
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: calico-node\n  namespace: kube-system\nspec:\n  template:\n    spec:\n      containers:\n        - name: calico-node\n          env:\n            - name: CALICO_IPV4POOL_CIDR\n              value: {}\n            - name: CALICO_IPV4POOL_IPIP\n              value: {}\n            - name: IP_AUTODETECTION_METHOD\n              value: {}\n",
        q(&c.pod_subnet.to_string()),
        q(&c.ipip_mode),
        q(&format!("interface={}", c.node_interface))
    )
}

/// The probe pods' label (`app.kubernetes.io/name=rrlab-probe`).
pub const PROBE_LABEL: &str = "app.kubernetes.io/name=rrlab-probe";

/// Probe pod names of a node, as the twin names them.
pub fn probe_pod_names(node: &str, n: u32) -> Vec<String> {
    (1..=n).map(|i| format!("{node}-p{i}")).collect()
}

/// The probe pods of a cluster, pinned to their nodes with `nodeName` (no scheduler, no taint surprises).
pub fn probe_pods_manifest(c: &Cluster, per_node: u32) -> String {
    let mut y = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for n in &c.nodes {
        for name in probe_pod_names(&n.name, per_node) {
            y.push_str(&format!(
                "  - apiVersion: v1\n    kind: Pod\n    metadata:\n      name: {}\n      namespace: default\n      labels:\n        app.kubernetes.io/name: rrlab-probe\n        rrlab.io/node: {}\n    spec:\n      nodeName: {}\n      tolerations:\n        - operator: Exists\n      terminationGracePeriodSeconds: 0\n      containers:\n        - name: probe\n          image: {}\n          imagePullPolicy: IfNotPresent\n          command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 3600 & wait $!; done\"]\n",
                q(&name),
                q(&n.name),
                q(&n.name),
                q(versions::POD_IMAGE_TAG)
            ));
        }
    }
    y
}

/// The BGPConfiguration the twin starts with when the topology sets a non-default AS (see
/// `lab::initial_datastore`); None for Calico's default 64512.
pub fn initial_bgp_configuration(c: &Cluster) -> Option<String> {
    (c.as_number != DEFAULT_AS).then(|| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  asNumber: {}\n",
            c.as_number
        )
    })
}

/// The steps that set up the WAN's counting and impairment chains ([`crate::wan::setup`], the twin's WAN's),
/// with the host's iptables in the WAN's network namespace ([`super::exec::in_wan`]).
pub fn wan_setup_steps(topo: &Topology) -> Vec<PlanStep> {
    crate::wan::setup()
        .iter()
        .filter_map(|c| {
            let argv: Vec<&str> = c.iter().map(String::as_str).collect();
            super::exec::in_wan(topo, "WAN chains", &argv)
        })
        .collect()
}

/// `rrlab up --backend kind`: every command, in order, when no kind cluster is reused.
pub fn plan_up(topo: &Topology, opts: &PlanOptions) -> Plan {
    plan_up_with(topo, opts, &[])
}

/// The record as it stands when the whole bring-up has run: every bridge, every cluster not reused, and
/// containerlab's part.
pub fn full_record(topo: &Topology, reused: &[String]) -> Record {
    let mut r = Record::new(&topo.name, &topo.file);
    for br in bridges(topo) {
        r = r.with(Resource::Bridge(br));
    }
    for c in topo.clusters.iter().filter(|c| !reused.contains(&c.name)) {
        r = r.with(Resource::KindCluster(c.name.clone()));
    }
    r.with(Resource::Containerlab(topo.name.clone()))
}

/// The step that writes the record (the whole file, each time it grows).
pub fn record_step(opts: &PlanOptions, r: &Record) -> PlanStep {
    let what = match r.resources.last() {
        Some(last) => format!("record: {last} (created by this run; teardown removes only what is recorded)"),
        None => "record: nothing created yet".to_string(),
    };
    PlanStep::write_file(what, &opts.record_file(), r.render())
}

/// Whether `step` writes the record (and so carries it on stdin).
pub fn is_record_step(opts: &PlanOptions, step: &PlanStep) -> bool {
    step.argv == ["cp".to_string(), "/dev/stdin".to_string(), path_str(&opts.record_file())]
}

/// `CLAB_LABDIR_BASE=<work_dir>`: containerlab's lab directory (and its `.state.clab.yaml`) goes into the
/// work directory, not next to the topology file in the source tree (containerlab v0.79.0
/// `types/topo_paths.go`, `SetLabDirByPrefix`).
fn clab_env(opts: &PlanOptions) -> (String, String) {
    ("CLAB_LABDIR_BASE".to_string(), path_str(&opts.work_dir))
}

/// `rrlab up --backend kind` with the kind clusters in `reused` used as they are (`--reuse`): they get
/// their kubeconfig exported instead of being created, are not recorded, and get Calico by server-side
/// apply (idempotent where it is already installed).
pub fn plan_up_with(topo: &Topology, opts: &PlanOptions, reused: &[String]) -> Plan {
    let strict = opts.strict_versions;
    let with = |step: PlanStep, c: Check| if strict { step.check(c) } else { step.check(Check::Warn(Box::new(c))) };

    // 1. preflight (read-only): tools, leftovers, inotify limits
    let mut s: Vec<PlanStep> = super::preflight::steps(topo, opts);
    let downloads = opts.downloads();
    let base = opts.calico_base();
    s.push(PlanStep::new(
        "directories for kubeconfigs, manifests, downloads and calicoctl",
        &["mkdir", "-p", &path_str(&opts.work_dir), &path_str(&base), &path_str(&downloads), &path_str(&opts.bin_dir)],
    ));
    let mut record = Record::new(&topo.name, &topo.file);
    s.push(record_step(opts, &record));

    // 2. Calico manifest and calicoctl, verified
    let manifest = base.join("calico.yaml");
    s.push(PlanStep::new(
        format!("fetch the Calico {} manifest", versions::CALICO_VERSION),
        &["curl", "-fsSL", "--retry", "3", "-o", &path_str(&manifest), &versions::calico_manifest_url()],
    ));
    s.push(
        PlanStep::new("verify the manifest against its pinned sha256", &["sha256sum", "--check", "--strict", "-"])
            .stdin(format!("{}  {}\n", versions::CALICO_MANIFEST_SHA256, manifest.display())),
    );
    s.push(PlanStep::write_file(
        "kustomize base: the manifest unchanged",
        &base.join("kustomization.yaml"),
        calico_base_kustomization(),
    ));
    let asset = versions::calicoctl_asset(opts.arch);
    s.push(PlanStep::new(
        format!("fetch calicoctl {}", versions::CALICO_VERSION),
        &[
            "curl",
            "-fsSL",
            "--retry",
            "3",
            "-o",
            &path_str(&downloads.join(&asset)),
            &versions::calicoctl_url(opts.arch),
        ],
    ));
    s.push(PlanStep::new(
        format!("fetch the checksums of Calico {}'s release assets", versions::CALICO_VERSION),
        &[
            "curl",
            "-fsSL",
            "--retry",
            "3",
            "-o",
            &path_str(&downloads.join("SHA256SUMS")),
            &versions::calico_sha256sums_url(),
        ],
    ));
    s.push(
        PlanStep::new(
            "verify calicoctl against the release's SHA256SUMS",
            &["sha256sum", "--check", "--ignore-missing", "SHA256SUMS"],
        )
        .cwd(&downloads),
    );
    s.push(PlanStep::new(
        "install calicoctl",
        &["install", "-m", "0755", &path_str(&downloads.join(&asset)), &path_str(&opts.calicoctl())],
    ));

    // 3. images, pulled once on the host (the host's registry login applies; kind nodes' containerd does
    //    not use it) and loaded into every cluster below, instead of one pull per image per node
    for img in opts.calico_images() {
        s.push(PlanStep::docker(format!("pull {img} once on the host"), DockerOp::Pull { image: img.clone() }));
    }
    let pod_digest = versions::pod_image_by_digest();
    s.push(PlanStep::docker(
        format!("pull the probe pods' image by its pinned digest ({})", versions::POD_IMAGE_TAG),
        DockerOp::Pull { image: pod_digest.clone() },
    ));
    s.push(PlanStep::docker(
        format!(
            "tag it {} (kind load cannot load an image by digest: kubernetes-sigs/kind#2394)",
            versions::POD_IMAGE_TAG
        ),
        DockerOp::Tag { source: pod_digest.clone(), target: versions::POD_IMAGE_TAG.to_string() },
    ));

    // 4. site bridges
    for br in bridges(topo) {
        s.push(PlanStep::new(
            format!("site bridge {br} (containerlab expects host bridges to exist)"),
            &["ip", "link", "add", &br, "type", "bridge"],
        ));
        record = record.with(Resource::Bridge(br.clone()));
        s.push(record_step(opts, &record));
        s.push(PlanStep::new(format!("site bridge {br} up"), &["ip", "link", "set", &br, "up"]));
    }

    // 5. kind clusters, and the images loaded into them
    for c in &topo.clusters {
        let kc = path_str(&opts.kubeconfig(&c.name));
        if reused.contains(&c.name) {
            s.push(PlanStep::new(
                format!("kind cluster {} exists (--reuse): its kubeconfig", c.name),
                &["kind", "export", "kubeconfig", "--name", &c.name, "--kubeconfig", &kc],
            ));
        } else {
            s.push(PlanStep::new(
                format!(
                    "kind cluster {} ({} nodes, pod subnet {}, no default CNI)",
                    c.name,
                    c.nodes.len(),
                    c.pod_subnet
                ),
                &[
                    "kind",
                    "create",
                    "cluster",
                    "--name",
                    &c.name,
                    "--config",
                    &path_str(&c.config_file),
                    "--image",
                    &opts.node_image,
                    "--kubeconfig",
                    &kc,
                ],
            ));
            record = record.with(Resource::KindCluster(c.name.clone()));
            s.push(record_step(opts, &record));
        }
        let mut load = vec!["kind".to_string(), "load".into(), "docker-image".into(), "--name".into(), c.name.clone()];
        load.extend(opts.cluster_images());
        s.push(PlanStep::new(format!("{}: load the images into every node", c.name), &load));
    }

    // 6. containerlab: links, WAN, exec commands. Recorded first: a failed deploy leaves what it made.
    record = record.with(Resource::Containerlab(topo.name.clone()));
    s.push(record_step(opts, &record));
    let mut deploy = vec!["containerlab".to_string(), "deploy".to_string()];
    deploy.extend(containerlab_filter_args(topo));
    s.push(
        PlanStep::new(
            "containerlab: wire the kind nodes and the WAN to the site bridges, run every exec command (k8s-kind nodes filtered out: the clusters exist)",
            &deploy,
        )
        .envs(&[clab_env(opts)]),
    );
    s.extend(wan_setup_steps(topo));

    // 7. Calico per cluster
    for c in &topo.clusters {
        let a = opts.access(&c.name);
        let overlay = opts.calico_overlay(&c.name);
        s.push(PlanStep::new(
            format!("{}: kustomize overlay directory", c.name),
            &["mkdir", "-p", &path_str(&overlay)],
        ));
        s.push(PlanStep::write_file(
            format!("{}: overlay on the pinned manifest", c.name),
            &overlay.join("kustomization.yaml"),
            calico_overlay_kustomization_with(c, opts.image_registry.as_deref()),
        ));
        s.push(PlanStep::write_file(
            format!(
                "{}: calico-node env: CALICO_IPV4POOL_CIDR={}, CALICO_IPV4POOL_IPIP={}, IP_AUTODETECTION_METHOD=interface={}",
                c.name, c.pod_subnet, c.ipip_mode, c.node_interface
            ),
            &overlay.join("calico-node-env.yaml"),
            calico_node_env_patch(c),
        ));
        if reused.contains(&c.name) {
            s.push(PlanStep::new(
                format!(
                    "{}: install Calico {} (reused cluster: server-side apply, which has no annotation size limit and accepts what exists)",
                    c.name,
                    versions::CALICO_VERSION
                ),
                &a.kubectl(&["apply", "--server-side", "--force-conflicts", "-k", &path_str(&overlay)]),
            ));
        } else {
            s.push(PlanStep::new(
                format!(
                    "{}: install Calico {} (create: the CRDs are too large for client-side apply)",
                    c.name,
                    versions::CALICO_VERSION
                ),
                &a.kubectl(&["create", "-k", &path_str(&overlay)]),
            ));
        }
        let t = format!("--timeout={}", opts.wait_timeout);
        s.push(PlanStep::new(
            format!("{}: wait for calico-node on every node", c.name),
            &a.kubectl(&["-n", "kube-system", "rollout", "status", "daemonset/calico-node", &t]),
        ));
        s.push(PlanStep::new(
            format!("{}: wait for calico-kube-controllers", c.name),
            &a.kubectl(&["-n", "kube-system", "rollout", "status", "deployment/calico-kube-controllers", &t]),
        ));
        s.push(PlanStep::new(
            format!("{}: wait for every node to be Ready", c.name),
            &a.kubectl(&["wait", "--for=condition=Ready", "nodes", "--all", &t]),
        ));
        s.push(with(
            a.calicoctl_step(
                format!("{}: calicoctl and calico-node are both {}", c.name, versions::CALICO_VERSION),
                &["version"],
            ),
            Check::CalicoctlVersion {
                client: versions::CALICO_VERSION.to_string(),
                cluster: Some(versions::CALICO_VERSION.to_string()),
            },
        ));
        if let Some(bgp) = initial_bgp_configuration(c) {
            s.push(
                a.calicoctl_step(format!("{}: AS {} (rrlab.io/calico-as)", c.name, c.as_number), &["apply", "-f", "-"])
                    .stdin(bgp),
            );
        }
        if let Some(st) = &c.calico_state {
            s.push(
                a.calicoctl_step(
                    format!("{}: its starting Calico state {} (rrlab.io/calico-state)", c.name, st.file.display()),
                    &["apply", "-f", "-"],
                )
                .stdin(st.text.clone()),
            );
        }
        if opts.pods_per_node > 0 {
            s.push(
                PlanStep::new(
                    format!("{}: {} probe pod(s) per node ({})", c.name, opts.pods_per_node, versions::POD_IMAGE_TAG),
                    &a.kubectl(&["apply", "-f", "-"]),
                )
                .stdin(probe_pods_manifest(c, opts.pods_per_node)),
            );
            s.push(PlanStep::new(
                format!("{}: wait for the probe pods", c.name),
                &a.kubectl(&["-n", "default", "wait", "--for=condition=Ready", "pods", "-l", PROBE_LABEL, &t]),
            ));
        }
        for n in &c.nodes {
            s.push(PlanStep::docker(
                format!("{}: calicoctl on node {} (for `calicoctl node status` there)", c.name, n.name),
                DockerOp::CopyInto {
                    file: path_str(&opts.calicoctl()),
                    container: topo.container_name(&n.name),
                    path: "/usr/local/bin/calicoctl".into(),
                },
            ));
        }
    }

    Plan {
        title: format!(
            "rrlab up --backend kind: lab {} from {} ({} cluster(s))",
            topo.name,
            topo.file.display(),
            topo.clusters.len()
        ),
        steps: s,
    }
}

/// The teardown of one recorded resource: its steps, run in order, each failure reported (none is
/// ignored: [`super::down`] keeps in the record what it could not remove).
///
/// containerlab (v0.79.0): `destroy --node-filter` with `--cleanup` is refused ("cleanup cannot be used with
/// node-filter", `cmd/destroy.go`, `destroyFn`), so the filtered destroy runs without it (it deletes the
/// filtered nodes' containers, the WAN, and their links: `core/destroy.go`, `destroy`; `ext-container`
/// nodes are left alone, `nodes/ext_container/ext_container.go` `Delete`), and rrlab removes the lab
/// directory itself. That directory holds `.state.clab.yaml` (`types/topo_paths.go`, `StateFile`): while it
/// exists, or any non-external container of the lab does, the next deploy is a reconcile
/// (`core/runtime_state.go`, `needsInitialDeploy`), which refuses a node filter ("node filter is not
/// supported when reconciling deployed lab", `core/deploy.go`, `checkReconcileDeployOptions`). Last, a
/// check that no container labelled `containerlab=<lab>` remains.
pub fn teardown_steps(topo: &Topology, opts: &PlanOptions, r: &Resource) -> Vec<PlanStep> {
    match r {
        Resource::Containerlab(lab) => {
            let mut destroy = vec!["containerlab".to_string(), "destroy".to_string()];
            destroy.extend(containerlab_filter_args(topo));
            let label = format!("label=containerlab={lab}");
            vec![
                PlanStep::new(
                    "containerlab: the WAN and every link it made (no --cleanup: refused with --node-filter)",
                    &destroy,
                )
                .envs(&[clab_env(opts)]),
                PlanStep::new(
                    "containerlab's lab directory and its .state.clab.yaml (else the next deploy reconciles and refuses --node-filter)",
                    &["rm", "-rf", "--", &path_str(&super::preflight::lab_dir(opts, lab))],
                ),
                PlanStep::docker(
                    format!("no container of lab {lab} is left"),
                    DockerOp::NamesByLabel { label: label.trim_start_matches("label=").to_string() },
                )
                .check(Check::NoOutput(format!("containers of lab {lab} are still there"))),
            ]
        }
        Resource::KindCluster(c) => vec![PlanStep::new(
            format!("kind cluster {c}"),
            &["kind", "delete", "cluster", "--name", c, "--kubeconfig", &path_str(&opts.kubeconfig(c))],
        )],
        Resource::Bridge(b) => vec![PlanStep::new(format!("site bridge {b}"), &["ip", "link", "del", b])],
    }
}

/// The order teardown takes: containerlab first (its links hang on the bridges and the kind nodes), then
/// the clusters, then the bridges; each group in recorded order.
pub fn teardown_order(r: &Record) -> Vec<Resource> {
    let rank = |x: &Resource| match x {
        Resource::Containerlab(_) => 0,
        Resource::KindCluster(_) => 1,
        Resource::Bridge(_) => 2,
    };
    let mut v = r.resources.clone();
    v.sort_by_key(rank);
    v.dedup();
    v
}

/// The step that removes the record once everything in it is gone.
pub fn remove_record_step(opts: &PlanOptions) -> PlanStep {
    PlanStep::new("the record: everything in it is gone", &["rm", "-f", "--", &path_str(&opts.record_file())])
}

/// The teardown of what `r` records, then the record itself (printed by `rrlab down --dry-run`). Every step
/// runs even when one fails (`allow_failure` marks that; [`super::down`] reports every failure).
pub fn plan_down_for(topo: &Topology, opts: &PlanOptions, r: &Record) -> Plan {
    let mut s = Vec::new();
    for res in teardown_order(r) {
        s.extend(teardown_steps(topo, opts, &res).into_iter().map(PlanStep::allow_failure));
    }
    s.push(remove_record_step(opts));
    Plan { title: format!("rrlab down --backend kind: lab {} from {}", topo.name, topo.file.display()), steps: s }
}

/// The teardown after a complete bring-up (everything recorded). The work directory stays (it holds the
/// failure dumps); so do the FORWARD rules containerlab adds for the bridges (containerlab documents that it
/// leaves them), harmless once the bridges are gone.
pub fn plan_down(topo: &Topology, opts: &PlanOptions) -> Plan {
    plan_down_for(topo, opts, &full_record(topo, &[]))
}

/// `rrlab status --backend kind`: what exists (read-only).
pub fn plan_status(topo: &Topology, opts: &PlanOptions) -> Plan {
    let mut s = vec![
        PlanStep::new("kind clusters on this host", &["kind", "get", "clusters"]),
        PlanStep::new("containerlab's nodes of the lab", &["containerlab", "inspect", "-t", &path_str(&topo.file)]),
    ];
    for c in &topo.clusters {
        let a = opts.access(&c.name);
        s.push(PlanStep::new(format!("{}: nodes", c.name), &a.kubectl(&["get", "nodes", "-o", "wide"])));
        s.push(PlanStep::new(
            format!("{}: calico-node pods", c.name),
            &a.kubectl(&["-n", "kube-system", "get", "pods", "-l", "k8s-app=calico-node", "-o", "wide"]),
        ));
    }
    Plan { title: format!("rrlab status --backend kind: lab {}", topo.name), steps: s }
}
