//! /proc files whose *contents* ptnix rewrites.
//!
//! `/proc/PID/maps` (and `smaps`) list each mapped file by its host path. Nix's garbage
//! collector reads them to find store paths in use ("runtime roots") and only counts
//! paths that start with `/nix/store`: with host paths it would delete a library a
//! running program has mapped.
//!
//! `/proc/PID/cmdline`, `comm`, `stat` and `status` of a program that ptnix started
//! through its loader show the loader (see `ptnix_syscalls::procfs`); `ps` and the
//! program itself read them.
//!
//! When a tracee opens such a file for reading, ptnix reads it, writes a rewritten
//! copy into its private directory, and opens that instead; the copy is unlinked as
//! soon as the open returns. The tracee reads a snapshot taken at open time rather
//! than at read time, which for these files makes no difference to a reader that
//! opens, reads and closes. Opens for writing (`comm` can be written) get the real
//! file.

use crate::engine::Engine;
use crate::hostfs::TraceeFs;
use crate::ptrace::Pid;
use ptnix_syscalls::procfs;
use std::os::unix::ffi::OsStrExt;

/// The `/proc/PID/` files an open for reading gets a snapshot of.
pub(crate) const SNAPSHOT_FILES: [&[u8]; 6] = [b"maps", b"smaps", b"cmdline", b"comm", b"stat", b"status"];

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

    /// For an open for reading of a file under `/proc`: the host path of a rewritten
    /// snapshot to open instead. `Ok(None)`: open the original (the kernel reports any
    /// error). When no snapshot can be written (a full /tmp), the identity files fall
    /// back to the original, but `maps` and `smaps` fail with EIO: a collector that
    /// read host paths there would delete store paths in use, while one that fails to
    /// read them stops. (Not the write's own errno: Nix's collector takes ENOENT,
    /// EACCES and ESRCH for a process that is gone and goes on without its roots.)
    pub(crate) fn proc_snapshot(&mut self, pid: Pid, guest: &[u8]) -> Result<Option<Vec<u8>>, i32> {
        let Some(f) = procfs::parse(guest).filter(|f| SNAPSHOT_FILES.contains(&f.file)) else { return Ok(None) };
        let maps = matches!(f.file, b"maps" | b"smaps");
        let written = self.write_snapshot(pid, guest, &f);
        match written {
            Err(_) if maps => Err(libc::EIO),
            Err(_) => Ok(None),
            Ok(w) => Ok(w),
        }
    }

    /// The snapshot's path, `Ok(None)` where the original is to be opened, or the
    /// errno of the snapshot's write.
    fn write_snapshot(&mut self, pid: Pid, guest: &[u8], f: &procfs::ProcFile) -> Result<Option<Vec<u8>>, i32> {
        let tgid = self.tgid(pid);
        // The identity files change only for a program ptnix started through its
        // loader: that is known before anything is read (`ps` opens every process's).
        let loader = match f.file {
            b"maps" | b"smaps" => None,
            _ => {
                let owner = self.proc_owner(pid, f.owner);
                let Some(run) = self.loader_run(pid, owner) else { return Ok(None) };
                Some((owner, run))
            }
        };
        let fs = TraceeFs { tgid, tid: pid, cache: &mut self.cache, stats: &mut self.stats };
        let local = fs.local(guest);
        // Unreadable (the process is gone, or not ours): the tracee's own open says so.
        let Ok(text) = std::fs::read(std::ffi::OsStr::from_bytes(&local)) else { return Ok(None) };
        let rewritten = match loader {
            None => self.guest_maps(&text),
            Some((owner, (run, real))) => {
                let renamed = match f.file {
                    b"cmdline" => procfs::program_cmdline(&text, &run.argv),
                    file => procfs::rename_task(file, &text, &procfs::comm_of(&real), &run.comm),
                };
                let Some(renamed) = renamed else { return Ok(None) };
                // The caller is stopped in its open right now, which its own stat and
                // status say ("t (tracing stop)"); natively it is running.
                if owner == tgid {
                    procfs::running_state(f.file, &renamed)
                } else {
                    renamed
                }
            }
        };
        self.shortlinks.snapshot(&rewritten).map(Some)
    }
}
