//! The twin's WAN node at bring-up: the counting and impairment chains of [`crate::wan`], installed through
//! the node runtime (the lab's [`crate::backend::Backend`] does everything after that).

use super::{node_ref, LabError};
use crate::model::topology::Topology;
use crate::runtime::{exec_ok, Runtime};

/// Install [`crate::wan::setup`] on the topology's WAN node, if it has one.
pub fn install_counters(rt: &dyn Runtime, lab: &str, topo: &Topology) -> Result<(), LabError> {
    let Some(w) = crate::wan::wan_node(topo) else { return Ok(()) };
    for c in crate::wan::setup() {
        let argv: Vec<&str> = c.iter().map(String::as_str).collect();
        exec_ok(rt, &node_ref(lab, &w), &argv)?;
    }
    Ok(())
}
