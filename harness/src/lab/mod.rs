//! Labs: a topology brought up on a runtime, plus each cluster's Calico state. The lab's record lives in
//! `/run/rrlab/<lab>/lab.json` (runtime, topology, the operator commands applied per cluster); each node has a
//! state directory `/run/rrlab/<lab>/<node>/` holding what its agent reads (`desired.json`) and reports
//! (`status.json`), BIRD's files and socket. The datastore of a cluster is rebuilt by replaying its commands.

pub mod baseline;
pub mod bench;
pub mod converge;
pub mod ssh;
pub mod wan;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::agent::protocol::{write_atomic, Desired, PodSpec};
use crate::agent::veth_name;
use crate::model::topology::{self, Cluster, NodeKind, Role, Topology};
use crate::runtime::{self, NodeRef, Runtime, RuntimeError, RuntimeKind};
use crate::twin::apply::apply_text;
use crate::twin::commands::{self, Outcome, Ran};
use crate::twin::datastore::{Datastore, WriteMode, ANN_IPV4};
use crate::twin::ipam;
use crate::twin::render::{render_node, Flavor};

pub const STATE_ROOT: &str = "/run/rrlab";

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{0}")]
    Topology(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("lab {0:?} is already up (rrlab down {0} first)")]
    AlreadyUp(String),
    #[error("no lab named {0:?} is up (labs: {1})")]
    NotFound(String, String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Command(String),
    #[error("{0}")]
    Other(String),
}

/// A script of operator commands applied to a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedScript {
    pub label: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabState {
    pub name: String,
    pub topology: PathBuf,
    pub runtime: RuntimeKind,
    pub pods_per_node: u32,
    pub version: u64,
    /// Per cluster, the operator commands applied since `up`, in order.
    pub scripts: BTreeMap<String, Vec<AppliedScript>>,
    /// Nodes whose BIRD a harness action stopped.
    pub bird_stopped: Vec<String>,
}

pub fn lab_dir(lab: &str) -> PathBuf {
    Path::new(STATE_ROOT).join(lab)
}

pub fn node_dir(lab: &str, node: &str) -> PathBuf {
    lab_dir(lab).join(node)
}

impl LabState {
    pub fn load(lab: &str) -> Result<LabState, LabError> {
        let p = lab_dir(lab).join("lab.json");
        let text =
            std::fs::read_to_string(&p).map_err(|_| LabError::NotFound(lab.to_string(), list_labs().join(", ")))?;
        serde_json::from_str(&text).map_err(|e| LabError::Io(format!("{}: {e}", p.display())))
    }

    pub fn save(&self) -> Result<(), LabError> {
        let p = lab_dir(&self.name).join("lab.json");
        let text = serde_json::to_string_pretty(self).map_err(|e| LabError::Io(e.to_string()))?;
        write_atomic(&p, &text).map_err(|e| LabError::Io(format!("{}: {e}", p.display())))
    }

    pub fn topology(&self) -> Result<Topology, LabError> {
        topology::load(&self.topology).map_err(|e| LabError::Topology(e.to_string()))
    }
}

pub fn list_labs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(STATE_ROOT)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("lab.json").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn runtime_for(kind: RuntimeKind) -> Result<Box<dyn Runtime>, LabError> {
    Ok(runtime::runtime_for(kind)?)
}

/// The Kubernetes labels kind puts on a node, plus the config's own.
fn kind_labels(c: &Cluster, n: &topology::ClusterNode) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        ("kubernetes.io/arch".to_string(), "amd64".to_string()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/hostname".to_string(), n.name.clone()),
    ]);
    if n.role == Role::ControlPlane {
        l.insert("node-role.kubernetes.io/control-plane".into(), String::new());
    }
    let _ = c;
    l.extend(n.labels.clone());
    l
}

fn yaml_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// What a freshly installed Calico has in a cluster of the topology: the Kubernetes nodes (with the address
/// calico-node autodetects), the default pool from the pod subnet, and no BGPConfiguration (as in the post).
pub fn initial_datastore(topo: &Topology, c: &Cluster) -> Result<Datastore, LabError> {
    let mut ds = Datastore::new();
    let mut y = String::new();
    for n in &c.nodes {
        let ip = topo
            .node_ip(&n.name)
            .ok_or_else(|| LabError::Topology(format!("node {} has no address on {}", n.name, c.node_interface)))?;
        y.push_str(&format!("---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {}\n  labels:\n", n.name));
        for (k, v) in kind_labels(c, n) {
            y.push_str(&format!("    {}: {}\n", yaml_quote(&k), yaml_quote(&v)));
        }
        y.push_str(&format!("  annotations:\n    {ANN_IPV4}: {ip}\n"));
    }
    let state = match &c.calico_state {
        None => Vec::new(),
        Some(st) => crate::model::resources::parse_resources(&st.file.display().to_string(), &st.text)
            .map_err(|e| LabError::Topology(e.to_string()))?,
    };
    let state_has = |k: crate::model::resources::ResourceKind| state.iter().any(|r| r.resource.kind() == k);
    // calico-node creates the default pool only when no IPPool exists (CALICO_IPV4POOL_CIDR at first start).
    if !state_has(crate::model::resources::ResourceKind::IPPool) {
        y.push_str(&format!(
        "---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: default-ipv4-ippool\nspec:\n  cidr: {}\n  blockSize: 26\n  ipipMode: {}\n  natOutgoing: true\n  nodeSelector: all()\n",
        c.pod_subnet, c.ipip_mode
    ));
    }
    if c.as_number != 64512 {
        y.push_str(&format!("---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  asNumber: {}\n", c.as_number));
    }
    apply_text(&mut ds, &format!("{} (cluster {})", topo.file.display(), c.name), &y, WriteMode::Apply)
        .map_err(|e| LabError::Topology(e.to_string()))?;
    if let Some(st) = &c.calico_state {
        apply_text(&mut ds, &st.file.display().to_string(), &st.text, WriteMode::Apply)
            .map_err(|e| LabError::Topology(e.to_string()))?;
    }
    Ok(ds)
}

/// Calico IPAM after the commands: every node has a block and a tunnel address.
pub fn allocate(ds: &mut Datastore) {
    let nodes: Vec<String> = ds.nodes.keys().cloned().collect();
    for n in nodes {
        let _ = ipam::ensure_tunnel_address(ds, &n);
    }
}

/// Replay a cluster's commands on its initial datastore.
pub fn cluster_datastore(
    topo: &Topology,
    c: &Cluster,
    scripts: &[AppliedScript],
    base: &Path,
) -> Result<Datastore, LabError> {
    let mut ds = initial_datastore(topo, c)?;
    allocate(&mut ds);
    for s in scripts {
        let read = |f: &str| std::fs::read_to_string(base.join(f)).map_err(|e| format!("{f}: {e}"));
        commands::run_script(&mut ds, &s.label, &s.text, &HashMap::new(), &read)
            .map_err(|e| LabError::Command(e.to_string()))?;
        allocate(&mut ds);
    }
    Ok(ds)
}

pub fn pods_for(lab: &str, node: &str, ds: &Datastore, n: u32) -> Vec<PodSpec> {
    let Some(block) = ipam::node_blocks(ds, node).into_iter().next() else { return Vec::new() };
    (0..n)
        .filter_map(|i| {
            let name = format!("{node}-p{}", i + 1);
            Some(PodSpec {
                ip: ipam::pod_ip(block, i)?,
                veth: veth_name("default", &name),
                netns: format!("rrlab-{lab}-{node}-p{}", i + 1),
                name,
            })
        })
        .collect()
}

/// Render every node of every cluster and hand the result to its agent.
pub fn push(state: &mut LabState, topo: &Topology) -> Result<BTreeMap<String, Datastore>, LabError> {
    state.version += 1;
    let base = state.topology.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut out = BTreeMap::new();
    for c in &topo.clusters {
        let scripts = state.scripts.get(&c.name).cloned().unwrap_or_default();
        let ds = cluster_datastore(topo, c, &scripts, &base)?;
        for n in &c.nodes {
            let r = render_node(&ds, &n.name, Flavor::Upstream).map_err(|e| LabError::Other(e.to_string()))?;
            let d = Desired {
                version: state.version,
                node: n.name.clone(),
                bird_files: r.files().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                kernel: r.kernel.clone(),
                felix: r.felix.clone(),
                pods: pods_for(&state.name, &n.name, &ds, state.pods_per_node),
                bird_running: !state.bird_stopped.contains(&n.name),
            };
            let dir = node_dir(&state.name, &n.name);
            let text = serde_json::to_string_pretty(&d).map_err(|e| LabError::Io(e.to_string()))?;
            write_atomic(&dir.join("desired.json"), &text)
                .map_err(|e| LabError::Io(format!("{}: {e}", dir.display())))?;
        }
        out.insert(c.name.clone(), ds);
    }
    state.save()?;
    Ok(out)
}

/// Run operator commands against a cluster of a running lab: parsed whole first, run one by one; the
/// commands that succeeded are recorded and pushed to the nodes. Returns each command's outcome.
pub fn run_commands(
    state: &mut LabState,
    topo: &Topology,
    cluster: &str,
    label: &str,
    script: &str,
) -> Result<Vec<Outcome>, LabError> {
    let c = topo.clusters.iter().find(|c| c.name == cluster).ok_or_else(|| {
        LabError::Other(format!(
            "no cluster {cluster:?} in lab {} (clusters: {})",
            state.name,
            topo.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let base = state.topology.parent().map(Path::to_path_buf).unwrap_or_default();
    let prev = state.scripts.get(cluster).cloned().unwrap_or_default();
    let mut ds = cluster_datastore(topo, c, &prev, &base)?;
    let prepared = commands::prepare(label, script, &HashMap::new()).map_err(|e| LabError::Command(e.to_string()))?;
    let read = |f: &str| std::fs::read_to_string(base.join(f)).map_err(|e| format!("{f}: {e}"));
    let mut outcomes = Vec::new();
    let mut kept = String::new();
    for p in &prepared {
        match commands::run(&mut ds, p, &read) {
            Ran::Done(o) => {
                let ok = o.ok;
                if ok && o.changed {
                    kept.push_str(&script_text_of(script, p.cl.line, &prepared));
                }
                outcomes.push(o);
                if !ok {
                    break;
                }
            }
            Ran::NeedsLab { line, command, .. } => {
                let text = converge::node_status_all(state, topo, Some(cluster)).unwrap_or_else(|e| e.to_string());
                outcomes.push(Outcome { line, command, ok: true, stdout: text, stderr: String::new(), changed: false });
            }
        }
    }
    if !kept.is_empty() {
        state
            .scripts
            .entry(cluster.to_string())
            .or_default()
            .push(AppliedScript { label: label.to_string(), text: kept });
        push(state, topo)?;
        // confd's check_cmd runs on every node: a config BIRD rejects is reported, the old one keeps running.
        let errors = converge::wait_applied(state, c, std::time::Duration::from_secs(10));
        if let Some(last) = outcomes.last_mut() {
            for (node, e) in errors {
                last.stderr.push_str(&format!("{}{node}: calico-node (confd): Error from checkcmd \"bird -p -c …\": {e}; BIRD keeps its previous configuration", if last.stderr.is_empty() { "" } else { "\n" }));
            }
        }
    }
    Ok(outcomes)
}

/// The source text of the command that starts at `line` (up to the next command's line).
fn script_text_of(script: &str, line: usize, prepared: &[commands::Prepared]) -> String {
    let next = prepared.iter().map(|p| p.cl.line).filter(|l| *l > line).min().unwrap_or(usize::MAX);
    script.lines().enumerate().filter(|(i, _)| *i + 1 >= line && *i + 1 < next).map(|(_, l)| format!("{l}\n")).collect()
}

/// Nodes the runtime creates: cluster node containers and linux nodes (bridges live in the fabric).
pub fn runtime_nodes(topo: &Topology) -> Vec<String> {
    topo.nodes
        .values()
        .filter(|n| matches!(n.kind, NodeKind::ExtContainer | NodeKind::Linux))
        .map(|n| n.name.clone())
        .collect()
}

pub fn node_ref(lab: &str, node: &str) -> NodeRef {
    NodeRef { lab: lab.to_string(), node: node.to_string() }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// hybrid-rr with a starting Calico state: its pool replaces the default one, its BGP configuration and
    /// node AS hold from the start.
    #[test]
    fn calico_state_is_the_clusters_starting_state() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies");
        let mut topo = topology::load(&dir.join("hybrid-rr.clab.yml")).unwrap();
        let plain = initial_datastore(&topo, &topo.clusters[0]).unwrap();
        assert_eq!(plain.ip_pools.keys().cloned().collect::<Vec<_>>(), ["default-ipv4-ippool"]);
        topo.clusters[0].calico_state = Some(topology::CalicoState {
            file: "/x/hybrid.calico.yaml".into(),
            text: "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: prod-pool\nspec:\n  cidr: 172.16.0.0/16\n  ipipMode: CrossSubnet\n---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  asNumber: 65010\n---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: hybrid-worker\nspec:\n  bgp:\n    ipv4Address: 10.0.1.3/24\n    asNumber: 65011\n".into(),
        });
        let ds = initial_datastore(&topo, &topo.clusters[0]).unwrap();
        assert_eq!(ds.ip_pools.keys().cloned().collect::<Vec<_>>(), ["prod-pool"]);
        assert_eq!(ds.global_as(), 65010);
        assert_eq!(ds.node_as("hybrid-worker"), 65011);
        assert_eq!(ds.node_as("hybrid-worker2"), 65010);
        // A state that does not apply names its file.
        topo.clusters[0].calico_state.as_mut().unwrap().text =
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  peerIP: 10.0.1.9\n  asNumber: 64512\n  nodeSelector: \"has(\"\n".into();
        let e = initial_datastore(&topo, &topo.clusters[0]).unwrap_err().to_string();
        assert!(e.contains("/x/hybrid.calico.yaml"), "{e}");
    }
}
