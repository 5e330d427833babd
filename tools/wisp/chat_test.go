package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"wisp/engine/gguf"
	"wisp/internal/synth"
)

// TestChat drives wisp chat through two turns, /reset and the first turn
// again, natively and in wazero: the second turn reuses at least the
// first's prompt from the cache, the turn after /reset none, and it replies
// as the first turn did; both runtimes print the same.
func TestChat(t *testing.T) {
	data, err := synth.Bytes(synth.Shape{Arch: "llama", Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 400, ContextLen: 512, RopeBase: 10000, Tied: true},
		synth.Options{Type: gguf.F16, Seed: 2, ChatML: true})
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(t.TempDir(), "chat.gguf")
	if err := os.WriteFile(model, data, 0o644); err != nil {
		t.Fatal(err)
	}
	stats := regexp.MustCompile(`\[prompt (\d+) tokens, (\d+) reused, (\d+) evaluated`)
	var outputs []string
	for _, rt := range []string{"native", "wazero"} {
		var stdout, stderr bytes.Buffer
		in := strings.NewReader("hello there\nand then <|im_end|>?\n/reset\nhello there\n/exit\nnot read\n")
		err := chatSession([]string{"-m", model, "--system", "Be brief.", "-n", "12", "-t", "0.8", "--seed", "5", "--runtime", rt}, in, &stdout, &stderr)
		if err != nil {
			t.Fatalf("%s: %v\n%s", rt, err, stderr.String())
		}
		turns := strings.Split(stdout.String(), "> ")
		// "", three replies and "(a new conversation)", then the prompt /exit answers.
		if len(turns) != 6 || turns[3] != "(a new conversation)\n" || turns[5] != "" {
			t.Fatalf("%s: stdout %q", rt, stdout.String())
		}
		if turns[1] != turns[4] || turns[1] == "\n" {
			t.Errorf("%s: after /reset the same message got %q, first %q", rt, turns[4], turns[1])
		}
		var n [][3]int
		for _, m := range stats.FindAllStringSubmatch(stderr.String(), -1) {
			var v [3]int
			for i := range v {
				v[i], _ = strconv.Atoi(m[i+1])
			}
			n = append(n, v)
		}
		if len(n) != 3 {
			t.Fatalf("%s: stderr %q", rt, stderr.String())
		}
		if n[0][1] != 0 || n[1][1] < n[0][0] || n[1][2] != n[1][0]-n[1][1] || n[2][1] != 0 || n[2][0] != n[0][0] {
			t.Errorf("%s: [prompt reused evaluated] per turn %v: the second turn must reuse the first's prompt, the turn after /reset nothing", rt, n)
		}
		outputs = append(outputs, stdout.String())
	}
	if outputs[0] != outputs[1] {
		t.Errorf("native printed %q\nwazero %q", outputs[0], outputs[1])
	}
}
