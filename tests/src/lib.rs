//! Support library for ptnix's end-to-end tests.
//!
//! Every test runs real programs under the real `ptnix` binary, as an unprivileged
//! user (ptnix is meant for users without root; running the tracees as root would hide
//! permission bugs and let a translation bug write to the host's own `/nix`).
//!
//! - [`env`]: where the ptnix binary is, the per-process temp root, the test user.
//! - [`fixture`]: one test's store, HOME and work directory, and host-side setup.
//! - [`run`]: running a command with a timeout and collecting its output.
//! - [`cprog`]: compiling the C programs in `tests/c/`.
//! - [`parity`]: comparing ptnix's /nix with the kernel's behaviour on a real directory.
//! - [`paths`]: a store and host directory with every kind of path, to compare answers.
//! - [`prereq`]: checking for python3, cc, nix-store...: skip loudly, or fail under CI.
//!
//! Knobs (environment of `cargo test`): `PTNIX_BIN` (the binary to test, default
//! `target/<profile>/ptnix`), `PTNIX_TEST_KEEP=1` (keep the temp directories),
//! `PTNIX_TEST_TMP` (where they go, default /tmp), `PTNIX_TEST_SEED` (resolution.rs),
//! `CI=true` (missing prerequisites fail instead of skipping).

pub mod cprog;
pub mod env;
pub mod fixture;
pub mod nixenv;
pub mod nixstore;
pub mod parity;
pub mod paths;
pub mod prereq;
pub mod run;

pub use cprog::{c_prog, c_prog_with};
pub use env::under_ci;
pub use fixture::Fixture;
pub use fixture::PYTHON;
pub use parity::{assert_same, ParityRoots};
pub use paths::{host_dir, store_paths};
pub use prereq::{prerequisites, Need};
pub use run::{os, Invocation, Output, Running};

/// How ptnix intercepts syscalls: with a seccomp filter that stops only the syscalls
/// that carry paths and sends the stat family to its notification supervisor (the
/// default), with that filter but a ptrace stop for the stat family too
/// (`--no-notif`: kernels before 5.6, ptnix as root), or with plain ptrace stops at
/// every syscall (`--no-seccomp`). All must behave identically, so every test runs in
/// each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Seccomp,
    SeccompStops,
    Ptrace,
}

impl Mode {
    /// The `ptnix run` flags that select this mode.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Mode::Seccomp => &[],
            Mode::SeccompStops => &["--no-notif"],
            Mode::Ptrace => &["--no-seccomp"],
        }
    }

    /// The seccomp filter is in place (the first two modes).
    pub fn seccomp(self) -> bool {
        self != Mode::Ptrace
    }
}

/// Generates each test twice, once per [`Mode`]:
///
/// ```text
/// both_modes! {
///     fn creates_files(m: Mode) { let fx = Fixture::new(m); ... }
/// }
/// ```
///
/// becomes `mod creates_files { #[test] fn seccomp() ; #[test] fn seccomp_stops() ;
/// #[test] fn ptrace() }`, so a failure names the mode (`creates_files::ptrace`).
#[macro_export]
macro_rules! both_modes {
    ($($(#[$attr:meta])* fn $name:ident($m:ident : Mode) $body:block)*) => {
        $(
            $(#[$attr])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                fn body($m: $crate::Mode) $body

                #[test]
                fn seccomp() {
                    body($crate::Mode::Seccomp)
                }

                #[test]
                fn seccomp_stops() {
                    body($crate::Mode::SeccompStops)
                }

                #[test]
                fn ptrace() {
                    body($crate::Mode::Ptrace)
                }
            }
        )*
    };
}

/// Returns from the test (after a loud "SKIPPED" line) if a program it needs is
/// missing, or panics when `CI=true`: CI must never skip silently.
///
/// `require!(Python3, Cc);`
#[macro_export]
macro_rules! require {
    ($($need:ident),+ $(,)?) => {
        if !$crate::prerequisites(&[$($crate::Need::$need),+]) {
            return;
        }
    };
}
