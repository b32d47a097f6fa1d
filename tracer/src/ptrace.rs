//! Typed wrappers over ptrace(2). This module and [`crate::mem`] hold all of ptnix's
//! `unsafe`; everything above them is safe code.
//!
//! Every request can fail with ESRCH when the tracee was just killed (SIGKILL from
//! outside, or its thread group exec'ed). That is an event, not a bug: the caller drops
//! the request, and `waitpid` reports the death in due course.

use std::io;

pub type Pid = libc::pid_t;

/// `errno` of the last libc call.
pub fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

fn check(r: libc::c_long) -> Result<libc::c_long, i32> {
    if r == -1 {
        Err(last_errno())
    } else {
        Ok(r)
    }
}

pub const OPTIONS: libc::c_int = libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_TRACESECCOMP
    // "Send a SIGKILL signal to the tracee if the tracer exits" (Linux 3.8): no tracee
    // ever runs on untranslated after ptnix dies.
    | libc::PTRACE_O_EXITKILL;

/// PTRACE_SEIZE: attach without stopping; auto-attached children inherit the options.
pub fn seize(pid: Pid) -> Result<(), i32> {
    // SAFETY: PTRACE_SEIZE takes the options in `data`; no memory is passed.
    check(unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, OPTIONS as libc::c_long) }).map(drop)
}

fn resume(req: libc::c_uint, pid: Pid, sig: i32) -> Result<(), i32> {
    // SAFETY: resume requests take only a signal number in `data`.
    check(unsafe { libc::ptrace(req, pid, 0, sig as libc::c_long) }).map(drop)
}

/// Resume until the next seccomp/event/signal stop.
pub fn cont(pid: Pid, sig: i32) -> Result<(), i32> {
    resume(libc::PTRACE_CONT, pid, sig)
}

/// Resume until the next syscall entry or exit stop.
pub fn syscall(pid: Pid, sig: i32) -> Result<(), i32> {
    resume(libc::PTRACE_SYSCALL, pid, sig)
}

/// PTRACE_INTERRUPT (SEIZE only): a running or sleeping tracee reports a
/// PTRACE_EVENT_STOP at its next return to user space (see `escalate`).
pub fn interrupt(pid: Pid) -> Result<(), i32> {
    // SAFETY: PTRACE_INTERRUPT takes no memory.
    check(unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0) }).map(drop)
}

/// Leave a group-stop tracee stopped but let it report the next event (SEIZE only).
pub fn listen(pid: Pid) -> Result<(), i32> {
    resume(libc::PTRACE_LISTEN, pid, 0)
}

/// PTRACE_GETEVENTMSG: the new pid of a fork event, the former tid of an exec event.
pub fn event_msg(pid: Pid) -> Result<u64, i32> {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: the kernel writes one unsigned long to `msg`.
    check(unsafe { libc::ptrace(libc::PTRACE_GETEVENTMSG, pid, 0, &mut msg as *mut libc::c_ulong) })?;
    Ok(msg as u64)
}

pub type Regs = libc::user_regs_struct;

pub fn get_regs(pid: Pid) -> Result<Regs, i32> {
    // SAFETY: user_regs_struct is plain old data; the kernel fills it entirely.
    let mut regs: Regs = unsafe { std::mem::zeroed() };
    check(unsafe { libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs as *mut Regs) })?;
    Ok(regs)
}

pub fn set_regs(pid: Pid, regs: &Regs) -> Result<(), i32> {
    // SAFETY: the kernel reads one user_regs_struct from `regs`.
    check(unsafe { libc::ptrace(libc::PTRACE_SETREGS, pid, 0, regs as *const Regs) }).map(drop)
}

/// PTRACE_GETSIGMASK (Linux 3.11): the tracee's blocked signals.
pub fn get_sigmask(pid: Pid) -> Result<u64, i32> {
    let mut mask: u64 = 0;
    // SAFETY: the kernel writes a sigset_t of `addr` (8) bytes to `mask`.
    check(unsafe { libc::ptrace(0x420a, pid, 8usize, &mut mask as *mut u64) })?;
    Ok(mask)
}

/// PTRACE_SETSIGMASK (Linux 3.11): blocks exactly these signals in the tracee.
pub fn set_sigmask(pid: Pid, mask: u64) -> Result<(), i32> {
    // SAFETY: the kernel reads a sigset_t of `addr` (8) bytes from `mask`.
    check(unsafe { libc::ptrace(0x420b, pid, 8usize, &mask as *const u64) }).map(drop)
}

/// PTRACE_PEEKDATA: one word of tracee memory (the fallback when process_vm_readv is
/// unavailable, e.g. blocked by a container's seccomp policy).
pub fn peek(pid: Pid, addr: u64) -> Result<u64, i32> {
    // PEEKDATA returns the word itself, so -1 is ambiguous: clear errno first.
    // SAFETY: errno is thread-local; PEEKDATA reads tracee memory, not ours.
    unsafe { *libc::__errno_location() = 0 };
    let r = unsafe { libc::ptrace(libc::PTRACE_PEEKDATA, pid, addr as usize, 0) };
    if r == -1 && last_errno() != 0 {
        return Err(last_errno());
    }
    Ok(r as u64)
}

/// PTRACE_POKEDATA: write one word of tracee memory.
pub fn poke(pid: Pid, addr: u64, word: u64) -> Result<(), i32> {
    // SAFETY: POKEDATA writes tracee memory, not ours.
    check(unsafe { libc::ptrace(libc::PTRACE_POKEDATA, pid, addr as usize, word as usize) }).map(drop)
}

/// What `waitpid` said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    Exited(Pid, i32),
    Signaled(Pid, i32),
    /// A ptrace stop: the raw status (signal in bits 8-15, event in bits 16-23).
    Stopped(Pid, i32),
    /// No tracee left (ECHILD).
    NoChildren,
    /// A signal to ptnix interrupted the wait (see `escalate`).
    Interrupted,
}

/// A stop or death `pid` has already reported, without waiting for one.
pub fn wait_pid_nohang(pid: Pid) -> Option<Wait> {
    let mut status = 0;
    // SAFETY: waitpid writes the status int.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL | libc::WNOHANG) };
    (r > 0).then(|| decode(r, status))
}

fn decode(pid: Pid, status: i32) -> Wait {
    if libc::WIFEXITED(status) {
        Wait::Exited(pid, libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Wait::Signaled(pid, libc::WTERMSIG(status))
    } else {
        Wait::Stopped(pid, status)
    }
}

pub fn wait_any() -> Result<Wait, i32> {
    let mut status = 0;
    // SAFETY: waitpid writes the status int.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
    if pid == -1 {
        return match last_errno() {
            libc::EINTR => Ok(Wait::Interrupted),
            libc::ECHILD => Ok(Wait::NoChildren),
            e => Err(e),
        };
    }
    Ok(decode(pid, status))
}
