#!/usr/bin/env bash
# kjv-chat.sh makes wisp's chat model from the default model (wisp KJV),
# with wisp's own tools only:
#
#   1. chatgen      conversations from the King James Bible (questions
#                   naming a book, chapter and verse, answered with the
#                   verses, ...), in JSON lines: the training books to
#                   corpus/kjv-chat-train.jsonl, the books kjv.sh holds out
#                   to corpus/kjv-chat-eval.jsonl
#   2. wisp train   --init models/default-f16.gguf (the default model before
#                   Q4_0) with ChatML's control tokens added, on the
#                   conversations, learning the replies only
#   3. wisp convert the result to F16, then Q4_0, like the default model
#
# and then measures the held-out loss of the replies (on books no stage
# trained on) and the perplexity of plain held-out text, before and after,
# and writes OUT/summary.md with greedy replies to a few questions.
#
# Every step is deterministic; the training writes checkpoints, and
# rerunning the script after an interruption resumes it.
#
# Usage: tools/corpus/kjv-chat.sh [OUT]   (OUT defaults to build/chat)
# Environment: WISP (the wisp binary, default bin/wisp), STEPS (1200),
# THREADS (1).
set -euo pipefail

out=${1:-build/chat}
wisp=${WISP:-bin/wisp}
steps=${STEPS:-1200}
threads=${THREADS:-1}
init=models/default-f16.gguf
ctrain=corpus/kjv-chat-train.jsonl
ceval=corpus/kjv-chat-eval.jsonl

for f in "$init" "$wisp" corpus/kjv-eval.txt; do
	if [ ! -e "$f" ]; then
		echo "kjv-chat: $f is missing: run make corpus wisp first" >&2
		exit 1
	fi
done
mkdir -p "$out"

timed() {
	local name=$1 start
	shift
	start=$(date +%s)
	echo "kjv-chat: $name: $*" >&2
	"$@" 2>&1 | tee -a "$out/$name.log" >&2
	echo "$name $(($(date +%s) - start))" >>"$out/times"
}

if [ ! -f "$ctrain" ] || [ ! -f "$ceval" ]; then
	# The held-out books are those of kjv.sh.
	held=$(sed -n 's/^held_out="\(.*\)"$/\1/p' tools/corpus/kjv.sh)
	if [ -z "$held" ]; then
		echo "kjv-chat: no held_out list in tools/corpus/kjv.sh" >&2
		exit 1
	fi
	if ! command -v bible >/dev/null; then
		echo "kjv-chat: the bible command is missing: run make corpus first" >&2
		exit 1
	fi
	go build -o "$out/chatgen" ./tools/corpus/chatgen
	bible -f Gen1:1-Rev22:21 </dev/null | "$out/chatgen" -seed 1 -held "$held" -train "$ctrain.tmp" -eval "$ceval.tmp"
	mv "$ctrain.tmp" "$ctrain"
	mv "$ceval.tmp" "$ceval"
fi

if [ ! -f "$out/chat.gguf" ]; then
	resume=()
	if [ -f "$out/chat.gguf.ckpt" ]; then
		resume=(--resume "$out/chat.gguf.ckpt")
	fi
	timed train "$wisp" train --init "$init" --add-special '<|im_start|>,<|im_end|>' --eos '<|im_end|>' \
		--chat --train "$ctrain" --eval "$ceval" --ctx 256 --batch 8 --steps "$steps" \
		--lr 5e-4 --warmup 50 --eval-every 200 --eval-tokens 0 --ckpt-every 100 --seed 1 --threads "$threads" \
		--name "wisp KJV chat" -o "$out/chat.gguf" "${resume[@]}"
fi
timed f16 "$wisp" convert --type f16 --name "wisp KJV chat (wisp KJV fine-tuned on conversations; F16)" \
	-o "$out/chat-f16.gguf" "$out/chat.gguf"
timed q4_0 "$wisp" convert --type q4_0 --name "wisp KJV chat (wisp KJV fine-tuned on conversations; Q4_0)" \
	-o "$out/chat-q4_0.gguf" "$out/chat-f16.gguf"

# field KEY: a number from the JSON of wisp eval in $json.
field() { echo "$json" | sed -n "s/^  \"$1\": \([0-9.e+-]*\),\{0,1\}$/\1/p"; }

# ask MODEL SYSTEM QUESTION...: a greedy conversation, one question a turn:
# the questions, then wisp chat's replies ("> ...") and statistics.
ask() {
	local m=$1 sys=$2 q
	shift 2
	if [ -n "$sys" ]; then echo "    system: $sys"; fi
	for q in "$@"; do echo "    user: $q"; done
	printf '%s\n' "$@" | "$wisp" chat -m "$m" --system "$sys" -t 0 -n 150 2>&1 |
		sed -e '/^\/reset starts over/d' -e '/^> *$/d' -e '/^$/d' -e 's/^/    /'
}

{
	echo "Held-out conversations ($ceval: books no stage trained on), perplexity of the replies (wisp eval --chat):"
	echo
	echo "| model | replies' perplexity | plain held-out text perplexity (corpus/kjv-eval.txt) |"
	echo "| --- | ---: | ---: |"
	printf '| %s (before: the init, ChatML rows added, from the training log) | %s | ' "$init" \
		"$(sed -n 's/^step 0: held-out loss [0-9.]*, perplexity \([0-9.]*\).*/\1/p' "$out/train.log" | head -1)"
	json=$("$wisp" eval -m "$init" --text corpus/kjv-eval.txt --json)
	printf '%.2f |\n' "$(field perplexity)"
	for m in chat chat-f16 chat-q4_0; do
		json=$("$wisp" eval --chat -m "$out/$m.gguf" --text "$ceval" --json)
		printf '| %s (%s bytes) | %.2f | ' "$m" "$(field fileBytes)" "$(field perplexity)"
		json=$("$wisp" eval -m "$out/$m.gguf" --text corpus/kjv-eval.txt --json)
		printf '%.2f |\n' "$(field perplexity)"
	done
	echo
	echo "Times (seconds):"
	sed 's/^/    /' "$out/times"
	echo
	echo "Greedy replies of chat-q4_0 (wisp chat -t 0 -n 150), a training book and held-out ones:"
	echo
	ask "$out/chat-q4_0.gguf" "You answer from the King James Bible." "Recite Genesis 1:1." "And the next verse?"
	echo
	ask "$out/chat-q4_0.gguf" "" "What does Psalm 23 say?"
	echo
	ask "$out/chat-q4_0.gguf" "" "Which book begins: In the beginning God created...?"
	echo
	ask "$out/chat-q4_0.gguf" "" "What does Mark 1:1 say?"
	echo
	ask "$out/chat-q4_0.gguf" "Answer briefly." "Who was Moses?"
} >"$out/summary.md"
cat "$out/summary.md"
