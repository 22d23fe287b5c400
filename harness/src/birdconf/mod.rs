//! Reader for BIRD 1.6 configuration files as calico-node renders them (`bird.cfg`,
//! `bird_ipam.cfg`, `bird_aggr.cfg` and the `bird6*` variants), plus a behaviour extractor and
//! comparator.
//!
//! * [`parse`] / [`parse_with`] / [`load_set`] / [`load_dir`] read configuration text into a
//!   [`BirdConfig`]: protocols (BGP sessions resolved against their templates into typed
//!   [`BgpSession`]s, static routes), functions and filters as statement trees.
//! * [`behaviour`] reduces a config to a comparable [`Behaviour`]: sessions, what each session
//!   imports / exports, and decision tables obtained by running the filter code (a small
//!   evaluator, [`eval`]) on probe routes derived from every prefix literal.
//! * [`compare`] lists the [`Difference`]s between two behaviours (empty = same behaviour).
//!
//! Comments, whitespace, statement layout and the order of independent statements never matter.

mod ast;
mod behaviour;
mod compare;
pub mod eval;
mod lexer;
mod parser;

use std::collections::BTreeMap;
use std::path::Path;

pub use ast::*;
pub use behaviour::*;
pub use compare::*;
pub use eval::Verdict;

/// Errors from reading a configuration.
#[derive(Debug, thiserror::Error)]
pub enum BirdConfError {
    /// Lexical, syntax or semantic error at a position (`file:line:col: message`).
    #[error("{location}: {message}")]
    Parse { location: Location, message: String },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file set lacks a main configuration file.
    #[error("{0}")]
    Missing(String),
}

impl BirdConfError {
    /// Position of a parse error.
    pub fn location(&self) -> Option<&Location> {
        match self {
            BirdConfError::Parse { location, .. } => Some(location),
            _ => None,
        }
    }
}

/// Parse one file; `include` statements are recorded in [`BirdConfig::includes`] but not read.
pub fn parse(name: &str, text: &str) -> Result<BirdConfig, BirdConfError> {
    parse_inner(name, text, None)
}

/// Parse one file, reading each `include "x";` through `resolve(x)` (`None` = not found, an
/// error at the include statement).
pub fn parse_with(
    name: &str,
    text: &str,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> Result<BirdConfig, BirdConfError> {
    parse_inner(name, text, Some(resolve))
}

fn parse_inner(name: &str, text: &str, resolver: lexer::Resolver<'_>) -> Result<BirdConfig, BirdConfError> {
    let (toks, files, includes) = lexer::lex_tree(name, text, resolver)?;
    let mut cfg = parser::Parser::new(&toks, &files).config()?;
    cfg.includes = includes;
    Ok(cfg)
}

fn base_name(s: &str) -> &str {
    s.rsplit(['/', '\\']).next().unwrap_or(s)
}

/// Find `name` in a file set: exact key, else a key whose file name is `name`, else a key whose
/// file name ends in `.name` (so `expected.bird_aggr.cfg` serves `bird_aggr.cfg`).
fn lookup<'a>(files: &'a BTreeMap<String, String>, name: &str) -> Option<(&'a String, &'a String)> {
    if let Some(kv) = files.get_key_value(name) {
        return Some(kv);
    }
    let base = base_name(name);
    files
        .iter()
        .find(|(k, _)| base_name(k) == base)
        .or_else(|| files.iter().find(|(k, _)| base_name(k).ends_with(&format!(".{base}"))))
}

/// Read a rendered set: the main file is `bird.cfg` (else `bird6.cfg`), and its includes
/// (`bird_aggr.cfg`, `bird_ipam.cfg`) come from the same map. Keys may be bare file names,
/// paths, or carry a prefix such as `expected.bird.cfg`.
pub fn load_set(files: &BTreeMap<String, String>) -> Result<BirdConfig, BirdConfError> {
    let main = if lookup(files, "bird.cfg").is_some() { "bird.cfg" } else { "bird6.cfg" };
    load_set_main(files, main)
}

/// Like [`load_set`] with an explicit main file (`"bird6.cfg"` for the IPv6 set).
pub fn load_set_main(files: &BTreeMap<String, String>, main: &str) -> Result<BirdConfig, BirdConfError> {
    let (name, text) = lookup(files, main)
        .ok_or_else(|| BirdConfError::Missing(format!("no {main} among {:?}", files.keys().collect::<Vec<_>>())))?;
    let resolve = |inc: &str| lookup(files, inc).map(|(_, t)| t.clone());
    parse_with(name, text, &resolve)
}

/// Read every `*.cfg` file of a directory and [`load_set`] them.
pub fn load_dir(path: impl AsRef<Path>) -> Result<BirdConfig, BirdConfError> {
    let files = read_dir_cfgs(path.as_ref())?;
    load_set(&files)
}

/// Like [`load_dir`] with an explicit main file (`"bird6.cfg"` for the IPv6 set).
pub fn load_dir_main(path: impl AsRef<Path>, main: &str) -> Result<BirdConfig, BirdConfError> {
    let files = read_dir_cfgs(path.as_ref())?;
    load_set_main(&files, main)
}

fn read_dir_cfgs(dir: &Path) -> Result<BTreeMap<String, String>, BirdConfError> {
    let io = |p: &Path, e| BirdConfError::Io { path: p.display().to_string(), source: e };
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".cfg") && p.is_file() {
            let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
            files.insert(name, text);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests;
