package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// TestParseRunFlags checks what wisp run's flags become, and that a bad
// flag is refused before any model is read.
func TestParseRunFlags(t *testing.T) {
	checkParses(t, parseRunFlags, []parseCase[runOptions]{
		{[]string{"-m", "a.gguf"}, func(o runOptions) bool {
			return o.model == "a.gguf" && o.steps == 256 && o.runtime == "native" && o.threads == 1 && !o.quiet && o.opt.Seed != 0
		}, ""},
		{[]string{"a.gguf", "-n", "0", "-q", "--seed", "7", "-p", "hi"}, func(o runOptions) bool {
			return o.model == "a.gguf" && o.steps == 0 && o.quiet && o.opt.Seed == 7 && o.prompt == "hi"
		}, ""},
		{[]string{"-m", "a.bin", "-z", "tok.bin", "--runtime", "wazero", "--threads", "2"}, func(o runOptions) bool {
			return o.tokPath == "tok.bin" && o.runtime == "wazero" && o.threads == 2
		}, ""},
		{[]string{"-m", "a.gguf", "extra"}, nil, "usage"},
		{[]string{"a.gguf", "b.gguf"}, nil, "usage"},
		{[]string{"-m", "a.gguf", "--top-p", "2"}, nil, "--top-p: "},
		{[]string{"-m", "a.gguf", "-t", "-1"}, nil, "temperature"},
	})
}

// TestParseTrainFlags checks what wisp train's flags become and which
// combinations are refused before anything is read.
func TestParseTrainFlags(t *testing.T) {
	checkParses(t, parseTrainFlags, []parseCase[*trainOptions]{
		{[]string{"--text", "t.txt"}, func(o *trainOptions) bool {
			return o.flags.text == "t.txt" && o.flags.out == "model.gguf" && o.vocab == 2048 && o.shape.dim == 256 && o.flags.resumeSteps == 0 && !o.chat
		}, ""},
		{[]string{"--train", "a.txt", "--eval", "b.txt", "--steps", "7", "--chat", "-o", "m.gguf"}, func(o *trainOptions) bool {
			return o.flags.trainPath == "a.txt" && o.flags.evalPath == "b.txt" && o.flags.steps == 7 && o.flags.resumeSteps == 7 && o.chat && o.flags.out == "m.gguf"
		}, ""},
		{[]string{"--text", "t.txt", "--init", "m.gguf", "--add-special", "<a>", "--eos", "<a>"}, func(o *trainOptions) bool {
			return o.initPath == "m.gguf" && o.addSpecial == "<a>" && o.eos == "<a>"
		}, ""},
		// A resumed run ignores --init, so --init's conflicts do not matter.
		{[]string{"--text", "t.txt", "--init", "m.gguf", "--dim", "64", "--resume", "c.ckpt"}, func(o *trainOptions) bool {
			return o.flags.resume == "c.ckpt" && o.shape.dim == 64
		}, ""},
		{nil, nil, "usage"},
		{[]string{"--text", "t.txt", "extra"}, nil, "usage"},
		{[]string{"--text", "t.txt", "--init", "m.gguf", "--tokenizer-from", "m.gguf"}, nil, "not both"},
		{[]string{"--text", "t.txt", "--init", "m.gguf", "--dim", "64", "--vocab", "500", "--untied"}, nil, "--dim, --untied, --vocab cannot change them"},
	})
}

// TestParseDistilFlags checks what wisp distil's flags become.
func TestParseDistilFlags(t *testing.T) {
	checkParses(t, parseDistilFlags, []parseCase[*distilOptions]{
		{[]string{"--teacher", "t.gguf", "--text", "t.txt"}, func(o *distilOptions) bool {
			return o.teacherPath == "t.gguf" && o.studentPath == "" && o.temperature == 2 && o.alpha == 0.5 &&
				o.sampleTokens == 0 && o.flags.out == "student.gguf" && o.flags.resumeSteps == 0
		}, ""},
		{[]string{"--teacher", "t.gguf", "--student", "s.gguf", "--train", "a.txt", "--temperature", "1.5", "--alpha", "0", "--sample-tokens", "100", "--steps", "3"}, func(o *distilOptions) bool {
			return o.studentPath == "s.gguf" && o.temperature == 1.5 && o.alpha == 0 && o.sampleTokens == 100 && o.flags.resumeSteps == 3
		}, ""},
		{[]string{"--text", "t.txt"}, nil, "usage"},
		{[]string{"--teacher", "t.gguf"}, nil, "usage"},
		{[]string{"--teacher", "t.gguf", "--text", "t.txt", "extra"}, nil, "usage"},
	})
}

// parseCase is a command's arguments and what parsing them must give:
// options that check accepts, or the error wantErr ("usage" for
// errUsage, "" for none).
type parseCase[O any] struct {
	args    []string
	check   func(O) bool
	wantErr string
}

// checkParses reports the cases whose arguments parse does not read as
// they want.
func checkParses[O any](t *testing.T, parse func([]string, io.Writer) (O, error), cases []parseCase[O]) {
	t.Helper()
	for _, c := range cases {
		o, err := parse(c.args, io.Discard)
		switch {
		case c.wantErr == "usage":
			if !errors.Is(err, errUsage) {
				t.Errorf("%q: err %v, want errUsage", c.args, err)
			}
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: err %v, want %q", c.args, err, c.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", c.args, err)
		case !c.check(o):
			t.Errorf("%q: options not as the flags ask", c.args)
		}
	}
}
