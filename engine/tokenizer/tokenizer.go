// Package tokenizer turns text into token ids and back the way llama.cpp does
// for the two tokenizer models wisp supports:
//
//   - "llama": SentencePiece-style BPE. Spaces become U+2581, a space is
//     prepended to the text (AddSpacePrefix), adjacent pieces are merged
//     highest score first, and characters no piece covers fall back to
//     byte tokens such as "<0x0A>".
//   - "gpt2": byte-level BPE. The text is split into words by the
//     pre-tokenizer tokenizer.ggml.pre names, every byte is mapped to a
//     printable character, and pairs are merged lowest merge rank first.
//     The pre-tokenizers are llama.cpp's for "gpt-2" (GPT-2's regular
//     expression) and the names it treats alike, "smollm" and "starcoder"
//     (digits split first), "llama3"/"llama-bpe", "qwen2", and "default"
//     (also used when the key is absent); others are an error.
//
// Encode matches llama.cpp's llama_tokenize with add_special=false and
// parse_special=false, which is how llama.cpp's test-tokenizer-0 produces
// its reference vectors: no BOS or EOS is added, the text of control
// tokens (such as "<s>" or "<|endoftext|>") is tokenized as ordinary text,
// and only user-defined tokens (type 4) are matched literally in the input.
// EncodeSpecial also matches control tokens.
//
// A Tokenizer is immutable once built and safe for concurrent use.
package tokenizer

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Token types as llama.cpp stores them in tokenizer.ggml.token_type.
const (
	TypeUndefined   = 0 // decodes to nothing
	TypeNormal      = 1 // ordinary text
	TypeUnknown     = 2 // <unk>: decodes to nothing
	TypeControl     = 3 // BOS, EOS, chat markers: decode to nothing
	TypeUserDefined = 4 // matched literally in the input, decodes as spelled
	TypeUnused      = 5 // decodes to nothing
	TypeByte        = 6 // "<0xXX>": one byte
)

// Vocab is everything a tokenizer needs, as stored in GGUF's
// tokenizer.ggml.* keys.
type Vocab struct {
	Model  string    // "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE)
	Pre    string    // tokenizer.ggml.pre, may be empty
	Tokens []string  // token text by id
	Scores []float32 // merge scores by id (llama); may be nil, meaning all 0
	// Types holds llama.cpp token types by id: 1 normal, 2 unknown,
	// 3 control, 4 user-defined, 5 unused, 6 byte. May be nil, meaning all
	// normal, except that for "llama" tokens spelled "<0xXX>" are then taken
	// as byte tokens, BOS and EOS as control tokens and UNK as unknown.
	Types  []int32
	Merges []string // gpt2 only: "left right" pairs in rank order

	BOS, EOS, UNK, PAD int // token ids, -1 when absent

	AddBOS         bool // callers should put BOS before the prompt
	AddEOS         bool // callers should put EOS after the prompt
	AddSpacePrefix bool // llama: prepend a space to the text before encoding
}

// Token attributes, a bit set like llama.cpp's llama_token_attr.
type attr uint16

const (
	attrUnknown attr = 1 << iota
	attrUnused
	attrNormal
	attrControl
	attrUserDefined
	attrByte
)

type model uint8

const (
	modelSPM model = iota
	modelBPE
)

// Tokenizer encodes text to token ids and decodes ids to text.
type Tokenizer struct {
	v     Vocab
	model model

	text   []string       // token text used for matching (empty tokens renamed)
	ids    map[string]int // text -> id
	attrs  []attr
	pieces [][]byte // what each token decodes to; nil for control tokens

	// special lists the tokens tokenizer_st_partition looks for, longest
	// text first: those that are user-defined, control or unknown.
	special []int
	eog     map[int]bool

	// llama
	scores  []float32
	byteTok [256]int // id of the token for each byte, -1 if none

	// gpt2
	pre    preTokenizer
	bpe    *bpeTable
	ignore bool // ignore_merges: a word that is a whole token is not merged
}

// New builds a tokenizer from v. It checks that the model is known, that
// Scores, Types and the special ids agree with Tokens, and that no token
// text appears twice.
func New(v Vocab) (*Tokenizer, error) {
	t := &Tokenizer{}
	switch v.Model {
	case "llama":
		t.model = modelSPM
	case "gpt2":
		t.model = modelBPE
	default:
		return nil, fmt.Errorf("tokenizer: unknown tokenizer model %q (want \"llama\" or \"gpt2\")", v.Model)
	}
	n := len(v.Tokens)
	switch {
	case n == 0:
		return nil, errors.New("tokenizer: vocabulary has no tokens")
	case n > maxTokens:
		return nil, fmt.Errorf("tokenizer: vocabulary of %d tokens is larger than the limit of %d", n, maxTokens)
	case v.Scores != nil && len(v.Scores) != n:
		return nil, fmt.Errorf("tokenizer: %d scores for %d tokens", len(v.Scores), n)
	case v.Types != nil && len(v.Types) != n:
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(v.Types), n)
	}
	for _, s := range []struct {
		name string
		id   int
	}{{"BOS", v.BOS}, {"EOS", v.EOS}, {"UNK", v.UNK}, {"PAD", v.PAD}} {
		if s.id < -1 || s.id >= n {
			return nil, fmt.Errorf("tokenizer: %s token id %d out of range [0, %d)", s.name, s.id, n)
		}
	}
	if v.AddBOS && v.BOS < 0 {
		return nil, errors.New("tokenizer: AddBOS is set but there is no BOS token")
	}
	if v.AddEOS && v.EOS < 0 {
		return nil, errors.New("tokenizer: AddEOS is set but there is no EOS token")
	}

	// Own copies, so later changes by the caller cannot reach us.
	t.v = v
	t.v.Tokens = append([]string(nil), v.Tokens...)
	if v.Scores != nil {
		t.v.Scores = append([]float32{}, v.Scores...)
	}
	if v.Types != nil {
		t.v.Types = append([]int32{}, v.Types...)
	}
	if v.Merges != nil {
		t.v.Merges = append([]string{}, v.Merges...)
	}

	t.text = make([]string, n)
	t.ids = make(map[string]int, n)
	for i, s := range v.Tokens {
		if s == "" {
			s = "[EMPTY_" + strconv.Itoa(i) + "]" // as llama.cpp does
		}
		if j, dup := t.ids[s]; dup {
			return nil, fmt.Errorf("tokenizer: duplicate token %q has ids %d and %d", s, j, i)
		}
		t.ids[s] = i
		t.text[i] = s
	}

	t.attrs = make([]attr, n)
	for i := range t.attrs {
		typ := int32(TypeNormal)
		if v.Types != nil {
			typ = v.Types[i]
		} else if t.model == modelSPM {
			if _, ok := parseByteToken(t.text[i]); ok {
				typ = TypeByte
			} else if i == v.UNK {
				typ = TypeUnknown
			} else if i == v.BOS || i == v.EOS {
				typ = TypeControl
			}
		}
		t.attrs[i] = typeAttr(typ)
	}
	t.markEOG()

	for i, a := range t.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
			t.special = append(t.special, i)
		}
	}
	sort.SliceStable(t.special, func(a, b int) bool {
		return len(t.text[t.special[a]]) > len(t.text[t.special[b]])
	})

	switch t.model {
	case modelSPM:
		t.scores = t.v.Scores
		if t.scores == nil {
			t.scores = make([]float32, n)
		}
		const hex = "0123456789ABCDEF"
		for b := range t.byteTok {
			t.byteTok[b] = -1
			if id, ok := t.ids[string([]byte{'<', '0', 'x', hex[b>>4], hex[b&15], '>'})]; ok {
				t.byteTok[b] = id
			} else if id, ok := t.ids[string([]byte{byte(b)})]; ok {
				t.byteTok[b] = id
			}
		}
	case modelBPE:
		if v.Merges == nil {
			return nil, errors.New("tokenizer: gpt2 vocabulary has no merges")
		}
		pre, ignore, err := lookupPre(v.Pre)
		if err != nil {
			return nil, err
		}
		t.pre, t.ignore = pre, ignore
		t.bpe = newBPETable(t.text, t.v.Merges)
	}

	t.pieces = make([][]byte, n)
	for i := range t.pieces {
		t.pieces[i] = t.makePiece(i)
	}
	return t, nil
}

func typeAttr(typ int32) attr {
	switch typ {
	case TypeNormal:
		return attrNormal
	case TypeUnknown:
		return attrUnknown
	case TypeControl:
		return attrControl
	case TypeUserDefined:
		return attrUserDefined
	case TypeUnused:
		return attrUnused
	case TypeByte:
		return attrByte
	}
	return 0 // undefined
}

// eogTexts are the texts llama.cpp treats as ending generation whatever
// their stored type; it also marks them as control tokens.
var eogTexts = map[string]bool{
	"<|eot_id|>": true, "<|im_end|>": true, "<|end|>": true, "<end_of_turn>": true,
	"<|endoftext|>": true, "<|eom_id|>": true, "<EOT>": true, "_<EOT>": true,
	"<|end_of_text|>": true, "<end_of_utterance>": true, "</s>": true, "<eos>": true,
}

func (t *Tokenizer) markEOG() {
	t.eog = make(map[int]bool)
	for i, s := range t.text {
		if eogTexts[s] {
			t.eog[i] = true
			t.attrs[i] |= attrControl
		}
	}
	if t.v.EOS >= 0 {
		t.eog[t.v.EOS] = true
	}
}

// parseByteToken reports the byte a token spelled "<0xXX>" stands for.
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	b, err := strconv.ParseUint(s[3:5], 16, 8)
	if err != nil {
		return 0, false
	}
	return byte(b), true
}

// Vocab returns the vocabulary the tokenizer was built from. It must not be
// modified.
func (t *Tokenizer) Vocab() *Vocab { return &t.v }

// Len returns the number of tokens in the vocabulary.
func (t *Tokenizer) Len() int { return len(t.text) }

// BOS returns the beginning-of-sequence token id, or -1.
func (t *Tokenizer) BOS() int { return t.v.BOS }

// EOS returns the end-of-sequence token id, or -1.
func (t *Tokenizer) EOS() int { return t.v.EOS }

// AddBOS reports whether the model expects BOS before a prompt. Encode
// never adds it; the caller does.
func (t *Tokenizer) AddBOS() bool { return t.v.AddBOS }

// IsControl reports whether id is a control token such as BOS or EOS. Ids
// out of range are not.
func (t *Tokenizer) IsControl(id int) bool {
	return id >= 0 && id < len(t.attrs) && t.attrs[id]&attrControl != 0
}

// IsEOG reports whether id ends generation: EOS, or a token llama.cpp
// recognises by its text as ending a turn ("<|im_end|>", "<|eot_id|>",
// "<|endoftext|>", "<end_of_turn>", ...).
func (t *Tokenizer) IsEOG(id int) bool { return t.eog[id] }

// Encode returns the token ids for text, without BOS or EOS. Text that
// spells a control token is encoded as ordinary text; user-defined tokens
// are matched literally (llama.cpp's parse_special=false). Invalid UTF-8 is
// an error naming the byte offset.
func (t *Tokenizer) Encode(text string) ([]int, error) {
	return t.encode(text, false)
}

// EncodeSpecial is Encode, except that text spelling a control token (for
// instance "<|im_start|>" in a chat template) becomes that token
// (llama.cpp's parse_special=true).
func (t *Tokenizer) EncodeSpecial(text string) ([]int, error) {
	return t.encode(text, true)
}

// Limits that keep every offset and id in an int32.
const (
	maxInput  = 1 << 28 // bytes of text Encode accepts
	maxTokens = 1 << 28 // tokens in a vocabulary
)

func (t *Tokenizer) encode(text string, parseSpecial bool) ([]int, error) {
	if len(text) > maxInput {
		return nil, fmt.Errorf("tokenizer: text of %d bytes is longer than the limit of %d", len(text), maxInput)
	}
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("tokenizer: invalid UTF-8 at byte offset %d", invalidOffset(text))
	}
	out := []int{}
	if text == "" {
		return out, nil
	}
	return t.encodeFragments(t.partition(text, parseSpecial))
}

func invalidOffset(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(s)
}

// fragment is either raw text (id < 0) or a token matched literally.
type fragment struct {
	text string
	id   int
}

// partition splits text around occurrences of special tokens, longest
// token first, as llama.cpp's tokenizer_st_partition does.
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	frags := []fragment{{text: text, id: -1}}
	for _, id := range t.special {
		if !parseSpecial && t.attrs[id]&(attrControl|attrUnknown) != 0 {
			continue
		}
		s := t.text[id]
		var next []fragment
		changed := false
		for _, f := range frags {
			if f.id >= 0 || !strings.Contains(f.text, s) {
				next = append(next, f)
				continue
			}
			changed = true
			rest := f.text
			for {
				i := strings.Index(rest, s)
				if i < 0 {
					break
				}
				if i > 0 {
					next = append(next, fragment{text: rest[:i], id: -1})
				}
				next = append(next, fragment{id: id})
				rest = rest[i+len(s):]
			}
			if rest != "" {
				next = append(next, fragment{text: rest, id: -1})
			}
		}
		if changed {
			frags = next
		}
	}
	return frags
}
