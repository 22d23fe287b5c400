//! What a node's containerlab `exec` commands do to its IPv4 addressing and routing, interpreted the way
//! iproute2 and the kernel would: `ip addr add/del/flush`, `ip route add/replace/del`, `ip link add`. Other
//! commands (`sysctl`, scripts…) are run by containerlab but mean nothing here. Words are split as
//! containerlab splits them (shell-like quoting, no shell).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// One exec command, as far as rrlab's model is concerned.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cmd {
    AddrAdd {
        dev: String,
        net: Ipv4Net,
        replace: bool,
    },
    AddrDel {
        dev: String,
        net: Option<Ipv4Net>,
    },
    AddrFlush {
        dev: String,
    },
    RouteAdd {
        dst: Ipv4Net,
        via: Option<Ipv4Addr>,
        dev: Option<String>,
        onlink: bool,
        replace: bool,
    },
    RouteDel {
        dst: Ipv4Net,
    },
    LinkAdd {
        name: String,
    },
    /// Anything else (IPv6, other tables, sysctl, …).
    Other,
}

/// Split a command line into words: whitespace separates, '…' and "…" quote, backslash escapes.
pub(super) fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x) => cur.push(x),
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// iproute2's `matches`: a non-empty abbreviation of `full`.
fn abbrev(word: &str, full: &str) -> bool {
    !word.is_empty() && full.starts_with(word)
}

fn is_v6(s: &str) -> bool {
    s.contains(':')
}

/// An IPv4 address with optional prefix length (`10.0.1.2/24`, `10.0.1.2` = /32).
pub(super) fn parse_prefix(s: &str) -> Result<Ipv4Net, String> {
    let bad = || format!("cannot parse {s:?} as an IPv4 address with prefix length (e.g. 10.0.1.2/24)");
    match s.split_once('/') {
        Some((a, l)) => {
            let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
            let len: u8 = l.parse().map_err(|_| bad())?;
            Ipv4Net::new(addr, len).map_err(|_| bad())
        }
        None => {
            let addr: Ipv4Addr = s.parse().map_err(|_| bad())?;
            Ok(Ipv4Net::from(addr))
        }
    }
}

/// Parse one exec command line.
pub(super) fn parse_command(line: &str) -> Result<Cmd, String> {
    let words = split_words(line)?;
    let Some(first) = words.first() else { return Ok(Cmd::Other) };
    if first.rsplit('/').next() != Some("ip") {
        return Ok(Cmd::Other);
    }
    let mut i = 1;
    while let Some(w) = words.get(i) {
        let Some(opt) = w.strip_prefix('-') else { break };
        let opt = opt.trim_start_matches('-');
        match opt {
            "6" => return Ok(Cmd::Other),
            // Another namespace or a batch file: not this node's own configuration as written here.
            "n" | "netns" | "b" | "batch" => return Ok(Cmd::Other),
            "f" | "family" => {
                i += 1;
                match words.get(i).map(String::as_str) {
                    Some("inet") => {}
                    Some(_) => return Ok(Cmd::Other),
                    None => return Err("ip: option -family needs an argument".into()),
                }
            }
            _ => {}
        }
        i += 1;
    }
    let Some(object) = words.get(i) else { return Ok(Cmd::Other) };
    let rest = &words[i + 1..];
    if abbrev(object, "address") {
        parse_addr(rest)
    } else if abbrev(object, "route") {
        parse_route(rest)
    } else if abbrev(object, "link") {
        parse_link(rest)
    } else {
        Ok(Cmd::Other)
    }
}

fn next_arg<'a>(it: &mut std::slice::Iter<'a, String>, key: &str, what: &str) -> Result<&'a String, String> {
    it.next().ok_or_else(|| format!("`{key}` needs {what}"))
}

fn parse_addr(words: &[String]) -> Result<Cmd, String> {
    let Some(verb) = words.first() else { return Ok(Cmd::Other) };
    enum Verb {
        Add(bool),
        Del,
        Flush,
    }
    let verb = if abbrev(verb, "add") {
        Verb::Add(false)
    } else if abbrev(verb, "change") || verb == "chg" || abbrev(verb, "replace") {
        Verb::Add(true)
    } else if abbrev(verb, "delete") {
        Verb::Del
    } else if abbrev(verb, "flush") {
        Verb::Flush
    } else {
        return Ok(Cmd::Other);
    };
    let mut dev: Option<String> = None;
    let mut local: Option<String> = None;
    let mut it = words[1..].iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "dev" => dev = Some(next_arg(&mut it, "dev", "an interface name")?.clone()),
            "local" => local = Some(next_arg(&mut it, "local", "an address")?.clone()),
            "peer" | "remote" | "broadcast" | "brd" | "anycast" | "scope" | "label" | "valid_lft" | "preferred_lft"
            | "metric" | "priority" | "preference" | "proto" | "to" => {
                next_arg(&mut it, w, "a value")?;
            }
            "home" | "nodad" | "optimistic" | "noprefixroute" | "mngtmpaddr" | "autojoin" | "secondary" | "primary"
            | "temporary" | "permanent" | "dynamic" | "deprecated" | "tentative" | "dadfailed" => {}
            other => {
                if matches!(verb, Verb::Flush) && dev.is_none() {
                    dev = Some(other.to_string());
                } else if local.is_none() {
                    local = Some(other.to_string());
                } else {
                    return Err(format!("unexpected word {other:?} in `ip addr`"));
                }
            }
        }
    }
    if local.as_deref().is_some_and(is_v6) {
        return Ok(Cmd::Other);
    }
    let net = local.as_deref().map(parse_prefix).transpose()?;
    let Some(dev) = dev else {
        return Err("`ip addr` needs `dev <interface>`".into());
    };
    match verb {
        Verb::Add(replace) => {
            let Some(net) = net else {
                return Err("`ip addr add` needs an address (e.g. 10.0.1.2/24)".into());
            };
            Ok(Cmd::AddrAdd { dev, net, replace })
        }
        Verb::Del => Ok(Cmd::AddrDel { dev, net }),
        Verb::Flush => Ok(Cmd::AddrFlush { dev }),
    }
}

const ROUTE_TYPES: &[&str] =
    &["unicast", "local", "broadcast", "multicast", "throw", "unreachable", "prohibit", "blackhole", "nat", "anycast"];
const ROUTE_ONE_ARG: &[&str] = &[
    "src",
    "iif",
    "metric",
    "priority",
    "preference",
    "vrf",
    "proto",
    "protocol",
    "scope",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "initcwnd",
    "initrwnd",
    "ssthresh",
    "realm",
    "realms",
    "rto_min",
    "features",
    "quickack",
    "congctl",
    "pref",
    "expires",
    "nhid",
    "tos",
    "dsfield",
    "hoplimit",
    "fastopen_no_cookie",
    "ttl-propagate",
];

fn parse_dst(s: &str) -> Result<Option<Ipv4Net>, String> {
    if matches!(s, "default" | "all" | "any") {
        return Ok(Some(Ipv4Net::default()));
    }
    if is_v6(s) {
        return Ok(None);
    }
    let net = parse_prefix(s)?;
    if net.trunc() != net {
        return Err(format!(
            "route destination {s} has host bits set (the kernel refuses it: Invalid prefix for given prefix length); did you mean {}?",
            net.trunc()
        ));
    }
    Ok(Some(net))
}

fn parse_route(words: &[String]) -> Result<Cmd, String> {
    let Some(verb) = words.first() else { return Ok(Cmd::Other) };
    let (is_add, replace) = if abbrev(verb, "add") || abbrev(verb, "append") || abbrev(verb, "prepend") {
        (true, false)
    } else if abbrev(verb, "change") || verb == "chg" || abbrev(verb, "replace") {
        (true, true)
    } else if abbrev(verb, "delete") {
        (false, false)
    } else {
        return Ok(Cmd::Other);
    };
    let mut dst: Option<String> = None;
    let mut via: Option<String> = None;
    let mut dev: Option<String> = None;
    let mut onlink = false;
    let mut it = words[1..].iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "via" => {
                let mut g = next_arg(&mut it, "via", "a gateway address")?;
                if g == "inet" {
                    g = next_arg(&mut it, "via inet", "a gateway address")?;
                } else if g == "inet6" {
                    return Ok(Cmd::Other);
                }
                via = Some(g.clone());
            }
            "dev" | "oif" => dev = Some(next_arg(&mut it, w, "an interface name")?.clone()),
            "table" => {
                let t = next_arg(&mut it, "table", "a table")?;
                if t != "main" && t != "254" {
                    return Ok(Cmd::Other);
                }
            }
            "mtu" => {
                if next_arg(&mut it, "mtu", "a value")? == "lock" {
                    next_arg(&mut it, "mtu lock", "a value")?;
                }
            }
            "onlink" => onlink = true,
            "pervasive" | "equalize" => {}
            // Multipath and encapsulated routes are not modelled.
            "nexthop" | "encap" => return Ok(Cmd::Other),
            "to" => dst = Some(next_arg(&mut it, "to", "a destination")?.clone()),
            w if ROUTE_ONE_ARG.contains(&w) => {
                next_arg(&mut it, w, "a value")?;
            }
            w if ROUTE_TYPES.contains(&w) => {
                if w != "unicast" {
                    return Ok(Cmd::Other);
                }
            }
            other => {
                if dst.is_none() {
                    dst = Some(other.to_string());
                } else {
                    return Err(format!("unexpected word {other:?} in `ip route`"));
                }
            }
        }
    }
    let Some(dst) = dst else {
        return Err("`ip route` needs a destination (a prefix or `default`)".into());
    };
    let Some(dst) = parse_dst(&dst)? else { return Ok(Cmd::Other) };
    if !is_add {
        return Ok(Cmd::RouteDel { dst });
    }
    let via = match via {
        Some(g) if is_v6(&g) => return Ok(Cmd::Other),
        Some(g) => Some(g.parse::<Ipv4Addr>().map_err(|_| format!("cannot parse gateway {g:?} as an IPv4 address"))?),
        None => None,
    };
    if via.is_none() && dev.is_none() {
        return Err("`ip route add` needs `via <gateway>` or `dev <interface>`".into());
    }
    Ok(Cmd::RouteAdd { dst, via, dev, onlink, replace })
}

fn parse_link(words: &[String]) -> Result<Cmd, String> {
    let Some(verb) = words.first() else { return Ok(Cmd::Other) };
    if !abbrev(verb, "add") {
        return Ok(Cmd::Other);
    }
    let mut it = words[1..].iter();
    let mut name = None;
    while let Some(w) = it.next() {
        match w.as_str() {
            "name" | "dev" => name = Some(next_arg(&mut it, w, "an interface name")?.clone()),
            "link" | "type" | "address" | "mtu" | "txqueuelen" | "txqlen" | "numtxqueues" | "numrxqueues" | "group" => {
                next_arg(&mut it, w, "a value")?;
                // Everything after `type <kind>` is the kind's own arguments.
                if w == "type" {
                    break;
                }
            }
            other if name.is_none() => name = Some(other.to_string()),
            _ => {}
        }
    }
    match name {
        Some(name) => Ok(Cmd::LinkAdd { name }),
        None => Err("`ip link add` needs an interface name".into()),
    }
}

/// A node's addressing and routing after its exec commands.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct NodeNet {
    /// (interface, address, index of the exec command that added it; None for a link's `ipv4`).
    pub addrs: Vec<(String, Ipv4Net, Option<usize>)>,
    /// (destination, gateway, device, index of the exec command).
    pub routes: Vec<(Ipv4Net, Option<Ipv4Addr>, Option<String>, usize)>,
}

/// Run a node's exec commands over its initial state (addresses from links). Stops at the first command the
/// kernel would refuse and returns the state so far with that command's index and the reason.
pub(super) fn run(
    initial: &[(String, Ipv4Net)],
    interfaces: &BTreeSet<String>,
    commands: &[String],
) -> (NodeNet, Option<(usize, String)>) {
    let mut net = NodeNet { addrs: initial.iter().map(|(i, n)| (i.clone(), *n, None)).collect(), routes: Vec::new() };
    let mut ifaces = interfaces.clone();
    ifaces.insert("lo".into());
    ifaces.insert("eth0".into());
    for (idx, line) in commands.iter().enumerate() {
        if let Err(e) = step(&mut net, &mut ifaces, idx, line) {
            return (net, Some((idx, e)));
        }
    }
    (net, None)
}

fn known_ifaces(ifaces: &BTreeSet<String>) -> String {
    let list: Vec<&str> = ifaces.iter().map(String::as_str).filter(|i| *i != "lo").collect();
    list.join(", ")
}

fn step(net: &mut NodeNet, ifaces: &mut BTreeSet<String>, idx: usize, line: &str) -> Result<(), String> {
    let check_dev = |ifaces: &BTreeSet<String>, dev: &str| {
        if ifaces.contains(dev) {
            Ok(())
        } else {
            Err(format!(
                "interface {dev} does not exist on this node: no link in the topology gives it one (it has: {})",
                known_ifaces(ifaces)
            ))
        }
    };
    match parse_command(line)? {
        Cmd::AddrAdd { dev, net: addr, replace } => {
            check_dev(ifaces, &dev)?;
            if addr.prefix_len() < 31 && (addr.addr() == addr.network() || addr.addr() == addr.broadcast()) {
                return Err(format!(
                    "{addr} is the {} address of its subnet, not a host address",
                    if addr.addr() == addr.network() { "network" } else { "broadcast" }
                ));
            }
            if let Some(pos) = net.addrs.iter().position(|(d, a, _)| *d == dev && a.addr() == addr.addr()) {
                if !replace {
                    return Err(format!("{} is already on {dev} (the kernel answers: File exists)", addr.addr()));
                }
                net.addrs.remove(pos);
            }
            net.addrs.push((dev, addr, Some(idx)));
        }
        Cmd::AddrDel { dev, net: addr } => match addr {
            Some(a) => net.addrs.retain(|(d, x, _)| !(*d == dev && x.addr() == a.addr())),
            None => {
                if let Some(pos) = net.addrs.iter().position(|(d, _, _)| *d == dev) {
                    net.addrs.remove(pos);
                }
            }
        },
        Cmd::AddrFlush { dev } => net.addrs.retain(|(d, _, _)| *d != dev),
        Cmd::RouteAdd { dst, via, dev, onlink, replace } => {
            if let Some(d) = &dev {
                check_dev(ifaces, d)?;
            }
            if let (Some(g), false) = (via, onlink) {
                let on_subnet = net.addrs.iter().any(|(d, a, _)| dev.as_ref().is_none_or(|x| x == d) && a.contains(&g));
                if !on_subnet {
                    let place =
                        dev.as_ref().map(|d| format!("{d}'s subnets")).unwrap_or("any subnet of this node".into());
                    return Err(format!(
                        "gateway {g} is not on {place} at this point (the kernel refuses the route: Nexthop has invalid gateway); add the address first"
                    ));
                }
            }
            if let Some(pos) = net.routes.iter().position(|(d, _, _, _)| *d == dst) {
                if !replace {
                    return Err(format!("a route to {dst} already exists (the kernel answers: File exists)"));
                }
                net.routes.remove(pos);
            }
            net.routes.push((dst, via, dev, idx));
        }
        Cmd::RouteDel { dst } => net.routes.retain(|(d, _, _, _)| *d != dst),
        Cmd::LinkAdd { name } => {
            ifaces.insert(name);
        }
        Cmd::Other => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn words_and_forms() {
        assert_eq!(split_words("bash -c 'echo \"x y\" > f'").unwrap(), vec!["bash", "-c", "echo \"x y\" > f"]);
        assert!(split_words("echo 'open").is_err());
        let add = Cmd::AddrAdd { dev: "eth1".into(), net: n("10.0.1.2/24"), replace: false };
        assert_eq!(parse_command("ip addr add 10.0.1.2/24 dev eth1").unwrap(), add);
        assert_eq!(parse_command("ip a add dev eth1 10.0.1.2/24").unwrap(), add);
        assert_eq!(parse_command("/sbin/ip -4 address add local 10.0.1.2/24 brd + dev eth1").unwrap(), add);
        assert_eq!(parse_command("ip -6 addr add 2001:db8::1/64 dev eth1").unwrap(), Cmd::Other);
        assert_eq!(parse_command("ip addr add 2001:db8::1/64 dev eth1").unwrap(), Cmd::Other);
        assert_eq!(parse_command("sysctl -w net.ipv4.ip_forward=1").unwrap(), Cmd::Other);
        assert_eq!(
            parse_command("ip route add default via 10.0.1.1").unwrap(),
            Cmd::RouteAdd {
                dst: Ipv4Net::default(),
                via: Some("10.0.1.1".parse().unwrap()),
                dev: None,
                onlink: false,
                replace: false
            }
        );
        assert_eq!(
            parse_command("ip r replace 10.0.2.0/24 via inet 10.0.1.1 dev eth1 metric 10 onlink").unwrap(),
            Cmd::RouteAdd {
                dst: n("10.0.2.0/24"),
                via: Some("10.0.1.1".parse().unwrap()),
                dev: Some("eth1".into()),
                onlink: true,
                replace: true
            }
        );
        assert_eq!(parse_command("ip route add 10.0.2.0/24 via 10.0.1.1 table 100").unwrap(), Cmd::Other);
        assert_eq!(parse_command("ip route add blackhole 10.9.0.0/16").unwrap(), Cmd::Other);
        assert_eq!(parse_command("ip link add dummy0 type dummy").unwrap(), Cmd::LinkAdd { name: "dummy0".into() });
        assert!(parse_command("ip addr add 10.0.1.300/24 dev eth1").unwrap_err().contains("cannot parse"));
        assert!(parse_command("ip addr add 10.0.1.2/24").unwrap_err().contains("dev"));
        assert!(parse_command("ip route add 10.0.2.1/24 via 10.0.1.1").unwrap_err().contains("10.0.2.0/24"));
    }

    #[test]
    fn run_in_order() {
        let ifaces: BTreeSet<String> = ["eth1".to_string()].into();
        let cmds: Vec<String> =
            vec!["ip route add 10.0.2.0/24 via 10.0.1.1 dev eth1".into(), "ip addr add 10.0.1.2/24 dev eth1".into()];
        let (_, err) = run(&[], &ifaces, &cmds);
        assert!(err.unwrap().1.contains("Nexthop has invalid gateway"));
        let cmds: Vec<String> = cmds.into_iter().rev().collect();
        let (net, err) = run(&[], &ifaces, &cmds);
        assert_eq!(err, None);
        assert_eq!(net.addrs, vec![("eth1".into(), n("10.0.1.2/24"), Some(0))]);
        assert_eq!(net.routes.len(), 1);
        let (_, err) = run(&[], &ifaces, &["ip addr add 10.0.1.2/24 dev eth7".into()]);
        assert!(err.unwrap().1.contains("interface eth7 does not exist"));
        let (_, err) = run(&[], &ifaces, &["ip addr add 10.0.1.0/24 dev eth1".into()]);
        assert!(err.unwrap().1.contains("network address"));
        let (net, err) = run(
            &[],
            &ifaces,
            &[
                "ip link add d0 type dummy".into(),
                "ip addr add 1.1.1.1/32 dev d0".into(),
                "ip addr flush dev d0".into(),
            ],
        );
        assert_eq!((net.addrs.len(), err), (0, None));
    }
}
