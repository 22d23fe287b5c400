//! Recursive-descent parser for the BIRD 1.6 configuration subset calico-node renders (and the
//! surrounding language, generally enough not to break on other valid shapes).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use super::ast::*;
use super::lexer::{location, Tok, Token};
use super::BirdConfError;

type PResult<T> = Result<T, BirdConfError>;

/// Multi-word option names (longest match wins) used to split an option into key and value.
const OPTION_KEYS: &[&str] = &[
    "local as",
    "neighbor",
    "multihop",
    "direct",
    "source address",
    "next hop self",
    "next hop keep",
    "next hop address",
    "missing lladdr",
    "gateway",
    "igp table",
    "check link",
    "bfd",
    "ttl security",
    "password",
    "setkey",
    "passive",
    "interpret communities",
    "secondary",
    "add paths",
    "allow local as",
    "allow bgp_local_pref",
    "enable route refresh",
    "graceful restart time",
    "graceful restart",
    "long lived graceful restart",
    "long lived stale time",
    "connect delay time",
    "connect retry time",
    "keepalive time",
    "hold time",
    "startup hold time",
    "error wait time",
    "error forget time",
    "disable after error",
    "path metric",
    "med metric",
    "deterministic med",
    "igp metric",
    "prefer older",
    "default bgp_med",
    "default bgp_local_pref",
    "rr client",
    "rr cluster id",
    "rs client",
    "enable as4",
    "enable extended messages",
    "capabilities",
    "advertise ipv4",
    "advertise hostname",
    "route limit",
    "import limit",
    "receive limit",
    "export limit",
    "import keep filtered",
    "description",
    "debug",
    "mrtdump",
    "preference",
    "disabled",
    "table",
    "router id",
    "vrf",
    "learn",
    "persist",
    "scan time",
    "device routes",
    "kernel table",
    "merge paths",
    "metric",
    "interface",
    "primary",
    "local",
];

/// Words that are option values rather than part of an option's name.
const VALUE_WORDS: &[&str] = &["on", "off", "yes", "no"];

/// Statement keywords that cannot start an expression statement.
const STMT_KEYWORDS: &[&str] = &["if", "then", "else", "accept", "reject", "return", "case"];

pub(crate) fn tok_text(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => s.clone(),
        Tok::QIdent(s) => format!("'{s}'"),
        Tok::Str(s) => format!("\"{s}\""),
        Tok::Num(n) => n.to_string(),
        Tok::Ip(a) => a.to_string(),
        Tok::P(p) => p.to_string(),
        Tok::Eof => String::new(),
    }
}

/// Canonical text of a token sequence (independent of the original whitespace).
pub(crate) fn toks_text(toks: &[Tok]) -> String {
    let mut out = String::new();
    for (i, t) in toks.iter().enumerate() {
        let prev = if i > 0 { Some(&toks[i - 1]) } else { None };
        let prev2 = if i > 1 { Some(&toks[i - 2]) } else { None };
        let unary_minus =
            matches!(prev, Some(Tok::P("-"))) && matches!(prev2, None | Some(Tok::P(",")) | Some(Tok::P("(")));
        let glued = matches!(t, Tok::P(",") | Tok::P(";") | Tok::P(")") | Tok::P("]"))
            || matches!(prev, Some(Tok::P("(")) | Some(Tok::P("[")))
            || unary_minus
            || (matches!(t, Tok::P("/")) && matches!(prev, Some(Tok::Ip(_))))
            || (matches!(t, Tok::Num(_)) && matches!(prev, Some(Tok::P("/"))) && matches!(prev2, Some(Tok::Ip(_))));
        if i > 0 && !glued {
            out.push(' ');
        }
        out.push_str(&tok_text(t));
    }
    out
}

/// Maximum nesting of expressions / statements (keeps recursion bounded on hostile input).
const MAX_NESTING: usize = 128;

pub(crate) struct Parser<'a> {
    toks: &'a [Token],
    pos: usize,
    files: &'a [String],
    depth: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(toks: &'a [Token], files: &'a [String]) -> Self {
        Parser { toks, pos: 0, files, depth: 0 }
    }

    // ---- token helpers ----

    /// Run `f` one nesting level deeper, failing beyond [`MAX_NESTING`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.depth >= MAX_NESTING {
            return self.err_at(self.peek(), "nesting too deep");
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn peek(&self) -> &'a Token {
        let i = self.pos.min(self.toks.len() - 1);
        &self.toks[i]
    }

    fn peek_at(&self, n: usize) -> &'a Token {
        let i = (self.pos + n).min(self.toks.len() - 1);
        &self.toks[i]
    }

    fn advance(&mut self) -> &'a Token {
        let t = self.peek();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn loc(&self, t: &Token) -> Location {
        location(self.files, t)
    }

    fn err_at<T>(&self, t: &Token, msg: impl Into<String>) -> PResult<T> {
        Err(BirdConfError::Parse { location: self.loc(t), message: msg.into() })
    }

    fn unexpected<T>(&self, what: &str) -> PResult<T> {
        let t = self.peek();
        let found = match &t.tok {
            Tok::Eof => "end of file".to_string(),
            other => format!("'{}'", tok_text(other)),
        };
        self.err_at(t, format!("expected {what}, found {found}"))
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s == kw)
    }

    fn is_kw_at(&self, n: usize, kw: &str) -> bool {
        matches!(&self.peek_at(n).tok, Tok::Ident(s) if s == kw)
    }

    fn is_p(&self, p: &str) -> bool {
        matches!(&self.peek().tok, Tok::P(q) if *q == p)
    }

    fn is_p_at(&self, n: usize, p: &str) -> bool {
        matches!(&self.peek_at(n).tok, Tok::P(q) if *q == p)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn eat_p(&mut self, p: &str) -> bool {
        if self.is_p(p) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect_p(&mut self, p: &str) -> PResult<()> {
        if self.eat_p(p) {
            Ok(())
        } else {
            self.unexpected(&format!("'{p}'"))
        }
    }

    fn expect_kw(&mut self, kw: &str) -> PResult<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            self.unexpected(&format!("'{kw}'"))
        }
    }

    fn ident(&mut self) -> PResult<String> {
        match &self.peek().tok {
            Tok::Ident(s) | Tok::QIdent(s) => {
                let s = s.clone();
                self.advance();
                Ok(s)
            }
            _ => self.unexpected("a name"),
        }
    }

    fn num(&mut self) -> PResult<u64> {
        match &self.peek().tok {
            Tok::Num(n) => {
                let n = *n;
                self.advance();
                Ok(n)
            }
            _ => self.unexpected("a number"),
        }
    }

    fn at_eof(&self) -> bool {
        self.peek().tok == Tok::Eof
    }

    /// Tokens up to (not including) the `;` ending a statement, balancing braces / brackets /
    /// parentheses. A statement whose last token closes a `{ }` block needs no `;`.
    fn raw_statement(&mut self) -> PResult<Vec<Tok>> {
        let start = self.peek();
        let mut out = Vec::new();
        let mut depth = 0usize;
        loop {
            let t = self.peek();
            match &t.tok {
                Tok::Eof => return self.err_at(start, "unterminated statement (missing ';')"),
                Tok::P(";") if depth == 0 => {
                    self.advance();
                    return Ok(out);
                }
                Tok::P("{") | Tok::P("(") | Tok::P("[") | Tok::P("[=") => depth += 1,
                Tok::P("}") | Tok::P(")") | Tok::P("]") | Tok::P("=]") => {
                    if depth == 0 {
                        if out.is_empty() {
                            return self.unexpected("an option");
                        }
                        return self.err_at(t, "missing ';' before closing bracket");
                    }
                    depth -= 1;
                    if depth == 0 && matches!(t.tok, Tok::P("}")) {
                        out.push(t.tok.clone());
                        self.advance();
                        // `{ ... }` may end the statement; an optional ';' follows.
                        if self.eat_p(";") || self.is_p("}") || !matches!(self.peek().tok, Tok::P(_)) {
                            return Ok(out);
                        }
                        continue;
                    }
                }
                _ => {}
            }
            out.push(t.tok.clone());
            self.advance();
        }
    }

    // ---- top level ----

    pub(crate) fn config(&mut self) -> PResult<BirdConfig> {
        let mut cfg = BirdConfig { files: self.files.to_vec(), ..Default::default() };
        let mut auto_names: BTreeMap<String, u32> = BTreeMap::new();
        while !self.at_eof() {
            let t = self.peek();
            let kw = match &t.tok {
                Tok::Ident(s) => s.as_str(),
                Tok::P(";") => {
                    self.advance();
                    continue;
                }
                _ => return self.unexpected("a top-level statement"),
            };
            match kw {
                "router" if self.is_kw_at(1, "id") => {
                    self.advance();
                    self.advance();
                    match self.peek().tok.clone() {
                        Tok::Ip(IpAddr::V4(a)) if self.is_p_at(1, ";") => {
                            self.advance();
                            self.advance();
                            cfg.router_id = Some(a);
                        }
                        Tok::Num(n) if self.is_p_at(1, ";") => {
                            let Ok(n) = u32::try_from(n) else {
                                return self.err_at(self.peek(), "router id out of range");
                            };
                            self.advance();
                            self.advance();
                            cfg.router_id = Some(Ipv4Addr::from(n));
                        }
                        _ => {
                            let toks = self.raw_statement()?;
                            cfg.other.push(RawStatement {
                                text: format!("router id {}", toks_text(&toks)),
                                location: self.loc(t),
                            });
                        }
                    }
                }
                "listen" if self.is_kw_at(1, "bgp") => {
                    self.advance();
                    self.advance();
                    cfg.listen = Some(self.listen()?);
                }
                "protocol" => {
                    self.advance();
                    let mut p = self.protocol(t)?;
                    if p.name.is_none() {
                        let n = auto_names.entry(p.kind.clone()).or_insert(0);
                        *n += 1;
                        p.effective_name = format!("{}{}", p.kind, n);
                    }
                    if cfg.protocols.iter().any(|q| q.effective_name == p.effective_name) {
                        return self.err_at(t, format!("protocol {} defined twice", p.effective_name));
                    }
                    cfg.protocols.push(p);
                }
                "template" => {
                    self.advance();
                    let p = self.protocol(t)?;
                    if p.name.is_none() {
                        return self.err_at(t, "template without a name");
                    }
                    if cfg.templates.iter().any(|q| q.name == p.name) {
                        return self.err_at(t, format!("template {} defined twice", p.effective_name));
                    }
                    cfg.templates.push(p);
                }
                "function" => {
                    self.advance();
                    let f = self.function(t)?;
                    if cfg.functions.contains_key(&f.name) {
                        return self.err_at(t, format!("function {} defined twice", f.name));
                    }
                    cfg.functions.insert(f.name.clone(), f);
                }
                "filter" => {
                    self.advance();
                    let f = self.filter_def(t)?;
                    if cfg.filters.contains_key(&f.name) {
                        return self.err_at(t, format!("filter {} defined twice", f.name));
                    }
                    cfg.filters.insert(f.name.clone(), f);
                }
                "define" => {
                    self.advance();
                    let name = self.ident()?;
                    self.expect_p("=")?;
                    let e = self.expr()?;
                    self.expect_p(";")?;
                    cfg.defines.insert(name, e);
                }
                _ => {
                    let toks = self.raw_statement()?;
                    cfg.other.push(RawStatement { text: toks_text(&toks), location: self.loc(t) });
                }
            }
        }
        resolve(&mut cfg)?;
        Ok(cfg)
    }

    fn listen(&mut self) -> PResult<Listen> {
        let mut l = Listen { address: None, port: None, mode: None };
        loop {
            if self.eat_p(";") {
                return Ok(l);
            }
            if self.eat_kw("address") {
                match self.peek().tok {
                    Tok::Ip(a) => {
                        self.advance();
                        l.address = Some(a);
                    }
                    _ => return self.unexpected("an IP address"),
                }
            } else if self.eat_kw("port") {
                let t = self.peek();
                let n = self.num()?;
                l.port = Some(u16::try_from(n).or_else(|_| self.err_at(t, "port out of range"))?);
            } else if self.is_kw("dual") || self.is_kw("v6only") {
                l.mode = Some(self.ident()?);
            } else {
                return self.unexpected("'address', 'port', 'dual', 'v6only' or ';'");
            }
        }
    }

    fn protocol(&mut self, start: &Token) -> PResult<Protocol> {
        let kind = self.ident()?;
        let mut name = None;
        if !self.is_p("{") && !self.is_kw("from") {
            name = Some(self.ident()?);
        }
        let mut from = None;
        if self.eat_kw("from") {
            from = Some(self.ident()?);
        }
        self.expect_p("{")?;
        let mut p = Protocol {
            effective_name: name.clone().unwrap_or_default(),
            kind,
            name,
            from,
            options: Vec::new(),
            import: None,
            export: None,
            routes: Vec::new(),
            bgp: None,
            location: self.loc(start),
        };
        loop {
            if self.eat_p("}") {
                break;
            }
            if self.at_eof() {
                return self.err_at(start, "unterminated protocol block (missing '}')");
            }
            if self.eat_p(";") {
                continue;
            }
            let t = self.peek();
            let is_filter_clause = |s: &Self| matches!(&s.peek_at(1).tok, Tok::Ident(w) if matches!(w.as_str(), "all" | "none" | "filter" | "where"));
            if (self.is_kw("import") || self.is_kw("export")) && is_filter_clause(self) {
                let which = self.ident()?;
                let fr = self.filter_ref()?;
                if which == "import" {
                    p.import = Some(fr);
                } else {
                    p.export = Some(fr);
                }
                continue;
            }
            if self.is_kw("route") {
                self.advance();
                p.routes.push(self.static_route(t)?);
                continue;
            }
            let toks = self.raw_statement()?;
            p.options.push(make_option(toks, self.loc(t)));
        }
        Ok(p)
    }

    /// After `import` / `export`: `all;` `none;` `filter name;` `filter { ... }[;]` `where e;`.
    fn filter_ref(&mut self) -> PResult<FilterRef> {
        if self.eat_kw("all") {
            self.expect_p(";")?;
            return Ok(FilterRef::All);
        }
        if self.eat_kw("none") {
            self.expect_p(";")?;
            return Ok(FilterRef::None);
        }
        if self.eat_kw("where") {
            let e = self.expr()?;
            self.expect_p(";")?;
            return Ok(FilterRef::Where(e));
        }
        self.expect_kw("filter")?;
        if self.is_p("{") {
            let body = self.block_body()?;
            self.eat_p(";");
            return Ok(FilterRef::Inline(body));
        }
        let name = self.ident()?;
        self.expect_p(";")?;
        Ok(FilterRef::Named(name))
    }

    fn static_route(&mut self, start: &Token) -> PResult<StaticRoute> {
        let prefix = self.prefix_literal()?;
        let toks = self.raw_statement()?;
        let target = match toks.as_slice() {
            [Tok::Ident(w)] if w == "blackhole" || w == "drop" => RouteTarget::Blackhole,
            [Tok::Ident(w)] if w == "unreachable" => RouteTarget::Unreachable,
            [Tok::Ident(w)] if w == "prohibit" => RouteTarget::Prohibit,
            [Tok::Ident(w), Tok::Ip(a)] if w == "via" => RouteTarget::Via(*a),
            [Tok::Ident(w), Tok::Str(i)] if w == "via" => RouteTarget::ViaInterface(i.clone()),
            [Tok::Ident(w), Tok::Ip(a)] if w == "recursive" => RouteTarget::Recursive(*a),
            [] => return self.err_at(start, "route without a target"),
            other => RouteTarget::Other(toks_text(other)),
        };
        Ok(StaticRoute { prefix, target })
    }

    /// `ip/len`, validated like BIRD ("Invalid prefix" if host bits are set).
    fn prefix_literal(&mut self) -> PResult<Prefix> {
        let t = self.peek();
        let Tok::Ip(a) = t.tok else {
            return self.unexpected("a prefix");
        };
        self.advance();
        self.expect_p("/")?;
        let len = self.num()?;
        match u8::try_from(len).ok().and_then(|l| Prefix::new(a, l)) {
            Some(p) => Ok(p),
            None => self.err_at(t, format!("invalid prefix {a}/{len}")),
        }
    }

    // ---- functions and filters ----

    fn function(&mut self, start: &Token) -> PResult<Function> {
        let name = self.ident()?;
        let mut params = Vec::new();
        if self.eat_p("(") {
            while !self.eat_p(")") {
                if self.at_eof() {
                    return self.unexpected("')'");
                }
                params.push(self.var_decl(&[",", ";", ")"])?);
                if !self.eat_p(",") && !self.eat_p(";") && !self.is_p(")") {
                    return self.unexpected("',', ';' or ')'");
                }
            }
        }
        let locals = self.local_decls()?;
        let body = self.block_body()?;
        Ok(Function { name, params, locals, body, location: self.loc(start) })
    }

    fn filter_def(&mut self, start: &Token) -> PResult<Filter> {
        let name = self.ident()?;
        let locals = self.local_decls()?;
        let body = self.block_body()?;
        Ok(Filter { name, locals, body, location: self.loc(start) })
    }

    /// `type words... name` ending before one of `ends`.
    fn var_decl(&mut self, ends: &[&str]) -> PResult<VarDecl> {
        let mut words = Vec::new();
        while !ends.iter().any(|e| self.is_p(e)) {
            if self.at_eof() {
                return self.unexpected("a declaration");
            }
            words.push(self.ident()?);
        }
        if words.len() < 2 {
            return self.unexpected("a typed declaration ('<type> <name>')");
        }
        let name = words.pop().unwrap_or_default();
        Ok(VarDecl { ty: words.join(" "), name })
    }

    fn local_decls(&mut self) -> PResult<Vec<VarDecl>> {
        let mut out = Vec::new();
        while !self.is_p("{") {
            if self.at_eof() {
                return self.unexpected("'{'");
            }
            out.push(self.var_decl(&[";"])?);
            self.expect_p(";")?;
        }
        Ok(out)
    }

    /// `{ stmts }`
    fn block_body(&mut self) -> PResult<Vec<Stmt>> {
        let open = self.peek();
        self.expect_p("{")?;
        let mut out = Vec::new();
        loop {
            if self.eat_p("}") {
                return Ok(out);
            }
            if self.at_eof() {
                return self.err_at(open, "unterminated block (missing '}')");
            }
            if self.eat_p(";") {
                continue;
            }
            out.push(self.stmt()?);
        }
    }

    /// A single statement or a `{ }` block (after `then` / `else`).
    fn block_or_stmt(&mut self) -> PResult<Vec<Stmt>> {
        if self.is_p("{") {
            self.block_body()
        } else {
            Ok(vec![self.stmt()?])
        }
    }

    fn stmt(&mut self) -> PResult<Stmt> {
        self.nested(Self::stmt_inner)
    }

    fn stmt_inner(&mut self) -> PResult<Stmt> {
        let t = self.peek();
        if self.is_p("{") {
            return Ok(Stmt::Block(self.block_body()?));
        }
        if let Tok::Ident(kw) = &t.tok {
            match kw.as_str() {
                "if" => {
                    self.advance();
                    let cond = self.expr()?;
                    self.expect_kw("then")?;
                    let then = self.block_or_stmt()?;
                    let otherwise = if self.eat_kw("else") { Some(self.block_or_stmt()?) } else { None };
                    return Ok(Stmt::If { cond, then, otherwise });
                }
                "accept" | "reject" | "return" => {
                    self.advance();
                    if self.is_p("}") {
                        return self.unexpected("';'");
                    }
                    let arg = if self.is_p(";") { None } else { Some(self.expr()?) };
                    self.expect_p(";")?;
                    return Ok(match kw.as_str() {
                        "accept" => Stmt::Accept(arg),
                        "reject" => Stmt::Reject(arg),
                        _ => Stmt::Return(arg),
                    });
                }
                "print" | "printn" => {
                    self.advance();
                    let mut args = Vec::new();
                    if !self.is_p(";") {
                        args.push(self.expr()?);
                        while self.eat_p(",") {
                            args.push(self.expr()?);
                        }
                    }
                    self.expect_p(";")?;
                    return Ok(Stmt::Print { newline: kw == "print", args });
                }
                "quitbird" => {
                    self.advance();
                    self.expect_p(";")?;
                    return Ok(Stmt::Other("quitbird".into()));
                }
                "case" => {
                    self.advance();
                    return self.case_stmt();
                }
                k if STMT_KEYWORDS.contains(&k) => return self.unexpected("a statement"),
                _ => {}
            }
            if self.is_p_at(1, "=") {
                let target = self.ident()?;
                self.advance();
                let value = self.expr()?;
                self.expect_p(";")?;
                return Ok(Stmt::Assign { target, value });
            }
        }
        if let Tok::QIdent(_) = &t.tok {
            if self.is_p_at(1, "=") {
                let target = self.ident()?;
                self.advance();
                let value = self.expr()?;
                self.expect_p(";")?;
                return Ok(Stmt::Assign { target, value });
            }
        }
        let e = self.expr()?;
        if !matches!(e, Expr::Call(..) | Expr::Method(..)) {
            return self.err_at(t, format!("expected a statement, found expression '{e}'"));
        }
        self.expect_p(";")?;
        Ok(Stmt::Expr(e))
    }

    fn case_stmt(&mut self) -> PResult<Stmt> {
        let expr = self.expr()?;
        self.expect_p("{")?;
        let mut arms: Vec<CaseArm> = Vec::new();
        let mut default: Option<Vec<Stmt>> = None;
        loop {
            if self.eat_p("}") {
                break;
            }
            if self.at_eof() {
                return self.unexpected("'}'");
            }
            if self.is_kw("else") && self.is_p_at(1, ":") {
                self.advance();
                self.advance();
                default = Some(Vec::new());
                continue;
            }
            // Try a label list `a, b..c:`; otherwise it is a statement of the current arm.
            let save = self.pos;
            if let Ok(labels) = self.case_labels() {
                arms.push(CaseArm { labels, body: Vec::new() });
                continue;
            }
            self.pos = save;
            let s = self.stmt()?;
            if let Some(d) = default.as_mut() {
                d.push(s);
            } else if let Some(a) = arms.last_mut() {
                a.body.push(s);
            } else {
                return self.unexpected("a case label");
            }
        }
        Ok(Stmt::Case { expr, arms, default })
    }

    fn case_labels(&mut self) -> PResult<Vec<SetItem>> {
        let mut labels = vec![self.set_item()?];
        while self.eat_p(",") {
            labels.push(self.set_item()?);
        }
        self.expect_p(":")?;
        Ok(labels)
    }

    // ---- expressions ----
    // BIRD 1.6 precedence: `&&` `||` (same level, left) < comparisons (non-assoc) < `+ -` <
    // `* / %` < `!` < `.`

    pub(crate) fn expr(&mut self) -> PResult<Expr> {
        self.nested(Self::expr_inner)
    }

    fn expr_inner(&mut self) -> PResult<Expr> {
        let mut lhs = self.cmp_expr()?;
        loop {
            let op = if self.eat_p("&&") {
                BinOp::And
            } else if self.eat_p("||") {
                BinOp::Or
            } else {
                return Ok(lhs);
            };
            let rhs = self.cmp_expr()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn cmp_expr(&mut self) -> PResult<Expr> {
        let lhs = self.add_expr()?;
        let op = match &self.peek().tok {
            Tok::P("=") | Tok::P("==") => BinOp::Eq,
            Tok::P("!=") => BinOp::Ne,
            Tok::P("<") => BinOp::Lt,
            Tok::P("<=") => BinOp::Le,
            Tok::P(">") => BinOp::Gt,
            Tok::P(">=") => BinOp::Ge,
            Tok::P("~") => BinOp::Match,
            Tok::P("!~") => BinOp::NotMatch,
            _ => return Ok(lhs),
        };
        self.advance();
        let rhs = self.add_expr()?;
        Ok(Expr::Bin(op, Box::new(lhs), Box::new(rhs)))
    }

    fn add_expr(&mut self) -> PResult<Expr> {
        let mut lhs = self.mul_expr()?;
        loop {
            let op = if self.is_p("+") {
                BinOp::Add
            } else if self.is_p("-") {
                BinOp::Sub
            } else {
                return Ok(lhs);
            };
            self.advance();
            let rhs = self.mul_expr()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn mul_expr(&mut self) -> PResult<Expr> {
        let mut lhs = self.unary_expr()?;
        loop {
            let op = if self.is_p("*") {
                BinOp::Mul
            } else if self.is_p("/") {
                BinOp::Div
            } else if self.is_p("%") {
                BinOp::Mod
            } else {
                return Ok(lhs);
            };
            self.advance();
            let rhs = self.unary_expr()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn unary_expr(&mut self) -> PResult<Expr> {
        if self.eat_p("!") {
            return Ok(Expr::Not(Box::new(self.nested(Self::unary_expr)?)));
        }
        if self.is_p("-") && matches!(self.peek_at(1).tok, Tok::Num(_)) {
            self.advance();
            return Ok(Expr::Neg(Box::new(self.nested(Self::unary_expr)?)));
        }
        self.postfix_expr()
    }

    fn postfix_expr(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        while self.eat_p(".") {
            let name = self.ident()?;
            if self.eat_p("(") {
                let args = self.args()?;
                e = Expr::Method(Box::new(e), name, Some(args));
            } else {
                e = Expr::Method(Box::new(e), name, None);
            }
        }
        Ok(e)
    }

    /// Arguments after `(`, through the closing `)`.
    fn args(&mut self) -> PResult<Vec<Expr>> {
        let mut args = Vec::new();
        if self.eat_p(")") {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat_p(")") {
                return Ok(args);
            }
            if !self.eat_p(",") {
                return self.unexpected("',' or ')'");
            }
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let t = self.peek();
        match &t.tok {
            Tok::Num(n) => {
                self.advance();
                Ok(Expr::Num(*n))
            }
            Tok::Str(s) => {
                self.advance();
                Ok(Expr::Str(s.clone()))
            }
            Tok::Ip(a) => {
                if self.is_p_at(1, "/") {
                    Ok(Expr::Prefix(self.prefix_literal()?))
                } else {
                    self.advance();
                    Ok(Expr::Ip(*a))
                }
            }
            Tok::P("(") => {
                self.advance();
                let first = self.expr()?;
                if self.eat_p(")") {
                    return Ok(first);
                }
                let mut items = vec![first];
                while self.eat_p(",") {
                    items.push(self.expr()?);
                }
                self.expect_p(")")?;
                Ok(Expr::Tuple(items))
            }
            Tok::P("[") => {
                self.advance();
                let mut items = Vec::new();
                if self.eat_p("]") {
                    return Ok(Expr::Set(items));
                }
                loop {
                    items.push(self.set_item()?);
                    if self.eat_p("]") {
                        return Ok(Expr::Set(items));
                    }
                    if !self.eat_p(",") {
                        return self.unexpected("',' or ']'");
                    }
                }
            }
            Tok::P("[=") => {
                self.advance();
                let mut items = Vec::new();
                loop {
                    if self.eat_p("=]") {
                        return Ok(Expr::PathMask(items));
                    }
                    if self.eat_p("*") {
                        items.push(PathItem::AnySeq);
                    } else if self.eat_p("?") {
                        items.push(PathItem::AnyOne);
                    } else {
                        items.push(PathItem::Asn(self.nested(Self::primary)?));
                    }
                }
            }
            Tok::P(p @ ("-empty-" | "+empty+" | "--empty--")) => {
                self.advance();
                Ok(Expr::Sym((*p).to_string()))
            }
            Tok::Ident(s) if s == "true" || s == "false" => {
                self.advance();
                Ok(Expr::Bool(s == "true"))
            }
            Tok::Ident(s) if STMT_KEYWORDS.contains(&s.as_str()) => self.unexpected("an expression"),
            Tok::Ident(s) | Tok::QIdent(s) => {
                let s = s.clone();
                self.advance();
                if self.eat_p("(") {
                    let args = self.args()?;
                    Ok(Expr::Call(s, args))
                } else {
                    Ok(Expr::Sym(s))
                }
            }
            _ => self.unexpected("an expression"),
        }
    }

    fn set_part(&mut self) -> PResult<SetPart> {
        if self.eat_p("*") {
            return Ok(SetPart::Any);
        }
        let a = self.add_expr()?;
        if self.eat_p("..") {
            let b = self.add_expr()?;
            return Ok(SetPart::Range(a, b));
        }
        Ok(SetPart::Value(a))
    }

    fn set_item(&mut self) -> PResult<SetItem> {
        if let Tok::Ip(_) = self.peek().tok {
            if self.is_p_at(1, "/") {
                let prefix = self.prefix_literal()?;
                let max = prefix.max_len();
                if self.eat_p("+") {
                    return Ok(SetItem::Prefix { prefix, lo: prefix.len, hi: max });
                }
                if self.eat_p("-") {
                    return Ok(SetItem::Prefix { prefix, lo: 0, hi: prefix.len });
                }
                if self.is_p("{") {
                    let open = self.advance();
                    let lo = self.num()?;
                    self.expect_p(",")?;
                    let hi = self.num()?;
                    self.expect_p("}")?;
                    if lo > hi || hi > max as u64 {
                        return self.err_at(open, format!("invalid prefix length range {{{lo},{hi}}}"));
                    }
                    return Ok(SetItem::Prefix { prefix, lo: lo as u8, hi: hi as u8 });
                }
                return Ok(SetItem::Prefix { prefix, lo: prefix.len, hi: prefix.len });
            }
        }
        if self.is_p("(") {
            // A tuple pattern with wildcards/ranges, or a parenthesised value.
            let save = self.pos;
            self.advance();
            let first = self.set_part()?;
            if self.eat_p(",") {
                let mut parts = vec![first];
                parts.push(self.set_part()?);
                while self.eat_p(",") {
                    parts.push(self.set_part()?);
                }
                self.expect_p(")")?;
                return Ok(SetItem::Tuple(parts));
            }
            self.pos = save;
        }
        let a = self.add_expr()?;
        if self.eat_p("..") {
            let b = self.add_expr()?;
            return Ok(SetItem::Range(a, b));
        }
        Ok(SetItem::Value(a))
    }
}

/// Split an option statement into key words and value text.
fn make_option(toks: Vec<Tok>, location: Location) -> ProtoOption {
    let lead: Vec<&str> = toks
        .iter()
        .map_while(|t| match t {
            Tok::Ident(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let mut key_len = 0;
    for n in (1..=lead.len()).rev() {
        if OPTION_KEYS.contains(&lead[..n].join(" ").as_str()) {
            key_len = n;
            break;
        }
    }
    if key_len == 0 {
        key_len = lead.len();
        while key_len > 1 && VALUE_WORDS.contains(&lead[key_len - 1]) {
            key_len -= 1;
        }
    }
    let key = lead[..key_len].join(" ");
    let rest = toks[key_len..].to_vec();
    ProtoOption { key, value: toks_text(&rest), location, toks: rest }
}

// ---------------------------------------------------------------------------------------------
// Template resolution and typed BGP sessions
// ---------------------------------------------------------------------------------------------

fn opt_err<T>(o: &ProtoOption, msg: impl Into<String>) -> PResult<T> {
    Err(BirdConfError::Parse {
        location: o.location.clone(),
        message: format!("{} {}: {}", o.key, o.value, msg.into()).replace("  ", " "),
    })
}

fn opt_bool(o: &ProtoOption) -> PResult<bool> {
    match o.toks.as_slice() {
        [] => Ok(true),
        [Tok::Ident(w)] if w == "on" || w == "yes" => Ok(true),
        [Tok::Ident(w)] if w == "off" || w == "no" => Ok(false),
        [Tok::Num(n)] => Ok(*n != 0),
        _ => opt_err(o, "expected on/off/yes/no"),
    }
}

fn opt_u32(o: &ProtoOption, n: u64) -> PResult<u32> {
    u32::try_from(n).or_else(|_| opt_err(o, "number out of range"))
}

fn resolve(cfg: &mut BirdConfig) -> PResult<()> {
    // Template references must exist and be of the same kind (as BIRD requires).
    for p in cfg.templates.iter().chain(cfg.protocols.iter()) {
        if let Some(from) = &p.from {
            match cfg.template(from) {
                None => {
                    return Err(BirdConfError::Parse {
                        location: p.location.clone(),
                        message: format!("unknown template {from}"),
                    })
                }
                Some(t) if t.kind != p.kind => {
                    return Err(BirdConfError::Parse {
                        location: p.location.clone(),
                        message: format!("template {from} is a {} template, not {}", t.kind, p.kind),
                    })
                }
                _ => {}
            }
        }
    }
    let mut sessions = Vec::new();
    for p in &cfg.protocols {
        sessions.push(if p.kind == "bgp" { Some(bgp_session(cfg, p)?) } else { None });
    }
    for (p, s) in cfg.protocols.iter_mut().zip(sessions) {
        p.bgp = s;
    }
    Ok(())
}

fn bgp_session(cfg: &BirdConfig, p: &Protocol) -> PResult<BgpSession> {
    let mut s = BgpSession {
        name: p.effective_name.clone(),
        template: p.from.clone(),
        neighbor: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: None,
        remote_as: 0,
        local_as: None,
        rr_client: false,
        rr_cluster_id: None,
        passive: false,
        multihop: None,
        direct: false,
        ttl_security: None,
        next_hop_keep: false,
        next_hop_self: false,
        source_address: None,
        graceful_restart_time: None,
        password: None,
        allow_local_as: None,
        import: cfg.effective_import(p),
        export: cfg.effective_export(p),
        other: BTreeMap::new(),
    };
    let mut have_neighbor = false;
    let mut have_as = false;
    for q in cfg.chain(p) {
        for o in &q.options {
            match o.key.as_str() {
                "neighbor" => {
                    let mut it = o.toks.iter().peekable();
                    match it.next() {
                        Some(Tok::Ip(a)) => {
                            s.neighbor = *a;
                            have_neighbor = true;
                        }
                        Some(Tok::Ident(w)) if w == "as" => {
                            // `neighbor as N` (address given elsewhere)
                            match it.next() {
                                Some(Tok::Num(n)) => {
                                    s.remote_as = opt_u32(o, *n)?;
                                    have_as = true;
                                }
                                _ => return opt_err(o, "expected an AS number"),
                            }
                        }
                        _ => return opt_err(o, "expected an IP address"),
                    }
                    while let Some(t) = it.next() {
                        match (t, it.next()) {
                            (Tok::Ident(w), Some(Tok::Num(n))) if w == "port" => {
                                s.port = Some(u16::try_from(*n).or_else(|_| opt_err(o, "port out of range"))?);
                            }
                            (Tok::Ident(w), Some(Tok::Num(n))) if w == "as" => {
                                s.remote_as = opt_u32(o, *n)?;
                                have_as = true;
                            }
                            (Tok::P("%"), Some(Tok::Ident(_) | Tok::QIdent(_) | Tok::Str(_))) => {}
                            _ => return opt_err(o, "expected 'port N' or 'as N'"),
                        }
                    }
                }
                "local as" => match o.toks.as_slice() {
                    [Tok::Num(n)] => s.local_as = Some(opt_u32(o, *n)?),
                    _ => return opt_err(o, "expected an AS number"),
                },
                "local" => match o.toks.as_slice() {
                    [Tok::Ip(a)] => s.source_address = Some(*a),
                    [Tok::Ip(a), Tok::Ident(w), Tok::Num(n)] if w == "as" => {
                        s.source_address = Some(*a);
                        s.local_as = Some(opt_u32(o, *n)?);
                    }
                    _ => return opt_err(o, "expected 'local [address] as N'"),
                },
                "multihop" => match o.toks.as_slice() {
                    [] => {
                        s.multihop = Some(None);
                        s.direct = false;
                    }
                    [Tok::Num(n)] => {
                        s.multihop = Some(Some(u8::try_from(*n).or_else(|_| opt_err(o, "TTL out of range"))?));
                        s.direct = false;
                    }
                    _ => return opt_err(o, "expected an optional TTL"),
                },
                "direct" => {
                    s.direct = true;
                    s.multihop = None;
                }
                "ttl security" => s.ttl_security = Some(opt_bool(o)?),
                "passive" => s.passive = opt_bool(o)?,
                "rr client" => s.rr_client = opt_bool(o)?,
                "rr cluster id" => match o.toks.as_slice() {
                    [Tok::Ip(IpAddr::V4(a))] => s.rr_cluster_id = Some(*a),
                    [Tok::Num(n)] => s.rr_cluster_id = Some(Ipv4Addr::from(opt_u32(o, *n)?)),
                    _ => return opt_err(o, "expected an IPv4 address or number"),
                },
                "next hop keep" => s.next_hop_keep = opt_bool(o)?,
                "next hop self" => s.next_hop_self = opt_bool(o)?,
                "source address" => match o.toks.as_slice() {
                    [Tok::Ip(a)] => s.source_address = Some(*a),
                    _ => return opt_err(o, "expected an IP address"),
                },
                "graceful restart time" => match o.toks.as_slice() {
                    [Tok::Num(n)] => s.graceful_restart_time = Some(opt_u32(o, *n)?),
                    _ => return opt_err(o, "expected a number"),
                },
                "password" => match o.toks.as_slice() {
                    [Tok::Str(pw)] => s.password = Some(pw.clone()),
                    _ => return opt_err(o, "expected a string"),
                },
                "allow local as" => match o.toks.as_slice() {
                    [] => s.allow_local_as = Some(u32::MAX),
                    [Tok::Num(n)] => s.allow_local_as = Some(opt_u32(o, *n)?),
                    _ => return opt_err(o, "expected an optional number"),
                },
                _ => {
                    s.other.insert(o.key.clone(), o.value.clone());
                }
            }
        }
    }
    if !have_neighbor {
        return Err(BirdConfError::Parse {
            location: p.location.clone(),
            message: format!("protocol bgp {}: no neighbor address", s.name),
        });
    }
    if !have_as {
        return Err(BirdConfError::Parse {
            location: p.location.clone(),
            message: format!("protocol bgp {}: no remote AS (neighbor ... as N)", s.name),
        });
    }
    Ok(s)
}
