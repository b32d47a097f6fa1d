//! Two ptnix instances running `nix-build` at the same time on one store: different
//! derivations build side by side, the same derivation is built once (the second
//! waits for the first's lock and reuses its output); the store verifies afterwards.

use ptnix_tests::nixenv::{one_path, NixStore};
use ptnix_tests::*;
use std::time::Duration;

macro_rules! store {
    ($m:expr) => {
        match NixStore::new($m) {
            Some(ns) => ns,
            None => return,
        }
    };
}

/// A derivation writing 100 files, slow enough (a second) for two builds to overlap.
fn slow(ns: &NixStore, name: &str) -> String {
    ns.drv(
        name,
        &format!("mkdir $out && i=0 && while [ $i -lt 100 ]; do echo {name} $i > $out/f$i; i=$((i+1)); done && sleep 1 && echo done > $out/done"),
    )
}

both_modes! {
    fn two_instances_build_at_once(m: Mode) {
        let ns = store!(m);
        ns.write("a.nix", &slow(&ns, "conc-a"));
        ns.write("b.nix", &slow(&ns, "conc-b"));
        ns.write("c.nix", &slow(&ns, "conc-same"));
        let t = Duration::from_secs(90);

        // Different derivations.
        let ra = ns.cmd(&["nix-build", "--no-out-link", "a.nix"]).timeout(t).spawn();
        let rb = ns.cmd(&["nix-build", "--no-out-link", "b.nix"]).timeout(t).spawn();
        let (oa, ob) = (ra.wait().ok(), rb.wait().ok());
        let (pa, pb) = (one_path(&oa), one_path(&ob));
        assert!(pa.ends_with("-conc-a") && pb.ends_with("-conc-b"), "\n{oa}\n{ob}");
        for (p, name) in [(&pa, "conc-a"), (&pb, "conc-b")] {
            assert_eq!(ns.fx.read_string(ns.host(&format!("{p}/f99"))), format!("{name} 99\n"));
            assert_eq!(ns.fx.read_string(ns.host(&format!("{p}/done"))), "done\n");
        }

        // The same derivation, twice at once: built once.
        let r1 = ns.cmd(&["nix-build", "--no-out-link", "c.nix"]).timeout(t).spawn();
        let r2 = ns.cmd(&["nix-build", "--no-out-link", "c.nix"]).timeout(t).spawn();
        let (o1, o2) = (r1.wait().ok(), r2.wait().ok());
        let (p1, p2) = (one_path(&o1), one_path(&o2));
        assert_eq!(p1, p2, "\n{o1}\n{o2}");
        let builds = [&o1, &o2].iter().filter(|o| o.stderr().contains("building '")).count();
        assert_eq!(builds, 1, "built other than once\n{o1}\n{o2}");
        assert_eq!(std::fs::read_dir(ns.host(&p1)).unwrap().count(), 101);

        for p in [&pa, &pb, &p1] {
            assert!(ns.valid(p));
            ns.nix(&["nix-store", "--verify-path", p]).ok();
        }
        ns.verify();
    }
}
