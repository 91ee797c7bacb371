//! W3C trace context (`traceparent`), carried from publisher to listener to dead-letter topic.

/// The header that carries the trace context on every record.
pub const TRACEPARENT: &str = "traceparent";

/// A position in a distributed trace: the trace, the current span, and the sampling flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl TraceContext {
    /// Starts a new, sampled trace.
    pub fn new_root() -> Self {
        TraceContext {
            trace_id: nonzero_random_bytes(),
            span_id: new_span_id(),
            flags: 1,
        }
    }

    /// A new span in the same trace (a record published, a record handled).
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// A new span in the trace whose id is `trace_id_hex` (an envelope's `traceId`); `None` if
    /// that is not 32 lowercase hex digits.
    pub fn continuing(trace_id_hex: &str) -> Option<Self> {
        let trace_id = hex_array(trace_id_hex)?;
        (trace_id != [0; 16]).then(|| TraceContext {
            trace_id,
            span_id: new_span_id(),
            flags: 1,
        })
    }

    /// Reads a `traceparent` value (`00-<trace id>-<span id>-<flags>`); `None` if malformed.
    pub fn parse(traceparent: &str) -> Option<Self> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let context = TraceContext {
            trace_id: hex_array(trace)?,
            span_id: hex_array(span)?,
            flags: hex_array::<1>(flags)?[0],
        };
        let valid = context.trace_id != [0; 16] && context.span_id != [0; 8];
        valid.then_some(context)
    }

    /// The `traceparent` header value.
    pub fn to_traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            hex(&self.span_id),
            self.flags
        )
    }

    /// The trace id as 32 lowercase hex digits (the envelope's `traceId`).
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// A position from its parts (OpenTelemetry's span context).
    #[cfg(feature = "otel")]
    pub(crate) fn from_ids(trace_id: [u8; 16], span_id: [u8; 8], flags: u8) -> Self {
        TraceContext {
            trace_id,
            span_id,
            flags,
        }
    }

    /// The trace id, span id and flags (for OpenTelemetry's span context).
    #[cfg(feature = "otel")]
    pub(crate) fn ids(&self) -> ([u8; 16], [u8; 8], u8) {
        (self.trace_id, self.span_id, self.flags)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }
}

fn new_span_id() -> [u8; 8] {
    nonzero_random_bytes()
}

/// Random bytes, never all zero (an all-zero trace or span id is invalid).
fn nonzero_random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    for chunk in bytes.chunks_mut(8) {
        let word = crate::core::ids::random_u64() | 1;
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
    bytes
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    /// The value of each lowercase hex digit; 0xff for any other byte.
    const NIBBLES: [u8; 256] = {
        let mut table = [0xff; 256];
        let mut digit = 0;
        while digit < 16 {
            table[b"0123456789abcdef"[digit] as usize] = digit as u8;
            digit += 1;
        }
        table
    };
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let mut out = [0; N];
    let mut invalid = 0;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (NIBBLES[usize::from(pair[0])], NIBBLES[usize::from(pair[1])]);
        invalid |= high | low;
        *byte = high << 4 | low;
    }
    (invalid & 0xf0 == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_the_w3c_example() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::parse(value).unwrap();
        assert_eq!(context.to_traceparent(), value);
        assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_span() {
        let root = TraceContext::new_root();
        let child = root.child();
        assert_eq!(child.trace_id_hex(), root.trace_id_hex());
        assert_ne!(child.span_id_hex(), root.span_id_hex());
        assert_eq!(TraceContext::parse(&child.to_traceparent()), Some(child));
    }

    #[test]
    fn an_envelope_trace_id_is_continued() {
        let root = TraceContext::new_root();
        let continued = TraceContext::continuing(&root.trace_id_hex()).unwrap();
        assert_eq!(continued.trace_id_hex(), root.trace_id_hex());
        assert_eq!(TraceContext::continuing("otel-trace-id"), None);
        assert_eq!(TraceContext::continuing(&"0".repeat(32)), None);
    }

    #[test]
    fn rejects_malformed_values() {
        for value in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba9é2b7-01",
        ] {
            assert_eq!(TraceContext::parse(value), None, "{value}");
        }
    }
}
