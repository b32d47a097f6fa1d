//! Executing programs that live in /nix: scripts, ELF binaries, `#!` interpreters in
//! /nix and ELF interpreters (PT_INTERP) in /nix, as every Nix-built program has.

use ptnix_tests::*;

const SCRIPT: &str = "#!/bin/sh\necho \"hi $0 $*\"\n";

both_modes! {
    /// A script in /nix run by absolute path, by a shell's PATH search, as ptnix's own
    /// command, and through ptnix's PATH search. `$0` is the path as given, as the
    /// kernel passes it on a real /nix.
    fn script_in_nix(m: Mode) {
        require!(Sh);
        let fx = Fixture::new(m);
        fx.write_exec(fx.host("/nix/store/s/bin/hello"), SCRIPT);
        fx.sh("/nix/store/s/bin/hello a b; PATH=/nix/store/s/bin:$PATH hello c; cd /nix/store/s && ./bin/hello d")
            .expect_stdout("hi /nix/store/s/bin/hello a b\nhi /nix/store/s/bin/hello c\nhi ./bin/hello d\n");
        fx.run(&["/nix/store/s/bin/hello", "x"]).expect_stdout("hi /nix/store/s/bin/hello x\n");
        let path = format!("/nix/store/s/bin:{}", ptnix_tests::env::TRACEE_PATH);
        fx.cmd(&["hello", "y"]).env("PATH", &path).run().expect_stdout("hi /nix/store/s/bin/hello y\n");
    }

    /// `#!/nix/store/.../sh`: the kernel itself opens the interpreter.
    fn shebang_interpreter_in_nix(m: Mode) {
        require!(Sh);
        let fx = Fixture::new(m);
        fx.copy_exec("/bin/sh", fx.host("/nix/store/sh/bin/sh"));
        fx.write_exec(fx.host("/nix/store/s/bin/plain"), "#!/nix/store/sh/bin/sh\necho \"plain $0\"\n");
        fx.write_exec(fx.host("/nix/store/s/bin/witharg"), "#!/nix/store/sh/bin/sh -e\nfalse\necho not reached\n");
        fx.write_exec(fx.home.join("outside"), "#!/nix/store/sh/bin/sh\necho outside\n");
        fx.sh("/nix/store/s/bin/plain; /nix/store/s/bin/witharg; echo \"witharg=$?\"; ~/outside")
            .expect_stdout("plain /nix/store/s/bin/plain\nwitharg=1\noutside\n");
        fx.run(&["/nix/store/s/bin/plain"]).expect_stdout("plain /nix/store/s/bin/plain\n");
    }

    /// An ELF binary in /nix: run by absolute and relative path and through a symlink;
    /// it sees its guest path in /proc/self/exe.
    fn elf_in_nix(m: Mode) {
        require!(Sh, Cc);
        let fx = Fixture::new(m);
        fx.copy_exec(c_prog("self"), fx.host("/nix/store/p/bin/self"));
        fx.symlink("self", fx.host("/nix/store/p/bin/alias"));
        let work = fx.work.display().to_string();
        fx.run(&["/nix/store/p/bin/self", "a"])
            .expect_stdout(&format!("argv0=/nix/store/p/bin/self\nexe=/nix/store/p/bin/self\ncwd={work}\narg=a\n"));
        fx.sh("cd /nix/store/p && ./bin/self && /nix/store/p/bin/alias")
            .expect_stdout(
                "argv0=./bin/self\nexe=/nix/store/p/bin/self\ncwd=/nix/store/p\n\
                 argv0=/nix/store/p/bin/alias\nexe=/nix/store/p/bin/self\ncwd=/nix/store/p\n",
            );
    }

    /// An ELF binary whose dynamic loader is in /nix (PT_INTERP), like every binary Nix
    /// builds: the kernel opens the loader itself.
    fn elf_interpreter_in_nix(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        let ld = "/nix/store/glibc/lib/ld-linux-x86-64.so.2";
        let prog = c_prog_with("self", "self-nix-interp", &[&format!("-Wl,--dynamic-linker={ld}")]);
        fx.copy_exec("/lib64/ld-linux-x86-64.so.2", fx.host(ld));
        fx.copy_exec(&prog, fx.host("/nix/store/p/bin/self"));
        // Without ptnix the loader is not found: the test does test something.
        let host_prog = fx.host("/nix/store/p/bin/self");
        let plain = fx.plain(&["/bin/sh".as_ref(), "-c".as_ref(), host_prog.as_os_str()]).run();
        assert_ne!(plain.status.code(), Some(0), "ran without its /nix loader?\n{plain}");
        fx.run(&["/nix/store/p/bin/self"]).expect_stdout(&format!(
            "argv0=/nix/store/p/bin/self\nexe=/nix/store/p/bin/self\ncwd={}\n",
            fx.work.display()
        ));
        // Also a program outside /nix whose loader is in /nix.
        fx.run(&[&prog]).ok();
    }
}

both_modes! {
    /// exec errors are the kernel's, for files in /nix: no x bit (EACCES, even with a
    /// valid `#!`), a missing or non-executable `#!` interpreter, a directory, and a
    /// file in no executable format (ENOEXEC).
    fn exec_errors(m: Mode) {
        require!(Python3, Sh);
        let fx = Fixture::new(m);
        let bin = |n: &str| fx.host(format!("/nix/store/s/bin/{n}"));
        fx.write(bin("noexec"), "#!/bin/sh\necho ran\n");
        fx.write_exec(bin("badinterp"), "#!/nix/store/missing/bin/sh\necho ran\n");
        fx.write(bin("noexec-interp"), "#!/bin/sh\necho ran\n");
        fx.write_exec(bin("interp-noexec"), "#!/nix/store/s/bin/noexec-interp\necho ran\n");
        fx.write_exec(bin("garbage"), b"\x01\x02\x03\x04 not a program\n");
        fx.mkdirs(&bin("dir"));
        let code = r#"
import subprocess, errno, sys
for n in sys.argv[1:]:
    p = '/nix/store/s/bin/' + n
    try: print(n, 'ran', subprocess.run([p], capture_output=True).returncode)
    except OSError as e: print(n, errno.errorcode[e.errno])
"#;
        let names = ["noexec", "badinterp", "interp-noexec", "garbage", "dir", "missing"];
        fx.py(code, &names).expect_stdout(
            "noexec EACCES\nbadinterp ENOENT\ninterp-noexec EACCES\ngarbage ENOEXEC\ndir EACCES\nmissing ENOENT\n",
        );
        // The shell's view: 126 for "cannot execute", 127 for "not found".
        fx.sh("for n in noexec badinterp interp-noexec dir missing; do /nix/store/s/bin/$n 2>/dev/null; echo \"$n $?\"; done")
            .expect_stdout("noexec 126\nbadinterp 127\ninterp-noexec 126\ndir 126\nmissing 127\n");
    }
}

both_modes! {
    /// A `#!` interpreter in /nix gets the kernel's argv: the interpreter path as
    /// written, the optional argument as one word, the script path as given, then the
    /// arguments; /proc/self/exe is the interpreter.
    fn shebang_argv_and_exe(m: Mode) {
        require!(Sh, Cc);
        let fx = Fixture::new(m);
        fx.copy_exec(c_prog("self"), fx.host("/nix/store/p/bin/self"));
        fx.write_exec(fx.host("/nix/store/s/bin/viaself"), "#!/nix/store/p/bin/self  opt arg\n");
        let head = "argv0=/nix/store/p/bin/self\nexe=/nix/store/p/bin/self\n";
        fx.run(&["/nix/store/s/bin/viaself", "x"]).expect_stdout(&format!(
            "{head}cwd={}\narg=opt arg\narg=/nix/store/s/bin/viaself\narg=x\n",
            fx.work.display()
        ));
        fx.sh("cd /nix/store/s/bin && ./viaself y")
            .expect_stdout(&format!("{head}cwd=/nix/store/s/bin\narg=opt arg\narg=./viaself\narg=y\n"));
    }

    /// AT_EXECFN in the auxiliary vector is the path given to execve: a guest path,
    /// not STORE/nix/....
    fn auxv_execfn_is_the_guest_path(m: Mode) {
        require!(Sh, Cc);
        let fx = Fixture::new(m);
        fx.copy_exec(c_prog("auxv"), fx.host("/nix/store/p/bin/auxv"));
        fx.run(&["/nix/store/p/bin/auxv"]).expect_stdout("execfn=/nix/store/p/bin/auxv\n");
        fx.sh("/nix/store/p/bin/auxv; cd /nix/store/p && ./bin/auxv")
            .expect_stdout("execfn=/nix/store/p/bin/auxv\nexecfn=./bin/auxv\n");
    }
}
