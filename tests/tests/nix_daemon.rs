//! `nix-daemon` under ptnix: it listens on /nix/var/nix/daemon-socket/socket (a real
//! unix socket in the store directory), and clients running under other ptnix
//! instances on the same store use it (`NIX_REMOTE=daemon`, `--store daemon`) to
//! query, add and build. Killing the daemon's ptnix ends every daemon process.

use ptnix_tests::nixenv::{self, one_path, NixStore};
use ptnix_tests::*;
use std::fs;
use std::time::Duration;

const SOCKET: &str = "/nix/var/nix/daemon-socket/socket";

both_modes! {
    fn daemon_serves_clients_of_other_instances(m: Mode) {
        let Some(ns) = NixStore::new(m) else { return };
        daemon_serves(ns);
    }

    /// The same in a store so deep that the socket's host path exceeds `sun_path`.
    fn daemon_with_socket_path_longer_than_sun_path(m: Mode) {
        let Some(ns) = NixStore::new_deep(m) else { return };
        daemon_serves(ns);
    }
}

fn daemon_serves(ns: NixStore) {
    // Something to query: a path with a reference, built before the daemon starts.
    ns.write(
        "pre.nix",
        &ns.drv(
            "pre",
            &format!("mkdir $out && ln -s {}/sh $out/sh", ns.busybox),
        ),
    );
    let pre = one_path(&ns.nix(&["nix-build", "--no-out-link", "pre.nix"]).ok());

    let daemon = ns
        .cmd(&["nix-daemon"])
        .timeout(Duration::from_secs(120))
        .spawn();
    let sock = ns.host(SOCKET);
    nixenv::wait_for("the daemon's socket", Duration::from_secs(30), || {
        nixenv::is_socket(&sock)
    });
    let daemon_procs = nixenv::descendants(daemon.pid());
    assert!(
        !daemon_procs.is_empty(),
        "no process under the daemon's ptnix"
    );

    let client = |argv: &[&str]| ns.cmd(argv).env("NIX_REMOTE", "daemon").run();
    let ping = ns.nix(&["nix", "store", "ping", "--store", "daemon"]).ok();
    assert!(
        ping.stderr().contains("Store URL: daemon\nVersion: 2."),
        "\n{ping}"
    );
    let refs = client(&["nix-store", "-q", "--references", &pre]).ok();
    assert_eq!(refs.stdout(), format!("{}\n", ns.busybox), "\n{refs}");

    ns.fx.write(
        ns.fx.work.join("via-daemon.txt"),
        "added through the daemon\n",
    );
    let added = client(&["nix-store", "--add", "via-daemon.txt"]).ok();
    let added = one_path(&added);
    assert!(added.ends_with("-via-daemon.txt"));
    assert_eq!(
        ns.fx.read_string(ns.host(&added)),
        "added through the daemon\n"
    );

    ns.write(
        "d.nix",
        &ns.drv(
            "through-daemon",
            "mkdir $out && echo built by the daemon > $out/f && cat /proc/$PPID/comm > $out/parent",
        ),
    );
    let built = client(&["nix-build", "--no-out-link", "d.nix"]).ok();
    let out = one_path(&built);
    assert_eq!(
        ns.fx.read_string(ns.host(&format!("{out}/f"))),
        "built by the daemon\n"
    );
    // The builder was started by a daemon process, not by the client.
    assert_eq!(
        ns.fx.read_string(ns.host(&format!("{out}/parent"))),
        "nix-daemon\n",
        "the builder's parent"
    );
    let nb = ns
        .cmd(&[
            "nix",
            "build",
            "--store",
            "daemon",
            "-f",
            "d.nix",
            "--no-link",
        ])
        .run()
        .ok();
    assert!(!nb.stderr().contains("building"), "built twice\n{nb}");
    // Without the daemon (a direct client), the store agrees.
    for p in [&added, &out] {
        assert!(ns.valid(p), "{p} is not valid");
    }

    // The daemon collects garbage for a client, and keeps a path that is the cwd of a
    // process under a third ptnix instance.
    ns.fx.write(ns.fx.work.join("held/data"), "held\n");
    let held = one_path(&client(&["nix-store", "--add", "held"]).ok());
    let ready = ns.fx.work.join("ready");
    let stop = ns.fx.work.join("stop");
    let code = "import os, sys, time\nos.chdir(sys.argv[1])\nopen(sys.argv[2], 'w').close()\nwhile not os.path.exists(sys.argv[3]): time.sleep(0.02)\n";
    let holder = ns
        .fx
        .cmd(&[
            PYTHON,
            "-c",
            code,
            &held,
            ready.to_str().unwrap(),
            stop.to_str().unwrap(),
        ])
        .timeout(Duration::from_secs(60))
        .spawn();
    nixenv::wait_for("the holder", Duration::from_secs(30), || ready.exists());
    let gc = client(&["nix-store", "--gc"]).ok();
    assert!(
        ns.valid(&held),
        "the daemon collected {held}, the cwd of a running process\n{gc}"
    );
    ns.fx.write(&stop, "");
    holder.wait().ok();
    let gc = client(&["nix-store", "--gc"]).ok();
    assert!(
        !ns.valid(&held),
        "the daemon kept {held} after its process exited\n{gc}"
    );
    for p in [&added, &out, &pre] {
        assert!(
            !ns.valid(p),
            "{p} (unrooted) survived the daemon's GC\n{gc}"
        );
    }

    // Stop the daemon: its ptnix passes SIGTERM on; nothing is left behind.
    let all = nixenv::descendants(daemon.pid());
    daemon.signal(libc::SIGTERM);
    let done = daemon.wait();
    assert!(
        done.status.code().is_some(),
        "the daemon's ptnix died of a signal\n{done}"
    );
    let log = done.stderr();
    let conns = log.matches("accepted connection from pid").count();
    assert_eq!(
        conns, 8,
        "one connection per client command expected\n{done}"
    );
    for p in all.iter().chain(daemon_procs.iter()) {
        assert!(
            !nixenv::process_alive(*p),
            "daemon process {p} outlived its ptnix\n{done}"
        );
    }
    // The socket file stays (as with Nix natively); the store is intact.
    assert!(fs::symlink_metadata(&sock).is_ok());
    ns.verify();
}
