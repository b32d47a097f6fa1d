/* What the kernel put in the auxiliary vector about the exec: AT_EXECFN is the path
 * given to execve, which on a real /nix is the guest path. */
#include "common.h"
#include <sys/auxv.h>

int main(void) {
    printf("execfn=%s\n", (const char *)getauxval(AT_EXECFN));
    return 0;
}
