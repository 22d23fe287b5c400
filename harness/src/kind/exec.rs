//! Commands against a running kind lab: the operator's own command lines, observations inside calico-node
//! (the same text the twin's observers parse), WAN actions. Pure command construction; run them with a
//! [`super::runner::Runner`].

use super::docker_ops::DockerOp;
use super::plan::{ClusterAccess, PlanStep};
use crate::model::topology::Topology;

/// calico-node's namespace in the manifest install.
pub const CALICO_NAMESPACE: &str = "kube-system";
/// calico-node's pod label.
pub const CALICO_NODE_SELECTOR: &str = "k8s-app=calico-node";
/// The container of the calico-node pod that runs BIRD and Felix.
pub const CALICO_NODE_CONTAINER: &str = "calico-node";
/// BIRD's IPv4 control socket in calico-node (one place: `crate::backend::observe`).
pub use crate::backend::observe::BIRD_SOCKET;
/// BIRD's client in calico-node (calico-node's own health check runs `/usr/bin/birdcl -s … show status`).
pub const BIRDCL: &str = "birdcl";

/// An operator command line (or a multi-line script with here-documents), run as written by `bash -e`
/// against the cluster: `KUBECONFIG` is the cluster's (its current context is `kind-<cluster>`),
/// `DATASTORE_TYPE=kubernetes` for calicoctl, and the pinned calicoctl first on `PATH`.
pub fn operator_command(a: &ClusterAccess, script: &str) -> PlanStep {
    let first = script.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    PlanStep::new(format!("{}: {first}", a.cluster), &["bash", "-e", "-c", script])
        .env("KUBECONFIG", a.kubeconfig.display().to_string())
        .env("DATASTORE_TYPE", "kubernetes")
        .env("PATH", a.path.clone())
}

/// A typed kubectl call: `kubectl --kubeconfig … --context kind-<c> <args…>`.
pub fn kubectl<S: AsRef<str>>(a: &ClusterAccess, what: impl Into<String>, args: &[S]) -> PlanStep {
    PlanStep::new(what, &a.kubectl(args))
}

/// A typed calicoctl call with the cluster's datastore settings.
pub fn calicoctl<S: AsRef<str>>(a: &ClusterAccess, what: impl Into<String>, args: &[S]) -> PlanStep {
    a.calicoctl_step(what, args)
}

/// `kubectl get pods -n kube-system -l k8s-app=calico-node -o json` (parse with
/// [`super::parse::calico_node_pods`] for the node → pod map).
pub fn calico_node_pods(a: &ClusterAccess) -> PlanStep {
    kubectl(
        a,
        format!("{}: calico-node pods", a.cluster),
        &["-n", CALICO_NAMESPACE, "get", "pods", "-l", CALICO_NODE_SELECTOR, "-o", "json"],
    )
}

/// `kubectl exec -n kube-system <pod> -c calico-node -- <argv…>`: a command in the node's calico-node (every
/// observation of `crate::backend::observe` runs through this on kind).
pub fn in_calico_node(a: &ClusterAccess, node: &str, pod: &str, argv: &[&str]) -> PlanStep {
    let mut args = vec!["-n", CALICO_NAMESPACE, "exec", pod, "-c", CALICO_NODE_CONTAINER, "--"];
    args.extend_from_slice(argv);
    kubectl(a, format!("{node}: {}", argv.join(" ")), &args)
}

/// `ping` from a probe pod (busybox): `kubectl exec -n default <pod> -- ping -c N -W 1 <dst>` →
/// [`crate::observe::parse_ping`].
pub fn ping(a: &ClusterAccess, pod: &str, dst: &str, count: u32) -> PlanStep {
    let n = count.to_string();
    kubectl(a, format!("{pod}: ping {dst}"), &["-n", "default", "exec", pod, "--", "ping", "-c", &n, "-W", "1", dst])
}

/// A probe pod's IP: `kubectl get pod <pod> -o jsonpath={.status.podIP}`.
pub fn pod_ip(a: &ClusterAccess, pod: &str) -> PlanStep {
    kubectl(a, format!("{pod}: IP"), &["-n", "default", "get", "pod", pod, "-o", "jsonpath={.status.podIP}"])
}

/// `calicoctl node status` where calico-node runs: inside the node's container (plan_up copies the pinned
/// calicoctl there), which sees calico-node's processes and its BIRD socket on the host path
/// `/var/run/calico`.
pub fn calicoctl_node_status(topo: &Topology, node: &str) -> PlanStep {
    let c = topo.container_name(node);
    PlanStep::docker(
        format!("{node}: calicoctl node status"),
        DockerOp::Exec { container: c, argv: vec!["/usr/local/bin/calicoctl".into(), "node".into(), "status".into()] },
    )
}

/// Stop or start a node the way a failure would: its container.
pub fn node_container(topo: &Topology, node: &str, start: bool) -> PlanStep {
    let container = topo.container_name(node);
    if start {
        PlanStep::docker(format!("start node {node}"), DockerOp::Start { container })
    } else {
        PlanStep::docker(format!("stop node {node}"), DockerOp::Stop { container })
    }
}

/// A kind node frozen (`docker pause`: its cgroup, so kubelet, calico-node and BIRD stop) or thawed.
pub fn freeze_container(topo: &Topology, node: &str, frozen: bool) -> PlanStep {
    let container = topo.container_name(node);
    if frozen {
        PlanStep::docker(format!("freeze node {node}"), DockerOp::Pause { container })
    } else {
        PlanStep::docker(format!("thaw node {node}"), DockerOp::Unpause { container })
    }
}

/// One link's cable pulled or plugged back: the far end of `node`'s `iface` set down/up, so `node` loses
/// carrier and keeps its routes. A far end on a site bridge is containerlab's host-side veth (named by the
/// bridge's endpoint in the topology); on a container, its interface in that container's namespace.
pub fn set_link(topo: &Topology, node: &str, iface: &str, up: bool) -> Option<PlanStep> {
    let peer = topo.peer_of(node, iface)?;
    let state = if up { "up" } else { "down" };
    let what = format!("link {node}:{iface} {state}");
    let argv = ["ip", "link", "set", peer.iface.as_str(), state];
    Some(match topo.nodes.get(&peer.node).map(|n| n.kind) {
        Some(crate::model::topology::NodeKind::Bridge) => PlanStep::new(what, &argv),
        _ => PlanStep::docker(
            what,
            DockerOp::InNetns { container: topo.container_name(&peer.node), argv: argv.map(String::from).to_vec() },
        ),
    })
}

/// A command on the WAN router, with the host's own tools in the WAN container's network namespace
/// (`nsenter -t <its PID> -n`): the WAN image (`network-multitool`, Alpine) has no iptables, and the
/// host's `tc`/`iptables` work on any namespace. The PID is read through the API when the step runs; the
/// printed plan shows the equivalent `docker inspect` + `nsenter` line. None when the topology has no WAN.
pub fn in_wan(topo: &Topology, what: &str, argv: &[&str]) -> Option<PlanStep> {
    let w = crate::wan::wan_node(topo)?;
    let op =
        DockerOp::InNetns { container: topo.container_name(&w), argv: argv.iter().map(|s| s.to_string()).collect() };
    Some(PlanStep::docker(format!("{what}: {}", argv.join(" ")), op))
}
