/* How an exec'd program sees itself, for store programs started through their /nix
 * loader: argv[0], /proc/self/exe, AT_EXECFN, then each argument.
 *   argv0=<argv[0]>  exe=<readlink /proc/self/exe>  execfn=<AT_EXECFN>  arg=<each>
 * Arguments with an effect (after printing):
 *   exit=N    exit with status N
 *   signal=N  raise signal N (default action)
 *   reexec    execv("/proc/self/exe", {"reexeced", "again"})
 *   ident     print what /proc says of this process: cmdline=<each arg, then |>,
 *             comm=<comm>, stat=<the name in stat> state=<its state>,
 *             status=<the Name: line's value> */
#include "common.h"
#include <limits.h>
#include <signal.h>
#include <sys/auxv.h>
#include <unistd.h>

/* The whole of a small /proc file, NUL-terminated. */
static size_t slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) DIE(path);
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return n;
}

static void ident(void) {
    char buf[8192];
    size_t n = slurp("/proc/self/cmdline", buf, sizeof buf);
    printf("cmdline=");
    for (size_t i = 0; i < n; i++) putchar(buf[i] ? buf[i] : '|');
    slurp("/proc/self/comm", buf, sizeof buf);
    printf("\ncomm=%s", buf);
    slurp("/proc/self/stat", buf, sizeof buf);
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close) DIE("stat");
    printf("stat=%.*s state=%c\n", (int)(close - open - 1), open + 1, close[2]);
    slurp("/proc/self/status", buf, sizeof buf);
    char *nl = strchr(buf, '\n');
    if (strncmp(buf, "Name:\t", 6) != 0 || !nl) DIE("status");
    printf("status=%.*s\n", (int)(nl - buf - 6), buf + 6);
}

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
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "ident") == 0) ident();
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
