package chat

import (
	"errors"
	"fmt"

	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
)

// ChatML is the template used for a model that has none: the ChatML
// format ("<|im_start|>role\ncontent<|im_end|>\n" per message, then
// "<|im_start|>assistant\n" for a generation prompt), as Hugging Face's
// transformers used by default for models without a chat template.
// It suits models trained on ChatML (Qwen, SmolLM); for a model that was
// not, its markers are merely text.
const ChatML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// Default returns the parsed ChatML template.
func Default() *Template {
	t, err := Parse(ChatML)
	if err != nil {
		panic("chat: the ChatML template does not parse: " + err.Error())
	}
	return t
}

// KeyTemplate is the GGUF metadata key of a model's chat template.
const KeyTemplate = "tokenizer.chat_template"

// Formatter renders conversations for one model: its template and the
// texts of its BOS and EOS tokens.
type Formatter struct {
	Template *Template
	// BOSToken and EOSToken are what the template sees as bos_token and
	// eos_token: the texts of the vocabulary's BOS and EOS tokens, or ""
	// when it has none.
	BOSToken, EOSToken string
	// Default is true when the model has no chat template and Template is
	// ChatML (see Default).
	Default bool
}

// FromGGUF returns the Formatter of a model: the template in its
// tokenizer.chat_template, parsed, or ChatML with Default set when the key
// is absent; and the texts of the BOS and EOS tokens of tok, the model's
// tokenizer (built from f when tok is nil). A template that does not
// parse is an error, not a silent fallback.
func FromGGUF(f *gguf.File, tok *tokenizer.Tokenizer) (*Formatter, error) {
	if tok == nil {
		var err error
		if tok, err = tokenizer.FromGGUF(f); err != nil {
			return nil, fmt.Errorf("chat: %w", err)
		}
	}
	fm := &Formatter{}
	src, err := f.String(KeyTemplate)
	switch {
	case errors.Is(err, gguf.ErrMissing):
		fm.Template, fm.Default = Default(), true
	case err != nil:
		return nil, fmt.Errorf("chat: %w", err)
	default:
		if fm.Template, err = parseTemplate(src); err != nil {
			return nil, fmt.Errorf("chat: parse the model's %s: %w", KeyTemplate, err)
		}
	}
	tokens := tok.Vocab().Tokens
	if id := tok.BOS(); id >= 0 {
		fm.BOSToken = tokens[id]
	}
	if id := tok.EOS(); id >= 0 {
		fm.EOSToken = tokens[id]
	}
	return fm, nil
}

// Render renders the conversation with the model's template and tokens.
func (fm *Formatter) Render(messages []Message, addGenerationPrompt bool) (*Rendered, error) {
	return fm.Template.Render(messages, Options{
		AddGenerationPrompt: addGenerationPrompt,
		BOSToken:            fm.BOSToken,
		EOSToken:            fm.EOSToken,
	})
}
