package main

import (
	"encoding/binary"
	"errors"
	"flag"
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
	fs := newFlags("distil", "--teacher MODEL [--student MODEL] (--text FILE | --train FILE [--eval FILE]) [-o OUT.gguf] [flags]", distilHelp, stderr)
	var f distilFlags
	f.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || f.teacherPath == "" || (f.tf.text == "" && f.tf.trainPath == "") {
		fs.Usage()
		return errUsage
	}
	r, err := f.prepare(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	return runTraining(r)
}

// distilHelp is wisp distil's description in its --help.
const distilHelp = `Trains a student on a teacher's output distributions (knowledge
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

// distilFlags are wisp distil's flags: those it shares with wisp train,
// the teacher, the student and the loss's.
type distilFlags struct {
	tf                       trainFlags
	teacherPath, studentPath string
	temp, alpha              float64
	sampleTokens             int
	sh                       shapeFlags
}

func (f *distilFlags) register(fs *flag.FlagSet) {
	f.tf.register(fs, "student.gguf")
	fs.StringVar(&f.teacherPath, "teacher", "", "the teacher model (GGUF)")
	fs.StringVar(&f.studentPath, "student", "", "the student to start from (GGUF); default: a new model of the shape flags")
	fs.Float64Var(&f.temp, "temperature", 2, "softening temperature T of both distributions")
	fs.Float64Var(&f.alpha, "alpha", 0.5, "weight of the plain next-token loss, in [0, 1]")
	fs.IntVar(&f.sampleTokens, "sample-tokens", 0, "train on this many tokens sampled from the teacher instead of the text")
	f.sh.register(fs)
}

// prepare loads the teacher, reads and tokenizes the corpus (or samples
// the teacher), makes, loads or resumes the student and returns the run
// that runTraining carries out.
func (f *distilFlags) prepare(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (*run, error) {
	tf := &f.tf
	teacherBytes, err := os.ReadFile(f.teacherPath)
	if err != nil {
		return nil, err
	}
	tm, err := engine.Load(teacherBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.teacherPath, err)
	}
	teacher := train.EngineTeacher(tm)
	v := tm.Tokenizer.Vocab()
	corpus, err := tf.readCorpus()
	if err != nil {
		return nil, err
	}
	data, err := corpus.encode(v, stderr)
	if err != nil {
		return nil, err
	}
	if f.sampleTokens > 0 {
		if data.train, err = teacherSamples(tm, f.sampleTokens, tf.ctx, tf.seed, tf.threads, stderr); err != nil {
			return nil, err
		}
		// The sampled stream is the training data.
		corpus.train, corpus.trainPath = "", "teacher samples"
		corpus.trainSum = sha(int32Bytes(data.train))
	}
	var ck *gguf.File
	if tf.resume != "" {
		if ck, err = readGGUF(tf.resume); err != nil {
			return nil, err
		}
	}
	tr, err := tf.trainer(fs, ck, data.train, teacher, stderr, func() (*train.Trainer, error) {
		m, err := f.student(v)
		if err != nil {
			return nil, err
		}
		o := tf.options(m.Config, v.BOS)
		o.Teacher, o.Temperature, o.Alpha = teacher, f.temp, f.alpha
		return train.NewTrainer(m, data.train, o)
	})
	if err != nil {
		return nil, err
	}
	o := tr.Options()
	fmt.Fprintf(stderr, "distilling %s (%d parameters) at temperature %g, alpha %g\n", f.teacherPath, tm.Params(), o.Temperature, o.Alpha)
	return &run{
		cmd: "distil", args: args, flags: tf, corpus: corpus, data: data, vocab: v, trainer: tr, ckpt: ck,
		stdout: stdout, stderr: stderr,
		meta: func(b *gguf.Builder) {
			b.Set("wisp.distil.teacher", baseName(f.teacherPath))
			b.Set("wisp.distil.teacher_sha256", sha(teacherBytes))
			b.Set("wisp.distil.temperature", float32(o.Temperature))
			b.Set("wisp.distil.alpha", float32(o.Alpha))
			if f.studentPath != "" {
				b.Set("wisp.distil.student", baseName(f.studentPath))
			}
			if f.sampleTokens > 0 {
				b.Set("wisp.distil.sampled_tokens", uint64(len(data.train)))
			}
		},
	}, nil
}

// student returns the model to distil into: --student, whose tokenizer
// must be the teacher's (v), or else a new model of the shape flags.
func (f *distilFlags) student(v *tokenizer.Vocab) (*train.Model, error) {
	if f.studentPath == "" {
		return train.New(f.sh.config(len(v.Tokens), f.tf.ctx), f.tf.seed)
	}
	g, err := readGGUF(f.studentPath)
	if err != nil {
		return nil, err
	}
	m, err := train.FromGGUF(g)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.studentPath, err)
	}
	if toks, err := g.Strings("tokenizer.ggml.tokens"); err == nil && !slices.Equal(toks, v.Tokens) {
		return nil, fmt.Errorf("%s: the student's tokenizer is not the teacher's", f.studentPath)
	}
	return m, nil
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
