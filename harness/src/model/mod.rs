//! The data rrlab reads: Calico resources, the selector language, YAML with positions.

pub mod fields;
pub mod output;
pub mod resources;
pub mod selector;
pub mod topology;
pub mod yaml;

use std::fmt;

pub use yaml::Pos;

/// An error in something a user wrote: a resource file, a heredoc, a patch, a topology. It names the file,
/// the document, the line and column, and the field, so that the operator can go straight to it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct InputError {
    pub file: String,
    /// 1-based document index in a multi-document file.
    pub document: Option<usize>,
    pub pos: Option<Pos>,
    /// Dotted path, e.g. `spec.peerSelector`.
    pub field: Option<String>,
    pub message: String,
}

impl InputError {
    pub fn new(file: &str, message: impl Into<String>) -> InputError {
        InputError { file: file.to_string(), document: None, pos: None, field: None, message: message.into() }
    }

    /// An error at a position of the file, no field (malformed YAML).
    pub fn at(file: &str, pos: Pos, message: impl Into<String>) -> InputError {
        InputError { pos: Some(pos), ..InputError::new(file, message) }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(p) = self.pos {
            write!(f, ":{}:{}", p.line, p.col)?;
        }
        write!(f, ": ")?;
        let mut ctx = Vec::new();
        if let Some(d) = self.document {
            ctx.push(format!("document {d}"));
        }
        if let Some(field) = &self.field {
            ctx.push(format!("field {field}"));
        }
        if !ctx.is_empty() {
            write!(f, "{}: ", ctx.join(", "))?;
        }
        write!(f, "{}", self.message)
    }
}
