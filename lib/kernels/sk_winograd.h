/* sk_winograd.h: 3x3 stride-1 convolutions through Winograd's minimal
 * filtering, F(2x2,3x3) or F(4x4,3x3) (Lavin and Gray 2016).
 *
 * The image is cut into m x m output tiles (m = 2 or 4) over (m+2) x (m+2)
 * input tiles; each tile and each 3x3 filter is transformed into
 * (m+2)^2 points, where the convolution becomes (m+2)^2 independent
 * products of a tiles x C matrix by a C x K one over a group of images at a
 * time (our own kernel on AVX-512, OpenBLAS sgemm otherwise); an inverse
 * transform gives the m x m outputs.  The backward pass is the adjoint: the
 * output gradient is transformed once, one product per point gives the
 * filter gradient in the transformed domain, another the input gradient,
 * which the transposed input transform folds back into the image.  Tiles
 * are transformed on 16 channels at a time (AVX-512, AVX2 or portable code,
 * following sk_cpu_isa(); the three give the same bits).  Everything
 * runs in a fixed order: the same inputs give the same bits on the same
 * path (instruction set, tile, batch size).
 *
 * Arithmetic: a fraction (m+2)^2 / (9 m^2) of the direct form's
 * multiply-adds (0.44 for m = 2, 0.25 for m = 4) plus the transforms.
 * Rounding: the transforms scale values by up to 4 (m = 4: 8 and 1/24 in
 * the inverse and filter transforms), so the error grows with m;
 * doc/winograd.md has measurements against the direct form.
 */
#ifndef SK_WINOGRAD_H
#define SK_WINOGRAD_H

typedef struct sk_wino sk_wino;

/* The tile size for a 3x3 stride-1 convolution of C x H x W with padding
 * pad to K channels: 0 (use another algorithm), 2 or 4.  force != 0 (the
 * layer's algo=winograd) always answers 2 or 4; tile = 2 or 4 imposes the
 * tile (0 lets the rule choose).  The environment variable SK_WINOGRAD
 * overrides the rule when force and tile are 0: "0" never, "2" or "4" that
 * tile for every layer, "auto" the rule. */
int sk_wino_choose(int c, int h, int w, int k, int pad, int force, int tile);

/* A plan for batches of up to max_batch images: C x H x W to K channels,
 * padding pad (0..2), tile m (2 or 4).  NULL with sk_error() on bad
 * arguments or no memory. */
sk_wino *sk_wino_new(int c, int h, int w, int k, int pad, int m, int max_batch);
void sk_wino_free(sk_wino *p);

/* y (n x K x OH x OW) = the correlation of x (n x C x H x W) with the
 * filters w (K x C x 3 x 3), plus bias[k] (bias may be NULL). */
void sk_wino_forward(sk_wino *p, int n, const float *x, const float *w, const float *bias, float *y);
/* dw += the filters' gradient; dx = the input's gradient when dx != NULL.
 * (The bias gradient is the row sums of dy, left to the caller.) */
void sk_wino_backward(sk_wino *p, int n, const float *x, const float *w, const float *dy, float *dw, float *dx);

#endif
