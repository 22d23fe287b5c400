//! Continuous pod-to-pod probes: a UDP stream at a fixed rate (≥ 100 packets/s, 10 ms resolution) from one
//! pod to another, across partitions and clusters. The sender keeps a strict schedule (packet n leaves at
//! start + n·period) and records its start time; the receiver appends every sequence number it gets. Loss and
//! the longest outage of any time window follow from the two files, so they can be attributed to the step
//! during which they happened.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::runbook::lab::ProbeStats;

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Send packets `seq` (8 bytes, big endian) to `to` every `period` until killed. Writes `start_ms period_us`
/// to `start_file` first.
pub fn send(to: SocketAddr, period: Duration, start_file: &Path) -> std::io::Result<()> {
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    let start = Instant::now();
    std::fs::write(start_file, format!("{} {}\n", now_ms(), period.as_micros()))?;
    let mut seq: u64 = 0;
    loop {
        let due = start + period * (seq as u32);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        // Errors (no route, unreachable) are loss, not a reason to stop.
        let _ = sock.send_to(&seq.to_be_bytes(), to);
        seq += 1;
    }
}

/// Receive on `port` and append each sequence number to `log`, one per line.
pub fn receive(port: u16, log: &Path) -> std::io::Result<()> {
    let sock = UdpSocket::bind(("0.0.0.0", port))?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let mut buf = [0u8; 64];
    loop {
        let (n, _) = sock.recv_from(&mut buf)?;
        if n >= 8 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[..8]);
            writeln!(f, "{}", u64::from_be_bytes(b))?;
        }
    }
}

/// The probe's schedule: start time (epoch ms) and period.
pub fn read_start(path: &Path) -> Option<(u64, Duration)> {
    let t = std::fs::read_to_string(path).ok()?;
    let mut it = t.split_whitespace();
    let start = it.next()?.parse().ok()?;
    let period = Duration::from_micros(it.next()?.parse().ok()?);
    Some((start, period))
}

/// The receiver's log in arrival order (duplicates and reordering kept).
pub fn read_arrivals(path: &Path) -> Vec<u64> {
    let Ok(f) = std::fs::File::open(path) else { return Vec::new() };
    std::io::BufReader::new(f).lines().map_while(Result::ok).filter_map(|l| l.trim().parse().ok()).collect()
}

/// Among the arrivals of packets scheduled in `[first, last)`: (duplicates, reordered). A duplicate is a
/// sequence number that arrived before; a reordered packet arrived after one sent later than it.
pub fn order_stats(arrivals: &[u64], first: u64, last: u64) -> (u64, u64) {
    let mut seen = BTreeSet::new();
    let mut highest: Option<u64> = None;
    let (mut dups, mut reordered) = (0, 0);
    for &seq in arrivals.iter().filter(|s| (first..last).contains(*s)) {
        if !seen.insert(seq) {
            dups += 1;
            continue;
        }
        if highest.is_some_and(|h| seq < h) {
            reordered += 1;
        }
        highest = highest.max(Some(seq));
    }
    (dups, reordered)
}

/// [`window_stats`] over the receiver's log in arrival order, with its duplicates and reordered packets.
pub fn window_stats_of(
    start_ms: u64,
    period: Duration,
    arrivals: &[u64],
    from_ms: u64,
    to_ms: u64,
    grace: Duration,
) -> ProbeStats {
    let received: BTreeSet<u64> = arrivals.iter().copied().collect();
    let mut st = window_stats(start_ms, period, &received, from_ms, to_ms, grace);
    if let Some((first, last)) = window(start_ms, period, from_ms, to_ms, grace) {
        (st.duplicates, st.reordered) = order_stats(arrivals, first, last);
    }
    st
}

/// The sequence numbers `[first, last)` scheduled in `[from_ms, to_ms - grace)`.
fn window(start_ms: u64, period: Duration, from_ms: u64, to_ms: u64, grace: Duration) -> Option<(u64, u64)> {
    let p = period.as_millis().max(1) as u64;
    let to_ms = to_ms.saturating_sub(grace.as_millis() as u64);
    if to_ms <= start_ms || to_ms <= from_ms {
        return None;
    }
    Some((from_ms.saturating_sub(start_ms).div_ceil(p), (to_ms - start_ms) / p))
}

pub fn read_received(path: &Path) -> BTreeSet<u64> {
    let Ok(f) = std::fs::File::open(path) else { return BTreeSet::new() };
    std::io::BufReader::new(f).lines().map_while(Result::ok).filter_map(|l| l.trim().parse().ok()).collect()
}

/// Loss and longest outage for packets scheduled in `[from_ms, to_ms)`. Packets scheduled in the last
/// `grace` before `to_ms` are not judged yet (they may still be in flight).
pub fn window_stats(
    start_ms: u64,
    period: Duration,
    received: &BTreeSet<u64>,
    from_ms: u64,
    to_ms: u64,
    grace: Duration,
) -> ProbeStats {
    let Some((first, last)) = window(start_ms, period, from_ms, to_ms, grace) else {
        return ProbeStats::default();
    };
    let mut sent = 0;
    let mut got = 0;
    let mut run = 0u64;
    let mut longest = 0u64;
    for seq in first..last {
        sent += 1;
        if received.contains(&seq) {
            got += 1;
            run = 0;
        } else {
            run += 1;
            longest = longest.max(run);
        }
    }
    ProbeStats { sent, received: got, longest_outage: period * (longest as u32), ..Default::default() }
}

/// One probe over the whole run, packet by packet: when it started, its period, and every run of lost
/// packets and every duplicated or reordered one, for a timeline at the probe's resolution (10 ms at 100/s).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeTimeline {
    /// When packet 0 left (ms since the epoch).
    pub start_ms: u64,
    pub period: Duration,
    /// Packets scheduled up to the end of the run (the last `grace` not judged).
    pub sent: u64,
    /// Runs of lost packets: (first sequence number, how many).
    pub lost: Vec<(u64, u64)>,
    /// Sequence numbers that arrived a second time.
    pub duplicates: Vec<u64>,
    /// Sequence numbers that arrived after a later one.
    pub reordered: Vec<u64>,
}

impl ProbeTimeline {
    /// When packet `seq` left (ms since the epoch).
    pub fn at_ms(&self, seq: u64) -> u64 {
        self.start_ms + (self.period.as_micros() as u64 * seq) / 1000
    }
    pub fn lost_total(&self) -> u64 {
        self.lost.iter().map(|(_, n)| n).sum()
    }
}

/// The timeline of a probe from its schedule and its receiver's log, up to `to_ms` (packets of the last
/// `grace` not judged: they may be in flight).
pub fn timeline_of(start_ms: u64, period: Duration, arrivals: &[u64], to_ms: u64, grace: Duration) -> ProbeTimeline {
    let mut t = ProbeTimeline { start_ms, period, ..Default::default() };
    let Some((_, last)) = window(start_ms, period, start_ms, to_ms, grace) else { return t };
    t.sent = last;
    let received: BTreeSet<u64> = arrivals.iter().copied().filter(|s| *s < last).collect();
    let mut run: Option<(u64, u64)> = None;
    for seq in 0..last {
        if received.contains(&seq) {
            if let Some(r) = run.take() {
                t.lost.push(r);
            }
        } else {
            match &mut run {
                Some((_, n)) => *n += 1,
                None => run = Some((seq, 1)),
            }
        }
    }
    t.lost.extend(run);
    let mut seen = BTreeSet::new();
    let mut highest: Option<u64> = None;
    for &seq in arrivals.iter().filter(|s| **s < last) {
        if !seen.insert(seq) {
            t.duplicates.push(seq);
            continue;
        }
        if highest.is_some_and(|h| seq < h) {
            t.reordered.push(seq);
        }
        highest = highest.max(Some(seq));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_out_of_order_and_twice_are_counted_in_the_window() {
        // 0..10 scheduled; 3 arrives after 4 and 5 (reordered), 6 twice (duplicate), 8 lost; 12 is outside.
        let arrivals = [0, 1, 2, 4, 5, 3, 6, 6, 7, 9, 12, 12];
        assert_eq!(order_stats(&arrivals, 0, 10), (1, 1));
        assert_eq!(order_stats(&arrivals, 0, 3), (0, 0));
        assert_eq!(order_stats(&[], 0, 10), (0, 0));
        let st = window_stats_of(1000, Duration::from_millis(10), &arrivals, 1000, 1100, Duration::ZERO);
        assert_eq!((st.sent, st.received, st.duplicates, st.reordered), (10, 9, 1, 1));
        assert_eq!(st.longest_outage, Duration::from_millis(10));
    }

    #[test]
    fn timeline_has_every_loss_run_duplicate_and_reordering() {
        // 0..20 sent at 10 ms; 3..6 and 19 lost, 8 twice, 10 after 11.
        let arrivals = [0, 1, 2, 6, 7, 8, 8, 9, 11, 10, 12, 13, 14, 15, 16, 17, 18];
        let t = timeline_of(1_000, Duration::from_millis(10), &arrivals, 1_200, Duration::ZERO);
        assert_eq!(t.sent, 20);
        assert_eq!(t.lost, vec![(3, 3), (19, 1)]);
        assert_eq!((t.duplicates.clone(), t.reordered.clone()), (vec![8], vec![10]));
        assert_eq!((t.lost_total(), t.at_ms(3)), (4, 1_030));
        // Before the probe started there is nothing to judge.
        assert_eq!(timeline_of(1_000, Duration::from_millis(10), &arrivals, 900, Duration::ZERO).sent, 0);
    }

    #[test]
    fn window_attributes_loss_and_outage() {
        let period = Duration::from_millis(10);
        // 0..100 sent, 40..60 lost (200 ms outage).
        let got: BTreeSet<u64> = (0..100).filter(|s| !(40..60).contains(s)).collect();
        let s = window_stats(1_000, period, &got, 1_000, 2_000, Duration::ZERO);
        assert_eq!((s.sent, s.received, s.longest_outage), (100, 80, Duration::from_millis(200)));
        // A window after the outage sees none of it.
        let s = window_stats(1_000, period, &got, 1_600, 2_000, Duration::ZERO);
        assert_eq!((s.sent, s.received), (40, 40));
        // In-flight packets are not judged.
        let s = window_stats(1_000, period, &got, 1_000, 2_000, Duration::from_millis(100));
        assert_eq!(s.sent, 90);
    }

    #[test]
    fn real_udp_over_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let start = dir.path().join("start");
        let log = dir.path().join("recv");
        let port = 40000 + (std::process::id() % 20000) as u16;
        let l2 = log.clone();
        std::thread::spawn(move || receive(port, &l2));
        std::thread::sleep(Duration::from_millis(50));
        let s2 = start.clone();
        std::thread::spawn(move || send(format!("127.0.0.1:{port}").parse().unwrap(), Duration::from_millis(10), &s2));
        std::thread::sleep(Duration::from_millis(400));
        let (t0, period) = read_start(&start).unwrap();
        let st = window_stats(t0, period, &read_received(&log), t0, now_ms(), Duration::from_millis(50));
        assert!(st.sent >= 25, "{st:?}");
        assert_eq!(st.sent, st.received, "{st:?}");
    }
}
