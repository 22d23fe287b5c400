//! A twin lab's nodes reachable over real SSH (`rrlab up --ssh`), so that `rrlab check --ssh` can be run
//! against a live lab exactly as against production nodes.
//!
//! - A management network, as containerlab's `clab` network: a bridge `rrmgmt` in the lab's fabric namespace,
//!   one veth to the host (`rrm<lab hash>`, the subnet's `.1`) and one to every cluster node (`mgmt0`, `.2` on).
//!   The subnet is a /24 of 198.18.0.0/15 (RFC 2544's benchmarking range), chosen from the lab's name and
//!   skipping any the host already routes. Everything dies with the fabric namespace and the nodes.
//! - Keys generated per lab in `/run/rrlab/<lab>/ssh/`: the operator's key `id_ed25519` (ssh-keygen on the
//!   host); each node makes its own host keys (`ssh-keygen -A`), read back over the runtime's exec (a trusted
//!   channel) into `known_hosts`.
//! - Each node runs OpenSSH's sshd (the node image's `openssh-server`) on its management address, key login
//!   only; calico-node's paths (`/var/run/calico/bird.ctl`, `/etc/calico/confd/config`) are where a
//!   calico-node host has them.
//! - `inventory.yaml` in the format `rrlab check --ssh` reads ([`crate::remote`]): `runs: service`.
//!
//! Docker runtime only: a netns node shares the host's filesystem, so sshd there would show the host's files.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::converge::{fan_out, FAN_OUT};
use super::{lab_dir, node_ref, LabError};
use crate::model::topology::Topology;
use crate::runtime::{self, Runtime, RuntimeKind};

/// The range management subnets are taken from (RFC 2544, never routed on the Internet).
pub const MGMT_RANGE: &str = "198.18.0.0/15";
/// The management bridge in the fabric namespace.
pub const MGMT_BRIDGE: &str = "rrmgmt";
/// The node's management interface.
pub const MGMT_IFACE: &str = "mgmt0";

/// Where a lab's SSH files live.
pub fn ssh_dir(lab: &str) -> PathBuf {
    lab_dir(lab).join("ssh")
}

/// The inventory `rrlab check --ssh` reads for this lab.
pub fn inventory_path(lab: &str) -> PathBuf {
    ssh_dir(lab).join("inventory.yaml")
}

/// `--ssh` before anything of the lab exists: the runtime and the host's tools.
pub fn preflight(rt: RuntimeKind, topo: &Topology) -> Result<(), LabError> {
    if rt != RuntimeKind::Docker {
        return Err(LabError::Other(format!(
            "--ssh needs the docker runtime (--runtime docker): a {rt} node shares the host's filesystem, so an sshd in it would show the host's files, not the node's"
        )));
    }
    let nodes = cluster_nodes(topo).len();
    if nodes > 253 {
        return Err(LabError::Other(format!("--ssh: {nodes} nodes do not fit a /24 management subnet (253 at most)")));
    }
    // `ssh-keygen -?` prints its usage and exits 1: only a program that cannot be started is missing.
    if crate::process::run(&["ssh-keygen", "-?"], None).is_err() {
        return Err(LabError::Other("--ssh needs ssh-keygen on the host (apt-get install openssh-client)".into()));
    }
    Ok(())
}

fn cluster_nodes(topo: &Topology) -> Vec<String> {
    topo.clusters.iter().flat_map(|c| c.nodes.iter().map(|n| n.name.clone())).collect()
}

/// The lab's management subnet: the /24 of [`MGMT_RANGE`] its name hashes to, or the next one that no route
/// of the host overlaps.
pub fn mgmt_subnet(lab: &str, host_routes: &[Ipv4Net]) -> Result<Ipv4Net, LabError> {
    use sha2::{Digest, Sha256};
    let range: Ipv4Net = MGMT_RANGE.parse().expect("a CIDR");
    let subnets: Vec<Ipv4Net> = range.subnets(24).expect("/15 splits into /24s").collect();
    let start = Sha256::digest(lab.as_bytes()).iter().take(2).fold(0usize, |a, b| a * 256 + *b as usize);
    (0..subnets.len())
        .map(|i| subnets[(start + i) % subnets.len()])
        .find(|s| {
            !host_routes.iter().any(|r| r.prefix_len() > 0 && (r.contains(&s.network()) || s.contains(&r.network())))
        })
        .ok_or_else(|| LabError::Other(format!("--ssh: every /24 of {MGMT_RANGE} is routed on this host already")))
}

/// The `i`-th node's management address (`.1` is the host's).
pub fn node_addr(subnet: Ipv4Net, i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 2 + i as u32)
}

/// What a node runs to serve SSH: the operator's key authorised, its own host keys made (the image's, made
/// when it was built, would be every node's), sshd on `listen`, key login only; prints the node's ed25519
/// host key. calico-node ships BIRD's client as `birdcl`; Debian's bird ships it as `birdc`: linked.
pub fn node_script(authorized_key: &str, listen: Ipv4Addr) -> String {
    let key = authorized_key.trim().replace('\'', "");
    format!(
        "set -e; mkdir -p /root/.ssh /run/sshd; chmod 700 /root/.ssh; printf '%s\\n' '{key}' > /root/.ssh/authorized_keys; chmod 600 /root/.ssh/authorized_keys; \
         rm -f /etc/ssh/ssh_host_*; ssh-keygen -A -q >/dev/null; \
         command -v birdcl >/dev/null || ln -s /usr/sbin/birdc /usr/local/bin/birdcl; \
         /usr/sbin/sshd -o ListenAddress={listen} -o PermitRootLogin=prohibit-password -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no -o UsePAM=no -E /var/log/rrlab-sshd.log; \
         cat /etc/ssh/ssh_host_ed25519_key.pub"
    )
}

/// One `known_hosts` line: the address (port 22) and the host key's type and base64, without its comment.
pub fn known_hosts_line(addr: Ipv4Addr, host_key_pub: &str) -> Result<String, String> {
    let mut f = host_key_pub.split_whitespace();
    match (f.next(), f.next()) {
        (Some(t), Some(b)) if t.starts_with("ssh-") || t.starts_with("ecdsa-") => Ok(format!("{addr} {t} {b}")),
        _ => Err(format!("not an OpenSSH public key: {:?}", host_key_pub.trim())),
    }
}

/// The inventory of a lab whose nodes are at `addrs`.
pub fn inventory_yaml(lab: &str, addrs: &[(String, Ipv4Addr)]) -> String {
    let mut y = format!(
        "# rrlab ssh inventory of lab {lab} (written by `rrlab up --ssh`): how to reach each node's calico-node\n\
         user: root\nport: 22\nidentity: id_ed25519\nknown_hosts: known_hosts\ncalico-node:\n  runs: service\n  socket: {}\n  confd: {}\nnodes:\n",
        crate::backend::observe::BIRD_SOCKET,
        crate::backend::observe::CONFD_DIR
    );
    for (n, a) in addrs {
        y.push_str(&format!("  {n}: {{host: {a}}}\n"));
    }
    y
}

/// The host's IPv4 routes (main table), to keep the management subnet clear of them.
fn host_routes() -> Vec<Ipv4Net> {
    let Ok(text) = runtime::cmd(&["ip", "-j", "-4", "route", "show", "table", "main"]) else { return Vec::new() };
    crate::observe::parse_ip_route_json(&text)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.dst.to_string().parse::<Ipv4Net>().ok())
        .collect()
}

/// Build the management network, start sshd on every cluster node and write the keys, `known_hosts` and the
/// inventory; returns the inventory's path.
pub fn setup(lab: &str, topo: &Topology, rt: &dyn Runtime, tag: &str) -> Result<PathBuf, LabError> {
    let io = |p: &Path, e: std::io::Error| LabError::Io(format!("{}: {e}", p.display()));
    let dir = ssh_dir(lab);
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let subnet = mgmt_subnet(lab, &host_routes())?;
    let fabric = runtime::fabric_ns(lab);
    runtime::in_ns(&fabric, &["ip", "link", "add", MGMT_BRIDGE, "type", "bridge"])?;
    runtime::in_ns(&fabric, &["ip", "link", "set", MGMT_BRIDGE, "up"])?;
    // The host's end, in rrlab's own network namespace (the host's).
    let host_if = format!("rrm{tag}");
    runtime::veth(&format!("{tag}mh"), &std::process::id().to_string(), &host_if, &fabric, "rrmh")?;
    runtime::in_ns(&fabric, &["ip", "link", "set", "rrmh", "master", MGMT_BRIDGE])?;
    let host_addr = format!("{}/24", Ipv4Addr::from(u32::from(subnet.network()) + 1));
    runtime::cmd(&["ip", "addr", "add", &host_addr, "dev", &host_if])?;
    let key = dir.join("id_ed25519");
    let key_path = key.display().to_string();
    runtime::cmd(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", &format!("rrlab-{lab}"), "-f", &key_path])?;
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).map_err(|e| io(&key, e))?;
    let nodes = cluster_nodes(topo);
    let indexed: Vec<(usize, &String)> = nodes.iter().enumerate().collect();
    let lines = fan_out(&indexed, FAN_OUT, |(i, name)| -> Result<String, LabError> {
        let n = node_ref(lab, name);
        let h = rt.netns_handle(&n)?;
        runtime::veth(&format!("{tag}m{i}"), &h, MGMT_IFACE, &fabric, &format!("rrm{i}"))?;
        runtime::in_ns(&fabric, &["ip", "link", "set", &format!("rrm{i}"), "master", MGMT_BRIDGE])?;
        let addr = node_addr(subnet, *i);
        runtime::exec_ok(rt, &n, &["ip", "addr", "add", &format!("{addr}/24"), "dev", MGMT_IFACE])?;
        let host_key = runtime::exec_ok(rt, &n, &["sh", "-c", &node_script(&pubkey, addr)])?;
        known_hosts_line(addr, &host_key).map_err(|e| LabError::Other(format!("{name}: its sshd's host key: {e}")))
    })
    .into_iter()
    .collect::<Result<Vec<String>, LabError>>()?;
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, lines.join("\n") + "\n").map_err(|e| io(&kh, e))?;
    let addrs: Vec<(String, Ipv4Addr)> =
        nodes.iter().enumerate().map(|(i, n)| (n.clone(), node_addr(subnet, i))).collect();
    let inv = inventory_path(lab);
    std::fs::write(&inv, inventory_yaml(lab, &addrs)).map_err(|e| io(&inv, e))?;
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mgmt_subnet_is_a_24_of_the_range_clear_of_the_hosts_routes() {
        let range: Ipv4Net = MGMT_RANGE.parse().unwrap();
        let s = mgmt_subnet("hybrid-rr", &[]).unwrap();
        assert_eq!(s.prefix_len(), 24);
        assert!(range.contains(&s.network()), "{s}");
        // Reproducible per lab name, different for another lab (here).
        assert_eq!(mgmt_subnet("hybrid-rr", &[]).unwrap(), s);
        assert_ne!(mgmt_subnet("two-clusters", &[]).unwrap(), s);
        // A host route over it moves it on; the default route does not count.
        let taken: Ipv4Net = s.to_string().parse().unwrap();
        let moved = mgmt_subnet("hybrid-rr", &[taken, "0.0.0.0/0".parse().unwrap()]).unwrap();
        assert_ne!(moved, s);
        assert!(range.contains(&moved.network()));
        // A route covering the whole range leaves nothing.
        let e = mgmt_subnet("hybrid-rr", &["198.16.0.0/12".parse().unwrap()]).unwrap_err().to_string();
        assert!(e.contains("every /24 of 198.18.0.0/15"), "{e}");
    }

    #[test]
    fn node_addresses_start_after_the_hosts() {
        let s: Ipv4Net = "198.18.7.0/24".parse().unwrap();
        assert_eq!(node_addr(s, 0), "198.18.7.2".parse::<Ipv4Addr>().unwrap());
        assert_eq!(node_addr(s, 252), "198.18.7.254".parse::<Ipv4Addr>().unwrap());
    }

    #[test]
    fn node_script_serves_key_login_only_on_the_management_address() {
        let s = node_script("ssh-ed25519 AAAAC3Nza rrlab-x\n", "198.18.7.3".parse().unwrap());
        assert!(s.contains("'ssh-ed25519 AAAAC3Nza rrlab-x' > /root/.ssh/authorized_keys"), "{s}");
        assert!(s.contains("ListenAddress=198.18.7.3"));
        assert!(s.contains("PasswordAuthentication=no") && s.contains("PermitRootLogin=prohibit-password"));
        assert!(s.ends_with("cat /etc/ssh/ssh_host_ed25519_key.pub"));
        // Each node its own host keys, not the image's.
        assert!(s.contains("rm -f /etc/ssh/ssh_host_*; ssh-keygen -A"), "{s}");
        // A quote in a key cannot end the shell word.
        assert!(!node_script("ssh-ed25519 A'B", "198.18.7.3".parse().unwrap()).contains("A'B"));
    }

    #[test]
    fn known_hosts_lines_drop_the_comment_and_refuse_what_is_not_a_key() {
        let a: Ipv4Addr = "198.18.7.2".parse().unwrap();
        assert_eq!(
            known_hosts_line(a, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK root@hybrid-worker\n").unwrap(),
            "198.18.7.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK"
        );
        assert!(known_hosts_line(a, "cat: /etc/ssh/ssh_host_ed25519_key.pub: No such file").is_err());
        assert!(known_hosts_line(a, "").is_err());
    }

    #[test]
    fn inventory_names_every_node_and_calico_nodes_paths() {
        let y = inventory_yaml(
            "l",
            &[("a1".into(), "198.18.7.2".parse().unwrap()), ("a2".into(), "198.18.7.3".parse().unwrap())],
        );
        assert!(y.contains("identity: id_ed25519\nknown_hosts: known_hosts\n"), "{y}");
        assert!(
            y.contains("  runs: service\n  socket: /var/run/calico/bird.ctl\n  confd: /etc/calico/confd/config\n"),
            "{y}"
        );
        assert!(y.ends_with("nodes:\n  a1: {host: 198.18.7.2}\n  a2: {host: 198.18.7.3}\n"), "{y}");
        let docs = crate::model::yaml::parse_documents(&y).unwrap();
        assert_eq!(docs.len(), 1);
    }
}
