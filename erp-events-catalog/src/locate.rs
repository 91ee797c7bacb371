//! Finding the catalog directory, the way sqlx finds its offline data.

use std::path::{Path, PathBuf};

use crate::topics::CATALOG_FILE;

/// Environment variable naming a catalog directory to try first; relative paths are taken from
/// the manifest directory of the crate being compiled (so one value can point a trybuild
/// project at a fixture catalog while the crate under test keeps its own).
pub const OVERRIDE_VAR: &str = "ERP_EVENTS_SCHEMAS";

/// Environment variable that, set at build time, turns the schema checks of `#[erp_event]` off,
/// so that the schema writer can be built while schemas are missing or stale.
pub const WRITE_SCHEMAS_VAR: &str = "ERP_EVENTS_WRITE_SCHEMAS";

/// No catalog was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no `{CATALOG_FILE}` found; looked in {}", .searched.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", "))]
pub struct LocateError {
    /// The directories searched, in order.
    pub searched: Vec<PathBuf>,
}

/// The catalog directory for the crate at `manifest_dir`: the first of `override_dir` (from
/// [`OVERRIDE_VAR`]), `<manifest_dir>/schemas` and `schemas/` in each ancestor up to the
/// workspace root (the nearest `Cargo.toml` with a `[workspace]` table; a crate in no workspace
/// looks in its own folder only) that holds a `catalog.toml`. Nothing above the workspace is
/// looked at: a stray `schemas/` there is never picked.
pub fn locate_schemas_dir(
    override_dir: Option<&str>,
    manifest_dir: &Path,
) -> Result<PathBuf, LocateError> {
    let ancestors: Vec<&Path> = manifest_dir.ancestors().collect();
    let root = ancestors
        .iter()
        .position(|dir| declares_workspace(dir))
        .unwrap_or(0);
    let candidates: Vec<PathBuf> = override_dir
        .map(|dir| manifest_dir.join(dir))
        .into_iter()
        .chain(ancestors[..=root].iter().map(|dir| dir.join("schemas")))
        .collect();
    candidates
        .iter()
        .find(|dir| dir.join(CATALOG_FILE).is_file())
        .cloned()
        .ok_or(LocateError {
            searched: candidates,
        })
}

/// Whether `dir` holds a `Cargo.toml` with a `[workspace]` table.
fn declares_workspace(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|manifest| manifest.lines().any(|line| line.trim() == "[workspace]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("erp-locate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("member/src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            "[workspace]\nmembers = [\"member\"]\n",
        )
        .unwrap();
        dir
    }

    fn put_catalog(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(CATALOG_FILE), "topic = []").unwrap();
    }

    #[test]
    fn prefers_the_crate_then_the_workspace_root() {
        let root = scratch("order");
        put_catalog(&root.join("schemas"));
        let member = root.join("member");
        assert_eq!(
            locate_schemas_dir(None, &member).unwrap(),
            root.join("schemas")
        );
        put_catalog(&member.join("schemas"));
        assert_eq!(
            locate_schemas_dir(None, &member).unwrap(),
            member.join("schemas")
        );
    }

    #[test]
    fn the_override_comes_first_when_it_holds_a_catalog() {
        let root = scratch("override");
        put_catalog(&root.join("schemas"));
        put_catalog(&root.join("fixture"));
        let member = root.join("member");
        assert_eq!(
            locate_schemas_dir(Some("../fixture"), &member).unwrap(),
            member.join("../fixture")
        );
        assert_eq!(
            locate_schemas_dir(Some("nowhere"), &member).unwrap(),
            root.join("schemas")
        );
        let lonely = std::env::temp_dir().join(format!("erp-locate-none-{}", std::process::id()));
        let error = locate_schemas_dir(Some("nowhere"), &lonely).unwrap_err();
        assert_eq!(error.searched[0], lonely.join("nowhere"));
        assert!(error.to_string().contains("no `catalog.toml` found"));
    }

    #[test]
    fn nothing_above_the_workspace_root_is_looked_at() {
        let outer = scratch("stray");
        put_catalog(&outer.join("schemas"));
        let root = outer.join("project");
        std::fs::create_dir_all(root.join("member")).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[workspace]\n").unwrap();
        let error = locate_schemas_dir(None, &root.join("member")).unwrap_err();
        assert_eq!(
            error.searched,
            [root.join("member/schemas"), root.join("schemas")],
            "the stray `{}` is not picked",
            outer.join("schemas").display()
        );
    }
}
