# The one place that knows how to build each artefact of wisp.

GO       ?= go
WAT2WASM ?= wat2wasm

SHARED   ?= ../shared
MODELS   ?= models

.PHONY: all demo test kernels kernels-check bench wisp models clean

all: wisp kernels

# The native command line.
wisp:
	$(GO) build -o bin/wisp ./tools/wisp

# The demo: build everything, make the default model, generate with it.
# (The web page arrives with the site; until then the demo runs in the
# terminal.)
demo: wisp models
	./bin/wisp run -m $(MODELS)/default.gguf -t 0.8 --seed 42 -p "Once upon a time" -n 200

# The default model: stories260K from ../shared converted to F16.
models: wisp
	@mkdir -p $(MODELS)
	@if [ -f $(SHARED)/models/stories260K.bin ]; then \
		./bin/wisp convert --type f16 -o $(MODELS)/default.gguf -z $(SHARED)/models/tok512.bin $(SHARED)/models/stories260K.bin; \
	else \
		echo "$(SHARED)/models/stories260K.bin is missing: no default model"; exit 1; \
	fi

# The SIMD128 kernel module and its forwarding module, from hand-written
# WebAssembly text. The .wasm files are committed so that go build needs no
# extra tool; kernels-check fails when they are stale.
kernels: simd/kernels.wasm simd/forward.wasm

simd/%.wasm: simd/%.wat
	$(WAT2WASM) --enable-simd -o $@ $<

kernels-check:
	@for f in kernels forward; do \
		$(WAT2WASM) --enable-simd -o /tmp/wisp-$$f.wasm simd/$$f.wat && \
		cmp -s /tmp/wisp-$$f.wasm simd/$$f.wasm || { echo "simd/$$f.wasm is stale: run make kernels"; exit 1; }; \
	done

# The README's test command.
test:
	$(GO) vet ./...
	$(GO) test ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2x ./...

clean:
	rm -rf bin
