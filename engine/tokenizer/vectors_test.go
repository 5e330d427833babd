package tokenizer

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"wisp/engine/gguf"
	"wisp/internal/sharedfiles"
)

// sharedFile returns the path of one of llama.cpp's vocabulary files or
// test vectors, in the shared folder beside the repository, skipping the
// test when there is no such folder.
func sharedFile(t testing.TB, name string) string {
	t.Helper()
	path, err := sharedfiles.Path("tokenizers/" + name)
	if err != nil {
		t.Skip(err)
	}
	return path
}

var loaded sync.Map // file name -> *Tokenizer

// loadShared returns the tokenizer of a shared vocabulary file, skipping the
// test when the file is not there.
func loadShared(t testing.TB, name string) *Tokenizer {
	t.Helper()
	if tok, ok := loaded.Load(name); ok {
		return tok.(*Tokenizer)
	}
	path := sharedFile(t, name)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	f, err := gguf.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	loaded.Store(name, tok)
	return tok
}

type vector struct {
	text string
	ids  []int
}

// readVectors reads name.inp and name.out the way llama.cpp's
// test-tokenizer-0 does.
func readVectors(t testing.TB, name string) []vector {
	t.Helper()
	inp, err := os.ReadFile(sharedFile(t, name+".inp"))
	if err != nil {
		t.Skip(err)
	}
	out, err := os.ReadFile(sharedFile(t, name+".out"))
	if err != nil {
		t.Skip(err)
	}
	texts := strings.Split(string(inp), "\n__ggml_vocab_test__\n")
	if texts[len(texts)-1] != "" {
		t.Fatalf("%s.inp does not end with the separator", name)
	}
	texts = texts[:len(texts)-1]
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%s: %d inputs, %d outputs", name, len(texts), len(lines))
	}
	vs := make([]vector, len(texts))
	for i, s := range texts {
		vs[i].text = s
		vs[i].ids = []int{}
		for _, f := range strings.Fields(lines[i]) {
			id, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s.out line %d: %v", name, i+1, err)
			}
			vs[i].ids = append(vs[i].ids, id)
		}
	}
	return vs
}

var sharedFiles = []string{"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"}

func TestSharedVectors(t *testing.T) {
	for _, name := range sharedFiles {
		t.Run(name, func(t *testing.T) {
			tok := loadShared(t, name)
			vs := readVectors(t, name)
			for i, v := range vs {
				got, err := tok.Encode(v.text)
				if err != nil {
					t.Errorf("case %d %q: %v", i, v.text, err)
					continue
				}
				if !equalInts(got, v.ids) {
					t.Errorf("case %d %q:\n got %v\nwant %v", i, v.text, got, v.ids)
				}
			}
			t.Logf("%d cases", len(vs))
		})
	}
}

// TestSharedRoundTrip checks Decode(Encode(s)) for every shared case: it is
// s itself for gpt2, and s after the one space Encode prepends for llama.
func TestSharedRoundTrip(t *testing.T) {
	for _, name := range sharedFiles {
		t.Run(name, func(t *testing.T) {
			tok := loadShared(t, name)
			for i, v := range readVectors(t, name) {
				want := v.text
				if tok.Vocab().AddSpacePrefix && want != "" {
					want = " " + want
				}
				if got := tok.Decode(v.ids); got != want {
					t.Errorf("case %d: Decode = %q, want %q", i, got, want)
				}
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// benchText returns about n bytes made of the shared test strings.
func benchText(b *testing.B, n int) string {
	vs := readVectors(b, sharedFiles[0])
	var s strings.Builder
	for s.Len() < n {
		for _, v := range vs {
			s.WriteString(v.text)
			s.WriteByte('\n')
		}
	}
	return s.String()[:n]
}

func BenchmarkEncode10KB(b *testing.B) {
	for _, name := range sharedFiles {
		b.Run(name, func(b *testing.B) {
			tok := loadShared(b, name)
			text := strings.ToValidUTF8(benchText(b, 10<<10), "")
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := tok.Encode(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSharedDecoderEmoji streams an emoji that the llama vocabulary spells
// with four byte tokens.
func TestSharedDecoderEmoji(t *testing.T) {
	tok := loadShared(t, sharedFiles[0])
	ids, err := tok.Encode("🦙")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{29871, 243, 162, 169, 156}; !equalInts(ids, want) {
		t.Fatalf("Encode = %v, want %v", ids, want)
	}
	d := tok.NewDecoder()
	want := []string{" ", "", "", "", "🦙"}
	for i, id := range ids {
		if got := d.Next(id); got != want[i] {
			t.Errorf("Next(%d) = %q, want %q", id, got, want[i])
		}
	}
	if got := d.Flush(); got != "" {
		t.Errorf("Flush = %q", got)
	}
}
