//! The /proc names and contents ptnix rewrites: a tracee controls its task name
//! (prctl PR_SET_NAME) and its argument strings, so `stat`, `status`, `comm` and
//! `cmdline` can hold any bytes (and `status` gives ptnix the umask of tracees that
//! create files, see `umask`).
#![no_main]
use ptnix_syscalls::procfs::{comm_of, parse, program_cmdline, rename_task, umask};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = parse(data);
    if let Some(m) = umask(data) {
        assert!(m <= 0o7777);
    }
    let mut parts = data.splitn(3, |&b| b == 0xff);
    let (old, new, text) = (parts.next().unwrap_or(b""), parts.next().unwrap_or(b""), parts.next().unwrap_or(b""));
    let new = comm_of(new);
    assert!(new.len() <= 15 && !new.contains(&b'/'));
    for file in [&b"comm"[..], b"stat", b"status"] {
        if let Some(out) = rename_task(file, text, old, &new) {
            // Renaming back restores the file exactly.
            assert_eq!(rename_task(file, &out, &new, old).as_deref(), Some(text), "{file:?}");
        }
    }
    let argv: Vec<Vec<u8>> = old.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    if let Some(out) = program_cmdline(text, &argv) {
        assert!(out.len() <= text.len());
    }
});
