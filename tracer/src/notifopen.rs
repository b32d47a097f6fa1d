//! open and openat through the notification supervisor (Linux 5.14), and the calls
//! with one path whose only effect is on that file (chmod, chown, utimensat: see
//! [`effect`]).
//!
//! The filter notifies the opens without O_PATH or O_EXCL (see `Sys::notified_open`).
//! For a path with nothing to translate the kernel runs the open itself (CONTINUE).
//! A translated one is opened by the supervisor, with the tracee's flags, and the
//! descriptor is installed in the tracee as the call's result:
//! seccomp_unotify(2), SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND (5.14):
//! "add the file descriptor ... and then atomically send a response to the
//! notification ... the return value of the ioctl is the number of the target file
//! descriptor". The number is the lowest free one, as open's would be, and the
//! tracee's RLIMIT_NOFILE applies. The tracee has ptnix's credentials (see `notif`),
//! so permissions, O_TRUNC, O_NOATIME and the rest come out the same.
//!
//! What the supervisor leaves to the tracer (see `escalate`): opens whose result
//! ptnix changes after the fact (a listed directory, a `/proc` snapshot). Neither
//! blocks: the tracer holds the caller's signals meanwhile.
//!
//! The open of anything but a regular file or a directory (a FIFO, which waits for
//! its other end; a device) runs on a thread of its own: one supervisor thread serves
//! every tracee. If the caller is interrupted meanwhile, its call fails with EINTR
//! or is restarted, as natively, or it dies; the thread's open goes on until the
//! other end comes, its ADDFD then finds the notification gone, and its descriptor
//! is closed. At most 32 such threads wait at once; past that the tracer opens it,
//! holding the caller's signals (only SIGKILL ends that wait).

use crate::procfiles::SNAPSHOT_FILES;
use crate::ptrace::{last_errno, Pid};
use hashbrown::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use ptnix_syscalls::mapping::Mapping;
use ptnix_syscalls::procfs;
use ptnix_syscalls::table::{PathArg, Sys};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// linux/seccomp.h: SECCOMP_IOW(3, struct seccomp_notif_addfd).
const NOTIF_ADDFD: libc::c_ulong = 0x4018_2103;
const ADDFD_FLAG_SEND: u32 = 2;

#[repr(C)]
struct AddFd {
    id: u64,
    flags: u32,
    srcfd: u32,
    newfd: u32,
    newfd_flags: u32,
}

/// How the supervisor answers an open of a translated path.
pub(crate) enum Opened {
    /// Already answered (with a descriptor, or the caller has gone).
    Sent,
    /// Answer this -errno.
    Error(i32),
    /// Hand the call to the tracer.
    Escalate,
}

/// The umask of tracee threads that created files below /nix, read once from
/// `/proc/TID/status` ("Umask:", Linux 4.7; 11 us here, too slow for every open) and
/// kept until the tracer sees a umask call end (then all are forgotten) or the thread
/// end (its tid may be reused). With the map, a count of those clears and forgets: a
/// value read from `/proc` while one happened may be the old one, and is not kept.
#[derive(Default)]
pub struct Umasks(Mutex<(HashMap<Pid, u32>, u64)>);

impl Umasks {
    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<Pid, u32>, u64)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `tid`'s umask, if it can be read.
    pub fn of(&self, tid: Pid) -> Option<u32> {
        let generation = {
            let g = self.lock();
            if let Some(&m) = g.0.get(&tid) {
                return Some(m);
            }
            g.1
        };
        let status = std::fs::read(format!("/proc/{tid}/status")).ok()?;
        let m = procfs::umask(&status)?;
        let mut g = self.lock();
        if g.1 == generation {
            g.0.insert(tid, m);
        }
        Some(m)
    }

    pub fn clear(&self) {
        let mut g = self.lock();
        g.0.clear();
        g.1 += 1;
    }

    pub fn forget(&self, tid: Pid) {
        let mut g = self.lock();
        g.0.remove(&tid);
        g.1 += 1;
    }
}

/// Threads waiting in opens that may block, and how many there may be.
static WAITING: AtomicUsize = AtomicUsize::new(0);
const MAX_WAITING: usize = 32;

/// Whether an open of guest path `guest` needs the tracer (see the module doc):
/// `listing_base` is the tracer's (0: every getdents stops, no descriptor moves).
pub(crate) fn needs_tracer(mapping: &Mapping, listing_base: u32, guest: &[u8], flags: u64) -> bool {
    let flags = flags as i32;
    let lists = listing_base != 0 && flags & libc::O_PATH == 0 && mapping.lists_mount_points(guest);
    let snapshot = flags & libc::O_ACCMODE == libc::O_RDONLY
        && guest.starts_with(b"/proc/")
        && procfs::parse(guest).is_some_and(|f| SNAPSHOT_FILES.contains(&f.file));
    lists || snapshot
}

/// Opens host path `host` for notification `id` of `tid` and installs the descriptor.
/// `create`: the mode and the umask for an open that may create the file (O_CREAT,
/// O_TMPFILE); the supervisor thread has an fs of its own (unshare(CLONE_FS)) whose
/// umask it sets to the tracee's, so that the kernel applies it, or a default ACL of
/// the directory instead, exactly as for the tracee.
pub(crate) fn open_host(shared: &Arc<OwnedFd>, id: u64, host: &[u8], flags: u64, follow_last: bool, create: Option<(u32, u32)>) -> Opened {
    let listener = shared.as_raw_fd();
    let (dirfd, name, _held) = match crate::notif::short_path(host) {
        Ok(x) => x,
        Err(e) => return Opened::Error(e),
    };
    let Ok(c) = std::ffi::CString::new(name) else { return Opened::Error(libc::ENOENT) };
    // SAFETY: an all-zero struct stat is valid; fstatat writes it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let nofollow = if follow_last { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // Where the lookup fails (a file to create, a bad path), the open says why: its
    // errors are not all the lookup's (O_CREAT with a trailing slash is EISDIR,
    // whatever the path names).
    // SAFETY: `c` is NUL-terminated; the kernel writes one struct stat.
    let may_block = unsafe { libc::fstatat(dirfd, c.as_ptr(), &mut st, nofollow) } == 0
        && !matches!(st.st_mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFDIR | libc::S_IFLNK);
    if may_block {
        // Bounded: a caller that a signal cuts and that tries again leaves a thread
        // waiting until the other end opens.
        if WAITING.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            WAITING.fetch_sub(1, Ordering::AcqRel);
            return Opened::Escalate;
        }
        let (held, c, shared) = (_held, c.clone(), Arc::clone(shared));
        let spawned = std::thread::Builder::new().name("ptnix-open".into()).spawn(move || {
            let dirfd = held.as_ref().map_or(dirfd, |f| f.as_raw_fd());
            let listener = shared.as_raw_fd();
            // The FIFO was there: no O_CREAT (this thread's umask is not the
            // caller's). If it went meanwhile, the open fails with ENOENT where the
            // caller's would have made a file.
            let flags = flags & !(libc::O_CREAT as u64);
            if let Err(e) = open_and_send(listener, id, dirfd, &c, flags, 0) {
                send_error(listener, id, e);
            }
            WAITING.fetch_sub(1, Ordering::AcqRel);
        });
        return match spawned {
            Ok(_) => Opened::Sent,
            Err(_) => {
                WAITING.fetch_sub(1, Ordering::AcqRel);
                Opened::Escalate
            }
        };
    }
    if let Some((_, umask)) = create {
        // SAFETY: umask cannot fail; it changes only this thread's own fs.
        unsafe { libc::umask(umask as libc::mode_t) };
    }
    let mode = create.map_or(0, |(mode, _)| mode);
    match open_and_send(listener, id, dirfd, &c, flags, mode) {
        Ok(_) => Opened::Sent,
        Err(e) => Opened::Error(e),
    }
}

/// Opens `c` (relative to `dirfd`) with the tracee's `flags` and installs the
/// descriptor as the answer to notification `id`: true when installed, false when
/// the caller has gone (killed, or interrupted and to restart the call).
fn open_and_send(listener: i32, id: u64, dirfd: i32, c: &std::ffi::CStr, flags: u64, mode: u32) -> Result<bool, i32> {
    // ptnix's own copy is close-on-exec whatever the tracee asked (it is closed right
    // after); the tracee's O_CLOEXEC goes with ADDFD.
    let own = (flags as i32) | libc::O_CLOEXEC;
    // SAFETY: `c` is NUL-terminated.
    let fd = unsafe { libc::openat(dirfd, c.as_ptr(), own, mode as libc::c_uint) };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: `fd` was just opened and is ours alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let add = AddFd {
        id,
        flags: ADDFD_FLAG_SEND,
        srcfd: fd.as_raw_fd() as u32,
        newfd: 0,
        newfd_flags: if flags as i32 & libc::O_CLOEXEC != 0 { libc::O_CLOEXEC as u32 } else { 0 },
    };
    // SAFETY: the kernel reads one struct seccomp_notif_addfd.
    if unsafe { libc::ioctl(listener, NOTIF_ADDFD, &add as *const AddFd) } >= 0 {
        return Ok(true);
    }
    match last_errno() {
        // ESRCH: the caller was interrupted while the descriptor was on its way
        // (kernel/seccomp.c, seccomp_do_user_notification).
        libc::ENOENT | libc::ESRCH => Ok(false),
        // EMFILE: the tracee's descriptor table is full, as its open would have found.
        e => Err(e),
    }
}

/// Answers notification `id` with -`e` (from a thread of its own).
fn send_error(listener: i32, id: u64, e: i32) {
    let resp = crate::notif::Resp { id, val: 0, error: -e, flags: 0 };
    // SAFETY: the kernel reads one struct seccomp_notif_resp; ENOENT: the caller has
    // gone and will not see it.
    unsafe { libc::ioctl(listener, crate::notif::NOTIF_SEND, &resp as *const crate::notif::Resp) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_directories_and_snapshots_need_the_tracer() {
        let m = Mapping::for_store(b"/home/u/root").unwrap();
        let rd = libc::O_RDONLY as u64;
        assert!(needs_tracer(&m, 512, b"/", rd | libc::O_DIRECTORY as u64));
        assert!(!needs_tracer(&m, 0, b"/", rd), "every getdents stops: nothing to move");
        assert!(!needs_tracer(&m, 512, b"/", libc::O_PATH as u64));
        assert!(!needs_tracer(&m, 512, b"/nix/store", rd));
        assert!(needs_tracer(&m, 512, b"/proc/self/cmdline", rd));
        assert!(needs_tracer(&m, 512, b"/proc/12/maps", rd));
        assert!(!needs_tracer(&m, 512, b"/proc/self/cmdline", libc::O_WRONLY as u64));
        assert!(!needs_tracer(&m, 512, b"/proc/self/fd", rd));
        assert!(!needs_tracer(&m, 512, b"/proc/cpuinfo", rd));
    }
}

/// Makes `sys` (see `Sys::notified_effect`) on host path `host` with the caller's
/// other arguments, and gives its return value (or -errno). `None`: the call needs
/// the tracer (a path over PATH_MAX for a call without a directory descriptor).
pub(crate) fn effect(tid: Pid, sys: Sys, a: PathArg, args: &[u64; 6], host: &[u8]) -> Option<i64> {
    let (dirfd, name, _held) = match crate::notif::short_path(host) {
        Ok(x) => x,
        Err(e) => return Some(-i64::from(e)),
    };
    let Ok(c) = std::ffi::CString::new(name) else { return Some(-i64::from(libc::ENOENT)) };
    let mut v = *args;
    v[usize::from(a.path)] = c.as_ptr() as u64;
    match a.dirfd {
        Some(i) => v[usize::from(i)] = dirfd as i64 as u64,
        None if dirfd != libc::AT_FDCWD => return None,
        None => {}
    }
    // utimensat(dirfd, path, times, flags): the two timespecs are the caller's.
    let mut times = [0u8; 32];
    if sys == Sys::utimensat && v[2] != 0 {
        if crate::mem::read_direct(tid, v[2], &mut times).is_err() {
            return Some(-i64::from(libc::EFAULT));
        }
        v[2] = times.as_ptr() as u64;
    }
    // SAFETY: the call's own arguments, its one path and its one pointer (utimensat's
    // times) replaced by ptnix's copies, which outlive the call.
    let r = unsafe { libc::syscall(i64::from(sys.nr()), v[0], v[1], v[2], v[3], v[4], v[5]) };
    Some(if r < 0 { -i64::from(last_errno()) } else { r })
}
