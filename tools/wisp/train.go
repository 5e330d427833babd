package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"wisp/engine/chat"
	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
	"wisp/tools/bpe"
	"wisp/tools/train"
)

func trainCmd(args []string, stdout, stderr io.Writer) error {
	o, err := parseTrainFlags(args, stderr)
	if err != nil {
		return err
	}
	r, err := newTrainRun(o, stderr)
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

// trainAbout is wisp train's --help text.
const trainAbout = `Trains a Llama-family model on a text, on the CPU, using every core:
from scratch, with a SentencePiece-style BPE tokenizer trained on the
training text (--vocab tokens) unless --tokenizer-from gives a model whose
tokenizer to use; or, with --init, from a model's weights, shape (F32 or
F16, its blocks alike) and tokenizer, to fine-tune it. Then AdamW over
random windows of the tokenized text, each starting with BOS, with linear
warm-up and cosine decay, gradient clipping and accumulation. Held-out
text is evaluated every --eval-every steps.

--add-special appends control tokens (tokenizer.ggml.token_type 3) to the
vocabulary, such as ChatML's '<|im_start|>,<|im_end|>'; with --init the
embedding (and an untied classifier) grows by rows that start at its mean
row plus small noise. --eos makes a token the end-of-sequence token.

With --chat the training and held-out files are conversations, one a line
as JSON ({"messages":[{"role":"user","content":"..."},...]}), rendered by
the model's chat template (its tokenizer.chat_template, or ChatML, which is
then written into the result) and tokenized with control tokens recognised
only in the template's text, each conversation from BOS. The loss is taken
on the assistant's replies only: their text and the template text that
closes them (ChatML's <|im_end|> and line break); the rest is read, not
learnt, and the held-out loss is the replies' too.

The result is an F32 GGUF model with its tokenizer and the run in
wisp.train.* metadata (wisp convert --type f16 halves it). Every
--ckpt-every steps a checkpoint is written (the model plus the optimizer
state, itself a loadable model); --resume CKPT continues from one, on the
same text, exactly as if the run had not stopped: the model's shape,
tokenizer and the training options come from the checkpoint (only --steps
may change; --init, --add-special and --eos are ignored).`

// trainOptions is what wisp train's flags ask for.
type trainOptions struct {
	flags trainFlags
	shape shapeFlags
	vocab int // the size of the tokenizer to train
	// tokFrom names the model whose tokenizer to use, initPath the model
	// to fine-tune.
	tokFrom, initPath string
	addSpecial, eos   string // control tokens to add, the token to make EOS
	chat              bool   // the texts are conversations
}

// parseTrainFlags reads wisp train's flags and refuses those that --init
// makes meaningless.
func parseTrainFlags(args []string, stderr io.Writer) (*trainOptions, error) {
	o := &trainOptions{}
	fs := newFlags("train", "(--text FILE | --train FILE [--eval FILE]) [--init MODEL.gguf] [-o OUT.gguf] [flags]", trainAbout, stderr)
	o.flags.register(fs, "model.gguf")
	fs.IntVar(&o.vocab, "vocab", 2048, "vocabulary size of the tokenizer to train")
	fs.StringVar(&o.tokFrom, "tokenizer-from", "", "a GGUF model whose tokenizer to use instead of training one")
	fs.StringVar(&o.initPath, "init", "", "a GGUF model (llama, F32 or F16) to start from: its weights, shape and tokenizer")
	fs.StringVar(&o.addSpecial, "add-special", "", "control tokens to add to the vocabulary, separated by commas")
	fs.StringVar(&o.eos, "eos", "", "the text of the token to make the end-of-sequence token (e.g. '<|im_end|>')")
	fs.BoolVar(&o.chat, "chat", false, "the texts are conversations (JSON lines); learn the assistant's replies")
	o.shape.register(fs)
	if err := o.flags.parse(fs, args); err != nil {
		return nil, err
	}
	if o.initPath != "" && o.flags.resume == "" {
		if err := checkInitFlags(fs, o.tokFrom); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// checkInitFlags refuses, beside --init, --tokenizer-from and the flags
// of a new model's shape.
func checkInitFlags(fs *flag.FlagSet, tokFrom string) error {
	if tokFrom != "" {
		return errors.New("give --init or --tokenizer-from, not both: --init brings its tokenizer")
	}
	var shape []string
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "vocab", "dim", "layers", "heads", "kv-heads", "hidden", "untied":
			shape = append(shape, "--"+fl.Name)
		}
	})
	if len(shape) > 0 {
		return fmt.Errorf("--init gives the model's shape and vocabulary: %s cannot change them", strings.Join(shape, ", "))
	}
	return nil
}

// newTrainRun reads the text and where the run starts, tokenizes the text
// and makes the trainer.
func newTrainRun(o *trainOptions, stderr io.Writer) (*run, error) {
	corpus, err := o.flags.readCorpus()
	if err != nil {
		return nil, err
	}
	st, err := startTraining(&o.flags, o.initPath, o.tokFrom, o.vocab, corpus, stderr)
	if err != nil {
		return nil, err
	}
	if o.flags.resume == "" {
		if err := st.addTokens(o.addSpecial, o.eos, o.flags.seed, stderr); err != nil {
			return nil, err
		}
	}
	fm, data, err := st.encode(corpus, o.chat, stderr)
	if err != nil {
		return nil, err
	}
	tr, err := st.trainer(o, data.train, stderr)
	if err != nil {
		return nil, err
	}
	return &run{
		cmd: "train", flags: &o.flags, corpus: corpus, data: data, vocab: st.vocab, trainer: tr, ckpt: st.ckpt,
		stderr: stderr,
		meta:   func(b *gguf.Builder) { st.meta(b, fm, o.chat) },
	}, nil
}

// trainStart is where a wisp train run starts from: a checkpoint to
// resume, a model to fine-tune, or only a vocabulary (another model's,
// or one trained on the text).
type trainStart struct {
	vocab    *tokenizer.Vocab
	ckpt     *gguf.File   // the checkpoint resumed, if any
	init     *train.Model // the model fine-tuned (--init), if any
	initPath string
	initSum  string     // its SHA-256
	src      *gguf.File // the file the chat template comes from, if any
	added    []string   // the control tokens --add-special added
}

// startTraining reads the checkpoint or the model the flags name, or makes
// the vocabulary.
func startTraining(tf *trainFlags, initPath, tokFrom string, vocab int, corpus *corpus, stderr io.Writer) (*trainStart, error) {
	st := &trainStart{initPath: initPath}
	var err error
	switch {
	case tf.resume != "":
		if st.ckpt, err = readGGUF(tf.resume); err != nil {
			return nil, err
		}
		tok, err := tokenizer.FromGGUF(st.ckpt)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tf.resume, err)
		}
		st.vocab, st.src = tok.Vocab(), st.ckpt
	case initPath != "":
		b, err := os.ReadFile(initPath)
		if err != nil {
			return nil, err
		}
		f, err := gguf.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", initPath, err)
		}
		if st.init, err = train.FromGGUF(f); err != nil {
			return nil, fmt.Errorf("--init %s: %w", initPath, err)
		}
		tok, err := tokenizer.FromGGUF(f)
		if err != nil {
			return nil, fmt.Errorf("--init %s: %w", initPath, err)
		}
		if n := len(tok.Vocab().Tokens); n != st.init.Config.Vocab {
			return nil, fmt.Errorf("--init %s: the tokenizer has %d tokens, the embedding %d rows", initPath, n, st.init.Config.Vocab)
		}
		st.vocab, st.src, st.initSum = tok.Vocab(), f, sha(b)
		c := st.init.Config
		fmt.Fprintf(stderr, "init: %s, %d parameters, %d tokens\n", initPath, c.Params(), c.Vocab)
	case tokFrom != "":
		m, err := loadModel(tokFrom, "")
		if err != nil {
			return nil, err
		}
		st.vocab = m.Tokenizer.Vocab()
	default:
		start := time.Now()
		st.vocab, err = bpe.Train(strings.NewReader(corpus.train), bpe.Options{VocabSize: vocab})
		if errors.Is(err, bpe.ErrShort) && st.vocab != nil {
			fmt.Fprintf(stderr, "warning: %v\n", err)
		} else if err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "tokenizer: %d tokens trained in %s\n", len(st.vocab.Tokens), time.Since(start).Round(time.Millisecond))
	}
	return st, nil
}

// addTokens appends the control tokens of --add-special (growing the
// embedding of a model fine-tuned) and makes --eos the end-of-sequence
// token.
func (st *trainStart) addTokens(addSpecial, eos string, seed uint64, stderr io.Writer) error {
	var err error
	if addSpecial != "" {
		if st.vocab, st.added, err = addControlTokens(st.vocab, addSpecial); err != nil {
			return fmt.Errorf("--add-special: %w", err)
		}
		if st.init != nil {
			if st.init, err = st.init.GrowVocab(len(st.added), seed); err != nil {
				return err
			}
		}
		n := len(st.vocab.Tokens)
		fmt.Fprintf(stderr, "added control tokens %s as ids %d to %d\n", strings.Join(st.added, " "), n-len(st.added), n-1)
	}
	if eos != "" {
		id := slices.Index(st.vocab.Tokens, eos)
		if id < 0 {
			return fmt.Errorf("--eos %q: no such token in the vocabulary (add it with --add-special)", eos)
		}
		nv := *st.vocab
		nv.EOS = id
		st.vocab = &nv
	}
	return nil
}

// meta records where the run started in the model's wisp.train.* keys,
// and the chat template fm, if any.
func (st *trainStart) meta(b *gguf.Builder, fm *chat.Formatter, chatData bool) {
	if fm != nil {
		b.Set(chat.KeyTemplate, fm.Template.Source())
	}
	if st.initSum != "" {
		b.Set("wisp.train.init", baseName(st.initPath))
		b.Set("wisp.train.init_sha256", st.initSum)
	}
	if st.ckpt != nil {
		// A resumed run keeps what the first one recorded.
		for _, k := range []string{"wisp.train.init", "wisp.train.init_sha256", "wisp.train.added_tokens"} {
			if s, ok := st.ckpt.Value(k); ok {
				b.Set(k, s)
			}
		}
	}
	if len(st.added) > 0 {
		b.Set("wisp.train.added_tokens", st.added)
	}
	if chatData {
		b.Set("wisp.train.chat", true)
	}
}

// encode tokenizes the corpus with the start's vocabulary: with chatData
// as conversations that the returned chat template renders, else as plain
// text.
func (st *trainStart) encode(c *corpus, chatData bool, stderr io.Writer) (*chat.Formatter, *tokens, error) {
	if !chatData {
		data, err := c.encode(st.vocab, stderr)
		return nil, data, err
	}
	fm, err := chatFormatter(st.src, st.vocab)
	if err != nil {
		return nil, nil, err
	}
	data, err := c.encodeChat(st.vocab, fm, stderr)
	return fm, data, err
}

// trainer resumes the checkpoint, or makes a trainer of the model
// fine-tuned or of a new model of the flags' shape.
func (st *trainStart) trainer(o *trainOptions, data []int32, stderr io.Writer) (*train.Trainer, error) {
	tf := &o.flags
	if st.ckpt != nil {
		return tf.resumeTrainer(st.ckpt, data, nil, stderr)
	}
	m := st.init
	if m == nil {
		var err error
		if m, err = train.New(o.shape.config(len(st.vocab.Tokens), tf.ctx), tf.seed); err != nil {
			return nil, err
		}
	}
	return train.NewTrainer(m, data, tf.options(m.Config, st.vocab.BOS))
}

// resumeTrainer continues the checkpoint ck read from --resume (with the
// teacher it distils, if any) until --steps if given, and says at which
// step.
func (f *trainFlags) resumeTrainer(ck *gguf.File, data []int32, teacher train.Teacher, stderr io.Writer) (*train.Trainer, error) {
	tr, err := train.Resume(ck, data, train.ResumeOptions{Threads: f.threads, Teacher: teacher, Steps: f.resumeSteps})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.resume, err)
	}
	fmt.Fprintf(stderr, "resumed %s at step %d of %d\n", f.resume, tr.StepsDone(), tr.Options().Steps)
	return tr, nil
}

// addControlTokens returns a copy of v with the comma-separated tokens of
// list appended as control tokens, and the tokens added.
func addControlTokens(v *tokenizer.Vocab, list string) (*tokenizer.Vocab, []string, error) {
	var add []string
	for _, s := range strings.Split(list, ",") {
		switch {
		case s == "":
			return nil, nil, fmt.Errorf("%q: an empty token", list)
		case strings.TrimSpace(s) != s:
			return nil, nil, fmt.Errorf("token %q has spaces around it", s)
		case slices.Contains(add, s):
			return nil, nil, fmt.Errorf("token %q is given twice", s)
		}
		if id := slices.Index(v.Tokens, s); id >= 0 {
			return nil, nil, fmt.Errorf("token %q is already in the vocabulary (id %d)", s, id)
		}
		add = append(add, s)
	}
	n := len(v.Tokens)
	nv := *v
	nv.Tokens = append(slices.Clip(v.Tokens), add...)
	if v.Scores != nil {
		nv.Scores = append(slices.Clip(v.Scores), make([]float32, len(add))...)
	}
	if v.Types == nil {
		// The types New assumes for a vocabulary without them.
		nv.Types = make([]int32, n)
		for i, t := range v.Tokens {
			nv.Types[i] = tokenizer.TypeNormal
			switch {
			case v.Model == "llama" && isByteToken(t):
				nv.Types[i] = tokenizer.TypeByte
			case i == v.BOS || i == v.EOS:
				nv.Types[i] = tokenizer.TypeControl
			case v.Model == "llama" && i == v.UNK:
				nv.Types[i] = tokenizer.TypeUnknown
			}
		}
	} else {
		nv.Types = slices.Clip(v.Types)
	}
	for range add {
		nv.Types = append(nv.Types, tokenizer.TypeControl)
	}
	if _, err := tokenizer.New(nv); err != nil {
		return nil, nil, err
	}
	return &nv, add, nil
}

// isByteToken reports whether t is spelled "<0xXX>".
func isByteToken(t string) bool {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return false
	}
	_, err := strconv.ParseUint(t[3:5], 16, 8)
	return err == nil
}

// chatFormatter returns the formatter that renders the conversations of
// --chat: the template of src (the --init model or the checkpoint) when it
// has one, else ChatML, whose markers must then be control tokens of v.
func chatFormatter(src *gguf.File, v *tokenizer.Vocab) (*chat.Formatter, error) {
	tok, err := tokenizer.New(*v)
	if err != nil {
		return nil, err
	}
	var fm *chat.Formatter
	if src != nil {
		if fm, err = chat.FromGGUF(src, tok); err != nil {
			return nil, err
		}
	} else {
		fm = &chat.Formatter{Template: chat.Default(), Default: true}
		if v.BOS >= 0 {
			fm.BOSToken = v.Tokens[v.BOS]
		}
	}
	if v.EOS >= 0 {
		fm.EOSToken = v.Tokens[v.EOS]
	}
	if fm.Default {
		for _, s := range []string{"<|im_start|>", "<|im_end|>"} {
			if id := slices.Index(v.Tokens, s); id < 0 || !tok.IsControl(id) {
				return nil, fmt.Errorf("--chat: the model has no chat template, and ChatML's %s is not a control token of its vocabulary: add it with --add-special '<|im_start|>,<|im_end|>'", s)
			}
		}
	}
	return fm, nil
}

// encodeChat tokenizes the corpus as conversations, one JSON object a
// line (see wisp train --chat), marking all but the assistant's replies
// train.Unscored.
func (c *corpus) encodeChat(v *tokenizer.Vocab, fm *chat.Formatter, stderr io.Writer) (*tokens, error) {
	tok, err := tokenizer.New(*v)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	t := &tokens{}
	var stats [2]struct{ convs, scored, long int }
	for k, part := range []struct {
		text, path string
		out        *[]int32
	}{{c.train, c.trainPath, &t.train}, {c.eval, c.evalPath, &t.eval}} {
		for i, line := range strings.Split(part.text, "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			ids, scored, err := encodeConversation(line, tok, fm)
			if err != nil {
				return nil, fmt.Errorf("%s: line %d: %w", part.path, i+1+c.lineOffset(k), err)
			}
			*part.out = append(*part.out, ids...)
			stats[k].convs++
			stats[k].scored += scored
			if len(ids) > 256 {
				stats[k].long++
			}
		}
	}
	if stats[0].convs == 0 {
		return nil, fmt.Errorf("%s: no conversations", c.trainPath)
	}
	fmt.Fprintf(stderr, "conversations: %d for training, %d tokens (%d of the replies'), %d held out, %d tokens (%d of the replies'), tokenized in %s\n",
		stats[0].convs, len(t.train), stats[0].scored, stats[1].convs, len(t.eval), stats[1].scored, time.Since(start).Round(time.Millisecond))
	if n := stats[0].long + stats[1].long; n > 0 {
		fmt.Fprintf(stderr, "warning: %d conversations are longer than 256 tokens\n", n)
	}
	return t, nil
}

// lineOffset is the line number, less one, at which part k of the corpus
// starts in its file (the held-out part of --text follows the rest).
func (c *corpus) lineOffset(k int) int {
	if k == 1 && c.heldOutLines > 0 {
		return c.allLines - c.heldOutLines
	}
	return 0
}

// maxChatLine bounds a conversation's line.
const maxChatLine = 1 << 20

// encodeConversation tokenizes one conversation (a JSON line) as the
// model's chat template renders it, from BOS, every token but those of the
// assistant's replies marked train.Unscored; it returns the number scored.
// A reply is what the rendering of the conversation up to it adds to the
// rendering of what precedes it with a generation prompt.
func encodeConversation(line string, tok *tokenizer.Tokenizer, fm *chat.Formatter) ([]int32, int, error) {
	if len(line) > maxChatLine {
		return nil, 0, fmt.Errorf("a conversation of %d bytes is longer than the limit of %d", len(line), maxChatLine)
	}
	var conv struct {
		Messages []chat.Message `json:"messages"`
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&conv); err != nil {
		return nil, 0, fmt.Errorf("not a conversation ({\"messages\":[{\"role\":...,\"content\":...},...]}): %w", err)
	}
	msgs := conv.Messages
	full, _, err := fm.Prompt(tok, msgs, chat.PromptOptions{})
	if err != nil {
		return nil, 0, err
	}
	out := make([]int32, len(full))
	for i, id := range full {
		out[i] = train.Unscored(int32(id))
	}
	scored := 0
	for k, m := range msgs {
		if m.Role != "assistant" {
			continue
		}
		if k == 0 {
			return nil, 0, errors.New("the conversation starts with the assistant: there is nothing to reply to")
		}
		before, _, err := fm.Prompt(tok, msgs[:k], chat.PromptOptions{AddGenerationPrompt: true})
		if err != nil {
			return nil, 0, err
		}
		upto, _, err := fm.Prompt(tok, msgs[:k+1], chat.PromptOptions{})
		if err != nil {
			return nil, 0, err
		}
		if len(upto) <= len(before) || !slices.Equal(full[:len(upto)], upto) || !slices.Equal(upto[:len(before)], before) {
			return nil, 0, fmt.Errorf("message %d: the template does not render the conversation up to this reply as a beginning of the whole, so its reply cannot be told apart", k)
		}
		for i := len(before); i < len(upto); i++ {
			out[i] = int32(full[i])
			scored++
		}
	}
	if scored == 0 {
		return nil, 0, errors.New("the conversation has no reply of the assistant to learn")
	}
	return out, scored, nil
}

// trainFlags are the flags wisp train and wisp distil share.
type trainFlags struct {
	text, trainPath, evalPath string
	holdout                   float64

	ctx, batch, accum, steps, warmup int
	lr, wd, clip                     float64
	minLR                            optFloat
	seed                             uint64
	threads                          int

	evalEvery, evalTokens, ckptEvery, logEvery int
	out, ckpt, resume, name                    string

	// Kept by parse: the arguments, for the model's record of its
	// command, and --steps if it was given (a resumed run's new end),
	// else 0.
	args        []string
	resumeSteps int
}

func (f *trainFlags) register(fs *flag.FlagSet, out string) {
	fs.StringVar(&f.text, "text", "", "the text to train on; its last --holdout is kept for evaluation")
	fs.StringVar(&f.trainPath, "train", "", "the text to train on (instead of --text)")
	fs.StringVar(&f.evalPath, "eval", "", "held-out text to evaluate on, with --train")
	fs.Float64Var(&f.holdout, "holdout", 0.05, "with --text, the fraction of its lines (from the end) held out for evaluation")
	fs.IntVar(&f.ctx, "ctx", 256, "context length: tokens per training window, BOS included")
	fs.IntVar(&f.batch, "batch", 8, "windows per micro-batch")
	fs.IntVar(&f.accum, "accum", 1, "micro-batches per optimizer step (gradient accumulation)")
	fs.IntVar(&f.steps, "steps", 2000, "optimizer steps")
	fs.IntVar(&f.warmup, "warmup", 100, "steps of linear learning-rate warm-up")
	fs.Float64Var(&f.lr, "lr", 1e-3, "peak learning rate")
	fs.Var(&f.minLR, "min-lr", "the learning `rate` at the end of the cosine decay (default: lr/10)")
	fs.Float64Var(&f.wd, "wd", 0.1, "AdamW weight decay, on matrices only")
	fs.Float64Var(&f.clip, "clip", 1, "clip the gradient to this global norm (0: no clipping)")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed of the initial weights and of the windows")
	fs.IntVar(&f.threads, "threads", runtime.NumCPU(), "goroutines to compute with (the result does not depend on it)")
	fs.IntVar(&f.evalEvery, "eval-every", 200, "evaluate every this many steps (0: only at the end)")
	fs.IntVar(&f.evalTokens, "eval-tokens", 32768, "score at most this many held-out tokens per evaluation (0: all)")
	fs.IntVar(&f.ckptEvery, "ckpt-every", 500, "write a checkpoint every this many steps (0: never)")
	fs.IntVar(&f.logEvery, "log-every", 10, "when stderr is not a terminal, print progress every this many steps")
	fs.StringVar(&f.out, "o", out, "the GGUF model to write")
	fs.StringVar(&f.out, "out", out, "the GGUF model to write (same as -o)")
	fs.StringVar(&f.ckpt, "ckpt", "", "the checkpoint file (default: the output with .ckpt added)")
	fs.StringVar(&f.resume, "resume", "", "a checkpoint to continue from")
	fs.StringVar(&f.name, "name", "", "general.name of the model (default: the output's base name)")
}

// parse parses wisp train's or distil's arguments, which take --text or
// --train and no positional argument, and keeps args and --steps if it
// was given.
func (f *trainFlags) parse(fs *flag.FlagSet, args []string) error {
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || (f.text == "" && f.trainPath == "") {
		fs.Usage()
		return errUsage
	}
	f.args = args
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "steps" {
			f.resumeSteps = f.steps
		}
	})
	return nil
}

// options returns the training options the flags give.
func (f *trainFlags) options(c train.Config, bos int) train.Options {
	minLR := f.lr / 10
	if f.minLR.set {
		minLR = f.minLR.v
	}
	return train.Options{
		SeqLen: min(f.ctx, c.ContextLen), Batch: f.batch, Accum: f.accum, Steps: f.steps,
		LR: f.lr, MinLR: minLR, Warmup: f.warmup, WeightDecay: f.wd, Clip: f.clip,
		Seed: f.seed, BOS: bos, Threads: f.threads,
	}
}

// optFloat is a float flag that knows whether it was given.
type optFloat struct {
	v   float64
	set bool
}

func (o *optFloat) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.FormatFloat(o.v, 'g', -1, 64)
}

func (o *optFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return err
	}
	o.v, o.set = v, true
	return nil
}

// shapeFlags give the shape of a new model.
type shapeFlags struct {
	dim, layers, heads, kvHeads, hidden int
	untied                              bool
}

func (s *shapeFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&s.dim, "dim", 256, "embedding length")
	fs.IntVar(&s.layers, "layers", 6, "blocks")
	fs.IntVar(&s.heads, "heads", 8, "attention heads")
	fs.IntVar(&s.kvHeads, "kv-heads", 0, "key/value heads (default: as many as heads)")
	fs.IntVar(&s.hidden, "hidden", 688, "feed-forward length")
	fs.BoolVar(&s.untied, "untied", false, "a classifier of its own instead of the token embedding")
}

func (s *shapeFlags) config(vocab, ctx int) train.Config {
	return train.Config{Dim: s.dim, HiddenDim: s.hidden, Layers: s.layers, Heads: s.heads, KVHeads: s.kvHeads,
		Vocab: vocab, ContextLen: ctx, Tied: !s.untied}
}

// corpus is the text of a run.
type corpus struct {
	train, eval            string
	trainSum, evalSum      string // hex SHA-256 of the files as read
	trainPath, evalPath    string
	heldOutLines, allLines int
}

// readCorpus reads --text (splitting off the held-out lines) or --train
// and --eval.
func (f *trainFlags) readCorpus() (*corpus, error) {
	c := &corpus{}
	if f.text != "" {
		if f.trainPath != "" || f.evalPath != "" {
			return nil, errors.New("give --text, or --train and --eval, not both")
		}
		if !(f.holdout >= 0 && f.holdout < 1) {
			return nil, fmt.Errorf("--holdout %g: want a fraction in [0, 1)", f.holdout)
		}
		b, err := os.ReadFile(f.text)
		if err != nil {
			return nil, err
		}
		c.trainPath, c.trainSum = f.text, sha(b)
		lines := bytes.SplitAfter(b, []byte("\n"))
		if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		k := int(float64(len(lines)) * f.holdout)
		cut := len(b)
		for _, l := range lines[len(lines)-k:] {
			cut -= len(l)
		}
		c.train, c.eval = string(b[:cut]), string(b[cut:])
		c.heldOutLines, c.allLines = k, len(lines)
		return c, nil
	}
	b, err := os.ReadFile(f.trainPath)
	if err != nil {
		return nil, err
	}
	c.train, c.trainPath, c.trainSum = string(b), f.trainPath, sha(b)
	if f.evalPath != "" {
		if b, err = os.ReadFile(f.evalPath); err != nil {
			return nil, err
		}
		c.eval, c.evalPath, c.evalSum = string(b), f.evalPath, sha(b)
	}
	return c, nil
}

func sha(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// tokens are a corpus tokenized.
type tokens struct{ train, eval []int32 }

func (c *corpus) encode(v *tokenizer.Vocab, stderr io.Writer) (*tokens, error) {
	tok, err := tokenizer.New(*v)
	if err != nil {
		return nil, err
	}
	enc := func(s string) ([]int32, error) {
		ids, err := tok.Encode(s)
		if err != nil {
			return nil, err
		}
		out := make([]int32, len(ids))
		for i, id := range ids {
			out[i] = int32(id)
		}
		return out, nil
	}
	start := time.Now()
	t := &tokens{}
	if t.train, err = enc(c.train); err != nil {
		return nil, err
	}
	if c.eval != "" {
		if t.eval, err = enc(c.eval); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(stderr, "text: %d training tokens (%.2f bytes each), %d held-out tokens, tokenized in %s\n",
		len(t.train), float64(len(c.train))/max(1, float64(len(t.train))), len(t.eval), time.Since(start).Round(time.Millisecond))
	return t, nil
}

// run is a training run of wisp train or wisp distil, as runTraining
// takes it.
type run struct {
	cmd     string // "train" or "distil"
	flags   *trainFlags
	corpus  *corpus
	data    *tokens
	vocab   *tokenizer.Vocab
	trainer *train.Trainer
	ckpt    *gguf.File // the checkpoint resumed from, or nil
	meta    func(b *gguf.Builder)

	stderr io.Writer

	// What runTraining keeps while it runs:
	name           string      // the model's general.name
	ckptPath       string      // where checkpoints go
	cmdLine, first string      // this run's command, and the first's
	lastEval       *train.Eval // the latest held-out evaluation
	recent         []float64   // the last steps' losses; their mean is the training loss
}

// commandLine quotes args as a shell would need them.
func commandLine(cmd string, args []string) string {
	parts := []string{"wisp", cmd}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`*?[]{}()<>|&;#~") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// runTraining takes the remaining steps, evaluating, printing progress
// and writing checkpoints, then writes the model and returns what it
// ended with.
func runTraining(r *run) (*trainSummary, error) {
	tr, f := r.trainer, r.flags
	r.begin()
	r.describe()
	if tr.StepsDone() == 0 || f.evalEvery > 0 {
		if err := r.evaluate(); err != nil {
			return nil, err
		}
	}
	if err := r.takeSteps(); err != nil {
		return nil, err
	}
	if err := r.evaluate(); err != nil {
		return nil, err
	}
	n, err := r.write(f.out, false)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(r.stderr, "wrote %s (%d bytes, F32)\n", f.out, n)
	sum := &trainSummary{out: f.out, steps: tr.StepsDone(), tokens: tr.Tokens(), eval: r.lastEval}
	if len(r.recent) > 0 {
		sum.lastLoss, sum.hasLoss = r.recent[len(r.recent)-1], true
	}
	return sum, nil
}

// begin names the model and its checkpoint, and takes from a checkpoint
// resumed the first run's command and the recent losses.
func (r *run) begin() {
	f := r.flags
	r.name = f.name
	if r.name == "" {
		r.name = strings.TrimSuffix(baseName(f.out), ".gguf")
	}
	r.ckptPath = f.ckpt
	if r.ckptPath == "" {
		r.ckptPath = f.out + ".ckpt"
	}
	r.cmdLine = commandLine(r.cmd, f.args)
	r.first = r.cmdLine
	if r.ckpt == nil {
		return
	}
	if s, err := r.ckpt.String("wisp.train.command"); err == nil {
		r.first = s
	}
	// Checkpoints keep the recent losses, so that a resumed run records
	// the same training loss.
	if v, ok := r.ckpt.Value("wisp.train.recent_losses"); ok {
		if l, ok := v.([]float64); ok {
			r.recent = append(r.recent, l[max(0, len(l)-recentLosses):]...)
		}
	}
}

// describe prints the model's shape and the training schedule.
func (r *run) describe() {
	o := r.trainer.Options()
	c := r.trainer.Model().Config
	fmt.Fprintf(r.stderr, "model: %d parameters (dim %d, %d layers, %d heads, %d key/value heads, hidden %d, vocabulary %d, %s classifier)\n",
		c.Params(), c.Dim, c.Layers, c.Heads, c.KVHeads, c.HiddenDim, c.Vocab, map[bool]string{true: "tied", false: "untied"}[c.Tied])
	perStep := r.tokensPerStep()
	fmt.Fprintf(r.stderr, "training: %d steps of %d×%d×%d = %d tokens (%.2f epochs), %d threads\n",
		o.Steps, o.Accum, o.Batch, o.SeqLen, perStep, float64(o.Steps*perStep)/float64(len(r.data.train)), o.Threads)
}

// tokensPerStep is the positions one optimizer step trains on.
func (r *run) tokensPerStep() int {
	o := r.trainer.Options()
	return o.Batch * o.Accum * o.SeqLen
}

// takeSteps takes the steps that remain, showing progress, evaluating and
// writing checkpoints as the flags ask, and says how fast it went.
func (r *run) takeSteps() error {
	tr := r.trainer
	prog := newProgress(r.stderr, r.flags.logEvery)
	start := time.Now()
	startStep := tr.StepsDone()
	for tr.StepsDone() < tr.Options().Steps {
		s, err := tr.Step()
		if err != nil {
			return err
		}
		r.recent = append(r.recent, s.Loss)
		if len(r.recent) > recentLosses {
			r.recent = r.recent[1:]
		}
		prog.show(s.Step, s.Step == tr.Options().Steps, r.progressLine(s, time.Since(start), s.Step-startStep))
		if err := r.afterStep(s.Step, prog); err != nil {
			return err
		}
	}
	prog.clear()
	if done := tr.StepsDone() - startStep; done > 0 {
		el := time.Since(start)
		fmt.Fprintf(r.stderr, "trained %d steps in %s: %.0f tokens/s\n", done, el.Round(time.Second),
			float64(done*r.tokensPerStep())/el.Seconds())
	}
	return nil
}

// progressLine describes step s, the done-th of this run, taken elapsed
// after the first began.
func (r *run) progressLine(s train.Stats, elapsed time.Duration, done int) string {
	o := r.trainer.Options()
	rate := float64(done*r.tokensPerStep()) / max(elapsed.Seconds(), 1e-9)
	left := time.Duration(float64(elapsed) / float64(done) * float64(o.Steps-s.Step))
	line := fmt.Sprintf("step %d/%d loss %.4f", s.Step, o.Steps, s.Loss)
	if o.Teacher != nil {
		line += fmt.Sprintf(" (KL %.4f, CE %.4f)", s.KL, s.CE)
	}
	return line + fmt.Sprintf(" lr %.2e |g| %.3f %.0f tok/s %s left", s.LR, s.GradNorm, rate, left.Round(time.Second))
}

// afterStep evaluates and writes a checkpoint after step when the flags
// ask for them there (never after the last step, which the model's own
// evaluation and file follow).
func (r *run) afterStep(step int, prog *progress) error {
	f, last := r.flags, r.trainer.Options().Steps
	if f.evalEvery > 0 && step%f.evalEvery == 0 && step < last {
		prog.clear()
		if err := r.evaluate(); err != nil {
			return err
		}
	}
	if f.ckptEvery > 0 && step%f.ckptEvery == 0 && step < last {
		n, err := r.write(r.ckptPath, true)
		if err != nil {
			return err
		}
		prog.clear()
		fmt.Fprintf(r.stderr, "step %d: checkpoint %s (%d bytes)\n", step, r.ckptPath, n)
	}
	return nil
}

// trainSummary is what a training run ended with.
type trainSummary struct {
	out      string // the model written
	steps    int
	tokens   int64
	lastLoss float64 // the last step's training loss, if hasLoss
	hasLoss  bool
	eval     *train.Eval // the last held-out evaluation, if any
}

// write prints the summary as one line.
func (s *trainSummary) write(w io.Writer) {
	line := fmt.Sprintf("%s: %d steps, %d tokens", s.out, s.steps, s.tokens)
	if s.hasLoss {
		line += fmt.Sprintf(", training loss %.4f", s.lastLoss)
	}
	if s.eval != nil {
		line += fmt.Sprintf(", held-out loss %.4f (perplexity %.3f)", s.eval.Loss, s.eval.Perplexity)
	}
	fmt.Fprintln(w, line)
}

// evaluate measures the held-out loss, if there is held-out text, and
// prints it.
func (r *run) evaluate() error {
	if len(r.data.eval) == 0 {
		return nil
	}
	tr, o := r.trainer, r.trainer.Options()
	start := time.Now()
	e, err := tr.Evaluate(r.data.eval, r.flags.evalTokens)
	if err != nil {
		return err
	}
	r.lastEval = &e
	kl := ""
	if o.Teacher != nil {
		kl = fmt.Sprintf(", KL(teacher‖student) %.4f at T=%g", e.KL, o.Temperature)
	}
	fmt.Fprintf(r.stderr, "step %d: held-out loss %.4f, perplexity %.3f%s over %d tokens (%s)\n",
		tr.StepsDone(), e.Loss, e.Perplexity, kl, e.Tokens, time.Since(start).Round(time.Millisecond))
	return nil
}

// metadata records the run in the model's wisp.train.* keys.
func (r *run) metadata(b *gguf.Builder) {
	const p = "wisp.train."
	tr := r.trainer
	b.Set(p+"command", r.first)
	if r.first != r.cmdLine {
		b.Set(p+"resumed_command", r.cmdLine)
	}
	b.Set(p+"steps", uint64(tr.StepsDone()))
	b.Set(p+"tokens", uint64(tr.Tokens()))
	if len(r.recent) > 0 {
		var s float64
		for _, l := range r.recent {
			s += l
		}
		b.Set(p+"train_loss", float32(s/float64(len(r.recent))))
	}
	if e := r.lastEval; e != nil {
		if tr.Options().Teacher != nil {
			b.Set("wisp.distil.eval_kl", float32(e.KL))
		}
		b.Set(p+"eval_loss", float32(e.Loss))
		b.Set(p+"eval_perplexity", float32(e.Perplexity))
		b.Set(p+"eval_tokens", uint64(e.Tokens))
	}
	b.Set(p+"corpus", baseName(r.corpus.trainPath))
	b.Set(p+"corpus_sha256", r.corpus.trainSum)
	if r.corpus.heldOutLines > 0 {
		b.Set(p+"holdout_lines", uint64(r.corpus.heldOutLines))
	}
	if r.corpus.evalSum != "" {
		b.Set(p+"eval_corpus", baseName(r.corpus.evalPath))
		b.Set(p+"eval_sha256", r.corpus.evalSum)
	}
	b.Set(p+"params", uint64(tr.Model().Config.Params()))
	if r.meta != nil {
		r.meta(b)
	}
}

// write writes the model, or a checkpoint (the model with the optimizer's
// state), to path through a temporary file, and returns its size.
func (r *run) write(path string, checkpoint bool) (int64, error) {
	var b *gguf.Builder
	var err error
	if checkpoint {
		b, err = r.trainer.Checkpoint(r.vocab, r.name)
	} else {
		b, err = r.trainer.Model().Builder(r.vocab, r.name)
	}
	if err != nil {
		return 0, err
	}
	r.metadata(b)
	if checkpoint {
		b.Set("wisp.train.recent_losses", append([]float64(nil), r.recent...))
	}
	tmp := path + ".tmp"
	n, err := writeGGUF(tmp, b)
	if err != nil {
		return 0, err
	}
	return n, os.Rename(tmp, path)
}

// recentLosses is how many of the last steps' losses the final training
// loss is the mean of.
const recentLosses = 20

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// readGGUF reads and parses a GGUF file.
func readGGUF(path string) (*gguf.File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := gguf.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// progress shows a progress line: redrawn in place on a terminal, else
// printed every so many steps.
type progress struct {
	w     io.Writer
	tty   bool
	every int
	shown bool
	last  time.Time
}

func newProgress(w io.Writer, every int) *progress {
	p := &progress{w: w, every: max(every, 1)}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) show(step int, final bool, line string) {
	if !p.tty {
		if step%p.every == 0 || final {
			fmt.Fprintln(p.w, line)
		}
		return
	}
	if now := time.Now(); final || now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.shown = true
	}
}

// clear ends a line being redrawn, so that other output starts on its own.
func (p *progress) clear() {
	if p.shown {
		fmt.Fprintln(p.w)
		p.shown = false
	}
}
