package engine

// SplitAll makes s split every matrix product that has rows enough for
// its goroutines, however small, so that tests exercise the split on
// small models.
func SplitAll(s *State) {
	if s.threads != nil {
		s.threads.minWork = 1
	}
}

// SetBatch makes Forward prefill in batches of n <= MaxBatch tokens, so that
// tests cover prompts of several batches with short contexts.
func (s *State) SetBatch(n int) { s.batch = min(max(n, 1), MaxBatch) }

// SetBatch sets the batch of the Session's State (see State.SetBatch).
func (s *Session) SetBatch(n int) { s.state.SetBatch(n) }

// F16Finite says whether Load found no half of exponent 31 in m (so that
// its products use simd.MatMulF16Finite).
func (m *Matrix) F16Finite() bool { return m.f16Finite }

// SetF16Finite sets, for every F16 matrix of m, whether its products use
// simd.MatMulF16Finite.
func (m *Model) SetF16Finite(v bool) {
	ms := []*Matrix{&m.Embedding, &m.Output}
	for i := range m.Blocks {
		b := &m.Blocks[i]
		ms = append(ms, &b.Wq, &b.Wk, &b.Wv, &b.Wo, &b.Gate, &b.Up, &b.Down)
	}
	for _, mat := range ms {
		if mat.F16 != nil {
			mat.f16Finite = v
		}
	}
}
