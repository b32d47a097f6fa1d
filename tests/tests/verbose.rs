//! `ptnix run -v` and `--log FILE`: each translation is logged strace-style, so that
//! users can see what a path became.

use ptnix_tests::*;

fn ptnix_run(fx: &Fixture, m: Mode, extra: &[&str], argv: &[&str]) -> Output {
    let mut args: Vec<String> = vec!["run".into(), "--store".into(), fx.store.display().to_string()];
    args.extend(m.flags().iter().map(|f| f.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(argv.iter().map(|s| s.to_string()));
    fx.ptnix(&args).run()
}

both_modes! {
    fn verbose_logs_rewrites_to_stderr(m: Mode) {
        require!(Coreutils);
        let fx = Fixture::new(m);
        // The in-process fast path's own calls are not logged (README): without it.
        let out = ptnix_run(&fx, m, &["-v", "--no-shim"], &["cat", "/nix/nope"]);
        assert_eq!(out.code(), 1);
        let host = fx.host("/nix/nope").display().to_string();
        let want = format!("openat: \"/nix/nope\" -> \"{host}\"");
        // (Answered by notification, the line says so.)
        let noted = format!("{want} (notification)");
        assert!(out.stderr().lines().any(|l| l.starts_with("ptnix: [") && (l.ends_with(&want) || l.ends_with(&noted))), "{want}\n{out}");
        // Without -v nothing is logged.
        let quiet = ptnix_run(&fx, m, &[], &["cat", "/nix/nope"]);
        assert!(!quiet.stderr().contains("ptnix: ["), "{quiet}");
    }

    fn log_file_gets_the_log(m: Mode) {
        require!(Coreutils);
        let fx = Fixture::new(m);
        let log = fx.work.join("ptnix.log");
        let out = ptnix_run(&fx, m, &["--log", log.to_str().unwrap(), "--no-shim"], &["ls", "/nix/store"]).ok();
        let text = fx.read_string(&log);
        assert!(text.contains("\"/nix/store\" -> \""), "{text}");
        assert!(!out.stderr().contains("ptnix: ["));
    }
}
