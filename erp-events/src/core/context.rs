//! The task-scoped event context: who acts and in which trace, for everything published inside.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::core::trace::TraceContext;

tokio::task_local! {
    static CURRENT: EventContext;
}

/// What a publisher adds to every envelope it writes inside [`EventContext::scope`]: the user
/// (`userId`) and the trace (`traceId` and the `traceparent` header).
///
/// Listeners run every handler inside the context of the record being handled, so events a
/// handler publishes continue the same trace on behalf of the same user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventContext {
    user_id: Option<String>,
    trace: OnceLock<TraceContext>,
    /// Shared: only idempotent listeners set it, and a handler's context is moved in and out of
    /// the task-local on each poll and cloned on each attempt.
    claim: Option<Arc<ClaimMarker>>,
    /// The handled record's trace: the handler's span is its child, made on first use.
    record: Option<RecordTrace>,
}

/// The trace a handled record carries (its `traceparent`, else its envelope's `traceId`), or
/// none, when the handler's span starts a new trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordTrace(pub(crate) Option<TraceContext>);

/// The idempotency claim of the event an idempotent listener is handling: the key that becomes
/// `done`, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimMarker {
    /// `erp:idem:{<group>}:<eventId>`.
    pub(crate) key: String,
    /// The claim's owner token.
    pub(crate) owner: String,
    /// How long the `done` marker is kept.
    pub(crate) done_ttl: Duration,
}

impl EventContext {
    /// An empty context: no user, and a new trace for each record published.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the acting user.
    pub fn with_user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets the trace to continue.
    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.trace = OnceLock::from(trace);
        self
    }

    /// Continues the trace of the record being handled: the handler's span, a child of
    /// `record`'s, is made only when something inside asks for the context (a handler that
    /// publishes nothing costs no span id).
    pub(crate) fn continuing_record(mut self, record: RecordTrace) -> Self {
        self.record = Some(record);
        self
    }

    /// Sets the claim of the event being handled.
    pub(crate) fn with_claim(mut self, claim: ClaimMarker) -> Self {
        self.claim = Some(Arc::new(claim));
        self
    }

    /// Whether the current task is a listener's handler (which must never wait for a queue its
    /// own worker drains).
    pub(crate) fn in_handler() -> bool {
        CURRENT
            .try_with(|context| context.record.is_some())
            .unwrap_or(false)
    }

    /// The claim of the event being handled, inside an idempotent listener's handler.
    pub(crate) fn claim(&self) -> Option<&ClaimMarker> {
        self.claim.as_deref()
    }

    /// The acting user, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The trace to continue, if any.
    pub fn trace(&self) -> Option<&TraceContext> {
        self.trace.get()
    }

    /// The context of the current task, or an empty one outside any scope.
    pub fn current() -> EventContext {
        CURRENT
            .try_with(|context| {
                if let Some(RecordTrace(parent)) = context.record {
                    // The first read in this handler's run fixes its span for the rest.
                    context.trace.get_or_init(|| {
                        parent.map_or_else(TraceContext::new_root, |parent| parent.child())
                    });
                }
                EventContext {
                    record: None,
                    ..context.clone()
                }
            })
            .unwrap_or_default()
    }

    /// Runs `future` with this context as the current one.
    pub fn scope<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        // Not an `async fn`: a listener's handler runs in here, and a wrapping future would
        // move the context and the handler's future once more per record.
        CURRENT.scope(self, future)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_context_is_scoped_to_its_future() {
        assert_eq!(EventContext::current(), EventContext::new());
        let trace = TraceContext::new_root();
        let context = EventContext::new().with_user("u-1").with_trace(trace);
        let seen = context
            .clone()
            .scope(async { EventContext::current() })
            .await;
        assert_eq!(seen, context);
        assert_eq!(EventContext::current().user_id(), None);
    }

    #[tokio::test]
    async fn a_handler_continues_its_records_trace_in_one_span() {
        let parent = TraceContext::new_root();
        let context = EventContext::new().continuing_record(RecordTrace(Some(parent)));
        let (first, second) = context
            .scope(async { (EventContext::current(), EventContext::current()) })
            .await;
        let trace = first.trace().expect("the record's trace");
        assert_eq!(trace.trace_id_hex(), parent.trace_id_hex());
        assert_ne!(
            trace.span_id_hex(),
            parent.span_id_hex(),
            "a span of its own"
        );
        assert_eq!(second.trace(), Some(trace), "one span per handler run");
    }

    #[tokio::test]
    async fn a_record_without_a_trace_starts_one() {
        let context = EventContext::new().continuing_record(RecordTrace(None));
        let seen = context.scope(async { EventContext::current() }).await;
        assert!(seen.trace().is_some());
    }
}
