//! Reporting a runbook run: one line per step (cargo-nextest style), the readable failure (every
//! expectation's diff plus a dump of the lab), and JUnit XML for CI.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::observe::render_node_status;
use crate::runbook::check::probe_text;
use crate::runbook::{fmt_duration, route_line, LabView, Mismatch, ProbeStats, Runbook, WaitResult};

pub mod html;
pub mod junit;
pub mod reporters;
pub mod snapshot;
pub mod topology_view;

#[cfg(test)]
mod tests;

/// The result of one step.
#[derive(Debug, Clone, Default)]
pub struct StepReport {
    pub runbook: String,
    pub step: String,
    pub passed: bool,
    /// When every expectation held (None: they did not, or the step had none to wait for).
    pub converge: Option<Duration>,
    pub probes: BTreeMap<String, ProbeStats>,
    pub failures: Vec<Mismatch>,
    /// The lab's state when the step failed ([`dump`]).
    pub dump: Option<String>,
    /// Wall time of the whole step (action and waiting).
    pub duration: Duration,
    /// From the step's start to the last node's last BIRD route change during it, stamped on the node
    /// (`runtime::netlink::RouteMonitor`); None when no route changed or the backend cannot stamp.
    pub routes_settled: Option<Duration>,
    /// What crossed the WAN during the step, and the sessions across it at its end (labs with a WAN).
    pub wan: Option<WanStep>,
    /// A seeded fault: the text this step's failure must contain (`# expect-fail: step N: <text>`).
    pub intended: Option<String>,
    /// The operator's commands the step typed, with what they printed.
    pub commands: Vec<crate::twin::commands::Outcome>,
    /// The step's start (wall clock, ms since the epoch), for timelines.
    pub started_ms: u64,
    /// Every node's sessions and routes when the step ended (taken when a reporter draws them).
    pub snapshot: Option<snapshot::Snapshot>,
    /// Expectations `rrlab check` could not judge on a live cluster, each with why (`diff`): neither passed
    /// nor failed.
    pub not_checked: Vec<Mismatch>,
}

/// How a step ended, seeded faults included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every expectation held.
    Pass,
    /// An expectation failed.
    Fail,
    /// A seeded fault failed as intended (with the intended text): counts as a pass.
    IntendedFail,
    /// A seeded fault passed: the expectation could not fail.
    UnexpectedPass,
    /// A seeded fault failed, but not with the intended text.
    WrongFailure,
}

impl Verdict {
    /// The run is fine with this step.
    pub fn ok(self) -> bool {
        matches!(self, Verdict::Pass | Verdict::IntendedFail)
    }
    /// Four letters, for the terminal.
    pub fn tag(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::IntendedFail => "XFAIL",
            Verdict::UnexpectedPass => "XPASS",
            Verdict::WrongFailure => "FAIL",
        }
    }
}

/// A step's WAN traffic: BGP sessions crossing the WAN when the step ended, and the BGP and IPIP packets and
/// bytes that crossed it while the step ran (the WAN node's counters).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct WanStep {
    pub sessions: usize,
    pub bgp_packets: u64,
    pub bgp_bytes: u64,
    pub ipip_packets: u64,
    pub ipip_bytes: u64,
}

impl WanStep {
    /// The traffic between two readings of the counters, with the session count at the end.
    pub fn between(before: &crate::wan::WanCounters, after: &crate::wan::WanCounters, sessions: usize) -> WanStep {
        WanStep {
            sessions,
            bgp_packets: after.bgp_packets.saturating_sub(before.bgp_packets),
            bgp_bytes: after.bgp_bytes.saturating_sub(before.bgp_bytes),
            ipip_packets: after.ipip_packets.saturating_sub(before.ipip_packets),
            ipip_bytes: after.ipip_bytes.saturating_sub(before.ipip_bytes),
        }
    }
}

impl StepReport {
    /// The report of step `index` (0-based) of `rb` from its wait result, named `step <n> <name>`; the
    /// executor adds the [`dump`] when it failed. `extra` are failures found outside the expectations
    /// (e.g. [`crate::runbook::unexpected_command_failures`]), listed first.
    pub fn new(rb: &Runbook, index: usize, w: &WaitResult, extra: Vec<Mismatch>, duration: Duration) -> StepReport {
        let step = rb.steps.get(index).map(|s| s.name.as_str()).unwrap_or("?");
        let mut failures = extra;
        failures.extend(w.failures.iter().cloned());
        StepReport {
            runbook: rb.name.clone(),
            step: format!("step {} {step}", index + 1),
            passed: failures.is_empty(),
            converge: w.converged,
            probes: w.probes.clone(),
            failures,
            dump: None,
            duration,
            routes_settled: None,
            wan: None,
            intended: rb.expected_failure(index + 1).map(str::to_string),
            commands: Vec::new(),
            started_ms: 0,
            snapshot: None,
            not_checked: Vec::new(),
        }
    }

    /// How the step ended, judged against its seeded fault if it has one.
    pub fn verdict(&self) -> Verdict {
        match (&self.intended, self.passed) {
            (None, true) => Verdict::Pass,
            (None, false) => Verdict::Fail,
            (Some(_), true) => Verdict::UnexpectedPass,
            (Some(want), false) if failure_text(self).contains(want.as_str()) => Verdict::IntendedFail,
            (Some(_), false) => Verdict::WrongFailure,
        }
    }

    /// What is wrong with the step, judged against its seeded fault; None when it is fine.
    pub fn problem(&self) -> Option<String> {
        match self.verdict() {
            Verdict::Pass | Verdict::IntendedFail => None,
            Verdict::Fail => Some(format!("{} failed", self.step)),
            Verdict::UnexpectedPass => Some(format!("{} passed, but its seeded fault must make it fail", self.step)),
            Verdict::WrongFailure => Some(format!(
                "{} failed, but without {:?} in its message",
                self.step,
                self.intended.as_deref().unwrap_or_default()
            )),
        }
    }
}

/// Column the step's measurements start at.
const NAME_WIDTH: usize = 44;

/// `PASS  P1 apply BGPPeers                       converged 1.42s  loss a-to-b 0/312 (0 ms)  [3.21s]`
pub fn step_line(r: &StepReport) -> String {
    let status = r.verdict().tag();
    let name = format!("{} {}", r.runbook, r.step);
    format!("{status}  {name:<NAME_WIDTH$}  {}", step_measurements(r)).trim_end().to_string()
}

/// What a step measured: `converged 1.42s  loss a-to-b 0/312 (0 ms)  [3.21s]`.
pub fn step_measurements(r: &StepReport) -> String {
    let mut parts: Vec<String> = Vec::new();
    match r.converge {
        Some(d) => parts.push(format!("converged {}", secs(d))),
        None if !r.passed => parts.push("not converged".to_string()),
        None => {}
    }
    if let Some(d) = r.routes_settled {
        parts.push(format!("routes settled {} (on the nodes)", secs(d)));
    }
    for (name, p) in &r.probes {
        let mut t = format!("loss {name} {}/{} ({} ms)", p.lost(), p.sent, p.longest_outage.as_millis());
        if p.duplicates > 0 || p.reordered > 0 {
            t.push_str(&format!(", {} dup, {} reordered", p.duplicates, p.reordered));
        }
        parts.push(t);
    }
    if let Some(w) = &r.wan {
        parts.push(format!("WAN {} BGP sessions, {} BGP pkts/{} B", w.sessions, w.bgp_packets, w.bgp_bytes));
    }
    if !r.passed {
        let n = r.failures.len();
        parts.push(format!("{n} expectation{} failed", if n == 1 { "" } else { "s" }));
    }
    if !r.not_checked.is_empty() {
        parts.push(format!("{} not checked", r.not_checked.len()));
    }
    parts.push(format!("[{}]", secs(r.duration)));
    parts.join("  ")
}

/// `1.42s`
fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// Every failed expectation with its diff, the probes, then the lab dump.
pub fn failure_text(r: &StepReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} {}: {}", r.runbook, r.step, if r.passed { "passed" } else { "FAILED" });
    for m in &r.failures {
        let _ = writeln!(s, "\n  ✗ {} (line {})", m.expectation, m.line);
        for l in m.diff.lines() {
            let _ = writeln!(s, "      {l}");
        }
    }
    if !r.probes.is_empty() {
        let _ = writeln!(s, "\n  probes during the step:");
        for (name, p) in &r.probes {
            let _ = writeln!(s, "    {}", probe_text(name, p));
        }
    }
    if let Some(d) = &r.dump {
        let _ = writeln!(s, "\n---------------------------------------------------------------- lab state");
        s.push_str(d);
        if !d.ends_with('\n') {
            s.push('\n');
        }
    }
    s
}

/// Every node: `calicoctl node status`, BIRD's protocols and routes (with BGP attributes), the kernel's
/// routes, ipsets, iptables rules with counters, the BIRD config as running and any config error; then the
/// WAN counters.
pub fn dump(lab: &dyn LabView) -> String {
    let mut s = String::new();
    for n in lab.nodes() {
        let _ = writeln!(
            s,
            "=== {} (cluster {}, site {}, {}) ===",
            n.name,
            n.cluster,
            n.site.as_deref().unwrap_or("-"),
            n.ip
        );
        if !n.labels.is_empty() {
            let l: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(s, "labels: {}", l.join(", "));
        }
        if !n.pods.is_empty() {
            let p: Vec<String> = n.pods.iter().map(|p| format!("{} {}", p.name, p.ip)).collect();
            let _ = writeln!(s, "pods: {}", p.join(", "));
        }
        let protocols = lab.protocols(&n.name);
        let _ = writeln!(s, "--- calicoctl node status");
        match &protocols {
            Ok(p) => s.push_str(&render_node_status(p, true)),
            Err(e) => {
                let _ = writeln!(s, "(unavailable: {e})");
            }
        }
        let _ = writeln!(s, "--- BIRD protocols");
        match &protocols {
            Ok(p) => {
                for x in p {
                    let _ = writeln!(
                        s,
                        "{:<24} {:<8} {:<8} {:<6} {:<10} {}",
                        x.name, x.proto, x.table, x.state, x.since, x.info
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(s, "(unavailable: {e})");
            }
        }
        let _ = writeln!(s, "--- BIRD routes");
        match lab.rib(&n.name) {
            Ok(v) => {
                for r in &v {
                    let _ = writeln!(s, "{}", route_line(r));
                }
            }
            Err(e) => {
                let _ = writeln!(s, "(unavailable: {e})");
            }
        }
        let _ = writeln!(s, "--- kernel routes");
        match lab.fib(&n.name) {
            Ok(v) => {
                for r in &v {
                    let _ = writeln!(s, "{r}");
                }
            }
            Err(e) => {
                let _ = writeln!(s, "(unavailable: {e})");
            }
        }
        let _ = writeln!(s, "--- ipsets");
        match lab.ipsets(&n.name) {
            Ok(v) => {
                for set in &v {
                    let _ = writeln!(s, "{} ({}): {}", set.name, set.kind, set.sorted_members().join(", "));
                }
            }
            Err(e) => {
                let _ = writeln!(s, "(unavailable: {e})");
            }
        }
        let _ = writeln!(s, "--- iptables");
        match lab.iptables(&n.name) {
            Ok(t) => {
                for r in t.rules() {
                    let c = r.counters.map(|c| format!("[{}:{}] ", c.packets, c.bytes)).unwrap_or_default();
                    let _ = writeln!(s, "{c}-t {} -A {} {}", r.table, r.chain, r.args.join(" "));
                }
            }
            Err(e) => {
                let _ = writeln!(s, "(unavailable: {e})");
            }
        }
        match lab.config(&n.name) {
            Ok(files) => {
                for (f, text) in &files {
                    let _ = writeln!(s, "--- {f}");
                    s.push_str(text);
                    if !text.ends_with('\n') {
                        s.push('\n');
                    }
                }
            }
            Err(e) => {
                let _ = writeln!(s, "--- BIRD config\n(unavailable: {e})");
            }
        }
        if let Some(e) = lab.bird_config_error(&n.name) {
            let _ = writeln!(s, "--- BIRD rejected its new config\n{}", e.trim_end());
        }
        s.push('\n');
    }
    match lab.wan() {
        Ok(w) => {
            let _ = writeln!(
                s,
                "=== WAN: BGP {} packets / {} bytes, IPIP {} packets / {} bytes",
                w.bgp_packets, w.bgp_bytes, w.ipip_packets, w.ipip_bytes
            );
        }
        Err(e) => {
            let _ = writeln!(s, "=== WAN: (unavailable: {e})");
        }
    }
    s
}

/// `Summary [  12.34s] 14 steps: 13 passed, 1 failed` (seeded faults that failed as intended counted apart:
/// `…: 1 passed, 22 seeded faults failed as intended, 0 failed`).
pub fn summary_line(steps: &[StepReport]) -> String {
    let total: Duration = steps.iter().map(|s| s.duration).sum();
    let count = |v: Verdict| steps.iter().filter(|s| s.verdict() == v).count();
    let intended = count(Verdict::IntendedFail);
    let failed = steps.iter().filter(|s| !s.verdict().ok()).count();
    let seeded = match intended {
        0 => String::new(),
        1 => "1 seeded fault failed as intended, ".to_string(),
        n => format!("{n} seeded faults failed as intended, "),
    };
    format!(
        "Summary [{:>9}] {} step{}: {} passed, {seeded}{failed} failed",
        secs(total),
        steps.len(),
        if steps.len() == 1 { "" } else { "s" },
        count(Verdict::Pass)
    )
}

/// Text for XML content and attribute values: markup characters escaped, characters XML 1.0 forbids
/// (control characters other than tab, newline and carriage return) dropped.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Format a duration the way runbooks write them (`1.42s`, `250ms`).
pub fn duration_text(d: Duration) -> String {
    fmt_duration(d)
}
