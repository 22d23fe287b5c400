//! The `rrlab` command line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use rrlab::{agent, lab};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use rrlab::backend::BackendKind;
use rrlab::runtime::RuntimeKind;
use rrlab::twin::apply::apply_text;
use rrlab::twin::commands::run_script;
use rrlab::twin::datastore::{Datastore, WriteMode};
use rrlab::twin::render::{render_node, Flavor};

#[derive(Parser)]
#[command(name = "rrlab", version, about = "Rehearse Calico BGP procedures on calico-node twins or kind clusters")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum FlavorArg {
    /// What the twin's upstream BIRD 1.6.8 runs (krt_tunnel as a filter-local variable; decision in kernel.json).
    Twin,
    /// Exactly what calico-node writes for Calico's BIRD fork (krt_tunnel).
    Calico,
}

#[derive(Subcommand)]
enum WanCmd {
    /// Cut traffic between two sites or subnets (both ways unless --one-way).
    Partition {
        from: String,
        to: String,
        #[arg(long)]
        one_way: bool,
    },
    /// Drop a percentage of forwarded packets at random.
    Loss { percent: f64 },
    /// Limit the rate (kbit/s) on the WAN's interfaces.
    Rate { kbit: u32 },
    /// Delay each direction by `ms` (netem where the kernel has it, else userspace through NFQUEUE).
    Delay { ms: u32 },
    /// netem's knobs together, each direction: e.g. "delay: 20ms, jitter: 5ms, loss: burst 2% 25%, duplicate: 1%,
    /// reorder: 5%, corrupt: 0.1%" (userspace through NFQUEUE; replaces what was set).
    Impair { spec: String },
    /// What rrlab set on the WAN: its rules, qdiscs, and each userspace impairment's counters.
    Show,
    /// Remove partitions, loss, rate and delay.
    Heal,
    /// BGP and IPIP packets/bytes that crossed the WAN.
    Counters,
}

#[derive(Subcommand)]
enum ProbeCmd {
    Send {
        #[arg(long)]
        to: std::net::SocketAddr,
        #[arg(long, default_value_t = 10_000)]
        period_us: u64,
        #[arg(long)]
        start_file: PathBuf,
    },
    Recv {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        log: PathBuf,
    },
}

/// Where `rrlab run` writes its HTML report.
#[derive(clap::Args, Debug, Clone)]
struct HtmlArgs {
    /// Write the HTML report here (default: rrlab-report/<runbook>.html).
    #[arg(long)]
    html: Option<PathBuf>,
    /// No HTML report (and no per-step snapshot of every node's sessions and routes).
    #[arg(long)]
    no_html: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Bring a topology up as a twin lab and wait until it has converged.
    Up {
        /// The topology file (kind backend: or a lab name, for topologies/<name>.clab.yml).
        topology: PathBuf,
        /// twin (default): calico-node twins; kind: real kind clusters + Calico v3.30 + containerlab.
        #[arg(long, value_enum, default_value = "twin")]
        backend: BackendKind,
        /// kind: use existing kind clusters of the topology's cluster names as they are (never deleted).
        #[arg(long)]
        reuse: bool,
        /// kind: a kind/containerlab/calicoctl version other than the pinned one is an error, not a warning.
        #[arg(long)]
        strict_versions: bool,
        /// kind: pull Calico's images from this registry instead of docker.io (e.g. quay.io).
        #[arg(long)]
        image_registry: Option<String>,
        /// Raise too-low host limits instead of stopping: twin: the neighbour table (gc_thresh), open files;
        /// kind: fs.inotify.
        #[arg(long)]
        raise_limits: bool,
        /// Print the exact plan (every command, in order) instead of running it (kind backend).
        #[arg(long)]
        dry_run: bool,
        /// docker (default where a Docker daemon answers) or netns.
        #[arg(long, value_enum)]
        runtime: Option<RuntimeKind>,
        /// Pods per node.
        #[arg(long, default_value_t = 2)]
        pods: u32,
        /// Seconds to wait for convergence.
        #[arg(long, default_value_t = 180)]
        timeout: u64,
        /// Skip the every-pod-to-every-pod check (big labs).
        #[arg(long)]
        no_ping_matrix: bool,
        /// twin, docker runtime: every node serves SSH on a management network, keys per lab, and the lab's
        /// inventory for `rrlab check --ssh` is written to /run/rrlab/<lab>/ssh/inventory.yaml.
        #[arg(long)]
        ssh: bool,
    },
    /// Remove a lab (or every lab and leftovers of crashed runs).
    Down {
        /// The lab (kind backend: a lab name or its topology file).
        lab: Option<String>,
        /// kind: remove what `rrlab up --backend kind` recorded creating for the lab, nothing else.
        #[arg(long, value_enum, default_value = "twin")]
        backend: BackendKind,
        /// The topology (kind backend; the lab's record names it, so the lab name is enough).
        #[arg(long)]
        topology: Option<PathBuf>,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        all: bool,
    },
    /// `calicoctl node status` of every node of a lab.
    Status {
        /// The lab (twin), or with --backend kind a lab name or its topology file.
        lab: String,
        #[arg(long, value_enum, default_value = "twin")]
        backend: BackendKind,
        /// Print the commands instead of running them (kind backend).
        #[arg(long)]
        dry_run: bool,
    },
    /// Run a command inside a lab node.
    Exec {
        node: String,
        #[arg(long)]
        lab: Option<String>,
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Run a kubectl command line against a running lab's cluster.
    Kubectl {
        #[arg(long)]
        lab: Option<String>,
        #[arg(long)]
        cluster: Option<String>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// Run a calicoctl command line against a running lab's cluster.
    Calicoctl {
        #[arg(long)]
        lab: Option<String>,
        #[arg(long)]
        cluster: Option<String>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// WAN emulator actions on a running lab.
    Wan {
        #[arg(long)]
        lab: Option<String>,
        #[command(subcommand)]
        action: WanCmd,
    },
    /// Rehearse a runbook: bring its lab up, run every step with its expectations, report, tear down.
    Run {
        runbook: PathBuf,
        /// twin (default) or kind (real kind clusters + Calico v3.30 + containerlab).
        #[arg(long, value_enum, default_value = "twin")]
        backend: BackendKind,
        /// kind: the lab is already up (rrlab up --backend kind); skip the bring-up.
        #[arg(long)]
        reuse: bool,
        #[arg(long, value_enum)]
        runtime: Option<RuntimeKind>,
        /// Keep the lab afterwards (rrlab down <lab> removes it).
        #[arg(long)]
        keep: bool,
        /// Rehearse on this topology instead of the runbook's (e.g. one written by `rrlab import`).
        #[arg(long)]
        topology: Option<PathBuf>,
        /// twin, docker runtime: the nodes serve SSH (as `rrlab up --ssh`); with --keep, `rrlab check --ssh`
        /// can then look at the lab as at production.
        #[arg(long)]
        ssh: bool,
        /// Write JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
        #[command(flatten)]
        html: HtmlArgs,
    },
    /// Twin render vs live calico-node's BIRD config, per node of a kind lab (exit 1 on differences).
    Fidelity {
        topology: PathBuf,
        /// Only this cluster.
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Probe endpoints (started in pod namespaces by `rrlab run`).
    #[command(hide = true)]
    Probe {
        #[command(subcommand)]
        cmd: ProbeCmd,
    },
    /// Run on a WAN node: the userspace impairment path on one NFQUEUE queue, until SIGTERM (rrlab::impair).
    #[command(hide = true)]
    Impaird {
        #[arg(long)]
        queue: u16,
        /// The impairment (JSON: {"impairment": {"delay": "20ms", ...}, "seed": N}).
        #[arg(long)]
        spec: PathBuf,
        /// Where to write the counters (JSON, every 500 ms).
        #[arg(long)]
        counters: PathBuf,
    },
    /// Measure time to up-and-converged: hybrid-rr on each runtime and N-node full meshes on netns, each beside
    /// raw BIRD at the same N (--baseline), and a runbook rehearsed end to end (--procedure).
    Bench {
        /// Nodes of the generated full-mesh clusters, e.g. `--nodes 50,100,200` (0 skips them).
        #[arg(long, value_delimiter = ',', default_value = "100")]
        nodes: Vec<usize>,
        /// Only these runtimes for hybrid-rr (default: docker if available, and netns).
        #[arg(long, value_enum)]
        runtime: Vec<RuntimeKind>,
        /// Skip hybrid-rr.
        #[arg(long)]
        no_hybrid: bool,
        /// Write the results as JSON here too.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also run raw BIRD 1.6.8 in network namespaces (Calico's timers, no agent) at each N, right after the
        /// mesh of that N, and print rrlab's convergence time over BIRD's.
        #[arg(long)]
        baseline: bool,
        /// With --baseline: measure each N this many times, alternating which of the pair goes first, and print
        /// the median ratio.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
        repeat: u32,
        /// Rehearse these runbooks end to end on netns (up, every step, down), timed per step with the WAN
        /// traffic of each (e.g. labs/scale/p1-scale200.yaml).
        #[arg(long)]
        procedure: Vec<PathBuf>,
    },
    /// Build the docker runtime's node image through the Docker API, if it is not there yet (a Dockerfile on a
    /// pinned Debian base where a registry answers, else mmdebstrap's rootfs imported).
    Image {
        /// Build under this name:tag instead of the recipe's (to try the builder without touching the shared image).
        #[arg(long, hide = true)]
        tag: Option<String>,
    },
    /// Run inside a twin node: plays Felix and Calico's BIRD fork (started by `rrlab up`).
    #[command(hide = true)]
    Agent {
        #[arg(long)]
        node: String,
        #[arg(long)]
        state_dir: PathBuf,
        #[arg(long, default_value = "/etc/calico/confd/config")]
        config_dir: PathBuf,
        #[arg(long, default_value = "/var/run/calico/bird.ctl")]
        socket: PathBuf,
        #[arg(long, default_value = "bird")]
        bird: String,
    },
    /// Write a topology shaped like hybrid-rr at any size: `<name>.clab.yml` plus one `<cluster>.kind.yaml` per
    /// cluster, for both backends, byte-identical for the same options (topologies/README.md, "Generated").
    Gen {
        /// Cluster nodes in all (control planes included).
        #[arg(long)]
        nodes: usize,
        /// Sites (= partitions): one bridge and one subnet each, joined by the WAN node.
        #[arg(long, default_value_t = 1)]
        sites: usize,
        /// Route reflectors to be per site (and cluster): the first nodes of each site after the control plane,
        /// labelled rr-candidate=true.
        #[arg(long, default_value_t = 0)]
        rrs_per_site: usize,
        /// Clusters (each its own pod subnet, each spanning every site).
        #[arg(long, default_value_t = 1)]
        clusters: usize,
        /// The lab's name (default: scale<nodes>).
        #[arg(long)]
        name: Option<String>,
        /// The AS number the clusters' calico-nodes start with.
        #[arg(long, default_value_t = 64512)]
        as_number: u32,
        /// The first cluster's pod subnet; the next clusters get the following subnets of its size.
        #[arg(long, default_value = "172.16.0.0/16")]
        pod_subnet: String,
        /// The default IPPool's ipipMode: Always, CrossSubnet or Never.
        #[arg(long, default_value = "Always")]
        ipip_mode: String,
        /// Directory to write into (created if missing).
        #[arg(long, default_value = "topologies/generated")]
        out: PathBuf,
    },
    /// Write a topology and its Calico state from a real cluster's: files an operator can send (`kubectl get
    /// nodes -o yaml`, `calicoctl get <kind> -o yaml`, the calico-node DaemonSet, secrets, block affinities)
    /// or a live cluster (--kubeconfig/--context). Rehearse on it: `rrlab run R --topology DIR/NAME.clab.yml`.
    Import {
        /// An input file (repeatable); YAML or JSON, lists or single resources, any mix of kinds.
        #[arg(long = "from", value_name = "FILE")]
        from: Vec<PathBuf>,
        /// Read a live cluster with kubectl (and calicoctl where it is on PATH), read-only; secrets are not read.
        #[arg(long)]
        kubeconfig: Option<String>,
        #[arg(long)]
        context: Option<String>,
        /// Sites by CIDR (YAML `sites: {site-a: [10.0.1.0/24], …}`); default: one site per node subnet.
        #[arg(long)]
        sites: Option<PathBuf>,
        /// kind's serviceSubnet (default 10.96.0.0/12, or a free /16 where that overlaps the cluster).
        #[arg(long)]
        service_subnet: Option<ipnet::Ipv4Net>,
        /// The lab's and cluster's name (and the files' names).
        #[arg(long)]
        name: String,
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Judge a runbook step's expectations against a live cluster, read-only: over SSH to the nodes
    /// (`--ssh INVENTORY`) or through `kubectl exec` into calico-node (`--kubectl`). Commands are typed only
    /// with `--apply`.
    Check(rrlab::remote::CheckArgs),
    /// Draw a topology: Mermaid (default), Graphviz DOT, or a self-contained HTML page with an SVG and tables
    /// (no root, no lab).
    Graph {
        /// The topology file (`*.clab.yml`).
        topology: PathBuf,
        #[arg(long, default_value = "mermaid", value_parser = ["mermaid", "dot", "html"])]
        format: String,
        /// Write here instead of to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Render calico-node's BIRD configs and Felix state for one node from resource files.
    Render {
        /// Resource files (YAML, applied in order like `calicoctl apply`), or command scripts (`*.sh`).
        #[arg(long = "input", short = 'i', required = true)]
        inputs: Vec<PathBuf>,
        /// The node to render for (NODENAME).
        #[arg(long)]
        node: String,
        /// Output directory: bird.cfg, bird_ipam.cfg, bird_aggr.cfg, felix.json, kernel.json, calico/.
        #[arg(long)]
        out: PathBuf,
        /// calico-node environment variables (e.g. CALICO_ROUTER_ID=hash, FELIX_EXTERNALNODESCIDRLIST=…).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Which BIRD the top-level files are for (both are always written: the other under calico/ or twin/).
        #[arg(long, value_enum, default_value = "twin")]
        flavor: FlavorArg,
    },
}

fn load(inputs: &[PathBuf], env: &[String]) -> Result<Datastore> {
    let mut ds = Datastore::new();
    for kv in env {
        let Some((k, v)) = kv.split_once('=') else { bail!("--env {kv:?}: expected KEY=VALUE") };
        ds.calico_node_env.insert(k.to_string(), v.to_string());
    }
    for p in inputs {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let name = p.display().to_string();
        if p.extension().is_some_and(|e| e == "sh") {
            // A script of operator commands, run like a shell with `set -e`.
            let dir = p.parent().map(PathBuf::from).unwrap_or_default();
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).map_err(|e| format!("{f}: {e}"));
            let outcomes = run_script(&mut ds, &name, &text, &HashMap::new(), &read)?;
            for o in &outcomes {
                if !o.ok {
                    bail!("{name}:{}: `{}` failed:\n{}", o.line, o.command, o.stderr);
                }
            }
        } else {
            apply_text(&mut ds, &name, &text, WriteMode::Apply)?;
        }
    }
    Ok(ds)
}

/// The only lab that is up, when none is named.
fn pick_lab(lab: Option<String>) -> Result<String> {
    if let Some(l) = lab {
        return Ok(l);
    }
    let labs = lab::list_labs();
    match labs.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no lab is up (rrlab up <topology> first)"),
        many => bail!("several labs are up ({}): name one with --lab", many.join(", ")),
    }
}

/// The topology a kind-backend command names: a file, or a lab name (from the lab's record, else
/// `topologies/<name>.clab.yml`), loaded from its absolute path (the record keeps it for `down`).
fn kind_topology(arg: &str) -> Result<rrlab::model::topology::Topology> {
    let rec = std::fs::read_to_string(rrlab::kind::PlanOptions::for_lab(arg).record_file()).ok();
    let p = rrlab::kind::resolve_topology(arg, rec.as_deref(), std::path::Path::new("topologies"), &|p| p.is_file())?;
    Ok(rrlab::model::topology::load(&std::path::absolute(&p)?)?)
}

fn run_tool(tool: &str, lab_name: Option<String>, cluster: Option<String>, args: &[String]) -> Result<()> {
    let lab_name = pick_lab(lab_name)?;
    let mut state = lab::LabState::load(&lab_name)?;
    let topo = state.topology()?;
    let cluster = match cluster {
        Some(c) => c,
        None if topo.clusters.len() == 1 => topo.clusters[0].name.clone(),
        None => bail!(
            "lab {lab_name} has several clusters ({}): name one with --cluster",
            topo.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut line = format!("{tool} {}", rrlab::process::shell_line(args));
    let stdin_is_tty = unsafe { libc::isatty(0) } == 1;
    if args.windows(2).any(|w| w[0] == "-f" && w[1] == "-") && !stdin_is_tty {
        let mut body = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut body)?;
        line = format!("{line} <<'RRLAB_EOF'\n{body}{}RRLAB_EOF", if body.ends_with('\n') { "" } else { "\n" });
    }
    let outcomes = lab::run_commands(&mut state, &topo, &cluster, "command line", &format!("{line}\n"))?;
    let mut failed = false;
    for o in outcomes {
        if !o.stdout.is_empty() {
            println!("{}", o.stdout.trim_end());
        }
        if !o.stderr.is_empty() {
            eprintln!("{}", o.stderr.trim_end());
        }
        failed |= !o.ok;
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

fn main() -> Result<()> {
    // Output piped into `head` and the like ends quietly, as for any Unix tool.
    // SAFETY: restoring the default disposition of SIGPIPE before anything else runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Agent { node, state_dir, config_dir, socket, bird } => {
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let _ = ctrlc::set_handler(move || s.store(true, Ordering::Relaxed));
            agent::run(agent::AgentConfig { node, state_dir, config_dir, socket, bird_bin: bird }, stop)
                .map_err(anyhow::Error::msg)?;
        }
        Cmd::Impaird { queue, spec, counters } => {
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let _ = ctrlc::set_handler(move || s.store(true, Ordering::Relaxed));
            let c = rrlab::impair::nfqueue::run(queue, &spec, &counters, stop)?;
            eprintln!("rrlab impaird: queue {queue}: {}", serde_json::to_string(&c)?);
        }
        Cmd::Up {
            topology,
            backend: BackendKind::Kind,
            dry_run,
            reuse,
            strict_versions,
            image_registry,
            raise_limits,
            ..
        } => {
            let topo = kind_topology(&topology.display().to_string())?;
            let mut opts = rrlab::kind::PlanOptions::for_lab(&topo.name);
            opts.strict_versions |= strict_versions;
            opts.reuse = reuse;
            opts.image_registry = image_registry;
            opts.raise_limits = raise_limits;
            let plan = rrlab::kind::plan_up(&topo, &opts);
            if dry_run {
                print!("{plan}");
            } else {
                let runner = rrlab::kind::ProcessRunner;
                let r = rrlab::kind::up(&topo, &opts, &runner, &mut |i, st| {
                    eprintln!("[{}/{}] {}", i + 1, plan.steps.len(), st.what)
                })?;
                println!(
                    "lab {} up on kind (clusters: {}{}){}",
                    topo.name,
                    topo.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
                    if r.reused.is_empty() { String::new() } else { format!("; reused: {}", r.reused.join(", ")) },
                    if r.warnings.is_empty() {
                        String::new()
                    } else {
                        format!("; {} warning(s) above", r.warnings.len())
                    }
                );
            }
        }
        Cmd::Down { lab: name, backend: BackendKind::Kind, topology, dry_run, .. } => {
            let arg = match (name, topology) {
                (Some(n), _) => n,
                (None, Some(t)) => t.display().to_string(),
                (None, None) => bail!("rrlab down --backend kind <lab> (or --topology <file>)"),
            };
            let topo = kind_topology(&arg)?;
            let opts = rrlab::kind::PlanOptions::for_lab(&topo.name);
            let runner = rrlab::kind::ProcessRunner;
            if dry_run {
                let rec = rrlab::kind::read_record(&topo.name, &opts, &runner)?;
                print!("{}", rrlab::kind::plan::plan_down_for(&topo, &opts, &rec));
            } else {
                let t = rrlab::kind::down(&topo, &opts, &runner, &mut |_, st| eprintln!("{}", st.what))?;
                println!("{t}");
            }
        }
        Cmd::Up { topology, runtime, pods, timeout, no_ping_matrix, raise_limits, ssh, .. } => {
            lab::converge::RAISE_LIMITS.store(raise_limits, Ordering::Relaxed);
            let runtime = RuntimeKind::or_default(runtime);
            let _ = ctrlc::set_handler(|| lab::converge::INTERRUPTED.store(true, Ordering::Relaxed));
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            let opts = lab::converge::UpOptions {
                runtime,
                pods_per_node: pods,
                timeout: Duration::from_secs(timeout),
                ping_matrix: !no_ping_matrix,
                ssh,
            };
            let r = lab::converge::up(&topology, &opts, &|m| bar.set_message(m.to_string()));
            bar.finish_and_clear();
            let r = r?;
            println!(
                "lab {} up on {}: {} nodes, {} BGP sessions Established, {} pod-to-pod pings OK; built in {:.1}s, converged in {:.1}s",
                r.lab, r.runtime, r.nodes, r.sessions, r.pings, r.built.as_secs_f64(), r.converged.as_secs_f64()
            );
            if let Some(inv) = &r.ssh_inventory {
                println!("nodes serve SSH: rrlab check <runbook> --ssh {}", inv.display());
            }
            // The topology's declared link impairments (rrlab.io/impair.<iface> on the WAN node).
            if !rrlab::model::topology::load(&topology).map(|t| t.impairments.is_empty()).unwrap_or(true) {
                let lab = rrlab::backend::twin::TwinBackend::attach(&r.lab)?;
                for line in rrlab::wan::apply_declared(&lab)? {
                    println!("WAN {line}");
                }
            }
        }
        Cmd::Probe { cmd } => match cmd {
            ProbeCmd::Send { to, period_us, start_file } => {
                rrlab::runner::probe::send(to, Duration::from_micros(period_us), &start_file)?
            }
            ProbeCmd::Recv { port, log } => rrlab::runner::probe::receive(port, &log)?,
        },
        Cmd::Fidelity { topology, cluster } => {
            let topo = rrlab::model::topology::load(&topology)?;
            let opts = rrlab::kind::PlanOptions::for_lab(&topo.name);
            let base = topology.parent().map(PathBuf::from).unwrap_or_default();
            if let Some(c) = &cluster {
                if topo.cluster(c).is_none() {
                    bail!("no cluster {c:?} in {}", topology.display());
                }
            }
            let mut differ = false;
            for c in topo.clusters.iter().filter(|c| cluster.as_ref().is_none_or(|n| n == &c.name)) {
                // The twin's state for the topology as brought up (commands typed since are not replayed).
                let mut ds = lab::cluster_datastore(&topo, c, &[], &base)?;
                let nodes: Vec<String> = c.nodes.iter().map(|n| n.name.clone()).collect();
                let reports =
                    rrlab::kind::check_cluster(&rrlab::kind::ProcessRunner, &opts.access(&c.name), &mut ds, &nodes)?;
                for (node, r) in &reports {
                    if r.0.is_empty() {
                        println!("{node}: same behaviour");
                    } else {
                        differ = true;
                        println!("{node}:\n{r}");
                    }
                }
            }
            if differ {
                std::process::exit(1);
            }
        }
        Cmd::Run { runbook, backend, reuse, runtime, keep, topology, ssh, junit, html } => {
            let _ = ctrlc::set_handler(|| rrlab::runner::INTERRUPTED.store(true, Ordering::Relaxed));
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            let opts = rrlab::runner::RunOptions { backend, runtime, keep, reuse, topology, ssh, ..Default::default() };
            use rrlab::report::reporters;
            let out = |l: &str| bar.suspend(|| println!("{l}"));
            let progress = |m: &str| bar.set_message(m.to_string());
            let terminal = reporters::Terminal { out: &out, progress: Some(&progress), failures: true };
            let (junit_r, html_r) = (reporters::Junit::default(), reporters::Html::default());
            let mut all: Vec<&dyn rrlab::runner::Events> = vec![&terminal, &junit_r];
            if !html.no_html {
                all.push(&html_r);
            }
            let res = rrlab::runner::run(&runbook, &opts, &rrlab::runner::Fanout(all));
            bar.finish_and_clear();
            let stem = runbook.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
            if !html.no_html && !html_r.is_empty() {
                let path =
                    html.html.clone().unwrap_or_else(|| PathBuf::from("rrlab-report").join(format!("{stem}.html")));
                if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(d)?;
                }
                std::fs::write(&path, html_r.html(&format!("rrlab run {}", runbook.display())))?;
                eprintln!("HTML report: {}", path.display());
            }
            if let Some(j) = junit {
                std::fs::write(&j, junit_r.xml("rrlab run"))?;
            }
            let res = res?;
            match &res.teardown {
                Some(Err(e)) => eprintln!("teardown failed: {e}"),
                None => eprintln!("lab {} kept (rrlab down {} removes it)", res.lab, res.lab),
                Some(Ok(_)) => {}
            }
            if !res.passed() {
                std::process::exit(1);
            }
        }
        Cmd::Bench { nodes, runtime, no_hybrid, json, baseline, repeat, procedure } => {
            let _ = ctrlc::set_handler(|| lab::converge::INTERRUPTED.store(true, Ordering::Relaxed));
            let mut runtimes = runtime.clone();
            if runtimes.is_empty() {
                if rrlab::runtime::docker::Docker::new().is_ok() {
                    runtimes.push(RuntimeKind::Docker);
                }
                runtimes.push(RuntimeKind::Netns);
            }
            let here = std::env::current_dir()?;
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            let mut rows = Vec::new();
            let mut pairs = Vec::new();
            if !no_hybrid {
                for rt in &runtimes {
                    bar.set_message(format!("hybrid-rr on {rt}"));
                    rows.push(lab::bench::bench_one(
                        &here.join("topologies/hybrid-rr.clab.yml"),
                        *rt,
                        true,
                        Duration::from_secs(300),
                        &|m| bar.set_message(format!("hybrid-rr on {rt}: {m}")),
                    )?);
                }
            }
            let rounds = if baseline { repeat as usize } else { 1 };
            for &n in nodes.iter().filter(|&&n| n > 0) {
                for round in 0..rounds {
                    let tag = if rounds > 1 { format!(" (round {} of {rounds})", round + 1) } else { String::new() };
                    let base =
                        || lab::baseline::run(n, Duration::from_secs(900), &|m| bar.set_message(format!("{m}{tag}")));
                    let first = if baseline && lab::bench::baseline_first(round) { Some(base()?) } else { None };
                    let dir = std::env::temp_dir().join(format!("rrlab-bench-{}", std::process::id()));
                    let topo = lab::bench::mesh_topology(&dir, n)?;
                    let r = lab::bench::bench_one(&topo, RuntimeKind::Netns, false, Duration::from_secs(900), &|m| {
                        bar.set_message(format!("mesh{n} on netns{tag}: {m}"))
                    });
                    let _ = std::fs::remove_dir_all(&dir);
                    let r = r?;
                    rows.push(r.clone());
                    if baseline {
                        let b = match first {
                            Some(b) => b,
                            None => base()?,
                        };
                        pairs.push(lab::bench::Pair::of(&r, b));
                    }
                }
            }
            let mut rehearsals = Vec::new();
            for p in &procedure {
                rehearsals.push(lab::bench::rehearse(p, &|m| bar.set_message(m.to_string()))?);
            }
            bar.finish_and_clear();
            print!("{}", lab::bench::table(&rows));
            if !pairs.is_empty() {
                println!();
                print!("{}", lab::bench::pairs_table(&pairs));
                print!("{}", lab::bench::summary_table(&lab::bench::summarise(&pairs)));
            }
            for r in &rehearsals {
                println!();
                print!("{}", lab::bench::rehearsal_table(r));
            }
            if let Some(p) = json {
                let v = serde_json::json!({
                    "rows": rows,
                    "baseline": pairs,
                    "ratios": lab::bench::summarise(&pairs),
                    "rehearsals": rehearsals,
                });
                std::fs::write(p, serde_json::to_string_pretty(&v)?)?;
            }
            if rehearsals.iter().any(|r| !r.passed) {
                std::process::exit(1);
            }
        }
        Cmd::Image { tag } => {
            let mut d = rrlab::runtime::docker::Docker::new()?;
            if let Some(t) = tag {
                d.image = t;
            }
            let had = d.image_present();
            let t = std::time::Instant::now();
            d.build_image_with(&|m| eprintln!("rrlab image: {m}"))?;
            if had {
                println!("{} (present)", d.image);
            } else {
                println!("{} built in {:.1}s", d.image, t.elapsed().as_secs_f64());
            }
        }
        Cmd::Down { lab: name, all, .. } => {
            let removed = if all {
                lab::converge::down_all()?
            } else {
                let Some(name) = name else { bail!("rrlab down <lab> or rrlab down --all") };
                lab::converge::down(&name)?
            };
            for r in &removed {
                println!("removed {r}");
            }
            if removed.is_empty() {
                println!("nothing to remove");
            }
        }
        Cmd::Status { lab: topology, backend: BackendKind::Kind, dry_run } => {
            let topo = kind_topology(&topology)?;
            let plan = rrlab::kind::plan_status(&topo, &rrlab::kind::PlanOptions::for_lab(&topo.name));
            if dry_run {
                print!("{plan}");
            } else {
                for (i, st) in plan.steps.iter().enumerate() {
                    println!("== {}", st.what);
                    match rrlab::kind::runner::run_step(&rrlab::kind::ProcessRunner, i, st) {
                        Ok(o) => print!("{}", o.stdout),
                        Err(e) => println!("{e}"),
                    }
                }
            }
        }
        Cmd::Status { lab: name, .. } => {
            let state = lab::LabState::load(&name)?;
            let topo = state.topology()?;
            print!("{}", lab::converge::node_status_all(&state, &topo, None)?);
        }
        Cmd::Exec { node, lab: name, cmd } => {
            let name = pick_lab(name)?;
            let state = lab::LabState::load(&name)?;
            let rt = lab::runtime_for(state.runtime)?;
            let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let out = rt.exec(&lab::node_ref(&name, &node), &argv)?;
            std::io::Write::write_all(&mut std::io::stdout(), &out.stdout)?;
            std::io::Write::write_all(&mut std::io::stderr(), &out.stderr)?;
            std::process::exit(out.status.code().unwrap_or(1));
        }
        Cmd::Kubectl { lab: name, cluster, args } => run_tool("kubectl", name, cluster, &args)?,
        Cmd::Calicoctl { lab: name, cluster, args } => run_tool("calicoctl", name, cluster, &args)?,
        Cmd::Wan { lab: name, action } => {
            let lab = rrlab::backend::twin::TwinBackend::attach(&pick_lab(name)?)?;
            let topo = rrlab::backend::Backend::topology(&lab);
            let site = |s: &str| topo.site_cidr(s).map_err(anyhow::Error::msg);
            let a = match action {
                WanCmd::Partition { from, to, one_way } => {
                    rrlab::wan::Action::Partition { from: site(&from)?, to: site(&to)?, both: !one_way }
                }
                WanCmd::Loss { percent } => rrlab::wan::Action::Loss { percent },
                WanCmd::Rate { kbit } => rrlab::wan::Action::Rate { kbit },
                WanCmd::Delay { ms } => rrlab::wan::Action::Delay { ms },
                WanCmd::Heal => rrlab::wan::Action::Heal,
                WanCmd::Counters => {
                    println!("{}", serde_json::to_string_pretty(&rrlab::wan::counters(&lab)?)?);
                    return Ok(());
                }
                WanCmd::Impair { spec } => rrlab::wan::Action::Impair {
                    imp: spec.parse().map_err(|e| anyhow::anyhow!("rrlab wan impair {spec:?}: {e}"))?,
                },
                WanCmd::Show => {
                    print!("{}", rrlab::wan::show(&lab)?);
                    return Ok(());
                }
            };
            if matches!(a, rrlab::wan::Action::Delay { .. } | rrlab::wan::Action::Impair { .. }) {
                eprintln!("rrlab wan: {}", rrlab::wan::impair_path(&a));
            }
            rrlab::wan::act(&lab, &a)?;
        }
        Cmd::Gen { nodes, sites, rrs_per_site, clusters, name, as_number, pod_subnet, ipip_mode, out } => {
            use rrlab::model::topology::generator::{generate, GenSpec};
            let name = name.unwrap_or_else(|| format!("scale{nodes}"));
            let spec = GenSpec {
                pod_subnet: pod_subnet
                    .parse()
                    .with_context(|| format!("--pod-subnet {pod_subnet}: not an IPv4 CIDR"))?,
                clusters,
                as_number,
                ipip_mode,
                ..GenSpec::new(&name, nodes, sites, rrs_per_site)
            };
            let g = generate(&spec).map_err(|e| anyhow::anyhow!("rrlab gen: {e}"))?;
            std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
            for (file, text) in &g.files {
                let p = out.join(file);
                std::fs::write(&p, text).with_context(|| format!("{}", p.display()))?;
                println!("wrote {}", p.display());
            }
            print!("{}", g.plan.summary());
        }
        Cmd::Import { from, kubeconfig, context, sites, service_subnet, name, out } => {
            let mut inputs = Vec::new();
            for f in &from {
                let text = std::fs::read_to_string(f).with_context(|| format!("{}: cannot read", f.display()))?;
                inputs.push((f.display().to_string(), text));
            }
            if kubeconfig.is_some() || context.is_some() || from.is_empty() {
                let live = rrlab::import::run_live(kubeconfig.as_deref(), context.as_deref())?;
                for s in &live.skipped {
                    eprintln!("skipped: {s}");
                }
                inputs.extend(live.inputs);
            }
            let sites = match &sites {
                None => None,
                Some(p) => Some((
                    p.display().to_string(),
                    std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))?,
                )),
            };
            let opts = rrlab::import::ImportOptions { name, sites, service_subnet, seed: None };
            let imported = rrlab::import::import(&inputs, &opts)?;
            for p in rrlab::import::write(&imported, &out)? {
                println!("wrote {}", p.display());
            }
            let sources: Vec<String> = inputs.iter().map(|(n, _)| n.clone()).collect();
            println!("{}", imported.notes.markdown(&imported.name, &sources));
        }
        Cmd::Check(args) => {
            if !rrlab::remote::cli_check(args)? {
                std::process::exit(1);
            }
        }
        Cmd::Graph { topology, format, out } => {
            use rrlab::report::topology_view as view;
            let topo = rrlab::model::topology::load(&topology)?;
            let text = match format.as_str() {
                "dot" => view::dot(&topo),
                "html" => view::html_page(&topo, &format!("Topology {}", topo.name)),
                _ => view::mermaid(&topo),
            };
            match out {
                Some(p) => std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?,
                None => print!("{text}"),
            }
        }
        Cmd::Render { inputs, node, out, env, flavor } => {
            let ds = load(&inputs, &env)?;
            let (top, other, other_dir) = match flavor {
                FlavorArg::Twin => (Flavor::Upstream, Flavor::Calico, "calico"),
                FlavorArg::Calico => (Flavor::Calico, Flavor::Upstream, "twin"),
            };
            let main = render_node(&ds, &node, top)?;
            let alt = render_node(&ds, &node, other)?;
            std::fs::create_dir_all(out.join(other_dir)).with_context(|| format!("creating {}", out.display()))?;
            for (name, text) in main.files() {
                std::fs::write(out.join(name), text)?;
            }
            for (name, text) in alt.files() {
                std::fs::write(out.join(other_dir).join(name), text)?;
            }
            std::fs::write(out.join("felix.json"), serde_json::to_string_pretty(&main.felix)? + "\n")?;
            std::fs::write(out.join("kernel.json"), serde_json::to_string_pretty(&main.kernel)? + "\n")?;
            eprintln!("rendered {node} into {}", out.display());
        }
    }
    Ok(())
}
