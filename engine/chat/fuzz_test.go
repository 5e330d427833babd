package chat_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wisp/engine/chat"
)

// FuzzTemplate parses and renders arbitrary templates over a conversation
// built from the input: neither may panic or run unbounded, and the output
// must be well formed: segments non-empty and alternating, message text
// only from the messages.
func FuzzTemplate(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(dataDir, "templates", "*.jinja"))
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(src), "Hello <|im_end|>", true)
	}
	for _, src := range []string{
		"{{ messages[0].content[1:-1]|trim|upper ~ x }}",
		"{% set ns = namespace(s='') %}{% for m in messages %}{% set ns.s = ns.s + m.content %}{% endfor %}{{ ns.s * 3 }}",
		"{% for c in messages[0].content %}{{ loop.index0 % 3 }}{{ c }}{% if loop.last %}{% break %}{% endif %}{% endfor %}",
		"{{ messages|tojson(indent=1) }}{{ messages }}{{ (messages|first).role.split('s') }}",
		"  {%- if x is not defined -%}\n {# c #}\n{%+ if true %}y{% endif +%}\n{% endif %}",
		"{{ range(10)|list|join('-') }}{{ [1,2,3][::-1] }}{{ 2 ** 62 }}{{ -1 // 2 }}{{ 1.5e3 }}",
	} {
		f.Add(src, " a\tb ", false)
	}
	f.Fuzz(func(t *testing.T, src, text string, gen bool) {
		tmpl, err := chat.Parse(src)
		if err != nil {
			return
		}
		msgs := []chat.Message{{Role: "system", Content: text}, {Role: "user", Content: strings.ToUpper(text)}, {Role: "assistant", Content: "ok"}}
		start := time.Now()
		r, err := tmpl.Render(msgs, chat.Options{AddGenerationPrompt: gen, BOSToken: "<s>", EOSToken: "</s>",
			Limits: chat.Limits{MaxOutput: 1 << 16, MaxSteps: 1 << 16}})
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("rendering took %v", d)
		}
		if err != nil {
			return
		}
		n := 0
		for i, s := range r.Segments {
			n += len(s.Text)
			if s.Text == "" {
				t.Errorf("segment %d is empty", i)
			}
			if i > 0 && s.Content == r.Segments[i-1].Content {
				t.Errorf("segments %d and %d are both Content=%v", i-1, i, s.Content)
			}
		}
		if n > 1<<16 {
			t.Errorf("output of %d bytes over the limit", n)
		}
	})
}
