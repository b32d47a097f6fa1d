/* Forks N children at once; child i opens and reads FILE (a /nix path: translation
 * must work in every new process) and exits with status i % 200. The parent checks
 * every status. Usage: forks N FILE ; prints "forked N bad B". */
#include "common.h"
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int n = atoi(argv[1]), bad = 0;
    pid_t *pids = calloc(n, sizeof *pids);
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) DIE("fork");
        if (pid == 0) {
            int fd = open(argv[2], O_RDONLY);
            char c;
            if (fd < 0) _exit(250);
            if (read(fd, &c, 1) != 1 || c != 'x') _exit(251);
            _exit(i % 200);
        }
        pids[i] = pid;
    }
    for (int i = 0; i < n; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) != pids[i]) DIE("waitpid");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != i % 200) {
            if (bad++ < 10) fprintf(stderr, "child %d: raw status 0x%x, want exit %d\n", i, st, i % 200);
        }
    }
    printf("forked %d bad %d\n", n, bad);
    return bad != 0;
}
