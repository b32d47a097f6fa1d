//! `#!` line parsing of arbitrary file heads.
#![no_main]
use ptnix_syscalls::shebang::{parse, BINPRM_BUF_SIZE};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = parse(data) {
        assert!(!s.interpreter.is_empty());
        assert!(s.interpreter.len() < BINPRM_BUF_SIZE);
        assert!(!s.interpreter.contains(&0) && !s.interpreter.contains(&b' '));
    }
});
