/* What the loader found: foo() of the libfoo.so it loaded for DT_NEEDED, optionally
 * foo() of a library dlopen'ed by name (argv[1]), and the names the loader gave the
 * libfoo/libbar objects it loaded (after an access() of its own path, which the
 * fast path makes). For the library search the fast path answers
 * (tests/tests/shim.rs). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *foo(void);

static int show(struct dl_phdr_info *i, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (strstr(i->dlpi_name, "libfoo") || strstr(i->dlpi_name, "libbar"))
        printf("loaded %s\n", i->dlpi_name);
    return 0;
}

int main(int argc, char **argv)
{
    /* A call the fast path makes (on the program's own store path). */
    if (access(argv[0], X_OK) != 0)
        printf("access %s failed\n", argv[0]);
    printf("foo %s\n", foo());
    if (argc > 1) {
        void *h = dlopen(argv[1], RTLD_NOW);
        const char *(*f)(void) = h ? (const char *(*)(void))dlsym(h, "bar") : NULL;
        if (f)
            printf("dlopened %s\n", f());
        else
            printf("dlopen failed: %s\n", dlerror());
    }
    dl_iterate_phdr(show, NULL);
    return 0;
}
