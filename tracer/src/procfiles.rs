//! /proc files whose *contents* name host paths.
//!
//! `/proc/PID/maps` (and `smaps`) list each mapped file by its host path. Nix's garbage
//! collector reads them to find store paths in use ("runtime roots") and only counts
//! paths that start with `/nix/store`: with host paths it would delete a library a
//! running program has mapped. When a tracee opens such a file, ptnix reads it, writes
//! a copy with guest paths into its private directory, and opens that instead; the copy
//! is unlinked as soon as the open returns. The tracee reads a snapshot taken at open
//! time rather than at read time, which for these files makes no difference to a
//! reader that opens, reads and closes.

use crate::engine::Engine;
use crate::hostfs::TraceeFs;
use crate::ptrace::Pid;
use std::os::unix::ffi::OsStrExt;

/// Whether `guest` is `/proc/(self|thread-self|N)[/task/T]/(maps|smaps)`.
fn is_maps(guest: &[u8]) -> bool {
    let Some(rest) = guest.strip_prefix(b"/proc/") else { return false };
    let parts: Vec<&[u8]> = rest.split(|&b| b == b'/').collect();
    let file = match parts.as_slice() {
        [_, f] | [_, b"task", _, f] => *f,
        _ => return false,
    };
    file == b"maps" || file == b"smaps"
}

impl Engine {
    /// Rewrites each line's path (from its first `/` on) to the guest path.
    fn guest_maps(&self, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        for line in text.split_inclusive(|&b| b == b'\n') {
            match memchr::memchr(b'/', line) {
                Some(i) => {
                    out.extend_from_slice(&line[..i]);
                    let (path, nl) = match line.strip_suffix(b"\n") {
                        Some(p) => (&p[i..], &b"\n"[..]),
                        None => (&line[i..], &b""[..]),
                    };
                    out.extend_from_slice(&self.mapping.to_guest(path));
                    out.extend_from_slice(nl);
                }
                None => out.extend_from_slice(line),
            }
        }
        out
    }

    /// For an open of a maps file: the host path of a guest-path snapshot to open
    /// instead. `None`: open the original (the kernel reports any error).
    pub(crate) fn proc_snapshot(&mut self, pid: Pid, guest: &[u8]) -> Option<Result<Vec<u8>, i32>> {
        if !is_maps(guest) {
            return None;
        }
        let tgid = self.tgid(pid);
        let fs = TraceeFs { tgid, tid: pid, cache: &mut self.cache, stats: &mut self.stats };
        let text = std::fs::read(std::ffi::OsStr::from_bytes(&fs.local(guest))).ok()?;
        let rewritten = self.guest_maps(&text);
        Some(self.shortlinks.snapshot(&rewritten))
    }
}

#[cfg(test)]
mod tests {
    use super::is_maps;

    #[test]
    fn maps_paths() {
        assert!(is_maps(b"/proc/self/maps"));
        assert!(is_maps(b"/proc/12/smaps"));
        assert!(is_maps(b"/proc/12/task/13/maps"));
        assert!(!is_maps(b"/proc/12/environ"));
        assert!(!is_maps(b"/proc/maps"));
        assert!(!is_maps(b"/home/maps"));
    }
}
