//! Tracee memory access against a real stopped tracee, through process_vm_readv/writev
//! and through the PEEKDATA/POKEDATA fallback.
//!
//! A forked child shares the parent's address layout, so addresses of this process's
//! statics are valid in the child: the child stops itself and the parent reads and
//! writes its copy (see `ptnix_tracer::testing`).

use ptnix_tracer::mem;
use ptnix_tracer::testing::{kill, stopped_child};

const PAGE: usize = 4096;
#[repr(align(4096))]
#[allow(dead_code)] // only its address and bytes are used, through the tracee
struct Pages([u8; 3 * PAGE]);
static mut BUF: Pages = Pages([b'x'; 3 * PAGE]);

fn exercise(pid: libc::pid_t) {
    // A path that crosses a page boundary, ending one byte into the next page.
    let base = std::ptr::addr_of!(BUF) as u64;
    let start = base + PAGE as u64 - 5;
    let path = b"/nix/store/abc\0";
    mem::write(pid, start, path).unwrap();
    assert_eq!(mem::read_path(pid, start).unwrap(), b"/nix/store/abc");

    // No NUL within PATH_MAX bytes: ENAMETOOLONG, as getname() says.
    let long = vec![b'a'; 2 * PAGE + 100];
    mem::write(pid, base, &long).unwrap();
    assert_eq!(mem::read_path(pid, base).unwrap_err(), libc::ENAMETOOLONG);

    // Unmapped: EFAULT.
    assert_eq!(mem::read_path(pid, 8).unwrap_err(), libc::EFAULT);

    // Unaligned short writes keep the neighbouring bytes.
    mem::write(pid, base + 3, b"QR").unwrap();
    let mut got = [0u8; 6];
    mem::read(pid, base, &mut got).unwrap();
    assert_eq!(&got, b"aaaQRa");
}

#[test]
fn process_vm_and_peek_poke() {
    let pid = stopped_child();
    exercise(pid);
    mem::use_ptrace_words();
    exercise(pid);
    kill(pid);
}
