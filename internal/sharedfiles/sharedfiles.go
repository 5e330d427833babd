// Package sharedfiles finds the reference files that every wisp machine has
// beside the repository, in ../shared: the stories260K model and its
// tokenizer, the tokenizer test vectors, and the known-good text that
// llama2.c prints for stories260K. Tests and benchmarks use it; it imports
// nothing of wisp, so that every package's tests can
// (wisp/internal/llama2c.Stories260K converts the model).
package sharedfiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Dir returns the shared folder: the first "shared" folder holding
// models/README.md found beside the working directory or one of its
// parents.
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		s := filepath.Join(d, "shared")
		if _, err := os.Stat(filepath.Join(s, "models", "README.md")); err == nil {
			return s, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("sharedfiles: no shared/models/README.md beside %s or its parents", wd)
		}
	}
}

// Path returns the path of a file in the shared folder, such as
// "models/stories260K.bin".
func Path(name string) (string, error) {
	d, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, filepath.FromSlash(name)), nil
}

// Read returns the bytes of a file in the shared folder.
func Read(name string) ([]byte, error) {
	p, err := Path(name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// KnownGood returns the text llama2.c's run prints for stories260K, greedy,
// 200 steps, no prompt, as models/README.md gives it (with the final
// newline run prints).
func KnownGood() (string, error) {
	b, err := Read("models/README.md")
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.Index(s, "## The known-good output")
	if i < 0 {
		return "", errors.New("sharedfiles: models/README.md has no known-good section")
	}
	s = s[i:]
	start := strings.Index(s, "```\n")
	if start < 0 {
		return "", errors.New("sharedfiles: no code block in the known-good section")
	}
	s = s[start+4:]
	end := strings.Index(s, "```")
	if end < 0 {
		return "", errors.New("sharedfiles: unterminated code block in the known-good section")
	}
	return s[:end], nil
}
