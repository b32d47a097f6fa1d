/* execve from a non-main thread while other threads are busy in path syscalls: the
 * kernel kills the other threads and the exec'ing thread takes over the main
 * thread's pid. The tracer must follow that and keep translating.
 * Usage: thread_exec PROGRAM [ARGS...]  (PROGRAM is a guest path) */
#include "common.h"
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

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
    usleep(100 * 1000);
    execv(args[0], args);
    fprintf(stderr, "execv %s: %s\n", args[0], errname(errno));
    _exit(102);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    args = argv + 1;
    pthread_t t;
    for (int i = 0; i < 3; i++)
        if (pthread_create(&t, NULL, spin, NULL)) DIE("pthread_create");
    if (pthread_create(&t, NULL, execer, NULL)) DIE("pthread_create");
    pthread_join(t, NULL);
    fprintf(stderr, "returned from join\n");
    return 103;
}
