//! A node's kernel routes read through rtnetlink (an `RTM_GETROUTE` dump on a NETLINK_ROUTE socket opened
//! inside the node's network namespace), as `ip -j route show table main` prints them: no process per read,
//! which is what bounded observation of large twin labs. The socket stays in the namespace it was opened in;
//! readers are kept per namespace path ([`read_main_table`]) and reopened when a read fails (a restarted
//! container has a new namespace).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::observe::{KernelRoute, KernelRouteType, Prefix, Realms};

/// A NETLINK_ROUTE socket made inside the namespace at `netns` (`/var/run/netns/<name>`, `/proc/<pid>/ns/net`)
/// and set up there by `setup`: a short-lived thread enters the namespace, so this process's own is never
/// changed; the socket stays in the namespace it was made in.
fn in_netns(netns: &Path, setup: fn(&mut Socket) -> io::Result<()>) -> io::Result<Socket> {
    let p = netns.to_path_buf();
    std::thread::spawn(move || -> io::Result<Socket> {
        let f = std::fs::File::open(&p)?;
        // SAFETY: setns on a valid namespace fd, in a thread that exits right after.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut s = Socket::new(NETLINK_ROUTE)?;
        setup(&mut s)?;
        Ok(s)
    })
    .join()
    .map_err(|_| io::Error::other("the netlink thread panicked"))?
}

/// A NETLINK_ROUTE socket in one network namespace.
pub struct RouteReader {
    sock: Socket,
    seq: u32,
}

impl RouteReader {
    /// Open a socket inside the namespace at `netns` (`/var/run/netns/<name>`, `/proc/<pid>/ns/net`): a
    /// short-lived thread enters it, so this process's own namespace is never changed.
    pub fn open(netns: &Path) -> io::Result<RouteReader> {
        in_netns(netns, |s| {
            s.bind_auto()?;
            s.connect(&SocketAddr::new(0, 0))
        })
        .map(|sock| RouteReader { sock, seq: 0 })
    }

    /// A socket in this thread's own namespace (the agent, which runs inside its node).
    pub fn here() -> io::Result<RouteReader> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(RouteReader { sock, seq: 0 })
    }

    /// Send one request with the next sequence number.
    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | flags;
        hdr.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(hdr, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf[..]);
        self.sock.send(&buf[..], 0)?;
        Ok(())
    }

    fn dump(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.send(msg, NLM_F_DUMP)?;
        let mut out = Vec::new();
        let mut rx = Vec::with_capacity(1 << 16);
        loop {
            rx.clear();
            let size = self.sock.recv(&mut rx, 0)?;
            let mut offset = 0;
            while offset < size {
                let m = <NetlinkMessage<RouteNetlinkMessage>>::deserialize(&rx[offset..size])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = m.header.length as usize;
                match m.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        return Err(io::Error::other(format!("netlink error: {e:?}")));
                    }
                    NetlinkPayload::InnerMessage(inner) if m.header.sequence_number == self.seq => out.push(inner),
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }

    /// Send one request and wait for its acknowledgement (NLM_F_ACK): Ok, or the kernel's error.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.send(msg, netlink_packet_core::NLM_F_ACK | flags)?;
        let mut rx = Vec::with_capacity(1 << 16);
        loop {
            rx.clear();
            let size = self.sock.recv(&mut rx, 0)?;
            let mut offset = 0;
            while offset < size {
                let m = <NetlinkMessage<RouteNetlinkMessage>>::deserialize(&rx[offset..size])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = m.header.length as usize;
                if m.header.sequence_number == self.seq {
                    if let NetlinkPayload::Error(e) = &m.payload {
                        return match e.code {
                            None => Ok(()),
                            Some(c) => Err(io::Error::from_raw_os_error(-c.get())),
                        };
                    }
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }

    /// Install (replace) or remove one route.
    pub fn program(&mut self, op: &RouteOp, ifindex: &HashMap<String, u32>) -> io::Result<()> {
        let r = &op.route;
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = r.dst.prefix_len();
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Bird;
        m.header.scope = if r.blackhole || r.gateway.is_some() { RouteScope::Universe } else { RouteScope::Link };
        m.header.kind = if r.blackhole { RouteType::BlackHole } else { RouteType::Unicast };
        if r.onlink {
            m.header.flags = RouteFlags::Onlink;
        }
        m.attributes.push(RouteAttribute::Destination(RouteAddress::Inet(r.dst.network())));
        if let Some(gw) = r.gateway {
            m.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
        }
        if let Some(dev) = &r.dev {
            let i =
                ifindex.get(dev).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no device {dev}")))?;
            m.attributes.push(RouteAttribute::Oif(*i));
        }
        if op.delete {
            self.request(RouteNetlinkMessage::DelRoute(m), 0)
        } else {
            let create_replace = netlink_packet_core::NLM_F_CREATE | netlink_packet_core::NLM_F_REPLACE;
            self.request(RouteNetlinkMessage::NewRoute(m), create_replace)
        }
    }

    /// The namespace's interfaces: name → index.
    pub fn ifindex(&mut self) -> io::Result<HashMap<String, u32>> {
        Ok(self.links()?.into_iter().map(|(i, n)| (n, i)).collect())
    }

    /// The namespace's interfaces: index → name.
    pub fn links(&mut self) -> io::Result<HashMap<u32, String>> {
        let msgs = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some((l.header.index, n.clone())),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// The IPv4 main table, as `ip -j route show table main` prints it.
    pub fn main_table(&mut self) -> io::Result<Vec<KernelRoute>> {
        let names = self.links()?;
        let mut req = RouteMessage::default();
        req.header.address_family = AddressFamily::Inet;
        let msgs = self.dump(RouteNetlinkMessage::GetRoute(req))?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(r),
                _ => None,
            })
            .filter(|r| table_of(r) == u32::from(RouteHeader::RT_TABLE_MAIN))
            .filter_map(|r| kernel_route(r, &names))
            .collect())
    }
}

/// A route the agent programs as Calico's BIRD fork would (`proto bird`, main table), read from the `ip route`
/// line the agent keeps for it: `[blackhole ]<dst> [via <gw>] [dev <dev>] proto bird [onlink]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdRoute {
    pub dst: ipnet::Ipv4Net,
    pub blackhole: bool,
    pub gateway: Option<std::net::Ipv4Addr>,
    pub dev: Option<String>,
    pub onlink: bool,
}

impl BirdRoute {
    /// Read one of the agent's route lines; None for any other form (those go through `ip -batch`).
    pub fn parse(line: &str) -> Option<BirdRoute> {
        let mut w = line.split_whitespace().peekable();
        let blackhole = w.peek() == Some(&"blackhole");
        if blackhole {
            w.next();
        }
        let dst: ipnet::Ipv4Net = w.next()?.parse().ok()?;
        let mut r = BirdRoute { dst, blackhole, gateway: None, dev: None, onlink: false };
        let mut proto = false;
        while let Some(t) = w.next() {
            match t {
                "via" => r.gateway = Some(w.next()?.parse().ok()?),
                "dev" => r.dev = Some(w.next()?.to_string()),
                "proto" => proto = w.next()? == "bird",
                "onlink" => r.onlink = true,
                _ => return None,
            }
        }
        proto.then_some(r)
    }
}

/// One change of the FIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOp {
    pub delete: bool,
    pub route: BirdRoute,
}

/// Route change events of this namespace (the `RTNLGRP_IPV4_ROUTE` multicast group), read without blocking.
pub struct RouteEvents {
    sock: Socket,
    /// A main-table route not BIRD's (the node's underlay, e.g. the route to the other site) changed since
    /// [`RouteEvents::take_underlay_changed`] last returned true.
    underlay_changed: bool,
}

impl std::os::fd::AsRawFd for RouteEvents {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }
}

impl RouteEvents {
    /// Subscribe in this thread's namespace.
    pub fn subscribe() -> io::Result<RouteEvents> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, 0))?;
        // RTNLGRP_IPV4_ROUTE = 7 (linux/rtnetlink.h).
        sock.add_membership(7)?;
        sock.set_non_blocking(true)?;
        Ok(RouteEvents { sock, underlay_changed: true })
    }

    /// The destinations of `table` added, changed or removed since the last call (drains what is queued);
    /// None when events were lost (an overrun socket): then everything may have changed.
    pub fn changed(&mut self, table: u32) -> Option<std::collections::BTreeSet<Prefix>> {
        let mut changed = std::collections::BTreeSet::new();
        let mut rx = Vec::with_capacity(1 << 16);
        loop {
            rx.clear();
            let size = match self.sock.recv(&mut rx, 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(changed),
                Err(_) => {
                    self.underlay_changed = true;
                    return None;
                }
            };
            let mut offset = 0;
            while offset < size {
                let Ok(m) = <NetlinkMessage<RouteNetlinkMessage>>::deserialize(&rx[offset..size]) else { return None };
                if let NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r),
                ) = &m.payload
                {
                    if table_of(r) == table {
                        if let Some(k) = kernel_route(r, &HashMap::new()) {
                            changed.insert(k.dst);
                        }
                    } else if table_of(r) == u32::from(RouteHeader::RT_TABLE_MAIN)
                        && r.header.protocol != RouteProtocol::Bird
                    {
                        self.underlay_changed = true;
                    }
                }
                let len = m.header.length as usize;
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}

impl RouteEvents {
    /// Whether the underlay changed since the last call that returned true (true at first, and after lost
    /// events); call after [`RouteEvents::changed`].
    pub fn take_underlay_changed(&mut self) -> bool {
        std::mem::take(&mut self.underlay_changed)
    }
}

fn table_of(r: &RouteMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| if let RouteAttribute::Table(t) = a { Some(*t) } else { None })
        .unwrap_or(u32::from(r.header.table))
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    }
}

/// iproute2's name of a route protocol (`/etc/iproute2/rt_protos`); None for `boot`, which `ip route` hides.
pub fn protocol_name(p: RouteProtocol) -> Option<String> {
    Some(match p {
        RouteProtocol::Boot => return None,
        RouteProtocol::Unspec => "unspec".into(),
        RouteProtocol::IcmpRedirect => "redirect".into(),
        RouteProtocol::Kernel => "kernel".into(),
        RouteProtocol::Static => "static".into(),
        RouteProtocol::Gated => "gated".into(),
        RouteProtocol::Ra => "ra".into(),
        RouteProtocol::Mrt => "mrt".into(),
        RouteProtocol::Zebra => "zebra".into(),
        RouteProtocol::Bird => "bird".into(),
        RouteProtocol::DnRouted => "dnrouted".into(),
        RouteProtocol::Xorp => "xorp".into(),
        RouteProtocol::Ntk => "ntk".into(),
        RouteProtocol::Dhcp => "dhcp".into(),
        RouteProtocol::KeepAlived => "keepalived".into(),
        RouteProtocol::Babel => "babel".into(),
        RouteProtocol::Bgp => "bgp".into(),
        RouteProtocol::Isis => "isis".into(),
        RouteProtocol::Ospf => "ospf".into(),
        RouteProtocol::Rip => "rip".into(),
        RouteProtocol::Eigrp => "eigrp".into(),
        other => u8::from(other).to_string(),
    })
}

/// iproute2's name of a scope; None for `global`, which `ip route` hides.
pub fn scope_name(s: RouteScope) -> Option<String> {
    Some(match s {
        RouteScope::Universe => return None,
        RouteScope::Site => "site".into(),
        RouteScope::Link => "link".into(),
        RouteScope::Host => "host".into(),
        RouteScope::NoWhere => "nowhere".into(),
        other => u8::from(other).to_string(),
    })
}

fn route_type(t: RouteType) -> KernelRouteType {
    match t {
        RouteType::Unicast => KernelRouteType::Unicast,
        RouteType::Local => KernelRouteType::Local,
        RouteType::Broadcast => KernelRouteType::Broadcast,
        RouteType::Anycast => KernelRouteType::Anycast,
        RouteType::Multicast => KernelRouteType::Multicast,
        RouteType::BlackHole => KernelRouteType::Blackhole,
        RouteType::Unreachable => KernelRouteType::Unreachable,
        RouteType::Prohibit => KernelRouteType::Prohibit,
        RouteType::Throw => KernelRouteType::Throw,
        RouteType::Nat => KernelRouteType::Nat,
        other => KernelRouteType::Other(u8::from(other).to_string()),
    }
}

fn flag_names(f: RouteFlags) -> Vec<String> {
    let mut v = Vec::new();
    for (flag, name) in [
        (RouteFlags::Dead, "dead"),
        (RouteFlags::Onlink, "onlink"),
        (RouteFlags::Pervasive, "pervasive"),
        (RouteFlags::Linkdown, "linkdown"),
        (RouteFlags::Unresolved, "unresolved"),
    ] {
        if f.contains(flag) {
            v.push(name.to_string());
        }
    }
    v
}

/// One dumped route as `ip -j route` prints it (None: not an IPv4/IPv6 unicast-family route).
pub fn kernel_route(r: &RouteMessage, names: &HashMap<u32, String>) -> Option<KernelRoute> {
    let dst_addr =
        r.attributes.iter().find_map(|a| if let RouteAttribute::Destination(d) = a { ip_of(d) } else { None });
    let dst = match (dst_addr, r.header.address_family) {
        (Some(a), _) => Prefix { addr: a, len: r.header.destination_prefix_length },
        (None, AddressFamily::Inet) => Prefix { addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), len: 0 },
        (None, AddressFamily::Inet6) => Prefix { addr: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), len: 0 },
        _ => return None,
    };
    let mut k = crate::observe::KernelRoute::from_parts(route_type(r.header.kind), dst);
    k.protocol = protocol_name(r.header.protocol);
    k.scope = scope_name(r.header.scope);
    k.flags = flag_names(r.header.flags);
    let table = table_of(r);
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        k.table = Some(table.to_string());
    }
    for a in &r.attributes {
        match a {
            RouteAttribute::Gateway(g) => k.gateway = ip_of(g),
            RouteAttribute::PrefSource(p) => k.prefsrc = ip_of(p),
            RouteAttribute::Oif(i) => k.dev = Some(names.get(i).cloned().unwrap_or_else(|| format!("if{i}"))),
            RouteAttribute::Priority(p) => k.metric = Some(*p),
            RouteAttribute::Realm(rr) => {
                let n = |x: u16| (x != 0).then(|| x.to_string());
                k.realms = Some(Realms { from: n(rr.source), to: n(rr.destination) });
            }
            _ => {}
        }
    }
    Some(k)
}

/// Readers by (lab, namespace path); each behind its own lock, so that nodes are read concurrently.
type Readers = Mutex<HashMap<(String, PathBuf), Arc<Mutex<RouteReader>>>>;

fn readers() -> &'static Readers {
    static R: OnceLock<Readers> = OnceLock::new();
    R.get_or_init(Readers::default)
}

/// The main table of lab `lab`'s namespace at `netns`, through a kept reader (opened on first use, reopened
/// once when a read fails).
pub fn read_main_table(lab: &str, netns: &Path) -> io::Result<Vec<KernelRoute>> {
    let key = (lab.to_string(), netns.to_path_buf());
    let poisoned = || io::Error::other("netlink readers poisoned");
    let kept = readers().lock().map_err(|_| poisoned())?.get(&key).cloned();
    if let Some(r) = kept {
        if let Ok(v) = r.lock().map_err(|_| poisoned())?.main_table() {
            return Ok(v);
        }
    }
    let mut r = RouteReader::open(netns)?;
    let v = r.main_table()?;
    readers().lock().map_err(|_| poisoned())?.insert(key, Arc::new(Mutex::new(r)));
    Ok(v)
}

/// Close the readers of a lab's namespaces (before it goes down: an open socket would keep a deleted
/// namespace alive).
pub fn forget(lab: &str) {
    if let Ok(mut g) = readers().lock() {
        g.retain(|(l, _), _| l != lab);
    }
}

/// Whether a route message is one BIRD's kernel protocol (or the twin's agent, as Calico's BIRD fork) put in
/// the main table: the changes that make up a node's convergence.
fn is_bird_main(r: &RouteMessage) -> bool {
    table_of(r) == u32::from(RouteHeader::RT_TABLE_MAIN) && r.header.protocol == RouteProtocol::Bird
}

/// How many BIRD main-table route changes (added, replaced or removed) a buffer of netlink messages holds.
pub fn bird_main_changes(buf: &[u8]) -> usize {
    let mut n = 0;
    let mut offset = 0;
    while offset < buf.len() {
        let Ok(m) = <NetlinkMessage<RouteNetlinkMessage>>::deserialize(&buf[offset..]) else { break };
        if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r)) =
            &m.payload
        {
            if is_bird_main(r) {
                n += 1;
            }
        }
        let len = m.header.length as usize;
        if len == 0 {
            break;
        }
        offset += len;
    }
    n
}

/// When each node's FIB last changed, taken on the node: one subscribed netlink socket per node namespace,
/// all read by one thread woken by `poll(2)`, so a change is stamped when the kernel announces it, not when a
/// polling round next looks. Convergence is then the moment of the last node's last BIRD route change.
pub struct RouteMonitor {
    state: Arc<Mutex<HashMap<String, (std::time::SystemTime, u64)>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RouteMonitor {
    /// Subscribe in each `(node, namespace path)`; nodes whose namespace cannot be entered are left out.
    pub fn start(nodes: &[(String, PathBuf)]) -> RouteMonitor {
        let mut socks: Vec<(String, Socket)> = Vec::new();
        for (node, ns) in nodes {
            let s = in_netns(ns, |sock| {
                sock.bind(&SocketAddr::new(0, 0))?;
                sock.add_membership(7)?; // RTNLGRP_IPV4_ROUTE
                sock.set_non_blocking(true)
            });
            if let Ok(sock) = s {
                socks.push((node.clone(), sock));
            }
        }
        let state: Arc<Mutex<HashMap<String, (std::time::SystemTime, u64)>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut fds: Vec<libc::pollfd> = socks
                .iter()
                .map(|(_, s)| libc::pollfd { fd: s.as_raw_fd(), events: libc::POLLIN, revents: 0 })
                .collect();
            let mut rx = Vec::with_capacity(1 << 16);
            while !sp.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: fds is a valid array of pollfd for the duration of the call.
                let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
                if ready <= 0 {
                    continue;
                }
                let now = std::time::SystemTime::now();
                for (i, fd) in fds.iter_mut().enumerate() {
                    if fd.revents == 0 {
                        continue;
                    }
                    fd.revents = 0;
                    let mut n = 0;
                    loop {
                        rx.clear();
                        match socks[i].1.recv(&mut rx, 0) {
                            Ok(size) => n += bird_main_changes(&rx[..size]),
                            // Drained, or overrun (ENOBUFS): either way, a change happened now.
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => {
                                n += 1;
                                break;
                            }
                        }
                    }
                    if n > 0 {
                        if let Ok(mut g) = st.lock() {
                            let e = g.entry(socks[i].0.clone()).or_insert((now, 0));
                            *e = (now, e.1 + n as u64);
                        }
                    }
                }
            }
        });
        RouteMonitor { state, stop, thread: Some(thread) }
    }

    /// The moment of `node`'s last BIRD route change seen, and how many were seen.
    pub fn last_change(&self, node: &str) -> Option<(std::time::SystemTime, u64)> {
        self.state.lock().ok()?.get(node).copied()
    }

    /// The latest change over all nodes.
    pub fn latest(&self) -> Option<std::time::SystemTime> {
        self.state.lock().ok()?.values().map(|(t, _)| *t).max()
    }
}

impl Drop for RouteMonitor {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::route::RouteRealm;

    #[test]
    fn dumped_routes_read_as_ip_prints_them() {
        let names = HashMap::from([(7, "tunl0".to_string()), (2, "eth1".to_string())]);
        // Calico's IPIP route as BIRD installs it: 172.16.3.0/26 via 10.0.2.3 dev tunl0 proto bird onlink.
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = 26;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Bird;
        m.header.kind = RouteType::Unicast;
        m.header.flags = RouteFlags::Onlink;
        m.attributes = vec![
            RouteAttribute::Destination(RouteAddress::Inet("172.16.3.0".parse().unwrap())),
            RouteAttribute::Gateway(RouteAddress::Inet("10.0.2.3".parse().unwrap())),
            RouteAttribute::Oif(7),
        ];
        let k = kernel_route(&m, &names).unwrap();
        assert_eq!(k.to_string(), "172.16.3.0/26 via 10.0.2.3 dev tunl0 proto bird onlink");
        // A blackhole block route, a kernel link route with its source, a default route with a metric.
        let mut b = RouteMessage::default();
        b.header.address_family = AddressFamily::Inet;
        b.header.table = RouteHeader::RT_TABLE_MAIN;
        b.header.destination_prefix_length = 26;
        b.header.protocol = RouteProtocol::Bird;
        b.header.kind = RouteType::BlackHole;
        b.attributes = vec![RouteAttribute::Destination(RouteAddress::Inet("172.16.1.0".parse().unwrap()))];
        assert_eq!(kernel_route(&b, &names).unwrap().to_string(), "blackhole 172.16.1.0/26 proto bird");
        let mut l = RouteMessage::default();
        l.header.address_family = AddressFamily::Inet;
        l.header.table = RouteHeader::RT_TABLE_MAIN;
        l.header.destination_prefix_length = 24;
        l.header.protocol = RouteProtocol::Kernel;
        l.header.scope = RouteScope::Link;
        l.header.kind = RouteType::Unicast;
        l.attributes = vec![
            RouteAttribute::Destination(RouteAddress::Inet("10.0.1.0".parse().unwrap())),
            RouteAttribute::Oif(2),
            RouteAttribute::PrefSource(RouteAddress::Inet("10.0.1.5".parse().unwrap())),
            RouteAttribute::Realm(RouteRealm { source: 0, destination: 1 }),
        ];
        let k = kernel_route(&l, &names).unwrap();
        assert_eq!(
            (k.scope.as_deref(), k.prefsrc, k.realms.as_ref().and_then(|r| r.to.as_deref())),
            (Some("link"), Some("10.0.1.5".parse().unwrap()), Some("1"))
        );
        let mut d = RouteMessage::default();
        d.header.address_family = AddressFamily::Inet;
        d.header.table = RouteHeader::RT_TABLE_MAIN;
        d.header.protocol = RouteProtocol::Boot;
        d.header.kind = RouteType::Unicast;
        d.attributes = vec![RouteAttribute::Priority(100), RouteAttribute::Oif(99)];
        let k = kernel_route(&d, &names).unwrap();
        assert_eq!((k.dst.len, k.protocol, k.metric, k.dev.as_deref()), (0, None, Some(100), Some("if99")));
    }

    #[test]
    fn only_birds_main_table_changes_count() {
        let route = |table: u8, proto: RouteProtocol| {
            let mut m = RouteMessage::default();
            m.header.address_family = AddressFamily::Inet;
            m.header.destination_prefix_length = 26;
            m.header.table = table;
            m.header.protocol = proto;
            m.header.kind = RouteType::Unicast;
            m.attributes = vec![RouteAttribute::Destination(RouteAddress::Inet("172.16.3.0".parse().unwrap()))];
            m
        };
        let mut buf = Vec::new();
        for msg in [
            RouteNetlinkMessage::NewRoute(route(RouteHeader::RT_TABLE_MAIN, RouteProtocol::Bird)),
            RouteNetlinkMessage::DelRoute(route(RouteHeader::RT_TABLE_MAIN, RouteProtocol::Bird)),
            // BIRD's private kernel table on the twin, and a static main-table route: not counted.
            RouteNetlinkMessage::NewRoute(route(201, RouteProtocol::Bird)),
            RouteNetlinkMessage::NewRoute(route(RouteHeader::RT_TABLE_MAIN, RouteProtocol::Static)),
        ] {
            let mut nl = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(msg));
            nl.finalize();
            let mut b = vec![0u8; nl.buffer_len()];
            nl.serialize(&mut b);
            buf.extend(b);
        }
        assert_eq!(bird_main_changes(&buf), 2);
        assert_eq!(bird_main_changes(&buf[..0]), 0);
    }

    #[test]
    fn the_agents_route_lines_read_as_routes() {
        let r = BirdRoute::parse("172.20.0.0/26 via 10.30.1.2 dev tunl0 proto bird onlink").unwrap();
        assert_eq!(
            r,
            BirdRoute {
                dst: "172.20.0.0/26".parse().unwrap(),
                blackhole: false,
                gateway: Some("10.30.1.2".parse().unwrap()),
                dev: Some("tunl0".into()),
                onlink: true
            }
        );
        let b = BirdRoute::parse("blackhole 172.20.0.128/26 proto bird").unwrap();
        assert!(b.blackhole && b.gateway.is_none() && b.dev.is_none());
        assert_eq!(BirdRoute::parse("10.9.0.0/24 via 1.2.3.4 proto bird").unwrap().dev, None);
        // Not the agent's forms: left to `ip`.
        assert_eq!(BirdRoute::parse("172.20.0.0/26 via 10.30.1.2 dev tunl0 proto static"), None);
        assert_eq!(BirdRoute::parse("172.20.0.0/26 via 10.30.1.2 metric 5 proto bird"), None);
        assert_eq!(BirdRoute::parse("fd00::/64 dev eth0 proto bird"), None);
    }
}
