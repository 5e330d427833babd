package train

import (
	"fmt"
	"sync"

	"wisp/engine"
)

// EngineTeacher returns a Teacher that runs m through the engine's forward
// pass, F32 or F16, llama or qwen2: exactly the logits the engine computes
// when it generates. It is safe for concurrent use (each goroutine gets its
// own engine.State) and deterministic.
func EngineTeacher(m *engine.Model) Teacher {
	return &engineTeacher{m: m}
}

type engineTeacher struct {
	m      *engine.Model
	states sync.Pool // *engine.State
}

func (t *engineTeacher) Vocab() int { return t.m.VocabSize }

func (t *engineTeacher) Logits(tokens []int32, out []float32) error {
	V := t.m.VocabSize
	if len(out) < len(tokens)*V {
		return fmt.Errorf("train: teacher: %d logits for %d tokens of a vocabulary of %d", len(out), len(tokens), V)
	}
	st, _ := t.states.Get().(*engine.State)
	if st == nil || st.Context() < len(tokens) {
		var err error
		if st, err = t.m.NewState(len(tokens)); err != nil {
			return fmt.Errorf("train: teacher: %w", err)
		}
	}
	defer t.states.Put(st)
	st.Reset()
	ids := make([]int, engine.MaxBatch)
	for lo := 0; lo < len(tokens); lo += engine.MaxBatch {
		hi := min(len(tokens), lo+engine.MaxBatch)
		for i, tok := range tokens[lo:hi] {
			ids[i] = int(tok)
		}
		logits, err := st.ForwardAll(ids[:hi-lo])
		if err != nil {
			return fmt.Errorf("train: teacher: %w", err)
		}
		copy(out[lo*V:hi*V], logits)
	}
	return nil
}
