/* synth.c: a small labelled image data set with learnable structure, for
 * the shell tests on machines without the real data sets (tests/lib.sh,
 * synth_data).  Ten classes; each class is a figure of three strokes drawn
 * from a fixed seed (the same figures for every -s), and an example is its
 * class's figure shifted by up to 2 pixels, each stroke end moved by up to
 * 1.5 pixels, at a random brightness over a noisy background.
 *
 *   synth [-n N] [-s SEED] [-c 1|3] -o PREFIX
 *
 * -c 1 (default): 1x28x28 as an idx pair PREFIX-images-idx3-ubyte and
 * PREFIX-labels-idx1-ubyte (the layout of MNIST and Fashion-MNIST);
 * -c 3: 3x32x32 in colour as one CIFAR-10 binary batch PREFIX.bin.
 * tns-import turns either into a data stream. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLASSES 10
#define STROKES 3

static const char *prog = "synth";

static void die(const char *msg, const char *arg)
{
	fprintf(stderr, "%s: %s%s%s\n", prog, msg, arg ? ": " : "", arg ? arg : "");
	exit(1);
}

static uint64_t next(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static double unif(uint64_t *s, double lo, double hi) /* [lo, hi) */
{
	return lo + (hi - lo) * (double)(next(s) >> 11) / 9007199254740992.0;
}

struct stroke {
	double x0, y0, x1, y1;
	double rgb[3];
};

/* distance from (x, y) to the segment (x0, y0)-(x1, y1) */
static double seg_dist(double x, double y, const struct stroke *k)
{
	double dx = k->x1 - k->x0, dy = k->y1 - k->y0, l2 = dx * dx + dy * dy;
	double t = l2 > 0 ? ((x - k->x0) * dx + (y - k->y0) * dy) / l2 : 0;
	t = t < 0 ? 0 : t > 1 ? 1 : t;
	double ex = k->x0 + t * dx - x, ey = k->y0 + t * dy - y;
	return sqrt(ex * ex + ey * ey);
}

static FILE *create(const char *prefix, const char *suffix)
{
	size_t n = strlen(prefix) + strlen(suffix) + 1;
	char *path = malloc(n);
	if (!path)
		die("out of memory", NULL);
	snprintf(path, n, "%s%s", prefix, suffix);
	FILE *f = fopen(path, "wb");
	if (!f)
		die(strerror(errno), path);
	free(path);
	return f;
}

static void be32(FILE *f, uint32_t v)
{
	unsigned char b[4] = {v >> 24, v >> 16 & 255, v >> 8 & 255, v & 255};
	fwrite(b, 1, 4, f);
}

int main(int argc, char **argv)
{
	long n = 1000, c = 1;
	unsigned long long seed = 1;
	const char *prefix = NULL;
	for (int i = 1; i < argc; i++) {
		char *end = NULL;
		if (i + 1 >= argc)
			die("usage: synth [-n N] [-s SEED] [-c 1|3] -o PREFIX", NULL);
		errno = 0;
		if (!strcmp(argv[i], "-n"))
			n = strtol(argv[++i], &end, 10);
		else if (!strcmp(argv[i], "-s"))
			seed = strtoull(argv[++i], &end, 10);
		else if (!strcmp(argv[i], "-c"))
			c = strtol(argv[++i], &end, 10);
		else if (!strcmp(argv[i], "-o"))
			prefix = argv[++i];
		else
			die("unknown option", argv[i]);
		if (end && (*end || errno || end == argv[i]))
			die("not a number", argv[i]);
	}
	if (!prefix || n < 1 || n > 1000000 || (c != 1 && c != 3))
		die("usage: synth [-n N (1..1000000)] [-s SEED] [-c 1|3] -o PREFIX", NULL);
	int side = c == 1 ? 28 : 32;
	double lo = c == 1 ? 6 : 7, hi = side - lo;

	/* the class figures: a fixed seed, the same for every data set */
	struct stroke fig[CLASSES][STROKES];
	uint64_t world = 20261206;
	for (int k = 0; k < CLASSES; k++)
		for (int j = 0; j < STROKES; j++) {
			struct stroke *s = &fig[k][j];
			s->x0 = unif(&world, lo, hi), s->y0 = unif(&world, lo, hi);
			s->x1 = unif(&world, lo, hi), s->y1 = unif(&world, lo, hi);
			for (int ch = 0; ch < 3; ch++)
				s->rgb[ch] = unif(&world, 0.3, 1.0);
		}

	FILE *img, *lab = NULL;
	if (c == 1) {
		img = create(prefix, "-images-idx3-ubyte");
		lab = create(prefix, "-labels-idx1-ubyte");
		be32(img, 0x00000803), be32(img, (uint32_t)n), be32(img, 28), be32(img, 28);
		be32(lab, 0x00000801), be32(lab, (uint32_t)n);
	} else {
		img = create(prefix, ".bin");
	}
	uint64_t rng = seed * 0x2545f4914f6cdd1du + 1;
	unsigned char *px = malloc((size_t)c * side * side);
	if (!px)
		die("out of memory", NULL);
	for (long i = 0; i < n; i++) {
		int k = (int)(next(&rng) % CLASSES);
		double sx = unif(&rng, -2, 2), sy = unif(&rng, -2, 2), bright = unif(&rng, 0.6, 1.0);
		struct stroke ex[STROKES];
		for (int j = 0; j < STROKES; j++) {
			ex[j] = fig[k][j];
			ex[j].x0 += sx + unif(&rng, -1.5, 1.5), ex[j].y0 += sy + unif(&rng, -1.5, 1.5);
			ex[j].x1 += sx + unif(&rng, -1.5, 1.5), ex[j].y1 += sy + unif(&rng, -1.5, 1.5);
		}
		for (int y = 0; y < side; y++)
			for (int x = 0; x < side; x++) {
				double v[3] = {0, 0, 0};
				for (int j = 0; j < STROKES; j++) {
					double d = seg_dist(x, y, &ex[j]), a = d < 1 ? 1 : d < 2 ? 2 - d : 0;
					for (int ch = 0; ch < c; ch++) {
						double w = a * (c == 1 ? 1 : ex[j].rgb[ch]);
						v[ch] = v[ch] > w ? v[ch] : w;
					}
				}
				for (int ch = 0; ch < c; ch++) {
					double p = 255 * bright * v[ch] + unif(&rng, 0, 60);
					px[(size_t)ch * side * side + (size_t)y * side + x] = (unsigned char)(p > 255 ? 255 : p);
				}
			}
		if (c == 1) {
			fputc(k, lab);
		} else {
			fputc(k, img);
		}
		fwrite(px, 1, (size_t)c * side * side, img);
	}
	free(px);
	int bad = ferror(img) | fclose(img);
	if (lab)
		bad |= ferror(lab) | fclose(lab);
	if (bad)
		die("write error", prefix);
	return 0;
}
