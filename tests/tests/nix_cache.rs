//! Substitution between ptnix stores through a `file://` binary cache, with real Nix:
//! `nix copy --to file:///DIR` from one store, `nix-store -r` and `nix build` into
//! fresh stores from that cache (`--option substituters file:///DIR --option
//! require-sigs false`), a repeat that fetches nothing, and a corrupted NAR in the
//! cache, which Nix must reject without registering anything. Also `nix-store --export`
//! piped from one instance into `nix-store --import` in another.

use ptnix_tests::nixenv::{hash_part, nix_escape, one_path, NixStore, NIX_TIMEOUT, OFFLINE};
use ptnix_tests::*;
use std::fs;

macro_rules! store {
    ($m:expr) => {
        match NixStore::new($m) {
            Some(ns) => ns,
            None => return,
        }
    };
}

/// A three-path closure: `top` refers to `dep` (links) and to busybox (a link to sh).
fn closure_expr(ns: &NixStore) -> String {
    format!(
        "let dep = {}; in {}",
        ns.drv("cached-dep", "mkdir $out && echo dep data > $out/data").trim_end(),
        ns.drv(
            "cached-top",
            &format!(
                "mkdir -p $out/bin && ln -s ${{dep}}/data $out/dep-data && ln -s {}/sh $out/bin/sh && echo top > $out/top",
                ns.busybox
            )
        )
    )
}

/// The options that make a store substitute from `url` only, unsigned.
fn from(url: &str) -> Vec<String> {
    [
        "--option",
        "substituters",
        url,
        "--option",
        "require-sigs",
        "false",
    ]
    .map(String::from)
    .to_vec()
}

fn argv<'a>(head: &[&'a str], tail: &'a [String]) -> Vec<&'a str> {
    head.iter()
        .copied()
        .chain(tail.iter().map(String::as_str))
        .collect()
}

both_modes! {
    /// Built in store A, copied to the cache, substituted into B (`nix-store -r`) and
    /// into C (`nix build` of the same expression: fetched, not built); again, nothing
    /// is fetched.
    fn copy_then_substitute(m: Mode) {
        let a = store!(m);
        a.write("closure.nix", &closure_expr(&a));
        let top = one_path(&a.nix(&["nix-build", "--no-out-link", "closure.nix"]).ok());
        let closure = a.nix(&["nix-store", "-qR", &top]).ok();
        let mut paths: Vec<String> = closure.stdout().lines().map(String::from).collect();
        paths.sort();
        assert_eq!(paths.len(), 3, "closure of {top}\n{closure}");
        assert!(paths.contains(&a.busybox), "\n{closure}");

        let cache = a.fx.dir.join("cache");
        a.fx.mkdirs(&cache);
        let url = format!("file://{}", cache.display());
        let copied = a.nix(&["nix", "copy", "--to", &url, &top]).ok();
        for p in &paths {
            assert!(cache.join(format!("{}.narinfo", hash_part(p))).is_file(), "no narinfo for {p}\n{copied}");
        }
        let nars = fs::read_dir(cache.join("nar")).unwrap().count();
        assert_eq!(nars, 3, "NARs in the cache\n{copied}");

        // B: nix-store -r.
        let b = store!(m);
        let opts = from(&url);
        // (B has its own busybox: the same path, since the same bytes were added.)
        assert_eq!(b.busybox, a.busybox);
        let r = b.nix(&argv(&["nix-store", "-r", &top], &opts)).ok();
        assert_eq!(r.stdout(), format!("{top}\n"), "\n{r}");
        for p in paths.iter().filter(|p| **p != a.busybox) {
            assert!(r.stderr().contains(&format!("copying path '{p}' from '{url}'")), "{p} not substituted\n{r}");
        }
        assert!(!r.stderr().contains("building"), "\n{r}");
        for p in &paths {
            assert!(b.valid(p), "{p} is not valid in B");
            b.nix(&["nix-store", "--verify-path", p]).ok();
        }
        b.fx.sh(&format!("cat {top}/top {top}/dep-data && {top}/bin/sh -c 'echo sh from the cache'"))
            .expect_stdout("top\ndep data\nsh from the cache\n");
        let qr = b.nix(&["nix-store", "-qR", &top]).ok();
        let mut got: Vec<String> = qr.stdout().lines().map(String::from).collect();
        got.sort();
        assert_eq!(got, paths, "closure in B\n{qr}");

        // Again, with the NARs gone from the cache: nothing is fetched.
        let store_before = b.store_names();
        fs::rename(cache.join("nar"), cache.join("nar.away")).unwrap();
        let again = b.nix(&argv(&["nix-store", "-r", &top], &opts));
        fs::rename(cache.join("nar.away"), cache.join("nar")).unwrap();
        let again = again.ok();
        assert_eq!(again.stdout(), format!("{top}\n"), "\n{again}");
        for needle in ["copying path", "will be fetched", "building"] {
            assert!(!again.stderr().contains(needle), "the repeat fetched again ({needle:?})\n{again}");
        }
        assert_eq!(b.store_names(), store_before);
        b.verify();

        // C: `nix build` of the same expression is substituted, not built.
        let c = store!(m);
        c.write("closure.nix", &closure_expr(&c));
        let nb = c.nix(&argv(&["nix", "build", "-f", "closure.nix", "-o", "res"], &opts)).ok();
        assert_eq!(fs::read_link(c.fx.work.join("res")).unwrap().to_str().unwrap(), top, "\n{nb}");
        assert!(nb.stderr().contains(&format!("copying path '{top}' from '{url}'")), "\n{nb}");
        assert!(!nb.stderr().contains("building '"), "built instead of substituted\n{nb}");
        for p in &paths {
            assert!(c.valid(p), "{p} is not valid in C");
        }
        let nb2 = c.nix(&argv(&["nix", "build", "-f", "closure.nix", "--no-link"], &opts)).ok();
        assert!(!nb2.stderr().contains("copying path") && !nb2.stderr().contains("building"), "\n{nb2}");
        c.verify();
    }

    /// A NAR corrupted in the cache (bytes flipped in a file's contents, so that the
    /// archive still parses): Nix reports the hash mismatch and registers nothing;
    /// once the cache is repaired the same path substitutes fine.
    fn corrupted_nar_is_rejected(m: Mode) {
        let a = store!(m);
        let marker = "payload-that-will-be-corrupted";
        a.write("victim.nix", &a.drv("victim", &nix_escape(&format!("mkdir $out && echo {marker} > $out/payload"))));
        let victim = one_path(&a.nix(&["nix-build", "--no-out-link", "victim.nix"]).ok());
        let cache = a.fx.dir.join("cache");
        a.fx.mkdirs(&cache);
        let url = format!("file://{}", cache.display());
        // Uncompressed NARs: a flipped byte is a content change, not an xz error.
        a.nix(&["nix", "copy", "--to", &format!("{url}?compression=none"), &victim]).ok();
        let nar_dir = cache.join("nar");
        let nars: Vec<_> = fs::read_dir(&nar_dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(nars.len(), 1, "{nars:?}");
        let nar = &nars[0];
        let good = fs::read(nar).unwrap();
        let at = find(&good, marker.as_bytes()).expect("the payload in the NAR");
        let mut bad = good.clone();
        for b in &mut bad[at..at + 4] {
            *b ^= 0x20; // "payl" -> "PAYL"
        }
        fs::write(nar, &bad).unwrap();

        let b = store!(m);
        let opts = from(&url);
        let r = b.nix(&argv(&["nix-store", "-r", &victim], &opts)).expect_code(1);
        assert!(r.stderr().contains(&format!("hash mismatch importing path '{victim}'")), "\n{r}");
        assert_eq!(r.stdout(), "", "\n{r}");
        assert!(!b.valid(&victim), "the corrupted path was registered");
        let nb = b.nix(&argv(&["nix", "build", "--no-link", &victim], &opts)).expect_code(1);
        assert!(nb.stderr().contains(&format!("hash mismatch importing path '{victim}'")), "\n{nb}");
        assert!(!b.valid(&victim), "the corrupted path was registered");
        let q = b.nix(&["nix-store", "-q", "--hash", &victim]).expect_code(1);
        assert!(q.stderr().contains("is not valid"), "\n{q}");
        b.verify();

        // Repaired cache: the path substitutes, with the right contents.
        fs::write(nar, &good).unwrap();
        let ok = b.nix(&argv(&["nix-store", "-r", &victim], &opts)).ok();
        assert_eq!(ok.stdout(), format!("{victim}\n"), "\n{ok}");
        assert!(b.valid(&victim));
        assert_eq!(b.fx.read_string(b.host(&format!("{victim}/payload"))), format!("{marker}\n"));
        b.verify();
    }
}

both_modes! {
    /// `nix-store --export` in one ptnix instance piped into `nix-store --import` in
    /// another, on another store: the closure arrives valid, in dependency order.
    fn export_import_between_stores(m: Mode) {
        let a = store!(m);
        a.write("closure.nix", &closure_expr(&a));
        let top = one_path(&a.nix(&["nix-build", "--no-out-link", "closure.nix"]).ok());
        let qr = a.nix(&["nix-store", "-qR", &top]).ok();
        let closure: Vec<String> = qr.stdout().lines().map(String::from).collect();
        let mut exp: Vec<&str> = vec!["nix-store", "--export"];
        exp.extend(closure.iter().map(String::as_str));
        let nar = a.nix(&exp).ok();
        assert!(nar.stdout.len() > 1_000_000, "the export is too short ({} bytes): busybox is in it", nar.stdout.len());

        // A fresh store directory, never initialised: the import creates the database.
        let fresh = Fixture::new(m);
        let imp = fresh
            .cmd(&["nix-store", "--import"])
            .env("NIX_CONFIG", OFFLINE)
            .stdin(nar.stdout.clone())
            .timeout(NIX_TIMEOUT)
            .run()
            .ok();
        let mut got: Vec<String> = imp.stdout().lines().map(String::from).collect();
        let mut want = closure.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "\n{imp}");
        let check = fresh
            .cmd(&["/bin/sh", "-c", &format!("nix-store --check-validity {} && nix-store -qR {top} | sort && {top}/bin/sh -c 'cat $0/top' {top} && nix-store --verify --check-contents", closure.join(" "))])
            .env("NIX_CONFIG", OFFLINE)
            .run()
            .ok();
        assert_eq!(check.stdout(), format!("{}\ntop\n", want.join("\n")), "\n{check}");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
