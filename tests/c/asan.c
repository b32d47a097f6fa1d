/* Built with -fsanitize=address (gcc links its runtime, libasan.so, dynamically):
 * stats FILE and prints "asan OK". */
#include "common.h"
#include <sys/stat.h>

int main(int argc, char **argv) {
    struct stat st;
    if (argc < 2 || stat(argv[1], &st)) DIE("stat");
    printf("asan OK\n");
    return 0;
}
