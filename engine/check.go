package engine

import (
	"errors"
	"fmt"

	"wisp/engine/gguf"
	"wisp/engine/tokenizer"
)

// Header is what Check learns of a model from its file's header.
type Header struct {
	// Config is the model's configuration, VocabSize included.
	Config
	// File is the parsed header; its tensors have no Data.
	File *gguf.File
	// Size is the file's size in bytes: as given to CheckHeader, or, when
	// that was not known, the fewest bytes that hold every tensor.
	Size uint64
}

// StateBytes returns what Model.StateBytes returns once the model is
// loaded: about how many bytes a State of ctx positions holds (ctx <= 0
// means the model's context length).
func (h *Header) StateBytes(ctx int) uint64 {
	m := Model{Config: h.Config}
	return m.StateBytes(ctx)
}

// Check says whether wisp can run the model that a GGUF header describes:
// f may come from gguf.ParseHeader (a prefix of the file; its tensors have
// no Data) or gguf.Parse. It checks the architecture and hyperparameters,
// the tokenizer, and the presence, shape and type of every tensor the
// model needs, and returns the configuration (VocabSize included). Its
// error is the one Load and FromGGUF give for a file with this header,
// byte for byte: FromGGUF runs Check before it takes any view.
func Check(f *gguf.File) (Config, error) {
	c, _, err := check(f)
	return c, err
}

// check is Check, returning the tokenizer it built too.
func check(f *gguf.File) (Config, *tokenizer.Tokenizer, error) {
	c, err := ConfigFromGGUF(f)
	if err != nil {
		return Config{}, nil, err
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return Config{}, nil, err
	}
	l := loader{f: f, m: &Model{Config: c, Tokenizer: tok}, header: true}
	l.walk()
	if l.err != nil {
		return Config{}, nil, l.err
	}
	return l.m.Config, tok, nil
}

// CheckHeader checks a model file of size bytes from prefix, its first
// bytes (or all of them), as Load checks the whole file: it parses the
// header (gguf.ParseHeader), checks that size bytes hold every tensor
// (gguf.File.CheckSize) and runs Check, and returns Load's error for a
// file that starts with these bytes, byte for byte. size < 0 means the
// size is not known: that check is left out.
//
// When the prefix ends inside the header, the error wraps
// gguf.ErrShortHeader and gguf.HeaderNeed says how many bytes the header
// needs at least: pass more and call again (see MoreBytes). When the
// prefix is the whole file (len(prefix) == size) the error is final, a
// truncated file: Load gives it too.
func CheckHeader(prefix []byte, size int64) (*Header, error) {
	if size >= 0 && int64(len(prefix)) > size {
		return nil, fmt.Errorf("engine: a prefix of %d bytes of a file of %d", len(prefix), size)
	}
	f, err := gguf.ParseHeader(prefix)
	if err != nil {
		return nil, err
	}
	h := &Header{File: f, Size: f.DataEnd()}
	if size >= 0 {
		if err := f.CheckSize(uint64(size)); err != nil {
			return nil, err
		}
		h.Size = uint64(size)
	}
	if h.Config, err = Check(f); err != nil {
		return nil, err
	}
	return h, nil
}

// MoreBytes reports whether err, from CheckHeader for a prefix of prefixLen
// bytes of a file of size bytes (< 0: unknown), asks for more of the file,
// and the fewest bytes of it to pass next: a header cut short by the end
// of the prefix rather than by the end of the file.
func MoreBytes(err error, prefixLen int, size int64) (need uint64, more bool) {
	need, short := gguf.HeaderNeed(err)
	if !short || (size >= 0 && int64(prefixLen) >= size) {
		return 0, false
	}
	if size >= 0 && need > uint64(size) {
		// More than the file holds: the whole file then gives the
		// error, as Load would.
		need = uint64(size)
	}
	return need, errors.Is(err, gguf.ErrShortHeader)
}
