package bpe

import (
	"cmp"
	"slices"
	"strings"

	"wisp/engine/tokenizer"
	"wisp/internal/heap"
)

// trainer holds the state of one training run. Symbols are characters of
// the alphabet (ids 0 to len(chars)-1) and the pieces merged from them.
type trainer struct {
	opt Options

	syms   []string // text of each symbol
	symLen []int32  // its length in characters
	symID  map[string]int32

	chars     []int32 // symbol ids of the alphabet, most frequent first
	charCount []int64 // occurrences of each, in that order
	merged    []int32 // symbol ids of the merged pieces, in merge order

	words  [][]int32 // the symbols of each distinct word
	counts []int64   // how often each word occurs
	stamp  []int     // the last merge that visited each word, plus one

	pairs map[uint64]int64     // occurrences of each adjacent pair
	where map[uint64][]int32   // words a pair may occur in (may hold stale ids)
	queue heap.Heap[pairCount] // pair counts, the largest on top; stale entries skipped
	delta map[uint64]int64     // scratch: count changes of one merge
}

func pairKey(a, b int32) uint64      { return uint64(uint32(a))<<32 | uint64(uint32(b)) }
func splitKey(p uint64) (a, b int32) { return int32(uint32(p >> 32)), int32(uint32(p)) }

// newTrainer picks the alphabet, cuts the units into words of alphabet
// characters and counts their pairs.
func newTrainer(units map[string]int64, opt Options) *trainer {
	t := &trainer{
		opt:   opt,
		symID: make(map[string]int32),
		pairs: make(map[uint64]int64),
		where: make(map[uint64][]int32),
		delta: make(map[uint64]int64),
	}

	// The alphabet: the most frequent characters that fit.
	freq := make(map[rune]int64)
	for u, n := range units {
		for _, c := range u {
			freq[c] += n
		}
	}
	type charFreq struct {
		c rune
		n int64
	}
	cs := make([]charFreq, 0, len(freq))
	for c, n := range freq {
		cs = append(cs, charFreq{c, n})
	}
	slices.SortFunc(cs, func(a, b charFreq) int {
		if a.n != b.n {
			return cmp.Compare(b.n, a.n)
		}
		return cmp.Compare(a.c, b.c)
	})
	if room := opt.VocabSize - Fixed; len(cs) > room {
		cs = cs[:room]
	}
	for _, cf := range cs {
		id := t.addSymbol(string(cf.c), 1)
		t.chars = append(t.chars, id)
		t.charCount = append(t.charCount, cf.n)
	}

	// Words: the runs of alphabet characters in each unit, in the order of
	// the units' text so that symbol and word ids do not depend on map
	// order. Runs of one character cannot merge and are left out.
	keys := make([]string, 0, len(units))
	for u := range units {
		keys = append(keys, u)
	}
	slices.Sort(keys)
	var w []int32
	add := func(n int64) {
		if len(w) >= 2 {
			t.words = append(t.words, w)
			t.counts = append(t.counts, n)
		}
		w = nil
	}
	for _, u := range keys {
		n := units[u]
		for _, c := range u {
			id, ok := t.symID[string(c)]
			if !ok {
				add(n)
				continue
			}
			w = append(w, id)
		}
		add(n)
	}
	t.stamp = make([]int, len(t.words))

	for wi, w := range t.words {
		n := t.counts[wi]
		for i := 1; i < len(w); i++ {
			if p, ok := t.pair(w[i-1], w[i]); ok {
				t.pairs[p] += n
				t.note(p, int32(wi))
			}
		}
	}
	for p, n := range t.pairs {
		t.queue.Push(pairCount{p, n})
	}
	return t
}

func (t *trainer) addSymbol(s string, n int32) int32 {
	id := int32(len(t.syms))
	t.syms = append(t.syms, s)
	t.symLen = append(t.symLen, n)
	t.symID[s] = id
	return id
}

// pair returns the key of the pair a, b if merging it makes a piece no
// longer than the limit.
func (t *trainer) pair(a, b int32) (uint64, bool) {
	return pairKey(a, b), int(t.symLen[a]+t.symLen[b]) <= t.opt.MaxPieceLen
}

// note records that pair p occurs in word wi.
func (t *trainer) note(p uint64, wi int32) {
	ws := t.where[p]
	if len(ws) > 0 && ws[len(ws)-1] == wi {
		return
	}
	t.where[p] = append(ws, wi)
}

// room is the number of pieces the vocabulary has room for.
func (t *trainer) room() int { return t.opt.VocabSize - Fixed - len(t.chars) }

// run merges the most frequent pair until the vocabulary is full or no
// pair is left.
func (t *trainer) run() {
	total := t.room()
	if t.opt.Progress != nil {
		t.opt.Progress(0, total)
	}
	for step := 0; len(t.merged) < total; step++ {
		p, ok := t.best()
		if !ok {
			return
		}
		if t.merge(p, step) && t.opt.Progress != nil {
			t.opt.Progress(len(t.merged), total)
		}
	}
}

// best pops the most frequent pair, skipping stale queue entries: every
// change of a pair's count pushes an entry with the new count, so an entry
// whose count differs from the current one can be dropped.
func (t *trainer) best() (uint64, bool) {
	for t.queue.Len() > 0 {
		e := t.queue.Pop()
		if n := t.pairs[e.pair]; n > 0 && n == e.count {
			return e.pair, true
		}
	}
	return 0, false
}

// merge replaces every occurrence of pair p by one symbol, updating the
// pair counts. It reports whether the symbol is a new token: it is not
// when another pair already made the same text ("ab"+"c" and "a"+"bc").
func (t *trainer) merge(p uint64, step int) bool {
	a, b := splitKey(p)
	s := t.syms[a] + t.syms[b]
	c, exists := t.symID[s]
	if !exists {
		c = t.addSymbol(s, t.symLen[a]+t.symLen[b])
		t.merged = append(t.merged, c)
	}

	clear(t.delta)
	for _, wi := range t.where[p] {
		if t.stamp[wi] == step+1 {
			continue
		}
		t.stamp[wi] = step + 1
		w, n := t.words[wi], t.counts[wi]
		if !hasPair(w, a, b) {
			continue // stale
		}
		for i := 1; i < len(w); i++ {
			if q, ok := t.pair(w[i-1], w[i]); ok {
				t.delta[q] -= n
			}
		}
		// Merge left to right in place: the word only gets shorter.
		j := 0
		for i := 0; i < len(w); i++ {
			if i+1 < len(w) && w[i] == a && w[i+1] == b {
				w[j] = c
				i++
			} else {
				w[j] = w[i]
			}
			j++
		}
		w = w[:j]
		t.words[wi] = w
		for i := 1; i < len(w); i++ {
			if q, ok := t.pair(w[i-1], w[i]); ok {
				t.delta[q] += n
				if w[i-1] == c || w[i] == c {
					t.note(q, int32(wi))
				}
			}
		}
	}
	delete(t.where, p)
	for q, d := range t.delta {
		if d == 0 {
			continue
		}
		n := t.pairs[q] + d
		if n <= 0 {
			delete(t.pairs, q)
			delete(t.where, q)
			continue
		}
		t.pairs[q] = n
		t.queue.Push(pairCount{q, n})
	}
	return !exists
}

func hasPair(w []int32, a, b int32) bool {
	for i := 1; i < len(w); i++ {
		if w[i-1] == a && w[i] == b {
			return true
		}
	}
	return false
}

// vocab lays out the tokens: fixed ones, merged pieces, characters.
func (t *trainer) vocab() *tokenizer.Vocab {
	n := Fixed + len(t.merged) + len(t.chars)
	v := &tokenizer.Vocab{
		Model:          "llama",
		Tokens:         make([]string, 0, n),
		Scores:         make([]float32, 0, n),
		Types:          make([]int32, 0, n),
		BOS:            BOS,
		EOS:            EOS,
		UNK:            UNK,
		PAD:            -1,
		AddBOS:         true,
		AddSpacePrefix: true,
	}
	add := func(s string, score float32, typ int32) {
		v.Tokens = append(v.Tokens, s)
		v.Scores = append(v.Scores, score)
		v.Types = append(v.Types, typ)
	}
	add("<unk>", 0, tokenizer.TypeUnknown)
	add("<s>", 0, tokenizer.TypeControl)
	add("</s>", 0, tokenizer.TypeControl)
	const hex = "0123456789ABCDEF"
	for b := range 256 {
		add("<0x"+string([]byte{hex[b>>4], hex[b&15]})+">", 0, tokenizer.TypeByte)
	}
	for i, id := range t.merged {
		add(t.syms[id], -float32(i), tokenizer.TypeNormal)
	}
	for i, id := range t.chars {
		add(t.syms[id], -float32(len(t.merged)+i), tokenizer.TypeNormal)
	}
	return v
}

// segments returns each word's final symbols as text with its count, for
// tests.
func (t *trainer) segments() map[string][]string {
	out := make(map[string][]string, len(t.words))
	for _, w := range t.words {
		var b strings.Builder
		parts := make([]string, len(w))
		for i, id := range w {
			parts[i] = t.syms[id]
			b.WriteString(parts[i])
		}
		out[b.String()] = parts
	}
	return out
}

// pairCount is a queue entry: a pair and its count when pushed.
type pairCount struct {
	pair  uint64
	count int64
}

// Before orders entries: larger count first, then the pair of older
// symbols (smaller ids), which keeps training deterministic.
func (x pairCount) Before(y pairCount) bool {
	if x.count != y.count {
		return x.count > y.count
	}
	return x.pair < y.pair
}
