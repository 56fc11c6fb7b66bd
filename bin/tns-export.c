/* tns-export: records of a tensor stream out as .npy, PNG (one image, or a
 * grid montage of a batch or of conv filters) or TSV text.
 *
 * Records of the chosen name are joined along their first axis, so a data
 * set stored in chunks exports as one array. */
#include "sk_cli.h"
#include "sk_import.h"
#include "sk_stream.h"

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

typedef struct opts {
	int fmt;
	const char *names[MAXCOLS];
	int nnames;
	sk_montage png;
	int header;
} opts;

static sk_joined *find_col(sk_joined *c, int n, const char *name)
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

int main(int argc, char **argv)
{
	sk_cli cli = {
		.prog = "tns-export",
		.synopsis = "-F npy|png|tsv [-n NAME] [-o OUT] [--grid COLSxROWS] [--index I] [--scale auto|none] [FILE|-]",
		.summary = "Export records of a tensor stream as .npy, PNG (image or montage) or TSV text.",
		.opts = options,
	};
	sk_cli_init(&cli, argc, argv);
	opts o = {.png = {.index = -1, .scale = -1}};
	sk_montage *g = &o.png;
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
			g->cols = a;
			g->rows = b;
			break;
		}
		case OPT_INDEX: g->index = sk_arg_long("--index", arg, 0, SK_MAX_EXTENT - 1); break;
		case OPT_SCALE:
			if (!strcmp(arg, "auto")) g->scale = 1;
			else if (!strcmp(arg, "none")) g->scale = 0;
			else sk_usage("bad --scale '%s' (expected auto or none)", arg);
			break;
		case OPT_ZOOM: g->zoom = (int)sk_arg_long("--zoom", arg, 1, 64); break;
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
			g->tile[0] = a, g->tile[1] = b, g->tile[2] = c;
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
	if (o.fmt != FMT_PNG && (g->cols || g->index >= 0 || g->scale >= 0 || g->zoom || g->tile[0]))
		sk_usage("--grid, --index, --scale, --zoom and --tile apply to -F png only");
	if (o.fmt != FMT_TSV && o.header)
		sk_usage("--header applies to -F tsv only");

	sk_reader *r = sk_reader_open(path);
	if (!r)
		sk_die_lib();
	sk_joined cols[MAXCOLS];
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
			take = ncols ? !strcmp(h.name, cols[0].name) : h.ndim >= 2 || (g->tile[0] && h.ndim >= 1);
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
		sk_joined *c = find_col(cols, ncols, h.name);
		if (!c) {
			if (ncols == MAXCOLS) {
				sk_error("more than %d record names: choose with -n", MAXCOLS);
				goto fail;
			}
			c = &cols[ncols++];
		} else if (c->t.ndim == 0 || h.ndim == 0) {
			sk_error("%s: several scalar records named '%s' (cannot join)", sk_reader_name(r), h.name);
			goto fail;
		}
		if (sk_joined_add(c, r, &h) < 0)
			goto fail;
		/* png: stop once the montage is covered (bounded work on big sets) */
		if (o.fmt == FMT_PNG && (c->t.ndim >= 3 || g->tile[0])) {
			int64_t need = g->index >= 0 ? g->index + 1 : (g->cols ? (int64_t)g->cols * g->rows : 64);
			if (c->t.shape[0] >= need)
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
	/* tsv: the columns in the order the -n options name them */
	const sk_joined *ord[MAXCOLS];
	for (int i = 0; i < (o.nnames ? o.nnames : ncols); i++)
		if (!(ord[i] = o.nnames ? find_col(cols, ncols, o.names[i]) : &cols[i])) {
			sk_error("%s: no record named '%s'", sk_reader_name(r), o.names[i]);
			goto fail;
		}
	sk_ofile_install_signals();
	sk_ofile *of = sk_ofile_open(out, force || o.fmt == FMT_TSV);
	if (!of)
		goto fail;
	FILE *f = sk_ofile_fp(of);
	int rc = o.fmt == FMT_NPY ? sk_npy_write(f, &cols[0].t)
	         : o.fmt == FMT_PNG ? sk_montage_write(f, &cols[0], g)
	                            : sk_tsv_write(f, ord, o.nnames ? o.nnames : ncols, o.header);
	if (rc < 0) {
		sk_ofile_abort(of);
		goto fail;
	}
	if (sk_ofile_commit(of) < 0)
		goto fail;
	for (int i = 0; i < ncols; i++)
		sk_joined_free(&cols[i]);
	sk_reader_close(r);
	return 0;
fail:
	{
		char msg[512];
		snprintf(msg, sizeof msg, "%s", sk_errmsg());
		sk_header_free(&h);
		for (int i = 0; i < ncols; i++)
			sk_joined_free(&cols[i]);
		sk_reader_close(r);
		sk_die("%s", msg);
	}
}
