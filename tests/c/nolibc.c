/* A dynamically linked program without libc (as Go's -buildmode=pie makes): a
 * PT_INTERP but no DT_NEEDED. Built with -nostdlib -fPIE -pie; prints "nolibc OK". */
static long sys3(long nr, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

void _start(void) {
    static const char msg[] = "nolibc OK\n";
    sys3(1, 1, (long)msg, sizeof msg - 1);
    sys3(60, 0, 0, 0);
    for (;;) {
    }
}
