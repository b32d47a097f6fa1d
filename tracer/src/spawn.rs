//! Starting the first tracee.
//!
//! fork; the child waits on a pipe until the parent has PTRACE_SEIZEd it, installs the
//! seccomp filter (after PR_SET_NO_NEW_PRIVS, which seccomp(2) requires of an
//! unprivileged caller), tells the parent whether that worked, stops itself with
//! SIGSTOP so the parent can choose how to resume it, and execs the command. That
//! execve is already traced, so even the command's own path is translated.
//!
//! A filter with user notifications is installed with SECCOMP_FILTER_FLAG_NEW_LISTENER,
//! which gives the child the listener descriptor (close-on-exec); the parent takes a
//! copy with pidfd_getfd(2) while the child is stopped. Where either fails (before
//! Linux 5.6), the child has installed the plain filter instead, or is killed and
//! started again without one that notifies.

use crate::ptrace::{self, last_errno, Pid};
use ptnix_syscalls::bpf::Insn;
use std::ffi::CString;

/// How the command was started.
pub struct Spawned {
    pub pid: Pid,
    /// The seccomp filter is in place (else: pure-ptrace mode).
    pub seccomp: bool,
    /// The user-notification listener, if the filter that notifies is in place.
    pub listener: Option<std::os::fd::OwnedFd>,
    /// The kernel took SECCOMP_FILTER_FLAG_SPEC_ALLOW (Linux 4.17) with the filter:
    /// ptnix passes it again for the filters it installs in tracees later.
    pub spec_allow: bool,
}

/// seccomp(2) SECCOMP_FILTER_FLAG_SPEC_ALLOW. Where the kernel's speculation
/// mitigations are in `seccomp` mode (the default for spec_store_bypass_disable and
/// spectre_v2_user before Linux 5.16, so on CentOS 7, RHEL 8, Debian 11 and Ubuntu
/// 20.04), installing a filter without it forces them on the task for good
/// (kernel/seccomp.c, seccomp_assign_mode: `if (!(flags &
/// SECCOMP_FILTER_FLAG_SPEC_ALLOW)) arch_seccomp_spec_mitigate(task)`): Speculative
/// Store Bypass disabled, and STIBP and an IBPB at every switch to the task. That
/// suits a sandbox running untrusted code; ptnix's filter only picks the calls it
/// translates, and the program under it is the user's own, which runs natively
/// without them. So the tracees keep the mitigations a native run has.
pub const SPEC_ALLOW: u64 = 4;

/// The filter to install: `notify`, which sends the stat family to a supervisor, if
/// the kernel takes it, else `plain`.
#[derive(Clone, Copy)]
pub struct Filters<'a> {
    pub plain: &'a [Insn],
    pub notify: Option<&'a [Insn]>,
}

#[derive(Debug)]
pub enum SpawnError {
    /// fork or pipe failed.
    Os(&'static str, i32),
    /// PTRACE_SEIZE was refused: yama ptrace_scope, an outer tracer, a container policy.
    Ptrace(i32),
    /// The child installed the filter that notifies, but its listener could not be
    /// taken: start again without it.
    NoListener,
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
            SpawnError::NoListener => write!(f, "the seccomp listener could not be taken"),
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

fn sock_filters(insns: &[Insn]) -> Vec<libc::sock_filter> {
    insns.iter().map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect()
}

/// The child side: never returns.
fn child(argv: &[CString], filter: Option<Filters<'_>>, cwd: Option<&CString>, sync_r: i32, report_w: i32) -> ! {
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

        // 'P': pure ptrace; 'S': the plain filter; 'N' and the listener's number: the
        // filter that notifies; last, whether SPEC_ALLOW was taken.
        let mut report = [b'P', 0, 0, 0, 0, 0];
        if let Some(f) = filter {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 {
                if let Some(n) = f.notify {
                    let mut prog = sock_filters(n);
                    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
                    // seccomp(2): SECCOMP_SET_MODE_FILTER = 1, SECCOMP_FILTER_FLAG_NEW_LISTENER
                    // = 8. Not SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (5.19): with it only
                    // SIGKILL ends a wait the supervisor has received, and a ptraced
                    // task's other deadly signals are not made SIGKILL (kernel/signal.c,
                    // complete_signal: `!p->ptrace`), so ^C could not end a reader
                    // waiting in the open of a FIFO (see `notifopen`). A signal cuts any
                    // wait instead, and the call is restarted after it (see
                    // `notif::keep_notified_call`).
                    // SPEC_ALLOW (4.17) is older than NEW_LISTENER (5.0); an EINVAL
                    // for both leaves the plain filter to be tried.
                    let l = libc::syscall(libc::SYS_seccomp, 1, 8 | SPEC_ALLOW, &fprog as *const libc::sock_fprog);
                    if l >= 0 {
                        report[0] = b'N';
                        report[1..5].copy_from_slice(&(l as i32).to_ne_bytes());
                        report[5] = 1;
                    }
                }
                let mut prog = sock_filters(f.plain);
                let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
                if report[0] == b'P' {
                    // seccomp(2) with SPEC_ALLOW; else (before 4.17, or before 3.17
                    // without seccomp(2)) prctl, which takes no flags.
                    if libc::syscall(libc::SYS_seccomp, 1, SPEC_ALLOW, &fprog as *const libc::sock_fprog) == 0 {
                        report[0] = b'S';
                        report[5] = 1;
                    } else if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog as *const _) == 0 {
                        report[0] = b'S';
                    }
                }
            }
        }
        libc::write(report_w, report.as_ptr().cast(), report.len());
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
pub fn spawn(argv: &[CString], filter: Option<Filters<'_>>, cwd: Option<&[u8]>) -> Result<Spawned, SpawnError> {
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
    let mut report = [0u8; 6];
    // SAFETY: reads and writes on our pipes; the child writes its report at once.
    unsafe {
        libc::write(sync_w, (&1u8 as *const u8).cast(), 1);
        libc::close(sync_w);
        while libc::read(report_r, report.as_mut_ptr().cast(), report.len()) < 0 && last_errno() == libc::EINTR {}
        libc::close(report_r);
    }
    let listener = match report[0] {
        b'N' => match take_fd(pid, i32::from_ne_bytes(report[1..5].try_into().unwrap())) {
            Some(fd) => Some(fd),
            None => {
                // SAFETY: killing and reaping our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
                }
                return Err(SpawnError::NoListener);
            }
        },
        _ => None,
    };
    Ok(Spawned { pid, seccomp: matches!(report[0], b'S' | b'N'), listener, spec_allow: report[5] == 1 })
}

/// A copy of descriptor `fd` of process `pid` (pidfd_open(2) and pidfd_getfd(2),
/// Linux 5.6).
fn take_fd(pid: Pid, fd: i32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscalls; the descriptors returned are owned here.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if pidfd < 0 {
            return None;
        }
        let got = libc::syscall(libc::SYS_pidfd_getfd, pidfd as i32, fd, 0);
        libc::close(pidfd as i32);
        (got >= 0).then(|| std::os::fd::OwnedFd::from_raw_fd(got as i32))
    }
}
