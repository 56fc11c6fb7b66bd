#!/bin/sh
# zoo-encode and zoo-compare: usage and data errors give one message and the
# right exit status, and nothing on stdout.
. "$SK_SRCDIR/tests/lib.sh"

test_expect_success 'usage errors exit 2' '
	test_error 2 zoo-encode &&
	test_error 2 zoo-encode frobnicate &&
	test_error 2 zoo-encode train --encoder nfn -o x.enc &&
	test_error 2 zoo-encode train zoo.tns &&
	test_error 2 zoo-encode train -o x.enc --split middle &&
	test_error 2 zoo-encode train -o x.enc --d 30 --heads 4 &&
	test_error 2 zoo-encode predict zoo.tns &&
	test_error 2 zoo-compare &&
	test_error 2 zoo-compare --metric accuracy x.tns &&
	test_error 2 zoo-compare --query 3 x.tns
'

test_expect_success 'the letters simkit(7) gives other meanings are refused' '
	test_error 2 zoo-encode predict -e x.enc zoo.tns &&
	test_error 2 zoo-encode encode -e x.enc zoo.tns &&
	test_error 2 zoo-encode train -o x.enc -d 8 zoo.tns &&
	test_error 2 zoo-encode train -o x.enc -c 8 zoo.tns &&
	test_error 2 zoo-encode train -o x.enc -w epoch=1 zoo.tns &&
	test_error 2 zoo-compare -t x.tns && test_error 2 zoo-compare -r x.tns &&
	test_error 2 zoo-compare -k 3 x.tns && test_error 2 zoo-compare -m tau x.tns &&
	test_error 2 zoo-compare -z 3 x.tns &&
	test_error 2 zoo-encode run -D a.tns -T b.tns -z 10 &&
	test_error 2 zoo-encode train -o x.enc --where epoch zoo.tns
'

test_expect_success 'help and version' '
	zoo-encode --help | grep -q "^  train " &&
	zoo-encode train --help | grep -q -- "--encoder KIND" &&
	zoo-encode --version | head -1 | grep -q "^zoo-encode (simkit) 0.1.0$" &&
	zoo-compare --version | head -1 | grep -q "^zoo-compare (simkit) 0.1.0$" &&
	zoo-compare --help | grep -q -- "--table"
'

test_expect_success 'data errors exit 1 and leave no output file' '
	printf "not a stream" >bad.tns &&
	test_error 1 zoo-encode train -o x.enc bad.tns && test ! -e x.enc &&
	test_error 1 zoo-encode predict -E bad.tns bad.tns &&
	test_error 1 zoo-compare bad.tns &&
	test_error 1 zoo-encode train -o x.enc nosuch.tns && test ! -e x.enc
'

test_done
