//! The WAN emulator, once for every backend: the topology's `linux` node routes between the sites, and rrlab
//! changes only its own chains and qdiscs there. Partitions and random loss are iptables rules (the
//! `statistic` match) in the `rrlab-IMPAIR` chain of FORWARD; rate is tbf and delay is netem (where the
//! kernel has it), both as root qdiscs with rrlab's handle, so that `heal` removes exactly what rrlab set.
//! BGP (tcp/179) and IPIP (protocol 4) crossing the WAN are counted by the `rrlab-WAN` chain's rule counters.
//!
//! Commands are data ([`Cmd`]); [`apply`] runs them on the WAN through the [`Backend`] seam (the twin's WAN
//! node; kind's WAN container, with the host's tools in its network namespace).

use serde::Serialize;

use crate::backend::{Backend, BackendError, Target};
use crate::model::topology::{NodeKind, Topology};
use crate::observe::{parse_iptables_save, IpTables};

/// Counting chain, first in FORWARD.
pub const COUNT_CHAIN: &str = "rrlab-WAN";
/// Impairment chain (partitions, loss), after the counters.
pub const IMPAIR_CHAIN: &str = "rrlab-IMPAIR";
/// The handle of every qdisc rrlab puts on a WAN interface (`tc … root handle 5252:`).
pub const QDISC_HANDLE: &str = "5252:";

/// One command on the WAN router.
pub type Cmd = Vec<String>;

fn cmd(args: &[&str]) -> Cmd {
    args.iter().map(|s| s.to_string()).collect()
}

/// The WAN node: the topology's linux node (one per topology in rrlab's labs).
pub fn wan_node(topo: &Topology) -> Option<String> {
    topo.nodes.values().find(|n| n.kind == NodeKind::Linux).map(|n| n.name.clone())
}

/// The WAN node's interfaces (one per site), in link order.
pub fn interfaces(topo: &Topology) -> Vec<String> {
    let Some(w) = wan_node(topo) else { return Vec::new() };
    topo.links_of(&w).into_iter().map(|(i, _)| i.to_string()).collect()
}

/// The counting and impairment chains, hooked first into FORWARD.
pub fn setup() -> Vec<Cmd> {
    let mut out = vec![cmd(&["iptables", "-N", COUNT_CHAIN]), cmd(&["iptables", "-N", IMPAIR_CHAIN])];
    for (proto, extra, comment) in
        [("tcp", "--dport", "bgp-to-179"), ("tcp", "--sport", "bgp-from-179"), ("4", "", "ipip")]
    {
        let mut args = vec!["iptables", "-A", COUNT_CHAIN, "-p", proto];
        if !extra.is_empty() {
            args.extend_from_slice(&[extra, "179"]);
        }
        args.extend_from_slice(&["-m", "comment", "--comment", comment]);
        out.push(cmd(&args));
    }
    out.push(cmd(&["iptables", "-I", "FORWARD", "1", "-j", IMPAIR_CHAIN]));
    out.push(cmd(&["iptables", "-I", "FORWARD", "1", "-j", COUNT_CHAIN]));
    out
}

/// Drop `from → to` (subnets or addresses), and `to → from` when `both`.
pub fn partition(from: &str, to: &str, both: bool) -> Vec<Cmd> {
    let mut pairs = vec![(from, to)];
    if both {
        pairs.push((to, from));
    }
    pairs
        .into_iter()
        .map(|(s, d)| {
            cmd(&[
                "iptables",
                "-A",
                IMPAIR_CHAIN,
                "-s",
                s,
                "-d",
                d,
                "-m",
                "comment",
                "--comment",
                "partition",
                "-j",
                "DROP",
            ])
        })
        .collect()
}

/// Drop `percent` of forwarded packets at random.
pub fn loss(percent: f64) -> Vec<Cmd> {
    let p = format!("{:.4}", (percent / 100.0).clamp(0.0, 1.0));
    vec![cmd(&[
        "iptables",
        "-A",
        IMPAIR_CHAIN,
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
    ])]
}

/// Limit the rate on every WAN interface (tbf, rrlab's handle).
pub fn rate(topo: &Topology, kbit: u32) -> Vec<Cmd> {
    let r = format!("{kbit}kbit");
    interfaces(topo)
        .iter()
        .map(|i| {
            cmd(&[
                "tc",
                "qdisc",
                "replace",
                "dev",
                i,
                "root",
                "handle",
                QDISC_HANDLE,
                "tbf",
                "rate",
                &r,
                "burst",
                "32kbit",
                "latency",
                "400ms",
            ])
        })
        .collect()
}

/// Delay every WAN interface (netem, rrlab's handle).
pub fn delay(topo: &Topology, ms: u32) -> Vec<Cmd> {
    let d = format!("{ms}ms");
    interfaces(topo)
        .iter()
        .map(|i| cmd(&["tc", "qdisc", "replace", "dev", i, "root", "handle", QDISC_HANDLE, "netem", "delay", &d]))
        .collect()
}

/// Reading each WAN interface's qdiscs, for [`heal`].
pub fn qdisc_show(topo: &Topology) -> Vec<(String, Cmd)> {
    interfaces(topo).into_iter().map(|i| (i.clone(), cmd(&["tc", "qdisc", "show", "dev", &i]))).collect()
}

/// Whether `tc qdisc show dev X` lists a root qdisc with rrlab's handle (`qdisc tbf 5252: root …`).
pub fn has_rrlab_root_qdisc(tc_show: &str) -> bool {
    tc_show.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.len() >= 4 && w[0] == "qdisc" && w[2] == QDISC_HANDLE && w[3] == "root"
    })
}

/// Remove every partition and loss rule, and the qdiscs rrlab set (only those: `shown` is each interface's
/// `tc qdisc show` output; an interface without rrlab's qdisc is left alone).
pub fn heal(shown: &[(String, String)]) -> Vec<Cmd> {
    let mut out = vec![cmd(&["iptables", "-F", IMPAIR_CHAIN])];
    for (iface, text) in shown {
        if has_rrlab_root_qdisc(text) {
            out.push(cmd(&["tc", "qdisc", "del", "dev", iface, "root", "handle", QDISC_HANDLE]));
        }
    }
    out
}

/// Reading the counters: `iptables-save -c -t filter`, then [`counters_from`].
pub fn counters_cmd() -> Cmd {
    cmd(&["iptables-save", "-c", "-t", "filter"])
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WanCounters {
    pub bgp_packets: u64,
    pub bgp_bytes: u64,
    pub ipip_packets: u64,
    pub ipip_bytes: u64,
}

/// The counters of the `rrlab-WAN` chain's rules.
pub fn counters_from(t: &IpTables) -> WanCounters {
    let mut c = WanCounters::default();
    for (comment, bgp) in [("bgp-to-179", true), ("bgp-from-179", true), ("ipip", false)] {
        if let Some(r) = t.rule_by_comment(COUNT_CHAIN, comment) {
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
    c
}

/// A WAN action as the operator says it.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Subnets or addresses.
    Partition {
        from: String,
        to: String,
        both: bool,
    },
    Loss {
        percent: f64,
    },
    Rate {
        kbit: u32,
    },
    Delay {
        ms: u32,
    },
    Heal,
}

fn no_wan() -> BackendError {
    BackendError::Usage("the topology has no WAN (linux) node".into())
}

/// Run commands on the WAN, in order; the first failure stops them.
pub fn apply(b: &dyn Backend, cmds: &[Cmd]) -> Result<(), BackendError> {
    for c in cmds {
        let argv: Vec<&str> = c.iter().map(String::as_str).collect();
        let out = b.exec(Target::Wan, &argv)?;
        crate::process::checked(&argv, out)
            .map_err(|source| BackendError::Process { target: Target::Wan.to_string(), source })?;
    }
    Ok(())
}

/// Perform a WAN action on a lab.
pub fn act(b: &dyn Backend, a: &Action) -> Result<(), BackendError> {
    let topo = b.topology();
    wan_node(topo).ok_or_else(no_wan)?;
    match a {
        Action::Partition { from, to, both } => apply(b, &partition(from, to, *both)),
        Action::Loss { percent } => apply(b, &loss(*percent)),
        Action::Rate { kbit } => apply(b, &rate(topo, *kbit)),
        Action::Delay { ms } => apply(b, &delay(topo, *ms)).map_err(|e| {
            BackendError::Other(format!(
                "WAN delay needs the kernel's netem qdisc ({e}); loss, partitions and rate work without it"
            ))
        }),
        Action::Heal => {
            let mut shown = Vec::new();
            for (iface, c) in qdisc_show(topo) {
                let argv: Vec<&str> = c.iter().map(String::as_str).collect();
                let out = b.exec(Target::Wan, &argv)?;
                shown.push((iface, out.stdout));
            }
            apply(b, &heal(&shown))
        }
    }
}

/// The WAN's counters (zero when the topology has no WAN).
pub fn counters(b: &dyn Backend) -> Result<WanCounters, BackendError> {
    if wan_node(b.topology()).is_none() {
        return Ok(WanCounters::default());
    }
    let c = counters_cmd();
    let argv: Vec<&str> = c.iter().map(String::as_str).collect();
    let out = b.exec(Target::Wan, &argv)?;
    let text = crate::process::checked(&argv, out)
        .map_err(|source| BackendError::Process { target: Target::Wan.to_string(), source })?;
    let t = parse_iptables_save(&text).map_err(|e| BackendError::exec(Target::Wan, e.to_string()))?;
    Ok(counters_from(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heal_removes_only_rrlabs_qdiscs() {
        // `tc qdisc show dev eth1` after `rrlab wan rate`, and an interface with only the kernel's default.
        let ours = "qdisc tbf 5252: root refcnt 2 rate 512Kbit burst 4Kb lat 400ms \n";
        let default = "qdisc noqueue 0: root refcnt 2 \n";
        let someone_elses = "qdisc netem 8001: root refcnt 2 limit 1000 delay 10ms\n";
        assert!(has_rrlab_root_qdisc(ours));
        assert!(!has_rrlab_root_qdisc(default));
        assert!(!has_rrlab_root_qdisc(someone_elses));
        let cmds = heal(&[
            ("eth1".into(), ours.into()),
            ("eth2".into(), default.into()),
            ("eth3".into(), someone_elses.into()),
        ]);
        assert_eq!(
            cmds,
            vec![
                cmd(&["iptables", "-F", IMPAIR_CHAIN]),
                cmd(&["tc", "qdisc", "del", "dev", "eth1", "root", "handle", QDISC_HANDLE])
            ]
        );
    }

    #[test]
    fn partition_both_ways_and_loss() {
        assert_eq!(partition("10.1.0.0/24", "10.2.0.0/24", false).len(), 1);
        let both = partition("a", "b", true);
        assert_eq!(both[1][3..7], ["-s", "b", "-d", "a"].map(String::from));
        assert_eq!(loss(5.0)[0][8], "0.0500");
        assert_eq!(loss(250.0)[0][8], "1.0000");
    }
}
