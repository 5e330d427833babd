package engine_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"wisp/internal/oracle"
)

// TestOracleLive runs llama.cpp itself (make oracle builds it; the test is
// skipped without it, the only oracle test that is): it remakes the
// committed fixtures and demands the same files, so that they cannot drift
// from what llama.cpp does, and it quantizes fresh random models (seed
// $WISP_ORACLE_SEED, or one from the clock, logged) to every type and
// compares wisp with llama.cpp on them value by value, with the controls
// (F32 and F16) besides.
func TestOracleLive(t *testing.T) {
	o, err := oracle.Locate()
	if err != nil {
		t.Skipf("llama.cpp oracle not installed, so only the committed fixtures are checked (make oracle installs it): %v", err)
	}
	t.Run("fixtures", func(t *testing.T) {
		dir, want := readOracleFixtures(t)
		tmp := t.TempDir()
		got, err := oracle.Generate(o, tmp, oracle.FixtureSeed, oracle.Specs)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got.Fixtures {
			g, w := &got.Fixtures[i], &want.Fixtures[i]
			gf, err := got.ReadFiles(tmp, g)
			if err != nil {
				t.Fatal(err)
			}
			wf, err := want.ReadFiles(dir, w)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gf.Model, wf.Model) {
				t.Errorf("%s: llama.cpp now quantizes to a different file than the committed one: run make oracle-fixtures and find out why", g.Name)
			}
			for j := range g.Tensors {
				if j >= len(w.Tensors) || g.Tensors[j].SHA256 != w.Tensors[j].SHA256 {
					t.Errorf("%s: llama.cpp now dequantizes tensor %s differently", g.Name, g.Tensors[j].Name)
				}
			}
			// The logits come from the CPU backend llama.cpp picks for
			// this machine (zen4, haswell, ...), whose sums may be
			// ordered otherwise than those of the machine that made the
			// fixtures; through the 8-bit roundings that can move them
			// as far as wisp is from llama.cpp.
			d, err := oracle.CompareLogits(gf.Logits, wf.Logits)
			if err != nil {
				t.Fatal(err)
			}
			if d.Rel > 0 {
				t.Logf("%s: llama.cpp's logits here differ from the committed ones by %.3g of the range", g.Name, d.Rel)
			}
			if d.Rel > oracleTolerance[g.Name] {
				t.Errorf("%s: llama.cpp's logits here are %.3g of the range from the committed ones, more than %.3g", g.Name, d.Rel, oracleTolerance[g.Name])
			}
		}
	})
	t.Run("fresh", func(t *testing.T) {
		seed := uint64(time.Now().UnixNano())
		if s := os.Getenv("WISP_ORACLE_SEED"); s != "" {
			if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
				t.Fatalf("WISP_ORACLE_SEED: %v", err)
			}
		}
		t.Logf("random models of seed %d (WISP_ORACLE_SEED=%d repeats this run)", seed, seed)
		tmp := t.TempDir()
		m, err := oracle.Generate(o, tmp, seed, append(append([]oracle.Spec(nil), oracle.Specs...), oracle.Controls...))
		if err != nil {
			t.Fatal(err)
		}
		for i := range m.Fixtures {
			f := &m.Fixtures[i]
			t.Run(f.Name, func(t *testing.T) {
				path := filepath.Join(tmp, f.Name+".gguf")
				files, err := m.ReadFiles(tmp, f)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := o.Dequant(path)
				if err != nil {
					t.Fatal(err)
				}
				counts, bad, err := oracle.CompareWidened(files.Model, ref)
				if err != nil {
					t.Fatal(err)
				}
				for _, b := range bad {
					t.Errorf("wisp's widening differs from llama.cpp's: %v", b)
				}
				t.Logf("%s", describeCounts(counts))
				checkOracleLogits(t, f.Name, files.Model, m.Tokens, files.Logits, false)
			})
		}
	})
}
