//! `rrlab bench`: time to up-and-converged, measured (never asserted). Labs: the post's hybrid-rr on each
//! runtime, and a generated N-node full-mesh cluster (default 100) on netns. Benchmarks raise the host limits
//! their labs need (neighbour table, open files; `converge::check_limits`) without asking.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::converge::{down, up, UpOptions};
use super::LabError;
use crate::model::topology::generator::{generate, GenSpec};

/// Write a one-site, N-node full-mesh cluster (plus the WAN node) into `dir` with the topology generator
/// (`rrlab gen --name mesh<N> --nodes <N> --sites 1 --rrs-per-site 0`); returns the topology path.
pub fn mesh_topology(dir: &Path, nodes: usize) -> Result<PathBuf, LabError> {
    let spec = GenSpec::new(&format!("mesh{nodes}"), nodes, 1, 0);
    let g = generate(&spec).map_err(|e| LabError::Topology(format!("generating mesh{nodes}: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|e| LabError::Io(format!("{}: {e}", dir.display())))?;
    for (file, text) in &g.files {
        let p = dir.join(file);
        std::fs::write(&p, text).map_err(|e| LabError::Io(format!("{}: {e}", p.display())))?;
    }
    Ok(dir.join(g.plan.clab_file()))
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchRow {
    pub lab: String,
    pub runtime: String,
    pub nodes: usize,
    pub sessions: usize,
    pub built_s: f64,
    pub converged_s: f64,
    pub total_s: f64,
    pub down_s: f64,
}

pub fn bench_one(
    topology: &Path,
    runtime: crate::runtime::RuntimeKind,
    ping_matrix: bool,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<BenchRow, LabError> {
    // `rrlab bench` raises the host limits its labs need (docs/benchmarks.md): running it is the consent.
    super::converge::RAISE_LIMITS.store(true, std::sync::atomic::Ordering::Relaxed);
    let t = Instant::now();
    let opts = UpOptions { runtime, pods_per_node: 2, timeout, ping_matrix };
    let r = up(topology, &opts, progress)?;
    let total = t.elapsed();
    let t2 = Instant::now();
    down(&r.lab)?;
    Ok(BenchRow {
        lab: r.lab,
        runtime: runtime.to_string(),
        nodes: r.nodes,
        sessions: r.sessions,
        built_s: r.built.as_secs_f64(),
        converged_s: r.converged.as_secs_f64(),
        total_s: total.as_secs_f64(),
        down_s: t2.elapsed().as_secs_f64(),
    })
}

pub fn table(rows: &[BenchRow]) -> String {
    let mut s = format!(
        "{:<12} {:<8} {:>6} {:>9} {:>9} {:>12} {:>9} {:>8}\n",
        "lab", "runtime", "nodes", "sessions", "built s", "converged s", "total s", "down s"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<12} {:<8} {:>6} {:>9} {:>9.1} {:>12.1} {:>9.1} {:>8.1}\n",
            r.lab, r.runtime, r.nodes, r.sessions, r.built_s, r.converged_s, r.total_s, r.down_s
        ));
    }
    s
}
