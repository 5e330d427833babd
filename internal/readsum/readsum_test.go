package readsum

import "testing"

func TestXor(t *testing.T) {
	for _, n := range []int{0, 7, 8, 9, 64, 1001} {
		w := make([]uint64, n)
		var want uint64
		for i := range w {
			w[i] = uint64(i+1) * 0x9e3779b97f4a7c15
			if i < n&^7 {
				want ^= w[i]
			}
		}
		if got := Xor(w); got != want {
			t.Errorf("Xor of %d words = %#x, want %#x (the tail of fewer than 8 is left out)", n, got, want)
		}
	}
}
