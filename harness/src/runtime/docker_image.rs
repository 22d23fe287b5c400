//! The docker runtime's node image, `rrlab/node:<recipe hash>`: Debian bookworm with BIRD 1.6.8 and the tools a
//! calico-node has, built locally through the Docker API.
//! - Where a registry answers (the pinned base image is present or can be pulled within [`PULL_TIMEOUT`]): a
//!   Dockerfile on `debian:bookworm` pinned by digest, sent as an in-memory tar context.
//! - Where none answers (this project's machines): `mmdebstrap … -` streamed into the API's image import
//!   (`POST /images/create?fromSrc=-`, what `docker import` does) with `CMD ["sleep","infinity"]`. mmdebstrap
//!   with no mirror uses the host's apt sources, so on a host that is not Debian (Ubuntu runners, laptops) the
//!   Debian mirror (`RRLAB_DEBIAN_MIRROR`, default deb.debian.org) and Debian's archive keyring are passed.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::StreamExt;

use super::DockerError;

/// Packages of the node image. Changing this list changes the image tag.
/// openssh-server: `rrlab up --ssh` (nodes reachable as production nodes are, for `rrlab check --ssh`).
pub const PACKAGES: &[&str] =
    &["bird", "iproute2", "iptables", "ipset", "iputils-ping", "procps", "tcpdump", "openssh-server"];
pub const SUITE: &str = "bookworm";
/// The Dockerfile's base: `debian:bookworm-20251229`, linux/amd64 manifest (docker-library/repo-info,
/// debuerreotype artifacts 39e93287). Only used where a registry answers.
pub const BASE_IMAGE: &str =
    "debian:bookworm-20251229@sha256:4216e8fe27fdd803d2822d08ed9de39825a41a47e34c32b71a23ac074f91eaf4";
/// How long the base image pull may take before the registry counts as unreachable.
pub const PULL_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
pub const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// What the image runs when a container starts without a command.
pub const CMD: &str = r#"CMD ["sleep","infinity"]"#;

/// The recipe the tag is a hash of: a new package list is a new image (openssh-server came with `rrlab up --ssh`).
pub fn recipe() -> String {
    format!("mmdebstrap --variant=apt --include={} {SUITE}", PACKAGES.join(","))
}

/// The image tag: a hash of the recipe.
pub fn image_tag() -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(recipe().as_bytes());
    format!("rrlab/node:{}", h.iter().take(6).map(|b| format!("{b:02x}")).collect::<String>())
}

/// A field of an os-release file (`ID=ubuntu`, `ID="debian"`).
pub fn os_release_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).map(|v| v.trim().trim_matches(['"', '\'']))
}

/// Where mmdebstrap fetches from: `None` = the host's apt sources (a Debian host, no override).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub mirror: Option<String>,
    pub keyring: Option<String>,
}

/// The source for a host given its os-release text, `RRLAB_DEBIAN_MIRROR` and whether Debian's keyring is
/// installed. On a host that is not Debian the keyring is required.
pub fn choose_source(os_release: &str, mirror_env: Option<&str>, keyring_present: bool) -> Result<Source, DockerError> {
    let mirror_env = mirror_env.map(str::trim).filter(|m| !m.is_empty());
    if os_release_field(os_release, "ID") == Some("debian") {
        return Ok(Source { mirror: mirror_env.map(String::from), keyring: None });
    }
    if !keyring_present {
        let id = os_release_field(os_release, "ID").unwrap_or("unknown");
        return Err(DockerError::Image(format!(
            "this host is {id}, not Debian: building the Debian node image needs Debian's archive keyring \
             ({DEBIAN_KEYRING}; apt-get install debian-archive-keyring)"
        )));
    }
    Ok(Source {
        mirror: Some(mirror_env.unwrap_or(DEFAULT_DEBIAN_MIRROR).to_string()),
        keyring: Some(DEBIAN_KEYRING.to_string()),
    })
}

/// mmdebstrap's command line: the rootfs as a tar on stdout, without BIRD's stock config (the agent writes its own).
pub fn mmdebstrap_argv(src: &Source) -> Vec<String> {
    let mut v = vec![
        "mmdebstrap".to_string(),
        "--quiet".into(),
        "--variant=apt".into(),
        format!("--include={}", PACKAGES.join(",")),
        r#"--customize-hook=rm -f "$1"/etc/bird/bird.conf"#.into(),
    ];
    if let Some(k) = &src.keyring {
        v.push(format!("--keyring={k}"));
    }
    v.push(SUITE.into());
    v.push("-".into());
    v.extend(src.mirror.clone());
    v
}

/// The Dockerfile of the registry path: the same packages on the pinned base.
pub fn dockerfile() -> String {
    format!(
        "FROM {BASE_IMAGE}\n\
         RUN apt-get update \\\n \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {} \\\n \
         && rm -rf /var/lib/apt/lists/* \\\n \
         && rm -f /etc/bird/bird.conf\n\
         {CMD}\n",
        PACKAGES.join(" ")
    )
}

/// The build context: a tar holding only the Dockerfile.
pub fn build_context() -> Result<Vec<u8>, DockerError> {
    let text = dockerfile();
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, "Dockerfile", text.as_bytes()).map_err(|e| DockerError::Io(e.to_string()))?;
    b.into_inner().map_err(|e| DockerError::Io(e.to_string()))
}

/// Build `tag` through `client`, by Dockerfile where the base image is available, else by mmdebstrap import.
pub async fn build(client: &bollard::Docker, tag: &str, progress: &(dyn Fn(&str) + Sync)) -> Result<(), DockerError> {
    if base_available(client, progress).await {
        progress(&format!("building {tag} from a Dockerfile on {BASE_IMAGE}"));
        build_from_dockerfile(client, tag, progress).await?;
    } else {
        import_mmdebstrap(client, tag, progress).await?;
    }
    client.inspect_image(tag).await.map_err(DockerError::api(format!("inspect {tag} after building it")))?;
    Ok(())
}

/// Is the pinned base image here, or can it be pulled within [`PULL_TIMEOUT`]?
async fn base_available(client: &bollard::Docker, progress: &(dyn Fn(&str) + Sync)) -> bool {
    if client.inspect_image(BASE_IMAGE).await.is_ok() {
        return true;
    }
    progress(&format!("pulling {BASE_IMAGE} (at most {}s)", PULL_TIMEOUT.as_secs()));
    let o = CreateImageOptionsBuilder::default().from_image(BASE_IMAGE).build();
    let pull = async {
        let mut s = client.create_image(Some(o), None, None);
        while let Some(r) = s.next().await {
            r?;
        }
        Ok::<(), bollard::errors::Error>(())
    };
    match tokio::time::timeout(PULL_TIMEOUT, pull).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            progress(&format!("no registry answers ({e}); building with mmdebstrap instead"));
            false
        }
        Err(_) => {
            progress("the registry did not answer in time; building with mmdebstrap instead");
            false
        }
    }
}

async fn build_from_dockerfile(
    client: &bollard::Docker,
    tag: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), DockerError> {
    let ctx = build_context()?;
    let o = BuildImageOptionsBuilder::default().dockerfile("Dockerfile").t(tag).rm(true).forcerm(true).build();
    let mut s = client.build_image(o, None, Some(bollard::body_full(ctx.into())));
    while let Some(r) = s.next().await {
        let info = r.map_err(DockerError::api(format!("build {tag}")))?;
        if let Some(line) = info.stream.as_deref().map(str::trim).filter(|l| l.starts_with("Step ")) {
            progress(line);
        }
    }
    Ok(())
}

/// `mmdebstrap … - | docker import --change 'CMD …' - tag`, with the pipe through the API.
async fn import_mmdebstrap(
    client: &bollard::Docker,
    tag: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), DockerError> {
    if Command::new("mmdebstrap").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        return Err(DockerError::Image(
            "mmdebstrap is needed to build the node image where no registry answers (apt-get install mmdebstrap)"
                .into(),
        ));
    }
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let src = choose_source(
        &os_release,
        std::env::var("RRLAB_DEBIAN_MIRROR").ok().as_deref(),
        std::path::Path::new(DEBIAN_KEYRING).exists(),
    )?;
    let argv = mmdebstrap_argv(&src);
    let t = Instant::now();
    progress(&format!(
        "building {tag}: {} | import (about 30 s)",
        argv.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect::<Vec<_>>().join(" ")
    ));
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| DockerError::Io(format!("mmdebstrap: {e}")))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let err_text = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // The rootfs tar streams from mmdebstrap's stdout into the request body; a failed mmdebstrap ends the body
    // with an error so that the daemon never imports a truncated rootfs.
    let sent = Arc::new(AtomicU64::new(0));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
    let counter = sent.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    if tx.blocking_send(Ok(bytes::Bytes::copy_from_slice(&buf[..n]))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
        let status = child.wait();
        let ok = status.as_ref().is_ok_and(|s| s.success());
        if !ok {
            let _ = tx.blocking_send(Err(std::io::Error::other("mmdebstrap failed")));
        }
        status
    });
    let body =
        bollard::body_try_stream(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
        ));
    let (repo, version) = tag.split_once(':').unwrap_or((tag, "latest"));
    let o = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(version)
        .changes(vec![CMD.to_string()])
        .build();
    let import = async {
        let mut s = client.create_image(Some(o), Some(body), None);
        let mut last = None;
        while let Some(r) = s.next().await {
            last = Some(r?);
        }
        Ok::<_, bollard::errors::Error>(last)
    };
    tokio::pin!(import);
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    let result = loop {
        tokio::select! {
            r = &mut import => break r,
            _ = tick.tick() => progress(&match sent.load(Ordering::Relaxed) >> 20 {
                0 => format!("{:.0}s: mmdebstrap is installing the packages", t.elapsed().as_secs_f64()),
                mib => format!("{:.0}s: {mib} MiB of rootfs imported", t.elapsed().as_secs_f64()),
            }),
        }
    };
    let status = reader.join().map_err(|_| DockerError::Io("mmdebstrap reader panicked".into()))?;
    let stderr = err_text.join().unwrap_or_default();
    match status {
        Ok(s) if s.success() => {}
        _ => {
            let _ = client.remove_image(tag, None::<bollard::query_parameters::RemoveImageOptions>, None).await;
            return Err(DockerError::Image(format!("building {tag}: mmdebstrap failed: {}", stderr.trim())));
        }
    }
    result.map_err(DockerError::api(format!("import {tag}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str =
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";
    const UBUNTU: &str =
        "PRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\nID_LIKE=debian\n";

    #[test]
    fn the_tag_is_the_recipes_hash_as_before() {
        assert_eq!(
            recipe(),
            "mmdebstrap --variant=apt --include=bird,iproute2,iptables,ipset,iputils-ping,procps,tcpdump,openssh-server bookworm"
        );
        assert_eq!(image_tag(), "rrlab/node:f61979f3d9d1");
    }

    #[test]
    fn os_release_fields() {
        assert_eq!(os_release_field(UBUNTU, "ID"), Some("ubuntu"));
        assert_eq!(os_release_field(UBUNTU, "ID_LIKE"), Some("debian"));
        assert_eq!(os_release_field("ID=\"debian\"\n", "ID"), Some("debian"));
        assert_eq!(os_release_field("", "ID"), None);
    }

    #[test]
    fn debian_hosts_use_their_apt_sources_unless_overridden() {
        assert_eq!(choose_source(DEBIAN, None, false).unwrap(), Source { mirror: None, keyring: None });
        assert_eq!(
            choose_source(DEBIAN, Some("http://mirror.local/debian"), false).unwrap(),
            Source { mirror: Some("http://mirror.local/debian".into()), keyring: None }
        );
        assert_eq!(choose_source(DEBIAN, Some(" "), true).unwrap().mirror, None);
    }

    #[test]
    fn other_hosts_get_debians_mirror_and_keyring() {
        let s = choose_source(UBUNTU, None, true).unwrap();
        assert_eq!(s, Source { mirror: Some(DEFAULT_DEBIAN_MIRROR.into()), keyring: Some(DEBIAN_KEYRING.into()) });
        let s = choose_source(UBUNTU, Some("http://m/debian"), true).unwrap();
        assert_eq!(s.mirror.as_deref(), Some("http://m/debian"));
        let e = choose_source(UBUNTU, None, false).unwrap_err().to_string();
        assert!(e.contains("ubuntu") && e.contains("apt-get install debian-archive-keyring"), "{e}");
        // No os-release at all: not known to be Debian.
        assert!(choose_source("", None, false).is_err());
    }

    #[test]
    fn mmdebstrap_argv_for_each_source() {
        let base = [
            "mmdebstrap",
            "--quiet",
            "--variant=apt",
            "--include=bird,iproute2,iptables,ipset,iputils-ping,procps,tcpdump,openssh-server",
            "--customize-hook=rm -f \"$1\"/etc/bird/bird.conf",
        ];
        let mut want: Vec<&str> = base.to_vec();
        want.extend(["bookworm", "-"]);
        assert_eq!(mmdebstrap_argv(&Source { mirror: None, keyring: None }), want);
        let mut want: Vec<&str> = base.to_vec();
        want.extend([
            "--keyring=/usr/share/keyrings/debian-archive-keyring.gpg",
            "bookworm",
            "-",
            "http://deb.debian.org/debian",
        ]);
        assert_eq!(mmdebstrap_argv(&choose_source(UBUNTU, None, true).unwrap()), want);
    }

    #[test]
    fn the_build_context_holds_the_dockerfile_only() {
        let ctx = build_context().unwrap();
        let mut a = tar::Archive::new(ctx.as_slice());
        let mut entries: Vec<(String, String)> = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            entries.push((e.path().unwrap().display().to_string(), s));
        }
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, "Dockerfile");
        let d = &entries[0].1;
        assert!(d.starts_with(&format!("FROM {BASE_IMAGE}\n")), "{d}");
        assert!(BASE_IMAGE.contains("@sha256:") && BASE_IMAGE.starts_with("debian:bookworm"));
        assert!(
            d.contains(
                "apt-get install -y --no-install-recommends bird iproute2 iptables ipset iputils-ping procps tcpdump"
            ),
            "{d}"
        );
        assert!(d.contains("rm -f /etc/bird/bird.conf"), "{d}");
        assert!(d.ends_with("CMD [\"sleep\",\"infinity\"]\n"), "{d}");
    }
}
