//! The SSH transport: one `ssh2` session per node, opened on first use (TCP connect timeout
//! [`CONNECT_TIMEOUT`]) and kept for every command of the check (a `Mutex` per node: one command at a time on
//! a node, nodes in parallel). The host key is checked against the inventory's known_hosts before anything
//! else is sent; only a [`CheckResult::Match`] is accepted ([`judge_host_key`]). Authentication is the
//! inventory's identity file, else the ssh agent.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use ssh2::{CheckResult, HostKeyType, KnownHostFileKind, Session};

use super::inventory::{remote_line, Inventory, NodeEntry};
use super::{RemoteError, Transport};
use crate::process::Output;

/// How long a TCP connect to a node's SSH server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// libssh2's timeout for the handshake and authentication.
pub const HANDSHAKE_TIMEOUT_MS: u32 = 10_000;
/// libssh2's timeout for each blocking call of a command (a large `show route all` included).
pub const COMMAND_TIMEOUT_MS: u32 = 30_000;

#[derive(Default)]
struct Conn {
    session: Option<Session>,
    /// crictl: calico-node's container id, found once.
    crictl_id: Option<String>,
}

/// SSH to every node of an [`Inventory`].
pub struct SshTransport {
    inv: Inventory,
    conns: BTreeMap<String, Mutex<Conn>>,
}

impl SshTransport {
    pub fn new(inv: Inventory) -> SshTransport {
        let conns = inv.nodes.keys().map(|n| (n.clone(), Mutex::default())).collect();
        SshTransport { inv, conns }
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inv
    }

    fn entry(&self, node: &str) -> Result<(&NodeEntry, &Mutex<Conn>), RemoteError> {
        match (self.inv.nodes.get(node), self.conns.get(node)) {
            (Some(e), Some(c)) => Ok((e, c)),
            _ => Err(RemoteError::MissingNodes {
                inventory: self.inv.file.display().to_string(),
                nodes: vec![node.to_string()],
            }),
        }
    }

    /// Run one remote line on a node, connecting first if need be; a failed session is dropped, so the next
    /// command connects again.
    fn run_line(&self, node: &str, conn: &mut Conn, line: &str) -> Result<Output, RemoteError> {
        let (e, _) = self.entry(node)?;
        if conn.session.is_none() {
            conn.session = Some(connect(node, e, &self.inv)?);
        }
        let s = conn.session.as_ref().expect("connected above");
        match exec(s, line) {
            Ok(o) => Ok(o),
            Err(message) => {
                conn.session = None;
                conn.crictl_id = None;
                Err(ssh_error(node, e, format!("`{line}`: {message}")))
            }
        }
    }

    /// Run argv on the node (`in_calico_node`: where calico-node runs).
    fn run(&self, node: &str, argv: &[&str], in_calico_node: bool) -> Result<Output, RemoteError> {
        let (e, m) = self.entry(node)?;
        let mut conn = m.lock().expect("ssh session");
        let cn = &self.inv.calico_node;
        if !in_calico_node {
            let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
            return self.run_line(node, &mut conn, &remote_line(e.sudo, &argv));
        }
        if let (Some(find), None) = (cn.crictl_id_command(), &conn.crictl_id) {
            let out = self.run_line(node, &mut conn, &remote_line(e.sudo, &find))?;
            let id = out.stdout.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string);
            match id {
                Some(id) if out.success() => conn.crictl_id = Some(id),
                _ => {
                    return Err(ssh_error(
                        node,
                        e,
                        format!("no running calico-node container (`{}`: {})", find.join(" "), out.detail()),
                    ))
                }
            }
        }
        let full = cn.wrap(argv, conn.crictl_id.as_deref());
        let out = self.run_line(node, &mut conn, &remote_line(e.sudo, &full))?;
        if !out.success() && cn.crictl_id_command().is_some() {
            // calico-node may have been restarted: find its container again next time.
            conn.crictl_id = None;
        }
        Ok(out)
    }
}

fn ssh_error(node: &str, e: &NodeEntry, message: String) -> RemoteError {
    RemoteError::Ssh { node: node.into(), user: e.user.clone(), host: e.host.clone(), port: e.port, message }
}

impl Transport for SshTransport {
    fn name(&self) -> &'static str {
        "ssh"
    }

    fn describe(&self) -> String {
        format!(
            "ssh (inventory {}: {} node{}, known_hosts {}, {})",
            self.inv.file.display(),
            self.inv.nodes.len(),
            if self.inv.nodes.len() == 1 { "" } else { "s" },
            self.inv.known_hosts.display(),
            self.inv.calico_node.describe()
        )
    }

    fn calico_node(&self, node: &str, argv: &[&str]) -> Result<Output, RemoteError> {
        self.run(node, argv, true)
    }

    fn host(&self, node: &str, argv: &[&str]) -> Result<Output, RemoteError> {
        self.run(node, argv, false)
    }

    fn bird_client(&self, _node: &str) -> String {
        self.inv.calico_node.birdcl.clone()
    }

    fn bird_socket(&self, _node: &str) -> String {
        self.inv.calico_node.socket.clone()
    }

    fn confd_dir(&self, _node: &str) -> String {
        self.inv.calico_node.confd.clone()
    }

    fn calico_node_log(&self, node: &str) -> Option<String> {
        let (e, m) = self.entry(node).ok()?;
        let mut conn = m.lock().ok()?;
        let argv = self.inv.calico_node.logs_command(conn.crictl_id.as_deref())?;
        let out = self.run_line(node, &mut conn, &remote_line(e.sudo, &argv)).ok()?;
        out.success().then(|| format!("{}{}", out.stdout, out.stderr))
    }

    fn reachable(&self) -> Option<BTreeSet<String>> {
        Some(self.inv.nodes.keys().cloned().collect())
    }

    fn require(&self, nodes: &BTreeSet<String>) -> Result<(), RemoteError> {
        self.inv.require(nodes)
    }

    fn connect(&self, nodes: &[String]) -> Result<(), RemoteError> {
        let r = crate::backend::observe::fan_out(nodes, |n| -> Result<(), RemoteError> {
            let (e, m) = self.entry(n)?;
            let mut conn = m.lock().expect("ssh session");
            if conn.session.is_none() {
                conn.session = Some(connect(n, e, &self.inv)?);
            }
            Ok(())
        });
        RemoteError::all(r.into_iter().filter_map(Result::err).collect())
    }
}

/// TCP to the node's SSH server, each resolved address tried with [`CONNECT_TIMEOUT`].
pub fn tcp_connect(node: &str, e: &NodeEntry, inventory: &str) -> Result<TcpStream, RemoteError> {
    let unreachable = |error: String| RemoteError::Unreachable {
        node: node.into(),
        host: e.host.clone(),
        port: e.port,
        inventory: inventory.to_string(),
        error,
    };
    let addrs: Vec<_> = (e.host.as_str(), e.port)
        .to_socket_addrs()
        .map_err(|err| unreachable(format!("cannot resolve {}: {err}", e.host)))?
        .collect();
    let mut last = format!("{} resolves to no address", e.host);
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {
                last = format!("{a}: no answer within {}s ({err})", CONNECT_TIMEOUT.as_secs())
            }
            Err(err) => last = format!("{a}: {err}"),
        }
    }
    Err(unreachable(last))
}

/// Connect, verify the host key, authenticate.
pub fn connect(node: &str, e: &NodeEntry, inv: &Inventory) -> Result<Session, RemoteError> {
    let tcp = tcp_connect(node, e, &inv.at(node))?;
    let fail = |what: &str, err: ssh2::Error| ssh_error(node, e, format!("{what}: {}", err.message()));
    let mut s = Session::new().map_err(|err| fail("cannot start libssh2", err))?;
    s.set_tcp_stream(tcp);
    s.set_timeout(HANDSHAKE_TIMEOUT_MS);
    // Something answered on the port but no SSH server spoke: as unreachable, with the inventory's line.
    s.handshake().map_err(|err| RemoteError::Unreachable {
        node: node.into(),
        host: e.host.clone(),
        port: e.port,
        inventory: inv.at(node),
        error: format!("the TCP connection was accepted but the SSH handshake failed: {}", err.message()),
    })?;
    verify_host_key(&s, node, e, &inv.known_hosts)?;
    match &e.identity {
        Some(key) => s.userauth_pubkey_file(&e.user, None, key, None).map_err(|err| {
            ssh_error(
                node,
                e,
                format!("authentication with the identity file {} failed: {}", key.display(), err.message()),
            )
        })?,
        None => s.userauth_agent(&e.user).map_err(|err| {
            ssh_error(
                node,
                e,
                format!(
                    "authentication through the ssh agent failed (no identity: in the inventory, so the agent): {}",
                    err.message()
                ),
            )
        })?,
    }
    if !s.authenticated() {
        return Err(ssh_error(node, e, "not authenticated".into()));
    }
    s.set_timeout(COMMAND_TIMEOUT_MS);
    Ok(s)
}

/// Run one line in a new channel of the session: stdout, stderr, exit status.
fn exec(s: &Session, line: &str) -> Result<Output, String> {
    let m = |what: &str, e: ssh2::Error| format!("{what}: {}", e.message());
    let mut ch = s.channel_session().map_err(|e| m("cannot open a channel", e))?;
    ch.exec(line).map_err(|e| m("cannot start the command", e))?;
    let mut out = Vec::new();
    ch.read_to_end(&mut out).map_err(|e| format!("reading its output: {e}"))?;
    let mut err = Vec::new();
    ch.stderr().read_to_end(&mut err).map_err(|e| format!("reading its stderr: {e}"))?;
    ch.wait_close().map_err(|e| m("closing the channel", e))?;
    let status = ch.exit_status().map_err(|e| m("no exit status", e))?;
    let signal = ch.exit_signal().ok().and_then(|x| x.exit_signal);
    Ok(Output {
        status: if signal.is_some() { None } else { Some(status) },
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

/// The key type as known_hosts writes it.
pub fn key_type_name(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// The key type of a known_hosts line (after an `@marker` if any).
pub fn line_key_type(line: &str) -> Option<&str> {
    let mut w = line.split_whitespace();
    let first = w.next()?;
    let _hosts = if first.starts_with('@') { w.next()? } else { first };
    w.next()
}

/// What the known_hosts file says about the node's key.
#[derive(Debug, Clone)]
pub struct HostKeyCheck {
    /// libssh2's verdict over the whole file.
    pub result: CheckResult,
    /// The first line with the host and another key, and that line's key type.
    pub mismatch: Option<(usize, String)>,
    /// The key type the node offered.
    pub offered: String,
    /// Lines libssh2 could not read (skipped).
    pub unreadable: Vec<usize>,
}

/// `ssh-keyscan` for the node, as the operator would run it.
pub fn keyscan_line(host: &str, port: u16, key_type: Option<&str>, known_hosts: &Path) -> String {
    let t = key_type.map(|t| format!("-t {} ", t.trim_start_matches("ssh-"))).unwrap_or_default();
    let p = if port == 22 { String::new() } else { format!("-p {port} ") };
    format!("ssh-keyscan {t}{p}{host} >> {}", known_hosts.display())
}

/// Accept the node only on a match; every other outcome is an error naming the node, its address and the
/// known_hosts file (with the line that has another key for it, when there is one).
pub fn judge_host_key(
    node: &str,
    host: &str,
    port: u16,
    known_hosts: &Path,
    c: &HostKeyCheck,
) -> Result<(), RemoteError> {
    let kh = known_hosts.display().to_string();
    match c.result {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => {
            let (line, hint) = match &c.mismatch {
                Some((l, t)) if *t != c.offered => (
                    Some(*l),
                    format!(
                        " (that line has an {t} key, the node offered {}: if the node really has such a key, add it after verifying it: `{}`)",
                        c.offered,
                        keyscan_line(host, port, Some(&c.offered), known_hosts)
                    ),
                ),
                Some((l, _)) => (Some(*l), String::new()),
                None => (None, String::new()),
            };
            Err(RemoteError::HostKeyMismatch {
                node: node.into(),
                host: host.into(),
                port,
                known_hosts: kh,
                line,
                hint,
            })
        }
        CheckResult::NotFound | CheckResult::Failure => {
            let mut note = String::new();
            if matches!(c.result, CheckResult::Failure) {
                note.push_str("; libssh2 could not check it");
            }
            if !c.unreadable.is_empty() {
                let l: Vec<String> = c.unreadable.iter().map(|l| l.to_string()).collect();
                note.push_str(&format!("; lines libssh2 cannot read were skipped: {}", l.join(", ")));
            }
            Err(RemoteError::HostKeyUnknown {
                node: node.into(),
                host: host.into(),
                port,
                known_hosts: kh,
                keyscan: keyscan_line(host, port, None, known_hosts),
                note,
            })
        }
    }
}

/// Standard base64 with padding (RFC 4648), as known_hosts writes keys.
pub fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(A[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The line of a `@revoked` entry whose key is `key` (libssh2 does not read markers; OpenSSH never accepts
/// such a key, for any host).
pub fn revoked_line(known_hosts: &str, key: &[u8]) -> Option<usize> {
    let b = base64(key);
    known_hosts
        .lines()
        .position(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.first() == Some(&"@revoked") && w.get(3) == Some(&b.as_str())
        })
        .map(|i| i + 1)
}

/// Check the session's host key against known_hosts, line by line so that a mismatch names its line.
pub fn verify_host_key(s: &Session, node: &str, e: &NodeEntry, known_hosts: &Path) -> Result<(), RemoteError> {
    let fail = |m: String| ssh_error(node, e, m);
    let (key, kind) = s.host_key().ok_or_else(|| fail("the server sent no host key".into()))?;
    let text = std::fs::read_to_string(known_hosts)
        .map_err(|err| fail(format!("cannot read known_hosts {}: {err}", known_hosts.display())))?;
    if let Some(line) = revoked_line(&text, key) {
        return Err(RemoteError::HostKeyRevoked {
            node: node.into(),
            host: e.host.clone(),
            port: e.port,
            known_hosts: known_hosts.display().to_string(),
            line,
        });
    }
    let new = || s.known_hosts().map_err(|err| fail(format!("libssh2 known hosts: {}", err.message())));
    let mut all = new()?;
    let mut check = HostKeyCheck {
        result: CheckResult::NotFound,
        mismatch: None,
        offered: key_type_name(kind).to_string(),
        unreadable: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let mut one = new()?;
        if one.read_str(t, KnownHostFileKind::OpenSSH).is_err() || all.read_str(t, KnownHostFileKind::OpenSSH).is_err()
        {
            check.unreadable.push(i + 1);
            continue;
        }
        if check.mismatch.is_none() && matches!(one.check_port(&e.host, e.port, key), CheckResult::Mismatch) {
            check.mismatch = Some((i + 1, line_key_type(t).unwrap_or("?").to_string()));
        }
    }
    check.result = all.check_port(&e.host, e.port, key);
    judge_host_key(node, &e.host, e.port, known_hosts, &check)
}
