//! `ping` output (iputils; busybox's `round-trip` summary is accepted too).

use super::{numbered_lines, ParseError};
use serde::{Deserialize, Serialize};

/// An echo reply line: `64 bytes from 10.99.0.1: icmp_seq=1 ttl=64 time=0.328 ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingReply {
    pub bytes: u32,
    pub from: String,
    pub seq: u32,
    pub ttl: Option<u32>,
    pub time_ms: Option<f64>,
    /// `(DUP!)`
    pub duplicate: bool,
}

/// An error line: `From 10.99.0.2 icmp_seq=1 Destination Host Unreachable`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingError {
    pub from: String,
    pub seq: Option<u32>,
    pub message: String,
}

/// `rtt min/avg/max/mdev = 0.069/0.155/0.328/0.121 ms`
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rtt {
    pub min_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
    pub mdev_ms: Option<f64>,
}

/// A `ping` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingResult {
    /// Target as given (`PING <target> (<addr>) …`); empty if ping failed
    /// before printing it.
    pub target: String,
    pub target_addr: Option<String>,
    pub transmitted: u32,
    pub received: u32,
    pub duplicates: u32,
    pub corrupted: u32,
    /// `+N errors` (ICMP errors such as Destination Host Unreachable).
    pub errors: u32,
    /// Packet loss in percent, as printed (100 when ping failed to start).
    pub loss_pct: f64,
    pub time_ms: Option<u64>,
    pub rtt: Option<Rtt>,
    pub replies: Vec<PingReply>,
    pub error_lines: Vec<PingError>,
    /// `pipe N`
    pub pipe: Option<u32>,
    /// A fatal `ping: …` message (e.g. `connect: Invalid argument` for a
    /// blackhole route, `unknown host`): nothing was sent.
    pub fatal: Option<String>,
}

impl PingResult {
    /// Sequence numbers that got a (non-duplicate) reply.
    pub fn replied_seqs(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.replies.iter().filter(|r| !r.duplicate).map(|r| r.seq).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every probe answered.
    pub fn all_replied(&self) -> bool {
        self.fatal.is_none() && self.transmitted > 0 && self.received == self.transmitted
    }
}

const INPUT: &str = "ping";

fn kv<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|t| t.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn parse_stats(l: &str, r: &mut PingResult, n: usize) -> Result<(), ParseError> {
    // 5 packets transmitted, 0 received, +5 errors, 100% packet loss, time 4055ms
    let bad = |what: &str| ParseError::new(INPUT, n, what.to_string(), l);
    let mut seen_tx = false;
    let mut seen_loss = false;
    for part in l.split(',') {
        let w: Vec<&str> = part.split_whitespace().collect();
        match w.as_slice() {
            [num, "packets", "transmitted"] => {
                r.transmitted = num.parse().map_err(|_| bad("a transmitted count"))?;
                seen_tx = true;
            }
            [num, "received"] | [num, "packets", "received"] => {
                r.received = num.parse().map_err(|_| bad("a received count"))?
            }
            [num, "duplicates"] => {
                r.duplicates = num.trim_start_matches('+').parse().map_err(|_| bad("a duplicate count"))?
            }
            [num, "corrupted"] => {
                r.corrupted = num.trim_start_matches('+').parse().map_err(|_| bad("a corrupted count"))?
            }
            [num, "errors"] => r.errors = num.trim_start_matches('+').parse().map_err(|_| bad("an error count"))?,
            [pct, "packet", "loss"] => {
                r.loss_pct =
                    pct.strip_suffix('%').and_then(|p| p.parse().ok()).ok_or_else(|| bad("a loss percentage `N%`"))?;
                seen_loss = true;
            }
            ["time", t] => {
                r.time_ms = Some(t.strip_suffix("ms").and_then(|x| x.parse().ok()).ok_or_else(|| bad("`time Nms`"))?)
            }
            _ => return Err(bad("ping statistics (`N packets transmitted, N received, …% packet loss`)")),
        }
    }
    if seen_tx && seen_loss {
        Ok(())
    } else {
        Err(bad("`N packets transmitted` and `N% packet loss`"))
    }
}

fn parse_rtt(l: &str, n: usize) -> Result<Rtt, ParseError> {
    let bad = || ParseError::new(INPUT, n, "`rtt min/avg/max/mdev = a/b/c/d ms`", l);
    let (_, vals) = l.split_once('=').ok_or_else(bad)?;
    let vals = vals.trim().trim_end_matches("ms").trim();
    let v: Vec<f64> = vals.split('/').map(|x| x.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| bad())?;
    match v.as_slice() {
        [min, avg, max] => Ok(Rtt { min_ms: *min, avg_ms: *avg, max_ms: *max, mdev_ms: None }),
        [min, avg, max, mdev] => Ok(Rtt { min_ms: *min, avg_ms: *avg, max_ms: *max, mdev_ms: Some(*mdev) }),
        _ => Err(bad()),
    }
}

/// Parse `ping` output.
pub fn parse_ping(text: &str) -> Result<PingResult, ParseError> {
    let mut r = PingResult {
        target: String::new(),
        target_addr: None,
        transmitted: 0,
        received: 0,
        duplicates: 0,
        corrupted: 0,
        errors: 0,
        loss_pct: 100.0,
        time_ms: None,
        rtt: None,
        replies: Vec::new(),
        error_lines: Vec::new(),
        pipe: None,
        fatal: None,
    };
    let mut seen_header = false;
    let mut seen_stats = false;
    let mut last_line = 0;
    for (n, l) in numbered_lines(text) {
        last_line = n;
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        if let Some(msg) = t.strip_prefix("ping: ") {
            if !seen_header {
                r.fatal = Some(msg.to_string());
                return Ok(r);
            }
            // e.g. `ping: sendmsg: Invalid argument` mid-run
            r.error_lines.push(PingError { from: String::new(), seq: None, message: msg.to_string() });
            continue;
        }
        if let Some(rest) = t.strip_prefix("PING ") {
            let mut w = rest.split_whitespace();
            r.target = w.next().unwrap_or("").to_string();
            r.target_addr =
                w.next().and_then(|a| a.strip_prefix('(').and_then(|a| a.strip_suffix(')'))).map(String::from);
            if r.target.is_empty() {
                return Err(ParseError::new(INPUT, n, "`PING <target> (<addr>) …`", l));
            }
            seen_header = true;
            continue;
        }
        if !seen_header {
            return Err(ParseError::new(INPUT, n, "`PING <target> (<addr>) …` or `ping: <error>`", l));
        }
        if t.starts_with("--- ") && t.ends_with(" ping statistics ---") {
            continue;
        }
        if t.contains(" packets transmitted") {
            parse_stats(t, &mut r, n)?;
            seen_stats = true;
            continue;
        }
        if t.starts_with("rtt ") || t.starts_with("round-trip ") {
            r.rtt = Some(parse_rtt(t, n)?);
            continue;
        }
        if let Some(p) = t.strip_prefix("pipe ") {
            r.pipe = Some(p.trim().parse().map_err(|_| ParseError::new(INPUT, n, "`pipe N`", l))?);
            continue;
        }
        if let Some((bytes, rest)) = t.split_once(" bytes from ") {
            let bytes: u32 =
                bytes.parse().map_err(|_| ParseError::new(INPUT, n, "`N bytes from <addr>: icmp_seq=…`", l))?;
            let (from, fields) = rest.split_once(": ").unwrap_or((rest, ""));
            let seq = kv(fields, "icmp_seq")
                .or_else(|| kv(fields, "seq"))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| ParseError::new(INPUT, n, "`icmp_seq=N` in a reply", l))?;
            let time_ms = match kv(fields, "time") {
                Some(v) => Some(v.parse().map_err(|_| ParseError::new(INPUT, n, "`time=N ms` in a reply", l))?),
                None => None,
            };
            r.replies.push(PingReply {
                bytes,
                from: from.trim_end_matches(':').to_string(),
                seq,
                ttl: kv(fields, "ttl").and_then(|v| v.parse().ok()),
                time_ms,
                duplicate: fields.contains("(DUP!)"),
            });
            continue;
        }
        if let Some(rest) = t.strip_prefix("From ") {
            let (from, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let rest = rest.trim();
            let (seq, message) = match rest.split_once(char::is_whitespace) {
                Some((s, m)) if s.starts_with("icmp_seq=") => {
                    (kv(s, "icmp_seq").and_then(|v| v.parse().ok()), m.trim())
                }
                _ => (None, rest),
            };
            r.error_lines.push(PingError {
                from: from.trim_end_matches(':').to_string(),
                seq,
                message: message.to_string(),
            });
            continue;
        }
        return Err(ParseError::new(
            INPUT,
            n,
            "a reply (`N bytes from …`), an error (`From … icmp_seq=N …`) or the statistics",
            l,
        ));
    }
    if !seen_header {
        return Err(ParseError::new(INPUT, last_line, "`PING <target> …`", "end of input"));
    }
    if !seen_stats {
        return Err(ParseError::new(
            INPUT,
            last_line,
            "the statistics line (`N packets transmitted, …`); was ping interrupted?",
            "end of input",
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- produced here: iputils-ping 20221126 in netns rrobs-b (10.99.0.2).

    // `ping -c 3 -i 0.2 10.99.0.1` (the neighbour on the veth)
    const OK: &str = include_str!("testdata/ping-ok.txt");
    // `ping -c 3 -i 0.2 -W 1 172.16.9.1`: routed to 10.99.0.1, which has no
    // route and answers `Destination Net Unreachable` (rate-limited: 2 of 3).
    const NET_UNREACH: &str = include_str!("testdata/ping-loss.txt");
    // `ping -c 5 -i 1 10.99.0.9`: on-link address nobody answers ARP for.
    const HOST_UNREACH: &str = include_str!("testdata/ping-unreachable.txt");
    // `ping -c 2 -i 0.2 -W 1 172.16.2.1`: a blackhole route.
    const BLACKHOLE: &str = include_str!("testdata/ping-blackhole.txt");
    // `ping -c 3 -i 0.2 -W 1 10.99.0.50` with ICMP to it dropped in rrobs-a.
    const SILENT: &str = include_str!("testdata/ping-silent-loss.txt");
    // `ping -c 6 -i 0.2 -W 1 10.99.0.50` with every 2nd echo dropped
    // (`-m statistic --mode nth --every 2 --packet 1 -j DROP` in rrobs-a).
    const PARTIAL: &str = include_str!("testdata/ping-partial-loss.txt");

    #[test]
    fn all_replies() {
        let r = parse_ping(OK).unwrap();
        assert_eq!(r.target, "10.99.0.1");
        assert_eq!(r.target_addr.as_deref(), Some("10.99.0.1"));
        assert_eq!((r.transmitted, r.received, r.errors), (3, 3, 0));
        assert_eq!(r.loss_pct, 0.0);
        assert_eq!(r.time_ms, Some(406));
        assert_eq!(r.rtt, Some(Rtt { min_ms: 0.069, avg_ms: 0.155, max_ms: 0.328, mdev_ms: Some(0.121) }));
        assert_eq!(
            r.replies[0],
            PingReply {
                bytes: 64,
                from: "10.99.0.1".into(),
                seq: 1,
                ttl: Some(64),
                time_ms: Some(0.328),
                duplicate: false
            }
        );
        assert_eq!(r.replied_seqs(), vec![1, 2, 3]);
        assert!(r.all_replied());
        assert!(r.error_lines.is_empty());
    }

    #[test]
    fn partial_loss() {
        let r = parse_ping(PARTIAL).unwrap();
        assert_eq!((r.transmitted, r.received), (6, 3));
        assert_eq!(r.loss_pct, 50.0);
        assert_eq!(r.replied_seqs(), vec![1, 3, 5]);
        assert_eq!(r.rtt.unwrap().max_ms, 0.359);
        assert!(!r.all_replied());
    }

    #[test]
    fn total_loss_forms() {
        let r = parse_ping(SILENT).unwrap();
        assert_eq!((r.transmitted, r.received, r.loss_pct), (3, 0, 100.0));
        assert_eq!(r.rtt, None);
        assert!(r.replies.is_empty() && r.error_lines.is_empty());

        let r = parse_ping(HOST_UNREACH).unwrap();
        assert_eq!((r.transmitted, r.received, r.errors, r.loss_pct), (5, 0, 5, 100.0));
        assert_eq!(r.time_ms, Some(4055));
        assert_eq!(r.pipe, Some(3));
        assert_eq!(r.error_lines.len(), 5);
        assert_eq!(
            r.error_lines[4],
            PingError { from: "10.99.0.2".into(), seq: Some(5), message: "Destination Host Unreachable".into() }
        );

        let r = parse_ping(NET_UNREACH).unwrap();
        assert_eq!((r.transmitted, r.received, r.errors), (3, 0, 2));
        assert_eq!(r.error_lines[0].from, "10.99.0.1");
        assert_eq!(r.error_lines[1].message, "Destination Net Unreachable");

        let r = parse_ping(BLACKHOLE).unwrap();
        assert_eq!(r.fatal.as_deref(), Some("connect: Invalid argument"));
        assert_eq!((r.transmitted, r.received, r.loss_pct), (0, 0, 100.0));
        assert!(!r.all_replied());
    }

    #[test]
    fn busybox_and_dups() {
        let r = parse_ping(
            "PING 10.0.0.1 (10.0.0.1): 56 data bytes\n64 bytes from 10.0.0.1: seq=0 ttl=64 time=0.100 ms\n64 bytes from 10.0.0.1: seq=0 ttl=64 time=0.200 ms (DUP!)\n\n--- 10.0.0.1 ping statistics ---\n1 packets transmitted, 1 packets received, +1 duplicates, 0% packet loss\nround-trip min/avg/max = 0.100/0.150/0.200 ms\n",
        )
        .unwrap();
        assert_eq!(r.duplicates, 1);
        assert!(r.replies[1].duplicate);
        assert_eq!(r.replied_seqs(), vec![0]);
        assert_eq!(r.rtt.unwrap().mdev_ms, None);
    }

    #[test]
    fn malformed_ping_names_the_line() {
        let e = parse_ping("hello\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_ping("PING x (1.2.3.4) 56(84) bytes of data.\n64 bytes from 1.2.3.4: ttl=64\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.expected.contains("icmp_seq"));
        let e =
            parse_ping("PING x (1.2.3.4) 56(84) bytes of data.\n64 bytes from 1.2.3.4: icmp_seq=1 ttl=64 time=1 ms\n")
                .unwrap_err();
        assert!(e.expected.contains("statistics"), "{e}");
        let e = parse_ping(
            "PING x (1.2.3.4) 56(84) bytes of data.\n3 packets transmitted, lots received, 0% packet loss\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_ping("PING x (1.2.3.4) 56(84) bytes of data.\n3 packets transmitted, 3 received, 0% packet loss\nrtt min/avg/max/mdev = a/b/c/d ms\n").unwrap_err();
        assert_eq!(e.line, 3);
    }
}
