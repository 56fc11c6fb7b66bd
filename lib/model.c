/* model.c: models: spec text, the built sequence, and (de)serialisation as a
 * `model` record followed by its parameters (see sk_model.h). */
#include "sk_model.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SK_STREAM_MAGIC_PREFIX
#define SK_STREAM_MAGIC_PREFIX "TNS "
#endif
#define MODEL_TEXT_MAX ((size_t)1 << 24)    /* a spec: 16 MiB at most */

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		sk_error("out of memory");
	return p;
}

void sk_model_free(sk_model *m)
{
	if (!m)
		return;
	sk_seq_free(m->seq);
	sk_spec_free(m->spec);
	free(m->spec_text);
	sk_attrs_free(&m->attrs);
	free(m);
}

/* The input shape from the first spec line, `input C H W`, `input T D` or `input D`. */
static int input_shape(const sk_spec *s, sk_shape *in)
{
	sk_specline *o = &s->lines[0];
	int d[3];
	if (strcmp(o->type, "input") != 0)
		return sk_error("%s:%d:%d: the first layer must be 'input' (found '%s')", s->srcname, o->line, o->col,
		                o->type);
	if (o->npos < 1 || o->npos > 3)
		return sk_spec_error(s, o, "expected 1 to 3 dimensions (input C H W, input T D or input D), found %d",
		                     o->npos);
	for (int i = 0; i < o->npos; i++) {
		if (sk_opt_pos_int(s, o, i, 1, 0, &d[i]) < 0)
			return -1;
		if (d[i] < 1 || d[i] > (1 << 24))
			return sk_error("%s:%d:%d: input: dimension %d is out of range (1 to %d)", s->srcname, o->line,
			                o->poscol[i], d[i], 1 << 24);
	}
	in->n = o->npos;
	for (int i = 0; i < 4; i++)
		in->d[i] = i < o->npos ? d[i] : 0;
	if (sk_shape_size(*in) > ((size_t)1 << 28))
		return sk_spec_error(s, o, "input of %zu values per example is too large", sk_shape_size(*in));
	return 0;
}

static sk_model *model_build(const char *text, const char *srcname, int alloc)
{
	sk_model *m = calloc(1, sizeof *m);
	if (!m) {
		sk_error("out of memory");
		return NULL;
	}
	sk_attrs_init(&m->attrs);
	if (!(m->spec_text = xstrdup(text)))
		goto fail;
	if (!(m->spec = sk_spec_parse(text, srcname)))
		goto fail;
	if (input_shape(m->spec, &m->in) < 0)
		goto fail;
	if (!(m->seq = sk_seq_declare(m->spec, m->in, "")))
		goto fail;
	if (sk_seq_value_count(m->seq) > SK_MAX_MODEL) {
		sk_error("%s: the model has %zu parameter values, more than the limit %zu", m->spec->srcname,
		         sk_seq_value_count(m->seq), SK_MAX_MODEL);
		goto fail;
	}
	if (alloc && sk_seq_alloc(m->seq, 0) < 0)
		goto fail;
	m->nclasses = m->seq->out.n == 1 ? m->seq->out.d[0] : 0;
	return m;
fail:
	sk_model_free(m);
	return NULL;
}

sk_model *sk_model_from_text(const char *text, const char *srcname) { return model_build(text, srcname, 1); }
sk_model *sk_model_declare(const char *text, const char *srcname) { return model_build(text, srcname, 0); }
int sk_model_for_training(sk_model *m) { return sk_seq_alloc(m->seq, 1); }

int sk_model_init(sk_model *m, uint64_t seed) { return sk_seq_init(m->seq, seed); }

/* ---- parameters by name ---- */

int sk_model_params(sk_model *m, sk_param ***out) { return sk_seq_params(m->seq, out); }

/* ---- writing ---- */

int sk_model_write(FILE *f, sk_model *m, int nextra) { return sk_model_write_level(f, m, nextra, 0); }

int sk_model_write_level(FILE *f, sk_model *m, int nextra, int level)
{
	sk_param **ps;
	int np = sk_model_params(m, &ps), rc = -1;
	sk_attrs a;
	int64_t len;
	if (np < 0)
		return -1;
	sk_attrs_init(&a);
	if (sk_attrs_copy(&a, &m->attrs) < 0 || sk_attrs_setf(&a, "records", "%d", np + nextra) < 0)
		goto out;
	if (!sk_attrs_get(&a, "version") && sk_attrs_set(&a, "version", sk_version()) < 0)
		goto out;
	len = (int64_t)strlen(m->spec_text);
	if (sk_write_record_raw(f, "model", SK_U8, 1, &len, m->spec_text, &a, 0) < 0)
		goto out;
	for (int i = 0; i < np; i++)
		if (sk_write_record_raw(f, ps[i]->name, SK_F32, ps[i]->ndim, ps[i]->shape, ps[i]->w, NULL, level) < 0)
			goto out;
	rc = 0;
out:
	sk_attrs_free(&a);
	free(ps);
	return rc;
}

/* ---- reading ---- */

static int is_state_record(const char *name)
{
	return !strncmp(name, "opt.", 4) || !strcmp(name, "train_state") || !strncmp(name, "state.", 6);
}

sk_model *sk_model_read_ex(sk_reader *r, const sk_header *h, sk_model_extra_fn extra, void *arg)
{
	sk_model *m = NULL;
	sk_param **ps = NULL;
	unsigned char *seen = NULL;
	char *text = NULL, src[SK_NAME_MAX + 64];
	const char *rs;
	long long nrec;
	int np, got = 0;
	sk_header ph;
	memset(&ph, 0, sizeof ph);
	if (strcmp(h->name, "model") != 0) {
		sk_error("%s: record %ld is '%s', not a model", sk_reader_name(r), sk_reader_index(r), h->name);
		return NULL;
	}
	if (h->dtype != SK_U8 || h->ndim != 1 || h->rawbytes > MODEL_TEXT_MAX) {
		sk_error("%s: model record %ld: spec must be u8 text of at most %zu bytes", sk_reader_name(r),
		         sk_reader_index(r), MODEL_TEXT_MAX);
		return NULL;
	}
	rs = sk_attrs_get(&h->attrs, "records");
	if (!rs) {
		sk_error("%s: model record %ld has no 'records' attribute", sk_reader_name(r), sk_reader_index(r));
		return NULL;
	}
	{
		char *end;
		errno = 0;
		nrec = strtoll(rs, &end, 10);
		if (errno || *end || nrec < 0 || nrec > 1000000) {
			sk_error("%s: model record %ld: bad 'records' value '%s'", sk_reader_name(r), sk_reader_index(r),
			         rs);
			return NULL;
		}
	}
	if (!(text = malloc((size_t)h->rawbytes + 1))) {
		sk_error("out of memory");
		return NULL;
	}
	if (sk_reader_payload_into(r, h, text) < 0)
		goto fail;
	text[h->rawbytes] = 0;
	if (strlen(text) != (size_t)h->rawbytes) {
		sk_error("%s: model record %ld: spec text contains a NUL byte", sk_reader_name(r), sk_reader_index(r));
		goto fail;
	}
	snprintf(src, sizeof src, "%s[model %ld]", sk_reader_name(r), sk_reader_index(r));
	if (!(m = sk_model_from_text(text, src)))
		goto fail;
	if (sk_attrs_copy(&m->attrs, &h->attrs) < 0)
		goto fail;
	if ((np = sk_model_params(m, &ps)) < 0)
		goto fail;
	if (!(seen = calloc((size_t)np + 1, 1))) {
		sk_error("out of memory");
		goto fail;
	}
	for (long long k = 0; k < nrec; k++) {
		int st = sk_reader_next(r, &ph), i;
		if (st < 0)
			goto fail;
		if (st == 0) {
			sk_error("%s: model ends after %lld of its %lld records", sk_reader_name(r), k, nrec);
			goto fail;
		}
		for (i = 0; i < np; i++)
			if (!strcmp(ps[i]->name, ph.name))
				break;
		if (i < np) {
			char a[96], b[96];
			if (seen[i]) {
				sk_error("%s: record %ld: parameter '%s' appears twice", sk_reader_name(r), sk_reader_index(r),
				         ph.name);
				goto fail;
			}
			if (ph.dtype != SK_F32 || ph.ndim != ps[i]->ndim ||
			    memcmp(ph.shape, ps[i]->shape, sizeof(int64_t) * (size_t)ph.ndim)) {
				sk_error("%s: record %ld: parameter '%s' is %s %s, the model needs f32 %s", sk_reader_name(r),
				         sk_reader_index(r), ph.name, sk_dtype_name(ph.dtype),
				         sk_shape_str(ph.ndim, ph.shape, a, sizeof a),
				         sk_shape_str(ps[i]->ndim, ps[i]->shape, b, sizeof b));
				goto fail;
			}
			if (sk_reader_payload_into(r, &ph, ps[i]->w) < 0)
				goto fail;
			seen[i] = 1;
			got++;
		} else if (is_state_record(ph.name)) {
			if (extra) {
				if (extra(r, &ph, arg) < 0)
					goto fail;
			} else if (sk_reader_skip(r, &ph) < 0)
				goto fail;
		} else {
			sk_error("%s: record %ld: '%s' is not a parameter of this model", sk_reader_name(r),
			         sk_reader_index(r), ph.name);
			goto fail;
		}
		sk_header_free(&ph);
	}
	if (got != np) {
		for (int i = 0; i < np; i++)
			if (!seen[i]) {
				sk_error("%s: model lacks parameter '%s' (%d of %d present)", sk_reader_name(r), ps[i]->name,
				         got, np);
				break;
			}
		goto fail;
	}
	free(seen);
	free(ps);
	free(text);
	return m;
fail:
	sk_header_free(&ph);
	free(seen);
	free(ps);
	free(text);
	sk_model_free(m);
	return NULL;
}

sk_model *sk_model_read(sk_reader *r, const sk_header *h) { return sk_model_read_ex(r, h, NULL, NULL); }

/* A stream starts with the record magic; anything else is taken as spec text. */
static int looks_like_stream(const char *buf, size_t len)
{
	static const char magic[] = SK_STREAM_MAGIC_PREFIX;
	return len >= sizeof magic - 1 && !memcmp(buf, magic, sizeof magic - 1);
}

/* Read all of f (after `pre`, the n0 bytes already read) as spec text. */
static char *slurp(FILE *f, const char *name, const char *pre, size_t n0, size_t *len)
{
	size_t cap = 65536, n = n0;
	char *buf = malloc(cap + 1);
	if (!buf) {
		sk_error("out of memory");
		return NULL;
	}
	memcpy(buf, pre, n0);
	for (;;) {
		size_t k = fread(buf + n, 1, cap - n, f);
		n += k;
		if (n < cap) {
			if (ferror(f)) {
				sk_error("%s: read error: %s", name, strerror(errno));
				free(buf);
				return NULL;
			}
			break;
		}
		if (cap >= MODEL_TEXT_MAX) {
			sk_error("%s: larger than %zu bytes", name, cap);
			free(buf);
			return NULL;
		}
		char *nb = realloc(buf, 2 * cap + 1);
		if (!nb) {
			sk_error("out of memory reading %s", name);
			free(buf);
			return NULL;
		}
		buf = nb;
		cap *= 2;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

/* A FILE that replays the bytes already peeked, then reads on from `f`, so
 * that a stream is read in place (a pipe, or a zoo far larger than memory). */
struct replay {
	FILE *f;
	char buf[8];
	size_t n, pos;
};

static ssize_t replay_read(void *cookie, char *out, size_t len)
{
	struct replay *r = cookie;
	if (r->pos < r->n) {
		size_t k = r->n - r->pos < len ? r->n - r->pos : len;
		memcpy(out, r->buf + r->pos, k);
		r->pos += k;
		return (ssize_t)k;
	}
	size_t k = fread(out, 1, len, r->f);
	if (k == 0 && ferror(r->f))
		return -1;
	return (ssize_t)k;
}

static int replay_close(void *cookie)
{
	(void)cookie;
	return 0;
}

sk_model *sk_model_load_ex(const char *path, sk_model_extra_fn extra, void *arg)
{
	int is_stdin = !path || !strcmp(path, "-");
	const char *name = is_stdin ? "<stdin>" : path;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	sk_model *m = NULL;
	struct replay rp;
	struct stat st;
	size_t len = 0;
	char *buf;
	if (!f) {
		sk_error("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		sk_error("%s: is a directory", name);
		if (!is_stdin)
			fclose(f);
		return NULL;
	}
	memset(&rp, 0, sizeof rp);
	rp.f = f;
	rp.n = fread(rp.buf, 1, 4, f);
	if (looks_like_stream(rp.buf, rp.n)) {
		cookie_io_functions_t io = {replay_read, NULL, NULL, replay_close};
		FILE *rf = fopencookie(&rp, "rb", io);
		sk_reader *r = NULL;
		sk_header h;
		int s;
		memset(&h, 0, sizeof h);
		if (!rf)
			sk_error("%s: %s", name, strerror(errno));
		else if ((r = sk_reader_fdopen(rf, name))) {
			s = sk_reader_next(r, &h);
			if (s == 0)
				sk_error("%s: empty stream, no model", name);
			else if (s > 0)
				m = sk_model_read_ex(r, &h, extra, arg);
			sk_header_free(&h);
			sk_reader_close(r);
		}
		if (rf)
			fclose(rf);
		if (!is_stdin)
			fclose(f);
		return m;
	}
	buf = slurp(f, name, rp.buf, rp.n, &len);
	if (!is_stdin)
		fclose(f);
	if (!buf)
		return NULL;
	if (memchr(buf, 0, len))
		sk_error("%s: neither a model stream nor spec text", name);
	else
		m = sk_model_from_text(buf, name);
	free(buf);
	return m;
}

sk_model *sk_model_load(const char *path) { return sk_model_load_ex(path, NULL, NULL); }

/* ---- copying parameters ---- */

static int matches_only(const char *pname, const char *only)
{
	size_t k;
	if (!only)
		return 1;
	k = strlen(only);
	return !strncmp(pname, only, k) && pname[k] == '.';
}

int sk_model_copy_params(sk_model *dst, const sk_model *src, const char *only)
{
	sk_param **pd, **ps;
	int nd = sk_model_params(dst, &pd), ns, copied = 0;
	if (nd < 0)
		return -1;
	if ((ns = sk_model_params((sk_model *)src, &ps)) < 0) {
		free(pd);
		return -1;
	}
	for (int i = 0; i < nd; i++) {
		if (!matches_only(pd[i]->name, only))
			continue;
		for (int j = 0; j < ns; j++) {
			if (strcmp(pd[i]->name, ps[j]->name))
				continue;
			if (pd[i]->size != ps[j]->size || pd[i]->ndim != ps[j]->ndim ||
			    memcmp(pd[i]->shape, ps[j]->shape, sizeof(int64_t) * (size_t)pd[i]->ndim)) {
				char a[96], b[96];
				sk_error("parameter '%s' is %s in the source but %s in the model", pd[i]->name,
				         sk_shape_str(ps[j]->ndim, ps[j]->shape, a, sizeof a),
				         sk_shape_str(pd[i]->ndim, pd[i]->shape, b, sizeof b));
				free(pd);
				free(ps);
				return -1;
			}
			memcpy(pd[i]->w, ps[j]->w, pd[i]->size * sizeof(float));
			copied++;
			break;
		}
	}
	free(pd);
	free(ps);
	return copied;
}

/* ---- reports ---- */

size_t sk_model_param_count(sk_model *m) { return sk_seq_param_count(m->seq); }
double sk_model_flops(sk_model *m) { return sk_seq_flops(m->seq); }

static size_t layer_params(sk_layer *l)
{
	size_t n = 0;
	for (int i = 0; i < l->nparams; i++)
		if (!(l->params[i].flags & SK_P_BUFFER))
			n += l->params[i].size;
	for (int c = 0; c < l->nchild; c++)
		n += sk_seq_param_count(l->child[c]);
	return n;
}

struct report {
	FILE *f;
};

static int report_layer(sk_layer *l, int depth, void *arg)
{
	struct report *r = arg;
	char shp[64];
	fprintf(r->f, "%*s%-*s %-10s %-12s %10zu %10.3f\n", 2 * depth, "", 22 - 2 * depth, l->name, l->ops->type,
	        sk_shape_fmt(l->out, shp, sizeof shp), layer_params(l), l->flops / 1e6);
	return 0;
}

void sk_model_report(sk_model *m, FILE *f)
{
	struct report r = {f};
	char shp[64];
	fprintf(f, "%-22s %-10s %-12s %10s %10s\n", "layer", "type", "output", "params", "MFLOPs");
	sk_seq_walk_layers(m->seq, report_layer, &r);
	fprintf(f, "%-22s %-10s %-12s %10zu %10.3f\n", "total", "", sk_shape_fmt(m->seq->out, shp, sizeof shp),
	        sk_model_param_count(m), sk_model_flops(m) / 1e6);
}
