package train

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
)

// A checkpoint is a GGUF file: the model exactly as Model.Builder writes it
// (so the engine loads a checkpoint like any model), plus the optimizer's
// state:
//
//   - tensors "adam.m.NAME" and "adam.v.NAME", F32, the Adam moments of
//     each weight NAME;
//   - keys wisp.ckpt.* : the steps taken, the positions seen, the state of
//     the random generator that picks the windows (its MarshalBinary), the
//     SHA-256 of the token stream, and every Option but Threads and
//     Teacher.
//
// Everything is stored exactly, and the computation does not depend on the
// number of threads, so a resumed run takes the same steps, to the bit, as
// one that was never interrupted (on the same architecture: the math
// package's exp and log are assembly on some, and may differ in the last
// bit from the portable code).
const ckpt = "wisp.ckpt."

// Checkpoint returns a builder holding the model (with the tokenizer v,
// which may be nil, and general.name) and the training state. The tensors
// are copies.
func (t *Trainer) Checkpoint(v *tokenizer.Vocab, name string) (*gguf.Builder, error) {
	b, err := t.model.Builder(v, name)
	if err != nil {
		return nil, err
	}
	c := t.model.Config
	if err := addTensors(b, c, "adam.m.", t.m); err != nil {
		return nil, err
	}
	if err := addTensors(b, c, "adam.v.", t.v); err != nil {
		return nil, err
	}
	rng, err := t.pcg.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	o := &t.opt
	b.Set(ckpt+"step", uint64(t.step))
	b.Set(ckpt+"tokens", uint64(t.tokens))
	b.Set(ckpt+"rng", rng)
	b.Set(ckpt+"data_sha256", t.dataSum)
	b.Set(ckpt+"seq_len", uint32(o.SeqLen))
	b.Set(ckpt+"batch", uint32(o.Batch))
	b.Set(ckpt+"accum", uint32(o.Accum))
	b.Set(ckpt+"steps", uint32(o.Steps))
	b.Set(ckpt+"warmup", uint32(o.Warmup))
	b.Set(ckpt+"lr", o.LR)
	b.Set(ckpt+"min_lr", o.MinLR)
	b.Set(ckpt+"weight_decay", o.WeightDecay)
	b.Set(ckpt+"clip", o.Clip)
	b.Set(ckpt+"beta1", o.Beta1)
	b.Set(ckpt+"beta2", o.Beta2)
	b.Set(ckpt+"eps", o.Eps)
	b.Set(ckpt+"seed", o.Seed)
	b.Set(ckpt+"bos", int32(o.BOS))
	b.Set(ckpt+"distil", o.Teacher != nil)
	b.Set(ckpt+"temperature", o.Temperature)
	b.Set(ckpt+"alpha", o.Alpha)
	return b, nil
}

// ResumeOptions are what a resumed run may choose anew.
type ResumeOptions struct {
	Threads int
	// Teacher must be given when, and only when, the checkpoint was
	// distilling; it must be the same teacher for the run to resume
	// exactly.
	Teacher Teacher
	// Steps, when positive, changes the length of the run (and so the
	// learning-rate schedule from here on).
	Steps int
}

// Resume restores a trainer from a checkpoint written by Checkpoint, to
// continue on the same token stream.
func Resume(f *gguf.File, data []int32, ro ResumeOptions) (*Trainer, error) {
	if _, ok := f.Value(ckpt + "step"); !ok {
		return nil, errors.New("train: not a checkpoint (wisp.ckpt.step is missing)")
	}
	m, err := FromGGUF(f)
	if err != nil {
		return nil, err
	}
	var e error
	u := func(key string) int {
		v, err := f.Uint(ckpt + key)
		if err != nil {
			e = errors.Join(e, err)
		}
		return int(min(v, maxSteps))
	}
	fl := func(key string) float64 {
		v, err := f.Float(ckpt + key)
		if err != nil {
			e = errors.Join(e, err)
		}
		return v
	}
	o := Options{
		SeqLen: u("seq_len"), Batch: u("batch"), Accum: u("accum"), Steps: u("steps"), Warmup: u("warmup"),
		LR: fl("lr"), MinLR: fl("min_lr"), WeightDecay: fl("weight_decay"), Clip: fl("clip"),
		Beta1: fl("beta1"), Beta2: fl("beta2"), Eps: fl("eps"), Temperature: fl("temperature"), Alpha: fl("alpha"),
		Threads: ro.Threads, Teacher: ro.Teacher,
	}
	o.Seed, err = f.Uint(ckpt + "seed")
	e = errors.Join(e, err)
	bos, err := f.Int(ckpt + "bos")
	e = errors.Join(e, err)
	o.BOS = int(max(-2, min(bos, maxVocab)))
	distil, err := f.Bool(ckpt + "distil")
	e = errors.Join(e, err)
	step := u("step")
	tokens, err := f.Uint(ckpt + "tokens")
	e = errors.Join(e, err)
	sum, err := f.String(ckpt + "data_sha256")
	e = errors.Join(e, err)
	rngState, ok := f.Value(ckpt + "rng")
	rs, isBytes := rngState.([]uint8)
	if !ok || !isBytes {
		e = errors.Join(e, errors.New("train: checkpoint key wisp.ckpt.rng is missing or not bytes"))
	}
	if e != nil {
		return nil, fmt.Errorf("train: checkpoint: %w", e)
	}
	if distil != (ro.Teacher != nil) {
		return nil, fmt.Errorf("train: the checkpoint was distilling: %v, but a teacher is given: %v", distil, ro.Teacher != nil)
	}
	if ro.Steps > 0 {
		o.Steps = ro.Steps
	}
	if step > o.Steps {
		return nil, fmt.Errorf("train: the checkpoint has taken %d steps, more than the run's %d", step, o.Steps)
	}
	t, err := NewTrainer(m, data, o)
	if err != nil {
		return nil, err
	}
	if t.dataSum != sum {
		return nil, fmt.Errorf("train: the token stream differs from the checkpoint's (SHA-256 %s, checkpoint %s): resume with the same text and tokenizer", t.dataSum, sum)
	}
	c := m.Config
	for _, ti := range c.tensors() {
		for _, s := range []struct {
			prefix string
			dst    []float32
		}{{"adam.m.", t.m}, {"adam.v.", t.v}} {
			x := ti
			x.name = s.prefix + ti.name
			if err := readTensor(f, x, s.dst[ti.off:ti.off+ti.rows*ti.cols]); err != nil {
				return nil, err
			}
		}
	}
	pcg := new(rand.PCG)
	if err := pcg.UnmarshalBinary(rs); err != nil {
		return nil, fmt.Errorf("train: checkpoint random state: %w", err)
	}
	t.pcg = pcg
	t.rng = rand.New(pcg)
	t.step = step
	t.tokens = int64(min(tokens, 1<<62))
	return t, nil
}
