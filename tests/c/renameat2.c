/* renameat2(2) by raw syscall.
 * Usage: renameat2 OLDDIR|- OLD NEWDIR|- NEW none|noreplace|exchange
 * DIRs are opened O_PATH|O_DIRECTORY ("-": AT_FDCWD). Prints "ok" or "err=ENAME". */
#include "common.h"
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/syscall.h>
#include <unistd.h>

static int dir(const char *p) {
    if (!strcmp(p, "-")) return AT_FDCWD;
    int fd = open(p, O_PATH | O_DIRECTORY);
    if (fd < 0) DIE("open DIR");
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: renameat2 OLDDIR OLD NEWDIR NEW none|noreplace|exchange\n");
        return 2;
    }
    unsigned flags = 0;
    if (!strcmp(argv[5], "noreplace")) flags = RENAME_NOREPLACE;
    else if (!strcmp(argv[5], "exchange")) flags = RENAME_EXCHANGE;
    else if (strcmp(argv[5], "none")) return 2;
    int od = dir(argv[1]), nd = dir(argv[3]);
    if (syscall(SYS_renameat2, od, argv[2], nd, argv[4], flags)) {
        printf("err=%s\n", errname(errno));
        return 1;
    }
    printf("ok\n");
    return 0;
}
