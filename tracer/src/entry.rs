//! Syscall entry: translate the paths going into the kernel.

use crate::engine::Engine;
use crate::hostfs::{self, TraceeFs};
use crate::mem;
use crate::procfiles::SNAPSHOT_FILES;
use crate::ptrace::{self, Pid, Regs};
use crate::regs::{arg, set_arg, skip, CS_32BIT};
use crate::tracee::{ExitWork, Scratch};
use ptnix_syscalls::resolve::{self, Outcome, Request};
use ptnix_syscalls::table::{Class, Follow, PathArg, Sys, I386_REFUSED, UNSHARE_NS_FLAGS, X32_SYSCALL_BIT};
use ptnix_syscalls::{path, sockaddr};

/// What to do with the syscall.
pub(crate) enum Verdict {
    /// Let it run as it is.
    Pass,
    /// Let it run with these arguments replaced by pointers to these bytes, and
    /// these arguments set to these values.
    Rewrite(Vec<(u8, Vec<u8>)>, Vec<(u8, u64)>),
    /// Do not run it; return this (a value or -errno).
    Return(i64),
    /// The registers were changed in place (another syscall, other arguments).
    Changed,
    /// An execve with a new filename, and a new argv (`lead` strings, then the original
    /// argv pointers `rest`) unless `lead` is empty, and a new environment if `env`.
    Exec { path_arg: u8, argv_arg: u8, filename: Vec<u8>, lead: Vec<Vec<u8>>, rest: Vec<u64>, env: Option<ExecEnv> },
}

/// An execve's new environment: the original envp pointers `keep`, then the `added`
/// strings.
pub(crate) struct ExecEnv {
    pub arg: u8,
    pub keep: Vec<u64>,
    pub added: Vec<Vec<u8>>,
}

pub(crate) fn fail(e: i32) -> Verdict {
    Verdict::Return(-i64::from(e))
}

/// Bytes below the stack pointer that the x86_64 ABI lets a leaf function use
/// without moving %rsp ("red zone"): scratch data must go below it.
pub(crate) const RED_ZONE: u64 = 128;

impl Engine {
    pub(crate) fn entry_stop(&mut self, pid: Pid) {
        // A syscall ptnix made the tracee run (see `listingfd`, `dirents`) is ptnix's
        // own: its exit stop carries the work.
        if self.tracees.get(&pid).is_some_and(|t| matches!(t.exit, Some(ExitWork::Injected { .. } | ExitWork::Restore { .. }))) {
            return self.resume(pid, 0);
        }
        self.cache.next_stop();
        if self.tracees.get(&pid).is_some_and(|t| t.execfn_watch.is_some()) {
            self.settle_execfn(pid);
        }
        let Ok(mut regs) = ptrace::get_regs(pid) else { return self.resume(pid, 0) };
        let nr = regs.orig_rax;
        let verdict = self.classify(pid, &mut regs);
        if self.log.is_some() {
            self.log_verdict(pid, nr, &verdict);
        }
        let mut exit = self.tracees.get_mut(&pid).and_then(|t| t.exit.take());
        match verdict {
            Verdict::Pass => {}
            Verdict::Rewrite(args, values) => match {
                self.stats.rewritten += args.len() as u64;
                self.write_scratch(pid, &mut regs, args)
            } {
                Ok(()) => {
                    for (i, v) in values {
                        set_arg(&mut regs, i, v);
                    }
                    let _ = ptrace::set_regs(pid, &regs);
                }
                Err(e) => self.refuse(pid, &mut regs, -i64::from(e), &mut exit),
            },
            Verdict::Return(v) => self.refuse(pid, &mut regs, v, &mut exit),
            Verdict::Changed => {
                let _ = ptrace::set_regs(pid, &regs);
            }
            Verdict::Exec { path_arg, argv_arg, filename, lead, rest, env } => {
                self.stats.rewritten += 1;
                match self.write_exec(pid, &mut regs, (path_arg, argv_arg), &filename, (&lead, &rest), env.as_ref()) {
                    Ok(()) => {
                        let _ = ptrace::set_regs(pid, &regs);
                    }
                    Err(e) => self.refuse(pid, &mut regs, -i64::from(e), &mut exit),
                }
            }
        }
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.exit = exit;
            // Before 4.8 an entry stop still lies between this seccomp stop and the exit.
            t.skip_entry_stop = self.seccomp && self.old_seccomp_order && t.exit.is_some();
        }
        self.resume(pid, 0)
    }

    fn log_verdict(&mut self, pid: Pid, nr: u64, v: &Verdict) {
        use crate::log::{quote, ret};
        let name = Sys::from_nr(nr).map_or_else(|| format!("syscall {nr}"), |s| s.name().to_string());
        let originals: Vec<Vec<u8>> =
            self.tracees.get(&pid).and_then(|t| t.scratch.as_ref()).map(|s| s.args.iter().map(|a| a.2.clone()).collect()).unwrap_or_default();
        let Some(log) = self.log.as_mut() else { return };
        match v {
            Verdict::Pass if log.level >= 2 => log.line(pid, format_args!("{name}: unchanged")),
            Verdict::Pass => {}
            Verdict::Rewrite(args, _) => {
                for (i, (_, new)) in args.iter().enumerate() {
                    let new = new.strip_suffix(b"\0").unwrap_or(new);
                    let old = originals.get(i).map(|o| quote(o)).unwrap_or_default();
                    log.line(pid, format_args!("{name}: {old} -> {}", quote(new)));
                }
            }
            Verdict::Return(r) => log.line(pid, format_args!("{name} = {} (answered by ptnix)", ret(*r))),
            Verdict::Changed => log.line(pid, format_args!("{name}: arguments changed by ptnix")),
            Verdict::Exec { filename, lead, .. } => {
                let filename = filename.strip_suffix(b"\0").unwrap_or(filename);
                let argv: Vec<String> = lead.iter().map(|a| quote(a)).collect();
                log.line(pid, format_args!("{name}: runs {} as [{}, ...]", quote(filename), argv.join(", ")));
            }
        }
    }

    /// Skips the syscall so that it returns `v`.
    fn refuse(&mut self, pid: Pid, regs: &mut Regs, v: i64, exit: &mut Option<ExitWork>) {
        self.stats.answered += 1;
        skip(regs, v);
        let _ = ptrace::set_regs(pid, regs);
        // In pure-ptrace mode the kernel overwrites rax with -ENOSYS for a skipped
        // syscall on some kernels; the exit stop sets the value for sure.
        // At the entry stop of a call taken over from the supervisor (see `escalate`)
        // the filter has not run yet: the exit stop sets the value as in pure-ptrace
        // mode.
        let entry_stop = self.tracees.get(&pid).is_some_and(|t| t.escalated_exit);
        *exit = if self.seccomp && !self.old_seccomp_order && !entry_stop { None } else { Some(ExitWork::Return(v)) };
    }

    fn classify(&mut self, pid: Pid, regs: &mut Regs) -> Verdict {
        let nr = regs.orig_rax;
        match Sys::from_nr(nr) {
            Some(s) => *self.stats.entry.entry(s.name()).or_default() += 1,
            None => self.stats.entry_other += 1,
        }
        if !self.seccomp {
            // The filter does these checks when it is installed.
            if let Some(v) = self.foreign_abi(pid, regs) {
                return v;
            }
        }
        let Some(sys) = Sys::from_nr(nr) else { return Verdict::Pass };
        match sys.class() {
            Class::Paths(args) => self.paths(pid, regs, args),
            Class::Exec(a) => self.exec(pid, regs, a),
            Class::Readlink { dirfd, path, buf, size } => self.readlink(pid, regs, dirfd, path, buf, size),
            Class::Getdents(format) => self.getdents_entry(pid, regs, format),
            Class::FdCopy(how) => self.fd_copy_entry(pid, regs, how),
            Class::FdFetch => self.fd_fetch_entry(pid),
            Class::Getcwd => {
                self.set_exit(pid, ExitWork::Getcwd { buf: regs.rdi, size: regs.rsi });
                Verdict::Pass
            }
            Class::SockaddrIn { addr, len, follow } => self.sockaddr_in(pid, regs, addr, len, follow),
            Class::SockaddrOut { addr, len_ptr } => {
                let (a, l) = (arg(regs, addr), arg(regs, len_ptr));
                if a != 0 && l != 0 {
                    if let Ok(cap) = mem::read_u32(pid, l) {
                        self.set_exit(pid, ExitWork::Sockaddr { addr: a, len_ptr: l, cap });
                    }
                }
                Verdict::Pass
            }
            Class::Clone3 => match mem::read_u64(pid, regs.rdi) {
                Ok(flags) if flags & UNSHARE_NS_FLAGS != 0 => fail(libc::EPERM),
                _ => Verdict::Pass,
            },
            Class::IdQuery { triple } if self.launcher.optional.fake_root => {
                if triple {
                    for i in 0..3 {
                        if mem::write(pid, arg(regs, i), &0u32.to_ne_bytes()).is_err() {
                            return fail(libc::EFAULT);
                        }
                    }
                }
                Verdict::Return(0)
            }
            Class::IdQuery { .. } => Verdict::Pass,
            Class::Umask => {
                self.set_exit(pid, ExitWork::UmaskSet);
                Verdict::Pass
            }
            Class::Uname if self.launcher.release.is_some() => {
                self.set_exit(pid, ExitWork::Uname(regs.rdi));
                Verdict::Pass
            }
            Class::Uname => Verdict::Pass,
            Class::Affinity { set } => self.affinity_entry(pid, regs, set),
            Class::OwnFilter { arg0 } => {
                // seccomp(SECCOMP_SET_MODE_FILTER, flags with NEW_LISTENER): the kernel
                // allows one listener in a chain of filters, and ptnix's has it. A null
                // program is libseccomp's probe of the flag (seccomp_api_get, as Nix
                // runs it before each build), which fails with EFAULT before the
                // listener is looked at: no hint for that.
                if self.notifying && arg0.is_none() && regs.rdi == 1 && regs.rsi & 8 != 0 && regs.rdx != 0 {
                    self.listener_refused();
                }
                if arg0.map_or(true, |v| regs.rdi as u32 == v) {
                    // ptnix's getdents filter goes in first (see `listingfd`).
                    if let Some(v) = self.filter_before_own(pid, regs, arg0.is_some()) {
                        return v;
                    }
                    self.mark_own_filter(pid);
                }
                Verdict::Pass
            }
            Class::Landlock => {
                self.mark_landlocked(pid);
                Verdict::Pass
            }
            Class::Deny(e) => fail(e),
            Class::DenyIfFlag { arg: i, mask } if arg(regs, i) & mask != 0 => fail(libc::EPERM),
            Class::DenyIfFlag { .. } => Verdict::Pass,
        }
    }

    /// Pure-ptrace mode: i386 (int 0x80) and x32 syscalls carry other numbers; refuse
    /// the path-carrying ones rather than let them through untranslated.
    fn foreign_abi(&self, pid: Pid, regs: &Regs) -> Option<Verdict> {
        let nr = regs.orig_rax;
        if nr & X32_SYSCALL_BIT != 0 && nr != u64::MAX {
            return Some(fail(libc::ENOSYS));
        }
        let i386_path = I386_REFUSED.contains(&(nr as u32)) && nr < 1024;
        if !i386_path {
            return None;
        }
        if regs.cs == CS_32BIT {
            return Some(fail(libc::ENOSYS));
        }
        // 64-bit code can still use int 0x80 (bytes CD 80 just before rip).
        let mut insn = [0u8; 2];
        if mem::read(pid, regs.rip.wrapping_sub(2), &mut insn).is_ok() && insn == [0xcd, 0x80] {
            return Some(fail(libc::ENOSYS));
        }
        None
    }

    pub(crate) fn set_exit(&mut self, pid: Pid, w: ExitWork) {
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.exit = Some(w);
        }
    }

    pub(crate) fn tgid(&mut self, pid: Pid) -> Pid {
        if let Some(g) = self.tracees.get(&pid).and_then(|t| t.tgid) {
            return g;
        }
        let g = hostfs::proc_tgid(pid).unwrap_or(pid);
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.tgid = Some(g);
        }
        g
    }

    /// The original bytes of argument `i` if this is a restart of a syscall whose
    /// argument ptnix had already pointed at `ptr` in its scratch area.
    fn restarted(&self, pid: Pid, regs: &Regs, i: u8, ptr: u64) -> Option<Vec<u8>> {
        let s = self.tracees.get(&pid)?.scratch.as_ref()?;
        if s.nr != regs.orig_rax || s.rsp != regs.rsp {
            return None;
        }
        s.args.iter().find(|(a, p, _)| *a == i && *p == ptr).map(|(_, _, orig)| orig.clone())
    }

    /// The path argument `i` (pointer `ptr`).
    pub(crate) fn path_arg(&self, pid: Pid, regs: &Regs, i: u8, ptr: u64) -> Result<Vec<u8>, i32> {
        match self.restarted(pid, regs, i, ptr) {
            Some(orig) => Ok(orig),
            None => mem::read_path(pid, ptr),
        }
    }

    pub(crate) fn follows(&self, pid: Pid, regs: &Regs, f: Follow) -> Result<bool, i32> {
        Ok(self.rules(pid, regs, f)?.follow_last)
    }

    /// How a path argument is looked up, from the syscall's flags. openat2's `struct
    /// open_how { u64 flags; u64 mode; u64 resolve; }` is read once.
    fn rules(&self, pid: Pid, regs: &Regs, f: Follow) -> Result<Rules, i32> {
        let (open_flags, resolve) = match f {
            Follow::OpenFlags { arg: i } => (Some(arg(regs, i)), 0),
            Follow::OpenHow { arg: i } => {
                let mut how = [0u8; 24];
                mem::read(pid, arg(regs, i), &mut how)?;
                let word = |k: usize| u64::from_ne_bytes(how[8 * k..8 * k + 8].try_into().unwrap());
                (Some(word(0)), word(2))
            }
            _ => (None, 0),
        };
        let follow_last = f.by_args(|i| arg(regs, i)).unwrap_or_else(|| open_flags.is_some_and(open_follows));
        Ok(Rules { follow_last, open_flags, resolve })
    }

    /// The guest directory a relative path starts from: the cwd, or the dirfd's.
    pub(crate) fn start_dir(&mut self, pid: Pid, regs: &Regs, dirfd: Option<u8>) -> Option<Vec<u8>> {
        let fd = dirfd.map(|i| arg(regs, i) as i32).unwrap_or(libc::AT_FDCWD);
        hostfs::start_dir_host(pid, fd).map(|h| self.mapping.to_guest(&h))
    }

    pub(crate) fn resolve(&mut self, pid: Pid, regs: &Regs, dirfd: Option<u8>, req: Request<'_>) -> resolve::Resolution {
        // The loader's open of ptnix's object, by the host path ptnix gave it.
        if self.shim.as_ref().is_some_and(|s| s.object == req.path) {
            return resolve::Resolution { outcome: Outcome::Unchanged, guest: req.path.to_vec() };
        }
        let cwd = if req.path.first() == Some(&b'/') || req.path.is_empty() {
            b"/".to_vec()
        } else {
            match self.start_dir(pid, regs, dirfd) {
                Some(d) => d,
                // A bad or non-directory dirfd: the kernel says EBADF/ENOTDIR itself.
                None => return resolve::Resolution { outcome: Outcome::Unchanged, guest: Vec::new() },
            }
        };
        self.stats.resolved += 1;
        let tgid = self.tgid(pid);
        let mut fs = TraceeFs { tgid, tid: pid, cache: &mut self.cache, stats: &mut self.stats };
        resolve::resolve(&self.mapping, &mut fs, &cwd, req)
    }

    /// See [`hostfs::lone_name_unchanged`]. (The lookup goes through `/proc/PID/...`,
    /// which needs no thread group: the tracee's tid stands for it.)
    fn lone_name_unchanged(&mut self, pid: Pid, regs: &Regs, dirfd: Option<u8>, req: Request<'_>) -> bool {
        let fd = dirfd.map(|i| arg(regs, i) as i32).unwrap_or(libc::AT_FDCWD);
        let mut fs = TraceeFs { tgid: pid, tid: pid, cache: &mut self.cache, stats: &mut self.stats };
        hostfs::lone_name_unchanged(&self.mapping, &mut fs, fd, req)
    }

    fn paths(&mut self, pid: Pid, regs: &Regs, args: &[PathArg]) -> Verdict {
        let mut rewrites = Vec::new();
        let mut originals = Vec::new();
        for a in args {
            let ptr = arg(regs, a.path);
            if ptr == 0 {
                continue; // EFAULT from the kernel, or utimensat's "NULL means the fd".
            }
            let path = match self.path_arg(pid, regs, a.path, ptr) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            let Rules { follow_last, open_flags, resolve: resolve_flags } = match self.rules(pid, regs, a.follow) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            // `/proc/self/exe` of a program started through its loader is the program.
            let redirected = if follow_last { self.exe_redirect(pid, &path) } else { None };
            let req = Request {
                path: redirected.as_deref().unwrap_or(&path),
                follow_last,
                names_entry: a.names_entry,
                no_symlinks: resolve_flags & RESOLVE_NO_SYMLINKS != 0,
                no_magiclinks: resolve_flags & RESOLVE_NO_MAGICLINKS != 0,
            };
            let opens = open_flags.is_some();
            // Only opens for reading get a /proc snapshot.
            let reads = open_flags.is_some_and(|f| f & O_ACCMODE == 0);
            // Opens look at the whole guest path where it may matter: a /proc file that
            // gets a snapshot, a directory whose listing changes. Otherwise a lone name
            // that cannot change anything needs no lookup.
            let plain_open = !SNAPSHOT_FILES.contains(&&path[..]) && !self.mapping.may_name_listed_dir(&path);
            if (!opens || plain_open) && self.lone_name_unchanged(pid, regs, a.dirfd, req) {
                continue;
            }
            let r = self.resolve(pid, regs, a.dirfd, req);
            if let (Some(flags), false) = (open_flags, matches!(r.outcome, Outcome::Error(_))) {
                self.watch_open(pid, &r.guest, flags);
            }
            let outcome = match (r.outcome, redirected.is_some()) {
                (Outcome::Error(e), _) => Outcome::Error(e),
                (o, _) if reads && r.guest.starts_with(b"/proc/") => match self.proc_snapshot(pid, &r.guest) {
                    Ok(Some(copy)) => {
                        self.set_exit(pid, ExitWork::Unlink(copy.clone()));
                        Outcome::Host(copy)
                    }
                    Ok(None) => o,
                    Err(e) => Outcome::Error(e),
                },
                (Outcome::Unchanged, true) => Outcome::Host(self.mapping.to_host(&r.guest)),
                (o, _) => o,
            };
            match outcome {
                Outcome::Unchanged => {}
                Outcome::Host(h) => {
                    let mut h = match self.fit(h) {
                        Ok(h) => h,
                        Err(e) => return fail(e),
                    };
                    h.push(0);
                    rewrites.push((a.path, h));
                    originals.push((a.path, path));
                }
                Outcome::Error(e) => return fail(e),
            }
        }
        if rewrites.is_empty() {
            return Verdict::Pass;
        }
        self.remember(pid, regs, originals);
        Verdict::Rewrite(rewrites, Vec::new())
    }

    /// Keeps the original paths for a restart (see [`Scratch`]). The pointers are
    /// filled in by `write_scratch`.
    pub(crate) fn remember(&mut self, pid: Pid, regs: &Regs, originals: Vec<(u8, Vec<u8>)>) {
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.scratch = Some(Scratch {
                nr: regs.orig_rax,
                rsp: regs.rsp,
                args: originals.into_iter().map(|(i, p)| (i, 0, p)).collect(),
            });
        }
    }

    /// Writes the new argument bytes below the red zone and points the arguments at
    /// them. Items are 16-byte aligned, the whole block too.
    fn write_scratch(&mut self, pid: Pid, regs: &mut Regs, args: Vec<(u8, Vec<u8>)>) -> Result<(), i32> {
        let total: u64 = args.iter().map(|(_, b)| (b.len() as u64 + 15) & !15).sum();
        let base = (regs.rsp - RED_ZONE - total) & !15;
        let mut block = vec![0u8; total as usize];
        let mut off = 0usize;
        let mut placed = Vec::with_capacity(args.len());
        for (i, b) in &args {
            block[off..off + b.len()].copy_from_slice(b);
            placed.push((*i, base + off as u64));
            off += (b.len() + 15) & !15;
        }
        mem::write(pid, base, &block)?;
        for &(i, p) in &placed {
            set_arg(regs, i, p);
        }
        if let Some(s) = self.tracees.get_mut(&pid).and_then(|t| t.scratch.as_mut()) {
            for (i, p, _) in s.args.iter_mut() {
                if let Some(&(_, np)) = placed.iter().find(|(j, _)| j == i) {
                    *p = np;
                }
            }
        }
        Ok(())
    }

    /// readlink(at): translate the path; a `/proc/<pid>/...` magic link is answered
    /// here with the guest path, since the kernel would name the host path.
    fn readlink(&mut self, pid: Pid, regs: &Regs, dirfd: Option<u8>, p: u8, buf: u8, size: u8) -> Verdict {
        let ptr = arg(regs, p);
        // readlinkat(2)'s bufsiz is an int, refused before the path is looked at: "if
        // (bufsiz <= 0) return -EINVAL" (the kernel's, on the path as given).
        if ptr == 0 || arg(regs, size) as i32 <= 0 {
            return Verdict::Pass;
        }
        let path = match self.path_arg(pid, regs, p, ptr) {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
        if path.is_empty() {
            return Verdict::Pass; // ENOENT, or readlinkat(fd, "") of an O_PATH symlink
        }
        let req = Request { path: &path, follow_last: false, names_entry: false, ..Default::default() };
        let r = self.resolve(pid, regs, dirfd, req);
        let host = match &r.outcome {
            Outcome::Error(e) => return fail(*e),
            Outcome::Host(h) => h.clone(),
            Outcome::Unchanged => self.mapping.to_host(&r.guest),
        };
        if !r.guest.starts_with(b"/proc/") {
            return self.rewrite_one(pid, regs, p, path, r.outcome);
        }
        let exe = self.exe_redirect(pid, &r.guest);
        let tgid = self.tgid(pid);
        let mut fs = TraceeFs { tgid, tid: pid, cache: &mut self.cache, stats: &mut self.stats };
        let Some(shown) = hostfs::magic_link_shown(&self.mapping, &mut fs, &r.guest, &host, exe) else {
            return self.rewrite_one(pid, regs, p, path, r.outcome);
        };
        let n = shown.len().min(arg(regs, size) as i32 as usize);
        match mem::write(pid, arg(regs, buf), &shown[..n]) {
            Ok(()) => Verdict::Return(n as i64),
            Err(_) => fail(libc::EFAULT),
        }
    }

    /// A host path the kernel accepts: one of PATH_MAX or more goes through a short
    /// symlink to its directory (see `shortlinks`).
    pub(crate) fn fit(&mut self, host: Vec<u8>) -> Result<Vec<u8>, i32> {
        if host.len() < path::PATH_MAX {
            return Ok(host);
        }
        self.shortlinks.shorten(&host)
    }

    fn rewrite_one(&mut self, pid: Pid, regs: &Regs, i: u8, original: Vec<u8>, o: Outcome) -> Verdict {
        match o {
            Outcome::Unchanged => Verdict::Pass,
            Outcome::Error(e) => fail(e),
            Outcome::Host(h) => {
                let mut h = match self.fit(h) {
                    Ok(h) => h,
                    Err(e) => return fail(e),
                };
                h.push(0);
                self.remember(pid, regs, vec![(i, original)]);
                Verdict::Rewrite(vec![(i, h)], Vec::new())
            }
        }
    }

    /// bind/connect/sendto with a unix socket path.
    fn sockaddr_in(&mut self, pid: Pid, regs: &Regs, addr: u8, len: u8, follow: bool) -> Verdict {
        let (a, l) = (arg(regs, addr), arg(regs, len) as usize);
        if a == 0 || l <= 2 || l > 2 + sockaddr::SUN_PATH_MAX {
            return Verdict::Pass;
        }
        let raw = match self.restarted(pid, regs, addr, a) {
            Some(orig) => orig,
            None => {
                let mut raw = vec![0u8; l];
                if mem::read(pid, a, &mut raw).is_err() {
                    return Verdict::Pass; // the kernel says EFAULT
                }
                raw
            }
        };
        let Some(p) = sockaddr::unix_path(&raw).map(<[u8]>::to_vec) else { return Verdict::Pass };
        // bind creates the socket file: like mknod, it names an entry.
        let req = Request { path: &p, follow_last: follow, names_entry: !follow, ..Default::default() };
        let host = match self.resolve(pid, regs, None, req).outcome {
            Outcome::Unchanged => return Verdict::Pass,
            Outcome::Error(e) => return fail(e),
            Outcome::Host(h) => h,
        };
        if !follow && p.first() == Some(&b'/') {
            if self.bound_names.len() >= 4096 {
                // Forget the sockets that are gone, so that a long session that binds
                // many short-lived sockets does not grow ptnix.
                self.bound_names.retain(|h, _| std::fs::symlink_metadata(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(h)).is_ok());
            }
            self.bound_names.insert(host.clone(), p.clone());
        }
        let built = match sockaddr::build(&host) {
            Some(b) => b,
            None => match self.shortlinks.shorten(&host).map(|s| sockaddr::build(&s)) {
                Ok(Some(b)) => b,
                Ok(None) => return fail(libc::ENAMETOOLONG),
                Err(e) => return fail(e),
            },
        };
        let new_len = built.len() as u64;
        self.remember(pid, regs, vec![(addr, raw)]);
        Verdict::Rewrite(vec![(addr, built)], vec![(len, new_len)])
    }
}

/// openat2(2) `how.resolve` flags ptnix must apply itself, since the kernel only sees
/// the resolved host path (linux/openat2.h).
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;

/// open(2): O_NOFOLLOW, and O_CREAT|O_EXCL ("symbolic links are not followed"), act on
/// a symlink in the last component itself.
/// What the flags of a syscall say about one of its path arguments.
struct Rules {
    follow_last: bool,
    /// open/openat/openat2: the open flags.
    open_flags: Option<u64>,
    /// openat2: `open_how.resolve` (RESOLVE_*).
    resolve: u64,
}

/// open(2): "The argument flags must include one of the following access modes:
/// O_RDONLY, O_WRONLY, or O_RDWR" (0, 1, 2).
const O_ACCMODE: u64 = libc::O_ACCMODE as u64;

pub(crate) fn open_follows(flags: u64) -> bool {
    let f = flags as i32;
    f & libc::O_NOFOLLOW == 0 && f & (libc::O_CREAT | libc::O_EXCL) != (libc::O_CREAT | libc::O_EXCL)
}


#[cfg(test)]
mod tests {
    use super::open_follows;

    #[test]
    fn open_flags() {
        assert!(open_follows(libc::O_RDONLY as u64));
        assert!(open_follows((libc::O_CREAT | libc::O_WRONLY) as u64));
        assert!(!open_follows((libc::O_CREAT | libc::O_EXCL) as u64));
        assert!(!open_follows(libc::O_NOFOLLOW as u64));
    }
}
