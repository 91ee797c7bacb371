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
    let expanded = if model.generics_span.is_some() {
        // Kept as written (with its serde names) but not an event: an impl would only add errors.
        let derives = crate::payload::serde_derives();
        quote!(#derives #item)
    } else {
        let (dead_letter_topic, producer, compatibility) = catalog
            .as_ref()
            .zip(model.topic.as_ref())
            .and_then(|(catalog, topic)| catalog.catalog().topic(&topic.value()))
            .map(|topic| {
                let row = (topic.dead_letter_topic(), topic.producer.clone());
                (row.0, row.1, topic.compatibility())
            })
            .unwrap_or_default();
        expand::expand(
            &model,
            &item,
            &consumers,
            (&dead_letter_topic, &producer, compatibility),
        )
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The workspace's own catalog.
    fn catalog() -> CompileCatalog {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        CompileCatalog::load_from(&dir).unwrap()
    }

    fn errors_of(args: TokenStream, item: TokenStream) -> Vec<String> {
        let mut errors = Errors::default();
        let mut item: ItemStruct = syn::parse2(item).unwrap();
        let model = model::EventModel::build(args, &mut item, &mut errors);
        let catalog = catalog();
        check::check(&model, &catalog, &mut errors);
        if let Some(topic) = &model.topic
            && catalog.catalog().topic(&topic.value()).is_some()
        {
            check::check_schema(&model, &catalog, &topic.value(), &mut errors);
        }
        errors.messages()
    }

    #[test]
    fn a_matching_struct_has_no_errors_and_declares_its_consumers() {
        let mut errors = Errors::default();
        let mut item: ItemStruct = syn::parse_quote! {
            struct InventoryMovement {
                product_id: String, warehouse: String, action: MovementAction,
                quantity: i64, to_warehouse: Option<String>,
            }
        };
        let args = quote!(
            topic = "erp.inventory.movements",
            key = product_id,
            event_type = action
        );
        let model = model::EventModel::build(args, &mut item, &mut errors);
        let consumers = check::check(&model, &catalog(), &mut errors);
        let assertions =
            check::check_schema(&model, &catalog(), "erp.inventory.movements", &mut errors);
        assert!(errors.is_empty(), "{:?}", errors.messages());
        assert_eq!(consumers, ["search-sync", "analytics"]);
        let assertions = assertions.to_string();
        assert!(
            assertions.contains("expect_integer :: < i64 >"),
            "{assertions}"
        );
        assert!(
            assertions.contains("expect_string :: < String >"),
            "{assertions}"
        );
        assert_eq!(model.schema_name(), "INVENTORY_MOVEMENT");
    }

    #[test]
    fn every_problem_of_one_event_is_reported() {
        let messages = errors_of(
            quote!(topic = "erp.inventory.movements", key = sku, verison = 2),
            quote!(
                struct InventoryMovement {
                    product_id: String,
                    warehouse: Option<String>,
                    qty: i64,
                }
            ),
        );
        let expected = [
            "unknown key `verison`",
            "has no field `sku`",
            "`warehouse` is required in the schema",
            "field `qty` (JSON `qty`) is not in the schema",
            "required property `action`",
            "required property `quantity`",
            "optional property `toWarehouse`",
        ];
        assert_eq!(messages.len(), expected.len(), "{messages:#?}");
        for (message, expected) in messages.iter().zip(expected) {
            assert!(
                message.contains(expected),
                "{message} should contain {expected}"
            );
        }
    }

    #[test]
    fn topics_are_checked_against_the_catalog() {
        let messages = errors_of(
            quote!(topic = "erp.sales.transaction", key = id),
            quote!(
                struct S {
                    id: String,
                }
            ),
        );
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].ends_with("did you mean `erp.sales.transactions`?"),
            "{}",
            messages[0]
        );
        let messages = errors_of(
            quote!(topic = "sales", key = id),
            quote!(
                struct S {
                    id: String,
                }
            ),
        );
        assert!(
            messages[0].contains("three dot-separated segments"),
            "{messages:?}"
        );
    }

    #[test]
    fn a_missing_schema_names_the_writer_command() {
        let messages = errors_of(
            quote!(
                topic = "erp.inventory.movements",
                key = id,
                event_type = "INVENTORY_MOVEMENT",
                version = 2
            ),
            quote!(
                struct InventoryMovement {
                    id: String,
                }
            ),
        );
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].contains("INVENTORY_MOVEMENT.v2.json` does not exist"),
            "{}",
            messages[0]
        );
        assert!(messages[0].contains(check::WRITE_COMMAND));
    }
}
