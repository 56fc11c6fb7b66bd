/* spec.c: the model spec language: parsing and option getters. */
#include "sk_layer.h"

#include <ctype.h>
#include <errno.h>
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

void sk_spec_free(sk_spec *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n; i++)
		line_free(&s->lines[i]);
	free(s->lines);
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

static int grow(void **p, size_t elsize, int n)
{
	void *q = realloc(*p, elsize * (size_t)(n + 1));
	if (!q)
		return sk_error("out of memory");
	*p = q;
	return 0;
}

/* Parse one logical line [p, e) into o.  Returns 1 if it opens a body. */
static int parse_words(const char *src, int lineno, const char *p, const char *e, sk_specline *o,
                       const char *bol)
{
	int opens = 0;
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
			for (int i = 0; i < o->nkv; i++)
				if (strlen(o->key[i]) == (size_t)(eq - w) && !strncmp(o->key[i], w, (size_t)(eq - w)))
					return sk_error("%s:%d:%d: option '%.*s' given twice", src, lineno, col,
					                (int)(eq - w), w);
			if (grow((void **)&o->key, sizeof(char *), o->nkv) < 0 ||
			    grow((void **)&o->val, sizeof(char *), o->nkv) < 0 ||
			    grow((void **)&o->kvcol, sizeof(int), o->nkv) < 0 ||
			    grow((void **)&o->used, 1, o->nkv) < 0)
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
			if (grow((void **)&o->pos, sizeof(char *), o->npos) < 0 ||
			    grow((void **)&o->poscol, sizeof(int), o->npos) < 0)
				return -1;
			o->pos[o->npos] = dupn(w, len);
			o->poscol[o->npos] = col;
			if (!o->pos[o->npos])
				return sk_error("out of memory");
			o->npos++;
		}
	}
	return opens;
}

static sk_spec *parse_block(const char *src, const char **pp, int *lineno, int depth, int *closed)
{
	sk_spec *s = spec_new(src);
	const char *p = *pp;
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
		if (grow((void **)&s->lines, sizeof(sk_specline), s->n) < 0)
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

static int parse_int(const char *v, int *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || *end || end == v || x < -2147483647L || x > 2147483647L)
		return -1;
	*out = (int)x;
	return 0;
}

static int parse_float(const char *v, float *out)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (errno || *end || end == v || isnan(x))
		return -1;
	*out = (float)x;
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

int sk_opt_int(const sk_spec *s, sk_specline *o, const char *key, int def, int *out)
{
	int k = find_key(o, key);
	if (k < 0) {
		*out = def;
		return 0;
	}
	if (parse_int(o->val[k], out) < 0)
		return sk_error("%s:%d:%d: %s: %s='%s' is not an integer", s->srcname, o->line, o->kvcol[k], o->type,
		                key, o->val[k]);
	return 0;
}

int sk_opt_float(const sk_spec *s, sk_specline *o, const char *key, float def, float *out)
{
	int k = find_key(o, key);
	if (k < 0) {
		*out = def;
		return 0;
	}
	if (parse_float(o->val[k], out) < 0)
		return sk_error("%s:%d:%d: %s: %s='%s' is not a number", s->srcname, o->line, o->kvcol[k], o->type,
		                key, o->val[k]);
	return 0;
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
	char list[256];
	size_t len = 0;
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
	return sk_error("%s:%d:%d: %s: %s='%s' is not one of: %s", s->srcname, o->line, o->kvcol[k], o->type, key,
	                o->val[k], list);
}
