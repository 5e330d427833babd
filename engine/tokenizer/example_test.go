package tokenizer_test

import (
	"fmt"
	"log"

	"wisp/engine/tokenizer"
)

func Example() {
	// A tiny SentencePiece vocabulary; real ones come from FromGGUF.
	tok, err := tokenizer.New(tokenizer.Vocab{
		Model:  "llama",
		Tokens: []string{"<unk>", "<s>", "</s>", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "▁", "h", "i", "!", "▁h", "▁hi"},
		Scores: []float32{0, 0, 0, 0, 0, 0, 0, -5, -5, -5, -5, -2, -1},
		Types:  []int32{2, 3, 3, 6, 6, 6, 6, 1, 1, 1, 1, 1, 1},
		BOS:    1, EOS: 2, UNK: 0, PAD: -1,
		AddBOS: true, AddSpacePrefix: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	ids, err := tok.Encode("hi hi! 😀")
	if err != nil {
		log.Fatal(err)
	}
	if tok.AddBOS() {
		ids = append([]int{tok.BOS()}, ids...)
	}
	fmt.Println(ids)

	// Stream the text back: the emoji's four byte tokens print nothing
	// until the last one.
	d := tok.NewDecoder()
	for _, id := range ids {
		fmt.Printf("%q ", d.Next(id))
	}
	fmt.Printf("%q\n", d.Flush())
	fmt.Printf("%q\n", tok.Decode(ids))
	// Output:
	// [1 12 12 10 7 3 4 5 6]
	// "" " hi" " hi" "!" " " "" "" "" "😀" ""
	// " hi hi! 😀"
}
