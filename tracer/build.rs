//! Builds the in-process fast path (`shim/shim.c`, see `src/shim.rs`) into a shared
//! object that ptnix carries in its binary. It needs the C compiler that Rust already
//! uses as its linker (`cc`, or `$CC`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "shim/shim.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("ptnix-shim.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    // No libc, no start files, no stack protector (it would need libc's canary), no
    // red zone (its calls into the gadget push a return address below the stack
    // pointer), and no lazy binding: every symbol it uses is resolved at load. Two
    // segments (code with read-only data, and data) and no RELRO: fewer mmap and
    // mprotect calls for the loader at each exec.
    let status = Command::new(&cc)
        .args(["-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-nostdlib", "-fno-stack-protector", "-mno-red-zone"])
        .args(["-fno-builtin", "-Wl,--hash-style=gnu", "-Wl,-z,now", "-Wl,-z,noexecstack", "-Wl,-z,noseparate-code", "-Wl,-z,norelro", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}` for {src}: {e}"));
    assert!(status.success(), "`{cc}` failed to build {src}");
}
