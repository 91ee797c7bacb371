//! What `#[erp_event]` makes of a struct: an event with a topic, a type, a version and a key.

use std::borrow::Cow;

use erp_events_catalog::Compatibility;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An event payload that can be published and listened to.
///
/// Implemented by `#[erp_event(topic = "...", key = field)]`; the constants come from the
/// attribute and were checked against the catalog at compile time.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event",
    label = "not an event",
    note = "mark the struct with `#[erp_event(topic = \"erp.<module>.<category>\", key = <field>)]`"
)]
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The Kafka topic, e.g. `erp.inventory.movements`.
    const TOPIC: &'static str;
    /// The schema name, e.g. `INVENTORY_MOVEMENT` (its file is `schemas/<topic>/<SCHEMA>.v<N>.json`).
    const SCHEMA: &'static str;
    /// The payload schema version this build writes and the newest it reads.
    const VERSION: u32;
    /// How the topic's schema versions may evolve (the catalog's `compatibility`): whether a
    /// listener reads records of versions newer than [`Event::VERSION`].
    const COMPATIBILITY: Compatibility;
    /// The consumer groups the catalog declares for [`Event::TOPIC`].
    const CONSUMERS: &'static [&'static str];
    /// Where the topic's dead letters go: [`Event::TOPIC`] with the catalog's dead-letter
    /// suffix (`.DLT` unless the catalog says otherwise).
    const DEAD_LETTER_TOPIC: &'static str;
    /// The service the catalog names as the topic's producer (`*`: any service).
    const PRODUCER: &'static str;
    /// `Self`, named through this trait by the listener macro's consumer-group check, so that
    /// a type that is not an event fails that check as "not an event".
    #[doc(hidden)]
    type Itself: ?Sized;

    /// The envelope's `eventType` for this value (fixed, or taken from an enum field).
    fn event_type(&self) -> &str;

    /// The Kafka record key: the key field as UTF-8, so one entity's events stay in order.
    fn key(&self) -> Cow<'_, str>;

    /// The payload schema the struct implies: what the schema writer writes for it.
    fn schema() -> crate::core::schema::EventSchema;
}

/// A value usable as an event's key field.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an event key",
    label = "the key field must be a string, an integer or a UUID",
    note = "the key becomes the Kafka record key as UTF-8 text"
)]
pub trait EventKey {
    /// The key as text.
    fn event_key(&self) -> Cow<'_, str>;
}

impl EventKey for String {
    fn event_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl EventKey for uuid::Uuid {
    fn event_key(&self) -> Cow<'_, str> {
        Cow::Owned(self.hyphenated().to_string())
    }
}

macro_rules! integer_keys {
    ($($t:ty),*) => {$(
        impl EventKey for $t {
            fn event_key(&self) -> Cow<'_, str> {
                Cow::Owned(self.to_string())
            }
        }
    )*};
}
integer_keys!(i16, i32, i64, u16, u32, u64);

/// A fieldless enum whose variant names an event type (the seed's `event.action.name`).
///
/// Implemented by `#[erp_type]` on a fieldless enum; used by `#[erp_event(event_type = field)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot name an event type",
    label = "`event_type = <field>` needs a fieldless enum marked `#[erp_type]`",
    note = "or give the event type as a string: `event_type = \"INVENTORY_RECEIVED\"`"
)]
pub trait EventTypeName {
    /// The variant's name in SCREAMING_SNAKE_CASE, as it is serialized.
    fn event_type_name(&self) -> &'static str;
}
