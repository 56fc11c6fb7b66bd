/* augment.c: image augmentation (random crop with zero padding, horizontal
 * flip), decided per example by a counter-based draw so the result does not
 * depend on threads or batch order. */
#include "sk_rng.h"
#include "sk_data.h"

#include <string.h>

#define AUG_STREAM 0x617567ULL   /* "aug" */

void sk_augment(float *x, int c, int h, int w, int pad, int flip, uint64_t seed, int64_t epoch, int64_t example,
                float *tmp)
{
	uint64_t r = sk_rng_u64(seed, sk_rng_stream(AUG_STREAM, (uint64_t)epoch, 0), (uint64_t)example);
	int dy = 0, dx = 0, fl = 0;
	size_t plane = (size_t)h * (size_t)w;
	if (pad > 0) {
		uint64_t span = 2 * (uint64_t)pad + 1;
		dy = (int)((r & 0xffffff) % span) - pad;
		dx = (int)(((r >> 24) & 0xffffff) % span) - pad;
	}
	if (flip)
		fl = (int)((r >> 63) & 1);
	if (dy == 0 && dx == 0 && !fl)
		return;
	memcpy(tmp, x, sizeof(float) * plane * (size_t)c);
	/* out(y, j) = in(y + dy, j' + dx) where j' = j, or w-1-j when flipped */
	for (int ch = 0; ch < c; ch++) {
		const float *src = tmp + (size_t)ch * plane;
		float *dst = x + (size_t)ch * plane;
		for (int y = 0; y < h; y++) {
			int sy = y + dy;
			float *row = dst + (size_t)y * (size_t)w;
			if (sy < 0 || sy >= h) {
				memset(row, 0, sizeof(float) * (size_t)w);
				continue;
			}
			const float *srow = src + (size_t)sy * (size_t)w;
			for (int j = 0; j < w; j++) {
				int sx = (fl ? w - 1 - j : j) + dx;
				row[j] = (sx < 0 || sx >= w) ? 0.0f : srow[sx];
			}
		}
	}
}
