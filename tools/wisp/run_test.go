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
	for _, c := range []struct {
		args    []string
		check   func(runOptions) bool
		wantErr string // "" for none; "usage" for errUsage
	}{
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
	} {
		o, err := parseRunFlags(c.args, io.Discard)
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
			t.Errorf("%q: got %+v", c.args, o)
		}
	}
}
