/* spec.c: the model spec language: parsing and option getters. */
#include "sk_spec.h"
#include "sk_base.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

static void line_free(sk_specline *o)
{
	free(o->type);
	for (int i = 0; i < o->npos; i++)
		free(o->pos[i]);
	for (int i = 0; i < o->nkv; i++) {
		free(o->key[i]);
		free(o->val[i]);
	}
	free(o->pos);
	free(o->poscol);
	free(o->key);
	free(o->val);
	free(o->kvcol);
	free(o->used);
	if (o->body)
		sk_spec_free(o->body);
}

static void lines_free(sk_specline *lines, int n)
{
	for (int i = 0; i < n; i++)
		line_free(&lines[i]);
	free(lines);
}

void sk_spec_free(sk_spec *s)
{
	if (!s)
		return;
	lines_free(s->lines, s->n);
	lines_free(s->recipe, s->nrecipe);
	free(s->srcname);
	free(s);
}

static sk_spec *spec_new(const char *srcname)
{
	sk_spec *s = calloc(1, sizeof *s);
	if (!s || !(s->srcname = strdup(srcname ? srcname : "<spec>"))) {
		free(s);
		sk_error("out of memory");
		return NULL;
	}
	return s;
}

/* Make room for element n of an array of *cap elements, doubling: linear
 * time over any number of appends. */
static int grow(void **p, size_t elsize, int n, int *cap)
{
	if (n < *cap)
		return 0;
	if (*cap > INT_MAX / 2)
		return sk_error("spec too large");
	int c = *cap ? *cap * 2 : 8;
	size_t bytes;
	void *q;
	if (sk_mul_size((size_t)c, elsize, &bytes) < 0)
		return -1;
	if (!(q = realloc(*p, bytes)))
		return sk_error("out of memory");
	*p = q;
	*cap = c;
	return 0;
}

typedef struct keyidx {
	const char *key;
	int i;
} keyidx;

static int cmp_key(const void *a, const void *b)
{
	const keyidx *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* An option given twice on a line: the error names the first repeat, as a
 * scan from the left would, in O(k log k) for k options. */
static int first_duplicate(const char *src, int lineno, const sk_specline *o)
{
	keyidx *ix;
	int bad = -1;
	if (o->nkv < 2)
		return 0;
	if (!(ix = sk_alloc_array((size_t)o->nkv, sizeof *ix)))
		return -1;
	for (int i = 0; i < o->nkv; i++) {
		ix[i].key = o->key[i];
		ix[i].i = i;
	}
	qsort(ix, (size_t)o->nkv, sizeof *ix, cmp_key);
	for (int i = 1; i < o->nkv; i++)
		if (!strcmp(ix[i - 1].key, ix[i].key) && (bad < 0 || ix[i].i < bad))
			bad = ix[i].i;
	sk_free(ix);
	if (bad >= 0)
		return sk_error("%s:%d:%d: option '%s' given twice", src, lineno, o->kvcol[bad], o->key[bad]);
	return 0;
}

/* Parse one logical line [p, e) into o.  Returns 1 if it opens a body. */
static int parse_words(const char *src, int lineno, const char *p, const char *e, sk_specline *o,
                       const char *bol)
{
	int opens = 0, cap[6] = {0, 0, 0, 0, 0, 0};
	memset(o, 0, sizeof *o);
	o->line = lineno;
	while (p < e) {
		while (p < e && isspace((unsigned char)*p))
			p++;
		if (p >= e)
			break;
		const char *w = p;
		while (p < e && !isspace((unsigned char)*p))
			p++;
		int col = (int)(w - bol) + 1;
		size_t len = (size_t)(p - w);
		if (len == 1 && *w == '{') {
			while (p < e && isspace((unsigned char)*p))
				p++;
			if (p < e)
				return sk_error("%s:%d:%d: '{' must end its line", src, lineno, col);
			opens = 1;
			break;
		}
		if (!o->type) {
			for (size_t i = 0; i < len; i++)
				if (!(isalnum((unsigned char)w[i]) || w[i] == '_' || w[i] == '-'))
					return sk_error("%s:%d:%d: invalid layer type '%.*s'", src, lineno, col, (int)len, w);
			o->type = dupn(w, len);
			o->col = col;
			if (!o->type)
				return sk_error("out of memory");
			continue;
		}
		const char *eq = memchr(w, '=', len);
		if (eq) {
			if (eq == w || eq == w + len - 1)
				return sk_error("%s:%d:%d: malformed option '%.*s' (expected key=value)", src, lineno,
				                col, (int)len, w);
			if (grow((void **)&o->key, sizeof(char *), o->nkv, &cap[0]) < 0 ||
			    grow((void **)&o->val, sizeof(char *), o->nkv, &cap[1]) < 0 ||
			    grow((void **)&o->kvcol, sizeof(int), o->nkv, &cap[2]) < 0 ||
			    grow((void **)&o->used, 1, o->nkv, &cap[3]) < 0)
				return -1;
			o->key[o->nkv] = dupn(w, (size_t)(eq - w));
			o->val[o->nkv] = dupn(eq + 1, (size_t)(w + len - eq - 1));
			o->kvcol[o->nkv] = col;
			o->used[o->nkv] = 0;
			if (!o->key[o->nkv] || !o->val[o->nkv])
				return sk_error("out of memory");
			o->nkv++;
		} else {
			if (o->nkv)
				return sk_error("%s:%d:%d: positional argument '%.*s' after key=value options", src,
				                lineno, col, (int)len, w);
			if (grow((void **)&o->pos, sizeof(char *), o->npos, &cap[4]) < 0 ||
			    grow((void **)&o->poscol, sizeof(int), o->npos, &cap[5]) < 0)
				return -1;
			o->pos[o->npos] = dupn(w, len);
			o->poscol[o->npos] = col;
			if (!o->pos[o->npos])
				return sk_error("out of memory");
			o->npos++;
		}
	}
	if (first_duplicate(src, lineno, o) < 0)
		return -1;
	return opens;
}

const char *const sk_spec_recipe_keys[] = {
	"optimizer", "lr", "momentum", "wd", "schedule", "step-size", "gamma", "milestones", "warmup", "min-lr",
	"epochs", "batch", "loss", "crop", "flip", "init-unsupervised", "init-examples", NULL,
};

/* Check a `train` line o of block s (parse_words returned r). */
static int recipe_line(const sk_spec *s, const sk_specline *o, int depth, int r)
{
	const char *src = s->srcname;
	if (depth > 0)
		return sk_error("%s:%d:%d: train: the recipe belongs at the top level, not inside a block", src,
		                o->line, o->col);
	if (r == 1)
		return sk_error("%s:%d:%d: train: takes no '{' block", src, o->line, o->col);
	if (o->npos > 0)
		return sk_error("%s:%d:%d: train: '%s': the recipe is key=value options only", src, o->line,
		                o->poscol[0], o->pos[0]);
	if (o->nkv == 0)
		return sk_error("%s:%d:%d: train: empty recipe line", src, o->line, o->col);
	for (int k = 0; k < o->nkv; k++) {
		int known = 0;
		for (int i = 0; sk_spec_recipe_keys[i] && !known; i++)
			known = !strcmp(sk_spec_recipe_keys[i], o->key[k]);
		if (!known) {
			char list[400];
			size_t len = 0;
			for (int i = 0; sk_spec_recipe_keys[i]; i++)
				len += (size_t)snprintf(list + len, len < sizeof list ? sizeof list - len : 0, "%s%s",
				                        i ? " " : "", sk_spec_recipe_keys[i]);
			return sk_error("%s:%d:%d: train: unknown key '%s' (known: %s)", src, o->line, o->kvcol[k],
			                o->key[k], list);
		}
		for (int j = 0; j < s->nrecipe; j++)
			for (int i = 0; i < s->recipe[j].nkv; i++)
				if (!strcmp(s->recipe[j].key[i], o->key[k]))
					return sk_error("%s:%d:%d: train: '%s' given twice (first at line %d)", src, o->line,
					                o->kvcol[k], o->key[k], s->recipe[j].line);
	}
	return 0;
}

static sk_spec *parse_block(const char *src, const char **pp, int *lineno, int depth, int *closed)
{
	sk_spec *s = spec_new(src);
	const char *p = *pp;
	int cap = 0, rcap = 0;
	if (!s)
		return NULL;
	*closed = 0;
	if (depth > 16) {
		sk_error("%s:%d: blocks nested too deeply", src, *lineno);
		goto fail;
	}
	while (*p) {
		const char *bol = p, *eol = strchr(p, '\n'), *e;
		if (!eol)
			eol = p + strlen(p);
		(*lineno)++;
		e = memchr(p, '#', (size_t)(eol - p));
		if (!e)
			e = eol;
		p = *eol ? eol + 1 : eol;
		const char *a = bol;
		while (a < e && isspace((unsigned char)*a))
			a++;
		const char *z = e;
		while (z > a && isspace((unsigned char)z[-1]))
			z--;
		if (a == z)
			continue;
		if (z - a == 1 && *a == '}') {
			if (depth == 0) {
				sk_error("%s:%d:%d: '}' without an open block", src, *lineno, (int)(a - bol) + 1);
				goto fail;
			}
			*closed = 1;
			*pp = p;
			return s;
		}
		if (grow((void **)&s->lines, sizeof(sk_specline), s->n, &cap) < 0)
			goto fail;
		sk_specline *o = &s->lines[s->n];
		int r = parse_words(src, *lineno, bol, z, o, bol);
		s->n++;
		if (r < 0)
			goto fail;
		if (!o->type) {
			sk_error("%s:%d: '{' without a layer type", src, *lineno);
			goto fail;
		}
		if (!strcmp(o->type, "train")) {
			if (recipe_line(s, o, depth, r) < 0 ||
			    grow((void **)&s->recipe, sizeof(sk_specline), s->nrecipe, &rcap) < 0)
				goto fail;
			s->recipe[s->nrecipe++] = *o;   /* moved: lines[] forgets it */
			s->n--;
			continue;
		}
		if (r == 1) {
			int startline = *lineno, c2;
			o->body = parse_block(src, &p, lineno, depth + 1, &c2);
			if (!o->body)
				goto fail;
			if (!c2) {
				sk_error("%s:%d:%d: block opened here is never closed with '}'", src, startline, o->col);
				goto fail;
			}
		}
	}
	*pp = p;
	return s;
fail:
	sk_spec_free(s);
	return NULL;
}

sk_spec *sk_spec_parse(const char *text, const char *srcname)
{
	int lineno = 0, closed;
	const char *p = text;
	const char *src = srcname ? srcname : "<spec>";
	sk_spec *s = parse_block(src, &p, &lineno, 0, &closed);
	if (s && s->n == 0) {
		sk_error("%s: no layers", src);
		sk_spec_free(s);
		return NULL;
	}
	return s;
}

int sk_spec_error(const sk_spec *s, const sk_specline *o, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return sk_error("%s:%d:%d: %s: %s", s->srcname, o->line, o->col, o->type, msg);
}

static int find_key(sk_specline *o, const char *key)
{
	for (int i = 0; i < o->nkv; i++)
		if (!strcmp(o->key[i], key)) {
			o->used[i] = 1;
			return i;
		}
	return -1;
}

static int parse_int(const char *v, void *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || *end || end == v || x < -2147483647L || x > 2147483647L)
		return -1;
	*(int *)out = (int)x;
	return 0;
}

static int parse_float(const char *v, void *out)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (errno || *end || end == v || isnan(x))
		return -1;
	*(float *)out = (float)x;
	return 0;
}

int sk_opt_pos_int(const sk_spec *s, sk_specline *o, int i, int required, int def, int *out)
{
	if (i >= o->npos) {
		if (required)
			return sk_spec_error(s, o, "missing argument %d", i + 1);
		*out = def;
		return 0;
	}
	if (parse_int(o->pos[i], out) < 0)
		return sk_error("%s:%d:%d: %s: '%s' is not an integer", s->srcname, o->line, o->poscol[i], o->type,
		                o->pos[i]);
	return 0;
}

int sk_opt_pos_str(const sk_spec *s, sk_specline *o, int i, int required, const char *def, const char **out)
{
	if (i >= o->npos) {
		if (required)
			return sk_spec_error(s, o, "missing argument %d", i + 1);
		*out = def;
		return 0;
	}
	*out = o->pos[i];
	return 0;
}

/* The error for option k of o, whose value is not `what`. */
static int bad_value(const sk_spec *s, const sk_specline *o, int k, const char *what)
{
	return sk_error("%s:%d:%d: %s: %s='%s' is not %s", s->srcname, o->line, o->kvcol[k], o->type, o->key[k],
	                o->val[k], what);
}

/* The value of key, when o has it, through parse into out (left alone
 * otherwise); -1 naming the key when it is not `what`. */
static int opt_parse(const sk_spec *s, sk_specline *o, const char *key, int (*parse)(const char *, void *), void *out,
                     const char *what)
{
	int k = find_key(o, key);
	return k >= 0 && parse(o->val[k], out) < 0 ? bad_value(s, o, k, what) : 0;
}

int sk_opt_int(const sk_spec *s, sk_specline *o, const char *key, int def, int *out)
{
	*out = def;
	return opt_parse(s, o, key, parse_int, out, "an integer");
}

int sk_opt_float(const sk_spec *s, sk_specline *o, const char *key, float def, float *out)
{
	*out = def;
	return opt_parse(s, o, key, parse_float, out, "a number");
}

int sk_opt_str(const sk_spec *s, sk_specline *o, const char *key, const char *def, const char **out)
{
	(void)s;
	int k = find_key(o, key);
	*out = k < 0 ? def : o->val[k];
	return 0;
}

int sk_opt_choice(const sk_spec *s, sk_specline *o, const char *key, const char *const *choices, int def,
                  int *out)
{
	int k = find_key(o, key);
	char list[8 + 256] = "one of: ";
	size_t len = strlen(list);
	if (k < 0) {
		*out = def;
		return 0;
	}
	for (int i = 0; choices[i]; i++) {
		if (!strcmp(choices[i], o->val[k])) {
			*out = i;
			return 0;
		}
		len += (size_t)snprintf(list + len, len < sizeof list ? sizeof list - len : 0, "%s%s", i ? ", " : "",
		                        choices[i]);
	}
	return bad_value(s, o, k, list);
}
