// Package heap is a binary min-heap of values that order themselves. It
// serves the tokenizers' merge queues and the BPE trainer's pair queue,
// which push and pop millions of small structs: unlike container/heap it
// stores them unboxed and needs no interface methods on the container.
package heap

// Ordered is a value that knows whether it comes before another.
type Ordered[T any] interface {
	// Before reports whether the value is to be popped before u. It
	// must be a strict weak order.
	Before(u T) bool
}

// Heap is a binary heap whose Pop returns the first value in the order of
// Before. The zero Heap is empty and ready to use.
type Heap[T Ordered[T]] struct {
	items []T
}

// New returns an empty heap with room for n values.
func New[T Ordered[T]](n int) Heap[T] {
	return Heap[T]{items: make([]T, 0, n)}
}

// Len returns how many values the heap holds.
func (h *Heap[T]) Len() int { return len(h.items) }

// Reset empties the heap, keeping its memory for reuse.
func (h *Heap[T]) Reset() { h.items = h.items[:0] }

// Push adds v to the heap.
func (h *Heap[T]) Push(v T) {
	a := append(h.items, v)
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !v.Before(a[p]) {
			break
		}
		a[i] = a[p]
		i = p
	}
	a[i] = v
	h.items = a
}

// Pop removes and returns the first value. The heap must not be empty.
func (h *Heap[T]) Pop() T {
	a := h.items
	top := a[0]
	last := len(a) - 1
	x := a[last]
	a = a[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= last {
			break
		}
		m := l
		if r := l + 1; r < last && a[r].Before(a[l]) {
			m = r
		}
		if !a[m].Before(x) {
			break
		}
		a[i] = a[m]
		i = m
	}
	if last > 0 {
		a[i] = x
	}
	h.items = a
	return top
}
