/* getcwd(2) after chdir: usage getcwd DIR... ; chdir to each DIR in turn (relative
 * ones relative to the previous) and print getcwd, or the errno name.
 * Also checks the small-buffer errors: a buffer one byte too short must give ERANGE,
 * exactly as for the real path. */
#include "common.h"
#include <limits.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char buf[PATH_MAX + 1];
    for (int i = 1; i < argc; i++) {
        if (chdir(argv[i])) {
            printf("chdir %s: %s\n", argv[i], errname(errno));
            continue;
        }
        /* Raw syscall: returns the length including the NUL. */
        long n = syscall(SYS_getcwd, buf, sizeof buf);
        if (n < 0) {
            printf("getcwd: %s\n", errname(errno));
            continue;
        }
        printf("%s len=%ld", buf, n);
        long short_n = syscall(SYS_getcwd, buf, (size_t)(n - 1));
        printf(" short=%s\n", short_n < 0 ? errname(errno) : "OK");
    }
    return 0;
}
