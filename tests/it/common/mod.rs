//! Helpers shared by integration tests.
#![allow(dead_code)]

pub mod parity;

/// Runs the built binary with a throwaway HOME: (success, stdout, stderr).
pub fn flipscope(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flipscope")).args(args).env("HOME", std::env::temp_dir()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Runs the built binary with a throwaway HOME and one extra environment
/// variable (a test hook such as `FLIPSCOPE_KILL_DURING_SAVE`), for its status.
pub fn flipscope_with_env<S: AsRef<std::ffi::OsStr>>(args: &[S], env: Option<(&str, &str)>) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_flipscope"));
    c.args(args).env("HOME", std::env::temp_dir());
    if let Some((k, v)) = env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The real ViewSpatial-Bench.json (shipped gzipped in assets/viewspatial,
/// see its SOURCE.md), written once per test process into a temporary folder.
pub fn viewspatial_json() -> &'static std::path::Path {
    static PATH: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> = std::sync::OnceLock::new();
    &PATH
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ViewSpatial-Bench.json");
            flipscope::config::write_viewspatial_questions(&path).unwrap();
            (dir, path)
        })
        .1
}

/// A copy of the tiny random checkpoint in `dir` whose card says it answers
/// in words (`flipscope.json`).
pub fn words_model(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("words-model");
    std::fs::create_dir_all(&out).unwrap();
    for entry in std::fs::read_dir(parity::case_dir("flat_tied_odd").join("model")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), out.join(entry.file_name())).unwrap();
    }
    std::fs::write(out.join("flipscope.json"), r#"{"answers": "words"}"#).unwrap();
    out
}
