//! PT_INTERP, DT_NEEDED and GOT-reference lookup in arbitrary bytes (headers
//! anywhere in the file, as patchelf leaves them).
#![no_main]
use ptnix_syscalls::elf::{got_references_in, interpreter_in, needed_in, ElfInterp};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let ElfInterp::Path(p) = interpreter_in(data) {
        assert!(p.len() < 4096 && !p.contains(&0));
    }
    for n in needed_in(data) {
        assert!(n.len() <= 256 && !n.contains(&0));
    }
    // Every name handed to the predicate is a whole string of the table.
    got_references_in(data, &|n| {
        assert!(!n.contains(&0));
        false
    });
});
