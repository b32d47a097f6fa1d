//! `ptnix`: run a command with a user-owned store shown at /nix.

mod args;
mod doctor;
mod proot;
mod store;

use ptnix_syscalls::mapping::Mapping;
use ptnix_tracer::{Options, Outcome};
use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::ExitCode;

/// Exit status for ptnix's own errors (as `env`, `nice` and `timeout` use 125).
const EXIT_PTNIX_ERROR: u8 = 125;

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ptnix: {msg}");
    ExitCode::from(EXIT_PTNIX_ERROR)
}

fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

fn main() -> ExitCode {
    // Started as `proot` (a symlink or a copy), or as `ptnix proot ARGS`: proot's syntax.
    let all: Vec<OsString> = std::env::args_os().collect();
    let name = all.first().map(|a| std::path::Path::new(a).file_name().unwrap_or_default().to_os_string());
    if name.as_deref() == Some(std::ffi::OsStr::new("proot")) {
        return proot::main(&all[1..]);
    }
    if all.get(1).map(|a| a.as_os_str()) == Some(std::ffi::OsStr::new("proot")) {
        return proot::main(&all[2..]);
    }
    let matches = match args::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            // --help and --version succeed; anything else (including a bare `ptnix`) is
            // a usage error.
            use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
            let code = if matches!(e.kind(), DisplayHelp | DisplayVersion) { 0 } else { EXIT_PTNIX_ERROR };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match matches.subcommand() {
        Some(("run", m)) => run(m),
        Some(("completions", m)) => {
            let shell = *m.get_one::<clap_complete::Shell>("shell").expect("required");
            clap_complete::generate(shell, &mut args::command(), "ptnix", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Some(("man", _)) => match clap_mangen::Man::new(args::command()).render(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("cannot write the man page: {e}")),
        },
        Some(("doctor", m)) => match store::choose(m.get_one::<OsString>("store")) {
            Ok(root) => ExitCode::from(doctor::run(m.get_flag("quiet"), &root)),
            Err(e) => fail(e),
        },
        _ => fail("unknown subcommand"),
    }
}

/// `HOST:GUEST` (or `HOST`, shown at the same path). The host side is made absolute
/// and canonical: the kernel reports canonical host paths, which must map back.
fn parse_bind(b: &OsString) -> Result<(Vec<u8>, Vec<u8>), String> {
    let raw = b.as_bytes();
    let (host, guest) = match memchr_colon(raw) {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (raw, raw),
    };
    let shown = String::from_utf8_lossy(raw);
    if host.is_empty() || guest.is_empty() {
        return Err(format!("bad bind `{shown}`: expected HOST:GUEST"));
    }
    let host_path = std::path::Path::new(std::ffi::OsStr::from_bytes(host));
    let canon = std::fs::canonicalize(host_path)
        .map_err(|e| format!("bind `{shown}`: cannot resolve {}: {}", host_path.display(), e.kind()))?;
    Ok((canon.into_os_string().into_vec(), guest.to_vec()))
}

fn memchr_colon(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b':')
}

fn run(m: &clap::ArgMatches) -> ExitCode {
    let root = match store::choose(m.get_one::<OsString>("store")).and_then(|r| store::prepare(&r)) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut binds = match m.get_many::<OsString>("bind").map(|v| v.map(|b| parse_bind(b)).collect()) {
        Some(Ok(b)) => b,
        Some(Err(e)) => return fail(e),
        None => Vec::new(),
    };
    binds.insert(0, (root.join("nix").into_os_string().into_vec(), b"/nix".to_vec()));
    let mapping = match Mapping::new(binds) {
        Ok(m) => m,
        Err(e) => return fail(format!("bad bind: {e}")),
    };
    let mut command: Vec<OsString> = m.get_many::<OsString>("command").map(|v| v.cloned().collect()).unwrap_or_default();
    if command.is_empty() {
        command.push(std::env::var_os("SHELL").filter(|s| !s.is_empty()).unwrap_or_else(|| "/bin/sh".into()));
    }
    let argv: Result<Vec<CString>, _> = command.iter().map(|a| CString::new(a.as_bytes())).collect();
    let Ok(argv) = argv else { return fail("an argument contains a NUL byte") };

    let seccomp = !(m.get_flag("no-seccomp") || env_flag("PTNIX_NO_SECCOMP"));
    let stats = m.get_flag("stats");
    let pin = !(m.get_flag("no-pin") || env_flag("PTNIX_NO_PIN"));
    let notif = !(m.get_flag("no-notif") || env_flag("PTNIX_NO_NOTIF"));
    let shim = !(m.get_flag("no-shim") || env_flag("PTNIX_NO_SHIM"));
    let verbose = m.get_count("verbose");
    let log_file = match m.get_one::<std::path::PathBuf>("log") {
        Some(p) => match std::fs::OpenOptions::new().create(true).append(true).open(p) {
            Ok(f) => Some(f),
            Err(e) => return fail(format!("cannot open log file {}: {}", p.display(), e.kind())),
        },
        None => None,
    };
    let verbose = if log_file.is_some() { verbose.max(1) } else { verbose };
    let launcher = ptnix_tracer::Launcher::default();
    match ptnix_tracer::run(Options { mapping, seccomp, pin, notif, shim, stats, verbose, log_file, launcher }, &argv) {
        Ok(Outcome::Exited(c) | Outcome::NotStarted(c)) => ExitCode::from(c as u8),
        Ok(Outcome::Signaled(s)) => ExitCode::from(128u8.wrapping_add(s as u8)),
        Err(e) => fail(e),
    }
}
