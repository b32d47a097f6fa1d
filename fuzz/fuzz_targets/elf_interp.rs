//! PT_INTERP lookup in arbitrary bytes (headers anywhere in the file, as patchelf
//! leaves them).
#![no_main]
use ptnix_syscalls::elf::{interpreter_in, ElfInterp};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let ElfInterp::Path(p) = interpreter_in(data) {
        assert!(p.len() < 4096 && !p.contains(&0));
    }
});
