//! The auxiliary vector after an exec that ptnix redirected.
//!
//! The kernel builds the auxv for the file it was given: a host path, and for a store
//! program its loader. Three entries then differ from what a real `/nix` would give:
//! - AT_EXECFN points at the filename the kernel got (fs/exec.c copies `bprm->filename`
//!   to the top of the new stack), a host path;
//! - AT_BASE is 0, because the kernel ran the loader as the program;
//! - once the loader has set the program up, it points AT_EXECFN at its own argv
//!   entry for the program (glibc 2.36+, `_dl_start_args_adjust`: `AT_EXECFN =
//!   _dl_argv[0]`), which is ptnix's name for the program or a script's interpreter.
//!
//! Natively AT_EXECFN is the name the caller passed to execve: a script's own name,
//! `/proc/self/exe` for a re-exec. ptnix fixes the first two at the exec stop and the
//! third at the process's first stop after the loader moved the vector.

use crate::engine::Engine;
use crate::exec::loader_args;
use crate::hostfs;
use crate::mem;
use crate::ptrace::{self, Pid};

/// auxv entry types (linux/auxvec.h).
const AT_NULL: u64 = 0;
const AT_BASE: u64 = 7;
const AT_ENTRY: u64 = 9;
const AT_EXECFN: u64 = 31;

/// How many stops after the exec ptnix waits for the loader to move the vector. A
/// glibc loader does it before it opens the first library; an older loader (which
/// leaves AT_EXECFN alone) never does, and then the watch just runs out.
const LOADER_STOPS: u8 = 64;

/// Waiting for the loader to point AT_EXECFN at its argv entry for the program.
#[derive(Clone, Debug)]
pub struct ExecfnWatch {
    /// Where the AT_EXECFN value lies once the loader has moved the vector down by
    /// the words of its own arguments (glibc 2.36+), and where it lay before (a
    /// loader that sets it without moving the vector).
    slot: u64,
    unmoved: u64,
    /// The loader's argv pointer to the program's name: what it will store there.
    loader_value: u64,
    /// The kernel's AT_EXECFN string, which ptnix rewrote to the name given.
    execfn: u64,
    stops_left: u8,
}

fn auxv_pairs(raw: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    raw.chunks_exact(16)
        .map(|e| (u64::from_ne_bytes(e[..8].try_into().unwrap()), u64::from_ne_bytes(e[8..].try_into().unwrap())))
        .take_while(|&(t, _)| t != AT_NULL)
}

/// The new image's initial stack, as the kernel left it at the exec stop.
struct InitialStack {
    rsp: u64,
    /// The auxv entries, without the final AT_NULL.
    auxv: Vec<u8>,
    /// Where that auxv lies on the stack.
    auxv_addr: u64,
}

impl InitialStack {
    /// The stack from %rsp up holds argc, argv[] and NULL, envp[] and NULL, then the
    /// auxv (fs/binfmt_elf.c, create_elf_tables), then the strings. One read of 8 KiB
    /// holds the vectors of any ordinary process; a larger environment takes one more.
    fn read(pid: Pid) -> Option<Self> {
        let rsp = ptrace::get_regs(pid).ok()?.rsp;
        for size in [8 << 10, 256 << 10] {
            let mut buf = vec![0u8; size];
            let n = mem::read_upto(pid, rsp, &mut buf);
            buf.truncate(n);
            let word = |i: usize| buf.get(8 * i..8 * i + 8).map(|w| u64::from_ne_bytes(w.try_into().unwrap()));
            let argc = usize::try_from(word(0)?).ok()?;
            // argv[argc] is NULL; envp starts after it.
            let mut i = argc.checked_add(2)?;
            if i > buf.len() / 8 {
                continue;
            }
            loop {
                match word(i) {
                    Some(0) => break,
                    Some(_) => i += 1,
                    None => break,
                }
            }
            if word(i).is_none() {
                continue;
            }
            let start = 8 * (i + 1);
            let mut end = start;
            let complete = loop {
                match (word(end / 8), word(end / 8 + 1)) {
                    (Some(AT_NULL), Some(_)) => break true,
                    (Some(_), Some(_)) => end += 16,
                    _ => break false,
                }
            };
            if complete {
                return Some(InitialStack { rsp, auxv: buf[start..end].to_vec(), auxv_addr: rsp + start as u64 });
            }
        }
        None
    }

    fn get(&self, t: u64) -> Option<u64> {
        auxv_pairs(&self.auxv).find(|&(k, _)| k == t).map(|(_, v)| v)
    }

    /// The address of entry `t`'s value.
    fn slot(&self, t: u64) -> Option<u64> {
        auxv_pairs(&self.auxv).position(|(k, _)| k == t).map(|i| self.auxv_addr + 16 * i as u64 + 8)
    }
}

impl Engine {
    /// At the exec stop of an exec whose filename ptnix rewrote.
    pub(crate) fn fix_auxv(&mut self, pid: Pid) {
        let execfn = self.tracees.get_mut(&pid).and_then(|t| t.pending_execfn.take());
        let run = self.exes().get(&pid).cloned();
        if execfn.is_none() && run.is_none() {
            return;
        }
        let Some(stack) = InitialStack::read(pid) else { return };
        let renamed = execfn.is_some_and(|(host, given)| rename_execfn(pid, &stack, &host, given));
        let Some(run) = run else { return };
        fix_at_base(pid, &stack, &run.loader, &mut self.cache);
        if renamed {
            self.watch_execfn(pid, &stack, loader_args(&run.argv) - 1);
        }
    }

    /// The loader will skip its own `skip` arguments: argc stays where it is, argv
    /// keeps its start, and envp and the auxv move down by `skip` words (glibc's
    /// `_dl_start_args_adjust`).
    fn watch_execfn(&mut self, pid: Pid, stack: &InitialStack, skip: usize) {
        let (Some(slot), Some(execfn)) = (stack.slot(AT_EXECFN), stack.get(AT_EXECFN)) else { return };
        let Ok(loader_value) = mem::read_u64(pid, stack.rsp + 8 * (1 + skip as u64)) else { return };
        let watch = ExecfnWatch { slot: slot - 8 * skip as u64, unmoved: slot, loader_value, execfn, stops_left: LOADER_STOPS };
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.execfn_watch = Some(watch);
        }
    }

    /// At a stop of a process whose loader may have moved the auxv since the last
    /// one: once it has, AT_EXECFN is pointed back at the name the caller gave. The
    /// slot is written only when it holds exactly the loader's value, so a vector laid
    /// out otherwise is never touched.
    pub(crate) fn settle_execfn(&mut self, pid: Pid) {
        let Some(t) = self.tracees.get_mut(&pid) else { return };
        let Some(w) = t.execfn_watch.as_mut() else { return };
        w.stops_left = w.stops_left.saturating_sub(1);
        let w = w.clone();
        // Both places in one read: the moved entry lies below the unmoved one.
        let mut span = vec![0u8; (w.unmoved - w.slot) as usize + 16];
        let readable = mem::read(pid, w.slot - 8, &mut span).is_ok();
        let pair_at = |slot: u64| {
            let off = (slot - w.slot) as usize;
            let word = |o: usize| u64::from_ne_bytes(span[o..o + 8].try_into().unwrap());
            (word(off), word(off + 8))
        };
        let at = [w.slot, w.unmoved].into_iter().find(|&s| readable && pair_at(s) == (AT_EXECFN, w.loader_value));
        let settled = at.is_some();
        if let Some(slot) = at {
            let _ = mem::write(pid, slot, &w.execfn.to_ne_bytes());
        }
        if settled || w.stops_left == 0 || !readable {
            if let Some(t) = self.tracees.get_mut(&pid) {
                t.execfn_watch = None;
            }
        }
    }
}


/// AT_EXECFN's string is the host filename the kernel got. If the name the tracee
/// passed is not longer, it is written over it in place, as the kernel would have
/// recorded it. Says whether it did.
fn rename_execfn(pid: Pid, stack: &InitialStack, host: &[u8], given: Vec<u8>) -> bool {
    if given.len() > host.len() || given == host {
        return false;
    }
    let Some(addr) = stack.get(AT_EXECFN) else { return false };
    let mut seen = vec![0u8; host.len() + 1];
    if mem::read(pid, addr, &mut seen).is_err() || seen[..host.len()] != host[..] || seen[host.len()] != 0 {
        return false;
    }
    let mut name = given;
    name.push(0);
    mem::write(pid, addr, &name).is_ok()
}

/// glibc's loader fixes AT_PHDR, AT_ENTRY and AT_EXECFN for the program, not AT_BASE:
/// ptnix sets it to the loader's load address (its AT_ENTRY less its ELF entry
/// point), as the kernel would have.
fn fix_at_base(pid: Pid, stack: &InitialStack, loader: &[u8], cache: &mut crate::fscache::FsCache) {
    let (Some(entry), Some(slot)) = (stack.get(AT_ENTRY), stack.slot(AT_BASE)) else { return };
    if stack.get(AT_BASE) != Some(0) {
        return;
    }
    let Ok(ehdr) = hostfs::read_at_cached(cache, loader, 0, 64) else { return };
    if ehdr.len() < 32 || &ehdr[..4] != b"\x7fELF" {
        return;
    }
    let e_entry = u64::from_ne_bytes(ehdr[24..32].try_into().unwrap());
    let _ = mem::write(pid, slot, &entry.wrapping_sub(e_entry).to_ne_bytes());
}
