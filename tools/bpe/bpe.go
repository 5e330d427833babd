// Package bpe trains SentencePiece-style BPE vocabularies ("llama" in GGUF)
// from plain text, for wisp's tokenizer.
//
// The text is read the way the tokenizer will encode it in one piece: a
// space is prepended (AddSpacePrefix), every space becomes U+2581 ("▁"),
// and the text is cut into units that a piece never spans:
//
//   - a unit starts at every "▁", which stays at its head, so "▁the" can be
//     a piece but "e▁t" cannot;
//   - letters (with combining marks), digits and other characters
//     (punctuation, symbols) form separate units, as SentencePiece's
//     split_by_unicode_script and split_by_number do: "earth." is "earth"
//     then ".", and "Jn3" is "Jn" then "3";
//   - control characters such as "\n" and "\t" stand alone and are left to
//     the byte tokens ("<0x0A>"), as in Llama's vocabulary; other
//     non-ASCII spaces stand alone too. The word after a line break has no
//     "▁", as Encode sees it ("\nAnd" is "<0x0A>", "And").
//
// Every character of the text except control characters becomes a token,
// the most frequent ones when there is no room for all (the rest are left
// to the byte tokens). Then the most frequent adjacent pair of symbols is
// merged, again and again, until the vocabulary is full; the i-th new
// piece (from 0) is scored -i, so that the tokenizer's highest-score-first
// merging replays the training merges, as with a vocabulary SentencePiece
// trains with model_type=bpe. Ties go to the pair whose symbols were made
// first, so the same text always gives the same vocabulary.
package bpe

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"

	"wisp/engine/tokenizer"
)

// Token ids of the fixed tokens at the start of every vocabulary Train
// makes; the byte tokens "<0x00>" to "<0xFF>" follow them.
const (
	UNK = 0 // "<unk>"
	BOS = 1 // "<s>"
	EOS = 2 // "</s>"

	// FirstByte is the id of "<0x00>"; byte b has id FirstByte+b.
	FirstByte = 3
	// Fixed is the number of fixed tokens: <unk>, <s>, </s> and the 256
	// byte tokens. Learned characters and pieces start at this id.
	Fixed = FirstByte + 256
)

// Limits on the options.
const (
	// MaxVocabSize is the largest vocabulary Train makes, small enough
	// that every score -i is exact in a float32.
	MaxVocabSize = 1 << 22
	// DefaultMaxPieceLen is the longest piece, in characters, when
	// Options.MaxPieceLen is 0 (SentencePiece's default).
	DefaultMaxPieceLen = 16
	// MaxUnitLen is the longest unit, in characters: longer runs of
	// letters, digits or other characters are cut into units this long,
	// so pieces do not span the cuts.
	MaxUnitLen = 256
)

// ErrShort is wrapped by the error Train returns, together with the
// vocabulary it made, when the text runs out of pairs to merge before the
// vocabulary reaches Options.VocabSize.
var ErrShort = errors.New("bpe: text has too few distinct pairs for the vocabulary size")

// Options control Train.
type Options struct {
	// VocabSize is the number of tokens wanted, counting the Fixed ones:
	// at least Fixed, at most MaxVocabSize.
	VocabSize int
	// MaxPieceLen is the longest piece a merge may make, in characters
	// (a leading "▁" counts): 0 means DefaultMaxPieceLen; at most
	// MaxUnitLen.
	MaxPieceLen int
	// Progress, if not nil, is called with (0, total) once the text is
	// read, and then after each merge that adds a token with the number of
	// such merges so far; total is the number the vocabulary has room for.
	// It is called on the goroutine that called Train.
	Progress func(done, total int)
}

// Train reads text from r and returns a vocabulary of opt.VocabSize tokens:
// "<unk>" (id UNK, type unknown), "<s>" (BOS) and "</s>" (EOS) as control
// tokens; the byte tokens "<0x00>" to "<0xFF>" (type byte, from id
// FirstByte); the learned pieces in the order they were merged, scored 0,
// -1, -2, ...; and the characters of the text, most frequent first, scored
// below every piece. AddBOS and AddSpacePrefix are set, PAD is -1.
//
// When the text runs out of pairs first, Train returns the smaller
// vocabulary together with an error wrapping ErrShort. Other errors (bad
// options, invalid UTF-8, a failing reader) come with a nil vocabulary.
func Train(r io.Reader, opt Options) (*tokenizer.Vocab, error) {
	if opt.VocabSize < Fixed || opt.VocabSize > MaxVocabSize {
		return nil, fmt.Errorf("bpe: vocabulary size %d is outside [%d, %d]", opt.VocabSize, Fixed, MaxVocabSize)
	}
	if opt.MaxPieceLen == 0 {
		opt.MaxPieceLen = DefaultMaxPieceLen
	}
	if opt.MaxPieceLen < 1 || opt.MaxPieceLen > MaxUnitLen {
		return nil, fmt.Errorf("bpe: maximum piece length %d is outside [1, %d]", opt.MaxPieceLen, MaxUnitLen)
	}
	units, err := countUnits(r)
	if err != nil {
		return nil, err
	}
	t := newTrainer(units, opt)
	t.run()
	v := t.vocab()
	if n := len(v.Tokens); n < opt.VocabSize {
		return v, fmt.Errorf("%w: %d tokens of the %d asked (%d pieces merged)", ErrShort, n, opt.VocabSize, len(t.merged))
	}
	return v, nil
}

// Character classes: a unit holds characters of one class.
const (
	classNone   = iota // a unit that is only "▁" so far
	classLetter        // letters and combining marks
	classDigit         // numbers
	classOther         // punctuation, symbols, anything else
)

func classOf(r rune) int {
	switch {
	case unicode.IsLetter(r) || unicode.IsMark(r):
		return classLetter
	case unicode.IsNumber(r):
		return classDigit
	}
	return classOther
}

// countUnits reads the text and counts its distinct units, each spelled
// with "▁" for spaces. Control characters are not counted.
func countUnits(r io.Reader) (map[string]int64, error) {
	units := make(map[string]int64)
	br := bufio.NewReaderSize(r, 1<<16)
	var (
		unit  []byte
		runes int   // characters in unit
		class int   // class of unit's characters after any leading "▁"
		off   int64 // byte offset of the next rune
	)
	flush := func() {
		if len(unit) > 0 {
			units[string(unit)]++
		}
		unit, runes, class = unit[:0], 0, classNone
	}
	// The space the tokenizer prepends.
	unit = append(unit, "\u2581"...)
	runes = 1
	for {
		c, size, err := br.ReadRune()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bpe: reading text at byte offset %d: %w", off, err)
		}
		if c == utf8.RuneError && size == 1 {
			return nil, fmt.Errorf("bpe: invalid UTF-8 at byte offset %d", off)
		}
		off += int64(size)
		switch {
		case c == ' ' || c == '\u2581':
			flush()
			unit = append(unit, "\u2581"...)
			runes = 1
		case unicode.IsControl(c):
			flush()
		case unicode.IsSpace(c):
			flush()
			unit = utf8.AppendRune(unit, c)
			flush()
		default:
			k := classOf(c)
			if class != classNone && k != class || runes >= MaxUnitLen {
				flush()
			}
			unit = utf8.AppendRune(unit, c)
			runes++
			class = k
		}
	}
	if off == 0 {
		return units, nil // no text, no space prefix
	}
	flush()
	return units, nil
}
