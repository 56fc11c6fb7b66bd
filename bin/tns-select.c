/* tns-select: keep records by name, and examples of a data set by range or
 * by a seeded random split.  One record (a chunk) in memory at a time.
 *
 * Examples are numbered 0, 1, 2, ... across the chunks of each per-example
 * record name (`images`, `labels`): chunk k of `images` and chunk k of
 * `labels` cover the same examples.  The split is a pure function of
 * (seed, example number), so it needs no pass over the data and gives the
 * same answer whatever the chunk sizes. */
#include "sk_cli.h"
#include "sk_data.h"
#include "sk_stream.h"

#include <string.h>

enum { OPT_NAME, OPT_RANGE, OPT_SPLIT, OPT_SEED, OPT_PART, OPT_OUTPUT, OPT_COMPRESS, OPT_FORCE, OPT_LEVEL, OPT_N };

static const sk_option options[] = {
	[OPT_NAME] = SK_OPT_NAME("keep records named NAME (repeatable; default: all records)"),
	[OPT_RANGE] = {"range", 'r', "FROM:TO",
	               "keep examples FROM..TO-1 of images/labels records (either end may be empty)"},
	[OPT_SPLIT] = {"split", 0, "FRACTION",
	               "seeded random split: FRACTION (0..1) of the examples form the second part"},
	[OPT_SEED] = SK_OPT_SEED("seed of the split (default 1)"),
	[OPT_PART] = {"part", 0, "first|second", "which part of the split to keep (default first)"},
	[OPT_OUTPUT] = SK_OPT_OUTPUT("write to OUT (default: standard output)"),
	[OPT_COMPRESS] = SK_OPT_COMPRESS("deflate level 1..9 of rewritten records, 0 = raw (default: as the input)"),
	[OPT_FORCE] = SK_OPT_FORCE,
	[OPT_LEVEL] = {"level", 0, "N", NULL},   /* before --compress */
	[OPT_N] = {0, 0, 0, 0},
};

#define MAXNAMES 64

typedef struct sel {
	const char *names[MAXNAMES];
	int matched[MAXNAMES];
	int nnames;
	sk_select x;             /* the examples kept (lib/stream/select.c) */
	int level;               /* -1 = keep the input's encoding */
} sel;

static int name_kept(sel *s, const char *name)
{
	if (s->nnames == 0)
		return 1;
	for (int i = 0; i < s->nnames; i++)
		if (strcmp(s->names[i], name) == 0) {
			s->matched[i] = 1;
			return 1;
		}
	return 0;
}

static void parse_range(sel *s, const char *arg)
{
	const char *colon = strchr(arg, ':');
	if (!colon)
		sk_usage("--range: '%s' is not FROM:TO", arg);
	char a[32] = "", b[32] = "";
	size_t la = (size_t)(colon - arg), lb = strlen(colon + 1);
	if (la >= sizeof a || lb >= sizeof b)
		sk_usage("--range: '%s' is not FROM:TO", arg);
	memcpy(a, arg, la);
	memcpy(b, colon + 1, lb);
	s->x.from = la ? sk_arg_long("--range", a, 0, SK_MAX_EXTENT * 64) : 0;
	s->x.to = lb ? sk_arg_long("--range", b, 0, SK_MAX_EXTENT * 64) : -1;
	if (s->x.to >= 0 && s->x.to < s->x.from)
		sk_usage("--range: %s ends before it starts", arg);
	s->x.have_range = 1;
}

int main(int argc, char **argv)
{
	sk_cli cli = {
		.prog = "tns-select",
		.synopsis = "[-n NAME]... [--range FROM:TO] [--split FRACTION --seed S --part first|second] [-z LEVEL] "
		            "[-o OUT] [FILE|-]",
		.summary = "Keep records by name, and examples of a data set by range or seeded random split.",
		.opts = options,
	};
	sk_cli_init(&cli, argc, argv);
	sel s = {.x.seed = 1, .level = -1};
	const char *out = "-", *arg;
	int force = 0, opt, first, have_seed = 0, have_part = 0;
	while ((opt = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0) {
		switch (opt) {
		case OPT_NAME:
			if (s.nnames >= MAXNAMES)
				sk_usage("more than %d -n options", MAXNAMES);
			s.names[s.nnames++] = arg;
			break;
		case OPT_RANGE: parse_range(&s, arg); break;
		case OPT_SPLIT:
			s.x.frac = sk_arg_double("--split", arg, 0, 1);
			s.x.have_split = 1;
			break;
		case OPT_SEED:
			s.x.seed = sk_arg_seed("--seed", arg);
			have_seed = 1;
			break;
		case OPT_PART:
			if (strcmp(arg, "first") == 0)
				s.x.second = 0;
			else if (strcmp(arg, "second") == 0)
				s.x.second = 1;
			else
				sk_usage("--part: '%s' is not first or second", arg);
			have_part = 1;
			break;
		case OPT_OUTPUT: out = arg; break;
		case OPT_COMPRESS: s.level = sk_arg_level(arg); break;
		case OPT_LEVEL:
			s.level = sk_arg_level(arg);
			sk_cli_deprecated("--level", "-z/--compress");
			break;
		case OPT_FORCE: force = 1; break;
		}
	}
	if ((have_seed || have_part) && !s.x.have_split)
		sk_usage("--seed and --part need --split");
	const char *path = sk_cli_input(argc, argv, first);
	sk_reader *r = sk_reader_open(path);
	if (!r)
		sk_die_lib();
	sk_ofile_install_signals();
	sk_ofile *o = sk_ofile_open(out, force);
	if (!o)
		sk_die_lib();
	FILE *f = sk_ofile_fp(o);
	int64_t base_images = 0, base_labels = 0;
	long nin = 0;
	sk_header h;
	int st;
	while ((st = sk_reader_next(r, &h)) > 0) {
		nin++;
		int per_example = strcmp(h.name, "images") == 0 || strcmp(h.name, "labels") == 0;
		int64_t *base = strcmp(h.name, "images") == 0 ? &base_images : &base_labels;
		int64_t n = h.ndim > 0 ? h.shape[0] : 1;
		int filtering = per_example && (s.x.have_range || s.x.have_split) && h.ndim > 0;
		if (!name_kept(&s, h.name)) {
			if (per_example)
				*base += n;
			if (sk_reader_skip(r, &h) < 0)
				goto fail;
			continue;
		}
		int64_t from = *base, to = *base + n;   /* this record's examples */
		if (per_example)
			*base += n;
		int level = s.level >= 0 ? s.level : h.encoding == SK_DEFLATE ? 6 : 0;
		int same_encoding = s.level < 0 || (s.level == 0) == (h.encoding == SK_RAW);
		/* The range alone decides by arithmetic, before any decoding. */
		int64_t lo = from, hi = to;
		if (filtering && s.x.have_range) {
			lo = from > s.x.from ? from : s.x.from;
			hi = s.x.to >= 0 && s.x.to < to ? s.x.to : to;
			if (hi <= lo) {
				if (sk_reader_skip(r, &h) < 0)
					goto fail;
				continue;
			}
		}
		if (!filtering || (!s.x.have_split && lo == from && hi == to)) {
			if (same_encoding) {
				/* the whole record, as stored: copied, checked, not re-encoded */
				if (sk_reader_copy(r, &h, f) < 0)
					goto fail;
			} else {
				sk_tensor t;
				if (sk_reader_payload(r, &h, &t) < 0)
					goto fail;
				int w = sk_write_record(f, h.name, &t, &h.attrs, level);
				sk_tensor_free(&t);
				if (w < 0)
					goto fail;
			}
			continue;
		}
		/* Some examples: decode first (the reader grows its buffer only as
		 * data arrives, so a lying header costs nothing), then keep those
		 * the range and split keep, compacted in place. */
		sk_tensor t;
		if (sk_reader_payload(r, &h, &t) < 0)
			goto fail;
		int w = sk_select_tensor(&s.x, &t, from) > 0 ? sk_write_record(f, h.name, &t, &h.attrs, level) : 0;
		sk_tensor_free(&t);
		if (w < 0)
			goto fail;
	}
	if (st < 0)
		goto fail;
	if (nin == 0) {
		sk_error("%s: empty stream (no records)", sk_reader_name(r));
		goto fail;
	}
	for (int i = 0; i < s.nnames; i++)
		if (!s.matched[i]) {
			sk_error("%s: no record named '%s'", sk_reader_name(r), s.names[i]);
			goto fail;
		}
	if (sk_ofile_commit(o) < 0) {
		o = NULL;
		goto fail;
	}
	sk_reader_close(r);
	return 0;
fail:
	/* remove the partial output first, then report */
	if (o)
		sk_ofile_abort(o);
	sk_die_lib();
}
