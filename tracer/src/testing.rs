//! A seized, stopped tracee to exercise tracee-memory access on, for tests and benches
//! (keeps their `unsafe` in this crate).

use crate::ptrace::{self, Pid, Wait};

/// Forks a child that stops itself (dropping root to `nobody` first, since tracees
/// never run as root in ptnix's tests), seizes it, and waits for its stop. A forked
/// child shares this process's address layout, so the addresses of this process's
/// statics are valid in it.
pub fn stopped_child() -> Pid {
    // SAFETY: the child only calls async-signal-safe functions and never returns.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain syscalls in the child.
        unsafe {
            if libc::getuid() == 0 {
                libc::setgid(65534);
                libc::setuid(65534);
            }
            loop {
                libc::raise(libc::SIGSTOP);
            }
        }
    }
    ptrace::seize(pid).expect("PTRACE_SEIZE");
    match ptrace::wait_any() {
        Ok(Wait::Stopped(p, _)) if p == pid => pid,
        w => panic!("unexpected wait result {w:?}"),
    }
}

/// Kills and reaps a child from [`stopped_child`].
pub fn kill(pid: Pid) {
    // SAFETY: killing our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    while !matches!(ptrace::wait_any(), Ok(Wait::Signaled(..)) | Ok(Wait::NoChildren) | Err(_)) {}
}
