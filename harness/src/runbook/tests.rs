use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pretty_assertions::assert_eq;

use super::fake::{bgp, FakeLab};
use super::*;
use crate::observe::{
    parse_ip_route, parse_ipset, parse_iptables_save, parse_protocols, parse_routes, PeerType, Prefix,
};
use crate::twin::commands::Outcome;
use crate::wan::WanCounters;

// ------------------------------------------------------------------------------------------ the example

/// A complete runbook in the spirit of the post's procedure 1.
pub(crate) const P1: &str = r#"# Procedure 1: from the full mesh to route reflectors per partition.
name: P1 mesh to partitioned route reflectors
description: |
  The post's procedure 1 on the hybrid cloud: cluster IDs, partition labels,
  three BGPPeers, then the mesh off.
topology: ../topologies/hybrid-rr.clab.yml
defaults:
  timeout: 60s
  poll: 250ms
probes:
  - name: a-to-b
    from: hybrid-worker3
    to: hybrid-worker7
    rate: 200
  - name: b-to-a
    from: pod:hybrid-worker6-p1
    to: hybrid-control-plane
steps:
  - name: full mesh at the start
    expect:
      - sessions:
          on: all
          peers:
            - all node-to-node mesh Established
      - wan:
          bgp_sessions: 16

  - name: cluster ID on the RRs
    run: |
      kubectl annotate node hybrid-worker projectcalico.org/RouteReflectorClusterID=244.0.0.1
      kubectl annotate node hybrid-worker2 projectcalico.org/RouteReflectorClusterID=244.0.0.1
      kubectl annotate node hybrid-worker4 projectcalico.org/RouteReflectorClusterID=244.0.0.1
      kubectl annotate node hybrid-worker5 projectcalico.org/RouteReflectorClusterID=244.0.0.1
    expect:
      - loss: {max_lost: 0, max_outage: 0ms}

  - name: label RRs by partition
    run: |
      kubectl label node hybrid-worker hybrid-worker2 rr-partition=A
      kubectl label node hybrid-worker4 hybrid-worker5 rr-partition=B

  - name: apply BGPPeers
    run: |
      calicoctl apply -f - << EOF
      apiVersion: projectcalico.org/v3
      kind: BGPPeer
      metadata:
        name: node-rr-partition-a
      spec:
        nodeSelector: cloud-type != 'public'
        peerSelector: rr-partition == 'A'
      ---
      apiVersion: projectcalico.org/v3
      kind: BGPPeer
      metadata:
        name: node-rr-partition-b
      spec:
        nodeSelector: cloud-type == 'public'
        peerSelector: rr-partition == 'B'
      ---
      apiVersion: projectcalico.org/v3
      kind: BGPPeer
      metadata:
        name: rr-full-mesh
      spec:
        nodeSelector: has(rr-partition)
        peerSelector: has(rr-partition)
      EOF
    expect:
      - config:
          on: label:rr-partition=A
          file: bird.cfg
          contains:
            - rr client;
            - rr cluster id 244.0.0.1;
      - loss: {probe: a-to-b, max_lost: 0, max_outage: 0ms}

  - name: turn the mesh off
    run: |
      calicoctl patch bgpconfiguration default -p '{"spec": {"nodeToNodeMeshEnabled": false}}'
    timeout: 90s
    settle: 5s
    expect:
      - sessions:
          on: [hybrid-control-plane, hybrid-worker3]
          peers:
            - hybrid-worker node specific Established
            - {peer: hybrid-worker2, type: node specific, state: Established}
      - sessions:
          on: label:rr-partition
          peers:
            - {peer: "label:rr-partition", type: node specific, state: Established}
            - {peer: "site:site-a", type: node specific, state: up}
      - rib:
          on: hybrid-worker3
          prefix: block:hybrid-worker7
          next_hop: owner
          from: hybrid-worker
          cluster_list: [244.0.0.1]
          originator_id: owner
          as_path: []
      - rib:
          on: hybrid-worker3
          prefix: 172.16.200.0/26
          absent: true
      - fib:
          on: hybrid-worker3
          contains:
            - blocks:site:site-b via owner dev tunl0 proto bird onlink
          absent:
            - 172.16.200.0/26
      - reach: {from: "site:site-a", to: "site:site-b", both_ways: true}
      - ipset:
          on: all
          set: cali40all-hosts-net
          exact: [all]
      - iptables:
          on: cluster:hybrid
          chain: cali-INPUT
          rule: Drop IPIP packets from non-Calico hosts
          packets: unchanged
      - loss: {max_lost: 1%, max_outage: 2s}
      - converge: 30s
      - wan: {bgp_sessions: 4, bgp_bytes: "<= 100000"}

  - name: cut the WAN
    wan: partition site-a site-b
    expect:
      - reach: {from: "site:site-a", to: "site:site-b", result: fail}

  - name: heal the WAN
    wan: heal

  - name: stop BIRD on an RR
    stop_bird: hybrid-worker

  - name: give it time
    wait: 5s
"#;

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1).unwrap_or_else(|| panic!("{needle:?} not in the text"))
}

#[test]
fn example_runbook_parses() {
    let rb = parse(Path::new("labs/p1.yaml"), P1).unwrap();
    assert_eq!(rb.name, "P1 mesh to partitioned route reflectors");
    assert_eq!(rb.topology, PathBuf::from("labs/../topologies/hybrid-rr.clab.yml"));
    assert!(rb.description.as_deref().unwrap().starts_with("The post's procedure 1"));
    assert_eq!(
        rb.defaults,
        Defaults { timeout: Duration::from_secs(60), poll: Duration::from_millis(250), block_size: 26 }
    );
    assert_eq!(rb.probes.len(), 2);
    assert_eq!(rb.probes[0].from, PodSelector::Node("hybrid-worker3".into()));
    assert_eq!(rb.probes[0].rate_pps, 200);
    assert_eq!(rb.probes[1].from, PodSelector::Pod("hybrid-worker6-p1".into()));
    assert_eq!(rb.probes[1].rate_pps, 100);
    let names: Vec<&str> = rb.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "full mesh at the start",
            "cluster ID on the RRs",
            "label RRs by partition",
            "apply BGPPeers",
            "turn the mesh off",
            "cut the WAN",
            "heal the WAN",
            "stop BIRD on an RR",
            "give it time"
        ]
    );
    assert_eq!(rb.steps[0].what, StepAction::None);
    assert_eq!(rb.steps[0].line, line_of(P1, "- name: full mesh at the start"));

    // Scripts are verbatim, and their first line is where the runbook says.
    let StepAction::Run { script, script_line } = &rb.steps[1].what else { panic!() };
    assert_eq!(*script_line, line_of(P1, "kubectl annotate node hybrid-worker projectcalico"));
    assert_eq!(script.lines().count(), 4);
    let StepAction::Run { script, script_line } = &rb.steps[3].what else { panic!() };
    assert_eq!(*script_line, line_of(P1, "calicoctl apply -f - << EOF"));
    assert!(script.starts_with("calicoctl apply -f - << EOF\napiVersion: projectcalico.org/v3\nkind: BGPPeer\n"));
    assert!(script.contains("  nodeSelector: cloud-type != 'public'\n"));
    assert!(script.ends_with("EOF\n"));
    let StepAction::Run { script, script_line } = &rb.steps[4].what else { panic!() };
    assert_eq!(
        script,
        "calicoctl patch bgpconfiguration default -p '{\"spec\": {\"nodeToNodeMeshEnabled\": false}}'\n"
    );
    assert_eq!(*script_line, line_of(P1, "calicoctl patch bgpconfiguration"));

    let s = &rb.steps[4];
    assert_eq!(s.timeout, Some(Duration::from_secs(90)));
    assert_eq!(s.settle, Some(Duration::from_secs(5)));
    assert_eq!(s.timeout_or(&rb.defaults), Duration::from_secs(90));
    assert!(!s.expects_failure());
    let kinds: Vec<&str> = s.expect.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        ["sessions", "sessions", "rib", "rib", "fib", "reach", "ipset", "iptables", "loss", "converge", "wan"]
    );
    let Expectation::Sessions(x) = &s.expect[0] else { panic!() };
    assert_eq!(x.line, line_of(P1, "on: [hybrid-control-plane, hybrid-worker3]") - 1);
    assert_eq!(x.on.to_string(), "hybrid-control-plane, hybrid-worker3");
    assert_eq!(x.peers[0].peer, PeerRef::Nodes(NodeSet::node("hybrid-worker")));
    assert_eq!(x.peers[0].peer_type, Some(PeerType::NodeSpecific));
    assert_eq!(x.peers[0].state, Some(PeerState::Bgp("Established".into())));
    assert_eq!(x.peers[1].peer, PeerRef::Nodes(NodeSet::node("hybrid-worker2")));
    let Expectation::Sessions(x) = &s.expect[1] else { panic!() };
    assert_eq!(x.on.items, vec![NodeSel::Label { key: "rr-partition".into(), value: None, negated: false }]);
    assert_eq!(x.peers[1].state, Some(PeerState::Protocol("up".into())));
    let Expectation::Rib(r) = &s.expect[2] else { panic!() };
    assert_eq!(r.prefix, PrefixRef::Blocks(NodeSet::node("hybrid-worker7")));
    assert_eq!(r.next_hop, Some(AddrRef::Owner));
    assert_eq!(r.cluster_list, Some(vec![AddrRef::Ip("244.0.0.1".parse().unwrap())]));
    assert_eq!(r.as_path, Some(vec![]));
    assert_eq!(s.expect[2].describe(), "rib on hybrid-worker3: block:hybrid-worker7 present");
    let Expectation::Rib(r) = &s.expect[3] else { panic!() };
    assert!(r.absent);
    let Expectation::Fib(f) = &s.expect[4] else { panic!() };
    assert_eq!(f.contains[0].dst, PrefixRef::Blocks(NodeSet { items: vec![NodeSel::Site("site-b".into())] }));
    assert!(f.contains[0].onlink);
    assert_eq!(f.contains[0].dev.as_deref(), Some("tunl0"));
    let Expectation::Reach(r) = &s.expect[5] else { panic!() };
    assert!(r.pass && r.both_ways);
    let Expectation::Iptables(i) = &s.expect[7] else { panic!() };
    assert_eq!(i.packets, Some(CounterCheck::Unchanged));
    let Expectation::Loss(l) = &s.expect[8] else { panic!() };
    assert_eq!(l.max_lost, Some(LostBudget::Percent(1.0)));
    assert_eq!(l.max_outage, Some(Duration::from_secs(2)));
    assert_eq!(
        s.expect[9],
        Expectation::Converge(ConvergeExpect { line: line_of(P1, "- converge: 30s"), within: Duration::from_secs(30) })
    );
    let Expectation::Wan(w) = &s.expect[10] else { panic!() };
    assert_eq!(w.bgp_sessions, Some(Bound::exactly(4)));
    assert_eq!(w.bgp_bytes, Some(Bound { min: None, max: Some(100_000) }));

    assert_eq!(
        rb.steps[5].what,
        StepAction::Wan(WanAction::Partition { from: "site-a".into(), to: "site-b".into(), one_way: false })
    );
    assert_eq!(rb.steps[6].what, StepAction::Wan(WanAction::Heal));
    assert_eq!(rb.steps[7].what, StepAction::StopBird("hybrid-worker".into()));
    assert_eq!(rb.steps[8].what, StepAction::Wait(Duration::from_secs(5)));
    assert_eq!(rb.steps[8].what.describe(), "wait 5s");
}

fn topology_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies/hybrid-rr.clab.yml")
}

#[test]
fn load_checks_names_against_the_topology() {
    let dir = tempfile::tempdir().unwrap();
    let text = P1.replace("../topologies/hybrid-rr.clab.yml", &topology_path().display().to_string());
    let p = dir.path().join("p1.yaml");
    std::fs::write(&p, &text).unwrap();
    let rb = load(&p).unwrap();
    assert_eq!(rb.steps.len(), 9);

    let bad = text.replace("stop_bird: hybrid-worker\n", "stop_bird: hybrid-worker9\n");
    std::fs::write(&p, &bad).unwrap();
    let e = load(&p).unwrap_err().to_string();
    let line = line_of(&bad, "stop_bird: hybrid-worker9");
    assert!(e.starts_with(&format!("{}:{line}:16: field steps[7].stop_bird: unknown node \"hybrid-worker9\" (nodes: hybrid-control-plane, hybrid-worker,", p.display())), "{e}");

    let bad = text.replace("wan: partition site-a site-b", "wan: partition site-a site-c");
    std::fs::write(&p, &bad).unwrap();
    let e = load(&p).unwrap_err().to_string();
    assert!(e.contains("field steps[5].wan: unknown site \"site-c\" (sites: site-a, site-b)"), "{e}");

    let bad = text.replace(&topology_path().display().to_string(), "nowhere.clab.yml");
    std::fs::write(&p, &bad).unwrap();
    let e = load(&p).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "{}:6:11: field topology: cannot load {}",
            p.display(),
            dir.path().join("nowhere.clab.yml").display()
        )),
        "{e}"
    );
}

// ------------------------------------------------------------------------------------------ parse errors

fn err(text: &str) -> String {
    parse(Path::new("labs/t.yaml"), text).unwrap_err().to_string()
}

const HEAD: &str = "name: t\ntopology: x.clab.yml\nprobes:\n  - {name: p, from: a, to: b}\nsteps:\n";

#[test]
fn seeded_fault_headers_are_read_and_bad_ones_named() {
    let body = "name: t\ntopology: x\nsteps:\n  - name: a\n    wait: 1s\n  - name: b\n    wait: 1s\n";
    let rb = parse(Path::new("t.yaml"), &format!("# expect-fail: step 2: found 16\n{body}")).unwrap();
    assert_eq!(rb.expect_fail, vec![ExpectedFailure { step: 2, text: "found 16".into(), line: 1 }]);
    assert_eq!((rb.expected_failure(2), rb.expected_failure(1)), (Some("found 16"), None));
    let e = err(&format!("# a comment\n# expect-fail: step 3: x\n{body}"));
    assert!(
        e.contains("labs/t.yaml:2:1")
            && e.contains("expect-fail")
            && e.contains("step 3 does not exist (the runbook has 2 steps)"),
        "{e}"
    );
    let e = err(&format!("# expect-fail: step two: x\n{body}"));
    assert!(
        e.contains("labs/t.yaml:1:1") && e.contains("expected `# expect-fail: step <n>: <text of the failure>`"),
        "{e}"
    );
    let e = err(&format!("# expect-fail: step 1: x\n# expect-fail: step 1: y\n{body}"));
    assert!(e.contains("labs/t.yaml:2:1") && e.contains("already has an expected failure (line 1)"), "{e}");
}

#[test]
fn unknown_step_field() {
    let e = err(&format!("{HEAD}  - name: s\n    run: kubectl get nodes\n    exepct: []\n"));
    assert_eq!(e, "labs/t.yaml:8:5: field steps[0].exepct: unknown field \"exepct\" (did you mean \"expect\"?)");
    let e = err(&format!("{HEAD}  - name: s\n    frobnicate: 1\n"));
    assert!(
        e.starts_with(
            "labs/t.yaml:7:5: field steps[0].frobnicate: unknown field \"frobnicate\" (known: name, cluster, run,"
        ),
        "{e}"
    );
}

#[test]
fn unknown_expectation_kind() {
    let e = err(&format!("{HEAD}  - name: s\n    expect:\n      - sesions: {{on: a, peers: []}}\n"));
    assert_eq!(
        e,
        "labs/t.yaml:8:9: field steps[0].expect[0]: unknown expectation kind \"sesions\" (did you mean \"sessions\"?)"
    );
    let e = err(&format!("{HEAD}  - name: s\n    expect:\n      - rib: {{on: a, prefix: 10.0.0.0/8}}\n        fib: {{on: a, absent: [10.0.0.0/8]}}\n"));
    assert_eq!(e, "labs/t.yaml:9:9: field steps[0].expect[0]: one expectation per list item: found rib and fib (write `- fib: …` as its own item)");
}

#[test]
fn bad_durations() {
    let e = err(&format!("{HEAD}  - name: s\n    wait: 30x\n"));
    assert_eq!(
        e,
        "labs/t.yaml:7:11: field steps[0].wait: bad duration \"30x\": write a number and a unit, e.g. 500ms, 30s, 2m"
    );
    let e = err(&format!("{HEAD}  - name: s\n    timeout: 30\n"));
    assert!(e.starts_with("labs/t.yaml:7:14: field steps[0].timeout: bad duration \"30\""), "{e}");
    let e = err(&format!("{HEAD}  - name: s\n    expect:\n      - converge: soon\n"));
    assert!(e.starts_with("labs/t.yaml:8:19: field steps[0].expect[0].converge: bad duration \"soon\""), "{e}");
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
}

#[test]
fn bad_cidrs() {
    let e = err(&format!("{HEAD}  - name: s\n    expect:\n      - rib: {{on: a, prefix: 172.16.0.0/33}}\n"));
    assert_eq!(
        e,
        "labs/t.yaml:8:30: field steps[0].expect[0].rib.prefix: bad CIDR \"172.16.0.0/33\": \"172.16.0.0/33\" has a prefix length out of range"
    );
    let e = err(&format!("{HEAD}  - name: s\n    expect:\n      - fib:\n          on: a\n          contains:\n            - 172.16.1.5/26 via a\n"));
    assert_eq!(
        e,
        "labs/t.yaml:11:15: field steps[0].expect[0].fib.contains: bad CIDR \"172.16.1.5/26\": host bits are set (did you mean 172.16.1.0/26?)"
    );
    let e = err(&format!("{HEAD}  - name: s\n    wan: {{partition: {{from: 10.0.1.0/24, to: 10.0.2.0.0/24}}}}\n"));
    assert!(e.starts_with("labs/t.yaml:7:46: field steps[0].wan.partition.to: bad CIDR \"10.0.2.0.0/24\""), "{e}");
}

#[test]
fn unknown_node_in_a_node_set() {
    let text =
        format!("{HEAD}  - name: s\n    expect:\n      - sessions:\n          on: [a, zz]\n          peers: []\n");
    // With the lab's names: a parse error at the node set.
    let names = LabNames {
        nodes: [("a", "c1"), ("b", "c1")].iter().map(|(n, c)| (n.to_string(), c.to_string())).collect(),
        clusters: ["c1".to_string()].into(),
        sites: ["lan0".to_string()].into(),
        ..Default::default()
    };
    let e = parse_with(Path::new("labs/t.yaml"), &text, &names).unwrap_err().to_string();
    assert_eq!(e, "labs/t.yaml:9:19: field steps[0].expect[0].sessions.on: unknown node \"zz\" (nodes: a, b)");
    // Without: the check names it.
    let rb = parse(Path::new("labs/t.yaml"), &text).unwrap();
    let lab = sample_lab();
    let m = check(&rb.steps[0].expect[0], &lab, &StepOutcome::default()).unwrap_err();
    assert_eq!(m.expectation, "sessions on a, zz");
    assert_eq!(m.line, 8);
    assert_eq!(m.diff, "unknown node \"zz\" (nodes: a, b, c)");
}

#[test]
fn other_parse_errors() {
    let e = err(&format!("{HEAD}  - name: s\n    run: kubectl get nodes\n    wait: 5s\n"));
    assert_eq!(e, "labs/t.yaml:8:11: field steps[0].wait: a step does one thing: it has both run and wait (split it into two steps)");
    let e = err(&format!(
        "{HEAD}  - name: s\n    expect:\n      - sessions: {{on: a, peers: [b node specific Establishd]}}\n"
    ));
    assert!(e.contains("field steps[0].expect[0].sessions.peers[0]: after the peer, expected a peer type"), "{e}");
    let e = err(&format!("{HEAD}  - name: s\n    expect:\n      - loss: {{probe: q, max_lost: 0}}\n"));
    assert_eq!(e, "labs/t.yaml:8:23: field steps[0].expect[0].loss.probe: unknown probe \"q\" (probes: p)");
    let e =
        err("name: t\ntopology: x.clab.yml\nprobes:\n  - {name: p, from: a, to: b, rate: 10}\nsteps:\n  - name: s\n");
    assert!(
        e.starts_with("labs/t.yaml:4:37: field probes[0].rate: 10 packets per second is out of range (100..=10000"),
        "{e}"
    );
    let e =
        err(&format!("{HEAD}  - name: s\n    expect:\n      - rib: {{on: a, prefix: 10.0.0.0/8, next_hop: owner}}\n"));
    assert!(e.contains("`owner` needs a block:<node> or blocks:<node set> prefix"), "{e}");
    let e = err(&format!("{HEAD}  - name: s\n    wan: partition site-a\n"));
    assert!(e.contains("unknown WAN action \"partition site-a\""), "{e}");
    let e = err(&format!("{HEAD}  - name: s\n    expect:\n      - wan: {{bgp_bytes: \"<= lots\"}}\n"));
    assert!(e.contains("field steps[0].expect[0].wan.bgp_bytes: bad bound \"<= lots\""), "{e}");
    let e = err("name: t\nsteps: []\n");
    assert_eq!(e, "labs/t.yaml:1:5: field topology: is required");
    let e = err("name: t\ntopology: x\nsteps:\n  - name: s\n    run:\n      c1: a\n    cluster: c1\n");
    assert!(e.contains("give either `cluster:` or a `run:` per cluster"), "{e}");
}

#[test]
fn run_per_cluster_becomes_one_step_per_cluster() {
    let text = "name: t\ntopology: x\nsteps:\n  - name: set AS\n    run:\n      cluster1: |\n        calicoctl patch bgpconfiguration default -p '{\"spec\": {\"asNumber\": \"63400\"}}'\n      cluster2: calicoctl get bgpconfiguration default\n    expect:\n      - fails: remote as number must be set\n";
    let rb = parse(Path::new("t.yaml"), text).unwrap();
    assert_eq!(rb.steps.len(), 2);
    assert_eq!(rb.steps[0].name, "set AS [cluster1]");
    assert_eq!(rb.steps[0].cluster.as_deref(), Some("cluster1"));
    assert!(rb.steps[0].expect.is_empty());
    let StepAction::Run { script_line, .. } = &rb.steps[0].what else { panic!() };
    assert_eq!(*script_line, 7);
    assert_eq!(rb.steps[1].cluster.as_deref(), Some("cluster2"));
    let StepAction::Run { script_line, .. } = &rb.steps[1].what else { panic!() };
    assert_eq!(*script_line, 8);
    assert!(rb.steps[1].expects_failure());

    let names = LabNames { clusters: ["cluster1".to_string(), "cluster2".to_string()].into(), ..Default::default() };
    let e = parse_with(
        Path::new("t.yaml"),
        "name: t\ntopology: x\nsteps:\n  - name: s\n    run: calicoctl get nodes\n",
        &names,
    )
    .unwrap_err();
    assert!(e.to_string().contains("several clusters (cluster1, cluster2): say which with `cluster:`"), "{e}");
}

#[test]
fn wan_actions_and_bounds() {
    let one = |w: &str| -> WanAction {
        let rb =
            parse(Path::new("t.yaml"), &format!("name: t\ntopology: x\nsteps:\n  - name: s\n    wan: {w}\n")).unwrap();
        match &rb.steps[0].what {
            StepAction::Wan(a) => a.clone(),
            o => panic!("{o:?}"),
        }
    };
    assert_eq!(
        one("partition site-a -> 10.0.2.0/24"),
        WanAction::Partition { from: "site-a".into(), to: "10.0.2.0/24".into(), one_way: true }
    );
    assert_eq!(
        one("{partition: [site-a, site-b]}"),
        WanAction::Partition { from: "site-a".into(), to: "site-b".into(), one_way: false }
    );
    assert_eq!(one("loss 5%"), WanAction::Loss { percent: 5.0 });
    assert_eq!(one("{loss: 2.5%}"), WanAction::Loss { percent: 2.5 });
    assert_eq!(one("delay 100ms"), WanAction::Delay { ms: 100 });
    assert_eq!(one("rate 2mbit"), WanAction::Rate { kbit: 2000 });
    assert_eq!(one("{rate: 512kbit}"), WanAction::Rate { kbit: 512 });
    // netem's knobs together: one impairment; a lone delay or plain loss stays what it was.
    assert_eq!(one("{delay: 40ms}"), WanAction::Delay { ms: 40 });
    let WanAction::Impair { imp } = one("{delay: 40ms, jitter: 5ms, loss: 1%}") else { panic!() };
    assert_eq!((imp.delay.as_millis(), imp.jitter.as_millis()), (40, 5));
    assert_eq!(imp.loss, crate::impair::Loss::Random { percent: 1.0 });
    assert!(matches!(one("{loss: burst 2% 25%}"), WanAction::Impair { .. }));
    assert!(matches!(one("{duplicate: 1%}"), WanAction::Impair { .. }));
    let e = parse(
        Path::new("t.yaml"),
        "name: t\ntopology: x\nsteps:\n  - name: s\n    wan: {delay: 40ms, jitter: 5 parsecs}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("t.yaml:5") && e.contains("jitter") && e.contains("5 parsecs"), "{e}");
    assert_eq!(parse_bound("4").unwrap(), Bound::exactly(4));
    assert_eq!(parse_bound("> 0").unwrap(), Bound { min: Some(1), max: None });
    assert_eq!(parse_bound("< 3").unwrap(), Bound { min: None, max: Some(2) });
    assert_eq!(parse_bound("2..5").unwrap(), Bound { min: Some(2), max: Some(5) });
    assert!(parse_bound("5..2").is_err());
}

#[test]
fn fault_actions_parse_and_bad_ones_name_file_line_and_field() {
    let topo =
        crate::model::topology::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies/hybrid-rr.clab.yml"))
            .unwrap();
    let names = LabNames::from_topology(&topo);
    let step = |body: &str| -> Result<StepAction, String> {
        let text = format!("name: t\ntopology: x\nsteps:\n  - name: s\n    {body}\n");
        parse_with(Path::new("labs/t.yaml"), &text, &names)
            .map(|rb| rb.steps[0].what.clone())
            .map_err(|e| e.to_string())
    };
    assert_eq!(step("freeze_node: hybrid-worker3"), Ok(StepAction::FreezeNode("hybrid-worker3".into())));
    assert_eq!(step("thaw_node: hybrid-worker3"), Ok(StepAction::ThawNode("hybrid-worker3".into())));
    let down = StepAction::LinkDown { node: "hybrid-worker3".into(), iface: "eth1".into() };
    assert_eq!(step("link_down: hybrid-worker3:eth1"), Ok(down.clone()));
    // A node with one link needs no interface.
    assert_eq!(step("link_down: hybrid-worker3"), Ok(down));
    // The WAN router is not a cluster node, but its links can be cut.
    assert_eq!(step("link_up: wan:eth2"), Ok(StepAction::LinkUp { node: "wan".into(), iface: "eth2".into() }));
    assert_eq!(
        step("link_down: wan"),
        Err("labs/t.yaml:5:16: field steps[0].link_down: node wan has 2 links: say which, e.g. wan:eth1".into())
    );
    assert_eq!(
        step("link_down: hybrid-worker3:eth7"),
        Err(
            "labs/t.yaml:5:16: field steps[0].link_down: node hybrid-worker3 has no link on \"eth7\" (its links: eth1)"
                .into()
        )
    );
    assert!(step("link_down: nosuch:eth1").unwrap_err().contains("unknown node \"nosuch\" (nodes with links: "));
    assert!(step("freeze_node: nosuch")
        .unwrap_err()
        .contains("labs/t.yaml:5:18: field steps[0].freeze_node: unknown node"));
    let flap = step("wan: {flap: {between: [site-a, site-b], down: 5s, up: 10s, times: 3}}").unwrap();
    assert_eq!(
        flap,
        StepAction::Wan(WanAction::Flap {
            from: "site-a".into(),
            to: "site-b".into(),
            down: Duration::from_secs(5),
            up: Duration::from_secs(10),
            times: 3
        })
    );
    assert_eq!(flap.describe(), "wan flap site-a <-> site-b: down 5s, up 10s, 3 times");
    for (body, field, says) in [
        ("wan: {flap: {between: [site-a], down: 5s, up: 1s}}", "wan.flap.between", "expected two sites, found 1"),
        ("wan: {flap: {between: [site-a, site-z], down: 5s, up: 1s}}", "wan.flap.between", "unknown site \"site-z\""),
        ("wan: {flap: {between: [site-a, site-b], up: 1s}}", "wan.flap.down", "missing: how long the WAN stays down"),
        ("wan: {flap: {between: [site-a, site-b], down: 0s, up: 1s}}", "wan.flap.down", "longer than 0s"),
        ("wan: {flap: {between: [site-a, site-b], down: 1s, up: 1s, times: 0}}", "wan.flap.times", ""),
        ("wan: {flap: {between: [site-a, site-b], down: 1s, up: 1s}, loss: 5%}", "wan", "flap is a step of its own"),
        ("wan: {flap: 5s}", "wan.flap", "write {between"),
    ] {
        let e = step(body).unwrap_err();
        assert!(
            e.starts_with("labs/t.yaml:5:") && e.contains(&format!("field steps[0].{field}")) && e.contains(says),
            "{body}: {e}"
        );
    }
}

// ------------------------------------------------------------------------------------------ the fake lab

const A_PROTOCOLS: &str = include_str!("../observe/testdata/bird-a-show-protocols.txt");
const B_PROTOCOLS: &str = include_str!("../observe/testdata/bird-b-show-protocols.txt");
const A_ROUTES: &str = include_str!("../observe/testdata/bird-a-show-route-all.txt");
const B_ROUTES: &str = include_str!("../observe/testdata/bird-b-show-route-all.txt");
const C_ROUTES: &str = include_str!("../observe/testdata/bird-c-show-route-all.txt");
const B_FIB: &str = include_str!("../observe/testdata/ip-b-j-route.json");
const B_IPSETS: &str = include_str!("../observe/testdata/ipset-b-list.txt");
const B_IPTABLES: &str = include_str!("../observe/testdata/iptables-save-c-b.txt");
const A_CFG: &str = include_str!("../observe/testdata/a.cfg");
const B_CFG: &str = include_str!("../observe/testdata/b.cfg");
const C_CFG: &str = include_str!("../observe/testdata/c.cfg");
const B_NOAS: &str = include_str!("../observe/testdata/birdc-b-configure-noas.txt");

fn node(name: &str, site: &str, ip: &str, pod_ip: &str) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        cluster: "lab".into(),
        site: Some(site.into()),
        ip: ip.parse().unwrap(),
        labels: BTreeMap::new(),
        pods: vec![PodInfo { name: format!("{name}-p1"), node: name.into(), ip: pod_ip.parse().unwrap() }],
    }
}

/// The three BIRDs of observe/testdata: `a` (10.99.0.1, route reflector, cluster id 1.0.0.1) with clients
/// `b` (10.99.0.2, same LAN) and `c` (10.99.1.3, another LAN, seen by a as 10.99.1.1). Blocks: a
/// 172.16.1.0/26, b 172.16.2.0/26, c 172.16.3.0/26.
pub(crate) fn sample_lab() -> FakeLab {
    let mut a = node("a", "lan0", "10.99.0.1", "172.16.1.2");
    a.labels.insert("rr".into(), "true".into());
    let b = node("b", "lan0", "10.99.0.2", "172.16.2.2");
    let c = node("c", "lan1", "10.99.1.3", "172.16.3.2");
    let mut lab = FakeLab { nodes: vec![a, b, c], ..Default::default() };
    lab.protocols.insert("a".into(), parse_protocols(A_PROTOCOLS).unwrap());
    lab.protocols.insert("b".into(), parse_protocols(B_PROTOCOLS).unwrap());
    lab.protocols.insert("c".into(), vec![bgp("Node", "10.99.1.1", "up", "Established")]);
    lab.rib.insert("a".into(), parse_routes(A_ROUTES).unwrap());
    lab.rib.insert("b".into(), parse_routes(B_ROUTES).unwrap());
    lab.rib.insert("c".into(), parse_routes(C_ROUTES).unwrap());
    lab.fib.insert("b".into(), parse_ip_route(B_FIB).unwrap());
    lab.ipsets.insert("b".into(), parse_ipset(B_IPSETS).unwrap());
    lab.iptables.insert("b".into(), parse_iptables_save(B_IPTABLES).unwrap());
    for (n, cfg) in [("a", A_CFG), ("b", B_CFG), ("c", C_CFG)] {
        lab.config.insert(n.into(), [("bird.cfg".to_string(), cfg.to_string())].into());
    }
    lab.wan = WanCounters { bgp_packets: 40, bgp_bytes: 4_000, ipip_packets: 10, ipip_bytes: 1_000 };
    lab
}

/// The expectation of a one-expectation runbook (`item` is the list item after `- `).
fn exp(item: &str) -> Expectation {
    let text = format!("{HEAD}  - name: s\n    expect:\n      - {item}\n");
    let rb = parse(Path::new("labs/t.yaml"), &text).unwrap_or_else(|e| panic!("{e}"));
    rb.steps[0].expect[0].clone()
}

fn ok(item: &str, lab: &FakeLab, out: &StepOutcome) {
    if let Err(m) = check(&exp(item), lab, out) {
        panic!("{item} should hold:\n{m}");
    }
}

fn diff(item: &str, lab: &FakeLab, out: &StepOutcome) -> String {
    match check(&exp(item), lab, out) {
        Ok(()) => panic!("{item} should fail"),
        Err(m) => {
            assert_eq!(m.line, 8);
            m.diff
        }
    }
}

// ------------------------------------------------------------------------------------------ each kind

#[test]
fn sessions_exact_set() {
    let lab = sample_lab();
    let out = StepOutcome::default();
    ok("sessions: {on: b, peers: [a node specific Established, 10.99.0.9 node-to-node mesh Active]}", &lab, &out);
    ok("sessions: {on: b, peers: [a node specific up, 10.99.0.9 node-to-node mesh start]}", &lab, &out);
    ok("sessions: {on: a, peers: [{peer: all, type: node specific, state: Established}]}", &lab, &out);
    ok("sessions: {on: c, peers: [10.99.1.1 node specific established]}", &lab, &out);

    // Seeded fault: c expected, and the mesh peer not listed.
    let m =
        check(&exp("sessions: {on: b, peers: [a node specific Established, c node specific Established]}"), &lab, &out)
            .unwrap_err();
    assert_eq!(m.expectation, "sessions on b");
    assert_eq!(
        m.diff,
        "on b:
  missing:
    10.99.1.3 (c)  node specific  Established
  unexpected:
    10.99.0.9  node-to-node mesh  start  Active Socket: No route to host"
    );
    // Wrong type and state.
    let d = diff(
        "sessions: {on: b, peers: [a node-to-node mesh Established, 10.99.0.9 node-to-node mesh Established]}",
        &lab,
        &out,
    );
    assert_eq!(
        d,
        "on b:
  wrong:
    10.99.0.1 (a)  expected node-to-node mesh  Established, found node specific  up  Established
    10.99.0.9  expected node-to-node mesh  Established, found node-to-node mesh  start  Active Socket: No route to host"
    );
    // A node set: only the nodes that differ, and a node whose BIRD cannot be read.
    let mut lab2 = sample_lab();
    lab2.protocols.remove("c");
    let d = diff("sessions: {on: all, peers: [{peer: all, type: node specific, state: Established}]}", &lab2, &out);
    assert!(d.starts_with("2 of 3 nodes differ:\nb:\n  missing:\n    10.99.1.3 (c)"), "{d}");
    assert!(d.contains("c:\n  cannot read BGP sessions: node c: no BIRD here"), "{d}");
}

#[test]
fn rib_attributes() {
    let lab = sample_lab();
    let out = StepOutcome::default();
    // On b, c's block was reflected by a: next hop c, learned from a, cluster list 1.0.0.1, originator c.
    ok(
        "rib: {on: b, prefix: 'block:c', next_hop: owner, from: a, cluster_list: [1.0.0.1], originator_id: owner, as_path: [64513], count: 1}",
        &lab,
        &out,
    );
    ok("rib: {on: b, prefix: 172.16.2.0/26, kind: blackhole}", &lab, &out);
    ok("rib: {on: b, prefix: 172.16.5.0/26, count: 2, path: any, next_hop: c, as_path: 64513}", &lab, &out);
    ok("rib: {on: b, prefix: 172.16.200.0/26, absent: true}", &lab, &out);
    ok("rib: {on: b, prefix: 'blocks:all', next_hop: owner}", &lab, &out);

    let d = diff(
        "rib: {on: b, prefix: 'block:c', next_hop: owner, from: c, cluster_list: [244.0.0.1], as_path: []}",
        &lab,
        &out,
    );
    assert_eq!(
        d,
        "on b:
  172.16.3.0/26 (block of c):
    from: expected 10.99.1.3 (c), found 10.99.0.1 (a)
    cluster_list: expected [244.0.0.1], found [1.0.0.1]
    as_path: expected [], found [64513]
    paths:
      172.16.3.0/26 via 10.99.0.1 on veth-ba [Node_10_99_0_1] * next_hop 10.99.1.3 as_path [64513] originator_id 10.99.1.3 cluster_list [1.0.0.1]"
    );
    let d = diff("rib: {on: b, prefix: 172.16.2.0/26, absent: true}", &lab, &out);
    assert_eq!(d, "on b:\n  172.16.2.0/26: expected absent, found 1 path(s):\n    172.16.2.0/26 blackhole [static1] *");
    let d = diff("rib: {on: b, prefix: 172.16.0.0/26}", &lab, &out);
    assert_eq!(d, "on b:\n  172.16.0.0/26: missing (BIRD has no route for it)");
}

#[test]
fn fib_contains_absent_exact() {
    let lab = sample_lab();
    let out = StepOutcome::default();
    let exact = "fib: {on: b, exact: ['block:c via owner dev tunl0 proto bird onlink', '172.16.1.0/26 via a dev veth-ba proto bird', 'blackhole 172.16.2.0/26 proto bird']}";
    ok(exact, &lab, &out);
    ok("fib: {on: b, contains: ['blocks:c via owner dev tunl0 proto bird onlink', 'unreachable 172.16.8.0/24 proto static metric 50', default via a], absent: [172.16.9.0/26]}", &lab, &out);

    let d = diff(
        "fib: {on: b, contains: ['block:a via a dev tunl0 proto bird onlink'], absent: [172.16.8.0/24]}",
        &lab,
        &out,
    );
    assert_eq!(
        d,
        "on b:
  missing:
    172.16.1.0/26 via 10.99.0.1 (a) dev tunl0 proto bird onlink
      found: 172.16.1.0/26 via 10.99.0.1 dev veth-ba proto bird
  present, expected absent:
    unreachable 172.16.8.0/24 proto static metric 50   (matches `172.16.8.0/24`)"
    );
    let d = diff(
        "fib: {on: b, exact: ['block:c via owner dev tunl0 proto bird onlink', 'blackhole 172.16.2.0/26 proto bird']}",
        &lab,
        &out,
    );
    assert_eq!(d, "on b:\n  unexpected (proto bird):\n    172.16.1.0/26 via 10.99.0.1 dev veth-ba proto bird");
}

#[test]
fn reach_matrix() {
    let mut lab = sample_lab();
    let out = StepOutcome::default();
    ok("reach: {from: all, to: all}", &lab, &out);
    lab.ping_fails.insert(("b-p1".into(), "c-p1".into()));
    ok("reach: {from: 'pod:b-p1', to: c, result: fail}", &lab, &out);
    let d = diff("reach: {from: [a, b], to: 'site:lan1', both_ways: true}", &lab, &out);
    assert_eq!(d, "expected every ping to pass; 1 of 4 failed:\n  b-p1 (172.16.2.2, b) -> c-p1 (172.16.3.2, c)");
    let d = diff("reach: {from: a, to: b, result: fail}", &lab, &out);
    assert_eq!(d, "expected every ping to fail; 1 of 1 passed:\n  a-p1 (172.16.1.2, a) -> b-p1 (172.16.2.2, b)");
    let d = diff("reach: {from: 'pod:nope', to: b}", &lab, &out);
    assert_eq!(d, "unknown pod \"nope\" (pods: a-p1, b-p1, c-p1)");
}

#[test]
fn ipset_members() {
    let lab = sample_lab();
    let out = StepOutcome::default();
    ok(
        "ipset: {on: b, set: cali40all-hosts-net, contains: [a, b, c, 192.168.100.0/24], absent: [10.2.0.0/16]}",
        &lab,
        &out,
    );
    ok("ipset: {on: b, set: cali40all-hosts-net, exact: [all, 192.168.100.0/24]}", &lab, &out);
    let d = diff("ipset: {on: b, set: cali40all-hosts-net, contains: [10.2.0.0/16], absent: [c]}", &lab, &out);
    assert_eq!(
        d,
        "on b:
  missing:
    10.2.0.0/16
  present, expected absent:
    10.99.1.3 (c)
  members now: 10.99.0.1, 10.99.0.2, 10.99.1.3, 192.168.100.0/24"
    );
    let d = diff("ipset: {on: b, set: cali40all-hosts-net, exact: [all]}", &lab, &out);
    assert!(d.contains("unexpected:\n    192.168.100.0/24"), "{d}");
    let d = diff("ipset: {on: b, set: cali40nope, contains: [a]}", &lab, &out);
    assert!(
        d.starts_with("on b:\n  no ipset named cali40nope (sets: cali40all-hosts-net, cali40masq-ipam-pools"),
        "{d}"
    );
}

fn baseline_lab() -> (FakeLab, StepOutcome) {
    let lab = sample_lab();
    // At the step's start the drop rule had counted nothing.
    let before = parse_iptables_save(&B_IPTABLES.replace("[2:96] -A cali-INPUT", "[0:0] -A cali-INPUT")).unwrap();
    let out = StepOutcome { iptables_before: [("b".to_string(), before)].into(), ..Default::default() };
    (lab, out)
}

#[test]
fn iptables_counters() {
    let (lab, out) = baseline_lab();
    ok("iptables: {on: b, chain: cali-INPUT, rule: Drop IPIP packets from non-Calico hosts, packets: increases, bytes: '>= 96'}", &lab, &out);
    ok(
        "iptables: {on: b, chain: cali-INPUT, rule: Allow IPIP packets from Calico hosts, packets: unchanged}",
        &lab,
        &out,
    );
    ok("iptables: {on: b, chain: cali-INPUT, rule: Accept everything, present: false}", &lab, &out);

    let d = diff(
        "iptables: {on: b, chain: cali-INPUT, rule: Drop IPIP packets from non-Calico hosts, packets: unchanged}",
        &lab,
        &out,
    );
    assert_eq!(
        d,
        "rule \"Drop IPIP packets from non-Calico hosts\" in cali-INPUT:\n  packets: expected unchanged, was 0 when the step started, now 2"
    );
    let d = diff(
        "iptables: {on: b, chain: cali-INPUT, rule: Allow IPIP packets from Calico hosts, packets: increases}",
        &lab,
        &out,
    );
    assert_eq!(d, "rule \"Allow IPIP packets from Calico hosts\" in cali-INPUT:\n  packets: expected increases, was 3 when the step started, now 3");
    let d = diff("iptables: {on: b, chain: cali-INPUT, rule: Accept everything}", &lab, &out);
    assert_eq!(
        d,
        "b: no rule in cali-INPUT with comment \"Accept everything\" (comments there: Allow IPIP packets from Calico hosts; Drop IPIP packets from non-Calico hosts)"
    );
    // Without a baseline, increases cannot be judged: said so.
    let d = diff(
        "iptables: {on: b, chain: cali-INPUT, rule: Drop IPIP, packets: increases}",
        &lab,
        &StepOutcome::default(),
    );
    assert!(d.contains("packets: no value from the step's start for b (StepOutcome.iptables_before)"), "{d}");
}

#[test]
fn baseline_captures_what_expectations_need() {
    let lab = sample_lab();
    let es = vec![
        exp("iptables: {on: b, chain: cali-INPUT, rule: Drop IPIP, packets: increases}"),
        exp("wan: {bgp_bytes: '<= 10'}"),
    ];
    let out = StepOutcome::baseline(&es, &lab);
    assert_eq!(out.iptables_before.keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(out.wan_before, Some(lab.wan.clone()));
    assert!(StepOutcome::baseline(&es[..1], &lab).wan_before.is_none());
}

#[test]
fn config_lines() {
    let lab = sample_lab();
    let out = StepOutcome::default();
    ok("config: {on: a, file: bird.cfg, contains: ['rr client;', '  rr   cluster id 1.0.0.1;'], lacks: [rr cluster id 244.0.0.1;]}", &lab, &out);
    ok("config: {on: a, contains: [\"neighbor 10.99.0.2 as 64512;\"]}", &lab, &out);
    let d = diff("config: {on: [a, b], contains: [rr cluster id 244.0.0.1;]}", &lab, &out);
    assert_eq!(
        d,
        "2 of 2 nodes differ:
a:
  missing: rr cluster id 244.0.0.1;
    nearest, bird.cfg:62: rr cluster id 1.0.0.1;
    nearest, bird.cfg:71: rr cluster id 1.0.0.1;
b:
  missing: rr cluster id 244.0.0.1;"
    );
    let d = diff("config: {on: a, lacks: ['rr client;']}", &lab, &out);
    assert_eq!(d, "on a:\n  present, expected absent: rr client; (bird.cfg:61)\n  present, expected absent: rr client; (bird.cfg:70)");
    let d = diff("config: {on: a, file: bird_ipam.cfg, contains: [x]}", &lab, &out);
    assert_eq!(d, "on a:\n  no config file bird_ipam.cfg (files: bird.cfg)");
}

#[test]
fn config_multi_line_entries_are_consecutive() {
    let lab = sample_lab();
    let out = StepOutcome::default();
    let item = "config:\n          on: a\n          contains:\n            - |\n              rr client;\n              rr cluster id 1.0.0.1;";
    ok(item, &lab, &out);
    let item = "config:\n          on: a\n          contains:\n            - |\n              rr cluster id 1.0.0.1;\n              rr client;";
    assert!(check(&exp(item), &lab, &out).unwrap_err().diff.contains("missing: rr cluster id 1.0.0.1; / rr client;"));
}

fn failed_command(stderr: &str) -> Outcome {
    Outcome {
        line: 1,
        command: "calicoctl apply -f -".into(),
        ok: false,
        stdout: String::new(),
        stderr: stderr.into(),
        changed: false,
    }
}

#[test]
fn fails_on_commands_and_bird_reloads() {
    let mut lab = sample_lab();
    let cmd = StepOutcome {
        commands: vec![failed_command("Failed to execute command: error with field asNumber")],
        ..Default::default()
    };
    ok("fails: error with field asNumber", &lab, &cmd);
    // BIRD's reload error, as in the post (lower case there; BIRD says "Remote AS").
    let err_line = B_NOAS.lines().find(|l| l.contains("must be set")).unwrap();
    lab.bird_errors.insert("b".into(), err_line.into());
    ok("fails: remote as number must be set", &lab, &StepOutcome::default());
    ok("fails: {message: Remote AS number must be set, on: b}", &lab, &StepOutcome::default());

    let d = diff("fails: {message: remote as number must be set, on: a}", &lab, &StepOutcome::default());
    assert_eq!(d, "expected a failure with \"remote as number must be set\"\nfound none: every command succeeded (0 commands) and no node reports a BIRD configuration error");
    let d = diff("fails: peer IP must be set", &lab, &cmd);
    assert_eq!(
        d,
        "expected a failure with \"peer IP must be set\"
found other failures:
  line 1: calicoctl apply -f -
    Failed to execute command: error with field asNumber
  BIRD on b: /tmp/rrobs/b-noas.cfg:77:1 Remote AS number must be set"
    );
}

fn with_probe(sent: u64, received: u64, outage_ms: u64) -> StepOutcome {
    StepOutcome {
        probes: [(
            "p".to_string(),
            ProbeStats { sent, received, longest_outage: Duration::from_millis(outage_ms), ..Default::default() },
        )]
        .into(),
        ..Default::default()
    }
}

#[test]
fn loss_budget() {
    let lab = sample_lab();
    ok("loss: {probe: p, max_lost: 0, max_outage: 0ms}", &lab, &with_probe(312, 312, 0));
    ok("loss: {max_lost: 1%, max_outage: 50ms}", &lab, &with_probe(1000, 995, 50));
    let d = diff("loss: {probe: p, max_lost: 0, max_outage: 100ms}", &lab, &with_probe(312, 300, 120));
    assert_eq!(d, "p: lost 12 of 312 (3.8%), budget 0 packets; longest outage 120ms, budget 100ms");
    let d = diff("loss: {max_lost: 1%}", &lab, &with_probe(100, 98, 20));
    assert_eq!(d, "p: lost 2 of 100 (2.0%), budget 1%");
    let d = diff("loss: {probe: p, max_lost: 0}", &lab, &StepOutcome::default());
    assert_eq!(d, "p: no measurement for this step");
}

#[test]
fn converge_budget() {
    let lab = sample_lab();
    let at = |ms| StepOutcome { converged: Some(Duration::from_millis(ms)), ..Default::default() };
    ok("converge: 2s", &lab, &at(1420));
    ok("converge: {within: 1500ms}", &lab, &at(1420));
    assert_eq!(diff("converge: 1s", &lab, &at(1420)), "converged in 1.42s, budget 1s");
    assert_eq!(
        diff("converge: 1s", &lab, &StepOutcome::default()),
        "did not converge: the step's expectations never all held (budget 1s)"
    );
}

#[test]
fn wan_sessions_and_bytes() {
    let lab = sample_lab();
    let before = StepOutcome {
        wan_before: Some(WanCounters { bgp_packets: 30, bgp_bytes: 3_000, ipip_packets: 10, ipip_bytes: 1_000 }),
        ..Default::default()
    };
    // a–c is the only Established session across sites (a–b share lan0; c's peer 10.99.1.1 is a's other
    // address, not a node IP, so it is not counted twice).
    ok("wan: {bgp_sessions: 1, bgp_bytes: '<= 1000', bgp_packets: '>= 1', ipip_packets: 0}", &lab, &before);
    let d = diff("wan: {bgp_sessions: 0, bgp_bytes: '<= 500', ipip_bytes: '> 0'}", &lab, &before);
    assert_eq!(
        d,
        "bgp_sessions: expected = 0, found 1 crossing the WAN
  a (lan0) — c (lan1)
bgp_bytes: expected <= 500 during the step, found 1000 (3000 -> 4000)
ipip_bytes: expected >= 1 during the step, found 0 (1000 -> 1000)"
    );
    let d = diff("wan: {bgp_bytes: '<= 500'}", &lab, &StepOutcome::default());
    assert_eq!(d, "no WAN counters from the step's start (StepOutcome.wan_before), so deltas cannot be judged");
}

#[test]
fn node_sets_resolve() {
    let lab = sample_lab();
    let names = |s: &str| -> Result<Vec<String>, String> {
        let set = NodeSet { items: s.split(',').map(|i| parse_node_sel(i).unwrap()).collect() };
        resolve_nodes(&set, &lab.nodes).map(|v| v.into_iter().map(|n| n.name).collect())
    };
    assert_eq!(names("all").unwrap(), ["a", "b", "c"]);
    assert_eq!(names("site:lan0").unwrap(), ["a", "b"]);
    assert_eq!(names("c,a").unwrap(), ["a", "c"]);
    assert_eq!(names("label:rr").unwrap(), ["a"]);
    assert_eq!(names("label:rr=true").unwrap(), ["a"]);
    assert_eq!(names("label:rr!=true").unwrap(), ["b", "c"]);
    assert_eq!(names("cluster:lab").unwrap(), ["a", "b", "c"]);
    assert_eq!(names("cluster:x").unwrap_err(), "unknown cluster \"x\" (clusters: lab)");
    assert_eq!(names("site:x").unwrap_err(), "unknown site \"x\" (sites: lan0, lan1)");
    assert_eq!(names("label:rr=false").unwrap_err(), "label:rr=false selects no node");
    assert!(parse_node_sel("Bad_Name").is_err());
    assert_eq!(block_of("172.16.3.2".parse::<Ipv4Addr>().unwrap(), 26), "172.16.3.0/26".parse::<Prefix>().unwrap());
}

// ------------------------------------------------------------------------------------------ waiting

/// A lab whose c–a session comes up on the `n`-th read of c's protocols.
struct Slow {
    lab: FakeLab,
    up_after: usize,
    reads: std::cell::Cell<usize>,
    /// Stops being Established again after this many reads (a flap), if set.
    down_after: Option<usize>,
}

impl LabView for Slow {
    fn nodes(&self) -> Vec<NodeInfo> {
        self.lab.nodes()
    }
    fn protocols(&self, node: &str) -> crate::runbook::lab::Observed<Vec<crate::observe::Protocol>> {
        if node == "c" {
            let n = self.reads.get() + 1;
            self.reads.set(n);
            let up = n >= self.up_after && self.down_after.is_none_or(|d| n <= d);
            return Ok(vec![if up {
                bgp("Node", "10.99.1.1", "up", "Established")
            } else {
                bgp("Node", "10.99.1.1", "start", "Connect")
            }]);
        }
        self.lab.protocols(node)
    }
    fn rib(&self, node: &str) -> crate::runbook::lab::Observed<Vec<crate::observe::Route>> {
        self.lab.rib(node)
    }
    fn fib(&self, node: &str) -> crate::runbook::lab::Observed<Vec<crate::observe::KernelRoute>> {
        self.lab.fib(node)
    }
    fn ipsets(&self, node: &str) -> crate::runbook::lab::Observed<Vec<crate::observe::IpSet>> {
        self.lab.ipsets(node)
    }
    fn iptables(&self, node: &str) -> crate::runbook::lab::Observed<crate::observe::IpTables> {
        self.lab.iptables(node)
    }
    fn config(&self, node: &str) -> crate::runbook::lab::Observed<BTreeMap<String, String>> {
        self.lab.config(node)
    }
    fn bird_config_error(&self, node: &str) -> Option<String> {
        self.lab.bird_config_error(node)
    }
    fn ping(&self, from: &PodInfo, to: &PodInfo) -> bool {
        self.lab.ping(from, to)
    }
    fn wan(&self) -> crate::runbook::lab::Observed<WanCounters> {
        self.lab.wan()
    }
}

fn slow(up_after: usize, down_after: Option<usize>) -> Slow {
    Slow { lab: sample_lab(), up_after, reads: std::cell::Cell::new(0), down_after }
}

#[test]
fn wait_all_polls_until_everything_holds() {
    let lab = slow(3, None);
    let es = vec![
        exp("sessions: {on: c, peers: [10.99.1.1 node specific Established]}"),
        exp("config: {on: a, contains: ['rr client;']}"),
        // Two expectations reading c in one round read it once.
        exp("wan: {bgp_sessions: 1}"),
        exp("converge: 5s"),
        exp("loss: {probe: p, max_lost: 0}"),
    ];
    let r = wait_all(&es, &lab, &|| with_probe(100, 100, 0), Duration::from_secs(5), Duration::from_millis(5));
    assert!(r.passed(), "{:?}", r.failures);
    assert_eq!(r.rounds, 3);
    assert_eq!(lab.reads.get(), 3, "c's protocols are read once per round");
    let c = r.converged.unwrap();
    let held: Vec<Option<Duration>> = r.held.iter().map(|(_, d)| *d).collect();
    assert!(held[1].unwrap() < held[0].unwrap(), "config held in the first round, sessions in the third");
    assert!(held[0].unwrap() <= c && c >= Duration::from_millis(10));
    assert_eq!(r.probes["p"].sent, 100);
}

#[test]
fn wait_all_times_out_with_the_last_diff() {
    let lab = slow(usize::MAX, None);
    let es = vec![
        exp("config: {on: a, contains: ['rr client;']}"),
        exp("sessions: {on: c, peers: [10.99.1.1 node specific Established]}"),
        exp("converge: 5s"),
    ];
    let r = wait_all(&es, &lab, &StepOutcome::default, Duration::from_millis(30), Duration::from_millis(5));
    assert!(r.converged.is_none());
    assert!(r.rounds >= 2);
    assert_eq!(r.failures.len(), 2);
    assert_eq!(r.failures[0].expectation, "sessions on c");
    assert_eq!(
        r.failures[0].diff,
        "on c:\n  wrong:\n    10.99.1.1  expected node specific  Established, found node specific  start  Connect"
    );
    assert_eq!(r.failures[1].diff, "did not converge: the step's expectations never all held (budget 5s)");
    assert!(r.held[0].1.is_some() && r.held[1].1.is_none());
}

#[test]
fn wait_all_catches_a_flap_while_settling() {
    let lab = slow(1, Some(1));
    let es = vec![exp("sessions: {on: c, peers: [10.99.1.1 node specific Established]}")];
    let o = WaitOptions {
        timeout: Duration::from_secs(1),
        poll: Duration::from_millis(5),
        settle: Duration::from_millis(10),
        block_size: 26,
        since: None,
        cancel: None,
    };
    let r = wait_all_with(&es, &lab, &|_| StepOutcome::default(), &o);
    assert!(r.converged.is_some());
    assert_eq!(r.failures.len(), 1);
    assert!(r.failures[0].diff.starts_with("held at "), "{}", r.failures[0].diff);
    assert!(
        r.failures[0].diff.contains("then stopped holding within the 10ms settle time:\non c:\n  wrong:"),
        "{}",
        r.failures[0].diff
    );
}

#[test]
fn wait_all_without_expectations_converges_at_once() {
    let lab = sample_lab();
    let r = wait_all(&[], &lab, &StepOutcome::default, Duration::from_secs(1), Duration::from_millis(5));
    assert!(r.passed());
    assert!(r.converged.unwrap() < Duration::from_millis(100));
    assert_eq!(r.rounds, 1);
}

#[test]
fn mismatch_display() {
    let m = Mismatch { expectation: "sessions on b".into(), line: 12, diff: "on b:\n  missing:\n    x".into() };
    assert_eq!(m.to_string(), "sessions on b (line 12)\n    on b:\n      missing:\n        x\n");
}

#[test]
fn failed_commands_fail_the_step_unless_expected() {
    let text = "name: t\ntopology: x\nsteps:\n  - name: s\n    run: |\n      kubectl label node a x=y\n      calicoctl apply -f peer.yaml\n  - name: t\n    run: calicoctl apply -f peer.yaml\n    expect:\n      - fails: remote AS\n";
    let rb = parse(Path::new("t.yaml"), text).unwrap();
    let mut out = StepOutcome::default();
    assert!(unexpected_command_failures(&rb.steps[0], &out).is_none());
    let mut bad = failed_command("Failed to execute command: remote AS number must be set");
    bad.line = 2;
    bad.command = "calicoctl apply -f peer.yaml".into();
    out.commands = vec![Outcome { ok: true, ..bad.clone() }, bad];
    let m = unexpected_command_failures(&rb.steps[0], &out).unwrap();
    assert_eq!(m.line, 7);
    assert_eq!(
        m.diff,
        "line 7: calicoctl apply -f peer.yaml\n  Failed to execute command: remote AS number must be set"
    );
    assert!(unexpected_command_failures(&rb.steps[1], &out).is_none());
}

#[test]
fn yaml_errors_explain_colons_in_commands() {
    let e = err("name: t\ntopology: x\nsteps:\n  - name: s\n    run: calicoctl patch bgpconfiguration default -p '{\"spec\": {\"asNumber\": \"63400\"}}'\n");
    assert!(e.starts_with("labs/t.yaml:5:"), "{e}");
    assert!(
        e.contains("(a command line with `: ` in it goes in a block: `run: |`, the command on the next line)"),
        "{e}"
    );
}

#[test]
fn own_block_only_when_named() {
    let lab = sample_lab();
    let out = StepOutcome::default();
    // b's own block is BIRD's static blackhole; `blocks:all` on b skips it (and finds a's and c's).
    ok("rib: {on: b, prefix: 'block:b', kind: blackhole}", &lab, &out);
    ok("rib: {on: b, prefix: 'blocks:all', kind: unicast}", &lab, &out);
}

/// With the mesh on and a BGPPeer to the same node, BIRD has a Mesh_ and a Node_ protocol for one neighbour
/// (procedure 2); both can be expected, each with its own state.
#[test]
fn sessions_one_address_two_types() {
    let mut lab = sample_lab();
    lab.protocols.insert(
        "c".into(),
        vec![bgp("Node", "10.99.1.1", "up", "Established"), bgp("Mesh", "10.99.1.1", "start", "Idle")],
    );
    let out = StepOutcome::default();
    ok(
        "sessions: {on: c, peers: [10.99.1.1 node specific Established, 10.99.1.1 node-to-node mesh start]}",
        &lab,
        &out,
    );
    // Seeded fault: the mesh duplicate is expected up.
    let d = diff(
        "sessions: {on: c, peers: [10.99.1.1 node specific Established, 10.99.1.1 node-to-node mesh Established]}",
        &lab,
        &out,
    );
    assert!(
        d.contains("wrong:")
            && d.contains("expected node-to-node mesh  Established, found node-to-node mesh  start  Idle"),
        "{d}"
    );
    // An unexpected duplicate is reported.
    let d = diff("sessions: {on: c, peers: [10.99.1.1 node specific Established]}", &lab, &out);
    assert!(d.contains("unexpected:") && d.contains("node-to-node mesh  start  Idle"), "{d}");
}

#[test]
fn a_round_reads_each_observation_once_per_node() {
    let lab = sample_lab();
    let nodes = lab.nodes();
    let es = [
        exp("sessions: {on: c, peers: [10.99.1.1 node specific Established]}"),
        exp("sessions: {on: all, peers: []}"),
        exp("fib: {on: c, contains: ['172.16.1.0/26 via 10.99.0.1 dev tunl0 proto bird onlink']}"),
        exp("wan: {bgp_sessions: 0}"),
        exp("reach: {from: c, to: c}"),
    ];
    let needs = crate::runbook::check::reads(es.iter(), &nodes);
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let mut want: Vec<(crate::runbook::Obs, String)> = vec![(crate::runbook::Obs::Protocols, "c".into())];
    want.extend(names.iter().filter(|n| *n != "c").map(|n| (crate::runbook::Obs::Protocols, n.clone())));
    want.push((crate::runbook::Obs::Fib, "c".into()));
    assert_eq!(needs, want);
    // Prefetched observations are not read again by the checks of the round.
    let view = CachedLab::new(&lab);
    view.prefetch(&needs);
    let before = lab.protocol_reads.get();
    assert_eq!(before, names.len());
    let _ = view.protocols("c");
    assert_eq!(lab.protocol_reads.get(), before);
}

#[test]
fn an_impairment_towards_one_site_is_one_direction_of_one_link() {
    let topo =
        crate::model::topology::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies/hybrid-rr.clab.yml"))
            .unwrap();
    let names = LabNames::from_topology(&topo);
    let wan = |body: &str| -> Result<StepAction, String> {
        let text = format!("name: t\ntopology: x\nsteps:\n  - name: s\n    wan: {body}\n");
        parse_with(Path::new("labs/t.yaml"), &text, &names)
            .map(|rb| rb.steps[0].what.clone())
            .map_err(|e| e.to_string())
    };
    let StepAction::Wan(WanAction::ImpairToward { site, imp }) =
        wan("{toward: site-b, delay: 40ms, jitter: 5ms}").unwrap()
    else {
        panic!()
    };
    assert_eq!((site.as_str(), imp.delay.as_millis(), imp.jitter.as_millis()), ("site-b", 40, 5));
    assert_eq!(crate::wan::iface_toward(&topo, "site-b").unwrap(), "eth2");
    for (body, says) in [
        ("{toward: site-z, delay: 40ms}", "field steps[0].wan.toward: unknown site \"site-z\""),
        ("{toward: site-b}", "give the impairment for that direction"),
        ("{toward: site-b, rate: 1mbit, delay: 1ms}", "give the impairment for that direction"),
        ("{toward: 10.0.2.0/24, delay: 1ms}", "name a site"),
        ("{toward: site-b, delay: 4 fortnights}", "field steps[0].wan.delay"),
    ] {
        let e = wan(body).unwrap_err();
        assert!(e.starts_with("labs/t.yaml:5:") && e.contains(says), "{body}: {e}");
    }
}

/// `rrlab run --topology`: the runbook's names are checked against the topology it runs on, which becomes its lab.
#[test]
fn load_on_another_topology() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let p1 = root.join("labs/p1-partitioned-route-reflectors.yaml");
    let own = crate::runbook::load_on(&p1, None).unwrap();
    assert!(own.topology.ends_with("hybrid-rr.clab.yml"));
    let hybrid = root.join("topologies/hybrid-rr.clab.yml");
    assert_eq!(crate::runbook::load_on(&p1, Some(&hybrid)).unwrap().topology, hybrid);
    // P1 names hybrid-rr's nodes: on two-clusters they do not exist.
    let e = crate::runbook::load_on(&p1, Some(&root.join("topologies/two-clusters.clab.yml"))).unwrap_err().to_string();
    assert!(e.contains("p1-partitioned-route-reflectors.yaml:") && e.contains("hybrid-"), "{e}");
    // A topology that does not load names itself.
    let e = crate::runbook::load_on(&p1, Some(&root.join("topologies/nope.clab.yml"))).unwrap_err().to_string();
    assert!(e.contains("nope.clab.yml"), "{e}");
}
