//! What a runbook says, typed: the lab it needs, continuous probes, and steps (an operator script or a
//! harness action, then expectations). Built by [`super::parse()`]; evaluated by [`super::check()`].

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::observe::{PeerType, Prefix};

/// Calico's default IPAM block size (`blockSize` of an IPPool).
pub const DEFAULT_BLOCK_SIZE: u8 = 26;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_POLL: Duration = Duration::from_millis(500);
pub const DEFAULT_PROBE_PPS: u32 = 100;
/// Below this rate a probe cannot resolve an outage to 10 ms.
pub const MIN_PROBE_PPS: u32 = 100;
pub const MAX_PROBE_PPS: u32 = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Runbook {
    pub name: String,
    pub file: PathBuf,
    pub description: Option<String>,
    /// The containerlab topology, resolved relative to the runbook's directory.
    pub topology: PathBuf,
    pub probes: Vec<ProbeSpec>,
    pub steps: Vec<Step>,
    pub defaults: Defaults,
    /// Seeded faults: `# expect-fail: step N: <text>` header lines. Step N must fail, with the text in its
    /// failure; such a step counts as passing (it proves an expectation can fail).
    pub expect_fail: Vec<ExpectedFailure>,
}

/// One `# expect-fail: step N: <text>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedFailure {
    /// 1-based step number.
    pub step: usize,
    pub text: String,
    /// Line of the header comment.
    pub line: usize,
}

impl Runbook {
    /// The text step `n` (1-based) must fail with, if it is a seeded fault.
    pub fn expected_failure(&self, n: usize) -> Option<&str> {
        self.expect_fail.iter().find(|e| e.step == n).map(|e| e.text.as_str())
    }

    pub fn probe(&self, name: &str) -> Option<&ProbeSpec> {
        self.probes.iter().find(|p| p.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// How long each step's expectations may take to hold (a step's `timeout` overrides it).
    pub timeout: Duration,
    /// How often expectations are re-checked while waiting.
    pub poll: Duration,
    /// Prefix length of a node's IPAM block, for `block:<node>` (Calico's default 26).
    pub block_size: u8,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults { timeout: DEFAULT_TIMEOUT, poll: DEFAULT_POLL, block_size: DEFAULT_BLOCK_SIZE }
    }
}

/// Continuous pod-to-pod traffic, declared once, measured per step.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    pub name: String,
    pub from: PodSelector,
    pub to: PodSelector,
    /// Packets per second (>= 100, so an outage is measured to 10 ms).
    pub rate_pps: u32,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodSelector {
    /// `pod:<name>`
    Pod(String),
    /// A node name: the first pod of that node.
    Node(String),
}

impl fmt::Display for PodSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PodSelector::Pod(p) => write!(f, "pod:{p}"),
            PodSelector::Node(n) => write!(f, "{n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    /// Line of the step in the runbook.
    pub line: usize,
    /// The cluster a `run` script is typed into (None: the topology's only cluster).
    pub cluster: Option<String>,
    pub what: StepAction,
    pub expect: Vec<Expectation>,
    /// Overrides `defaults.timeout` for this step's expectations.
    pub timeout: Option<Duration>,
    /// Once every expectation held, keep measuring this long before the end-of-step checks (`loss`), and
    /// check that everything still holds.
    pub settle: Option<Duration>,
}

impl Step {
    /// The step expects its command (or BIRD's reload) to fail: a failing command is then not an error by
    /// itself, the `fails` expectation judges it.
    pub fn expects_failure(&self) -> bool {
        self.expect.iter().any(|e| matches!(e, Expectation::Fails(_)))
    }

    /// The cluster the step's script is typed into: its own, else the topology's first (only) cluster.
    pub fn cluster_in(&self, topo: &crate::model::topology::Topology) -> String {
        match &self.cluster {
            Some(c) => c.clone(),
            None => topo.clusters.first().map(|c| c.name.clone()).unwrap_or_default(),
        }
    }

    pub fn timeout_or(&self, d: &Defaults) -> Duration {
        self.timeout.unwrap_or(d.timeout)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepAction {
    /// Operator command lines, verbatim (heredocs included). `script_line` is the runbook line of the
    /// script's first line, so script line `n` is runbook line `script_line + n - 1`.
    Run {
        script: String,
        script_line: usize,
    },
    Wan(WanAction),
    StopNode(String),
    StartNode(String),
    StopBird(String),
    StartBird(String),
    RestartCalicoNode(String),
    /// The node hangs (a paused VM): its processes frozen, its links cut with no word to its peers.
    FreezeNode(String),
    ThawNode(String),
    /// One link's cable pulled (`node:iface`): no carrier at either end.
    LinkDown {
        node: String,
        iface: String,
    },
    LinkUp {
        node: String,
        iface: String,
    },
    Wait(Duration),
    /// Only expectations.
    None,
}

impl StepAction {
    /// Short text for reports: `run (3 lines)`, `wan partition site-a <-> site-b`, `stop node x`.
    pub fn describe(&self) -> String {
        match self {
            StepAction::Run { script, .. } => {
                let n = script.lines().count();
                format!("run ({n} line{})", if n == 1 { "" } else { "s" })
            }
            StepAction::Wan(w) => format!("wan {w}"),
            StepAction::StopNode(n) => format!("stop node {n}"),
            StepAction::StartNode(n) => format!("start node {n}"),
            StepAction::StopBird(n) => format!("stop BIRD on {n}"),
            StepAction::StartBird(n) => format!("start BIRD on {n}"),
            StepAction::RestartCalicoNode(n) => format!("restart calico-node on {n}"),
            StepAction::FreezeNode(n) => format!("freeze node {n}"),
            StepAction::ThawNode(n) => format!("thaw node {n}"),
            StepAction::LinkDown { node, iface } => format!("link {node}:{iface} down"),
            StepAction::LinkUp { node, iface } => format!("link {node}:{iface} up"),
            StepAction::Wait(d) => format!("wait {}", fmt_duration(*d)),
            StepAction::None => "check".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WanAction {
    /// Drop traffic between two sites; `from`/`to` are site (bridge) names or CIDRs.
    Partition {
        from: String,
        to: String,
        one_way: bool,
    },
    /// Remove every partition, loss, delay and rate limit.
    Heal,
    Loss {
        percent: f64,
    },
    Delay {
        ms: u32,
    },
    Rate {
        kbit: u32,
    },
    /// netem's knobs together (`wan: {delay: 40ms, jitter: 5ms, loss: 1%}`), on every WAN interface.
    Impair {
        imp: crate::impair::Impairment,
    },
    /// netem's knobs on one direction of one link: what the WAN sends towards `site`.
    ImpairToward {
        site: String,
        imp: crate::impair::Impairment,
    },
    /// The WAN flapping: a partition `down` long, then `up` long, `times` times.
    Flap {
        from: String,
        to: String,
        down: Duration,
        up: Duration,
        times: u32,
    },
}

impl fmt::Display for WanAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WanAction::Partition { from, to, one_way } => {
                write!(f, "partition {from} {} {to}", if *one_way { "->" } else { "<->" })
            }
            WanAction::Heal => write!(f, "heal"),
            WanAction::Loss { percent } => write!(f, "loss {percent}%"),
            WanAction::Delay { ms } => write!(f, "delay {ms}ms"),
            WanAction::Rate { kbit } => write!(f, "rate {kbit}kbit"),
            WanAction::Impair { imp } => write!(f, "impair {imp}"),
            WanAction::ImpairToward { site, imp } => write!(f, "impair towards {site}: {imp}"),
            WanAction::Flap { from, to, down, up, times } => write!(
                f,
                "flap {from} <-> {to}: down {}, up {}, {times} time{}",
                fmt_duration(*down),
                fmt_duration(*up),
                if *times == 1 { "" } else { "s" }
            ),
        }
    }
}

// ------------------------------------------------------------------------------------------ node sets

/// A set of lab nodes: the union of its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSet {
    pub items: Vec<NodeSel>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeSel {
    /// `all`
    All,
    /// A node name.
    Node(String),
    /// `cluster:<name>`
    Cluster(String),
    /// `site:<bridge>`
    Site(String),
    /// `label:<k>=<v>`, `label:<k>!=<v>`, `label:<k>` (has the label)
    Label { key: String, value: Option<String>, negated: bool },
}

impl fmt::Display for NodeSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeSel::All => write!(f, "all"),
            NodeSel::Node(n) => write!(f, "{n}"),
            NodeSel::Cluster(c) => write!(f, "cluster:{c}"),
            NodeSel::Site(s) => write!(f, "site:{s}"),
            NodeSel::Label { key, value: None, .. } => write!(f, "label:{key}"),
            NodeSel::Label { key, value: Some(v), negated } => {
                write!(f, "label:{key}{}{v}", if *negated { "!=" } else { "=" })
            }
        }
    }
}

impl fmt::Display for NodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.items.iter().map(|i| i.to_string()).collect();
        write!(f, "{}", parts.join(", "))
    }
}

impl NodeSet {
    pub fn all() -> NodeSet {
        NodeSet { items: vec![NodeSel::All] }
    }
    pub fn node(name: &str) -> NodeSet {
        NodeSet { items: vec![NodeSel::Node(name.to_string())] }
    }
}

/// Pods: named pods plus every pod of a node set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSet {
    /// `pod:<name>` items.
    pub pods: Vec<String>,
    /// The other items (nodes whose pods are included); may be empty.
    pub nodes: NodeSet,
}

impl fmt::Display for PodSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.pods.iter().map(|p| format!("pod:{p}")).collect();
        parts.extend(self.nodes.items.iter().map(|i| i.to_string()));
        write!(f, "{}", parts.join(", "))
    }
}

/// An address written in an expectation: an IP, a node (its IP), or, with `blocks:`, the node owning the
/// block being checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrRef {
    Ip(IpAddr),
    Node(String),
    /// `owner`: the node whose block the prefix is (only with `block:`/`blocks:` prefixes).
    Owner,
}

impl fmt::Display for AddrRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrRef::Ip(ip) => write!(f, "{ip}"),
            AddrRef::Node(n) => write!(f, "{n}"),
            AddrRef::Owner => write!(f, "owner"),
        }
    }
}

/// A prefix written in an expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixRef {
    Cidr(Prefix),
    /// `block:<node>` / `blocks:<node set>`: the IPAM block of each node of the set (the /`block_size`
    /// around its pods' addresses); for a set of several nodes, other than the observing node's own.
    Blocks(NodeSet),
}

impl fmt::Display for PrefixRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixRef::Cidr(p) => write!(f, "{p}"),
            PrefixRef::Blocks(s) if s.items.len() == 1 && matches!(s.items[0], NodeSel::Node(_)) => {
                write!(f, "block:{s}")
            }
            PrefixRef::Blocks(s) => write!(f, "blocks:{s}"),
        }
    }
}

/// A numeric bound: `4` (exactly), `<= 20000`, `>= 1`, `< 3`, `> 0`, `2..5` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub min: Option<u64>,
    pub max: Option<u64>,
}

impl Bound {
    pub fn exactly(n: u64) -> Bound {
        Bound { min: Some(n), max: Some(n) }
    }
    pub fn holds(&self, v: u64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(a), Some(b)) if a == b => write!(f, "= {a}"),
            (Some(a), Some(b)) => write!(f, "{a}..{b}"),
            (Some(a), None) => write!(f, ">= {a}"),
            (None, Some(b)) => write!(f, "<= {b}"),
            (None, None) => write!(f, "any"),
        }
    }
}

// ------------------------------------------------------------------------------------------ expectations

#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    Sessions(SessionsExpect),
    Rib(RibExpect),
    Fib(FibExpect),
    Reach(ReachExpect),
    Ipset(IpsetExpect),
    Iptables(IptablesExpect),
    Config(ConfigExpect),
    Fails(FailsExpect),
    Loss(LossExpect),
    Converge(ConvergeExpect),
    Wan(WanExpect),
}

pub const EXPECTATION_KINDS: &[&str] =
    &["sessions", "rib", "fib", "reach", "ipset", "iptables", "config", "fails", "loss", "converge", "wan"];

impl Expectation {
    /// The runbook line the expectation was written on.
    pub fn line(&self) -> usize {
        match self {
            Expectation::Sessions(e) => e.line,
            Expectation::Rib(e) => e.line,
            Expectation::Fib(e) => e.line,
            Expectation::Reach(e) => e.line,
            Expectation::Ipset(e) => e.line,
            Expectation::Iptables(e) => e.line,
            Expectation::Config(e) => e.line,
            Expectation::Fails(e) => e.line,
            Expectation::Loss(e) => e.line,
            Expectation::Converge(e) => e.line,
            Expectation::Wan(e) => e.line,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Expectation::Sessions(_) => "sessions",
            Expectation::Rib(_) => "rib",
            Expectation::Fib(_) => "fib",
            Expectation::Reach(_) => "reach",
            Expectation::Ipset(_) => "ipset",
            Expectation::Iptables(_) => "iptables",
            Expectation::Config(_) => "config",
            Expectation::Fails(_) => "fails",
            Expectation::Loss(_) => "loss",
            Expectation::Converge(_) => "converge",
            Expectation::Wan(_) => "wan",
        }
    }

    /// Polled until it holds (state of the network). `loss` and `converge` are judged once, at the end of
    /// the step.
    pub fn is_polled(&self) -> bool {
        !matches!(self, Expectation::Loss(_) | Expectation::Converge(_))
    }

    /// The expectation as written, short: `sessions on hybrid-worker3`.
    pub fn describe(&self) -> String {
        match self {
            Expectation::Sessions(e) => format!("sessions on {}", e.on),
            Expectation::Rib(e) => {
                format!("rib on {}: {} {}", e.on, e.prefix, if e.absent { "absent" } else { "present" })
            }
            Expectation::Fib(e) => format!("fib on {}", e.on),
            Expectation::Reach(e) => format!(
                "reach {} {} {}{}",
                e.from,
                if e.both_ways { "<->" } else { "->" },
                e.to,
                if e.pass { "" } else { " fails" }
            ),
            Expectation::Ipset(e) => format!("ipset {} on {}", e.set, e.on),
            Expectation::Iptables(e) => format!("iptables {} {:?} on {}", e.chain, e.rule, e.on),
            Expectation::Config(e) => match &e.file {
                Some(f) => format!("config {f} on {}", e.on),
                None => format!("config on {}", e.on),
            },
            Expectation::Fails(e) => format!("fails with {:?}", e.message),
            Expectation::Loss(e) => match &e.probe {
                Some(p) => format!("loss on probe {p}"),
                None => "loss on every probe".to_string(),
            },
            Expectation::Converge(e) => format!("converge within {}", fmt_duration(e.within)),
            Expectation::Wan(_) => "wan".to_string(),
        }
    }
}

/// `sessions`: the exact set of BGP peers of each node, as `calicoctl node status` shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionsExpect {
    pub line: usize,
    pub on: NodeSet,
    pub peers: Vec<PeerSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeerSpec {
    pub line: usize,
    pub peer: PeerRef,
    /// None: any type.
    pub peer_type: Option<PeerType>,
    /// None: any state.
    pub state: Option<PeerState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRef {
    /// An address as calicoctl prints it (an IP, or `10.0.0.1.port.1790`).
    Address(String),
    /// Every node of the set but the observing node itself, by IP.
    Nodes(NodeSet),
}

impl fmt::Display for PeerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerRef::Address(a) => write!(f, "{a}"),
            PeerRef::Nodes(s) => write!(f, "{s}"),
        }
    }
}

/// A state word: BIRD's protocol state (the STATE column: `up`, `start`, …) or the BGP state (first word of
/// the INFO column: `Established`, `Active`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerState {
    Protocol(String),
    Bgp(String),
}

pub const PROTOCOL_STATES: &[&str] = &["up", "down", "start", "stop", "feed", "flush"];
pub const BGP_STATES: &[&str] =
    &["Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established", "Close", "Passive"];

impl PeerState {
    /// Case-insensitive; canonical spelling kept.
    pub fn parse(s: &str) -> Option<PeerState> {
        if let Some(p) = PROTOCOL_STATES.iter().find(|p| p.eq_ignore_ascii_case(s)) {
            return Some(PeerState::Protocol(p.to_string()));
        }
        BGP_STATES.iter().find(|p| p.eq_ignore_ascii_case(s)).map(|p| PeerState::Bgp(p.to_string()))
    }
    pub fn as_str(&self) -> &str {
        match self {
            PeerState::Protocol(s) | PeerState::Bgp(s) => s,
        }
    }
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_str())
    }
}

/// Which BIRD paths of a prefix the attributes are checked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathChoice {
    /// The selected route (`*`).
    Best,
    /// Some path has all the attributes.
    Any,
}

/// `rib`: a prefix in BIRD's table on each node, with its BGP attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct RibExpect {
    pub line: usize,
    pub on: NodeSet,
    pub prefix: PrefixRef,
    pub absent: bool,
    /// `unicast`, `blackhole`, `unreachable`, `prohibited`, `multipath`.
    pub kind: Option<String>,
    /// BGP.next_hop (the gateway for non-BGP routes).
    pub next_hop: Option<AddrRef>,
    /// The peer the route was learned from.
    pub from: Option<AddrRef>,
    pub cluster_list: Option<Vec<AddrRef>>,
    pub originator_id: Option<AddrRef>,
    pub as_path: Option<Vec<u32>>,
    /// Number of paths BIRD lists for the prefix.
    pub count: Option<Bound>,
    pub path: PathChoice,
}

/// `fib`: kernel routes on each node.
#[derive(Debug, Clone, PartialEq)]
pub struct FibExpect {
    pub line: usize,
    pub on: NodeSet,
    pub contains: Vec<RouteSpec>,
    pub absent: Vec<RouteSpec>,
    /// Exactly these `proto bird` routes.
    pub exact: Option<Vec<RouteSpec>>,
}

/// A kernel route as `ip route` prints it, with node names allowed after `via`; words left out match
/// anything: `172.16.3.0/26 via hybrid-worker dev tunl0 proto bird onlink`, `blackhole block:x proto bird`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    /// As written.
    pub text: String,
    /// `blackhole`, `unreachable`, `prohibit`, `unicast`, … (None: any).
    pub kind: Option<String>,
    pub dst: PrefixRef,
    pub via: Option<AddrRef>,
    pub dev: Option<String>,
    pub proto: Option<String>,
    pub onlink: bool,
    pub metric: Option<u32>,
    pub scope: Option<String>,
    pub src: Option<IpAddr>,
}

/// `reach`: pod-to-pod pings, every pod of `from` to every pod of `to` (not to itself).
#[derive(Debug, Clone, PartialEq)]
pub struct ReachExpect {
    pub line: usize,
    pub from: PodSet,
    pub to: PodSet,
    /// true: every ping passes; false: every ping fails.
    pub pass: bool,
    /// Also `to` → `from`.
    pub both_ways: bool,
}

/// `ipset`: members of a set on each node.
#[derive(Debug, Clone, PartialEq)]
pub struct IpsetExpect {
    pub line: usize,
    pub on: NodeSet,
    pub set: String,
    pub contains: Vec<MemberRef>,
    pub absent: Vec<MemberRef>,
    pub exact: Option<Vec<MemberRef>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRef {
    /// As written (`10.2.0.0/16`, `10.0.1.3`); IPs and CIDRs compare as prefixes.
    Literal(String),
    /// The IPs of a node set.
    Nodes(NodeSet),
}

/// `iptables`: a rule (found by its comment) and its counters, summed over the node set.
#[derive(Debug, Clone, PartialEq)]
pub struct IptablesExpect {
    pub line: usize,
    pub on: NodeSet,
    pub chain: String,
    /// The rule's comment (exact, else contained).
    pub rule: String,
    pub present: bool,
    pub packets: Option<CounterCheck>,
    pub bytes: Option<CounterCheck>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CounterCheck {
    /// Higher than when the step started.
    Increases,
    /// Equal to when the step started.
    Unchanged,
    /// The counter's value now.
    Value(Bound),
}

impl fmt::Display for CounterCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CounterCheck::Increases => write!(f, "increases"),
            CounterCheck::Unchanged => write!(f, "unchanged"),
            CounterCheck::Value(b) => write!(f, "{b}"),
        }
    }
}

/// `config`: lines of the rendered BIRD config (whitespace-normalised). An entry of several lines must
/// appear as consecutive lines.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigExpect {
    pub line: usize,
    pub on: NodeSet,
    /// `bird.cfg`, `bird_ipam.cfg`, …; None: any file.
    pub file: Option<String>,
    pub contains: Vec<String>,
    pub lacks: Vec<String>,
}

/// `fails`: a command of the step failed, or BIRD rejected its new config, with this text
/// (case-insensitive, whitespace-normalised).
#[derive(Debug, Clone, PartialEq)]
pub struct FailsExpect {
    pub line: usize,
    pub message: String,
    /// Nodes whose BIRD config error counts (None: every node).
    pub on: Option<NodeSet>,
}

/// `loss`: per probe, during this step.
#[derive(Debug, Clone, PartialEq)]
pub struct LossExpect {
    pub line: usize,
    /// None: every probe.
    pub probe: Option<String>,
    pub max_lost: Option<LostBudget>,
    pub max_outage: Option<Duration>,
    /// The loss must be seen: at least this much lost (a runbook that shows a disruption).
    pub min_lost: Option<LostBudget>,
    pub min_outage: Option<Duration>,
    /// At least this many packets must arrive twice / out of order (a WAN that duplicates or reorders).
    pub min_duplicates: Option<u64>,
    pub min_reordered: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LostBudget {
    Packets(u64),
    Percent(f64),
}

impl fmt::Display for LostBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostBudget::Packets(n) => write!(f, "{n} packet{}", if *n == 1 { "" } else { "s" }),
            LostBudget::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// `converge`: every other expectation of the step held within this time.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvergeExpect {
    pub line: usize,
    pub within: Duration,
}

/// `wan`: what crosses the WAN. Sessions are counted now; bytes and packets since the step started.
#[derive(Debug, Clone, PartialEq)]
pub struct WanExpect {
    pub line: usize,
    pub bgp_sessions: Option<Bound>,
    pub bgp_bytes: Option<Bound>,
    pub bgp_packets: Option<Bound>,
    pub ipip_bytes: Option<Bound>,
    pub ipip_packets: Option<Bound>,
}

/// `1.42s`, `250ms`, `2m03s`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = d.as_secs_f64();
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{s:.2}s")
        }
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}
