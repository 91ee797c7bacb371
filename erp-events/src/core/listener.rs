//! What `#[erp_listener]` makes of an async function: a [`Listener`] the runtime can run.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::core::envelope::Envelope;
use crate::core::event::Event;
use crate::core::retry::Backoff;

/// A consumer of one event type in one consumer group.
///
/// Implemented by `#[erp_listener(group = "...")]` on
/// `async fn name(event: Envelope<E>, [state: State<S>]) -> Result<(), Err>`; the function
/// becomes a unit struct of the same name that implements this trait (the function itself stays
/// callable as `name::call`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a listener",
    note = "mark an `async fn handler(event: Envelope<E>) -> Result<(), HandlerError>` with `#[erp_listener(group = \"...\")]`"
)]
pub trait Listener: Send + Sync + 'static {
    /// The event listened to; the topic is `Self::Event::TOPIC`.
    type Event: Event;
    /// Shared state handed to every call (`()` when the handler takes none).
    type State: Clone + Send + Sync + 'static;
    /// The consumer group.
    const GROUP: &'static str;
    /// The handler's name, for logs.
    const NAME: &'static str;

    /// Retry, backoff, concurrency and idempotency settings.
    fn options(&self) -> ListenerOptions;

    /// Handles one event.
    fn handle(
        &self,
        event: Envelope<Self::Event>,
        state: &Self::State,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// How a listener's records are processed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListenerOptions {
    /// Attempts after the first before a record goes to the dead-letter topic (Spring's
    /// `FixedBackOff(1000, 3)` is `retries = 3`).
    pub retries: u32,
    /// Delays between attempts.
    pub backoff: Backoff,
    /// How many partitions are processed at once.
    pub concurrency: usize,
    /// Whether each event is handled once per group, deduplicated by `eventId`.
    pub idempotent: bool,
    /// How long one attempt may run; past it the attempt is cancelled (at its next `.await`)
    /// and has failed ([`TimedOut`]), like any error. `None` (the default): no limit.
    pub timeout: Option<Duration>,
}

impl ListenerOptions {
    /// 3 retries, 1 s × 2 backoff capped at 30 s, 8 partitions at once, idempotent.
    pub const DEFAULT: ListenerOptions = ListenerOptions {
        retries: 3,
        backoff: Backoff::DEFAULT,
        concurrency: 8,
        idempotent: true,
        timeout: None,
    };
}

impl Default for ListenerOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Shared state for handlers, as axum's `State`: a handler's second parameter `State<S>` gets a
/// clone of the value given with [`ListenerExt::with_state`].
#[derive(Debug, Clone, Copy, Default)]
pub struct State<S>(pub S);

/// A listener with its state, ready to be added to an [`crate::App`].
pub struct WithState<L: Listener> {
    pub(crate) listener: L,
    pub(crate) state: L::State,
}

/// `listener.with_state(state)`.
pub trait ListenerExt: Listener + Sized {
    /// Pairs the listener with the state its handler receives.
    fn with_state(self, state: Self::State) -> WithState<Self> {
        WithState {
            listener: self,
            state,
        }
    }
}

impl<L: Listener> ListenerExt for L {}

/// Something [`crate::App::listener`] accepts: a stateless listener, or one `with_state`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be added as a listener",
    note = "a listener whose handler takes `State<S>` is added as `handler.with_state(state)`"
)]
pub trait IntoListener {
    /// The listener.
    type Listener: Listener;
    /// The listener and its state.
    fn into_parts(self) -> (Self::Listener, <Self::Listener as Listener>::State);
}

/// The state of a listener that needs none.
#[diagnostic::on_unimplemented(
    message = "this listener's handler takes `State<{Self}>`: add it as `handler.with_state(state)`",
    label = "a listener that needs its state",
    note = "`use erp_events::ListenerExt;` then `app.listener(handler.with_state(state))`"
)]
pub trait Stateless {
    /// The (empty) state.
    fn none() -> Self;
}

impl Stateless for () {
    fn none() -> Self {}
}

impl<L: Listener> IntoListener for L
where
    L::State: Stateless,
{
    type Listener = L;
    fn into_parts(self) -> (L, L::State) {
        (self, L::State::none())
    }
}

impl<L: Listener> IntoListener for WithState<L> {
    type Listener = L;
    fn into_parts(self) -> (L, L::State) {
        (self.listener, self.state)
    }
}

/// Why a handler did not handle an event. Any `std::error::Error` converts into a retryable one
/// (so `?` works); [`HandlerError::permanent`] sends the record to the dead-letter topic at once.
pub struct HandlerError {
    permanent: bool,
    type_name: &'static str,
    source: Box<dyn Error + Send + Sync>,
}

impl HandlerError {
    /// A failure worth retrying (a timeout, a dependency down).
    pub fn retryable<E: Into<Box<dyn Error + Send + Sync>>>(error: E) -> Self {
        Self::new(error, false)
    }

    /// A failure no retry can fix (invalid data for this handler): straight to the DLT.
    pub fn permanent<E: Into<Box<dyn Error + Send + Sync>>>(error: E) -> Self {
        Self::new(error, true)
    }

    fn new<E: Into<Box<dyn Error + Send + Sync>>>(error: E, permanent: bool) -> Self {
        HandlerError {
            permanent,
            type_name: std::any::type_name::<E>(),
            source: error.into(),
        }
    }

    /// A handler that panicked: a failed attempt like any other (retried, then dead-lettered
    /// with the panic's message), as Spring treats an exception thrown by a listener.
    pub(crate) fn panicked(payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = match payload.downcast::<String>() {
            Ok(message) => *message,
            Err(payload) => match payload.downcast::<&'static str>() {
                Ok(message) => (*message).to_owned(),
                Err(_) => "a panic without a message".to_owned(),
            },
        };
        HandlerError {
            permanent: false,
            // Its public path, not the module it is defined in.
            type_name: "erp_events::Panicked",
            source: Box::new(Panicked(message)),
        }
    }

    /// An attempt that ran past the listener's `timeout`: failed, and retried like any error.
    pub(crate) fn timed_out(limit: Duration) -> Self {
        HandlerError {
            permanent: false,
            type_name: "erp_events::TimedOut",
            source: Box::new(TimedOut(limit)),
        }
    }

    /// Whether retrying is pointless.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The Rust type of the original error (the DLT's `exception-fqcn`).
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }
}

/// A handler panicked; its dead letters name this type and the panic's message.
#[derive(Debug, thiserror::Error)]
#[error("the handler panicked: {0}")]
pub struct Panicked(String);

/// A handler ran past its listener's `timeout`; its dead letters name this type.
#[derive(Debug, thiserror::Error)]
#[error("the handler ran past its timeout of {0:?}")]
pub struct TimedOut(Duration);

impl<E: Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(error: E) -> Self {
        Self::retryable(error)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        let mut cause = self.source.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("permanent", &self.permanent)
            .field("type", &self.type_name)
            .field("message", &self.to_string())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("index unavailable")]
    struct IndexDown(#[source] std::io::Error);

    #[test]
    fn errors_convert_with_their_type_and_cause_chain() {
        let error: HandlerError = IndexDown(std::io::Error::other("connection refused")).into();
        assert!(!error.is_permanent());
        assert!(error.type_name().ends_with("IndexDown"));
        assert_eq!(error.to_string(), "index unavailable: connection refused");
        let permanent = HandlerError::permanent("negative quantity");
        assert!(permanent.is_permanent());
        assert_eq!(permanent.to_string(), "negative quantity");
    }
}
