//! [`HostFs`] over the real filesystem, as seen by one tracee.
//!
//! The tracer does its lookups in its own process, so the few paths whose meaning
//! depends on who asks are rewritten first: `/proc/self` and `/proc/thread-self` name
//! the tracee, not ptnix.

use crate::ptrace::{last_errno, Pid};
use ptnix_syscalls::path::{has_prefix, parse_decimal, PATH_MAX};
use ptnix_syscalls::exec::ExecFs;
use ptnix_syscalls::mapping::Mapping;
use ptnix_syscalls::resolve::{DirCheck, HostFs, Kind, Request};
use ptnix_syscalls::Errno;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

pub struct TraceeFs<'a> {
    pub tgid: Pid,
    pub tid: Pid,
    pub cache: &'a mut crate::fscache::FsCache,
    pub stats: &'a mut crate::stats::Stats,
}

impl TraceeFs<'_> {
    /// The path as the tracer must look it up.
    pub(crate) fn local(&self, host: &[u8]) -> Vec<u8> {
        for (name, with) in [
            (&b"/proc/self"[..], format!("/proc/{}", self.tgid)),
            (&b"/proc/thread-self"[..], format!("/proc/{}/task/{}", self.tgid, self.tid)),
        ] {
            if has_prefix(host, name) {
                let mut v = with.into_bytes();
                v.extend_from_slice(&host[name.len()..]);
                return v;
            }
        }
        host.to_vec()
    }
}

fn cstring(p: Vec<u8>) -> Result<CString, Errno> {
    CString::new(p).map_err(|_| libc::EINVAL)
}

/// True for a symlink under `/proc/<pid>/`: all of those are magic links (exe, cwd,
/// root, fd/N, map_files/..., ns/..., task/<tid>/...).
pub fn is_proc_pid_path(p: &[u8]) -> bool {
    let Some(rest) = p.strip_prefix(b"/proc/") else { return false };
    let end = memchr::memchr(b'/', rest).unwrap_or(rest.len());
    end < rest.len() && parse_decimal(&rest[..end]).is_some()
}

/// The number after `key` (e.g. `b"Tgid:"`) in a `/proc` file of `key: value` lines
/// (/proc/PID/status, /proc/PID/fdinfo/FD).
pub fn proc_field(file: &str, key: &[u8]) -> Option<u64> {
    let s = std::fs::read(file).ok()?;
    let line = s.split(|&b| b == b'\n').find(|l| l.starts_with(key))?;
    let digits: Vec<u8> = line[key.len()..].iter().copied().filter(u8::is_ascii_digit).collect();
    parse_decimal(&digits)
}

/// A tracee's thread group and parent, from `/proc/PID/status`.
pub fn proc_tgid(pid: Pid) -> Option<Pid> {
    proc_field(&format!("/proc/{pid}/status"), b"Tgid:").map(|n| n as Pid)
}
pub fn proc_ppid(pid: Pid) -> Option<Pid> {
    proc_field(&format!("/proc/{pid}/status"), b"PPid:").map(|n| n as Pid)
}

/// The directory tracee `tid` resolves a relative path from (its cwd for AT_FDCWD,
/// else descriptor `fd`'s), as a host path; None for a bad or non-directory `fd`
/// (`pipe:[...]`), which the kernel refuses itself (EBADF, ENOTDIR).
pub fn start_dir_host(tid: Pid, fd: i32) -> Option<Vec<u8>> {
    let link = if fd == libc::AT_FDCWD { format!("/proc/{tid}/cwd") } else { format!("/proc/{tid}/fd/{fd}") };
    readlink(link.as_bytes()).ok().filter(|h| h.first() == Some(&b'/'))
}

/// The lone names [`lone_name_unchanged`] never passes, and the names an open of
/// which ptnix looks at in full even alone (`Mapping::may_name_listed_dir`, the /proc
/// files it snapshots): for the in-process fast path, which leaves them to ptnix.
pub(crate) fn special_lone_names(map: &Mapping) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = crate::procfiles::SNAPSHOT_FILES.iter().map(|n| n.to_vec()).collect();
    for m in map.mount_points() {
        names.push(m.name.clone());
        names.extend(Some(m.parent_name()).filter(|n| !n.is_empty()).map(<[u8]>::to_vec));
    }
    names.sort();
    names.dedup();
    names
}

/// A relative path of one name (`foo`, as `find` passes with a dirfd) resolves in the
/// guest exactly as on the host unless the name is a mount point's, or it is a symlink
/// that is followed. That needs no lookup at all, or one `lstat` through the tracee's
/// own cwd or dirfd link (`fd`), instead of reading the directory's path.
pub(crate) fn lone_name_unchanged(map: &Mapping, fs: &mut TraceeFs<'_>, fd: i32, req: Request<'_>) -> bool {
    let p = req.path;
    if p.is_empty() || p == b"." || p == b".." || memchr::memchr(b'/', p).is_some() {
        return false;
    }
    if map.mount_points().iter().any(|m| m.name == p) {
        return false;
    }
    if !req.follow_last {
        fs.stats.lone_names += 1;
        return true;
    }
    let tid = fs.tid;
    let mut via = if fd == libc::AT_FDCWD { format!("/proc/{tid}/cwd/") } else { format!("/proc/{tid}/fd/{fd}/") }.into_bytes();
    via.extend_from_slice(p);
    !matches!(HostFs::lstat(fs, &via), Ok(Kind::Symlink | Kind::MagicLink))
}

/// What readlink of `guest` (`host` on the host) shows where it is one of `/proc`'s
/// magic links (`exe`, `cwd`, `root`, `fd/N`, ...): the guest path of its target, or
/// `exe`, the program's guest path for a process ptnix started through its loader
/// (the kernel would name the host path, or the loader). None where it is no magic
/// link, or cannot be read.
pub(crate) fn magic_link_shown(map: &Mapping, fs: &mut TraceeFs<'_>, guest: &[u8], host: &[u8], exe: Option<Vec<u8>>) -> Option<Vec<u8>> {
    if !guest.starts_with(b"/proc/") || !matches!(HostFs::lstat(fs, host), Ok(Kind::MagicLink)) {
        return None;
    }
    let target = HostFs::readlink(fs, host).ok()?;
    Some(match exe {
        Some(exe) => exe,
        None if target.first() == Some(&b'/') => map.to_guest(&target),
        None => target,
    })
}

/// readlink(2) into a fresh Vec.
pub fn readlink(p: &[u8]) -> Result<Vec<u8>, Errno> {
    readlink_at(libc::AT_FDCWD, &cstring(p.to_vec())?)
}

/// readlinkat(2) of `name` relative to `dirfd`, into a fresh Vec.
pub fn readlink_at(dirfd: i32, name: &std::ffi::CStr) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; PATH_MAX];
    // SAFETY: `buf` has PATH_MAX writable bytes; `name` is a valid C string.
    let n = unsafe { libc::readlinkat(dirfd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(last_errno());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// lstat(2) of a host path.
pub fn lstat(p: &[u8]) -> Result<libc::stat, Errno> {
    let c = cstring(p.to_vec())?;
    // SAFETY: `st` is plain old data filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::lstat(c.as_ptr(), &mut st) } != 0 {
        return Err(last_errno());
    }
    Ok(st)
}

/// An O_PATH descriptor of directory `p` (relative to `dirfd`), symlinks followed as
/// the kernel follows them in a path's directories.
pub fn open_dir_at(dirfd: i32, p: &[u8]) -> Result<std::os::fd::OwnedFd, Errno> {
    use std::os::fd::FromRawFd;
    let c = cstring(p.to_vec())?;
    // SAFETY: openat of a valid C string; the descriptor is owned from here on.
    let fd = unsafe { libc::openat(dirfd, c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(last_errno());
    }
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

fn lstat_kind(local: &[u8]) -> Result<Kind, Errno> {
    let magic = is_proc_pid_path(local);
    let st = lstat(local)?;
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK if magic => Kind::MagicLink,
        libc::S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    })
}

impl HostFs for TraceeFs<'_> {
    fn lstat(&mut self, host: &[u8]) -> Result<Kind, Errno> {
        let local = self.local(host);
        if let Some(known) = self.cache.entry_known(&local) {
            self.stats.cache_hits += 1;
            return known;
        }
        self.stats.lstat += 1;
        let r = lstat_kind(&local);
        self.cache.remember_entry(&local, r);
        r
    }

    fn readlink(&mut self, host: &[u8]) -> Result<Vec<u8>, Errno> {
        let local = self.local(host);
        if let Some(known) = self.cache.link_known(&local) {
            self.stats.cache_hits += 1;
            return Ok(known.clone());
        }
        self.stats.readlink += 1;
        let r = readlink(&local);
        if let Ok(t) = &r {
            self.cache.remember_link(&local, t);
        }
        r
    }

    fn plain_dir(&mut self, host: &[u8]) -> Option<DirCheck> {
        let local = self.local(host);
        if let Some(known) = self.cache.dir_known(&local) {
            self.stats.cache_hits += 1;
            return Some(known);
        }
        let r = plain_dir(&local);
        match r {
            Some(DirCheck::Symlink) => self.stats.plain_misses += 1,
            Some(found) => {
                self.stats.plain_hits += 1;
                self.cache.remember_dir(&local, found);
            }
            None => {}
        }
        self.stats.openat2 += u64::from(r.is_some());
        r
    }
}

/// Cleared when the kernel lacks openat2 (before 5.6): resolution then walks.
static OPENAT2_WORKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// openat2(2): "RESOLVE_NO_SYMLINKS: Disallow resolution of symbolic links during
/// path resolution": one call says whether a directory path is free of symlinks
/// (ELOOP if not), where a walk would take one lstat per component. ENOENT, ENOTDIR
/// and EACCES come from the first component that fails, before any symlink.
pub fn plain_dir(p: &[u8]) -> Option<DirCheck> {
    use std::sync::atomic::Ordering;
    if !OPENAT2_WORKS.load(Ordering::Relaxed) {
        return None;
    }
    let c = CString::new(p).ok()?;
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    let how = OpenHow { flags: (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64, mode: 0, resolve: RESOLVE_NO_SYMLINKS };
    // SAFETY: openat2 reads `how` (size given) and the C string; the fd is ours.
    let fd = unsafe {
        libc::syscall(libc::SYS_openat2, libc::AT_FDCWD, c.as_ptr(), &how as *const OpenHow, std::mem::size_of::<OpenHow>())
    };
    if fd < 0 {
        return match last_errno() {
            libc::ENOSYS | libc::EPERM => {
                OPENAT2_WORKS.store(false, Ordering::Relaxed);
                None
            }
            libc::ELOOP => Some(DirCheck::Symlink),
            libc::ENOENT | libc::ENOTDIR | libc::EACCES => Some(DirCheck::Unreachable),
            // ENAMETOOLONG (ptnix shortens such paths before the kernel sees them),
            // ENOMEM, ...: the walk decides.
            _ => None,
        };
    }
    // SAFETY: closing the fd openat2 just gave us.
    unsafe { libc::close(fd as i32) };
    Some(DirCheck::Plain)
}

/// Reads up to `len` bytes at `offset` of file `p`.
pub fn read_at(p: &[u8], offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let c = cstring(p.to_vec())?;
    // SAFETY: open/pread/close on our own fd and buffer.
    unsafe {
        let fd = libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY);
        if fd < 0 {
            return Err(last_errno());
        }
        let mut buf = vec![0u8; len];
        let mut got = 0usize;
        while got < len {
            let n = libc::pread(fd, buf[got..].as_mut_ptr().cast(), len - got, (offset + got as u64) as libc::off_t);
            if n < 0 && last_errno() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                break;
            }
            got += n as usize;
        }
        libc::close(fd);
        buf.truncate(got);
        Ok(buf)
    }
}

/// The kernel's checks before it runs a file (see [`ExecFs::may_exec`]).
fn may_exec(local: &[u8]) -> Result<(), Errno> {
    let c = cstring(local.to_vec())?;
    // SAFETY: stat and faccessat on a valid C string; `st` is plain old data.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::stat(c.as_ptr(), &mut st) != 0 {
            return Err(last_errno());
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(libc::EACCES);
        }
        // AT_EACCESS: the effective ids, as execve uses. X_OK also fails on a
        // noexec mount.
        if libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) != 0 {
            return Err(last_errno());
        }
    }
    Ok(())
}

/// [`read_at`], remembered for files of immutable store objects.
pub fn read_at_cached(cache: &mut crate::fscache::FsCache, local: &[u8], offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
    if let Some(known) = cache.read_known(local, offset, len) {
        return Ok(known);
    }
    let r = read_at(local, offset, len)?;
    cache.remember_read(local, offset, len, &r);
    Ok(r)
}

impl TraceeFs<'_> {
    /// What the dynamic loader at `host` understands (see `LoaderKind`).
    pub fn loader_kind(&mut self, host: &[u8]) -> crate::fscache::LoaderKind {
        if let Some(&k) = self.cache.loaders.get(host) {
            return k;
        }
        let local = self.local(host);
        let c = std::fs::read(std::ffi::OsStr::from_bytes(&local)).unwrap_or_default();
        let has = |s: &[u8]| memchr::memmem::find(&c, s).is_some();
        let k = crate::fscache::LoaderKind { argv0: has(b"--argv0"), audit: has(b"--audit") && has(b"la_objsearch") && has(b"GLIBC_2.35") };
        self.cache.loaders.insert(host.to_vec(), k);
        k
    }

    /// Whether the program at `host` reaches a function `wanted` names through its GOT
    /// alone (see `elf::got_references`); read anew unless it is a file of an
    /// immutable store object. An unreadable file: no.
    pub fn got_references(&mut self, host: &[u8], wanted: &dyn Fn(&[u8]) -> bool) -> bool {
        let local = self.local(host);
        if let Some(known) = self.cache.got_refs_known(&local) {
            return known;
        }
        let r = ptnix_syscalls::elf::got_references(&mut |off, len| read_at(&local, off, len), wanted).unwrap_or(false);
        self.cache.remember_got_refs(&local, r);
        r
    }
}

impl ExecFs for TraceeFs<'_> {
    fn read_at(&mut self, host: &[u8], offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        read_at_cached(self.cache, &self.local(host), offset, len)
    }

    fn may_exec(&mut self, host: &[u8]) -> Result<(), Errno> {
        let local = self.local(host);
        if let Some(known) = self.cache.exec_known(&local) {
            return known;
        }
        let r = may_exec(&local);
        self.cache.remember_exec(&local, r);
        r
    }
    fn loader_has_argv0(&mut self, host: &[u8]) -> bool {
        self.loader_kind(host).argv0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_pid_paths() {
        assert!(is_proc_pid_path(b"/proc/12/exe"));
        assert!(is_proc_pid_path(b"/proc/12/task/13/fd/0"));
        assert!(!is_proc_pid_path(b"/proc/12"));
        assert!(!is_proc_pid_path(b"/proc/self/exe"));
        assert!(!is_proc_pid_path(b"/proc/mounts"));
    }

    #[test]
    fn self_is_the_tracee() {
        let mut cache = crate::fscache::FsCache::default();
        let mut stats = crate::stats::Stats::default();
        let fs = TraceeFs { tgid: 10, tid: 11, cache: &mut cache, stats: &mut stats };
        assert_eq!(fs.local(b"/proc/self/exe"), b"/proc/10/exe");
        assert_eq!(fs.local(b"/proc/self"), b"/proc/10");
        assert_eq!(fs.local(b"/proc/thread-self/fd"), b"/proc/10/task/11/fd");
        assert_eq!(fs.local(b"/proc/selfish"), b"/proc/selfish");
    }
}
