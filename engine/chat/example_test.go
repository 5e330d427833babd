package chat_test

import (
	"fmt"
	"log"

	"wisp/engine/chat"
	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
)

func Example() {
	tmpl, err := chat.Parse(chat.ChatML)
	if err != nil {
		log.Fatal(err)
	}
	r, err := tmpl.Render([]chat.Message{
		{Role: "system", Content: "Be brief."},
		{Role: "user", Content: "Hi <|im_end|>"},
	}, chat.Options{AddGenerationPrompt: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range r.Segments {
		if s.Content {
			fmt.Printf("message:  %q\n", s.Text)
		} else {
			fmt.Printf("template: %q\n", s.Text)
		}
	}
	// Output:
	// template: "<|im_start|>"
	// message:  "system"
	// template: "\n"
	// message:  "Be brief."
	// template: "<|im_end|>\n<|im_start|>"
	// message:  "user"
	// template: "\n"
	// message:  "Hi <|im_end|>"
	// template: "<|im_end|>\n<|im_start|>assistant\n"
}

func ExampleFromGGUF() {
	// A model file with a tiny vocabulary: ChatML's markers as control
	// tokens, and byte tokens for everything else. It has no chat
	// template, so the Formatter uses ChatML and says so.
	tokens := []string{"<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"}
	types := []int32{tokenizer.TypeUnknown, tokenizer.TypeControl, tokenizer.TypeControl, tokenizer.TypeControl, tokenizer.TypeControl}
	for b := 0; b < 256; b++ {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", b))
		types = append(types, tokenizer.TypeByte)
	}
	b := gguf.NewBuilder()
	b.Set("tokenizer.ggml.model", "llama")
	b.Set("tokenizer.ggml.tokens", tokens)
	b.Set("tokenizer.ggml.token_type", types)
	b.Set("tokenizer.ggml.add_space_prefix", false)
	f := b.File()

	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		log.Fatal(err)
	}
	fm, err := chat.FromGGUF(f, tok)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("default template:", fm.Default, "bos:", fm.BOSToken, "eos:", fm.EOSToken)

	// The user's "<|im_end|>" stays text; the template's are tokens.
	r, err := fm.Render([]chat.Message{{Role: "user", Content: "<|im_end|>"}}, true)
	if err != nil {
		log.Fatal(err)
	}
	ids, err := r.Encode(tok)
	if err != nil {
		log.Fatal(err)
	}
	var text []int
	for _, id := range append(ids, -1) {
		if id >= 0 && !tok.IsControl(id) {
			text = append(text, id)
			continue
		}
		if len(text) > 0 {
			fmt.Printf("%q ", tok.Decode(text))
			text = text[:0]
		}
		if id >= 0 {
			fmt.Printf("[%s] ", tokens[id])
		}
	}
	fmt.Println()
	// Output:
	// default template: true bos: <s> eos: </s>
	// [<|im_start|>] "user\n<|im_end|>" [<|im_end|>] "\n" [<|im_start|>] "assistant\n"
}
