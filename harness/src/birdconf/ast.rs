//! Configuration model: what the parser produces.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Serialize, Serializer};

/// A position in a configuration file (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

// ---------------------------------------------------------------------------------------------
// Prefixes
// ---------------------------------------------------------------------------------------------

/// An IPv4 or IPv6 prefix with no host bits set (BIRD rejects prefixes with host bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

fn ip_bits(a: IpAddr) -> (u128, u8) {
    match a {
        IpAddr::V4(v) => (u32::from(v) as u128, 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    }
}

fn bits_to_ip(bits: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(bits as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

/// Netmask of `len` bits in an address of `width` bits.
fn netmask(len: u8, width: u8) -> u128 {
    let full: u128 = if width >= 128 { u128::MAX } else { (1u128 << width) - 1 };
    if len == 0 {
        return 0;
    }
    let host: u128 = if len >= width { 0 } else { (1u128 << (width - len)) - 1 };
    full & !host
}

impl Prefix {
    /// A prefix; `None` if `len` is too long for the family or host bits are set.
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        let (bits, width) = ip_bits(addr);
        if len > width {
            return None;
        }
        if bits & !netmask(len, width) != 0 {
            return None;
        }
        Some(Prefix { addr, len })
    }

    /// A prefix with host bits cleared.
    pub fn truncated(addr: IpAddr, len: u8) -> Option<Prefix> {
        let (bits, width) = ip_bits(addr);
        if len > width {
            return None;
        }
        Some(Prefix { addr: bits_to_ip(bits & netmask(len, width), width == 32), len })
    }

    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    pub fn max_len(&self) -> u8 {
        if self.is_v4() {
            32
        } else {
            128
        }
    }

    /// The default route of the family.
    pub fn default_route(v4: bool) -> Prefix {
        if v4 {
            Prefix { addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED), len: 0 }
        } else {
            Prefix { addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED), len: 0 }
        }
    }

    /// Whether `ip` is inside this prefix.
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        if ip.is_ipv4() != self.is_v4() {
            return false;
        }
        let (a, w) = ip_bits(ip);
        let (n, _) = ip_bits(self.addr);
        a & netmask(self.len, w) == n
    }

    /// Whether `other` is equal to or more specific than this prefix (BIRD `other ~ self`).
    pub fn contains(&self, other: &Prefix) -> bool {
        other.len >= self.len && self.contains_ip(other.addr)
    }

    /// The first half of this prefix (one bit longer), if any.
    pub fn first_half(&self) -> Option<Prefix> {
        if self.len >= self.max_len() {
            None
        } else {
            Some(Prefix { addr: self.addr, len: self.len + 1 })
        }
    }

    /// The first address after the network address (or the address itself for host routes).
    pub fn first_host(&self) -> IpAddr {
        let (bits, w) = ip_bits(self.addr);
        if self.len >= w {
            self.addr
        } else {
            bits_to_ip(bits + 1, w == 32)
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Serialize for Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// ---------------------------------------------------------------------------------------------
// Filter language
// ---------------------------------------------------------------------------------------------

/// Binary operators of the BIRD filter language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    NotMatch,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::And => "&&",
            BinOp::Or => "||",
            BinOp::Eq => "=",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Match => "~",
            BinOp::NotMatch => "!~",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
        }
    }
}

/// Expressions of the filter language.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Num(u64),
    Bool(bool),
    Str(String),
    Ip(IpAddr),
    Prefix(Prefix),
    /// `(a, b)` pair or `(a, b, c)` large-community triple.
    Tuple(Vec<Expr>),
    /// `[ ... ]` set literal.
    Set(Vec<SetItem>),
    /// `[= ... =]` AS path mask.
    PathMask(Vec<PathItem>),
    /// Identifier: route attribute, variable, constant (`RTS_BGP`), `-empty-`.
    Sym(String),
    /// `name(args)`, including `defined(x)`.
    Call(String, Vec<Expr>),
    /// `obj.name` (args `None`) or `obj.name(args)`.
    Method(Box<Expr>, String, Option<Vec<Expr>>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
}

/// One component of a pair / triple pattern in a set.
#[derive(Clone, Debug, PartialEq)]
pub enum SetPart {
    Any,
    Range(Expr, Expr),
    Value(Expr),
}

/// An element of a `[ ... ]` set.
#[derive(Clone, Debug, PartialEq)]
pub enum SetItem {
    /// Prefix pattern: matches prefixes inside `prefix` with length in `lo..=hi`.
    Prefix {
        prefix: Prefix,
        lo: u8,
        hi: u8,
    },
    Range(Expr, Expr),
    Value(Expr),
    Tuple(Vec<SetPart>),
}

/// An element of an AS path mask.
#[derive(Clone, Debug, PartialEq)]
pub enum PathItem {
    /// `*`: any sequence of ASNs.
    AnySeq,
    /// `?`: exactly one ASN.
    AnyOne,
    Asn(Expr),
}

/// Statements of the filter language.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    If {
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Option<Vec<Stmt>>,
    },
    Accept(Option<Expr>),
    Reject(Option<Expr>),
    Return(Option<Expr>),
    /// `attr = value;` or `var = value;`.
    Assign {
        target: String,
        value: Expr,
    },
    /// Expression statement: function call or `attr.add(...)` style method call.
    Expr(Expr),
    Print {
        newline: bool,
        args: Vec<Expr>,
    },
    Case {
        expr: Expr,
        arms: Vec<CaseArm>,
        default: Option<Vec<Stmt>>,
    },
    Block(Vec<Stmt>),
    /// `quitbird;` and other statements the evaluator treats as no-ops.
    Other(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct CaseArm {
    pub labels: Vec<SetItem>,
    pub body: Vec<Stmt>,
}

// ---- printing (canonical, layout-independent) ----

/// A symbol as BIRD source: bare if it is a plain identifier, else in single quotes.
pub fn symbol_text(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain || name.starts_with(['-', '+']) {
        name.to_string()
    } else {
        format!("'{name}'")
    }
}

fn join<T: fmt::Display>(items: &[T], sep: &str) -> String {
    items.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(sep)
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Num(n) => write!(f, "{n}"),
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Str(s) => write!(f, "\"{s}\""),
            Expr::Ip(a) => write!(f, "{a}"),
            Expr::Prefix(p) => write!(f, "{p}"),
            Expr::Tuple(v) => write!(f, "({})", join(v, ", ")),
            Expr::Set(items) => write!(f, "[ {} ]", join(items, ", ")),
            Expr::PathMask(items) => write!(f, "[= {} =]", join(items, " ")),
            Expr::Sym(s) => write!(f, "{}", symbol_text(s)),
            Expr::Call(n, args) => write!(f, "{}({})", symbol_text(n), join(args, ", ")),
            Expr::Method(o, n, None) => write!(f, "{o}.{n}"),
            Expr::Method(o, n, Some(args)) => write!(f, "{o}.{n}({})", join(args, ", ")),
            Expr::Not(e) => match **e {
                Expr::Bin(..) => write!(f, "!({e})"),
                _ => write!(f, "!{e}"),
            },
            Expr::Neg(e) => write!(f, "-{e}"),
            Expr::Bin(op, a, b) => {
                let wrap = |e: &Expr| match e {
                    Expr::Bin(..) => format!("({e})"),
                    _ => e.to_string(),
                };
                write!(f, "{} {} {}", wrap(a), op.symbol(), wrap(b))
            }
        }
    }
}

impl fmt::Display for SetPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetPart::Any => write!(f, "*"),
            SetPart::Range(a, b) => write!(f, "{a}..{b}"),
            SetPart::Value(v) => write!(f, "{v}"),
        }
    }
}

impl fmt::Display for SetItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetItem::Prefix { prefix, lo, hi } => {
                if *lo == prefix.len && *hi == prefix.len {
                    write!(f, "{prefix}")
                } else {
                    write!(f, "{prefix}{{{lo},{hi}}}")
                }
            }
            SetItem::Range(a, b) => write!(f, "{a}..{b}"),
            SetItem::Value(v) => write!(f, "{v}"),
            SetItem::Tuple(parts) => write!(f, "({})", join(parts, ", ")),
        }
    }
}

impl fmt::Display for PathItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathItem::AnySeq => write!(f, "*"),
            PathItem::AnyOne => write!(f, "?"),
            PathItem::Asn(e) => write!(f, "{e}"),
        }
    }
}

/// Prints a statement list on one line, canonically.
pub fn stmts_to_string(stmts: &[Stmt]) -> String {
    join(stmts, " ")
}

fn block(stmts: &[Stmt]) -> String {
    if stmts.is_empty() {
        "{ }".to_string()
    } else {
        format!("{{ {} }}", stmts_to_string(stmts))
    }
}

impl fmt::Display for Stmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stmt::If { cond, then, otherwise } => {
                write!(f, "if {cond} then {}", block(then))?;
                if let Some(o) = otherwise {
                    write!(f, " else {}", block(o))?;
                }
                Ok(())
            }
            Stmt::Accept(None) => write!(f, "accept;"),
            Stmt::Accept(Some(e)) => write!(f, "accept {e};"),
            Stmt::Reject(None) => write!(f, "reject;"),
            Stmt::Reject(Some(e)) => write!(f, "reject {e};"),
            Stmt::Return(None) => write!(f, "return;"),
            Stmt::Return(Some(e)) => write!(f, "return {e};"),
            Stmt::Assign { target, value } => write!(f, "{} = {value};", symbol_text(target)),
            Stmt::Expr(e) => write!(f, "{e};"),
            Stmt::Print { newline, args } => {
                write!(f, "{} {};", if *newline { "print" } else { "printn" }, join(args, ", "))
            }
            Stmt::Case { expr, arms, default } => {
                write!(f, "case {expr} {{")?;
                for a in arms {
                    write!(f, " {}: {}", join(&a.labels, ", "), stmts_to_string(&a.body))?;
                }
                if let Some(d) = default {
                    write!(f, " else: {}", stmts_to_string(d))?;
                }
                write!(f, " }}")
            }
            Stmt::Block(b) => write!(f, "{}", block(b)),
            Stmt::Other(s) => write!(f, "{s};"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration items
// ---------------------------------------------------------------------------------------------

/// A parameter or local variable declaration: `bool internal_peer`, `int set s`.
#[derive(Clone, Debug, PartialEq)]
pub struct VarDecl {
    pub ty: String,
    pub name: String,
}

/// `function name(params) [locals] { body }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub name: String,
    pub params: Vec<VarDecl>,
    pub locals: Vec<VarDecl>,
    pub body: Vec<Stmt>,
    pub location: Location,
}

fn decls(v: &[VarDecl], sep: &str) -> String {
    v.iter().map(|d| format!("{} {}", d.ty, d.name)).collect::<Vec<_>>().join(sep)
}

/// Canonical BIRD source on one line.
impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "function {}({})", symbol_text(&self.name), decls(&self.params, "; "))?;
        for l in &self.locals {
            write!(f, " {} {};", l.ty, l.name)?;
        }
        write!(f, " {}", block(&self.body))
    }
}

/// `filter name [locals] { body }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub name: String,
    pub locals: Vec<VarDecl>,
    pub body: Vec<Stmt>,
    pub location: Location,
}

/// Canonical BIRD source on one line.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "filter {}", symbol_text(&self.name))?;
        for l in &self.locals {
            write!(f, " {} {};", l.ty, l.name)?;
        }
        write!(f, " {}", block(&self.body))
    }
}

/// What a protocol's `import` / `export` clause says.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum FilterRef {
    /// No clause (BIRD default: import all, export none).
    #[default]
    Default,
    All,
    None,
    /// `filter name`.
    Named(String),
    /// `filter { ... }`.
    Inline(Vec<Stmt>),
    /// `where <expr>`.
    Where(Expr),
}

impl fmt::Display for FilterRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterRef::Default => write!(f, "(default)"),
            FilterRef::All => write!(f, "all"),
            FilterRef::None => write!(f, "none"),
            FilterRef::Named(n) => write!(f, "filter {n}"),
            FilterRef::Inline(s) => write!(f, "filter {}", block(s)),
            FilterRef::Where(e) => write!(f, "where {e}"),
        }
    }
}

/// A protocol option other than import/export/route, e.g. `scan time 2;`:
/// `key` = the option's keywords ("scan time"), `value` = the rest as canonical text ("2").
#[derive(Clone, Debug, PartialEq)]
pub struct ProtoOption {
    pub key: String,
    pub value: String,
    pub location: Location,
    pub(crate) toks: Vec<super::lexer::Tok>,
}

/// Where a static route sends traffic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteTarget {
    Blackhole,
    Unreachable,
    Prohibit,
    Via(IpAddr),
    ViaInterface(String),
    Recursive(IpAddr),
    /// Anything else (multipath, ...), as canonical text.
    Other(String),
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteTarget::Blackhole => write!(f, "blackhole"),
            RouteTarget::Unreachable => write!(f, "unreachable"),
            RouteTarget::Prohibit => write!(f, "prohibit"),
            RouteTarget::Via(a) => write!(f, "via {a}"),
            RouteTarget::ViaInterface(i) => write!(f, "via \"{i}\""),
            RouteTarget::Recursive(a) => write!(f, "recursive {a}"),
            RouteTarget::Other(s) => write!(f, "{s}"),
        }
    }
}

/// `route <prefix> <target>;` in a static protocol.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct StaticRoute {
    pub prefix: Prefix,
    pub target: RouteTarget,
}

impl fmt::Display for StaticRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "route {} {}", self.prefix, self.target)
    }
}

/// A BGP protocol with its template applied, as typed fields.
#[derive(Clone, Debug, PartialEq)]
pub struct BgpSession {
    pub name: String,
    pub template: Option<String>,
    pub neighbor: IpAddr,
    pub port: Option<u16>,
    pub remote_as: u32,
    pub local_as: Option<u32>,
    pub rr_client: bool,
    pub rr_cluster_id: Option<Ipv4Addr>,
    pub passive: bool,
    /// `None` = absent, `Some(None)` = bare `multihop`, `Some(Some(n))` = `multihop n`.
    pub multihop: Option<Option<u8>>,
    /// `direct;` given (and not overridden by a later `multihop`).
    pub direct: bool,
    pub ttl_security: Option<bool>,
    pub next_hop_keep: bool,
    pub next_hop_self: bool,
    pub source_address: Option<IpAddr>,
    pub graceful_restart_time: Option<u32>,
    pub password: Option<String>,
    /// `allow local as [n]`; a bare `allow local as` (no limit) is `u32::MAX`.
    pub allow_local_as: Option<u32>,
    pub import: FilterRef,
    pub export: FilterRef,
    /// Every other option (template's first, protocol's overriding), key → canonical value text.
    pub other: BTreeMap<String, String>,
}

/// `protocol <kind> [name] [from <template>] { ... }` (also used for `template` definitions).
#[derive(Clone, Debug, PartialEq)]
pub struct Protocol {
    pub kind: String,
    /// Explicit name; unnamed protocols get BIRD's automatic name in [`Protocol::effective_name`].
    pub name: Option<String>,
    pub from: Option<String>,
    /// This protocol's own options (not the template's), in order.
    pub options: Vec<ProtoOption>,
    /// This protocol's own import / export clause.
    pub import: Option<FilterRef>,
    pub export: Option<FilterRef>,
    /// `route` statements (static protocols).
    pub routes: Vec<StaticRoute>,
    /// For `protocol bgp`: the session resolved against its template chain.
    pub bgp: Option<BgpSession>,
    pub location: Location,
    /// BIRD's name for it: explicit name, else `<kind><n>` (`kernel1`, `static1`, ...).
    pub effective_name: String,
}

/// `listen bgp [address A] [port P] [dual|v6only];`
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Listen {
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
    pub mode: Option<String>,
}

/// A top-level statement the reader keeps as text (`log ...;`, `table t;`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct RawStatement {
    pub text: String,
    pub location: Location,
}

/// A parsed BIRD configuration (main file plus everything it includes).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BirdConfig {
    pub router_id: Option<Ipv4Addr>,
    pub listen: Option<Listen>,
    pub templates: Vec<Protocol>,
    pub protocols: Vec<Protocol>,
    pub functions: BTreeMap<String, Function>,
    pub filters: BTreeMap<String, Filter>,
    /// `define name = expr;`
    pub defines: BTreeMap<String, Expr>,
    /// Names of `include` statements seen, in order.
    pub includes: Vec<String>,
    /// Top-level statements not modelled above.
    pub other: Vec<RawStatement>,
    /// Files read (main first).
    pub files: Vec<String>,
}

impl BirdConfig {
    /// All BGP sessions, in file order.
    pub fn bgp_sessions(&self) -> impl Iterator<Item = &BgpSession> {
        self.protocols.iter().filter_map(|p| p.bgp.as_ref())
    }

    /// A BGP session by protocol name.
    pub fn bgp_session(&self, name: &str) -> Option<&BgpSession> {
        self.bgp_sessions().find(|s| s.name == name)
    }

    /// All `route` statements of all static protocols.
    pub fn static_routes(&self) -> impl Iterator<Item = &StaticRoute> {
        self.protocols.iter().filter(|p| p.kind == "static").flat_map(|p| p.routes.iter())
    }

    /// A protocol by (effective) name.
    pub fn protocol(&self, name: &str) -> Option<&Protocol> {
        self.protocols.iter().find(|p| p.effective_name == name)
    }

    /// A template by name.
    pub fn template(&self, name: &str) -> Option<&Protocol> {
        self.templates.iter().find(|p| p.name.as_deref() == Some(name))
    }

    /// Options of `p` with its template chain applied (template first, own last), key → value.
    pub fn effective_options(&self, p: &Protocol) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for q in self.chain(p) {
            for o in &q.options {
                out.insert(o.key.clone(), o.value.clone());
            }
        }
        out
    }

    /// Effective import clause of `p` (own, else inherited, else default).
    pub fn effective_import(&self, p: &Protocol) -> FilterRef {
        self.chain(p).iter().rev().find_map(|q| q.import.clone()).unwrap_or_default()
    }

    /// Effective export clause of `p` (own, else inherited, else default).
    pub fn effective_export(&self, p: &Protocol) -> FilterRef {
        self.chain(p).iter().rev().find_map(|q| q.export.clone()).unwrap_or_default()
    }

    /// Template chain of `p`, root template first, `p` last (cycles cut).
    pub(crate) fn chain<'a>(&'a self, p: &'a Protocol) -> Vec<&'a Protocol> {
        let mut v = vec![p];
        let mut cur = p;
        while let Some(t) = cur.from.as_deref().and_then(|n| self.template(n)) {
            if v.iter().any(|x| std::ptr::eq(*x, t)) || v.len() > 32 {
                break;
            }
            v.push(t);
            cur = t;
        }
        v.reverse();
        v
    }
}
