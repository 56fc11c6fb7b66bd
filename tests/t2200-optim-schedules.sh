#!/bin/sh
. "${SK_SRCDIR:-$(dirname "$0")/..}/tests/lib.sh"
skip_all "not written yet"
