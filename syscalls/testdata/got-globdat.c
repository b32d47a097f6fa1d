/* Source of got-globdat.so: a shared object that reaches stat and open through its
 * GOT alone (R_X86_64_GLOB_DAT), for elf::got_references' tests and the elf_interp
 * fuzz corpus. Built with:
 *   cc -shared -fPIC -nostdlib -fno-plt -Os -s -Wl,-z,noseparate-code \
 *      -Wl,--hash-style=gnu -Wl,-z,norelro -o got-globdat.so got-globdat.c
 */
extern int stat(const char *, void *);
extern int open(const char *, int, ...);
int f(const char *p) { return stat(p, 0) + open(p, 0); }
