//! `ptnix run --stats`: what it prints at exit, so that users (and we) can see where
//! the time of a run went.

use ptnix_tests::*;

both_modes! {
    /// Every line the report promises is there: stops by syscall (the execs among
    /// them), exit stops, translations, lookups and cache hits, the time in the
    /// tracer, the CPU time of ptnix's own threads, CPU placement; with notifications,
    /// the calls answered that way. The command's output and exit status are its own.
    fn reports_where_the_time_went(m: Mode) {
        require!(Sh, Coreutils);
        let mut fx = Fixture::new(m);
        fx.write(fx.host("/nix/store/aaa-x/file"), "x\n");
        fx.flags.push("--stats");
        let out = fx.run(&["/bin/sh", "-c", "cat /nix/store/aaa-x/file; stat /nix/store/aaa-x >/dev/null; exit 3"]);
        assert_eq!(out.code(), 3, "\n{out}");
        assert_eq!(out.stdout(), "x\n", "\n{out}");
        let err = out.stderr();
        for want in [
            "ptnix stats:\n",
            "  stops: ",
            ", exit ",
            "  entry stops by syscall: ",
            "execve ",
            "  translations: ",
            "  resolution: ",
            "  directory checks: cache ",
            "  time in tracer: ",
            "  CPU time of ptnix's own threads: ",
            "  CPU placement: ",
        ] {
            assert!(err.contains(want), "no {want:?} in the report\n{out}");
        }
        if m == Mode::Seccomp {
            assert!(err.contains("  user notifications, no stop: "), "\n{out}");
        }
    }
}
