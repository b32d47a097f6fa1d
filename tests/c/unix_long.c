/* A unix socket at a guest path that fits sockaddr_un (108 bytes) while its host path
 * under STORE does not: ptnix must still bind and connect it, and hand back the guest
 * path from getsockname, getpeername and accept.
 * Usage: unix_long PATH
 * Prints, in this order: sockname=, peername= (child, after connect), accepted=
 * (the peer address accept returns: unnamed, so empty), got=hello. */
#include "common.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void print_addr(const char *label, struct sockaddr_un *a, socklen_t len) {
    size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
    /* The kernel's length includes the NUL for bound names. */
    printf("%s=%.*s len=%u\n", label, (int)strnlen(a->sun_path, n), a->sun_path, (unsigned)len);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(argv[1]) >= sizeof a.sun_path) {
        fprintf(stderr, "guest path too long for sun_path\n");
        return 2;
    }
    strcpy(a.sun_path, argv[1]);
    socklen_t alen = offsetof(struct sockaddr_un, sun_path) + strlen(argv[1]) + 1;

    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) DIE("socket");
    if (bind(s, (struct sockaddr *)&a, alen)) DIE("bind");
    if (listen(s, 1)) DIE("listen");
    struct sockaddr_un got;
    socklen_t glen = sizeof got;
    if (getsockname(s, (struct sockaddr *)&got, &glen)) DIE("getsockname");
    print_addr("sockname", &got, glen);

    pid_t pid = fork();
    if (pid < 0) DIE("fork");
    if (pid == 0) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        if (c < 0) DIE("socket (child)");
        if (connect(c, (struct sockaddr *)&a, alen)) DIE("connect");
        glen = sizeof got;
        if (getpeername(c, (struct sockaddr *)&got, &glen)) DIE("getpeername");
        print_addr("peername", &got, glen);
        if (write(c, "hello", 5) != 5) DIE("write");
        _exit(0);
    }
    glen = sizeof got;
    int conn = accept(s, (struct sockaddr *)&got, &glen);
    if (conn < 0) DIE("accept");
    char buf[16] = {0};
    ssize_t n = read(conn, buf, sizeof buf - 1);
    if (n < 0) DIE("read");
    int st;
    if (waitpid(pid, &st, 0) != pid) DIE("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "child failed: status 0x%x\n", st);
        return 1;
    }
    print_addr("accepted", &got, glen);
    printf("got=%s\n", buf);
    return 0;
}
