/* tns-import: idx (MNIST), CIFAR binary batches, PNG files or class
 * directories, and NumPy .npy arrays into a tensor stream.
 *
 * Every input's header is read and checked before any output is opened;
 * then idx, CIFAR and npy data stream through one chunk of examples at a
 * time.  Output is atomic (a temporary renamed on success). */
#include "sk_cli.h"
#include "sk_data.h"
#include "sk_import.h"
#include "sk_stream.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OPT_FORMAT, OPT_OUTPUT, OPT_CHUNK, OPT_SIZE, OPT_FIT, OPT_NAME, OPT_CLASSES, OPT_COMPRESS, OPT_FORCE,
       OPT_DEFLATE, OPT_N };

static const sk_option options[] = {
	[OPT_FORMAT] = {"format", 'F', "FORMAT",
	                "input format: idx, cifar10, cifar100, png or npy (default: detected from the content)"},
	[OPT_OUTPUT] = SK_OPT_OUTPUT("write to OUT (default: standard output)"),
	[OPT_CHUNK] = {"chunk", 0, "N", "examples per images/labels record (default 10000)"},
	[OPT_SIZE] = {"size", 0, "HxW", "PNG: make every image H x W (with --fit)"},
	[OPT_FIT] = {"fit", 0, "crop|pad", "PNG: centre-crop larger or zero-pad smaller images to --size"},
	[OPT_NAME] = SK_OPT_NAME("npy: import the one array as a single record named NAME (dtype and shape kept)"),
	[OPT_CLASSES] = {"classes", 0, "A,B,...", "class names for the `classes` attribute (default: from the input)"},
	[OPT_COMPRESS] = SK_OPT_COMPRESS("deflate level of the records: 1..9, 0 = raw (default 0)"),
	[OPT_FORCE] = SK_OPT_FORCE,
	[OPT_DEFLATE] = {"deflate", 0, NULL, NULL},   /* before -z LEVEL: level 6 */
	[OPT_N] = {0, 0, 0, 0},
};

/* -f was the format before it meant --force: an operand that names a format
 * and no file is that old command line. */
static void check_operand(const char *s)
{
	sk_format f;
	if (sk_format_parse(s, &f) == 0 && f != SK_FMT_AUTO && access(s, F_OK) != 0)
		sk_usage("no such input '%s'; the format option is -F (-f is --force)", s);
}

int main(int argc, char **argv)
{
	sk_cli cli = {
		.prog = "tns-import",
		.synopsis = "[-F FORMAT] [-o OUT] [--chunk N] [--size HxW --fit crop|pad] [-z LEVEL] FILE...",
		.summary = "Import idx (.gz), CIFAR binary batches, PNG images or directories, or .npy into a tensor stream.",
		.opts = options,
	};
	sk_cli_init(&cli, argc, argv);
	sk_import_opts o = {0};
	const char *out = "-", *arg;
	int level = 0, force = 0, opt, first, have_fit = 0;
	while ((opt = sk_cli_next(&cli, argc, argv, &arg, &first)) >= 0) {
		switch (opt) {
		case OPT_FORMAT:
			if (sk_format_parse(arg, &o.format) < 0 || o.format == SK_FMT_AUTO)
				sk_usage("unknown format '%s' (expected idx, cifar10, cifar100, png or npy)", arg);
			break;
		case OPT_OUTPUT: out = arg; break;
		case OPT_CHUNK: o.chunk = sk_arg_long("--chunk", arg, 1, 1L << 30); break;
		case OPT_SIZE: {
			int h, w, k = 0;
			if (sscanf(arg, "%dx%d%n", &h, &w, &k) != 2 || arg[k] || h < 1 || w < 1 || h > 65536 || w > 65536)
				sk_usage("bad --size '%s' (expected HxW, e.g. 32x32)", arg);
			o.height = h;
			o.width = w;
			break;
		}
		case OPT_FIT:
			if (!strcmp(arg, "crop"))
				o.fit = SK_FIT_CROP;
			else if (!strcmp(arg, "pad"))
				o.fit = SK_FIT_PAD;
			else
				sk_usage("bad --fit '%s' (expected crop or pad)", arg);
			have_fit = 1;
			break;
		case OPT_NAME:
			if (sk_check_name(arg) < 0)
				sk_usage("bad record name '%s': %s", arg, sk_errmsg());
			o.name = arg;
			break;
		case OPT_CLASSES: o.classes = arg; break;
		case OPT_COMPRESS: level = sk_arg_level(arg); break;
		case OPT_DEFLATE:
			sk_cli_deprecated("--deflate", "-z 6 (--compress 6)");
			level = 6;
			break;
		case OPT_FORCE: force = 1; break;
		}
	}
	if (first >= argc)
		sk_usage("no input files");
	for (int i = first; i < argc; i++)
		check_operand(argv[i]);
	if (have_fit && !o.height)
		sk_usage("--fit needs --size HxW");
	if (o.format && o.format != SK_FMT_PNG && (o.height || have_fit))
		sk_usage("--size and --fit apply to PNG input only");

	sk_import *im = sk_import_open((const char *const *)argv + first, argc - first, &o);
	if (!im)
		sk_die_lib();
	sk_ofile_install_signals();
	sk_ofile *of = sk_ofile_open(out, force);
	if (!of) {
		sk_import_close(im);
		sk_die_lib();
	}
	FILE *f = sk_ofile_fp(of);
	sk_attrs attrs;
	sk_attrs_init(&attrs);
	if ((sk_import_classes(im) && sk_attrs_set(&attrs, "classes", sk_import_classes(im)) < 0) ||
	    sk_attrs_set(&attrs, "source", sk_import_source(im)) < 0)
		goto fail;
	const char *name;
	sk_tensor t;
	int s;
	int64_t records = 0;
	while ((s = sk_import_next(im, &name, &t)) > 0) {
		const sk_attrs *a = strcmp(name, "labels") ? &attrs : NULL;
		if (sk_write_record(f, name, &t, a, level) < 0)
			goto fail;
		records++;
	}
	if (s < 0)
		goto fail;
	if (sk_ofile_commit(of) < 0) {
		of = NULL;
		goto fail;
	}
	if (!o.name)
		sk_info("%lld examples (%s) from %d input%s in %lld record%s", (long long)sk_import_count(im),
		        sk_format_name(sk_import_format(im)), argc - first, argc - first > 1 ? "s" : "",
		        (long long)records, records > 1 ? "s" : "");
	sk_attrs_free(&attrs);
	sk_import_close(im);
	return 0;
fail:
	if (of)
		sk_ofile_abort(of);
	sk_attrs_free(&attrs);
	{
		/* keep the message: closing must not clobber it */
		char msg[512];
		snprintf(msg, sizeof msg, "%s", sk_errmsg());
		sk_import_close(im);
		sk_die("%s", msg);
	}
}
