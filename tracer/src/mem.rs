//! Tracee memory: process_vm_readv/writev (one syscall for many bytes), with a
//! PEEKDATA/POKEDATA fallback for hosts that block them.

use crate::ptrace::{self, Pid};
use ptnix_syscalls::path::PATH_MAX;
use std::sync::atomic::{AtomicBool, Ordering};

const PAGE: u64 = 4096;

/// Cleared when process_vm_* fails with ENOSYS, or on ptnix's own memory (a policy
/// that refuses it: see [`probe_self`]): from then on the word-by-word ptrace
/// fallback is used. An EPERM for one tracee (a non-dumpable process: ssh-agent,
/// gpg-agent) falls back for that call only.
static VM_RW_WORKS: AtomicBool = AtomicBool::new(true);

/// Whether process_vm_readv works on ptnix's own memory; if not (a container policy
/// that refuses it), every access uses the word-by-word fallback.
pub fn probe_self() -> bool {
    let probe = [7u8; 8];
    let mut back = [0u8; 8];
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    let ok = read_direct(pid, probe.as_ptr() as u64, &mut back).is_ok() && back == probe;
    if !ok {
        use_ptrace_words();
    }
    ok
}

/// Whether process_vm_readv is in use (see [`probe_self`]) and process_vm_writev
/// works too, on ptnix's own memory.
pub fn vm_works() -> bool {
    let mut word = [0u8; 8];
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    VM_RW_WORKS.load(Ordering::Relaxed) && write_direct(pid, word.as_mut_ptr() as u64, &[7u8; 8]).is_ok()
}

/// Uses PEEKDATA/POKEDATA from now on, as when process_vm_readv is blocked (tests).
pub fn use_ptrace_words() {
    VM_RW_WORKS.store(false, Ordering::Relaxed);
}

fn vm_read(pid: Pid, addr: u64, buf: &mut [u8]) -> Result<usize, i32> {
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: `local` describes `buf`, which we own mutably; remote memory is the tracee's.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        Err(ptrace::last_errno())
    } else {
        Ok(n as usize)
    }
}

fn vm_write(pid: Pid, addr: u64, buf: &[u8]) -> Result<usize, i32> {
    let local = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: the kernel only reads `buf` through `local`.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        Err(ptrace::last_errno())
    } else {
        Ok(n as usize)
    }
}

/// process_vm_writev alone, without the fallback (for a tracee that is not in a
/// ptrace stop, which POKEDATA cannot reach).
pub fn write_direct(pid: Pid, addr: u64, buf: &[u8]) -> Result<(), i32> {
    match vm_write(pid, addr, buf)? {
        n if n == buf.len() => Ok(()),
        _ => Err(libc::EFAULT),
    }
}

/// process_vm_readv alone, without the fallback: says whether it works here.
pub fn read_direct(pid: Pid, addr: u64, buf: &mut [u8]) -> Result<(), i32> {
    match vm_read(pid, addr, buf)? {
        n if n == buf.len() => Ok(()),
        _ => Err(libc::EFAULT),
    }
}

/// Whether process_vm_* failing with `e` means: use the fallback (for good on
/// ENOSYS, for this call on EPERM).
fn vm_unavailable(e: i32) -> bool {
    if e == libc::ENOSYS {
        VM_RW_WORKS.store(false, Ordering::Relaxed);
    }
    matches!(e, libc::ENOSYS | libc::EPERM)
}

/// Reads exactly `buf.len()` bytes at `addr`; EFAULT if any of them is unmapped.
pub fn read(pid: Pid, addr: u64, buf: &mut [u8]) -> Result<(), i32> {
    if VM_RW_WORKS.load(Ordering::Relaxed) {
        match vm_read(pid, addr, buf) {
            Ok(n) if n == buf.len() => return Ok(()),
            Ok(_) => return Err(libc::EFAULT),
            Err(e) if vm_unavailable(e) => {}
            Err(e) => return Err(e),
        }
    }
    let mut done = 0;
    while done < buf.len() {
        let a = addr + done as u64;
        let aligned = a & !7;
        let word = ptrace::peek(pid, aligned).map_err(|e| if e == libc::EIO { libc::EFAULT } else { e })?;
        let bytes = word.to_ne_bytes();
        let off = (a - aligned) as usize;
        let n = (8 - off).min(buf.len() - done);
        buf[done..done + n].copy_from_slice(&bytes[off..off + n]);
        done += n;
    }
    Ok(())
}

/// The first `len` bytes (fewer where a NUL or the end of the mapping comes first:
/// never past a page end in one piece) of the strings at `addrs`, in one
/// process_vm_readv for up to IOV_MAX of them (an environment at exec).
pub fn read_prefixes(pid: Pid, addrs: &[u64], len: usize) -> Vec<Vec<u8>> {
    if let Some(out) = read_prefixes_at_once(pid, addrs, len) {
        return out;
    }
    let mut out = Vec::with_capacity(addrs.len());
    for chunk in addrs.chunks(1024) {
        let lens: Vec<usize> = chunk.iter().map(|&a| ((PAGE - a % PAGE) as usize).min(len)).collect();
        let mut buf = vec![0u8; lens.iter().sum()];
        let mut local = Vec::with_capacity(1);
        local.push(libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() });
        let remote: Vec<libc::iovec> =
            chunk.iter().zip(&lens).map(|(&a, &l)| libc::iovec { iov_base: a as *mut libc::c_void, iov_len: l }).collect();
        let got = if VM_RW_WORKS.load(Ordering::Relaxed) {
            // SAFETY: `local` describes `buf`, which we own mutably; remote memory is the
            // tracee's.
            let n = unsafe { libc::process_vm_readv(pid, local.as_ptr(), 1, remote.as_ptr(), remote.len() as libc::c_ulong, 0) };
            n.max(0) as usize
        } else {
            0
        };
        let mut at = 0;
        for (&a, &l) in chunk.iter().zip(&lens) {
            let mut s = if at + l <= got {
                buf[at..at + l].to_vec()
            } else {
                // Past what the batch read (an unmapped pointer stops it): one by one.
                let mut b = vec![0u8; l];
                let n = read_upto(pid, a, &mut b);
                b.truncate(n);
                b
            };
            at += l;
            // A string that goes on into the next page: the rest of its prefix.
            if s.len() < len && !s.contains(&0) && s.len() == l {
                let mut more = vec![0u8; len - s.len()];
                let n = read_upto(pid, a + s.len() as u64, &mut more);
                s.extend_from_slice(&more[..n]);
            }
            if let Some(nul) = memchr::memchr(0, &s) {
                s.truncate(nul);
            }
            out.push(s);
        }
    }
    out
}

/// Strings that lie within this span of each other (an environment, on a stack or in
/// a heap) are read in one piece: the kernel then pins their pages once, where one
/// iovec per string costs a page lookup each (process_vm_rw_core).
const PREFIX_SPAN: u64 = 64 * 1024;

/// [`read_prefixes`] from one read of the span the strings lie in; None when they are
/// spread wider, or a string is not all there (a hole in the span).
fn read_prefixes_at_once(pid: Pid, addrs: &[u64], len: usize) -> Option<Vec<Vec<u8>>> {
    let lo = *addrs.iter().min()?;
    let end = addrs.iter().max()?.checked_add(len as u64)?;
    if end - lo > PREFIX_SPAN {
        return None;
    }
    let mut buf = vec![0u8; (end - lo) as usize];
    let got = read_upto(pid, lo, &mut buf);
    addrs
        .iter()
        .map(|&a| {
            let from = (a - lo) as usize;
            let to = (from + len).min(got);
            let s = buf.get(from..to)?;
            match memchr::memchr(0, s) {
                Some(nul) => Some(s[..nul].to_vec()),
                // Its whole prefix, or cut short by the end of what could be read.
                None => (to == from + len).then(|| s.to_vec()),
            }
        })
        .collect()
}

/// Reads as much of `buf.len()` bytes at `addr` as is mapped (process_vm_readv
/// stops at the first unmapped page); returns how many. Reads across page ends on
/// purpose: for memory known to be mapped up to some unknown end (a stack).
pub fn read_upto(pid: Pid, addr: u64, buf: &mut [u8]) -> usize {
    if VM_RW_WORKS.load(Ordering::Relaxed) {
        match vm_read(pid, addr, buf) {
            Ok(n) => return n,
            Err(e) if vm_unavailable(e) => {}
            Err(_) => return 0,
        }
    }
    let mut done = 0;
    while done < buf.len() {
        let n = ((PAGE - (addr + done as u64) % PAGE) as usize).min(buf.len() - done);
        if read(pid, addr + done as u64, &mut buf[done..done + n]).is_err() {
            break;
        }
        done += n;
    }
    done
}

/// Writes all of `buf` at `addr`.
pub fn write(pid: Pid, addr: u64, buf: &[u8]) -> Result<(), i32> {
    if VM_RW_WORKS.load(Ordering::Relaxed) {
        match vm_write(pid, addr, buf) {
            Ok(n) if n == buf.len() => return Ok(()),
            Ok(_) => return Err(libc::EFAULT),
            Err(e) if vm_unavailable(e) => {}
            Err(e) => return Err(e),
        }
    }
    let mut done = 0;
    while done < buf.len() {
        let a = addr + done as u64;
        let aligned = a & !7;
        let off = (a - aligned) as usize;
        let n = (8 - off).min(buf.len() - done);
        let mut bytes = if off == 0 && n == 8 { [0; 8] } else { ptrace::peek(pid, aligned)?.to_ne_bytes() };
        bytes[off..off + n].copy_from_slice(&buf[done..done + n]);
        ptrace::poke(pid, aligned, u64::from_ne_bytes(bytes))?;
        done += n;
    }
    Ok(())
}

/// Reads a NUL-terminated path at `addr`, in chunks that never cross a page end (the
/// next page may be unmapped even though the string ends before it). Fails with the
/// kernel's own errno: EFAULT when unmapped, ENAMETOOLONG when no NUL comes within
/// PATH_MAX bytes (as getname() says).
pub fn read_path(pid: Pid, addr: u64) -> Result<Vec<u8>, i32> {
    read_path_by(pid, addr, read)
}

/// [`read_path`] with process_vm_readv alone, never the ptrace fallback: for a
/// tracee that is not in a ptrace stop (the notification supervisor's).
pub fn read_path_direct(pid: Pid, addr: u64) -> Result<Vec<u8>, i32> {
    read_path_by(pid, addr, read_direct)
}

fn read_path_by(pid: Pid, addr: u64, read: fn(Pid, u64, &mut [u8]) -> Result<(), i32>) -> Result<Vec<u8>, i32> {
    let mut out = Vec::with_capacity(128);
    let mut a = addr;
    let mut chunk = [0u8; PAGE as usize];
    while out.len() < PATH_MAX {
        let to_page_end = (PAGE - a % PAGE) as usize;
        let want = to_page_end.min(PATH_MAX - out.len());
        let buf = &mut chunk[..want];
        read(pid, a, buf)?;
        if let Some(nul) = memchr::memchr(0, buf) {
            out.extend_from_slice(&buf[..nul]);
            return Ok(out);
        }
        out.extend_from_slice(buf);
        a += want as u64;
    }
    Err(libc::ENAMETOOLONG)
}

/// Reads a native-endian u64 / u32 at `addr`.
pub fn read_u64(pid: Pid, addr: u64) -> Result<u64, i32> {
    let mut b = [0u8; 8];
    read(pid, addr, &mut b)?;
    Ok(u64::from_ne_bytes(b))
}
pub fn read_u32(pid: Pid, addr: u64) -> Result<u32, i32> {
    let mut b = [0u8; 4];
    read(pid, addr, &mut b)?;
    Ok(u32::from_ne_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings in three pages of our own memory, the middle one unmapped (a hole in
    /// the span), one running into the hole and one ending at the last page's end.
    #[test]
    fn prefixes_across_a_hole_and_at_a_mapping_end() {
        probe_self();
        let page = PAGE as usize;
        // SAFETY: a fresh anonymous mapping of our own, written only through `base`,
        // with its middle page unmapped before it is read.
        let base = unsafe {
            let p = libc::mmap(std::ptr::null_mut(), 3 * page, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            assert_ne!(p, libc::MAP_FAILED);
            p as *mut u8
        };
        let put = |off: usize, s: &[u8]| {
            // SAFETY: inside the mapping (checked by the caller's offsets).
            unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), base.add(off), s.len()) };
        };
        put(16, b"LD_PRELOAD=/x.so\0");
        put(page - 4, b"LD_L"); // runs into the hole
        put(2 * page, b"LD_LIBRARY_PATH=/a\0");
        put(3 * page - 3, b"A=1"); // no NUL before the mapping ends
        // SAFETY: unmaps the middle page of our own mapping.
        unsafe { libc::munmap(base.add(page).cast(), page) };
        let pid = std::process::id() as Pid;
        let at = |off: usize| base as u64 + off as u64;
        let addrs = [at(16), at(page - 4), at(2 * page), at(3 * page - 3)];
        let got = read_prefixes(pid, &addrs, 16);
        assert_eq!(got, vec![b"LD_PRELOAD=/x.so".to_vec(), b"LD_L".to_vec(), b"LD_LIBRARY_PATH=".to_vec(), b"A=1".to_vec()]);
        // Close together and all mapped: one read gives the same.
        assert_eq!(read_prefixes_at_once(pid, &addrs[2..3], 16), Some(vec![b"LD_LIBRARY_PATH=".to_vec()]));
        assert_eq!(read_prefixes_at_once(pid, &addrs, 16), None);
        // SAFETY: unmaps the rest of our own mapping.
        unsafe {
            libc::munmap(base.cast(), page);
            libc::munmap(base.add(2 * page).cast(), page);
        }
    }
}
