#!/usr/bin/env bash
# kjv-model.sh makes wisp's default model from the King James Bible, with
# wisp's own tools only:
#
#   1. wisp train   a teacher of 5.3M parameters (and its 2048-token BPE
#                   tokenizer) on corpus/kjv-train.txt
#   2. wisp prune   the teacher to KEEP of its parameters (Wanda scores on
#                   training text)
#   3. wisp distil  the pruned student back on the teacher's distributions
#   4. wisp convert the student to F16
#   5. wisp convert the F16 model to Q4_0: the default model (the smallest
#      type within 2 % of F16's held-out perplexity; make quant-table)
#
# and then measures each stage's held-out perplexity on corpus/kjv-eval.txt
# (books no stage trained on) and writes OUT/summary.md: sizes,
# perplexities, times, and greedy and T=0.8 samples of the result.
#
# Every step is deterministic (fixed seeds; results do not depend on the
# number of threads), so the same commands on the same corpus give the same
# files. The long steps write checkpoints: rerunning the script after an
# interruption resumes them.
#
# Usage: tools/corpus/kjv-model.sh [OUT]   (OUT defaults to build/kjv)
# Environment: WISP (the wisp binary, default bin/wisp), STEPS (teacher
# steps, 1600), KEEP (fraction of parameters the student keeps, 0.5),
# DISTIL_STEPS (500).
set -euo pipefail

out=${1:-build/kjv}
wisp=${WISP:-bin/wisp}
steps=${STEPS:-1600}
keep=${KEEP:-0.5}
distil_steps=${DISTIL_STEPS:-500}
train=corpus/kjv-train.txt
eval=corpus/kjv-eval.txt

for f in "$train" "$eval" "$wisp"; do
	if [ ! -e "$f" ]; then
		echo "kjv-model: $f is missing: run make corpus wisp first" >&2
		exit 1
	fi
done
mkdir -p "$out"

# timed NAME CMD...: runs CMD, appending its log to OUT/NAME.log and its
# wall-clock seconds to OUT/times.
timed() {
	local name=$1 start
	shift
	start=$(date +%s)
	echo "kjv-model: $name: $*" >&2
	"$@" 2>&1 | tee -a "$out/$name.log" >&2
	echo "$name $(($(date +%s) - start))" >>"$out/times"
}

# resume NAME: the --resume flag for a step whose checkpoint exists.
resume() {
	if [ -f "$out/$1.gguf.ckpt" ]; then
		echo "--resume $out/$1.gguf.ckpt"
	fi
}

if [ ! -f "$out/teacher.gguf" ]; then
	# shellcheck disable=SC2046
	timed teacher "$wisp" train --train "$train" --eval "$eval" --vocab 2048 \
		--dim 256 --layers 6 --heads 8 --hidden 688 --ctx 256 --batch 8 \
		--steps "$steps" --lr 1e-3 --warmup 100 --eval-every 200 --ckpt-every 200 \
		--seed 1 --name "wisp KJV teacher" -o "$out/teacher.gguf" $(resume teacher)
fi
if [ ! -f "$out/pruned.gguf" ]; then
	timed pruned "$wisp" prune -m "$out/teacher.gguf" --calib "$train" --calib-tokens 65536 \
		--eval "$eval" --params "$keep" -o "$out/pruned.gguf"
fi
if [ ! -f "$out/student.gguf" ]; then
	# shellcheck disable=SC2046
	timed student "$wisp" distil --teacher "$out/teacher.gguf" --student "$out/pruned.gguf" \
		--train "$train" --eval "$eval" --ctx 256 --batch 8 --steps "$distil_steps" \
		--lr 5e-4 --warmup 50 --alpha 0.5 --eval-every 200 --ckpt-every 100 --seed 1 \
		--name "wisp KJV" -o "$out/student.gguf" $(resume student)
fi
timed f16 "$wisp" convert --type f16 --name "wisp KJV (5.3M teacher, pruned to $keep, distilled; F16)" \
	-o "$out/wisp-kjv.gguf" "$out/student.gguf"
timed q4_0 "$wisp" convert --type q4_0 --name "wisp KJV (5.3M teacher, pruned to $keep, distilled; Q4_0)" \
	-o "$out/wisp-kjv-q4_0.gguf" "$out/wisp-kjv.gguf"

# field KEY: a number from the JSON of wisp eval in $json.
field() { echo "$json" | sed -n "s/^  \"$1\": \([0-9.e+-]*\),\{0,1\}$/\1/p"; }

# The summary: each stage's held-out perplexity and size, and samples.
{
	echo "| model | parameters | file | held-out perplexity |"
	echo "| --- | ---: | ---: | ---: |"
	for m in teacher pruned student wisp-kjv wisp-kjv-q4_0; do
		"$wisp" eval -m "$out/$m.gguf" --text "$eval" --json >"$out/$m.eval.json"
		json=$(cat "$out/$m.eval.json")
		printf '| %s | %s | %s | %.2f |\n' "$m" "$(field params)" "$(awk "BEGIN { printf \"%.2f MB\", $(field fileBytes) / 1e6 }")" "$(field perplexity)"
	done
	echo
	echo "Times (seconds):"
	sed 's/^/    /' "$out/times"
	echo
	echo "Greedy, from \"And God said\":"
	echo
	"$wisp" run -m "$out/wisp-kjv-q4_0.gguf" -p "And God said" -t 0 -n 96 -q | sed 's/^/    /'
	echo
	echo "Temperature 0.8, seed 7, from \"In the beginning\":"
	echo
	"$wisp" run -m "$out/wisp-kjv-q4_0.gguf" -p "In the beginning" -t 0.8 --seed 7 -n 96 -q | sed 's/^/    /'
} >"$out/summary.md"
cat "$out/summary.md"
