/* sk_spec.h: the model spec language: parsing and option getters.
 *
 * A spec is text, one layer per line; lib/nn/layer.c builds layers from its
 * lines (sk_layer.h) and each layer's create() reads its options with the
 * sk_opt_*() getters below.  Syntax and every layer: man/man7/simkit.7.
 */
#ifndef SK_SPEC_H
#define SK_SPEC_H

typedef struct sk_spec sk_spec;

typedef struct sk_specline {
	char *type;
	int line, col;         /* of the type word */
	int npos;              /* positional words after the type */
	char **pos;
	int *poscol;
	int nkv;               /* key=value options */
	char **key, **val;
	int *kvcol;
	unsigned char *used;   /* set by sk_opt_* as keys are read */
	sk_spec *body;         /* nested lines for `type ... {` ... `}`; NULL if none */
} sk_specline;

struct sk_spec {
	int n;
	sk_specline *lines;
	char *srcname;         /* for messages: "model.spec" or "<model>" */
	int nrecipe;           /* top level only: the `train` lines, in order */
	sk_specline *recipe;
};

/* Parse spec text.  Syntax: one layer per line, `type [pos...] [key=value...]`,
 * `#` to end of line is a comment, blank lines ignored; a line ending in `{`
 * opens a nested body closed by a line `}`.  Errors: "SRC:LINE:COL: message".
 * Lines of type `train` (top level only, key=value options only) are the
 * model's training recipe: they go to recipe[], not lines[]; their keys must
 * be in sk_spec_recipe_keys and appear once over all of them (the values are
 * checked by the trainer, lib/nn/recipe.c).  Time and memory are linear in the
 * text's length. */
sk_spec *sk_spec_parse(const char *text, const char *srcname);
/* The keys a `train` line may set (NULL-terminated): snet-train's long
 * options that shape training. */
extern const char *const sk_spec_recipe_keys[];
void sk_spec_free(sk_spec *s);

/* Option getters: mark the option used; errors name SRC:LINE:COL.
 * Positional: `i` indexes pos[]; when absent, required ones fail. */
int sk_opt_pos_int(const sk_spec *s, sk_specline *o, int i, int required, int def, int *out);
int sk_opt_pos_str(const sk_spec *s, sk_specline *o, int i, int required, const char *def, const char **out);
int sk_opt_int(const sk_spec *s, sk_specline *o, const char *key, int def, int *out);
int sk_opt_float(const sk_spec *s, sk_specline *o, const char *key, float def, float *out);
int sk_opt_str(const sk_spec *s, sk_specline *o, const char *key, const char *def, const char **out);
/* One of a NULL-terminated list of words; *out is its index. */
int sk_opt_choice(const sk_spec *s, sk_specline *o, const char *key, const char *const *choices,
                  int def, int *out);
/* An error at a spec line: "SRC:LINE:COL: type: message".  Returns -1. */
int sk_spec_error(const sk_spec *s, const sk_specline *o, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
