use std::path::{Path, PathBuf};

use super::*;
use crate::model::topology::generator::{generate, GenSpec};
use crate::model::topology::{self, Topology};

fn topo_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("topologies").join(name)
}

fn load(name: &str) -> Topology {
    topology::load(&topo_path(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// A generated topology, parsed in memory as `topology::load` would read its files.
fn generated(spec: &GenSpec) -> Topology {
    let g = generate(spec).unwrap();
    let files = g.files.clone();
    let (clab, text) = &files[0];
    topology::parse(&Path::new("/generated").join(clab), text, &|p: &Path| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        files.iter().find(|(f, _)| f == name).map(|(_, t)| t.clone()).ok_or_else(|| format!("no {name}"))
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The nodes drawn as nodes: all but the k8s-kind ones (the clusters are groups).
fn drawn(t: &Topology) -> Vec<String> {
    t.nodes.values().filter(|n| n.kind != NodeKind::K8sKind).map(|n| n.name.clone()).collect()
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

fn label(t: &mut Topology, node: &str, k: &str, v: &str) {
    let cn = t.clusters.iter_mut().find_map(|c| c.nodes.iter_mut().find(|n| n.name == node)).unwrap();
    cn.labels.insert(k.to_string(), v.to_string());
}

/// Mermaid statements other than structure: node definitions (id, the rest) and edges (a, op, text, b).
struct MermaidParts {
    defs: Vec<(String, String)>,
    edges: Vec<(String, String, String, String)>,
    subgraphs: Vec<String>,
}

fn mermaid_parts(m: &str) -> MermaidParts {
    let mut p = MermaidParts { defs: Vec::new(), edges: Vec::new(), subgraphs: Vec::new() };
    for line in m.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with("%%") || l == "graph LR" || l == "end" {
            continue;
        }
        if let Some(rest) = l.strip_prefix("subgraph ") {
            p.subgraphs.push(rest.split('[').next().unwrap().to_string());
            continue;
        }
        if l.starts_with("classDef ") || l.starts_with("linkStyle ") {
            continue;
        }
        if let Some((a, rest)) = l.split_once(' ') {
            if let Some(op) = ["---", "==="].into_iter().find(|op| rest.starts_with(&format!("{op}|"))) {
                let rest = &rest[op.len() + 1..];
                let (text, b) = rest.rsplit_once("| ").unwrap();
                p.edges.push((a.to_string(), op.to_string(), text.to_string(), b.to_string()));
                continue;
            }
        }
        let id: String = l.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        p.defs.push((id.clone(), l[id.len()..].to_string()));
    }
    p
}

fn valid_mermaid_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Lines of a DOT text that define node `name`.
fn dot_defs<'a>(d: &'a str, name: &str) -> Vec<&'a str> {
    let start = format!("{} [", dq(name));
    d.lines().filter(|l| l.trim_start().starts_with(&start)).collect()
}

/// Braces outside quoted strings balance and never go negative.
fn assert_dot_balanced(d: &str) {
    let (mut depth, mut in_str, mut esc) = (0i64, false, false);
    for c in d.chars() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                assert!(depth >= 0, "a `}}` closes nothing");
            }
            _ => {}
        }
    }
    assert!(!in_str, "an unterminated string");
    assert_eq!(depth, 0, "unbalanced braces");
}

/// Tags nest and close, `&` only starts an entity: well-formed XML for what these functions write.
fn assert_well_formed(s: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        check_entities(&rest[..i]);
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("an unclosed tag");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') || tag.starts_with('?') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name.trim()), "closing tag </{name}>");
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap().to_string();
            if name == "style" {
                // CSS may hold `>`: skip to its end.
                let close = rest.find("</style>").expect("unclosed <style>");
                assert!(!rest[..close].contains('<'));
                rest = &rest[close + "</style>".len()..];
                continue;
            }
            stack.push(name);
        }
        check_entities(tag);
    }
    check_entities(rest);
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

fn check_entities(s: &str) {
    for (i, _) in s.match_indices('&') {
        let r = &s[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"].iter().any(|e| r.starts_with(e)),
            "a raw & in {:?}",
            &r[..r.len().min(20)]
        );
    }
}

fn assert_self_contained(s: &str) {
    for bad in ["<script", "href", "src=", "url(", "@import", "<link", "<iframe", "<object", "<image"] {
        assert!(!s.to_lowercase().contains(bad), "contains {bad}");
    }
    assert_eq!(count(s, "http"), count(s, "xmlns=\"http://www.w3.org/2000/svg\""), "a reference elsewhere");
    assert!(!s.contains("onload") && !s.contains("onclick"));
}

#[test]
fn every_node_appears_once_in_each_format() {
    for file in ["hybrid-rr.clab.yml", "two-clusters.clab.yml"] {
        let t = load(file);
        let (m, d, svg, html) = (mermaid(&t), dot(&t), topology_svg(&t), html_page(&t, "t"));
        let parts = mermaid_parts(&m);
        let mut ids = Ids::default();
        for n in drawn(&t) {
            let id = ids.get("n", &n);
            assert_eq!(parts.defs.iter().filter(|(i, _)| *i == id).count(), 1, "{file}: mermaid {n}");
            assert_eq!(dot_defs(&d, &n).len(), 1, "{file}: dot {n}");
            let attr = format!("data-node=\"{n}\"");
            assert_eq!(count(&svg, &attr), 1, "{file}: svg {n}");
            assert_eq!(count(&html, &attr), 1, "{file}: html {n}");
            let kind = t.nodes[&n].kind;
            assert_eq!(count(&html, &format!("><td>{n}</td><td>{kind}</td>")), 1, "{file}: html table {n}");
        }
        // Only those: the clusters are groups.
        assert_eq!(parts.defs.len(), drawn(&t).len(), "{file}: {:?}", parts.defs);
        assert_eq!(count(&svg, "class=\"node\""), drawn(&t).len());
        assert_eq!(parts.edges.len(), t.links.len());
        assert_eq!(count(&d, " -- "), t.links.len());
        assert_eq!(count(&svg, "class=\"link"), t.links.len(), "{file}: every link drawn");
        for c in &t.clusters {
            assert!(m.contains(&format!("cluster {}", c.name)), "{file}: {}", c.name);
            assert!(d.contains(&format!("/{}\" {{", c.name)), "{file}: {}", c.name);
            assert!(svg.contains(&format!("data-cluster=\"{}\"", c.name)));
        }
    }
}

#[test]
fn hybrid_rr_shows_what_the_topology_says() {
    let t = load("hybrid-rr.clab.yml");
    let svg = topology_svg(&t);
    // No RR is marked in hybrid-rr: its runbooks choose them.
    assert_eq!(count(&svg, "data-role=\"rr\""), 0);
    assert!(svg.contains("No node is marked a route reflector"));
    assert_eq!(count(&svg, "data-role=\"control-plane\""), 1);
    assert_eq!(count(&svg, "data-role=\"worker\""), 7);
    assert_eq!(count(&svg, "data-role=\"wan\""), 1);
    assert_eq!(count(&svg, "data-role=\"site\""), 2);
    assert!(
        svg.contains("data-node=\"hybrid-worker4\" data-site=\"site-b\" data-cluster=\"hybrid\" data-role=\"worker\"")
    );
    assert!(svg.contains("data-node=\"wan\" data-site=\"\" data-cluster=\"\" data-role=\"wan\""));
    for s in ["site-a", "site-b"] {
        assert!(svg.contains(&format!(">{s}</text>")), "{s}");
    }
    assert!(svg.contains(">10.0.1.0/24 · cluster hybrid</text>"));
    assert!(svg.contains(">4 nodes: 0 RRs, 1 control plane, 3 workers</text>"));
    assert!(svg.contains(">10.0.2.3 · worker</text>"));
    assert!(svg.contains(">cloud-type=public</text>"));
    assert!(svg.contains(">WAN · 10.0.1.1, 10.0.2.1</text>"));
    // Sites left and right of the WAN, bridges at its height.
    let x_of = |name: &str| {
        let at = svg.find(&format!("data-node=\"{name}\"")).unwrap();
        let r = &svg[at..];
        let key = if name == "wan" { "cx=\"" } else { "x=\"" };
        let v = &r[r.find(key).unwrap() + key.len()..];
        v[..v.find('"').unwrap()].parse::<f64>().unwrap()
    };
    assert!(x_of("site-a") < x_of("wan") && x_of("wan") < x_of("site-b"));
    assert!(x_of("hybrid-worker3") < x_of("wan") && x_of("wan") < x_of("hybrid-worker7"));

    let m = mermaid(&t);
    assert!(m.starts_with("%% rrlab graph: hybrid-rr ("));
    assert!(m.contains("\ngraph LR\n"));
    assert!(m.contains("  subgraph s_site_a[\"site site-a · 10.0.1.0/24 · cluster hybrid\"]\n"));
    assert!(m.contains("n_hybrid_control_plane(\"hybrid-control-plane<br/>10.0.1.2 · control-plane\"):::cp"), "{m}");
    assert!(m.contains("n_hybrid_worker5[\"hybrid-worker5<br/>10.0.2.3 · worker<br/>cloud-type=public\"]:::worker"));
    assert!(m.contains("n_wan((\"wan<br/>WAN · 10.0.1.1, 10.0.2.1\")):::wan"));
    assert!(m.contains("  n_hybrid_worker ---|eth1 — sa-w| n_site_a\n"));
    let d = dot(&t);
    assert!(d.starts_with("graph \"hybrid-rr\" {\n"));
    assert!(d.contains("  subgraph \"cluster_site-a\" {\n"));
    assert!(d.contains("    subgraph \"cluster_site-b/hybrid\" {\n"));
    assert!(d.contains("  \"hybrid-worker\" -- \"site-a\" [taillabel=\"eth1\", headlabel=\"sa-w\", class=\"link\"];\n"));
    let html = html_page(&t, "Topology hybrid-rr");
    assert!(html.contains(
        "<tr><td>hybrid-worker4</td><td>ext-container</td><td>hybrid</td><td>site-b</td><td>10.0.2.2/24</td><td>worker</td><td>cloud-type=public</td></tr>"
    ));
    assert!(html.contains(
        "<tr class=\"topo-wan\"><td>wan</td><td>linux</td><td></td><td></td><td>eth1 10.0.1.1/24, eth2 10.0.2.1/24</td><td>WAN</td><td></td></tr>"
    ));
    assert!(html.contains("<td>hybrid</td><td>172.16.0.0/16</td><td>10.96.0.0/16</td><td>64512</td><td>Always</td>"));
}

#[test]
fn route_reflectors_are_distinct_in_every_format() {
    let mut t = load("hybrid-rr.clab.yml");
    label(&mut t, "hybrid-worker", "rr-candidate", "true");
    label(&mut t, "hybrid-worker2", "route-reflector", "true");
    label(&mut t, "hybrid-worker4", "rr-partition", "B");
    label(&mut t, "hybrid-worker5", "rr-candidate", "false");
    let rrs = ["hybrid-worker", "hybrid-worker2", "hybrid-worker4"];
    assert_eq!(node_role(&t, "hybrid-worker4"), NodeRole::RouteReflector);
    assert_eq!(node_role(&t, "hybrid-worker5"), NodeRole::Worker);
    assert_eq!(node_role(&t, "hybrid-control-plane"), NodeRole::ControlPlane);
    assert_eq!(node_role(&t, "wan"), NodeRole::Wan);
    assert_eq!(node_role(&t, "site-a"), NodeRole::Site);
    assert_eq!(node_role(&t, "hybrid"), NodeRole::Cluster);

    let m = mermaid(&t);
    let parts = mermaid_parts(&m);
    let mut ids = Ids::default();
    for n in drawn(&t) {
        let id = ids.get("n", &n);
        let (_, rest) = parts.defs.iter().find(|(i, _)| *i == id).unwrap();
        assert_eq!(rest.starts_with("{{") && rest.ends_with("}}:::rr"), rrs.contains(&n.as_str()), "{n}: {rest}");
    }
    assert!(m.contains("classDef rr fill:#fde68a,stroke:#b45309,stroke-width:3px"));

    let d = dot(&t);
    for n in drawn(&t) {
        let line = dot_defs(&d, &n)[0];
        assert_eq!(line.contains("shape=hexagon"), rrs.contains(&n.as_str()), "{line}");
        assert_eq!(line.contains("class=\"node rr\""), rrs.contains(&n.as_str()), "{line}");
    }

    let svg = topology_svg(&t);
    assert_eq!(count(&svg, "data-role=\"rr\""), 3);
    for n in rrs {
        let at = svg.find(&format!("data-node=\"{n}\"")).unwrap();
        let el = &svg[at..at + svg[at..].find("</g>").unwrap()];
        assert!(el.contains("<polygon") && el.contains("fill=\"#fde68a\""), "{el}");
        assert!(el.contains("worker · RR"), "{el}");
    }
    assert!(svg.contains(">4 nodes: 2 RRs, 1 control plane, 1 worker</text>"));
    assert!(svg.contains(">4 nodes: 1 RR, 0 control planes, 3 workers</text>"));
    assert!(svg.contains("RR: a node labelled rr-candidate=true, route-reflector=true, routeReflector or"));

    let html = html_page(&t, "x");
    assert_eq!(count(&html, "<tr class=\"topo-rr\">"), 3);
    assert!(html.contains("<td>worker · RR (rr-partition=B)</td>"));
}

#[test]
fn wan_links_are_marked() {
    let t = load("hybrid-rr.clab.yml");
    let svg = topology_svg(&t);
    assert_eq!(count(&svg, "<g class=\"link wan\""), 2);
    assert_eq!(count(&svg, "<g class=\"link\""), 8);
    assert!(svg.contains("<g class=\"link wan\" data-a=\"wan:eth1\" data-b=\"site-a:sa-wan\">"));
    assert!(svg.contains(">10.0.2.1/24</text>"), "the WAN's address on the link");
    let d = dot(&t);
    assert_eq!(count(&d, "class=\"link wan\""), 2);
    assert!(d.contains(
        "  \"wan\" -- \"site-b\" [taillabel=\"eth2\", headlabel=\"sb-wan\", class=\"link wan\", color=\"#b91c1c\", penwidth=3];"
    ));
    let parts = mermaid_parts(&mermaid(&t));
    let wan: Vec<_> = parts.edges.iter().filter(|e| e.1 == "===").collect();
    assert_eq!(wan.len(), 2);
    assert!(wan.iter().all(|e| e.0 == "n_wan"));
    assert!(mermaid(&t).contains("  linkStyle 8,9 stroke:#b91c1c,stroke-width:3px\n"));
}

#[test]
fn declared_impairments_show_on_their_wan_link() {
    let mut t = load("hybrid-rr.clab.yml");
    t.impairments.insert("eth2".to_string(), "delay: 20ms, jitter: 2ms".parse().unwrap());
    let svg = topology_svg(&t);
    let at = svg.find("data-a=\"wan:eth2\"").unwrap();
    let el = &svg[at..at + svg[at..].find("</g>").unwrap()];
    assert!(el.contains("out of eth2: delay: 20ms, jitter: 2ms"), "{el}");
    assert_well_formed(&svg);
}

#[test]
fn text_is_escaped_in_every_format() {
    let mut t = load("hybrid-rr.clab.yml");
    label(&mut t, "hybrid-worker3", "note", "a<b&c\"d'e");
    // Interface names may hold these too (the loader forbids only `/`, `:` and spaces).
    t.links[3].a.iface = "e<&\"|]1".to_string();
    let svg = topology_svg(&t);
    assert!(svg.contains("note=a&lt;b&amp;c&quot;d&apos;e"));
    assert!(svg.contains(">e&lt;&amp;&quot;|]1</text>"));
    assert!(svg.contains("data-a=\"hybrid-worker3:e&lt;&amp;&quot;|]1\""));
    assert!(!svg.contains("a<b") && !svg.contains("e<&"));
    assert_well_formed(&svg);

    let html = html_page(&t, "<Topology> & \"friends\"");
    assert!(html.contains("<title>&lt;Topology&gt; &amp; &quot;friends&quot;</title>"));
    assert!(html.contains("<h1>&lt;Topology&gt; &amp; &quot;friends&quot;</h1>"));
    assert!(html.contains("<td>note=a&lt;b&amp;c&quot;d&apos;e</td>"));
    assert!(!html.contains("a<b"));
    assert_well_formed(&html);

    let d = dot(&t);
    assert!(d.contains("note=a<b&c\\\"d'e"), "{d}");
    assert!(d.contains("taillabel=\"e<&\\\"|]1\""));
    assert_dot_balanced(&d);

    let m = mermaid(&t);
    assert!(m.contains("note=a#60;b#38;c#34;d'e"), "{m}");
    assert!(m.contains("---|e#60;#38;#34;#124;#93;1 — sa-w3| n_site_a"), "{m}");
    let parts = mermaid_parts(&m);
    assert_eq!(parts.edges.len(), t.links.len());
    assert!(parts
        .edges
        .iter()
        .all(|(a, _, text, b)| valid_mermaid_id(a) && valid_mermaid_id(b) && !text.contains(['|', '"', '<'])));
}

#[test]
fn two_hundred_nodes_stay_small_and_counted() {
    let t = generated(&GenSpec::new("scale200", 200, 2, 2));
    let svg = topology_svg(&t);
    let html = html_page(&t, "scale200");
    eprintln!("scale200: svg {} bytes, html {} bytes", svg.len(), html.len());
    assert!(svg.len() < 300_000, "svg of {} bytes", svg.len());
    assert!(html.len() < 600_000, "html of {} bytes", html.len());
    for n in drawn(&t) {
        assert_eq!(count(&svg, &format!("data-node=\"{n}\"")), 1, "{n}");
    }
    // Compact: markers with counts, no per-node labels or stubs.
    assert!(svg.contains(">scale200-a</text>") && svg.contains(">scale200-b</text>"));
    assert!(svg.contains(">100 nodes: 2 RRs, 1 control plane, 97 workers</text>"), "site a");
    assert!(svg.contains(">100 nodes: 2 RRs, 0 control planes, 98 workers</text>"), "site b");
    assert!(svg.contains(">10.1.0.0/24 · cluster scale200</text>"));
    assert!(!svg.contains(">scale200-worker5</text>"));
    assert_eq!(count(&svg, "data-role=\"rr\""), 4);
    assert_eq!(count(&svg, "<g class=\"link wan\""), 2);
    assert_eq!(count(&svg, "<g class=\"link\""), 0);
    assert!(svg.contains("RR (compact)"));
    assert_well_formed(&svg);
    assert_well_formed(&html);
    // The text formats list everything.
    let d = dot(&t);
    assert_dot_balanced(&d);
    assert_eq!(count(&d, " -- "), 202);
    let parts = mermaid_parts(&mermaid(&t));
    assert_eq!(parts.defs.len(), 203);
    assert_eq!(parts.edges.len(), 202);
    // The table lists every node.
    assert_eq!(count(&html, "<tr><td>scale200-worker"), 195);
    assert_eq!(count(&html, "<tr class=\"topo-rr\"><td>scale200-worker"), 4);
}

#[test]
fn many_sites_sit_around_the_wan() {
    for (nodes, sites, big) in [(12, 3, false), (200, 5, false), (250, 3, true)] {
        let t = generated(&GenSpec::new(&format!("ring{nodes}"), nodes, sites, 1));
        let svg = topology_svg(&t);
        assert!(svg.len() < 300_000, "{nodes}/{sites}: {} bytes", svg.len());
        assert_well_formed(&svg);
        assert_eq!(count(&svg, "<g class=\"link wan\""), sites);
        for s in t.sites().keys() {
            assert!(svg.contains(&format!(">{s}</text>")), "{s}");
        }
        for n in drawn(&t) {
            assert_eq!(count(&svg, &format!("data-node=\"{n}\"")), 1, "{n}");
        }
        assert_eq!(svg.contains("RR (compact)"), big, "{nodes}/{sites}");
        // The WAN between the rows: sites above it and below it.
        let wan_y = {
            let at = svg.find("data-node=\"wan\"").unwrap();
            let r = &svg[at..];
            let v = &r[r.find("cy=\"").unwrap() + 4..];
            v[..v.find('"').unwrap()].parse::<f64>().unwrap()
        };
        let bridge_y = |b: &str| {
            let at = svg.find(&format!("data-node=\"{b}\"")).unwrap();
            let r = &svg[at..];
            let v = &r[r.find(" y=\"").unwrap() + 4..];
            v[..v.find('"').unwrap()].parse::<f64>().unwrap()
        };
        let ys: Vec<f64> = t.sites().keys().map(|b| bridge_y(b)).collect();
        assert!(ys.iter().any(|y| *y < wan_y) && ys.iter().any(|y| *y > wan_y), "{ys:?} around {wan_y}");
    }
}

#[test]
fn dot_braces_balance_and_ids_are_quoted() {
    let mut odd = load("hybrid-rr.clab.yml");
    label(&mut odd, "hybrid-worker", "x", "{}}{\\\"");
    for t in [load("hybrid-rr.clab.yml"), load("two-clusters.clab.yml"), odd, generated(&GenSpec::new("g", 60, 3, 2))] {
        let d = dot(&t);
        assert_dot_balanced(&d);
        assert!(d.ends_with("}\n"));
        for line in d.lines().map(str::trim) {
            if line.contains(" -- ") {
                assert!(line.starts_with('"'), "{line}");
                let (_, b) = line.split_once(" -- ").unwrap();
                assert!(b.starts_with('"'), "{line}");
            }
            if let Some(rest) = line.strip_prefix("subgraph ") {
                assert!(rest.starts_with("\"cluster_"), "{line}");
            }
        }
        for b in t.sites().keys() {
            assert!(d.contains(&format!("subgraph \"cluster_{b}\" {{")));
        }
    }
    assert!(dot(&load("two-clusters.clab.yml")).contains("subgraph \"cluster_site-1/cluster1\" {"));
}

#[test]
fn mermaid_ids_are_valid() {
    for t in [load("hybrid-rr.clab.yml"), load("two-clusters.clab.yml"), generated(&GenSpec::new("g", 60, 3, 2))] {
        let parts = mermaid_parts(&mermaid(&t));
        for (id, rest) in &parts.defs {
            assert!(valid_mermaid_id(id), "{id}{rest}");
            assert!(rest.starts_with(['[', '(', '{']), "{id}{rest}");
        }
        for (a, _, _, b) in &parts.edges {
            assert!(valid_mermaid_id(a) && valid_mermaid_id(b), "{a} {b}");
            assert!(parts.defs.iter().any(|(i, _)| i == a) && parts.defs.iter().any(|(i, _)| i == b));
        }
        for s in &parts.subgraphs {
            assert!(valid_mermaid_id(s), "{s}");
        }
        let mut all: Vec<&String> = parts.defs.iter().map(|(i, _)| i).chain(&parts.subgraphs).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "ids are distinct");
    }
    let mut ids = Ids::default();
    let got: Vec<String> = ["a-b", "a_b", "a.b", "a-b", "end"].iter().map(|n| ids.get("n", n)).collect();
    assert_eq!(got, ["n_a_b", "n_a_b_2", "n_a_b_3", "n_a_b", "n_end"]);
    assert_eq!(ids.get("s", "a-b"), "s_a_b");
}

#[test]
fn svg_and_html_are_self_contained() {
    let t = load("hybrid-rr.clab.yml");
    let svg = topology_svg(&t);
    eprintln!("hybrid-rr: svg {} bytes, html {} bytes", svg.len(), html_page(&t, "x").len());
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"topo-svg\" viewBox=\"0 0 "));
    assert!(svg.ends_with("</svg>\n"));
    assert_self_contained(&svg);
    assert_well_formed(&svg);
    // Styles: scoped to the svg, so that embedding it restyles nothing else.
    let style = &svg[svg.find("<style>").unwrap() + 7..svg.find("</style>").unwrap()];
    for rule in style.split('}').filter(|r| !r.is_empty()) {
        assert!(rule.starts_with("svg.topo-svg "), "{rule}");
    }
    assert!(!svg.contains(" id=\""), "no ids to clash with the embedding page");
    let html = html_page(&t, "Topology hybrid-rr");
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(html.ends_with("</html>\n"));
    assert_self_contained(&html);
    assert_well_formed(&html);
    assert_eq!(count(&html, "<svg "), 1);
    for class in html.match_indices("class=\"").map(|(i, _)| &html[i + 7..]) {
        let c = &class[..class.find('"').unwrap()];
        for word in c.split(' ') {
            assert!(
                word.starts_with("topo-") || ["node", "link", "wan"].contains(&word),
                "class {word} is not prefixed topo-"
            );
        }
    }
}

#[test]
fn rr_labels_rule() {
    let l = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(rr_label(&l(&[("rr-candidate", "true")])).as_deref(), Some("rr-candidate=true"));
    assert_eq!(rr_label(&l(&[("rr-candidate", "false")])), None);
    assert_eq!(rr_label(&l(&[("routeReflector", "")])).as_deref(), Some("routeReflector"));
    assert_eq!(rr_label(&l(&[("routeReflector", "false")])), None);
    assert_eq!(rr_label(&l(&[("rr-partition", "A")])).as_deref(), Some("rr-partition=A"));
    assert_eq!(rr_label(&l(&[("site-role", "a-rr"), ("site", "a")])), None);
}
