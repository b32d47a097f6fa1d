//! The event loop: waitpid on every tracee and dispatch each stop.

use crate::ptrace::{self, Pid, Wait};
use crate::shortlinks::ShortLinks;
use crate::spawn::{self, SpawnError};
use crate::tracee::{LoaderRun, Tracee};
use crate::fscache::FsCache;
use crate::log::Logger;
use crate::placement::{self, Placement};
use crate::stats::Stats;
use crate::{kernel, signals, standins};
use std::sync::Arc;
use std::time::Instant;
use hashbrown::HashMap;
use ptnix_syscalls::bpf;
use ptnix_syscalls::table::Optional;
use ptnix_syscalls::mapping::Mapping;
use std::ffi::CString;

pub struct Options {
    pub mapping: Mapping,
    /// Try the seccomp filter (falls back to pure ptrace if it cannot be installed).
    pub seccomp: bool,
    /// Keep tracees that stop often on the tracer's CPU (see `placement`).
    pub pin: bool,
    /// Answer the stat family by seccomp user notification where the kernel allows
    /// (see `notif`).
    pub notif: bool,
    /// Preload the in-process fast path into dynamically linked programs (see `shim`).
    pub shim: bool,
    /// Print `--stats` at exit.
    pub stats: bool,
    /// `-v` level (0: quiet) and where the log goes (None: stderr).
    pub verbose: u8,
    pub log_file: Option<std::fs::File>,
    /// Launcher options (proot mode).
    pub launcher: Launcher,
}

/// What proot's command line can ask for beyond bindings.
#[derive(Clone, Debug, Default)]
pub struct Launcher {
    /// `-0`: getuid and friends say 0. `-k`: uname's release field.
    pub optional: Optional,
    pub release: Option<Vec<u8>>,
    /// `-w`: the guest directory the command starts in (its chdir is translated).
    pub cwd: Option<Vec<u8>>,
    /// `--kill-on-exit`: when the command exits, kill what it left running.
    pub kill_on_exit: bool,
}

/// How the command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signaled(i32),
    /// The command never started: it was not found (127), could not be executed
    /// (126), or its working directory could not be entered (125); ptnix printed why.
    NotStarted(i32),
}

#[derive(Debug)]
pub enum RunError {
    Spawn(SpawnError),
    /// The bind table could not be completed (see `standins`).
    Binds(String),
    Wait(i32),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => e.fmt(f),
            RunError::Binds(e) => f.write_str(e),
            RunError::Wait(e) => write!(f, "waitpid failed: {}", std::io::Error::from_raw_os_error(*e)),
        }
    }
}

pub struct Engine {
    pub(crate) mapping: Mapping,
    /// The seccomp filter is active: stops come only for traced syscalls.
    pub(crate) seccomp: bool,
    pub(crate) old_seccomp_order: bool,
    pub(crate) tracees: HashMap<Pid, Tracee>,
    pub(crate) shortlinks: ShortLinks,
    /// The in-process fast path, when in use.
    pub(crate) shim: Option<crate::shim::Shim>,
    /// Remembered facts about immutable store objects (see `fscache`).
    pub(crate) cache: FsCache,
    /// Thread group -> guest path of the program, for processes whose loader ptnix
    /// started explicitly: `/proc/PID/exe` names the loader, the guest sees this.
    /// Shared with the notification supervisor (see `notif`).
    pub(crate) exe_of: crate::notif::ExeMap,
    /// Host socket path -> the name the tracee bound it with. getsockname and
    /// getpeername return the name as bound, not the resolved host path.
    pub(crate) bound_names: HashMap<Vec<u8>, Vec<u8>>,
    /// (thread group, fd) -> directory position at which its synthetic entries were
    /// returned, for filesystems that refuse ptnix's positions (see `dirents`).
    pub(crate) delivered: HashMap<(Pid, i32), u64>,
    pub(crate) stats: Stats,
    pub(crate) log: Option<Logger>,
    pub(crate) launcher: Launcher,
    pub(crate) placement: Option<Placement>,
    /// Some tracee has installed a seccomp filter of its own (see `ownfilter`).
    pub(crate) any_own_filter: bool,
    /// The filter was installed with SECCOMP_FILTER_FLAG_SPEC_ALLOW (see `spawn`).
    pub(crate) spec_allow: bool,
    /// Descriptors of listed directories are kept at or above this (0: none; see
    /// `listingfd`).
    pub(crate) listing_base: u32,
    /// The stat family goes to the notification supervisor (see `notif`).
    pub(crate) notifying: bool,
    pub(crate) listener_hint_given: bool,
    /// Notified calls the supervisor hands over (see `escalate`).
    pub(crate) escalations: Option<Arc<crate::escalate::Escalations>>,
    /// Tracees' umasks as the supervisor knows them (see `notifopen`).
    pub(crate) umasks: Option<Arc<crate::notifopen::Umasks>>,
    root: Pid,
    /// The command has exec'ed (until then the root process is ptnix's own child).
    root_started: bool,
    outcome: Option<Outcome>,
}

/// Runs `argv` under ptnix until every tracee has exited.
pub fn run(opts: Options, argv: &[CString]) -> Result<Outcome, RunError> {
    crate::mem::probe_self();
    let mut shortlinks = ShortLinks::default();
    let mapping = standins::complete(opts.mapping, &mut shortlinks).map_err(RunError::Binds)?;
    let mut optional = opts.launcher.optional;
    optional.placement = opts.pin && placement::worthwhile();
    optional.listing_fd_base = if opts.seccomp { crate::listingfd::base(&mapping) } else { 0 };
    // The fast path needs the filter (which lets its calls through by their address
    // and cookie), a store that maps by prefix alone, and a kernel it runs on.
    let shim = match (opts.seccomp && opts.shim && crate::shim::kernel_supports(), mapping.plain_store()) {
        (true, Some(store)) => crate::shim::Shim::install(&mut shortlinks, &store, mapping.plain_nix().as_deref(), mapping.host_root_binds(), &crate::hostfs::special_lone_names(&mapping)),
        _ => None,
    };
    optional.shim_cookie = shim.as_ref().map_or(0, |s| s.cookie);
    let filter = opts.seccomp.then(|| bpf::build_filter_with(optional));
    let notify_open = kernel::at_least(5, 14);
    let notifying = (opts.seccomp && opts.notif && crate::notif::usable())
        .then(|| bpf::build_filter_with(Optional { user_notif: true, notify_open, ..optional }));
    if notifying.is_some() {
        // The supervisor reads tracees' memory with process_vm_readv, which Yama's
        // ptrace_scope 1 allows only in ptnix's descendants: an orphan (a daemon's
        // double fork) is reparented to ptnix instead of init or a session's
        // subreaper, so it stays one. (The tracer itself falls back to PEEKDATA.)
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let filters = filter.as_deref().map(|plain| spawn::Filters { plain, notify: notifying.as_deref() });
    let cwd = opts.launcher.cwd.as_deref();
    let spawned = match spawn::spawn(argv, filters, cwd) {
        Err(spawn::SpawnError::NoListener) => spawn::spawn(argv, filters.map(|f| spawn::Filters { notify: None, ..f }), cwd),
        r => r,
    }
    .map_err(RunError::Spawn)?;
    // After the fork, as every thread of ptnix's. Reading /tmp took 0.4 ms of every
    // start with 800 entries there (more on a shared host): it overlaps the command's
    // start instead, and ends before ptnix does.
    let sweep = std::thread::Builder::new().name("ptnix-sweep".into()).spawn(crate::shortlinks::sweep_stale).ok();
    // Placement starts a thread, and the supervisor runs on the CPU it gives ptnix.
    let placement = if optional.placement { Placement::start() } else { None };
    let store_dir = mapping.to_host(b"/nix/store");
    let exe_of = crate::notif::ExeMap::default();
    let escalations = (spawned.listener.is_some() && notify_open).then(|| Arc::new(crate::escalate::Escalations::new()));
    let umasks = escalations.as_ref().map(|_| Arc::new(crate::notifopen::Umasks::default()));
    let notif_stats = spawned.listener.map(|listener| {
        let log = logger(opts.verbose, opts.log_file.as_ref().and_then(|f| f.try_clone().ok()));
        let activity = placement.as_ref().map(Placement::activity);
        let mut sup = crate::notif::Supervisor::new(listener, mapping.clone(), exe_of.clone(), &store_dir, opts.stats, log, activity)
            .with_object(shim.as_ref().map(|s| s.object.clone()));
        if let (Some(esc), Some(u)) = (&escalations, &umasks) {
            sup = sup.with_opens(Arc::clone(esc), optional.listing_fd_base, Arc::clone(u));
        }
        let stats = sup.stats.clone();
        // Without the supervisor the tracee's first stat would wait for ever: that
        // is not started (a thread that cannot be made is an out-of-memory host).
        std::thread::Builder::new().name("ptnix-notif".into()).spawn(move || sup.run()).expect("starting the notification supervisor");
        stats
    });
    signals::forward_to(spawned.pid);
    let mut e = Engine {
        mapping,
        seccomp: spawned.seccomp,
        old_seccomp_order: kernel::seccomp_stop_precedes_entry_stop(),
        tracees: HashMap::new(),
        shortlinks,
        shim,
        cache: FsCache::new(&store_dir),
        exe_of,
        bound_names: HashMap::new(),
        delivered: HashMap::new(),
        stats: Stats::new(opts.stats),
        log: logger(opts.verbose, opts.log_file),
        launcher: opts.launcher,
        placement,
        any_own_filter: false,
        spec_allow: spawned.spec_allow,
        // The filter may have been refused (pure-ptrace mode): then every getdents stops.
        listing_base: if spawned.seccomp { optional.listing_fd_base } else { 0 },
        notifying: notif_stats.is_some(),
        escalations,
        umasks,
        listener_hint_given: false,
        root: spawned.pid,
        root_started: false,
        outcome: None,
    };
    e.tracees.insert(spawned.pid, Tracee { linked: true, ..Tracee::default() });
    e.stats.shimmed = e.shim.as_ref().map(|_| 0);
    let r = e.event_loop();
    match sweep {
        Some(t) => drop(t.join()),
        None => crate::shortlinks::sweep_stale(),
    }
    e.shortlinks.cleanup();
    if e.stats.enabled {
        if let Some(s) = &notif_stats {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            e.stats.merge(&s);
        }
        e.stats.moves = e.placement.as_ref().map(|p| p.moves);
        eprint!("{}", e.stats.report());
    }
    r
}

/// The `-v` log at `level` (none at 0), to `file` or else stderr.
fn logger(level: u8, file: Option<std::fs::File>) -> Option<Logger> {
    (level > 0).then(|| {
        let out: Box<dyn std::io::Write + Send> = match file {
            Some(f) => Box::new(std::io::LineWriter::new(f)),
            None => Box::new(std::io::stderr()),
        };
        Logger::new(level, out)
    })
}

const STOP_SIGNALS: [i32; 4] = [libc::SIGSTOP, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];

impl Engine {
    fn event_loop(&mut self) -> Result<Outcome, RunError> {
        let r = self.events();
        if let Some(e) = &self.escalations {
            e.close();
        }
        r
    }

    fn events(&mut self) -> Result<Outcome, RunError> {
        loop {
            if self.escalations.as_ref().is_some_and(|e| e.pending()) {
                self.interrupt_escalated();
            }
            let w = ptrace::wait_any().map_err(RunError::Wait)?;
            let t0 = self.stats.enabled.then(Instant::now);
            match w {
                Wait::NoChildren => break,
                Wait::Interrupted => {}
                Wait::Exited(pid, code) => self.gone(pid, Outcome::Exited(code)),
                Wait::Signaled(pid, sig) => self.gone(pid, Outcome::Signaled(sig)),
                Wait::Stopped(pid, status) => self.stopped(pid, status),
            }
            // Tracees the supervisor wants pinned (none without one: no lock taken at
            // every stop of the pure-ptrace mode).
            if let (true, Some(pl)) = (self.notifying, self.placement.as_mut()) {
                for tid in pl.wanted() {
                    if let Some(t) = self.tracees.get_mut(&tid) {
                        pl.pin_notified(tid, &mut t.place);
                    }
                }
            }
            if let Some(t0) = t0 {
                self.stats.tracer_time += t0.elapsed();
            }
        }
        // The root always reports its end before ECHILD; Exited(0) is never invented.
        Ok(self.outcome.unwrap_or(Outcome::Signaled(libc::SIGKILL)))
    }

    /// The programs ptnix started through their loader, by thread group.
    pub(crate) fn exes(&self) -> std::sync::MutexGuard<'_, HashMap<Pid, LoaderRun>> {
        self.exe_of.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn gone(&mut self, pid: Pid, how: Outcome) {
        if let Some(e) = &self.escalations {
            e.forget(pid);
        }
        if let Some(u) = &self.umasks {
            u.forget(pid);
        }
        if let Some(t) = self.tracees.remove(&pid) {
            if let Some(pl) = self.placement.as_mut() {
                pl.gone(pid, &t.place);
            }
            if t.tgid == Some(pid) || t.tgid.is_none() {
                self.exes().remove(&pid);
                if !self.delivered.is_empty() {
                    self.delivered.retain(|&(tgid, _), _| tgid != pid);
                }
            }
        }
        if pid == self.root {
            self.outcome = Some(match how {
                Outcome::Exited(c) if !self.root_started => Outcome::NotStarted(c),
                how => how,
            });
            signals::root_gone();
            if self.launcher.kill_on_exit {
                for &t in self.tracees.keys() {
                    // SAFETY: SIGKILL to our own tracees; ESRCH is harmless.
                    unsafe { libc::kill(t, libc::SIGKILL) };
                }
            }
        }
    }

    /// Resumes `pid`, delivering `sig`. The resume request decides the next stop:
    /// PTRACE_SYSCALL stops at the next syscall entry/exit, PTRACE_CONT only at the
    /// next seccomp, event or signal stop.
    pub(crate) fn resume(&mut self, pid: Pid, sig: i32) {
        let want_syscall_stops = match self.tracees.get_mut(&pid) {
            Some(t) => {
                if let Some(pl) = self.placement.as_mut() {
                    pl.resumed(&mut t.place);
                }
                !self.seccomp || t.exit.is_some() || t.skip_entry_stop || t.escalated || t.escalated_exit
            }
            None => !self.seccomp,
        };
        // ESRCH: the tracee died meanwhile; waitpid will say so.
        let _ = if want_syscall_stops { ptrace::syscall(pid, sig) } else { ptrace::cont(pid, sig) };
    }

    fn stopped(&mut self, pid: Pid, status: i32) {
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        // A new child's first stop can come before its parent's fork event.
        let t = self.tracees.entry(pid).or_default();
        let first = !t.started;
        t.started = true;
        if let Some(pl) = self.placement.as_mut() {
            pl.stopped(pid, &mut t.place);
        }

        if sig == (libc::SIGTRAP | 0x80) {
            return self.syscall_stop(pid);
        }
        if event != libc::PTRACE_EVENT_SECCOMP {
            self.stats.other += 1;
        }
        match event {
            libc::PTRACE_EVENT_SECCOMP => {
                // An injected syscall, or one translated at its entry stop already (see
                // `escalate`) that the filter stops as well.
                if self.tracees.get(&pid).is_some_and(|t| t.injecting || t.escalated_exit) {
                    self.resume(pid, 0);
                } else if self.seccomp && !self.foreign_trace(pid) {
                    self.entry_stop(pid);
                } else {
                    self.no_tracer(pid);
                }
            }
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                if let Ok(child) = ptrace::event_msg(pid) {
                    let child = child as Pid;
                    let (parent_place, parent_filter, parent_all_getdents, parent_landlocked) = self
                        .tracees
                        .get(&pid)
                        .map(|t| (t.place.clone(), t.own_filter, t.all_getdents, t.landlocked))
                        .unwrap_or_default();
                    let c = self.tracees.entry(child).or_default();
                    c.linked = true;
                    // Filters are inherited across fork and clone (ptnix's getdents
                    // filter too; see `listingfd` for the one race this leaves).
                    c.own_filter |= parent_filter;
                    c.all_getdents |= parent_all_getdents;
                    // A Landlock domain is inherited as well (landlock(7)).
                    c.landlocked |= parent_landlocked;
                    // kernel/fork.c: a fork or vfork event (exit signal SIGCHLD, or
                    // CLONE_VFORK) is a new process, which leads its own thread group;
                    // knowing it saves reading /proc/CHILD/status.
                    if event != libc::PTRACE_EVENT_CLONE && !c.exec_seen {
                        c.tgid.get_or_insert(child);
                    }
                    if let Some(pl) = self.placement.as_mut() {
                        pl.forked(&parent_place, child, &mut c.place);
                    }
                    // A new process runs the same program as its parent until it
                    // execs. (A new thread shares its parent's thread group.)
                    // The child may have run, and exec'ed, before this event came.
                    let exec_seen = self.tracees.get(&child).is_some_and(|t| t.exec_seen);
                    if event != libc::PTRACE_EVENT_CLONE && !exec_seen {
                        let tgid = self.tgid(pid);
                        let mut exes = self.exes();
                        if let Some(exe) = exes.get(&tgid).cloned() {
                            exes.entry(child).or_insert(exe);
                        }
                    }
                }
                self.resume(pid, 0);
            }
            libc::PTRACE_EVENT_EXEC => {
                self.exec_event(pid);
                self.fix_auxv(pid);
                self.resume(pid, 0);
            }
            libc::PTRACE_EVENT_STOP => {
                let escalating = self.tracees.get_mut(&pid).and_then(|t| t.escalating.take());
                if let (libc::SIGTRAP, Some(ip)) = (sig, escalating) {
                    // ptnix's PTRACE_INTERRUPT: the call restarts at an entry stop. No
                    // signal handler may run before it is done: under a storm of
                    // signals it would be notified, handed over and cut by the next
                    // signal again and again (pending signals wait until its exit
                    // stop; the calls handed over do not block, see `notifopen`).
                    // Unless a handler runs already (see `escalate`).
                    if crate::escalate::restarting(pid, ip) {
                        self.hold_signals(pid);
                        if let Some(t) = self.tracees.get_mut(&pid) {
                            t.escalated = true;
                        }
                    }
                    self.resume(pid, 0);
                } else if !first && STOP_SIGNALS.contains(&sig) {
                    // Group-stop: stay stopped (job control works) but keep reporting.
                    let _ = ptrace::listen(pid);
                } else {
                    self.resume(pid, 0);
                }
            }
            0 if first && sig == libc::SIGSTOP => {
                // Our own spawn handshake (or an attach stop): swallow it.
                self.resume(pid, 0);
            }
            0 => {
                if self.notifying {
                    self.keep_notified_call(pid);
                }
                self.resume(pid, sig)
            }
            _ => self.resume(pid, 0),
        }
    }

    /// Makes the interrupts the supervisor asked for (see `escalate`).
    fn interrupt_escalated(&mut self) {
        let Some(esc) = self.escalations.clone() else { return };
        esc.serve(|tid, ip| {
            let made = ptrace::interrupt(tid).is_ok();
            if made {
                self.tracees.entry(tid).or_default().escalating = Some(ip);
            }
            made
        });
    }

    /// Processes the stop `pid` has already reported, if any, before ptnix answers
    /// another tracee about it: that tracee's syscall may have been made after it.
    pub(crate) fn process_pending(&mut self, pid: Pid) {
        match ptrace::wait_pid_nohang(pid) {
            Some(Wait::Stopped(p, status)) => self.stopped(p, status),
            Some(Wait::Exited(p, code)) => self.gone(p, Outcome::Exited(code)),
            Some(Wait::Signaled(p, sig)) => self.gone(p, Outcome::Signaled(sig)),
            _ => {}
        }
    }

    /// execve succeeded. If a non-leader thread called it, the kernel has killed the
    /// other threads and given the caller the leader's tid; PTRACE_GETEVENTMSG says
    /// which tid it had. Its state moves to the leader's tid.
    fn exec_event(&mut self, pid: Pid) {
        let former = ptrace::event_msg(pid).map(|m| m as Pid).unwrap_or(pid);
        if former != pid {
            // The old leader died without an exit of its own, and the exec'ing thread
            // runs a new program: nothing handed over stands for either tid.
            if let Some(e) = &self.escalations {
                e.forget(former);
                e.forget(pid);
            }
            if let Some(u) = &self.umasks {
                u.forget(former);
                u.forget(pid);
            }
            // The exec'ing thread's state (its pending exe) moves to the leader's tid.
            let moved = self.tracees.remove(&former);
            if let Some(m) = moved {
                let moved_place = m.place.clone();
                // The old leader is gone without an exit event of its own.
                let old = self.tracees.insert(pid, m);
                if let Some(pl) = self.placement.as_mut() {
                    if let Some(old) = old {
                        pl.gone(pid, &old.place);
                    }
                    pl.renamed(former, pid, &moved_place);
                }
            }
        }
        let t = self.tracees.entry(pid).or_default();
        match t.pending_exe.take() {
            Some(exe) => self.exes().insert(pid, exe),
            None => self.exes().remove(&pid),
        };
        if pid == self.root {
            self.root_started = true;
        }
        let t = self.tracees.entry(pid).or_default();
        t.tgid = Some(pid);
        t.exec_seen = true;
        t.scratch = None;
        t.exit = None;
        t.skip_entry_stop = false;
        t.execfn_watch = None;
        t.injecting = false;
        // The signal mask survives execve: never leave ptnix's in place.
        if let Some(m) = t.held_sigmask.take() {
            let _ = ptrace::set_sigmask(pid, m);
        }
        // Pure-ptrace mode: the execve exit stop is still to come.
        t.in_syscall = true;
        t.started = true;
    }

    fn syscall_stop(&mut self, pid: Pid) {
        let t = self.tracees.entry(pid).or_default();
        if self.seccomp {
            // The entry of a call the supervisor handed over (see `escalate`): translate
            // it here; the supervisor lets its notification through.
            if t.escalated {
                t.escalated = false;
                t.escalated_exit = true;
                if let Some(e) = &self.escalations {
                    e.set_pass(pid, true);
                }
                return self.entry_stop(pid);
            }
            if t.escalated_exit {
                t.escalated_exit = false;
                if let Some(e) = &self.escalations {
                    e.set_pass(pid, false);
                }
                // Its signals were held from the interrupt to here: one let in
                // earlier would cut the call's notification, and its handler's own
                // notified call would take the pass.
                let has_exit = t.exit.is_some();
                self.release_signals(pid);
                return if has_exit { self.exit_stop(pid) } else { self.resume(pid, 0) };
            }
            // Only stops we asked for (exit work) arrive here.
            if t.skip_entry_stop {
                t.skip_entry_stop = false;
                return self.resume(pid, 0);
            }
            return self.exit_stop(pid);
        }
        t.in_syscall = !t.in_syscall;
        if t.in_syscall {
            self.entry_stop(pid)
        } else {
            self.exit_stop(pid)
        }
    }
}
