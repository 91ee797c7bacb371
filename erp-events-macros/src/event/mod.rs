//! `#[erp_event]`: parse the attribute into a model, check it against the catalog, expand it.

mod check;
mod expand;
mod model;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemStruct;

use crate::compile_catalog::CompileCatalog;
use crate::errors::Errors;

/// Expands `#[erp_event(args)] item`. The item is always emitted, next to any errors.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let Ok(mut item) = syn::parse2::<ItemStruct>(item.clone()) else {
        errors.at(
            Span::call_site(),
            "`#[erp_event]` goes on a struct with named fields",
        );
        let compile_errors = errors.to_compile_errors();
        return quote!(#item #compile_errors);
    };
    let model = model::EventModel::build(args, &mut item, &mut errors);
    let catalog = match CompileCatalog::load() {
        Ok(catalog) => Some(catalog),
        Err(message) => {
            errors.at(Span::call_site(), message);
            None
        }
    };
    let consumers = catalog
        .as_ref()
        .map(|catalog| check::check(&model, catalog, &mut errors))
        .unwrap_or_default();
    let schema_checks = match (&catalog, &model.topic) {
        (Some(catalog), Some(topic)) if catalog.catalog().topic(&topic.value()).is_some() => {
            check::check_schema(&model, catalog, &topic.value(), &mut errors)
        }
        _ => TokenStream::new(),
    };
    let expanded = expand::expand(&model, &item, &consumers);
    let tracking = catalog
        .as_ref()
        .map(CompileCatalog::tracking_tokens)
        .unwrap_or_default();
    let compile_errors = errors.to_compile_errors();
    quote! {
        #expanded
        #schema_checks
        const _: () = { #tracking };
        #compile_errors
    }
}
