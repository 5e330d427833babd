package bpe

import (
	"strings"
	"testing"

	"wisp/engine/tokenizer"
)

// vocabText holds the synthetic corpus's words, the most frequent first.
const vocabText = `the and of unto he that shall lord in his
	they them said god land people house king son children day
	heaven earth waters light darkness firmament evening morning
	blessed righteous wicked sword mountain wilderness offering
	priest covenant servant jerusalem israel judah egypt babylon
	abraham moses david solomon`

// corpus returns a deterministic synthetic text of about n bytes: lines of
// words drawn with falling frequency, capitalised after a line break,
// with punctuation and now and then a number.
func corpus(n int) string {
	vocabWords := strings.Fields(vocabText)
	var b strings.Builder
	x := uint32(1)
	next := func(k int) int { // a number in [0, k) from a fixed LCG
		x = x*1664525 + 1013904223
		return int(x>>8) % k
	}
	for b.Len() < n {
		for i := range 5 + next(15) {
			// min of two uniform draws favours the first words.
			w := min(next(len(vocabWords)), next(len(vocabWords)))
			s := vocabWords[w]
			if i == 0 {
				s = strings.ToUpper(s[:1]) + s[1:]
			} else {
				b.WriteByte(' ')
			}
			b.WriteString(s)
			switch next(12) {
			case 0:
				b.WriteByte(',')
			case 1:
				b.WriteByte(';')
			case 2:
				b.WriteString(" 12")
			}
		}
		b.WriteString(".\n")
	}
	return b.String()
}

// train trains on text and builds the tokenizer, failing the test on error.
func train(t *testing.T, text string, opt Options) (*tokenizer.Vocab, *tokenizer.Tokenizer) {
	t.Helper()
	v, err := Train(strings.NewReader(text), opt)
	if err != nil {
		t.Fatalf("Train: %v", err)
	}
	tok, err := tokenizer.New(*v)
	if err != nil {
		t.Fatalf("tokenizer.New: %v", err)
	}
	return v, tok
}

// pieces spells ids as token texts.
func pieces(v *tokenizer.Vocab, ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = v.Tokens[id]
	}
	return out
}
