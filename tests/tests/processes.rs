//! Translation follows every process and thread: an exec from a non-main thread, 1000
//! concurrent forks, threads racing on /nix paths, vfork-style spawns, pipelines.

use ptnix_tests::*;

both_modes! {
    /// A non-main thread execs (the kernel moves it to the main thread's pid) while
    /// other threads spin on stat("/nix/store"): the new program runs, translated,
    /// and its exit status comes back.
    fn exec_from_non_main_thread(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        fx.copy_exec(c_prog("self"), fx.host("/nix/store/bin/self"));
        let out = fx.run(&[c_prog("thread_exec").as_os_str(), "/nix/store/bin/self".as_ref(), "exit=42".as_ref()]);
        assert_eq!(out.code(), 42, "\n{out}");
        assert_eq!(
            out.stdout(),
            format!("argv0=/nix/store/bin/self\nexe=/nix/store/bin/self\ncwd={}\narg=exit=42\n", fx.work.display()),
            "\n{out}"
        );
        assert_eq!(out.stderr(), "", "\n{out}");
    }

    /// 1000 children at once, each reading a /nix file and exiting with its own
    /// status; the parent checks them all.
    fn thousand_forks(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/store/forkfile"), "x");
        fx.run(&[c_prog("forks").as_os_str(), "1000".as_ref(), "/nix/store/forkfile".as_ref()])
            .expect_stdout("forked 1000 bad 0\n");
    }

    /// Threads doing path syscalls concurrently each get their own translation.
    fn threads_race_on_nix_paths(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = r#"
import os, threading
errors = []
def work(i):
    d = '/nix/store/t%d' % i
    try:
        for j in range(100):
            os.makedirs(d + '/x', exist_ok=True)
            p = '%s/x/f%d' % (d, j)
            with open(p, 'w') as f: f.write(str(i))
            if open(p).read() != str(i): errors.append(p)
            os.rename(p, p + '.r'); os.stat(p + '.r'); os.unlink(p + '.r')
    except Exception as e: errors.append(repr(e))
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print(errors, sorted(os.listdir('/nix/store')))
"#;
        fx.py(code, &[] as &[&str])
            .expect_stdout("[] ['t0', 't1', 't2', 't3', 't4', 't5', 't6', 't7']\n");
    }

    /// Job control through the tracer: a parent sees its child stop (WUNTRACED),
    /// continue (WCONTINUED) and die of SIGTERM, as without ptrace.
    fn stop_continue_kill_child(m: Mode) {
        require!(Python3, Sh);
        let fx = Fixture::new(m);
        let code = r#"
import os, signal, time
pid = os.fork()
if pid == 0:
    while True: time.sleep(1)
os.kill(pid, signal.SIGSTOP)
p, st = os.waitpid(pid, os.WUNTRACED)
print('stopped', os.WIFSTOPPED(st) and os.WSTOPSIG(st) == signal.SIGSTOP)
os.kill(pid, signal.SIGCONT)
p, st = os.waitpid(pid, os.WCONTINUED)
print('continued', os.WIFCONTINUED(st))
os.kill(pid, signal.SIGTERM)
p, st = os.waitpid(pid, 0)
print('killed', os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGTERM)
"#;
        fx.cmd(&[PYTHON, "-c", code])
            .timeout(std::time::Duration::from_secs(60))
            .run()
            .expect_stdout("stopped True\ncontinued True\nkilled True\n");
        fx.sh("sleep 30 & kill -STOP $!; kill -CONT $!; kill $!; wait $!; echo $?").expect_stdout("143\n");
    }

    /// posix_spawn (vfork-style clone), subprocess and shell pipelines with subshells.
    fn spawns_and_pipelines(m: Mode) {
        require!(Python3, Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.write_exec(fx.host("/nix/store/bin/hi"), "#!/bin/sh\necho \"hi $1\"\n");
        let code = r#"
import os, subprocess
pid = os.posix_spawn('/nix/store/bin/hi', ['hi', 'spawn'], os.environ)
print(os.waitpid(pid, 0)[1], flush=True)
print(subprocess.run(['/nix/store/bin/hi', 'sub'], capture_output=True, cwd='/nix/store').stdout.decode(), end='')
print(subprocess.run('cd /nix/store && pwd -P', shell=True, capture_output=True).stdout.decode(), end='')
"#;
        fx.py(code, &[] as &[&str]).expect_stdout("hi spawn\n0\nhi sub\n/nix/store\n");
        fx.sh("(cd /nix/store && /nix/store/bin/hi a | tr a-z A-Z) | cat > /nix/store/out; cat /nix/store/out; \
               ( (cd /nix/store/bin && exec ./hi deep) )")
            .expect_stdout("HI A\nhi deep\n");
    }

    /// A tracee keeps the speculation mitigations a native process has, also after
    /// ptnix put its getdents filter in it (a descriptor of `/` that could not be
    /// moved above a low RLIMIT_NOFILE): ptnix installs its filters with
    /// SECCOMP_FILTER_FLAG_SPEC_ALLOW, so a kernel whose mitigations are in `seccomp`
    /// mode (the default before Linux 5.16) does not force Speculative Store Bypass
    /// disable, STIBP and IBPB on every tracee. (On a machine with none of these
    /// mitigations both sides read the same either way.)
    fn speculation_state_as_native(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = r#"
import os, resource
def state():
    return ''.join(l + '\n' for l in open('/proc/self/status').read().splitlines() if l.startswith('Specul'))
before = state()
resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))
fd = os.open('/', os.O_RDONLY | os.O_DIRECTORY)
os.listdir(fd)
assert state() == before, (before, state())
print(before, end='')
"#;
        let native = fx.plain(&[PYTHON, "-c", code]).run().ok();
        assert!(native.stdout().contains("Speculation_Store_Bypass:"), "\n{native}");
        fx.py(code, &[] as &[&str]).expect_stdout(&native.stdout());
    }
}
