//! The created-resources record: what `rrlab up --backend kind` made, written into the lab's work
//! directory (`<work_dir>/created-resources`) by a plan step right after each resource exists, and the
//! only thing teardown removes. A run that fails before it created anything has an empty record, so its
//! teardown touches nothing (a user's own `kind` cluster of the same name stays); `rrlab down --backend
//! kind <lab>` reads the same file (and finds the topology in it).
//!
//! Format (one resource a line, in creation order; `#` lines are comments):
//!
//! ```text
//! # rrlab kind backend: what `rrlab up` created for lab hybrid-rr; `rrlab down --backend kind hybrid-rr` removes exactly this
//! lab hybrid-rr
//! topology /abs/path/topologies/hybrid-rr.clab.yml
//! bridge site-a
//! kind-cluster hybrid
//! containerlab hybrid-rr
//! ```

use std::fmt;
use std::path::PathBuf;

/// The record's file name inside the work directory.
pub const RECORD_FILE: &str = "created-resources";

/// One thing `up` created.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// A host bridge (`ip link add <name> type bridge`).
    Bridge(String),
    /// A kind cluster (`kind create cluster --name <name>`).
    KindCluster(String),
    /// containerlab's part of the lab: the non-`k8s-kind` nodes' containers (the WAN), the links, the
    /// lab directory `<work_dir>/clab-<lab>`. Recorded just before `containerlab deploy` runs, because a
    /// failed deploy leaves what it made so far (containerlab does not roll back) and the bring-up checked
    /// beforehand that none of it existed.
    Containerlab(String),
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Bridge(b) => write!(f, "bridge {b}"),
            Resource::KindCluster(c) => write!(f, "kind-cluster {c}"),
            Resource::Containerlab(l) => write!(f, "containerlab {l}"),
        }
    }
}

/// What one bring-up created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub lab: String,
    /// The topology file, so that `rrlab down --backend kind <lab>` finds it.
    pub topology: PathBuf,
    /// In creation order.
    pub resources: Vec<Resource>,
}

/// A record that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("created-resources record, line {line}: {message}")]
pub struct RecordError {
    pub line: usize,
    pub message: String,
}

impl Record {
    pub fn new(lab: &str, topology: impl Into<PathBuf>) -> Record {
        Record { lab: lab.to_string(), topology: topology.into(), resources: Vec::new() }
    }

    /// This record with one more resource.
    pub fn with(&self, r: Resource) -> Record {
        let mut n = self.clone();
        n.resources.push(r);
        n
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = format!(
            "# rrlab kind backend: what `rrlab up` created for lab {l}; `rrlab down --backend kind {l}` removes exactly this\nlab {l}\ntopology {}\n",
            self.topology.display(),
            l = self.lab
        );
        for r in &self.resources {
            s.push_str(&format!("{r}\n"));
        }
        s
    }

    /// Read a record file.
    pub fn parse(text: &str) -> Result<Record, RecordError> {
        let mut lab = None;
        let mut topology = None;
        let mut resources = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |m: &str| RecordError { line: i + 1, message: format!("{m}: {raw:?}") };
            let (k, v) = line.split_once(' ').ok_or_else(|| err("expected `<kind> <name>`"))?;
            let v = v.trim();
            if v.is_empty() {
                return Err(err("empty name"));
            }
            match k {
                "lab" => lab = Some(v.to_string()),
                "topology" => topology = Some(PathBuf::from(v)),
                "bridge" => resources.push(Resource::Bridge(v.to_string())),
                "kind-cluster" => resources.push(Resource::KindCluster(v.to_string())),
                "containerlab" => resources.push(Resource::Containerlab(v.to_string())),
                _ => return Err(err("unknown entry")),
            }
        }
        let missing = |what: &str| RecordError { line: 0, message: format!("no `{what}` line") };
        Ok(Record {
            lab: lab.ok_or_else(|| missing("lab"))?,
            topology: topology.ok_or_else(|| missing("topology"))?,
            resources,
        })
    }
}
