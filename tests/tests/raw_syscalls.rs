//! Syscalls that shells and python do not use, called directly from C: openat2
//! (with its RESOLVE_* rules), execveat (dirfd, AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW),
//! renameat2 (RENAME_EXCHANGE, RENAME_NOREPLACE).

use ptnix_tests::*;

both_modes! {
    fn openat2(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        let prog = c_prog("openat2");
        fx.write(fx.host("/nix/store/f"), "content of f\n");
        fx.symlink("/nix/store/f", fx.host("/nix/store/abs"));
        fx.symlink("f", fx.host("/nix/store/rel"));
        let ok = "data=content of f\npath=/nix/store/f\n";
        let cases: &[(&str, &str, &str, &str)] = &[
            ("-", "/nix/store/f", "none", ok),
            ("/nix/store", "f", "beneath", ok),
            ("/nix/store", "rel", "beneath", ok),
            ("/nix/store", "abs", "none", ok),
            ("/nix", "store/../store/f", "beneath", ok),
            // RESOLVE_IN_ROOT: "/" is the dirfd; an absolute link target is taken
            // relative to it, so /nix/store/nix/store/f, which does not exist.
            ("/nix/store", "/f", "in_root", ok),
            ("/nix/store", "rel", "in_root", ok),
            ("/nix/store", "abs", "in_root", "err=ENOENT\n"),
            ("/nix/store", "../../etc/passwd", "beneath", "err=EXDEV\n"),
            ("/nix/store", "/nix/store/f", "beneath", "err=EXDEV\n"),
            ("/nix/store", "abs", "beneath", "err=EXDEV\n"),
            ("/nix/store", "rel", "no_symlinks", "err=ELOOP\n"),
            ("-", "/nix/store/abs", "no_symlinks", "err=ELOOP\n"),
            ("-", "/nix/store/f/", "none", "err=ENOTDIR\n"),
            ("-", "/nix/store/missing", "none", "err=ENOENT\n"),
        ];
        // Run them all, then report every mismatch at once.
        let mut bad = String::new();
        for (dir, name, resolve, expected) in cases {
            let out = fx.run(&[prog.as_os_str(), dir.as_ref(), name.as_ref(), resolve.as_ref()]);
            if out.stdout() != *expected {
                bad.push_str(&format!("openat2 {dir} {name} {resolve}: expected {expected:?}\n{out}\n\n"));
            }
        }
        assert!(bad.is_empty(), "{bad}");
    }

    fn execveat(m: Mode) {
        require!(Cc, Sh);
        let fx = Fixture::new(m);
        let prog = c_prog("execveat");
        fx.copy_exec(c_prog("self"), fx.host("/nix/store/p/bin/self"));
        fx.symlink("self", fx.host("/nix/store/p/bin/alias"));
        fx.write_exec(fx.host("/nix/store/p/bin/script"), "#!/bin/sh\necho \"script $0 $1\"\n");
        let work = fx.work.display().to_string();
        let runs: &[(&[&str], String)] = &[
            (&["dir", "/nix/store/p/bin", "self", "a"], format!("argv0=self\nexe=/nix/store/p/bin/self\ncwd={work}\narg=a\n")),
            (&["dir", "/nix/store/p/bin", "alias"], format!("argv0=alias\nexe=/nix/store/p/bin/self\ncwd={work}\n")),
            (&["dir", "/", "nix/store/p/bin/self"], format!("argv0=nix/store/p/bin/self\nexe=/nix/store/p/bin/self\ncwd={work}\n")),
            (&["dir", "/tmp", "/nix/store/p/bin/self"], format!("argv0=/nix/store/p/bin/self\nexe=/nix/store/p/bin/self\ncwd={work}\n")),
            (&["fd", "/nix/store/p/bin/self"], format!("argv0=/nix/store/p/bin/self\nexe=/nix/store/p/bin/self\ncwd={work}\n")),
            (&["fd", "/nix/store/p/bin/script", "x"], "script /dev/fd/3 x\n".to_string()),
        ];
        for (args, expected) in runs {
            let mut argv = vec![prog.as_os_str()];
            argv.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
            fx.run(&argv).expect_stdout(expected);
        }
        let out = fx.run(&[prog.as_os_str(), "nofollow".as_ref(), "/nix/store/p/bin".as_ref(), "alias".as_ref()]);
        assert_eq!((out.code(), out.stdout().as_str()), (1, "err=ELOOP\n"), "\n{out}");
    }

    fn renameat2(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        let prog = c_prog("renameat2");
        fx.write(fx.host("/nix/store/a"), "A");
        fx.write(fx.host("/nix/store/b"), "B");
        fx.write(fx.host("/nix/store/d/c"), "C");
        let r = |args: &[&str]| {
            let mut argv = vec![prog.as_os_str()];
            argv.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
            fx.run(&argv)
        };
        r(&["/nix/store", "a", "/nix/store", "b", "exchange"]).expect_stdout("ok\n");
        assert_eq!((fx.read_string(fx.host("/nix/store/a")), fx.read_string(fx.host("/nix/store/b"))), ("B".into(), "A".into()));
        r(&["-", "/nix/store/a", "/nix/store/d", "c", "exchange"]).expect_stdout("ok\n");
        assert_eq!(fx.read_string(fx.host("/nix/store/d/c")), "B");
        let out = r(&["/nix/store", "a", "/nix/store", "b", "noreplace"]);
        assert_eq!((out.code(), out.stdout().as_str()), (1, "err=EEXIST\n"), "\n{out}");
        r(&["/nix/store", "a", "-", "/nix/store/d/new", "noreplace"]).expect_stdout("ok\n");
        assert_eq!(fx.read_string(fx.host("/nix/store/d/new")), "C");
        assert!(!fx.host("/nix/store/a").exists());
        let out = r(&["-", "/nix/store/missing", "-", "/nix/store/b", "exchange"]);
        assert_eq!((out.code(), out.stdout().as_str()), (1, "err=ENOENT\n"), "\n{out}");
    }
}
