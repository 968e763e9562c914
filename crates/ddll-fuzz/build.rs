//! Builds the coverage hooks (`shim/ddll_fuzz_coverage.c`) into a shared object that the
//! crate embeds and `ddll fuzz` preloads into the isolated driver's host (`src/coverage.rs`).

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let source = manifest.join("shim").join("ddll_fuzz_coverage.c");
    println!("cargo:rerun-if-changed={}", source.display());
    // The cc crate names the C compiler (honours CC and cross settings).
    let compiler = cc::Build::new().opt_level(2).get_compiler();
    let shim = out.join("libddll_fuzz_coverage.so");
    let mut cmd = compiler.to_command();
    cmd.args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror"])
        .arg(&source)
        .arg("-o")
        .arg(&shim);
    let status = cmd
        .status()
        .expect("ddll-fuzz needs a C compiler to build its coverage hooks (install gcc or set CC)");
    assert!(
        status.success(),
        "compiling the coverage hooks failed: {cmd:?}"
    );
}
