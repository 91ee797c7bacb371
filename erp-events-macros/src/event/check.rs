//! The checks of one `#[erp_event]` against the rules and the catalog.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::compile_catalog::CompileCatalog;
use crate::errors::Errors;
use crate::names::{backticked, did_you_mean};

use super::model::{EventModel, EventType};

/// The command that writes schema files from the Rust types.
pub const WRITE_COMMAND: &str = "ERP_EVENTS_WRITE_SCHEMAS=1 cargo test erp_events_write_schema";

/// Reports every problem of `model`; returns the topic's declared consumer groups.
pub fn check(model: &EventModel, catalog: &CompileCatalog, errors: &mut Errors) -> Vec<String> {
    if let Some(span) = model.generics_span {
        errors.at(
            span,
            "an event cannot have generic parameters: its schema is fixed",
        );
    }
    check_fields_named(model, errors);
    let Some(topic) = &model.topic else {
        if !model.topic_given {
            errors.at(
                model.attr_span,
                "missing `topic = \"erp.<module>.<category>\"`: the topic this event is published on",
            );
        }
        return Vec::new();
    };
    let name = topic.value();
    if let Some(problem) = erp_events_catalog::topic_shape_error(&name) {
        errors.at(topic.span(), problem);
        return Vec::new();
    }
    let declared = catalog.catalog().topics();
    match catalog.catalog().topic(&name) {
        Some(declared_topic) => {
            check_one_event_per_topic(model, catalog, topic, errors);
            declared_topic.consumers.clone()
        }
        None => {
            let names = declared.iter().map(|t| t.name.as_str());
            errors.at(
                topic.span(),
                format!(
                    "topic `{name}` is not declared in `{}`; declared topics: {}{}",
                    catalog.display(&catalog.catalog().dir().join("catalog.toml")),
                    backticked(names.clone()),
                    did_you_mean(&name, names)
                ),
            );
            Vec::new()
        }
    }
}

/// A topic carries one event struct: its listeners decode every record as that struct, so a
/// second type's records would be dead-lettered by them.
fn check_one_event_per_topic(
    model: &EventModel,
    catalog: &CompileCatalog,
    topic: &syn::LitStr,
    errors: &mut Errors,
) {
    let name = model.schema_name();
    let others: Vec<String> = match catalog.catalog().event_names(&topic.value()) {
        Ok(names) => names.into_iter().filter(|other| *other != name).collect(),
        Err(error) => {
            errors.at(topic.span(), error);
            return;
        }
    };
    if others.is_empty() {
        return;
    }
    errors.at(
        topic.span(),
        format!(
            "topic `{}` already carries {} (`{}`): a topic carries one event struct, because its listeners read every record as that struct; declare a topic of its own for `{name}` in `{}` (events that must stay in order with each other go in one struct, with `event_type = <field>`)",
            topic.value(),
            backticked(others.iter().map(String::as_str)),
            catalog.display(&catalog.catalog().dir().join(topic.value())),
            catalog.display(&catalog.catalog().dir().join("catalog.toml")),
        ),
    );
}

/// `key` and `event_type = field` must name fields of the struct.
fn check_fields_named(model: &EventModel, errors: &mut Errors) {
    if !model.key_given {
        errors.at(
            model.attr_span,
            "missing `key = <field>`: the field whose value becomes the Kafka record key",
        );
    }
    let named = model.key.iter().chain(match &model.event_type {
        EventType::Field(field) => Some(field),
        _ => None,
    });
    let field_names: Vec<String> = model.fields.iter().map(|f| f.ident.to_string()).collect();
    for ident in named {
        if model.field(ident).is_none() && !model.fields.is_empty() {
            let name = ident.to_string();
            errors.at(
                ident.span(),
                format!(
                    "`{}` has no field `{name}`; its fields are {}{}",
                    model.ident,
                    backticked(field_names.iter().map(String::as_str)),
                    did_you_mean(&name, field_names.iter().map(String::as_str))
                ),
            );
        }
    }
}

/// Compares the struct with its schema file (and the schema with its previous versions).
/// Returns the field type assertions the compiler checks against the schema's JSON types.
pub fn check_schema(
    model: &EventModel,
    catalog: &CompileCatalog,
    topic: &str,
    errors: &mut Errors,
) -> TokenStream {
    if CompileCatalog::writing_schemas() || model.fields.is_empty() || model.generics_span.is_some()
    {
        return TokenStream::new();
    }
    let name = model.schema_name();
    let taken = |names: Vec<String>| names.iter().any(|other| *other != name);
    if catalog.catalog().event_names(topic).is_ok_and(taken) {
        return TokenStream::new(); // Reported at the topic by `check`.
    }
    let path = catalog.catalog().schema_path(topic, &name, model.version);
    let schema = match catalog.schema(topic, &name, model.version) {
        Ok(Some(schema)) => schema,
        Ok(None) => {
            errors.at(
                model.version_span,
                format!(
                    "no schema for version {} of `{name}`: `{}` does not exist; write it from this struct with `{WRITE_COMMAND}`",
                    model.version,
                    catalog.display(&path)
                ),
            );
            return TokenStream::new();
        }
        Err(message) => {
            errors.at(model.ident.span(), message);
            return TokenStream::new();
        }
    };
    let label = format!("`{name}.v{}`", model.version);
    let mut assertions = Vec::new();
    for field in &model.fields {
        let Some(property) = schema.property(&field.json_name) else {
            let names: Vec<&str> = schema.properties.iter().map(|p| p.name.as_str()).collect();
            errors.at(
                field.ident.span(),
                format!(
                    "field `{}` (JSON `{}`) is not in the schema {label}; its properties are {}{}",
                    field.ident,
                    field.json_name,
                    backticked(names.iter().copied()),
                    did_you_mean(&field.json_name, names.iter().copied())
                ),
            );
            continue;
        };
        match (field.option_of.is_some(), property.required) {
            (true, true) => errors.at(
                field.ty.span(),
                format!(
                    "`{}` is required in the schema {label}, so the field cannot be an `Option`",
                    field.json_name
                ),
            ),
            (false, false) => errors.at(
                field.ty.span(),
                format!(
                    "`{}` is optional in the schema {label} (not in `required`), so the field must be an `Option<_>`",
                    field.json_name
                ),
            ),
            _ => {}
        }
        let expect = format_ident!("expect_{}", property.json_type.as_str());
        let ty = field.value_type();
        assertions.push(quote_spanned!(ty.span()=> ::erp_events::__private::#expect::<#ty>();));
    }
    for property in &schema.properties {
        if !model.fields.iter().any(|f| f.json_name == property.name) {
            errors.at(
                model.ident.span(),
                format!(
                    "the schema {label} has {} property `{}` ({}), which `{}` lacks",
                    if property.required {
                        "a required"
                    } else {
                        "an optional"
                    },
                    property.name,
                    property.json_type.as_str(),
                    model.ident
                ),
            );
        }
    }
    check_evolution(model, catalog, topic, &name, errors);
    quote! {
        const _: () = {
            #[allow(dead_code)]
            fn schema_types() {
                #(#assertions)*
            }
        };
    }
}

/// The struct's version must keep its topic's compatibility mode with the versions before it
/// (the one before, or all of them when the mode is transitive); every earlier version is kept.
fn check_evolution(
    model: &EventModel,
    catalog: &CompileCatalog,
    topic: &str,
    name: &str,
    errors: &mut Errors,
) {
    if model.version < 2 {
        return;
    }
    let mode = catalog
        .catalog()
        .topic(topic)
        .map(|row| row.compatibility())
        .unwrap_or_default();
    let mut versions = Vec::new();
    for version in 1..=model.version {
        match catalog.schema(topic, name, version) {
            Ok(Some(schema)) => versions.push((version, schema)),
            Ok(None) if version < model.version => {
                return errors.at(
                    model.version_span,
                    format!(
                        "no schema for version {version} of `{name}`: every earlier version is kept, so that compatibility can be checked"
                    ),
                );
            }
            _ => return,
        }
    }
    let breaks = erp_events_catalog::check_evolution(mode, &versions);
    if let Some(first) = breaks.first() {
        let list: Vec<String> = breaks.iter().map(ToString::to_string).collect();
        let older = if first.reader == model.version {
            first.writer
        } else {
            first.reader
        };
        errors.at(
            model.version_span,
            format!(
                "version {} of `{name}` breaks the `{mode}` compatibility of topic `{topic}` with version {older}: {}; under `{mode}` {} (or change the topic's `compatibility` in catalog.toml)",
                model.version,
                list.join("; "),
                mode.allows()
            ),
        );
    }
}
