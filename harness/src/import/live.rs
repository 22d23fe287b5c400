//! Reading a live cluster: which commands (pure, [`live_commands`]) and running them ([`run_live`]).
//!
//! With calicoctl on PATH, Calico's resources come from `calicoctl get <kind> -o yaml --allow-version-mismatch`
//! (one kind per command, as calicoctl takes them); without it, from `kubectl get <kind>.projectcalico.org`
//! (Calico's API server), falling back per kind to the CRDs (`<kind>.crd.projectcalico.org`, see
//! [`crd_fallback`]) where the API server is not installed. Kubernetes Nodes, the calico-node DaemonSet
//! (`-l k8s-app=calico-node` in every namespace: kube-system for the manifests, calico-system for the operator)
//! and the IPAM blocks always come from kubectl. Secrets are never read: the import writes generated ones.
//! Running them needs a cluster, so only the construction is tested.

use super::ImportError;

/// Calico kinds read from the cluster, as calicoctl names them; (kind, needed): a missing optional kind is
/// skipped.
const CALICO_KINDS: &[(&str, bool)] =
    &[("ippools", true), ("bgpconfigurations", false), ("bgppeers", false), ("felixconfigurations", false)];

fn kubectl(kubeconfig: Option<&str>, context: Option<&str>, args: &[&str]) -> Vec<String> {
    let mut v = vec!["kubectl".to_string()];
    if let Some(k) = kubeconfig {
        v.extend(["--kubeconfig".to_string(), k.to_string()]);
    }
    if let Some(c) = context {
        v.extend(["--context".to_string(), c.to_string()]);
    }
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

/// The commands that read a cluster, in order: nodes, the calico-node DaemonSet, Calico's resources, blocks.
pub fn live_commands(kubeconfig: Option<&str>, context: Option<&str>, have_calicoctl: bool) -> Vec<Vec<String>> {
    let mut out = vec![
        kubectl(kubeconfig, context, &["get", "nodes", "-o", "yaml"]),
        kubectl(
            kubeconfig,
            context,
            &["get", "daemonsets", "--all-namespaces", "-l", "k8s-app=calico-node", "-o", "yaml"],
        ),
    ];
    if have_calicoctl {
        for kind in std::iter::once("nodes").chain(CALICO_KINDS.iter().map(|(k, _)| *k)) {
            // calicoctl reads KUBECONFIG from the environment (DATASTORE_TYPE=kubernetes: Calico's KDD).
            let mut v = vec!["env".to_string(), "DATASTORE_TYPE=kubernetes".to_string()];
            if let Some(k) = kubeconfig {
                v.push(format!("KUBECONFIG={k}"));
            }
            v.extend(["calicoctl", "get", kind, "-o", "yaml", "--allow-version-mismatch"].map(String::from));
            if let Some(c) = context {
                v.extend(["--context".to_string(), c.to_string()]);
            }
            out.push(v);
        }
    } else {
        for (kind, _) in CALICO_KINDS {
            out.push(kubectl(kubeconfig, context, &["get", &format!("{kind}.projectcalico.org"), "-o", "yaml"]));
        }
    }
    out.push(kubectl(kubeconfig, context, &["get", "blockaffinities.crd.projectcalico.org", "-o", "yaml"]));
    out
}

/// The CRD form of a `kubectl get <kind>.projectcalico.org` command (None for any other command).
pub fn crd_fallback(cmd: &[String]) -> Option<Vec<String>> {
    let i = cmd.iter().position(|a| a.ends_with(".projectcalico.org") && !a.ends_with(".crd.projectcalico.org"))?;
    if cmd.first().map(String::as_str) != Some("kubectl") {
        return None;
    }
    let mut v = cmd.to_vec();
    v[i] = cmd[i].replace(".projectcalico.org", ".crd.projectcalico.org");
    Some(v)
}

/// Whether a command is needed (its failure fails the import) or optional (a kind the cluster may not have).
fn needed(cmd: &[String]) -> bool {
    let target = cmd.iter().skip_while(|a| *a != "get").nth(1).map(String::as_str).unwrap_or_default();
    let kind = target.split('.').next().unwrap_or_default();
    kind == "nodes" || CALICO_KINDS.iter().any(|(k, n)| *n && *k == kind)
}

/// Whether calicoctl is on PATH.
pub fn calicoctl_on_path() -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join("calicoctl").is_file())).unwrap_or(false)
}

/// What [`run_live`] read: (name, output) inputs for [`super::import`], named after their commands, and the
/// optional commands that failed (a kind the cluster does not have).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveInputs {
    pub inputs: Vec<(String, String)>,
    pub skipped: Vec<String>,
}

/// Run the commands of [`live_commands`], falling back to the CRDs where Calico's API server is missing.
pub fn run_live(kubeconfig: Option<&str>, context: Option<&str>) -> Result<LiveInputs, ImportError> {
    let mut inputs = Vec::new();
    let mut skipped = Vec::new();
    for cmd in live_commands(kubeconfig, context, calicoctl_on_path()) {
        let mut attempt = cmd.clone();
        let out = loop {
            let argv: Vec<&str> = attempt.iter().map(String::as_str).collect();
            let line = crate::process::shell_line(&argv);
            let out = crate::process::run(&argv, None)
                .map_err(|e| ImportError::Live { command: line.clone(), error: e.to_string() })?;
            if out.success() {
                break Some((line, out.stdout));
            }
            match crd_fallback(&attempt) {
                Some(f) => attempt = f,
                None if needed(&cmd) => {
                    return Err(ImportError::Live { command: line, error: out.detail().to_string() });
                }
                None => {
                    skipped.push(format!("`{line}`: {}", out.detail()));
                    break None;
                }
            }
        };
        if let Some((line, text)) = out {
            inputs.push((line, text));
        }
    }
    Ok(LiveInputs { inputs, skipped })
}
