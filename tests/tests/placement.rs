//! CPU placement (tracer/src/placement.rs): ptnix moves tracees that stop often onto
//! its own CPU. A tracee must not be able to tell (its CPU mask is what it would be
//! natively, and a mask it sets is its own), and a tracee that computes must get its
//! CPUs back, even while it makes no syscall at all.

use ptnix_tests::*;

/// Prints what the process sees of its CPU mask after making it pinned (thousands of
/// stops), then sets its own mask to one CPU and shows that a child inherits it.
const MASKS: &str = r#"
import os, subprocess
for i in range(3000): os.stat("/nix")
print("own", sorted(os.sched_getaffinity(0)))
print("nproc", subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
first = min(os.sched_getaffinity(0))
os.sched_setaffinity(0, {first})
for i in range(3000): os.stat("/nix")
print("set", sorted(os.sched_getaffinity(0)))
print("child nproc", subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
status = open("/proc/self/status").read()
print("real", [l.split()[1] for l in status.splitlines() if l.startswith("Cpus_allowed_list")])
# A request for more CPUs than exist: the kernel keeps the ones that do.
os.sched_setaffinity(0, set(range(64)))
for i in range(3000): os.stat("/nix")
print("wide", sorted(os.sched_getaffinity(0)))
"#;

/// A thread that spins without any syscall while the main thread polls its real mask
/// (Cpus_allowed_list) until it is the whole mask again, for at most 20 s.
const RELEASE: &str = r#"
import os, threading, time
for i in range(3000): os.stat("/nix")
want = open("/proc/self/status").read().split("Cpus_allowed_list:")[1].split()[0]
stop = False
tid = []
def spin():
    tid.append(threading.get_native_id())
    x = 0
    while not stop:
        x += 1
t = threading.Thread(target=spin)
t.start()
while not tid: pass
released = False
for i in range(2000):
    s = open("/proc/self/task/%d/status" % tid[0]).read()
    if s.split("Cpus_allowed_list:")[1].split()[0] == os.environ["FULL"]:
        released = True
        break
    time.sleep(0.01)
stop = True
t.join()
print("released", released)
"#;

/// The CPU list this test process may use, as /proc shows it.
fn full_list() -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.split("Cpus_allowed_list:").nth(1).unwrap().split_whitespace().next().unwrap().to_string()
}

both_modes! {
    /// sched_getaffinity (Python's, and nproc's) says what it says natively while
    /// ptnix has the process pinned; a mask the process sets is its own, is inherited
    /// by its children, and is really in force.
    fn affinity_is_the_tracees_own(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let native = fx.plain(&[PYTHON, "-c", &MASKS.replace("/nix", "/")]).run().ok();
        fx.py(MASKS, &[] as &[&str]).expect_stdout(&native.stdout());
    }

    /// A thread that computes is given its CPUs back within a few milliseconds, by
    /// the watchdog, while it still makes no syscall: a parallel build stays parallel.
    fn a_computing_tracee_is_released(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        fx.cmd(&[PYTHON, "-c", RELEASE]).env("FULL", full_list()).run().expect_stdout("released True\n");
    }

    /// A process that makes many path calls but only one ptrace stop (its execve; the
    /// calls are notifications in the default mode) is moved next to ptnix all the
    /// same.
    fn notifications_alone_pin(m: Mode) {
        require!(Cc);
        let fx = Fixture::new(m);
        let out = fx.run(&[c_prog("hostile").as_os_str(), "statloop".as_ref(), "3000".as_ref(), "/tmp".as_ref()]).ok();
        let cpus = out.stdout().trim().to_string();
        if full_list().contains(['-', ',']) {
            // More than one CPU: pinned to one of them (the pure-ptrace mode stops at
            // every syscall, and pins as before).
            assert!(!cpus.contains(['-', ',']), "not pinned: {cpus}\n{out}");
        }
    }

    /// `--no-pin` (and PTNIX_NO_PIN) leave placement to the kernel: nothing is pinned.
    fn no_pin_pins_nothing(m: Mode) {
        require!(Python3);
        let fx = Fixture::new(m);
        let code = "import os\nfor i in range(3000): os.stat('/nix')\nprint(open('/proc/self/status').read().split('Cpus_allowed_list:')[1].split()[0])\n";
        let full = format!("{}\n", full_list());
        fx.cmd(&[PYTHON, "-c", code]).env("PTNIX_NO_PIN", "1").run().expect_stdout(&full);
        let mut argv: Vec<&str> = vec!["run", "--no-pin"];
        argv.extend(m.flags());
        argv.extend(["--store", fx.store.to_str().unwrap(), "--", PYTHON, "-c", code]);
        fx.ptnix(&argv).run().expect_stdout(&full);
    }
}
