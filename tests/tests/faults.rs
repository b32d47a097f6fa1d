//! Faults from outside: ptnix killed with SIGKILL in the middle of a build, a full
//! disk under the store, a store on tmpfs. Nothing may survive ptnix, nothing may be
//! lost or half-registered, and the kernel's errors reach Nix unchanged.

use ptnix_tests::nixenv::{descendants, one_path, process_alive, wait_for, NixStore};
use ptnix_tests::*;
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

/// A builder that writes a file every 20 ms into its output until `go` exists, after
/// saying (in `started`) that it runs.
fn stalling(ns: &NixStore, name: &str, started: &Path, go: &Path) -> String {
    ns.drv(
        name,
        &format!(
            "mkdir $out && touch {s} && i=0 && while [ ! -e {g} ]; do echo $i > $out/f$i; i=$((i+1)); sleep 0.02; done && echo done > $out/done",
            s = started.display(),
            g = go.display()
        ),
    )
}

both_modes! {
    /// SIGKILL to ptnix while a builder runs: the kernel kills every tracee with it
    /// (PTRACE_O_EXITKILL), the half-built output is not registered, the store
    /// verifies, and the next run builds the path afresh.
    fn ptnix_killed_mid_build(m: Mode) {
        let ns = store!(m);
        let (started, go) = (ns.fx.work.join("started"), ns.fx.work.join("go"));
        ns.write("stall.nix", &stalling(&ns, "stalled", &started, &go));
        let out_path = {
            let drv = one_path(&ns.nix(&["nix-instantiate", "stall.nix"]).ok());
            one_path(&ns.nix(&["nix-store", "-q", "--outputs", &drv]).ok())
        };
        let run = ns.cmd(&["nix-build", "--no-out-link", "stall.nix"]).timeout(Duration::from_secs(120)).spawn();
        wait_for("the builder to start", Duration::from_secs(60), || started.exists());
        let tree = descendants(run.pid());
        assert!(tree.len() >= 2, "expected nix-build and its builder below ptnix: {tree:?}");
        run.signal(libc::SIGKILL);
        let killed = run.wait();
        assert_eq!(killed.status.code(), None, "ptnix should die of SIGKILL\n{killed}");
        wait_for("every tracee to die with ptnix", Duration::from_secs(20), || !tree.iter().any(|&p| process_alive(p)));

        assert!(!ns.valid(&out_path), "a half-built output was registered");
        ns.verify();
        ns.fx.write(&go, "");
        let again = ns.nix(&["nix-build", "--no-out-link", "stall.nix"]).ok();
        assert_eq!(one_path(&again), out_path);
        assert_eq!(ns.fx.read_string(ns.host(&format!("{out_path}/done"))), "done\n");
        ns.verify();
    }
}

/// A tmpfs of `size` mounted at `dir` (owned by the test user), unmounted when
/// dropped: a small one to fill up, or a store that is not on the root filesystem.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(fx: &Fixture, name: &str, size: &str) -> Tmpfs {
        let dir = fx.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("running mount");
        assert!(st.success(), "mount -t tmpfs failed (the tests need root and mount)");
        fx.own(&dir);
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

both_modes! {
    /// The store on a small tmpfs: builds work; a build that fills the disk fails
    /// with the builder's ENOSPC ("No space left on device") and Nix's own error and
    /// exit status, nothing is registered, and the store still verifies. A write of
    /// ptnix's own tracee to a full /nix gets ENOSPC unchanged.
    fn disk_full_in_a_store_on_tmpfs(m: Mode) {
        require!(Root, Nix);
        let mut fx = Fixture::new(m);
        let tmp = Tmpfs::new(&fx, "tmpfs", "24m");
        fx.store = tmp.0.join("root");
        fx.mkdirs(&fx.store);
        let ns = NixStore::with_fixture(fx);
        ns.write("small.nix", &ns.drv("small", "mkdir $out && echo fits > $out/f"));
        let small = one_path(&ns.nix(&["nix-build", "--no-out-link", "small.nix"]).ok());
        assert_eq!(ns.fx.read_string(ns.host(&format!("{small}/f"))), "fits\n");

        ns.write("big.nix", &ns.drv("big", "dd if=/dev/zero of=$out bs=1M count=64"));
        let big = ns.nix(&["nix-build", "--no-out-link", "big.nix"]);
        assert_ne!(big.code(), 0, "{big}");
        // The builder's ENOSPC, and Nix's own (it writes the build log to the same
        // filesystem), as "error: ...".
        assert!(big.stderr().contains("dd: error writing") && big.stderr().contains("No space left on device"), "{big}");
        assert!(big.stderr().lines().any(|l| l.starts_with("error: ")), "Nix's own error\n{big}");
        let drv = one_path(&ns.nix(&["nix-instantiate", "big.nix"]).ok());
        let out = one_path(&ns.nix(&["nix-store", "-q", "--outputs", &drv]).ok());
        assert!(!ns.valid(&out), "a failed output was registered");
        ns.verify();

        let dd = ns.cmd(&["/bin/sh", "-c", "dd if=/dev/zero of=/nix/store/fill bs=1M count=64 2>&1 | grep -c 'No space left on device'; rm -f /nix/store/fill"]).run();
        assert_eq!(dd.stdout(), "1\n", "{dd}");
    }
}

both_modes! {
    /// A killed ptnix cannot remove its private directory; the next ptnix of the same
    /// user does (nobody holds the lock on its owner file any more), but never a live
    /// one's.
    fn a_killed_ptnixs_private_directory_is_swept(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        let h = fx.dir.join("bindsrc");
        fx.write(h.join("f"), "x");
        let g = fx.work.join("missing");
        let marker = fx.work.join("inode");
        let bind = format!("{}:{}/deep/mnt", h.display(), g.display());
        let mut args: Vec<String> = vec!["run".into(), "--store".into(), fx.store.display().to_string()];
        args.extend(m.flags().iter().map(|s| s.to_string()));
        args.extend(["-b".into(), bind, "--".into(), "/bin/sh".into(), "-c".into()]);
        args.push(format!("stat -c %i {} > {}.tmp && mv {m}.tmp {m}; sleep 100", g.display(), marker.display(), m = marker.display()));
        let run = fx.ptnix(&args).timeout(Duration::from_secs(120)).spawn();
        wait_for("the stand-in's inode", Duration::from_secs(30), || marker.exists());
        let ino: u64 = fx.read_string(&marker).trim().parse().unwrap();
        let private = find_private_dir(ino).expect("ptnix's private directory");
        {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::symlink_metadata(&private).unwrap();
            assert_eq!(m.mode() & 0o7777, 0o700, "the private directory must be 0700");
            let owner = std::fs::metadata(private.join(".ptnix-owner")).unwrap();
            assert_eq!(owner.mode() & 0o777, 0o600);
        }
        // A live ptnix's directory is never swept (it holds a lock on its owner file).
        fx.run(&["/bin/true"]).ok();
        assert!(private.exists(), "the next ptnix removed a live one's directory");
        run.signal(libc::SIGKILL);
        let _ = run.wait();
        // (Any ptnix started meanwhile, by another test, may sweep it already.)
        fx.run(&["/bin/true"]).ok();
        assert!(!private.exists(), "{} is left after the next ptnix ran", private.display());
    }
}

/// The `/tmp/ptXXXXXX` directory holding a stand-in directory of inode `ino`.
fn find_private_dir(ino: u64) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    for e in std::fs::read_dir("/tmp").ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.len() != 8 || !name.starts_with("pt") {
            continue;
        }
        let g = e.path().join("g");
        let Ok(rd) = std::fs::read_dir(&g) else { continue };
        for s in rd.flatten() {
            if s.metadata().is_ok_and(|m| m.ino() == ino) {
                return Some(e.path());
            }
        }
    }
    None
}
