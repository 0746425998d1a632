//! Gives chess-train's binaries and tests the libtorch they were linked
//! against as their runpath, so they run without LD_LIBRARY_PATH (which,
//! being searched first, still wins, e.g. on a machine with another venv).

fn main() {
    // torch-sys (`links = "tch"`) exports the lib folder it linked.
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
