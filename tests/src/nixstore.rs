//! A nixpkgs-like store, built offline with the real Nix under ptnix, for the tests of
//! store programs (ELF loaders and `#!` interpreters inside /nix).
//!
//! Built once per [`Mode`] and per test process, as the test user, in a shared store
//! directory, exactly as a user would fill a store by hand:
//!
//! - `glibc`: the host's `ld-linux-x86-64.so.2` and the libraries the tools need
//!   (found with `ldd`), added with `nix-store --add`;
//! - `tools`: copies of bash, ls, cat, env, readlink, echo, true and python3.11 whose
//!   PT_INTERP and RUNPATH were set with `patchelf` (on the host) to the glibc store
//!   path, so that without ptnix the kernel cannot even find their loader;
//! - `test-progs`: the C programs `showself` and `launch` (tests/c), patched the same way;
//! - `busybox`: the static busybox (no PT_INTERP at all), with a `sh` link;
//! - `misc`: a non-executable script, to be used as a `#!` interpreter;
//! - `scripts`: every `#!` form (see [`Store::script`]);
//! - `nest1`..`nest6`: scripts whose interpreter is the previous one (nest1's is bash);
//! - the user's default profile, made with `nix-env -i` of tools, scripts, test-progs
//!   and busybox: a symlink farm, with `~/.nix-profile` pointing at it.
//!
//! Every test then gets its own copy ([`setup`]): a fresh [`Fixture`] whose store is a
//! clone of the shared one (store files hard-linked, the database and profiles
//! copied), and whose HOME has its own `~/.nix-profile`. Nothing a test does is seen by
//! another.
//!
//! The same tools also exist unpatched outside any store, in the "native mirror"
//! ([`Store::native`]), to compare a store program's behaviour under ptnix with what
//! the same program does natively for the same invocation ([`Store::parity`]).

use crate::env::{env, TEST_USER};
use crate::fixture::Fixture;
use crate::run::{Invocation, Output};
use crate::Mode;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Nix configuration for an offline store without namespaces.
pub const NIX_CONFIG: &str = "substituters =\nsandbox = false";

/// The dynamic loader's file name, at the top of the glibc store path.
pub const LOADER: &str = "ld-linux-x86-64.so.2";

/// The tools copied into the `tools` store path: (name in bin/, host file).
pub const TOOLS: &[(&str, &str)] = &[
    ("bash", "/bin/bash"),
    ("ls", "/bin/ls"),
    ("cat", "/bin/cat"),
    ("env", "/usr/bin/env"),
    ("readlink", "/usr/bin/readlink"),
    ("echo", "/bin/echo"),
    ("true", "/bin/true"),
    ("python3.11", "/usr/bin/python3.11"),
];

/// `ls` of the tools' bin/ directory.
pub const TOOLS_BIN_LISTING: &str =
    "bash\ncat\necho\nenv\nls\npython3\npython3.11\nreadlink\ntrue\n";

/// The C programs (tests/c) copied into the `test-progs` store path.
pub const PROGS: &[&str] = &["showself", "launch"];

/// A `#!` interpreter that exists neither in any store nor on the host.
pub const MISSING_INTERP: &str = "/nix/store/00000000000000000000000000000000-missing/bin/bash";

/// How deep the `nest` chain goes: one more than the kernel allows.
pub const NEST_LEVELS: usize = 6;

/// Body of the bash scripts: prints its name as the script sees it (`$0`), which
/// program runs it, then each argument in brackets.
pub fn bash_body(tag: &str) -> String {
    format!("printf '%s' \"{tag} $0 exe=$(readlink /proc/$$/exe)\"; printf ' [%s]' \"$@\"; echo\n")
}

/// Body of the python scripts.
pub const PY_BODY: &str = "import os, sys\nprint('py', sys.argv, os.readlink('/proc/self/exe'))\n";

/// The shared store of one mode, and the guest paths in it.
pub struct Store {
    /// Owns the shared store directory (`builder.store`), the staging area and the
    /// native mirror; never dropped (it lives in a static).
    builder: Fixture,
    pub glibc: String,
    pub tools: String,
    pub progs: String,
    pub busybox: String,
    pub misc: String,
    pub scripts: String,
    /// `nest[i]` is the store path of level i+1; the script is `bin/nest`.
    pub nest: Vec<String>,
    /// The profile `~/.nix-profile` points to (`/nix/var/nix/profiles/per-user/USER/profile`).
    pub profile: String,
    /// The native mirror: `native/{tools,progs,busybox}` hold the same files unpatched
    /// (host loader), `native/profile/bin` links to them as the Nix profile does.
    pub native: PathBuf,
}

impl Store {
    /// `TOOLS/bin/NAME`.
    pub fn tool(&self, name: &str) -> String {
        format!("{}/bin/{name}", self.tools)
    }

    /// `TEST-PROGS/bin/NAME`.
    pub fn prog(&self, name: &str) -> String {
        format!("{}/bin/{name}", self.progs)
    }

    /// `SCRIPTS/bin/NAME`. The scripts (bash ones print
    /// `TAG $0 exe=<readlink /proc/$$/exe> [arg]...`):
    ///
    /// | name | `#!` line |
    /// |---|---|
    /// | `plain` | `TOOLS/bin/bash` |
    /// | `witharg` | `TOOLS/bin/bash -e` (prints `errexit` if -e is on, then fails) |
    /// | `envbash` | `TOOLS/bin/env bash` |
    /// | `envsplit` | `TOOLS/bin/env -S bash -e` |
    /// | `pyscript` | `TOOLS/bin/python3` (a symlink to python3.11) |
    /// | `usrbinenv` | `/usr/bin/env python3` |
    /// | `viaprofile` | `PROFILE/bin/bash` (the interpreter through the profile's links) |
    /// | `viaprofile-script` | `PROFILE/bin/plain` (a script as interpreter, through the profile) |
    /// | `spaced` | `TEST-PROGS/bin/showself  one  two  ` (one argument `one  two`) |
    /// | `longarg` | `TEST-PROGS/bin/showself ` + 300 `A`s (cut at the kernel's 256-byte buffer) |
    /// | `longinterp` | `/nix/store/` + 300 `x`s (ENOEXEC; bash then runs it itself) |
    /// | `missing` | [`MISSING_INTERP`] (ENOENT) |
    /// | `interp-noexec` | `MISC/bin/not-executable` (EACCES) |
    /// | `interp-dir` | `TOOLS/bin` (EACCES) |
    pub fn script(&self, name: &str) -> String {
        format!("{}/bin/{name}", self.scripts)
    }

    /// `NESTk/bin/nest` (k from 1).
    pub fn nest(&self, level: usize) -> String {
        format!("{}/bin/nest", self.nest[level - 1])
    }

    /// `~/.nix-profile` of fixture `fx`, as a host (and guest) path.
    pub fn home_profile(&self, fx: &Fixture) -> String {
        format!("{}/.nix-profile", fx.home.display())
    }

    /// The native mirror's directory `name` (tools, progs, busybox, profile).
    pub fn native_dir(&self, name: &str) -> String {
        self.native.join(name).display().to_string()
    }

    /// The variables [`Store::parity`] snippets use, in the guest: T (tools),
    /// P (test-progs), B (busybox), PROFILE (`~/.nix-profile`).
    pub fn guest_vars(&self, fx: &Fixture) -> Vec<(&'static str, String)> {
        vec![
            ("T", self.tools.clone()),
            ("P", self.progs.clone()),
            ("B", self.busybox.clone()),
            ("PROFILE", self.home_profile(fx)),
        ]
    }

    /// The same variables for the native run: the mirror's unpatched copies.
    pub fn native_vars(&self) -> Vec<(&'static str, String)> {
        ["T", "P", "B", "PROFILE"]
            .iter()
            .zip(["tools", "progs", "busybox", "profile"])
            .map(|(k, d)| (*k, self.native_dir(d)))
            .collect()
    }

    /// `ptnix run -- ARGV` in `fx` with T, P, B, PROFILE (see [`Store::guest_vars`]) and
    /// S (scripts) in the environment.
    pub fn cmd<S: AsRef<std::ffi::OsStr>>(&self, fx: &Fixture, argv: &[S]) -> Invocation {
        let mut inv = fx.cmd(argv).env("S", &self.scripts);
        for (k, v) in self.guest_vars(fx) {
            inv = inv.env(k, v);
        }
        inv.timeout(Duration::from_secs(60))
    }

    /// [`Store::parity_with`] without extra variables.
    #[track_caller]
    pub fn parity(&self, fx: &Fixture, snippet: &str) -> Output {
        self.parity_with(fx, snippet, &[])
    }

    /// Runs `bash -c SNIPPET` twice: natively (the mirror's bash, T/P/B/PROFILE naming
    /// the mirror) and under ptnix (the store's bash, T/P/B/PROFILE naming the store
    /// paths and `~/.nix-profile`). `extra` adds variables: (name, native value, guest
    /// value). Asserts the same exit status, stdout and stderr once the native values
    /// in the native output are replaced by the guest ones. Returns the ptnix run.
    /// `$0` of the outer shell is `bash` in both.
    #[track_caller]
    pub fn parity_with(&self, fx: &Fixture, snippet: &str, extra: &[(&str, &str, &str)]) -> Output {
        let mut vars: Vec<(String, String, String)> = extra
            .iter()
            .map(|(k, n, g)| (k.to_string(), n.to_string(), g.to_string()))
            .collect();
        for ((k, n), (_, g)) in self.native_vars().into_iter().zip(self.guest_vars(fx)) {
            vars.push((k.to_string(), n, g));
        }
        let nat_bash = format!("{}/bin/bash", self.native_dir("tools"));
        let mut native = fx.plain(&[nat_bash.as_str(), "-c", snippet, "bash"]);
        let guest_bash = self.tool("bash");
        let mut guest = fx.cmd(&[guest_bash.as_str(), "-c", snippet, "bash"]);
        for (k, n, g) in &vars {
            native = native.env(k, n);
            guest = guest.env(k, g);
        }
        let native = native.timeout(Duration::from_secs(60)).run();
        let guest = guest.timeout(Duration::from_secs(60)).run();
        let subst = |s: String| -> String {
            let mut s = s;
            for (_, n, g) in &vars {
                s = s.replace(n.as_str(), g);
            }
            s
        };
        let ctx = format!("=== native ===\n{native}\n=== under ptnix ===\n{guest}");
        assert_eq!(
            guest.status.code(),
            native.status.code(),
            "exit status differs from the native run\n{ctx}"
        );
        assert_eq!(
            guest.stdout(),
            subst(native.stdout()),
            "stdout differs from the native run (native paths replaced by guest ones)\n{ctx}"
        );
        assert_eq!(
            guest.stderr(),
            subst(native.stderr()),
            "stderr differs from the native run (native paths replaced by guest ones)\n{ctx}"
        );
        guest
    }

    /// `nix-store`, `nix-env`... under ptnix in fixture `fx`, offline.
    pub fn nix<S: AsRef<std::ffi::OsStr>>(fx: &Fixture, argv: &[S]) -> Output {
        fx.cmd(argv)
            .env("NIX_CONFIG", NIX_CONFIG)
            .timeout(Duration::from_secs(120))
            .run()
    }
}

/// Checks what these tests need besides the basics: a missing tool skips the test
/// loudly, or fails it under CI (`CI=true`).
pub fn prerequisites() -> bool {
    use crate::Need::*;
    if !crate::prerequisites(&[Nix, Cc, Python3, Sh, Coreutils]) {
        return false;
    }
    let mut missing: Vec<&str> = Vec::new();
    if crate::prereq::find_in_path("patchelf").is_none() {
        missing.push("patchelf (in PATH; Debian package patchelf)");
    }
    if crate::prereq::find_in_path("ldd").is_none() {
        missing.push("ldd (in PATH; Debian package libc-bin)");
    }
    for f in ["/bin/busybox", "/lib64/ld-linux-x86-64.so.2"]
        .into_iter()
        .chain(TOOLS.iter().map(|t| t.1))
    {
        if !Path::new(f).exists() {
            missing.push(f);
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

type Slot = Mutex<Option<Result<&'static Store, String>>>;
static STORES: [Slot; 3] = [Mutex::new(None), Mutex::new(None), Mutex::new(None)];

/// The shared store of mode `m`, built on first use. A failed build fails every test
/// that needs it, with the build's error, without building again.
pub fn store(m: Mode) -> &'static Store {
    let slot = &STORES[match m {
        Mode::Seccomp => 0,
        Mode::SeccompStops => 1,
        Mode::Ptrace => 2,
    }];
    let mut g = slot.lock().unwrap_or_else(|p| p.into_inner());
    if g.is_none() {
        // In a thread of its own: the builder fixture is named after the thread.
        let r = std::thread::Builder::new()
            .name(format!("shared-store-{m:?}"))
            .spawn(move || build(m))
            .expect("spawning the store builder")
            .join()
            .map_err(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into())
            });
        *g = Some(r.map(|s| &*Box::leak(Box::new(s))));
    }
    match g.as_ref().unwrap() {
        Ok(s) => s,
        Err(e) => panic!("building the shared {m:?} test store failed:\n{e}"),
    }
}

/// A fresh fixture holding its own copy of mode `m`'s store, with `~/.nix-profile`
/// pointing at the profile; `None` (after a loud SKIPPED line) if a prerequisite is
/// missing.
pub fn setup(m: Mode) -> Option<(Fixture, &'static Store)> {
    if !prerequisites() {
        return None;
    }
    let st = store(m);
    let fx = Fixture::new(m);
    clone_tree(&fx, &st.builder.store.join("nix"), &fx.store.join("nix"));
    fx.symlink(&st.profile, fx.home.join(".nix-profile"));
    Some((fx, st))
}

/// Copies directory `src` to `dst` for fixture `fx`: directories recreated (owned by
/// the test user, same permissions), symlinks recreated verbatim, regular files
/// hard-linked below `nix/store` (immutable there) and copied elsewhere (the
/// database, which Nix writes). Sockets and temporary roots are not copied.
fn clone_tree(fx: &Fixture, src: &Path, dst: &Path) {
    let meta = fs::symlink_metadata(src).unwrap_or_else(|e| panic!("lstat {}: {e}", src.display()));
    fs::create_dir(dst).unwrap_or_else(|e| panic!("mkdir {}: {e}", dst.display()));
    fx.own(dst);
    fs::set_permissions(dst, fs::Permissions::from_mode(0o755)).unwrap();
    let in_store = dst.starts_with(fx.store.join("nix/store"));
    for e in fs::read_dir(src).unwrap_or_else(|e| panic!("readdir {}: {e}", src.display())) {
        let e = e.unwrap();
        let (s, d) = (e.path(), dst.join(e.file_name()));
        let m = fs::symlink_metadata(&s).unwrap();
        let ft = m.file_type();
        if ft.is_dir() {
            if s.ends_with("nix/var/nix/temproots") {
                fs::create_dir(&d).unwrap();
                fx.own(&d);
                continue;
            }
            clone_tree(fx, &s, &d);
        } else if ft.is_symlink() {
            let t = fs::read_link(&s).unwrap();
            std::os::unix::fs::symlink(&t, &d)
                .unwrap_or_else(|e| panic!("symlink {}: {e}", d.display()));
            fx.own(&d);
        } else if ft.is_file() {
            if !(in_store && fs::hard_link(&s, &d).is_ok()) {
                fs::copy(&s, &d).unwrap_or_else(|e| panic!("copy {}: {e}", s.display()));
                fs::set_permissions(&d, fs::Permissions::from_mode(m.mode() & 0o7777)).unwrap();
                fx.own(&d);
            }
        }
    }
    fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777)).unwrap();
    // Nix canonicalises the mtime of everything in the store to 1: keep it.
    let times = fs::FileTimes::new()
        .set_accessed(meta.accessed().unwrap())
        .set_modified(meta.modified().unwrap());
    fs::File::open(dst)
        .and_then(|d| d.set_times(times))
        .unwrap_or_else(|e| panic!("setting the times of {}: {e}", dst.display()));
}

/// The name Nix uses for the test user's per-user profile directory.
fn user_name() -> String {
    if env().user.is_some() {
        return TEST_USER.to_string();
    }
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// Runs a host command as ourselves; panics with its output on failure.
fn host(prog: &str, args: &[&str]) -> String {
    let p = crate::prereq::find_in_path(prog).unwrap_or_else(|| PathBuf::from(prog));
    let out = Command::new(&p)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {prog}: {e}"));
    assert!(
        out.status.success(),
        "`{prog} {}` failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nix-store --add DIRS...` under ptnix; returns the store paths, checking their names.
fn nix_add(b: &Fixture, dirs: &[&Path]) -> Vec<String> {
    let mut argv: Vec<&std::ffi::OsStr> = vec!["nix-store".as_ref(), "--add".as_ref()];
    argv.extend(dirs.iter().map(|d| d.as_os_str()));
    let out = Store::nix(b, &argv).ok();
    let paths: Vec<String> = out.stdout().lines().map(str::to_string).collect();
    assert_eq!(
        paths.len(),
        dirs.len(),
        "nix-store --add printed the wrong number of paths\n{out}"
    );
    for (p, d) in paths.iter().zip(dirs) {
        let name = d.file_name().unwrap().to_str().unwrap();
        assert!(
            p.starts_with("/nix/store/")
                && p.len() == "/nix/store/".len() + 33 + name.len()
                && p.ends_with(&format!("-{name}")),
            "unexpected store path {p:?} for {}\n{out}",
            d.display()
        );
        assert!(
            b.host(p).exists(),
            "{p} is not in the store directory\n{out}"
        );
    }
    paths
}

/// Sets PT_INTERP and RUNPATH of `file` to the glibc store path, on the host, and
/// checks the result with patchelf and readelf.
pub fn patch(file: &Path, glibc: &str) {
    let f = file.to_str().unwrap();
    let interp = format!("{glibc}/{LOADER}");
    host(
        "patchelf",
        &["--set-interpreter", &interp, "--set-rpath", glibc, f],
    );
    assert_eq!(
        host("patchelf", &["--print-interpreter", f]).trim_end(),
        interp,
        "{f}"
    );
    assert_eq!(
        host("patchelf", &["--print-rpath", f]).trim_end(),
        glibc,
        "{f}"
    );
    if crate::prereq::find_in_path("readelf").is_some() {
        let l = host("readelf", &["-lW", f]);
        let want = format!("[Requesting program interpreter: {interp}]");
        assert!(l.contains(&want), "readelf -l {f} lacks {want}:\n{l}");
    }
}

/// The libraries `ldd` finds for `files`: (soname, host path), without duplicates.
fn needed_libs(files: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut libs: Vec<(String, PathBuf)> = Vec::new();
    for f in files {
        let out = host("ldd", &[f.to_str().unwrap()]);
        for l in out.lines() {
            let Some((name, rest)) = l.trim().split_once(" => ") else {
                continue;
            };
            let Some(path) = rest
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/'))
            else {
                continue;
            };
            if !libs.iter().any(|(n, _)| n == name) {
                libs.push((name.to_string(), PathBuf::from(path)));
            }
        }
    }
    libs
}

fn build(m: Mode) -> Store {
    let b = Fixture::new(m);
    let stage = b.dir.join("stage");
    let native = b.dir.join("native");
    let progs: Vec<PathBuf> = PROGS.iter().map(|p| crate::c_prog(p)).collect();

    // glibc: the loader and every library the tools need.
    let glibc_dir = stage.join("glibc");
    b.copy_exec("/lib64/ld-linux-x86-64.so.2", glibc_dir.join(LOADER));
    let mut elves: Vec<PathBuf> = TOOLS.iter().map(|t| PathBuf::from(t.1)).collect();
    elves.extend(progs.iter().cloned());
    for (name, path) in needed_libs(&elves) {
        b.copy_exec(&path, glibc_dir.join(&name));
    }
    let glibc = nix_add(&b, &[&glibc_dir]).remove(0);

    // tools, test-progs, busybox, misc: patched copies (and their unpatched mirror).
    let (tools_dir, progs_dir, bb_dir, misc_dir) = (
        stage.join("tools"),
        stage.join("test-progs"),
        stage.join("busybox"),
        stage.join("misc"),
    );
    for root in [&tools_dir, &native.join("tools")] {
        for (name, src) in TOOLS {
            b.copy_exec(src, root.join("bin").join(name));
        }
        b.symlink("python3.11", root.join("bin/python3"));
        // Where python3.11 finds its standard library (as nixpkgs' python has it in
        // its own lib/).
        b.symlink("/usr/lib/python3.11", root.join("lib/python3.11"));
    }
    for root in [&progs_dir, &native.join("progs")] {
        for (name, bin) in PROGS.iter().zip(&progs) {
            b.copy_exec(bin, root.join("bin").join(name));
        }
    }
    for root in [&bb_dir, &native.join("busybox")] {
        b.copy_exec("/bin/busybox", root.join("bin/busybox"));
        b.symlink("busybox", root.join("bin/sh"));
    }
    for (name, _) in TOOLS {
        patch(&tools_dir.join("bin").join(name), &glibc);
    }
    for name in PROGS {
        patch(&progs_dir.join("bin").join(name), &glibc);
    }
    b.write(misc_dir.join("bin/not-executable"), "#!/bin/sh\necho ran\n");
    let mut added = nix_add(&b, &[&tools_dir, &progs_dir, &bb_dir, &misc_dir]).into_iter();
    let (tools, progs_path, busybox, misc) = (
        added.next().unwrap(),
        added.next().unwrap(),
        added.next().unwrap(),
        added.next().unwrap(),
    );

    // The native profile: links to the mirror, as Nix's profile links to the store.
    for (pkg, names) in [
        (
            "tools",
            TOOLS
                .iter()
                .map(|t| t.0)
                .chain(["python3"])
                .collect::<Vec<_>>(),
        ),
        ("progs", PROGS.to_vec()),
        ("busybox", vec!["busybox", "sh"]),
    ] {
        for n in names {
            b.symlink(
                native.join(pkg).join("bin").join(n),
                native.join("profile/bin").join(n),
            );
        }
    }
    b.symlink(native.join("tools/lib"), native.join("profile/lib"));

    // scripts: every #! form.
    let profile = format!("/nix/var/nix/profiles/per-user/{}/profile", user_name());
    let scripts_dir = stage.join("scripts");
    let bash = format!("{tools}/bin/bash");
    let showself = format!("{progs_path}/bin/showself");
    let sb: Vec<(&str, String)> = vec![
        ("plain", format!("#!{bash}\n{}", bash_body("plain"))),
        (
            "witharg",
            format!(
                "#!{bash} -e\ncase $- in *e*) e=errexit;; *) e=no-errexit;; esac\n{}false\necho not reached\n",
                bash_body("witharg $e")
            ),
        ),
        ("envbash", format!("#!{tools}/bin/env bash\n{}", bash_body("envbash"))),
        (
            "envsplit",
            format!(
                "#!{tools}/bin/env -S bash -e\ncase $- in *e*) e=errexit;; *) e=no-errexit;; esac\n{}",
                bash_body("envsplit $e")
            ),
        ),
        ("pyscript", format!("#!{tools}/bin/python3\n{PY_BODY}")),
        ("usrbinenv", format!("#!/usr/bin/env python3\n{PY_BODY}")),
        ("viaprofile", format!("#!{profile}/bin/bash\n{}", bash_body("viaprofile"))),
        ("viaprofile-script", format!("#!{profile}/bin/plain\nexit 99\n")),
        ("spaced", format!("#!{showself}  one  two  \n")),
        ("longarg", format!("#!{showself} {}\n", "A".repeat(300))),
        (
            "longinterp",
            format!("#!/nix/store/{}\n{}", "x".repeat(300), bash_body("fallback")),
        ),
        ("missing", format!("#!{MISSING_INTERP}\necho ran\n")),
        ("interp-noexec", format!("#!{misc}/bin/not-executable\necho ran\n")),
        ("interp-dir", format!("#!{tools}/bin\necho ran\n")),
    ];
    for (name, text) in &sb {
        b.write_exec(scripts_dir.join("bin").join(name), text);
    }
    let scripts = nix_add(&b, &[&scripts_dir]).remove(0);

    // nest1..nest6: each script's interpreter is the previous one.
    let mut nest = Vec::new();
    let mut interp = bash.clone();
    for level in 1..=NEST_LEVELS {
        let dir = stage.join(format!("nest{level}"));
        let text = if level == 1 {
            format!("#!{interp}\n{}", bash_body("level1"))
        } else {
            format!("#!{interp}\nexit 99\n")
        };
        b.write_exec(dir.join("bin/nest"), text);
        let p = nix_add(&b, &[&dir]).remove(0);
        interp = format!("{p}/bin/nest");
        nest.push(p);
    }

    // The default profile, as a user makes it; Nix creates ~/.nix-profile itself.
    let out = Store::nix(
        &b,
        &["nix-env", "-i", &tools, &scripts, &progs_path, &busybox],
    )
    .ok();
    let link = fs::read_link(b.home.join(".nix-profile"))
        .unwrap_or_else(|e| panic!("nix-env -i made no ~/.nix-profile ({e})\n{out}"));
    assert_eq!(link, Path::new(&profile), "~/.nix-profile\n{out}");
    // Several packages: bin/ is a directory of links, not a link to one package's bin/.
    let farm =
        format!("[ -d {profile}/bin ] && [ ! -L {profile}/bin ] && [ -L {profile}/bin/bash ]");
    let chk = b.sh(&farm);
    assert_eq!(
        chk.status.code(),
        Some(0),
        "the profile's bin/ is not a symlink farm\n{chk}\n{out}"
    );

    Store {
        glibc,
        tools,
        progs: progs_path,
        busybox,
        misc,
        scripts,
        nest,
        profile,
        native,
        builder: b,
    }
}

/// A store glibc too old for `--argv0` (glibc before 2.33), added to `fx`'s store:
/// a copy of the shared glibc whose loader has the option's name changed, so that it
/// neither understands `--argv0` nor mentions it (which is how ptnix tells). Returns
/// the guest path of a copy of `showself` whose loader it is.
pub fn old_loader_showself(fx: &Fixture, st: &Store) -> String {
    let stage = fx.dir.join("stage-old");
    let glibc_dir = stage.join("glibc-old");
    for e in fs::read_dir(fx.host(&st.glibc)).unwrap() {
        let e = e.unwrap();
        let mut data = fs::read(e.path()).unwrap();
        if e.file_name() == LOADER {
            let mut n = 0;
            while let Some(i) = memchr_find(&data, b"--argv0") {
                data[i + 6] = b'X';
                n += 1;
            }
            assert!(n > 0, "the host loader does not know --argv0 (glibc before 2.33?)");
        }
        fx.write_exec(glibc_dir.join(e.file_name()), data);
    }
    let glibc = nix_add(fx, &[&glibc_dir]).remove(0);
    let bin = stage.join("old-progs/bin/showself");
    fx.copy_exec(crate::c_prog("showself"), &bin);
    patch(&bin, &glibc);
    let progs = nix_add(fx, &[&stage.join("old-progs")]).remove(0);
    format!("{progs}/bin/showself")
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Writes `data` to `path` (creating its parents) from a child process, as the test
/// user, with permissions `mode`. A file this (multithreaded) test process writes
/// itself can fail to execute with ETXTBSY ("Text file busy") right afterwards: another
/// test thread may have forked while the write descriptor was open, and the child
/// holds it until its own exec. Files meant to be executed at once are written here.
pub fn write_from_child(fx: &Fixture, path: &Path, data: impl Into<Vec<u8>>, mode: u32) {
    fx.mkdirs(path.parent().unwrap());
    let script = format!("cat > \"$1\" && chmod {mode:o} \"$1\"");
    fx.plain(&[
        "/bin/sh".as_ref(),
        "-c".as_ref(),
        script.as_ref(),
        "sh".as_ref(),
        path.as_os_str(),
    ])
    .stdin(data)
    .run()
    .ok();
}
