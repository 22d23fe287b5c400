//! The data path, `rrlab impaird`: bound to one NFQUEUE queue on the WAN node, it asks the [`Scheduler`] about
//! each packet and issues the verdict: a dropped packet gets `NF_DROP` at once; a delivered one is held (its
//! packet id in a timer heap, the kernel keeps the packet) and gets `NF_ACCEPT` at its time, with the modified
//! payload when it is corrupted. NFQUEUE allows verdicts out of order, which is what delay, jitter and reorder
//! need.
//!
//! Duplicates: the accepted original goes on, and a copy of it (TTL already decremented: the FORWARD hook comes
//! after) is sent through a raw `IPPROTO_RAW` socket (`IP_HDRINCL` implied) in the WAN node's namespace. It leaves
//! through the node's OUTPUT path, so it is routed like the original but not queued again. `NF_REPEAT` would not
//! do: it runs the hook again for the same packet, it does not copy it. The kernel completes a pending
//! (offloaded) checksum before it copies a packet to the queue, so the copy's checksums are right.
//!
//! The queue: maximum length [`QUEUE_MAX_LEN`] (packets held for a verdict), fail-open off (a full queue drops),
//! the whole packet copied (range 65535, GSO segmented by the kernel). The rules ([`super::queue_rules`]) have
//! no `--queue-bypass`.
//!
//! The `nfq` crate hides its socket's descriptor; the loop needs it to sleep until a packet comes or the next
//! held packet is due (`ppoll`), so it finds it: the one `NETLINK_NETFILTER` socket that `Queue::open` added.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BTreeSet, BinaryHeap};
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nfq::{Message, Queue, Verdict};

use super::{corrupt_packet, Counters, Decision, Scheduler, SpecFile, QUEUE_MAX_LEN};

/// How often the counters file is written.
pub const COUNTERS_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ImpairdError {
    #[error("{}: {reason}", path.display())]
    Spec { path: PathBuf, reason: String },
    #[error("NFQUEUE queue {queue}: {what}: {source}")]
    Queue { queue: u16, what: &'static str, source: io::Error },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

/// Read a `--spec` file ([`SpecFile`], JSON).
pub fn read_spec(path: &Path) -> Result<SpecFile, ImpairdError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ImpairdError::Spec { path: path.to_path_buf(), reason: e.to_string() })?;
    serde_json::from_str(&text).map_err(|e| ImpairdError::Spec { path: path.to_path_buf(), reason: e.to_string() })
}

/// Write the counters (JSON) atomically: a reader never sees half a file.
pub fn write_counters(path: &Path, c: &Counters) -> Result<(), ImpairdError> {
    let io_err = |source| ImpairdError::Io { what: format!("writing {}", path.display()), source };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let text = serde_json::to_string_pretty(c).expect("counters serialise") + "\n";
    std::fs::write(&tmp, text).map_err(io_err)?;
    std::fs::rename(&tmp, path).map_err(io_err)
}

/// A packet waiting for its time.
struct Held {
    at: Duration,
    seq: u64,
    msg: Message,
    duplicate: bool,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Raw sockets for the duplicates' copies.
struct RawSender {
    v4: RawFd,
    v6: Option<RawFd>,
}

impl RawSender {
    fn open() -> io::Result<RawSender> {
        let v4 = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_RAW) };
        if v4 < 0 {
            return Err(io::Error::last_os_error());
        }
        let v6 = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_RAW) };
        Ok(RawSender { v4, v6: (v6 >= 0).then_some(v6) })
    }

    /// Send `packet` (a whole IP packet) as it is, to its destination address.
    fn send(&self, packet: &[u8]) -> io::Result<()> {
        let sent = match packet.first().map(|b| b >> 4) {
            Some(4) if packet.len() >= 20 => {
                let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_addr.s_addr = u32::from_ne_bytes([packet[16], packet[17], packet[18], packet[19]]);
                unsafe {
                    libc::sendto(
                        self.v4,
                        packet.as_ptr().cast(),
                        packet.len(),
                        0,
                        (&sa as *const libc::sockaddr_in).cast(),
                        std::mem::size_of_val(&sa) as libc::socklen_t,
                    )
                }
            }
            Some(6) if packet.len() >= 40 => {
                let Some(fd) = self.v6 else { return Err(io::Error::from(io::ErrorKind::Unsupported)) };
                let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_addr.s6_addr.copy_from_slice(&packet[24..40]);
                unsafe {
                    libc::sendto(
                        fd,
                        packet.as_ptr().cast(),
                        packet.len(),
                        0,
                        (&sa as *const libc::sockaddr_in6).cast(),
                        std::mem::size_of_val(&sa) as libc::socklen_t,
                    )
                }
            }
            _ => return Err(io::Error::from(io::ErrorKind::InvalidData)),
        };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

impl Drop for RawSender {
    fn drop(&mut self) {
        unsafe {
            libc::close(self.v4);
            if let Some(fd) = self.v6 {
                libc::close(fd);
            }
        }
    }
}

fn sockopt(fd: RawFd, opt: libc::c_int) -> Option<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let r = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, opt, (&mut v as *mut libc::c_int).cast(), &mut len) };
    (r == 0).then_some(v)
}

/// This process's `NETLINK_NETFILTER` sockets.
fn netfilter_fds() -> BTreeSet<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return BTreeSet::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .filter(|&fd| {
            sockopt(fd, libc::SO_DOMAIN) == Some(libc::AF_NETLINK)
                && sockopt(fd, libc::SO_PROTOCOL) == Some(libc::NETLINK_NETFILTER)
        })
        .collect()
}

/// Open the queue, bound and configured, with its socket's descriptor.
fn open_queue(queue: u16) -> Result<(Queue, RawFd), ImpairdError> {
    let err = |what| move |source| ImpairdError::Queue { queue, what, source };
    let before = netfilter_fds();
    let mut q = Queue::open().map_err(err("opening the netfilter socket"))?;
    let fd = netfilter_fds().difference(&before).copied().next().ok_or_else(|| {
        err("finding the queue's socket")(io::Error::other("no new NETLINK_NETFILTER socket in /proc/self/fd"))
    })?;
    q.bind(queue).map_err(err("binding (another impaird on this queue?)"))?;
    q.set_queue_max_len(queue, QUEUE_MAX_LEN).map_err(err("setting the queue's length"))?;
    q.set_fail_open(queue, false).map_err(err("turning fail-open off"))?;
    q.set_nonblocking(true);
    Ok((q, fd))
}

/// The loop's state.
struct Daemon {
    q: Queue,
    sched: Scheduler,
    raw: RawSender,
    heap: BinaryHeap<Reverse<Held>>,
    seq: u64,
    c: Counters,
    start: Instant,
}

impl Daemon {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn verdict(&mut self, mut msg: Message, v: Verdict, duplicate: bool) {
        msg.set_verdict(v);
        let copy = duplicate.then(|| msg.get_payload().to_vec());
        if self.q.verdict(msg).is_err() {
            self.c.errors += 1;
        }
        if let Some(p) = copy {
            match self.raw.send(&p) {
                Ok(()) => self.c.duplicated += 1,
                Err(_) => self.c.errors += 1,
            }
        }
    }

    fn handle(&mut self, mut msg: Message) {
        self.c.seen += 1;
        let now = self.now();
        // A packet larger than the copy range arrives cut: its payload can be neither changed nor copied.
        let whole = msg.get_original_len() <= msg.get_payload().len();
        match self.sched.decide(now, msg.get_original_len()) {
            Decision::Drop => {
                self.c.dropped += 1;
                self.verdict(msg, Verdict::Drop, false);
            }
            Decision::Deliver { at, duplicate, corrupt, reordered } => {
                if let Some(r) = corrupt.filter(|_| whole) {
                    if corrupt_packet(msg.get_payload_mut(), r).is_some() {
                        self.c.corrupted += 1;
                    }
                }
                self.c.reordered += u64::from(reordered);
                let duplicate = duplicate && whole;
                if at <= now {
                    self.verdict(msg, Verdict::Accept, duplicate);
                } else {
                    self.c.delayed += 1;
                    self.seq += 1;
                    self.heap.push(Reverse(Held { at, seq: self.seq, msg, duplicate }));
                }
            }
        }
    }

    /// Receive every packet waiting on the socket.
    fn receive(&mut self, queue: u16) -> Result<(), ImpairdError> {
        loop {
            match self.q.recv() {
                Ok(msg) => self.handle(msg),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The kernel dropped messages (socket buffer full): counted, and the loop goes on.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => self.c.errors += 1,
                Err(source) => return Err(ImpairdError::Queue { queue, what: "receiving", source }),
            }
        }
    }

    /// Accept every held packet due by `until`.
    fn release(&mut self, until: Duration) {
        while self.heap.peek().is_some_and(|Reverse(h)| h.at <= until) {
            let Reverse(h) = self.heap.pop().expect("peeked");
            self.verdict(h.msg, Verdict::Accept, h.duplicate);
        }
        self.c.held = self.heap.len() as u64;
    }
}

/// Sleep until `fd` is readable or `timeout` has passed.
fn wait_readable(fd: RawFd, timeout: Duration) {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let ts = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as _ };
    unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
}

/// Run the data path on NFQUEUE `queue` with the impairment of the `spec` file, writing the counters to
/// `counters` every [`COUNTERS_EVERY`] (first once the queue is bound: a caller can wait for the file), until
/// `stop` is set. Then the held packets are accepted at once, the counters written a last time, and the
/// queue unbound.
pub fn run(queue: u16, spec: &Path, counters: &Path, stop: Arc<AtomicBool>) -> Result<Counters, ImpairdError> {
    let spec = read_spec(spec)?;
    let (q, fd) = open_queue(queue)?;
    let raw = RawSender::open().map_err(|source| ImpairdError::Io { what: "opening a raw socket".into(), source })?;
    eprintln!("rrlab impaird: queue {queue}: {} (seed {})", spec.impairment, spec.seed);
    let mut d = Daemon {
        q,
        sched: Scheduler::new(spec.impairment, spec.seed),
        raw,
        heap: BinaryHeap::new(),
        seq: 0,
        c: Counters::default(),
        start: Instant::now(),
    };
    write_counters(counters, &d.c)?;
    let mut next_write = d.now() + COUNTERS_EVERY;
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        if let Err(e) = d.receive(queue) {
            break Err(e);
        }
        let now = d.now();
        d.release(now);
        if now >= next_write {
            if let Err(e) = write_counters(counters, &d.c) {
                break Err(e);
            }
            next_write = now + COUNTERS_EVERY;
        }
        // Wake for the next packet, the next one due, the next write, or (at the latest) to look at `stop`.
        let mut wake = next_write.min(now + Duration::from_millis(100));
        if let Some(Reverse(h)) = d.heap.peek() {
            wake = wake.min(h.at);
        }
        wait_readable(fd, wake.saturating_sub(d.now()));
    };
    d.release(Duration::MAX);
    let written = write_counters(counters, &d.c);
    let _ = d.q.unbind(queue);
    result.and(written).map(|_| d.c)
}
