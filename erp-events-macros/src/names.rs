//! Message helpers: backticked lists and "did you mean" suggestions.

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
