//! Printer and ETF encoder against real OTP 25 output.
//!
//! `oracle/oracle_table.txt` was generated once by `oracle/gen_table.escript`
//! with `erl`: each line is `term_to_binary(T)` in hex, a tab, and
//! `io_lib:format("~0p", [T])`.

use drv_term::{decode, encode, Term, SMALL_MAP_LIMIT};

const TABLE: &str = include_str!("oracle/oracle_table.txt");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn is_large_map(t: &Term) -> bool {
    matches!(t, Term::Map(p) if p.len() > SMALL_MAP_LIMIT)
}

/// Decodes the oracle's bytes, re-encodes them and prints the term.
fn check(hex: &str, expected_print: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let bytes = unhex(hex);
    let term = match decode(&bytes) {
        Ok(t) => t,
        Err(e) => return vec![format!("{expected_print}: decode failed: {e}")],
    };
    // Large maps use BEAM's hash order, which this crate does not reproduce.
    if is_large_map(&term) {
        return failures;
    }
    if encode(&term) != bytes {
        failures.push(format!("{expected_print}: encode differs"));
    }
    let printed = term.to_string();
    if printed != expected_print {
        failures.push(format!("printed {printed}, erl printed {expected_print}"));
    }
    failures
}

#[test]
fn printer_and_encoder_match_erl() {
    let mut failures = Vec::new();
    let mut rows = 0;
    for line in TABLE.lines() {
        let (hex, printed) = line.split_once('\t').expect("hex<TAB>printed");
        failures.extend(check(hex, printed));
        rows += 1;
    }
    assert!(rows >= 100, "table has {rows} rows");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
