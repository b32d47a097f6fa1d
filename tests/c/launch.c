/* Starting a program the ways libraries do, for store programs:
 *   launch posix  PROG ARGV0 [ARGS...]  posix_spawn(PROG, {ARGV0, ARGS})
 *   launch posixp NAME ARGV0 [ARGS...]  posix_spawnp: PATH search, as execvp
 *   launch vfork  PROG ARGV0 [ARGS...]  vfork() then execv in the child
 *   launch thread PROG ARGV0 [ARGS...]  execv from a non-main thread while three
 *                                       other threads stat("/nix/store") in a loop
 * The first three wait for the child and print "exited N" or "signaled N" (stdout
 * is flushed first); on failure to start they print "error ENAME". */
#include "common.h"
#include <pthread.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static char *prog;
static char **args;

static void *spin(void *unused) {
    (void)unused;
    for (;;) {
        struct stat st;
        if (stat("/nix/store", &st) != 0) {
            fprintf(stderr, "spinner: stat /nix/store: %s\n", errname(errno));
            _exit(101);
        }
    }
    return NULL;
}

static void *execer(void *unused) {
    (void)unused;
    usleep(50 * 1000);
    execv(prog, args);
    printf("error %s\n", errname(errno));
    fflush(stdout);
    _exit(102);
}

static int report(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) != pid) DIE("waitpid");
    if (WIFEXITED(st)) printf("exited %d\n", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) printf("signaled %d\n", WTERMSIG(st));
    else printf("status %#x\n", st);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: launch posix|posixp|vfork|thread PROG ARGV0 [ARGS...]\n");
        return 2;
    }
    const char *how = argv[1];
    prog = argv[2];
    args = argv + 3;
    fflush(stdout);
    if (!strcmp(how, "posix") || !strcmp(how, "posixp")) {
        pid_t pid;
        int e = (how[5] == 'p' ? posix_spawnp : posix_spawn)(&pid, prog, NULL, NULL, args, environ);
        if (e) {
            printf("error %s\n", errname(e));
            return 1;
        }
        return report(pid);
    }
    if (!strcmp(how, "vfork")) {
        pid_t pid = vfork();
        if (pid < 0) DIE("vfork");
        if (pid == 0) {
            execv(prog, args);
            _exit(127);
        }
        return report(pid);
    }
    if (!strcmp(how, "thread")) {
        pthread_t t;
        for (int i = 0; i < 3; i++)
            if (pthread_create(&t, NULL, spin, NULL)) DIE("pthread_create");
        if (pthread_create(&t, NULL, execer, NULL)) DIE("pthread_create");
        pthread_join(t, NULL);
        fprintf(stderr, "returned from join\n");
        return 103;
    }
    fprintf(stderr, "launch: unknown mode %s\n", how);
    return 2;
}
