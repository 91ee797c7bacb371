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
        Some(handler) if model.group.is_some() => {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn model_of(args: TokenStream, function: TokenStream) -> (model::ListenerModel, Vec<String>) {
        let mut errors = Errors::default();
        let function: ItemFn = syn::parse2(function).unwrap();
        let model = model::ListenerModel::build(args, &function, &mut errors);
        (model, errors.messages())
    }

    #[test]
    fn reads_options_and_the_handler_types() {
        let (model, errors) = model_of(
            quote!(
                group = "search-sync",
                retries = 5,
                backoff(initial_ms = 10, multiplier = 3),
                concurrency = 2,
                idempotent = false
            ),
            quote!(
                async fn h(
                    e: Envelope<InventoryMovement>,
                    State(s): State<Index>,
                ) -> Result<(), HandlerError> {
                    Ok(())
                }
            ),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            (
                model.retries,
                model.backoff,
                model.concurrency,
                model.idempotent
            ),
            (5, (10, 3.0, 30_000), 2, false)
        );
        let handler = model.handler.unwrap();
        let (event, state) = (&handler.event_type, handler.state_type.unwrap());
        assert_eq!(
            quote!(#event, #state).to_string(),
            "InventoryMovement , Index"
        );
    }

    #[test]
    fn a_wrong_signature_reports_everything_and_yields_no_handler() {
        let (model, errors) = model_of(
            quote!(group = "search-sync", retries = 11),
            quote!(
                fn h(e: InventoryMovement, s: Index, x: u8) {}
            ),
        );
        assert!(model.handler.is_none());
        let expected = [
            "`retries` takes an integer from 0 to 10",
            "must be an `async fn`",
            "returns `Result<(), E>`",
            "first parameter must be `Envelope<E>`",
            "must be `State<S>`",
            "at most two parameters",
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for expected in expected {
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{expected} missing from {errors:#?}"
            );
        }
    }

    #[test]
    fn groups_are_checked_against_the_catalog() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let catalog = erp_events_catalog::Catalog::load(&dir).unwrap();
        let mut errors = Errors::default();
        let known = model::check_group(&syn::parse_quote!("finance"), &catalog, &mut errors);
        assert!(
            known
                .unwrap()
                .contains("it consumes `erp.purchase.lifecycle`")
        );
        let unknown = model::check_group(&syn::parse_quote!("financ"), &catalog, &mut errors);
        assert!(unknown.is_none());
        assert!(
            errors.messages()[0].ends_with("did you mean `finance`?"),
            "{:?}",
            errors.messages()
        );
    }
}
