//! Writing the plan: the containerlab topology, the kind config and the Calico state in the style of
//! `rrlab gen` (topologies/generated/), and the notes.

use std::fmt::Write as _;

use serde_json::{json, Value as J};

use crate::model::output::to_yaml;
use crate::model::topology::generator::WAN_IMAGE;
use crate::model::topology::{Role, LABEL_CALICO_AS, LABEL_IPIP_MODE, LABEL_NODE_INTERFACE};

use super::plan::{Plan, NODE_IFACE};
use super::Imported;

/// The k8s-kind node's label with the real node names, in the kind config's order.
pub(super) const LABEL_NODE_NAMES: &str = "rrlab.io/node-names";
/// The k8s-kind node's label naming the Calico state the twin applies at `up`.
pub(super) const LABEL_CALICO_STATE: &str = "rrlab.io/calico-state";

/// `key: value` as one YAML line (quoted where YAML would read the value otherwise).
fn kv(key: &str, value: &str) -> String {
    let mut m = serde_json::Map::new();
    m.insert(key.to_string(), J::String(value.to_string()));
    to_yaml(&J::Object(m))
}

pub(super) fn emit(plan: &Plan, sources: &[String]) -> Imported {
    let name = &plan.name;
    let files = vec![
        (format!("{name}.clab.yml"), clab_text(plan, sources)),
        (format!("{name}.kind.yaml"), kind_text(plan)),
        (format!("{name}.calico.yaml"), calico_text(plan, sources)),
        (format!("{name}.import.md"), plan.notes.markdown(name, sources)),
    ];
    Imported { name: name.clone(), files, notes: plan.notes.clone() }
}

fn command(sources: &[String]) -> String {
    format!("rrlab import --from {}", sources.join(" --from "))
}

fn clab_text(plan: &Plan, sources: &[String]) -> String {
    let name = &plan.name;
    let mut t = String::with_capacity(256 * plan.nodes.len() + 2048);
    let _ = writeln!(t, "# Imported by `{} --name {name}`; re-import rather than edit.", command(sources));
    let _ = writeln!(
        t,
        "# {name}: {} node(s) under their real names and addresses, over {} site(s); AS {}, IPIP {}, {} BGPPeer(s)",
        plan.nodes.len(),
        plan.sites.len(),
        plan.as_number,
        plan.ipip_mode,
        plan.peers
    );
    for s in &plan.sites {
        match &s.wan {
            Some((ip, iface, _)) => {
                let _ = writeln!(t, "# site {} ({}, WAN {ip} on {iface}): {} node(s)", s.name, s.cidr, s.nodes.len());
            }
            None => {
                let _ = writeln!(t, "# site {} ({}): {} node(s)", s.name, s.cidr, s.nodes.len());
            }
        }
    }
    let _ = writeln!(
        t,
        "# cluster {name}: pods {}, services {}; Calico state in {name}.calico.yaml, notes in {name}.import.md",
        plan.pod_subnet, plan.service_subnet
    );
    t.push_str(
        "# Site bridges are host Linux bridges on the kind backend; rrlab creates them (topologies/README.md).\n",
    );
    let _ = writeln!(t, "name: {name}");
    t.push_str("\ntopology:\n  nodes:\n");
    t.push_str("    # The kind cluster; its name is this node's name, its node containers have the real node names.\n");
    let _ = writeln!(t, "    {name}:\n      kind: k8s-kind\n      startup-config: {name}.kind.yaml\n      labels:");
    let _ = writeln!(t, "        {LABEL_CALICO_AS}: \"{}\"", plan.as_number);
    let _ = writeln!(t, "        {LABEL_IPIP_MODE}: {}", plan.ipip_mode);
    let _ = writeln!(t, "        {LABEL_NODE_INTERFACE}: {NODE_IFACE}");
    let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
    let _ = writeln!(t, "        {LABEL_NODE_NAMES}: {}", J::String(names.join(",")));
    let _ = writeln!(t, "        {LABEL_CALICO_STATE}: {name}.calico.yaml");
    for (si, s) in plan.sites.iter().enumerate() {
        let _ = writeln!(t, "\n    # Site {} ({}).", s.name, s.cidr);
        let _ = writeln!(t, "    {}:\n      kind: bridge", s.name);
        for &ni in &s.nodes {
            let n = &plan.nodes[ni];
            let _ = writeln!(t, "    {}:", n.name);
            t.push_str("      kind: ext-container\n      exec:\n");
            let _ = writeln!(t, "        - ip addr add {}/{} dev {NODE_IFACE}", n.ip, s.cidr.prefix_len());
            if let Some((wan_ip, _, _)) = &s.wan {
                for (oi, o) in plan.sites.iter().enumerate() {
                    if oi != si {
                        let _ = writeln!(t, "        - ip route add {} via {wan_ip} dev {NODE_IFACE}", o.cidr);
                    }
                }
            }
        }
    }
    if plan.sites.len() >= 2 {
        t.push_str(
            "\n    # The WAN between the sites (rrlab partitions it, adds loss and delay, and counts BGP across it).\n",
        );
        let _ = writeln!(t, "    {}:\n      kind: linux\n      image: {WAN_IMAGE}\n      exec:", plan.wan_name);
        for s in &plan.sites {
            if let Some((ip, iface, _)) = &s.wan {
                let _ = writeln!(t, "        - ip addr add {ip}/{} dev {iface}", s.cidr.prefix_len());
            }
        }
        t.push_str("        - sysctl -w net.ipv4.ip_forward=1\n");
    }
    t.push_str(
        "\n  # Bridge-side interface names live in the host's namespace: s<site>n<node>, s<site>w for the WAN.\n",
    );
    t.push_str("  links:\n");
    for s in &plan.sites {
        for &ni in &s.nodes {
            let n = &plan.nodes[ni];
            let _ = writeln!(t, "    - endpoints: [\"{}:{NODE_IFACE}\", \"{}:{}\"]", n.name, s.name, n.port);
        }
    }
    for s in &plan.sites {
        if let Some((_, iface, port)) = &s.wan {
            let _ = writeln!(t, "    - endpoints: [\"{}:{iface}\", \"{}:{port}\"]", plan.wan_name, s.name);
        }
    }
    t
}

fn kind_text(plan: &Plan) -> String {
    let name = &plan.name;
    let mut t = String::with_capacity(128 * plan.nodes.len() + 1024);
    let _ = writeln!(t, "# kind cluster config of cluster {name} in {name}.clab.yml (imported by `rrlab import`).");
    let _ = writeln!(
        t,
        "# The twin names the node containers as {LABEL_NODE_NAMES} lists them: the real node names, in this order."
    );
    t.push_str("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n");
    t.push_str("  # Calico is the only CNI: kind must not install kindnet.\n  disableDefaultCNI: true\n");
    let _ = writeln!(t, "  # = the Calico IPPool CIDR (CALICO_IPV4POOL_CIDR).\n  podSubnet: {}", plan.pod_subnet);
    let _ = writeln!(t, "  serviceSubnet: {}", plan.service_subnet);
    t.push_str("nodes:\n");
    for n in &plan.nodes {
        let role = if n.role == Role::ControlPlane { "control-plane" } else { "worker" };
        let _ = writeln!(t, "  - role: {role}{:pad$}# {} {}", "", n.name, n.ip, pad = 15 - role.len());
        if !n.kind_labels.is_empty() {
            t.push_str("    labels:\n");
            for (k, v) in &n.kind_labels {
                t.push_str("      ");
                t.push_str(&kv(k, v));
            }
        }
    }
    t
}

fn calico_text(plan: &Plan, sources: &[String]) -> String {
    let name = &plan.name;
    let mut t = String::with_capacity(512 * plan.docs.len() + 1024);
    let _ = writeln!(
        t,
        "# Calico state of cluster {name}, imported by `{}`; the twin applies it at `rrlab up`.",
        command(sources)
    );
    t.push_str(
        "# Server-side metadata is stripped; Secrets hold generated values, never the cluster's (see the notes).\n",
    );
    for d in &plan.docs {
        t.push_str("---\n");
        t.push_str(&to_yaml(d));
    }
    for s in &plan.secrets {
        let data: serde_json::Map<String, J> =
            s.values.iter().map(|(k, v)| (k.clone(), J::String(v.clone()))).collect();
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": s.name, "namespace": s.namespace},
            "type": "Opaque",
            "stringData": data,
        });
        t.push_str("---\n# Generated by rrlab import: not the cluster's value.\n");
        t.push_str(&to_yaml(&doc));
    }
    t
}
