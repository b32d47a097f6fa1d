//! getdents64/getdents on a bind's parent directory: show the bind's entry.
//!
//! The record rewriting is `ptnix_syscalls::dirent`; this module decides which
//! listings need it and moves the directory position. A synthetic record is appended
//! when the kernel reports the end of the directory; the directory's position must
//! then move past it, or the next call would return it again. ptnix has no handle on
//! the tracee's file, so it makes the tracee itself call lseek(fd, POS, SEEK_SET): at
//! the getdents exit stop the registers are set up for lseek and the instruction
//! pointer is moved back onto the `syscall` instruction (2 bytes, 0f 05); at lseek's
//! exit stop the saved registers come back with getdents' result. Signals stay blocked
//! in between (see `listingfd::hold_signals`).

use crate::engine::Engine;
use crate::entry::{fail, Verdict};
use crate::hostfs;
use crate::mem;
use crate::ptrace::{self, Pid, Regs};
use crate::tracee::ExitWork;
use ptnix_syscalls::dirent::{self, Format, Synthetic, SYNTHETIC_POS};
use ptnix_syscalls::path;
use std::ffi::CString;

fn stat(p: &[u8]) -> Option<libc::stat> {
    let c = CString::new(p).ok()?;
    // SAFETY: `st` is plain old data; `c` is a valid C string.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::stat(c.as_ptr(), &mut st) } == 0).then_some(st)
}

fn exists(p: &[u8]) -> bool {
    crate::hostfs::lstat(p).is_ok()
}

fn d_type(mode: libc::mode_t) -> u8 {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => libc::DT_DIR,
        libc::S_IFREG => libc::DT_REG,
        libc::S_IFLNK => libc::DT_LNK,
        _ => libc::DT_UNKNOWN,
    }
}

/// The file position of a tracee's fd, from /proc/PID/fdinfo/FD ("pos:\t123").
fn position(pid: Pid, fd: i32) -> Option<u64> {
    hostfs::proc_field(&format!("/proc/{pid}/fdinfo/{fd}"), b"pos:")
}

/// What a listing of one directory must change.
pub(crate) struct Listing {
    /// Every mount point in this directory: a host entry of that name is patched.
    pub entries: Vec<Synthetic>,
    /// The ones the host directory lacks: appended at its end.
    pub missing: Vec<Synthetic>,
}

impl Engine {
    /// The mount points a listing of the directory open at `fd` must show.
    fn listing(&self, pid: Pid, fd: i32) -> Option<Listing> {
        if self.mapping.mount_points().is_empty() {
            return None;
        }
        let host_dir = hostfs::readlink(format!("/proc/{pid}/fd/{fd}").as_bytes()).ok()?;
        if host_dir.first() != Some(&b'/') {
            return None;
        }
        let guest_dir = self.mapping.to_guest(&host_dir);
        let mut l = Listing { entries: Vec::new(), missing: Vec::new() };
        for mp in self.mapping.mount_points().iter().filter(|m| m.parent == guest_dir) {
            let Some(st) = stat(&mp.host) else { continue };
            let e = Synthetic { name: mp.name.clone(), ino: st.st_ino, d_type: d_type(st.st_mode) };
            let mut on_host = host_dir.clone();
            path::push(&mut on_host, &mp.name);
            if !exists(&on_host) {
                l.missing.push(e.clone());
            }
            l.entries.push(e);
        }
        (!l.entries.is_empty()).then_some(l)
    }

    pub(crate) fn getdents_entry(&mut self, pid: Pid, regs: &mut Regs, format: Format) -> Verdict {
        let fd = regs.rdi as i32;
        let Some(listing) = self.listing(pid, fd) else { return Verdict::Pass };
        let Some(pos) = position(pid, fd) else { return Verdict::Pass };
        let tgid = self.tgid(pid);
        if self.delivered.get(&(tgid, fd)) == Some(&pos) {
            return Verdict::Return(0); // fallback state: see `restore`
        }
        self.delivered.remove(&(tgid, fd));
        let (buf, count) = (regs.rsi, regs.rdx as usize);
        if let Some(from) = dirent::synthetic_index(pos, listing.missing.len()) {
            // seekdir() into ptnix's own records: go on from there.
            if from == listing.missing.len() {
                return Verdict::Return(0);
            }
            let (records, n) = dirent::synthetic_records(format, &listing.missing, from, count);
            if n == 0 {
                return fail(libc::EINVAL); // "Result buffer is too small"
            }
            // Turn this call into lseek(fd, past the records) and return them at exit.
            regs.orig_rax = libc::SYS_lseek as u64;
            regs.rsi = SYNTHETIC_POS + (from + n) as u64;
            regs.rdx = libc::SEEK_SET as u64;
            self.set_exit(pid, ExitWork::Records { buf, records });
            return Verdict::Changed;
        }
        self.set_exit(pid, ExitWork::Getdents { fd, buf, count, format, pos, listing });
        Verdict::Pass
    }

    /// getdents returned `ret`. Returns the value rax must have, if it changes.
    pub(crate) fn getdents_exit(
        &mut self,
        pid: Pid,
        regs: &Regs,
        (fd, buf, count, format, pos): (i32, u64, usize, Format, u64),
        listing: Listing,
    ) -> Option<i64> {
        let ret = regs.rax as i64;
        if ret > 0 {
            let mut b = vec![0u8; ret as usize];
            mem::read(pid, buf, &mut b).ok()?;
            if dirent::patch_names(format, &mut b, &listing.entries) > 0 {
                let _ = mem::write(pid, buf, &b);
            }
            return None;
        }
        if ret < 0 || listing.missing.is_empty() {
            return None;
        }
        // End of directory: append the missing entries, then move past them.
        let (records, n) = dirent::synthetic_records(format, &listing.missing, 0, count);
        if n == 0 {
            return Some(-i64::from(libc::EINVAL));
        }
        if mem::write(pid, buf, &records).is_err() {
            // There is a record to return and nowhere to put it: the kernel says EFAULT.
            return Some(-i64::from(libc::EFAULT));
        }
        let tgid = self.tgid(pid);
        if !crate::listingfd::after_syscall_insn(pid, regs.rip) {
            self.delivered.insert((tgid, fd), pos);
            return Some(records.len() as i64);
        }
        let mut lseek = *regs;
        lseek.rip -= 2;
        lseek.rax = libc::SYS_lseek as u64;
        lseek.orig_rax = libc::SYS_lseek as u64;
        lseek.rdi = fd as u64;
        lseek.rsi = SYNTHETIC_POS + n as u64;
        lseek.rdx = libc::SEEK_SET as u64;
        self.hold_signals(pid);
        if ptrace::set_regs(pid, &lseek).is_err() {
            self.release_signals(pid);
            return None;
        }
        let mut saved = *regs;
        saved.rax = records.len() as u64;
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.exit = Some(ExitWork::Restore { regs: Box::new(saved), fallback: (tgid, fd, pos) });
            // The injected lseek is not in the filter: its entry stop comes first.
            t.skip_entry_stop = self.seccomp;
        }
        None
    }

    /// The injected lseek returned: put the saved registers back. If lseek failed
    /// (a filesystem that refuses the position), remember that this fd has had its
    /// records at `pos`, so that the next call at `pos` says end-of-directory.
    pub(crate) fn restore(&mut self, pid: Pid, regs: &Regs, saved: &Regs, (tgid, fd, pos): (Pid, i32, u64)) {
        if (regs.rax as i64) < 0 {
            self.delivered.insert((tgid, fd), pos);
        }
        let _ = ptrace::set_regs(pid, saved);
        self.release_signals(pid);
    }
}
