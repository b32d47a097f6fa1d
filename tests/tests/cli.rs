//! The command line: --help, where the store is (--store, PTNIX_STORE, the default
//! under XDG_DATA_HOME or ~/.local/share), --no-seccomp and PTNIX_NO_SECCOMP, `--`,
//! and that arguments, stdin, environment and cwd reach the command unchanged.

use ptnix_tests::*;

/// Number of seccomp filters on a process running `grep` from the status file.
fn seccomp_filters(out: &Output) -> u32 {
    let s = out.stdout();
    s.lines()
        .find_map(|l| l.strip_prefix("Seccomp_filters:"))
        .unwrap_or_else(|| panic!("no Seccomp_filters line\n{out}"))
        .trim()
        .parse()
        .unwrap()
}

/// `ptnix run [mode flags] -- sh -c SCRIPT`, without --store.
fn run_no_store<'a>(fx: &'a Fixture, m: Mode, script: &'a str) -> Invocation {
    let mut args = vec!["run"];
    args.extend(m.flags());
    args.extend(["--", "/bin/sh", "-c", script]);
    fx.ptnix(&args)
}

#[test]
fn help_shows_usage_and_examples() {
    require!(Sh);
    let fx = Fixture::new(Mode::Seccomp);
    for args in [&["--help"][..], &["run", "--help"]] {
        let out = fx.ptnix(args).run().ok();
        let text = out.stdout();
        assert!(text.contains("ptnix run"), "no `ptnix run` in help\n{out}");
        assert!(
            text.to_lowercase().contains("example"),
            "no examples in help\n{out}"
        );
    }
    let out = fx.ptnix(&["run", "--help"]).run().ok();
    for opt in ["--store", "--no-seccomp", "PTNIX_STORE", "PTNIX_NO_SECCOMP", "--no-notif", "PTNIX_NO_NOTIF"] {
        assert!(
            out.stdout().contains(opt),
            "{opt} not documented in `ptnix run --help`\n{out}"
        );
    }
}

/// Misuse of the command line is ptnix's own error: 125 and a "ptnix: " line, never
/// a status the command could have returned.
#[test]
fn usage_errors_exit_125() {
    require!(Sh);
    let fx = Fixture::new(Mode::Seccomp);
    let store = fx.store.to_str().unwrap();
    for args in [
        &["run", "--store", store, "--bogus-option", "--", "true"][..],
        &["no-such-subcommand"],
        &["run", "--store"],
    ] {
        let out = fx.ptnix(args).run();
        assert_eq!(
            out.status.code(),
            Some(125),
            "usage error should be ptnix's own error (125)\n{out}"
        );
        assert!(
            out.stderr().contains("ptnix: ") || out.stderr().contains("error: "),
            "\n{out}"
        );
    }
}

/// A store directory someone else controls is refused (125, a clear message) before
/// anything runs: a `nix` symlink planted in it, a directory of another user, one
/// writable by everyone, a group-writable `nix/store`, a store inside another user's
/// directory.
#[test]
fn untrusted_store_directories_are_refused() {
    require!(Sh, Root);
    let fx = Fixture::new(Mode::Seccomp);
    let elsewhere = fx.work.join("elsewhere");
    fx.mkdirs(&elsewhere.join("nix/store"));
    let planted = fx.work.join("planted");
    fx.mkdirs(&planted);
    std::os::unix::fs::symlink(elsewhere.join("nix"), planted.join("nix")).unwrap();
    // Another user's directory (uid 65534, nobody), and a world-writable one.
    let foreign = fx.work.join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::os::unix::fs::lchown(&foreign, Some(65534), Some(65534)).unwrap();
    let open = fx.work.join("open");
    fx.mkdirs(&open);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    // A group-writable nix/store, and a store inside another user's directory.
    let grp = fx.work.join("grp");
    fx.mkdirs(&grp.join("nix/store"));
    std::fs::set_permissions(grp.join("nix/store"), std::fs::Permissions::from_mode(0o775)).unwrap();
    let theirs = fx.work.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    let inside = theirs.join("store");
    std::fs::create_dir(&inside).unwrap();
    fx.own(&inside);
    std::os::unix::fs::lchown(&theirs, Some(65534), Some(65534)).unwrap();
    let marker = fx.work.join("ran");
    for (dir, why) in [
        (&planted, "is a symlink"),
        (&foreign, "belongs to uid 65534"),
        (&open, "writable by everyone"),
        (&grp, "writable by its group"),
        (&inside, "which belongs to uid 65534"),
    ] {
        let out = fx.ptnix(&["run", "--store", dir.to_str().unwrap(), "--", "/bin/sh", "-c", &format!("touch {}", marker.display())]).run();
        assert_eq!(out.code(), 125, "{out}");
        assert!(out.stderr().starts_with("ptnix: ") && out.stderr().contains(why), "{out}");
        assert!(!marker.exists(), "the command ran");
    }
    assert!(!elsewhere.join("nix/var").exists(), "ptnix created directories through the planted link");
}

both_modes! {
    /// The mode is visible in /proc/self/status: one more seccomp filter in seccomp
    /// mode, none added with --no-seccomp or PTNIX_NO_SECCOMP=1.
    fn mode_selects_seccomp_filter(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        let grep = ["grep", "Seccomp_filters", "/proc/self/status"];
        let base = seccomp_filters(&fx.plain(&grep).run().ok());
        let traced = seccomp_filters(&fx.run(&grep).ok());
        match m {
            Mode::Seccomp | Mode::SeccompStops => assert!(traced > base, "seccomp mode installed no filter ({traced} vs {base})"),
            Mode::Ptrace => assert_eq!(traced, base, "--no-seccomp installed a filter"),
        }
        let mut args = vec!["run", "--store", fx.store.to_str().unwrap(), "--"];
        args.extend(grep);
        let via_env = seccomp_filters(&fx.ptnix(&args).env("PTNIX_NO_SECCOMP", "1").run().ok());
        assert_eq!(via_env, base, "PTNIX_NO_SECCOMP=1 still installed a filter");
    }

    /// PTNIX_STORE picks the store; --store beats it.
    fn ptnix_store_env(m: Mode) {
        require!(Sh);
        let fx = Fixture::new(m);
        let env_store = fx.dir.join("envstore");
        fx.mkdirs(&env_store);
        run_no_store(&fx, m, "echo env > /nix/store/which").env("PTNIX_STORE", &env_store).run().ok();
        assert_eq!(fx.read_string(env_store.join("nix/store/which")), "env\n");
        assert!(env_store.join("nix/var/nix").is_dir());
        fx.cmd(&["/bin/sh", "-c", "echo flag > /nix/store/which"]).env("PTNIX_STORE", &env_store).run().ok();
        assert_eq!(fx.read_string(fx.host("/nix/store/which")), "flag\n");
        assert_eq!(fx.read_string(env_store.join("nix/store/which")), "env\n");
    }

    /// Without --store or PTNIX_STORE: $XDG_DATA_HOME/nix/root, else
    /// ~/.local/share/nix/root (created if missing).
    fn default_store_location(m: Mode) {
        require!(Sh);
        let fx = Fixture::new(m);
        run_no_store(&fx, m, "echo home > /nix/store/which").run().ok();
        let home_store = fx.home.join(".local/share/nix/root");
        assert_eq!(fx.read_string(home_store.join("nix/store/which")), "home\n");
        let xdg = fx.dir.join("xdg");
        fx.mkdirs(&xdg);
        run_no_store(&fx, m, "echo xdg > /nix/store/which").env("XDG_DATA_HOME", &xdg).run().ok();
        assert_eq!(fx.read_string(xdg.join("nix/root/nix/store/which")), "xdg\n");
        assert_eq!(fx.read_string(home_store.join("nix/store/which")), "home\n");
    }

    /// A relative --store is relative to the cwd ptnix starts in.
    fn relative_store(m: Mode) {
        require!(Sh);
        let fx = Fixture::new(m);
        let mut args = vec!["run", "--store", "rel-store"];
        args.extend(m.flags());
        args.extend(["--", "/bin/sh", "-c", "echo rel > /nix/store/which; cd /nix/store && pwd -P"]);
        fx.ptnix(&args).run().expect_stdout("/nix/store\n");
        assert_eq!(fx.read_string(fx.work.join("rel-store/nix/store/which")), "rel\n");
    }

    /// Arguments reach the command byte for byte, `--` or not; stdin, the environment
    /// and the cwd too.
    fn arguments_stdin_env_cwd_pass_through(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        let args = [os(b"a b"), os(b""), os(b"*"), os(b"--help"), os(b"-x"), os(b"\xff\xfe"), os(b"$HOME")];
        let mut argv = vec![os(b"/bin/sh"), os(b"-c"), os(b"for a; do printf '[%s]' \"$a\"; done; echo"), os(b"sh")];
        argv.extend(args.iter().cloned());
        let out = fx.run(&argv).ok();
        assert_eq!(out.stdout, b"[a b][][*][--help][-x][\xff\xfe][$HOME]\n".to_vec(), "\n{out}");
        // Without `--`.
        let mut plain = vec!["run", "--store", fx.store.to_str().unwrap()];
        plain.extend(m.flags());
        plain.extend(["printf", "%s|", "x", "--store", "-y"]);
        fx.ptnix(&plain).run().expect_stdout("x|--store|-y|");
        fx.cmd(&["cat"]).stdin("line1\nline2\n").run().expect_stdout("line1\nline2\n");
        fx.cmd(&["/bin/sh", "-c", "echo \"$FOO|$HOME|$(pwd)\""])
            .env("FOO", "bar baz")
            .run()
            .expect_stdout(&format!("bar baz|{}|{}\n", fx.home.display(), fx.work.display()));
    }
}
