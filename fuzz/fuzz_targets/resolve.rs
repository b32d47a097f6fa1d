//! Guest-view resolution of arbitrary path bytes (non-UTF-8, `..` chains, overlong,
//! NULs) against a model filesystem whose symlink targets are fuzzed too (loops,
//! links into /nix and out of it). Resolution must never panic, never loop forever,
//! and never hand the kernel a path under the hidden host /nix.
#![no_main]
use ptnix_syscalls::mapping::Mapping;
use ptnix_syscalls::model::{ModelFs, Node};
use ptnix_syscalls::resolve::{resolve, Outcome, Request};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xff);
    let path = parts.next().unwrap_or_default();
    let mut fs = ModelFs::new();
    fs.dir("/s/nix/store/a/bin").dir("/home/u").dir("/nix/hidden").file("/s/nix/store/a/bin/x", b"");
    for (i, target) in parts.take(6).enumerate() {
        let at = ["/home/u/l0", "/s/nix/store/l1", "/s/nix/l2", "/home/l3", "/s/nix/store/a/l4", "/l5"][i];
        fs.add(at, Node::Link(target.to_vec()));
    }
    let map = Mapping::for_store(b"/s").unwrap();
    let flags = data.first().copied().unwrap_or(0);
    // The one-lookup fast path (openat2 RESOLVE_NO_SYMLINKS), or the walk.
    fs.plain = flags & 8 != 0;
    let cwd: &[u8] = if flags & 1 != 0 { b"/nix/store" } else { b"/home/u" };
    let req = Request { path, follow_last: flags & 2 != 0, names_entry: flags & 4 != 0, ..Default::default() };
    let r = resolve(&map, &mut fs, cwd, req);
    if let Outcome::Host(h) = &r.outcome {
        assert!(!h.starts_with(b"/nix/") && h != b"/nix", "leaked the hidden host /nix: {h:?}");
        assert!(h.len() < 4096);
    }
});
