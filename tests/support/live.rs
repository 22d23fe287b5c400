//! The e2e's trials of issue 12: a topology that `rrlab import` wrote is imported again and compared before
//! its runbook runs (import → up → procedure), and `rrlab check --ssh` against a live lab over real SSH.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rrlab::backend::observe::{read_text, CONFD_DIR, CONFD_FILES, IPSETS, IPTABLES};
use rrlab::backend::twin::TwinBackend;
use rrlab::backend::Backend;
use rrlab::remote::{CheckArgs, Inventory, Transport};
use rrlab::runner::{self, Events, RunOptions};
use rrlab::runtime::RuntimeKind;

/// The `rrlab import` command line a topology's first line records (`# Imported by `rrlab import --from F …
/// --name N``): its input files (relative to `root`) and name.
pub fn recorded_import(topology_text: &str) -> Result<(Vec<String>, String), String> {
    let first = topology_text.lines().next().unwrap_or_default();
    let cmd = first
        .split('`')
        .nth(1)
        .filter(|c| c.starts_with("rrlab import "))
        .ok_or_else(|| format!("its first line does not record the `rrlab import` command: {first:?}"))?;
    let words: Vec<&str> = cmd.split_whitespace().skip(2).collect();
    let (mut from, mut name) = (Vec::new(), None);
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match (*w, it.next()) {
            ("--from", Some(f)) => from.push(f.to_string()),
            ("--name", Some(n)) => name = Some(n.to_string()),
            (w, _) => return Err(format!("{cmd:?}: the e2e replays --from and --name only, not {w:?}")),
        }
    }
    Ok((from, name.ok_or_else(|| format!("{cmd:?}: no --name"))?))
}

/// Import again what an imported topology was imported from; every file it wrote must be what is committed
/// beside it (so the topology a runbook rehearses on is exactly `rrlab import`'s output today).
pub fn reimport_matches(root: &Path, topology: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(topology).map_err(|e| format!("{}: {e}", topology.display()))?;
    let (from, name) = recorded_import(&text).map_err(|e| format!("{}: {e}", topology.display()))?;
    let mut inputs = Vec::new();
    for f in &from {
        let t = std::fs::read_to_string(root.join(f)).map_err(|e| format!("{f}: {e}"))?;
        inputs.push((f.clone(), t));
    }
    let opts = rrlab::import::ImportOptions { name, sites: None, service_subnet: None, seed: None };
    let imported = rrlab::import::import(&inputs, &opts).map_err(|e| e.to_string())?;
    let dir = topology.parent().unwrap_or(Path::new("."));
    for (file, want) in &imported.files {
        let have = std::fs::read_to_string(dir.join(file)).map_err(|e| format!("{}: {e}", dir.join(file).display()))?;
        if &have != want {
            let diff: Vec<String> = have
                .lines()
                .zip(want.lines())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .take(5)
                .map(|(i, (a, b))| format!("  line {}: committed {a:?}\n           import writes {b:?}", i + 1))
                .collect();
            return Err(format!(
                "{} is not what `rrlab import` writes now (re-import it):\n{}",
                dir.join(file).display(),
                if diff.is_empty() { "  (one is longer)".to_string() } else { diff.join("\n") }
            ));
        }
    }
    Ok(imported.files.len())
}

/// The comparison's negative test: a copy of the imported files with one line changed is not what `rrlab
/// import` writes, and [`reimport_matches`] says which file and line.
pub fn reimport_detects_drift(root: &Path, topology: &Path) -> Result<(), String> {
    let dir = topology.parent().ok_or("no directory")?;
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    for e in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        std::fs::copy(e.path(), scratch.path().join(e.file_name())).map_err(|e| e.to_string())?;
    }
    let name = topology.file_name().ok_or("no file name")?;
    let kind = scratch.path().join(name).with_extension("").with_extension("kind.yaml");
    let text = std::fs::read_to_string(&kind).map_err(|e| format!("{}: {e}", kind.display()))?;
    std::fs::write(&kind, text.replacen("role: worker", "role: control-plane", 1)).map_err(|e| e.to_string())?;
    // The copy's topology names its inputs relative to the repository, as the original does.
    match reimport_matches(root, &scratch.path().join(name)) {
        Ok(_) => Err(format!("an edited copy of {} passed as rrlab import's output", kind.display())),
        Err(e) if e.contains("kind.yaml is not what `rrlab import` writes now") && e.contains("line ") => Ok(()),
        Err(e) => Err(format!("an edited kind config: unexpected error: {e}")),
    }
}

/// What a read-only check must leave as it was, per node: calico-node's BIRD files, BIRD's sessions (with
/// their `since`: nothing restarted), the kernel's routes, Felix's ipsets and iptables rules (without packet
/// counters and dump dates, which traffic and time change).
pub fn node_state(b: &dyn Backend) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for n in b.topology().clusters.iter().flat_map(|c| c.nodes.iter().map(|n| n.name.clone())) {
        let mut s = String::new();
        for f in CONFD_FILES {
            s.push_str(&format!(
                "--- {f}\n{}\n",
                b.read_file(&n, &format!("{CONFD_DIR}/{f}")).unwrap_or_else(|e| e.to_string())
            ));
        }
        s.push_str(&format!("--- protocols\n{}\n", b.bird(&n, "show protocols").unwrap_or_else(|e| e.to_string())));
        let routes = b.kernel_routes(&n).map(|r| {
            r.map(|r| r.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>().join("\n"))
                .unwrap_or_else(|e| e.to_string())
        });
        s.push_str(&format!("--- routes\n{}\n", routes.unwrap_or_default()));
        s.push_str(&format!("--- ipsets\n{}\n", read_text(b, &n, IPSETS.source).unwrap_or_else(|e| e.to_string())));
        let rules = read_text(b, &n, IPTABLES.source).unwrap_or_else(|e| e.to_string());
        let rules: Vec<String> = rules
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let l = if l.starts_with('[') { l.split_once("] ").map_or(l, |(_, r)| r) } else { l };
                match l.rsplit_once(" [") {
                    Some((head, tail)) if l.starts_with(':') && tail.ends_with(']') => head.to_string(),
                    _ => l.to_string(),
                }
            })
            .collect();
        s.push_str(&format!("--- iptables\n{}\n", rules.join("\n")));
        out.insert(n, s);
    }
    out
}

/// Seconds of the day of an `hh:mm:ss`.
fn secs(t: &str) -> Option<i64> {
    let v: Vec<i64> = t.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    (v.len() == 3).then(|| v[0] * 3600 + v[1] * 60 + v[2])
}

/// Two lines are the same, but for a `show protocols` `since` (the 5th column) one second apart: BIRD 1.6
/// prints it as wall time minus uptime, which flips by a second between two readings. A restart moves it
/// further and changes the state.
fn same_line(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (fa, fb): (Vec<&str>, Vec<&str>) = (a.split_whitespace().collect(), b.split_whitespace().collect());
    fa.len() == fb.len()
        && fa.len() >= 5
        && fa.iter().zip(&fb).enumerate().all(|(i, (x, y))| i == 4 || x == y)
        && matches!((secs(fa[4]), secs(fb[4])), (Some(x), Some(y)) if (x - y).abs() <= 1)
}

/// The first differing node and section of two states.
fn state_diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Option<String> {
    for (n, a) in before {
        let b = after.get(n).map(String::as_str).unwrap_or("(gone)");
        let differ = a.lines().count() != b.lines().count() || a.lines().zip(b.lines()).any(|(x, y)| !same_line(x, y));
        if differ {
            let line = a.lines().zip(b.lines()).find(|(x, y)| !same_line(x, y));
            let short = |t: &str| t.chars().take(160).collect::<String>();
            return Some(match line {
                Some((x, y)) => format!("{n}: was {:?}, now {:?}", short(x), short(y)),
                None => format!("{n}: {} lines, now {}", a.lines().count(), b.lines().count()),
            });
        }
    }
    None
}

/// The check's arguments for a twin lab's inventory, live labels through the lab's own kubectl.
pub fn check_args(book: &Path, inventory: &Path, rrlab_bin: &Path) -> CheckArgs {
    CheckArgs {
        runbook: book.to_path_buf(),
        step: None,
        ssh: Some(inventory.to_path_buf()),
        kubectl: false,
        kubeconfig: None,
        context: Vec::new(),
        namespace: "kube-system".into(),
        kubectl_bin: Some(format!("{} kubectl", rrlab_bin.display())),
        calicoctl_bin: None,
        apply: false,
        timeout: Some(Duration::from_secs(10)),
        junit: None,
        html: None,
    }
}

/// The SSH transport against one real sshd of the lab: awkward words, exit status and stderr, many commands on
/// one session; then the node's host key refused three ways (another key of the same type, a key of another
/// type, no key at all) and an address where nothing listens.
pub fn transport_checks(inv: &Inventory, scratch: &Path) -> Result<(), String> {
    let node = inv.nodes.keys().next().ok_or("the inventory has no node")?.clone();
    let e = inv.nodes[&node].clone();
    let t = rrlab::remote::ssh::SshTransport::new(inv.clone());
    let o = t.host(&node, &["printf", "<%s>", "a b", "it's", "$(false)"]).map_err(|e| e.to_string())?;
    if (o.status, o.stdout.as_str()) != (Some(0), "<a b><it's><$(false)>") {
        return Err(format!("quoting over SSH: {o:?}"));
    }
    let o = t.host(&node, &["sh", "-c", "echo oops >&2; exit 3"]).map_err(|e| e.to_string())?;
    if (o.status, o.stdout.as_str(), o.stderr.as_str()) != (Some(3), "", "oops\n") {
        return Err(format!("exit status and stderr over SSH: {o:?}"));
    }
    for _ in 0..20 {
        if !t.host(&node, &["true"]).map_err(|e| e.to_string())?.success() {
            return Err("`true` failed over SSH".into());
        }
    }
    let refused = |known_hosts: &str| -> Result<String, String> {
        let kh = scratch.join("kh");
        std::fs::write(&kh, known_hosts).map_err(|e| e.to_string())?;
        let inv = Inventory { known_hosts: kh, ..inv.clone() };
        match rrlab::remote::ssh::SshTransport::new(inv).host(&node, &["true"]) {
            Ok(_) => Err(format!("a wrong known_hosts was accepted:\n{known_hosts}")),
            Err(e) => Ok(e.to_string()),
        }
    };
    let key = |t: &str| -> Result<String, String> {
        let f = scratch.join(format!("k-{t}"));
        let _ = std::fs::remove_file(&f);
        let path = f.display().to_string();
        rrlab::process::run_ok(&["ssh-keygen", "-q", "-t", t, "-N", "", "-f", &path]).map_err(|e| e.to_string())?;
        let p = std::fs::read_to_string(f.with_extension("pub")).map_err(|e| e.to_string())?;
        Ok(p.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
    };
    let name = if e.port == 22 { e.host.clone() } else { format!("[{}]:{}", e.host, e.port) };
    let other = refused(&format!("# a comment\n{name} {}\n", key("ed25519")?))?;
    if !(other.contains(&format!("({}:{}) does not match", e.host, e.port)) && other.contains("kh:2 — possible MITM"))
    {
        return Err(format!("a wrong host key: {other}"));
    }
    let rsa = refused(&format!("{name} {}\n", key("rsa")?))?;
    if !(rsa.contains("kh:1 — possible MITM") && rsa.contains("that line has an ssh-rsa key")) {
        return Err(format!("a host key of another type: {rsa}"));
    }
    let none = refused("")?;
    if !(none.contains("is not in") && none.contains("ssh-keyscan")) {
        return Err(format!("no host key: {none}"));
    }
    Ok(())
}

/// Procedure 1 on the docker runtime with SSH, the lab kept; then `rrlab check --ssh` on its last step: passes
/// on the true state and changes nothing on the nodes; the transport against the real sshd; a wrong host key
/// and an unreachable node are clear errors; a seeded fault (partition B's RRs given A's cluster ID again)
/// fails with the usual diff. The lab is removed at the end whatever happens.
pub fn ssh_check(root: &Path, rrlab_bin: &Path, out: &dyn Fn(&str)) -> Result<(), String> {
    let book = root.join("labs/p1-partitioned-route-reflectors.yaml");
    let opts = RunOptions { runtime: Some(RuntimeKind::Docker), ssh: true, keep: true, ..Default::default() };
    struct Quiet;
    impl Events for Quiet {}
    let run = runner::run(&book, &opts, &Quiet).map_err(|e| format!("procedure 1 with --ssh: {e}"))?;
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = rrlab::lab::converge::down(&self.0);
        }
    }
    let _down = Down(run.lab.clone());
    if let Some(s) = run.steps.iter().find(|s| !s.passed) {
        return Err(format!("procedure 1 failed at step {:?}:\n{}", s.step, rrlab::report::failure_text(s)));
    }
    let inventory = rrlab::lab::ssh::inventory_path(&run.lab);
    let mut lab = TwinBackend::attach(&run.lab).map_err(|e| e.to_string())?;
    let print = |l: &str| out(&format!("      {l}"));

    // The lab at rest first (a BIRD reconfiguration of the last step may still be landing): two readings 2 s
    // apart that agree.
    let mut before = node_state(&lab);
    for _ in 0..15 {
        std::thread::sleep(Duration::from_secs(2));
        let again = node_state(&lab);
        if state_diff(&before, &again).is_none() {
            break;
        }
        before = again;
    }
    let args = check_args(&book, &inventory, rrlab_bin);
    let r = rrlab::remote::check::check(&args, &Quiet, &print)
        .map_err(|e| format!("rrlab check on the true state: {e}"))?;
    if !r.passed {
        let s = &r.run.steps[0];
        return Err(format!("rrlab check failed on the true state:\n{}", rrlab::report::failure_text(s)));
    }
    out(&format!("      check on the true state: passed ({} node states read before and after)", before.len()));

    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let inv = Inventory::load(&inventory).map_err(|e| e.to_string())?;
    transport_checks(&inv, scratch.path())?;
    // A wrong host key for one node: the whole check stops, naming it.
    let (first, entry) = inv.nodes.iter().next().map(|(n, e)| (n.clone(), e.clone())).ok_or("no nodes")?;
    let kh = std::fs::read_to_string(&inv.known_hosts).map_err(|e| e.to_string())?;
    let other_key = kh.lines().find(|l| !l.starts_with(&format!("{} ", entry.host))).ok_or("one node only")?;
    let forged: Vec<String> = kh
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{} ", entry.host)) {
                format!("{} {}", entry.host, other_key.split_once(' ').map_or("", |(_, k)| k))
            } else {
                l.to_string()
            }
        })
        .collect();
    let dir = scratch.path().join("inv");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("known_hosts"), forged.join("\n") + "\n").map_err(|e| e.to_string())?;
    std::fs::copy(inventory.with_file_name("id_ed25519"), dir.join("id_ed25519")).map_err(|e| e.to_string())?;
    let inv_text = std::fs::read_to_string(&inventory).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("inventory.yaml"), &inv_text).map_err(|e| e.to_string())?;
    let e = match rrlab::remote::check::check(
        &check_args(&book, &dir.join("inventory.yaml"), rrlab_bin),
        &Quiet,
        &|_| {},
    ) {
        Ok(_) => return Err("a forged known_hosts was accepted".into()),
        Err(e) => e.to_string(),
    };
    if !(e.contains(&first) && e.contains("does not match")) {
        return Err(format!("a forged host key of {first}: {e}"));
    }
    out(&format!("      forged host key: {}", e.lines().next().unwrap_or_default()));
    // An unreachable node: its address moved to one of the management subnet that no node has.
    let gone = format!("{}.254", entry.host.rsplit_once('.').map_or("", |(net, _)| net));
    let moved = inv_text.replace(&format!("{{host: {}}}", entry.host), &format!("{{host: {gone}}}"));
    std::fs::write(dir.join("inventory.yaml"), moved).map_err(|e| e.to_string())?;
    let e = match rrlab::remote::check::check(
        &check_args(&book, &dir.join("inventory.yaml"), rrlab_bin),
        &Quiet,
        &|_| {},
    ) {
        Ok(_) => return Err("an unreachable node was not an error".into()),
        Err(e) => e.to_string(),
    };
    if !(e.contains(&first) && e.contains(&format!("{gone}:22")) && e.contains("inventory.yaml:")) {
        return Err(format!("an unreachable node: {e}"));
    }
    out(&format!("      unreachable node: {}", e.lines().next().unwrap_or_default()));

    let after = node_state(&lab);
    if let Some(d) = state_diff(&before, &after) {
        return Err(format!("rrlab check changed a node: {d}"));
    }
    out("      the nodes' configs, sessions, routes, ipsets and rules are as they were");

    // Seeded fault: someone undoes the fix on partition B's RRs.
    lab.run_commands(
        "hybrid",
        "seeded fault",
        "kubectl annotate nodes hybrid-worker4 hybrid-worker5 projectcalico.org/RouteReflectorClusterID=244.0.0.1 --overwrite",
    )
    .map_err(|e| e.to_string())?;
    // The comparison that proved the check changed nothing sees this change.
    std::thread::sleep(Duration::from_secs(2));
    match state_diff(&after, &node_state(&lab)) {
        Some(d) => out(&format!("      the state comparison sees the seeded change: {d}")),
        None => return Err("the state comparison did not see the seeded fault's change of bird.cfg".into()),
    }
    let r =
        rrlab::remote::check::check(&args, &Quiet, &|_| {}).map_err(|e| format!("rrlab check on the fault: {e}"))?;
    let text = rrlab::report::failure_text(&r.run.steps[0]);
    if r.passed || !text.contains("missing: rr cluster id 244.0.0.2;") || !text.contains("hybrid-worker4") {
        return Err(format!("the seeded fault was not caught as expected (passed: {}):\n{text}", r.passed));
    }
    out(&format!("      seeded fault caught: {}", text.lines().find(|l| l.contains('✗')).unwrap_or_default().trim()));
    drop(lab);
    Ok(())
}

/// Where the e2e's imported topologies are.
pub fn imported_dir(root: &Path) -> PathBuf {
    let d = root.join("topologies/imported");
    d.canonicalize().unwrap_or(d)
}
