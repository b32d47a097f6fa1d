//! Descriptors of listed directories live at high numbers, so that getdents of every
//! other directory runs without a stop.
//!
//! Only a listing of a mount point's parent (`/`, for `/nix`) changes under ptnix (see
//! `dirents`), and every way to open one is a path syscall ptnix sees. So the filter
//! stops getdents only for descriptors at or above a *listing base* (half the soft
//! RLIMIT_NOFILE, at most 1000), and ptnix keeps every descriptor of a listed
//! directory there:
//!
//! - an open (open, openat, openat2) or pidfd_getfd that gets one below the base: at
//!   its exit the tracee is made to call fcntl(fd, F_DUPFD[_CLOEXEC], base), then
//!   close(fd), and it gets the new number. (fcntl(2): F_DUPFD "uses the lowest-numbered
//!   available file descriptor greater than or equal to arg".)
//! - dup(fd) and fcntl(fd, F_DUPFD[_CLOEXEC], n < base) of one: the filter stops these
//!   only for descriptors at or above the base; ptnix raises the minimum to the base.
//! - dup2/dup3 of one to a number below the base (the caller chose the number), and an
//!   F_DUPFD that fails (RLIMIT_NOFILE lowered below the base): the process gets a
//!   second filter that stops every getdents, for good (children inherit it: seccomp(2)
//!   "filters are inherited across fork and preserved across execve").
//! - descriptors ptnix inherits itself: if one is a listed directory below the base,
//!   there is no base and every getdents stops.
//! - a tracee that installs a seccomp filter of its own (Nix's builders do) gets the
//!   getdents filter first, and from then on nothing is injected into it: its own
//!   filter could refuse or trap (SIGSYS) a syscall ptnix injects.
//!
//! One race is left: a thread that forks while another thread of its process gets the
//! getdents filter (TSYNC) may leave a child that ptnix believes filtered and the
//! kernel does not; that child's listings of `/` then lack the mount points.
//!
//! What is not seen: a descriptor received over a unix socket (SCM_RIGHTS; recvmsg is
//! not stopped) lists without the mount points if it lands below the base.

use crate::engine::Engine;
use crate::entry::{Verdict, RED_ZONE};
use crate::hostfs;
use crate::mem;
use crate::ptrace::{self, Pid, Regs};
use crate::tracee::ExitWork;
use ptnix_syscalls::bpf;
use ptnix_syscalls::mapping::Mapping;
use ptnix_syscalls::table::{FdCopy, F_DUPFD, F_DUPFD_CLOEXEC};

/// x86_64 `syscall`: at a syscall stop it lies just before the instruction pointer.
const SYSCALL_INSN: [u8; 2] = [0x0f, 0x05];

/// Whether the tracee entered the kernel through a `syscall` instruction ending at
/// `rip`, so that moving rip back 2 bytes makes it run a syscall again.
pub(crate) fn after_syscall_insn(pid: Pid, rip: u64) -> bool {
    let mut insn = [0u8; 2];
    mem::read(pid, rip.wrapping_sub(2), &mut insn).is_ok() && insn == SYSCALL_INSN
}
const SECCOMP_SET_MODE_FILTER: u64 = 1;
const SECCOMP_FILTER_FLAG_TSYNC: u64 = 1;

/// What an injected syscall was for.
pub enum Step {
    /// fcntl(old, F_DUPFD, base) ran: close `old` next (or, if it failed, fall back).
    Copied { old: i32 },
    /// close(old) ran: the tracee's syscall returns `new`.
    Closed { new: i32 },
    /// seccomp(2) installed the getdents filter (or not); then `then`. Where seccomp(2)
    /// does not exist (before Linux 3.17) prctl(PR_SET_SECCOMP) is tried: it filters
    /// the calling thread only.
    Filtered { then: Finish, prctl: bool },
}

/// How the tracee's own syscall ends after an injection.
#[derive(Clone, Copy)]
pub enum Finish {
    /// It returns this value.
    Return(i64),
    /// It runs again, from its entry, with its original registers.
    Rerun,
}

/// The listing base ptnix uses, or 0 for none (every getdents stops).
pub fn base(map: &Mapping) -> u32 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    // Below FD_SETSIZE (1024), so that select() never meets these numbers.
    let base = (lim.rlim_cur / 2).min(1000) as u32;
    if base < 16 || inherits_listed_dir(map, base) {
        return 0;
    }
    base
}

/// Whether ptnix holds, without FD_CLOEXEC, a descriptor below `base` of a directory
/// whose listing changes: the command inherits it unseen.
fn inherits_listed_dir(map: &Mapping, base: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return true };
    dir.flatten().any(|e| {
        let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { return false };
        // SAFETY: F_GETFD on a number: EBADF at worst (the read_dir's own descriptor).
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if fd as u32 >= base || flags < 0 || flags & libc::FD_CLOEXEC != 0 {
            return false;
        }
        links_to_listed_dir(map, &format!("/proc/self/fd/{fd}"))
    })
}

/// Whether descriptor link `link` (`/proc/PID/fd/N`) names a directory whose listing
/// ptnix changes.
fn links_to_listed_dir(map: &Mapping, link: &str) -> bool {
    hostfs::readlink(link.as_bytes()).is_ok_and(|host| host.first() == Some(&b'/') && map.lists_mount_points(&map.to_guest(&host)))
}

impl Engine {
    /// Whether the tracee's descriptor `fd` is a directory whose listing ptnix changes.
    fn listed(&self, pid: Pid, fd: i32) -> bool {
        links_to_listed_dir(&self.mapping, &format!("/proc/{pid}/fd/{fd}"))
    }

    /// Nothing to move for `pid`: every getdents of its stops anyway, or it has a
    /// filter of its own (which could refuse or trap an injected syscall).
    fn moves_nothing(&self, pid: Pid) -> bool {
        self.tracees.get(&pid).map_or(true, |t| t.all_getdents || t.own_filter)
    }

    /// An open of guest directory `guest` (open flags `flags`) is about to run: if
    /// its listing changes, its descriptor is moved at the exit.
    pub(crate) fn watch_open(&mut self, pid: Pid, guest: &[u8], flags: u64) {
        let has_exit = self.tracees.get(&pid).map_or(true, |t| t.exit.is_some());
        if self.listing_base == 0 || has_exit || flags & libc::O_PATH as u64 != 0 || self.moves_nothing(pid) {
            return;
        }
        if self.mapping.lists_mount_points(guest) {
            self.set_exit(pid, ExitWork::MoveFd { cloexec: flags & libc::O_CLOEXEC as u64 != 0 });
        }
    }

    /// pidfd_getfd: its descriptor (always close-on-exec) is checked at the exit.
    pub(crate) fn fd_fetch_entry(&mut self, pid: Pid) -> Verdict {
        if self.listing_base != 0 && !self.moves_nothing(pid) {
            self.set_exit(pid, ExitWork::MoveFd { cloexec: true });
        }
        Verdict::Pass
    }

    /// The exit of an open that may have given a listed directory a low number.
    pub(crate) fn move_fd_exit(&mut self, pid: Pid, regs: &Regs, cloexec: bool) {
        let fd = regs.rax as i64;
        if fd < 0 || fd >= i64::from(self.listing_base) || !self.listed(pid, fd as i32) {
            return;
        }
        let cmd = if cloexec { F_DUPFD_CLOEXEC } else { F_DUPFD };
        let args = [fd as u64, u64::from(cmd), u64::from(self.listing_base)];
        self.inject(pid, regs, libc::SYS_fcntl, &args, *regs, Step::Copied { old: fd as i32 });
    }

    /// dup, dup2/dup3 and fcntl(F_DUPFD*) of a descriptor at or above the base to a
    /// number below it (the filter stops no others).
    pub(crate) fn fd_copy_entry(&mut self, pid: Pid, regs: &mut Regs, how: FdCopy) -> Verdict {
        let old = regs.rdi as i32;
        let settled = self.tracees.get(&pid).map_or(true, |t| t.all_getdents || t.filter_failed || t.own_filter);
        if self.listing_base == 0 || settled || !self.listed(pid, old) {
            return Verdict::Pass;
        }
        let saved = *regs;
        let base = u64::from(self.listing_base);
        match how {
            FdCopy::Dup => {
                // dup(old) is fcntl(old, F_DUPFD, 0) (fs/fcntl.c: both clear FD_CLOEXEC).
                regs.orig_rax = libc::SYS_fcntl as u64;
                regs.rsi = u64::from(F_DUPFD);
                regs.rdx = base;
            }
            FdCopy::Fcntl => regs.rdx = base,
            // The caller chose a number below the base: every getdents must stop.
            FdCopy::To => return self.filter_then_rerun(pid, regs),
        }
        self.set_exit(pid, ExitWork::CopyRaised { saved: Box::new(saved) });
        Verdict::Changed
    }

    /// The tracee is about to install a seccomp filter of its own (seccomp(2) with
    /// SECCOMP_SET_MODE_FILTER, or prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER) when
    /// `prctl`): it gets the getdents filter before, and that call runs after it.
    pub(crate) fn filter_before_own(&mut self, pid: Pid, regs: &mut Regs, prctl: bool) -> Option<Verdict> {
        let installs = if prctl { regs.rsi == libc::SECCOMP_MODE_FILTER as u64 } else { regs.rdi == SECCOMP_SET_MODE_FILTER };
        let settled = self.tracees.get(&pid).map_or(true, |t| t.all_getdents || t.filter_failed);
        if self.listing_base == 0 || settled || !installs {
            return None;
        }
        match self.filter_then_rerun(pid, regs) {
            Verdict::Changed => Some(Verdict::Changed),
            _ => None,
        }
    }

    /// At an entry stop: the syscall becomes seccomp(getdents filter), and the one the
    /// tracee made runs again once it returns. `Verdict::Pass` (the syscall as made)
    /// where there is no room to write the filter.
    fn filter_then_rerun(&mut self, pid: Pid, regs: &mut Regs) -> Verdict {
        let saved = *regs;
        if self.getdents_filter_at(pid, regs, false).is_err() {
            self.filter_failed(pid, "no room below the stack");
            return Verdict::Pass;
        }
        self.hold_signals(pid);
        let step = Step::Filtered { then: Finish::Rerun, prctl: false };
        self.set_exit(pid, ExitWork::Injected { saved: Box::new(saved), step });
        Verdict::Changed
    }

    /// A copy whose minimum ptnix raised to the base returned: if the base is beyond
    /// the tracee's RLIMIT_NOFILE (EINVAL) or no number is free there (EMFILE), the
    /// process gets the getdents filter and the copy runs again as it was asked.
    pub(crate) fn copy_raised_exit(&mut self, pid: Pid, regs: &Regs, saved: Regs) {
        let ret = regs.rax as i64;
        if ret == -i64::from(libc::EINVAL) || ret == -i64::from(libc::EMFILE) {
            // (The rerun is not raised again: the process has the filter now, or
            // ptnix has given up on it.)
            self.inject_filter(pid, regs, saved, Finish::Rerun, false);
        }
    }

    /// An injected syscall returned.
    pub(crate) fn injected_exit(&mut self, pid: Pid, regs: &Regs, saved: Regs, step: Step) {
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.injecting = false;
        }
        let ret = regs.rax as i64;
        match step {
            Step::Copied { old } if ret >= 0 => {
                self.inject(pid, regs, libc::SYS_close, &[old as u64], saved, Step::Closed { new: ret as i32 });
            }
            Step::Copied { old } => self.inject_filter(pid, regs, saved, Finish::Return(i64::from(old)), false),
            Step::Closed { new } => self.finish(pid, saved, Finish::Return(i64::from(new))),
            Step::Filtered { then, prctl: false } if ret == -i64::from(libc::ENOSYS) => {
                self.inject_filter(pid, regs, saved, then, true);
            }
            Step::Filtered { then, prctl } => {
                if ret == 0 {
                    self.mark_all_getdents(pid, !prctl);
                } else {
                    // TSYNC refused (another thread has a filter of its own), or no
                    // seccomp at all. Descriptors are still moved on open.
                    self.filter_failed(pid, "refused by the kernel");
                }
                self.finish(pid, saved, then);
            }
        }
    }

    /// `pid` now has the getdents filter, and with `tsync` every thread of its
    /// process (prctl(PR_SET_SECCOMP) filters the calling thread only).
    fn mark_all_getdents(&mut self, pid: Pid, tsync: bool) {
        let mut threads = vec![pid];
        if tsync {
            let tgid = self.tgid(pid);
            let tids: Vec<Pid> = self.tracees.keys().copied().collect();
            threads.extend(tids.into_iter().filter(|&t| self.tgid(t) == tgid));
        }
        for tid in threads {
            if let Some(t) = self.tracees.get_mut(&tid) {
                t.all_getdents = true;
            }
        }
    }

    /// ptnix gives up on a getdents filter for `pid` (and says so with -v): a copy of
    /// a listed directory's descriptor it then makes below the base lists without the
    /// mount points.
    fn filter_failed(&mut self, pid: Pid, why: &str) {
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.filter_failed = true;
        }
        if let Some(log) = self.log.as_mut() {
            log.line(pid, format_args!("getdents filter not installed ({why}): a listed directory copied below descriptor {} lists without mount points", self.listing_base));
        }
    }

    /// Makes the tracee, stopped at a syscall exit, run syscall `nr` with `args` (the
    /// instruction pointer goes back onto its `syscall` instruction); `saved` and
    /// `step` say how to go on when it returns.
    fn inject(&mut self, pid: Pid, regs: &Regs, nr: i64, args: &[u64], saved: Regs, step: Step) {
        if !after_syscall_insn(pid, regs.rip) {
            return self.finish(pid, saved, Finish::Return(saved.rax as i64));
        }
        let mut r = *regs;
        r.rip -= 2;
        r.rax = nr as u64;
        r.orig_rax = nr as u64;
        for (i, &a) in args.iter().enumerate() {
            crate::regs::set_arg(&mut r, i as u8, a);
        }
        self.run_injected(pid, r, saved, step);
    }

    /// Injects seccomp(SET_MODE_FILTER, TSYNC, getdents filter), or with `prctl`
    /// prctl(PR_SET_SECCOMP, ...), at a syscall exit.
    fn inject_filter(&mut self, pid: Pid, regs: &Regs, saved: Regs, then: Finish, prctl: bool) {
        if self.tracees.get(&pid).map_or(true, |t| t.filter_failed) {
            return self.finish(pid, saved, then);
        }
        let mut r = *regs;
        r.rip -= 2;
        if !after_syscall_insn(pid, regs.rip) || self.getdents_filter_at(pid, &mut r, prctl).is_err() {
            self.filter_failed(pid, "cannot run a syscall in it");
            return self.finish(pid, saved, then);
        }
        // Both are in ptnix's filter: their stop is passed through (see `stopped`).
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.injecting = true;
        }
        self.run_injected(pid, r, saved, Step::Filtered { then, prctl });
    }

    fn run_injected(&mut self, pid: Pid, r: Regs, saved: Regs, step: Step) {
        self.hold_signals(pid);
        if ptrace::set_regs(pid, &r).is_err() {
            return;
        }
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.exit = Some(ExitWork::Injected { saved: Box::new(saved), step });
            // The injected syscall's entry stop (PTRACE_SYSCALL) comes first.
            t.skip_entry_stop = self.seccomp;
        }
    }

    /// Blocks the tracee's signals until its own syscall is back (see
    /// [`Engine::release_signals`]): a handler run between two injected syscalls would
    /// make its own syscalls in their place. Pending signals wait; SIGKILL and SIGSTOP
    /// cannot be blocked, and need not be: neither runs tracee code. (A SIGSYS forced by
    /// a filter of the tracee's own that traps an injected syscall would kill it while
    /// blocked, kernel/signal.c force_sig_info_to_task; ptnix injects nothing into a
    /// tracee with a filter of its own, but dirents' lseek.)
    pub(crate) fn hold_signals(&mut self, pid: Pid) {
        let Some(t) = self.tracees.get_mut(&pid) else { return };
        if t.held_sigmask.is_none() {
            // Before Linux 3.11 there is no PTRACE_SETSIGMASK: go on unprotected.
            if let Ok(m) = ptrace::get_sigmask(pid) {
                if ptrace::set_sigmask(pid, !0).is_ok() {
                    t.held_sigmask = Some(m);
                }
            }
        }
    }

    /// Gives the tracee its own signal mask back.
    pub(crate) fn release_signals(&mut self, pid: Pid) {
        if let Some(m) = self.tracees.get_mut(&pid).and_then(|t| t.held_sigmask.take()) {
            let _ = ptrace::set_sigmask(pid, m);
        }
    }

    /// Puts the tracee's own syscall back as `how` says.
    fn finish(&mut self, pid: Pid, mut saved: Regs, how: Finish) {
        match how {
            Finish::Return(v) => saved.rax = v as u64,
            Finish::Rerun => {
                saved.rip -= 2;
                saved.rax = saved.orig_rax;
            }
        }
        let _ = ptrace::set_regs(pid, &saved);
        self.release_signals(pid);
    }

    /// Writes the getdents filter below the tracee's stack and sets `r` up as
    /// seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC [| SPEC_ALLOW], &prog), or with
    /// `prctl` as prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog). The tracee has
    /// no_new_privs (set before ptnix's own filter), which both require.
    fn getdents_filter_at(&mut self, pid: Pid, r: &mut Regs, prctl: bool) -> Result<(), i32> {
        let insns = bpf::to_bytes(&bpf::getdents_filter());
        // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
        let base = (r.rsp - RED_ZONE - 16 - insns.len() as u64) & !15;
        let mut block = Vec::with_capacity(16 + insns.len());
        block.extend_from_slice(&((insns.len() / 8) as u64).to_ne_bytes());
        block.extend_from_slice(&(base + 16).to_ne_bytes());
        block.extend_from_slice(&insns);
        mem::write(pid, base, &block)?;
        let (nr, args) = if prctl {
            (libc::SYS_prctl, [libc::PR_SET_SECCOMP as u64, libc::SECCOMP_MODE_FILTER as u64, base])
        } else {
            // With SPEC_ALLOW where ptnix's own filter got it: else this filter would
            // force the mitigations on the tracee after all (see `spawn::SPEC_ALLOW`).
            let spec = if self.spec_allow { crate::spawn::SPEC_ALLOW } else { 0 };
            (libc::SYS_seccomp, [SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC | spec, base])
        };
        r.rax = nr as u64;
        r.orig_rax = nr as u64;
        (r.rdi, r.rsi, r.rdx) = (args[0], args[1], args[2]);
        Ok(())
    }
}
