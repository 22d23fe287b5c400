//! The SSH inventory: how to reach each node and where its calico-node runs. Read with the project's
//! positioned YAML, so every error names the file, line, column and field.
//!
//! ```yaml
//! # rrlab ssh inventory: how to reach each node's calico-node
//! user: root                 # default user (omitted: $USER, as ssh does)
//! port: 22                   # default port
//! identity: id_ed25519       # private key, relative to this file; omitted: the ssh agent
//! known_hosts: known_hosts   # relative to this file; default ~/.ssh/known_hosts
//! sudo: false                # run every command through `sudo -n` (a user other than root)
//! calico-node:
//!   runs: service            # service (calico-node's processes on the host) | container (default)
//!   engine: docker           # when runs: container: docker (default) | crictl | nerdctl
//!   container: calico-node   # the container's name (crictl: its name filter, `crictl ps --name … -q`)
//!   socket: /var/run/calico/bird.ctl
//!   confd: /etc/calico/confd/config
//!   birdcl: birdcl           # BIRD's client there (Debian's bird package has only `birdc`)
//! nodes:
//!   hybrid-worker: {host: 198.18.7.3}
//!   hybrid-worker2: {host: 198.18.7.4, port: 2222, user: admin, identity: admin_key, sudo: true}
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::backend::observe::{BIRD_SOCKET, CONFD_DIR};
use crate::model::fields::{Fields, Origin};
use crate::model::yaml::{parse_documents, Value};
use crate::model::InputError;
use crate::process::shell_line;

use super::RemoteError;

/// A container engine on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Crictl,
    Nerdctl,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Crictl => "crictl",
            Engine::Nerdctl => "nerdctl",
        }
    }
}

/// Where calico-node's processes run on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runs {
    /// On the host itself (a systemd/runit service): commands run as they are.
    Service,
    /// In a container: commands go through the engine's `exec`.
    Container { engine: Engine, name: String },
}

/// How calico-node is laid out on every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalicoNode {
    pub runs: Runs,
    /// BIRD's IPv4 control socket as calico-node's processes see it.
    pub socket: String,
    /// confd's output directory as calico-node's processes see it.
    pub confd: String,
    /// BIRD's client program (calico-node ships `birdcl`; `birdc` takes the same arguments).
    pub birdcl: String,
}

impl Default for CalicoNode {
    fn default() -> Self {
        CalicoNode {
            runs: Runs::Container { engine: Engine::Docker, name: "calico-node".into() },
            socket: BIRD_SOCKET.into(),
            confd: CONFD_DIR.into(),
            birdcl: super::BIRDCL.into(),
        }
    }
}

impl CalicoNode {
    /// `argv` as run where calico-node runs; `crictl_id` is the container's id (crictl only, see
    /// [`CalicoNode::crictl_id_command`]).
    pub fn wrap(&self, argv: &[&str], crictl_id: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = match &self.runs {
            Runs::Service => Vec::new(),
            Runs::Container { engine: Engine::Crictl, name } => {
                vec!["crictl".into(), "exec".into(), crictl_id.unwrap_or(name).to_string()]
            }
            Runs::Container { engine, name } => vec![engine.as_str().into(), "exec".into(), name.clone()],
        };
        out.extend(argv.iter().map(|s| s.to_string()));
        out
    }

    /// crictl only: the command that prints calico-node's container id (`crictl ps --name <name> -q`).
    pub fn crictl_id_command(&self) -> Option<Vec<String>> {
        match &self.runs {
            Runs::Container { engine: Engine::Crictl, name } => {
                Some(["crictl", "ps", "--name", name, "-q"].iter().map(|s| s.to_string()).collect())
            }
            _ => None,
        }
    }

    /// calico-node's log of the last hour, where the engine keeps it (None for a service).
    pub fn logs_command(&self, crictl_id: Option<&str>) -> Option<Vec<String>> {
        match &self.runs {
            Runs::Service => None,
            Runs::Container { engine: Engine::Crictl, name } => Some(
                ["crictl", "logs", "--since", "1h", crictl_id.unwrap_or(name)].iter().map(|s| s.to_string()).collect(),
            ),
            Runs::Container { engine, name } => {
                Some([engine.as_str(), "logs", "--since", "1h", name].iter().map(|s| s.to_string()).collect())
            }
        }
    }

    /// `service`, `docker container calico-node`, …
    pub fn describe(&self) -> String {
        match &self.runs {
            Runs::Service => "calico-node as a service on the host".into(),
            Runs::Container { engine, name } => format!("calico-node in {} container {name}", engine.as_str()),
        }
    }
}

/// The line the remote shell runs: argv quoted for a POSIX shell, through `sudo -n` when asked.
pub fn remote_line(sudo: bool, argv: &[String]) -> String {
    let line = shell_line(argv);
    if sudo {
        format!("sudo -n {line}")
    } else {
        line
    }
}

/// One node of the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// A private key file (absolute); None: the ssh agent.
    pub identity: Option<PathBuf>,
    pub sudo: bool,
    /// Line of the node's key in the inventory.
    pub line: usize,
}

/// A parsed inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub file: PathBuf,
    pub known_hosts: PathBuf,
    pub calico_node: CalicoNode,
    pub nodes: BTreeMap<String, NodeEntry>,
}

fn relative(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// A file the inventory names must exist (identity, known_hosts).
fn existing(f: &Fields, key: &str, path: PathBuf, what: &str) -> Result<PathBuf, InputError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(f.err(f.get(key), key, format!("{what} {} does not exist or is not a file", path.display())))
    }
}

impl Inventory {
    /// Read an inventory file; `~/.ssh/known_hosts` from `$HOME`, the default user from `$USER`.
    pub fn load(path: &Path) -> Result<Inventory, RemoteError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError::new(&path.display().to_string(), format!("cannot read the ssh inventory: {e}")))?;
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let user = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".into());
        Ok(Inventory::parse(path, &text, home.as_deref(), &user)?)
    }

    /// Parse inventory text as read from `path` (relative files are resolved against its directory).
    pub fn parse(path: &Path, text: &str, home: Option<&Path>, default_user: &str) -> Result<Inventory, InputError> {
        let fname = path.display().to_string();
        let origin = Origin::new(&fname, None);
        let docs = parse_documents(text).map_err(|e| InputError::at(&fname, e.pos, e.message))?;
        let root = match docs.as_slice() {
            [d] => &d.root,
            [] => return Err(InputError::new(&fname, "the ssh inventory is empty")),
            [_, d, ..] => return Err(origin.error(d.root.pos, "", "an inventory is one YAML document")),
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let f = Fields::new(&origin, root, "")?;
        let user = f.string("user")?.unwrap_or_else(|| default_user.to_string());
        let port = f.int("port", 1, 65535)?.unwrap_or(22) as u16;
        let sudo = f.bool("sudo")?.unwrap_or(false);
        let identity = match f.string("identity")? {
            Some(i) => Some(existing(&f, "identity", relative(&dir, &i), "identity file")?),
            None => None,
        };
        let known_hosts = match f.string("known_hosts")? {
            Some(k) => existing(&f, "known_hosts", relative(&dir, &k), "known_hosts file")?,
            None => {
                let p = home.map(|h| h.join(".ssh/known_hosts")).ok_or_else(|| {
                    origin.error(None, "known_hosts", "no known_hosts given and $HOME is not set (~/.ssh/known_hosts)")
                })?;
                if !p.is_file() {
                    return Err(origin.error(
                        None,
                        "known_hosts",
                        format!(
                            "{} does not exist: every node's host key must be known (give known_hosts: or add the keys)",
                            p.display()
                        ),
                    ));
                }
                p
            }
        };
        let calico_node = match f.sub("calico-node")? {
            Some(c) => calico_node(&c)?,
            None => CalicoNode::default(),
        };
        let mut nodes = BTreeMap::new();
        match f.get("nodes") {
            None => {
                return Err(origin.error(None, "nodes", "is required (each node's host: `nodes: {name: {host: …}}`)"))
            }
            Some(n) => {
                let Value::Map(entries) = &n.value else {
                    return Err(f.err(Some(n), "nodes", format!("expected a mapping, found {}", n.type_name())));
                };
                for (name, kpos, v) in entries {
                    let path = format!("nodes.{name}");
                    if v.is_null() {
                        return Err(origin.error(Some(*kpos), &path, "expected a mapping with host:, found nothing"));
                    }
                    let e = Fields::new(&origin, v, &path)?;
                    let host = e.required_string("host")?;
                    let identity = match e.string("identity")? {
                        Some(i) => Some(existing(&e, "identity", relative(&dir, &i), "identity file")?),
                        None => identity.clone(),
                    };
                    let entry = NodeEntry {
                        host,
                        port: e.int("port", 1, 65535)?.map(|p| p as u16).unwrap_or(port),
                        user: e.string("user")?.unwrap_or_else(|| user.clone()),
                        identity,
                        sudo: e.bool("sudo")?.unwrap_or(sudo),
                        line: kpos.line,
                    };
                    e.finish(&[])?;
                    nodes.insert(name.clone(), entry);
                }
            }
        }
        f.finish(&[])?;
        Ok(Inventory { file: path.to_path_buf(), known_hosts, calico_node, nodes })
    }

    /// `file:line` of a node's entry.
    pub fn at(&self, node: &str) -> String {
        match self.nodes.get(node) {
            Some(e) => format!("{}:{}", self.file.display(), e.line),
            None => self.file.display().to_string(),
        }
    }

    /// Every node of `needed` has an entry, else one error naming the missing ones and the file.
    pub fn require(&self, needed: &BTreeSet<String>) -> Result<(), RemoteError> {
        let missing: Vec<String> = needed.iter().filter(|n| !self.nodes.contains_key(*n)).cloned().collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(RemoteError::MissingNodes { inventory: self.file.display().to_string(), nodes: missing })
        }
    }
}

fn calico_node(c: &Fields) -> Result<CalicoNode, InputError> {
    let d = CalicoNode::default();
    let runs = c.string("runs")?.unwrap_or_else(|| "container".into());
    let runs = match runs.as_str() {
        "service" => {
            for k in ["engine", "container"] {
                if c.has(k) {
                    return Err(c.err(c.get(k), k, "only with runs: container"));
                }
            }
            Runs::Service
        }
        "container" => {
            let engine = match c.string("engine")?.as_deref() {
                None | Some("docker") => Engine::Docker,
                Some("crictl") => Engine::Crictl,
                Some("nerdctl") => Engine::Nerdctl,
                Some(other) => {
                    return Err(c.err(
                        c.get("engine"),
                        "engine",
                        format!("{other:?}: expected docker, crictl or nerdctl"),
                    ))
                }
            };
            Runs::Container { engine, name: c.string("container")?.unwrap_or_else(|| "calico-node".into()) }
        }
        other => return Err(c.err(c.get("runs"), "runs", format!("{other:?}: expected service or container"))),
    };
    let out = CalicoNode {
        runs,
        socket: c.string("socket")?.unwrap_or(d.socket),
        confd: c.string("confd")?.unwrap_or(d.confd).trim_end_matches('/').to_string(),
        birdcl: c.string("birdcl")?.unwrap_or(d.birdcl),
    };
    c.finish(&[])?;
    Ok(out)
}
