//! Smoke test with the real Nix (nix-bin's nix 2.8 at /usr/bin): initialise a store
//! at /nix, verify it, add a file, as an unprivileged user.

use ptnix_tests::*;
use std::time::Duration;

const NIX_CONFIG: &str = "substituters =\nsandbox = false\nexperimental-features = nix-command";

both_modes! {
    fn nix_store_init_verify_add(m: Mode) {
        require!(Nix);
        let fx = Fixture::new(m);
        let nix = |argv: &[&str]| fx.cmd(argv).env("NIX_CONFIG", NIX_CONFIG).timeout(Duration::from_secs(300)).run();
        nix(&["nix-store", "--init"]).ok();
        assert!(fx.host("/nix/var/nix/db").is_dir(), "no STORE/nix/var/nix/db after nix-store --init");
        assert!(fx.host("/nix/var/nix/db/db.sqlite").is_file());
        nix(&["nix-store", "--verify"]).ok();
        let v = nix(&["nix", "--version"]).ok();
        assert!(v.stdout().starts_with("nix (Nix) "), "\n{v}");

        fx.write(fx.work.join("hello.txt"), "hello nix\n");
        let added = nix(&["nix-store", "--add", "hello.txt"]).ok();
        let path = added.stdout().trim_end().to_string();
        assert!(path.starts_with("/nix/store/") && path.ends_with("-hello.txt"), "\n{added}");
        assert_eq!(fx.read_string(fx.host(&path)), "hello nix\n");
        nix(&["nix-store", "--verify", "--check-contents"]).ok();
        nix(&["nix-store", "-q", "--hash", &path]).ok();
        nix(&["cat", &path]).expect_stdout("hello nix\n");
    }
}
