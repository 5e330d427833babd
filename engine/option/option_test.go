package option_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"slices"
	"testing"

	"wisp/engine/option"
)

func TestValidate(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name string
		opt  option.Options
		err  string // the error; "" for valid options
	}{
		{"zero value", option.Options{}, ""},
		{"llama2.c defaults", option.Options{Temperature: 1, TopP: 0.9}, ""},
		{"everything", option.Options{Context: 64, Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1, RepeatLastN: 128, Seed: 7, MaxTokens: 9, Stop: []string{"\n"}}, ""},
		{"bounds", option.Options{Temperature: 100, TopP: 1, MinP: 1, RepeatPenalty: 100, Seed: math.MaxUint64}, ""},
		{"negative context", option.Options{Context: -1}, "option context = -1 is out of range [0, ∞)"},
		{"negative temperature", option.Options{Temperature: -0.5}, "option temperature = -0.5 is out of range [0, 100]"},
		{"NaN temperature", option.Options{Temperature: nan}, "option temperature = NaN is out of range [0, 100]"},
		{"infinite temperature", option.Options{Temperature: inf}, "option temperature = +Inf is out of range [0, 100]"},
		{"huge temperature", option.Options{Temperature: 101}, "option temperature = 101 is out of range [0, 100]"},
		{"negative top-k", option.Options{TopK: -1}, "option topK = -1 is out of range [0, ∞)"},
		{"top-p above 1", option.Options{TopP: 1.01}, "option topP = 1.01 is out of range [0, 1]"},
		{"NaN min-p", option.Options{MinP: nan}, "option minP = NaN is out of range [0, 1]"},
		{"negative penalty", option.Options{RepeatPenalty: -1}, "option repeatPenalty = -1 is out of range [0, 100]"},
		{"negative last-n", option.Options{RepeatLastN: -3}, "option repeatLastN = -3 is out of range [0, ∞)"},
		{"negative max tokens", option.Options{MaxTokens: -2}, "option maxTokens = -2 is out of range [0, ∞)"},
		{"empty stop", option.Options{Stop: []string{"a", ""}}, "option stop holds an empty string; its strings must not be empty"},
		{"first of two", option.Options{TopK: -1, MaxTokens: -1}, "option topK = -1 is out of range [0, ∞)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opt.Validate()
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Validate = %v; want no error", err)
			case tt.err == "":
			case err == nil || err.Error() != tt.err:
				t.Fatalf("Validate = %v; want %q", err, tt.err)
			}
			var oe *option.Error
			if err != nil && !errors.As(err, &oe) {
				t.Errorf("Validate = %T, not an *option.Error", err)
			}
		})
	}
}

// TestJSON checks the JSON form: the zero value is the empty document,
// and the names are the tags'.
func TestJSON(t *testing.T) {
	js, err := json.Marshal(option.Options{})
	if err != nil || string(js) != "{}" {
		t.Errorf("the zero value is %s, %v; want {}", js, err)
	}
	js, _ = json.Marshal(option.Options{Context: 9, TopK: 40, Seed: 3, Stop: []string{"\n"}})
	if want := `{"context":9,"topK":40,"seed":3,"stop":["\n"]}`; string(js) != want {
		t.Errorf("JSON %s; want %s", js, want)
	}
}

func TestDescribe(t *testing.T) {
	var names []string
	for _, s := range option.Describe() {
		names = append(names, s.Name)
	}
	want := []string{"context", "temperature", "topK", "topP", "minP", "repeatPenalty", "repeatLastN", "seed", "maxTokens", "stop"}
	if !slices.Equal(names, want) {
		t.Errorf("Describe names %v; want %v", names, want)
	}
	js, err := json.Marshal(option.Describe()[:4])
	if err != nil {
		t.Fatal(err)
	}
	const wantJS = `[{"name":"context","kind":"int","min":0,"default":0},` +
		`{"name":"temperature","kind":"float","min":0,"max":100,"default":1},` +
		`{"name":"topK","kind":"int","min":0,"default":0},` +
		`{"name":"topP","kind":"float","min":0,"max":1,"default":0.9}]`
	if string(js) != wantJS {
		t.Errorf("Describe as JSON:\n%s\nwant\n%s", js, wantJS)
	}
}

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var help bytes.Buffer
	fs.SetOutput(&help)
	o := option.Options{Temperature: 5, Stop: []string{"x"}}
	store := option.Flags(fs, &o)
	store()
	if want := (option.Options{Temperature: 1, TopP: 0.9, RepeatPenalty: 1, RepeatLastN: 64}); !equal(o, want) {
		t.Errorf("the flags' defaults give %+v; want %+v", o, want)
	}
	if err := fs.Parse([]string{"-t", "0.8", "--top-k", "40", "--seed", "18446744073709551615", "--stop", "a", "--stop", "b"}); err != nil {
		t.Fatal(err)
	}
	store()
	if want := (option.Options{Temperature: 0.8, TopK: 40, TopP: 0.9, RepeatPenalty: 1, RepeatLastN: 64, Seed: math.MaxUint64, Stop: []string{"a", "b"}}); !equal(o, want) {
		t.Errorf("the flags give %+v; want %+v", o, want)
	}
	fs.PrintDefaults()
	const want = `  -min-p float
    	drop tokens less likely than this fraction of the most likely one
  -repeat-last-n int
    	how many recent tokens --repeat-penalty looks at (default 64)
  -repeat-penalty float
    	penalise tokens seen in the last --repeat-last-n tokens; 1 is none (default 1)
  -seed uint
    	random seed; 0 takes one from the clock
  -stop value
    	end generation before this text (repeatable)
  -t float
    	temperature; 0 picks the most likely token (greedy) (default 1)
  -top-k int
    	keep only the K most likely tokens; 0 keeps all
  -top-p float
    	nucleus sampling: keep the most likely tokens up to this total probability; 0 or 1 keeps all (default 0.9)
`
	if help.String() != want {
		t.Errorf("the flags' help:\n%s\nwant\n%s", help.String(), want)
	}
}

func equal(a, b option.Options) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
