//! Handing a notified call over to the tracer, for what the notification supervisor
//! cannot do itself: an open that needs work after it returns (a listed directory's
//! descriptor moved up, see `listingfd`), a `/proc` snapshot, a FIFO's open when too
//! many already wait on threads of their own (see `notifopen`), a call on a path too
//! long for it, a readlink of the `exe` link of a program ptnix started through its
//! loader (see `Sys::notified_link`).
//!
//! A notification cannot become a ptrace stop: every filter's verdict is taken and
//! "the return value with the highest precedence" wins (seccomp(2)), USER_NOTIF over
//! TRACE. So the supervisor makes the tracee run the call again, stopped by ptrace:
//!
//! 1. It asks the tracer thread (the only one ptrace lets act on tracees) for a
//!    PTRACE_INTERRUPT of the caller, kicking it out of `waitpid` with a signal, and
//!    waits until that is done.
//! 2. It answers the notification with -ERESTARTNOINTR. On the way out of the
//!    syscall the kernel finds the interrupt's pending trap: the tracee reports a
//!    PTRACE_EVENT_STOP, and the tracer resumes it with PTRACE_SYSCALL. Then, no
//!    signal being delivered, arch/x86/kernel/signal.c restarts the call
//!    (`regs->ax = regs->orig_ax; regs->ip -= 2` for -ERESTARTNOINTR).
//! 3. The restarted call makes a syscall-entry stop, which ptrace reports before the
//!    filter runs (since Linux 4.8): the tracer translates it as at a seccomp stop.
//!    Its filter then notifies the supervisor again, which lets it run (`pass`), and
//!    the exit stop does the exit work.
//!
//! The interrupt's stop comes at the caller's next return to user space, which is
//! the call's own only if no signal cut the wait first (a handler may be running by
//! then): the tracer takes it over only if the registers show that call about to be
//! restarted (its number, -ERESTART*, and the notification's instruction pointer).
//! Otherwise it lets the tracee go on, and the call, restarted after the handler, is
//! notified and handed over again.

use crate::ptrace::Pid;
use hashbrown::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// The signal that wakes the tracer from `waitpid` (its handler does nothing and is
/// installed without SA_RESTART). Real-time: glibc keeps the first two for itself.
fn kick_signal() -> i32 {
    libc::SIGRTMIN() + 4
}

#[derive(Default)]
struct State {
    /// Callers waiting for their interrupt, with the address after their syscall
    /// instruction (the notification's `instruction_pointer`).
    queue: Vec<(Pid, u64)>,
    /// Whether each interrupt was made (the caller is a tracee and still there).
    done: HashMap<Pid, bool>,
    /// Callers whose next notification the supervisor lets through: the call was
    /// translated at a ptrace stop.
    pass: HashSet<Pid>,
    /// The tracer has stopped: no interrupt will be made.
    closed: bool,
}

pub struct Escalations {
    state: Mutex<State>,
    answered: Condvar,
    pending: AtomicBool,
    tracer: (Pid, Pid),
}

extern "C" fn kicked(_: libc::c_int) {}

impl Escalations {
    /// Called on the tracer thread, which the kick signal targets.
    pub fn new() -> Escalations {
        // SAFETY: installing a handler that does nothing; getpid/gettid cannot fail.
        let tracer = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = kicked as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(kick_signal(), &sa, std::ptr::null_mut());
            (libc::getpid(), libc::gettid())
        };
        Escalations { state: Mutex::default(), answered: Condvar::new(), pending: AtomicBool::new(false), tracer }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Supervisor: has the tracer interrupt `tid`, and waits until it has. False when
    /// it could not (`tid` is gone, or ptnix is ending).
    pub fn interrupt(&self, tid: Pid, ip: u64) -> bool {
        let mut g = self.lock();
        g.queue.push((tid, ip));
        self.pending.store(true, Ordering::Release);
        loop {
            if let Some(ok) = g.done.remove(&tid) {
                return ok;
            }
            if g.closed {
                return false;
            }
            // Kicked again each millisecond: one that lands between the tracer's
            // look at `pending` and its `waitpid` wakes nothing.
            // SAFETY: tgkill of ptnix's own tracer thread.
            unsafe { libc::syscall(libc::SYS_tgkill, self.tracer.0, self.tracer.1, kick_signal()) };
            g = self.answered.wait_timeout(g, Duration::from_millis(1)).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Wakes the tracer from `waitpid` without asking for anything (placement: a
    /// tracee to pin, see `placement::Activity`).
    pub fn kick(&self) {
        // SAFETY: tgkill of ptnix's own tracer thread, whose handler does nothing.
        unsafe { libc::syscall(libc::SYS_tgkill, self.tracer.0, self.tracer.1, kick_signal()) };
    }

    /// Tracer: whether interrupts are asked for (cheap; see [`Self::serve`]).
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Tracer: makes the asked-for interrupts with `interrupt(tid, ip) -> made`.
    pub fn serve(&self, mut interrupt: impl FnMut(Pid, u64) -> bool) {
        self.pending.store(false, Ordering::Release);
        let queue = std::mem::take(&mut self.lock().queue);
        if queue.is_empty() {
            return;
        }
        let done: Vec<(Pid, bool)> = queue.into_iter().map(|(t, ip)| (t, interrupt(t, ip))).collect();
        self.lock().done.extend(done);
        self.answered.notify_all();
    }

    /// Tracer: the event loop has ended.
    pub fn close(&self) {
        self.lock().closed = true;
        self.answered.notify_all();
    }

    /// Tracer: `tid`'s next notified call has been translated already.
    pub fn set_pass(&self, tid: Pid, on: bool) {
        let mut g = self.lock();
        if on {
            g.pass.insert(tid);
        } else {
            g.pass.remove(&tid);
        }
    }

    /// Supervisor: whether to let this call of `tid` through (once).
    pub fn take_pass(&self, tid: Pid) -> bool {
        self.lock().pass.remove(&tid)
    }

    /// Tracer: `tid` is gone.
    pub fn forget(&self, tid: Pid) {
        let mut g = self.lock();
        g.pass.remove(&tid);
    }
}

/// At the interrupt's stop: whether `tid` is about to restart the notified call made
/// at `ip` (arch/x86/kernel/signal.c restarts a call that returned -ERESTARTSYS or
/// -ERESTARTNOINTR when no handler runs, from the same instruction).
pub fn restarting(tid: Pid, ip: u64) -> bool {
    use crate::regs::{ERESTARTNOINTR, ERESTARTSYS};
    crate::ptrace::get_regs(tid).is_ok_and(|r| {
        r.rip == ip
            && matches!(r.rax as i64, ERESTARTSYS | ERESTARTNOINTR)
            // Any call the supervisor gets (not only those it hands over now): one it
            // handed over but not taken here would be handed over again, for ever.
            && ptnix_syscalls::table::Sys::from_nr(r.orig_rax).is_some_and(|s| s.notified_with(true))
    })
}
