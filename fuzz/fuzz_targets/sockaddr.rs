//! `sockaddr_un` parsing of arbitrary bytes as passed to bind/connect.
#![no_main]
use ptnix_syscalls::sockaddr::{build, unix_path, SUN_PATH_MAX};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(p) = unix_path(data) {
        assert!(!p.is_empty() && p.len() <= SUN_PATH_MAX && !p.contains(&0));
        if let Some(b) = build(p) {
            assert_eq!(unix_path(&b), Some(p));
        }
    }
});
