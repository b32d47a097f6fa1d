//! Per-tracee (per-thread) state.

use crate::dirents::Listing;
use crate::ptrace::{Pid, Regs};
use ptnix_syscalls::dirent::Format;

/// A program that ptnix started through its loader (see `exec`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoaderRun {
    /// The program's guest path: what `/proc/PID/exe` must show.
    pub program: Vec<u8>,
    /// The loader's host path: what `/proc/PID/exe` does show while this holds.
    pub loader: Vec<u8>,
    /// The loader's argv as ptnix wrote it (`LOADER [--audit OBJECT] [--argv0 NAME] PROGRAM`), which
    /// `/proc/PID/cmdline` starts with right after the exec.
    pub argv: Vec<Vec<u8>>,
    /// The task name the program would have natively (the kernel named it after the
    /// loader).
    pub comm: Vec<u8>,
}

/// Work left for the syscall-exit stop.
pub enum ExitWork {
    /// Set the return value (pure-ptrace mode: a skipped syscall returns this).
    Return(i64),
    /// getcwd wrote a host path into `buf` (of `size` bytes).
    Getcwd { buf: u64, size: u64 },
    /// getsockname/getpeername/accept wrote a sockaddr of at most `cap` bytes.
    Sockaddr { addr: u64, len_ptr: u64, cap: u32 },
    /// getdents on a bind's parent directory (see `dirents`).
    Getdents { fd: i32, buf: u64, count: usize, format: Format, pos: u64, listing: Listing },
    /// A getdents turned into lseek: write these records and return their length.
    Records { buf: u64, records: Vec<u8> },
    /// uname wrote a utsname at this address: put the `-k` release in it.
    Uname(u64),
    /// umask has set a new one: the supervisor reads it again (see `notifopen`).
    UmaskSet,
    /// A snapshot file the tracee has now opened: remove it (see `procfiles`).
    Unlink(Vec<u8>),
    /// sched_getaffinity wrote `len` bytes of a mask at `buf` for thread `tid`: put
    /// that thread's own mask there.
    GetAffinity { tid: Pid, buf: u64 },
    /// sched_setaffinity of thread `tid` (pinned by ptnix before it, or not).
    SetAffinity { tid: Pid, was_near: bool },
    /// An injected lseek: restore these registers (see `dirents`).
    Restore { regs: Box<Regs>, fallback: (Pid, i32, u64) },
    /// An open of a listed directory: move a low descriptor up (see `listingfd`).
    MoveFd { cloexec: bool },
    /// A descriptor copy whose minimum ptnix raised; `saved` is the call as it was.
    CopyRaised { saved: Box<Regs> },
    /// A syscall ptnix injected (see `listingfd`).
    Injected { saved: Box<Regs>, step: crate::listingfd::Step },
}

/// Paths ptnix wrote below the stack for the syscall in progress. If a signal handler
/// runs and the syscall is then restarted (-ERESTARTSYS), the kernel re-enters it with
/// the same registers: the pointers still name the scratch area, which the handler's
/// frames may have overwritten. The original guest paths are kept to translate again.
#[derive(Clone, Debug)]
pub struct Scratch {
    pub nr: u64,
    pub rsp: u64,
    /// (argument index, pointer written, original guest bytes)
    pub args: Vec<(u8, u64, Vec<u8>)>,
}

#[derive(Default)]
pub struct Tracee {
    /// Thread group id, read lazily from /proc.
    pub tgid: Option<Pid>,
    /// The first stop (the attach stop) has been seen.
    pub started: bool,
    /// Pure-ptrace mode: between the entry and the exit stop of a syscall.
    pub in_syscall: bool,
    pub exit: Option<ExitWork>,
    /// Seccomp mode on kernels before 4.8: an entry stop will come before the exit stop.
    pub skip_entry_stop: bool,
    pub scratch: Option<Scratch>,
    /// Set at an execve entry that starts a loader explicitly: what becomes the
    /// process's `/proc/PID/exe` if the exec succeeds.
    pub pending_exe: Option<LoaderRun>,
    /// This thread group has exec'ed since ptnix first saw it: a fork event that is
    /// processed late must not give it its parent's program.
    pub exec_seen: bool,
    /// Set at an execve entry whose filename ptnix rewrote: (the host filename given
    /// to the kernel, the filename the tracee passed). The kernel records the former
    /// as AT_EXECFN; natively it would be the latter.
    pub pending_execfn: Option<(Vec<u8>, Vec<u8>)>,
    /// After an exec through a loader: AT_EXECFN to restore once the loader has
    /// moved the auxv (see `auxv`).
    pub execfn_watch: Option<crate::auxv::ExecfnWatch>,
    /// Which CPU it runs on (see `placement`).
    pub place: crate::placement::Place,
    /// It (or its thread group, or an ancestor) installed a seccomp filter of its own
    /// (see `ownfilter`).
    pub own_filter: bool,
    /// It (or an ancestor) restricted itself with Landlock (see `mark_landlocked`).
    pub landlocked: bool,
    /// It has ptnix's second filter, which stops every getdents (see `listingfd`).
    pub all_getdents: bool,
    /// ptnix could not give it that filter, and does not try again.
    pub filter_failed: bool,
    /// It runs a seccomp(2) that ptnix injected: that syscall's stop is ptnix's own.
    pub injecting: bool,
    /// Its signal mask while ptnix runs syscalls of its own in it (all blocked).
    pub held_sigmask: Option<u64>,
    /// ptnix interrupted it to take over the notified call made at this address (see
    /// `escalate`): its PTRACE_EVENT_STOP is to come.
    pub escalating: Option<u64>,
    /// Resumed with PTRACE_SYSCALL after that stop, its signals blocked: its next
    /// entry stop, the call's restart, is handled as a seccomp stop.
    pub escalated: bool,
    /// Between that entry stop and its exit stop.
    pub escalated_exit: bool,
    /// Its parent is known: the fork event that created it was processed (or it is
    /// the command itself). A child's first stops can come before that event.
    pub linked: bool,
}
