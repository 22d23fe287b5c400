//! `rrlab bench`: time to up-and-converged, measured (never asserted). Labs: the post's hybrid-rr on each
//! runtime, and a generated N-node full-mesh cluster (default 100) on netns.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::converge::{down, up, UpOptions};
use super::LabError;

/// Write a one-site, N-node cluster topology (plus a WAN node) into `dir`; returns the topology path.
pub fn mesh_topology(dir: &Path, nodes: usize) -> Result<PathBuf, LabError> {
    std::fs::create_dir_all(dir).map_err(|e| LabError::Io(e.to_string()))?;
    let name = format!("mesh{nodes}");
    let mut kind = String::from("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n  disableDefaultCNI: true\n  podSubnet: 172.24.0.0/14\n  serviceSubnet: 10.96.0.0/16\nnodes:\n  - role: control-plane\n");
    for _ in 1..nodes {
        kind.push_str("  - role: worker\n");
    }
    let mut clab = format!(
        "name: {name}\ntopology:\n  nodes:\n    {name}:\n      kind: k8s-kind\n      startup-config: {name}.kind.yaml\n      labels:\n        rrlab.io/ipip-mode: Always\n        rrlab.io/calico-node-interface: eth1\n    {name}-lan:\n      kind: bridge\n"
    );
    let mut links = String::new();
    for i in 0..nodes {
        let node = match i {
            0 => format!("{name}-control-plane"),
            1 => format!("{name}-worker"),
            n => format!("{name}-worker{n}"),
        };
        let ip = format!("10.40.{}.{}", i / 250, i % 250 + 2);
        clab.push_str(&format!(
            "    {node}:\n      kind: ext-container\n      exec:\n        - ip addr add {ip}/16 dev eth1\n"
        ));
        links.push_str(&format!("    - endpoints: [\"{node}:eth1\", \"{name}-lan:m{i}\"]\n"));
    }
    clab.push_str("  links:\n");
    clab.push_str(&links);
    std::fs::write(dir.join(format!("{name}.kind.yaml")), kind).map_err(|e| LabError::Io(e.to_string()))?;
    let p = dir.join(format!("{name}.clab.yml"));
    std::fs::write(&p, clab).map_err(|e| LabError::Io(e.to_string()))?;
    Ok(p)
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
