//! `#[erp_type]`: enums and structs used inside payloads, with the Kotlin services' wire names.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Fields, Item, ItemEnum};

use crate::errors::Errors;
use crate::payload::{
    explicit_rename, prepare_fields, property_list, reject_own_serde, rename_attr, serde_derives,
};

/// Expands `#[erp_type] item`.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if let Some(token) = args.into_iter().next() {
        errors.at(token.span(), "`#[erp_type]` takes no arguments");
    }
    let expanded = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Enum(mut item)) => {
            reject_own_serde(&mut item.attrs, "erp_type", &mut errors);
            expand_enum(&mut item, &mut errors)
        }
        Ok(Item::Struct(mut item)) => {
            reject_own_serde(&mut item.attrs, "erp_type", &mut errors);
            let fields = prepare_fields(&mut item, "erp_type", &mut errors);
            let derives = serde_derives();
            let ident = &item.ident;
            let properties = property_list(&fields);
            quote! {
                #derives
                #item
                impl ::erp_events::__private::JsonObject for #ident {}
                impl ::erp_events::__private::PayloadType for #ident {
                    fn type_schema() -> ::erp_events::__private::TypeSchema {
                        ::erp_events::__private::TypeSchema::object(#properties)
                    }
                }
            }
        }
        _ => {
            errors.at(
                Span::call_site(),
                "`#[erp_type]` goes on a fieldless enum or a struct with named fields",
            );
            item
        }
    };
    let compile_errors = errors.to_compile_errors();
    quote!(#expanded #compile_errors)
}

/// A fieldless enum: variants written in SCREAMING_SNAKE_CASE, and usable as an event type.
fn expand_enum(item: &mut ItemEnum, errors: &mut Errors) -> TokenStream {
    let mut arms = Vec::new();
    let mut names = Vec::new();
    for variant in &mut item.variants {
        if !matches!(variant.fields, Fields::Unit) {
            errors.at(
                variant.ident.span(),
                format!(
                    "variant `{}` has fields; `#[erp_type]` enums are fieldless (they are written as strings)",
                    variant.ident
                ),
            );
            continue;
        }
        let name = explicit_rename(&variant.attrs).unwrap_or_else(|| {
            let name = erp_events_catalog::screaming_snake_case(&variant.ident.to_string());
            variant.attrs.push(rename_attr(&name));
            name
        });
        let ident = &variant.ident;
        arms.push(quote!(Self::#ident => #name));
        names.push(name);
    }
    let ident = &item.ident;
    let derives = serde_derives();
    let impl_block = errors.is_empty().then(|| {
        quote! {
            impl ::erp_events::__private::EventTypeName for #ident {
                fn event_type_name(&self) -> &'static str {
                    match self { #(#arms,)* }
                }
            }
            impl ::erp_events::__private::JsonString for #ident {}
            impl ::erp_events::__private::PayloadType for #ident {
                fn type_schema() -> ::erp_events::__private::TypeSchema {
                    ::erp_events::__private::enum_schema(&[#(#names),*])
                }
            }
        }
    });
    quote! {
        #derives
        #item
        #impl_block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_variants_are_renamed_and_named() {
        let out = expand(
            TokenStream::new(),
            quote!(
                enum Action {
                    Received,
                    TransferredOut,
                    #[serde(rename = "X")]
                    Other,
                }
            ),
        )
        .to_string();
        assert!(out.contains("rename = \"RECEIVED\""), "{out}");
        assert!(out.contains("rename = \"TRANSFERRED_OUT\""), "{out}");
        assert!(out.contains("Self :: Other => \"X\""), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn variants_with_fields_are_rejected() {
        let out = expand(
            TokenStream::new(),
            quote!(
                enum A {
                    B(u8),
                    C,
                }
            ),
        )
        .to_string();
        assert!(out.contains("variant `B` has fields"), "{out}");
    }
}
