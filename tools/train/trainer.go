package train

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Options configures training. The zero values of Accum, Beta1, Beta2, Eps
// and Temperature take their defaults, Threads 0 means 1; everything else
// is as given.
type Options struct {
	SeqLen int // positions per sequence, at most the model's context
	Batch  int // sequences per micro-batch (run together)
	Accum  int // micro-batches whose gradients make one step (default 1)
	Steps  int // optimizer steps of the whole run: the schedule's length

	LR          float64 // peak learning rate
	MinLR       float64 // the floor the cosine decays to
	Warmup      int     // steps of linear warm-up from 0 to LR
	WeightDecay float64 // decoupled weight decay, on matrices only
	Clip        float64 // largest global gradient norm; 0 disables clipping
	Beta1       float64 // default 0.9
	Beta2       float64 // default 0.95
	Eps         float64 // default 1e-8

	// Seed seeds the choice of training windows.
	Seed uint64
	// BOS is the token that starts every window, as it starts every
	// generation, or -1 for windows cut straight from the stream.
	BOS int
	// Threads is the number of goroutines; results do not depend on it.
	Threads int

	// Teacher, when set, turns training into distillation: the loss of a
	// position is (1−Alpha)·T²·KL(teacher_T ‖ student_T) + Alpha·CE, with
	// both distributions softened by the temperature T.
	Teacher     Teacher
	Temperature float64 // T, default 1
	Alpha       float64 // weight of the plain next-token loss, in [0, 1]
}

// Teacher gives the logits of a teacher model for distillation. It must be
// deterministic (for checkpoints to resume exactly) and safe for
// concurrent use.
type Teacher interface {
	// Vocab returns the size of the teacher's vocabulary, which must be
	// the student's (and the tokenizer the same).
	Vocab() int
	// Logits writes the logits following each of tokens, len(tokens)
	// rows of the vocabulary's size, into out.
	Logits(tokens []int32, out []float32) error
}

func (o Options) withDefaults() Options {
	if o.Accum == 0 {
		o.Accum = 1
	}
	if o.Beta1 == 0 {
		o.Beta1 = 0.9
	}
	if o.Beta2 == 0 {
		o.Beta2 = 0.95
	}
	if o.Eps == 0 {
		o.Eps = 1e-8
	}
	if o.Temperature == 0 {
		o.Temperature = 1
	}
	return o
}

// Limits that keep a mistyped option (or a checkpoint's) from asking for
// absurd allocations.
const (
	maxBatchTokens = 1 << 16 // positions per micro-batch
	maxSteps       = 1 << 30
	maxTrainBytes  = 1 << 35 // memory for weights, optimizer state and activations
)

// trainBytes estimates the memory training c on micro-batches of B×T
// positions takes, in bytes.
func trainBytes(c Config, B, T int) int64 {
	c = c.withDefaults()
	N, L := int64(B*T), int64(c.Layers)
	d, q, kv, h, v := int64(c.Dim), int64(c.QDim()), int64(c.KVDim()), int64(c.HiddenDim), int64(c.Vocab)
	wide := max(d, q, h, v)
	perLayer := N*(4*d+2*q+2*kv+3*h+2) + int64(B)*int64(c.Heads)*int64(T)*int64(T)
	floats := 4*c.Params() + L*perLayer + N*(d+1+v) + // weights, gradient, moments; activations
		N*(2*d+2*q+2*kv+3*h+2*wide) + wide*max(d, q, h) // gradient scratch
	return 4 * floats
}

func (o Options) validate(c Config) error {
	switch {
	case o.SeqLen < 2 || o.SeqLen > c.ContextLen:
		return fmt.Errorf("train: sequence length %d: want 2 to the context length %d", o.SeqLen, c.ContextLen)
	case o.Batch < 1 || o.Accum < 1 || o.Batch*o.SeqLen > maxBatchTokens:
		return fmt.Errorf("train: batch of %d×%d positions and %d micro-batches: want at least 1 each, at most %d positions per micro-batch", o.Batch, o.SeqLen, o.Accum, maxBatchTokens)
	case o.Steps < 1 || o.Steps > maxSteps:
		return fmt.Errorf("train: %d steps: want 1 to %d", o.Steps, maxSteps)
	case o.Warmup < 0:
		return fmt.Errorf("train: %d warm-up steps", o.Warmup)
	case !(o.LR > 0 && o.LR < 10) || !(o.MinLR >= 0 && o.MinLR <= o.LR):
		return fmt.Errorf("train: learning rate %g and floor %g: want 0 < floor ≤ rate < 10", o.LR, o.MinLR)
	case !(o.WeightDecay >= 0 && o.WeightDecay < 1) || !(o.Clip >= 0):
		return fmt.Errorf("train: weight decay %g or clip %g out of range", o.WeightDecay, o.Clip)
	case !(o.Beta1 >= 0 && o.Beta1 < 1) || !(o.Beta2 >= 0 && o.Beta2 < 1) || !(o.Eps > 0):
		return fmt.Errorf("train: Adam β1 %g, β2 %g, ε %g out of range", o.Beta1, o.Beta2, o.Eps)
	case o.BOS < -1 || o.BOS >= c.Vocab:
		return fmt.Errorf("train: BOS token %d is outside the vocabulary of %d", o.BOS, c.Vocab)
	case !(o.Temperature > 0 && o.Temperature < 100) || !(o.Alpha >= 0 && o.Alpha <= 1):
		return fmt.Errorf("train: temperature %g or alpha %g out of range", o.Temperature, o.Alpha)
	}
	return nil
}

// LRAt returns the learning rate of step s (counted from 0): a linear
// warm-up to LR over Warmup steps, then a cosine decay to MinLR at the
// last step.
func (o Options) LRAt(s int) float64 {
	if s < o.Warmup {
		return o.LR * float64(s+1) / float64(o.Warmup)
	}
	span := o.Steps - o.Warmup
	if span <= 1 {
		return o.LR
	}
	p := min(1, float64(s-o.Warmup)/float64(span-1))
	return o.MinLR + 0.5*(o.LR-o.MinLR)*(1+math.Cos(math.Pi*p))
}

// Trainer trains a Model with AdamW on random windows of a token stream.
// It is not safe for concurrent use.
type Trainer struct {
	model *Model
	opt   Options

	step   int   // steps taken
	tokens int64 // training positions seen

	grad, m, v []float32
	pcg        *rand.PCG
	rng        *rand.Rand
	data       []int32
	dataSum    string // hex SHA-256 of data

	net     *net[float32]
	targets []int32
	teacher []float32 // [N·Vocab] teacher logits, with a Teacher
	rows    []rowStats
	decay   []bool // per tensor of Config.tensors()
}

// Stats describes one step.
type Stats struct {
	Step     int     // steps taken, this one included
	Loss     float64 // mean loss per position
	CE       float64 // mean next-token cross-entropy
	KL       float64 // mean KL(teacher_T ‖ student_T), when distilling
	LR       float64 // the learning rate used
	GradNorm float64 // the global gradient norm before clipping
	Tokens   int64   // positions seen so far
}

// NewTrainer prepares to train m on the token stream data. The model's
// weights are updated in place by Step.
func NewTrainer(m *Model, data []int32, opt Options) (*Trainer, error) {
	opt = opt.withDefaults()
	c := m.Config.withDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if len(m.Params) != int(c.Params()) {
		return nil, fmt.Errorf("train: model has %d parameters, its shape %d", len(m.Params), c.Params())
	}
	if err := opt.validate(c); err != nil {
		return nil, err
	}
	if b := trainBytes(c, opt.Batch, opt.SeqLen); b > maxTrainBytes {
		return nil, fmt.Errorf("train: training this model on %d×%d positions would take about %d GiB of memory, more than %d", opt.Batch, opt.SeqLen, b>>30, maxTrainBytes>>30)
	}
	if opt.Teacher != nil && opt.Teacher.Vocab() != c.Vocab {
		return nil, fmt.Errorf("train: the teacher's vocabulary has %d tokens, the student's %d", opt.Teacher.Vocab(), c.Vocab)
	}
	if len(data) < opt.SeqLen+2 {
		return nil, fmt.Errorf("train: %d tokens of training data are fewer than one window of %d", len(data), opt.SeqLen+1)
	}
	if err := checkTokens(data, c.Vocab, "token"); err != nil {
		return nil, err
	}
	m.Config = c
	t := &Trainer{
		model:   m,
		opt:     opt,
		grad:    make([]float32, len(m.Params)),
		m:       make([]float32, len(m.Params)),
		v:       make([]float32, len(m.Params)),
		pcg:     rand.NewPCG(opt.Seed, 0x64617461),
		data:    data,
		dataSum: tokenSum(data),
	}
	t.rng = rand.New(t.pcg)
	t.net = newNet(c, opt.Batch, opt.SeqLen, opt.Threads, m.Params, t.grad)
	t.targets = make([]int32, t.net.N)
	t.rows = make([]rowStats, t.net.N)
	if opt.Teacher != nil {
		t.teacher = make([]float32, t.net.N*c.Vocab)
	}
	return t, nil
}

// tokenSum returns the hex SHA-256 of a token stream as little-endian
// int32s; a checkpoint records it so that it resumes on the same data.
func tokenSum(data []int32) string {
	h := sha256.New()
	var buf [4096]byte
	for len(data) > 0 {
		k := min(len(data), len(buf)/4)
		for i, v := range data[:k] {
			binary.LittleEndian.PutUint32(buf[4*i:], uint32(v))
		}
		h.Write(buf[:4*k])
		data = data[k:]
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// Unscored marks a token of a stream as context only: the model reads it
// but is not trained (or evaluated) on predicting it, as for the prompt of
// a conversation, whose replies alone are to be learnt. It is stored as
// -(id+1); Token undoes it.
func Unscored(id int32) int32 { return -id - 1 }

// Token returns the token id of an entry of a stream, scored or not.
func Token(x int32) int32 {
	if x < 0 {
		return -x - 1
	}
	return x
}

// checkTokens reports an entry of a stream whose token is outside the
// vocabulary.
func checkTokens(data []int32, vocab int, what string) error {
	for i, x := range data {
		if tok := Token(x); tok < 0 || int(tok) >= vocab {
			return fmt.Errorf("train: %s %d at %d is outside the vocabulary of %d", what, x, i, vocab)
		}
	}
	return nil
}

// Model returns the model being trained.
func (t *Trainer) Model() *Model { return t.model }

// Options returns the options in force, defaults filled in.
func (t *Trainer) Options() Options { return t.opt }

// StepsDone returns the number of steps taken.
func (t *Trainer) StepsDone() int { return t.step }

// Tokens returns the number of training positions seen.
func (t *Trainer) Tokens() int64 { return t.tokens }

// window fills inputs and targets of one sequence from the stream at
// start: with a BOS, inputs are BOS then data[start:start+T-1] and the
// targets data[start:start+T]; without, the stream shifted by one. A target
// past the end of the stream, or marked Unscored, is -1 (not scored). It
// returns the number of scored targets.
func (t *Trainer) window(data []int32, start int, inputs, targets []int32) int {
	T := len(inputs)
	n := 0
	target := func(i int) int32 {
		if i >= len(data) || data[i] < 0 {
			return -1
		}
		n++
		return data[i]
	}
	if t.opt.BOS >= 0 {
		inputs[0] = int32(t.opt.BOS)
		for i := range T {
			if i+1 < T {
				inputs[i+1] = int32(t.opt.BOS)
				if start+i < len(data) {
					inputs[i+1] = Token(data[start+i])
				}
			}
			targets[i] = target(start + i)
		}
		return n
	}
	for i := range T {
		inputs[i] = 0
		if start+i < len(data) {
			inputs[i] = Token(data[start+i])
		}
		targets[i] = target(start + i + 1)
	}
	return n
}

// windowSpan is how many tokens of the stream one window covers.
func (t *Trainer) windowSpan() int {
	if t.opt.BOS >= 0 {
		return t.opt.SeqLen
	}
	return t.opt.SeqLen + 1
}

// scored returns how many targets the window at start scores.
func (t *Trainer) scored(start int) int {
	lo := start
	if t.opt.BOS < 0 {
		lo++
	}
	hi := min(len(t.data), start+t.windowSpan())
	n := 0
	for _, x := range t.data[lo:hi] {
		if x >= 0 {
			n++
		}
	}
	return n
}

// Step takes one optimizer step over Accum micro-batches of random
// windows.
func (t *Trainer) Step() (Stats, error) {
	if t.step >= t.opt.Steps {
		return Stats{}, fmt.Errorf("train: all %d steps are taken", t.opt.Steps)
	}
	o, n := &t.opt, t.net
	clear(t.grad)
	// The windows of the whole step are drawn first, to count the targets
	// scored: the loss is their mean (every position of every window,
	// unless the stream marks some Unscored).
	starts := make([]int, o.Accum*o.Batch)
	total := 0
	for i := range starts {
		starts[i] = t.rng.IntN(len(t.data) - t.windowSpan() + 1)
		total += t.scored(starts[i])
	}
	if total == 0 {
		total = 1 // nothing to learn in these windows: a zero gradient
	}
	var sum rowStats
	T := o.SeqLen
	for a := range o.Accum {
		for b := range o.Batch {
			t.window(t.data, starts[a*o.Batch+b], n.tokens[b*T:(b+1)*T], t.targets[b*T:(b+1)*T])
		}
		if err := t.teach(); err != nil {
			return Stats{}, err
		}
		n.forward()
		n.loss(t.objective(true, 1/float64(total)), t.rows)
		n.backward()
		for _, r := range t.rows {
			sum.loss += r.loss
			sum.ce += r.ce
			sum.kl += r.kl
		}
	}
	norm := t.gradNorm()
	lr := o.LRAt(t.step)
	scale := 1.0
	if o.Clip > 0 && norm > o.Clip {
		scale = o.Clip / norm
	}
	t.adamw(lr, scale)
	t.step++
	t.tokens += int64(o.Accum * n.N)
	return Stats{
		Step: t.step, Loss: sum.loss / float64(total), CE: sum.ce / float64(total), KL: sum.kl / float64(total),
		LR: lr, GradNorm: norm, Tokens: t.tokens,
	}, nil
}

func (t *Trainer) objective(grad bool, scale float64) objective {
	return objective{targets: t.targets, teacher: t.teacher, temp: t.opt.Temperature, alpha: t.opt.Alpha, grad: grad, scale: scale}
}

// teach fills the teacher's logits for the current batch.
func (t *Trainer) teach() error {
	if t.opt.Teacher == nil {
		return nil
	}
	T, V := t.opt.SeqLen, t.model.Config.Vocab
	errs := make([]error, t.opt.Batch)
	t.net.p.run(t.opt.Batch, func(_, b int) {
		errs[b] = t.opt.Teacher.Logits(t.net.tokens[b*T:(b+1)*T], t.teacher[b*T*V:(b+1)*T*V])
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("train: teacher: %w", err)
	}
	return nil
}

// normChunk is the size of the pieces the gradient norm is summed in; the
// pieces' sums are added in order, whatever the number of threads.
const normChunk = 1 << 14

// gradNorm returns the global L2 norm of the gradient.
func (t *Trainer) gradNorm() float64 {
	parts := make([]float64, (len(t.grad)+normChunk-1)/normChunk)
	t.net.p.chunks(len(t.grad), normChunk, func(_, lo, hi int) {
		var s float64
		for _, g := range t.grad[lo:hi] {
			s += float64(g) * float64(g)
		}
		parts[lo/normChunk] = s
	})
	var s float64
	for _, p := range parts {
		s += p
	}
	return math.Sqrt(s)
}

// adamw updates the weights with the gradient times scale: AdamW with
// bias correction, weight decay decoupled and on matrices only.
func (t *Trainer) adamw(lr, scale float64) {
	o := &t.opt
	step := float64(t.step + 1)
	bc1 := 1 - math.Pow(o.Beta1, step)
	bc2 := 1 - math.Pow(o.Beta2, step)
	for _, ti := range t.model.Config.tensors() {
		decay := 0.0
		if ti.matrix() {
			decay = o.WeightDecay
		}
		lo, hi := ti.off, ti.off+ti.rows*ti.cols
		t.net.p.chunks(hi-lo, normChunk, func(_, a, b int) {
			p, g, m, v := t.model.Params[lo+a:lo+b], t.grad[lo+a:lo+b], t.m[lo+a:lo+b], t.v[lo+a:lo+b]
			for i := range p {
				gi := float64(g[i]) * scale
				mi := o.Beta1*float64(m[i]) + (1-o.Beta1)*gi
				vi := o.Beta2*float64(v[i]) + (1-o.Beta2)*gi*gi
				m[i], v[i] = float32(mi), float32(vi)
				upd := (mi / bc1) / (math.Sqrt(vi/bc2) + o.Eps)
				p[i] = float32(float64(p[i]) - lr*(upd+decay*float64(p[i])))
			}
		})
	}
}

// Eval is the result of Evaluate.
type Eval struct {
	Loss       float64 // mean cross-entropy per position, in nats
	Perplexity float64 // exp(Loss)
	KL         float64 // mean KL(teacher_T ‖ student_T) at Options.Temperature, when distilling
	Tokens     int     // positions scored
}

// Evaluate measures the model on data cut into consecutive windows (each
// starting with BOS, like training windows), scoring at most maxTokens
// positions (all when maxTokens <= 0). It does not change the training
// state.
func (t *Trainer) Evaluate(data []int32, maxTokens int) (Eval, error) {
	c := &t.model.Config
	if err := checkTokens(data, c.Vocab, "evaluation token"); err != nil {
		return Eval{}, err
	}
	n, T := t.net, t.opt.SeqLen
	span := t.windowSpan()
	if t.opt.BOS < 0 {
		span-- // consecutive windows overlap by the one token that is both target and next input
	}
	if maxTokens <= 0 {
		maxTokens = len(data)
	}
	var sum rowStats
	var count int
	first := 0 // the offset of a window's first target from its start
	if t.opt.BOS < 0 {
		first = 1
	}
	start := 0
	for count < maxTokens && start+first < len(data) {
		for b := range t.opt.Batch {
			in, tg := n.tokens[b*T:(b+1)*T], t.targets[b*T:(b+1)*T]
			k := t.window(data, start, in, tg)
			if k > maxTokens-count {
				// Keep the first targets scored, up to the limit.
				k = max(0, maxTokens-count)
				kept := 0
				for i := range tg {
					if tg[i] >= 0 {
						if kept == k {
							tg[i] = -1
						} else {
							kept++
						}
					}
				}
			}
			count += k
			start += span
		}
		if err := t.teach(); err != nil {
			return Eval{}, err
		}
		n.forward()
		n.loss(t.objective(false, 0), t.rows)
		for _, r := range t.rows {
			sum.ce += r.ce
			sum.kl += r.kl
		}
	}
	if count == 0 {
		return Eval{}, fmt.Errorf("train: evaluation text of %d tokens has nothing to score", len(data))
	}
	e := Eval{Loss: sum.ce / float64(count), KL: sum.kl / float64(count), Tokens: count}
	e.Perplexity = math.Exp(e.Loss)
	return e, nil
}
