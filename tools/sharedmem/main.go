// Command sharedmem rewrites a WebAssembly module's memory, defined or
// imported, into an import of the shared memory abi.SharedMemory
// describes (wisp/wasm/sharedmem), as make site does for the engine and
// kernel modules: the kernel workers of a threaded page share it.
//
//	go run ./tools/sharedmem -in site/wasm/wisp.wasm -out site/wasm/wisp-shared.wasm
package main

import (
	"flag"
	"fmt"
	"os"

	"wisp/wasm/abi"
	"wisp/wasm/sharedmem"
)

func main() {
	in := flag.String("in", "", "the module to rewrite")
	out := flag.String("out", "", "where to write the rewritten module")
	flag.Usage = func() {
		m := abi.SharedMemory
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./tools/sharedmem -in MODULE.wasm -out SHARED.wasm\n\n"+
			"Rewrites the module's memory into an import of the shared memory %s.%s, of %d to %d pages (wisp/wasm/abi.SharedMemory).\n\n",
			m.Module, m.Name, m.MinPages, m.MaxPages)
		flag.PrintDefaults()
	}
	flag.Parse()
	if *in == "" || *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "sharedmem:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	m := abi.SharedMemory
	shared, err := sharedmem.Share(b, sharedmem.Import{Module: m.Module, Name: m.Name}, m.MinPages, m.MaxPages)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	return os.WriteFile(out, shared, 0o644)
}
