//! The loader's library search, answered by the in-process fast path (the tracer's
//! `shim`, `la_objsearch` in shim.c): where ptnix starts a store program through
//! glibc's loader, the object tells the loader where a library is when it can know
//! for sure, and leaves every other case to the loader. Whatever the program ends up
//! with must be what it gets without the fast path (`--no-shim`): the same library,
//! under the same name, or the same error.
//!
//! The store here is made by hand: the host's loader and libc in one store path,
//! and a test program (tests/c/libsearch.c) linked against `libfoo.so`, copied into
//! one store path per search path (DT_RUNPATH, set with patchelf), with libraries
//! of several variants (tests/c/libfoo.c) placed where each case needs them.

use ptnix_tests::*;
use std::path::PathBuf;
use ptnix_tests::prereq::find_in_path;
use std::process::Command;

const GLIBC: &str = "/nix/store/glb-glibc";
const CCC: &str = "/nix/store/ccc-libs/lib";

/// libfoo.c built as `soname` (`libfoo.so` or `libbar.so`), variant `v`.
fn lib(soname: &str, v: &str) -> PathBuf {
    let out = format!("libsearch-{soname}-{v}");
    c_prog_with("libfoo", &out, &["-shared", "-fPIC", &format!("-Wl,-soname,{soname}"), &format!("-DVARIANT=\"{v}\"")])
}

/// The host's loader and libc, in `GLIBC`.
fn host_glibc(fx: &Fixture) {
    for (name, host) in [("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2"), ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6")] {
        fx.copy_exec(host, fx.host(format!("{GLIBC}/{name}")));
    }
}

/// The test program at `/nix/store/NAME/bin/libsearch`, with the store loader and
/// `runpath` (then the libc) as its DT_RUNPATH: its guest path.
fn program(fx: &Fixture, name: &str, runpath: &str) -> String {
    program_with(fx, name, runpath, &[])
}

/// [`program`], with more patchelf flags (`--force-rpath`: DT_RPATH instead).
fn program_with(fx: &Fixture, name: &str, runpath: &str, flags: &[&str]) -> String {
    let base = lib("libfoo.so", "base");
    let prog = c_prog_with("libsearch", "libsearch", &["-Wl,--no-as-needed", base.to_str().unwrap(), "-ldl"]);
    let guest = format!("/nix/store/{name}/bin/libsearch");
    let host = fx.host(&guest);
    fx.copy_exec(&prog, &host);
    let rp = format!("{runpath}:{GLIBC}");
    let st = Command::new(find_in_path("patchelf").expect("patchelf"))
        .args(flags)
        .args(["--set-interpreter", &format!("{GLIBC}/ld-linux-x86-64.so.2"), "--set-rpath", &rp])
        .arg(&host)
        .status()
        .expect("running patchelf");
    assert!(st.success(), "patchelf failed on {}", host.display());
    fx.own(&host);
    guest
}

/// The libraries every case draws on.
fn libraries(fx: &Fixture) {
    host_glibc(fx);
    fx.mkdirs(&fx.host("/nix/store/aaa-nolib/lib"));
    fx.copy_exec(lib("libfoo.so", "ccc"), fx.host(format!("{CCC}/libfoo.so")));
    fx.copy_exec(lib("libbar.so", "ccc"), fx.host(format!("{CCC}/libbar.so")));
    // A directory with a glibc-hwcaps subdirectory, which the loader tries first.
    fx.copy_exec(lib("libfoo.so", "base"), fx.host("/nix/store/ddd-hw/lib/libfoo.so"));
    fx.copy_exec(lib("libfoo.so", "v2"), fx.host("/nix/store/ddd-hw/lib/glibc-hwcaps/x86-64-v2/libfoo.so"));
    // Not an ELF file, and an ELF file of the other class (the loader passes over
    // it: "wrong ELF class"), made by changing EI_CLASS.
    fx.write(fx.host("/nix/store/eee-junk/lib/libfoo.so"), "not a library\n");
    let mut other = std::fs::read(lib("libfoo.so", "base")).unwrap();
    other[4] = 1;
    fx.write_exec(fx.host("/nix/store/eee-class/lib/libfoo.so"), other);
    // A relative symlink that stays in the store, and an absolute one.
    fx.symlink("../../ccc-libs/lib/libfoo.so", fx.host("/nix/store/fff-rel/lib/libfoo.so"));
    fx.symlink(format!("{CCC}/libfoo.so"), fx.host("/nix/store/ggg-abs/lib/libfoo.so"));
    // A library directory that is a symlink to another store path's.
    fx.symlink("../ccc-libs/lib", fx.host("/nix/store/hhh-dirlink/lib"));
    // A libfoo.so whose DT_SONAME is another name.
    fx.copy_exec(lib("libother.so", "other"), fx.host("/nix/store/iii-soname/lib/libfoo.so"));
}

/// The program's output and status with and without the fast path; asserts they
/// are the same, and returns the output with it.
fn same_as_without(fx: &mut Fixture, argv: &[&str], env: &[(&str, &str)]) -> String {
    let run = |fx: &Fixture| {
        let mut c = fx.cmd(argv);
        for (k, v) in env {
            c = c.env(k, v);
        }
        c.run()
    };
    let with = run(fx);
    fx.flags.push("--no-shim");
    let without = run(fx);
    fx.flags.pop();
    assert_eq!((with.code(), with.stdout(), with.stderr()), (without.code(), without.stdout(), without.stderr()), "\nwith the fast path:\n{with}\nwithout:\n{without}");
    with.stdout()
}

/// A fixture with [`libraries`], or None (the test returns) without a prerequisite.
fn fixture(m: Mode) -> Option<Fixture> {
    if !prerequisites_met() {
        return None;
    }
    let fx = Fixture::new(m);
    libraries(&fx);
    Some(fx)
}

fn prerequisites_met() -> bool {
    if !prerequisites(&[Need::Cc]) {
        return false;
    }
    if find_in_path("patchelf").is_none() {
        assert!(!under_ci(), "patchelf is missing (apt-get install patchelf)");
        eprintln!("skipped: patchelf is missing");
        return false;
    }
    true
}

both_modes! {
    /// A library found in the second directory of the search path that exists, a
    /// library loaded by dlopen: found where the loader finds it, under the name it
    /// gives it.
    fn found_where_the_loader_finds_it(m: Mode) {
        let Some(mut fx) = fixture(m) else { return };
        let p = program(&fx, "p1-search", &format!("/nix/store/aaa-nolib/lib:/nix/store/bbb-missing/lib:{CCC}"));
        let out = same_as_without(&mut fx, &[&p, "libbar.so"], &[]);
        assert_eq!(out, format!("foo ccc\ndlopened bar ccc\nloaded {CCC}/libfoo.so\nloaded {CCC}/libbar.so\n"));
        // The same through a relative symlink inside the store, and through a library
        // directory that is such a symlink.
        let p = program(&fx, "p2-rel", "/nix/store/fff-rel/lib");
        assert_eq!(same_as_without(&mut fx, &[&p], &[]), "foo ccc\nloaded /nix/store/fff-rel/lib/libfoo.so\n");
        let p = program(&fx, "p3-dirlink", "/nix/store/hhh-dirlink/lib");
        assert_eq!(same_as_without(&mut fx, &[&p], &[]), "foo ccc\nloaded /nix/store/hhh-dirlink/lib/libfoo.so\n");
    }

    /// Where the object cannot know the loader's answer for sure it leaves the search
    /// to the loader: a glibc-hwcaps subdirectory, a file that is not a library or
    /// one of the other ELF class, an absolute symlink, `$ORIGIN`, LD_LIBRARY_PATH.
    fn left_to_the_loader_where_unsure(m: Mode) {
        let Some(mut fx) = fixture(m) else { return };
        let p = program(&fx, "p4-hw", &format!("/nix/store/ddd-hw/lib:{CCC}"));
        let out = same_as_without(&mut fx, &[&p], &[]);
        assert!(out.contains("loaded /nix/store/ddd-hw/lib/"), "{out}");
        let p = program(&fx, "p5-junk", &format!("/nix/store/eee-junk/lib:{CCC}"));
        same_as_without(&mut fx, &[&p], &[]);
        let p = program(&fx, "p5-class", &format!("/nix/store/eee-class/lib:{CCC}"));
        assert_eq!(same_as_without(&mut fx, &[&p], &[]), format!("foo ccc\nloaded {CCC}/libfoo.so\n"));
        let p = program(&fx, "p6-abs", "/nix/store/ggg-abs/lib");
        assert_eq!(same_as_without(&mut fx, &[&p], &[]), "foo ccc\nloaded /nix/store/ggg-abs/lib/libfoo.so\n");
        let p = program(&fx, "p7-origin", "$ORIGIN/../../ccc-libs/lib");
        assert_eq!(same_as_without(&mut fx, &[&p], &[]), "foo ccc\nloaded /nix/store/p7-origin/bin/../../ccc-libs/lib/libfoo.so\n");
        let p = program(&fx, "p8-llp", CCC);
        let out = same_as_without(&mut fx, &[&p], &[("LD_LIBRARY_PATH", "/nix/store/fff-rel/lib")]);
        assert_eq!(out, "foo ccc\nloaded /nix/store/fff-rel/lib/libfoo.so\n");
        // A library whose soname is not the name asked for (the loader takes it all
        // the same); DT_RPATH instead of DT_RUNPATH; a host directory first.
        let p = program(&fx, "p10-soname", &format!("/nix/store/iii-soname/lib:{CCC}"));
        assert_eq!(same_as_without(&mut fx, &[&p], &[]), "foo other\nloaded /nix/store/iii-soname/lib/libfoo.so\n");
        let p = program_with(&fx, "p11-rpath", &format!("/nix/store/aaa-nolib/lib:{CCC}"), &["--force-rpath"]);
        assert_eq!(same_as_without(&mut fx, &[&p], &[]), format!("foo ccc\nloaded {CCC}/libfoo.so\n"));
        let p = program(&fx, "p12-host", &format!("/usr/lib/ptnix-none:{CCC}"));
        assert_eq!(same_as_without(&mut fx, &[&p], &[]), format!("foo ccc\nloaded {CCC}/libfoo.so\n"));
        // The library preloaded by its path, then needed by name.
        let p = program(&fx, "p13-preloaded", CCC);
        let out = same_as_without(&mut fx, &[&p], &[("LD_PRELOAD", &format!("{CCC}/libfoo.so"))]);
        assert_eq!(out, format!("foo ccc\nloaded {CCC}/libfoo.so\n"));
    }

    /// `ldd`'s listing (LD_TRACE_LOADED_OBJECTS) names each library as the search
    /// found it: the same with the fast path (which then stays out of the search).
    fn the_listing_is_the_loaders(m: Mode) {
        let Some(mut fx) = fixture(m) else { return };
        let p = program(&fx, "p14-listing", &format!("/nix/store/aaa-nolib/lib:{CCC}"));
        // Load addresses differ from run to run.
        let listing = |fx: &Fixture| {
            let out = fx.cmd(&[&p]).env("LD_TRACE_LOADED_OBJECTS", "1").run().ok();
            out.stdout().lines().map(|l| l.split(" (0x").next().unwrap_or(l).to_string()).collect::<Vec<_>>().join("\n")
        };
        let with = listing(&fx);
        fx.flags.push("--no-shim");
        assert_eq!(with, listing(&fx));
        assert!(with.contains(&format!("libfoo.so => {CCC}/libfoo.so")), "{with}");
    }

    /// Where no memory that was writable may become executable (PR_SET_MDWE), the
    /// object cannot make its gadget: programs run without the fast path, as without
    /// it.
    fn no_gadget_under_mdwe(m: Mode) {
        let Some(mut fx) = fixture(m) else { return };
        let p = program(&fx, "p15-mdwe", &format!("/nix/store/aaa-nolib/lib:{CCC}"));
        let mdwe = c_prog("mdwe");
        let out = fx.run(&[mdwe.to_str().unwrap(), &p]);
        if out.stdout() == "mdwe unsupported\n" {
            assert!(!under_ci(), "the kernel has no PR_SET_MDWE (Linux 6.3)");
            return;
        }
        let out = same_as_without(&mut fx, &[mdwe.to_str().unwrap(), &p, "libbar.so"], &[]);
        assert_eq!(out, format!("foo ccc\ndlopened bar ccc\nloaded {CCC}/libfoo.so\nloaded {CCC}/libbar.so\n"));
    }

    /// The directories the loader would try in vain are not tried through ptnix: no
    /// open in them reaches it (seccomp modes), and `--stats` says so.
    fn misses_do_not_reach_ptnix(m: Mode) {
        let Some(mut fx) = fixture(m) else { return };
        let p = program(&fx, "p9-misses", &format!("/nix/store/aaa-nolib/lib:{CCC}"));
        fx.flags.extend(["-v", "--stats"]);
        let out = fx.run(&[&p]).ok();
        let err = out.stderr();
        let tried = err.contains("/nix/store/aaa-nolib/lib/libfoo.so");
        let answered = err.lines().any(|l| l.contains("1 of them as the loader's auditor"));
        assert_eq!((tried, answered), (!m.seccomp(), m.seccomp()), "\n{out}");
        fx.flags.push("--no-shim");
        let out = fx.run(&[&p]).ok();
        assert!(out.stderr().contains("/nix/store/aaa-nolib/lib/libfoo.so"), "\n{out}");
    }
}
