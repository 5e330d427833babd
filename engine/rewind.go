package engine

import "fmt"

// Truncate forgets the positions from n on and keeps the cache of those
// before: the next Forward evaluates at position n. A session that reuses
// the cache of a prompt's common prefix (Session.Reprompt) rewinds with it.
func (s *State) Truncate(n int) error {
	if n < 0 || n > s.pos {
		return fmt.Errorf("engine: Truncate to position %d of a state holding %d", n, s.pos)
	}
	s.pos = n
	return nil
}
