package bpe

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
)

func TestSetGGUF(t *testing.T) {
	trained, _ := train(t, corpus(10<<10), Options{VocabSize: 400})
	padded := *trained
	padded.PAD, padded.AddEOS, padded.AddBOS, padded.Pre = 3, true, false, "default"
	noSpace := *trained
	noSpace.AddSpacePrefix = false
	for _, c := range []struct {
		name string
		v    *tokenizer.Vocab
	}{
		{"trained", trained},
		{"pad, eos, no bos, pre", &padded},
		{"no space prefix", &noSpace},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := gguf.NewBuilder()
			if err := tokenizer.SetGGUF(b, c.v); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := b.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Parse(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			tok, err := tokenizer.FromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := tok.Vocab(); !reflect.DeepEqual(got, c.v) {
				t.Errorf("read back\n%+v\nwant\n%+v", *got, *c.v)
			}
		})
	}
}

func TestSetGGUFErrors(t *testing.T) {
	v, _ := train(t, "the earth", Options{VocabSize: Fixed + 7})
	bad := *v
	bad.Scores = bad.Scores[:10]
	for _, c := range []struct {
		name string
		b    *gguf.Builder
		v    *tokenizer.Vocab
		want string
	}{
		{"nil builder", nil, v, "needs a builder"},
		{"nil vocabulary", gguf.NewBuilder(), nil, "needs a builder and a vocabulary"},
		{"bad vocabulary", gguf.NewBuilder(), &bad, "10 scores for 266 tokens"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := tokenizer.SetGGUF(c.b, c.v)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if c.b != nil {
				var buf bytes.Buffer
				if _, err := c.b.WriteTo(&buf); err != nil {
					t.Fatal(err)
				}
				f, err := gguf.Parse(buf.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				if len(f.KV) != 0 {
					t.Errorf("SetGGUF set %d keys before failing", len(f.KV))
				}
			}
		})
	}
}
