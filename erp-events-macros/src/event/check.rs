//! The checks of one `#[erp_event]` against the rules and the catalog.

use crate::compile_catalog::CompileCatalog;
use crate::errors::Errors;
use crate::names::{backticked, did_you_mean};

use super::model::{EventModel, EventType};

/// Reports every problem of `model`; returns the topic's declared consumer groups.
pub fn check(model: &EventModel, catalog: &CompileCatalog, errors: &mut Errors) -> Vec<String> {
    if let Some(span) = model.generics_span {
        errors.at(span, "an event cannot have generic parameters: its schema is fixed");
    }
    check_fields_named(model, errors);
    let Some(topic) = &model.topic else {
        errors.at(
            model.attr_span,
            "missing `topic = \"erp.<module>.<category>\"`: the topic this event is published on",
        );
        return Vec::new();
    };
    let name = topic.value();
    if let Some(problem) = erp_events_catalog::topic_shape_error(&name) {
        errors.at(topic.span(), problem);
        return Vec::new();
    }
    let declared = catalog.catalog().topics();
    match catalog.catalog().topic(&name) {
        Some(declared_topic) => declared_topic.consumers.clone(),
        None => {
            let names = declared.iter().map(|t| t.name.as_str());
            errors.at(
                topic.span(),
                format!(
                    "topic `{name}` is not declared in `{}`; declared topics: {}{}",
                    catalog.catalog().dir().join("catalog.toml").display(),
                    backticked(names.clone()),
                    did_you_mean(&name, names)
                ),
            );
            Vec::new()
        }
    }
}

/// `key` and `event_type = field` must name fields of the struct.
fn check_fields_named(model: &EventModel, errors: &mut Errors) {
    if model.key.is_none() {
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
