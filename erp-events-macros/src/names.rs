//! Names in messages (backticked lists, "did you mean" suggestions) and in generated types.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// `` `a`, `b`, `c` ``.
pub fn backticked<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `"; did you mean `x`?"` when a candidate is close to `name`, else nothing.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    erp_events_catalog::nearest(name, candidates)
        .map(|nearest| format!("; did you mean `{nearest}`?"))
        .unwrap_or_default()
}

/// The consumer group `name` as a type, `ConsumerGroup<(GroupChar<'a'>, ..)>`: what an event
/// implements `ConsumedBy` for, per consumer group of its topic.
pub fn consumer_group_type(name: &str) -> TokenStream {
    let chars = name.chars().map(Literal::character);
    quote!(::erp_events::__private::ConsumerGroup<(#(::erp_events::__private::GroupChar<#chars>,)*)>)
}
