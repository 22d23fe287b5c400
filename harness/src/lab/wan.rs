//! The WAN emulator: the topology's `linux` node that routes between sites. Partitions and loss are iptables
//! rules (the `statistic` match) in its FORWARD path, rate is tbf, delay is netem where the kernel has it.
//! Counters of BGP (tcp/179) and IPIP (protocol 4) traffic crossing it are iptables rule counters.

use serde::Serialize;

use super::{node_ref, LabError};
use crate::model::topology::{NodeKind, Topology};
use crate::observe::parse_iptables_save;
use crate::runtime::{exec_ok, Runtime};

pub const CHAIN: &str = "rrlab-WAN";
pub const IMPAIR: &str = "rrlab-IMPAIR";

/// The WAN node: the topology's linux node (one per topology in rrlab's labs).
pub fn wan_node(topo: &Topology) -> Option<String> {
    topo.nodes.values().find(|n| n.kind == NodeKind::Linux).map(|n| n.name.clone())
}

fn ipt(rt: &dyn Runtime, lab: &str, node: &str, args: &[&str]) -> Result<String, LabError> {
    let mut argv = vec!["iptables"];
    argv.extend_from_slice(args);
    exec_ok(rt, &node_ref(lab, node), &argv).map_err(LabError::from)
}

/// Counting chain (first in FORWARD) and an impairment chain after it.
pub fn install_counters(rt: &dyn Runtime, lab: &str, topo: &Topology) -> Result<(), LabError> {
    let Some(w) = wan_node(topo) else { return Ok(()) };
    ipt(rt, lab, &w, &["-N", CHAIN])?;
    ipt(rt, lab, &w, &["-N", IMPAIR])?;
    for (proto, extra, comment) in
        [("tcp", "--dport", "bgp-to-179"), ("tcp", "--sport", "bgp-from-179"), ("4", "", "ipip")]
    {
        let mut args = vec!["-A", CHAIN, "-p", proto];
        if !extra.is_empty() {
            args.extend_from_slice(&[extra, "179"]);
        }
        args.extend_from_slice(&["-m", "comment", "--comment", comment]);
        ipt(rt, lab, &w, &args)?;
    }
    ipt(rt, lab, &w, &["-I", "FORWARD", "1", "-j", IMPAIR])?;
    ipt(rt, lab, &w, &["-I", "FORWARD", "1", "-j", CHAIN])?;
    Ok(())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WanCounters {
    pub bgp_packets: u64,
    pub bgp_bytes: u64,
    pub ipip_packets: u64,
    pub ipip_bytes: u64,
}

pub fn counters(rt: &dyn Runtime, lab: &str, topo: &Topology) -> Result<WanCounters, LabError> {
    let Some(w) = wan_node(topo) else { return Ok(WanCounters::default()) };
    let text = exec_ok(rt, &node_ref(lab, &w), &["iptables-save", "-c", "-t", "filter"])?;
    let t = parse_iptables_save(&text).map_err(|e| LabError::Other(e.to_string()))?;
    let mut c = WanCounters::default();
    for (comment, bgp) in [("bgp-to-179", true), ("bgp-from-179", true), ("ipip", false)] {
        if let Some(r) = t.rule_by_comment(CHAIN, comment) {
            let (p, b) = r.counters.map(|c| (c.packets, c.bytes)).unwrap_or((0, 0));
            if bgp {
                c.bgp_packets += p;
                c.bgp_bytes += b;
            } else {
                c.ipip_packets += p;
                c.ipip_bytes += b;
            }
        }
    }
    Ok(c)
}

/// Cut traffic between two sites' subnets (`both` or only `from → to`).
pub fn partition(
    rt: &dyn Runtime,
    lab: &str,
    topo: &Topology,
    from: &str,
    to: &str,
    both: bool,
) -> Result<(), LabError> {
    let w = wan_node(topo).ok_or_else(|| LabError::Other("the topology has no WAN (linux) node".into()))?;
    ipt(rt, lab, &w, &["-A", IMPAIR, "-s", from, "-d", to, "-m", "comment", "--comment", "partition", "-j", "DROP"])?;
    if both {
        ipt(
            rt,
            lab,
            &w,
            &["-A", IMPAIR, "-s", to, "-d", from, "-m", "comment", "--comment", "partition", "-j", "DROP"],
        )?;
    }
    Ok(())
}

/// Random loss of `percent` of forwarded packets.
pub fn loss(rt: &dyn Runtime, lab: &str, topo: &Topology, percent: f64) -> Result<(), LabError> {
    let w = wan_node(topo).ok_or_else(|| LabError::Other("the topology has no WAN (linux) node".into()))?;
    let p = format!("{:.4}", (percent / 100.0).clamp(0.0, 1.0));
    ipt(
        rt,
        lab,
        &w,
        &[
            "-A",
            IMPAIR,
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            &p,
            "-m",
            "comment",
            "--comment",
            "loss",
            "-j",
            "DROP",
        ],
    )?;
    Ok(())
}

/// Remove every partition and loss rule, and any qdisc rrlab set.
pub fn heal(rt: &dyn Runtime, lab: &str, topo: &Topology) -> Result<(), LabError> {
    let w = wan_node(topo).ok_or_else(|| LabError::Other("the topology has no WAN (linux) node".into()))?;
    ipt(rt, lab, &w, &["-F", IMPAIR])?;
    for l in topo.links.iter().filter(|l| l.a.node == w || l.b.node == w) {
        let iface = if l.a.node == w { &l.a.iface } else { &l.b.iface };
        let _ = exec_ok(rt, &node_ref(lab, &w), &["tc", "qdisc", "del", "dev", iface, "root"]);
    }
    Ok(())
}

fn wan_ifaces(topo: &Topology, w: &str) -> Vec<String> {
    topo.links
        .iter()
        .filter_map(|l| {
            if l.a.node == w {
                Some(l.a.iface.clone())
            } else if l.b.node == w {
                Some(l.b.iface.clone())
            } else {
                None
            }
        })
        .collect()
}

/// Limit the rate on every WAN interface (tbf).
pub fn rate(rt: &dyn Runtime, lab: &str, topo: &Topology, kbit: u32) -> Result<(), LabError> {
    let w = wan_node(topo).ok_or_else(|| LabError::Other("the topology has no WAN (linux) node".into()))?;
    for i in wan_ifaces(topo, &w) {
        exec_ok(
            rt,
            &node_ref(lab, &w),
            &[
                "tc",
                "qdisc",
                "replace",
                "dev",
                &i,
                "root",
                "tbf",
                "rate",
                &format!("{kbit}kbit"),
                "burst",
                "32kbit",
                "latency",
                "400ms",
            ],
        )?;
    }
    Ok(())
}

/// Add delay with netem; a clear error where the kernel has no netem.
pub fn delay(rt: &dyn Runtime, lab: &str, topo: &Topology, ms: u32) -> Result<(), LabError> {
    let w = wan_node(topo).ok_or_else(|| LabError::Other("the topology has no WAN (linux) node".into()))?;
    for i in wan_ifaces(topo, &w) {
        exec_ok(rt, &node_ref(lab, &w), &["tc", "qdisc", "replace", "dev", &i, "root", "netem", "delay", &format!("{ms}ms")]).map_err(|e| {
            LabError::Other(format!("WAN delay needs the kernel's netem qdisc, which this host lacks ({e}); loss, partitions and rate work without it"))
        })?;
    }
    Ok(())
}
