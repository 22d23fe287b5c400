//! Applying resource files to the datastore, all or nothing (a bad document leaves the datastore as it was).

use crate::model::resources::{parse_resources, Located};
use crate::model::InputError;
use crate::twin::datastore::{Datastore, StoreError, WriteMode};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Input(#[from] InputError),
    #[error("{file}: document {document}: {error}")]
    Store { file: String, document: usize, error: StoreError },
}

/// Parse `src` (named `file` in messages) and write every resource with `mode`. Returns what calicoctl would
/// print per resource (e.g. `Successfully applied 3 'BGPPeer' resource(s)`).
pub fn apply_text(ds: &mut Datastore, file: &str, src: &str, mode: WriteMode) -> Result<Vec<Located>, ApplyError> {
    let resources = parse_resources(file, src)?;
    let mut next = ds.clone();
    for r in &resources {
        next.write(r.resource.clone(), mode).map_err(|error| ApplyError::Store {
            file: file.to_string(),
            document: r.origin.document.unwrap_or(0),
            error,
        })?;
    }
    *ds = next;
    Ok(resources)
}

/// calicoctl's summary line for a successful apply/create/replace.
pub fn success_message(resources: &[Located], mode: WriteMode) -> String {
    let verb = match mode {
        WriteMode::Apply => "applied",
        WriteMode::Create => "created",
        WriteMode::Replace => "replaced",
    };
    let mut kinds: Vec<&str> = resources.iter().map(|r| r.resource.kind().calico_name()).collect();
    kinds.dedup();
    let kind = if kinds.len() == 1 { kinds[0].to_string() } else { "resource".to_string() };
    format!("Successfully {verb} {} '{kind}' resource(s)", resources.len())
}
