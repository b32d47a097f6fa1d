//! Keeping tracees that stop often on the tracer's CPU.
//!
//! Every stop is a round trip: the tracee blocks, the kernel wakes the tracer, the
//! tracer resumes the tracee. When the two run on different CPUs, each wake-up is an
//! inter-processor interrupt to a CPU that has gone idle, which in a VM is an exit to
//! the hypervisor on both sides. On the development VM (2 vCPUs, KVM, no halt-polling)
//! `find` over 5000 store files took 280 ms spread over both CPUs and 88 ms on one;
//! an exec loop, `ls -lR` and a Nix build gained as much.
//!
//! So the tracer pins itself to one CPU, and a tracee whose stops come less than
//! [`NEAR`] apart is moved to that CPU. A tracee that computes for longer than [`FAR`]
//! between stops goes back to its own CPU mask: ptnix notices at its next stop, or, if
//! it is still running, a watchdog thread does. A parallel build thus stays parallel:
//! a compiler that reads its headers runs next to the tracer, and is released within
//! [`FAR`] once it starts compiling.
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
/// Computing longer than this without a stop: the tracee gets its own mask back.
pub const FAR: Duration = Duration::from_millis(4);

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
    /// Its own mask, if not ptnix's initial one (it set one itself).
    own: Option<Mask>,
}

/// Tracees that run pinned right now, and since when; the watchdog releases those
/// that run for longer than [`FAR`].
#[derive(Default)]
struct Running {
    since: HashMap<Pid, (Instant, Mask)>,
    /// Released by the watchdog, not yet seen by the tracer.
    released: Vec<Pid>,
    /// The watchdog sleeps until woken (nothing was pinned when it last looked). Only
    /// then does a new pin wake it: a futex wake per stop would cost more than the
    /// pinning saves.
    parked: bool,
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

    fn own<'a>(&'a self, p: &'a Place) -> &'a Mask {
        p.own.as_ref().unwrap_or(&self.initial)
    }

    /// At each stop of `tid`: decide where it runs from how long it ran.
    pub fn stopped(&mut self, tid: Pid, p: &mut Place) {
        let Some(resumed) = p.resumed.take() else { return };
        let ran = resumed.elapsed();
        if p.near {
            let mut g = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
            g.since.remove(&tid);
            if let Some(i) = g.released.iter().position(|&t| t == tid) {
                g.released.swap_remove(i);
                p.near = false;
                return;
            }
            drop(g);
            if ran > FAR && set_mask(tid, self.own(p)) {
                p.near = false;
                self.moves += 1;
            }
        } else if ran < NEAR && has(self.own(p), self.cpu) && set_mask(tid, &self.near_mask) {
            p.near = true;
            self.moves += 1;
        }
    }

    /// When ptnix resumes `tid`.
    pub fn resumed(&mut self, tid: Pid, p: &mut Place) {
        let now = Instant::now();
        p.resumed = Some(now);
        if p.near {
            let own = *self.own(p);
            let mut g = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
            g.since.insert(tid, (now, own));
            if g.parked {
                g.parked = false;
                self.shared.1.notify_one();
            }
        }
    }

    /// A new tracee `child` of `parent`: it has its parent's own mask, and runs where
    /// the kernel put it, which is its parent's CPU mask at the time of the fork.
    pub fn forked(&mut self, parent: &Place, child: Pid, c: &mut Place) {
        c.own = parent.own;
        c.near = get_mask(child).is_some_and(|m| m == self.near_mask) && self.own(c) != &self.near_mask;
    }

    /// `tid` is gone.
    pub fn gone(&mut self, tid: Pid, p: &Place) {
        if p.near {
            let mut g = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
            g.since.remove(&tid);
            g.released.retain(|&t| t != tid);
        }
    }

    /// The mask `tid` would have without ptnix (what its sched_getaffinity says).
    pub fn own_mask(&self, p: &Place) -> Mask {
        *self.own(p)
    }

    /// `tid` set its own mask (its sched_setaffinity succeeded): the kernel has
    /// replaced the pin.
    pub fn set_own(&mut self, tid: Pid, p: &mut Place, mask: Mask) {
        self.gone(tid, p);
        p.own = Some(mask);
        p.near = false;
    }
}

fn watchdog(shared: &Shared) {
    let (lock, cv) = &**shared;
    let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
    let mut idle = false;
    loop {
        let Some(oldest) = g.since.values().map(|v| v.0).min() else {
            // A pinned tracee that is merely stopped right now is off the list: park
            // only after a quiet interval.
            if idle {
                g.parked = true;
                while g.parked {
                    g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
                }
            } else {
                g = cv.wait_timeout(g, FAR).unwrap_or_else(|e| e.into_inner()).0;
            }
            idle = !idle;
            continue;
        };
        idle = false;
        let due = oldest + FAR;
        let now = Instant::now();
        if due > now {
            g = cv.wait_timeout(g, due - now).unwrap_or_else(|e| e.into_inner()).0;
            continue;
        }
        let late: Vec<(Pid, Mask)> =
            g.since.iter().filter(|(_, v)| now.duration_since(v.0) >= FAR).map(|(&t, v)| (t, v.1)).collect();
        for (tid, own) in late {
            g.since.remove(&tid);
            // ESRCH: it exited meanwhile; the tracer forgets it when it reaps it.
            set_mask(tid, &own);
            g.released.push(tid);
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
            let mut mask: Mask = [0; 128];
            let n = (regs.rsi as usize).min(mask.len());
            if crate::mem::read(pid, regs.rdx, &mut mask[..n]).is_ok() {
                self.set_exit(pid, ExitWork::SetAffinity { tid, mask });
            }
        } else {
            self.set_exit(pid, ExitWork::GetAffinity { tid, buf: regs.rdx });
        }
        crate::entry::Verdict::Pass
    }

    /// The kernel wrote `ret` bytes of `tid`'s real mask: they become its own mask's.
    pub(crate) fn get_affinity_exit(&mut self, pid: Pid, ret: i64, tid: Pid, buf: u64) {
        let (Some(pl), Some(t)) = (self.placement.as_ref(), self.tracees.get(&tid)) else { return };
        if ret <= 0 {
            return;
        }
        let own = pl.own_mask(&t.place);
        let n = (ret as usize).min(own.len());
        let _ = crate::mem::write(pid, buf, &own[..n]);
    }

    pub(crate) fn set_affinity_exit(&mut self, ret: i64, tid: Pid, mask: Mask) {
        if ret != 0 {
            return;
        }
        if let (Some(pl), Some(t)) = (self.placement.as_mut(), self.tracees.get_mut(&tid)) {
            pl.set_own(tid, &mut t.place, mask);
        }
    }
}
