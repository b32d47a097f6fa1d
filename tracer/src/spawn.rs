//! Starting the first tracee.
//!
//! fork; the child waits on a pipe until the parent has PTRACE_SEIZEd it, installs the
//! seccomp filter (after PR_SET_NO_NEW_PRIVS, which seccomp(2) requires of an
//! unprivileged caller), tells the parent whether that worked, stops itself with
//! SIGSTOP so the parent can choose how to resume it, and execs the command. That
//! execve is already traced, so even the command's own path is translated.

use crate::ptrace::{self, last_errno, Pid};
use ptnix_syscalls::bpf::Insn;
use std::ffi::CString;

/// How the command was started.
pub struct Spawned {
    pub pid: Pid,
    /// The seccomp filter is in place (else: pure-ptrace mode).
    pub seccomp: bool,
}

#[derive(Debug)]
pub enum SpawnError {
    /// fork or pipe failed.
    Os(&'static str, i32),
    /// PTRACE_SEIZE was refused: yama ptrace_scope, an outer tracer, a container policy.
    Ptrace(i32),
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::Os(what, e) => write!(f, "{what} failed: {}", std::io::Error::from_raw_os_error(*e)),
            SpawnError::Ptrace(e) => write!(
                f,
                "ptrace is not permitted here ({}): check /proc/sys/kernel/yama/ptrace_scope, \
                 whether ptnix itself runs under a debugger, and the container's seccomp policy",
                std::io::Error::from_raw_os_error(*e)
            ),
        }
    }
}

fn pipe() -> Result<(i32, i32), SpawnError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SpawnError::Os("pipe", last_errno()));
    }
    Ok((fds[0], fds[1]))
}

/// Writes `msg` to stderr with one write(2): safe between fork and exec.
fn child_message(parts: &[&[u8]]) {
    let mut v = Vec::new();
    for p in parts {
        v.extend_from_slice(p);
    }
    // SAFETY: plain write of an owned buffer.
    unsafe { libc::write(2, v.as_ptr().cast(), v.len()) };
}

/// The child side: never returns.
fn child(argv: &[CString], filter: Option<&[Insn]>, cwd: Option<&CString>, sync_r: i32, report_w: i32) -> ! {
    // SAFETY: only async-signal-safe calls and the pre-built argv are used below; the
    // parent is single-threaded, so no lock can be held across the fork.
    unsafe {
        let mut b = 0u8;
        while libc::read(sync_r, (&mut b as *mut u8).cast(), 1) < 0 && last_errno() == libc::EINTR {}
        // Rust ignores SIGPIPE in its own processes; the command must get the default.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

        let mut status = b'P';
        if let Some(insns) = filter {
            let mut prog: Vec<libc::sock_filter> = insns
                .iter()
                .map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k })
                .collect();
            let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                && libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog as *const _) == 0
            {
                status = b'S';
            }
        }
        libc::write(report_w, (&status as *const u8).cast(), 1);
        libc::close(report_w);
        libc::raise(libc::SIGSTOP);
        if let Some(d) = cwd {
            // Traced already: this chdir to `-w`'s guest path is translated like any.
            if libc::chdir(d.as_ptr()) != 0 {
                let why = std::io::Error::last_os_error().to_string();
                child_message(&[b"ptnix: cannot enter the working directory: ", why.as_bytes(), b"\n"]);
                libc::_exit(125);
            }
        }

        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        libc::execvp(ptrs[0], ptrs.as_ptr());
        let e = last_errno();
        let name = argv[0].as_bytes();
        if e == libc::ENOENT {
            child_message(&[b"ptnix: ", name, b": command not found\n"]);
            libc::_exit(127);
        }
        let why = std::io::Error::from_raw_os_error(e).to_string();
        let why = why.split(" (os error").next().unwrap_or(&why);
        child_message(&[b"ptnix: ", name, b": ", why.as_bytes(), b"\n"]);
        libc::_exit(126);
    }
}

/// Forks and seizes `argv`; the child is left stopped by SIGSTOP (not yet reaped).
pub fn spawn(argv: &[CString], filter: Option<&[Insn]>, cwd: Option<&[u8]>) -> Result<Spawned, SpawnError> {
    let cwd = cwd.map(|d| CString::new(d).map_err(|_| SpawnError::Os("chdir", libc::EINVAL))).transpose()?;
    let (sync_r, sync_w) = pipe()?;
    let (report_r, report_w) = pipe()?;
    // SAFETY: fork in a single-threaded process; the child runs `child` only.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SpawnError::Os("fork", last_errno()));
    }
    if pid == 0 {
        child(argv, filter, cwd.as_ref(), sync_r, report_w);
    }
    // SAFETY: closing our copies of the child's pipe ends.
    unsafe {
        libc::close(sync_r);
        libc::close(report_w);
    }
    let seized = ptrace::seize(pid);
    if let Err(e) = seized {
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(SpawnError::Ptrace(e));
    }
    let mut status = 0u8;
    // SAFETY: one-byte reads and writes on our pipes.
    unsafe {
        libc::write(sync_w, (&1u8 as *const u8).cast(), 1);
        libc::close(sync_w);
        while libc::read(report_r, (&mut status as *mut u8).cast(), 1) < 0 && last_errno() == libc::EINTR {}
        libc::close(report_r);
    }
    Ok(Spawned { pid, seccomp: status == b'S' })
}
