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
//! - [`runner`]: the [`Runner`] seam ([`ProcessRunner`], [`RecordingRunner`]) and [`execute`].
//! - [`backend`]: [`backend::KindBackend`], the lab as the one step runner ([`crate::runner`]) drives it,
//!   behind the [`crate::backend::Backend`] seam.

pub mod backend;
pub mod exec;
pub mod fidelity;
pub mod parse;
pub mod plan;
pub mod runner;
pub mod versions;

#[cfg(test)]
mod tests;

pub use fidelity::{check_cluster, compare_node, FidelityError};
pub use plan::{plan_down, plan_status, plan_up, ClusterAccess, Plan, PlanOptions, PlanStep};
pub use runner::{execute, ExecError, ProcessRunner, RecordingRunner, Runner, StepOutput};

/// `rrlab up --backend kind`: run [`plan_up`]; when a step fails, run [`plan_down`] (best effort) so that
/// nothing half-built stays, and return the failure. `progress` sees every step before it runs.
pub fn up(
    topo: &crate::model::topology::Topology,
    opts: &PlanOptions,
    runner: &dyn Runner,
    progress: &mut dyn FnMut(usize, &PlanStep),
) -> Result<(), ExecError> {
    match execute(&plan_up(topo, opts), runner, progress) {
        Ok(_) => Ok(()),
        Err(e) => {
            let _ = execute(&plan_down(topo, opts), runner, &mut |_, _| {});
            Err(e)
        }
    }
}

/// `rrlab down --backend kind`: run [`plan_down`]; returns the failures it tolerated.
pub fn down(
    topo: &crate::model::topology::Topology,
    opts: &PlanOptions,
    runner: &dyn Runner,
    progress: &mut dyn FnMut(usize, &PlanStep),
) -> Vec<ExecError> {
    match execute(&plan_down(topo, opts), runner, progress) {
        Ok((_, tolerated)) => tolerated,
        Err(e) => vec![e],
    }
}

/// Run one observation inside a node's calico-node and return its text (parse it with
/// [`crate::observe`]).
pub fn observe(
    runner: &dyn Runner,
    access: &ClusterAccess,
    node: &str,
    pod: &str,
    what: &exec::Observation,
) -> Result<String, ExecError> {
    runner::run_step(runner, 0, &exec::observe(access, node, pod, what)).map(|o| o.stdout)
}
