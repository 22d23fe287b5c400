//! `rrlab graph` as a user runs it: DOT and Mermaid on stdout, an HTML page into a file, errors naming the file.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `rrlab` run from the repository's root, as the README shows it.
fn rrlab() -> Command {
    let mut c = Command::cargo_bin("rrlab").unwrap();
    c.current_dir(root());
    c
}

const HYBRID_NODES: [&str; 11] = [
    "hybrid-control-plane",
    "hybrid-worker",
    "hybrid-worker2",
    "hybrid-worker3",
    "hybrid-worker4",
    "hybrid-worker5",
    "hybrid-worker6",
    "hybrid-worker7",
    "site-a",
    "site-b",
    "wan",
];

#[test]
fn dot_goes_to_stdout() {
    let out = rrlab().args(["graph", "topologies/hybrid-rr.clab.yml", "--format", "dot"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("graph \"hybrid-rr\" {\n"), "{dot}");
    assert!(dot.ends_with("}\n"));
    assert!(dot.contains("subgraph \"cluster_site-a\" {") && dot.contains("subgraph \"cluster_site-b\" {"));
    for n in HYBRID_NODES {
        assert_eq!(dot.lines().filter(|l| l.trim_start().starts_with(&format!("\"{n}\" ["))).count(), 1, "{n}");
    }
    assert_eq!(dot.matches(" -- ").count(), 10);
    assert_eq!(dot.matches("class=\"link wan\"").count(), 2);
    // Graphviz reads it (Debian's graphviz: .ci/run installs it).
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .arg("-o/dev/null")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("Graphviz's `dot` (apt-get install graphviz; .ci/run installs it)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), dot.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "Graphviz rejected the DOT:\n{dot}");
}

#[test]
fn mermaid_is_the_default() {
    let out = rrlab().args(["graph", "topologies/hybrid-rr.clab.yml"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = String::from_utf8(out.stdout).unwrap();
    assert!(m.contains("\ngraph LR\n"));
    assert!(m.contains("subgraph s_site_a["));
    assert_eq!(m.matches(" ===|").count(), 2, "{m}");
}

#[test]
fn html_goes_into_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hybrid-rr.html");
    let out = rrlab()
        .args(["graph", "topologies/hybrid-rr.clab.yml", "--format", "html", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "nothing on stdout with --out");
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>\n"));
    assert!(html.contains("<title>Topology hybrid-rr</title>"));
    assert!(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"topo-svg\""));
    for n in HYBRID_NODES {
        assert_eq!(html.matches(&format!("data-node=\"{n}\"")).count(), 1, "{n}");
        assert!(html.contains(&format!("<td>{n}</td>")), "{n} in the table");
    }
    for bad in ["<script", "href=", "src=", "<link"] {
        assert!(!html.contains(bad), "{bad}");
    }
    // The page is well-formed XML too (xmllint: Debian's libxml2-utils, installed by .ci/run).
    let x =
        Command::new("xmllint").arg("--noout").arg(&file).output().expect("xmllint (apt-get install libxml2-utils)");
    assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
}

#[test]
fn a_missing_file_is_named() {
    let out = rrlab().args(["graph", "topologies/no-such.clab.yml"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("topologies/no-such.clab.yml: cannot read"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_bad_topology_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.clab.yml");
    std::fs::write(&file, "name: bad\ntopology:\n  nodes:\n    r1:\n      kind: cisco\n").unwrap();
    let out = rrlab().args(["graph", "--format", "html"]).arg(&file).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:5:", file.display())), "{err}");
    assert!(err.contains("unknown kind \"cisco\""), "{err}");
}

#[test]
fn an_unknown_format_is_refused() {
    let out = rrlab().args(["graph", "topologies/hybrid-rr.clab.yml", "--format", "png"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mermaid") && err.contains("dot") && err.contains("html"), "{err}");
}
