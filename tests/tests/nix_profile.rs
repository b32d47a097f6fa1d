//! User profiles with real Nix under ptnix: `nix-env -i` of built store paths,
//! `nix-env -q`, upgrades and `nix-env --rollback`, and running the installed program
//! through the `~/.nix-profile` symlink Nix creates, from inside ptnix and from outside
//! (`ptnix run -- prog`, found through PATH).

use ptnix_tests::env::TRACEE_PATH;
use ptnix_tests::nixenv::{nix_escape, one_path, NixStore};
use ptnix_tests::*;
use std::fs;
use std::path::Path;

macro_rules! store {
    ($m:expr) => {
        match NixStore::new($m) {
            Some(ns) => ns,
            None => return,
        }
    };
}

/// Builds `greet-VERSION`: `bin/greet`, a `#!BB/sh` script printing its version,
/// `$0` and its arguments, and `bin/busybox -> BB/busybox`.
fn build_greet(ns: &NixStore, version: &str) -> String {
    let file = format!("greet-{version}.nix");
    let script = format!(
        "mkdir -p $out/bin && printf '#!%s/sh\\necho greet {version} $0 \"$*\"\\n' {bb} > $out/bin/greet && chmod 555 $out/bin/greet && ln -s {bb}/busybox $out/bin/busybox",
        bb = ns.busybox
    );
    ns.write(
        &file,
        &ns.drv(&format!("greet-{version}"), &nix_escape(&script)),
    );
    let out = ns.nix(&["nix-build", "--no-out-link", &file]).ok();
    one_path(&out)
}

both_modes! {
    /// nix-env -i, -q, upgrade, --rollback; the program runs through ~/.nix-profile.
    fn install_query_rollback_run(m: Mode) {
        let ns = store!(m);
        let g1 = build_greet(&ns, "1");
        let g2 = build_greet(&ns, "2");
        assert_ne!(g1, g2);
        let text = ns.fx.read_string(ns.host(&format!("{g1}/bin/greet")));
        assert_eq!(text, format!("#!{}/sh\necho greet 1 $0 \"$*\"\n", ns.busybox), "the script as built");

        let i1 = ns.nix(&["nix-env", "-i", &g1]).ok();
        assert!(i1.stderr().contains("installing 'greet-1'"), "\n{i1}");
        // Nix made ~/.nix-profile, a link to the user's profile in /nix/var/nix/profiles.
        let link = ns.fx.home.join(".nix-profile");
        let target = fs::read_link(&link).unwrap_or_else(|e| panic!("no ~/.nix-profile ({e})\n{i1}"));
        let target = target.to_str().unwrap().to_string();
        assert!(target.starts_with("/nix/var/nix/profiles/"), "~/.nix-profile -> {target}");
        assert!(ns.host(&target).symlink_metadata().is_ok(), "the profile link {target} is not in the store directory");
        ns.nix(&["nix-env", "-q"]).expect_stdout("greet-1\n");

        let home = ns.fx.home.display().to_string();
        let via_link = format!("{home}/.nix-profile/bin/greet");
        // Inside ptnix: by the link's path, and by PATH.
        ns.fx.run(&[via_link.as_str(), "a", "b"]).expect_stdout(&format!("greet 1 {via_link} a b\n"));
        ns.fx
            .cmd(&["/bin/sh", "-c", "greet x && busybox sh -c 'readlink /proc/$$/exe'"])
            .env("PATH", format!("{home}/.nix-profile/bin:{TRACEE_PATH}"))
            .run()
            .expect_stdout(&format!("greet 1 {via_link} x\n{}/busybox\n", ns.busybox));
        // From outside: ptnix finds the program through PATH (not a host path: the
        // link points into /nix, which only exists inside ptnix).
        assert!(!Path::new(&via_link).exists(), "{via_link} resolves on the host?");
        ns.fx
            .cmd(&["greet", "outside"])
            .env("PATH", format!("{home}/.nix-profile/bin:{TRACEE_PATH}"))
            .run()
            .expect_stdout(&format!("greet 1 {via_link} outside\n"));

        // Upgrade to greet-2 (same name): a second generation.
        let i2 = ns.nix(&["nix-env", "-i", &g2]).ok();
        assert!(i2.stderr().contains("greet-2"), "\n{i2}");
        ns.nix(&["nix-env", "-q"]).expect_stdout("greet-2\n");
        ns.fx.run(&[via_link.as_str()]).expect_stdout(&format!("greet 2 {via_link} \n"));
        let gens = ns.nix(&["nix-env", "--list-generations"]).ok();
        let lines: Vec<String> = gens.stdout().lines().map(|l| l.to_string()).collect();
        assert_eq!(lines.len(), 2, "\n{gens}");
        assert!(lines[1].trim_start().starts_with('2') && lines[1].ends_with("(current)"), "\n{gens}");

        // Rollback: greet-1 again.
        let rb = ns.nix(&["nix-env", "--rollback"]).ok();
        assert!(rb.stderr().contains("switching profile from version 2 to 1"), "\n{rb}");
        ns.nix(&["nix-env", "-q"]).expect_stdout("greet-1\n");
        ns.fx.run(&[via_link.as_str(), "back"]).expect_stdout(&format!("greet 1 {via_link} back\n"));
        ns.fx
            .cmd(&["greet", "outside", "again"])
            .env("PATH", format!("{home}/.nix-profile/bin:{TRACEE_PATH}"))
            .run()
            .expect_stdout(&format!("greet 1 {via_link} outside again\n"));

        // The profile keeps both generations alive.
        let gc = ns.nix(&["nix-store", "--gc"]).ok();
        for p in [&g1, &g2, &ns.busybox] {
            assert!(ns.valid(p), "{p} was collected although a profile generation uses it\n{gc}");
        }
        // Generation 2 deleted: greet-2 is garbage, greet-1 (current) is not.
        let del = ns.nix(&["nix-env", "--delete-generations", "2"]).ok();
        assert!(del.stderr().contains("removing profile version 2"), "\n{del}");
        let gens = ns.nix(&["nix-env", "--list-generations"]).ok();
        assert_eq!(gens.stdout().lines().count(), 1, "\n{gens}");
        let gc = ns.nix(&["nix-store", "--gc"]).ok();
        assert!(!ns.valid(&g2), "greet-2 survived the deletion of its generation\n{gc}");
        assert!(!ns.host(&g2).exists());
        for p in [&g1, &ns.busybox] {
            assert!(ns.valid(p), "{p} was collected although the current generation uses it\n{gc}");
        }
        ns.fx.run(&[via_link.as_str(), "still"]).expect_stdout(&format!("greet 1 {via_link} still\n"));
        ns.verify();
    }
}
