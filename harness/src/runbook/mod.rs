//! Runbooks: a procedure as data (the operator's commands verbatim, harness actions, expectations in the
//! operator's words), and the pure core that judges a lab against it.
//!
//! - [`model`]: the typed runbook ([`Runbook`], [`Step`], [`Expectation`], node sets);
//! - [`parse`](parse()) / [`load`]: YAML with `file:line:col: field …` errors ([`load`] also checks node,
//!   cluster and site names against the topology);
//! - [`lab`]: what expectations observe ([`LabView`]) and what a step produced ([`StepOutcome`]);
//! - [`check`](check::check) / [`wait_all`]: expectations, polled until they hold, with readable diffs.
//!
//! The executor (running steps on a live lab, probes) lives elsewhere and drives these.
//!
//! # Format
//!
//! ```yaml
//! name: P1 mesh to partitioned route reflectors
//! description: …                          # optional
//! topology: ../topologies/hybrid-rr.clab.yml   # relative to the runbook
//! defaults: {timeout: 60s, poll: 500ms, block_size: 26}   # optional; 30s, 500ms, 26
//! probes:                                 # continuous pod-to-pod traffic, measured per step
//!   - {name: a-to-b, from: hybrid-worker3, to: pod:hybrid-worker7-p1, rate: 200}   # node = its first pod
//! steps:
//!   - name: turn the mesh off
//!     run: |                              # verbatim; heredocs welcome. `: ` needs this block form
//!       calicoctl patch bgpconfiguration default -p '{"spec": {"nodeToNodeMeshEnabled": false}}'
//!     cluster: hybrid                     # required when the topology has several clusters,
//!                                         # or `run: {cluster1: …, cluster2: …}` (one step per cluster)
//!     timeout: 90s                        # optional, per step
//!     settle: 5s                          # optional: keep measuring after convergence, then re-check
//!     expect: [ … ]
//! ```
//! Instead of `run`, at most one harness action: `wan: heal | partition <a> <b> | partition <a> -> <b> |
//! loss 5% | delay 100ms | rate 512kbit` (or `{partition: {from, to, one_way}}`; sites or CIDRs),
//! `stop_node`, `start_node`, `stop_bird`, `start_bird`, `restart_calico_node: <node>`, `wait: 10s`; or
//! nothing (a step of checks).
//!
//! Node sets: `hybrid-worker3`, a list, `a, b`, `all`, `cluster:<name>`, `site:<bridge>`, `label:<k>=<v>`,
//! `label:<k>!=<v>`, `label:<k>`. Pod sets add `pod:<name>`. Addresses: an IP or a node name (its IP);
//! `owner` for the node whose block is checked. Prefixes: a CIDR, `block:<node>`, `blocks:<node set>`
//! (several nodes: the others' blocks). Bounds: `4`, `<= 20000`, `>= 1`, `< 3`, `> 0`, `2..5`.
//!
//! Expectations (one kind per list item; each polled until it holds, except `loss` and `converge`, judged
//! at the end of the step):
//! - `sessions: {on, peers: [<peer> [<type>] [<state>], {peer, type, state}]}`: the exact peer set, as
//!   `calicoctl node status` shows it; a node-set peer means each node of the set but the observer;
//!   types `node-to-node mesh`, `node specific`, `global`; state `Established` (INFO) or `up` (STATE).
//! - `rib: {on, prefix, absent, kind, next_hop, from, cluster_list, originator_id, as_path, count, path: best|any}`
//! - `fib: {on, contains: [routes], absent: [routes], exact: [routes]}`; a route is written as `ip route`
//!   prints it (`blocks:all via owner dev tunl0 proto bird onlink`); `exact` = the `proto bird` routes.
//! - `reach: {from, to, result: pass|fail, both_ways}`: every pod of `from` pings every pod of `to`.
//! - `ipset: {on, set, contains, absent, exact}`: members (IPs, CIDRs, node sets → node IPs).
//! - `iptables: {on, chain, rule: <comment>, present, packets, bytes}`: counters summed over `on`:
//!   `increases` / `unchanged` (since the step started) or a bound on the value.
//! - `config: {on, file, contains: [lines], lacks: [lines]}`: whitespace-normalised lines; an entry of
//!   several lines matches consecutive lines.
//! - `fails: <text>` or `{message, on}`: a command failed, or BIRD rejected its reload, with that text
//!   (case-insensitive).
//! - `loss: {probe, max_lost: 0 | 1%, max_outage: 2s}` (no probe: every probe).
//! - `converge: 30s`: all other expectations held together within that time.
//! - `wan: {bgp_sessions, bgp_bytes, bgp_packets, ipip_bytes, ipip_packets}`: Established BGP sessions
//!   between nodes on different sites (each counted once), and counter deltas during the step.

pub mod check;
pub mod fake;
pub mod lab;
pub mod model;
mod parse;

#[cfg(test)]
pub(crate) mod tests;

pub use check::{
    check, check_with, route_line, unexpected_command_failures, wait_all, wait_all_with, wan_sessions, Mismatch,
    WaitOptions, WaitResult,
};
pub use lab::{
    block_of, node_blocks, resolve_nodes, resolve_pods, CachedLab, LabView, NodeInfo, Obs, ObsResult, PodInfo,
    ProbeStats, StepOutcome,
};
pub use model::*;
pub use parse::{load, load_on, parse, parse_bound, parse_cidr, parse_duration, parse_node_sel, parse_with, LabNames};
