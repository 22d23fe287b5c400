//! Calico label selectors: parser and evaluator.
//!
//! This module reproduces the selector language of libcalico-go v3.30
//! (`lib/selector/{tokenizer,parser}`): which inputs are accepted, how they
//! evaluate against a label map, and the normalised text produced by Go's
//! `Selector.String()` (see [`Selector::canonical`]).
//!
//! Grammar (as implemented by the Go tokenizer/parser):
//!
//! ```text
//! selector   := <empty> | or
//! or         := and ( "||" and )*
//! and        := operation ( "&&" operation )*
//! operation  := "!"* term
//! term       := "has(" label ")" | "all(" ")" | "global(" ")" | "(" or ")"
//!             | label ("==" | "!=" | "contains" | "starts with" | "ends with") string
//!             | label ("in" | "not in") "{" [ string ( "," string )* [","] ] "}"
//! label      := [a-zA-Z0-9_./-]{1,512}
//! string     := '"' [^"]* '"' | "'" [^']* "'"
//! ```
//!
//! Whitespace between tokens is spaces and tabs only. `has(`, `all(` and
//! `global(` must be written without a space before the parenthesis; spaces
//! are allowed inside. The words of `starts with`, `ends with` and `not in`
//! may be separated by any amount of whitespace, including none.
//!
//! Error messages are our own (Go's are terser), but every input is accepted
//! or rejected exactly as Go does, and the error points at the first place Go
//! would have failed (the tokenizer runs over the whole input before the
//! parser, as in Go). One deliberate difference: parentheses may be nested at
//! most [`MAX_NESTING_DEPTH`] deep, so that hostile input cannot overflow the
//! stack; Go has no such limit.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// Longest label name accepted (Go: `tokenizer.MaxLabelLength`).
pub const MAX_LABEL_LENGTH: usize = 512;

/// Deepest parenthesis nesting accepted. Not a Calico limit: a guard against
/// stack exhaustion on hostile input.
pub const MAX_NESTING_DEPTH: usize = 200;

/// The operators list shown when a label is not followed by one.
const OPERATOR_LIST: &str = "==, !=, in, not in, contains, starts with, ends with";

/// A parsed selector expression (Go's parser node types).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    /// `all()`; also what the empty selector parses to.
    All,
    /// `global()`; matches everything.
    Global,
    /// `has(label)`.
    Has(String),
    /// `label == "value"`.
    Eq { label: String, value: String },
    /// `label != "value"`.
    Ne { label: String, value: String },
    /// `label contains "value"`.
    Contains { label: String, value: String },
    /// `label starts with "value"`.
    StartsWith { label: String, value: String },
    /// `label ends with "value"`.
    EndsWith { label: String, value: String },
    /// `label in {…}`; the set is sorted and de-duplicated, as in Go.
    In { label: String, values: BTreeSet<String> },
    /// `label not in {…}`.
    NotIn { label: String, values: BTreeSet<String> },
    /// A single `!` (repeated `!`s are folded by parity when parsing).
    Not(Box<Expr>),
    /// Two or more operands joined by `&&`.
    And(Vec<Expr>),
    /// Two or more operands joined by `||`.
    Or(Vec<Expr>),
}

impl Expr {
    fn eval<'a, F>(&self, lookup: &F) -> bool
    where
        F: Fn(&str) -> Option<&'a str>,
    {
        match self {
            Expr::All | Expr::Global => true,
            Expr::Has(label) => lookup(label).is_some(),
            Expr::Eq { label, value } => lookup(label).is_some_and(|v| v == value),
            Expr::Ne { label, value } => lookup(label).is_none_or(|v| v != value),
            Expr::Contains { label, value } => lookup(label).is_some_and(|v| v.contains(value.as_str())),
            Expr::StartsWith { label, value } => lookup(label).is_some_and(|v| v.starts_with(value.as_str())),
            Expr::EndsWith { label, value } => lookup(label).is_some_and(|v| v.ends_with(value.as_str())),
            Expr::In { label, values } => lookup(label).is_some_and(|v| values.contains(v)),
            Expr::NotIn { label, values } => lookup(label).is_none_or(|v| !values.contains(v)),
            Expr::Not(inner) => !inner.eval(lookup),
            Expr::And(ops) => ops.iter().all(|op| op.eval(lookup)),
            Expr::Or(ops) => ops.iter().any(|op| op.eval(lookup)),
        }
    }

    /// Go's `collectFragments`: `&&`/`||` groups are always parenthesised,
    /// `!` is printed directly before its operand, string values use `"`
    /// unless they contain one, in which case `'`.
    fn write_canonical(&self, out: &mut String) {
        match self {
            Expr::All => out.push_str("all()"),
            Expr::Global => out.push_str("global()"),
            Expr::Has(label) => {
                out.push_str("has(");
                out.push_str(label);
                out.push(')');
            }
            Expr::Eq { label, value } => write_label_op_value(out, label, " == ", value),
            Expr::Ne { label, value } => write_label_op_value(out, label, " != ", value),
            Expr::Contains { label, value } => write_label_op_value(out, label, " contains ", value),
            Expr::StartsWith { label, value } => write_label_op_value(out, label, " starts with ", value),
            Expr::EndsWith { label, value } => write_label_op_value(out, label, " ends with ", value),
            Expr::In { label, values } => write_set_op(out, label, "in", values),
            Expr::NotIn { label, values } => write_set_op(out, label, "not in", values),
            Expr::Not(inner) => {
                out.push('!');
                inner.write_canonical(out);
            }
            Expr::And(ops) => write_group(out, ops, " && "),
            Expr::Or(ops) => write_group(out, ops, " || "),
        }
    }
}

fn write_quoted(out: &mut String, value: &str) {
    let quote = if value.contains('"') { '\'' } else { '"' };
    out.push(quote);
    out.push_str(value);
    out.push(quote);
}

fn write_label_op_value(out: &mut String, label: &str, op: &str, value: &str) {
    out.push_str(label);
    out.push_str(op);
    write_quoted(out, value);
}

fn write_set_op(out: &mut String, label: &str, op: &str, values: &BTreeSet<String>) {
    out.push_str(label);
    out.push(' ');
    out.push_str(op);
    out.push_str(" {");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_quoted(out, value);
    }
    out.push('}');
}

fn write_group(out: &mut String, ops: &[Expr], sep: &str) {
    out.push('(');
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        op.write_canonical(out);
    }
    out.push(')');
}

/// A parsed Calico label selector, remembering the text it came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selector {
    source: String,
    expr: Expr,
}

impl Selector {
    /// Parses a selector. The empty (or all-blank) selector means `all()`.
    pub fn parse(s: &str) -> Result<Selector, SelectorError> {
        let tokens = tokenize(s)?;
        let expr = Parser::new(s, tokens).parse_root()?;
        Ok(Selector { source: s.to_string(), expr })
    }

    /// Checks the syntax of a selector without keeping the result.
    pub fn validate(s: &str) -> Result<(), SelectorError> {
        Selector::parse(s).map(|_| ())
    }

    /// Evaluates the selector against a label map.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|key| labels.get(key).map(String::as_str))
    }

    /// Evaluates the selector against labels supplied by a lookup function
    /// (`None` means the label is absent).
    pub fn matches_with<'a, F>(&self, lookup: F) -> bool
    where
        F: Fn(&str) -> Option<&'a str>,
    {
        self.expr.eval(&lookup)
    }

    /// The selector that matches everything (`all()`).
    pub fn all() -> Selector {
        Selector { source: "all()".to_string(), expr: Expr::All }
    }

    /// The text the selector was parsed from, unchanged.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The parsed expression.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// The normalised form printed by Go's `Selector.String()`, e.g.
    /// `a in {"d","a"} && !has(b)` becomes `(a in {"a", "d"} && !has(b))`
    /// and the empty selector becomes `all()`.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        self.expr.write_canonical(&mut out);
        out
    }
}

impl Default for Selector {
    fn default() -> Self {
        Selector::all()
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

impl fmt::Display for Selector {
    /// Prints the original text (use [`Selector::canonical`] for the normalised form).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Go's `selector.Normalise`: trims surrounding whitespace, then returns the
/// canonical form, or the trimmed input unchanged if it does not parse.
pub fn normalise(s: &str) -> String {
    let trimmed = s.trim();
    match Selector::parse(trimmed) {
        Ok(sel) => sel.canonical(),
        Err(_) => trimmed.to_string(),
    }
}

/// A selector that failed to parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid selector {input:?}: {message} at column {column}")]
pub struct SelectorError {
    /// The whole selector text.
    pub input: String,
    /// 1-based column (in characters) where parsing failed; one past the
    /// last character when the input ended too early.
    pub column: usize,
    /// What was wrong / what was expected there.
    pub message: String,
}

impl SelectorError {
    fn at(input: &str, byte_pos: usize, message: impl Into<String>) -> SelectorError {
        let prefix = input.get(..byte_pos).unwrap_or(input);
        SelectorError { input: input.to_string(), column: prefix.chars().count() + 1, message: message.into() }
    }

    /// Two lines: the input, and a `^` under the failing column. Tabs are
    /// kept in the second line so the caret lines up; line breaks and other
    /// control characters in the input are shown as `↵` / `�`.
    pub fn caret(&self) -> String {
        let mut line = String::new();
        let mut marker = String::new();
        for (i, c) in self.input.chars().enumerate() {
            let shown = match c {
                '\t' => '\t',
                '\n' | '\r' => '\u{21b5}',
                c if c.is_control() => '\u{fffd}',
                c => c,
            };
            line.push(shown);
            if i + 1 < self.column {
                marker.push(if c == '\t' { '\t' } else { ' ' });
            }
        }
        marker.push('^');
        format!("{line}\n{marker}")
    }
}

// ---------------------------------------------------------------------------
// Tokenizer (mirrors tokenizer.AppendTokens).

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Label(String),
    Str(String),
    LBrace,
    RBrace,
    Comma,
    Eq,
    Ne,
    In,
    Not,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    All,
    Has(String),
    LParen,
    RParen,
    And,
    Or,
    Global,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Label(l) => format!("label {l:?}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Has(l) => format!("'has({l})'"),
            Tok::Eof => "end of selector".to_string(),
            other => format!("'{}'", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Comma => ",",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::In => "in",
            Tok::Not => "!",
            Tok::NotIn => "not in",
            Tok::Contains => "contains",
            Tok::StartsWith => "starts with",
            Tok::EndsWith => "ends with",
            Tok::All => "all()",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::And => "&&",
            Tok::Or => "||",
            Tok::Global => "global()",
            Tok::Label(_) | Tok::Str(_) | Tok::Has(_) | Tok::Eof => "",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    tok: Tok,
    /// Byte offset of the token's first character.
    pos: usize,
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while matches!(bytes.get(pos), Some(b' ' | b'\t')) {
        pos += 1;
    }
    pos
}

fn ident_end(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(|&b| is_ident_byte(b)) {
        pos += 1;
    }
    pos
}

fn is_word_boundary(rest: &str) -> bool {
    rest.as_bytes().first().is_none_or(|&b| !is_ident_byte(b))
}

/// Go's `cutPrefixCheckBreak`: the word, then a word boundary.
fn cut_word(rest: &str, word: &str) -> Option<usize> {
    let after = rest.strip_prefix(word)?;
    is_word_boundary(after).then_some(word.len())
}

/// Result of trying to cut a (possibly multi-word) operator.
enum Cut {
    /// The operator is not there.
    No,
    /// The operator is there and is this many bytes long (with any
    /// whitespace after it).
    Yes(usize),
    /// The words are there, but after the whitespace following them comes
    /// a label character, so Go rejects the operator (e.g. `starts with b`);
    /// the offset of that character.
    BadOperand(usize),
}

/// Go's `cutMultiWordPrefixCheckBreak`: each word followed by optional
/// whitespace, then a word boundary.
fn cut_words(rest: &str, words: &[&str]) -> Cut {
    let mut after = rest;
    let mut bare = rest;
    for word in words {
        let Some(a) = after.strip_prefix(word) else {
            return Cut::No;
        };
        bare = a;
        after = a.trim_start_matches([' ', '\t']);
    }
    if is_word_boundary(after) {
        Cut::Yes(rest.len() - after.len())
    } else if after.len() < bare.len() {
        Cut::BadOperand(rest.len() - after.len())
    } else {
        Cut::No
    }
}

/// The operators that may follow a label, in the order Go tries them.
const WORD_OPERATORS: [(Tok, &[&str]); 5] = [
    (Tok::Contains, &["contains"]),
    (Tok::StartsWith, &["starts", "with"]),
    (Tok::EndsWith, &["ends", "with"]),
    (Tok::NotIn, &["not", "in"]),
    (Tok::In, &["in"]),
];

/// "expected … after '<op>', found <found>".
fn expected_operand(op: &Tok, found: &str) -> String {
    match op {
        Tok::In | Tok::NotIn => {
            format!("expected a set literal like {{\"a\", \"b\"}} after '{}', found {found}", op.symbol())
        }
        _ => format!("expected a quoted string after '{}', found {found}", op.symbol()),
    }
}

/// Describes what is in the input at `pos`, for error messages.
fn describe_at(input: &str, pos: usize) -> String {
    let rest = input.get(pos..).unwrap_or("");
    match rest.chars().next() {
        None => "end of selector".to_string(),
        Some('\n') => "a line break".to_string(),
        Some('\r') => "a carriage return".to_string(),
        Some(c) if c.is_ascii() && is_ident_byte(c as u8) => {
            let end = ident_end(rest.as_bytes(), 0);
            let word = &rest[..end];
            if word.len() > 40 {
                format!("{:?}…", &word[..40])
            } else {
                format!("{word:?}")
            }
        }
        Some(c) => format!("{c:?}"),
    }
}

fn unexpected_char(input: &str, pos: usize) -> SelectorError {
    let c = input.get(pos..).and_then(|r| r.chars().next());
    let message = match c {
        Some('\n' | '\r') => "unexpected line break (only spaces and tabs may separate tokens)".to_string(),
        Some(c) if c.is_whitespace() => {
            format!("unexpected whitespace {c:?} (only spaces and tabs may separate tokens)")
        }
        Some(c) => format!("unexpected character {c:?}"),
        None => "unexpected end of selector".to_string(),
    };
    SelectorError::at(input, pos, message)
}

fn label_too_long(input: &str, start: usize, end: usize) -> SelectorError {
    SelectorError::at(
        input,
        start,
        format!("label is too long ({} characters, at most {MAX_LABEL_LENGTH} allowed)", end - start),
    )
}

fn tokenize(input: &str) -> Result<Vec<Token>, SelectorError> {
    let bytes = input.as_bytes();
    let mut tokens: Vec<Token> = Vec::new();
    let mut pos = 0;
    loop {
        pos = skip_ws(bytes, pos);
        let start = pos;
        let Some(&b) = bytes.get(pos) else {
            tokens.push(Token { tok: Tok::Eof, pos });
            return Ok(tokens);
        };
        let last_label = match tokens.last() {
            Some(Token { tok: Tok::Label(l), .. }) => Some(l.clone()),
            _ => None,
        };
        let (tok, len) = match b {
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'{' => (Tok::LBrace, 1),
            b'}' => (Tok::RBrace, 1),
            b',' => (Tok::Comma, 1),
            b'"' | b'\'' => {
                let body = &input[pos + 1..];
                let Some(n) = body.find(b as char) else {
                    return Err(SelectorError::at(
                        input,
                        pos,
                        format!("unterminated string (no closing {})", b as char),
                    ));
                };
                (Tok::Str(body[..n].to_string()), n + 2)
            }
            b'=' => {
                if bytes.get(pos + 1) == Some(&b'=') {
                    (Tok::Eq, 2)
                } else {
                    return Err(SelectorError::at(input, pos, "expected '==' (a single '=' is not an operator)"));
                }
            }
            b'!' => {
                if bytes.get(pos + 1) == Some(&b'=') {
                    (Tok::Ne, 2)
                } else {
                    (Tok::Not, 1)
                }
            }
            b'&' => {
                if bytes.get(pos + 1) == Some(&b'&') {
                    (Tok::And, 2)
                } else {
                    return Err(SelectorError::at(input, pos, "expected '&&' (a single '&' is not an operator)"));
                }
            }
            b'|' => {
                if bytes.get(pos + 1) == Some(&b'|') {
                    (Tok::Or, 2)
                } else {
                    return Err(SelectorError::at(input, pos, "expected '||' (a single '|' is not an operator)"));
                }
            }
            _ => {
                let rest = &input[pos..];
                if let Some(label) = last_label {
                    // After a label only a word operator can follow here.
                    let mut bad_operand = None;
                    let mut found = None;
                    for (tok, words) in WORD_OPERATORS {
                        let cut = match words {
                            [word] => cut_word(rest, word).map_or(Cut::No, Cut::Yes),
                            _ => cut_words(rest, words),
                        };
                        match cut {
                            Cut::Yes(n) => {
                                found = Some((tok, n));
                                break;
                            }
                            Cut::BadOperand(off) => {
                                bad_operand = bad_operand.or(Some((tok, pos + off)));
                            }
                            Cut::No => {}
                        }
                    }
                    match (found, bad_operand) {
                        (Some(found), _) => found,
                        (None, Some((tok, at))) => {
                            return Err(SelectorError::at(input, at, expected_operand(&tok, &describe_at(input, at))));
                        }
                        (None, None) => {
                            return Err(SelectorError::at(
                                input,
                                pos,
                                format!(
                                    "expected an operator after label {label:?} ({OPERATOR_LIST}), found {}",
                                    describe_at(input, pos)
                                ),
                            ));
                        }
                    }
                } else if rest.starts_with("has(") {
                    let name_start = skip_ws(bytes, pos + 4);
                    let name_end = ident_end(bytes, name_start);
                    if name_end == name_start {
                        return Err(SelectorError::at(
                            input,
                            name_start,
                            format!("expected a label name after 'has(', found {}", describe_at(input, name_start)),
                        ));
                    }
                    if name_end - name_start > MAX_LABEL_LENGTH {
                        return Err(label_too_long(input, name_start, name_end));
                    }
                    let close = skip_ws(bytes, name_end);
                    if bytes.get(close) != Some(&b')') {
                        return Err(SelectorError::at(
                            input,
                            close,
                            format!("expected ')' to close 'has(', found {}", describe_at(input, close)),
                        ));
                    }
                    (Tok::Has(input[name_start..name_end].to_string()), close + 1 - pos)
                } else if let Some((tok, word)) =
                    [(Tok::All, "all("), (Tok::Global, "global(")].into_iter().find(|(_, word)| rest.starts_with(word))
                {
                    let close = skip_ws(bytes, pos + word.len());
                    if bytes.get(close) != Some(&b')') {
                        return Err(SelectorError::at(
                            input,
                            close,
                            format!("expected ')' after '{word}', found {}", describe_at(input, close)),
                        ));
                    }
                    (tok, close + 1 - pos)
                } else {
                    let end = ident_end(bytes, pos);
                    if end == pos {
                        return Err(unexpected_char(input, pos));
                    }
                    if end - pos > MAX_LABEL_LENGTH {
                        return Err(label_too_long(input, pos, end));
                    }
                    (Tok::Label(input[pos..end].to_string()), end - pos)
                }
            }
        };
        tokens.push(Token { tok, pos: start });
        pos = start + len;
    }
}

// ---------------------------------------------------------------------------
// Parser (mirrors parser.parseRoot / parseOrExpression / parseAndExpression /
// parseOperation).

struct Parser<'s> {
    input: &'s str,
    tokens: Vec<Token>,
    eof: Token,
    next: usize,
    depth: usize,
}

impl<'s> Parser<'s> {
    fn new(input: &'s str, tokens: Vec<Token>) -> Self {
        Parser { input, tokens, eof: Token { tok: Tok::Eof, pos: input.len() }, next: 0, depth: 0 }
    }

    fn peek(&self) -> &Token {
        self.tokens.get(self.next).unwrap_or(&self.eof)
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.next += 1;
        }
        t
    }

    fn error(&self, pos: usize, message: String) -> SelectorError {
        SelectorError::at(self.input, pos, message)
    }

    fn parse_root(&mut self) -> Result<Expr, SelectorError> {
        if self.peek().tok == Tok::Eof {
            return Ok(Expr::All);
        }
        let expr = self.parse_or()?;
        let t = self.peek();
        match t.tok {
            Tok::Eof => Ok(expr),
            Tok::RParen => Err(self.error(t.pos, "unbalanced parenthesis: ')' without a matching '('".to_string())),
            _ => Err(self.error(t.pos, format!("expected '&&', '||' or end of selector, found {}", t.tok.describe()))),
        }
    }

    fn parse_or(&mut self) -> Result<Expr, SelectorError> {
        let first = self.parse_and()?;
        let mut rest = Vec::new();
        while self.peek().tok == Tok::Or {
            self.bump();
            rest.push(self.parse_and()?);
        }
        if rest.is_empty() {
            return Ok(first);
        }
        rest.insert(0, first);
        Ok(Expr::Or(rest))
    }

    fn parse_and(&mut self) -> Result<Expr, SelectorError> {
        let first = self.parse_operation()?;
        let mut rest = Vec::new();
        while self.peek().tok == Tok::And {
            self.bump();
            rest.push(self.parse_operation()?);
        }
        if rest.is_empty() {
            return Ok(first);
        }
        rest.insert(0, first);
        Ok(Expr::And(rest))
    }

    fn parse_operation(&mut self) -> Result<Expr, SelectorError> {
        let mut negated = false;
        while self.peek().tok == Tok::Not {
            self.bump();
            negated = !negated;
        }
        let t = self.bump();
        let expr = match t.tok {
            Tok::Has(label) => Expr::Has(label),
            Tok::All => Expr::All,
            Tok::Global => Expr::Global,
            Tok::Label(label) => self.parse_comparison(label)?,
            Tok::LParen => {
                if self.depth >= MAX_NESTING_DEPTH {
                    return Err(self
                        .error(t.pos, format!("parentheses nested too deeply (at most {MAX_NESTING_DEPTH} levels)")));
                }
                self.depth += 1;
                let inner = self.parse_or()?;
                self.depth -= 1;
                let close = self.bump();
                if close.tok != Tok::RParen {
                    let open_col = SelectorError::at(self.input, t.pos, "").column;
                    return Err(self.error(
                        close.pos,
                        format!(
                            "unbalanced parenthesis: expected ')' to close the '(' at column {open_col}, found {}",
                            close.tok.describe()
                        ),
                    ));
                }
                inner
            }
            Tok::RParen if self.depth == 0 => {
                return Err(self.error(t.pos, "unbalanced parenthesis: ')' without a matching '('".to_string()))
            }
            other => {
                return Err(self.error(
                    t.pos,
                    format!("expected a label, has(…), all(), global(), '!' or '(', found {}", other.describe()),
                ))
            }
        };
        Ok(if negated { Expr::Not(Box::new(expr)) } else { expr })
    }

    /// After a label: an operator and its operand.
    fn parse_comparison(&mut self, label: String) -> Result<Expr, SelectorError> {
        let op = self.bump();
        match op.tok {
            Tok::Eq | Tok::Ne | Tok::Contains | Tok::StartsWith | Tok::EndsWith => {
                let v = self.bump();
                let Tok::Str(value) = v.tok else {
                    return Err(self.error(v.pos, expected_operand(&op.tok, &v.tok.describe())));
                };
                Ok(match op.tok {
                    Tok::Eq => Expr::Eq { label, value },
                    Tok::Ne => Expr::Ne { label, value },
                    Tok::Contains => Expr::Contains { label, value },
                    Tok::StartsWith => Expr::StartsWith { label, value },
                    _ => Expr::EndsWith { label, value },
                })
            }
            Tok::In | Tok::NotIn => {
                let open = self.bump();
                if open.tok != Tok::LBrace {
                    return Err(self.error(open.pos, expected_operand(&op.tok, &open.tok.describe())));
                }
                let values = self.parse_set_body()?;
                Ok(if op.tok == Tok::In { Expr::In { label, values } } else { Expr::NotIn { label, values } })
            }
            other => Err(self.error(
                op.pos,
                format!("expected an operator after label {label:?} ({OPERATOR_LIST}), found {}", other.describe()),
            )),
        }
    }

    /// After `{`: zero or more strings separated by commas, an optional
    /// trailing comma, then `}`.
    fn parse_set_body(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        let mut values = BTreeSet::new();
        loop {
            let t = self.bump();
            match t.tok {
                Tok::RBrace => return Ok(values),
                Tok::Str(v) => {
                    values.insert(v);
                }
                other => {
                    return Err(self.error(
                        t.pos,
                        format!("expected a quoted string or '}}' in set literal, found {}", other.describe()),
                    ))
                }
            }
            let sep = self.bump();
            match sep.tok {
                Tok::Comma => {}
                Tok::RBrace => return Ok(values),
                other => {
                    return Err(
                        self.error(sep.pos, format!("expected ',' or '}}' in set literal, found {}", other.describe()))
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn parse(s: &str) -> Selector {
        match Selector::parse(s) {
            Ok(sel) => sel,
            Err(e) => panic!("{s:?} should parse: {e}\n{}", e.caret()),
        }
    }

    fn err(s: &str) -> SelectorError {
        match Selector::parse(s) {
            Ok(sel) => panic!("{s:?} should not parse, got {}", sel.canonical()),
            Err(e) => e,
        }
    }

    fn eval(s: &str, pairs: &[(&str, &str)]) -> bool {
        parse(s).matches(&labels(pairs))
    }

    fn toks(s: &str) -> Result<Vec<Tok>, SelectorError> {
        tokenize(s).map(|ts| ts.into_iter().map(|t| t.tok).collect())
    }

    fn lbl(s: &str) -> Tok {
        Tok::Label(s.to_string())
    }

    fn st(s: &str) -> Tok {
        Tok::Str(s.to_string())
    }

    // --- Go tokenizer_test.go ------------------------------------------------

    #[test]
    fn go_tokenizer_table_valid() {
        use Tok::*;
        let a512 = "a".repeat(512);
        let cases: Vec<(String, Vec<Tok>)> = vec![
            (r#"a=="b""#.into(), vec![lbl("a"), Eq, st("b"), Eof]),
            (r#"a!="b""#.into(), vec![lbl("a"), Ne, st("b"), Eof]),
            (r#"a != "b""#.into(), vec![lbl("a"), Ne, st("b"), Eof]),
            (r#"(a=="b")"#.into(), vec![LParen, lbl("a"), Eq, st("b"), RParen, Eof]),
            (r#"label == "value""#.into(), vec![lbl("label"), Eq, st("value"), Eof]),
            (r#"label contains "value""#.into(), vec![lbl("label"), Contains, st("value"), Eof]),
            (r#"contains contains "contains""#.into(), vec![lbl("contains"), Contains, st("contains"), Eof]),
            ("contains contains 'contains'".into(), vec![lbl("contains"), Contains, st("contains"), Eof]),
            (r#"label contains"value""#.into(), vec![lbl("label"), Contains, st("value"), Eof]),
            (r#"label startswith "value""#.into(), vec![lbl("label"), StartsWith, st("value"), Eof]),
            (r#"label endswith "value""#.into(), vec![lbl("label"), EndsWith, st("value"), Eof]),
            (r#"label starts with "value""#.into(), vec![lbl("label"), StartsWith, st("value"), Eof]),
            (r#"startswith starts with "value""#.into(), vec![lbl("startswith"), StartsWith, st("value"), Eof]),
            (r#"label ends with "value""#.into(), vec![lbl("label"), EndsWith, st("value"), Eof]),
            (r#"endswith ends with "value""#.into(), vec![lbl("endswith"), EndsWith, st("value"), Eof]),
            (r#"label starts  with "value""#.into(), vec![lbl("label"), StartsWith, st("value"), Eof]),
            (r#"label ends  with "value""#.into(), vec![lbl("label"), EndsWith, st("value"), Eof]),
            (format!(r#"{a512} == "value""#), vec![lbl(&a512), Eq, st("value"), Eof]),
            (
                r#"a not in "bar" && !has(foo) || b in c"#.into(),
                vec![lbl("a"), NotIn, st("bar"), And, Not, Has("foo".into()), Or, lbl("b"), In, lbl("c"), Eof],
            ),
            ("has(calico/k8s_ns)".into(), vec![Has("calico/k8s_ns".into()), Eof]),
            ("has(calico/k8s_ns/role)".into(), vec![Has("calico/k8s_ns/role".into()), Eof]),
            ("has(calico/k8s_NS-.1/role)".into(), vec![Has("calico/k8s_NS-.1/role".into()), Eof]),
            (
                r#"calico/k8s_ns == "kube-system" && k8s-app == "kube-dns""#.into(),
                vec![lbl("calico/k8s_ns"), Eq, st("kube-system"), And, lbl("k8s-app"), Eq, st("kube-dns"), Eof],
            ),
            (
                r#"a  not  in  "bar"  &&  ! has( foo )  ||  b  in  c "#.into(),
                vec![lbl("a"), NotIn, st("bar"), And, Not, Has("foo".into()), Or, lbl("b"), In, lbl("c"), Eof],
            ),
            (
                r#"a notin"bar"&&!has(foo)||b in"c""#.into(),
                vec![lbl("a"), NotIn, st("bar"), And, Not, Has("foo".into()), Or, lbl("b"), In, st("c"), Eof],
            ),
            ("a not in {}".into(), vec![lbl("a"), NotIn, LBrace, RBrace, Eof]),
            (r#"a not in {"a"}"#.into(), vec![lbl("a"), NotIn, LBrace, st("a"), RBrace, Eof]),
            (r#"a not in {"a","B"}"#.into(), vec![lbl("a"), NotIn, LBrace, st("a"), Comma, st("B"), RBrace, Eof]),
            ("global()".into(), vec![Global, Eof]),
            ("global( )".into(), vec![Global, Eof]),
            ("all()".into(), vec![All, Eof]),
            ("all( )".into(), vec![All, Eof]),
        ];
        for (input, expected) in cases {
            match toks(&input) {
                Ok(got) => assert_eq!(got, expected, "tokens of {input:?}"),
                Err(e) => panic!("{input:?} should tokenize: {e}"),
            }
        }
    }

    #[test]
    fn go_tokenizer_table_invalid() {
        let a513 = format!(r#"{} == "value""#, "a".repeat(513));
        let cases = [
            a513.as_str(),
            r#"label == "value"#,
            "label == 'value",
            r#"label = "value""#,
            "all(",
            "global(",
            "has()",
            "has(foo",
            "has( foo ",
            r#"a == "b" & has(foo)"#,
            r#"a == "b" | has(foo)"#,
            r#"label starts foo "value""#,
            r#"label inf "value""#,
            r#"label ends foo "value""#,
            r#"label ends withs "value""#,
            r#"label squiggles "value""#,
        ];
        for input in cases {
            assert!(toks(input).is_err(), "{input:?} should fail to tokenize");
            assert!(Selector::parse(input).is_err(), "{input:?} should not parse");
        }
    }

    // --- Go parser_test.go -----------------------------------------------------

    type Labels<'a> = &'a [(&'a str, &'a str)];

    #[test]
    fn go_parser_selector_table() {
        let cases: Vec<(&str, Vec<Labels>, Vec<Labels>)> = vec![
            (r#"a == "b""#, vec![&[("a", "b")], &[("a", "b"), ("c", "d")]], vec![&[], &[("a", "c")], &[("c", "d")]]),
            (
                r#"a == "b" && c == "d""#,
                vec![&[("a", "b"), ("c", "d")]],
                vec![&[], &[("a", "b"), ("c", "e")], &[("a", "c"), ("c", "d")], &[("c", "d")], &[("a", "b")]],
            ),
            (
                r#"a == "b" || c == "d""#,
                vec![&[("a", "b"), ("c", "d")], &[("a", "b")], &[("c", "d")]],
                vec![&[], &[("a", "e"), ("c", "e")], &[("c", "e")], &[("a", "e")]],
            ),
            (r#"a in {"'", '"', "c"}"#, vec![&[("a", "c")], &[("a", "\"")], &[("a", "'")]], vec![&[], &[("a", "e")]]),
            (
                r#"a not in {"'", '"', "c"}"#,
                vec![&[], &[("a", "e")]],
                vec![&[("a", "c")], &[("a", "\"")], &[("a", "'")]],
            ),
            ("a == 'a'", vec![&[("a", "a")]], vec![]),
            (r#"a == "a""#, vec![&[("a", "a")]], vec![]),
            (r#"a != "b""#, vec![&[("a", "a")]], vec![]),
            (r#"a != "a""#, vec![&[]], vec![]),
            (
                r#"a contains "a""#,
                vec![&[("a", "a")], &[("a", "bab")], &[("a", "aaa"), ("b", "c")]],
                vec![&[], &[("a", "b")], &[("b", "aaa")]],
            ),
            (
                r#"a starts with "a""#,
                vec![&[("a", "a")], &[("a", "abb")], &[("a", "aaa"), ("b", "c")]],
                vec![&[], &[("a", "b")], &[("a", "baa")], &[("b", "aaa")]],
            ),
            (
                r#"a ends with "a""#,
                vec![&[("a", "a")], &[("a", "bba")], &[("a", "aaa"), ("b", "c")]],
                vec![&[], &[("a", "b")], &[("a", "aab")], &[("b", "aaa")]],
            ),
            (r#"a in {"a"}"#, vec![&[("a", "a")]], vec![]),
            (r#"!a in {"a"}"#, vec![&[("a", "b")]], vec![]),
            (r#"a in {"a", "b"}"#, vec![&[("a", "a")]], vec![]),
            (r#"a in {"a", "b"}"#, vec![&[("a", "b")]], vec![]),
            (r#"a not in {"d", "e"}"#, vec![&[("a", "a")]], vec![]),
            ("has(a)", vec![&[("a", "b")]], vec![]),
            ("!has(a)", vec![&[("b", "b")]], vec![]),
            ("", vec![&[]], vec![]),
            (" ", vec![&[]], vec![]),
            ("", vec![&[("a", "b")]], vec![]),
            ("all()", vec![&[]], vec![]),
            (" all()", vec![&[]], vec![]),
            (" all()", vec![&[("a", "b")]], vec![]),
            ("global()", vec![&[]], vec![]),
            (" global()", vec![&[]], vec![]),
            (" global()", vec![&[("a", "b")]], vec![]),
            ("a == 'a'", vec![], vec![&[("a", "b")]]),
            ("a == 'a'", vec![], vec![&[]]),
            (r#"a != "a""#, vec![], vec![&[("a", "a")]]),
            ("a != 'a'", vec![], vec![&[("a", "a")]]),
            (r#"a in {"a"}"#, vec![], vec![&[("a", "b")]]),
            (r#"a not in {"a"}"#, vec![], vec![&[("a", "a")]]),
            (r#"a in {"a", "b"}"#, vec![], vec![&[("a", "c")]]),
            ("has(b)", vec![], vec![&[("a", "b")]]),
            ("!!has(b)", vec![], vec![&[("a", "b")]]),
            ("! has(a)", vec![], vec![&[("a", "b")]]),
            ("!has(a)", vec![], vec![&[("a", "b")]]),
            ("!!! has(a)", vec![], vec![&[("a", "b")]]),
            ("!!!has(a)", vec![], vec![&[("a", "b")]]),
            ("!! ! has(a)", vec![], vec![&[("a", "b")]]),
            ("! !!has(a)", vec![], vec![&[("a", "b")]]),
            ("a == 'a1' && b == 'b1'", vec![&[("a", "a1"), ("b", "b1")]], vec![]),
            ("a == 'a1' && b != 'b1'", vec![], vec![&[("a", "a1"), ("b", "b1")]]),
            ("a != 'a1' && b == 'b1'", vec![], vec![&[("a", "a1"), ("b", "b1")]]),
            ("a != 'a1' && b != 'b1'", vec![], vec![&[("a", "a1"), ("b", "b1")]]),
            ("a != 'a1' && !b == 'b1'", vec![], vec![&[("a", "a1"), ("b", "b1")]]),
            ("!a == 'a1' && b == 'b1'", vec![], vec![&[("a", "a1"), ("b", "b1")]]),
            ("has(a) && !has(b)", vec![&[("a", "a")]], vec![]),
            ("!has(b) && has(a)", vec![&[("a", "a")]], vec![]),
            ("!(!has(a) || has(b))", vec![&[("a", "a")]], vec![]),
            ("!(has(b) || !has(a))", vec![&[("a", "a")]], vec![]),
            ("a == 'a1' || b == 'b1'", vec![&[("a", "a1"), ("b", "b1")]], vec![]),
            ("a == 'a1' || b != 'b1'", vec![&[("a", "a1"), ("b", "b1")]], vec![]),
            ("a != 'a1' || b == 'b1'", vec![&[("a", "a1"), ("b", "b1")]], vec![]),
            ("a != 'a1' || b != 'b1'", vec![], vec![&[("a", "a1"), ("b", "b1")]]),
            ("! a == 'a1' || ! b == 'b1'", vec![], vec![&[("a", "a1"), ("b", "b1")]]),
        ];
        for (input, matching, non_matching) in cases {
            let sel = parse(input);
            let canon = parse(&sel.canonical());
            for m in matching {
                assert!(sel.matches(&labels(m)), "{input:?} should match {m:?}");
                assert!(canon.matches(&labels(m)), "canonical of {input:?} should match {m:?}");
            }
            for m in non_matching {
                assert!(!sel.matches(&labels(m)), "{input:?} should not match {m:?}");
                assert!(!canon.matches(&labels(m)), "canonical of {input:?} should not match {m:?}");
            }
        }
    }

    #[test]
    fn go_parser_bad_selectors() {
        let bad = [
            "b == b",
            "b contains b",
            "b starts with b",
            "b ends with b",
            "'b1' == b",
            "b",
            "a b",
            "!",
            r#"foo == "bar" &"#,
            r#"foo == "bar" |"#,
            "foo != ||",
            r#"foo in {"", ||"#,
            r#"foo in """#,
            r#""FOO"#,
            r#""FOO'"#,
            "'FOO",
            "(",
            r#"(a == "foo""#,
            ")",
            "()",
            "%",
            r#"a == "b" && %"#,
            r#"a == "b" || %"#,
            "a ",
            "has(foo) &&",
        ];
        for input in bad {
            let e = err(input);
            assert_eq!(e.input, input);
            assert!(Selector::validate(input).is_err());
            assert!(input.parse::<Selector>().is_err());
        }
    }

    #[test]
    fn go_canonicalisation_table() {
        let cases = [
            ("", "all()"),
            (" all() ", "all()"),
            (" (all() )", "all()"),
            ("! (has( b)||! has(a ))", "!(has(b) || !has(a))"),
            (r#"! (a == "b"&&! c != "d")"#, r#"!(a == "b" && !c != "d")"#),
            (r#"a == "'""#, r#"a == "'""#),
            (r#"a == '"'"#, r#"a == '"'"#),
            (r#"a contains '"'"#, r#"a contains '"'"#),
            (r#"a contains "'""#, r#"a contains "'""#),
            (r#"a startswith '"'"#, r#"a starts with '"'"#),
            (r#"a endswith "'""#, r#"a ends with "'""#),
            (r#"a!='"'"#, r#"a != '"'"#),
            (r#"a in {"d"}"#, r#"a in {"d"}"#),
            (r#"a in {"a", "b"}"#, r#"a in {"a", "b"}"#),
            (r#"a in {"d", "a", "b"}"#, r#"a in {"a", "b", "d"}"#),
            (r#"a in {"z", "x", "y", "a"}"#, r#"a in {"a", "x", "y", "z"}"#),
            (r#"a in {"z", "z", "x", "y", "x", "a"}"#, r#"a in {"a", "x", "y", "z"}"#),
            // From the Go visitor tests (without the label prefix).
            ("k == 'v'", r#"k == "v""#),
            ("k starts with 'v'", r#"k starts with "v""#),
            ("k == 'v' && x == 'y'", r#"(k == "v" && x == "y")"#),
            ("k == 'v' || has(x)", r#"(k == "v" || has(x))"#),
            ("!(k == 'v')", r#"!k == "v""#),
            ("k not in {'v'}", r#"k not in {"v"}"#),
            (
                "!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))",
                r#"!(!((k == "v" && has(t)) || all()) && a in {"b", "c"})"#,
            ),
        ];
        for (input, expected) in cases {
            let sel = parse(input);
            assert_eq!(sel.canonical(), expected, "canonical of {input:?}");
            assert_eq!(sel.source(), input);
            let again = parse(&sel.canonical());
            assert_eq!(again.canonical(), expected, "round trip of {input:?}");
            assert_eq!(normalise(input), expected);
        }
    }

    // --- Operators, precedence, quoting ---------------------------------------

    #[test]
    fn every_operator_matches_and_rejects() {
        let l = [("k", "hello")];
        let cases = [
            ("has(k)", true),
            ("has(x)", false),
            ("all()", true),
            ("global()", true),
            ("k == 'hello'", true),
            ("k == 'hell'", false),
            ("k != 'hello'", false),
            ("k != 'hell'", true),
            ("k in {'a', 'hello'}", true),
            ("k in {'a', 'b'}", false),
            ("k not in {'a', 'hello'}", false),
            ("k not in {'a', 'b'}", true),
            ("k contains 'ell'", true),
            ("k contains 'xyz'", false),
            ("k contains ''", true),
            ("k starts with 'he'", true),
            ("k starts with 'lo'", false),
            ("k ends with 'lo'", true),
            ("k ends with 'he'", false),
            ("k == ''", false),
        ];
        for (input, expected) in cases {
            assert_eq!(eval(input, &l), expected, "{input:?} against {l:?}");
        }
        assert!(eval("k == ''", &[("k", "")]));
        assert!(eval("k in {''}", &[("k", "")]));
    }

    #[test]
    fn missing_key_semantics() {
        let none: &[(&str, &str)] = &[("other", "v")];
        let cases = [
            ("has(k)", false),
            ("!has(k)", true),
            ("k == 'v'", false),
            ("k == ''", false),
            ("k in {'v'}", false),
            ("k in {''}", false),
            ("k in {}", false),
            ("k contains ''", false),
            ("k starts with ''", false),
            ("k ends with ''", false),
            ("k contains 'v'", false),
            ("k starts with 'v'", false),
            ("k ends with 'v'", false),
            ("k != 'v'", true),
            ("k != ''", true),
            ("k not in {'v'}", true),
            ("k not in {}", true),
            ("!k == 'v'", true),
            ("!k != 'v'", false),
            ("all()", true),
            ("global()", true),
        ];
        for (input, expected) in cases {
            assert_eq!(eval(input, none), expected, "{input:?} with k missing");
            assert_eq!(eval(input, &[]), expected, "{input:?} with no labels");
        }
    }

    #[test]
    fn empty_set_literals() {
        assert!(!eval("k in {}", &[("k", "")]));
        assert!(eval("k not in {}", &[("k", "")]));
        assert_eq!(parse("k in {}").canonical(), "k in {}");
        assert_eq!(parse("k not in{ }").canonical(), "k not in {}");
    }

    #[test]
    fn precedence() {
        // a || b && c  ==  a || (b && c)
        let s = parse("a == '1' || b == '1' && c == '1'");
        assert_eq!(s.canonical(), r#"(a == "1" || (b == "1" && c == "1"))"#);
        assert!(s.matches(&labels(&[("a", "1")])));
        assert!(!s.matches(&labels(&[("b", "1")])));
        assert!(s.matches(&labels(&[("b", "1"), ("c", "1")])));
        // a && b || c  ==  (a && b) || c
        let s = parse("a == '1' && b == '1' || c == '1'");
        assert_eq!(s.canonical(), r#"((a == "1" && b == "1") || c == "1")"#);
        assert!(s.matches(&labels(&[("c", "1")])));
        assert!(!s.matches(&labels(&[("a", "1")])));
        // Parentheses override.
        let s = parse("(a == '1' || b == '1') && c == '1'");
        assert_eq!(s.canonical(), r#"((a == "1" || b == "1") && c == "1")"#);
        assert!(!s.matches(&labels(&[("a", "1")])));
        assert!(s.matches(&labels(&[("a", "1"), ("c", "1")])));
        // ! binds to the single operation, not to the && chain.
        let s = parse("!has(a) && has(b)");
        assert_eq!(s.canonical(), "(!has(a) && has(b))");
        assert!(s.matches(&labels(&[("b", "1")])));
        assert!(!s.matches(&labels(&[])));
        let s = parse("!(has(a) && has(b))");
        assert_eq!(s.canonical(), "!(has(a) && has(b))");
        assert!(s.matches(&labels(&[])));
        // ! binds tighter than the comparison's label: `!a == 'x'` is `!(a == 'x')`.
        let s = parse("!a == 'x' || has(b)");
        assert_eq!(s.canonical(), r#"(!a == "x" || has(b))"#);
        assert!(s.matches(&labels(&[])));
        assert!(!s.matches(&labels(&[("a", "x")])));
        // Chains flatten.
        assert_eq!(
            parse("has(a) && has(b) && has(c) || has(d) || has(e)").canonical(),
            "((has(a) && has(b) && has(c)) || has(d) || has(e))"
        );
        // Repeated ! folds by parity; nested (!(...)) does not.
        assert_eq!(parse("!!!!has(a)").canonical(), "has(a)");
        assert_eq!(parse("! ! !has(a)").canonical(), "!has(a)");
        assert_eq!(parse("!(!has(a))").canonical(), "!!has(a)");
        assert_eq!(parse("((((has(a)))))").canonical(), "has(a)");
    }

    #[test]
    fn quoting() {
        assert!(eval(r#"k == "v""#, &[("k", "v")]));
        assert!(eval("k == 'v'", &[("k", "v")]));
        assert!(eval(r#"k == "it's""#, &[("k", "it's")]));
        assert!(eval(r#"k == 'say "hi"'"#, &[("k", "say \"hi\"")]));
        assert_eq!(parse(r#"k == "it's""#).canonical(), r#"k == "it's""#);
        assert_eq!(parse(r#"k == 'say "hi"'"#).canonical(), r#"k == 'say "hi"'"#);
        // No escapes: a backslash is an ordinary character and ends nothing.
        assert!(eval(r#"k == 'a\'"#, &[("k", "a\\")]));
        assert_eq!(err(r#"k == "a\"b""#).column, 11);
        // Anything but the closing quote may appear inside, even non-ASCII,
        // operators and newlines.
        assert!(eval("k == 'é && ||'", &[("k", "é && ||")]));
        assert!(eval("k == 'a\nb'", &[("k", "a\nb")]));
        assert!(eval("k == ''", &[("k", "")]));
        // Values in sets of either quote kind.
        assert!(eval(r#"k in {'a', "b"}"#, &[("k", "b")]));
    }

    #[test]
    fn set_literals() {
        assert_eq!(parse("k in {}").canonical(), "k in {}");
        assert_eq!(parse("k in {'a',}").canonical(), r#"k in {"a"}"#);
        assert_eq!(parse("k in {'a','b' , }").canonical(), r#"k in {"a", "b"}"#);
        assert_eq!(parse("k in{'b','a','b'}").canonical(), r#"k in {"a", "b"}"#);
        assert_eq!(parse(r#"k in {'"', "'"}"#).canonical(), r#"k in {'"', "'"}"#);
        // Leading comma, lone comma, double comma, missing comma, missing brace.
        for (input, column) in [
            ("k in {,'a'}", 7),
            ("k in {,}", 7),
            ("k in {'a',,}", 11),
            ("k in {'a' 'b'}", 11),
            ("k in {'a'", 10),
            ("k in {'a',", 11),
            ("k in 'a'", 6),
            ("k in ('a')", 6),
            ("k not in {has(a)}", 11),
        ] {
            assert_eq!(err(input).column, column, "column for {input:?}");
        }
    }

    // --- Spacing --------------------------------------------------------------

    #[test]
    fn spacing_rules() {
        let ok = [
            "has( a )",
            "has(\ta\t)",
            "all( )",
            "global(\t)",
            "\t k == 'v' \t",
            "k=='v'",
            "k!='v'",
            "k in{'v'}",
            "k notin {'v'}",
            "k not  \t in {'v'}",
            "k startswith 'v'",
            "k starts\twith 'v'",
            "k endswith'v'",
            "k contains'v'",
            "!has(a)&&has(b)||has(c)",
            "( has(a) )",
        ];
        for input in ok {
            parse(input);
        }
        let bad = [
            ("has (a)", 5), // label "has" then '(' is not an operator
            ("all ()", 5),
            ("global ()", 8),
            ("k = = 'v'", 3),
            ("k ! = 'v'", 5), // the tokenizer fails on the lone '=' first
            ("k & & has(a)", 3),
            ("k containsx 'v'", 3),
            ("k inx {'v'}", 3),
            ("k not inx {'v'}", 3),
            ("k starts withx 'v'", 3),
            ("k == 'v'\n", 9),
            ("k ==\n'v'", 5),
            ("k\u{a0}== 'v'", 2),
        ];
        for (input, column) in bad {
            assert_eq!(err(input).column, column, "column for {input:?}");
        }
    }

    #[test]
    fn newline_is_not_whitespace() {
        let e = err("has(a) &&\nhas(b)");
        assert_eq!(e.column, 10);
        assert!(e.message.contains("line break"), "{}", e.message);
        let e = err("has(a)\r\n");
        assert_eq!(e.column, 7);
        // Go's Normalise trims first, so trailing newlines are fine there.
        assert_eq!(normalise("has(a)\n"), "has(a)");
        assert_eq!(normalise("  bad ==  "), "bad ==");
    }

    // --- Keys ------------------------------------------------------------------

    #[test]
    fn key_charset_and_length() {
        for key in [
            "a",
            "A",
            "0",
            "_",
            ".",
            "/",
            "-",
            "k8s-app",
            "projectcalico.org/namespace",
            "a/b/c",
            "-leading-dash",
            "trailing.",
            "//",
            "123",
        ] {
            let sel = parse(&format!("{key} == 'v'"));
            assert!(sel.matches(&labels(&[(key, "v")])), "key {key:?}");
            assert!(parse(&format!("has({key})")).matches(&labels(&[(key, "")])));
        }
        let k512 = "k".repeat(512);
        let k513 = "k".repeat(513);
        assert!(parse(&format!("{k512} == 'v'")).matches(&labels(&[(&k512, "v")])));
        parse(&format!("has({k512})"));
        let e = err(&format!("{k513} == 'v'"));
        assert_eq!(e.column, 1);
        assert!(e.message.contains("too long"), "{}", e.message);
        let e = err(&format!("has( {k513})"));
        assert_eq!(e.column, 6);
        let e = err(&format!("has(a) || {k513} == 'v'"));
        assert_eq!(e.column, 11);
        for (input, column) in [
            ("k:x == 'v'", 2),
            ("k@x == 'v'", 2),
            ("k x == 'v'", 3),
            ("has(k:x)", 6),
            ("has(k x)", 7),
            ("ké == 'v'", 2),
            ("@", 1),
            ("*", 1),
        ] {
            assert_eq!(err(input).column, column, "column for {input:?}");
        }
    }

    #[test]
    fn keywords_are_ordinary_labels_in_label_position() {
        assert!(eval("in == 'x'", &[("in", "x")]));
        assert!(eval("not in {'x'}", &[("not", "x")]));
        assert!(eval("contains contains 'x'", &[("contains", "axb")]));
        assert!(eval("has == 'x'", &[("has", "x")]));
        assert!(eval("all == 'x'", &[("all", "x")]));
        assert!(eval("global != 'x'", &[]));
        assert!(eval("has(has) && has(all)", &[("has", ""), ("all", "")]));
    }

    // --- Error positions and messages ------------------------------------------

    #[test]
    fn error_columns_and_messages() {
        let cases: &[(&str, usize, &str)] = &[
            ("a == b", 6, "expected a quoted string after '=='"),
            ("a != ", 6, "expected a quoted string after '!='"),
            ("a contains b", 12, "expected a quoted string after 'contains'"),
            ("a starts with b", 15, "expected a quoted string after 'starts with'"),
            ("a ends with {'b'}", 13, "expected a quoted string after 'ends with'"),
            ("a in 'b'", 6, "expected a set literal"),
            ("a not in 'b'", 10, "expected a set literal"),
            ("a == 'b' && c @ 'd'", 15, "expected an operator after label \"c\""),
            ("a == 'b' && %", 13, "unexpected character '%'"),
            ("has(a) && @b", 11, "unexpected character '@'"),
            ("a == \"b", 6, "unterminated string"),
            ("a == 'b", 6, "unterminated string"),
            ("\"FOO'", 1, "unterminated string"),
            ("(a == 'b'", 10, "unbalanced parenthesis"),
            ("((a == 'b')", 12, "unbalanced parenthesis"),
            ("a == 'b')", 9, "unbalanced parenthesis"),
            (")", 1, "unbalanced parenthesis"),
            ("has(a) || )", 11, "unbalanced parenthesis"),
            ("()", 2, "expected a label"),
            ("(", 2, "expected a label"),
            ("!", 2, "expected a label"),
            ("has(foo) &&", 12, "expected a label"),
            ("'b1' == b", 1, "expected a label"),
            ("a = 'b'", 3, "expected '=='"),
            ("a == 'b' & has(c)", 10, "expected '&&'"),
            ("a == 'b' | has(c)", 10, "expected '||'"),
            ("has()", 5, "expected a label name after 'has('"),
            ("has(foo", 8, "expected ')' to close 'has('"),
            ("has( foo bar)", 10, "expected ')' to close 'has('"),
            ("all(", 5, "expected ')' after 'all('"),
            ("global(x)", 8, "expected ')' after 'global('"),
            ("b", 2, "expected an operator after label \"b\""),
            ("a ", 3, "expected an operator after label \"a\""),
            ("a b", 3, "expected an operator after label \"a\""),
            ("a (", 3, "expected an operator after label \"a\""),
            ("has(a) has(b)", 8, "expected '&&', '||' or end of selector"),
            ("a == 'b' c", 10, "expected '&&', '||' or end of selector"),
            ("foo in {\"\", ||", 13, "expected a quoted string or '}' in set literal"),
            ("k in {'a' 'b'}", 11, "expected ',' or '}' in set literal"),
            ("é == 'x'", 1, "unexpected character 'é'"),
            ("k == 'é' && é", 13, "unexpected character 'é'"),
        ];
        for &(input, column, fragment) in cases {
            let e = err(input);
            assert_eq!(e.column, column, "column for {input:?}: {e}\n{}", e.caret());
            assert!(
                e.message.contains(fragment),
                "message for {input:?} should contain {fragment:?}, got {:?}",
                e.message
            );
            assert_eq!(e.input, input);
        }
    }

    #[test]
    fn error_display_and_caret() {
        let e = err("rr-partition = 'A'");
        assert_eq!(e.column, 14);
        assert_eq!(
            e.to_string(),
            "invalid selector \"rr-partition = 'A'\": expected '==' (a single '=' is not an operator) at column 14"
        );
        assert_eq!(e.caret(), "rr-partition = 'A'\n             ^");

        // Caret one past the end when the input ends too early.
        let e = err("a ==");
        assert_eq!(e.caret(), "a ==\n    ^");

        // Tabs are reproduced so the caret lines up; newlines are shown as ↵.
        let e = err("a\t== b");
        assert_eq!(e.column, 6);
        assert_eq!(e.caret(), "a\t== b\n \t   ^");
        let e = err("has(a)\nx");
        assert_eq!(e.caret(), "has(a)\u{21b5}x\n      ^");

        // Columns count characters, not bytes.
        let e = err("k == 'ééé' && %");
        assert_eq!(e.column, 15);
        assert_eq!(e.caret(), "k == 'ééé' && %\n              ^");
    }

    // --- API ---------------------------------------------------------------------

    #[test]
    fn api_surface() {
        let sel: Selector = match "  has(a)  ".parse() {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(sel.source(), "  has(a)  ");
        assert_eq!(sel.to_string(), "  has(a)  ");
        assert_eq!(sel.canonical(), "has(a)");
        assert_eq!(sel.expr(), &Expr::Has("a".into()));

        let all = Selector::all();
        assert_eq!(all.source(), "all()");
        assert_eq!(all.canonical(), "all()");
        assert!(all.matches(&BTreeMap::new()));
        assert_eq!(Selector::default(), all);

        let empty = parse("");
        assert_eq!(empty.source(), "");
        assert_eq!(empty.canonical(), "all()");
        assert!(empty.matches(&labels(&[("x", "y")])));
        assert_eq!(parse(" \t ").expr(), &Expr::All);

        let sel = parse("a in {'x'}");
        assert!(sel.matches_with(|k| (k == "a").then_some("x")));
        assert!(!sel.matches_with(|_| None));
        assert!(Selector::validate("a == 'b'").is_ok());
    }

    #[test]
    fn procedure_selectors() {
        let public = labels(&[("cloud-type", "public")]);
        let private = labels(&[("cloud-type", "private")]);
        let bare = labels(&[]);
        let rr_a = labels(&[("rr-partition", "A"), ("routeReflector", "")]);
        let rr_b = labels(&[("rr-partition", "B")]);
        let group_one = labels(&[("group", "one")]);
        let rr_true = labels(&[("route-reflector", "true")]);

        let s = parse("cloud-type != 'public'");
        assert!(!s.matches(&public));
        assert!(s.matches(&private));
        assert!(s.matches(&bare));
        assert_eq!(s.canonical(), r#"cloud-type != "public""#);

        let s = parse("cloud-type == 'public'");
        assert!(s.matches(&public));
        assert!(!s.matches(&private));
        assert!(!s.matches(&bare));

        let s = parse("rr-partition == 'A'");
        assert!(s.matches(&rr_a));
        assert!(!s.matches(&rr_b));
        assert!(!s.matches(&bare));

        let s = parse("has(rr-partition)");
        assert!(s.matches(&rr_a));
        assert!(s.matches(&rr_b));
        assert!(!s.matches(&bare));

        let s = parse("all()");
        assert!(s.matches(&bare) && s.matches(&public) && s.matches(&rr_a));

        let s = parse("!has(routeReflector)");
        assert!(!s.matches(&rr_a));
        assert!(s.matches(&rr_b));
        assert!(s.matches(&bare));
        assert_eq!(s.canonical(), "!has(routeReflector)");

        let s = parse("group=='one'");
        assert!(s.matches(&group_one));
        assert!(!s.matches(&labels(&[("group", "two")])));
        assert!(!s.matches(&bare));
        assert_eq!(s.canonical(), r#"group == "one""#);

        let s = parse("route-reflector == 'true'");
        assert!(s.matches(&rr_true));
        assert!(!s.matches(&labels(&[("route-reflector", "false")])));
        assert!(!s.matches(&bare));
    }

    #[test]
    fn nesting_limit() {
        let depth = MAX_NESTING_DEPTH;
        let ok = format!("{}has(a) && has(b){}", "!(".repeat(depth), ")".repeat(depth));
        let sel = parse(&ok);
        // An even number of nested negations.
        assert!(!sel.matches(&labels(&[])));
        assert!(sel.matches(&labels(&[("a", ""), ("b", "")])));
        let canonical = format!("{}(has(a) && has(b))", "!".repeat(depth));
        assert_eq!(sel.canonical(), canonical);
        // Go folds the now-adjacent '!'s on re-parse.
        assert_eq!(parse(&canonical).canonical(), "(has(a) && has(b))");
        let too_deep = format!("{}has(a){}", "(".repeat(depth + 1), ")".repeat(depth + 1));
        let e = err(&too_deep);
        assert_eq!(e.column, depth + 1);
        assert!(e.message.contains("nested too deeply"), "{}", e.message);
    }

    #[test]
    fn no_panics_on_odd_input() {
        // Every prefix of some valid selectors either parses or errors with a
        // column inside (or one past) the input.
        let inputs = [
            r#"!(a in {"x", 'y',} && b not in {}) || has( c ) && d starts with "é""#,
            "k8s-app ends with 'dns' || global() && all( ) || e contains \"'\"",
        ];
        for input in inputs {
            for (i, _) in input.char_indices().chain([(input.len(), ' ')]) {
                let prefix = &input[..i];
                if let Err(e) = Selector::parse(prefix) {
                    assert!(e.column >= 1 && e.column <= prefix.chars().count() + 1);
                    let _ = e.caret();
                }
            }
        }
        assert!(Selector::parse(input_with_nul()).is_err());
    }

    fn input_with_nul() -> &'static str {
        "has(a)\0"
    }
}
