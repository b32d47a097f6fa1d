//! ptnix in place of proot, called exactly as nix-portable calls it:
//! `proot -r EMPTYROOT -b /dev:/dev -b STORE/nix:/nix -b REALPATH:/TOP ... -b $HOME:$HOME
//! PROGRAM ARGS` with PROOT_NO_SECCOMP=1 (one -b per top-level entry of the host's /).

use ptnix_tests::*;
use std::ffi::OsString;

/// `ptnix proot` with nix-portable's arguments, then `argv`.
fn nix_portable_args(fx: &Fixture, empty: &std::path::Path, argv: &[&str]) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["proot".into(), "-r".into(), empty.into(), "-b".into(), "/dev:/dev".into()];
    a.push("-b".into());
    a.push(format!("{}/nix:/nix", fx.store.display()).into());
    for e in std::fs::read_dir("/").unwrap() {
        let name = e.unwrap().file_name();
        if name == "nix" || name == "dev" {
            continue;
        }
        let top = std::path::Path::new("/").join(&name);
        let Ok(real) = std::fs::canonicalize(&top) else { continue };
        a.push("-b".into());
        a.push(format!("{}:{}", real.display(), top.display()).into());
    }
    a.push("-b".into());
    a.push(format!("{}:{}", fx.home.display(), fx.home.display()).into());
    a.extend(argv.iter().map(OsString::from));
    a
}

fn empty_root(fx: &Fixture, name: &str) -> std::path::PathBuf {
    let e = fx.work.join(name);
    fx.mkdirs(&e);
    e
}

fn assert_empty(e: &std::path::Path) {
    let names: Vec<_> = std::fs::read_dir(e).unwrap().map(|d| d.unwrap().file_name()).collect();
    assert!(names.is_empty(), "EMPTYROOT {} is not empty: {names:?}", e.display());
}

both_modes! {
    /// `ls /` lists every bound entry and `nix`; exit statuses pass through; the
    /// empty root stays empty.
    fn listing_and_exit_status(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        fx.mkdirs(&fx.host("/nix/store"));
        let empty = empty_root(&fx, "emptyroot");
        let out = fx.proot(nix_portable_args(&fx, &empty, &["/bin/sh", "-c", "ls -A /; ls /nix; exit 7"])).run();
        assert_eq!(out.code(), 7, "{out}");
        let listed: Vec<String> = out.stdout().lines().map(str::to_string).collect();
        for e in std::fs::read_dir("/").unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(listed.contains(&n), "{n} missing from the guest's / under proot mode:\n{out}");
        }
        assert_eq!(listed.iter().filter(|l| *l == "nix").count(), 1, "{out}");
        assert!(listed.contains(&"store".to_string()), "{out}");
        assert_empty(&empty);
        // As proot: 255 when a signal killed the command.
        let sig = fx.proot(nix_portable_args(&fx, &empty, &["/bin/sh", "-c", "kill -TERM $$"])).run();
        assert_eq!(sig.code(), 255, "{sig}");
    }

    /// Nix builds through the proot call, store programs run, and two instances can
    /// run at once while the empty root stays empty.
    fn nix_build_and_two_instances(m: Mode) {
        require!(Sh, Coreutils, Nix);
        let fx = Fixture::new(m);
        // nix-portable creates its store directory before calling proot.
        fx.mkdirs(&fx.host("/nix/var/nix"));
        let empty = empty_root(&fx, "emptyroot");
        let bb = fx.work.join("bb");
        fx.mkdirs(&bb);
        fx.copy_exec("/bin/busybox", bb.join("sh"));
        let cfg = "substituters =\nsandbox = false";
        let init = fx.proot(nix_portable_args(&fx, &empty, &["/usr/bin/nix-store", "--init"])).env("NIX_CONFIG", cfg).run();
        init.ok();
        let added = fx.proot(nix_portable_args(&fx, &empty, &["/usr/bin/nix-store", "--add", bb.to_str().unwrap()]))
            .env("NIX_CONFIG", cfg)
            .run()
            .ok()
            .stdout();
        let bbp = added.trim().to_string();
        assert!(bbp.starts_with("/nix/store/"), "{bbp}");
        // The store's busybox runs as a store program.
        let run = fx.proot(nix_portable_args(&fx, &empty, &[&format!("{bbp}/sh"), "-c", "echo from-store"])).run().ok();
        assert_eq!(run.stdout(), "from-store\n");
        let expr = fx.work.join("d.nix");
        let write_expr = |n: &str| {
            fx.write(&expr.with_file_name(format!("d{n}.nix")), format!(
                "derivation {{ name = \"pm{n}\"; system = \"x86_64-linux\"; builder = \"{bbp}/sh\"; args = [\"-c\" \"echo {n} > $out\"]; }}\n"
            ));
            expr.with_file_name(format!("d{n}.nix"))
        };
        let (e1, e2) = (write_expr("1"), write_expr("2"));
        let a = fx.proot(nix_portable_args(&fx, &empty, &["/usr/bin/nix-build", "--no-out-link", e1.to_str().unwrap()])).env("NIX_CONFIG", cfg).spawn();
        let b = fx.proot(nix_portable_args(&fx, &empty, &["/usr/bin/nix-build", "--no-out-link", e2.to_str().unwrap()])).env("NIX_CONFIG", cfg).spawn();
        assert_empty(&empty);
        let (a, b) = (a.wait().ok(), b.wait().ok());
        for (out, n) in [(a, "1"), (b, "2")] {
            let p = out.stdout().trim().to_string();
            assert!(p.starts_with("/nix/store/") && p.ends_with(&format!("-pm{n}")), "{out}");
            assert_eq!(fx.read_string(fx.host(&p)), format!("{n}\n"));
        }
        assert_empty(&empty);
    }

    /// Options outside the supported subset are refused by name, with proot's exit
    /// status 1; -0 and -k work.
    fn options(m: Mode) {
        require!(Sh, Coreutils);
        let fx = Fixture::new(m);
        let bad = fx.proot(vec!["proot".into(), "-q".into(), "qemu".into(), "true".into()]).run();
        assert_eq!(bad.code(), 1);
        assert!(bad.stderr().contains("'-q'"), "{bad}");
        let ids = fx.proot(vec!["proot".into(), "-0".into(), "-k".into(), "3.10.0-fake".into(), "sh".into(), "-c".into(), "id -u; id -g; uname -r".into()])
            .run()
            .ok();
        assert_eq!(ids.stdout(), "0\n0\n3.10.0-fake\n");
        // proot's exit statuses (measured with Debian's proot 5.1.0): 255 when a signal
        // killed the command, 1 when it cannot start.
        let killed = fx.proot(vec!["proot".into(), "/bin/sh".into(), "-c".into(), "kill -9 $$".into()]).run();
        assert_eq!(killed.code(), 255, "{killed}");
        let missing = fx.proot(vec!["proot".into(), "/nonexistent/cmd".into()]).run();
        assert_eq!(missing.code(), 1, "{missing}");
        let status = fx.proot(vec!["proot".into(), "/bin/sh".into(), "-c".into(), "exit 127".into()]).run();
        assert_eq!(status.code(), 127, "the command's own 127 passes through\n{status}");
    }
}
