use std::collections::BTreeMap;
use std::time::Duration;

use pretty_assertions::assert_eq;

use super::*;
use crate::runbook::tests::sample_lab;
use crate::runbook::{check, parse, Expectation, ProbeStats, StepOutcome};

fn probes() -> BTreeMap<String, ProbeStats> {
    [(
        "a-to-b".to_string(),
        ProbeStats { sent: 312, received: 312, longest_outage: Duration::ZERO, ..Default::default() },
    )]
    .into()
}

fn passed() -> StepReport {
    StepReport {
        runbook: "P1".into(),
        step: "step 3 apply BGPPeers".into(),
        passed: true,
        converge: Some(Duration::from_millis(1420)),
        probes: probes(),
        failures: vec![],
        dump: None,
        duration: Duration::from_millis(3210),
        routes_settled: None,
        wan: None,
    }
}

/// A failed step with a real mismatch from the sample lab (b lacks c's session).
fn failed() -> StepReport {
    let text = "name: t\ntopology: x\nsteps:\n  - name: s\n    expect:\n      - sessions: {on: b, peers: [a node specific Established, c node specific Established]}\n";
    let rb = parse(std::path::Path::new("labs/t.yaml"), text).unwrap();
    let e: &Expectation = &rb.steps[0].expect[0];
    let lab = sample_lab();
    let m = check(e, &lab, &StepOutcome::default()).unwrap_err();
    StepReport {
        runbook: "P1".into(),
        step: "step 5 turn the mesh off".into(),
        passed: false,
        converge: None,
        probes: [(
            "a-to-b".to_string(),
            ProbeStats { sent: 500, received: 488, longest_outage: Duration::from_millis(120), ..Default::default() },
        )]
        .into(),
        failures: vec![m],
        dump: Some(dump(&lab)),
        duration: Duration::from_secs(30),
        routes_settled: None,
        wan: None,
    }
}

#[test]
fn a_step_line_carries_the_node_stamped_settle_time_and_the_wan_traffic() {
    let before = crate::wan::WanCounters { bgp_packets: 10, bgp_bytes: 1_000, ipip_packets: 5, ipip_bytes: 500 };
    let after = crate::wan::WanCounters { bgp_packets: 250, bgp_bytes: 31_000, ipip_packets: 5, ipip_bytes: 900 };
    let w = WanStep::between(&before, &after, 4);
    assert_eq!(w, WanStep { sessions: 4, bgp_packets: 240, bgp_bytes: 30_000, ipip_packets: 0, ipip_bytes: 400 });
    // Counters reset (a restarted WAN node) never read as negative traffic.
    assert_eq!(WanStep::between(&after, &before, 4).bgp_bytes, 0);
    let r = StepReport { routes_settled: Some(Duration::from_millis(870)), wan: Some(w), ..passed() };
    assert_eq!(
        step_line(&r),
        format!(
            "PASS  {:<44}  converged 1.42s  routes settled 0.87s (on the nodes)  loss a-to-b 0/312 (0 ms)  \
             WAN 4 BGP sessions, 240 BGP pkts/30000 B  [3.21s]",
            "P1 step 3 apply BGPPeers"
        )
    );
}

#[test]
fn one_line_per_step() {
    assert_eq!(
        step_line(&passed()),
        format!("PASS  {:<44}  converged 1.42s  loss a-to-b 0/312 (0 ms)  [3.21s]", "P1 step 3 apply BGPPeers")
    );
    assert_eq!(
        step_line(&failed()),
        format!(
            "FAIL  {:<44}  not converged  loss a-to-b 12/500 (120 ms)  1 expectation failed  [30.00s]",
            "P1 step 5 turn the mesh off"
        )
    );
    let bare = StepReport {
        runbook: "P2".into(),
        step: "wait".into(),
        passed: true,
        duration: Duration::from_secs(5),
        ..Default::default()
    };
    assert_eq!(step_line(&bare), format!("PASS  {:<44}  [5.00s]", "P2 wait"));
    assert_eq!(summary_line(&[passed(), failed()]), "Summary [   33.21s] 2 steps: 1 passed, 1 failed");
}

#[test]
fn failure_text_has_the_diff_the_probes_and_the_dump() {
    let t = failure_text(&failed());
    assert!(
        t.starts_with(
            "P1 step 5 turn the mesh off: FAILED

  ✗ sessions on b (line 6)
      on b:
        missing:
          10.99.1.3 (c)  node specific  Established
        unexpected:
          10.99.0.9  node-to-node mesh  start  Active Socket: No route to host

  probes during the step:
    a-to-b 12/500 lost (2.4%), longest outage 120ms

---------------------------------------------------------------- lab state
=== a (cluster lab, site lan0, 10.99.0.1) ===
"
        ),
        "{t}"
    );
}

#[test]
fn dump_shows_every_node() {
    let mut lab = sample_lab();
    lab.bird_errors.insert("b".into(), "/tmp/rrobs/b-noas.cfg:77:1 Remote AS number must be set".into());
    let d = dump(&lab);
    for want in [
        "=== a (cluster lab, site lan0, 10.99.0.1) ===\nlabels: rr=true\npods: a-p1 172.16.1.2\n--- calicoctl node status\nCalico process is running.\n",
        "| 10.99.0.9    | node-to-node mesh | start | 13:29:47 | Active Socket: No route to     |\n|              |                   |       |          | host                           |",
        "--- BIRD protocols\nstatic1",
        "Node_10_99_0_1           BGP      master   up     13:29:49   Established",
        "172.16.3.0/26 via 10.99.0.1 on veth-ba [Node_10_99_0_1] * next_hop 10.99.1.3 as_path [64513] originator_id 10.99.1.3 cluster_list [1.0.0.1]",
        "--- kernel routes\n(unavailable: node a: no routes here)",
        "172.16.3.0/26 via 10.99.1.3 dev tunl0 proto bird onlink\n",
        "cali40all-hosts-net (hash:net): 10.99.0.1, 10.99.0.2, 10.99.1.3, 192.168.100.0/24",
        "[2:96] -t filter -A cali-INPUT -p ipencap -m comment --comment cali:_wjq-Yrma8Ly1Svo -m comment --comment Drop IPIP packets from non-Calico hosts -j DROP",
        "--- bird.cfg\n",
        "  rr cluster id 1.0.0.1;\n",
        "--- BIRD rejected its new config\n/tmp/rrobs/b-noas.cfg:77:1 Remote AS number must be set\n",
        "=== c (cluster lab, site lan1, 10.99.1.3) ===",
        "=== WAN: BGP 40 packets / 4000 bytes, IPIP 10 packets / 1000 bytes\n",
    ] {
        assert!(d.contains(want), "missing {want:?} in:\n{d}");
    }
}

// ------------------------------------------------------------------------------------------ JUnit

/// A small well-formedness check: one root element, tags nested and closed, attributes quoted and unique,
/// `<` and `&` only as markup or entity references, only characters XML 1.0 allows.
fn well_formed(x: &str) -> Result<(), String> {
    let body = match x.strip_prefix("<?xml") {
        Some(rest) => &rest[rest.find("?>").ok_or("unterminated prolog")? + 2..],
        None => x,
    };
    let valid_char = |c: char| matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}');
    let check_text = |t: &str| -> Result<(), String> {
        if let Some(c) = t.chars().find(|c| !valid_char(*c)) {
            return Err(format!("invalid character {c:?}"));
        }
        if t.contains('<') {
            return Err(format!("'<' in text {t:?}"));
        }
        let mut rest = t;
        while let Some(i) = rest.find('&') {
            let end = rest[i..].find(';').ok_or_else(|| format!("unterminated entity in {t:?}"))?;
            let ent = &rest[i + 1..i + end];
            let ok = matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos")
                || ent.strip_prefix("#x").is_some_and(|h| u32::from_str_radix(h, 16).is_ok())
                || ent.strip_prefix('#').is_some_and(|d| d.parse::<u32>().is_ok());
            if !ok {
                return Err(format!("bad entity &{ent};"));
            }
            rest = &rest[i + end + 1..];
        }
        Ok(())
    };
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(i) = rest.find('<') {
        let text = &rest[..i];
        if stack.is_empty() && !text.trim().is_empty() {
            return Err(format!("text outside the root: {text:?}"));
        }
        check_text(text)?;
        let end = rest[i..].find('>').ok_or("unterminated tag")? + i;
        let tag = &rest[i + 1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name.trim() => continue,
                other => return Err(format!("</{name}> closes {other:?}")),
            }
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = &tag[..name_end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':') {
            return Err(format!("bad tag name {name:?}"));
        }
        let mut attrs = &tag[name_end..];
        let mut seen = Vec::new();
        loop {
            attrs = attrs.trim_start();
            if attrs.is_empty() {
                break;
            }
            let eq = attrs.find("=\"").ok_or_else(|| format!("bad attribute in <{name}>: {attrs:?}"))?;
            let an = attrs[..eq].trim();
            if seen.contains(&an) {
                return Err(format!("duplicate attribute {an}"));
            }
            seen.push(an);
            let vend = attrs[eq + 2..].find('"').ok_or("unterminated attribute")? + eq + 2;
            check_text(&attrs[eq + 2..vend])?;
            attrs = &attrs[vend + 1..];
        }
        if stack.is_empty() {
            roots += 1;
        }
        if !self_closing {
            stack.push(name.to_string());
        }
    }
    if !rest.trim().is_empty() {
        return Err(format!("trailing text {rest:?}"));
    }
    if !stack.is_empty() {
        return Err(format!("unclosed {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(())
}

#[test]
fn the_well_formedness_check_catches_errors() {
    assert!(well_formed("<a><b x=\"1\"/></a>").is_ok());
    assert!(well_formed("<a><b></a>").is_err());
    assert!(well_formed("<a>x & y</a>").is_err());
    assert!(well_formed("<a x=\"1\" x=\"2\"/>").is_err());
    assert!(well_formed("<a>\u{1b}</a>").is_err());
    assert!(well_formed("<a/><b/>").is_err());
}

#[test]
fn junit_fixture() {
    let mut p = passed();
    p.probes.clear();
    let mut f = StepReport {
        runbook: "P3 <two clusters> & \"eBGP\"".into(),
        step: "no asNumber".into(),
        passed: false,
        failures: vec![crate::runbook::Mismatch {
            expectation: "fails with \"remote as number must be set\"".into(),
            line: 42,
            diff: "found none: every command succeeded\u{1b}[0m".into(),
        }],
        duration: Duration::from_millis(1500),
        ..Default::default()
    };
    f.converge = None;
    let x = junit_xml("rrlab e2e", &[p, f]);
    assert_eq!(
        x,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="rrlab e2e" tests="2" failures="1" errors="0" time="4.710">
  <testsuite name="P1" tests="1" failures="0" errors="0" skipped="0" time="3.210">
    <testcase name="step 3 apply BGPPeers" classname="rrlab e2e.P1" time="3.210">
      <system-out>PASS  P1 step 3 apply BGPPeers                      converged 1.42s  [3.21s]</system-out>
    </testcase>
  </testsuite>
  <testsuite name="P3 &lt;two clusters&gt; &amp; &quot;eBGP&quot;" tests="1" failures="1" errors="0" skipped="0" time="1.500">
    <testcase name="no asNumber" classname="rrlab e2e.P3 &lt;two clusters&gt; &amp; &quot;eBGP&quot;" time="1.500">
      <failure message="fails with &quot;remote as number must be set&quot; (line 42)" type="expectation">P3 &lt;two clusters&gt; &amp; &quot;eBGP&quot; no asNumber: FAILED

  ✗ fails with &quot;remote as number must be set&quot; (line 42)
      found none: every command succeeded[0m
</failure>
      <system-out>FAIL  P3 &lt;two clusters&gt; &amp; &quot;eBGP&quot; no asNumber        not converged  1 expectation failed  [1.50s]</system-out>
    </testcase>
  </testsuite>
</testsuites>
"#
    );
    well_formed(&x).unwrap();
}

#[test]
fn junit_with_a_full_dump_is_well_formed() {
    let steps = vec![passed(), failed(), passed()];
    let x = junit_xml("nightly", &steps);
    well_formed(&x).unwrap_or_else(|e| panic!("{e}\n{x}"));
    assert!(x.contains("<testsuites name=\"nightly\" tests=\"3\" failures=\"1\""));
    assert_eq!(x.matches("<testsuite ").count(), 1, "steps of one runbook share a testsuite");
    assert_eq!(x.matches("<testcase ").count(), 3);
    assert!(x.contains("<failure message=\"sessions on b (line 6)\" type=\"expectation\">"));
    assert!(x.contains("=== WAN: BGP 40 packets"));
}

#[test]
fn escaping() {
    assert_eq!(xml_escape("a<b>&\"c'\u{7}\td"), "a&lt;b&gt;&amp;&quot;c&apos;\td");
}

#[test]
fn report_from_a_wait_result() {
    let rb = parse(
        std::path::Path::new("t.yaml"),
        "name: P1\ntopology: x\nsteps:\n  - name: a\n  - name: b\n  - name: apply BGPPeers\n",
    )
    .unwrap();
    let w = crate::runbook::WaitResult {
        converged: Some(Duration::from_millis(1420)),
        probes: probes(),
        ..Default::default()
    };
    let r = StepReport::new(&rb, 2, &w, vec![], Duration::from_millis(3210));
    assert_eq!(step_line(&r), step_line(&passed()));
    let extra = crate::runbook::Mismatch { expectation: "every command succeeds".into(), line: 3, diff: "x".into() };
    let r = StepReport::new(&rb, 2, &w, vec![extra], Duration::from_millis(3210));
    assert!(!r.passed);
}
