/* 32-bit (int 0x80) and x32 syscalls from a 64-bit process: ptnix does not translate
 * them, so it must refuse them rather than let an untranslated path reach the host.
 * Usage: abi32 PATH  (PATH should exist on the host but not in the guest)
 * Prints "i386_open <result>", "i386_io_uring_setup <result>" and "x32_openat
 * <result>": an errno name, or "FD" if the call succeeded (a bypass). */
#include "common.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    /* int 0x80 truncates pointers to 32 bits: put the path below 4 GiB. */
    char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED) DIE("mmap MAP_32BIT");
    strncpy(low, argv[1], 4095);

    long r;
    /* i386 open = 5 */
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(5L), "b"(low), "c"((long)(O_RDONLY | O_DIRECTORY)), "d"(0L) : "memory");
    if (r >= 0) printf("i386_open FD\n");
    else printf("i386_open %s\n", errname((int)-r));
    fflush(stdout);

    /* i386 io_uring_setup = 425: a ring's operations would take paths unseen. */
    static char params[120];
    char *lowp = low + 2048;
    memcpy(lowp, params, sizeof params);
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(425L), "b"(8L), "c"(lowp) : "memory");
    if (r >= 0) printf("i386_io_uring_setup FD\n");
    else printf("i386_io_uring_setup %s\n", errname((int)-r));
    fflush(stdout);

    /* x32: the x86_64 number with bit 30 set. */
    r = syscall(0x40000000L | SYS_openat, AT_FDCWD, low, O_RDONLY | O_DIRECTORY);
    if (r >= 0) printf("x32_openat FD\n");
    else printf("x32_openat %s\n", errname(errno));
    return 0;
}
