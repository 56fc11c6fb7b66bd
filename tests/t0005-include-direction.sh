#!/bin/sh
# The library's layers (lib/LAYERS, bottom first): a file under lib/ includes
# the library's headers only from its own layer or a layer below.  A file in
# a folder lib/LAYERS does not list, an include that names a folder or a
# header no layer folder holds, and a header two folders hold all fail too,
# so a new file cannot slip past the table.
. "$SK_SRCDIR/tests/lib.sh"

# check_includes LIBDIR: prints one line per violation, exits 1 if any.
check_includes() {
	[ -r "$1/LAYERS" ] || { echo "$1/LAYERS: missing"; return 1; }
	(cd "$1" && find . -type f ! -name LAYERS | sed 's#^\./##' | LC_ALL=C sort | awk '
	# (never close f, the file being read: a file may include itself, simkern.c)
	function exists(p,   t, r) { if (p == f) return 1; r = (getline t < p); close(p); return r >= 0 }
	function bad(msg) { print msg; nbad++ }
	BEGIN {
		while ((r = (getline line < "LAYERS")) > 0) {
			sub(/#.*/, "", line)
			if (split(line, w) == 0)
				continue
			if (w[1] in rank)
				bad("lib/LAYERS: " w[1] " is listed twice")
			rank[w[1]] = ++nl
			name[nl] = w[1]
		}
		if (r < 0 || nl == 0)
			bad("lib/LAYERS: no layers")
	}
	{
		f = $0
		if (f !~ /\.[ch]$/)
			next   # only sources: an in-tree build leaves objects and libraries here
		if (index(f, "/") == 0) {
			bad("lib/" f ": in no layer folder (lib/LAYERS lists them)")
			next
		}
		top = substr(f, 1, index(f, "/") - 1)
		if (!(top in rank)) {
			bad("lib/" f ": lib/" top " is not a layer of lib/LAYERS")
			next
		}
		dir = f
		sub(/\/[^\/]*$/, "", dir)
		n = 0
		while ((getline line < f) > 0) {
			n++
			if (line !~ /^[ \t]*#[ \t]*include[ \t]*"/)
				continue
			h = line
			sub(/^[^"]*"/, "", h)
			sub(/".*$/, "", h)
			where = "lib/" f ":" n ": "
			if (index(h, "/")) {
				bad(where "\"" h "\" names a folder: include the header alone (every layer folder is on the include path)")
				continue
			}
			if (exists(dir "/" h))
				continue   # its own folder: its own layer
			hl = ""
			for (i = 1; i <= nl; i++)
				if (exists(name[i] "/" h)) {
					if (hl != "")
						bad(where h " is in both lib/" hl " and lib/" name[i])
					hl = name[i]
				}
			if (hl == "")
				bad(where "includes " h ", which no layer folder of lib/LAYERS holds")
			else if (rank[hl] > rank[top])
				bad(where "includes " h " from " hl ", a layer above " top " (lib/LAYERS)")
		}
		close(f)
	}
	END { exit nbad > 0 }')
}

# a small tree: three layers, each file including downward or its own folder
mktree() {
	rm -rf t && mkdir -p t/low t/mid/sub t/high &&
	printf '# test layers\nlow   the bottom\nmid   above low\n\nhigh  the top\n' >t/LAYERS &&
	printf '#define SK_LOW_H 1\n' >t/low/sk_low.h &&
	printf '#include "sk_low.h"\n' >t/low/low.c &&
	printf '#include "sk_low.h"\n' >t/mid/sk_mid.h &&
	printf '/* mid */\n#include "sk_mid.h"\n#include <stdio.h>\n' >t/mid/mid.c &&
	printf '#include "sk_mid.h"\n#include "local.h"\n' >t/mid/sub/part.c &&
	printf '\n' >t/mid/sub/local.h &&
	printf '#include "sk_low.h"\n  #  include "sk_mid.h"\n' >t/high/high.c
}

test_expect_success 'every file of lib/ includes from its own layer or below' '
	check_includes "$SK_SRCDIR/lib" >out || { cat out >&2; false; }
'

test_expect_success 'lib/LAYERS lists each folder of lib/ once, and no other' '
	sed "s/#.*//" "$SK_SRCDIR/lib/LAYERS" | awk "NF { print \$1 }" | LC_ALL=C sort >listed &&
	(cd "$SK_SRCDIR/lib" && for d in */; do echo "${d%/}"; done) | LC_ALL=C sort >present &&
	test_cmp listed present
'

test_expect_success 'every layer but mpi (snet-train alone) is on the include path' '
	for d in $(sed "s/#.*//" "$SK_SRCDIR/lib/LAYERS" | awk "NF && \$1 != \"mpi\" { print \$1 }"); do
		grep -q -e "-I\$(top_srcdir)/lib/$d\( \|\$\)" "$SK_SRCDIR/Makefile.am" ||
			{ echo "lib/$d is not in SK_LIB_CPPFLAGS (Makefile.am)" >&2; return 1; }
	done
'

test_expect_success 'a tree that includes downward passes' '
	mktree && check_includes t
'

test_expect_success 'an upward include fails, naming the file, line and layers' '
	mktree && printf "int x;\n#include \"sk_mid.h\"\n" >t/low/up.c &&
	test_must_fail check_includes t >out &&
	echo "lib/low/up.c:2: includes sk_mid.h from mid, a layer above low (lib/LAYERS)" >expect &&
	test_cmp expect out
'

test_expect_success 'a header including upward fails too' '
	mktree && printf "#include \"sk_mid.h\"\n" >>t/low/sk_low.h &&
	test_must_fail check_includes t >out &&
	grep -q "^lib/low/sk_low.h:2: includes sk_mid.h from mid, a layer above low" out
'

test_expect_success 'a file in a subfolder is in its parent folder layer' '
	mktree && printf "#include \"sk_high.h\"\n" >t/mid/sub/part2.c && : >t/high/sk_high.h &&
	test_must_fail check_includes t >out &&
	grep -q "^lib/mid/sub/part2.c:1: includes sk_high.h from high, a layer above mid" out
'

test_expect_success 'a file in a folder the table does not list fails' '
	mktree && mkdir t/extra && printf "int y;\n" >t/extra/new.c &&
	test_must_fail check_includes t >out &&
	grep -q "^lib/extra/new.c: lib/extra is not a layer of lib/LAYERS" out
'

test_expect_success 'a file directly in lib/ fails' '
	mktree && : >t/stray.c &&
	test_must_fail check_includes t >out &&
	grep -q "^lib/stray.c: in no layer folder" out
'

test_expect_success 'an include of an unknown header or with a folder fails' '
	mktree && printf "#include \"sk_nowhere.h\"\n#include \"../low/sk_low.h\"\n" >t/high/more.c &&
	test_must_fail check_includes t >out &&
	grep -q "^lib/high/more.c:1: includes sk_nowhere.h, which no layer folder" out &&
	grep -q "^lib/high/more.c:2: \"../low/sk_low.h\" names a folder" out
'

test_expect_success 'a header in two layer folders fails' '
	mktree && : >t/high/sk_low.h &&
	test_must_fail check_includes t >out &&
	grep -q "sk_low.h is in both lib/low and lib/high" out
'

test_expect_success 'a missing or empty table fails' '
	mktree && rm t/LAYERS &&
	test_must_fail check_includes t &&
	mktree && printf "# nothing\n" >t/LAYERS &&
	test_must_fail check_includes t
'

test_done
