//! Host paths that do not fit where the guest path did.
//!
//! The store directory's name lengthens every path under `/nix`. Two limits can then
//! be crossed although the guest path is within them:
//! - unix(7): `sun_path` holds 108 bytes. `/nix/var/nix/daemon-socket/socket` fits,
//!   but `$HOME/.local/share/nix/root/nix/var/nix/daemon-socket/socket` may not;
//! - PATH_MAX (4096) for any path argument.
//!
//! Every syscall follows symlinks in the directory part of a path (bind and connect
//! included), so ptnix makes one private directory (mode 0700, from mkdtemp, in
//! `$XDG_RUNTIME_DIR` or `/tmp`, whichever name is shorter) holding short symlinks to
//! the long path's *directory*, and hands the kernel `SHORTDIR/N/lastname`. The last
//! name stays real, so bind creates the socket and no-follow calls see the real entry.
//! The directory and its links are removed when ptnix exits.

use hashbrown::HashMap;
use ptnix_syscalls::path::has_prefix;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;

#[derive(Default)]
pub struct ShortLinks {
    dir: Option<Vec<u8>>,
    /// Snapshot files made so far (see `snapshot`).
    snapshots: usize,
    /// host directory -> short link (`SHORTDIR/N`)
    links: HashMap<Vec<u8>, Vec<u8>>,
    /// Stand-in directories (see `standins`), parents before children.
    stand_ins: Vec<Vec<u8>>,
    /// The owner file, held open with an exclusive flock while ptnix runs: a later
    /// ptnix that can take the lock knows this one is gone (see `sweep_stale`).
    owner: Option<std::fs::File>,
}

fn base36(mut n: usize) -> Vec<u8> {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut v = Vec::new();
    loop {
        v.push(DIGITS[n % 36]);
        n /= 36;
        if n == 0 {
            v.reverse();
            return v;
        }
    }
}

fn mkdir(p: &[u8]) -> Result<(), i32> {
    let c = CString::new(p).map_err(|_| libc::EINVAL)?;
    // SAFETY: mkdir of a valid C string.
    if unsafe { libc::mkdir(c.as_ptr(), 0o755) } != 0 {
        return Err(crate::ptrace::last_errno());
    }
    Ok(())
}

fn split_dir(p: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memrchr(b'/', p) {
        Some(0) => (b"/", &p[1..]),
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (b".", p),
    }
}

impl ShortLinks {
    fn ensure_dir(&mut self) -> Result<Vec<u8>, i32> {
        if let Some(d) = &self.dir {
            return Ok(d.clone());
        }
        // Every byte counts against sun_path: take the shorter base.
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| d.as_bytes().first() == Some(&b'/') && d.len() < 4)
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_else(|| b"/tmp".to_vec());
        let mut template = base;
        template.extend_from_slice(b"/ptXXXXXX\0");
        // SAFETY: mkdtemp rewrites the XXXXXX in our NUL-terminated buffer and creates
        // the directory with mode 0700, failing rather than reusing an existing one.
        let r = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
        if r.is_null() {
            return Err(crate::ptrace::last_errno());
        }
        template.pop();
        // Says whose it is, and stays locked while ptnix lives, so that a later ptnix
        // can remove it if this one is killed (see `sweep_stale`).
        let mut owner = template.clone();
        owner.extend_from_slice(OWNER_FILE);
        self.owner = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(std::ffi::OsStr::from_bytes(&owner))
            .and_then(|mut f| {
                // Locked before it says whose it is: a sweep that reads "ptnix PID"
                // finds it locked. (Written first, a sweep in between took the lock
                // and removed the live directory.)
                // SAFETY: flock on our own open fd.
                if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                std::io::Write::write_all(&mut f, format!("ptnix {}\n", std::process::id()).as_bytes())?;
                Ok(f)
            })
            .ok();
        self.dir = Some(template.clone());
        Ok(template)
    }

    /// A short path that reaches `host` through a symlink to the longest directory
    /// prefix of `host` a symlink can hold (its target is at most PATH_MAX - 1 bytes):
    /// for a socket that is its directory. The prefix need not exist: the kernel then
    /// fails the walk with the errno the guest path would have given.
    pub fn shorten(&mut self, host: &[u8]) -> Result<Vec<u8>, i32> {
        let limit = host.len().min(ptnix_syscalls::path::PATH_MAX - 1);
        let split = match memchr::memrchr(b'/', &host[..limit]) {
            Some(i) if i > 0 => i,
            _ => return Err(libc::ENAMETOOLONG),
        };
        let (dir, name) = (&host[..split], &host[split + 1..]);
        let link = match self.links.get(dir) {
            Some(l) => l.clone(),
            None => {
                let mut l = self.ensure_dir()?;
                l.push(b'/');
                l.extend_from_slice(&base36(self.links.len()));
                let target = CString::new(dir).map_err(|_| libc::EINVAL)?;
                let at = CString::new(l.clone()).map_err(|_| libc::EINVAL)?;
                // SAFETY: two valid C strings.
                if unsafe { libc::symlink(target.as_ptr(), at.as_ptr()) } != 0 {
                    return Err(crate::ptrace::last_errno());
                }
                self.links.insert(dir.to_vec(), l.clone());
                l
            }
        };
        let mut p = link;
        p.push(b'/');
        p.extend_from_slice(name);
        Ok(p)
    }

    /// Writes `content` to a new file (mode 0600) in the private directory and
    /// returns its path. The caller unlinks it once the tracee has opened it.
    pub fn snapshot(&mut self, content: &[u8]) -> Result<Vec<u8>, i32> {
        let mut name = b"s".to_vec();
        name.extend_from_slice(&base36(self.snapshots));
        self.snapshots += 1;
        self.write_file(&name, content, 0o600)
    }

    /// Where [`write_file`](Self::write_file) puts `name`.
    pub fn file_path(&mut self, name: &[u8]) -> Result<Vec<u8>, i32> {
        let mut p = self.ensure_dir()?;
        p.push(b'/');
        p.extend_from_slice(name);
        Ok(p)
    }

    /// Writes `content` to the new file `name` (mode `mode`) in the private directory
    /// and returns its path.
    pub fn write_file(&mut self, name: &[u8], content: &[u8], mode: u32) -> Result<Vec<u8>, i32> {
        use std::io::Write;
        let p = self.file_path(name)?;
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&p));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode | 0o200)
            .open(path)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        f.write_all(content).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        // Made writable to be written: a read-only mode comes after.
        if mode & 0o200 == 0 {
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        }
        Ok(p)
    }

    /// A new empty stand-in directory, `SHORTDIR/g/N` (mode 0755 until `standins`
    /// makes it read-only).
    pub fn new_stand_in(&mut self) -> Result<Vec<u8>, i32> {
        let mut g = self.ensure_dir()?;
        g.extend_from_slice(b"/g");
        if !self.stand_ins.contains(&g) {
            mkdir(&g)?;
            self.stand_ins.push(g.clone());
        }
        g.push(b'/');
        g.extend_from_slice(&base36(self.stand_ins.len()));
        self.stand_in_dir(&g)?;
        Ok(g)
    }

    /// Makes directory `p` inside a stand-in.
    pub fn stand_in_dir(&mut self, p: &[u8]) -> Result<(), i32> {
        mkdir(p)?;
        self.stand_ins.push(p.to_vec());
        Ok(())
    }

    pub fn stand_ins(&self) -> &[Vec<u8>] {
        &self.stand_ins
    }

    /// Turns a shortened path the kernel reports (getsockname) back into the host path.
    pub fn lengthen(&self, p: &[u8]) -> Option<Vec<u8>> {
        let dir = self.dir.as_ref()?;
        if !has_prefix(p, dir) {
            return None;
        }
        let (link, name) = split_dir(p);
        let (host_dir, _) = self.links.iter().find(|(_, l)| l.as_slice() == link)?;
        let mut h = host_dir.clone();
        h.push(b'/');
        h.extend_from_slice(name);
        Some(h)
    }

    /// Removes the directory and everything in it: links, snapshots a killed tracee
    /// never opened, stand-ins (and whatever a tracee made in one it chmodded).
    pub fn cleanup(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        self.links.clear();
        self.stand_ins.clear();
        remove_tree(std::path::Path::new(std::ffi::OsStr::from_bytes(&dir)));
        self.owner = None;
    }
}

impl Drop for ShortLinks {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Makes every directory of the tree at `dir` writable (stand-ins are read-only), then
/// removes the tree. Symlinks are removed, never followed.
fn remove_tree(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut dirs = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        let d = dirs[i].clone();
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
        if let Ok(rd) = std::fs::read_dir(&d) {
            for c in rd.flatten() {
                if c.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(c.path());
                }
            }
        }
        i += 1;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// In each private directory: `ptnix PID`.
const OWNER_FILE: &[u8] = b"/.ptnix-owner";

/// Removes the private directories of ptnix processes that were killed before they
/// could (SIGKILL, the OOM killer): directories in /tmp named `ptXXXXXX`, owned by
/// this user, mode 0700, whose owner file says `ptnix PID` and is not locked. A
/// running ptnix holds an exclusive flock on it, which works across PID namespaces
/// that share /tmp and whatever became of the pid. Anything else is left alone.
pub fn sweep_stale() {
    use std::os::unix::fs::MetadataExt;
    let Ok(rd) = std::fs::read_dir("/tmp") else { return };
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    for e in rd.flatten() {
        let name = e.file_name();
        let n = name.as_bytes();
        if n.len() != 8 || !n.starts_with(b"pt") {
            continue;
        }
        let dir = e.path();
        let Ok(m) = std::fs::symlink_metadata(&dir) else { continue };
        if !m.is_dir() || m.uid() != me || m.mode() & 0o777 != 0o700 {
            continue;
        }
        let owner = dir.join(".ptnix-owner");
        let Ok(mut f) = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW).open(&owner) else {
            continue;
        };
        let mut text = String::new();
        if std::io::Read::read_to_string(&mut f, &mut text).is_err() || !text.starts_with("ptnix ") {
            continue;
        }
        // SAFETY: flock on our own open fd; the lock goes with the fd.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        remove_tree(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// A ptnix starting (and sweeping /tmp) while another makes its private directory
    /// must never take that directory for a dead one's. (It did: the owner file said
    /// "ptnix PID" a moment before it was locked, and a sweep in that moment removed
    /// a live ptnix's snapshots, so Nix's collector read /proc/PID/maps with host
    /// paths and missed a runtime root.)
    #[test]
    fn a_sweep_never_takes_a_directory_being_made() {
        let done = Arc::new(AtomicBool::new(false));
        let sweeper = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut sweeps = 0u64;
                while !done.load(Ordering::Relaxed) {
                    sweep_stale();
                    sweeps += 1;
                }
                sweeps
            })
        };
        let mut lost = 0;
        for _ in 0..20000 {
            let mut s = ShortLinks::default();
            let there = s.snapshot(b"x").is_ok_and(|p| std::fs::read(std::ffi::OsStr::from_bytes(&p)).is_ok());
            let owned = s.owner.is_some();
            if !owned || !there {
                lost += 1;
            }
            s.cleanup();
        }
        done.store(true, Ordering::Relaxed);
        let sweeps = sweeper.join().unwrap();
        assert!(sweeps > 0);
        assert_eq!(lost, 0, "private directories taken by a sweep ({sweeps} sweeps)");
    }
}
