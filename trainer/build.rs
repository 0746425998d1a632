//! - Compiles `csrc/autocast.cpp` (bf16 autocast, which tch does not bind)
//!   against the headers of the libtorch that torch-sys linked.
//! - Gives chess-train's binaries and tests that libtorch as their runpath,
//!   so they run without LD_LIBRARY_PATH (which, searched first, still wins,
//!   e.g. on a machine with another venv).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    // torch-sys (`links = "tch"`) exports the lib folder it linked; headers are next to it.
    let lib = PathBuf::from(std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys exports DEP_TCH_LIBTORCH_LIB"));
    let include = lib.parent().expect("libtorch root").join("include");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .file("csrc/autocast.cpp")
        .compile("chess_autocast");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
