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
