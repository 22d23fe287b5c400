//! `rrlab import`: a real cluster's state (files an operator can send, or a live cluster through kubectl) turned
//! into an rrlab topology plus the cluster's Calico state, so that the twin can rehearse a runbook on it.
//!
//! Pure: [`import`] takes (file name, text) pairs and [`ImportOptions`] and returns the files to write
//! ([`Imported`]); [`write`] writes them; [`live_commands`] says which commands read a live cluster and
//! [`run_live`] runs them (the only part that touches the host; it cannot be tested here beyond the command
//! construction, which `live_commands` keeps pure).
//!
//! **Inputs**, any mix, YAML or JSON (JSON is YAML), one or many documents per file:
//! - `kubectl get nodes -o yaml` (a `v1` `List` of `Node`s): names, labels, `projectcalico.org/*` annotations
//!   (KDD keeps the Calico Node's BGP spec there), `status.addresses` (the InternalIP);
//! - `calicoctl get <kind> -o yaml` for nodes, ippools, bgpconfigurations, bgppeers, felixconfigurations
//!   (calicoctl gets one kind at a time and prints a `<Kind>List`, or the object itself for one name; several
//!   objects from `-f` come as a top-level YAML sequence; all three shapes are read), or the same kinds from
//!   `kubectl get <kind>.projectcalico.org` (Calico's API server) or `<kind>.crd.projectcalico.org` (the CRDs,
//!   `crd.projectcalico.org/v1`, whose spec fields are the v3 names);
//! - `kubectl get blockaffinities.crd.projectcalico.org -o yaml` (IPAM blocks);
//! - `kubectl get secret … -o yaml` (BGP passwords: only the names of their keys are read, never a value);
//! - `kubectl get ds calico-node -n kube-system -o yaml` (or `-A -l k8s-app=calico-node`): the calico-node
//!   container's env (`CALICO_IPV4POOL_CIDR`, `CALICO_IPV4POOL_IPIP`, `IP_AUTODETECTION_METHOD`,
//!   `CALICO_NETWORKING_BACKEND`, `AS`).
//!
//! Any other kind is an error naming it, its file and line, and the kinds understood; malformed YAML is an
//! error with file and line; every other error names file, line and field (`nodes.yaml:42:
//! items[3].metadata.annotations.projectcalico.org/IPv4Address: …`).
//!
//! **Outputs** (`--out DIR --name NAME`), in the format of `topologies/` (topologies/README.md):
//! - `NAME.clab.yml`: one `k8s-kind` node `NAME` (labels `rrlab.io/calico-as` = the default BGPConfiguration's
//!   asNumber or 64512, `rrlab.io/ipip-mode` = the pod-subnet pool's ipipMode, `rrlab.io/calico-node-interface:
//!   eth1`, `rrlab.io/node-names` = the real node names in the kind config's order, `rrlab.io/calico-state:
//!   NAME.calico.yaml`), one `bridge` per site, one `ext-container` per node under its real name, linked to its
//!   site on `eth1` with its real address, and with ≥2 sites a `linux` node `wan` on every site, forwarding;
//! - `NAME.kind.yaml`: the kind Cluster config (control planes, then workers; their labels minus those the
//!   kubelet, kubeadm and kind set, and minus those the kubelet refuses in `--node-labels`);
//! - `NAME.calico.yaml`: the Calico state in the format `rrlab calicoctl apply -f` reads (IPPools,
//!   BGPConfigurations, FelixConfigurations, Calico Nodes, BGPPeers, BlockAffinities, Secrets), without
//!   server-side metadata;
//! - `NAME.import.md`: what was imported, derived, replaced and dropped.
//!
//! **Addresses** are kept: a node's address is its `projectcalico.org/IPv4Address` annotation (with its prefix),
//! else its Calico Node's `spec.bgp.ipv4Address`, else its InternalIP with its site's prefix; a node with none
//! is an error. A /31 or /32 says nothing about the node's subnet: it is put in its /24 (noted).
//!
//! **Sites** are the networks of the node addresses (`10.0.1.2/24` is on site `10.0.1.0/24`; a network inside
//! another site's joins it), bridges `site-1`, `site-2`, … in CIDR order, or given by a sites file
//! (`--sites FILE`), one CIDR per site:
//!
//! ```yaml
//! sites:
//!   dc-a: 10.0.1.0/24
//!   dc-b: 10.0.2.0/23
//! ```
//!
//! Every node must be in one of them; its `eth1` then takes the site's prefix. Site names are bridge names:
//! valid containerlab node names of at most 15 characters. The WAN takes, on each site, `.1` when no node and no
//! BGPPeer `peerIP` has it, else the highest free host address.
//!
//! **Secrets** are never copied: a referenced `password.secretKeyRef` (BGPPeer, BGPConfiguration
//! `nodeMeshPassword`) is kept, and its Secret is written with a freshly generated value, whether or not the
//! Secret was in the input; a note names each one replaced.

mod emit;
mod live;
mod plan;
mod read;
mod sites;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

pub use live::{calicoctl_on_path, crd_fallback, live_commands, run_live, LiveInputs};

/// What `rrlab import` is asked for besides the input files.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportOptions {
    /// `--name`: the lab, the cluster and the file names (lower-case DNS label).
    pub name: String,
    /// `--sites FILE`: the file's name and text.
    pub sites: Option<(String, String)>,
    /// `--service-subnet`: kind's serviceSubnet (default 10.96.0.0/12, or a free /16 when that overlaps).
    pub service_subnet: Option<Ipv4Net>,
    /// Seed for the generated secrets (tests); None: from the OS.
    pub seed: Option<u64>,
}

/// The notes of an import, by what happened to each fact.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Notes {
    pub imported: Vec<String>,
    pub derived: Vec<String>,
    pub replaced: Vec<String>,
    pub dropped: Vec<String>,
}

impl Notes {
    /// The notes as Markdown (`NAME.import.md`).
    pub fn markdown(&self, name: &str, sources: &[String]) -> String {
        let mut s = format!("# rrlab import: {name}\n\nFrom: {}\n", sources.join(", "));
        for (title, items) in [
            ("Imported", &self.imported),
            ("Derived", &self.derived),
            ("Replaced", &self.replaced),
            ("Dropped", &self.dropped),
        ] {
            s.push_str(&format!("\n## {title}\n\n"));
            if items.is_empty() {
                s.push_str("- nothing\n");
            }
            for i in items {
                s.push_str("- ");
                s.push_str(i);
                s.push('\n');
            }
        }
        s
    }
}

/// The files of an import (topology first) and its notes.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub name: String,
    /// (file name, text): `NAME.clab.yml`, `NAME.kind.yaml`, `NAME.calico.yaml`, `NAME.import.md`.
    pub files: Vec<(String, String)>,
    pub notes: Notes,
}

impl Imported {
    pub fn file(&self, name: &str) -> Option<&str> {
        self.files.iter().find(|(n, _)| n == name).map(|(_, t)| t.as_str())
    }

    pub fn clab_file(&self) -> String {
        format!("{}.clab.yml", self.name)
    }

    pub fn kind_file(&self) -> String {
        format!("{}.kind.yaml", self.name)
    }

    pub fn calico_file(&self) -> String {
        format!("{}.calico.yaml", self.name)
    }

    pub fn notes_file(&self) -> String {
        format!("{}.import.md", self.name)
    }
}

/// Why an import failed. Every input error names the file, the line (0: unknown) and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("{}malformed YAML: {message}", at(file, *line, ""))]
    Yaml { file: String, line: usize, message: String },
    #[error("{}unknown kind {kind:?} (apiVersion {api:?}): rrlab import reads {}", at(file, *line, field), read::KINDS)]
    UnknownKind { file: String, line: usize, field: String, kind: String, api: String },
    #[error("{}{message}", at(file, *line, field))]
    Field { file: String, line: usize, field: String, message: String },
    #[error("{}node {node} has no address: no projectcalico.org/IPv4Address annotation, no Calico Node spec.bgp.ipv4Address and no InternalIP in status.addresses (give `kubectl get nodes -o yaml` or `calicoctl get nodes -o yaml` output that has one)", at(file, *line, field))]
    NoAddress { node: String, file: String, line: usize, field: String },
    #[error("{0}")]
    Options(String),
    #[error("{path}: {error}")]
    Io { path: String, error: String },
    #[error("`{command}`: {error}")]
    Live { command: String, error: String },
}

/// `file:line: field: ` (parts left out when unknown).
fn at(file: &str, line: usize, field: &str) -> String {
    let mut s = file.to_string();
    if line > 0 {
        s.push_str(&format!(":{line}"));
    }
    s.push_str(": ");
    if !field.is_empty() {
        s.push_str(field);
        s.push_str(": ");
    }
    s
}

impl ImportError {
    pub(crate) fn field(file: &str, line: usize, field: &str, message: impl Into<String>) -> ImportError {
        ImportError::Field { file: file.to_string(), line, field: field.to_string(), message: message.into() }
    }

    /// A model error inside the document at `prefix` (`items[3]`), as this module reports it.
    pub(crate) fn from_input(e: crate::model::InputError, prefix: &str) -> ImportError {
        let field = match (prefix.is_empty(), e.field.as_deref()) {
            (_, None) => prefix.to_string(),
            (true, Some(f)) => f.to_string(),
            (false, Some(f)) => format!("{prefix}.{f}"),
        };
        ImportError::Field { file: e.file, line: e.pos.map(|p| p.line).unwrap_or(0), field, message: e.message }
    }
}

impl fmt::Display for Imported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, _) in &self.files {
            writeln!(f, "{n}")?;
        }
        Ok(())
    }
}

/// Import the cluster described by `inputs` ((file name, text) pairs).
pub fn import(inputs: &[(String, String)], opts: &ImportOptions) -> Result<Imported, ImportError> {
    let name = check_name(&opts.name)?;
    if inputs.is_empty() {
        return Err(ImportError::Options(
            "no input: give --from FILE (kubectl/calicoctl -o yaml output) or --kubeconfig/--context".into(),
        ));
    }
    let read = read::read_all(inputs)?;
    let sites = match &opts.sites {
        None => None,
        Some((f, t)) => Some(sites::parse(f, t)?),
    };
    let plan = plan::plan(&name, &read, sites.as_ref(), opts)?;
    let sources: Vec<String> = inputs.iter().map(|(n, _)| n.clone()).collect();
    let imported = emit::emit(&plan, &sources);
    // What is written must apply as the twin applies it at `up`: checked here rather than at the operator's.
    let calico = imported.calico_file();
    let mut ds = crate::twin::datastore::Datastore::new();
    crate::twin::apply::apply_text(
        &mut ds,
        &calico,
        imported.file(&calico).unwrap_or_default(),
        crate::twin::datastore::WriteMode::Apply,
    )
    .map_err(|e| {
        ImportError::field(
            &calico,
            0,
            "",
            format!("the Calico state written does not apply (an rrlab import bug): {e}"),
        )
    })?;
    Ok(imported)
}

/// The cluster name: a lower-case DNS label (kind cluster names; containerlab lab names).
fn check_name(name: &str) -> Result<String, ImportError> {
    let n = name.to_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 50
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(ImportError::Options(format!(
            "--name {name:?}: the lab and cluster name must be a DNS label (letters, digits and '-', starting with a letter, at most 50 characters)"
        )));
    }
    Ok(n)
}

/// Write the files of an import into `dir` (created if needed); returns the paths written.
pub fn write(imported: &Imported, dir: &Path) -> Result<Vec<PathBuf>, ImportError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ImportError::Io { path: dir.display().to_string(), error: e.to_string() })?;
    let mut out = Vec::new();
    for (name, text) in &imported.files {
        let p = dir.join(name);
        std::fs::write(&p, text)
            .map_err(|e| ImportError::Io { path: p.display().to_string(), error: e.to_string() })?;
        out.push(p);
    }
    Ok(out)
}
