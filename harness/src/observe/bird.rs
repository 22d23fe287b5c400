//! BIRD 1.6 control socket and `birdc`/`birdcl` output: the socket framing,
//! `show protocols [all]`, `show status` and `configure` replies.
//!
//! Every parser accepts both forms of the same reply:
//! - the raw control-socket protocol (what `calicoctl node status` reads from
//!   `/var/run/calico/bird.ctl`): `0001 BIRD 1.6.8 ready.` hello, `CODE-text`
//!   for the first line of a group, ` text` continuation lines (the code of the
//!   previous line), `CODE text` for the last line, `0000` end of a reply,
//!   `8xxx`/`9xxx` errors;
//! - what `birdc -s SOCK <command>` prints: the same text without codes, after a
//!   `BIRD 1.6.8 ready.` line (an interactive `bird> ` prompt line is skipped).

use super::{numbered_lines, tokens_with_offsets, ParseError};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

/// One line of BIRD output with the control-socket framing removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BirdLine {
    /// 1-based line number in the input.
    pub line: usize,
    /// Reply code (raw socket form only; continuation lines carry the code of
    /// the line they continue). `None` for `birdc` text.
    pub code: Option<u16>,
    /// The text, exactly as `birdc` would print it.
    pub text: String,
    /// Raw form: the line ended its reply (`CODE text`, not `CODE-text`).
    pub last: bool,
}

fn code_prefix(l: &str) -> Option<(u16, bool)> {
    let b = l.as_bytes();
    if b.len() < 4 || !b[..4].iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let last = match b.get(4) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        _ => return None,
    };
    let code = l[..4].parse().ok()?;
    Some((code, last))
}

fn is_hello(text: &str) -> bool {
    text.starts_with("BIRD ") && text.trim_end().ends_with(" ready.")
}

/// Remove the control-socket framing (or `birdc`'s hello and prompt lines).
/// The hello (`0001`) and end-of-reply (`0000`) lines are dropped; every other
/// line is kept with its code, so callers can see error replies.
pub fn decode_bird(text: &str) -> Result<Vec<BirdLine>, ParseError> {
    decode_for(text, "BIRD output")
}

pub(crate) fn decode_for(text: &str, input: &str) -> Result<Vec<BirdLine>, ParseError> {
    let raw = numbered_lines(text)
        .find(|(_, l)| !l.trim().is_empty())
        .map(|(_, l)| code_prefix(l).is_some())
        .unwrap_or(false);
    let mut out = Vec::new();
    let mut prev_code: Option<u16> = None;
    for (n, l) in numbered_lines(text) {
        if raw {
            if l.is_empty() {
                continue;
            }
            if let Some((code, last)) = code_prefix(l) {
                prev_code = if last { None } else { Some(code) };
                if code == 0 || code == 1 {
                    continue;
                }
                out.push(BirdLine { line: n, code: Some(code), text: l.get(5..).unwrap_or("").to_string(), last });
            } else if let Some(rest) = l.strip_prefix(' ') {
                let code = prev_code.ok_or_else(|| {
                    ParseError::new(
                        input,
                        n,
                        "a reply line starting with a 4-digit code (a continuation line needs an open reply)",
                        l,
                    )
                })?;
                out.push(BirdLine { line: n, code: Some(code), text: rest.to_string(), last: false });
            } else {
                return Err(ParseError::new(
                    input,
                    n,
                    "a BIRD control-socket line (`NNNN-text`, `NNNN text` or ` continuation`)",
                    l,
                ));
            }
        } else {
            if is_hello(l) || l.trim_end() == "bird>" || l.starts_with("bird> ") {
                continue;
            }
            out.push(BirdLine { line: n, code: None, text: l.to_string(), last: false });
        }
    }
    Ok(out)
}

fn bird_error(input: &str, l: &BirdLine, expected: &str) -> ParseError {
    let mut e = ParseError::new(input, l.line, expected, format!("{:04} {}", l.code.unwrap_or(0), l.text));
    e.bird_code = l.code;
    e
}

fn is_error_code(c: Option<u16>) -> bool {
    matches!(c, Some(c) if c >= 8000)
}

// ---------------------------------------------------------------- protocols

/// A row of `show protocols`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protocol {
    pub name: String,
    /// Protocol type: `BGP`, `Kernel`, `Static`, `Device`, `Direct`, …
    pub proto: String,
    pub table: String,
    /// BIRD protocol state: `up`, `start`, `down`, `feed`, `flush`, …
    pub state: String,
    /// When the state last changed, as BIRD prints it (`13:29:47`,
    /// `2016-11-21`, or `2016-11-21 13:29:47` with an ISO long time format).
    pub since: String,
    /// The info column, as printed (trailing blanks removed). For BGP: the BGP
    /// state padded to 14 columns, then any error, e.g.
    /// `Active        Socket: Connection refused`.
    pub info: String,
}

impl Protocol {
    pub fn is_bgp(&self) -> bool {
        self.proto == "BGP"
    }

    /// First word of the info column: for BGP the session state
    /// (`Established`, `Active`, `Connect`, `Passive`, `Idle`, `OpenSent`, …).
    pub fn bgp_state(&self) -> Option<&str> {
        self.info.split_whitespace().next()
    }

    /// The info column after its first word, whitespace-normalised
    /// (e.g. `Socket: Connection refused`), if any.
    pub fn info_detail(&self) -> Option<String> {
        let rest: Vec<&str> = self.info.split_whitespace().skip(1).collect();
        if rest.is_empty() {
            None
        } else {
            Some(rest.join(" "))
        }
    }

    /// A BGP protocol that is up with an Established session.
    pub fn is_established(&self) -> bool {
        self.is_bgp() && self.state == "up" && self.bgp_state() == Some("Established")
    }
}

const HEADINGS: [&str; 6] = ["name", "proto", "table", "state", "since", "info"];

fn is_header(text: &str) -> bool {
    text.split_whitespace().eq(HEADINGS.iter().copied())
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn looks_like_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8
        && b[2] == b':'
        && b[5] == b':'
        && b[..8].iter().enumerate().all(|(i, c)| i == 2 || i == 5 || c.is_ascii_digit())
}

fn parse_protocol_row(text: &str, line: usize, input: &str) -> Result<Protocol, ParseError> {
    let toks = tokens_with_offsets(text);
    if toks.len() < 5 {
        return Err(ParseError::new(input, line, "a protocol row `name proto table state since [info]`", text));
    }
    let mut since = toks[4].1.to_string();
    let mut next = 5;
    if looks_like_date(toks[4].1) && toks.get(5).is_some_and(|t| looks_like_time(t.1)) {
        since = format!("{} {}", toks[4].1, toks[5].1);
        next = 6;
    }
    let info = toks.get(next).map(|(off, _)| text[*off..].trim_end().to_string()).unwrap_or_default();
    Ok(Protocol {
        name: toks[0].1.to_string(),
        proto: toks[1].1.to_string(),
        table: toks[2].1.to_string(),
        state: toks[3].1.to_string(),
        since,
        info,
    })
}

/// Parse `show protocols` (or `show protocols all`, ignoring the details) in
/// either the raw socket or the `birdc` form.
pub fn parse_protocols(text: &str) -> Result<Vec<Protocol>, ParseError> {
    Ok(parse_protocols_all_for(text, "show protocols")?.into_iter().map(|d| d.protocol).collect())
}

/// `Routes: 3 imported, 1 exported, 3 preferred` (BIRD 1.6 also prints
/// `N filtered` when the import filter dropped routes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RouteCounts {
    pub imported: u64,
    pub filtered: Option<u64>,
    pub exported: u64,
    pub preferred: u64,
}

/// A row of the `Route change stats` table; `---` cells are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteChangeStat {
    /// `Import updates`, `Import withdraws`, `Export updates`, `Export withdraws`.
    pub name: String,
    pub received: Option<u64>,
    pub rejected: Option<u64>,
    pub filtered: Option<u64>,
    pub ignored: Option<u64>,
    pub accepted: Option<u64>,
}

/// The BGP part of `show protocols all <name>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BgpDetail {
    /// `BGP state:` — `Established`, `Active`, `Connect`, `Idle`, …
    pub state: String,
    pub neighbor_address: Option<IpAddr>,
    pub neighbor_as: Option<u32>,
    pub neighbor_id: Option<Ipv4Addr>,
    pub neighbor_caps: Vec<String>,
    pub session: Vec<String>,
    pub source_address: Option<IpAddr>,
    /// As printed, e.g. `200/240` (remaining/configured seconds).
    pub hold_timer: Option<String>,
    pub keepalive_timer: Option<String>,
    pub connect_delay: Option<String>,
    pub last_error: Option<String>,
    /// Any other `key: value` line of the BGP section, verbatim.
    pub other: Vec<(String, String)>,
}

/// A protocol of `show protocols all`, with its detail lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolDetail {
    pub protocol: Protocol,
    pub description: Option<String>,
    pub preference: Option<u32>,
    pub input_filter: Option<String>,
    pub output_filter: Option<String>,
    pub routes: Option<RouteCounts>,
    pub route_change_stats: Vec<RouteChangeStat>,
    pub bgp: Option<BgpDetail>,
    /// Other `key: value` lines outside the BGP section, verbatim.
    pub other: Vec<(String, String)>,
}

impl ProtocolDetail {
    fn new(protocol: Protocol) -> Self {
        ProtocolDetail {
            protocol,
            description: None,
            preference: None,
            input_filter: None,
            output_filter: None,
            routes: None,
            route_change_stats: Vec::new(),
            bgp: None,
            other: Vec::new(),
        }
    }
}

/// Parse `show protocols all [name]`.
pub fn parse_protocols_all(text: &str) -> Result<Vec<ProtocolDetail>, ParseError> {
    parse_protocols_all_for(text, "show protocols all")
}

fn parse_route_counts(v: &str, line: usize, input: &str) -> Result<RouteCounts, ParseError> {
    let mut rc = RouteCounts::default();
    let (mut imp, mut exp, mut pref) = (false, false, false);
    for part in v.split(',') {
        let mut it = part.split_whitespace();
        let (Some(n), Some(word), None) = (it.next(), it.next(), it.next()) else {
            return Err(ParseError::new(input, line, "`Routes: N imported, [N filtered, ]N exported, N preferred`", v));
        };
        let n: u64 = n.parse().map_err(|_| ParseError::new(input, line, "a route count (a number)", part.trim()))?;
        match word {
            "imported" => {
                rc.imported = n;
                imp = true
            }
            "filtered" => rc.filtered = Some(n),
            "exported" => {
                rc.exported = n;
                exp = true
            }
            "preferred" => {
                rc.preferred = n;
                pref = true
            }
            _ => return Err(ParseError::new(input, line, "imported/filtered/exported/preferred", part.trim())),
        }
    }
    if imp && exp && pref {
        Ok(rc)
    } else {
        Err(ParseError::new(input, line, "`N imported, N exported, N preferred`", v))
    }
}

fn parse_stat_row(key: &str, v: &str, line: usize, input: &str) -> Result<RouteChangeStat, ParseError> {
    let cells: Vec<&str> = v.split_whitespace().collect();
    if cells.len() != 5 {
        return Err(ParseError::new(
            input,
            line,
            "5 route change counters (received rejected filtered ignored accepted)",
            v,
        ));
    }
    let mut vals = [None; 5];
    for (i, c) in cells.iter().enumerate() {
        vals[i] = if *c == "---" {
            None
        } else {
            Some(c.parse::<u64>().map_err(|_| ParseError::new(input, line, "a counter or `---`", *c))?)
        };
    }
    Ok(RouteChangeStat {
        name: key.to_string(),
        received: vals[0],
        rejected: vals[1],
        filtered: vals[2],
        ignored: vals[3],
        accepted: vals[4],
    })
}

fn parse_ip_field(v: &str, line: usize, input: &str, what: &str) -> Result<IpAddr, ParseError> {
    // link-local neighbours may carry a `%iface` scope.
    let a = v.split('%').next().unwrap_or(v);
    a.parse().map_err(|_| ParseError::new(input, line, format!("{what} (an IP address)"), v))
}

fn apply_bgp_kv(bgp: &mut BgpDetail, key: &str, v: &str, line: usize, input: &str) -> Result<(), ParseError> {
    match key {
        "Neighbor address" => bgp.neighbor_address = Some(parse_ip_field(v, line, input, "the neighbor address")?),
        "Neighbor AS" => {
            bgp.neighbor_as =
                Some(v.parse().map_err(|_| ParseError::new(input, line, "the neighbor AS (a number)", v))?)
        }
        "Neighbor ID" => {
            bgp.neighbor_id =
                Some(v.parse().map_err(|_| ParseError::new(input, line, "the neighbor ID (an IPv4 address)", v))?)
        }
        "Neighbor caps" => bgp.neighbor_caps = v.split_whitespace().map(String::from).collect(),
        "Session" => bgp.session = v.split_whitespace().map(String::from).collect(),
        "Source address" => bgp.source_address = Some(parse_ip_field(v, line, input, "the source address")?),
        "Hold timer" => bgp.hold_timer = Some(v.to_string()),
        "Keepalive timer" => bgp.keepalive_timer = Some(v.to_string()),
        "Connect delay" => bgp.connect_delay = Some(v.to_string()),
        "Last error" => bgp.last_error = Some(v.to_string()),
        _ => bgp.other.push((key.to_string(), v.to_string())),
    }
    Ok(())
}

fn parse_protocols_all_for(text: &str, input: &str) -> Result<Vec<ProtocolDetail>, ParseError> {
    let lines = decode_for(text, input)?;
    let mut out: Vec<ProtocolDetail> = Vec::new();
    let mut seen_header = false;
    let mut in_stats = false;
    for l in &lines {
        if is_error_code(l.code) {
            return Err(bird_error(input, l, "a `show protocols` reply"));
        }
        let t = l.text.as_str();
        if t.trim().is_empty() {
            in_stats = false;
            continue;
        }
        if !seen_header {
            if l.code == Some(2002) || (l.code.is_none() && is_header(t)) {
                if !is_header(t) {
                    return Err(ParseError::new(input, l.line, "the header `name proto table state since info`", t));
                }
                seen_header = true;
                continue;
            }
            return Err(ParseError::new(input, l.line, "the header `name proto table state since info`", t));
        }
        let is_detail = match l.code {
            Some(1006) => true,
            Some(1002) => false,
            Some(_) => {
                return Err(ParseError::new(
                    input,
                    l.line,
                    "a protocol row (1002) or detail line (1006)",
                    format!("{:04} {}", l.code.unwrap_or(0), t),
                ))
            }
            None => t.starts_with(char::is_whitespace),
        };
        if !is_detail {
            if is_header(t) {
                // `show protocols all` prints the header once; tolerate repeats
                // (several replies concatenated).
                continue;
            }
            out.push(ProtocolDetail::new(parse_protocol_row(t, l.line, input)?));
            in_stats = false;
            continue;
        }
        let Some(cur) = out.last_mut() else {
            return Err(ParseError::new(input, l.line, "a protocol row before its details", t));
        };
        let trimmed = t.trim();
        if trimmed.starts_with("Route change stats:") {
            in_stats = true;
            continue;
        }
        let Some((key, v)) = trimmed.split_once(':') else {
            return Err(ParseError::new(input, l.line, "a `key: value` detail line", t));
        };
        let (key, v) = (key.trim(), v.trim());
        if in_stats && matches!(key, "Import updates" | "Import withdraws" | "Export updates" | "Export withdraws") {
            cur.route_change_stats.push(parse_stat_row(key, v, l.line, input)?);
            continue;
        }
        in_stats = false;
        if key == "BGP state" {
            cur.bgp = Some(BgpDetail { state: v.to_string(), ..BgpDetail::default() });
            continue;
        }
        if let Some(bgp) = cur.bgp.as_mut() {
            apply_bgp_kv(bgp, key, v, l.line, input)?;
            continue;
        }
        match key {
            "Description" => cur.description = Some(v.to_string()),
            "Preference" => {
                cur.preference =
                    Some(v.parse().map_err(|_| ParseError::new(input, l.line, "a preference (a number)", v))?)
            }
            "Input filter" => cur.input_filter = Some(v.to_string()),
            "Output filter" => cur.output_filter = Some(v.to_string()),
            "Routes" => cur.routes = Some(parse_route_counts(v, l.line, input)?),
            _ => cur.other.push((key.to_string(), v.to_string())),
        }
    }
    if !seen_header {
        return Err(ParseError::new(
            input,
            lines.last().map(|l| l.line).unwrap_or(0),
            "the header `name proto table state since info`",
            "end of input",
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------- status

/// The daemon state line that ends `show status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DaemonState {
    /// `Daemon is up and running`
    UpAndRunning,
    /// `Reconfiguration in progress`
    ReconfigurationInProgress,
    /// `Shutdown in progress`
    ShutdownInProgress,
    Other(String),
}

/// `show status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BirdStatus {
    /// e.g. `1.6.8` (or `v0.3.3+birdv1.6.3` for Calico's fork)
    pub version: String,
    pub router_id: Ipv4Addr,
    pub server_time: Option<String>,
    pub last_reboot: Option<String>,
    pub last_reconfiguration: Option<String>,
    pub state: DaemonState,
    /// Any other line (graceful-restart notes), verbatim.
    pub other: Vec<String>,
}

/// Parse `show status`.
pub fn parse_status(text: &str) -> Result<BirdStatus, ParseError> {
    const INPUT: &str = "show status";
    let lines = decode_for(text, INPUT)?;
    let mut version = None;
    let mut router_id = None;
    let (mut server_time, mut last_reboot, mut last_reconf) = (None, None, None);
    let mut state = None;
    let mut other = Vec::new();
    for l in &lines {
        if is_error_code(l.code) {
            return Err(bird_error(INPUT, l, "a `show status` reply"));
        }
        let t = l.text.trim();
        if t.is_empty() {
            continue;
        }
        if state.is_some() {
            return Err(ParseError::new(INPUT, l.line, "end of the `show status` reply", t));
        }
        if let Some(v) = t.strip_prefix("Router ID is ") {
            router_id = Some(
                v.trim()
                    .parse::<Ipv4Addr>()
                    .map_err(|_| ParseError::new(INPUT, l.line, "`Router ID is <IPv4 address>`", t))?,
            );
        } else if let Some(v) = t.strip_prefix("Current server time is ") {
            server_time = Some(v.to_string());
        } else if let Some(v) = t.strip_prefix("Last reboot on ") {
            last_reboot = Some(v.to_string());
        } else if let Some(v) = t.strip_prefix("Last reconfiguration on ") {
            last_reconf = Some(v.to_string());
        } else if t == "Daemon is up and running" {
            state = Some(DaemonState::UpAndRunning);
        } else if t == "Reconfiguration in progress" {
            state = Some(DaemonState::ReconfigurationInProgress);
        } else if t == "Shutdown in progress" {
            state = Some(DaemonState::ShutdownInProgress);
        } else if l.code == Some(13) {
            state = Some(DaemonState::Other(t.to_string()));
        } else if version.is_none() && router_id.is_none() {
            match t.strip_prefix("BIRD ") {
                Some(v) if !v.trim().is_empty() && !v.contains(' ') => version = Some(v.to_string()),
                _ => {
                    return Err(ParseError::new(INPUT, l.line, "`BIRD <version>`", t));
                }
            }
        } else {
            other.push(t.to_string());
        }
    }
    let last = lines.last().map(|l| l.line).unwrap_or(0);
    Ok(BirdStatus {
        version: version.ok_or_else(|| ParseError::new(INPUT, last, "`BIRD <version>`", "end of input"))?,
        router_id: router_id.ok_or_else(|| ParseError::new(INPUT, last, "`Router ID is <IPv4>`", "end of input"))?,
        server_time,
        last_reboot,
        last_reconfiguration: last_reconf,
        state: state.ok_or_else(|| {
            ParseError::new(INPUT, last, "the daemon state (`Daemon is up and running`, …)", "end of input")
        })?,
        other,
    })
}

// ---------------------------------------------------------------- configure

/// A configuration error BIRD reports (`8002 <file>:<line>:<col> <message>`
/// over the socket; the same text from `birdc`; `bird -p -c` prints it after
/// `bird: `).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigError {
    pub file: String,
    pub line: u32,
    /// Column (absent in BIRD's older `<file>, line <n>: <msg>` form).
    pub col: Option<u32>,
    pub message: String,
}

impl ConfigError {
    /// Parse `<file>:<line>:<col> <message>` or `<file>, line <n>: <message>`
    /// (optionally after a `bird: ` prefix).
    pub fn parse(s: &str) -> Option<ConfigError> {
        let s = s.trim();
        let s = s.strip_prefix("bird: ").unwrap_or(s);
        if let Some((loc, msg)) = s.split_once(' ') {
            let mut parts = loc.rsplitn(3, ':');
            if let (Some(col), Some(line), Some(file)) = (parts.next(), parts.next(), parts.next()) {
                if let (Ok(col), Ok(line)) = (col.parse(), line.parse()) {
                    if !file.is_empty() {
                        return Some(ConfigError {
                            file: file.to_string(),
                            line,
                            col: Some(col),
                            message: msg.trim().to_string(),
                        });
                    }
                }
            }
        }
        let (file, rest) = s.split_once(", line ")?;
        let (line, msg) = rest.split_once(':')?;
        Some(ConfigError {
            file: file.to_string(),
            line: line.trim().parse().ok()?,
            col: None,
            message: msg.trim().to_string(),
        })
    }
}

/// How a `configure` command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigureOutcome {
    /// `0003 Reconfigured`
    Reconfigured,
    /// `0004 Reconfiguration in progress` (protocols still shutting down)
    InProgress,
    /// `0005 Reconfiguration already in progress, queueing new config`
    Queued,
    /// `0006 Reconfiguration ignored, shutting down`
    IgnoredShuttingDown,
    /// `0017 Reconfiguration already in progress, removing queued config`
    Unqueued,
    /// `0018 Reconfiguration confirmed`
    Confirmed,
    /// `0019 Nothing to do`
    NothingToDo,
    /// `0020 Configuration OK` (`configure check`)
    ConfigurationOk,
    /// `8002 <file>:<line>:<col> <message>` — BIRD rejected the file and kept
    /// the old configuration.
    Error(ConfigError),
    /// Any other final reply (code when known).
    Other { code: Option<u16>, message: String },
}

/// One `configure …` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigureReply {
    /// From `0002-Reading configuration from <file>`.
    pub file: Option<String>,
    /// Intermediate messages (`Undo requested`, …), verbatim.
    pub notes: Vec<String>,
    pub outcome: ConfigureOutcome,
}

fn outcome_for(code: Option<u16>, text: &str) -> Option<ConfigureOutcome> {
    let by_text = match text {
        "Reconfigured" => Some(ConfigureOutcome::Reconfigured),
        "Reconfiguration in progress" => Some(ConfigureOutcome::InProgress),
        "Reconfiguration already in progress, queueing new config" => Some(ConfigureOutcome::Queued),
        "Reconfiguration ignored, shutting down" => Some(ConfigureOutcome::IgnoredShuttingDown),
        "Reconfiguration already in progress, removing queued config" => Some(ConfigureOutcome::Unqueued),
        "Reconfiguration confirmed" => Some(ConfigureOutcome::Confirmed),
        "Nothing to do" => Some(ConfigureOutcome::NothingToDo),
        "Configuration OK" => Some(ConfigureOutcome::ConfigurationOk),
        _ => None,
    };
    match code {
        Some(3) => Some(ConfigureOutcome::Reconfigured),
        Some(4) => Some(ConfigureOutcome::InProgress),
        Some(5) => Some(ConfigureOutcome::Queued),
        Some(6) => Some(ConfigureOutcome::IgnoredShuttingDown),
        Some(17) => Some(ConfigureOutcome::Unqueued),
        Some(18) => Some(ConfigureOutcome::Confirmed),
        Some(19) => Some(ConfigureOutcome::NothingToDo),
        Some(20) => Some(ConfigureOutcome::ConfigurationOk),
        Some(8002) => Some(match ConfigError::parse(text) {
            Some(e) => ConfigureOutcome::Error(e),
            None => ConfigureOutcome::Other { code, message: text.to_string() },
        }),
        Some(c) if c >= 8000 => Some(ConfigureOutcome::Other { code, message: text.to_string() }),
        Some(_) => by_text,
        None => by_text.or_else(|| ConfigError::parse(text).map(ConfigureOutcome::Error)),
    }
}

/// Parse the replies to one or more `configure` commands (a captured socket
/// exchange may hold several).
pub fn parse_configure_replies(text: &str) -> Result<Vec<ConfigureReply>, ParseError> {
    const INPUT: &str = "configure";
    let lines = decode_for(text, INPUT)?;
    let mut out = Vec::new();
    let mut file = None;
    let mut notes = Vec::new();
    for l in &lines {
        let t = l.text.trim();
        if t.is_empty() {
            continue;
        }
        if let Some(f) = t.strip_prefix("Reading configuration from ") {
            if file.is_some() {
                return Err(ParseError::new(
                    INPUT,
                    l.line,
                    "the outcome of the previous `configure` (Reconfigured, an error, …)",
                    t,
                ));
            }
            file = Some(f.to_string());
            continue;
        }
        if let Some(c) = l.code {
            if !matches!(c, 2..=6 | 17..=24 | 8000..) {
                return Err(ParseError::new(
                    INPUT,
                    l.line,
                    "a configure reply code (0002-0006, 0017-0024, 8xxx/9xxx)",
                    format!("{c:04} {t}"),
                ));
            }
        }
        match outcome_for(l.code, t) {
            Some(outcome) => out.push(ConfigureReply { file: file.take(), notes: std::mem::take(&mut notes), outcome }),
            None => {
                let raw_final = l.code.is_some() && l.last;
                if raw_final {
                    out.push(ConfigureReply {
                        file: file.take(),
                        notes: std::mem::take(&mut notes),
                        outcome: ConfigureOutcome::Other { code: l.code, message: t.to_string() },
                    });
                } else if l.code.is_some() || t == "Undo requested" || t.starts_with("Undo scheduled") {
                    notes.push(t.to_string());
                } else {
                    return Err(ParseError::new(
                        INPUT,
                        l.line,
                        "a configure reply (`Reading configuration from …`, `Reconfigured`, `<file>:<line>:<col> <error>`, …)",
                        t,
                    ));
                }
            }
        }
    }
    if file.is_some() || !notes.is_empty() {
        return Err(ParseError::new(
            INPUT,
            lines.last().map(|l| l.line).unwrap_or(0),
            "the outcome of `configure`",
            "end of input",
        ));
    }
    Ok(out)
}

/// Parse the reply to a single `configure` command.
pub fn parse_configure(text: &str) -> Result<ConfigureReply, ParseError> {
    let mut replies = parse_configure_replies(text)?;
    match replies.len() {
        1 => Ok(replies.remove(0)),
        0 => Err(ParseError::new("configure", text.lines().count(), "a configure reply", "end of input")),
        n => Err(ParseError::new(
            "configure",
            0,
            "exactly one configure reply (use parse_configure_replies)",
            format!("{n} replies"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- samples produced here: Debian BIRD 1.6.8 in netns rrobs-a/b/c,
    // configs testdata/{a,b,c}.cfg (see testdata/README.md).

    // `birdc -s b.ctl show protocols` on node b (10.99.0.2): an iBGP session to
    // the route reflector (10.99.0.1) and a mesh-named peer with no host behind it.
    const B_PROTOCOLS: &str = include_str!("testdata/bird-b-show-protocols.txt");
    // `birdc -s a.ctl show protocols` on node a, the route reflector.
    const A_PROTOCOLS: &str = include_str!("testdata/bird-a-show-protocols.txt");
    // `birdc -s b.ctl show protocols all` (final state of the lab).
    const B_PROTOCOLS_ALL: &str = include_str!("testdata/bird-b-show-protocols-all.txt");
    // `birdc -s b.ctl show protocols all` 16 s after start (Mesh peer in Connect).
    const B_PROTOCOLS_ALL_EARLY: &str = include_str!("testdata/bird-b-show-protocols-all-early.txt");
    // `birdc -s b.ctl show protocols all Node_10_99_0_1`
    const B_PROTOCOLS_ALL_NODE: &str = include_str!("testdata/bird-b-show-protocols-all-node.txt");
    // Raw control-socket exchange on b.ctl (python AF_UNIX client, bytes as
    // received): `show protocols`, `show protocols all Mesh_10_99_0_9`,
    // `show route all 172.16.3.0/26`, `show status`, `show route all
    // 192.0.2.0/24` (8001), `show foo` (9001), `show route protocol nosuch` (9001).
    const B_RAW_SESSION: &str = include_str!("testdata/raw-b-session.txt");
    // Raw `show protocols all` on a.ctl.
    const A_RAW_PROTOCOLS_ALL: &str = include_str!("testdata/raw-a-show-protocols-all.txt");
    // `birdc -s b.ctl show status`
    const B_STATUS: &str = include_str!("testdata/bird-b-show-status.txt");
    // Raw exchange on a.ctl: `configure "a-noc.cfg"` (drops an Established
    // peer: 0004), `show status` right after (0013 Reconfiguration in
    // progress), `configure "a-noc.cfg"` again (0003).
    const A_RAW_CONFIGURE_PROGRESS: &str = include_str!("testdata/raw-a-configure-progress.txt");
    // Raw `configure` then `configure` on b.ctl after a config change.
    const B_RAW_CONFIGURE: &str = include_str!("testdata/raw-b-configure.txt");
    // Raw exchange on b.ctl: `configure "b-noas.cfg"` (neighbor … as 0 → 8002),
    // `configure confirm` (0019), `configure undo` (0021 + 0003).
    const B_RAW_CONFIGURE_ERRORS: &str = include_str!("testdata/raw-b-configure-errors.txt");
    // `birdc -s b.ctl 'configure "/tmp/rrobs/b-noas.cfg"'`
    const B_BIRDC_CONFIGURE_NOAS: &str = include_str!("testdata/birdc-b-configure-noas.txt");

    fn proto(name: &str, proto: &str, state: &str, since: &str, info: &str) -> Protocol {
        Protocol {
            name: name.into(),
            proto: proto.into(),
            table: "master".into(),
            state: state.into(),
            since: since.into(),
            info: info.into(),
        }
    }

    #[test]
    fn show_protocols_birdc() {
        let p = parse_protocols(B_PROTOCOLS).unwrap();
        assert_eq!(
            p,
            vec![
                proto("static1", "Static", "up", "13:29:47", ""),
                proto("kernel1", "Kernel", "up", "13:29:47", ""),
                proto("device1", "Device", "up", "13:29:47", ""),
                proto("direct1", "Direct", "up", "13:29:47", ""),
                proto("Node_10_99_0_1", "BGP", "up", "13:29:49", "Established"),
                proto("Mesh_10_99_0_9", "BGP", "start", "13:29:47", "Active        Socket: No route to host"),
            ]
        );
        assert!(p[4].is_established());
        assert!(!p[5].is_established());
        assert_eq!(p[5].bgp_state(), Some("Active"));
        assert_eq!(p[5].info_detail().as_deref(), Some("Socket: No route to host"));
        assert_eq!(p[0].bgp_state(), None);

        let a = parse_protocols(A_PROTOCOLS).unwrap();
        let bgp: Vec<(&str, bool)> =
            a.iter().filter(|p| p.is_bgp()).map(|p| (p.name.as_str(), p.is_established())).collect();
        assert_eq!(bgp, vec![("Node_10_99_0_2", true), ("Node_10_99_1_3", true)]);
        assert_eq!(a[5].since, "13:30:35");
    }

    #[test]
    fn show_protocols_raw_socket_matches_birdc_form() {
        // The raw exchange holds several replies; the first is `show protocols`.
        let first_reply: String =
            B_RAW_SESSION.lines().take_while(|l| !l.starts_with("0000")).map(|l| format!("{l}\n")).collect();
        let p = parse_protocols(&first_reply).unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(p[5], proto("Mesh_10_99_0_9", "BGP", "start", "13:29:47", "Active        Socket: No route to host"));
        assert_eq!(p[4], proto("Node_10_99_0_1", "BGP", "up", "13:29:49", "Established"));
        // Decoding keeps codes.
        let lines = decode_bird(&first_reply).unwrap();
        assert_eq!(lines[0].code, Some(2002));
        assert_eq!(lines[1].code, Some(1002));
        assert_eq!(lines[2].code, Some(1002));
        assert_eq!(lines[2].text, "kernel1  Kernel   master   up     13:29:47    ");
    }

    #[test]
    fn raw_error_replies_are_typed() {
        let bad = "0001 BIRD 1.6.8 ready.\n9001 syntax error\n";
        let e = parse_protocols(bad).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.bird_code, Some(9001));
        assert!(e.to_string().contains("9001 syntax error"), "{e}");
    }

    #[test]
    fn show_protocols_all_bgp_details() {
        let all = parse_protocols_all(B_PROTOCOLS_ALL).unwrap();
        assert_eq!(all.len(), 6);
        let kernel = &all[1];
        assert_eq!(kernel.protocol.name, "kernel1");
        assert_eq!(kernel.preference, Some(10));
        assert_eq!(kernel.output_filter.as_deref(), Some("calico_kernel_programming"));
        assert_eq!(kernel.routes, Some(RouteCounts { imported: 0, filtered: None, exported: 6, preferred: 0 }));
        assert!(kernel.bgp.is_none());

        let node = &all[4];
        assert_eq!(node.protocol.name, "Node_10_99_0_1");
        assert_eq!(node.description.as_deref(), Some("Connection to BGP peer"));
        assert_eq!(node.preference, Some(100));
        assert_eq!(node.input_filter.as_deref(), Some("ACCEPT"));
        assert_eq!(node.output_filter.as_deref(), Some("(unnamed)"));
        assert_eq!(node.routes, Some(RouteCounts { imported: 4, filtered: None, exported: 2, preferred: 3 }));
        assert_eq!(
            node.route_change_stats[0],
            RouteChangeStat {
                name: "Import updates".into(),
                received: Some(8),
                rejected: Some(0),
                filtered: Some(0),
                ignored: Some(0),
                accepted: Some(8),
            }
        );
        assert_eq!(
            node.route_change_stats[3],
            RouteChangeStat {
                name: "Export withdraws".into(),
                received: Some(2),
                rejected: None,
                filtered: None,
                ignored: None,
                accepted: Some(0),
            }
        );
        let bgp = node.bgp.as_ref().unwrap();
        assert_eq!(bgp.state, "Established");
        assert_eq!(bgp.neighbor_address, Some("10.99.0.1".parse().unwrap()));
        assert_eq!(bgp.neighbor_as, Some(64512));
        assert_eq!(bgp.neighbor_id, Some("10.99.0.1".parse().unwrap()));
        assert_eq!(bgp.source_address, Some("10.99.0.2".parse().unwrap()));
        assert_eq!(bgp.session, vec!["internal", "multihop", "AS4", "add-path-rx", "add-path-tx"]);
        assert!(bgp.neighbor_caps.contains(&"enhanced-refresh".to_string()));
        assert!(bgp.hold_timer.is_some());
        assert_eq!(bgp.last_error, None);

        let mesh = &all[5];
        let bgp = mesh.bgp.as_ref().unwrap();
        assert_eq!(mesh.protocol.state, "start");
        assert_eq!(bgp.neighbor_address, Some("10.99.0.9".parse().unwrap()));
        assert_eq!(bgp.neighbor_as, Some(64512));
        assert_eq!(bgp.neighbor_id, None);
        assert_eq!(bgp.last_error.as_deref(), Some("Socket: No route to host"));
    }

    #[test]
    fn show_protocols_all_early_and_single() {
        let all = parse_protocols_all(B_PROTOCOLS_ALL_EARLY).unwrap();
        let mesh = all.iter().find(|p| p.protocol.name == "Mesh_10_99_0_9").unwrap();
        assert_eq!(mesh.bgp.as_ref().unwrap().state, "Connect");
        assert_eq!(mesh.protocol.info, "Connect       Socket: No route to host");
        let node = all.iter().find(|p| p.protocol.name == "Node_10_99_0_1").unwrap();
        assert_eq!(node.routes, Some(RouteCounts { imported: 3, filtered: None, exported: 1, preferred: 3 }));
        assert_eq!(node.bgp.as_ref().unwrap().hold_timer.as_deref(), Some("200/240"));
        assert_eq!(node.bgp.as_ref().unwrap().keepalive_timer.as_deref(), Some("63/80"));

        let one = parse_protocols_all(B_PROTOCOLS_ALL_NODE).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].bgp.as_ref().unwrap().neighbor_id, Some("10.99.0.1".parse().unwrap()));
    }

    #[test]
    fn show_protocols_all_raw() {
        let all = parse_protocols_all(A_RAW_PROTOCOLS_ALL).unwrap();
        let names: Vec<&str> = all.iter().map(|p| p.protocol.name.as_str()).collect();
        assert_eq!(names, vec!["static1", "kernel1", "device1", "direct1", "Node_10_99_0_2", "Node_10_99_1_3"]);
        assert_eq!(all[0].routes, Some(RouteCounts { imported: 2, filtered: None, exported: 0, preferred: 2 }));
        let rr_client = all[5].bgp.as_ref().unwrap();
        assert_eq!(rr_client.neighbor_address, Some("10.99.1.3".parse().unwrap()));
        assert_eq!(rr_client.source_address, Some("10.99.1.1".parse().unwrap()));

        // The Mesh peer over the raw socket, from the session capture.
        let second: String = B_RAW_SESSION
            .lines()
            .skip_while(|l| !l.starts_with("0000"))
            .skip(1)
            .take_while(|l| !l.starts_with("0000"))
            .map(|l| format!("{l}\n"))
            .collect();
        let mesh = parse_protocols_all(&second).unwrap();
        assert_eq!(mesh.len(), 1);
        let bgp = mesh[0].bgp.as_ref().unwrap();
        assert_eq!(bgp.state, "Active");
        assert_eq!(bgp.connect_delay.as_deref(), Some("1/2"));
        assert_eq!(bgp.last_error.as_deref(), Some("Socket: No route to host"));
    }

    #[test]
    fn show_status_birdc_and_raw() {
        let s = parse_status(B_STATUS).unwrap();
        assert_eq!(
            s,
            BirdStatus {
                version: "1.6.8".into(),
                router_id: "10.99.0.2".parse().unwrap(),
                server_time: Some("2026-11-25 13:31:10".into()),
                last_reboot: Some("2026-11-25 13:29:47".into()),
                last_reconfiguration: Some("2026-11-25 13:30:52".into()),
                state: DaemonState::UpAndRunning,
                other: vec![],
            }
        );
        // The status reply inside the configure-in-progress capture.
        let status: String = A_RAW_CONFIGURE_PROGRESS
            .lines()
            .filter(|l| l.starts_with("1000") || l.starts_with("1011") || l.starts_with(' ') || l.starts_with("0013"))
            .map(|l| format!("{l}\n"))
            .collect();
        let s = parse_status(&status).unwrap();
        assert_eq!(s.router_id, "10.99.0.1".parse::<Ipv4Addr>().unwrap());
        assert_eq!(s.state, DaemonState::ReconfigurationInProgress);
        assert_eq!(s.last_reconfiguration.as_deref(), Some("2026-11-25 13:30:24"));
    }

    #[test]
    fn configure_replies() {
        let r = parse_configure_replies(A_RAW_CONFIGURE_PROGRESS).unwrap_err();
        // The capture interleaves a `show status` reply: not a configure reply.
        assert_eq!(r.line, 4);

        let only_configure: String = A_RAW_CONFIGURE_PROGRESS
            .lines()
            .filter(|l| {
                l.starts_with("0001") || l.starts_with("0002") || l.starts_with("0003") || l.starts_with("0004")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let r = parse_configure_replies(&only_configure).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].file.as_deref(), Some("/tmp/rrobs/a-noc.cfg"));
        assert_eq!(r[0].outcome, ConfigureOutcome::InProgress);
        assert_eq!(r[1].outcome, ConfigureOutcome::Reconfigured);

        let r = parse_configure_replies(B_RAW_CONFIGURE).unwrap();
        assert_eq!(
            r,
            vec![
                ConfigureReply {
                    file: Some("/tmp/rrobs/b.cfg".into()),
                    notes: vec![],
                    outcome: ConfigureOutcome::Reconfigured
                };
                2
            ]
        );

        let r = parse_configure_replies(B_RAW_CONFIGURE_ERRORS).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].file.as_deref(), Some("/tmp/rrobs/b-noas.cfg"));
        assert_eq!(
            r[0].outcome,
            ConfigureOutcome::Error(ConfigError {
                file: "/tmp/rrobs/b-noas.cfg".into(),
                line: 77,
                col: Some(1),
                message: "Remote AS number must be set".into(),
            })
        );
        assert_eq!(r[1].outcome, ConfigureOutcome::NothingToDo);
        assert_eq!(r[2].notes, vec!["Undo requested".to_string()]);
        assert_eq!(r[2].outcome, ConfigureOutcome::Reconfigured);

        let one = parse_configure(B_BIRDC_CONFIGURE_NOAS).unwrap();
        assert_eq!(one.file.as_deref(), Some("/tmp/rrobs/b-noas.cfg"));
        assert_eq!(
            one.outcome,
            ConfigureOutcome::Error(ConfigError {
                file: "/tmp/rrobs/b-noas.cfg".into(),
                line: 77,
                col: Some(1),
                message: "Remote AS number must be set".into(),
            })
        );
        assert!(parse_configure(B_RAW_CONFIGURE).is_err());
    }

    #[test]
    fn config_error_forms() {
        // `bird -p -c` stderr, as quoted in the twin spec §5.
        assert_eq!(
            ConfigError::parse("bird: noas.cfg:19:1 Remote AS number must be set"),
            Some(ConfigError {
                file: "noas.cfg".into(),
                line: 19,
                col: Some(1),
                message: "Remote AS number must be set".into()
            })
        );
        // Older form, from projectcalico/calico#2292 (calico-node log):
        // https://github.com/projectcalico/calico/issues/2292
        assert_eq!(
            ConfigError::parse(
                "bird: /etc/calico/confd/config/bird.cfg, line 96: Only internal neighbor can be RR client"
            ),
            Some(ConfigError {
                file: "/etc/calico/confd/config/bird.cfg".into(),
                line: 96,
                col: None,
                message: "Only internal neighbor can be RR client".into()
            })
        );
        assert_eq!(ConfigError::parse("Reconfigured"), None);
    }

    #[test]
    fn malformed_inputs_name_the_line() {
        let e = parse_protocols("BIRD 1.6.8 ready.\nname proto table state since info\nkernel1 Kernel\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.expected.contains("protocol row"), "{e}");

        let e = parse_protocols("BIRD 1.6.8 ready.\nkernel1  Kernel   master   up     13:29:47\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.expected.contains("header"), "{e}");

        let e = parse_protocols("").unwrap_err();
        assert!(e.expected.contains("header"));

        let e = parse_protocols(
            "0001 BIRD 1.6.8 ready.\n2002-name     proto    table    state  since       info\nX garbage\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);

        let e = parse_protocols("0001 BIRD 1.6.8 ready.\n2002-name proto table state since\n").unwrap_err();
        assert_eq!(e.line, 2);

        let e = parse_protocols_all(
            "name proto table state since info\nNode_1 BGP master up 12:00:00 Established\n  Routes: lots\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.expected.contains("imported"), "{e}");

        let e = parse_protocols_all(
            "name proto table state since info\nNode_1 BGP master up 12:00:00 Established\n  BGP state: Established\n    Neighbor AS: x\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 4);

        let e = parse_status("BIRD 1.6.8 ready.\nBIRD 1.6.8\nRouter ID is banana\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse_status("BIRD 1.6.8\nRouter ID is 1.2.3.4\n").unwrap_err();
        assert!(e.expected.contains("daemon state"), "{e}");

        let e = parse_configure("Reading configuration from x.cfg\nwhat is this\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_configure("0002-Reading configuration from x.cfg\n").unwrap_err();
        assert!(e.expected.contains("outcome"));
    }

    #[test]
    fn iso_long_since_and_old_bird() {
        // Since with date and time (BIRD `timeformat protocol iso long`).
        let p = parse_protocols(
            "name     proto    table    state  since       info\nMesh_10_0_0_3 BGP      master   up     2016-11-21 10:00:01  Established\n",
        )
        .unwrap();
        assert_eq!(p[0].since, "2016-11-21 10:00:01");
        assert_eq!(p[0].info, "Established");

        // calicoctl's own doc comment in status.go quotes this BIRD 1.5 reply.
        let p = parse_protocols(
            "0001 BIRD 1.5.0 ready.\n2002-name     proto    table    state  since       info\n1002-kernel1  Kernel   master   up     2016-11-21\n device1  Device   master   up     2016-11-21\n direct1  Direct   master   up     2016-11-21\n Mesh_172_17_8_102 BGP      master   up     2016-11-21  Established\n0000\n",
        )
        .unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[3].since, "2016-11-21");
        assert!(p[3].is_established());
    }
}
