//! Store programs, as nixpkgs builds them: ELF binaries whose loader (PT_INTERP) and
//! libraries are in /nix/store, `#!` scripts whose interpreter is in /nix/store, all
//! reached by store path, through `~/.nix-profile` and by PATH lookup.
//!
//! The store is built offline with the real Nix under ptnix (see
//! `ptnix_tests::nixstore`): the host's glibc and tools copied into store paths and
//! patched with patchelf, scripts and a profile made with `nix-env -i`. Without ptnix
//! the kernel cannot run any of these programs (their loader is not on the host), so
//! every test here exercises ptnix's explicit loader start and its `#!` expansion.
//!
//! Where the behaviour is the kernel's (argv[0], `$0`, exec errors, `/proc/self/exe`),
//! the test runs the same invocation natively on unpatched copies of the same programs
//! (`Store::parity`) or on the same chain of scripts outside /nix, and compares.

use ptnix_tests::nixstore::{self, bash_body, Store, LOADER, PROGS, TOOLS, TOOLS_BIN_LISTING};
use ptnix_tests::*;

/// `Some((fx, st))`, or return from the test if a prerequisite is missing.
macro_rules! setup {
    ($m:expr) => {
        match nixstore::setup($m) {
            Some(x) => x,
            None => return,
        }
    };
}

/// An executable file written by a child process (see `nixstore::write_from_child`:
/// executed at once, a file this process wrote could be "Text file busy").
fn write_exec(fx: &Fixture, path: &std::path::Path, data: impl Into<Vec<u8>>) {
    nixstore::write_from_child(fx, path, data, 0o755);
}

/// What `showself` prints before its arguments.
fn showself_head(argv0: &str, exe: &str, execfn: &str) -> String {
    format!("argv0={argv0}\nexe={exe}\nexecfn={execfn}\n")
}

/// `showself`'s output without its `execfn=` line (checked on its own, by
/// `execfn_is_the_name_given`).
fn without_execfn(s: &str) -> String {
    s.lines().filter(|l| !l.starts_with("execfn=")).map(|l| format!("{l}\n")).collect()
}

/// The native twin of the store script `spaced` (`#!SHOWSELF  one  two  `), written
/// in the fixture: its path.
fn native_spaced(fx: &Fixture, st: &Store) -> String {
    let p = fx.work.join("spaced");
    write_exec(fx, &p, format!("#!{}/bin/showself  one  two  \n", st.native_dir("progs")));
    p.display().to_string()
}

/// The argument the kernel takes from a `#!` line longer than its 256-byte buffer
/// (fs/binfmt_script.c): the line is cut after 255 bytes, trailing blanks dropped,
/// and everything after the interpreter and the blanks that follow it is the one
/// argument.
fn kernel_cut_arg(script: &str) -> String {
    let line = &script.as_bytes()[..255];
    let line = std::str::from_utf8(line).unwrap().trim_end_matches([' ', '\t']);
    let rest = line[2..].trim_start_matches([' ', '\t']);
    let after_interp = &rest[rest.find([' ', '\t']).expect("an argument")..];
    after_interp.trim_start_matches([' ', '\t']).to_string()
}

both_modes! {
    /// The store is what the other tests need it to be: every tool and C program has
    /// its loader in /nix/store (so without ptnix the kernel cannot start it), Nix
    /// itself finds the copied store valid, and the profile is a symlink farm.
    fn the_store_is_nixpkgs_like(m: Mode) {
        let (fx, st) = setup!(m);
        let interp = format!("{}/{LOADER}", st.glibc);
        let mut bins: Vec<String> = TOOLS.iter().map(|t| st.tool(t.0)).collect();
        bins.extend(PROGS.iter().map(|p| st.prog(p)));
        for b in &bins {
            let h = fx.host(b);
            let out = std::process::Command::new(ptnix_tests::prereq::find_in_path("patchelf").unwrap())
                .arg("--print-interpreter")
                .arg(&h)
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), interp, "PT_INTERP of {b}");
        }
        // Natively (the store's host path, no ptnix): the loader is not found.
        let code = "import os, sys, errno\nfor p in sys.argv[1:]:\n    try: os.execv(p, [p, '-c', 'print(1)'])\n    except OSError as e: print(errno.errorcode[e.errno])\n";
        let hosts: Vec<String> = ["bash", "python3.11"].iter().map(|t| fx.host(st.tool(t)).display().to_string()).collect();
        let mut argv = vec![PYTHON, "-c", code];
        argv.extend(hosts.iter().map(String::as_str));
        fx.plain(&argv).run().expect_stdout("ENOENT\nENOENT\n");
        // Nix sees a consistent store: the copies of every path hash right.
        Store::nix(&fx, &["nix-store", "--verify", "--check-contents"]).ok();
        let q = Store::nix(&fx, &["nix-store", "-q", "--requisites", &st.profile]).ok();
        for p in [&st.tools, &st.scripts, &st.progs, &st.busybox] {
            assert!(q.stdout().lines().any(|l| l == p.as_str()), "{p} not in the profile's closure\n{q}");
        }
        st.cmd(&fx, &["/bin/sh", "-c", "readlink ~/.nix-profile; ls ~/.nix-profile/bin; readlink ~/.nix-profile/bin/bash"])
            .run()
            .expect_stdout(&format!(
                "{}\nbash\nbusybox\ncat\necho\nenv\nenvbash\nenvsplit\ninterp-dir\ninterp-noexec\nlaunch\nlongarg\nlonginterp\nls\nmissing\nplain\npyscript\npython3\npython3.11\nreadlink\nsh\nshowself\nspaced\ntrue\nusrbinenv\nviaprofile\nviaprofile-script\nwitharg\n{}\n",
                st.profile,
                st.tool("bash")
            ));
    }

    /// Each tool run by its /nix/store path, as ptnix's command.
    fn run_by_store_path(m: Mode) {
        let (fx, st) = setup!(m);
        fx.write(fx.work.join("f.txt"), "hello\nworld\n");
        let t = |n: &str| st.tool(n);
        fx.run(&[t("bash").as_str(), "-c", "echo \"bash $0 $1 ${BASH_VERSINFO[0]}\"", "zero", "one"])
            .expect_stdout("bash zero one 5\n");
        fx.run(&[t("ls"), format!("{}/bin", st.tools)]).expect_stdout(TOOLS_BIN_LISTING);
        fx.run(&[t("cat").as_str(), "f.txt"]).expect_stdout("hello\nworld\n");
        fx.run(&[t("echo").as_str(), "a", "b c"]).expect_stdout("a b c\n");
        fx.run(&[t("true")]).expect_stdout("");
        fx.run(&[t("readlink"), t("python3")]).expect_stdout("python3.11\n");
        fx.run(&[t("env").as_str(), "-i", "FOO=1", &t("bash"), "-c", "echo \"FOO=$FOO\""]).expect_stdout("FOO=1\n");
        let py = "import sys, os; print(sys.version_info[:2], sys.prefix, sys.executable, sys.argv)";
        for name in ["python3", "python3.11"] {
            fx.run(&[t(name).as_str(), "-c", py, "x"]).expect_stdout(&format!(
                "(3, 11) {} {} ['-c', 'x']\n",
                st.tools,
                t(name)
            ));
        }
    }

    /// Each tool through `~/.nix-profile/bin/X`: links into a link farm into the store.
    fn run_through_the_profile(m: Mode) {
        let (fx, st) = setup!(m);
        fx.write(fx.work.join("f.txt"), "hello\n");
        let p = |n: &str| format!("{}/bin/{n}", st.home_profile(&fx));
        fx.run(&[p("bash").as_str(), "-c", "echo \"$0 $(readlink /proc/$$/exe)\""])
            .expect_stdout(&format!("{} {}\n", p("bash"), st.tool("bash")));
        fx.run(&[p("ls"), format!("{}/bin", st.tools)]).expect_stdout(TOOLS_BIN_LISTING);
        fx.run(&[p("cat").as_str(), "f.txt"]).expect_stdout("hello\n");
        fx.run(&[p("readlink").as_str(), "/proc/self/exe"]).expect_stdout(&format!("{}\n", st.tool("readlink")));
        fx.run(&[p("python3").as_str(), "-c", "import sys, os; print(sys.prefix, sys.executable, os.readlink('/proc/self/exe'))"])
            .expect_stdout(&format!("{} {} {}\n", st.tools, p("python3"), st.tool("python3.11")));
    }

    /// PATH=~/.nix-profile/bin:/usr/bin: ptnix's own PATH search, bash's, python's
    /// (subprocess, os.execvp) and env's all find the store programs.
    fn run_by_path_lookup(m: Mode) {
        let (fx, st) = setup!(m);
        fx.write(fx.work.join("f.txt"), "hello\n");
        let path = format!("{}/bin:/usr/bin", st.home_profile(&fx));
        let script = r#"
echo "shell $0 $(readlink /proc/$$/exe)"
type -P ls cat python3 env
readlink /proc/self/exe
ls "$T/bin" | cat
cat f.txt
python3 -c 'import os, sys; print("python", sys.executable, os.readlink("/proc/self/exe"))'
env readlink /proc/self/exe
python3 -c '
import subprocess, os
subprocess.run(["readlink", "/proc/self/exe"], check=True)
print(subprocess.run(["cat", "f.txt"], capture_output=True, check=True).stdout.decode(), end="", flush=True)
os.execvp("readlink", ["readlink", "/proc/self/exe"])'
"#;
        let prof = st.home_profile(&fx);
        st.cmd(&fx, &["bash", "-c", script]).env("PATH", &path).run().expect_stdout(&format!(
            "shell bash {bash}\n{prof}/bin/ls\n{prof}/bin/cat\n{prof}/bin/python3\n{prof}/bin/env\n{rl}\n{TOOLS_BIN_LISTING}hello\npython {prof}/bin/python3 {py}\n{rl}\n{rl}\nhello\n{rl}\n",
            bash = st.tool("bash"),
            rl = st.tool("readlink"),
            py = st.tool("python3.11"),
        ));
    }

    /// Exit statuses of store programs pass through ptnix (128+N for signal N), and
    /// their parents see them as natively.
    fn exit_statuses_pass_through(m: Mode) {
        let (fx, st) = setup!(m);
        for (argv, code) in [
            (vec![st.tool("bash"), "-c".into(), "exit 7".into()], 7),
            (vec![st.tool("python3"), "-c".into(), "import sys; sys.exit(7)".into()], 7),
            (vec![st.prog("showself"), "exit=7".into()], 7),
            (vec![st.script("plain"), "x".into()], 0),
            (vec![st.script("witharg")], 1),
            (vec![st.tool("bash"), "-c".into(), "kill -TERM $$".into()], 143),
            (vec![st.tool("python3"), "-c".into(), "import os; os.kill(os.getpid(), 9)".into()], 137),
            (vec![st.prog("showself"), "signal=10".into()], 138),
            (vec![st.home_profile(&fx) + "/bin/showself", "signal=15".into()], 143),
        ] {
            let out = fx.run(&argv);
            assert_eq!(out.code(), code, "{argv:?}\n{out}");
        }
        st.parity(&fx, r#"
{ "$T/bin/python3" -c 'import os; os.kill(os.getpid(), 9)'; } 2>/dev/null; echo "killed $?"
"$P/bin/showself" exit=7 >/dev/null; echo "exit $?"
"$T/bin/python3" -c '
import subprocess, os
print("rc", subprocess.run([os.environ["T"] + "/bin/bash", "-c", "kill -USR1 $$"]).returncode)
print("rc", subprocess.run([os.environ["P"] + "/bin/showself", "exit=3"], capture_output=True).returncode)'
"#);
    }

    /// argv[0] as the program sees it (bash's `$0`, python's sys.argv and
    /// sys.executable, a C program's argv[0] and AT_EXECFN) is what the same
    /// invocation gives natively: by path, with `exec -a`, relative, through the
    /// profile, by PATH lookup.
    fn argv0_as_natively(m: Mode) {
        let (fx, st) = setup!(m);
        st.parity(&fx, r#"
"$T/bin/bash" -c 'echo "1 $0"'
(exec -a custom "$T/bin/bash" -c 'echo "2 $0"')
(cd "$T/bin" && ./bash -c 'echo "3 $0"')
"$PROFILE/bin/bash" -c 'echo "4 $0"'
PATH="$PROFILE/bin:/usr/bin" bash -c 'echo "5 $0"'
(PATH="$PROFILE/bin:/usr/bin"; exec bash -c 'echo "6 $0"')
"$T/bin/python3" -c 'import sys; print(7, sys.argv, sys.executable)' a
(exec -a "$T/bin/py" "$T/bin/python3" -c 'import sys; print(8, sys.orig_argv[0], sys.argv)')
(cd "$T/bin" && ./python3 -c 'import sys; print(9, sys.orig_argv[0], sys.executable)')
PATH="$PROFILE/bin:/usr/bin" python3 -c 'import sys; print(10, sys.orig_argv[0], sys.executable)'
"$P/bin/showself" a
(exec -a cprog "$P/bin/showself" b)
(cd "$P/bin" && ./showself c)
PATH="$PROFILE/bin:/usr/bin" showself d
"$PROFILE/bin/showself" e
(cd "$PROFILE/bin" && ./showself f)
"#);
    }

    /// /proc/self/exe and /proc/PID/exe show the program's /nix/store path (not its
    /// loader) from python, C, bash and coreutils, in forked children and threads, for
    /// other processes, and the exec'd host program after a store program execs one.
    fn proc_exe_shows_the_program(m: Mode) {
        let (fx, st) = setup!(m);
        st.parity(&fx, r#"
"$T/bin/python3" -c 'import os; print("py", os.readlink("/proc/self/exe"))'
"$P/bin/showself" | grep exe=
"$T/bin/bash" -c 'echo "bash $(readlink /proc/$$/exe)"; true'
"$T/bin/bash" -c '(p=$BASHPID; echo "subshell $(readlink /proc/$p/exe)"; true); true'
"$T/bin/bash" -c 'readlink /proc/self/exe; "$T/bin/readlink" /proc/self/exe; "$PROFILE/bin/readlink" /proc/self/exe; exec /usr/bin/readlink /proc/self/exe'
"$T/bin/bash" -c 'exec "$T/bin/readlink" /proc/self/exe'
"$T/bin/bash" -c 'exec "$PROFILE/bin/python3" -c "import os; print(os.readlink(\"/proc/self/exe\"))"'
"$T/bin/python3" -c '
import os, threading
r = []
t = threading.Thread(target=lambda: r.append(os.readlink("/proc/thread-self/exe")))
t.start(); t.join(); print("thread", r, flush=True)
pid = os.fork()
if pid == 0:
    print("fork", os.readlink("/proc/self/exe"), flush=True); os._exit(0)
os.waitpid(pid, 0)
print("parent of fork", os.readlink("/proc/%d/exe" % os.getpid()))'
"$T/bin/python3" -c '
import subprocess, os
for argv in [[os.environ["T"] + "/bin/bash", "-c", "echo ready; read x"], ["/bin/sh", "-c", "echo ready; read x"]]:
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    print("child", os.readlink("/proc/%d/exe" % p.pid))
    p.stdin.close(); p.wait()'
"#);
    }

    /// execve("/proc/self/exe") (and /proc/PID/exe) runs the program again, not its
    /// loader: python's os.execv, C's execv, bash's exec, and a child exec'ing its
    /// parent's exe.
    fn reexec_proc_self_exe(m: Mode) {
        let (fx, st) = setup!(m);
        st.parity(&fx, r#"
"$T/bin/python3" -c '
import os
os.execv("/proc/self/exe", ["python3", "-c", "import os, sys; print(\"again\", sys.argv, os.readlink(\"/proc/self/exe\"))", "x"])'
"$P/bin/showself" reexec | grep -v ^execfn=
"$T/bin/bash" -c 'exec -a again /proc/$$/exe -c "echo \"\$0 \$(readlink /proc/\$\$/exe)\""'
"$T/bin/python3" -c '
import subprocess, os
subprocess.run([os.environ["T"] + "/bin/bash", "-c", "exec /proc/$PPID/exe -c \"import os; print(\\\"parent exe\\\", os.readlink(\\\"/proc/self/exe\\\"))\""])'
"#);
    }

    /// /proc/PID/cmdline shows the loader invocation (a documented limit); it still
    /// holds the program's path and, at its end, the program's arguments.
    fn proc_cmdline_holds_the_program(m: Mode) {
        let (fx, st) = setup!(m);
        let out = fx.run(&[st.tool("cat").as_str(), "/proc/self/cmdline"]).ok();
        let cmdline = out.stdout();
        let args: Vec<&str> = cmdline.trim_end_matches('\0').split('\0').collect();
        assert!(args.contains(&st.tool("cat").as_str()), "no {} in {args:?}", st.tool("cat"));
        assert_eq!(args.last(), Some(&"/proc/self/cmdline"), "{args:?}");
        let code = "print('\\n'.join(open('/proc/self/cmdline').read().split('\\0')))";
        let out = fx.run(&[st.tool("python3").as_str(), "-c", code, "a b"]).ok();
        let s = out.stdout();
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines.contains(&st.tool("python3").as_str()), "\n{out}");
        assert!(s.ends_with(&format!("\n-c\n{code}\na b\n\n")), "\n{out}");
    }

    /// The same when the files are opened by name relative to a descriptor of
    /// `/proc/self` (ptnix's shortcut for lone names must not skip them), and `maps`
    /// names the store by its guest path.
    fn proc_files_opened_by_name_from_a_dirfd(m: Mode) {
        let (fx, st) = setup!(m);
        let code = r#"import os, sys
d = os.open('/proc/self', os.O_RDONLY)
def read(name):
    f = os.open(name, os.O_RDONLY, dir_fd=d)
    out = b''
    while True:
        b = os.read(f, 65536)
        if not b:
            return out
        out += b
print(read('cmdline').split(b'\0')[0].decode())
maps = read('maps')
print(int(b'/nix/store/' in maps), int(sys.argv[1].encode() in maps))
"#;
        let host_store = fx.host("/nix/store");
        let out = fx.run(&[st.tool("python3").as_str(), "-c", code, host_store.to_str().unwrap()]).ok();
        assert_eq!(out.stdout(), format!("{}\n1 0\n", st.tool("python3")), "\n{out}");
    }
}

both_modes! {
    /// `#!TOOLS/bin/bash` and `#!TOOLS/bin/bash -e`: the script runs under the store
    /// bash with `$0` the script's path as given (store path, profile link, PATH
    /// lookup, relative) and its arguments intact.
    fn shebang_bash_with_and_without_argument(m: Mode) {
        let (fx, st) = setup!(m);
        let prof = st.home_profile(&fx);
        let bash = st.tool("bash");
        let plain = st.script("plain");
        fx.run(&[plain.as_str(), "a", "b c", ""])
            .expect_stdout(&format!("plain {plain} exe={bash} [a] [b c] []\n"));
        let out = fx.run(&[st.script("witharg"), "x".into()]).expect_code(1);
        assert_eq!(out.stdout(), format!("witharg errexit {} exe={bash} [x]\n", st.script("witharg")), "\n{out}");
        st.cmd(&fx, &["bash", "-c", r#"
"$PROFILE/bin/plain" 1
plain 2
(cd "$PROFILE/bin" && ./plain 3)
(cd "$S" && bin/plain 4)
witharg 5; echo "witharg $?"
"#]).env("PATH", format!("{prof}/bin:/usr/bin")).run().expect_stdout(&format!(
            "plain {prof}/bin/plain exe={bash} [1]\n\
             plain {prof}/bin/plain exe={bash} [2]\n\
             plain ./plain exe={bash} [3]\n\
             plain bin/plain exe={bash} [4]\n\
             witharg errexit {prof}/bin/witharg exe={bash} [5]\nwitharg 1\n"
        ));
    }

    /// `#!TOOLS/bin/env bash` and `#!TOOLS/bin/env -S bash -e`: env (a store program)
    /// finds bash in PATH: the store's through the profile, the host's otherwise.
    fn shebang_env(m: Mode) {
        let (fx, st) = setup!(m);
        let prof = st.home_profile(&fx);
        let bash = st.tool("bash");
        let (envbash, envsplit) = (st.script("envbash"), st.script("envsplit"));
        st.cmd(&fx, &[envbash.as_str(), "a"]).env("PATH", format!("{prof}/bin:/usr/bin")).run()
            .expect_stdout(&format!("envbash {envbash} exe={bash} [a]\n"));
        st.cmd(&fx, &[envsplit.as_str(), "b"]).env("PATH", format!("{prof}/bin:/usr/bin")).run()
            .expect_stdout(&format!("envsplit errexit {envsplit} exe={bash} [b]\n"));
        // Without the profile in PATH, env finds the host's bash.
        fx.run(&[envbash.as_str(), "c"]).expect_stdout(&format!("envbash {envbash} exe=/usr/bin/bash [c]\n"));
        st.cmd(&fx, &["envsplit", "d"]).env("PATH", format!("{prof}/bin:/usr/bin")).run()
            .expect_stdout(&format!("envsplit errexit {prof}/bin/envsplit exe={bash} [d]\n"));
    }

    /// Python scripts: `#!TOOLS/bin/python3` (the interpreter is itself a symlink) and
    /// `#!/usr/bin/env python3` with the profile in PATH.
    fn shebang_python(m: Mode) {
        let (fx, st) = setup!(m);
        let prof = st.home_profile(&fx);
        let py = st.tool("python3.11");
        let pyscript = st.script("pyscript");
        fx.run(&[pyscript.as_str(), "a"]).expect_stdout(&format!("py ['{pyscript}', 'a'] {py}\n"));
        st.cmd(&fx, &["bash", "-c", "usrbinenv b; pyscript c; \"$PROFILE/bin/usrbinenv\" d"])
            .env("PATH", format!("{prof}/bin:/usr/bin"))
            .run()
            .expect_stdout(&format!(
                "py ['{prof}/bin/usrbinenv', 'b'] {py}\npy ['{prof}/bin/pyscript', 'c'] {py}\npy ['{prof}/bin/usrbinenv', 'd'] {py}\n"
            ));
    }

    /// Nested interpreters: a script whose interpreter is another store script, up to
    /// the kernel's limit of five levels; interpreters named through the profile's
    /// links; a C program as interpreter gets the one `#!` argument with its inner
    /// blanks.
    fn shebang_nested_and_through_the_profile(m: Mode) {
        let (fx, st) = setup!(m);
        let bash = st.tool("bash");
        let n: Vec<String> = (1..=5).map(|l| st.nest(l)).collect();
        fx.run(&[n[1].as_str(), "a"]).expect_stdout(&format!("level1 {} exe={bash} [{}] [a]\n", n[0], n[1]));
        fx.run(&[n[4].as_str(), "a", "b"]).expect_stdout(&format!(
            "level1 {} exe={bash} [{}] [{}] [{}] [{}] [a] [b]\n",
            n[0], n[1], n[2], n[3], n[4]
        ));
        let (vp, vps) = (st.script("viaprofile"), st.script("viaprofile-script"));
        fx.run(&[vp.as_str(), "x"]).expect_stdout(&format!("viaprofile {vp} exe={bash} [x]\n"));
        fx.run(&[vps.as_str(), "y"])
            .expect_stdout(&format!("plain {}/bin/plain exe={bash} [{vps}] [y]\n", st.profile));
        let showself = st.prog("showself");
        let spaced = st.script("spaced");
        let out = fx.run(&[spaced.as_str(), "z"]).ok();
        assert_eq!(
            without_execfn(&out.stdout()),
            format!("argv0={showself}\nexe={showself}\narg=one  two\narg={spaced}\narg=z\n"),
            "\n{out}"
        );
    }

    /// Six nested scripts: ELOOP ("Too many levels of symbolic links"), exactly as the
    /// same chain of host scripts gives natively; five work the same as natively.
    fn shebang_six_levels_is_eloop_as_natively(m: Mode) {
        let (fx, st) = setup!(m);
        let chain = fx.work.join("chain");
        let nat = |l: usize| chain.join(format!("n{l}")).display().to_string();
        for l in 1..=6 {
            let text = if l == 1 {
                format!("#!{}/bin/bash\n{}", st.native_dir("tools"), bash_body("level1"))
            } else {
                format!("#!{}\nexit 99\n", nat(l - 1))
            };
            write_exec(&fx, &chain.join(format!("n{l}")), text);
        }
        let (g5, g6) = (st.nest(5), st.nest(6));
        let mut extra: Vec<(String, String, String)> = Vec::new();
        for l in 1..=6 {
            extra.push((format!("N{l}"), nat(l), st.nest(l)));
        }
        let extra: Vec<(&str, &str, &str)> = extra.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
        let out = st.parity_with(&fx, r#"
"$N5" a; echo "rc=$?"
"$N6" a; echo "rc=$?"
"$T/bin/python3" -c '
import subprocess, errno, os, sys
for p in sys.argv[1:]:
    try: print(subprocess.run([p, "x"], capture_output=True).stdout.decode(), end="")
    except OSError as e: print(errno.errorcode[e.errno], os.strerror(e.errno))
try: os.execv(sys.argv[2], [sys.argv[2]])
except OSError as e: print("execv", errno.errorcode[e.errno])
' "$N5" "$N6"
"#, &extra);
        assert!(out.stdout().contains("ELOOP Too many levels of symbolic links\n"), "\n{out}");
        assert!(out.stderr().contains(&format!("{g6}: {g5}: bad interpreter: Too many levels of symbolic links")), "\n{out}");
    }

    /// A missing `#!` interpreter: ENOENT, and the shell's message and status, as
    /// natively.
    fn shebang_missing_interpreter_as_natively(m: Mode) {
        let (fx, st) = setup!(m);
        let nat = fx.work.join("missing");
        write_exec(&fx, &nat, format!("#!{}\necho ran\n", nixstore::MISSING_INTERP));
        let nat = nat.display().to_string();
        let g = st.script("missing");
        let out = st.parity_with(&fx, r#"
"$X" a; echo "rc=$?"
"$T/bin/python3" -c '
import subprocess, errno, sys
try: subprocess.run([sys.argv[1]])
except OSError as e: print(errno.errorcode[e.errno])' "$X"
"#, &[("X", &nat, &g)]);
        assert!(out.stdout().ends_with("rc=127\nENOENT\n"), "\n{out}");
    }

    /// A `#!` interpreter that is not executable (a 0444 store file, a directory), and
    /// a 0444 store file itself: EACCES and the shell's messages, as natively.
    fn shebang_interpreter_not_executable_as_natively(m: Mode) {
        let (fx, st) = setup!(m);
        let d = fx.work.join("n");
        let ne = d.join("not-executable");
        nixstore::write_from_child(&fx, &ne, "#!/bin/sh\necho ran\n", 0o644);
        write_exec(&fx, &d.join("interp-noexec"), format!("#!{}\necho ran\n", ne.display()));
        write_exec(&fx, &d.join("interp-dir"), format!("#!{}/bin\necho ran\n", st.native_dir("tools")));
        let s = |p: &std::path::Path| p.display().to_string();
        let (n1, n2, n3) = (s(&ne), s(&d.join("interp-noexec")), s(&d.join("interp-dir")));
        let g1 = format!("{}/bin/not-executable", st.misc);
        let (g2, g3) = (st.script("interp-noexec"), st.script("interp-dir"));
        let out = st.parity_with(&fx, r#"
for x in "$X1" "$X2" "$X3"; do "$x" a; echo "rc=$?"; done
"$T/bin/python3" -c '
import subprocess, errno, sys
for p in sys.argv[1:]:
    try: subprocess.run([p])
    except OSError as e: print(errno.errorcode[e.errno])' "$X1" "$X2" "$X3"
"#, &[("X1", &n1, &g1), ("X2", &n2, &g2), ("X3", &n3, &g3)]);
        assert!(out.stdout().ends_with("EACCES\nEACCES\nEACCES\n"), "\n{out}");
    }

    /// A `#!` line longer than the kernel's 256-byte buffer: with no blank after the
    /// (cut) interpreter name, ENOEXEC, and bash then runs the file itself, as
    /// natively; with a blank, the argument is cut where the kernel cuts it.
    fn shebang_too_long_as_natively(m: Mode) {
        let (fx, st) = setup!(m);
        let nat = fx.work.join("longinterp");
        write_exec(&fx, &nat, fx.read(fx.host(st.script("longinterp"))));
        let nat = nat.display().to_string();
        let g = st.script("longinterp");
        let out = st.parity_with(&fx, r#"
"$X" a; echo "rc=$?"
"$T/bin/python3" -c '
import subprocess, errno, sys
try: subprocess.run([sys.argv[1]])
except OSError as e: print(errno.errorcode[e.errno])' "$X"
"#, &[("X", &nat, &g)]);
        assert!(out.stdout().ends_with("rc=0\nENOEXEC\n"), "\n{out}");
        assert!(out.stdout().starts_with(&format!("fallback {g} exe={} [a]\n", st.tool("bash"))), "\n{out}");

        // The cut argument: the rule checked natively first, then under ptnix.
        let nat_showself = format!("{}/bin/showself", st.native_dir("progs"));
        let nat_script = format!("#!{nat_showself} {}\n", "A".repeat(300));
        let nat_path = fx.work.join("longarg");
        write_exec(&fx, &nat_path, nat_script.as_str());
        let np = nat_path.display().to_string();
        fx.plain(&[np.as_str(), "x"]).run().expect_stdout(&format!(
            "{}arg={}\narg={np}\narg=x\n",
            showself_head(&nat_showself, &nat_showself, &np),
            kernel_cut_arg(&nat_script)
        ));
        let g = st.script("longarg");
        let text = fx.read_string(fx.host(&g));
        let showself = st.prog("showself");
        let out = fx.run(&[g.as_str(), "x"]).ok();
        assert_eq!(
            without_execfn(&out.stdout()),
            format!("argv0={showself}\nexe={showself}\narg={}\narg={g}\narg=x\n", kernel_cut_arg(&text)),
            "\n{out}"
        );
    }
}

both_modes! {
    /// A multithreaded store program execs a store program from a non-main thread
    /// while other threads stat /nix paths; vfork+execv, posix_spawn and posix_spawnp
    /// of store programs and scripts; the children's statuses come back.
    fn exec_from_thread_vfork_and_posix_spawn(m: Mode) {
        let (fx, st) = setup!(m);
        let showself = st.prog("showself");
        let launch = st.prog("launch");
        let host_launch = c_prog("launch").display().to_string();
        for l in [&launch, &host_launch] {
            let out = fx.run(&[l.as_str(), "thread", &showself, "tname", "exit=5"]);
            assert_eq!(out.code(), 5, "\n{out}");
            assert_eq!(out.stdout(), format!("{}arg=exit=5\n", showself_head("tname", &showself, &showself)), "\n{out}");
            assert_eq!(out.stderr(), "", "\n{out}");
            let out = fx.run(&[l.as_str(), "thread", &st.script("plain"), "ignored", "t"]);
            assert_eq!(out.stdout(), format!("plain {} exe={} [t]\n", st.script("plain"), st.tool("bash")), "\n{out}");
        }
        let prof = st.home_profile(&fx);
        let plain = st.script("plain");
        st.cmd(&fx, &["bash", "-c", r#"
"$P/bin/launch" vfork "$P/bin/showself" vf a
"$P/bin/launch" posix "$P/bin/showself" ps signal=10
launch posixp showself pp b
"$P/bin/launch" posix "$S/bin/plain" ignored c
"$P/bin/launch" vfork "$S/bin/plain" ignored d
"$P/bin/launch" posix "$S/bin/missing" ignored; echo "rc=$?"
"#]).env("PATH", format!("{prof}/bin:/usr/bin")).run().expect_stdout(&format!(
            "{}arg=a\nexited 0\n{}arg=signal=10\nsignaled 10\n{}arg=b\nexited 0\n\
             plain {plain} exe={bash} [c]\nexited 0\nplain {plain} exe={bash} [d]\nexited 0\nerror ENOENT\nrc=1\n",
            showself_head("vf", &showself, &showself),
            showself_head("ps", &showself, &showself),
            showself_head("pp", &showself, &format!("{prof}/bin/showself")),
            bash = st.tool("bash"),
        ));
        // Python's subprocess (vfork) and os.posix_spawn(p), from the store python.
        st.cmd(&fx, &[st.tool("python3").as_str(), "-c", r#"
import os, subprocess, sys
P, S = os.environ["P"], os.environ["S"]
r = subprocess.run([P + "/bin/showself", "sp"], capture_output=True)
print(r.returncode, r.stdout.decode().split("\n")[:2])
r = subprocess.run([S + "/bin/plain", "sp2"], capture_output=True)
print(r.returncode, r.stdout.decode(), end="")
sys.stdout.flush()
pid = os.posix_spawn(P + "/bin/showself", ["ps", "exit=4"], os.environ)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
pid = os.posix_spawnp("showself", ["psp", "exit=6"], os.environ)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"#]).env("PATH", format!("{prof}/bin:/usr/bin")).run().expect_stdout(&format!(
            "0 ['argv0={showself}', 'exe={showself}']\n0 plain {plain} exe={bash} [sp2]\n\
             {}arg=exit=4\n4\n{}arg=exit=6\n6\n",
            showself_head("ps", &showself, &showself),
            showself_head("psp", &showself, &format!("{prof}/bin/showself")),
            bash = st.tool("bash"),
        ));
    }

    /// A static program in the store (busybox, no PT_INTERP): run by path, through the
    /// profile and by PATH lookup; its applets are chosen by argv[0].
    fn static_busybox_in_the_store(m: Mode) {
        let (fx, st) = setup!(m);
        st.parity(&fx, r#"
"$B/bin/busybox" echo hi
"$B/bin/sh" -c 'echo "$0"; readlink /proc/self/exe; readlink /proc/$$/exe; true'
"$PROFILE/bin/sh" -c 'echo "$0"; readlink /proc/$$/exe; true'
PATH="$PROFILE/bin:/usr/bin" sh -c 'echo "$0"; exit 3'; echo "rc=$?"
(cd "$B/bin" && ./sh -c 'echo "$0"')
"#);
        let bb = format!("{}/bin/busybox", st.busybox);
        fx.run(&[format!("{}/bin/sh", st.busybox), "-c".into(), "readlink /proc/self/exe".into()])
            .expect_stdout(&format!("{bb}\n"));
    }

    /// `nix-env -i` in a fresh HOME makes `~/.nix-profile` itself, and `nix-env -p`
    /// makes another profile; programs run through both.
    fn nix_env_makes_profiles(m: Mode) {
        let (fx, st) = setup!(m);
        std::fs::remove_file(fx.home.join(".nix-profile")).unwrap();
        Store::nix(&fx, &["nix-env", "-i", &st.tools]).ok();
        Store::nix(&fx, &["nix-env", "-p", "/nix/var/nix/profiles/other", "-i", &st.progs]).ok();
        let prof = st.home_profile(&fx);
        st.cmd(&fx, &["/bin/sh", "-c", r#"
readlink ~/.nix-profile
~/.nix-profile/bin/bash -c 'echo "$0 $(readlink /proc/$$/exe)"'
/nix/var/nix/profiles/other/bin/showself | head -2
"#]).run().expect_stdout(&format!(
            "{}\n{prof}/bin/bash {}\nargv0=/nix/var/nix/profiles/other/bin/showself\nexe={}\n",
            st.profile,
            st.tool("bash"),
            st.prog("showself")
        ));
    }
}

both_modes! {
    /// AT_EXECFN is the name given to execve, as natively: for a store ELF by path, by
    /// a relative name, by a long symlink path.
    fn execfn_is_the_name_given(m: Mode) {
        let (fx, st) = setup!(m);
        let long = fx.work.join("d".repeat(150));
        fx.mkdirs(&long);
        let (nat_long, guest_long) = (long.join("nat-link"), long.join("guest-link"));
        fx.symlink(format!("{}/bin/showself", st.native_dir("progs")), &nat_long);
        fx.symlink(st.prog("showself"), &guest_long);
        let s = |p: &std::path::Path| p.display().to_string();
        st.parity_with(&fx, r#"
"$P/bin/showself" | grep ^execfn=
(cd "$P" && bin/showself | grep ^execfn=)
"$LONG" | grep ^execfn=
"#, &[("LONG", &s(&nat_long), &s(&guest_long))]);
    }
}

both_modes! {
    /// python with an argv[0] that names no file (`exec -a py`, or
    /// os.execv("/proc/self/exe", ["x", ...])) looks for itself with readlink(""),
    /// which must fail with ENOENT as natively.
    fn python_with_argv0_not_a_file(m: Mode) {
        let (fx, st) = setup!(m);
        st.parity(&fx, r#"
"$T/bin/python3" -c '
import os
try: os.readlink("")
except OSError as e: print("readlink empty:", e.strerror)'
(exec -a py "$T/bin/python3" -c 'import sys; print("argv", sys.orig_argv[0], sys.argv)')
"$T/bin/python3" -c '
import os
os.execv("/proc/self/exe", ["x", "-c", "import os, sys; print(\"again\", sys.orig_argv[0], os.readlink(\"/proc/self/exe\"))"])'
"#);
    }

    /// /proc/PID/task/TID/exe is the same magic link as /proc/PID/exe: it shows the
    /// program, not its loader, from the main thread and from another thread.
    fn proc_task_exe_shows_the_program(m: Mode) {
        let (fx, st) = setup!(m);
        st.parity(&fx, r#"
"$T/bin/python3" -c '
import os, threading
pid = os.getpid()
print("main", os.readlink("/proc/self/task/%d/exe" % pid), os.readlink("/proc/%d/task/%d/exe" % (pid, pid)))
r = []
def t(): r.append(os.readlink("/proc/self/task/%d/exe" % threading.get_native_id()))
th = threading.Thread(target=t); th.start(); th.join()
print("thread", r)'
"#);
    }

    /// A parent reading /proc/CHILD/exe right after the child's exec returned (its
    /// close-on-exec pipe closed, as subprocess.Popen waits for) sees the new program,
    /// as natively: never the program the child was forked from, nor its loader. The
    /// parent is a store program (its children start with its record) and a host one
    /// (they start with none).
    fn proc_pid_exe_right_after_exec(m: Mode) {
        let (fx, st) = setup!(m);
        st.parity(&fx, r#"
for py in "$T/bin/python3" /usr/bin/python3; do "$py" -c '
import subprocess, os, collections
seen = collections.Counter()
for prog in [os.environ["T"] + "/bin/cat", "/usr/bin/cat"] * 15:
    p = subprocess.Popen([prog], stdin=subprocess.PIPE)
    seen[os.readlink("/proc/%d/exe" % p.pid)] += 1
    p.stdin.close(); p.wait()
for k, v in sorted(seen.items()): print(v, k)'
done
"#);
    }

    /// fexecve / execveat(fd, "", AT_EMPTY_PATH) of a store program, and execveat
    /// relative to a directory fd in the store: the program runs as natively, with the
    /// kernel's name for it (`/dev/fd/N`, `/dev/fd/N/NAME`) as AT_EXECFN.
    fn fexecve_of_a_store_program(m: Mode) {
        let (fx, st) = setup!(m);
        let execveat = c_prog("execveat").display().to_string();
        st.parity_with(&fx, r#"
"$EXECVEAT" dir "$P/bin" showself a
"$EXECVEAT" fd "$P/bin/showself" b
"$T/bin/python3" -c '
import os, sys
fd = os.open(os.environ["T"] + "/bin/echo", os.O_RDONLY)
try: os.execve(fd, ["echo", "fexecve ok"], {})
except OSError as e: print("fexecve", e.strerror)'
"#, &[("EXECVEAT", &execveat, &execveat)]);
    }
}

both_modes! {
    /// A new child reads /proc/self/exe at once, possibly before the tracer has seen
    /// its parent's fork event: a forked store python (no exec) shows python, never
    /// the loader; a child that execs at once after vfork or posix_spawn shows its new
    /// program, never its parent's. As natively, every time.
    fn proc_self_exe_in_a_new_child(m: Mode) {
        let (fx, st) = setup!(m);
        st.parity(&fx, r#"
"$T/bin/python3" -c '
import os, collections
seen = collections.Counter()
for i in range(100):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, os.readlink("/proc/self/exe").encode()); os._exit(0)
    os.close(w)
    seen["fork " + os.read(r, 4096).decode()] += 1
    os.close(r); os.waitpid(pid, 0)
for k, v in sorted(seen.items()): print(v, k)'
for i in $(seq 100); do
    "$P/bin/launch" vfork "$P/bin/showself" x | grep ^exe=
    "$P/bin/launch" vfork /usr/bin/readlink x /proc/self/exe | grep -v ^exited
    "$P/bin/launch" posix "$T/bin/readlink" x /proc/self/exe | grep -v ^exited
done | sort | uniq -c
"#);
    }
}

both_modes! {
    /// AT_EXECFN for a script whose interpreter is a store ELF (natively the script's
    /// name) and after execv("/proc/self/exe") (natively `/proc/self/exe`). glibc's
    /// loader points AT_EXECFN at the program it loads (the interpreter, or the
    /// program's path); ptnix points it back once the loader has done so.
    fn execfn_of_scripts_and_reexec(m: Mode) {
        let (fx, st) = setup!(m);
        let x = native_spaced(&fx, st);
        st.parity_with(&fx, r#"
"$X" | grep ^execfn=
"$P/bin/showself" reexec | grep ^execfn=
"#, &[("X", &x, &st.script("spaced"))]);
    }

    /// What /proc says of a store program, read by the program itself: cmdline (what
    /// `ps -f` shows), comm, and the name in stat and status (what `ps` and `top`
    /// show) are the program's, not its loader's: run directly, through the profile,
    /// as a script's interpreter (the task is named after the script, as natively),
    /// and after a re-exec of /proc/self/exe (named `exe`, as natively).
    fn proc_identity_is_the_programs(m: Mode) {
        let (fx, st) = setup!(m);
        let x = native_spaced(&fx, st);
        st.parity_with(&fx, r#"
"$P/bin/showself" ident a 'b c' | grep -v ^exe=
"$PROFILE/bin/showself" ident | grep -v ^exe=
"$X" ident | grep -v ^exe=
(exec -a renamed "$P/bin/showself" ident) | grep -v ^exe=
"$T/bin/python3" -c '
import os
os.execv("/proc/self/exe", ["py", "-c", "print(open(\"/proc/self/comm\").read().strip(), open(\"/proc/self/cmdline\").read().split(chr(0)))"])'
"#, &[("X", &x, &st.script("spaced"))]);
    }

    /// A store program that renames itself (prctl PR_SET_NAME, or a write to
    /// /proc/self/comm, which needs the real file) keeps the name it chose.
    fn a_renamed_store_program_keeps_its_name(m: Mode) {
        let (fx, st) = setup!(m);
        st.parity(&fx, r#"
"$T/bin/python3" -c '
with open("/proc/self/comm", "w") as f: f.write("chosen")
print(open("/proc/self/comm").read().strip(), open("/proc/self/stat").read().split()[1])'
"#);
    }
}

both_modes! {
    /// A store glibc too old for `--argv0` still runs its programs; the program then
    /// sees its own path as argv[0] (README, "What works"). Everything else is as
    /// natively: /proc/self/exe, the task name, the command line (consistent with
    /// that argv[0]), AT_EXECFN, arguments and the exit status.
    fn a_loader_without_argv0_still_runs(m: Mode) {
        let (fx, st) = setup!(m);
        let prog = nixstore::old_loader_showself(&fx, st);
        let out = st.cmd(&fx, &[prog.as_str(), "ident", "a b", "exit=7"]).run();
        assert_eq!(out.status.code(), Some(7), "{out}");
        let want = format!(
            "{}arg=ident\narg=a b\narg=exit=7\ncmdline={prog}|ident|a b|exit=7|\ncomm=showself\nstat=showself state=R\nstatus=showself\n",
            showself_head(&prog, &prog, &prog)
        );
        assert_eq!(out.stdout(), want, "{out}");
    }
}

both_modes! {
    /// An exec that ptnix rewrote and the kernel then refused (E2BIG: one argument
    /// longer than the kernel copies) leaves the program as it was; its children's
    /// execs of store and host programs, and its own next exec, are as natively: the
    /// command line, task name, /proc/self/exe and AT_EXECFN of each.
    fn a_refused_exec_changes_nothing(m: Mode) {
        let (fx, st) = setup!(m);
        st.parity(&fx, r#"
"$T/bin/python3" -c '
import os, subprocess, sys
p = os.environ["P"] + "/bin/showself"
try:
    os.execv(p, ["x", "y" * 200000])
except OSError as e:
    print("refused", e.errno)
print(os.path.basename(os.readlink("/proc/self/exe")), open("/proc/self/comm").read().strip())
sys.stdout.flush()
subprocess.run([p, "child"])
subprocess.run(["/bin/readlink", "/proc/self/exe"])
sys.stdout.flush()
os.execv(p, ["name", "arg"])
'
"#);
    }
}
