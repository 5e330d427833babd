package hf

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
)

// vocab is a tokenizer as GGUF stores it in tokenizer.ggml.* keys.
type vocab struct {
	model  string // "llama" or "gpt2"
	pre    string
	tokens []string
	scores []float32 // llama only
	types  []int32
	merges []string // gpt2 only

	bos, eos, unk, pad int // -1 when unknown
	// Flags that are written only when the files say something.
	addBOS, addEOS, addSpacePrefix *bool
	templates                      []chatTemplate
	warnings                       []string
}

type chatTemplate struct{ name, text string }

// tokenizerJSON is the part of a tokenizer.json that Convert reads.
type tokenizerJSON struct {
	AddedTokens []struct {
		ID      int64  `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Model         struct {
		Type         string          `json:"type"`
		Vocab        json.RawMessage `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		ByteFallback bool            `json:"byte_fallback"`
		UnkToken     *string         `json:"unk_token"`
	} `json:"model"`
}

// Token types as llama.cpp stores them.
const (
	typeNormal      = tokenizer.TypeNormal
	typeUnknown     = tokenizer.TypeUnknown
	typeControl     = tokenizer.TypeControl
	typeUserDefined = tokenizer.TypeUserDefined
	typeUnused      = tokenizer.TypeUnused
	typeByte        = tokenizer.TypeByte
)

// Regular expressions of the Split pre-tokenizers Convert recognises, as
// tokenizer.json spells them.
const (
	regexLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	regexQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// convertTokenizer turns a tokenizer.json (and the tokenizer_config.json
// and chat_template.jinja beside it, nil when absent) into a GGUF vocabulary
// of cfg.VocabSize tokens.
//
// A BPE model with byte_fallback (Llama 2, TinyLlama, Mistral) becomes a
// SentencePiece-style "llama" vocabulary whose scores rank the merges, so
// that merging the best-scoring pair, as SentencePiece does, merges in
// the order the merges list gives. A byte-level BPE model (GPT-2, SmolLM,
// Llama 3, Qwen2) becomes a "gpt2" vocabulary with its merges and the
// pre-tokenizer named as llama.cpp names it.
//
// Errors name the file at fault, by the paths given.
func convertTokenizer(tokPath string, tokJSON []byte, tcPath string, tokConfig, jinja []byte, cfg *Config) (*vocab, error) {
	var tc jsonObject
	if tokConfig != nil {
		var err error
		if tc, err = parseObject(tokConfig); err != nil {
			return nil, fmt.Errorf("%s: %w", tcPath, err)
		}
	}
	var tj tokenizerJSON
	if err := json.Unmarshal(tokJSON, &tj); err != nil {
		return nil, fmt.Errorf("%s: %w", tokPath, err)
	}
	v, err := buildVocab(&tj, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tokPath, err)
	}
	v.specialTokens(&tj, tc, cfg)
	if err := v.flags(&tj, tc); err != nil {
		return nil, fmt.Errorf("%s: %w", tcPath, err)
	}
	if err := v.chatTemplates(tc, jinja); err != nil {
		return nil, fmt.Errorf("%s: %w", tcPath, err)
	}
	return v, nil
}

// buildVocab reads the tokens, types, scores or merges, and pre-tokenizer
// of a tokenizer.json.
func buildVocab(tj *tokenizerJSON, cfg *Config) (*vocab, error) {
	if tj.Model.Type != "BPE" {
		return nil, fmt.Errorf("model type %q is not supported; wisp converts BPE tokenizers", tj.Model.Type)
	}
	var base map[string]int64
	if err := json.Unmarshal(tj.Model.Vocab, &base); err != nil || base == nil {
		return nil, fmt.Errorf("model.vocab is not a map of tokens to ids")
	}
	pairs, err := parseMerges(tj.Model.Merges)
	if err != nil {
		return nil, err
	}

	n := cfg.VocabSize
	v := &vocab{
		tokens: make([]string, n),
		types:  make([]int32, n),
		bos:    -1, eos: -1, unk: -1, pad: -1,
	}
	v.model = "gpt2"
	if tj.Model.ByteFallback {
		v.model = "llama"
	}
	set := make([]bool, n)
	for text, id := range base {
		if id < 0 || id >= int64(n) {
			return nil, fmt.Errorf("token %q has id %d, outside config.json's vocab_size %d", text, id, n)
		}
		if set[id] {
			a, b := v.tokens[id], text
			if b < a {
				a, b = b, a
			}
			return nil, fmt.Errorf("tokens %q and %q have the same id %d", a, b, id)
		}
		set[id] = true
		v.tokens[id], v.types[id] = text, typeNormal
	}
	added := make(map[int]bool) // id → special
	for _, at := range tj.AddedTokens {
		if at.ID < 0 || at.ID >= int64(n) {
			return nil, fmt.Errorf("added token %q has id %d, outside config.json's vocab_size %d", at.Content, at.ID, n)
		}
		id := int(at.ID)
		set[id] = true
		v.tokens[id] = at.Content
		added[id] = at.Special
	}
	for i := range n {
		if !set[i] {
			v.tokens[i], v.types[i] = fmt.Sprintf("[PAD%d]", i), typeUnused
		}
	}
	if tj.Model.UnkToken != nil {
		if id, ok := base[*tj.Model.UnkToken]; ok {
			v.unk = int(id)
		}
	}
	for id, special := range added {
		switch {
		case id == v.unk && v.model == "llama":
			v.types[id] = typeUnknown
		case special || looksSpecial(v.tokens[id]):
			v.types[id] = typeControl
		default:
			// llama.cpp matches user-defined tokens in the raw text, which
			// has spaces where SentencePiece has U+2581.
			v.tokens[id] = strings.ReplaceAll(v.tokens[id], "\u2581", " ")
			v.types[id] = typeUserDefined
		}
	}

	if v.model == "llama" {
		if err := v.llamaScores(base, pairs); err != nil {
			return nil, err
		}
		v.pre = "default"
		on := addsSpacePrefix(tj.Normalizer, tj.PreTokenizer)
		v.addSpacePrefix = &on
	} else {
		v.merges = make([]string, len(pairs))
		for i, p := range pairs {
			if err := checkMerge(base, i, p); err != nil {
				return nil, err
			}
			if strings.Contains(p[0]+p[1], " ") {
				return nil, fmt.Errorf("merge %d (%q %q) has a space inside a token, which GGUF's \"left right\" merges cannot express", i, p[0], p[1])
			}
			v.merges[i] = p[0] + " " + p[1]
		}
		var ok bool
		if v.pre, ok = preTokenizer(tj.PreTokenizer); !ok {
			v.pre = "gpt-2"
			if cfg.Arch == "qwen2" {
				v.pre = "qwen2"
			}
			v.warnings = append(v.warnings, fmt.Sprintf("tokenizer.json: pre_tokenizer %s is not one wisp recognises; using %q", compact(tj.PreTokenizer), v.pre))
		}
	}

	// Let the engine's tokenizer check what it will read: duplicate texts,
	// an unknown pre-tokenizer, merges of unknown tokens.
	if _, err := tokenizer.New(tokenizer.Vocab{
		Model: v.model, Pre: v.pre, Tokens: v.tokens, Scores: v.scores, Types: v.types, Merges: v.merges,
		BOS: -1, EOS: -1, UNK: -1, PAD: -1,
	}); err != nil {
		return nil, err
	}
	return v, nil
}

// parseMerges reads model.merges: "left right" strings, or [left, right]
// pairs (the format since transformers 4.45, whose parts may hold spaces).
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("model.merges is missing")
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		pairs := make([][2]string, len(strs))
		for i, s := range strs {
			l, r, ok := strings.Cut(s, " ")
			if !ok || l == "" || r == "" || strings.Contains(r, " ") {
				return nil, fmt.Errorf("merge %d %q is not two tokens separated by one space", i, s)
			}
			pairs[i] = [2]string{l, r}
		}
		return pairs, nil
	}
	var lists [][]string
	if err := json.Unmarshal(raw, &lists); err != nil {
		return nil, fmt.Errorf("model.merges is neither a list of \"left right\" strings nor of [left, right] pairs")
	}
	pairs := make([][2]string, len(lists))
	for i, l := range lists {
		if len(l) != 2 || l[0] == "" || l[1] == "" {
			return nil, fmt.Errorf("merge %d %q is not a pair of tokens", i, l)
		}
		pairs[i] = [2]string{l[0], l[1]}
	}
	return pairs, nil
}

// checkMerge reports a merge whose parts or result are not in the
// vocabulary, which Hugging Face's tokenizers refuses too.
func checkMerge(base map[string]int64, rank int, p [2]string) error {
	for _, s := range []string{p[0], p[1], p[0] + p[1]} {
		if _, ok := base[s]; !ok {
			return fmt.Errorf("merge %d (%q %q) needs token %q, which model.vocab lacks", rank, p[0], p[1], s)
		}
	}
	return nil
}

// llamaScores gives each token the score SentencePiece's merging needs to
// follow the merges list: the token made by merge r (from 0) scores
// -(r+1), so earlier merges win. Tokens no merge makes score below every merge, and special,
// byte and padding tokens score as llama.cpp's converter scores them.
//
// Hugging Face writes the merges of a converted SentencePiece model in the
// order of the merged pieces' scores, so this ranks the pieces as the
// original model did. (llama.cpp's converter gives every token -1000 when
// it has only tokenizer.json, which makes merging go left to right.)
func (v *vocab) llamaScores(base map[string]int64, pairs [][2]string) error {
	n := len(v.tokens)
	v.scores = make([]float32, n)
	made := make([]bool, n)
	for r, p := range pairs {
		if err := checkMerge(base, r, p); err != nil {
			return err
		}
		id := base[p[0]+p[1]]
		if !made[id] {
			made[id] = true
			v.scores[id] = -float32(r + 1)
		}
	}
	floor := -float32(len(pairs) + 1)
	for i := range n {
		switch {
		case v.types[i] == typeUnused:
			v.scores[i] = -10000
		case v.types[i] != typeNormal:
			v.scores[i] = 0
		case isByteToken(v.tokens[i]):
			v.types[i], v.scores[i] = typeByte, 0
		case !made[i]:
			v.scores[i] = floor
		}
	}
	return nil
}

// isByteToken reports whether t names one byte, like "<0x0A>".
func isByteToken(t string) bool {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return false
	}
	for _, c := range t[3:5] {
		if !strings.ContainsRune("0123456789ABCDEFabcdef", c) {
			return false
		}
	}
	return true
}

// looksSpecial reports whether an added token not marked special should be
// a control token anyway, as llama.cpp's converter decides.
func looksSpecial(t string) bool {
	switch t {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return strings.HasPrefix(t, "<|") && strings.HasSuffix(t, "|>") ||
		strings.HasPrefix(t, "<｜") && strings.HasSuffix(t, "｜>") ||
		strings.HasPrefix(t, "<unused") && strings.HasSuffix(t, ">")
}

// preStep is one pre-tokenizer of tokenizer.json.
type preStep struct {
	Type          string            `json:"type"`
	PreTokenizers []json.RawMessage `json:"pretokenizers"`
	Pattern       struct {
		Regex *string `json:"Regex"`
	} `json:"pattern"`
	UseRegex         *bool `json:"use_regex"`
	AddPrefixSpace   bool  `json:"add_prefix_space"`
	IndividualDigits bool  `json:"individual_digits"`
	Invert           bool  `json:"invert"`
}

// preTokenizer names a byte-level pre-tokenizer as llama.cpp does, from its
// structure (llama.cpp hashes the tokens of a test text instead, which
// needs Hugging Face's tokenizer to run):
//
//	ByteLevel with its regex                       "gpt-2"
//	Digits (individual), ByteLevel with its regex  "smollm" (StarCoder's)
//	Split by Llama 3's regex, ByteLevel            "llama-bpe"
//	Split by Qwen2's regex, ByteLevel              "qwen2"
func preTokenizer(raw json.RawMessage) (string, bool) {
	var top preStep
	if json.Unmarshal(raw, &top) != nil {
		return "", false
	}
	steps := []preStep{top}
	if top.Type == "Sequence" {
		steps = steps[:0]
		for _, r := range top.PreTokenizers {
			var s preStep
			if json.Unmarshal(r, &s) != nil {
				return "", false
			}
			steps = append(steps, s)
		}
	}
	byteLevel := func(s preStep, regex bool) bool {
		return s.Type == "ByteLevel" && !s.AddPrefixSpace && (s.UseRegex == nil || *s.UseRegex) == regex
	}
	switch {
	case len(steps) == 1 && byteLevel(steps[0], true):
		return "gpt-2", true
	case len(steps) == 2 && steps[0].Type == "Digits" && steps[0].IndividualDigits && byteLevel(steps[1], true):
		return "smollm", true
	case len(steps) == 2 && steps[0].Type == "Split" && !steps[0].Invert && steps[0].Pattern.Regex != nil && byteLevel(steps[1], false):
		switch *steps[0].Pattern.Regex {
		case regexLlama3:
			return "llama-bpe", true
		case regexQwen2:
			return "qwen2", true
		}
	}
	return "", false
}

// addsSpacePrefix reports whether a SentencePiece-style tokenizer.json
// prepends U+2581 to the text: by a Prepend normalizer (the legacy Llama
// conversion) or a Metaspace pre-tokenizer that prepends.
func addsSpacePrefix(normalizer, pre json.RawMessage) bool {
	type step struct {
		Type           string            `json:"type"`
		Normalizers    []json.RawMessage `json:"normalizers"`
		PreTokenizers  []json.RawMessage `json:"pretokenizers"`
		Prepend        string            `json:"prepend"`
		PrependScheme  *string           `json:"prepend_scheme"`
		AddPrefixSpace *bool             `json:"add_prefix_space"`
	}
	var walk func(raw json.RawMessage, depth int) bool
	walk = func(raw json.RawMessage, depth int) bool {
		var s step
		if depth > 4 || json.Unmarshal(raw, &s) != nil {
			return false
		}
		switch s.Type {
		case "Sequence":
			for _, r := range append(s.Normalizers, s.PreTokenizers...) {
				if walk(r, depth+1) {
					return true
				}
			}
		case "Prepend":
			return s.Prepend == "\u2581"
		case "Metaspace":
			if s.PrependScheme != nil {
				return *s.PrependScheme != "never"
			}
			return s.AddPrefixSpace == nil || *s.AddPrefixSpace
		}
		return false
	}
	return walk(normalizer, 0) || walk(pre, 0)
}

// specialTokens finds the BOS, EOS, UNK and padding ids as llama.cpp's
// converter does: the tokens tokenizer_config.json names, looked up among
// the added tokens, then the ids config.json gives.
func (v *vocab) specialTokens(tj *tokenizerJSON, tc jsonObject, cfg *Config) {
	for _, s := range []struct {
		typ    string
		id     *int
		config int
	}{{"bos", &v.bos, cfg.BOS}, {"eos", &v.eos, cfg.EOS}, {"unk", &v.unk, -1}, {"pad", &v.pad, -1}} {
		id := -1
		if content, ok := tokenText(tc, s.typ+"_token"); ok {
			for _, at := range tj.AddedTokens {
				if at.Content == content {
					id = int(at.ID)
					break
				}
			}
		}
		if id < 0 {
			id = s.config
		}
		switch {
		case id < 0:
			// Keep what the model gave (its unk_token), or nothing.
		case id >= len(v.tokens):
			v.warnings = append(v.warnings, fmt.Sprintf("%s token id %d is outside the vocabulary of %d; ignored", s.typ, id, len(v.tokens)))
		default:
			*s.id = id
		}
	}
}

// tokenText returns the text of a special token in tokenizer_config.json,
// spelled as a string or as an object with "content".
func tokenText(tc jsonObject, key string) (string, bool) {
	if !tc.has(key) {
		return "", false
	}
	var s string
	if json.Unmarshal(tc[key], &s) == nil {
		return s, true
	}
	var o struct {
		Content *string `json:"content"`
	}
	if json.Unmarshal(tc[key], &o) == nil && o.Content != nil {
		return *o.Content, true
	}
	return "", false
}

// flags sets add_bos_token and add_eos_token from the post-processor's
// template and tokenizer_config.json (which wins), and add_space_prefix
// from tokenizer_config.json's add_prefix_space, as llama.cpp does.
func (v *vocab) flags(tj *tokenizerJSON, tc jsonObject) error {
	type special struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
	}
	type processor struct {
		Type       string            `json:"type"`
		Processors []json.RawMessage `json:"processors"`
		Single     []special         `json:"single"`
	}
	var top processor
	if json.Unmarshal(tj.PostProcessor, &top) == nil {
		procs := []processor{top}
		if top.Type == "Sequence" {
			procs = procs[:0]
			for _, r := range top.Processors {
				var p processor
				if json.Unmarshal(r, &p) == nil {
					procs = append(procs, p)
				}
			}
		}
		text := func(id int) string {
			if id < 0 {
				return ""
			}
			return v.tokens[id]
		}
		for _, p := range procs {
			if p.Type != "TemplateProcessing" || len(p.Single) < 2 {
				continue
			}
			if f := p.Single[0].SpecialToken; f != nil {
				on := f.ID == text(v.bos)
				v.addBOS = &on
			}
			if l := p.Single[len(p.Single)-1].SpecialToken; l != nil {
				on := l.ID == text(v.eos)
				v.addEOS = &on
			}
		}
	}
	for _, f := range []struct {
		key string
		dst **bool
	}{{"add_bos_token", &v.addBOS}, {"add_eos_token", &v.addEOS}, {"add_prefix_space", &v.addSpacePrefix}} {
		if !tc.has(f.key) {
			continue
		}
		on, err := tc.boolean(f.key, false)
		if err != nil {
			return err
		}
		*f.dst = &on
	}
	if v.addBOS != nil && *v.addBOS && v.bos < 0 {
		v.warnings = append(v.warnings, "the tokenizer adds a BOS token but names none; add_bos_token not written")
		v.addBOS = nil
	}
	if v.addEOS != nil && *v.addEOS && v.eos < 0 {
		v.warnings = append(v.warnings, "the tokenizer adds an EOS token but names none; add_eos_token not written")
		v.addEOS = nil
	}
	return nil
}

// chatTemplates copies tokenizer_config.json's chat_template (a string, or
// a list of named templates), or else chat_template.jinja.
func (v *vocab) chatTemplates(tc jsonObject, jinja []byte) error {
	if !tc.has("chat_template") {
		if jinja != nil {
			v.templates = []chatTemplate{{"default", string(jinja)}}
		}
		return nil
	}
	var s string
	if json.Unmarshal(tc["chat_template"], &s) == nil {
		v.templates = []chatTemplate{{"default", s}}
		return nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(tc["chat_template"], &list); err != nil {
		return fmt.Errorf("chat_template is neither a string nor a list of named templates")
	}
	for _, t := range list {
		if t.Name == "" || strings.ContainsAny(t.Name, " .") {
			return fmt.Errorf("chat template name %q is not a plain name", t.Name)
		}
		v.templates = append(v.templates, chatTemplate{t.Name, t.Template})
	}
	return nil
}

// set writes the vocabulary's tokenizer.* keys.
func (v *vocab) set(b *gguf.Builder) {
	b.Set("tokenizer.ggml.model", v.model)
	b.Set("tokenizer.ggml.pre", v.pre)
	b.Set("tokenizer.ggml.tokens", v.tokens)
	if v.scores != nil {
		b.Set("tokenizer.ggml.scores", v.scores)
	}
	b.Set("tokenizer.ggml.token_type", v.types)
	if v.merges != nil {
		b.Set("tokenizer.ggml.merges", v.merges)
	}
	for _, s := range []struct {
		key string
		id  int
	}{{"bos", v.bos}, {"eos", v.eos}, {"unknown", v.unk}, {"padding", v.pad}} {
		if s.id >= 0 {
			b.Set("tokenizer.ggml."+s.key+"_token_id", uint32(s.id))
		}
	}
	for _, f := range []struct {
		key string
		on  *bool
	}{{"add_bos_token", v.addBOS}, {"add_eos_token", v.addEOS}, {"add_space_prefix", v.addSpacePrefix}} {
		if f.on != nil {
			b.Set("tokenizer.ggml."+f.key, *f.on)
		}
	}
	var names []string
	for _, t := range v.templates {
		if t.name == "default" {
			b.Set("tokenizer.chat_template", t.text)
		} else {
			b.Set("tokenizer.chat_template."+t.name, t.text)
			names = append(names, t.name)
		}
	}
	if len(names) > 0 {
		slices.Sort(names)
		b.Set("tokenizer.chat_templates", names)
	}
}
