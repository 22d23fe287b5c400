//! Resources as calicoctl/kubectl print them (`-o yaml|json`) and as JSON merge patches see them.

use serde_json::{json, Map, Value};

use super::resources::{Resource, CALICO_API};

fn meta_json(
    name: &str,
    labels: &std::collections::BTreeMap<String, String>,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    if !labels.is_empty() {
        m.insert("labels".into(), json!(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), json!(annotations));
    }
    Value::Object(m)
}

fn spec_of<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The full object (apiVersion, kind, metadata, spec) as the API serves it.
pub fn to_json(r: &Resource) -> Value {
    match r {
        Resource::Node(n) => {
            let mut spec = Map::new();
            if let Some(b) = &n.bgp {
                spec.insert("bgp".into(), spec_of(b));
            }
            if let Some(v) = &n.ipv4_vxlan_tunnel_addr {
                spec.insert("ipv4VXLANTunnelAddr".into(), json!(v));
            }
            json!({"apiVersion": CALICO_API, "kind": "Node", "metadata": meta_json(&n.metadata.name, &n.metadata.labels, &n.metadata.annotations), "spec": spec})
        }
        Resource::BGPConfiguration(c) => {
            let mut spec = spec_of(&c.spec);
            // Calico serves list-valued service ranges as [{cidr: …}].
            if let Value::Object(m) = &mut spec {
                for k in ["serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs"] {
                    if let Some(Value::Array(a)) = m.get_mut(k) {
                        *a = a.iter().map(|c| json!({"cidr": c})).collect();
                    }
                }
                // The mesh password is a BGPPassword as a BGPPeer's: {secretKeyRef: {name, key}}.
                if let Some(pw) = m.remove("nodeMeshPassword") {
                    m.insert("nodeMeshPassword".into(), json!({"secretKeyRef": pw}));
                }
            }
            json!({"apiVersion": CALICO_API, "kind": "BGPConfiguration", "metadata": meta_json(&c.metadata.name, &c.metadata.labels, &c.metadata.annotations), "spec": spec})
        }
        Resource::BGPPeer(p) => {
            let mut spec = spec_of(&p.spec);
            if let Value::Object(m) = &mut spec {
                if let Some(pw) = m.remove("password") {
                    m.insert("password".into(), json!({"secretKeyRef": pw}));
                }
            }
            json!({"apiVersion": CALICO_API, "kind": "BGPPeer", "metadata": meta_json(&p.metadata.name, &p.metadata.labels, &p.metadata.annotations), "spec": spec})
        }
        Resource::IPPool(p) => {
            json!({"apiVersion": CALICO_API, "kind": "IPPool", "metadata": meta_json(&p.metadata.name, &p.metadata.labels, &p.metadata.annotations), "spec": spec_of(&p.spec)})
        }
        Resource::FelixConfiguration(f) => {
            json!({"apiVersion": CALICO_API, "kind": "FelixConfiguration", "metadata": meta_json(&f.metadata.name, &f.metadata.labels, &f.metadata.annotations), "spec": spec_of(&f.spec)})
        }
        Resource::KubeNode(k) => {
            let mut spec = Map::new();
            if let Some(c) = &k.pod_cidr {
                spec.insert("podCIDR".into(), json!(c));
            }
            if k.unschedulable {
                spec.insert("unschedulable".into(), json!(true));
            }
            json!({"apiVersion": "v1", "kind": "Node", "metadata": meta_json(&k.metadata.name, &k.metadata.labels, &k.metadata.annotations), "spec": spec})
        }
        Resource::BlockAffinity(b) => json!({
            "apiVersion": "crd.projectcalico.org/v1", "kind": "BlockAffinity", "metadata": {"name": b.name},
            "spec": {"node": b.node, "cidr": b.cidr.to_string(), "state": b.state, "deleted": b.deleted.to_string()}
        }),
        Resource::Secret(s) => {
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta_json(&s.metadata.name, &s.metadata.labels, &s.metadata.annotations)})
        }
        Resource::Service(s) => {
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta_json(&s.metadata.name, &s.metadata.labels, &s.metadata.annotations),
            "spec": {"type": s.service_type, "clusterIP": s.cluster_ip, "externalIPs": s.external_ips, "externalTrafficPolicy": s.external_traffic_policy}})
        }
        Resource::Endpoints(e) => {
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta_json(&e.metadata.name, &e.metadata.labels, &e.metadata.annotations),
            "subsets": [{"addresses": e.addresses.iter().map(|(ip, n)| json!({"ip": ip, "nodeName": n})).collect::<Vec<_>>()}]})
        }
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.parse::<f64>().is_ok()
        || matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~" | "True" | "False" | "Yes" | "No"
        )
        || s.starts_with([
            ' ', '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`',
        ])
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with([' ', ':'])
        || s.contains('\n')
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if needs_quotes(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        _ => String::new(),
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty()) || matches!(v, Value::Object(o) if !o.is_empty())
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, val) in o {
                let key = if needs_quotes(k) { serde_json::to_string(k).unwrap_or_default() } else { k.clone() };
                if is_block(val) {
                    out.push_str(&format!("{pad}{key}:\n"));
                    let child_indent = if val.is_array() { indent } else { indent + 2 };
                    emit(val, child_indent, out);
                } else {
                    out.push_str(&format!("{pad}{key}: {}\n", scalar(val)));
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                if is_block(item) {
                    let mut inner = String::new();
                    emit(item, indent + 2, &mut inner);
                    let trimmed = inner.trim_start().to_string();
                    out.push_str(&format!("{pad}- {trimmed}"));
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

/// Block-style YAML for a JSON value (what `-o yaml` prints).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::yaml::parse_documents;

    #[test]
    fn merge_patch_rfc7386() {
        let mut t =
            json!({"spec": {"asNumber": 64512, "nodeToNodeMeshEnabled": true}, "metadata": {"name": "default"}});
        merge_patch(&mut t, &json!({"spec": {"nodeToNodeMeshEnabled": false, "asNumber": null}}));
        assert_eq!(t, json!({"spec": {"nodeToNodeMeshEnabled": false}, "metadata": {"name": "default"}}));
    }

    #[test]
    fn yaml_round_trips_through_the_reader() {
        let v = json!({"apiVersion": "projectcalico.org/v3", "kind": "BGPPeer",
            "metadata": {"name": "p", "labels": {"a": "true", "b": "63400"}},
            "spec": {"nodeSelector": "cloud-type != 'public'", "filters": ["x", "y"], "list": [{"cidr": "10.0.0.0/8"}], "empty": []}});
        let text = to_yaml(&v);
        let back = parse_documents(&text).unwrap();
        assert_eq!(back[0].root.to_json(), v, "{text}");
    }

    /// What `calicoctl get bgpconfiguration -o yaml` prints applies again: the mesh password keeps its
    /// `secretKeyRef` wrapper (it was written bare, which the decoder rightly rejects).
    #[test]
    fn bgp_configuration_with_a_mesh_password_round_trips() {
        let src = "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  nodeMeshPassword:\n    secretKeyRef:\n      name: bgp-secrets\n      key: mesh\n";
        let rs = crate::model::resources::parse_resources("in.yaml", src).unwrap();
        let text = to_yaml(&to_json(&rs[0].resource));
        assert!(text.contains("secretKeyRef"), "{text}");
        let again = crate::model::resources::parse_resources("out.yaml", &text).unwrap();
        assert_eq!(again[0].resource, rs[0].resource, "{text}");
    }
}
