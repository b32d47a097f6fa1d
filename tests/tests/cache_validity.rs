//! ptnix remembers facts only about immutable store objects and sealed (root-owned,
//! not group- or world-writable) host directories (`tracer/src/fscache.rs`). These
//! tests change user-modifiable paths between two lookups in the same ptnix process
//! and check that the second lookup sees the change, and that the cache is really used
//! where it is valid.

use ptnix_tests::*;

/// A store path under construction (writable, current mtime) whose directory becomes
/// a symlink into another store path between two reads.
const WIP: &str = r#"
set -e
mkdir -p /nix/store/aaa-wip/a /nix/store/bbb-other/a
echo one > /nix/store/aaa-wip/a/f
echo two > /nix/store/bbb-other/a/f
for i in 1 2 3; do cat /nix/store/aaa-wip/a/f; ls /nix/store/aaa-wip/a; done
mv /nix/store/aaa-wip/a /nix/store/aaa-wip/a.old
ln -s /nix/store/bbb-other/a /nix/store/aaa-wip/a
cat /nix/store/aaa-wip/a/f
"#;

/// A store path made read-only by hand (mode 0555, but a current mtime: not
/// canonicalised by Nix), made writable, changed, and read-only again.
const CHMODDED: &str = r#"
set -e
mkdir -p /nix/store/ccc-ro/d /nix/store/ddd-target/d
echo old > /nix/store/ccc-ro/d/f
echo new > /nix/store/ddd-target/d/f
chmod 555 /nix/store/ccc-ro
for i in 1 2 3; do cat /nix/store/ccc-ro/d/f; done
chmod 755 /nix/store/ccc-ro
mv /nix/store/ccc-ro/d /nix/store/ccc-ro/d.old
ln -s /nix/store/ddd-target/d /nix/store/ccc-ro/d
chmod 555 /nix/store/ccc-ro
cat /nix/store/ccc-ro/d/f
"#;

/// A host directory in $HOME that becomes a symlink into the store.
const HOME_DIR: &str = r#"
set -e
mkdir -p ~/d/sub /nix/store/eee-x/sub
echo host > ~/d/sub/f
echo store > /nix/store/eee-x/sub/f
for i in 1 2 3; do cat ~/d/sub/f; done
mv ~/d/sub ~/d/sub.old
ln -s /nix/store/eee-x/sub ~/d/sub
cat ~/d/sub/f
"#;

/// Inside a root-owned directory the user cannot change: a directory of the user's
/// (D/user), and one the user's group may write (D/group, mode 0775), each get a
/// subdirectory that becomes a symlink into the store.
const IN_SEALED: &str = r#"
set -e
mkdir -p /nix/store/fff-x/sub
echo store > /nix/store/fff-x/sub/f
for d in "$D/user" "$D/group"; do
    mkdir -p "$d/sub"
    echo host > "$d/sub/f"
    for i in 1 2 3; do cat "$d/sub/f"; done
    mv "$d/sub" "$d/sub.old"
    ln -s /nix/store/fff-x/sub "$d/sub"
    cat "$d/sub/f"
done
"#;

/// A directory tree made by root outside any world-writable directory (so that every
/// directory above it is sealed), removed again when dropped.
struct RootTree(std::path::PathBuf);

impl RootTree {
    fn new(name: &str) -> RootTree {
        let p = std::path::PathBuf::from(format!("/var/lib/ptnix-tests-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        RootTree(p)
    }
}

impl Drop for RootTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The "cache N hits" count of a `--stats` report.
fn cache_hits(stderr: &str) -> u64 {
    let line = stderr.lines().find(|l| l.contains("directory checks:")).map(str::to_string);
    let line = line.unwrap_or_else(|| panic!("no stats in stderr:\n{stderr}"));
    line.split("cache ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap()
}

fn run_with_stats(fx: &Fixture, m: Mode, argv: &[String]) -> Output {
    let mut args: Vec<String> = ["run", "--stats", "--store"].iter().map(|s| s.to_string()).collect();
    args.push(fx.store.to_str().unwrap().to_string());
    args.extend(m.flags().iter().map(|s| s.to_string()));
    args.push("--".into());
    args.extend(argv.iter().cloned());
    fx.ptnix(&args).run().ok()
}

both_modes! {
    /// A user's directory, or a group-writable one, inside a root-owned directory is
    /// not sealed: changing it between lookups is seen at once.
    fn writable_directories_in_root_owned_ones_are_not_remembered(m: Mode) {
        require!(Sh, Coreutils, Root);
        let fx = Fixture::new(m);
        let t = RootTree::new(&format!("unsealed-{m:?}"));
        std::fs::create_dir(t.0.join("user")).unwrap();
        fx.own(&t.0.join("user"));
        std::fs::create_dir(t.0.join("group")).unwrap();
        let gid = ptnix_tests::env::env().user.map(|u| u.gid);
        std::os::unix::fs::lchown(t.0.join("group"), None, gid).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(t.0.join("group"), std::fs::Permissions::from_mode(0o775)).unwrap();
        fx.cmd(&["/bin/sh", "-c", IN_SEALED])
            .env("D", &t.0)
            .run()
            .expect_stdout("host\nhost\nhost\nstore\nhost\nhost\nhost\nstore\n");
    }

    /// In sealed host directories (root's, below root's), lookups are answered from
    /// memory.
    fn sealed_host_directories_are_remembered(m: Mode) {
        require!(Coreutils, Root);
        let fx = Fixture::new(m);
        let t = RootTree::new(&format!("sealed-{m:?}"));
        std::fs::create_dir_all(t.0.join("a/b/c")).unwrap();
        std::fs::write(t.0.join("a/b/c/f1"), "1").unwrap();
        std::fs::write(t.0.join("a/b/c/f2"), "2").unwrap();
        let f = |n: &str| t.0.join("a/b/c").join(n).display().to_string();
        let out = run_with_stats(&fx, m, &["/bin/cat".into(), f("f1"), f("f2"), f("f1")]);
        assert_eq!(out.stdout(), "121");
        let hits = cache_hits(&out.stderr());
        assert!(hits >= 2, "expected cache hits in a sealed directory:\n{}", out.stderr());
    }

    fn store_path_being_built_is_not_remembered(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.sh(WIP).expect_stdout("one\nf\none\nf\none\nf\ntwo\n");
    }

    fn read_only_but_not_canonical_is_not_remembered(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.sh(CHMODDED).expect_stdout("old\nold\nold\nnew\n");
    }

    fn host_directories_are_never_remembered(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.sh(HOME_DIR).expect_stdout("host\nhost\nhost\nstore\n");
    }

    /// A canonical store object that is deleted (garbage collection) and made again
    /// by hand, writable, in the same ptnix session: its new contents are seen, its
    /// new directories and permissions are looked up afresh.
    fn rebuilt_store_object_is_not_answered_from_memory(m: Mode) {
        require!(Sh, Coreutils, Nix);
        let fx = Fixture::new(m);
        let src = fx.work.join("pkg");
        fx.write(src.join("bin/run"), "#!/bin/sh\necho old\n");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(src.join("bin/run"), std::fs::Permissions::from_mode(0o755)).unwrap();
        fx.write(src.join("share/d/f"), "old file\n");
        let script = added_then(
            &src,
            r#"for i in 1 2 3; do "$p/bin/run"; cat "$p/share/d/f"; done
nix-store --delete "$p" >/dev/null 2>&1
test ! -e "$p" && echo deleted
mkdir -p "$p/bin" "$p/share/d/new"
printf '#!/bin/sh\necho new\n' > "$p/bin/run"
"$p/bin/run" 2>/dev/null || echo not-executable-yet
chmod +x "$p/bin/run"
"$p/bin/run"
echo new file > "$p/share/d/f"; cat "$p/share/d/f"; ls "$p/share/d"
"#,
        );
        fx.sh(&script).expect_stdout("old\nold file\nold\nold file\nold\nold file\ndeleted\nnot-executable-yet\nnew\nnew file\nf\nnew\n");
    }

    /// The same with the stat family (answered by notification in the default mode,
    /// with a cache of its own): a file remembered as a file is a symlink into the
    /// store after its path was collected and made again, and `stat -L` follows it.
    fn rebuilt_store_object_is_not_stat_from_memory(m: Mode) {
        require!(Sh, Coreutils, Nix);
        let fx = Fixture::new(m);
        let src = fx.work.join("pkg");
        fx.write(src.join("f"), "old\n");
        let script = added_then(
            &src,
            r#"stat -L -c %s "$p/f"; stat -L -c %s "$p/f"
nix-store --delete "$p" >/dev/null 2>&1
printf 'target!\n' > /nix/store/ptnix-test-target
mkdir -p "$p"
ln -s /nix/store/ptnix-test-target "$p/f"
stat -L -c %s "$p/f"
"#,
        );
        fx.sh(&script).expect_stdout("4\n4\n8\n");
    }

    /// Inside a path that Nix added (canonicalised: read-only, mtime 1) the directory
    /// checks are answered from memory.
    fn canonical_store_objects_are_remembered(m: Mode) {
        require!(Sh, Coreutils, Nix);
        let fx = Fixture::new(m);
        let src = fx.work.join("tree");
        fx.write(src.join("a/b/c/f1"), "1");
        fx.write(src.join("a/b/c/f2"), "2");
        let added = fx.run(&["nix-store", "--add", src.to_str().unwrap()]).ok().stdout();
        let added = added.trim();
        assert!(added.starts_with("/nix/store/"), "{added}");
        let out = run_with_stats(&fx, m, &["cat".into(), format!("{added}/a/b/c/f1"), format!("{added}/a/b/c/f2"), format!("{added}/a/b/c/f1")]);
        assert_eq!(out.stdout(), "121");
        let hits = cache_hits(&out.stderr());
        assert!(hits >= 2, "expected cache hits inside a canonical store object:\n{}", out.stderr());
    }
}

/// A shell script that adds `src` to a fresh store as `$p`, then runs `then`.
fn added_then(src: &std::path::Path, then: &str) -> String {
    format!(
        "set -e\nexport NIX_CONFIG=\"substituters =\nsandbox = false\"\nnix-store --init\np=$(nix-store --add {})\n{then}",
        src.display()
    )
}
