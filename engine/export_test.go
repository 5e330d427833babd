package engine

// SplitAll makes s split every matrix product that has rows enough for
// its goroutines, however small, so that tests exercise the split on
// small models.
func SplitAll(s *State) {
	if s.threads != nil {
		s.threads.minWork = 1
	}
}
