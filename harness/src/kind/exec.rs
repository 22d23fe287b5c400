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
/// BIRD's IPv4 control socket in calico-node (`node/filesystem/etc/service/available/bird/run`).
pub const BIRD_SOCKET: &str = "/var/run/calico/bird.ctl";
/// BIRD's client in calico-node (calico-node's own health check runs `/usr/bin/birdcl -s … show status`).
pub const BIRDCL: &str = "birdcl";
/// Felix's ipset of every node address (IPIP sources it accepts).
pub const HOSTS_IPSET: &str = "cali40all-hosts-net";

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

/// What can be observed inside calico-node, and the command that observes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// `birdcl -s /var/run/calico/bird.ctl show protocols` → [`crate::observe::parse_protocols`].
    Protocols,
    /// `… show protocols all` → [`crate::observe::parse_protocols_all`].
    ProtocolsAll,
    /// `… show route all` → [`crate::observe::parse_routes`].
    RoutesAll,
    /// `… show status` → [`crate::observe::parse_status`].
    BirdStatus,
    /// `ip -j route show table main` → [`crate::observe::parse_ip_route_json`] (calico-node uses the host's
    /// network namespace, so this is the node's FIB).
    KernelRoutes,
    /// `ipset list cali40all-hosts-net` → [`crate::observe::parse_ipset`].
    HostsIpset,
    /// `ipset list` (every set) → [`crate::observe::parse_ipset`].
    Ipsets,
    /// `iptables-save -c` → [`crate::observe::parse_iptables_save`].
    IptablesSave,
    /// `cat /etc/calico/confd/config/<file>` (confd's rendered BIRD configuration).
    ConfdFile(String),
}

impl Observation {
    /// The command inside calico-node.
    pub fn argv(&self) -> Vec<String> {
        let bird = |args: &[&str]| {
            let mut v = vec![BIRDCL.to_string(), "-s".to_string(), BIRD_SOCKET.to_string()];
            v.extend(args.iter().map(|s| s.to_string()));
            v
        };
        match self {
            Observation::Protocols => bird(&["show", "protocols"]),
            Observation::ProtocolsAll => bird(&["show", "protocols", "all"]),
            Observation::RoutesAll => bird(&["show", "route", "all"]),
            Observation::BirdStatus => bird(&["show", "status"]),
            Observation::KernelRoutes => ["ip", "-j", "route", "show", "table", "main"].map(String::from).to_vec(),
            Observation::HostsIpset => vec!["ipset".into(), "list".into(), HOSTS_IPSET.into()],
            Observation::Ipsets => vec!["ipset".into(), "list".into()],
            Observation::IptablesSave => vec!["iptables-save".into(), "-c".into()],
            Observation::ConfdFile(f) => vec!["cat".into(), format!("{}/{f}", super::fidelity::CONFD_DIR)],
        }
    }

    fn label(&self) -> String {
        self.argv().join(" ")
    }
}

/// `kubectl exec -n kube-system <pod> -c calico-node -- <observation>`.
pub fn observe(a: &ClusterAccess, node: &str, pod: &str, o: &Observation) -> PlanStep {
    let mut args = vec![
        "-n".to_string(),
        CALICO_NAMESPACE.to_string(),
        "exec".to_string(),
        pod.to_string(),
        "-c".to_string(),
        CALICO_NODE_CONTAINER.to_string(),
        "--".to_string(),
    ];
    args.extend(o.argv());
    kubectl(a, format!("{node}: {}", o.label()), &args)
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
