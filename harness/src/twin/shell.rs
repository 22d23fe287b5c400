//! POSIX-shell-like splitting of an operator's script into command lines.
//!
//! rrlab "types" the command lines of a runbook against a simulated datastore.
//! This module does what a shell does before it runs anything: it splits the
//! script into commands and words, removes quotes, expands `$VAR`/`${VAR}`
//! from a caller-supplied environment and collects heredoc bodies and
//! here-strings as the command's standard input. It executes nothing.
//!
//! Supported: blanks between words, `'single'` and `"double"` quotes,
//! backslash escapes, backslash-newline continuation, `#` comments at the
//! start of a word, `;` and newline as separators, heredocs (`<<EOF`,
//! `<< EOF`, `<<'EOF'`, `<<"EOF"`, `<<-EOF`) anywhere in a command,
//! here-strings (`<<<word`), `$NAME`/`${NAME}` expansion (unquoted and inside
//! double quotes or unquoted heredocs; unquoted results are split into
//! fields at blanks, as a shell does), and commands made only of
//! assignments (`NODE=rr1`, `export NODE=rr1`), which set a variable for the
//! lines that follow (they are still returned, so a transcript shows them).
//!
//! Not supported, and reported as a [`ShellError`] naming line and column:
//! pipes, `&&`, `||`, `&`, redirections other than heredocs and
//! here-strings, subshells, `$(...)`, backticks, `$((...))`, special
//! parameters (`$1`, `$?`, ...), `${NAME:-word}`-style expansions, `$'...'`
//! quoting, and any variable that is not set (rrlab behaves as `set -u`).
//! Globs and `~` are left as typed (no file system is consulted).

use std::collections::HashMap;
use thiserror::Error;

/// One command as the shell would run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The words after quote removal and expansion.
    pub argv: Vec<String>,
    /// The heredoc body or here-string fed to the command (the last one if
    /// several are given, as in a shell).
    pub stdin: Option<String>,
    /// 1-based line where the command starts.
    pub line: usize,
    /// The command as typed, from its first word to its last token
    /// (continuation lines included, heredoc body and trailing comment not).
    pub text: String,
}

/// A script the shell layer cannot split.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ShellError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    pub message: String,
}

/// Splits `src` into command lines with an empty environment.
pub fn parse_script(src: &str) -> Result<Vec<CommandLine>, ShellError> {
    parse_script_with_env(src, &HashMap::new())
}

/// Splits `src` into command lines, expanding `$NAME` and `${NAME}` from `env`
/// (and from assignment-only commands earlier in the script).
pub fn parse_script_with_env(src: &str, env: &HashMap<String, String>) -> Result<Vec<CommandLine>, ShellError> {
    let chars: Vec<char> = src.chars().collect();
    let mut line_starts = vec![0usize];
    for (k, c) in chars.iter().enumerate() {
        if *c == '\n' {
            line_starts.push(k + 1);
        }
    }
    let identity: Vec<usize> = (0..=chars.len()).collect();
    let mut p = Parser {
        s: chars,
        ident: identity,
        i: 0,
        line_starts,
        env: env.clone(),
        out: Vec::new(),
        cur: None,
        pending: Vec::new(),
        awaiting: Vec::new(),
    };
    p.run()?;
    Ok(p.out)
}

// ---------------------------------------------------------------------------

enum Redir {
    HereString(String),
    Heredoc(usize),
}

struct Builder {
    start: usize,
    end: usize,
    argv: Vec<String>,
    redirs: Vec<Redir>,
    /// A word that is not an assignment has been seen.
    saw_command_word: bool,
    /// The assignment words (`NAME=value`) seen before the command word
    /// (or after `export`).
    assignments: Vec<(String, String)>,
}

struct Pending {
    delim: String,
    quoted: bool,
    strip_tabs: bool,
    op_pos: usize,
    body: Option<String>,
}

struct Parser {
    s: Vec<char>,
    ident: Vec<usize>,
    i: usize,
    line_starts: Vec<usize>,
    env: HashMap<String, String>,
    out: Vec<CommandLine>,
    cur: Option<Builder>,
    pending: Vec<Pending>,
    /// Commands of the current line whose stdin waits for heredoc bodies.
    awaiting: Vec<(usize, Vec<Redir>)>,
}

/// Collects the fields of one shell word.
struct WordBuf {
    fields: Vec<String>,
    cur: String,
    started: bool,
}

impl WordBuf {
    fn new() -> Self {
        WordBuf { fields: Vec::new(), cur: String::new(), started: false }
    }
    fn lit(&mut self, c: char) {
        self.cur.push(c);
        self.started = true;
    }
    fn lit_str(&mut self, s: &str) {
        self.cur.push_str(s);
        self.started = true;
    }
    fn quoted_empty(&mut self) {
        self.started = true;
    }
    /// An unquoted expansion: split into fields at blanks.
    fn split_str(&mut self, s: &str) {
        for c in s.chars() {
            if matches!(c, ' ' | '\t' | '\n') {
                if self.started {
                    self.fields.push(std::mem::take(&mut self.cur));
                    self.started = false;
                }
            } else {
                self.lit(c);
            }
        }
    }
    fn finish(mut self) -> Vec<String> {
        if self.started {
            self.fields.push(self.cur);
        }
        self.fields
    }
}

struct Word {
    fields: Vec<String>,
    assignment: Option<(String, String)>,
}

enum Expansion {
    /// `$` is literal (consumes one char).
    Literal,
    /// The value, and how many chars were consumed.
    Value(String, usize),
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}
fn is_name(s: &str) -> bool {
    let mut it = s.chars();
    match it.next() {
        Some(c) if is_name_start(c) => it.all(is_name_char),
        _ => false,
    }
}
fn is_word_end(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | ';' | '|' | '&' | '<' | '>' | '(' | ')')
}

const NO_SUBST: &str =
    "command substitution $(...) is not supported: rrlab runs each command itself; write the value or set a variable";
const NO_BACKTICK: &str =
    "command substitution `...` is not supported: rrlab runs each command itself; write the value or set a variable";

impl Parser {
    fn pos(&self, idx: usize) -> (usize, usize) {
        let line = match self.line_starts.binary_search(&idx) {
            Ok(l) => l,
            Err(l) => l.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        (line + 1, idx.saturating_sub(start) + 1)
    }

    fn err(&self, idx: usize, message: impl Into<String>) -> ShellError {
        let (line, column) = self.pos(idx);
        ShellError { line, column, message: message.into() }
    }

    fn at(&self, k: usize) -> Option<char> {
        self.s.get(k).copied()
    }

    fn builder(&mut self, start: usize) -> &mut Builder {
        self.cur.get_or_insert_with(|| Builder {
            start,
            end: start,
            argv: Vec::new(),
            redirs: Vec::new(),
            saw_command_word: false,
            assignments: Vec::new(),
        })
    }

    fn run(&mut self) -> Result<(), ShellError> {
        loop {
            let Some(c) = self.at(self.i) else {
                self.end_command(None)?;
                if let Some(p) = self.pending.first() {
                    let (line, _) = self.pos(p.op_pos);
                    return Err(
                        self.err(p.op_pos, format!("heredoc {} is never closed (started at line {line})", p.delim))
                    );
                }
                self.resolve_awaiting();
                return Ok(());
            };
            let next = self.at(self.i + 1);
            match c {
                ' ' | '\t' | '\r' => self.i += 1,
                '\\' if next == Some('\n') => self.i += 2,
                '#' => {
                    while let Some(c) = self.at(self.i) {
                        if c == '\n' {
                            break;
                        }
                        self.i += 1;
                    }
                }
                '\n' => {
                    self.end_command(None)?;
                    self.i += 1;
                    self.read_heredoc_bodies()?;
                    self.resolve_awaiting();
                }
                ';' => {
                    if next == Some(';') {
                        return Err(self.err(self.i, "';;' is only valid in a case statement, which is not supported"));
                    }
                    self.end_command(Some(self.i))?;
                    self.i += 1;
                }
                '|' => {
                    return Err(if next == Some('|') {
                        self.err(self.i, "'||' is not supported: rrlab runs each command itself and stops at the first failure; write one command per line")
                    } else {
                        self.err(self.i, "pipes are not supported: rrlab runs each command itself")
                    });
                }
                '&' => {
                    return Err(if next == Some('&') {
                        self.err(self.i, "'&&' is not supported: rrlab runs each command itself and stops at the first failure; write one command per line")
                    } else if next == Some('>') {
                        self.err(
                            self.i,
                            "output redirection is not supported: rrlab captures each command's output itself",
                        )
                    } else {
                        self.err(self.i, "background jobs ('&') are not supported: rrlab runs each command itself")
                    });
                }
                '>' => {
                    return Err(self.err(
                        self.i,
                        "output redirection ('>') is not supported: rrlab captures each command's output itself",
                    ));
                }
                '(' | ')' => {
                    return Err(self.err(self.i, format!("subshells and grouping ('{c}') are not supported")));
                }
                '<' => {
                    if next == Some('<') && self.at(self.i + 2) == Some('<') {
                        self.here_string()?;
                    } else if next == Some('<') {
                        self.heredoc_op()?;
                    } else if next == Some('(') {
                        return Err(self.err(self.i, "process substitution '<(...)' is not supported"));
                    } else {
                        return Err(self.err(
                            self.i,
                            "input redirection from a file ('<') is not supported: give the input in a heredoc (<<EOF)",
                        ));
                    }
                }
                _ => {
                    let start = self.i;
                    let in_prefix = match &self.cur {
                        None => true,
                        Some(b) => !b.saw_command_word || b.argv.first().map(String::as_str) == Some("export"),
                    };
                    let w = self.parse_word(in_prefix, true)?;
                    let end = self.i;
                    let b = self.builder(start);
                    b.end = end;
                    match w.assignment {
                        Some(a) if !b.saw_command_word || b.argv.first().map(String::as_str) == Some("export") => {
                            b.assignments.push(a);
                        }
                        _ => b.saw_command_word = true,
                    }
                    b.argv.extend(w.fields);
                }
            }
        }
    }

    /// Ends the command being built. `semicolon` is the position of a `;`
    /// that ended it (an empty command there is an error).
    fn end_command(&mut self, semicolon: Option<usize>) -> Result<(), ShellError> {
        let Some(b) = self.cur.take() else {
            if let Some(at) = semicolon {
                return Err(self.err(at, "syntax error near ';': there is no command before it"));
            }
            return Ok(());
        };
        if b.argv.is_empty() {
            if !b.redirs.is_empty() {
                return Err(self.err(b.start, "a heredoc or here-string needs a command to read it"));
            }
            // Words that expanded to nothing: a shell runs nothing.
            return Ok(());
        }
        // Assignment-only commands (and `export NAME=value`) set variables.
        let export = b.argv.first().map(String::as_str) == Some("export");
        // Every field is an assignment (words that expanded to nothing do not count).
        let assignment_only = b.assignments.len() == b.argv.len();
        if assignment_only || export {
            for (k, v) in &b.assignments {
                self.env.insert(k.clone(), v.clone());
            }
        }
        let (line, _) = self.pos(b.start);
        let text: String = self.s.get(b.start..b.end).map(|s| s.iter().collect()).unwrap_or_default();
        let idx = self.out.len();
        self.out.push(CommandLine { argv: b.argv, stdin: None, line, text });
        if !b.redirs.is_empty() {
            self.awaiting.push((idx, b.redirs));
        }
        Ok(())
    }

    fn resolve_awaiting(&mut self) {
        for (idx, redirs) in std::mem::take(&mut self.awaiting) {
            let stdin = match redirs.last() {
                Some(Redir::HereString(s)) => Some(s.clone()),
                Some(Redir::Heredoc(p)) => self.pending_body(*p),
                None => None,
            };
            if let Some(cl) = self.out.get_mut(idx) {
                cl.stdin = stdin;
            }
        }
        self.pending.clear();
    }

    fn pending_body(&self, p: usize) -> Option<String> {
        self.pending.get(p).and_then(|p| p.body.clone())
    }

    fn here_string(&mut self) -> Result<(), ShellError> {
        let op = self.i;
        self.i += 3;
        while matches!(self.at(self.i), Some(' ' | '\t')) {
            self.i += 1;
        }
        match self.at(self.i) {
            None => return Err(self.err(op, "here-string '<<<' needs a word after it")),
            Some(c) if is_word_end(c) => return Err(self.err(op, "here-string '<<<' needs a word after it")),
            _ => {}
        }
        let w = self.parse_word(false, false)?;
        let mut body = w.fields.join(" ");
        body.push('\n');
        let end = self.i;
        let b = self.builder(op);
        b.end = end;
        b.redirs.push(Redir::HereString(body));
        Ok(())
    }

    fn heredoc_op(&mut self) -> Result<(), ShellError> {
        let op = self.i;
        self.i += 2;
        let strip_tabs = self.at(self.i) == Some('-');
        if strip_tabs {
            self.i += 1;
        }
        while matches!(self.at(self.i), Some(' ' | '\t')) {
            self.i += 1;
        }
        let mut delim = String::new();
        let mut quoted = false;
        let mut any = false;
        while let Some(c) = self.at(self.i) {
            if is_word_end(c) {
                break;
            }
            any = true;
            match c {
                '\'' => {
                    quoted = true;
                    let open = self.i;
                    self.i += 1;
                    loop {
                        match self.at(self.i) {
                            None => return Err(self.err(open, "unterminated single quote")),
                            Some('\'') => break,
                            Some(c) => delim.push(c),
                        }
                        self.i += 1;
                    }
                    self.i += 1;
                }
                '"' => {
                    quoted = true;
                    let open = self.i;
                    self.i += 1;
                    loop {
                        match self.at(self.i) {
                            None => return Err(self.err(open, "unterminated double quote")),
                            Some('"') => break,
                            Some('\\') if matches!(self.at(self.i + 1), Some('"' | '\\' | '$' | '`')) => {
                                self.i += 1;
                                delim.extend(self.at(self.i));
                            }
                            Some(c) => delim.push(c),
                        }
                        self.i += 1;
                    }
                    self.i += 1;
                }
                '\\' => {
                    quoted = true;
                    match self.at(self.i + 1) {
                        None => return Err(self.err(self.i, "line continuation at the end of the script")),
                        Some('\n') => {}
                        Some(c) => delim.push(c),
                    }
                    self.i += 2;
                }
                c => {
                    delim.push(c);
                    self.i += 1;
                }
            }
        }
        if !any {
            return Err(self.err(op, "heredoc operator '<<' needs a delimiter word (e.g. << EOF)"));
        }
        let idx = self.pending.len();
        self.pending.push(Pending { delim, quoted, strip_tabs, op_pos: op, body: None });
        let end = self.i;
        let b = self.builder(op);
        b.end = end;
        b.redirs.push(Redir::Heredoc(idx));
        Ok(())
    }

    /// Reads the bodies of the heredocs opened on the line just ended;
    /// `self.i` is at the start of the next line.
    fn read_heredoc_bodies(&mut self) -> Result<(), ShellError> {
        for k in 0..self.pending.len() {
            if self.pending[k].body.is_some() {
                continue;
            }
            let (delim, quoted, strip_tabs, op_pos) = {
                let p = &self.pending[k];
                (p.delim.clone(), p.quoted, p.strip_tabs, p.op_pos)
            };
            let mut chars: Vec<char> = Vec::new();
            let mut poss: Vec<usize> = Vec::new();
            let mut closed = false;
            while self.i < self.s.len() {
                let line_start = self.i;
                let mut line_end = line_start;
                while line_end < self.s.len() && self.s[line_end] != '\n' {
                    line_end += 1;
                }
                let mut from = line_start;
                if strip_tabs {
                    while from < line_end && self.s[from] == '\t' {
                        from += 1;
                    }
                }
                let mut cmp_end = line_end;
                if cmp_end > from && self.s[cmp_end - 1] == '\r' {
                    cmp_end -= 1;
                }
                let text: String = self.s[from..cmp_end].iter().collect();
                self.i = (line_end + 1).min(self.s.len());
                if text == delim {
                    closed = true;
                    break;
                }
                for q in from..line_end {
                    chars.push(self.s[q]);
                    poss.push(q);
                }
                chars.push('\n');
                poss.push(line_end);
            }
            if !closed {
                let (line, _) = self.pos(op_pos);
                return Err(self.err(op_pos, format!("heredoc {delim} is never closed (started at line {line})")));
            }
            let body = if quoted { chars.into_iter().collect() } else { self.expand_heredoc(&chars, &poss)? };
            self.pending[k].body = Some(body);
        }
        Ok(())
    }

    fn expand_heredoc(&self, chars: &[char], poss: &[usize]) -> Result<String, ShellError> {
        let mut out = String::new();
        let mut k = 0;
        while k < chars.len() {
            match chars[k] {
                '\\' => match chars.get(k + 1) {
                    Some('$' | '`' | '\\') => {
                        out.push(chars[k + 1]);
                        k += 2;
                    }
                    Some('\n') => k += 2,
                    _ => {
                        out.push('\\');
                        k += 1;
                    }
                },
                '`' => return Err(self.err(poss[k], NO_BACKTICK)),
                '$' => match self.expand(chars, poss, k, true)? {
                    Expansion::Literal => {
                        out.push('$');
                        k += 1;
                    }
                    Expansion::Value(v, n) => {
                        out.push_str(&v);
                        k += n;
                    }
                },
                c => {
                    out.push(c);
                    k += 1;
                }
            }
        }
        Ok(out)
    }

    /// Expands the `$` at `chars[k]`. `quoted`: inside double quotes or a heredoc.
    fn expand(&self, chars: &[char], poss: &[usize], k: usize, quoted: bool) -> Result<Expansion, ShellError> {
        let at = poss.get(k).copied().unwrap_or(0);
        let Some(&next) = chars.get(k + 1) else {
            return Ok(Expansion::Literal);
        };
        match next {
            '{' => {
                let mut close = k + 2;
                while close < chars.len() && chars[close] != '}' {
                    close += 1;
                }
                if close >= chars.len() {
                    return Err(self.err(at, "unterminated '${'"));
                }
                let inner: String = chars[k + 2..close].iter().collect();
                if inner.is_empty() {
                    return Err(self.err(at, "bad substitution '${}'"));
                }
                if !is_name(&inner) {
                    return Err(self.err(
                        at,
                        format!(
                            "unsupported parameter expansion '${{{inner}}}': rrlab expands only $NAME and ${{NAME}}"
                        ),
                    ));
                }
                let v = self.lookup(&inner, at)?;
                Ok(Expansion::Value(v, close - k + 1))
            }
            '(' => {
                if chars.get(k + 2) == Some(&'(') {
                    Err(self.err(at, "arithmetic expansion $((...)) is not supported"))
                } else {
                    Err(self.err(at, NO_SUBST))
                }
            }
            c if is_name_start(c) => {
                let mut end = k + 1;
                while end < chars.len() && is_name_char(chars[end]) {
                    end += 1;
                }
                let name: String = chars[k + 1..end].iter().collect();
                let v = self.lookup(&name, at)?;
                Ok(Expansion::Value(v, end - k))
            }
            c if c.is_ascii_digit() || matches!(c, '?' | '$' | '!' | '#' | '@' | '*' | '-') => {
                Err(self.err(at, format!("special parameter '${c}' is not supported")))
            }
            '\'' if !quoted => Err(self.err(at, "ANSI-C quoting $'...' is not supported")),
            '"' if !quoted => Err(self.err(at, "locale quoting $\"...\" is not supported")),
            _ => Ok(Expansion::Literal),
        }
    }

    fn lookup(&self, name: &str, at: usize) -> Result<String, ShellError> {
        self.env.get(name).cloned().ok_or_else(|| self.err(at, format!("variable ${name} is not set")))
    }

    /// Parses one word at `self.i`. `in_prefix`: an assignment `NAME=value`
    /// may appear here (its value is then not split). `split`: unquoted
    /// expansions are split into fields.
    fn parse_word(&mut self, in_prefix: bool, split: bool) -> Result<Word, ShellError> {
        let mut wb = WordBuf::new();
        // All characters so far were unquoted literal name characters.
        let mut plain = true;
        let mut assignment: Option<String> = None;
        // The text is moved out while the word is read so that `expand` can
        // borrow it next to `&mut self`; it is put back before returning.
        let s = std::mem::take(&mut self.s);
        let ident = std::mem::take(&mut self.ident);
        let r = self.parse_word_inner(&s, &ident, &mut wb, &mut plain, &mut assignment, in_prefix, split);
        self.s = s;
        self.ident = ident;
        r?;
        let fields = wb.finish();
        let assignment = assignment.map(|name| {
            let whole = fields.first().cloned().unwrap_or_default();
            let value = whole.get(name.len() + 1..).unwrap_or("").to_string();
            (name, value)
        });
        Ok(Word { fields, assignment })
    }

    #[allow(clippy::too_many_arguments)]
    fn parse_word_inner(
        &mut self,
        s: &[char],
        ident: &[usize],
        wb: &mut WordBuf,
        plain: &mut bool,
        assignment: &mut Option<String>,
        in_prefix: bool,
        split: bool,
    ) -> Result<(), ShellError> {
        while let Some(&c) = s.get(self.i) {
            if is_word_end(c) {
                break;
            }
            match c {
                '\\' => {
                    *plain = false;
                    match s.get(self.i + 1) {
                        None => return Err(self.err(self.i, "line continuation at the end of the script")),
                        Some('\n') => {}
                        Some(&n) => wb.lit(n),
                    }
                    self.i += 2;
                }
                '\'' => {
                    *plain = false;
                    let open = self.i;
                    self.i += 1;
                    wb.quoted_empty();
                    loop {
                        match s.get(self.i) {
                            None => return Err(self.err(open, "unterminated single quote")),
                            Some('\'') => break,
                            Some(&c) => wb.lit(c),
                        }
                        self.i += 1;
                    }
                    self.i += 1;
                }
                '"' => {
                    *plain = false;
                    let open = self.i;
                    self.i += 1;
                    wb.quoted_empty();
                    loop {
                        match s.get(self.i) {
                            None => return Err(self.err(open, "unterminated double quote")),
                            Some('"') => break,
                            Some('\\') => match s.get(self.i + 1) {
                                Some(&n @ ('"' | '\\' | '$' | '`')) => {
                                    wb.lit(n);
                                    self.i += 2;
                                }
                                Some('\n') => self.i += 2,
                                _ => {
                                    wb.lit('\\');
                                    self.i += 1;
                                }
                            },
                            Some('`') => return Err(self.err(self.i, NO_BACKTICK)),
                            Some('$') => match self.expand(s, ident, self.i, true)? {
                                Expansion::Literal => {
                                    wb.lit('$');
                                    self.i += 1;
                                }
                                Expansion::Value(v, n) => {
                                    wb.lit_str(&v);
                                    self.i += n;
                                }
                            },
                            Some(&c) => {
                                wb.lit(c);
                                self.i += 1;
                            }
                        }
                    }
                    self.i += 1;
                }
                '`' => return Err(self.err(self.i, NO_BACKTICK)),
                '$' => {
                    *plain = false;
                    match self.expand(s, ident, self.i, false)? {
                        Expansion::Literal => {
                            wb.lit('$');
                            self.i += 1;
                        }
                        Expansion::Value(v, n) => {
                            if split && assignment.is_none() {
                                wb.split_str(&v);
                            } else {
                                wb.lit_str(&v);
                            }
                            self.i += n;
                        }
                    }
                }
                '=' if *plain && in_prefix && assignment.is_none() && wb.fields.is_empty() && is_name(&wb.cur) => {
                    *assignment = Some(wb.cur.clone());
                    *plain = false;
                    wb.lit('=');
                    self.i += 1;
                }
                c => {
                    if !is_name_char(c) {
                        *plain = false;
                    }
                    wb.lit(c);
                    self.i += 1;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn argv(cl: &CommandLine) -> Vec<&str> {
        cl.argv.iter().map(String::as_str).collect()
    }

    fn one(src: &str) -> CommandLine {
        let mut v = parse_script(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert_eq!(v.len(), 1, "{src:?} gave {v:?}");
        v.remove(0)
    }

    fn err(src: &str) -> ShellError {
        parse_script(src).expect_err(src)
    }

    fn err_env(src: &str, e: &HashMap<String, String>) -> ShellError {
        parse_script_with_env(src, e).expect_err(src)
    }

    const PEER_A_BODY: &str = "kind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: node-rr-partition-a\nspec:\n  nodeSelector: cloud-type != 'public'\n  peerSelector: rr-partition == 'A'\n";
    const PEER_B_BODY: &str = "kind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: node-rr-partition-b\nspec:\n  nodeSelector: cloud-type == 'public'\n  peerSelector: rr-partition == 'B'\n";
    const MESH_BODY: &str = "kind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: rr-full-mesh\nspec:\n  nodeSelector: has(rr-partition)\n  peerSelector: has(rr-partition)\n";

    // ---- the post's command lines, verbatim -------------------------------

    #[test]
    fn post_annotate_cluster_id() {
        let cl = one("kubectl annotate node my-node projectcalico.org/RouteReflectorClusterID=244.0.0.1");
        assert_eq!(
            argv(&cl),
            ["kubectl", "annotate", "node", "my-node", "projectcalico.org/RouteReflectorClusterID=244.0.0.1"]
        );
        assert_eq!(cl.stdin, None);
        assert_eq!(cl.line, 1);
        assert_eq!(cl.text, "kubectl annotate node my-node projectcalico.org/RouteReflectorClusterID=244.0.0.1");
    }

    #[test]
    fn post_label_partition() {
        let cl = one("kubectl label node my-node rr-partition=A");
        assert_eq!(argv(&cl), ["kubectl", "label", "node", "my-node", "rr-partition=A"]);
    }

    #[test]
    fn post_patch_mesh_off_and_on() {
        let cl = one(r#"calicoctl patch bgpconfiguration default -p '{"spec": {"nodeToNodeMeshEnabled": false}}'"#);
        assert_eq!(
            argv(&cl),
            [
                "calicoctl",
                "patch",
                "bgpconfiguration",
                "default",
                "-p",
                r#"{"spec": {"nodeToNodeMeshEnabled": false}}"#
            ]
        );
        let cl = one(r#"calicoctl patch bgpconfiguration default -p '{"spec": {"nodeToNodeMeshEnabled": true}}'"#);
        assert_eq!(cl.argv[5], r#"{"spec": {"nodeToNodeMeshEnabled": true}}"#);
    }

    #[test]
    fn post_patch_as_numbers() {
        let v = parse_script(
            "calicoctl patch bgpconfiguration default -p '{\"spec\": {\"asNumber\": \"63400\"}}' calicoctl patch bgpconfiguration default -p '{\"spec\": {\"asNumber\": \"63401\"}}'",
        )
        .unwrap();
        // Flattened onto one line (as in the seed text) it is one command with 12 words.
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].argv.len(), 12);
        let v = parse_script(
            "calicoctl patch bgpconfiguration default -p '{\"spec\": {\"asNumber\": \"63400\"}}'\ncalicoctl patch bgpconfiguration default -p '{\"spec\": {\"asNumber\": \"63401\"}}'\n",
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].argv[5], r#"{"spec": {"asNumber": "63400"}}"#);
        assert_eq!(v[1].argv[5], r#"{"spec": {"asNumber": "63401"}}"#);
        assert_eq!(v[1].line, 2);
    }

    #[test]
    fn post_node_status() {
        assert_eq!(argv(&one("calicoctl node status")), ["calicoctl", "node", "status"]);
    }

    #[test]
    fn post_annotate_removal_with_variable() {
        let src = "kubectl annotate node $NODE projectcalico.org/RouteReflectorClusterID-";
        let v = parse_script_with_env(src, &env(&[("NODE", "rr1")])).unwrap();
        assert_eq!(argv(&v[0]), ["kubectl", "annotate", "node", "rr1", "projectcalico.org/RouteReflectorClusterID-"]);
        assert_eq!(v[0].text, src);
        // Without a value for NODE rrlab refuses, like `set -u`.
        let e = err(src);
        assert_eq!((e.line, e.column), (1, 23));
        assert_eq!(e.message, "variable $NODE is not set");
    }

    #[test]
    fn post_sudo_ipset_splits() {
        // Not a command rrlab runs (cmdline rejects it), but the shell layer splits it.
        assert_eq!(
            argv(&one("sudo ipset --list cali40all-hosts-net")),
            ["sudo", "ipset", "--list", "cali40all-hosts-net"]
        );
    }

    /// The seed text lost the post's line breaks: each shell block is one
    /// line that starts with `#`, so a shell sees one long comment.
    #[test]
    fn post_flattened_blocks_are_comments() {
        let block1 = "# non-public cloud # 私有云节点设置route reflector calicoctl apply -f - << EOF kind: BGPPeer apiVersion: projectcalico.org/v3 metadata: name: node-rr-partition-a spec: nodeSelector: cloud-type != 'public' peerSelector: rr-partition == 'A' EOF # public cloud # 公有云节点设置route reflector calicoctl apply -f - << EOF kind: BGPPeer apiVersion: projectcalico.org/v3 metadata: name: node-rr-partition-b spec: nodeSelector: cloud-type == 'public' peerSelector: rr-partition == 'B' EOF # rr-full-mesh # 所有rr节点之间full mesh calicoctl apply -f - << EOF kind: BGPPeer apiVersion: projectcalico.org/v3 metadata: name: rr-full-mesh spec: nodeSelector: has(rr-partition) peerSelector: has(rr-partition) EOF";
        assert_eq!(parse_script(block1).unwrap(), vec![]);
        let block2 = "# 设置两个集群的 asNumber calicoctl patch bgpconfiguration default -p '{\"spec\": {\"asNumber\": \"63400\"}}' calicoctl patch bgpconfiguration default -p '{\"spec\": {\"asNumber\": \"63401\"}}' # 创建 bgppeer calicoctl apply -f - << EOF kind: BGPPeer apiVersion: projectcalico.org/v3 metadata: name: rr-external-node spec: node: $NODE_NAME peerIP: $TARGET_NODE_IP asNumber: $ASN EOF";
        assert_eq!(parse_script(block2).unwrap(), vec![]);
    }

    /// The post's first shell block with its line breaks restored.
    #[test]
    fn post_three_bgppeer_heredocs() {
        let src = "# non-public cloud\n# 私有云节点设置route reflector\ncalicoctl apply -f - << EOF\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: node-rr-partition-a\nspec:\n  nodeSelector: cloud-type != 'public'\n  peerSelector: rr-partition == 'A'\nEOF\n# public cloud\n# 公有云节点设置route reflector\ncalicoctl apply -f - << EOF\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: node-rr-partition-b\nspec:\n  nodeSelector: cloud-type == 'public'\n  peerSelector: rr-partition == 'B'\nEOF\n# rr-full-mesh\n# 所有rr节点之间full mesh\ncalicoctl apply -f - << EOF\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: rr-full-mesh\nspec:\n  nodeSelector: has(rr-partition)\n  peerSelector: has(rr-partition)\nEOF\n";
        let v = parse_script(src).unwrap();
        assert_eq!(v.len(), 3);
        for cl in &v {
            assert_eq!(argv(cl), ["calicoctl", "apply", "-f", "-"]);
            assert_eq!(cl.text, "calicoctl apply -f - << EOF");
        }
        assert_eq!(v[0].stdin.as_deref(), Some(PEER_A_BODY));
        assert_eq!(v[1].stdin.as_deref(), Some(PEER_B_BODY));
        assert_eq!(v[2].stdin.as_deref(), Some(MESH_BODY));
        assert_eq!([v[0].line, v[1].line, v[2].line], [3, 14, 25]);
    }

    #[test]
    fn post_external_peer_heredoc_expands_variables() {
        let src = "# 创建 bgppeer\ncalicoctl apply -f - << EOF\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: rr-external-node\nspec:\n  node: $NODE_NAME\n  peerIP: $TARGET_NODE_IP\n  asNumber: $ASN\nEOF\n";
        let e = env(&[("NODE_NAME", "c1-rr1"), ("TARGET_NODE_IP", "10.246.205.113"), ("ASN", "63401")]);
        let v = parse_script_with_env(src, &e).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].line, 2);
        assert_eq!(
            v[0].stdin.as_deref(),
            Some("kind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: rr-external-node\nspec:\n  node: c1-rr1\n  peerIP: 10.246.205.113\n  asNumber: 63401\n")
        );
        // Unset variable inside the body: located at its line and column.
        let e = err_env(src, &env(&[("NODE_NAME", "n"), ("ASN", "1")]));
        assert_eq!((e.line, e.column), (9, 11));
        assert_eq!(e.message, "variable $TARGET_NODE_IP is not set");
    }

    #[test]
    fn assignment_lines_set_variables() {
        let src = "NODE=rr1\nkubectl annotate node $NODE projectcalico.org/RouteReflectorClusterID-\nexport ASN=63401 X=\"a b\"\necho $ASN \"$X\" $X\n";
        let v = parse_script(src).unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(argv(&v[0]), ["NODE=rr1"]);
        assert_eq!(v[1].argv[3], "rr1");
        assert_eq!(argv(&v[2]), ["export", "ASN=63401", "X=a b"]);
        assert_eq!(argv(&v[3]), ["echo", "63401", "a b", "a", "b"]);
        // A command word that expands to nothing leaves an assignment-only line.
        let v = parse_script_with_env("A=1 $E\necho $A", &env(&[("E", "")])).unwrap();
        assert_eq!(argv(&v[0]), ["A=1"]);
        assert_eq!(argv(&v[1]), ["echo", "1"]);
    }

    #[test]
    fn env_prefix_is_not_an_assignment_line() {
        let src =
            "DATASTORE_TYPE=kubernetes KUBECONFIG=~/.kube/config calicoctl get nodes\ncalicoctl get $DATASTORE_TYPE";
        let e = err(src);
        assert_eq!((e.line, e.column), (2, 15));
        let v = parse_script_with_env("A=1 B=\"$X y\" cmd", &env(&[("X", "x x")])).unwrap();
        assert_eq!(argv(&v[0]), ["A=1", "B=x x y", "cmd"]);
    }

    // ---- quoting ----------------------------------------------------------

    #[test]
    fn single_quotes_are_literal() {
        let cl = one(r#"echo 'a "b" $X \n `c`'"#);
        assert_eq!(argv(&cl), ["echo", r#"a "b" $X \n `c`"#]);
    }

    #[test]
    fn double_quote_escapes() {
        let cl = parse_script_with_env(r#"echo "q\" b\\ d\$ t\` n\n $X""#, &env(&[("X", "v w")])).unwrap();
        assert_eq!(argv(&cl[0]), ["echo", r#"q" b\ d$ t` n\n v w"#]);
    }

    #[test]
    fn adjacent_quotes_join_and_empty_words_survive() {
        assert_eq!(argv(&one(r#"echo a'b'"c"d '' """#)), ["echo", "abcd", "", ""]);
    }

    #[test]
    fn backslash_outside_quotes() {
        assert_eq!(argv(&one(r"echo a\ b \' \\ \$X \# x#y")), ["echo", "a b", "'", "\\", "$X", "#", "x#y"]);
    }

    #[test]
    fn continuation_lines() {
        let src = "kubectl label node my-node \\\n  rr-partition=A \\\n  --overwrite\nkubectl get no\\\nde";
        let v = parse_script(src).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(argv(&v[0]), ["kubectl", "label", "node", "my-node", "rr-partition=A", "--overwrite"]);
        assert_eq!(v[0].line, 1);
        assert_eq!(v[0].text, "kubectl label node my-node \\\n  rr-partition=A \\\n  --overwrite");
        assert_eq!(argv(&v[1]), ["kubectl", "get", "node"]);
        assert_eq!(v[1].line, 4);
        // Inside double quotes too.
        assert_eq!(argv(&one("echo \"a\\\nb\"")), ["echo", "ab"]);
    }

    #[test]
    fn comments_and_blank_lines() {
        let src = "\n  # a comment\n\ncalicoctl node status # trailing comment\n\t\n";
        let v = parse_script(src).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].line, 4);
        assert_eq!(v[0].text, "calicoctl node status");
        assert!(parse_script("").unwrap().is_empty());
        assert!(parse_script("# only\n#comments").unwrap().is_empty());
    }

    #[test]
    fn semicolons_separate() {
        let v = parse_script("calicoctl node status; kubectl get nodes ;calicoctl ipam show;").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].text, "calicoctl node status");
        assert_eq!(v[1].text, "kubectl get nodes");
        assert_eq!(v[2].text, "calicoctl ipam show");
        assert!(v.iter().all(|c| c.line == 1));
    }

    #[test]
    fn variables_unquoted_split_and_braced() {
        let e = env(&[("A", "x  y"), ("B", "z"), ("E", "")]);
        let v = parse_script_with_env("echo $A ${B}s \"$A\" pre$E $E \"$E\" $ a$ $/", &e).unwrap();
        assert_eq!(argv(&v[0]), ["echo", "x", "y", "zs", "x  y", "pre", "", "$", "a$", "$/"]);
    }

    #[test]
    fn here_string() {
        let cl = parse_script_with_env(r#"calicoctl apply -f - <<< "$Y""#, &env(&[("Y", "kind: IPPool")])).unwrap();
        assert_eq!(argv(&cl[0]), ["calicoctl", "apply", "-f", "-"]);
        assert_eq!(cl[0].stdin.as_deref(), Some("kind: IPPool\n"));
        assert_eq!(cl[0].text, r#"calicoctl apply -f - <<< "$Y""#);
        let cl = one("cat <<<'a b'");
        assert_eq!(cl.stdin.as_deref(), Some("a b\n"));
    }

    // ---- heredocs ---------------------------------------------------------

    #[test]
    fn heredoc_forms() {
        let e = env(&[("X", "1")]);
        for (src, body) in [
            ("cat <<EOF\na $X\nEOF\n", "a 1\n"),
            ("cat << EOF\na $X\nEOF", "a 1\n"),
            ("cat <<'EOF'\na $X \\$\nEOF\n", "a $X \\$\n"),
            ("cat <<\"EOF\"\na $X\nEOF\n", "a $X\n"),
            ("cat <<\\EOF\na $X\nEOF\n", "a $X\n"),
            ("cat <<-EOF\n\t\ta $X\n\tEOF\n", "a 1\n"),
            ("cat <<EOF\na \\$X \\\\ \\q\nb\\\nc\nEOF\n", "a $X \\ \\q\nbc\n"),
            ("cat <<EOF\n\"quoted\" 'single'\nEOF\n", "\"quoted\" 'single'\n"),
            ("cat <<EOF\nEOF\n", ""),
            ("cat <<END\nEOF\n EOF\nEND\n", "EOF\n EOF\n"),
        ] {
            let v = parse_script_with_env(src, &e).unwrap_or_else(|err| panic!("{src:?}: {err}"));
            assert_eq!(v.len(), 1, "{src:?}");
            assert_eq!(v[0].stdin.as_deref(), Some(body), "{src:?}");
            assert_eq!(argv(&v[0]), ["cat"], "{src:?}");
        }
    }

    #[test]
    fn heredoc_operator_anywhere_and_commands_after() {
        let src = "calicoctl <<EOF apply -f -; calicoctl node status\nbody\nEOF\ncalicoctl get bgppeers\n";
        let v = parse_script(src).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(argv(&v[0]), ["calicoctl", "apply", "-f", "-"]);
        assert_eq!(v[0].stdin.as_deref(), Some("body\n"));
        assert_eq!(v[0].text, "calicoctl <<EOF apply -f -");
        assert_eq!(v[1].stdin, None);
        assert_eq!(v[2].line, 4);
        // `-f -<<EOF` without blanks
        let v = parse_script("calicoctl apply -f -<<EOF\nx\nEOF").unwrap();
        assert_eq!(argv(&v[0]), ["calicoctl", "apply", "-f", "-"]);
        assert_eq!(v[0].stdin.as_deref(), Some("x\n"));
    }

    #[test]
    fn two_heredocs_last_wins_and_crlf_delimiter() {
        let v = parse_script("cat <<A <<B\none\nA\ntwo\nB\n").unwrap();
        assert_eq!(v[0].stdin.as_deref(), Some("two\n"));
        let v = parse_script("cat <<EOF\r\nx\r\nEOF\r\n").unwrap();
        assert_eq!(v[0].stdin.as_deref(), Some("x\r\n"));
    }

    #[test]
    fn heredoc_never_closed() {
        let e = err("kubectl get nodes\n\ncalicoctl apply -f - << EOF\nkind: BGPPeer\n");
        assert_eq!((e.line, e.column), (3, 22));
        assert_eq!(e.message, "heredoc EOF is never closed (started at line 3)");
        let e = err("cat <<EOF");
        assert_eq!(e.message, "heredoc EOF is never closed (started at line 1)");
        // An indented delimiter closes only `<<-` heredocs with tabs, not spaces.
        let e = err("cat <<EOF\n  EOF\n");
        assert_eq!(e.message, "heredoc EOF is never closed (started at line 1)");
    }

    #[test]
    fn heredoc_errors() {
        let e = err("cat <<\n");
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (1, 5, "heredoc operator '<<' needs a delimiter word (e.g. << EOF)")
        );
        let e = err("<<EOF\nx\nEOF\n");
        assert_eq!((e.line, e.column), (1, 1));
        assert_eq!(e.message, "a heredoc or here-string needs a command to read it");
        let e = err("cat <<EOF\n$(date)\nEOF\n");
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.starts_with("command substitution $(...) is not supported"));
        let e = err("cat <<EOF\nok `date`\nEOF\n");
        assert_eq!((e.line, e.column), (2, 4));
        let e = err("cat <<<");
        assert_eq!(e.message, "here-string '<<<' needs a word after it");
        let e = err("cat <<'EOF\nx\n");
        assert_eq!((e.line, e.column, e.message.as_str()), (1, 7, "unterminated single quote"));
    }

    // ---- errors -----------------------------------------------------------

    #[test]
    fn unterminated_quotes() {
        let e = err("kubectl label node 'my-node rr=A");
        assert_eq!((e.line, e.column, e.message.as_str()), (1, 20, "unterminated single quote"));
        let e = err("\necho \"abc\ndef");
        assert_eq!((e.line, e.column, e.message.as_str()), (2, 6, "unterminated double quote"));
        let e = err("echo abc\\");
        assert_eq!((e.line, e.column, e.message.as_str()), (1, 9, "line continuation at the end of the script"));
    }

    #[test]
    fn unsupported_operators_name_line_and_column() {
        let cases: &[(&str, usize, usize, &str)] = &[
            (
                "calicoctl get bgppeers -o yaml | grep name",
                1,
                32,
                "pipes are not supported: rrlab runs each command itself",
            ),
            ("kubectl get nodes\ncalicoctl node status && echo ok", 2, 23, "'&&' is not supported"),
            ("calicoctl node status || true", 1, 23, "'||' is not supported"),
            ("calicoctl node status &", 1, 23, "background jobs ('&') are not supported"),
            ("calicoctl get bgppeers > out.yaml", 1, 24, "output redirection ('>') is not supported"),
            ("calicoctl node status 2>&1", 1, 24, "output redirection ('>') is not supported"),
            ("calicoctl apply -f - < peer.yaml", 1, 22, "input redirection from a file ('<') is not supported"),
            ("kubectl label node $(hostname) a=b", 1, 20, "command substitution $(...) is not supported"),
            ("kubectl label node \"$(hostname)\" a=b", 1, 21, "command substitution $(...) is not supported"),
            ("kubectl label node `hostname` a=b", 1, 20, "command substitution `...` is not supported"),
            ("echo $((1+2))", 1, 6, "arithmetic expansion $((...)) is not supported"),
            ("(calicoctl node status)", 1, 1, "subshells and grouping ('(') are not supported"),
            ("echo $1", 1, 6, "special parameter '$1' is not supported"),
            ("echo $?", 1, 6, "special parameter '$?' is not supported"),
            ("echo ${X:-d}", 1, 6, "unsupported parameter expansion '${X:-d}'"),
            ("echo ${X", 1, 6, "unterminated '${'"),
            ("echo $'\\n'", 1, 6, "ANSI-C quoting $'...' is not supported"),
            ("; echo", 1, 1, "syntax error near ';'"),
            ("echo a;; echo", 1, 7, "';;' is only valid in a case statement"),
            ("diff <(a) b", 1, 6, "process substitution '<(...)' is not supported"),
        ];
        for (src, line, col, msg) in cases {
            let e = err(src);
            assert_eq!((e.line, e.column), (*line, *col), "{src:?}: {e}");
            assert!(e.message.starts_with(msg), "{src:?}: {}", e.message);
        }
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let e = err("# 注释\necho 中文 | x");
        assert_eq!((e.line, e.column), (2, 9));
    }

    #[test]
    fn error_display() {
        let e = err("a | b");
        assert_eq!(e.to_string(), "line 1, column 3: pipes are not supported: rrlab runs each command itself");
    }

    #[test]
    fn quoted_operators_are_literal() {
        assert_eq!(argv(&one(r##"echo '|' "&&" \> '<<EOF' ';' "#""##)), ["echo", "|", "&&", ">", "<<EOF", ";", "#"]);
    }

    #[test]
    fn no_panic_on_odd_inputs() {
        for src in [
            "\\", "'", "\"", "$", "${", "${}", "<<", "<<-", "<<<", "<<-'", "a\\\n", "\\\n", "$\"x\"", "\"$\"", "\r\n",
            "x=", "=x", "export", "export A", "<<E\n", "a <<E\r", "é$", "${é}", "\"\\", "a\"$", "a <<\"E", "a <<\\",
        ] {
            let _ = parse_script(src);
        }
        let v = parse_script("\"$\"").unwrap();
        assert_eq!(argv(&v[0]), ["$"]);
        let e = err("${}");
        assert_eq!(e.message, "bad substitution '${}'");
    }
}
