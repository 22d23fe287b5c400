//! A YAML reader that keeps positions: every value knows its line and column, so that a bad field in a
//! multi-document file is reported as `file:line:col` with the field's path. Built on yaml-rust2's event
//! parser (plain scalars resolved as Kubernetes' YAML 1.1 decoder does); the tree is converted to typed resources by hand (see `resources.rs`).

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A YAML value with positions. Plain scalars are resolved with YAML 1.2's core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order, with the key's own position.
    Map(Vec<(String, Pos, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    /// None for values that did not come from a file (a JSON patch, a default).
    pub pos: Option<Pos>,
}

impl Node {
    pub fn new(value: Value, pos: Option<Pos>) -> Node {
        Node { value, pos }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v),
            _ => None,
        }
    }

    /// The scalar as text (strings, numbers and booleans), as Kubernetes' YAML→JSON decoding would give it
    /// to a string field.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(x) => Some(x.to_string()),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// Convert to JSON (for patches, output and hashing).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(x) => serde_json::Number::from_f64(*x).map(J::Number).unwrap_or(J::Null),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(v) => J::Array(v.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, _, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// Convert from JSON; positions are unknown.
    pub fn from_json(v: &serde_json::Value) -> Node {
        use serde_json::Value as J;
        let value = match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::Seq(a.iter().map(Node::from_json).collect()),
            J::Object(o) => {
                Value::Map(o.iter().map(|(k, v)| (k.clone(), Pos::default(), Node::from_json(v))).collect())
            }
        };
        Node { value, pos: None }
    }
}

/// One document of a multi-document stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 1-based index of the document in its file.
    pub index: usize,
    pub root: Node,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at line {}, column {}", pos.line, pos.col)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

fn pos_of(m: &Marker) -> Pos {
    // yaml-rust2 markers count lines from 1 and columns from 0.
    Pos { line: m.line(), col: m.col() + 1 }
}

fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        // Kubernetes decodes YAML with go-yaml v2 (YAML 1.1), whose booleans include yes/no/on/off/y/n: a
        // label written `ttl-security-node: yes` has the value "true" in Calico.
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => return Value::Bool(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Int(i);
        }
    }
    if let Some(h) = s.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(h, 16) {
            return Value::Int(i);
        }
    }
    if let Some(o) = s.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(o, 8) {
            return Value::Int(i);
        }
    }
    let looks_float = s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && s.contains(['.', 'e', 'E']);
    if looks_float {
        if let Ok(x) = s.parse::<f64>() {
            return Value::Float(x);
        }
    }
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Value::Float(f64::NAN),
        _ => Value::Str(s.to_string()),
    }
}

enum Frame {
    Seq(Vec<Node>, Pos, usize),
    Map(Vec<(String, Pos, Node)>, Option<(String, Pos)>, Pos, usize),
}

#[derive(Default)]
struct Builder {
    docs: Vec<Node>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    error: Option<YamlError>,
}

impl Builder {
    fn push_value(&mut self, node: Node, key_pos: Pos, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(entries, pending, _, _)) => match pending.take() {
                None => {
                    // This value is a key.
                    let key = match node.scalar_text() {
                        Some(k) => k,
                        None if node.is_null() => String::new(),
                        None => {
                            self.error.get_or_insert(YamlError {
                                pos: key_pos,
                                message: format!("a mapping key must be a scalar, found {}", node.type_name()),
                            });
                            return;
                        }
                    };
                    if entries.iter().any(|(k, _, _)| *k == key) {
                        self.error.get_or_insert(YamlError { pos: key_pos, message: format!("duplicate key {key:?}") });
                    }
                    *pending = Some((key, key_pos));
                }
                Some((k, kp)) => entries.push((k, kp, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = pos_of(&mark);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let value = if style == TScalarStyle::Plain { resolve_plain(&text) } else { Value::Str(text) };
                self.push_value(Node::new(value, Some(pos)), pos, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), pos, anchor)),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(Vec::new(), None, pos, anchor)),
            Event::SequenceEnd => {
                if let Some(Frame::Seq(items, p, anchor)) = self.stack.pop() {
                    self.push_value(Node::new(Value::Seq(items), Some(p)), p, anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(entries, _, p, anchor)) = self.stack.pop() {
                    self.push_value(Node::new(Value::Map(entries), Some(p)), p, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut n) => {
                    n.pos = Some(pos);
                    self.push_value(n, pos, 0);
                }
                None => {
                    self.error = Some(YamlError { pos, message: "unknown alias".into() });
                }
            },
            Event::DocumentStart | Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
}

/// Parse a multi-document YAML stream. Empty documents (e.g. a trailing `---`) are dropped, but document
/// indexes count them, as `kubectl`'s messages do.
pub fn parse_documents(src: &str) -> Result<Vec<Document>, YamlError> {
    if src.contains('\t') {
        // YAML forbids tabs for indentation; catch the common mistake with a precise position.
        for (i, line) in src.lines().enumerate() {
            let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
            if indent.contains('\t') {
                return Err(YamlError {
                    pos: Pos { line: i + 1, col: indent.find('\t').unwrap_or(0) + 1 },
                    message: "tab character used for indentation (YAML allows only spaces)".into(),
                });
            }
        }
    }
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(src);
    parser.load(&mut b, true).map_err(|e| YamlError { pos: pos_of(e.marker()), message: e.info().to_string() })?;
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(b.docs
        .into_iter()
        .enumerate()
        .filter(|(_, n)| !n.is_null())
        .map(|(i, root)| Document { index: i + 1, root })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_scalars() {
        let docs = parse_documents("a: 1\nb:\n  c: 'x'\n  d: true\n---\n---\ne: [1, 2.5, null]\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].index, 1);
        assert_eq!(docs[1].index, 3);
        let b = docs[0].root.get("b").unwrap();
        assert_eq!(b.get("c").unwrap().value, Value::Str("x".into()));
        assert_eq!(b.get("c").unwrap().pos, Some(Pos { line: 3, col: 6 }));
        assert_eq!(b.get("d").unwrap().value, Value::Bool(true));
        assert_eq!(docs[0].root.get("a").unwrap().value, Value::Int(1));
        assert_eq!(docs[1].root.to_json(), serde_json::json!({"e": [1, 2.5, null]}));
    }

    #[test]
    fn quoted_numbers_stay_strings() {
        let docs = parse_documents("asNumber: \"63400\"\nport: 179\n").unwrap();
        assert_eq!(docs[0].root.get("asNumber").unwrap().value, Value::Str("63400".into()));
        assert_eq!(docs[0].root.get("port").unwrap().value, Value::Int(179));
    }

    #[test]
    fn errors_have_positions() {
        let e = parse_documents("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(e.pos.line >= 2, "{e}");
        let e = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.pos.line, 2);
        assert!(e.message.contains("duplicate key"));
        let e = parse_documents("a:\n\tb: 1\n").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, col: 1 });
    }

    #[test]
    fn anchors_and_json_round_trip() {
        let docs = parse_documents("first: &a {k: v}\nsecond: *a\n").unwrap();
        assert_eq!(docs[0].root.get("second").unwrap().to_json(), serde_json::json!({"k": "v"}));
        let j = serde_json::json!({"spec": {"nodeToNodeMeshEnabled": false, "asNumber": "63400"}});
        assert_eq!(Node::from_json(&j).to_json(), j);
    }
}
