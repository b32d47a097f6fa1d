/* execveat(2) by raw syscall.
 * Usage: execveat dir DIR NAME [ARGS...]      execveat(open(DIR), NAME, [NAME, ARGS])
 *        execveat nofollow DIR NAME [ARGS...] the same with AT_SYMLINK_NOFOLLOW
 *        execveat fd FILE [ARGS...]           execveat(open(FILE), "", ..., AT_EMPTY_PATH)
 * Prints "err=ENAME" and exits 1 if execveat returns. */
#include "common.h"
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: execveat dir|nofollow DIR NAME [ARGS] | fd FILE [ARGS]\n");
        return 2;
    }
    if (!strcmp(argv[1], "fd")) {
        int fd = open(argv[2], O_RDONLY); /* not O_CLOEXEC: scripts need /dev/fd/N */
        if (fd < 0) DIE("open FILE");
        syscall(SYS_execveat, fd, "", &argv[2], environ, AT_EMPTY_PATH);
    } else {
        if (argc < 4) return 2;
        int flags = !strcmp(argv[1], "nofollow") ? AT_SYMLINK_NOFOLLOW : 0;
        int dirfd = open(argv[2], O_PATH | O_DIRECTORY);
        if (dirfd < 0) DIE("open DIR");
        syscall(SYS_execveat, dirfd, argv[3], &argv[3], environ, flags);
    }
    printf("err=%s\n", errname(errno));
    return 1;
}
