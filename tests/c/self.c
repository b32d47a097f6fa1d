/* An exec target: prints how it sees itself, so tests can check that exec through
 * /nix worked and that /proc/self/exe and getcwd show guest paths.
 *   argv0=<argv[0]>  exe=<readlink /proc/self/exe>  cwd=<getcwd>  arg=<each arg>
 * An argument "exit=N" makes it exit with status N. */
#include "common.h"
#include <limits.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char buf[PATH_MAX + 1];
    int code = 0;
    printf("argv0=%s\n", argv[0]);
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n < 0) DIE("readlink /proc/self/exe");
    buf[n] = 0;
    printf("exe=%s\n", buf);
    if (!getcwd(buf, sizeof buf)) DIE("getcwd");
    printf("cwd=%s\n", buf);
    for (int i = 1; i < argc; i++) {
        printf("arg=%s\n", argv[i]);
        if (strncmp(argv[i], "exit=", 5) == 0) code = atoi(argv[i] + 5);
    }
    return code;
}
