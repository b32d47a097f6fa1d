//! The guest's /nix is the store's, wholly: the host's own /nix (this machine has a
//! root-owned /nix/var/nix with a daemon-socket directory) must be invisible, or Nix
//! would talk to the host's daemon or find the host's database.

use ptnix_tests::*;
use std::path::Path;

/// Sorted names in a host directory, one a line, as `ls -A` prints them.
fn host_listing(dir: &Path) -> String {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v.iter().map(|n| format!("{n}\n")).collect()
}

both_modes! {
    /// Listing /nix, /nix/var and /nix/var/nix shows exactly STORE/nix's entries.
    fn listings_are_the_stores(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.write(fx.host("/nix/var/marker"), "");
        let out = fx.sh("ls -A /nix; echo --; ls -A /nix/var; echo --; ls -A /nix/var/nix").ok();
        let expected = format!(
            "{}--\n{}--\n{}",
            host_listing(&fx.host("/nix")),
            host_listing(&fx.host("/nix/var")),
            host_listing(&fx.host("/nix/var/nix"))
        );
        assert_eq!(out.stdout(), expected, "\n{out}");
        assert!(expected.starts_with("store\nvar\n--\nmarker\nnix\n--\n"), "unexpected store layout:\n{expected}");
    }

    /// /nix and /nix/var are STORE/nix and STORE/nix/var (same device and inode).
    fn same_inodes_as_store(m: Mode) {
        require!(Coreutils);
        let fx = Fixture::new(m);
        let out = fx.run(&["stat", "-c", "%d %i", "/nix", "/nix/var", "/nix/store"]).ok();
        let expected: String = ["/nix", "/nix/var", "/nix/store"]
            .iter()
            .map(|g| {
                let md = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(fx.host(g)).unwrap());
                let dev = std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(fx.host(g)).unwrap());
                format!("{dev} {md}\n")
            })
            .collect();
        assert_eq!(out.stdout(), expected, "\n{out}");
    }

    /// What only the host's /nix has does not exist in the guest, by any route
    /// (stat, open, python, a path that re-enters /nix through `..`).
    fn host_only_entries_are_absent(m: Mode) {
        require!(Sh, Python3);
        let fx = Fixture::new(m);
        for p in ["daemon-socket", "profiles/per-user", "gcroots/per-user"] {
            let gp = format!("/nix/var/nix/{p}");
            let r = fx.sh(&format!(
                "test -e {gp} && echo exists; ls {gp} >/dev/null 2>&1 && echo listed; \
                 test -e /nix/store/../var/nix/{p} && echo via-dotdot; \
                 cd / && test -e nix/var/nix/{p} && echo relative; echo done"
            ));
            r.expect_stdout("done\n");
        }
        fx.py(
            "import os\nprint(os.path.exists('/nix/var/nix/daemon-socket/socket'), os.path.isdir('/nix/var/nix/gcroots/per-user'))",
            &[] as &[&str],
        )
        .expect_stdout("False False\n");
    }

    /// ptnix creates STORE/nix/store and STORE/nix/var/nix, owned by the user.
    fn creates_store_layout(m: Mode) {
        require!(Sh);
        let fx = Fixture::new(m);
        assert!(!fx.host("/nix").exists());
        fx.sh("test -d /nix/store && test -d /nix/var/nix && test -w /nix/store && test -w /nix/var/nix && echo ok")
            .expect_stdout("ok\n");
        for g in ["/nix/store", "/nix/var/nix"] {
            let md = std::fs::metadata(fx.host(g)).unwrap_or_else(|e| panic!("{g} not created on the host: {e}"));
            assert!(md.is_dir());
            if let Some(u) = ptnix_tests::env::env().user {
                assert_eq!(std::os::unix::fs::MetadataExt::uid(&md), u.uid, "{g} should belong to the user");
            }
        }
    }
}
