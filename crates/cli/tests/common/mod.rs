//! Helpers shared by the binary's black-box tests.

use std::process::{Command, Output};

/// Runs the real `itb` binary from the workspace root (so example paths resolve).
pub fn itb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_itb"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("the itb binary runs")
}
