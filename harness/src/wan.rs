//! The WAN emulator, once for every backend: the topology's `linux` node routes between the sites, and rrlab
//! changes only its own chains and qdiscs there. Partitions and random loss are iptables rules (the
//! `statistic` match) in the `rrlab-IMPAIR` chain of FORWARD; rate is tbf, both as root qdiscs with rrlab's
//! handle, so that `heal` removes exactly what rrlab set. Delay (and netem's other knobs) is the kernel's netem
//! where it has it, else userspace: each WAN interface's outgoing packets go to an NFQUEUE queue that an
//! `rrlab impaird` on the WAN node holds and releases ([`crate::impair`]); partitions and loss rules are
//! inserted before the queue rules, which end the chain.
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
    partition_rules("-I", from, to, both)
}

/// Lift exactly the rules `partition(from, to, both)` inserted, and nothing else (a flap's up half).
pub fn unpartition(from: &str, to: &str, both: bool) -> Vec<Cmd> {
    partition_rules("-D", from, to, both)
}

fn partition_rules(op: &str, from: &str, to: &str, both: bool) -> Vec<Cmd> {
    let mut pairs = vec![(from, to)];
    if both {
        pairs.push((to, from));
    }
    pairs
        .into_iter()
        .map(|(s, d)| {
            cmd(&[
                "iptables",
                op,
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
        "-I",
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

/// The first NFQUEUE queue of the userspace path: queue `QUEUE_BASE + k` holds what leaves by the WAN's k-th
/// interface (one `impaird` each, as netem is one qdisc per interface).
pub const QUEUE_BASE: u16 = 5252;

/// impaird's files on the WAN node, named after the lab: (spec, counters, log, pid).
pub fn impaird_files(lab: &str, queue: u16) -> [String; 4] {
    let b = format!("/tmp/rrlab-{lab}-impair-{queue}");
    [format!("{b}.json"), format!("{b}.counters.json"), format!("{b}.log"), format!("{b}.pid")]
}

/// Start `impaird` for `queue` on the WAN, detached, and wait (up to 5 s) until it has bound the queue (it writes
/// its counters file then); on failure its log is the error. `bin`: the rrlab binary as the WAN node sees it.
pub fn impaird_start(bin: &str, lab: &str, queue: u16, imp: &crate::impair::Impairment) -> Cmd {
    let [spec, counters, log, pid] = impaird_files(lab, queue);
    let spec_json = serde_json::to_string(&crate::impair::SpecFile { impairment: imp.clone(), seed: u64::from(queue) })
        .expect("an impairment serialises");
    // The spec's values are the operator's parsed strings (digits, units, `%`, `burst`): no quote in them.
    let script = format!(
        "rm -f {counters}; printf '%s' '{spec_json}' > {spec} && \
         setsid {bin} impaird --queue {queue} --spec {spec} --counters {counters} > {log} 2>&1 < /dev/null & \
         echo $! > {pid}; i=0; while [ ! -s {counters} ] && [ $i -lt 50 ]; do \
         kill -0 $(cat {pid}) 2>/dev/null || break; sleep 0.1; i=$((i+1)); done; \
         [ -s {counters} ] || {{ echo \"rrlab impaird did not start: $(cat {log})\" >&2; exit 1; }}"
    );
    vec!["sh".into(), "-c".into(), script]
}

/// Stop one queue's `impaird` (by its recorded pid) and remove its files.
pub fn impaird_stop_queue(lab: &str, queue: u16) -> Cmd {
    let [spec, counters, log, pid] = impaird_files(lab, queue);
    let script = format!(
        "[ -f {pid} ] && kill -TERM $(cat {pid}) 2>/dev/null; sleep 0.2; rm -f {spec} {counters} {log} {pid}; true"
    );
    vec!["sh".into(), "-c".into(), script]
}

/// Stop this lab's `impaird`s on the WAN (SIGTERM: each accepts what it holds, then exits) and remove their files;
/// only the pids rrlab recorded for this lab are signalled.
pub fn impaird_stop(lab: &str) -> Cmd {
    let glob = format!("/tmp/rrlab-{lab}-impair-*");
    let script = format!(
        "for p in {glob}.pid; do [ -f \"$p\" ] && kill -TERM $(cat \"$p\") 2>/dev/null; done; \
         sleep 0.2; rm -f {glob}; true"
    );
    vec!["sh".into(), "-c".into(), script]
}

/// The queue rules of the userspace path: what leaves by each WAN interface to its queue (appended: after the
/// partitions and loss rules, which are inserted first in the chain).
pub fn queue_rules(topo: &Topology) -> Vec<Cmd> {
    interfaces(topo).iter().enumerate().map(|(k, i)| queue_rule(i, QUEUE_BASE + k as u16)).collect()
}

/// What leaves the WAN by `iface` goes to `queue`.
fn queue_rule(iface: &str, queue: u16) -> Cmd {
    let q = queue.to_string();
    cmd(&[
        "iptables",
        "-A",
        IMPAIR_CHAIN,
        "-o",
        iface,
        "-m",
        "comment",
        "--comment",
        crate::impair::RULE_COMMENT,
        "-j",
        "NFQUEUE",
        "--queue-num",
        &q,
    ])
}

/// Removing a queue rule (the `-D` may find nothing: the impairment was never set).
fn rule_off(mut c: Cmd) -> Cmd {
    c[1] = "-D".into();
    let line = c.join(" ");
    vec!["sh".into(), "-c".into(), format!("{line} 2>/dev/null; true")]
}

/// Removing the queue rules.
pub fn queue_rules_off(topo: &Topology) -> Vec<Cmd> {
    queue_rules(topo).into_iter().map(rule_off).collect()
}

/// The WAN interface on `site`'s link (what leaves by it goes towards that site).
pub fn iface_toward(topo: &Topology, site: &str) -> Result<String, BackendError> {
    let w = wan_node(topo).ok_or_else(no_wan)?;
    topo.links_of(&w)
        .into_iter()
        .find(|(_, peer)| peer.node == site)
        .map(|(i, _)| i.to_string())
        .ok_or_else(|| BackendError::Usage(format!("the WAN ({w}) has no link to {site}")))
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
    /// netem's knobs on every WAN interface (each direction), replacing what was set before.
    Impair {
        imp: crate::impair::Impairment,
    },
    /// netem's knobs on one WAN interface: what leaves the WAN by it (one direction of one link), replacing
    /// what that interface had; the other interfaces keep theirs.
    ImpairLink {
        iface: String,
        imp: crate::impair::Impairment,
    },
    /// A partition `down` long then lifted for `up`, `times` times (subnets or addresses); other impairments stay.
    Flap {
        from: String,
        to: String,
        down: std::time::Duration,
        up: std::time::Duration,
        times: u32,
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
        Action::Delay { ms } => {
            let imp = crate::impair::Impairment {
                delay: std::time::Duration::from_millis(u64::from(*ms)),
                ..Default::default()
            };
            match crate::impair::Path::host() {
                crate::impair::Path::Netem => apply(b, &delay(topo, *ms)),
                crate::impair::Path::Nfqueue => impair_userspace(b, &imp),
            }
        }
        Action::Impair { imp } => impair_userspace(b, imp),
        Action::ImpairLink { iface, imp } => impair_link(b, iface, imp),
        Action::Flap { from, to, down, up, times } => {
            for _ in 0..*times {
                apply(b, &partition(from, to, true))?;
                std::thread::sleep(*down);
                apply(b, &unpartition(from, to, true))?;
                std::thread::sleep(*up);
            }
            Ok(())
        }
        Action::Heal => {
            let mut shown = Vec::new();
            for (iface, c) in qdisc_show(topo) {
                let argv: Vec<&str> = c.iter().map(String::as_str).collect();
                let out = b.exec(Target::Wan, &argv)?;
                shown.push((iface, out.stdout));
            }
            // The queue rules go with the chain's flush before their daemons stop: a queue without its daemon drops.
            apply(b, &heal(&shown))?;
            apply(b, &[impaird_stop(b.lab())])
        }
    }
}

/// The userspace path: the old queue rules and daemons removed, one `impaird` per WAN interface started with
/// `imp` (nothing when `imp` impairs nothing), then the queue rules.
fn impair_userspace(b: &dyn Backend, imp: &crate::impair::Impairment) -> Result<(), BackendError> {
    let topo = b.topology();
    apply(b, &queue_rules_off(topo))?;
    apply(b, &[impaird_stop(b.lab())])?;
    if *imp == crate::impair::Impairment::default() {
        return Ok(());
    }
    let bin = b.wan_rrlab_bin()?;
    let starts: Vec<Cmd> =
        (0..interfaces(topo).len()).map(|k| impaird_start(&bin, b.lab(), QUEUE_BASE + k as u16, imp)).collect();
    apply(b, &starts)?;
    apply(b, &queue_rules(topo))
}

/// One WAN interface's impairment replaced on the userspace path: its queue rule and daemon removed, then
/// (unless `imp` impairs nothing) its `impaird` started and its queue rule added.
fn impair_link(b: &dyn Backend, iface: &str, imp: &crate::impair::Impairment) -> Result<(), BackendError> {
    let ifaces = interfaces(b.topology());
    let k = ifaces.iter().position(|i| i == iface).ok_or_else(|| {
        BackendError::Usage(format!("the WAN has no interface {iface:?} (its interfaces: {})", ifaces.join(", ")))
    })?;
    let q = QUEUE_BASE + k as u16;
    apply(b, &[rule_off(queue_rule(iface, q)), impaird_stop_queue(b.lab(), q)])?;
    if *imp == crate::impair::Impairment::default() {
        return Ok(());
    }
    apply(b, &[impaird_start(&b.wan_rrlab_bin()?, b.lab(), q, imp)])?;
    apply(b, &[queue_rule(iface, q)])
}

/// The impairments the topology declares on the WAN's links (`rrlab.io/impair.<iface>`), set once the lab is
/// up; returns what was set, one line per link (none: nothing declared).
pub fn apply_declared(b: &dyn Backend) -> Result<Vec<String>, BackendError> {
    let mut out = Vec::new();
    for (iface, imp) in b.topology().impairments.clone() {
        impair_link(b, &iface, &imp)?;
        out.push(format!("{iface}: {imp} (declared in the topology; rrlab impaird behind NFQUEUE)"));
    }
    Ok(out)
}

/// What `impaird` on each WAN interface counted (empty on the netem path or with nothing set): (interface,
/// counters).
pub fn impair_counters(b: &dyn Backend) -> Result<Vec<(String, crate::impair::Counters)>, BackendError> {
    let mut out = Vec::new();
    for (k, iface) in interfaces(b.topology()).into_iter().enumerate() {
        let [_, counters, _, _] = impaird_files(b.lab(), QUEUE_BASE + k as u16);
        let o = b.exec(Target::Wan, &["cat", &counters])?;
        if !o.success() {
            continue;
        }
        let c =
            serde_json::from_str(&o.stdout).map_err(|e| BackendError::exec(Target::Wan, format!("{counters}: {e}")))?;
        out.push((iface, c));
    }
    Ok(out)
}

/// Which path an impairment takes on this kernel, in words (`delay via userspace NFQUEUE (this kernel has no
/// netem)`).
pub fn impair_path(a: &Action) -> String {
    match (a, crate::impair::Path::host()) {
        (Action::Delay { .. }, p) => p.to_string(),
        _ => crate::impair::Path::Nfqueue.to_string(),
    }
}

/// `rrlab wan show`: rrlab's chains (with their counters), its qdiscs, and each userspace impairment's counters.
pub fn show(b: &dyn Backend) -> Result<String, BackendError> {
    wan_node(b.topology()).ok_or_else(no_wan)?;
    let c = counters_cmd();
    let argv: Vec<&str> = c.iter().map(String::as_str).collect();
    let text = crate::process::checked(&argv, b.exec(Target::Wan, &argv)?)
        .map_err(|source| BackendError::Process { target: Target::Wan.to_string(), source })?;
    let mut out = String::new();
    for l in text.lines().filter(|l| l.contains(COUNT_CHAIN) || l.contains(IMPAIR_CHAIN)) {
        if !l.starts_with(':') {
            out.push_str(l);
            out.push('\n');
        }
    }
    for (iface, c) in qdisc_show(b.topology()) {
        let argv: Vec<&str> = c.iter().map(String::as_str).collect();
        let o = b.exec(Target::Wan, &argv)?;
        for l in o.stdout.lines().filter(|l| has_rrlab_root_qdisc(l)) {
            out.push_str(&format!("{iface}: {l}\n"));
        }
    }
    for (iface, c) in impair_counters(b)? {
        out.push_str(&format!("{iface}: impaird {}\n", serde_json::to_string(&c).unwrap_or_default()));
    }
    Ok(out)
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

    fn two_site_wan() -> Topology {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/labs/mini.clab.yml");
        crate::model::topology::load(&p).unwrap()
    }

    #[test]
    fn userspace_delay_queues_each_wan_interface_after_the_drop_rules() {
        let topo = two_site_wan();
        assert_eq!(interfaces(&topo), ["eth1", "eth2"]);
        let q = queue_rules(&topo);
        assert_eq!(q.len(), 2);
        assert_eq!(
            q[1].join(" "),
            "iptables -A rrlab-IMPAIR -o eth2 -m comment --comment impair -j NFQUEUE --queue-num 5253"
        );
        // Partitions and loss go first: NFQUEUE ends the chain for what it queues.
        assert_eq!(partition("a", "b", false)[0][1], "-I");
        assert_eq!(loss(1.0)[0][1], "-I");
        let off = queue_rules_off(&topo);
        assert_eq!(off[0][2], "iptables -D rrlab-IMPAIR -o eth1 -m comment --comment impair -j NFQUEUE --queue-num 5252 2>/dev/null; true");
    }

    #[test]
    fn impaird_starts_detached_with_its_lab_named_files_and_stops_by_recorded_pid() {
        let imp: crate::impair::Impairment = "delay: 20ms, jitter: 5ms".parse().unwrap();
        let c = impaird_start("/usr/local/bin/rrlab", "mini", 5252, &imp);
        let script = &c[2];
        assert_eq!(c[..2], ["sh", "-c"]);
        assert!(script.contains("setsid /usr/local/bin/rrlab impaird --queue 5252 --spec /tmp/rrlab-mini-impair-5252.json --counters /tmp/rrlab-mini-impair-5252.counters.json"), "{script}");
        assert!(script.contains("\"delay\":\"20ms\"") && script.contains("\"jitter\":\"5ms\""), "{script}");
        assert!(script.contains("echo $! > /tmp/rrlab-mini-impair-5252.pid"), "{script}");
        // It fails (with impaird's log) when the counters file never appears.
        assert!(script.contains("did not start") && script.contains("exit 1"), "{script}");
        let stop = &impaird_stop("mini")[2];
        assert!(stop.contains("/tmp/rrlab-mini-impair-*.pid") && stop.contains("kill -TERM"), "{stop}");
        assert!(!stop.contains("pkill") && !stop.contains("killall"), "only recorded pids: {stop}");
    }

    #[test]
    fn partition_both_ways_and_loss() {
        assert_eq!(partition("10.1.0.0/24", "10.2.0.0/24", false).len(), 1);
        let both = partition("a", "b", true);
        assert_eq!(both[1][3..7], ["-s", "b", "-d", "a"].map(String::from));
        assert_eq!(loss(5.0)[0][8], "0.0500");
        assert_eq!(loss(250.0)[0][8], "1.0000");
    }

    #[test]
    fn a_flaps_up_half_deletes_exactly_the_partitions_rules() {
        let (ins, del) = (partition("a", "b", true), unpartition("a", "b", true));
        assert_eq!(ins.len(), 2);
        for (i, d) in ins.iter().zip(&del) {
            assert_eq!((i[1].as_str(), d[1].as_str()), ("-I", "-D"));
            assert_eq!(i[2..], d[2..], "the same rule, so -D removes what -I added");
        }
    }
}
