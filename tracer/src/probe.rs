//! What `ptnix doctor` checks on this host: can ptnix trace here, and how.

use crate::ptrace::{self, Wait};
use crate::{mem, spawn};
use ptnix_syscalls::bpf;
use std::ffi::CString;

pub struct Probe {
    /// PTRACE_SEIZE of a child: Ok, or the errno.
    pub ptrace: Result<(), i32>,
    /// The seccomp filter could be installed in the traced child.
    pub seccomp: bool,
    /// process_vm_readv of the traced child: Ok, or the errno (ptnix then falls back to
    /// PTRACE_PEEKDATA, one word per call).
    pub vm_read: Result<(), i32>,
    /// An unprivileged user namespace could be created.
    pub userns: bool,
    /// Our own tracer, if ptnix itself runs under one (TracerPid).
    pub tracer_pid: Option<i32>,
    /// /proc/sys/kernel/yama/ptrace_scope, if yama is present.
    pub yama_scope: Option<u8>,
}

fn status_field(name: &str) -> Option<i32> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].trim().parse().ok()
}

fn userns_works() -> bool {
    // SAFETY: the child only calls unshare and _exit.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            libc::_exit(if libc::unshare(libc::CLONE_NEWUSER) == 0 { 0 } else { 1 });
        }
        if pid < 0 {
            return false;
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }
}

pub fn probe() -> Probe {
    let tracer_pid = status_field("TracerPid:").filter(|&p| p != 0);
    let yama_scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok().and_then(|s| s.trim().parse().ok());
    let userns = userns_works();
    let filter = bpf::build_filter();
    let argv = [CString::new("/bin/true").unwrap()];
    let filters = spawn::Filters { plain: &filter, notify: None };
    let (ptrace_r, seccomp, vm_read) = match spawn::spawn(&argv, Some(filters), None) {
        Err(spawn::SpawnError::Ptrace(e)) => (Err(e), false, Err(e)),
        Err(spawn::SpawnError::Os(_, e)) => (Err(e), false, Err(e)),
        Err(spawn::SpawnError::NoListener) => (Err(libc::ENOSYS), false, Err(libc::ENOSYS)),
        Ok(s) => {
            // The child stops itself with SIGSTOP before its exec: read its stack there.
            let mut vm = Err(libc::ESRCH);
            if let Ok(Wait::Stopped(..)) = ptrace::wait_any() {
                vm = ptrace::get_regs(s.pid).and_then(|r| {
                    let mut b = [0u8; 8];
                    mem::read_direct(s.pid, r.rsp, &mut b)
                });
            }
            // SAFETY: killing and reaping our own child.
            unsafe { libc::kill(s.pid, libc::SIGKILL) };
            while !matches!(ptrace::wait_any(), Ok(Wait::NoChildren) | Err(_)) {}
            (Ok(()), s.seccomp, vm)
        }
    };
    Probe { ptrace: ptrace_r, seccomp, vm_read, userns, tracer_pid, yama_scope }
}
