//! `rrlab fidelity <lab>`: does the twin render what real calico-node renders for the same state? For each
//! node, the twin's Calico-flavour render (exactly what confd writes for Calico's BIRD fork) is compared
//! with calico-node's live `/etc/calico/confd/config/` by *behaviour* ([`crate::birdconf`]: sessions and
//! their options, export and kernel decisions, static routes, router id), not text.
//!
//! "The same state": the twin's datastore is rebuilt from the topology and the commands the lab ran, but
//! IPAM blocks are whatever real Calico IPAM picked, so the live BlockAffinities replace the twin's own
//! choice ([`use_live_blocks`]) before rendering. How the lead wires it:
//!
//! ```text
//! for each cluster c:
//!     ds = lab::cluster_datastore(topo, c, scripts, base)      // the twin's state for the lab's commands
//!     reports = check_cluster(runner, &opts.access(&c.name), &mut ds, &node_names)?
//! ```
//!
//! [`check_cluster`] reads the live block affinities and puts them in `ds` ([`use_live_blocks`]), finds
//! each node's calico-node pod, renders the node in the Calico flavour, reads the live files
//! (`kubectl exec … cat`) and compares ([`compare_node`]).

use std::collections::BTreeMap;

use super::exec::in_calico_node;
use super::parse::{calico_node_pods, parse_block_affinities, LiveBlockAffinity};
use super::plan::{ClusterAccess, PlanStep};
use super::runner::{run_step, ExecError, Runner};
use crate::birdconf::{self, behaviour, compare, Report};
use crate::model::resources::BlockAffinity;
use crate::twin::datastore::Datastore;
use crate::twin::render::{render_node, Flavor, Render};

/// Where confd writes BIRD's configuration in calico-node, and its IPv4 files (one place:
/// `crate::backend::observe`).
pub use crate::backend::observe::{CONFD_DIR, CONFD_FILES};

#[derive(Debug, thiserror::Error)]
pub enum FidelityError {
    #[error("the twin's render for {node} is the {flavor:?} flavour; fidelity compares the Calico flavour (render_node(…, Flavor::Calico))")]
    WrongFlavour { node: String, flavor: Flavor },
    #[error("the twin's render for {node} is unreadable: {error}")]
    Twin { node: String, error: String },
    #[error("calico-node's live config on {node} is unreadable: {error}")]
    Live { node: String, error: String },
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Parse(#[from] crate::observe::ParseError),
    #[error("no calico-node pod runs on {node} (calico-node pods: {pods})")]
    NoPod { node: String, pods: String },
    #[error("the twin cannot render {node}: {error}")]
    Render { node: String, error: String },
}

/// Compare one node: the live files are what calico-node really has (expected), the twin's render is the
/// actual; an empty [`Report`] means the same behaviour. `live_files` maps file names (`bird.cfg`,
/// `bird_ipam.cfg`, `bird_aggr.cfg`; prefixed keys such as `expected.bird.cfg` work too) to their text.
pub fn compare_node(twin: &Render, live_files: &BTreeMap<String, String>) -> Result<Report, FidelityError> {
    if twin.flavor != Flavor::Calico {
        return Err(FidelityError::WrongFlavour { node: twin.node.clone(), flavor: twin.flavor });
    }
    let twin_files: BTreeMap<String, String> =
        twin.files().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let ours = birdconf::load_set(&twin_files)
        .map_err(|e| FidelityError::Twin { node: twin.node.clone(), error: e.to_string() })?;
    let theirs = birdconf::load_set(live_files)
        .map_err(|e| FidelityError::Live { node: twin.node.clone(), error: e.to_string() })?;
    Ok(Report(compare(&behaviour(&theirs), &behaviour(&ours))))
}

/// The commands that read a node's live confd files (`kubectl exec <pod> -c calico-node -- cat …`).
pub fn live_file_steps(a: &ClusterAccess, node: &str, pod: &str) -> Vec<(String, PlanStep)> {
    CONFD_FILES
        .iter()
        .map(|f| (f.to_string(), in_calico_node(a, node, pod, &["cat", &format!("{CONFD_DIR}/{f}")])))
        .collect()
}

/// Read a node's live confd files through a runner.
pub fn read_live_files(
    runner: &dyn Runner,
    a: &ClusterAccess,
    node: &str,
    pod: &str,
) -> Result<BTreeMap<String, String>, FidelityError> {
    let mut out = BTreeMap::new();
    for (i, (name, step)) in live_file_steps(a, node, pod).into_iter().enumerate() {
        out.insert(name, run_step(runner, i, &step)?.stdout);
    }
    Ok(out)
}

/// `kubectl get blockaffinities.crd.projectcalico.org -o json` (parse with
/// [`super::parse::parse_block_affinities`]).
pub fn block_affinities_step(a: &ClusterAccess) -> PlanStep {
    PlanStep::new(
        format!("{}: Calico IPAM block affinities", a.cluster),
        &a.kubectl(&["get", "blockaffinities.crd.projectcalico.org", "-o", "json"]),
    )
}

/// Replace the twin's IPAM blocks with the ones real Calico IPAM chose, so that the twin renders the same
/// blackhole routes and aggregation as calico-node.
pub fn use_live_blocks(ds: &mut Datastore, live: &[LiveBlockAffinity]) {
    ds.block_affinities.clear();
    for b in live {
        ds.block_affinities.insert(
            b.name.clone(),
            BlockAffinity {
                name: b.name.clone(),
                node: b.node.clone(),
                cidr: b.cidr,
                state: b.state.clone(),
                deleted: b.deleted,
                kind: b.kind.clone(),
            },
        );
    }
}

/// Fidelity of every node of a cluster: node → report (empty = same behaviour). `ds` is the twin's
/// datastore for the lab's state; its IPAM blocks are replaced by the live ones.
pub fn check_cluster(
    runner: &dyn Runner,
    a: &ClusterAccess,
    ds: &mut Datastore,
    nodes: &[String],
) -> Result<BTreeMap<String, Report>, FidelityError> {
    let aff = run_step(runner, 0, &block_affinities_step(a))?;
    use_live_blocks(ds, &parse_block_affinities(&aff.stdout)?);
    let pods = calico_node_pods(&run_step(runner, 1, &super::exec::calico_node_pods(a))?.stdout)?;
    let mut out = BTreeMap::new();
    for n in nodes {
        let pod = pods.get(n).ok_or_else(|| FidelityError::NoPod {
            node: n.clone(),
            pods: if pods.is_empty() { "none".into() } else { pods.values().cloned().collect::<Vec<_>>().join(", ") },
        })?;
        let render = render_node(ds, n, Flavor::Calico)
            .map_err(|e| FidelityError::Render { node: n.clone(), error: e.to_string() })?;
        let live = read_live_files(runner, a, n, pod)?;
        out.insert(n.clone(), compare_node(&render, &live)?);
    }
    Ok(out)
}
