// Command writejs writes site/abi.js (wisp/wasm/abi.JavaScript) to the file
// named by its argument: go generate ./wasm/abi runs it.
package main

import (
	"fmt"
	"os"

	"wisp/wasm/abi"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: writejs OUT.js")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], abi.JavaScript(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
