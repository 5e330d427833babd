package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// makePiece computes what token id decodes to, as llama.cpp's
// token_to_piece with special=false.
func (t *Tokenizer) makePiece(id int) []byte {
	a, s := t.attrs[id], t.v.Tokens[id]
	switch {
	case a&(attrControl|attrUnknown) != 0:
		return nil
	case a&attrUserDefined != 0:
		return []byte(s)
	case a&attrNormal != 0:
		if t.model == modelSPM {
			return []byte(strings.ReplaceAll(s, "\u2581", " "))
		}
		// Characters outside GPT-2's byte alphabet are kept as they are
		// (llama.cpp writes an "[UNK_BYTE_...]" marker instead).
		var b []byte
		for _, r := range s {
			if c, ok := runeToByte[r]; ok {
				b = append(b, c)
			} else {
				b = utf8.AppendRune(b, r)
			}
		}
		return b
	case a&attrByte != 0:
		if c, ok := parseByteToken(s); ok {
			return []byte{c}
		}
		return []byte(s)
	}
	return nil // unused or undefined
}

// Piece returns the bytes token id stands for: for llama, U+2581 becomes a
// space and byte tokens such as "<0x0A>" their byte; for gpt2, each
// character becomes the byte it encodes. Control and unknown tokens, unused
// tokens and ids out of range give nil. A piece need not be valid UTF-8 on
// its own. The result must not be modified.
func (t *Tokenizer) Piece(id int) []byte {
	if id < 0 || id >= len(t.pieces) {
		return nil
	}
	return t.pieces[id]
}

// Decode returns the concatenated pieces of ids, with bytes that do not
// form valid UTF-8 replaced by U+FFFD, exactly as a Decoder fed the same ids
// and then flushed would. It adds nothing and removes nothing: for llama
// vocabularies with AddSpacePrefix, Decode(Encode(s)) is " "+s (llama.cpp's
// llama_detokenize drops that space, and for gpt2 vocabularies also tidies
// spaces before punctuation; Decode does neither).
func (t *Tokenizer) Decode(ids []int) string {
	d := t.NewDecoder()
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(d.Next(id))
	}
	b.WriteString(d.Flush())
	return b.String()
}

// Decoder turns a stream of token ids into text. It holds back the bytes of
// a UTF-8 sequence split across tokens until the sequence is complete, so
// that every string it returns is valid UTF-8.
type Decoder struct {
	t       *Tokenizer
	pending []byte // the start of an incomplete sequence, at most 3 bytes
}

// NewDecoder returns a Decoder with nothing pending.
func (t *Tokenizer) NewDecoder() *Decoder {
	return &Decoder{t: t, pending: make([]byte, 0, 2*utf8.UTFMax)}
}

// Next returns the text completed by token id: "" while a multi-byte
// character is still incomplete. Bytes that can never start or continue a
// valid sequence come out as U+FFFD.
func (d *Decoder) Next(id int) string {
	p := d.t.Piece(id)
	if len(d.pending) == 0 && utf8.Valid(p) {
		return string(p) // the common case
	}
	return d.drain(p, false)
}

// Flush returns whatever is pending, an incomplete sequence as U+FFFD, and
// leaves the Decoder empty.
func (d *Decoder) Flush() string {
	return d.drain(nil, true)
}

func (d *Decoder) drain(p []byte, final bool) string {
	buf := append(d.pending, p...)
	var b strings.Builder
	i := 0
	for i < len(buf) {
		rest := buf[i:]
		if !utf8.FullRune(rest) { // a valid start of a sequence, not yet complete
			if !final {
				break
			}
			b.WriteString("\uFFFD")
			i = len(buf)
			break
		}
		r, n := utf8.DecodeRune(rest)
		if r == utf8.RuneError && n == 1 {
			// One U+FFFD for the longest prefix of a valid sequence, else for
			// the single bad byte.
			for j := min(len(rest), utf8.UTFMax) - 1; j >= 2; j-- {
				if !utf8.FullRune(rest[:j]) {
					n = j
					break
				}
			}
			b.WriteString("\uFFFD")
		} else {
			b.Write(rest[:n])
		}
		i += n
	}
	d.pending = append(d.pending[:0], buf[i:]...)
	return b.String()
}
