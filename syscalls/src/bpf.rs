//! The seccomp-bpf filter, built from [`crate::table`].
//!
//! seccomp(2): the filter sees `struct seccomp_data { int nr; __u32 arch;
//! __u64 instruction_pointer; __u64 args[6]; }` and returns an action. ptnix returns
//! SECCOMP_RET_TRACE (the tracer gets a PTRACE_EVENT_SECCOMP stop) for the syscalls it
//! translates, SECCOMP_RET_ERRNO for the ones it refuses, and SECCOMP_RET_ALLOW for the
//! rest, which then run at native speed without any stop.
//!
//! The x86_64 numbers are dispatched through a balanced tree of `jge` so that an
//! untraced syscall costs about log2(n) comparisons, not n.

use crate::table::{Class, FdCopy, Optional, Sys, F_DUPFD, F_DUPFD_CLOEXEC, I386_REFUSED, X32_SYSCALL_BIT};

/// One classic-BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcodes (linux/filter.h, linux/bpf_common.h).
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD (0x00) | BPF_W (0x00) | BPF_ABS (0x20)
const BPF_JMP_JA: u16 = 0x05;
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JGE_K: u16 = 0x05 | 0x30;
const BPF_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;

pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
pub const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
/// seccomp(2): "SECCOMP_RET_USER_NOTIF (since Linux 5.0)": the supervisor holding the
/// filter's listener descriptor answers the syscall.
pub const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// The 16-bit SECCOMP_RET_DATA of ptnix's own RET_TRACE ("PT"): the tracer reads it
/// (PTRACE_GETEVENTMSG) to tell its stops from those a tracee's own filter asks for.
pub const PTNIX_TRACE_DATA: u32 = 0x5054;
/// What ptnix's filter returns to stop a syscall.
pub const TRACE: u32 = SECCOMP_RET_TRACE | PTNIX_TRACE_DATA;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_IP: u32 = 8;

/// The in-process fast path's syscall gadget (`syscall; ret`), mapped by the object at
/// this fixed address in every process that loads it (the tracer's `shim`).
pub const GADGET_ADDR: u64 = 0x2_0000_0000;

const fn off_arg_lo(i: u8) -> u32 {
    16 + 8 * i as u32
}

const fn stmt(code: u16, k: u32) -> Insn {
    Insn { code, jt: 0, jf: 0, k }
}
const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}
const fn ret(k: u32) -> Insn {
    stmt(BPF_RET_K, k)
}
const fn errno(e: i32) -> u32 {
    SECCOMP_RET_ERRNO | (e as u32 & 0xffff)
}

/// Open flags that keep an open from the supervisor (see `Sys::notified_open`): an
/// O_PATH descriptor cannot be handed over (SECCOMP_IOCTL_NOTIF_ADDFD takes its
/// source with fget(), which skips O_PATH files: EBADF); an O_EXCL open must not run
/// twice (a signal may cut the wait for the supervisor's answer after it made the
/// file, and the call is restarted: it would fail with EEXIST).
pub const OPEN_STOPS: u32 = libc::O_PATH as u32 | libc::O_EXCL as u32;

/// What the filter does with one syscall number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Trace,
    /// Ask the user-notification supervisor.
    Notify,
    /// Ask the supervisor unless the argument has a bit of the mask set: then stop.
    NotifyUnlessFlag { arg: u8, mask: u32 },
    /// Trace only when the 64-bit argument is not zero (a NULL out-pointer means
    /// there is nothing to rewrite).
    TraceIfArg(u8),
    /// Trace only when the low 32 bits of the argument are this value.
    TraceIfArgIs(u8, u32),
    /// Trace only when every condition holds (on the low 32 bits of the arguments,
    /// which is all the kernel reads of an `unsigned int fd`).
    TraceIfAll([Option<Cond>; 3]),
    Errno(i32),
    ErrnoIfFlag { arg: u8, mask: u64, errno: i32 },
}

/// A test of the low 32 bits of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cond {
    AtLeast(u8, u32),
    Below(u8, u32),
    OneOf(u8, u32, u32),
}

/// Emits the conditions, each jumping to the end (`ret ALLOW`) when it fails, then
/// `ret TRACE`.
fn emit_all(conds: &[Cond], out: &mut Vec<Insn>) {
    // Instruction count per condition, to compute the forward jumps.
    let len = |c: &Cond| if matches!(c, Cond::OneOf(..)) { 3 } else { 2 };
    let mut left: usize = conds.iter().map(len).sum::<usize>() + 1; // + ret TRACE
    for c in conds {
        left -= len(c);
        // From the instruction after the last jump of this condition to `ret ALLOW`.
        let to_allow = u8::try_from(left).unwrap();
        match *c {
            Cond::AtLeast(a, k) => {
                out.push(stmt(BPF_LD_W_ABS, off_arg_lo(a)));
                out.push(jump(BPF_JGE_K, k, 0, to_allow));
            }
            Cond::Below(a, k) => {
                out.push(stmt(BPF_LD_W_ABS, off_arg_lo(a)));
                out.push(jump(BPF_JGE_K, k, to_allow, 0));
            }
            Cond::OneOf(a, x, y) => {
                out.push(stmt(BPF_LD_W_ABS, off_arg_lo(a)));
                out.push(jump(BPF_JEQ_K, x, 1, 0));
                out.push(jump(BPF_JEQ_K, y, 0, to_allow));
            }
        }
    }
    out.push(ret(TRACE));
    out.push(ret(SECCOMP_RET_ALLOW));
}

impl Action {
    fn emit(self, out: &mut Vec<Insn>) {
        match self {
            Action::Trace => out.push(ret(TRACE)),
            Action::Notify => out.push(ret(SECCOMP_RET_USER_NOTIF)),
            Action::NotifyUnlessFlag { arg, mask } => {
                out.push(stmt(BPF_LD_W_ABS, off_arg_lo(arg)));
                out.push(jump(BPF_JSET_K, mask, 0, 1));
                out.push(ret(TRACE));
                out.push(ret(SECCOMP_RET_USER_NOTIF));
            }
            Action::TraceIfArg(arg) => {
                out.push(stmt(BPF_LD_W_ABS, off_arg_lo(arg)));
                out.push(jump(BPF_JEQ_K, 0, 0, 2));
                out.push(stmt(BPF_LD_W_ABS, off_arg_lo(arg) + 4));
                out.push(jump(BPF_JEQ_K, 0, 1, 0));
                out.push(ret(TRACE));
                out.push(ret(SECCOMP_RET_ALLOW));
            }
            Action::TraceIfArgIs(arg, value) => {
                out.push(stmt(BPF_LD_W_ABS, off_arg_lo(arg)));
                out.push(jump(BPF_JEQ_K, value, 0, 1));
                out.push(ret(TRACE));
                out.push(ret(SECCOMP_RET_ALLOW));
            }
            Action::TraceIfAll(conds) => {
                let conds: Vec<Cond> = conds.iter().flatten().copied().collect();
                emit_all(&conds, out);
            }
            Action::Errno(e) => out.push(ret(errno(e))),
            Action::ErrnoIfFlag { arg, mask, errno: e } => {
                assert!(mask <= u64::from(u32::MAX), "flag masks above bit 31 are not supported");
                out.push(stmt(BPF_LD_W_ABS, off_arg_lo(arg)));
                out.push(jump(BPF_JSET_K, mask as u32, 0, 1));
                out.push(ret(errno(e)));
                out.push(ret(SECCOMP_RET_ALLOW));
            }
        }
    }
}

/// Emits a dispatch on the syscall number (already in the accumulator) over `entries`,
/// sorted by number. Every path through it ends in a `ret`.
fn dispatch(entries: &[(u32, Action)], out: &mut Vec<Insn>) {
    const LEAF: usize = 6;
    if entries.len() <= LEAF {
        for &(nr, action) in entries {
            let mut body = Vec::new();
            action.emit(&mut body);
            out.push(jump(BPF_JEQ_K, nr, 0, u8::try_from(body.len()).unwrap()));
            out.extend(body);
        }
        out.push(ret(SECCOMP_RET_ALLOW));
        return;
    }
    let mid = entries.len() / 2;
    let mut left = Vec::new();
    dispatch(&entries[..mid], &mut left);
    let skip = u8::try_from(left.len()).expect("BPF subtree too large for an 8-bit jump");
    out.push(jump(BPF_JGE_K, entries[mid].0, skip, 0));
    out.extend(left);
    dispatch(&entries[mid..], out);
}

fn x86_64_entries(opt: Optional) -> Vec<(u32, Action)> {
    let mut v: Vec<(u32, Action)> = Sys::ALL
        .iter()
        .filter(|s| s.in_filter(opt))
        .map(|&s| {
            let action = match s.class() {
                Class::Deny(e) => Action::Errno(e),
                Class::DenyIfFlag { arg, mask } => {
                    Action::ErrnoIfFlag { arg, mask, errno: libc::EPERM }
                }
                Class::SockaddrOut { addr, .. } => Action::TraceIfArg(addr),
                Class::OwnFilter { arg0: Some(v) } => Action::TraceIfArgIs(0, v),
                _ if opt.user_notif && s.notified() => Action::Notify,
                _ if opt.user_notif && opt.notify_open && (s.notified_effect() || s.notified_link()) => Action::Notify,
                _ if opt.user_notif && opt.notify_open && s.notified_open().is_some() => {
                    let arg = s.notified_open().unwrap_or(0);
                    Action::NotifyUnlessFlag { arg, mask: OPEN_STOPS }
                }
                Class::Getdents(_) | Class::FdCopy(_) if opt.listing_fd_base != 0 => {
                    let base = opt.listing_fd_base;
                    Action::TraceIfAll(match s.class() {
                        Class::FdCopy(FdCopy::To) => [Some(Cond::AtLeast(0, base)), Some(Cond::Below(1, base)), None],
                        Class::FdCopy(FdCopy::Fcntl) => [
                            Some(Cond::AtLeast(0, base)),
                            Some(Cond::OneOf(1, F_DUPFD, F_DUPFD_CLOEXEC)),
                            Some(Cond::Below(2, base)),
                        ],
                        // getdents(fd), dup(fd)
                        _ => [Some(Cond::AtLeast(0, base)), None, None],
                    })
                }
                _ => Action::Trace,
            };
            (s.nr(), action)
        })
        .collect();
    v.sort_by_key(|e| e.0);
    v
}

/// Builds the filter. The layout is:
/// 1. load `arch`; i386 goes to its own block, anything but x86_64 is killed
///    (an x86_64 kernel knows only these two audit arches);
/// 2. x32 numbers (bit 30 set) get ENOSYS;
/// 3. the x86_64 dispatch tree;
/// 4. the i386 block: every path-carrying int 0x80 syscall gets ENOSYS.
pub fn build_filter() -> Vec<Insn> {
    build_filter_with(Optional::default())
}

/// [`build_filter`], also stopping the syscalls launcher options need.
pub fn build_filter_with(opt: Optional) -> Vec<Insn> {
    let mut x86 = Vec::new();
    if opt.shim_cookie != 0 {
        // The fast path's calls (already translated): ALLOW when made from its gadget
        // (instruction_pointer: the address after the `syscall`) with the cookie in
        // args[5], which none of them uses (the kernel fills all six from the
        // registers). The address alone cannot be met by chance after the register's
        // value lingers: a signal handler entered on the call's way out finds r9 as
        // the call left it, but makes its own calls from elsewhere.
        let ip = GADGET_ADDR + 2;
        let c = opt.shim_cookie;
        let words = [(OFF_IP, ip as u32), (OFF_IP + 4, (ip >> 32) as u32), (off_arg_lo(5), c as u32), (off_arg_lo(5) + 4, (c >> 32) as u32)];
        for (i, (off, k)) in words.iter().enumerate() {
            x86.push(stmt(BPF_LD_W_ABS, *off));
            // Any mismatch skips the remaining checks and the ALLOW.
            x86.push(jump(BPF_JEQ_K, *k, 0, u8::try_from(2 * (words.len() - 1 - i) + 4).unwrap()));
        }
        // Never an exec, which the object does not make: every exec reaches the
        // tracer, which translates it and follows the new program.
        x86.push(stmt(BPF_LD_W_ABS, OFF_NR));
        x86.push(jump(BPF_JEQ_K, Sys::execve.nr(), 2, 0));
        x86.push(jump(BPF_JEQ_K, Sys::execveat.nr(), 1, 0));
        x86.push(ret(SECCOMP_RET_ALLOW));
    }
    x86.push(stmt(BPF_LD_W_ABS, OFF_NR));
    x86.push(jump(BPF_JGE_K, X32_SYSCALL_BIT as u32, 0, 1));
    x86.push(ret(errno(libc::ENOSYS)));
    dispatch(&x86_64_entries(opt), &mut x86);

    let mut i386 = vec![stmt(BPF_LD_W_ABS, OFF_NR)];
    let mut refused: Vec<(u32, Action)> =
        I386_REFUSED.iter().map(|&nr| (nr, Action::Errno(libc::ENOSYS))).collect();
    refused.sort_by_key(|e| e.0);
    dispatch(&refused, &mut i386);

    let mut prog = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH_I386, 0, 1),
        // `ja` has a 32-bit offset: skip the two arch checks below and the x86_64 block.
        stmt(BPF_JMP_JA, 2 + x86.len() as u32),
        jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        ret(SECCOMP_RET_KILL_PROCESS),
    ];
    prog.extend(x86);
    prog.extend(i386);
    assert!(prog.len() <= 4096, "BPF_MAXINSNS exceeded");
    prog
}

/// A second filter that stops every x86_64 getdents64/getdents, for a process that
/// holds a listed directory below the listing base (see the tracer's `listingfd`).
/// The arch is checked first: on i386 the same numbers are other syscalls.
pub fn getdents_filter() -> Vec<Insn> {
    vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 0, 4),
        stmt(BPF_LD_W_ABS, OFF_NR),
        jump(BPF_JEQ_K, Sys::getdents64.nr(), 1, 0),
        jump(BPF_JEQ_K, Sys::getdents.nr(), 0, 1),
        ret(TRACE),
        ret(SECCOMP_RET_ALLOW),
    ]
}

/// `struct sock_filter` as the kernel reads it from a tracee's memory.
pub fn to_bytes(prog: &[Insn]) -> Vec<u8> {
    let mut b = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        b.extend_from_slice(&i.code.to_ne_bytes());
        b.push(i.jt);
        b.push(i.jf);
        b.extend_from_slice(&i.k.to_ne_bytes());
    }
    b
}

/// The input of a filter run, as the kernel builds it.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    fn load_word(&self, off: u32) -> u32 {
        match off {
            0 => self.nr,
            4 => self.arch,
            8 => self.ip as u32,
            12 => (self.ip >> 32) as u32,
            16..=63 => {
                let a = self.args[((off - 16) / 8) as usize];
                if off % 8 == 0 { a as u32 } else { (a >> 32) as u32 }
            }
            _ => panic!("load outside seccomp_data"),
        }
    }
}

/// Runs `prog` the way the kernel would, for the opcodes [`build_filter`] emits.
/// Used by tests and benches to check decisions without installing the filter.
pub fn evaluate(prog: &[Insn], data: &SeccompData) -> u32 {
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            BPF_LD_W_ABS => acc = data.load_word(i.k),
            BPF_JMP_JA => pc += i.k as usize,
            BPF_JEQ_K | BPF_JGE_K | BPF_JSET_K => {
                let taken = match i.code {
                    BPF_JEQ_K => acc == i.k,
                    BPF_JGE_K => acc >= i.k,
                    _ => acc & i.k != 0,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            BPF_RET_K => return i.k,
            c => panic!("opcode {c:#x} not emitted by build_filter"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        evaluate(&build_filter(), &SeccompData { nr, arch, ip: 0, args })
    }

    #[test]
    fn launcher_options_add_their_syscalls() {
        let uid = Sys::getuid.nr();
        let plain = SeccompData { nr: uid, arch: AUDIT_ARCH_X86_64, ip: 0, args: [0; 6] };
        assert_eq!(evaluate(&build_filter(), &plain), SECCOMP_RET_ALLOW);
        let root = build_filter_with(Optional { fake_root: true, ..Optional::default() });
        assert_eq!(evaluate(&root, &plain), TRACE);
        let un = SeccompData { nr: Sys::uname.nr(), ..plain };
        assert_eq!(evaluate(&root, &un), SECCOMP_RET_ALLOW);
        assert_eq!(evaluate(&build_filter_with(Optional { uname: true, ..Optional::default() }), &un), TRACE);
    }

    /// The fast path's calls carry the cookie in args[5] and run; the same call
    /// without it (or with half of it, or from i386) is stopped as before.
    #[test]
    fn the_shim_cookie_lets_calls_through() {
        let cookie = 0x1234_5678_9abc_def0;
        let f = build_filter_with(Optional { shim_cookie: cookie, ..Optional::default() });
        let gadget = GADGET_ADDR + 2;
        let call = |nr: u32, arch: u32, ip: u64, a5: u64| evaluate(&f, &SeccompData { nr, arch, ip, args: [1, 2, 3, 4, 5, a5] });
        for s in [Sys::newfstatat, Sys::statx, Sys::openat2, Sys::getxattr, Sys::lgetxattr, Sys::faccessat, Sys::unlink] {
            let x86 = |ip, a5| call(s.nr(), AUDIT_ARCH_X86_64, ip, a5);
            assert_eq!(x86(gadget, cookie), SECCOMP_RET_ALLOW, "{}", s.name());
            // The cookie lingering in r9 of a call made elsewhere, or the gadget's
            // address without the cookie (or with half of it): stopped as before.
            assert_eq!(x86(0x40_1000, cookie), TRACE, "{}", s.name());
            assert_eq!(x86(gadget | 1 << 40, cookie), TRACE, "{}", s.name());
            assert_eq!(x86(gadget, 0), TRACE, "{}", s.name());
            assert_eq!(x86(gadget, cookie & 0xffff_ffff), TRACE, "{}", s.name());
            assert_eq!(x86(gadget, cookie & !0xffff_ffff), TRACE, "{}", s.name());
        }
        // Nor an exec.
        for s in [Sys::execve, Sys::execveat] {
            assert_eq!(call(s.nr(), AUDIT_ARCH_X86_64, gadget, cookie), TRACE, "{}", s.name());
        }
        // i386 never gets the exemption.
        let plain = build_filter();
        let i386 = SeccompData { nr: Sys::newfstatat.nr(), arch: AUDIT_ARCH_I386, ip: gadget, args: [1, 2, 3, 4, 5, cookie] };
        assert_eq!(evaluate(&f, &i386), evaluate(&plain, &i386));
        // Without a cookie the filter is the plain one.
        assert_eq!(build_filter_with(Optional::default()), build_filter());
    }

    #[test]
    fn every_table_entry_gets_its_action() {
        for &s in Sys::ALL {
            let got = decide(s.nr(), AUDIT_ARCH_X86_64, [0; 6]);
            match s.class() {
                Class::IdQuery { .. } | Class::Uname | Class::Affinity { .. } | Class::FdCopy(_) | Class::FdFetch | Class::Umask | Class::Landlock => {
                    assert_eq!(got, SECCOMP_RET_ALLOW, "{}", s.name())
                }
                Class::Deny(e) => assert_eq!(got, errno(e), "{}", s.name()),
                Class::DenyIfFlag { .. } => assert_eq!(got, SECCOMP_RET_ALLOW, "{}", s.name()),
                Class::SockaddrOut { .. } => assert_eq!(got, SECCOMP_RET_ALLOW, "{} with NULL", s.name()),
                Class::OwnFilter { arg0: Some(v) } => {
                    assert_eq!(got, SECCOMP_RET_ALLOW, "{} with another first argument", s.name());
                    let mut args = [0; 6];
                    args[0] = u64::from(v);
                    assert_eq!(decide(s.nr(), AUDIT_ARCH_X86_64, args), TRACE, "{}", s.name());
                }
                _ => assert_eq!(got, TRACE, "{}", s.name()),
            }
        }
    }

    #[test]
    fn listing_base_narrows_getdents_and_stops_copies_below_it() {
        let f = build_filter_with(Optional { listing_fd_base: 500, ..Optional::default() });
        let d = |s: Sys, args: [u64; 6]| evaluate(&f, &SeccompData { nr: s.nr(), arch: AUDIT_ARCH_X86_64, ip: 0, args });
        for s in [Sys::getdents64, Sys::getdents, Sys::dup] {
            assert_eq!(d(s, [3, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW, "{}", s.name());
            assert_eq!(d(s, [499, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW, "{}", s.name());
            assert_eq!(d(s, [500, 0, 0, 0, 0, 0]), TRACE, "{}", s.name());
            // The kernel reads an unsigned int: the high half does not count.
            assert_eq!(d(s, [(1 << 32) | 3, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW, "{}", s.name());
        }
        for s in [Sys::dup2, Sys::dup3] {
            assert_eq!(d(s, [600, 3, 0, 0, 0, 0]), TRACE, "{}", s.name());
            assert_eq!(d(s, [600, 700, 0, 0, 0, 0]), SECCOMP_RET_ALLOW, "{}", s.name());
            assert_eq!(d(s, [3, 4, 0, 0, 0, 0]), SECCOMP_RET_ALLOW, "{}", s.name());
        }
        let fcntl = |fd, cmd: u32, min| d(Sys::fcntl, [fd, u64::from(cmd), min, 0, 0, 0]);
        assert_eq!(fcntl(600, F_DUPFD, 0), TRACE);
        assert_eq!(fcntl(600, F_DUPFD_CLOEXEC, 3), TRACE);
        assert_eq!(fcntl(600, F_DUPFD_CLOEXEC, 500), SECCOMP_RET_ALLOW);
        assert_eq!(fcntl(600, libc::F_GETFL as u32, 0), SECCOMP_RET_ALLOW);
        assert_eq!(fcntl(3, F_DUPFD, 0), SECCOMP_RET_ALLOW);
        assert_eq!(d(Sys::pidfd_getfd, [3, 4, 0, 0, 0, 0]), TRACE);
        // Without a base every getdents stops and copies do not.
        assert_eq!(decide(Sys::getdents64.nr(), AUDIT_ARCH_X86_64, [3, 0, 0, 0, 0, 0]), TRACE);
        assert_eq!(decide(Sys::dup2.nr(), AUDIT_ARCH_X86_64, [600, 3, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn the_stat_family_goes_to_the_supervisor() {
        let f = build_filter_with(Optional { user_notif: true, ..Optional::default() });
        for &s in Sys::ALL {
            let got = evaluate(&f, &SeccompData { nr: s.nr(), arch: AUDIT_ARCH_X86_64, ip: 0, args: [0; 6] });
            if s.notified() {
                assert_eq!(got, SECCOMP_RET_USER_NOTIF, "{}", s.name());
            } else {
                assert_eq!(got, decide(s.nr(), AUDIT_ARCH_X86_64, [0; 6]), "{}", s.name());
            }
        }
    }

    /// With the in-process fast path, file and directory opens (the loader's,
    /// opendir's) go to the supervisor as without it.
    #[test]
    fn with_the_fast_path_opens_go_to_the_supervisor() {
        let f = build_filter_with(Optional { user_notif: true, notify_open: true, shim_cookie: 7, ..Optional::default() });
        let d = |flags: i32| {
            let args = [libc::AT_FDCWD as u64, 0, flags as u64, 0, 0, 0];
            evaluate(&f, &SeccompData { nr: Sys::openat.nr(), arch: AUDIT_ARCH_X86_64, ip: 0, args })
        };
        assert_eq!(d(libc::O_RDONLY | libc::O_CLOEXEC), SECCOMP_RET_USER_NOTIF);
        assert_eq!(d(libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC), SECCOMP_RET_USER_NOTIF);
        assert_eq!(d(libc::O_PATH | libc::O_DIRECTORY), TRACE);
    }

    #[test]
    fn opens_that_create_nothing_go_to_the_supervisor() {
        let f = build_filter_with(Optional { user_notif: true, notify_open: true, ..Optional::default() });
        let d = |s: Sys, flags: u64| {
            let mut args = [0u64; 6];
            args[usize::from(s.notified_open().unwrap())] = flags;
            evaluate(&f, &SeccompData { nr: s.nr(), arch: AUDIT_ARCH_X86_64, ip: 0, args })
        };
        for s in [Sys::open, Sys::openat] {
            let (rd, cloexec, dir, path) = (libc::O_RDONLY, libc::O_CLOEXEC, libc::O_DIRECTORY, libc::O_PATH);
            let creat = libc::O_CREAT | libc::O_TRUNC | libc::O_WRONLY;
            for flags in [rd, libc::O_RDWR | cloexec, dir | cloexec, libc::O_NOFOLLOW, libc::O_WRONLY | libc::O_TRUNC, creat, libc::O_TMPFILE | libc::O_RDWR] {
                assert_eq!(d(s, flags as u64), SECCOMP_RET_USER_NOTIF, "{} {flags:#o}", s.name());
            }
            for flags in [path, path | dir, path | libc::O_NOFOLLOW, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY] {
                assert_eq!(d(s, flags as u64), TRACE, "{} {flags:#o}", s.name());
            }
        }
        // openat2 (flags in memory) and creat always stop; without notify_open, opens do,
        // and umask (which the supervisor must follow only for its opens) does not.
        assert_eq!(Sys::openat2.notified_open(), None);
        assert_eq!(Sys::creat.notified_open(), None);
        let umask = SeccompData { nr: Sys::umask.nr(), arch: AUDIT_ARCH_X86_64, ip: 0, args: [0; 6] };
        assert_eq!(evaluate(&f, &umask), TRACE);
        let plain = build_filter_with(Optional { user_notif: true, ..Optional::default() });
        let data = SeccompData { nr: Sys::openat.nr(), arch: AUDIT_ARCH_X86_64, ip: 0, args: [0; 6] };
        assert_eq!(evaluate(&plain, &data), TRACE);
        assert_eq!(evaluate(&plain, &umask), SECCOMP_RET_ALLOW);
        // The calls with one path and an effect on it go to the supervisor too.
        for &s in Sys::ALL.iter().filter(|s| s.notified_effect()) {
            let data = SeccompData { nr: s.nr(), arch: AUDIT_ARCH_X86_64, ip: 0, args: [0; 6] };
            assert_eq!(evaluate(&f, &data), SECCOMP_RET_USER_NOTIF, "{}", s.name());
            assert_eq!(evaluate(&plain, &data), TRACE, "{}", s.name());
            assert!(matches!(s.class(), Class::Paths(&[_])), "{}", s.name());
        }
    }

    #[test]
    fn the_getdents_filter_stops_getdents_only() {
        let f = getdents_filter();
        let d = |nr: u32, arch| evaluate(&f, &SeccompData { nr, arch, ..SeccompData::default() });
        assert_eq!(d(Sys::getdents64.nr(), AUDIT_ARCH_X86_64), TRACE);
        assert_eq!(d(Sys::getdents.nr(), AUDIT_ARCH_X86_64), TRACE);
        assert_eq!(d(Sys::openat.nr(), AUDIT_ARCH_X86_64), SECCOMP_RET_ALLOW);
        // i386 78 is gettimeofday, 217 pivot_root.
        assert_eq!(d(78, AUDIT_ARCH_I386), SECCOMP_RET_ALLOW);
        assert_eq!(d(217, AUDIT_ARCH_I386), SECCOMP_RET_ALLOW);
        assert_eq!(to_bytes(&f).len(), f.len() * 8);
    }

    #[test]
    fn null_out_addresses_do_not_stop() {
        let nr = Sys::recvfrom.nr();
        assert_eq!(decide(nr, AUDIT_ARCH_X86_64, [3, 1, 2, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(decide(nr, AUDIT_ARCH_X86_64, [3, 1, 2, 0, 0x7ffd_0000_1000, 8]), TRACE);
        assert_eq!(decide(nr, AUDIT_ARCH_X86_64, [3, 1, 2, 0, 0x1000, 8]), TRACE);
        assert_eq!(decide(nr, AUDIT_ARCH_X86_64, [3, 1, 2, 0, 0x7ffd_0000_0000, 8]), TRACE);
        assert_eq!(decide(Sys::accept.nr(), AUDIT_ARCH_X86_64, [3, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn untraced_syscalls_are_allowed() {
        let traced: Vec<u32> = Sys::ALL.iter().filter(|s| s.in_filter(Optional::default())).map(|s| s.nr()).collect();
        for nr in 0..500 {
            if !traced.contains(&nr) {
                assert_eq!(decide(nr, AUDIT_ARCH_X86_64, [0; 6]), SECCOMP_RET_ALLOW, "nr {nr}");
            }
        }
    }

    #[test]
    fn namespace_flags_are_refused() {
        let newuser = libc::CLONE_NEWUSER as u64;
        assert_eq!(decide(Sys::unshare.nr(), AUDIT_ARCH_X86_64, [newuser, 0, 0, 0, 0, 0]), errno(libc::EPERM));
        assert_eq!(decide(Sys::clone.nr(), AUDIT_ARCH_X86_64, [newuser | 17, 0, 0, 0, 0, 0]), errno(libc::EPERM));
        // A plain fork-like clone (SIGCHLD as exit signal) passes without a stop.
        assert_eq!(decide(Sys::clone.nr(), AUDIT_ARCH_X86_64, [17, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(decide(Sys::clone.nr(), AUDIT_ARCH_X86_64, [thread, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn i386_and_x32_paths_are_refused() {
        for &nr in I386_REFUSED {
            assert_eq!(decide(nr, AUDIT_ARCH_I386, [0; 6]), errno(libc::ENOSYS), "i386 {nr}");
        }
        assert_eq!(decide(3, AUDIT_ARCH_I386, [0; 6]), SECCOMP_RET_ALLOW); // read
        assert_eq!(decide(257 | X32_SYSCALL_BIT as u32, AUDIT_ARCH_X86_64, [0; 6]), errno(libc::ENOSYS));
        assert_eq!(decide(0, 0x1234, [0; 6]), SECCOMP_RET_KILL_PROCESS);
    }
}
