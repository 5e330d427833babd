# The one place that knows how to build each artefact of wisp.

GO       ?= go
WAT2WASM ?= wat2wasm

.PHONY: all test kernels kernels-check bench wisp clean

all: wisp kernels

# The native command line.
wisp:
	$(GO) build -o bin/wisp ./tools/wisp

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
