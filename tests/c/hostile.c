/* Hostile or broken tracees. One "<what> <result>" line per check.
 *   hostile badptr DIR     paths and buffers at NULL, at 1, running off the end of the
 *                          mapping, in a PROT_NONE page: the kernel's own EFAULT; and
 *                          an EIO (a read of /proc/self/mem at an unmapped address)
 *   hostile flip DIR N     a thread flips a path between DIR/a and DIR/b while the
 *                          main thread opens it N times: each open reads "a" or "b"
 *   hostile bomb SECS EXTRA FILE
 *                          a fork bomb: every process forks as fast as it can until
 *                          EXTRA forks have been made in all (a counter in shared
 *                          memory), or SECS seconds have passed; RLIMIT_NPROC is a
 *                          second bound. Every process stats FILE
 *   hostile selftrace      ptrace from a tracee: PTRACE_TRACEME in a child, and
 *                          PTRACE_SEIZE of a child
 *   hostile threads N FILE N threads each stat FILE, then all wait at one barrier
 *                          until every one has
 *   hostile eintr N FILE   N rounds of stat, access, getxattr and open of FILE under
 *                          a SIGALRM every 100 us whose handler is installed without
 *                          SA_RESTART: none of them may fail (natively their lookups,
 *                          and the open of a file, are not interrupted). Prints
 *                          "eintr alarms>0 FAILS"
 *   hostile exclstorm N DIR
 *                          N rounds of mkdir, rmdir, open(O_CREAT|O_EXCL), chmod,
 *                          unlink in DIR under a SIGALRM every 200 us (SA_RESTART):
 *                          none may fail (a call ptnix made, then restarted after a
 *                          signal, would: EEXIST, ENOENT). Prints "exclstorm
 *                          alarms>0 A fails F"
 *   hostile maskstorm DIR  opens DIR for 2 s while a child sends SIGUSR1 every
 *                          0.7-1 ms, whose handler (SA_RESTART) busies 0.3 ms; after
 *                          each open SIGUSR1 must not be blocked. Prints "maskstorm
 *                          handlers>0 H blocked B errors E"
 *   hostile nodump FILE    a child makes itself non-dumpable (as ssh-agent does) and
 *                          stats FILE ("nodump OK" or its errno); then this process
 *                          stats FILE again ("after OK" or its errno)
 *   hostile listener       installs an allow-all seccomp filter with a listener of
 *                          its own: "listener OK" or its errno
 *   hostile listener-probe the probe of that flag libseccomp makes (a null
 *                          program, as Nix runs before each build): "probe EFAULT"
 *   hostile ownkill FILE   installs a filter of its own that kills the process at
 *                          any openat2, then stats and opens FILE through libc
 *                          ("ownkill OK": ptnix's in-process object makes no openat2
 *                          in a process with a filter of its own)
 *   hostile statloop N PATH
 *                          computes for 100 ms, then makes N raw newfstatat calls of
 *                          PATH (no other syscall that stops), then prints the CPUs
 *                          it may run on
 *                          (Cpus_allowed_list of /proc/self/status)
 *   hostile cookie FILE    stats FILE through libc (ptnix's fast path), then unlinks
 *                          it with a raw syscall that carries the fast path's cookie
 *                          (read from /proc/self/environ) in r9, from its own code:
 *                          ptnix must translate it ("cookie OK", or its errno) */
#include "common.h"
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void report(const char *what, long r) {
    printf("%s %s\n", what, r < 0 ? errname(errno) : "OK");
    fflush(stdout);
}

static int badptr(const char *dir) {
    long page = sysconf(_SC_PAGESIZE);
    char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (two == MAP_FAILED) DIE("mmap");
    if (munmap(two + page, page) != 0) DIE("munmap");
    /* DIR/xxxx... up to the last byte of the mapping, no NUL. */
    size_t n = strlen(dir);
    char *tail = two + page - 200;
    memset(tail, 'x', 200);
    memcpy(tail, dir, n < 100 ? n : 100);
    tail[n] = '/';
    char *none = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct stat st;
    report("open_null", syscall(SYS_openat, AT_FDCWD, NULL, O_RDONLY));
    report("open_1", syscall(SYS_openat, AT_FDCWD, (char *)1, O_RDONLY));
    report("open_off_the_end", syscall(SYS_openat, AT_FDCWD, tail, O_RDONLY));
    report("open_prot_none", syscall(SYS_openat, AT_FDCWD, none, O_RDONLY));
    report("stat_bad_buf", syscall(SYS_newfstatat, AT_FDCWD, dir, (void *)1, 0));
    report("stat_ok", syscall(SYS_newfstatat, AT_FDCWD, dir, &st, 0));
    char link[4096];
    snprintf(link, sizeof link, "%s/link", dir);
    report("readlink_bad_buf", syscall(SYS_readlinkat, AT_FDCWD, link, (void *)1, 100));
    report("getcwd_bad_buf", syscall(SYS_getcwd, (void *)1, 4096));
    report("execve_bad_argv", syscall(SYS_execve, "/bin/true", (void *)1, NULL));
    report("rename_bad_second", syscall(SYS_renameat2, AT_FDCWD, link, AT_FDCWD, none, 0));
    int mem = open("/proc/self/mem", O_RDONLY);
    char c;
    report("mem_open", mem);
    report("mem_read_unmapped", pread(mem, &c, 1, 0));
    return 0;
}

static volatile int stop;
static char flip_path[4096];
static size_t flip_at;

static void *flipper(void *arg) {
    (void)arg;
    while (!stop) {
        flip_path[flip_at] = 'a';
        flip_path[flip_at] = 'b';
    }
    return NULL;
}

static int flip(const char *dir, int n) {
    snprintf(flip_path, sizeof flip_path, "%s/a", dir);
    flip_at = strlen(flip_path) - 1;
    pthread_t t;
    pthread_create(&t, NULL, flipper, NULL);
    int a = 0, b = 0, other = 0;
    for (int i = 0; i < n; i++) {
        int fd = open(flip_path, O_RDONLY);
        char c = 0;
        if (fd >= 0 && read(fd, &c, 1) == 1 && (c == 'a' || c == 'b')) {
            if (c == 'a') a++; else b++;
        } else {
            other++;
        }
        if (fd >= 0) close(fd);
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("flip opens %d other %d\n", a + b, other);
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Tasks (threads included, as RLIMIT_NPROC counts them) of this user. */
static int my_tasks(void) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    char p[64];
    struct stat st;
    uid_t me = getuid();
    while ((e = readdir(d)))
        if (e->d_name[0] >= '1' && e->d_name[0] <= '9') {
            snprintf(p, sizeof p, "/proc/%s/task", e->d_name);
            if (stat(p, &st) == 0 && st.st_uid == me) n += (int)st.st_nlink - 2;
        }
    closedir(d);
    return n;
}

static int bomb(double secs, int extra, const char *file) {
    long *made = mmap(NULL, sizeof(long), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (made == MAP_FAILED) DIE("mmap");
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = (rlim_t)(my_tasks() + 2 * extra);
    if (setrlimit(RLIMIT_NPROC, &rl) != 0) DIE("setrlimit");
    pid_t leader = getpid();
    double end = now() + secs;
    struct stat st;
    while (now() < end && __atomic_load_n(made, __ATOMIC_RELAXED) < extra) {
        pid_t p = fork();
        if (p == 0) {
            if (stat(file, &st) != 0) _exit(1);
            continue; /* the child bombs on */
        }
        if (p > 0) __atomic_add_fetch(made, 1, __ATOMIC_RELAXED);
        else usleep(2000);
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
    }
    if (getpid() != leader) _exit(0);
    while (wait(NULL) > 0) {}
    printf("bomb done %s\n", *made >= extra ? "forked-and-held" : "too-small");
    return 0;
}

static pthread_barrier_t barrier;
static const char *thread_file;
static int thread_ok;

static void *thread_main(void *arg) {
    (void)arg;
    struct stat st;
    if (stat(thread_file, &st) == 0) __atomic_add_fetch(&thread_ok, 1, __ATOMIC_RELAXED);
    pthread_barrier_wait(&barrier);
    return NULL;
}

static int threads(int n, const char *file) {
    thread_file = file;
    pthread_barrier_init(&barrier, NULL, (unsigned)n);
    pthread_t *ts = calloc((size_t)n, sizeof *ts);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (int i = 0; i < n; i++)
        if (pthread_create(&ts[i], &attr, thread_main, NULL) != 0) DIE("pthread_create");
    for (int i = 0; i < n; i++) pthread_join(ts[i], NULL);
    printf("threads %d ok %d\n", n, thread_ok);
    return 0;
}

static int selftrace(void) {
    int pfd[2];
    if (pipe(pfd) != 0) DIE("pipe");
    pid_t c = fork();
    if (c == 0) {
        long r = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        char msg[64];
        int len = snprintf(msg, sizeof msg, "traceme %s\n", r < 0 ? errname(errno) : "OK");
        if (write(pfd[1], msg, len) != len) _exit(3);
        pause();
        _exit(0);
    }
    char buf[64];
    ssize_t n = read(pfd[0], buf, sizeof buf);
    if (n > 0) fwrite(buf, 1, n, stdout);
    long r = ptrace(PTRACE_SEIZE, c, NULL, NULL);
    report("seize_child", r);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    return 0;
}

static volatile long alarms_seen;

static void on_alarm(int sig) {
    (void)sig;
    alarms_seen++;
}

/* A SIGALRM every `us` microseconds, counted in alarms_seen; `flags` for its
 * sigaction (SA_RESTART or not). */
static void alarms_every(long us, int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = flags;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, us}, {0, us}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void alarms_off(void) {
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
}

static int eintr(int n, const char *file) {
    alarms_every(100, 0); /* no SA_RESTART */
    int fails = 0;
    char v[64];
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(file, &st) != 0) fails++, fprintf(stderr, "stat: %s\n", errname(errno));
        if (access(file, R_OK) != 0) fails++, fprintf(stderr, "access: %s\n", errname(errno));
        if (syscall(SYS_getxattr, file, "user.none", v, sizeof v) >= 0 || errno == EINTR)
            fails++, fprintf(stderr, "getxattr: %s\n", errname(errno));
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) fails++, fprintf(stderr, "open: %s\n", errname(errno));
        else close(fd);
    }
    alarms_off();
    printf("eintr alarms>0 %d fails %d\n", alarms_seen > 0, fails);
    return 0;
}

static int exclstorm(int n, const char *dir) {
    alarms_every(200, SA_RESTART);
    char d[4096], f[4096];
    snprintf(d, sizeof d, "%s/d", dir);
    snprintf(f, sizeof f, "%s/f", dir);
    int fails = 0;
    for (int i = 0; i < n; i++) {
        if (mkdir(d, 0755)) fails++, fprintf(stderr, "mkdir: %s\n", errname(errno));
        if (rmdir(d)) fails++, fprintf(stderr, "rmdir: %s\n", errname(errno));
        int fd = open(f, O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd < 0) fails++, fprintf(stderr, "open: %s\n", errname(errno));
        else close(fd);
        if (chmod(f, 0600)) fails++, fprintf(stderr, "chmod: %s\n", errname(errno));
        if (unlink(f)) fails++, fprintf(stderr, "unlink: %s\n", errname(errno));
    }
    alarms_off();
    printf("exclstorm alarms>0 %d fails %d\n", alarms_seen > 0, fails);
    return 0;
}

static volatile long usr1_seen;

static double mono(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void on_usr1(int sig) {
    (void)sig;
    usr1_seen++;
    double t = mono();
    while (mono() - t < 0.0003) {
    }
}

/* A handler that runs while ptnix hands an open over to its tracer must not leave
 * the tracee's signal mask changed. */
static int maskstorm(const char *dir) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    pid_t me = getpid(), c = fork();
    if (c == 0) {
        for (unsigned r = 1;; r = r * 1103515245 + 12345) {
            if (kill(me, SIGUSR1)) _exit(0);
            struct timespec ts = {0, 700000 + (r >> 8) % 300000};
            nanosleep(&ts, NULL);
        }
    }
    long blocked = 0, errors = 0;
    double t0 = mono();
    while (mono() - t0 < 2) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY);
        if (fd < 0) errors++, fprintf(stderr, "open: %s\n", errname(errno));
        else close(fd);
        sigset_t cur;
        sigprocmask(SIG_BLOCK, NULL, &cur);
        if (sigismember(&cur, SIGUSR1)) {
            blocked++;
            sigset_t u;
            sigemptyset(&u);
            sigaddset(&u, SIGUSR1);
            sigprocmask(SIG_UNBLOCK, &u, NULL);
        }
    }
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    printf("maskstorm handlers>0 %d blocked %ld errors %ld\n", usr1_seen > 0, blocked, errors);
    return 0;
}

/* ptnix's cookie, from the object its LD_PRELOAD entry names (the last one, which the
 * object took out of environ but /proc/self/environ still shows): the magic of its
 * configuration slot, then the cookie. */
static unsigned long shim_cookie(void) {
    static char env[65536];
    int fd = open("/proc/self/environ", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, env, sizeof env - 1);
    if (n < 0) DIE("reading /proc/self/environ");
    env[n] = 0;
    const char *object = NULL;
    for (char *e = env; e < env + n; e += strlen(e) + 1)
        if (!strncmp(e, "LD_PRELOAD=", 11)) object = strrchr(e, ':') ? strrchr(e, ':') + 1 : e + 11;
    if (!object) return 0;
    static char obj[1 << 20];
    fd = open(object, O_RDONLY);
    n = fd < 0 ? -1 : read(fd, obj, sizeof obj);
    if (n < 0) return 0;
    static const char magic[] = "ptnix in-process fast path cfg";
    char *at = memmem(obj, (size_t)n, magic, sizeof magic);
    unsigned long ck = 0;
    if (at && at + 40 <= obj + n) memcpy(&ck, at + 32, 8);
    return ck;
}

static int cookie(const char *file) {
    unsigned long ck = shim_cookie();
    if (!ck) {
        printf("cookie none\n");
        return 0;
    }
    struct stat st;
    if (stat(file, &st)) DIE("stat");
    register long r10 __asm__("r10") = 0;
    register long r8 __asm__("r8") = 0;
    register long r9 __asm__("r9") = (long)ck;
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"((long)SYS_unlink), "D"(file), "S"(0L), "d"(0L), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
    if (ret < 0) errno = (int)-ret;
    report("cookie", ret);
    return 0;
}

static int statloop(int n, const char *path) {
    struct stat st;
    /* Compute first, 100 ms without a syscall: ptnix's watchdog gives the process
     * its CPUs back, and only the calls that follow can move it back. */
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 100000000L);
    for (int i = 0; i < n; i++)
        if (syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0)) DIE("newfstatat");
    char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY);
    ssize_t got = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (got < 0) DIE("reading /proc/self/status");
    buf[got] = 0;
    char *l = strstr(buf, "Cpus_allowed_list:");
    if (!l) DIE("no Cpus_allowed_list");
    l += strlen("Cpus_allowed_list:");
    while (*l == ' ' || *l == '\t') l++;
    *strchrnul(l, '\n') = 0;
    printf("%s\n", l);
    return 0;
}

static int nodump(const char *file) {
    struct stat st;
    pid_t c = fork();
    if (c == 0) {
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) DIE("PR_SET_DUMPABLE");
        report("nodump", stat(file, &st));
        _exit(0);
    }
    waitpid(c, NULL, 0);
    report("after", stat(file, &st));
    return 0;
}

static int listener(void) {
    struct sock_filter f[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) DIE("no_new_privs");
    long l = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    report("listener", l < 0 ? -1 : 0);
    return 0;
}

static int ownkill(const char *file) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 437 /* openat2 */, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {4, f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) DIE("no_new_privs");
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) DIE("seccomp");
    struct stat st;
    if (stat(file, &st)) DIE("stat");
    int fd = open(file, O_RDONLY);
    if (fd < 0) DIE("open");
    report("ownkill", 0);
    return 0;
}

static int listener_probe(void) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) DIE("no_new_privs");
    report("probe", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, NULL));
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "nodump")) return nodump(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "cookie")) return cookie(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "statloop")) return statloop(atoi(argv[2]), argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "ownkill")) return ownkill(argv[2]);
    if (argc >= 2 && !strcmp(argv[1], "listener")) return listener();
    if (argc >= 3 && !strcmp(argv[1], "maskstorm")) return maskstorm(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "exclstorm")) return exclstorm(atoi(argv[2]), argv[3]);
    if (argc >= 2 && !strcmp(argv[1], "listener-probe")) return listener_probe();
    if (argc >= 4 && !strcmp(argv[1], "eintr")) return eintr(atoi(argv[2]), argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "badptr")) return badptr(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "flip")) return flip(argv[2], atoi(argv[3]));
    if (argc >= 5 && !strcmp(argv[1], "bomb")) return bomb(atof(argv[2]), atoi(argv[3]), argv[4]);
    if (argc >= 2 && !strcmp(argv[1], "selftrace")) return selftrace();
    if (argc >= 4 && !strcmp(argv[1], "threads")) return threads(atoi(argv[2]), argv[3]);
    fprintf(stderr, "usage: see the comment in hostile.c\n");
    return 2;
}
