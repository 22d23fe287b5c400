//! The kind backend: the same topology files and runbooks, against real calico-node. kind clusters from the
//! topology's kind configs, Calico v3.30 from its pinned manifest, calicoctl, containerlab for the links,
//! the WAN and its impairments. It needs images from registries, so it runs where they can be pulled
//! (users' machines, the nightly workflow); see `docs/kind-backend.md` for what was verified where.
//!
//! Pure core, thin edge:
//! - [`versions`]: every pin, with where it came from;
//! - [`plan`]: [`plan_up`] / [`plan_down`] / [`plan_status`] build a [`Plan`] (ordered [`PlanStep`]s: argv,
//!   env, cwd, stdin) from a [`Topology`](crate::model::topology::Topology); `Display` prints it as a shell
//!   script (`rrlab up --backend kind --dry-run`);
//! - [`exec`]: operator commands, commands inside calico-node, pods and node containers, and on the WAN
//!   (the host's tools in the WAN's network namespace);
//! - [`parse`]: `kubectl get pods -o json`, block affinities, `calicoctl`/`kind`/`containerlab version`
//!   (BIRD, kernel, ipset and iptables text goes through [`crate::observe`], as for the twin);
//! - [`fidelity`]: twin render vs calico-node's live confd files;
//! - [`preflight`]: tools and versions, leftovers, inotify limits, judged before anything is created;
//! - [`record`]: the created-resources record; teardown removes what it lists and nothing else;
//! - [`runner`]: the [`Runner`] seam ([`ProcessRunner`], [`RecordingRunner`]) and [`execute`].
//! - [`backend`]: [`backend::KindBackend`], the lab as the one step runner ([`crate::runner`]) drives it,
//!   behind the [`crate::backend::Backend`] seam.

pub mod backend;
pub mod docker_ops;
pub mod exec;
pub mod fidelity;
pub mod parse;
pub mod plan;
pub mod preflight;
pub mod record;
pub mod runner;
pub mod versions;

#[cfg(test)]
mod defect_tests;
#[cfg(test)]
mod tests;

pub use fidelity::{check_cluster, compare_node, FidelityError};
pub use plan::{plan_down, plan_status, plan_up, ClusterAccess, Plan, PlanOptions, PlanStep};
pub use runner::{execute, ExecError, ProcessRunner, RecordingRunner, Runner, StepOutput};

/// Why the kind backend's bring-up or teardown failed.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A tool cannot be started (see [`preflight::tool_missing_message`]).
    #[error("{0}")]
    ToolMissing(String),
    #[error(transparent)]
    Preflight(#[from] preflight::PreflightError),
    /// A bring-up step failed; what this run had created was torn down (or not all of it: see `teardown`).
    #[error("{error}\n{teardown}")]
    UpFailed { error: Box<ExecError>, teardown: Box<Teardown> },
    /// Teardown could not remove everything recorded; what is left stays in the record.
    #[error("{0}")]
    Teardown(Teardown),
    /// `down` found no record of the lab: rrlab created nothing it knows of, so it removes nothing.
    #[error(
        "lab {lab}: no record of what rrlab created ({path}: {why}); rrlab removes only what it recorded creating. Look with `kind get clusters`, `docker ps -a --filter label=containerlab={lab}` and remove by hand what is yours to remove"
    )]
    NoRecord { lab: String, path: String, why: String },
    #[error(transparent)]
    Record(#[from] record::RecordError),
    /// A lab name or topology that resolves to no topology file.
    #[error("{0}")]
    Resolve(String),
}

/// What a teardown removed and what it could not.
#[derive(Debug, Default)]
pub struct Teardown {
    pub lab: String,
    pub removed: Vec<record::Resource>,
    pub failed: Vec<(record::Resource, Vec<ExecError>)>,
}

impl Teardown {
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

impl std::fmt::Display for Teardown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |v: &[record::Resource]| v.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ");
        if self.removed.is_empty() && self.failed.is_empty() {
            return write!(f, "teardown of lab {}: this run had created nothing, nothing was removed", self.lab);
        }
        write!(
            f,
            "teardown of lab {}: removed {}",
            self.lab,
            if self.removed.is_empty() { "nothing".into() } else { names(&self.removed) }
        )?;
        for (r, errs) in &self.failed {
            write!(f, "\n  NOT removed: {r} (still in the record; `rrlab down --backend kind {}` retries):", self.lab)?;
            for e in errs {
                write!(f, "\n    {e}")?;
            }
        }
        Ok(())
    }
}

/// What a successful bring-up reports.
#[derive(Debug, Default)]
pub struct UpReport {
    /// Version skew and other warnings (also printed on stderr).
    pub warnings: Vec<String>,
    /// Kind clusters used as they were (`--reuse`).
    pub reused: Vec<String>,
    /// What this run created (the record).
    pub created: Vec<record::Resource>,
}

fn spawn_error(e: ExecError) -> KindError {
    if let ExecError::Spawn { command, .. } = &e {
        let tool = command.split_whitespace().next().unwrap_or("").to_string();
        let path = std::env::var("PATH").unwrap_or_default();
        let sudo = std::env::var("SUDO_USER").ok();
        return KindError::ToolMissing(preflight::tool_missing_message(&tool, &path, sudo.as_deref()));
    }
    KindError::Exec(e)
}

/// Tear down what `rec` records, resource by resource (every step runs; each failure is kept). The record
/// file then lists only what could not be removed, or is deleted when nothing is left.
pub fn teardown(
    topo: &crate::model::topology::Topology,
    opts: &PlanOptions,
    rec: &record::Record,
    runner: &dyn Runner,
    progress: &mut dyn FnMut(usize, &PlanStep),
) -> Teardown {
    let mut t = Teardown { lab: topo.name.clone(), ..Default::default() };
    let mut i = 0;
    for res in plan::teardown_order(rec) {
        let mut errs = Vec::new();
        for st in plan::teardown_steps(topo, opts, &res) {
            progress(i, &st);
            if let Err(e) = runner::run_step(runner, i, &st) {
                errs.push(e);
            }
            i += 1;
        }
        if errs.is_empty() {
            t.removed.push(res);
        } else {
            t.failed.push((res, errs));
        }
    }
    let left = record::Record {
        resources: rec.resources.iter().filter(|r| t.failed.iter().any(|(f, _)| f == *r)).cloned().collect(),
        ..rec.clone()
    };
    let last = if left.is_empty() { plan::remove_record_step(opts) } else { plan::record_step(opts, &left) };
    progress(i, &last);
    if let Err(e) = runner::run_step(runner, i, &last) {
        match t.failed.last_mut() {
            Some((_, errs)) => errs.push(e),
            None => t.failed.push((record::Resource::Containerlab(topo.name.clone()), vec![e])),
        }
    }
    t
}

/// `rrlab up --backend kind`: preflight (tools and versions, leftovers, inotify limits), then
/// [`plan::plan_up_with`]. Every resource is recorded as it is made; when a step fails, exactly what this
/// run recorded is torn down and both the failure and the teardown are returned. `progress` sees every
/// step before it runs.
pub fn up(
    topo: &crate::model::topology::Topology,
    opts: &PlanOptions,
    runner: &dyn Runner,
    progress: &mut dyn FnMut(usize, &PlanStep),
) -> Result<UpReport, KindError> {
    let pre = preflight::steps(topo, opts);
    let mut warnings = Vec::new();
    let mut outs = Vec::new();
    for (i, st) in pre.iter().enumerate() {
        progress(i, st);
        let (o, w) = runner::run_step_warn(runner, i, st).map_err(spawn_error)?;
        outs.push(o);
        warnings.extend(w);
    }
    let found = preflight::evaluate(topo, opts, &outs)?;
    warnings.extend(found.warnings);
    for w in &warnings {
        eprintln!("rrlab: warning: {w}");
    }
    for (k, st) in found.raise.iter().enumerate() {
        progress(pre.len() + k, st);
        runner::run_step(runner, pre.len() + k, st)?;
    }
    let plan = plan::plan_up_with(topo, opts, &found.reused);
    let mut recorded = record::Record::new(&topo.name, &topo.file);
    for (i, st) in plan.steps.iter().enumerate().skip(pre.len()) {
        progress(i, st);
        match runner::run_step_warn(runner, i, st) {
            Ok((_, w)) => {
                if let Some(w) = w {
                    eprintln!("rrlab: warning: {w}");
                    warnings.push(w);
                }
                if plan::is_record_step(opts, st) {
                    recorded = record::Record::parse(st.stdin.as_deref().unwrap_or(""))?;
                }
            }
            Err(error) => {
                let teardown = teardown(topo, opts, &recorded, runner, &mut |_, _| {});
                return Err(KindError::UpFailed { error: Box::new(error), teardown: Box::new(teardown) });
            }
        }
    }
    Ok(UpReport { warnings, reused: found.reused, created: recorded.resources })
}

/// Read the lab's record (`cat <work_dir>/created-resources` through the runner).
pub fn read_record(lab: &str, opts: &PlanOptions, runner: &dyn Runner) -> Result<record::Record, KindError> {
    let st = PlanStep::new(
        format!("the record of what rrlab created for lab {lab}"),
        &["cat", &opts.record_file().display().to_string()],
    );
    let out = runner::run_step(runner, 0, &st).map_err(|e| KindError::NoRecord {
        lab: lab.to_string(),
        path: opts.record_file().display().to_string(),
        why: match &e {
            ExecError::Failed { stderr, .. } => stderr.trim().to_string(),
            other => other.to_string(),
        },
    })?;
    let r = record::Record::parse(&out.stdout)?;
    if r.lab != lab {
        return Err(KindError::Resolve(format!("{}: records lab {}, not {lab}", opts.record_file().display(), r.lab)));
    }
    Ok(r)
}

/// `rrlab down --backend kind`: remove exactly what the lab's record lists (see [`teardown`]); Err when
/// there is no record or something could not be removed.
pub fn down(
    topo: &crate::model::topology::Topology,
    opts: &PlanOptions,
    runner: &dyn Runner,
    progress: &mut dyn FnMut(usize, &PlanStep),
) -> Result<Teardown, KindError> {
    let rec = read_record(&topo.name, opts, runner)?;
    let t = teardown(topo, opts, &rec, runner, progress);
    if t.ok() {
        Ok(t)
    } else {
        Err(KindError::Teardown(t))
    }
}

/// Which topology file a lab argument names: a path to an existing file as it is; otherwise a lab name,
/// resolved from its record (`record_text`: the lab's created-resources file, when it exists), else
/// `<topologies_dir>/<name>.clab.yml`. Pure (`exists` answers for files).
pub fn resolve_topology(
    arg: &str,
    record_text: Option<&str>,
    topologies_dir: &std::path::Path,
    exists: &dyn Fn(&std::path::Path) -> bool,
) -> Result<std::path::PathBuf, KindError> {
    let as_path = std::path::Path::new(arg);
    if exists(as_path) && (arg.ends_with(".yml") || arg.ends_with(".yaml") || arg.contains('/')) {
        return Ok(as_path.to_path_buf());
    }
    let mut tried = vec![format!("{arg} (a file)")];
    if let Some(text) = record_text {
        let r = record::Record::parse(text)?;
        if exists(&r.topology) {
            return Ok(r.topology);
        }
        tried.push(format!("{} (from the lab's record)", r.topology.display()));
    }
    let t = topologies_dir.join(format!("{arg}.clab.yml"));
    if exists(&t) {
        return Ok(t);
    }
    tried.push(t.display().to_string());
    Err(KindError::Resolve(format!("{arg:?} names no topology: tried {}", tried.join(", "))))
}
