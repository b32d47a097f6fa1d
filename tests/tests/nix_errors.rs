//! Bad input around Nix under ptnix: a store directory the user cannot write (exit 125
//! and one `ptnix: ...` line naming it, the command never started), a store directory
//! given through a symlink (works: ptnix resolves it, and instances given the link and
//! the real directory share one store), and a missing `nix` binary (127). None of it
//! damages the store.

use ptnix_tests::env::TRACEE_PATH;
use ptnix_tests::nixenv::{self, one_path, NixStore, OFFLINE};
use ptnix_tests::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

macro_rules! store {
    ($m:expr) => {
        match NixStore::new($m) {
            Some(ns) => ns,
            None => return,
        }
    };
}

/// `ptnix run --store STORE [mode] -- ARGV` in fixture `fx`, offline.
fn run_with_store(fx: &Fixture, store: &Path, argv: &[&str]) -> Output {
    let mut args: Vec<&str> = vec!["run", "--store", store.to_str().unwrap()];
    args.extend(fx.mode.flags());
    args.push("--");
    args.extend(argv);
    fx.ptnix(&args)
        .env("NIX_CONFIG", OFFLINE)
        .timeout(nixenv::NIX_TIMEOUT)
        .run()
}

/// Exit 125 with exactly one line, `ptnix: ...`, naming `dir`; the command did not run.
#[track_caller]
fn refused(out: &Output, dir: &Path, marker: &Path) {
    assert_eq!(out.status.code(), Some(125), "\n{out}");
    let err = out.stderr();
    assert!(
        err.starts_with("ptnix: ") && err.ends_with('\n') && err.lines().count() == 1,
        "not one `ptnix: ` line\n{out}"
    );
    assert!(
        err.contains(dir.to_str().unwrap()),
        "the message does not name {}\n{out}",
        dir.display()
    );
    assert_eq!(out.stdout(), "", "\n{out}");
    assert!(!marker.exists(), "the command ran\n{out}");
}

both_modes! {
    /// A store directory in a place the user cannot write: ptnix stops before running
    /// anything, with exit 125 and one line naming the directory.
    fn store_directory_not_writable(m: Mode) {
        if !nixenv::prerequisites() {
            return;
        }
        let fx = Fixture::new(m);
        let marker = fx.work.join("ran");
        let cmd = ["/bin/sh", "-c", "touch \"$0\"; nix-store --init", marker.to_str().unwrap()];

        // A read-only directory that is to hold the store.
        let ro = fx.dir.join("ro");
        fx.mkdirs(&ro);
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        let out = run_with_store(&fx, &ro.join("store"), &cmd);
        refused(&out, &ro.join("store"), &marker);
        assert!(out.stderr().contains("Permission denied"), "\n{out}");
        // The read-only directory itself as the store.
        let out = run_with_store(&fx, &ro, &cmd);
        refused(&out, &ro, &marker);
        assert_eq!(fs::read_dir(&ro).unwrap().count(), 0, "ptnix wrote into {}", ro.display());

        // An existing store whose nix/store is read-only.
        let st = fx.dir.join("st");
        fx.mkdirs(&st.join("nix/store"));
        fx.mkdirs(&st.join("nix/var/nix"));
        fs::set_permissions(st.join("nix/store"), fs::Permissions::from_mode(0o555)).unwrap();
        let out = run_with_store(&fx, &st, &cmd);
        refused(&out, &st.join("nix/store"), &marker);
        assert!(out.stderr().contains("not writable"), "\n{out}");
        // The same through PTNIX_STORE.
        let mut args: Vec<&str> = vec!["run"];
        args.extend(m.flags());
        args.push("--");
        args.extend(cmd);
        let out = fx.ptnix(&args).env("PTNIX_STORE", &st).env("NIX_CONFIG", OFFLINE).timeout(nixenv::NIX_TIMEOUT).run();
        refused(&out, &st.join("nix/store"), &marker);
        for d in [&ro, &st.join("nix/store")] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    /// `--store LINK` with LINK -> the real directory (and a store below a linked
    /// directory): ptnix works through the link, and an instance given the real
    /// directory sees the same store, including the other instance's runtime roots.
    fn store_directory_through_a_symlink(m: Mode) {
        if !nixenv::prerequisites() {
            return;
        }
        let fx = Fixture::new(m);
        let link = fx.dir.join("store-link");
        fx.symlink(&fx.store, &link);
        let real = fx.store.clone();
        let init = run_with_store(&fx, &link, &["nix-store", "--init"]).ok();
        assert!(real.join("nix/var/nix/db/db.sqlite").is_file(), "the database is not in the real directory\n{init}");
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");

        // Build through the link.
        let bbdir = fx.dir.join("stage/bb");
        fx.copy_exec(nixenv::BUSYBOX, bbdir.join("busybox"));
        fx.symlink("busybox", bbdir.join("sh"));
        let bb = one_path(&run_with_store(&fx, &link, &["nix-store", "--add", bbdir.to_str().unwrap()]).ok());
        let ns = NixStore { fx, busybox: bb };
        ns.write("l.nix", &ns.drv("via-link", "mkdir $out && echo built via the link > $out/f && pwd > $out/pwd && readlink /proc/self/cwd >> $out/pwd && echo $out >> $out/pwd"));
        let b = run_with_store(&ns.fx, &link, &["nix-build", "--no-out-link", "l.nix"]).ok();
        let out = one_path(&b);
        assert_eq!(ns.fx.read_string(real.join(&out[1..]).join("f")), "built via the link\n");
        let pwd = ns.fx.read_string(real.join(&out[1..]).join("pwd"));
        let lines: Vec<&str> = pwd.lines().collect();
        assert_eq!(lines.len(), 3, "{pwd}");
        assert_eq!(lines[0], lines[1], "the builder's pwd and /proc/self/cwd differ: {pwd}");
        assert_eq!(lines[2], out);
        assert!(!lines[0].contains("store-link") && !lines[0].contains(real.to_str().unwrap()), "a host path leaked: {pwd}");
        // The guest's cwd through the link shows /nix paths.
        run_with_store(&ns.fx, &link, &["/bin/sh", "-c", &format!("cd {out} && pwd && /bin/pwd -P && readlink /proc/self/cwd")])
            .expect_stdout(&format!("{out}\n{out}\n{out}\n"));

        // The real directory: the same, valid store.
        ns.nix(&["nix-store", "--check-validity", &out, &ns.busybox]).ok();
        ns.verify();

        // A process under `--store LINK` with its cwd in a store path is a root for
        // the collector under `--store REAL`.
        let ready = ns.fx.work.join("ready");
        let stop = ns.fx.work.join("stop");
        let mut args: Vec<&str> = vec!["run", "--store", link.to_str().unwrap()];
        args.extend(ns.fx.mode.flags());
        let code = "import os, sys, time\nos.chdir(sys.argv[1])\nopen(sys.argv[2], 'w').close()\nwhile not os.path.exists(sys.argv[3]): time.sleep(0.02)\n";
        args.extend(["--", PYTHON, "-c", code, &out, ready.to_str().unwrap(), stop.to_str().unwrap()]);
        let holder = ns.fx.ptnix(&args).timeout(Duration::from_secs(60)).spawn();
        nixenv::wait_for("the holder", Duration::from_secs(30), || ready.exists());
        let gc = ns.nix(&["nix-store", "--gc"]).ok();
        assert!(ns.valid(&out), "{out} (cwd of a process under --store LINK) was collected\n{gc}");
        ns.fx.write(&stop, "");
        holder.wait().ok();
        let gc2 = ns.nix(&["nix-store", "--gc"]).ok();
        assert!(!ns.valid(&out), "\n{gc2}");

        // A store below a symlinked directory: DIR-LINK/store.
        let fx2 = Fixture::new(m);
        let dlink = fx2.dir.join("dir-link");
        fx2.symlink(&fx2.dir, &dlink);
        let via = dlink.join("store");
        run_with_store(&fx2, &via, &["nix-store", "--init"]).ok();
        let v = run_with_store(&fx2, &via, &["/bin/sh", "-c", "cd /nix/store && pwd -P && readlink /proc/self/cwd"]).ok();
        assert_eq!(v.stdout(), "/nix/store\n/nix/store\n", "\n{v}");
        assert!(fx2.store.join("nix/var/nix/db/db.sqlite").is_file());
    }

    /// No `nix` in PATH: 127 (from ptnix itself, or from the shell inside), and the
    /// store is exactly as before.
    fn missing_nix_binary(m: Mode) {
        let ns = store!(m);
        ns.write("x.nix", &ns.drv("x", "mkdir $out && echo x > $out/x"));
        let out = one_path(&ns.nix(&["nix-build", "--no-out-link", "x.nix"]).ok());
        let before = ns.store_names();
        let db = fs::read(ns.host("/nix/var/nix/db/db.sqlite")).unwrap();

        let empty = ns.fx.dir.join("empty-bin");
        ns.fx.mkdirs(&empty);
        for argv in [&["nix-store", "--verify"][..], &["nix-build", "x.nix"], &["nix", "--version"]] {
            let r = ns.cmd(argv).env("PATH", &empty).run();
            assert_eq!(r.status.code(), Some(127), "\n{r}");
            assert_eq!(r.stderr(), format!("ptnix: {}: command not found\n", argv[0]), "\n{r}");
            assert_eq!(r.stdout(), "", "\n{r}");
        }
        // Inside: the shell's own 127.
        let r = ns.cmd(&["/bin/sh", "-c", "PATH=/nonexistent; nix-build x.nix"]).run();
        assert_eq!(r.status.code(), Some(127), "\n{r}");
        assert!(r.stderr().contains("nix-build: not found"), "\n{r}");
        // A PATH of directories without nix but with everything else.
        let no_nix: Vec<&str> = TRACEE_PATH.split(':').filter(|d| !Path::new(d).join("nix-store").exists()).collect();
        if !no_nix.is_empty() {
            let r = ns.cmd(&["nix-store", "--init"]).env("PATH", no_nix.join(":")).run();
            assert_eq!(r.status.code(), Some(127), "\n{r}");
        }

        assert_eq!(ns.store_names(), before, "the store changed");
        assert_eq!(fs::read(ns.host("/nix/var/nix/db/db.sqlite")).unwrap(), db, "the database changed");
        assert!(ns.valid(&out));
        ns.verify();
        assert!(!ns.fx.work.join("result").exists());
    }
}
