//! Links libtorch from the project's `.venv` (or `$LIBTORCH`) so that the
//! binary and every test run without LD_LIBRARY_PATH. libtorch's CUDA half
//! is loaded at run time (see `engine::device`).
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn torch_dir() -> Option<PathBuf> {
    if let Ok(dir) = env::var("LIBTORCH") {
        return Some(PathBuf::from(dir));
    }
    // Same fallback as torch-sys with LIBTORCH_USE_PYTORCH: ask python.
    let out = Command::new("python3").args(["-c", "import torch,os;print(os.path.dirname(torch.__file__))"]).output().ok()?;
    out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let Some(dir) = torch_dir() else {
        println!("cargo:warning=libtorch not found: run `make setup` or set LIBTORCH");
        return;
    };
    let lib = dir.join("lib");
    println!("cargo:rustc-link-search=native={}", lib.display());
    // rpath: the binary finds libtorch where it was built against.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // libtorch_cuda is not linked: the linker would drop it anyway (no symbol
    // of it is referenced directly, tch-rs #980), and loading it with its
    // CUDA libraries costs ~340 MB of resident memory on CPU-only runs.
    // `engine::device` dlopens it when a GPU is asked for or present.
    println!("cargo:rustc-env=FLIPSCOPE_LIBTORCH_DIR={}", dir.display());
}
