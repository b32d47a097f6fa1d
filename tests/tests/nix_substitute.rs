//! Substitution between two ptnix stores through a `file://` binary cache (issue 4):
//! a closure built in one store is copied to the cache, substituted into a second,
//! fresh store, and is then valid there, so that substituting it again fetches nothing.
//! Nix runs offline (`substituters =` in NIX_CONFIG, overridden per command).

use ptnix_tests::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

const NIX_CONFIG: &str = "substituters =\nsandbox = false\nexperimental-features = nix-command";

/// A two-path closure: an output that refers to an imported directory (a symlink to
/// it), built by the host's /bin/sh (no sandbox, so host programs are reachable).
const EXPR: &str = r#"
let dep = builtins.path { path = ./dep; name = "subst-dep"; }; in
derivation {
  name = "subst-test";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "/bin/mkdir $out && echo hello > $out/greeting && /bin/ln -s ${dep} $out/dep" ];
}
"#;

fn nix(fx: &Fixture, argv: &[&str]) -> Output {
    fx.cmd(argv).env("NIX_CONFIG", NIX_CONFIG).timeout(Duration::from_secs(300)).run()
}

/// Every file under `dir` with its size, mtime and inode: what a fetch-free run must
/// leave exactly as it was.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, i64, i64, u64)> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("listing {}: {e}", d.display())) {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p.clone());
            }
            m.insert(
                p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(),
                (md.len(), md.mtime(), md.mtime_nsec(), md.ino()),
            );
        }
    }
    m
}

fn store_names(fx: &Fixture) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(fx.host("/nix/store"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".links")
        .collect();
    v.sort();
    v
}

both_modes! {
    fn substitute_then_nothing_to_fetch(m: Mode) {
        require!(Nix, Sh);
        // Store A builds the closure and copies it to the cache.
        let a = Fixture::new(m);
        a.write(a.work.join("dep/file"), "depdata\n");
        a.write(a.work.join("d.nix"), EXPR);
        let built = nix(&a, &["nix-build", "--no-out-link", "d.nix"]).ok();
        let path = built.stdout().trim_end().to_string();
        assert!(path.starts_with("/nix/store/") && path.ends_with("-subst-test") && !path.contains('\n'), "\n{built}");
        let refs = nix(&a, &["nix-store", "-q", "--references", &path]).ok();
        let dep = refs.stdout().trim_end().to_string();
        assert!(dep.starts_with("/nix/store/") && dep.ends_with("-subst-dep") && !dep.contains('\n'), "\n{refs}");

        let cache = a.dir.join("cache");
        a.mkdirs(&cache);
        let url = format!("file://{}", cache.display());
        let copied = nix(&a, &["nix", "copy", "--to", &url, &path]).ok();
        for p in [&path, &dep] {
            let hash = &p["/nix/store/".len()..p.find('-').unwrap()];
            assert!(cache.join(format!("{hash}.narinfo")).is_file(), "no narinfo for {p} in the cache\n{copied}");
        }

        // Store B, fresh, substitutes it.
        let b = Fixture::new(m);
        let realise = ["nix-store", "-r", &path, "--option", "substituters", &url, "--option", "require-sigs", "false"];
        let first = nix(&b, &realise).ok();
        assert_eq!(first.stdout(), format!("{path}\n"), "\n{first}");
        for p in [&path, &dep] {
            assert!(first.stderr().contains(&format!("copying path '{p}' from '{url}'")), "{p} was not substituted\n{first}");
        }
        nix(&b, &["nix-store", "--check-validity", &path, &dep]).ok();
        nix(&b, &["nix-store", "--verify-path", &path]).ok();
        nix(&b, &["nix-store", "--verify-path", &dep]).ok();
        let closure = nix(&b, &["nix-store", "-qR", &path]).ok();
        let mut want = vec![dep.clone(), path.clone()];
        want.sort();
        let mut got: Vec<String> = closure.stdout().lines().map(String::from).collect();
        got.sort();
        assert_eq!(got, want, "\n{closure}");
        assert_eq!(b.read_string(b.host(format!("{path}/greeting"))), "hello\n");
        assert_eq!(fs::read_link(b.host(format!("{path}/dep"))).unwrap().to_str(), Some(dep.as_str()));
        assert_eq!(b.read_string(b.host(format!("{dep}/file"))), "depdata\n");
        // The guest lists both, once each.
        let ls = b.sh("ls /nix/store; ls / | grep -c '^nix$'").ok();
        let names: Vec<&str> = [&dep, &path].iter().map(|p| &p["/nix/store/".len()..]).collect();
        let mut want_ls: Vec<&str> = names.clone();
        want_ls.sort();
        assert_eq!(ls.stdout(), format!("{}\n1\n", want_ls.join("\n")), "\n{ls}");

        // Again: the path is valid, so nothing is fetched. The NARs are moved away to
        // make any fetch fail; the cache must be left exactly as it was.
        let before_cache = snapshot(&cache);
        let before_store = store_names(&b);
        fs::rename(cache.join("nar"), cache.join("nar.away")).unwrap();
        let second = nix(&b, &realise);
        fs::rename(cache.join("nar.away"), cache.join("nar")).unwrap();
        let second = second.ok();
        assert_eq!(second.stdout(), format!("{path}\n"), "\n{second}");
        for needle in ["copying path", "will be fetched", "will be built"] {
            assert!(!second.stderr().contains(needle), "the second run fetched again ({needle:?})\n{second}");
        }
        assert_eq!(snapshot(&cache), before_cache, "the second run changed the cache");
        assert_eq!(store_names(&b), before_store, "the second run changed the store");
        let dry = nix(&b, &["nix-store", "-r", "--dry-run", &path, "--option", "substituters", &url, "--option", "require-sigs", "false"]).ok();
        assert!(!dry.stderr().contains("will be fetched"), "\n{dry}");
        nix(&b, &["nix-store", "--verify", "--check-contents"]).ok();
    }
}
