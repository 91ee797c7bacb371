//! The catalog as the macros see it at compile time, with every file read tracked for rebuilds.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use erp_events_catalog::{
    Catalog, CatalogError, EventSchema, LocateError, OVERRIDE_VAR, WRITE_SCHEMAS_VAR,
    locate_schemas_dir,
};
use proc_macro2::TokenStream;
use quote::quote;

/// Why the catalog could not be read; shown as the compile error.
#[derive(Debug, thiserror::Error)]
pub enum CompileCatalogError {
    /// Not built by cargo.
    #[error("CARGO_MANIFEST_DIR is not set; build with cargo")]
    NoManifestDir,
    /// No `catalog.toml` where one is looked for.
    #[error("{source}; create `schemas/catalog.toml` in the workspace or set `{OVERRIDE_VAR}`")]
    NotFound {
        /// Where it was looked for.
        source: LocateError,
    },
    /// The catalog or one of its schemas is not valid.
    #[error(transparent)]
    Invalid(#[from] CatalogError),
}

/// The catalog of the crate being compiled, and the files read from it.
pub struct CompileCatalog {
    catalog: Catalog,
    read: RefCell<Vec<PathBuf>>,
}

impl CompileCatalog {
    /// Finds and reads the catalog of the crate being compiled (see
    /// [`erp_events_catalog::locate_schemas_dir`]).
    pub fn load() -> Result<Self, CompileCatalogError> {
        let manifest_dir =
            std::env::var("CARGO_MANIFEST_DIR").map_err(|_| CompileCatalogError::NoManifestDir)?;
        let override_dir = std::env::var(OVERRIDE_VAR).ok();
        let dir = locate_schemas_dir(override_dir.as_deref(), Path::new(&manifest_dir))
            .map_err(|source| CompileCatalogError::NotFound { source })?;
        Self::load_from(&dir)
    }

    /// Reads the catalog in `dir`.
    pub fn load_from(dir: &Path) -> Result<Self, CompileCatalogError> {
        let catalog = Catalog::load(dir)?;
        let read = RefCell::new(vec![dir.join("catalog.toml")]);
        Ok(CompileCatalog { catalog, read })
    }

    /// `path` as a user reads it: from the catalog folder on (`schemas/<topic>/<file>`).
    pub fn display(&self, path: &Path) -> String {
        let base = self.catalog.dir().parent().unwrap_or(Path::new(""));
        path.strip_prefix(base)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Whether the schema checks are off (the schema writer is being built).
    pub fn writing_schemas() -> bool {
        std::env::var_os(WRITE_SCHEMAS_VAR).is_some_and(|value| !value.is_empty())
    }

    /// Reads a schema and tracks its file when it exists. (A missing file cannot be tracked;
    /// the error names the command that writes it, whose build flag triggers the rebuild.)
    pub fn schema(
        &self,
        topic: &str,
        name: &str,
        version: u32,
    ) -> Result<Option<EventSchema>, CatalogError> {
        let schema = self.catalog.load_schema(topic, name, version)?;
        if schema.is_some() {
            self.read
                .borrow_mut()
                .push(self.catalog.schema_path(topic, name, version));
        }
        Ok(schema)
    }

    /// `include_str!` of every file read, so that editing one recompiles its users.
    pub fn tracking_tokens(&self) -> TokenStream {
        let paths = self
            .read
            .borrow()
            .iter()
            .map(|path| path.to_string_lossy().into_owned())
            .collect::<Vec<_>>();
        quote! {
            #(const _: &str = ::core::include_str!(#paths);)*
            const _: ::core::option::Option<&str> = ::core::option_env!(#OVERRIDE_VAR);
            const _: ::core::option::Option<&str> = ::core::option_env!(#WRITE_SCHEMAS_VAR);
        }
    }
}
