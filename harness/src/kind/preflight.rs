//! What `rrlab up --backend kind` checks before it creates anything: the tools (and their versions), the
//! inotify limits multi-node kind clusters need, and leftovers of earlier runs (a kind cluster of a
//! topology cluster's name, containerlab containers or the lab directory of the lab, the site bridges, an
//! earlier run's record). The checks are plan steps (they show in `--dry-run` and go through the
//! [`super::Runner`]); their outputs are judged by the pure functions here.

use std::fmt;
use std::path::{Path, PathBuf};

use super::plan::{Check, PlanOptions, PlanStep};
use super::runner::StepOutput;
use super::versions;
use crate::model::topology::{NodeKind, Topology};

/// `/proc/sys/fs/inotify/max_user_watches`.
pub const INOTIFY_WATCHES: &str = "/proc/sys/fs/inotify/max_user_watches";
/// `/proc/sys/fs/inotify/max_user_instances`.
pub const INOTIFY_INSTANCES: &str = "/proc/sys/fs/inotify/max_user_instances";

/// The values kind's documentation recommends ("Known Issues: Pod errors due to “too many open files”",
/// https://kind.sigs.k8s.io/docs/user/known-issues/#pod-errors-due-to-too-many-open-files):
/// `fs.inotify.max_user_watches=524288`, `fs.inotify.max_user_instances=512`.
pub const KIND_RECOMMENDED_WATCHES: u64 = 524_288;
pub const KIND_RECOMMENDED_INSTANCES: u64 = 512;
/// Up to this many kind nodes on the host, kind's recommended values are asked for; beyond it rrlab asks for
/// proportionally more (its own extrapolation, not kind's: every node runs its own kubelet, containerd and
/// systemd, the main inotify users). Unverified until a run with more nodes.
pub const NODES_PER_RECOMMENDATION: u64 = 8;

/// What the limits must be for `nodes` kind nodes. A single node needs nothing special.
pub fn inotify_required(nodes: usize) -> Option<(u64, u64)> {
    if nodes <= 1 {
        return None;
    }
    let n = nodes as u64;
    let scale = n.div_ceil(NODES_PER_RECOMMENDATION).max(1);
    Some((KIND_RECOMMENDED_WATCHES * scale, KIND_RECOMMENDED_INSTANCES * scale))
}

/// One inotify limit below what the lab needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The sysctl (`fs.inotify.max_user_watches`).
    pub sysctl: &'static str,
    pub have: u64,
    pub need: u64,
}

/// The inotify limits are too low for the lab.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InotifyShortfall {
    pub nodes: usize,
    pub short: Vec<Shortfall>,
}

impl fmt::Display for InotifyShortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the host's inotify limits are too low for {} kind nodes (kind's known issue \"too many open files\"): ",
            self.nodes
        )?;
        let parts: Vec<String> =
            self.short.iter().map(|s| format!("{} is {}, needs at least {}", s.sysctl, s.have, s.need)).collect();
        write!(f, "{}. Raise them: ", parts.join("; "))?;
        let cmds: Vec<String> = self.short.iter().map(|s| format!("sudo sysctl -w {}={}", s.sysctl, s.need)).collect();
        write!(
            f,
            "{} (or pass --raise-limits and rrlab runs exactly that; to keep them across reboots put them in /etc/sysctl.d/)",
            cmds.join(" && ")
        )
    }
}

/// Pure: the limits `watches`/`instances` against what `nodes` kind nodes need.
pub fn check_inotify(watches: u64, instances: u64, nodes: usize) -> Result<(), InotifyShortfall> {
    let Some((need_w, need_i)) = inotify_required(nodes) else { return Ok(()) };
    let mut short = Vec::new();
    if watches < need_w {
        short.push(Shortfall { sysctl: "fs.inotify.max_user_watches", have: watches, need: need_w });
    }
    if instances < need_i {
        short.push(Shortfall { sysctl: "fs.inotify.max_user_instances", have: instances, need: need_i });
    }
    if short.is_empty() {
        Ok(())
    } else {
        Err(InotifyShortfall { nodes, short })
    }
}

/// `cat max_user_watches max_user_instances` → the two numbers (None: not two numbers).
pub fn parse_inotify(text: &str) -> Option<(u64, u64)> {
    let v: Vec<u64> = text.split_whitespace().map(|w| w.parse().ok()).collect::<Option<Vec<u64>>>()?;
    match v.as_slice() {
        [w, i] => Some((*w, *i)),
        _ => None,
    }
}

/// The steps that raise the short limits (`--raise-limits`): `sysctl -w <name>=<value>`.
pub fn raise_steps(s: &InotifyShortfall) -> Vec<PlanStep> {
    s.short
        .iter()
        .map(|x| {
            PlanStep::new(
                format!("raise {} from {} to {} (--raise-limits)", x.sysctl, x.have, x.need),
                &["sysctl", "-w", &format!("{}={}", x.sysctl, x.need)],
            )
        })
        .collect()
}

/// Something of an earlier run (or of the user) in the way of a fresh bring-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// An earlier `rrlab up` of this lab is still recorded (its lab is up, or its teardown failed).
    Record(PathBuf),
    /// A kind cluster of a topology cluster's name.
    KindCluster(String),
    /// Containers labelled `containerlab=<lab>`.
    Containers(Vec<String>),
    /// containerlab's lab directory (holds `.state.clab.yaml`, which makes the next deploy reconcile).
    LabDir(PathBuf),
    /// A host interface with a site bridge's name.
    Bridge(String),
}

impl Leftover {
    /// The command that removes it.
    pub fn removal(&self, lab: &str) -> String {
        match self {
            Leftover::Record(_) => format!("rrlab down --backend kind {lab}"),
            Leftover::KindCluster(c) => format!("kind delete cluster --name {c}"),
            Leftover::Containers(names) => format!("docker rm -f {}", names.join(" ")),
            Leftover::LabDir(d) => format!("rm -rf {}", d.display()),
            Leftover::Bridge(b) => format!("ip link del {b}"),
        }
    }
}

impl fmt::Display for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leftover::Record(p) => write!(f, "an earlier rrlab bring-up of this lab is recorded in {}", p.display()),
            Leftover::KindCluster(c) => write!(f, "kind cluster {c} exists"),
            Leftover::Containers(n) => write!(f, "containerlab containers of the lab exist: {}", n.join(", ")),
            Leftover::LabDir(d) => write!(f, "containerlab lab directory {} exists", d.display()),
            Leftover::Bridge(b) => write!(f, "host interface {b} exists"),
        }
    }
}

/// The message for leftovers: each, and exactly what removes it.
pub fn leftovers_message(lab: &str, items: &[Leftover]) -> String {
    let mut s = format!("lab {lab}: refusing to start over leftovers; remove them first:");
    for l in items {
        s.push_str(&format!("\n  - {l}: {}", l.removal(lab)));
    }
    if items.iter().any(|l| matches!(l, Leftover::KindCluster(_))) {
        s.push_str("\n  (or pass --reuse to use the existing kind cluster(s) as they are; rrlab will not delete them)");
    }
    s
}

/// Indices of the preflight steps in [`steps`] (and so at the start of every bring-up plan).
pub const KIND_VERSION: usize = 0;
pub const CONTAINERLAB_VERSION: usize = 1;
pub const KUBECTL_VERSION: usize = 2;
pub const CONTAINERS: usize = 3;
pub const KIND_CLUSTERS: usize = 4;
pub const BRIDGES: usize = 5;
pub const PATHS: usize = 6;
pub const INOTIFY: usize = 7;

/// containerlab's lab directory for the lab: `$CLAB_LABDIR_BASE/clab-<lab>` (rrlab sets `CLAB_LABDIR_BASE`
/// to the work directory on deploy and destroy). containerlab v0.79.0 `types/topo_paths.go`
/// (`SetLabDirByPrefix`: `CLAB_LABDIR_BASE`, else the topology file's directory; `labDirPrefix = "clab-"`;
/// `StateFile()` = `<lab dir>/.state.clab.yaml`).
pub fn lab_dir(opts: &PlanOptions, lab: &str) -> PathBuf {
    opts.work_dir.join(format!("clab-{lab}"))
}

/// Where a plain `containerlab deploy -t <topology>` (without `CLAB_LABDIR_BASE`) puts the lab directory.
pub fn default_lab_dir(topo: &Topology) -> PathBuf {
    topo.file.parent().unwrap_or(Path::new(".")).join(format!("clab-{}", topo.name))
}

fn with_version_check(opts: &PlanOptions, step: PlanStep, c: Check) -> PlanStep {
    step.check(if opts.strict_versions { c } else { Check::Warn(Box::new(c)) })
}

/// The preflight steps, read-only, in the order of the index constants above.
pub fn steps(topo: &Topology, opts: &PlanOptions) -> Vec<PlanStep> {
    let label = format!("label=containerlab={}", topo.name);
    vec![
        with_version_check(
            opts,
            PlanStep::new(format!("kind is installed (pinned {})", versions::KIND_VERSION), &["kind", "version"]),
            Check::KindVersion(versions::KIND_VERSION.to_string()),
        ),
        with_version_check(
            opts,
            PlanStep::new(
                format!("containerlab is installed (pinned {})", versions::CONTAINERLAB_VERSION),
                &["containerlab", "version"],
            ),
            Check::ContainerlabVersion(versions::CONTAINERLAB_VERSION.to_string()),
        ),
        PlanStep::new(
            format!("kubectl is installed (pinned {}; one minor version of skew works)", versions::KUBECTL_VERSION),
            &["kubectl", "version", "--client"],
        ),
        PlanStep::docker(
            format!("leftovers: containers of lab {} (containerlab labels them containerlab=<lab>)", topo.name),
            super::docker_ops::DockerOp::NamesByLabel { label: label.trim_start_matches("label=").to_string() },
        ),
        PlanStep::new("leftovers: kind clusters on this host", &["kind", "get", "clusters"]),
        PlanStep::new("leftovers: host bridges", &["ip", "-j", "link", "show", "type", "bridge"]),
        PlanStep::new(
            "leftovers: an earlier run's record, containerlab's lab directory (ours, and a plain deploy's)",
            &[
                "sh",
                "-c",
                "for p in \"$@\"; do if [ -e \"$p\" ]; then echo \"$p\"; fi; done",
                "sh",
                &opts.record_file().display().to_string(),
                &lab_dir(opts, &topo.name).display().to_string(),
                &default_lab_dir(topo).display().to_string(),
            ],
        ),
        PlanStep::new(
            "inotify limits (kind known issue: multi-node clusters run out of them)",
            &["cat", INOTIFY_WATCHES, INOTIFY_INSTANCES],
        ),
    ]
}

/// `kind get clusters`: one name a line on stdout (kind prints "No kind clusters found." on stderr).
pub fn parse_kind_clusters(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("No kind clusters"))
        .map(String::from)
        .collect()
}

/// `ip -j link show type bridge`: the `ifname`s (empty or unreadable output: none).
pub fn parse_bridges_json(stdout: &str) -> Vec<String> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(stdout.trim()) else {
        return Vec::new();
    };
    items.iter().filter_map(|i| i.get("ifname").and_then(|n| n.as_str()).map(String::from)).collect()
}

fn lines(stdout: &str) -> Vec<String> {
    stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

/// What preflight found: clusters to reuse, warnings, the steps that raise the inotify limits.
#[derive(Debug, Default)]
pub struct Found {
    pub reused: Vec<String>,
    pub warnings: Vec<String>,
    pub raise: Vec<PlanStep>,
}

/// Why preflight stops the bring-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreflightError {
    #[error("{}", leftovers_message(.lab, .items))]
    Leftovers { lab: String, items: Vec<Leftover> },
    #[error(transparent)]
    Inotify(#[from] InotifyShortfall),
}

/// Pure: judge the preflight outputs (in [`steps`]' order).
pub fn evaluate(topo: &Topology, opts: &PlanOptions, outs: &[StepOutput]) -> Result<Found, PreflightError> {
    let out = |i: usize| outs.get(i).map(|o| o.stdout.as_str()).unwrap_or("");
    let mut found = Found::default();
    let mut items = Vec::new();
    let record = opts.record_file();
    let ours = lab_dir(opts, &topo.name);
    for p in lines(out(PATHS)) {
        let p = PathBuf::from(p);
        if p == record {
            items.push(Leftover::Record(p));
        } else if p == ours {
            items.push(Leftover::LabDir(p));
        } else {
            found.warnings.push(format!(
                "{} is a containerlab lab directory from a deploy outside rrlab; rrlab keeps its own in {} so it does not get in the way, but it is stale: rm -rf {}",
                p.display(),
                ours.display(),
                p.display()
            ));
        }
    }
    let clusters = parse_kind_clusters(out(KIND_CLUSTERS));
    for c in &topo.clusters {
        if clusters.contains(&c.name) {
            if opts.reuse {
                found.reused.push(c.name.clone());
                found.warnings.push(format!(
                    "--reuse: kind cluster {} exists and is used as it is (not created, and not deleted by teardown)",
                    c.name
                ));
            } else {
                items.push(Leftover::KindCluster(c.name.clone()));
            }
        }
    }
    let containers = lines(out(CONTAINERS));
    if !containers.is_empty() {
        items.push(Leftover::Containers(containers));
    }
    let bridges = parse_bridges_json(out(BRIDGES));
    for n in topo.nodes.values().filter(|n| n.kind == NodeKind::Bridge) {
        if bridges.contains(&n.name) {
            items.push(Leftover::Bridge(n.name.clone()));
        }
    }
    if !items.is_empty() {
        return Err(PreflightError::Leftovers { lab: topo.name.clone(), items });
    }
    let nodes = topo.clusters.iter().map(|c| c.nodes.len()).sum();
    match parse_inotify(out(INOTIFY)) {
        None => found.warnings.push(format!(
            "could not read {INOTIFY_WATCHES} and {INOTIFY_INSTANCES} (got {:?}); inotify limits not checked",
            out(INOTIFY)
        )),
        Some((w, i)) => {
            if let Err(s) = check_inotify(w, i, nodes) {
                if opts.raise_limits {
                    found.raise = raise_steps(&s);
                } else {
                    return Err(s.into());
                }
            }
        }
    }
    Ok(found)
}

/// The message for a tool that cannot be started: which, the `PATH` searched, and — under sudo, whose
/// `secure_path` (Ubuntu's default sudoers) replaces `PATH` — that a kind in `~/go/bin` (where `go install
/// sigs.k8s.io/kind@…` puts it) is not on it.
pub fn tool_missing_message(tool: &str, path: &str, sudo_user: Option<&str>) -> String {
    let mut s = format!("`{tool}` cannot be started: it is not installed or not on PATH ({path})");
    if let Some(u) = sudo_user {
        s.push_str(&format!(
            ". Running under sudo (SUDO_USER={u}): sudo's secure_path replaces PATH, so a {tool} in ~/go/bin or ~/.local/bin is not found; run `sudo env \"PATH=$PATH\" rrlab …` or install {tool} into /usr/local/bin"
        ));
    }
    s
}
