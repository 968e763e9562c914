//! ABI checks of `drv_abi::types` and `include/erl_driver.h` against a C compiler and OTP.
//!
//! * `layout_matches_c`: one table of sizes, alignments, field offsets/sizes and constant
//!   values; a C program generated from the same table is compiled against OTP's header and
//!   against ours, and both outputs must equal the Rust values.
//! * `declarations_match_otp`: every function OTP's header declares is declared in ours with
//!   the same signature text (after whitespace normalisation; names added where OTP has none).
//! * `api_def_is_exact`: `include/ddll_api.def` is exactly what our header declares
//!   (run with `DDLL_BLESS=1` to rewrite it), and it works as an X-macro against the header.
//! * `driver_sources_compile_alike`: driver snippets build (or fail) the same way with
//!   `-Wall -Wextra -Werror` against both headers, as C and as C++.
//!
//! Without a C compiler or OTP's header the affected checks are skipped loudly, except
//! under `CI=true`, where they fail.

#[path = "../def_syntax.rs"]
mod def_syntax;
use def_syntax::split_top_level;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::c_char;
use std::io::Write;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use drv_abi::types::*;

const OTP_INCLUDE: &str = "/usr/lib/erlang/usr/include";

fn our_include() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include")
}

fn otp_include() -> Option<PathBuf> {
    let dir = PathBuf::from(OTP_INCLUDE);
    if dir.join("erl_driver.h").is_file() {
        Some(dir)
    } else {
        skip_or_fail(&format!("OTP's erl_driver.h not found under {OTP_INCLUDE}"));
        None
    }
}

/// A missing prerequisite: fail under CI, otherwise say so loudly and let the caller skip.
fn skip_or_fail(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and a prerequisite is missing: {why}");
    }
    // Straight to the process's stderr: the test harness captures `eprintln!`.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPING ABI CHECK: {why} !!!!!!!!\n"
    );
}

/// The C (or C++) compiler from `$CC`/`$CXX`, else `cc`/`c++` from PATH, if it runs.
fn compiler(cplusplus: bool) -> Option<String> {
    let (var, default) = if cplusplus {
        ("CXX", "c++")
    } else {
        ("CC", "cc")
    };
    let cc = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let works = Command::new(&cc)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        Some(cc)
    } else {
        skip_or_fail(&format!("no working compiler `{cc}` (set {var})"));
        None
    }
}

/// A per-process scratch directory, so concurrent test runs do not share files.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("drv-abi-layout-{}", std::process::id()))
        .join(name);
    std::fs::create_dir_all(&dir).expect("create scratch dir under CARGO_TARGET_TMPDIR");
    dir
}

// ---------------------------------------------------------------------------------------
// Layout and constants
// ---------------------------------------------------------------------------------------

/// One measured fact: the C statement that prints `key value`, and the Rust value.
struct Row {
    key: String,
    c_print: String,
    rust: i128,
}

fn row(key: String, c_print: String, rust: impl TryInto<i128>) -> Row {
    let rust = rust.try_into().ok().expect("value fits in i128");
    Row { key, c_print, rust }
}

/// Size and alignment of a type.
fn type_rows(name: &str, size: usize, align: usize) -> Vec<Row> {
    vec![
        row(
            format!("sizeof({name})"),
            format!("put_u(\"sizeof({name})\", sizeof({name}));"),
            size,
        ),
        row(
            format!("alignof({name})"),
            format!("put_u(\"alignof({name})\", _Alignof({name}));"),
            align,
        ),
    ]
}

/// Size, alignment and signedness of an integer type.
fn int_type_rows(name: &str, size: usize, align: usize, signed: bool) -> Vec<Row> {
    let mut rows = type_rows(name, size, align);
    rows.push(row(
        format!("signed({name})"),
        format!("put_u(\"signed({name})\", (({name})-1) < ({name})0);"),
        i128::from(signed),
    ));
    rows
}

/// Offset, size and alignment of one struct field (alignment is used by the coverage check).
fn field_rows(s: &str, f: &str, offset: usize, (size, align): (usize, usize)) -> Vec<Row> {
    vec![
        row(
            format!("offsetof({s}.{f})"),
            format!("put_u(\"offsetof({s}.{f})\", offsetof({s}, {f}));"),
            offset,
        ),
        row(
            format!("sizeof({s}.{f})"),
            format!("put_u(\"sizeof({s}.{f})\", sizeof((({s} *)0)->{f}));"),
            size,
        ),
        row(
            format!("alignof({s}.{f})"),
            format!("put_u(\"alignof({s}.{f})\", _Alignof(__typeof__((({s} *)0)->{f})));"),
            align,
        ),
    ]
}

fn field_layout<S, F>(_: impl Fn(&S) -> &F) -> (usize, usize) {
    (size_of::<F>(), align_of::<F>())
}

/// An integer constant (macro or enumerator), printed with its C signedness.
fn int_const_row(name: &str, rust: i128) -> Vec<Row> {
    vec![row(
        name.to_owned(),
        format!("PUT_INT(\"{name}\", {name});"),
        rust,
    )]
}

/// A pointer constant, printed as `intptr_t`.
fn ptr_const_row(name: &str, rust: isize) -> Vec<Row> {
    vec![row(
        name.to_owned(),
        format!("put_s(\"{name}\", (long long)(intptr_t)({name}));"),
        rust,
    )]
}

macro_rules! ty {
    ($t:ident) => {
        type_rows(stringify!($t), size_of::<$t>(), align_of::<$t>())
    };
}
macro_rules! int_ty {
    ($t:ident) => {
        int_type_rows(
            stringify!($t),
            size_of::<$t>(),
            align_of::<$t>(),
            $t::MIN != 0,
        )
    };
}
macro_rules! fields {
    ($s:ident: $($f:ident),+ $(,)?) => {{
        let mut rows = ty!($s);
        $(rows.extend(field_rows(
            stringify!($s),
            stringify!($f),
            offset_of!($s, $f),
            field_layout(|v: &$s| &v.$f),
        ));)+
        rows
    }};
}
macro_rules! int_consts {
    ($($name:ident $(as $via:ty)?),+ $(,)?) => {{
        let mut rows = Vec::new();
        $(rows.extend(int_const_row(stringify!($name), ($name $(as $via)?) as i128));)+
        rows
    }};
}
macro_rules! ptr_consts {
    ($($name:ident),+ $(,)?) => {{
        let mut rows = Vec::new();
        $(rows.extend(ptr_const_row(stringify!($name), $name as isize));)+
        rows
    }};
}

/// The table: every type, every field of every struct, every constant.
fn layout_table() -> Vec<Row> {
    [
        int_ty!(ErlDrvSizeT),
        int_ty!(ErlDrvSSizeT),
        int_ty!(ErlDrvSInt),
        int_ty!(ErlDrvUInt),
        int_ty!(ErlDrvSInt64),
        int_ty!(ErlDrvUInt64),
        int_ty!(ErlDrvTime),
        int_ty!(ErlDrvTermData),
        int_ty!(ErlDrvTSDKey),
        // A C enum: only size and alignment are ABI (its signedness is the compiler's choice).
        ty!(ErlDrvTimeUnit),
        ty!(ErlDrvPort),
        ty!(ErlDrvData),
        ty!(ErlDrvEvent),
        ty!(ErlDrvThreadData),
        ty!(ErlDrvTid),
        ty!(ErlDrvPDL),
        fields!(ErlDrvEntry:
            init, start, stop, output, ready_input, ready_output, driver_name, finish, handle,
            control, timeout, outputv, ready_async, flush, call, unused_event_callback,
            extended_marker, major_version, minor_version, driver_flags, handle2,
            process_exit, stop_select, emergency_close),
        fields!(ErlDrvSysInfo:
            driver_major_version, driver_minor_version, erts_version, otp_release,
            thread_support, smp_support, async_threads, scheduler_threads,
            nif_major_version, nif_minor_version, dirty_scheduler_support),
        fields!(ErlDrvMonitor: data),
        fields!(ErlDrvNowData: megasecs, secs, microsecs),
        fields!(ErlDrvThreadOpts: suggested_stack_size),
        fields!(ErlDrvBinary: orig_size, orig_bytes),
        fields!(SysIOVec: iov_base, iov_len),
        fields!(ErlIOVec: vsize, size, iov, binv),
        int_consts!(
            ERL_NIF_SELECT_READ,
            ERL_NIF_SELECT_WRITE,
            ERL_NIF_SELECT_STOP,
            ERL_NIF_SELECT_CANCEL,
            ERL_NIF_SELECT_CUSTOM_MSG,
            ERL_NIF_SELECT_ERROR,
            ERL_DIRTY_JOB_CPU_BOUND,
            ERL_DIRTY_JOB_IO_BOUND,
            ERL_DRV_READ,
            ERL_DRV_WRITE,
            ERL_DRV_USE,
            ERL_DRV_USE_NO_CALLBACK,
            DO_READ,
            DO_WRITE,
            // C spells the marker as an unsigned literal; Rust stores the same bits as `int`.
            ERL_DRV_EXTENDED_MARKER as u32,
            ERL_DRV_EXTENDED_MAJOR_VERSION,
            ERL_DRV_EXTENDED_MINOR_VERSION,
            ERL_DRV_MIN_REQUIRED_MAJOR_VERSION_ON_LOAD,
            PORT_CONTROL_FLAG_BINARY,
            PORT_CONTROL_FLAG_HEAVY,
            PORT_FLAG_BINARY,
            PORT_FLAG_LINE,
            ERL_DRV_FLAG_USE_PORT_LOCKING,
            ERL_DRV_FLAG_SOFT_BUSY,
            ERL_DRV_FLAG_NO_BUSY_MSGQ,
            ERL_DRV_FLAG_USE_INIT_ACK,
            ERL_DRV_SEC,
            ERL_DRV_MSEC,
            ERL_DRV_USEC,
            ERL_DRV_NSEC,
            ERL_DRV_TIME_ERROR,
            ERL_DRV_BUSY_MSGQ_DISABLED,
            ERL_DRV_BUSY_MSGQ_READ_ONLY,
            ERL_DRV_BUSY_MSGQ_LIM_MAX,
            ERL_DRV_BUSY_MSGQ_LIM_MIN,
            DRIVER_CALL_KEEP_BUFFER,
            ERL_DRV_NIL,
            ERL_DRV_ATOM,
            ERL_DRV_INT,
            ERL_DRV_PORT,
            ERL_DRV_BINARY,
            ERL_DRV_STRING,
            ERL_DRV_TUPLE,
            ERL_DRV_LIST,
            ERL_DRV_STRING_CONS,
            ERL_DRV_PID,
            ERL_DRV_FLOAT,
            ERL_DRV_EXT2TERM,
            ERL_DRV_UINT,
            ERL_DRV_BUF2BINARY,
            ERL_DRV_INT64,
            ERL_DRV_UINT64,
            ERL_DRV_MAP,
        ),
        ptr_consts!(
            ERL_DRV_ERROR_GENERAL,
            ERL_DRV_ERROR_ERRNO,
            ERL_DRV_ERROR_BADARG
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn layout_program(rows: &[Row]) -> String {
    let mut c = String::from(
        "#include <erl_driver.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <stdio.h>\n\
         static void put_u(const char *k, unsigned long long v) { printf(\"%s %llu\\n\", k, v); }\n\
         static void put_s(const char *k, long long v) { printf(\"%s %lld\\n\", k, v); }\n\
         #define PUT_INT(k, e) do { if ((e) < 0) put_s(k, (long long)(e)); \
         else put_u(k, (unsigned long long)(e)); } while (0)\n\
         int main(void) {\n",
    );
    for r in rows {
        c.push_str("    ");
        c.push_str(&r.c_print);
        c.push('\n');
    }
    c.push_str("    return 0;\n}\n");
    c
}

/// Compiles and runs the layout program against `include`; returns key -> value.
fn measure_c(
    cc: &str,
    include: &Path,
    defines: &[&str],
    tag: &str,
    program: &str,
) -> BTreeMap<String, i128> {
    let dir = scratch_dir(tag);
    let source = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&source, program).expect("write layout.c");
    let out = Command::new(cc)
        .args(["-std=gnu11", "-w", "-o"])
        .arg(&exe)
        .arg(&source)
        .arg("-I")
        .arg(include)
        .args(defines)
        .output()
        .expect("run the C compiler");
    assert!(
        out.status.success(),
        "layout program does not compile against {}:\n{}",
        include.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&exe).output().expect("run the layout program");
    assert!(out.status.success(), "layout program failed");
    String::from_utf8(out.stdout)
        .expect("ASCII output")
        .lines()
        .map(|line| {
            let (k, v) = line.rsplit_once(' ').expect("`key value` lines");
            (k.to_owned(), v.parse().expect("integer value"))
        })
        .collect()
}

/// Compares one C measurement with the Rust table; returns the mismatches.
fn compare(rows: &[Row], c: &BTreeMap<String, i128>, what: &str) -> Vec<String> {
    rows.iter()
        .filter_map(|r| match c.get(&r.key) {
            Some(&v) if v == r.rust => None,
            Some(&v) => Some(format!("{what}: {} is {v} in C, {} in Rust", r.key, r.rust)),
            None => Some(format!("{what}: {} not printed", r.key)),
        })
        .collect()
}

#[test]
fn layout_matches_c() {
    let rows = layout_table();
    let keys: BTreeSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), rows.len(), "duplicate keys in the layout table");
    let Some(cc) = compiler(false) else { return };
    let program = layout_program(&rows);
    let mut mismatches = Vec::new();
    let ours = measure_c(&cc, &our_include(), &[], "ours", &program);
    mismatches.extend(compare(&rows, &ours, "ddll erl_driver.h"));
    let ours_uio = measure_c(
        &cc,
        &our_include(),
        &["-DHAVE_SYS_UIO_H"],
        "ours-uio",
        &program,
    );
    mismatches.extend(compare(
        &rows,
        &ours_uio,
        "ddll erl_driver.h with HAVE_SYS_UIO_H",
    ));
    if let Some(otp) = otp_include() {
        let theirs = measure_c(&cc, &otp, &[], "otp", &program);
        mismatches.extend(compare(&rows, &theirs, "OTP erl_driver.h"));
    }
    assert!(
        mismatches.is_empty(),
        "ABI mismatches:\n{}",
        mismatches.join("\n")
    );
}

/// Every byte of each struct is covered by a listed field or by alignment padding, so the
/// table cannot silently miss a field.
#[test]
fn layout_table_lists_every_field() {
    let rows: BTreeMap<String, i128> = layout_table()
        .into_iter()
        .map(|r| (r.key, r.rust))
        .collect();
    let structs = [
        ("ErlDrvEntry", 24),
        ("ErlDrvSysInfo", 11),
        ("ErlDrvMonitor", 1),
        ("ErlDrvNowData", 3),
        ("ErlDrvThreadOpts", 1),
        ("ErlDrvBinary", 2),
        ("SysIOVec", 2),
        ("ErlIOVec", 4),
    ];
    for (name, field_count) in structs {
        let prefix = format!("offsetof({name}.");
        let mut fields: Vec<(i128, i128, i128)> = rows
            .iter()
            .filter_map(|(k, &offset)| {
                let field = k.strip_prefix(&prefix)?.strip_suffix(')')?;
                let size = rows[&format!("sizeof({name}.{field})")];
                let align = rows[&format!("alignof({name}.{field})")];
                Some((offset, size, align))
            })
            .collect();
        assert_eq!(
            fields.len(),
            field_count,
            "{name}: number of fields in the table"
        );
        fields.sort_unstable();
        let mut end = 0;
        for (offset, size, align) in fields {
            assert!(
                offset >= end && offset - end < align,
                "{name}: gap before offset {offset}"
            );
            end = offset + size;
        }
        let size = rows[&format!("sizeof({name})")];
        let align = rows[&format!("alignof({name})")];
        assert!(
            size >= end && size - end < align,
            "{name}: unlisted bytes at the end"
        );
    }
}

#[test]
fn rust_constants_are_consistent() {
    // Relations C states through macro definitions, checked on the Rust side.
    assert_eq!(ERL_DRV_USE_NO_CALLBACK, ERL_DRV_USE | (ERL_DRV_USE << 1));
    assert_eq!(ERL_DRV_BUSY_MSGQ_LIM_MAX, usize::MAX - 1);
    assert_eq!(ERL_DRV_TIME_ERROR, i64::MIN);
    assert_eq!(ERL_DRV_EXTENDED_MARKER as u32, 0xfeee_eeed);
    let empty = ErlDrvEntry::EMPTY;
    assert!(empty.init.is_none() && empty.emergency_close.is_none());
    assert!(empty.driver_name.is_null() && empty.handle2.is_null());
    assert_eq!(
        ErlDrvMonitor::default().data,
        [0; 4 * size_of::<*const c_char>()]
    );
}

// ---------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------

/// One function declaration of a header.
#[derive(Debug, Clone)]
struct Decl {
    ret: String,
    name: String,
    /// Each parameter as written, whitespace-normalised; `(void)` gives none.
    params: Vec<String>,
    /// Attribute macros after the parameter list, whitespace-normalised.
    trailer: String,
}

/// Drops comments and preprocessor lines (with their continuations).
fn strip_comments_and_directives(src: &str) -> String {
    let mut without_comments = String::new();
    let mut rest = src;
    while let Some(start) = rest.find("/*") {
        without_comments.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("unterminated comment") + start + 2;
        without_comments.push(' ');
        rest = &rest[end..];
    }
    without_comments.push_str(rest);
    let joined = without_comments.replace("\\\n", " ");
    joined
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn normalise_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The function declarations at file scope (the `EXTERN` ones and plain ones alike).
fn declarations(header: &str) -> Vec<Decl> {
    let text = strip_comments_and_directives(header);
    let mut decls = Vec::new();
    for segment in text.split(';') {
        let segment = normalise_ws(segment);
        let segment = segment.strip_prefix("EXTERN ").unwrap_or(&segment);
        let Some(open) = segment.find('(') else {
            continue;
        };
        let head = segment[..open].trim_end();
        // `RET NAME(`: only identifiers and stars before the name, at least a return type.
        let head_tokens = tokens(head);
        if head_tokens.len() < 2
            || !head_tokens.iter().all(|t| is_ident(t) || t == "*")
            || !is_ident(head_tokens.last().expect("non-empty"))
            || head_tokens[0] == "typedef"
        {
            continue;
        }
        let name = head_tokens.last().expect("non-empty").clone();
        let ret = head_tokens[..head_tokens.len() - 1].join(" ");
        let mut depth = 0;
        let close = segment[open..]
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .expect("balanced parameter list")
            .0
            + open;
        let inner = &segment[open + 1..close];
        let params = match split_top_level(inner).as_slice() {
            [only] if only == "void" => Vec::new(),
            params => params.to_vec(),
        };
        let trailer = segment[close + 1..].trim().to_owned();
        decls.push(Decl {
            ret,
            name,
            params,
            trailer,
        });
    }
    decls
}

/// C tokens: identifiers/numbers, and single punctuation characters.
fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

const TYPE_KEYWORDS: &[&str] = &[
    "int", "long", "char", "short", "unsigned", "signed", "void", "double", "float", "const",
];

/// The declared name of a parameter, if it has one.
fn param_name(param: &str) -> Option<String> {
    let toks = tokens(param);
    // A function pointer: `RET (*name)(ARGS)`.
    if let Some(i) = toks.windows(2).position(|w| w[0] == "(" && w[1] == "*") {
        return toks.get(i + 2).filter(|t| is_ident(t)).cloned();
    }
    let idents = toks.iter().filter(|t| is_ident(t)).count();
    let last = toks.last()?;
    (idents >= 2 && is_ident(last) && !TYPE_KEYWORDS.contains(&last.as_str())).then(|| last.clone())
}

/// The parameter's tokens with its name removed.
fn param_type_tokens(param: &str) -> Vec<String> {
    let mut toks = tokens(param);
    if let Some(name) = param_name(param) {
        let at = toks
            .iter()
            .position(|t| *t == name)
            .expect("name is a token");
        toks.remove(at);
    }
    toks
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn our_decls() -> Vec<Decl> {
    declarations(&read(&our_include().join("erl_driver.h")))
}

/// Differences between OTP's declaration and ours, as messages.
fn signature_differences(otp: &Decl, ours: &Decl) -> Vec<String> {
    let mut diffs = Vec::new();
    let name = &otp.name;
    if tokens(&otp.ret) != tokens(&ours.ret) {
        diffs.push(format!(
            "{name}: returns `{}` in OTP, `{}` here",
            otp.ret, ours.ret
        ));
    }
    if tokens(&otp.trailer) != tokens(&ours.trailer) {
        diffs.push(format!(
            "{name}: attributes `{}` in OTP, `{}` here",
            otp.trailer, ours.trailer
        ));
    }
    if otp.params.len() != ours.params.len() {
        diffs.push(format!(
            "{name}: {} parameters in OTP, {} here",
            otp.params.len(),
            ours.params.len()
        ));
        return diffs;
    }
    for (theirs, mine) in otp.params.iter().zip(&ours.params) {
        let same = match param_name(theirs) {
            Some(_) => tokens(theirs) == tokens(mine),
            None => tokens(theirs) == param_type_tokens(mine),
        };
        if !same {
            diffs.push(format!(
                "{name}: parameter `{theirs}` in OTP, `{mine}` here"
            ));
        }
    }
    diffs
}

#[test]
fn declaration_parser_cases() {
    fn check(param: &str, expected_name: Option<&str>, expected_type: &str) {
        assert_eq!(
            param_name(param).as_deref(),
            expected_name,
            "name of `{param}`"
        );
        assert_eq!(
            param_type_tokens(param).join(" "),
            expected_type,
            "type of `{param}`"
        );
    }
    check("ErlDrvPort port", Some("port"), "ErlDrvPort");
    check("ErlDrvPort", None, "ErlDrvPort");
    check("char*", None, "char *");
    check("void *", None, "void *");
    check("char* buf", Some("buf"), "char *");
    check("unsigned long time", Some("time"), "unsigned long");
    check("unsigned int", None, "unsigned int");
    check(
        "const ErlDrvMonitor *monitor",
        Some("monitor"),
        "const ErlDrvMonitor *",
    );
    check(
        "void * (*func)(void *)",
        Some("func"),
        "void * ( * ) ( void * )",
    );
    check(
        "void (*async_free)(void*)",
        Some("async_free"),
        "void ( * ) ( void * )",
    );
}

#[test]
fn declarations_match_otp() {
    let ours = our_decls();
    let Some(otp_dir) = otp_include() else { return };
    let otp = declarations(&read(&otp_dir.join("erl_driver.h")));
    assert!(
        otp.len() >= 100,
        "parsed only {} OTP declarations",
        otp.len()
    );
    let by_name: BTreeMap<&str, &Decl> = ours.iter().map(|d| (d.name.as_str(), d)).collect();
    let mut problems = Vec::new();
    for theirs in &otp {
        match by_name.get(theirs.name.as_str()) {
            Some(mine) => problems.extend(signature_differences(theirs, mine)),
            None => problems.push(format!("{} is not declared in our header", theirs.name)),
        }
    }
    let otp_names: BTreeSet<&str> = otp.iter().map(|d| d.name.as_str()).collect();
    let extra: Vec<&str> = by_name
        .keys()
        .copied()
        .filter(|n| !otp_names.contains(n))
        .collect();
    assert!(
        problems.is_empty(),
        "declaration mismatches:\n{}",
        problems.join("\n")
    );
    assert_eq!(extra, ["driver_async_cancel"], "functions beyond OTP's");
    // The one data symbol of the API.
    for (which, text) in [
        ("OTP", read(&otp_dir.join("erl_driver.h"))),
        ("ours", read(&our_include().join("erl_driver.h"))),
    ] {
        let text = normalise_ws(&strip_comments_and_directives(&text));
        assert!(
            text.contains("extern const ErlDrvTermData driver_term_nil;"),
            "{which}: driver_term_nil"
        );
    }
}

/// `ddll_api.def` as generated from our header's declarations.
fn render_def(decls: &[Decl]) -> String {
    let mut out = String::new();
    for d in decls {
        let params = if d.params.is_empty() {
            "void".to_owned()
        } else {
            d.params.join(", ")
        };
        let args: Vec<String> = d
            .params
            .iter()
            .map(|p| param_name(p).unwrap_or_else(|| panic!("{}: unnamed parameter `{p}`", d.name)))
            .collect();
        let args = args.join(", ");
        if d.ret == "void" {
            out.push_str(&format!(
                "DDLL_API_VOID({}, ({params}), ({args}))\n",
                d.name
            ));
        } else {
            out.push_str(&format!(
                "DDLL_API({}, {}, ({params}), ({args}))\n",
                d.ret, d.name
            ));
        }
    }
    out
}

#[test]
fn api_def_is_exact() {
    let decls = our_decls();
    let expected = render_def(&decls);
    let def_path = our_include().join("ddll_api.def");
    if std::env::var("DDLL_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&def_path, &expected).expect("write ddll_api.def");
    }
    let actual = read(&def_path);
    let listed: BTreeSet<&str> = actual
        .lines()
        .filter_map(|l| {
            l.split_once('(')?
                .1
                .split(", ")
                .nth(usize::from(l.starts_with("DDLL_API(")))
        })
        .collect();
    let declared: BTreeSet<&str> = decls.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        listed, declared,
        "ddll_api.def must list exactly the header's functions"
    );
    assert_eq!(
        decls.len(),
        113,
        "OTP 25's 112 functions plus driver_async_cancel"
    );
    assert_eq!(
        actual, expected,
        "ddll_api.def is stale; regenerate with DDLL_BLESS=1"
    );

    // Used as an X-macro, the list must define every function with the header's signature.
    let Some(cc) = compiler(false) else { return };
    let dir = scratch_dir("xmacro");
    let source = dir.join("forward.c");
    std::fs::write(
        &source,
        "#include <erl_driver.h>\n\
         #define DDLL_API(ret, name, params, args) extern ret ddll_impl_##name params;\n\
         #define DDLL_API_VOID(name, params, args) extern void ddll_impl_##name params;\n\
         #include <ddll_api.def>\n\
         #undef DDLL_API\n#undef DDLL_API_VOID\n\
         #define DDLL_API(ret, name, params, args) ret name params { return ddll_impl_##name args; }\n\
         #define DDLL_API_VOID(name, params, args) void name params { ddll_impl_##name args; }\n\
         #include <ddll_api.def>\n",
    )
    .expect("write forward.c");
    let out = Command::new(&cc)
        .args(["-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(our_include())
        .arg(&source)
        .output()
        .expect("run the C compiler");
    assert!(
        out.status.success(),
        "ddll_api.def as X-macro:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// Source compatibility
// ---------------------------------------------------------------------------------------

/// Compiles `source` against `include`; true when it builds without diagnostics.
///
/// A full compile (`-c`), not `-fsyntax-only`: some diagnostics, such as ignored
/// `warn_unused_result` values, come from passes after parsing.
fn builds(cc: &str, cplusplus: bool, include: &Path, source: &Path) -> (bool, String) {
    let object = scratch_dir("compat").join("out.o");
    let mut cmd = Command::new(cc);
    cmd.args(["-c", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(object)
        .arg("-x")
        .arg(if cplusplus { "c++" } else { "c" })
        .arg("-I")
        .arg(include)
        .arg(source);
    let out = cmd.output().expect("run the compiler");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn driver_sources_compile_alike() {
    // (file under tests/layout/, builds cleanly with -Werror?)
    let cases = [
        ("sample_driver.c", true),
        ("types_only.c", true),
        ("types_only_hides_functions.c", false),
        ("relies_on_header_includes.c", true),
        ("ignores_realloc_result.c", false),
        ("uses_deprecated_call.c", false),
        ("wrong_callback_type.c", false),
    ];
    let Some(otp) = otp_include() else { return };
    let cases_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("layout");
    let mut problems = Vec::new();
    for cplusplus in [false, true] {
        let Some(cc) = compiler(cplusplus) else {
            continue;
        };
        let lang = if cplusplus { "C++" } else { "C" };
        for (file, expected) in cases {
            let source = cases_dir.join(file);
            for (which, include) in [("OTP", otp.as_path()), ("ddll", our_include().as_path())] {
                let (ok, stderr) = builds(&cc, cplusplus, include, &source);
                if ok != expected {
                    problems.push(format!(
                        "{file} as {lang} against {which}: built={ok}, expected {expected}\n{stderr}"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
