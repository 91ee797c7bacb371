//! Name rules shared by the macros and the runtime: topic shape, case conversions, suggestions.

/// Explains why `topic` is not of the shape `erp.<module>.<category>`, or `None` when it is.
///
/// Each of the three segments is non-empty and made of lowercase ASCII letters, digits and `-`,
/// starting with a letter; the first segment is `erp`.
pub fn topic_shape_error(topic: &str) -> Option<String> {
    let segments: Vec<&str> = topic.split('.').collect();
    if segments.len() != 3 {
        return Some(format!(
            "a topic has three dot-separated segments, `erp.<module>.<category>`; `{topic}` has {}",
            segments.len()
        ));
    }
    if segments[0] != "erp" {
        return Some(format!(
            "a topic starts with `erp.`, as in `erp.<module>.<category>`; `{topic}` starts with `{}.`",
            segments[0]
        ));
    }
    segments[1..].iter().find_map(|segment| {
        let valid = segment.starts_with(|c: char| c.is_ascii_lowercase())
            && segment
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        (!valid).then(|| {
            format!(
                "topic segment `{segment}` must be lowercase ASCII letters, digits or `-`, starting with a letter"
            )
        })
    })
}

/// `InventoryMovement` → `INVENTORY_MOVEMENT`; `POCreated` → `PO_CREATED`.
pub fn screaming_snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        let starts_word = i > 0
            && c.is_uppercase()
            && (chars[i - 1].is_lowercase()
                || chars[i - 1].is_ascii_digit()
                || chars.get(i + 1).is_some_and(|next| next.is_lowercase()));
        if starts_word && !out.ends_with('_') {
            out.push('_');
        }
        out.extend(c.to_uppercase());
    }
    out
}

/// `product_id` → `productId`, the way serde's `rename_all = "camelCase"` renames a field.
pub fn camel_case(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper_next = false;
    for c in field.chars() {
        if c == '_' {
            upper_next = true;
        } else if upper_next {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The candidate closest to `name` by edit distance, if it is close enough to be a likely typo.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|&(distance, candidate)| distance <= (candidate.len().max(name.len()) / 3).max(2))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_seed_topics() {
        for topic in [
            "erp.inventory.movements",
            "erp.vma.clinical",
            "erp.audit-log.events2",
        ] {
            assert_eq!(topic_shape_error(topic), None, "{topic}");
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        for topic in [
            "inventory.movements",
            "erp.inventory",
            "erp.inventory.movements.v2",
            "acme.inventory.movements",
            "erp.Inventory.movements",
            "erp.inventory.",
            "erp.inventory.stock_moves",
            "erp.9lives.x",
        ] {
            assert!(topic_shape_error(topic).is_some(), "{topic}");
        }
    }

    #[test]
    fn converts_case() {
        assert_eq!(
            screaming_snake_case("InventoryMovement"),
            "INVENTORY_MOVEMENT"
        );
        assert_eq!(screaming_snake_case("POCreated"), "PO_CREATED");
        assert_eq!(screaming_snake_case("Sale2Completed"), "SALE2_COMPLETED");
        assert_eq!(camel_case("product_id"), "productId");
        assert_eq!(camel_case("unit_cost_cents"), "unitCostCents");
        assert_eq!(camel_case("quantity"), "quantity");
    }

    #[test]
    fn suggests_the_nearest_name_only_when_close() {
        let topics = ["erp.inventory.movements", "erp.audit.events"];
        assert_eq!(
            nearest("erp.inventory.movement", topics),
            Some("erp.inventory.movements")
        );
        assert_eq!(nearest("erp.audit.event", topics), Some("erp.audit.events"));
        assert_eq!(nearest("erp.sales.transactions", topics), None);
    }
}
