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
