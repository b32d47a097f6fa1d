/* A library for libsearch.c, built once per VARIANT (and once as libbar). */
const char *foo(void) { return VARIANT; }
const char *bar(void) { return "bar " VARIANT; }
