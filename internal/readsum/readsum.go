// Package readsum is the plain read that wisp's benchmarks measure memory
// bandwidth with: the ceiling of tools/bench and simd's comparison of a
// matrix product with a read of as many bytes.
package readsum

// Xor folds words with eight independent accumulators, native Go's
// fastest plain read. A tail of fewer than eight words is left out.
func Xor(w []uint64) uint64 {
	var a0, a1, a2, a3, a4, a5, a6, a7 uint64
	for len(w) >= 8 {
		a0 ^= w[0]
		a1 ^= w[1]
		a2 ^= w[2]
		a3 ^= w[3]
		a4 ^= w[4]
		a5 ^= w[5]
		a6 ^= w[6]
		a7 ^= w[7]
		w = w[8:]
	}
	return a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7
}
