/* A tracee with a seccomp filter of its own, as Nix's builder installs one:
 *   ownfilter DIR
 * The filter fails mkdir with EPERM and asks a tracer (SECCOMP_RET_TRACE) for getppid
 * and symlink; without a tracer those fail with ENOSYS. Then, in DIR (where FILE holds
 * "content"): mkdir, getppid, symlink, open+read, stat, in this process and in a
 * forked child, which inherits the filter. One "<op> <result>" line each. */
#include "common.h"
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *who, const char *op, long r) {
    printf("%s %s %s\n", who, op, r < 0 ? errname(errno) : "OK");
}

static void ops(const char *who, const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/newdir-%s", dir, who);
    report(who, "mkdir", mkdir(p, 0755));
    report(who, "getppid", syscall(SYS_getppid));
    snprintf(p, sizeof p, "%s/link-%s", dir, who);
    report(who, "symlink", symlink("target", p));
    snprintf(p, sizeof p, "%s/FILE", dir);
    int fd = open(p, O_RDONLY);
    char buf[16] = {0};
    if (fd >= 0 && read(fd, buf, sizeof buf - 1) > 0) printf("%s read %s\n", who, buf);
    else report(who, "open", -1);
    if (fd >= 0) close(fd);
    struct stat st;
    report(who, "stat", stat(dir, &st));
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mkdir, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE | 0x1234),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_symlink, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE | 7),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) DIE("PR_SET_NO_NEW_PRIVS");
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) DIE("seccomp");
    ops("parent", argv[1]);
    pid_t c = fork();
    if (c == 0) {
        ops("child", argv[1]);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    return 0;
}
