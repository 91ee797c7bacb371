//! The typed model of one `#[erp_event]`: what the attribute and the struct say.

use proc_macro2::{Span, TokenStream};
use syn::{Ident, ItemStruct, LitStr};

use crate::args::{find, parse_args};
use crate::errors::Errors;
use crate::payload::{PayloadField, prepare_fields, reject_own_serde};

/// The keys `#[erp_event]` accepts.
pub const KEYS: &[&str] = &["topic", "key", "version", "event_type"];

/// Where an event's `eventType` comes from.
pub enum EventType {
    /// `event_type = "NAME"`.
    Fixed(LitStr),
    /// `event_type = field`: the variant of an `#[erp_type]` enum field.
    Field(Ident),
    /// Not given: the struct name in SCREAMING_SNAKE_CASE.
    StructName,
}

/// One `#[erp_event]`.
pub struct EventModel {
    /// The struct.
    pub ident: Ident,
    /// The span of the whole attribute, for errors about missing keys.
    pub attr_span: Span,
    /// `topic = "..."`.
    pub topic: Option<LitStr>,
    /// Whether a `topic` was given at all (even an invalid one).
    pub topic_given: bool,
    /// `key = field`.
    pub key: Option<Ident>,
    /// Whether a `key` was given at all.
    pub key_given: bool,
    /// `version = N`, default 1.
    pub version: u32,
    /// The span of the version literal (or of the attribute when defaulted).
    pub version_span: Span,
    /// `event_type = ...`.
    pub event_type: EventType,
    /// The struct's fields.
    pub fields: Vec<PayloadField>,
    /// Whether the struct has generic parameters (events cannot).
    pub generics_span: Option<Span>,
}

impl EventModel {
    /// Reads the attribute arguments and the struct (giving its fields their serde names).
    pub fn build(args: TokenStream, item: &mut ItemStruct, errors: &mut Errors) -> Self {
        let args = parse_args(args, KEYS, errors);
        reject_own_serde(&mut item.attrs, "erp_event", errors);
        let version_arg = find(&args, "version");
        let event_type = match find(&args, "event_type") {
            None => EventType::StructName,
            Some(arg) if matches!(&arg.value, crate::args::ArgValue::Expr(syn::Expr::Lit(_))) => {
                arg.lit_str(errors)
                    .map_or(EventType::StructName, EventType::Fixed)
            }
            Some(arg) => arg
                .ident(errors)
                .map_or(EventType::StructName, EventType::Field),
        };
        EventModel {
            ident: item.ident.clone(),
            attr_span: Span::call_site(),
            topic: find(&args, "topic").and_then(|arg| arg.lit_str(errors)),
            topic_given: find(&args, "topic").is_some(),
            key: find(&args, "key").and_then(|arg| arg.ident(errors)),
            key_given: find(&args, "key").is_some(),
            version: version_arg
                .and_then(|arg| arg.int(1..=u64::from(u16::MAX), errors))
                .map_or(1, |v| v as u32),
            version_span: version_arg.map_or(Span::call_site(), |arg| arg.key.span()),
            event_type,
            fields: prepare_fields(item, "erp_event", errors),
            generics_span: (!item.generics.params.is_empty())
                .then(|| syn::spanned::Spanned::span(&item.generics)),
        }
    }

    /// The schema name: the fixed event type, else the struct name in SCREAMING_SNAKE_CASE.
    pub fn schema_name(&self) -> String {
        match &self.event_type {
            EventType::Fixed(name) => name.value(),
            _ => erp_events_catalog::screaming_snake_case(&self.ident.to_string()),
        }
    }

    /// The field named `ident`.
    pub fn field(&self, ident: &Ident) -> Option<&PayloadField> {
        self.fields.iter().find(|field| field.ident == *ident)
    }
}
