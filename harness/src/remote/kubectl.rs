//! The kubectl transport: `kubectl [--kubeconfig K] [--context C] -n <namespace> exec <pod> -c calico-node --
//! <argv>` into the node's calico-node pod (calico-node runs in the host's network namespace, so its `ip`,
//! `ipset` and `iptables-save` see the node's). The node → pod map comes from one `kubectl get pods -l
//! k8s-app=calico-node -o json` per cluster (parsed by [`crate::kind::parse::calico_node_pods`]), read again
//! when a pod is gone. Also the live node labels (`kubectl get nodes -o json`) for either transport.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{addr_of, RemoteError, Runner, Transport};
use crate::kind::exec::{CALICO_NAMESPACE, CALICO_NODE_CONTAINER, CALICO_NODE_SELECTOR};
use crate::model::topology::Topology;
use crate::observe::ParseError;
use crate::process::{shell_line, Output, Spec};

/// Calico's node annotation with the address calico-node autodetected (`projectcalico.org/IPv4Address`).
pub const IPV4_ANNOTATION: &str = "projectcalico.org/IPv4Address";

/// How to call the operator's kubectl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubectlAccess {
    /// The program words (default `kubectl`).
    pub program: Vec<String>,
    pub kubeconfig: Option<PathBuf>,
    /// The context for every cluster (None: the kubeconfig's current one).
    pub context: Option<String>,
    /// Per topology cluster, overriding `context`.
    pub contexts: BTreeMap<String, String>,
    /// calico-node's namespace (default kube-system).
    pub namespace: String,
}

impl Default for KubectlAccess {
    fn default() -> Self {
        KubectlAccess {
            program: vec!["kubectl".into()],
            kubeconfig: None,
            context: None,
            contexts: BTreeMap::new(),
            namespace: CALICO_NAMESPACE.into(),
        }
    }
}

/// One node as `kubectl get nodes -o json` has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveNode {
    pub labels: BTreeMap<String, String>,
    /// `projectcalico.org/IPv4Address`, without its prefix length.
    pub calico_ip: Option<Ipv4Addr>,
}

/// `--context` values: `CTX` (every cluster) or `CLUSTER=CTX`.
pub fn parse_contexts(values: &[String]) -> Result<(Option<String>, BTreeMap<String, String>), RemoteError> {
    let mut all = None;
    let mut per = BTreeMap::new();
    for v in values {
        match v.split_once('=') {
            Some((c, ctx)) if !c.is_empty() && !ctx.is_empty() => {
                per.insert(c.to_string(), ctx.to_string());
            }
            Some(_) => return Err(RemoteError::Usage(format!("--context {v:?}: expected CONTEXT or CLUSTER=CONTEXT"))),
            None if all.is_none() => all = Some(v.clone()),
            None => return Err(RemoteError::Usage("--context without CLUSTER= given twice".into())),
        }
    }
    Ok((all, per))
}

impl KubectlAccess {
    /// kubectl for a topology cluster: program words, `--kubeconfig`, `--context`.
    pub fn words(&self, cluster: &str) -> Vec<String> {
        let mut w = self.program.clone();
        if let Some(k) = &self.kubeconfig {
            w.extend(["--kubeconfig".to_string(), k.display().to_string()]);
        }
        if let Some(c) = self.contexts.get(cluster).or(self.context.as_ref()) {
            w.extend(["--context".to_string(), c.clone()]);
        }
        w
    }

    fn with(&self, cluster: &str, args: &[&str]) -> Vec<String> {
        let mut w = self.words(cluster);
        w.extend(args.iter().map(|s| s.to_string()));
        w
    }

    /// `kubectl … -n <ns> get pods -l k8s-app=calico-node -o json`.
    pub fn pods_command(&self, cluster: &str) -> Vec<String> {
        self.with(cluster, &["-n", &self.namespace, "get", "pods", "-l", CALICO_NODE_SELECTOR, "-o", "json"])
    }

    /// `kubectl … -n <ns> exec <pod> -c calico-node -- <argv>`.
    pub fn exec_command(&self, cluster: &str, pod: &str, argv: &[&str]) -> Vec<String> {
        let mut w = self.with(cluster, &["-n", &self.namespace, "exec", pod, "-c", CALICO_NODE_CONTAINER, "--"]);
        w.extend(argv.iter().map(|s| s.to_string()));
        w
    }

    /// `kubectl … get nodes -o json`.
    pub fn nodes_command(&self, cluster: &str) -> Vec<String> {
        self.with(cluster, &["get", "nodes", "-o", "json"])
    }

    /// `kubectl … -n <ns> logs <pod> -c calico-node --since=1h`.
    pub fn logs_command(&self, cluster: &str, pod: &str) -> Vec<String> {
        self.with(cluster, &["-n", &self.namespace, "logs", pod, "-c", CALICO_NODE_CONTAINER, "--since=1h"])
    }

    /// Run a kubectl command line; a spawn failure is an error, a non-zero exit an [`Output`].
    pub fn run(run: &Runner, argv: &[String]) -> Result<Output, RemoteError> {
        run(&Spec { argv, ..Default::default() })
            .map_err(|e| RemoteError::Kubectl(format!("cannot run `{}`: {e}", shell_line(argv))))
    }

    /// Run and require success: stdout.
    pub fn run_ok(run: &Runner, argv: &[String]) -> Result<String, RemoteError> {
        let out = Self::run(run, argv)?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(RemoteError::Kubectl(format!("`{}` failed: {}", shell_line(argv), out.detail())))
        }
    }

    /// A cluster's nodes with their live labels and Calico address.
    pub fn live_nodes(&self, cluster: &str, run: &Runner) -> Result<BTreeMap<String, LiveNode>, RemoteError> {
        let argv = self.nodes_command(cluster);
        let json = Self::run_ok(run, &argv)?;
        parse_nodes(&json).map_err(|e| RemoteError::Kubectl(format!("`{}`: {e}", shell_line(&argv))))
    }
}

/// Node name → labels and Calico address, from `kubectl get nodes -o json` (a `List`/`NodeList`, or one
/// `Node`; labels by [`crate::kind::backend::parse_node_labels`]).
pub fn parse_nodes(json: &str) -> Result<BTreeMap<String, LiveNode>, ParseError> {
    let labels = crate::kind::backend::parse_node_labels(json)?;
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| ParseError::new("kubectl get nodes -o json", e.line(), "a JSON document", e.to_string()))?;
    let items: Vec<&serde_json::Value> = match v.get("items").and_then(|i| i.as_array()) {
        Some(i) => i.iter().collect(),
        None => vec![&v],
    };
    let mut ips = BTreeMap::new();
    for it in items {
        let meta = it.get("metadata");
        let name = meta.and_then(|m| m.get("name")).and_then(|n| n.as_str());
        let ip = meta
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(IPV4_ANNOTATION))
            .and_then(|a| a.as_str())
            .and_then(addr_of);
        if let (Some(n), Some(ip)) = (name, ip) {
            ips.insert(n.to_string(), ip);
        }
    }
    Ok(labels
        .into_iter()
        .map(|(n, labels)| (n.clone(), LiveNode { labels, calico_ip: ips.get(&n).copied() }))
        .collect())
}

/// `kubectl exec` into each node's calico-node pod.
pub struct KubectlTransport {
    access: KubectlAccess,
    /// node → topology cluster.
    cluster_of: BTreeMap<String, String>,
    run: Box<Runner>,
    /// cluster → (node → calico-node pod), read when first needed.
    pods: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
}

impl KubectlTransport {
    pub fn new(access: KubectlAccess, topo: &Topology, run: Box<Runner>) -> KubectlTransport {
        let cluster_of =
            topo.clusters.iter().flat_map(|c| c.nodes.iter().map(|n| (n.name.clone(), c.name.clone()))).collect();
        KubectlTransport { access, cluster_of, run, pods: Mutex::default() }
    }

    fn cluster(&self, node: &str) -> Result<&str, RemoteError> {
        self.cluster_of
            .get(node)
            .map(String::as_str)
            .ok_or_else(|| RemoteError::Usage(format!("{node} is not a node of the runbook's topology")))
    }

    /// The node's calico-node pod and its cluster.
    pub fn pod(&self, node: &str) -> Result<(String, String), RemoteError> {
        let cluster = self.cluster(node)?.to_string();
        if let Some(p) = self.pods.lock().expect("pods").get(&cluster).and_then(|m| m.get(node)) {
            return Ok((cluster, p.clone()));
        }
        let argv = self.access.pods_command(&cluster);
        let json = KubectlAccess::run_ok(self.run.as_ref(), &argv)?;
        let map = crate::kind::parse::calico_node_pods(&json)
            .map_err(|e| RemoteError::Kubectl(format!("`{}`: {e}", shell_line(&argv))))?;
        let pod = map.get(node).cloned();
        let on: Vec<String> = map.keys().cloned().collect();
        self.pods.lock().expect("pods").insert(cluster.clone(), map);
        match pod {
            Some(p) => Ok((cluster, p)),
            None => Err(RemoteError::Kubectl(format!(
                "no calico-node pod on node {node} (`{}` lists pods on: {})",
                shell_line(&argv),
                if on.is_empty() { "no node".to_string() } else { on.join(", ") }
            ))),
        }
    }
}

impl Transport for KubectlTransport {
    fn name(&self) -> &'static str {
        "kubectl"
    }

    fn describe(&self) -> String {
        let clusters: BTreeSet<&String> = self.cluster_of.values().collect();
        let per: Vec<String> = clusters
            .iter()
            .map(|c| {
                let w = shell_line(&self.access.words(c));
                format!("cluster {c}: `{w} -n {} exec <pod> -c {CALICO_NODE_CONTAINER} -- …`", self.access.namespace)
            })
            .collect();
        format!("kubectl exec into calico-node ({})", per.join("; "))
    }

    fn calico_node(&self, node: &str, argv: &[&str]) -> Result<Output, RemoteError> {
        let (cluster, pod) = self.pod(node)?;
        let out = KubectlAccess::run(self.run.as_ref(), &self.access.exec_command(&cluster, &pod, argv))?;
        if !out.success() && out.stderr.contains(&format!("\"{pod}\" not found")) {
            // The pod was replaced (a calico-node restart): read the map again next time.
            self.pods.lock().expect("pods").remove(&cluster);
        }
        Ok(out)
    }

    fn host(&self, node: &str, _argv: &[&str]) -> Result<Output, RemoteError> {
        Err(RemoteError::Usage(format!(
            "kubectl reaches calico-node only, not {node}'s host (use --ssh with an inventory for that)"
        )))
    }

    fn connect(&self, nodes: &[String]) -> Result<(), RemoteError> {
        RemoteError::all(nodes.iter().filter_map(|n| self.pod(n).err()).collect())
    }

    fn calico_node_log(&self, node: &str) -> Option<String> {
        let (cluster, pod) = self.pod(node).ok()?;
        KubectlAccess::run_ok(self.run.as_ref(), &self.access.logs_command(&cluster, &pod)).ok()
    }
}
