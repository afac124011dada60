//! Helpers shared by the CLI test files: run the `medai` binary and check its outcome.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Run `medai` with `args`.
pub fn medai(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medai"))
        .args(args)
        .output()
        .expect("run medai")
}

/// Run `medai`, assert success, return stdout.
pub fn ok(args: &[&str]) -> String {
    let out = medai(args);
    assert!(
        out.status.success(),
        "medai {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run `medai`, assert failure without a panic, return stderr.
pub fn err(args: &[&str]) -> String {
    let out = medai(args);
    assert!(!out.status.success(), "medai {args:?} should fail");
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!e.contains("panicked"), "panic instead of an error: {e}");
    e
}
