//! Programs the tests need besides ptnix. A missing one skips the test loudly on a
//! developer's machine, and fails it under CI (`CI=true`), which must never skip.

use crate::env::{under_ci, TRACEE_PATH};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// /usr/bin/python3 (the system one: readable by the test user).
    Python3,
    /// /bin/sh
    Sh,
    /// GNU coreutils (stat, ls, readlink, realpath, ...).
    Coreutils,
    /// A C compiler for tests/c.
    Cc,
    /// nix-store and nix, in the tracee's PATH.
    Nix,
    /// The tests were started as root (and so run tracees as the test user): only
    /// root can make the root-owned directories some tests need.
    Root,
}

/// `name` in the tracee PATH (the tools must be reachable by the test user too).
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    TRACEE_PATH
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn missing(n: Need) -> Option<String> {
    let files: &[&str] = match n {
        Need::Python3 => &["/usr/bin/python3"],
        Need::Sh => &["/bin/sh"],
        Need::Coreutils => &[
            "/bin/ls",
            "/usr/bin/stat",
            "/usr/bin/readlink",
            "/usr/bin/realpath",
            "/usr/bin/env",
        ],
        Need::Cc => {
            return find_in_path("cc")
                .is_none()
                .then(|| "cc (in PATH)".to_string())
        }
        Need::Root => {
            // SAFETY: geteuid cannot fail.
            return (unsafe { libc::geteuid() } != 0).then(|| "root (the tests must be started as root)".to_string());
        }
        Need::Nix => {
            let m: Vec<&str> = ["nix-store", "nix"]
                .into_iter()
                .filter(|t| find_in_path(t).is_none())
                .collect();
            return (!m.is_empty())
                .then(|| format!("{} (in PATH; Debian package nix-bin)", m.join(", ")));
        }
    };
    let m: Vec<&str> = files
        .iter()
        .copied()
        .filter(|f| !Path::new(f).exists())
        .collect();
    (!m.is_empty()).then(|| m.join(", "))
}

/// True if everything in `needs` is present. Otherwise: panics under CI, else prints a
/// loud SKIPPED line straight to the terminal (bypassing the test harness's capture)
/// and returns false.
pub fn prerequisites(needs: &[Need]) -> bool {
    let m: Vec<String> = needs.iter().filter_map(|&n| missing(n)).collect();
    if m.is_empty() {
        return true;
    }
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let msg = format!("missing prerequisite(s) for {test}: {}", m.join("; "));
    if under_ci() {
        panic!("{msg} (CI=true: refusing to skip)");
    }
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {msg} ***\n");
    false
}
