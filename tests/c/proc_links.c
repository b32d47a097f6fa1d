/* Paths the kernel hands back: readlink of /proc/self/{exe,fd/N,cwd} and getcwd.
 * Usage: proc_links FILE
 * Opens FILE, prints its fd link; opens and unlinks FILE.gone to see the
 * " (deleted)" form; chdir("/nix/store") and prints getcwd and the cwd links. */
#include "common.h"
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

static void show(const char *label, const char *link) {
    char buf[PATH_MAX + 1];
    ssize_t n = readlink(link, buf, sizeof buf - 1);
    if (n < 0) {
        printf("%s=ERR %s\n", label, errname(errno));
        return;
    }
    buf[n] = 0;
    printf("%s=%s\n", label, buf);
}

int main(int argc, char **argv) {
    char link[64], buf[PATH_MAX + 1];
    if (argc != 2) {
        fprintf(stderr, "usage: proc_links FILE\n");
        return 2;
    }
    show("exe", "/proc/self/exe");
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) DIE("open FILE");
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    show("fd", link);
    /* The same file through /proc/<pid>/fd and /dev/fd. */
    snprintf(link, sizeof link, "/proc/%d/fd/%d", (int)getpid(), fd);
    show("pidfd", link);
    snprintf(link, sizeof link, "/dev/fd/%d", fd);
    show("devfd", link);

    char gone[PATH_MAX];
    snprintf(gone, sizeof gone, "%s.gone", argv[1]);
    int gfd = open(gone, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (gfd < 0) DIE("open FILE.gone");
    if (unlink(gone)) DIE("unlink FILE.gone");
    snprintf(link, sizeof link, "/proc/self/fd/%d", gfd);
    show("deleted", link);

    int dfd = open("/nix/store", O_PATH | O_DIRECTORY);
    if (dfd < 0) DIE("open /nix/store O_PATH");
    snprintf(link, sizeof link, "/proc/self/fd/%d", dfd);
    show("dirfd", link);

    if (chdir("/nix/store")) DIE("chdir /nix/store");
    if (!getcwd(buf, sizeof buf)) DIE("getcwd");
    printf("getcwd=%s\n", buf);
    show("cwd", "/proc/self/cwd");
    show("threadcwd", "/proc/thread-self/cwd");
    return 0;
}
