/* sk_model.h: models: a spec plus named parameters, read and written as
 * streams.
 *
 * A model in a stream is a `model` record (dtype u8, shape [len], payload =
 * the spec text) whose attribute `records` gives how many records follow that
 * belong to it: one f32 record per parameter, named by the parameter's full
 * name ("conv2.w"), in sk_seq_walk_params order, and in checkpoints the
 * optimiser and training state.  Other attributes: seed, command, version,
 * metrics (e.g. `test_acc`), and anything the writer adds.  A zoo is models
 * concatenated.  A spec file (text) is accepted wherever a model is.
 * The first spec line must be `input C H W ...` (or `input D` / `input T D`).
 */
#ifndef SK_MODEL_H
#define SK_MODEL_H

#include "sk_layer.h"
#include "sk_stream.h"

typedef struct sk_model {
	sk_spec *spec;
	char *spec_text;     /* as given (stored verbatim in the model record) */
	sk_shape in;         /* per-example input shape, from the input line */
	sk_seq *seq;
	sk_attrs attrs;      /* attributes read from / to be written to the stream */
	int nclasses;        /* per-example output size when it is 1-D */
} sk_model;

/* Build from spec text; parameters are zero until sk_model_init or a load
 * (except buffers the spec gives, such as the input's mean=).  Parameter
 * values are allocated, gradients not (see sk_model_for_training). */
sk_model *sk_model_from_text(const char *text, const char *srcname);
/* The same without any parameter memory: shapes, parameter counts and FLOPs
 * for reports (tns-info); such a model cannot run, load or be written. */
sk_model *sk_model_declare(const char *text, const char *srcname);
/* Allocate the gradients training needs (the trainer calls it). */
int sk_model_for_training(sk_model *m);
int sk_model_init(sk_model *m, uint64_t seed);
void sk_model_free(sk_model *m);

/* Load from a file: a spec text file or a model stream ("-" = stdin).
 * A stream's first model is read; its parameters are checked by name, shape
 * and count (extra or missing records are errors naming them). */
sk_model *sk_model_load(const char *path);
/* Read one model from an open stream whose current header `h` is a `model`
 * record (zoos: call repeatedly).  Optimiser/state records are skipped. */
sk_model *sk_model_read(sk_reader *r, const sk_header *h);
/* Write the model record and parameters; `extra` records are appended by the
 * caller after it if it declared them in `nextra`. */
int sk_model_write(FILE *f, sk_model *m, int nextra);
/* The same with the parameter records deflated at `level` (0 = raw, 1..9;
 * the model record itself stays raw: its spec text is small). */
int sk_model_write_level(FILE *f, sk_model *m, int nextra, int level);

/* Copy parameters from `src` into `dst` by full name where the shapes match;
 * `only` (NULL = all) restricts to layers whose name equals it or starts with
 * it and a dot.  Returns the number of tensors copied; errors on a shape
 * mismatch. */
int sk_model_copy_params(sk_model *dst, const sk_model *src, const char *only);

/* Totals for reports. */
size_t sk_model_param_count(sk_model *m);
double sk_model_flops(sk_model *m);
/* Print the per-layer table (name, type, output shape, params, MFLOPs) to f. */
void sk_model_report(sk_model *m, FILE *f);

/* ---- extensions for training (checkpoints) ----
 * Records that follow a model and are not its parameters but state
 * ("opt.*", "state.*", "train_state") are skipped by sk_model_read; the _ex
 * variants hand each to `extra` instead (which must read or skip its payload). */
typedef int (*sk_model_extra_fn)(sk_reader *r, const sk_header *h, void *arg);
sk_model *sk_model_read_ex(sk_reader *r, const sk_header *h, sk_model_extra_fn extra, void *arg);
sk_model *sk_model_load_ex(const char *path, sk_model_extra_fn extra, void *arg);
/* All parameters (buffers included) in stream order, in a malloc'ed array
 * the caller frees; returns the count or -1. */
int sk_model_params(sk_model *m, sk_param ***out);

#endif
