//! The in-process fast path (the tracer's `shim`): dynamically linked programs make
//! their stat, lstat, statx, getxattr, lgetxattr, access and open calls on store paths
//! themselves (and readlink, listxattr, llistxattr). Whatever it answers must be what ptnix answers without it (`--no-shim`),
//! for every kind of path: symlinks with absolute /nix targets, relative ones, dangling
//! ones, symlinked directories, `.` and `..`, trailing slashes, missing names, files
//! used as directories, unsearchable directories. And the program must not see it.

use ptnix_tests::*;

/// Each call on each path: its result (the fields that do not depend on the time) or
/// its errno.
const CALLS: &str = r#"
import ctypes, fcntl, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.statx.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_char_p]
libc.access.argtypes = [ctypes.c_char_p, ctypes.c_int]
def res(f):
    try:
        return f()
    except OSError as e:
        return "E" + str(e.errno)
def st(s):
    return (oct(s.st_mode), s.st_size, s.st_ino, s.st_nlink)
def statx(p, flags):
    buf = ctypes.create_string_buffer(256)
    if libc.statx(-100, p.encode(), flags, 0xfff, buf) != 0:
        return "E" + str(ctypes.get_errno())
    raw = buf.raw
    return (oct(int.from_bytes(raw[28:30], "little")), int.from_bytes(raw[40:48], "little"), int.from_bytes(raw[32:40], "little"))
libc.fstatat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
def fst(p):
    # fstat, and fstatat and statx of "" with AT_EMPTY_PATH, of a descriptor of p
    # (and of the cwd: AT_FDCWD).
    fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW) if not os.path.islink(p) else os.open(p, os.O_PATH | os.O_NOFOLLOW)
    try:
        buf = ctypes.create_string_buffer(256)
        at = libc.fstatat(fd, b"", buf, 0x1000)
        cwd = libc.fstatat(-100, b"", buf, 0x1000)
        sx = libc.statx(fd, b"", 0x1000, 0xfff, buf)
        return (st(os.fstat(fd)), at, cwd, sx, int.from_bytes(buf.raw[40:48], "little"))
    finally:
        os.close(fd)
def access(p, m):
    return "ok" if libc.access(p.encode(), m) == 0 else "E" + str(ctypes.get_errno())
def opened(p, flags, mode=0o644):
    fd = os.open(p, flags, mode)
    s = os.fstat(fd)
    fl = fcntl.fcntl(fd, fcntl.F_GETFL)
    os.close(fd)
    return (oct(s.st_mode), s.st_size, oct(fl))
libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.dirfd.argtypes = [ctypes.c_void_p]
libc.closedir.argtypes = [ctypes.c_void_p]
def dirflags(p):
    d = libc.opendir(p.encode())
    if not d:
        return "E" + str(ctypes.get_errno())
    fd = libc.dirfd(d)
    r = (oct(fcntl.fcntl(fd, fcntl.F_GETFL)), fcntl.fcntl(fd, fcntl.F_GETFD))
    libc.closedir(d)
    return r
for p in sys.argv[1:]:
    print(p)
    print("  stat", res(lambda: st(os.stat(p))))
    print("  lstat", res(lambda: st(os.lstat(p))))
    print("  statx", statx(p, 0), statx(p, 0x100))
    print("  access", access(p, 0), access(p, 4), access(p, 2), access(p, 1))
    print("  xattr", res(lambda: os.getxattr(p, "user.x")), res(lambda: os.getxattr(p, "user.x", follow_symlinks=False)))
    print("  fstat", res(lambda: fst(p)))
    print("  readlink", res(lambda: os.readlink(p)))
    print("  listxattr", res(lambda: sorted(os.listxattr(p))), res(lambda: sorted(os.listxattr(p, follow_symlinks=False))))
    print("  open", res(lambda: opened(p, os.O_RDONLY)), res(lambda: opened(p, os.O_RDONLY | os.O_NOFOLLOW)), res(lambda: opened(p, os.O_RDONLY | os.O_DIRECTORY)))
    print("  opendir", res(lambda: sorted(os.listdir(p))), dirflags(p))
"#;

/// On each path: the calls that make, change and remove entries, each on a fresh
/// name next to it (or on it, where the call is meant to find it).
const WRITES: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class TV(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("u", ctypes.c_long)]
def res(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return "E" + str(e.errno)
def lutimes(p):
    tv = (TV * 2)(TV(7, 5), TV(9, 999999))
    return "ok" if libc.lutimes(p.encode(), tv) == 0 else "E" + str(ctypes.get_errno())
# Both times UTIME_OMIT: the kernel answers 0 before it looks at the path.
def omit(p, flags):
    ts = (TV * 2)(TV(0, (1 << 30) - 2), TV(0, (1 << 30) - 2))
    return "ok" if libc.utimensat(-100, p.encode(), ts, flags) == 0 else "E" + str(ctypes.get_errno())
for p in sys.argv[1:]:
    n = p.rstrip("/") + ".new"
    print(p)
    print("  mkdir", res(lambda: os.mkdir(n, 0o750)), res(lambda: os.mkdir(p)), res(lambda: os.mkdir(n)))
    print("  symlink", res(lambda: os.symlink("/nix/store/bbb-other/file", n + "l")), res(lambda: os.symlink("x", p)))
    print("  rename", res(lambda: os.rename(n, n + "r")), res(lambda: os.rename(n + "l", n + "l2")))
    print("  chmod", res(lambda: os.chmod(p, 0o755)), res(lambda: os.chmod(n + "r", 0o700)))
    print("  lchown", res(lambda: os.lchown(p, -1, -1)), res(lambda: os.lchown(n + "l2", os.getuid(), -1)))
    print("  utime", res(lambda: os.utime(p, ns=(1, 1))), res(lambda: os.utime(n + "l2", ns=(2, 3), follow_symlinks=False)), lutimes(n + "l2"), lutimes(p))
    print("  omit", omit(p, 0), omit(p + ".missing", 0), omit(p + ".missing", 0x100))
    print("  unlink", res(lambda: os.unlink(n + "l2")), res(lambda: os.unlink(p + ".missing")))
    print("  rmdir", res(lambda: os.rmdir(n + "r")), res(lambda: os.rmdir(p)))
"#;

/// How a run has the fast path.
#[derive(Clone, Copy, PartialEq)]
enum Shim {
    On,
    Off,
    /// As on a kernel without openat2 (before Linux 5.6), where the object walks
    /// directories name by name (shim.c `walk_dir`).
    NoOpenat2,
    /// As where the object cannot be kept in memory (no memfd before Linux 3.17, or
    /// an executable one refused): in a file in ptnix's private directory.
    InFile,
}

impl Shim {
    fn set(self, fx: &mut Fixture) {
        match self {
            Shim::On => {}
            Shim::Off => fx.flags.push("--no-shim"),
            Shim::NoOpenat2 => fx.envs.push(("PTNIX_TEST_NO_OPENAT2", "1")),
            Shim::InFile => fx.envs.push(("PTNIX_TEST_SHIM_FILE", "1")),
        }
    }
}

/// What WRITES does in a fresh store of [`store_paths`], with or without the fast
/// path: on every one of those paths, or (`lone`) on some names in a guest directory
/// it runs in. Its output, and the store's tree after it.
fn writes_and_tree(m: Mode, shim: Shim, lone: Option<(&str, &[&str])>) -> (String, String) {
    let mut fx = Fixture::new(m);
    let paths = store_paths(&fx);
    let mut argv = vec![PYTHON.to_string(), "-c".into(), WRITES.into()];
    shim.set(&mut fx);
    let out = match lone {
        Some((dir, names)) => {
            argv.extend(names.iter().map(|n| n.to_string()));
            fx.cmd(&argv).cwd(&fx.host(dir)).run().ok()
        }
        None => {
            // Under /nix and in the fixture's host directory: not the host system's
            // own files (lchown(-1, -1) of another's file changes its ctime).
            let hd = host_dir(&fx).display().to_string();
            argv.extend(paths.into_iter().filter(|p| p == "/nix" || p.starts_with("/nix/") || p.starts_with(&hd)));
            fx.run(&argv).ok()
        }
    };
    let find = "find . -path ./store/ccc-locked -prune -o -path ./locked -prune -o -printf '%p %y %m %s %l %T@\n' | sort";
    let script = format!("cd /nix && {find} && cd {} && {find}", host_dir(&fx).display());
    let tree = fx.run(&["/bin/sh", "-c", &script]).ok();
    // Times the script did not set are the fixture's own, different per run.
    let tree: Vec<String> = tree
        .stdout()
        .lines()
        .map(|l| match l.rsplit_once(' ') {
            Some((head, t)) if t.parse::<f64>().is_ok_and(|t| t > 1e6) => format!("{head} now"),
            _ => l.to_string(),
        })
        .collect();
    // Each run has a fixture of its own: its host directory is named alike.
    let hd = host_dir(&fx).display().to_string();
    (out.stdout().replace(&hd, "HOSTDIR"), tree.join("\n"))
}

/// The stat, statx and open calls a `--stats` report counts as reaching ptnix.
fn path_calls_seen(stderr: &str) -> u64 {
    calls_seen(stderr, "newfstatat") + calls_seen(stderr, "statx") + calls_seen(stderr, "openat")
}

/// Python's stat and open of `dir/f0` to `dir/f199` (a guest directory of `fx` that
/// holds them), then `last`, run as `fx` is and again with `binds` (`HOST:GUEST`)
/// added, printing `printed[0]` and `printed[1]`: the path calls that reached ptnix
/// in each run. With a bind above the files every call reaches it (more than 350
/// more than before in the seccomp modes, all 400 without the filter).
fn calls_before_and_after_binds(fx: &mut Fixture, dir: &str, last: &str, binds: &[String], printed: [&str; 2]) -> (u64, u64) {
    let code = format!("import os\nfor i in range(200):\n    os.stat('{dir}/f%d' % i)\n    os.close(os.open('{dir}/f%d' % i, os.O_RDONLY))\n{last}");
    fx.flags.push("--stats");
    let count = |fx: &Fixture, want: &str| {
        let out = fx.run(&[PYTHON, "-c", &code]).ok();
        assert_eq!(out.stdout(), want, "{out}");
        path_calls_seen(&out.stderr())
    };
    let plain = count(fx, printed[0]);
    for b in binds {
        fx.flags.push(Box::leak(format!("--bind={b}").into_boxed_str()));
    }
    let bound = count(fx, printed[1]);
    if fx.mode.seccomp() {
        assert!(bound >= plain + 350, "{plain} calls reached ptnix, {bound} with {binds:?}");
    } else {
        assert!(plain >= 400 && bound >= 400, "{plain} {bound}");
    }
    (plain, bound)
}

/// The user notifications and stops a `--stats` report counts for `name`.
fn calls_seen(stderr: &str, name: &str) -> u64 {
    stderr
        .lines()
        .filter(|l| l.contains("user notifications") || l.contains("entry stops by syscall"))
        .flat_map(|l| l.split([',', '(', ':']))
        .filter_map(|part| {
            let mut w = part.split_whitespace();
            (w.next() == Some(name)).then(|| w.next()?.trim_end_matches(')').parse::<u64>().ok()).flatten()
        })
        .sum()
}

/// CALLS on every kind of store path answers the same with the fast path as `shim`
/// says, and without it.
fn answers_as_without(m: Mode, shim: Shim) {
    let mut fx = Fixture::new(m);
    let paths = store_paths(&fx);
    answers_in(&mut fx, PYTHON, &paths, shim);
}

/// [`answers_as_without`] in `fx`, whose store has [`store_paths`], run by `python`.
/// The `--stats` report of the run with the fast path.
fn answers_in(fx: &mut Fixture, python: &str, paths: &[String], shim: Shim) -> String {
    let saved = (fx.flags.clone(), fx.envs.clone());
    let mut argv = vec![python.to_string(), "-c".into(), CALLS.into()];
    argv.extend(paths.iter().cloned());
    fx.flags.push("--stats");
    shim.set(fx);
    let with = fx.run(&argv).ok();
    // The same store: the inode numbers printed are the same ones.
    (fx.flags, fx.envs) = saved.clone();
    Shim::Off.set(fx);
    let without = fx.run(&argv).ok();
    (fx.flags, fx.envs) = saved;
    assert_eq!(with.stdout(), without.stdout(), "\nwith the fast path:\n{with}\nwithout:\n{without}");
    // The answers are the real ones, not two equal wrong ones.
    let out = with.stdout();
    assert!(out.contains("/nix/store/aaa-pkg/abs\n  stat ('0o100644', 6,"), "\n{out}");
    assert!(out.contains("/nix/store/aaa-pkg/dangling\n  stat E2\n  lstat ('0o120777',"), "\n{out}");
    assert!(out.contains("/nix/store/aaa-pkg/bin/tool/\n  stat E20\n"), "\n{out}");
    assert!(out.contains("/nix/store/ccc-locked/inner/f\n  stat E13\n"), "\n{out}");
    assert!(out.contains("/nix/store/ccc-locked/inner/missing/x\n  stat E13\n  lstat E13\n  statx E13 E13\n  access E13 E13 E13 E13\n"), "\n{out}");
    assert!(out.contains("/nix/store/aaa-pkg/missing/x\n  stat E2\n  lstat E2\n  statx E2 E2\n  access E2 E2 E2 E2\n"), "\n{out}");
    assert!(out.contains("/nix/store/aaa-pkg/bin/tool/x/y\n  stat E20\n  lstat E20\n  statx E20 E20\n  access E20 E20 E20 E20\n"), "\n{out}");
    assert!(out.contains("  readlink /nix/store/bbb-other/file\n"), "\n{out}");
    assert!(out.contains("/hostdir/tostore\n  stat ('0o100644', 6,"), "\n{out}");
    assert!(out.contains("/hostdir/dirlink/file\n  stat ('0o100644', 6,"), "\n{out}");
    // `/` lists `nix`, which ptnix adds.
    let root = &out[out.find("\n/\n  stat ('0o40755'").expect("no / in the output")..];
    let listing = root.lines().find(|l| l.starts_with("  opendir")).unwrap();
    assert!(listing.contains("'nix'"), "{listing}");
    with.stderr()
}

/// 600 stat, lstat and open calls on store paths and 200 opendir: made without a
/// stop or a notification in the seccomp modes (but opendir's fstat); without the
/// filter there is no fast path, and every one reaches ptnix.
fn store_calls_reach_ptnix_rarely(m: Mode, shim: Shim) {
    calls_in(&mut Fixture::new(m), PYTHON, shim);
}

/// [`store_calls_reach_ptnix_rarely`] in `fx`, run by `python`.
fn calls_in(fx: &mut Fixture, python: &str, shim: Shim) {
    let m = fx.mode;
    let saved = (fx.flags.clone(), fx.envs.clone());
    for i in 0..200 {
        fx.write(fx.host(format!("/nix/store/ddd-many/f{i}")), "x");
    }
    let code = "import os\nfor i in range(200):\n    os.stat('/nix/store/ddd-many/f%d' % i)\n    os.lstat('/nix/store/ddd-many/f%d' % i)\n    os.close(os.open('/nix/store/ddd-many/f%d' % i, os.O_RDONLY))\nfor i in range(200):\n    assert len(os.listdir('/nix/store/ddd-many')) == 200\nprint('done')";
    fx.flags.push("--stats");
    shim.set(fx);
    let out = fx.run(&[python, "-c", code]).ok();
    (fx.flags, fx.envs) = saved;
    assert_eq!(out.stdout(), "done\n");
    let err = out.stderr();
    let seen = path_calls_seen(&err);
    let opens = calls_seen(&err, "openat");
    if m.seccomp() {
        // Python's own start makes about 130 (host paths); opendir's fstat, an
        // fstatat of "" in glibc 2.33 to 2.38, 200 more. Its open makes none.
        assert!(seen < 500 && opens < 150, "{seen} calls reached ptnix, {opens} opens\n{out}");
    } else {
        // (fdopendir's fstat reaches ptnix only with glibc 2.33 to 2.38.)
        assert!(seen >= 800, "{seen} calls reached ptnix\n{out}");
    }
}

both_modes! {
    /// Every call on every kind of store path answers as without the fast path.
    fn answers_as_without_it(m: Mode) {
        require!(Python3);
        answers_as_without(m, Shim::On);
    }

    /// On a kernel without openat2 (Linux 4.17 to 5.5, or a container policy older
    /// than it; ptnix's tests make the object act so) it walks the directories name by name: every call on
    /// every kind of store path answers, and every write leaves the store, as
    /// without the fast path; opens return the numbers they would (the walk's own
    /// descriptor never takes the lowest); and store calls still reach ptnix only
    /// where they would with openat2.
    fn without_openat2_as_without_it(m: Mode) {
        require!(Python3);
        answers_as_without(m, Shim::NoOpenat2);
        let (with, without) = (writes_and_tree(m, Shim::NoOpenat2, None), writes_and_tree(m, Shim::Off, None));
        assert_eq!(with.0, without.0, "results differ");
        assert_eq!(with.1, without.1, "trees differ");
        // os.open always asks for O_CLOEXEC (PEP 446); libc's open is asked without.
        let code = "import ctypes, os\nlibc = ctypes.CDLL(None)\nfs = [os.open('/nix/store/bbb-other/file', os.O_RDONLY) for i in range(3)]\nos.close(fs[1])\nfs.append(libc.open(b'/nix/store/bbb-other/sub/deep', os.O_RDONLY))\nfs.append(os.open('/nix/store/aaa-pkg/new', os.O_WRONLY | os.O_CREAT, 0o600))\nprint([f - fs[0] for f in fs], os.get_inheritable(fs[3]), os.get_inheritable(fs[0]), oct(os.stat(fs[4]).st_mode & 0o777))";
        let mut fx = Fixture::new(m);
        store_paths(&fx);
        Shim::NoOpenat2.set(&mut fx);
        fx.run(&[PYTHON, "-c", code]).expect_stdout("[0, 1, 2, 1, 3] True False 0o600\n");
        store_calls_reach_ptnix_rarely(m, Shim::NoOpenat2);
        // A file right below the store (as a .drv is), opened with one number left:
        // the walk's descriptor of the store must not take it.
        fx.write(fx.host("/nix/store/zzz-x.drv"), "Derive()");
        let last = "import os, resource\nlow = os.open('/dev/null', os.O_RDONLY)\nos.close(low)\nresource.setrlimit(resource.RLIMIT_NOFILE, (low + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\nfd = os.open('/nix/store/zzz-x.drv', os.O_RDONLY)\nprint(fd == low, os.read(fd, 8))";
        fx.run(&[PYTHON, "-c", last]).expect_stdout("True b'Derive()'\n");
    }

    /// Lone names (a name without a slash, looked up in the directory the program is
    /// in): every call on every kind of entry answers as without the fast path, which
    /// makes them as they are where ptnix would leave them so (not `nix`, whose
    /// lookup from `/` ptnix translates; not a symlink, for a call that follows it);
    /// and what the calls that write do leaves the same tree.
    fn lone_names_answer_as_without_it(m: Mode) {
        require!(Python3);
        let mut fx = Fixture::new(m);
        store_paths(&fx);
        let pkg = ["abs", "rel", "dangling", "dirlink", "sublink", "hostlink", "bin", "missing", ".", "..", ""];
        let runs: [(std::path::PathBuf, &[&str]); 3] = [
            (fx.host("/nix/store/aaa-pkg"), &pkg),
            (std::path::PathBuf::from("/"), &["nix", "etc", "usr", "bin", "lib64"]),
            (fx.host("/nix"), &["store", "var", "nix"]),
        ];
        let calls = |fx: &Fixture| -> Vec<String> {
            runs.iter()
                .map(|(dir, names)| {
                    let mut argv = vec![PYTHON.to_string(), "-c".into(), CALLS.into()];
                    argv.extend(names.iter().map(|n| n.to_string()));
                    fx.cmd(&argv).cwd(dir).run().ok().stdout()
                })
                .collect()
        };
        let with = calls(&fx);
        fx.flags.push("--no-shim");
        let without = calls(&fx);
        fx.flags.pop();
        for (w, wo) in with.iter().zip(&without) {
            assert_eq!(w, wo, "\nwith the fast path:\n{w}\nwithout:\n{wo}");
        }
        // Real answers: `nix` from `/` is the store's directory, `abs` follows its
        // absolute target into the store.
        assert!(with[1].starts_with("nix\n  stat ('0o40755'"), "{}", with[1]);
        assert!(with[0].starts_with("abs\n  stat ('0o100644', 6,"), "{}", with[0]);
        // Writes on lone names in a store directory: the same results and tree.
        let lone = Some(("/nix/store/aaa-pkg", &["abs", "rel", "dangling", "dirlink", "bin", "new"][..]));
        assert_eq!(writes_and_tree(m, Shim::On, lone), writes_and_tree(m, Shim::Off, lone));
    }

    /// /proc's magic links read by a lone name (`cwd` from a descriptor of
    /// /proc/self, a descriptor's number in /proc/self/fd) show guest paths: the
    /// fast path leaves every lone-name readlink to ptnix, which rewrites them.
    fn proc_links_by_lone_name(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        store_paths(&fx);
        let code = "import os\nd = os.open('/proc/self', os.O_RDONLY)\nprint(os.readlink('cwd', dir_fd=d))\nf = os.open('/nix/store/bbb-other/file', os.O_RDONLY)\nos.chdir('/proc/self/fd')\nprint(os.readlink(str(f)))";
        fx.cmd(&[PYTHON, "-c", code]).cwd(&fx.host("/nix/store/aaa-pkg")).run().expect_stdout("/nix/store/aaa-pkg\n/nix/store/bbb-other/file\n");
    }

    /// Where the object cannot be kept in memory, ptnix writes it into its private
    /// directory: every call answers as without the fast path, and store calls still
    /// need no stop.
    fn in_a_file_as_without_it(m: Mode) {
        require!(Python3);
        answers_as_without(m, Shim::InFile);
        store_calls_reach_ptnix_rarely(m, Shim::InFile);
    }

    /// The object is a sealed memfd of ptnix's, which each program's loader opens as
    /// `/proc/PTNIX/fd/N`: mapped in the program, nothing written to disk (no private
    /// directory is made), and no program can change what the others load.
    fn the_object_is_sealed_in_memory(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = r#"
import os
ppid = int([l.split()[1] for l in open('/proc/self/status') if l.startswith('PPid:')][0])
links = {}
for fd in os.listdir('/proc/%d/fd' % ppid):
    try:
        links[fd] = os.readlink('/proc/%d/fd/%s' % (ppid, fd))
    except OSError:
        pass
objs = [fd for fd, t in links.items() if t.startswith('/memfd:ptnix-shim.so')]
print(len(objs), any(t.startswith('/tmp/pt') for t in links.values()), any('/memfd:ptnix-shim.so' in l and ' r-xp ' in l for l in open('/proc/self/maps')))
for fd in objs:
    p = '/proc/%d/fd/%s' % (ppid, fd)
    print(open(p, 'rb').read(4))
    try:
        with open(p, 'r+b') as f:
            f.write(b'x')
        print('written')
    except OSError as e:
        print('E%d' % e.errno)
"#;
        let expected = if m.seccomp() { "1 False True\nb'\\x7fELF'\nE1\n" } else { "0 False False\n" };
        fx.run(&[PYTHON, "-c", code]).expect_stdout(expected);
    }

    /// A program that restricts itself with Landlock (as sandboxes do) could not open
    /// the object as `/proc/PTNIX/fd/N` from inside its domain: what it starts is
    /// given none, and starts without ld.so's error. (Reads stay allowed by its
    /// ruleset, which handles only the making of regular files.)
    fn a_landlocked_programs_children_start_cleanly(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = r#"
import ctypes, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
attr = ctypes.c_uint64(1 << 8)  # LANDLOCK_ACCESS_FS_MAKE_REG
fd = libc.syscall(444, ctypes.byref(attr), ctypes.c_size_t(8), ctypes.c_uint32(0))
if fd < 0:
    print("no landlock", ctypes.get_errno())
    sys.exit(0)
assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
print("restricted", libc.syscall(446, ctypes.c_int(fd), ctypes.c_uint32(0)))
sys.stdout.flush()
c = subprocess.run([sys.executable, "-c", "print('child')"], capture_output=True, text=True)
print(repr(c.stdout), repr(c.stderr))
"#;
        let out = fx.run(&[PYTHON, "-c", code]).ok();
        if out.stdout().starts_with("no landlock") {
            assert!(!under_ci(), "Landlock is not available here (CI=true: refusing to skip)\n{out}");
            eprintln!("\n*** SKIPPED: Landlock is not available here ***\n");
            return;
        }
        assert_eq!(out.stdout(), "restricted 0\n'child\\n' ''\n", "\n{out}");
    }

    /// The program's calls on store paths are made without a stop or a notification
    /// (seccomp modes); without the filter there is no fast path, and nothing changes.
    fn store_calls_need_no_stop(m: Mode) {
        require!(Python3);
        store_calls_reach_ptnix_rarely(m, Shim::On);
    }

    /// Below /nix outside the store (Nix's database, profiles, gcroots), where all of
    /// /nix maps by prefix: the calls need no stop or notification either (seccomp
    /// modes). With a bind inside /nix the object leaves them to ptnix.
    fn nix_var_calls_need_no_stop(m: Mode) {
        require!(Python3);
        let mut fx = Fixture::new(m);
        for i in 0..200 {
            fx.write(fx.host(format!("/nix/var/nix/db/f{i}")), "x");
        }
        let extra = fx.dir.join("extra");
        fx.mkdirs(&extra);
        let binds = [format!("{}:/nix/var/extra", extra.display())];
        let (plain, bound) = calls_before_and_after_binds(&mut fx, "/nix/var/nix/db", "print('done')", &binds, ["done\n", "done\n"]);
        // Python's own start makes about 40 (its loader's).
        assert!(!m.seccomp() || plain < 250, "{plain} calls reached ptnix, {bound} with a bind in /nix");
    }

    /// Host paths that ptnix leaves as they are (no symlink on the way, no bind below
    /// or above them): the calls need no stop or notification either (seccomp
    /// modes); below a bind, or on its parent directory (whose listing ptnix
    /// changes), they reach ptnix.
    fn host_calls_need_no_stop(m: Mode) {
        require!(Python3);
        let mut fx = Fixture::new(m);
        let hd = host_dir(&fx);
        for i in 0..200 {
            fx.write(hd.join(format!("d/f{i}")), "x");
        }
        // A bind at HD/mnt (listed in HD, which then holds d and mnt), and HD/d bound
        // to itself: its files are then below a bind.
        let other = fx.dir.join("other");
        fx.mkdirs(&other);
        let h = hd.display();
        let binds = [format!("{}:{h}/mnt", other.display()), format!("{h}/d:{h}/d")];
        let last = format!("print(sorted(os.listdir('{h}')))");
        let (plain, bound) = calls_before_and_after_binds(&mut fx, &format!("{h}/d"), &last, &binds, ["['d']\n", "['d', 'mnt']\n"]);
        // Python's own start makes about 40 (its loader's).
        assert!(!m.seccomp() || plain < 100, "{plain} calls reached ptnix, {bound} with binds");
    }

    /// What a PATH search, an include search or a test for a file mostly asks about:
    /// names that are not there, in directories that are, that are not, or that the
    /// caller may not search, in the store and on the host. access and stat of them
    /// need no stop or notification either (seccomp modes); `answers_as_without_it`
    /// checks their answers.
    fn misses_need_no_stop(m: Mode) {
        require!(Python3);
        let mut fx = Fixture::new(m);
        let hd = host_dir(&fx);
        fx.mkdirs(&hd.join("locked/d"));
        std::fs::set_permissions(hd.join("locked"), std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
        fx.mkdirs(&fx.host("/nix/store/eee-bin/bin"));
        let h = hd.display();
        // Each call's errno, counted: 100 of each kind of miss.
        let code = format!(
            "import collections, os\ndef err(f, p):\n    try:\n        f(p)\n        return 'ok'\n    except OSError as e:\n        return e.errno\nn = collections.Counter()\nfor i in range(100):\n    for p in ('/nix/store/eee-bin/bin/t%d', '/nix/store/eee-none%d/bin/t', '{h}/t%d', '{h}/none%d/t', '{h}/locked/t%d', '{h}/locked/d/t%d'):\n        q = p % i\n        n[(p, os.access(q, os.X_OK), err(os.stat, q))] += 1\nprint(sorted(n.items()))"
        );
        let saved = (fx.flags.clone(), fx.envs.clone());
        let mut answers = Vec::new();
        for shim in [Shim::Off, Shim::NoOpenat2] {
            shim.set(&mut fx);
            answers.push(fx.run(&[PYTHON, "-c", &code]).ok().stdout());
            (fx.flags, fx.envs) = saved.clone();
        }
        fx.flags.push("--stats");
        let out = fx.run(&[PYTHON, "-c", &code]).ok();
        assert_eq!(out.stdout(), answers[0], "\n{out}");
        assert_eq!(out.stdout(), answers[1], "without openat2\n{out}");
        assert!(out.stdout().contains("/nix/store/eee-none%d/bin/t', False, 2), 100)"), "\n{out}");
        assert!(out.stdout().contains("/locked/d/t%d', False, 13), 100)"), "\n{out}");
        let err = out.stderr();
        let seen = path_calls_seen(&err) + calls_seen(&err, "access");
        if m.seccomp() {
            // Python's own start makes about 40 (its loader's).
            assert!(seen < 150, "{seen} calls reached ptnix\n{out}");
        } else {
            assert!(seen >= 1200, "{seen} calls reached ptnix\n{out}");
        }
    }

    /// ptnix run as root, and a program that drops to another user: ptnix may search
    /// a directory the program may not, and find a symlink into the store there.
    /// The object leaves such a path to ptnix (its own lookup's EACCES is no answer
    /// then), whose answer stands, as without the object.
    fn a_program_that_dropped_root_gets_ptnixs_answers(m: Mode) {
        require!(Root, Python3);
        let mut fx = Fixture::new(m);
        store_paths(&fx);
        let hd = host_dir(&fx);
        let locked = hd.join("rootonly");
        fx.mkdirs(&locked);
        fx.symlink("/nix/store/bbb-other", locked.join("link"));
        std::os::unix::fs::chown(&locked, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        // ptnix takes only a store of its own user's.
        let chown = std::process::Command::new("chown").args(["-R", "0:0"]).arg(&fx.store).status().unwrap();
        assert!(chown.success());
        std::os::unix::fs::chown(&fx.dir, Some(0), Some(0)).unwrap();
        let user = ptnix_tests::env::env().user.expect("started as root");
        let h = locked.display();
        let code = format!(
            "import os\nos.setgroups([]); os.setgid({}); os.setuid({})\nfor p in ('{h}/link/file', '{h}/link/missing', '{h}/missing/x'):\n    print(p, os.access(p, os.R_OK), os.path.exists(p))",
            user.gid, user.uid
        );
        let mut run = |shim: Shim| {
            let saved = (fx.flags.clone(), fx.envs.clone());
            shim.set(&mut fx);
            let out = fx.cmd(&[PYTHON, "-c", &code]).as_root().run().ok().stdout();
            (fx.flags, fx.envs) = saved;
            out
        };
        let (with, without) = (run(Shim::On), run(Shim::Off));
        assert_eq!(with, without);
        assert!(with.starts_with(&format!("{h}/link/file True True\n")), "{with}");
    }

    /// The program sees the environment it was given: no entry of ptnix's, its own
    /// LD_PRELOAD exactly as it was (and loaded), and the same in its children; a
    /// static program is not given one at all.
    fn the_environment_is_the_programs(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let show = "import os; print(sorted(k for k in os.environ if 'PRELOAD' in k or 'PTNIX' in k), os.environ.get('LD_PRELOAD'))";
        fx.run(&[PYTHON, "-c", show]).expect_stdout("[] None\n");
        // A child started with an explicit environment, and one with LD_PRELOAD.
        let nested = format!(
            "import os, subprocess, sys\nsubprocess.run([sys.executable, '-c', {show:?}], env={{'A': '1'}})\nsubprocess.run([sys.executable, '-c', {show:?}], env={{'LD_PRELOAD': 'libm.so.6'}})"
        );
        fx.run(&[PYTHON, "-c", &nested]).expect_stdout("[] None\n['LD_PRELOAD'] libm.so.6\n");
        // Their own preload is loaded as well.
        let maps = "import sys; print(any('libm.so' in l for l in open('/proc/self/maps')))";
        fx.cmd(&[PYTHON, "-c", maps]).env("LD_PRELOAD", "libm.so.6").run().expect_stdout("True\n");
        if std::path::Path::new("/bin/busybox").exists() {
            let out = fx.run(&["/bin/busybox", "env"]).ok();
            assert!(!out.stdout().contains("PRELOAD") && !out.stdout().contains("PTNIX"), "\n{out}");
        } else {
            assert!(!under_ci(), "busybox-static is missing");
        }
    }

    /// What Nix does to a store path it writes (mkdir, symlink, rename, chmod, lchown,
    /// utime, lutimes, unlink, rmdir) on every kind of store path: the same results
    /// and the same tree as without the fast path.
    fn writes_as_without_it(m: Mode) {
        require!(Python3);
        let (with, without) = (writes_and_tree(m, Shim::On, None), writes_and_tree(m, Shim::Off, None));
        assert_eq!(with.0, without.0, "results differ");
        assert_eq!(with.1, without.1, "trees differ");
        assert!(with.0.contains("mkdir ok") && with.0.contains("rename ok"), "{}", with.0);
        assert!(with.0.contains("/nix/store/aaa-pkg/bin/tool\n") && with.0.contains("  omit ok ok ok\n"), "{}", with.0);
    }

    /// The program's own preloaded interposer (fakeroot, libfaketime) still gets its
    /// calls first: its `access` answers, not the kernel.
    fn their_interposer_comes_first(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        let lib = c_prog_with("interposer", "interposer.so", &["-shared", "-fPIC"]);
        let code = "import ctypes; print(ctypes.CDLL(None).access(b'/nix/store/missing', 0))";
        fx.cmd(&[PYTHON, "-c", code]).env("LD_PRELOAD", &lib).run().expect_stdout("0\n");
        fx.run(&[PYTHON, "-c", code]).expect_stdout("-1\n");
    }

    /// A dynamically linked program without libc (Go's -buildmode=pie) starts: the
    /// object, preloaded into it, finds no libc and stays out of the way.
    fn a_program_without_libc_runs(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        let prog = c_prog_with("nolibc", "nolibc", &["-nostdlib", "-fPIE", "-pie", "-O2"]);
        fx.run(&[prog.as_os_str()]).expect_stdout("nolibc OK\n");
    }

    /// A program built with gcc's -fsanitize=address, whose shared runtime must come
    /// first in the loader's list: it gets no preloaded object, and runs.
    fn an_asan_program_runs(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/store/f"), "x");
        let prog = c_prog_with("asan", "asan", &["-fsanitize=address"]);
        // LeakSanitizer refuses to run under any ptrace (its own message says so).
        fx.cmd(&[prog.as_os_str(), "/nix/store/f".as_ref()]).env("ASAN_OPTIONS", "detect_leaks=0").run().expect_stdout("asan OK\n");
    }

    /// A process that installs a filter of its own, which kills it at any openat2
    /// (an allowlist older than openat2, as sandboxes have): the object makes no
    /// call of its own there after that.
    fn a_filter_of_its_own_turns_it_off(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/store/f"), "x");
        fx.run(&[c_prog("hostile").as_os_str(), "ownkill".as_ref(), "/nix/store/f".as_ref()]).expect_stdout("ownkill OK\n");
    }

    /// A call made from elsewhere than the fast path's gadget is translated even if it
    /// carries the cookie in r9 (as a signal handler entered on the fast path's way
    /// out may: the register keeps its value).
    fn the_cookie_alone_lets_nothing_through(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/store/victim"), "x");
        let out = fx.run(&[c_prog("hostile").as_os_str(), "cookie".as_ref(), "/nix/store/victim".as_ref()]).ok();
        let expected = if m.seccomp() { "cookie OK\n" } else { "cookie none\n" };
        assert_eq!(out.stdout(), expected, "\n{out}");
        assert!(!fx.host("/nix/store/victim").exists() || !m.seccomp(), "\n{out}");
    }

    /// Files a build creates in its output (a writable store directory) get the
    /// process's own umask, and O_EXCL and O_NOFOLLOW keep their meaning.
    fn creates_in_the_store(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        fx.mkdirs(&fx.host("/nix/store/eee-out"));
        fx.symlink("/nix/store/eee-out/target", fx.host("/nix/store/eee-out/link"));
        let code = r#"
import os
os.umask(0o027)
fd = os.open('/nix/store/eee-out/new', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
os.write(fd, b'hi'); os.close(fd)
print(oct(os.stat('/nix/store/eee-out/new').st_mode & 0o777))
for flags in (os.O_CREAT | os.O_EXCL, os.O_CREAT | os.O_NOFOLLOW):
    try:
        os.open('/nix/store/eee-out/new' if flags & os.O_EXCL else '/nix/store/eee-out/link', os.O_WRONLY | flags, 0o600)
        print('opened')
    except OSError as e:
        print(e.errno)
fd = os.open('/nix/store/eee-out/link', os.O_WRONLY | os.O_CREAT, 0o600)
os.close(fd)
print(os.path.exists('/nix/store/eee-out/target'))
"#;
        fx.run(&[PYTHON, "-c", code]).expect_stdout("0o640\n17\n40\nTrue\n");
        assert_eq!(fx.read_string(fx.host("/nix/store/eee-out/new")), "hi");
    }
}

/// tests/c/storecalls.c built with `flags`, copied into the store as
/// `/nix/store/NAME/bin/storecalls` and given the store's loader and libraries
/// (patchelf): its guest path.
fn storecalls(fx: &Fixture, st: &nixstore::Store, name: &str, flags: &[&str]) -> String {
    let prog = c_prog_with("storecalls", &format!("storecalls-{name}"), flags);
    let guest = format!("/nix/store/{name}/bin/storecalls");
    let host = fx.host(&guest);
    nixstore::write_from_child(fx, &host, std::fs::read(&prog).unwrap(), 0o755);
    nixstore::patch(&host, &st.glibc);
    guest
}

// A store program started through glibc's loader (2.35 or newer, as the test store's
// is: the host's) gets the object once, as the loader's auditor, which then binds the
// program's calls to itself (shim.c `la_symbind64`) instead of a preloaded copy.
both_modes! {
    /// Every call on every kind of store path answers as without the fast path, and
    /// the program's store calls reach ptnix as rarely as a preloaded copy lets them.
    fn as_the_loaders_auditor_answers_as_without_it(m: Mode) {
        let Some((mut fx, st)) = nixstore::setup(m) else { return };
        let python = st.tool("python3.11");
        let paths = store_paths(&fx);
        let report = answers_in(&mut fx, &python, &paths, Shim::On);
        if m.seccomp() {
            assert!(report.contains("in-process fast path: at 1 execs, 1 of them as the loader's auditor"), "\n{report}");
        }
        calls_in(&mut fx, &python, Shim::On);
        answers_in(&mut fx, &python, &paths, Shim::NoOpenat2);
    }

    /// The object is mapped once (the auditor's copy alone), and the environment is the
    /// program's: no LD_PRELOAD of ptnix's, nor in its children's. A preloaded
    /// interposer of the program's own (fakeroot) still comes first.
    fn as_the_loaders_auditor_it_is_loaded_once(m: Mode) {
        let Some((fx, st)) = nixstore::setup(m) else { return };
        let python = st.tool("python3.11");
        let show = "import os; print(sum(1 for l in open('/proc/self/maps') if 'shim.so' in l and ' r-xp ' in l), sorted(k for k in os.environ if 'PRELOAD' in k or 'AUDIT' in k or 'PTNIX' in k))";
        let code = format!("import subprocess, sys\nexec({show:?})\nsys.stdout.flush()\nsubprocess.run([sys.executable, '-c', {show:?}])");
        let n = if m.seccomp() { 1 } else { 0 };
        fx.run(&[&python, "-c", &code]).expect_stdout(&format!("{n} []\n{n} []\n"));
        // The program's own preloaded interposer still gets its calls first.
        require!(Cc);
        let lib = c_prog_with("interposer", "interposer.so", &["-shared", "-fPIC"]);
        let code = "import ctypes; print(ctypes.CDLL(None).access(b'/nix/store/missing', 0))";
        fx.cmd(&[&python, "-c", code]).env("LD_PRELOAD", &lib).run().expect_stdout("0\n");
        fx.run(&[&python, "-c", code]).expect_stdout("-1\n");
    }

    /// However the program was linked, its store calls are the object's: through the
    /// PLT, bound lazily or at load (-z now: glibc calls la_symbind for those too),
    /// the auditor binds them; a program that reaches them through its GOT alone
    /// (-fno-plt, as Rust's code is), which the loader binds without asking an
    /// auditor, gets the preloaded copy too.
    fn as_the_loaders_auditor_however_linked(m: Mode) {
        require!(Cc);
        let Some((mut fx, st)) = nixstore::setup(m) else { return };
        fx.write(fx.host("/nix/store/fff-data/file"), "12345");
        fx.flags.push("--stats");
        for (name, flags, copies) in [("lazy", &["-Wl,-z,lazy"][..], 1), ("now", &["-Wl,-z,now"][..], 1), ("noplt", &["-fno-plt"][..], 2)] {
            let prog = storecalls(&fx, st, &format!("ggg-{name}"), flags);
            let out = fx.run(&[&prog, "/nix/store/fff-data/file", "100"]).ok();
            let copies = if m.seccomp() { copies } else { 0 };
            assert_eq!(out.stdout(), format!("storecalls OK 5 {copies}\n"), "{name}\n{out}");
            let err = out.stderr();
            let seen = calls_seen(&err, "newfstatat") + calls_seen(&err, "openat") + calls_seen(&err, "access");
            // 500 calls on store paths and 100 opendir; the loader's own start makes
            // about 10.
            if m.seccomp() {
                assert!(seen < 150, "{name}: {seen} calls reached ptnix\n{out}");
                let report = format!("1 of them as the loader's auditor, which also answers the library search ({} of those preloaded as well", copies - 1);
                assert!(err.contains(&report), "{name}\n{out}");
            } else {
                assert!(seen >= 500, "{name}: {seen} calls reached ptnix\n{out}");
            }
        }
    }
}
