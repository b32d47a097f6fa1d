//! Syscall arguments and results in x86_64 registers.
//!
//! The syscall ABI: number in `orig_rax` (at a stop), arguments in rdi, rsi, rdx, r10,
//! r8, r9, result in `rax`. Setting `orig_rax` to -1 at an entry or seccomp stop skips
//! the syscall; the tracee then sees whatever `rax` holds on return.

use crate::ptrace::Regs;

pub fn arg(r: &Regs, i: u8) -> u64 {
    match i {
        0 => r.rdi,
        1 => r.rsi,
        2 => r.rdx,
        3 => r.r10,
        4 => r.r8,
        5 => r.r9,
        _ => unreachable!("syscalls have six arguments"),
    }
}

pub fn set_arg(r: &mut Regs, i: u8, v: u64) {
    match i {
        0 => r.rdi = v,
        1 => r.rsi = v,
        2 => r.rdx = v,
        3 => r.r10 = v,
        4 => r.r8 = v,
        5 => r.r9 = v,
        _ => unreachable!("syscalls have six arguments"),
    }
}

/// Skips the syscall so that it returns `ret` (a value, or `-errno`).
pub fn skip(r: &mut Regs, ret: i64) {
    r.orig_rax = u64::MAX;
    r.rax = ret as u64;
}

/// include/linux/errno.h: what an interrupted syscall returns inside the kernel.
/// -ERESTARTSYS is restarted after a signal unless a handler without SA_RESTART runs
/// (then EINTR); -ERESTARTNOINTR is always restarted (arch/x86/kernel/signal.c).
pub const ERESTARTSYS: i64 = -512;
pub const ERESTARTNOINTR: i64 = -513;

/// `cs` of a process running 32-bit code (the i386 ABI); 64-bit code runs with 0x33.
pub const CS_32BIT: u64 = 0x23;
