//! proot-compatible command line: ptnix takes proot's place for launchers such as
//! nix-portable, when it is started as `proot` (a symlink or a copy) or as
//! `ptnix proot ARGS`.
//!
//! Supported (what launchers use): `-r/--rootfs DIR`, `-R DIR`, `-b/--bind/-m/--mount
//! HOST[:GUEST]`, `-w/--pwd/--cwd DIR`, `--kill-on-exit`, `-0/--root-id`,
//! `-v/--verbose N`, `-k/--kernel-release STRING`, `--`, and `PROOT_NO_SECCOMP` in the
//! environment (pure-ptrace mode). Any other option is refused with a message naming
//! it. As proot does, ptnix exits with 1 for its own errors.

use ptnix_syscalls::mapping::Mapping;
use ptnix_syscalls::table::Optional;
use ptnix_tracer::{Launcher, Options, Outcome};
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::ExitCode;

/// proot's exit status for its own errors.
const EXIT_PROOT_ERROR: u8 = 1;

const USAGE: &str = "\
Usage: proot [OPTION]... [--] [COMMAND [ARG]...]   (ptnix's proot-compatible mode)

  -r, --rootfs=DIR          use DIR as the guest root (/)
  -R DIR                    like -r, plus the host's /etc/{hosts,resolv.conf,passwd,...},
                            /dev, /sys, /proc, /tmp, /run and $HOME
  -b, --bind=HOST[:GUEST]   show host path HOST at GUEST (default: the same path)
  -m, --mount=HOST[:GUEST]  the same as -b
  -w, --pwd, --cwd=DIR      start the command in guest directory DIR
      --kill-on-exit        kill the remaining processes when COMMAND exits
  -0, --root-id             getuid() and friends say 0 (root)
  -v, --verbose=N           log translations (N >= 1)
  -k, --kernel-release=S    make uname() report kernel release S
  PROOT_NO_SECCOMP=1        stop at every syscall (pure-ptrace mode)

Without COMMAND, /bin/sh runs. Other proot options are not supported.";

#[derive(Default, Debug)]
struct Args {
    rootfs: Option<OsString>,
    recommended: bool,
    binds: Vec<OsString>,
    cwd: Option<OsString>,
    kill_on_exit: bool,
    root_id: bool,
    verbose: u8,
    release: Option<OsString>,
    command: Vec<OsString>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ptnix (proot mode): {msg}");
    ExitCode::from(EXIT_PROOT_ERROR)
}

/// Splits `--name=value` / `-xVALUE` / `-x VALUE`.
fn value(arg: &[u8], name_len: usize, rest: &mut std::slice::Iter<'_, OsString>) -> Result<OsString, String> {
    let inline = &arg[name_len..];
    if let Some(v) = inline.strip_prefix(b"=") {
        return Ok(OsStr::from_bytes(v).to_os_string());
    }
    if !inline.is_empty() {
        return Ok(OsStr::from_bytes(inline).to_os_string());
    }
    rest.next().cloned().ok_or_else(|| format!("option '{}' needs a value", String::from_utf8_lossy(arg)))
}

fn parse(argv: &[OsString]) -> Result<Option<Args>, String> {
    let mut a = Args::default();
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let b = arg.as_bytes();
        if b == b"--" {
            a.command = it.cloned().collect();
            break;
        }
        if b.first() != Some(&b'-') || b == b"-" {
            a.command = std::iter::once(arg.clone()).chain(it.cloned()).collect();
            break;
        }
        // Longest names first, so that "-r" does not take "--rootfs".
        const WITH_VALUE: [(&str, u8); 13] = [
            ("--rootfs", b'r'),
            ("--bind", b'b'),
            ("--mount", b'b'),
            ("--pwd", b'w'),
            ("--cwd", b'w'),
            ("--verbose", b'v'),
            ("--kernel-release", b'k'),
            ("-r", b'r'),
            ("-R", b'R'),
            ("-b", b'b'),
            ("-m", b'b'),
            ("-w", b'w'),
            ("-v", b'v'),
        ];
        let matched = WITH_VALUE.iter().find(|(n, _)| {
            b.starts_with(n.as_bytes()) && (b.len() == n.len() || b[n.len()] == b'=' || !n.starts_with("--"))
        });
        let matched = matched.or_else(|| b.starts_with(b"-k").then_some(&("-k", b'k')));
        match (b, matched) {
            (b"--kill-on-exit", _) => a.kill_on_exit = true,
            (b"-0" | b"--root-id", _) => a.root_id = true,
            (b"-h" | b"--help", _) => {
                println!("{USAGE}");
                return Ok(None);
            }
            (b"-V" | b"--version", _) => {
                println!("ptnix {} (proot-compatible mode)", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            (_, Some((name, key))) => {
                let v = value(b, name.len(), &mut it)?;
                match key {
                    b'r' => a.rootfs = Some(v),
                    b'R' => {
                        a.rootfs = Some(v);
                        a.recommended = true;
                    }
                    b'b' => a.binds.push(v),
                    b'w' => a.cwd = Some(v),
                    b'v' => a.verbose = v.to_str().and_then(|s| s.parse::<i64>().ok()).map_or(1, |n| n.clamp(0, 2) as u8),
                    _ => a.release = Some(v),
                }
            }
            _ => return Err(format!("unsupported proot option '{}' (see `proot --help` for what ptnix supports)", arg.to_string_lossy())),
        }
    }
    Ok(Some(a))
}

fn canonical_host(p: &OsStr) -> Result<Vec<u8>, String> {
    std::fs::canonicalize(p)
        .map(|c| c.into_os_string().into_vec())
        .map_err(|e| format!("cannot use {}: {}", p.to_string_lossy(), e.kind()))
}

/// The bind list: the rootfs at `/`, -R's host files, then each -b in order.
fn binds(a: &Args) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
    let mut v = Vec::new();
    if let Some(r) = &a.rootfs {
        v.push((canonical_host(r)?, b"/".to_vec()));
    }
    if a.recommended {
        let mut host: Vec<OsString> = [
            "/etc/host.conf", "/etc/hosts", "/etc/hostname", "/etc/localtime", "/etc/nsswitch.conf",
            "/etc/passwd", "/etc/group", "/etc/resolv.conf", "/dev", "/sys", "/proc", "/tmp", "/run",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        host.extend(std::env::var_os("HOME"));
        for h in host.iter().filter(|h| std::path::Path::new(h).exists()) {
            v.push((canonical_host(h)?, h.as_bytes().to_vec()));
        }
    }
    for b in &a.binds {
        let raw = b.as_bytes();
        let (host, guest) = match raw.iter().position(|&c| c == b':') {
            Some(i) => (&raw[..i], &raw[i + 1..]),
            None => (raw, raw),
        };
        let host_path = OsStr::from_bytes(host);
        if !std::path::Path::new(host_path).exists() {
            // proot: "warning: can't sanitize binding": the bind is skipped.
            eprintln!("ptnix (proot mode): warning: skipping binding {}: no such host path", b.to_string_lossy());
            continue;
        }
        let guest = if guest.first() == Some(&b'/') { guest.to_vec() } else { canonical_host(OsStr::from_bytes(guest))? };
        v.push((canonical_host(host_path)?, guest));
    }
    Ok(v)
}

pub fn main(argv: &[OsString]) -> ExitCode {
    let a = match parse(argv) {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => return fail(e),
    };
    let mapping = match binds(&a).and_then(|b| Mapping::new(b).map_err(|e| format!("bad binding: {e}"))) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    // The command starts in -w's directory; without -w in the current directory if
    // the guest can see it there, else in the guest's `/` (as proot does).
    let cwd = match &a.cwd {
        Some(d) => Some(d.as_bytes().to_vec()),
        None => {
            let here = std::env::current_dir().map(|p| p.into_os_string().into_vec()).unwrap_or_default();
            let visible = !here.is_empty() && mapping.to_host(&mapping.to_guest(&here)) == here;
            (!visible).then(|| b"/".to_vec())
        }
    };
    let mut command = a.command.clone();
    if command.is_empty() {
        command.push("/bin/sh".into());
    }
    let argv: Result<Vec<CString>, _> = command.iter().map(|c| CString::new(c.as_bytes())).collect();
    let Ok(argv) = argv else { return fail("an argument contains a NUL byte") };
    let env_set = |n: &str| std::env::var_os(n).is_some_and(|v| !v.is_empty() && v != "0");
    let launcher = Launcher {
        optional: Optional { fake_root: a.root_id, uname: a.release.is_some(), ..Optional::default() },
        release: a.release.map(OsString::into_vec),
        cwd,
        kill_on_exit: a.kill_on_exit,
    };
    let opts = Options {
        mapping,
        seccomp: !(env_set("PROOT_NO_SECCOMP") || env_set("PTNIX_NO_SECCOMP")),
        pin: !env_set("PTNIX_NO_PIN"),
        notif: !env_set("PTNIX_NO_NOTIF"),
        shim: !env_set("PTNIX_NO_SHIM"),
        stats: false,
        verbose: a.verbose,
        log_file: None,
        launcher,
    };
    // proot's conventions: the command's own exit status; 255 (with a note) when a
    // signal killed it; 1 for proot's own errors, a command that cannot start included.
    match ptnix_tracer::run(opts, &argv) {
        Ok(Outcome::Exited(c)) => ExitCode::from(c as u8),
        Ok(Outcome::Signaled(s)) => {
            eprintln!("ptnix (proot mode) info: {}: terminated with signal {s}", command[0].to_string_lossy());
            ExitCode::from(255)
        }
        Ok(Outcome::NotStarted(_)) => ExitCode::from(1),
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Option<Args>, String> {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn nix_portable_call() {
        let a = p(&["-r", "/tmp/empty", "-b", "/dev:/dev", "-b", "/s/nix:/nix", "--bind=/usr", "-w", "/home", "/bin/sh", "-c", "x"])
            .unwrap()
            .unwrap();
        assert_eq!(a.rootfs.as_deref(), Some(OsStr::new("/tmp/empty")));
        assert_eq!(a.binds, vec![OsString::from("/dev:/dev"), "/s/nix:/nix".into(), "/usr".into()]);
        assert_eq!(a.cwd.as_deref(), Some(OsStr::new("/home")));
        assert_eq!(a.command, vec![OsString::from("/bin/sh"), "-c".into(), "x".into()]);
    }

    #[test]
    fn forms_and_flags() {
        let a = p(&["-r/tmp/r", "--rootfs=/tmp/q", "-0", "--kill-on-exit", "-v", "2", "-k", "3.10.0", "--", "-x"]).unwrap().unwrap();
        assert_eq!(a.rootfs.as_deref(), Some(OsStr::new("/tmp/q")));
        assert!(a.root_id && a.kill_on_exit);
        assert_eq!(a.verbose, 2);
        assert_eq!(a.release.as_deref(), Some(OsStr::new("3.10.0")));
        assert_eq!(a.command, vec![OsString::from("-x")]);
    }

    #[test]
    fn unknown_options_are_named() {
        let e = p(&["--bogus", "true"]).unwrap_err();
        assert!(e.contains("'--bogus'"), "{e}");
        assert!(p(&["-q", "qemu", "x"]).unwrap_err().contains("'-q'"));
        assert!(p(&["-b"]).unwrap_err().contains("needs a value"));
    }
}
