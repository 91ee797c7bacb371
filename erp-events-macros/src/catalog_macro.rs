//! `catalog!()`: the catalog embedded in the binary, so run time sees what compile time checked.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::compile_catalog::CompileCatalog;

/// Expands `catalog!()`.
pub fn expand(input: TokenStream) -> TokenStream {
    if let Some(token) = input.into_iter().next() {
        return syn::Error::new(token.span(), "`catalog!()` takes no arguments").to_compile_error();
    }
    match CompileCatalog::load() {
        Ok(loaded) => {
            let dir = loaded.catalog().dir().to_string_lossy().into_owned();
            let file = format!("{dir}/catalog.toml");
            quote! {{
                static CATALOG: ::std::sync::OnceLock<::erp_events::__private::Catalog> =
                    ::std::sync::OnceLock::new();
                CATALOG.get_or_init(|| {
                    ::erp_events::__private::embedded_catalog(#dir, ::core::include_str!(#file))
                })
            }}
        }
        Err(message) => syn::Error::new(Span::call_site(), message).to_compile_error(),
    }
}
