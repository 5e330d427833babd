package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
)

func tokenizeCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tokenize", "-m MODEL_OR_VOCAB.gguf [--bos] [--pieces] -- TEXT",
		`Prints the token ids of TEXT, separated by spaces, as the model's tokenizer
encodes it. The GGUF file may hold only a vocabulary, no weights.`, stderr)
	model := fs.String("m", "", "a GGUF model or vocabulary")
	tokPath := fs.String("z", "", "llama2.c tokenizer.bin, when -m is a llama2.c checkpoint")
	bos := fs.Bool("bos", false, "put the BOS token first")
	pieces := fs.Bool("pieces", false, "print each token's text after its id")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errUsage
	}
	text := strings.Join(pos, " ")
	var tok *tokenizer.Tokenizer
	if *tokPath == "" && *model != "" {
		f, err := gguf.ReadFile(*model)
		if err != nil {
			return err
		}
		if tok, err = tokenizer.FromGGUF(f); err != nil {
			return fmt.Errorf("%s: %w", *model, err)
		}
	} else {
		m, err := loadModel(*model, *tokPath)
		if err != nil {
			return err
		}
		tok = m.Tokenizer
	}
	ids, err := tok.Encode(text)
	if err != nil {
		return err
	}
	if *bos {
		if tok.BOS() < 0 {
			fmt.Fprintln(os.Stderr, "wisp tokenize: the vocabulary has no BOS token; --bos ignored")
		} else {
			ids = append([]int{tok.BOS()}, ids...)
		}
	}
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(id))
		if *pieces {
			b.WriteString(":" + strconv.Quote(string(tok.Piece(id))))
		}
	}
	b.WriteByte('\n')
	_, err = io.WriteString(stdout, b.String())
	return err
}
