/* A preloaded interposer of the program's own (as fakeroot or libfaketime are): its
 * `access` says every path exists. Under ptnix it must still see the program's calls
 * before ptnix's in-process object does. Built with -shared -fPIC. */
int access(const char *path, int mode) {
    (void)path;
    (void)mode;
    return 0;
}
