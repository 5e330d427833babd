package gguf

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

// defaultModel is wisp's committed default model, a small real file (its
// header holds a vocabulary of 2048 tokens).
const defaultModel = "../../models/default.gguf"

// checkPrefixes parses every prefix of full up to the end of its header
// with ParseHeader and Parse: a prefix that ends inside the header must be
// refused as short, needing more bytes than it has and no more than the
// header takes, with Parse's very error; every longer prefix must give the
// whole file's header. Following the needs from zero must reach the header
// without passing its end.
func checkPrefixes(t *testing.T, full []byte) {
	t.Helper()
	want, err := ParseHeader(full)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(full); err != nil {
		t.Fatal(err)
	}
	end := -1 // the first prefix that holds the whole header
	for n := 0; n <= int(want.DataOffset) && n <= len(full); n++ {
		p := bytes.Clone(full[:n]) // exactly n bytes: reading past them would be caught
		h, err := ParseHeader(p)
		if err == nil {
			if end < 0 {
				end = n
			}
			if !reflect.DeepEqual(h, want) {
				t.Fatalf("prefix of %d bytes: a header unlike the whole file's", n)
			}
			continue
		}
		if end >= 0 {
			t.Fatalf("prefix of %d bytes fails (%v) after the prefix of %d parsed", n, err, end)
		}
		need, short := HeaderNeed(err)
		if !short || !errors.Is(err, ErrShortHeader) {
			t.Fatalf("prefix of %d bytes: %v, not a short header", n, err)
		}
		if need <= uint64(n) || need > want.DataOffset {
			t.Fatalf("prefix of %d bytes needs %d (data section at %d)", n, need, want.DataOffset)
		}
		if !strings.HasPrefix(err.Error(), "gguf: ") || (n >= 4 && !errors.Is(err, io.ErrUnexpectedEOF)) {
			t.Fatalf("prefix of %d bytes: error %q", n, err)
		}
		if _, perr := Parse(p); perr == nil || perr.Error() != err.Error() {
			t.Fatalf("prefix of %d bytes: Parse says %v, ParseHeader %v", n, perr, err)
		}
	}
	if end < 0 {
		t.Fatal("no prefix up to the data section holds the header")
	}
	steps := 0
	for n := uint64(0); ; steps++ {
		_, err := ParseHeader(full[:n])
		if err == nil {
			break
		}
		need, _ := HeaderNeed(err)
		if need > uint64(len(full)) {
			t.Fatalf("after %d steps, a prefix of %d bytes needs %d, more than the file", steps, n, need)
		}
		n = need
	}
	t.Logf("header of %d bytes (data at %d), reached in %d steps of the needs", end, want.DataOffset, steps)
}

func TestParseHeaderPrefixes(t *testing.T) {
	t.Parallel()
	t.Run("rich", func(t *testing.T) { checkPrefixes(t, richFile(t)) })
	t.Run("default-model", func(t *testing.T) {
		t.Parallel() // some 10 s: every prefix of a 50 KB header, twice
		full, err := os.ReadFile(defaultModel)
		if err != nil {
			t.Skip(err)
		}
		checkPrefixes(t, full)
	})
}

// TestParseHeaderData checks what ParseHeader leaves to the data section:
// no Data, a size that CheckSize accepts from DataEnd on, with Parse's
// error below it.
func TestParseHeaderData(t *testing.T) {
	full := richFile(t)
	whole, err := ParseHeader(full)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(full[:whole.DataOffset])
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range h.Tensors {
		if tt.Data != nil {
			t.Fatalf("tensor %q has Data", tt.Name)
		}
	}
	f, err := Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	last := f.Tensors[len(f.Tensors)-1]
	if got, want := h.DataEnd(), f.DataOffset+last.Offset+uint64(len(last.Data)); got != want {
		t.Errorf("DataEnd() = %d, want %d", got, want)
	}
	if err := h.CheckSize(h.DataEnd()); err != nil {
		t.Errorf("CheckSize(DataEnd()): %v", err)
	}
	cut := h.DataEnd() - 1
	err = h.CheckSize(cut)
	_, perr := Parse(full[:cut])
	if err == nil || perr == nil || err.Error() != perr.Error() || !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrShortHeader) {
		t.Errorf("CheckSize(%d) = %v, Parse of as many bytes %v", cut, err, perr)
	}
	// A header without tensors needs no more than itself.
	empty := build(t, NewBuilder())
	if e, err := ParseHeader(empty); err != nil || e.DataEnd() != 0 {
		t.Errorf("empty file: %v, DataEnd %d", err, e.DataEnd())
	}
	// Offsets that overflow saturate DataEnd, and CheckSize refuses them.
	o := header(3, 1, 0).tensor("t", F32, math.MaxUint64-31, 1).zeros(8)
	if e, err := ParseHeader(o); err != nil || e.DataEnd() != math.MaxUint64 || e.CheckSize(math.MaxUint64) == nil {
		t.Errorf("overflowing offset: %v", err)
	}
}

// TestParseHeaderNeeds checks the bytes a short header asks for, for
// counts and lengths that claim more than is there.
func TestParseHeaderNeeds(t *testing.T) {
	tests := []struct {
		name  string
		input raw
		need  uint64
	}{
		{"nothing", raw{}, 4},
		{"half the magic", raw("GG"), 4},
		{"magic", raw("GGUF"), 8},
		{"version", raw("GGUF").u32(3), 16},
		{"kv count", header(3, 0, 2), 24 + 2*minKVSize},
		{"tensor count", header(3, 3, 0), 24 + 3*minTensorInfoSize},
		{"huge count", header(3, 0, 1<<62), math.MaxUint64},
		{"key", header(3, 0, 1).u64(1000).zeros(5), 32 + 1000},
		{"array", header(3, 0, 1).kv("k", TypeArray).arr(TypeUint32, 1000).zeros(2), 49 + 4000},
		{"string array", header(3, 0, 1).kv("k", TypeArray).arr(TypeString, 100).zeros(2), 49 + 800},
		{"string in an array", header(3, 0, 1).kv("k", TypeArray).arr(TypeString, 1).u64(100), 57 + 100},
		{"tensors after kvs", header(3, 2, 1).kv("k", TypeUint8).u8(1).zeros(60), 38 + 2*minTensorInfoSize},
		{"tensor dims", header(3, 1, 0).str("t").u32(4).zeros(minTensorInfoSize), 24 + 9 + 4 + 4*8 + 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHeader(tc.input)
			need, ok := HeaderNeed(err)
			if !ok || need != tc.need {
				t.Errorf("ParseHeader = %v, need %d (%v), want %d", err, need, ok, tc.need)
			}
		})
	}
	// Not short: errors the bytes already show.
	for _, in := range []raw{raw("GGML"), raw("G!"), header(1, 0, 0), header(3, 0, 1).kv("k", 13).zeros(4)} {
		if _, err := ParseHeader(in); err == nil || errors.Is(err, ErrShortHeader) {
			t.Errorf("ParseHeader(%q) = %v, want an error that is not a short header", in, err)
		}
	}
}

// FuzzParseHeader checks ParseHeader against the whole input for a prefix
// of it: a header read from a prefix is the whole input's, an error other
// than a short header is the whole input's error, and a short header needs
// more than the prefix and no more than the whole input's header does.
// Parse of the whole input is ParseHeader and CheckSize.
func FuzzParseHeader(f *testing.F) {
	seeds := [][]byte{richFile(f)}
	b := NewBuilder()
	b.Set(AlignmentKey, uint32(8))
	b.Set("tokenizer.ggml.tokens", []string{"<s>", "</s>", "a"})
	if err := b.AddTensor("t", F16, []uint64{3}, F16Bytes([]uint16{1, 2, 3})); err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, build(f, b), build(f, NewBuilder()))
	seeds = append(seeds, header(3, 1, 0).tensor("t", F32, math.MaxUint64-31, 1).zeros(8))
	for _, s := range seeds {
		for _, cut := range []uint32{0, 3, 20, uint32(len(s) / 2), uint32(len(s))} {
			f.Add(s, cut)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint32) {
		whole, wholeErr := ParseHeader(in)
		file, perr := Parse(in)
		switch {
		case wholeErr != nil:
			if perr == nil || perr.Error() != wholeErr.Error() {
				t.Fatalf("Parse = %v, ParseHeader = %v", perr, wholeErr)
			}
		case whole.CheckSize(uint64(len(in))) != nil:
			if perr == nil || perr.Error() != whole.CheckSize(uint64(len(in))).Error() {
				t.Fatalf("Parse = %v, CheckSize = %v", perr, whole.CheckSize(uint64(len(in))))
			}
			if whole.DataEnd() <= uint64(len(in)) {
				t.Fatalf("DataEnd %d <= %d bytes, which CheckSize refuses", whole.DataEnd(), len(in))
			}
		default:
			if perr != nil {
				t.Fatalf("Parse = %v after ParseHeader and CheckSize accepted", perr)
			}
			if whole.DataEnd() > uint64(len(in)) {
				t.Fatalf("DataEnd %d > %d bytes, which CheckSize accepts", whole.DataEnd(), len(in))
			}
			checkFile(t, file, in)
		}
		if wholeErr != nil && !strings.HasPrefix(wholeErr.Error(), "gguf: ") {
			t.Fatalf("error without the gguf prefix: %v", wholeErr)
		}
		if need, short := HeaderNeed(wholeErr); short && need <= uint64(len(in)) {
			t.Fatalf("the whole input of %d bytes is short and needs %d", len(in), need)
		}

		n := int(cut % uint32(len(in)+1))
		part, err := ParseHeader(bytes.Clone(in[:n]))
		need, short := HeaderNeed(err)
		switch {
		case err == nil:
			if wholeErr != nil || !reflect.DeepEqual(part, whole) {
				t.Fatalf("prefix of %d bytes parsed, the whole input: %v", n, wholeErr)
			}
		case !short && n < len(magic):
			// Not the magic: the error quotes the bytes there are.
			if wholeErr == nil || !strings.HasPrefix(wholeErr.Error(), "gguf: not a GGUF file") {
				t.Fatalf("prefix of %d bytes: %v; the whole input: %v", n, err, wholeErr)
			}
		case !short:
			if wholeErr == nil || wholeErr.Error() != err.Error() {
				t.Fatalf("prefix of %d bytes: %v; the whole input: %v", n, err, wholeErr)
			}
		default:
			if need <= uint64(n) {
				t.Fatalf("prefix of %d bytes needs only %d", n, need)
			}
			// Needs are lower bounds: the whole input holds a header
			// only if it is at least that long.
			if wholeErr == nil && need > uint64(len(in)) {
				t.Fatalf("prefix of %d bytes needs %d, but the whole input's %d bytes hold the header", n, need, len(in))
			}
			if wn, wshort := HeaderNeed(wholeErr); wshort && wn < need {
				t.Fatalf("prefix of %d bytes needs %d, the whole input only %d", n, need, wn)
			}
		}
	})
}
