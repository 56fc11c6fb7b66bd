/* tns-export: records of a tensor stream out as .npy, PNG (one image, or a
 * grid montage of a batch or of conv filters) or TSV text.
 *
 * Records of the chosen name are joined along their first axis, so a data
 * set stored in chunks exports as one array. */
#include "sk_cli.h"
#include "sk_import.h"
#include "sk_stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_FORMAT, OPT_NAME, OPT_OUTPUT, OPT_GRID, OPT_INDEX, OPT_SCALE, OPT_ZOOM, OPT_TILE, OPT_HEADER, OPT_FORCE,
       OPT_N };

static const sk_option options[] = {
	[OPT_FORMAT] = {"format", 'F', "npy|png|tsv", "output format (required)"},
	[OPT_NAME] = SK_OPT_NAME("export the records named NAME (tsv: repeatable, one column group each)"),
	[OPT_OUTPUT] = SK_OPT_OUTPUT("write to OUT (default: standard output)"),
	[OPT_GRID] = {"grid", 'g', "COLSxROWS",
	              "png: tiles per row and rows of the montage (default: square, at most 64 tiles)"},
	[OPT_INDEX] = {"index", 'i', "I", "png: only example I (0-based, across chunks)"},
	[OPT_SCALE] = {"scale", 0, "auto|none", "png: auto = each tile to its own min..max; none = values as 0..255 "
	                                        "(default: none for u8, auto otherwise)"},
	[OPT_ZOOM] = {"zoom", 'Z', "N", "png: enlarge each pixel N times (default: tiles below 16 pixels are enlarged)"},
	[OPT_TILE] = {"tile", 't', "[Cx]HxW",
	              "png: read each example (row) as C x H x W, e.g. 28x28 for N x 784 vectors or weights"},
	[OPT_HEADER] = {"header", 'H', NULL, "tsv: a first line of column names"},
	[OPT_FORCE] = SK_OPT_FORCE,
	[OPT_N] = {0, 0, 0, 0},
};

enum { FMT_NONE, FMT_NPY, FMT_PNG, FMT_TSV };

#define MAXCOLS 64

/* Records of one name joined along the first axis. */
typedef struct col {
	char name[SK_NAME_MAX];
	sk_dtype dtype;
	int ndim;
	int64_t shape[SK_MAXDIM];
	char *data;
	size_t bytes, cap;
} col;

typedef struct opts {
	int fmt;
	const char *names[MAXCOLS];
	int nnames;
	int cols, rows;
	int64_t index;
	int scale;      /* -1 default, 0 none, 1 auto */
	int zoom;       /* 0 = auto */
	int64_t tile[3];  /* --tile C, H, W (C = 0: not given) */
	int header;
} opts;

static col *find_col(col *c, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(c[i].name, name))
			return &c[i];
	return NULL;
}

static int wanted(const opts *o, const char *name)
{
	for (int i = 0; i < o->nnames; i++)
		if (!strcmp(o->names[i], name))
			return 1;
	return 0;
}

/* Append the current record's payload to c (a new column when c->ndim < 0). */
static int col_add(sk_reader *r, const sk_header *h, col *c, int fresh)
{
	if (fresh) {
		snprintf(c->name, sizeof c->name, "%s", h->name);
		c->dtype = h->dtype;
		c->ndim = h->ndim;
		memcpy(c->shape, h->shape, sizeof c->shape);
	} else {
		int same = c->dtype == h->dtype && c->ndim == h->ndim && h->ndim > 0;
		for (int d = 1; same && d < h->ndim; d++)
			same = c->shape[d] == h->shape[d];
		if (!same) {
			char a[96], b[96];
			return sk_error("%s: record %ld: '%s' is %s %s but earlier '%s' records are %s %s (cannot join)",
			                sk_reader_name(r), sk_reader_index(r), h->name, sk_dtype_name(h->dtype),
			                sk_shape_str(h->ndim, h->shape, a, sizeof a), c->name, sk_dtype_name(c->dtype),
			                sk_shape_str(c->ndim, c->shape, b, sizeof b));
		}
		c->shape[0] += h->shape[0];
	}
	if (h->rawbytes > SK_MAX_BYTES - c->bytes)
		return sk_error("%s: '%s' records larger than %llu bytes together", sk_reader_name(r), h->name,
		                (unsigned long long)SK_MAX_BYTES);
	/* the buffer grows as the data arrive, not by the header */
	void *p = c->data;
	int rc = sk_reader_payload_append(r, h, &p, &c->cap, &c->bytes);
	c->data = p;
	return rc;
}

static int64_t per_example(const col *c)
{
	int64_t p = 1;
	for (int d = 1; d < c->ndim; d++)
		p *= c->shape[d];
	return p;
}

static double value(const col *c, size_t i)
{
	switch (c->dtype) {
	case SK_U8: return ((const uint8_t *)c->data)[i];
	case SK_I32: return ((const int32_t *)c->data)[i];
	default: return ((const float *)c->data)[i];
	}
}

/* ---- PNG montage ---- */

static int write_png(FILE *f, const col *c, const opts *o)
{
	int64_t N, C, H, W;
	if (o->tile[0]) {
		int64_t per = c->ndim ? per_example(c) : 1;
		if (c->ndim < 1 || per != o->tile[0] * o->tile[1] * o->tile[2]) {
			char a[96];
			return sk_error("'%s' is %s: examples of %lld values cannot be read as %lldx%lldx%lld tiles", c->name,
			                sk_shape_str(c->ndim, c->shape, a, sizeof a), (long long)per, (long long)o->tile[0],
			                (long long)o->tile[1], (long long)o->tile[2]);
		}
		N = c->shape[0], C = o->tile[0], H = o->tile[1], W = o->tile[2];
	} else if (c->ndim == 2) {
		N = 1, C = 1, H = c->shape[0], W = c->shape[1];
	} else if (c->ndim == 3) {
		N = c->shape[0], C = 1, H = c->shape[1], W = c->shape[2];
	} else if (c->ndim == 4) {
		N = c->shape[0], C = c->shape[1], H = c->shape[2], W = c->shape[3];
	} else {
		char a[96];
		return sk_error("'%s' is %s: a PNG needs 2 (HxW), 3 (NxHxW) or 4 (NxCxHxW) dimensions, or --tile", c->name,
		                sk_shape_str(c->ndim, c->shape, a, sizeof a));
	}
	int64_t first = 0, nex = N;
	if (o->index >= 0) {
		if (o->index >= N)
			return sk_error("--index %lld out of range: '%s' has %lld examples", (long long)o->index, c->name,
			                (long long)N);
		first = o->index;
		nex = 1;
	}
	int rgb = C == 3;
	int64_t tiles_per_ex = (C == 1 || C == 3) ? 1 : C;   /* one gray tile per channel otherwise */
	int tc = rgb ? 3 : 1;
	int64_t ntiles = nex * tiles_per_ex;
	int64_t cols = o->cols, rows = o->rows;
	if (!cols) {
		if (tiles_per_ex > 1) {
			cols = tiles_per_ex;
			rows = nex;
		} else {
			int64_t t = ntiles < 64 ? ntiles : 64;
			cols = (int64_t)ceil(sqrt((double)t));
			if (cols < 1)
				cols = 1;
			rows = (t + cols - 1) / cols;
		}
	}
	if (ntiles > cols * rows)
		ntiles = cols * rows;
	if (ntiles == 1)
		cols = rows = 1;
	else if (!o->cols && rows * cols > ntiles && tiles_per_ex == 1)
		rows = (ntiles + cols - 1) / cols;
	int64_t big = H > W ? H : W;
	int64_t zoom = o->zoom ? o->zoom : (big < 16 ? (16 + big - 1) / big : 1);
	int gap = ntiles > 1 ? 1 : 0;
	int64_t th = H * zoom, tw = W * zoom;
	int64_t ih = rows * th + (rows - 1) * gap, iw = cols * tw + (cols - 1) * gap;
	if (H < 1 || W < 1 || ih > 65536 || iw > 65536 || ih * iw * tc > (int64_t)1 << 30)
		return sk_error("montage of %lldx%lld pixels is too large or empty (use --grid or --index)",
		                (long long)ih, (long long)iw);
	uint8_t *img = malloc((size_t)(ih * iw * tc));
	if (!img)
		return sk_error("out of memory");
	memset(img, 255, (size_t)(ih * iw * tc));
	int scale = o->scale >= 0 ? o->scale : c->dtype != SK_U8;
	size_t plane = (size_t)(H * W);
	for (int64_t t = 0; t < ntiles; t++) {
		int64_t ex = first + t / tiles_per_ex, ch0 = tiles_per_ex > 1 ? t % tiles_per_ex : 0;
		size_t base = (size_t)ex * (size_t)(C * H * W) + (size_t)ch0 * plane;
		size_t cnt = plane * (size_t)tc;
		double lo = 0, hi = 255;
		if (scale) {
			lo = INFINITY, hi = -INFINITY;
			for (size_t i = 0; i < cnt; i++) {
				double v = value(c, base + i);
				if (v < lo) lo = v;
				if (v > hi) hi = v;
			}
			if (!(hi > lo))
				hi = lo + 1;
		}
		int64_t ty = (t / cols) * (th + gap), tx = (t % cols) * (tw + gap);
		for (int k = 0; k < tc; k++)
			for (int64_t y = 0; y < th; y++)
				for (int64_t x = 0; x < tw; x++) {
					double v = value(c, base + (size_t)k * plane + (size_t)((y / zoom) * W + x / zoom));
					double s = scale ? (v - lo) * 255.0 / (hi - lo) : v;
					uint8_t b = isnan(s) ? 0 : s <= 0 ? 0 : s >= 255 ? 255 : (uint8_t)lrint(s);
					img[(size_t)k * (size_t)(ih * iw) + (size_t)((ty + y) * iw + tx + x)] = b;
				}
	}
	int rc = sk_png_write(f, tc, (int)ih, (int)iw, img);
	free(img);
	return rc;
}

/* ---- TSV ---- */

static int write_tsv(FILE *f, col *c, int n, const opts *o)
{
	int64_t rows = -1;
	for (int i = 0; i < n; i++) {
		int64_t r = c[i].ndim == 0 ? 1 : c[i].shape[0];
		if (rows >= 0 && r != rows)
			return sk_error("'%s' has %lld rows but '%s' has %lld: give records of one length (-n)", c[0].name,
			                (long long)rows, c[i].name, (long long)r);
		rows = r;
	}
	if (o->header) {
		for (int i = 0; i < n; i++) {
			int64_t p = c[i].ndim == 0 ? 1 : per_example(&c[i]);
			for (int64_t j = 0; j < p; j++) {
				if (i || j)
					fputc('\t', f);
				if (p == 1)
					fputs(c[i].name, f);
				else
					fprintf(f, "%s[%lld]", c[i].name, (long long)j);
			}
		}
		fputc('\n', f);
	}
	for (int64_t r = 0; r < rows; r++) {
		for (int i = 0; i < n; i++) {
			int64_t p = c[i].ndim == 0 ? 1 : per_example(&c[i]);
			for (int64_t j = 0; j < p; j++) {
				if (i || j)
					fputc('\t', f);
				size_t k = (size_t)(r * p + j);
				if (c[i].dtype == SK_F32)
					fprintf(f, "%.6g", ((const float *)c[i].data)[k]);
				else
					fprintf(f, "%d", (int)value(&c[i], k));
			}
		}
		if (fputc('\n', f) == EOF)
			return sk_error("write error");
	}
	return 0;
}

int main(int argc, char **argv)
{
	sk_cli cli = {
		.prog = "tns-export",
		.synopsis = "-F npy|png|tsv [-n NAME] [-o OUT] [--grid COLSxROWS] [--index I] [--scale auto|none] [FILE|-]",
		.summary = "Export records of a tensor stream as .npy, PNG (image or montage) or TSV text.",
		.opts = options,
	};
	sk_cli_init(&cli, argc, argv);
	opts o;
	memset(&o, 0, sizeof o);
	o.index = -1;
	o.scale = -1;
	const char *out = "-", *arg;
	int force = 0, opt, first;
	while ((opt = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0) {
		switch (opt) {
		case OPT_FORMAT:
			if (!strcmp(arg, "npy")) o.fmt = FMT_NPY;
			else if (!strcmp(arg, "png")) o.fmt = FMT_PNG;
			else if (!strcmp(arg, "tsv")) o.fmt = FMT_TSV;
			else sk_usage("unknown format '%s' (expected npy, png or tsv)", arg);
			break;
		case OPT_NAME:
			if (o.nnames == MAXCOLS)
				sk_usage("more than %d -n options", MAXCOLS);
			if (sk_check_name(arg) < 0)
				sk_usage("bad record name '%s': %s", arg, sk_errmsg());
			o.names[o.nnames++] = arg;
			break;
		case OPT_OUTPUT: out = arg; break;
		case OPT_GRID: {
			int a, b, k = 0;
			if (sscanf(arg, "%dx%d%n", &a, &b, &k) != 2 || arg[k] || a < 1 || b < 1 || a > 4096 || b > 4096)
				sk_usage("bad --grid '%s' (expected COLSxROWS, e.g. 8x8)", arg);
			o.cols = a;
			o.rows = b;
			break;
		}
		case OPT_INDEX: o.index = sk_arg_long("--index", arg, 0, SK_MAX_EXTENT - 1); break;
		case OPT_SCALE:
			if (!strcmp(arg, "auto")) o.scale = 1;
			else if (!strcmp(arg, "none")) o.scale = 0;
			else sk_usage("bad --scale '%s' (expected auto or none)", arg);
			break;
		case OPT_ZOOM: o.zoom = (int)sk_arg_long("--zoom", arg, 1, 64); break;
		case OPT_TILE: {
			long a = 0, b = 0, c = 0;
			int k = 0;
			if (sscanf(arg, "%ldx%ldx%ld%n", &a, &b, &c, &k) == 3 && !arg[k]) {
			} else if (k = 0, c = 0, sscanf(arg, "%ldx%ld%n", &b, &c, &k) == 2 && !arg[k]) {
				a = 1;
			} else {
				sk_usage("bad --tile '%s' (expected HxW or CxHxW, e.g. 28x28)", arg);
			}
			if (a < 1 || b < 1 || c < 1 || b > 65536 || c > 65536 || a > 65536)
				sk_usage("bad --tile '%s' (every extent must be 1..65536)", arg);
			o.tile[0] = a, o.tile[1] = b, o.tile[2] = c;
			break;
		}
		case OPT_HEADER: o.header = 1; break;
		case OPT_FORCE: force = 1; break;
		}
	}
	if (o.fmt == FMT_NONE) {
		/* -f was the format before it meant --force */
		for (int i = first; i < argc; i++)
			if (!strcmp(argv[i], "npy") || !strcmp(argv[i], "png") || !strcmp(argv[i], "tsv"))
				sk_usage("no output format: the format option is -F (-f is --force): -F %s", argv[i]);
		sk_usage("no output format: give -F npy, -F png or -F tsv");
	}
	const char *path = sk_cli_input(argc, argv, first);
	if (o.fmt != FMT_TSV && o.nnames > 1)
		sk_usage("-n may be repeated for tsv only");
	if (o.fmt != FMT_PNG && (o.cols || o.index >= 0 || o.scale >= 0 || o.zoom || o.tile[0]))
		sk_usage("--grid, --index, --scale, --zoom and --tile apply to -F png only");
	if (o.fmt != FMT_TSV && o.header)
		sk_usage("--header applies to -F tsv only");

	sk_reader *r = sk_reader_open(path);
	if (!r)
		sk_die_lib();
	col cols[MAXCOLS];
	int ncols = 0, s;
	sk_header h;
	memset(&h, 0, sizeof h);
	memset(cols, 0, sizeof cols);
	char seen[4][SK_NAME_MAX];
	int nseen = 0;
	while ((s = sk_reader_next(r, &h)) > 0) {
		/* a zoo is models concatenated: only the first model's records */
		if (ncols && !strcmp(h.name, "model"))
			break;
		int take;
		if (o.nnames)
			take = wanted(&o, h.name);
		else if (o.fmt == FMT_PNG)
			take = ncols ? !strcmp(h.name, cols[0].name) : h.ndim >= 2 || (o.tile[0] && h.ndim >= 1);
		else
			take = 1;
		if (o.fmt == FMT_NPY && !o.nnames && ncols && !find_col(cols, ncols, h.name)) {
			int dup = 0;
			for (int i = 0; i < nseen; i++)
				dup |= !strcmp(seen[i], h.name);
			if (!dup && nseen < 4)
				snprintf(seen[nseen++], SK_NAME_MAX, "%s", h.name);
			take = 0;
		}
		if (!take) {
			if (sk_reader_skip(r, &h) < 0)
				goto fail;
			continue;
		}
		col *c = find_col(cols, ncols, h.name);
		int fresh = !c;
		if (fresh) {
			if (ncols == MAXCOLS) {
				sk_error("more than %d record names: choose with -n", MAXCOLS);
				goto fail;
			}
			c = &cols[ncols++];
		} else if (c->ndim == 0 || h.ndim == 0) {
			sk_error("%s: several scalar records named '%s' (cannot join)", sk_reader_name(r), h.name);
			goto fail;
		}
		if (col_add(r, &h, c, fresh) < 0)
			goto fail;
		/* png: stop once the montage is covered (bounded work on big sets) */
		if (o.fmt == FMT_PNG && (c->ndim >= 3 || o.tile[0])) {
			int64_t need = o.index >= 0 ? o.index + 1 : (o.cols ? (int64_t)o.cols * o.rows : 64);
			if (c->shape[0] >= need)
				break;
		}
	}
	if (s < 0)
		goto fail;
	sk_header_free(&h);
	if (ncols == 0) {
		if (o.nnames)
			sk_error("%s: no record named '%s'", sk_reader_name(r), o.names[0]);
		else
			sk_error("%s: no %srecords", sk_reader_name(r), o.fmt == FMT_PNG ? "image-shaped " : "");
		goto fail;
	}
	if (nseen) {
		char list[4 * SK_NAME_MAX + 64];
		size_t k = (size_t)snprintf(list, sizeof list, "%s", cols[0].name);
		for (int i = 0; i < nseen; i++)
			k += (size_t)snprintf(list + k, sizeof list - k, ", %s", seen[i]);
		sk_error("%s has records %s%s: choose one with -n", sk_reader_name(r), list, nseen == 4 ? ", ..." : "");
		goto fail;
	}
	for (int i = 0; i < o.nnames; i++)
		if (!find_col(cols, ncols, o.names[i])) {
			sk_error("%s: no record named '%s'", sk_reader_name(r), o.names[i]);
			goto fail;
		}
	sk_ofile_install_signals();
	sk_ofile *of = sk_ofile_open(out, force || o.fmt == FMT_TSV);
	if (!of)
		goto fail;
	FILE *f = sk_ofile_fp(of);
	int rc;
	if (o.fmt == FMT_NPY) {
		sk_tensor t = {.dtype = cols[0].dtype, .ndim = cols[0].ndim, .data = cols[0].data, .view = 1};
		memcpy(t.shape, cols[0].shape, sizeof t.shape);
		rc = sk_npy_write(f, &t);
	} else if (o.fmt == FMT_PNG) {
		rc = write_png(f, &cols[0], &o);
	} else {
		/* columns in the order the -n options name them */
		col ord[MAXCOLS];
		int n = 0;
		if (o.nnames)
			for (int i = 0; i < o.nnames; i++)
				ord[n++] = *find_col(cols, ncols, o.names[i]);
		else
			for (int i = 0; i < ncols; i++)
				ord[n++] = cols[i];
		rc = write_tsv(f, ord, n, &o);
	}
	if (rc < 0) {
		sk_ofile_abort(of);
		goto fail;
	}
	if (sk_ofile_commit(of) < 0)
		goto fail;
	for (int i = 0; i < ncols; i++)
		free(cols[i].data);
	sk_reader_close(r);
	return 0;
fail:
	{
		char msg[512];
		snprintf(msg, sizeof msg, "%s", sk_errmsg());
		sk_header_free(&h);
		for (int i = 0; i < ncols; i++)
			free(cols[i].data);
		sk_reader_close(r);
		sk_die("%s", msg);
	}
}
