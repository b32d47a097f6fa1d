/* Listings through every way a program gets a directory's descriptor, for the tests
 * of ptnix's descriptor placement (tracer/src/listingfd.rs): ptnix keeps descriptors
 * of directories whose listing it changes at high numbers and stops getdents only
 * there, so each route below must still list the mount points.
 *
 *   listfd ROUTE DIR [N]
 *
 * ROUTE: open (the descriptor open returns), dup, dup2 N, dup3 N, fcntl N
 * (F_DUPFD_CLOEXEC with minimum N), inherit N (exec `listfd fd N` after dup2 to N),
 * fd N (list inherited descriptor N), rlimit (RLIMIT_NOFILE lowered to 16 first),
 * thread N (another thread does dup2 to N, a third lists N), pidfd (pidfd_getfd from
 * a child that opened DIR), file (opens DIR, then a file, and prints both numbers:
 * other directories and files keep the lowest free number), storm N [US] (opens and
 * lists DIR N times under a SIGALRM every US (50) microseconds whose handler makes
 * syscalls of its own, path syscalls included; prints the last listing and "signals
 * K"), mask (open, list, then "sigblk HEX" from /proc/self/status), tightstack (open
 * DIR, lower RLIMIT_NOFILE to 64, then dup it with the stack pointer 64 bytes above
 * an unmapped page; prints "dup ok"), ownthread N (another thread installs an
 * allow-all seccomp filter of its own first; then open, dup2 to N, list N), trapper
 * (a filter of its own traps fcntl(F_DUPFD*) with SIGSYS, whose handler counts; then
 * open, dup, list the copy, print "traps K").
 *
 * Prints "fd N" (the descriptor listed), then one name per line (getdents64), then
 * "end". Exit status 100 when a call fails.
 */
#include "common.h"
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile long alarms, traps;

static void on_sys(int sig) {
    (void)sig;
    traps++;
}

/* A filter of the caller's own: fcntl(F_DUPFD/F_DUPFD_CLOEXEC) gets `action`, the
 * rest is allowed. */
static void own_filter(unsigned action) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fcntl, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD_CLOEXEC, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
        DIE("own filter");
}

static void *installer(void *arg) {
    (void)arg;
    own_filter(SECCOMP_RET_ALLOW);
    return NULL;
}

static void on_alarm(int sig) {
    (void)sig;
    struct stat st;
    int e = errno;
    getppid();
    stat("/nix", &st);
    alarms++;
    errno = e;
}

static void list(int fd) {
    char buf[32768];
    printf("fd %d\n", fd);
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n < 0)
            DIE("getdents64");
        if (n == 0)
            break;
        for (long off = 0; off < n;) {
            unsigned short reclen = *(unsigned short *)(buf + off + 16);
            printf("%s\n", buf + off + 19);
            off += reclen;
        }
    }
    printf("end\n");
}

static int open_dir(const char *d) {
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        DIE("open");
    return fd;
}

static int target;
static int dir_fd;
static volatile int copied;

static void *copier(void *arg) {
    (void)arg;
    if (dup2(dir_fd, target) != target)
        DIE("dup2");
    copied = 1;
    return NULL;
}

static void *lister(void *arg) {
    (void)arg;
    while (!copied)
        usleep(1000);
    list(target);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: listfd ROUTE DIR [N]\n");
        return 2;
    }
    const char *route = argv[1], *dir = argv[2];
    int n = argc > 3 ? atoi(argv[3]) : 0;
    if (!strcmp(route, "open")) {
        list(open_dir(dir));
    } else if (!strcmp(route, "dup")) {
        int fd = open_dir(dir);
        int c = dup(fd);
        if (c < 0)
            DIE("dup");
        close(fd);
        list(c);
    } else if (!strcmp(route, "dup2") || !strcmp(route, "dup3")) {
        int fd = open_dir(dir);
        int r = !strcmp(route, "dup2") ? dup2(fd, n) : dup3(fd, n, O_CLOEXEC);
        if (r != n)
            DIE("dup2/dup3");
        close(fd);
        list(n);
    } else if (!strcmp(route, "fcntl")) {
        int fd = open_dir(dir);
        int c = fcntl(fd, F_DUPFD_CLOEXEC, n);
        if (c < n)
            DIE("fcntl");
        close(fd);
        list(c);
    } else if (!strcmp(route, "inherit")) {
        int fd = open_dir(dir);
        if (dup2(fd, n) != n)
            DIE("dup2");
        char num[16];
        snprintf(num, sizeof num, "%d", n);
        execl("/proc/self/exe", "listfd", "fd", "-", num, (char *)NULL);
        DIE("execl");
    } else if (!strcmp(route, "fd")) {
        list(n);
    } else if (!strcmp(route, "rlimit")) {
        struct rlimit rl = {16, 16};
        if (setrlimit(RLIMIT_NOFILE, &rl))
            DIE("setrlimit");
        list(open_dir(dir));
    } else if (!strcmp(route, "thread")) {
        dir_fd = open_dir(dir);
        target = n;
        pthread_t a, b;
        pthread_create(&b, NULL, lister, NULL);
        usleep(20000);
        pthread_create(&a, NULL, copier, NULL);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
    } else if (!strcmp(route, "pidfd")) {
        int p[2];
        if (pipe(p))
            DIE("pipe");
        pid_t child = fork();
        if (child == 0) {
            int fd = open_dir(dir);
            if (write(p[1], &fd, sizeof fd) != sizeof fd)
                DIE("write");
            pause();
            _exit(0);
        }
        int fd;
        if (read(p[0], &fd, sizeof fd) != sizeof fd)
            DIE("read");
        int pidfd = syscall(SYS_pidfd_open, child, 0);
        if (pidfd < 0)
            DIE("pidfd_open");
        int got = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
        if (got < 0)
            DIE("pidfd_getfd");
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        list(got);
    } else if (!strcmp(route, "storm")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGALRM, &sa, NULL);
        long us = argc > 4 ? atol(argv[4]) : 50;
        struct itimerval it = {{0, us}, {0, us}};
        setitimer(ITIMER_REAL, &it, NULL);
        int out = dup(1);
        for (int i = 0; i < n; i++) {
            int fd = open_dir(dir);
            /* All but the last listing go nowhere. */
            if (i < n - 1 && freopen("/dev/null", "w", stdout) == NULL)
                DIE("freopen");
            if (i == n - 1) {
                fflush(stdout);
                dup2(out, 1);
            }
            list(fd);
            fflush(stdout);
            close(fd);
        }
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, NULL);
        printf("signals %ld\n", alarms);
    } else if (!strcmp(route, "mask")) {
        list(open_dir(dir));
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, "SigBlk:", 7))
                printf("sigblk %s", line + 7 + strspn(line + 7, "\t "));
    } else if (!strcmp(route, "tightstack")) {
        int fd = open_dir(dir);
        struct rlimit rl = {64, 64};
        if (setrlimit(RLIMIT_NOFILE, &rl))
            DIE("setrlimit");
        char *area = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (area == MAP_FAILED || mprotect(area, 4096, PROT_NONE))
            DIE("mmap");
        char *sp = area + 4096 + 64;
        long r;
        __asm__ volatile("mov %%rsp, %%r12\n\tmov %2, %%rsp\n\tsyscall\n\tmov %%r12, %%rsp"
                         : "=a"(r)
                         : "a"((long)SYS_dup), "r"(sp), "D"((long)fd)
                         : "rcx", "r11", "r12", "memory");
        if (r < 0) {
            errno = (int)-r;
            DIE("dup");
        }
        printf("dup ok\n");
    } else if (!strcmp(route, "ownthread")) {
        pthread_t t;
        pthread_create(&t, NULL, installer, NULL);
        pthread_join(t, NULL);
        int fd = open_dir(dir);
        if (dup2(fd, n) != n)
            DIE("dup2");
        list(n);
    } else if (!strcmp(route, "trapper")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sys;
        sigaction(SIGSYS, &sa, NULL);
        own_filter(SECCOMP_RET_TRAP);
        int fd = open_dir(dir);
        int c = dup(fd);
        if (c < 0)
            DIE("dup");
        list(c);
        printf("traps %ld\n", traps);
    } else if (!strcmp(route, "file")) {
        int d = open_dir(dir);
        int f = open("/proc/self/status", O_RDONLY);
        if (f < 0)
            DIE("open file");
        printf("dir %d file %d\n", d, f);
    } else {
        fprintf(stderr, "unknown route %s\n", route);
        return 2;
    }
    return 0;
}
