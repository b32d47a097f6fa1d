//! Unix socket paths that no longer fit in `sun_path` once translated.
//!
//! unix(7): `sun_path` holds 108 bytes. `/nix/var/nix/daemon-socket/socket` fits, but
//! `$HOME/.local/share/nix/root/nix/var/nix/daemon-socket/socket` may not. bind(2) and
//! connect(2) both follow symlinks in the directory part of the path, so ptnix makes a
//! private directory (mode 0700, from mkdtemp, in `$XDG_RUNTIME_DIR` or `/tmp`) holding
//! short symlinks to the socket's *directory*, and hands the kernel
//! `SHORTDIR/N/socketname`. The directory is removed when ptnix exits.

use hashbrown::HashMap;
use ptnix_syscalls::path::has_prefix;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

#[derive(Default)]
pub struct SockDir {
    dir: Option<Vec<u8>>,
    /// host directory -> short link (`SHORTDIR/N`)
    links: HashMap<Vec<u8>, Vec<u8>>,
}

fn split_dir(p: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memrchr(b'/', p) {
        Some(0) => (b"/", &p[1..]),
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (b".", p),
    }
}

impl SockDir {
    fn ensure_dir(&mut self) -> Result<Vec<u8>, i32> {
        if let Some(d) = &self.dir {
            return Ok(d.clone());
        }
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| !d.is_empty() && d.len() < 40)
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_else(|| b"/tmp".to_vec());
        let mut template = base;
        template.extend_from_slice(b"/ptnix-XXXXXX\0");
        // SAFETY: mkdtemp rewrites the XXXXXX in our NUL-terminated buffer and creates
        // the directory with mode 0700, failing rather than reusing an existing one.
        let r = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
        if r.is_null() {
            return Err(crate::ptrace::last_errno());
        }
        template.pop();
        self.dir = Some(template.clone());
        Ok(template)
    }

    /// A path that reaches host socket path `host` and fits in `sun_path`.
    pub fn shorten(&mut self, host: &[u8]) -> Result<Vec<u8>, i32> {
        let (dir, name) = split_dir(host);
        let link = match self.links.get(dir) {
            Some(l) => l.clone(),
            None => {
                let mut l = self.ensure_dir()?;
                l.extend_from_slice(format!("/{}", self.links.len()).as_bytes());
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
        if let Ok(c) = CString::new(dir) {
            // SAFETY: valid C string.
            unsafe { libc::rmdir(c.as_ptr()) };
        }
    }
}

impl Drop for SockDir {
    fn drop(&mut self) {
        self.cleanup();
    }
}
