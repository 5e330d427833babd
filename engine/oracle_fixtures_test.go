package engine_test

import (
	"fmt"
	"sort"
	"testing"

	"wisp/internal/oracle"
)

// The tests in this file check wisp against llama.cpp through the
// committed fixtures of testdata/llamacpp (internal/oracle/README.md): models
// that llama.cpp quantized, with llama.cpp's own dequantization of them
// (as digests) and its logits. They need no llama.cpp.

// oracleTolerance is, for each fixture, how far wisp's logits may be from
// llama.cpp's: the largest |wisp - llama.cpp| at a position over the range
// (max - min) of llama.cpp's logits there.
//
// Outside the matrix products the two compute the same arithmetic (the
// oracle runs llama.cpp with an F32 key/value cache and without flash
// attention, and on F32 weights the two agree to some 3e-7 of the range:
// the controls of TestOracleLive). What differs is how each rounds a
// product's input: wisp to 8-bit blocks of 32 with a float32 scale
// (simd/quant.go), llama.cpp to Q8_0 blocks of 32 with a float16 scale,
// or Q8_K blocks of 256 for the k-quants, and to bfloat16 for BF16
// weights. Rounding to 8 bits is discontinuous: an activation that one
// engine rounds up and the other down moves everything after it, and on
// these random models a change of 1e-5 in the norm weights alone moves the
// logits by about 1 % of their range. So the two engines' logits differ
// by about as much as each differs from the unquantized products: over
// the fixtures of twelve seeds (internal/oracle/README.md) at most 1.6 % of
// the range for the formats of blocks of 32, 2.4 % for the k-quants (whose
// inputs llama.cpp rounds in blocks of 256) and 0.5 % for BF16 (no
// 8-bit rounding, no discontinuity). The bounds are a little above those.
var oracleTolerance = map[string]float64{
	"Q8_0":        0.02,
	"Q4_0":        0.02,
	"Q4_1":        0.02,
	"Q5_0":        0.02,
	"Q5_1":        0.02,
	"BF16":        0.007,
	"Q4_K_M":      0.03,
	"Q5_K_M":      0.03,
	"Q6_K":        0.03,
	"Q4_K_S-pure": 0.03,
	"Q5_K_S-pure": 0.03,
	// The live test's controls (not committed).
	"F32":   2e-6,
	"F16":   2e-3,
	"F32-k": 2e-6,
}

// readOracleFixtures reads the committed fixtures; it fails the test
// rather than skipping when they are missing.
func readOracleFixtures(t *testing.T) (string, *oracle.Manifest) {
	t.Helper()
	dir, err := oracle.FixtureDir()
	if err != nil {
		t.Fatal(err)
	}
	m, err := oracle.ReadManifest(dir)
	if err != nil {
		t.Fatalf("the llama.cpp fixtures (make oracle-fixtures writes them): %v", err)
	}
	if len(m.Fixtures) != len(oracle.Specs) {
		t.Fatalf("%s holds %d fixtures, oracle.Specs names %d: run make oracle-fixtures", dir, len(m.Fixtures), len(oracle.Specs))
	}
	if m.Seed != oracle.FixtureSeed {
		t.Fatalf("%s was made from seed %d, oracle.FixtureSeed is %d: run make oracle-fixtures", dir, m.Seed, oracle.FixtureSeed)
	}
	for i, f := range m.Fixtures {
		if f.Spec != oracle.Specs[i] {
			t.Fatalf("fixture %d is %+v, oracle.Specs says %+v: run make oracle-fixtures", i, f.Spec, oracle.Specs[i])
		}
	}
	return dir, m
}

// TestOracleDequantize checks that wisp widens every tensor of every
// fixture to the very float32 bits that ggml's dequantize_row_* (and its
// F16/BF16 conversions) gave.
func TestOracleDequantize(t *testing.T) {
	dir, m := readOracleFixtures(t)
	total := map[string]int{}
	for i := range m.Fixtures {
		f := &m.Fixtures[i]
		t.Run(f.Name, func(t *testing.T) {
			files, err := m.ReadFiles(dir, f)
			if err != nil {
				t.Fatal(err)
			}
			counts, bad, err := oracle.CheckDigests(files.Model, f, files.RowCRC)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bad {
				t.Errorf("wisp's widening differs from llama.cpp's: %v", b)
			}
			t.Logf("%s", describeCounts(counts))
			for k, v := range counts {
				total[k] += v
			}
		})
	}
	// Every format wisp reads must have been met.
	for _, typ := range []string{"f32", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_K", "q5_K", "q6_K"} {
		if total[typ] == 0 {
			t.Errorf("no fixture holds a tensor of type %s", typ)
		}
	}
}

func describeCounts(c map[string]int) string {
	var keys []string
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := "values compared bit for bit:"
	for _, k := range keys {
		s += fmt.Sprintf(" %s %d", k, c[k])
	}
	return s
}

// TestOracleLogits runs every fixture through wisp's engine and compares
// its logits after each position with llama.cpp's: within the fixture's
// tolerance, and the same greedy token at every position.
func TestOracleLogits(t *testing.T) {
	dir, m := readOracleFixtures(t)
	for i := range m.Fixtures {
		f := &m.Fixtures[i]
		t.Run(f.Name, func(t *testing.T) {
			files, err := m.ReadFiles(dir, f)
			if err != nil {
				t.Fatal(err)
			}
			checkOracleLogits(t, f.Name, files.Model, m.Tokens, files.Logits, true)
		})
	}
}

// checkOracleLogits compares wisp's logits on the model with llama.cpp's.
// With strictArgmax wisp must pick llama.cpp's greedy token at every
// position; without it (a fresh random model) a different pick passes
// where llama.cpp prefers its own token to wisp's by no more than the
// tolerance, a near tie that the two roundings may break either way.
func checkOracleLogits(t *testing.T, name string, model []byte, tokens []int, want [][]float32, strictArgmax bool) {
	t.Helper()
	tol, ok := oracleTolerance[name]
	if !ok {
		t.Fatalf("no tolerance for %s", name)
	}
	got, err := oracle.WispLogits(model, tokens)
	if err != nil {
		t.Fatal(err)
	}
	d, err := oracle.CompareLogits(got, want)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: max |wisp - llama.cpp| = %.3g of the logits' range (%.3g absolute, ranges >= %.3g), tolerance %.3g; greedy tokens differ at %d of %d positions",
		name, d.Rel, d.MaxAbs, d.Range, tol, len(d.Argmax), len(tokens))
	if d.Rel > tol {
		t.Errorf("%s: wisp's logits are %.3g of the range from llama.cpp's, more than %.3g", name, d.Rel, tol)
	}
	for _, a := range d.Argmax {
		if strictArgmax || a.Margin > tol {
			t.Errorf("%s: position %d: wisp picks token %d, llama.cpp %d, which llama.cpp prefers by %.3g of the range", name, a.Pos, a.Wisp, a.Llama, a.Margin)
		} else {
			t.Logf("%s: position %d: a near tie: wisp picks token %d, llama.cpp %d, which llama.cpp prefers by only %.3g of the range", name, a.Pos, a.Wisp, a.Llama, a.Margin)
		}
	}
}
