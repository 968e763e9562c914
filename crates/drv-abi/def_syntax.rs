//! Syntax helpers for `include/ddll_api.def` and C declarations, shared by `build.rs` (which
//! generates the binding list) and `tests/layout.rs` (which checks the def against the
//! headers), so both read the file the same way.

/// Splits on commas that are not inside parentheses, trimming each part.
pub fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        parts.push(current.trim().to_owned());
    }
    parts
}
