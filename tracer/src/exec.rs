//! execve and execveat: run the store's programs as the kernel would with a real /nix.
//!
//! `ptnix_syscalls::exec::plan` decides the filename and the leading argv; this module
//! reads the tracee's arguments, writes the new ones below its stack, and keeps what
//! `/proc/PID/exe` must show when a loader was started explicitly.

use crate::engine::Engine;
use crate::entry::{fail, ExecEnv, Verdict, RED_ZONE};
use crate::hostfs::{self, TraceeFs};
use crate::mem;
use crate::ptrace::{Pid, Regs};
use crate::regs::{arg, set_arg};
use crate::tracee::LoaderRun;
use ptnix_syscalls::exec::{self, ExecOutcome, ExecRequest};
use ptnix_syscalls::procfs::{self, Owner};
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
        let dirfd = a.dirfd.map(|i| arg(regs, i) as i32).unwrap_or(libc::AT_FDCWD);
        // fexecve: execveat(fd, "", .., AT_EMPTY_PATH) runs the open file. The kernel
        // would look for its loader on the host: run it by its guest path instead.
        let from_fd = path.is_empty() && dirfd != libc::AT_FDCWD && arg(regs, 4) & AT_EMPTY_PATH != 0;
        let fd_path = if from_fd { self.fd_guest_path(pid, dirfd) } else { None };
        let fd_name = format!("/dev/fd/{dirfd}").into_bytes();
        if from_fd && fd_path.is_none() {
            return Verdict::Pass;
        }
        // execve("/proc/self/exe") re-executes the program, not its loader.
        let filename = fd_path.or_else(|| self.exe_redirect(pid, &path)).unwrap_or_else(|| path.clone());
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
            fd_name: from_fd.then_some(fd_name.as_slice()),
        };
        // What the kernel calls the file (fs/exec.c, alloc_bprm): the path as given,
        // or relative to a dirfd "/dev/fd/N/PATH", or "/dev/fd/N" for the fd itself.
        // It becomes AT_EXECFN and the task name.
        let kernel_name = if dirfd == libc::AT_FDCWD || path.first() == Some(&b'/') {
            path.clone()
        } else if path.is_empty() {
            fd_name.clone()
        } else {
            [&fd_name[..], b"/", &path[..]].concat()
        };
        let (outcome, dynamic) = exec::plan_exec(&self.mapping, &mut fs, req);
        // The in-process fast path (see `shim`), for a program that can load it.
        // Not for a process with a seccomp filter of its own, which may refuse or kill
        // the calls the object makes (openat2), nor for one in a Landlock domain of
        // its own where the object is reached through /proc (see `mark_landlocked`).
        let refused = self.tracees.get(&pid).is_some_and(|t| t.own_filter || (t.landlocked && self.shim.as_ref().is_some_and(|s| s.through_proc())));
        let envp_arg = argv_arg + 1;
        let shim_env = match (&self.shim, dynamic && !from_fd && !refused) {
            (Some(shim), true) => shim.environment(pid, arg(regs, envp_arg)),
            _ => None,
        };
        let plain_search = shim_env.as_ref().is_some_and(|e| e.plain_search);
        let mut env = shim_env.map(|e| ExecEnv { arg: envp_arg, keep: e.keep, added: e.added });
        if env.is_some() {
            *fs.stats.shimmed.get_or_insert(0) += 1;
        }
        // A new filename (NUL-terminated) and environment, the argv as it is.
        let same_argv = |filename: Vec<u8>, env: Option<ExecEnv>| match env {
            None => Verdict::Rewrite(vec![(a.path, filename)], Vec::new()),
            Some(env) => Verdict::Exec { path_arg: a.path, argv_arg, filename, lead: Vec::new(), rest: Vec::new(), env: Some(env) },
        };
        let mut plan = match outcome {
            ExecOutcome::Unchanged if (filename == path || from_fd) && env.is_none() => return Verdict::Pass,
            ExecOutcome::Unchanged => {
                let mut f = filename;
                f.push(0);
                return same_argv(f, env);
            }
            ExecOutcome::Error(e) => return fail(e),
            ExecOutcome::Plan(p) => p,
        };
        // The object as glibc's loader's auditor instead: it answers the library
        // search, and binds the program's calls itself (see `shim`), without a preload.
        if let Some(shim) = self.shim.as_ref().filter(|_| plain_search && plan.exe.is_some()) {
            if plan.lead.get(1).map(Vec::as_slice) == Some(b"--argv0") && fs.loader_kind(&plan.filename).audit {
                plan.lead.splice(1..1, [b"--audit".to_vec(), shim.object.clone()]);
                fs.stats.audited += 1;
                // The auditor binds calls through the PLT; a program that reaches one
                // of the object's functions through its GOT alone (Rust's, -fno-plt)
                // gets the preloaded copy as well.
                let got = plan.exe_host.as_ref().is_some_and(|h| fs.got_references(h, &|n| shim.defines(n)));
                if got {
                    fs.stats.audited_preloaded += 1;
                } else {
                    env = None;
                }
            }
        }
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.pending_exe = plan.exe.clone().map(|program| LoaderRun {
                program,
                loader: plan.filename.clone(),
                argv: plan.lead[..loader_args(&plan.lead)].to_vec(),
                comm: procfs::comm_of(&kernel_name),
            });
            t.pending_execfn = Some((plan.filename.clone(), kernel_name.clone()));
        }
        let mut filename = match self.fit(plan.filename) {
            Ok(f) => f,
            Err(e) => return fail(e),
        };
        filename.push(0);
        if plan.lead == [argv0] {
            if env.is_none() {
                self.remember(pid, regs, vec![(a.path, path)]);
            }
            return same_argv(filename, env);
        }
        let rest = match read_argv_tail(pid, argv_ptr) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        Verdict::Exec { path_arg: a.path, argv_arg, filename, lead: plan.lead, rest, env }
    }

    /// Writes `filename` and, below the red zone, the new argv array (`lead` pointers,
    /// then the original argv[1..] pointers `rest`, then NULL) unless `lead` is empty,
    /// and the new envp array if `env` (the kept pointers, then the added strings'),
    /// with their strings.
    pub(crate) fn write_exec(
        &mut self,
        pid: Pid,
        regs: &mut Regs,
        (path_arg, argv_arg): (u8, u8),
        filename: &[u8],
        (lead, rest): (&[Vec<u8>], &[u64]),
        env: Option<&ExecEnv>,
    ) -> Result<(), i32> {
        let (env_added, env_keep): (&[Vec<u8>], &[u64]) = env.map_or((&[], &[]), |e| (&e.added, &e.keep));
        let strings: usize = filename.len() + lead.iter().chain(env_added).map(|s| s.len() + 1).sum::<usize>();
        let argv_len = if lead.is_empty() { 0 } else { lead.len() + rest.len() + 1 };
        let envp_len = if env.is_some() { env_added.len() + env_keep.len() + 1 } else { 0 };
        let total = ((strings + 15) & !15) + 8 * (argv_len + envp_len);
        let base = (regs.rsp - RED_ZONE - total as u64) & !15;
        let mut block = Vec::with_capacity(total);
        block.extend_from_slice(filename);
        let add_strings = |block: &mut Vec<u8>, strings: &[Vec<u8>]| -> Vec<u64> {
            strings
                .iter()
                .map(|s| {
                    let at = base + block.len() as u64;
                    block.extend_from_slice(s);
                    block.push(0);
                    at
                })
                .collect()
        };
        let argv_strings = add_strings(&mut block, lead);
        let env_strings = add_strings(&mut block, env_added);
        block.resize((strings + 15) & !15, 0);
        let add_array = |block: &mut Vec<u8>, first: &[u64], then: &[u64]| -> u64 {
            let at = base + block.len() as u64;
            for p in first.iter().chain(then) {
                block.extend_from_slice(&p.to_ne_bytes());
            }
            block.extend_from_slice(&0u64.to_ne_bytes());
            at
        };
        let argv_addr = (!lead.is_empty()).then(|| add_array(&mut block, &argv_strings, rest));
        let envp_addr = env.map(|_| add_array(&mut block, env_keep, &env_strings));
        mem::write(pid, base, &block)?;
        set_arg(regs, path_arg, base);
        if let Some(a) = argv_addr {
            set_arg(regs, argv_arg, a);
        }
        if let (Some(e), Some(a)) = (env, envp_addr) {
            set_arg(regs, e.arg, a);
        }
        Ok(())
    }

    /// The thread group whose `exe` link `path` names (`/proc/self/exe`,
    /// `/proc/thread-self/exe`, `/proc/N/exe`, `/proc/N/task/T/exe`).
    pub(crate) fn proc_exe_owner(&mut self, pid: Pid, path: &[u8]) -> Option<Pid> {
        let f = procfs::parse(path).filter(|f| f.file == b"exe")?;
        Some(self.proc_owner(pid, f.owner))
    }

    /// The thread group a `/proc` name made by `pid` is about.
    pub(crate) fn proc_owner(&mut self, pid: Pid, owner: Owner) -> Pid {
        match owner {
            Owner::Caller => self.tgid(pid),
            Owner::Pid(n) => self.tgid(n as Pid),
        }
    }

    /// The record of how ptnix started `owner`'s program through its loader, if it
    /// still holds.
    ///
    /// The record must still hold when it is read: another tracee's exec (or fork) may
    /// have happened without ptnix having processed its stop yet. So the owner's
    /// pending stop is processed first, and a record counts only while the kernel's
    /// own `/proc/PID/exe` still names the loader it describes. A child that forked
    /// but whose fork event is not yet processed has no record: its parent's counts
    /// (same loader). Gives the record and the kernel's exe link.
    pub(crate) fn loader_run(&mut self, pid: Pid, owner: Pid) -> Option<(LoaderRun, Vec<u8>)> {
        if owner != pid && self.tracees.contains_key(&owner) {
            self.process_pending(owner);
        }
        recorded_run(&self.exe_of, owner)
    }

    /// The program's guest path if `path` is the exe link of a process that ptnix
    /// started through its loader (see `loader_run`).
    pub(crate) fn exe_redirect(&mut self, pid: Pid, path: &[u8]) -> Option<Vec<u8>> {
        if !path.starts_with(b"/proc/") {
            return None;
        }
        let owner = self.proc_exe_owner(pid, path)?;
        let recorded = self.loader_run(pid, owner);
        // An exec ptnix planned through a loader, its stop not processed yet.
        let pending = self.tracees.get(&owner).and_then(|t| t.pending_exe.clone());
        let real = match (&recorded, &pending) {
            (Some((_, real)), _) => real.clone(),
            (None, Some(_)) => hostfs::readlink(format!("/proc/{owner}/exe").as_bytes()).ok()?,
            (None, None) => return None,
        };
        let pending = pending.filter(|p| p.loader == real);
        // The same loader may have just started another program, with the exec stop
        // still unprocessed: the command line the kernel now shows says which. While
        // the kernel is still setting up the new image (after the old files and the
        // executable are gone, before the arguments are in place) the command line is
        // empty: the exec ptnix planned at that execve's entry is the one in progress.
        // Without a record (a host parent reading its child's exe link right after
        // the exec: the child's close-on-exec pipe closes in the kernel's exec, before
        // the stop), only such an exec can say.
        let cmdline = std::fs::read(format!("/proc/{owner}/cmdline")).unwrap_or_default();
        let argv: Vec<Vec<u8>> = cmdline.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
        let starts_with = |r: &LoaderRun| argv.len() > r.argv.len() && argv[..r.argv.len()] == r.argv[..];
        let Some((run, _)) = recorded else {
            return pending.filter(|p| cmdline.is_empty() || starts_with(p)).map(|p| p.program);
        };
        if cmdline.is_empty() {
            return Some(pending.unwrap_or(run).program);
        }
        if starts_with(&run) {
            return Some(run.program);
        }
        if let Some(p) = pending.filter(|p| starts_with(p)) {
            return Some(p.program);
        }
        if argv[0] != run.argv[0] {
            // Rewritten by the program itself (setproctitle): the record holds.
            return Some(run.program);
        }
        // A command line cut short (a loader started by hand with its options only):
        // the record holds.
        let Some(given) = argv.get(loader_args(&argv) - 1).cloned() else { return Some(run.program) };
        self.guest_program(owner, &given)
    }

    /// The canonical guest path of `name` as process `owner` would find it.
    fn guest_program(&mut self, owner: Pid, name: &[u8]) -> Option<Vec<u8>> {
        let cwd = if name.first() == Some(&b'/') {
            b"/".to_vec()
        } else {
            self.mapping.to_guest(&hostfs::readlink(format!("/proc/{owner}/cwd").as_bytes()).ok()?)
        };
        let tgid = self.tgid(owner);
        let mut fs = TraceeFs { tgid, tid: owner, cache: &mut self.cache, stats: &mut self.stats };
        let req = ptnix_syscalls::resolve::Request { path: name, follow_last: true, ..Default::default() };
        let r = ptnix_syscalls::resolve::resolve(&self.mapping, &mut fs, &cwd, req);
        (!matches!(r.outcome, ptnix_syscalls::resolve::Outcome::Error(_))).then_some(r.guest)
    }

    /// The guest path of the file open at `fd`, if it has one (not a pipe, not deleted).
    fn fd_guest_path(&self, pid: Pid, fd: i32) -> Option<Vec<u8>> {
        let host = hostfs::readlink(format!("/proc/{pid}/fd/{fd}").as_bytes()).ok()?;
        (host.first() == Some(&b'/') && !host.ends_with(b" (deleted)")).then(|| self.mapping.to_guest(&host))
    }
}

/// execveat flag: run the file open at dirfd.
const AT_EMPTY_PATH: u64 = libc::AT_EMPTY_PATH as u64;

/// How many leading arguments of a loader invocation are the loader's own, up to and
/// including the program: `LOADER [--audit OBJECT] [--argv0 NAME] PROGRAM`.
pub(crate) fn loader_args(lead: &[Vec<u8>]) -> usize {
    // The loader, its options with their values, then the program.
    let mut i = 1;
    while matches!(lead.get(i).map(Vec::as_slice), Some(b"--argv0" | b"--audit")) {
        i += 2;
    }
    i + 1
}

/// The parent process of `pid` (PPid in /proc/PID/status).
/// The record of `owner`'s program (or, before its fork event, its parent's) while
/// the kernel's `/proc/PID/exe` still names the loader it describes, and that link.
pub(crate) fn recorded_run(exes: &crate::notif::ExeMap, owner: Pid) -> Option<(LoaderRun, Vec<u8>)> {
    let real = hostfs::readlink(format!("/proc/{owner}/exe").as_bytes()).ok()?;
    let known = exes.lock().unwrap_or_else(|p| p.into_inner()).get(&owner).cloned();
    let run = match known {
        Some(r) => r,
        None => exes.lock().unwrap_or_else(|p| p.into_inner()).get(&hostfs::proc_ppid(owner)?)?.clone(),
    };
    (run.loader == real).then_some((run, real))
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
    if argv == 0 {
        return Ok(Vec::new());
    }
    read_ptr_array(pid, argv + 8)
}

/// The pointers of the NULL-terminated array at `at` (none for a NULL `at`), without
/// the NULL.
pub(crate) fn read_ptr_array(pid: Pid, mut at: u64) -> Result<Vec<u64>, i32> {
    let mut out = Vec::new();
    if at == 0 {
        return Ok(out);
    }
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
