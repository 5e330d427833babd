package main

import (
	"bytes"
	"strings"
	"testing"

	"wisp/engine/gguf"
	"wisp/internal/sharedfiles"
)

func TestRun(t *testing.T) {
	model, err := sharedfiles.Path("models/stories260K.bin")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := sharedfiles.Path("models/tok512.bin")
	if err != nil {
		t.Fatal(err)
	}
	o := options{model: model, tok: tok, calibStories: 3, calibSeed: 100, evalStories: 2, evalSeed: 1, greedy: 20, typ: "f16", magnitude: true, texts: true}
	var out, log bytes.Buffer
	if err := run(o, &out, &log); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	rows := 0
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| model") && !strings.HasPrefix(line, "| ---") {
			rows++
		}
	}
	if rows != 8 {
		t.Errorf("%d rows, want 8 (F32, F16, three sizes by two methods):\n%s", rows, table)
	}
	for _, want := range []string{"| original (F32) | 1.01 MiB | 260032 (100.0 %) | 0.0000 | 100.0 % | 20 |", "Wanda against magnitude", "<details>"} {
		if !strings.Contains(table, want) {
			t.Errorf("the output lacks %q:\n%s", want, table)
		}
	}

	for _, c := range []struct {
		change func(*options)
		want   string
	}{
		{func(o *options) { o.calibSeed = 2 }, "overlap"},
		{func(o *options) { o.typ = "q8" }, "choose f16 or f32"},
		{func(o *options) { o.evalStories = 0 }, "must be positive"},
		{func(o *options) { o.greedy = 0 }, "-greedy 0"},
		{func(o *options) { o.model = "/nonexistent" }, "no such file"},
	} {
		bad := o
		c.change(&bad)
		if err := run(bad, &out, &log); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run: %v, want an error containing %q", err, c.want)
		}
	}
}

// TestCheck checks which flags are refused before anything is read, and
// the tensor type -type gives.
func TestCheck(t *testing.T) {
	ok := options{calibStories: 200, calibSeed: 1000, evalStories: 50, evalSeed: 1, greedy: 200, typ: "f16"}
	for _, c := range []struct {
		change func(*options)
		typ    gguf.TensorType
		want   string // the error's text; "" for none
	}{
		{func(*options) {}, gguf.F16, ""},
		{func(o *options) { o.typ = "f32" }, gguf.F32, ""},
		{func(o *options) { o.calibSeed = 51 }, gguf.F16, ""}, // adjacent ranges do not overlap
		{func(o *options) { o.calibSeed = 50 }, 0, "[50, 250) and of the held-out ones [1, 51) overlap"},
		{func(o *options) { o.calibStories = 0 }, 0, "-calib-stories 0 and -eval-stories 50 must be positive"},
		{func(o *options) { o.greedy = -1 }, 0, "-greedy -1 must be positive"},
		{func(o *options) { o.typ = "F16" }, 0, `-type "F16": choose f16 or f32`},
	} {
		o := ok
		c.change(&o)
		typ, err := o.check()
		switch {
		case c.want == "" && (err != nil || typ != c.typ):
			t.Errorf("%+v: %v, %v; want %v", o, typ, err, c.typ)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want an error containing %q", o, err, c.want)
		}
	}
}
