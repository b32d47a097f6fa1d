/* What one statx costs when a seccomp user-notification supervisor answers it,
 * against the same call natively and under ptnix (see benches/probe/run). This is
 * the measurement behind README "Not yet": it decides whether moving the stat family
 * from ptrace stops to SECCOMP_RET_USER_NOTIF is worth it.
 *
 *   notif native   ROOT N CPU      statx(ROOT/nix/store/probe) N times, no filter
 *   notif plain    ROOT N CPU      statx("/nix/store/probe") N times, no filter (run
 *                                  it under `ptnix run --store ROOT`)
 *   notif continue ROOT N CPU SCPU the supervisor reads the path and answers
 *                                  SECCOMP_USER_NOTIF_FLAG_CONTINUE (the kernel then
 *                                  runs the call: the case of a path that needs no
 *                                  translation); the caller stats ROOT/nix/store/probe
 *   notif emulate  ROOT N CPU SCPU the caller stats "/nix/store/probe"; the supervisor
 *                                  reads the path, prepends ROOT, calls statx itself,
 *                                  writes the result into the caller's buffer and
 *                                  answers with its return value
 *
 * CPU and SCPU: the CPUs the caller and the supervisor are pinned to. Prints
 * "MODE ns-per-call". Needs Linux 5.5 (CONTINUE) and no_new_privs (set here).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DIE(what) do { perror(what); exit(1); } while (0)

static void pin(int cpu) {
    if (cpu < 0)
        return; /* unpinned */
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (sched_setaffinity(0, sizeof s, &s))
        DIE("sched_setaffinity");
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

/* The caller: N statx calls of `path`, timed. */
static void calls(const char *mode, const char *path, long n) {
    struct statx sx;
    if (syscall(SYS_statx, AT_FDCWD, path, 0, STATX_BASIC_STATS, &sx))
        DIE("statx (first call)");
    double t = now();
    for (long i = 0; i < n; i++)
        if (syscall(SYS_statx, AT_FDCWD, path, 0, STATX_BASIC_STATS, &sx))
            DIE("statx");
    printf("%s %.0f\n", mode, (now() - t) / n);
}

static void send_fd(int sock, int fd) {
    char buf[CMSG_SPACE(sizeof(int))] = {0};
    char one = 1;
    struct iovec io = {&one, 1};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    if (sendmsg(sock, &m, 0) != 1)
        DIE("sendmsg");
}

static int recv_fd(int sock) {
    char buf[CMSG_SPACE(sizeof(int))];
    char one;
    struct iovec io = {&one, 1};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf};
    if (recvmsg(sock, &m, 0) != 1)
        DIE("recvmsg");
    int fd;
    memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
    return fd;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: notif MODE ROOT N CPU [SCPU]\n");
        return 2;
    }
    const char *mode = argv[1], *root = argv[2];
    long n = atol(argv[3]);
    char host[4096];
    snprintf(host, sizeof host, "%s/nix/store/probe", root);
    pin(atoi(argv[4]));
    if (!strcmp(mode, "native")) {
        calls(mode, host, n);
        return 0;
    }
    if (!strcmp(mode, "plain")) {
        calls(mode, "/nix/store/probe", n);
        return 0;
    }
    int emulate = !strcmp(mode, "emulate");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        DIE("socketpair");
    pid_t child = fork();
    if (child == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_statx, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {4, f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
            DIE("no_new_privs");
        int l = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        if (l < 0)
            DIE("seccomp");
        send_fd(sv[0], l);
        close(l);
        calls(mode, emulate ? "/nix/store/probe" : host, n);
        fflush(stdout);
        _exit(0);
    }
    pin(argc > 5 ? atoi(argv[5]) : atoi(argv[4]));
    int l = recv_fd(sv[1]);
    /* Linux 6.6: wake the caller, and the supervisor, on the waker's CPU. */
    if (getenv("NOTIF_SYNC") && ioctl(l, _IOW('!', 4, __u64), 1UL))
        DIE("NOTIF_SET_FLAGS");
    struct seccomp_notif_sizes sz;
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz))
        DIE("GET_NOTIF_SIZES");
    struct seccomp_notif *req = calloc(1, sz.seccomp_notif);
    struct seccomp_notif_resp *resp = calloc(1, sz.seccomp_notif_resp);
    size_t rootlen = strlen(root);
    for (long i = 0; i <= n; i++) {
        memset(req, 0, sz.seccomp_notif);
        if (ioctl(l, SECCOMP_IOCTL_NOTIF_RECV, req))
            DIE("NOTIF_RECV");
        /* The path, as a supervisor must read it. */
        char path[4096];
        memcpy(path, root, rootlen);
        struct iovec local = {path + rootlen, sizeof path - rootlen - 1}, remote = {(void *)req->data.args[1], 256};
        ssize_t got = process_vm_readv(req->pid, &local, 1, &remote, 1, 0);
        if (got <= 0)
            DIE("process_vm_readv");
        path[rootlen + got] = 0;
        if (ioctl(l, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id))
            DIE("NOTIF_ID_VALID");
        memset(resp, 0, sz.seccomp_notif_resp);
        resp->id = req->id;
        if (emulate) {
            struct statx sx;
            long r = syscall(SYS_statx, AT_FDCWD, path, (int)req->data.args[2], (unsigned)req->data.args[3], &sx);
            if (r == 0) {
                struct iovec from = {&sx, sizeof sx}, to = {(void *)req->data.args[4], sizeof sx};
                if (process_vm_writev(req->pid, &from, 1, &to, 1, 0) != sizeof sx)
                    r = -EFAULT;
            } else {
                r = -errno;
            }
            resp->val = r < 0 ? 0 : r;
            resp->error = r < 0 ? (int)r : 0;
        } else {
            resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        }
        if (ioctl(l, SECCOMP_IOCTL_NOTIF_SEND, resp))
            DIE("NOTIF_SEND");
    }
    int status;
    waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
