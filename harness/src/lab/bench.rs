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
    /// From the agents' start to the last node's last BIRD route change, stamped on the node.
    pub converged_on_node_s: Option<f64>,
    pub total_s: f64,
    pub down_s: f64,
    pub memory: Option<super::converge::Memory>,
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
    let opts = UpOptions { runtime, pods_per_node: 2, timeout, ping_matrix, ssh: false };
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
        converged_on_node_s: r.routes_converged_on_node.map(|d| d.as_secs_f64()),
        total_s: total.as_secs_f64(),
        down_s: t2.elapsed().as_secs_f64(),
        memory: r.memory,
    })
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

fn mib(kib: u64) -> u64 {
    kib / 1024
}

/// `BIRDs/agents/rrlab` in MiB, or `-`.
fn memory_text(m: Option<super::converge::Memory>) -> String {
    m.map(|m| format!("{}/{}/{}", mib(m.birds_kib), mib(m.agents_kib), mib(m.rrlab_kib))).unwrap_or_else(|| "-".into())
}

pub fn table(rows: &[BenchRow]) -> String {
    let mut s = format!(
        "{:<12} {:<8} {:>6} {:>9} {:>8} {:>11} {:>9} {:>8} {:>7}  {}\n",
        "lab",
        "runtime",
        "nodes",
        "sessions",
        "built s",
        "converged s",
        "on node s",
        "total s",
        "down s",
        "RSS MiB birds/agents/rrlab"
    );
    for r in rows {
        let m = memory_text(r.memory);
        s.push_str(&format!(
            "{:<12} {:<8} {:>6} {:>9} {:>8.1} {:>11.1} {:>9} {:>8.1} {:>7.1}  {}\n",
            r.lab,
            r.runtime,
            r.nodes,
            r.sessions,
            r.built_s,
            r.converged_s,
            opt(r.converged_on_node_s),
            r.total_s,
            r.down_s,
            m
        ));
    }
    s
}

/// A mesh of N nodes and raw BIRD at the same N, measured one right after the other in the same run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pair {
    pub nodes: usize,
    pub rrlab: BenchRow,
    pub baseline: super::baseline::BaselineRow,
    /// rrlab's node-stamped convergence over BIRD's (both from the last node's last route change).
    pub ratio_on_node: Option<f64>,
    /// The same, from the polls that confirmed convergence.
    pub ratio_polled: f64,
}

impl Pair {
    pub fn of(r: &BenchRow, b: super::baseline::BaselineRow) -> Pair {
        let ratio_on_node = match (r.converged_on_node_s, b.converged_on_node_s) {
            (Some(a), Some(c)) if c > 0.0 => Some(a / c),
            _ => None,
        };
        Pair {
            nodes: b.nodes,
            ratio_polled: r.converged_s / b.converged_s.max(0.001),
            ratio_on_node,
            rrlab: r.clone(),
            baseline: b,
        }
    }
}

pub fn pairs_table(pairs: &[Pair]) -> String {
    let mut s = format!(
        "{:>6} {:>9}  {:>22}  {:>22}  {:>14}  {}\n",
        "nodes",
        "sessions",
        "rrlab on node / polled",
        "BIRD on node / polled",
        "ratio node/poll",
        "RSS MiB rrlab (birds/agents/rrlab) | BIRD"
    );
    for p in pairs {
        let m = memory_text(p.rrlab.memory);
        s.push_str(&format!(
            "{:>6} {:>9}  {:>22}  {:>22}  {:>14}  {} | {}\n",
            p.nodes,
            p.baseline.sessions,
            format!("{} s / {:.1} s", opt(p.rrlab.converged_on_node_s), p.rrlab.converged_s),
            format!("{} s / {:.1} s", opt(p.baseline.converged_on_node_s), p.baseline.converged_s),
            format!(
                "{} / {:.2}",
                p.ratio_on_node.map(|r| format!("{r:.2}")).unwrap_or_else(|| "-".into()),
                p.ratio_polled
            ),
            m,
            mib(p.baseline.bird_rss_kib)
        ));
    }
    s
}

/// The pairs of one N summarised: how many, and the median, lowest and highest node-stamped ratio.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RatioSummary {
    pub nodes: usize,
    pub pairs: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// The median of `v` (the mean of the two middle values for an even count); None when empty.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

/// Per N (in the order first met), the node-stamped ratios of its pairs summarised (the polled ratio where
/// a pair has no node stamp).
pub fn summarise(pairs: &[Pair]) -> Vec<RatioSummary> {
    let mut order: Vec<usize> = Vec::new();
    for p in pairs {
        if !order.contains(&p.nodes) {
            order.push(p.nodes);
        }
    }
    order
        .into_iter()
        .filter_map(|n| {
            let r: Vec<f64> =
                pairs.iter().filter(|p| p.nodes == n).map(|p| p.ratio_on_node.unwrap_or(p.ratio_polled)).collect();
            Some(RatioSummary {
                nodes: n,
                pairs: r.len(),
                median: median(&r)?,
                min: r.iter().copied().fold(f64::INFINITY, f64::min),
                max: r.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            })
        })
        .collect()
}

/// One line per N with more than one pair: `200 nodes: median ratio 1.07 of 3 pairs (1.01 .. 1.27)`.
pub fn summary_table(s: &[RatioSummary]) -> String {
    s.iter()
        .filter(|r| r.pairs > 1)
        .map(|r| {
            format!(
                "{:>4} nodes: median ratio {:.2} of {} pairs ({:.2} .. {:.2}), on node\n",
                r.nodes, r.median, r.pairs, r.min, r.max
            )
        })
        .collect()
}

/// Whether round `i` (from 0) of a repeated measurement runs raw BIRD before rrlab: every other round, so that
/// what the first lab of a pair leaves behind (e.g. the kernel still freeing its namespaces) falls on each side
/// equally.
pub fn baseline_first(round: usize) -> bool {
    round % 2 == 1
}

/// One step of a rehearsal, as measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RehearsalStep {
    pub step: String,
    pub passed: bool,
    pub duration_s: f64,
    pub converged_s: Option<f64>,
    pub routes_settled_s: Option<f64>,
    pub wan: Option<crate::report::WanStep>,
    /// Per probe: (lost, sent, longest outage ms).
    pub probes: Vec<(String, u64, u64, u128)>,
}

/// A runbook rehearsed end to end on netns: bring-up, each step, teardown, and the wall time of it all.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rehearsal {
    pub runbook: String,
    pub nodes: usize,
    pub up_s: f64,
    pub steps: Vec<RehearsalStep>,
    pub down_s: f64,
    pub wall_s: f64,
    pub passed: bool,
    /// rrlab's own peak resident memory (VmHWM) at the end (KiB).
    pub rrlab_peak_kib: u64,
}

/// Rehearse `runbook` on netns, timing everything (the teardown is timed apart from the last step).
pub fn rehearse(runbook: &Path, progress: &dyn Fn(&str)) -> Result<Rehearsal, LabError> {
    super::converge::RAISE_LIMITS.store(true, std::sync::atomic::Ordering::Relaxed);
    let t = Instant::now();
    let opts = crate::runner::RunOptions {
        runtime: Some(crate::runtime::RuntimeKind::Netns),
        keep: true,
        up_timeout: Duration::from_secs(600),
        ..Default::default()
    };
    let cb = crate::runner::Callbacks { on_step: &|r| progress(&crate::report::step_line(r)), progress };
    let res = crate::runner::run(runbook, &opts, &cb).map_err(|e| LabError::Other(e.to_string()))?;
    let t2 = Instant::now();
    let nodes = super::LabState::load(&res.lab)
        .and_then(|s| s.topology())
        .ok()
        .map(|t| t.clusters.iter().map(|c| c.nodes.len()).sum());
    super::converge::down(&res.lab)?;
    let down_s = t2.elapsed().as_secs_f64();
    let steps = res
        .steps
        .iter()
        .map(|s| RehearsalStep {
            step: s.step.clone(),
            passed: s.passed,
            duration_s: s.duration.as_secs_f64(),
            converged_s: s.converge.map(|d| d.as_secs_f64()),
            routes_settled_s: s.routes_settled.map(|d| d.as_secs_f64()),
            wan: s.wan.clone(),
            probes: s.probes.iter().map(|(n, p)| (n.clone(), p.lost(), p.sent, p.longest_outage.as_millis())).collect(),
        })
        .collect();
    let peak =
        std::fs::read_to_string("/proc/self/status").map(|s| super::converge::status_kib(&s, "VmHWM:")).unwrap_or(0);
    Ok(Rehearsal {
        runbook: res.runbook.clone(),
        nodes: nodes.unwrap_or(0),
        up_s: res.up.as_secs_f64(),
        passed: res.passed(),
        steps,
        down_s,
        wall_s: t.elapsed().as_secs_f64(),
        rrlab_peak_kib: peak,
    })
}

pub fn rehearsal_table(r: &Rehearsal) -> String {
    let mut s = format!(
        "{} ({} nodes): up {:.1} s, steps {:.1} s, down {:.1} s, wall {:.1} s, {}; rrlab peak RSS {} MiB\n",
        r.runbook,
        r.nodes,
        r.up_s,
        r.steps.iter().map(|x| x.duration_s).sum::<f64>(),
        r.down_s,
        r.wall_s,
        if r.passed { "every step passed" } else { "FAILED" },
        mib(r.rrlab_peak_kib)
    );
    s.push_str(&format!(
        "  {:<4} {:<58} {:>7} {:>10} {:>9} {:>9} {:>10} {:>11}  {}\n",
        "",
        "step",
        "time s",
        "converged",
        "settled",
        "WAN BGP",
        "BGP pkts",
        "BGP bytes",
        "probes lost/sent (longest outage)"
    ));
    for st in &r.steps {
        let (sess, pk, by) = st
            .wan
            .as_ref()
            .map(|w| (w.sessions.to_string(), w.bgp_packets.to_string(), w.bgp_bytes.to_string()))
            .unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
        let probes: Vec<String> = st.probes.iter().map(|(n, l, t, o)| format!("{n} {l}/{t} ({o} ms)")).collect();
        let name: String = st.step.chars().take(58).collect();
        s.push_str(&format!(
            "  {:<4} {:<58} {:>7.1} {:>10} {:>9} {:>9} {:>10} {:>11}  {}\n",
            if st.passed { "PASS" } else { "FAIL" },
            name,
            st.duration_s,
            opt(st.converged_s),
            opt(st.routes_settled_s),
            sess,
            pk,
            by,
            probes.join(", ")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(nodes: usize, rrlab: f64, bird: f64) -> Pair {
        let r = BenchRow {
            lab: format!("mesh{nodes}"),
            runtime: "netns".into(),
            nodes,
            sessions: nodes * (nodes - 1),
            built_s: 1.0,
            converged_s: rrlab + 0.5,
            converged_on_node_s: Some(rrlab),
            total_s: 2.0,
            down_s: 1.0,
            memory: None,
        };
        let b = super::super::baseline::BaselineRow {
            nodes,
            sessions: nodes * (nodes - 1),
            built_s: 1.0,
            converged_s: bird + 0.5,
            converged_on_node_s: Some(bird),
            bird_rss_kib: 0,
        };
        Pair::of(&r, b)
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn pairs_are_summarised_per_n_by_their_node_stamped_ratio() {
        let pairs = [pair(200, 36.4, 28.8), pair(50, 3.0, 3.4), pair(200, 42.8, 40.2), pair(200, 30.0, 30.0)];
        let s = summarise(&pairs);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].nodes, s[0].pairs), (200, 3));
        assert!((s[0].median - 42.8 / 40.2).abs() < 1e-9, "{s:?}");
        assert!((s[0].min - 1.0).abs() < 1e-9 && (s[0].max - 36.4 / 28.8).abs() < 1e-9, "{s:?}");
        assert_eq!((s[1].nodes, s[1].pairs), (50, 1));
        let t = summary_table(&s);
        assert_eq!(t, " 200 nodes: median ratio 1.06 of 3 pairs (1.00 .. 1.26), on node\n");
    }

    #[test]
    fn repeated_rounds_alternate_which_lab_goes_first() {
        let order: Vec<bool> = (0..4).map(baseline_first).collect();
        assert_eq!(order, [false, true, false, true]);
    }
}
