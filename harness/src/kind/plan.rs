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
//! Teardown ([`plan_down`]) undoes it in reverse, best effort.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

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
        }
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
    /// Attach version checks to the tool steps (a mismatch with versions.rs stops the bring-up).
    pub strict_versions: bool,
}

impl PlanOptions {
    /// Defaults for a lab: state in `/run/rrlab/<lab>/kind`, calicoctl in [`DEFAULT_BIN_DIR`] (not under
    /// `/run`, which distributions mount `noexec`).
    pub fn for_lab(lab: &str) -> PlanOptions {
        let mut o = PlanOptions::in_dir(Path::new("/run/rrlab").join(lab).join("kind"));
        o.bin_dir = PathBuf::from(DEFAULT_BIN_DIR);
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
            strict_versions: true,
        }
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
    format!(
        "# Calico for kind cluster {}: the pinned manifest with the topology's pool and IPIP mode.\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../calico\npatches:\n  - path: calico-node-env.yaml\n",
        c.name
    )
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
                "  - apiVersion: v1\n    kind: Pod\n    metadata:\n      name: {}\n      namespace: default\n      labels:\n        app.kubernetes.io/name: rrlab-probe\n        rrlab.io/node: {}\n    spec:\n      nodeName: {}\n      tolerations:\n        - operator: Exists\n      terminationGracePeriodSeconds: 0\n      containers:\n        - name: probe\n          image: {}\n          command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 3600 & wait $!; done\"]\n",
                q(&name),
                q(&n.name),
                q(&n.name),
                q(versions::POD_IMAGE)
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

/// `rrlab up --backend kind`: every command, in order.
pub fn plan_up(topo: &Topology, opts: &PlanOptions) -> Plan {
    let mut s: Vec<PlanStep> = Vec::new();
    let strict = opts.strict_versions;
    let with = |step: PlanStep, c: Check| if strict { step.check(c) } else { step };

    // 1. tools
    s.push(with(
        PlanStep::new(format!("kind is installed (pinned {})", versions::KIND_VERSION), &["kind", "version"]),
        Check::KindVersion(versions::KIND_VERSION.to_string()),
    ));
    s.push(with(
        PlanStep::new(
            format!("containerlab is installed (pinned {})", versions::CONTAINERLAB_VERSION),
            &["containerlab", "version"],
        ),
        Check::ContainerlabVersion(versions::CONTAINERLAB_VERSION.to_string()),
    ));
    s.push(PlanStep::new(
        format!("kubectl is installed (pinned {}; one minor version of skew works)", versions::KUBECTL_VERSION),
        &["kubectl", "version", "--client"],
    ));
    let downloads = opts.downloads();
    let base = opts.calico_base();
    s.push(PlanStep::new(
        "directories for kubeconfigs, manifests, downloads and calicoctl",
        &["mkdir", "-p", &path_str(&opts.work_dir), &path_str(&base), &path_str(&downloads), &path_str(&opts.bin_dir)],
    ));

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

    // 3. site bridges
    for br in bridges(topo) {
        s.push(PlanStep::new(
            format!("site bridge {br} (containerlab expects host bridges to exist)"),
            &["ip", "link", "add", &br, "type", "bridge"],
        ));
        s.push(PlanStep::new(format!("site bridge {br} up"), &["ip", "link", "set", &br, "up"]));
    }

    // 4. kind clusters
    for c in &topo.clusters {
        s.push(PlanStep::new(
            format!("kind cluster {} ({} nodes, pod subnet {}, no default CNI)", c.name, c.nodes.len(), c.pod_subnet),
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
                &path_str(&opts.kubeconfig(&c.name)),
            ],
        ));
    }

    // 5. containerlab: links, WAN, exec commands
    let mut deploy = vec!["containerlab".to_string(), "deploy".to_string()];
    deploy.extend(containerlab_filter_args(topo));
    s.push(PlanStep::new(
        "containerlab: wire the kind nodes and the WAN to the site bridges, run every exec command (k8s-kind nodes filtered out: the clusters exist)",
        &deploy,
    ));
    s.extend(wan_setup_steps(topo));

    // 6. Calico per cluster
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
            calico_overlay_kustomization(c),
        ));
        s.push(PlanStep::write_file(
            format!(
                "{}: calico-node env: CALICO_IPV4POOL_CIDR={}, CALICO_IPV4POOL_IPIP={}, IP_AUTODETECTION_METHOD=interface={}",
                c.name, c.pod_subnet, c.ipip_mode, c.node_interface
            ),
            &overlay.join("calico-node-env.yaml"),
            calico_node_env_patch(c),
        ));
        s.push(PlanStep::new(
            format!(
                "{}: install Calico {} (create: the CRDs are too large for client-side apply)",
                c.name,
                versions::CALICO_VERSION
            ),
            &a.kubectl(&["create", "-k", &path_str(&overlay)]),
        ));
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
        if opts.pods_per_node > 0 {
            s.push(
                PlanStep::new(
                    format!("{}: {} probe pod(s) per node ({})", c.name, opts.pods_per_node, versions::POD_IMAGE),
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
            s.push(PlanStep::new(
                format!("{}: calicoctl on node {} (for `calicoctl node status` there)", c.name, n.name),
                &[
                    "docker",
                    "cp",
                    &path_str(&opts.calicoctl()),
                    &format!("{}:/usr/local/bin/calicoctl", topo.container_name(&n.name)),
                ],
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

/// `rrlab down --backend kind`: containerlab's nodes and links, the clusters, the bridges. Best effort:
/// every step runs even when one fails (a half-built lab comes down too). The work directory stays (it
/// holds the failure dumps); the FORWARD rules containerlab adds for the bridges stay too (containerlab
/// documents that it leaves them), harmless once the bridges are gone.
pub fn plan_down(topo: &Topology, opts: &PlanOptions) -> Plan {
    let mut s = Vec::new();
    let mut destroy = vec!["containerlab".to_string(), "destroy".to_string()];
    destroy.extend(containerlab_filter_args(topo));
    destroy.push("--cleanup".to_string());
    s.push(PlanStep::new("containerlab: the WAN and every link it made", &destroy).allow_failure());
    for c in &topo.clusters {
        s.push(
            PlanStep::new(
                format!("kind cluster {}", c.name),
                &["kind", "delete", "cluster", "--name", &c.name, "--kubeconfig", &path_str(&opts.kubeconfig(&c.name))],
            )
            .allow_failure(),
        );
    }
    for br in bridges(topo) {
        s.push(PlanStep::new(format!("site bridge {br}"), &["ip", "link", "del", &br]).allow_failure());
    }
    Plan { title: format!("rrlab down --backend kind: lab {} from {}", topo.name, topo.file.display()), steps: s }
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
