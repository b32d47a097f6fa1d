//! `ptnix doctor`: can ptnix work on this host, and how well? One line per check:
//! `ok`, `warn` or `fail`, what was found, and the fix. Exit status 0 when ptnix can
//! run here, 1 when it cannot (launchers call `ptnix doctor --quiet` to choose).

use ptnix_tracer::{kernel, probe};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Report {
    lines: Vec<(Level, String)>,
}

impl Report {
    fn add(&mut self, level: Level, msg: impl Into<String>) {
        self.lines.push((level, msg.into()));
    }
}

fn errno_text(e: i32) -> String {
    let s = std::io::Error::from_raw_os_error(e).to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// statfs magic of NFS (linux/magic.h).
const NFS_SUPER_MAGIC: i64 = 0x6969;

fn store_checks(r: &mut Report, root: &Path) {
    let shown = root.display();
    let Ok(c) = CString::new(root.as_os_str().as_bytes()) else { return };
    // SAFETY: stat/statvfs/statfs of a valid C string into plain old data.
    let (st, vfs, fs) = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        let mut vfs: libc::statvfs = std::mem::zeroed();
        let mut fs: libc::statfs = std::mem::zeroed();
        if libc::stat(c.as_ptr(), &mut st) != 0 {
            r.add(Level::Ok, format!("store directory {shown} does not exist yet: `ptnix run` creates it"));
            return;
        }
        libc::statvfs(c.as_ptr(), &mut vfs);
        libc::statfs(c.as_ptr(), &mut fs);
        (st, vfs, fs)
    };
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    if st.st_uid != uid {
        r.add(Level::Warn, format!("store directory {shown} is owned by uid {}, not you (uid {uid}): Nix wants to own its store; use --store with a directory of your own", st.st_uid));
    } else {
        r.add(Level::Ok, format!("store directory {shown} is yours"));
    }
    let free = vfs.f_bavail as u64 * vfs.f_frsize as u64;
    let gib = free as f64 / (1u64 << 30) as f64;
    let level = if gib < 1.0 { Level::Warn } else { Level::Ok };
    r.add(level, format!("{gib:.1} GiB free in the store directory's filesystem{}", if level == Level::Warn { ": builds need room" } else { "" }));
    if fs.f_type as i64 == NFS_SUPER_MAGIC {
        r.add(Level::Warn, "the store directory is on NFS: Nix's SQLite database and locks need care there; prefer a local disk (e.g. --store /scratch/$USER)");
    }
}

pub fn run(quiet: bool, store: &Path) -> u8 {
    let mut r = Report { lines: Vec::new() };
    let (major, minor) = kernel::version();
    let k = format!("kernel {major}.{minor}");
    if (major, minor) < (3, 8) {
        r.add(Level::Fail, format!("{k}: ptnix needs Linux 3.8 or newer (PTRACE_O_EXITKILL)"));
    } else if (major, minor) < (5, 6) {
        r.add(Level::Warn, format!("{k}: works; without openat2 (5.6) paths are resolved one lookup per component, which is slower"));
    } else {
        r.add(Level::Ok, k);
    }
    let p = probe::probe();
    match p.ptrace {
        Ok(()) => r.add(Level::Ok, "ptrace is permitted"),
        Err(e) => {
            let why = if let Some(t) = p.tracer_pid {
                format!("ptnix itself runs under a tracer (pid {t}): run it outside gdb/strace")
            } else if p.yama_scope == Some(3) {
                "yama ptrace_scope is 3 (no ptrace at all): ask the admin; nothing else fixes it".to_string()
            } else {
                "the container's seccomp or LSM policy forbids it: ask for ptrace to be allowed".to_string()
            };
            r.add(Level::Fail, format!("ptrace is not permitted ({}): {why}", errno_text(e)));
        }
    }
    if p.ptrace.is_ok() {
        if p.seccomp {
            r.add(Level::Ok, "seccomp-bpf tracing works: only path syscalls stop");
            if ptnix_tracer::fast_path_usable() {
                r.add(Level::Ok, "in-process fast path: dynamically linked programs make their stat, getxattr, readlink, access, open and opendir calls on paths under /nix, host paths ptnix leaves as they are, and lone names themselves, and glibc 2.35+ loaders get their library search answered (--no-shim turns it off)");
            } else {
                r.add(Level::Warn, "in-process fast path unavailable (it needs Linux 4.17): every store path call goes through ptnix, which is slower");
            }
            if ptnix_tracer::notifications_usable() {
                if ptnix_tracer::kernel::at_least(5, 14) {
                    r.add(Level::Ok, "seccomp user notifications work: the stat family and opens are answered without stops");
                } else {
                    r.add(Level::Ok, "seccomp user notifications work: the stat family is answered without stops (opens too from Linux 5.14)");
                }
            } else {
                r.add(Level::Warn, "seccomp user notifications are not used here (they need Linux 5.6, ptnix not running as root or with capabilities, and process_vm_readv): ptnix stops for the stat family too, which is slower");
            }
        } else {
            r.add(Level::Warn, "seccomp filters cannot be installed here: ptnix uses its pure-ptrace mode, which stops at every syscall and is slower");
        }
        match p.vm_read {
            Ok(()) => r.add(Level::Ok, "process_vm_readv works"),
            Err(e) => r.add(Level::Warn, format!("process_vm_readv fails ({}): ptnix reads tracee memory a word at a time, which is slower", errno_text(e))),
        }
    }
    if p.userns {
        r.add(Level::Warn, "unprivileged user namespaces exist here: bwrap or Nix's own chroot store (nix --store ~/.local/share/nix/root) run faster than ptnix on this host");
    } else {
        r.add(Level::Ok, "no unprivileged user namespaces: ptnix is the way to run Nix here");
    }
    store_checks(&mut r, store);
    if Path::new("/nix").exists() {
        r.add(Level::Ok, "the host has its own /nix: ptnix hides it behind your store");
    }
    let worst = r.lines.iter().map(|l| l.0).max().unwrap_or(Level::Ok);
    if !quiet {
        for (level, msg) in &r.lines {
            let tag = match level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "fail",
            };
            println!("{tag} {msg}");
        }
    }
    u8::from(worst == Level::Fail)
}
