/* import_png.c: PNG in (libpng, any bit depth, palette, gray or RGB, alpha
 * dropped) and out (8-bit gray or RGB). */
#include "sk_import.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

typedef struct pngctx {
	sk_src *src;
	FILE *out;
	char msg[256];
} pngctx;

static void png_err_cb(png_structp p, png_const_charp m)
{
	pngctx *c = png_get_error_ptr(p);
	snprintf(c->msg, sizeof c->msg, "%s", m);
	png_longjmp(p, 1);
}

static void png_warn_cb(png_structp p, png_const_charp m)
{
	(void)p;
	(void)m;
}

static void png_read_cb(png_structp p, png_bytep d, size_t n)
{
	pngctx *c = png_get_io_ptr(p);
	long long r = sk_src_read(c->src, d, n);
	if (r < 0)
		png_error(p, "read error (corrupt compressed input?)");
	if ((size_t)r < n)
		png_error(p, "truncated file");
}

/* Decode (or, with out == NULL, only read the header of) one PNG. */
static int png_run(sk_src *s, int want_c, int *pc, int *ph, int *pw, sk_tensor *out)
{
	pngctx ctx;
	const unsigned char *sig;
	png_structp p;
	png_infop info;
	unsigned char *volatile rows = NULL;
	png_bytep *volatile rp = NULL;
	memset(&ctx, 0, sizeof ctx);
	ctx.src = s;
	long long got = sk_src_peek(s, 8, &sig);
	if (got < 0)
		return -1;
	if (got < 8 || png_sig_cmp(sig, 0, 8))
		return sk_error("%s: not a PNG file", s->name);
	p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_err_cb, png_warn_cb);
	if (!p)
		return sk_error("%s: out of memory", s->name);
	info = png_create_info_struct(p);
	if (!info) {
		png_destroy_read_struct(&p, NULL, NULL);
		return sk_error("%s: out of memory", s->name);
	}
	if (setjmp(png_jmpbuf(p))) {
		png_destroy_read_struct(&p, &info, NULL);
		free((void *)rows);
		free((void *)rp);
		return sk_error("%s: bad PNG: %s", s->name, ctx.msg);
	}
	png_set_read_fn(p, &ctx, png_read_cb);
	png_set_user_limits(p, 1u << 16, 1u << 16);
	png_set_chunk_malloc_max(p, (png_alloc_size_t)8 << 20);
	png_read_info(p, info);
	png_uint_32 w, h;
	int depth, ctype, interlace;
	png_get_IHDR(p, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
	int gray = !(ctype & PNG_COLOR_MASK_COLOR);
	if (ctype == PNG_COLOR_TYPE_PALETTE) {
		png_colorp pal;
		int npal = 0;
		gray = 1;
		if (png_get_PLTE(p, info, &pal, &npal))
			for (int i = 0; i < npal; i++)
				if (pal[i].red != pal[i].green || pal[i].red != pal[i].blue)
					gray = 0;
	}
	int stored = gray ? 1 : 3;
	int c = want_c ? want_c : stored;
	if (pc)
		*pc = stored;
	if (ph)
		*ph = (int)h;
	if (pw)
		*pw = (int)w;
	if (!out) {
		png_destroy_read_struct(&p, &info, NULL);
		return 0;
	}
	if (c == 1 && stored == 3) {
		png_destroy_read_struct(&p, &info, NULL);
		return sk_error("%s: RGB image where gray was expected", s->name);
	}
	size_t px;
	if (sk_mul_size((size_t)w, (size_t)h, &px) < 0 || px * 3 > SK_IMPORT_MAX_EXAMPLE) {
		png_destroy_read_struct(&p, &info, NULL);
		return sk_error("%s: image %ux%u too large (limit %zu bytes)", s->name, (unsigned)w, (unsigned)h,
		                SK_IMPORT_MAX_EXAMPLE);
	}
	if (ctype == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(p);
	if (gray && depth < 8 && ctype != PNG_COLOR_TYPE_PALETTE)
		png_set_expand_gray_1_2_4_to_8(p);
	if (depth == 16)
		png_set_scale_16(p);
	png_set_strip_alpha(p);
	if (c == 3 && !(ctype & PNG_COLOR_MASK_COLOR))
		png_set_gray_to_rgb(p);
	png_set_interlace_handling(p);
	png_read_update_info(p, info);
	int nch = png_get_channels(p, info);
	size_t rb = png_get_rowbytes(p, info);
	if ((nch != 1 && nch != 3) || rb != (size_t)w * (size_t)nch)
		png_error(p, "unexpected pixel layout after conversion");
	rows = malloc(rb * h + 1);
	rp = malloc(sizeof(png_bytep) * (h ? h : 1));
	if (!rows || !rp)
		png_error(p, "out of memory");
	for (png_uint_32 y = 0; y < h; y++)
		rp[y] = rows + (size_t)y * rb;
	png_read_image(p, rp);
	png_destroy_read_struct(&p, &info, NULL);

	int64_t shape[3] = {c, h, w};
	int rc = 0;
	if (sk_tensor_init(out, SK_U8, 3, shape) < 0) {
		rc = -1;
		goto done;
	}
	uint8_t *o = out->data;
	for (int ch = 0; ch < c; ch++)
		for (size_t i = 0; i < px; i++)
			o[(size_t)ch * px + i] = rows[i * (size_t)nch + (nch == 1 ? 0 : (size_t)ch)];
	if (c == 1 && nch == 3)
		for (size_t i = 0; i < px; i++)
			if (rows[3 * i] != rows[3 * i + 1] || rows[3 * i] != rows[3 * i + 2]) {
				sk_tensor_free(out);
				rc = sk_error("%s: RGB image where gray was expected", s->name);
				break;
			}
done:
	free((void *)rows);
	free((void *)rp);
	return rc;
}

int sk_png_info(sk_src *s, int *channels, int *height, int *width)
{
	return png_run(s, 0, channels, height, width, NULL);
}

int sk_png_read(sk_src *s, int channels, sk_tensor *out)
{
	memset(out, 0, sizeof *out);
	if (channels != 0 && channels != 1 && channels != 3)
		return sk_error("PNG channels must be 1 or 3, not %d", channels);
	return png_run(s, channels, NULL, NULL, NULL, out);
}

/* ---- writing ---- */

static void png_write_cb(png_structp p, png_bytep d, size_t n)
{
	pngctx *c = png_get_io_ptr(p);
	if (fwrite(d, 1, n, c->out) != n)
		png_error(p, "write error");
}

static void png_flush_cb(png_structp p) { (void)p; }

int sk_png_write(FILE *f, int c, int h, int w, const uint8_t *planar)
{
	pngctx ctx;
	png_structp p;
	png_infop info;
	unsigned char *volatile row = NULL;
	if ((c != 1 && c != 3) || h <= 0 || w <= 0 || h > (1 << 16) || w > (1 << 16))
		return sk_error("cannot write a %dx%dx%d PNG (1 or 3 channels, sides 1..65536)", c, h, w);
	memset(&ctx, 0, sizeof ctx);
	ctx.out = f;
	p = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_err_cb, png_warn_cb);
	if (!p)
		return sk_error("out of memory writing PNG");
	info = png_create_info_struct(p);
	if (!info) {
		png_destroy_write_struct(&p, NULL);
		return sk_error("out of memory writing PNG");
	}
	if (setjmp(png_jmpbuf(p))) {
		png_destroy_write_struct(&p, &info);
		free((void *)row);
		return sk_error("writing PNG: %s", ctx.msg);
	}
	png_set_write_fn(p, &ctx, png_write_cb, png_flush_cb);
	png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
	             PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(p, info);
	row = malloc((size_t)w * (size_t)c);
	if (!row)
		png_error(p, "out of memory");
	size_t px = (size_t)w * (size_t)h;
	for (int y = 0; y < h; y++) {
		for (int x = 0; x < w; x++)
			for (int ch = 0; ch < c; ch++)
				row[(size_t)x * (size_t)c + (size_t)ch] = planar[(size_t)ch * px + (size_t)y * (size_t)w + (size_t)x];
		png_write_row(p, row);
	}
	png_write_end(p, info);
	png_destroy_write_struct(&p, &info);
	free((void *)row);
	return 0;
}
