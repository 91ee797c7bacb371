//! What generated code needs, under one hidden path (`::erp_events::__private`), so user crates
//! depend on `erp-events` alone. Not a public API.

pub use crate::core::catalog::Catalog;
pub use crate::core::envelope::Envelope;
pub use crate::core::event::{Event, EventKey, EventTypeName};
pub use crate::core::listener::{HandlerError, Listener, ListenerOptions, State};
pub use crate::core::retry::Backoff;
pub use crate::core::schema::{
    EventSchema, JsonArray, JsonBoolean, JsonInteger, JsonNumber, JsonObject, JsonString, JsonType,
    PayloadType, Property, TypeSchema,
};
pub use serde;
pub use serde_json::Value;

/// The catalog embedded by `catalog!()`; it was validated when the macro read it.
pub fn embedded_catalog(dir: &str, text: &str) -> Catalog {
    Catalog::parse(std::path::Path::new(dir), text)
        .expect("the catalog was validated at compile time")
}

/// A handler's error on its way to a [`HandlerError`]. The generated code calls
/// `(&&&Failure::new(error)).handler_error()`, and the first of these that applies wins
/// (autoref specialization, as trait coherence cannot order them): the error is a
/// `HandlerError`; it is a `std::error::Error`; it converts into a boxed error (`anyhow::Error`,
/// `Box<dyn Error + Send + Sync>`, `String`). The last also reports every other type.
pub struct Failure<E>(std::cell::Cell<Option<E>>);

impl<E> Failure<E> {
    /// Holds `error` until it is converted.
    pub fn new(error: E) -> Self {
        Failure(std::cell::Cell::new(Some(error)))
    }

    fn take(&self) -> E {
        self.0.take().expect("a handler's error is converted once")
    }
}

/// The handler returned a `HandlerError`: kept as it is.
pub trait FromHandlerError {
    /// The error, unchanged.
    fn handler_error(&self) -> HandlerError;
}

impl FromHandlerError for &&Failure<HandlerError> {
    fn handler_error(&self) -> HandlerError {
        self.take()
    }
}

/// The handler returned a `std::error::Error`: retryable, named by its type.
pub trait FromStdError {
    /// The error as a retryable failure.
    fn handler_error(&self) -> HandlerError;
}

impl<E: std::error::Error + Send + Sync + 'static> FromStdError for &Failure<E> {
    fn handler_error(&self) -> HandlerError {
        HandlerError::retryable(self.take())
    }
}

/// What a handler's error type must be.
#[diagnostic::on_unimplemented(
    message = "a handler's error must convert into `HandlerError`; `{Self}` does not",
    label = "this handler's error type",
    note = "return `HandlerError`, any `std::error::Error + Send + Sync`, `anyhow::Error` or `Box<dyn Error + Send + Sync>`, or map the error: `.map_err(HandlerError::retryable)?`"
)]
pub trait HandlerFailure: Into<Box<dyn std::error::Error + Send + Sync>> {}

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> HandlerFailure for E {}

/// The handler returned something that converts into a boxed error: retryable.
pub trait FromBoxed<E> {
    /// The error as a retryable failure.
    fn handler_error(&self) -> HandlerError
    where
        E: HandlerFailure;
}

impl<E> FromBoxed<E> for Failure<E> {
    fn handler_error(&self) -> HandlerError
    where
        E: HandlerFailure,
    {
        HandlerError::retryable(self.take())
    }
}

/// One character of a consumer group's name, as a type: the name is spelled as a tuple of these
/// in [`ConsumerGroup`], since a `&str` cannot be a const generic parameter.
pub struct GroupChar<const C: char>;

/// A consumer group's name as a type (a tuple of [`GroupChar`]s).
pub struct ConsumerGroup<Name>(std::marker::PhantomData<Name>);

/// Implemented by an event for each consumer group its topic declares; a listener's check
/// requires it for the listener's group.
pub trait ConsumedBy<Group> {}

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

/// Compiles only if `T` is written as a JSON string (the schema's `type`).
pub fn expect_string<T: JsonString + ?Sized>() {}
/// Compiles only if `T` is written as a JSON integer.
pub fn expect_integer<T: JsonInteger + ?Sized>() {}
/// Compiles only if `T` is written as a JSON number.
pub fn expect_number<T: JsonNumber + ?Sized>() {}
/// Compiles only if `T` is written as a JSON boolean.
pub fn expect_boolean<T: JsonBoolean + ?Sized>() {}
/// Compiles only if `T` is written as a JSON array.
pub fn expect_array<T: JsonArray + ?Sized>() {}
/// Compiles only if `T` is written as a JSON object.
pub fn expect_object<T: JsonObject + ?Sized>() {}

/// The test `#[erp_event]` generates: under `ERP_EVENTS_WRITE_SCHEMAS=1 cargo test`, writes
/// `E`'s schema file into `catalog` (never changing a published version incompatibly: that
/// fails the test and says to bump the version); otherwise does nothing (the build checks the
/// schema).
pub fn write_schema<E: Event>(catalog: &Catalog) {
    use crate::core::schema::{SchemaChange, SchemaWriter, WRITE_SCHEMAS_VAR};
    if std::env::var_os(WRITE_SCHEMAS_VAR).is_none_or(|value| value.is_empty()) {
        return;
    }
    let writer = SchemaWriter::new(catalog).event::<E>();
    let changes = writer.write().expect("write the schema file");
    for (path, change) in changes {
        match change {
            SchemaChange::Unchanged => {}
            SchemaChange::Missing => println!("created {}", path.display()),
            SchemaChange::Changed(lines) => {
                println!("wrote {}: {}", path.display(), lines.join("; "))
            }
            SchemaChange::TopicTaken(others) => panic!(
                "{}: its topic carries {} already, and a topic carries one event struct: declare a topic of its own for `{}` in catalog.toml",
                path.display(),
                others.join(", "),
                std::any::type_name::<E>()
            ),
            SchemaChange::Incompatible(lines) => panic!(
                "{} is published and its readers cannot take this change ({}): bump `version` on `{}` and run this again",
                path.display(),
                lines.join("; "),
                std::any::type_name::<E>()
            ),
        }
    }
    let incompatible = writer.incompatibilities();
    assert!(incompatible.is_empty(), "{}", incompatible.join("\n"));
}
