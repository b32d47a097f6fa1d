//! `ptnix run --stats`: where the time goes, printed when the command ends.

use hashbrown::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Stats {
    pub enabled: bool,
    started: Option<Instant>,
    /// Stops at syscall entry (seccomp or PTRACE_SYSCALL), by syscall name.
    pub entry: HashMap<&'static str, u64>,
    /// Calls answered by the user-notification supervisor instead (see `notif`).
    pub notified: HashMap<&'static str, u64>,
    /// Entry stops for syscalls ptnix does not handle (pure-ptrace mode sees them all).
    pub entry_other: u64,
    pub exit: u64,
    /// Event, signal and group stops.
    pub other: u64,
    /// Path arguments handed to the kernel rewritten.
    pub rewritten: u64,
    /// Syscalls answered or refused by ptnix without the kernel.
    pub answered: u64,
    pub lone_names: u64,
    pub resolved: u64,
    /// Host lookups the resolver made: lstat, readlink, openat2 (directory check).
    pub lstat: u64,
    pub readlink: u64,
    pub openat2: u64,
    /// openat2 directory checks that found no symlink (the one-call fast path held),
    /// and those that did not (the resolver then walked component by component).
    pub plain_hits: u64,
    pub plain_misses: u64,
    /// Directory checks answered from memory (immutable store objects, `fscache`).
    pub cache_hits: u64,
    pub tracer_time: Duration,
    /// Notified calls handed to the tracer (see `escalate`).
    pub escalated: u64,
    /// Execs given the in-process fast path (see `shim`; None: it is off).
    pub shimmed: Option<u64>,
    /// Of those, execs through glibc's loader where the object is its auditor
    /// (`--audit`) instead of a preload: it answers the library search too.
    pub audited: u64,
    /// Of those, execs of programs that reach the object's functions through their
    /// GOT alone, which get the preload as well.
    pub audited_preloaded: u64,
    /// Time the supervisor spent answering notifications.
    pub notif_time: Duration,
    /// Moves of tracees to the tracer's CPU and back (None: placement is off).
    pub moves: Option<u64>,
}

impl Stats {
    pub fn new(enabled: bool) -> Stats {
        Stats { enabled, started: Some(Instant::now()), ..Stats::default() }
    }

    /// Adds the counts of the supervisor's `other` (its time is its own thread's, and
    /// is reported apart).
    pub fn merge(&mut self, other: &Stats) {
        for (k, v) in &other.notified {
            *self.notified.entry(k).or_default() += v;
        }
        self.rewritten += other.rewritten;
        self.lone_names += other.lone_names;
        self.resolved += other.resolved;
        self.lstat += other.lstat;
        self.readlink += other.readlink;
        self.openat2 += other.openat2;
        self.plain_hits += other.plain_hits;
        self.plain_misses += other.plain_misses;
        self.cache_hits += other.cache_hits;
        self.escalated += other.escalated;
        self.notif_time += other.tracer_time;
    }

    pub fn report(&self) -> String {
        let mut s = String::new();
        let total_entry: u64 = self.entry.values().sum::<u64>() + self.entry_other;
        let stops = total_entry + self.exit + self.other;
        let wall = self.started.map(|t| t.elapsed()).unwrap_or_default();
        let _ = writeln!(s, "ptnix stats:");
        let _ = writeln!(
            s,
            "  stops: {stops} (syscall entry {total_entry}, exit {}, events/signals {})",
            self.exit, self.other
        );
        let mut by: Vec<(&&str, &u64)> = self.entry.iter().collect();
        by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let list: Vec<String> = by.iter().map(|(n, c)| format!("{n} {c}")).collect();
        let _ = writeln!(s, "  entry stops by syscall: {}", if list.is_empty() { "none".into() } else { list.join(", ") });
        if !self.notified.is_empty() {
            let mut by: Vec<(&&str, &u64)> = self.notified.iter().collect();
            by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let list: Vec<String> = by.iter().map(|(n, c)| format!("{n} {c}")).collect();
            let total: u64 = self.notified.values().sum();
            let _ = writeln!(s, "  user notifications, no stop: {total} ({})", list.join(", "));
            if self.escalated > 0 {
                let _ = writeln!(s, "  notified calls handed to the tracer: {}", self.escalated);
            }
        }
        if let Some(n) = self.shimmed {
            let _ = writeln!(
                s,
                "  in-process fast path: at {n} execs, {} of them as the loader's auditor, which also answers the library search ({} of those preloaded as well, for calls through the GOT; its calls make no stop and are not counted)",
                self.audited, self.audited_preloaded
            );
        }
        if self.entry_other > 0 {
            let _ = writeln!(s, "  entry stops of other syscalls (pure-ptrace mode): {}", self.entry_other);
        }
        let _ = writeln!(
            s,
            "  translations: {} paths rewritten, {} syscalls answered or refused by ptnix",
            self.rewritten, self.answered
        );
        let _ = writeln!(
            s,
            "  resolution: {} resolved, {} lone names without lookup; lookups: {} lstat, {} readlink, {} openat2",
            self.resolved, self.lone_names, self.lstat, self.readlink, self.openat2
        );
        let _ = writeln!(
            s,
            "  directory checks: cache {} hits, {} misses (openat2: {} found no symlink, {} walked)",
            self.cache_hits,
            self.plain_hits + self.plain_misses,
            self.plain_hits,
            self.plain_misses
        );
        let per_stop = if stops > 0 { self.tracer_time.as_nanos() / u128::from(stops) } else { 0 };
        let _ = writeln!(
            s,
            "  time in tracer: {:.1} ms of {:.1} ms wall ({} ns per stop)",
            self.tracer_time.as_secs_f64() * 1e3,
            wall.as_secs_f64() * 1e3,
            per_stop
        );
        if !self.notified.is_empty() {
            let _ = writeln!(s, "  time in the notification supervisor: {:.1} ms", self.notif_time.as_secs_f64() * 1e3);
        }
        // The times above run from a stop's report to the tracee's resumption, and
        // include whatever ran on ptnix's CPU meanwhile (a tracee woken there may run
        // first); the CPU time ptnix's threads used is the kernel's count.
        if let Some((user, system)) = own_cpu_time() {
            let _ = writeln!(s, "  CPU time of ptnix's own threads: {:.1} ms user, {:.1} ms system", user * 1e3, system * 1e3);
        }
        let _ = match self.moves {
            Some(n) => writeln!(s, "  CPU placement: {n} moves of tracees to the tracer's CPU and back"),
            None => writeln!(s, "  CPU placement: off (--no-pin, or a single CPU)"),
        };
        s
    }
}

/// The user and system CPU time, in seconds, of all of ptnix's threads
/// (getrusage(RUSAGE_SELF); its tracees are children, counted apart).
fn own_cpu_time() -> Option<(f64, f64)> {
    // SAFETY: getrusage writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some((secs(u.ru_utime), secs(u.ru_stime)))
}
