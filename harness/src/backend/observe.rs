//! Every observation, written once as data (where it is read + which parser reads it), and the one
//! [`LabView`] of a lab over the [`Backend`] seam: the twin and kind answer the same questions with the same
//! commands and parsers.

use std::collections::BTreeMap;

use super::{Backend, Target};
use crate::observe::{
    parse_ip_route_json, parse_ipset, parse_iptables_save, parse_ping, parse_protocols, parse_routes, IpSet, IpTables,
    KernelRoute, ParseError, Protocol, Route,
};
use crate::runbook::lab::{observe_one, LabView, NodeInfo, Obs, ObsResult, ObserveError, Observed, PodInfo};
use crate::wan::WanCounters;

/// Where calico-node keeps BIRD's IPv4 control socket (`node/filesystem/etc/service/available/bird/run`).
pub const BIRD_SOCKET: &str = "/var/run/calico/bird.ctl";
/// Where confd writes BIRD's configuration.
pub const CONFD_DIR: &str = "/etc/calico/confd/config";
/// confd's IPv4 BIRD files.
pub const CONFD_FILES: [&str; 3] = ["bird.cfg", "bird_ipam.cfg", "bird_aggr.cfg"];

/// Where an observation is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A query to the node's BIRD over its control socket.
    Bird(&'static str),
    /// A command in calico-node.
    Command(&'static [&'static str]),
    /// Felix's iptables, whichever iptables backend Felix programs (calico-node ships both and Felix picks
    /// one, `FELIX_IPTABLESBACKEND`): each command is read, the first whose rules have Calico's chains wins.
    FelixIptables(&'static [&'static [&'static str]]),
}

/// One observation: where it is read and how.
pub struct Observation<T> {
    pub what: &'static str,
    pub source: Source,
    pub parse: fn(&str) -> Result<T, ParseError>,
}

/// BIRD `show protocols`.
pub const PROTOCOLS: Observation<Vec<Protocol>> =
    Observation { what: "BGP sessions", source: Source::Bird("show protocols"), parse: parse_protocols };
/// BIRD `show route all`: the RIB with BGP attributes.
pub const RIB: Observation<Vec<Route>> =
    Observation { what: "BIRD's routes", source: Source::Bird("show route all"), parse: parse_routes };
/// The kernel's main table (calico-node runs in the host's network namespace: the node's FIB).
pub const FIB: Observation<Vec<KernelRoute>> = Observation {
    what: "the kernel's routes",
    source: Source::Command(&["ip", "-j", "route", "show", "table", "main"]),
    parse: parse_ip_route_json,
};
/// Felix's ipsets.
pub const IPSETS: Observation<Vec<IpSet>> =
    Observation { what: "ipsets", source: Source::Command(&["ipset", "list"]), parse: parse_ipset };
/// Felix's iptables rules with counters.
pub const IPTABLES: Observation<IpTables> = Observation {
    what: "iptables",
    source: Source::FelixIptables(&[&["iptables-nft-save", "-c"], &["iptables-legacy-save", "-c"]]),
    parse: parse_iptables_save,
};

/// Of the iptables dumps that could be read, the one Felix programs: the first with a `cali-` chain, else
/// the first that was read at all.
pub fn felix_iptables(dumps: impl IntoIterator<Item = Result<String, String>>) -> Result<String, String> {
    let mut first_ok = None;
    let mut errors = Vec::new();
    for d in dumps {
        match d {
            Ok(t) if t.lines().any(|l| l.starts_with(":cali-")) => return Ok(t),
            Ok(t) => {
                first_ok.get_or_insert(t);
            }
            Err(e) => errors.push(e),
        }
    }
    first_ok.ok_or_else(|| errors.join("; "))
}

/// The text of an observation on a node.
pub fn read_text(b: &dyn Backend, node: &str, source: Source) -> Result<String, ObserveError> {
    let run = |argv: &[&str]| -> Result<String, String> {
        let out = b.exec(Target::CalicoNode(node), argv).map_err(|e| e.to_string())?;
        crate::process::checked(argv, out).map_err(|e| format!("{}: {e}", Target::CalicoNode(node)))
    };
    match source {
        Source::Bird(q) => Ok(b.bird(node, q)?),
        Source::Command(argv) => run(argv).map_err(ObserveError::Unavailable),
        Source::FelixIptables(cmds) => felix_iptables(cmds.iter().map(|c| run(c))).map_err(ObserveError::Unavailable),
    }
}

/// Read and parse an observation on a node.
pub fn read<T>(b: &dyn Backend, node: &str, o: &Observation<T>) -> Observed<T> {
    Ok((o.parse)(&read_text(b, node, o.source)?)?)
}

/// One ICMP echo from a pod (`ping -c 1 -W 1`), as calico-node's users check reachability.
pub fn ping(b: &dyn Backend, from: &PodInfo, to: &PodInfo) -> bool {
    let ip = to.ip.to_string();
    match b.exec(Target::Pod(&from.name), &["ping", "-c", "1", "-W", "1", &ip]) {
        Ok(o) => parse_ping(&o.stdout).map(|r| r.received > 0).unwrap_or(false),
        Err(_) => false,
    }
}

/// Run `f` over `items`, [`crate::lab::converge::FAN_OUT`] at a time; results in order.
pub fn fan_out<I: Sync, R: Send>(items: &[I], f: impl Fn(&I) -> R + Sync) -> Vec<R> {
    crate::lab::converge::fan_out(items, crate::lab::converge::FAN_OUT, f)
}

/// The lab as expectations see it, over the seam.
pub struct SeamView<'a> {
    pub backend: &'a dyn Backend,
}

impl<'a> SeamView<'a> {
    pub fn new(backend: &'a dyn Backend) -> SeamView<'a> {
        SeamView { backend }
    }
}

impl LabView for SeamView<'_> {
    fn nodes(&self) -> Vec<NodeInfo> {
        self.backend.nodes()
    }
    fn protocols(&self, node: &str) -> Observed<Vec<Protocol>> {
        read(self.backend, node, &PROTOCOLS)
    }
    fn rib(&self, node: &str) -> Observed<Vec<Route>> {
        read(self.backend, node, &RIB)
    }
    fn fib(&self, node: &str) -> Observed<Vec<KernelRoute>> {
        match self.backend.kernel_routes(node) {
            Some(r) => Ok(r?),
            None => read(self.backend, node, &FIB),
        }
    }
    fn ipsets(&self, node: &str) -> Observed<Vec<IpSet>> {
        read(self.backend, node, &IPSETS)
    }
    fn iptables(&self, node: &str) -> Observed<IpTables> {
        read(self.backend, node, &IPTABLES)
    }
    fn config(&self, node: &str) -> Observed<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for f in CONFD_FILES {
            out.insert(f.to_string(), self.backend.read_file(node, &format!("{CONFD_DIR}/{f}"))?);
        }
        Ok(out)
    }
    fn bird_config_error(&self, node: &str) -> Option<String> {
        self.backend.bird_config_error(node)
    }
    fn ping(&self, from: &PodInfo, to: &PodInfo) -> bool {
        ping(self.backend, from, to)
    }
    fn ping_many(&self, pairs: &[(PodInfo, PodInfo)]) -> Vec<bool> {
        fan_out(pairs, |(a, b)| ping(self.backend, a, b))
    }
    fn observe_many(&self, needs: &[(Obs, String)]) -> Vec<ObsResult> {
        fan_out(needs, |(w, n)| observe_one(self, *w, n))
    }
    fn wan(&self) -> Observed<WanCounters> {
        Ok(crate::wan::counters(self.backend)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn felix_iptables_picks_the_backend_with_calicos_chains() {
        let nft = "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n".to_string();
        let legacy = "*filter\n:INPUT ACCEPT [0:0]\n:cali-INPUT - [0:0]\nCOMMIT\n".to_string();
        assert_eq!(felix_iptables(vec![Ok(nft.clone()), Ok(legacy.clone())]).unwrap(), legacy);
        assert_eq!(felix_iptables(vec![Err("no nft".into()), Ok(nft.clone())]).unwrap(), nft);
        assert_eq!(felix_iptables(vec![Err("a".into()), Err("b".into())]).unwrap_err(), "a; b");
    }

    #[test]
    fn fan_out_keeps_order() {
        let v: Vec<u32> = (0..100).collect();
        assert_eq!(fan_out(&v, |x| x * 2), (0..100).map(|x| x * 2).collect::<Vec<_>>());
    }
}
