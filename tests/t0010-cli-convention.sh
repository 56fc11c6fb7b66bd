#!/bin/sh
# The command-line convention of simkit(7), checked over the real option
# table of every program (and of every command of a program with commands),
# as printed by the hidden --list-options of lib/cli.c: one meaning per
# short letter, -z LEVEL for every stream writer, exit status 3 listed where
# a program can return it, the man pages in step with the tables.
. "$SK_SRCDIR/tests/lib.sh"

# Which programs write tensor streams (simkit(7), COMMAND-LINE CONVENTION).
# Every program must be in one of the two lists, so a new program has to be
# placed by whoever adds it.
WRITERS="tns-import tns-select snet-infer snet-train mr-build nsm-pretrain zoo-encode zoo-compare"
OTHERS="tns-info tns-export"

# The programs: one man page each in man/man1 (and every built program has
# one).
progs=
for m in "$SK_SRCDIR"/man/man1/*.1; do
	progs="$progs $(basename "$m" .1)"
done

test_expect_success 'every program has a man page and a place in the lists' '
	bad=0 &&
	for c in "$SK_BUILDDIR"/bin/*; do
		[ -f "$c" ] && [ -x "$c" ] || continue
		p=$(basename "$c")
		[ -r "$SK_SRCDIR/man/man1/$p.1" ] || { echo "$p: no man page man1/$p.1"; bad=1; }
	done &&
	for p in $progs; do
		case " $WRITERS $OTHERS " in
		*" $p "*) ;;
		*) echo "$p: neither a stream writer nor not (add it to WRITERS or OTHERS)"; bad=1 ;;
		esac
	done &&
	test $bad = 0
'

# opts.tsv: program, unit ("prog" or "prog command"), letter, long, argument,
# hidden -- every option of every table.  help.UNIT: the --help text.
: >opts.tsv
: >units
collect() {
	for p in $progs; do
		"$p" --help >"help.$p" 2>&1 || { echo "$p --help failed"; return 1; }
		cmds=$(awk '/^Commands:/ {c = 1; next} c && /^  [a-z]/ {print $1; next} c {c = 0}' "help.$p")
		if [ -z "$cmds" ]; then
			units="$p"
		else
			units=
			for c in $cmds; do
				units="$units $p:$c"
			done
		fi
		for u in $units; do
			echo "$p $u" >>units
			# shellcheck disable=SC2046
			set -- $(echo "$u" | tr : " ")
			"$@" --help >"help.$u" 2>&1 || { echo "$u --help failed"; return 1; }
			"$@" --list-options >list 2>err || { echo "$*: no --list-options:"; cat err; return 1; }
			[ -s list ] || { echo "$*: --list-options printed nothing"; return 1; }
			awk -F "\t" -v p="$p" -v u="$u" 'NF < 3 {print "bad line: " $0 >"/dev/stderr"; exit 1}
				{printf "%s\t%s\t%s\t%s\t%s\t%s\n", p, u, $1, $2, $3, (NF > 3 ? $4 : "")}' list >>opts.tsv ||
				return 1
		done
	done
}

test_expect_success 'every program lists its real option table' '
	collect &&
	awk -F "\t" "\$2 == \"tns-info\" && \$3 == \"-c\" && \$4 == \"--check\" && \$5 == \"-\" {f = 1}
		END {exit !f}" opts.tsv
'

# run UNIT ARGS: the unit ("prog" or "prog:command") with ARGS, no stdin
run() {
	u=$1
	shift
	# shellcheck disable=SC2046
	$(echo "$u" | tr : " ") "$@" </dev/null
}

test_expect_success 'a short option means one thing in every program' '
	awk -F "\t" "\$3 != \"-\" {
		k = \$3; v = \$4 \" \" (\$5 == \"-\" ? \"(flag)\" : \"ARG\")
		if (!(k in m)) { m[k] = v; w[k] = \$2; next }
		if (m[k] != v) { printf \"%s is %s in %s but %s in %s\n\", k, m[k], w[k], v, \$2; bad = 1 }
	} END { exit bad }" opts.tsv
'

test_expect_success 'a long option has one letter in every program' '
	awk -F "\t" "\$3 != \"-\" {
		k = \$4
		if (!(k in m)) { m[k] = \$3; w[k] = \$2; next }
		if (m[k] != \$3) { printf \"%s is %s in %s but %s in %s\n\", k, m[k], w[k], \$3, \$2; bad = 1 }
	} END { exit bad }" opts.tsv
'

test_expect_success 'every stream writer takes -z, --compress LEVEL' '
	bad=0 &&
	while read -r p u; do
		case " $WRITERS " in *" $p "*) ;; *) continue ;; esac
		awk -F "\t" -v u="$u" "\$2 == u && \$3 == \"-z\" && \$4 == \"--compress\" && \$5 != \"-\" {ok = 1}
			END {exit !ok}" opts.tsv ||
			{ echo "$u: a stream writer without -z, --compress LEVEL"; bad=1; continue; }
		run "$u" -z 10 >out 2>err
		st=$?
		{ [ $st = 2 ] && [ ! -s out ] && grep -q "^$p: --compress: 10 is outside 0\.\.9\$" err; } ||
			{ echo "$u -z 10: exit $st, not the usage error of sk_arg_level:"; cat err; bad=1; }
	done <units &&
	test $bad = 0
'

test_expect_success 'every seed is parsed by the one seed parser' '
	bad=0 &&
	awk -F "\t" "\$4 ~ /seed\$/ && \$5 != \"-\" {print \$1, \$2, \$4}" opts.tsv >seeds &&
	test -s seeds &&
	while read -r p u l; do
		for v in 1.5 1e3 -1 "" 9223372036854775808; do
			run "$u" "$l" "$v" >out 2>err
			st=$?
			{ [ $st = 2 ] && [ ! -s out ] && [ $(wc -l <err) = 1 ] &&
				grep -q "^$p: $l: .*\(is not a seed\|is outside 0\.\.9223372036854775807\)" err; } ||
				{ echo "$u $l \"$v\": exit $st, not the seed parser'"'"'s usage error:"; cat err; bad=1; }
		done
	done <seeds &&
	test $bad = 0
'

test_expect_success 'options are dispatched one way: a switch on the table index' '
	! grep -n "\[[a-z_]*\]\.longname" "$SK_SRCDIR"/bin/*.c "$SK_SRCDIR"/bin/*-cmd/*.c
'

# EXIT STATUS section of a man page, one line
exit_section() {
	awk '/^\.SH/ {s = ($0 ~ /EXIT STATUS/); next} s' "$SK_SRCDIR/man/man1/$1.1" | tr "\n" " "
}

test_expect_success 'a program that can stop with a checkpoint says exit status 3' '
	bad=0 &&
	for p in $progs; do
		can=0
		cat "$SK_SRCDIR/bin/$p".c "$SK_SRCDIR/bin/$p"-cmd/*.c 2>/dev/null |
			grep -q "sk_exit_stopped\|exit(3)\|EXIT_STOPPED" && can=1
		awk -F "\t" -v p="$p" "\$1 == p && \$4 == \"--resume\" {f = 1} END {exit !f}" opts.tsv && can=1
		[ $can = 1 ] || continue
		exit_section "$p" | grep -Eq "(^|[^0-9.])3([^0-9]|$)" ||
			{ echo "$p(1): EXIT STATUS does not list 3"; bad=1; }
		grep -q "^Exit status:.* 3 stopped" "help.$p" ||
			{ echo "$p --help: the exit status line does not list 3"; bad=1; }
		for u in $(awk -v p="$p" "\$1 == p && \$2 != p {print \$2}" units); do
			awk -F "\t" -v u="$u" "\$2 == u && \$4 == \"--resume\" {f = 1} END {exit !f}" opts.tsv || continue
			grep -q "^Exit status:.* 3 stopped" "help.$u" ||
				{ echo "$u --help: the exit status line does not list 3"; bad=1; }
		done
	done &&
	test $bad = 0
'

# A man page's option lines: the lines of its OPTIONS section that start
# with an option (".B \-x", ".BR \-\-long ...", ".BI ...", tags after .TP or
# .TQ, or options named in a paragraph), as "LETTER LONG" (letter "-" unless
# the line pairs one letter with one long option).
man_tags() {
	awk '/^\.SH/ {s = ($0 ~ /^\.SH "?OPTIONS/); next} s && /^\.[BIR]+ +\\-/' "$SK_SRCDIR/man/man1/$1.1" |
		sed 's/\\-\\-/@@/g; s/\([A-Za-z0-9]\)\\-/\1-/g' |
		awk '{
			n = 0; l = 0; s = "-"; line = $0
			while (match(line, /@@[A-Za-z0-9][A-Za-z0-9-]*/)) {
				g[++l] = "--" substr(line, RSTART + 2, RLENGTH - 2); line = substr(line, RSTART + RLENGTH)
			}
			line = $0
			while (match(line, /\\-[A-Za-z]([^A-Za-z0-9]|$)/)) {
				n++; s = "-" substr(line, RSTART + 2, 1); line = substr(line, RSTART + 2)
			}
			for (i = 1; i <= l; i++)
				print (l == 1 && n == 1 ? s : "-"), g[i]
		}'
}

test_expect_success 'every option is in its man page, with its letter' '
	bad=0 &&
	for p in $progs; do
		man_tags "$p" | sort -u >tags
		awk -F "\t" -v p="$p" "\$1 == p {print \$3, \$4}" opts.tsv | sort -u >all
		awk -F "\t" -v p="$p" "\$1 == p && \$6 != \"hidden\" &&
			\$4 !~ /^--(help|version|quiet)\$/ {print \$3, \$4}" opts.tsv | sort -u >want
		while read -r s l; do
			if [ "$s" = "-" ]; then
				grep -q " $l\$" tags || { echo "$p(1): $l is not documented"; bad=1; }
			else
				grep -q "^$s $l\$" tags || { echo "$p(1): $s, $l is not documented"; bad=1; }
			fi
		done <want
		while read -r s l; do
			[ "$s" = "-" ] && continue
			grep -q "^$s $l\$" all ||
				{ echo "$p(1) documents $s, $l; the program has no such pair"; bad=1; }
		done <tags
	done &&
	test $bad = 0
'

test_done
