//! The twin's control plane: datastore, operator commands, renderer.

pub mod apply;
pub mod datastore;
pub mod render;
