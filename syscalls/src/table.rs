//! The syscall table: one exhaustive, compile-checked classification of every x86_64
//! syscall ptnix stops for. The same table drives the seccomp filter ([`crate::bpf`])
//! and the tracer's dispatcher, so the two cannot disagree: a syscall the filter traces
//! always has a handler, and a syscall with a handler is always traced.

/// Which symlink-follow rule applies to the last component of a path argument.
/// Components before the last are always followed (that is how the kernel walks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// stat, open without O_NOFOLLOW, chdir, ...
    Always,
    /// lstat, unlink, mkdir, rename, ...: these act on the link itself.
    Never,
    /// Follow unless `(args[arg] & mask) != 0` (AT_SYMLINK_NOFOLLOW, IN_DONT_FOLLOW, ...).
    UnlessFlag { arg: u8, mask: u64 },
    /// Follow only if `(args[arg] & mask) != 0` (AT_SYMLINK_FOLLOW of linkat and
    /// name_to_handle_at).
    IfFlag { arg: u8, mask: u64 },
    /// open(2) flags in `args[arg]`: O_NOFOLLOW, or O_CREAT|O_EXCL ("if pathname is a
    /// symbolic link, open() fails regardless of where it points"), do not follow.
    OpenFlags { arg: u8 },
    /// openat2: the flags live in `struct open_how` at `args[arg]`; the tracer reads it.
    OpenHow { arg: u8 },
}

impl Follow {
    /// Whether the last component is followed, for the rules decided by the syscall's
    /// arguments alone (`arg(i)` is `args[i]`); None for the open flags, which the
    /// caller reads (from a register, or from `struct open_how` in memory).
    pub fn by_args(self, arg: impl Fn(u8) -> u64) -> Option<bool> {
        match self {
            Follow::Always => Some(true),
            Follow::Never => Some(false),
            Follow::UnlessFlag { arg: i, mask } => Some(arg(i) & mask == 0),
            Follow::IfFlag { arg: i, mask } => Some(arg(i) & mask != 0),
            Follow::OpenFlags { .. } | Follow::OpenHow { .. } => None,
        }
    }
}

/// One path argument: `args[path]`, relative to the directory fd `args[dirfd]` if any,
/// otherwise to the cwd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathArg {
    pub dirfd: Option<u8>,
    pub path: u8,
    pub follow: Follow,
    /// The syscall creates or removes the last component (mkdir, unlink, rename, ...):
    /// a final `.` or `..` must reach the kernel literally, so that it returns the
    /// error it returns natively (EINVAL, ENOTEMPTY, EEXIST, EBUSY) instead of acting
    /// on the resolved directory. open(O_CREAT) is not one of them: on `x/..` it fails
    /// with EISDIR either way, and a lookup of `/nix/..` must reach the guest `/`.
    pub names_entry: bool,
}

/// How ptnix handles a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Translate the path arguments at entry; no exit stop.
    Paths(&'static [PathArg]),
    /// execve/execveat: translate the program path (always followed, except
    /// execveat's AT_SYMLINK_NOFOLLOW).
    Exec(PathArg),
    /// readlink/readlinkat: translate the path; a `/proc` magic link (exe, cwd, fd/N)
    /// is answered by the tracer with the guest path, without entering the kernel.
    Readlink { dirfd: Option<u8>, path: u8, buf: u8, size: u8 },
    /// getcwd: the host path the kernel writes is rewritten at the exit stop.
    Getcwd,
    /// getdents64/getdents(fd, buf, count): a listing of a bind's parent directory
    /// gets the bind's entry (see `dirent`). With a listing base (see
    /// [`Optional::listing_fd_base`]) the filter stops only descriptors at or above it.
    Getdents(crate::dirent::Format),
    /// dup, dup2/dup3, fcntl(F_DUPFD/F_DUPFD_CLOEXEC): a copy of a descriptor at or
    /// above the listing base to a number below it. Stopped only while there is a
    /// listing base, and then only for such copies (checked in BPF).
    FdCopy(FdCopy),
    /// pidfd_getfd: another process's descriptor, at this one's lowest free number.
    /// Stopped only while there is a listing base.
    FdFetch,
    /// bind/connect/sendto: a `sockaddr_un` path going in.
    SockaddrIn { addr: u8, len: u8, follow: bool },
    /// getsockname/getpeername/accept/recvfrom: a `sockaddr_un` coming out (exit
    /// stop). The filter stops only when the address pointer is not NULL.
    SockaddrOut { addr: u8, len_ptr: u8 },
    /// clone3: namespace flags live in memory (`struct clone_args`), so the tracer
    /// checks them; clone and unshare are checked in BPF.
    Clone3,
    /// Refused with this errno by the filter itself, without a stop. These would let a
    /// tracee change what `/` means (chroot, mount, namespaces), after which ptnix's
    /// view of paths would be wrong (unprivileged users get EPERM natively anyway), or
    /// reach paths without a syscall (io_uring).
    Deny(i32),
    /// Allowed unless `(args[arg] & mask) != 0`, then refused with EPERM (clone and
    /// unshare with namespace flags). Checked in BPF.
    DenyIfFlag { arg: u8, mask: u64 },
    /// getuid and friends: answered with 0 under `proot -0` (fake root), else not
    /// traced at all. `triple`: getres[ug]id, which write three ids through pointers.
    IdQuery { triple: bool },
    /// umask: stopped only while opens go to the notification supervisor, which
    /// creates files with the tracee's umask and must learn of a new one (at the
    /// exit stop).
    Umask,
    /// uname: the release field is rewritten under `proot -k RELEASE`, else not traced.
    Uname,
    /// sched_getaffinity/sched_setaffinity(tid, len, mask): traced while ptnix moves
    /// tracees between CPUs, so that each sees and sets its own mask (`placement`).
    Affinity { set: bool },
    /// seccomp(2), and prctl(2) when its first argument is `arg0` (PR_SET_SECCOMP):
    /// the tracee installs a filter of its own, whose SECCOMP_RET_TRACE must then
    /// behave as it does without a tracer (ENOSYS), not reach ptnix as a stop.
    OwnFilter { arg0: Option<u32> },
    /// landlock_restrict_self: the caller's new domain refuses it ptrace access to
    /// processes outside it, `PTRACE_MODE_READ` included (Documentation/userspace-api/
    /// landlock.rst: "a sandboxed process ... cannot ... ptrace ... processes outside
    /// its domain"), so neither it nor its descendants can open ptnix's in-process
    /// object by `/proc/PTNIX/fd/N`: traced while there is such an object.
    Landlock,
}

/// The three ways to copy a descriptor, by where the new number comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdCopy {
    /// dup(old): the lowest free number.
    Dup,
    /// dup2(old, new), dup3(old, new, flags): the number `new`.
    To,
    /// fcntl(old, F_DUPFD or F_DUPFD_CLOEXEC, min): the lowest free number >= min.
    Fcntl,
}

/// fcntl(2) commands that copy a descriptor (asm-generic/fcntl.h: F_DUPFD is 0,
/// F_DUPFD_CLOEXEC is F_LINUX_SPECIFIC_BASE + 6 = 1030).
pub const F_DUPFD: u32 = 0;
pub const F_DUPFD_CLOEXEC: u32 = 1030;

/// Syscalls traced only when a launcher option asks for them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Optional {
    /// `-0`: id queries say root.
    pub fake_root: bool,
    /// `-k RELEASE`: uname reports this kernel release.
    pub uname: bool,
    /// ptnix moves tracees between CPUs: affinity calls are answered with their own.
    pub placement: bool,
    /// Not 0: descriptors of directories whose listing ptnix changes are kept at or
    /// above this number, so the filter stops getdents only there (0: every getdents
    /// stops). See the tracer's `listingfd`.
    pub listing_fd_base: u32,
    /// The stat family goes to ptnix's seccomp user-notification supervisor instead
    /// of stopping the tracee (see [`Sys::notified`] and the tracer's `notif`).
    pub user_notif: bool,
    /// Opens that create nothing go to the supervisor too (see
    /// [`Sys::notified_open`]; Linux 5.14, which can answer with a descriptor).
    pub notify_open: bool,
    /// Not 0: syscalls made from the in-process fast path's gadget
    /// ([`crate::bpf::GADGET_ADDR`]) with this value in their sixth argument register
    /// run without a stop (see the tracer's `shim`).
    pub shim_cookie: u64,
}

const fn p(dirfd: Option<u8>, path: u8, follow: Follow, names_entry: bool) -> PathArg {
    PathArg { dirfd, path, follow, names_entry }
}
const FOLLOW: Follow = Follow::Always;
const NOFOLLOW: Follow = Follow::Never;
const AT_SYMLINK_NOFOLLOW: u64 = libc::AT_SYMLINK_NOFOLLOW as u64;
const AT_SYMLINK_FOLLOW: u64 = libc::AT_SYMLINK_FOLLOW as u64;
const fn unless_nofollow(arg: u8) -> Follow {
    Follow::UnlessFlag { arg, mask: AT_SYMLINK_NOFOLLOW }
}

/// Namespace-creating clone flags. CLONE_NEWUSER is the one an unprivileged process
/// can use; the others need it (or root). Nix's sandbox probes these and, refused,
/// builds without a sandbox.
pub const CLONE_NS_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;
/// unshare(2) also takes CLONE_NEWTIME (0x80); in clone(2) that bit belongs to the
/// exit-signal byte, so it is only checked for unshare.
pub const UNSHARE_NS_FLAGS: u64 = CLONE_NS_FLAGS | 0x80;

macro_rules! syscalls {
    ($($name:ident = $nr:literal => $class:expr;)*) => {
        /// Every x86_64 syscall ptnix handles specially.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Sys { $($name),* }

        impl Sys {
            pub const ALL: &'static [Sys] = &[$(Sys::$name),*];

            /// The x86_64 syscall number.
            pub const fn nr(self) -> u32 {
                match self { $(Sys::$name => $nr),* }
            }

            pub const fn name(self) -> &'static str {
                match self { $(Sys::$name => stringify!($name)),* }
            }

            pub const fn class(self) -> Class {
                match self { $(Sys::$name => const { $class }),* }
            }

            /// Looks up an x86_64 syscall number.
            pub fn from_nr(nr: u64) -> Option<Sys> {
                match nr { $($nr => Some(Sys::$name),)* _ => None }
            }
        }
    };
}

use Class::*;

syscalls! {
    // --- the stat family ---
    stat = 4 => Paths(&[p(None, 0, FOLLOW, false)]);
    lstat = 6 => Paths(&[p(None, 0, NOFOLLOW, false)]);
    newfstatat = 262 => Paths(&[p(Some(0), 1, unless_nofollow(3), false)]);
    statx = 332 => Paths(&[p(Some(0), 1, unless_nofollow(2), false)]);
    statfs = 137 => Paths(&[p(None, 0, FOLLOW, false)]);
    // --- access ---
    access = 21 => Paths(&[p(None, 0, FOLLOW, false)]);
    faccessat = 269 => Paths(&[p(Some(0), 1, FOLLOW, false)]);
    faccessat2 = 439 => Paths(&[p(Some(0), 1, unless_nofollow(3), false)]);
    // --- open ---
    open = 2 => Paths(&[p(None, 0, Follow::OpenFlags { arg: 1 }, false)]);
    creat = 85 => Paths(&[p(None, 0, FOLLOW, false)]);
    openat = 257 => Paths(&[p(Some(0), 1, Follow::OpenFlags { arg: 2 }, false)]);
    openat2 = 437 => Paths(&[p(Some(0), 1, Follow::OpenHow { arg: 2 }, false)]);
    open_tree = 428 => Paths(&[p(Some(0), 1, unless_nofollow(2), false)]);
    open_tree_attr = 467 => Paths(&[p(Some(0), 1, unless_nofollow(2), false)]);
    name_to_handle_at = 303 => Paths(&[p(Some(0), 1, Follow::IfFlag { arg: 4, mask: AT_SYMLINK_FOLLOW }, false)]);
    // --- create and remove names ---
    mkdir = 83 => Paths(&[p(None, 0, NOFOLLOW, true)]);
    mkdirat = 258 => Paths(&[p(Some(0), 1, NOFOLLOW, true)]);
    mknod = 133 => Paths(&[p(None, 0, NOFOLLOW, true)]);
    mknodat = 259 => Paths(&[p(Some(0), 1, NOFOLLOW, true)]);
    rmdir = 84 => Paths(&[p(None, 0, NOFOLLOW, true)]);
    unlink = 87 => Paths(&[p(None, 0, NOFOLLOW, true)]);
    unlinkat = 263 => Paths(&[p(Some(0), 1, NOFOLLOW, true)]);
    rename = 82 => Paths(&[p(None, 0, NOFOLLOW, true), p(None, 1, NOFOLLOW, true)]);
    renameat = 264 => Paths(&[p(Some(0), 1, NOFOLLOW, true), p(Some(2), 3, NOFOLLOW, true)]);
    renameat2 = 316 => Paths(&[p(Some(0), 1, NOFOLLOW, true), p(Some(2), 3, NOFOLLOW, true)]);
    // link(2): "Linux does not dereference oldpath if it is a symbolic link".
    link = 86 => Paths(&[p(None, 0, NOFOLLOW, true), p(None, 1, NOFOLLOW, true)]);
    linkat = 265 => Paths(&[
        p(Some(0), 1, Follow::IfFlag { arg: 4, mask: AT_SYMLINK_FOLLOW }, true),
        p(Some(2), 3, NOFOLLOW, true),
    ]);
    // The target of a symlink is its content, stored as given: only the new name is a path.
    symlink = 88 => Paths(&[p(None, 1, NOFOLLOW, true)]);
    symlinkat = 266 => Paths(&[p(Some(1), 2, NOFOLLOW, true)]);
    // --- attributes ---
    chmod = 90 => Paths(&[p(None, 0, FOLLOW, false)]);
    fchmodat = 268 => Paths(&[p(Some(0), 1, FOLLOW, false)]);
    fchmodat2 = 452 => Paths(&[p(Some(0), 1, unless_nofollow(3), false)]);
    chown = 92 => Paths(&[p(None, 0, FOLLOW, false)]);
    lchown = 94 => Paths(&[p(None, 0, NOFOLLOW, false)]);
    fchownat = 260 => Paths(&[p(Some(0), 1, unless_nofollow(4), false)]);
    utime = 132 => Paths(&[p(None, 0, FOLLOW, false)]);
    utimes = 235 => Paths(&[p(None, 0, FOLLOW, false)]);
    futimesat = 261 => Paths(&[p(Some(0), 1, FOLLOW, false)]);
    // utimensat(fd, NULL, ...) acts on fd: a NULL path is left alone (see resolve).
    utimensat = 280 => Paths(&[p(Some(0), 1, unless_nofollow(3), false)]);
    truncate = 76 => Paths(&[p(None, 0, FOLLOW, false)]);
    // --- extended attributes ---
    setxattr = 188 => Paths(&[p(None, 0, FOLLOW, false)]);
    lsetxattr = 189 => Paths(&[p(None, 0, NOFOLLOW, false)]);
    getxattr = 191 => Paths(&[p(None, 0, FOLLOW, false)]);
    lgetxattr = 192 => Paths(&[p(None, 0, NOFOLLOW, false)]);
    listxattr = 194 => Paths(&[p(None, 0, FOLLOW, false)]);
    llistxattr = 195 => Paths(&[p(None, 0, NOFOLLOW, false)]);
    removexattr = 197 => Paths(&[p(None, 0, FOLLOW, false)]);
    lremovexattr = 198 => Paths(&[p(None, 0, NOFOLLOW, false)]);
    setxattrat = 463 => Paths(&[p(Some(0), 1, unless_nofollow(2), false)]);
    getxattrat = 464 => Paths(&[p(Some(0), 1, unless_nofollow(2), false)]);
    listxattrat = 465 => Paths(&[p(Some(0), 1, unless_nofollow(2), false)]);
    removexattrat = 466 => Paths(&[p(Some(0), 1, unless_nofollow(2), false)]);
    file_getattr = 468 => Paths(&[p(Some(0), 1, unless_nofollow(4), false)]);
    file_setattr = 469 => Paths(&[p(Some(0), 1, unless_nofollow(4), false)]);
    // --- directories, watches, misc ---
    chdir = 80 => Paths(&[p(None, 0, FOLLOW, false)]);
    inotify_add_watch = 254 => Paths(&[p(None, 1, Follow::UnlessFlag { arg: 2, mask: 0x0200_0000 }, false)]);
    // FAN_MARK_DONT_FOLLOW = 0x04; fanotify_mark(fd, flags, mask, dirfd, path)
    fanotify_mark = 301 => Paths(&[p(Some(3), 4, Follow::UnlessFlag { arg: 1, mask: 0x04 }, false)]);
    uselib = 134 => Paths(&[p(None, 0, FOLLOW, false)]);
    acct = 163 => Paths(&[p(None, 0, FOLLOW, false)]);
    quotactl = 179 => Paths(&[p(None, 1, FOLLOW, false)]);
    // --- exec ---
    execve = 59 => Exec(p(None, 0, FOLLOW, false));
    execveat = 322 => Exec(p(Some(0), 1, unless_nofollow(4), false));
    // --- paths coming back out ---
    readlink = 89 => Readlink { dirfd: None, path: 0, buf: 1, size: 2 };
    readlinkat = 267 => Readlink { dirfd: Some(0), path: 1, buf: 2, size: 3 };
    getcwd = 79 => Getcwd;
    getdents64 = 217 => Getdents(crate::dirent::Format::Dirent64);
    getdents = 78 => Getdents(crate::dirent::Format::Dirent);
    dup = 32 => FdCopy(FdCopy::Dup);
    dup2 = 33 => FdCopy(FdCopy::To);
    dup3 = 292 => FdCopy(FdCopy::To);
    fcntl = 72 => FdCopy(FdCopy::Fcntl);
    pidfd_getfd = 438 => FdFetch;
    // --- unix sockets ---
    bind = 49 => SockaddrIn { addr: 1, len: 2, follow: false };
    connect = 42 => SockaddrIn { addr: 1, len: 2, follow: true };
    sendto = 44 => SockaddrIn { addr: 4, len: 5, follow: true };
    getsockname = 51 => SockaddrOut { addr: 1, len_ptr: 2 };
    getpeername = 52 => SockaddrOut { addr: 1, len_ptr: 2 };
    accept = 43 => SockaddrOut { addr: 1, len_ptr: 2 };
    accept4 = 288 => SockaddrOut { addr: 1, len_ptr: 2 };
    // The sender of a datagram; recv() is recvfrom(.., NULL, NULL) and never stops.
    recvfrom = 45 => SockaddrOut { addr: 4, len_ptr: 5 };
    // --- changes of root or namespace: refused, see Class::Deny ---
    chroot = 161 => Deny(libc::EPERM);
    pivot_root = 155 => Deny(libc::EPERM);
    mount = 165 => Deny(libc::EPERM);
    umount2 = 166 => Deny(libc::EPERM);
    swapon = 167 => Deny(libc::EPERM);
    swapoff = 168 => Deny(libc::EPERM);
    move_mount = 429 => Deny(libc::EPERM);
    fsopen = 430 => Deny(libc::EPERM);
    fsconfig = 431 => Deny(libc::EPERM);
    fsmount = 432 => Deny(libc::EPERM);
    fspick = 433 => Deny(libc::EPERM);
    mount_setattr = 442 => Deny(libc::EPERM);
    setns = 308 => Deny(libc::EPERM);
    // An io_uring's operations (IORING_OP_OPENAT, STATX, RENAMEAT, ...) take paths
    // that never pass through seccomp or ptrace: no ring, as on a kernel built
    // without io_uring (programs fall back to plain syscalls).
    io_uring_setup = 425 => Deny(libc::ENOSYS);
    unshare = 272 => DenyIfFlag { arg: 0, mask: UNSHARE_NS_FLAGS };
    clone = 56 => DenyIfFlag { arg: 0, mask: CLONE_NS_FLAGS };
    clone3 = 435 => Clone3;
    // --- launcher options (proot -0, -k) ---
    getuid = 102 => IdQuery { triple: false };
    getgid = 104 => IdQuery { triple: false };
    geteuid = 107 => IdQuery { triple: false };
    getegid = 108 => IdQuery { triple: false };
    getresuid = 118 => IdQuery { triple: true };
    getresgid = 120 => IdQuery { triple: true };
    uname = 63 => Uname;
    // --- CPU placement (see Class::Affinity) ---
    sched_setaffinity = 203 => Affinity { set: true };
    sched_getaffinity = 204 => Affinity { set: false };
    // --- the umask of created files (see Class::Umask) ---
    umask = 95 => Umask;
    // --- filters of the tracee's own (see Class::OwnFilter) ---
    seccomp = 317 => OwnFilter { arg0: None };
    prctl = 157 => OwnFilter { arg0: Some(libc::PR_SET_SECCOMP as u32) };
    // --- a Landlock domain of the tracee's own (see Class::Landlock) ---
    landlock_restrict_self = 446 => Landlock;
}

impl Sys {
    /// The syscalls a seccomp user-notification supervisor answers when there is one:
    /// queries whose only effect is what they write into the caller's buffer (a
    /// `struct stat`/`statx`, an xattr's value, a list of names) or their return
    /// value, so that ptnix can run them itself on the translated path (or let the
    /// kernel run them when nothing needs translating).
    pub const fn notified(self) -> bool {
        matches!(
            self,
            Sys::stat
                | Sys::lstat
                | Sys::newfstatat
                | Sys::statx
                | Sys::access
                | Sys::faccessat
                | Sys::faccessat2
                | Sys::getxattr
                | Sys::lgetxattr
                | Sys::listxattr
                | Sys::llistxattr
        )
    }

    /// readlink and readlinkat, which the supervisor answers when
    /// [`Optional::notify_open`] is on: like the stat family's, their only effect is
    /// what they write into the caller's buffer. Only with it, since `exe` links need
    /// the tracer, which the supervisor then hands the call over to: another
    /// process's, where an exec may be in progress that only the tracer knows of
    /// (`exec::exe_redirect`), and a program's own where ptnix started it through its
    /// loader (the tracer's stop puts AT_EXECFN back, `auxv::settle_execfn`).
    pub const fn notified_link(self) -> bool {
        matches!(self, Sys::readlink | Sys::readlinkat)
    }

    /// Opens the supervisor answers when [`Optional::notify_open`] is on, as the
    /// flags argument: their only effects are the file they may create (with the
    /// tracee's credentials and umask, which the supervisor takes on) and the
    /// descriptor they return, which the supervisor installs in the tracee
    /// (SECCOMP_IOCTL_NOTIF_ADDFD). Not with O_PATH, whose descriptors ADDFD refuses,
    /// nor with O_EXCL, which must not run twice (see [`Sys::notified_effect`]):
    /// `bpf::OPEN_STOPS`; those stop the tracee as before.
    pub const fn notified_open(self) -> Option<u8> {
        match self.class() {
            Class::Paths(&[PathArg { follow: Follow::OpenFlags { arg }, .. }]) => Some(arg),
            _ => None,
        }
    }

    /// Calls whose only effect is on the file their one path names, made with the
    /// caller's credentials, which the supervisor makes itself on the translated
    /// path when [`Optional::notify_open`] is on. Only calls that may run twice: a
    /// signal can cut the caller's wait after the supervisor has made the call, and
    /// the call is then restarted (mkdir, rmdir and unlink would fail the second
    /// time). Not truncate either: RLIMIT_FSIZE is the caller's (SIGXFSZ). Not
    /// utime/utimes/futimesat, rare; not the calls with two paths.
    pub const fn notified_effect(self) -> bool {
        matches!(
            self,
            Sys::chmod | Sys::fchmodat | Sys::fchmodat2 | Sys::chown | Sys::lchown | Sys::fchownat | Sys::utimensat
        )
    }

    /// Whether the supervisor gets this call: the stat family, and with `opens`
    /// ([`Optional::notify_open`]) the opens and the calls with an effect. (Which
    /// opens, the filter decides from their flags.)
    pub const fn notified_with(self, opens: bool) -> bool {
        self.notified() || (opens && (self.notified_open().is_some() || self.notified_effect() || self.notified_link()))
    }

    /// True when the filter must stop the tracee for this syscall (the rest are
    /// decided inside BPF).
    pub const fn traced(self) -> bool {
        !matches!(
            self.class(),
            Class::Deny(_) | Class::DenyIfFlag { .. } | Class::IdQuery { .. } | Class::Uname | Class::Affinity { .. }
        )
    }

    /// Whether the filter stops this syscall when these launcher options are on.
    pub const fn in_filter(self, opt: Optional) -> bool {
        match self.class() {
            Class::IdQuery { .. } => opt.fake_root,
            Class::Uname => opt.uname,
            Class::Affinity { .. } => opt.placement,
            Class::FdCopy(_) | Class::FdFetch => opt.listing_fd_base != 0,
            Class::Umask => opt.user_notif && opt.notify_open,
            Class::Landlock => opt.shim_cookie != 0,
            _ => true,
        }
    }
}

/// i386 (int 0x80) syscalls that take or return a path, from arch/x86/entry/syscalls/
/// syscall_32.tbl. ptnix does not translate the 32-bit ABI: these are refused with
/// ENOSYS so that a 32-bit path never reaches the kernel untranslated. `socketcall`
/// (102) multiplexes bind/connect, so it is refused too, and so is io_uring.
pub const I386_REFUSED: &[u32] = &[
    5, 8, 9, 10, 11, 12, 14, 15, 16, 18, 21, 22, 30, 33, 38, 39, 40, 51, 52, 61, 83, 84, 85,
    86, 87, 92, 99, 102, 106, 107, 115, 120, 131, 182, 183, 193, 195, 196, 198, 212, 217, 226,
    227, 229, 230, 232, 233, 235, 236, 268, 271, 292, 295, 296, 297, 298, 299, 300, 301, 302,
    303, 304, 305, 306, 307, 310, 320, 339, 341, 346, 353, 358, 361, 362, 364, 367, 368, 369,
    370, 371, 383, 412, 428, 429, 430, 431, 432, 433, 435, 437, 439, 442, 452, 463, 464, 465,
    466, 467, 468, 469,
    // io_uring_setup, io_uring_enter, io_uring_register: see the x86_64 entry.
    425, 426, 427,
];

/// x32 syscalls carry this bit in their number; ptnix refuses them all with ENOSYS.
pub const X32_SYSCALL_BIT: u64 = 0x4000_0000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &s in Sys::ALL {
            assert!(seen.insert(s.nr()), "duplicate nr {}", s.nr());
            assert_eq!(Sys::from_nr(u64::from(s.nr())), Some(s));
        }
    }

    #[test]
    fn numbers_match_libc() {
        assert_eq!(Sys::openat.nr() as i64, libc::SYS_openat);
        assert_eq!(Sys::newfstatat.nr() as i64, libc::SYS_newfstatat);
        assert_eq!(Sys::statx.nr() as i64, libc::SYS_statx);
        assert_eq!(Sys::execveat.nr() as i64, libc::SYS_execveat);
        assert_eq!(Sys::renameat2.nr() as i64, libc::SYS_renameat2);
        assert_eq!(Sys::openat2.nr() as i64, libc::SYS_openat2);
        assert_eq!(Sys::faccessat2.nr() as i64, libc::SYS_faccessat2);
        assert_eq!(Sys::clone3.nr() as i64, libc::SYS_clone3);
        assert_eq!(Sys::getcwd.nr() as i64, libc::SYS_getcwd);
        assert_eq!(Sys::accept4.nr() as i64, libc::SYS_accept4);
        assert_eq!(Sys::fanotify_mark.nr() as i64, libc::SYS_fanotify_mark);
        assert_eq!(Sys::inotify_add_watch.nr() as i64, libc::SYS_inotify_add_watch);
        assert_eq!(Sys::readlinkat.nr() as i64, libc::SYS_readlinkat);
        assert_eq!(Sys::symlinkat.nr() as i64, libc::SYS_symlinkat);
        assert_eq!(Sys::setns.nr() as i64, libc::SYS_setns);
        assert_eq!(Sys::dup3.nr() as i64, libc::SYS_dup3);
        assert_eq!(Sys::io_uring_setup.nr() as i64, libc::SYS_io_uring_setup);
        assert_eq!(Sys::pidfd_getfd.nr() as i64, libc::SYS_pidfd_getfd);
        assert_eq!(F_DUPFD_CLOEXEC as i32, libc::F_DUPFD_CLOEXEC);
    }

    /// Cross-checks every number against the kernel headers when they are installed
    /// (linux-libc-dev; CI has them, since gcc pulls them in).
    #[test]
    fn numbers_match_kernel_headers() {
        let Ok(h) = std::fs::read_to_string("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
        else {
            assert!(std::env::var_os("CI").is_none(), "kernel headers missing under CI");
            return;
        };
        for &s in Sys::ALL {
            let needle = format!("#define __NR_{} ", s.name());
            if let Some(line) = h.lines().find(|l| l.starts_with(&needle)) {
                let nr: u32 = line[needle.len()..].trim().parse().unwrap();
                assert_eq!(nr, s.nr(), "{}", s.name());
            }
        }
    }
}
