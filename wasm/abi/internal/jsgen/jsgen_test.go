package jsgen

import (
	"bytes"
	"os"
	"testing"
)

// TestFresh checks that the committed site/abi.js and site/abi.d.ts are
// what JS and DTS write now.
func TestFresh(t *testing.T) {
	dts, err := DTS()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"abi.js": JS(), "abi.d.ts": dts} {
		got, err := os.ReadFile("../../../../site/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("site/%s is stale: run make abi (go generate ./wasm/abi)", name)
		}
	}
}
