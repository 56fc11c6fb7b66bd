/* tap.h: a tiny TAP producer for the C unit tests (tests/unit/tap.c). */
#ifndef SK_TAP_H
#define SK_TAP_H

/* Print "ok N - ..." or "not ok N - ..."; returns cond. */
int tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A "# ..." diagnostic line. */
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* While quiet (on != 0), tap_ok() prints its line as a diagnostic and
 * counts nothing: for tests that expect a check to fail. */
void tap_quiet(int on);
/* Print the plan; returns the exit status (1 if anything failed). */
int tap_done(void);

#endif
