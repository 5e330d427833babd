package train

import (
	"testing"
)

// TestDistilLowersKL distils a teacher trained on the smoke text into a
// smaller student, through the engine: the student's KL divergence from
// the teacher on held-out text must fall to a fraction of where it began.
func TestDistilLowersKL(t *testing.T) {
	v := testVocab(t, smokeConfig.Vocab)
	data := encode(t, v, smokeText)
	held := encode(t, v, "the dog sat on the mat. a cat ran to the tree. the bird sang in the sun.")
	teacher, err := New(smokeConfig, 1)
	if err != nil {
		t.Fatal(err)
	}
	opt := smokeOptions()
	opt.Steps = 40
	tr, err := NewTrainer(teacher, data, opt)
	if err != nil {
		t.Fatal(err)
	}
	for range opt.Steps {
		if _, err := tr.Step(); err != nil {
			t.Fatal(err)
		}
	}

	sc := smokeConfig
	sc.Dim, sc.HiddenDim, sc.Layers, sc.Heads, sc.KVHeads = 16, 32, 1, 2, 1
	student, err := New(sc, 2)
	if err != nil {
		t.Fatal(err)
	}
	opt.Teacher = EngineTeacher(load(t, teacher, v))
	opt.Temperature, opt.Alpha = 2, 0.2
	opt.Steps = 40
	ds, err := NewTrainer(student, data, opt)
	if err != nil {
		t.Fatal(err)
	}
	before, err := ds.Evaluate(held, 0)
	if err != nil {
		t.Fatal(err)
	}
	var last Stats
	for range opt.Steps {
		if last, err = ds.Step(); err != nil {
			t.Fatal(err)
		}
	}
	after, err := ds.Evaluate(held, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("KL(teacher‖student) at T=2: %.3f → %.3f; student cross-entropy %.3f → %.3f; last step: loss %.3f, KL %.3f, CE %.3f",
		before.KL, after.KL, before.Loss, after.Loss, last.Loss, last.KL, last.CE)
	if after.KL > 0.3*before.KL {
		t.Errorf("distillation lowered KL only from %.3f to %.3f", before.KL, after.KL)
	}
	if after.Loss > 0.6*before.Loss {
		t.Errorf("the student's cross-entropy fell only from %.3f to %.3f", before.Loss, after.Loss)
	}
}
