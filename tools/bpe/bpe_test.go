package bpe

import (
	"errors"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"wisp/engine/tokenizer"
)

func TestOptionErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  Options
		want string
	}{
		{"vocab too small", Options{VocabSize: Fixed - 1}, "vocabulary size 258"},
		{"vocab zero", Options{}, "vocabulary size 0"},
		{"vocab too large", Options{VocabSize: MaxVocabSize + 1}, "outside"},
		{"negative piece length", Options{VocabSize: 300, MaxPieceLen: -1}, "maximum piece length -1"},
		{"piece length too long", Options{VocabSize: 300, MaxPieceLen: MaxUnitLen + 1}, "maximum piece length 257"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := Train(strings.NewReader("some text"), c.opt)
			if err == nil || !strings.Contains(err.Error(), c.want) || v != nil {
				t.Fatalf("got %v, %v; want nil and an error containing %q", v, err, c.want)
			}
		})
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, strings.Repeat("a", min(r.n, len(p))))
	r.n -= n
	return n, nil
}

func TestInputErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		r    io.Reader
		want string
		is   error
	}{
		{"invalid UTF-8", strings.NewReader("good \xff bad"), "invalid UTF-8 at byte offset 5", nil},
		{"truncated UTF-8", strings.NewReader("caf\xc3"), "invalid UTF-8 at byte offset 3", nil},
		{"reader fails", &failingReader{n: 10}, "reading text at byte offset 10", io.ErrUnexpectedEOF},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := Train(c.r, Options{VocabSize: 300})
			if err == nil || !strings.Contains(err.Error(), c.want) || v != nil {
				t.Fatalf("got %v, %v; want nil and an error containing %q", v, err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v does not wrap %v", err, c.is)
			}
		})
	}
}

func TestUnits(t *testing.T) {
	for _, c := range []struct {
		text string
		want map[string]int64
	}{
		{"", map[string]int64{}},
		{" ", map[string]int64{"▁": 2}},
		{"the earth.", map[string]int64{"▁the": 1, "▁earth": 1, ".": 1}},
		{"the the the", map[string]int64{"▁the": 3}},
		{"a  b", map[string]int64{"▁a": 1, "▁": 1, "▁b": 1}},
		{" a", map[string]int64{"▁": 1, "▁a": 1}},
		{"a\nAnd b\n", map[string]int64{"▁a": 1, "And": 1, "▁b": 1}},
		{"a\tb\r\n", map[string]int64{"▁a": 1, "b": 1}},
		{"LORD's house", map[string]int64{"▁LORD": 1, "'": 1, "s": 1, "▁house": 1}},
		{"Jn3:16 (x)", map[string]int64{"▁Jn": 1, "3": 1, ":": 1, "16": 1, "▁(": 1, "x": 1, ")": 1}},
		{"a▁b", map[string]int64{"▁a": 1, "▁b": 1}},
		{"a\u00a0b", map[string]int64{"▁a": 1, "\u00a0": 1, "b": 1}},
		{"naïve café", map[string]int64{"▁naïve": 1, "▁café": 1}},
		{"e\u0301!", map[string]int64{"▁e\u0301": 1, "!": 1}},
		{"x😀y", map[string]int64{"▁x": 1, "😀": 1, "y": 1}},
		{strings.Repeat("a", MaxUnitLen+3), map[string]int64{"▁" + strings.Repeat("a", MaxUnitLen-1): 1, strings.Repeat("a", 4): 1}},
	} {
		got, err := countUnits(strings.NewReader(c.text))
		if err != nil {
			t.Errorf("%q: %v", c.text, err)
			continue
		}
		if !maps.Equal(got, c.want) {
			t.Errorf("%q: units %v, want %v", c.text, got, c.want)
		}
	}
}

func TestVocabLayout(t *testing.T) {
	text := corpus(20 << 10)
	const size = 400
	v, _ := train(t, text, Options{VocabSize: size})
	if len(v.Tokens) != size || len(v.Scores) != size || len(v.Types) != size {
		t.Fatalf("%d tokens, %d scores, %d types; want %d each", len(v.Tokens), len(v.Scores), len(v.Types), size)
	}
	if v.Model != "llama" || v.BOS != 1 || v.EOS != 2 || v.UNK != 0 || v.PAD != -1 ||
		!v.AddBOS || v.AddEOS || !v.AddSpacePrefix || v.Merges != nil || v.Pre != "" {
		t.Errorf("header fields %+v", *v)
	}
	want := []struct {
		id   int
		text string
		typ  int32
	}{
		{UNK, "<unk>", tokenizer.TypeUnknown},
		{BOS, "<s>", tokenizer.TypeControl},
		{EOS, "</s>", tokenizer.TypeControl},
		{FirstByte, "<0x00>", tokenizer.TypeByte},
		{FirstByte + 0x0A, "<0x0A>", tokenizer.TypeByte},
		{FirstByte + 0xFF, "<0xFF>", tokenizer.TypeByte},
	}
	for _, w := range want {
		if v.Tokens[w.id] != w.text || v.Types[w.id] != w.typ || v.Scores[w.id] != 0 {
			t.Errorf("token %d is %q type %d score %g; want %q type %d score 0",
				w.id, v.Tokens[w.id], v.Types[w.id], v.Scores[w.id], w.text, w.typ)
		}
	}

	// Learned tokens: merged pieces then characters, scores strictly
	// falling from 0, every character of the text present once.
	chars := map[string]bool{}
	for _, c := range strings.ReplaceAll(strings.ReplaceAll(text, " ", "▁"), "\n", "") + "▁" {
		chars[string(c)] = true
	}
	firstChar := -1
	for id := Fixed; id < size; id++ {
		s := v.Tokens[id]
		if v.Types[id] != tokenizer.TypeNormal {
			t.Errorf("token %d %q has type %d", id, s, v.Types[id])
		}
		if want := -float32(id - Fixed); v.Scores[id] != want {
			t.Errorf("token %d %q scores %g, want %g", id, s, v.Scores[id], want)
		}
		n := utf8.RuneCountInString(s)
		if n == 1 && firstChar < 0 {
			firstChar = id
		}
		if firstChar >= 0 && n != 1 {
			t.Errorf("token %d %q: a piece after the characters", id, s)
		}
		if n == 1 {
			if !chars[s] {
				t.Errorf("character token %q is not in the text", s)
			}
			delete(chars, s)
		}
	}
	if len(chars) != 0 {
		t.Errorf("characters of the text with no token: %q", slices.Sorted(maps.Keys(chars)))
	}
}

func TestPiecesStayInUnits(t *testing.T) {
	v, _ := train(t, corpus(20<<10)+"x1y2z3 a.b,c (d) e's f-g", Options{VocabSize: 450, MaxPieceLen: 5})
	for id := Fixed; id < len(v.Tokens); id++ {
		s := v.Tokens[id]
		if n := utf8.RuneCountInString(s); n > 5 {
			t.Errorf("piece %q has %d characters, more than 5", s, n)
		}
		rest := strings.TrimPrefix(s, "▁")
		if strings.Contains(rest, "▁") {
			t.Errorf("piece %q has a ▁ inside", s)
		}
		class := -1
		for _, c := range rest {
			if k := classOf(c); class >= 0 && k != class {
				t.Errorf("piece %q mixes character classes", s)
				break
			} else {
				class = k
			}
		}
	}
}

func TestFrequentWordsAreOneToken(t *testing.T) {
	_, tok := train(t, corpus(40<<10), Options{VocabSize: 500})
	for _, w := range strings.Fields(vocabText)[:30] {
		for _, s := range []string{w, "Unto " + w} {
			ids, err := tok.Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			last := ids[len(ids)-1]
			if got := string(tok.Piece(last)); got != " "+w {
				t.Errorf("%q: last token is %q, want %q", s, got, " "+w)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	v, tok := train(t, corpus(20<<10), Options{VocabSize: 450})
	for _, text := range []string{
		"",
		"the",
		"And the lord said unto moses",
		"  two leading spaces and two  inside ",
		"line one.\nAnd line two;\n",
		"tab\there\r\n",
		"new words: zebra quixotic",
		"unseen 😀 and 日本語",
		"<s> and </s> and <unk> are plain text",
		"<0x41> too",
		"\u2581 is a space",
	} {
		ids, err := tok.Encode(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		want := " " + strings.ReplaceAll(text, "\u2581", " ")
		if text == "" {
			want = ""
		}
		if got := tok.Decode(ids); got != want {
			t.Errorf("%q: decodes to %q, want %q (tokens %q)", text, got, want, pieces(v, ids))
		}

		// Exactly the characters with no token of their own are spelled
		// in bytes, and no special token appears.
		known := map[string]bool{}
		for _, s := range v.Tokens[Fixed:] {
			known[s] = true
		}
		wantBytes := 0
		for _, c := range strings.ReplaceAll(text, " ", "▁") {
			if !known[string(c)] {
				wantBytes += utf8.RuneLen(c)
			}
		}
		n := 0
		for _, id := range ids {
			if v.Types[id] == tokenizer.TypeByte {
				n++
			}
			if id == v.UNK || id == v.BOS || id == v.EOS {
				t.Errorf("%q: encodes to special token %d", text, id)
			}
		}
		if n != wantBytes {
			t.Errorf("%q: %d byte tokens, want %d (tokens %q)", text, n, wantBytes, pieces(v, ids))
		}
	}
}

func TestByteFallback(t *testing.T) {
	v, tok := train(t, "the earth", Options{VocabSize: Fixed + 7 + 6})
	ids, err := tok.Encode("😀")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"}
	if got := pieces(v, ids); !slices.Equal(got, want) {
		t.Errorf("😀 encodes to %q, want %q", got, want)
	}
}

// TestReplay checks that the tokenizer, merging by score, splits every
// word of the training text exactly as training did.
func TestReplay(t *testing.T) {
	for _, size := range []int{300, 500, 800} {
		units, err := countUnits(strings.NewReader(corpus(30 << 10)))
		if err != nil {
			t.Fatal(err)
		}
		tr := newTrainer(units, Options{VocabSize: size, MaxPieceLen: DefaultMaxPieceLen})
		tr.run()
		v := tr.vocab()
		v.AddSpacePrefix = false // units without a leading ▁ are encoded as they are
		tok, err := tokenizer.New(*v)
		if err != nil {
			t.Fatal(err)
		}
		for w, want := range tr.segments() {
			ids, err := tok.Encode(strings.ReplaceAll(w, "▁", " "))
			if err != nil {
				t.Fatal(err)
			}
			if got := pieces(v, ids); !slices.Equal(got, want) {
				t.Errorf("vocab %d: %q encodes to %q, training made %q", size, w, got, want)
			}
		}
	}
}

// TestPairCounts checks the incremental pair counts against a recount.
func TestPairCounts(t *testing.T) {
	units, err := countUnits(strings.NewReader(corpus(20 << 10)))
	if err != nil {
		t.Fatal(err)
	}
	tr := newTrainer(units, Options{VocabSize: 450, MaxPieceLen: 6})
	tr.run()
	want := map[uint64]int64{}
	for wi, w := range tr.words {
		for i := 1; i < len(w); i++ {
			if p, ok := tr.pair(w[i-1], w[i]); ok {
				want[p] += tr.counts[wi]
				if !slices.Contains(tr.where[p], int32(wi)) {
					t.Errorf("pair %q%q: word %d is not in its list", tr.syms[w[i-1]], tr.syms[w[i]], wi)
				}
			}
		}
	}
	if !maps.Equal(tr.pairs, want) {
		t.Errorf("incremental pair counts differ from a recount: %d pairs, want %d", len(tr.pairs), len(want))
	}
}

func TestDeterministic(t *testing.T) {
	text := corpus(20 << 10)
	a, _ := train(t, text, Options{VocabSize: 450})
	for range 3 {
		b, _ := train(t, text, Options{VocabSize: 450})
		if !reflect.DeepEqual(a, b) {
			t.Fatal("the same text gave two different vocabularies")
		}
	}
}

func TestCompression(t *testing.T) {
	text := corpus(40 << 10)
	for _, c := range []struct {
		size int
		min  float64 // characters per token at least
	}{
		{Fixed + 60, 0.95}, // characters only: about one token each
		{400, 2.5},
		{500, 4},
	} {
		_, tok := train(t, text, Options{VocabSize: c.size})
		ids, err := tok.Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		ratio := float64(utf8.RuneCountInString(text)) / float64(len(ids))
		if ratio < c.min {
			t.Errorf("vocab %d: %.2f characters per token, want at least %.2f", c.size, ratio, c.min)
		}
	}
}

func TestShort(t *testing.T) {
	for _, c := range []struct {
		text string
		size int
		want int
	}{
		{"", 300, Fixed},
		{" ", 300, Fixed + 1},         // ▁
		{"ab ab", 300, Fixed + 3 + 2}, // a b ▁; ab ▁ab
		{"aaaa", 400, Fixed + 2 + 3},  // a ▁; aa ▁aa ▁aaaa
	} {
		v, err := Train(strings.NewReader(c.text), Options{VocabSize: c.size})
		if !errors.Is(err, ErrShort) {
			t.Fatalf("%q: error %v, want ErrShort", c.text, err)
		}
		if v == nil {
			t.Fatalf("%q: no vocabulary with ErrShort", c.text)
		}
		if len(v.Tokens) != c.want {
			t.Errorf("%q: %d tokens %q, want %d", c.text, len(v.Tokens), v.Tokens[Fixed:], c.want)
		}
		if _, err := tokenizer.New(*v); err != nil {
			t.Errorf("%q: %v", c.text, err)
		}
	}
}

func TestTooManyCharacters(t *testing.T) {
	// 10 distinct characters, room for 4: the 4 most frequent are kept and
	// the rest fall back to bytes.
	text := "aaaaa bbbb ccc dd e f g h i j"
	v, tok := train(t, text, Options{VocabSize: Fixed + 4})
	if got, want := v.Tokens[Fixed:], []string{"▁", "a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("tokens %q, want %q", got, want)
	}
	ids, err := tok.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Decode(ids); got != " "+text {
		t.Errorf("decodes to %q", got)
	}
}

func TestProgress(t *testing.T) {
	var calls [][2]int
	v, _ := train(t, corpus(10<<10), Options{VocabSize: 400, Progress: func(done, total int) {
		calls = append(calls, [2]int{done, total})
	}})
	if len(calls) < 2 || calls[0][0] != 0 {
		t.Fatalf("progress calls %v", calls)
	}
	total := calls[0][1]
	for i, c := range calls {
		if c[1] != total || c[0] != i {
			t.Fatalf("call %d is %v, want [%d %d]", i, c, i, total)
		}
	}
	merged := 0
	for _, s := range v.Tokens[Fixed:] {
		if utf8.RuneCountInString(s) > 1 {
			merged++
		}
	}
	if calls[len(calls)-1][0] != total || merged != total {
		t.Errorf("last call %v, %d pieces merged; want %d", calls[len(calls)-1], merged, total)
	}
}
