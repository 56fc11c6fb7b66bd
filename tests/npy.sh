# tests/npy.sh: write small NumPy .npy files with printf (no Python needed).
#   npy FILE DESCR SHAPE BYTES
# DESCR is a NumPy dtype ('<f4', '<f8', '<i4', '|u1'), SHAPE the tuple's
# inside ('4, 1, 2, 2' or '4,'), BYTES the data as printf escapes.
npy() {
	hdr="{'descr': '$2', 'fortran_order': False, 'shape': ($3), }"
	while [ $(( (10 + ${#hdr} + 1) % 64 )) -ne 0 ]; do hdr="$hdr "; done
	len=$(( ${#hdr} + 1 ))
	{ printf '\223NUMPY\001\000'
	  printf "\\$(printf %03o $((len % 256)))\\$(printf %03o $((len / 256)))"
	  printf '%s\n' "$hdr"; printf "$4"; } >"$1"
}
