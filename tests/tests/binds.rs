//! `ptnix run -b HOST:GUEST` as launchers use it: binds whose guest path (and its
//! parents) do not exist on the host, nested binds (the most specific wins), a
//! directory shown at two guest paths, file binds, and the same under proot mode.
//! Nothing is created on the host outside ptnix's private directory, which is gone
//! when ptnix exits.

use ptnix_tests::*;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A name under `/` that the host does not have.
fn fresh_top(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let name = format!("ptnix-test-guest-only-{}-{nanos:x}-{tag}", std::process::id());
    assert!(std::fs::symlink_metadata(Path::new("/").join(&name)).is_err(), "/{name} exists on the host");
    name
}

/// `ptnix run --store STORE [mode] -b HOST:GUEST... -- /bin/sh -c SCRIPT`.
fn run_with(fx: &Fixture, binds: &[(&Path, &str)], script: &str) -> Output {
    let mut args: Vec<OsString> = vec!["run".into(), "--store".into(), fx.store.clone().into()];
    args.extend(fx.mode.flags().iter().map(OsString::from));
    for (h, g) in binds {
        args.push("-b".into());
        args.push(format!("{}:{g}", h.display()).into());
    }
    args.extend(["--".into(), "/bin/sh".into(), "-c".into(), script.into()]);
    fx.ptnix(&args).run()
}

/// A host directory of the fixture holding `f` (contents `name`), and `bin/tool`.
fn host_dir(fx: &Fixture, name: &str) -> PathBuf {
    let d = fx.dir.join("binds").join(name);
    fx.write(d.join("f"), name);
    fx.write(d.join("bin/tool"), format!("tool of {name}"));
    d
}

both_modes! {
    /// `-b DIR:/TOP/deep/mnt` on a host without /TOP: / lists TOP once, /TOP holds
    /// `deep`, /TOP/deep holds `mnt`, both are read-only directories, the bind's files
    /// are there, and the host never gets /TOP.
    fn guest_path_whose_parents_do_not_exist(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        let h = host_dir(&fx, "deepbind");
        let top = fresh_top(&format!("{m:?}"));
        let guest = format!("/{top}/deep/mnt");
        let script = format!(
            "ls -a / | grep -c '^{top}$'; ls -A /{top}; ls -A /{top}/deep; stat -c '%F %a' /{top} /{top}/deep; \
             cat /{top}/deep/mnt/f; echo; cd /{top}/deep/mnt/bin && pwd -P && cat tool; echo; \
             mkdir /{top}/new 2>&1 | sed 's/.*: //'; test -e /{top}/new || echo no-new"
        );
        let out = run_with(&fx, &[(&h, &guest)], &script);
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(
            out.stdout(),
            format!(
                "1\ndeep\nmnt\ndirectory 555\ndirectory 555\ndeepbind\n/{top}/deep/mnt/bin\ntool of deepbind\nPermission denied\nno-new\n"
            ),
            "{out}"
        );
        assert!(std::fs::symlink_metadata(Path::new("/").join(&top)).is_err(), "/{top} was created on the host");
    }

    /// Nested binds: `-b A:W/g/outer -b B:W/g/outer/inner` (W/g does not exist on the
    /// host). The most specific bind wins, and the outer listing shows `inner`.
    fn nested_binds(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        let (a, b) = (host_dir(&fx, "outer"), host_dir(&fx, "inner"));
        let g = fx.work.join("g").display().to_string();
        let script = format!("ls {g}; ls {g}/outer; cat {g}/outer/f {g}/outer/inner/f; echo; ls {g}/outer/inner");
        let out = run_with(&fx, &[(&a, &format!("{g}/outer")), (&b, &format!("{g}/outer/inner"))], &script);
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout(), "outer\nbin\nf\ninner\nouterinner\nbin\nf\n", "{out}");
        assert!(!Path::new(&g).exists(), "{g} was created on the host");
    }

    /// The issue's example: a tree at /usr and its bin/ also at /bin (here under a
    /// directory of the fixture): both guest paths reach the same files.
    fn a_directory_and_its_subdirectory_at_two_places(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        let usr = host_dir(&fx, "usr");
        let g = fx.work.join("root2").display().to_string();
        let script = format!("ls {g}; cat {g}/usr/bin/tool; echo; cat {g}/bin/tool; echo; ls {g}/bin");
        let out = run_with(&fx, &[(&usr, &format!("{g}/usr")), (&usr.join("bin"), &format!("{g}/bin"))], &script);
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout(), "bin\nusr\ntool of usr\ntool of usr\ntool\n", "{out}");
    }

    /// A file bound at a guest path whose directory does not exist.
    fn file_bind_under_missing_directories(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        let h = host_dir(&fx, "conf");
        let g = fx.work.join("etc2/app").display().to_string();
        let out = run_with(&fx, &[(&h.join("f"), &format!("{g}/app.conf"))], &format!("ls {g}; cat {g}/app.conf"));
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(out.stdout(), "app.conf\nconf", "{out}");
    }

    /// ptnix's private directory (stand-ins included) is removed when it exits: the
    /// tracee finds its stand-in's host path by inode, which is gone afterwards.
    fn private_directory_is_removed(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        let h = host_dir(&fx, "gone");
        let g = fx.work.join("missing").display().to_string();
        let script = format!("i=$(stat -c %i {g}); find /tmp -maxdepth 3 -inum $i -path '/tmp/pt*' 2>/dev/null; true");
        let out = run_with(&fx, &[(&h, &format!("{g}/y/mnt"))], &script);
        assert_eq!(out.code(), 0, "{out}");
        let found = out.stdout();
        let standin = found.trim();
        assert!(standin.starts_with("/tmp/pt") && standin.contains("/g/"), "stand-in not found:\n{out}");
        let private = &standin[..standin.find("/g/").unwrap()];
        assert!(!Path::new(private).exists(), "{private} is left after ptnix exited");
        assert!(!Path::new(&g).exists(), "{g} was created on the host");
    }
}

both_modes! {
    /// proot mode with a bind whose parents the empty root lacks: listed, reachable,
    /// and EMPTYROOT stays empty.
    fn proot_bind_below_missing_directories(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        let h = host_dir(&fx, "pbind");
        let empty = fx.work.join("emptyroot");
        fx.mkdirs(&empty);
        let mut args: Vec<OsString> = vec!["proot".into(), "-r".into(), empty.clone().into()];
        for top in ["/bin", "/usr", "/lib", "/lib64", "/etc"] {
            if let Ok(real) = std::fs::canonicalize(top) {
                args.push("-b".into());
                args.push(format!("{}:{top}", real.display()).into());
            }
        }
        args.push("-b".into());
        args.push(format!("{}:/opt/tool/data", h.display()).into());
        args.extend(["/bin/sh".into(), "-c".into(), "ls /; ls /opt /opt/tool; cat /opt/tool/data/f".into()]);
        let out = fx.proot(args).run();
        assert_eq!(out.code(), 0, "{out}");
        let stdout = out.stdout();
        assert!(stdout.lines().any(|l| l == "opt"), "{out}");
        assert!(stdout.ends_with("/opt:\ntool\n\n/opt/tool:\ndata\npbind"), "{out}");
        let left: Vec<_> = std::fs::read_dir(&empty).unwrap().map(|d| d.unwrap().file_name()).collect();
        assert!(left.is_empty(), "EMPTYROOT is not empty: {left:?}");
    }
}

both_modes! {
    /// proot's -R: the rootfs plus the host's /etc files, /dev, /proc, /tmp, ... and
    /// $HOME. Into an empty root they need stand-ins for /etc and $HOME's parents.
    fn proot_recommended_binds_into_an_empty_root(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        let empty = fx.work.join("emptyroot");
        fx.mkdirs(&empty);
        let mut args: Vec<OsString> = vec!["proot".into(), "-R".into(), empty.clone().into()];
        for top in ["/bin", "/usr", "/lib", "/lib64"] {
            if let Ok(real) = std::fs::canonicalize(top) {
                args.push("-b".into());
                args.push(format!("{}:{top}", real.display()).into());
            }
        }
        let script = "ls /etc; grep -c . /etc/passwd >/dev/null && echo passwd-ok; test -c /dev/null && echo dev-ok; \
                      test -d /proc/self && echo proc-ok; test -d \"$HOME\" && echo home-ok";
        args.extend(["/bin/sh".into(), "-c".into(), script.into()]);
        let out = fx.proot(args).run();
        assert_eq!(out.code(), 0, "{out}");
        let mut etc: Vec<&str> = ["host.conf", "hosts", "hostname", "localtime", "nsswitch.conf", "passwd", "group", "resolv.conf"]
            .into_iter()
            .filter(|f| Path::new("/etc").join(f).exists())
            .collect();
        etc.sort();
        let want = format!("{}\npasswd-ok\ndev-ok\nproc-ok\nhome-ok\n", etc.join("\n"));
        assert_eq!(out.stdout(), want, "{out}");
        let left: Vec<_> = std::fs::read_dir(&empty).unwrap().map(|d| d.unwrap().file_name()).collect();
        assert!(left.is_empty(), "EMPTYROOT is not empty: {left:?}");
    }
}
