//! The stat family through seccomp user notifications instead of ptrace stops.
//!
//! seccomp(2): "SECCOMP_RET_USER_NOTIF (since Linux 5.0): Forward the system call to an
//! attached user-space supervisor process to allow that process to decide what to do
//! with the system call." A ptrace stop costs the tracer a wait, a register read and
//! write and a resume, all through the ptrace machinery; a notification is one
//! blocking ioctl to receive it and one to answer. Measured with `benches/probe/run`
//! (one statx on one CPU): 9 us when the supervisor lets the kernel run the call, 11
//! when it runs the call itself, against 25 under ptrace.
//!
//! A thread of ptnix (the *supervisor*) holds the filter's listener. For stat, lstat,
//! newfstatat and statx (and access and the xattr queries; readlink from Linux 5.14,
//! see `Sys::notified_link`) it reads the path from the tracee and resolves it as the
//! tracer would (`resolve`, with its own cache). A path that needs nothing is answered
//! with SECCOMP_USER_NOTIF_FLAG_CONTINUE: the kernel runs the call as the tracee made
//! it (the same window as a ptrace stop that leaves the path alone: another thread
//! could change the path meanwhile; ptnix is not a sandbox). A translated path is
//! looked up by the supervisor itself, and the `struct stat` or `struct statx` it gets
//! is written into the tracee's buffer (a link's target for readlink, the guest path
//! for `/proc`'s magic links): these calls have no other effect, and the
//! tracee has ptnix's credentials (ptnix does not run as root here, and no_new_privs
//! keeps setuid programs from changing them), so the answer is the one the kernel
//! would give the tracee.
//!
//! Not kept from the ptrace path: the check, when another process's `/proc/PID/exe`
//! is looked at during that process's exec, of which exec is in progress (a stat
//! then may show the loader).

use crate::hostfs::{self, TraceeFs};
use crate::mem;
use std::os::unix::ffi::OsStrExt;
use crate::procfiles::SNAPSHOT_FILES;
use crate::ptrace::Pid;
use crate::stats::Stats;
use crate::tracee::LoaderRun;
use hashbrown::HashMap;
use ptnix_syscalls::mapping::Mapping;
use ptnix_syscalls::path::PATH_MAX;
use ptnix_syscalls::procfs::{self, Owner};
use ptnix_syscalls::resolve::{self, Outcome, Request};
use ptnix_syscalls::table::{Class, Follow, PathArg, Sys};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// Programs ptnix started through their loader, by thread group (shared with the
/// tracer, which records them at exec).
pub type ExeMap = Arc<Mutex<HashMap<Pid, LoaderRun>>>;

// linux/seccomp.h. SECCOMP_IOCTL_NOTIF_ID_VALID as first defined (_IOR), which every
// kernel since 5.0 accepts.
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
pub(crate) const NOTIF_SEND: libc::c_ulong = 0xc018_2101;
const NOTIF_ID_VALID: libc::c_ulong = 0x8008_2102;
const FLAG_CONTINUE: u32 = 1;
/// __O_TMPFILE: O_TMPFILE without its O_DIRECTORY bit.
const O_TMPFILE_BIT: i32 = 0o20_000_000;
// SECCOMP_IOCTL_NOTIF_SET_FLAGS (_IOW('!', 4, __u64)) and its one flag, Linux 6.6.
const NOTIF_SET_FLAGS: libc::c_ulong = 0x4008_2104;
const FD_SYNC_WAKE_UP: u64 = 1;

#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
pub(crate) struct Resp {
    pub id: u64,
    pub val: i64,
    pub error: i32,
    pub flags: u32,
}

/// What the supervisor does with one call.
enum Answer {
    Continue,
    /// Return this (a value, or -errno) without running the call in the tracee.
    Value(i64),
    /// Answered already (an open's descriptor, see `notifopen`).
    Sent,
    /// Have the tracer run it again under ptrace (see `escalate`).
    Escalate,
}

/// What the supervisor needs, all of it its own but the exe records.
pub struct Supervisor {
    /// Shared with the threads that open FIFOs (see `notifopen`), which may outlive
    /// the supervisor's loop.
    listener: Arc<OwnedFd>,
    mapping: Mapping,
    exe: ExeMap,
    cache: crate::fscache::FsCache,
    pub stats: Arc<Mutex<Stats>>,
    log: Option<crate::log::Logger>,
    /// Where CPU placement counts a notification as a stop.
    activity: Option<crate::placement::Activity>,
    /// Opens are notified too (see `notifopen`): the tracer takes over those the
    /// supervisor cannot answer, and the tracer's listing base says which are.
    opens: Option<(Arc<crate::escalate::Escalations>, u32)>,
    /// Tracees' umasks, for the files it creates (shared with the tracer, which sees
    /// umask calls); None when this thread could not get an fs of its own.
    umasks: Option<Arc<crate::notifopen::Umasks>>,
    /// The path of ptnix's in-process object, if there is one (see `shim`).
    object: Option<Vec<u8>>,
}

/// Whether this host lets ptnix answer the stat family itself: Linux 5.6
/// (pidfd_getfd, which spawn needs; CONTINUE is 5.5), ptnix not root (its answers are
/// given with its own credentials), and process_vm_readv/writev allowed (a notified
/// tracee is not in a ptrace stop, so the word-by-word fallback cannot reach it).
/// Call after [`mem::probe_self`].
pub fn usable() -> bool {
    if !unprivileged() || !crate::kernel::at_least(5, 6) {
        return false;
    }
    mem::vm_works()
}

/// Whether ptnix runs as a user other than root, without capabilities a tracee could
/// drop ("CapEff:\t0000000000000000", hex, in /proc/self/status): it can then reach
/// nothing a tracee cannot. Read once (the fast path asks too, see `shim`).
pub(crate) fn unprivileged() -> bool {
    static UNPRIVILEGED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNPRIVILEGED.get_or_init(|| {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            return false;
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status.lines().find_map(|l| l.strip_prefix("CapEff:")).is_some_and(|v| v.trim().bytes().all(|b| b == b'0'))
    })
}

impl Supervisor {
    pub fn new(
        listener: OwnedFd,
        mapping: Mapping,
        exe: ExeMap,
        store_dir: &[u8],
        stats: bool,
        log: Option<crate::log::Logger>,
        activity: Option<crate::placement::Activity>,
    ) -> Supervisor {
        Supervisor {
            activity,
            listener: Arc::new(listener),
            mapping,
            exe,
            cache: crate::fscache::FsCache::new(store_dir),
            stats: Arc::new(Mutex::new(Stats::new(stats))),
            log,
            opens: None,
            umasks: None,
            object: None,
        }
    }

    /// Leaves the loader's opens of ptnix's object to the kernel at once.
    pub fn with_object(mut self, object: Option<Vec<u8>>) -> Supervisor {
        self.object = object;
        self
    }

    /// Answers opens too (see `notifopen`), handing the tracer those it cannot.
    pub fn with_opens(mut self, escalations: Arc<crate::escalate::Escalations>, listing_base: u32, umasks: Arc<crate::notifopen::Umasks>) -> Supervisor {
        self.opens = Some((escalations, listing_base));
        self.umasks = Some(umasks);
        self
    }

    /// Answers notifications until no tracee is left (see `orphaned`) or ptnix exits
    /// (the thread is never joined).
    pub fn run(mut self) {
        self.synchronous_wake_ups();
        // An fs of this thread's own, whose umask it may set to a tracee's for the
        // files it creates (unshare(2): CLONE_FS needs no privilege); without one,
        // such opens go to the tracer.
        // SAFETY: unshare with a flag; it changes only this thread.
        if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
            self.umasks = None;
        }
        loop {
            let mut n = Notif::default();
            // SAFETY: the kernel writes one struct seccomp_notif into `n`.
            if unsafe { libc::ioctl(self.listener.as_raw_fd(), NOTIF_RECV, &mut n as *mut Notif) } != 0 {
                match crate::ptrace::last_errno() {
                    libc::EINTR => continue,
                    // Every tracee is gone: nothing more comes (see `orphaned`).
                    libc::ENOENT if orphaned(self.listener.as_raw_fd()) => return,
                    // The caller died before it was received.
                    libc::ENOENT => continue,
                    _ => return,
                }
            }
            let t0 = std::time::Instant::now();
            // Each notification is a stop for the cache: store objects are checked
            // again (see `fscache`).
            self.cache.next_stop();
            let answer = match &self.opens {
                // The call was translated at a ptrace stop (see `escalate`): not a
                // notification of its own for placement either.
                Some((esc, _)) if esc.take_pass(n.pid as Pid) => Answer::Continue,
                _ => {
                    // A tracee to pin: wake the tracer (only where its kick is
                    // installed; otherwise it pins at its next wake-up).
                    if self.activity.as_ref().is_some_and(|a| a.noted(n.pid as Pid)) {
                        if let Some((esc, _)) = &self.opens {
                            esc.kick();
                        }
                    }
                    self.answer(&n)
                }
            };
            let resp = match answer {
                Answer::Continue => Some(Resp { id: n.id, val: 0, error: 0, flags: FLAG_CONTINUE }),
                Answer::Value(v) if v < 0 => Some(Resp { id: n.id, val: 0, error: v as i32, flags: 0 }),
                Answer::Value(v) => Some(Resp { id: n.id, val: v, error: 0, flags: 0 }),
                Answer::Sent => None,
                Answer::Escalate => {
                    if let Ok(mut s) = self.stats.lock() {
                        s.escalated += 1;
                    }
                    let made = self.opens.as_ref().is_some_and(|(esc, _)| esc.interrupt(n.pid as Pid, n.ip));
                    // EIO: the caller is gone, or ptnix is ending; never untranslated.
                    Some(Resp { id: n.id, val: 0, error: if made { crate::regs::ERESTARTNOINTR as i32 } else { -libc::EIO }, flags: 0 })
                }
            };
            // SAFETY: the kernel reads one struct seccomp_notif_resp. ENOENT: the
            // caller was interrupted or died meanwhile, and will not see it.
            if let Some(resp) = resp {
                unsafe { libc::ioctl(self.listener.as_raw_fd(), NOTIF_SEND, &resp as *const Resp) };
            }
            if let Ok(mut s) = self.stats.lock() {
                s.tracer_time += t0.elapsed();
            }
        }
    }

    /// Linux 6.6 ("seccomp: add the synchronous mode for seccomp_unotify"): with
    /// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP the kernel wakes the supervisor, and then the
    /// caller, on the CPU of the thread that wakes it, as a direct hand-over. A
    /// notification from a tracee on another CPU than the supervisor's then costs what
    /// one on the same CPU does (`benches/probe/run`: 10 us, against 75 us without the
    /// flag), provided the supervisor may run on the caller's CPU.
    ///
    /// Only without CPU placement (`--no-pin`, one CPU): there it took `ls -lR` from
    /// 1826 to 544 ms and `find` from 296 to 138 ms. With placement, where the
    /// supervisor stays on the tracer's CPU and tracees that stop often are moved
    /// there, an unpinned supervisor with synchronous wake-ups was slower (interleaved
    /// runs: `ls -lR` 335 -> 371 ms, gcc 286 -> 303 ms, the Nix build 6% slower), and
    /// a pinned one cannot follow a caller anyway.
    fn synchronous_wake_ups(&mut self) {
        if self.activity.is_some() {
            return;
        }
        let flags = FD_SYNC_WAKE_UP;
        // SAFETY: the kernel reads nothing but the integer argument (passed by value).
        let sync = unsafe { libc::ioctl(self.listener.as_raw_fd(), NOTIF_SET_FLAGS, flags) } == 0;
        if let Some(l) = &mut self.log {
            l.line(0, format_args!("notifications: synchronous wake-ups {}", if sync { "on" } else { "unavailable" }));
        }
    }

    fn still_valid(&self, id: u64) -> bool {
        id_valid(self.listener.as_raw_fd(), id)
    }

    fn answer(&mut self, n: &Notif) -> Answer {
        let tid = n.pid as Pid;
        let opens = self.opens.is_some();
        let Some(sys) = Sys::from_nr(n.nr as u64).filter(|s| s.notified_with(opens)) else { return Answer::Continue };
        // readlink(at) is a path like the others, never followed; its answer is the
        // link's target, written into the caller's buffer (`link_out`).
        let (a, link_out) = match sys.class() {
            Class::Paths(&[a]) => (a, None),
            Class::Readlink { dirfd, path, buf, size } => {
                let a = PathArg { dirfd, path, follow: Follow::Never, names_entry: false };
                (a, Some((n.args[usize::from(buf)], n.args[usize::from(size)] as i32)))
            }
            _ => return Answer::Continue,
        };
        // readlinkat(2)'s bufsiz is an int, refused before any lookup: "if (bufsiz <=
        // 0) return -EINVAL".
        if link_out.is_some_and(|(_, size)| size <= 0) {
            return Answer::Continue;
        }
        if let Ok(mut s) = self.stats.lock() {
            *s.notified.entry(sys.name()).or_default() += 1;
        }
        let ptr = n.args[a.path as usize];
        // NULL (statx's "NULL means the fd" since 6.11), a bad pointer, a path too
        // long, "": the kernel's business (it fails them the same way), with nothing
        // to translate. Memory ptnix may not read (a process that made itself
        // non-dumpable) fails as it does on the ptrace path: never untranslated.
        let path = match if ptr == 0 { Err(libc::EFAULT) } else { mem::read_path_direct(tid, ptr) } {
            Ok(p) => p,
            Err(libc::EFAULT | libc::ENAMETOOLONG) => return Answer::Continue,
            Err(_) => return Answer::Value(-i64::from(libc::EFAULT)),
        };
        // The caller may have died and its tid gone to another process since the
        // notification came: the path read may be that process's. An answer to a
        // notification that no longer stands is refused, so nothing is checked here;
        // what acts on the path (an open, a write of a result) checks it first
        // (seccomp_unotify(2), "the supervisor should ... check ... the ID").
        // Empty: the kernel's business. The object's path: the loader opens ptnix's
        // object by the host path ptnix gave it (see `shim`).
        if path.is_empty() || self.object.as_deref() == Some(&path[..]) {
            return Answer::Continue;
        }
        let open_flags = sys.notified_open().map(|i| n.args[usize::from(i)]);
        let follow_last = match open_flags {
            Some(f) => crate::entry::open_follows(f),
            None => a.follow.by_args(|i| n.args[usize::from(i)]).unwrap_or(true),
        };
        let dirfd = a.dirfd.map(|i| n.args[i as usize] as i32).unwrap_or(libc::AT_FDCWD);
        let redirected = if follow_last { self.exe_redirect(tid, &path) } else { None };
        let req = Request { path: redirected.as_deref().unwrap_or(&path), follow_last, names_entry: a.names_entry, ..Request::default() };
        // As on the ptrace path: an open looks at the whole path where it may matter,
        // and readlink always (a lone name may be a magic link of a /proc directory).
        let plain = link_out.is_none() && (open_flags.is_none() || (!SNAPSHOT_FILES.contains(&&path[..]) && !self.mapping.may_name_listed_dir(&path)));
        if redirected.is_none() && plain {
            let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            let mut fs = TraceeFs { tgid: tid, tid, cache: &mut self.cache, stats: &mut stats };
            if hostfs::lone_name_unchanged(&self.mapping, &mut fs, dirfd, req) {
                return Answer::Continue;
            }
        }
        let cwd = if req.path[0] == b'/' {
            b"/".to_vec()
        } else {
            match hostfs::start_dir_host(tid, dirfd) {
                Some(h) => self.mapping.to_guest(&h),
                // A bad or non-directory dirfd: the kernel says EBADF/ENOTDIR itself.
                None => return Answer::Continue,
            }
        };
        let tgid = if req.path.starts_with(b"/proc") || cwd.starts_with(b"/proc") { tgid_of(tid) } else { tid };
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.resolved += 1;
        let mut fs = TraceeFs { tgid, tid, cache: &mut self.cache, stats: &mut stats };
        let mut r = resolve::resolve(&self.mapping, &mut fs, &cwd, req);
        // A link under /proc reached through a symlink (/dev/fd/N): /proc/self is the
        // thread group's, which is the tid only for its leader, and what readlink
        // answers is that link's target.
        if link_out.is_some() && fs.tgid == tid && r.guest.starts_with(b"/proc/") {
            fs.tgid = tgid_of(tid);
            if fs.tgid != tid {
                r = resolve::resolve(&self.mapping, &mut fs, &cwd, req);
            }
        }
        let tgid = fs.tgid;
        if let Some((buf, size)) = link_out {
            let unchanged = matches!(r.outcome, Outcome::Unchanged);
            let host = match r.outcome {
                Outcome::Error(e) => return Answer::Value(-i64::from(e)),
                Outcome::Host(h) => h,
                Outcome::Unchanged => self.mapping.to_host(&r.guest),
            };
            // Exe links go to the tracer (`Sys::notified_link`): another process's,
            // since an exec of it may be in progress whose stop the tracer has not
            // processed yet (`exec::exe_redirect`); the caller's own where ptnix
            // started its program through its loader, since the tracer's stop also
            // puts AT_EXECFN back where the loader moved it (`auxv::settle_execfn`).
            match procfs::parse(&r.guest).filter(|f| f.file == b"exe").map(|f| f.owner) {
                Some(Owner::Pid(_)) => return Answer::Escalate,
                Some(Owner::Caller) if self.exe_redirect(tid, &r.guest).is_some() => return Answer::Escalate,
                _ => {}
            }
            let mut fs = TraceeFs { tgid, tid, cache: &mut self.cache, stats: &mut stats };
            let target = match hostfs::magic_link_shown(&self.mapping, &mut fs, &r.guest, &host, None) {
                Some(shown) => shown,
                // The kernel's readlink, on the path as the caller gave it.
                None if unchanged => return Answer::Continue,
                None => match link_target(&fs.local(&host)) {
                    Ok(t) => t,
                    Err(e) => return Answer::Value(-i64::from(e)),
                },
            };
            if !unchanged {
                stats.rewritten += 1;
                if let Some(log) = self.log.as_mut() {
                    log.line(tid, format_args!("{}: {} -> {} (notification)", sys.name(), crate::log::quote(&path), crate::log::quote(&host)));
                }
            }
            drop(stats);
            // Written only into the caller's memory (see above on stale paths).
            if !self.still_valid(n.id) {
                return Answer::Continue;
            }
            let len = target.len().min(size as usize);
            return match mem::write_direct(tid, buf, &target[..len]) {
                Ok(()) => Answer::Value(len as i64),
                Err(_) => Answer::Value(-i64::from(libc::EFAULT)),
            };
        }
        if let (Some(flags), Some((_, base))) = (open_flags, &self.opens) {
            if !matches!(r.outcome, Outcome::Error(_)) && crate::notifopen::needs_tracer(&self.mapping, *base, &r.guest, flags) {
                return Answer::Escalate;
            }
        }
        let host = match (r.outcome, redirected.is_some()) {
            (Outcome::Error(e), _) => return Answer::Value(-i64::from(e)),
            (Outcome::Unchanged, false) => return Answer::Continue,
            (Outcome::Unchanged, true) => self.mapping.to_host(&r.guest),
            (Outcome::Host(h), _) => h,
        };
        let local = fs.local(&host);
        stats.rewritten += 1;
        drop(stats);
        if let Some(log) = self.log.as_mut() {
            log.line(tid, format_args!("{}: {} -> {} (notification)", sys.name(), crate::log::quote(&path), crate::log::quote(&local)));
        }
        let listener = self.listener.as_raw_fd();
        // The path read must be the caller's before ptnix acts on it (an open may
        // truncate, O_TRUNC, or create).
        if (sys.notified_effect() || open_flags.is_some()) && !self.still_valid(n.id) {
            return Answer::Continue;
        }
        if sys.notified_effect() {
            return match crate::notifopen::effect(tid, sys, a, &n.args, &local) {
                Some(v) => Answer::Value(v),
                None => Answer::Escalate,
            };
        }
        if let Some(flags) = open_flags {
            let creates = flags as i32 & (libc::O_CREAT | O_TMPFILE_BIT) != 0;
            let create = match (creates, &self.umasks) {
                (false, _) => None,
                (true, Some(u)) => match u.of(tid) {
                    // open(path, flags, mode), openat(dirfd, path, flags, mode)
                    Some(umask) => Some((n.args[a.path as usize + 2] as u32 & 0o7777, umask)),
                    None => return Answer::Escalate,
                },
                (true, None) => return Answer::Escalate,
            };
            return match crate::notifopen::open_host(&self.listener, n.id, &local, flags, follow_last, create) {
                crate::notifopen::Opened::Sent => Answer::Sent,
                crate::notifopen::Opened::Error(e) => Answer::Value(-i64::from(e)),
                crate::notifopen::Opened::Escalate => Answer::Escalate,
            };
        }
        Answer::Value(emulate(tid, sys, &n.args, &local, &|| id_valid(listener, n.id)))
    }

    /// The program's guest path if `path` is the exe link of a process that ptnix
    /// started through its loader (the tracer's `exe_redirect`, without its check of an
    /// exec in progress).
    fn exe_redirect(&self, tid: Pid, path: &[u8]) -> Option<Vec<u8>> {
        if !path.starts_with(b"/proc/") {
            return None;
        }
        let f = procfs::parse(path).filter(|f| f.file == b"exe")?;
        let owner = match f.owner {
            Owner::Caller => tgid_of(tid),
            Owner::Pid(n) => tgid_of(n as Pid),
        };
        crate::exec::recorded_run(&self.exe, owner).map(|(run, _)| run.program)
    }
}

impl crate::engine::Engine {
    /// A tracee asks for a seccomp listener of its own, which the kernel refuses
    /// (EBUSY) while ptnix's filter has one: say once how to avoid it.
    pub(crate) fn listener_refused(&mut self) {
        if !std::mem::replace(&mut self.listener_hint_given, true) {
            eprintln!("ptnix: a program asked for a seccomp listener of its own, which the kernel refuses (EBUSY) while ptnix answers the stat family by notification; run it with --no-notif (PTNIX_NO_NOTIF=1)");
        }
    }

    /// A signal that comes while a tracee waits for the supervisor's answer interrupts
    /// the wait, and the call returns -ERESTARTSYS: after a handler installed without
    /// SA_RESTART the tracee would see EINTR, which no stat, access or getxattr returns
    /// natively (their lookups do not sleep interruptibly), nor an open of a file or
    /// directory. At the signal-delivery stop, before the handler runs, ptnix makes it
    /// -ERESTARTNOINTR, which the kernel always restarts (arch/x86/kernel/signal.c,
    /// handle_signal). Not for the open of a FIFO (on the host or below /nix), which
    /// waits natively too: the kernel may have run that open (after CONTINUE) and been
    /// cut in it, or ptnix's thread waits in it; there the handler's SA_RESTART
    /// decides, as natively (`alarm` around such an open ends it with EINTR).
    pub(crate) fn keep_notified_call(&mut self, pid: Pid) {
        use crate::regs::{ERESTARTNOINTR, ERESTARTSYS};
        let Ok(mut regs) = crate::ptrace::get_regs(pid) else { return };
        if regs.rax as i64 != ERESTARTSYS {
            return;
        }
        let Some(sys) = Sys::from_nr(regs.orig_rax) else { return };
        let waits_natively = sys.notified_open().is_some() && self.open_may_wait(pid, &regs, sys);
        if sys.notified_with(self.escalations.is_some()) && !waits_natively {
            regs.rax = ERESTARTNOINTR as u64;
            let _ = crate::ptrace::set_regs(pid, &regs);
        }
    }

    /// At a signal's delivery to `pid`, stopped in an open (`sys`): whether it opens a
    /// FIFO, whose open waits natively (see `keep_notified_call`).
    fn open_may_wait(&mut self, pid: Pid, regs: &crate::ptrace::Regs, sys: Sys) -> bool {
        let (Class::Paths(&[a]), Some(fi)) = (sys.class(), sys.notified_open()) else { return false };
        let ptr = crate::regs::arg(regs, a.path);
        let Ok(path) = self.path_arg(pid, regs, a.path, ptr) else { return false };
        if path.is_empty() {
            return false;
        }
        let follow_last = crate::entry::open_follows(crate::regs::arg(regs, fi));
        let r = self.resolve(pid, regs, a.dirfd, Request { path: &path, follow_last, ..Request::default() });
        let host = match r.outcome {
            Outcome::Host(h) => h,
            Outcome::Unchanged if !r.guest.is_empty() => self.mapping.to_host(&r.guest),
            _ => return false,
        };
        // The tracee's own /proc/self, not ptnix's.
        let tgid = self.tgid(pid);
        let fs = TraceeFs { tgid, tid: pid, cache: &mut self.cache, stats: &mut self.stats };
        let local = fs.local(&host);
        let local = std::ffi::OsStr::from_bytes(&local);
        let meta = if follow_last { std::fs::metadata(local) } else { std::fs::symlink_metadata(local) };
        // (Devices are left out: /dev/null is one, and its open never waits.)
        meta.is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()))
    }
}

/// Whether no task uses the filter any more. The listener then polls as EPOLLHUP
/// (Linux 5.8, "seccomp: notify about unused filter"), and since Linux 6.11
/// ("seccomp: interrupt SECCOMP_IOCTL_NOTIF_RECV when all users have exited",
/// kernel/seccomp.c `recv_wait_event` returns when `filter->users` is 0) a receive
/// fails with ENOENT at once instead of waiting: without this check the supervisor
/// would receive again and again, on the tracer's CPU, from the last tracee's end to
/// ptnix's. (Before 6.11 the receive waits, and the thread with it.)
fn orphaned(listener: i32) -> bool {
    let mut p = libc::pollfd { fd: listener, events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd, no wait.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1 && p.revents & libc::POLLHUP != 0 && p.revents & libc::POLLIN == 0
}

/// Whether notification `id` still stands: its caller still waits for the answer (it
/// has not died, nor had its pid reused, nor been interrupted).
fn id_valid(listener: i32, id: u64) -> bool {
    // SAFETY: the kernel reads one u64.
    unsafe { libc::ioctl(listener, NOTIF_ID_VALID, &id as *const u64) == 0 }
}

fn tgid_of(tid: Pid) -> Pid {
    hostfs::proc_tgid(tid).unwrap_or(tid)
}

/// xattr(7): "XATTR_SIZE_MAX": the kernel reads and writes at most this much.
const XATTR_SIZE_MAX: u64 = 65536;
/// xattr(7): a name is at most 255 bytes ("ERANGE: The name is too long").
const XATTR_NAME_MAX: usize = 255;

/// Runs `sys` on host path `host` with the tracee's other arguments, writes what the
/// kernel would have written into the tracee's buffer, and gives the return value.
/// The buffer is written only while `valid()`: a caller that has gone (or run on, a
/// signal handler's frame in place of its own) must not get bytes in its memory.
fn emulate(tid: Pid, sys: Sys, args: &[u64; 6], host: &[u8], valid: &dyn Fn() -> bool) -> i64 {
    let (dirfd, name, _held) = match short_path(host) {
        Ok(x) => x,
        Err(e) => return -i64::from(e),
    };
    let Ok(c) = std::ffi::CString::new(name) else { return -i64::from(libc::ENOENT) };
    match sys {
        Sys::access | Sys::faccessat | Sys::faccessat2 => return access(dirfd, &c, sys, args),
        Sys::getxattr | Sys::lgetxattr | Sys::listxattr | Sys::llistxattr => return xattr(tid, dirfd, &c, sys, args, valid),
        _ => {}
    }
    // struct stat is 144 bytes on x86_64, struct statx 256.
    let mut buf = [0u8; 256];
    let (r, out, len) = match sys {
        Sys::statx => {
            // SAFETY: statx writes one struct statx into `buf`.
            let r = unsafe { libc::syscall(libc::SYS_statx, dirfd, c.as_ptr(), args[2] as i32, args[3] as u32, buf.as_mut_ptr()) };
            (r, args[4], 256)
        }
        _ => {
            let (flags, out) = match sys {
                Sys::stat => (0, args[1]),
                Sys::lstat => (libc::AT_SYMLINK_NOFOLLOW, args[1]),
                _ => (args[3] as i32, args[2]),
            };
            // SAFETY: newfstatat writes one struct stat into `buf`.
            let r = unsafe { libc::syscall(libc::SYS_newfstatat, dirfd, c.as_ptr(), buf.as_mut_ptr(), flags) };
            (r, out, std::mem::size_of::<libc::stat>())
        }
    };
    if r != 0 {
        return -i64::from(crate::ptrace::last_errno());
    }
    if !valid() {
        return -i64::from(libc::EINTR);
    }
    match mem::write_direct(tid, out, &buf[..len]) {
        Ok(()) => 0,
        Err(_) => -i64::from(libc::EFAULT),
    }
}

/// access(2), faccessat(2) (real ids, like access) and faccessat2(2) (its flags).
fn access(dirfd: i32, c: &std::ffi::CStr, sys: Sys, args: &[u64; 6]) -> i64 {
    let r = match sys {
        // SAFETY: plain syscalls on a valid C string.
        Sys::access => unsafe { libc::syscall(libc::SYS_faccessat, dirfd, c.as_ptr(), args[1] as i32) },
        Sys::faccessat => unsafe { libc::syscall(libc::SYS_faccessat, dirfd, c.as_ptr(), args[2] as i32) },
        _ => unsafe { libc::syscall(libc::SYS_faccessat2, dirfd, c.as_ptr(), args[2] as i32, args[3] as i32) },
    };
    if r < 0 {
        -i64::from(crate::ptrace::last_errno())
    } else {
        r
    }
}

/// getxattr/lgetxattr(path, name, value, size) and listxattr/llistxattr(path, list,
/// size), through the supervisor's own descriptor for a long path.
fn xattr(tid: Pid, dirfd: i32, c: &std::ffi::CStr, sys: Sys, args: &[u64; 6], valid: &dyn Fn() -> bool) -> i64 {
    let get = matches!(sys, Sys::getxattr | Sys::lgetxattr);
    let follow = matches!(sys, Sys::getxattr | Sys::listxattr);
    let (out, size) = if get { (args[2], args[3].min(XATTR_SIZE_MAX)) } else { (args[1], args[2].min(XATTR_SIZE_MAX)) };
    let name = if get {
        match mem::read_path_direct(tid, args[1]) {
            Ok(n) if n.len() > XATTR_NAME_MAX => return -i64::from(libc::ERANGE),
            Ok(n) => std::ffi::CString::new(n).ok(),
            Err(libc::ENAMETOOLONG) => return -i64::from(libc::ERANGE),
            Err(_) => return -i64::from(libc::EFAULT),
        }
    } else {
        None
    };
    // A path relative to a descriptor, for the *xattr calls that have no *at form.
    let path = if dirfd == libc::AT_FDCWD {
        c.to_bytes().to_vec()
    } else {
        let mut p = format!("/proc/self/fd/{dirfd}/").into_bytes();
        p.extend_from_slice(c.to_bytes());
        p
    };
    let Ok(path) = std::ffi::CString::new(path) else { return -i64::from(libc::ENOENT) };
    let mut buf = vec![0u8; size as usize];
    let p = if size == 0 { std::ptr::null_mut() } else { buf.as_mut_ptr() };
    // SAFETY: the calls write at most `size` bytes into `buf`.
    let r = unsafe {
        match (name.as_ref(), follow) {
            (Some(n), true) => libc::getxattr(path.as_ptr(), n.as_ptr(), p.cast(), size as usize),
            (Some(n), false) => libc::lgetxattr(path.as_ptr(), n.as_ptr(), p.cast(), size as usize),
            (None, true) => libc::listxattr(path.as_ptr(), p.cast(), size as usize),
            (None, false) => libc::llistxattr(path.as_ptr(), p.cast(), size as usize),
        }
    };
    if r < 0 {
        return -i64::from(crate::ptrace::last_errno());
    }
    if size > 0 && r > 0 && (!valid() || mem::write_direct(tid, out, &buf[..r as usize]).is_err()) {
        return -i64::from(libc::EFAULT);
    }
    r as i64
}

/// readlink(2) of a host path of any length (see `short_path`).
fn link_target(host: &[u8]) -> Result<Vec<u8>, i32> {
    let (dirfd, name, _held) = short_path(host)?;
    hostfs::readlink_at(dirfd, &std::ffi::CString::new(name).map_err(|_| libc::ENOENT)?)
}

/// A directory descriptor and a name relative to it that reach `host` with every
/// piece under PATH_MAX (the kernel refuses longer ones): the directories of a long
/// path are opened piece by piece. The descriptor is held by the third element.
pub(crate) fn short_path(host: &[u8]) -> Result<(i32, Vec<u8>, Option<OwnedFd>), i32> {
    let mut held: Option<OwnedFd> = None;
    let mut rest = host;
    while rest.len() >= PATH_MAX {
        let cut = memchr::memrchr(b'/', &rest[..PATH_MAX - 1]).filter(|&i| i > 0).ok_or(libc::ENAMETOOLONG)?;
        let dir = hostfs::open_dir_at(held.as_ref().map_or(libc::AT_FDCWD, |f| f.as_raw_fd()), &rest[..cut])?;
        held = Some(dir);
        rest = &rest[cut + 1..];
    }
    Ok((held.as_ref().map_or(libc::AT_FDCWD, |f| f.as_raw_fd()), rest.to_vec(), held))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    /// A listener whose filter no task uses any more: a thread installs a filter that
    /// allows everything, with SECCOMP_FILTER_FLAG_NEW_LISTENER, and exits.
    fn orphaned_listener() -> OwnedFd {
        let fd = std::thread::spawn(|| {
            let prog = [libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: libc::SECCOMP_RET_ALLOW }];
            let fprog = libc::sock_fprog { len: 1, filter: prog.as_ptr() as *mut libc::sock_filter };
            // SAFETY: prctl and seccomp on this thread alone (no TSYNC), which ends here.
            unsafe {
                assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
                let flags = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
                libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, flags, &fprog as *const libc::sock_fprog) as i32
            }
        })
        .join()
        .unwrap();
        assert!(fd >= 0, "a seccomp listener: {}", std::io::Error::last_os_error());
        // SAFETY: the listener the kernel just gave this process.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    /// Since Linux 6.11 a receive on such a listener fails with ENOENT at once, which
    /// also says that one caller died: the supervisor must see the difference and
    /// end, not receive again and again on the tracer's CPU until ptnix exits. Before
    /// 6.11 the receive waits: the thread must then sleep, using no CPU.
    #[test]
    fn the_supervisor_ends_when_no_task_uses_the_filter() {
        let listener = orphaned_listener();
        let sup = Supervisor::new(listener, Mapping::new(Vec::<(Vec<u8>, Vec<u8>)>::new()).unwrap(), ExeMap::default(), b"/nix/store", false, None, None);
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            let _ = tid_tx.send(unsafe { libc::gettid() });
            sup.run();
            let _ = tx.send(());
        });
        let tid = tid_rx.recv().unwrap();
        if !crate::kernel::at_least(6, 11) {
            // utime and stime, fields 14 and 15 of stat(5): the 12th and 13th after the
            // name's closing parenthesis (the state, field 3, is the first).
            // None once the thread has ended (where the kernel is newer than it says).
            let ticks = || {
                let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
                let f: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
                Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
            };
            let before = ticks();
            std::thread::sleep(std::time::Duration::from_millis(500));
            if let (Some(b), Some(a)) = (before, ticks()) {
                assert!(a - b < 10, "the supervisor spins on an orphaned listener");
            }
            return;
        }
        // A hang detector, not a measurement: it returns at once when it works.
        assert!(rx.recv_timeout(std::time::Duration::from_secs(60)).is_ok(), "the supervisor kept receiving from an orphaned listener");
    }
}
