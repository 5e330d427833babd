package abi_test

import (
	"bytes"
	"os"
	"testing"

	"wisp/wasm/abi"
)

// TestJavaScriptFresh checks that the committed site/abi.js is what
// JavaScript writes now.
func TestJavaScriptFresh(t *testing.T) {
	got, err := os.ReadFile("../../site/abi.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, abi.JavaScript()) {
		t.Error("site/abi.js is stale: run make abi (go generate ./wasm/abi)")
	}
}
