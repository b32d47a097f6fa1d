//! Nix's garbage collector under ptnix never deletes a live path: a store path that a
//! process running under ANOTHER ptnix instance on the same store uses only as its
//! cwd, only through an open file descriptor, only through a memory mapping, or as
//! the running program itself, is a runtime root (Nix reads /proc/PID/{cwd,fd,maps,
//! exe}, which ptnix shows with /nix paths). `nix-store --gc` keeps it and
//! `nix-store --delete` refuses; once the process exits the path is collected.

use ptnix_tests::nixenv::{self, NixStore};
use ptnix_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

macro_rules! store {
    ($m:expr) => {
        match NixStore::new($m) {
            Some(ns) => ns,
            None => return,
        }
    };
}

/// How long a holder may take to get ready.
const READY: Duration = Duration::from_secs(30);

/// The ways a process refers to `host` (a host store path) in the host's /proc:
/// "cwd", "exe", "fd", "maps", "environ".
fn proc_refs(pid: i32, host: &Path) -> Vec<&'static str> {
    let mut v = Vec::new();
    let under = |p: &Path| p.starts_with(host);
    if fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|p| under(&p)) {
        v.push("cwd");
    }
    if fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| under(&p)) {
        v.push("exe");
    }
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) {
        if rd
            .flatten()
            .any(|e| fs::read_link(e.path()).is_ok_and(|p| under(&p)))
        {
            v.push("fd");
        }
    }
    let h = host.to_str().unwrap();
    if fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|m| m.contains(h)) {
        v.push("maps");
    }
    let base = host.file_name().unwrap().to_str().unwrap();
    if fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|e| String::from_utf8_lossy(&e).contains(base))
    {
        v.push("environ");
    }
    v
}

/// The test proper, once a holder (started by `start`, under its own ptnix instance)
/// uses `live` in the way `kind` names: GC keeps it, --delete refuses, and after
/// `stop` the path is collected.
fn gc_keeps_live(
    ns: &NixStore,
    live: &str,
    kind: &str,
    holder: Running,
    stop: impl FnOnce(&Running),
) {
    // Garbage that is not live at all: the collector must delete it.
    let garbage_dir = ns.fx.dir.join("stage/garbage");
    ns.fx.write(garbage_dir.join("g"), "garbage\n");
    let garbage = ns.add(&garbage_dir);

    // The holder's processes refer to the path only in the way under test.
    let host = ns.host(live);
    let procs = nixenv::descendants(holder.pid());
    let refs: Vec<Vec<&str>> = procs.iter().map(|&p| proc_refs(p, &host)).collect();
    assert!(
        refs.iter().any(|r| r.contains(&kind)),
        "no process of the holder has {live} as its {kind}: {procs:?} {refs:?}"
    );
    for r in &refs {
        for k in r {
            assert!(
                *k == kind || (kind == "exe" && *k == "maps"),
                "the holder also refers to {live} through {k}: {refs:?}"
            );
        }
    }

    let roots = ns.nix(&["nix-store", "--gc", "--print-roots"]).ok();
    assert!(
        roots
            .stdout()
            .lines()
            .any(|l| l.starts_with("/proc/") && l.contains(live)),
        "{live} ({kind} of a process under another ptnix) is not among the roots\n{roots}"
    );
    let del = ns.nix(&["nix-store", "--delete", live]).expect_code(1);
    assert!(
        del.stderr().contains(&format!(
            "Cannot delete path '{live}' since it is still alive"
        )),
        "\n{del}"
    );
    let gc = ns.nix(&["nix-store", "--gc"]).ok();
    assert!(
        ns.valid(live),
        "{live} was collected while in use ({kind})\n{gc}"
    );
    assert!(
        host.exists(),
        "{live} was deleted from the disk while in use ({kind})\n{gc}"
    );
    assert!(
        !ns.valid(&garbage),
        "the garbage {garbage} survived: did the GC run?\n{gc}"
    );
    assert!(!ns.host(&garbage).exists(), "\n{gc}");
    ns.nix(&["nix-store", "--verify-path", live]).ok();

    // The holder ends: the path is garbage now.
    stop(&holder);
    let done = holder.wait();
    assert!(
        done.status.code().is_some(),
        "the holder's ptnix died of a signal\n{done}"
    );
    let gc2 = ns.nix(&["nix-store", "--gc"]).ok();
    assert!(
        !ns.valid(live),
        "{live} survived once its process had exited\n{gc2}"
    );
    assert!(!host.exists(), "{live} left on the disk\n{gc2}");
    ns.verify();
}

/// A python holder under its own ptnix instance: runs CODE (which gets the store path
/// as `P`), then writes `ready` and waits for `stop` (both in the work directory).
fn python_holder(ns: &NixStore, code: &str, live: &str) -> (Running, PathBuf) {
    let ready = ns.fx.work.join("ready");
    let stop = ns.fx.work.join("stop");
    let script = format!(
        "import os, sys, time, ctypes\nP = sys.argv[1]\n{code}\nopen(sys.argv[2], 'w').close()\nwhile not os.path.exists(sys.argv[3]):\n    time.sleep(0.02)\n"
    );
    let r = ns
        .fx
        .cmd(&[
            PYTHON,
            "-c",
            &script,
            live,
            ready.to_str().unwrap(),
            stop.to_str().unwrap(),
        ])
        .timeout(Duration::from_secs(120))
        .spawn();
    nixenv::wait_for("the holder to be ready", READY, || ready.exists());
    (r, stop)
}

/// Holder code: maps `P/data`, then closes the descriptor.
const MAP_DATA: &str = "libc = ctypes.CDLL(None, use_errno=True)\nlibc.mmap.restype = ctypes.c_void_p\nlibc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]\nfd = os.open(P + '/data', os.O_RDONLY)\naddr = libc.mmap(None, 65536, 1, 2, fd, 0)\nassert addr not in (None, 2**64 - 1), ctypes.get_errno()\nos.close(fd)\nassert ctypes.string_at(addr, 4) == b'xxxx'";

/// A store path holding `data` (a file of 64 KiB).
fn add_data(ns: &NixStore, name: &str) -> String {
    let d = ns.fx.dir.join("stage").join(name);
    ns.fx.write(d.join("data"), vec![b'x'; 65536]);
    ns.add(&d)
}

both_modes! {
    /// Only the cwd of a process (python: no store path in its environment).
    fn cwd_is_a_root(m: Mode) {
        let ns = store!(m);
        let live = add_data(&ns, "live-cwd");
        let (h, stop) = python_holder(&ns, "os.chdir(P)", &live);
        gc_keeps_live(&ns, &live, "cwd", h, |_| ns.fx.write(&stop, ""));
    }

    /// Only an open file (`exec 3< /nix/store/X/data` in a shell that then waits).
    fn open_file_is_a_root(m: Mode) {
        let ns = store!(m);
        let live = add_data(&ns, "live-fd");
        let ready = ns.fx.work.join("ready");
        let stop = ns.fx.work.join("stop");
        let h = ns
            .fx
            .cmd(&[
                "/bin/sh",
                "-c",
                "exec 3< \"$0/data\"; : > \"$1\"; while [ ! -e \"$2\" ]; do sleep 0.05; done",
                &live,
                ready.to_str().unwrap(),
                stop.to_str().unwrap(),
            ])
            .timeout(Duration::from_secs(120))
            .spawn();
        nixenv::wait_for("the holder to be ready", READY, || ready.exists());
        gc_keeps_live(&ns, &live, "fd", h, |_| ns.fx.write(&stop, ""));
    }

    /// Only a memory mapping (mmap'ed, then the descriptor closed).
    fn mapping_is_a_root(m: Mode) {
        let ns = store!(m);
        let live = add_data(&ns, "live-map");
        let (h, stop) = python_holder(&ns, MAP_DATA, &live);
        gc_keeps_live(&ns, &live, "maps", h, |_| ns.fx.write(&stop, ""));
    }

    /// A collector under a ptnix that cannot write its snapshot of `/proc/PID/maps`
    /// (its private directory cannot be made: XDG_RUNTIME_DIR, short enough to be
    /// taken, names no directory) stops with an error rather than read host paths
    /// there and delete the mapped path.
    fn mapping_without_a_snapshot_stops_the_collector(m: Mode) {
        let ns = store!(m);
        let live = add_data(&ns, "live-map");
        assert!(!Path::new("/zq").exists());
        let (h, stop) = python_holder(&ns, MAP_DATA, &live);
        let gc = ns.cmd(&["nix-store", "--gc"]).env("XDG_RUNTIME_DIR", "/zq").run();
        assert_ne!(gc.code(), 0, "\n{gc}");
        assert!(gc.stderr().contains("Input/output error"), "\n{gc}");
        assert!(ns.valid(&live) && ns.host(&live).exists(), "{live} collected while mapped\n{gc}");
        ns.fx.write(&stop, "");
        h.wait();
    }

    /// The running program itself: a store copy of `sleep` (its exe and mappings).
    fn running_store_program_is_a_root(m: Mode) {
        let ns = store!(m);
        let d = ns.fx.dir.join("stage/sleeper");
        ns.fx.copy_exec("/bin/sleep", d.join("bin/sleep"));
        let live = ns.add(&d);
        let prog = format!("{live}/bin/sleep");
        let host_prog = ns.host(&prog);
        let h = ns.fx.cmd(&[prog.as_str(), "100"]).timeout(Duration::from_secs(120)).spawn();
        let ptnix_pid = h.pid();
        nixenv::wait_for("the store's sleep to run", READY, || {
            nixenv::descendants(ptnix_pid)
                .iter()
                .any(|p| fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e == host_prog))
        });
        gc_keeps_live(&ns, &live, "exe", h, |h| h.signal(libc::SIGTERM));
    }
}

/// While `nix-store --gc` runs in one ptnix instance (deleting thousands of garbage
/// paths, so it holds the GC lock for a while), another instance adds a path: Nix's
/// client then registers its temporary root through the collector's socket
/// (/nix/var/nix/gc-socket/socket), and the new path must survive the collection.
fn add_during_gc(ns: &NixStore) {
    const GARBAGE: usize = 2000;
    let g = ns.fx.dir.join("garbage");
    for i in 0..GARBAGE {
        ns.fx.write(g.join(format!("g{i}/f")), format!("{i}\n"));
    }
    let add = ns
        .nix(&[
            "/bin/sh",
            "-c",
            &format!("nix-store --add {}/* | wc -l", g.display()),
        ])
        .ok();
    assert_eq!(add.stdout().trim(), GARBAGE.to_string(), "\n{add}");
    let count = || fs::read_dir(ns.host("/nix/store")).unwrap().count();
    let before = count();

    ns.fx
        .write(ns.fx.work.join("fresh.txt"), "added during the GC\n");
    let gc = ns
        .cmd(&["nix-store", "--gc"])
        .timeout(Duration::from_secs(120))
        .spawn();
    // The collector is deleting: it holds the lock and its socket is up.
    nixenv::wait_for("the GC to start deleting", Duration::from_secs(60), || {
        count() < before
    });
    let added = ns.nix(&["nix-store", "--add", "fresh.txt", "--debug"]).ok();
    let still_collecting = count() > GARBAGE / 10;
    let gc = gc.wait().ok();
    let fresh = added
        .stdout()
        .lines()
        .find(|l| l.ends_with("-fresh.txt"))
        .unwrap_or_else(|| panic!("no path printed\n{added}"))
        .to_string();
    if still_collecting {
        // The add certainly overlapped the collection: it went through the socket.
        assert!(
            added
                .stderr()
                .contains("connecting to '/nix/var/nix/gc-socket/socket'"),
            "the add did not talk to the running collector\n{added}\n{gc}"
        );
    } else {
        eprintln!("note: the collection ended before the add did: its socket was not exercised");
    }
    assert!(
        ns.valid(&fresh),
        "{fresh}, added during the GC, was collected\n{added}\n{gc}"
    );
    assert_eq!(ns.fx.read_string(ns.host(&fresh)), "added during the GC\n");
    // Exactly the garbage and the (unused) busybox were deleted.
    assert!(
        gc.stdout()
            .starts_with(&format!("{} store paths deleted", GARBAGE + 1)),
        "\n{gc}"
    );
    ns.verify();
}

both_modes! {
    fn path_added_during_gc_survives(m: Mode) {
        let Some(ns) = NixStore::new(m) else { return };
        add_during_gc(&ns);
    }

    /// The same with the collector's socket path longer than `sun_path` on the host.
    fn path_added_during_gc_survives_deep_store(m: Mode) {
        let Some(ns) = NixStore::new_deep(m) else { return };
        add_during_gc(&ns);
    }
}

both_modes! {
    /// Permanent roots: `./result` of nix-build and `--add-root` links live outside the
    /// store (host paths, registered in /nix/var/nix/gcroots/auto) and point into
    /// /nix; the collector follows them. Removing a link makes its path garbage.
    fn permanent_roots_outside_the_store(m: Mode) {
        let Some(ns) = NixStore::new(m) else { return };
        ns.write("kept.nix", &ns.drv("kept", &format!("mkdir $out && ln -s {}/sh $out/sh", ns.busybox)));
        let b = ns.nix(&["nix-build", "kept.nix"]).ok();
        let kept = nixenv::one_path(&b);
        let other = add_data(&ns, "other");
        let root = ns.fx.work.join("roots/other-root");
        ns.fx.mkdirs(root.parent().unwrap());
        let r = ns.nix(&["nix-store", "--add-root", root.to_str().unwrap(), "-r", &other]).ok();
        assert_eq!(r.stdout(), format!("{}\n", root.display()), "\n{r}");
        assert_eq!(fs::read_link(&root).unwrap().to_str().unwrap(), other);
        let garbage = add_data(&ns, "garbage");

        let roots = ns.nix(&["nix-store", "--gc", "--print-roots"]).ok();
        for (link, p) in [(ns.fx.work.join("result"), &kept), (root.clone(), &other)] {
            assert!(roots.stdout().contains(&format!("{} -> {p}\n", link.display())), "\n{roots}");
        }
        let gc = ns.nix(&["nix-store", "--gc"]).ok();
        for p in [&kept, &other, &ns.busybox] {
            assert!(ns.valid(p), "{p} was collected although rooted\n{gc}");
        }
        assert!(!ns.valid(&garbage), "\n{gc}");
        let dead = ns.nix(&["nix-store", "--gc", "--print-dead"]).ok();
        assert_eq!(dead.stdout(), "", "nothing should be dead now\n{dead}");

        // Unrooted: ./result removed (from the guest, through ptnix).
        ns.fx.sh("rm result").ok();
        let dead = ns.nix(&["nix-store", "--gc", "--print-dead"]).ok();
        let mut d: Vec<String> = dead.stdout().lines().filter(|l| !l.ends_with(".drv")).map(String::from).collect();
        d.sort();
        let mut want = vec![kept.clone(), ns.busybox.clone()];
        want.sort();
        assert_eq!(d, want, "\n{dead}");
        let gc = ns.nix(&["nix-store", "--gc"]).ok();
        assert!(!ns.valid(&kept) && !ns.valid(&ns.busybox), "\n{gc}");
        assert!(ns.valid(&other), "\n{gc}");
        ns.verify();
    }
}
