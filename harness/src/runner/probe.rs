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
    let p = period.as_millis().max(1) as u64;
    let to_ms = to_ms.saturating_sub(grace.as_millis() as u64);
    if to_ms <= start_ms || to_ms <= from_ms {
        return ProbeStats::default();
    }
    let first = from_ms.saturating_sub(start_ms).div_ceil(p);
    let last = (to_ms - start_ms) / p; // exclusive
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
    ProbeStats { sent, received: got, longest_outage: period * (longest as u32) }
}

#[cfg(test)]
mod tests {
    use super::*;

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
