package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"wisp/internal/heap"
)

// symbol is a span of the text being merged, linked to its neighbours.
type symbol struct {
	start, n   int32
	prev, next int32
}

// encodeSPM appends the tokens of one raw-text fragment: spaces become
// U+2581 (with one prepended if prefix), every character starts as its own
// symbol, and the adjacent pair whose concatenation is the best-scoring
// token is merged until no pair forms a token. Symbols that are not tokens
// are spelled with byte tokens.
func (t *Tokenizer) encodeSPM(out []int, frag string, prefix bool) ([]int, error) {
	var b strings.Builder
	b.Grow(len(frag) + 2*strings.Count(frag, " ") + 3)
	if prefix {
		b.WriteString("\u2581")
	}
	for _, r := range frag {
		if r == ' ' {
			b.WriteString("\u2581")
		} else {
			b.WriteRune(r)
		}
	}
	text := b.String()

	syms := make([]symbol, 0, len(text))
	for off := 0; off < len(text); {
		_, n := utf8.DecodeRuneInString(text[off:])
		i := int32(len(syms))
		syms = append(syms, symbol{start: int32(off), n: int32(n), prev: i - 1, next: i + 1})
		off += n
	}
	syms[len(syms)-1].next = -1

	q := heap.New[candidate](len(syms))
	try := func(left, right int32) {
		if left < 0 || right < 0 {
			return
		}
		l, r := syms[left], syms[right]
		s := text[l.start : l.start+l.n+r.n]
		if id, ok := t.ids[s]; ok {
			q.Push(candidate{key: spmKey(t.scores[id], left), size: int32(len(s))})
		}
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		try(i-1, i)
	}
	for q.Len() > 0 {
		c := q.Pop()
		left := c.left()
		l := &syms[left]
		if l.n == 0 || l.next < 0 || l.n+syms[l.next].n != c.size {
			continue // stale: one side was merged since
		}
		r := &syms[l.next]
		l.n += r.n
		r.n = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = left
		}
		try(l.prev, left)
		try(left, l.next)
	}

	for i := int32(0); i != -1; i = syms[i].next {
		s := text[syms[i].start : syms[i].start+syms[i].n]
		if id, ok := t.ids[s]; ok {
			out = append(out, id)
			continue
		}
		for j := 0; j < len(s); j++ {
			id := t.byteTok[s[j]]
			if id < 0 {
				id = t.v.UNK
			}
			if id < 0 {
				return nil, fmt.Errorf("tokenizer: no token for byte 0x%02X and no unknown token", s[j])
			}
			out = append(out, id)
		}
	}
	return out, nil
}
