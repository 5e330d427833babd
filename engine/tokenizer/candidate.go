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

// Before orders candidates by key, the least first: the heap of merges
// (package wisp/internal/heap) pops the next merge to make.
func (c candidate) Before(d candidate) bool { return c.key < d.key }
