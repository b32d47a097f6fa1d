//! Opens answered by the notification supervisor (Linux 5.14: it opens the host path
//! and installs the descriptor in the tracee), and those it hands back to the tracer.
//! Each test runs in all three modes: what it checks holds whoever answers. With the
//! in-process fast path, store paths are opened by the program itself, so these run
//! with `--no-shim`, where every open goes to the supervisor; the fast path's own
//! tests are `shim.rs`.

use ptnix_tests::*;

/// The descriptor an open of a translated path returns is the one a native open
/// would: the lowest free number, close-on-exec exactly when asked, the file's
/// status flags and offset its own, EMFILE at the tracee's own limit.
const DESCRIPTORS: &str = r#"
import ctypes, fcntl, os, resource, sys
p = sys.argv[1]
# Python's os.open adds O_CLOEXEC: libc's open is called as it is.
a = ctypes.CDLL(None).open(p.encode(), os.O_RDONLY)
b = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
print("numbers", b - a)
print("cloexec", bool(fcntl.fcntl(a, fcntl.F_GETFD) & fcntl.FD_CLOEXEC), bool(fcntl.fcntl(b, fcntl.F_GETFD) & fcntl.FD_CLOEXEC))
os.close(a)
c = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
print("reuse", c == a, "nonblock", bool(fcntl.fcntl(c, fcntl.F_GETFL) & os.O_NONBLOCK))
print("read", os.read(c, 5), os.lseek(c, 0, os.SEEK_CUR))
w = os.open(p, os.O_WRONLY | os.O_APPEND)
os.write(w, b"more\n")
print("append", open(p).read().split())
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(w, c, b) + 1, hard))
try:
    os.open(p, os.O_RDONLY)
    print("no EMFILE")
except OSError as e:
    print("limit", e.errno == 24)
"#;

/// "/" opened without O_DIRECTORY (not a directory open in the filter's eyes) and
/// listed through the descriptor: the supervisor hands that open to the tracer,
/// which keeps the listing's `nix`.
const ROOT_BY_FD: &str = r#"
import os
fd = os.open("/", os.O_RDONLY)
names = os.listdir(fd)
print("nix" in names, names.count("nix"))
"#;

/// A FIFO opened (for reading, or for writing as a shell's `>` does) under an alarm
/// whose handler raises.
const FIFO_TIMEOUT: &str = r#"
import os, signal, sys
class Timeout(Exception): pass
def on_alarm(sig, frame): raise Timeout()
os.mkfifo(sys.argv[1])
signal.signal(signal.SIGALRM, on_alarm)
flags = os.O_RDONLY if sys.argv[2] == "r" else os.O_WRONLY | os.O_CREAT | os.O_TRUNC
signal.setitimer(signal.ITIMER_REAL, 0.3)
try:
    os.open(sys.argv[1], flags)
    print("opened")
except Timeout:
    print("timeout")
"#;

both_modes! {
    fn descriptors_are_the_kernels(m: Mode) {
        require!(Python3);
        let fx = no_shim(m);
        fx.write(fx.host("/nix/store/f"), "hello\n");
        fx.py(DESCRIPTORS, &["/nix/store/f"]).ok().expect_stdout(
            "numbers 1\ncloexec False True\nreuse True nonblock True\nread b'hello' 5\nappend ['hello', 'more']\nlimit True\n",
        );
    }

    fn open_errors_are_the_kernels(m: Mode) {
        require!(Coreutils);
        let fx = no_shim(m);
        fx.write(fx.host("/nix/f"), "x");
        fx.symlink("f", fx.host("/nix/l"));
        let script = "for p in /nix/missing /nix/f/x /nix/missing/x; do cat $p 2>&1; done; \
                      python3 -c 'import os
try: os.open(\"/nix/l\", os.O_RDONLY | os.O_NOFOLLOW)
except OSError as e: print(e.errno)' 2>&1 || true";
        fx.sh(script).expect_stdout(
            "cat: /nix/missing: No such file or directory\ncat: /nix/f/x: Not a directory\ncat: /nix/missing/x: No such file or directory\n40\n",
        );
    }

    /// A FIFO under /nix: the reader's open waits for the writer (on a thread of
    /// ptnix's own, not blocking other tracees' calls), and a signal still ends a
    /// reader left waiting.
    fn fifo_opens_wait_and_can_be_interrupted(m: Mode) {
        require!(Coreutils);
        let fx = no_shim(m);
        fx.mkdirs(&fx.host("/nix/var"));
        let script = "mkfifo /nix/var/p /nix/var/q || exit 1; \
                      (sleep 0.3; ls /nix/var >/dev/null; echo through >/nix/var/p) & \
                      cat /nix/var/p; wait; \
                      timeout -s INT 0.3 cat /nix/var/q; echo status $?";
        fx.sh(script).ok().expect_stdout("through\nstatus 124\n");
    }

    /// A handler without SA_RESTART (Python's) ends a FIFO open with EINTR, as
    /// natively: the `alarm` pattern of a timeout around such an open works, below
    /// /nix (ptnix's thread waits) and on the host (the kernel waits, after ptnix let
    /// the call through).
    fn fifo_open_ends_with_eintr_for_a_timeout(m: Mode) {
        require!(Python3);
        let fx = no_shim(m);
        fx.mkdirs(&fx.host("/nix/var"));
        let host = fx.work.join("fifo-host");
        for (path, how) in [("/nix/var/r", "r"), ("/nix/var/w", "w"), (host.to_str().unwrap(), "r")] {
            fx.py(FIFO_TIMEOUT, &[path, how]).ok().expect_stdout("timeout\n");
        }
    }

    /// Files created below /nix get the creating process's umask, also after it
    /// changes it, and O_EXCL, O_TMPFILE and a dangling symlink behave as natively.
    fn created_files_get_the_umask(m: Mode) {
        require!(Python3);
        let fx = no_shim(m);
        let script = "umask 077; echo x > /nix/a; umask 022; echo y > /nix/b; \
                      python3 -c 'import os; os.umask(0o027); os.close(os.open(\"/nix/c\", os.O_CREAT | os.O_WRONLY, 0o666))'; \
                      stat -c %a /nix/a /nix/b /nix/c; \
                      (set -C; echo z > /nix/a) 2>/dev/null || echo exists; \
                      ln -s /nix/target /nix/link; echo t > /nix/link; cat /nix/target; \
                      mkdir /nix/d; python3 -c 'import os, stat; os.umask(0o022); fd = os.open(\"/nix/d\", os.O_TMPFILE | os.O_WRONLY, 0o666); print(oct(stat.S_IMODE(os.fstat(fd).st_mode)))'";
        fx.sh(script).ok().expect_stdout("600\n644\n640\nexists\nt\n0o644\n");
        assert_eq!(fx.read_string(&fx.host("/nix/target")), "t\n");
    }

    /// The calls with one path and an effect on it: chmod, chown and utimensat
    /// (following the link or not), which the supervisor makes itself, next to
    /// mkdir with the umask, truncate, rmdir and unlink, which stop.
    fn effects_on_one_path_are_the_kernels(m: Mode) {
        require!(Coreutils);
        let fx = no_shim(m);
        let script = "umask 027; mkdir /nix/e; umask 022; mkdir /nix/e2; \
                      echo hello > /nix/f; truncate -s 2 /nix/f; chmod 640 /nix/f; \
                      ln -s f /nix/l; TZ=UTC touch -d '2001-02-03 04:05:06' /nix/f; TZ=UTC touch -h -d '2002-01-01' /nix/l; \
                      stat -c '%n %a' /nix/e /nix/e2; stat -c '%n %a %s %Y' /nix/f; stat -c '%n %Y' /nix/l; \
                      chown $(id -u):$(id -g) /nix/f && echo chowned; \
                      rm /nix/l /nix/f; rmdir /nix/e2; ls -d /nix/e /nix/e2 /nix/f 2>&1 | sed 's/.*: //'";
        fx.sh(script).expect_stdout(
            "/nix/e 750\n/nix/e2 755\n/nix/f 640 2 981173106\n/nix/l 1009843200\nchowned\n\
             No such file or directory\nNo such file or directory\n/nix/e\n",
        );
    }

    fn root_opened_without_o_directory_lists_nix(m: Mode) {
        require!(Python3);
        let fx = no_shim(m);
        fx.py(ROOT_BY_FD, &[] as &[&str]).ok().expect_stdout("True 1\n");
    }
}

/// With notifications, plain opens of translated paths make no ptrace stop, and the
/// open of `/` above is the one handed to the tracer.
#[test]
fn opens_are_notified_and_listed_roots_handed_over() {
    require!(Python3);
    if !Fixture::new(Mode::Seccomp).opens_notified("the whole test") {
        return;
    }
    let mut fx = no_shim(Mode::Seccomp);
    fx.write(fx.host("/nix/store/f"), "x");
    fx.flags.push("--stats");
    let out = fx.run(&[PYTHON, "-c", "open('/nix/store/f').read()\nimport os\nos.listdir(os.open('/', os.O_RDONLY))"]).ok();
    let err = out.stderr();
    let notified = err.lines().find(|l| l.contains("user notifications")).unwrap_or_else(|| panic!("{out}"));
    assert!(notified.contains("openat"), "{out}");
    assert!(err.contains("notified calls handed to the tracer: 1\n"), "{out}");
}

fn no_shim(m: Mode) -> Fixture {
    let mut fx = Fixture::new(m);
    fx.flags.push("--no-shim");
    fx
}
