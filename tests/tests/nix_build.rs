//! Real Nix (nix-bin 2.8) building under ptnix, offline, in a store the test makes:
//! first start, `nix-build` and `nix build` with a static busybox builder, an output of
//! hundreds of files and symlinks into other store paths, `--check` rebuilds, a failing
//! builder, Nix's default configuration (sandbox on, falling back to no sandbox since
//! ptnix refuses namespaces), an output whose host paths are longer than PATH_MAX, a
//! `#!` script builder and `-j4` parallel builders.

use ptnix_tests::nixenv::{self, one_path, NixStore, DEFAULT_CONFIG};
use ptnix_tests::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Held by the deep-output test of each mode, which run in parallel otherwise: while
/// one has a process whose working directory is deeper than the host's PATH_MAX, the
/// kernel cannot give that directory as a path (`readlink /proc/PID/cwd`:
/// ENAMETOOLONG), and the garbage collector of another, which reads every
/// process's `/proc` links for runtime roots, stops with "reading symlink: File name
/// too long" (Nix's readProcLink passes over ENOENT, EACCES and ESRCH only).
static DEEP: std::sync::Mutex<()> = std::sync::Mutex::new(());

macro_rules! store {
    ($m:expr) => {
        match NixStore::new($m) {
            Some(ns) => ns,
            None => return,
        }
    };
}

/// How many files (and as many symlinks) the big output holds.
const MANY: usize = 300;

both_modes! {
    /// A store directory ptnix creates from nothing: `nix-store --init`, `nix --version`
    /// and a full `--verify --check-contents` of the empty store.
    fn first_start_on_a_fresh_store(m: Mode) {
        if !nixenv::prerequisites() {
            return;
        }
        // A store directory that does not exist yet: ptnix creates it.
        let mut fx = Fixture::new(m);
        fx.store = fx.dir.join("created-by-ptnix/store");
        assert!(!fx.store.exists());
        let nix = |argv: &[&str]| fx.cmd(argv).env("NIX_CONFIG", nixenv::OFFLINE).timeout(nixenv::NIX_TIMEOUT).run();
        let init = nix(&["nix-store", "--init"]).ok();
        assert_eq!(init.stdout(), "", "\n{init}");
        for d in ["/nix/store", "/nix/var/nix"] {
            let md = fs::metadata(fx.host(d)).unwrap();
            assert!(md.is_dir() && md.permissions().mode() & 0o777 == 0o755, "{d}: {md:?}");
        }
        for d in ["/nix/store", "/nix/var/nix/db", "/nix/var/nix/profiles", "/nix/var/nix/gcroots"] {
            assert!(fx.host(d).is_dir(), "no {d} in the store directory after nix-store --init\n{init}");
        }
        assert!(fx.host("/nix/var/nix/db/db.sqlite").is_file(), "\n{init}");
        let v = nix(&["nix", "--version"]).ok();
        assert!(v.stdout().starts_with("nix (Nix) 2."), "\n{v}");
        let v2 = nix(&["nix-store", "--version"]).ok();
        assert!(v2.stdout().starts_with("nix-store (Nix) 2."), "\n{v2}");
        let verify = nix(&["nix-store", "--verify", "--check-contents"]).ok();
        assert_eq!(
            verify.stderr(),
            "reading the Nix store...\nchecking path existence...\nchecking link hashes...\nchecking store hashes...\n",
            "\n{verify}"
        );
    }

    /// `nix-build` and `nix build` of a derivation built by the store's busybox: the
    /// builder sees /nix paths (its own exe, its cwd, $out), the outputs are valid and
    /// the `result` links point at them.
    fn busybox_builder(m: Mode) {
        let ns = store!(m);
        let bb = ns.busybox.clone();
        ns.write("hello.nix", &ns.drv(
            "hello",
            "mkdir $out && echo hello from busybox > $out/greeting && readlink /proc/$$/exe > $out/exe && echo $out > $out/self && ls /nix/store > $out/store-listing",
        ));
        let built = ns.nix(&["nix-build", "hello.nix"]).ok();
        let out = one_path(&built);
        assert!(out.ends_with("-hello"), "\n{built}");
        assert!(built.stderr().contains("building '/nix/store/"), "\n{built}");
        assert_eq!(fs::read_link(ns.fx.work.join("result")).unwrap(), Path::new(&out), "./result\n{built}");
        assert_eq!(ns.fx.read_string(ns.host(&format!("{out}/greeting"))), "hello from busybox\n");
        assert_eq!(ns.fx.read_string(ns.host(&format!("{out}/exe"))), format!("{bb}/busybox\n"), "the builder's /proc/self/exe");
        assert_eq!(ns.fx.read_string(ns.host(&format!("{out}/self"))), format!("{out}\n"));
        let listing = ns.fx.read_string(ns.host(&format!("{out}/store-listing")));
        assert!(listing.lines().any(|l| format!("/nix/store/{l}") == bb), "busybox not in the builder's ls /nix/store:\n{listing}");
        assert!(ns.valid(&out));
        // Built again: nothing to do.
        let again = ns.nix(&["nix-build", "--no-out-link", "hello.nix"]).ok();
        assert_eq!(one_path(&again), out);
        assert!(!again.stderr().contains("building"), "built twice\n{again}");
        // The same, through the nix-command CLI, into a fresh output.
        ns.write("hello2.nix", &ns.drv("hello2", "mkdir $out && echo hello again > $out/greeting"));
        let nb = ns.nix(&["nix", "build", "-f", "hello2.nix", "-o", "res2"]).ok();
        let out2 = fs::read_link(ns.fx.work.join("res2")).unwrap_or_else(|e| panic!("no ./res2 ({e})\n{nb}"));
        let out2 = out2.to_str().unwrap().to_string();
        assert!(out2.starts_with("/nix/store/") && out2.ends_with("-hello2"), "\n{nb}");
        assert_eq!(ns.fx.read_string(ns.host(&format!("{out2}/greeting"))), "hello again\n");
        let pi = ns.nix(&["nix", "path-info", &out2]).ok();
        assert_eq!(pi.stdout(), format!("{out2}\n"), "\n{pi}");
        // The guest reads them through ./result (a symlink into /nix).
        ns.fx.sh("cat result/greeting res2/greeting").expect_stdout("hello from busybox\nhello again\n");
        ns.verify();
    }

    /// An output of hundreds of files and symlinks into two other store paths: all of
    /// it lands in the store, references are found, and the links resolve in the guest.
    fn output_with_many_files_and_links(m: Mode) {
        let ns = store!(m);
        let bb = ns.busybox.clone();
        let expr = format!(
            "let dep = {dep}; in {farm}",
            dep = ns.drv("dep", "mkdir -p $out/data && i=0 && while [ $i -lt 20 ]; do echo dep $i > $out/data/d$i; i=$((i+1)); done").trim_end(),
            farm = ns.drv(
                "farm",
                &format!(
                    "mkdir -p $out/files/sub $out/links && i=0 && while [ $i -lt {MANY} ]; do echo file $i > $out/files/f$i; ln -s ${{dep}}/data/d$((i % 20)) $out/links/l$i; i=$((i+1)); done && ln -s ${{dep}} $out/dep && ln -s {bb}/sh $out/sh && ln -s ../f7 $out/files/sub/rel && mkdir $out/empty"
                ),
            ),
        );
        ns.write("farm.nix", &expr);
        let built = ns.nix(&["nix-build", "--no-out-link", "farm.nix"]).ok();
        let out = one_path(&built);
        let host = ns.host(&out);
        let dep = fs::read_link(host.join("dep")).unwrap().to_str().unwrap().to_string();
        assert!(dep.starts_with("/nix/store/") && dep.ends_with("-dep"), "$out/dep -> {dep}");
        // Host side: every file and link is there, with the guest targets.
        let files = fs::read_dir(host.join("files")).unwrap().count();
        assert_eq!(files, MANY + 1, "entries in $out/files (with sub/)");
        for i in 0..MANY {
            assert_eq!(ns.fx.read_string(host.join(format!("files/f{i}"))), format!("file {i}\n"));
            let t = fs::read_link(host.join(format!("links/l{i}"))).unwrap();
            assert_eq!(t.to_str().unwrap(), format!("{dep}/data/d{}", i % 20));
        }
        assert_eq!(fs::read_dir(host.join("links")).unwrap().count(), MANY);
        assert_eq!(fs::read_link(host.join("sh")).unwrap().to_str().unwrap(), format!("{bb}/sh"));
        assert_eq!(fs::read_link(host.join("files/sub/rel")).unwrap().to_str().unwrap(), "../f7");
        assert!(host.join("empty").is_dir());
        // Nix found both references (busybox through the link only).
        let refs = ns.nix(&["nix-store", "-q", "--references", &out]).ok();
        let mut got: Vec<String> = refs.stdout().lines().map(String::from).collect();
        got.sort();
        let mut want = vec![bb.clone(), dep.clone()];
        want.sort();
        assert_eq!(got, want, "\n{refs}");
        // The guest follows the links into the other store paths.
        let s = format!(
            "cd {out} && cat links/l0 links/l299 files/sub/rel && ls links | wc -l && ls -L links | wc -l && ./sh -c 'echo via store sh' && ls dep/data | wc -l"
        );
        ns.fx.sh(&s).expect_stdout(&format!("dep 0\ndep {}\nfile 7\n{MANY}\n{MANY}\nvia store sh\n20\n", (MANY - 1) % 20));
        let nars = ns.nix(&["nix-store", "--dump", &out]).ok();
        assert!(nars.stdout.len() > MANY * 100, "nix-store --dump is too short: {} bytes", nars.stdout.len());
        ns.nix(&["nix-store", "--verify-path", &out]).ok();
        ns.verify();
    }

    /// `nix-build --check` and `nix build --rebuild`: a deterministic derivation is
    /// built again and found identical; a nondeterministic one is reported as such.
    fn check_rebuilds(m: Mode) {
        let ns = store!(m);
        ns.write("det.nix", &ns.drv("det", "mkdir -p $out/a/b && echo same > $out/a/b/f && ln -s a/b/f $out/l"));
        let out = one_path(&ns.nix(&["nix-build", "--no-out-link", "det.nix"]).ok());
        let before = ns.nix(&["nix-store", "-q", "--hash", &out]).ok().stdout();
        let chk = ns.nix(&["nix-build", "--no-out-link", "--check", "det.nix"]).ok();
        assert_eq!(one_path(&chk), out);
        assert!(chk.stderr().contains("checking outputs of '/nix/store/"), "no rebuild happened\n{chk}");
        let rb = ns.nix(&["nix", "build", "--no-link", "--rebuild", "-f", "det.nix"]).ok();
        assert!(rb.stderr().contains("checking outputs of '/nix/store/"), "no rebuild happened\n{rb}");
        assert_eq!(ns.nix(&["nix-store", "-q", "--hash", &out]).ok().stdout(), before);

        ns.write("random.nix", &ns.drv("random", "mkdir $out && cat /proc/sys/kernel/random/uuid > $out/id"));
        let rout = one_path(&ns.nix(&["nix-build", "--no-out-link", "random.nix"]).ok());
        let id = ns.fx.read_string(ns.host(&format!("{rout}/id")));
        let bad = ns.nix(&["nix-build", "--no-out-link", "--check", "random.nix"]).expect_code(104);
        assert!(
            bad.stderr().contains(&format!("may not be deterministic: output '{rout}' differs")),
            "\n{bad}"
        );
        let bad2 = ns.nix(&["nix", "build", "--no-link", "--rebuild", "-f", "random.nix"]).expect_code(1);
        assert!(bad2.stderr().contains(&format!("output '{rout}' differs")), "\n{bad2}");
        // The checked output itself is untouched and still valid.
        assert_eq!(ns.fx.read_string(ns.host(&format!("{rout}/id"))), id);
        assert!(ns.valid(&rout));
        ns.verify();
    }

    /// A builder that fails: Nix's own message and exit status (100 for nix-build, 1
    /// for nix build), the builder's output in the log, no output path.
    fn failing_builder(m: Mode) {
        let ns = store!(m);
        ns.write("fail.nix", &ns.drv("failer", "echo this builder is failing >&2; mkdir $out; exit 3"));
        let inst = ns.nix(&["nix-instantiate", "fail.nix"]).ok();
        let drv = one_path(&inst);
        let out = ns.nix(&["nix-store", "-q", "--outputs", &drv]).ok().stdout().trim_end().to_string();
        let nb = ns.nix(&["nix-build", "fail.nix"]).expect_code(100);
        let err = nb.stderr();
        assert!(err.contains("this builder is failing\n"), "\n{nb}");
        assert!(err.contains(&format!("error: builder for '{drv}' failed with exit code 3")), "\n{nb}");
        assert!(!ns.fx.work.join("result").exists(), "a result link for a failed build");
        let n2 = ns.nix(&["nix", "build", "-f", "fail.nix"]).expect_code(1);
        let err2 = n2.stderr();
        assert!(err2.contains(&format!("error: builder for '{drv}' failed with exit code 3;")), "\n{n2}");
        assert!(err2.contains("last 1 log lines:") && err2.contains("> this builder is failing"), "\n{n2}");
        let log = ns.nix(&["nix", "log", &drv]).ok();
        assert_eq!(log.stdout(), "this builder is failing\n", "\n{log}");
        assert!(!ns.valid(&out), "the failed output {out} is valid");
        // (Nix leaves the failed output's directory in place, unregistered, and deletes
        // it before the next attempt.)
        ns.verify();
    }

    /// Nix's default configuration (no `sandbox` setting anywhere: the default is a
    /// sandbox with `sandbox-fallback = true`) builds: ptnix refuses the namespaces and
    /// Nix falls back to an unsandboxed build.
    fn default_configuration_builds(m: Mode) {
        let ns = store!(m);
        // Debian's /etc/nix/nix.conf sets `sandbox = false`: hide it.
        let conf = ns.fx.dir.join("empty-conf");
        ns.fx.mkdirs(&conf);
        let dflt = |argv: &[&str]| {
            ns.fx
                .cmd(argv)
                .env("NIX_CONFIG", DEFAULT_CONFIG)
                .env("NIX_CONF_DIR", &conf)
                .timeout(nixenv::NIX_TIMEOUT)
                .run()
        };
        let cfg = dflt(&["nix", "show-config"]).ok();
        let lines: Vec<&str> = cfg.stdout.split(|&b| b == b'\n').map(|l| std::str::from_utf8(l).unwrap()).collect();
        for want in ["sandbox = true", "sandbox-fallback = true"] {
            assert!(lines.contains(&want), "nix show-config lacks {want:?}: this is not Nix's default\n{cfg}");
        }
        ns.write("dflt.nix", &ns.drv("dflt", "mkdir $out && echo built by default > $out/f && echo $NIX_BUILD_TOP > $out/top"));
        let b = dflt(&["nix-build", "--no-out-link", "dflt.nix"]).ok();
        let out = one_path(&b);
        assert_eq!(ns.fx.read_string(ns.host(&format!("{out}/f"))), "built by default\n");
        // Unsandboxed: the build directory is the real temporary one, not /build.
        let top = ns.fx.read_string(ns.host(&format!("{out}/top")));
        assert_ne!(top, "/build\n", "the build ran in a sandbox?");
        ns.write("dflt2.nix", &ns.drv("dflt2", "mkdir $out && echo nix build by default > $out/f"));
        let b2 = dflt(&["nix", "build", "-f", "dflt2.nix", "-o", "r2"]).ok();
        let r2 = fs::read_link(ns.fx.work.join("r2")).unwrap_or_else(|e| panic!("no ./r2 ({e})\n{b2}"));
        assert_eq!(ns.fx.read_string(ns.host(r2.to_str().unwrap()).join("f")), "nix build by default\n", "\n{b2}");
        ns.verify();
    }

    /// An output whose deepest guest path is close to PATH_MAX (4096) in a store whose
    /// host directory is long, so that the host paths are longer than PATH_MAX: the
    /// builder creates it, Nix hashes, checks, dumps and deletes it through ptnix.
    fn output_deeper_than_host_path_max(m: Mode) {
        let _one_at_a_time = DEEP.lock().unwrap_or_else(|p| p.into_inner());
        let Some(ns) = NixStore::new_deep(m) else { return };
        let comp = format!("component-of-a-deep-tree-{}", "y".repeat(80)); // 105 bytes
        ns.write(
            "deep.nix",
            &ns.drv("deep", &format!("d=$out && i=0 && while [ $i -lt {DEPTH} ]; do d=$d/{comp}$i; i=$((i+1)); done && mkdir -p $d && echo bottom > $d/f && echo $d/f > $TMPDIR/p && wc -c < $TMPDIR/p >&2")),
        );
        let b = ns.nix(&["nix-build", "--no-out-link", "deep.nix"]).ok();
        let out = one_path(&b);
        let mut guest = out.clone();
        for i in 0..DEPTH {
            guest.push_str(&format!("/{comp}{i}"));
        }
        guest.push_str("/f");
        let host_len = ns.fx.store.as_os_str().len() + guest.len();
        assert!(guest.len() < 4096 && host_len > 4096, "guest {} bytes, host {host_len} bytes", guest.len());
        ns.fx.run(&["/bin/cat", guest.as_str()]).expect_stdout("bottom\n");
        ns.fx.sh(&format!("cd {out} && find . | wc -l")).expect_stdout(&format!("{}\n", DEPTH + 2));
        let dump = ns.nix(&["nix-store", "--dump", &out]).ok();
        assert!(dump.stdout.windows(7).any(|w| w == b"bottom\n"), "the NAR lacks the deepest file");
        ns.nix(&["nix-store", "--verify-path", &out]).ok();
        let chk = ns.nix(&["nix-build", "--no-out-link", "--check", "deep.nix"]).ok();
        assert_eq!(one_path(&chk), out);
        ns.verify();
        let del = ns.nix(&["nix-store", "--delete", &out]).ok();
        assert!(del.stdout().starts_with("1 store paths deleted"), "\n{del}");
        assert!(!ns.host(&out).exists(), "{out} is still on the disk\n{del}");
        ns.verify();
    }

    /// A builder that is a `#!` script in the store (its interpreter busybox, in
    /// another store path), and `-j4`: four builders running at once under one ptnix
    /// (each waits until all four have started, so a serialised build fails).
    fn script_builder_and_parallel_builds(m: Mode) {
        let ns = store!(m);
        let dir = ns.fx.dir.join("stage/scripts");
        ns.fx.write_exec(dir.join("build.sh"), format!("#!{}/sh\nmkdir $out && echo \"script $0 $1 $2\" > $out/f\n", ns.busybox));
        let scripts = ns.add(&dir);
        ns.write(
            "script.nix",
            &format!(
                "derivation {{ name = \"scripted\"; system = \"x86_64-linux\"; builder = \"${{builtins.storePath \"{scripts}\"}}/build.sh\"; args = [ \"one\" \"two\" ]; }}\n"
            ),
        );
        let out = one_path(&ns.nix(&["nix-build", "--no-out-link", "script.nix"]).ok());
        assert_eq!(ns.fx.read_string(ns.host(&format!("{out}/f"))), format!("script {scripts}/build.sh one two\n"));

        let marks = ns.fx.work.join("marks");
        ns.fx.mkdirs(&marks);
        let m = marks.display();
        let wait = format!(
            "touch {m}/started-$name && i=0 && while [ $(ls {m} | wc -l) -lt 4 ]; do sleep 0.05; i=$((i+1)); if [ $i -gt 600 ]; then echo not parallel >&2; exit 7; fi; done && mkdir $out && echo $name > $out/name"
        );
        let expr = format!(
            "let mk = n: {}; in {}",
            ns.drv("par-${n}", &wait).trim_end(),
            ns.drv("par-all", "mkdir $out && cat ${mk \"1\"}/name ${mk \"2\"}/name ${mk \"3\"}/name ${mk \"4\"}/name > $out/all"),
        );
        ns.write("par.nix", &expr);
        let b = ns.cmd(&["nix-build", "-j4", "--no-out-link", "par.nix"]).timeout(std::time::Duration::from_secs(60)).run().ok();
        let all = one_path(&b);
        assert_eq!(ns.fx.read_string(ns.host(&format!("{all}/all"))), "par-1\npar-2\npar-3\npar-4\n", "\n{b}");
        ns.verify();
    }
}

/// Directory levels of the deep output (37 x ~108 bytes + the store path: ~4040 bytes).
const DEPTH: usize = 37;
