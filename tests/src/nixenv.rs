//! A fresh Nix store for the end-to-end tests of real Nix (Debian's nix-bin, 2.8)
//! under ptnix: initialised by the test itself, offline, with the static busybox added
//! as the builder of every derivation.
//!
//! ```text
//! let Some(ns) = NixStore::new(m) else { return };   // nix-store --init, busybox added
//! ns.write("a.nix", &ns.drv("a", "mkdir $out; echo hi > $out/f"));
//! let out = ns.nix(&["nix-build", "--no-out-link", "a.nix"]).ok();
//! ```
//!
//! Every `ptnix run` is its own ptnix instance: two commands of one [`NixStore`] that
//! run at the same time (see [`NixStore::cmd`] and `Invocation::spawn`) are two
//! instances on one store, as two shells of a user would be.

use crate::fixture::Fixture;
use crate::run::{Invocation, Output};
use crate::Mode;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Nix configuration for an offline store without namespaces: no binary cache, no
/// sandbox (see [`DEFAULT_CONFIG`] for Nix's own default), `nix` subcommands enabled.
pub const OFFLINE: &str = "substituters =\nsandbox = false\nexperimental-features = nix-command";

/// Offline, but otherwise Nix's built-in defaults: `sandbox` is not set (to be used
/// with `NIX_CONF_DIR` naming an empty directory, since Debian's /etc/nix/nix.conf sets
/// `sandbox = false`).
pub const DEFAULT_CONFIG: &str = "substituters =\nexperimental-features = nix-command";

/// Deadline of one Nix command (the tests' commands take a second or two).
pub const NIX_TIMEOUT: Duration = Duration::from_secs(60);

/// The system of every test derivation.
pub const SYSTEM: &str = "x86_64-linux";

/// The static busybox used as builder.
pub const BUSYBOX: &str = "/bin/busybox";

/// Checks what these tests need: Nix (nix-store, nix), /bin/sh, python3 and the
/// static busybox. A missing one skips the test loudly, or fails it under CI.
pub fn prerequisites() -> bool {
    use crate::Need::*;
    if !crate::prerequisites(&[Nix, Sh, Python3]) {
        return false;
    }
    let mut missing: Vec<String> = Vec::new();
    if !Path::new(BUSYBOX).is_file() {
        missing.push(format!("{BUSYBOX} (Debian package busybox-static)"));
    }
    for t in ["nix-build", "nix-env", "nix-daemon"] {
        if crate::prereq::find_in_path(t).is_none() {
            missing.push(format!("{t} (in PATH; Debian package nix-bin)"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let msg = format!("missing prerequisite(s) for {test}: {}", missing.join("; "));
    if crate::under_ci() {
        panic!("{msg} (CI=true: refusing to skip)");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {msg} ***\n");
    false
}

/// Quotes `s` as a Nix string literal (`"..."`, with `\`, `"` and `${` escaped).
pub fn nix_str(s: &str) -> String {
    format!("\"{}\"", nix_escape(s))
}

/// `s` escaped for the inside of a Nix string literal: `\`, `"` and `${` are taken
/// literally (for [`NixStore::drv`] scripts written as plain shell).
pub fn nix_escape(s: &str) -> String {
    let mut o = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '$' if chars.peek() == Some(&'{') => o.push_str("\\$"),
            c => o.push(c),
        }
    }
    o
}

/// The hash part of a store path (`/nix/store/HASH-name` -> `HASH`).
pub fn hash_part(path: &str) -> &str {
    let base = path
        .strip_prefix("/nix/store/")
        .unwrap_or_else(|| panic!("not a store path: {path}"));
    &base[..base
        .find('-')
        .unwrap_or_else(|| panic!("not a store path: {path}"))]
}

/// The one store path printed on stdout (`nix-build`, `nix-store --add`...).
#[track_caller]
pub fn one_path(out: &Output) -> String {
    let s = out.stdout();
    let p = s.trim_end();
    assert!(
        p.starts_with("/nix/store/") && !p.contains('\n') && s.ends_with('\n'),
        "expected one store path on stdout\n{out}"
    );
    p.to_string()
}

/// A test's store: a fresh [`Fixture`] whose store was initialised with
/// `nix-store --init` under ptnix, and `busybox`: the store path of a directory
/// holding the static busybox and `sh -> busybox`, added with `nix-store --add`.
pub struct NixStore {
    pub fx: Fixture,
    /// `/nix/store/...-busybox`: `BB/sh` is the builder of [`NixStore::drv`].
    pub busybox: String,
}

impl NixStore {
    /// A fresh store with busybox added; `None` (after a loud SKIPPED line) if a
    /// prerequisite is missing.
    pub fn new(m: Mode) -> Option<NixStore> {
        if !prerequisites() {
            return None;
        }
        Some(NixStore::with_fixture(Fixture::new(m)))
    }

    /// A fresh store in a directory so deep that the host paths of Nix's unix sockets
    /// (`/nix/var/nix/daemon-socket/socket`, `/nix/var/nix/gc-socket/socket`) are longer
    /// than `sun_path` (108 bytes), while their guest paths are short.
    pub fn new_deep(m: Mode) -> Option<NixStore> {
        if !prerequisites() {
            return None;
        }
        let mut fx = Fixture::new(m);
        let deep = fx.dir.join(
            "a-directory-with-a-long-name-as-on-hpc-clusters/another-long-directory-name/store",
        );
        fx.mkdirs(&deep);
        fx.store = deep;
        let sock = fx.host("/nix/var/nix/gc-socket/socket");
        assert!(
            sock.as_os_str().len() > 108,
            "{} is not longer than sun_path",
            sock.display()
        );
        Some(NixStore::with_fixture(fx))
    }

    /// The same in a given fixture (whose store directory may be anything `--store`
    /// accepts).
    pub fn with_fixture(fx: Fixture) -> NixStore {
        let mut ns = NixStore {
            fx,
            busybox: String::new(),
        };
        ns.nix(&["nix-store", "--init"]).ok();
        ns.busybox = ns.add_busybox("busybox");
        ns
    }

    /// `nix-store --add` of a new directory NAME holding busybox and `sh -> busybox`.
    pub fn add_busybox(&self, name: &str) -> String {
        let dir = self.fx.dir.join("stage").join(name);
        self.fx.copy_exec(BUSYBOX, dir.join("busybox"));
        self.fx.symlink("busybox", dir.join("sh"));
        self.add(&dir)
    }

    /// `nix-store --add HOST-PATH` (a file or directory outside /nix): its store path.
    #[track_caller]
    pub fn add(&self, host: &Path) -> String {
        let out = self
            .nix(&[OsStr::new("nix-store"), "--add".as_ref(), host.as_os_str()])
            .ok();
        one_path(&out)
    }

    /// `ptnix run -- ARGV` on this store with [`OFFLINE`] as NIX_CONFIG, not started.
    pub fn cmd<S: AsRef<OsStr>>(&self, argv: &[S]) -> Invocation {
        self.fx
            .cmd(argv)
            .env("NIX_CONFIG", OFFLINE)
            .timeout(NIX_TIMEOUT)
    }

    /// Runs ARGV under ptnix on this store, offline.
    pub fn nix<S: AsRef<OsStr>>(&self, argv: &[S]) -> Output {
        self.cmd(argv).run()
    }

    /// A derivation whose builder is `BB/sh -c SCRIPT`. SCRIPT is the *body* of a Nix
    /// string literal, inserted verbatim: `${...}` in it is a Nix interpolation (use
    /// `$out`, `$x` for shell variables), and `"` must be written `\"`.
    pub fn drv(&self, name: &str, script: &str) -> String {
        format!(
            "derivation {{\n  name = \"{name}\";\n  system = \"{SYSTEM}\";\n  builder = \"${{builtins.storePath \"{bb}\"}}/sh\";\n  args = [ \"-c\" \"{script}\" ];\n}}\n",
            bb = self.busybox
        )
    }

    /// Writes `work/NAME` (a .nix file, ...), owned by the test user; returns NAME.
    pub fn write<'a>(&self, name: &'a str, text: &str) -> &'a str {
        self.fx.write(self.fx.work.join(name), text);
        name
    }

    /// Host path of store path (or any /nix path) `p`.
    pub fn host(&self, p: &str) -> PathBuf {
        self.fx.host(p)
    }

    /// `nix-store --check-validity P`: true if Nix has P registered as valid.
    pub fn valid(&self, p: &str) -> bool {
        let out = self.nix(&["nix-store", "--check-validity", p]);
        match out.code() {
            0 => true,
            1 => {
                assert!(
                    out.stderr().contains("is not valid"),
                    "unexpected failure\n{out}"
                );
                false
            }
            _ => panic!("nix-store --check-validity failed\n{out}"),
        }
    }

    /// `nix-store --verify --check-contents` must pass and report nothing.
    #[track_caller]
    pub fn verify(&self) {
        let out = self
            .nix(&["nix-store", "--verify", "--check-contents"])
            .ok();
        for bad in ["error", "warning", "modified", "disappeared", "invalid"] {
            assert!(
                !out.stderr().contains(bad),
                "nix-store --verify reported {bad:?}\n{out}"
            );
        }
    }

    /// The names in the host's STORE/nix/store (without `.links` and lock files).
    pub fn store_names(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.host("/nix/store"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".links" && !n.ends_with(".lock"))
            .collect();
        v.sort();
        v
    }
}

/// Waits (polling) until `cond` holds, up to `timeout`; panics with `what` otherwise.
#[track_caller]
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True if `p` (host path) is a unix socket.
pub fn is_socket(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

/// Every process below `pid` (children, grandchildren...), from the host's /proc.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: comm may hold spaces and parentheses.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
                parent_of.push((p, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(q) = frontier.pop() {
        for &(p, pp) in &parent_of {
            if pp == q && !out.contains(&p) {
                out.push(p);
                frontier.push(p);
            }
        }
    }
    out
}

/// True if process `pid` exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| {
                stat[i + 1..]
                    .split_whitespace()
                    .next()
                    .map(|s| s != "Z" && s != "X")
            })
            .unwrap_or(false),
        Err(_) => false,
    }
}
