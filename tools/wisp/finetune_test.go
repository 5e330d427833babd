package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"wisp/engine/chat"
	"wisp/engine/tokenizer"
)

var chatAnswers = []string{"Let there be light.", "And there was light.", "It was good.", "The first day."}

// chatLines returns n conversations in wisp train --chat's JSON lines, the
// replies predictable from the questions.
func chatLines(n, seed int) string {
	var b strings.Builder
	for i := range n {
		k := (i*7 + seed) % len(chatAnswers)
		msgs := []map[string]string{}
		if i%3 == 0 {
			msgs = append(msgs, map[string]string{"role": "system", "content": "Answer briefly."})
		}
		msgs = append(msgs,
			map[string]string{"role": "user", "content": fmt.Sprintf("Say line %d.", k+1)},
			map[string]string{"role": "assistant", "content": chatAnswers[k]})
		if i%4 == 1 {
			msgs = append(msgs,
				map[string]string{"role": "user", "content": "Again."},
				map[string]string{"role": "assistant", "content": chatAnswers[k]})
		}
		line, _ := json.Marshal(map[string]any{"messages": msgs})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// heldOutLosses returns the held-out losses wisp train printed, in order.
func heldOutLosses(stderr string) []float64 {
	var ls []float64
	for _, line := range strings.Split(stderr, "\n") {
		if i := strings.Index(line, "held-out loss "); i >= 0 {
			var l float64
			fmt.Sscan(line[i+len("held-out loss "):], &l)
			ls = append(ls, l)
		}
	}
	return ls
}

// TestTrainInitChat fine-tunes a tiny trained model from --init on
// conversations, adding ChatML's control tokens: the result keeps the
// old tokens' ids, has the new ones as control tokens with <|im_end|> as
// EOS, carries the ChatML template, and its held-out reply loss falls.
func TestTrainInitChat(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(text, []byte(trainText), 0o644); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base.gguf")
	runTrain(t, append(append([]string{"--text", text, "-o", base}, tinyTrain...), "--ctx", "128")...)
	conv, convEval := filepath.Join(dir, "conv.jsonl"), filepath.Join(dir, "eval.jsonl")
	if err := os.WriteFile(conv, []byte(chatLines(200, 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(convEval, []byte(chatLines(20, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "chat.gguf")
	_, stderr := runTrain(t, "--init", base, "--add-special", "<|im_start|>,<|im_end|>", "--eos", "<|im_end|>",
		"--chat", "--train", conv, "--eval", convEval, "-o", out, "--ctx", "128", "--batch", "8", "--steps", "40",
		"--warmup", "4", "--lr", "1e-2", "--eval-every", "20", "--ckpt-every", "0", "--threads", "2")
	t.Logf("stderr:\n%s", stderr)
	losses := heldOutLosses(stderr)
	if len(losses) != 3 || !(losses[2] < 0.5*losses[0]) {
		t.Errorf("held-out reply losses %v: want three, the last below half the first", losses)
	}

	baseTok, err := tokenizer.FromGGUF(readTestGGUF(t, base))
	if err != nil {
		t.Fatal(err)
	}
	m, err := loadModel(out, "")
	if err != nil {
		t.Fatal(err)
	}
	tok := m.Tokenizer
	old, v := baseTok.Vocab(), tok.Vocab()
	n := len(old.Tokens)
	if len(v.Tokens) != n+2 || !slices.Equal(v.Tokens[:n], old.Tokens) || !slices.Equal(v.Types[:n], old.Types) {
		t.Fatalf("vocabulary of %d tokens: want the base's %d, unchanged, and two more", len(v.Tokens), n)
	}
	for i, s := range []string{"<|im_start|>", "<|im_end|>"} {
		id := n + i
		if v.Tokens[id] != s || v.Types[id] != tokenizer.TypeControl || !tok.IsControl(id) {
			t.Errorf("token %d is %q of type %d, want control token %q", id, v.Tokens[id], v.Types[id], s)
		}
	}
	if tok.EOS() != n+1 || !tok.IsEOG(n+1) || tok.BOS() != old.BOS {
		t.Errorf("EOS %d, BOS %d: want <|im_end|> (%d) and the base's BOS %d", tok.EOS(), tok.BOS(), n+1, old.BOS)
	}
	f := readTestGGUF(t, out)
	if src, err := f.String(chat.KeyTemplate); err != nil || src != chat.ChatML {
		t.Errorf("chat template %q, %v: want ChatML", src, err)
	}
	if s, err := f.String("wisp.train.init"); err != nil || s != "base.gguf" {
		t.Errorf("wisp.train.init = %q, %v", s, err)
	}
	// The template's markers are the control tokens, the user's are text.
	fm, err := chat.FromGGUF(f, tok)
	if err != nil {
		t.Fatal(err)
	}
	ids, _, err := fm.Prompt(tok, []chat.Message{{Role: "user", Content: "<|im_end|> Say line 1."}}, chat.PromptOptions{AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := countOf(ids, n); c != 2 {
		t.Errorf("prompt %v has %d <|im_start|>, want 2", ids, c)
	}
	if c := countOf(ids, n+1); c != 1 {
		t.Errorf("prompt %v has %d <|im_end|>, want 1 (the user's is text)", ids, c)
	}

	// wisp eval --chat scores the same replies, each conversation on its
	// own (training evaluates windows cut across them): the same tokens,
	// a loss near the last evaluation's.
	code, stdout, errOut := wisp(t, "eval", "--chat", "-m", out, "--text", convEval, "--json")
	var ev struct {
		NLL    float64 `json:"nll"`
		Tokens int     `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(stdout), &ev); code != 0 || err != nil {
		t.Fatalf("wisp eval --chat: %d, %v\n%s%s", code, err, stdout, errOut)
	}
	if ev.Tokens != 325 || len(losses) == 3 && math.Abs(ev.NLL-losses[2]) > 0.3 {
		t.Errorf("wisp eval --chat: loss %.4f over %d tokens; training's last evaluation %v over 325", ev.NLL, ev.Tokens, losses)
	}

	// A greedy reply to a trained question is a sentence like the
	// answers (which, the model is too small to learn in 40 steps), ended
	// by <|im_end|>.
	var so, se bytes.Buffer
	if err := chatSession([]string{"-m", out, "-t", "0", "-n", "20"}, strings.NewReader("Say line 1.\n"), &so, &se); err != nil {
		t.Fatal(err)
	}
	reply := strings.TrimSuffix(strings.TrimPrefix(so.String(), "> "), "\n> \n")
	if !strings.HasSuffix(reply, ".") || strings.Contains(reply, "<|") || !strings.Contains(se.String(), ", eos]") {
		t.Errorf("wisp chat: want a sentence ended by <|im_end|> (eos)\nstdout %q\nstderr %q", so.String(), se.String())
	}
}

func countOf(ids []int, id int) int {
	c := 0
	for _, x := range ids {
		if x == id {
			c++
		}
	}
	return c
}

// TestTrainInitErrors checks that --init, --add-special, --eos and --chat
// refuse what they cannot use, with errors that say why.
func TestTrainInitErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := write("text.txt", trainText)
	conv := write("conv.jsonl", chatLines(50, 0))
	base := filepath.Join(dir, "base.gguf")
	runTrain(t, append([]string{"--text", text, "-o", base}, tinyTrain...)...)
	q4 := filepath.Join(dir, "q4.gguf")
	qwen := filepath.Join(dir, "qwen.gguf")
	for _, args := range [][]string{
		{"convert", "--type", "q4_0", "-o", q4, base},
		{"synth", "--arch", "qwen2", "--dim", "32", "--hidden", "64", "--layers", "1", "--heads", "2", "--vocab", "300", "-o", qwen},
	} {
		if code, _, stderr := wisp(t, args...); code != 0 {
			t.Fatalf("%v: %s", args, stderr)
		}
	}
	chatML := []string{"--add-special", "<|im_start|>,<|im_end|>", "--chat", "--train", conv}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"missing", []string{"--init", filepath.Join(dir, "none.gguf"), "--text", text}, "no such file"},
		{"not gguf", []string{"--init", text, "--text", text}, text},
		{"qwen2", []string{"--init", qwen, "--text", text}, `architecture "qwen2": wisp trains llama models only`},
		{"quantized", []string{"--init", q4, "--text", text}, "wisp reads F32 and F16"},
		{"shape", []string{"--init", base, "--text", text, "--dim", "64", "--vocab", "500"}, "--dim, --vocab cannot change them"},
		{"tokenizer-from", []string{"--init", base, "--tokenizer-from", base, "--text", text}, "not both"},
		{"present", []string{"--init", base, "--text", text, "--add-special", "<s>"}, `token "<s>" is already in the vocabulary`},
		{"twice", []string{"--init", base, "--text", text, "--add-special", "<a>,<a>"}, "given twice"},
		{"empty", []string{"--init", base, "--text", text, "--add-special", "<a>,,<b>"}, "an empty token"},
		{"eos", []string{"--init", base, "--text", text, "--eos", "<|im_end|>"}, "no such token"},
		{"no markers", []string{"--init", base, "--chat", "--train", conv}, "add it with --add-special"},
		{"plain text as chat", append([]string{"--init", base}, append(chatML[:4], text)...), "line 1: not a conversation"},
		{"no reply", append([]string{"--init", base}, append(chatML[:4], write("noreply.jsonl", `{"messages":[{"role":"user","content":"Hi."}]}`+"\n"))...), "line 1: the conversation has no reply"},
		{"reply first", append([]string{"--init", base}, append(chatML[:4], write("first.jsonl", chatLines(2, 0)+`{"messages":[{"role":"assistant","content":"Hi."}]}`+"\n"))...), "line 3: the conversation starts with the assistant"},
		{"bad role", append([]string{"--init", base}, append(chatML[:4], write("role.jsonl", `{"messages":[{"role":"king","content":"Hi."},{"role":"assistant","content":"Hi."}]}`+"\n"))...), `role "king"`},
		{"unknown field", append([]string{"--init", base}, append(chatML[:4], write("field.jsonl", `{"messages":[],"extra":1}`+"\n"))...), "unknown field"},
	} {
		var o, e bytes.Buffer
		err := trainCmd(append(tt.args, "-o", filepath.Join(dir, "x.gguf"), "--steps", "1", "--ctx", "32"), &o, &e)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v: error %v, want one containing %q", tt.name, tt.args, err, tt.want)
		}
	}
}
