//! Tokeniser for the BIRD 1.6 configuration language, with `include` splicing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ast::Location;
use super::BirdConfError;

/// One lexical token.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// Bare identifier or keyword (`protocol`, `net`, `bgp_template`).
    Ident(String),
    /// Symbol written in single quotes (`'bgp_my-filter_importFilterV4'`); never a keyword.
    QIdent(String),
    /// Double-quoted string (BIRD 1.6 strings have no escapes and no newlines).
    Str(String),
    Num(u64),
    Ip(IpAddr),
    /// Punctuation / operator.
    P(&'static str),
    Eof,
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub file: u32,
    pub line: u32,
    pub col: u32,
}

/// Multi-character punctuation first (longest match wins).
const PUNCTS: &[&str] = &[
    "--empty--",
    "-empty-",
    "+empty+",
    "[=",
    "=]",
    "!~",
    "!=",
    "==",
    "<=",
    ">=",
    "&&",
    "||",
    "..",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ";",
    ",",
    ".",
    ":",
    "~",
    "=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "<",
    ">",
    "!",
    "?",
    "&",
    "|",
];

pub(crate) fn location(files: &[String], t: &Token) -> Location {
    Location { file: files.get(t.file as usize).cloned().unwrap_or_default(), line: t.line, col: t.col }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    col: u32,
    file: u32,
    file_name: &'a str,
}

impl Lexer<'_> {
    fn peek(&self, off: usize) -> Option<char> {
        self.chars.get(self.pos + off).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err(&self, line: u32, col: u32, msg: impl Into<String>) -> BirdConfError {
        BirdConfError::Parse { location: Location { file: self.file_name.to_string(), line, col }, message: msg.into() }
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(i, c)| self.chars.get(self.pos + i) == Some(&c))
    }

    /// Run of characters that may form an IPv6 address, starting at the current position.
    fn ipv6_candidate(&self) -> Option<(usize, Ipv6Addr)> {
        let mut end = self.pos;
        while let Some(c) = self.chars.get(end) {
            if c.is_ascii_hexdigit() || *c == ':' || *c == '.' {
                end += 1;
            } else {
                break;
            }
        }
        let run: String = self.chars[self.pos..end].iter().collect();
        if !run.contains(':') {
            return None;
        }
        // Trailing dots (e.g. a statement like `x = ::1.`) are not part of the address.
        let trimmed = run.trim_end_matches('.');
        // Identifier characters directly after the run (e.g. `a:b_c`) mean this is not an address.
        if let Some(c) = self.chars.get(end) {
            if c.is_ascii_alphanumeric() || *c == '_' {
                return None;
            }
        }
        let colons = trimmed.matches(':').count();
        if !(trimmed.contains("::") || colons >= 3) {
            return None;
        }
        trimmed.parse::<Ipv6Addr>().ok().map(|a| (trimmed.chars().count(), a))
    }

    fn run(mut self) -> Result<Vec<Token>, BirdConfError> {
        let mut out = Vec::new();
        while let Some(c) = self.peek(0) {
            // Skip whitespace and comments.
            if c.is_whitespace() {
                self.bump();
                continue;
            }
            if c == '#' {
                while let Some(c) = self.peek(0) {
                    if c == '\n' {
                        break;
                    }
                    self.bump();
                }
                continue;
            }
            if c == '/' && self.peek(1) == Some('*') {
                let (l, cl) = (self.line, self.col);
                self.bump();
                self.bump();
                loop {
                    match self.peek(0) {
                        None => return Err(self.err(l, cl, "unterminated /* comment")),
                        Some('*') if self.peek(1) == Some('/') => {
                            self.bump();
                            self.bump();
                            break;
                        }
                        Some(_) => {
                            self.bump();
                        }
                    }
                }
                continue;
            }
            let (line, col) = (self.line, self.col);
            let tok = self.token(c, line, col)?;
            out.push(Token { tok, file: self.file, line, col });
        }
        out.push(Token { tok: Tok::Eof, file: self.file, line: self.line, col: self.col });
        Ok(out)
    }

    fn token(&mut self, c: char, line: u32, col: u32) -> Result<Tok, BirdConfError> {
        if c == '"' {
            self.bump();
            let mut s = String::new();
            loop {
                match self.bump() {
                    None | Some('\n') => return Err(self.err(line, col, "unterminated string")),
                    Some('"') => break,
                    Some(ch) => s.push(ch),
                }
            }
            return Ok(Tok::Str(s));
        }
        if c == '\'' {
            self.bump();
            let mut s = String::new();
            loop {
                match self.bump() {
                    None | Some('\n') => return Err(self.err(line, col, "unterminated quoted symbol")),
                    Some('\'') => break,
                    Some(ch) => s.push(ch),
                }
            }
            if s.is_empty() {
                return Err(self.err(line, col, "empty quoted symbol"));
            }
            return Ok(Tok::QIdent(s));
        }
        if c.is_ascii_hexdigit() || c == ':' {
            if let Some((n, a)) = self.ipv6_candidate() {
                for _ in 0..n {
                    self.bump();
                }
                return Ok(Tok::Ip(IpAddr::V6(a)));
            }
        }
        if c.is_ascii_digit() {
            if c == '0' && matches!(self.peek(1), Some('x') | Some('X')) {
                self.bump();
                self.bump();
                let mut s = String::new();
                while let Some(h) = self.peek(0) {
                    if h.is_ascii_hexdigit() {
                        s.push(h);
                        self.bump();
                    } else {
                        break;
                    }
                }
                return u64::from_str_radix(&s, 16)
                    .map(Tok::Num)
                    .map_err(|_| self.err(line, col, format!("invalid hex number 0x{s}")));
            }
            let mut s = String::new();
            while let Some(d) = self.peek(0) {
                let dotted = d == '.' && self.peek(1).is_some_and(|x| x.is_ascii_digit()) && s.matches('.').count() < 3;
                if d.is_ascii_digit() || dotted {
                    s.push(d);
                    self.bump();
                } else {
                    break;
                }
            }
            if s.contains('.') {
                return s
                    .parse::<Ipv4Addr>()
                    .map(|a| Tok::Ip(IpAddr::V4(a)))
                    .map_err(|_| self.err(line, col, format!("invalid IPv4 address {s}")));
            }
            return s
                .parse::<u64>()
                .map(Tok::Num)
                .map_err(|_| self.err(line, col, format!("number out of range: {s}")));
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let mut s = String::new();
            while let Some(d) = self.peek(0) {
                if d.is_ascii_alphanumeric() || d == '_' {
                    s.push(d);
                    self.bump();
                } else {
                    break;
                }
            }
            return Ok(Tok::Ident(s));
        }
        for p in PUNCTS {
            if self.starts_with(p) {
                for _ in 0..p.chars().count() {
                    self.bump();
                }
                return Ok(Tok::P(p));
            }
        }
        Err(self.err(line, col, format!("unexpected character {c:?}")))
    }
}

/// Tokenise one file.
pub(crate) fn lex(file: u32, file_name: &str, src: &str) -> Result<Vec<Token>, BirdConfError> {
    Lexer { chars: src.chars().collect(), pos: 0, line: 1, col: 1, file, file_name }.run()
}

/// Include resolution: `None` keeps `include` statements unresolved (recorded only).
pub(crate) type Resolver<'r> = Option<&'r dyn Fn(&str) -> Option<String>>;

/// Token stream (ending in one `Eof`), file table, include names seen.
pub(crate) type Lexed = (Vec<Token>, Vec<String>, Vec<String>);

const MAX_INCLUDE_DEPTH: usize = 8;

/// Tokenise `name` and splice in the tokens of every `include "file";` (recursively).
/// Returns the token stream (ending in one `Eof`), the file table and the include names seen.
pub(crate) fn lex_tree(name: &str, text: &str, resolver: Resolver<'_>) -> Result<Lexed, BirdConfError> {
    let mut files = Vec::new();
    let mut includes = Vec::new();
    let mut stack = Vec::new();
    let mut toks = lex_rec(name, text, resolver, &mut files, &mut includes, &mut stack)?;
    if toks.is_empty() || toks.last().map(|t| &t.tok) != Some(&Tok::Eof) {
        toks.push(Token { tok: Tok::Eof, file: 0, line: 1, col: 1 });
    }
    Ok((toks, files, includes))
}

fn lex_rec(
    name: &str,
    text: &str,
    resolver: Resolver<'_>,
    files: &mut Vec<String>,
    includes: &mut Vec<String>,
    stack: &mut Vec<String>,
) -> Result<Vec<Token>, BirdConfError> {
    let idx = files.len() as u32;
    files.push(name.to_string());
    stack.push(name.to_string());
    let raw = lex(idx, name, text)?;
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let t = &raw[i];
        if matches!(&t.tok, Tok::Ident(s) if s == "include") {
            if let (Some(Tok::Str(inc)), Some(Tok::P(";"))) =
                (raw.get(i + 1).map(|t| &t.tok), raw.get(i + 2).map(|t| &t.tok))
            {
                let loc = Location { file: name.to_string(), line: t.line, col: t.col };
                includes.push(inc.clone());
                if let Some(resolve) = resolver {
                    if stack.len() > MAX_INCLUDE_DEPTH || stack.iter().any(|s| s == inc) {
                        return Err(BirdConfError::Parse {
                            location: loc,
                            message: format!("include \"{inc}\": recursive or too deeply nested"),
                        });
                    }
                    let Some(body) = resolve(inc) else {
                        return Err(BirdConfError::Parse {
                            location: loc,
                            message: format!("include \"{inc}\": file not found"),
                        });
                    };
                    let mut sub = lex_rec(inc, &body, resolver, files, includes, stack)?;
                    sub.pop(); // its Eof
                    out.extend(sub);
                }
                i += 3;
                continue;
            }
        }
        out.push(t.clone());
        i += 1;
    }
    stack.pop();
    Ok(out)
}
