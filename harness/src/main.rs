//! The `rrlab` command line.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use rrlab::twin::apply::apply_text;
use rrlab::twin::commands::run_script;
use rrlab::twin::datastore::{Datastore, WriteMode};
use rrlab::twin::render::{render_node, Flavor};

#[derive(Parser)]
#[command(name = "rrlab", version, about = "Rehearse Calico BGP procedures on calico-node twins or kind clusters")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum FlavorArg {
    /// What the twin's upstream BIRD 1.6.8 runs (krt_tunnel as data + realm mark).
    Twin,
    /// Exactly what calico-node writes for Calico's BIRD fork (krt_tunnel).
    Calico,
}

#[derive(Subcommand)]
enum Cmd {
    /// Render calico-node's BIRD configs and Felix state for one node from resource files.
    Render {
        /// Resource files (YAML, applied in order like `calicoctl apply`), or command scripts (`*.sh`).
        #[arg(long = "input", short = 'i', required = true)]
        inputs: Vec<PathBuf>,
        /// The node to render for (NODENAME).
        #[arg(long)]
        node: String,
        /// Output directory: bird.cfg, bird_ipam.cfg, bird_aggr.cfg, felix.json, kernel.json, calico/.
        #[arg(long)]
        out: PathBuf,
        /// calico-node environment variables (e.g. CALICO_ROUTER_ID=hash, FELIX_EXTERNALNODESCIDRLIST=…).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Which BIRD the top-level files are for (both are always written: the other under calico/ or twin/).
        #[arg(long, value_enum, default_value = "twin")]
        flavor: FlavorArg,
    },
}

fn load(inputs: &[PathBuf], env: &[String]) -> Result<Datastore> {
    let mut ds = Datastore::new();
    for kv in env {
        let Some((k, v)) = kv.split_once('=') else { bail!("--env {kv:?}: expected KEY=VALUE") };
        ds.calico_node_env.insert(k.to_string(), v.to_string());
    }
    for p in inputs {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let name = p.display().to_string();
        if p.extension().is_some_and(|e| e == "sh") {
            // A script of operator commands, run like a shell with `set -e`.
            let dir = p.parent().map(PathBuf::from).unwrap_or_default();
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).map_err(|e| format!("{f}: {e}"));
            let outcomes = run_script(&mut ds, &name, &text, &HashMap::new(), &read)?;
            for o in &outcomes {
                if !o.ok {
                    bail!("{name}:{}: `{}` failed:\n{}", o.line, o.command, o.stderr);
                }
            }
        } else {
            apply_text(&mut ds, &name, &text, WriteMode::Apply)?;
        }
    }
    Ok(ds)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Render { inputs, node, out, env, flavor } => {
            let ds = load(&inputs, &env)?;
            let (top, other, other_dir) = match flavor {
                FlavorArg::Twin => (Flavor::Upstream, Flavor::Calico, "calico"),
                FlavorArg::Calico => (Flavor::Calico, Flavor::Upstream, "twin"),
            };
            let main = render_node(&ds, &node, top)?;
            let alt = render_node(&ds, &node, other)?;
            std::fs::create_dir_all(out.join(other_dir)).with_context(|| format!("creating {}", out.display()))?;
            for (name, text) in main.files() {
                std::fs::write(out.join(name), text)?;
            }
            for (name, text) in alt.files() {
                std::fs::write(out.join(other_dir).join(name), text)?;
            }
            std::fs::write(out.join("felix.json"), serde_json::to_string_pretty(&main.felix)? + "\n")?;
            std::fs::write(out.join("kernel.json"), serde_json::to_string_pretty(&main.kernel)? + "\n")?;
            eprintln!("rendered {node} into {}", out.display());
        }
    }
    Ok(())
}
