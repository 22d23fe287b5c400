//! Every version the kind backend pins, in one place. Bump deliberately: change the constant, re-read the
//! source named next to it, and update `.github/workflows/nightly.yml` (a unit test fails while the two
//! disagree) and `docs/kind-backend.md`.
//!
//! Where each pin came from (read on 2026-11-25 from snapshots of the upstream repositories):
//! - kind `v0.27.0`: the kind release Calico v3.30's own CI uses (`KIND_VERSION=v0.27.0` in
//!   `metadata.mk` of projectcalico/calico at tag v3.30.7).
//! - `kindest/node:v1.32.2@sha256:f226…142f`: the default node image of kind v0.27.0
//!   (`pkg/apis/config/defaults/image.go` at kubernetes-sigs/kind tag v0.27.0). Kubernetes 1.32 is the
//!   version Calico v3.30 builds and tests against (`K8S_VERSION=v1.32.13` in the same `metadata.mk`).
//! - kubectl `v1.32.2`: the same Kubernetes release as the node image.
//! - Calico `v3.30.7`: the newest v3.30 patch release (tag v3.30.7 of projectcalico/calico, 2026-03-18;
//!   first entry of `calico_versioned_docs/version-3.30/releases.json` in tigera/docs).
//! - `calico.yaml` sha256 `ed10…1a36`: computed here from `manifests/calico.yaml` at tag v3.30.7 (the file
//!   raw.githubusercontent.com serves for that tag); its images are `docker.io/calico/{cni,node,
//!   kube-controllers}:v3.30.7`.
//! - calicoctl: the release asset `calicoctl-linux-<arch>` of the same release, verified against the
//!   release's `SHA256SUMS` (Calico's release tooling, `release/pkg/manager/calico/manager.go`, writes it
//!   for `sha256sum -c --ignore-missing SHA256SUMS`); install URL as in the v3.30 docs
//!   (`operations/calicoctl/install.mdx`).
//! - containerlab `0.79.0`: the newest release in the snapshot (tag v0.79.0, 2026-08-21); the deb asset
//!   name follows its `.goreleaser.yml` (`containerlab_<version>_linux_<arch>.deb`, plus `checksums.txt`).
//! - pod image `busybox:1.36.1@sha256:73aa…1662`: the multi-arch index digest registries resolve
//!   `busybox:1.36` / `busybox:1.36.1` to (`Image ID: docker.io/library/busybox@sha256:73aaf0…` in a posted
//!   `kubectl describe pod`); it has `sh`, `sleep` and `ping`.
//!
//! Not pinned here: the WAN node's image, which the topology file names (`ghcr.io/srl-labs/network-multitool`,
//! by tag); Calico's own images are pinned by tag through the manifest's sha256, not by digest.

/// kind, the CLI that creates the clusters.
pub const KIND_VERSION: &str = "v0.27.0";
/// The node image every kind cluster boots, by digest.
pub const KIND_NODE_IMAGE: &str =
    "kindest/node:v1.32.2@sha256:f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f";
/// kubectl, matching the node image's Kubernetes release.
pub const KUBECTL_VERSION: &str = "v1.32.2";
/// Calico (manifest, calico-node, calicoctl).
pub const CALICO_VERSION: &str = "v3.30.7";
/// sha256 of `manifests/calico.yaml` at [`CALICO_VERSION`].
pub const CALICO_MANIFEST_SHA256: &str = "ed105288f27c7ba4cae143bcaa3f6425f02d84fa94a4786cc8e3d371412c1a36";
/// containerlab (without the `v` its tags carry).
pub const CONTAINERLAB_VERSION: &str = "0.79.0";
/// The image of the probe pods rrlab puts on every node.
pub const POD_IMAGE: &str =
    "docker.io/library/busybox:1.36.1@sha256:73aaf090f3d85aa34ee199857f03fa3a95c8ede2ffd4cc2cdb5b94e566b11662";

/// The probe pods' image by tag, as the pods name it: `kind load docker-image` cannot load an image by
/// digest (kubernetes-sigs/kind#2394, open), so the host pulls [`POD_IMAGE`]'s digest, tags the result with
/// this name, loads that, and the pods use it with `imagePullPolicy: IfNotPresent`.
pub const POD_IMAGE_TAG: &str = "docker.io/library/busybox:1.36.1";

/// [`POD_IMAGE`] as a digest-only reference (`docker.io/library/busybox@sha256:…`), what the host pulls.
pub fn pod_image_by_digest() -> String {
    let (name_tag, digest) = POD_IMAGE.split_once('@').unwrap_or((POD_IMAGE, ""));
    let name = name_tag.rsplit_once(':').map(|(n, _)| n).unwrap_or(name_tag);
    format!("{name}@{digest}")
}

/// The images of the pinned `manifests/calico.yaml` (tag v3.30.7: `docker.io/calico/cni:v3.30.7` for the
/// `upgrade-ipam` and `install-cni` init containers, `docker.io/calico/node:v3.30.7` for `mount-bpffs` and
/// `calico-node`, `docker.io/calico/kube-controllers:v3.30.7`; every one `imagePullPolicy: IfNotPresent`,
/// so images loaded into the nodes are used), from `registry` instead of `docker.io` when given.
pub fn calico_images(registry: Option<&str>) -> Vec<String> {
    let r = registry.map(|r| r.trim_end_matches('/')).unwrap_or("docker.io");
    ["cni", "node", "kube-controllers"].iter().map(|n| format!("{r}/calico/{n}:{CALICO_VERSION}")).collect()
}

/// A host CPU architecture as release assets name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// This machine's architecture (amd64 for anything that is not aarch64).
    pub fn host() -> Arch {
        if std::env::consts::ARCH == "aarch64" {
            Arch::Arm64
        } else {
            Arch::Amd64
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

/// The pinned Calico manifest.
pub fn calico_manifest_url() -> String {
    format!("https://raw.githubusercontent.com/projectcalico/calico/{CALICO_VERSION}/manifests/calico.yaml")
}

fn calico_release() -> String {
    format!("https://github.com/projectcalico/calico/releases/download/{CALICO_VERSION}")
}

/// The name of the calicoctl release asset for `arch`.
pub fn calicoctl_asset(arch: Arch) -> String {
    format!("calicoctl-linux-{}", arch.as_str())
}

/// The pinned calicoctl binary.
pub fn calicoctl_url(arch: Arch) -> String {
    format!("{}/{}", calico_release(), calicoctl_asset(arch))
}

/// The checksums of every asset of the pinned Calico release.
pub fn calico_sha256sums_url() -> String {
    format!("{}/SHA256SUMS", calico_release())
}

/// The pinned kind binary (its checksum is the same URL plus `.sha256sum`).
pub fn kind_url(arch: Arch) -> String {
    format!("https://github.com/kubernetes-sigs/kind/releases/download/{KIND_VERSION}/kind-linux-{}", arch.as_str())
}

/// The pinned kubectl binary (its checksum is the same URL plus `.sha256`).
pub fn kubectl_url(arch: Arch) -> String {
    format!("https://dl.k8s.io/release/{KUBECTL_VERSION}/bin/linux/{}/kubectl", arch.as_str())
}

/// The pinned containerlab deb package.
pub fn containerlab_deb_url(arch: Arch) -> String {
    format!(
        "https://github.com/srl-labs/containerlab/releases/download/v{v}/containerlab_{v}_linux_{a}.deb",
        v = CONTAINERLAB_VERSION,
        a = arch.as_str()
    )
}

/// The checksums of every asset of the pinned containerlab release.
pub fn containerlab_checksums_url() -> String {
    format!("https://github.com/srl-labs/containerlab/releases/download/v{CONTAINERLAB_VERSION}/checksums.txt")
}

/// Every pin as `(name, value)`, for reports and the nightly-workflow consistency test.
pub fn all() -> Vec<(&'static str, &'static str)> {
    vec![
        ("KIND_VERSION", KIND_VERSION),
        ("KIND_NODE_IMAGE", KIND_NODE_IMAGE),
        ("KUBECTL_VERSION", KUBECTL_VERSION),
        ("CALICO_VERSION", CALICO_VERSION),
        ("CALICO_MANIFEST_SHA256", CALICO_MANIFEST_SHA256),
        ("CONTAINERLAB_VERSION", CONTAINERLAB_VERSION),
        ("POD_IMAGE", POD_IMAGE),
        ("POD_IMAGE_TAG", POD_IMAGE_TAG),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_exact() {
        assert!(CALICO_VERSION.starts_with("v3.30."), "the kind backend runs Calico v3.30");
        assert!(KIND_NODE_IMAGE.contains("@sha256:") && KIND_NODE_IMAGE.rsplit(':').next().unwrap().len() == 64);
        assert!(POD_IMAGE.contains("@sha256:") && POD_IMAGE.rsplit(':').next().unwrap().len() == 64);
        assert_eq!(CALICO_MANIFEST_SHA256.len(), 64);
        assert!(CALICO_MANIFEST_SHA256.chars().all(|c| c.is_ascii_hexdigit()));
        // kubectl and the node image are the same Kubernetes release.
        assert!(KIND_NODE_IMAGE.starts_with(&format!("kindest/node:{KUBECTL_VERSION}@")));
    }

    #[test]
    fn urls() {
        assert_eq!(
            calico_manifest_url(),
            "https://raw.githubusercontent.com/projectcalico/calico/v3.30.7/manifests/calico.yaml"
        );
        assert_eq!(
            calicoctl_url(Arch::Amd64),
            "https://github.com/projectcalico/calico/releases/download/v3.30.7/calicoctl-linux-amd64"
        );
        assert_eq!(
            calico_sha256sums_url(),
            "https://github.com/projectcalico/calico/releases/download/v3.30.7/SHA256SUMS"
        );
        assert_eq!(
            kind_url(Arch::Arm64),
            "https://github.com/kubernetes-sigs/kind/releases/download/v0.27.0/kind-linux-arm64"
        );
        assert_eq!(kubectl_url(Arch::Amd64), "https://dl.k8s.io/release/v1.32.2/bin/linux/amd64/kubectl");
        assert_eq!(
            containerlab_deb_url(Arch::Amd64),
            "https://github.com/srl-labs/containerlab/releases/download/v0.79.0/containerlab_0.79.0_linux_amd64.deb"
        );
    }
}
