//! Planning an execve in the guest view.
//!
//! During execve the kernel itself opens the `#!` interpreter and the ELF interpreter
//! (PT_INTERP), on the host, where `/nix/store/...` does not exist; the tracer never
//! sees those lookups. So ptnix follows the chain first: for a script it builds the
//! argv the kernel would build (fs/binfmt_script.c: the interpreter, its optional
//! argument, the script's name, then the original argv[1..]); for an ELF file whose
//! loader lives in a bind it starts the loader explicitly, as
//! `LOADER [--argv0 ARGV0] PROGRAM ARGS...`. A chain that never touches a bind is left
//! entirely to the kernel.

use crate::elf::{self, ElfInterp};
use crate::mapping::Mapping;
use crate::resolve::{self, HostFs, Outcome, Request};
use crate::shebang::{self, ShebangError};
use crate::Errno;

/// fs/exec.c: `for (depth = 0;; depth++) { if (depth > 5) return -ELOOP; ... }`:
/// a file and at most five nested interpreters.
pub const MAX_DEPTH: usize = 5;
/// How much of a file is read first: the `#!` buffer, and in practice the ELF and
/// program headers and the PT_INTERP string (unless patchelf moved them).
const HEAD: usize = 4096;

/// Reading files and recognising loaders, on top of [`HostFs`].
pub trait ExecFs: HostFs {
    /// Up to `len` bytes at `offset` of the host file (fewer at end of file).
    fn read_at(&mut self, host: &[u8], offset: u64, len: usize) -> Result<Vec<u8>, Errno>;
    /// Whether the dynamic loader at `host` understands `--argv0` (glibc 2.33+, musl).
    fn loader_has_argv0(&mut self, host: &[u8]) -> bool;
    /// The kernel's checks before it runs a file (fs/exec.c, do_open_execat): a
    /// regular file ("EACCES: not a regular file") that the caller may execute, on a
    /// filesystem not mounted noexec.
    fn may_exec(&mut self, host: &[u8]) -> Result<(), Errno>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecPlan {
    /// What to hand the kernel as the filename: a host path.
    pub filename: Vec<u8>,
    /// The arguments that replace the original argv[0]; the original argv[1..]
    /// follow them.
    pub lead: Vec<Vec<u8>>,
    /// The program's guest path when it runs under an explicitly started loader:
    /// `/proc/PID/exe` must show this rather than the loader.
    pub exe: Option<Vec<u8>>,
    /// That program's host path.
    pub exe_host: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecOutcome {
    /// Let the kernel exec the original arguments.
    Unchanged,
    Plan(ExecPlan),
    /// Fail the execve with this errno.
    Error(Errno),
}

/// One execve to plan.
pub struct ExecRequest<'a> {
    pub filename: &'a [u8],
    pub argv0: &'a [u8],
    /// Guest directory relative names start from.
    pub cwd: &'a [u8],
    /// Relative names are relative to the cwd (not to an execveat dirfd), so they
    /// can be handed on as they are.
    pub cwd_relative: bool,
    /// Follow a symlink in the last component (execveat AT_SYMLINK_NOFOLLOW: no).
    pub follow_last: bool,
    /// fexecve (execveat with AT_EMPTY_PATH): the kernel has the file open already and
    /// calls it this (`/dev/fd/N`); `filename` is its guest path, which only a loader
    /// that must open the program needs.
    pub fd_name: Option<&'a [u8]>,
}

/// The `#!` line (if any) and the ELF interpreter of a host file.
fn read_headers(fs: &mut impl ExecFs, host: &[u8]) -> Result<(Vec<u8>, ElfInterp), Errno> {
    let head = fs.read_at(host, 0, HEAD)?;
    let interp = elf::interpreter(&mut reader(fs, host, &head))?;
    Ok((head, interp))
}

/// Reads of the file at `host` whose first bytes `head` are known already.
fn reader<'a>(fs: &'a mut impl ExecFs, host: &'a [u8], head: &'a [u8]) -> impl FnMut(u64, usize) -> Result<Vec<u8>, Errno> + 'a {
    move |off: u64, len: usize| match usize::try_from(off).ok().and_then(|o| Some(o..o.checked_add(len)?)) {
        Some(r) if r.end <= head.len() => Ok(head[r].to_vec()),
        _ => fs.read_at(host, off, len),
    }
}

/// The name a later stage gets for a file: the name as given when it is meaningful
/// from the cwd, else its guest path. A loader searches a slash-less name like a
/// library, so `prog` becomes `./prog`.
fn name_for(given: &[u8], guest: &[u8], cwd_relative: bool) -> Vec<u8> {
    if given.first() != Some(&b'/') && !cwd_relative {
        return guest.to_vec();
    }
    if memchr::memchr(b'/', given).is_none() {
        let mut v = b"./".to_vec();
        v.extend_from_slice(given);
        return v;
    }
    given.to_vec()
}

pub fn plan(map: &Mapping, fs: &mut impl ExecFs, req: ExecRequest<'_>) -> ExecOutcome {
    plan_exec(map, fs, req).0
}

/// Whether a file's first bytes are those of an x86_64 ELF64 file: with PT_INTERP,
/// a program that loads a preloaded x86_64 object (a 32-bit one would make its
/// loader print an error for it).
pub fn x86_64_elf(head: &[u8]) -> bool {
    head.len() >= 20 && head.starts_with(b"\x7fELF") && head[4] == 2 && head[5] == 1 && head[18..20] == [62, 0]
}

/// The environment entry `LD_PRELOAD=[THEIRS:]OBJECT` that ptnix appends for its
/// in-process object (see the tracer's `shim`): glibc's loader takes the last
/// LD_PRELOAD, and loads the program's own first, so that an interposer of theirs
/// (fakeroot, libfaketime) still sees every call before ptnix's object. `theirs` is
/// the value of the program's last LD_PRELOAD, if any; a trailing copy of OBJECT in
/// it (an environment copied from a process that had it) is not repeated.
pub fn preload_entry(object: &[u8], theirs: Option<&[u8]>) -> Vec<u8> {
    let mut theirs = theirs.unwrap_or_default();
    if theirs.ends_with(object) {
        let head = &theirs[..theirs.len() - object.len()];
        if head.is_empty() || head.ends_with(b":") {
            theirs = head.strip_suffix(b":").unwrap_or(head);
        }
    }
    let mut v = b"LD_PRELOAD=".to_vec();
    if !theirs.is_empty() {
        v.extend_from_slice(theirs);
        v.push(b':');
    }
    v.extend_from_slice(object);
    v
}

/// Whether the program needs a sanitizer's shared runtime, which must come first in
/// the loader's list (ASan aborts: "ASan runtime does not come first in initial
/// library list"), where nothing preloaded may go before it.
fn sanitized(fs: &mut impl ExecFs, host: &[u8], head: &[u8]) -> bool {
    const RUNTIMES: [&[u8]; 6] = [b"libasan.so", b"libtsan.so", b"libhwasan.so", b"libclang_rt.asan", b"libclang_rt.tsan", b"libclang_rt.hwasan"];
    elf::needed(&mut reader(fs, host, head)).unwrap_or_default().iter().any(|n| RUNTIMES.iter().any(|r| n.starts_with(r)))
}

/// [`plan`], and whether the program that will run in the end is a dynamically
/// linked x86_64 ELF file (see [`x86_64_elf`]) that can take a preloaded object (not
/// one built with a sanitizer's shared runtime).
pub fn plan_exec(map: &Mapping, fs: &mut impl ExecFs, req: ExecRequest<'_>) -> (ExecOutcome, bool) {
    let mut dynamic = false;
    let outcome = plan_inner(map, fs, req, &mut dynamic);
    (outcome, dynamic)
}

fn plan_inner(map: &Mapping, fs: &mut impl ExecFs, req: ExecRequest<'_>, dynamic: &mut bool) -> ExecOutcome {
    let mut cur = req.filename.to_vec();
    let mut lead: Vec<Vec<u8>> = vec![req.argv0.to_vec()];
    let mut needs = false;
    let mut follow = req.follow_last;
    let mut cwd_relative = req.cwd_relative;
    let finish = |needs: bool, filename: Vec<u8>, lead: Vec<Vec<u8>>| {
        if needs {
            ExecOutcome::Plan(ExecPlan { filename, lead, exe: None, exe_host: None })
        } else {
            ExecOutcome::Unchanged
        }
    };
    for depth in 0..=MAX_DEPTH {
        if cur.is_empty() {
            return finish(needs, cur, lead); // ENOENT (or AT_EMPTY_PATH) from the kernel
        }
        let r = resolve::resolve(map, fs, req.cwd, Request { path: &cur, follow_last: follow, names_entry: false, ..Default::default() });
        let by_fd = depth == 0 && req.fd_name.is_some();
        let host = match r.outcome {
            Outcome::Unchanged => map.to_host(&r.guest),
            Outcome::Host(h) => {
                // A file the kernel already has open needs no path.
                needs |= !by_fd;
                h
            }
            Outcome::Error(e) => return ExecOutcome::Error(e),
        };
        follow = true;
        if let Err(e) = fs.may_exec(&host) {
            // A host-only chain so far: the kernel checks it itself, on the same file.
            return if needs { ExecOutcome::Error(e) } else { ExecOutcome::Unchanged };
        }
        let Ok((head, interp)) = read_headers(fs, &host) else {
            // Unreadable or missing: the kernel reports it on the same file.
            return finish(needs, host, lead);
        };
        match shebang::parse(&head) {
            Ok(sb) => {
                let mut next = vec![sb.interpreter.clone()];
                next.extend(sb.arg);
                next.push(match req.fd_name {
                    Some(n) if depth == 0 => n.to_vec(),
                    _ => name_for(&cur, &r.guest, cwd_relative),
                });
                next.extend(lead.drain(1..));
                lead = next;
                cur = sb.interpreter;
                cwd_relative = true;
                continue;
            }
            Err(ShebangError::NoExec) => return finish(needs, host, lead),
            Err(ShebangError::NotScript) => {}
        }
        let ElfInterp::Path(loader) = interp else { return finish(needs, host, lead) };
        *dynamic = x86_64_elf(&head) && !sanitized(fs, &host, &head);
        let lr = resolve::resolve(map, fs, req.cwd, Request { path: &loader, follow_last: true, names_entry: false, ..Default::default() });
        let loader_host = match lr.outcome {
            Outcome::Unchanged => return finish(needs, host, lead),
            Outcome::Host(h) => h,
            Outcome::Error(e) => return ExecOutcome::Error(e),
        };
        let mut next = vec![loader.clone()];
        if fs.loader_has_argv0(&loader_host) {
            next.push(b"--argv0".to_vec());
            next.push(lead[0].clone());
        }
        next.push(name_for(&cur, &r.guest, cwd_relative));
        next.extend(lead.drain(1..));
        return ExecOutcome::Plan(ExecPlan { filename: loader_host, lead: next, exe: Some(r.guest), exe_host: Some(host) });
    }
    ExecOutcome::Error(libc::ELOOP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::synthetic_elf;
    use crate::model::ModelFs;

    const LD: &str = "/nix/store/glibc/lib/ld-linux-x86-64.so.2";

    fn fs() -> ModelFs {
        let mut f = ModelFs::new();
        let prog = synthetic_elf(Some(LD.as_bytes()));
        f.file("/s/nix/store/glibc/lib/ld-linux-x86-64.so.2", b"\x7fELF...--argv0...")
            .file("/s/nix/store/old/lib/ld.so", b"\x7fELF old loader")
            .file("/s/nix/store/bash/bin/bash", &prog)
            .file("/s/nix/store/old/bin/prog", &synthetic_elf(Some(b"/nix/store/old/lib/ld.so")))
            .file("/s/nix/store/bb/bin/busybox", &synthetic_elf(None))
            .file("/s/nix/store/s/bin/script", b"#!/nix/store/bash/bin/bash -e\necho\n")
            .file("/s/nix/store/s/bin/envscript", b"#!/nix/store/coreutils/bin/env bash\n")
            .file("/s/nix/store/coreutils/bin/env", &prog)
            .file("/s/nix/store/s/bin/nested", b"#!/nix/store/s/bin/script\n")
            .file("/s/nix/store/s/bin/hostsh", b"#!/bin/sh\n")
            .link("/home/u/.nix-profile", "/nix/store/s")
            .file("/bin/sh", &synthetic_elf(Some(b"/lib64/ld-linux-x86-64.so.2")))
            .file("/lib64/ld-linux-x86-64.so.2", b"\x7fELF")
            .file("/home/u/host-script", b"#!/bin/sh\n")
            .dir("/home/u/work");
        for i in 0..7 {
            let next = format!("#!/nix/store/loop/{}\n", i + 1);
            f.file(&format!("/s/nix/store/loop/{i}"), next.as_bytes());
        }
        f.file("/s/nix/store/loop/7", &prog);
        f
    }

    fn run(filename: &str, argv0: &str) -> ExecOutcome {
        let m = Mapping::for_store(b"/s").unwrap();
        let req = ExecRequest {
            filename: filename.as_bytes(),
            argv0: argv0.as_bytes(),
            cwd: b"/home/u/work",
            cwd_relative: true,
            follow_last: true,
            fd_name: None,
        };
        plan(&m, &mut fs(), req)
    }

    fn lead(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn preload_entry_puts_ptnix_last_once() {
        let o: &[u8] = b"/tmp/ptA/shim.so";
        assert_eq!(preload_entry(o, None), b"LD_PRELOAD=/tmp/ptA/shim.so");
        assert_eq!(preload_entry(o, Some(b"")), b"LD_PRELOAD=/tmp/ptA/shim.so");
        assert_eq!(preload_entry(o, Some(b"libm.so.6")), b"LD_PRELOAD=libm.so.6:/tmp/ptA/shim.so");
        assert_eq!(preload_entry(o, Some(b"/tmp/ptA/shim.so")), b"LD_PRELOAD=/tmp/ptA/shim.so");
        assert_eq!(preload_entry(o, Some(b"x.so:/tmp/ptA/shim.so")), b"LD_PRELOAD=x.so:/tmp/ptA/shim.so");
        // Only a whole trailing element is ours.
        assert_eq!(preload_entry(o, Some(b"x/tmp/ptA/shim.so")), b"LD_PRELOAD=x/tmp/ptA/shim.so:/tmp/ptA/shim.so");
    }

    #[test]
    fn dynamic_x86_64_programs_are_told_apart() {
        let m = Mapping::for_store(b"/s").unwrap();
        let kind = |filename: &str| {
            let req = ExecRequest { filename: filename.as_bytes(), argv0: b"x", cwd: b"/home/u/work", cwd_relative: true, follow_last: true, fd_name: None };
            plan_exec(&m, &mut fs(), req).1
        };
        // Host and store programs, and scripts by their interpreter.
        assert!(kind("/bin/sh"));
        assert!(kind("/nix/store/bash/bin/bash"));
        assert!(kind("/nix/store/s/bin/script"));
        assert!(kind("/home/u/host-script"));
        // Static, or not ELF at all.
        assert!(!kind("/nix/store/bb/bin/busybox"));
        assert!(!kind("/nix/store/glibc/lib/ld-linux-x86-64.so.2"));
        let mut elf32 = synthetic_elf(Some(b"/lib/ld-linux.so.2"));
        elf32[4] = 1;
        assert!(!x86_64_elf(&elf32));
        let mut arm = synthetic_elf(Some(b"/lib/ld-linux-aarch64.so.1"));
        arm[18] = 183;
        assert!(!x86_64_elf(&arm));
        assert!(x86_64_elf(&synthetic_elf(Some(b"/lib64/ld-linux-x86-64.so.2"))));
    }

    #[test]
    fn host_programs_are_left_to_the_kernel() {
        assert_eq!(run("/bin/sh", "sh"), ExecOutcome::Unchanged);
        assert_eq!(run("/home/u/host-script", "x"), ExecOutcome::Unchanged);
        assert_eq!(run("/no/such/file", "x"), ExecOutcome::Unchanged);
    }

    #[test]
    fn store_elf_runs_through_its_loader() {
        let ExecOutcome::Plan(p) = run("/nix/store/bash/bin/bash", "bash") else { panic!() };
        assert_eq!(p.filename, b"/s/nix/store/glibc/lib/ld-linux-x86-64.so.2");
        assert_eq!(p.lead, lead(&[LD, "--argv0", "bash", "/nix/store/bash/bin/bash"]));
        assert_eq!(p.exe.as_deref(), Some(&b"/nix/store/bash/bin/bash"[..]));
    }

    #[test]
    fn old_loader_without_argv0() {
        let ExecOutcome::Plan(p) = run("/nix/store/old/bin/prog", "prog") else { panic!() };
        assert_eq!(p.lead, lead(&["/nix/store/old/lib/ld.so", "/nix/store/old/bin/prog"]));
    }

    #[test]
    fn static_store_binary_only_needs_its_path() {
        let ExecOutcome::Plan(p) = run("/nix/store/bb/bin/busybox", "sh") else { panic!() };
        assert_eq!(p.filename, b"/s/nix/store/bb/bin/busybox");
        assert_eq!(p.lead, lead(&["sh"]));
        assert_eq!(p.exe, None);
    }

    #[test]
    fn scripts_get_the_kernels_argv() {
        let ExecOutcome::Plan(p) = run("/home/u/.nix-profile/bin/script", "script") else { panic!() };
        assert_eq!(p.filename, b"/s/nix/store/glibc/lib/ld-linux-x86-64.so.2");
        // interpreter, its argument, the script as named in execve; then argv[1..].
        assert_eq!(
            p.lead,
            lead(&[LD, "--argv0", "/nix/store/bash/bin/bash", "/nix/store/bash/bin/bash", "-e", "/home/u/.nix-profile/bin/script"])
        );
        let ExecOutcome::Plan(p) = run("/nix/store/s/bin/envscript", "x") else { panic!() };
        assert_eq!(p.lead[4..], lead(&["bash", "/nix/store/s/bin/envscript"]));
        let ExecOutcome::Plan(p) = run("/nix/store/s/bin/nested", "x") else { panic!() };
        assert_eq!(
            p.lead[3..],
            lead(&["/nix/store/bash/bin/bash", "-e", "/nix/store/s/bin/script", "/nix/store/s/bin/nested"])
        );
    }

    #[test]
    fn store_script_with_host_interpreter_names_the_guest_script() {
        let ExecOutcome::Plan(p) = run("/nix/store/s/bin/hostsh", "x") else { panic!() };
        assert_eq!(p.filename, b"/bin/sh");
        assert_eq!(p.lead, lead(&["/bin/sh", "/nix/store/s/bin/hostsh"]));
    }

    #[test]
    fn only_executable_files_run() {
        let m = Mapping::for_store(b"/s").unwrap();
        let mut f = fs();
        f.dir("/s/nix/store/d");
        f.file("/s/nix/store/s/bin/dir-interp", b"#!/nix/store/d\n");
        for (path, e) in [("/nix/store/d", libc::EACCES), ("/nix/store/s/bin/dir-interp", libc::EACCES)] {
            let req = ExecRequest { filename: path.as_bytes(), argv0: b"x", cwd: b"/", cwd_relative: true, follow_last: true, fd_name: None };
            assert_eq!(plan(&m, &mut f, req), ExecOutcome::Error(e), "{path}");
        }
    }

    #[test]
    fn nesting_limit_is_the_kernels() {
        // loop/0 -> ... -> loop/5 are scripts; loop/7 is an ELF.
        assert_eq!(run("/nix/store/loop/1", "x"), ExecOutcome::Error(libc::ELOOP));
        assert!(matches!(run("/nix/store/loop/2", "x"), ExecOutcome::Plan(_)));
    }

    #[test]
    fn relative_names_keep_a_slash() {
        let m = Mapping::for_store(b"/s").unwrap();
        let req = ExecRequest { filename: b"bash", argv0: b"bash", cwd: b"/nix/store/bash/bin", cwd_relative: true, follow_last: true, fd_name: None };
        let ExecOutcome::Plan(p) = plan(&m, &mut fs(), req) else { panic!() };
        assert_eq!(p.lead.last().unwrap(), b"./bash");
    }
}
