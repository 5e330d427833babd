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
	"wisp/tools/train"
)

func distilCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("distil", "--teacher MODEL [--student MODEL] (--text FILE | --train FILE [--eval FILE]) [-o OUT.gguf] [flags]",
		`Trains a student on a teacher's output distributions (knowledge
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
checkpoints that --resume exactly (with the same teacher).`, stderr)
	var tf trainFlags
	tf.register(fs, "student.gguf")
	teacherPath := fs.String("teacher", "", "the teacher model (GGUF)")
	studentPath := fs.String("student", "", "the student to start from (GGUF); default: a new model of the shape flags")
	temp := fs.Float64("temperature", 2, "softening temperature T of both distributions")
	alpha := fs.Float64("alpha", 0.5, "weight of the plain next-token loss, in [0, 1]")
	sampleTokens := fs.Int("sample-tokens", 0, "train on this many tokens sampled from the teacher instead of the text")
	var sh shapeFlags
	sh.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *teacherPath == "" || (tf.text == "" && tf.trainPath == "") {
		fs.Usage()
		return errUsage
	}
	teacherBytes, err := os.ReadFile(*teacherPath)
	if err != nil {
		return err
	}
	tm, err := engine.Load(teacherBytes)
	if err != nil {
		return fmt.Errorf("%s: %w", *teacherPath, err)
	}
	teacher := train.EngineTeacher(tm)
	v := tm.Tokenizer.Vocab()
	corpus, err := tf.readCorpus()
	if err != nil {
		return err
	}
	data, err := corpus.encode(v, stderr)
	if err != nil {
		return err
	}
	if *sampleTokens > 0 {
		if data.train, err = teacherSamples(tm, *sampleTokens, tf.ctx, tf.seed, tf.threads, stderr); err != nil {
			return err
		}
		// The sampled stream is the training data.
		corpus.train, corpus.trainPath = "", "teacher samples"
		corpus.trainSum = sha(int32Bytes(data.train))
	}

	var tr *train.Trainer
	var ck *gguf.File
	if tf.resume != "" {
		if ck, err = readGGUF(tf.resume); err != nil {
			return err
		}
		tr, err = train.Resume(ck, data.train, train.ResumeOptions{Threads: tf.threads, Teacher: teacher, Steps: tf.stepsIfSet(fs)})
		if err != nil {
			return fmt.Errorf("%s: %w", tf.resume, err)
		}
		fmt.Fprintf(stderr, "resumed %s at step %d of %d\n", tf.resume, tr.StepsDone(), tr.Options().Steps)
	} else {
		var m *train.Model
		if *studentPath != "" {
			f, err := readGGUF(*studentPath)
			if err != nil {
				return err
			}
			if m, err = train.FromGGUF(f); err != nil {
				return fmt.Errorf("%s: %w", *studentPath, err)
			}
			if toks, err := f.Strings("tokenizer.ggml.tokens"); err == nil && !slices.Equal(toks, v.Tokens) {
				return fmt.Errorf("%s: the student's tokenizer is not the teacher's", *studentPath)
			}
		} else if m, err = train.New(sh.config(len(v.Tokens), tf.ctx), tf.seed); err != nil {
			return err
		}
		o := tf.options(m.Config, v.BOS)
		o.Teacher, o.Temperature, o.Alpha = teacher, *temp, *alpha
		if tr, err = train.NewTrainer(m, data.train, o); err != nil {
			return err
		}
	}
	o := tr.Options()
	fmt.Fprintf(stderr, "distilling %s (%d parameters) at temperature %g, alpha %g\n", *teacherPath, tm.Params(), o.Temperature, o.Alpha)
	sum, err := runTraining(&run{
		cmd: "distil", args: args, flags: &tf, corpus: corpus, data: data, vocab: v, trainer: tr, ckpt: ck,
		stderr: stderr,
		meta: func(b *gguf.Builder) {
			b.Set("wisp.distil.teacher", baseName(*teacherPath))
			b.Set("wisp.distil.teacher_sha256", sha(teacherBytes))
			b.Set("wisp.distil.temperature", float32(o.Temperature))
			b.Set("wisp.distil.alpha", float32(o.Alpha))
			if *studentPath != "" {
				b.Set("wisp.distil.student", baseName(*studentPath))
			}
			if *sampleTokens > 0 {
				b.Set("wisp.distil.sampled_tokens", uint64(len(data.train)))
			}
		},
	})
	if err != nil {
		return err
	}
	sum.write(stdout)
	return nil
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
