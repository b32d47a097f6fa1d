/* Directory listings as programs read them, for the getdents rewriting tests.
 *
 *   listdir readdir DIR          opendir/readdir: "NAME INO TYPE" per entry
 *   listdir raw64 DIR SIZE|min   getdents64 with a SIZE-byte buffer: "NAME INO TYPE OFF"
 *                                per record, then "eof" (two more calls at the end must
 *                                return 0). "min": one record per call, each read with
 *                                the smallest buffer that holds it (8 bytes less must
 *                                fail with EINVAL, without moving the position).
 *   listdir raw DIR SIZE|min     the same with the old getdents(2) record format
 *   listdir rewind DIR           rewinddir, telldir/seekdir to every position,
 *                                lseek(fd, 0 or a record's d_off, SEEK_SET) and
 *                                re-reading the same fd to EOF twice: every
 *                                continuation must be the first pass's. Prints the
 *                                raw listing, then "rewind ok N".
 *   listdir dup DIR              for every split K: read K records, dup the fd, close
 *                                the first, read the rest from the copy. "dup ok N"
 *   listdir fork DIR             for every split K: read K records, fork; the child
 *                                reads the rest of the shared fd; the parent then finds
 *                                it at EOF, and after lseek 0 reads everything. "fork ok N"
 *   listdir exec DIR K           prints K records read one at a time, then execs
 *                                "listdir cont FD" on the still-open fd
 *   listdir cont FD              prints the rest of an inherited fd, "eof", then
 *                                "again N" (records after lseek 0)
 *
 * Every buffer is checked for writes past the returned length, every record for the
 * kernel's exact d_reclen. Failures go to stderr with exit status 1 (100: a call failed).
 */
#include "common.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUFSZ 65536
#define GUARD 0xA5
#define MAXREC 20000

struct rec {
    char name[256];
    uint64_t ino;
    unsigned type;
    int64_t off;
};

static int old_format; /* 1: getdents(2), 0: getdents64(2) */
static unsigned char buf[BUFSZ];

static long call(int fd, size_t n) {
    memset(buf, GUARD, sizeof buf);
    long r = syscall(old_format ? SYS_getdents : SYS_getdents64, fd, buf, n);
    if (r > 0) {
        for (size_t i = r; i < sizeof buf; i++)
            if (buf[i] != GUARD) {
                fprintf(stderr, "byte %zu written past the returned length %ld (buffer %zu)\n", i, r, n);
                exit(1);
            }
        if ((size_t)r > n) {
            fprintf(stderr, "returned %ld bytes for a %zu-byte buffer\n", r, n);
            exit(1);
        }
    } else if (r == 0) {
        for (size_t i = 0; i < sizeof buf; i++)
            if (buf[i] != GUARD) {
                fprintf(stderr, "returned 0 but wrote byte %zu\n", i);
                exit(1);
            }
    }
    return r;
}

static size_t want_reclen(size_t namelen) {
    size_t raw = old_format ? 18 + namelen + 2 : 19 + namelen + 1;
    return (raw + 7) & ~(size_t)7;
}

/* Parses `len` bytes of records into out[]; returns their number. */
static int parse(long len, struct rec *out, int max) {
    int n = 0;
    long at = 0;
    size_t hdr = old_format ? 18 : 19;
    while (at < len) {
        unsigned char *r = buf + at;
        uint16_t reclen;
        memcpy(&reclen, r + 16, 2);
        if (reclen < hdr + 1 || at + reclen > len || reclen % 8) {
            fprintf(stderr, "bad d_reclen %u at %ld of %ld\n", reclen, at, len);
            exit(1);
        }
        if (n == max) {
            fprintf(stderr, "too many records\n");
            exit(1);
        }
        struct rec *e = &out[n++];
        memcpy(&e->ino, r, 8);
        memcpy(&e->off, r + 8, 8);
        const char *name = (const char *)r + hdr;
        size_t area = reclen - hdr - (old_format ? 1 : 0);
        size_t nl = strnlen(name, area);
        if (nl == area || nl == 0 || nl > 255) {
            fprintf(stderr, "name not terminated in its record (reclen %u)\n", reclen);
            exit(1);
        }
        memcpy(e->name, name, nl);
        e->name[nl] = 0;
        e->type = old_format ? r[reclen - 1] : r[18];
        if (reclen != want_reclen(nl)) {
            fprintf(stderr, "record %s: d_reclen %u, the kernel would use %zu\n", e->name, reclen, want_reclen(nl));
            exit(1);
        }
        at += reclen;
    }
    return n;
}

/* One record, read with the smallest buffer that holds it. Returns 0 at the end. */
static int read_one(int fd, struct rec *e) {
    for (size_t size = 8; size <= 4096; size += 8) {
        long r = call(fd, size);
        if (r < 0) {
            if (errno != EINVAL) DIE("getdents (small buffer)");
            continue;
        }
        if (r == 0) {
            if (size != 8) {
                fprintf(stderr, "EINVAL with smaller buffers, then end of directory with %zu bytes\n", size);
                exit(1);
            }
            return 0;
        }
        struct rec tmp[2];
        int n = parse(r, tmp, 2);
        if (n != 1 || (size_t)r != size) {
            fprintf(stderr, "a %zu-byte buffer (the smallest accepted) got %d records, %ld bytes\n", size, n, r);
            exit(1);
        }
        *e = tmp[0];
        return 1;
    }
    fprintf(stderr, "no buffer up to 4096 bytes was accepted\n");
    exit(1);
}

/* Reads to the end with `size`-byte buffers (0: one record at a time). */
static int read_rest(int fd, size_t size, struct rec *out, int max) {
    int n = 0;
    for (;;) {
        if (size == 0) {
            if (n == max) {
                fprintf(stderr, "too many records\n");
                exit(1);
            }
            if (!read_one(fd, &out[n])) return n;
            n++;
            continue;
        }
        long r = call(fd, size);
        if (r < 0) DIE("getdents");
        if (r == 0) return n;
        n += parse(r, out + n, max - n);
    }
}

static void expect_eof(int fd, const char *when) {
    long r = call(fd, 32768);
    if (r != 0) {
        fprintf(stderr, "%s: getdents returned %ld (%s), not end of directory\n", when, r, r < 0 ? errname(errno) : "records");
        exit(1);
    }
}

static int same(const struct rec *a, const struct rec *b) {
    return strcmp(a->name, b->name) == 0 && a->ino == b->ino && a->type == b->type && a->off == b->off;
}

static void compare(const char *what, long k, const struct rec *got, int ng, const struct rec *want, int nw) {
    int bad = ng != nw;
    for (int i = 0; !bad && i < ng; i++) bad = !same(&got[i], &want[i]);
    if (!bad) return;
    fprintf(stderr, "%s (%ld): got %d records, want %d\n", what, k, ng, nw);
    for (int i = 0; i < ng || i < nw; i++)
        fprintf(stderr, "  %-30s | %s\n", i < ng ? got[i].name : "-", i < nw ? want[i].name : "-");
    exit(1);
}

static void print(const struct rec *e) {
    printf("%s %llu %u %lld\n", e->name, (unsigned long long)e->ino, e->type, (long long)e->off);
}

static int open_dir(const char *d) {
    int fd = open(d, O_RDONLY | O_DIRECTORY); /* no O_CLOEXEC: exec inherits it */
    if (fd < 0) DIE("open");
    return fd;
}

static struct rec ref[MAXREC], got[MAXREC];

/* The reference listing, one record per call. */
static int reference(const char *d) {
    int fd = open_dir(d);
    int n = read_rest(fd, 0, ref, MAXREC);
    close(fd);
    return n;
}

static int rewind_checks(const char *d) {
    /* The libc interface: telldir/seekdir/rewinddir. */
    DIR *dir = opendir(d);
    if (!dir) DIE("opendir");
    static long pos[MAXREC + 1];
    static struct rec first[MAXREC];
    int n = 0;
    pos[0] = telldir(dir);
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(dir);
        if (!e) {
            if (errno) DIE("readdir");
            break;
        }
        if (n == MAXREC) DIE("too many entries");
        snprintf(first[n].name, sizeof first[n].name, "%s", e->d_name);
        first[n].ino = e->d_ino;
        first[n].type = e->d_type;
        first[n].off = 0;
        pos[++n] = telldir(dir);
    }
    for (int pass = 0; pass < 2; pass++) {
        errno = 0;
        if (readdir(dir) != NULL || errno) {
            fprintf(stderr, "readdir after the end (%d) returned an entry or failed\n", pass);
            exit(1);
        }
    }
    for (int round = 0; round < 2; round++) {
        rewinddir(dir);
        int m = 0;
        struct dirent *e;
        while ((e = readdir(dir))) {
            snprintf(got[m].name, sizeof got[m].name, "%s", e->d_name);
            got[m].ino = e->d_ino;
            got[m].type = e->d_type;
            got[m].off = 0;
            m++;
        }
        compare("after rewinddir", round, got, m, first, n);
    }
    /* Every position, in an order that is not the natural one. */
    for (int j = 0; j <= n; j++) {
        int i = (j % 2) ? n - j / 2 : j / 2; /* 0, n, 1, n-1, ... */
        seekdir(dir, pos[i]);
        int m = 0;
        struct dirent *e;
        while ((e = readdir(dir))) {
            snprintf(got[m].name, sizeof got[m].name, "%s", e->d_name);
            got[m].ino = e->d_ino;
            got[m].type = e->d_type;
            got[m].off = 0;
            m++;
        }
        compare("after seekdir to the position before entry", i, got, m, first + i, n - i);
    }
    closedir(dir);

    /* The raw interface: the same fd read to the end again and again. */
    int fd = open_dir(d);
    int nr = read_rest(fd, 32768, ref, MAXREC);
    expect_eof(fd, "second pass after the end");
    expect_eof(fd, "third pass after the end");
    if (nr != n) {
        fprintf(stderr, "readdir saw %d entries, getdents64 %d\n", n, nr);
        exit(1);
    }
    for (int i = 0; i < n; i++)
        if (strcmp(ref[i].name, first[i].name) || ref[i].ino != first[i].ino || ref[i].type != first[i].type) {
            fprintf(stderr, "readdir and getdents64 disagree at %d: %s %s\n", i, ref[i].name, first[i].name);
            exit(1);
        }
    for (int round = 0; round < 2; round++) {
        if (lseek(fd, 0, SEEK_SET) != 0) DIE("lseek 0");
        int m = read_rest(fd, round ? 0 : 32768, got, MAXREC);
        compare("after lseek 0", round, got, m, ref, nr);
        expect_eof(fd, "after the end, after lseek 0");
    }
    for (int j = 0; j < nr; j++) {
        int i = (j % 2) ? nr - 1 - j / 2 : j / 2;
        if (lseek(fd, ref[i].off, SEEK_SET) < 0) DIE("lseek d_off");
        int m = read_rest(fd, (j % 2) ? 0 : 32768, got, MAXREC);
        compare("after lseek to the d_off of record", i, got, m, ref + i + 1, nr - i - 1);
        expect_eof(fd, "after lseek to a d_off, at the end");
    }
    close(fd);
    for (int i = 0; i < nr; i++) print(&ref[i]);
    printf("rewind ok %d\n", nr);
    return 0;
}

static int dup_checks(const char *d) {
    int n = reference(d);
    for (int k = 0; k <= n; k++) {
        int fd = open_dir(d);
        int a = 0;
        for (; a < k; a++)
            if (!read_one(fd, &got[a])) break;
        int fd2 = (k % 2) ? dup(fd) : fcntl(fd, F_DUPFD, 40 + k);
        if (fd2 < 0) DIE("dup");
        close(fd);
        int m = a + read_rest(fd2, (k % 3) ? 32768 : 0, got + a, MAXREC - a);
        compare("dup after K records", k, got, m, ref, n);
        expect_eof(fd2, "dup'ed fd after the end");
        close(fd2);
    }
    printf("dup ok %d\n", n);
    return 0;
}

static int fork_checks(const char *d) {
    int n = reference(d);
    for (int k = 0; k <= n; k++) {
        int fd = open_dir(d);
        int a = 0;
        for (; a < k; a++)
            if (!read_one(fd, &got[a])) break;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) DIE("fork");
        if (pid == 0) {
            int m = a + read_rest(fd, (k % 2) ? 32768 : 0, got + a, MAXREC - a);
            compare("child after fork after K records", k, got, m, ref, n);
            expect_eof(fd, "child, after the end");
            _exit(0);
        }
        int st;
        if (waitpid(pid, &st, 0) != pid) DIE("waitpid");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "child for K=%d failed (status 0x%x)\n", k, st);
            exit(1);
        }
        expect_eof(fd, "parent after the child read to the end");
        if (lseek(fd, 0, SEEK_SET) != 0) DIE("lseek");
        int m = read_rest(fd, 32768, got, MAXREC);
        compare("parent after lseek 0", k, got, m, ref, n);
        close(fd);
    }
    printf("fork ok %d\n", n);
    return 0;
}

static size_t size_arg(const char *s) {
    return strcmp(s, "min") == 0 ? 0 : (size_t)atol(s);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *mode = argv[1];
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (strcmp(mode, "readdir") == 0) {
        DIR *dir = opendir(argv[2]);
        if (!dir) DIE("opendir");
        struct dirent *e;
        errno = 0;
        while ((e = readdir(dir))) printf("%s %llu %u\n", e->d_name, (unsigned long long)e->d_ino, e->d_type);
        if (errno) DIE("readdir");
        return 0;
    }
    if ((strcmp(mode, "raw64") == 0 || strcmp(mode, "raw") == 0) && argc == 4) {
        old_format = strcmp(mode, "raw") == 0;
        int fd = open_dir(argv[2]);
        int n = read_rest(fd, size_arg(argv[3]), ref, MAXREC);
        for (int i = 0; i < n; i++) print(&ref[i]);
        expect_eof(fd, "after the end");
        expect_eof(fd, "after the end, again");
        printf("eof\n");
        return 0;
    }
    if (strcmp(mode, "rewind") == 0) return rewind_checks(argv[2]);
    if (strcmp(mode, "dup") == 0) return dup_checks(argv[2]);
    if (strcmp(mode, "fork") == 0) return fork_checks(argv[2]);
    if (strcmp(mode, "exec") == 0 && argc == 4) {
        int fd = open_dir(argv[2]);
        int k = atoi(argv[3]);
        struct rec e;
        for (int i = 0; i < k && read_one(fd, &e); i++) print(&e);
        fflush(stdout);
        char fds[16];
        snprintf(fds, sizeof fds, "%d", fd);
        execl(argv[0], argv[0], "cont", fds, (char *)NULL);
        DIE("execl");
    }
    if (strcmp(mode, "cont") == 0) {
        int fd = atoi(argv[2]);
        int n = read_rest(fd, 32768, ref, MAXREC);
        for (int i = 0; i < n; i++) print(&ref[i]);
        expect_eof(fd, "inherited fd after the end");
        printf("eof\n");
        if (lseek(fd, 0, SEEK_SET) != 0) DIE("lseek");
        printf("again %d\n", read_rest(fd, 0, ref, MAXREC));
        return 0;
    }
    fprintf(stderr, "usage: see listdir.c\n");
    return 2;
}
