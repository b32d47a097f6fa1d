/* ptnix's in-process fast path for the stat family and opens of store paths.
 *
 * Preloaded into dynamically linked programs (see the tracer's `shim.rs`), or, where
 * ptnix starts a program through glibc's loader, that loader's auditor, which binds
 * the program's calls to it (la_objopen). It defines the libc entry points below, so
 * the program's own calls of them land here:
 * - a path ptnix would translate by prefix alone (absolute, under /nix/store, or
 *   under /nix where all of it maps by prefix, or a host path it leaves as it is,
 *   see host_path; no "." or ".." or empty name, no trailing slash) whose
 *   directory part holds no
 *   symlink (openat2 RESOLVE_NO_SYMLINKS on the canonical host store says so) is
 *   translated here, and the call is made on the host path from the gadget, a
 *   `syscall` instruction on a page at a fixed address, with ptnix's cookie in its
 *   sixth argument register, which none of these calls uses: ptnix's filter lets
 *   exactly such calls through, without a stop or a notification;
 * - a lone name (no slash) that ptnix would leave as it is (see plain_lone) is made
 *   as it is, from the gadget too;
 * - anything else (a symlink met, another relative path, a host path, an error of the
 *   directory's lookup) is made as a plain syscall, which the filter stops or
 *   notifies as it would libc's: ptnix translates it.
 * The last name is never followed here: a call that follows it and finds a symlink
 * goes the slow way too (its target may be an absolute /nix path).
 *
 * No libc: it must load into any program whatever its libc's version. It uses only
 * `__errno_location`, `environ` and `fdopendir`, which glibc and musl both export
 * (all weak; the auditor's copy looks the first and last up in the program's libc),
 * and looks whether `gnu_get_libc_version` is there.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

/* Our own definitions, not libc's headers: this file defines functions those
 * headers declare with other types, and the values are the x86_64 kernel ABI. */
#define SYS_close 3
#define SYS_fstat 5
#define SYS_rename 82
#define SYS_mkdir 83
#define SYS_rmdir 84
#define SYS_unlink 87
#define SYS_symlink 88
#define SYS_readlink 89
#define SYS_chmod 90
#define SYS_lchown 94
#define SYS_utimensat 280
#define SYS_mkdirat 258
#define SYS_fchownat 260
#define SYS_unlinkat 263
#define SYS_renameat 264
#define SYS_symlinkat 266
#define SYS_fchmodat 268
#define SYS_mmap 9
#define SYS_mprotect 10
#define SYS_munmap 11
#define SYS_access 21
#define SYS_getxattr 191
#define SYS_lgetxattr 192
#define SYS_listxattr 194
#define SYS_llistxattr 195
#define SYS_openat 257
#define SYS_newfstatat 262
#define SYS_readlinkat 267
#define SYS_faccessat 269
#define SYS_statx 332
#define SYS_openat2 437
#define SYS_dup3 292
#define AT_FDCWD (-100)
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_REMOVEDIR 0x200
#define AT_NO_AUTOMOUNT 0x800
#define AT_EMPTY_PATH 0x1000
#define AT_STATX_SYNC_TYPE 0x6000
#define O_CREAT 0100
#define O_NONBLOCK 04000
#define O_DIRECTORY 0200000
#define O_NOFOLLOW 0400000
#define O_CLOEXEC 02000000
#define O_PATH 010000000
#define O_TMPFILE_BIT 020000000
/* The kernel's VALID_OPEN_FLAGS (include/linux/fcntl.h), which openat2 checks. */
#define VALID_OPEN_FLAGS (03 | 0100 | 0200 | 0400 | 01000 | 02000 | 04000 | 010000 | 020000 | 040000 | \
                          0100000 | 0200000 | 0400000 | 01000000 | 02000000 | 04000000 | 010000000 | 020000000)
#define RESOLVE_NO_SYMLINKS 0x04
#define STATX_TYPE 1
#define S_IFMT 0170000
#define S_IFLNK 0120000
#define S_ISLNK(m) (((m) & S_IFMT) == S_IFLNK)
#define ELOOP 40
#define EPERM 1
#define E2BIG 7
#define ENOSYS 38
#define ENOENT 2
#define ENOTDIR 20
#define EMFILE 24
#define ENFILE 23
#define EINVAL 22
#define EBADF 9
#define EACCES 13

struct open_how {
    uint64_t flags, mode, resolve;
};

/* The kernel's struct stat for x86_64 (newfstatat), which glibc's and musl's are:
 * only st_mode (at offset 24) is looked at. */
/* 144 bytes. */
struct stat {
    uint64_t st_dev, st_ino, st_nlink;
    uint32_t st_mode, st_uid, st_gid, pad0;
    uint64_t rest[13];
};

/* Must match ptnix_syscalls::bpf::GADGET_ADDR. */
#define GADGET_ADDR 0x200000000UL
#define PATH_MAX_ 4096
#define STORE "/nix/store"
#define STORE_LEN 10

/* Weak: a dynamically linked program without libc (Go's -buildmode=pie) has
 * neither, and must still start; the object then stays off. */
extern int *__errno_location(void) __attribute__((weak));
extern char **environ __attribute__((weak));

/* The copy that is the loader's auditor (see la_objopen) lives in a namespace without
 * libc, where those are 0: it looks up the program's libc's own instead. */
static int *(*libc_errno)(void);
static void *(*libc_fdopendir)(int);
/* That libc's link map (its cookie, see la_objopen). */
static uintptr_t libc_map;

/* The calling thread's errno, or 0 where there is no libc to have one. */
static int *errno_loc(void)
{
    if (__errno_location)
        return __errno_location();
    return libc_errno ? libc_errno() : 0;
}

/* The canonical host directory /nix/store stands for (in the configuration slot),
 * ptnix's cookie, and whether the fast path is on (ptnix configured it). */
static const char *host_store;
static size_t host_store_len;
/* All of /nix maps by prefix alone (config flags): its host directory is host_store
 * without its last "/store". Where the walk without openat2 starts: that directory,
 * else the host store (each canonical, as ptnix resolved it at start). */
static int plain_nix;
static size_t walk_root_len;
/* Host paths ptnix leaves as they are (config flags): the root is the host's own,
 * and `cfg()->prefixes` lists the paths below and above which that does not hold
 * (see host_path). */
static int host_paths;
/* EACCES is an answer (config flags): ptnix runs without root and capabilities, so it
 * can search no directory the program cannot (see unreachable). */
static int eacces_final;
static long cookie;
static int enabled;

static long raw6(long nr, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

/* A call already translated, made from the gadget (`syscall; ret` at GADGET_ADDR)
 * with the cookie in r9: ptnix's filter lets exactly such calls through. The cookie
 * goes into r9 here and is wiped after, so that it lingers in no register. */
static long fast6(long nr, long a, long b, long c, long d, long e)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    long ret;
    __asm__ volatile("mov %[ck], %%r9\n\t"
                     "call *%[g]\n\t"
                     "xor %%r9d, %%r9d"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
                       [g] "r"(GADGET_ADDR), [ck] "m"(cookie)
                     : "rcx", "r9", "r11", "memory");
    return ret;
}

static long ret_errno(long r)
{
    int *e;
    if (r < 0 && r > -4096 && (e = errno_loc())) {
        *e = (int)-r;
        return -1;
    }
    return r;
}

#define SLOW(nr, a, b, c, d) ret_errno(raw6((nr), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0))

static size_t slen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

/* Whether to make calls of its own: ptnix clears the word after the gadget when the
 * process installs a seccomp filter of its own, which may not allow them (openat2,
 * or newfstatat where an old libc made fstat). */
static int on(void)
{
    return enabled && *(volatile long *)(GADGET_ADDR + 8);
}

static int xver(int ver);
static void close_fd(int fd);
static int lone_name(const char *p);
static int plain_lone(int dirfd, const char *p, int follow);

static int starts(const char *s, const char *prefix, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != prefix[i])
            return 0;
    return 1;
}

static int host_path(const char *p);

/* A translatable path: `STORE/` (or, where all of /nix maps by prefix, `/nix/`) then
 * names, none empty, "." or "..", no trailing slash; or such a host path that ptnix
 * leaves as it is (host_path), which is its own host path. Writes the host path into
 * `out` and the offset of its last slash. */
static int translate(const char *p, char *out, size_t *last_slash)
{
    if (!p || !on())
        return 0;
    size_t guest_len, root_len;
    if (starts(p, STORE "/", STORE_LEN + 1))
        guest_len = STORE_LEN, root_len = host_store_len;
    else if (plain_nix && starts(p, "/nix/", 5))
        guest_len = 4, root_len = walk_root_len;
    else if (host_path(p))
        guest_len = 0, root_len = 0;
    else
        return 0;
    const char *rest = p + guest_len; /* "/name/..." */
    size_t n = 0, slash = 0;
    while (rest[n]) {
        if (rest[n] == '/') {
            const char *c = rest + n + 1;
            if (c[0] == 0 || c[0] == '/')
                return 0;
            if (c[0] == '.' && (c[1] == 0 || c[1] == '/'))
                return 0;
            if (c[0] == '.' && c[1] == '.' && (c[2] == 0 || c[2] == '/'))
                return 0;
            slash = n;
        }
        n++;
    }
    /* Too long as the guest path (ENAMETOOLONG from ptnix) or as the host one. */
    if (guest_len + n + 1 > PATH_MAX_ || root_len + n + 1 > PATH_MAX_)
        return 0;
    for (size_t i = 0; i < root_len; i++)
        out[i] = host_store[i];
    for (size_t i = 0; i <= n; i++)
        out[root_len + i] = rest[i];
    *last_slash = root_len + slash;
    return 1;
}

/* openat2 (Linux 5.6) is not there: ENOSYS from an older kernel, EPERM from a
 * container policy older than it (Docker's before 20.10). Set at the first such
 * answer to an O_PATH open of a directory, which has no EPERM of its own (or by
 * ptnix, for its tests: config flags). Directories are then walked name by name
 * (walk_dir), and the loader's library search is left to the loader. */
static int no_openat2;

static int openat2_missing(long r)
{
    if (r == -ENOSYS || r == -EPERM)
        no_openat2 = 1;
    return no_openat2;
}

/* The host path's directory opened name by name from the host store (canonical:
 * ptnix resolved it at start, and like ptnix's own translation the walk trusts the
 * directories above it), each name with O_PATH|O_DIRECTORY|O_NOFOLLOW, which fails
 * with ENOTDIR on a symlink: the walk succeeds exactly where openat2's
 * RESOLVE_NO_SYMLINKS would. One descriptor at a time is open, and the last one is
 * returned; else the failing open's -errno (see unreachable). */
static int walk_dir(char *host, size_t last_slash)
{
    /* A host path of host_path's: nothing to walk from (see host_path). */
    if (!starts(host, host_store, walk_root_len) || host[walk_root_len] != '/')
        return -ELOOP;
    host[walk_root_len] = 0;
    long fd = fast6(SYS_openat, AT_FDCWD, (long)host, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0);
    host[walk_root_len] = '/';
    /* host[i] is a slash; host[last_slash] is the one before the last name. */
    for (size_t i = walk_root_len; fd >= 0 && i < last_slash;) {
        size_t j = i + 1;
        while (host[j] != '/')
            j++;
        host[j] = 0;
        long next = fast6(SYS_openat, fd, (long)(host + i + 1), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0);
        host[j] = '/';
        close_fd((int)fd);
        fd = next;
        i = j;
    }
    return (int)fd;
}

/* A descriptor of the host path's directory if no symlink lies on it, else the
 * lookup's -errno: the slow way, or, where it is `unreachable`, the call on the host
 * path. */
static int open_dir(char *host, size_t last_slash)
{
    /* A host path's name right below / (host_path: the guest's / is the host's). */
    if (last_slash == 0)
        return (int)fast6(SYS_openat, AT_FDCWD, (long)"/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0);
    if (!no_openat2) {
        struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS };
        host[last_slash] = 0;
        long fd = fast6(SYS_openat2, AT_FDCWD, (long)host, (long)&how, sizeof how, 0);
        host[last_slash] = '/';
        if (!openat2_missing(fd))
            return (int)fd;
    }
    return walk_dir(host, last_slash);
}

/* A lookup's error (open_dir's, or a last name's fstatat) where the lookup stopped
 * before it met any symlink: a missing name, a file where a directory should be, a
 * directory the caller may not search. ptnix's walk stops at the same name and
 * hands the kernel the host path (resolve.rs `stop`, and "a missing last name is
 * fine"), which then fails there: the object makes that call itself (read-only calls
 * only: if it succeeds after all, something changed in between, and it goes the
 * slow way). Not ENOTDIR without openat2: the walk's O_NOFOLLOW gives it for a
 * symlink as well. Not EACCES where ptnix runs as root or with capabilities (a
 * program that dropped them): ptnix may search where the program may not, and
 * find a symlink there. */
static int unreachable(long err)
{
    return err == -ENOENT || (err == -EACCES && eacces_final) || (err == -ENOTDIR && !no_openat2);
}

static void close_fd(int fd)
{
    fast6(SYS_close, fd, 0, 0, 0, 0);
}

/* Whether `name` in `dirfd` is a symlink (an fstatat of its own, as ptnix's lstat). */
static int is_symlink(int dirfd, const char *name)
{
    struct stat st;
    return fast6(SYS_newfstatat, dirfd, (long)name, (long)&st, AT_SYMLINK_NOFOLLOW, 0) == 0 && S_ISLNK(st.st_mode);
}

/* An O_PATH descriptor of the host store, opened with openat2 (no symlink on its
 * path), or the error. */
static long open_store(void)
{
    struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS };
    return fast6(SYS_openat2, AT_FDCWD, (long)host_store, (long)&how, sizeof how, 0);
}

/* A call on the entry a store path names, made relative to its directory as
 * nr(dirfd, name, a, b, c): 1 done (*r its result), 0 the slow way. `follow`: the
 * call follows the last name, so a symlink there goes the slow way. */
static int at_call(long nr, int follow, const char *path, long a, long b, long c, long *r)
{
    char host[PATH_MAX_];
    size_t ls;
    if (!translate(path, host, &ls))
        return 0;
    int d = open_dir(host, ls);
    if (d < 0) {
        /* The stat family and readlink, on a directory that cannot be reached. */
        if (!unreachable(d) || !(nr == SYS_newfstatat || nr == SYS_statx || nr == SYS_readlinkat))
            return 0;
        *r = fast6(nr, AT_FDCWD, (long)host, a, b, c);
        return *r < 0;
    }
    const char *name = host + ls + 1;
    struct stat st;
    long s = follow ? fast6(SYS_newfstatat, d, (long)name, (long)&st, AT_SYMLINK_NOFOLLOW, 0) : 0;
    /* An error of the lookup goes the slow way too: the kernel may answer before it
     * looks (utimensat with both times UTIME_OMIT, a bad `times`). */
    if (s < 0 || (follow && S_ISLNK(st.st_mode))) {
        close_fd(d);
        return 0;
    }
    *r = fast6(nr, d, (long)name, a, b, c);
    close_fd(d);
    return 1;
}

/* fstatat/statx of "" with AT_EMPTY_PATH: no path, nothing to translate. */
static int empty_path(const char *path, int flags)
{
    return path && !path[0] && (flags & AT_EMPTY_PATH) && on();
}

/* newfstatat of a store path or a lone name (see lone_name, made as it is) on the
 * fast path: 1 done (result in *r), 0 not. It never follows the last name: for a
 * call that does, a symlink there goes the slow way (its own answer, where it is not
 * one, is the answer: no second lookup). */
static int fast_fstatat(int dirfd, const char *path, struct stat *st, int flags, long *r)
{
    if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT))
        return 0;
    if (lone_name(path))
        *r = fast6(SYS_newfstatat, dirfd, (long)path, (long)st, flags | AT_SYMLINK_NOFOLLOW, 0);
    else if (!at_call(SYS_newfstatat, 0, path, (long)st, flags | AT_SYMLINK_NOFOLLOW, 0, r))
        return 0;
    return !(*r == 0 && !(flags & AT_SYMLINK_NOFOLLOW) && S_ISLNK(st->st_mode));
}

static int do_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    long r;
    if (empty_path(path, flags))
        return (int)ret_errno(fast6(SYS_newfstatat, dirfd, (long)path, (long)st, flags, 0));
    if (fast_fstatat(dirfd, path, st, flags, &r))
        return (int)ret_errno(r);
    return (int)SLOW(SYS_newfstatat, dirfd, path, st, flags);
}

/* fstat, as the libc that has the symbol (glibc 2.33+) makes it: EBADF for a negative
 * fd, else fstatat(fd, "", AT_EMPTY_PATH), which ptnix's filter cannot tell from a
 * call with a path (so from the gadget). __fxstat is what programs built against an
 * older glibc call, whose libc made the fstat syscall: that, which ptnix's filter
 * lets through. */
int fstat(int fd, struct stat *st)
{
    if (fd < 0)
        return (int)ret_errno(-EBADF);
    return do_fstatat(fd, "", st, AT_EMPTY_PATH);
}
int fstat64(int fd, struct stat *st) { return fstat(fd, st); }
int __fxstat(int v, int fd, struct stat *st) { return xver(v) ? (int)SLOW(SYS_fstat, fd, st, 0, 0) : -1; }
int __fxstat64(int v, int fd, struct stat *st) { return xver(v) ? (int)SLOW(SYS_fstat, fd, st, 0, 0) : -1; }

int stat(const char *path, struct stat *st) { return do_fstatat(AT_FDCWD, path, st, 0); }
int stat64(const char *path, struct stat *st) { return do_fstatat(AT_FDCWD, path, st, 0); }
int lstat(const char *path, struct stat *st) { return do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW); }
int lstat64(const char *path, struct stat *st) { return do_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW); }
int fstatat(int d, const char *path, struct stat *st, int flags) { return do_fstatat(d, path, st, flags); }
int fstatat64(int d, const char *path, struct stat *st, int flags) { return do_fstatat(d, path, st, flags); }

/* glibc before 2.33: stat() is an inline call of __xstat(_STAT_VER, ...); on x86_64
 * _STAT_VER is 1 (0 for the kernel's own layout, which is the same). */
static int xver(int ver)
{
    if (ver == 0 || ver == 1)
        return 1;
    ret_errno(-EINVAL);
    return 0;
}
int __xstat(int v, const char *p, struct stat *st) { return xver(v) ? do_fstatat(AT_FDCWD, p, st, 0) : -1; }
int __xstat64(int v, const char *p, struct stat *st) { return xver(v) ? do_fstatat(AT_FDCWD, p, st, 0) : -1; }
int __lxstat(int v, const char *p, struct stat *st) { return xver(v) ? do_fstatat(AT_FDCWD, p, st, AT_SYMLINK_NOFOLLOW) : -1; }
int __lxstat64(int v, const char *p, struct stat *st) { return xver(v) ? do_fstatat(AT_FDCWD, p, st, AT_SYMLINK_NOFOLLOW) : -1; }
int __fxstatat(int v, int d, const char *p, struct stat *st, int f) { return xver(v) ? do_fstatat(d, p, st, f) : -1; }
int __fxstatat64(int v, int d, const char *p, struct stat *st, int f) { return xver(v) ? do_fstatat(d, p, st, f) : -1; }

int statx(int dirfd, const char *path, int flags, unsigned int mask, void *buf)
{
    long v;
    if (empty_path(path, flags) || plain_lone(dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW)))
        return (int)ret_errno(fast6(SYS_statx, dirfd, (long)path, flags, mask, (long)buf));
    /* As fast_fstatat; struct statx has stx_mode (u16) at offset 28, filled only on
     * success. */
    if (!(flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE)) &&
        at_call(SYS_statx, 0, path, flags | AT_SYMLINK_NOFOLLOW, mask | STATX_TYPE, (long)buf, &v) &&
        (v != 0 || (flags & AT_SYMLINK_NOFOLLOW) || !S_ISLNK(*(uint16_t *)((char *)buf + 28))))
        return (int)ret_errno(v);
    return (int)ret_errno(raw6(SYS_statx, dirfd, (long)path, flags, mask, (long)buf, 0));
}

/* access and the xattr calls, (path, a, b, c), on the host path (the xattr calls
 * have no *at form before Linux 6.13) once its directory is known to hold no symlink
 * and, for a call that follows the last name, that name is known not to be one. */
static long by_host_path(long nr, int follow, const char *path, long a, long b, long c)
{
    char host[PATH_MAX_];
    size_t ls;
    if (plain_lone(AT_FDCWD, path, follow))
        return ret_errno(fast6(nr, (long)path, a, b, c, 0));
    if (translate(path, host, &ls)) {
        int d = open_dir(host, ls);
        /* access's answer for a miss, taken only where the call fails (see
         * unreachable); 0: none. */
        long miss = 0;
        if (d >= 0) {
            struct stat st;
            long s = follow ? fast6(SYS_newfstatat, d, (long)(host + ls + 1), (long)&st, AT_SYMLINK_NOFOLLOW, 0) : 0;
            /* A name that is not there (a PATH search's access(DIR/NAME, X_OK) in each
             * directory without NAME): access relative to the directory found, as in
             * at_call's case of an unreachable directory. Any other error of the
             * lookup goes the slow way: the kernel checks the other arguments (an
             * xattr name, an access mode) first, and ptnix's getxattr checks the
             * name before the path where older kernels did not. */
            if (nr == SYS_access && unreachable(s))
                miss = fast6(SYS_faccessat, d, (long)(host + ls + 1), a, 0, 0);
            close_fd(d);
            if (s == 0 && !(follow && S_ISLNK(st.st_mode)))
                return ret_errno(fast6(nr, (long)host, a, b, c, 0));
        } else if (nr == SYS_access && unreachable(d)) {
            miss = fast6(nr, (long)host, a, b, c, 0);
        }
        if (miss < 0)
            return ret_errno(miss);
    }
    return ret_errno(raw6(nr, (long)path, a, b, c, 0, 0));
}
long getxattr(const char *p, const char *n, void *v, size_t s) { return by_host_path(SYS_getxattr, 1, p, (long)n, (long)v, (long)s); }
long lgetxattr(const char *p, const char *n, void *v, size_t s) { return by_host_path(SYS_lgetxattr, 0, p, (long)n, (long)v, (long)s); }
long listxattr(const char *p, char *l, size_t s) { return by_host_path(SYS_listxattr, 1, p, (long)l, (long)s, 0); }
long llistxattr(const char *p, char *l, size_t s) { return by_host_path(SYS_llistxattr, 0, p, (long)l, (long)s, 0); }

/* at_call, else the slow call nr_slow(path, a, b, c); `lone`: a plain lone name (see
 * plain_lone) is made as it is. */
static long at_or_slow(long nr, int follow, int lone, const char *path, long a, long b, long c, long nr_slow)
{
    long r;
    if (lone && plain_lone(AT_FDCWD, path, follow))
        return ret_errno(fast6(nr_slow, (long)path, a, b, c, 0));
    if (at_call(nr, follow, path, a, b, c, &r))
        return ret_errno(r);
    return ret_errno(raw6(nr_slow, (long)path, a, b, c, 0, 0));
}

/* readlink never follows the last name: the link's contents are the answer as they
 * are, but for /proc's magic links, which ptnix rewrites: so a lone name (`exe` from
 * a descriptor of /proc/self, `3` in /proc/self/fd) always goes to ptnix. */
long readlink(const char *p, char *b, size_t s) { return at_or_slow(SYS_readlinkat, 0, 0, p, (long)b, (long)s, 0, SYS_readlink); }
long readlinkat(int d, const char *p, char *b, size_t s)
{
    long r;
    if (at_call(SYS_readlinkat, 0, p, (long)b, (long)s, 0, &r))
        return ret_errno(r);
    return ret_errno(raw6(SYS_readlinkat, d, (long)p, (long)b, (long)s, 0, 0));
}

/* What Nix does to a store path it writes: the entry-making calls never follow the
 * last name (mkdir, rmdir, unlink, symlink, rename; lchown; utimensat with
 * AT_SYMLINK_NOFOLLOW), chmod does. */
int mkdir(const char *p, unsigned int mode) { return (int)at_or_slow(SYS_mkdirat, 0, 1, p, mode, 0, 0, SYS_mkdir); }
int rmdir(const char *p) { return (int)at_or_slow(SYS_unlinkat, 0, 1, p, AT_REMOVEDIR, 0, 0, SYS_rmdir); }
int unlink(const char *p) { return (int)at_or_slow(SYS_unlinkat, 0, 1, p, 0, 0, 0, SYS_unlink); }
int chmod(const char *p, unsigned int mode) { return (int)at_or_slow(SYS_fchmodat, 1, 1, p, mode, 0, 0, SYS_chmod); }
int lchown(const char *p, unsigned int u, unsigned int g) { return (int)at_or_slow(SYS_fchownat, 0, 1, p, u, g, AT_SYMLINK_NOFOLLOW, SYS_lchown); }

int symlink(const char *target, const char *p)
{
    long r;
    char host[PATH_MAX_];
    size_t ls;
    if (plain_lone(AT_FDCWD, p, 0))
        return (int)ret_errno(fast6(SYS_symlink, (long)target, (long)p, 0, 0, 0));
    if (translate(p, host, &ls)) {
        int d = open_dir(host, ls);
        if (d >= 0) {
            r = fast6(SYS_symlinkat, (long)target, d, (long)(host + ls + 1), 0, 0);
            close_fd(d);
            return (int)ret_errno(r);
        }
    }
    return (int)SLOW(SYS_symlink, target, p, 0, 0);
}

int rename(const char *from, const char *to)
{
    char hf[PATH_MAX_], ht[PATH_MAX_];
    size_t lf, lt;
    if (plain_lone(AT_FDCWD, from, 0) && plain_lone(AT_FDCWD, to, 0))
        return (int)ret_errno(fast6(SYS_rename, (long)from, (long)to, 0, 0, 0));
    if (translate(from, hf, &lf) && translate(to, ht, &lt)) {
        int df = open_dir(hf, lf);
        int dt = df < 0 ? -1 : open_dir(ht, lt);
        if (dt >= 0) {
            long r = fast6(SYS_renameat, df, (long)(hf + lf + 1), dt, (long)(ht + lt + 1), 0);
            close_fd(dt);
            close_fd(df);
            return (int)ret_errno(r);
        }
        if (df >= 0)
            close_fd(df);
    }
    return (int)SLOW(SYS_rename, from, to, 0, 0);
}

/* utimensat with an absolute path (the directory descriptor is then ignored), and
 * lutimes, which Nix uses to set a store path's times to 1 (glibc makes it a
 * utimensat of its own, which a preloaded object does not see). */
int utimensat(int dirfd, const char *p, const void *times, int flags)
{
    long r;
    /* glibc's own check: a NULL path is futimens' business, not utimensat's. */
    if (!p)
        return (int)ret_errno(-EINVAL);
    if (plain_lone(dirfd, p, !(flags & AT_SYMLINK_NOFOLLOW)))
        return (int)ret_errno(fast6(SYS_utimensat, dirfd, (long)p, (long)times, flags, 0));
    if (!(flags & ~AT_SYMLINK_NOFOLLOW) && at_call(SYS_utimensat, !(flags & AT_SYMLINK_NOFOLLOW), p, (long)times, flags, 0, &r))
        return (int)ret_errno(r);
    return (int)ret_errno(raw6(SYS_utimensat, dirfd, (long)p, (long)times, flags, 0, 0));
}
struct timeval_ {
    long tv_sec, tv_usec;
};
int lutimes(const char *p, const struct timeval_ tv[2])
{
    /* As glibc converts them; the kernel refuses what is out of range. */
    long ts[4];
    if (tv)
        ts[0] = tv[0].tv_sec, ts[1] = tv[0].tv_usec * 1000, ts[2] = tv[1].tv_sec, ts[3] = tv[1].tv_usec * 1000;
    return utimensat(AT_FDCWD, p, tv ? ts : 0, AT_SYMLINK_NOFOLLOW);
}

/* Without openat2: the directory walked (walk_dir), then the name opened in it,
 * unless it is a symlink (where openat2 says ELOOP), which goes the slow way (that
 * follows it where the call does). ELOOP and ENOTDIR go the slow way as well (with
 * the caller's O_NOFOLLOW a symlink gives either: O_DIRECTORY's ENOTDIR is checked
 * first, fs/namei.c do_open). The
 * program's open must return the lowest free number, which the walk's descriptor
 * may hold: the file is then moved onto it (dup3 closes the directory's), with the
 * close-on-exec flag asked for. 1 done (*r the result), 0 the slow way. */
static int walk_open(char *host, size_t ls, int flags, int mode, long *r)
{
    int d = walk_dir(host, ls);
    if (d < 0)
        return 0;
    const char *name = host + ls + 1;
    /* A caller that did not ask for O_NOFOLLOW must not find it in F_GETFL: the name
     * is checked for a symlink first instead, as plain_lone does. */
    if (!(flags & O_NOFOLLOW) && is_symlink(d, name)) {
        close_fd(d);
        return 0;
    }
    long f = fast6(SYS_openat, d, (long)name, flags, mode, 0);
    /* EMFILE, ENFILE: the walk's descriptor took the last number, which the program's
     * open would have had (the kernel takes the number before the lookup, so nothing
     * was made). */
    if (f == -ELOOP || f == -ENOTDIR || f == -EMFILE || f == -ENFILE) {
        close_fd(d);
        return 0;
    }
    if (f > d && fast6(SYS_dup3, f, d, flags & O_CLOEXEC, 0, 0) == d) {
        close_fd((int)f);
        f = d;
    } else {
        close_fd(d);
    }
    *r = f;
    return 1;
}

/* One openat2 of the whole host path, which no symlink may be on: a descriptor of
 * the directory would take the lowest free number the program's open must get. */
static int do_openat(int dirfd, const char *path, int flags, int mode)
{
    char host[PATH_MAX_];
    size_t ls;
    if (plain_lone(dirfd, path, !(flags & O_NOFOLLOW)))
        return (int)ret_errno(fast6(SYS_openat, dirfd, (long)path, flags, mode, 0));
    /* O_PATH with O_NOFOLLOW opens a symlink itself; O_TMPFILE names a directory. */
    /* openat2 refuses flags openat ignores: those go the slow way untried (trying
     * could create the file first, then fail). */
    if (!(flags & (O_PATH | O_TMPFILE_BIT | ~VALID_OPEN_FLAGS)) && translate(path, host, &ls)) {
        struct open_how how = {
            .flags = (uint64_t)(unsigned int)flags,
            .mode = (flags & O_CREAT) ? (uint64_t)(mode & 07777) : 0,
            .resolve = RESOLVE_NO_SYMLINKS,
        };
        long fd = no_openat2 ? -ENOSYS : fast6(SYS_openat2, AT_FDCWD, (long)host, (long)&how, sizeof how, 0);
        /* ELOOP: a symlink on the way, and E2BIG: the slow way. ENOSYS (before Linux
         * 5.6): the walk. EPERM: a container's policy (then the walk), or the file's
         * own (O_NOATIME on another's file, a device...), the answer; an O_PATH
         * openat2 of the store, which has no EPERM of its own, tells which. */
        if (fd != -ELOOP && fd != -ENOSYS && fd != -EPERM && fd != -E2BIG)
            return (int)ret_errno(fd);
        if (fd == -ENOSYS)
            openat2_missing(fd);
        if (fd == -EPERM && !no_openat2) {
            long p = open_store();
            if (p >= 0)
                close_fd((int)p);
            /* openat2 works: the EPERM is the file's own, which the slow way would
             * only meet again (and a device's open would run twice). */
            if (!openat2_missing(p))
                return (int)ret_errno(fd);
        }
        /* Not O_CREAT with O_DIRECTORY: Linux 5.7 to 6.3 make the file and then say
         * ENOTDIR, which the walk would take for a symlink and leave to the slow way,
         * which would make the call again. */
        long r;
        if ((fd == -ENOSYS || fd == -EPERM) && no_openat2 && (flags & (O_CREAT | O_DIRECTORY)) != (O_CREAT | O_DIRECTORY) &&
            walk_open(host, ls, flags, mode, &r))
            return (int)ret_errno(r);
    }
    return (int)SLOW(SYS_openat, dirfd, path, flags, mode);
}

/* opendir, made as glibc makes it: an open of the directory, then a DIR made of the
 * descriptor, here by the libc's own fdopendir (which musl has too). libc's opendir
 * opens with an internal call no preloaded object sees: a round trip to ptnix for
 * each directory that `ls -R`, `du` or Nix reads. (fdopendir's own fstat still is
 * one where glibc 2.33 to 2.38 make it an fstatat of "" with AT_EMPTY_PATH; its
 * fcntl calls are not path calls.) The open takes the fast path or the slow way as
 * any open does. */
extern void *fdopendir(int fd) __attribute__((weak));
/* glibc's alone (musl has none): glibc's opendir adds O_NONBLOCK, musl's does not.
 * (The auditor's copy, with libc_fdopendir, serves glibc's loader alone.) */
extern const char *gnu_get_libc_version(void) __attribute__((weak));
void *opendir(const char *name)
{
    void *(*fdopen_dir)(int) = fdopendir ? fdopendir : libc_fdopendir;
    if (!fdopen_dir || !errno_loc()) {
        ret_errno(-ENOSYS);
        return 0;
    }
    /* glibc answers "" itself, before any call. */
    if (name && !name[0]) {
        ret_errno(-ENOENT);
        return 0;
    }
    int glibc = gnu_get_libc_version || !fdopendir;
    int flags = O_DIRECTORY | O_CLOEXEC | (glibc ? O_NONBLOCK : 0); /* | O_RDONLY */
    int fd = do_openat(AT_FDCWD, name, flags, 0);
    if (fd < 0)
        return 0;
    void *d = fdopen_dir(fd);
    if (!d) {
        /* A plain close (no path: no stop): the gadget may not be there. */
        int e = *errno_loc();
        raw6(SYS_close, fd, 0, 0, 0, 0, 0);
        *errno_loc() = e;
    }
    return d;
}

static int mode_arg(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE_BIT)) ? va_arg(ap, int) : 0;
}
int open(const char *p, int flags, ...) { va_list ap; va_start(ap, flags); int m = mode_arg(flags, ap); va_end(ap); return do_openat(AT_FDCWD, p, flags, m); }
int open64(const char *p, int flags, ...) { va_list ap; va_start(ap, flags); int m = mode_arg(flags, ap); va_end(ap); return do_openat(AT_FDCWD, p, flags, m); }
int openat(int d, const char *p, int flags, ...) { va_list ap; va_start(ap, flags); int m = mode_arg(flags, ap); va_end(ap); return do_openat(d, p, flags, m); }
int openat64(int d, const char *p, int flags, ...) { va_list ap; va_start(ap, flags); int m = mode_arg(flags, ap); va_end(ap); return do_openat(d, p, flags, m); }

/* access only: faccessat's flags (AT_EACCESS, AT_SYMLINK_NOFOLLOW) are emulated by
 * libc on kernels without faccessat2, and stay libc's (and ptnix's). */
int access(const char *path, int mode)
{
    if (mode & ~7) /* EINVAL, before any lookup */
        return (int)SLOW(SYS_access, path, mode, 0, 0);
    return (int)by_host_path(SYS_access, 1, path, mode, 0, 0);
}

/* Filled in by ptnix in its copy of this file (`shim.rs`): the magic stays, then the
 * cookie, the object's own path and the canonical host store directory. Read-only
 * (it shares the code's segment), and read only through `cfg`, whose pointer the
 * compiler cannot see through: it must not fold the initializer into the code. */
struct config {
    char magic[32];
    uint64_t cookie;
    char object[PATH_MAX_];
    char store[PATH_MAX_];
    /* Names ptnix looks at more closely even alone (see plain_lone), each ended by a
     * NUL, the list by an empty one. */
    char special[1024];
    /* 1: act as on a kernel without openat2 (ptnix's tests, see no_openat2); 2: all
     * of /nix maps by prefix alone (see plain_nix); 4: host paths (see host_path). */
    uint64_t flags;
    /* Absolute guest paths below and above which host paths are not plain (see
     * host_path), each ended by a NUL, the list by an empty one. */
    char prefixes[1024];
};
__attribute__((used, aligned(16))) static const struct config config = { .magic = "ptnix in-process fast path cfg" };

static const struct config *cfg(void)
{
    const struct config *c = &config;
    __asm__("" : "+r"(c));
    return c;
}

static const char PRELOAD[] = "LD_PRELOAD=";

/* The length of a string of the slot, which ptnix ends with a NUL within PATH_MAX
 * (shim.rs); -1 if it did not. */
static long slot_len(const char *s)
{
    for (long n = 0; n < PATH_MAX_; n++)
        if (!s[n])
            return n;
    return -1;
}

/* Whether the gadget page another copy of this object (the auditor's, see
 * la_version) mapped is there: its bytes read without faulting on whatever else
 * might be mapped at the address, and executable (an mprotect to what it is already
 * changes nothing, and fails where the page could not be made executable). */
static int gadget_already_there(long c)
{
    unsigned char seen[24];
    struct iovec_ {
        void *base;
        size_t len;
    } local = { seen, sizeof seen }, remote = { (void *)GADGET_ADDR, sizeof seen };
    if (raw6(310 /* process_vm_readv */, raw6(39 /* getpid */, 0, 0, 0, 0, 0, 0), (long)&local, 1, (long)&remote, 1, 0) != sizeof seen)
        return 0;
    return seen[0] == 0x0f && seen[1] == 0x05 && seen[2] == 0xc3 && *(long *)(seen + 16) == c &&
           raw6(SYS_mprotect, (long)GADGET_ADDR, 4096, 5 /* R|X */, 0, 0, 0) == 0;
}

/* The gadget: one page at a fixed address, which ptnix's filter knows, made once per
 * process by whichever copy of this object comes first (where there are two, for a
 * program that reaches libc through its GOT, the auditor's loads before the
 * preloaded one, in a namespace of its own). Taken already by something else (a
 * sanitizer's shadow, a program's own fixed mapping made first), or an old kernel
 * that put it elsewhere: no fast path. */
static int gadget(long c)
{
    long page = raw6(SYS_mmap, (long)GADGET_ADDR, 4096, 3 /* RW */, 0x22 | 0x100000 /* PRIVATE|ANON|FIXED_NOREPLACE */, -1, 0);
    if (page == -17 /* EEXIST */)
        return gadget_already_there(c);
    if (page != (long)GADGET_ADDR) {
        if (page > 0)
            raw6(SYS_munmap, page, 4096, 0, 0, 0, 0);
        return 0;
    }
    unsigned char *g = (unsigned char *)GADGET_ADDR;
    g[0] = 0x0f; /* syscall */
    g[1] = 0x05;
    g[2] = 0xc3; /* ret */
    *(long *)(g + 8) = 1; /* on, until ptnix says otherwise (see on) */
    *(long *)(g + 16) = c; /* whose it is (see gadget_already_there) */
    /* Refused where memory that was writable may not become executable
     * (PR_SET_MDWE, an LSM's execmem): the page goes, so that the other copy does not
     * take it for a gadget. */
    if (raw6(SYS_mprotect, (long)GADGET_ADDR, 4096, 5 /* R|X */, 0, 0, 0) != 0) {
        raw6(SYS_munmap, (long)GADGET_ADDR, 4096, 0, 0, 0, 0);
        return 0;
    }
    return 1;
}

/* Turns the fast path on, once, if ptnix configured this copy. */
static void setup(void)
{
    static int tried;
    if (tried)
        return;
    tried = 1;
    long c = (long)cfg()->cookie;
    if (c == 0 || cfg()->store[0] != '/')
        return;
    long n = slot_len(cfg()->store);
    if (n < 0)
        return;
    host_store = cfg()->store;
    host_store_len = (size_t)n;
    no_openat2 = (cfg()->flags & 1) != 0;
    plain_nix = (cfg()->flags & 2) != 0 && n > 6 && starts(host_store + n - 6, "/store", 6);
    host_paths = (cfg()->flags & 4) != 0;
    eacces_final = (cfg()->flags & 8) != 0;
    walk_root_len = plain_nix ? host_store_len - 6 : host_store_len;
    if (!gadget(c))
        return;
    cookie = c;
    enabled = 1;
}

/* Whether `match(entry, its length, p)` holds for an entry of the slot's list at `s`
 * (`len` bytes: entries each ended by a NUL, the list by an empty one); 1 for a list
 * without its end. */
static int list_any(const char *s, size_t len, int (*match)(const char *, size_t, const char *), const char *p)
{
    const char *end = s + len;
    while (s < end && *s) {
        size_t n = 0;
        while (s + n < end && s[n])
            n++;
        if (s + n == end || match(s, n, p))
            return 1;
        s += n + 1;
    }
    return 0;
}

/* Path `p` lies below prefix `s` (`n` bytes), is it, or lies above it. */
static int related(const char *s, size_t n, const char *p)
{
    size_t lp = slen(p);
    if (n <= lp && starts(p, s, n) && (p[n] == 0 || p[n] == '/'))
        return 1;
    return lp < n && starts(s, p, lp) && s[lp] == '/';
}

/* Name `p` is entry `s` (`n` bytes). */
static int same_name(const char *s, size_t n, const char *p)
{
    return starts(p, s, n + 1);
}

/* An absolute host path that ptnix leaves as it is, where the guest's root is the
 * host's (config flags): under none of the slot's prefixes (ptnix's binds, /nix among
 * them, and /proc, whose files and links ptnix rewrites) and above none (a bind's
 * parent directories, whose listings ptnix changes, and / itself). Its names are
 * checked by translate, and the directory part for symlinks by open_dir: a symlink
 * may lead into /nix. Only with openat2 (Linux 5.6): the walk without it starts
 * from the store (walk_dir). */
static int host_path(const char *p)
{
    if (!host_paths || no_openat2 || p[0] != '/' || !p[1])
        return 0;
    /* A list without its end: no host path is plain. */
    return !list_any(cfg()->prefixes, sizeof cfg()->prefixes, related, p);
}

/* Whether lone name `p` is in the slot's list of special names (all are, where the
 * list has no end). */
static int special(const char *p)
{
    return list_any(cfg()->special, sizeof cfg()->special, same_name, p);
}

/* A lone name (non-empty, no slash, not "." or "..") that ptnix leaves as it is
 * (hostfs::lone_name_unchanged): a name looked up in the directory the caller gave,
 * which is a host directory already, needs no translation, unless it is one ptnix
 * looks at more closely (`special`: its mount points' names, the names of
 * directories whose listing it changes, the /proc files it snapshots) or, for a call
 * that follows the last name, a symlink (whose target may be an absolute /nix path;
 * found with a fstatat of its own, as ptnix does with an lstat). Such a call is made
 * as it is, from the gadget: `find`'s fstatat(dirfd, "name") and openat(dirfd,
 * "name"). */
static int lone_name(const char *p)
{
    if (!p || !p[0] || (p[0] == '.' && (!p[1] || (p[1] == '.' && !p[2]))) || !on())
        return 0;
    for (const char *c = p; *c; c++)
        if (*c == '/')
            return 0;
    return !special(p);
}

/* lone_name, and for a call that follows the last name, not a symlink. */
static int plain_lone(int dirfd, const char *p, int follow)
{
    if (!lone_name(p))
        return 0;
    return !follow || !is_symlink(dirfd, p);
}

/* Whether entry `s` ends in `=TAIL` or `:TAIL`. */
static int ends_with(const char *s, const char *tail, size_t n)
{
    size_t l = slen(s);
    return l > n && (s[l - n - 1] == '=' || s[l - n - 1] == ':') && starts(s + l - n, tail, n);
}

/* Takes ptnix's entry out of the environment: ptnix appended
 * `LD_PRELOAD=[THEIRS:]THIS` (the last LD_PRELOAD is the one glibc's loader takes; the
 * program's own, if any, is still where it was). The program then sees the
 * environment it was given, and its children get it again from ptnix at their exec.
 * Then the fast path, for a libc that has errno (`environ` and `__errno_location` are
 * weak: the auditor's copy, in a namespace without libc, has neither). */
__attribute__((constructor)) static void shim_init(void)
{
    if (!&environ || !__errno_location || !environ)
        return;
    const char *object = cfg()->object;
    long on_len = slot_len(object);
    char **last_preload = 0;
    for (char **e = environ; *e; e++)
        if (starts(*e, PRELOAD, sizeof PRELOAD - 1))
            last_preload = e;
    if (on_len > 0 && last_preload && ends_with(*last_preload, object, (size_t)on_len)) {
        char **e = last_preload;
        do
            e[0] = e[1];
        while (*e++);
    }
    setup();
}

/* The loader's library search (rtld-audit(7)). Where ptnix starts a program through
 * glibc's loader, it also names this object with `--audit`: the loader then asks it
 * about each library it is about to look for, before it looks (la_objsearch with
 * LA_SER_ORIG, glibc elf/dl-load.c _dl_map_object), and uses a path given back as it
 * is. The search itself, a miss and a stat per directory tried
 * (`glibc-hwcaps/x86-64-v4`, `v3`, `v2`, and before glibc 2.37 `tls`, `x86_64`,
 * `haswell`...), would be a round trip to ptnix each. This object answers in the
 * one case where it knows the loader's answer for sure, and leaves every other case
 * to the loader:
 * - a name without a slash, asked for by an object with DT_RUNPATH (which then
 *   decides alone: DT_RPATH is ignored, and ptnix adds --audit only without
 *   LD_LIBRARY_PATH), whose every entry up to the one that has the library is a
 *   plain store directory (no `$ORIGIN`, `.`, `..`, empty name or trailing slash);
 * - none of those directories has a subdirectory the loader would try first
 *   (`SUBDIRS`), so each is tried exactly as DIR/NAME;
 * - the library is found through no symlink that leaves the store (openat2
 *   RESOLVE_BENEATH below the host store: guest and host then agree), its ELF
 *   header is one the loader accepts for x86_64 (a file of another class would make
 *   it go on searching), and its DT_SONAME is the name asked for (see soname_is).
 * The answer is the guest path DIR/NAME, the name the loader would have found
 * (`l_name`). A directory that does not exist is passed over, as the loader does. */

#define LA_SER_ORIG 0x01
#define DT_NULL 0
#define DT_STRTAB 5
#define DT_SONAME 14
#define DT_RUNPATH 29
#define DT_SYMTAB 6
#define DT_GNU_HASH 0x6ffffef5
#define LA_FLG_BINDTO 0x01
#define LA_FLG_BINDFROM 0x02
#define SYS_pread64 17
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_BENEATH 0x08

/* The public head of glibc's struct link_map (<link.h>). */
struct lmap {
    uint64_t l_addr;
    char *l_name;
    const int64_t *l_ld; /* Elf64_Dyn pairs: tag, value */
};

/* Subdirectories glibc's loader tries below each search directory on x86_64: the
 * glibc-hwcaps levels (2.33+), and before 2.37 `tls` and the legacy platform and
 * hwcap names (sysdeps/x86/dl-procinfo.c). */
static const char *const SUBDIRS[] = { "glibc-hwcaps", "tls", "x86_64", "haswell", "xeon_phi", "avx512_1", "sse2", "i686", "i586" };

unsigned int la_version(unsigned int version)
{
    setup();
    /* 0: the loader unloads an auditor it should not use. */
    return enabled && version >= 1 ? 1 : 0;
}

/* In the dynamic entries at `d` (tag and value pairs, at most `n`, up to DT_NULL):
 * whether there is `tag`, and its value. */
static int dyn_get(const int64_t *d, uint64_t n, int64_t tag, uint64_t *val)
{
    for (uint64_t i = 0; i < n && d[2 * i] != DT_NULL; i++)
        if (d[2 * i] == tag) {
            *val = (uint64_t)d[2 * i + 1];
            return 1;
        }
    return 0;
}

/* DT_STRTAB's value and `tag`'s; whether there are both. */
static int dyn_find(const int64_t *d, uint64_t n, int64_t tag, uint64_t *strtab, uint64_t *val)
{
    return dyn_get(d, n, DT_STRTAB, strtab) && *strtab && dyn_get(d, n, tag, val);
}

/* The address that `tag`, an address entry of loaded object `l`'s dynamic section,
 * stands for; 0 if there is none. glibc adds the load address to such entries in
 * place where .dynamic is writable (elf/get-dynamic-info.h), and leaves them as they
 * are where it is read-only: of the value as it is and the value plus the load
 * address, the one nearer to .dynamic itself (`l_ld`, an address) is in the same
 * object. */
static uint64_t dyn_addr(const struct lmap *l, int64_t tag)
{
    uint64_t v;
    if (!l || !l->l_ld || !dyn_get(l->l_ld, UINT64_MAX, tag, &v) || !v)
        return 0;
    uint64_t ld = (uint64_t)(uintptr_t)l->l_ld, moved = v + l->l_addr;
    uint64_t d0 = v > ld ? v - ld : ld - v, d1 = moved > ld ? moved - ld : ld - moved;
    return d1 < d0 ? moved : v;
}

/* Loaded object `l`'s string entry `tag` (DT_RUNPATH, DT_SONAME), or 0. */
static const char *dyn_str(const struct lmap *l, int64_t tag)
{
    uint64_t strtab = dyn_addr(l, DT_STRTAB), off;
    if (!strtab || !dyn_get(l->l_ld, UINT64_MAX, tag, &off))
        return 0;
    return (const char *)(uintptr_t)(strtab + off);
}

struct sym64 {
    uint32_t st_name;
    unsigned char st_info, st_other;
    uint16_t st_shndx;
    uint64_t st_value, st_size;
};

/* The address of function `name` as loaded object `l` defines it (any version), found
 * through its DT_GNU_HASH table (the GNU hash section, which glibc's libc and this
 * object have); 0 if it defines none. A plain function only: an IFUNC's address is
 * its resolver's. */
static uint64_t defined_function(const struct lmap *l, const char *name)
{
    const uint32_t *gh = (const uint32_t *)(uintptr_t)dyn_addr(l, DT_GNU_HASH);
    const struct sym64 *syms = (const struct sym64 *)(uintptr_t)dyn_addr(l, DT_SYMTAB);
    const char *strtab = (const char *)(uintptr_t)dyn_addr(l, DT_STRTAB);
    if (!gh || !syms || !strtab || gh[0] == 0)
        return 0;
    uint32_t nbuckets = gh[0], symoffset = gh[1], bloom_words = gh[2];
    const uint32_t *buckets = gh + 4 + 2 * bloom_words; /* 64-bit bloom words */
    const uint32_t *chain = buckets + nbuckets;
    uint32_t h = 5381;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = h * 33 + *c;
    uint32_t i = buckets[h % nbuckets];
    if (i < symoffset)
        return 0;
    for (;; i++) {
        uint32_t h2 = chain[i - symoffset];
        const struct sym64 *s = &syms[i];
        if ((h | 1) == (h2 | 1) && starts(strtab + s->st_name, name, slen(name) + 1) && s->st_shndx != 0 && (s->st_info & 0xf) == 2 /* STT_FUNC */)
            return l->l_addr + s->st_value;
        if (h2 & 1)
            return 0;
    }
}

/* This object as a loaded one (its ELF header is at its load address). */
extern const char __ehdr_start[] __attribute__((visibility("hidden")));
extern const int64_t _DYNAMIC[] __attribute__((visibility("hidden")));
static struct lmap self(void)
{
    struct lmap l = { (uint64_t)(uintptr_t)__ehdr_start, 0, _DYNAMIC };
    return l;
}

/* The cookie la_objsearch gets is the object's link map (as glibc sets it by default
 * since 2.31, BZ #25157; said here for older ones).
 *
 * Where ptnix names this object with `--audit`, it preloads no second copy (one
 * object to open and map at each exec, not two): this copy binds the program's calls
 * itself instead. Each call that an object of the program's namespace (LM_ID_BASE)
 * binds to libc's function of a name this object defines comes here (la_symbind64),
 * as a preloaded copy's definition would have taken it: calls through the PLT, lazy
 * or at load (glibc 2.35+ says la_symbind for bind-now too, BZ #23734), and dlsym's
 * answers. A reference through the GOT alone (-fno-plt, a function's address taken)
 * is not bound here, and goes to ptnix as a plain call. errno and fdopendir are then
 * libc's own, looked up in it. */
unsigned int la_objopen(struct lmap *map, long lmid, uintptr_t *ck)
{
    *ck = (uintptr_t)map;
    if (lmid != 0 /* LM_ID_BASE */ || !enabled)
        return 0;
    const char *soname = libc_errno ? 0 : dyn_str(map, DT_SONAME);
    if (soname && starts(soname, "libc.so.6", sizeof "libc.so.6")) {
        uint64_t e = defined_function(map, "__errno_location"), d = defined_function(map, "fdopendir");
        if (e && d) {
            libc_map = (uintptr_t)map;
            libc_fdopendir = (void *(*)(int))(uintptr_t)d;
            libc_errno = (int *(*)(void))(uintptr_t)e;
            return LA_FLG_BINDTO | LA_FLG_BINDFROM;
        }
    }
    return LA_FLG_BINDFROM;
}

/* A binding to libc's function `name`: to this object's function of that name where
 * it has one (not its la_ entry points), else as it is. Only libc's: dlsym asks about
 * a binding whose referring object alone is marked (glibc elf/dl-audit.c
 * _dl_audit_symbind_alt takes LA_FLG_BINDFROM or LA_FLG_BINDTO), as for a name the
 * program's own preloaded interposer defines, which must stay its. */
uintptr_t la_symbind64(struct sym64 *sym, unsigned int ndx, uintptr_t *refcook, uintptr_t *defcook, unsigned int *flags, const char *name)
{
    (void)ndx, (void)refcook, (void)flags;
    if (!libc_map || !defcook || *defcook != libc_map || !name || starts(name, "la_", 3))
        return sym->st_value;
    struct lmap me = self();
    uint64_t mine = defined_function(&me, name);
    return mine ? mine : sym->st_value;
}

static int pread_all(long fd, void *buf, uint64_t len, uint64_t off)
{
    return fast6(SYS_pread64, fd, (long)buf, (long)len, (long)off, 0) == (long)len;
}

/* Whether the DT_SONAME of the ELF file at `fd` (header `h`) is `name`: then, had
 * the loader had that file already, it would have matched the name before any
 * search (elf/dl-load.c, _dl_map_object), and a file found under its own soname is
 * known to the loader by that name too. Read from the file: PT_DYNAMIC, then the
 * string table through the PT_LOAD that maps it. */
static int soname_is(long fd, const unsigned char *h, const char *name)
{
    struct phdr {
        uint32_t type, flags;
        uint64_t offset, vaddr, paddr, filesz, memsz, align;
    } ph[32];
    uint64_t phoff = *(const uint64_t *)(h + 32);
    unsigned phnum = *(const uint16_t *)(h + 56);
    if (phnum == 0 || phnum > sizeof ph / sizeof ph[0] || !pread_all(fd, ph, phnum * sizeof ph[0], phoff))
        return 0;
    int64_t dyn[2 * 128];
    uint64_t dynsz = 0, dynoff = 0;
    for (unsigned i = 0; i < phnum; i++)
        if (ph[i].type == 2 /* PT_DYNAMIC */)
            dynoff = ph[i].offset, dynsz = ph[i].filesz;
    dynsz -= dynsz % 16;
    if (dynsz == 0 || dynsz > sizeof dyn || !pread_all(fd, dyn, dynsz, dynoff))
        return 0;
    uint64_t strtab, soname = 0;
    if (!dyn_find(dyn, dynsz / 16, DT_SONAME, &strtab, &soname) || soname > (uint64_t)1 << 32)
        return 0;
    uint64_t at = strtab + soname;
    size_t nl = slen(name);
    for (unsigned i = 0; i < phnum; i++) {
        if (ph[i].type != 1 /* PT_LOAD */ || at < ph[i].vaddr || at - ph[i].vaddr + nl + 1 > ph[i].filesz)
            continue;
        char got[256];
        if (nl + 1 > sizeof got || !pread_all(fd, got, nl + 1, ph[i].offset + (at - ph[i].vaddr)))
            return 0;
        return got[nl] == 0 && starts(got, name, nl);
    }
    return 0;
}

/* A library the loader takes for `name` without looking further: an ELF header
 * glibc's open_verify accepts on x86_64 (ELF64, little-endian, current version, SYSV
 * or GNU ABI at ABI version 0, zero padding, ET_DYN, EM_X86_64, program headers of
 * the native size; a file of the other class would make it go on), whose soname is
 * `name` (see soname_is). */
static int loads_as(long fd, const char *name)
{
    unsigned char h[64];
    if (!pread_all(fd, h, sizeof h, 0))
        return 0;
    if (h[0] != 0x7f || h[1] != 'E' || h[2] != 'L' || h[3] != 'F' || h[4] != 2 || h[5] != 1 || h[6] != 1)
        return 0;
    if ((h[7] != 0 && h[7] != 3) || h[8] != 0)
        return 0;
    for (int i = 9; i < 16; i++)
        if (h[i])
            return 0;
    if (!(h[16] == 3 && h[17] == 0 && h[18] == 62 && h[19] == 0 && h[20] == 1 && !h[21] && !h[22] && !h[23] && h[54] == 56 && h[55] == 0))
        return 0;
    return soname_is(fd, h, name);
}

/* Directory `dir` (`dl` bytes) of the search, for library `name`: 1 it is there
 * (`out` holds DIR/NAME), 0 it is not (nor the directory), -1 leave the search to the
 * loader. `store` is the host store, opened as the root RESOLVE_BENEATH keeps to. */
static int try_dir(long store, const char *dir, size_t dl, const char *name, char *out)
{
    size_t nl = slen(name);
    /* A directory below the store, and a path the kernel takes. */
    if (dl <= STORE_LEN + 1 || !starts(dir, STORE "/", STORE_LEN + 1) || dl + 1 + nl + 1 > PATH_MAX_)
        return -1;
    for (size_t i = 0; i < dl; i++) {
        if (dir[i] == '$')
            return -1;
        out[i] = dir[i];
    }
    out[dl] = '/';
    for (size_t i = 0; i <= nl; i++)
        out[dl + 1 + i] = name[i];
    char host[PATH_MAX_];
    size_t ls;
    if (!translate(out, host, &ls) || ls != host_store_len + (dl - STORE_LEN))
        return -1;
    const char *rel = out + STORE_LEN + 1; /* below the store: "HASH-NAME/lib/NAME" */
    out[dl] = 0;
    struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
    long d = fast6(SYS_openat2, store, (long)rel, (long)&how, sizeof how, 0);
    out[dl] = '/';
    if (d == -ENOENT)
        return 0;
    if (d < 0)
        return -1;
    int k = 0;
    for (size_t i = 0; i < sizeof SUBDIRS / sizeof SUBDIRS[0] && k == 0; i++) {
        struct stat st;
        long s = fast6(SYS_newfstatat, d, (long)SUBDIRS[i], (long)&st, AT_SYMLINK_NOFOLLOW, 0);
        if (s != -ENOENT)
            k = -1;
    }
    close_fd((int)d);
    if (k)
        return k;
    how.flags = O_CLOEXEC; /* O_RDONLY */
    long f = fast6(SYS_openat2, store, (long)rel, (long)&how, sizeof how, 0);
    if (f == -ENOENT)
        return 0;
    if (f < 0)
        return -1;
    k = loads_as(f, name) ? 1 : -1;
    close_fd((int)f);
    return k;
}

char *la_objsearch(const char *name, uintptr_t *ck, unsigned int flag)
{
    /* The loader copies the name it is given back (a DST expansion, or strdup); the
     * search runs under its lock. */
    static char found[PATH_MAX_];
    if (flag != LA_SER_ORIG || !on() || !ck || !name || !name[0])
        return (char *)name;
    /* A name with a slash is the loader's to open (and before glibc 2.35 a dlmopen
     * of one into a new namespace comes with no valid cookie: this check must stay
     * before *ck is read). A `$` would be expanded once the answer has a slash (a
     * dynamic string token), where the name without one is searched as it is. */
    for (const char *c = name; *c; c++)
        if (*c == '/' || *c == '$')
            return (char *)name;
    const char *runpath = dyn_str((const struct lmap *)*ck, DT_RUNPATH);
    if (!runpath)
        return (char *)name;
    if (no_openat2)
        return (char *)name;
    long store = open_store();
    if (store < 0) {
        openat2_missing(store);
        return (char *)name;
    }
    int k = 0;
    for (const char *p = runpath; k == 0;) {
        const char *end = p;
        while (*end && *end != ':')
            end++;
        k = try_dir(store, p, (size_t)(end - p), name, found);
        if (!*end)
            break;
        p = end + 1;
    }
    close_fd((int)store);
    return k == 1 ? found : (char *)name;
}
