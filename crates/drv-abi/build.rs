//! Builds the API shim (`shim/ddll_shim.c`) into a shared object that the crate embeds.
//!
//! The shim is a C file compiled against the project's own `include/erl_driver.h` from the
//! function list `include/ddll_api.def`; it is linked as a `.so` (not into the Rust binary) so
//! the runtime can load it `RTLD_GLOBAL` for drivers to resolve against. See `src/shim.rs`.

#[path = "def_syntax.rs"]
mod def_syntax;
use def_syntax::split_top_level;

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let include = manifest.join("include");
    let source = manifest.join("shim").join("ddll_shim.c");
    for watched in [
        &source,
        &include.join("erl_driver.h"),
        &include.join("erl_drv_nif.h"),
        &include.join("ddll_api.def"),
    ] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    println!("cargo:rerun-if-changed=def_syntax.rs");

    let def = std::fs::read_to_string(include.join("ddll_api.def"))
        .expect("include/ddll_api.def lists the API functions");
    let bindings = generate_bindings(&def);
    std::fs::write(out.join("api_bindings.rs"), bindings).expect("write api_bindings.rs");

    // Ask the cc crate which C compiler to use (honours CC, CFLAGS, cross settings).
    let compiler = cc::Build::new().opt_level(2).get_compiler();
    let shim = out.join("libddll_shim.so");
    let mut cmd: Command = compiler.to_command();
    cmd.args([
        "-shared",
        "-fPIC",
        "-O2",
        "-fvisibility=hidden",
        "-Wall",
        "-Werror",
    ])
    .arg("-I")
    .arg(&include)
    .arg(&source)
    .arg("-o")
    .arg(&shim);
    let status = cmd
        .status()
        .expect("drv-abi needs a C compiler to build its API shim (install gcc or set CC)");
    assert!(status.success(), "compiling the API shim failed: {cmd:?}");
}

/// One function of `ddll_api.def`.
struct ApiFunction {
    name: String,
    ret: String,
    params: Vec<String>,
}

/// Parses the X-macro lines of `ddll_api.def` (comments and blank lines are skipped).
fn parse_def(def: &str) -> Vec<ApiFunction> {
    let mut functions = Vec::new();
    for line in def.lines().map(str::trim) {
        let (is_void, rest) = if let Some(rest) = line.strip_prefix("DDLL_API_VOID(") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("DDLL_API(") {
            (false, rest)
        } else {
            continue;
        };
        let rest = rest
            .strip_suffix(')')
            .expect("a DDLL_API line ends with ')'");
        let parts = split_top_level(rest);
        let (ret, name, params) = if is_void {
            assert_eq!(parts.len(), 3, "DDLL_API_VOID takes 3 arguments: {line}");
            ("void".to_owned(), parts[0].clone(), parts[1].clone())
        } else {
            assert_eq!(parts.len(), 4, "DDLL_API takes 4 arguments: {line}");
            (parts[0].clone(), parts[1].clone(), parts[2].clone())
        };
        let params = params
            .trim()
            .strip_prefix('(')
            .and_then(|p| p.strip_suffix(')'))
            .expect("parameter list in parentheses");
        let params = if params.trim() == "void" || params.trim().is_empty() {
            Vec::new()
        } else {
            split_top_level(params)
        };
        functions.push(ApiFunction { name, ret, params });
    }
    functions
}

/// Translates a C type (no declarator name) into the Rust type the implementation must have.
fn rust_type(c: &str) -> String {
    let c = c.trim();
    let stars = c.chars().filter(|&ch| ch == '*').count();
    let base = c.replace('*', " ");
    let is_const = base.split_whitespace().any(|w| w == "const");
    let base: Vec<&str> = base.split_whitespace().filter(|w| *w != "const").collect();
    let base = base.join(" ");
    let mut ty = match base.as_str() {
        "void" if stars == 0 => "()".to_owned(),
        "void" => "::std::ffi::c_void".to_owned(),
        "int" => "::std::ffi::c_int".to_owned(),
        "unsigned int" | "unsigned" => "::std::ffi::c_uint".to_owned(),
        "long" => "::std::ffi::c_long".to_owned(),
        "unsigned long" => "::std::ffi::c_ulong".to_owned(),
        "char" => "::std::ffi::c_char".to_owned(),
        "size_t" => "usize".to_owned(),
        other if other.starts_with("Erl") || other == "SysIOVec" => {
            format!("crate::types::{other}")
        }
        other => panic!("ddll_api.def: no Rust translation for C type `{other}`"),
    };
    for level in 0..stars {
        let qualifier = if level == 0 && is_const {
            "*const"
        } else {
            "*mut"
        };
        ty = format!("{qualifier} {ty}");
    }
    ty
}

/// Translates one C parameter declaration into its Rust type.
fn rust_param(param: &str) -> String {
    // A function pointer: `RET (*name)(ARGS)`.
    if let Some(open) = param.find("(*") {
        let ret = &param[..open];
        let after = &param[open..];
        let args_start = after[1..].find('(').expect("function pointer arguments") + 1;
        let args = after[args_start..]
            .trim()
            .strip_prefix('(')
            .and_then(|a| a.strip_suffix(')'))
            .expect("function pointer argument list");
        let args: Vec<String> = if args.trim() == "void" {
            Vec::new()
        } else {
            split_top_level(args).iter().map(|a| rust_type(a)).collect()
        };
        let ret = rust_type(ret);
        let ret = if ret == "()" {
            String::new()
        } else {
            format!(" -> {ret}")
        };
        return format!(
            "::std::option::Option<unsafe extern \"C\" fn({}){ret}>",
            args.join(", ")
        );
    }
    // Drop the parameter name: the last identifier, if the declaration has more than a type.
    let trimmed = param.trim();
    let words: Vec<&str> = trimmed
        .split(|c: char| c.is_whitespace() || c == '*')
        .collect();
    let last = words
        .iter()
        .rev()
        .find(|w| !w.is_empty())
        .copied()
        .unwrap_or("");
    let is_type_word = matches!(last, "int" | "long" | "char" | "void" | "unsigned")
        || last.starts_with("Erl")
        || last == "SysIOVec"
        || last == "size_t";
    let without_name = if is_type_word {
        trimmed.to_owned()
    } else {
        trimmed[..trimmed.rfind(last).expect("found above")].to_owned()
    };
    rust_type(&without_name)
}

/// Writes the body of `api::implementations()`: a vector of (name, address) pairs where each
/// address is first bound to a variable of the exact translated signature.
fn generate_bindings(def: &str) -> String {
    let functions = parse_def(def);
    assert!(!functions.is_empty(), "ddll_api.def lists no functions");
    let mut out = String::from("vec![\n");
    for f in &functions {
        let params: Vec<String> = f.params.iter().map(|p| rust_param(p)).collect();
        let ret = rust_type(&f.ret);
        let ret = if ret == "()" {
            String::new()
        } else {
            format!(" -> {ret}")
        };
        out.push_str(&format!(
            "    (c\"{name}\", {{ let f: unsafe extern \"C\" fn({params}){ret} = crate::api::exports::{name}; f as *mut ::std::ffi::c_void }}),\n",
            name = f.name,
            params = params.join(", "),
        ));
    }
    out.push_str("]\n");
    out
}
