//! ptnix's ptrace engine.
//!
//! It spawns the command, installs the seccomp filter built by `ptnix-syscalls`, and
//! runs the event loop: every stop of every tracee (all threads of all processes the
//! command starts) goes through [`engine::Engine`]. All `unsafe` code and all ptrace
//! calls of ptnix live in this crate, behind [`ptrace`] and [`mem`].

mod auxv;
mod dirents;
mod engine;
mod entry;
mod escalate;
mod exec;
mod exit;
mod fscache;
mod listingfd;
mod log;
mod notif;
mod notifopen;
mod ownfilter;
mod placement;
mod procfiles;
pub mod hostfs;
pub mod kernel;
pub mod mem;
pub mod probe;
pub mod ptrace;
mod regs;
mod signals;
mod shim;
mod shortlinks;
mod standins;
pub mod spawn;
mod stats;
pub mod testing;
mod tracee;

pub use engine::{run, Launcher, Options, Outcome, RunError};

/// Whether `ptnix run` gives dynamically linked programs the in-process fast path on
/// this kernel (given that its seccomp filter can be installed): see `shim`.
pub fn fast_path_usable() -> bool {
    shim::kernel_supports()
}

/// Whether `ptnix run` answers the stat family by seccomp notification on this host
/// (given that its seccomp filter can be installed): see `notif`.
pub fn notifications_usable() -> bool {
    mem::probe_self();
    notif::usable()
}
