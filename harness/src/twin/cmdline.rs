//! kubectl / calicoctl grammar: turns a [`CommandLine`] into a typed [`Op`].
//!
//! This is a parser only: it checks the words the way the real CLIs do
//! (flags, positional arguments, label keys and values, patch JSON) and
//! records what the command asks for. Everything that needs the datastore
//! (does the node exist, would a label be overwritten, ...) is left to the
//! executor.
//!
//! Reference behaviour:
//! - kubectl parses flags with pflag: flags anywhere, `--flag=value`,
//!   `--flag value`, `-fvalue`, `-f=value`, `-f value`, `--` ends flags, bool
//!   flags take `--flag=false`; persistent flags (`--context`, `-n`, ...)
//!   also before the subcommand. Label and annotation pairs follow kubectl's
//!   `parseLabels`/`parseAnnotations` and its resources-then-pairs rule.
//! - calicoctl v3.30 parses with docopt, using the usage strings of
//!   `calicoctl/calicoctl/commands/*.go`: global options (`-l`, `--context`,
//!   `--allow-version-mismatch`) only before the command, then each
//!   subcommand's own options anywhere; long options may be abbreviated to
//!   a unique prefix; an option may not be repeated. Resource kinds are the
//!   names registered in `resourcemgr/*.go`, case-insensitive.
//! - `calicoctl patch` always performs a strategic merge patch of the JSON
//!   given with `-p/--patch`; its `-t/--type` option is parsed but ignored by
//!   calicoctl (the usage marks `json` and `merge` "not yet implemented"). The
//!   patch must be a JSON object; it is validated here.
//!
//! A leading `sudo` (optionally `-E`) and leading `NAME=value` assignments
//! are accepted and kept in [`Parsed`]. `kubectl calico …` (the calicoctl
//! kubectl plugin) is read as `calicoctl …`.

use super::shell::CommandLine;
use thiserror::Error;

/// A parsed command with what surrounds the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub op: Op,
    /// `NAME=value` assignments before the command (`DATASTORE_TYPE=kubernetes calicoctl …`).
    pub env: Vec<(String, String)>,
    /// The command was run through `sudo`.
    pub sudo: bool,
    /// `--context` (kubectl, calicoctl global or subcommand option; the last one wins).
    pub context: Option<String>,
    /// calicoctl `-c/--config`, kubectl `--kubeconfig`.
    pub config: Option<String>,
    /// calicoctl `--allow-version-mismatch` (global or subcommand option).
    pub allow_version_mismatch: bool,
    /// 1-based line of the command in its script.
    pub line: usize,
}

/// Where `-f` reads resources from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `-f PATH` (a file, or with calicoctl also a directory).
    File(String),
    /// `-f -`: standard input, i.e. the heredoc body or here-string.
    Stdin(String),
}

/// The Calico resource kinds rrlab models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    BgpConfiguration,
    BgpPeer,
    FelixConfiguration,
    IpPool,
    Node,
}

impl ResourceKind {
    /// calicoctl's names and aliases, case-insensitive (`resourcemgr/*.go`).
    pub fn from_name(name: &str) -> Option<ResourceKind> {
        Some(match name.to_ascii_lowercase().as_str() {
            "bgpconfiguration" | "bgpconfigurations" | "bgpconfig" | "bgpconfigs" => ResourceKind::BgpConfiguration,
            "bgppeer" | "bgppeers" | "bgpp" | "bgpps" | "bp" | "bps" => ResourceKind::BgpPeer,
            "felixconfiguration" | "felixconfigurations" | "felixconfig" | "felixconfigs" => {
                ResourceKind::FelixConfiguration
            }
            "ippool" | "ippools" | "ipp" | "ipps" | "pool" | "pools" => ResourceKind::IpPool,
            "node" | "nodes" | "no" | "nos" => ResourceKind::Node,
            _ => return None,
        })
    }

    /// The resource's `kind` in projectcalico.org/v3.
    pub fn kind(self) -> &'static str {
        match self {
            ResourceKind::BgpConfiguration => "BGPConfiguration",
            ResourceKind::BgpPeer => "BGPPeer",
            ResourceKind::FelixConfiguration => "FelixConfiguration",
            ResourceKind::IpPool => "IPPool",
            ResourceKind::Node => "Node",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    Apply,
    Create,
    Replace,
}

/// `kubectl get -o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubectlOutput {
    /// No `-o`: the default table.
    Table,
    Wide,
    Yaml,
    Json,
    Name,
}

/// `calicoctl get -o` (default `ps`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalicoOutput {
    Ps,
    Wide,
    Yaml,
    Json,
    CustomColumns(Vec<String>),
    GoTemplate(String),
    GoTemplateFile(String),
}

/// What `calicoctl get` / `calicoctl delete` act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalicoTarget {
    /// `<KIND> [<NAME>...]`; no names means all (get) or none (delete).
    Resources { kind: ResourceKind, names: Vec<String> },
    /// `-f FILE|-`.
    Source(Source),
}

/// `calicoctl ipam show` variants (mutually exclusive options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpamShow {
    /// No option: per-pool utilisation.
    Pools,
    /// `--show-blocks`.
    Blocks,
    /// `--show-borrowed`.
    Borrowed,
    /// `--show-configuration`.
    Configuration,
    /// `--ip=<IP>`.
    Ip(String),
}

/// The operations rrlab runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `kubectl label node…`. The executor must refuse to change an existing
    /// key to a different value unless `overwrite` (kubectl: `error: 'k'
    /// already has a value (v), and --overwrite is false`); the same value is
    /// accepted.
    Label {
        nodes: Vec<String>,
        /// `--all`: every node.
        all: bool,
        /// `-l/--selector`.
        selector: Option<String>,
        set: Vec<(String, String)>,
        remove: Vec<String>,
        overwrite: bool,
    },
    /// `kubectl annotate node…`, same rules as [`Op::Label`].
    Annotate {
        nodes: Vec<String>,
        all: bool,
        selector: Option<String>,
        set: Vec<(String, String)>,
        remove: Vec<String>,
        overwrite: bool,
    },
    /// `kubectl get nodes`.
    KubectlGetNodes {
        names: Vec<String>,
        output: KubectlOutput,
        show_labels: bool,
        selector: Option<String>,
        no_headers: bool,
    },
    /// `kubectl set env daemonset/NAME`.
    SetEnv {
        /// `-n`, else `default` (kubectl's default without a kubeconfig namespace).
        namespace: String,
        /// The DaemonSet's name (`calico-node`).
        object: String,
        /// `-c/--containers`.
        container: Option<String>,
        set: Vec<(String, String)>,
        remove: Vec<String>,
    },
    KubectlApply {
        source: Source,
        namespace: Option<String>,
    },
    KubectlCreate {
        source: Source,
        namespace: Option<String>,
    },
    KubectlDelete {
        source: Source,
        namespace: Option<String>,
    },
    /// `calicoctl apply|create|replace -f`.
    CalicoApply {
        mode: ApplyMode,
        source: Source,
        recursive: bool,
        skip_empty: bool,
        /// `--skip-exists` (create only).
        skip_exists: bool,
        namespace: Option<String>,
    },
    CalicoDelete {
        target: CalicoTarget,
        skip_not_exists: bool,
        recursive: bool,
        skip_empty: bool,
        namespace: Option<String>,
    },
    CalicoGet {
        target: CalicoTarget,
        output: CalicoOutput,
        namespace: Option<String>,
        all_namespaces: bool,
        export: bool,
        recursive: bool,
        skip_empty: bool,
    },
    /// `calicoctl patch KIND NAME -p JSON` (a strategic merge patch).
    CalicoPatch {
        kind: ResourceKind,
        name: String,
        /// The patch, a JSON object.
        patch: serde_json::Value,
        /// `-t/--type` as given; calicoctl ignores it.
        patch_type: Option<String>,
        namespace: Option<String>,
    },
    CalicoNodeStatus,
    CalicoIpamShow {
        show: IpamShow,
    },
    /// A line of only `NAME=value` words, or `export NAME=value…`: the shell
    /// layer already applied it to later lines; nothing to run.
    ShellAssign {
        vars: Vec<(String, String)>,
        export: bool,
    },
}

/// What went wrong, for callers that branch on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A program or subcommand rrlab does not run (`ipset`, `kubectl drain`, `calicoctl label`).
    UnsupportedCommand,
    /// A calicoctl subcommand calicoctl itself does not know.
    UnknownCommand,
    /// A flag the command does not accept (or an ambiguous abbreviation).
    UnknownFlag,
    /// A flag without its value, with a bad value, or given twice (calicoctl).
    BadFlagValue,
    /// Wrong positional arguments or a missing required option.
    Usage,
    /// A label/annotation key or value, or an environment variable name, that Kubernetes rejects.
    InvalidKeyOrValue,
    /// A calicoctl resource type rrlab does not model.
    UnknownKind,
    /// `-p/--patch` is not JSON; position within the patch text (1-based).
    InvalidPatch { line: usize, column: usize },
    /// `-f -` with no heredoc or here-string to read.
    NoStdin,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {message}")]
pub struct CommandError {
    pub line: usize,
    pub kind: ErrorKind,
    pub message: String,
}

const RRLAB_SUPPORTS: &str = "kubectl label|annotate node, kubectl get nodes, kubectl set env daemonset, \
kubectl apply|create|delete -f, calicoctl apply|create|replace|delete|get|patch, calicoctl node status, calicoctl ipam show";

/// Parses one command line.
pub fn parse_command(cl: &CommandLine) -> Result<Parsed, CommandError> {
    let line = cl.line;
    let words = &cl.argv[..];
    if words.is_empty() {
        return Err(err(line, ErrorKind::Usage, "empty command"));
    }
    // Shell assignments on their own.
    if words.iter().all(|w| assignment(w).is_some()) {
        let vars = words.iter().filter_map(|w| assignment(w)).collect();
        return Ok(plain(line, Op::ShellAssign { vars, export: false }));
    }
    if words[0] == "export" {
        let mut vars = Vec::new();
        for w in &words[1..] {
            match assignment(w) {
                Some(a) => vars.push(a),
                None => {
                    return Err(err(
                        line,
                        ErrorKind::UnsupportedCommand,
                        format!("export: '{w}' has no value; rrlab supports only 'export NAME=value'"),
                    ))
                }
            }
        }
        return Ok(plain(line, Op::ShellAssign { vars, export: true }));
    }

    let mut env = Vec::new();
    let mut sudo = false;
    let mut k = 0;
    loop {
        while let Some(a) = words.get(k).and_then(|w| assignment(w)) {
            env.push(a);
            k += 1;
        }
        if words.get(k).map(String::as_str) == Some("sudo") && !sudo {
            sudo = true;
            k += 1;
            while let Some(w) = words.get(k) {
                match w.as_str() {
                    "-E" | "--preserve-env" => k += 1,
                    s if s.starts_with('-') => {
                        return Err(err(
                            line,
                            ErrorKind::UnsupportedCommand,
                            format!("sudo: option {s} is not supported (rrlab accepts plain 'sudo' or 'sudo -E')"),
                        ))
                    }
                    _ => break,
                }
            }
            continue;
        }
        break;
    }
    let Some(prog) = words.get(k) else {
        return Err(err(line, ErrorKind::Usage, "no command after 'sudo'"));
    };
    let base = prog.rsplit('/').next().unwrap_or(prog);
    let args = &words[k + 1..];
    let mut ctx = Ctx { line, stdin: cl.stdin.as_deref(), context: None, config: None, avm: false };
    let op = match base {
        "kubectl" if args.first().map(String::as_str) == Some("calico") => calicoctl(&mut ctx, &args[1..])?,
        "kubectl" => kubectl(&mut ctx, args)?,
        "calicoctl" | "kubectl-calico" => calicoctl(&mut ctx, args)?,
        _ => {
            return Err(err(
                line,
                ErrorKind::UnsupportedCommand,
                format!("unsupported command '{base}' (rrlab supports: {RRLAB_SUPPORTS})"),
            ))
        }
    };
    Ok(Parsed { op, env, sudo, context: ctx.context, config: ctx.config, allow_version_mismatch: ctx.avm, line })
}

fn plain(line: usize, op: Op) -> Parsed {
    Parsed { op, env: Vec::new(), sudo: false, context: None, config: None, allow_version_mismatch: false, line }
}

fn err(line: usize, kind: ErrorKind, message: impl Into<String>) -> CommandError {
    CommandError { line, kind, message: message.into() }
}

/// `NAME=value` with a shell variable name.
fn assignment(w: &str) -> Option<(String, String)> {
    let (name, value) = w.split_once('=')?;
    let mut it = name.chars();
    let ok = matches!(it.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && it.all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| (name.to_string(), value.to_string()))
}

struct Ctx<'a> {
    line: usize,
    stdin: Option<&'a str>,
    context: Option<String>,
    config: Option<String>,
    avm: bool,
}

impl Ctx<'_> {
    fn err(&self, kind: ErrorKind, message: impl Into<String>) -> CommandError {
        err(self.line, kind, message)
    }

    fn source(&self, path: &str, who: &str) -> Result<Source, CommandError> {
        if path == "-" {
            match self.stdin {
                Some(s) => Ok(Source::Stdin(s.to_string())),
                None => Err(self.err(
                    ErrorKind::NoStdin,
                    format!(
                        "{who} -f - reads standard input, but the command has no heredoc (<< EOF) or here-string (<<<)"
                    ),
                )),
            }
        } else {
            Ok(Source::File(path.to_string()))
        }
    }
}

// ---------------------------------------------------------------------------
// Flag parsing

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// kubectl (cobra/pflag).
    Pflag,
    /// calicoctl (docopt).
    Docopt,
}

#[derive(Clone, Copy)]
struct Flag {
    long: &'static str,
    short: Option<char>,
    value: bool,
}

const fn fl(long: &'static str, short: Option<char>, value: bool) -> Flag {
    Flag { long, short, value }
}

struct Flags {
    set: Vec<(&'static str, String)>,
    pos: Vec<String>,
}

impl Flags {
    fn last(&self, long: &str) -> Option<&str> {
        self.set.iter().rev().find(|(l, _)| *l == long).map(|(_, v)| v.as_str())
    }
    fn all(&self, long: &str) -> Vec<&str> {
        self.set.iter().filter(|(l, _)| *l == long).map(|(_, v)| v.as_str()).collect()
    }
    fn on(&self, long: &str) -> bool {
        self.last(long) == Some("true")
    }
    fn has(&self, long: &str) -> bool {
        self.last(long).is_some()
    }
}

fn flag_names(specs: &[Flag]) -> String {
    specs
        .iter()
        .filter(|f| f.long != "help")
        .map(|f| match f.short {
            Some(s) => format!("-{s}/--{}", f.long),
            None => format!("--{}", f.long),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn parse_flags(
    args: &[String],
    specs: &[Flag],
    style: Style,
    tool: &str,
    sub: &str,
    line: usize,
) -> Result<Flags, CommandError> {
    let unknown = |tok: &str| {
        err(
            line,
            ErrorKind::UnknownFlag,
            format!("{tool}: unknown flag {tok} for '{sub}' (accepted: {})", flag_names(specs)),
        )
    };
    let bad = |msg: String| err(line, ErrorKind::BadFlagValue, format!("{tool} {sub}: {msg}"));
    let mut out = Flags { set: Vec::new(), pos: Vec::new() };
    let mut i = 0;
    let mut only_pos = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if only_pos || a == "-" || !a.starts_with('-') {
            out.pos.push(a.clone());
            continue;
        }
        if a == "--" {
            only_pos = true;
            continue;
        }
        let mut record: Vec<(Flag, String)> = Vec::new();
        if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let spec = match specs.iter().find(|f| f.long == name) {
                Some(f) => *f,
                None if style == Style::Docopt && !name.is_empty() => {
                    let cands: Vec<&Flag> = specs.iter().filter(|f| f.long.starts_with(name)).collect();
                    match cands.len() {
                        1 => *cands[0],
                        0 => return Err(unknown(&format!("--{name}"))),
                        _ => {
                            let names: Vec<String> = cands.iter().map(|f| format!("--{}", f.long)).collect();
                            return Err(err(
                                line,
                                ErrorKind::UnknownFlag,
                                format!("{tool}: --{name} is not a unique prefix for '{sub}': {}?", names.join(", ")),
                            ));
                        }
                    }
                }
                None => return Err(unknown(&format!("--{name}"))),
            };
            if spec.value {
                let v = match inline {
                    Some(v) => v.to_string(),
                    None => match args.get(i) {
                        Some(v) => {
                            i += 1;
                            v.clone()
                        }
                        None => return Err(bad(format!("flag needs an argument: --{}", spec.long))),
                    },
                };
                record.push((spec, v));
            } else {
                let v = match (inline, style) {
                    (None, _) => "true".to_string(),
                    (Some(v), Style::Pflag) => match parse_bool(v) {
                        Some(b) => b.to_string(),
                        None => {
                            return Err(bad(format!(
                                "invalid argument \"{v}\" for \"--{}\" flag: expected true or false",
                                spec.long
                            )))
                        }
                    },
                    (Some(_), Style::Docopt) => return Err(bad(format!("--{} must not have an argument", spec.long))),
                };
                record.push((spec, v));
            }
        } else {
            let chars: Vec<char> = a.chars().skip(1).collect();
            let mut k = 0;
            while k < chars.len() {
                let c = chars[k];
                let Some(spec) = specs.iter().find(|f| f.short == Some(c)).copied() else {
                    return Err(unknown(&format!("-{c}")));
                };
                if spec.value {
                    let mut rest: String = chars[k + 1..].iter().collect();
                    if style == Style::Pflag {
                        if let Some(r) = rest.strip_prefix('=') {
                            rest = r.to_string();
                        }
                    }
                    let v = if !rest.is_empty() || (style == Style::Pflag && chars.get(k + 1) == Some(&'=')) {
                        rest
                    } else {
                        match args.get(i) {
                            Some(v) => {
                                i += 1;
                                v.clone()
                            }
                            None => return Err(bad(format!("flag needs an argument: -{c}"))),
                        }
                    };
                    record.push((spec, v));
                    break;
                }
                if style == Style::Pflag && chars.get(k + 1) == Some(&'=') {
                    let v: String = chars[k + 2..].iter().collect();
                    match parse_bool(&v) {
                        Some(b) => record.push((spec, b.to_string())),
                        None => {
                            return Err(bad(format!(
                                "invalid argument \"{v}\" for \"-{c}\" flag: expected true or false"
                            )))
                        }
                    }
                    break;
                }
                record.push((spec, "true".to_string()));
                k += 1;
            }
        }
        for (spec, v) in record {
            if spec.long == "help" {
                return Err(err(
                    line,
                    ErrorKind::UnsupportedCommand,
                    format!("{tool} {sub}: help output is not modelled by rrlab"),
                ));
            }
            if style == Style::Docopt && out.has(spec.long) {
                return Err(bad(format!("option --{} is given more than once", spec.long)));
            }
            out.set.push((spec.long, v));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Kubernetes validation (k8s.io/apimachinery/pkg/util/validation)

const QUALIFIED_NAME_FMT: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn check_dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err("must be no more than 253 characters".into());
    }
    let ok = s.split('.').all(|label| {
        let b = label.as_bytes();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => {
                (f.is_ascii_lowercase() || f.is_ascii_digit())
                    && (l.is_ascii_lowercase() || l.is_ascii_digit())
                    && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            }
            _ => false,
        }
    });
    if ok {
        Ok(())
    } else {
        Err("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into())
    }
}

/// `IsQualifiedName`: label and annotation keys.
pub fn check_qualified_name(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                return Err("prefix part must be non-empty".into());
            }
            check_dns1123_subdomain(prefix).map_err(|m| format!("prefix part {m}"))?;
            *name
        }
        _ => {
            return Err(format!(
                "a qualified name {QUALIFIED_NAME_FMT} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ))
        }
    };
    if name.is_empty() {
        return Err("name part must be non-empty".into());
    }
    if name.len() > 63 {
        return Err("name part must be no more than 63 characters".into());
    }
    if !is_qualified_name_part(name) {
        return Err(format!("name part {QUALIFIED_NAME_FMT}"));
    }
    Ok(())
}

/// `IsValidLabelValue`.
pub fn check_label_value(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if !s.is_empty() && !is_qualified_name_part(s) {
        return Err("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into());
    }
    Ok(())
}

/// `IsEnvVarName`.
pub fn check_env_var_name(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let ok = match b.first() {
        Some(f) => {
            (f.is_ascii_alphabetic() || matches!(f, b'-' | b'.' | b'_'))
                && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err("a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')".into())
    }
}

// ---------------------------------------------------------------------------
// kubectl

const K_CONTEXT: Flag = fl("context", None, true);
const K_KUBECONFIG: Flag = fl("kubeconfig", None, true);
const K_NAMESPACE: Flag = fl("namespace", Some('n'), true);
const K_V: Flag = fl("v", Some('v'), true);
const K_HELP: Flag = fl("help", Some('h'), false);

const K_LABEL: &[Flag] = &[
    fl("overwrite", None, false),
    fl("all", None, false),
    fl("selector", Some('l'), true),
    K_CONTEXT,
    K_KUBECONFIG,
    K_NAMESPACE,
    K_V,
    K_HELP,
];
const K_GET: &[Flag] = &[
    fl("output", Some('o'), true),
    fl("show-labels", None, false),
    fl("selector", Some('l'), true),
    fl("no-headers", None, false),
    K_CONTEXT,
    K_KUBECONFIG,
    K_NAMESPACE,
    K_V,
    K_HELP,
];
const K_SET_ENV: &[Flag] =
    &[fl("containers", Some('c'), true), fl("env", Some('e'), true), K_CONTEXT, K_KUBECONFIG, K_NAMESPACE, K_V, K_HELP];
const K_FILE: &[Flag] = &[fl("filename", Some('f'), true), K_CONTEXT, K_KUBECONFIG, K_NAMESPACE, K_V, K_HELP];

/// Every kubectl flag rrlab knows, to skip flag values while looking for the subcommand.
const K_ALL: &[&[Flag]] = &[K_LABEL, K_GET, K_SET_ENV, K_FILE];

fn kubectl_value_flag(tok: &str) -> bool {
    let specs = K_ALL.iter().flat_map(|s| s.iter());
    if let Some(long) = tok.strip_prefix("--") {
        !long.contains('=') && specs.clone().any(|f| f.value && f.long == long)
    } else {
        let mut cs = tok.chars().skip(1);
        match (cs.next(), cs.next()) {
            (Some(c), None) => specs.clone().any(|f| f.value && f.short == Some(c)),
            _ => false,
        }
    }
}

/// Removes the first `n` positional words (the subcommand path) from `args`.
fn split_subcommand(args: &[String], n: usize) -> (Vec<String>, Vec<String>) {
    let mut cmd = Vec::new();
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if cmd.len() < n && a == "--" {
            rest.extend(args[i..].iter().cloned());
            break;
        }
        if cmd.len() < n && a.starts_with('-') && a != "-" {
            rest.push(a.clone());
            if kubectl_value_flag(a) {
                if let Some(v) = args.get(i + 1) {
                    rest.push(v.clone());
                    i += 1;
                }
            }
        } else if cmd.len() < n {
            cmd.push(a.clone());
        } else {
            rest.push(a.clone());
        }
        i += 1;
    }
    (cmd, rest)
}

fn kubectl(ctx: &mut Ctx, args: &[String]) -> Result<Op, CommandError> {
    let (first, _) = split_subcommand(args, 1);
    let Some(sub) = first.first().cloned() else {
        return Err(
            ctx.err(ErrorKind::Usage, format!("kubectl: no subcommand given (rrlab supports: {RRLAB_SUPPORTS})"))
        );
    };
    let depth = if sub == "set" { 2 } else { 1 };
    let (path, rest) = split_subcommand(args, depth);
    let unsupported = |what: &str| {
        ctx.err(
            ErrorKind::UnsupportedCommand,
            format!("unsupported command 'kubectl {what}' (rrlab supports: {RRLAB_SUPPORTS})"),
        )
    };
    match sub.as_str() {
        "label" | "annotate" => kubectl_meta(ctx, &sub, &rest),
        "get" => kubectl_get(ctx, &rest),
        "set" => match path.get(1).map(String::as_str) {
            Some("env") => kubectl_set_env(ctx, &rest),
            Some(other) => Err(unsupported(&format!("set {other}"))),
            None => Err(unsupported("set")),
        },
        "apply" | "create" | "delete" => kubectl_file(ctx, &sub, &rest),
        other => Err(unsupported(other)),
    }
}

fn kubectl_common(ctx: &mut Ctx, f: &Flags) {
    if let Some(c) = f.last("context") {
        ctx.context = Some(c.to_string());
    }
    if let Some(c) = f.last("kubeconfig") {
        ctx.config = Some(c.to_string());
    }
}

fn is_node_type(t: &str) -> bool {
    matches!(t.to_ascii_lowercase().as_str(), "node" | "nodes" | "no")
}

/// Resolves `node N1 N2` or `node/N1 node/N2` into node names.
fn node_names(ctx: &Ctx, cmd: &str, resources: &[String]) -> Result<Vec<String>, CommandError> {
    let not_node =
        |t: &str| ctx.err(ErrorKind::UnsupportedCommand, format!("kubectl {cmd}: rrlab models only nodes, not '{t}'"));
    let Some(first) = resources.first() else {
        return Err(ctx.err(
            ErrorKind::Usage,
            format!("kubectl {cmd}: one or more resources must be specified as <resource> <name> or <resource>/<name>"),
        ));
    };
    let mut names = Vec::new();
    if first.contains('/') {
        for r in resources {
            let Some((t, n)) = r.split_once('/') else {
                return Err(ctx.err(
                    ErrorKind::Usage,
                    format!("kubectl {cmd}: there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (got '{r}')"),
                ));
            };
            if !is_node_type(t) {
                return Err(not_node(t));
            }
            if n.is_empty() || n.contains('/') {
                return Err(ctx.err(ErrorKind::Usage, format!("kubectl {cmd}: arguments in resource/name form must have a single resource and name (got '{r}')")));
            }
            names.push(n.to_string());
        }
    } else {
        if first.contains(',') {
            return Err(ctx
                .err(ErrorKind::UnsupportedCommand, format!("kubectl {cmd}: rrlab models only nodes, not '{first}'")));
        }
        if !is_node_type(first) {
            return Err(not_node(first));
        }
        for n in &resources[1..] {
            if n.contains('/') {
                return Err(ctx.err(
                    ErrorKind::Usage,
                    format!("kubectl {cmd}: there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>')"),
                ));
            }
            names.push(n.clone());
        }
    }
    Ok(names)
}

fn kubectl_meta(ctx: &mut Ctx, cmd: &str, args: &[String]) -> Result<Op, CommandError> {
    let f = parse_flags(args, K_LABEL, Style::Pflag, "kubectl", cmd, ctx.line)?;
    kubectl_common(ctx, &f);
    // kubectl's GetResourcesAndPairs: resources first, then pairs.
    let mut resources = Vec::new();
    let mut pairs = Vec::new();
    for s in &f.pos {
        let is_pair = (s.contains('=') && !s.starts_with('=')) || (s.ends_with('-') && s != "-");
        if is_pair {
            pairs.push(s.clone());
        } else if !pairs.is_empty() {
            return Err(ctx.err(
                ErrorKind::Usage,
                format!(
                    "kubectl {cmd}: all resources must be specified before {} changes: {s}",
                    if cmd == "label" { "label" } else { "annotation" }
                ),
            ));
        } else {
            resources.push(s.clone());
        }
    }
    let nodes = node_names(ctx, cmd, &resources)?;
    let all = f.on("all");
    let selector = f.last("selector").map(str::to_string);
    if nodes.is_empty() && !all && selector.is_none() {
        return Err(ctx.err(
            ErrorKind::Usage,
            format!("kubectl {cmd}: resource(s) were provided, but no name, label selector, or --all flag specified"),
        ));
    }
    if !nodes.is_empty() && (all || selector.is_some()) {
        return Err(ctx.err(
            ErrorKind::Usage,
            format!("kubectl {cmd}: node names cannot be combined with --all or a label selector"),
        ));
    }
    let what = if cmd == "label" { "label" } else { "annotation" };
    if pairs.is_empty() {
        return Err(ctx.err(ErrorKind::Usage, format!("kubectl {cmd}: at least one {what} update is required")));
    }
    let mut set: Vec<(String, String)> = Vec::new();
    let mut remove: Vec<String> = Vec::new();
    for spec in &pairs {
        if spec.contains('=') {
            let (k, v) = if cmd == "label" {
                let parts: Vec<&str> = spec.split('=').collect();
                if parts.len() != 2 {
                    return Err(
                        ctx.err(ErrorKind::InvalidKeyOrValue, format!("kubectl label: invalid label spec: {spec}"))
                    );
                }
                check_label_value(parts[1]).map_err(|m| {
                    ctx.err(
                        ErrorKind::InvalidKeyOrValue,
                        format!("kubectl label: invalid label value: \"{spec}\": {m}"),
                    )
                })?;
                (parts[0], parts[1])
            } else {
                match spec.split_once('=') {
                    Some((k, v)) if !k.is_empty() => (k, v),
                    _ => {
                        return Err(ctx.err(
                            ErrorKind::InvalidKeyOrValue,
                            format!("kubectl annotate: invalid annotation format: {spec}"),
                        ))
                    }
                }
            };
            check_qualified_name(k).map_err(|m| {
                ctx.err(ErrorKind::InvalidKeyOrValue, format!("kubectl {cmd}: invalid {what} key \"{k}\": {m}"))
            })?;
            match set.iter_mut().find(|(sk, _)| sk == k) {
                Some(e) => e.1 = v.to_string(),
                None => set.push((k.to_string(), v.to_string())),
            }
        } else {
            let k = &spec[..spec.len() - 1];
            check_qualified_name(k).map_err(|m| {
                ctx.err(ErrorKind::InvalidKeyOrValue, format!("kubectl {cmd}: invalid {what} key \"{k}\": {m}"))
            })?;
            if !remove.iter().any(|r| r == k) {
                remove.push(k.to_string());
            }
        }
    }
    if let Some(k) = remove.iter().find(|r| set.iter().any(|(s, _)| s == *r)) {
        let msg = if cmd == "label" {
            "kubectl label: can not both modify and remove a label in the same command".to_string()
        } else {
            format!(
                "kubectl annotate: can not both modify and remove the following annotation(s) in the same command: {k}"
            )
        };
        return Err(ctx.err(ErrorKind::Usage, msg));
    }
    let overwrite = f.on("overwrite");
    Ok(if cmd == "label" {
        Op::Label { nodes, all, selector, set, remove, overwrite }
    } else {
        Op::Annotate { nodes, all, selector, set, remove, overwrite }
    })
}

fn kubectl_get(ctx: &mut Ctx, args: &[String]) -> Result<Op, CommandError> {
    let f = parse_flags(args, K_GET, Style::Pflag, "kubectl", "get", ctx.line)?;
    kubectl_common(ctx, &f);
    if f.pos.is_empty() {
        return Err(ctx.err(
            ErrorKind::Usage,
            "kubectl get: you must specify the type of resource to get (rrlab supports: nodes)",
        ));
    }
    let names = node_names(ctx, "get", &f.pos)?;
    let output = match f.last("output") {
        None | Some("") => KubectlOutput::Table,
        Some("wide") => KubectlOutput::Wide,
        Some("yaml") => KubectlOutput::Yaml,
        Some("json") => KubectlOutput::Json,
        Some("name") => KubectlOutput::Name,
        Some(o) => {
            return Err(ctx.err(
                ErrorKind::BadFlagValue,
                format!(
                    "kubectl get: output format '{o}' is not supported by rrlab (accepted: wide, yaml, json, name)"
                ),
            ))
        }
    };
    let selector = f.last("selector").map(str::to_string);
    if selector.is_some() && !names.is_empty() {
        return Err(ctx.err(ErrorKind::Usage, "kubectl get: name cannot be provided when a selector is specified"));
    }
    Ok(Op::KubectlGetNodes {
        names,
        output,
        show_labels: f.on("show-labels"),
        selector,
        no_headers: f.on("no-headers"),
    })
}

fn kubectl_set_env(ctx: &mut Ctx, args: &[String]) -> Result<Op, CommandError> {
    let f = parse_flags(args, K_SET_ENV, Style::Pflag, "kubectl", "set env", ctx.line)?;
    kubectl_common(ctx, &f);
    let mut resources = Vec::new();
    let mut envs: Vec<String> = Vec::new();
    for s in &f.pos {
        let is_env = s.chars().skip(1).any(|c| c == '=') || s.ends_with('-');
        if is_env {
            envs.push(s.clone());
        } else if !envs.is_empty() {
            return Err(ctx.err(
                ErrorKind::Usage,
                format!("kubectl set env: all resources must be specified before environment changes: {s}"),
            ));
        } else {
            resources.push(s.clone());
        }
    }
    envs.extend(f.all("env").into_iter().map(str::to_string));
    let is_ds = |t: &str| {
        matches!(
            t.to_ascii_lowercase().as_str(),
            "daemonset" | "daemonsets" | "ds" | "daemonset.apps" | "daemonsets.apps"
        )
    };
    let object =
        match resources.as_slice() {
            [one] => match one.split_once('/') {
                Some((t, n)) if is_ds(t) && !n.is_empty() && !n.contains('/') => n.to_string(),
                Some((t, _)) if !is_ds(t) => {
                    return Err(ctx.err(
                        ErrorKind::UnsupportedCommand,
                        format!("kubectl set env: rrlab models only daemonsets (calico-node), not '{t}'"),
                    ))
                }
                _ => return Err(ctx.err(ErrorKind::Usage, format!("kubectl set env: invalid resource '{one}'"))),
            },
            [t, n] if !t.contains('/') && !n.contains('/') => {
                if !is_ds(t) {
                    return Err(ctx.err(
                        ErrorKind::UnsupportedCommand,
                        format!("kubectl set env: rrlab models only daemonsets (calico-node), not '{t}'"),
                    ));
                }
                n.clone()
            }
            [] => return Err(ctx.err(
                ErrorKind::Usage,
                "kubectl set env: one or more resources must be specified as <resource> <name> or <resource>/<name>",
            )),
            _ => {
                return Err(
                    ctx.err(ErrorKind::UnsupportedCommand, "kubectl set env: rrlab changes one daemonset per command")
                )
            }
        };
    if envs.is_empty() {
        return Err(ctx.err(ErrorKind::Usage, "kubectl set env: at least one environment variable must be provided"));
    }
    let mut set: Vec<(String, String)> = Vec::new();
    let mut remove: Vec<String> = Vec::new();
    for e in &envs {
        if e == "-" {
            return Err(ctx.err(
                ErrorKind::UnsupportedCommand,
                "kubectl set env: reading variables from standard input ('-') is not supported",
            ));
        }
        if let Some((k, v)) = e.split_once('=') {
            check_env_var_name(k).map_err(|m| {
                ctx.err(
                    ErrorKind::InvalidKeyOrValue,
                    format!("kubectl set env: invalid environment variable name \"{k}\": {m}"),
                )
            })?;
            match set.iter_mut().find(|(sk, _)| sk == k) {
                Some(x) => x.1 = v.to_string(),
                None => set.push((k.to_string(), v.to_string())),
            }
        } else if let Some(k) = e.strip_suffix('-') {
            check_env_var_name(k).map_err(|m| {
                ctx.err(
                    ErrorKind::InvalidKeyOrValue,
                    format!("kubectl set env: invalid environment variable name \"{k}\": {m}"),
                )
            })?;
            if !remove.iter().any(|r| r == k) {
                remove.push(k.to_string());
            }
        } else {
            return Err(ctx.err(
                ErrorKind::Usage,
                format!(
                    "kubectl set env: environment variables must be of the form key=value and can not be empty: {e}"
                ),
            ));
        }
    }
    Ok(Op::SetEnv {
        namespace: f.last("namespace").unwrap_or("default").to_string(),
        object,
        container: f.last("containers").map(str::to_string),
        set,
        remove,
    })
}

fn kubectl_file(ctx: &mut Ctx, cmd: &str, args: &[String]) -> Result<Op, CommandError> {
    let f = parse_flags(args, K_FILE, Style::Pflag, "kubectl", cmd, ctx.line)?;
    kubectl_common(ctx, &f);
    if let Some(p) = f.pos.first() {
        return Err(ctx.err(
            ErrorKind::UnsupportedCommand,
            format!("kubectl {cmd}: positional argument '{p}' is not supported by rrlab; give the objects with -f FILE or -f -"),
        ));
    }
    let files = f.all("filename");
    let path = match files.as_slice() {
        [] => {
            let msg = if cmd == "delete" {
                "kubectl delete: you must provide one or more resources by argument or filename".to_string()
            } else {
                format!("kubectl {cmd}: must specify one of -f and -k")
            };
            return Err(ctx.err(ErrorKind::Usage, msg));
        }
        [p] => *p,
        _ => {
            return Err(ctx.err(ErrorKind::UnsupportedCommand, format!("kubectl {cmd}: rrlab reads one -f per command")))
        }
    };
    let source = ctx.source(path, &format!("kubectl {cmd}"))?;
    let namespace = f.last("namespace").map(str::to_string);
    Ok(match cmd {
        "apply" => Op::KubectlApply { source, namespace },
        "create" => Op::KubectlCreate { source, namespace },
        _ => Op::KubectlDelete { source, namespace },
    })
}

// ---------------------------------------------------------------------------
// calicoctl

const C_HELP: Flag = fl("help", Some('h'), false);
const C_FILENAME: Flag = fl("filename", Some('f'), true);
const C_RECURSIVE: Flag = fl("recursive", Some('R'), false);
const C_SKIP_EMPTY: Flag = fl("skip-empty", None, false);
const C_CONFIG: Flag = fl("config", Some('c'), true);
const C_NAMESPACE: Flag = fl("namespace", Some('n'), true);
const C_CONTEXT: Flag = fl("context", None, true);
const C_AVM: Flag = fl("allow-version-mismatch", None, false);

const C_GLOBAL: &[Flag] = &[C_HELP, fl("log-level", Some('l'), true), C_CONTEXT, C_AVM];
const C_APPLY: &[Flag] = &[C_HELP, C_FILENAME, C_RECURSIVE, C_SKIP_EMPTY, C_CONFIG, C_NAMESPACE, C_CONTEXT, C_AVM];
const C_CREATE: &[Flag] = &[
    C_HELP,
    C_FILENAME,
    C_RECURSIVE,
    C_SKIP_EMPTY,
    fl("skip-exists", None, false),
    C_CONFIG,
    C_NAMESPACE,
    C_CONTEXT,
    C_AVM,
];
const C_DELETE: &[Flag] = &[
    C_HELP,
    fl("skip-not-exists", Some('s'), false),
    C_FILENAME,
    C_RECURSIVE,
    C_SKIP_EMPTY,
    C_CONFIG,
    C_NAMESPACE,
    C_CONTEXT,
    C_AVM,
];
const C_GET: &[Flag] = &[
    C_HELP,
    C_FILENAME,
    C_RECURSIVE,
    C_SKIP_EMPTY,
    fl("output", Some('o'), true),
    C_CONFIG,
    C_NAMESPACE,
    fl("all-namespaces", Some('A'), false),
    fl("export", None, false),
    C_CONTEXT,
    C_AVM,
];
const C_PATCH: &[Flag] =
    &[C_HELP, fl("patch", Some('p'), true), fl("type", Some('t'), true), C_CONFIG, C_NAMESPACE, C_CONTEXT, C_AVM];
const C_NODE_STATUS: &[Flag] = &[C_HELP, C_AVM];
const C_IPAM_SHOW: &[Flag] = &[
    C_HELP,
    fl("ip", None, true),
    fl("show-blocks", None, false),
    fl("show-borrowed", None, false),
    fl("show-configuration", None, false),
    C_CONFIG,
    C_AVM,
];
const C_HELP_ONLY: &[Flag] = &[C_HELP];

const CALICO_SUPPORTS: &str = "calicoctl apply, create, replace, delete, get, patch, node status, ipam show";

fn calico_unsupported(ctx: &Ctx, what: &str) -> CommandError {
    ctx.err(
        ErrorKind::UnsupportedCommand,
        format!("unsupported command 'calicoctl {what}' (rrlab supports: {CALICO_SUPPORTS})"),
    )
}

fn calicoctl(ctx: &mut Ctx, args: &[String]) -> Result<Op, CommandError> {
    // Global options come first (docopt OptionsFirst).
    let mut k = 0;
    while let Some(a) = args.get(k) {
        if a == "--" {
            k += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        // Take this option (and its value) alone.
        let takes_value = {
            let probe =
                parse_flags(std::slice::from_ref(a), C_GLOBAL, Style::Docopt, "calicoctl", "calicoctl", ctx.line);
            matches!(probe, Err(CommandError { kind: ErrorKind::BadFlagValue, .. }))
        };
        let n = if takes_value { 2 } else { 1 };
        let end = (k + n).min(args.len());
        let f = parse_flags(&args[k..end], C_GLOBAL, Style::Docopt, "calicoctl", "calicoctl", ctx.line)?;
        if let Some(level) = f.last("log-level") {
            if !matches!(
                level.to_ascii_lowercase().as_str(),
                "panic" | "fatal" | "error" | "warn" | "warning" | "info" | "debug" | "trace"
            ) {
                return Err(ctx.err(
                    ErrorKind::BadFlagValue,
                    format!("calicoctl: Unknown log level: {level}, expected one of: panic, fatal, error, warn, info, debug."),
                ));
            }
        }
        if let Some(c) = f.last("context") {
            ctx.context = Some(c.to_string());
        }
        if f.on("allow-version-mismatch") {
            ctx.avm = true;
        }
        k = end;
    }
    let Some(cmd) = args.get(k) else {
        return Err(
            ctx.err(ErrorKind::Usage, format!("calicoctl: no command given (rrlab supports: {CALICO_SUPPORTS})"))
        );
    };
    let rest = &args[k + 1..];
    match cmd.as_str() {
        "apply" => calico_apply(ctx, ApplyMode::Apply, rest),
        "create" => calico_apply(ctx, ApplyMode::Create, rest),
        "replace" => calico_apply(ctx, ApplyMode::Replace, rest),
        "delete" => calico_delete(ctx, rest),
        "get" => calico_get(ctx, rest),
        "patch" => calico_patch(ctx, rest),
        "node" => calico_node(ctx, rest),
        "ipam" => calico_ipam(ctx, rest),
        "label" | "validate" | "version" | "datastore" | "cluster" | "convert" => Err(calico_unsupported(ctx, cmd)),
        other => Err(ctx.err(
            ErrorKind::UnknownCommand,
            format!("calicoctl: unknown command: \"{other}\" (rrlab supports: {CALICO_SUPPORTS})"),
        )),
    }
}

fn calico_common(ctx: &mut Ctx, f: &Flags) {
    if let Some(c) = f.last("context") {
        ctx.context = Some(c.to_string());
    }
    if let Some(c) = f.last("config") {
        ctx.config = Some(c.to_string());
    }
    if f.on("allow-version-mismatch") {
        ctx.avm = true;
    }
}

fn calico_kind(ctx: &Ctx, name: &str) -> Result<ResourceKind, CommandError> {
    ResourceKind::from_name(name).ok_or_else(|| {
        ctx.err(
            ErrorKind::UnknownKind,
            format!("calicoctl: resource type '{name}' is not supported (rrlab models: bgpConfiguration, bgpPeer, felixConfiguration, ipPool, node)"),
        )
    })
}

fn calico_apply(ctx: &mut Ctx, mode: ApplyMode, args: &[String]) -> Result<Op, CommandError> {
    let (sub, specs) = match mode {
        ApplyMode::Apply => ("apply", C_APPLY),
        ApplyMode::Create => ("create", C_CREATE),
        ApplyMode::Replace => ("replace", C_APPLY),
    };
    let f = parse_flags(args, specs, Style::Docopt, "calicoctl", sub, ctx.line)?;
    calico_common(ctx, &f);
    if let Some(p) = f.pos.first() {
        return Err(ctx.err(
            ErrorKind::Usage,
            format!("calicoctl {sub}: unexpected argument '{p}' (usage: calicoctl {sub} -f FILE|-)"),
        ));
    }
    let Some(path) = f.last("filename") else {
        return Err(ctx.err(
            ErrorKind::Usage,
            format!("calicoctl {sub}: -f/--filename is required (usage: calicoctl {sub} -f FILE|-)"),
        ));
    };
    let source = ctx.source(path, &format!("calicoctl {sub}"))?;
    Ok(Op::CalicoApply {
        mode,
        source,
        recursive: f.on("recursive"),
        skip_empty: f.on("skip-empty"),
        skip_exists: f.on("skip-exists"),
        namespace: f.last("namespace").map(str::to_string),
    })
}

/// `( (<KIND> [<NAME>...]) | --filename=<FILE> [--recursive] [--skip-empty] )`.
fn calico_target(ctx: &Ctx, sub: &str, f: &Flags) -> Result<CalicoTarget, CommandError> {
    match (f.last("filename"), f.pos.split_first()) {
        (Some(_), Some(_)) => Err(ctx.err(
            ErrorKind::Usage,
            format!("calicoctl {sub}: give either <KIND> [<NAME>...] or -f, not both"),
        )),
        (Some(path), None) => Ok(CalicoTarget::Source(ctx.source(path, &format!("calicoctl {sub}"))?)),
        (None, Some((kind, names))) => {
            if f.has("recursive") || f.has("skip-empty") {
                return Err(ctx.err(ErrorKind::Usage, format!("calicoctl {sub}: --recursive and --skip-empty apply only with -f")));
            }
            Ok(CalicoTarget::Resources { kind: calico_kind(ctx, kind)?, names: names.to_vec() })
        }
        (None, None) => Err(ctx.err(
            ErrorKind::Usage,
            format!("calicoctl {sub}: give <KIND> [<NAME>...] or -f FILE|- (usage: calicoctl {sub} ( (<KIND> [<NAME>...]) | --filename=<FILE> ))"),
        )),
    }
}

fn calico_delete(ctx: &mut Ctx, args: &[String]) -> Result<Op, CommandError> {
    let f = parse_flags(args, C_DELETE, Style::Docopt, "calicoctl", "delete", ctx.line)?;
    calico_common(ctx, &f);
    let target = calico_target(ctx, "delete", &f)?;
    Ok(Op::CalicoDelete {
        target,
        skip_not_exists: f.on("skip-not-exists"),
        recursive: f.on("recursive"),
        skip_empty: f.on("skip-empty"),
        namespace: f.last("namespace").map(str::to_string),
    })
}

fn calico_get(ctx: &mut Ctx, args: &[String]) -> Result<Op, CommandError> {
    // calicoctl rewrites `-a` to `-A` (backward compatibility).
    let args: Vec<String> = args.iter().map(|a| if a == "-a" { "-A".to_string() } else { a.clone() }).collect();
    let f = parse_flags(&args, C_GET, Style::Docopt, "calicoctl", "get", ctx.line)?;
    calico_common(ctx, &f);
    let target = calico_target(ctx, "get", &f)?;
    let output = match f.last("output").unwrap_or("ps") {
        "yaml" | "yml" => CalicoOutput::Yaml,
        "json" => CalicoOutput::Json,
        "ps" => CalicoOutput::Ps,
        "wide" => CalicoOutput::Wide,
        other => {
            let (key, value) = other.split_once('=').unwrap_or((other, ""));
            match key {
                "go-template" if value.is_empty() => {
                    return Err(ctx.err(ErrorKind::BadFlagValue, "calicoctl get: need to specify a template"))
                }
                "go-template" => CalicoOutput::GoTemplate(value.to_string()),
                "go-template-file" if value.is_empty() => {
                    return Err(ctx.err(ErrorKind::BadFlagValue, "calicoctl get: need to specify a template file"))
                }
                "go-template-file" => CalicoOutput::GoTemplateFile(value.to_string()),
                "custom-columns" if value.is_empty() => {
                    return Err(ctx.err(ErrorKind::BadFlagValue, "calicoctl get: need to specify at least one column"))
                }
                "custom-columns" => CalicoOutput::CustomColumns(value.split(',').map(str::to_string).collect()),
                _ => {
                    return Err(ctx
                        .err(ErrorKind::BadFlagValue, format!("calicoctl get: unrecognized output format '{other}'")))
                }
            }
        }
    };
    Ok(Op::CalicoGet {
        target,
        output,
        namespace: f.last("namespace").map(str::to_string),
        all_namespaces: f.on("all-namespaces"),
        export: f.on("export"),
        recursive: f.on("recursive"),
        skip_empty: f.on("skip-empty"),
    })
}

fn calico_patch(ctx: &mut Ctx, args: &[String]) -> Result<Op, CommandError> {
    let f = parse_flags(args, C_PATCH, Style::Docopt, "calicoctl", "patch", ctx.line)?;
    calico_common(ctx, &f);
    let usage = "usage: calicoctl patch <KIND> <NAME> --patch=<PATCH>";
    let (kind, name) = match f.pos.as_slice() {
        [k, n] => (k, n),
        [] | [_] => {
            return Err(ctx.err(ErrorKind::Usage, format!("calicoctl patch: <KIND> and <NAME> are required ({usage})")))
        }
        [_, _, extra, ..] => {
            return Err(ctx.err(ErrorKind::Usage, format!("calicoctl patch: unexpected argument '{extra}' ({usage})")))
        }
    };
    let kind = calico_kind(ctx, kind)?;
    let Some(text) = f.last("patch") else {
        return Err(ctx.err(ErrorKind::Usage, format!("calicoctl patch: -p/--patch is required ({usage})")));
    };
    let patch: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        let (l, c) = (e.line(), e.column());
        ctx.err(
            ErrorKind::InvalidPatch { line: l, column: c },
            format!(
                "calicoctl patch: --patch is not valid JSON: {e} of the patch\n  {}\n  {}^",
                text.lines().nth(l.saturating_sub(1)).unwrap_or(""),
                " ".repeat(c.saturating_sub(1))
            ),
        )
    })?;
    if !patch.is_object() {
        return Err(ctx.err(
            ErrorKind::Usage,
            format!("calicoctl patch: --patch must be a JSON object (a strategic merge patch), not {text}"),
        ));
    }
    Ok(Op::CalicoPatch {
        kind,
        name: name.clone(),
        patch,
        patch_type: f.last("type").map(str::to_string),
        namespace: f.last("namespace").map(str::to_string),
    })
}

/// `calicoctl <sub> [-h] <command> …`: checks the options before the command (only -h exists) and returns
/// the index of the command word.
fn leading_help_options(ctx: &Ctx, args: &[String], sub: &str) -> Result<usize, CommandError> {
    let mut k = 0;
    while let Some(a) = args.get(k) {
        if !a.starts_with('-') || a == "-" {
            break;
        }
        parse_flags(std::slice::from_ref(a), C_HELP_ONLY, Style::Docopt, "calicoctl", sub, ctx.line)?;
        k += 1;
    }
    Ok(k)
}

fn calico_node(ctx: &mut Ctx, args: &[String]) -> Result<Op, CommandError> {
    // `calicoctl node <command> [<args>...]`, options first (only -h).
    let k = leading_help_options(ctx, args, "node")?;
    match args.get(k).map(String::as_str) {
        Some("status") => {
            let f = parse_flags(&args[k + 1..], C_NODE_STATUS, Style::Docopt, "calicoctl", "node status", ctx.line)?;
            calico_common(ctx, &f);
            if let Some(p) = f.pos.first() {
                return Err(ctx.err(ErrorKind::Usage, format!("calicoctl node status: unexpected argument '{p}'")));
            }
            Ok(Op::CalicoNodeStatus)
        }
        Some(s @ ("run" | "diags" | "checksystem")) => Err(calico_unsupported(ctx, &format!("node {s}"))),
        Some(other) => Err(ctx.err(
            ErrorKind::UnknownCommand,
            format!("calicoctl node: unknown command: \"{other}\" (rrlab supports: calicoctl node status)"),
        )),
        None => {
            Err(ctx
                .err(ErrorKind::Usage, "calicoctl node: no subcommand given (rrlab supports: calicoctl node status)"))
        }
    }
}

fn calico_ipam(ctx: &mut Ctx, args: &[String]) -> Result<Op, CommandError> {
    let k = leading_help_options(ctx, args, "ipam")?;
    match args.get(k).map(String::as_str) {
        Some("show") => {
            let f = parse_flags(&args[k + 1..], C_IPAM_SHOW, Style::Docopt, "calicoctl", "ipam show", ctx.line)?;
            calico_common(ctx, &f);
            if let Some(p) = f.pos.first() {
                return Err(ctx.err(ErrorKind::Usage, format!("calicoctl ipam show: unexpected argument '{p}'")));
            }
            let mut chosen = Vec::new();
            if let Some(ip) = f.last("ip") {
                chosen.push(IpamShow::Ip(ip.to_string()));
            }
            if f.on("show-blocks") {
                chosen.push(IpamShow::Blocks);
            }
            if f.on("show-borrowed") {
                chosen.push(IpamShow::Borrowed);
            }
            if f.on("show-configuration") {
                chosen.push(IpamShow::Configuration);
            }
            if chosen.len() > 1 {
                return Err(ctx.err(
                    ErrorKind::Usage,
                    "calicoctl ipam show: --ip, --show-blocks, --show-borrowed and --show-configuration are mutually exclusive",
                ));
            }
            Ok(Op::CalicoIpamShow { show: chosen.pop().unwrap_or(IpamShow::Pools) })
        }
        Some(s @ ("check" | "release" | "configure" | "split")) => Err(calico_unsupported(ctx, &format!("ipam {s}"))),
        Some(other) => Err(ctx.err(
            ErrorKind::UnknownCommand,
            format!("calicoctl ipam: unknown command: \"{other}\" (rrlab supports: calicoctl ipam show)"),
        )),
        None => {
            Err(ctx.err(ErrorKind::Usage, "calicoctl ipam: no subcommand given (rrlab supports: calicoctl ipam show)"))
        }
    }
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::super::shell::{parse_script, parse_script_with_env};
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn s(v: &str) -> String {
        v.to_string()
    }
    fn kv(k: &str, v: &str) -> (String, String) {
        (s(k), s(v))
    }

    /// Parses a one-command script through both layers.
    fn parse(src: &str) -> Result<Parsed, CommandError> {
        let mut cls = parse_script(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert_eq!(cls.len(), 1, "{src:?}");
        parse_command(&cls.remove(0))
    }
    fn op(src: &str) -> Op {
        parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}")).op
    }
    fn bad(src: &str) -> CommandError {
        parse(src).expect_err(src)
    }

    fn peer_body(name: &str, node_sel: &str, peer_sel: &str) -> String {
        format!("kind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: {name}\nspec:\n  nodeSelector: {node_sel}\n  peerSelector: {peer_sel}\n")
    }

    // ---- the post and procedures.md, verbatim -----------------------------

    #[test]
    fn post_step1_annotate_cluster_id() {
        let p = parse("kubectl annotate node my-node projectcalico.org/RouteReflectorClusterID=244.0.0.1").unwrap();
        assert_eq!(
            p,
            Parsed {
                op: Op::Annotate {
                    nodes: vec![s("my-node")],
                    all: false,
                    selector: None,
                    set: vec![kv("projectcalico.org/RouteReflectorClusterID", "244.0.0.1")],
                    remove: vec![],
                    overwrite: false,
                },
                env: vec![],
                sudo: false,
                context: None,
                config: None,
                allow_version_mismatch: false,
                line: 1,
            }
        );
    }

    #[test]
    fn post_step2_label_partition() {
        assert_eq!(
            op("kubectl label node my-node rr-partition=A"),
            Op::Label {
                nodes: vec![s("my-node")],
                all: false,
                selector: None,
                set: vec![kv("rr-partition", "A")],
                remove: vec![],
                overwrite: false
            }
        );
        // The public-cloud label the procedures rely on.
        assert_eq!(
            op("kubectl label node my-node cloud-type=public"),
            Op::Label {
                nodes: vec![s("my-node")],
                all: false,
                selector: None,
                set: vec![kv("cloud-type", "public")],
                remove: vec![],
                overwrite: false
            }
        );
    }

    #[test]
    fn post_step3_three_bgppeers() {
        let src = "# non-public cloud\n# 私有云节点设置route reflector\ncalicoctl apply -f - << EOF\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: node-rr-partition-a\nspec:\n  nodeSelector: cloud-type != 'public'\n  peerSelector: rr-partition == 'A'\nEOF\n# public cloud\n# 公有云节点设置route reflector\ncalicoctl apply -f - << EOF\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: node-rr-partition-b\nspec:\n  nodeSelector: cloud-type == 'public'\n  peerSelector: rr-partition == 'B'\nEOF\n# rr-full-mesh\n# 所有rr节点之间full mesh\ncalicoctl apply -f - << EOF\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: rr-full-mesh\nspec:\n  nodeSelector: has(rr-partition)\n  peerSelector: has(rr-partition)\nEOF\n";
        let parsed: Vec<Parsed> = parse_script(src).unwrap().iter().map(|c| parse_command(c).unwrap()).collect();
        let bodies = [
            peer_body("node-rr-partition-a", "cloud-type != 'public'", "rr-partition == 'A'"),
            peer_body("node-rr-partition-b", "cloud-type == 'public'", "rr-partition == 'B'"),
            peer_body("rr-full-mesh", "has(rr-partition)", "has(rr-partition)"),
        ];
        assert_eq!(parsed.len(), 3);
        for ((p, body), line) in parsed.iter().zip(bodies).zip([3, 14, 25]) {
            assert_eq!(p.line, line);
            assert_eq!(
                p.op,
                Op::CalicoApply {
                    mode: ApplyMode::Apply,
                    source: Source::Stdin(body),
                    recursive: false,
                    skip_empty: false,
                    skip_exists: false,
                    namespace: None
                }
            );
        }
    }

    #[test]
    fn post_step4_patch_mesh_off() {
        assert_eq!(
            op(r#"calicoctl patch bgpconfiguration default -p '{"spec": {"nodeToNodeMeshEnabled": false}}'"#),
            Op::CalicoPatch {
                kind: ResourceKind::BgpConfiguration,
                name: s("default"),
                patch: json!({"spec": {"nodeToNodeMeshEnabled": false}}),
                patch_type: None,
                namespace: None
            }
        );
    }

    #[test]
    fn post_node_status() {
        assert_eq!(op("calicoctl node status"), Op::CalicoNodeStatus);
        let p = parse("sudo calicoctl node status").unwrap();
        assert_eq!((p.op, p.sudo), (Op::CalicoNodeStatus, true));
    }

    #[test]
    fn post_rollback() {
        assert_eq!(
            op(r#"calicoctl patch bgpconfiguration default -p '{"spec": {"nodeToNodeMeshEnabled": true}}'"#),
            Op::CalicoPatch {
                kind: ResourceKind::BgpConfiguration,
                name: s("default"),
                patch: json!({"spec": {"nodeToNodeMeshEnabled": true}}),
                patch_type: None,
                namespace: None
            }
        );
        let env: HashMap<String, String> = [(s("NODE"), s("rr1"))].into();
        let cls = parse_script_with_env("kubectl annotate node $NODE projectcalico.org/RouteReflectorClusterID-", &env)
            .unwrap();
        assert_eq!(
            parse_command(&cls[0]).unwrap().op,
            Op::Annotate {
                nodes: vec![s("rr1")],
                all: false,
                selector: None,
                set: vec![],
                remove: vec![s("projectcalico.org/RouteReflectorClusterID")],
                overwrite: false
            }
        );
        // Procedures: "Delete every BGPPeer".
        assert_eq!(
            op("calicoctl delete bgppeer node-rr-partition-a node-rr-partition-b rr-full-mesh"),
            Op::CalicoDelete {
                target: CalicoTarget::Resources {
                    kind: ResourceKind::BgpPeer,
                    names: vec![s("node-rr-partition-a"), s("node-rr-partition-b"), s("rr-full-mesh")]
                },
                skip_not_exists: false,
                recursive: false,
                skip_empty: false,
                namespace: None
            }
        );
    }

    #[test]
    fn post_cross_cluster_as_numbers_and_external_peer() {
        let src = "# 设置两个集群的 asNumber\ncalicoctl patch bgpconfiguration default -p '{\"spec\": {\"asNumber\": \"63400\"}}'\ncalicoctl patch bgpconfiguration default -p '{\"spec\": {\"asNumber\": \"63401\"}}'\n# 创建 bgppeer\ncalicoctl apply -f - << EOF\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: rr-external-node\nspec:\n  node: $NODE_NAME\n  peerIP: $TARGET_NODE_IP\n  asNumber: $ASN\nEOF\n";
        let env: HashMap<String, String> =
            [(s("NODE_NAME"), s("c1-rr")), (s("TARGET_NODE_IP"), s("10.219.204.207")), (s("ASN"), s("63401"))].into();
        let ops: Vec<Op> =
            parse_script_with_env(src, &env).unwrap().iter().map(|c| parse_command(c).unwrap().op).collect();
        let patch = |asn: &str| Op::CalicoPatch {
            kind: ResourceKind::BgpConfiguration,
            name: s("default"),
            patch: json!({"spec": {"asNumber": asn}}),
            patch_type: None,
            namespace: None,
        };
        assert_eq!(
            ops,
            vec![
                patch("63400"),
                patch("63401"),
                Op::CalicoApply {
                    mode: ApplyMode::Apply,
                    source: Source::Stdin(s("kind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata:\n  name: rr-external-node\nspec:\n  node: c1-rr\n  peerIP: 10.219.204.207\n  asNumber: 63401\n")),
                    recursive: false,
                    skip_empty: false,
                    skip_exists: false,
                    namespace: None
                }
            ]
        );
    }

    #[test]
    fn post_external_nodes_env_and_felixconfiguration() {
        assert_eq!(
            op("kubectl set env daemonset/calico-node -n kube-system FELIX_EXTERNALNODESCIDRLIST=10.246.0.0/16"),
            Op::SetEnv {
                namespace: s("kube-system"),
                object: s("calico-node"),
                container: None,
                set: vec![kv("FELIX_EXTERNALNODESCIDRLIST", "10.246.0.0/16")],
                remove: vec![]
            }
        );
        let src = "calicoctl apply -f - <<EOF\napiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec:\n  externalNodesList:\n    - 10.219.204.207/32 # node CIDR from other clusters\nEOF\n";
        assert_eq!(
            op(src),
            Op::CalicoApply {
                mode: ApplyMode::Apply,
                source: Source::Stdin(s("apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec:\n  externalNodesList:\n    - 10.219.204.207/32 # node CIDR from other clusters\n")),
                recursive: false,
                skip_empty: false,
                skip_exists: false,
                namespace: None
            }
        );
    }

    #[test]
    fn post_remote_ippool() {
        let src = "calicoctl create -f - <<'EOF'\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: cluster2\nspec:\n  cidr: 172.28.0.0/16\n  ipipMode: Always\nEOF";
        let Op::CalicoApply { mode, source: Source::Stdin(body), .. } = op(src) else { panic!() };
        assert_eq!(mode, ApplyMode::Create);
        assert!(body.contains("cidr: 172.28.0.0/16\n"));
    }

    #[test]
    fn post_ipset_is_unsupported() {
        let e = bad("sudo ipset --list cali40all-hosts-net");
        assert_eq!(e.kind, ErrorKind::UnsupportedCommand);
        assert!(e.message.starts_with("unsupported command 'ipset' (rrlab supports: kubectl label|annotate node"));
    }

    // ---- kubectl ----------------------------------------------------------

    #[test]
    fn kubectl_label_forms() {
        let want = |nodes: &[&str], overwrite: bool| Op::Label {
            nodes: nodes.iter().map(|n| s(n)).collect(),
            all: false,
            selector: None,
            set: vec![kv("rr-partition", "B")],
            remove: vec![s("old")],
            overwrite,
        };
        assert_eq!(op("kubectl label nodes a b rr-partition=B old-"), want(&["a", "b"], false));
        assert_eq!(op("kubectl label no/a node/b rr-partition=B old- --overwrite"), want(&["a", "b"], true));
        assert_eq!(op("kubectl --overwrite label Node a rr-partition=B old-"), want(&["a"], true));
        assert_eq!(op("kubectl label --overwrite=true node a rr-partition=B old-"), want(&["a"], true));
        assert_eq!(op("kubectl label --overwrite=false node a rr-partition=B old-"), want(&["a"], false));
        assert_eq!(op("kubectl label node a -- rr-partition=B old-"), want(&["a"], false));
        // Later value wins; the same key removed twice is removed once.
        assert_eq!(
            op("kubectl label node a x=1 x=2 y- y-"),
            Op::Label {
                nodes: vec![s("a")],
                all: false,
                selector: None,
                set: vec![kv("x", "2")],
                remove: vec![s("y")],
                overwrite: false
            }
        );
        // Empty label value is valid.
        assert_eq!(
            op("kubectl label node a x="),
            Op::Label {
                nodes: vec![s("a")],
                all: false,
                selector: None,
                set: vec![kv("x", "")],
                remove: vec![],
                overwrite: false
            }
        );
    }

    #[test]
    fn kubectl_label_all_and_selector() {
        assert_eq!(
            op("kubectl label nodes --all cloud-type=public"),
            Op::Label {
                nodes: vec![],
                all: true,
                selector: None,
                set: vec![kv("cloud-type", "public")],
                remove: vec![],
                overwrite: false
            }
        );
        assert_eq!(
            op("kubectl label nodes -l rr-partition=A rr-partition- "),
            Op::Label {
                nodes: vec![],
                all: false,
                selector: Some(s("rr-partition=A")),
                set: vec![],
                remove: vec![s("rr-partition")],
                overwrite: false
            }
        );
        assert_eq!(bad("kubectl label nodes --all a x=1").kind, ErrorKind::Usage);
    }

    #[test]
    fn kubectl_global_flags() {
        let p = parse("kubectl --context kind-c1 -n kube-system --kubeconfig=/tmp/kc label node a x=1").unwrap();
        assert_eq!(p.context.as_deref(), Some("kind-c1"));
        assert_eq!(p.config.as_deref(), Some("/tmp/kc"));
        let p = parse("kubectl label node a x=1 --context=kind-c2 -v 6").unwrap();
        assert_eq!(p.context.as_deref(), Some("kind-c2"));
        let p = parse("kubectl -n=kube-system set env ds/calico-node -c calico-node X=1").unwrap();
        assert_eq!(
            p.op,
            Op::SetEnv {
                namespace: s("kube-system"),
                object: s("calico-node"),
                container: Some(s("calico-node")),
                set: vec![kv("X", "1")],
                remove: vec![]
            }
        );
    }

    #[test]
    fn kubectl_label_errors() {
        let e = bad("kubectl label node a 'bad key!=x'");
        assert_eq!(e.kind, ErrorKind::InvalidKeyOrValue);
        assert!(
            e.message.starts_with(
                "kubectl label: invalid label key \"bad key!\": name part must consist of alphanumeric characters"
            ),
            "{}",
            e.message
        );
        let e = bad("kubectl label node a Example.com/x=1");
        assert!(
            e.message.starts_with(
                "kubectl label: invalid label key \"Example.com/x\": prefix part a lowercase RFC 1123 subdomain"
            ),
            "{}",
            e.message
        );
        let long = "k".repeat(64);
        let e = bad(&format!("kubectl label node a {long}=1"));
        assert!(e.message.ends_with("name part must be no more than 63 characters"), "{}", e.message);
        let e = bad("kubectl label node a /x=1");
        assert!(e.message.ends_with("prefix part must be non-empty"), "{}", e.message);
        let e = bad("kubectl label node a a/b/c=1");
        assert!(e.message.contains("a qualified name must consist of"), "{}", e.message);
        let e = bad("kubectl label node a x=has_space_");
        assert_eq!(e.kind, ErrorKind::InvalidKeyOrValue);
        assert!(
            e.message.starts_with(
                "kubectl label: invalid label value: \"x=has_space_\": a valid label must be an empty string"
            ),
            "{}",
            e.message
        );
        let e = bad(&format!("kubectl label node a x={}", "v".repeat(64)));
        assert!(e.message.ends_with("must be no more than 63 characters"));
        assert_eq!(bad("kubectl label node a x=1=2").message, "kubectl label: invalid label spec: x=1=2");
        assert_eq!(
            bad("kubectl label node a x=1 x-").message,
            "kubectl label: can not both modify and remove a label in the same command"
        );
        assert_eq!(
            bad("kubectl label node a x=1 b").message,
            "kubectl label: all resources must be specified before label changes: b"
        );
        assert_eq!(bad("kubectl label node a").message, "kubectl label: at least one label update is required");
        assert_eq!(
            bad("kubectl label node x=1").message,
            "kubectl label: resource(s) were provided, but no name, label selector, or --all flag specified"
        );
        assert_eq!(
            bad("kubectl label x=1").message,
            "kubectl label: one or more resources must be specified as <resource> <name> or <resource>/<name>"
        );
        let e = bad("kubectl label pod a x=1");
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::UnsupportedCommand, "kubectl label: rrlab models only nodes, not 'pod'")
        );
        assert_eq!(bad("kubectl label node node/a x=1").kind, ErrorKind::Usage);
    }

    #[test]
    fn kubectl_unknown_flag_and_values() {
        let e = bad("kubectl label node a x=1 --foo");
        assert_eq!(e.kind, ErrorKind::UnknownFlag);
        assert!(
            e.message.starts_with(
                "kubectl: unknown flag --foo for 'label' (accepted: --overwrite, --all, -l/--selector, --context"
            ),
            "{}",
            e.message
        );
        let e = bad("kubectl get nodes -z");
        assert!(e.message.starts_with("kubectl: unknown flag -z for 'get'"));
        let e = bad("kubectl label node a x=1 --overwrite=maybe");
        assert_eq!(e.kind, ErrorKind::BadFlagValue);
        assert_eq!(
            e.message,
            "kubectl label: invalid argument \"maybe\" for \"--overwrite\" flag: expected true or false"
        );
        let e = bad("kubectl label node a x=1 -l");
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::BadFlagValue, "kubectl label: flag needs an argument: -l")
        );
        let e = bad("kubectl get nodes --output");
        assert_eq!(e.message, "kubectl get: flag needs an argument: --output");
        assert_eq!(bad("kubectl label node a x=1 --help").kind, ErrorKind::UnsupportedCommand);
    }

    #[test]
    fn kubectl_annotate_values_and_errors() {
        assert_eq!(
            op("kubectl annotate node a note='a value with = and spaces' --overwrite"),
            Op::Annotate {
                nodes: vec![s("a")],
                all: false,
                selector: None,
                set: vec![kv("note", "a value with = and spaces")],
                remove: vec![],
                overwrite: true
            }
        );
        let e = bad("kubectl annotate node a 'Bad Key=1'");
        assert!(
            e.message.starts_with("kubectl annotate: invalid annotation key \"Bad Key\": name part"),
            "{}",
            e.message
        );
        assert_eq!(
            bad("kubectl annotate node a k=1 k-").message,
            "kubectl annotate: can not both modify and remove the following annotation(s) in the same command: k"
        );
        assert_eq!(
            bad("kubectl annotate node a").message,
            "kubectl annotate: at least one annotation update is required"
        );
    }

    #[test]
    fn kubectl_get_nodes() {
        assert_eq!(
            op("kubectl get nodes"),
            Op::KubectlGetNodes {
                names: vec![],
                output: KubectlOutput::Table,
                show_labels: false,
                selector: None,
                no_headers: false
            }
        );
        assert_eq!(
            op("kubectl get no --show-labels -o wide"),
            Op::KubectlGetNodes {
                names: vec![],
                output: KubectlOutput::Wide,
                show_labels: true,
                selector: None,
                no_headers: false
            }
        );
        assert_eq!(
            op("kubectl get node rr1 rr2 -oyaml"),
            Op::KubectlGetNodes {
                names: vec![s("rr1"), s("rr2")],
                output: KubectlOutput::Yaml,
                show_labels: false,
                selector: None,
                no_headers: false
            }
        );
        assert_eq!(
            op("kubectl get nodes -l 'cloud-type!=public' --output=name --no-headers"),
            Op::KubectlGetNodes {
                names: vec![],
                output: KubectlOutput::Name,
                show_labels: false,
                selector: Some(s("cloud-type!=public")),
                no_headers: true
            }
        );
        assert_eq!(
            op("kubectl get node/rr1 -o json"),
            Op::KubectlGetNodes {
                names: vec![s("rr1")],
                output: KubectlOutput::Json,
                show_labels: false,
                selector: None,
                no_headers: false
            }
        );
        assert_eq!(bad("kubectl get nodes -o jsonpath='{.items}'").kind, ErrorKind::BadFlagValue);
        assert_eq!(bad("kubectl get pods").message, "kubectl get: rrlab models only nodes, not 'pods'");
        assert_eq!(bad("kubectl get nodes,pods").kind, ErrorKind::UnsupportedCommand);
        assert_eq!(bad("kubectl get").kind, ErrorKind::Usage);
        assert_eq!(
            bad("kubectl get nodes rr1 -l a=b").message,
            "kubectl get: name cannot be provided when a selector is specified"
        );
    }

    #[test]
    fn kubectl_set_env() {
        assert_eq!(
            op("kubectl set env ds/calico-node FELIX_EXTERNALNODESCIDRLIST=10.246.0.0/16,10.219.204.207/32 OLD-"),
            Op::SetEnv {
                namespace: s("default"),
                object: s("calico-node"),
                container: None,
                set: vec![kv("FELIX_EXTERNALNODESCIDRLIST", "10.246.0.0/16,10.219.204.207/32")],
                remove: vec![s("OLD")]
            }
        );
        assert_eq!(
            op("kubectl -n kube-system set env daemonset calico-node --env=A=x=y -e B=2"),
            Op::SetEnv {
                namespace: s("kube-system"),
                object: s("calico-node"),
                container: None,
                set: vec![kv("A", "x=y"), kv("B", "2")],
                remove: vec![]
            }
        );
        let e = bad("kubectl set env ds/calico-node 1BAD=x");
        assert_eq!(e.kind, ErrorKind::InvalidKeyOrValue);
        assert!(e.message.starts_with("kubectl set env: invalid environment variable name \"1BAD\""));
        assert_eq!(
            bad("kubectl set env ds/calico-node").message,
            "kubectl set env: at least one environment variable must be provided"
        );
        assert_eq!(bad("kubectl set env deployment/x A=1").kind, ErrorKind::UnsupportedCommand);
        let e = bad("kubectl set image ds/calico-node calico-node=x");
        assert!(e.message.starts_with("unsupported command 'kubectl set image' (rrlab supports:"), "{}", e.message);
    }

    #[test]
    fn kubectl_apply_create_delete() {
        assert_eq!(
            op("kubectl apply -f nodes.yaml"),
            Op::KubectlApply { source: Source::File(s("nodes.yaml")), namespace: None }
        );
        assert_eq!(
            op("kubectl create -n kube-system -f - <<EOF\nkind: Node\nEOF"),
            Op::KubectlCreate { source: Source::Stdin(s("kind: Node\n")), namespace: Some(s("kube-system")) }
        );
        assert_eq!(
            op("kubectl delete --filename=x.yaml"),
            Op::KubectlDelete { source: Source::File(s("x.yaml")), namespace: None }
        );
        let e = bad("kubectl apply -f -");
        assert_eq!(e.kind, ErrorKind::NoStdin);
        assert_eq!(
            e.message,
            "kubectl apply -f - reads standard input, but the command has no heredoc (<< EOF) or here-string (<<<)"
        );
        assert_eq!(bad("kubectl apply").message, "kubectl apply: must specify one of -f and -k");
        assert_eq!(bad("kubectl delete node a").kind, ErrorKind::UnsupportedCommand);
    }

    #[test]
    fn unknown_commands() {
        let e = bad("kubectl drain rr1");
        assert_eq!(e.kind, ErrorKind::UnsupportedCommand);
        assert_eq!(e.message, format!("unsupported command 'kubectl drain' (rrlab supports: {RRLAB_SUPPORTS})"));
        assert_eq!(e.to_string(), format!("line 1: {}", e.message));
        let e = bad("calicoctl frobnicate");
        assert_eq!(e.kind, ErrorKind::UnknownCommand);
        assert!(e.message.starts_with("calicoctl: unknown command: \"frobnicate\""));
        let e = bad("calicoctl label nodes a x=y");
        assert_eq!(e.kind, ErrorKind::UnsupportedCommand);
        assert_eq!(e.message, format!("unsupported command 'calicoctl label' (rrlab supports: {CALICO_SUPPORTS})"));
        assert_eq!(
            bad("calicoctl node run").message,
            format!("unsupported command 'calicoctl node run' (rrlab supports: {CALICO_SUPPORTS})")
        );
        assert_eq!(bad("calicoctl node frob").kind, ErrorKind::UnknownCommand);
        assert_eq!(bad("calicoctl").kind, ErrorKind::Usage);
        assert_eq!(bad("kubectl").kind, ErrorKind::Usage);
        assert_eq!(bad("sudo").message, "no command after 'sudo'");
        assert_eq!(bad("echo hi").message, format!("unsupported command 'echo' (rrlab supports: {RRLAB_SUPPORTS})"));
    }

    // ---- prefixes ---------------------------------------------------------

    #[test]
    fn env_prefix_sudo_and_paths() {
        let p = parse("DATASTORE_TYPE=kubernetes KUBECONFIG=~/.kube/config calicoctl get nodes").unwrap();
        assert_eq!(p.env, vec![kv("DATASTORE_TYPE", "kubernetes"), kv("KUBECONFIG", "~/.kube/config")]);
        assert!(!p.sudo);
        assert_eq!(
            p.op,
            Op::CalicoGet {
                target: CalicoTarget::Resources { kind: ResourceKind::Node, names: vec![] },
                output: CalicoOutput::Ps,
                namespace: None,
                all_namespaces: false,
                export: false,
                recursive: false,
                skip_empty: false
            }
        );
        let p = parse("sudo -E DATASTORE_TYPE=kubernetes /usr/local/bin/calicoctl node status").unwrap();
        assert_eq!(
            (p.sudo, p.env.clone(), p.op),
            (true, vec![kv("DATASTORE_TYPE", "kubernetes")], Op::CalicoNodeStatus)
        );
        assert_eq!(bad("sudo -u root calicoctl node status").kind, ErrorKind::UnsupportedCommand);
        assert_eq!(op("kubectl calico node status"), Op::CalicoNodeStatus);
    }

    #[test]
    fn shell_assignments() {
        assert_eq!(op("NODE=rr1"), Op::ShellAssign { vars: vec![kv("NODE", "rr1")], export: false });
        assert_eq!(op("export A=1 B=2"), Op::ShellAssign { vars: vec![kv("A", "1"), kv("B", "2")], export: true });
        assert_eq!(bad("export A").kind, ErrorKind::UnsupportedCommand);
        assert_eq!(
            parse_command(&CommandLine { argv: vec![], stdin: None, line: 7, text: s("") }).unwrap_err().line,
            7
        );
    }

    // ---- calicoctl --------------------------------------------------------

    #[test]
    fn calicoctl_kinds_and_aliases() {
        for (names, kind) in [
            (
                &["bgpconfiguration", "bgpconfigurations", "bgpconfig", "bgpconfigs", "BGPConfiguration"][..],
                ResourceKind::BgpConfiguration,
            ),
            (&["bgppeer", "bgppeers", "bgpp", "bgpps", "bp", "bps", "BGPPeer"][..], ResourceKind::BgpPeer),
            (&["ippool", "ippools", "ipp", "ipps", "pool", "pools", "IPPool"][..], ResourceKind::IpPool),
            (&["node", "nodes", "no", "nos", "Node"][..], ResourceKind::Node),
            (
                &["felixconfiguration", "felixconfigurations", "felixconfig", "felixconfigs", "FelixConfiguration"][..],
                ResourceKind::FelixConfiguration,
            ),
        ] {
            for n in names {
                assert_eq!(ResourceKind::from_name(n), Some(kind), "{n}");
                assert_eq!(
                    op(&format!("calicoctl get {n} x -o yaml")),
                    Op::CalicoGet {
                        target: CalicoTarget::Resources { kind, names: vec![s("x")] },
                        output: CalicoOutput::Yaml,
                        namespace: None,
                        all_namespaces: false,
                        export: false,
                        recursive: false,
                        skip_empty: false
                    }
                );
            }
        }
        assert_eq!(ResourceKind::BgpPeer.kind(), "BGPPeer");
        let e = bad("calicoctl get globalnetworkpolicy");
        assert_eq!(e.kind, ErrorKind::UnknownKind);
        assert!(e.message.starts_with("calicoctl: resource type 'globalnetworkpolicy' is not supported"));
    }

    #[test]
    fn calicoctl_get_outputs_and_flags() {
        let get = |src: &str| match op(src) {
            Op::CalicoGet { output, .. } => output,
            o => panic!("{o:?}"),
        };
        assert_eq!(get("calicoctl get bgpp"), CalicoOutput::Ps);
        assert_eq!(get("calicoctl get bgpp -o wide"), CalicoOutput::Wide);
        assert_eq!(get("calicoctl get bgpp -oyml"), CalicoOutput::Yaml);
        assert_eq!(get("calicoctl get bgpp --output=json"), CalicoOutput::Json);
        assert_eq!(get("calicoctl get bgpp --out json"), CalicoOutput::Json);
        assert_eq!(
            get("calicoctl get bgpp -o custom-columns=NAME,ASN"),
            CalicoOutput::CustomColumns(vec![s("NAME"), s("ASN")])
        );
        assert_eq!(get("calicoctl get bgpp -o 'go-template={{.Name}}'"), CalicoOutput::GoTemplate(s("{{.Name}}")));
        assert_eq!(get("calicoctl get bgpp -o go-template-file=t.tmpl"), CalicoOutput::GoTemplateFile(s("t.tmpl")));
        assert_eq!(bad("calicoctl get bgpp -o table").message, "calicoctl get: unrecognized output format 'table'");
        assert_eq!(
            bad("calicoctl get bgpp -o custom-columns=").message,
            "calicoctl get: need to specify at least one column"
        );
        let p = parse("calicoctl --allow-version-mismatch -l debug --context c1 get -a --export ippools default-ipv4-ippool -c /etc/calico/calicoctl.cfg").unwrap();
        assert_eq!(
            (p.context.as_deref(), p.config.as_deref(), p.allow_version_mismatch),
            (Some("c1"), Some("/etc/calico/calicoctl.cfg"), true)
        );
        assert_eq!(
            p.op,
            Op::CalicoGet {
                target: CalicoTarget::Resources { kind: ResourceKind::IpPool, names: vec![s("default-ipv4-ippool")] },
                output: CalicoOutput::Ps,
                namespace: None,
                all_namespaces: true,
                export: true,
                recursive: false,
                skip_empty: false
            }
        );
        assert_eq!(
            op("calicoctl get -f peers.yaml -R --skip-empty"),
            Op::CalicoGet {
                target: CalicoTarget::Source(Source::File(s("peers.yaml"))),
                output: CalicoOutput::Ps,
                namespace: None,
                all_namespaces: false,
                export: false,
                recursive: true,
                skip_empty: true
            }
        );
        assert_eq!(bad("calicoctl get bgpp -f x.yaml").kind, ErrorKind::Usage);
        assert_eq!(bad("calicoctl get").kind, ErrorKind::Usage);
        assert_eq!(bad("calicoctl get bgpp -R").kind, ErrorKind::Usage);
        assert_eq!(bad("calicoctl -l loud get bgpp").kind, ErrorKind::BadFlagValue);
    }

    #[test]
    fn calicoctl_global_options_only_before_command() {
        // `-l` after the command is not log-level; `get` has no -l.
        let e = bad("calicoctl get bgpp -l debug");
        assert_eq!(e.kind, ErrorKind::UnknownFlag);
        assert!(e.message.starts_with("calicoctl: unknown flag -l for 'get'"));
        // node status accepts no --context of its own, but the global one works.
        assert_eq!(bad("calicoctl node status --context c1").kind, ErrorKind::UnknownFlag);
        let p = parse("calicoctl --context=c1 node status --allow-version-mismatch").unwrap();
        assert_eq!((p.context.as_deref(), p.allow_version_mismatch, p.op), (Some("c1"), true, Op::CalicoNodeStatus));
        assert_eq!(bad("calicoctl node status extra").kind, ErrorKind::Usage);
        assert_eq!(
            bad("calicoctl --foo node status").message.split(" (").next(),
            Some("calicoctl: unknown flag --foo for 'calicoctl'")
        );
    }

    #[test]
    fn calicoctl_apply_create_replace() {
        assert_eq!(
            op("calicoctl create --skip-exists -f=- <<< 'kind: BGPPeer'"),
            // docopt keeps "=-" as the value of a short option
            Op::CalicoApply {
                mode: ApplyMode::Create,
                source: Source::File(s("=-")),
                recursive: false,
                skip_empty: false,
                skip_exists: true,
                namespace: None
            }
        );
        assert_eq!(
            op("calicoctl replace --filename=peers/ -R -c cfg.yaml --context kind-c1"),
            Op::CalicoApply {
                mode: ApplyMode::Replace,
                source: Source::File(s("peers/")),
                recursive: true,
                skip_empty: false,
                skip_exists: false,
                namespace: None
            }
        );
        assert_eq!(
            op("calicoctl apply --file - -n ns1 <<EOF\nx\nEOF"),
            Op::CalicoApply {
                mode: ApplyMode::Apply,
                source: Source::Stdin(s("x\n")),
                recursive: false,
                skip_empty: false,
                skip_exists: false,
                namespace: Some(s("ns1"))
            }
        );
        let e = bad("calicoctl apply --skip-exists -f x.yaml");
        assert!(e.message.starts_with("calicoctl: unknown flag --skip-exists for 'apply'"), "{}", e.message);
        assert_eq!(
            bad("calicoctl apply -f a.yaml -f b.yaml").message,
            "calicoctl apply: option --filename is given more than once"
        );
        assert_eq!(
            bad("calicoctl apply").message,
            "calicoctl apply: -f/--filename is required (usage: calicoctl apply -f FILE|-)"
        );
        assert_eq!(bad("calicoctl apply x.yaml").kind, ErrorKind::Usage);
        assert_eq!(bad("calicoctl apply -f -").kind, ErrorKind::NoStdin);
        assert_eq!(
            bad("calicoctl apply -f x --recursive=yes").message,
            "calicoctl apply: --recursive must not have an argument"
        );
        assert_eq!(bad("calicoctl apply -f").message, "calicoctl apply: flag needs an argument: -f");
    }

    #[test]
    fn calicoctl_delete() {
        assert_eq!(
            op("calicoctl delete -s -f - <<EOF\nkind: BGPPeer\nEOF"),
            Op::CalicoDelete {
                target: CalicoTarget::Source(Source::Stdin(s("kind: BGPPeer\n"))),
                skip_not_exists: true,
                recursive: false,
                skip_empty: false,
                namespace: None
            }
        );
        let e = bad("calicoctl delete bgppeer x --skip");
        assert_eq!(e.kind, ErrorKind::UnknownFlag);
        assert_eq!(
            e.message,
            "calicoctl: --skip is not a unique prefix for 'delete': --skip-not-exists, --skip-empty?"
        );
        assert_eq!(
            op("calicoctl delete bps x --skip-not"),
            Op::CalicoDelete {
                target: CalicoTarget::Resources { kind: ResourceKind::BgpPeer, names: vec![s("x")] },
                skip_not_exists: true,
                recursive: false,
                skip_empty: false,
                namespace: None
            }
        );
    }

    #[test]
    fn calicoctl_patch_forms() {
        assert_eq!(
            op(
                r#"calicoctl patch node node-0 --patch '{"spec":{"bgp": {"routeReflectorClusterID": "CLUSTER_ID"}}}' --type json"#
            ),
            Op::CalicoPatch {
                kind: ResourceKind::Node,
                name: s("node-0"),
                patch: json!({"spec": {"bgp": {"routeReflectorClusterID": "CLUSTER_ID"}}}),
                patch_type: Some(s("json")),
                namespace: None
            }
        );
        assert_eq!(
            op(r#"calicoctl patch -p'{}' bgpconfig default"#),
            Op::CalicoPatch {
                kind: ResourceKind::BgpConfiguration,
                name: s("default"),
                patch: json!({}),
                patch_type: None,
                namespace: None
            }
        );
        // docopt keeps the '=' of `-p=…` in the value, which is then not JSON.
        assert_eq!(
            bad(r#"calicoctl patch -p='{}' bgpconfig default"#).kind,
            ErrorKind::InvalidPatch { line: 1, column: 1 }
        );
    }

    #[test]
    fn calicoctl_patch_errors() {
        let e = bad(r#"calicoctl patch bgpconfiguration default -p '{"spec": {"nodeToNodeMeshEnabled": fals}}'"#);
        assert_eq!(e.kind, ErrorKind::InvalidPatch { line: 1, column: 40 });
        assert!(
            e.message.starts_with(
                "calicoctl patch: --patch is not valid JSON: expected ident at line 1 column 40 of the patch"
            ),
            "{}",
            e.message
        );
        let e = bad(r#"calicoctl patch bgpconfiguration default -p '{"spec": {"asNumber": 63400}'"#);
        assert_eq!(e.kind, ErrorKind::InvalidPatch { line: 1, column: 28 });
        assert!(e.message.contains("EOF while parsing an object"), "{}", e.message);
        let e = bad("calicoctl patch bgpconfiguration default -p '[1]'");
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::Usage, "calicoctl patch: --patch must be a JSON object (a strategic merge patch), not [1]")
        );
        assert_eq!(
            bad("calicoctl patch bgpconfiguration default").message,
            "calicoctl patch: -p/--patch is required (usage: calicoctl patch <KIND> <NAME> --patch=<PATCH>)"
        );
        assert_eq!(bad("calicoctl patch bgpconfiguration -p '{}'").kind, ErrorKind::Usage);
        assert_eq!(
            bad("calicoctl patch bgpconfiguration a b -p '{}'").message,
            "calicoctl patch: unexpected argument 'b' (usage: calicoctl patch <KIND> <NAME> --patch=<PATCH>)"
        );
        let e = bad("calicoctl patch bgpconfiguration default -p '{}' --foo");
        assert_eq!(e.kind, ErrorKind::UnknownFlag);
        assert!(e.message.starts_with("calicoctl: unknown flag --foo for 'patch' (accepted: -p/--patch, -t/--type, -c/--config, -n/--namespace, --context, --allow-version-mismatch)"), "{}", e.message);
        assert_eq!(bad("calicoctl patch bgpp x -p '{}' -p '{}'").kind, ErrorKind::BadFlagValue);
        assert_eq!(bad("calicoctl patch tier x -p '{}'").kind, ErrorKind::UnknownKind);
    }

    #[test]
    fn calicoctl_ipam_show() {
        assert_eq!(op("calicoctl ipam show"), Op::CalicoIpamShow { show: IpamShow::Pools });
        assert_eq!(op("calicoctl ipam show --show-blocks"), Op::CalicoIpamShow { show: IpamShow::Blocks });
        assert_eq!(op("calicoctl ipam show --show-borrowed"), Op::CalicoIpamShow { show: IpamShow::Borrowed });
        assert_eq!(
            op("calicoctl ipam show --show-configuration"),
            Op::CalicoIpamShow { show: IpamShow::Configuration }
        );
        assert_eq!(
            op("calicoctl ipam show --ip=172.16.1.2"),
            Op::CalicoIpamShow { show: IpamShow::Ip(s("172.16.1.2")) }
        );
        assert_eq!(bad("calicoctl ipam show --show-blocks --show-borrowed").kind, ErrorKind::Usage);
        assert_eq!(bad("calicoctl ipam check").kind, ErrorKind::UnsupportedCommand);
        // `--show` abbreviates three options.
        assert_eq!(bad("calicoctl ipam show --show").kind, ErrorKind::UnknownFlag);
    }

    #[test]
    fn qualified_name_checks() {
        assert_eq!(check_qualified_name("projectcalico.org/RouteReflectorClusterID"), Ok(()));
        assert_eq!(check_qualified_name("rr-partition"), Ok(()));
        assert_eq!(check_qualified_name("a"), Ok(()));
        assert!(check_qualified_name("-a").is_err());
        assert!(check_qualified_name("a.").is_err());
        assert!(check_qualified_name("").is_err());
        assert!(check_qualified_name("x/").is_err());
        assert!(check_qualified_name("a_b.c-d/x").is_err());
        assert!(check_qualified_name(&format!("{}/x", "a".repeat(254))).is_err());
        assert_eq!(check_label_value(""), Ok(()));
        assert_eq!(check_label_value("A.b_c-9"), Ok(()));
        assert!(check_label_value("ü").is_err());
        assert_eq!(check_env_var_name("FELIX_EXTERNALNODESCIDRLIST"), Ok(()));
        assert_eq!(check_env_var_name("my.env-name"), Ok(()));
        assert!(check_env_var_name("").is_err());
    }

    #[test]
    fn no_panic_on_odd_words() {
        let words = [
            "",
            "-",
            "--",
            "---",
            "-=",
            "--=",
            "=",
            "=x",
            "x-",
            "-x",
            "/",
            "node/",
            "/a",
            "ü",
            "-ü",
            "--ü",
            "a=b=c",
            "{",
            "kubectl",
            "calicoctl",
            "sudo",
            "label",
            "get",
            "set",
            "env",
            "node",
            "nodes",
            "patch",
            "-p",
            "-o",
            "-f",
            "-n",
            "-l",
            "--all",
            "--overwrite",
            "bgpp",
            "ipam",
            "show",
            "status",
            "calico",
            "apply",
            "delete",
            "create",
            "-A",
        ];
        let mut n = 0u64;
        for a in words {
            for b in words {
                for c in ["kubectl", "calicoctl", "sudo"] {
                    for d in words {
                        let argv = vec![s(c), s(a), s(b), s(d)];
                        let _ = parse_command(&CommandLine { argv, stdin: Some(s("x")), line: 1, text: s("") });
                        n += 1;
                    }
                }
            }
        }
        assert!(n > 0);
    }
}
