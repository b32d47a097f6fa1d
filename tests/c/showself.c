/* How an exec'd program sees itself, for store programs started through their /nix
 * loader: argv[0], /proc/self/exe, AT_EXECFN, then each argument.
 *   argv0=<argv[0]>  exe=<readlink /proc/self/exe>  execfn=<AT_EXECFN>  arg=<each>
 * Arguments with an effect (after printing):
 *   exit=N    exit with status N
 *   signal=N  raise signal N (default action)
 *   reexec    execv("/proc/self/exe", {"reexeced", "again"}) */
#include "common.h"
#include <limits.h>
#include <signal.h>
#include <sys/auxv.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char buf[PATH_MAX + 1];
    int code = 0, sig = 0, reexec = 0;
    printf("argv0=%s\n", argv[0]);
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n < 0) DIE("readlink /proc/self/exe");
    buf[n] = 0;
    printf("exe=%s\n", buf);
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    printf("execfn=%s\n", execfn ? execfn : "(none)");
    for (int i = 1; i < argc; i++) {
        printf("arg=%s\n", argv[i]);
        if (strncmp(argv[i], "exit=", 5) == 0) code = atoi(argv[i] + 5);
        if (strncmp(argv[i], "signal=", 7) == 0) sig = atoi(argv[i] + 7);
        if (strcmp(argv[i], "reexec") == 0) reexec = 1;
    }
    fflush(stdout);
    if (reexec) {
        char *args[] = {"reexeced", "again", NULL};
        execv("/proc/self/exe", args);
        printf("reexec failed: %s\n", errname(errno));
        return 100;
    }
    if (sig) {
        signal(sig, SIG_DFL);
        raise(sig);
        printf("survived signal %d\n", sig);
        return 101;
    }
    return code;
}
