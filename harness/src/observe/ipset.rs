//! `ipset list [name]` and `ipset save` output.

use super::{numbered_lines, ParseError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One IP set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpSet {
    pub name: String,
    /// `hash:net`, `hash:ip`, `hash:ip,port`, `list:set`, …
    pub kind: String,
    /// `ipset list` only.
    pub revision: Option<u32>,
    /// Header fields (`family` → `inet`, `hashsize` → `1024`, `maxelem`,
    /// `bucketsize`, `initval`, `timeout`, …); flag words (`counters`,
    /// `comment`, `skbinfo`, `forceadd`) map to an empty string.
    pub header: BTreeMap<String, String>,
    /// `ipset list` only.
    pub size_in_memory: Option<u64>,
    /// `ipset list` only: how many iptables rules / sets reference the set.
    pub references: Option<u32>,
    /// `ipset list` only (ipset ≥ 7.?): `Number of entries`.
    pub number_of_entries: Option<u32>,
    /// Elements in the order printed (hash sets print in hash order).
    pub members: Vec<String>,
    /// Per-element options (`timeout 30`, `packets 0 bytes 0`, `comment "x"`)
    /// for elements that have any.
    pub member_options: BTreeMap<String, String>,
}

impl IpSet {
    fn new(name: &str, kind: &str) -> IpSet {
        IpSet {
            name: name.to_string(),
            kind: kind.to_string(),
            revision: None,
            header: BTreeMap::new(),
            size_in_memory: None,
            references: None,
            number_of_entries: None,
            members: Vec::new(),
            member_options: BTreeMap::new(),
        }
    }

    pub fn contains(&self, member: &str) -> bool {
        self.members.iter().any(|m| m == member)
    }

    /// `family` header field (`inet`/`inet6`).
    pub fn family(&self) -> Option<&str> {
        self.header.get("family").map(String::as_str)
    }

    /// Members, sorted (hash sets list in hash order, which varies).
    pub fn sorted_members(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.members.iter().map(String::as_str).collect();
        v.sort();
        v
    }
}

const FLAG_WORDS: &[&str] = &["counters", "comment", "skbinfo", "forceadd", "nomatch"];

fn parse_header(words: &[&str]) -> BTreeMap<String, String> {
    let mut h = BTreeMap::new();
    let mut i = 0;
    while i < words.len() {
        let k = words[i];
        if FLAG_WORDS.contains(&k) || i + 1 >= words.len() {
            h.insert(k.to_string(), String::new());
            i += 1;
        } else {
            h.insert(k.to_string(), words[i + 1].to_string());
            i += 2;
        }
    }
    h
}

fn add_member(set: &mut IpSet, entry: &str) {
    let entry = entry.trim();
    match entry.split_once(char::is_whitespace) {
        Some((m, opts)) => {
            set.members.push(m.to_string());
            set.member_options.insert(m.to_string(), opts.trim().to_string());
        }
        None => set.members.push(entry.to_string()),
    }
}

/// Parse `ipset list [name]` or `ipset save` (detected from the first line).
pub fn parse_ipset(text: &str) -> Result<Vec<IpSet>, ParseError> {
    let first = numbered_lines(text).find(|(_, l)| !l.trim().is_empty());
    match first {
        None => Ok(Vec::new()),
        Some((_, l)) if l.starts_with("create ") || l.starts_with("add ") => parse_save(text),
        Some(_) => parse_list(text),
    }
}

fn parse_save(text: &str) -> Result<Vec<IpSet>, ParseError> {
    const INPUT: &str = "ipset save";
    let mut out: Vec<IpSet> = Vec::new();
    for (n, l) in numbered_lines(text) {
        if l.trim().is_empty() {
            continue;
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        match words.as_slice() {
            ["create", name, kind, rest @ ..] => {
                let mut s = IpSet::new(name, kind);
                s.header = parse_header(rest);
                out.push(s);
            }
            ["add", name, _elem, ..] => {
                let Some(set) = out.iter_mut().rev().find(|s| s.name == *name) else {
                    return Err(ParseError::new(INPUT, n, format!("`create {name} …` before its members"), l));
                };
                let entry = l.trim_start()["add".len()..].trim_start()[name.len()..].trim_start();
                add_member(set, entry);
            }
            _ => {
                return Err(ParseError::new(
                    INPUT,
                    n,
                    "`create <name> <type> [header…]` or `add <name> <element> [options]`",
                    l,
                ))
            }
        }
    }
    Ok(out)
}

fn parse_list(text: &str) -> Result<Vec<IpSet>, ParseError> {
    const INPUT: &str = "ipset list";
    let mut out: Vec<IpSet> = Vec::new();
    let mut in_members = false;
    let mut pending_name: Option<(usize, String)> = None;
    for (n, l) in numbered_lines(text) {
        if l.trim().is_empty() {
            in_members = false;
            continue;
        }
        if let Some(name) = l.strip_prefix("Name: ") {
            if let Some((pn, _)) = pending_name {
                return Err(ParseError::new(INPUT, pn + 1, "`Type: <set type>` after `Name:`", l));
            }
            pending_name = Some((n, name.trim().to_string()));
            in_members = false;
            continue;
        }
        if let Some((_, name)) = pending_name.take() {
            let Some(kind) = l.strip_prefix("Type: ") else {
                return Err(ParseError::new(INPUT, n, "`Type: <set type>` after `Name:`", l));
            };
            out.push(IpSet::new(&name, kind.trim()));
            continue;
        }
        let Some(set) = out.last_mut() else {
            return Err(ParseError::new(INPUT, n, "`Name: <set>`", l));
        };
        if in_members {
            add_member(set, l);
            continue;
        }
        let Some((k, v)) = l.split_once(':') else {
            return Err(ParseError::new(INPUT, n, "a `Field: value` header line or `Members:`", l));
        };
        let v = v.trim();
        let num_err = |what: &str| ParseError::new(INPUT, n, format!("{what} (a number)"), l);
        match k {
            "Revision" => set.revision = Some(v.parse().map_err(|_| num_err("Revision"))?),
            "Header" => set.header = parse_header(&v.split_whitespace().collect::<Vec<_>>()),
            "Size in memory" => set.size_in_memory = Some(v.parse().map_err(|_| num_err("Size in memory"))?),
            "References" => set.references = Some(v.parse().map_err(|_| num_err("References"))?),
            "Number of entries" => set.number_of_entries = Some(v.parse().map_err(|_| num_err("Number of entries"))?),
            "Members" => in_members = true,
            _ => {
                return Err(ParseError::new(
                    INPUT,
                    n,
                    "a header field (Revision, Header, Size in memory, References, Number of entries, Members)",
                    l,
                ))
            }
        }
    }
    if let Some((pn, _)) = pending_name {
        return Err(ParseError::new(INPUT, pn + 1, "`Type: <set type>` after `Name:`", "end of input"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- produced here: ipset 7.17 in netns rrobs-b. Felix-style sets:
    // `cali40all-hosts-net` (hash:net; the node IPs plus an ExternalNodesCIDR
    // 192.168.100.0/24), NAT pool sets, a named-port hash:ip,port set and an
    // empty hash:ip set; referenced by the iptables rules of iptables.rs.

    // `ipset list`
    const LIST: &str = include_str!("testdata/ipset-b-list.txt");
    // `ipset list cali40all-hosts-net`
    const LIST_ONE: &str = include_str!("testdata/ipset-b-list-hosts-net.txt");
    // `ipset save`
    const SAVE: &str = include_str!("testdata/ipset-b-save.txt");

    #[test]
    fn list_typed() {
        let sets = parse_ipset(LIST).unwrap();
        let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "cali40all-hosts-net",
                "cali40masq-ipam-pools",
                "cali40all-ipam-pools",
                "cali40n:AbCdEfGhIjKlMnOp",
                "cali40empty"
            ]
        );
        let hosts = &sets[0];
        assert_eq!(hosts.kind, "hash:net");
        assert_eq!(hosts.revision, Some(7));
        assert_eq!(hosts.family(), Some("inet"));
        assert_eq!(hosts.header.get("hashsize").map(String::as_str), Some("1024"));
        assert_eq!(hosts.header.get("maxelem").map(String::as_str), Some("1048576"));
        assert_eq!(hosts.header.get("bucketsize").map(String::as_str), Some("12"));
        assert_eq!(hosts.header.get("initval").map(String::as_str), Some("0xc9f9c50f"));
        assert_eq!(hosts.size_in_memory, Some(648));
        assert_eq!(hosts.references, Some(2));
        assert_eq!(hosts.number_of_entries, Some(4));
        assert_eq!(hosts.members, vec!["192.168.100.0/24", "10.99.0.2", "10.99.0.1", "10.99.1.3"]);
        assert_eq!(hosts.sorted_members(), vec!["10.99.0.1", "10.99.0.2", "10.99.1.3", "192.168.100.0/24"]);
        assert!(hosts.contains("10.99.1.3"));
        assert!(!hosts.contains("10.99.0.50"));
        assert_eq!(sets[2].members, vec!["10.244.0.0/16", "172.16.0.0/16"]);
        assert_eq!(sets[3].kind, "hash:ip,port");
        assert_eq!(sets[3].members, vec!["10.244.1.5,tcp:8080"]);
        assert_eq!(sets[4].kind, "hash:ip");
        assert_eq!(sets[4].revision, Some(6));
        assert_eq!(sets[4].number_of_entries, Some(0));
        assert!(sets[4].members.is_empty());
        assert!(sets.iter().all(|s| s.member_options.is_empty()));
    }

    #[test]
    fn list_one_and_save_agree() {
        let one = parse_ipset(LIST_ONE).unwrap();
        assert_eq!(one.len(), 1);
        let listed = parse_ipset(LIST).unwrap();
        assert_eq!(one[0], listed[0]);

        let saved = parse_ipset(SAVE).unwrap();
        assert_eq!(saved.len(), listed.len());
        for (s, l) in saved.iter().zip(&listed) {
            assert_eq!((&s.name, &s.kind, &s.header, &s.members), (&l.name, &l.kind, &l.header, &l.members));
            assert_eq!((s.revision, s.references), (None, None));
        }
    }

    #[test]
    fn member_options_and_flags() {
        let s = parse_ipset(
            "create t hash:ip family inet hashsize 1024 maxelem 65536 timeout 300 counters comment\nadd t 10.0.0.1 timeout 299 packets 0 bytes 0 comment \"a b\"\nadd t 10.0.0.2\n",
        )
        .unwrap();
        assert_eq!(s[0].header.get("counters").map(String::as_str), Some(""));
        assert_eq!(s[0].header.get("timeout").map(String::as_str), Some("300"));
        assert_eq!(s[0].members, vec!["10.0.0.1", "10.0.0.2"]);
        assert_eq!(
            s[0].member_options.get("10.0.0.1").map(String::as_str),
            Some("timeout 299 packets 0 bytes 0 comment \"a b\"")
        );
        assert_eq!(parse_ipset("").unwrap(), vec![]);
    }

    #[test]
    fn malformed_sets_name_the_line() {
        let e = parse_ipset("Name: x\nRevision: 7\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.expected.contains("Type"));
        let e = parse_ipset("Name: x\nType: hash:ip\nReferences: many\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_ipset("Name: x\nType: hash:ip\nColour: blue\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_ipset("add x 10.0.0.1\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.expected.contains("create x"));
        let e = parse_ipset("create x hash:ip\nflush x\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_ipset("Members:\n10.0.0.1\n").unwrap_err();
        assert_eq!(e.line, 1);
    }
}
