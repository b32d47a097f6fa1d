//! ptnix exits with the command's status; 128+N when a signal N killed it; 127 for a
//! command not found; 126 for one that cannot be executed; 125 (with one "ptnix: "
//! line on stderr) for ptnix's own errors. A SIGTERM sent to ptnix reaches the command.

use ptnix_tests::*;
use std::time::{Duration, Instant};

/// Asserts ptnix's own failure: status 125, exactly one stderr line "ptnix: ...".
#[track_caller]
fn assert_ptnix_error(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(125),
        "expected ptnix's own error (125)\n{out}"
    );
    let err = out.stderr();
    assert!(
        err.starts_with("ptnix: ") && err.ends_with('\n') && err.lines().count() == 1,
        "expected one line starting with `ptnix: `\n{out}"
    );
}

both_modes! {
    fn exit_codes_pass_through(m: Mode) {
        require!(Sh);
        let fx = Fixture::new(m);
        for code in [0, 1, 3, 42, 125, 126, 127, 255] {
            let out = fx.sh(&format!("exit {code}"));
            assert_eq!(out.code(), code, "\n{out}");
            assert_eq!(out.stderr(), "", "\n{out}");
        }
        // The command's status, not a child's or grandchild's.
        fx.sh("(exit 9); sh -c 'exit 8' & wait; exit 4").expect_code(4);
    }

    fn killed_by_signal_is_128_plus_n(m: Mode) {
        require!(Sh, Python3);
        let fx = Fixture::new(m);
        // ulimit -c 0: no core files from SEGV/ABRT.
        for (script, code) in [
            ("kill -9 $$", 137),
            ("kill -TERM $$", 143),
            ("kill -HUP $$", 129),
            ("ulimit -c 0; kill -SEGV $$", 139),
            ("ulimit -c 0; exec /usr/bin/python3 -c 'import os; os.abort()'", 134),
        ] {
            let out = fx.sh(script);
            assert_eq!(out.code(), code, "`{script}`\n{out}");
        }
    }

    fn command_not_found_is_127(m: Mode) {
        require!(Sh);
        let fx = Fixture::new(m);
        for cmd in ["no-such-command-ptnix-test", "/nix/store/missing", "./missing", "/nonexistent/bin/x"] {
            let out = fx.run(&[cmd]);
            assert_eq!(out.code(), 127, "`{cmd}`\n{out}");
            assert!(!out.stderr().is_empty(), "`{cmd}`: no message\n{out}");
        }
    }

    fn cannot_execute_is_126(m: Mode) {
        require!(Sh);
        let fx = Fixture::new(m);
        fx.write(fx.work.join("noexec"), "#!/bin/sh\necho ran\n");
        fx.write(fx.host("/nix/store/noexec"), "#!/bin/sh\necho ran\n");
        fx.mkdirs(&fx.host("/nix/store/dir"));
        let noexec = fx.work.join("noexec");
        for cmd in [noexec.to_str().unwrap(), "./noexec", "/nix/store/noexec", "/nix/store/dir"] {
            let out = fx.run(&[cmd]);
            assert_eq!(out.code(), 126, "`{cmd}`\n{out}");
            assert!(!out.stdout().contains("ran"), "`{cmd}` ran\n{out}");
        }
    }

    /// --store naming a file, or a directory the user cannot write: ptnix's own error,
    /// and the command never runs.
    fn bad_store_is_125(m: Mode) {
        require!(Sh);
        let fx = Fixture::new(m);
        let file = fx.dir.join("afile");
        fx.write(&file, "");
        let ro = fx.dir.join("readonly");
        fx.mkdirs(&ro);
        std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
        let marker = fx.home.join("ran");
        for store in [&file, &ro, &file.join("sub")] {
            let mut args = vec!["run", "--store", store.to_str().unwrap()];
            args.extend(m.flags());
            args.extend(["--", "/bin/sh", "-c", "echo ran > $HOME/ran"]);
            let out = fx.ptnix(&args).run();
            assert_ptnix_error(&out);
            assert!(!marker.exists(), "the command ran despite a bad store\n{out}");
        }
    }

    /// SIGTERM to ptnix is passed on: the command's TERM trap runs and its exit status
    /// is ptnix's.
    fn sigterm_to_ptnix_reaches_command(m: Mode) {
        require!(Sh);
        let fx = Fixture::new(m);
        let script = "trap 'echo got-term > $HOME/term; exit 7' TERM; echo ready > $HOME/ready; \
                      while :; do sleep 0.1; done";
        let mut running = fx.cmd(&["/bin/sh", "-c", script]).timeout(Duration::from_secs(60)).spawn();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !fx.home.join("ready").exists() {
            assert!(running.alive(), "ptnix exited before the command was ready\n{}", running.wait());
            assert!(Instant::now() < deadline, "the command never became ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        running.signal(libc::SIGTERM);
        let out = running.wait();
        assert_eq!(out.code(), 7, "the TERM trap did not decide the exit status\n{out}");
        assert_eq!(fx.read_string(fx.home.join("term")), "got-term\n");
    }
}
