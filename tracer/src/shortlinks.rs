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
        // Says whose it is, so that a later ptnix can remove it if this one is killed.
        let mut owner = template.clone();
        owner.extend_from_slice(OWNER_FILE);
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(std::ffi::OsStr::from_bytes(&owner))
            .and_then(|mut f| std::io::Write::write_all(&mut f, format!("ptnix {}\n", std::process::id()).as_bytes()));
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
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut p = self.ensure_dir()?;
        p.extend_from_slice(b"/s");
        p.extend_from_slice(&base36(self.snapshots));
        self.snapshots += 1;
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&p));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        f.write_all(content).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
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

    /// Removes the links and the directory.
    pub fn cleanup(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        for l in self.links.values() {
            if let Ok(c) = CString::new(l.clone()) {
                // SAFETY: valid C string.
                unsafe { libc::unlink(c.as_ptr()) };
            }
        }
        self.links.clear();
        // All writable again first (removing a directory needs write access to its
        // parent), then children before parents.
        let stand_ins: Vec<CString> = self.stand_ins.drain(..).filter_map(|d| CString::new(d).ok()).collect();
        for c in &stand_ins {
            // SAFETY: chmod of a valid C string.
            unsafe { libc::chmod(c.as_ptr(), 0o700) };
        }
        for c in stand_ins.iter().rev() {
            // SAFETY: rmdir of a valid C string.
            unsafe { libc::rmdir(c.as_ptr()) };
        }
        let mut owner = dir.clone();
        owner.extend_from_slice(OWNER_FILE);
        let _ = std::fs::remove_file(std::ffi::OsStr::from_bytes(&owner));
        if let Ok(c) = CString::new(dir) {
            // SAFETY: valid C string.
            unsafe { libc::rmdir(c.as_ptr()) };
        }
    }
}

/// In each private directory: `ptnix PID`.
const OWNER_FILE: &[u8] = b"/.ptnix-owner";

/// Removes the private directories of ptnix processes that were killed before they
/// could (SIGKILL, the OOM killer): directories in /tmp named `ptXXXXXX`, owned by
/// this user, mode 0700, whose owner file names a process that no longer exists. (A
/// reused pid keeps a stale directory a while longer; a live ptnix's is never
/// touched.) Anything else is left alone.
pub fn sweep_stale() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
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
        let Ok(text) = std::fs::read_to_string(dir.join(".ptnix-owner")) else { continue };
        let Some(pid) = text.strip_prefix("ptnix ").and_then(|s| s.trim_end().parse::<i32>().ok()) else { continue };
        if pid <= 0 || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // Stand-ins are read-only: make everything writable, then remove.
        let mut dirs = vec![dir.clone()];
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
        let _ = std::fs::remove_dir_all(&dir);
    }
}

impl Drop for ShortLinks {
    fn drop(&mut self) {
        self.cleanup();
    }
}
