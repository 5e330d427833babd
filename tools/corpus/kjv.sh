#!/usr/bin/env bash
# kjv.sh writes the King James Bible as training text for wisp train:
#
#   OUT/kjv-train.txt  every book not held out
#   OUT/kjv-eval.txt   the held-out books below, for evaluation
#
# The text comes from Debian's bible-kjv (the `bible` command) and
# bible-kjv-text (its data), installed when missing (this needs root).
# Each line is one verse's text, without its reference, in canonical order;
# runs of spaces are squeezed and trailing spaces dropped. The text is
# ASCII.
#
# Usage: tools/corpus/kjv.sh [OUT]   (OUT defaults to corpus)
set -euo pipefail

out=${1:-corpus}

# The held-out books, about 4.9% of the text: narrative (Ruth, Jonah),
# wisdom and poetry (Ecclesiastes, Song of Solomon, Lamentations), prophecy
# (Joel, Micah), a gospel (Mark) and letters (James, Philemon, Jude). The
# names are the abbreviations `bible -f` prints.
held_out="Ruth Eccl SSol Lam Joel Jonah Mic Mark Jas Phmn Jude"

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}
if ! installed bible-kjv || ! installed bible-kjv-text || ! command -v bible >/dev/null; then
	echo "kjv: installing Debian's bible-kjv and bible-kjv-text" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bible-kjv bible-kjv-text >/dev/null
fi

mkdir -p "$out"
tmp=$(mktemp -d "$out/.kjv.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# -f turns pretty-printing off: one verse a line, "Ge1:1 In the beginning ...".
bible -f Gen1:1-Rev22:21 </dev/null >"$tmp/all.txt"

awk -v held="$held_out" -v train="$tmp/kjv-train.txt" -v eval="$tmp/kjv-eval.txt" '
BEGIN { n = split(held, h, " "); for (i = 1; i <= n; i++) out[h[i]] = 1 }
{
	ref = $1
	if (ref !~ /^[1-3]?[A-Za-z]+[0-9]+:[0-9]+$/) {
		printf "kjv: line %d has no verse reference: %s\n", NR, $0 > "/dev/stderr"
		bad = 1
		exit 1
	}
	book = ref
	sub(/[0-9]+:[0-9]+$/, "", book)
	seen[book] = 1
	text = substr($0, length(ref) + 2)
	gsub(/  +/, " ", text)
	sub(/ +$/, "", text)
	if (text == "") next
	if (book in out) { print text > eval; ne++ } else { print text > train; nt++ }
}
END {
	if (bad) exit 1
	for (b in out) if (!(b in seen)) {
		printf "kjv: held-out book %s not in the text\n", b > "/dev/stderr"
		exit 1
	}
	if (nt + ne != 31102) {
		printf "kjv: %d verses, want 31102\n", nt + ne > "/dev/stderr"
		exit 1
	}
	printf "kjv: %d training verses, %d held out\n", nt, ne > "/dev/stderr"
}' "$tmp/all.txt"

mv "$tmp/kjv-train.txt" "$out/kjv-train.txt"
mv "$tmp/kjv-eval.txt" "$out/kjv-eval.txt"
wc -c "$out/kjv-train.txt" "$out/kjv-eval.txt" >&2
