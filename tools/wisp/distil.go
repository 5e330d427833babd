package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"wisp/engine"
	"wisp/engine/gguf"
	"wisp/engine/option"
	"wisp/engine/sample"
	"wisp/engine/tokenizer"
	"wisp/tools/train"
)

func distilCmd(args []string, stdout, stderr io.Writer) error {
	o, err := parseDistilFlags(args, stderr)
	if err != nil {
		return err
	}
	r, err := newDistilRun(o, stderr)
	if err != nil {
		return err
	}
	sum, err := runTraining(r)
	if err != nil {
		return err
	}
	sum.write(stdout)
	return nil
}

// distilAbout is wisp distil's --help text.
const distilAbout = `Trains a student on a teacher's output distributions (knowledge
distillation), on the CPU: the loss of each position is

    (1 − alpha)·T²·KL(teacher_T ‖ student_T) + alpha·CE

where both distributions are softened by the temperature T and CE is the
plain next-token loss. The teacher runs through the engine's forward pass
(F32 or F16, llama or qwen2); the student is --student, typically a pruned
copy of the teacher (F16 is widened to F32), or else a new model of the
shape the --dim ... flags give. Both share the teacher's tokenizer.

The student trains on random windows of the text, or with --sample-tokens N
on N tokens the teacher samples itself (temperature 1, from BOS, each sample
at most --ctx tokens); the text's held-out part is still what it is
evaluated on (loss, perplexity and KL to the teacher). Everything else is
as in wisp train: AdamW, warm-up and cosine decay, clipping, accumulation,
checkpoints that --resume exactly (with the same teacher).`

// distilOptions is what wisp distil's flags ask for.
type distilOptions struct {
	flags                    trainFlags
	shape                    shapeFlags // a new student's, without --student
	teacherPath, studentPath string
	temperature, alpha       float64
	sampleTokens             int // tokens to sample from the teacher to train on; 0: the text
}

// parseDistilFlags reads wisp distil's flags.
func parseDistilFlags(args []string, stderr io.Writer) (*distilOptions, error) {
	o := &distilOptions{}
	fs := newFlags("distil", "--teacher MODEL [--student MODEL] (--text FILE | --train FILE [--eval FILE]) [-o OUT.gguf] [flags]", distilAbout, stderr)
	o.flags.register(fs, "student.gguf")
	fs.StringVar(&o.teacherPath, "teacher", "", "the teacher model (GGUF)")
	fs.StringVar(&o.studentPath, "student", "", "the student to start from (GGUF); default: a new model of the shape flags")
	fs.Float64Var(&o.temperature, "temperature", 2, "softening temperature T of both distributions")
	fs.Float64Var(&o.alpha, "alpha", 0.5, "weight of the plain next-token loss, in [0, 1]")
	fs.IntVar(&o.sampleTokens, "sample-tokens", 0, "train on this many tokens sampled from the teacher instead of the text")
	o.shape.register(fs)
	if err := o.flags.parse(fs, args); err != nil {
		return nil, err
	}
	if o.teacherPath == "" {
		fs.Usage()
		return nil, errUsage
	}
	return o, nil
}

// newDistilRun loads the teacher, reads and tokenizes the text (or
// samples the teacher) and makes the trainer of the student.
func newDistilRun(o *distilOptions, stderr io.Writer) (*run, error) {
	teacherBytes, err := os.ReadFile(o.teacherPath)
	if err != nil {
		return nil, err
	}
	tm, err := engine.Load(teacherBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.teacherPath, err)
	}
	teacher := train.EngineTeacher(tm)
	v := tm.Tokenizer.Vocab()
	corpus, data, err := o.trainingData(tm, stderr)
	if err != nil {
		return nil, err
	}
	tr, ck, err := o.trainer(teacher, v, data.train, stderr)
	if err != nil {
		return nil, err
	}
	to := tr.Options()
	fmt.Fprintf(stderr, "distilling %s (%d parameters) at temperature %g, alpha %g\n", o.teacherPath, tm.Params(), to.Temperature, to.Alpha)
	rec := distilRecord{teacher: o.teacherPath, teacherSum: sha(teacherBytes), student: o.studentPath,
		temperature: to.Temperature, alpha: to.Alpha}
	if o.sampleTokens > 0 {
		rec.sampled = len(data.train)
	}
	return &run{
		cmd: "distil", flags: &o.flags, corpus: corpus, data: data, vocab: v, trainer: tr, ckpt: ck,
		stderr: stderr, meta: rec.set,
	}, nil
}

// trainingData reads and tokenizes the text; with --sample-tokens the
// teacher's samples replace its training part.
func (o *distilOptions) trainingData(tm *engine.Model, stderr io.Writer) (*corpus, *tokens, error) {
	corpus, err := o.flags.readCorpus()
	if err != nil {
		return nil, nil, err
	}
	data, err := corpus.encode(tm.Tokenizer.Vocab(), stderr)
	if err != nil {
		return nil, nil, err
	}
	if o.sampleTokens > 0 {
		tf := &o.flags
		if data.train, err = teacherSamples(tm, o.sampleTokens, tf.ctx, tf.seed, tf.threads, stderr); err != nil {
			return nil, nil, err
		}
		// The sampled stream is the training data.
		corpus.train, corpus.trainPath = "", "teacher samples"
		corpus.trainSum = sha(int32Bytes(data.train))
	}
	return corpus, data, nil
}

// trainer resumes the checkpoint (returned too), or makes a trainer of
// the student learning from teacher.
func (o *distilOptions) trainer(teacher train.Teacher, v *tokenizer.Vocab, data []int32, stderr io.Writer) (*train.Trainer, *gguf.File, error) {
	tf := &o.flags
	if tf.resume != "" {
		ck, err := readGGUF(tf.resume)
		if err != nil {
			return nil, nil, err
		}
		tr, err := tf.resumeTrainer(ck, data, teacher, stderr)
		return tr, ck, err
	}
	m, err := o.student(v)
	if err != nil {
		return nil, nil, err
	}
	to := tf.options(m.Config, v.BOS)
	to.Teacher, to.Temperature, to.Alpha = teacher, o.temperature, o.alpha
	tr, err := train.NewTrainer(m, data, to)
	return tr, nil, err
}

// student reads --student, which must have the teacher's vocabulary v, or
// makes a new model of the flags' shape.
func (o *distilOptions) student(v *tokenizer.Vocab) (*train.Model, error) {
	if o.studentPath == "" {
		return train.New(o.shape.config(len(v.Tokens), o.flags.ctx), o.flags.seed)
	}
	f, err := readGGUF(o.studentPath)
	if err != nil {
		return nil, err
	}
	m, err := train.FromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.studentPath, err)
	}
	if toks, err := f.Strings("tokenizer.ggml.tokens"); err == nil && !slices.Equal(toks, v.Tokens) {
		return nil, fmt.Errorf("%s: the student's tokenizer is not the teacher's", o.studentPath)
	}
	return m, nil
}

// distilRecord is what a model distilled records of its run in its
// wisp.distil.* keys.
type distilRecord struct {
	teacher, teacherSum string  // the teacher's path and SHA-256
	student             string  // the student's path, if one was given
	temperature, alpha  float64 // the run's, which a resumed run keeps
	sampled             int     // the tokens sampled from the teacher, if any
}

// set writes the record into b.
func (d distilRecord) set(b *gguf.Builder) {
	b.Set("wisp.distil.teacher", baseName(d.teacher))
	b.Set("wisp.distil.teacher_sha256", d.teacherSum)
	b.Set("wisp.distil.temperature", float32(d.temperature))
	b.Set("wisp.distil.alpha", float32(d.alpha))
	if d.student != "" {
		b.Set("wisp.distil.student", baseName(d.student))
	}
	if d.sampled > 0 {
		b.Set("wisp.distil.sampled_tokens", uint64(d.sampled))
	}
}

// int32Bytes returns v in little-endian bytes.
func int32Bytes(v []int32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return b
}

// maxSampleTokens bounds --sample-tokens (4 bytes of memory each).
const maxSampleTokens = 1 << 28

// teacherSamples returns about n tokens sampled from m at temperature 1:
// samples from BOS of at most ctx tokens each (BOS left out), one after
// the other. Sample i draws with seed (seed, i), so the stream is the same
// for any number of threads.
func teacherSamples(m *engine.Model, n, ctx int, seed uint64, threads int, stderr io.Writer) ([]int32, error) {
	if n > maxSampleTokens {
		return nil, fmt.Errorf("--sample-tokens %d: at most %d", n, maxSampleTokens)
	}
	bos := m.Tokenizer.BOS()
	if bos < 0 {
		return nil, errors.New("the teacher's tokenizer has no BOS token to sample from")
	}
	ctx = min(ctx, m.ContextLen)
	threads = max(threads, 1)
	progress := progressBar(stderr, "sampling")
	start := time.Now()
	var out []int32
	for i := 0; len(out) < n; i += threads {
		samples := make([][]int32, threads)
		errs := make([]error, threads)
		var wg sync.WaitGroup
		for k := range threads {
			wg.Go(func() { samples[k], errs[k] = sampleOne(m, bos, ctx, seed, uint64(i+k)) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		for _, s := range samples {
			out = append(out, s...)
		}
		if progress != nil {
			progress(min(len(out), n), n)
		}
	}
	out = out[:n]
	fmt.Fprintf(stderr, "sampled %d tokens from the teacher in %s\n", len(out), time.Since(start).Round(time.Second))
	return out, nil
}

// sampleOne samples one text from BOS, ending at an end-of-generation token
// (kept) or after ctx tokens.
func sampleOne(m *engine.Model, bos, ctx int, seed, i uint64) ([]int32, error) {
	st, err := m.NewState(ctx)
	if err != nil {
		return nil, err
	}
	smp, err := sample.New(option.Options{Temperature: 1, Seed: seed*0x9e3779b97f4a7c15 + i + 1})
	if err != nil {
		return nil, err
	}
	logits, err := st.Forward([]int{bos})
	if err != nil {
		return nil, err
	}
	var out []int32
	for st.Pos() < ctx {
		id := smp.Sample(logits, nil)
		out = append(out, int32(id))
		if m.Tokenizer.IsEOG(id) || st.Pos() == ctx {
			break
		}
		if logits, err = st.Forward([]int{id}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
