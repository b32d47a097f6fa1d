//! One test's world: a fresh directory owned by the test user holding the store
//! (`STORE`, which ptnix fills with `STORE/nix/...`), a HOME and a work directory.

use crate::env::env;
use crate::run::{Invocation, Output};
use crate::Mode;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The python interpreter tests use: the system one, readable by the test user.
pub const PYTHON: &str = "/usr/bin/python3";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct Fixture {
    pub mode: Mode,
    /// The fixture's own directory; everything below is removed on drop.
    pub dir: PathBuf,
    /// The `--store` directory: guest `/nix` is `STORE/nix`.
    pub store: PathBuf,
    pub home: PathBuf,
    /// The cwd commands start in.
    pub work: PathBuf,
    /// `ptnix run` flags added to every command ([`Fixture::cmd`]) besides the mode's.
    pub flags: Vec<&'static str>,
    /// Environment entries ptnix gets for every command ([`Fixture::cmd`]).
    pub envs: Vec<(&'static str, &'static str)>,
}

impl Fixture {
    pub fn new(mode: Mode) -> Fixture {
        let e = env();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // Name it after the test thread (`module::seccomp`) to make leftovers readable.
        let tname: String = std::thread::current()
            .name()
            .unwrap_or("t")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let tname: String = tname
            .chars()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let dir = e.root.join(format!("t{n}-{tname}"));
        let fx = Fixture {
            mode,
            store: dir.join("store"),
            home: dir.join("home"),
            work: dir.join("work"),
            dir,
            flags: Vec::new(),
            envs: Vec::new(),
        };
        for d in [&fx.dir, &fx.store, &fx.home, &fx.work] {
            fs::create_dir(d).unwrap_or_else(|err| panic!("creating {}: {err}", d.display()));
            fx.own(d);
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fx
    }

    /// Host path of guest path `guest`, which must be `/nix` or below it.
    pub fn host(&self, guest: impl AsRef<[u8]>) -> PathBuf {
        let g = guest.as_ref();
        assert!(
            g == b"/nix" || g.starts_with(b"/nix/"),
            "not a /nix path: {}",
            String::from_utf8_lossy(g)
        );
        let mut p = self.store.as_os_str().as_bytes().to_vec();
        p.extend_from_slice(g);
        PathBuf::from(OsStr::from_bytes(&p))
    }

    // ---- running ----

    /// Whether this host sends opens (and readlink) to ptnix's notification supervisor:
    /// Linux 5.14 with notifications usable, as `ptnix doctor` says. Under CI=true a
    /// host without them fails; elsewhere the test says what it `skips`.
    pub fn opens_notified(&self, skips: &str) -> bool {
        let doctor = self.ptnix(&["doctor"]).run();
        let usable = doctor.stdout().lines().any(|l| l.starts_with("ok") && l.contains("the stat family and opens are answered"));
        if !usable {
            assert!(!crate::under_ci(), "CI needs Linux 5.14 with notifications usable\n{doctor}");
            eprintln!("SKIP: {skips}: opens are not notified on this host\n{doctor}");
        }
        usable
    }

    /// `ptnix ARGS...` exactly as given (for CLI tests): no `--store`, no mode flag.
    pub fn ptnix<S: AsRef<OsStr>>(&self, args: &[S]) -> Invocation {
        Invocation::new(&env().ptnix, args, &self.home, &self.work)
    }

    /// `ptnix ARGS` in proot mode (ARGS start with `proot`): the pure-ptrace mode is
    /// asked for as launchers ask, with PROOT_NO_SECCOMP=1 (nix-portable always sets
    /// it); the seccomp mode runs without it.
    pub fn proot(&self, args: Vec<std::ffi::OsString>) -> Invocation {
        let inv = self.ptnix(&args);
        match self.mode {
            Mode::Ptrace => inv.env("PROOT_NO_SECCOMP", "1"),
            Mode::SeccompStops => inv.env_remove("PROOT_NO_SECCOMP").env("PTNIX_NO_NOTIF", "1"),
            Mode::Seccomp => inv.env_remove("PROOT_NO_SECCOMP"),
        }
    }

    /// `ptnix run --store STORE [--no-seccomp] -- ARGV...`, not yet started.
    pub fn cmd<S: AsRef<OsStr>>(&self, argv: &[S]) -> Invocation {
        let mut args: Vec<&OsStr> =
            vec!["run".as_ref(), "--store".as_ref(), self.store.as_os_str()];
        args.extend(self.mode.flags().iter().chain(&self.flags).map(|f| OsStr::new(*f)));
        args.push("--".as_ref());
        args.extend(argv.iter().map(|a| a.as_ref()));
        self.envs.iter().fold(self.ptnix(&args), |inv, (k, v)| inv.env(k, v))
    }

    /// Runs ARGV under ptnix.
    pub fn run<S: AsRef<OsStr>>(&self, argv: &[S]) -> Output {
        self.cmd(argv).run()
    }

    /// Runs `/bin/sh -c SCRIPT` under ptnix.
    pub fn sh(&self, script: &str) -> Output {
        self.run(&["/bin/sh", "-c", script])
    }

    /// Runs `python3 -c CODE ARGS...` under ptnix.
    pub fn py<S: AsRef<OsStr>>(&self, code: &str, args: &[S]) -> Output {
        let mut argv: Vec<&OsStr> = vec![PYTHON.as_ref(), "-c".as_ref(), code.as_ref()];
        argv.extend(args.iter().map(|a| a.as_ref()));
        self.run(&argv)
    }

    /// ARGV without ptnix, as the same user in the same environment: the kernel's own
    /// behaviour, to compare ptnix against.
    pub fn plain<S: AsRef<OsStr>>(&self, argv: &[S]) -> Invocation {
        let (prog, rest) = argv.split_first().expect("empty argv");
        Invocation::new(Path::new(prog), rest, &self.home, &self.work)
    }

    // ---- host-side setup (done as the test process, then handed to the test user) ----

    /// Gives `p` to the test user (when running as root), without following symlinks.
    pub fn own(&self, p: &Path) {
        if let Some(u) = env().user {
            std::os::unix::fs::lchown(p, Some(u.uid), Some(u.gid))
                .unwrap_or_else(|e| panic!("lchown {}: {e}", p.display()));
        }
    }

    /// `mkdir -p`, every created directory owned by the test user. Must be inside the
    /// fixture.
    pub fn mkdirs(&self, p: &Path) {
        assert!(
            p.starts_with(&self.dir),
            "{} is outside the fixture",
            p.display()
        );
        let mut missing = Vec::new();
        let mut cur = p;
        while !cur.exists() {
            missing.push(cur.to_path_buf());
            cur = cur.parent().expect("parent");
        }
        for d in missing.iter().rev() {
            fs::create_dir(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
            self.own(d);
        }
    }

    /// Writes a file (creating its parents), owned by the test user, mode 0644.
    pub fn write(&self, p: impl AsRef<Path>, data: impl AsRef<[u8]>) {
        let p = p.as_ref();
        self.mkdirs(p.parent().unwrap());
        fs::write(p, data).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        fs::set_permissions(p, fs::Permissions::from_mode(0o644)).unwrap();
        self.own(p);
    }

    /// Writes an executable file (mode 0755).
    pub fn write_exec(&self, p: impl AsRef<Path>, data: impl AsRef<[u8]>) {
        let p = p.as_ref();
        self.write(p, data);
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Copies a file (following symlinks) to `dst`, executable.
    pub fn copy_exec(&self, src: impl AsRef<Path>, dst: impl AsRef<Path>) {
        let (src, dst) = (src.as_ref(), dst.as_ref());
        let data = fs::read(src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
        self.write_exec(dst, data);
    }

    /// Creates symlink `p` -> `target` (target stored verbatim), owned by the test user.
    pub fn symlink(&self, target: impl AsRef<OsStr>, p: impl AsRef<Path>) {
        let p = p.as_ref();
        self.mkdirs(p.parent().unwrap());
        std::os::unix::fs::symlink(target.as_ref(), p)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", p.display()));
        self.own(p);
    }

    pub fn read(&self, p: impl AsRef<Path>) -> Vec<u8> {
        let p = p.as_ref();
        fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
    }

    pub fn read_string(&self, p: impl AsRef<Path>) -> String {
        String::from_utf8(self.read(p)).expect("utf-8")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if std::env::var_os("PTNIX_TEST_KEEP").is_none() {
            remove_tree(&self.dir);
        }
    }
}

/// `rm -rf`, also through directories the test user (or Nix) made read-only.
pub fn remove_tree(p: &Path) {
    if fs::remove_dir_all(p).is_ok() || !p.exists() {
        return;
    }
    fn unlock(p: &Path) {
        if let Ok(m) = fs::symlink_metadata(p) {
            if m.is_dir() {
                let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o700));
                if let Ok(rd) = fs::read_dir(p) {
                    for e in rd.flatten() {
                        unlock(&e.path());
                    }
                }
            }
        }
    }
    unlock(p);
    let _ = fs::remove_dir_all(p);
}
