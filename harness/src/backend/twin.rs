//! The twin backend: a lab of calico-node twins on a node runtime (`docker` or `netns`, [`crate::runtime`]).
//! Bring-up and the lab's record are [`crate::lab`]'s; this is the lab as the step runner drives it.
//!
//! - commands: the node runtime's exec; a pod is a network namespace inside its node (`ip netns exec`);
//!   calico-node is the node itself (the agent and BIRD run there), the WAN is the topology's linux node;
//! - BIRD: its control socket, reached from the host at the node's state directory;
//! - operator commands: typed into the twin's datastore ([`crate::lab::run_commands`]), rendered and
//!   handed to every agent;
//! - probes: `rrlab probe send/recv` in the pods, a UDP stream at a fixed rate; loss per step from the
//!   sender's schedule and the receiver's log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Backend, BackendError, BackendKind, NodeAction, Target, UpOptions};
use crate::lab::converge::{self, read_status};
use crate::lab::{self, cluster_datastore, node_dir, node_ref, pods_for, LabState};
use crate::model::topology::Topology;
use crate::process::Output;
use crate::runbook::lab::{NodeInfo, PodInfo, ProbeStats};
use crate::runbook::model::ProbeSpec;
use crate::runner::probe;
use crate::runtime::{exec_ok, rrlab_binary, Runtime, RuntimeKind};
use crate::twin::commands::Outcome;

struct RunningProbe {
    name: String,
    /// Host paths of the sender's start file and the receiver's log.
    start: PathBuf,
    log: PathBuf,
}

/// A twin lab that is up.
pub struct TwinBackend {
    state: LabState,
    topo: Topology,
    rt: Box<dyn Runtime>,
    nodes: Vec<NodeInfo>,
    /// pod name → (node, netns)
    pods: BTreeMap<String, (String, String)>,
    probes: Vec<RunningProbe>,
    /// When the current step began (epoch ms), for probe windows.
    mark_ms: u64,
}

/// Bring a topology up as a twin lab (the registry's `up`).
pub fn up(topology: &Path, opts: &UpOptions, progress: &dyn Fn(&str)) -> Result<Box<dyn Backend>, BackendError> {
    let up = converge::up(
        topology,
        &converge::UpOptions {
            runtime: RuntimeKind::or_default(opts.runtime),
            pods_per_node: opts.pods_per_node,
            timeout: opts.timeout,
            ping_matrix: opts.ping_matrix,
            ssh: opts.ssh,
        },
        progress,
    )?;
    match TwinBackend::attach(&up.lab) {
        Ok(b) => Ok(Box::new(b)),
        Err(e) => {
            let _ = converge::down(&up.lab);
            Err(e)
        }
    }
}

impl TwinBackend {
    /// The twin lab of that name, as it is up.
    pub fn attach(lab_name: &str) -> Result<TwinBackend, BackendError> {
        let state = LabState::load(lab_name)?;
        let topo = state.topology()?;
        let rt = lab::runtime_for(state.runtime)?;
        let mut b = TwinBackend {
            state,
            topo,
            rt,
            nodes: Vec::new(),
            pods: BTreeMap::new(),
            probes: Vec::new(),
            mark_ms: probe::now_ms(),
        };
        b.refresh()?;
        Ok(b)
    }

    pub fn state(&self) -> &LabState {
        &self.state
    }

    pub fn runtime(&self) -> &dyn Runtime {
        self.rt.as_ref()
    }

    /// Nodes, labels and pods as the datastore has them now.
    fn refresh(&mut self) -> Result<(), BackendError> {
        let base = self.state.topology.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut nodes = Vec::new();
        let mut pods = BTreeMap::new();
        for c in &self.topo.clusters {
            let scripts = self.state.scripts.get(&c.name).map(Vec::as_slice).unwrap_or(&[]);
            let ds = cluster_datastore(&self.topo, c, scripts, &base)?;
            for n in &c.nodes {
                let ip = self
                    .topo
                    .node_ip(&n.name)
                    .ok_or_else(|| BackendError::Other(format!("node {} has no address", n.name)))?
                    .addr();
                let specs = pods_for(&self.state.name, &n.name, &ds, self.state.pods_per_node);
                for p in &specs {
                    pods.insert(p.name.clone(), (n.name.clone(), p.netns.clone()));
                }
                nodes.push(NodeInfo {
                    name: n.name.clone(),
                    cluster: c.name.clone(),
                    site: self.topo.site_of(&n.name),
                    ip,
                    labels: ds.node(&n.name).map(|r| r.labels.clone()).unwrap_or_default(),
                    pods: specs.into_iter().map(|p| PodInfo { name: p.name, node: n.name.clone(), ip: p.ip }).collect(),
                });
            }
        }
        self.nodes = nodes;
        self.pods = pods;
        Ok(())
    }

    fn node_host(&self, target: Target<'_>) -> Result<String, BackendError> {
        let known = |n: &str| self.topo.nodes.contains_key(n);
        match target {
            Target::Node(n) | Target::CalicoNode(n) if known(n) => Ok(n.to_string()),
            Target::Node(n) | Target::CalicoNode(n) => Err(self.unknown("node", n)),
            Target::Pod(p) => self.pods.get(p).map(|(n, _)| n.clone()).ok_or_else(|| self.unknown("pod", p)),
            Target::Wan => crate::wan::wan_node(&self.topo)
                .ok_or_else(|| BackendError::Usage("the topology has no WAN (linux) node".into())),
        }
    }

    fn unknown(&self, what: &'static str, name: &str) -> BackendError {
        let known: Vec<String> = match what {
            "pod" => self.pods.keys().cloned().collect(),
            _ => self.topo.nodes.keys().cloned().collect(),
        };
        BackendError::Unknown { lab: self.state.name.clone(), what, name: name.to_string(), known: known.join(", ") }
    }

    fn host_path(&self, node: &str, calico_path: &str) -> PathBuf {
        self.rt.node_path(&node_ref(&self.state.name, node), &node_dir(&self.state.name, node), calico_path)
    }

    /// Start a long-running process in a node, detached, with no stdio tied to us.
    fn detach(&self, node: &str, argv: &[&str]) -> Result<(), BackendError> {
        let line = format!("setsid -f {} </dev/null >/dev/null 2>&1", crate::process::shell_line(argv));
        exec_ok(self.rt.as_ref(), &node_ref(&self.state.name, node), &["sh", "-c", &line])
            .map_err(lab::LabError::from)?;
        Ok(())
    }

    /// Hand the new state to every node and wait until every agent applied it.
    fn push_and_wait(&mut self) -> Result<(), BackendError> {
        lab::push(&mut self.state, &self.topo)?;
        for c in &self.topo.clusters {
            converge::wait_applied(&self.state, c, Duration::from_secs(10));
        }
        Ok(())
    }

    /// A cable pulled or plugged back: the far end of `node`'s link on `iface` goes admin down/up, so `node`'s
    /// end loses carrier and keeps its addresses and routes. A far end on a site bridge is the bridge port (the
    /// lab's fabric namespace); a far end on a node loses its routes through it, which a plug-in puts back.
    fn cut_link(&self, node: &str, iface: &str, up: bool) -> Result<(), BackendError> {
        let Some(peer) = self.topo.peer_of(node, iface) else {
            return Err(BackendError::Usage(format!("node {node} has no link on {iface}")));
        };
        let state = if up { "up" } else { "down" };
        let bridge =
            self.topo.nodes.get(&peer.node).is_some_and(|n| n.kind == crate::model::topology::NodeKind::Bridge);
        if bridge {
            crate::runtime::in_ns(
                &crate::runtime::fabric_ns(&self.state.name),
                &["ip", "link", "set", &peer.iface, state],
            )
            .map_err(lab::LabError::from)?;
        } else {
            exec_ok(
                self.rt.as_ref(),
                &node_ref(&self.state.name, &peer.node),
                &["ip", "link", "set", &peer.iface, state],
            )
            .map_err(lab::LabError::from)?;
            if up {
                self.restore_routes(&peer.node)?;
            }
        }
        Ok(())
    }

    /// A machine's network configuration applied again: the static routes of its exec lines, which the
    /// kernel dropped with a downed link (`ip link set down` flushes the routes through it).
    fn restore_routes(&self, node: &str) -> Result<(), BackendError> {
        for (dst, via, dev) in self.topo.routes().remove(node).unwrap_or_default() {
            let (dst, via) = (dst.to_string(), via.to_string());
            let mut argv = vec!["ip", "route", "replace", &dst, "via", &via];
            if let Some(d) = dev.as_deref() {
                argv.extend(["dev", d]);
            }
            exec_ok(self.rt.as_ref(), &node_ref(&self.state.name, node), &argv).map_err(lab::LabError::from)?;
        }
        Ok(())
    }

    fn set_links(&self, node: &str, up: bool) -> Result<(), BackendError> {
        for (iface, _) in self.topo.links_of(node) {
            exec_ok(
                self.rt.as_ref(),
                &node_ref(&self.state.name, node),
                &["ip", "link", "set", iface, if up { "up" } else { "down" }],
            )
            .map_err(lab::LabError::from)?;
        }
        Ok(())
    }

    fn pod_for(&self, sel: &crate::runbook::model::PodSelector) -> Result<(PodInfo, String), BackendError> {
        use crate::runbook::model::PodSelector;
        let pod = match sel {
            PodSelector::Pod(p) => self.nodes.iter().flat_map(|n| n.pods.iter()).find(|x| &x.name == p),
            PodSelector::Node(n) => self.nodes.iter().find(|x| &x.name == n).and_then(|n| n.pods.first()),
        }
        .ok_or_else(|| BackendError::Usage(format!("probe endpoint {sel:?} matches no pod of the lab")))?;
        let ns = self.pods.get(&pod.name).map(|(_, ns)| ns.clone()).unwrap_or_default();
        Ok((pod.clone(), ns))
    }
}

impl Backend for TwinBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Twin
    }

    fn lab(&self) -> &str {
        &self.state.name
    }

    fn wan_rrlab_bin(&self) -> Result<String, BackendError> {
        self.rt
            .inside_bin()
            .map(|p| p.display().to_string())
            .map_err(|e| BackendError::exec(Target::Wan, e.to_string()))
    }

    fn topology(&self) -> &Topology {
        &self.topo
    }

    fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.clone()
    }

    fn exec(&self, target: Target<'_>, argv: &[&str]) -> Result<Output, BackendError> {
        let node = self.node_host(target)?;
        let n = node_ref(&self.state.name, &node);
        let out = match target {
            Target::Pod(p) => {
                let ns = &self.pods[p].1;
                let mut full = vec!["ip", "netns", "exec", ns.as_str()];
                full.extend_from_slice(argv);
                self.rt.exec(&n, &full)
            }
            _ => self.rt.exec(&n, argv),
        }
        .map_err(|e| BackendError::exec(target, e.to_string()))?;
        Ok(out.into())
    }

    fn bird(&self, node: &str, query: &str) -> Result<String, BackendError> {
        self.node_host(Target::CalicoNode(node))?;
        let sock = self.host_path(node, super::observe::BIRD_SOCKET);
        crate::agent::birdsock::query(&sock, query)
            .map_err(|e| BackendError::exec(Target::CalicoNode(node), format!("BIRD: {e}")))
    }

    fn read_file(&self, node: &str, path: &str) -> Result<String, BackendError> {
        self.node_host(Target::CalicoNode(node))?;
        let p = self.host_path(node, path);
        std::fs::read_to_string(&p)
            .map_err(|e| BackendError::exec(Target::CalicoNode(node), format!("{path} ({}): {e}", p.display())))
    }

    fn kernel_routes(&self, node: &str) -> Option<Result<Vec<crate::observe::KernelRoute>, BackendError>> {
        Some(self.node_host(Target::CalicoNode(node)).and_then(|_| {
            converge::fib(&self.state, self.rt.as_ref(), node)
                .map_err(|e| BackendError::exec(Target::CalicoNode(node), e))
        }))
    }

    fn bird_config_error(&self, node: &str) -> Option<String> {
        read_status(&self.state.name, node).and_then(|s| s.bird_config_error)
    }

    fn run_commands(&mut self, cluster: &str, label: &str, script: &str) -> Result<Vec<Outcome>, BackendError> {
        let out = lab::run_commands(&mut self.state, &self.topo, cluster, label, script)?;
        self.refresh()?;
        Ok(out)
    }

    fn node_action(&mut self, node: &str, action: NodeAction) -> Result<(), BackendError> {
        self.node_host(Target::Node(node))?;
        let n = node.to_string();
        match action {
            NodeAction::StopBird | NodeAction::StartBird => {
                self.state.bird_stopped.retain(|x| x != node);
                if action == NodeAction::StopBird {
                    self.state.bird_stopped.push(n);
                }
                self.push_and_wait()
            }
            // A stopped node: its links go down and its BIRD stops (a powered-off machine, as its peers see it).
            NodeAction::StopNode => {
                self.set_links(node, false)?;
                self.state.bird_stopped.retain(|x| x != node);
                self.state.bird_stopped.push(n);
                self.push_and_wait()
            }
            NodeAction::StartNode => {
                self.set_links(node, true)?;
                // A machine powered on configures its network again.
                self.restore_routes(node)?;
                self.state.bird_stopped.retain(|x| x != node);
                self.push_and_wait()
            }
            // A hung machine (a paused VM): nothing runs and nothing passes its links, but nothing is torn down
            // either, so its peers learn of it only from their hold timers.
            NodeAction::FreezeNode => {
                for (iface, _) in self.topo.links_of(node) {
                    self.cut_link(node, iface, false)?;
                }
                self.rt.freeze(&node_ref(&self.state.name, node), true).map_err(lab::LabError::from)?;
                Ok(())
            }
            NodeAction::ThawNode => {
                self.rt.freeze(&node_ref(&self.state.name, node), false).map_err(lab::LabError::from)?;
                for (iface, _) in self.topo.links_of(node) {
                    self.cut_link(node, iface, true)?;
                }
                Ok(())
            }
            // calico-node restarts: the agent (and its BIRD) go away and come back, BIRD with graceful restart.
            NodeAction::RestartCalicoNode => {
                let dir = node_dir(&self.state.name, node);
                match std::fs::read_to_string(dir.join("agent.pid")).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
                    // SAFETY: signalling the agent's pid.
                    Some(pid) => unsafe {
                        libc::kill(pid, libc::SIGTERM);
                    },
                    None => {
                        let _ = exec_ok(
                            self.rt.as_ref(),
                            &node_ref(&self.state.name, node),
                            &["pkill", "-TERM", "-f", "rrlab agent"],
                        );
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
                let _ = std::fs::remove_file(dir.join("status.json"));
                self.rt
                    .spawn_agent(&node_ref(&self.state.name, node), &dir, &rrlab_binary()?)
                    .map_err(lab::LabError::from)?;
                Ok(())
            }
        }
    }

    fn set_link(&mut self, node: &str, iface: &str, up: bool) -> Result<(), BackendError> {
        self.cut_link(node, iface, up)
    }

    fn start_probes(&mut self, specs: &[ProbeSpec]) -> Result<(), BackendError> {
        let bin = self.rt.inside_bin()?.display().to_string();
        let lab = self.state.name.clone();
        for (i, p) in specs.iter().enumerate() {
            let (src, src_ns) = self.pod_for(&p.from)?;
            let src_node = src.node;
            let (dst, dst_ns) = self.pod_for(&p.to)?;
            let port = 17000 + i as u16;
            let period_us = 1_000_000 / p.rate_pps.max(100);
            for (node, file) in [(&src_node, "start"), (&dst.node, "recv")] {
                let dir = node_dir(&lab, node).join("probes");
                std::fs::create_dir_all(&dir).map_err(|e| BackendError::Other(format!("{}: {e}", dir.display())))?;
                let _ = std::fs::remove_file(dir.join(format!("{}.{file}", p.name)));
            }
            let inside = |node: &str, file: String| {
                self.rt.inside_dir(&node_dir(&lab, node)).join("probes").join(file).display().to_string()
            };
            let recv_log = inside(&dst.node, format!("{}.recv", p.name));
            let port_s = port.to_string();
            self.detach(
                &dst.node,
                &["ip", "netns", "exec", &dst_ns, &bin, "probe", "recv", "--port", &port_s, "--log", &recv_log],
            )?;
            std::thread::sleep(Duration::from_millis(50));
            let start_file = inside(&src_node, format!("{}.start", p.name));
            let to = format!("{}:{port}", dst.ip);
            let period = period_us.to_string();
            self.detach(
                &src_node,
                &[
                    "ip",
                    "netns",
                    "exec",
                    &src_ns,
                    &bin,
                    "probe",
                    "send",
                    "--to",
                    &to,
                    "--period-us",
                    &period,
                    "--start-file",
                    &start_file,
                ],
            )?;
            self.probes.push(RunningProbe {
                name: p.name.clone(),
                start: node_dir(&lab, &src_node).join("probes").join(format!("{}.start", p.name)),
                log: node_dir(&lab, &dst.node).join("probes").join(format!("{}.recv", p.name)),
            });
        }
        // Wait for every probe to be sending.
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) && !self.probes.iter().all(|p| p.start.exists()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn mark_probes(&mut self) {
        self.mark_ms = probe::now_ms();
    }

    fn probe_stats(&self) -> BTreeMap<String, ProbeStats> {
        self.window_stats(false)
    }

    fn probe_stats_final(&self) -> BTreeMap<String, ProbeStats> {
        self.window_stats(true)
    }

    fn probe_timelines(&self) -> BTreeMap<String, probe::ProbeTimeline> {
        let now = probe::now_ms();
        self.probes
            .iter()
            .filter_map(|p| {
                let (start, period) = probe::read_start(&p.start)?;
                let t = probe::timeline_of(start, period, &probe::read_arrivals(&p.log), now, PROBE_GRACE);
                Some((p.name.clone(), t))
            })
            .collect()
    }

    fn route_monitor(&self) -> Option<crate::runtime::netlink::RouteMonitor> {
        let nodes: Vec<(String, std::path::PathBuf)> = self
            .topo
            .clusters
            .iter()
            .flat_map(|c| c.nodes.iter())
            .filter_map(|n| {
                let r = crate::runtime::NodeRef { lab: self.state.name.clone(), node: n.name.clone() };
                self.rt.netns_path(&r).ok().map(|p| (n.name.clone(), p))
            })
            .collect();
        Some(crate::runtime::netlink::RouteMonitor::start(&nodes))
    }

    fn teardown(&mut self) -> Result<Vec<String>, BackendError> {
        Ok(converge::down(&self.state.name)?)
    }
}

/// Probe packets sent in the last 50 ms are not judged yet: they may still be in flight.
const PROBE_GRACE: Duration = Duration::from_millis(50);

impl TwinBackend {
    /// Every probe's traffic since the step's mark. `catch_up` (the step's final judgement): a receiver starved
    /// of CPU (a busy 2-core host) logs late, so while packets of the window keep arriving, read again: a late
    /// log is not taken for loss, and a real outage (nothing more arriving) costs one re-read.
    fn window_stats(&self, catch_up: bool) -> BTreeMap<String, ProbeStats> {
        let grace = PROBE_GRACE;
        let now = probe::now_ms();
        self.probes
            .iter()
            .map(|p| {
                let st = match probe::read_start(&p.start) {
                    Some((start, period)) => {
                        let stats = || {
                            probe::window_stats_of(
                                start,
                                period,
                                &probe::read_arrivals(&p.log),
                                self.mark_ms,
                                now,
                                grace,
                            )
                        };
                        let mut st = stats();
                        for _ in 0..if catch_up { 10 } else { 0 } {
                            if st.lost() == 0 {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                            let again = stats();
                            let caught_up = again.received <= st.received;
                            st = again;
                            if caught_up {
                                break;
                            }
                        }
                        st
                    }
                    None => ProbeStats::default(),
                };
                (p.name.clone(), st)
            })
            .collect()
    }
}
