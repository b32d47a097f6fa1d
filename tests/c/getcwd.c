/* getcwd(2) after chdir: usage getcwd DIR... ; chdir to each DIR in turn (relative
 * ones relative to the previous) and print getcwd, or the errno name.
 * Also checks buffer sizes against the guest path's length: exactly its length
 * (with the NUL) works, one byte less gives ERANGE, as on a real /nix. */
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
        /* A buffer of exactly the guest length must do (the host path is longer). */
        char exact[PATH_MAX + 1];
        long exact_n = syscall(SYS_getcwd, exact, (size_t)n);
        printf(" exact=%s", exact_n == n && !strcmp(exact, buf) ? "OK" : exact_n < 0 ? errname(errno) : "WRONG");
        long short_n = syscall(SYS_getcwd, exact, (size_t)(n - 1));
        printf(" short=%s\n", short_n < 0 ? errname(errno) : "OK");
    }
    return 0;
}
