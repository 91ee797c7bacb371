//! Attribute macros of erp-events. Use them through the `erp-events` crate, which re-exports
//! them; the generated code refers to `::erp_events` only.
//!
//! Each entry point forwards to a plain module that works on `proc_macro2` tokens and is unit
//! tested without a compiler.

use proc_macro::TokenStream;

mod args;
mod catalog_macro;
mod compile_catalog;
mod erp_type;
mod errors;
mod event;
mod listener;
mod names;
mod payload;

/// Makes a struct an event: `#[erp_event(topic = "erp.<module>.<category>", key = field)]`.
///
/// Optional keys: `version = N` (default 1) and `event_type = "NAME"` or `event_type = field`
/// (an `#[erp_type]` enum field whose variant names the type; default: the struct name in
/// SCREAMING_SNAKE_CASE). The topic must be declared in `schemas/catalog.toml`.
#[proc_macro_attribute]
pub fn erp_event(args: TokenStream, item: TokenStream) -> TokenStream {
    event::expand(args.into(), item.into()).into()
}

/// Makes an async handler a listener:
/// `#[erp_listener(group = "search-sync", retries = 3)]` on
/// `async fn name(event: Envelope<E>[, state: State<S>]) -> Result<(), Err>`.
///
/// Optional keys: `retries = 0..=10` (default 3), `backoff(initial_ms = 1000, multiplier = 2,
/// max_ms = 30000)`, `concurrency = N` (partitions at once, default 8) and `idempotent = bool`
/// (default true). The function becomes a unit struct of the same name implementing
/// `erp_events::Listener`; the function itself stays callable as `name::call`.
#[proc_macro_attribute]
pub fn erp_listener(args: TokenStream, item: TokenStream) -> TokenStream {
    listener::expand(args.into(), item.into()).into()
}

/// Makes an enum or struct usable inside event payloads (serialized the way the Kotlin services
/// expect: enum variants in SCREAMING_SNAKE_CASE, struct fields in camelCase).
#[proc_macro_attribute]
pub fn erp_type(args: TokenStream, item: TokenStream) -> TokenStream {
    erp_type::expand(args.into(), item.into()).into()
}

/// The topic catalog of `schemas/`, embedded at compile time: `erp_events::catalog!()` is a
/// `&'static Catalog`.
#[proc_macro]
pub fn catalog(input: TokenStream) -> TokenStream {
    catalog_macro::expand(input.into()).into()
}
