//! getdents64/getdents buffers as the kernel (or a torn read) might return them:
//! patching mount-point names must never panic, resize, or touch bytes outside the
//! records it parsed.
#![no_main]
use ptnix_syscalls::dirent::{names, patch_names, Format, Synthetic};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let nix = [Synthetic { name: b"nix".to_vec(), ino: 7, d_type: 4 }];
    for f in [Format::Dirent64, Format::Dirent] {
        let mut buf = data.to_vec();
        let before = names(f, &buf);
        patch_names(f, &mut buf, &nix);
        assert_eq!(buf.len(), data.len());
        let after = names(f, &buf);
        assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(b.0, a.0);
            assert_eq!(b.3, a.3);
        }
    }
});
