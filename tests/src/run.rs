//! Running a command as the test user, always with a deadline: a hung tracer must fail
//! its test, not hang CI.

use crate::env::{env, User, TRACEE_PATH};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Environment variables passed through from the test process (debugging aids only:
/// nothing that changes what ptnix does).
const PASSED_THROUGH: &[&str] = &["RUST_BACKTRACE", "RUST_LOG", "PTNIX_LOG", "PTNIX_DEBUG"];

/// A command about to run: built by [`crate::Fixture`], adjusted with the builder
/// methods, then [`Invocation::run`] or [`Invocation::spawn`].
pub struct Invocation {
    cmd: Command,
    desc: String,
    timeout: Duration,
    stdin: Option<Vec<u8>>,
    /// ptnix stays root where the tests were started as root (see `as_root`).
    as_root: bool,
}

/// Quotes one argument for the human-readable command line in failure messages.
pub fn shell_quote(a: &OsStr) -> String {
    let s = String::from_utf8_lossy(a.as_bytes());
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Very long arguments (generated paths) are cut in failure messages.
fn shorten(s: String) -> String {
    if s.len() <= 2000 {
        return s;
    }
    let cut = (0..=700).rev().find(|&i| s.is_char_boundary(i)).unwrap();
    format!("{}...[{} bytes]", &s[..cut], s.len())
}

impl Invocation {
    /// `program args...` with a clean environment (PATH, HOME, USER, LC_ALL=C), run
    /// in `cwd` as the test user.
    pub fn new<S: AsRef<OsStr>>(program: &Path, args: &[S], home: &Path, cwd: &Path) -> Invocation {
        let mut cmd = Command::new(program);
        cmd.args(args);
        cmd.env_clear();
        cmd.env("PATH", TRACEE_PATH)
            .env("HOME", home)
            .env("LC_ALL", "C")
            .env("TZ", "UTC");
        let user_name = if env().user.is_some() {
            crate::env::TEST_USER.to_string()
        } else {
            current_user_name()
        };
        cmd.env("USER", &user_name).env("LOGNAME", &user_name);
        for k in PASSED_THROUGH {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        cmd.current_dir(cwd);
        let mut desc = shell_quote(program.as_os_str());
        for a in args {
            desc.push(' ');
            desc.push_str(&shorten(shell_quote(a.as_ref())));
        }
        Invocation {
            cmd,
            desc,
            timeout: DEFAULT_TIMEOUT,
            stdin: None,
            as_root: false,
        }
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        let (k, v) = (k.as_ref(), v.as_ref());
        self.desc = format!("{}={} {}", k.to_string_lossy(), shell_quote(v), self.desc);
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.cmd.env_remove(k);
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// ptnix itself runs as root, where the tests were started as root (not dropped to
    /// the test user): for a program that drops to another user on its own.
    pub fn as_root(mut self) -> Self {
        self.as_root = true;
        self
    }

    /// Bytes fed to the command's stdin (default: /dev/null).
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    pub fn run(self) -> Output {
        self.spawn().wait()
    }

    pub fn spawn(mut self) -> Running {
        self.cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        // Own process group, so that a timeout kills ptnix and all its tracees.
        self.cmd.process_group(0);
        let user = if self.as_root { None } else { env().user };
        // SAFETY: the closure only makes async-signal-safe syscalls.
        unsafe {
            self.cmd.pre_exec(move || drop_privileges(user));
        }
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning `{}`: {e}", self.desc));
        if let Some(data) = self.stdin.take() {
            let mut w = child.stdin.take().unwrap();
            thread::spawn(move || {
                let _ = w.write_all(&data);
            });
        }
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for (which, mut r) in [
            (0u8, Box::new(out) as Box<dyn Read + Send>),
            (1, Box::new(err)),
        ] {
            let tx = tx.clone();
            thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                let _ = tx.send((which, buf));
            });
        }
        Running {
            pid: child.id() as i32,
            child,
            desc: self.desc,
            deadline: Instant::now() + self.timeout,
            timeout: self.timeout,
            pipes: rx,
        }
    }
}

fn current_user_name() -> String {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// In the child between fork and exec: become the test user (no supplementary groups),
/// and die with the test process.
fn drop_privileges(user: Option<User>) -> std::io::Result<()> {
    let check = |r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: plain syscalls on values we own.
    unsafe {
        if let Some(u) = user {
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setgid(u.gid))?;
            check(libc::setuid(u.uid))?;
            if libc::getuid() != u.uid || libc::geteuid() != u.uid || libc::getegid() != u.gid {
                // No allocation here (we are between fork and exec).
                return Err(std::io::Error::from_raw_os_error(libc::EPERM));
            }
        }
        // After setuid, which clears it: SIGKILL ptnix if the test thread dies.
        check(libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ))?;
    }
    Ok(())
}

/// A started command; [`Running::wait`] collects it, killing it at the deadline.
pub struct Running {
    pid: i32,
    child: Child,
    desc: String,
    deadline: Instant,
    timeout: Duration,
    pipes: mpsc::Receiver<(u8, Vec<u8>)>,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `sig` to the started process (ptnix itself, not its group).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill on our own child's pid, which is not reaped yet.
        let r = unsafe { libc::kill(self.pid, sig) };
        assert_eq!(
            r,
            0,
            "kill({}, {sig}): {}",
            self.pid,
            std::io::Error::last_os_error()
        );
    }

    /// True while the process has not exited (it is not reaped here).
    pub fn alive(&mut self) -> bool {
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: WNOWAIT leaves the child waitable for `wait`.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                self.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        r == 0 && unsafe { info.si_pid() } == 0
    }

    fn kill_group(&self) {
        // SAFETY: the group is the one created for this child (process_group(0)).
        unsafe { libc::kill(-self.pid, libc::SIGKILL) };
    }

    pub fn wait(mut self) -> Output {
        let status = loop {
            match self.child.try_wait().expect("try_wait") {
                Some(s) => break s,
                None if Instant::now() >= self.deadline => {
                    self.kill_group();
                    let _ = self.child.wait();
                    let (o, e) = self.collect(Instant::now() + Duration::from_secs(5));
                    panic!(
                        "TIMEOUT after {:?}: `{}` was killed\n--- stdout ---\n{}\n--- stderr ---\n{}",
                        self.timeout,
                        self.desc,
                        String::from_utf8_lossy(&o),
                        String::from_utf8_lossy(&e)
                    );
                }
                None => thread::sleep(Duration::from_millis(5)),
            }
        };
        // A tracee left running in the background could hold the pipes open.
        let (stdout, stderr) =
            self.collect(self.deadline.max(Instant::now() + Duration::from_secs(10)));
        Output {
            desc: self.desc,
            status,
            stdout,
            stderr,
        }
    }

    fn collect(&self, until: Instant) -> (Vec<u8>, Vec<u8>) {
        let (mut out, mut err) = (None, None);
        while out.is_none() || err.is_none() {
            let left = until.saturating_duration_since(Instant::now());
            match self.pipes.recv_timeout(left) {
                Ok((0, b)) => out = Some(b),
                Ok((_, b)) => err = Some(b),
                Err(_) => {
                    self.kill_group();
                    panic!(
                        "`{}` exited ({:?}) but its stdout/stderr stayed open past the deadline",
                        self.desc,
                        self.child.id()
                    );
                }
            }
        }
        (out.unwrap(), err.unwrap())
    }
}

/// What a finished command did. `Display` prints everything, for failure messages.
pub struct Output {
    pub desc: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// The exit code; panics if the process (ptnix itself) died of a signal.
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| {
            panic!(
                "ptnix itself was killed by signal {:?}\n{self}",
                self.status.signal()
            )
        })
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Asserts exit status 0.
    #[track_caller]
    pub fn ok(self) -> Self {
        self.expect_code(0)
    }

    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "expected exit status {code}\n{self}"
        );
        self
    }

    /// Asserts exit status 0 and exactly this stdout.
    #[track_caller]
    pub fn expect_stdout(self, expected: &str) -> Self {
        let s = self.ok();
        assert_eq!(s.stdout(), expected, "unexpected stdout\n{s}");
        s
    }

    #[track_caller]
    pub fn expect_stderr_contains(self, needle: &str) -> Self {
        assert!(
            self.stderr().contains(needle),
            "stderr should contain {needle:?}\n{self}"
        );
        self
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.desc)?;
        writeln!(f, "status:  {}", self.status)?;
        writeln!(
            f,
            "--- stdout ---\n{}",
            String::from_utf8_lossy(&self.stdout)
        )?;
        write!(
            f,
            "--- stderr ---\n{}",
            String::from_utf8_lossy(&self.stderr)
        )
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Builds `OsString` args from byte strings (for non-UTF-8 names).
pub fn os(b: &[u8]) -> OsString {
    OsStr::from_bytes(b).to_os_string()
}
