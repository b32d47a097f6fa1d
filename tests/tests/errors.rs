//! Errors are the kernel's: ENOENT, ENOTDIR (trailing `/` and `/.` on a file), ELOOP,
//! ENAMETOOLONG, EEXIST, EISDIR, EINVAL, ENOTEMPTY... with the same messages as on a
//! real directory. Each command runs under ptnix on /nix/t and, without ptnix, on an
//! identical tree at a plain path; the transcripts must match.

use ptnix_tests::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The tree both sides start from. Links are relative so both trees are identical.
fn build(fx: &Fixture, nix: &Path) {
    let t = nix.join("t");
    fx.write(t.join("f"), "file\n");
    fx.write(t.join("nonempty/x"), "x\n");
    fx.mkdirs(&t.join("d"));
    fx.symlink("d", t.join("linkd"));
    fx.symlink("f", t.join("linkf"));
    fx.symlink("loop2", t.join("loop1"));
    fx.symlink("loop1", t.join("loop2"));
    fx.symlink("self", t.join("self"));
    fx.symlink("nothere", t.join("dang"));
    fx.write(t.join("noperm"), "secret\n");
    std::fs::set_permissions(t.join("noperm"), std::fs::Permissions::from_mode(0o000)).unwrap();
}

/// Shell commands using `$P` for the tree; each gets a `== cmd` header and its status.
const COMMANDS: &[&str] = &[
    "stat -c %F $P/f/",
    "stat -c %F $P/f/.",
    "stat -c %F $P/f/..",
    "stat -c %F $P/d/.",
    "stat -c %F $P/d/",
    "stat -c %F $P/linkd $P/linkd/ $P/linkf",
    "stat -c %F $P/linkf/",
    "stat -c %F $P/dang",
    "stat -L -c %F $P/dang",
    "cat $P/missing",
    "cat $P/missing/",
    "cat $P/f/x",
    "cat $P/d/../f",
    "cat $P/loop1",
    "cat $P/self",
    "cat $P/dang",
    "cat $P/d",
    "cat $P/noperm",
    "ls $P/loop1/",
    "ls $P/d/..",
    "ls -d $P/linkd/",
    "touch $P/$(printf 'a%.0s' $(seq 256))",
    "touch $P/$(printf 'b%.0s' $(seq 255)) && ls $P | grep -c bbbb",
    "touch $P/f/",
    "touch $P/new/",
    "mkdir $P/d",
    "mkdir $P/f/",
    "mkdir $P/missing/x",
    "mkdir $P/f/x",
    "mkdir $P/d/sub/ && stat -c %F $P/d/sub",
    "rmdir $P/f",
    "rmdir $P/d/.",
    "rmdir $P/d/..",
    "rmdir $P/nonempty",
    "rmdir $P/linkd",
    "rmdir $P/linkd/ ; stat -c %F $P/d",
    "mkdir $P/dang/",
    "rm -d $P/linkd/",
    "rm $P/d",
    "rm $P/linkd/",
    "rm $P/missing",
    "ln -s x $P/f",
    "ln $P/d $P/d2",
    "ln $P/missing $P/l2",
    "mv $P/d $P/d/sub",
    "mv $P/missing $P/x",
    "mv $P/nonempty $P/f",
    "cd $P/f",
    "cd $P/missing",
    "cd $P/loop1",
    "cd $P/linkd && pwd && pwd -P",
    "echo x > $P/d",
    "echo x > $P/missing/y",
    "echo x > $P/dang && cat $P/nothere",
    "$P/f",
    "$P/d",
    "$P/missing",
    "chmod 600 $P/missing",
    "truncate -s 0 $P/d",
    "readlink $P/f",
    "readlink -f $P/linkd/../f",
    "realpath $P/linkd/../linkf",
    "realpath $P/loop1",
    "find $P | sort",
    // Last: it changes the tree.
    "mv $P/f $P/nonempty && find $P | sort",
];

fn script() -> String {
    let mut s = String::new();
    for c in COMMANDS {
        s.push_str(&format!(
            "echo '== {}' >&2; echo '== {}'; ( {} ) 2>&1; echo \"rc=$?\"\n",
            c.replace('\'', ""),
            c.replace('\'', ""),
            c
        ));
    }
    s
}

both_modes! {
    /// The example everyone hits first, spelled out (the parity tests below cover the
    /// rest): a trailing slash on a file is ENOTDIR, not a successful stat.
    fn trailing_slash_on_file(m: Mode) {
        require!(Coreutils);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/store/file"), "");
        for p in ["/nix/store/file/", "/nix/store/file/."] {
            let out = fx.run(&["stat", "-c", "%F", p]).expect_code(1);
            assert_eq!(out.stderr(), format!("stat: cannot statx '{p}': Not a directory\n"), "\n{out}");
        }
        fx.run(&["stat", "-c", "%F", "/nix/store/file"]).expect_stdout("regular empty file\n");
    }

    fn coreutils_errors_match_kernel(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        let roots = ParityRoots::new(&fx);
        roots.build(|nix| build(&fx, nix));
        let script = script();
        let guest = fx.cmd(&["/bin/sh", "-c", &script]).env("P", "/nix/t").run();
        let reference = fx.plain(&["/bin/sh", "-c", &script]).env("P", format!("{}/t", roots.ref_prefix())).run();
        assert_same(&guest, &reference, &roots.ref_prefix());
    }

    /// The errno for each syscall on the same paths, from python (no message wording
    /// in between).
    fn errnos_match_kernel(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let roots = ParityRoots::new(&fx);
        roots.build(|nix| build(&fx, nix));
        let code = r#"
import os, sys, errno
P = sys.argv[1]
def t(name, f):
    try:
        r = f(); print(name, 'OK', '' if r is None or isinstance(r, int) else r)
    except OSError as e: print(name, errno.errorcode[e.errno])
for p in ['f/', 'f/.', 'd/.', 'linkd/', 'linkf/', 'loop1', 'loop1/', 'self', 'dang', 'missing', 'f/x', 'a' * 256, 'noperm']:
    q = P + '/' + p
    t('stat ' + p, lambda: os.stat(q) and None)
    t('lstat ' + p, lambda: os.lstat(q) and None)
    t('open ' + p, lambda: os.close(os.open(q, os.O_RDONLY)))
    t('open_nofollow ' + p, lambda: os.close(os.open(q, os.O_RDONLY | os.O_NOFOLLOW)))
    t('open_dir ' + p, lambda: os.close(os.open(q, os.O_RDONLY | os.O_DIRECTORY)))
    t('access ' + p, lambda: os.access(q, os.F_OK) or None)
    t('readlink ' + p, lambda: os.readlink(q))
    t('listdir ' + p, lambda: sorted(os.listdir(q)))
t('creat_dir_slash', lambda: os.close(os.open(P + '/newf/', os.O_WRONLY | os.O_CREAT, 0o644)))
t('creat_excl_dang', lambda: os.close(os.open(P + '/dang', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)))
t('creat_on_dir', lambda: os.close(os.open(P + '/d', os.O_WRONLY | os.O_CREAT, 0o644)))
t('mkdir_dot', lambda: os.mkdir(P + '/d/.'))
t('mkdir_dotdot', lambda: os.mkdir(P + '/d/..'))
t('rmdir_dot', lambda: os.rmdir(P + '/d/.'))
t('rmdir_dotdot', lambda: os.rmdir(P + '/d/..'))
t('unlink_dir', lambda: os.unlink(P + '/d'))
t('unlink_slash', lambda: os.unlink(P + '/f/'))
t('rename_dot', lambda: os.rename(P + '/d/.', P + '/e'))
t('rename_into_self', lambda: os.rename(P + '/d', P + '/d/x'))
t('rename_dir_onto_file', lambda: os.rename(P + '/d', P + '/f'))
t('rename_file_onto_dir', lambda: os.rename(P + '/f', P + '/d'))
t('link_slash', lambda: os.link(P + '/f', P + '/g/'))
t('symlink_exists', lambda: os.symlink('x', P + '/linkd'))
t('symlink_slash', lambda: os.symlink('x', P + '/newlink/'))
t('chdir_file', lambda: os.chdir(P + '/f'))
t('long_name_ok', lambda: os.close(os.open(P + '/' + 'c' * 255, os.O_WRONLY | os.O_CREAT, 0o644)))
"#;
        let guest = fx.run(&[PYTHON, "-c", code, "/nix/t"]);
        let reference = fx.plain(&[PYTHON, "-c", code, &format!("{}/t", roots.ref_prefix())]).run();
        assert_same(&guest, &reference, &roots.ref_prefix());
    }
}

/// Creates `depth` nested directories named `comp` under host directory `base`, and a
/// file `leaf` in the innermost, with *at() calls (the full host path is longer than
/// PATH_MAX, so no single path can reach it). All owned by the test user.
fn make_deep_tree(fx: &Fixture, base: &Path, comp: &str, depth: usize) {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let user = ptnix_tests::env::env().user;
    let cbase = CString::new(base.as_os_str().as_bytes()).unwrap();
    let c = CString::new(comp).unwrap();
    // SAFETY: plain *at() syscalls on fds this function owns.
    unsafe {
        let mut fd = libc::open(cbase.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
        assert!(fd >= 0, "open {}", base.display());
        for _ in 0..depth {
            assert_eq!(
                libc::mkdirat(fd, c.as_ptr(), 0o755),
                0,
                "mkdirat: {}",
                std::io::Error::last_os_error()
            );
            let nfd = libc::openat(fd, c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            assert!(nfd >= 0);
            libc::close(fd);
            fd = nfd;
            if let Some(u) = user {
                assert_eq!(libc::fchown(fd, u.uid, u.gid), 0);
            }
        }
        let leaf = CString::new("leaf").unwrap();
        let f = libc::openat(fd, leaf.as_ptr(), libc::O_WRONLY | libc::O_CREAT, 0o644);
        assert!(f >= 0);
        assert_eq!(libc::write(f, b"deep\n".as_ptr().cast(), 5), 5);
        if let Some(u) = user {
            assert_eq!(libc::fchown(f, u.uid, u.gid), 0);
        }
        libc::close(f);
        libc::close(fd);
    }
    let _ = fx;
}

both_modes! {
    /// PATH_MAX (4096 with the NUL) limits the guest path, as on a real /nix: a
    /// 4095-byte path that does not exist is ENOENT, one byte more is ENAMETOOLONG.
    /// (The host path is longer: passing it on naively would give ENAMETOOLONG early.)
    fn path_max_counts_the_guest_path(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = r#"
import os, errno
def e(f, p):
    try: f(p); return 'OK'
    except OSError as x: return errno.errorcode[x.errno]
for base in ['/nix/store/', '/tmp/']:
    p = (base + ('x' * 200 + '/') * 30)[:4094] + 'y'
    assert len(p) == 4095
    print(e(os.stat, p), e(os.stat, p + 'z'), e(os.lstat, p), e(os.lstat, p + 'z'), e(lambda q: os.open(q, os.O_RDONLY), p + 'z'))
"#;
        fx.py(code, &[] as &[&str]).expect_stdout(
            "ENOENT ENAMETOOLONG ENOENT ENAMETOOLONG ENAMETOOLONG\nENOENT ENAMETOOLONG ENOENT ENAMETOOLONG ENAMETOOLONG\n",
        );
    }

    /// A file whose guest path is under PATH_MAX but whose host path (STORE/nix/...) is
    /// over it still opens, as it would on a real /nix.
    fn deep_path_longer_than_path_max_on_host(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        // /nix/store/ + 16 * (253 + 1) + "leaf" = 4079 bytes: under PATH_MAX in the
        // guest, over it on the host once STORE is prepended.
        let comp = "d".repeat(253);
        fx.mkdirs(&fx.host("/nix/store"));
        make_deep_tree(&fx, &fx.host("/nix/store"), &comp, 16);
        let guest = format!("/nix/store/{}leaf", format!("{comp}/").repeat(16));
        assert_eq!(guest.len(), 4079);
        assert!(fx.store.as_os_str().len() + guest.len() >= 4096, "host path not longer than PATH_MAX");
        fx.py("import sys, os\nprint(open(sys.argv[1]).read(), end='')\nos.chdir(os.path.dirname(sys.argv[1]))\nprint(os.getcwd() == os.path.dirname(sys.argv[1]))", &[&guest])
            .expect_stdout("deep\nTrue\n");
    }
}
