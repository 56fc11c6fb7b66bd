/* mr-build: merge-and-run (DMRNet) and ResNet architectures, initialised.
 *
 * Parse options, pick the depth or width (--match-params), write the spec
 * (--spec) or an initialised model stream; report size and cost on stderr. */
#include "sk_arch.h"
#include "sk_cli.h"
#include "sk_model.h"
#include "sk_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { O_ARCH, O_DEPTH, O_WIDTH, O_CLASSES, O_INPUT, O_SHORTCUT, O_SEED, O_OUTPUT, O_COMPRESS, O_SPEC, O_MATCH, O_MAXD,
       O_MAXW, O_FORCE, O_N };

static const sk_option opts[] = {
	[O_ARCH] = {"arch", 'A', "NAME", "dmrnet or resnet (default dmrnet)"},
	[O_DEPTH] = {"depth", 'd', "D", "depth 6n+2: 8, 14, 20, 26, ... (default 8, or searched by --match-params)"},
	[O_WIDTH] = {"width", 'w', "W", "first-stage width; stages have W, 2W, 4W channels (default 16)"},
	[O_CLASSES] = {"classes", 0, "K", "number of classes (default 10)"},
	[O_INPUT] = {"input", 0, "CxHxW", "input shape per example (default 3x32x32)"},
	[O_SHORTCUT] = {"shortcut", 0, "a|b",
	                "resnet transitions: a zero-padded identity, b 1x1 conv+BN projection (default b)"},
	[O_SEED] = SK_OPT_SEED("initialisation seed (default 1)"),
	[O_OUTPUT] = SK_OPT_OUTPUT("output file (default - = stdout)"),
	[O_COMPRESS] = SK_OPT_COMPRESS("deflate level of the parameter records, 0 = raw (default 0)"),
	[O_SPEC] = {"spec", 0, NULL, "write the model spec text instead of an initialised model"},
	[O_MATCH] = {"match-params", 0, "DEPTH|FILE",
	             "match the parameter count of the other architecture at DEPTH (same width), or of the model in "
	             "FILE: searches the depth, or the width when --depth is given"},
	[O_MAXD] = {"max-depth", 0, "D", "largest depth --match-params tries (default 1000)"},
	[O_MAXW] = {"max-width", 0, "W", "largest width --match-params tries (default 256)"},
	[O_FORCE] = SK_OPT_FORCE,
	[O_N] = {0, 0, 0, 0},
};

static void parse_input(const char *s, sk_arch *a)
{
	int c, h, w, end = 0;
	if (sscanf(s, "%dx%dx%d%n", &c, &h, &w, &end) != 3 || s[end])
		sk_usage("--input '%s' must be CxHxW, e.g. 3x32x32", s);
	if (c < 1 || h < 1 || w < 1 || c > 4096 || h > 65536 || w > 65536)
		sk_usage("--input '%s' is out of range", s);
	a->in_c = c;
	a->in_h = h;
	a->in_w = w;
}

static int is_integer(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static char *group(int64_t v, char *buf, size_t len)   /* 1,234,567 */
{
	char t[32];
	int n = snprintf(t, sizeof t, "%lld", (long long)v), o = 0;
	for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
		if (i && (n - i) % 3 == 0 && t[0] != '-')
			buf[o++] = ',';
		buf[o++] = t[i];
	}
	buf[o] = 0;
	return buf;
}

int main(int argc, char **argv)
{
	sk_cli cli = {.prog = "mr-build",
	              .synopsis = "[--arch dmrnet|resnet] [--depth D] [--width W] [--classes K] [--input CxHxW] "
	                          "[--seed S] [-z LEVEL] [-o OUT] [--spec] [--match-params DEPTH|FILE]",
	              .summary = "Write an initialised merge-and-run (DMRNet) or ResNet model, or its spec.",
	              .opts = opts};
	sk_arch a = {SK_ARCH_DMRNET, 0, 16, 10, 3, 32, 32, 0};
	const char *arg, *out = "-", *match = NULL;
	int idx, optind_out, spec_only = 0, force = 0, depth_given = 0, width_given = 0, level = -1;
	long max_depth = 1000, max_width = 256;
	unsigned long long seed = 1;
	char b1[32], b2[32];

	sk_cli_init(&cli, argc, argv);
	while ((idx = sk_cli_next(&cli, argc, argv, &arg, &optind_out)) >= 0) {
		switch (idx) {
		case O_ARCH:
			if ((a.kind = sk_arch_kind_parse(arg)) < 0)
				sk_usage("--arch: %s", sk_errmsg());
			break;
		case O_DEPTH: a.depth = (int)sk_arg_long("--depth", arg, 1, 100000); depth_given = 1; break;
		case O_WIDTH: a.width = (int)sk_arg_long("--width", arg, 1, 4096); width_given = 1; break;
		case O_CLASSES: a.classes = (int)sk_arg_long("--classes", arg, 1, 1000000); break;
		case O_INPUT: parse_input(arg, &a); break;
		case O_SHORTCUT:
			if (strcmp(arg, "a") && strcmp(arg, "b"))
				sk_usage("--shortcut '%s' must be a or b", arg);
			a.shortcut_a = arg[0] == 'a';
			break;
		case O_SEED: seed = sk_arg_seed("--seed", arg); break;
		case O_OUTPUT: out = arg; break;
		case O_COMPRESS: level = sk_arg_level(arg); break;
		case O_SPEC: spec_only = 1; break;
		case O_MATCH: match = arg; break;
		case O_MAXD: max_depth = sk_arg_long("--max-depth", arg, 8, 6002); break;
		case O_MAXW: max_width = sk_arg_long("--max-width", arg, 1, 4096); break;
		case O_FORCE: force = 1; break;
		}
	}
	if (optind_out < argc)
		sk_usage("unexpected operand '%s'", argv[optind_out]);
	if (spec_only && level >= 0)
		sk_usage("--compress applies to the model stream, not to --spec");
	if (level < 0)
		level = 0;
	if (a.shortcut_a && a.kind != SK_ARCH_RESNET)
		sk_usage("--shortcut applies to --arch resnet only");
	if (match && depth_given && width_given)
		sk_usage("--match-params searches the depth or the width: give at most one of --depth and --width");
	if (!depth_given)
		a.depth = 8;
	if (sk_arch_blocks(a.depth) < 0)
		sk_usage("--depth: %s", sk_errmsg());
	if (sk_arch_check(&a) < 0)
		sk_usage("%s", sk_errmsg());

	if (match) {
		int64_t target, got;
		char what[256];
		if (is_integer(match)) {
			sk_arch o = a;
			o.kind = 1 - a.kind;
			o.depth = (int)sk_arg_long("--match-params", match, 1, 100000);
			o.shortcut_a = 0;
			if (sk_arch_blocks(o.depth) < 0)
				sk_usage("--match-params: %s", sk_errmsg());
			if ((target = sk_arch_params(&o)) < 0)
				sk_die_lib();
			snprintf(what, sizeof what, "%s depth %d width %d", sk_arch_kind_name(o.kind), o.depth, o.width);
		} else {
			sk_model *m = sk_model_load(match);
			if (!m)
				sk_die("--match-params: %s", sk_errmsg());
			target = (int64_t)sk_model_param_count(m);
			sk_model_free(m);
			snprintf(what, sizeof what, "'%s'", match);
		}
		if ((got = sk_arch_match(&a, target, !depth_given, (int)max_depth, (int)max_width)) < 0)
			sk_die_lib();
		sk_info("%s depth %d width %d has %s parameters, closest to %s of %s (%+.2f%%)",
		        sk_arch_kind_name(a.kind), a.depth, a.width, group(got, b1, sizeof b1), group(target, b2, sizeof b2),
		        what, 100.0 * (double)(got - target) / (double)target);
	}

	char *text = sk_arch_spec(&a);
	if (!text)
		sk_die_lib();
	sk_model *m = sk_model_from_text(text, "<mr-build>");
	if (!m)
		sk_die("internal spec does not build: %s", sk_errmsg());
	int64_t np = (int64_t)sk_model_param_count(m);
	double fl = sk_model_flops(m);
	if (np != sk_arch_params(&a))
		sk_die("internal error: %lld parameters built, %lld counted", (long long)np,
		       (long long)sk_arch_params(&a));
	sk_info("%s depth %d width %d, %d classes, input %dx%dx%d: %s parameters, %.2f MFLOP per example "
	        "(%.2fM conv/linear MACs)",
	        sk_arch_kind_name(a.kind), a.depth, a.width, a.classes, a.in_c, a.in_h, a.in_w, group(np, b1, sizeof b1),
	        fl / 1e6, sk_arch_macs(m->seq) / 1e6);

	sk_ofile *of = sk_ofile_open(out, spec_only ? 1 : force);
	if (!of)
		sk_die_lib();
	sk_ofile_install_signals();
	if (spec_only) {
		if (fputs(text, sk_ofile_fp(of)) < 0) {
			sk_ofile_abort(of);
			sk_die("%s: write error", out);
		}
	} else {
		char *cmd = sk_cmdline(argc, argv);
		if (sk_model_init(m, seed) < 0 || sk_attrs_setf(&m->attrs, "seed", "%llu", seed) < 0 ||
		    sk_attrs_set(&m->attrs, "arch", sk_arch_kind_name(a.kind)) < 0 ||
		    sk_attrs_setf(&m->attrs, "depth", "%d", a.depth) < 0 ||
		    sk_attrs_setf(&m->attrs, "width", "%d", a.width) < 0 ||
		    sk_attrs_setf(&m->attrs, "params", "%lld", (long long)np) < 0 ||
		    sk_attrs_setf(&m->attrs, "flops", "%.0f", fl) < 0 ||
		    (cmd && sk_attrs_set(&m->attrs, "command", cmd) < 0) ||
		    sk_model_write_level(sk_ofile_fp(of), m, 0, level) < 0) {
			free(cmd);
			sk_ofile_abort(of);
			sk_die_lib();
		}
		free(cmd);
	}
	if (sk_ofile_commit(of) < 0)
		sk_die_lib();
	sk_model_free(m);
	free(text);
	return 0;
}
