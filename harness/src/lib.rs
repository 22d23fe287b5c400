//! rrlab: rehearse Calico BGP procedures on calico-node twins (real BIRD 1.6.8 + Felix state) or on kind
//! clusters running real Calico v3.30.
//!
//! Pure core (model, twin datastore/renderer, parsers, expectations) with thin edges (node runtimes).

pub mod agent;
pub mod backend;
pub mod birdconf;
pub mod impair;
pub mod import;
pub mod kind;
pub mod lab;
pub mod model;
pub mod observe;
pub mod process;
pub mod remote;
pub mod report;
pub mod runbook;
pub mod runner;
pub mod runtime;
pub mod twin;
pub mod wan;
