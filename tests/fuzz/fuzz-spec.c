/* fuzz-spec.c: libFuzzer target for the model spec language: the parser
 * (sk_spec_parse) and the layer constructors behind it (sk_model_from_text:
 * every layer's options and shape arithmetic).  Any input must give a model
 * or one clean one-line error (the parser's: "SRC:LINE:COL: ..."): no
 * crash, leak or undefined behaviour.  A built model's totals must be
 * computable. */
#include "sk_model.h"

#include <string.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	fuzz_check(text != NULL);
	memcpy(text, data, size);
	text[size] = 0;
	sk_spec *s = sk_spec_parse(text, "fuzz.spec");
	if (s) {
		for (int i = 0; i < s->n; i++)
			fuzz_check(s->lines[i].type && s->lines[i].line >= 1 && s->lines[i].col >= 1);
		sk_spec_free(s);
	} else {
		fuzz_check(strncmp(sk_errmsg(), "fuzz.spec", 9) == 0 && !strchr(sk_errmsg(), '\n'));
	}
	sk_model *m = sk_model_from_text(text, "fuzz.spec");
	if (m) {
		fuzz_check(s != NULL);
		(void)sk_model_param_count(m);
		(void)sk_model_flops(m);
		sk_model_free(m);
	} else {
		fuzz_check(sk_errmsg()[0] && !strchr(sk_errmsg(), '\n'));
	}
	free(text);
	return 0;
}
