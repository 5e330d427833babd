package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestReportWrite checks that the committed bench/results.json, read and
// written again, gives the committed results.json and results.md to the
// byte, on stdout and in the folder: the report writes itself as the run
// that made them wrote it.
func TestReportWrite(t *testing.T) {
	wantJSON, err := os.ReadFile("../../bench/results.json")
	if err != nil {
		t.Skip(err)
	}
	wantMD := read(t, "../../bench/results.md")
	var rep report
	if err := json.Unmarshal(wantJSON, &rep); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var stdout bytes.Buffer
	if err := rep.write(&stdout, dir); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want []byte
	}{
		{"stdout", stdout.Bytes(), wantMD},
		{"results.md", read(t, filepath.Join(dir, "results.md")), wantMD},
		{"results.json", read(t, filepath.Join(dir, "results.json")), wantJSON},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: %d bytes differ from the committed %d", c.name, len(c.got), len(c.want))
		}
	}
	stdout.Reset()
	if err := rep.write(&stdout, ""); err != nil || !bytes.Equal(stdout.Bytes(), wantMD) {
		t.Errorf("no folder: %v, or stdout is not results.md", err)
	}
}

// read returns the file's bytes.
func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
