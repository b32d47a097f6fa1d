/* Store calls in a loop, for the fast path's tests (shim.rs): how a program's calls
 * reach the object depends on how it was linked (through the PLT, lazily or at load
 * with -z now, or through the GOT alone with -fno-plt).
 *
 *   storecalls FILE N    N times each: stat, lstat, access and open+close of FILE,
 *                        then opendir of its directory; prints "storecalls OK SIZE
 *                        COPIES" (FILE's size, and how many copies of ptnix's object
 *                        are mapped); a missing name must give ENOENT each time.
 */
#include "common.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    const char *file = argv[1];
    int n = atoi(argv[2]);
    char dir[4096], missing[4200];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 2;
    *slash = 0;
    snprintf(missing, sizeof missing, "%s/no-such-name", dir);
    struct stat st;
    for (int i = 0; i < n; i++) {
        if (stat(file, &st) != 0)
            DIE("stat");
        if (lstat(file, &st) != 0)
            DIE("lstat");
        if (access(file, R_OK) != 0)
            DIE("access");
        int fd = open(file, O_RDONLY);
        if (fd < 0)
            DIE("open");
        close(fd);
        DIR *d = opendir(dir);
        if (!d)
            DIE("opendir");
        closedir(d);
        errno = 0;
        if (stat(missing, &st) == 0 || errno != ENOENT)
            DIE("stat of a missing name");
    }
    stat(file, &st);
    int copies = 0;
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[4096];
    while (maps && fgets(line, sizeof line, maps))
        copies += strstr(line, " r-xp ") && strstr(line, "shim.so");
    printf("storecalls OK %lld %d\n", (long long)st.st_size, copies);
    return 0;
}
