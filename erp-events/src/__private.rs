//! What generated code needs, under one hidden path (`::erp_events::__private`), so user crates
//! depend on `erp-events` alone. Not a public API.

pub use crate::event::{EventKey, EventTypeName};
pub use crate::schema::{
    EventSchema, JsonArray, JsonBoolean, JsonInteger, JsonNumber, JsonObject, JsonString, JsonType,
    PayloadType, Property, TypeSchema,
};
pub use serde;
pub use serde_json::Value;

use crate::catalog::Catalog;

/// The catalog embedded by `catalog!()`; it was validated when the macro read it.
pub fn embedded_catalog(dir: &str, text: &str) -> Catalog {
    Catalog::parse(std::path::Path::new(dir), text)
        .expect("the catalog was validated at compile time")
}

use crate::envelope::Envelope;
use crate::event::Event;
use crate::listener::{HandlerError, State};

/// The first parameter of a handler: `Envelope<E>`.
#[diagnostic::on_unimplemented(
    message = "a handler's first parameter must be `Envelope<E>`, not `{Self}`",
    label = "expected `Envelope<E>` where `E` is an `#[erp_event]` struct"
)]
pub trait HandlerEnvelope {
    /// `E`.
    type Event: Event;
}

impl<E: Event> HandlerEnvelope for Envelope<E> {
    type Event = E;
}

/// The second parameter of a handler: `State<S>`.
#[diagnostic::on_unimplemented(
    message = "a handler's second parameter must be `State<S>`, not `{Self}`",
    label = "expected `State<S>`"
)]
pub trait HandlerState {
    /// `S`.
    type State: Clone + Send + Sync + 'static;
    /// A `State` holding a clone of `state`.
    fn from_state(state: &Self::State) -> Self;
}

impl<S: Clone + Send + Sync + 'static> HandlerState for State<S> {
    type State = S;
    fn from_state(state: &S) -> Self {
        State(state.clone())
    }
}

/// A handler's `Result<(), E>` as the runtime's result.
pub fn into_handler_result<E: Into<HandlerError>>(
    result: Result<(), E>,
) -> Result<(), HandlerError> {
    result.map_err(Into::into)
}

/// Fails compilation (with `message`) unless `group` is a declared consumer of `E`'s topic.
pub const fn assert_consumer_group<E: Event>(group: &str, message: &'static str) {
    let consumers = E::CONSUMERS;
    let mut i = 0;
    while i < consumers.len() {
        if str_eq(consumers[i], group) {
            return;
        }
        i += 1;
    }
    panic!("{}", message);
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The schema property of a field of type `T`.
pub fn property<T: PayloadType + ?Sized>(name: &str, description: &str) -> Property {
    T::type_schema().into_property(name, description)
}

/// An event's schema from its properties.
pub fn event_schema(name: &str, description: &str, mut properties: Vec<Property>) -> EventSchema {
    properties.sort_by(|a, b| a.name.cmp(&b.name));
    EventSchema {
        name: name.to_owned(),
        description: (!description.is_empty()).then(|| description.to_owned()),
        properties,
    }
}

/// The schema of an `#[erp_type]` enum: a string with the variants' names.
pub fn enum_schema(names: &[&str]) -> TypeSchema {
    TypeSchema::of(JsonType::String).with("enum", Value::from(names.to_vec()))
}

macro_rules! expectations {
    ($($function:ident: $kind:ident),*) => {$(
        #[doc = concat!("Compiles only if `T` is written as the schema's JSON type (`", stringify!($kind), "`).")]
        pub fn $function<T: $kind + ?Sized>() {}
    )*};
}

expectations!(
    expect_string: JsonString,
    expect_integer: JsonInteger,
    expect_number: JsonNumber,
    expect_boolean: JsonBoolean,
    expect_array: JsonArray,
    expect_object: JsonObject
);
