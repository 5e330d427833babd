package tokenizer

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"wisp/engine/gguf"
	"wisp/internal/sharedfiles"
)

type scored struct {
	text  string
	score float32
}

// spmVocab returns a llama vocabulary: <unk>, <s>, </s>, the 256 byte
// tokens, then pieces.
func spmVocab(prefix bool, pieces ...scored) Vocab {
	v := Vocab{Model: "llama", BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: prefix}
	add := func(s string, score float32, typ int32) {
		v.Tokens = append(v.Tokens, s)
		v.Scores = append(v.Scores, score)
		v.Types = append(v.Types, typ)
	}
	add("<unk>", 0, TypeUnknown)
	add("<s>", 0, TypeControl)
	add("</s>", 0, TypeControl)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), 0, TypeByte)
	}
	for _, p := range pieces {
		typ := int32(TypeNormal)
		if strings.HasPrefix(p.text, "<") && len(p.text) > 1 {
			typ = TypeUserDefined
		}
		add(p.text, p.score, typ)
	}
	return v
}

// bpeVocab returns a gpt2 vocabulary: the 256 byte characters, the results
// of merges in order, then <|endoftext|>.
func bpeVocab(pre string, merges ...string) Vocab {
	v := Vocab{Model: "gpt2", Pre: pre, BOS: -1, EOS: -1, UNK: -1, PAD: -1, Merges: append([]string{}, merges...)}
	for b := 0; b < 256; b++ {
		v.Tokens = append(v.Tokens, string(byteToRune[b]))
	}
	for _, m := range merges {
		v.Tokens = append(v.Tokens, strings.Replace(m, " ", "", 1))
	}
	v.Tokens = append(v.Tokens, "<|endoftext|>")
	v.EOS = len(v.Tokens) - 1
	v.BOS = v.EOS
	return v
}

func mustNew(t testing.TB, v Vocab) *Tokenizer {
	t.Helper()
	tok, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// texts spells ids as token texts, for readable comparisons.
func texts(tok *Tokenizer, ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tok.Vocab().Tokens[id]
	}
	return out
}

func TestEncodeSPM(t *testing.T) {
	const sp = "\u2581"
	tests := []struct {
		name    string
		prefix  bool
		pieces  []scored
		special bool // EncodeSpecial
		in      string
		want    []string
	}{
		{name: "empty", prefix: true, pieces: []scored{{sp, -1}}, in: "", want: []string{}},
		{name: "higher score first", pieces: []scored{{"a", -5}, {"b", -5}, {"c", -5}, {"ab", -1}, {"bc", -2}},
			in: "abc", want: []string{"ab", "c"}},
		{name: "higher score first, other way", pieces: []scored{{"a", -5}, {"b", -5}, {"c", -5}, {"ab", -2}, {"bc", -1}},
			in: "abc", want: []string{"a", "bc"}},
		{name: "ties go left", pieces: []scored{{"a", -5}, {"b", -5}, {"c", -5}, {"ab", -1}, {"bc", -1}},
			in: "abc", want: []string{"ab", "c"}},
		{name: "merges chain", pieces: []scored{{"a", -5}, {"b", -5}, {"c", -5}, {"ab", -1}, {"abc", -3}},
			in: "abcab", want: []string{"abc", "ab"}},
		{name: "no merge through a missing pair", pieces: []scored{{"a", -5}, {"b", -5}, {"c", -5}, {"abc", -1}},
			in: "abc", want: []string{"a", "b", "c"}},
		{name: "byte fallback", pieces: []scored{{"a", -1}},
			in: "a\né", want: []string{"a", "<0x0A>", "<0xC3>", "<0xA9>"}},
		{name: "space prefix", prefix: true, pieces: []scored{{sp, -3}, {"a", -5}, {sp + "a", -1}},
			in: "a a", want: []string{sp + "a", sp + "a"}},
		{name: "space prefix even before a space", prefix: true, pieces: []scored{{sp, -3}, {sp + sp, -2}, {"a", -5}, {sp + "a", -1}},
			in: " a", want: []string{sp, sp + "a"}},
		{name: "control text is plain text", pieces: []scored{{"<", -1}, {"s", -1}, {">", -1}},
			in: "<s>", want: []string{"<", "s", ">"}},
		{name: "EncodeSpecial matches control tokens", prefix: true, special: true,
			pieces: []scored{{sp, -3}, {"a", -5}, {sp + "a", -1}},
			in:     "<s>a</s>", want: []string{"<s>", sp + "a", "</s>"}},
		{name: "user-defined tokens are matched", prefix: true,
			pieces: []scored{{sp, -3}, {"a", -5}, {sp + "a", -1}, {"<tag>", 0}, {"<tag2>", 0}},
			in:     "a<tag>a<tag2>", want: []string{sp + "a", "<tag>", sp + "a", "<tag2>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := mustNew(t, spmVocab(tc.prefix, tc.pieces...))
			enc := tok.Encode
			if tc.special {
				enc = tok.EncodeSpecial
			}
			ids, err := enc(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := texts(tok, ids); fmt.Sprint(got) != fmt.Sprint(tc.want) || ids == nil {
				t.Errorf("Encode(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestEncodeSPMNoByteToken(t *testing.T) {
	v := Vocab{Model: "llama", Tokens: []string{"<unk>", "a"}, BOS: -1, EOS: -1, UNK: 0, PAD: -1}
	tok := mustNew(t, v)
	ids, err := tok.Encode("ab")
	if err != nil || fmt.Sprint(ids) != "[1 0]" {
		t.Errorf("with UNK: Encode = %v, %v; want [1 0]", ids, err)
	}
	v.UNK = -1
	tok = mustNew(t, v)
	if _, err := tok.Encode("ab"); err == nil || !strings.Contains(err.Error(), "0x62") {
		t.Errorf("without UNK: err = %v, want one naming byte 0x62", err)
	}
}

func TestEncodeBPE(t *testing.T) {
	const G = "\u0120" // GPT-2's character for a space
	tests := []struct {
		name   string
		pre    string
		merges []string
		in     string
		want   []string
	}{
		{name: "lowest rank first", pre: "gpt-2", merges: []string{"b c", "a b"},
			in: "abc", want: []string{"a", "bc"}},
		{name: "lowest rank first, other way", pre: "gpt-2", merges: []string{"a b", "b c"},
			in: "abc", want: []string{"ab", "c"}},
		{name: "ties go left", pre: "gpt-2", merges: []string{"a a"},
			in: "aaa", want: []string{"aa", "a"}},
		{name: "merges chain", pre: "gpt-2", merges: []string{"l l", "h e", "he ll", "hell o"},
			in: "hello", want: []string{"hello"}},
		{name: "words do not merge across", pre: "gpt-2", merges: []string{G + " w", "o " + G},
			in: "o w", want: []string{"o", G + "w"}},
		{name: "bytes", pre: "gpt-2", merges: []string{"Ã ©"},
			in: "é\n", want: []string{"Ã©", "Ċ"}},
		{name: "special text is plain text", pre: "gpt-2", merges: []string{"< |"},
			in: "<|endoftext|>", want: []string{"<|", "endoftext", "|>"}},
		{name: "ignore_merges takes whole words", pre: "llama3", merges: []string{"a b", "c d", "ab cd"},
			in: "abcd abd", want: []string{"abcd", G, "ab", "d"}},
		{name: "smollm splits digits", pre: "smollm", merges: []string{"1 2"},
			in: "12", want: []string{"1", "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := bpeVocab(tc.pre, tc.merges...)
			if tc.name == "special text is plain text" {
				v.Tokens = append(v.Tokens, "endoftext", "|>")
				v.Merges = append(v.Merges, "e n", "en d", "end o", "endo f", "endof t", "endoft e", "endofte x", "endoftex t", "| >")
				for _, m := range v.Merges[1:] {
					if s := strings.Replace(m, " ", "", 1); s != "endoftext" && s != "|>" {
						v.Tokens = append(v.Tokens, s)
					}
				}
			}
			tok := mustNew(t, v)
			ids, err := tok.Encode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := texts(tok, ids); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Encode(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := tok.Decode(ids); got != tc.in {
				t.Errorf("Decode(Encode(%q)) = %q", tc.in, got)
			}
		})
	}
}

func TestPreTokenizers(t *testing.T) {
	// Expected words come from the expressions themselves, evaluated with
	// a regular expression engine that has lookahead.
	tests := []struct {
		in   string
		want map[string][]string
	}{
		{"Hello world", map[string][]string{
			"gpt-2": {"Hello", " world"}, "smollm": {"Hello", " world"}, "llama3": {"Hello", " world"},
			"qwen2": {"Hello", " world"}, "default": {"Hello", " world"}}},
		{"  Hello", map[string][]string{
			"gpt-2": {" ", " Hello"}, "smollm": {" ", " Hello"}, "llama3": {" ", " Hello"},
			"qwen2": {" ", " Hello"}, "default": {" ", " Hello"}}},
		{"x\n\n  y", map[string][]string{
			"gpt-2": {"x", "\n\n ", " y"}, "smollm": {"x", "\n\n ", " y"}, "llama3": {"x", "\n\n", " ", " y"},
			"qwen2": {"x", "\n\n", " ", " y"}, "default": {"x", "\n\n ", " y"}}},
		{"123456789", map[string][]string{
			"gpt-2": {"123456789"}, "smollm": {"1", "2", "3", "4", "5", "6", "7", "8", "9"},
			"llama3": {"123", "456", "789"}, "qwen2": {"1", "2", "3", "4", "5", "6", "7", "8", "9"},
			"default": {"123", "456", "789"}}},
		{"3.3 3..3", map[string][]string{
			"gpt-2": {"3", ".", "3", " 3", "..", "3"}, "smollm": {"3", ".", "3", " ", "3", "..", "3"},
			"llama3": {"3", ".", "3", " ", "3", "..", "3"}, "qwen2": {"3", ".", "3", " ", "3", "..", "3"},
			"default": {"3", ".", "3", " ", "3", "..", "3"}}},
		{"I've been 'told he's", map[string][]string{
			"gpt-2":   {"I", "'ve", " been", " '", "told", " he", "'s"},
			"smollm":  {"I", "'ve", " been", " '", "told", " he", "'s"},
			"llama3":  {"I", "'ve", " been", " '", "told", " he", "'s"},
			"qwen2":   {"I", "'ve", " been", " '", "told", " he", "'s"},
			"default": {"I", "'", "ve", " been", " ", "'", "told", " he", "'", "s"}}},
		{"\t\tHello", map[string][]string{
			"gpt-2": {"\t", "\t", "Hello"}, "smollm": {"\t", "\t", "Hello"}, "llama3": {"\t", "\tHello"},
			"qwen2": {"\t", "\tHello"}, "default": {"\t", "\t", "Hello"}}},
		{" \t\n  \n x", map[string][]string{
			"gpt-2": {" \t\n  \n", " x"}, "smollm": {" \t\n  \n", " x"}, "llama3": {" \t\n  \n", " x"},
			"qwen2": {" \t\n  \n", " x"}, "default": {" \t\n  \n", " x"}}},
		{"éZ<\u0301-(|c's` 2'VeZ\r-٣,))'Ve中 ", map[string][]string{
			"gpt-2":   {"éZ", "<\u0301-(|", "c", "'s", "`", " 2", "'", "VeZ", "\r", "-", "٣", ",))'", "Ve中", " "},
			"smollm":  {"éZ", "<\u0301-(|", "c", "'s", "`", " ", "2", "'", "VeZ", "\r", "-", "٣", ",))'", "Ve中", " "},
			"llama3":  {"éZ", "<\u0301-(|", "c", "'s", "`", " ", "2", "'Ve", "Z", "\r", "-", "٣", ",))'", "Ve中", " "},
			"qwen2":   {"éZ", "<\u0301-(|", "c", "'s", "`", " ", "2", "'Ve", "Z", "\r", "-", "٣", ",))'", "Ve中", " "},
			"default": {"éZ", "<", "\u0301", "-(|", "c", "'", "s", "`", " ", "2", "'", "VeZ", "\r", "-", "٣", ",))'", "Ve中", " "}}},
		{"1 \n²* \rd!\r$ '.>?%٣Z`…\n\n% '٣ ", map[string][]string{
			"gpt-2":   {"1", " ", "\n", "²", "*", " ", "\r", "d", "!", "\r", "$", " '.>?%", "٣", "Z", "`…", "\n", "\n", "%", " '", "٣", " "},
			"smollm":  {"1", " \n", "²", "*", " ", "\r", "d", "!", "\r", "$", " '.>?%", "٣", "Z", "`…", "\n", "\n", "%", " '", "٣", " "},
			"llama3":  {"1", " \n", "²", "*", " \r", "d", "!\r", "$", " '.>?%", "٣", "Z", "`…\n\n", "%", " '", "٣", " "},
			"qwen2":   {"1", " \n", "²", "*", " \r", "d", "!\r", "$", " '.>?%", "٣", "Z", "`…\n\n", "%", " '", "٣", " "},
			"default": {"1", " ", "\n", "²", "*", " ", "\r", "d", "!", "\r", "$", " ", "'.>?%", "٣", "Z", "`", "…", "\n\n", "%", " ", "'", "٣", " "}}},
		{"? a ²*+^_ж 'Y'RE e'Ve|Z…\t", map[string][]string{
			"gpt-2":   {"?", " a", " ²", "*+^_", "ж", " '", "Y", "'", "RE", " e", "'", "Ve", "|", "Z", "…", "\t"},
			"smollm":  {"?", " a", " ", "²", "*+^_", "ж", " '", "Y", "'", "RE", " e", "'", "Ve", "|", "Z", "…", "\t"},
			"llama3":  {"?", " a", " ", "²", "*+^_", "ж", " '", "Y", "'RE", " e", "'Ve", "|Z", "…", "\t"},
			"qwen2":   {"?", " a", " ", "²", "*+^_", "ж", " '", "Y", "'RE", " e", "'Ve", "|Z", "…", "\t"},
			"default": {"?", " a", " ", "²", "*+^_", "ж", " ", "'", "Y", "'", "RE", " e", "'", "Ve", "|", "Z", "…", "\t"}}},
	}
	for _, name := range []string{"gpt-2", "smollm", "llama3", "qwen2", "default"} {
		p, _, err := lookupPre(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range tests {
			var got []string
			for _, w := range p.split(tc.in) {
				got = append(got, tc.in[w[0]:w[1]])
			}
			if want := tc.want[name]; fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
				t.Errorf("%s(%q):\n got %q\nwant %q", name, tc.in, got, want)
			}
		}
	}
	if _, _, err := lookupPre("no-such-pre"); err == nil {
		t.Error("unknown pre-tokenizer: no error")
	}
}

func TestInvalidUTF8(t *testing.T) {
	for _, v := range []Vocab{spmVocab(true), bpeVocab("gpt-2")} {
		tok := mustNew(t, v)
		for _, tc := range []struct {
			in  string
			off int
		}{{"\xff", 0}, {"ab\xffc", 2}, {"é\xc3", 2}, {"a\xed\xa0\x80", 1}} {
			_, err := tok.Encode(tc.in)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("byte offset %d", tc.off)) {
				t.Errorf("%s: Encode(%q) error = %v, want one at byte offset %d", v.Model, tc.in, err, tc.off)
			}
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(v *Vocab)
		want string
	}{
		{"unknown model", func(v *Vocab) { v.Model = "bert" }, "unknown tokenizer model"},
		{"no tokens", func(v *Vocab) {
			v.Tokens, v.Scores, v.Types = nil, nil, nil
			v.BOS, v.EOS, v.UNK = -1, -1, -1
			v.AddBOS = false
		}, "no tokens"},
		{"scores", func(v *Vocab) { v.Scores = v.Scores[1:] }, "scores"},
		{"types", func(v *Vocab) { v.Types = v.Types[1:] }, "token types"},
		{"BOS range", func(v *Vocab) { v.BOS = len(v.Tokens) }, "BOS token id"},
		{"EOS range", func(v *Vocab) { v.EOS = -2 }, "EOS token id"},
		{"UNK range", func(v *Vocab) { v.UNK = 1 << 20 }, "UNK token id"},
		{"PAD range", func(v *Vocab) { v.PAD = len(v.Tokens) }, "PAD token id"},
		{"AddBOS without BOS", func(v *Vocab) { v.BOS = -1 }, "AddBOS"},
		{"AddEOS without EOS", func(v *Vocab) { v.AddEOS, v.EOS = true, -1 }, "AddEOS"},
		{"duplicate", func(v *Vocab) { v.Tokens[5] = v.Tokens[4] }, "duplicate token"},
		{"no merges", func(v *Vocab) { v.Model, v.Merges = "gpt2", nil }, "no merges"},
		{"unknown pre", func(v *Vocab) { v.Model, v.Merges, v.Pre = "gpt2", []string{}, "wordpiece" }, "pre-tokenizer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := spmVocab(true)
			tc.edit(&v)
			_, err := New(v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestNewCopiesVocab(t *testing.T) {
	v := spmVocab(true, scored{"a", -1})
	tok := mustNew(t, v)
	v.Tokens[len(v.Tokens)-1] = "b"
	if got := tok.Vocab().Tokens[len(v.Tokens)-1]; got != "a" {
		t.Errorf("token changed to %q through the caller's slice", got)
	}
}

func TestAccessors(t *testing.T) {
	tok := mustNew(t, spmVocab(true, scored{"a", -1}, scored{"<|im_end|>", 0}))
	imEnd := tok.Len() - 1
	checks := []struct {
		name      string
		got, want any
	}{
		{"Len", tok.Len(), 3 + 256 + 2},
		{"BOS", tok.BOS(), 1},
		{"EOS", tok.EOS(), 2},
		{"AddBOS", tok.AddBOS(), true},
		{"IsControl(BOS)", tok.IsControl(1), true},
		{"IsControl(<unk>)", tok.IsControl(0), false},
		{"IsControl(byte)", tok.IsControl(3), false},
		{"IsControl(-1)", tok.IsControl(-1), false},
		{"IsControl(Len)", tok.IsControl(tok.Len()), false},
		{"IsControl(<|im_end|>)", tok.IsControl(imEnd), true}, // user-defined, but llama.cpp makes it control
		{"IsEOG(EOS)", tok.IsEOG(2), true},
		{"IsEOG(<|im_end|>)", tok.IsEOG(imEnd), true},
		{"IsEOG(BOS)", tok.IsEOG(1), false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestPiece(t *testing.T) {
	spm := mustNew(t, spmVocab(true, scored{"\u2581a\u2581b", -1}, scored{"<tag>", 0}))
	bpe := mustNew(t, bpeVocab("gpt-2", "\u0120 a"))
	nilVocab := mustNew(t, Vocab{Model: "llama", Tokens: []string{"<unk>", "<s>", "</s>", "<0x0A>", "x"}, BOS: 1, EOS: 2, UNK: 0, PAD: -1})
	tests := []struct {
		name string
		tok  *Tokenizer
		id   int
		want []byte
	}{
		{"spm normal", spm, spm.Len() - 2, []byte(" a b")},
		{"spm byte", spm, 3 + 0xF0, []byte{0xF0}},
		{"spm control", spm, 1, nil},
		{"spm unknown", spm, 0, nil},
		{"spm user-defined", spm, spm.Len() - 1, []byte("<tag>")},
		{"out of range", spm, spm.Len(), nil},
		{"negative", spm, -1, nil},
		{"gpt2 byte char", bpe, 0x0A, []byte{0x0A}},
		{"gpt2 merged", bpe, 256, []byte(" a")},
		{"gpt2 control", bpe, bpe.Len() - 1, nil},
		{"no types: byte", nilVocab, 3, []byte{'\n'}},
		{"no types: BOS", nilVocab, 1, nil},
		{"no types: UNK", nilVocab, 0, nil},
		{"no types: normal", nilVocab, 4, []byte("x")},
	}
	for _, tc := range tests {
		if got := tc.tok.Piece(tc.id); string(got) != string(tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("%s: Piece(%d) = %q, want %q", tc.name, tc.id, got, tc.want)
		}
	}
}

func TestDecoder(t *testing.T) {
	tok := mustNew(t, spmVocab(false, scored{"a", -1}))
	b := func(c byte) int { return 3 + int(c) }
	a := tok.Len() - 1
	tests := []struct {
		name  string
		ids   []int
		want  []string // what each Next returns
		flush string
	}{
		{"emoji in four byte tokens", []int{b(0xF0), b(0x9F), b(0x98), b(0x80), a}, []string{"", "", "", "😀", "a"}, ""},
		{"two-byte char", []int{a, b(0xC3), b(0xA9)}, []string{"a", "", "é"}, ""},
		{"control tokens say nothing", []int{b(0xC3), 1, b(0xA9), 2}, []string{"", "", "é", ""}, ""},
		{"stray continuation byte", []int{b(0x80), a}, []string{"\uFFFD", "a"}, ""},
		{"impossible byte", []int{b(0xFF)}, []string{"\uFFFD"}, ""},
		{"broken sequence", []int{b(0xE2), b(0x82), a}, []string{"", "", "\uFFFDa"}, ""},
		{"sequence broken by a new start", []int{b(0xE2), b(0xE2), b(0x82), b(0xAC)}, []string{"", "\uFFFD", "", "€"}, ""},
		{"surrogate is never valid", []int{b(0xED), b(0xA0)}, []string{"", "\uFFFD\uFFFD"}, ""},
		{"incomplete at the end", []int{a, b(0xF0), b(0x9F)}, []string{"a", "", ""}, "\uFFFD"},
		{"out of range", []int{-1, tok.Len()}, []string{"", ""}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tok.NewDecoder()
			var all strings.Builder
			for i, id := range tc.ids {
				got := d.Next(id)
				all.WriteString(got)
				if got != tc.want[i] {
					t.Errorf("Next(%d) #%d = %q, want %q", id, i, got, tc.want[i])
				}
			}
			if got := d.Flush(); got != tc.flush {
				t.Errorf("Flush = %q, want %q", got, tc.flush)
			}
			all.WriteString(tc.flush)
			if got := tok.Decode(tc.ids); got != all.String() {
				t.Errorf("Decode = %q, Decoder gave %q", got, all.String())
			}
			if got := d.Flush(); got != "" {
				t.Errorf("second Flush = %q", got)
			}
		})
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok := mustNew(t, bpeVocab("gpt-2", "h e", "l l", "he ll"))
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				if ids, err := tok.Encode("hello hello"); err != nil || len(ids) != 5 {
					t.Errorf("Encode = %v, %v", ids, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// FuzzRoundTrip checks, on small vocabularies and on the shared ones, that
// encoding never fails on valid UTF-8 and that decoding gives the text
// back, with the space llama prepends.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", " ", "Hello, world!", "a\n\tb  c", "😀 é 中", "<s></s><tag>", "'s 'RE 123"} {
		f.Add(s)
	}
	spm := mustNew(f, spmVocab(true, scored{"\u2581", -3}, scored{"a", -2}, scored{"\u2581a", -1}))
	bpe := mustNew(f, bpeVocab("gpt-2", "\u0120 a", "l l", "h e"))
	toks := []*Tokenizer{spm, bpe}
	for _, name := range sharedFiles {
		p, err := sharedfiles.Path("tokenizers/" + name)
		if err != nil {
			continue
		}
		if gf, err := gguf.ReadFile(p); err == nil {
			if tok, err := FromGGUF(gf); err == nil {
				toks = append(toks, tok)
			}
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<12 {
			t.Skip("long inputs only slow the fuzzer down; the benchmarks cover them")
		}
		for _, tok := range toks {
			ids, err := tok.Encode(s)
			if err != nil {
				if !strings.Contains(err.Error(), "invalid UTF-8") {
					t.Fatalf("%s: %v", tok.Vocab().Model, err)
				}
				continue
			}
			want := s
			if tok.Vocab().AddSpacePrefix && s != "" {
				want = " " + s
			}
			if got := tok.Decode(ids); got != want {
				t.Fatalf("%s: Decode(Encode(%q)) = %q", tok.Vocab().Model, s, got)
			}
		}
	})
}
