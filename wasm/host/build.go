package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildModule builds the engine module wisp/wasm/module for wasip1 as a
// reactor into dir and returns the path of the file, wisp.wasm. It runs the
// go command of the PATH in the root of the wisp module that holds the
// current directory.
func BuildModule(ctx context.Context, dir string) (path string, err error) {
	if dir == "" {
		return "", errors.New("host: BuildModule: no output directory")
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("host: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("host: BuildModule: the current directory is not inside the wisp module")
	}
	path, err = filepath.Abs(filepath.Join(dir, "wisp.wasm"))
	if err != nil {
		return "", fmt.Errorf("host: BuildModule: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-o", path, "wisp/wasm/module")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("host: building wisp/wasm/module: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return path, nil
}
