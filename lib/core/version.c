/* version.c: the library's version, for programs and pkg-config users. */
#include "sk_base.h"

const char *sk_version(void) { return SK_VERSION_STRING; }
