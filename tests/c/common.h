/* Shared helpers for the test programs: errno names (tests compare them exactly,
 * independent of the C library's message wording) and failing loudly. */
#ifndef PTNIX_TEST_COMMON_H
#define PTNIX_TEST_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *errname(int e) {
    switch (e) {
#define E(x) case x: return #x;
        E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(EBADF) E(ECHILD) E(EAGAIN)
        E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENOTDIR)
        E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ETXTBSY) E(EFBIG) E(ENOSPC)
        E(EROFS) E(EMLINK) E(ERANGE) E(ENAMETOOLONG) E(ENOSYS) E(ENOTEMPTY)
        E(ELOOP) E(EADDRINUSE) E(ECONNREFUSED) E(ENOEXEC) E(E2BIG) E(EOPNOTSUPP)
        E(ENOTSOCK) E(EAFNOSUPPORT)
#undef E
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno%d", e);
        return buf;
    }
    }
}

#define DIE(what) do { \
        fprintf(stderr, "%s: %s failed: %s\n", __FILE__, what, errname(errno)); \
        exit(100); \
    } while (0)

#endif
