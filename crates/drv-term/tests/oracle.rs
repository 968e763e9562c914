//! Printer and ETF encoder against real OTP 25 output.
//!
//! `oracle/oracle_table.txt` was generated once by `oracle/gen_table.escript`
//! with `erl`: each line is `term_to_binary(T)` in hex, a tab, and
//! `io_lib:format("~0p", [T])`. The same script also runs live when `escript`
//! is installed (always under `CI=true`, where a missing `escript` fails the
//! test), so the check does not rest on the checked-in file alone.

use drv_term::{decode, encode, Term, SMALL_MAP_LIMIT};

const TABLE: &str = include_str!("oracle/oracle_table.txt");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A large map whose BEAM order this crate does not know: one with a key holding an atom, a
/// pid, a port, a reference or a map (see `hamt.rs`). Other large maps must match byte for
/// byte.
fn is_large_map(t: &Term) -> bool {
    fn vm_word(t: &Term) -> bool {
        match t {
            Term::Atom(_) | Term::Pid(_) | Term::Port(_) | Term::Ref(_) | Term::Map(_) => true,
            Term::List(v) | Term::Tuple(v) => v.iter().any(vm_word),
            Term::ImproperList(v, tail) => v.iter().any(vm_word) || vm_word(tail),
            _ => false,
        }
    }
    matches!(t, Term::Map(p) if p.len() > SMALL_MAP_LIMIT && p.iter().any(|(k, _)| vm_word(k)))
}

/// Decodes the oracle's bytes, re-encodes them and prints the term.
fn check(hex: &str, expected_print: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let bytes = unhex(hex);
    let term = match decode(&bytes) {
        Ok(t) => t,
        Err(e) => return vec![format!("{expected_print}: decode failed: {e}")],
    };
    // Such a map's pairs are in BEAM's internal hash order, which this crate does not know:
    // the same pairs, so the same length and the same term back.
    if is_large_map(&term) {
        let ours = encode(&term);
        if ours.len() != bytes.len() || decode(&ours).as_ref() != Ok(&term) {
            failures.push(format!("{expected_print}: large map encodes differently"));
        }
    } else if encode(&term) != bytes {
        failures.push(format!("{expected_print}: encode differs"));
    }
    let printed = term.to_string();
    // `~0p` prints such a map in hash order too.
    if printed != expected_print && !is_large_map(&term) {
        failures.push(format!("printed {printed}, erl printed {expected_print}"));
    }
    failures
}

fn check_table(table: &str) {
    let mut failures = Vec::new();
    let mut rows = 0;
    for line in table.lines() {
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

#[test]
fn printer_and_encoder_match_erl() {
    check_table(TABLE);
}

/// Regenerates the table with the installed `erl` and checks every row of it.
#[test]
fn printer_and_encoder_match_live_erl() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/oracle/gen_table.escript"
    );
    let strict = std::env::var("CI").is_ok_and(|v| v == "true");
    let out = match std::process::Command::new("escript").arg(script).output() {
        Ok(out) => out,
        Err(e) => {
            assert!(!strict, "CI=true: escript (erlang-nox) is needed: {e}");
            eprintln!("SKIPPED: escript is not installed: {e}");
            return;
        }
    };
    assert!(
        out.status.success(),
        "gen_table.escript failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = String::from_utf8(out.stdout).expect("UTF-8 output");
    // Identifiers (pids, refs) differ from run to run, and so does the order of a large map
    // with an atom key (it hashes the atom's index in that VM); every other row is the
    // checked-in one.
    let same = |row: &&str| {
        let (hex, _) = row.split_once('\t').expect("hex<TAB>printed");
        !["<0.", "#Ref", "#Port"].iter().any(|id| row.contains(id))
            && !decode(&unhex(hex)).is_ok_and(|t| is_large_map(&t))
    };
    let fixed: Vec<&str> = TABLE.lines().filter(same).collect();
    let live_fixed: Vec<&str> = live.lines().filter(same).collect();
    assert_eq!(
        live_fixed, fixed,
        "BEAM's output differs from oracle_table.txt"
    );
    check_table(&live);
}
