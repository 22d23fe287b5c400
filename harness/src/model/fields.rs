//! Reading typed fields out of a positioned YAML tree, with errors that name file, document, line and field.
//! Every reader marks the keys it consumed; `finish` rejects anything left over as an unknown field, the way
//! calicoctl's strict decoding does.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::yaml::{Node, Pos, Value};
use super::InputError;

/// Where a value came from: file and document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub document: Option<usize>,
}

impl Origin {
    pub fn new(file: &str, document: Option<usize>) -> Origin {
        Origin { file: file.to_string(), document }
    }

    pub fn error(&self, pos: Option<Pos>, field: &str, message: impl Into<String>) -> InputError {
        InputError {
            file: self.file.clone(),
            document: self.document,
            pos,
            field: if field.is_empty() { None } else { Some(field.to_string()) },
            message: message.into(),
        }
    }
}

/// A mapping being read.
pub struct Fields<'a> {
    pub origin: &'a Origin,
    pub path: String,
    pub node: &'a Node,
    entries: &'a [(String, Pos, Node)],
    used: RefCell<Vec<String>>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> Fields<'a> {
    pub fn new(origin: &'a Origin, node: &'a Node, path: &str) -> Result<Fields<'a>, InputError> {
        match &node.value {
            Value::Map(entries) => {
                Ok(Fields { origin, path: path.to_string(), node, entries, used: RefCell::new(Vec::new()) })
            }
            _ => Err(origin.error(node.pos, path, format!("expected a mapping, found {}", node.type_name()))),
        }
    }

    pub fn err(&self, node: Option<&Node>, key: &str, message: impl Into<String>) -> InputError {
        let pos = node.and_then(|n| n.pos).or(self.node.pos);
        self.origin.error(pos, &join(&self.path, key), message)
    }

    pub fn field_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw node of a key (null counts as absent), marking the key used.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        let found = self.entries.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v);
        if found.is_some() {
            self.used.borrow_mut().push(key.to_string());
        }
        found.filter(|n| !n.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _, v)| k == key && !v.is_null())
    }

    pub fn pos_of(&self, key: &str) -> Option<Pos> {
        self.entries.iter().find(|(k, _, _)| k == key).and_then(|(_, _, v)| v.pos).or(self.node.pos)
    }

    pub fn sub(&self, key: &str) -> Result<Option<Fields<'a>>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => Fields::new(self.origin, n, &join(&self.path, key)).map(Some),
        }
    }

    /// A string field. Numbers and booleans are accepted and turned into text, as Kubernetes' YAML decoding
    /// does for labels and as calicoctl does for AS numbers; lists and mappings are errors.
    pub fn string(&self, key: &str) -> Result<Option<String>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => match n.scalar_text() {
                Some(s) => Ok(Some(s)),
                None => Err(self.err(Some(n), key, format!("expected a string, found {}", n.type_name()))),
            },
        }
    }

    pub fn required_string(&self, key: &str) -> Result<String, InputError> {
        match self.string(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(self.err(self.get(key), key, "is required")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => match &n.value {
                Value::Bool(b) => Ok(Some(*b)),
                Value::Str(s) if s == "true" || s == "false" => Ok(Some(s == "true")),
                _ => Err(self.err(Some(n), key, format!("expected true or false, found {}", n.type_name()))),
            },
        }
    }

    /// An integer in a range. Quoted integers are accepted (Calico's numorstring types take both).
    pub fn int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => {
                let v = match &n.value {
                    Value::Int(i) => Some(*i),
                    Value::Str(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                match v {
                    Some(i) if i >= min && i <= max => Ok(Some(i)),
                    Some(i) => Err(self.err(Some(n), key, format!("{i} is out of range ({min}..={max})"))),
                    None => Err(self.err(Some(n), key, format!("expected an integer, found {}", n.type_name()))),
                }
            }
        }
    }

    pub fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(n) => match &n.value {
                Value::Seq(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| {
                        it.scalar_text().ok_or_else(|| {
                            self.err(
                                Some(it),
                                &format!("{key}[{i}]"),
                                format!("expected a string, found {}", it.type_name()),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                _ => Err(self.err(Some(n), key, format!("expected a list, found {}", n.type_name()))),
            },
        }
    }

    /// A list of mappings.
    pub fn list(&self, key: &str) -> Result<Vec<Fields<'a>>, InputError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(n) => match &n.value {
                Value::Seq(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| Fields::new(self.origin, it, &format!("{}[{i}]", join(&self.path, key))))
                    .collect(),
                _ => Err(self.err(Some(n), key, format!("expected a list, found {}", n.type_name()))),
            },
        }
    }

    /// A string→string map (labels, annotations). Scalar values are turned into text.
    pub fn string_map(&self, key: &str) -> Result<BTreeMap<String, String>, InputError> {
        let mut out = BTreeMap::new();
        if let Some(n) = self.get(key) {
            match &n.value {
                Value::Map(entries) => {
                    for (k, kp, v) in entries {
                        let s = match &v.value {
                            Value::Null => String::new(),
                            _ => v.scalar_text().ok_or_else(|| {
                                self.origin.error(
                                    v.pos.or(Some(*kp)),
                                    &format!("{}.{k}", join(&self.path, key)),
                                    format!("expected a string, found {}", v.type_name()),
                                )
                            })?,
                        };
                        out.insert(k.clone(), s);
                    }
                }
                _ => return Err(self.err(Some(n), key, format!("expected a mapping, found {}", n.type_name()))),
            }
        }
        Ok(out)
    }

    /// Reject any key that no reader consumed and that is not in `ignored` (fields of the real API that
    /// rrlab accepts but does not model).
    pub fn finish(&self, ignored: &[&str]) -> Result<(), InputError> {
        let used = self.used.borrow();
        for (k, kp, _) in self.entries {
            if !used.iter().any(|u| u == k) && !ignored.contains(&k.as_str()) {
                return Err(self.origin.error(Some(*kp), &join(&self.path, k), format!("unknown field {k:?}")));
            }
        }
        Ok(())
    }
}
