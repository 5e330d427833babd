package engine

// SetBatch makes Forward prefill in batches of n <= MaxBatch tokens, so that
// tests cover prompts of several batches with short contexts.
func (s *State) SetBatch(n int) { s.batch = min(max(n, 1), MaxBatch) }

// SetBatch sets the batch of the Session's State (see State.SetBatch).
func (s *Session) SetBatch(n int) { s.state.SetBatch(n) }
