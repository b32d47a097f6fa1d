//! The in-process fast path: a small object (`tracer/shim/shim.c`) preloaded into
//! dynamically linked x86_64 programs, which makes their stat-family calls, getxattr,
//! access and opens of store paths itself, without a stop or a notification.
//!
//! - ptnix writes the object into its private directory and, at each execve of such a
//!   program, appends `LD_PRELOAD=[what the program had:]OBJECT` and
//!   `PTNIX_SHIM=COOKIE/HOST/STORE` to its environment (glibc's loader takes the last
//!   LD_PRELOAD; the program's own entry stays where it was). The object's constructor
//!   takes both out again: `environ` is the program's own, in order (its children get
//!   them from ptnix at their exec).
//! - The object translates only what the prefix alone decides (`/nix/store/...`, no
//!   `.`, `..` or empty name, a directory part without symlinks: openat2
//!   RESOLVE_NO_SYMLINKS) and makes those calls with the cookie, 64 random bits, in
//!   their sixth argument register, which none of them uses: the filter lets such a
//!   call through (`bpf`, `Optional::shim_cookie`). Everything else it makes as a
//!   plain syscall, which the filter stops as before.
//! - A static or 32-bit program, a program whose environment ptnix cannot read: none
//!   of this happens, and every call goes the usual way. The fast path never decides
//!   anything ptnix would decide differently (`tests/tests/shim.rs` compares every
//!   call on every kind of store path with and without it).

use crate::mem;
use crate::ptrace::Pid;
use crate::shortlinks::ShortLinks;
use std::os::unix::ffi::OsStrExt;

/// The object, built by `build.rs`.
const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ptnix-shim.so"));

const PRELOAD: &[u8] = b"LD_PRELOAD=";
const STORE_VAR: &[u8] = b"PTNIX_SHIM=";

pub(crate) struct Shim {
    /// Where the object is (in ptnix's private directory).
    object: Vec<u8>,
    /// What the object's calls carry in their sixth argument register (which none of
    /// them uses), made from its gadget, for the filter to let them through: random,
    /// never 0.
    pub cookie: u64,
    /// `PTNIX_SHIM=`, the cookie in 16 hex digits, and the store's host directory,
    /// symlinks resolved so far as it exists (a symlink on it would only send every
    /// call the slow way).
    store_entry: Vec<u8>,
}

impl Shim {
    /// Writes the object. None when it cannot be written (no fast path then).
    pub fn install(shortlinks: &mut ShortLinks, store_host: &[u8]) -> Option<Shim> {
        let object = shortlinks.write_file(b"shim.so", OBJECT, 0o555).ok()?;
        if !mappable(&object) {
            return None;
        }
        let cookie = random_cookie()?;
        let mut store_entry = STORE_VAR.to_vec();
        store_entry.extend_from_slice(format!("{cookie:016x}").as_bytes());
        store_entry.extend_from_slice(&canonical_so_far(store_host));
        Some(Shim { object, cookie, store_entry })
    }

    /// The environment for an exec whose envp array is at `envp`: its entries as they
    /// are (but a stale PTNIX_SHIM), then ptnix's two. None when it cannot be read,
    /// or is too large to copy below the caller's stack (see `MAX_BLOCK`).
    pub fn environment(&self, pid: Pid, envp: u64) -> Option<(Vec<u64>, Vec<Vec<u8>>)> {
        let ptrs = crate::exec::read_ptr_array(pid, envp).ok()?;
        let heads = mem::read_prefixes(pid, &ptrs, PRELOAD.len().max(STORE_VAR.len()));
        let mut last_preload = None;
        let mut keep = Vec::with_capacity(ptrs.len());
        for (&p, head) in ptrs.iter().zip(&heads) {
            if head.starts_with(STORE_VAR) {
                continue;
            }
            if head.starts_with(PRELOAD) {
                last_preload = Some(p);
            }
            keep.push(p);
        }
        let theirs = match last_preload {
            Some(p) => Some(mem::read_path(pid, p).ok()?[PRELOAD.len()..].to_vec()),
            None => None,
        };
        let added = vec![ptnix_syscalls::exec::preload_entry(&self.object, theirs.as_deref()), self.store_entry.clone()];
        let size = 8 * (keep.len() + added.len() + 1) + added.iter().map(|a| a.len() + 1).sum::<usize>();
        (size <= MAX_BLOCK).then_some((keep, added))
    }
}

/// The most ptnix writes below a caller's stack pointer for a new environment. The
/// caller may run on a small stack of its own (musl's posix_spawn child has about
/// 5 KiB, partly used): a larger environment goes without the fast path.
const MAX_BLOCK: usize = 2048;

/// Whether the loader can map the object executable: not on a filesystem mounted
/// noexec (a hardened /tmp), where every program would print ld.so's "cannot be
/// preloaded" error instead.
fn mappable(path: &[u8]) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::File::open(std::ffi::OsStr::from_bytes(path)) else { return false };
    // SAFETY: a fresh private read-only mapping of our own file, unmapped at once.
    unsafe {
        let p = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_EXEC, libc::MAP_PRIVATE, f.as_raw_fd(), 0);
        if p == libc::MAP_FAILED {
            return false;
        }
        libc::munmap(p, 4096);
    }
    true
}

/// 64 random bits from the kernel, not 0 (None if getrandom fails).
fn random_cookie() -> Option<u64> {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most 8 bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    let c = u64::from_ne_bytes(b);
    (n == 8 && c != 0).then_some(c)
}

/// `path` with the symlinks of its longest existing prefix resolved.
fn canonical_so_far(path: &[u8]) -> Vec<u8> {
    let mut missing: Vec<&[u8]> = Vec::new();
    let mut at = path;
    loop {
        if let Ok(c) = std::fs::canonicalize(std::ffi::OsStr::from_bytes(at)) {
            let mut out = c.as_os_str().as_bytes().to_vec();
            for m in missing.iter().rev() {
                ptnix_syscalls::path::push(&mut out, m);
            }
            return out;
        }
        match memchr::memrchr(b'/', at) {
            Some(i) if i > 0 => {
                missing.push(&at[i + 1..]);
                at = &at[..i];
            }
            _ => return path.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_so_far_resolves_what_exists() {
        let d = std::env::temp_dir().join(format!("ptnix-shim-test-{}", std::process::id()));
        std::fs::create_dir_all(d.join("real")).unwrap();
        let _ = std::os::unix::fs::symlink(d.join("real"), d.join("link"));
        let real = std::fs::canonicalize(d.join("real")).unwrap();
        let got = canonical_so_far(d.join("link/nix/store").as_os_str().as_bytes());
        assert_eq!(got, real.join("nix/store").as_os_str().as_bytes());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
