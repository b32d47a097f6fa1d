//! ptnix remembers facts only about immutable store objects (`tracer/src/fscache.rs`).
//! These tests change user-modifiable paths between two lookups in the same ptnix
//! process and check that the second lookup sees the change, and that the cache is
//! really used where it is valid.

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

both_modes! {
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
        let mut args: Vec<String> = ["run", "--stats", "--store"].iter().map(|s| s.to_string()).collect();
        args.push(fx.store.to_str().unwrap().to_string());
        if m == Mode::Ptrace {
            args.push("--no-seccomp".into());
        }
        args.push("--".into());
        args.extend(["cat".to_string(), format!("{added}/a/b/c/f1"), format!("{added}/a/b/c/f2"), format!("{added}/a/b/c/f1")]);
        let out = fx.ptnix(&args).run().ok();
        assert_eq!(out.stdout(), "121");
        let line = out.stderr().lines().find(|l| l.contains("directory checks:")).map(str::to_string);
        let line = line.unwrap_or_else(|| panic!("no stats in stderr:\n{}", out.stderr()));
        let hits: u64 = line.split("cache ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
        assert!(hits >= 2, "expected cache hits inside a canonical store object: {line}");
    }
}
