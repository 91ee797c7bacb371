//! Code generation for `#[erp_event]`: the struct with serde derives and a small `Event` impl.

use erp_events_catalog::Compatibility;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ItemStruct;
use syn::spanned::Spanned;

use crate::names::consumer_group_type;
use crate::payload::{doc_text, property_list, serde_derives};

use super::model::{EventModel, EventType};

/// The struct and its `Event` impl. Missing parts get placeholders, so that an error in the
/// attribute does not cascade into errors at every use of the type.
pub fn expand(
    model: &EventModel,
    item: &ItemStruct,
    consumers: &[String],
    (dead_letter_topic, producer, compatibility): (&str, &str, Compatibility),
) -> TokenStream {
    let compatibility = quote::format_ident!("{}", format!("{compatibility:?}"));
    let ident = &model.ident;
    let topic = model.topic.as_ref().map(|t| t.value()).unwrap_or_default();
    let schema = model.schema_name();
    let version = model.version;
    let derives = serde_derives();
    let event_type = match &model.event_type {
        EventType::Field(field) => match model.field(field) {
            Some(payload_field) => {
                let field = &payload_field.ident;
                quote_spanned! {payload_field.ty.span()=>
                    ::erp_events::__private::EventTypeName::event_type_name(&self.#field)
                }
            }
            None => quote!(#schema),
        },
        EventType::Fixed(_) | EventType::StructName => quote!(#schema),
    };
    let key = match model.key.as_ref().and_then(|key| model.field(key)) {
        Some(field) => {
            let field_ident = &field.ident;
            quote_spanned! {field.ty.span()=>
                ::erp_events::__private::EventKey::event_key(&self.#field_ident)
            }
        }
        None => quote!(::std::borrow::Cow::Borrowed("")),
    };
    let description = doc_text(&item.attrs);
    let properties = property_list(&model.fields);
    let schema_test = quote::format_ident!("erp_events_write_schema_of_{}", ident);
    let consumer_groups = consumers.iter().map(|group| consumer_group_type(group));
    quote! {
        #derives
        #item

        #(impl ::erp_events::__private::ConsumedBy<#consumer_groups> for #ident {})*

        impl ::erp_events::__private::Event for #ident {
            const TOPIC: &'static str = #topic;
            const SCHEMA: &'static str = #schema;
            const VERSION: u32 = #version;
            const CONSUMERS: &'static [&'static str] = &[#(#consumers),*];
            const DEAD_LETTER_TOPIC: &'static str = #dead_letter_topic;
            const PRODUCER: &'static str = #producer;
            type Itself = Self;
            const COMPATIBILITY: ::erp_events::Compatibility =
                ::erp_events::Compatibility::#compatibility;

            fn event_type(&self) -> &str {
                #event_type
            }

            fn key(&self) -> ::std::borrow::Cow<'_, str> {
                #key
            }

            fn schema() -> ::erp_events::__private::EventSchema {
                ::erp_events::__private::event_schema(#schema, #description, #properties)
            }
        }

        /// Writes this event's schema file under `ERP_EVENTS_WRITE_SCHEMAS=1 cargo test`.
        #[cfg(test)]
        #[test]
        #[allow(non_snake_case)]
        fn #schema_test() {
            ::erp_events::__private::write_schema::<#ident>(::erp_events::catalog!());
        }
    }
}
