//! The typed model of one `#[erp_listener]`: its arguments and the handler's signature.

use erp_events_catalog::Catalog;
use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, LitStr, PathArguments, ReturnType, Type};

use crate::args::{Arg, find, parse_args};
use crate::errors::Errors;
use crate::names::{backticked, did_you_mean};

/// The keys `#[erp_listener]` accepts.
pub const KEYS: &[&str] = &[
    "group",
    "retries",
    "backoff",
    "concurrency",
    "idempotent",
    "timeout_ms",
];
/// The keys of `backoff(...)`.
pub const BACKOFF_KEYS: &[&str] = &["initial_ms", "multiplier", "max_ms"];
/// The largest `retries`.
pub const MAX_RETRIES: u64 = 10;

/// The handler's signature, as the expansion needs it.
pub struct Handler {
    /// `E` of the first parameter, `Envelope<E>`.
    pub event_type: Type,
    /// `S` of the second parameter, `State<S>`, if any.
    pub state_type: Option<Type>,
    /// The return type.
    pub output: Type,
}

/// One `#[erp_listener]`.
pub struct ListenerModel {
    /// `group = "..."`.
    pub group: Option<LitStr>,
    /// `retries = N` (default 3).
    pub retries: u32,
    /// `backoff(initial_ms = .., multiplier = .., max_ms = ..)` (default 1000, 2, 30000).
    pub backoff: (u64, f64, u64),
    /// `concurrency = N` (default 8).
    pub concurrency: usize,
    /// `idempotent = bool` (default true).
    pub idempotent: bool,
    /// `timeout_ms = N` (default: none).
    pub timeout_ms: Option<u64>,
    /// The handler's signature, when it has the right shape.
    pub handler: Option<Handler>,
}

impl ListenerModel {
    /// Reads the arguments and checks the handler's shape.
    pub fn build(args: TokenStream, function: &ItemFn, errors: &mut Errors) -> Self {
        let args = parse_args(args, KEYS, errors);
        let group = find(&args, "group").and_then(|arg| arg.lit_str(errors));
        if find(&args, "group").is_none() {
            errors.at(
                Span::call_site(),
                "missing `group = \"...\"`: the consumer group, one of the topic's consumers in `schemas/catalog.toml`",
            );
        }
        let defaults = (1000, 2.0, 30_000);
        ListenerModel {
            group,
            retries: find(&args, "retries")
                .and_then(|arg| arg.int(0..=MAX_RETRIES, errors))
                .map_or(3, |n| n as u32),
            backoff: find(&args, "backoff").map_or(defaults, |arg| backoff(arg, defaults, errors)),
            concurrency: find(&args, "concurrency")
                .and_then(|arg| arg.int(1..=1024, errors))
                .map_or(8, |n| n as usize),
            idempotent: find(&args, "idempotent")
                .and_then(|arg| arg.bool(errors))
                .unwrap_or(true),
            timeout_ms: find(&args, "timeout_ms").and_then(|arg| arg.int(1..=86_400_000, errors)),
            handler: handler(function, errors),
        }
    }
}

fn backoff(arg: &Arg, defaults: (u64, f64, u64), errors: &mut Errors) -> (u64, f64, u64) {
    let Some(nested) = arg.nested(BACKOFF_KEYS, errors) else {
        return defaults;
    };
    let mut millis = |key, default| {
        find(nested, key)
            .and_then(|a| a.int(1..=3_600_000, errors))
            .unwrap_or(default)
    };
    let initial = millis("initial_ms", defaults.0);
    let max = millis("max_ms", defaults.2);
    let multiplier = find(nested, "multiplier")
        .and_then(|a| a.number(10.0, errors))
        .unwrap_or(defaults.1);
    if max < initial {
        errors.at(
            arg.key.span(),
            format!("`max_ms` ({max}) is less than `initial_ms` ({initial})"),
        );
    }
    (initial, multiplier, max)
}

/// Checks `async fn name(event: Envelope<E>[, state: State<S>]) -> Result<..>`.
fn handler(function: &ItemFn, errors: &mut Errors) -> Option<Handler> {
    let signature = &function.sig;
    let mut shape = Errors::default();
    let handler = check_signature(signature, &mut shape);
    let broken = !shape.is_empty();
    errors.absorb(shape);
    // A wrong signature gets no listener impl: its errors would only repeat the ones above.
    handler.filter(|_| !broken)
}

fn check_signature(signature: &syn::Signature, errors: &mut Errors) -> Option<Handler> {
    if signature.asyncness.is_none() {
        errors.at(
            signature.fn_token.span(),
            format!(
                "`{}` must be an `async fn`: handlers are awaited by the consumer",
                signature.ident
            ),
        );
    }
    if !signature.generics.params.is_empty() {
        errors.at(
            signature.generics.span(),
            "a handler cannot be generic: its event type fixes its topic",
        );
    }
    let output = match &signature.output {
        ReturnType::Type(_, ty) if last_segment_is(ty, "Result") => Some((**ty).clone()),
        ReturnType::Type(_, ty) => {
            errors.at(ty.span(), "a handler returns `Result<(), E>`: `Err` makes the listener retry and then dead-letter the record");
            None
        }
        ReturnType::Default => {
            errors.at(
                signature.paren_token.span.close(),
                "a handler returns `Result<(), E>`; add `-> Result<(), HandlerError>`",
            );
            None
        }
    };
    let mut types = Vec::new();
    for input in &signature.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                errors.at(
                    receiver.span(),
                    "a handler is a free function, not a method",
                );
            }
            FnArg::Typed(typed) => types.push((*typed.ty).clone()),
        }
    }
    let event_type = match types.first() {
        Some(ty) if last_segment_is(ty, "Envelope") && type_argument(ty).is_some() => {
            type_argument(ty)
        }
        Some(ty) => {
            errors.at(
                ty.span(),
                "the first parameter must be `Envelope<E>`, where `E` is an `#[erp_event]` struct",
            );
            None
        }
        None => {
            errors.at(
                signature.paren_token.span.join(),
                "a handler takes the event first: `(event: Envelope<E>)`",
            );
            None
        }
    };
    let state_type = types.get(1).and_then(|ty| {
        let state = type_argument(ty).filter(|_| last_segment_is(ty, "State"));
        if state.is_none() {
            errors.at(
                ty.span(),
                "the second parameter, if any, must be `State<S>`: the listener's shared state",
            );
        }
        state
    });
    for extra in types.iter().skip(2) {
        errors.at(
            extra.span(),
            "a handler takes at most two parameters: `Envelope<E>` and `State<S>`",
        );
    }
    Some(Handler {
        event_type: event_type?,
        state_type,
        output: output?,
    })
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(path) if path.path.segments.last().is_some_and(|s| s.ident == name))
}

/// `T` of `Name<T>`.
fn type_argument(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    match &path.path.segments.last()?.arguments {
        PathArguments::AngleBracketed(args) if args.args.len() == 1 => match &args.args[0] {
            GenericArgument::Type(inner) => Some(inner.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Checks that `group` consumes some topic; returns the message for the event-level check,
/// which the compiler evaluates once it knows the event's topic.
pub fn check_group(group: &LitStr, catalog: &Catalog, errors: &mut Errors) -> Option<String> {
    let name = group.value();
    let consumed: Vec<&str> = catalog
        .topics()
        .iter()
        .filter(|topic| topic.consumers.contains(&name))
        .map(|topic| topic.name.as_str())
        .collect();
    if consumed.is_empty() {
        let groups = catalog.consumer_groups();
        errors.at(
            group.span(),
            format!(
                "consumer group `{name}` is not declared in `schemas/catalog.toml`; declared groups: {}{}",
                backticked(groups.iter().copied()),
                did_you_mean(&name, groups.iter().copied())
            ),
        );
        return None;
    }
    Some(format!(
        "consumer group `{name}` does not consume `{{Self}}`'s topic; in `schemas/catalog.toml` it consumes {}",
        backticked(consumed)
    ))
}
