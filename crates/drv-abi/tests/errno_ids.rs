//! `erl_errno_id` against BEAM 25's own answers for every errno from -2 to 150, as recorded
//! from a real BEAM in `scenarios/errno_ids.expected` (each line after the port's: the names
//! of ten consecutive errnos, space separated; see `scenarios/errno_ids.scen`).

use std::path::Path;

/// BEAM's names, by errno, from the scenario's recorded output.
fn beam_names() -> Vec<(i32, String)> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/errno_ids.expected");
    let text = std::fs::read_to_string(&file).expect("the recorded BEAM output is in the repo");
    let names: Vec<String> = text
        .lines()
        .filter_map(|line| line.split_once(": \"").map(|(_, rest)| rest))
        .flat_map(|rest| {
            rest.trim_end_matches('"')
                .split(' ')
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    // The scenario asks for -2..=-1, then 0..=150.
    (-2..).zip(names).collect()
}

#[test]
fn errno_ids_are_beams() {
    let names = beam_names();
    assert_eq!(names.len(), 153, "names for -2..=150");
    for (errno, beam) in names {
        let ours = drv_abi::errno_id(errno).to_str().expect("ASCII names");
        assert_eq!(ours, beam, "erl_errno_id({errno})");
    }
}
