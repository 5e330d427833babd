// Command writejs writes site/abi.js and site/abi.d.ts (see
// wisp/wasm/abi/internal/jsgen) into the folder named by its argument: go
// generate ./wasm/abi runs it.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"wisp/wasm/abi/internal/jsgen"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: writejs SITE_DIR")
		os.Exit(2)
	}
	dts, err := jsgen.DTS()
	if err == nil {
		err = os.WriteFile(filepath.Join(os.Args[1], "abi.js"), jsgen.JS(), 0o644)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(os.Args[1], "abi.d.ts"), dts, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "writejs:", err)
		os.Exit(1)
	}
}
