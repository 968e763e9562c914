//! Replays every input under `tests/regressions/`: files named `etf-*` go to
//! the ETF decoder, `spec-*` to the spec interpreter, anything else to both.

use std::path::Path;

use drv_term::fuzz::{etf_decode_one, spec_one};

#[test]
fn replay_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("regressions folder exists") {
        let path = entry.expect("readable entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if name.ends_with(".md") {
            continue;
        }
        let data = std::fs::read(&path).expect("readable file");
        if !name.starts_with("spec-") {
            etf_decode_one(&data);
        }
        if !name.starts_with("etf-") {
            spec_one(&data);
        }
        replayed += 1;
    }
    assert!(replayed > 0, "no regression inputs in {}", dir.display());
}
