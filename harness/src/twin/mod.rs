//! The twin's control plane: datastore, operator commands (shell → grammar → executor), renderer.

pub mod apply;
pub mod cmdline;
pub mod commands;
pub mod datastore;
pub mod ipam;
pub mod render;
pub mod shell;
