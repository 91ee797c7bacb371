//! `#[erp_listener]`: an async handler function becomes a listener struct of the same name.

mod expand;
mod model;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemFn;

use crate::compile_catalog::CompileCatalog;
use crate::errors::Errors;

/// Expands `#[erp_listener(args)] item`. The function is always emitted, next to any errors.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let Ok(function) = syn::parse2::<ItemFn>(item.clone()) else {
        errors.at(
            Span::call_site(),
            "`#[erp_listener]` goes on an `async fn` taking `Envelope<E>`",
        );
        let compile_errors = errors.to_compile_errors();
        return quote!(#item #compile_errors);
    };
    let model = model::ListenerModel::build(args, &function, &mut errors);
    let catalog = CompileCatalog::load().map_err(|message| errors.at(Span::call_site(), message));
    let group_check = match (&model.group, &catalog) {
        (Some(group), Ok(catalog)) => model::check_group(group, catalog.catalog(), &mut errors),
        _ => None,
    };
    let expanded = match model.handler.as_ref() {
        Some(handler) if errors.is_empty() || model.group.is_some() => {
            expand::expand(&model, handler, &function, group_check.as_deref())
        }
        // Too broken to become a listener: keep the function so its body is still checked.
        _ => quote!(#function),
    };
    let tracking = catalog
        .as_ref()
        .map(CompileCatalog::tracking_tokens)
        .unwrap_or_default();
    let compile_errors = errors.to_compile_errors();
    quote! {
        #expanded
        const _: () = { #tracking };
        #compile_errors
    }
}
