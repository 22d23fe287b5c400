//! BIRD 1.6 `show route [all] [prefix] [protocol P]`, raw socket or `birdc`.
//!
//! Route lines look like
//! `172.16.3.0/26      via 10.99.0.1 on veth-ba [Node_10_99_0_1 13:30:53 from 10.99.0.1] * (100/?) [AS64513i]`;
//! further routes for the same prefix start with blanks instead of the prefix;
//! with `all`, tab-indented attribute lines follow each route
//! (`Type: BGP unicast univ`, `BGP.origin: IGP`, `BGP.cluster_list: 1.0.0.1`, …).

use super::bird::decode_for;
use super::{ParseError, Prefix};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

/// What a route does with packets (the destination part of the route line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    /// `via <gw> on <iface>` or `dev <iface>`
    Unicast,
    Blackhole,
    Unreachable,
    /// BIRD prints `prohibited`
    Prohibited,
    /// `multipath`, next hops on the following lines
    Multipath,
}

/// The IGP metric part of `(pref/metric)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IgpMetric {
    Known(u32),
    /// `?` — the next hop resolved through a route without an IGP metric.
    Unknown,
    /// `-` — the next hop is not resolvable (the route shows `unreachable`).
    Unresolvable,
}

/// BGP ORIGIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    Igp,
    Egp,
    Incomplete,
}

impl Origin {
    fn from_char(c: char) -> Option<Origin> {
        match c {
            'i' => Some(Origin::Igp),
            'e' => Some(Origin::Egp),
            '?' => Some(Origin::Incomplete),
            _ => None,
        }
    }
    fn from_word(w: &str) -> Option<Origin> {
        match w {
            "IGP" => Some(Origin::Igp),
            "EGP" => Some(Origin::Egp),
            "Incomplete" => Some(Origin::Incomplete),
            _ => None,
        }
    }
}

/// One next hop of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextHop {
    pub via: IpAddr,
    pub dev: Option<String>,
    pub weight: Option<u32>,
}

/// BGP path attributes from `show route all`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BgpAttrs {
    pub origin: Option<Origin>,
    /// AS numbers in order (AS sets `{…}` flattened in place).
    pub as_path: Vec<u32>,
    pub next_hop: Option<IpAddr>,
    /// IPv6: the link-local next hop printed after the global one.
    pub next_hop_link_local: Option<IpAddr>,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// `(asn,value)` standard communities.
    pub communities: Vec<(u32, u32)>,
    /// `(asn, data1, data2)` large communities.
    pub large_communities: Vec<(u32, u32, u32)>,
    pub atomic_aggregate: bool,
    /// `BGP.aggregator`, verbatim.
    pub aggregator: Option<String>,
    /// `BGP.ext_community`, verbatim.
    pub ext_communities: Option<String>,
}

/// One route of `show route [all]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub prefix: Prefix,
    pub kind: RouteKind,
    /// Gateway of a `via` route.
    pub via: Option<IpAddr>,
    /// Interface (`on eth0` of a `via` route, or `dev tunl0`).
    pub dev: Option<String>,
    /// Next hops of a `multipath` route.
    pub nexthops: Vec<NextHop>,
    /// The BIRD protocol instance the route came from (`Node_10_99_0_1`,
    /// `static1`, `kernel1`, `direct1`, …).
    pub protocol: String,
    pub since: String,
    /// `from <addr>`: the peer the route was learned from, printed by BIRD
    /// only when it differs from the gateway.
    pub from: Option<IpAddr>,
    /// `*`: the route BIRD selected for this prefix.
    pub primary: bool,
    /// `!`: selected, but the kernel refused it (sync error).
    pub sync_error: bool,
    pub preference: u32,
    /// BGP: the route is suppressed (`(100-/0)`).
    pub suppressed: bool,
    pub igp_metric: Option<IgpMetric>,
    /// From `[AS64513i]`: origin AS (last AS of the path).
    pub origin_as: Option<u32>,
    /// From `[i]`/`[AS…?]` on the route line.
    pub origin: Option<Origin>,
    /// Any other bracketed info on the route line (e.g. an OSPF router id).
    pub info: Option<String>,
    /// `Type:` line — route source (`BGP`, `static`, `device`, `inherit`, …).
    pub source: Option<String>,
    /// `Type:` line — `unicast`, …
    pub cast: Option<String>,
    /// `Type:` line — `univ`, `link`, `host`, …
    pub scope: Option<String>,
    pub attrs: BgpAttrs,
    /// Any other attribute line (`Kernel.metric: 0`, unknown `BGP.*`), verbatim.
    pub other_attrs: Vec<(String, String)>,
}

impl Route {
    /// CLUSTER_LIST (empty unless the route was reflected).
    pub fn cluster_list(&self) -> &[Ipv4Addr] {
        &self.attrs.cluster_list
    }
    pub fn originator_id(&self) -> Option<Ipv4Addr> {
        self.attrs.originator_id
    }
    /// BGP NEXT_HOP attribute.
    pub fn bgp_next_hop(&self) -> Option<IpAddr> {
        self.attrs.next_hop
    }
    pub fn as_path(&self) -> &[u32] {
        &self.attrs.as_path
    }
    pub fn is_bgp(&self) -> bool {
        self.source.as_deref() == Some("BGP") || self.origin.is_some()
    }

    /// The BGP peer the route was learned from: `from <addr>` when printed,
    /// else (BIRD omits `from` when it equals the gateway) the gateway of a
    /// BGP route.
    pub fn learned_from(&self) -> Option<IpAddr> {
        self.from.or(if self.is_bgp() { self.via } else { None })
    }
}

/// The selected route for `prefix` (else the first one listed).
pub fn find_route<'a>(routes: &'a [Route], prefix: &str) -> Option<&'a Route> {
    let want: Prefix = prefix.parse().ok()?;
    let mut first = None;
    for r in routes.iter().filter(|r| r.prefix == want) {
        if r.primary {
            return Some(r);
        }
        first.get_or_insert(r);
    }
    first
}

/// Every route listed for `prefix`.
pub fn find_routes<'a>(routes: &'a [Route], prefix: &str) -> Vec<&'a Route> {
    match prefix.parse::<Prefix>() {
        Ok(want) => routes.iter().filter(|r| r.prefix == want).collect(),
        Err(_) => Vec::new(),
    }
}

const INPUT: &str = "show route";

struct Head {
    kind: RouteKind,
    via: Option<IpAddr>,
    dev: Option<String>,
    protocol: String,
    since: String,
    from: Option<IpAddr>,
    primary: bool,
    sync_error: bool,
    preference: u32,
    suppressed: bool,
    igp_metric: Option<IgpMetric>,
    origin_as: Option<u32>,
    origin: Option<Origin>,
    info: Option<String>,
}

fn parse_head(body: &str, line: usize) -> Result<Head, ParseError> {
    let err = |what: &str| ParseError::new(INPUT, line, what.to_string(), body);
    let open = body.find('[').ok_or_else(|| err("a route `<destination> [<protocol> <since>] …`"))?;
    let close = body[open..].find(']').map(|i| open + i).ok_or_else(|| err("`]` closing `[<protocol> <since>]`"))?;
    let dest: Vec<&str> = body[..open].split_whitespace().collect();
    let (kind, via, dev) = match dest.as_slice() {
        ["via", gw, "on", iface] => (
            RouteKind::Unicast,
            Some(gw.parse().map_err(|_| err("a gateway address after `via`"))?),
            Some(iface.to_string()),
        ),
        ["via", gw] => (RouteKind::Unicast, Some(gw.parse().map_err(|_| err("a gateway address after `via`"))?), None),
        ["dev", iface] => (RouteKind::Unicast, None, Some(iface.to_string())),
        ["blackhole"] => (RouteKind::Blackhole, None, None),
        ["unreachable"] => (RouteKind::Unreachable, None, None),
        ["prohibited"] => (RouteKind::Prohibited, None, None),
        ["multipath"] => (RouteKind::Multipath, None, None),
        _ => {
            return Err(err(
                "a destination (`via <gw> on <if>`, `dev <if>`, `blackhole`, `unreachable`, `prohibited`, `multipath`)",
            ))
        }
    };
    let inner: Vec<&str> = body[open + 1..close].split_whitespace().collect();
    let from_at = inner.iter().position(|t| *t == "from");
    let (names, from) = match from_at {
        Some(i) => {
            let f = inner
                .get(i + 1)
                .and_then(|a| a.parse::<IpAddr>().ok())
                .ok_or_else(|| err("an address after `from`"))?;
            if inner.len() != i + 2 {
                return Err(err("`]` after `from <addr>`"));
            }
            (&inner[..i], Some(f))
        }
        None => (&inner[..], None),
    };
    if names.len() < 2 {
        return Err(err("`[<protocol> <since> [from <addr>]]`"));
    }
    let protocol = names[0].to_string();
    let since = names[1..].join(" ");

    let mut rest = body[close + 1..].trim_start();
    let (mut primary, mut sync_error) = (false, false);
    if let Some(r) = rest.strip_prefix('*') {
        primary = true;
        rest = r.trim_start();
    } else if let Some(r) = rest.strip_prefix('!') {
        primary = true;
        sync_error = true;
        rest = r.trim_start();
    }
    let r = rest.strip_prefix('(').ok_or_else(|| err("`(<preference>[/<metric>])`"))?;
    let pclose = r.find(')').ok_or_else(|| err("`)` after the preference"))?;
    let pm = &r[..pclose];
    rest = r[pclose + 1..].trim();
    let (pref_s, metric_s) = match pm.split_once('/') {
        Some((p, m)) => (p, Some(m)),
        None => (pm, None),
    };
    let (pref_s, suppressed) = match pref_s.strip_suffix('-') {
        Some(p) => (p, true),
        None => (pref_s, false),
    };
    let preference: u32 = pref_s.parse().map_err(|_| err("a numeric preference in `(…)`"))?;
    let igp_metric = match metric_s {
        None => None,
        Some("?") => Some(IgpMetric::Unknown),
        Some("-") => Some(IgpMetric::Unresolvable),
        Some(m) => Some(IgpMetric::Known(m.parse().map_err(|_| err("an IGP metric, `?` or `-` after `/`"))?)),
    };
    let (mut origin_as, mut origin, mut info) = (None, None, None);
    if !rest.is_empty() {
        let b = rest
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(|| err("`[…]` route info at the end of the line"))?;
        // BGP: `[AS64513i]`, `[i]`, `[AS4200000000?]`
        let mut parsed = false;
        if let Some(c) = b.chars().last() {
            if let Some(o) = Origin::from_char(c) {
                let head = &b[..b.len() - c.len_utf8()];
                if head.is_empty() {
                    origin = Some(o);
                    parsed = true;
                } else if let Some(asn) = head.strip_prefix("AS").and_then(|a| a.parse().ok()) {
                    origin = Some(o);
                    origin_as = Some(asn);
                    parsed = true;
                }
            }
        }
        if !parsed {
            info = Some(b.to_string());
        }
    }
    Ok(Head {
        kind,
        via,
        dev,
        protocol,
        since,
        from,
        primary,
        sync_error,
        preference,
        suppressed,
        igp_metric,
        origin_as,
        origin,
        info,
    })
}

fn parse_u32_list(v: &str) -> Option<Vec<u32>> {
    v.split(|c: char| c.is_whitespace() || c == '{' || c == '}' || c == ',')
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().ok())
        .collect()
}

fn paren_groups(v: &str) -> Option<Vec<Vec<u32>>> {
    let mut out = Vec::new();
    let mut rest = v.trim();
    while !rest.is_empty() {
        let r = rest.strip_prefix('(')?;
        let close = r.find(')')?;
        let nums: Option<Vec<u32>> = r[..close].split(',').map(|t| t.trim().parse().ok()).collect();
        out.push(nums?);
        rest = r[close + 1..].trim_start();
    }
    Some(out)
}

fn apply_attr(route: &mut Route, key: &str, v: &str, line: usize) -> Result<(), ParseError> {
    let err = |what: &str| ParseError::new(INPUT, line, format!("{key}: {what}"), v);
    let a = &mut route.attrs;
    match key {
        "BGP.origin" => a.origin = Some(Origin::from_word(v).ok_or_else(|| err("IGP, EGP or Incomplete"))?),
        "BGP.as_path" => a.as_path = parse_u32_list(v).ok_or_else(|| err("AS numbers"))?,
        "BGP.next_hop" => {
            let mut it = v.split_whitespace();
            a.next_hop = match it.next() {
                Some(x) => Some(x.parse().map_err(|_| err("an IP address"))?),
                None => None,
            };
            a.next_hop_link_local = match it.next() {
                Some(x) => Some(x.parse().map_err(|_| err("an IP address"))?),
                None => None,
            };
        }
        "BGP.local_pref" => a.local_pref = Some(v.parse().map_err(|_| err("a number"))?),
        "BGP.med" => a.med = Some(v.parse().map_err(|_| err("a number"))?),
        "BGP.originator_id" => a.originator_id = Some(v.parse().map_err(|_| err("an IPv4 address"))?),
        "BGP.cluster_list" => {
            a.cluster_list = v
                .split_whitespace()
                .map(|t| t.parse().map_err(|_| err("IPv4 cluster ids")))
                .collect::<Result<_, _>>()?
        }
        "BGP.community" => {
            a.communities = paren_groups(v)
                .and_then(|g| {
                    g.into_iter()
                        .map(|c| match c[..] {
                            [x, y] => Some((x, y)),
                            _ => None,
                        })
                        .collect()
                })
                .ok_or_else(|| err("`(asn,value)` communities"))?
        }
        "BGP.large_community" => {
            a.large_communities = paren_groups(v)
                .and_then(|g| {
                    g.into_iter()
                        .map(|c| match c[..] {
                            [x, y, z] => Some((x, y, z)),
                            _ => None,
                        })
                        .collect()
                })
                .ok_or_else(|| err("`(asn, d1, d2)` large communities"))?
        }
        "BGP.atomic_aggr" => a.atomic_aggregate = true,
        "BGP.aggregator" => a.aggregator = Some(v.to_string()),
        "BGP.ext_community" => a.ext_communities = Some(v.to_string()),
        _ => route.other_attrs.push((key.to_string(), v.to_string())),
    }
    Ok(())
}

/// Parse `show route [all] …`. `Network not in table` (or the `8001` reply)
/// yields no routes.
pub fn parse_routes(text: &str) -> Result<Vec<Route>, ParseError> {
    let lines = decode_for(text, INPUT)?;
    let mut out: Vec<Route> = Vec::new();
    let mut cur_prefix: Option<Prefix> = None;
    for l in &lines {
        let t = l.text.as_str();
        match l.code {
            Some(8001) if t.trim() == "Network not in table" => continue,
            Some(c) if c >= 8000 => {
                let mut e = ParseError::new(INPUT, l.line, "a `show route` reply", format!("{c:04} {t}"));
                e.bird_code = Some(c);
                return Err(e);
            }
            Some(14) => continue, // `N of M routes for K networks`
            _ => {}
        }
        if t.trim().is_empty() || t.trim() == "Network not in table" {
            continue;
        }
        if t.starts_with("Table ") && t.trim_end().ends_with(':') {
            continue;
        }
        if l.code.is_none() && t.contains(" routes for ") && t.contains(" networks") {
            continue;
        }
        if let Some(attr) = t.strip_prefix('\t') {
            let Some(route) = out.last_mut() else {
                return Err(ParseError::new(INPUT, l.line, "a route line before attribute lines", t));
            };
            let attr = attr.trim_end();
            if let Some(nh) = attr.strip_prefix("via ") {
                let toks: Vec<&str> = nh.split_whitespace().collect();
                let via = toks
                    .first()
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| ParseError::new(INPUT, l.line, "`via <gw> on <if> weight <n>`", t))?;
                let mut hop = NextHop { via, dev: None, weight: None };
                let mut i = 1;
                while i < toks.len() {
                    match (toks[i], toks.get(i + 1)) {
                        ("on", Some(d)) => hop.dev = Some(d.to_string()),
                        ("weight", Some(w)) => hop.weight = w.parse().ok(),
                        _ => {}
                    }
                    i += 2;
                }
                route.nexthops.push(hop);
                continue;
            }
            if let Some(ty) = attr.strip_prefix("Type:") {
                let mut it = ty.split_whitespace();
                route.source = it.next().map(String::from);
                route.cast = it.next().map(String::from);
                route.scope = it.next().map(String::from);
                continue;
            }
            let Some((k, v)) = attr.split_once(':') else {
                return Err(ParseError::new(INPUT, l.line, "an attribute line `\\t<name>: <value>`", t));
            };
            apply_attr(route, k.trim(), v.trim(), l.line)?;
            continue;
        }
        let (prefix, body) = if t.starts_with(char::is_whitespace) {
            let p =
                cur_prefix.ok_or_else(|| ParseError::new(INPUT, l.line, "a route line starting with its prefix", t))?;
            (p, t.trim_start())
        } else {
            let (p, body) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
            let p: Prefix = p.parse().map_err(|_| {
                ParseError::new(INPUT, l.line, "a route line starting with a prefix (`10.0.0.0/24 …`)", t)
            })?;
            (p, body.trim_start())
        };
        let h = parse_head(body, l.line)?;
        cur_prefix = Some(prefix);
        out.push(Route {
            prefix,
            kind: h.kind,
            via: h.via,
            dev: h.dev,
            nexthops: Vec::new(),
            protocol: h.protocol,
            since: h.since,
            from: h.from,
            primary: h.primary,
            sync_error: h.sync_error,
            preference: h.preference,
            suppressed: h.suppressed,
            igp_metric: h.igp_metric,
            origin_as: h.origin_as,
            origin: h.origin,
            info: h.info,
            source: None,
            cast: None,
            scope: None,
            attrs: BgpAttrs::default(),
            other_attrs: Vec::new(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- produced here (Debian BIRD 1.6.8 in netns, see testdata/README.md)

    // `birdc -s b.ctl show route all` on node b (RR client of a): routes
    // reflected from c carry ORIGINATOR_ID/CLUSTER_LIST, next hop 10.99.1.3
    // resolved through a static route (`(100/?)`), an anycast /26 both
    // originated locally (blackhole) and learned (two routes for one prefix).
    const B_ROUTES: &str = include_str!("testdata/bird-b-show-route-all.txt");
    // Same node earlier, before b had a route to 10.99.1.0/24: the reflected
    // route is `unreachable … (100/-)` with `from 10.99.0.1`.
    const B_ROUTES_UNRESOLVED: &str = include_str!("testdata/bird-b-show-route-all-unresolved.txt");
    // `birdc -s a.ctl show route all` on the route reflector: two BGP routes
    // for 172.16.5.0/26 (from b and c), a static `unreachable`.
    const A_ROUTES: &str = include_str!("testdata/bird-a-show-route-all.txt");
    // `birdc -s c.ctl show route all`
    const C_ROUTES: &str = include_str!("testdata/bird-c-show-route-all.txt");
    // `birdc -s b.ctl show route all 172.16.5.0/26`
    const B_ROUTE_PREFIX: &str = include_str!("testdata/bird-b-show-route-all-prefix.txt");
    // `birdc -s b.ctl show route all protocol Node_10_99_0_1`
    const B_ROUTE_PROTOCOL: &str = include_str!("testdata/bird-b-show-route-all-protocol.txt");
    // `birdc -s a.ctl show route` (no attributes)
    const A_ROUTE_SHORT: &str = include_str!("testdata/bird-a-show-route.txt");
    // Raw socket on a.ctl: `show route all 172.16.5.0/26` then `show route`.
    const A_RAW_ROUTES: &str = include_str!("testdata/raw-a-show-route.txt");
    // Raw socket session on b.ctl (also holds `show route all 172.16.3.0/26`,
    // an 8001 and two 9001 replies).
    const B_RAW_SESSION: &str = include_str!("testdata/raw-b-session.txt");

    // ---- from Calico issues

    // `birdcl show route` on a calico-node route reflector (Calico BIRD
    // v0.3.3+birdv1.6.3): kernel routes, multiple BGP paths per prefix, and a
    // `!` (kernel sync error) marker. Interactive prompt lines as posted.
    // https://github.com/projectcalico/node/issues/240
    const ISSUE_NODE_240: &str = "BIRD v0.3.3+birdv1.6.3 ready.
bird> 
bird> show route
0.0.0.0/0          via 192.168.10.1 on bond0.10 [kernel1 02:33:59] * (10)
169.254.169.254/32 via 192.168.10.1 on bond0.10 [kernel1 02:33:59] * (10)
10.255.255.0/24    via 192.168.10.21 on bond0.10 [Node_192_168_10_21 02:33:58] * (100/0) [i]
                   via 192.168.10.22 on bond0.10 [Node_192_168_10_22 02:33:58] (100/0) [i]
10.0.0.0/8         via 192.168.10.1 on bond0.10 [kernel1 02:33:59] * (10)
192.168.0.0/16     via 192.168.10.1 on bond0.10 [Node_192_168_10_1 02:56:53] ! (100/0) [i]
                   via 192.168.10.1 on bond0.10 [kernel1 02:33:59] (10)
10.1.105.192/26    via 192.168.10.21 on bond0.10 [Node_192_168_10_21 02:33:58] * (100/0) [i]
192.168.10.0/24    dev bond0.10 [direct1 02:33:58] * (240)
10.1.231.128/26    via 192.168.10.22 on bond0.10 [Node_192_168_10_22 02:33:58] * (100/0) [i]
172.16.0.0/12      via 192.168.10.1 on bond0.10 [kernel1 02:33:59] * (10)
";

    // `birdcl -s /var/run/calico/bird.ctl show route | grep …` on a Calico
    // node: routes reflected by an RR (`from`), dates as `since`.
    // https://github.com/projectcalico/calico/issues/9500
    const ISSUE_CALICO_9500: &str =
        "10.128.121.154/32  via 10.128.122.48 on bond0 [Node_10_128_122_26 08:12:30 from 10.128.122.26] * (100/0) [i]
10.128.121.145/32  via 10.128.122.48 on bond0 [Node_10_128_122_26 07:16:26 from 10.128.122.26] * (100/0) [i]
10.128.121.192/27  via 10.128.122.48 on bond0 [Node_10_128_122_26 2023-10-08 from 10.128.122.26] * (100/0) [i]
10.128.121.255/32  via 10.128.122.48 on bond0 [Node_10_128_122_26 2024-09-05 from 10.128.122.26] * (100/0) [i]
10.128.121.250/32  via 10.128.122.48 on bond0 [Node_10_128_122_26 2024-10-22 from 10.128.122.26] * (100/0) [i]
10.128.121.244/32  via 10.128.122.48 on bond0 [Node_10_128_122_26 2024-10-14 from 10.128.122.26] * (100/0) [i]
";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn reflected_route_with_cluster_list() {
        let routes = parse_routes(B_ROUTES).unwrap();
        assert_eq!(routes.len(), 9);
        let r = find_route(&routes, "172.16.3.0/26").unwrap();
        assert_eq!(
            *r,
            Route {
                prefix: "172.16.3.0/26".parse().unwrap(),
                kind: RouteKind::Unicast,
                via: Some(ip("10.99.0.1")),
                dev: Some("veth-ba".into()),
                nexthops: vec![],
                protocol: "Node_10_99_0_1".into(),
                since: "13:30:52".into(),
                from: None,
                primary: true,
                sync_error: false,
                preference: 100,
                suppressed: false,
                igp_metric: Some(IgpMetric::Unknown),
                origin_as: Some(64513),
                origin: Some(Origin::Igp),
                info: None,
                source: Some("BGP".into()),
                cast: Some("unicast".into()),
                scope: Some("univ".into()),
                attrs: BgpAttrs {
                    origin: Some(Origin::Igp),
                    as_path: vec![64513],
                    next_hop: Some(ip("10.99.1.3")),
                    next_hop_link_local: None,
                    local_pref: Some(100),
                    med: Some(50),
                    originator_id: Some(v4("10.99.1.3")),
                    cluster_list: vec![v4("1.0.0.1")],
                    communities: vec![(64512, 100)],
                    large_communities: vec![(64512, 1, 2)],
                    atomic_aggregate: false,
                    aggregator: None,
                    ext_communities: None,
                },
                other_attrs: vec![],
            }
        );
        assert_eq!(r.cluster_list(), &[v4("1.0.0.1")]);
        assert!(r.is_bgp());
        assert_eq!(r.learned_from(), Some(ip("10.99.0.1")));
        assert!(find_route(&routes, "172.16.4.0/26").is_none());
        assert!(find_route(&routes, "not a prefix").is_none());
        assert_eq!(find_route(&routes, "172.16.2.0/26").unwrap().learned_from(), None);
    }

    #[test]
    fn two_routes_for_one_prefix() {
        let routes = parse_routes(B_ROUTES).unwrap();
        let both = find_routes(&routes, "172.16.5.0/26");
        assert_eq!(both.len(), 2);
        assert_eq!(both[0].kind, RouteKind::Blackhole);
        assert_eq!(both[0].protocol, "static1");
        assert!(both[0].primary);
        assert_eq!(both[0].preference, 200);
        assert_eq!(both[0].igp_metric, None);
        assert_eq!(both[0].source.as_deref(), Some("static"));
        assert!(!both[1].primary);
        assert_eq!(both[1].origin_as, Some(64513));
        assert_eq!(both[1].origin, Some(Origin::Incomplete));
        assert_eq!(both[1].attrs.origin, Some(Origin::Incomplete));
        assert_eq!(both[1].igp_metric, Some(IgpMetric::Unknown));
        assert_eq!(find_route(&routes, "172.16.5.0/26").unwrap().kind, RouteKind::Blackhole);

        // The non-reflected route from the RR itself: empty AS path, no cluster list.
        let r = find_route(&routes, "172.16.1.0/26").unwrap();
        assert_eq!(r.as_path(), &[] as &[u32]);
        assert!(r.cluster_list().is_empty());
        assert_eq!(r.originator_id(), None);
        assert_eq!(r.bgp_next_hop(), Some(ip("10.99.0.1")));
        assert_eq!(r.igp_metric, Some(IgpMetric::Known(0)));
        assert_eq!(r.origin_as, None);
        assert_eq!(r.origin, Some(Origin::Igp));

        // Device routes and the static route to the RR's other subnet.
        let d = find_route(&routes, "10.244.1.0/32").unwrap();
        assert_eq!((d.kind, d.dev.as_deref(), d.via), (RouteKind::Unicast, Some("tunl0"), None));
        assert_eq!(d.source.as_deref(), Some("device"));
        let s = find_route(&routes, "10.99.1.0/24").unwrap();
        assert_eq!(s.via, Some(ip("10.99.0.1")));
        assert_eq!(s.protocol, "static1");
    }

    #[test]
    fn unresolvable_next_hop_is_unreachable() {
        let routes = parse_routes(B_ROUTES_UNRESOLVED).unwrap();
        let r = find_route(&routes, "172.16.3.0/26").unwrap();
        assert_eq!(r.kind, RouteKind::Unreachable);
        assert_eq!(r.via, None);
        assert_eq!(r.from, Some(ip("10.99.0.1")));
        assert_eq!(r.learned_from(), Some(ip("10.99.0.1")));
        assert_eq!(r.since, "13:29:55");
        assert_eq!(r.igp_metric, Some(IgpMetric::Unresolvable));
        assert_eq!(r.bgp_next_hop(), Some(ip("10.99.1.3")));
        assert_eq!(r.cluster_list(), &[v4("1.0.0.1")]);
        assert_eq!(r.originator_id(), Some(v4("10.99.1.3")));
        assert_eq!(r.attrs.med, Some(50));
    }

    #[test]
    fn route_reflector_view() {
        let routes = parse_routes(A_ROUTES).unwrap();
        let prefixes: Vec<String> = routes.iter().map(|r| r.prefix.to_string()).collect();
        assert_eq!(
            prefixes,
            vec![
                "10.99.0.0/24",
                "10.99.1.0/24",
                "172.16.9.0/24",
                "172.16.5.0/26",
                "172.16.5.0/26",
                "172.16.1.0/26",
                "172.16.2.0/26",
                "172.16.3.0/26"
            ]
        );
        let u = find_route(&routes, "172.16.9.0/24").unwrap();
        assert_eq!((u.kind, u.protocol.as_str(), u.preference), (RouteKind::Unreachable, "static1", 200));
        let bh = find_route(&routes, "172.16.1.0/26").unwrap();
        assert_eq!(bh.kind, RouteKind::Blackhole);
        let two = find_routes(&routes, "172.16.5.0/26");
        assert_eq!(two[0].protocol, "Node_10_99_0_2");
        assert!(two[0].primary);
        assert_eq!(two[0].attrs.med, None);
        assert_eq!(two[1].protocol, "Node_10_99_1_3");
        assert!(!two[1].primary);
        assert_eq!(two[1].via, Some(ip("10.99.1.3")));
        assert_eq!(two[1].dev.as_deref(), Some("veth-ac"));
        assert_eq!(two[1].attrs.med, Some(50));
        assert_eq!(two[1].since, "13:30:52");
        // Routes the RR learned straight from its clients are not reflected yet.
        assert!(routes.iter().all(|r| r.cluster_list().is_empty()));

        let c = parse_routes(C_ROUTES).unwrap();
        let r = find_routes(&c, "172.16.5.0/26");
        assert_eq!(r[1].kind, RouteKind::Unreachable);
        assert_eq!(r[1].from, Some(ip("10.99.1.1")));
        assert_eq!(r[1].originator_id(), Some(v4("10.99.0.2")));
    }

    #[test]
    fn filtered_show_route_and_short_form() {
        let r = parse_routes(B_ROUTE_PREFIX).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|x| x.prefix.to_string() == "172.16.5.0/26"));
        let p = parse_routes(B_ROUTE_PROTOCOL).unwrap();
        assert!(p.iter().all(|x| x.protocol == "Node_10_99_0_1"));
        assert_eq!(p.len(), 4);

        let short = parse_routes(A_ROUTE_SHORT).unwrap();
        let long = parse_routes(A_ROUTES).unwrap();
        assert_eq!(short.len(), long.len());
        for (s, l) in short.iter().zip(&long) {
            assert_eq!(
                (s.prefix, s.kind, s.via, &s.protocol, s.primary),
                (l.prefix, l.kind, l.via, &l.protocol, l.primary)
            );
            assert_eq!(s.source, None);
            assert_eq!(s.attrs, BgpAttrs::default());
        }
    }

    #[test]
    fn raw_socket_routes() {
        let r = parse_routes(A_RAW_ROUTES).unwrap();
        // `show route all 172.16.5.0/26` (2 routes) + `show route` (8 routes).
        assert_eq!(r.len(), 10);
        assert_eq!(r[1].attrs.as_path, vec![64513]);
        assert_eq!(r[1].attrs.origin, Some(Origin::Incomplete));
        assert_eq!(r[0].source.as_deref(), Some("BGP"));
        assert_eq!(r[6].prefix.to_string(), "172.16.5.0/26");
        assert!(!r[6].primary);

        let first: String = B_RAW_SESSION
            .lines()
            .filter(|l| l.starts_with("1007") || l.starts_with("1008") || l.starts_with("1012") || l.starts_with(" \t"))
            .map(|l| format!("{l}\n"))
            .collect();
        let r = parse_routes(&first).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].cluster_list(), &[v4("1.0.0.1")]);

        assert_eq!(parse_routes("0001 BIRD 1.6.8 ready.\n8001 Network not in table\n").unwrap(), vec![]);
        assert_eq!(parse_routes("BIRD 1.6.8 ready.\nNetwork not in table\n").unwrap(), vec![]);
        let e = parse_routes("0001 BIRD 1.6.8 ready.\n9001 nosuch is not a protocol\n").unwrap_err();
        assert_eq!((e.line, e.bird_code), (2, Some(9001)));
    }

    #[test]
    fn calico_issue_samples() {
        let r = parse_routes(ISSUE_NODE_240).unwrap();
        assert_eq!(r.len(), 11);
        let paths = find_routes(&r, "10.255.255.0/24");
        assert_eq!(paths.len(), 2);
        assert_eq!(paths[1].via, Some(ip("192.168.10.22")));
        assert_eq!(paths[1].protocol, "Node_192_168_10_22");
        let bad = find_route(&r, "192.168.0.0/16").unwrap();
        assert!(bad.primary && bad.sync_error);
        assert_eq!(bad.protocol, "Node_192_168_10_1");
        let k = find_route(&r, "0.0.0.0/0").unwrap();
        assert_eq!((k.protocol.as_str(), k.preference, k.igp_metric, k.origin), ("kernel1", 10, None, None));
        assert_eq!(k.dev.as_deref(), Some("bond0.10"));

        let r = parse_routes(ISSUE_CALICO_9500).unwrap();
        assert_eq!(r.len(), 6);
        assert!(r.iter().all(|x| x.from == Some(ip("10.128.122.26")) && x.via == Some(ip("10.128.122.48"))));
        assert_eq!(r[2].since, "2023-10-08");
        assert_eq!(r[2].prefix.to_string(), "10.128.121.192/27");
    }

    #[test]
    fn route_line_forms() {
        let r = parse_routes(
            "10.0.0.0/24        multipath [static1 12:00:00] * (200)\n\tvia 10.99.0.1 on eth0 weight 1\n\tvia 10.99.0.2 on eth1 weight 2\n\
             10.1.0.0/24        via 10.0.0.3 on eth0 [Mesh_10_0_0_3 12:00:01 from 10.0.0.3] * (100-/0) [AS64512i]\n\
             10.2.0.0/24        prohibited [static1 2016-11-21 12:00:00] (200)\n\
             10.3.0.0/24        via 10.0.0.1 on eth0 [ospf1 12:00:00] * E2 (150/10/10000) [10.0.0.1]\n",
        );
        // OSPF's `E2 (150/10/10000)` is not a BGP/static form: rejected with a line.
        let e = r.unwrap_err();
        assert_eq!(e.line, 6);

        let r = parse_routes(
            "10.0.0.0/24        multipath [static1 12:00:00] * (200)\n\tvia 10.99.0.1 on eth0 weight 1\n\tvia 10.99.0.2 on eth1 weight 2\n\
             10.1.0.0/24        via 10.0.0.3 on eth0 [Mesh_10_0_0_3 12:00:01 from 10.0.0.3] * (100-/0) [AS64512i]\n\
             \tBGP.as_path: 64512 {64513 64514}\n\tBGP.next_hop: 2001:db8::1 fe80::1\n\tBGP.atomic_aggr: \n\tKernel.metric: 0\n\
             10.2.0.0/24        prohibited [static1 2016-11-21 12:00:00] (200)\n",
        )
        .unwrap();
        assert_eq!(r[0].kind, RouteKind::Multipath);
        assert_eq!(
            r[0].nexthops,
            vec![
                NextHop { via: ip("10.99.0.1"), dev: Some("eth0".into()), weight: Some(1) },
                NextHop { via: ip("10.99.0.2"), dev: Some("eth1".into()), weight: Some(2) },
            ]
        );
        assert!(r[1].suppressed);
        assert_eq!(r[1].from, Some(ip("10.0.0.3")));
        assert_eq!(r[1].attrs.as_path, vec![64512, 64513, 64514]);
        assert_eq!(r[1].attrs.next_hop_link_local, Some(ip("fe80::1")));
        assert!(r[1].attrs.atomic_aggregate);
        assert_eq!(r[1].other_attrs, vec![("Kernel.metric".to_string(), "0".to_string())]);
        assert_eq!(r[2].kind, RouteKind::Prohibited);
        assert_eq!(r[2].since, "2016-11-21 12:00:00");
        assert!(!r[2].primary);
    }

    #[test]
    fn malformed_routes_name_the_line() {
        let e = parse_routes("BIRD 1.6.8 ready.\n10.0.0.0/24 via 10.0.0.1 on eth0\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.expected.contains("[<protocol> <since>]"), "{e}");
        let e = parse_routes("notaprefix  dev eth0 [direct1 12:00:00] * (240)\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_routes("\tBGP.origin: IGP\n").unwrap_err();
        assert!(e.expected.contains("route line before"));
        let e = parse_routes("10.0.0.0/24 dev eth0 [direct1 12:00:00] * (240)\n\tBGP.med: lots\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.expected.starts_with("BGP.med"), "{e}");
        let e = parse_routes("10.0.0.0/24 teleport [direct1 12:00:00] * (240)\n").unwrap_err();
        assert!(e.expected.contains("destination"));
        let e = parse_routes("                   dev eth0 [direct1 12:00:00] * (240)\n").unwrap_err();
        assert!(e.expected.contains("starting with its prefix"));
    }
}
