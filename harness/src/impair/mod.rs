//! WAN impairment in userspace, for kernels without netem (GitHub issue 10).
//!
//! The WAN node sends one direction's forwarded packets (`-i <in> -o <out>`) to an NFQUEUE queue
//! ([`queue_rules`], in [`crate::wan::IMPAIR_CHAIN`], so that [`crate::wan::heal`]'s flush removes them), and
//! `rrlab impaird` ([`nfqueue::run`]) holds each packet until the [`Scheduler`] says it may go: delay and jitter,
//! random or burst (Gilbert-Elliott) loss, duplication, reordering, corruption and rate, netem's knobs
//! ([`Impairment`], parsed from the operator's `delay: 40ms`, `loss: burst 2% 25%`, …).
//!
//! The queue rules are installed without `--queue-bypass`: while no `impaird` is bound to the queue, the
//! direction's packets are dropped rather than let through unimpaired. NFQUEUE is a terminal target, so
//! `rrlab-IMPAIR` rules appended after the queue rules (partitions, `statistic` loss) do not see the queued
//! packets: add those first.
//!
//! [`Path::detect`] tells which path a kernel needs ([`netem_available`]).

pub mod nfqueue;
pub mod schedule;
pub mod spec;

use std::fmt;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

pub use schedule::{Decision, Scheduler};
pub use spec::{Direction, Impairment, Loss, ParseError};

use crate::wan::{Cmd, IMPAIR_CHAIN};

/// The comment on every queue rule (`-m comment --comment impair`).
pub const RULE_COMMENT: &str = "impair";
/// The queue's maximum length (packets held, in the kernel, for a verdict); past it new packets are dropped
/// (fail-open is off).
pub const QUEUE_MAX_LEN: u32 = 10_000;

/// What `rrlab impaird --spec` reads: the impairment (operator strings per field) and the RNG's seed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SpecFile {
    #[serde(default)]
    pub impairment: Impairment,
    #[serde(default)]
    pub seed: u64,
}

/// What `rrlab impaird --counters` writes (JSON, every 500 ms and on exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Packets received from the queue.
    pub seen: u64,
    pub dropped: u64,
    /// Accepted later than they arrived (delay, jitter or rate).
    pub delayed: u64,
    /// Second copies sent.
    pub duplicated: u64,
    /// Sent without the delay.
    pub reordered: u64,
    pub corrupted: u64,
    /// Packets held for a verdict right now.
    pub held: u64,
    /// Verdicts or copies the kernel refused.
    pub errors: u64,
}

/// How a WAN's delay (and the rest of netem's knobs) is done on this kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Path {
    /// The kernel's netem qdisc ([`crate::wan::delay`]).
    Netem,
    /// Userspace: NFQUEUE and `rrlab impaird`.
    Nfqueue,
}

impl Path {
    /// Netem where the kernel has it, else the userspace path.
    pub fn detect() -> Path {
        if netem_available() {
            Path::Netem
        } else {
            Path::Nfqueue
        }
    }
}

impl Path {
    /// This host's path, detected once per process (the twin's nodes and kind's WAN share the host's kernel).
    pub fn host() -> Path {
        static HOST: std::sync::OnceLock<Path> = std::sync::OnceLock::new();
        *HOST.get_or_init(Path::detect)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Path::Netem => "delay via the kernel's netem qdisc",
            Path::Nfqueue => "delay via userspace NFQUEUE (this kernel has no netem)",
        })
    }
}

/// Whether this kernel can run a netem qdisc: a netem qdisc is tried on `lo` of a scratch network namespace
/// (`unshare --net`, gone when the command exits: nothing of the host is touched; it loads the module when it can
/// be loaded). Without `unshare` (or without the privilege for it), `/proc/modules` and `modinfo sch_netem`
/// answer instead.
pub fn netem_available() -> bool {
    let tried = Command::new("unshare")
        .args(["--net", "--", "tc", "qdisc", "add", "dev", "lo", "root", "handle", "5252:", "netem", "delay", "1ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match tried {
        Ok(o) if o.status.success() => true,
        // tc ran in the namespace and the kernel refused the qdisc.
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("qdisc kind is unknown") => false,
        _ => {
            let loaded = std::fs::read_to_string("/proc/modules").is_ok_and(|m| modules_list_netem(&m));
            loaded
                || Command::new("modinfo")
                    .arg("sch_netem")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        }
    }
}

/// Whether a `/proc/modules` text lists `sch_netem`.
pub fn modules_list_netem(proc_modules: &str) -> bool {
    proc_modules.lines().any(|l| l.split_whitespace().next() == Some("sch_netem"))
}

/// The iptables commands that send the WAN node's forwarded packets of `dir` to NFQUEUE `queue`: `a→b` is
/// what comes in on `a_iface` and goes out on `b_iface`. Appended to [`IMPAIR_CHAIN`] with the comment
/// [`RULE_COMMENT`]; no `--queue-bypass` (no daemon bound: the packets are dropped). [`crate::wan::heal`]
/// flushes the chain, and so removes them.
pub fn queue_rules(dir: Direction, a_iface: &str, b_iface: &str, queue: u16) -> Vec<Cmd> {
    let pairs = match dir {
        Direction::AtoB => vec![(a_iface, b_iface)],
        Direction::BtoA => vec![(b_iface, a_iface)],
        Direction::Both => vec![(a_iface, b_iface), (b_iface, a_iface)],
    };
    let q = queue.to_string();
    pairs
        .into_iter()
        .map(|(i, o)| {
            [
                "iptables",
                "-A",
                IMPAIR_CHAIN,
                "-i",
                i,
                "-o",
                o,
                "-m",
                "comment",
                "--comment",
                RULE_COMMENT,
                "-j",
                "NFQUEUE",
                "--queue-num",
                &q,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        })
        .collect()
}

/// Flip one bit of `packet`'s payload after its IP header (IPv4: IHL words; IPv6: the fixed 40 bytes), chosen
/// by `r`. The IP header stays valid (so the packet is still routed); the transport checksum no longer matches,
/// as with netem's `corrupt`. Returns the bit's index, or `None` when there is no payload (or no IP header).
pub fn corrupt_packet(packet: &mut [u8], r: u64) -> Option<usize> {
    let header = match packet.first()? >> 4 {
        4 => usize::from(packet[0] & 0x0f) * 4,
        6 => 40,
        _ => return None,
    };
    let bits = packet.len().checked_sub(header).filter(|n| *n > 0)? * 8;
    let bit = header * 8 + (r % bits as u64) as usize;
    packet[bit / 8] ^= 0x80 >> (bit % 8);
    Some(bit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wan;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn queue_rules_one_direction_and_both() {
        let r = queue_rules(Direction::AtoB, "eth1", "eth2", 3);
        assert_eq!(
            r,
            vec![strings(&[
                "iptables",
                "-A",
                "rrlab-IMPAIR",
                "-i",
                "eth1",
                "-o",
                "eth2",
                "-m",
                "comment",
                "--comment",
                "impair",
                "-j",
                "NFQUEUE",
                "--queue-num",
                "3"
            ])]
        );
        assert!(!r[0].iter().any(|a| a == "--queue-bypass"), "no daemon bound must not mean unimpaired");
        let back = queue_rules(Direction::BtoA, "eth1", "eth2", 3);
        assert_eq!(back[0][3..7], strings(&["-i", "eth2", "-o", "eth1"]));
        let both = queue_rules(Direction::Both, "eth1", "eth2", 0);
        assert_eq!(both.len(), 2);
        assert_eq!(both[0][3..7], strings(&["-i", "eth1", "-o", "eth2"]));
        assert_eq!(both[1][3..7], strings(&["-i", "eth2", "-o", "eth1"]));
        assert_eq!(both[1].last().unwrap(), "0");
    }

    #[test]
    fn heal_removes_the_queue_rules() {
        // heal flushes the chain the queue rules are in; the rules are in no other chain.
        let flush = &wan::heal(&[])[0];
        assert_eq!(flush, &strings(&["iptables", "-F", wan::IMPAIR_CHAIN]));
        for r in queue_rules(Direction::Both, "a", "b", 1) {
            assert_eq!((r[1].as_str(), r[2].as_str()), ("-A", flush[2].as_str()));
        }
    }

    #[test]
    fn corrupts_one_bit_after_the_ip_header() {
        // IPv4, IHL 5 (20 bytes), 8 bytes of payload.
        let mut p = vec![0x45u8; 28];
        let orig = p.clone();
        for r in [0u64, 1, 63, 64, 12345] {
            let mut q = orig.clone();
            let bit = corrupt_packet(&mut q, r).unwrap();
            assert!((160..224).contains(&bit), "bit {bit}");
            assert_eq!(q[..20], orig[..20], "the header is untouched");
            let diff: u32 = q.iter().zip(&orig).map(|(a, b)| (a ^ b).count_ones()).sum();
            assert_eq!(diff, 1);
        }
        // IHL 6: 24-byte header.
        p[0] = 0x46;
        assert!(corrupt_packet(&mut p, 0).unwrap() >= 192);
        // Header only: nothing to corrupt.
        let mut h = vec![0x45u8; 20];
        assert_eq!(corrupt_packet(&mut h, 7), None);
        assert_eq!(corrupt_packet(&mut [], 7), None);
        let mut v6 = vec![0x60u8; 41];
        assert_eq!(corrupt_packet(&mut v6, 3), Some(323));
    }

    #[test]
    fn path_display_and_modules() {
        assert_eq!(Path::Nfqueue.to_string(), "delay via userspace NFQUEUE (this kernel has no netem)");
        assert!(Path::Netem.to_string().contains("netem"));
        assert!(modules_list_netem("sch_tbf 1 0 - Live\nsch_netem 49152 0 - Live 0x0\n"));
        assert!(!modules_list_netem("sch_tbf 1 0 - Live\nsch_netem_x 1 0 - Live\n"));
    }

    #[test]
    fn spec_file_json() {
        let s: SpecFile =
            serde_json::from_str(r#"{"impairment": {"delay": "20ms", "loss": "10%"}, "seed": 9}"#).unwrap();
        assert_eq!(s.seed, 9);
        assert_eq!(s.impairment.loss, Loss::Random { percent: 10.0 });
        let back: SpecFile = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
