//! `ptnix doctor` on this host (where ptnix works): every line is ok/warn/fail, the
//! ptrace and seccomp checks pass, and the exit status says ptnix can run.

use std::process::Command;

#[test]
fn doctor_reports_and_succeeds_here() {
    let out = Command::new(env!("CARGO_BIN_EXE_ptnix")).args(["doctor", "--store", "/tmp/ptnix-doctor-test-none"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.lines().count() >= 5, "{text}");
    for line in text.lines() {
        assert!(line.starts_with("ok ") || line.starts_with("warn ") || line.starts_with("fail "), "{line}");
    }
    assert!(text.contains("ok   ptrace is permitted"), "{text}");
    assert!(text.contains("ok   seccomp-bpf tracing works"), "{text}");
    assert!(text.contains("does not exist yet"), "{text}");

    let quiet = Command::new(env!("CARGO_BIN_EXE_ptnix")).args(["doctor", "--quiet"]).output().unwrap();
    assert_eq!(quiet.status.code(), Some(0));
    assert!(quiet.stdout.is_empty());
}

/// Completions and the man page come from the same clap definitions as `--help`.
#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_ptnix")).args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("ptnix") && text.contains("no-seccomp"), "{shell}: {text}");
    }
    let man = Command::new(env!("CARGO_BIN_EXE_ptnix")).arg("man").output().unwrap();
    assert!(man.status.success());
    let text = String::from_utf8_lossy(&man.stdout);
    assert!(text.contains(".TH ptnix 1") && text.contains("doctor"), "{text}");
    let bad = Command::new(env!("CARGO_BIN_EXE_ptnix")).args(["completions", "nosuchshell"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(125));
}
