//! The HTML report of a run: one self-contained file (inline CSS and SVG, one small inline script, nothing
//! fetched), per runbook: the topology, the steps with their verdicts and measurements, a timeline per probe
//! across all steps (and per step, at the probe's 10 ms resolution), the peering graph after each step (every
//! session coloured by state, WAN-crossing ones marked; aggregated by site and role for big labs), the RIB/FIB
//! difference from the previous step per node, the commands typed, and failures with their dumps folded.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::snapshot::{edges, line_diff, Edge, Snapshot};
use super::{failure_text, StepReport, Verdict};
use crate::runner::probe::ProbeTimeline;
use crate::runner::RunResult;

/// A peering graph draws every node and session up to this many nodes; beyond, sites and roles aggregated.
pub const DRAW_EVERY_NODE_UP_TO: usize = 60;
/// Per node and table, at most this many changed routes are listed (the counts are always complete).
const DIFF_LINES_PER_NODE: usize = 40;
/// At most this many nodes' route changes are listed per step (the table of counts has every node).
const DIFF_NODES_LISTED: usize = 40;

/// One run in the report: it ran (steps), or it could not (the runbook or the lab failed).
#[derive(Debug, Clone)]
pub enum HtmlRun {
    Ran(Box<RunResult>),
    Failed { name: String, file: String, on: String, error: String },
}

/// Text for the page: markup escaped, characters XML forbids dropped (one escaper for every report).
pub use super::xml_escape as esc;

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
main{padding:12px 24px;max-width:1400px}
section.run{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:16px 0;padding:8px 18px}
h2{font-size:18px;margin:10px 0}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #dde1e7;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.v-pass{color:#1b7a2f;font-weight:600}.v-fail{color:#b3261e;font-weight:600}.v-xfail{color:#6a4fb3;font-weight:600}
details{margin:4px 0}summary{cursor:pointer}
details.step{border:1px solid #dde1e7;border-radius:4px;padding:4px 10px;margin:6px 0}
details.step[data-verdict=FAIL],details.step[data-verdict=XPASS]{border-color:#b3261e;background:#fff6f5}
details.step[data-verdict=XFAIL]{border-color:#6a4fb3}
pre{background:#f3f4f6;padding:6px 8px;overflow:auto;max-height:420px;margin:4px 0;font-size:12px}
.cmd{font-family:ui-monospace,Menlo,monospace;font-size:12px}
.add{color:#1b7a2f}.del{color:#b3261e}
.failure{border-left:4px solid #b3261e;padding-left:8px;margin:6px 0}
.xfailure{border-left:4px solid #6a4fb3;padding-left:8px;margin:6px 0}
.muted{color:#6b7280}.legend span{margin-right:14px}
svg text{font-family:system-ui,sans-serif}
"#;

/// A tiny script: counts what the browser actually laid out (non-empty boxes), for tests and readers.
const SCRIPT: &str = r#"
(function(){function n(sel){var c=0;document.querySelectorAll(sel).forEach(function(e){var r=e.getBoundingClientRect();if(r.width>0||r.height>0)c++;});return c;}
document.querySelectorAll('details.step').forEach(function(d){d.open=true;});
var b=document.body;b.dataset.renderedPeers=n('svg.peering .pnode');b.dataset.renderedSessions=n('svg.peering .session');
b.dataset.renderedLoss=n('svg.timeline .loss');b.dataset.renderedSteps=n('details.step');b.dataset.renderedFailures=n('.failure');b.dataset.renderedXfail=n('.xfailure');
b.dataset.renderedTopologyNodes=n('.topology .node');b.dataset.rendered='yes';})();
"#;

/// The report of several runs (e.g. the whole e2e), one page.
pub fn report(title: &str, runs: &[HtmlRun]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(title)
    );
    let _ = writeln!(h, "<header><h1>{}</h1></header><main>", esc(title));
    h.push_str(&summary_table(runs));
    for (i, r) in runs.iter().enumerate() {
        match r {
            HtmlRun::Ran(r) => h.push_str(&run_section(i, r)),
            HtmlRun::Failed { name, file, on, error } => {
                let _ = writeln!(
                    h,
                    "<section class=\"run\" id=\"run-{i}\" data-verdict=\"ERROR\"><h2>{} <span class=\"muted\">({})</span> <span class=\"v-fail\">ERROR</span></h2><p class=\"muted\">{}</p><div class=\"failure\"><pre>{}</pre></div></section>",
                    esc(name),
                    esc(on),
                    esc(file),
                    esc(error)
                );
            }
        }
    }
    let _ = writeln!(h, "</main><script>{SCRIPT}</script></body></html>");
    h
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "v-pass",
        Verdict::IntendedFail => "v-xfail",
        _ => "v-fail",
    }
}

fn secs(d: std::time::Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn summary_table(runs: &[HtmlRun]) -> String {
    let mut h = String::from(
        "<table class=\"summary\"><tr><th>runbook</th><th>on</th><th>steps</th><th>passed</th><th>seeded faults failed as intended</th><th>failed</th><th>lab up</th><th>steps took</th></tr>\n",
    );
    for (i, r) in runs.iter().enumerate() {
        match r {
            HtmlRun::Ran(r) => {
                let count = |v: Verdict| r.steps.iter().filter(|s| s.verdict() == v).count();
                let bad = r.steps.iter().filter(|s| !s.verdict().ok()).count();
                let total: std::time::Duration = r.steps.iter().map(|s| s.duration).sum();
                let _ = writeln!(
                    h,
                    "<tr><td><a href=\"#run-{i}\">{}</a></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num {}\">{bad}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    esc(&r.runbook),
                    esc(&r.on),
                    r.steps.len(),
                    count(Verdict::Pass),
                    count(Verdict::IntendedFail),
                    if bad > 0 { "v-fail" } else { "" },
                    secs(r.up),
                    secs(total)
                );
            }
            HtmlRun::Failed { name, on, .. } => {
                let _ = writeln!(
                    h,
                    "<tr><td><a href=\"#run-{i}\">{}</a></td><td>{}</td><td colspan=\"6\" class=\"v-fail\">did not run</td></tr>",
                    esc(name),
                    esc(on)
                );
            }
        }
    }
    h.push_str("</table>\n");
    h
}

fn run_section(i: usize, r: &RunResult) -> String {
    let mut h = String::new();
    let ok = r.steps.iter().all(|s| s.verdict().ok()) && !matches!(r.teardown, Some(Err(_)));
    let _ = writeln!(
        h,
        "<section class=\"run\" id=\"run-{i}\" data-runbook=\"{}\" data-verdict=\"{}\"><h2>{} <span class=\"muted\">({})</span> <span class=\"{}\">{}</span></h2>",
        esc(&r.runbook),
        if ok { "PASS" } else { "FAIL" },
        esc(&r.runbook),
        esc(&r.on),
        if ok { "v-pass" } else { "v-fail" },
        if ok { "PASS" } else { "FAIL" }
    );
    let _ = writeln!(
        h,
        "<p class=\"muted\">{} · lab {} · {} nodes · up in {}</p>",
        esc(&r.file.display().to_string()),
        esc(&r.lab),
        r.nodes.len(),
        secs(r.up)
    );
    if let Some(Err(e)) = &r.teardown {
        let _ = writeln!(h, "<div class=\"failure\">teardown failed: {}</div>", esc(e));
    }
    let _ = writeln!(
        h,
        "<h3>Topology</h3><div class=\"topology\">{}</div>",
        super::topology_view::topology_svg(&r.topology)
    );
    h.push_str(&steps_table(r));
    if !r.timelines.is_empty() {
        h.push_str("<h3>Probes over the whole run</h3>\n");
        let (t0, t1) = run_span(r);
        for (name, t) in &r.timelines {
            h.push_str(&timeline_svg(name, t, t0, t1, &step_marks(r), 1100));
        }
    }
    h.push_str("<h3>Steps</h3>\n");
    let mut previous: Option<&Snapshot> = None;
    for (n, s) in r.steps.iter().enumerate() {
        h.push_str(&step_details(r, n, s, previous));
        if let Some(sn) = &s.snapshot {
            previous = Some(sn);
        }
    }
    h.push_str("</section>\n");
    h
}

/// The run's span on the wall clock (ms): first step's start to the last step's end.
fn run_span(r: &RunResult) -> (u64, u64) {
    let t0 = r.steps.first().map(|s| s.started_ms).unwrap_or(0);
    let t1 = r.steps.last().map(|s| s.started_ms + s.duration.as_millis() as u64).unwrap_or(t0);
    (t0, t1.max(t0 + 1))
}

/// (step number, start ms, end ms) of every step.
fn step_marks(r: &RunResult) -> Vec<(usize, u64, u64)> {
    r.steps
        .iter()
        .enumerate()
        .map(|(i, s)| (i + 1, s.started_ms, s.started_ms + s.duration.as_millis() as u64))
        .collect()
}

fn steps_table(r: &RunResult) -> String {
    let mut h = String::from(
        "<table class=\"steps\"><tr><th>#</th><th>step</th><th>verdict</th><th>converged</th><th>routes settled (on the nodes)</th><th>probes: lost/sent (longest outage)</th><th>WAN: BGP sessions, BGP pkts/bytes</th><th>took</th></tr>\n",
    );
    for (i, s) in r.steps.iter().enumerate() {
        let v = s.verdict();
        let probes: Vec<String> = s
            .probes
            .iter()
            .map(|(n, p)| {
                let mut t = format!("{n}: {}/{} ({} ms)", p.lost(), p.sent, p.longest_outage.as_millis());
                if p.duplicates > 0 || p.reordered > 0 {
                    t.push_str(&format!(", {} dup, {} reordered", p.duplicates, p.reordered));
                }
                esc(&t)
            })
            .collect();
        let wan = s
            .wan
            .as_ref()
            .map(|w| format!("{}, {}/{}", w.sessions, w.bgp_packets, w.bgp_bytes))
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(
            h,
            "<tr class=\"steprow\" data-step=\"{}\" data-verdict=\"{}\"><td class=\"num\">{}</td><td><a href=\"#{}\">{}</a></td><td class=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{wan}</td><td class=\"num\">{}</td></tr>",
            i + 1,
            v.tag(),
            i + 1,
            step_anchor(r, i),
            esc(step_title(s)),
            verdict_class(v),
            v.tag(),
            s.converge.map(secs).unwrap_or_else(|| "–".into()),
            s.routes_settled.map(secs).unwrap_or_else(|| "–".into()),
            probes.join("<br>"),
            secs(s.duration)
        );
    }
    h.push_str("</table>\n");
    h
}

fn step_anchor(r: &RunResult, i: usize) -> String {
    let slug: String = r.runbook.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    format!("{slug}-{}-step-{}", r.on.replace([',', ' '], ""), i + 1)
}

/// `step 3 apply the BGPPeers` → `apply the BGPPeers`.
fn step_title(s: &StepReport) -> &str {
    s.step.split_once(' ').and_then(|(_, rest)| rest.split_once(' ')).map(|(_, name)| name).unwrap_or(&s.step)
}

fn step_details(r: &RunResult, i: usize, s: &StepReport, previous: Option<&Snapshot>) -> String {
    let v = s.verdict();
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<details class=\"step\" id=\"{}\" data-step=\"{}\" data-verdict=\"{}\"{}><summary><b>{}</b> <span class=\"{}\">{}</span> <span class=\"muted\">{}</span></summary>",
        step_anchor(r, i),
        i + 1,
        v.tag(),
        if v.ok() { "" } else { " open" },
        esc(&s.step),
        verdict_class(v),
        v.tag(),
        esc(&super::step_measurements(s))
    );
    if !s.commands.is_empty() {
        h.push_str("<h4>Commands typed</h4>\n");
        for c in &s.commands {
            let _ = writeln!(
                h,
                "<div class=\"cmd\"><b>$ {}</b> <span class=\"{}\">{}</span></div>",
                esc(&c.command),
                if c.ok { "v-pass" } else { "v-fail" },
                if c.ok { "ok" } else { "failed" }
            );
            let out = format!("{}{}", c.stdout, c.stderr);
            if !out.trim().is_empty() {
                let _ = writeln!(h, "<pre>{}</pre>", esc(out.trim_end()));
            }
        }
    }
    if !s.not_checked.is_empty() {
        h.push_str("<h4>Not checked (rrlab check, live cluster)</h4>\n");
        for m in &s.not_checked {
            let _ =
                writeln!(h, "<div class=\"muted\">– {} (line {}): {}</div>", esc(&m.expectation), m.line, esc(&m.diff));
        }
    }
    // The step's own timeline: its span only, so 10 ms of loss is visible.
    let (t0, t1) = (s.started_ms, s.started_ms + (s.duration.as_millis() as u64).max(1));
    if !r.timelines.is_empty() && s.started_ms > 0 {
        h.push_str("<h4>Probes during the step</h4>\n");
        for (name, t) in &r.timelines {
            h.push_str(&timeline_svg(name, t, t0, t1, &[], 1100));
        }
    }
    match v {
        Verdict::Pass => {}
        Verdict::IntendedFail => {
            let _ = writeln!(
                h,
                "<div class=\"xfailure\">seeded fault failed as intended (must contain {:?})<details><summary>the failure</summary><pre>{}</pre></details></div>",
                esc(s.intended.as_deref().unwrap_or_default()),
                esc(&failure_only(s))
            );
        }
        _ => {
            let why = s.problem().unwrap_or_default();
            let _ = writeln!(h, "<div class=\"failure\"><b>{}</b>", esc(&why));
            for m in &s.failures {
                let _ =
                    writeln!(h, "<div>✗ {} (line {})</div><pre>{}</pre>", esc(&m.expectation), m.line, esc(&m.diff));
            }
            if s.dump.is_some() {
                let _ = writeln!(
                    h,
                    "<details class=\"dump\"><summary>lab state when it failed</summary><pre>{}</pre></details>",
                    esc(&failure_text(s))
                );
            }
            h.push_str("</div>\n");
        }
    }
    if let Some(sn) = &s.snapshot {
        h.push_str("<h4>Peering after the step</h4>\n");
        h.push_str(&peering_svg(sn));
        h.push_str(&route_changes(sn, previous));
    }
    h.push_str("</details>\n");
    h
}

/// The failure without the dump (the intended failure of a seeded fault).
fn failure_only(s: &StepReport) -> String {
    let t = failure_text(s);
    match t.find("\n---------------------------------------------------------------- lab state") {
        Some(i) => t[..i].to_string(),
        None => t,
    }
}

/// A probe's timeline over `[t0, t1]` (ms): lost packets as red bars (each run of lost packets one bar, at
/// least one pixel), duplicates and reordered packets as ticks, step boundaries as lines.
pub fn timeline_svg(
    name: &str,
    t: &ProbeTimeline,
    t0: u64,
    t1: u64,
    steps: &[(usize, u64, u64)],
    width: u32,
) -> String {
    let (left, w, hgt) = (150.0, f64::from(width) - 160.0, 46.0);
    let span = (t1.saturating_sub(t0)).max(1) as f64;
    let x = |ms: u64| left + (ms.saturating_sub(t0) as f64).min(span) / span * w;
    let mut lost = 0u64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"timeline\" data-probe=\"{}\" width=\"{width}\" height=\"{hgt}\" viewBox=\"0 0 {width} {hgt}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(name)
    );
    let _ = write!(s, "<text x=\"4\" y=\"20\" font-size=\"12\">{}</text>", esc(name));
    let _ =
        write!(s, "<rect x=\"{left}\" y=\"8\" width=\"{w:.1}\" height=\"18\" fill=\"#e8f5e9\" stroke=\"#c8d3c9\"/>");
    for (n, a, _) in steps {
        let xa = x(*a);
        let _ = write!(
            s,
            "<line class=\"stepmark\" x1=\"{xa:.1}\" y1=\"4\" x2=\"{xa:.1}\" y2=\"30\" stroke=\"#555\" stroke-width=\"1\"/><text x=\"{:.1}\" y=\"42\" font-size=\"10\" fill=\"#555\">{n}</text>",
            xa + 2.0
        );
    }
    let period_ms = (t.period.as_micros() as f64 / 1000.0).max(0.001);
    // The packet scheduled at or after `ms`.
    let seq_at = |ms: u64| (ms.saturating_sub(t.start_ms) * 1000).div_ceil(t.period.as_micros().max(1) as u64);
    for (run_first, run_count) in &t.lost {
        // Only the part of the run inside the window.
        let first = (*run_first).max(seq_at(t0));
        let end = (run_first + run_count).min(seq_at(t1));
        if end <= first {
            continue;
        }
        let count = &(end - first);
        let (a, b) = (t.at_ms(first), t.at_ms(end));
        lost += count;
        let (xa, xb) = (x(a), x(b));
        let _ = write!(
            s,
            "<rect class=\"loss\" data-from-ms=\"{}\" data-ms=\"{:.0}\" data-packets=\"{count}\" x=\"{xa:.2}\" y=\"8\" width=\"{:.2}\" height=\"18\" fill=\"{LOSS_COLOUR}\"><title>{count} packets lost ({:.0} ms) from +{} ms</title></rect>",
            a.saturating_sub(t0),
            *count as f64 * period_ms,
            (xb - xa).max(1.0),
            *count as f64 * period_ms,
            a.saturating_sub(t0)
        );
    }
    for (class, seqs, colour, y) in
        [("dup", &t.duplicates, "#1565c0", 28.0), ("reorder", &t.reordered, "#ef6c00", 28.0)]
    {
        for q in seqs.iter().take(2000) {
            let a = t.at_ms(*q);
            if a < t0 || a > t1 {
                continue;
            }
            let _ = write!(
                s,
                "<rect class=\"tick {class}\" x=\"{:.2}\" y=\"{y}\" width=\"1\" height=\"5\" fill=\"{colour}\"/>",
                x(a)
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{:.0}\" y=\"42\" font-size=\"10\" text-anchor=\"end\" fill=\"#333\">{lost} lost over {:.1} s</text></svg>",
        left + w,
        span / 1000.0
    );
    s.push('\n');
    s
}

const OK_COLOUR: &str = "#2e7d32";
const DOWN_COLOUR: &str = "#c62828";
/// Lost packets on a timeline (its own colour: the browser check counts its pixels).
pub const LOSS_COLOUR: &str = "#e53935";

/// The peering graph after a step: every node on a circle grouped by site (route reflectors as squares),
/// every session a line, green when Established at both ends, red otherwise, dashed when it crosses the WAN;
/// external peers outside the circle. Above [`DRAW_EVERY_NODE_UP_TO`] nodes: one circle per site and role,
/// with the session counts between them.
pub fn peering_svg(sn: &Snapshot) -> String {
    let es = edges(sn);
    if sn.nodes.len() > DRAW_EVERY_NODE_UP_TO {
        return peering_aggregate(sn, &es);
    }
    let mut nodes: Vec<_> = sn.nodes.iter().collect();
    nodes.sort_by(|a, b| (&a.site, &a.name).cmp(&(&b.site, &b.name)));
    let (w, hgt) = (760.0f64, 560.0f64);
    let (cx, cy, rad) = (w / 2.0, hgt / 2.0, 200.0);
    let pos: BTreeMap<&str, (f64, f64)> = on_circle(nodes.iter().map(|nd| nd.name.as_str()), (cx, cy), rad);
    let externals: Vec<&str> = {
        let mut v: Vec<&str> = es.iter().filter(|e| e.external).map(|e| e.b.as_str()).collect();
        v.sort();
        v.dedup();
        v
    };
    let ext_pos: BTreeMap<&str, (f64, f64)> =
        externals.iter().enumerate().map(|(i, a)| (*a, (w - 90.0, 30.0 + 24.0 * i as f64))).collect();
    let mut s = peering_open("peering", sn, &es, w, hgt);
    for e in &es {
        let Some(&(x1, y1)) = pos.get(e.a.as_str()) else { continue };
        let Some(&(x2, y2)) = pos.get(e.b.as_str()).or_else(|| ext_pos.get(e.b.as_str())) else { continue };
        let _ = write!(
            s,
            "<line class=\"session{}{}\" data-a=\"{}\" data-b=\"{}\" data-kind=\"{}\" data-state=\"{}\" x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{}\" stroke-width=\"{}\"{}><title>{} — {}: {} ({})</title></line>",
            if e.established { " established" } else { " down" },
            if e.wan { " wan" } else { "" },
            esc(&e.a),
            esc(&e.b),
            esc(&e.kind),
            esc(&e.states.join("/")),
            if e.established { OK_COLOUR } else { DOWN_COLOUR },
            if e.wan { 2.0 } else { 1.2 },
            if e.wan { " stroke-dasharray=\"6 3\"" } else { "" },
            esc(&e.a),
            esc(&e.b),
            esc(&e.kind),
            esc(&e.states.join(" / "))
        );
    }
    for nd in &nodes {
        let (x, y) = pos[nd.name.as_str()];
        let site = nd.site.as_deref().unwrap_or("-");
        let fill = site_colour(site, &sn.nodes);
        let shape = if nd.route_reflector {
            format!("<rect x=\"{:.1}\" y=\"{:.1}\" width=\"16\" height=\"16\" fill=\"{fill}\" stroke=\"#111\" stroke-width=\"2\"/>", x - 8.0, y - 8.0)
        } else {
            format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"7\" fill=\"{fill}\" stroke=\"#333\"/>")
        };
        let (lx, anchor) = if x >= cx { (x + 12.0, "start") } else { (x - 12.0, "end") };
        let _ = write!(
            s,
            "<g class=\"pnode{}\" data-node=\"{}\" data-site=\"{}\">{shape}<text x=\"{lx:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"{anchor}\">{}{}</text><title>{} ({}, {}){}</title></g>",
            if nd.route_reflector { " rr" } else { "" },
            esc(&nd.name),
            esc(site),
            y + 4.0,
            esc(&nd.name),
            if nd.route_reflector { " (RR)" } else { "" },
            esc(&nd.name),
            esc(site),
            esc(&nd.ip),
            match &nd.sessions {
                Err(e) => format!(": sessions unreadable: {}", esc(e)),
                Ok(_) => String::new(),
            }
        );
    }
    for (a, (x, y)) in &ext_pos {
        let _ = write!(
            s,
            "<g class=\"pnode external\" data-node=\"{}\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"#9e9e9e\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text></g>",
            esc(a),
            x - 5.0,
            y - 5.0,
            x + 8.0,
            y + 4.0,
            esc(a)
        );
    }
    s.push_str(&legend_svg(hgt - 18.0));
    s.push_str("</svg>\n");
    s.push_str(&session_summary(&es));
    s
}

/// Places `names` evenly on a circle, the first at the top, clockwise.
fn on_circle<'a>(
    names: impl ExactSizeIterator<Item = &'a str>,
    (cx, cy): (f64, f64),
    rad: f64,
) -> BTreeMap<&'a str, (f64, f64)> {
    let n = names.len().max(1) as f64;
    names
        .enumerate()
        .map(|(i, name)| {
            let a = std::f64::consts::TAU * i as f64 / n - std::f64::consts::FRAC_PI_2;
            (name, (cx + rad * a.cos(), cy + rad * a.sin()))
        })
        .collect()
}

/// A peering graph's `<svg>` tag, with its node, session and Established counts as data.
fn peering_open(class: &str, sn: &Snapshot, es: &[Edge], w: f64, hgt: f64) -> String {
    format!(
        "<svg class=\"{class}\" data-nodes=\"{}\" data-sessions=\"{}\" data-established=\"{}\" width=\"{w}\" height=\"{hgt}\" viewBox=\"0 0 {w} {hgt}\" xmlns=\"http://www.w3.org/2000/svg\">",
        sn.nodes.len(),
        es.len(),
        es.iter().filter(|e| e.established).count()
    )
}

fn legend_svg(y: f64) -> String {
    format!(
        "<g class=\"legend\" font-size=\"11\"><line x1=\"10\" y1=\"{y}\" x2=\"40\" y2=\"{y}\" stroke=\"{OK_COLOUR}\" stroke-width=\"2\"/><text x=\"44\" y=\"{:.0}\">Established</text><line x1=\"130\" y1=\"{y}\" x2=\"160\" y2=\"{y}\" stroke=\"{DOWN_COLOUR}\" stroke-width=\"2\"/><text x=\"164\" y=\"{:.0}\">not Established</text><line x1=\"280\" y1=\"{y}\" x2=\"310\" y2=\"{y}\" stroke=\"#333\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/><text x=\"314\" y=\"{:.0}\">crosses the WAN</text><rect x=\"430\" y=\"{:.0}\" width=\"10\" height=\"10\" fill=\"#ccc\" stroke=\"#111\" stroke-width=\"2\"/><text x=\"446\" y=\"{:.0}\">reflects routes (rr client peers)</text></g>",
        y + 4.0,
        y + 4.0,
        y + 4.0,
        y - 5.0,
        y + 4.0
    )
}

const SITE_COLOURS: [&str; 6] = ["#64b5f6", "#ffb74d", "#81c784", "#ba68c8", "#4db6ac", "#f06292"];

fn site_colour(site: &str, nodes: &[super::snapshot::NodeSnap]) -> &'static str {
    let mut sites: Vec<&str> = nodes.iter().map(|n| n.site.as_deref().unwrap_or("-")).collect();
    sites.sort();
    sites.dedup();
    let i = sites.iter().position(|s| *s == site).unwrap_or(0);
    SITE_COLOURS[i % SITE_COLOURS.len()]
}

/// Sessions by kind and state, and how many cross the WAN.
fn session_summary(es: &[Edge]) -> String {
    let mut h = String::from("<table class=\"sessions\"><tr><th>sessions</th><th>Established</th><th>not Established</th><th>crossing the WAN</th></tr>");
    let mut kinds: Vec<&str> = es.iter().map(|e| e.kind.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    for k in kinds {
        let mine: Vec<&Edge> = es.iter().filter(|e| e.kind == k).collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(k),
            mine.iter().filter(|e| e.established).count(),
            mine.iter().filter(|e| !e.established).count(),
            mine.iter().filter(|e| e.wan).count()
        );
    }
    h.push_str("</table>\n");
    h
}

/// A big lab's peering: one circle per (site, role), sized by its node count; between two groups (and
/// within one) a line labelled with its session counts, red when any is not Established.
fn peering_aggregate(sn: &Snapshot, es: &[Edge]) -> String {
    let group = |name: &str| -> String {
        match sn.nodes.iter().find(|n| n.name == name) {
            Some(n) => {
                format!("{} {}", n.site.as_deref().unwrap_or("-"), if n.route_reflector { "RRs" } else { "nodes" })
            }
            None => "external peers".to_string(),
        }
    };
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    for n in &sn.nodes {
        *groups.entry(group(&n.name)).or_insert(0) += 1;
    }
    let mut pairs: BTreeMap<(String, String), (usize, usize, bool)> = BTreeMap::new();
    for e in es {
        let (ga, gb) = (group(&e.a), if e.external { "external peers".to_string() } else { group(&e.b) });
        if e.external {
            groups.entry(gb.clone()).or_insert(0);
        }
        let key = if ga <= gb { (ga, gb) } else { (gb, ga) };
        let v = pairs.entry(key).or_insert((0, 0, e.wan));
        if e.established {
            v.0 += 1
        } else {
            v.1 += 1
        }
    }
    let (w, hgt) = (760.0f64, 520.0f64);
    let (cx, cy, rad) = (w / 2.0, hgt / 2.0 - 10.0, 170.0);
    let pos: BTreeMap<&str, (f64, f64)> = on_circle(groups.keys().map(String::as_str), (cx, cy), rad);
    let mut s = peering_open("peering aggregate", sn, es, w, hgt);
    for ((a, b), (up, down, wan)) in &pairs {
        let (x1, y1) = pos[a.as_str()];
        let (x2, y2) = pos[b.as_str()];
        let colour = if *down > 0 { DOWN_COLOUR } else { OK_COLOUR };
        let label = if *down > 0 { format!("{up} up, {down} down") } else { format!("{up}") };
        if a == b {
            let _ = write!(
                s,
                "<g class=\"session group-edge\" data-a=\"{}\" data-b=\"{}\" data-up=\"{up}\" data-down=\"{down}\"><circle cx=\"{x1:.1}\" cy=\"{:.1}\" r=\"22\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/><text x=\"{x1:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"{colour}\">{label} within</text></g>",
                esc(a),
                esc(b),
                y1 - 38.0,
                y1 - 64.0
            );
        } else {
            let width = 1.0 + ((*up + *down) as f64).log10().max(0.0) * 1.5;
            let _ = write!(
                s,
                "<g class=\"session group-edge{}\" data-a=\"{}\" data-b=\"{}\" data-up=\"{up}\" data-down=\"{down}\"><line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{colour}\" stroke-width=\"{width:.1}\"{}/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"{colour}\">{label}</text></g>",
                if *wan { " wan" } else { "" },
                esc(a),
                esc(b),
                if *wan { " stroke-dasharray=\"6 3\"" } else { "" },
                (x1 + x2) / 2.0,
                (y1 + y2) / 2.0 - 4.0
            );
        }
    }
    for (g, count) in &groups {
        let (x, y) = pos[g.as_str()];
        let r = 10.0 + (*count as f64).sqrt() * 2.5;
        let _ = write!(
            s,
            "<g class=\"pnode group{}\" data-group=\"{}\" data-count=\"{count}\"><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r:.1}\" fill=\"#90caf9\" stroke=\"#333\"/><text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{} ({count})</text></g>",
            if g.ends_with("RRs") { " rr" } else { "" },
            esc(g),
            y + r + 14.0,
            esc(g)
        );
    }
    s.push_str(&legend_svg(hgt - 14.0));
    s.push_str("</svg>\n");
    s.push_str(&session_summary(es));
    s
}

/// Per node, what BIRD's routes and the kernel's routes gained and lost since the previous step.
fn route_changes(sn: &Snapshot, previous: Option<&Snapshot>) -> String {
    let Some(prev) = previous else {
        let rib: usize = sn.nodes.iter().map(|n| n.rib.as_ref().map(Vec::len).unwrap_or(0)).sum();
        let fib: usize = sn.nodes.iter().map(|n| n.fib.as_ref().map(Vec::len).unwrap_or(0)).sum();
        return format!(
            "<p class=\"routes-first muted\">First step: {rib} BIRD routes and {fib} kernel routes over {} nodes (later steps show what changed).</p>\n",
            sn.nodes.len()
        );
    };
    let before: BTreeMap<&str, &super::snapshot::NodeSnap> = prev.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let mut rows = String::new();
    let mut listed = String::new();
    let (mut changed_nodes, mut listed_nodes) = (0, 0);
    for n in &sn.nodes {
        let Some(b) = before.get(n.name.as_str()) else { continue };
        let diff = |x: &Result<Vec<String>, String>, y: &Result<Vec<String>, String>| match (x, y) {
            (Ok(x), Ok(y)) => Some(line_diff(x, y)),
            _ => None,
        };
        let rib = diff(&b.rib, &n.rib);
        let fib = diff(&b.fib, &n.fib);
        let count = |d: &Option<(Vec<String>, Vec<String>)>| match d {
            Some((a, r)) => format!("+{} −{}", a.len(), r.len()),
            None => "unreadable".into(),
        };
        let changed =
            |d: &Option<(Vec<String>, Vec<String>)>| d.as_ref().is_none_or(|(a, r)| !a.is_empty() || !r.is_empty());
        if !changed(&rib) && !changed(&fib) {
            continue;
        }
        changed_nodes += 1;
        let _ = write!(
            rows,
            "<tr class=\"routediff\" data-node=\"{}\"><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&n.name),
            esc(&n.name),
            count(&rib),
            count(&fib)
        );
        if listed_nodes < DIFF_NODES_LISTED {
            listed_nodes += 1;
            let _ = write!(listed, "<details class=\"nodediff\"><summary>{}</summary>", esc(&n.name));
            for (table, d) in [("BIRD routes", &rib), ("kernel routes", &fib)] {
                if let Some((added, removed)) = d {
                    if added.is_empty() && removed.is_empty() {
                        continue;
                    }
                    let _ = write!(listed, "<div class=\"muted\">{table}</div><pre>");
                    for l in added.iter().take(DIFF_LINES_PER_NODE) {
                        let _ = writeln!(listed, "<span class=\"add\">+ {}</span>", esc(l));
                    }
                    for l in removed.iter().take(DIFF_LINES_PER_NODE) {
                        let _ = writeln!(listed, "<span class=\"del\">− {}</span>", esc(l));
                    }
                    let more = added.len().saturating_sub(DIFF_LINES_PER_NODE)
                        + removed.len().saturating_sub(DIFF_LINES_PER_NODE);
                    if more > 0 {
                        let _ = writeln!(listed, "… and {more} more");
                    }
                    listed.push_str("</pre>");
                }
            }
            listed.push_str("</details>");
        }
    }
    if changed_nodes == 0 {
        return "<p class=\"routes-same muted\">No node's BIRD or kernel routes changed since the previous step.</p>\n"
            .into();
    }
    format!(
        "<h4>Routes changed since the previous step ({changed_nodes} of {} nodes)</h4><table class=\"routediffs\"><tr><th>node</th><th>BIRD routes</th><th>kernel routes</th></tr>{rows}</table>{listed}\n",
        sn.nodes.len()
    )
}

#[cfg(test)]
mod tests;
