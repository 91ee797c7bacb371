//! What `#[erp_event]` and `#[erp_type]` share: payload fields and their serde wiring.
//!
//! Every field and variant gets an explicit `#[serde(rename = "...")]` computed here, so the
//! names the schema checks use and the names serde writes are the same by construction.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Fields, GenericArgument, Ident, ItemStruct, LitStr, PathArguments, Type};

use crate::errors::Errors;

/// One named field of a payload struct.
pub struct PayloadField {
    /// The Rust field name.
    pub ident: Ident,
    /// The JSON key.
    pub json_name: String,
    /// The field's type.
    pub ty: Type,
    /// `T` when the type is `Option<T>`.
    pub option_of: Option<Type>,
    /// The field's doc comment (the schema property's description).
    pub doc: String,
}

impl PayloadField {
    /// The type without its `Option`.
    pub fn value_type(&self) -> &Type {
        self.option_of.as_ref().unwrap_or(&self.ty)
    }
}

/// The derives and container attribute every payload type gets.
pub fn serde_derives() -> TokenStream {
    quote! {
        #[derive(::erp_events::__private::serde::Serialize, ::erp_events::__private::serde::Deserialize)]
        #[serde(crate = "::erp_events::__private::serde")]
    }
}

/// Reports a user-written `Serialize`/`Deserialize` derive, which would conflict with ours, and
/// removes it from the item (so the item is still emitted without a cascade of errors); and
/// any container-level `#[serde(...)]`, which would make the wire names differ from the
/// schema's.
pub fn reject_own_serde(attrs: &mut Vec<Attribute>, macro_name: &str, errors: &mut Errors) {
    attrs.retain(|attr| {
        let container_serde = attr.path().is_ident("serde");
        if container_serde {
            errors.at(
                attr.path().span(),
                format!(
                    "`#[{macro_name}]` names the fields itself (camelCase, as Jackson does): remove this `#[serde(...)]`, and put `#[serde(rename = \"...\")]` on a field whose JSON name differs"
                ),
            );
        }
        !container_serde
    });
    for attr in attrs
        .iter_mut()
        .filter(|attr| attr.path().is_ident("derive"))
    {
        let Ok(paths) = attr.parse_args_with(
            syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
        ) else {
            continue;
        };
        let is_serde = |path: &syn::Path| {
            path.segments
                .last()
                .is_some_and(|last| last.ident == "Serialize" || last.ident == "Deserialize")
        };
        let kept: Vec<&syn::Path> = paths.iter().filter(|path| !is_serde(path)).collect();
        if kept.len() < paths.len() {
            *attr = syn::parse_quote!(#[derive(#(#kept),*)]);
        }
        for path in paths.iter().filter(|path| is_serde(path)) {
            let last = path.segments.last().expect("checked");
            errors.at(
                last.ident.span(),
                format!(
                    "remove this derive: `#[{macro_name}]` derives `{}` itself, with the wire names the Kotlin services use",
                    last.ident
                ),
            );
        }
    }
}

/// Reads the named fields of `item` and gives each an explicit serde name (camelCase, unless
/// the field already has `#[serde(rename = "...")]`).
pub fn prepare_fields(
    item: &mut ItemStruct,
    macro_name: &str,
    errors: &mut Errors,
) -> Vec<PayloadField> {
    let Fields::Named(fields) = &mut item.fields else {
        errors.at(
            item.ident.span(),
            format!("`#[{macro_name}]` needs a struct with named fields"),
        );
        return Vec::new();
    };
    let mut taken = std::collections::HashMap::new();
    fields
        .named
        .iter_mut()
        .map(|field| {
            let ident = field.ident.clone().expect("named field");
            check_field_serde(&field.attrs, errors);
            let json_name = explicit_rename(&field.attrs).unwrap_or_else(|| {
                // `r#type` is `type` on the wire, as serde writes it.
                let name = erp_events_catalog::camel_case(&ident.unraw().to_string());
                field.attrs.push(rename_attr(&name));
                name
            });
            if let Some(first) = taken.insert(json_name.clone(), ident.clone()) {
                errors.at(
                    ident.span(),
                    format!(
                        "`{ident}` and `{first}` both have the JSON name `{json_name}`; rename one"
                    ),
                );
            }
            PayloadField {
                ident,
                json_name,
                option_of: option_inner(&field.ty),
                ty: field.ty.clone(),
                doc: doc_text(&field.attrs),
            }
        })
        .collect()
}

/// The text of the `///` comments among `attrs`, lines joined by spaces.
pub fn doc_text(attrs: &[Attribute]) -> String {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(text),
                    ..
                }) => Some(text.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `vec![property::<T>("jsonName", "doc"), ...]` for the schema of a struct's fields.
pub fn property_list(fields: &[PayloadField]) -> TokenStream {
    let properties = fields.iter().map(|field| {
        let (ty, name, doc) = (&field.ty, &field.json_name, &field.doc);
        quote_spanned!(ty.span()=> ::erp_events::__private::property::<#ty>(#name, #doc))
    });
    quote!(::std::vec![#(#properties),*])
}

/// The serde field attributes a payload field may carry: those whose effect the schema shows.
const FIELD_SERDE_KEYS: &[&str] = &["rename", "default"];

/// Reports each field-level serde attribute other than [`FIELD_SERDE_KEYS`] (`skip`,
/// `flatten`, `with`...): the wire format would differ from the schema.
fn check_field_serde(attrs: &[Attribute], errors: &mut Errors) {
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
            if !FIELD_SERDE_KEYS.contains(&key.as_str()) {
                errors.at(
                    meta.path.span(),
                    format!(
                        "`#[serde({key})]` is not supported on an event field: the schema could not say what goes on the wire (supported: `rename`, `default`)"
                    ),
                );
            }
            if meta.input.peek(syn::Token![=]) {
                meta.value()?.parse::<syn::Expr>()?;
            } else if meta.input.peek(syn::token::Paren) {
                meta.parse_nested_meta(|_| Ok(()))?;
            }
            Ok(())
        });
    }
}

/// `#[serde(rename = "name")]`.
pub fn rename_attr(name: &str) -> Attribute {
    syn::parse_quote!(#[serde(rename = #name)])
}

/// The name in a `#[serde(rename = "...")]` among `attrs`.
pub fn explicit_rename(attrs: &[Attribute]) -> Option<String> {
    let mut rename = None;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                rename = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.input.peek(syn::Token![=]) {
                meta.value()?.parse::<syn::Expr>()?;
            }
            Ok(())
        });
    }
    rename
}

/// `T` when `ty` is `Option<T>` (also `std::option::Option<T>`, and through the invisible group
/// of a `macro_rules!` `ty` fragment).
fn option_inner(ty: &Type) -> Option<Type> {
    let path = match ty {
        Type::Group(group) => return option_inner(&group.elem),
        Type::Path(path) => path,
        _ => return None,
    };
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(inner) if args.args.len() == 1 => Some(inner.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_get_camel_case_names_unless_renamed() {
        let mut item: ItemStruct = syn::parse_quote! {
            struct S {
                product_id: String,
                #[serde(default, rename = "qty")]
                quantity: i64,
                note: Option<String>,
            }
        };
        let mut errors = Errors::default();
        let fields = prepare_fields(&mut item, "erp_event", &mut errors);
        let names: Vec<&str> = fields.iter().map(|f| f.json_name.as_str()).collect();
        assert_eq!(names, ["productId", "qty", "note"]);
        assert!(fields[2].option_of.is_some() && fields[0].option_of.is_none());
        let renamed = quote!(#item).to_string();
        assert!(renamed.contains("rename = \"productId\""), "{renamed}");
        assert_eq!(renamed.matches("rename").count(), 3, "{renamed}");
    }

    #[test]
    fn a_raw_identifier_is_named_as_serde_names_it() {
        let mut item: ItemStruct = syn::parse_quote! {
            struct Part { r#type: String }
        };
        let fields = prepare_fields(&mut item, "erp_event", &mut Errors::default());
        assert_eq!(fields[0].json_name, "type");
        assert!(quote!(#item).to_string().contains("rename = \"type\""));
    }

    #[test]
    fn tuple_structs_and_own_derives_are_rejected() {
        let mut errors = Errors::default();
        let mut item: ItemStruct = syn::parse_quote!(
            #[derive(Debug, serde::Serialize)]
            struct S(u8);
        );
        reject_own_serde(&mut item.attrs, "erp_event", &mut errors);
        prepare_fields(&mut item, "erp_event", &mut errors);
        assert_eq!(errors.messages().len(), 2);
        assert!(errors.messages()[0].starts_with("remove this derive"));
        let kept = &item.attrs[0];
        assert_eq!(
            quote!(#kept).to_string(),
            "# [derive (Debug)]",
            "the derive is removed from the item"
        );
    }
}
