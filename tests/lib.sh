# tests/lib.sh: the shell test library, sourced by tests/tNNNN-*.sh.
# Each script runs in a fresh scratch directory and prints TAP.
#   test_expect_success 'title' 'commands joined with &&'
#   test_must_fail CMD...      fails (exit 1..125), not a crash or a signal
#   test_error CODE PROG ARGS  exit CODE, exactly one stderr line "PROG: ...",
#                              nothing on stdout
#   test_cmp EXPECTED ACTUAL   diff on failure
#   test_have_prereq python    true when the prerequisite is available
#   skip_all 'reason'          skip the whole script
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

# Small fixtures from the real data, when present.
FMNIST_DIR=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
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
	if [ -s "$test_tmp/.stdout" ] && [ "$want" -ne 0 ]; then
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
	*) return 1 ;;
	esac
}

skip_all() {
	echo "1..0 # SKIP $1"
	exit 0
}

test_done() {
	echo "1..$test_n"
	[ "$test_failed" -eq 0 ]
}
