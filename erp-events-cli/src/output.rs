//! What a command prints: an aligned table for people, or JSON for scripts.

use std::io::Write;

use serde_json::Value;

/// Rows under a header line, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|title| title.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push('\n');
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

/// Prints `value` as pretty JSON, or `human` (computed only when asked for).
pub fn print(json: bool, value: &Value, human: impl FnOnce() -> String) {
    if json {
        emit(&serde_json::to_string_pretty(value).expect("JSON values print"));
    } else {
        emit(&human());
    }
}

/// Writes `text` and a newline to stdout; a reader that went away (`| head`) is no error.
pub fn emit(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// `value` or `-` when there is none.
pub fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// `text` cut to `max` characters, with `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let kept: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = vec![
            vec!["erp.a".to_owned(), "6".to_owned()],
            vec!["erp.longer".to_owned(), "12".to_owned()],
        ];
        assert_eq!(
            table(&["TOPIC", "PARTITIONS"], &rows),
            "TOPIC       PARTITIONS\nerp.a       6\nerp.longer  12"
        );
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
