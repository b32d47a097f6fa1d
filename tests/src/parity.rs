//! Kernel parity: the same commands run once under ptnix on a tree at guest `/nix/...`
//! and once without ptnix on an identical tree at a plain host path. Apart from the
//! path prefix, everything they print must be the same: that is what "behaves like a
//! real /nix" means, error messages included, without the tests hard-coding what
//! coreutils or the kernel print.

use crate::fixture::Fixture;
use crate::run::Output;
use std::path::{Path, PathBuf};

/// The two roots a parity test builds its tree under: `guest_nix` is STORE/nix (seen
/// as `/nix` under ptnix), `ref_nix` is a plain directory `FIXTURE/ref/nix`.
pub struct ParityRoots {
    pub guest_nix: PathBuf,
    pub ref_nix: PathBuf,
}

impl ParityRoots {
    pub fn new(fx: &Fixture) -> ParityRoots {
        let r = ParityRoots {
            guest_nix: fx.host("/nix"),
            ref_nix: fx.dir.join("ref/nix"),
        };
        fx.mkdirs(&r.guest_nix);
        fx.mkdirs(&r.ref_nix);
        r
    }

    /// Calls `build` on both roots, so the two trees are identical.
    pub fn build(&self, mut build: impl FnMut(&Path)) {
        build(&self.guest_nix);
        build(&self.ref_nix);
    }

    /// What the reference run calls `/nix`.
    pub fn ref_prefix(&self) -> String {
        self.ref_nix
            .to_str()
            .expect("utf-8 fixture path")
            .to_string()
    }
}

/// Replaces every `from` in `hay` with `to`.
pub fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if !from.is_empty() && hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Asserts that `guest` (under ptnix, paths under `/nix`) and `reference` (plain, paths
/// under `ref_prefix`) did the same thing. The transcripts are compared section by
/// section (sections start with lines beginning `== `) so a failure names the
/// commands that differ.
#[track_caller]
pub fn assert_same(guest: &Output, reference: &Output, ref_prefix: &str) {
    let norm = |b: &[u8]| {
        String::from_utf8_lossy(&replace_bytes(b, ref_prefix.as_bytes(), b"/nix")).into_owned()
    };
    let (gs, rs) = (norm(&guest.stdout), norm(&reference.stdout));
    let (ge, re) = (norm(&guest.stderr), norm(&reference.stderr));
    let mut diffs = String::new();
    let split = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for l in s.lines() {
            if l.starts_with("== ") || v.is_empty() {
                v.push(String::new());
            }
            let last = v.last_mut().unwrap();
            last.push_str(l);
            last.push('\n');
        }
        v
    };
    let (g, r) = (split(&gs), split(&rs));
    for i in 0..g.len().max(r.len()) {
        let (a, b) = (
            g.get(i).map_or("<missing>", |s| s),
            r.get(i).map_or("<missing>", |s| s),
        );
        if a != b {
            diffs.push_str(&format!(
                "--- under ptnix:\n{a}--- kernel on a real directory:\n{b}\n"
            ));
        }
    }
    if ge != re {
        diffs.push_str(&format!(
            "--- stderr under ptnix:\n{ge}\n--- stderr of the reference:\n{re}\n"
        ));
    }
    if guest.status.code() != reference.status.code() {
        diffs.push_str(&format!(
            "--- exit: ptnix {:?}, reference {:?}\n",
            guest.status, reference.status
        ));
    }
    assert!(diffs.is_empty(), "ptnix differs from the kernel on a real directory:\n{diffs}\nguest run: {}\nreference run: {}", guest.desc, reference.desc);
}
