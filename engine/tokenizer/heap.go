package tokenizer

import "math"

// A candidate merge of two adjacent symbols. The left symbol's index is in
// the low 32 bits of key, the priority above it, so that the least key is
// the merge to make next and ties go to the leftmost pair. The right
// symbol is whatever follows the left one when the merge is taken; size
// (the pair's length in bytes when queued) tells whether either side has
// changed since.
type candidate struct {
	key    uint64
	size   int32
	result int32 // gpt2: the interned result of the merge
}

func (c candidate) left() int32 { return int32(uint32(c.key)) }

// spmKey orders by score, highest first.
func spmKey(score float32, left int32) uint64 {
	u := math.Float32bits(score)
	if u&(1<<31) != 0 {
		u = ^u // negative: larger magnitude sorts lower
	} else {
		u |= 1 << 31
	}
	return uint64(^u)<<32 | uint64(uint32(left))
}

// bpeKey orders by rank, lowest first.
func bpeKey(rank, left int32) uint64 {
	return uint64(uint32(rank))<<32 | uint64(uint32(left))
}

// queue is a binary min-heap of candidates.
type queue []candidate

func (q *queue) push(c candidate) {
	h := append(*q, c)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h[p].key <= c.key {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = c
	*q = h
}

func (q *queue) pop() candidate {
	h := *q
	top := h[0]
	last := len(h) - 1
	x := h[last]
	h = h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= last {
			break
		}
		m := l
		if r := l + 1; r < last && h[r].key < h[l].key {
			m = r
		}
		if x.key <= h[m].key {
			break
		}
		h[i] = h[m]
		i = m
	}
	if last > 0 {
		h[i] = x
	}
	*q = h
	return top
}
