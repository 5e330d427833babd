package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBible returns text in the shape bible -f prints: three books of two
// chapters of five verses, every verse's text naming its reference.
func fakeBible() string {
	var b strings.Builder
	for _, book := range []string{"Ge", "Ruth", "Mark"} {
		for c := 1; c <= 2; c++ {
			for v := 1; v <= 5; v++ {
				fmt.Fprintf(&b, "%s%d:%d  Verse  of %s %d %d, with some more words to cut.\n", book, c, v, book, c, v)
			}
		}
	}
	return b.String()
}

func generate(t *testing.T, in string, seed uint64) (train, eval []Conversation, raw string) {
	t.Helper()
	dir := t.TempDir()
	tp, ep := filepath.Join(dir, "t.jsonl"), filepath.Join(dir, "e.jsonl")
	if err := mainErr(strings.NewReader(in), seed, 300, 60, "Ruth Mark", tp, ep); err != nil {
		t.Fatal(err)
	}
	read := func(p string) []Conversation {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var cs []Conversation
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var c Conversation
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		return cs
	}
	b1, _ := os.ReadFile(tp)
	b2, _ := os.ReadFile(ep)
	return read(tp), read(ep), string(b1) + string(b2)
}

// TestConversations checks the conversations' shape, that the held-out
// books appear only in the evaluation file and the others only in the
// training file, and that the output follows the seed.
func TestConversations(t *testing.T) {
	train, eval, raw := generate(t, fakeBible(), 1)
	if len(train) != 300 || len(eval) != 60 {
		t.Fatalf("%d and %d conversations, want 300 and 60", len(train), len(eval))
	}
	kinds := map[string]bool{}
	for name, cs := range map[string][]Conversation{"train": train, "eval": eval} {
		for i, c := range cs {
			m := c.Messages
			if m[0].Role == "system" {
				m = m[1:]
			}
			if len(m) < 2 || len(m)%2 != 0 {
				t.Fatalf("%s %d: %d messages after the system prompt", name, i, len(m))
			}
			for k, msg := range m {
				want := []string{"user", "assistant"}[k%2]
				if msg.Role != want || msg.Content == "" || strings.Contains(msg.Content, "  ") {
					t.Errorf("%s %d: message %d is %+v, want %s with text", name, i, k, msg, want)
				}
				// Every verse and reference names its book.
				for _, book := range []string{"Ge", "Genesis", "Ruth", "Mark"} {
					held := book == "Ruth" || book == "Mark"
					if strings.Contains(msg.Content, book+" ") && held != (name == "eval") {
						t.Errorf("%s %d: %q names %s", name, i, msg.Content, book)
					}
				}
			}
			q := m[0].Content
			kinds[strings.Fields(q)[0]] = true
		}
	}
	for _, k := range []string{"Recite", "Which", "Finish", "Where"} {
		if !kinds[k] {
			t.Errorf("no question begins %q (kinds %v)", k, kinds)
		}
	}
	if _, _, again := generate(t, fakeBible(), 1); again != raw {
		t.Error("the same seed gave other conversations")
	}
	if _, _, other := generate(t, fakeBible(), 2); other == raw {
		t.Error("another seed gave the same conversations")
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	tp, ep := filepath.Join(dir, "t.jsonl"), filepath.Join(dir, "e.jsonl")
	for _, tt := range []struct {
		in, held, want string
	}{
		{"In the beginning\n", "Ruth", "line 1 has no verse reference"},
		{"Xy1:1 Text.\n", "Ruth", `unknown book "Xy"`},
		{"", "Ruth", "no verses"},
		{fakeBible(), "Psalms", `unknown book "Psalms"`},
		{fakeBible(), "Ge Ruth Mark", "0 training"},
		{fakeBible(), "", "give -held"},
	} {
		err := mainErr(strings.NewReader(tt.in), 1, 10, 10, tt.held, tp, ep)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%.20q, held %q: error %v, want one containing %q", tt.in, tt.held, err, tt.want)
		}
	}
}
