//! execve and execveat: run the store's programs as the kernel would with a real /nix.
//!
//! `ptnix_syscalls::exec::plan` decides the filename and the leading argv; this module
//! reads the tracee's arguments, writes the new ones below its stack, and keeps what
//! `/proc/PID/exe` must show when a loader was started explicitly.

use crate::engine::Engine;
use crate::entry::{fail, Verdict, RED_ZONE};
use crate::hostfs::TraceeFs;
use crate::mem;
use crate::ptrace::{Pid, Regs};
use crate::regs::{arg, set_arg};
use ptnix_syscalls::exec::{self, ExecOutcome, ExecRequest};
use ptnix_syscalls::path::parse_decimal;
use ptnix_syscalls::table::PathArg;

/// argv may hold at most this many pointers (ARG_MAX is 2 MiB by default; the kernel
/// refuses more with E2BIG long before).
const MAX_ARGS: usize = 1 << 20;

impl Engine {
    pub(crate) fn exec(&mut self, pid: Pid, regs: &Regs, a: PathArg) -> Verdict {
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.pending_exe = None;
            t.pending_execfn = None;
        }
        let ptr = arg(regs, a.path);
        if ptr == 0 {
            return Verdict::Pass;
        }
        let path = match self.path_arg(pid, regs, a.path, ptr) {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
        let argv_arg = a.path + 1; // execve(path, argv, envp), execveat(fd, path, argv, envp, flags)
        let argv_ptr = arg(regs, argv_arg);
        let argv0 = match read_argv0(pid, argv_ptr) {
            Ok(a) => a,
            Err(e) => return fail(e),
        };
        let follow_last = match self.follows(pid, regs, a.follow) {
            Ok(f) => f,
            Err(e) => return fail(e),
        };
        // execve("/proc/self/exe") re-executes the program, not its loader.
        let filename = self.exe_redirect(pid, &path).unwrap_or_else(|| path.clone());
        let dirfd = a.dirfd.map(|i| arg(regs, i) as i32).unwrap_or(libc::AT_FDCWD);
        let cwd = if filename.first() == Some(&b'/') || filename.is_empty() {
            b"/".to_vec()
        } else {
            match self.start_dir(pid, regs, a.dirfd) {
                Some(d) => d,
                None => return Verdict::Pass, // EBADF/ENOTDIR from the kernel
            }
        };
        let tgid = self.tgid(pid);
        let mut fs = TraceeFs { tgid, tid: pid, cache: &mut self.cache, stats: &mut self.stats };
        let req = ExecRequest {
            filename: &filename,
            argv0: &argv0,
            cwd: &cwd,
            cwd_relative: dirfd == libc::AT_FDCWD,
            follow_last,
        };
        let plan = match exec::plan(&self.mapping, &mut fs, req) {
            ExecOutcome::Unchanged if filename == path => return Verdict::Pass,
            ExecOutcome::Unchanged => {
                let mut f = filename;
                f.push(0);
                return Verdict::Rewrite(vec![(a.path, f)], Vec::new());
            }
            ExecOutcome::Error(e) => return fail(e),
            ExecOutcome::Plan(p) => p,
        };
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.pending_exe = plan.exe.clone();
            t.pending_execfn = Some((plan.filename.clone(), path.clone()));
        }
        let mut filename = match self.fit(plan.filename) {
            Ok(f) => f,
            Err(e) => return fail(e),
        };
        filename.push(0);
        if plan.lead == [argv0] {
            self.remember(pid, regs, vec![(a.path, path)]);
            return Verdict::Rewrite(vec![(a.path, filename)], Vec::new());
        }
        let rest = match read_argv_tail(pid, argv_ptr) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        Verdict::Exec { path_arg: a.path, argv_arg, filename, lead: plan.lead, rest }
    }

    /// Writes `filename`, the `lead` strings and the new argv array (lead pointers,
    /// then the original argv[1..] pointers, then NULL) below the red zone.
    pub(crate) fn write_exec(
        &mut self,
        pid: Pid,
        regs: &mut Regs,
        (path_arg, argv_arg): (u8, u8),
        filename: &[u8],
        lead: &[Vec<u8>],
        rest: &[u64],
    ) -> Result<(), i32> {
        let strings: usize = filename.len() + lead.iter().map(|s| s.len() + 1).sum::<usize>();
        let ptrs = 8 * (lead.len() + rest.len() + 1);
        let total = ((strings + 15) & !15) + ptrs;
        let base = (regs.rsp - RED_ZONE - total as u64) & !15;
        let mut block = Vec::with_capacity(total);
        block.extend_from_slice(filename);
        let mut addrs = Vec::with_capacity(lead.len());
        for s in lead {
            addrs.push(base + block.len() as u64);
            block.extend_from_slice(s);
            block.push(0);
        }
        block.resize((strings + 15) & !15, 0);
        let argv_addr = base + block.len() as u64;
        for p in addrs.iter().chain(rest) {
            block.extend_from_slice(&p.to_ne_bytes());
        }
        block.extend_from_slice(&0u64.to_ne_bytes());
        mem::write(pid, base, &block)?;
        set_arg(regs, path_arg, base);
        set_arg(regs, argv_arg, argv_addr);
        Ok(())
    }

    /// The thread group whose `exe` link `path` names (`/proc/self/exe`,
    /// `/proc/thread-self/exe`, `/proc/N/exe`, `/proc/N/task/T/exe`).
    pub(crate) fn proc_exe_owner(&mut self, pid: Pid, path: &[u8]) -> Option<Pid> {
        let rest = path.strip_prefix(b"/proc/")?;
        let parts: Vec<&[u8]> = rest.split(|&b| b == b'/').collect();
        let who = match parts.as_slice() {
            [b"self", b"exe"] | [b"thread-self", b"exe"] => return Some(self.tgid(pid)),
            [n, b"exe"] | [n, b"task", _, b"exe"] => parse_decimal(n)? as Pid,
            _ => return None,
        };
        Some(self.tgid(who))
    }

    /// The program's guest path if `path` is the exe link of a process that ptnix
    /// started through its loader.
    pub(crate) fn exe_redirect(&mut self, pid: Pid, path: &[u8]) -> Option<Vec<u8>> {
        if !path.starts_with(b"/proc/") {
            return None;
        }
        let owner = self.proc_exe_owner(pid, path)?;
        self.exe_of.get(&owner).cloned()
    }
}

/// auxv entry type of the filename execve was given (linux/auxvec.h).
const AT_EXECFN: u64 = 31;

impl Engine {
    /// After a successful exec: AT_EXECFN points at the filename the kernel got, a
    /// host path, at the top of the new stack. If the name the tracee passed is not
    /// longer, it is written over it in place, as the kernel would have recorded it.
    pub(crate) fn fix_execfn(&mut self, pid: Pid) {
        let Some((host, given)) = self.tracees.get_mut(&pid).and_then(|t| t.pending_execfn.take()) else { return };
        if given.len() > host.len() || given == host {
            return;
        }
        let Ok(auxv) = std::fs::read(format!("/proc/{pid}/auxv")) else { return };
        let addr = auxv
            .chunks_exact(16)
            .map(|e| (u64::from_ne_bytes(e[..8].try_into().unwrap()), u64::from_ne_bytes(e[8..].try_into().unwrap())))
            .find(|&(t, _)| t == AT_EXECFN)
            .map(|(_, v)| v);
        let Some(addr) = addr else { return };
        let mut seen = vec![0u8; host.len() + 1];
        if mem::read(pid, addr, &mut seen).is_err() || seen[..host.len()] != host[..] || seen[host.len()] != 0 {
            return;
        }
        let mut name = given;
        name.push(0);
        let _ = mem::write(pid, addr, &name);
    }
}

fn read_argv0(pid: Pid, argv: u64) -> Result<Vec<u8>, i32> {
    if argv == 0 {
        return Ok(Vec::new());
    }
    let p = mem::read_u64(pid, argv)?;
    if p == 0 {
        return Ok(Vec::new());
    }
    mem::read_path(pid, p).or_else(|e| if e == libc::ENAMETOOLONG { Ok(Vec::new()) } else { Err(e) })
}

/// The pointers argv[1..], without the terminating NULL.
fn read_argv_tail(pid: Pid, argv: u64) -> Result<Vec<u64>, i32> {
    let mut out = Vec::new();
    if argv == 0 {
        return Ok(out);
    }
    let mut at = argv + 8;
    let mut chunk = [0u8; 8 * 64];
    loop {
        // Never read across a page end: the array may end just before an unmapped page.
        let to_page = (4096 - at % 4096) as usize;
        let n = chunk.len().min(to_page);
        mem::read(pid, at, &mut chunk[..n])?;
        for w in chunk[..n].chunks_exact(8) {
            let p = u64::from_ne_bytes(w.try_into().unwrap());
            if p == 0 {
                return Ok(out);
            }
            out.push(p);
        }
        if out.len() > MAX_ARGS {
            return Err(libc::E2BIG);
        }
        at += n as u64;
    }
}
