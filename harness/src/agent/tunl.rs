//! A userspace `tunl0` for hosts whose kernel has no `ipip` module.
//!
//! Calico's IPIP mode routes remote pod blocks as `<block> via <remote node IP> dev tunl0 proto bird
//! onlink`; the kernel `ipip` driver then sends each packet as IPv4 protocol 4 to the *gateway of the
//! route the inner packet took*. Where `ip link add x type ipip` fails, [`Tunl`] plays that driver:
//!
//! * a TUN device (`IFF_TUN | IFF_NO_PI`) named `tunl0` receives what the kernel routes into the tunnel;
//! * the encapsulator looks the inner destination up in [`TunnelRoutes`] (the gateways of the
//!   `… dev tunl0 onlink` routes, kept by the caller because a TUN device never sees the gateway) and
//!   `sendto`s the unchanged inner packet on a `socket(AF_INET, SOCK_RAW, IPPROTO_IPIP)` addressed to
//!   the gateway, so the kernel builds the outer header: protocol 4, source chosen by routing, TTL 64,
//!   TOS 0, DF set when the packet fits the path MTU. Unlike the kernel driver (which copies the inner
//!   DF and answers "frag needed" when the outer packet would not fit the underlay), an outer packet
//!   larger than the underlay MTU is sent fragmented without DF; with MTU 1480 on a 1500 underlay that
//!   never happens;
//! * the decapsulator `recvfrom`s the same raw socket (locally delivered protocol-4 packets, i.e.
//!   after netfilter `INPUT` — Felix's `cali-INPUT` IPIP rules see and filter the outer packets),
//!   strips the outer header and writes the inner IPv4 packet into the TUN device, so the kernel
//!   receives it on `tunl0` and forwards it to the pod's `cali*` veth.
//!
//! Kernel behaviour this relies on (checked by the root test below):
//! * With a raw `IPPROTO_IPIP` socket open, `raw_local_deliver` consumes arriving protocol-4 packets
//!   and the kernel sends no ICMP protocol-unreachable; without one (no `ipip`, no `Tunl`) it does, and
//!   the sender's raw socket then reports `ECONNREFUSED` once on its next call (handled, not fatal).
//! * `rp_filter` is set to 0 on the device (`net.ipv4.conf.<name>.rp_filter`), as a loose tunnel would
//!   be: inner sources whose reverse route is not via `tunl0` are then still accepted unless
//!   `net.ipv4.conf.all.rp_filter` is non-zero (the effective value is the max of `all` and the
//!   device). `all` is left alone: inner packets from remote pod blocks pass strict mode anyway, because
//!   their reverse route is the tunnel route itself. IPv6 is disabled on the device (no link-local
//!   address, router solicitations or MLD reports to drop).
//! * [`Tunl::stop`] (or drop) removes the device — together with every route through it — from whichever
//!   thread it runs on. With [`TunlConfig::persist`] the device is persistent (`TUNSETPERSIST`) until then:
//!   a process that dies without stopping it (calico-node restarted) leaves `tunl0`, its address and its
//!   routes in place, as the kernel's `ipip` device would, and the next [`Tunl::start`] of that name attaches
//!   to it. Without `persist` it disappears when the last descriptor closes.
//! * TUN offloads are off by default, so packets read from the device carry complete checksums and are
//!   never GSO super-packets larger than the device MTU.
//!
//! Sockets and TUN devices belong to the network namespace of the *thread* that creates them: call
//! [`Tunl::start`] on a thread that is in the node's namespace (e.g. after `setns(2)`).
#![cfg(target_os = "linux")]

use std::ffi::CString;
use std::fs;
use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use ipnet::Ipv4Net;

/// How long a worker thread sleeps after an error before trying again.
const POLL_MS: libc::c_int = 100;
/// How long a worker thread waits in `poll(2)` at most: `stop` wakes it at once (an eventfd), so this is
/// only a safety net, long enough that 200 idle tunnels do not wake their threads 4,000 times a second.
const IDLE_WAIT_MS: libc::c_int = 5_000;
/// Large enough for any IPv4 packet.
const BUF_LEN: usize = 65_536;

/// Errors setting up the userspace tunnel.
#[derive(Debug, thiserror::Error)]
pub enum TunlError {
    #[error("invalid interface name {0:?}: 1 to 15 bytes, no '/', ':', whitespace or NUL")]
    InvalidName(String),
    #[error("invalid MTU {0}: must be 68..=65515")]
    InvalidMtu(u32),
    #[error("open /dev/net/tun: {0} (is the tun module available and are we root / CAP_NET_ADMIN?)")]
    OpenTun(#[source] io::Error),
    #[error(
        "create TUN device {name}: {source} (EINVAL means a non-TUN device of that name exists, \
         e.g. the kernel ipip module's fallback tunl0: use the kernel driver then)"
    )]
    CreateTun {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("configure {name} ({what}): {source}")]
    Configure {
        name: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("add address {addr}/32 to {name}: {source}")]
    Address {
        name: String,
        addr: Ipv4Addr,
        #[source]
        source: io::Error,
    },
    #[error("sysctl {path}: {source}")]
    Sysctl {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("open raw IPPROTO_IPIP socket: {0}")]
    RawSocket(#[source] io::Error),
    #[error("spawn tunnel thread: {0}")]
    Spawn(#[source] io::Error),
}

/// Longest-prefix-match table `block -> gateway` mirroring the `… via <gw> dev tunl0 onlink` routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TunnelRoutes {
    /// Sorted by prefix length, longest first; networks are truncated and unique.
    routes: Vec<(Ipv4Net, Ipv4Addr)>,
}

impl TunnelRoutes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the whole table. Host bits are cleared; for a duplicated network the last entry wins.
    pub fn set(&mut self, routes: Vec<(Ipv4Net, Ipv4Addr)>) {
        let mut table: Vec<(Ipv4Net, Ipv4Addr)> = Vec::with_capacity(routes.len());
        for (net, gw) in routes {
            let net = net.trunc();
            match table.iter_mut().find(|(n, _)| *n == net) {
                Some(entry) => entry.1 = gw,
                None => table.push((net, gw)),
            }
        }
        table.sort_by(|(a, _), (b, _)| b.prefix_len().cmp(&a.prefix_len()).then(a.network().cmp(&b.network())));
        self.routes = table;
    }

    /// The gateway of the longest prefix containing `dst`.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.routes.iter().find(|(net, _)| net.contains(&dst)).map(|(_, gw)| *gw)
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Entries, longest prefix first.
    pub fn routes(&self) -> &[(Ipv4Net, Ipv4Addr)] {
        &self.routes
    }
}

/// What to create.
#[derive(Debug, Clone)]
pub struct TunlConfig {
    /// Device name, `tunl0` like Calico's.
    pub name: String,
    /// Device MTU; Calico's IPIP default is 1480 (1500 minus the 20-byte outer header).
    pub mtu: u32,
    /// The /32 tunnel address Felix puts on tunl0 (source of host-to-remote-pod traffic).
    pub address: Option<Ipv4Addr>,
    /// Gateways of the routes through the device; the caller updates it as it programs routes.
    pub routes: Arc<RwLock<TunnelRoutes>>,
    /// The device outlives this process unless [`Tunl::stop`] runs (see the module's notes).
    pub persist: bool,
}

impl TunlConfig {
    /// `tunl0`, MTU 1480, no address.
    pub fn new(routes: Arc<RwLock<TunnelRoutes>>) -> Self {
        Self { name: "tunl0".to_string(), mtu: 1480, address: None, routes, persist: false }
    }
}

/// Packet counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunlStats {
    /// Inner packets sent as protocol 4 to a gateway.
    pub encapsulated: u64,
    /// Protocol-4 packets whose inner packet was injected into the device.
    pub decapsulated: u64,
    /// IPv4 packets routed into the device whose destination has no entry in [`TunnelRoutes`].
    pub no_route: u64,
    /// Dropped in either direction: not IPv4 (also non-IPv4 read from the device), bad header or length.
    pub malformed: u64,
    /// `sendto` on the raw socket or `write` to the device failed (packet dropped).
    pub send_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    encapsulated: AtomicU64,
    decapsulated: AtomicU64,
    no_route: AtomicU64,
    malformed: AtomicU64,
    send_errors: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> TunlStats {
        TunlStats {
            encapsulated: self.encapsulated.load(Ordering::Relaxed),
            decapsulated: self.decapsulated.load(Ordering::Relaxed),
            no_route: self.no_route.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            send_errors: self.send_errors.load(Ordering::Relaxed),
        }
    }
}

/// A running userspace tunl0 (TUN device + raw IPPROTO_IPIP socket + two threads).
#[derive(Debug)]
pub struct Tunl {
    name: String,
    ifindex: u32,
    stop: Arc<AtomicBool>,
    /// Written on `stop`: wakes both threads out of `poll(2)`.
    wake: Arc<OwnedFd>,
    counters: Arc<Counters>,
    threads: Vec<JoinHandle<()>>,
    tun: Option<Arc<OwnedFd>>,
    raw: Option<Arc<OwnedFd>>,
}

impl Tunl {
    /// Creates and configures the device in the calling thread's network namespace and starts the
    /// encapsulation and decapsulation threads.
    pub fn start(cfg: TunlConfig) -> Result<Tunl, TunlError> {
        validate_name(&cfg.name)?;
        if !(68..=65_515).contains(&cfg.mtu) {
            return Err(TunlError::InvalidMtu(cfg.mtu));
        }
        let name = cfg.name.clone();
        let configure = |what: &'static str| {
            let name = name.clone();
            move |source: io::Error| TunlError::Configure { name, what, source }
        };

        // The device lives as long as this descriptor (and the threads' clones) stay open.
        let tun = create_tun(&name, cfg.persist)?;
        let ctl = socket(libc::AF_INET, libc::SOCK_DGRAM, 0).map_err(configure("ioctl socket"))?;
        let ifindex = if_index(&ctl, &name).map_err(configure("SIOCGIFINDEX"))?;
        set_mtu(&ctl, &name, cfg.mtu).map_err(configure("SIOCSIFMTU"))?;

        // Before the device is up, so no IPv6 link-local address or solicitation ever appears.
        let v6 = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
        if fs::metadata(&v6).is_ok() {
            write_sysctl(&v6, "1")?;
        }
        write_sysctl(&format!("/proc/sys/net/ipv4/conf/{name}/rp_filter"), "0")?;

        set_up(&ctl, &name).map_err(configure("SIOCSIFFLAGS up"))?;
        if let Some(addr) = cfg.address {
            add_address(ifindex, addr).map_err(|source| TunlError::Address { name: name.clone(), addr, source })?;
        }

        let raw = socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_IPIP).map_err(TunlError::RawSocket)?;
        // Best effort: a burst of probes should not overflow the default receive buffer.
        let rcvbuf: libc::c_int = 4 << 20;
        // SAFETY: valid fd, pointer to a c_int of the given size.
        unsafe {
            libc::setsockopt(
                raw.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&rcvbuf as *const libc::c_int).cast(),
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }

        let tun = Arc::new(tun);
        let raw = Arc::new(raw);
        let stop = Arc::new(AtomicBool::new(false));
        // SAFETY: eventfd returns a new descriptor or -1.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(TunlError::Configure { name, what: "eventfd", source: io::Error::last_os_error() });
        }
        // SAFETY: `efd` is a fresh descriptor owned by nothing else.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(efd) });
        let counters = Arc::new(Counters::default());
        let mut tunl = Tunl {
            name: name.clone(),
            ifindex,
            stop: stop.clone(),
            wake: wake.clone(),
            counters: counters.clone(),
            threads: Vec::with_capacity(2),
            tun: Some(tun.clone()),
            raw: Some(raw.clone()),
        };

        let encap = {
            let (tun, raw, stop, counters) = (tun.clone(), raw.clone(), stop.clone(), counters.clone());
            let (routes, wake) = (cfg.routes.clone(), wake.clone());
            std::thread::Builder::new()
                .name(format!("{name}-encap"))
                .spawn(move || encap_loop(&tun, &raw, &routes, (&stop, &wake), &counters))
                .map_err(TunlError::Spawn)?
        };
        tunl.threads.push(encap);
        let decap = std::thread::Builder::new()
            .name(format!("{name}-decap"))
            .spawn(move || decap_loop(&tun, &raw, (&stop, &wake), &counters))
            .map_err(TunlError::Spawn)?; // `tunl` is dropped on error: threads stopped, device deleted
        tunl.threads.push(decap);
        Ok(tunl)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn stats(&self) -> TunlStats {
        self.counters.snapshot()
    }

    /// Stops the threads (within one poll interval) and closes the descriptors, which deletes the
    /// device (even a persistent one) and every route through it. Idempotent; also done on drop.
    pub fn stop(&mut self) {
        self.halt();
        if let Some(tun) = self.tun.take() {
            let _ = set_persist(&tun, false);
        }
        self.raw = None;
    }

    /// Stop, leaving a persistent device (its address and routes) for the next [`Tunl::start`] to attach to,
    /// as calico-node exiting leaves the kernel's tunl0.
    pub fn detach(mut self) {
        self.halt();
        self.tun = None;
        self.raw = None;
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd (level-triggered: both threads see it).
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
        for handle in self.threads.drain(..) {
            // A panicked worker has already released its descriptors while unwinding.
            let _ = handle.join();
        }
    }

    pub fn is_running(&self) -> bool {
        self.tun.is_some()
    }
}

impl Drop for Tunl {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Packet handling (pure).

/// Validates an IPv4 packet; returns its length per the header and its destination. `None`:
/// malformed or not IPv4.
fn inner_ipv4(pkt: &[u8]) -> Option<(usize, Ipv4Addr)> {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20 || total < ihl || total > pkt.len() {
        return None;
    }
    Some((total, Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19])))
}

/// Given a packet received on the raw IPPROTO_IPIP socket (outer header included), the inner
/// IPv4 packet. `None`: malformed, or the inner packet is not IPv4.
fn decapsulate(pkt: &[u8]) -> Option<&[u8]> {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 || pkt[9] != libc::IPPROTO_IPIP as u8 {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    if ihl < 20 || ihl > pkt.len() {
        return None;
    }
    let inner = &pkt[ihl..];
    let (len, _) = inner_ipv4(inner)?;
    Some(&inner[..len])
}

// ---------------------------------------------------------------------------------------------
// Threads.

/// Waits for `fd` to be readable (or to have an error to report), or for `wake` (the stop eventfd).
/// `Ok(false)` on wake, timeout or signal.
fn wait_readable(fd: RawFd, wake: RawFd) -> io::Result<bool> {
    let mut pfds = [
        libc::pollfd { fd, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: wake, events: libc::POLLIN, revents: 0 },
    ];
    // SAFETY: two valid pollfds.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), 2, IDLE_WAIT_MS) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(err) };
    }
    Ok(rc > 0 && pfds[1].revents == 0 && pfds[0].revents != 0)
}

fn idle() {
    std::thread::sleep(Duration::from_millis(u64::from(POLL_MS.unsigned_abs())));
}

/// The stop flag and the eventfd that wakes a thread when it is set.
type Stop<'a> = (&'a AtomicBool, &'a OwnedFd);

fn encap_loop(tun: &OwnedFd, raw: &OwnedFd, routes: &RwLock<TunnelRoutes>, stop: Stop, counters: &Counters) {
    let mut buf = vec![0u8; BUF_LEN];
    while !stop.0.load(Ordering::Relaxed) {
        match wait_readable(tun.as_raw_fd(), stop.1.as_raw_fd()) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(_) => {
                idle();
                continue;
            }
        }
        // SAFETY: buf is valid for BUF_LEN bytes.
        let n = unsafe { libc::read(tun.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if !matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) {
                // E.g. the device was deleted under us (`ip link del tunl0`): poll then reports
                // POLLERR forever; stay idle until stopped instead of spinning.
                idle();
            }
            continue;
        }
        if n == 0 {
            continue;
        }
        let pkt = &buf[..n.unsigned_abs()];
        let (len, dst) = match inner_ipv4(pkt) {
            Some(v) => v,
            None => {
                Counters::bump(&counters.malformed);
                continue;
            }
        };
        let gateway = {
            let table = routes.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            table.lookup(dst)
        };
        let Some(gateway) = gateway else {
            Counters::bump(&counters.no_route);
            continue;
        };
        match send_to(raw, &pkt[..len], gateway) {
            Ok(()) => Counters::bump(&counters.encapsulated),
            Err(_) => Counters::bump(&counters.send_errors),
        }
    }
}

fn decap_loop(tun: &OwnedFd, raw: &OwnedFd, stop: Stop, counters: &Counters) {
    let mut buf = vec![0u8; BUF_LEN];
    while !stop.0.load(Ordering::Relaxed) {
        match wait_readable(raw.as_raw_fd(), stop.1.as_raw_fd()) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(_) => {
                idle();
                continue;
            }
        }
        // SAFETY: buf is valid for BUF_LEN bytes; no source address requested.
        let n = unsafe {
            libc::recvfrom(
                raw.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            // EAGAIN/EINTR, or a socket error reported once (ECONNREFUSED after an ICMP
            // protocol-unreachable from a peer without a tunnel, EHOSTUNREACH, ...): keep going.
            continue;
        }
        let inner = match decapsulate(&buf[..n.unsigned_abs()]) {
            Some(inner) => inner,
            None => {
                Counters::bump(&counters.malformed);
                continue;
            }
        };
        // SAFETY: inner is a valid slice.
        let w = unsafe { libc::write(tun.as_raw_fd(), inner.as_ptr().cast(), inner.len()) };
        if w < 0 || w.unsigned_abs() != inner.len() {
            Counters::bump(&counters.send_errors);
        } else {
            Counters::bump(&counters.decapsulated);
        }
    }
}

fn send_to(raw: &OwnedFd, pkt: &[u8], gateway: Ipv4Addr) -> io::Result<()> {
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(gateway.octets()) },
        sin_zero: [0; 8],
    };
    let send = || {
        // SAFETY: pkt and addr are valid for the lengths given.
        let rc = unsafe {
            libc::sendto(
                raw.as_raw_fd(),
                pkt.as_ptr().cast(),
                pkt.len(),
                libc::MSG_DONTWAIT,
                (&addr as *const libc::sockaddr_in).cast(),
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    match send() {
        // A pending error from an earlier ICMP error (ECONNREFUSED after protocol-unreachable, ...)
        // is reported by, and cleared by, the first call that sees it: that packet was not sent.
        Err(err)
            if err.kind() == io::ErrorKind::Interrupted
                || err.raw_os_error() == Some(libc::ECONNREFUSED)
                || err.raw_os_error() == Some(libc::EHOSTUNREACH) =>
        {
            send()
        }
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Device setup (ioctls, netlink, sysctl).

fn validate_name(name: &str) -> Result<(), TunlError> {
    let bad = name.is_empty()
        || name.len() >= libc::IFNAMSIZ
        || name == "."
        || name == ".."
        || name.bytes().any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace());
    if bad {
        Err(TunlError::InvalidName(name.to_string()))
    } else {
        Ok(())
    }
}

fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the returned fd is owned by us.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq_for(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is valid.
    let mut ifr: libc::ifreq = unsafe { mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    ifr
}

fn ioctl_ifreq(fd: &OwnedFd, request: libc::c_ulong, ifr: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: request takes a struct ifreq, which ifr is.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, ifr as *mut libc::ifreq) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn create_tun(name: &str, persist: bool) -> Result<OwnedFd, TunlError> {
    let path = CString::new("/dev/net/tun").map_err(|e| TunlError::OpenTun(io::Error::other(e)))?;
    // SAFETY: valid C string.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if fd < 0 {
        return Err(TunlError::OpenTun(io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor.
    let tun = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut ifr = ifreq_for(name);
    ifr.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    let err = |source| TunlError::CreateTun { name: name.to_string(), source };
    ioctl_ifreq(&tun, libc::TUNSETIFF as libc::c_ulong, &mut ifr).map_err(err)?;
    // Persistent: the device stays when this process dies. Not: if we attached to a leftover persistent
    // device of that name, it goes away with us.
    set_persist(&tun, persist).map_err(err)?;
    Ok(tun)
}

fn set_persist(tun: &OwnedFd, persist: bool) -> io::Result<()> {
    // SAFETY: TUNSETPERSIST takes an integer argument.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETPERSIST as _, u64::from(persist) as libc::c_ulong) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn if_index(ctl: &OwnedFd, name: &str) -> io::Result<u32> {
    let mut ifr = ifreq_for(name);
    ioctl_ifreq(ctl, libc::SIOCGIFINDEX, &mut ifr)?;
    // SAFETY: SIOCGIFINDEX filled the ifindex member.
    let index = unsafe { ifr.ifr_ifru.ifru_ifindex };
    u32::try_from(index).map_err(|_| io::Error::other(format!("bad ifindex {index}")))
}

fn set_mtu(ctl: &OwnedFd, name: &str, mtu: u32) -> io::Result<()> {
    let mut ifr = ifreq_for(name);
    ifr.ifr_ifru.ifru_mtu = libc::c_int::try_from(mtu).map_err(io::Error::other)?;
    ioctl_ifreq(ctl, libc::SIOCSIFMTU, &mut ifr)
}

fn set_up(ctl: &OwnedFd, name: &str) -> io::Result<()> {
    let mut ifr = ifreq_for(name);
    ioctl_ifreq(ctl, libc::SIOCGIFFLAGS, &mut ifr)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    ioctl_ifreq(ctl, libc::SIOCSIFFLAGS, &mut ifr)
}

fn write_sysctl(path: &str, value: &str) -> Result<(), TunlError> {
    fs::write(path, value).map_err(|source| TunlError::Sysctl { path: path.to_string(), source })
}

/// `ip addr replace <addr>/32 dev <ifindex>` over rtnetlink (in this thread's namespace).
fn add_address(ifindex: u32, addr: Ipv4Addr) -> io::Result<()> {
    let nl = socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)?;
    let timeout = libc::timeval { tv_sec: 2, tv_usec: 0 };
    // SAFETY: valid fd, pointer to a timeval of the given size.
    unsafe {
        libc::setsockopt(
            nl.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_REPLACE) as u16;
    let mut msg: Vec<u8> = Vec::with_capacity(40);
    msg.extend_from_slice(&40u32.to_ne_bytes()); // nlmsg_len
    msg.extend_from_slice(&libc::RTM_NEWADDR.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id
                                                // struct ifaddrmsg: family, prefixlen, flags, scope (universe), index
    msg.extend_from_slice(&[libc::AF_INET as u8, 32, 0, 0]);
    msg.extend_from_slice(&ifindex.to_ne_bytes());
    for attr in [libc::IFA_LOCAL, libc::IFA_ADDRESS] {
        msg.extend_from_slice(&8u16.to_ne_bytes());
        msg.extend_from_slice(&attr.to_ne_bytes());
        msg.extend_from_slice(&addr.octets());
    }
    // SAFETY: msg is valid for its length; the kernel is the default destination.
    let rc = unsafe { libc::send(nl.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 4096];
    // SAFETY: buf is valid for its length.
    let n = unsafe { libc::recv(nl.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let reply = &buf[..n.unsigned_abs()];
    if reply.len() < 20 {
        return Err(io::Error::other("short rtnetlink reply"));
    }
    let ty = u16::from_ne_bytes([reply[4], reply[5]]);
    if i32::from(ty) != libc::NLMSG_ERROR {
        return Err(io::Error::other(format!("unexpected rtnetlink reply type {ty}")));
    }
    let errno = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
    if errno != 0 {
        return Err(io::Error::from_raw_os_error(-errno));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("test prefix")
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    #[test]
    fn tunnel_routes_longest_prefix_wins() {
        let mut t = TunnelRoutes::new();
        assert_eq!(t.lookup(ip("172.31.2.5")), None);
        t.set(vec![
            (net("172.31.0.0/16"), ip("10.231.0.9")),
            (net("172.31.2.0/26"), ip("10.231.0.2")),
            (net("172.31.2.4/30"), ip("10.231.0.3")),
            (net("172.31.1.7/26"), ip("10.231.0.1")), // host bits cleared
            (net("172.31.2.0/26"), ip("10.231.0.4")), // duplicate: last wins
        ]);
        assert_eq!(t.len(), 4);
        assert_eq!(t.lookup(ip("172.31.2.5")), Some(ip("10.231.0.3")));
        assert_eq!(t.lookup(ip("172.31.2.9")), Some(ip("10.231.0.4")));
        assert_eq!(t.lookup(ip("172.31.1.1")), Some(ip("10.231.0.1")));
        assert_eq!(t.lookup(ip("172.31.9.9")), Some(ip("10.231.0.9")));
        assert_eq!(t.lookup(ip("10.1.1.1")), None);
        t.set(vec![]);
        assert!(t.is_empty());
        assert_eq!(t.lookup(ip("172.31.2.5")), None);
    }

    fn ipv4_packet(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let total = u16::try_from(20 + payload.len()).expect("small packet");
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn parses_and_decapsulates() {
        let inner = ipv4_packet(1, [172, 31, 1, 5], [172, 31, 2, 5], &[8, 0, 1, 2]);
        assert_eq!(inner_ipv4(&inner), Some((24, ip("172.31.2.5"))));
        // Trailing bytes beyond the IPv4 total length are ignored.
        let mut padded = inner.clone();
        padded.extend_from_slice(&[0, 0]);
        assert_eq!(inner_ipv4(&padded), Some((24, ip("172.31.2.5"))));
        // IPv6, short, truncated.
        assert_eq!(inner_ipv4(&[0x60; 40]), None);
        assert_eq!(inner_ipv4(&inner[..19]), None);
        assert_eq!(inner_ipv4(&inner[..22]), None);

        let outer = ipv4_packet(4, [10, 231, 0, 1], [10, 231, 0, 2], &padded);
        assert_eq!(decapsulate(&outer), Some(&inner[..]));
        let not_ipip = ipv4_packet(17, [10, 231, 0, 1], [10, 231, 0, 2], &inner);
        assert_eq!(decapsulate(&not_ipip), None);
        let v6_inside = ipv4_packet(4, [10, 231, 0, 1], [10, 231, 0, 2], &[0x60; 40]);
        assert_eq!(decapsulate(&v6_inside), None);
    }

    #[test]
    fn rejects_bad_config() {
        assert!(matches!(validate_name(""), Err(TunlError::InvalidName(_))));
        assert!(matches!(validate_name("a-very-long-name0"), Err(TunlError::InvalidName(_))));
        assert!(matches!(validate_name("a/b"), Err(TunlError::InvalidName(_))));
        assert!(validate_name("tunl0").is_ok());
        let mut cfg = TunlConfig::new(Arc::new(RwLock::new(TunnelRoutes::new())));
        cfg.mtu = 10;
        assert!(matches!(Tunl::start(cfg), Err(TunlError::InvalidMtu(10))));
    }

    // -----------------------------------------------------------------------------------------
    // Root test: two "nodes" (network namespaces) joined by a veth, one Calico-plumbed pod each,
    // a userspace tunl0 in each node; real IP-in-IP on the wire, filtered by iptables.

    use std::process::Command;
    use std::time::Instant;

    struct Lab {
        pid: u32,
        namespaces: Vec<String>,
    }

    impl Lab {
        fn ns(&self, which: &str) -> String {
            format!("rrtun-{which}-{}", self.pid)
        }

        fn add_ns(&mut self, which: &str) {
            let name = self.ns(which);
            // Registered before creation so that a half-created namespace is cleaned up too.
            self.namespaces.push(name.clone());
            run(&["ip", "netns", "add", &name]);
            run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        }
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            for ns in self.namespaces.iter().rev() {
                // Deleting a namespace deletes its veth ends (and their peers) too.
                let _ = Command::new("ip").args(["netns", "del", ns]).output();
            }
        }
    }

    fn try_run(args: &[&str]) -> Result<String, String> {
        let out = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{}: {e}", args.join(" ")))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "`{}` failed ({}): {}{}",
                args.join(" "),
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn run(args: &[&str]) -> String {
        try_run(args).unwrap_or_else(|e| panic!("{e}"))
    }

    fn in_ns(ns: &str, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        run(&full)
    }

    /// Ping from a namespace; returns (success, output).
    fn ping(ns: &str, count: &str, dst: &str) -> (bool, String) {
        let started = Instant::now();
        let r = try_run(&["ip", "netns", "exec", ns, "ping", "-n", "-c", count, "-W", "1", dst]);
        let (ok, text) = match r {
            Ok(s) => (true, s),
            Err(s) => (false, s),
        };
        let summary = text.lines().find(|l| l.contains("transmitted")).unwrap_or("(no summary)").to_string();
        eprintln!("ping {ns} -> {dst}: {summary} [{:?}]", started.elapsed());
        (ok, summary)
    }

    /// Packet counter of rule `num` in `chain` of the filter table.
    fn rule_packets(ns: &str, chain: &str, num: u32) -> u64 {
        let out = in_ns(ns, &["iptables", "-w", "-L", chain, &num.to_string(), "-n", "-v", "-x"]);
        out.split_whitespace()
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("cannot parse counter of {chain} {num} in {ns}: {out:?}"))
    }

    fn start_in_netns(ns: &str, cfg: TunlConfig) -> Tunl {
        let path = format!("/var/run/netns/{ns}");
        let handle = std::thread::spawn(move || -> Result<Tunl, String> {
            let file = fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
            // SAFETY: valid namespace fd; only this short-lived thread changes namespace.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns {path}: {}", io::Error::last_os_error()));
            }
            Tunl::start(cfg).map_err(|e| format!("Tunl::start in {path}: {e}"))
        });
        match handle.join() {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("tunl start thread panicked"),
        }
    }

    /// Host side of Calico's pod plumbing: veth `cali-<x>` with proxy ARP, `<ip>/32` + `default via
    /// 169.254.1.1` in the pod, `<ip> dev cali-<x> scope link` on the host.
    fn plumb_pod(host: &str, pod: &str, veth: &str, pod_ip: &str) {
        run(&["ip", "-n", host, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod]);
        run(&["ip", "-n", host, "link", "set", veth, "up"]);
        in_ns(
            host,
            &[
                "sysctl",
                "-q",
                "-w",
                &format!("net.ipv4.conf.{veth}.proxy_arp=1"),
                &format!("net.ipv4.neigh.{veth}.proxy_delay=0"),
            ],
        );
        run(&["ip", "-n", host, "route", "add", &format!("{pod_ip}/32"), "dev", veth, "scope", "link"]);
        run(&["ip", "-n", pod, "addr", "add", &format!("{pod_ip}/32"), "dev", "eth0"]);
        run(&["ip", "-n", pod, "link", "set", "eth0", "up"]);
        run(&["ip", "-n", pod, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"]);
        run(&["ip", "-n", pod, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"]);
    }

    #[test]
    fn tunl_carries_real_ipip_between_namespaces() {
        let started = Instant::now();
        // SAFETY: plain syscall.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(euid, 0, "tunl test needs root (CAP_NET_ADMIN, netns, /dev/net/tun); euid = {euid}");
        assert!(
            std::path::Path::new("/dev/net/tun").exists(),
            "tunl test needs /dev/net/tun (the tun module); it is missing"
        );

        let mut lab = Lab { pid: std::process::id(), namespaces: Vec::new() };
        for which in ["a", "b", "a-pod", "b-pod"] {
            lab.add_ns(which);
        }
        let (a, b, a_pod, b_pod) = (lab.ns("a"), lab.ns("b"), lab.ns("a-pod"), lab.ns("b-pod"));

        // Underlay.
        run(&["ip", "-n", &a, "link", "add", "eth-b", "type", "veth", "peer", "name", "eth-a", "netns", &b]);
        run(&["ip", "-n", &a, "addr", "add", "10.231.0.1/24", "dev", "eth-b"]);
        run(&["ip", "-n", &b, "addr", "add", "10.231.0.2/24", "dev", "eth-a"]);
        run(&["ip", "-n", &a, "link", "set", "eth-b", "up"]);
        run(&["ip", "-n", &b, "link", "set", "eth-a", "up"]);
        for host in [&a, &b] {
            // Like a systemd host: strict reverse-path filtering everywhere, to show tunl0 does not
            // need `all` relaxed.
            in_ns(host, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=1"]);
            // Proxy ARP answers for 169.254.1.1 only if the host has a unicast route to it through
            // another device (a calico-node host has its default route); these nodes have none.
            run(&["ip", "-n", host, "route", "add", "169.254.1.1/32", "dev", "lo"]);
        }
        plumb_pod(&a, &a_pod, "cali-a", "172.31.1.5");
        plumb_pod(&b, &b_pod, "cali-b", "172.31.2.5");

        // Counters in B: protocol 4 arriving, ICMP protocol-unreachable leaving.
        in_ns(&b, &["iptables", "-w", "-A", "INPUT", "-p", "4"]);
        in_ns(&b, &["iptables", "-w", "-A", "OUTPUT", "-p", "icmp", "--icmp-type", "3/2"]);
        in_ns(&a, &["iptables", "-w", "-A", "OUTPUT", "-p", "4"]);

        let routes_a = Arc::new(RwLock::new(TunnelRoutes::new()));
        let routes_b = Arc::new(RwLock::new(TunnelRoutes::new()));
        let mut tunl_a =
            start_in_netns(&a, TunlConfig { address: Some(ip("172.31.1.1")), ..TunlConfig::new(routes_a.clone()) });
        let link = in_ns(&a, &["ip", "-d", "addr", "show", "tunl0"]);
        eprintln!("A tunl0:\n{link}");
        assert!(link.contains("mtu 1480") && link.contains("172.31.1.1/32"), "{link}");
        assert!(link.contains(",UP") || link.contains("<UP") || link.contains(",UP,"), "{link}");
        let rp = in_ns(&a, &["sysctl", "-n", "net.ipv4.conf.tunl0.rp_filter"]);
        assert_eq!(rp.trim(), "0", "rp_filter on tunl0 in A");
        run(&[
            "ip",
            "-n",
            &a,
            "route",
            "add",
            "172.31.2.0/26",
            "via",
            "10.231.0.2",
            "dev",
            "tunl0",
            "proto",
            "bird",
            "onlink",
        ]);

        // 1. Kernel route but no TunnelRoutes entry: counted as no_route, nothing on the wire.
        let (ok, _) = ping(&a_pod, "1", "172.31.2.5");
        assert!(!ok, "ping must fail without a tunnel route entry");
        assert!(tunl_a.stats().no_route >= 1, "{:?}", tunl_a.stats());
        assert_eq!(rule_packets(&a, "OUTPUT", 1), 0, "no protocol-4 packet may leave A yet");

        // 2. Encapsulated, but B has no tunnel: the kernel answers protocol-unreachable.
        routes_a.write().unwrap_or_else(|p| p.into_inner()).set(vec![(net("172.31.2.0/26"), ip("10.231.0.2"))]);
        let (ok, _) = ping(&a_pod, "1", "172.31.2.5");
        assert!(!ok, "ping must fail while B has no tunnel");
        let ipip_in_b = rule_packets(&b, "INPUT", 1);
        let unreach_without = rule_packets(&b, "OUTPUT", 1);
        eprintln!("B without tunnel: proto-4 in = {ipip_in_b}, ICMP proto-unreachable out = {unreach_without}");
        assert!(ipip_in_b >= 1, "protocol 4 must arrive in B");
        assert!(unreach_without >= 1, "without a raw IPIP socket B's kernel sends protocol-unreachable");

        // 3. Both tunnels up.
        let mut tunl_b =
            start_in_netns(&b, TunlConfig { address: Some(ip("172.31.2.1")), ..TunlConfig::new(routes_b.clone()) });
        run(&[
            "ip",
            "-n",
            &b,
            "route",
            "add",
            "172.31.1.0/26",
            "via",
            "10.231.0.1",
            "dev",
            "tunl0",
            "proto",
            "bird",
            "onlink",
        ]);
        routes_b.write().unwrap_or_else(|p| p.into_inner()).set(vec![(net("172.31.1.0/26"), ip("10.231.0.1"))]);
        eprintln!("A routes:\n{}", in_ns(&a, &["ip", "route"]));

        let before_in_b = rule_packets(&b, "INPUT", 1);
        let (ok, summary) = ping(&a_pod, "3", "172.31.2.5");
        assert!(ok, "pod A -> pod B through the userspace tunnels: {summary}");
        assert!(summary.contains("3 received"), "{summary}");
        let ipip_in_b = rule_packets(&b, "INPUT", 1) - before_in_b;
        let ipip_out_a = rule_packets(&a, "OUTPUT", 1);
        let unreach_with = rule_packets(&b, "OUTPUT", 1) - unreach_without;
        eprintln!(
            "with tunnels: proto-4 into B (INPUT -p 4) = {ipip_in_b}, proto-4 out of A (OUTPUT -p 4) = {ipip_out_a}, \
             new ICMP proto-unreachable from B = {unreach_with}"
        );
        assert!(ipip_in_b >= 3, "the echo requests must reach B as protocol 4");
        assert_eq!(unreach_with, 0, "with a raw IPIP socket open, no protocol-unreachable");

        // Host to remote pod: source is A's tunl0 address.
        let (ok, summary) = ping(&a, "1", "172.31.2.5");
        assert!(ok, "host A (tunl0 172.31.1.1) -> pod B: {summary}");
        let sa = tunl_a.stats();
        let sb = tunl_b.stats();
        eprintln!("stats A {sa:?}\nstats B {sb:?}");
        assert!(sa.encapsulated >= 5 && sa.decapsulated >= 4, "{sa:?}");
        assert!(sb.encapsulated >= 4 && sb.decapsulated >= 4, "{sb:?}");
        assert_eq!(sa.send_errors + sb.send_errors, 0);

        // 4. Felix's "Drop IPIP packets from non-Calico hosts": the outer packets are filtered.
        in_ns(&b, &["iptables", "-w", "-A", "INPUT", "-p", "4", "-j", "DROP"]);
        let decap_b = tunl_b.stats().decapsulated;
        let (ok, summary) = ping(&a_pod, "2", "172.31.2.5");
        assert!(!ok, "ping must fail once B drops protocol 4: {summary}");
        let dropped = rule_packets(&b, "INPUT", 2);
        eprintln!("DROP -p 4 in B: {dropped} packets");
        assert!(dropped >= 2, "the DROP rule must have matched the echo requests");
        assert_eq!(tunl_b.stats().decapsulated, decap_b, "nothing may get past INPUT");

        // 5. Stop: threads end and the devices (with their routes) disappear.
        let t = Instant::now();
        tunl_a.stop();
        tunl_b.stop();
        eprintln!("stopped both tunnels in {:?}", t.elapsed());
        assert!(t.elapsed() < Duration::from_secs(2));
        for host in [&a, &b] {
            let links = in_ns(host, &["ip", "-o", "link"]);
            assert!(!links.contains("tunl0"), "tunl0 left behind in {host}: {links}");
        }
        drop(lab);
        let left = run(&["ip", "netns", "list"]);
        assert!(!left.contains(&format!("-{}", std::process::id())), "namespaces left: {left}");
        eprintln!("total {:?}", started.elapsed());
    }
}
