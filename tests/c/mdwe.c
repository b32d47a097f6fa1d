/* Runs argv[1..] with memory-deny-write-execute on (prctl PR_SET_MDWE, Linux 6.3,
 * inherited across fork and execve): no mapping that was writable may become
 * executable, as under systemd's MemoryDenyWriteExecute. Exit 3 where the kernel
 * has no MDWE. */
#include "common.h"
#include <sys/prctl.h>
#include <unistd.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: mdwe PROGRAM [ARGS...]\n");
        return 2;
    }
    if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0L, 0L, 0L)) {
        printf("mdwe unsupported\n");
        return 3;
    }
    execv(argv[1], argv + 1);
    perror("execv");
    return 127;
}
