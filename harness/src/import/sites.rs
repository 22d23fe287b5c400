//! The sites file of `rrlab import --sites FILE`: one CIDR per site, named as its bridge will be.
//!
//! ```yaml
//! sites:
//!   dc-a: 10.0.1.0/24
//!   dc-b: 10.0.2.0/23
//! ```

use ipnet::Ipv4Net;

use crate::model::fields::{Fields, Origin};
use crate::model::yaml::{self, Value};

use super::ImportError;

/// A site of the sites file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SiteSpec {
    pub name: String,
    pub cidr: Ipv4Net,
    pub line: usize,
}

/// The parsed sites file and its name (for errors naming it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SitesFile {
    pub file: String,
    pub sites: Vec<SiteSpec>,
}

/// A site name is a bridge name: a containerlab node name and a Linux interface name (≤ 15 characters).
pub(super) fn valid_site_name(s: &str) -> bool {
    s.len() <= 15
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Parse a sites file; errors name the file, the line and the field (`sites.dc-a`).
pub(super) fn parse(file: &str, text: &str) -> Result<SitesFile, ImportError> {
    let docs = yaml::parse_documents(text).map_err(|e| ImportError::Yaml {
        file: file.to_string(),
        line: e.pos.line,
        message: e.message,
    })?;
    let root = match docs.as_slice() {
        [d] => &d.root,
        [] => return Err(ImportError::field(file, 0, "sites", "is required: the file is empty")),
        [_, d, ..] => {
            return Err(ImportError::field(
                file,
                d.root.pos.map(|p| p.line).unwrap_or(0),
                "",
                "a sites file holds one document",
            ))
        }
    };
    let origin = Origin::new(file, None);
    let f = Fields::new(&origin, root, "").map_err(|e| ImportError::from_input(e, ""))?;
    let line = |n: Option<&yaml::Node>| n.and_then(|n| n.pos).map(|p| p.line).unwrap_or(0);
    let Some(s) = f.get("sites") else {
        return Err(ImportError::field(
            file,
            line(Some(root)),
            "sites",
            "is required: a mapping of site name to CIDR (sites: {dc-a: 10.0.1.0/24})",
        ));
    };
    let Value::Map(entries) = &s.value else {
        return Err(ImportError::field(
            file,
            line(Some(s)),
            "sites",
            format!("expected a mapping of site name to CIDR, found {}", s.type_name()),
        ));
    };
    let mut sites: Vec<SiteSpec> = Vec::new();
    for (name, kp, v) in entries {
        let field = format!("sites.{name}");
        let vline = v.pos.map(|p| p.line).unwrap_or(kp.line);
        if !valid_site_name(name) {
            return Err(ImportError::field(
                file,
                kp.line,
                &field,
                format!("{name:?} is not a bridge name: letters, digits, '-', '_' or '.', starting with a letter or digit, at most 15 characters"),
            ));
        }
        let Some(text) = v.scalar_text() else {
            return Err(ImportError::field(
                file,
                vline,
                &field,
                format!("expected a CIDR (10.0.1.0/24), found {}", v.type_name()),
            ));
        };
        let cidr: Ipv4Net = text.parse().map_err(|_| {
            ImportError::field(file, vline, &field, format!("{text:?} is not an IPv4 CIDR (10.0.1.0/24)"))
        })?;
        if cidr.trunc() != cidr {
            return Err(ImportError::field(
                file,
                vline,
                &field,
                format!("{cidr} has host bits set; did you mean {}?", cidr.trunc()),
            ));
        }
        if cidr.prefix_len() > 30 {
            return Err(ImportError::field(
                file,
                vline,
                &field,
                format!("{cidr} holds no node besides the WAN: a site subnet is at most a /30"),
            ));
        }
        if let Some(o) = sites.iter().find(|o| o.cidr.contains(&cidr.network()) || cidr.contains(&o.cidr.network())) {
            return Err(ImportError::field(
                file,
                vline,
                &field,
                format!("{cidr} overlaps site {} ({}, line {})", o.name, o.cidr, o.line),
            ));
        }
        sites.push(SiteSpec { name: name.clone(), cidr, line: vline });
    }
    if sites.is_empty() {
        return Err(ImportError::field(file, line(Some(s)), "sites", "is empty: give at least one site"));
    }
    f.finish(&[]).map_err(|e| ImportError::from_input(e, ""))?;
    Ok(SitesFile { file: file.to_string(), sites })
}
