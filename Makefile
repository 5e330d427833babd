# The one place that knows how to build each artefact of wisp.

GO       ?= go
WAT2WASM ?= wat2wasm

SHARED   ?= ../shared
MODELS   ?= models

.PHONY: all abi package demo serve site test test-go test-site bench-site bench-memory bench-go corpus kjv-model chat-model prune-table quant-table kernels kernels-check bench wisp models clean oracle oracle-fixtures chatref chat-fixtures

all: wisp kernels site

# The native command line.
wisp:
	$(GO) build -o bin/wisp ./tools/wisp

# The demo: build everything, make the default model, serve the page.
demo: serve

# Cross-origin isolated (COOP/COEP), so that the page runs its matrix
# products on every core (kernel threads need SharedArrayBuffer): safe for
# the page, which loads nothing of another origin but models by CORS fetch.
serve: wisp site models
	./bin/wisp serve --isolate --site site --models $(MODELS)

# The page's wasm: the engine as a reactor, and the kernel modules.
ENGINE_SRC := $(shell find engine simd wasm -name '*.go' -not -name '*_test.go') go.mod go.sum
site: site/wasm/wisp.wasm site/wasm/kernels.wasm site/wasm/forward.wasm site/wasm/relaxed.wasm site/wasm/threads.wasm site/wasm/wisp-shared.wasm site/wasm/kernels-shared.wasm site/wasm/relaxed-shared.wasm

# The threaded build: the engine and the kernels with their memory an
# imported shared one (wisp/wasm/abi.SharedMemory: env.memory, up to 4 GiB),
# which kernel workers on other threads are to share (issue 16).
site/wasm/%-shared.wasm: site/wasm/%.wasm
	$(GO) run ./tools/sharedmem -in $< -out $@

site/wasm/wisp.wasm: $(ENGINE_SRC)
	@mkdir -p site/wasm
	GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -ldflags="-s -w" -buildmode=c-shared -o $@ ./wasm/module

site/wasm/%.wasm: simd/%.wasm
	@mkdir -p site/wasm
	cp $< $@

# site/abi.js and abi.d.ts: the page's copy of the module's interface and
# of the generation options (wisp/wasm/abi, wisp/engine/option), committed;
# go test fails while they are stale.
abi:
	$(GO) generate ./wasm/abi

# The browser tests: headless Chromium (Debian's, installed when missing)
# driven by playwright-core from npm, and the same loader in Node.
test-site: wisp site models package site/node_modules
	cd site && node --test test/

# The npm package, in dist/npm (npm pack there makes the tarball): the page
# API, the element, the Worker, the Node entry, the types and the wasm files.
package: site
	$(GO) run ./tools/npmpkg -site site -out dist/npm

site/node_modules: site/package-lock.json
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	cd site && npm ci --no-audit --no-fund
	@touch $@

# Tokens per second in Chromium next to native.
bench-site: wisp site models site/node_modules
	cd site && node --test bench/chromium.bench.js

# Chromium's renderer memory while wisp.load loads a 270 MB model.
bench-memory: wisp site models site/node_modules
	cd site && node --test bench/memory.bench.js

# The models the page offers: wisp's own default model, committed in
# models/ (trained on the King James Bible by wisp's tools; models/README.md
# says how, and make kjv-model remakes it), and stories260K from ../shared
# converted to F16 when that file is there.
models: wisp $(MODELS)/default.gguf $(MODELS)/chat.gguf $(MODELS)/stories260K.gguf

ifneq ($(abspath $(MODELS)),$(abspath models))
$(MODELS)/default.gguf: models/default.gguf
	@mkdir -p $(MODELS)
	cp $< $@

$(MODELS)/chat.gguf: models/chat.gguf
	@mkdir -p $(MODELS)
	cp $< $@
endif

$(MODELS)/stories260K.gguf:
	@mkdir -p $(MODELS)
	@if [ -f $(SHARED)/models/stories260K.bin ]; then \
		./bin/wisp convert --type f16 --name "stories260K (Karpathy's TinyStories 260K, F16)" -o $@ -z $(SHARED)/models/tok512.bin $(SHARED)/models/stories260K.bin; \
	else \
		echo "$(SHARED)/models/stories260K.bin is missing: the page offers the default model only"; \
	fi

# wisp's default model, remade from scratch: train a teacher on the KJV,
# prune it, distil it back, F16 (about 1.7 hours on 2 cores). It writes
# build/kjv/; copy build/kjv/wisp-kjv-q4_0.gguf to models/default.gguf to use it.
kjv-model: wisp corpus
	bash tools/corpus/kjv-model.sh build/kjv

# wisp's chat model, remade: conversations from the KJV (the held-out books
# kept out), then the default model (F16) fine-tuned on them with ChatML's
# control tokens added, F16, Q4_0 (about half an hour on one core). It
# writes build/chat/; copy build/chat/chat-q4_0.gguf to models/chat.gguf.
chat-model: wisp corpus
	bash tools/corpus/kjv-chat.sh build/chat

# What fp16 and pruning cost on stories260K: size, parameters, KL and top-1
# agreement against the original on 50 held-out stories, greedy prefix.
prune-table:
	$(GO) run ./tools/prunetable -model $(SHARED)/models/stories260K.bin -tok $(SHARED)/models/tok512.bin > prune-table.md
	@cat prune-table.md

# What each tensor type costs in size and held-out perplexity, for the
# default model (on the KJV's held-out books) and stories260K (on stories
# it samples itself): quant-table.md and the picture quant.svg.
quant-table: wisp corpus
	@mkdir -p build/quant
	./bin/wisp convert --type f32 -o build/quant/stories260K.gguf -z $(SHARED)/models/tok512.bin $(SHARED)/models/stories260K.bin
	$(GO) run ./tools/quanttable -wisp bin/wisp -dir build/quant \
		-model "wisp KJV (the default model)=models/default-f16.gguf:corpus/kjv-eval.txt" \
		-model "stories260K=build/quant/stories260K.gguf:samples:50"

# The training text: the King James Bible from Debian's bible-kjv, with a
# few books held out for evaluation (tools/corpus/kjv.sh names them).
corpus: corpus/kjv-train.txt corpus/kjv-eval.txt

corpus/kjv-train.txt corpus/kjv-eval.txt &: tools/corpus/kjv.sh
	bash tools/corpus/kjv.sh corpus

# The SIMD128 kernel module and its forwarding module, from hand-written
# WebAssembly text. The .wasm files are committed so that go build needs no
# extra tool; kernels-check fails when they are stale.
# relaxed.wasm, the relaxed-SIMD matrix-vector passes that the page adds
# where the browser has them (simd/relaxed.wat), needs wat2wasm's
# --enable-relaxed-simd; the others are baseline SIMD128.
kernels: simd/kernels.wasm simd/forward.wasm simd/relaxed.wasm simd/threads.wasm

WATFLAGS_relaxed := --enable-relaxed-simd
WATFLAGS_threads := --enable-threads

simd/%.wasm: simd/%.wat
	$(WAT2WASM) $(WATFLAGS_$*) -o $@ $<

kernels-check:
	@for f in kernels forward relaxed threads; do \
		flags=; [ $$f = relaxed ] && flags="$(WATFLAGS_relaxed)"; [ $$f = threads ] && flags="$(WATFLAGS_threads)"; \
		$(WAT2WASM) $$flags -o /tmp/wisp-$$f.wasm simd/$$f.wat && \
		cmp -s /tmp/wisp-$$f.wasm simd/$$f.wasm || { echo "simd/$$f.wasm is stale: run make kernels"; exit 1; }; \
	done

# The README's test command: every Go test (native and in wazero), then
# the page in headless Chromium and the loader in Node.
test: test-go test-site

# The Go tests; the llama.cpp oracle (below) is built first, so that the
# test against llama.cpp itself runs rather than skips.
test-go: oracle
	$(GO) vet ./...
	$(GO) test ./...

# One benchmark of every runtime (native, wazero, Node, Chromium) and
# llama.cpp's wasm build (wllama) on the same files: bench/results.md and
# bench/results.json. The Go micro-benchmarks: make bench-go.
bench: wisp site models site/node_modules
	$(MAKE) oracle $(ORACLE_DIR)/llamabench
	$(GO) run ./tools/bench -out bench -shared $(SHARED) -oracle $(ORACLE_DIR)/oracle -llamacpp $(ORACLE_DIR)/llamabench

bench-go:
	$(GO) test -run '^$$' -bench . -benchtime 10x ./simd ./engine ./wasm/host

# The llama.cpp oracle (internal/oracle/README.md): the prebuilt native
# llama.cpp from npm, and a small C program linked against its shared
# libraries that quantizes, dequantizes and evaluates GGUF files.
ORACLE_DIR ?= build/oracle
ORACLE_NPM := @node-llama-cpp/linux-x64@3.22.1
ORACLE_LIB := $(ORACLE_DIR)/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
ORACLE_CC  ?= gcc

oracle: $(ORACLE_DIR)/oracle

$(ORACLE_LIB)/libllama.v0.5.0.so:
	@command -v $(ORACLE_CC) >/dev/null || { echo "installing Debian's gcc for the llama.cpp oracle"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null; }
	@mkdir -p $(ORACLE_DIR)
	npm install --prefix $(ORACLE_DIR) --no-audit --no-fund --no-save $(ORACLE_NPM)
	@touch $@

$(ORACLE_DIR)/oracle: internal/oracle/csrc/oracle.c internal/oracle/csrc/llama.h $(ORACLE_LIB)/libllama.v0.5.0.so
	$(ORACLE_CC) -std=c11 -O2 -Wall -Wextra -Iinternal/oracle/csrc -DORACLE_LIBDIR='"$(realpath $(ORACLE_LIB))"' -o $@ $< \
		-L$(ORACLE_LIB) -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so \
		-Wl,-rpath,$(realpath $(ORACLE_LIB))

# Native llama.cpp as a runner of make bench (tools/bench/csrc/llamabench.c),
# linked against the oracle's prebuilt libraries.
$(ORACLE_DIR)/llamabench: tools/bench/csrc/llamabench.c internal/oracle/csrc/llama.h $(ORACLE_LIB)/libllama.v0.5.0.so
	$(ORACLE_CC) -std=c11 -O2 -Wall -Wextra -Iinternal/oracle/csrc -DORACLE_LIBDIR='"$(realpath $(ORACLE_LIB))"' -o $@ $< \
		-L$(ORACLE_LIB) -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so \
		-Wl,-rpath,$(realpath $(ORACLE_LIB))

# The llama.cpp fixtures of the engine's oracle tests, remade from fixed
# seeds: testdata/llamacpp.
oracle-fixtures: oracle
	$(GO) run ./internal/oracle/fixtures -oracle $(ORACLE_DIR)/oracle -out testdata/llamacpp

clean:
	rm -rf bin site/wasm dist

# Reference renderings of the chat templates (testdata/chat) by
# @huggingface/jinja; engine/chat's tests compare with the committed
# fixtures and, when build/chatref exists, remake them (TestFixturesLive).
CHATREF_DIR ?= build/chatref
CHATREF_NPM := @huggingface/jinja@0.5.13

chatref: $(CHATREF_DIR)/node_modules/@huggingface/jinja/package.json

$(CHATREF_DIR)/node_modules/@huggingface/jinja/package.json:
	@mkdir -p $(CHATREF_DIR)
	npm install --prefix $(CHATREF_DIR) --no-audit --no-fund --no-save $(CHATREF_NPM)
	@touch $@

chat-fixtures: chatref
	node tools/chatref/render.mjs -jinja $(CHATREF_DIR) -out testdata/chat/fixtures
