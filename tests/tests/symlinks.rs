//! Symlinks are followed in the guest's view: a host symlink pointing into /nix (like
//! ~/.nix-profile), store symlinks with absolute /nix targets, relative targets that
//! climb past /nix to /, and lstat/O_NOFOLLOW/readlink that do not follow.

use ptnix_tests::*;

/// The usual Nix profile chain, all targets guest paths:
/// ~/.nix-profile -> /nix/var/nix/profiles/x -> x-1-link -> /nix/store/abc-prof
fn make_profile(fx: &Fixture) {
    let prof = fx.host("/nix/store/abc-prof");
    fx.write(prof.join("share/msg"), "from the profile\n");
    fx.write_exec(
        prof.join("bin/hello"),
        "#!/bin/sh\necho hello from profile\n",
    );
    fx.symlink("x-1-link", fx.host("/nix/var/nix/profiles/x"));
    fx.symlink(
        "/nix/store/abc-prof",
        fx.host("/nix/var/nix/profiles/x-1-link"),
    );
    fx.symlink("/nix/var/nix/profiles/x", fx.home.join(".nix-profile"));
}

both_modes! {
    /// cat, ls and exec through ~/.nix-profile.
    fn home_profile_link_shell(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        make_profile(&fx);
        fx.sh("cat ~/.nix-profile/share/msg && ls ~/.nix-profile/bin && ls -L ~/.nix-profile \
               && ~/.nix-profile/bin/hello && PATH=$HOME/.nix-profile/bin:$PATH hello \
               && readlink -f ~/.nix-profile/share/msg && realpath ~/.nix-profile")
            .expect_stdout(
                "from the profile\nhello\nbin\nshare\nhello from profile\nhello from profile\n\
                 /nix/store/abc-prof/share/msg\n/nix/store/abc-prof\n",
            );
    }

    /// python's view of the same chain.
    fn home_profile_link_python(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        make_profile(&fx);
        let code = r#"
import os
h = os.environ['HOME']
print(open(h + '/.nix-profile/share/msg').read(), end='')
print(sorted(os.listdir(h + '/.nix-profile')))
print(os.path.realpath(h + '/.nix-profile/bin/hello'))
print(os.readlink(h + '/.nix-profile'))
print(os.path.isdir(h + '/.nix-profile/bin'), os.path.islink(h + '/.nix-profile'))
"#;
        fx.py(code, &[] as &[&str]).expect_stdout(
            "from the profile\n['bin', 'share']\n/nix/store/abc-prof/bin/hello\n/nix/var/nix/profiles/x\nTrue True\n",
        );
    }

    /// Relative symlink targets climb in the guest tree: from /nix/store, `../..` is /,
    /// and extra `..` at / stay at /. A host symlink climbing to / then into /nix works.
    fn relative_links_climb_to_root(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.symlink("../../etc/passwd", fx.host("/nix/store/up2"));
        fx.symlink("../../../../../../etc/passwd", fx.host("/nix/store/up6"));
        fx.symlink("../..", fx.host("/nix/store/rootdir"));
        fx.symlink("../../../nix/store/f", fx.host("/nix/store/sub/reenter"));
        fx.write(fx.host("/nix/store/f"), "f\n");
        fx.symlink(format!("{}nix/store/f", "../".repeat(12)), fx.home.join("climb"));
        fx.sh("set -e
               cmp /nix/store/up2 /etc/passwd && echo up2
               cmp /nix/store/up6 /etc/passwd && echo up6
               test \"$(stat -L -c %d:%i /nix/store/rootdir)\" = \"$(stat -c %d:%i /)\" && echo rootdir
               cmp /nix/store/rootdir/etc/passwd /etc/passwd && echo through-rootdir
               cd /nix/store/rootdir && pwd -P
               cat /nix/store/sub/reenter ~/climb /nix/store/rootdir/nix/store/f")
            .expect_stdout("up2\nup6\nrootdir\nthrough-rootdir\n/\nf\nf\nf\n");
    }

    /// Absolute targets inside /nix are guest paths, including chains and links to
    /// directories; targets outside /nix are host paths.
    fn absolute_targets(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/store/real/file"), "real\n");
        fx.symlink("/nix/store/real", fx.host("/nix/store/dirlink"));
        fx.symlink("/nix/store/dirlink/file", fx.host("/nix/store/chain1"));
        fx.symlink("/nix/store/chain1", fx.host("/nix/store/chain2"));
        fx.symlink("/etc/passwd", fx.host("/nix/store/hostfile"));
        fx.sh("set -e
               cat /nix/store/chain2 /nix/store/dirlink/file
               cmp /nix/store/hostfile /etc/passwd && echo hostfile
               cd /nix/store/dirlink && pwd -P && cat file
               echo new > /nix/store/dirlink/created")
            .expect_stdout("real\nreal\nhostfile\n/nix/store/real\nreal\n");
        assert_eq!(fx.read_string(fx.host("/nix/store/real/created")), "new\n");
    }

    /// lstat, readlink, O_NOFOLLOW, `rm` and `mv` act on the link itself, whose target
    /// need not exist on the host (/nix/store/... targets never exist on the host).
    fn nofollow_acts_on_the_link(m: Mode) {
        require!(Sh, Coreutils, Python3);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/store/t"), "t\n");
        fx.symlink("/nix/store/t", fx.host("/nix/store/l"));
        fx.symlink("/nix/store/missing", fx.host("/nix/store/dangling"));
        fx.sh("stat -c %F /nix/store/l /nix/store/dangling; stat -L -c %F /nix/store/l; \
               readlink /nix/store/l /nix/store/dangling; test -L /nix/store/dangling && echo is-link; \
               test -e /nix/store/dangling || echo dangles")
            .expect_stdout("symbolic link\nsymbolic link\nregular file\n/nix/store/t\n/nix/store/missing\nis-link\ndangles\n");
        let code = r#"
import os, errno
try:
    os.open('/nix/store/l', os.O_RDONLY | os.O_NOFOLLOW); print('opened')
except OSError as e: print(errno.errorcode[e.errno])
fd = os.open('/nix/store/l', os.O_PATH | os.O_NOFOLLOW)
import stat; print(stat.S_ISLNK(os.fstat(fd).st_mode))
try:
    os.open('/nix/store/dangling', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644); print('created')
except OSError as e: print(errno.errorcode[e.errno])
print(os.lstat('/nix/store/l').st_size)
os.rename('/nix/store/l', '/nix/store/l2')
os.chmod('/nix/store/t', 0o600, follow_symlinks=True)
os.unlink('/nix/store/dangling')
"#;
        fx.py(code, &[] as &[&str]).expect_stdout("ELOOP\nTrue\nEEXIST\n12\n");
        assert_eq!(std::fs::read_link(fx.host("/nix/store/l2")).unwrap().to_str(), Some("/nix/store/t"));
        assert!(std::fs::symlink_metadata(fx.host("/nix/store/dangling")).is_err());
        assert!(fx.host("/nix/store/t").is_file());
    }
}

/// realpath(3) and readlink made as libc makes them itself (a raw syscall, which no
/// preloaded object sees) on each path given: the realpath, the link's target, and
/// the target cut to 3 bytes; then /proc's magic links, a size of 0 (EINVAL, before
/// the path is looked up: not ENOTDIR or EACCES), a bad buffer (EFAULT).
const LINKS: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.realpath.restype = ctypes.c_char_p
libc.realpath.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
def rl(p, size=4096, bad=False):
    b = ctypes.create_string_buffer(max(size, 1))
    n = libc.syscall(89, p.encode(), ctypes.c_void_p(8) if bad else b, ctypes.c_long(size))
    return "E%d" % ctypes.get_errno() if n < 0 else b.raw[:n].decode(errors="replace")
def rp(p):
    r = libc.realpath(p.encode(), None)
    return "E%d" % ctypes.get_errno() if r is None else r.decode()
for p in sys.argv[1:]:
    print(p, rp(p), rl(p), rl(p, 3))
fd = os.open("/nix/store/bbb-other/file", os.O_RDONLY)
print(rl("/proc/self/fd/%d" % fd), rl("/proc/%d/fd/%d" % (os.getpid(), fd)), rl("/proc/self/cwd"))
print(rl("/nix/store/aaa-pkg/abs", 0), rl("/nix/store/aaa-pkg/abs", 16, bad=True), rl("/proc/self/cwd", 0),
      rl("/nix/store/aaa-pkg/bin/tool/x", 0), rl("/nix/store/ccc-locked/inner/f", 0), rl("/nix/store/aaa-pkg/abs", 1 << 32))
"#;

both_modes! {
    /// readlink as libc makes it itself (realpath's), on every kind of path: the same
    /// answers as in the pure-ptrace mode; with notifications none of them stops the
    /// tracee (the notification supervisor answers them).
    fn readlink_answers_as_in_pure_ptrace(m: Mode) {
        require!(Python3);
        let mut fx = Fixture::new(m);
        let mut argv = vec![PYTHON.to_string(), "-c".into(), LINKS.into()];
        argv.extend(store_paths(&fx));
        let cwd = fx.host("/nix/store/aaa-pkg");
        fx.flags.push("--stats");
        let got = fx.cmd(&argv).cwd(&cwd).run().ok();
        if m != Mode::Ptrace {
            fx.flags.push("--no-seccomp");
        }
        let want = fx.cmd(&argv).cwd(&cwd).run().ok();
        assert_eq!(got.stdout(), want.stdout(), "\nthis mode:\n{got}\npure ptrace:\n{want}");
        let out = got.stdout();
        for line in [
            "/nix/store/aaa-pkg/abs /nix/store/bbb-other/file /nix/store/bbb-other/file /ni\n",
            "/nix/store/aaa-pkg/rel /nix/store/bbb-other/file ../bbb-other/file ../\n",
            "/nix/store/aaa-pkg/dangling E2 /nix/store/none/x /ni\n",
            "/nix/store/bbb-other/file /nix/store/bbb-other/file /nix/store/aaa-pkg\n",
            // A size of 0 (also as the kernel's int) is EINVAL before any lookup.
            "E22 E14 E22 E22 E22 E22\n",
        ] {
            assert!(out.contains(line), "{line:?} missing\n{got}");
        }
        // Notified where opens are (Linux 5.14, ptnix not root).
        if m == Mode::Seccomp && fx.opens_notified("the stop count") {
            let err = got.stderr();
            let stops = err.lines().find(|l| l.contains("entry stops by syscall")).unwrap_or("");
            let notified = err.lines().find(|l| l.contains("user notifications")).unwrap_or("");
            assert!(!stops.contains("readlink") && notified.contains("readlink"), "\n{err}");
        }
    }
}
