//! Exec planning where the executed file, its interpreter and its loader hold
//! arbitrary bytes: any `#!` chain or ELF header must give a plan or an errno.
#![no_main]
use ptnix_syscalls::exec::{plan, ExecOutcome, ExecRequest};
use ptnix_syscalls::mapping::Mapping;
use ptnix_syscalls::model::ModelFs;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0xfe);
    let (a, b, c) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let mut fs = ModelFs::new();
    fs.file("/s/nix/store/p/bin/prog", a).file("/s/nix/store/p/bin/interp", b).file("/s/nix/store/l/ld.so", c).dir("/home/u");
    let map = Mapping::for_store(b"/s").unwrap();
    let req = ExecRequest { filename: b"/nix/store/p/bin/prog", argv0: b"prog", cwd: b"/home/u", cwd_relative: true, follow_last: true, fd_name: None };
    if let ExecOutcome::Plan(p) = plan(&map, &mut fs, req) {
        assert!(!p.lead.is_empty());
        assert!(!p.filename.is_empty());
    }
});
