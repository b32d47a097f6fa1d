//! Keeping tracees that stop often on the tracer's CPU.
//!
//! Every stop is a round trip: the tracee blocks, the kernel wakes the tracer, the
//! tracer resumes the tracee. When the two run on different CPUs, each wake-up is an
//! inter-processor interrupt to a CPU that has gone idle, which in a VM is an exit to
//! the hypervisor on both sides. On the development VM (2 vCPUs, KVM, no halt-polling)
//! a bare stop cost 7 us with tracer and tracee on one CPU and 43-57 us across two;
//! `find` over 5000 store files took 280 ms spread over both CPUs and 88 ms on one.
//!
//! So the tracer pins itself to one CPU, and a tracee whose stops come less than
//! [`NEAR`] apart is moved to that CPU. A pinned tracee that computes goes back to its
//! own CPU mask: a watchdog thread looks every [`TICK`] at the CPU time each pinned
//! tracee used (`/proc/TID/schedstat`) and at how many stops it made, and releases one
//! that used more than half the tick, and more than [`NEAR`] per stop. This happens
//! while it runs, with no stop needed; a tracee that merely sleeps (a shell waiting
//! for its child) stays pinned, and so does one that stops often however busy it is.
//! A parallel build thus stays parallel: a compiler that reads its headers runs next
//! to the tracer, and is released within two ticks once it starts compiling.
//!
//! A tracee's view of its CPU mask stays its own: sched_getaffinity returns the mask
//! it would have without ptnix, and its own sched_setaffinity sets that mask (and ends
//! the move). `/proc/PID/status` (`Cpus_allowed`) still shows the real mask.

use crate::ptrace::Pid;
use hashbrown::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Stops closer together than this: the tracee runs next to the tracer.
pub const NEAR: Duration = Duration::from_millis(1);
/// How often the watchdog looks at the CPU time of pinned tracees; one that used more
/// than half of it gets its own mask back.
pub const TICK: Duration = Duration::from_millis(4);
/// At most this many tracees are pinned at once. The tracer shares its CPU with them
/// at their priority: thousands of threads there (each stopping at every futex in
/// pure-ptrace mode) would leave it a thousandth of its CPU, and one tracer cannot
/// serve more than a few busy tracees promptly anyway.
pub const MAX_PINNED: usize = 8;

/// A CPU mask as the kernel's affinity calls take it (`cpu_set_t`: 1024 bits).
pub type Mask = [u8; 128];

fn get_mask(tid: Pid) -> Option<Mask> {
    let mut m: Mask = [0; 128];
    // SAFETY: the kernel writes at most `m.len()` bytes into `m`.
    let r = unsafe { libc::syscall(libc::SYS_sched_getaffinity, tid, m.len(), m.as_mut_ptr()) };
    (r > 0).then_some(m)
}

fn set_mask(tid: Pid, m: &Mask) -> bool {
    // SAFETY: the kernel reads `m.len()` bytes from `m`.
    unsafe { libc::syscall(libc::SYS_sched_setaffinity, tid, m.len(), m.as_ptr()) == 0 }
}

fn only(cpu: usize) -> Mask {
    let mut m: Mask = [0; 128];
    m[cpu / 8] |= 1 << (cpu % 8);
    m
}

fn has(m: &Mask, cpu: usize) -> bool {
    m[cpu / 8] & (1 << (cpu % 8)) != 0
}

/// Where one tracee (thread) runs.
#[derive(Clone, Debug, Default)]
pub struct Place {
    /// When ptnix last resumed it.
    resumed: Option<Instant>,
    /// It is pinned to the tracer's CPU.
    pub near: bool,
    /// Its own mask (what it had before ptnix pinned it, or what it set since), if
    /// not ptnix's initial one.
    own: Option<Mask>,
    /// A sched_setaffinity of it is in progress: leave its mask alone.
    setting: bool,
}

/// A pinned tracee, as the watchdog sees it.
struct Pinned {
    own: Mask,
    /// Stops so far (counted by the tracer), and at the watchdog's last look.
    stops: u64,
    stops_seen: u64,
    /// Its CPU time at the watchdog's last look, in ns.
    cpu_seen: Option<u64>,
    /// Ticks to skip: one that used next to no CPU is looked at less often.
    skip: u8,
}

/// Pinned tracees; the watchdog releases those that compute.
#[derive(Default)]
struct Running {
    pinned: HashMap<Pid, Pinned>,
    /// Released by the watchdog, not yet seen by the tracer.
    released: Vec<Pid>,
    /// The watchdog sleeps until woken (nothing was pinned when it last looked). Only
    /// then does a new pin wake it: a futex wake per stop would cost more than the
    /// pinning saves.
    parked: bool,
    /// The last notification of each tracee that is not pinned (see [`Activity`]).
    recent: HashMap<Pid, Instant>,
    /// Tracees whose notifications came less than [`NEAR`] apart, for the tracer to
    /// pin (it owns their places).
    wanted: Vec<Pid>,
    /// Tracees handed over that way already: once each (the tracer may find one on
    /// its CPU already, and a wake-up per notification would cost more than it saves).
    asked: hashbrown::HashSet<Pid>,
}

type Shared = Arc<(Mutex<Running>, Condvar)>;

pub struct Placement {
    cpu: usize,
    /// ptnix's mask when it started: every tracee's own mask unless it sets another.
    initial: Mask,
    near_mask: Mask,
    shared: Shared,
    /// Moves to the tracer's CPU and back, for `--stats`.
    pub moves: u64,
}

/// The notification supervisor's view (see `notif`): a notification is a round trip
/// like a stop, so it counts as one for the watchdog, which would otherwise take a
/// tracee that only stats for one that computes and send it away, where each answer
/// costs a wake-up across CPUs (77-225 us instead of 9-11 here, `benches/probe/run`).
/// And a tracee that is not pinned but whose notifications come less than [`NEAR`]
/// apart is handed to the tracer to pin, as two stops that close would be: with the
/// in-process fast path (see `shim`) many programs make few stops and the calls left
/// are notifications, which `ls -lR` and Nix's verification answered faster by stops
/// (placement then followed them) than by notifications across CPUs.
#[derive(Clone)]
pub struct Activity(Shared);

impl Activity {
    /// A notification of `tid`: true when the tracer should be woken to pin tracees.
    pub fn noted(&self, tid: Pid) -> bool {
        let mut g = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = g.pinned.get_mut(&tid) {
            e.stops += 1;
            return false;
        }
        let now = Instant::now();
        let close = g.recent.insert(tid, now).is_some_and(|t| now.duration_since(t) < NEAR);
        if close && g.pinned.len() < MAX_PINNED && g.asked.insert(tid) {
            g.wanted.push(tid);
        }
        // Until the tracer has taken them: a kick that lands just before it waits
        // again wakes nothing.
        !g.wanted.is_empty()
    }
}

/// Whether ptnix can run on a CPU of its own next to its tracees: it may use two or
/// more CPUs.
pub fn worthwhile() -> bool {
    get_mask(0).is_some_and(|m| m.iter().map(|b| b.count_ones()).sum::<u32>() >= 2)
}

impl Placement {
    /// Pins the calling (tracer) thread to the CPU it runs on and starts the
    /// watchdog. `None` when there is nothing to gain (one CPU) or the mask cannot be
    /// read or set; ptnix then leaves all placement to the kernel. Call it only after
    /// the tracee is forked: the watchdog is a second thread.
    pub fn start() -> Option<Placement> {
        let initial = get_mask(0)?;
        if !worthwhile() {
            return None;
        }
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).ok().filter(|&c| c < 1024 && has(&initial, c))?;
        let shared: Shared = Arc::default();
        let w = Arc::clone(&shared);
        std::thread::Builder::new().name("ptnix-watchdog".into()).spawn(move || watchdog(&w)).ok()?;
        let near_mask = only(cpu);
        if !set_mask(0, &near_mask) {
            return None;
        }
        Some(Placement { cpu, initial, near_mask, shared, moves: 0 })
    }

    /// For the notification supervisor.
    pub fn activity(&self) -> Activity {
        Activity(Arc::clone(&self.shared))
    }

    fn own<'a>(&'a self, p: &'a Place) -> &'a Mask {
        p.own.as_ref().unwrap_or(&self.initial)
    }

    /// At each stop of `tid`: pin it if it stopped soon after it was resumed.
    pub fn stopped(&mut self, tid: Pid, p: &mut Place) {
        let Some(resumed) = p.resumed.take() else { return };
        if p.near {
            let mut g = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = g.released.iter().position(|&t| t == tid) {
                g.released.swap_remove(i);
                p.near = false;
            } else if let Some(e) = g.pinned.get_mut(&tid) {
                e.stops += 1;
            }
        } else if resumed.elapsed() < NEAR {
            self.pin(tid, p);
        }
    }

    /// Moves `tid` next to the tracer, unless it is being set a mask or
    /// [`MAX_PINNED`] are.
    fn pin(&mut self, tid: Pid, p: &mut Place) {
        if p.near || p.setting || !self.room() {
            return;
        }
        // Its mask now is its own: the initial one, one it set, or one set from
        // outside (`taskset -p`).
        let own = get_mask(tid).unwrap_or(*self.own(p));
        if has(&own, self.cpu) && own != self.near_mask && self.watch(tid, own) {
            if set_mask(tid, &self.near_mask) {
                p.own = Some(own);
                p.near = true;
                self.moves += 1;
            } else {
                self.gone(tid, &Place { near: true, ..Place::default() });
            }
        }
    }

    /// The tracees the supervisor found making notifications close together (see
    /// [`Activity`]); the caller pins each with [`Self::pin_notified`].
    pub fn wanted(&mut self) -> Vec<Pid> {
        let mut g = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut g.wanted)
    }

    /// The real mask decides, not `p.near`: a release by the watchdog is seen by
    /// the tracer only at the tracee's next stop, and one that makes notifications
    /// only may not stop again for long.
    pub fn pin_notified(&mut self, tid: Pid, p: &mut Place) {
        if get_mask(tid).is_some_and(|m| m == self.near_mask) {
            return;
        }
        if p.near {
            let mut g = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
            g.released.retain(|&t| t != tid);
            g.pinned.remove(&tid);
            p.near = false;
        }
        self.pin(tid, p);
        // Declined (no room, its own mask being set): it may be asked for again.
        if !p.near {
            self.shared.0.lock().unwrap_or_else(|e| e.into_inner()).asked.remove(&tid);
        }
    }

    /// The non-leader thread `former` exec'ed and is now `tid` (the kernel gave it the
    /// leader's tid): the watchdog follows it there.
    pub fn renamed(&mut self, former: Pid, tid: Pid, p: &Place) {
        let mut g = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        g.recent.remove(&former);
        g.asked.remove(&former);
        g.wanted.retain(|&t| t != former);
        if !p.near {
            return;
        }
        if let Some(e) = g.pinned.remove(&former) {
            g.pinned.insert(tid, e);
        }
        for t in g.released.iter_mut().filter(|t| **t == former) {
            *t = tid;
        }
    }

    /// Fewer than [`MAX_PINNED`] tracees are pinned.
    fn room(&self) -> bool {
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner()).pinned.len() < MAX_PINNED
    }

    /// Hands a tracee about to be pinned to the watchdog, unless [`MAX_PINNED`] are.
    fn watch(&mut self, tid: Pid, own: Mask) -> bool {
        let mut g = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        if g.pinned.len() >= MAX_PINNED {
            return false;
        }
        g.pinned.insert(tid, Pinned { own, stops: 0, stops_seen: 0, cpu_seen: None, skip: 0 });
        if g.parked {
            g.parked = false;
            self.shared.1.notify_one();
        }
        true
    }

    /// When ptnix resumes `tid`.
    pub fn resumed(&mut self, p: &mut Place) {
        p.resumed = Some(Instant::now());
    }

    /// A new tracee `child` of `parent`: it has its parent's own mask, and runs where
    /// the kernel put it, which is its parent's CPU mask at the time of the fork.
    pub fn forked(&mut self, parent: &Place, child: Pid, c: &mut Place) {
        c.own = parent.own;
        // Only a parent ptnix pinned (or is letting go of just now) can pass a pin on.
        if !parent.near && !parent.setting {
            return;
        }
        let pinned = get_mask(child).is_some_and(|m| m == self.near_mask) && self.own(c) != &self.near_mask;
        if !pinned {
            return;
        }
        let own = *self.own(c);
        if self.watch(child, own) {
            c.near = true;
        } else {
            set_mask(child, &own);
        }
    }

    /// `tid` is gone.
    pub fn gone(&mut self, tid: Pid, p: &Place) {
        let mut g = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        if p.near {
            g.pinned.remove(&tid);
            g.released.retain(|&t| t != tid);
        }
        g.recent.remove(&tid);
        g.asked.remove(&tid);
        g.wanted.retain(|&t| t != tid);
    }

    /// The mask `tid` would have without ptnix (what its sched_getaffinity says).
    pub fn own_mask(&self, p: &Place) -> Mask {
        *self.own(p)
    }

    /// A sched_setaffinity of `tid` begins: ptnix lets go of it (neither the tracer
    /// nor the watchdog may change its mask meanwhile). Says whether it was pinned.
    pub fn setting(&mut self, tid: Pid, p: &mut Place) -> bool {
        let was = p.near;
        self.gone(tid, p);
        p.near = false;
        p.setting = true;
        was
    }

    /// It ended: on success its mask is its own, as the kernel applied it (the
    /// request less what its cpuset forbids); on failure a pin ptnix let go of is
    /// undone.
    pub fn set(&mut self, tid: Pid, p: &mut Place, ok: bool, was_near: bool) {
        p.setting = false;
        if ok {
            p.own = get_mask(tid).or(p.own);
        } else if was_near {
            set_mask(tid, self.own(p));
        }
    }
}

/// The CPU time `tid` has used, in ns: `se.sum_exec_runtime`, the first field of
/// `/proc/TID/schedstat` (updated at every scheduler tick while it runs). Kernels
/// without it (CONFIG_SCHED_INFO) say 0 there; utime + stime from `/proc/TID/stat`
/// (in clock ticks) then serve, more coarsely.
fn cpu_ns(tid: Pid) -> Option<u64> {
    let s = std::fs::read(format!("/proc/{tid}/schedstat")).ok()?;
    let first = s.split(|&b| b == b' ').next()?;
    let ns = std::str::from_utf8(first).ok()?.parse::<u64>().ok()?;
    if ns > 0 {
        return Some(ns);
    }
    let stat = std::fs::read(format!("/proc/{tid}/stat")).ok()?;
    let close = memchr::memrchr(b')', &stat)?;
    let fields: Vec<&[u8]> = stat[close + 2..].split(|&b| b == b' ').collect();
    // After the name: state is field 3 of stat(5); utime and stime are 14 and 15.
    let ticks = |i: usize| std::str::from_utf8(fields.get(i - 3)?).ok()?.parse::<u64>().ok();
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|&h| h > 0)?;
    Some((ticks(14)? + ticks(15)?) * (1_000_000_000 / hz))
}

fn watchdog(shared: &Shared) {
    let (lock, cv) = &**shared;
    let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
    let tick_ns = TICK.as_nanos() as u64;
    loop {
        if g.pinned.is_empty() {
            g.parked = true;
            while g.parked {
                g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            continue;
        }
        g = cv.wait_timeout(g, TICK).unwrap_or_else(|e| e.into_inner()).0;
        let mut look = Vec::new();
        for (&tid, e) in g.pinned.iter_mut() {
            if e.skip > 0 {
                e.skip -= 1;
            } else {
                look.push(tid);
            }
        }
        // /proc is read without the lock: the tracer must not wait for it.
        drop(g);
        let times: Vec<(Pid, Option<u64>)> = look.into_iter().map(|t| (t, cpu_ns(t))).collect();
        g = lock.lock().unwrap_or_else(|e| e.into_inner());
        for (tid, now) in times {
            let Some(now) = now else {
                // Gone without the tracer seeing it go (a thread replaced by an exec
                // elsewhere in its group): forget it.
                if !std::path::Path::new(&format!("/proc/{tid}")).exists() {
                    g.pinned.remove(&tid);
                }
                continue;
            };
            let Some(e) = g.pinned.get_mut(&tid) else { continue };
            let used = e.cpu_seen.map(|seen| now.saturating_sub(seen));
            let stops = e.stops - e.stops_seen;
            e.cpu_seen = Some(now);
            e.stops_seen = e.stops;
            let Some(used) = used else { continue };
            if used < tick_ns / 8 {
                // Asleep (or nearly): look again in four ticks.
                e.skip = 3;
            } else if used > tick_ns / 2 && used > stops * NEAR.as_nanos() as u64 {
                let own = e.own;
                g.pinned.remove(&tid);
                // ESRCH: it exited meanwhile; the tracer forgets it when it reaps it.
                set_mask(tid, &own);
                g.released.push(tid);
                // Notifications close together may ask for it again.
                g.asked.remove(&tid);
            }
        }
    }
}

impl crate::engine::Engine {
    /// sched_getaffinity(tid, len, mask) and sched_setaffinity(tid, len, mask): the
    /// thread a tid of 0 names is the caller ("If pid is zero, then the calling thread
    /// is used", sched_setaffinity(2)).
    pub(crate) fn affinity_entry(&mut self, pid: Pid, regs: &crate::ptrace::Regs, set: bool) -> crate::entry::Verdict {
        use crate::tracee::ExitWork;
        if self.placement.is_none() {
            return crate::entry::Verdict::Pass;
        }
        let tid = match regs.rdi as i32 {
            0 => pid,
            t => t,
        };
        if !self.tracees.contains_key(&tid) {
            return crate::entry::Verdict::Pass;
        }
        if set {
            let (Some(pl), Some(t)) = (self.placement.as_mut(), self.tracees.get_mut(&tid)) else {
                return crate::entry::Verdict::Pass;
            };
            let was_near = pl.setting(tid, &mut t.place);
            self.set_exit(pid, ExitWork::SetAffinity { tid, was_near });
        } else {
            self.set_exit(pid, ExitWork::GetAffinity { tid, buf: regs.rdx });
        }
        crate::entry::Verdict::Pass
    }

    /// The kernel wrote `ret` bytes of `tid`'s real mask: while ptnix has it pinned,
    /// they become its own mask's.
    pub(crate) fn get_affinity_exit(&mut self, pid: Pid, ret: i64, tid: Pid, buf: u64) {
        let (Some(pl), Some(t)) = (self.placement.as_ref(), self.tracees.get(&tid)) else { return };
        if ret <= 0 || !t.place.near {
            return;
        }
        let own = pl.own_mask(&t.place);
        let n = (ret as usize).min(own.len());
        let _ = crate::mem::write(pid, buf, &own[..n]);
    }

    pub(crate) fn set_affinity_exit(&mut self, ret: i64, tid: Pid, was_near: bool) {
        if let (Some(pl), Some(t)) = (self.placement.as_mut(), self.tracees.get_mut(&tid)) {
            pl.set(tid, &mut t.place, ret == 0, was_near);
        }
    }
}
