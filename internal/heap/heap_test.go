package heap

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// item orders by key, then by seq, so that the expected order is unique.
type item struct{ key, seq int }

func (x item) Before(y item) bool {
	if x.key != y.key {
		return x.key < y.key
	}
	return x.seq < y.seq
}

func cmp(x, y item) int {
	if x.Before(y) {
		return -1
	}
	if y.Before(x) {
		return 1
	}
	return 0
}

// TestOrder pushes and pops at random, checking every pop against a sorted
// copy of what the heap should hold, over sizes around the tree's levels.
func TestOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 7, 8, 15, 17, 100, 4095} {
		var h Heap[item]
		var want []item
		seq := 0
		for range 3 * n {
			if rng.IntN(3) > 0 || len(want) == 0 {
				v := item{rng.IntN(max(n/4, 1)), seq}
				seq++
				h.Push(v)
				want = append(want, v)
				continue
			}
			slices.SortFunc(want, cmp)
			if got := h.Pop(); got != want[0] {
				t.Fatalf("n %d: popped %v, want %v", n, got, want[0])
			}
			want = want[1:]
		}
		slices.SortFunc(want, cmp)
		for _, w := range want {
			if h.Len() == 0 {
				t.Fatalf("n %d: empty, %d values missing", n, len(want))
			}
			if got := h.Pop(); got != w {
				t.Fatalf("n %d: draining popped %v, want %v", n, got, w)
			}
		}
		if h.Len() != 0 {
			t.Fatalf("n %d: %d values left", n, h.Len())
		}
	}
}

func ExampleHeap() {
	h := New[item](4)
	for i, k := range []int{3, 1, 2, 1} {
		h.Push(item{k, i})
	}
	for h.Len() > 0 {
		fmt.Print(h.Pop(), " ")
	}
	fmt.Println()
	// Output: {1 1} {1 3} {2 2} {3 0}
}
