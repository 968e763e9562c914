//! Tidy checks over the workspace's sources and manifests (in the manner of rust-analyzer's):
//! the invariants that no compiler or lint pins down for us.
//!
//! * The crate graph: the layers and the internal dependency edges are written once, in the
//!   `crate-graph` block of ARCHITECTURE.md; every manifest must agree with the edges, and no
//!   crate may depend on its own layer or one above.
//! * A crate whose sources have no `unsafe` says so with `#![forbid(unsafe_code)]`.
//! * Every `unsafe {` block has a `// SAFETY:` comment right above it, and every `unsafe fn`
//!   a `# Safety` section in its docs (clippy checks the public ones of library code only).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// Every crate of the workspace: its name and its folder.
fn crates() -> BTreeMap<String, PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .expect("crates/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.push(root().join("xtask"));
    dirs.into_iter()
        .map(|dir| (package_name(&dir.join("Cargo.toml")), dir))
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn package_name(manifest: &Path) -> String {
    let text = read(manifest);
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if let Some(value) = in_package.then(|| line.strip_prefix("name")).flatten() {
            let value = value.trim_start().trim_start_matches('=').trim();
            return value.trim_matches('"').to_owned();
        }
    }
    panic!("{}: no [package] name", manifest.display())
}

/// A manifest's dependencies on crates of the workspace, by section: `dependencies`,
/// `dev-dependencies`, `build-dependencies` (target-specific tables count as their kind).
fn internal_dependencies(
    manifest: &Path,
    workspace: &BTreeMap<String, PathBuf>,
) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut found: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut section: Option<&'static str> = None;
    for line in read(manifest).lines() {
        let line = line.trim();
        if line.starts_with('[') {
            let table = line.trim_matches(|c| c == '[' || c == ']');
            section = ["dev-dependencies", "build-dependencies", "dependencies"]
                .into_iter()
                .find(|kind| table == *kind || table.ends_with(&format!(".{kind}")));
            continue;
        }
        let Some(kind) = section else { continue };
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        if workspace.contains_key(&name) {
            found.entry(kind).or_default().insert(name);
        }
    }
    found
}

/// The `crate-graph` block of ARCHITECTURE.md: the layers, lowest first, and the edges
/// (`crate -> dep, dep`; normal dependencies).
struct Graph {
    layers: Vec<Vec<String>>,
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn documented_graph() -> Graph {
    let text = read(&root().join("ARCHITECTURE.md"));
    let block = text
        .split("```text crate-graph\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("ARCHITECTURE.md has a ```text crate-graph block");
    let mut graph = Graph {
        layers: Vec::new(),
        edges: BTreeMap::new(),
    };
    for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("layer ") {
            let (_, names) = rest.split_once(':').expect("`layer N: crate crate ...`");
            graph
                .layers
                .push(names.split_whitespace().map(str::to_owned).collect());
        } else {
            let (from, to) = line.split_once("->").expect("`crate -> dep, dep`");
            let deps = to
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned);
            graph
                .edges
                .entry(from.trim().to_owned())
                .or_default()
                .extend(deps);
        }
    }
    graph
}

#[test]
fn the_documented_crate_graph_is_the_manifests_graph() {
    let workspace = crates();
    let graph = documented_graph();
    let layered: BTreeSet<&String> = graph.layers.iter().flatten().collect();
    let members: BTreeSet<&String> = workspace.keys().collect();
    assert_eq!(
        layered, members,
        "ARCHITECTURE.md's layers must name every crate of the workspace, once"
    );
    let mut problems = Vec::new();
    for (name, dir) in &workspace {
        let actual = internal_dependencies(&dir.join("Cargo.toml"), &workspace)
            .remove("dependencies")
            .unwrap_or_default();
        let documented = graph.edges.get(name).cloned().unwrap_or_default();
        if actual != documented {
            problems.push(format!(
                "{name}: the manifest depends on {actual:?}, ARCHITECTURE.md says {documented:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_crate_depends_on_its_own_layer_or_above() {
    let workspace = crates();
    let graph = documented_graph();
    let layer_of = |name: &str| {
        graph
            .layers
            .iter()
            .position(|layer| layer.iter().any(|n| n == name))
            .unwrap_or_else(|| panic!("{name} is in no layer of ARCHITECTURE.md"))
    };
    let mut problems = Vec::new();
    for (name, dir) in &workspace {
        for (kind, deps) in internal_dependencies(&dir.join("Cargo.toml"), &workspace) {
            for dep in deps {
                if layer_of(&dep) >= layer_of(name) {
                    problems.push(format!("{name} ({kind}) depends on {dep}, not below it"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every `.rs` file under `dir`, skipping build output.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a line: what comes before a `//` comment (string contents are not told
/// apart; the checked words do not occur in the project's strings).
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

/// Whether `word` occurs in `code` as a whole word.
fn has_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

#[test]
fn crates_without_unsafe_forbid_it() {
    let mut problems = Vec::new();
    for (name, dir) in crates() {
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        let uses_unsafe = files.iter().any(|f| {
            read(f)
                .lines()
                .any(|l| has_word(code(l), "unsafe") && !l.contains("unsafe_code"))
        });
        let roots = ["src/lib.rs", "src/main.rs"].map(|r| dir.join(r));
        let forbids = roots
            .iter()
            .filter(|r| r.exists())
            .all(|r| read(r).contains("#![forbid(unsafe_code)]"));
        if !uses_unsafe && !forbids {
            problems.push(format!(
                "{name} has no unsafe code: its crate root needs #![forbid(unsafe_code)]"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The comment and attribute lines right above line `at` (nearest first).
fn lines_above<'a>(lines: &'a [&'a str], at: usize) -> impl Iterator<Item = String> + 'a {
    lines[..at]
        .iter()
        .rev()
        .map(|l| l.trim().to_owned())
        .take_while(|l| l.starts_with("//") || l.starts_with("#[") || l.starts_with("#!["))
}

/// The lines (0-based) of `text` with an `unsafe {` block lacking a `// SAFETY:` comment right
/// above it, and with an `unsafe fn` lacking a `# Safety` doc. The comment may sit above the
/// statement the block is part of; a trait impl's `unsafe fn` has its contract on the trait.
fn unsafe_problems(text: &str) -> (Vec<usize>, Vec<usize>) {
    let unsafe_block = concat!("unsafe", " {");
    let lines: Vec<&str> = text.lines().collect();
    let (mut blocks, mut fns) = (Vec::new(), Vec::new());
    let mut in_trait_impl = false;
    for (at, line) in lines.iter().enumerate() {
        let code = code_of(line);
        if !line.starts_with(char::is_whitespace) && !code.is_empty() {
            let item = code.trim_start_matches("unsafe ");
            in_trait_impl = item.starts_with("impl") && has_word(item, "for");
        }
        if code.contains(unsafe_block) {
            let has_safety = |from: usize| {
                lines[from].contains("// SAFETY:")
                    || lines_above(&lines, from).any(|l| l.starts_with("// SAFETY:"))
            };
            // The first line of the statement: back over lines that do not end one.
            let mut start = at;
            while start > 0 {
                let previous = code_of(lines[start - 1]);
                if previous.is_empty() || previous.ends_with([';', '{', '}']) {
                    break;
                }
                start -= 1;
            }
            if !has_safety(at) && !has_safety(start) {
                blocks.push(at);
            }
        }
        if is_unsafe_fn(code)
            && !in_trait_impl
            && !lines_above(&lines, at).any(|l| l.starts_with("///") && l.contains("# Safety"))
        {
            fns.push(at);
        }
    }
    (blocks, fns)
}

#[test]
fn the_unsafe_checks_see_what_they_should() {
    let block = concat!("unsafe", " {");
    // (source, lines of blocks without SAFETY, lines of unsafe fns without # Safety)
    let cases: Vec<(String, Vec<usize>, Vec<usize>)> = vec![
        (
            format!("// SAFETY: p is valid.\nlet x = {block} *p }};"),
            vec![],
            vec![],
        ),
        (
            format!("// SAFETY: p is valid.\n#[allow(x)]\n{block} f() }};"),
            vec![],
            vec![],
        ),
        (format!("let x = 1;\n{block} f() }};"), vec![1], vec![]),
        (format!("// Not why.\n{block} f() }};"), vec![1], vec![]),
        (
            format!("// SAFETY: why.\nlet x = g(\n    {block} f() }},\n);"),
            vec![],
            vec![],
        ),
        (
            format!("// SAFETY: why.\nlet x = 1;\nlet y = {block} f() }};"),
            vec![2],
            vec![],
        ),
        (
            "/// Does it.\n///\n/// # Safety\n/// p valid.\npub unsafe fn f(p: *const u8) {}"
                .into(),
            vec![],
            vec![],
        ),
        (
            "/// Does it.\npub unsafe fn f(p: *const u8) {}".into(),
            vec![],
            vec![1],
        ),
        (
            "/// Does it.\nunsafe extern \"C\" fn f() {}".into(),
            vec![],
            vec![1],
        ),
        (
            "type F = unsafe extern \"C\" fn(i32);".into(),
            vec![],
            vec![],
        ),
        (
            "impl Tr for S {\n    unsafe fn f(&self) {}\n}".into(),
            vec![],
            vec![],
        ),
        (
            "impl S {\n    unsafe fn f(&self) {}\n}".into(),
            vec![],
            vec![1],
        ),
    ];
    for (source, blocks, fns) in cases {
        assert_eq!(unsafe_problems(&source), (blocks, fns), "in:\n{source}");
    }
}

#[test]
fn unsafe_blocks_say_why_and_unsafe_fns_say_when() {
    let mut files = Vec::new();
    for dir in crates().values() {
        rust_files(dir, &mut files);
    }
    // This file's test data holds the patterns on purpose.
    let this_file = root().join(file!());
    files.retain(|f| *f != this_file);
    let mut problems = Vec::new();
    for file in &files {
        let (blocks, fns) = unsafe_problems(&read(file));
        let place = |at: usize| format!("{}:{}", file.display(), at + 1);
        problems.extend(
            blocks
                .into_iter()
                .map(|at| format!("{}: unsafe block without `// SAFETY:` above", place(at))),
        );
        problems.extend(
            fns.into_iter()
                .map(|at| format!("{}: `unsafe fn` without a `# Safety` doc", place(at))),
        );
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn code_of(line: &str) -> &str {
    code(line).trim_end()
}

/// An `unsafe fn` item (`unsafe fn f`, `unsafe extern "C" fn f`), not a function pointer type.
fn is_unsafe_fn(code: &str) -> bool {
    let Some(at) = code.find("unsafe ") else {
        return false;
    };
    let rest = code[at + "unsafe ".len()..].trim_start();
    let rest = rest
        .strip_prefix("extern \"C\" ")
        .or_else(|| rest.strip_prefix("extern \"C-unwind\" "))
        .unwrap_or(rest);
    rest.strip_prefix("fn ")
        .is_some_and(|name| name.starts_with(|c: char| c.is_alphabetic() || c == '_'))
}
