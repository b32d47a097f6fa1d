//! The in-process fast path: a small object (`tracer/shim/shim.c`) loaded into
//! dynamically linked x86_64 programs, which makes their stat-family calls, getxattr,
//! access and opens of paths under /nix, and of host paths and lone names ptnix would
//! leave as they are, itself, without a stop or a notification.
//!
//! - ptnix writes the object into a sealed memfd of its own, which programs open as
//!   `/proc/PTNIX/fd/N` (else into its private directory; see `in_memory`), with the
//!   cookie, its own path and the host store filled into a slot of it
//!   (`CONFIG_MAGIC`), and at each execve of such a program appends
//!   `LD_PRELOAD=[what the program had:]OBJECT` to its environment (glibc's loader
//!   takes the last LD_PRELOAD; the program's own entry stays where it was). The
//!   object's constructor takes it out again: `environ` is the program's own, in
//!   order (its children get it from ptnix at their exec).
//! - Where ptnix starts the program through glibc's loader (2.35+, see `LoaderKind`),
//!   it names the object with `--audit` instead (unless the environment has one of
//!   `SEARCH_VARS`), and adds nothing to the environment: the loader loads one copy,
//!   not two, which answers the loader's library searches in store directories
//!   (`la_objsearch` in shim.c), each otherwise a round trip to ptnix per directory
//!   tried, and binds the program's calls of libc's functions it defines to its own
//!   (`la_symbind64`), as a preloaded copy would have taken them.
//! - The object translates only what the prefix alone decides (`/nix/store/...`, all
//!   of `/nix` where nothing is bound inside it, a host path under and above no bind
//!   and not in /proc; no `.`, `..` or empty name, a directory part without
//!   symlinks: openat2 RESOLVE_NO_SYMLINKS) and makes those calls with the cookie,
//!   64 random bits, in their sixth argument register, which none of them uses: the
//!   filter lets such a call through (`bpf`, `Optional::shim_cookie`). Everything else it makes as a
//!   plain syscall, which the filter stops as before.
//! - A static or 32-bit program, a program whose environment ptnix cannot read: none
//!   of this happens, and every call goes the usual way. The fast path never decides
//!   anything ptnix would decide differently (`tests/tests/shim.rs` compares every
//!   call on every kind of store path with and without it).

use crate::mem;
use crate::ptrace::Pid;
use crate::shortlinks::ShortLinks;
use std::os::unix::ffi::OsStrExt;

/// Whether the kernel can run the object: its gadget page is mapped with
/// MAP_FIXED_NOREPLACE (Linux 4.17; before, the flag is ignored, and a second copy of
/// the object, one preloaded after the auditor, would take the address for a hint).
/// It checks directories for symlinks with openat2 (5.6) where there is one, else
/// name by name.
pub(crate) fn kernel_supports() -> bool {
    crate::kernel::at_least(4, 17)
}

/// The object, built by `build.rs`.
const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ptnix-shim.so"));

const PRELOAD: &[u8] = b"LD_PRELOAD=";
/// Entries with which the object's auditor stays out of the loader's library search:
/// those that change the search (it knows the search only without them), and the
/// loader's debug output, which shows it.
const SEARCH_VARS: [&[u8]; 3] = [b"LD_LIBRARY_PATH=", b"LD_AUDIT=", b"LD_DEBUG="];
/// `ldd`'s listing (any value): the loader lists the libraries and runs nothing, and
/// the listing would show the object.
const TRACE_VAR: &[u8] = b"LD_TRACE_LOADED_OBJECTS=";
/// The start of the object's `struct config` (shim.c): then the cookie (u64), the
/// object's path and the host store (PATH_MAX each, NUL-terminated), the lone
/// names ptnix looks at more closely (`CONFIG_SPECIAL` bytes: each ended by a NUL,
/// the list by an empty one), a word of flags (`FLAG_*`), and the guest paths below
/// and above which host paths are not plain (`CONFIG_PREFIXES` bytes, a list as the
/// names').
const CONFIG_MAGIC: &[u8] = b"ptnix in-process fast path cfg\0";
const CONFIG_PATH: usize = 4096;
const CONFIG_SPECIAL: usize = 1024;
/// The object acts as on a kernel without openat2 (before Linux 5.6), where it walks
/// directories name by name instead (shim.c `walk_dir`): set for ptnix's tests by
/// `PTNIX_TEST_NO_OPENAT2=1`, since the kernels they run on have openat2.
const FLAG_NO_OPENAT2: u64 = 1;
/// All of `/nix` maps by prefix alone, to the parent of the host store (the slot's
/// store path without its last `/store`): the object translates every path below
/// `/nix` (`/nix/var/nix/db`, profiles, gcroots), not only store paths.
const FLAG_PLAIN_NIX: u64 = 2;
/// The guest's root is the host's: the object makes calls on absolute host paths
/// that ptnix leaves as they are itself (shim.c `host_path`), away from the
/// `CONFIG_PREFIXES` list.
const FLAG_HOST_PATHS: u64 = 4;
/// ptnix runs without root and without capabilities: it can search no directory the
/// program cannot, so an EACCES of the object's own lookup is the answer ptnix's walk
/// would come to (shim.c `unreachable`). Not so where ptnix is root and a program
/// dropped to another user: ptnix may look further and find a symlink.
const FLAG_EACCES_FINAL: u64 = 8;
const CONFIG_PREFIXES: usize = 1024;

pub(crate) struct Shim {
    /// Where the object is: `/proc/PTNIX/fd/N` (see [`in_memory`]), else a file in
    /// ptnix's private directory.
    pub object: Vec<u8>,
    /// What the object's calls carry in their sixth argument register (which none of
    /// them uses), made from its gadget, for the filter to let them through: random,
    /// never 0.
    pub cookie: u64,
    /// The memfd that holds the object, open while ptnix runs.
    memfd: Option<std::os::fd::OwnedFd>,
}

/// What ptnix adds to an exec's environment for the object.
pub(crate) struct ShimEnv {
    /// The envp pointers kept, in order.
    pub keep: Vec<u64>,
    /// The entries appended.
    pub added: Vec<Vec<u8>>,
    /// No entry changes the loader's library search: the object may answer it.
    pub plain_search: bool,
}

impl Shim {
    /// Writes the object. None when it cannot be written (no fast path then).
    /// `special`: the lone names (a name without a slash) that ptnix does not leave as
    /// they are even alone (hostfs::lone_name_unchanged), which the object then
    /// leaves to ptnix.
    /// `nix_host`: the host directory of `/nix` where all of it maps by prefix alone.
    /// `prefixes`: where the guest's root is the host's, the guest paths below and
    /// above which a host path is not left as it is (ptnix's binds), else None.
    pub fn install(shortlinks: &mut ShortLinks, store_host: &[u8], nix_host: Option<&[u8]>, prefixes: Option<Vec<Vec<u8>>>, special: &[Vec<u8>]) -> Option<Shim> {
        let cookie = random_cookie()?;
        let mut flags = if std::env::var_os("PTNIX_TEST_NO_OPENAT2").is_some_and(|v| v == "1") { FLAG_NO_OPENAT2 } else { 0 };
        let store = canonical_so_far(store_host);
        // The object finds /nix's host directory as the store's parent: only where
        // the two are so on the host too (the store no symlink elsewhere).
        if nix_host.is_some_and(|n| [canonical_so_far(n), b"/store".to_vec()].concat() == store) {
            flags |= FLAG_PLAIN_NIX;
        }
        // /proc: the files and magic links ptnix rewrites.
        let prefixes: Vec<Vec<u8>> = prefixes.map(|p| p.into_iter().chain([b"/proc".to_vec()]).collect()).unwrap_or_default();
        if !prefixes.is_empty() {
            flags |= FLAG_HOST_PATHS;
        }
        if crate::notif::unprivileged() {
            flags |= FLAG_EACCES_FINAL;
        }
        let content = |path: &[u8]| configured(OBJECT, cookie, path, &store, special, flags, &prefixes);
        let in_file = std::env::var_os("PTNIX_TEST_SHIM_FILE").is_some_and(|v| v == "1");
        if let Some((memfd, object)) = (!in_file).then(|| in_memory(&content)).flatten() {
            return Some(Shim { object, cookie, memfd: Some(memfd) });
        }
        let path = shortlinks.file_path(b"shim.so").ok()?;
        let object = shortlinks.write_file(b"shim.so", &content(&path)?, 0o555).ok()?;
        if !mappable(&object) {
            return None;
        }
        Some(Shim { object, cookie, memfd: None })
    }

    /// The object is reached through `/proc/PTNIX/fd/N` (see [`in_memory`]), which
    /// a process in a Landlock domain of its own cannot open.
    pub fn through_proc(&self) -> bool {
        self.memfd.is_some()
    }

    /// Whether the object defines the function `name` (one its auditor binds a
    /// program's calls of). Read from the object at the first exec that asks, not at
    /// start.
    pub fn defines(&self, name: &[u8]) -> bool {
        static NAMES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
        NAMES.get_or_init(|| exported(OBJECT)).binary_search_by(|n| n.as_slice().cmp(name)).is_ok()
    }

    /// The environment for an exec whose envp array is at `envp`: its entries as they
    /// are, then ptnix's. None when it cannot be read, is too large to copy below the
    /// caller's stack (see `MAX_BLOCK`), or asks the loader for `ldd`'s listing.
    pub fn environment(&self, pid: Pid, envp: u64) -> Option<ShimEnv> {
        let keep = crate::exec::read_ptr_array(pid, envp).ok()?;
        let heads = mem::read_prefixes(pid, &keep, TRACE_VAR.len());
        if heads.iter().any(|h| h.starts_with(TRACE_VAR)) {
            return None;
        }
        let last_preload = keep.iter().zip(&heads).filter(|(_, h)| h.starts_with(PRELOAD)).map(|(&p, _)| p).last();
        let plain_search = !heads.iter().any(|h| SEARCH_VARS.iter().any(|v| h.starts_with(v)));
        let theirs = match last_preload {
            Some(p) => Some(mem::read_path(pid, p).ok()?[PRELOAD.len()..].to_vec()),
            None => None,
        };
        let added = vec![ptnix_syscalls::exec::preload_entry(&self.object, theirs.as_deref())];
        let size = 8 * (keep.len() + added.len() + 1) + added.iter().map(|a| a.len() + 1).sum::<usize>();
        (size <= MAX_BLOCK).then_some(ShimEnv { keep, added, plain_search })
    }
}

/// The object with its configuration slot filled: `cookie`, its own `path`, the
/// canonical host `store`, the `special` lone names and `flags`. None if the slot is
/// not found once, or something does not fit.
fn configured(object: &[u8], cookie: u64, path: &[u8], store: &[u8], special: &[Vec<u8>], mut flags: u64, prefixes: &[Vec<u8>]) -> Option<Vec<u8>> {
    let at = memchr::memmem::find(object, CONFIG_MAGIC)?;
    if memchr::memmem::find(&object[at + 1..], CONFIG_MAGIC).is_some() || path.len() >= CONFIG_PATH || store.len() >= CONFIG_PATH {
        return None;
    }
    let mut out = object.to_vec();
    let mut w = at + 32;
    out[w..w + 8].copy_from_slice(&cookie.to_ne_bytes());
    w += 8;
    for s in [path, store] {
        out.get_mut(w..w + s.len())?.copy_from_slice(s);
        w += CONFIG_PATH;
    }
    let mut list = nul_list(special);
    if list.len() >= CONFIG_SPECIAL {
        // Too many to say: a list without its end, which makes every lone name
        // special (shim.c `special`), so that only lone names lose the fast path.
        list = vec![b'/'; CONFIG_SPECIAL];
    }
    out.get_mut(w..w + list.len())?.copy_from_slice(&list);
    w += CONFIG_SPECIAL;
    let mut list = nul_list(prefixes);
    if list.len() >= CONFIG_PREFIXES {
        // Too many to say: no host path is left to the object.
        flags &= !FLAG_HOST_PATHS;
        list.clear();
    }
    out.get_mut(w..w + 8)?.copy_from_slice(&flags.to_ne_bytes());
    w += 8;
    out.get_mut(w..w + list.len())?.copy_from_slice(&list);
    Some(out)
}

/// `items` as a list of the slot's (each ended by a NUL; the slot's zeroes end the
/// list), without empty ones and ones with a NUL, which it cannot hold.
fn nul_list(items: &[Vec<u8>]) -> Vec<u8> {
    items.iter().filter(|n| !n.is_empty() && !n.contains(&0)).flat_map(|n| n.iter().copied().chain([0])).collect()
}

/// The functions `object` exports (sorted), but its rtld-audit entry points (`la_`).
fn exported(object: &[u8]) -> Vec<Vec<u8>> {
    let mut names = ptnix_syscalls::elf::defined_functions(object);
    names.retain(|n| !n.starts_with(b"la_"));
    names
}

/// The most ptnix writes below a caller's stack pointer for a new environment. The
/// caller may run on a small stack of its own (musl's posix_spawn child has about
/// 5 KiB, partly used): a larger environment goes without the fast path.
const MAX_BLOCK: usize = 2048;

/// memfd_create(2): "MFD_EXEC (since Linux 6.3): Set the executable bit on the memfd";
/// without it a host may make memfds noexec by default (vm.memfd_noexec = 1). Older
/// kernels refuse the unknown flag with EINVAL.
const MFD_EXEC: libc::c_uint = 0x10;

/// The object in a sealed memfd of ptnix's, and the path by which every tracee's
/// loader opens it: `/proc/PTNIX/fd/N`. A file in the private directory costs a
/// directory, a file written, and their removal at exit, at every start (0.5 ms of
/// `ptnix run -- true`'s). None where the kernel has no memfd (before 3.17: CentOS 7),
/// refuses an executable one (vm.memfd_noexec = 2), or where tracees could not open
/// the link: proc(5), /proc/PID/fd: access is governed by "a ptrace access mode
/// PTRACE_MODE_READ_FSCREDS check", which a process of the same user passes unless
/// ptnix is not dumpable (an unreadable binary, prctl(2) PR_SET_DUMPABLE). The seals
/// keep its content as written: no tracee can change what others load.
fn in_memory(content: &dyn Fn(&[u8]) -> Option<Vec<u8>>) -> Option<(std::os::fd::OwnedFd, Vec<u8>)> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_GET_DUMPABLE) } != 1 {
        return None;
    }
    let name = c"ptnix-shim.so";
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create of a valid C string; the descriptor is owned below.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && crate::ptrace::last_errno() == libc::EINVAL {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if fd < 0 {
        return None;
    }
    // SAFETY: a descriptor just made, owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let path = format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd()).into_bytes();
    let bytes = content(&path)?;
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, &bytes).ok()?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl with integer arguments on our own descriptor.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 || !mappable(&path) {
        return None;
    }
    // The path names this memfd: not so where /proc is another PID namespace's.
    use std::os::unix::fs::MetadataExt;
    let (Ok(by_path), Ok(own)) = (std::fs::metadata(std::ffi::OsStr::from_bytes(&path)), file.metadata()) else { return None };
    if (by_path.dev(), by_path.ino()) != (own.dev(), own.ino()) {
        return None;
    }
    Some((file.into(), path))
}

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
    fn the_object_has_one_slot_and_it_is_filled() {
        let out = configured(OBJECT, 0x1122_3344_5566_7788, b"/tmp/ptX/shim.so", b"/home/u/nix/store", &[b"nix".to_vec(), b"maps".to_vec()], FLAG_NO_OPENAT2 | FLAG_HOST_PATHS, &[b"/nix".to_vec(), b"/proc".to_vec()]).unwrap();
        let at = memchr::memmem::find(&out, CONFIG_MAGIC).unwrap();
        assert_eq!(out.len(), OBJECT.len());
        assert_eq!(&out[at + 32..at + 40], &0x1122_3344_5566_7788u64.to_ne_bytes());
        assert!(out[at + 40..].starts_with(b"/tmp/ptX/shim.so\0"));
        assert!(out[at + 40 + CONFIG_PATH..].starts_with(b"/home/u/nix/store\0"));
        assert!(out[at + 40 + 2 * CONFIG_PATH..].starts_with(b"nix\0maps\0\0"));
        let flags_at = at + 40 + 2 * CONFIG_PATH + CONFIG_SPECIAL;
        assert_eq!(&out[flags_at..][..8], &(FLAG_NO_OPENAT2 | FLAG_HOST_PATHS).to_ne_bytes());
        assert!(out[flags_at + 8..].starts_with(b"/nix\0/proc\0\0"));
        assert_eq!(configured(OBJECT, 1, &[b'a'; CONFIG_PATH], b"/s", &[], 0, &[]), None);
        let many = configured(OBJECT, 1, b"/p", b"/s", &[vec![b'n'; CONFIG_SPECIAL]], 0, &[]).unwrap();
        assert!(!many[at + 40 + 2 * CONFIG_PATH..][..CONFIG_SPECIAL].contains(&0));
        // Too many prefixes to say: no host paths.
        let long = configured(OBJECT, 1, b"/p", b"/s", &[], FLAG_HOST_PATHS, &[vec![b'/'; CONFIG_PREFIXES]]).unwrap();
        assert_eq!(&long[flags_at..][..8], &0u64.to_ne_bytes());
    }

    #[test]
    fn the_object_exports_the_calls_it_makes() {
        let names = exported(OBJECT);
        for n in ["stat", "lstat", "open", "openat64", "opendir", "access", "readlink", "statx", "__xstat"] {
            assert!(names.iter().any(|x| x == n.as_bytes()), "{n} not in {names:?}");
        }
        assert!(!names.iter().any(|n| n.starts_with(b"la_") || n == b"fdopendir" || n == b"__errno_location"), "{names:?}");
    }

    #[test]
    fn got_references_are_found() {
        // The object reaches libc's __errno_location (weak) through its GOT, and
        // none of its own functions.
        use ptnix_syscalls::elf::got_references_in;
        assert!(got_references_in(OBJECT, &|n| n == b"__errno_location"));
        assert!(!got_references_in(OBJECT, &|n| exported(OBJECT).iter().any(|x| x == n)));
        assert!(!got_references_in(b"\x7fELF", &|_| true));
    }

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
