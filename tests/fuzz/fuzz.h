/* fuzz.h: shared by the libFuzzer targets whose library entry points take a
 * path: the input as a file in memory (memfd), named /proc/self/fd/N so that
 * every open starts at its beginning. */
#ifndef SK_FUZZ_H
#define SK_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static void fuzz_check(int cond)
{
	if (!cond)
		abort();
}

/* The path of a file holding data[0..size); valid until the next call. */
static const char *fuzz_path(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	if (fd < 0) {
		fd = memfd_create("fuzz-input", 0);
		fuzz_check(fd >= 0);
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	fuzz_check(ftruncate(fd, 0) == 0);
	for (size_t off = 0; off < size;) {
		ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);
		fuzz_check(n > 0);
		off += (size_t)n;
	}
	return path;
}

#endif
