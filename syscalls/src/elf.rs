//! ELF interpreter (PT_INTERP) lookup.
//!
//! binfmt_elf reads the ELF header and program headers; a PT_INTERP segment names the
//! dynamic loader, which the kernel opens itself, on the host, during execve. ptnix
//! must find it first, to start a loader that lives in `/nix` explicitly.

use goblin::container::Ctx;
use goblin::elf::header;
use goblin::elf::Elf;
use goblin::elf::program_header::{ProgramHeader, PT_DYNAMIC, PT_INTERP, PT_LOAD};

/// What a file's ELF headers say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElfInterp {
    /// Not an ELF file.
    NotElf,
    /// An ELF file without PT_INTERP (static, or a shared object).
    None,
    /// PT_INTERP names this path (without the terminating NUL).
    Path(Vec<u8>),
    /// An ELF file the kernel would refuse (ENOEXEC): bad header or segment, or
    /// headers past the end of the file.
    Malformed,
}

/// The kernel's limit on the PT_INTERP string (binfmt_elf: "p_filesz > PATH_MAX").
const MAX_INTERP: u64 = 4096;
/// Program header tables larger than this are refused (binfmt_elf: 64 KiB).
const MAX_PHDRS_SIZE: u64 = 65536;

/// Reads `len` bytes at `offset` of the file; fewer at its end.
pub type ReadAt<'a> = dyn FnMut(u64, usize) -> Result<Vec<u8>, crate::Errno> + 'a;

/// Reads exactly `len` bytes, or says the file is too short (Malformed).
fn exact(read: &mut ReadAt<'_>, offset: u64, len: usize) -> Result<Option<Vec<u8>>, crate::Errno> {
    let b = read(offset, len)?;
    Ok((b.len() == len).then_some(b))
}

/// What a file's ELF header and program header table say, read wherever the table is.
enum Headers {
    NotElf,
    Malformed,
    Found { phdrs: Vec<ProgramHeader>, ctx: Ctx },
}

fn program_headers(read: &mut ReadAt<'_>) -> Result<Headers, crate::Errno> {
    let ehdr_size = header::header64::SIZEOF_EHDR;
    let head = read(0, ehdr_size)?;
    if head.len() < 4 || &head[..4] != b"\x7fELF" {
        return Ok(Headers::NotElf);
    }
    if head.len() < ehdr_size && head.len() < header::header32::SIZEOF_EHDR {
        return Ok(Headers::Malformed);
    }
    let Ok(h) = Elf::parse_header(&head) else { return Ok(Headers::Malformed) };
    let (Ok(container), Ok(endian)) = (h.container(), h.endianness()) else { return Ok(Headers::Malformed) };
    let ctx = Ctx::new(container, endian);
    let phsize = u64::from(h.e_phentsize) * u64::from(h.e_phnum);
    if h.e_phnum == 0 || phsize > MAX_PHDRS_SIZE || usize::from(h.e_phentsize) != ProgramHeader::size(ctx) {
        return Ok(Headers::Malformed);
    }
    let Some(table) = exact(read, h.e_phoff, phsize as usize)? else { return Ok(Headers::Malformed) };
    let Ok(phdrs) = ProgramHeader::parse(&table, 0, usize::from(h.e_phnum), ctx) else {
        return Ok(Headers::Malformed);
    };
    Ok(Headers::Found { phdrs, ctx })
}

/// Looks up PT_INTERP, reading the ELF header, the program headers and the
/// interpreter name wherever they are in the file (patchelf moves them to its end).
pub fn interpreter(read: &mut ReadAt<'_>) -> Result<ElfInterp, crate::Errno> {
    let phdrs = match program_headers(read)? {
        Headers::NotElf => return Ok(ElfInterp::NotElf),
        Headers::Malformed => return Ok(ElfInterp::Malformed),
        Headers::Found { phdrs, .. } => phdrs,
    };
    let Some(interp) = phdrs.iter().find(|p| p.p_type == PT_INTERP) else { return Ok(ElfInterp::None) };
    if interp.p_filesz > MAX_INTERP || interp.p_filesz < 2 {
        return Ok(ElfInterp::Malformed);
    }
    let Some(raw) = exact(read, interp.p_offset, interp.p_filesz as usize)? else {
        return Ok(ElfInterp::Malformed);
    };
    // binfmt_elf: "make sure path is NULL terminated".
    if raw.last() != Some(&0) {
        return Ok(ElfInterp::Malformed);
    }
    let name = &raw[..memchr::memchr(0, &raw).unwrap_or(raw.len())];
    Ok(ElfInterp::Path(name.to_vec()))
}

/// At most this many bytes of PT_DYNAMIC are read, and this many DT_NEEDED names.
const MAX_DYNAMIC: u64 = 65536;
const MAX_NEEDED: usize = 256;

/// The DT_NEEDED names of an ELF64 little-endian file (the libraries the loader
/// loads first, in order): empty for anything else, or where the dynamic section or
/// its string table cannot be found in the file.
pub fn needed(read: &mut ReadAt<'_>) -> Result<Vec<Vec<u8>>, crate::Errno> {
    let Some((entries, phdrs)) = dynamic_entries(read)? else { return Ok(Vec::new()) };
    let (mut names, mut strtab, mut strsz) = (Vec::new(), None, 0u64);
    for &(tag, val) in &entries {
        match tag {
            1 if names.len() < MAX_NEEDED => names.push(val), // DT_NEEDED
            5 => strtab = Some(val),                           // DT_STRTAB (an address)
            10 => strsz = val,                                 // DT_STRSZ
            _ => {}
        }
    }
    // The string table's file offset: through the PT_LOAD segment that holds it.
    let Some(base) = strtab.and_then(|a| file_offset(&phdrs, a)) else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(names.len());
    for off in names.into_iter().filter(|&o| o < strsz) {
        let Some(at) = base.checked_add(off) else { continue };
        let bytes = read(at, 256.min((strsz - off) as usize))?;
        out.push(bytes[..memchr::memchr(0, &bytes).unwrap_or(bytes.len())].to_vec());
    }
    Ok(out)
}

/// At most this many bytes of relocations, symbols or strings are read.
const MAX_TABLE: u64 = 8 << 20;

/// The entries of the file's PT_DYNAMIC (tag, value), up to DT_NULL, and its program
/// headers; None for anything but ELF64 little-endian with a dynamic section.
fn dynamic_entries(read: &mut ReadAt<'_>) -> Result<Option<(Vec<(i64, u64)>, Vec<ProgramHeader>)>, crate::Errno> {
    let Headers::Found { phdrs, ctx } = program_headers(read)? else { return Ok(None) };
    if !ctx.is_big() || !ctx.is_little_endian() {
        return Ok(None);
    }
    let Some(dynamic) = phdrs.iter().find(|p| p.p_type == PT_DYNAMIC) else { return Ok(None) };
    let bytes = read(dynamic.p_offset, dynamic.p_filesz.min(MAX_DYNAMIC) as usize)?;
    let entries = bytes
        .chunks_exact(16)
        .map(|e| (i64::from_le_bytes(e[..8].try_into().unwrap()), u64::from_le_bytes(e[8..].try_into().unwrap())))
        .take_while(|&(tag, _)| tag != 0)
        .collect();
    Ok(Some((entries, phdrs)))
}

/// The file offset of address `addr`: through the PT_LOAD segment whose file bytes
/// hold it.
fn file_offset(phdrs: &[ProgramHeader], addr: u64) -> Option<u64> {
    let seg = phdrs.iter().find(|p| p.p_type == PT_LOAD && addr >= p.p_vaddr && addr - p.p_vaddr < p.p_filesz)?;
    seg.p_offset.checked_add(addr - seg.p_vaddr)
}

/// Whether an ELF64 little-endian file refers to an undefined symbol that `wanted`
/// names through a relocation of DT_RELA (R_X86_64_64 or R_X86_64_GLOB_DAT): a
/// function reached through the GOT alone (code built with -fno-plt, as Rust's is, or
/// a function whose address the object takes), which the loader binds without asking
/// an auditor: rtld-audit's la_symbind is called for PLT slots (DT_JMPREL) and dlsym.
/// False for anything else, or where the tables are not found in the file.
pub fn got_references(read: &mut ReadAt<'_>, wanted: &dyn Fn(&[u8]) -> bool) -> Result<bool, crate::Errno> {
    let Some((entries, phdrs)) = dynamic_entries(read)? else { return Ok(false) };
    let get = |tag: i64| entries.iter().find(|e| e.0 == tag).map(|e| e.1);
    // DT_RELA, DT_RELASZ, DT_SYMTAB, DT_STRTAB, DT_STRSZ.
    let (Some(rela), Some(relasz), Some(symtab), Some(strtab), Some(strsz)) = (get(7), get(8), get(6), get(5), get(10)) else {
        return Ok(false);
    };
    let (Some(rela), Some(symtab), Some(strtab)) = (file_offset(&phdrs, rela), file_offset(&phdrs, symtab), file_offset(&phdrs, strtab)) else {
        return Ok(false);
    };
    let relocs = read(rela, relasz.min(MAX_TABLE) as usize)?;
    let mut syms: Vec<u64> = relocs
        .chunks_exact(24)
        .filter_map(|r| {
            let info = u64::from_le_bytes(r[8..16].try_into().unwrap());
            // R_X86_64_64, R_X86_64_GLOB_DAT; symbol 0 is none.
            (matches!(info as u32, 1 | 6) && info >> 32 != 0).then_some(info >> 32)
        })
        .collect();
    syms.sort_unstable();
    syms.dedup();
    let Some(&last) = syms.last() else { return Ok(false) };
    let symbols = read(symtab, ((last + 1) * 24).min(MAX_TABLE) as usize)?;
    let strings = read(strtab, strsz.min(MAX_TABLE) as usize)?;
    for i in syms {
        let Some(s) = usize::try_from(i * 24).ok().and_then(|at| symbols.get(at..at + 24)) else { break };
        let name = u32::from_le_bytes(s[..4].try_into().unwrap()) as usize;
        let shndx = u16::from_le_bytes(s[6..8].try_into().unwrap());
        let Some(tail) = strings.get(name..) else { continue };
        let Some(end) = memchr::memchr(0, tail) else { continue };
        if shndx == 0 && wanted(&tail[..end]) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// [`got_references`] over bytes in memory.
pub fn got_references_in(bytes: &[u8], wanted: &dyn Fn(&[u8]) -> bool) -> bool {
    got_references(&mut in_memory(bytes), wanted).unwrap_or(false)
}

/// The names of the functions a shared object defines in its dynamic symbol table,
/// sorted; empty if it cannot be parsed.
pub fn defined_functions(object: &[u8]) -> Vec<Vec<u8>> {
    let Ok(elf) = Elf::parse(object) else { return Vec::new() };
    let mut names: Vec<Vec<u8>> = elf
        .dynsyms
        .iter()
        .filter(|s| s.st_shndx != 0 && s.is_function())
        .filter_map(|s| elf.dynstrtab.get_at(s.st_name))
        .map(|n| n.as_bytes().to_vec())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Reads of `bytes` as of a file (fewer bytes at its end).
fn in_memory(bytes: &[u8]) -> impl FnMut(u64, usize) -> Result<Vec<u8>, crate::Errno> + '_ {
    move |off, len| {
        let start = usize::try_from(off).unwrap_or(usize::MAX).min(bytes.len());
        let end = start.saturating_add(len).min(bytes.len());
        Ok(bytes[start..end].to_vec())
    }
}

/// [`needed`] over bytes in memory.
pub fn needed_in(bytes: &[u8]) -> Vec<Vec<u8>> {
    needed(&mut in_memory(bytes)).unwrap_or_default()
}

/// [`interpreter`] over bytes in memory (a whole file, or a prefix of one).
pub fn interpreter_in(bytes: &[u8]) -> ElfInterp {
    interpreter(&mut in_memory(bytes)).unwrap_or(ElfInterp::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_binaries() {
        let ls = std::fs::read("/bin/sh").unwrap();
        match interpreter_in(&ls) {
            ElfInterp::Path(p) => assert!(p.starts_with(b"/lib"), "{}", String::from_utf8_lossy(&p)),
            other => panic!("{other:?}"),
        }
        assert_eq!(interpreter_in(b"#!/bin/sh\n"), ElfInterp::NotElf);
        assert_eq!(interpreter_in(b"\x7fEL"), ElfInterp::NotElf);
    }

    #[test]
    fn needed_libraries_of_host_binaries() {
        let sh = std::fs::read("/bin/sh").unwrap();
        let names = needed_in(&sh);
        assert!(names.iter().any(|n| n == b"libc.so.6"), "{names:?}");
        assert!(needed_in(b"#!/bin/sh\n").is_empty());
        for n in [10, 64, 100, 300] {
            let _ = needed_in(&sh[..n]);
        }
    }

    #[test]
    fn truncated_files_are_malformed() {
        let ls = std::fs::read("/bin/sh").unwrap();
        for n in [10, 63, 64, 100, 300] {
            assert_eq!(interpreter_in(&ls[..n]), ElfInterp::Malformed, "{n}");
        }
    }

    #[test]
    fn got_references_of_a_small_object() {
        // See testdata/got-globdat.c: stat and open through R_X86_64_GLOB_DAT.
        let so = include_bytes!("../testdata/got-globdat.so");
        assert!(got_references_in(so, &|n| n == b"stat"));
        assert!(got_references_in(so, &|n| n == b"open"));
        assert!(!got_references_in(so, &|n| n == b"lstat" || n == b"f"));
        // Truncated anywhere: no panic, and no answer without the tables.
        for n in [16, 64, 300, 600, 1000, so.len() - 1] {
            let _ = got_references_in(&so[..n], &|_| true);
        }
        assert!(!got_references_in(&so[..64], &|_| true));
        // A program that calls through the PLT: its references are JUMP_SLOTs.
        let sh = std::fs::read("/bin/sh").unwrap();
        assert!(!got_references_in(&sh, &|n| n == b"execve"));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let mut h = b"\x7fELF".to_vec();
        h.extend(std::iter::repeat(0xff).take(100));
        assert_eq!(interpreter_in(&h), ElfInterp::Malformed);
    }
}

/// A minimal ELF64 executable header with one PT_INTERP segment naming `interp`
/// (`None`: no PT_INTERP, like a static binary). For tests, fuzz seeds and benches.
pub fn synthetic_elf(interp: Option<&[u8]>) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    let u16le = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&x.to_le_bytes());
    let u32le = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
    let u64le = |v: &mut Vec<u8>, x: u64| v.extend_from_slice(&x.to_le_bytes());
    u16le(&mut v, 2); // e_type: ET_EXEC
    u16le(&mut v, 0x3e); // e_machine: x86_64
    u32le(&mut v, 1); // e_version
    u64le(&mut v, 0x401000); // e_entry
    u64le(&mut v, 64); // e_phoff
    u64le(&mut v, 0); // e_shoff
    u32le(&mut v, 0); // e_flags
    u16le(&mut v, 64); // e_ehsize
    u16le(&mut v, 56); // e_phentsize
    u16le(&mut v, 1); // e_phnum
    u16le(&mut v, 64); // e_shentsize
    u16le(&mut v, 0); // e_shnum
    u16le(&mut v, 0); // e_shstrndx
    let name_off = 64 + 56;
    let filesz = interp.map_or(0, |i| i.len() as u64 + 1);
    u32le(&mut v, if interp.is_some() { PT_INTERP } else { 1 }); // p_type (PT_LOAD if none)
    u32le(&mut v, 4); // p_flags
    u64le(&mut v, name_off); // p_offset
    u64le(&mut v, 0x400000 + name_off); // p_vaddr
    u64le(&mut v, 0x400000 + name_off); // p_paddr
    u64le(&mut v, filesz); // p_filesz
    u64le(&mut v, filesz); // p_memsz
    u64le(&mut v, 1); // p_align
    if let Some(i) = interp {
        v.extend_from_slice(i);
        v.push(0);
    }
    v
}

#[cfg(test)]
mod synthetic_tests {
    use super::*;

    #[test]
    fn synthetic_round_trip() {
        assert_eq!(interpreter_in(&synthetic_elf(Some(b"/nix/store/g/lib/ld.so"))), ElfInterp::Path(b"/nix/store/g/lib/ld.so".to_vec()));
        assert_eq!(interpreter_in(&synthetic_elf(None)), ElfInterp::None);
    }
}
