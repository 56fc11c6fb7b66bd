/* tap.c: see tap.h. */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>

static int tap_n, tap_failed, tap_q;

void tap_quiet(int on) { tap_q = on; }

int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;
	if (tap_q)
		printf("# (expected to fail) %s - ", cond ? "ok" : "not ok");
	else
		printf("%s %d - ", cond ? "ok" : "not ok", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond && !tap_q)
		tap_failed++;
	return cond;
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}
