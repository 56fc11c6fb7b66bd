#!/bin/sh
# tns-import on bad input: each gives one line "tns-import: message" on
# stderr, exit 1 (2 for usage), nothing on stdout and no output file.
. "$SK_SRCDIR/tests/lib.sh"
FX="$SK_SRCDIR/tests/fixtures/import"

be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
{ printf '\000\000\010\003'; be32 20; be32 8; be32 8; head -c 1280 /dev/urandom; } >img.idx
{ printf '\000\000\010\001'; be32 20; head -c 20 /dev/zero; } >lab.idx
gzip -c img.idx >img.idx.gz

# no output file and no temporary left behind
clean() { test ! -e out.tns && test -z "$(ls -A outdir)"; }
mkdir outdir

test_expect_success 'a good import works (the baseline for what follows)' '
	tns-import -q -o outdir/ok.tns img.idx.gz lab.idx && rm outdir/ok.tns
'

test_expect_success 'idx truncated inside the data (raw: caught from the size)' '
	head -c 500 img.idx >cut.idx &&
	test_error 1 tns-import -o outdir/x.tns cut.idx lab.idx 2>err && clean &&
	grep -q "header says 20x8x8" err
'

test_expect_success 'idx.gz truncated: caught while streaming, output removed' '
	head -c 500 img.idx | gzip >cut.idx.gz &&
	test_error 1 tns-import -o outdir/x.tns cut.idx.gz lab.idx 2>err && clean &&
	grep -q "truncated at example" err
'

test_expect_success 'a gzip file cut short' '
	head -c 300 img.idx.gz >cutgz.idx.gz &&
	test_error 1 tns-import -o outdir/x.tns cutgz.idx.gz 2>err && clean
'

test_expect_success 'corrupt gzip data (CRC)' '
	size=$(wc -c <img.idx.gz) &&
	{ head -c $((size - 8)) img.idx.gz; printf "\\377\\377\\377\\377"; tail -c 4 img.idx.gz; } >bad.idx.gz &&
	test_error 1 tns-import -o outdir/x.tns bad.idx.gz 2>err && clean &&
	grep -q "incorrect data check" err
'

test_expect_success 'wrong idx magic' '
	test_error 1 tns-import -F idx -o outdir/x.tns "$FX/bad-magic.idx" 2>err && clean &&
	grep -q "bad idx magic" err
'

test_expect_success 'huge dimensions in an idx header' '
	test_error 1 tns-import -o outdir/x.tns "$FX/huge.idx" 2>err && clean &&
	{ printf "\\000\\000\\010\\003"; be32 1; be32 65536; be32 65536; } | gzip >big.idx.gz &&
	test_error 1 tns-import -o outdir/x.tns big.idx.gz 2>err && clean &&
	grep -q "limit" err
'

test_expect_success 'images and labels that do not match' '
	{ printf "\\000\\000\\010\\001"; be32 19; head -c 19 /dev/zero; } >lab19.idx &&
	test_error 1 tns-import -o outdir/x.tns img.idx lab19.idx 2>err && clean &&
	grep -q "20 examples but .* 19 labels" err &&
	test_error 1 tns-import -o outdir/x.tns img.idx lab.idx lab.idx 2>err && clean
'

test_expect_success 'a truncated CIFAR record' '
	test_error 1 tns-import -o outdir/x.tns "$FX/trunc-cifar.bin" 2>err && clean &&
	grep -q "truncated record 2" err &&
	gzip -c "$FX/trunc-cifar.bin" >t.bin.gz &&
	test_error 1 tns-import -o outdir/x.tns -F cifar10 t.bin.gz 2>err && clean &&
	grep -q "truncated record 2" err
'

test_expect_success 'a missing file, a directory, an empty file, unknown content' '
	test_error 1 tns-import -o outdir/x.tns nosuch.idx && clean &&
	mkdir adir && test_error 1 tns-import -F idx -o outdir/x.tns adir && clean &&
	: >empty && test_error 1 tns-import -o outdir/x.tns empty && clean &&
	echo "hello, world" >text && test_error 1 tns-import -o outdir/x.tns text 2>err && clean &&
	grep -q "unrecognised format" err
'

test_expect_success 'an idx of zero examples' '
	{ printf "\\000\\000\\010\\003"; be32 0; be32 8; be32 8; } >zero.idx &&
	test_error 1 tns-import -o outdir/x.tns zero.idx 2>err && clean &&
	grep -q "no examples in zero.idx" err
'

test_expect_success 'a directory with no PNG files' '
	test_error 1 tns-import -o outdir/x.tns adir && clean
'

test_expect_success 'PNG: corrupt, truncated, and different sizes' '
	head -c 60 "$FX/rgb.png" >cut.png &&
	test_error 1 tns-import -o outdir/x.tns cut.png && clean &&
	test_error 1 tns-import -o outdir/x.tns "$FX/gray8.png" "$FX/gray1.png" 2>err && clean &&
	grep -q -- "--size" err
'

test_expect_success 'npy: bad header, unsupported dtype, truncated' '
	{ printf "\\223NUMPY\\001\\000\\020\\000"; printf "{bad header}   \\n"; } >bad.npy &&
	test_error 1 tns-import -o outdir/x.tns bad.npy && clean &&
	head -c 130 "$FX/u1.npy" >cut.npy &&
	test_error 1 tns-import -n x -o outdir/x.tns cut.npy && clean
'

test_expect_success 'output to /dev/full' '
	test_error 1 tns-import -o /dev/full img.idx lab.idx
'

test_expect_success 'usage errors exit 2' '
	test_error 2 tns-import &&
	test_error 2 tns-import -F jpeg img.idx &&
	test_error 2 tns-import --chunk 0 img.idx &&
	test_error 2 tns-import --size 3 --fit pad x.png &&
	test_error 2 tns-import --fit crop x.png &&
	test_error 2 tns-import --bogus img.idx &&
	test_error 2 tns-import -F idx --size 2x2 --fit pad img.idx &&
	test_error 2 tns-import -n "bad name" x.npy
'

test_expect_success 'letters of simkit 0.1.0 that changed meaning are usage errors' '
	test_error 2 tns-import -z img.idx lab.idx 2>err && grep -q "'"'"'img.idx'"'"' is not an integer" err &&
	test_error 2 tns-import -z 10 img.idx &&
	test_error 2 tns-import -c 5 img.idx &&
	test_error 2 tns-import -f idx -o outdir/x.tns img.idx 2>err &&
	grep -q "the format option is -F (-f is --force)" err && clean
'

test_expect_success '-n takes one npy input only' '
	test_error 1 tns-import -n x -o outdir/x.tns img.idx && clean
'

if test_have_prereq tty; then
	test_expect_success 'binary output to a terminal is refused (exit 1)' '
		script -qec "tns-import img.idx" /dev/null >tty.out 2>&1; s=$? &&
		test $s -eq 1 && grep -q "tns-import: refusing to write binary data to a terminal" tty.out &&
		script -qec "tns-import --force -q img.idx" /dev/null >/dev/null 2>&1
	'
else
	test_skip 'binary output to a terminal is refused' 'no script(1)'
fi

test_expect_success '--help and --version' 'test_help_version tns-import'

test_done
