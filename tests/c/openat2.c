/* openat2(2) by raw syscall (glibc has no wrapper).
 * Usage: openat2 DIR|- NAME RESOLVE[,RESOLVE...]
 *   DIR is opened O_PATH|O_DIRECTORY and used as dirfd ("-": AT_FDCWD);
 *   RESOLVE: none beneath in_root no_symlinks no_magiclinks no_xdev.
 * Prints "data=<first line>" and "path=<readlink /proc/self/fd/N>", or "err=ENAME". */
#include "common.h"
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: openat2 DIR|- NAME RESOLVE\n");
        return 2;
    }
    int dirfd = AT_FDCWD;
    if (strcmp(argv[1], "-") != 0) {
        dirfd = open(argv[1], O_PATH | O_DIRECTORY);
        if (dirfd < 0) DIE("open DIR");
    }
    struct open_how how = { .flags = O_RDONLY | O_CLOEXEC };
    char *spec = strdup(argv[3]);
    for (char *tok = strtok(spec, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "beneath")) how.resolve |= RESOLVE_BENEATH;
        else if (!strcmp(tok, "in_root")) how.resolve |= RESOLVE_IN_ROOT;
        else if (!strcmp(tok, "no_symlinks")) how.resolve |= RESOLVE_NO_SYMLINKS;
        else if (!strcmp(tok, "no_magiclinks")) how.resolve |= RESOLVE_NO_MAGICLINKS;
        else if (!strcmp(tok, "no_xdev")) how.resolve |= RESOLVE_NO_XDEV;
        else if (strcmp(tok, "none")) { fprintf(stderr, "bad resolve flag %s\n", tok); return 2; }
    }
    long fd = syscall(SYS_openat2, dirfd, argv[2], &how, sizeof how);
    if (fd < 0) {
        printf("err=%s\n", errname(errno));
        return 1;
    }
    char buf[PATH_MAX + 1];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0) DIE("read");
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    printf("data=%s\n", buf);
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%ld", fd);
    n = readlink(link, buf, sizeof buf - 1);
    if (n < 0) DIE("readlink fd");
    buf[n] = 0;
    printf("path=%s\n", buf);
    return 0;
}
