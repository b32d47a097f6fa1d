//! Listings of `/` by every way a program can come to hold its descriptor (issue 6):
//! ptnix keeps descriptors of directories whose listing it changes at high numbers
//! and its filter stops getdents only there (tracer/src/listingfd.rs), so each route
//! must still list the mount points: the descriptor an open returns, dup, dup2/dup3 to
//! a low number chosen by the caller, fcntl(F_DUPFD_CLOEXEC), a descriptor inherited
//! across exec, one ptnix itself inherits, a lowered RLIMIT_NOFILE, another thread's
//! dup2, pidfd_getfd; and with signal handlers cutting in. Ordinary opens keep the
//! lowest free number, and a walk of a tree makes no getdents stop at all.
//!
//! `/` gets a bind whose name the host lacks (a synthesized record) besides `nix`.

use ptnix_tests::*;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

struct Setup {
    fx: Fixture,
    /// The bind's guest name in `/`.
    name: String,
    bind: PathBuf,
    listfd: PathBuf,
}

impl Setup {
    fn new(m: Mode) -> Setup {
        let fx = Fixture::new(m);
        fx.mkdirs(&fx.host("/nix/store"));
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("ptnix-test-fds-{}-{nanos:x}", std::process::id());
        assert!(std::fs::symlink_metadata(Path::new("/").join(&name)).is_err());
        let bind = fx.dir.join("bind");
        fx.mkdirs(&bind);
        Setup { fx, name, bind, listfd: c_prog("listfd") }
    }

    /// `ptnix run --store S [mode] -b BIND:/NAME [extra] -- ARGV`.
    fn args<S: AsRef<OsStr>>(&self, extra: &[&str], argv: &[S]) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["run".into(), "--store".into(), self.fx.store.clone().into()];
        a.extend(self.fx.mode.flags().iter().map(OsString::from));
        let mut b = self.bind.clone().into_os_string();
        b.push(format!(":/{}", self.name));
        a.extend(["-b".into(), b]);
        a.extend(extra.iter().map(OsString::from));
        a.push("--".into());
        a.extend(argv.iter().map(|x| x.as_ref().to_os_string()));
        a
    }

    fn listfd(&self, route: &str, n: &str) -> Output {
        self.listfd_with(route, &[n])
    }

    fn listfd_with(&self, route: &str, rest: &[&str]) -> Output {
        let mut argv = vec![self.listfd.as_os_str(), OsStr::new(route), OsStr::new("/")];
        argv.extend(rest.iter().map(OsStr::new));
        self.fx.ptnix(&self.args(&[], &argv)).run().ok()
    }

    /// The listing shows `nix` and the bind once each, and everything the host's `/` has.
    #[track_caller]
    fn check(&self, out: &Output) {
        let s = out.stdout();
        let names: Vec<&str> = s.lines().skip_while(|l| !l.starts_with("fd ")).skip(1).take_while(|l| *l != "end").collect();
        for want in ["nix", self.name.as_str()] {
            let n = names.iter().filter(|x| **x == want).count();
            assert_eq!(n, 1, "`{want}` listed {n} times\n{out}");
        }
        for e in std::fs::read_dir("/").unwrap() {
            let e = e.unwrap().file_name();
            let e = e.to_str().unwrap();
            assert!(names.contains(&e), "host entry {e} missing\n{out}");
        }
    }
}

/// The descriptor number `listfd` listed.
fn fd_of(out: &Output) -> i32 {
    let s = out.stdout();
    let l = s.lines().find(|l| l.starts_with("fd ")).unwrap_or_else(|| panic!("no fd line\n{out}"));
    l[3..].parse().unwrap()
}

both_modes! {
    /// open, dup, fcntl(F_DUPFD_CLOEXEC, 0), dup2 and dup3 to low numbers.
    fn copies_list_the_mount_points(m: Mode) {
        require!(Cc);
        let s = Setup::new(m);
        for (route, n) in [("open", ""), ("dup", ""), ("fcntl", "0"), ("fcntl", "5"), ("dup2", "5"), ("dup2", "9"), ("dup3", "6")] {
            let out = s.listfd(route, n);
            s.check(&out);
            if matches!(route, "dup2" | "dup3") {
                assert_eq!(fd_of(&out).to_string(), n, "{route}\n{out}");
            }
        }
    }

    /// A descriptor dup2'ed to a low number and inherited across exec; one ptnix
    /// itself inherits from the shell that starts it.
    fn inherited_descriptors_list_the_mount_points(m: Mode) {
        require!(Cc, Sh);
        let s = Setup::new(m);
        let out = s.listfd("inherit", "7");
        s.check(&out);
        assert_eq!(fd_of(&out), 7, "\n{out}");
        let mut line = String::from("exec 6</ && exec");
        line.push_str(&format!(" {}", run::shell_quote(env::env().ptnix.as_os_str())));
        for a in s.args(&[], &[s.listfd.as_os_str(), OsStr::new("fd"), OsStr::new("-"), OsStr::new("6")]) {
            line.push(' ');
            line.push_str(&run::shell_quote(&a));
        }
        let out = s.fx.plain(&["/bin/sh", "-c", &line]).run().ok();
        s.check(&out);
    }

    /// RLIMIT_NOFILE lowered below ptnix's base (no high number to move to); another
    /// thread's dup2 to a low number, listed by a third thread; pidfd_getfd.
    fn hard_routes_list_the_mount_points(m: Mode) {
        require!(Cc);
        let s = Setup::new(m);
        let out = s.listfd("rlimit", "");
        s.check(&out);
        assert!(fd_of(&out) < 16, "\n{out}");
        s.check(&s.listfd("thread", "8"));
        s.check(&s.listfd("pidfd", ""));
        // A thread with a seccomp filter of its own: the process gets ptnix's getdents
        // filter before it, so every route still lists the mount points.
        s.check(&s.listfd("ownthread", "5"));
    }

    /// Where ptnix cannot run a syscall of its own in the tracee, it gives up on the
    /// descriptor's listing rather than loop: a dup with RLIMIT_NOFILE below the base
    /// (no high number) and the stack pointer right above an unmapped page (no room
    /// for the filter) returns as natively. A tracee whose own filter traps
    /// fcntl(F_DUPFD) with SIGSYS never sees its handler run for ptnix's syscalls.
    fn no_room_to_inject(m: Mode) {
        require!(Cc);
        let s = Setup::new(m);
        assert!(s.listfd("tightstack", "").stdout().ends_with("dup ok\n"));
        let out = s.listfd("trapper", "");
        s.check(&out);
        assert!(out.stdout().ends_with("traps 0\n"), "\n{out}");
    }

    /// A storm of signals whose handler makes syscalls (path syscalls too) while `/`
    /// is opened and listed 300 times: ptnix's own syscalls in the tracee (moving the
    /// descriptor, seeking past the appended record) are never cut by the handler.
    fn signal_handlers_do_not_cut_in(m: Mode) {
        require!(Cc);
        let s = Setup::new(m);
        // In the pure-ptrace mode every syscall of the handler stops: a slower storm,
        // or the handler would take all the time.
        let us = if m.seccomp() { "50" } else { "1000" };
        let out = s.listfd_with("storm", &["300", us]);
        s.check(&out);
        let st = out.stdout();
        let k: u64 = st.lines().last().and_then(|l| l.strip_prefix("signals ")).unwrap_or_else(|| panic!("\n{out}")).parse().unwrap();
        assert!(k > 0, "no signal arrived\n{out}");
    }

    /// Other directories and files get the numbers they get natively.
    fn other_descriptors_keep_their_numbers(m: Mode) {
        require!(Cc);
        let s = Setup::new(m);
        for dir in ["/usr", "/tmp", "/nix/store"] {
            let argv = [s.listfd.as_os_str(), OsStr::new("file"), OsStr::new(dir)];
            let out = s.fx.ptnix(&s.args(&[], &argv)).run().ok();
            assert_eq!(out.stdout(), "dir 3 file 4\n", "{dir}\n{out}");
        }
    }
}

/// A host that refuses ptnix its seccomp filter (here a policy that fails seccomp(2)
/// and prctl(2) with EPERM): in the pure-ptrace mode that follows, descriptors keep
/// their numbers, nothing is injected, and the listing is right.
#[test]
fn refused_filter_moves_nothing() {
    require!(Cc);
    let s = Setup::new(Mode::Seccomp);
    let mut argv: Vec<OsString> = vec![c_prog("deny").into(), "317,157".into(), env::env().ptnix.clone().into()];
    argv.extend(s.args(&[], &[s.listfd.as_os_str(), OsStr::new("mask"), OsStr::new("/")]));
    let out = s.fx.plain(&argv).run().ok();
    s.check(&out);
    assert_eq!(fd_of(&out), 3, "\n{out}");
    assert!(out.stdout().ends_with("sigblk 0000000000000000\n"), "\n{out}");
}

/// A tree walk reads its directories without a getdents stop (seccomp mode; the
/// pure-ptrace mode stops every syscall anyway), while `/` is still listed.
#[test]
fn tree_walks_make_no_getdents_stops() {
    require!(Sh);
    let s = Setup::new(Mode::Seccomp);
    for i in 0..20 {
        s.fx.mkdirs(&s.fx.host(format!("/nix/store/tree/d{i}/e")));
    }
    let out = s.fx.ptnix(&s.args(&["--stats"], &["find", "/nix/store/tree", "/usr/share/doc"])).run().ok();
    let stops = out.stderr();
    let line = stops.lines().find(|l| l.contains("entry stops by syscall")).unwrap_or_else(|| panic!("no stats\n{out}"));
    assert!(!line.contains("getdents"), "getdents stopped: {line}\n");
    assert!(out.stdout().lines().count() > 60, "\n{out}");
    let out = s.fx.ptnix(&s.args(&["--stats"], &["ls", "-a", "/"])).run().ok();
    assert_eq!(out.stdout().lines().filter(|l| *l == s.name).count(), 1, "\n{out}");
    assert!(out.stderr().contains("getdents64"), "/ was listed without a stop\n{out}");
}
