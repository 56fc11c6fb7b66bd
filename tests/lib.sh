# tests/lib.sh: the shell test library, sourced by tests/tNNNN-*.sh.
# Each script runs in a fresh scratch directory and prints TAP.
#   test_expect_success 'title' 'commands joined with &&'
#   test_must_fail CMD...      fails (exit 1..125), not a crash or a signal
#   test_error CODE PROG ARGS  exit CODE, exactly one stderr line "PROG: ...",
#                              nothing on stdout (with --any-stdout first:
#                              stdout may hold output); the line stays in
#                              $test_tmp/.stderr
#   test_cmp EXPECTED ACTUAL   diff on failure
#   test_have_prereq python    true when the prerequisite is available
#                              (python, torch, fmnist, mnist, mpi; tty:
#                              script(1) runs a command on a terminal, and
#                              timeout(1) is there)
#   skip_all 'reason'          skip the whole script
#   synth_data [-c 3] [-s SEED] N [TNS-IMPORT OPTIONS]
#                              a synthetic labelled data set of N examples
#                              (1x28x28, or 3x32x32 with -c 3) on stdout:
#                              ten learnable classes made by tests/synth, so
#                              that no test needs a real data set
#   synth_split N CUT          synth_data N, examples 0..CUT-1 into train.tns
#                              and the others into valid.tns
#   fmnist_split N CUT         the same from the first N Fashion-MNIST
#                              training examples: fm-train.tns, fm-valid.tns
#   accuracy_above MIN [FILE]  the accuracy in snet-infer --eval's metrics
#                              (FILE, default metrics) is above MIN; the
#                              metrics are shown on stderr
#   record_crcs FILE PATTERN   the last field (crc32=...) of each line of
#                              tns-info FILE that matches the grep PATTERN
#   test_help_version PROG [USAGE]
#                              --help says "Usage: PROG USAGE..." (USAGE a
#                              grep pattern; the text stays in $test_tmp/.help)
#                              and --version's first line is "PROG (simkit) X.Y.Z"
#   test_done
set -u
: "${SK_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${SK_BUILDDIR:=$SK_SRCDIR}"
export LC_ALL=C
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
test_n=0
test_failed=0
test_tmp=$(mktemp -d "${TMPDIR:-/tmp}/sk-test.XXXXXX")
trap 'rm -rf "$test_tmp"' EXIT
cd "$test_tmp" || exit 1

# The real data sets, for the tests that use them when present (each skips
# alone without them).  SK_FMNIST_DIR=/nonexistent runs the suite as on a
# machine without the Debian package dataset-fashion-mnist.
FMNIST_DIR=${SK_FMNIST_DIR:-${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}}
SK_SYNTH=$SK_BUILDDIR/tests/synth
MNIST_DIR=${MNIST_DIR:-$SK_SRCDIR/../shared/data/mnist}

test_expect_success() {
	test_n=$((test_n + 1))
	if (eval "$2") >"$test_tmp/.out" 2>&1; then
		echo "ok $test_n - $1"
	else
		echo "not ok $test_n - $1"
		sed 's/^/# /' "$test_tmp/.out" | tail -n 20
		test_failed=$((test_failed + 1))
	fi
}

test_skip() {
	test_n=$((test_n + 1))
	echo "ok $test_n - $1 # SKIP $2"
}

test_must_fail() {
	"$@"
	s=$?
	if [ "$s" -eq 0 ]; then
		echo "test_must_fail: command succeeded: $*" >&2
		return 1
	elif [ "$s" -ge 126 ]; then
		echo "test_must_fail: command crashed or was killed (status $s): $*" >&2
		return 1
	fi
	return 0
}

test_error() {
	any_stdout=
	if [ "$1" = --any-stdout ]; then
		any_stdout=1
		shift
	fi
	want=$1
	shift
	prog=$1
	"$@" >"$test_tmp/.stdout" 2>"$test_tmp/.stderr"
	s=$?
	if [ "$s" -ne "$want" ]; then
		echo "test_error: exit $s, expected $want: $*" >&2
		cat "$test_tmp/.stderr" >&2
		return 1
	fi
	if [ -s "$test_tmp/.stdout" ] && [ "$want" -ne 0 ] && [ -z "$any_stdout" ]; then
		echo "test_error: unexpected output on stdout: $*" >&2
		return 1
	fi
	n=$(wc -l <"$test_tmp/.stderr")
	if [ "$n" -ne 1 ] || ! grep -q "^$(basename "$prog"): " "$test_tmp/.stderr"; then
		echo "test_error: stderr is not one line '$(basename "$prog"): message':" >&2
		cat "$test_tmp/.stderr" >&2
		return 1
	fi
	cat "$test_tmp/.stderr" >&2
	return 0
}

test_cmp() {
	diff -u "$1" "$2"
}

test_have_prereq() {
	case "$1" in
	python) /usr/bin/python3 -c 'import numpy' 2>/dev/null ;;
	torch) /usr/bin/python3 -c 'import torch' 2>/dev/null ;;
	fmnist) [ -r "$FMNIST_DIR/train-images-idx3-ubyte.gz" ] ;;
	mnist) [ -r "$MNIST_DIR/train-images-idx3-ubyte.gz" ] ;;
	mpi) command -v mpirun >/dev/null 2>&1 ;;
	tty) command -v timeout >/dev/null 2>&1 && command -v script >/dev/null 2>&1 &&
		script -qec true /dev/null >/dev/null 2>&1 ;;
	*) return 1 ;;
	esac
}

synth_data() {
	sd_c=1
	sd_s=1
	while :; do
		case $1 in
		-c) sd_c=$2; shift 2 ;;
		-s) sd_s=$2; shift 2 ;;
		*) break ;;
		esac
	done
	sd_n=$1
	shift
	[ -x "$SK_SYNTH" ] || { echo "synth_data: $SK_SYNTH is not built (make check builds it)" >&2; return 1; }
	sd_p=$(mktemp "$test_tmp/.synth.XXXXXX") &&
	"$SK_SYNTH" -n "$sd_n" -s "$sd_s" -c "$sd_c" -o "$sd_p" || return 1
	if [ "$sd_c" = 1 ]; then
		tns-import -q "$@" "$sd_p-images-idx3-ubyte" "$sd_p-labels-idx1-ubyte"
	else
		tns-import -q -F cifar10 "$@" "$sd_p.bin"
	fi
	sd_st=$?
	rm -f "$sd_p" "$sd_p-images-idx3-ubyte" "$sd_p-labels-idx1-ubyte" "$sd_p.bin"
	return $sd_st
}

synth_split() {
	synth_data "$1" >"$test_tmp/.split.tns" &&
	tns-select -q --range 0:"$2" "$test_tmp/.split.tns" >train.tns &&
	tns-select -q --range "$2":"$1" "$test_tmp/.split.tns" >valid.tns
	ss_st=$?
	rm -f "$test_tmp/.split.tns"
	return $ss_st
}

fmnist_split() {
	tns-import -q "$FMNIST_DIR/train-images-idx3-ubyte.gz" "$FMNIST_DIR/train-labels-idx1-ubyte.gz" |
		tns-select -q --range 0:"$1" >"$test_tmp/.split.tns" &&
	tns-select -q --range 0:"$2" "$test_tmp/.split.tns" >fm-train.tns &&
	tns-select -q --range "$2":"$1" "$test_tmp/.split.tns" >fm-valid.tns
	ss_st=$?
	rm -f "$test_tmp/.split.tns"
	return $ss_st
}

accuracy_above() {
	cat "${2:-metrics}" >&2 &&
	awk -v min="$1" '$1 == "accuracy" {n++; ok = $2 > min} END {exit !(n == 1 && ok)}' "${2:-metrics}"
}

record_crcs() {
	tns-info "$1" | grep -- "$2" | awk '{print $NF}'
}

test_help_version() {
	"$1" --help >"$test_tmp/.help" && grep -q "^Usage: $1 ${2:-}" "$test_tmp/.help" &&
	"$1" --version | head -n 1 | grep -q "^$1 (simkit) [0-9][0-9.]*\$"
}

skip_all() {
	echo "1..0 # SKIP $1"
	exit 0
}

test_done() {
	echo "1..$test_n"
	[ "$test_failed" -eq 0 ]
}
