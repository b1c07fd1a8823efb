//! Helpers shared by integration tests.
#![allow(dead_code)]

pub mod parity;

/// Runs the built binary with a throwaway HOME: (success, stdout, stderr).
pub fn flipscope(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flipscope")).args(args).env("HOME", std::env::temp_dir()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}
