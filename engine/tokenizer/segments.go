package tokenizer

import "fmt"

// Segment is a piece of text to encode with EncodeSegments, and whether
// special tokens may be recognised in it.
type Segment struct {
	Text string
	// Special is true for trusted text, such as what a chat template
	// writes: the text of control tokens ("<|im_start|>", "</s>") becomes
	// those tokens, as with EncodeSpecial. It is false (the zero value, so
	// the safe default) for text from users, encoded as Encode does:
	// control tokens are never recognised in it.
	Special bool
}

// EncodeSegments returns the token ids of the segments' concatenated text,
// without BOS or EOS, recognising control tokens only inside segments
// marked Special, and never across a segment boundary. The plain text
// around and between the special tokens is encoded as one run, as if the
// segments had been one string, so that the result equals
// EncodeSpecial(whole text) whenever no non-Special segment spells a
// special token. That is the prompt-injection boundary of chat: message
// content in non-Special segments can spell "<|im_end|>" but cannot
// produce the control token.
//
// As in Encode, user-defined tokens (type 4, which decode as spelled and
// are not control tokens) are matched literally in every segment.
func (t *Tokenizer) EncodeSegments(segs []Segment) ([]int, error) {
	total := 0
	for i, s := range segs {
		total += len(s.Text)
		if total > maxInput {
			return nil, fmt.Errorf("tokenizer: text of more than %d bytes is longer than the limit of %d", total, maxInput)
		}
		if off := invalidOffset(s.Text); off < len(s.Text) {
			return nil, fmt.Errorf("tokenizer: segment %d: invalid UTF-8 at byte offset %d", i, off)
		}
	}
	// Partition each segment, then join the raw text of neighbours.
	var frags []fragment
	var raw []byte
	flush := func() {
		if len(raw) > 0 {
			frags = append(frags, fragment{text: string(raw), id: -1})
			raw = raw[:0]
		}
	}
	for _, s := range segs {
		if s.Text == "" {
			continue
		}
		for _, f := range t.partition(s.Text, s.Special) {
			if f.id >= 0 {
				flush()
				frags = append(frags, f)
				continue
			}
			raw = append(raw, f.text...)
		}
	}
	flush()
	return t.encodeFragments(frags)
}

// encodeFragments encodes partitioned text: special tokens as their ids,
// the text between them with the vocabulary's model.
func (t *Tokenizer) encodeFragments(frags []fragment) ([]int, error) {
	out := []int{}
	var err error
	switch t.model {
	case modelSPM:
		prevSpecial := true // the text start counts as following a special token
		for _, f := range frags {
			if f.id >= 0 {
				out = append(out, f.id)
				prevSpecial = true
				continue
			}
			out, err = t.encodeSPM(out, f.text, t.v.AddSpacePrefix && prevSpecial)
			if err != nil {
				return nil, err
			}
			prevSpecial = false
		}
	case modelBPE:
		for _, f := range frags {
			if f.id >= 0 {
				out = append(out, f.id)
				continue
			}
			out = t.encodeBPE(out, f.text)
		}
	}
	return out, nil
}
