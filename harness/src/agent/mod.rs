//! `rrlab agent`: runs inside a twin node and plays the parts of calico-node that upstream BIRD lacks or that
//! Felix does. It reads `desired.json` from its state directory and converges the node on it:
//! - confd's write-and-check of the BIRD files (`bird -p -c` on a staged copy; a rejected config leaves the old
//!   one running and the error visible), then `configure` over BIRD's socket;
//! - Calico's BIRD fork kernel programming (`krt_tunnel`): routes BIRD selects are installed in the main table
//!   as `<block> via <BGP next hop> dev tunl0 proto bird onlink` (see `kernel_routes`);
//! - Felix: the `cali40all-hosts-net` ipset, the `cali-INPUT`/`cali-OUTPUT` IPIP rules, the tunl0 address;
//! - pods: network namespaces with Calico's veth plumbing.

pub mod birdsock;
pub mod protocol;
pub mod tunl;
pub mod wake;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipnet::{IpNet, Ipv4Net};

use crate::observe::{parse_routes, RouteKind};
use crate::twin::render::felix::{FelixState, ALL_HOSTS_IPSET};
use crate::twin::render::KernelProgramming;
use protocol::{write_atomic, Desired, PodSpec, Status};
use tunl::{Tunl, TunlConfig, TunnelRoutes};

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub node: String,
    /// Holds desired.json and status.json.
    pub state_dir: PathBuf,
    /// Where the BIRD files live (calico-node: /etc/calico/confd/config).
    pub config_dir: PathBuf,
    /// BIRD's control socket (calico-node: /var/run/calico/bird.ctl).
    pub socket: PathBuf,
    pub bird_bin: String,
}

/// In a node's state directory: BIRD may start (written by `rrlab up` for all nodes at once).
pub const RELEASE_FILE: &str = "bird-released";

/// BIRD's log in the agent's state directory (calico-node: /var/log/calico/bird/current).
pub const BIRD_LOG: &str = "bird.log";

/// BIRD's arguments as calico-node's runit service gives them (`-R`: graceful-restart recovery on start;
/// `-d`: foreground, log to stderr).
pub fn bird_argv(socket: &Path, config: &Path) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = vec!["-R".into(), "-s".into()];
    v.push(socket.as_os_str().to_owned());
    v.push("-d".into());
    v.push("-c".into());
    v.push(config.as_os_str().to_owned());
    v
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Whether BIRD's reply to `configure` says it rejected the new file (an error reply, 8xxx/9xxx), or cannot
/// be read as a configure reply at all.
fn configure_rejected(reply: &str) -> bool {
    use crate::observe::ConfigureOutcome;
    match crate::observe::parse_configure(reply) {
        Ok(c) => matches!(c.outcome, ConfigureOutcome::Error(_) | ConfigureOutcome::Other { code: Some(8000..), .. }),
        Err(_) => true,
    }
}

/// Run a command; Err(stderr) when it fails.
pub fn sh(argv: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let out = crate::process::run(argv, stdin).map_err(|e| e.to_string())?;
    crate::process::checked(argv, out).map_err(|e| e.to_string())
}

/// Calico's BIRD fork programs selected routes into the kernel: blackholes for this node's blocks, IPIP pool
/// routes through tunl0 with the BGP next hop as an on-link gateway, others via the resolved gateway.
/// Returns `ip route` lines (without the verb) keyed by prefix, and the tunnel table (prefix → next hop).
pub fn kernel_routes(
    show_route_all: &str,
    kernel: &KernelProgramming,
) -> (BTreeMap<String, String>, Vec<(Ipv4Net, Ipv4Addr)>) {
    let mut out = BTreeMap::new();
    let mut tunnel = Vec::new();
    let Ok(routes) = parse_routes(show_route_all) else { return (out, tunnel) };
    for r in routes.iter().filter(|r| r.primary) {
        let IpAddr::V4(addr) = r.prefix.addr else { continue };
        let Ok(net) = Ipv4Net::new(addr, r.prefix.len) else { continue };
        // Routes BIRD learned from the kernel or from interfaces are never exported back.
        if r.protocol.starts_with("kernel") || r.protocol.starts_with("direct") || r.protocol.starts_with("device") {
            continue;
        }
        let bgp_nh = match r.attrs.next_hop {
            Some(IpAddr::V4(nh)) => Some(nh),
            _ => None,
        };
        let Some(decision) = kernel.route_for(&IpNet::V4(net), bgp_nh) else { continue };
        let line = match (r.kind, decision) {
            (RouteKind::Blackhole, _) => format!("blackhole {net} proto bird"),
            (RouteKind::Unreachable, _) | (RouteKind::Prohibited, _) => continue,
            (_, Some(dev)) => match bgp_nh {
                Some(nh) => {
                    tunnel.push((net, nh));
                    format!("{net} via {nh} dev {dev} proto bird onlink")
                }
                None => continue,
            },
            (_, None) => match (r.via, &r.dev) {
                (Some(gw), Some(dev)) => format!("{net} via {gw} dev {dev} proto bird"),
                (Some(gw), None) => format!("{net} via {gw} proto bird"),
                (None, Some(dev)) => format!("{net} dev {dev} proto bird"),
                (None, None) => continue,
            },
        };
        out.insert(net.to_string(), line);
    }
    (out, tunnel)
}

/// `ip -batch` input that turns `installed` into `desired`.
pub fn route_batch(installed: &BTreeMap<String, String>, desired: &BTreeMap<String, String>) -> String {
    let mut b = String::new();
    for (p, line) in installed {
        if !desired.contains_key(p) {
            let kind = if line.starts_with("blackhole") { "blackhole " } else { "" };
            b.push_str(&format!("route del {kind}{p} proto bird\n"));
        }
    }
    for (p, line) in desired {
        if installed.get(p) != Some(line) {
            b.push_str(&format!("route replace {line}\n"));
        }
    }
    b
}

/// Felix's iptables rules as `iptables-restore --noflush` input.
pub fn iptables_restore(felix: &FelixState) -> String {
    let mut s = String::from("*filter\n:cali-INPUT - [0:0]\n:cali-OUTPUT - [0:0]\n-F cali-INPUT\n-F cali-OUTPUT\n");
    for r in &felix.rules {
        let args: Vec<String> =
            r.args.iter().map(|a| if a.contains(' ') { format!("\"{a}\"") } else { a.clone() }).collect();
        // Felix puts the comment first (iptables-save prints it after the protocol match).
        let (proto, rest) = args.split_at(2.min(args.len()));
        s.push_str(&format!(
            "-A {} {} -m comment --comment \"{}\" {}\n",
            r.chain,
            proto.join(" "),
            r.comment,
            rest.join(" ")
        ));
    }
    s.push_str("COMMIT\n");
    s
}

/// Felix's ipset as `ipset restore` input (build a temporary set, swap it in).
pub fn ipset_restore(members: &[String]) -> String {
    let tmp = "cali40all-hosts-tmp";
    let mut s = format!(
        "create {ALL_HOSTS_IPSET} hash:net family inet -exist\ncreate {tmp} hash:net family inet -exist\nflush {tmp}\n"
    );
    for m in members {
        s.push_str(&format!("add {tmp} {m}\n"));
    }
    s.push_str(&format!("swap {tmp} {ALL_HOSTS_IPSET}\ndestroy {tmp}\n"));
    s
}

/// Calico's host-side veth name: `cali` + the first 11 hex digits of sha1("<namespace>.<pod>").
pub fn veth_name(namespace: &str, pod: &str) -> String {
    use sha1::{Digest, Sha1};
    let h = Sha1::digest(format!("{namespace}.{pod}").as_bytes());
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("cali{}", &hex[..11])
}

fn ensure_pod(p: &PodSpec) -> Result<(), String> {
    if Path::new("/var/run/netns").join(&p.netns).exists() {
        return Ok(());
    }
    sh(&["ip", "netns", "add", &p.netns], None)?;
    let v = &p.veth;
    let ip = p.ip.to_string();
    let batch = format!(
        "link add {v} type veth peer name eth0 netns {ns}\nlink set {v} address ee:ee:ee:ee:ee:ee\nlink set {v} up\nroute replace {ip} dev {v} scope link\n",
        ns = p.netns
    );
    sh(&["ip", "-batch", "-"], Some(&batch))?;
    for (k, val) in [("proxy_arp", "1"), ("forwarding", "1"), ("route_localnet", "1")] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{v}/{k}"), val);
    }
    let _ = std::fs::write(format!("/proc/sys/net/ipv4/neigh/{v}/proxy_delay"), "0");
    let pod_batch = format!(
        "link set lo up\naddr add {ip}/32 dev eth0\nlink set eth0 up\nroute add 169.254.1.1 dev eth0 scope link\nroute add default via 169.254.1.1 dev eth0\n"
    );
    sh(&["ip", "-n", &p.netns, "-batch", "-"], Some(&pod_batch))?;
    Ok(())
}

struct Agent {
    cfg: AgentConfig,
    bird: Option<Child>,
    applied: Option<Desired>,
    installed: BTreeMap<String, String>,
    tunnel_routes: Arc<RwLock<TunnelRoutes>>,
    tunl: Option<Tunl>,
    status: Status,
    desired_mtime: Option<SystemTime>,
    underlay: BTreeMap<String, String>,
    last_underlay: Option<Instant>,
    /// Route events of this node: BIRD's kernel table changing wakes the reconciliation at once.
    events: Option<crate::runtime::netlink::RouteEvents>,
    /// tunl0's routes: block → BGP next hop (the outer destination).
    tunnel: BTreeMap<Ipv4Net, Ipv4Addr>,
    /// The status changed since it was last written.
    status_dirty: bool,
    /// Prefixes of BIRD's kernel table changed and not yet programmed; or everything (events were lost).
    pending: std::collections::BTreeSet<crate::observe::Prefix>,
    pending_full: bool,
    /// This node's routes through rtnetlink (the underlay mirror reads the main table without a process).
    routes: Option<crate::runtime::netlink::RouteReader>,
    last_reconcile: Option<Instant>,
    /// One connection to BIRD's socket, kept open between queries (reopened after an error or a restart).
    sock: Option<birdsock::BirdSock>,
    /// Link name → index, for programming routes over netlink.
    ifindex: std::collections::HashMap<String, u32>,
}

impl Agent {
    /// A command on the kept connection to BIRD; one reconnect when it was closed (BIRD restarted).
    fn bird_query(&mut self, cmd: &str) -> Result<String, birdsock::BirdSockError> {
        self.status.bird_queries += 1;
        if let Some(s) = self.sock.as_mut() {
            match s.command(cmd) {
                Ok(r) => return Ok(r),
                Err(_) => self.sock = None,
            }
        }
        let mut s = birdsock::BirdSock::connect(&self.cfg.socket)?;
        let r = s.command(cmd)?;
        self.sock = Some(s);
        Ok(r)
    }

    fn read_desired(&mut self) -> Option<Desired> {
        let p = self.cfg.state_dir.join("desired.json");
        let mtime = std::fs::metadata(&p).and_then(|m| m.modified()).ok()?;
        if self.desired_mtime == Some(mtime) {
            return None;
        }
        let text = std::fs::read_to_string(&p).ok()?;
        match serde_json::from_str::<Desired>(&text) {
            Ok(d) => {
                self.desired_mtime = Some(mtime);
                Some(d)
            }
            Err(e) => {
                self.status.errors.push(format!("desired.json: {e}"));
                None
            }
        }
    }

    fn bird_alive(&mut self) -> bool {
        match &mut self.bird {
            Some(c) => match c.try_wait() {
                Ok(None) => true,
                _ => {
                    self.bird = None;
                    false
                }
            },
            None => false,
        }
    }

    fn start_bird(&mut self) -> Result<(), String> {
        let cfg = self.cfg.config_dir.join("bird.cfg");
        let _ = std::fs::remove_file(&self.cfg.socket);
        self.sock = None;
        // calico-node's runit service: `bird -R -s /var/run/calico/bird.ctl -d -c …/bird.cfg`, its stderr to
        // svlogd. `-d` keeps BIRD in the foreground logging to stderr (here appended to bird.log in the state
        // directory); without it BIRD logs to syslog, which with no /dev/log falls back to the console.
        let log_path = self.cfg.state_dir.join(BIRD_LOG);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("starting BIRD: {}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| format!("starting BIRD: {e}"))?;
        let child = Command::new(&self.cfg.bird_bin)
            .args(bird_argv(&self.cfg.socket, &cfg))
            .current_dir(&self.cfg.config_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("starting BIRD ({}): {e}", self.cfg.bird_bin))?;
        self.status.bird_pid = Some(child.id());
        self.bird = Some(child);
        Ok(())
    }

    /// `rrlab up` releases the BIRDs of a new lab together, once every agent has applied its state
    /// ([`RELEASE_FILE`]); until then BIRD is configured and checked but not started. A node whose file exists
    /// (every later start, restarts included) starts BIRD at once.
    fn released(&self) -> bool {
        self.cfg.state_dir.join(RELEASE_FILE).exists()
    }

    /// BIRD held back at bring-up and now released: start it.
    fn start_released_bird(&mut self) {
        let wanted = self.applied.as_ref().is_some_and(|d| d.bird_running);
        if wanted && self.bird.is_none() && self.status.bird_pid.is_none() && self.released() {
            if let Err(e) = self.start_bird() {
                self.status.errors.push(e);
            }
            self.status_dirty = true;
        }
    }

    fn stop_bird(&mut self) {
        self.sock = None;
        if let Some(mut c) = self.bird.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.status.bird_pid = None;
    }

    /// confd: stage, check with `bird -p -c`, replace, reload. A rejected config keeps the old one.
    fn apply_bird_files(&mut self, d: &Desired) {
        let dir = &self.cfg.config_dir;
        let same =
            d.bird_files.iter().all(|(n, t)| std::fs::read_to_string(dir.join(n)).ok().as_deref() == Some(t.as_str()));
        if same {
            return;
        }
        let staging = dir.join(".staging");
        let _ = std::fs::create_dir_all(&staging);
        for (n, t) in &d.bird_files {
            let _ = std::fs::write(staging.join(n), t);
        }
        let first = !dir.join("bird.cfg").exists();
        let check = Command::new(&self.cfg.bird_bin)
            .arg("-p")
            .arg("-c")
            .arg(staging.join("bird.cfg"))
            .current_dir(&staging)
            .output();
        let err = match check {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Some(format!("running bird -p: {e}")),
        };
        if let Some(e) = &err {
            self.status.bird_config_error = Some(e.clone());
            if !first {
                return; // calico-node: "Error from checkcmd …", previous bird.cfg kept
            }
        } else {
            self.status.bird_config_error = None;
        }
        for (n, t) in &d.bird_files {
            let _ = write_atomic(&dir.join(n), t);
        }
        if self.bird_alive() {
            match self.bird_query("configure") {
                // BIRD rejected the file: it keeps the old configuration, as calico-node's does.
                Ok(reply) if configure_rejected(&reply) => {
                    self.status.bird_config_error = Some(reply.trim().to_string());
                }
                Ok(_) => {}
                Err(e) => self.status.errors.push(format!("configure: {e}")),
            }
        }
    }

    fn apply_felix(&mut self, d: &Desired) {
        let prev = self.applied.as_ref().map(|a| &a.felix);
        if prev == Some(&d.felix) {
            return;
        }
        let f = &d.felix;
        if f.ipip_enabled {
            if let Err(e) = sh(&["ipset", "restore"], Some(&ipset_restore(&f.all_hosts_net))) {
                self.status.errors.push(e);
            }
        }
        if prev.map(|p| &p.rules) != Some(&f.rules) {
            if let Err(e) = sh(&["iptables-restore", "--noflush"], Some(&iptables_restore(f))) {
                self.status.errors.push(e);
            }
            for (hook, chain) in [("INPUT", "cali-INPUT"), ("OUTPUT", "cali-OUTPUT")] {
                if sh(&["iptables", "-C", hook, "-j", chain], None).is_err() {
                    if let Err(e) = sh(&["iptables", "-I", hook, "1", "-j", chain], None) {
                        self.status.errors.push(e);
                    }
                }
            }
        }
        if !f.ipip_enabled {
            let _ = sh(&["ipset", "destroy", ALL_HOSTS_IPSET], None);
        }
        if let Some(addr) = f.tunl0_address {
            if let Err(e) = sh(&["ip", "addr", "replace", &format!("{addr}/32"), "dev", "tunl0"], None) {
                self.status.errors.push(e);
            }
        }
    }

    fn ensure_tunnel(&mut self, d: &Desired) {
        if self.tunl.is_some() || !d.felix.ipip_enabled {
            return;
        }
        match Tunl::start(TunlConfig {
            name: "tunl0".into(),
            mtu: d.felix.tunl0_mtu.unwrap_or(1480),
            address: d.felix.tunl0_address,
            routes: self.tunnel_routes.clone(),
            // A calico-node restart leaves tunl0 and its routes: the kernel's ipip device outlives calico-node.
            persist: true,
        }) {
            Ok(t) => {
                self.status.tunnel = Some("tunl0 (userspace IPIP over TUN: this kernel has no ipip module)".into());
                self.tunl = Some(t);
            }
            Err(e) => self.status.errors.push(format!("tunl0: {e}")),
        }
    }

    fn apply(&mut self, d: Desired) {
        self.status.errors.clear();
        // calico-node runs BIRD (fed by confd) and Felix side by side: BGP does not wait for the dataplane.
        self.apply_bird_files(&d);
        if d.bird_running && !self.bird_alive() {
            if self.released() {
                if let Err(e) = self.start_bird() {
                    self.status.errors.push(e);
                }
            }
        } else if !d.bird_running && self.bird_alive() {
            self.stop_bird();
        }
        self.ensure_tunnel(&d);
        self.apply_felix(&d);
        for p in &d.pods {
            if let Err(e) = ensure_pod(p) {
                self.status.errors.push(format!("pod {}: {e}", p.name));
            }
        }
        self.status.applied_version = d.version;
        self.applied = Some(d);
    }

    /// BIRD's kernel protocol learns the routes of its kernel table; the twin's BIRD uses a private table, so
    /// the node's own routes with a gateway (the underlay, e.g. the route to the other site) are mirrored into
    /// it. Calico's BIRD learns them from main; BGP next hops resolve recursively through them.
    fn mirror_underlay(&mut self) {
        // On route events: when a main-table route not BIRD's changed, and every 10 s; else every 2 s.
        let changed = self.events.as_mut().map(|e| e.take_underlay_changed());
        let every = if changed.is_some() { Duration::from_secs(10) } else { Duration::from_secs(2) };
        if changed != Some(true) && self.last_underlay.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last_underlay = Some(Instant::now());
        let read = self.routes.as_mut().map(|r| r.main_table());
        let routes = match read {
            Some(Ok(v)) => v,
            _ => {
                let Ok(text) = sh(&["ip", "-j", "route", "show", "table", "main"], None) else { return };
                let Ok(v) = crate::observe::parse_ip_route_json(&text) else { return };
                v
            }
        };
        let table = crate::twin::render::TWIN_KERNEL_TABLE;
        let mut desired = BTreeMap::new();
        for r in routes {
            if r.is_bird() || r.gateway.is_none() || r.dst.to_string().starts_with("169.254.") {
                continue;
            }
            let (Some(gw), Some(dev)) = (r.gateway, r.dev.as_deref()) else { continue };
            desired.insert(r.dst.to_string(), format!("{} via {gw} dev {dev} proto static table {table}", r.dst));
        }
        if desired == self.underlay {
            return;
        }
        let mut b = String::new();
        for p in self.underlay.keys().filter(|p| !desired.contains_key(*p)) {
            b.push_str(&format!("route del {p} table {table} proto static\n"));
        }
        for (p, line) in &desired {
            if self.underlay.get(p) != Some(line) {
                b.push_str(&format!("route replace {line}\n"));
            }
        }
        if let Err(e) = sh(&["ip", "-force", "-batch", "-"], Some(&b)) {
            self.status.errors.push(e);
        }
        self.underlay = desired;
    }

    fn reconcile_routes(&mut self) {
        let Some(kernel) = self.applied.as_ref().map(|d| d.kernel.clone()) else { return };
        if !self.bird_alive() {
            return; // `persist`: routes stay while BIRD is down
        }
        self.status.full_dumps += 1;
        let Ok(text) = self.bird_query("show route all") else { return };
        let (desired, tunnel) = kernel_routes(&text, &kernel);
        self.tunnel = tunnel.into_iter().collect();
        self.program(desired);
    }

    /// Only the prefixes BIRD's kernel table just changed: `show route <prefix> all` each.
    fn reconcile_prefixes(&mut self, prefixes: &std::collections::BTreeSet<crate::observe::Prefix>) {
        let Some(kernel) = self.applied.as_ref().map(|d| d.kernel.clone()) else { return };
        if !self.bird_alive() {
            return;
        }
        let mut desired = self.installed.clone();
        for p in prefixes {
            let IpAddr::V4(a) = p.addr else { continue };
            let Ok(net) = Ipv4Net::new(a, p.len) else { continue };
            let Ok(text) = self.bird_query(&format!("show route {net} all")) else { return };
            let (sub, tunnel) = kernel_routes(&text, &kernel);
            desired.remove(&net.to_string());
            self.tunnel.remove(&net);
            desired.extend(sub.into_iter().filter(|(k, _)| *k == net.to_string()));
            self.tunnel.extend(tunnel.into_iter().filter(|(n, _)| *n == net));
        }
        self.program(desired);
    }

    /// Turn the installed routes into `desired` over netlink, one request each; `self.installed` follows each
    /// success, so that on an error the caller's `ip -batch` does only what is left.
    fn program_netlink(&mut self, desired: &BTreeMap<String, String>) -> Result<(), String> {
        use crate::runtime::netlink::{BirdRoute, RouteOp};
        let Some(nl) = self.routes.as_mut() else { return Err("no netlink socket".into()) };
        let mut ops: Vec<(String, Option<String>, RouteOp)> = Vec::new();
        for (p, line) in &self.installed {
            if !desired.contains_key(p) {
                let route = BirdRoute::parse(line).ok_or_else(|| format!("cannot program {line:?}"))?;
                ops.push((p.clone(), None, RouteOp { delete: true, route }));
            }
        }
        for (p, line) in desired {
            if self.installed.get(p) != Some(line) {
                let route = BirdRoute::parse(line).ok_or_else(|| format!("cannot program {line:?}"))?;
                ops.push((p.clone(), Some(line.clone()), RouteOp { delete: false, route }));
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        // The links' indexes, read once and again only when a request fails (a device recreated, e.g. tunl0).
        if self.ifindex.is_empty() {
            self.ifindex = nl.ifindex().map_err(|e| format!("reading links: {e}"))?;
        }
        for (p, line, op) in ops {
            let mut r = nl.program(&op, &self.ifindex);
            if r.is_err() && !(op.delete && matches!(&r, Err(e) if e.raw_os_error() == Some(libc::ESRCH))) {
                self.ifindex = nl.ifindex().map_err(|e| format!("reading links: {e}"))?;
                r = nl.program(&op, &self.ifindex);
            }
            match r {
                // Deleting what is already gone is done.
                Err(e) if op.delete && e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => return Err(format!("programming {}: {e}", line.as_deref().unwrap_or(&p))),
                Ok(()) => {}
            }
            match line {
                Some(l) => self.installed.insert(p, l),
                None => self.installed.remove(&p),
            };
        }
        Ok(())
    }

    /// Install `desired` (prefix → `ip route` line) over what is installed, and hand tunl0 its routes.
    fn program(&mut self, desired: BTreeMap<String, String>) {
        if let Ok(mut t) = self.tunnel_routes.write() {
            t.set(self.tunnel.iter().map(|(n, g)| (*n, *g)).collect());
        }
        let batch = route_batch(&self.installed, &desired);
        if !batch.is_empty() {
            // Through the agent's netlink socket (no process per burst of BIRD's exports); `ip -batch` for the
            // rest when a line is not one of the agent's forms or the kernel refuses one.
            if let Err(e) = self.program_netlink(&desired) {
                let rest = route_batch(&self.installed, &desired);
                if let Err(e2) = sh(&["ip", "-force", "-batch", "-"], Some(&rest)) {
                    self.status.errors.push(format!("{e}; then {e2}"));
                }
            }
            self.installed = desired;
            self.status.routes = self.installed.values().cloned().collect();
            self.status_dirty = true;
        }
    }
}

/// Run until `stop` is set.
pub fn run(cfg: AgentConfig, stop: Arc<AtomicBool>) -> Result<(), String> {
    std::fs::create_dir_all(&cfg.config_dir).map_err(|e| format!("{}: {e}", cfg.config_dir.display()))?;
    if let Some(p) = cfg.socket.parent() {
        std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    for (k, v) in [("ip_forward", "1"), ("conf/all/rp_filter", "0"), ("conf/default/rp_filter", "0")] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv4/{k}"), v);
    }
    // Proxy ARP answers for the pods' gateway 169.254.1.1 only if the node has a route to it through another
    // device; calico-node's nodes have a default route, twin nodes on sealed networks do not.
    let _ = sh(&["ip", "route", "replace", "169.254.1.1/32", "dev", "lo"], None);
    let mut a = Agent {
        cfg,
        bird: None,
        applied: None,
        installed: BTreeMap::new(),
        tunnel_routes: Arc::new(RwLock::new(TunnelRoutes::new())),
        tunl: None,
        status: Status::default(),
        desired_mtime: None,
        underlay: BTreeMap::new(),
        last_underlay: None,
        events: crate::runtime::netlink::RouteEvents::subscribe().ok(),
        tunnel: BTreeMap::new(),
        status_dirty: true,
        pending: Default::default(),
        pending_full: false,
        routes: crate::runtime::netlink::RouteReader::here().ok(),
        last_reconcile: None,
        sock: None,
        ifindex: Default::default(),
    };
    let status_path = a.cfg.state_dir.join("status.json");
    let watch = wake::DirWatch::new(&a.cfg.state_dir).ok();
    let mut last_status = Instant::now() - Duration::from_secs(10);
    let mut written_errors = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut now = false;
        if let Some(d) = a.read_desired() {
            a.apply(d);
            last_status = Instant::now() - Duration::from_secs(10);
            now = true;
        }
        a.start_released_bird();
        // Calico's BIRD fork programs routes as BIRD exports them: here, the prefixes BIRD's kernel table just
        // changed (route events: BIRD 1.6's kernel protocol deletes and re-adds a route on every change of the
        // best route, a new BGP next hop behind the same gateway included), everything when events were lost,
        // and everything every 30 s as a safety net; everything every 150 ms where route events cannot be had.
        let table = crate::twin::render::TWIN_KERNEL_TABLE;
        match a.events.as_mut().map(|e| e.changed(table)) {
            Some(Some(c)) => a.pending.extend(c),
            Some(None) => a.pending_full = true,
            None => {}
        }
        a.mirror_underlay();
        let full_every = if a.events.is_some() { Duration::from_secs(30) } else { Duration::from_millis(150) };
        let last = a.last_reconcile.map(|t| t.elapsed());
        let burst = (a.pending_full || a.pending.len() > 32) && last.is_none_or(|t| t >= Duration::from_millis(100));
        if now || burst || last.is_none_or(|t| t >= full_every) {
            a.reconcile_routes();
            a.pending.clear();
            a.pending_full = false;
            a.last_reconcile = Some(Instant::now());
        } else if !a.pending.is_empty() && a.pending.len() <= 32 {
            let p = std::mem::take(&mut a.pending);
            a.reconcile_prefixes(&p);
        }
        // The status is written when it changed, and at least every 10 s (its heartbeat).
        if a.status_dirty || a.status.errors.len() != written_errors || last_status.elapsed() >= Duration::from_secs(10)
        {
            written_errors = a.status.errors.len();
            a.status.heartbeat_ms = now_ms();
            if let Ok(t) = serde_json::to_string_pretty(&a.status) {
                let _ = write_atomic(&status_path, &t);
            }
            last_status = Instant::now();
            a.status_dirty = false;
        }
        // Sleep until the state directory or the routes change: 50 ms while prefixes wait (a burst of BIRD's
        // exports is programmed at most every 100 ms), else up to 500 ms (the stop flag's latency).
        let busy = a.pending_full || !a.pending.is_empty();
        let mut fds = Vec::with_capacity(2);
        if let Some(w) = &watch {
            fds.push(std::os::fd::AsRawFd::as_raw_fd(w));
        }
        if let Some(e) = &a.events {
            fds.push(std::os::fd::AsRawFd::as_raw_fd(e));
        }
        if fds.len() == 2 && !busy {
            wake::wait(&fds, Duration::from_millis(500));
            if let Some(w) = &watch {
                w.drain();
            }
        } else {
            // Without inotify or route events the agent polls, as it must.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    a.stop_bird();
    // calico-node exiting leaves the kernel's tunl0, its address and its routes (BIRD's kernel protocol is
    // `persist`): the next agent attaches to the device.
    if let Some(t) = a.tunl.take() {
        t.detach();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::render::kernel::{KernelDecision, PoolDecision};

    #[test]
    fn configure_replies_bird_accepts_and_rejects() {
        // BIRD 1.6.8's socket replies (observe/testdata/raw-b-configure*.txt, one reply each).
        assert!(!configure_rejected("0002-Reading configuration from /tmp/rrobs/b.cfg\n0003 Reconfigured\n"));
        assert!(!configure_rejected(
            "0002-Reading configuration from /tmp/rrobs/a.cfg\n0004 Reconfiguration in progress\n"
        ));
        assert!(configure_rejected(
            "0002-Reading configuration from /tmp/rrobs/b-noas.cfg\n8002 /tmp/rrobs/b-noas.cfg:77:1 Remote AS number must be set\n"
        ));
        assert!(configure_rejected("9001 Syntax error\n"));
        assert!(configure_rejected("garbage"));
    }

    #[test]
    fn calico_veth_names() {
        let v = veth_name("default", "nginx");
        assert_eq!(v.len(), 15);
        assert!(v.starts_with("cali"));
    }

    #[test]
    fn kernel_routes_follow_the_fork() {
        // Captured from BIRD 1.6.8's socket on mini-worker2 of the `mini` test lab (rrlab up, netns runtime).
        let show = include_str!("testdata-show-route-all.txt");
        let kp = KernelProgramming {
            reject_cidrs: vec![],
            pools: vec![PoolDecision {
                pool: "172.20.0.0/16".parse().unwrap(),
                decision: KernelDecision::Tunnel { device: "tunl0".into() },
            }],
        };
        let (routes, tunnel) = kernel_routes(show, &kp);
        assert_eq!(
            routes.get("172.20.0.0/26").map(String::as_str),
            Some("172.20.0.0/26 via 10.30.1.2 dev tunl0 proto bird onlink")
        );
        assert_eq!(
            routes.get("172.20.0.64/26").map(String::as_str),
            Some("172.20.0.64/26 via 10.30.1.3 dev tunl0 proto bird onlink")
        );
        assert_eq!(routes.get("172.20.0.128/26").map(String::as_str), Some("blackhole 172.20.0.128/26 proto bird"));
        assert_eq!(routes.len(), 3, "kernel- and interface-learned routes are not programmed: {routes:?}");
        assert_eq!(tunnel.len(), 2);
        assert!(tunnel.contains(&("172.20.0.0/26".parse().unwrap(), Ipv4Addr::new(10, 30, 1, 2))));
        let batch = route_batch(
            &BTreeMap::from([("10.9.0.0/24".to_string(), "10.9.0.0/24 via 1.2.3.4 proto bird".to_string())]),
            &routes,
        );
        assert!(batch.contains("route del 10.9.0.0/24 proto bird\n"));
        assert!(batch.contains("route replace 172.20.0.0/26 via 10.30.1.2 dev tunl0 proto bird onlink\n"));
    }
}
