package tokenizer

import (
	"fmt"
	"unicode"
)

// A stage refines a split of the text into chunks (lengths in runes) into a
// finer split. A pre-tokenizer is a list of stages, applied in order to the
// whole text as one chunk, like the list of regular expressions llama.cpp
// applies in unicode_regex_split. Go's regexp has no lookahead, so each
// expression is written out by hand.
type stage func(rs []rune, fl []uint8, chunks []int) []int

type preTokenizer []stage

// Character classes of a rune, precomputed once per text.
const (
	fValid  uint8 = 1 << iota // inside the chunk being split
	fLetter                   // \p{L}
	fNumber                   // \p{N}
	fSpace                    // \s
)

func runeFlags(r rune) uint8 {
	f := fValid
	switch {
	case unicode.IsLetter(r):
		f |= fLetter
	case unicode.IsNumber(r):
		f |= fNumber
	}
	if unicode.IsSpace(r) {
		f |= fSpace
	}
	return f
}

// Regular expressions of the pre-tokenizers, as llama.cpp spells them.
const (
	// reGPT2 is GPT-2's: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
	reGPT2 = "gpt2"
	// reLlama3 is Llama 3's: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
	reLlama3 = "llama3"
)

// lookupPre returns the pre-tokenizer llama.cpp uses for the value of
// tokenizer.ggml.pre, and whether it sets ignore_merges.
func lookupPre(name string) (preTokenizer, bool, error) {
	switch name {
	case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
		"a.x-4.0", "mellum", "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe",
		"mpt", "olmo", "jais", "trillion", "granite-docling", "exaone4":
		return preTokenizer{splitGPT2}, false, nil
	case "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2":
		// \p{N}, then GPT-2's expression: every digit is a word of its own.
		return preTokenizer{splitEach(isNumberAt), splitGPT2}, false, nil
	case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano":
		return preTokenizer{splitLlama3(3)}, true, nil
	case "dbrx", "smaug-bpe":
		return preTokenizer{splitLlama3(3)}, false, nil
	case "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open":
		// Llama 3's expression with \p{N} in place of \p{N}{1,3}.
		return preTokenizer{splitLlama3(1)}, false, nil
	case "", "default":
		// [\p{P}\$\+<=>\^~\|]+, GPT-2's expression, \p{N}+, [0-9][0-9][0-9]
		return preTokenizer{splitEach(defaultPunctRun), splitGPT2, splitEach(numberRun), splitEach(asciiDigits3)}, false, nil
	}
	return nil, false, fmt.Errorf("tokenizer: unsupported pre-tokenizer %q", name)
}

// split returns the words of s as byte ranges [start, end).
func (p preTokenizer) split(s string) [][2]int {
	rs := []rune(s)
	fl := make([]uint8, len(rs))
	for i, r := range rs {
		fl[i] = runeFlags(r)
	}
	chunks := []int{len(rs)}
	for _, st := range p {
		chunks = st(rs, fl, chunks)
	}
	words := make([][2]int, 0, len(chunks))
	ri, bi := 0, 0
	for _, n := range chunks {
		start := bi
		for _, r := range rs[ri : ri+n] {
			bi += runeLen(r)
		}
		ri += n
		words = append(words, [2]int{start, bi})
	}
	return words
}

func runeLen(r rune) int {
	switch {
	case r < 0x80:
		return 1
	case r < 0x800:
		return 2
	case r < 0x10000:
		return 3
	}
	return 4
}

// chunker walks one chunk [ini, end) and records the words it cuts.
type chunker struct {
	rs       []rune
	fl       []uint8
	ini, end int
	prev     int
	out      []int
}

func (c *chunker) flags(p int) uint8 {
	if p >= c.ini && p < c.end {
		return c.fl[p]
	}
	return 0
}

func (c *chunker) at(p int) rune {
	if p >= c.ini && p < c.end {
		return c.rs[p]
	}
	return -1
}

// cut ends the current word at end.
func (c *chunker) cut(end int) {
	if end > c.prev {
		c.out = append(c.out, end-c.prev)
	}
	c.prev = end
}

func forChunks(rs []rune, fl []uint8, chunks []int, f func(c *chunker)) []int {
	c := &chunker{rs: rs, fl: fl, out: make([]int, 0, len(chunks))}
	start := 0
	for _, n := range chunks {
		c.ini, c.end, c.prev = start, start+n, start
		f(c)
		start += n
	}
	return c.out
}

// contraction returns the length of 's 't 're 've 'm 'll 'd at pos, or 0.
func (c *chunker) contraction(pos int, fold bool) int {
	if c.at(pos) != '\'' || pos+1 >= c.end {
		return 0
	}
	lower := func(r rune) rune {
		if fold {
			return unicode.ToLower(r)
		}
		return r
	}
	switch lower(c.at(pos + 1)) {
	case 's', 't', 'm', 'd':
		return 2
	}
	if pos+2 >= c.end {
		return 0
	}
	a, b := lower(c.at(pos+1)), lower(c.at(pos+2))
	if (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l') {
		return 3
	}
	return 0
}

// whitespace handles \s+(?!\S)|\s+ at pos, returning the new position.
func (c *chunker) whitespace(pos int) int {
	n := 0
	for c.flags(pos+n)&fSpace != 0 {
		n++
	}
	switch {
	case n > 1 && pos+n < c.end: // \s+(?!\S): leave the last one to the next word
		return pos + n - 1
	case n > 0:
		return pos + n
	}
	return pos + 1 // no match: the character is a word by itself
}

const fWord = fLetter | fNumber | fSpace

// splitGPT2 applies 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func splitGPT2(rs []rune, fl []uint8, chunks []int) []int {
	return forChunks(rs, fl, chunks, func(c *chunker) {
		for pos := c.ini; pos < c.end; {
			if n := c.contraction(pos, false); n > 0 {
				pos += n
				c.cut(pos)
				continue
			}
			r := c.at(pos)
			f := c.flags(pos)
			if r == ' ' {
				f = c.flags(pos + 1)
			}
			var class uint8
			switch {
			case f&fLetter != 0:
				class = fLetter
			case f&fNumber != 0:
				class = fNumber
			case f&fWord == 0 && f&fValid != 0:
				class = 0 // [^\s\p{L}\p{N}]
			default:
				pos = c.whitespace(pos)
				c.cut(pos)
				continue
			}
			if r == ' ' {
				pos++
			}
			for {
				g := c.flags(pos)
				if class != 0 && g&class == 0 || class == 0 && (g&fWord != 0 || g&fValid == 0) {
					break
				}
				pos++
			}
			c.cut(pos)
		}
	})
}

// splitLlama3 applies Llama 3's expression, with \p{N}{1,maxDigits}:
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitLlama3(maxDigits int) stage {
	return func(rs []rune, fl []uint8, chunks []int) []int {
		return forChunks(rs, fl, chunks, func(c *chunker) {
			for pos := c.ini; pos < c.end; {
				if n := c.contraction(pos, true); n > 0 {
					pos += n
					c.cut(pos)
					continue
				}
				r := c.at(pos)
				f := c.flags(pos)
				// [^\r\n\p{L}\p{N}]?\p{L}+
				if r != '\r' && r != '\n' && f&fNumber == 0 && (f&fLetter != 0 || c.flags(pos+1)&fLetter != 0) {
					pos++
					for c.flags(pos)&fLetter != 0 {
						pos++
					}
					c.cut(pos)
					continue
				}
				// \p{N}{1,maxDigits}
				if f&fNumber != 0 {
					start := pos
					for c.flags(pos)&fNumber != 0 {
						pos++
						if pos-start >= maxDigits {
							c.cut(pos)
							start = pos
						}
					}
					c.cut(pos)
					continue
				}
				// ?[^\s\p{L}\p{N}]+[\r\n]*
				f2 := f
				if r == ' ' {
					f2 = c.flags(pos + 1)
				}
				if f2&fWord == 0 {
					if r == ' ' {
						pos++
					}
					for g := c.flags(pos); g&fWord == 0 && g&fValid != 0; g = c.flags(pos) {
						pos++
					}
					for c.at(pos) == '\r' || c.at(pos) == '\n' {
						pos++
					}
					c.cut(pos)
					continue
				}
				// \s*[\r\n]+
				lastNL := -1
				for n := 0; c.flags(pos+n)&fSpace != 0; n++ {
					if r := c.at(pos + n); r == '\r' || r == '\n' {
						lastNL = pos + n + 1
					}
				}
				if lastNL > 0 {
					pos = lastNL
				} else {
					pos = c.whitespace(pos)
				}
				c.cut(pos)
			}
		})
	}
}

// splitEach cuts every match of a simple expression out of each chunk,
// leaving the text between matches as words too. match returns the length
// of the match at pos, or 0.
func splitEach(match func(c *chunker, pos int) int) stage {
	return func(rs []rune, fl []uint8, chunks []int) []int {
		return forChunks(rs, fl, chunks, func(c *chunker) {
			for pos := c.ini; pos < c.end; {
				if n := match(c, pos); n > 0 {
					c.cut(pos)
					pos += n
					c.cut(pos)
					continue
				}
				pos++
			}
			c.cut(c.end)
		})
	}
}

// isNumberAt matches \p{N}.
func isNumberAt(c *chunker, pos int) int {
	if c.flags(pos)&fNumber != 0 {
		return 1
	}
	return 0
}

// numberRun matches \p{N}+.
func numberRun(c *chunker, pos int) int {
	n := 0
	for c.flags(pos+n)&fNumber != 0 {
		n++
	}
	return n
}

// defaultPunctRun matches [\p{P}\$\+<=>\^~\|]+ as llama.cpp evaluates it:
// ASCII punctuation and symbols except the backquote, and any other
// character of category P.
func defaultPunctRun(c *chunker, pos int) int {
	n := 0
	for {
		r := c.at(pos + n)
		if r < 0 {
			return n
		}
		if r < 0x80 {
			if r == '`' || !unicode.IsPunct(r) && !unicode.IsSymbol(r) {
				return n
			}
		} else if unicode.IsSpace(r) || !unicode.IsPunct(r) {
			return n
		}
		n++
	}
}

// asciiDigits3 matches [0-9][0-9][0-9].
func asciiDigits3(c *chunker, pos int) int {
	for i := 0; i < 3; i++ {
		if r := c.at(pos + i); r < '0' || r > '9' {
			return 0
		}
	}
	return 3
}
