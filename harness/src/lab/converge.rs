//! Bringing labs up and down, and observing them: BGP sessions over BIRD's socket, the kernel FIB, pod
//! reachability. `up` removes everything it made when it fails or is interrupted.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::agent::birdsock;
use crate::agent::protocol::{PodSpec, Status};
use crate::observe::{parse_ping, parse_protocols, render_node_status, KernelRoute, Protocol};
use crate::twin::ipam;

/// Set by the CLI's Ctrl-C handler; long waits stop and clean up.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> Result<(), LabError> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        Err(LabError::Other("interrupted".into()))
    } else {
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub runtime: RuntimeKind,
    pub pods_per_node: u32,
    pub timeout: Duration,
    /// Check every pod against every pod before declaring convergence.
    pub ping_matrix: bool,
    /// Every node serves SSH on a management network ([`super::ssh`]; docker runtime).
    pub ssh: bool,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            runtime: RuntimeKind::Netns,
            pods_per_node: 2,
            timeout: Duration::from_secs(120),
            ping_matrix: true,
            ssh: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub lab: String,
    pub runtime: RuntimeKind,
    pub nodes: usize,
    pub sessions: usize,
    pub built: Duration,
    pub converged: Duration,
    /// From the agents' start to the last node's last BIRD route change, stamped on the node (its netlink
    /// announcement, `runtime::netlink::RouteMonitor`), not when a polling round noticed.
    pub routes_converged_on_node: Option<Duration>,
    pub pings: usize,
    /// Resident memory at convergence (netns runtime: the processes are this host's).
    pub memory: Option<Memory>,
    /// `--ssh`: the inventory `rrlab check --ssh` reads.
    pub ssh_inventory: Option<std::path::PathBuf>,
}

/// Resident memory (VmRSS, KiB) of a lab's processes.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Memory {
    pub birds_kib: u64,
    pub agents_kib: u64,
    /// This rrlab process.
    pub rrlab_kib: u64,
}

/// VmRSS of a process (KiB); 0 when it is gone.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status")).map(|s| vm_rss_kib(&s)).unwrap_or(0)
}

/// The `VmRSS:` line of a `/proc/<pid>/status` text, in KiB.
pub fn vm_rss_kib(status: &str) -> u64 {
    status_kib(status, "VmRSS:")
}

/// A `<field> <n> kB` line of a `/proc/<pid>/status` text (`VmRSS:`, `VmHWM:`), in KiB; 0 when absent.
pub fn status_kib(status: &str, field: &str) -> u64 {
    status.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
}

/// Removes a half-built lab unless disarmed.
struct Cleanup {
    lab: String,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.armed {
            let _ = down(&self.lab);
        }
    }
}

fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(s.as_bytes());
    h.iter().take(3).map(|b| format!("{b:02x}")).collect()
}

/// The operator's consent to raise host limits a lab needs (`rrlab up --raise-limits`; `rrlab bench` and the
/// e2e give it). The environment variable [`RAISE_LIMITS_ENV`]`=1` gives it too (for `rrlab run`).
pub static RAISE_LIMITS: AtomicBool = AtomicBool::new(false);
pub const RAISE_LIMITS_ENV: &str = "RRLAB_RAISE_LIMITS";

/// The host values a twin lab depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    /// `net.ipv4.neigh.default.gc_thresh{1,2,3}`: one neighbour table for every network namespace.
    pub gc_thresh1: u64,
    pub gc_thresh2: u64,
    pub gc_thresh3: u64,
    /// RLIMIT_NOFILE of this process, which the agents and their BIRDs inherit.
    pub nofile_soft: u64,
    pub nofile_hard: u64,
    /// `fs.file-max`.
    pub file_max: u64,
}

/// What decides a lab's needs: cluster nodes per site, the largest cluster, pods per node, the WAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSize {
    /// Cluster nodes on each site (a node on no site counts as its own site).
    pub per_site: Vec<usize>,
    pub largest_cluster: usize,
    pub pods_per_node: u32,
    pub has_wan: bool,
}

impl LabSize {
    pub fn of(topo: &Topology, pods_per_node: u32) -> LabSize {
        let mut per_site: BTreeMap<String, usize> = BTreeMap::new();
        for c in &topo.clusters {
            for n in &c.nodes {
                *per_site.entry(topo.site_of(&n.name).unwrap_or_else(|| n.name.clone())).or_default() += 1;
            }
        }
        LabSize {
            per_site: per_site.into_values().collect(),
            largest_cluster: topo.clusters.iter().map(|c| c.nodes.len()).max().unwrap_or(0),
            pods_per_node,
            has_wan: topo.nodes.values().any(|n| n.kind == NodeKind::Linux),
        }
    }

    pub fn nodes(&self) -> usize {
        self.per_site.iter().sum()
    }

    /// Neighbour entries the lab holds at once: every node resolves the nodes on its site (BGP and IP-in-IP
    /// peers on the same L2) and its WAN gateway; each pod and its node resolve each other; the WAN resolves
    /// every node that sends across it.
    pub fn neighbours(&self) -> u64 {
        let nodes = self.nodes() as u64;
        let same_site: u64 = self.per_site.iter().map(|&k| (k as u64) * (k as u64).saturating_sub(1)).sum();
        let wan = if self.has_wan && self.per_site.len() > 1 { 2 * nodes } else { 0 };
        same_site + wan + 2 * nodes * u64::from(self.pods_per_node)
    }
}

/// One host limit below what the lab needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The sysctl (`net.ipv4.neigh.default.gc_thresh3`) or `ulimit -n` / `ulimit -Hn`.
    pub setting: &'static str,
    pub have: u64,
    pub need: u64,
    /// What it is raised to with consent; None when rrlab cannot raise it (a hard limit).
    pub raise_to: Option<u64>,
    pub why: String,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is {}, the lab needs at least {}: {}", self.setting, self.have, self.need, self.why)
    }
}

/// The limits `host` lacks for a lab of `size` (pure). The neighbour table is shared by every namespace, and
/// so with other labs on the host: gc_thresh3 (the hard cap; beyond it the kernel drops new neighbours,
/// "neighbour table overflow") must hold twice the lab's entries, gc_thresh2 (beyond it entries older than 5 s
/// are collected, so ARP churns under measurement) the lab's entries. A BIRD holds one socket per BGP peer
/// (a mesh node peers with every node of its cluster) and inherits this process's open-files limit. inotify is
/// not checked: the twin's agents do not use it (the kind backend checks it, `kind::preflight`).
pub fn check_limits(host: &HostLimits, size: &LabSize) -> Vec<Shortfall> {
    let mut out = Vec::new();
    let n = size.neighbours();
    let nodes = size.nodes();
    for (setting, have, need, raise_to) in [
        ("net.ipv4.neigh.default.gc_thresh2", host.gc_thresh2, n, (2 * n).max(32768)),
        ("net.ipv4.neigh.default.gc_thresh3", host.gc_thresh3, 2 * n, (4 * n).max(65536)),
    ] {
        if have < need {
            out.push(Shortfall {
                setting,
                have,
                need,
                raise_to: Some(raise_to),
                why: format!(
                    "{nodes} nodes hold about {n} neighbour entries in the one table all network namespaces share"
                ),
            });
        }
    }
    if !out.is_empty() && host.gc_thresh1 < n {
        // Raised along with the others so that the table is not collected below the lab's size.
        out.push(Shortfall {
            setting: "net.ipv4.neigh.default.gc_thresh1",
            have: host.gc_thresh1,
            need: n,
            raise_to: Some(n.max(8192)),
            why: "no garbage collection below it: raised with gc_thresh2/3".into(),
        });
    }
    let fds = size.largest_cluster as u64 + 256;
    if host.nofile_soft < fds {
        let can = host.nofile_hard >= fds;
        out.push(Shortfall {
            setting: if can { "ulimit -n (RLIMIT_NOFILE)" } else { "ulimit -Hn (RLIMIT_NOFILE, hard)" },
            have: if can { host.nofile_soft } else { host.nofile_hard },
            need: fds,
            raise_to: can.then_some(fds.max(host.nofile_soft)),
            why: format!(
                "each BIRD holds a socket per BGP peer ({} in the largest cluster's mesh) plus its own files, and inherits rrlab's limit",
                size.largest_cluster.saturating_sub(1)
            ),
        });
    }
    let total = nodes as u64 * (size.largest_cluster as u64 + 64);
    if host.file_max < total {
        out.push(Shortfall {
            setting: "fs.file-max",
            have: host.file_max,
            need: total,
            raise_to: Some(total * 2),
            why: format!("{nodes} BIRDs and agents with their sessions, system-wide"),
        });
    }
    out
}

/// The message when the operator has not consented, or a limit cannot be raised.
pub fn limits_message(short: &[Shortfall]) -> String {
    let mut m = String::from("host limits too low for this lab:\n");
    for s in short {
        m.push_str(&format!("  {s}\n"));
    }
    let sysctls: Vec<String> = short
        .iter()
        .filter(|s| s.setting.contains('.') && s.raise_to.is_some())
        .map(|s| format!("{}={}", s.setting, s.raise_to.unwrap_or(s.need)))
        .collect();
    if !sysctls.is_empty() {
        m.push_str(&format!("raise them with `sudo sysctl -w {}`", sysctls.join(" ")));
    }
    if short.iter().any(|s| s.setting.starts_with("ulimit -n")) {
        m.push_str(if sysctls.is_empty() { "raise them with" } else { " and" });
        m.push_str(" `ulimit -n <need>` in rrlab's shell");
    }
    if short.iter().any(|s| s.raise_to.is_none()) {
        m.push_str(
            "; a hard limit (ulimit -Hn) can only be raised by the administrator (limits.conf, systemd LimitNOFILE)",
        );
    } else {
        m.push_str(&format!(
            ", or let rrlab raise them: `rrlab up --raise-limits`, or {RAISE_LIMITS_ENV}=1 (rrlab bench and the e2e do)"
        ));
    }
    m
}

const NEIGH: &str = "/proc/sys/net/ipv4/neigh/default";

fn read_u64(p: &str) -> u64 {
    std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// This host's values.
pub fn host_limits() -> HostLimits {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
    }
    HostLimits {
        gc_thresh1: read_u64(&format!("{NEIGH}/gc_thresh1")),
        gc_thresh2: read_u64(&format!("{NEIGH}/gc_thresh2")),
        gc_thresh3: read_u64(&format!("{NEIGH}/gc_thresh3")),
        nofile_soft: r.rlim_cur,
        nofile_hard: r.rlim_max,
        file_max: read_u64("/proc/sys/fs/file-max"),
    }
}

/// Check the host before bring-up; raise what is short only with the operator's consent.
pub fn ensure_limits(size: &LabSize, progress: &dyn Fn(&str)) -> Result<(), LabError> {
    let short = check_limits(&host_limits(), size);
    if short.is_empty() {
        return Ok(());
    }
    let consent = RAISE_LIMITS.load(Ordering::Relaxed) || std::env::var(RAISE_LIMITS_ENV).is_ok_and(|v| v == "1");
    if !consent || short.iter().any(|s| s.raise_to.is_none()) {
        return Err(LabError::Other(limits_message(&short)));
    }
    for s in &short {
        let Some(v) = s.raise_to else { continue };
        let res = if let Some(k) = s.setting.strip_prefix("net.ipv4.neigh.default.") {
            std::fs::write(format!("{NEIGH}/{k}"), v.to_string()).map_err(|e| e.to_string())
        } else if s.setting == "fs.file-max" {
            std::fs::write("/proc/sys/fs/file-max", v.to_string()).map_err(|e| e.to_string())
        } else {
            let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: get/setrlimit on this process with a valid struct.
            let rc = unsafe {
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
                r.rlim_cur = v.min(r.rlim_max);
                libc::setrlimit(libc::RLIMIT_NOFILE, &r)
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error().to_string())
            }
        };
        res.map_err(|e| LabError::Other(format!("raising {} to {v}: {e}", s.setting)))?;
        progress(&format!("raised {} from {} to {v} (consent given)", s.setting, s.have));
    }
    Ok(())
}

pub fn up(topology_path: &Path, opts: &UpOptions, progress: &dyn Fn(&str)) -> Result<UpReport, LabError> {
    let t0 = Instant::now();
    let topo = topology::load(topology_path).map_err(|e| LabError::Topology(e.to_string()))?;
    let lab = topo.name.clone();
    if lab_dir(&lab).join("lab.json").exists() {
        return Err(LabError::AlreadyUp(lab));
    }
    if opts.runtime == RuntimeKind::Netns {
        runtime::netns::check_host_tools()?; // before anything of the lab exists
    }
    if opts.ssh {
        super::ssh::preflight(opts.runtime, &topo)?;
    }
    ensure_limits(&LabSize::of(&topo, opts.pods_per_node), progress)?;
    let rt = runtime_for(opts.runtime)?;
    std::fs::create_dir_all(lab_dir(&lab)).map_err(|e| LabError::Io(format!("{}: {e}", lab_dir(&lab).display())))?;
    let mut state = LabState {
        name: lab.clone(),
        topology: std::fs::canonicalize(topology_path).unwrap_or_else(|_| topology_path.to_path_buf()),
        runtime: opts.runtime,
        pods_per_node: opts.pods_per_node,
        version: 0,
        scripts: BTreeMap::new(),
        bird_stopped: Vec::new(),
    };
    state.save()?;
    let mut guard = Cleanup { lab: lab.clone(), armed: true };

    let nodes = runtime_nodes(&topo);
    progress(&format!("creating {} nodes ({} runtime)", nodes.len(), rt.kind()));
    let fabric = runtime::fabric_ns(&lab);
    runtime::cmd(&["ip", "netns", "add", &fabric])?;
    for n in topo.nodes.values().filter(|n| n.kind == NodeKind::Bridge) {
        runtime::in_ns(&fabric, &["ip", "link", "add", &n.name, "type", "bridge"])?;
        runtime::in_ns(&fabric, &["ip", "link", "set", &n.name, "up"])?;
    }
    interrupted()?;
    // The nodes are independent until they are wired: created together, at most FAN_OUT at a time.
    fan_out(&nodes, FAN_OUT, |name| -> Result<(), LabError> {
        let dir = node_dir(&lab, name);
        for sub in ["etc/calico/confd/config", "run/calico"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| LabError::Io(e.to_string()))?;
        }
        rt.create_node(&node_ref(&lab, name), &dir)?;
        Ok(())
    })
    .into_iter()
    .collect::<Result<(), LabError>>()?;
    progress("wiring links");
    let handles: BTreeMap<&String, String> = nodes
        .iter()
        .zip(fan_out(&nodes, FAN_OUT, |name| rt.netns_handle(&node_ref(&lab, name))))
        .map(|(n, h)| h.map(|h| (n, h)))
        .collect::<Result<_, _>>()?;
    let tag = short_hash(&lab);
    for (i, l) in topo.links.iter().enumerate() {
        interrupted()?;
        let end = |node: &str| -> Result<(String, Option<String>), LabError> {
            match topo.nodes.get(node).map(|n| n.kind) {
                Some(NodeKind::Bridge) => Ok((fabric.clone(), Some(node.to_string()))),
                _ => match handles.get(&node.to_string()) {
                    Some(h) => Ok((h.clone(), None)),
                    None => Ok((rt.netns_handle(&node_ref(&lab, node))?, None)),
                },
            }
        };
        let (ha, ba) = end(&l.a.node)?;
        let (hb, bb) = end(&l.b.node)?;
        runtime::veth(&format!("{tag}{i}"), &ha, &l.a.iface, &hb, &l.b.iface)?;
        let ends: [(Option<String>, &str); 2] = [(ba, l.a.iface.as_str()), (bb, l.b.iface.as_str())];
        for (br, iface) in ends {
            if let Some(br) = br {
                runtime::in_ns(&fabric, &["ip", "link", "set", iface, "master", br.as_str()])?;
            }
        }
    }
    progress("configuring nodes (topology exec)");
    // Each node's commands in order, the nodes concurrently.
    fan_out(&nodes, FAN_OUT, |name| -> Result<(), LabError> {
        for c in &topo.nodes[name].exec {
            runtime::exec_ok(rt.as_ref(), &node_ref(&lab, name), &["sh", "-c", c])?;
        }
        Ok(())
    })
    .into_iter()
    .collect::<Result<(), LabError>>()?;
    wan::install_counters(rt.as_ref(), &lab, &topo)?;
    let ssh_inventory = if opts.ssh {
        progress("starting sshd on every node (management network, keys per lab)");
        Some(super::ssh::setup(&lab, &topo, rt.as_ref(), &tag)?)
    } else {
        None
    };
    progress("rendering calico-node state");
    push(&mut state, &topo)?;
    let exe = runtime::rrlab_binary()?;
    let agents: Vec<&String> = topo.clusters.iter().flat_map(|c| c.nodes.iter().map(|n| &n.name)).collect();
    // Subscribed before the agents start, so no route change of the convergence is missed.
    let watched: Vec<(String, std::path::PathBuf)> =
        agents.iter().filter_map(|n| rt.netns_path(&node_ref(&lab, n)).ok().map(|p| (n.to_string(), p))).collect();
    let monitor = runtime::netlink::RouteMonitor::start(&watched);
    let agent_pids =
        fan_out(&agents, FAN_OUT, |name| rt.spawn_agent(&node_ref(&lab, name), &node_dir(&lab, name), &exe))
            .into_iter()
            .collect::<Result<Vec<u32>, RuntimeError>>()?;
    // Every agent applies its state (Felix's, the pods, BIRD's files checked) with BIRD held back; then all
    // BIRDs are released together, as the baseline starts its BIRDs back to back. Otherwise the first BIRDs
    // would meet peers not listening yet and back off (`error wait time 5,30`) while the last agents start.
    progress("waiting for every agent to apply its state");
    for c in &topo.clusters {
        interrupted()?;
        let _ = wait_applied(&state, c, opts.timeout);
    }
    // Built = nodes, links, agents and their state in place; convergence is timed from BIRDs' release.
    let built = t0.elapsed();
    let (started, t1) = (std::time::SystemTime::now(), Instant::now());
    for n in &agents {
        let f = node_dir(&lab, n).join(crate::agent::RELEASE_FILE);
        std::fs::write(&f, "").map_err(|e| LabError::Io(format!("{}: {e}", f.display())))?;
    }
    progress("waiting for BGP and routes to converge");
    let sessions = wait_converged(&state, &topo, rt.as_ref(), opts.timeout, progress)?;
    let pings = if opts.ping_matrix {
        progress("checking every pod reaches every pod");
        let fails = ping_matrix(&state, &topo, rt.as_ref())?;
        if !fails.1.is_empty() {
            return Err(LabError::Other(format!("pods cannot reach each other:\n  {}", fails.1.join("\n  "))));
        }
        fails.0
    } else {
        0
    };
    let converged = t1.elapsed();
    let routes_converged_on_node = monitor.latest().and_then(|t| t.duration_since(started).ok());
    let memory = (opts.runtime == RuntimeKind::Netns).then(|| Memory {
        birds_kib: agents.iter().filter_map(|n| read_status(&lab, n).and_then(|s| s.bird_pid)).map(rss_kib).sum(),
        agents_kib: agent_pids.iter().copied().map(rss_kib).sum(),
        rrlab_kib: rss_kib(std::process::id()),
    });
    drop(monitor);
    guard.armed = false;
    Ok(UpReport {
        lab,
        runtime: opts.runtime,
        nodes: nodes.len(),
        sessions,
        built,
        converged,
        routes_converged_on_node,
        pings,
        memory,
        ssh_inventory,
    })
}

/// Wait until every node of the cluster applied the lab's version; returns the nodes whose BIRD rejected
/// the new configuration, with BIRD's message.
pub fn wait_applied(state: &LabState, c: &topology::Cluster, timeout: Duration) -> Vec<(String, String)> {
    let start = Instant::now();
    loop {
        let statuses: Vec<(String, Option<Status>)> =
            c.nodes.iter().map(|n| (n.name.clone(), read_status(&state.name, &n.name))).collect();
        let done = statuses.iter().all(|(_, s)| s.as_ref().is_some_and(|s| s.applied_version >= state.version));
        if done || start.elapsed() > timeout {
            return statuses
                .into_iter()
                .filter_map(|(n, s)| s.and_then(|s| s.bird_config_error).map(|e| (n, e)))
                .collect();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn read_status(lab: &str, node: &str) -> Option<Status> {
    std::fs::read_to_string(node_dir(lab, node).join("status.json")).ok().and_then(|t| serde_json::from_str(&t).ok())
}

pub fn protocols(state: &LabState, rt: &dyn Runtime, node: &str) -> Result<Vec<Protocol>, String> {
    let sock = rt.node_path(&node_ref(&state.name, node), &node_dir(&state.name, node), "/var/run/calico/bird.ctl");
    let text = birdsock::query(&sock, "show protocols").map_err(|e| e.to_string())?;
    parse_protocols(&text).map_err(|e| e.to_string())
}

pub fn fib(state: &LabState, rt: &dyn Runtime, node: &str) -> Result<Vec<KernelRoute>, String> {
    // rtnetlink in the node's namespace, as `ip -j route show table main` prints it (no process per read).
    let ns = rt.netns_path(&node_ref(&state.name, node)).map_err(|e| e.to_string())?;
    runtime::netlink::read_main_table(&state.name, &ns).map_err(|e| format!("{node}: reading routes: {e}"))
}

/// How many nodes (or pings) are observed at once: the bring-up waits on every node, so it asks them together.
pub const FAN_OUT: usize = 16;

/// `f` over `items`, at most `limit` at a time on scoped threads; the results in the items' order.
pub fn fan_out<T: Sync, R: Send>(items: &[T], limit: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let workers = limit.max(1).min(items.len());
    let done: Vec<Vec<(usize, R)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut v = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        v.push((i, f(item)));
                    }
                    v
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    let mut out: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    for (i, r) in done.into_iter().flatten() {
        out[i] = Some(r);
    }
    out.into_iter().map(|r| r.expect("fan_out ran every item")).collect()
}

/// Every node's address and blocks, keyed by node name: what every other node of its cluster must route.
type Expected<'a> = BTreeMap<&'a str, (std::net::IpAddr, Vec<crate::observe::Prefix>)>;

fn expected_routes<'a>(topo: &'a Topology, dss: &BTreeMap<String, Datastore>) -> Expected<'a> {
    topo.clusters
        .iter()
        .filter_map(|c| dss.get(&c.name).map(|ds| (c, ds)))
        .flat_map(|(c, ds)| c.nodes.iter().map(move |n| (ds, n)))
        .filter_map(|(ds, n)| {
            let ip = std::net::IpAddr::V4(topo.node_ip(&n.name)?.addr());
            let blocks = ipam::node_blocks(ds, &n.name)
                .into_iter()
                .map(|b| crate::observe::Prefix { addr: std::net::IpAddr::V4(b.network()), len: b.prefix_len() })
                .collect();
            Some((n.name.as_str(), (ip, blocks)))
        })
        .collect()
}

/// One observation of a node: what is not converged yet (empty = converged) and its Established sessions.
#[derive(Debug, Default)]
pub struct NodeSeen {
    pub pending: Vec<String>,
    pub sessions: usize,
}

/// What is not converged yet on the nodes not in `skip`, observed concurrently. `thorough`: BIRD is asked
/// even where the FIB is still incomplete (for the full diagnosis); otherwise a node whose FIB lacks routes is
/// reported by its FIB alone, and its BIRD is left to converge.
pub fn pending(
    state: &LabState,
    topo: &Topology,
    rt: &dyn Runtime,
    expected: &Expected,
    skip: &std::collections::HashSet<String>,
    thorough: bool,
) -> Vec<(String, NodeSeen)> {
    let work: Vec<(&topology::Cluster, &topology::ClusterNode)> = topo
        .clusters
        .iter()
        .flat_map(|c| c.nodes.iter().map(move |n| (c, n)))
        .filter(|(_, n)| !skip.contains(&n.name))
        .collect();
    let seen = fan_out(&work, FAN_OUT, |(c, n)| node_pending(state, rt, c, n, expected, thorough));
    work.iter().map(|(_, n)| n.name.clone()).zip(seen).collect()
}

/// What is not converged yet on one node, and its Established BGP sessions. `expected`: every node's
/// address and blocks; the node must have every other node's blocks `via <its address> dev tunl0 onlink`.
fn node_pending(
    state: &LabState,
    rt: &dyn Runtime,
    c: &topology::Cluster,
    n: &topology::ClusterNode,
    expected: &Expected,
    thorough: bool,
) -> NodeSeen {
    let mut seen = NodeSeen::default();
    let agent_errors = match read_status(&state.name, &n.name) {
        Some(s) if s.applied_version >= state.version => s.errors,
        _ => {
            seen.pending.push(format!("{}: agent has not applied version {}", n.name, state.version));
            return seen;
        }
    };
    // The FIB first (one netlink dump, no BIRD involved): while it lacks routes, BIRD is not asked.
    match fib(state, rt, &n.name) {
        Ok(routes) => {
            // The node's tunnel routes as a set, compared by value.
            let tunnel: std::collections::HashSet<(crate::observe::Prefix, std::net::IpAddr)> = routes
                .iter()
                .filter(|r| r.dev.as_deref() == Some("tunl0") && r.is_onlink())
                .filter_map(|r| Some((r.dst, r.gateway?)))
                .collect();
            for other in c.nodes.iter().filter(|o| o.name != n.name) {
                let Some((ip, blocks)) = expected.get(other.name.as_str()) else { continue };
                for b in blocks {
                    if !tunnel.contains(&(*b, *ip)) {
                        seen.pending.push(format!("{}: no route {b} via {ip} dev tunl0 onlink", n.name));
                    }
                }
            }
        }
        Err(e) => seen.pending.push(format!("{}: cannot read FIB: {e}", n.name)),
    }
    if !seen.pending.is_empty() && !thorough {
        return seen;
    }
    match protocols(state, rt, &n.name) {
        Ok(ps) => {
            let bgp: Vec<&Protocol> = ps.iter().filter(|p| p.proto == "BGP").collect();
            seen.sessions = bgp.iter().filter(|p| p.info.contains("Established")).count();
            let down: Vec<String> = bgp
                .iter()
                .filter(|p| !p.info.contains("Established"))
                .map(|p| format!("{} {}", p.name, p.info))
                .collect();
            if !down.is_empty() {
                seen.pending.insert(0, format!("{}: BGP not established: {}", n.name, down.join(", ")));
            }
        }
        // BIRD not answering: what the agent met (e.g. BIRD could not be started) says why.
        Err(e) if !agent_errors.is_empty() => {
            seen.pending.insert(0, format!("{}: BIRD: {e}; the agent reports: {}", n.name, agent_errors.join("; ")))
        }
        Err(e) => seen.pending.insert(0, format!("{}: BIRD: {e}", n.name)),
    }
    seen
}

/// Which nodes a convergence round observes: those not yet seen converged, then all of them once to confirm.
/// Pure bookkeeping over the rounds' results (unit-tested); `Some(sessions)` when a confirming round over
/// every node found nothing pending.
#[derive(Debug)]
pub struct Rounds {
    /// How many nodes there are.
    all: usize,
    /// Nodes seen converged in an earlier round (skipped until every node is).
    pub done: std::collections::HashSet<String>,
}

impl Rounds {
    pub fn new(all: usize) -> Rounds {
        Rounds { all, done: Default::default() }
    }

    /// The next round observes every node (the first round, and the confirming one once every node is done).
    fn confirming(&self) -> bool {
        self.done.is_empty() || self.done.len() >= self.all
    }

    /// The nodes to skip in the next round.
    pub fn skip(&self) -> std::collections::HashSet<String> {
        if self.confirming() {
            Default::default()
        } else {
            self.done.clone()
        }
    }

    /// Take the results of the round [`Rounds::skip`] asked for. Returns the pending items, and the sessions
    /// when that round observed every node and found nothing pending.
    pub fn take(&mut self, seen: Vec<(String, NodeSeen)>) -> (Vec<String>, Option<usize>) {
        let confirming = self.confirming();
        let mut pending = Vec::new();
        let mut sessions = 0;
        for (node, s) in seen {
            if s.pending.is_empty() {
                self.done.insert(node);
            } else {
                self.done.remove(&node);
                pending.extend(s.pending);
            }
            sessions += s.sessions;
        }
        let converged = confirming && pending.is_empty();
        (pending, converged.then_some(sessions))
    }
}

pub fn wait_converged(
    state: &LabState,
    topo: &Topology,
    rt: &dyn Runtime,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<usize, LabError> {
    let base = state.topology.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut dss = BTreeMap::new();
    for c in &topo.clusters {
        dss.insert(
            c.name.clone(),
            cluster_datastore(topo, c, state.scripts.get(&c.name).map(Vec::as_slice).unwrap_or(&[]), &base)?,
        );
    }
    let expected = expected_routes(topo, &dss);
    let start = Instant::now();
    let mut rounds = Rounds::new(topo.clusters.iter().map(|c| c.nodes.len()).sum());
    loop {
        interrupted()?;
        let seen = pending(state, topo, rt, &expected, &rounds.skip(), false);
        let (p, converged) = rounds.take(seen);
        if let Some(sessions) = converged {
            return Ok(sessions);
        }
        if start.elapsed() > timeout {
            // The full diagnosis: every node, BIRD asked even where the FIB is incomplete.
            let seen = pending(state, topo, rt, &expected, &Default::default(), true);
            let sessions = seen.iter().map(|(_, s)| s.sessions).sum();
            let p: Vec<String> = seen.into_iter().flat_map(|(_, s)| s.pending).collect();
            if p.is_empty() {
                return Ok(sessions);
            }
            return Err(LabError::Other(format!("not converged after {:?}:\n  {}", timeout, p.join("\n  "))));
        }
        if let Some(first) = p.first() {
            progress(&format!("{} items pending, e.g. {first}", p.len()));
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// A ping of the matrix: (source node, source pod, destination pod).
type Pair<'a> = (&'a String, &'a PodSpec, &'a PodSpec);

/// Every pod pings every other pod once. Returns (pings, failures).
pub fn ping_matrix(state: &LabState, topo: &Topology, rt: &dyn Runtime) -> Result<(usize, Vec<String>), LabError> {
    let base = state.topology.parent().map(Path::to_path_buf).unwrap_or_default();
    // Pods of one cluster reach each other out of the box; across clusters they do not (procedure 3).
    let mut pods = Vec::new();
    for c in &topo.clusters {
        let ds = cluster_datastore(topo, c, state.scripts.get(&c.name).map(Vec::as_slice).unwrap_or(&[]), &base)?;
        for n in &c.nodes {
            for p in pods_for(&state.name, &n.name, &ds, state.pods_per_node) {
                pods.push((n.name.clone(), c.name.clone(), p));
            }
        }
    }
    // The pairs of each cluster (all of them, or a covering sample in large clusters); one exec per node pings
    // all of its pods' pairs (in waves of PING_WAVE), FAN_OUT nodes at a time: an exec costs far more than an echo.
    let mut pairs: Vec<Pair> = Vec::new();
    for c in &topo.clusters {
        let of: Vec<&(String, String, PodSpec)> = pods.iter().filter(|(_, cl, _)| cl == &c.name).collect();
        for (i, j) in ping_pairs(of.len(), state.pods_per_node as usize) {
            pairs.push((&of[i].0, &of[i].2, &of[j].2));
        }
    }
    let mut by_node: BTreeMap<&String, Vec<&Pair>> = BTreeMap::new();
    for p in &pairs {
        by_node.entry(p.0).or_default().push(p);
    }
    let by_node: Vec<(&String, Vec<&Pair>)> = by_node.into_iter().collect();
    let fails = fan_out(&by_node, FAN_OUT, |(node, ps)| {
        let batch: Vec<(String, String)> =
            ps.iter().map(|(_, src, dst)| (src.netns.clone(), dst.ip.to_string())).collect();
        let ok = ping_batch(rt, &state.name, node, &batch, 3);
        ps.iter()
            .zip(ok)
            .filter(|(_, ok)| !ok)
            .map(|((_, src, dst), _)| format!("{} ({}) -> {} ({})", src.name, src.ip, dst.name, dst.ip))
            .collect::<Vec<_>>()
    });
    Ok((pairs.len(), fails.into_iter().flatten().collect()))
}

/// Up to this many pods in a cluster, the bring-up pings every pod from every pod (64 pods: 4,032 pings).
pub const FULL_MATRIX_PODS: usize = 64;

/// Which (source, destination) pod indices of one cluster's `n` pods (in node order, `per_node` per node) the
/// bring-up pings: every pair up to [`FULL_MATRIX_PODS`]; beyond, a covering sample in which every pod sends to
/// and receives from three others, the next node's, and those a third and half the cluster on (in the
/// generator's node order, another site): every node's tunnel is used both ways, every route to every block is
/// already checked in each FIB.
pub fn ping_pairs(n: usize, per_node: usize) -> Vec<(usize, usize)> {
    if n <= FULL_MATRIX_PODS {
        return (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).collect();
    }
    let mut out = Vec::new();
    for i in 0..n {
        let mut seen = std::collections::BTreeSet::new();
        for off in [per_node.max(1), n / 3, n / 2] {
            let j = (i + off) % n;
            if j != i && seen.insert(j) {
                out.push((i, j));
            }
        }
    }
    out
}

/// At most this many echoes in flight in one node's batch.
pub const PING_WAVE: usize = 16;

/// The command that pings, from one node, every `(pod netns, destination)` of `pairs`: each pair one ICMP echo
/// (`ping -c 1 -W 1`, ping's status is 0 iff a reply came), retried up to `tries` times, the pairs concurrently in
/// waves of [`PING_WAVE`]; one line `ok <i>` or `fail <i>` per pair.
pub fn ping_batch_argv(pairs: &[(String, String)], tries: u32) -> Vec<String> {
    let script = format!(
        "i=0; while [ $# -ge 2 ]; do \
         (t=0; while [ $t -lt {tries} ]; do t=$((t+1)); \
         if ip netns exec \"$1\" ping -c 1 -W 1 \"$2\" >/dev/null 2>&1; then echo \"ok $i\"; exit 0; fi; done; \
         echo \"fail $i\") & \
         shift 2; i=$((i+1)); if [ $((i % {PING_WAVE})) -eq 0 ]; then wait; fi; done; wait"
    );
    let mut v = vec!["sh".to_string(), "-c".into(), script, "sh".into()];
    for (ns, dst) in pairs {
        v.push(ns.clone());
        v.push(dst.clone());
    }
    v
}

/// The verdicts of a batch's output, in the pairs' order; `None` where a pair has no line.
pub fn parse_ping_batch(out: &str, n: usize) -> Vec<Option<bool>> {
    let mut v = vec![None; n];
    for l in out.lines() {
        let (ok, i) = match l.split_once(' ') {
            Some(("ok", i)) => (true, i),
            Some(("fail", i)) => (false, i),
            _ => continue,
        };
        if let Some(slot) = i.trim().parse::<usize>().ok().and_then(|i| v.get_mut(i)) {
            *slot = Some(ok);
        }
    }
    v
}

/// Every pair of `pairs` pinged from `node` in one exec; a pair the batch gave no verdict for (the exec itself
/// failed) is pinged on its own.
pub fn ping_batch(rt: &dyn Runtime, lab: &str, node: &str, pairs: &[(String, String)], tries: u32) -> Vec<bool> {
    let argv = ping_batch_argv(pairs, tries);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let verdicts = match rt.exec(&node_ref(lab, node), &argv) {
        Ok(out) => parse_ping_batch(&String::from_utf8_lossy(&out.stdout), pairs.len()),
        Err(_) => vec![None; pairs.len()],
    };
    verdicts
        .into_iter()
        .zip(pairs)
        .map(|(v, (ns, dst))| v.unwrap_or_else(|| ping_once(rt, lab, node, ns, dst, tries)))
        .collect()
}

/// One ICMP echo from a pod, retried up to `tries` times.
pub fn ping_once(rt: &dyn Runtime, lab: &str, node: &str, pod_ns: &str, dst: &str, tries: u32) -> bool {
    for _ in 0..tries {
        if let Ok(out) =
            rt.exec(&node_ref(lab, node), &["ip", "netns", "exec", pod_ns, "ping", "-c", "1", "-W", "1", dst])
        {
            if let Ok(r) = parse_ping(&String::from_utf8_lossy(&out.stdout)) {
                if r.received > 0 {
                    return true;
                }
            }
        }
    }
    false
}

/// `calicoctl node status` on every node (of one cluster, or all).
pub fn node_status_all(state: &LabState, topo: &Topology, cluster: Option<&str>) -> Result<String, LabError> {
    let rt = runtime_for(state.runtime)?;
    let mut out = String::new();
    for c in topo.clusters.iter().filter(|c| cluster.is_none_or(|x| x == c.name)) {
        for n in &c.nodes {
            out.push_str(&format!("== {} ({})\n", n.name, c.name));
            match protocols(state, rt.as_ref(), &n.name) {
                Ok(ps) => out.push_str(&render_node_status(&ps, true)),
                Err(e) => out.push_str(&format!("Calico process is running.\n\nBIRD is not ready: {e}\n")),
            }
            out.push('\n');
        }
    }
    Ok(out)
}

/// Remove a lab: nodes, pods, processes, the fabric, state files. Safe to call on a half-built lab.
pub fn down(lab: &str) -> Result<Vec<String>, LabError> {
    // Our route readers hold sockets in the lab's namespaces: close them first.
    runtime::netlink::forget(lab);
    let mut removed = Vec::new();
    let state = LabState::load(lab).ok();
    // Docker nodes (by label), whatever the state says.
    if let Ok(d) = runtime::docker::Docker::new() {
        removed.extend(d.remove_lab(lab));
    }
    let prefix = format!("rrlab-{lab}-");
    // Agents first: on SIGTERM each stops its BIRD and its tunl0, then exits.
    let mut pids = Vec::new();
    if let Ok(dirs) = std::fs::read_dir(lab_dir(lab)) {
        for d in dirs.flatten() {
            if let Some(pid) =
                std::fs::read_to_string(d.path().join("agent.pid")).ok().and_then(|s| s.trim().parse::<i32>().ok())
            {
                // SAFETY: signalling a pid.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
                pids.push(pid);
            }
        }
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3)
        && pids.iter().any(|p| {
            Path::new(&format!("/proc/{p}/cmdline")).exists()
                && std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.contains("agent"))
        })
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    for ns in runtime::netns::list_netns().into_iter().filter(|n| n.starts_with(&prefix)) {
        runtime::netns::kill_ns_processes(&ns);
        if runtime::cmd(&["ip", "netns", "del", &ns]).is_ok() {
            removed.push(format!("netns {ns}"));
        }
    }
    if let Some(s) = state {
        removed.push(format!("lab {} ({} runtime)", s.name, s.runtime));
    }
    if lab_dir(lab).exists() {
        std::fs::remove_dir_all(lab_dir(lab)).map_err(|e| LabError::Io(format!("{}: {e}", lab_dir(lab).display())))?;
        removed.push(format!("state {}", lab_dir(lab).display()));
    }
    Ok(removed)
}

/// Remove every lab and any leftover of crashed runs (netns, containers, veths named by rrlab).
pub fn down_all() -> Result<Vec<String>, LabError> {
    let mut removed = Vec::new();
    for lab in list_labs() {
        removed.extend(down(&lab)?);
    }
    if let Ok(d) = runtime::docker::Docker::new() {
        removed.extend(d.remove_all());
    }
    for ns in runtime::netns::list_netns().into_iter().filter(|n| n.starts_with("rrlab-")) {
        runtime::netns::kill_ns_processes(&ns);
        if runtime::cmd(&["ip", "netns", "del", &ns]).is_ok() {
            removed.push(format!("netns {ns}"));
        }
    }
    if let Ok(out) = runtime::cmd(&["ip", "-o", "link", "show", "type", "veth"]) {
        for l in out.lines() {
            let name =
                l.split(':').nth(1).map(|s| s.trim().split('@').next().unwrap_or("").to_string()).unwrap_or_default();
            if name.starts_with("rr")
                && (name.ends_with('a') || name.ends_with('b'))
                && runtime::cmd(&["ip", "link", "del", &name]).is_ok()
            {
                removed.push(format!("veth {name}"));
            }
        }
    }
    if let Ok(d) = std::fs::read_dir(STATE_ROOT) {
        for e in d.flatten() {
            if std::fs::remove_dir_all(e.path()).is_ok() {
                removed.push(format!("state {}", e.path().display()));
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: HostLimits = HostLimits {
        gc_thresh1: 128,
        gc_thresh2: 512,
        gc_thresh3: 1024,
        nofile_soft: 1024,
        nofile_hard: 524288,
        file_max: 9_223_372_036_854_775_807,
    };

    fn size(per_site: &[usize], pods: u32) -> LabSize {
        LabSize {
            per_site: per_site.to_vec(),
            largest_cluster: per_site.iter().sum(),
            pods_per_node: pods,
            has_wan: true,
        }
    }

    #[test]
    fn small_labs_fit_the_kernel_defaults() {
        // hybrid-rr: 4 + 4 nodes, 2 pods each: 24 same-site + 16 WAN + 32 pod entries.
        assert_eq!(size(&[4, 4], 2).neighbours(), 72);
        assert_eq!(check_limits(&DEFAULTS, &size(&[4, 4], 2)), vec![]);
    }

    #[test]
    fn forty_nodes_need_the_neighbour_table_raised() {
        let s = size(&[20, 20], 2);
        assert_eq!(s.neighbours(), 2 * 20 * 19 + 80 + 160);
        let short = check_limits(&DEFAULTS, &s);
        let settings: Vec<&str> = short.iter().map(|x| x.setting).collect();
        assert_eq!(
            settings,
            [
                "net.ipv4.neigh.default.gc_thresh2",
                "net.ipv4.neigh.default.gc_thresh3",
                "net.ipv4.neigh.default.gc_thresh1"
            ]
        );
        assert_eq!((short[0].have, short[0].need, short[0].raise_to), (512, 1000, Some(32768)));
        assert_eq!((short[1].have, short[1].need, short[1].raise_to), (1024, 2000, Some(65536)));
        let m = limits_message(&short);
        assert!(m.contains("net.ipv4.neigh.default.gc_thresh3 is 1024, the lab needs at least 2000"), "{m}");
        assert!(m.contains("sudo sysctl -w net.ipv4.neigh.default.gc_thresh2=32768"), "{m}");
        assert!(m.contains("rrlab up --raise-limits"), "{m}");
        // Raised once (by anyone), the lab fits.
        let raised = HostLimits { gc_thresh1: 8192, gc_thresh2: 32768, gc_thresh3: 65536, ..DEFAULTS };
        assert_eq!(check_limits(&raised, &s), vec![]);
    }

    #[test]
    fn two_hundred_nodes_and_a_one_site_mesh() {
        let raised = HostLimits { gc_thresh1: 8192, gc_thresh2: 32768, gc_thresh3: 65536, ..DEFAULTS };
        assert_eq!(check_limits(&raised, &size(&[100, 100], 2)), vec![]);
        // 300 nodes on one LAN: 89,700 same-site entries need more than the old fixed values.
        let s = size(&[300], 2);
        let short = check_limits(&raised, &s);
        assert_eq!(short[0].setting, "net.ipv4.neigh.default.gc_thresh2");
        assert_eq!(short[0].raise_to, Some(2 * s.neighbours()));
        assert!(short.iter().any(|x| x.setting == "net.ipv4.neigh.default.gc_thresh3"));
    }

    #[test]
    fn open_files_soft_is_raised_hard_is_reported() {
        let host =
            HostLimits { gc_thresh1: 1 << 20, gc_thresh2: 1 << 20, gc_thresh3: 1 << 21, nofile_soft: 256, ..DEFAULTS };
        let short = check_limits(&host, &size(&[100, 100], 2));
        assert_eq!(short.len(), 1);
        assert_eq!(short[0].setting, "ulimit -n (RLIMIT_NOFILE)");
        assert_eq!((short[0].have, short[0].need, short[0].raise_to), (256, 456, Some(456)));
        let hard = HostLimits { nofile_hard: 300, ..host };
        let short = check_limits(&hard, &size(&[100, 100], 2));
        assert_eq!(short[0].setting, "ulimit -Hn (RLIMIT_NOFILE, hard)");
        assert_eq!((short[0].have, short[0].raise_to), (300, None));
        assert!(limits_message(&short).contains("can only be raised by the administrator"));
        let low = HostLimits { file_max: 10_000, ..host };
        let short = check_limits(&low, &size(&[100, 100], 2));
        assert!(short.iter().any(|s| s.setting == "fs.file-max" && s.need == 200 * 264));
    }

    #[test]
    fn fan_out_keeps_order_and_bounds_concurrency() {
        let items: Vec<u32> = (0..50).collect();
        let live = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let out = fan_out(&items, 4, |i| {
            let now = live.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            live.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, (0..50).map(|i| i * 2).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 4);
        assert!(peak.load(Ordering::SeqCst) > 1, "ran concurrently");
        assert_eq!(fan_out(&Vec::<u32>::new(), 16, |i| *i), Vec::<u32>::new());
    }

    #[test]
    fn small_clusters_ping_every_pair_large_ones_a_covering_sample() {
        assert_eq!(ping_pairs(3, 1), vec![(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]);
        assert_eq!(ping_pairs(64, 2).len(), 64 * 63);
        // 200 nodes x 2 pods: 3 pings per pod instead of 159,600.
        let p = ping_pairs(400, 2);
        assert_eq!(p.len(), 1200);
        for k in 0..400 {
            assert_eq!(p.iter().filter(|(i, _)| *i == k).count(), 3, "pod {k} sends 3");
            assert_eq!(p.iter().filter(|(_, j)| *j == k).count(), 3, "pod {k} receives 3");
        }
        assert!(p.iter().all(|(i, j)| i / 2 != j / 2), "never to a pod of the same node");
        // Half the pods (one site, in generator order) reach the other half and back.
        assert!(p.iter().any(|(i, j)| *i < 200 && *j >= 200) && p.iter().any(|(i, j)| *i >= 200 && *j < 200));
    }

    #[test]
    fn ping_batch_output_is_read_per_pair() {
        let v = parse_ping_batch("ok 0\nfail 2\nnoise\nok 9\nok x\n", 3);
        assert_eq!(v, vec![Some(true), None, Some(false)]);
    }

    /// The batch script itself, under `sh` with a fake `ip` that answers for some destinations only (the second
    /// destination answers on the third try).
    #[test]
    fn ping_batch_script_pings_each_pair_with_retries() {
        let dir = tempfile::tempdir().unwrap();
        let ip = dir.path().join("ip");
        let tries = dir.path().join("tries");
        std::fs::write(
            &ip,
            format!(
                "#!/bin/sh\n# ip netns exec NS ping -c 1 -W 1 DST\necho \"$3 $9\" >> {t}\ncase \"$9\" in\n  10.0.0.1) exit 0;;\n  10.0.0.2) [ $(grep -c ' 10.0.0.2$' {t}) -ge 3 ] && exit 0; exit 1;;\n  *) exit 1;;\nesac\n",
                t = tries.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&ip, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut pairs: Vec<(String, String)> =
            vec![("p1".into(), "10.0.0.1".into()), ("p1".into(), "10.0.0.2".into()), ("p2".into(), "10.0.0.3".into())];
        // More pairs than a wave.
        for i in 0..PING_WAVE {
            pairs.push(("p3".into(), format!("10.0.1.{i}")));
        }
        let argv = ping_batch_argv(&pairs, 3);
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
            .output()
            .unwrap();
        assert!(out.status.success());
        let v = parse_ping_batch(&String::from_utf8_lossy(&out.stdout), pairs.len());
        let mut want = vec![Some(true), Some(true), Some(false)];
        want.extend(std::iter::repeat_n(Some(false), PING_WAVE));
        assert_eq!(v, want);
        let log = std::fs::read_to_string(&tries).unwrap();
        assert_eq!(log.lines().filter(|l| *l == "p1 10.0.0.1").count(), 1, "{log}");
        assert_eq!(log.lines().filter(|l| *l == "p1 10.0.0.2").count(), 3, "{log}");
        assert_eq!(log.lines().filter(|l| *l == "p2 10.0.0.3").count(), 3, "{log}");
    }

    fn seen(node: &str, pending: &[&str], sessions: usize) -> (String, NodeSeen) {
        (node.into(), NodeSeen { pending: pending.iter().map(|p| p.to_string()).collect(), sessions })
    }

    #[test]
    fn rounds_skip_converged_nodes_then_confirm_over_all() {
        let mut r = Rounds::new(2);
        // Round 1 over both nodes: b still lacks a route.
        assert!(r.skip().is_empty());
        let (p, done) = r.take(vec![seen("a", &[], 1), seen("b", &["b: no route"], 0)]);
        assert_eq!((p, done), (vec!["b: no route".to_string()], None));
        // Round 2 skips a, and b is clean: not converged yet, since a was not looked at again.
        assert_eq!(r.skip(), ["a".to_string()].into_iter().collect());
        let (p, done) = r.take(vec![seen("b", &[], 1)]);
        assert_eq!((p.len(), done), (0, None));
        // Round 3 confirms over both; a lost its session meanwhile: a is looked at again, b is skipped.
        assert!(r.skip().is_empty());
        let (p, done) = r.take(vec![seen("a", &["a: BGP not established"], 0), seen("b", &[], 1)]);
        assert_eq!((p.len(), done), (1, None));
        assert_eq!(r.skip(), ["b".to_string()].into_iter().collect());
        let (_, done) = r.take(vec![seen("a", &[], 1)]);
        assert_eq!(done, None);
        // Only a confirming round with nothing pending converges, with every node's sessions.
        let (p, done) = r.take(vec![seen("a", &[], 1), seen("b", &[], 1)]);
        assert_eq!((p.len(), done), (0, Some(2)));
    }
}
