package tokenizer

import (
	"strings"

	"wisp/internal/heap"
)

// GPT-2 maps every byte to a printable character so that byte strings can
// be written as text: printable Latin-1 bytes stand for themselves, and the
// other 68 bytes (controls, space, 0x7F-0xA0, 0xAD) take the characters from
// U+0100 on, in byte order.
var byteToRune, runeToByte = byteMaps()

func byteMaps() ([256]rune, map[rune]byte) {
	var enc [256]rune
	dec := make(map[rune]byte, 256)
	n := rune(0)
	for b := 0; b < 256; b++ {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE {
			enc[b] = rune(b)
		} else {
			enc[b] = 256 + n
			n++
		}
		dec[enc[b]] = byte(b)
	}
	return enc, dec
}

// bpeMerge is what merging a pair gives: its rank (lower merges first) and
// the interned string of the result.
type bpeMerge struct {
	rank, result int32
}

// bpeTable holds the merges with every string interned, so that merging
// needs no string building: ids below len(tokens) are the token ids.
type bpeTable struct {
	intern  map[string]int32
	nTokens int32
	merges  map[[2]int32]bpeMerge
	byteSym [256]int32 // interned id of each byte's character, -1 if none
	byteStr [256]string
}

func newBPETable(tokens []string, merges []string) *bpeTable {
	b := &bpeTable{
		intern:  make(map[string]int32, len(tokens)+len(merges)/8),
		nTokens: int32(len(tokens)),
		merges:  make(map[[2]int32]bpeMerge, len(merges)),
	}
	for i, s := range tokens {
		b.intern[s] = int32(i)
	}
	get := func(s string) int32 {
		id, ok := b.intern[s]
		if !ok {
			id = int32(len(b.intern))
			b.intern[s] = id
		}
		return id
	}
	for rank, m := range merges {
		// As llama.cpp: split at the first space after the first byte.
		if len(m) < 2 {
			continue
		}
		i := strings.IndexByte(m[1:], ' ')
		if i < 0 {
			continue
		}
		left, right := m[:i+1], m[i+2:]
		key := [2]int32{get(left), get(right)}
		if _, dup := b.merges[key]; !dup {
			b.merges[key] = bpeMerge{rank: int32(rank), result: get(left + right)}
		}
	}
	for c := range b.byteSym {
		b.byteStr[c] = string(byteToRune[c])
		b.byteSym[c] = -1
		if id, ok := b.intern[b.byteStr[c]]; ok {
			b.byteSym[c] = id
		}
	}
	return b
}

type bpeSymbol struct {
	symbol
	id int32 // interned string, -1 if none
}

// encodeBPE appends the tokens of one raw-text fragment: the pre-tokenizer
// splits it into words, and within each word the bytes (as GPT-2
// characters) are merged lowest rank first.
func (t *Tokenizer) encodeBPE(out []int, frag string) []int {
	tb := t.bpe
	var syms []bpeSymbol
	var q heap.Heap[candidate]
	add := func(left, right int32) {
		if left < 0 || right < 0 {
			return
		}
		l, r := syms[left], syms[right]
		if l.id < 0 || r.id < 0 {
			return
		}
		if m, ok := tb.merges[[2]int32{l.id, r.id}]; ok {
			q.Push(candidate{key: bpeKey(m.rank, left), size: l.n + r.n, result: m.result})
		}
	}
	var enc strings.Builder
	for _, w := range t.pre.split(frag) {
		word := frag[w[0]:w[1]]
		if t.ignore {
			enc.Reset()
			for i := 0; i < len(word); i++ {
				enc.WriteString(tb.byteStr[word[i]])
			}
			if id, ok := t.ids[enc.String()]; ok {
				out = append(out, id)
				continue
			}
		}
		syms = syms[:0]
		for i := int32(0); i < int32(len(word)); i++ {
			syms = append(syms, bpeSymbol{symbol{start: i, n: 1, prev: i - 1, next: i + 1}, tb.byteSym[word[i]]})
		}
		syms[len(syms)-1].next = -1
		q.Reset()
		for i := int32(1); i < int32(len(syms)); i++ {
			add(i-1, i)
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
			l.id = c.result
			r.n = 0
			l.next = r.next
			if r.next >= 0 {
				syms[r.next].prev = left
			}
			add(l.prev, left)
			add(left, l.next)
		}
		for i := int32(0); i != -1; i = syms[i].next {
			s := syms[i]
			if s.id >= 0 && s.id < tb.nTokens {
				out = append(out, int(s.id))
				continue
			}
			// Not a token: llama.cpp then looks up each byte of the
			// symbol's GPT-2 spelling as a one-byte token, skipping misses.
			for _, c := range []byte(word[s.start : s.start+s.n]) {
				e := tb.byteStr[c]
				for j := 0; j < len(e); j++ {
					if id, ok := t.ids[e[j:j+1]]; ok {
						out = append(out, id)
					}
				}
			}
		}
	}
	return out
}
