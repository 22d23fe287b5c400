//! `rrlab bench --baseline`: raw BIRD 1.6.8 in network namespaces, N nodes on one LAN in a full iBGP mesh with
//! Calico's template timers (`connect delay time 2; connect retry time 5; error wait time 5,30; graceful
//! restart`, `passive on` toward higher addresses as calico-node's mesh), each originating one /26 block
//! (a blackhole, as Calico's BIRD does) and exporting the others into the kernel's main table. No agent, no
//! Felix, no tunl0: what BIRD alone takes, for comparison with the twin at the same N in the same run.
//! Converged = every BIRD has its N-1 sessions Established and every kernel holds the N-1 other blocks,
//! observed as the twin is observed (BIRD's socket, rtnetlink), every node at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::converge::{fan_out, FAN_OUT};
use super::LabError;
use crate::observe::{parse_protocols, Prefix};
use crate::runtime::{self, netns};

/// The baseline's lab name for `n` nodes (its namespaces are `rrlab-<name>-…`, removed by `rrlab down --all`).
pub fn lab_name(n: usize) -> String {
    format!("base{n}")
}

/// Node `i`'s address (10.40.0.0/16, as the generated mesh uses).
pub fn node_ip(i: usize) -> String {
    format!("10.40.{}.{}", i / 250, i % 250 + 2)
}

/// Node `i`'s block: the `i`-th /26 of 172.24.0.0/14.
pub fn block(i: usize) -> Prefix {
    let base = u32::from(std::net::Ipv4Addr::new(172, 24, 0, 0)) + (i as u32) * 64;
    Prefix { addr: std::net::IpAddr::V4(base.into()), len: 26 }
}

/// Node `i`'s BIRD configuration among `n`: Calico's template timers, one session per other node.
pub fn bird_config(i: usize, n: usize) -> String {
    let me = node_ip(i);
    let mut s = format!(
        "router id {me};\n\
         filter export_blocks {{ if net ~ 172.24.0.0/14 then accept; reject; }}\n\
         protocol kernel {{\n  learn;\n  persist;\n  scan time 2;\n  import all;\n  export all;\n  graceful restart;\n  merge paths on;\n}}\n\
         protocol device {{\n  scan time 2;\n}}\n\
         protocol direct {{\n  interface \"eth1\";\n}}\n\
         protocol static {{\n  route {} blackhole;\n}}\n\
         template bgp bgp_template {{\n  description \"Connection to BGP peer\";\n  local as 64512;\n  gateway recursive;\n  add paths on;\n  graceful restart;\n  connect delay time 2;\n  connect retry time 5;\n  error wait time 5,30;\n}}\n",
        block(i)
    );
    for j in (0..n).filter(|&j| j != i) {
        let peer = node_ip(j);
        s.push_str(&format!(
            "protocol bgp Mesh_{} from bgp_template {{\n  neighbor {peer} as 64512;\n  source address {me};\n  import all;\n  export filter export_blocks;\n{}}}\n",
            peer.replace('.', "_"),
            // calico-node's mesh: exactly one side of each pair connects (string comparison, as confd's).
            if peer.as_str() > me.as_str() { "  passive on;\n" } else { "" }
        ));
    }
    s
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BaselineRow {
    pub nodes: usize,
    pub sessions: usize,
    pub built_s: f64,
    pub converged_s: f64,
    /// Until the last node's last BIRD route change, stamped on the node (`RouteMonitor`).
    pub converged_on_node_s: Option<f64>,
    /// Resident memory of all BIRDs at convergence (KiB).
    pub bird_rss_kib: u64,
}

fn dir(lab: &str) -> PathBuf {
    Path::new(super::STATE_ROOT).join(lab)
}

/// Remove the baseline lab of `n` nodes (whatever is left of it).
pub fn down(n: usize) {
    let lab = lab_name(n);
    runtime::netlink::forget(&lab);
    for ns in netns::list_netns().into_iter().filter(|x| x.starts_with(&format!("rrlab-{lab}-"))) {
        netns::kill_ns_processes(&ns);
        let _ = runtime::cmd(&["ip", "netns", "del", &ns]);
    }
    let _ = std::fs::remove_dir_all(dir(&lab));
}

/// Build, converge, measure and remove the baseline at `n` nodes.
pub fn run(n: usize, timeout: Duration, progress: &dyn Fn(&str)) -> Result<BaselineRow, LabError> {
    let lab = lab_name(n);
    crate::runtime::netns::check_host_tools()?;
    down(n);
    struct Down(usize, Vec<std::process::Child>);
    impl Drop for Down {
        fn drop(&mut self) {
            down(self.0);
            for c in &mut self.1 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut guard = Down(n, Vec::new());
    // The host limits the twin's lab of the same size needs (one LAN, no pods), checked the same way.
    let size = super::converge::LabSize { per_site: vec![n], largest_cluster: n, pods_per_node: 0, has_wan: false };
    super::converge::ensure_limits(&size, progress)?;
    let t0 = Instant::now();
    let fabric = format!("rrlab-{lab}-fabric");
    runtime::cmd(&["ip", "netns", "add", &fabric])?;
    runtime::in_ns(&fabric, &["ip", "link", "add", "lan", "type", "bridge"])?;
    runtime::in_ns(&fabric, &["ip", "link", "set", "lan", "up"])?;
    progress(&format!("baseline: {n} namespaces with BIRD 1.6.8, no agent"));
    let idx: Vec<usize> = (0..n).collect();
    let made: Vec<Result<(), LabError>> = fan_out(&idx, FAN_OUT, |&i| {
        let ns = netns::ns_name(&lab, &format!("n{i}"));
        runtime::cmd(&["ip", "netns", "add", &ns])?;
        runtime::in_ns(&ns, &["ip", "link", "set", "lo", "up"])?;
        runtime::veth(&format!("b{n}x{i}"), &ns, "eth1", &fabric, &format!("p{i}"))?;
        runtime::in_ns(&fabric, &["ip", "link", "set", &format!("p{i}"), "master", "lan"])?;
        runtime::in_ns(&ns, &["ip", "addr", "add", &format!("{}/16", node_ip(i)), "dev", "eth1"])?;
        let d = dir(&lab).join(format!("n{i}"));
        std::fs::create_dir_all(&d).map_err(|e| LabError::Io(format!("{}: {e}", d.display())))?;
        std::fs::write(d.join("bird.cfg"), bird_config(i, n)).map_err(|e| LabError::Io(e.to_string()))?;
        Ok(())
    });
    made.into_iter().collect::<Result<Vec<()>, LabError>>()?;
    let built = t0.elapsed();
    let watched: Vec<(String, PathBuf)> = (0..n)
        .map(|i| {
            let ns = netns::ns_name(&lab, &format!("n{i}"));
            (format!("n{i}"), Path::new("/var/run/netns").join(ns))
        })
        .collect();
    let monitor = crate::runtime::netlink::RouteMonitor::start(&watched);
    let (started, t1) = (std::time::SystemTime::now(), Instant::now());
    // Each BIRD started as the twin's agent starts it (calico-node's `bird -R -s … -d -c …`, log to a file).
    for i in 0..n {
        let ns = netns::ns_name(&lab, &format!("n{i}"));
        let d = dir(&lab).join(format!("n{i}"));
        let log = std::fs::File::create(d.join("bird.log")).map_err(|e| LabError::Io(e.to_string()))?;
        let log2 = log.try_clone().map_err(|e| LabError::Io(e.to_string()))?;
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &ns, "bird"])
            .args(crate::agent::bird_argv(&d.join("bird.ctl"), &d.join("bird.cfg")))
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| LabError::Other(format!("starting BIRD in {ns}: {e}")))?;
        guard.1.push(child);
    }
    progress("baseline: waiting for every session and every block route");
    let want: Vec<Prefix> = (0..n).map(block).collect();
    // Observed as the twin's bring-up observes (`converge::Rounds`): the FIB first and BIRD only where it is
    // complete, nodes seen converged skipped until every node is, then one confirming round over all.
    let mut rounds = super::converge::Rounds::new(n);
    loop {
        if crate::lab::converge::INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(LabError::Other("interrupted".into()));
        }
        let skip = rounds.skip();
        let todo: Vec<usize> = idx.iter().copied().filter(|i| !skip.contains(&format!("n{i}"))).collect();
        let seen: Vec<(String, super::converge::NodeSeen)> = fan_out(&todo, FAN_OUT, |&i| {
            let mut seen = super::converge::NodeSeen::default();
            let ns = Path::new("/var/run/netns").join(netns::ns_name(&lab, &format!("n{i}")));
            let routes = runtime::netlink::read_main_table(&lab, &ns).unwrap_or_default();
            let have: std::collections::HashSet<Prefix> =
                routes.iter().filter(|r| r.protocol.as_deref() == Some("bird")).map(|r| r.dst).collect();
            if !want.iter().enumerate().filter(|(j, _)| *j != i).all(|(_, b)| have.contains(b)) {
                seen.pending.push(format!("n{i}: routes missing"));
                return (format!("n{i}"), seen);
            }
            let d = dir(&lab).join(format!("n{i}"));
            seen.sessions = crate::agent::birdsock::query(&d.join("bird.ctl"), "show protocols")
                .ok()
                .and_then(|t| parse_protocols(&t).ok())
                .map(|ps| ps.iter().filter(|p| p.proto == "BGP" && p.info.contains("Established")).count())
                .unwrap_or(0);
            if seen.sessions + 1 != n {
                seen.pending.push(format!("n{i}: {} sessions Established", seen.sessions));
            }
            (format!("n{i}"), seen)
        });
        let (pending, converged) = rounds.take(seen);
        if let Some(sessions) = converged {
            let converged = t1.elapsed();
            let rss = guard.1.iter().map(|c| super::converge::rss_kib(c.id())).sum();
            return Ok(BaselineRow {
                nodes: n,
                sessions,
                built_s: built.as_secs_f64(),
                converged_s: converged.as_secs_f64(),
                converged_on_node_s: monitor
                    .latest()
                    .and_then(|t| t.duration_since(started).ok())
                    .map(|d| d.as_secs_f64()),
                bird_rss_kib: rss,
            });
        }
        if t1.elapsed() > timeout {
            return Err(LabError::Other(format!(
                "baseline of {n} nodes not converged after {timeout:?}: {} nodes pending, e.g. {}",
                n - rounds.done.len(),
                pending.first().map(String::as_str).unwrap_or("?")
            )));
        }
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_blocks_and_configs() {
        assert_eq!(node_ip(0), "10.40.0.2");
        assert_eq!(node_ip(251), "10.40.1.3");
        assert_eq!(block(0).to_string(), "172.24.0.0/26");
        assert_eq!(block(5).to_string(), "172.24.1.64/26");
        assert_eq!(block(199).to_string(), "172.24.49.192/26");
        let c = bird_config(1, 3);
        assert_eq!(c.matches("protocol bgp Mesh_").count(), 2);
        // 10.40.0.2 < 10.40.0.3 < 10.40.0.4: node 1 is passive toward 10.40.0.4 only.
        assert!(c.contains("protocol bgp Mesh_10_40_0_4 from bgp_template {\n  neighbor 10.40.0.4 as 64512;\n  source address 10.40.0.3;\n  import all;\n  export filter export_blocks;\n  passive on;\n}"));
        assert!(c.contains("protocol bgp Mesh_10_40_0_2 from bgp_template {\n  neighbor 10.40.0.2 as 64512;\n  source address 10.40.0.3;\n  import all;\n  export filter export_blocks;\n}"));
        assert!(c.contains("route 172.24.0.64/26 blackhole;"));
    }
}
