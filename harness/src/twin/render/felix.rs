//! Felix's IPIP-related state (felix/dataplane/linux/ipip_mgr.go, felix/rules/static.go): the
//! `cali40all-hosts-net` IP set, the `cali-INPUT`/`cali-OUTPUT` IPIP rules and the tunl0 address. Config
//! precedence is Felix's: env `FELIX_*` > FelixConfiguration `node.<name>` > FelixConfiguration `default`.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::RenderContext;
use crate::model::resources::{EncapMode, FelixConfigurationSpec};

pub const ALL_HOSTS_IPSET: &str = "cali40all-hosts-net";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IptablesRule {
    pub chain: String,
    /// iptables arguments after `-A <chain>`.
    pub args: Vec<String>,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FelixState {
    pub ipip_enabled: bool,
    /// Members of `cali40all-hosts-net` (empty and absent when IPIP is off).
    pub all_hosts_net: Vec<String>,
    /// Where the external-nodes list came from: "env", "felixconfiguration node.<n>", "felixconfiguration default".
    pub external_nodes_source: Option<String>,
    pub rules: Vec<IptablesRule>,
    pub tunl0_address: Option<Ipv4Addr>,
    pub tunl0_mtu: Option<u32>,
}

fn setting<T>(cx: &RenderContext, get: impl Fn(&FelixConfigurationSpec) -> Option<T>) -> Option<(T, String)> {
    let node_cfg = cx.ds.felix_configurations.get(&format!("node.{}", cx.node));
    if let Some(v) = node_cfg.and_then(|c| get(&c.spec)) {
        return Some((v, format!("felixconfiguration node.{}", cx.node)));
    }
    cx.ds
        .felix_configurations
        .get("default")
        .and_then(|c| get(&c.spec))
        .map(|v| (v, "felixconfiguration default".to_string()))
}

fn list_env(s: &str) -> Vec<String> {
    s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()
}

pub fn felix_state(cx: &RenderContext) -> FelixState {
    // felix/calc/encapsulation_resolver.go: explicit ipipEnabled wins, else any pool with IPIP.
    let ipip_enabled = match cx.env("FELIX_IPINIPENABLED") {
        Some(v) => v.eq_ignore_ascii_case("true"),
        None => setting(cx, |s| s.ipip_enabled)
            .map(|(v, _)| v)
            .unwrap_or_else(|| cx.ds.ip_pools.values().any(|p| p.spec.ipip_mode != EncapMode::Never)),
    };
    let (external, source) = match cx.env("FELIX_EXTERNALNODESCIDRLIST") {
        Some(v) => (list_env(v), Some("env FELIX_EXTERNALNODESCIDRLIST".to_string())),
        None => match setting(cx, |s| s.external_nodes_list.clone()) {
            Some((v, src)) => (v, Some(src)),
            None => (Vec::new(), None),
        },
    };
    let mut members: Vec<String> = Vec::new();
    if ipip_enabled {
        for n in cx.ds.nodes.values() {
            if let Some(ip) = n.bgp().ipv4 {
                members.push(ip.to_string());
            }
        }
        members.extend(external);
        members.sort();
        members.dedup();
    }
    let allow = cx
        .env("FELIX_IPTABLESFILTERALLOWACTION")
        .map(str::to_string)
        .or_else(|| setting(cx, |s| s.iptables_filter_allow_action.clone()).map(|v| v.0))
        .unwrap_or_else(|| "Accept".into())
        .to_uppercase();
    let deny = cx
        .env("FELIX_IPTABLESFILTERDENYACTION")
        .map(str::to_string)
        .or_else(|| setting(cx, |s| s.iptables_filter_deny_action.clone()).map(|v| v.0))
        .unwrap_or_else(|| "Drop".into())
        .to_uppercase();
    let mut rules = Vec::new();
    if ipip_enabled {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        rules.push(IptablesRule {
            chain: "cali-INPUT".into(),
            args: s(&[
                "-p",
                "4",
                "-m",
                "set",
                "--match-set",
                ALL_HOSTS_IPSET,
                "src",
                "-m",
                "addrtype",
                "--dst-type",
                "LOCAL",
                "-j",
                &allow,
            ]),
            comment: "Allow IPIP packets from Calico hosts".into(),
        });
        let deny_word = if deny == "DROP" { "Drop" } else { "Reject" };
        rules.push(IptablesRule {
            chain: "cali-INPUT".into(),
            args: s(&["-p", "4", "-j", &deny]),
            comment: format!("{deny_word} IPIP packets from non-Calico hosts"),
        });
        rules.push(IptablesRule {
            chain: "cali-OUTPUT".into(),
            args: s(&[
                "-p",
                "4",
                "-m",
                "set",
                "--match-set",
                ALL_HOSTS_IPSET,
                "dst",
                "-m",
                "addrtype",
                "--src-type",
                "LOCAL",
                "-j",
                &allow,
            ]),
            comment: "Allow IPIP packets to other Calico hosts".into(),
        });
    }
    let mtu = cx
        .env("FELIX_IPINIPMTU")
        .and_then(|v| v.parse::<u32>().ok())
        .or_else(|| setting(cx, |s| s.ipip_mtu).map(|v| v.0))
        .filter(|m| *m != 0);
    FelixState {
        ipip_enabled,
        all_hosts_net: members,
        external_nodes_source: source,
        rules,
        tunl0_address: if ipip_enabled { cx.ds.nodes.get(cx.node).and_then(|n| n.ipip_tunnel_addr()) } else { None },
        tunl0_mtu: mtu,
    }
}
