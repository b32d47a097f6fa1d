//! The release binary must run on any x86_64 Linux (CentOS 7: glibc 2.17, kernel 3.10),
//! so it must not depend on the host's dynamic loader or libraries at all.

use std::process::Command;

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;

/// Program header types of an ELF64 little-endian file.
fn program_header_types(elf: &[u8]) -> Vec<u32> {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not ELF64");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum)
        .map(|i| {
            let o = phoff + i * phentsize;
            u32::from_le_bytes(elf[o..o + 4].try_into().unwrap())
        })
        .collect()
}

#[test]
fn binary_is_fully_static() {
    let bin = env!("CARGO_BIN_EXE_ptnix");
    let elf = std::fs::read(bin).unwrap();
    let types = program_header_types(&elf);
    assert!(!types.is_empty());
    assert!(!types.contains(&PT_INTERP), "{bin} names an ELF interpreter");
    assert!(!types.contains(&PT_DYNAMIC), "{bin} has a dynamic section");
}

#[test]
fn help_shows_examples() {
    for args in [&["--help"][..], &["run", "--help"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_ptnix")).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Examples:") && text.contains("ptnix run -- nix"), "{text}");
        assert!(text.contains("125"), "exit statuses documented: {text}");
    }
}

#[test]
fn usage_errors_exit_125() {
    let out = Command::new(env!("CARGO_BIN_EXE_ptnix")).args(["run", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let out = Command::new(env!("CARGO_BIN_EXE_ptnix")).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "no subcommand is a usage error");
}
