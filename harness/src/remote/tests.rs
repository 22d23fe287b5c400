//! Tests of `rrlab check` without a network: the inventory and its errors, command construction for each
//! transport and engine, quoting, host-key verdicts, birdcl output, the read-only refusals, an SSH connect to
//! a closed port, and whole checks over a fake transport (a true state passes, a seeded fault fails with the
//! rehearsal's diff). A real sshd is the lead's e2e.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pretty_assertions::assert_eq;
use ssh2::CheckResult;

use super::check::{block_nodes, check_on, nodes_read, pick_step, plan, CheckOptions};
use super::inventory::{remote_line, CalicoNode, Engine, Inventory, Runs};
use super::kubectl::{parse_contexts, parse_nodes, KubectlAccess, KubectlTransport};
use super::ssh::{
    base64, judge_host_key, keyscan_line, line_key_type, revoked_line, tcp_connect, HostKeyCheck, SshTransport,
};
use super::*;
use crate::backend::{Backend, NodeAction, Target};
use crate::model::topology::{self, Topology};
use crate::process::Output;
use crate::report::reporters::{Html, Junit};
use crate::runbook::model::Expectation;
use crate::runner::Fanout;

// ------------------------------------------------------------------------------------------ helpers

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn hybrid() -> Topology {
    topology::load(&repo().join("topologies/hybrid-rr.clab.yml")).unwrap()
}

/// A directory with `known_hosts` and `id_ed25519` (contents never read: no connection is made).
fn ssh_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("known_hosts"), "").unwrap();
    std::fs::write(d.path().join("id_ed25519"), "not a key").unwrap();
    d
}

fn parse_inv(dir: &Path, text: &str) -> Result<Inventory, crate::model::InputError> {
    Inventory::parse(&dir.join("inventory.yaml"), text, Some(dir), "operator")
}

const EXAMPLE: &str = "\
# rrlab ssh inventory: how to reach each node's calico-node
user: root                 # default user
port: 22                   # default port
identity: id_ed25519       # private key, relative to this file; omitted: the ssh agent
known_hosts: known_hosts   # relative to this file; default ~/.ssh/known_hosts
calico-node:
  runs: service            # service (calico-node's processes on the host) | container
  socket: /var/run/calico/bird.ctl
  confd: /etc/calico/confd/config
nodes:
  hybrid-worker: {host: 198.18.7.3}
  hybrid-worker2: {host: 198.18.7.4, port: 2222, user: admin}
";

/// Records every program a backend runs locally (kubectl, `--apply`'s bash) and answers from a closure.
/// A local program's argv and extra environment.
type Call = (Vec<String>, Vec<(String, String)>);

#[derive(Clone, Default)]
struct Local {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Local {
    fn runner(&self, answer: impl Fn(&[String]) -> Output + Send + Sync + 'static) -> Box<Runner> {
        let calls = self.calls.clone();
        Box::new(move |s: &crate::process::Spec<'_>| {
            calls.lock().unwrap().push((s.argv.to_vec(), s.env.to_vec()));
            Ok(answer(s.argv))
        })
    }
    fn argvs(&self) -> Vec<String> {
        self.calls.lock().unwrap().iter().map(|(a, _)| a.join(" ")).collect()
    }
}

type Answer = dyn Fn(&str, &[&str]) -> Option<Output> + Send + Sync;

/// A transport of canned answers: (node, argv) → output; every call recorded as `node: argv`.
struct Fake {
    answer: Box<Answer>,
    calls: Arc<Mutex<Vec<String>>>,
    reach: Option<BTreeSet<String>>,
}

impl Transport for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn describe(&self) -> String {
        "a fake transport".into()
    }
    fn calico_node(&self, node: &str, argv: &[&str]) -> Result<Output, RemoteError> {
        self.calls.lock().unwrap().push(format!("{node}: {}", argv.join(" ")));
        Ok((self.answer)(node, argv).unwrap_or_else(|| Output::failed(127, format!("{}: not found", argv[0]))))
    }
    fn host(&self, node: &str, argv: &[&str]) -> Result<Output, RemoteError> {
        self.calico_node(node, argv)
    }
    fn reachable(&self) -> Option<BTreeSet<String>> {
        self.reach.clone()
    }
    fn require(&self, nodes: &BTreeSet<String>) -> Result<(), RemoteError> {
        match &self.reach {
            Some(r) if !nodes.is_subset(r) => Err(RemoteError::MissingNodes {
                inventory: "fake.yaml".into(),
                nodes: nodes.difference(r).cloned().collect(),
            }),
            _ => Ok(()),
        }
    }
}

/// The hybrid lab's nodes: (name, address, block).
const NODES: [(&str, &str, &str); 8] = [
    ("hybrid-control-plane", "10.0.1.2", "172.16.0.0/26"),
    ("hybrid-worker", "10.0.1.3", "172.16.1.0/26"),
    ("hybrid-worker2", "10.0.1.4", "172.16.2.0/26"),
    ("hybrid-worker3", "10.0.1.5", "172.16.3.0/26"),
    ("hybrid-worker4", "10.0.2.2", "172.16.4.0/26"),
    ("hybrid-worker5", "10.0.2.3", "172.16.5.0/26"),
    ("hybrid-worker6", "10.0.2.4", "172.16.6.0/26"),
    ("hybrid-worker7", "10.0.2.5", "172.16.7.0/26"),
];

/// `birdcl show protocols` as calico-node's birdcl prints it (the layout of kind/testdata's capture): the
/// full mesh, with the sessions in `idle` (node, peer address) down.
fn protocols(node: &str, idle: &[(&str, &str)]) -> String {
    let mut s = String::from(
        "BIRD v0.3.3+birdv1.6.8 ready.\nname     proto    table    state  since       info\n\
         static1  Static   master   up     07:45:58    \nkernel1  Kernel   master   up     07:45:49    \n\
         device1  Device   master   up     07:45:49    \ndirect1  Direct   master   up     07:45:49    \n",
    );
    for (n, ip, _) in NODES.iter().filter(|(n, _, _)| *n != node) {
        let name = format!("Mesh_{}", ip.replace('.', "_"));
        let down = idle.iter().any(|(a, b)| *a == node && b == ip) || idle.iter().any(|(a, b)| *a == *n && *b == "*");
        let (state, info) = if down { ("start", "Idle") } else { ("up", "Established") };
        s.push_str(&format!("{name} BGP      master   {state:<6} 07:45:55    {info}   \n"));
    }
    s
}

/// A live hybrid cluster's answers; sessions in `idle` are down.
fn answers(idle: Vec<(&'static str, &'static str)>) -> Box<Answer> {
    let iptables = std::fs::read_to_string(repo().join("harness/src/observe/testdata/iptables-save-c-b.txt")).unwrap();
    Box::new(move |node: &str, argv: &[&str]| {
        let (_, ip, block) = NODES.iter().find(|(n, _, _)| *n == node)?;
        let line = argv.join(" ");
        Some(match line.as_str() {
            "birdcl -s /var/run/calico/bird.ctl show protocols" => Output::ok(protocols(node, &idle)),
            "ip -j route show table main" if node == "hybrid-worker3" => Output::ok(
                r#"[{"dst":"172.16.7.0/26","gateway":"10.0.2.5","dev":"tunl0","protocol":"bird","flags":["onlink"]}]"#,
            ),
            "ip -j route show table main" => Output::ok("[]"),
            "cat /etc/calico/confd/config/bird_aggr.cfg" => Output::ok(format!(
                "# Generated by confd\n\nprotocol static {{\n   # IP blocks for this host.\n   route {block} blackhole;\n}}\n"
            )),
            "cat /etc/calico/confd/config/bird.cfg" => Output::ok(format!("router id {ip};\n")),
            "cat /etc/calico/confd/config/bird_ipam.cfg" => Output::ok(""),
            "iptables-nft-save -c" => Output::ok(iptables.clone()),
            _ => return None,
        })
    })
}

const RUNBOOK: &str = "\
name: live check
topology: TOPO
defaults: {poll: 50ms}
probes:
  - {name: a-to-b, from: hybrid-worker3, to: hybrid-worker7, rate: 100}
steps:
  - name: the default full mesh
    expect:
      - sessions:
          on: all
          peers:
            - all node-to-node mesh Established
      - reach: {from: all, to: all}
      - wan: {bgp_sessions: 16, bgp_packets: \">= 1\"}
      - loss: {max_lost: 0}
      - fib: {on: hybrid-worker3, contains: [\"block:hybrid-worker7 via hybrid-worker7 dev tunl0 proto bird onlink\"]}
      - config: {on: hybrid-worker, file: bird.cfg, contains: [\"router id 10.0.1.3;\"]}
      - iptables: {on: hybrid-worker3, chain: cali-INPUT, rule: Allow IPIP packets from Calico hosts, packets: increases}
  - name: label a node
    run: |
      kubectl label node hybrid-worker rr-partition=A
    expect:
      - sessions: {on: hybrid-worker, peers: [all node-to-node mesh Established]}
      - converge: 30s
      - fails: already has a value
";

/// The runbook above in a temporary directory, loaded.
fn runbook() -> (tempfile::TempDir, crate::runbook::Runbook) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("live.yaml");
    let topo = repo().join("topologies/hybrid-rr.clab.yml");
    std::fs::write(&p, RUNBOOK.replace("TOPO", &topo.display().to_string())).unwrap();
    let rb = crate::runbook::load(&p).unwrap_or_else(|e| panic!("{e}"));
    (d, rb)
}

struct Lab {
    backend: RemoteBackend,
    calls: Arc<Mutex<Vec<String>>>,
    local: Local,
}

fn lab(idle: Vec<(&'static str, &'static str)>, apply: bool, reach: Option<&[&str]>) -> Lab {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let fake = Fake {
        answer: answers(idle),
        calls: calls.clone(),
        reach: reach.map(|r| r.iter().map(|s| s.to_string()).collect()),
    };
    let local = Local::default();
    let run = local.runner(|argv| {
        if argv.iter().any(|a| a.contains("kubectl label")) {
            Output::failed(1, "error: 'rr-partition' already has a value (A), and --overwrite is false\n")
        } else {
            Output::failed(1, "unexpected")
        }
    });
    let apply = apply.then(|| ApplyOptions { kubectl: KubectlAccess::default(), calicoctl: vec!["calicoctl".into()] });
    let backend = RemoteBackend::new(hybrid(), Box::new(fake), Labels::Topology, apply, run);
    Lab { backend, calls, local }
}

fn quick(step: usize, apply: bool) -> CheckOptions {
    CheckOptions { step: Some(step), apply, timeout: Some(Duration::from_millis(300)) }
}

/// Collects the check's own lines.
fn lines() -> (Arc<Mutex<Vec<String>>>, impl Fn(&str)) {
    let v = Arc::new(Mutex::new(Vec::new()));
    let w = v.clone();
    (v, move |l: &str| w.lock().unwrap().push(l.to_string()))
}

// ------------------------------------------------------------------------------------------ inventory

#[test]
fn inventory_of_the_issue_parses_with_defaults_and_overrides() {
    let d = ssh_dir();
    let inv = parse_inv(d.path(), EXAMPLE).unwrap();
    assert_eq!(inv.known_hosts, d.path().join("known_hosts"));
    assert_eq!(inv.calico_node.runs, Runs::Service);
    assert_eq!(inv.calico_node.socket, "/var/run/calico/bird.ctl");
    let w = &inv.nodes["hybrid-worker"];
    assert_eq!((w.host.as_str(), w.port, w.user.as_str(), w.sudo, w.line), ("198.18.7.3", 22, "root", false, 11));
    assert_eq!(w.identity.as_deref(), Some(d.path().join("id_ed25519").as_path()));
    let w2 = &inv.nodes["hybrid-worker2"];
    assert_eq!((w2.port, w2.user.as_str(), w2.line), (2222, "admin", 12));
    assert_eq!(inv.at("hybrid-worker2"), format!("{}:12", d.path().join("inventory.yaml").display()));

    // Defaults: container calico-node under docker, $USER, the agent, ~/.ssh/known_hosts.
    std::fs::create_dir(d.path().join(".ssh")).unwrap();
    std::fs::write(d.path().join(".ssh/known_hosts"), "").unwrap();
    let inv = parse_inv(d.path(), "nodes:\n  a: {host: a.example, sudo: true}\n").unwrap();
    assert_eq!(inv.calico_node, CalicoNode::default());
    assert_eq!(inv.known_hosts, d.path().join(".ssh/known_hosts"));
    let a = &inv.nodes["a"];
    assert_eq!((a.user.as_str(), a.identity.clone(), a.sudo), ("operator", None, true));
    let inv = parse_inv(
        d.path(),
        "calico-node: {engine: crictl, container: calico, birdcl: birdc}\nnodes:\n  a: {host: h}\n",
    )
    .unwrap();
    assert_eq!(inv.calico_node.runs, Runs::Container { engine: Engine::Crictl, name: "calico".into() });
    assert_eq!(inv.calico_node.birdcl, "birdc");
}

#[test]
fn inventory_errors_name_file_line_and_field() {
    let d = ssh_dir();
    let f = d.path().join("inventory.yaml").display().to_string();
    let err = |text: &str| parse_inv(d.path(), text).unwrap_err().to_string();
    let base = "known_hosts: known_hosts\n";
    assert_eq!(err(&format!("{base}nodes:\n  a: {{port: 22}}\n")), format!("{f}:3:6: field nodes.a.host: is required"));
    assert_eq!(
        err(&format!("{base}nodes:\n  a: {{host: h, port: 70000}}\n")),
        format!("{f}:3:22: field nodes.a.port: 70000 is out of range (1..=65535)")
    );
    assert_eq!(
        err(&format!("{base}port: ssh\nnodes:\n  a: {{host: h}}\n")),
        format!("{f}:2:7: field port: expected an integer, found a string")
    );
    assert_eq!(
        err(&format!("{base}nodes:\n  a: {{host: h, hots: x}}\n")),
        format!("{f}:3:16: field nodes.a.hots: unknown field \"hots\"")
    );
    assert_eq!(
        err(&format!("{base}nodez: {{}}\n")),
        format!("{f}: field nodes: is required (each node's host: `nodes: {{name: {{host: …}}}}`)")
    );
    assert_eq!(
        err(&format!("{base}users: root\nnodes:\n  a: {{host: h}}\n")),
        format!("{f}:2:1: field users: unknown field \"users\"")
    );
    assert_eq!(
        err(&format!("{base}identity: missing_key\nnodes:\n  a: {{host: h}}\n")),
        format!(
            "{f}:2:11: field identity: identity file {} does not exist or is not a file",
            d.path().join("missing_key").display()
        )
    );
    assert_eq!(
        err(&format!("{base}nodes:\n  a: {{host: h, identity: /nonexistent/k}}\n")),
        format!("{f}:3:26: field nodes.a.identity: identity file /nonexistent/k does not exist or is not a file")
    );
    assert_eq!(
        err("known_hosts: kh\nnodes:\n  a: {host: h}\n"),
        format!(
            "{f}:1:14: field known_hosts: known_hosts file {} does not exist or is not a file",
            d.path().join("kh").display()
        )
    );
    assert_eq!(
        err(&format!("{base}calico-node: {{runs: service, engine: docker}}\nnodes:\n  a: {{host: h}}\n")),
        format!("{f}:2:38: field calico-node.engine: only with runs: container")
    );
    assert_eq!(
        err(&format!("{base}calico-node: {{engine: podman}}\nnodes:\n  a: {{host: h}}\n")),
        format!("{f}:2:23: field calico-node.engine: \"podman\": expected docker, crictl or nerdctl")
    );
    assert_eq!(
        err(&format!("{base}calico-node: {{runs: vm}}\nnodes:\n  a: {{host: h}}\n")),
        format!("{f}:2:21: field calico-node.runs: \"vm\": expected service or container")
    );
    assert_eq!(
        err(&format!("{base}nodes:\n  a:\n")),
        format!("{f}:3:3: field nodes.a: expected a mapping with host:, found nothing")
    );
    // No home and no known_hosts: said so.
    let e = Inventory::parse(&d.path().join("inventory.yaml"), "nodes:\n  a: {host: h}\n", None, "u").unwrap_err();
    assert!(e.to_string().contains("no known_hosts given and $HOME is not set"), "{e}");
}

#[test]
fn nodes_missing_from_the_inventory_are_named_with_the_file() {
    let d = ssh_dir();
    let inv = parse_inv(d.path(), EXAMPLE).unwrap();
    let need: BTreeSet<String> = ["hybrid-worker", "hybrid-worker3", "hybrid-worker7"].map(String::from).into();
    assert_eq!(
        inv.require(&need).unwrap_err().to_string(),
        format!(
            "hybrid-worker3, hybrid-worker7 read by the step's expectations are not in the inventory {} (add them under `nodes:`)",
            d.path().join("inventory.yaml").display()
        )
    );
    assert!(inv.require(&["hybrid-worker".to_string()].into()).is_ok());
}

#[test]
fn a_check_names_missing_nodes_before_connecting_anything() {
    let (_d, rb) = runbook();
    let mut l = lab(vec![], false, Some(&["hybrid-worker", "hybrid-worker3"]));
    let (out, print) = lines();
    let e = check_on(&rb, &mut l.backend, &quick(1, false), &Fanout(vec![]), &print).unwrap_err().to_string();
    assert!(e.starts_with("hybrid-control-plane, hybrid-worker2, hybrid-worker4,"), "{e}");
    assert!(e.contains("not in the inventory fake.yaml"), "{e}");
    assert!(l.calls.lock().unwrap().is_empty(), "nothing was run: {:?}", l.calls.lock().unwrap());
    assert!(out.lock().unwrap().is_empty());
}

// ------------------------------------------------------------------------------------------ commands

#[test]
fn calico_node_commands_per_engine_and_quoting() {
    let argv = ["birdcl", "-s", "/var/run/calico/bird.ctl", "show", "route", "all"];
    let cn = |runs: Runs| CalicoNode { runs, ..CalicoNode::default() };
    let line = |c: &CalicoNode, id: Option<&str>, sudo: bool| remote_line(sudo, &c.wrap(&argv, id));
    let docker = cn(Runs::Container { engine: Engine::Docker, name: "calico-node".into() });
    assert_eq!(line(&docker, None, false), "docker exec calico-node birdcl -s /var/run/calico/bird.ctl show route all");
    let nerdctl = cn(Runs::Container { engine: Engine::Nerdctl, name: "calico node".into() });
    assert_eq!(
        line(&nerdctl, None, false),
        "nerdctl exec 'calico node' birdcl -s /var/run/calico/bird.ctl show route all"
    );
    let crictl = cn(Runs::Container { engine: Engine::Crictl, name: "calico-node".into() });
    assert_eq!(
        line(&crictl, Some("3f1e2d"), true),
        "sudo -n crictl exec 3f1e2d birdcl -s /var/run/calico/bird.ctl show route all"
    );
    assert_eq!(crictl.crictl_id_command().unwrap().join(" "), "crictl ps --name calico-node -q");
    assert_eq!(crictl.logs_command(Some("3f1e2d")).unwrap().join(" "), "crictl logs --since 1h 3f1e2d");
    assert_eq!(docker.logs_command(None).unwrap().join(" "), "docker logs --since 1h calico-node");
    assert!(docker.crictl_id_command().is_none());
    let service = cn(Runs::Service);
    assert_eq!(line(&service, None, false), "birdcl -s /var/run/calico/bird.ctl show route all");
    assert!(service.logs_command(None).is_none());
    // The remote shell gets every word back as it was, whatever it holds.
    let odd = ["cat", "/etc/calico/confd/config/it's here", "$(reboot)", "a;b", ""];
    let l = remote_line(false, &odd.map(String::from));
    assert_eq!(l, r#"cat '/etc/calico/confd/config/it'\''s here' '$(reboot)' 'a;b' ''"#);
    let back =
        crate::process::run_ok(&["sh", "-c", &format!("for w in {}; do printf '<%s>' \"$w\"; done", &l[4..])]).unwrap();
    assert_eq!(back, "</etc/calico/confd/config/it's here><$(reboot)><a;b><>");
}

#[test]
fn kubectl_command_construction() {
    let mut a = KubectlAccess::default();
    assert_eq!(
        a.exec_command("hybrid", "calico-node-x7k2p", &["ip", "-j", "route", "show", "table", "main"]).join(" "),
        "kubectl -n kube-system exec calico-node-x7k2p -c calico-node -- ip -j route show table main"
    );
    a.kubeconfig = Some("/home/op/.kube/prod".into());
    a.context = Some("prod".into());
    a.contexts.insert("cluster2".into(), "dr".into());
    a.program = vec!["microk8s".into(), "kubectl".into()];
    a.namespace = "calico-system".into();
    assert_eq!(
        a.exec_command("hybrid", "calico-node-x7k2p", &["birdcl", "-s", "/var/run/calico/bird.ctl", "show", "protocols"]).join(" "),
        "microk8s kubectl --kubeconfig /home/op/.kube/prod --context prod -n calico-system exec calico-node-x7k2p -c calico-node -- birdcl -s /var/run/calico/bird.ctl show protocols"
    );
    assert_eq!(
        a.pods_command("cluster2").join(" "),
        "microk8s kubectl --kubeconfig /home/op/.kube/prod --context dr -n calico-system get pods -l k8s-app=calico-node -o json"
    );
    assert_eq!(
        a.nodes_command("hybrid").join(" "),
        "microk8s kubectl --kubeconfig /home/op/.kube/prod --context prod get nodes -o json"
    );
    assert_eq!(
        a.logs_command("hybrid", "p").join(" "),
        "microk8s kubectl --kubeconfig /home/op/.kube/prod --context prod -n calico-system logs p -c calico-node --since=1h"
    );
    let (all, per) = parse_contexts(&["prod".into(), "cluster2=dr".into()]).unwrap();
    assert_eq!((all.as_deref(), per.get("cluster2").map(String::as_str)), (Some("prod"), Some("dr")));
    assert!(parse_contexts(&["a".into(), "b".into()]).is_err());
    assert!(parse_contexts(&["=x".into()]).is_err());
}

/// The List envelope kubectl prints for a selector, around calico-node pods shaped as the real pod of
/// kind/testdata/kubectl-get-pod-kind-etcd.json (metadata.name/labels, spec.nodeName, status.conditions):
/// the node → pod map, one `get pods` per cluster, and a clear error for a node without a pod.
#[test]
fn kubectl_transport_finds_each_nodes_pod_once() {
    let pod = |name: &str, node: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "generateName": "calico-node-", "namespace": "kube-system",
                         "labels": {"controller-revision-hash": "59c6b87f78", "k8s-app": "calico-node", "pod-template-generation": "1"}},
            "spec": {"nodeName": node, "hostNetwork": true},
            "status": {"phase": "Running", "hostIP": "10.0.1.3", "podIP": "10.0.1.3",
                       "conditions": [{"type": "Ready", "status": "True"}]}})
    };
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
        "items": [pod("calico-node-f5rbq", "hybrid-worker"), pod("calico-node-4qm6c", "hybrid-worker2")]})
    .to_string();
    let local = Local::default();
    let run = local.runner(move |argv| {
        if argv.contains(&"get".to_string()) {
            Output::ok(list.clone())
        } else {
            Output::ok("BIRD v0.3.3+birdv1.6.8 ready.\n")
        }
    });
    let t = KubectlTransport::new(KubectlAccess::default(), &hybrid(), run);
    assert_eq!(t.pod("hybrid-worker").unwrap(), ("hybrid".to_string(), "calico-node-f5rbq".to_string()));
    t.calico_node("hybrid-worker2", &["birdcl", "-s", "/var/run/calico/bird.ctl", "show", "status"]).unwrap();
    assert_eq!(
        local.argvs(),
        vec![
            "kubectl -n kube-system get pods -l k8s-app=calico-node -o json",
            "kubectl -n kube-system exec calico-node-4qm6c -c calico-node -- birdcl -s /var/run/calico/bird.ctl show status",
        ]
    );
    let e = t.pod("hybrid-worker7").unwrap_err().to_string();
    assert_eq!(
        e,
        "no calico-node pod on node hybrid-worker7 (`kubectl -n kube-system get pods -l k8s-app=calico-node -o json` lists pods on: hybrid-worker, hybrid-worker2)"
    );
    assert!(t.host("hybrid-worker", &["true"]).unwrap_err().to_string().contains("kubectl reaches calico-node only"));
    assert_eq!(
        t.describe(),
        "kubectl exec into calico-node (cluster hybrid: `kubectl -n kube-system exec <pod> -c calico-node -- …`)"
    );
}

/// `kubectl get nodes -o json` (a List of v1 Nodes; labels and annotations as the API has them, Calico's
/// address annotation as calico-node writes it, with its prefix length).
#[test]
fn live_node_labels_and_calico_address() {
    let json = r#"{"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [
      {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "hybrid-worker",
        "annotations": {"projectcalico.org/IPv4Address": "10.0.1.3/24", "node.alpha.kubernetes.io/ttl": "0"},
        "labels": {"kubernetes.io/hostname": "hybrid-worker", "rr-partition": "A"}}},
      {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "hybrid-worker2", "labels": {}}}]}"#;
    let n = parse_nodes(json).unwrap();
    assert_eq!(n["hybrid-worker"].labels.get("rr-partition").map(String::as_str), Some("A"));
    assert_eq!(n["hybrid-worker"].calico_ip, Some("10.0.1.3".parse().unwrap()));
    assert_eq!(n["hybrid-worker2"].calico_ip, None);
    assert!(parse_nodes("{\"kind\": \"Pod\"}").is_err());
}

#[test]
fn apply_passes_the_kubeconfig_and_context() {
    let local = Local::default();
    let run = local.runner(|_| Output::ok(""));
    let kubectl = KubectlAccess {
        kubeconfig: Some("/home/op/.kube/prod".into()),
        contexts: [("hybrid".to_string(), "prod-hybrid".to_string())].into(),
        ..KubectlAccess::default()
    };
    let apply = ApplyOptions { kubectl, calicoctl: vec!["calicoctl".into()] };
    let t = Fake { answer: answers(vec![]), calls: Arc::default(), reach: None };
    let mut b = RemoteBackend::new(hybrid(), Box::new(t), Labels::Topology, Some(apply), run);
    let o = b.run_commands("hybrid", "x", "kubectl get nodes\n").unwrap();
    assert_eq!((o.len(), o[0].ok, o[0].command.as_str()), (1, true, "kubectl get nodes"));
    let calls = local.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].0[3],
        "kubectl() { command kubectl --kubeconfig /home/op/.kube/prod --context prod-hybrid \"$@\"; }\nkubectl get nodes\n"
    );
    assert_eq!(calls[0].1, vec![("KUBECONFIG".to_string(), "/home/op/.kube/prod".to_string())]);
}

#[test]
fn the_command_line() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: check::CheckArgs,
    }
    let a = Cli::try_parse_from([
        "check",
        "labs/p1.yaml",
        "--ssh",
        "inv.yaml",
        "--step",
        "3",
        "--context",
        "prod",
        "--context",
        "cluster2=dr",
        "--timeout",
        "5s",
        "--apply",
        "--kubectl-bin",
        "microk8s kubectl",
    ])
    .unwrap()
    .args;
    assert_eq!((a.step, a.ssh.as_deref(), a.apply), (Some(3), Some(Path::new("inv.yaml")), true));
    assert_eq!((a.timeout, a.namespace.as_str()), (Some(Duration::from_secs(5)), "kube-system"));
    assert_eq!(a.context, vec!["prod", "cluster2=dr"]);
    let k = Cli::try_parse_from(["check", "labs/p1.yaml", "--kubectl", "--html", "r.html"]).unwrap().args;
    assert!(k.kubectl && k.ssh.is_none() && k.html.is_some());
    assert!(Cli::try_parse_from(["check", "labs/p1.yaml"]).is_err(), "--ssh or --kubectl");
    assert!(Cli::try_parse_from(["check", "x", "--ssh", "i", "--kubectl"]).is_err(), "not both");
    assert!(Cli::try_parse_from(["check", "x", "--kubectl", "--timeout", "5 parsecs"]).is_err());
}

#[test]
fn apply_scripts_run_with_the_operators_programs() {
    let k = vec!["kubectl".to_string()];
    let c = vec!["calicoctl".to_string()];
    assert_eq!(apply_command("kubectl get nodes\n", &k, &c), vec!["bash", "-e", "-c", "kubectl get nodes\n"]);
    let k2: Vec<String> = ["echo", "K", "--context", "prod ctx"].map(String::from).into();
    let c2: Vec<String> = ["echo", "C"].map(String::from).into();
    let argv = apply_command("kubectl label node a x=1\ncalicoctl get nodes\n", &k2, &c2);
    assert_eq!(argv[3], "kubectl() { command echo K --context 'prod ctx' \"$@\"; }\ncalicoctl() { command echo C \"$@\"; }\nkubectl label node a x=1\ncalicoctl get nodes\n");
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    assert_eq!(crate::process::run_ok(&refs).unwrap(), "K --context prod ctx label node a x=1\nC get nodes\n");
    // bash -e: the first failing line stops the script.
    let argv = apply_command("false\necho never\n", &k, &c);
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = crate::process::run(&refs, None).unwrap();
    assert_eq!((out.status, out.stdout.as_str()), (Some(1), ""));
}

// ------------------------------------------------------------------------------------------ host keys

fn kh() -> PathBuf {
    PathBuf::from("/home/op/.ssh/known_hosts")
}

fn judged(result: CheckResult, mismatch: Option<(usize, &str)>, unreadable: Vec<usize>) -> String {
    let c = HostKeyCheck {
        result,
        mismatch: mismatch.map(|(l, t)| (l, t.to_string())),
        offered: "ssh-ed25519".into(),
        unreadable,
    };
    match judge_host_key("hybrid-worker", "198.18.7.3", 22, &kh(), &c) {
        Ok(()) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn host_key_outcomes_map_to_decisions() {
    assert_eq!(judged(CheckResult::Match, None, vec![]), "ok");
    assert_eq!(
        judged(CheckResult::Mismatch, Some((7, "ssh-ed25519")), vec![]),
        "host key of hybrid-worker (198.18.7.3:22) does not match /home/op/.ssh/known_hosts:7 — possible MITM or a reinstalled node; not connecting"
    );
    assert_eq!(
        judged(CheckResult::Mismatch, Some((3, "ssh-rsa")), vec![]),
        "host key of hybrid-worker (198.18.7.3:22) does not match /home/op/.ssh/known_hosts:3 — possible MITM or a reinstalled node \
         (that line has an ssh-rsa key, the node offered ssh-ed25519: if the node really has such a key, add it after verifying it: \
         `ssh-keyscan -t ed25519 198.18.7.3 >> /home/op/.ssh/known_hosts`); not connecting"
    );
    assert_eq!(
        judged(CheckResult::Mismatch, None, vec![]),
        "host key of hybrid-worker (198.18.7.3:22) does not match /home/op/.ssh/known_hosts — possible MITM or a reinstalled node; not connecting"
    );
    assert_eq!(
        judged(CheckResult::NotFound, None, vec![]),
        "host key of hybrid-worker (198.18.7.3:22) is not in /home/op/.ssh/known_hosts: add it with ssh-keyscan after verifying it \
         (`ssh-keyscan 198.18.7.3 >> /home/op/.ssh/known_hosts`, compare with the node's own `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub`); not connecting"
    );
    let nf = judged(CheckResult::NotFound, None, vec![4, 9]);
    assert!(nf.ends_with("; lines libssh2 cannot read were skipped: 4, 9; not connecting"), "{nf}");
    let f = judged(CheckResult::Failure, None, vec![]);
    assert!(
        f.starts_with("host key of hybrid-worker (198.18.7.3:22) is not in")
            && f.contains("libssh2 could not check it"),
        "{f}"
    );
    assert_eq!(keyscan_line("h", 2222, None, &kh()), "ssh-keyscan -p 2222 h >> /home/op/.ssh/known_hosts");
    assert_eq!(line_key_type("|1|abc=|def= ssh-ed25519 AAAAC3Nz"), Some("ssh-ed25519"));
    assert_eq!(line_key_type("@cert-authority *.example ssh-rsa AAAAB3"), Some("ssh-rsa"));
    assert_eq!(line_key_type("host"), None);
    // RFC 4648's test vectors, then a @revoked line found by its key.
    let v: Vec<String> =
        ["", "f", "fo", "foo", "foob", "fooba", "foobar"].iter().map(|s| base64(s.as_bytes())).collect();
    assert_eq!(v, ["", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"]);
    let text = "h ssh-ed25519 Zm9vYg==\n@revoked * ssh-ed25519 Zm9vYmFy comment\n";
    assert_eq!(revoked_line(text, b"foobar"), Some(2));
    assert_eq!(revoked_line(text, b"foob"), None, "only @revoked lines count");
}

// ------------------------------------------------------------------------------------------ reaching nodes

/// A port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_node_is_a_clear_error() {
    let d = ssh_dir();
    let port = closed_port();
    let text = format!("known_hosts: known_hosts\nnodes:\n  hybrid-worker:\n    host: 127.0.0.1\n    port: {port}\n");
    let inv = parse_inv(d.path(), &text).unwrap();
    let at = inv.at("hybrid-worker");
    assert_eq!(at, format!("{}:3", d.path().join("inventory.yaml").display()));
    let e = tcp_connect("hybrid-worker", &inv.nodes["hybrid-worker"], &at).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("cannot reach hybrid-worker at 127.0.0.1:{port} (inventory {at}): 127.0.0.1:{port}: ")),
        "{e}"
    );
    assert!(e.contains("Connection refused"), "{e}");
    // Through the transport and the backend: the same error, with what was being read.
    let t = SshTransport::new(inv);
    let e2 = t.calico_node("hybrid-worker", &["true"]).unwrap_err().to_string();
    assert!(e2.starts_with("cannot reach hybrid-worker at 127.0.0.1:"), "{e2}");
    assert!(t.describe().starts_with("ssh (inventory "), "{}", t.describe());
    let b = RemoteBackend::new(hybrid(), Box::new(t), Labels::Topology, None, process_runner());
    let e3 = b.bird("hybrid-worker", "show protocols").unwrap_err().to_string();
    assert!(e3.starts_with("calico-node on hybrid-worker: cannot reach hybrid-worker at 127.0.0.1:"), "{e3}");
    let e4 = b.bird("hybrid-worker5", "show protocols").unwrap_err().to_string();
    assert!(e4.contains("hybrid-worker5 read by the step's expectations is not in the inventory"), "{e4}");
    let bad = "known_hosts: known_hosts\nnodes:\n  a: {host: no-such-host.invalid}\n";
    let inv = parse_inv(d.path(), bad).unwrap();
    let e5 = tcp_connect("a", &inv.nodes["a"], "inv:3").unwrap_err().to_string();
    assert!(
        e5.starts_with(
            "cannot reach a at no-such-host.invalid:22 (inventory inv:3): cannot resolve no-such-host.invalid"
        ),
        "{e5}"
    );
}

#[test]
fn an_unreachable_node_stops_the_check_before_any_expectation() {
    let (_d, rb) = runbook();
    let d = ssh_dir();
    let port = closed_port();
    let mut text = format!("known_hosts: known_hosts\nport: {port}\nnodes:\n");
    for (n, _, _) in NODES {
        text.push_str(&format!("  {n}: {{host: 127.0.0.1}}\n"));
    }
    let inv = parse_inv(d.path(), &text).unwrap();
    let t = SshTransport::new(inv);
    let mut b = RemoteBackend::new(hybrid(), Box::new(t), Labels::Topology, None, process_runner());
    let (out, print) = lines();
    let e = check_on(&rb, &mut b, &quick(1, false), &Fanout(vec![]), &print).unwrap_err().to_string();
    let f = d.path().join("inventory.yaml").display().to_string();
    assert!(e.starts_with("8 nodes cannot be reached:\n"), "{e}");
    assert!(
        e.contains(&format!(
            "  cannot reach hybrid-worker7 at 127.0.0.1:{port} (inventory {f}:11): 127.0.0.1:{port}: "
        )),
        "{e}"
    );
    assert!(out.lock().unwrap().iter().any(|l| l.starts_with("  through ssh (inventory ")));
}

// ------------------------------------------------------------------------------------------ the backend

#[test]
fn birdcl_banner_is_dropped_and_the_reply_parses_the_same() {
    let raw = std::fs::read_to_string(repo().join("harness/src/kind/testdata/calico-node-birdcl-show-protocols.txt"))
        .unwrap();
    let raw: String = raw.lines().skip(1).map(|l| format!("{l}\n")).collect(); // the `# source:` line
    assert!(raw.starts_with("BIRD v0.3.3+birdv1.6.8 ready.\n"));
    let clean = clean_birdcl(&raw);
    assert!(clean.starts_with("name     proto    table    state  since       info\n"), "{clean}");
    assert!(!clean.contains("ready."));
    assert_eq!(crate::observe::parse_protocols(&clean).unwrap(), crate::observe::parse_protocols(&raw).unwrap());
    assert_eq!(clean_birdcl("bird> show status\nBIRD 1.6.8\n"), "BIRD 1.6.8\n");
    let routes =
        std::fs::read_to_string(repo().join("harness/src/kind/testdata/calico-node-birdcl-show-route.txt")).unwrap();
    let routes: String = routes.lines().skip(1).map(|l| format!("{l}\n")).collect();
    assert_eq!(
        crate::observe::parse_routes(&clean_birdcl(&routes)).unwrap(),
        crate::observe::parse_routes(&routes).unwrap()
    );
}

#[test]
fn ipam_blocks_from_bird_aggr() {
    let golden =
        std::fs::read_to_string(repo().join("testdata/calico-golden-v3.30.0/mesh/bgp-export/expected.bird_aggr.cfg"))
            .unwrap();
    let b: Vec<String> = parse_aggr_blocks(&golden).iter().map(|n| n.to_string()).collect();
    assert_eq!(b, vec!["10.0.0.0/30", "10.1.0.0/24", "192.168.221.192/26", "192.168.221.64/26"]);
    let pods = block_pods("n", &parse_aggr_blocks(&golden));
    assert_eq!(
        (pods[2].name.as_str(), pods[2].ip.to_string()),
        ("ipam-block:192.168.221.192/26", "192.168.221.192".into())
    );
}

#[test]
fn every_mutator_refuses_read_only() {
    let mut l = lab(vec![], false, None);
    let b = &mut l.backend;
    let e = b.run_commands("hybrid", "x", "kubectl label node a b=c").unwrap_err().to_string();
    assert_eq!(e, "rrlab check is read-only: it types the step's commands only with --apply");
    for a in [
        NodeAction::StopBird,
        NodeAction::StartBird,
        NodeAction::StopNode,
        NodeAction::StartNode,
        NodeAction::RestartCalicoNode,
        NodeAction::FreezeNode,
        NodeAction::ThawNode,
    ] {
        let e = b.node_action("hybrid-worker", a).unwrap_err().to_string();
        assert_eq!(e, format!("rrlab check is read-only: it does not {a} on a live cluster"));
    }
    assert_eq!(
        b.set_link("hybrid-worker", "eth1", false).unwrap_err().to_string(),
        "rrlab check is read-only: it does not pull or plug links on a live cluster"
    );
    assert_eq!(
        b.start_probes(&[]).unwrap_err().to_string(),
        "rrlab check is read-only: it does not start probe traffic on a live cluster"
    );
    assert!(b.wan_rrlab_bin().unwrap_err().to_string().contains("read-only"));
    assert!(b.exec(Target::Wan, &["true"]).unwrap_err().to_string().contains("no rrlab WAN emulator"));
    assert!(b.exec(Target::Pod("hybrid-worker-p1"), &["ping"]).unwrap_err().to_string().contains("no probe pods"));
    assert!(b.probe_stats().is_empty());
    assert_eq!(b.teardown().unwrap(), Vec::<String>::new());
    assert!(l.calls.lock().unwrap().is_empty(), "nothing reached the nodes");
    assert!(l.local.argvs().is_empty(), "nothing ran here");
}

#[test]
fn confd_paths_follow_the_inventory() {
    struct Confd;
    impl Transport for Confd {
        fn name(&self) -> &'static str {
            "t"
        }
        fn describe(&self) -> String {
            String::new()
        }
        fn calico_node(&self, _n: &str, argv: &[&str]) -> Result<Output, RemoteError> {
            Ok(Output::ok(argv.join(" ")))
        }
        fn host(&self, n: &str, argv: &[&str]) -> Result<Output, RemoteError> {
            self.calico_node(n, argv)
        }
        fn confd_dir(&self, _n: &str) -> String {
            "/srv/calico/confd".into()
        }
        fn bird_socket(&self, _n: &str) -> String {
            "/run/bird.ctl".into()
        }
        fn bird_client(&self, _n: &str) -> String {
            "birdc".into()
        }
    }
    let b = RemoteBackend::new(hybrid(), Box::new(Confd), Labels::Topology, None, process_runner());
    assert_eq!(b.read_file("n", "/etc/calico/confd/config/bird.cfg").unwrap(), "cat /srv/calico/confd/bird.cfg");
    assert_eq!(b.read_file("n", "/etc/calico/confd/configx").unwrap(), "cat /etc/calico/confd/configx");
    assert_eq!(b.bird("n", "show  route all").unwrap(), "birdc -s /run/bird.ctl show route all");
}

// ------------------------------------------------------------------------------------------ planning

#[test]
fn what_a_read_only_check_judges() {
    let (_d, rb) = runbook();
    let p = plan(&rb.steps[0], false);
    let kinds: Vec<&str> = p.checked.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, vec!["sessions", "wan", "fib", "config", "iptables"]);
    let Expectation::Wan(w) = &p.checked[1] else { panic!() };
    assert!(w.bgp_sessions.is_some() && w.bgp_packets.is_none());
    let Expectation::Iptables(i) = &p.checked[4] else { panic!() };
    assert!(i.present && i.packets.is_none());
    let not: Vec<String> = p.not_checked.iter().map(|m| format!("{} @{}: {}", m.expectation, m.line, m.diff)).collect();
    assert_eq!(
        not,
        vec![
            format!("reach all -> all @13: {}", check::REACH_NOT_CHECKED),
            format!("wan bgp_packets @14: {}", check::WAN_NOT_CHECKED),
            format!("loss on every probe @15: {}", check::LOSS_NOT_CHECKED),
            "iptables cali-INPUT \"Allow IPIP packets from Calico hosts\" on hybrid-worker3: packets increases @18: a change during the step; the step's commands were not typed (use --apply)".to_string(),
        ]
    );
    // Typed (--apply on a run: step): converge and fails are judged too.
    let typed = plan(&rb.steps[1], true);
    assert_eq!(typed.checked.len(), 3);
    assert!(typed.not_checked.is_empty());
    let untyped = plan(&rb.steps[1], false);
    assert_eq!(untyped.checked.len(), 1);
    assert_eq!(untyped.not_checked.len(), 2);

    let nodes = l_nodes();
    assert_eq!(block_nodes(&p.checked, &nodes), ["hybrid-worker7".to_string()].into());
    assert_eq!(nodes_read(&p.checked, &nodes).len(), 8, "sessions on all + wan sessions: every node");
    assert_eq!(pick_step(&rb, None).unwrap(), 1);
    assert_eq!(pick_step(&rb, Some(1)).unwrap(), 0);
    assert!(pick_step(&rb, Some(3)).unwrap_err().to_string().ends_with("has 2 steps: there is no step 3"));
    assert!(pick_step(&rb, Some(0)).is_err());
}

fn l_nodes() -> Vec<crate::runbook::lab::NodeInfo> {
    lab(vec![], false, None).backend.nodes()
}

// ------------------------------------------------------------------------------------------ whole checks

#[test]
fn a_true_state_passes_with_what_could_not_be_checked_listed() {
    let (_d, rb) = runbook();
    let mut l = lab(vec![], false, None);
    let (out, print) = lines();
    let (junit, html) = (Junit::default(), Html::default());
    let term = Mutex::new(Vec::<String>::new());
    let tout = |s: &str| term.lock().unwrap().push(s.to_string());
    let t = crate::report::reporters::Terminal { out: &tout, progress: None, failures: true };
    let events = Fanout(vec![&t, &junit, &html]);
    let r = check_on(&rb, &mut l.backend, &quick(1, false), &events, &print).unwrap();
    let s = &r.run.steps[0];
    assert!(r.passed && s.passed, "{:?}", s.failures);
    assert_eq!(s.not_checked.len(), 4);
    assert_eq!(r.run.on, "live, fake");
    let out = out.lock().unwrap().join("\n");
    assert!(
        out.starts_with(&format!("rrlab check {}, step 1 (the default full mesh): read-only", rb.file.display())),
        "{out}"
    );
    assert!(out.contains("  through a fake transport\n  labels: the topology's"), "{out}");
    assert!(out.contains("  reads 8 nodes: hybrid-control-plane, hybrid-worker,"), "{out}");
    assert!(
        out.contains(&format!("      not checked: reach all -> all (line 13): {}", check::REACH_NOT_CHECKED)),
        "{out}"
    );
    let term = term.lock().unwrap().join("\n");
    assert!(
        term.starts_with("PASS  live check step 1 the default full mesh") && term.contains("4 not checked"),
        "{term}"
    );
    // The state was read, nothing written: each call is an observation.
    let calls = l.calls.lock().unwrap().clone();
    assert!(calls.contains(&"hybrid-worker7: cat /etc/calico/confd/config/bird_aggr.cfg".to_string()), "{calls:?}");
    assert!(calls.contains(&"hybrid-worker3: ip -j route show table main".to_string()));
    let writes = ["label", "apply", "delete", "patch", "sv ", "ip route add", "ip link"];
    assert!(calls.iter().all(|c| writes.iter().all(|w| !c.contains(w))), "{calls:?}");
    // The reporters take it unchanged: a JUnit pass, an HTML step with its not-checked list.
    assert!(junit.xml("rrlab check").contains("4 not checked"));
    let h = html.html("t");
    assert!(h.contains("data-verdict=\"PASS\"") && h.contains("Not checked (rrlab check, live cluster)"), "no list");
    assert!(h.contains("pings between rrlab"));
}

#[test]
fn a_seeded_fault_fails_with_the_usual_diff() {
    let (_d, rb) = runbook();
    // The session between hybrid-worker3 (10.0.1.5) and hybrid-worker7 (10.0.2.5) is down.
    let mut l = lab(vec![("hybrid-worker3", "10.0.2.5"), ("hybrid-worker7", "10.0.1.5")], false, None);
    let (out, print) = lines();
    let r = check_on(&rb, &mut l.backend, &quick(1, false), &Fanout(vec![]), &print).unwrap();
    let s = &r.run.steps[0];
    assert!(!r.passed && !s.passed);
    let m = &s.failures;
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!((m[0].expectation.as_str(), m[0].line), ("sessions on all", 9));
    assert_eq!(
        m[0].diff,
        "2 of 8 nodes differ:\nhybrid-worker3:\n  wrong:\n    10.0.2.5 (hybrid-worker7)  expected node-to-node mesh  Established, found node-to-node mesh  start  Idle\n\
         hybrid-worker7:\n  wrong:\n    10.0.1.5 (hybrid-worker3)  expected node-to-node mesh  Established, found node-to-node mesh  start  Idle"
    );
    assert_eq!(m[1].expectation, "wan");
    assert!(m[1].diff.contains("bgp_sessions: expected = 16, found 15"), "{}", m[1].diff);
    let dump = s.dump.as_deref().unwrap();
    assert!(dump.contains("=== hybrid-worker3 (cluster hybrid, site site-a, 10.0.1.5) ==="), "{dump}");
    assert!(dump.contains("pods: ipam-block:172.16.7.0/26 172.16.7.0"), "the stand-in of hybrid-worker7's block");
    assert!(dump.contains("=== WAN: (unavailable: the WAN: a live cluster has no rrlab WAN emulator)"), "{dump}");
    // Not-checked items stay apart from the failures.
    assert_eq!(s.not_checked.len(), 4);
    assert!(out.lock().unwrap().iter().any(|l| l.starts_with("      not checked: loss on every probe")));
}

#[test]
fn commands_are_typed_only_with_apply() {
    let (_d, rb) = runbook();
    let mut l = lab(vec![], false, None);
    let (out, print) = lines();
    let r = check_on(&rb, &mut l.backend, &quick(2, false), &Fanout(vec![]), &print).unwrap();
    assert!(r.passed);
    assert!(l.local.argvs().is_empty(), "nothing typed");
    let out = out.lock().unwrap().join("\n");
    assert!(out.contains("read-only: step 2's commands were not typed (use --apply)"), "{out}");
    assert!(out.contains("not checked: converge within 30s (line 24)"), "{out}");
    assert!(out.contains(&format!("not checked: fails with \"already has a value\" (line 25): {}", check::NOT_TYPED)));

    // --apply: said, typed once through bash -e, then judged as a rehearsal judges it: the command failed as
    // `fails` expects, and everything held, within `converge`.
    let mut l = lab(vec![], true, None);
    let (out, print) = lines();
    let r = check_on(&rb, &mut l.backend, &quick(2, true), &Fanout(vec![]), &print).unwrap();
    let out = out.lock().unwrap().join("\n");
    assert!(out.contains("step 2 (label a node): --apply: the step's commands are typed first"), "{out}");
    assert!(out.contains("applying step 2's commands:\n  $ kubectl label node hybrid-worker rr-partition=A"), "{out}");
    assert_eq!(l.local.argvs(), vec!["bash -e -c kubectl label node hybrid-worker rr-partition=A\n"]);
    let s = &r.run.steps[0];
    assert_eq!(s.commands.len(), 1);
    assert!(!s.commands[0].ok && s.commands[0].stderr.contains("already has a value"));
    assert!(s.not_checked.is_empty());
    assert!(r.passed, "{:?}", s.failures);
    assert!(s.converge.is_some_and(|d| d < Duration::from_secs(30)), "converge judged from the typing");
}
