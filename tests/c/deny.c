/* Runs a program under a seccomp filter that fails the given syscalls with EPERM, as
 * a locked-down container's policy does:
 *   deny NR[,NR...] PROGRAM ARGS...
 * (x86_64 numbers; ptrace is 101, process_vm_readv 310, seccomp 317.) */
#include "common.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: deny NR[,NR...] PROGRAM ARGS...\n");
        return 2;
    }
    struct sock_filter f[64];
    int n = 0;
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (char *p = argv[1]; *p && n < 60;) {
        long nr = strtol(p, &p, 10);
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
        if (*p == ',') p++;
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {(unsigned short)n, f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) DIE("PR_SET_NO_NEW_PRIVS");
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) DIE("PR_SET_SECCOMP");
    execv(argv[2], argv + 2);
    DIE("execv");
}
