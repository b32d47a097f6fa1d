//! The /proc magic links read back guest paths: /proc/self/exe, /proc/self/fd/N (also
//! via /proc/PID and /dev/fd, for directories and deleted files), /proc/self/cwd,
//! and another process's links.

use ptnix_tests::*;

fn expected(exe: &str) -> String {
    format!(
        "exe={exe}\nfd=/nix/store/f\npidfd=/nix/store/f\ndevfd=/nix/store/f\n\
         deleted=/nix/store/f.gone (deleted)\ndirfd=/nix/store\ngetcwd=/nix/store\n\
         cwd=/nix/store\nthreadcwd=/nix/store\n"
    )
}

both_modes! {
    /// A program outside /nix sees its own host path; its fds and cwd in /nix are
    /// guest paths.
    fn c_program_outside_nix(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/store/f"), "f\n");
        let prog = c_prog("proc_links");
        fx.run(&[prog.as_os_str(), "/nix/store/f".as_ref()]).expect_stdout(&expected(prog.to_str().unwrap()));
    }

    /// The same program copied into /nix: /proc/self/exe is its guest path.
    fn c_program_inside_nix(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/store/f"), "f\n");
        fx.copy_exec(c_prog("proc_links"), fx.host("/nix/store/bin/proc_links"));
        fx.run(&["/nix/store/bin/proc_links", "/nix/store/f"]).expect_stdout(&expected("/nix/store/bin/proc_links"));
    }

    /// From the shell: its own links via $$, a child's via $!, and readlink(1)'s own
    /// /proc/self (host binary path unchanged, /proc/self/root stays /).
    fn shell_and_other_processes(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/store/f"), "f\n");
        fx.sh("cd /nix/store && readlink /proc/self/cwd /proc/$$/cwd /proc/self/exe /proc/self/root
               exec 3</nix/store/f; readlink /proc/$$/fd/3
               (cd /nix/var && : > /nix/store/ready && exec sleep 30) &
               while [ ! -e /nix/store/ready ]; do sleep 0.02; done; readlink /proc/$!/cwd; kill $!")
            .expect_stdout("/nix/store\n/nix/store\n/usr/bin/readlink\n/\n/nix/store/f\n/nix/var\n");
    }

    /// python: /proc/self/exe is what it is without ptnix (not ptnix's binary).
    fn python_exe(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = "import os\nprint(os.readlink('/proc/self/exe'))\nfd = os.open('/nix/store', os.O_RDONLY)\nprint(os.readlink('/proc/self/fd/%d' % fd))";
        let plain = fx.plain(&[PYTHON, "-c", "import os\nprint(os.readlink('/proc/self/exe'))"]).run().ok();
        fx.py(code, &[] as &[&str]).expect_stdout(&format!("{}/nix/store\n", plain.stdout()));
    }
}
