//! Tests that pin the defects the outside review found in the kind backend's bring-up and teardown
//! (`docs/review.md`, "The kind backend against the real tools"), each over a [`RecordingRunner`]. Each test's
//! doc comment names the defect; every one fails on the code before the fix (most of them do not even
//! compile there: the behaviour they need had no API). Inputs written here, not taken from a real tool, are
//! labelled as such.

use std::path::{Path, PathBuf};

use super::plan::{self, Check, PlanOptions};
use super::preflight::{self, Leftover, PreflightError};
use super::record::{Record, Resource};
use super::runner::{RecordingRunner, Runner, StepOutput};
use super::versions::{self, Arch};
use super::{down, resolve_topology, up, KindError};
use crate::model::topology::{self, Topology};
use crate::model::yaml::parse_documents;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn topo(name: &str) -> Topology {
    topology::load(&repo().join("topologies").join(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn opts(lab: &str) -> PlanOptions {
    let mut o = PlanOptions::for_lab(lab);
    o.arch = Arch::Amd64;
    o.host_path = "/usr/bin:/bin".into();
    o.strict_versions = false;
    o
}

/// `kind version` / `containerlab version` at the pins (formats as in their sources, see
/// `parse::parse_kind_version` and `parse::parse_containerlab_version`), limits that suffice.
fn healthy() -> RecordingRunner {
    RecordingRunner::new()
        .reply("kind version", StepOutput::ok("kind v0.27.0 go1.23.6 linux/amd64\n"))
        .reply("containerlab version", StepOutput::ok("    version: 0.79.0\n"))
        .reply("cat /proc/sys/fs/inotify", StepOutput::ok("524288\n512\n"))
}

fn lines(r: &RecordingRunner) -> Vec<String> {
    r.command_lines()
}

fn none_contains(lines: &[String], needle: &str) -> bool {
    lines.iter().all(|l| !l.contains(needle))
}

// ---------------------------------------------------------------------------------------------------------
// 1. containerlab destroy

/// Defect 1 (review items 2, 3): `containerlab destroy --node-filter … --cleanup` is refused by
/// containerlab 0.79 (`cmd/destroy.go`, `destroyFn`: "cleanup cannot be used with node-filter"), so the WAN
/// container and the lab directory with `.state.clab.yaml` stayed and every later filtered deploy
/// reconciled and failed. The teardown must never combine the two, must remove the lab directory itself,
/// and must check that no container of the lab is left.
#[test]
fn destroy_never_combines_node_filter_with_cleanup_and_removes_the_lab_dir() {
    for name in ["hybrid-rr.clab.yml", "two-clusters.clab.yml"] {
        let t = topo(name);
        let o = opts(&t.name);
        let p = plan::plan_down(&t, &o);
        for s in &p.steps {
            let l = s.command_line();
            assert!(!(l.contains("--node-filter") && l.contains("--cleanup")), "{l}");
        }
        let destroy = p.steps.iter().find(|s| s.argv.get(1).map(String::as_str) == Some("destroy")).unwrap();
        // The same lab directory base as the deploy, so containerlab and rrlab agree where it is.
        let deploy = plan::plan_up(&t, &o).steps.into_iter().find(|s| s.command_line().contains("deploy -t")).unwrap();
        assert_eq!(destroy.env, deploy.env);
        assert_eq!(destroy.env, vec![("CLAB_LABDIR_BASE".to_string(), o.work_dir.display().to_string())]);
        let rm = format!("rm -rf -- {}/clab-{}", o.work_dir.display(), t.name);
        assert!(p.position(&rm).is_some(), "{p}");
        let verify = &p.steps[p.position("docker ps -a --filter label=containerlab=").unwrap()];
        assert!(matches!(verify.check, Some(Check::NoOutput(_))));
    }
}

/// Defect 1: the teardown's result was dropped (`let _ = execute(&plan_down…)`). A destroy that fails, or
/// a WAN container that survives, is now an error of `down`, and the record keeps what was not removed so
/// that `rrlab down` can retry it.
#[test]
fn a_failed_destroy_is_reported_and_stays_recorded() {
    let t = topo("hybrid-rr.clab.yml");
    let o = opts("hybrid-rr");
    let r = healthy();
    up(&t, &o, &r, &mut |_, _| {}).unwrap();
    let record_path = o.record_file().display().to_string();

    // Written here: what `docker ps --format {{.Names}}` prints for a surviving WAN container.
    let r2 = RecordingRunner::new()
        .reply("docker ps -a --filter label=containerlab=hybrid-rr", StepOutput::ok("clab-hybrid-rr-wan\n"));
    r2.files.lock().unwrap().extend(r.files.lock().unwrap().clone());
    let e = down(&t, &o, &r2, &mut |_, _| {}).unwrap_err();
    let KindError::Teardown(td) = &e else { panic!("{e}") };
    assert_eq!(td.failed.len(), 1, "{e}");
    assert_eq!(td.failed[0].0, Resource::Containerlab("hybrid-rr".into()));
    assert!(e.to_string().contains("clab-hybrid-rr-wan"), "{e}");
    // The cluster and the bridges were still removed, and only containerlab's part stays recorded.
    assert!(td.removed.contains(&Resource::KindCluster("hybrid".into())));
    let left = Record::parse(&r2.files.lock().unwrap()[&record_path]).unwrap();
    assert_eq!(left.resources, vec![Resource::Containerlab("hybrid-rr".into())]);

    // The retry with the container gone clears the record.
    let r3 = RecordingRunner::new();
    r3.files.lock().unwrap().extend(r2.files.lock().unwrap().clone());
    let ok = down(&t, &o, &r3, &mut |_, _| {}).unwrap();
    assert_eq!(ok.removed, vec![Resource::Containerlab("hybrid-rr".into())]);
    assert!(!r3.files.lock().unwrap().contains_key(&record_path));
    assert!(none_contains(&lines(&r3), "kind delete"), "{:#?}", lines(&r3));
}

/// Defect 1: what the next deploy needs. After a teardown as containerlab 0.79 really behaves (refusing
/// `--cleanup` with `--node-filter`), nothing of the lab that makes a deploy reconcile is left: the filtered
/// destroy ran, the lab directory was removed and the check for containers passed.
#[test]
fn teardown_leaves_nothing_that_makes_the_next_deploy_reconcile() {
    let t = topo("two-clusters.clab.yml");
    let o = opts("two-clusters");
    let r = healthy()
        // containerlab 0.79's answer to --cleanup with --node-filter (cmd/destroy.go, destroyFn)
        .reply("--cleanup", StepOutput::failed(1, "Error: cleanup cannot be used with node-filter\n"));
    up(&t, &o, &r, &mut |_, _| {}).unwrap();
    let td = down(&t, &o, &r, &mut |_, _| {}).unwrap();
    assert!(td.ok(), "{td}");
    let l = lines(&r);
    assert!(l.iter().any(|x| x.ends_with(&format!("rm -rf -- {}/clab-two-clusters", o.work_dir.display()))));
    // A second bring-up after it is a fresh one (no leftovers reported, filtered deploy again).
    let r2 = healthy();
    r2.files.lock().unwrap().extend(r.files.lock().unwrap().clone());
    up(&t, &o, &r2, &mut |_, _| {}).unwrap();
    assert!(lines(&r2).iter().any(|x| x.contains("containerlab deploy -t")));
}

// ---------------------------------------------------------------------------------------------------------
// 2. leftovers

/// Written here: `ip -j link show type bridge` with one site bridge present (iproute2's JSON keys).
const BRIDGES_JSON: &str = r#"[{"ifindex":7,"ifname":"site-a","flags":["BROADCAST","MULTICAST"],"mtu":1500,"qdisc":"noop","operstate":"DOWN","linkmode":"DEFAULT","group":"default","txqlen":1000,"link_type":"ether","address":"aa:bb:cc:00:00:01","broadcast":"ff:ff:ff:ff:ff:ff"}]"#;

/// Defect 2: `up` started over leftovers (an existing kind cluster, containerlab's containers and lab
/// directory, the site bridges) and failed somewhere in the middle. It now refuses before creating
/// anything, naming each leftover and the exact command that removes it.
#[test]
fn up_refuses_leftovers_and_says_exactly_what_to_remove() {
    let t = topo("hybrid-rr.clab.yml");
    let o = opts("hybrid-rr");
    let lab_dir = format!("{}/clab-hybrid-rr", o.work_dir.display());
    let r = healthy()
        .reply("kind get clusters", StepOutput::ok("hybrid\n"))
        .reply("docker ps -a --filter label=containerlab=hybrid-rr", StepOutput::ok("clab-hybrid-rr-wan\n"))
        .reply("ip -j link show type bridge", StepOutput::ok(BRIDGES_JSON))
        .reply("for p in", StepOutput::ok(format!("{lab_dir}\n")));
    let e = up(&t, &o, &r, &mut |_, _| {}).unwrap_err();
    let KindError::Preflight(PreflightError::Leftovers { items, .. }) = &e else { panic!("{e}") };
    assert_eq!(
        items,
        &vec![
            Leftover::LabDir(PathBuf::from(&lab_dir)),
            Leftover::KindCluster("hybrid".into()),
            Leftover::Containers(vec!["clab-hybrid-rr-wan".into()]),
            Leftover::Bridge("site-a".into()),
        ]
    );
    let msg = e.to_string();
    for cmd in [
        "kind delete cluster --name hybrid",
        "docker rm -f clab-hybrid-rr-wan",
        "ip link del site-a",
        &format!("rm -rf {lab_dir}"),
        "--reuse",
    ] {
        assert!(msg.contains(cmd), "{cmd:?} missing from {msg}");
    }
    // Nothing was created, nothing was removed.
    let l = lines(&r);
    for n in [
        "kind create",
        "ip link add",
        "containerlab deploy",
        "kind delete",
        "ip link del",
        "containerlab destroy",
        "cp /dev/stdin",
    ] {
        assert!(none_contains(&l, n), "{n}: {l:#?}");
    }
}

/// Defect 2: an earlier bring-up that is still recorded is a leftover too (its lab is up), and `--reuse`
/// takes an existing cluster as it is: not created, not recorded, so teardown never deletes it.
#[test]
fn reuse_takes_an_existing_cluster_and_teardown_leaves_it() {
    let t = topo("hybrid-rr.clab.yml");
    let mut o = opts("hybrid-rr");
    let rec = o.record_file().display().to_string();
    let r = healthy().reply("for p in", StepOutput::ok(format!("{rec}\n")));
    let e = up(&t, &o, &r, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("rrlab down --backend kind hybrid-rr"), "{e}");

    o.reuse = true;
    let r = healthy().reply("kind get clusters", StepOutput::ok("hybrid\n"));
    let rep = up(&t, &o, &r, &mut |_, _| {}).unwrap();
    assert_eq!(rep.reused, vec!["hybrid".to_string()]);
    assert!(!rep.created.contains(&Resource::KindCluster("hybrid".into())));
    let l = lines(&r);
    assert!(none_contains(&l, "kind create cluster"), "{l:#?}");
    assert!(l.iter().any(|x| x
        .starts_with("kind export kubeconfig --name hybrid --kubeconfig /run/rrlab/hybrid-rr/kind/hybrid.kubeconfig")));
    assert!(l
        .iter()
        .any(|x| x.contains("apply --server-side --force-conflicts -k /run/rrlab/hybrid-rr/kind/hybrid/calico")));
    down(&t, &o, &r, &mut |_, _| {}).unwrap();
    assert!(none_contains(&lines(&r), "kind delete"), "{:#?}", lines(&r));
}

// ---------------------------------------------------------------------------------------------------------
// 3. teardown removes only what this run created

/// Defect 3 (review item 5): a bring-up that failed at step 1 ran the whole teardown, `kind delete cluster
/// --name hybrid` and `ip link del site-a` included, although it had created nothing (the cluster may be the
/// user's own). Now nothing is torn down.
#[test]
fn a_failure_at_step_1_removes_nothing() {
    let t = topo("hybrid-rr.clab.yml");
    let o = opts("hybrid-rr");
    let r = RecordingRunner::new().reply("kind version", StepOutput::failed(1, "kind: something is wrong\n"));
    let e = up(&t, &o, &r, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("kind version"), "{e}");
    assert_eq!(lines(&r), vec!["kind version".to_string()]);
}

/// Defect 3: a failure after some resources were made removes exactly those, in the record's terms: here
/// the bridges (kind deletes a cluster whose creation failed itself, unless `--retain`), not the cluster.
#[test]
fn a_failure_midway_removes_exactly_what_was_recorded() {
    let t = topo("hybrid-rr.clab.yml");
    let o = opts("hybrid-rr");
    let r = healthy().reply(
        "kind create cluster",
        StepOutput::failed(
            1,
            "ERROR: failed to create cluster: node(s) already exist for a cluster with the name \"hybrid\"\n",
        ),
    );
    let e = up(&t, &o, &r, &mut |_, _| {}).unwrap_err();
    let KindError::UpFailed { teardown, .. } = &e else { panic!("{e}") };
    assert_eq!(teardown.removed, vec![Resource::Bridge("site-a".into()), Resource::Bridge("site-b".into())]);
    let l = lines(&r);
    let failed = l.iter().position(|x| x.starts_with("kind create cluster")).unwrap();
    assert_eq!(
        l[failed + 1..],
        ["ip link del site-a", "ip link del site-b", "rm -f -- /run/rrlab/hybrid-rr/kind/created-resources"]
    );
    assert!(e.to_string().contains("already exist") && e.to_string().contains("removed bridge site-a"), "{e}");
}

/// Defect 3: the record is written as each resource is made (the record step follows its resource's
/// creation; containerlab's is written just before its deploy), and `rrlab down` reads the same file:
/// a record that lists one bridge tears down that bridge and nothing else.
#[test]
fn the_record_grows_with_the_bring_up_and_down_reads_it() {
    let t = topo("two-clusters.clab.yml");
    let o = opts("two-clusters");
    let p = plan::plan_up(&t, &o);
    let rec_steps: Vec<usize> = (0..p.steps.len()).filter(|&i| plan::is_record_step(&o, &p.steps[i])).collect();
    let after = |needle: &str| {
        let i = p.position(needle).unwrap();
        rec_steps.iter().copied().find(|&r| r > i).unwrap() == i + 1
    };
    assert!(after("ip link add site-1") && after("kind create cluster --name cluster2"));
    assert_eq!(p.steps[p.position("containerlab deploy").unwrap() - 1].argv, p.steps[rec_steps[0]].argv);
    let last = Record::parse(p.steps[*rec_steps.last().unwrap()].stdin.as_deref().unwrap()).unwrap();
    assert_eq!(last, plan::full_record(&t, &[]));
    assert_eq!(last.topology, t.file);

    let r = RecordingRunner::new();
    let rec = Record::new("two-clusters", &t.file).with(Resource::Bridge("site-1".into()));
    r.files.lock().unwrap().insert(o.record_file().display().to_string(), rec.render());
    down(&t, &o, &r, &mut |_, _| {}).unwrap();
    assert_eq!(
        lines(&r),
        [
            "cat /run/rrlab/two-clusters/kind/created-resources",
            "ip link del site-1",
            "rm -f -- /run/rrlab/two-clusters/kind/created-resources"
        ]
    );
    // No record at all: nothing is removed.
    let e = down(&t, &o, &RecordingRunner::new(), &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, KindError::NoRecord { .. }) && e.to_string().contains("No such file"), "{e}");
}

// ---------------------------------------------------------------------------------------------------------
// 4. version pins

/// Defect 4 (review item 6): exact pins stopped `up` on any other kind or containerlab, with no way out.
/// Skew now warns (returned in the report) and fails only with `--strict-versions`.
#[test]
fn version_skew_warns_unless_strict() {
    let t = topo("hybrid-rr.clab.yml");
    let mut o = opts("hybrid-rr");
    let skew = || {
        RecordingRunner::new()
            .reply("kind version", StepOutput::ok("kind v0.29.0 go1.24.2 linux/amd64\n"))
            .reply("containerlab version", StepOutput::ok("    version: 0.80.1\n"))
    };
    let r = skew();
    let rep = up(&t, &o, &r, &mut |_, _| {}).unwrap();
    assert!(
        rep.warnings.iter().any(|w| w.contains("kind v0.29.0 is installed; rrlab pins kind v0.27.0")),
        "{:?}",
        rep.warnings
    );
    assert!(rep.warnings.iter().any(|w| w.contains("containerlab 0.80.1")), "{:?}", rep.warnings);

    o.strict_versions = true;
    let r = skew();
    let e = up(&t, &o, &r, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("kind v0.29.0"), "{e}");
    assert_eq!(lines(&r).len(), 1);
    assert!(plan::strict_from_env(Some("1")) && !plan::strict_from_env(None) && !plan::strict_from_env(Some("0")));
}

/// A runner on which `kind` is not installed.
struct NoKind;
impl Runner for NoKind {
    fn run(&self, step: &plan::PlanStep) -> std::io::Result<StepOutput> {
        if step.argv[0] == "kind" {
            Err(std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)"))
        } else {
            Ok(StepOutput::ok(""))
        }
    }
}

/// Defect 4 (review item 6): under sudo, `secure_path` hides a kind in `~/go/bin`; the error says so.
#[test]
fn a_missing_kind_under_sudo_names_secure_path() {
    let m = preflight::tool_missing_message("kind", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", Some("alice"));
    assert!(m.contains("secure_path") && m.contains("~/go/bin") && m.contains("sudo env \"PATH=$PATH\""), "{m}");
    assert!(!preflight::tool_missing_message("kind", "/usr/bin", None).contains("secure_path"));
    let e = up(&topo("hybrid-rr.clab.yml"), &opts("hybrid-rr"), &NoKind, &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, KindError::ToolMissing(_)) && e.to_string().contains("`kind` cannot be started"), "{e}");
}

// ---------------------------------------------------------------------------------------------------------
// 5. image pulls

/// Defect 5 (review item 7): ~26 anonymous Docker Hub pulls per hybrid-rr bring-up (every node's containerd
/// pulled calico/cni, calico/node and busybox itself). Each image is now pulled once on the host and
/// loaded into every cluster; the list is the pinned manifest's images plus the probe image.
#[test]
fn images_are_pulled_once_and_loaded_into_every_cluster() {
    // The pinned manifest's calico-node container (testdata, lines of Calico v3.30.7's manifests/calico.yaml)
    // names the image versions.rs derives.
    let sample = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/kind/testdata/calico-v3.30.7-calico-node-container.yaml"),
    )
    .unwrap();
    assert!(sample.contains("image: docker.io/calico/node:v3.30.7"));
    assert_eq!(
        versions::calico_images(None),
        ["docker.io/calico/cni:v3.30.7", "docker.io/calico/node:v3.30.7", "docker.io/calico/kube-controllers:v3.30.7"]
    );

    let t = topo("two-clusters.clab.yml");
    let o = opts("two-clusters");
    let p = plan::plan_up(&t, &o);
    let pulls: Vec<String> = p.command_lines().into_iter().filter(|l| l.starts_with("docker pull")).collect();
    assert_eq!(
        pulls,
        [
            "docker pull docker.io/calico/cni:v3.30.7",
            "docker pull docker.io/calico/node:v3.30.7",
            "docker pull docker.io/calico/kube-controllers:v3.30.7",
            "docker pull docker.io/library/busybox@sha256:73aaf090f3d85aa34ee199857f03fa3a95c8ede2ffd4cc2cdb5b94e566b11662",
        ]
    );
    assert!(
        p.position("docker tag docker.io/library/busybox@sha256:73aaf090").unwrap() < p.position("kind load").unwrap()
    );
    for c in ["cluster1", "cluster2"] {
        let load = p.position(&format!("kind load docker-image --name {c} docker.io/calico/cni:v3.30.7 docker.io/calico/node:v3.30.7 docker.io/calico/kube-controllers:v3.30.7 docker.io/library/busybox:1.36.1")).unwrap();
        assert!(p.position(&format!("kind create cluster --name {c}")).unwrap() < load);
        assert!(load < p.position(&format!("--context kind-{c} create -k")).unwrap());
    }
    // The probe pods use the loaded tag and do not pull it again.
    let pods = parse_documents(&plan::probe_pods_manifest(&t.clusters[0], 1)).unwrap();
    let c = &pods[0].root.get("items").unwrap().to_json()[0]["spec"]["containers"][0];
    assert_eq!(c["image"], "docker.io/library/busybox:1.36.1");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
}

/// Defect 5: an image-registry override (`--image-registry quay.io`) pulls and loads Calico's images from
/// there, and the overlay points the manifest at them with a kustomize `images:` transformer.
#[test]
fn an_image_registry_override_goes_through_kustomize_images() {
    let t = topo("hybrid-rr.clab.yml");
    let mut o = opts("hybrid-rr");
    o.image_registry = Some("quay.io".into());
    let p = plan::plan_up(&t, &o);
    assert!(p.position("docker pull quay.io/calico/node:v3.30.7").is_some());
    assert!(p.position("docker pull docker.io/calico").is_none());
    assert!(p.position("kind load docker-image --name hybrid quay.io/calico/cni:v3.30.7").is_some());
    let k = p.steps.iter().find(|s| s.command_line().ends_with("hybrid/calico/kustomization.yaml")).unwrap();
    let doc = parse_documents(k.stdin.as_deref().unwrap()).unwrap();
    let images = doc[0].root.get("images").unwrap().to_json();
    assert_eq!(
        images,
        serde_json::json!([
            {"name": "docker.io/calico/cni", "newName": "quay.io/calico/cni"},
            {"name": "docker.io/calico/node", "newName": "quay.io/calico/node"},
            {"name": "docker.io/calico/kube-controllers", "newName": "quay.io/calico/kube-controllers"},
        ])
    );
    // Without the override the overlay is unchanged.
    assert!(!plan::calico_overlay_kustomization(&t.clusters[0]).contains("images:"));
}

// ---------------------------------------------------------------------------------------------------------
// 6. lab names

/// Defect 6 (review item 10): `rrlab status/down --backend kind hybrid-rr` did not parse (status took a
/// topology file, down needed `--topology`). A lab name now resolves from the lab's record, else from
/// `topologies/<name>.clab.yml`; and topologies/README.md no longer tells users to run `containerlab deploy`.
#[test]
fn lab_names_resolve_to_their_topology() {
    let dir = repo().join("topologies");
    let exists = |p: &Path| p.is_file();
    assert_eq!(resolve_topology("hybrid-rr", None, &dir, &exists).unwrap(), dir.join("hybrid-rr.clab.yml"));
    let file = dir.join("two-clusters.clab.yml");
    assert_eq!(resolve_topology(&file.display().to_string(), None, &dir, &exists).unwrap(), file);
    let rec = Record::new("two-clusters", &file).render();
    assert_eq!(resolve_topology("two-clusters", Some(&rec), Path::new("/nowhere"), &exists).unwrap(), file);
    let e = resolve_topology("no-such-lab", None, &dir, &exists).unwrap_err();
    assert!(e.to_string().contains("no-such-lab.clab.yml"), "{e}");

    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme
            .lines()
            .map(str::trim)
            .all(|l| !l.starts_with("containerlab deploy") && !l.starts_with("sudo containerlab deploy")),
        "topologies/README.md still tells users to run containerlab deploy"
    );
    assert!(readme.contains("rrlab up --backend kind"));
    let docs = std::fs::read_to_string(repo().join("docs/kind-backend.md")).unwrap();
    assert!(
        docs.contains("rrlab status --backend kind hybrid-rr") && docs.contains("rrlab down --backend kind hybrid-rr")
    );
}

// ---------------------------------------------------------------------------------------------------------
// 7. inotify

/// Defect 7 (review item 11): multi-node kind clusters run out of inotify watches/instances on stock
/// Ubuntu (kind: known issues). The limits are checked up front against the node count.
#[test]
fn inotify_limits_are_checked_against_the_node_count() {
    // Ubuntu's stock values (8192 watches on older kernels; 128 instances) for hybrid-rr's 8 nodes.
    let e = preflight::check_inotify(8192, 128, 8).unwrap_err();
    let m = e.to_string();
    assert!(m.contains("fs.inotify.max_user_watches is 8192, needs at least 524288"), "{m}");
    assert!(m.contains("fs.inotify.max_user_instances is 128, needs at least 512"), "{m}");
    assert!(m.contains("sudo sysctl -w fs.inotify.max_user_watches=524288") && m.contains("--raise-limits"), "{m}");
    assert!(preflight::check_inotify(524_288, 512, 8).is_ok());
    assert!(preflight::check_inotify(8192, 128, 1).is_ok());
    assert_eq!(preflight::check_inotify(524_288, 512, 16).unwrap_err().short.len(), 2);
    assert_eq!(preflight::parse_inotify("65536\n128\n"), Some((65536, 128)));
    assert_eq!(preflight::parse_inotify(""), None);
}

/// Defect 7: `up` stops on low limits before creating anything; `--raise-limits` raises them instead.
#[test]
fn up_stops_on_low_inotify_limits_unless_asked_to_raise_them() {
    let t = topo("hybrid-rr.clab.yml");
    let mut o = opts("hybrid-rr");
    // The first matching reply wins: the low limits come before healthy()'s.
    let low = || {
        RecordingRunner::new()
            .reply("cat /proc/sys/fs/inotify", StepOutput::ok("65536\n128\n"))
            .reply("kind version", StepOutput::ok("kind v0.27.0 go1.23.6 linux/amd64\n"))
    };
    let r = low();
    let e = up(&t, &o, &r, &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, KindError::Preflight(PreflightError::Inotify(_))), "{e}");
    assert!(none_contains(&lines(&r), "cp /dev/stdin") && none_contains(&lines(&r), "ip link add"));

    o.raise_limits = true;
    let r = RecordingRunner::new()
        .reply("cat /proc/sys/fs/inotify", StepOutput::ok("65536\n128\n"))
        .reply("kind version", StepOutput::ok("kind v0.27.0 go1.23.6 linux/amd64\n"));
    up(&t, &o, &r, &mut |_, _| {}).unwrap();
    let l = lines(&r);
    let w = l.iter().position(|x| x == "sysctl -w fs.inotify.max_user_watches=524288").unwrap();
    assert_eq!(l[w + 1], "sysctl -w fs.inotify.max_user_instances=512");
    assert!(w < l.iter().position(|x| x.starts_with("mkdir -p")).unwrap());
}

// ---------------------------------------------------------------------------------------------------------
// 8. docs and the nightly workflow

/// Defect 8: the nightly runs with strict versions (the CLI's `--strict-versions`, and
/// `RRLAB_STRICT_VERSIONS=1` for the e2e target, which builds its options itself), with the inotify limits
/// raised first; docs/kind-backend.md has the table of what is verified where.
#[test]
fn nightly_is_strict_about_versions_and_docs_say_what_is_verified_where() {
    let wf = std::fs::read_to_string(repo().join(".github/workflows/nightly.yml")).unwrap();
    assert!(wf.contains("--strict-versions"), "nightly.yml");
    assert!(wf.contains(&format!("{}=1", plan::STRICT_VERSIONS_ENV)), "nightly.yml");
    assert!(wf.contains("fs.inotify.max_user_instances=512"), "nightly.yml");
    let docs = std::fs::read_to_string(repo().join("docs/kind-backend.md")).unwrap();
    assert!(docs.contains("| what | how it is verified | where |"), "docs/kind-backend.md: verification table");
    assert!(docs.contains("secure_path"), "docs/kind-backend.md: sudo secure_path note");
}
