//! The LD_PRELOAD entry ptnix builds from a program's own (tracee-controlled) value:
//! ptnix's object comes last exactly once, and the program's value comes first intact.
#![no_main]
use ptnix_syscalls::exec::preload_entry;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (object, theirs) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    if object.is_empty() || object.contains(&b':') {
        return; // ptnix's object path is absolute and has no ':'
    }
    let v = preload_entry(object, theirs);
    let rest = v.strip_prefix(b"LD_PRELOAD=").unwrap().strip_suffix(object).unwrap();
    match rest.strip_suffix(b":") {
        None => assert!(rest.is_empty()),
        Some(t) => {
            assert!(!t.is_empty());
            assert!(theirs.unwrap().starts_with(t));
        }
    }
});
