//! `iptables-save [-c]` and `iptables -L [CHAIN] -v -n [-x]` output.

use super::{numbered_lines, ParseError};
use serde::{Deserialize, Serialize};

/// Packet and byte counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
}

/// `-m set [!] --match-set <name> <flags>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchSet {
    pub name: String,
    /// `src`, `dst`, `src,dst`, …
    pub flags: String,
    pub negated: bool,
}

/// One `-A` rule of `iptables-save`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub table: String,
    pub chain: String,
    /// The rule's tokens after `-A <chain>`, unquoted.
    pub args: Vec<String>,
    /// Every `--comment` text, in order.
    pub comments: Vec<String>,
    /// `-p` value as printed (`ipencap` for protocol 4, `tcp`, …).
    pub protocol: Option<String>,
    pub protocol_negated: bool,
    pub source: Option<String>,
    pub destination: Option<String>,
    pub in_interface: Option<String>,
    pub out_interface: Option<String>,
    pub match_sets: Vec<MatchSet>,
    /// `-j` target (or `-g` goto target).
    pub target: Option<String>,
    /// True for `-g`.
    pub goto: bool,
    /// Tokens after the target (`--random-fully`, `--to-ports 80`, …).
    pub target_args: Vec<String>,
    /// `[packets:bytes]` with `iptables-save -c`.
    pub counters: Option<Counters>,
    /// 1-based line in the input.
    pub line: usize,
}

impl Rule {
    /// Protocol number for the `-p` value (`ipencap`/`ipip`/`4` → 4, …).
    pub fn protocol_number(&self) -> Option<u8> {
        let p = self.protocol.as_deref()?;
        if let Ok(n) = p.parse() {
            return Some(n);
        }
        Some(match p {
            "icmp" => 1,
            "igmp" => 2,
            "ipencap" | "ipip" => 4,
            "tcp" => 6,
            "udp" => 17,
            "ipv6" => 41,
            "gre" => 47,
            "esp" => 50,
            "ah" => 51,
            "ipv6-icmp" | "icmpv6" => 58,
            "sctp" => 132,
            "all" => 0,
            _ => return None,
        })
    }

    pub fn has_comment(&self, text: &str) -> bool {
        self.comments.iter().any(|c| c == text)
    }
}

/// A chain of `iptables-save`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    pub name: String,
    /// Built-in chains: `ACCEPT`/`DROP`; user chains (`-`): `None`.
    pub policy: Option<String>,
    pub counters: Option<Counters>,
    pub rules: Vec<Rule>,
}

/// A `*table` section of `iptables-save`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub chains: Vec<Chain>,
}

impl Table {
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
}

/// All tables of an `iptables-save` dump.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IpTables {
    pub tables: Vec<Table>,
}

impl IpTables {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The chain `chain` in any table (the first table that has it).
    pub fn chain(&self, chain: &str) -> Option<&Chain> {
        self.tables.iter().find_map(|t| t.chain(chain))
    }

    /// The first rule of `chain` (in any table) with a comment equal to
    /// `text`, or else the first whose comment contains `text`.
    pub fn rule_by_comment(&self, chain: &str, text: &str) -> Option<&Rule> {
        let rules = || {
            self.tables
                .iter()
                .flat_map(|t| t.chains.iter())
                .filter(move |c| c.name == chain)
                .flat_map(|c| c.rules.iter())
        };
        rules().find(|r| r.has_comment(text)).or_else(|| rules().find(|r| r.comments.iter().any(|c| c.contains(text))))
    }

    /// Every rule, in order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.tables.iter().flat_map(|t| t.chains.iter()).flat_map(|c| c.rules.iter())
    }
}

fn parse_counters(s: &str) -> Option<Counters> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    let (p, b) = inner.split_once(':')?;
    Some(Counters { packets: p.parse().ok()?, bytes: b.parse().ok()? })
}

/// Split an iptables-save rule into words: blanks separate, double quotes
/// group (with `\"` and `\\` escapes). `None` on an unterminated quote.
fn split_words(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => cur.push(chars.next()?),
                        ch => cur.push(ch),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
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
        out.push(cur);
    }
    Some(out)
}

fn parse_rule(
    table: &str,
    words: Vec<String>,
    counters: Option<Counters>,
    line: usize,
    raw: &str,
) -> Result<Rule, ParseError> {
    const INPUT: &str = "iptables-save";
    if words.len() < 2 || words[0] != "-A" {
        return Err(ParseError::new(INPUT, line, "`[pkts:bytes] -A <chain> …`", raw));
    }
    let mut r = Rule {
        table: table.to_string(),
        chain: words[1].clone(),
        args: words[2..].to_vec(),
        comments: Vec::new(),
        protocol: None,
        protocol_negated: false,
        source: None,
        destination: None,
        in_interface: None,
        out_interface: None,
        match_sets: Vec::new(),
        target: None,
        goto: false,
        target_args: Vec::new(),
        counters,
        line,
    };
    let a = &r.args;
    let mut neg = false;
    let mut i = 0;
    let (mut comments, mut sets) = (Vec::new(), Vec::new());
    let (mut proto, mut proto_neg, mut src, mut dst, mut iif, mut oif) = (None, false, None, None, None, None);
    let (mut target, mut goto, mut targs) = (None, false, Vec::new());
    let need = |i: usize, opt: &str| -> Result<String, ParseError> {
        a.get(i + 1).cloned().ok_or_else(|| ParseError::new(INPUT, line, format!("a value after `{opt}`"), raw))
    };
    while i < a.len() {
        let t = a[i].as_str();
        match t {
            "!" => {
                neg = true;
                i += 1;
                continue;
            }
            "--comment" => {
                comments.push(need(i, t)?);
                i += 2;
            }
            "-p" | "--protocol" => {
                proto = Some(need(i, t)?);
                proto_neg = neg;
                i += 2;
            }
            "-s" | "--source" => {
                let v = need(i, t)?;
                src = Some(if neg { format!("!{v}") } else { v });
                i += 2;
            }
            "-d" | "--destination" => {
                let v = need(i, t)?;
                dst = Some(if neg { format!("!{v}") } else { v });
                i += 2;
            }
            "-i" | "--in-interface" => {
                let v = need(i, t)?;
                iif = Some(if neg { format!("!{v}") } else { v });
                i += 2;
            }
            "-o" | "--out-interface" => {
                let v = need(i, t)?;
                oif = Some(if neg { format!("!{v}") } else { v });
                i += 2;
            }
            "--match-set" => {
                let name = need(i, t)?;
                let flags = a
                    .get(i + 2)
                    .cloned()
                    .ok_or_else(|| ParseError::new(INPUT, line, "`--match-set <name> <flags>`", raw))?;
                sets.push(MatchSet { name, flags, negated: neg });
                i += 3;
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                target = Some(need(i, t)?);
                goto = t == "-g" || t == "--goto";
                targs = a[i + 2..].to_vec();
                break;
            }
            _ => i += 1,
        }
        neg = false;
    }
    r.comments = comments;
    r.match_sets = sets;
    r.protocol = proto;
    r.protocol_negated = proto_neg;
    r.source = src;
    r.destination = dst;
    r.in_interface = iif;
    r.out_interface = oif;
    r.target = target;
    r.goto = goto;
    r.target_args = targs;
    Ok(r)
}

/// Parse `iptables-save` (with or without `-c`).
pub fn parse_iptables_save(text: &str) -> Result<IpTables, ParseError> {
    const INPUT: &str = "iptables-save";
    let mut out = IpTables::default();
    let mut open = false;
    for (n, l) in numbered_lines(text) {
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(name) = t.strip_prefix('*') {
            if open {
                return Err(ParseError::new(INPUT, n, "`COMMIT` before the next table", l));
            }
            out.tables.push(Table { name: name.to_string(), chains: Vec::new() });
            open = true;
            continue;
        }
        if t == "COMMIT" {
            if !open {
                return Err(ParseError::new(INPUT, n, "`*<table>` before `COMMIT`", l));
            }
            open = false;
            continue;
        }
        let Some(table) = out.tables.last_mut().filter(|_| open) else {
            return Err(ParseError::new(INPUT, n, "`*<table>`", l));
        };
        if let Some(decl) = t.strip_prefix(':') {
            let w: Vec<&str> = decl.split_whitespace().collect();
            let (name, policy, counters) = match w.as_slice() {
                [name, policy, c] => (
                    *name,
                    *policy,
                    Some(
                        parse_counters(c)
                            .ok_or_else(|| ParseError::new(INPUT, n, "chain counters `[packets:bytes]`", l))?,
                    ),
                ),
                [name, policy] => (*name, *policy, None),
                _ => {
                    return Err(ParseError::new(INPUT, n, "`:<chain> <policy|-> [packets:bytes]`", l));
                }
            };
            table.chains.push(Chain {
                name: name.to_string(),
                policy: if policy == "-" { None } else { Some(policy.to_string()) },
                counters,
                rules: Vec::new(),
            });
            continue;
        }
        let (counters, rest) = if t.starts_with('[') {
            let (c, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
            (
                Some(parse_counters(c).ok_or_else(|| ParseError::new(INPUT, n, "rule counters `[packets:bytes]`", l))?),
                rest,
            )
        } else {
            (None, t)
        };
        let words = split_words(rest).ok_or_else(|| ParseError::new(INPUT, n, "a closing `\"`", l))?;
        let table_name = table.name.clone();
        let rule = parse_rule(&table_name, words, counters, n, l)?;
        match table.chains.iter_mut().find(|c| c.name == rule.chain) {
            Some(c) => c.rules.push(rule),
            None => {
                return Err(ParseError::new(
                    INPUT,
                    n,
                    format!("a `:{}` chain declaration before its rules", rule.chain),
                    l,
                ))
            }
        }
    }
    if open {
        return Err(ParseError::new(INPUT, text.lines().count(), "`COMMIT`", "end of input"));
    }
    Ok(out)
}

// ------------------------------------------------------------ iptables -L

/// A rule row of `iptables -L -v -n [-x]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedRule {
    /// With `-v`; without `-x` iptables rounds (K/M/G = ×1000) and so do we.
    pub counters: Option<Counters>,
    /// Empty target column (a rule without `-j`) is `None`.
    pub target: Option<String>,
    /// As printed: `4`, `tcp`, `0` (all), `!tcp`, …
    pub prot: String,
    pub opt: String,
    pub in_iface: Option<String>,
    pub out_iface: Option<String>,
    pub source: String,
    pub destination: String,
    /// The match/target details after the destination column, verbatim.
    pub extra: String,
    /// `/* … */` comments in `extra`.
    pub comments: Vec<String>,
    pub line: usize,
}

/// A chain of `iptables -L`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedChain {
    pub name: String,
    pub policy: Option<String>,
    /// `(policy ACCEPT 0 packets, 0 bytes)` with `-v`.
    pub policy_counters: Option<Counters>,
    /// `(1 references)` of user chains.
    pub references: Option<u32>,
    pub rules: Vec<ListedRule>,
}

/// `iptables -L [CHAIN] -v -n -x` output.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IptablesListing {
    pub chains: Vec<ListedChain>,
}

impl IptablesListing {
    pub fn chain(&self, name: &str) -> Option<&ListedChain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// Like [`IpTables::rule_by_comment`].
    pub fn rule_by_comment(&self, chain: &str, text: &str) -> Option<&ListedRule> {
        let c = self.chain(chain)?;
        c.rules
            .iter()
            .find(|r| r.comments.iter().any(|x| x == text))
            .or_else(|| c.rules.iter().find(|r| r.comments.iter().any(|x| x.contains(text))))
    }
}

fn parse_count(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1_000),
        b'M' => (&s[..s.len() - 1], 1_000_000),
        b'G' => (&s[..s.len() - 1], 1_000_000_000),
        b'T' => (&s[..s.len() - 1], 1_000_000_000_000),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn comments_in(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("/* ") {
        let after = &rest[start + 3..];
        match after.find(" */") {
            Some(end) => {
                out.push(after[..end].to_string());
                rest = &after[end + 3..];
            }
            None => break,
        }
    }
    out
}

fn is_opt(s: &str) -> bool {
    matches!(s, "--" | "-f" | "!f")
}

/// Parse `iptables -L [CHAIN] -n -v [-x]` (also without `-v`).
pub fn parse_iptables_list(text: &str) -> Result<IptablesListing, ParseError> {
    const INPUT: &str = "iptables -L";
    let mut out = IptablesListing::default();
    let mut verbose: Option<bool> = None;
    for (n, l) in numbered_lines(text) {
        if l.trim().is_empty() {
            continue;
        }
        if let Some(rest) = l.strip_prefix("Chain ") {
            let (name, paren) = rest.split_once(' ').unwrap_or((rest, ""));
            let paren = paren.trim();
            let inner = paren
                .strip_prefix('(')
                .and_then(|p| p.strip_suffix(')'))
                .ok_or_else(|| ParseError::new(INPUT, n, "`Chain <name> (policy …)` or `(N references)`", l))?;
            let w: Vec<&str> = inner.split_whitespace().collect();
            let mut chain = ListedChain {
                name: name.to_string(),
                policy: None,
                policy_counters: None,
                references: None,
                rules: Vec::new(),
            };
            match w.as_slice() {
                ["policy", p] => chain.policy = Some(p.to_string()),
                ["policy", p, pk, "packets,", b, "bytes"] => {
                    chain.policy = Some(p.to_string());
                    chain.policy_counters = Some(Counters {
                        packets: parse_count(pk).ok_or_else(|| ParseError::new(INPUT, n, "a packet count", l))?,
                        bytes: parse_count(b).ok_or_else(|| ParseError::new(INPUT, n, "a byte count", l))?,
                    });
                }
                [r, "references"] => {
                    chain.references = Some(r.parse().map_err(|_| ParseError::new(INPUT, n, "a reference count", l))?)
                }
                _ => return Err(ParseError::new(INPUT, n, "`(policy P [N packets, N bytes])` or `(N references)`", l)),
            }
            out.chains.push(chain);
            verbose = None;
            continue;
        }
        let Some(chain) = out.chains.last_mut() else {
            return Err(ParseError::new(INPUT, n, "`Chain <name> (…)`", l));
        };
        let toks: Vec<&str> = l.split_whitespace().collect();
        if verbose.is_none() {
            verbose = Some(match toks.as_slice() {
                ["pkts", "bytes", "target", "prot", "opt", "in", "out", "source", "destination"] => true,
                ["target", "prot", "opt", "source", "destination"] => false,
                _ => {
                    return Err(ParseError::new(
                        INPUT,
                        n,
                        "the column header (`pkts bytes target prot opt in out source destination`)",
                        l,
                    ))
                }
            });
            continue;
        }
        let v = verbose == Some(true);
        let offsets = super::tokens_with_offsets(l);
        let base = if v { 2 } else { 0 };
        // Columns after the counters: target? prot opt [in out] source destination.
        let rest_cols = if v { 6 } else { 4 };
        let has_target = match (toks.get(base + 1), toks.get(base + 2)) {
            (_, Some(o)) if is_opt(o) => true,
            (Some(o), _) if is_opt(o) => false,
            _ => {
                return Err(ParseError::new(INPUT, n, "a rule row (the `opt` column `--`, `-f` or `!f`)", l));
            }
        };
        let first = base + usize::from(has_target);
        let last = first + rest_cols - 1; // index of destination
        if toks.len() <= last {
            return Err(ParseError::new(INPUT, n, "a rule row with source and destination columns", l));
        }
        let counters = if v {
            Some(Counters {
                packets: parse_count(toks[0]).ok_or_else(|| ParseError::new(INPUT, n, "a packet count", l))?,
                bytes: parse_count(toks[1]).ok_or_else(|| ParseError::new(INPUT, n, "a byte count", l))?,
            })
        } else {
            None
        };
        let iface = |s: &str| if s == "*" { None } else { Some(s.to_string()) };
        let extra = offsets.get(last + 1).map(|(off, _)| l[*off..].trim_end().to_string()).unwrap_or_default();
        chain.rules.push(ListedRule {
            counters,
            target: if has_target { Some(toks[base].to_string()) } else { None },
            prot: toks[first].to_string(),
            opt: toks[first + 1].to_string(),
            in_iface: if v { iface(toks[first + 2]) } else { None },
            out_iface: if v { iface(toks[first + 3]) } else { None },
            source: toks[last - 1].to_string(),
            destination: toks[last].to_string(),
            comments: comments_in(&extra),
            extra,
            line: n,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- produced here: iptables 1.8.9 (nf_tables) in netns rrobs-b. Felix's
    // IPIP rules (felix/rules/static.go) entered with `-p 4` (saved as
    // `-p ipencap`), the cali-OUTPUT allow rule and the NAT-outgoing chain;
    // then 3 IPIP packets from 10.99.0.1 (in cali40all-hosts-net) and 2 from
    // 10.99.0.50 (not) were sent from netns rrobs-a, so the accept rule
    // counted 3 packets and the drop rule 2.

    // `iptables-save -c`
    const SAVE_C: &str = include_str!("testdata/iptables-save-c-b.txt");
    // `iptables-save`
    const SAVE: &str = include_str!("testdata/iptables-save-b.txt");
    // `iptables -L cali-INPUT -v -n -x`
    const L_CALI_INPUT: &str = include_str!("testdata/iptables-L-cali-INPUT.txt");
    // `iptables -L INPUT -v -n -x`
    const L_INPUT: &str = include_str!("testdata/iptables-L-INPUT.txt");
    // `iptables -t nat -L cali-POSTROUTING -v -n -x`
    const L_NAT: &str = include_str!("testdata/iptables-L-nat-cali-POSTROUTING.txt");
    // `iptables -L -v -n -x`
    const L_ALL: &str = include_str!("testdata/iptables-L-all.txt");

    #[test]
    fn save_with_counters_typed() {
        let t = parse_iptables_save(SAVE_C).unwrap();
        let names: Vec<&str> = t.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["filter", "nat"]);
        let filter = t.table("filter").unwrap();
        let input = filter.chain("INPUT").unwrap();
        assert_eq!(input.policy.as_deref(), Some("ACCEPT"));
        assert_eq!(input.counters, Some(Counters { packets: 0, bytes: 0 }));
        let cali = filter.chain("cali-INPUT").unwrap();
        assert_eq!(cali.policy, None);
        assert_eq!(cali.rules.len(), 2);

        let drop = t.rule_by_comment("cali-INPUT", "Drop IPIP packets from non-Calico hosts").unwrap();
        assert_eq!(
            *drop,
            Rule {
                table: "filter".into(),
                chain: "cali-INPUT".into(),
                args: [
                    "-p",
                    "ipencap",
                    "-m",
                    "comment",
                    "--comment",
                    "cali:_wjq-Yrma8Ly1Svo",
                    "-m",
                    "comment",
                    "--comment",
                    "Drop IPIP packets from non-Calico hosts",
                    "-j",
                    "DROP"
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
                comments: vec!["cali:_wjq-Yrma8Ly1Svo".into(), "Drop IPIP packets from non-Calico hosts".into()],
                protocol: Some("ipencap".into()),
                protocol_negated: false,
                source: None,
                destination: None,
                in_interface: None,
                out_interface: None,
                match_sets: vec![],
                target: Some("DROP".into()),
                goto: false,
                target_args: vec![],
                counters: Some(Counters { packets: 2, bytes: 96 }),
                line: 11,
            }
        );
        assert_eq!(drop.protocol_number(), Some(4));

        let allow = t.rule_by_comment("cali-INPUT", "Allow IPIP packets from Calico hosts").unwrap();
        assert_eq!(allow.counters, Some(Counters { packets: 3, bytes: 144 }));
        assert_eq!(
            allow.match_sets,
            vec![MatchSet { name: "cali40all-hosts-net".into(), flags: "src".into(), negated: false }]
        );
        assert_eq!(allow.target.as_deref(), Some("ACCEPT"));
        // substring match falls back when no comment is equal
        assert_eq!(t.rule_by_comment("cali-INPUT", "non-Calico").unwrap().line, 11);
        assert!(t.rule_by_comment("cali-OUTPUT", "Drop IPIP").is_none());

        let nat = t.rule_by_comment("cali-nat-outgoing", "cali:flqWnvo8yq4ULQLa").unwrap();
        assert_eq!(nat.table, "nat");
        assert_eq!(
            nat.match_sets,
            vec![
                MatchSet { name: "cali40masq-ipam-pools".into(), flags: "src".into(), negated: false },
                MatchSet { name: "cali40all-ipam-pools".into(), flags: "dst".into(), negated: true },
            ]
        );
        assert_eq!(nat.target.as_deref(), Some("MASQUERADE"));
        assert_eq!(nat.target_args, vec!["--random-fully"]);
        let tun = t.rule_by_comment("cali-POSTROUTING", "cali:SXWvdsbh4Mw7wOln").unwrap();
        assert_eq!(tun.out_interface.as_deref(), Some("tunl0"));
        assert_eq!(t.rules().count(), 9);
    }

    #[test]
    fn save_without_counters_matches() {
        let with = parse_iptables_save(SAVE_C).unwrap();
        let without = parse_iptables_save(SAVE).unwrap();
        let a: Vec<(&str, &Vec<String>)> = with.rules().map(|r| (r.chain.as_str(), &r.args)).collect();
        let b: Vec<(&str, &Vec<String>)> = without.rules().map(|r| (r.chain.as_str(), &r.args)).collect();
        assert_eq!(a, b);
        assert!(without.rules().all(|r| r.counters.is_none()));
    }

    #[test]
    fn listing_counters() {
        let l = parse_iptables_list(L_CALI_INPUT).unwrap();
        let c = l.chain("cali-INPUT").unwrap();
        assert_eq!(c.references, Some(1));
        assert_eq!(c.policy, None);
        assert_eq!(c.rules.len(), 2);
        let allow = l.rule_by_comment("cali-INPUT", "Allow IPIP packets from Calico hosts").unwrap();
        assert_eq!(
            *allow,
            ListedRule {
                counters: Some(Counters { packets: 3, bytes: 144 }),
                target: Some("ACCEPT".into()),
                prot: "4".into(),
                opt: "--".into(),
                in_iface: None,
                out_iface: None,
                source: "0.0.0.0/0".into(),
                destination: "0.0.0.0/0".into(),
                extra: "/* cali:PajejrV4aFdkZojI */ /* Allow IPIP packets from Calico hosts */ match-set cali40all-hosts-net src ADDRTYPE match dst-type LOCAL".into(),
                comments: vec!["cali:PajejrV4aFdkZojI".into(), "Allow IPIP packets from Calico hosts".into()],
                line: 3,
            }
        );
        let drop = l.rule_by_comment("cali-INPUT", "Drop IPIP packets from non-Calico hosts").unwrap();
        assert_eq!(drop.counters, Some(Counters { packets: 2, bytes: 96 }));
        assert_eq!(drop.target.as_deref(), Some("DROP"));

        let input = parse_iptables_list(L_INPUT).unwrap();
        let c = input.chain("INPUT").unwrap();
        assert_eq!(c.policy.as_deref(), Some("ACCEPT"));
        assert_eq!(c.policy_counters, Some(Counters { packets: 0, bytes: 0 }));
        assert_eq!(c.rules[0].target.as_deref(), Some("cali-INPUT"));
        assert_eq!(c.rules[0].counters, Some(Counters { packets: 7, bytes: 416 }));

        let nat = parse_iptables_list(L_NAT).unwrap();
        let masq = nat.rule_by_comment("cali-POSTROUTING", "cali:SXWvdsbh4Mw7wOln").unwrap();
        assert_eq!(masq.out_iface.as_deref(), Some("tunl0"));
        assert_eq!(masq.target.as_deref(), Some("MASQUERADE"));

        let all = parse_iptables_list(L_ALL).unwrap();
        let names: Vec<&str> = all.chains.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["INPUT", "FORWARD", "OUTPUT", "cali-INPUT", "cali-OUTPUT"]);
        assert_eq!(
            all.rule_by_comment("cali-INPUT", "Drop IPIP packets from non-Calico hosts").unwrap().counters,
            Some(Counters { packets: 2, bytes: 96 })
        );
    }

    #[test]
    fn listing_forms() {
        let l = parse_iptables_list(
            "Chain X (0 references)\n    pkts      bytes target     prot opt in     out     source               destination\n      12K    3M            all  --  eth0   *       10.0.0.0/8           0.0.0.0/0\n",
        )
        .unwrap();
        let r = &l.chains[0].rules[0];
        assert_eq!(r.target, None);
        assert_eq!(r.counters, Some(Counters { packets: 12_000, bytes: 3_000_000 }));
        assert_eq!(r.in_iface.as_deref(), Some("eth0"));
        assert_eq!(r.source, "10.0.0.0/8");
        let l = parse_iptables_list(
            "Chain INPUT (policy DROP)\ntarget     prot opt source               destination\nACCEPT     tcp  --  0.0.0.0/0            0.0.0.0/0            tcp dpt:179\n",
        )
        .unwrap();
        assert_eq!(l.chains[0].policy.as_deref(), Some("DROP"));
        assert_eq!(l.chains[0].rules[0].counters, None);
        assert_eq!(l.chains[0].rules[0].extra, "tcp dpt:179");
    }

    #[test]
    fn quoting_and_negation() {
        let t = parse_iptables_save(
            "*filter\n:X - [0:0]\n-A X ! -s 10.0.0.0/8 -p tcp -m comment --comment \"say \\\"hi\\\" \\\\ there\" ! -p udp -g Y\nCOMMIT\n",
        )
        .unwrap();
        let r = &t.tables[0].chains[0].rules[0];
        assert_eq!(r.source.as_deref(), Some("!10.0.0.0/8"));
        assert_eq!(r.comments, vec!["say \"hi\" \\ there"]);
        assert_eq!(r.protocol.as_deref(), Some("udp"));
        assert!(r.protocol_negated);
        assert!(r.goto);
        assert_eq!(r.target.as_deref(), Some("Y"));
    }

    #[test]
    fn malformed_iptables_name_the_line() {
        let e = parse_iptables_save("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j\nCOMMIT\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.expected.contains("after `-j`"), "{e}");
        let e = parse_iptables_save("*filter\n-A NOPE -j ACCEPT\nCOMMIT\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.expected.contains(":NOPE"));
        let e = parse_iptables_save("*filter\n:INPUT ACCEPT [x:0]\nCOMMIT\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_iptables_save("*filter\n:X - [0:0]\n-A X -m comment --comment \"open\nCOMMIT\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.expected.contains("closing"));
        let e = parse_iptables_save("*filter\n:X - [0:0]\n").unwrap_err();
        assert!(e.expected.contains("COMMIT"));
        let e = parse_iptables_save("-A X -j ACCEPT\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse_iptables_list("Chain X (1 references)\nwhat\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.expected.contains("column header"));
        let e = parse_iptables_list("Chain X (1 references)\n    pkts      bytes target     prot opt in     out     source               destination\n   1 2 ACCEPT\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_iptables_list("    3 144 ACCEPT\n").unwrap_err();
        assert_eq!(e.line, 1);
    }
}
