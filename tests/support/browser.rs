//! A real browser for the HTML report: Debian's `chromium`, headless. Renders a file to a PNG and dumps the DOM
//! after its script ran, and counts what was painted in the PNG.

use std::path::{Path, PathBuf};
use std::process::Command;

use rrlab::model::topology::NodeKind;
use rrlab::runner::RunResult;

/// The Chromium binary: `$RRLAB_CHROMIUM`, else `chromium` (Debian) or `chromium-browser` on `PATH`.
pub fn chromium() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("RRLAB_CHROMIUM") {
        return Ok(PathBuf::from(p));
    }
    for name in ["chromium", "chromium-browser"] {
        if let Ok(o) = Command::new("sh").args(["-c", &format!("command -v {name}")]).output() {
            let p = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if o.status.success() && !p.is_empty() {
                return Ok(PathBuf::from(p));
            }
        }
    }
    Err("no Chromium: install Debian's `chromium` package (.ci/run does), or set RRLAB_CHROMIUM".into())
}

fn headless(file: &Path, extra: &[String]) -> Result<std::process::Output, String> {
    let bin = chromium()?;
    let url = format!("file://{}", file.canonicalize().map_err(|e| format!("{}: {e}", file.display()))?.display());
    // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    let mut args: Vec<String> =
        ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--disable-extensions"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.extend(extra.iter().cloned());
    args.push(url);
    let out = Command::new(&bin).args(&args).output().map_err(|e| format!("{}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} exited with {}: {}",
            bin.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}

/// The DOM after the page's scripts ran (`--dump-dom`).
pub fn dump_dom(file: &Path) -> Result<String, String> {
    let out = headless(file, &["--dump-dom".to_string()])?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A PNG screenshot of the page at `width`×`height` CSS pixels.
pub fn screenshot(file: &Path, png: &Path, width: u32, height: u32) -> Result<(), String> {
    headless(file, &[format!("--screenshot={}", png.display()), format!("--window-size={width},{height}")])?;
    if !png.exists() {
        return Err(format!("Chromium wrote no {}", png.display()));
    }
    Ok(())
}

/// The `data-*` attributes of the `<body>` tag of a dumped DOM.
pub fn body_data(dom: &str) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    let Some(start) = dom.find("<body") else { return m };
    let tag = &dom[start..start + dom[start..].find('>').unwrap_or(0)];
    for part in tag.split(" data-").skip(1) {
        if let Some((k, rest)) = part.split_once("=\"") {
            let v = rest.split('"').next().unwrap_or_default();
            m.insert(k.to_string(), v.to_string());
        }
    }
    m
}

/// A decoded PNG: (width, height, RGBA pixels).
pub fn decode_png(png: &Path) -> Result<(u32, u32, Vec<u8>), String> {
    let f = std::fs::File::open(png).map_err(|e| format!("{}: {e}", png.display()))?;
    let mut dec = png::Decoder::new(std::io::BufReader::new(f));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::ALPHA);
    let mut reader = dec.read_info().map_err(|e| format!("{}: {e}", png.display()))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(|e| format!("{}: {e}", png.display()))?;
    buf.truncate(info.buffer_size());
    let rgba = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::GrayscaleAlpha => buf.chunks(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(),
        other => return Err(format!("unexpected PNG colour type {other:?}")),
    };
    Ok((info.width, info.height, rgba))
}

/// Pixels within `tolerance` of an `#rrggbb` colour.
pub fn pixels_of(rgba: &[u8], rgb: [u8; 3], tolerance: u8) -> usize {
    rgba.chunks(4).filter(|p| (0..3).all(|i| p[i].abs_diff(rgb[i]) <= tolerance)).count()
}

/// Render `page` (the HTML report of `run`, whose text is `source`) in Chromium and check what the browser laid
/// out against the report and the run: every step, every peering-graph node (each lab node after each step,
/// plus external peers) and session, every loss bar, every topology node, one failure marker per failing step
/// and one "failed as intended" marker per seeded fault; then a 1400×4000 screenshot to `png`, in which
/// Established sessions (and, when the run lost packets, loss bars) must be painted. Ok: what was seen.
pub fn check_report(page: &Path, source: &str, run: &RunResult, png: &Path) -> Result<String, String> {
    let dom = dump_dom(page)?;
    let data = body_data(&dom);
    if data.get("rendered").map(String::as_str) != Some("yes") {
        return Err(format!("{}: the report's script did not run in Chromium (body: {data:?})", page.display()));
    }
    let n = |k: &str| -> usize { data.get(k).and_then(|v| v.parse().ok()).unwrap_or(0) };
    let want = |needle: &str| source.matches(needle).count();
    let mut wrong = Vec::new();
    let mut check = |what: &str, got: usize, expected: usize| {
        if got != expected {
            wrong.push(format!("{what}: the browser laid out {got}, the report has {expected}"));
        }
    };
    let snaps: usize = run.steps.iter().filter_map(|s| s.snapshot.as_ref()).map(|s| s.nodes.len()).sum();
    check("steps", n("rendered-steps"), run.steps.len());
    check("peering-graph nodes", n("rendered-peers"), want("<g class=\"pnode"));
    check(
        "lab nodes and external peers in the peering graphs (after every step)",
        n("rendered-peers"),
        snaps + want("<g class=\"pnode external"),
    );
    check("sessions", n("rendered-sessions"), want("<line class=\"session") + want("<g class=\"session"));
    check("loss bars", n("rendered-loss"), want("class=\"loss\""));
    check(
        "topology nodes (cluster nodes, WAN, site bridges)",
        n("rendered-topology-nodes"),
        run.topology.nodes.values().filter(|n| n.kind != NodeKind::K8sKind).count(),
    );
    check("failure markers", n("rendered-failures"), run.steps.iter().filter(|s| !s.verdict().ok()).count());
    check(
        "seeded faults marked as failing as intended",
        n("rendered-xfail"),
        run.steps.iter().filter(|s| s.intended.is_some() && s.verdict().ok()).count(),
    );
    screenshot(page, png, 1400, 4000)?;
    let (w, h, rgba) = decode_png(png)?;
    let red = pixels_of(&rgba, [0xe5, 0x39, 0x35], 6);
    let green = pixels_of(&rgba, [0x2e, 0x7d, 0x32], 8);
    if (w, h) != (1400, 4000) {
        wrong.push(format!("screenshot is {w}x{h}, not 1400x4000"));
    }
    let established = run
        .steps
        .iter()
        .filter_map(|s| s.snapshot.as_ref())
        .any(|s| s.nodes.iter().any(|n| n.sessions.as_ref().is_ok_and(|v| v.iter().any(|x| x.established()))));
    if established && green < 200 {
        wrong.push(format!("{green} pixels of Established sessions painted (expected hundreds)"));
    }
    if run.timelines.values().any(|t| t.lost_total() > 0) && red < 50 {
        wrong.push(format!("{red} pixels of loss bars painted, though the run lost packets"));
    }
    if !wrong.is_empty() {
        return Err(format!("{} in Chromium:\n  {}", page.display(), wrong.join("\n  ")));
    }
    Ok(format!(
        "{} steps, {} peering nodes, {} sessions, {} loss bars, {} failures, {} seeded faults as intended laid out; screenshot {} ({w}x{h}, {red} loss-bar and {green} session pixels)",
        n("rendered-steps"),
        n("rendered-peers"),
        n("rendered-sessions"),
        n("rendered-loss"),
        n("rendered-failures"),
        n("rendered-xfail"),
        png.display()
    ))
}
