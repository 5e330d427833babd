// Package option defines wisp's generation options: one struct, Options,
// whose field tags give each option's JSON name, its allowed range, the
// default the front ends (wisp run, the page) use, and wisp run's flag for
// it. The engine, the wasm module, its hosts and the command line all take
// this struct; Validate is the one validation; Describe lists the options for
// the JavaScript side, whose table (site/abi.js, abi.d.ts) is generated
// from it.
//
// Adding an option is adding a field here, with its doc and tags, then
// make abi (go test fails until site/abi.js and abi.d.ts, which carry its
// kind, range, default and doc to the page, are regenerated), and its
// default in site/wisp.js's DEFAULTS (site/test/options.test.js fails until
// it agrees with the tag).
package option

import (
	"flag"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// Options configures a generation: the session's context and length, when
// it stops, and how the sampler picks each token. The zero value (and the
// empty JSON document) samples greedily over the model's whole context
// until an end token.
//
// The tags of each field: json, its name (in JSON, in JavaScript and in
// errors); range:"lo,hi", the values it may take, inclusive, where an empty
// bound is none; default, what wisp run and the page use when it is not
// given (none: a random seed); flag and usage, wisp run's flag for it.
type Options struct {
	// Context is the number of positions a session holds; 0 means the
	// model's context length (which may need a lot of memory for large
	// models).
	Context int `json:"context,omitempty" range:"0," default:"0"`
	// Temperature divides the logits; 0 picks the most likely token.
	Temperature float32 `json:"temperature,omitempty" range:"0,100" default:"1" flag:"t" usage:"temperature; 0 picks the most likely token (greedy)"`
	// TopK keeps only the K most likely tokens; 0 keeps all.
	TopK int `json:"topK,omitempty" range:"0," default:"0" flag:"top-k" usage:"keep only the K most likely tokens; 0 keeps all"`
	// TopP keeps the smallest set of most likely tokens whose probabilities
	// add up to at least P; 0 or 1 keeps all.
	TopP float32 `json:"topP,omitempty" range:"0,1" default:"0.9" flag:"top-p" usage:"nucleus sampling: keep the most likely tokens up to this total probability; 0 or 1 keeps all"`
	// MinP drops tokens less likely than MinP times the most likely one; 0
	// keeps all.
	MinP float32 `json:"minP,omitempty" range:"0,1" default:"0" flag:"min-p" usage:"drop tokens less likely than this fraction of the most likely one"`
	// RepeatPenalty divides positive logits (and multiplies negative ones) of
	// tokens seen in the last RepeatLastN tokens; 0 or 1 is no penalty.
	RepeatPenalty float32 `json:"repeatPenalty,omitempty" range:"0,100" default:"1" flag:"repeat-penalty" usage:"penalise tokens seen in the last --repeat-last-n tokens; 1 is none"`
	// RepeatLastN is how many recent tokens the penalty looks at; 0 means 64.
	RepeatLastN int `json:"repeatLastN,omitempty" range:"0," default:"64" flag:"repeat-last-n" usage:"how many recent tokens --repeat-penalty looks at"`
	// Seed seeds the sampler's random numbers (llama2.c's xorshift
	// generator); 0 is the same as 1, on which that generator is not stuck.
	// In JavaScript, seeds above 2^53 lose precision. The front ends take a
	// random one when none is given.
	Seed uint64 `json:"seed,omitempty" range:"0," flag:"seed" usage:"random seed; 0 takes one from the clock"`
	// MaxTokens is how many tokens may be generated after the prompt; 0
	// means until the context is full.
	MaxTokens int `json:"maxTokens,omitempty" range:"0," default:"256"`
	// Stop lists strings that end generation; the text is cut before them.
	// None may be empty.
	Stop []string `json:"stop,omitempty" flag:"stop" usage:"end generation before this text (repeatable)"`
}

// Validate reports the first option out of its range, as an *Error.
func (o *Options) Validate() error {
	v := reflect.ValueOf(o).Elem()
	for i := range specs {
		s := &specs[i]
		f := v.Field(s.field)
		if s.Kind == Strings {
			for _, str := range f.Interface().([]string) {
				if str == "" {
					return &Error{Spec: s, Value: `""`}
				}
			}
			continue
		}
		if x := number(f); !(x >= s.lo && x <= s.hi) {
			return &Error{Spec: s, Value: fmt.Sprint(f.Interface())}
		}
	}
	return nil
}

// An Error is an option out of its range.
type Error struct {
	Spec  *Spec
	Value string // the value, as Go prints it
}

func (e *Error) Error() string {
	if e.Spec.Kind == Strings {
		return fmt.Sprintf("option %s holds an empty string; its strings must not be empty", e.Spec.Name)
	}
	return fmt.Sprintf("option %s = %s is out of range %s", e.Spec.Name, e.Value, e.Spec.Range())
}

// The kinds of option.
const (
	Int     = "int"     // an integer
	Float   = "float"   // a finite number
	Strings = "strings" // a list of non-empty strings
)

// Spec describes one option; its JSON form is what site/abi.js holds.
type Spec struct {
	Name string   `json:"name"`          // the JSON name
	Kind string   `json:"kind"`          // Int, Float or Strings
	Min  *float64 `json:"min,omitempty"` // the smallest value allowed, or nil
	Max  *float64 `json:"max,omitempty"` // the largest value allowed, or nil
	// Default is what the front ends use when the option is not given: a
	// number, an empty list of strings, or nil for none.
	Default any    `json:"default"`
	Flag    string `json:"-"` // wisp run's flag, or ""
	Usage   string `json:"-"` // the flag's help

	field  int     // the index of the field in Options
	lo, hi float64 // the range, with infinities for missing bounds
}

// Range formats the allowed range, as in "[0, 1]" or "[0, ∞)".
func (s *Spec) Range() string {
	lo, hi := "(-∞", "∞)"
	if s.Min != nil {
		lo = "[" + strconv.FormatFloat(*s.Min, 'g', -1, 64)
	}
	if s.Max != nil {
		hi = strconv.FormatFloat(*s.Max, 'g', -1, 64) + "]"
	}
	return lo + ", " + hi
}

// Describe returns the options in the order of their fields.
func Describe() []Spec { return append([]Spec(nil), specs...) }

// specs describes the fields of Options, from their tags.
var specs = describe()

func describe() []Spec {
	t := reflect.TypeFor[Options]()
	var out []Spec
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		s := Spec{Name: name, Flag: f.Tag.Get("flag"), Usage: f.Tag.Get("usage"), field: i, lo: math.Inf(-1), hi: math.Inf(1)}
		switch f.Type.Kind() {
		case reflect.Int, reflect.Uint64:
			s.Kind = Int
		case reflect.Float32:
			s.Kind = Float
		case reflect.Slice:
			s.Kind, s.Default = Strings, []string{}
		default:
			panic("option: field " + f.Name + " has a type option does not handle")
		}
		if r, ok := f.Tag.Lookup("range"); ok {
			lo, hi, _ := strings.Cut(r, ",")
			if lo != "" {
				s.lo = must(strconv.ParseFloat(lo, 64))
				s.Min = &s.lo
			}
			if hi != "" {
				s.hi = must(strconv.ParseFloat(hi, 64))
				s.Max = &s.hi
			}
		}
		if d, ok := f.Tag.Lookup("default"); ok {
			s.Default = must(strconv.ParseFloat(d, 64))
		}
		out = append(out, s)
	}
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic("option: a tag of Options: " + err.Error())
	}
	return v
}

// number returns a numeric field's value.
func number(f reflect.Value) float64 {
	switch f.Kind() {
	case reflect.Int:
		return float64(f.Int())
	case reflect.Uint64:
		return float64(f.Uint())
	default:
		return f.Float()
	}
}

// Flags defines on fs a flag for each option with a flag tag, with the
// option's default, and sets those options of o to their defaults. Call
// the function it returns after fs.Parse: it stores the parsed values in o.
func Flags(fs *flag.FlagSet, o *Options) (store func()) {
	v := reflect.ValueOf(o).Elem()
	var stores []func()
	for i := range specs {
		s := &specs[i]
		if s.Flag == "" {
			continue
		}
		d, _ := s.Default.(float64)
		switch p := v.Field(s.field).Addr().Interface().(type) {
		case *float32:
			// A float64 flag, whose help says "float", parsed as wisp run
			// always parsed it.
			f := fs.Float64(s.Flag, d, s.Usage)
			stores = append(stores, func() { *p = float32(*f) })
		case *int:
			fs.IntVar(p, s.Flag, int(d), s.Usage)
		case *uint64:
			fs.Uint64Var(p, s.Flag, uint64(d), s.Usage)
		case *[]string:
			*p = nil
			fs.Var((*stringsValue)(p), s.Flag, s.Usage)
		}
	}
	return func() {
		for _, f := range stores {
			f()
		}
	}
}

// stringsValue is a repeatable string flag.
type stringsValue []string

func (s *stringsValue) String() string     { return fmt.Sprint([]string(*s)) }
func (s *stringsValue) Set(v string) error { *s = append(*s, v); return nil }
