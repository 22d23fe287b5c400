//! A small evaluator for BIRD filter code: run a filter or function on a probe route and get
//! the verdict (accept / reject / no decision) plus the attributes it changed.
//!
//! Semantics follow BIRD 1.6.8 (checked against the real daemon): `accept` / `reject` end the
//! whole filter from any function depth; `net ~ P` is "inside P", `net = P` exact;
//! `ifname ~ "pat"` is a shell-style pattern (`*`, `?`); `ifname` and `source` are always
//! defined (`ifname` is `""` for a route without interface); `defined(x)` is false for unset
//! extended attributes (`bgp_next_hop`, `bgp_path`, `krt_metric`, ...), while the community
//! lists default to empty, defined lists; `=` / `!=` between different or unset types are
//! false / true; `~`, ordering and arithmetic on them are run-time errors; `&&` and `||`
//! share one precedence level, left-associative, and short-circuit. Run-time errors (also
//! unknown functions) give [`Verdict::Error`], as BIRD rejects the route with an error.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use super::ast::*;

/// A probe route.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub net: Prefix,
    pub bgp_next_hop: Option<IpAddr>,
    /// Interface of the route; `None` reads as `""` (BIRD: a route without interface).
    pub ifname: Option<String>,
    /// Route source constant, e.g. `RTS_STATIC`, `RTS_BGP` (always defined in BIRD).
    pub source: String,
    /// Any other preset attribute.
    pub attrs: BTreeMap<String, Value>,
}

impl Route {
    /// A route for `net` with source `RTS_STATIC`, no next hop, no interface.
    pub fn new(net: Prefix) -> Route {
        Route { net, bgp_next_hop: None, ifname: None, source: "RTS_STATIC".into(), attrs: BTreeMap::new() }
    }
}

/// Run-time values.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Unset attribute / uninitialised variable.
    Undef,
    Bool(bool),
    Int(i64),
    Str(String),
    Ip(IpAddr),
    Prefix(Prefix),
    /// Pair / triple (standard / large community).
    Tuple(Vec<i64>),
    /// Enumeration constant (`RTS_BGP`).
    Enum(String),
    Set(Vec<SetItem>),
    PathMask(Vec<PathItem>),
    /// AS path.
    Path(Vec<i64>),
    /// Community list (standard or large).
    List(Vec<Vec<i64>>),
    /// `-empty-` and friends before use.
    Empty,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn tuple(t: &[i64]) -> String {
            format!("({})", t.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "))
        }
        match self {
            Value::Undef => write!(f, "(undefined)"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "\"{s}\""),
            Value::Ip(a) => write!(f, "{a}"),
            Value::Prefix(p) => write!(f, "{p}"),
            Value::Tuple(t) => write!(f, "{}", tuple(t)),
            Value::Enum(e) => write!(f, "{e}"),
            Value::Set(s) => write!(f, "{}", Expr::Set(s.clone())),
            Value::PathMask(m) => write!(f, "{}", Expr::PathMask(m.clone())),
            Value::Path(p) => {
                write!(f, "({})", p.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" "))
            }
            Value::List(l) => {
                write!(f, "[{}]", l.iter().map(|t| tuple(t)).collect::<Vec<_>>().join(", "))
            }
            Value::Empty => write!(f, "-empty-"),
        }
    }
}

/// Outcome of a filter run.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accept,
    Reject,
    /// The code ran to its end without `accept` / `reject` (a BIRD filter then rejects; a
    /// function returns to its caller).
    NoDecision,
    Error(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => write!(f, "accept"),
            Verdict::Reject => write!(f, "reject"),
            Verdict::NoDecision => write!(f, "no decision"),
            Verdict::Error(e) => write!(f, "error ({e})"),
        }
    }
}

/// Result of running filter code on a route.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalResult {
    pub verdict: Verdict,
    /// Function / filter whose `accept` / `reject` decided.
    pub by: Option<String>,
    /// The innermost `if` condition around the deciding statement (for reports).
    pub rule: Option<String>,
    /// Attributes the code assigned, with their final values.
    pub changed: BTreeMap<String, Value>,
}

/// The filter code of a configuration, detached so it can be kept and re-run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Code {
    pub functions: BTreeMap<String, Function>,
    pub filters: BTreeMap<String, Filter>,
    pub defines: BTreeMap<String, Expr>,
}

const MAX_DEPTH: usize = 64;
const MAX_STEPS: usize = 200_000;

enum Flow {
    Next,
    Accept,
    Reject,
    Return(Value),
}

type R<T> = Result<T, String>;

impl Code {
    pub fn from_config(cfg: &BirdConfig) -> Code {
        Code { functions: cfg.functions.clone(), filters: cfg.filters.clone(), defines: cfg.defines.clone() }
    }

    /// Run function `name` with `args` on `route`.
    pub fn run_function(&self, name: &str, args: &[Value], route: &Route) -> EvalResult {
        let mut ev = Ev::new(self, route);
        let r = ev.call_user(name, args.to_vec());
        ev.finish(r.map(|(flow, _)| flow))
    }

    /// Run the named filter on `route`.
    pub fn run_filter(&self, name: &str, route: &Route) -> EvalResult {
        let mut ev = Ev::new(self, route);
        let Some(f) = self.filters.get(name) else {
            return ev.finish(Err(format!("undefined filter {name}")));
        };
        let mut frame = BTreeMap::new();
        // rrlab's twin renders `string krt_tunnel;` as a filter-local stand-in for the route attribute that only
        // Calico's BIRD fork has; reading the config, it means the attribute.
        for l in f.locals.iter().filter(|l| l.name != "krt_tunnel") {
            frame.insert(l.name.clone(), Value::Undef);
        }
        ev.frames.push(frame);
        ev.fn_stack.push(name.to_string());
        let r = ev.block(&f.body);
        ev.finish(r)
    }

    /// Run an inline statement list (e.g. a protocol's `filter { ... }`), labelled `label`.
    pub fn run_stmts(&self, label: &str, stmts: &[Stmt], route: &Route) -> EvalResult {
        let mut ev = Ev::new(self, route);
        ev.frames.push(BTreeMap::new());
        ev.fn_stack.push(label.to_string());
        let r = ev.block(stmts);
        ev.finish(r)
    }
}

struct Ev<'c> {
    code: &'c Code,
    attrs: BTreeMap<String, Value>,
    changed: BTreeSet<String>,
    frames: Vec<BTreeMap<String, Value>>,
    fn_stack: Vec<String>,
    conds: Vec<String>,
    by: Option<String>,
    rule: Option<String>,
    steps: usize,
}

fn is_enum_constant(s: &str) -> bool {
    s.contains('_') && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Shell-style pattern match as BIRD's `patmatch` (`*` any run, `?` one character).
pub fn pattern_match(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn path_match(path: &[i64], mask: &[(Option<i64>, bool)]) -> bool {
    // mask item: (Some(asn), false) exact asn; (None, false) any one; (None, true) any sequence
    match mask.split_first() {
        None => path.is_empty(),
        Some(((None, true), rest)) => (0..=path.len()).any(|i| path_match(&path[i..], rest)),
        Some(((None, false), rest)) => !path.is_empty() && path_match(&path[1..], rest),
        Some(((Some(a), _), rest)) => path.first() == Some(a) && path_match(&path[1..], rest),
    }
}

impl<'c> Ev<'c> {
    fn new(code: &'c Code, route: &Route) -> Self {
        let mut attrs = route.attrs.clone();
        attrs.insert("net".into(), Value::Prefix(route.net));
        attrs.insert("source".into(), Value::Enum(route.source.clone()));
        if let Some(nh) = route.bgp_next_hop {
            attrs.insert("bgp_next_hop".into(), Value::Ip(nh));
        }
        attrs.insert("ifname".into(), Value::Str(route.ifname.clone().unwrap_or_default()));
        Ev {
            code,
            attrs,
            changed: BTreeSet::new(),
            frames: Vec::new(),
            fn_stack: Vec::new(),
            conds: Vec::new(),
            by: None,
            rule: None,
            steps: 0,
        }
    }

    fn finish(self, r: R<Flow>) -> EvalResult {
        let verdict = match r {
            Ok(Flow::Accept) => Verdict::Accept,
            Ok(Flow::Reject) => Verdict::Reject,
            Ok(Flow::Next) | Ok(Flow::Return(_)) => Verdict::NoDecision,
            Err(e) => Verdict::Error(e),
        };
        let decided = matches!(verdict, Verdict::Accept | Verdict::Reject);
        let changed =
            self.changed.iter().map(|k| (k.clone(), self.attrs.get(k).cloned().unwrap_or(Value::Undef))).collect();
        EvalResult {
            verdict,
            by: if decided { self.by } else { None },
            rule: if decided { self.rule } else { None },
            changed,
        }
    }

    fn tick(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err("evaluation step limit exceeded".into());
        }
        Ok(())
    }

    fn decide(&mut self, accept: bool) -> Flow {
        self.by = self.fn_stack.last().cloned();
        self.rule = self.conds.last().cloned();
        if accept {
            Flow::Accept
        } else {
            Flow::Reject
        }
    }

    fn block(&mut self, stmts: &[Stmt]) -> R<Flow> {
        for s in stmts {
            match self.stmt(s)? {
                Flow::Next => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Next)
    }

    fn stmt(&mut self, s: &Stmt) -> R<Flow> {
        self.tick()?;
        match s {
            Stmt::If { cond, then, otherwise } => {
                let c = match self.expr(cond)? {
                    Value::Bool(b) => b,
                    v => return Err(format!("if condition '{cond}' is not a bool: {v}")),
                };
                if c {
                    self.conds.push(cond.to_string());
                    let r = self.block(then);
                    self.conds.pop();
                    r
                } else if let Some(o) = otherwise {
                    self.conds.push(format!("!({cond})"));
                    let r = self.block(o);
                    self.conds.pop();
                    r
                } else {
                    Ok(Flow::Next)
                }
            }
            Stmt::Accept(_) => Ok(self.decide(true)),
            Stmt::Reject(_) => Ok(self.decide(false)),
            Stmt::Return(e) => {
                let v = match e {
                    Some(e) => self.expr(e)?,
                    None => Value::Undef,
                };
                Ok(Flow::Return(v))
            }
            Stmt::Assign { target, value } => {
                let v = self.expr(value)?;
                self.assign(target, v);
                Ok(Flow::Next)
            }
            Stmt::Expr(e) => {
                match e {
                    Expr::Method(obj, m, Some(_)) if matches!(m.as_str(), "add" | "delete" | "filter" | "prepend") => {
                        // `attr.add(x);` is `attr = attr.add(x);`
                        let v = self.expr(e)?;
                        if let Expr::Sym(target) = obj.as_ref() {
                            self.assign(target, v);
                        }
                    }
                    Expr::Call(name, args) if name == "unset" => {
                        if let [Expr::Sym(a)] = args.as_slice() {
                            self.assign(a, Value::Undef);
                        } else {
                            return Err("unset() takes one attribute".into());
                        }
                    }
                    Expr::Call(name, args) if !self.is_builtin(name) => {
                        let mut vals = Vec::new();
                        for a in args {
                            vals.push(self.expr(a)?);
                        }
                        let (flow, _) = self.call_user(name, vals)?;
                        match flow {
                            Flow::Accept | Flow::Reject => return Ok(flow),
                            _ => {}
                        }
                    }
                    _ => {
                        self.expr(e)?;
                    }
                }
                Ok(Flow::Next)
            }
            Stmt::Print { args, .. } => {
                for a in args {
                    self.expr(a)?;
                }
                Ok(Flow::Next)
            }
            Stmt::Case { expr, arms, default } => {
                let v = self.expr(expr)?;
                for arm in arms {
                    if self.in_set(&v, &arm.labels)? {
                        return self.block(&arm.body);
                    }
                }
                match default {
                    Some(d) => self.block(d),
                    None => Ok(Flow::Next),
                }
            }
            Stmt::Block(b) => self.block(b),
            Stmt::Other(_) => Ok(Flow::Next),
        }
    }

    fn assign(&mut self, target: &str, v: Value) {
        if let Some(slot) = self.frames.last_mut().and_then(|f| f.get_mut(target)) {
            *slot = v;
            return;
        }
        self.attrs.insert(target.to_string(), v);
        self.changed.insert(target.to_string());
    }

    fn is_builtin(&self, name: &str) -> bool {
        matches!(name, "defined" | "unset") && !self.code.functions.contains_key(name)
    }

    /// Call a user function; returns the flow (Accept / Reject end the filter) and the return value.
    fn call_user(&mut self, name: &str, args: Vec<Value>) -> R<(Flow, Value)> {
        let Some(f) = self.code.functions.get(name) else {
            return Err(format!("undefined function {name}"));
        };
        if f.params.len() != args.len() {
            return Err(format!("function {name} takes {} argument(s), given {}", f.params.len(), args.len()));
        }
        if self.fn_stack.len() >= MAX_DEPTH {
            return Err("function call depth limit exceeded".into());
        }
        let mut frame = BTreeMap::new();
        for (p, a) in f.params.iter().zip(args) {
            frame.insert(p.name.clone(), a);
        }
        for l in &f.locals {
            frame.insert(l.name.clone(), Value::Undef);
        }
        self.frames.push(frame);
        self.fn_stack.push(name.to_string());
        let saved_conds = std::mem::take(&mut self.conds);
        let r = self.block(&f.body);
        self.conds = saved_conds;
        self.fn_stack.pop();
        self.frames.pop();
        match r? {
            Flow::Return(v) => Ok((Flow::Next, v)),
            Flow::Next => Ok((Flow::Next, Value::Undef)),
            other => Ok((other, Value::Undef)),
        }
    }

    fn sym(&mut self, s: &str) -> R<Value> {
        if let Some(f) = self.frames.last() {
            if let Some(v) = f.get(s) {
                return Ok(v.clone());
            }
        }
        if let Some(e) = self.code.defines.get(s) {
            if self.fn_stack.len() >= MAX_DEPTH {
                return Err("define nesting too deep".into());
            }
            self.fn_stack.push(format!("define {s}"));
            let r = self.expr(&e.clone());
            self.fn_stack.pop();
            return r;
        }
        if let Some(v) = self.attrs.get(s) {
            return Ok(v.clone());
        }
        match s {
            "bgp_community" | "bgp_large_community" | "bgp_ext_community" => return Ok(Value::List(Vec::new())),
            "-empty-" | "+empty+" | "--empty--" => return Ok(Value::Empty),
            _ => {}
        }
        if is_enum_constant(s) {
            return Ok(Value::Enum(s.to_string()));
        }
        Ok(Value::Undef)
    }

    fn int(&mut self, e: &Expr) -> R<i64> {
        match self.expr(e)? {
            Value::Int(i) => Ok(i),
            v => Err(format!("'{e}' is not a number: {v}")),
        }
    }

    fn expr(&mut self, e: &Expr) -> R<Value> {
        self.tick()?;
        Ok(match e {
            Expr::Num(n) => Value::Int(*n as i64),
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Ip(a) => Value::Ip(*a),
            Expr::Prefix(p) => Value::Prefix(*p),
            Expr::Tuple(items) => {
                let mut v = Vec::new();
                for i in items {
                    v.push(self.int(i)?);
                }
                Value::Tuple(v)
            }
            Expr::Set(items) => Value::Set(items.clone()),
            Expr::PathMask(items) => Value::PathMask(items.clone()),
            Expr::Sym(s) => self.sym(s)?,
            Expr::Call(name, args) if name == "defined" && self.is_builtin(name) => {
                let [a] = args.as_slice() else {
                    return Err("defined() takes one argument".into());
                };
                Value::Bool(!matches!(self.expr(a)?, Value::Undef))
            }
            Expr::Call(name, args) => {
                let mut vals = Vec::new();
                for a in args {
                    vals.push(self.expr(a)?);
                }
                match self.call_user(name, vals)? {
                    (Flow::Accept, _) | (Flow::Reject, _) => {
                        return Err(format!("function {name} decided inside an expression"))
                    }
                    (_, v) => v,
                }
            }
            Expr::Method(obj, m, args) => {
                let o = self.expr(obj)?;
                let mut vals = Vec::new();
                for a in args.iter().flatten() {
                    vals.push(self.expr(a)?);
                }
                self.method(o, m, vals)?
            }
            Expr::Not(a) => match self.expr(a)? {
                Value::Bool(b) => Value::Bool(!b),
                v => return Err(format!("'!' on non-bool {v}")),
            },
            Expr::Neg(a) => Value::Int(self.int(a)?.wrapping_neg()),
            Expr::Bin(op, a, b) => self.binary(*op, a, b)?,
        })
    }

    fn method(&mut self, o: Value, m: &str, args: Vec<Value>) -> R<Value> {
        let o = match o {
            Value::Empty => match m {
                "prepend" => Value::Path(Vec::new()),
                _ => Value::List(Vec::new()),
            },
            o => o,
        };
        Ok(match (o, m, args.as_slice()) {
            (Value::Prefix(p), "len", []) => Value::Int(p.len as i64),
            (Value::Prefix(p), "ip", []) => Value::Ip(p.addr),
            (Value::Path(p), "first", []) => p.first().map(|x| Value::Int(*x)).unwrap_or(Value::Undef),
            (Value::Path(p), "last", []) => p.last().map(|x| Value::Int(*x)).unwrap_or(Value::Undef),
            (Value::Path(p), "len", []) => Value::Int(p.len() as i64),
            (Value::Path(mut p), "prepend", [Value::Int(a)]) => {
                p.insert(0, *a);
                Value::Path(p)
            }
            (Value::List(l), "len", []) => Value::Int(l.len() as i64),
            (Value::List(mut l), "add", [Value::Tuple(t)]) => {
                if !l.contains(t) {
                    l.push(t.clone());
                }
                Value::List(l)
            }
            (Value::List(l), "delete", [Value::Tuple(t)]) => Value::List(l.into_iter().filter(|x| x != t).collect()),
            (Value::List(l), "delete" | "filter", [Value::Set(items)]) => {
                let keep_matching = m == "filter";
                let mut out = Vec::new();
                for x in l {
                    let hit = self.in_set(&Value::Tuple(x.clone()), items)?;
                    if hit == keep_matching {
                        out.push(x);
                    }
                }
                Value::List(out)
            }
            (o, m, a) => {
                return Err(format!(
                    "unsupported method {m}({}) on {o}",
                    a.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
                ))
            }
        })
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr) -> R<Value> {
        match op {
            BinOp::And | BinOp::Or => {
                let l = match self.expr(a)? {
                    Value::Bool(x) => x,
                    v => return Err(format!("'{}' on non-bool {v}", op.symbol())),
                };
                if (op == BinOp::And && !l) || (op == BinOp::Or && l) {
                    return Ok(Value::Bool(l));
                }
                return match self.expr(b)? {
                    Value::Bool(x) => Ok(Value::Bool(x)),
                    v => Err(format!("'{}' on non-bool {v}", op.symbol())),
                };
            }
            _ => {}
        }
        let l = self.expr(a)?;
        let r = self.expr(b)?;
        // BIRD 1.6: `=` / `!=` on different (or unset) types is simply false / true.
        match op {
            BinOp::Eq => return Ok(Value::Bool(self.equal(&l, &r).unwrap_or(false))),
            BinOp::Ne => return Ok(Value::Bool(!self.equal(&l, &r).unwrap_or(false))),
            _ => {}
        }
        if matches!(l, Value::Undef) || matches!(r, Value::Undef) {
            let which = if matches!(l, Value::Undef) { a } else { b };
            return Err(format!("'{which}' is undefined (in '{}')", op.symbol()));
        }
        Ok(match op {
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let ord = match (&l, &r) {
                    (Value::Int(x), Value::Int(y)) => x.cmp(y),
                    (Value::Ip(x), Value::Ip(y)) if x.is_ipv4() == y.is_ipv4() => x.cmp(y),
                    (Value::Str(x), Value::Str(y)) => x.cmp(y),
                    (Value::Tuple(x), Value::Tuple(y)) if x.len() == y.len() => x.cmp(y),
                    _ => return Err(format!("can't order {l} and {r}")),
                };
                use std::cmp::Ordering::*;
                Value::Bool(match op {
                    BinOp::Lt => ord == Less,
                    BinOp::Le => ord != Greater,
                    BinOp::Gt => ord == Greater,
                    _ => ord != Less,
                })
            }
            BinOp::Match => Value::Bool(self.matches(&l, &r)?),
            BinOp::NotMatch => Value::Bool(!self.matches(&l, &r)?),
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                let (Value::Int(x), Value::Int(y)) = (&l, &r) else {
                    return Err(format!("arithmetic on non-numbers {l}, {r}"));
                };
                let (x, y) = (*x, *y);
                Value::Int(match op {
                    BinOp::Add => x.wrapping_add(y),
                    BinOp::Sub => x.wrapping_sub(y),
                    BinOp::Mul => x.wrapping_mul(y),
                    _ if y == 0 => return Err("division by zero".into()),
                    BinOp::Div => x.wrapping_div(y),
                    _ => x.wrapping_rem(y),
                })
            }
            // Handled above.
            BinOp::And | BinOp::Or | BinOp::Eq | BinOp::Ne => Value::Bool(false),
        })
    }

    fn equal(&mut self, l: &Value, r: &Value) -> R<bool> {
        Ok(match (l, r) {
            (Value::Empty, Value::List(x)) | (Value::List(x), Value::Empty) => x.is_empty(),
            (Value::Empty, Value::Path(x)) | (Value::Path(x), Value::Empty) => x.is_empty(),
            (Value::Ip(x), Value::Ip(y)) => x == y,
            (Value::Prefix(x), Value::Prefix(y)) => x == y,
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Str(x), Value::Str(y)) => x == y,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Enum(x), Value::Enum(y)) => x == y,
            (Value::Tuple(x), Value::Tuple(y)) => x == y,
            (Value::Path(x), Value::Path(y)) => x == y,
            (Value::List(x), Value::List(y)) => x == y,
            _ => return Err(format!("can't compare {l} and {r}")),
        })
    }

    fn matches(&mut self, l: &Value, r: &Value) -> R<bool> {
        Ok(match (l, r) {
            (Value::Prefix(x), Value::Prefix(y)) => y.contains(x),
            (Value::Ip(x), Value::Prefix(y)) => y.contains_ip(*x),
            (Value::Str(x), Value::Str(pat)) => pattern_match(pat, x),
            (v, Value::Set(items)) => self.in_set(v, items)?,
            (Value::Tuple(t), Value::List(l)) => l.contains(t),
            (Value::Int(a), Value::Path(p)) => p.contains(a),
            (Value::Path(p), Value::PathMask(m)) => {
                let mut mask = Vec::new();
                for it in m {
                    mask.push(match it {
                        PathItem::AnySeq => (None, true),
                        PathItem::AnyOne => (None, false),
                        PathItem::Asn(e) => (Some(self.int(e)?), false),
                    });
                }
                path_match(p, &mask)
            }
            _ => return Err(format!("can't match {l} against {r}")),
        })
    }

    fn in_set(&mut self, v: &Value, items: &[SetItem]) -> R<bool> {
        for it in items {
            let hit = match it {
                SetItem::Prefix { prefix, lo, hi } => {
                    let p = match v {
                        Value::Prefix(p) => *p,
                        Value::Ip(a) => match Prefix::new(*a, if a.is_ipv4() { 32 } else { 128 }) {
                            Some(p) => p,
                            None => continue,
                        },
                        _ => return Err(format!("can't match {v} against a prefix set")),
                    };
                    p.is_v4() == prefix.is_v4()
                        && p.len >= *lo
                        && p.len <= *hi
                        && Prefix::truncated(p.addr, prefix.len).map(|t| t.addr) == Some(prefix.addr)
                }
                SetItem::Range(a, b) => {
                    let (a, b) = (self.expr(a)?, self.expr(b)?);
                    match (v, a, b) {
                        (Value::Int(x), Value::Int(a), Value::Int(b)) => a <= *x && *x <= b,
                        (Value::Ip(x), Value::Ip(a), Value::Ip(b)) => a <= *x && *x <= b,
                        _ => false,
                    }
                }
                SetItem::Value(e) => {
                    let w = self.expr(e)?;
                    self.equal(v, &w).unwrap_or(false)
                }
                SetItem::Tuple(parts) => {
                    let Value::Tuple(t) = v else { continue };
                    if t.len() != parts.len() {
                        continue;
                    }
                    let mut ok = true;
                    for (x, part) in t.iter().zip(parts) {
                        let m = match part {
                            SetPart::Any => true,
                            SetPart::Range(a, b) => {
                                let (a, b) = (self.int(a)?, self.int(b)?);
                                a <= *x && *x <= b
                            }
                            SetPart::Value(e) => self.int(e)? == *x,
                        };
                        if !m {
                            ok = false;
                            break;
                        }
                    }
                    ok
                }
            };
            if hit {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

// ---------------------------------------------------------------------------------------------
// Syntactic helpers used to derive probes
// ---------------------------------------------------------------------------------------------

/// Walk every expression of a statement list.
pub(crate) fn walk_stmts(stmts: &[Stmt], f: &mut dyn FnMut(&Expr)) {
    for s in stmts {
        match s {
            Stmt::If { cond, then, otherwise } => {
                walk_expr(cond, f);
                walk_stmts(then, f);
                if let Some(o) = otherwise {
                    walk_stmts(o, f);
                }
            }
            Stmt::Accept(e) | Stmt::Reject(e) | Stmt::Return(e) => {
                if let Some(e) = e {
                    walk_expr(e, f);
                }
            }
            Stmt::Assign { value, .. } => walk_expr(value, f),
            Stmt::Expr(e) => walk_expr(e, f),
            Stmt::Print { args, .. } => args.iter().for_each(|a| walk_expr(a, f)),
            Stmt::Case { expr, arms, default } => {
                walk_expr(expr, f);
                for a in arms {
                    walk_stmts(&a.body, f);
                }
                if let Some(d) = default {
                    walk_stmts(d, f);
                }
            }
            Stmt::Block(b) => walk_stmts(b, f),
            Stmt::Other(_) => {}
        }
    }
}

pub(crate) fn walk_expr(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match e {
        Expr::Tuple(v) | Expr::Call(_, v) => v.iter().for_each(|x| walk_expr(x, f)),
        Expr::Method(o, _, args) => {
            walk_expr(o, f);
            args.iter().flatten().for_each(|x| walk_expr(x, f));
        }
        Expr::Not(a) | Expr::Neg(a) => walk_expr(a, f),
        Expr::Bin(_, a, b) => {
            walk_expr(a, f);
            walk_expr(b, f);
        }
        _ => {}
    }
}

/// Names of user functions called (transitively) from `stmts`, including `root` itself.
pub(crate) fn reachable_functions(code: &Code, stmts: &[Stmt], root: Option<&str>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<Vec<Stmt>> = vec![stmts.to_vec()];
    if let Some(r) = root {
        seen.insert(r.to_string());
    }
    while let Some(body) = todo.pop() {
        let mut calls = Vec::new();
        walk_stmts(&body, &mut |e| {
            if let Expr::Call(n, _) = e {
                calls.push(n.clone());
            }
        });
        for c in calls {
            if let Some(f) = code.functions.get(&c) {
                if seen.insert(c) {
                    todo.push(f.body.clone());
                }
            }
        }
    }
    seen
}

/// Prefix literals compared against `attr` (`attr ~ P`, `attr = P`, `attr ~ [ P... ]`, ...).
pub(crate) fn prefixes_compared_with(stmts: &[Stmt], attr: &str, out: &mut BTreeSet<Prefix>) {
    walk_stmts(stmts, &mut |e| {
        if let Expr::Bin(op, a, b) = e {
            if !matches!(op, BinOp::Eq | BinOp::Ne | BinOp::Match | BinOp::NotMatch) {
                return;
            }
            let other = match (a.as_ref(), b.as_ref()) {
                (Expr::Sym(s), o) if s == attr => o,
                (o, Expr::Sym(s)) if s == attr => o,
                _ => return,
            };
            match other {
                Expr::Prefix(p) => {
                    out.insert(*p);
                }
                Expr::Set(items) => {
                    for it in items {
                        if let SetItem::Prefix { prefix, .. } = it {
                            out.insert(*prefix);
                        }
                    }
                }
                _ => {}
            }
        }
    });
}

/// String patterns compared against `attr` (`ifname ~ "eth*"`).
pub(crate) fn patterns_compared_with(stmts: &[Stmt], attr: &str, out: &mut BTreeSet<String>) {
    walk_stmts(stmts, &mut |e| {
        if let Expr::Bin(_, a, b) = e {
            match (a.as_ref(), b.as_ref()) {
                (Expr::Sym(s), Expr::Str(p)) | (Expr::Str(p), Expr::Sym(s)) if s == attr => {
                    out.insert(p.clone());
                }
                _ => {}
            }
        }
    });
}

/// Enumeration constants compared against `attr` (`source ~ [ RTS_BGP ]`, `source = RTS_BGP`).
pub(crate) fn enums_compared_with(stmts: &[Stmt], attr: &str, out: &mut BTreeSet<String>) {
    walk_stmts(stmts, &mut |e| {
        if let Expr::Bin(_, a, b) = e {
            let other = match (a.as_ref(), b.as_ref()) {
                (Expr::Sym(s), o) if s == attr => o,
                (o, Expr::Sym(s)) if s == attr => o,
                _ => return,
            };
            match other {
                Expr::Sym(c) if is_enum_constant(c) => {
                    out.insert(c.clone());
                }
                Expr::Set(items) => {
                    for it in items {
                        if let SetItem::Value(Expr::Sym(c)) = it {
                            if is_enum_constant(c) {
                                out.insert(c.clone());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    });
}
