//! SIGINT, SIGTERM and SIGHUP sent to ptnix are passed on to the command.
//!
//! A terminal's ^C already reaches the command, which is in ptnix's foreground process
//! group; such a signal (si_code SI_KERNEL) is not sent twice. A signal from kill(2)
//! (SI_USER, SI_QUEUE, SI_TKILL: si_code <= 0) is forwarded to the command, as if
//! ptnix were the command itself.

use std::sync::atomic::{AtomicI32, Ordering};

static ROOT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let code = unsafe { (*info).si_code };
    let root = ROOT.load(Ordering::Relaxed);
    if code <= 0 && root > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(root, sig) };
    } else if code <= 0 {
        // The command is gone but tracees it left behind still run: die of the signal,
        // and PTRACE_O_EXITKILL takes them down with ptnix.
        // SAFETY: signal and raise are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
}

/// Starts forwarding to `pid`.
pub fn forward_to(pid: libc::pid_t) {
    ROOT.store(pid, Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installing a handler that only calls async-signal-safe functions.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The command has exited: its pid may be reused, so stop forwarding.
pub fn root_gone() {
    ROOT.store(0, Ordering::Relaxed);
}
