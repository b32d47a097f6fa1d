/* Things that would change what "/" means to the tracee, which ptnix must refuse with
 * EPERM (an unprivileged user can create a user namespace natively, then mount and
 * chroot inside it). Prints one "<op> <ENAME|OK>" line per attempt. */
#include "common.h"
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *op, long r) {
    printf("%s %s\n", op, r < 0 ? errname(errno) : "OK");
    fflush(stdout);
}

/* A raw clone/clone3 that succeeded: the child exits at once, the parent reaps it. */
static void reap(long r) {
    if (r == 0) _exit(0);
    if (r > 0) waitpid((pid_t)r, NULL, 0);
}

int main(void) {
    report("unshare_user", unshare(CLONE_NEWUSER));
    report("unshare_user_mnt", unshare(CLONE_NEWUSER | CLONE_NEWNS));
    report("unshare_mnt", unshare(CLONE_NEWNS));

    long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    report("clone_user", r);
    reap(r);

    struct clone_args ca = { .flags = CLONE_NEWUSER, .exit_signal = SIGCHLD };
    r = syscall(SYS_clone3, &ca, sizeof ca);
    /* clone3 may be refused wholesale (ENOSYS makes glibc fall back to clone). */
    if (r < 0 && errno == ENOSYS) errno = EPERM;
    report("clone3_user", r);
    reap(r);

    report("chroot", chroot("/"));
    report("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    report("setns", syscall(SYS_setns, 0, CLONE_NEWUSER));
    /* io_uring_setup(8, params): a ring's operations (openat, statx, ...) never pass
     * through seccomp. */
    char params[120] = {0};
    long ring = syscall(425, 8, params);
    report("io_uring_setup", ring);
    return 0;
}
