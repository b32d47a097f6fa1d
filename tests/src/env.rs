//! Per-process test environment: the ptnix binary, a world-readable temp root, and the
//! unprivileged user the tracees run as.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The unprivileged account tracees run as when the tests run as root.
pub const TEST_USER: &str = "ptnix-test";

/// The PATH every tracee gets (fixed, so results do not depend on the caller's PATH,
/// and so root's private tool directories, unreadable to the test user, are not in it).
pub const TRACEE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

pub struct Env {
    /// `/tmp/ptnix-e2e-<pid>`, 0755, removed when the test process exits.
    pub root: PathBuf,
    /// `root/bin`: the copy of ptnix and the compiled C programs, all 0755.
    pub bin_dir: PathBuf,
    /// The copy of the ptnix binary that tests run.
    pub ptnix: PathBuf,
    /// The user tracees run as, or `None` to run them as ourselves (not root).
    pub user: Option<User>,
}

static ENV: OnceLock<Env> = OnceLock::new();

/// The environment, set up on first use: finds and copies the binary, creates the
/// test user if needed.
pub fn env() -> &'static Env {
    ENV.get_or_init(setup)
}

fn setup() -> Env {
    let src = locate_ptnix();
    let tmp = std::env::var_os("PTNIX_TEST_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/tmp".into());
    remove_stale_roots(&tmp);
    let root = tmp.join(format!("ptnix-e2e-{}", std::process::id()));
    if root.exists() {
        // A dead process with our (recycled) pid left it behind.
        crate::fixture::remove_tree(&root);
    }
    let bin_dir = root.join("bin");
    fs::create_dir_all(&bin_dir).unwrap_or_else(|e| panic!("creating {}: {e}", bin_dir.display()));
    for d in [&root, &bin_dir] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    // The checkout may live under a 0700 directory the test user cannot enter: run a
    // copy. Copying once also keeps one binary for the whole process even if cargo
    // rebuilds it meanwhile.
    let ptnix = bin_dir.join("ptnix");
    fs::copy(&src, &ptnix)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", src.display(), ptnix.display()));
    fs::set_permissions(&ptnix, fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: registering a plain extern "C" function.
    unsafe { libc::atexit(remove_root_at_exit) };
    let user = if unsafe { libc::geteuid() } == 0 {
        Some(test_user())
    } else {
        None
    };
    Env {
        root,
        bin_dir,
        ptnix,
        user,
    }
}

extern "C" fn remove_root_at_exit() {
    if std::env::var_os("PTNIX_TEST_KEEP").is_some() {
        return;
    }
    if let Some(e) = ENV.get() {
        let _ = fs::remove_dir_all(&e.root);
    }
}

/// `PTNIX_BIN`, else `target/<profile>/ptnix` next to the `deps/` directory holding the
/// running test executable.
pub fn locate_ptnix() -> PathBuf {
    if let Some(p) = std::env::var_os("PTNIX_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "PTNIX_BIN={} is not a file", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .filter(|d| d.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent)
        .unwrap_or_else(|| {
            panic!(
                "cannot derive target/<profile> from {}: set PTNIX_BIN",
                exe.display()
            )
        });
    let p = profile_dir.join("ptnix");
    assert!(
        p.is_file(),
        "the ptnix binary is missing at {}: run `cargo build -p ptnix` (same profile) first, or set PTNIX_BIN",
        p.display()
    );
    p
}

/// Removes `ptnix-e2e-<pid>` roots of test processes that no longer exist (killed
/// before their atexit cleanup ran).
fn remove_stale_roots(tmp: &Path) {
    let Ok(rd) = fs::read_dir(tmp) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("ptnix-e2e-"))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks for existence.
        let dead = unsafe { libc::kill(pid, 0) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if dead {
            crate::fixture::remove_tree(&e.path());
        }
    }
}

/// Looks `name` up in /etc/passwd (parsed by hand: the test binaries are linked
/// statically, where glibc's getpwnam cannot load NSS modules).
pub fn lookup_user(name: &str) -> Option<User> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            Some(User {
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        } else {
            None
        }
    })
}

/// The test user, created with `useradd -m` if missing. Test processes may run in
/// parallel (nextest), so creation is serialized with a lock file.
fn test_user() -> User {
    if let Some(u) = lookup_user(TEST_USER) {
        return checked(u);
    }
    let lock_path = "/tmp/ptnix-e2e-useradd.lock";
    let lock = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(lock_path)
        .expect("opening the useradd lock");
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file we own; released when `lock` is dropped.
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) },
        0,
        "flock {lock_path}"
    );
    if let Some(u) = lookup_user(TEST_USER) {
        return checked(u);
    }
    let useradd = ["/usr/sbin/useradd", "/sbin/useradd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("useradd");
    let out = Command::new(useradd)
        .args(["-m", TEST_USER])
        .output()
        .unwrap_or_else(|e| {
            panic!("running `{useradd} -m {TEST_USER}` (needed to drop root for the tracees): {e}")
        });
    let u = lookup_user(TEST_USER).unwrap_or_else(|| {
        panic!(
            "`useradd -m {TEST_USER}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let _ = writeln!(
        std::io::stderr(),
        "ptnix-tests: created user {TEST_USER} (uid {})",
        u.uid
    );
    checked(u)
}

fn checked(u: User) -> User {
    assert!(
        u.uid != 0 && u.gid != 0,
        "user {TEST_USER} must not be root: {u:?}"
    );
    u
}

/// True when `CI=true`: prerequisites must then be present, never skipped.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}
