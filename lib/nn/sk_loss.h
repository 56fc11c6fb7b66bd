/* sk_loss.h: losses over a batch of model outputs.
 *
 * Each loss returns the loss summed over the n examples divided by `denom`
 * (pass denom = n for the batch mean; data-parallel replicas working on a
 * slice of a batch pass the whole batch size so their gradients add up to the
 * gradient of the batch mean), and writes the gradient of that value with
 * respect to the outputs into dout (n x k) when dout != NULL.
 */
#ifndef SK_LOSS_H
#define SK_LOSS_H

#include <stdint.h>

/* Softmax cross-entropy from logits (n x k) and integer labels in [0, k).
 * *correct (when non-NULL) receives the number of examples whose largest
 * logit (first on ties) is the label.  Returns NAN after sk_error() on a
 * label out of range. */
double sk_loss_xent(int n, int k, const float *logits, const int32_t *labels, double denom, float *dout,
                    int *correct);

/* Mean squared error: sum over examples and outputs of (y - t)^2 / denom. */
double sk_loss_mse(int n, int k, const float *y, const float *t, double denom, float *dout);

/* Softmax of each row of x (n x k) into p (may equal x). */
void sk_softmax(int n, int k, const float *x, float *p);

/* Index of the largest value (the first on ties). */
int sk_argmax(int k, const float *x);

#endif
