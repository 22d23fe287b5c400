//! Typed parsers for what rrlab observes on a node (modelled on MetalLB's
//! `e2etest/pkg/frr`): BIRD's control socket / `birdc` output, the kernel FIB
//! (`ip route`, `ip -j route`), `ipset`, `iptables-save` / `iptables -L`,
//! `ping`, and `calicoctl node status` (which is also rendered here, byte for
//! byte, from BIRD's `show protocols`).
//!
//! Everything here is pure: text in, typed data (or a [`ParseError`] naming the
//! line and what was expected) out. No parser panics on any input. All outputs
//! derive `Serialize`/`Deserialize` so a failing expectation can dump them as
//! JSON.
//!
//! The tests use real outputs only: captured from Debian's BIRD 1.6.8,
//! iproute2 6.1, ipset 7.17, iptables 1.8.9 and iputils 20221126 running in
//! private network namespaces (see `testdata/README.md`), and outputs posted in
//! Calico issues (URL above each sample).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

pub mod bird;
pub mod birdroute;
pub mod ipset;
pub mod iptables;
pub mod kernel;
pub mod nodestatus;
pub mod ping;
mod tablewriter;

#[cfg(test)]
mod robustness_tests;

pub use bird::{
    decode_bird, parse_configure, parse_configure_replies, parse_protocols, parse_protocols_all, parse_status,
    BgpDetail, BirdLine, BirdStatus, ConfigError, ConfigureOutcome, ConfigureReply, DaemonState, Protocol,
    ProtocolDetail, RouteChangeStat, RouteCounts,
};
pub use birdroute::{find_route, find_routes, parse_routes, BgpAttrs, IgpMetric, NextHop, Origin, Route, RouteKind};
pub use ipset::{parse_ipset, IpSet};
pub use iptables::{
    parse_iptables_list, parse_iptables_save, Chain, Counters, IpTables, IptablesListing, ListedChain, ListedRule,
    MatchSet, Rule, Table,
};
pub use kernel::{
    parse_ip_route, parse_ip_route_json, parse_ip_route_text, KernelNextHop, KernelRoute, KernelRouteType, Realms,
};
pub use nodestatus::{
    parse_node_status, parse_node_status_report, render_node_status, render_node_status_with, BgpSection, NodeStatus,
    NodeStatusInput, PeerStatus, PeerType,
};
pub use ping::{parse_ping, PingError, PingReply, PingResult, Rtt};

/// A parse failure: which output was being read, the 1-based line (0 when the
/// input is not line oriented, e.g. a JSON document), what the parser expected
/// there and what it found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{}", self.describe())]
pub struct ParseError {
    /// The output being parsed, e.g. `birdc show protocols`.
    pub input: String,
    /// 1-based line number; 0 when not tied to a line.
    pub line: usize,
    /// What the parser expected at that point.
    pub expected: String,
    /// What it found (the offending line, shortened).
    pub found: String,
    /// For BIRD control-socket replies: the numeric reply code of an error
    /// reply (`8xxx`/`9xxx`), when that is what stopped the parser.
    pub bird_code: Option<u16>,
}

impl ParseError {
    pub(crate) fn new(input: &str, line: usize, expected: impl Into<String>, found: impl AsRef<str>) -> Self {
        ParseError {
            input: input.to_string(),
            line,
            expected: expected.into(),
            found: shorten(found.as_ref(), 160),
            bird_code: None,
        }
    }

    fn describe(&self) -> String {
        if self.line == 0 {
            format!("{}: expected {}, found {:?}", self.input, self.expected, self.found)
        } else {
            format!("{}: line {}: expected {}, found {:?}", self.input, self.line, self.expected, self.found)
        }
    }
}

pub(crate) fn shorten(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

/// An IP prefix (`10.244.1.0/26`, `fd00::/64`). Parsed from `addr/len`, or a
/// bare address (a host prefix). Serialized as its string form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        if len <= max_len(&addr) {
            Some(Prefix { addr, len })
        } else {
            None
        }
    }

    /// The IPv4 default route `0.0.0.0/0`.
    pub fn default_v4() -> Prefix {
        Prefix { addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED), len: 0 }
    }

    /// The IPv6 default route `::/0`.
    pub fn default_v6() -> Prefix {
        Prefix { addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED), len: 0 }
    }

    pub fn is_default(&self) -> bool {
        self.len == 0
    }

    /// True for a /32 (IPv4) or /128 (IPv6).
    pub fn is_host(&self) -> bool {
        self.len == max_len(&self.addr)
    }

    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.len == 0 { 0 } else { u32::MAX << (32 - u32::from(self.len)) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.len == 0 { 0 } else { u128::MAX << (128 - u32::from(self.len)) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn max_len(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Prefix, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an IP prefix"))?;
        let len = match len {
            Some(l) => l.parse::<u8>().map_err(|_| format!("{s:?} has a bad prefix length"))?,
            None => max_len(&addr),
        };
        Prefix::new(addr, len).ok_or_else(|| format!("{s:?} has a prefix length out of range"))
    }
}

impl Serialize for Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Prefix, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Split `s` into whitespace-separated tokens, returning each token with its
/// byte offset (so callers can take "the rest of the line" from a token on).
pub(crate) fn tokens_with_offsets(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() {
            if let Some(st) = start.take() {
                out.push((st, &s[st..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push((st, &s[st..]));
    }
    out
}

/// Lines of `text` numbered from 1 (handles `\r\n`).
pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_parse_display_contains() {
        let p: Prefix = "10.244.1.0/26".parse().unwrap();
        assert_eq!(p.to_string(), "10.244.1.0/26");
        assert!(p.contains("10.244.1.63".parse().unwrap()));
        assert!(!p.contains("10.244.1.64".parse().unwrap()));
        assert!(!p.contains("fd00::1".parse().unwrap()));
        let h: Prefix = "10.244.1.5".parse().unwrap();
        assert_eq!(h.len, 32);
        assert!(h.is_host());
        assert!(Prefix::default_v4().contains("8.8.8.8".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Prefix>().is_err());
        assert!("10.0.0/8".parse::<Prefix>().is_err());
        let v6: Prefix = "fd80:24e2:f998:72d7::/64".parse().unwrap();
        assert!(v6.contains("fd80:24e2:f998:72d7::2".parse().unwrap()));
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"10.244.1.0/26\"".to_string());
        let back: Prefix = serde_json::from_str("\"10.244.1.0/26\"").unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn parse_error_names_line_and_expectation() {
        let e = ParseError::new("birdc show protocols", 3, "a protocol row", "garbage");
        assert_eq!(e.to_string(), "birdc show protocols: line 3: expected a protocol row, found \"garbage\"");
        let e = ParseError::new("ip -j route", 0, "a JSON array", "{}");
        assert_eq!(e.to_string(), "ip -j route: expected a JSON array, found \"{}\"");
    }

    #[test]
    fn tokens_keep_offsets() {
        let t = tokens_with_offsets("a  bc\td");
        assert_eq!(t, vec![(0, "a"), (3, "bc"), (6, "d")]);
    }
}
