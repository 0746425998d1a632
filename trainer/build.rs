//! - Compiles `csrc/autocast.cpp` (bf16 autocast, which tch does not bind)
//!   against the headers of the libtorch that torch-sys linked.
//! - Compiles `csrc/dist.cpp` (c10d: TCPStore, Gloo/NCCL process groups)
//!   against the same headers plus Gloo's own (Debian `libgloo-dev`,
//!   headers only: the Gloo code itself is inside libtorch_cpu.so). The
//!   NCCL path is compiled only when the venv has NCCL's header, libtorch_cuda.so
//!   and CUDA's full headers (venv `nvidia/cu13/include` with `crt/` and
//!   `nv/target`, which setup.sh installs, or `$CUDA_HOME/include`);
//!   `CHESS_DIST_NCCL=0` turns it off.
//! - Gives chess-train's binaries and tests that libtorch as their runpath,
//!   so they run without LD_LIBRARY_PATH (which, searched first, still wins,
//!   e.g. on a machine with another venv).

use std::path::{Path, PathBuf};

fn torch_build(include: &Path) -> cc::Build {
    let mut b = cc::Build::new();
    b.cpp(true).pic(true).warnings(false).include(include).flag("-std=c++17").flag("-D_GLIBCXX_USE_CXX11_ABI=1");
    b
}

fn main() {
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    println!("cargo:rerun-if-changed=csrc/dist.cpp");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=CHESS_DIST_NCCL");
    println!("cargo:rerun-if-env-changed=CHESS_GLOO_INCLUDE");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    // torch-sys (`links = "tch"`) exports the lib folder it linked; headers are next to it.
    let lib = PathBuf::from(std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys exports DEP_TCH_LIBTORCH_LIB"));
    let include = lib.parent().expect("libtorch root").join("include");
    torch_build(&include).file("csrc/autocast.cpp").compile("chess_autocast");

    let gloo =
        std::env::var_os("CHESS_GLOO_INCLUDE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/include"));
    if !gloo.join("gloo/context.h").exists() {
        panic!(
            "Gloo's headers are missing ({}): install Debian's libgloo-dev (scripts/setup.sh does) or set CHESS_GLOO_INCLUDE",
            gloo.join("gloo").display()
        );
    }
    let mut dist = torch_build(&include);
    dist.include(include.join("torch/csrc/api/include")).include(&gloo).define("USE_C10D_GLOO", None);
    // The venv's wheel: site-packages/torch/lib → site-packages/nvidia/….
    // (`.libtorch` is a symlink into the venv: resolve it first.)
    let site = lib.canonicalize().ok().and_then(|l| l.parent().and_then(Path::parent).map(Path::to_path_buf));
    let nccl_wanted = std::env::var("CHESS_DIST_NCCL").map_or(true, |v| v != "0");
    let nccl = site.filter(|_| nccl_wanted && lib.join("libtorch_cuda.so").exists()).and_then(|s| {
        let nccl = s.join("nvidia/nccl/include");
        // The CUDA runtime wheel lacks `crt/` and `nv/target` (the nvidia-cuda-crt and
        // nvidia-cuda-cccl wheels, or a toolkit): ProcessGroupNCCL.hpp needs them.
        let toolkit = std::env::var_os("CUDA_HOME").map(|h| PathBuf::from(h).join("include"));
        let cuda = ["cu13", "cu12", "cuda_runtime"]
            .iter()
            .map(|d| s.join("nvidia").join(d).join("include"))
            .chain(toolkit)
            .find(|d| {
                d.join("cuda_runtime_api.h").exists()
                    && d.join("crt/host_config.h").exists()
                    && d.join("nv/target").exists()
            })?;
        nccl.join("nccl.h").exists().then_some((nccl, cuda))
    });
    if let Some((nccl_inc, cuda_inc)) = &nccl {
        dist.include(nccl_inc)
            .include(cuda_inc)
            .define("USE_C10D_NCCL", None)
            .define("USE_CUDA", None)
            .define("CHESS_DIST_NCCL", None);
        println!("cargo:rustc-cfg=chess_dist_nccl");
    }
    println!("cargo:rustc-check-cfg=cfg(chess_dist_nccl)");
    dist.file("csrc/dist.cpp").compile("chess_dist");
    if nccl.is_some() {
        // ProcessGroupNCCL lives in libtorch_cuda.so (torch-sys links it too; named here so the order is right).
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
