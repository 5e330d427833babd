package bpe_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"strings"

	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
	"wisp/tools/bpe"
)

func Example() {
	text := strings.Repeat("In the beginning God created the heaven and the earth.\n", 10)
	v, err := bpe.Train(strings.NewReader(text), bpe.Options{VocabSize: 320})
	if errors.Is(err, bpe.ErrShort) {
		fmt.Println(err) // the text ran out of pairs: v is smaller
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(v.Tokens), "tokens; the first pieces:", v.Tokens[bpe.Fixed:bpe.Fixed+6])

	tok, err := tokenizer.New(*v)
	if err != nil {
		log.Fatal(err)
	}
	ids, err := tok.Encode("the heaven and the sea")
	if err != nil {
		log.Fatal(err)
	}
	pieces := make([]string, len(ids))
	for i, id := range ids {
		pieces[i] = v.Tokens[id]
	}
	fmt.Printf("%q\n%q\n", pieces, tok.Decode(ids))

	// Store the vocabulary in a model file, where FromGGUF finds it.
	b := gguf.NewBuilder()
	b.Set("general.architecture", "llama")
	if err := tokenizer.SetGGUF(b, v); err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		log.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	back, err := tokenizer.FromGGUF(f)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(back.Len(), "tokens read back")
	// Output:
	// bpe: text has too few distinct pairs for the vocabulary size: 311 tokens of the 320 asked (35 pieces merged)
	// 311 tokens; the first pieces: [he ▁t ▁the ea in ▁a]
	// ["▁the" "▁heaven" "▁and" "▁the" "▁" "<0x73>" "ea"]
	// " the heaven and the sea"
	// 311 tokens read back
}
