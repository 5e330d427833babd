package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"wisp/simd"
)

// MaxThreads is the most threads Options.Threads may ask for.
const MaxThreads = 64

// defaultMinWork is the multiply-adds per thread below which threads.wasm
// runs a product on the engine's thread alone.
const defaultMinWork = 64 << 10

// ctrlSize is the size of threads.wasm's control block.
const ctrlSize = 128

// threads is the kernel threads of a Runtime: helper goroutines, each
// running threads.wasm's worker loop in instances of its own (the
// forwarding module, the kernels, threads.wasm) on the shared memory,
// and the engine thread's threads.wasm, whose dispatchers replace the
// matrix products in the forwarding table.
type threads struct {
	n    int        // threads, the engine's included
	main api.Module // the engine thread's threads.wasm
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error // the first helper's error
}

// startThreads makes n-1 helpers and installs the dispatchers; the
// engine module must import a shared memory and the kernels.
func (r *Runtime) startThreads(ctx context.Context, n, minWork int) error {
	if !r.simd {
		return errors.New("host: threads need the SIMD128 kernels, and this engine module has none (built with purego?)")
	}
	ctrl, err := r.alloc(ctx, ctrlSize)
	if err != nil {
		return fmt.Errorf("host: the threads' control block: %w", err)
	}
	t := &threads{n: n}
	if t.main, err = r.rt.InstantiateWithConfig(ctx, simd.ThreadsWasm(), wazero.NewModuleConfig().WithName("threads")); err != nil {
		return fmt.Errorf("host: instantiating threads.wasm: %w", err)
	}
	// Helpers first, then setup installs them: a helper starts from job 0.
	for id := 1; id < n; id++ {
		var fwd, kern api.Module
		rctx := experimental.WithImportResolver(ctx, func(name string) api.Module {
			switch name {
			case "simd":
				return fwd
			case "kernels":
				return kern
			}
			return nil
		})
		if fwd, err = r.rt.InstantiateWithConfig(rctx, simd.ForwardWasm(), wazero.NewModuleConfig().WithName(fmt.Sprintf("simd-%d", id))); err == nil {
			if kern, err = r.rt.InstantiateWithConfig(rctx, simd.KernelsWasm(), wazero.NewModuleConfig().WithName(fmt.Sprintf("kernels-%d", id))); err == nil {
				var thr api.Module
				if thr, err = r.rt.InstantiateWithConfig(rctx, simd.ThreadsWasm(), wazero.NewModuleConfig().WithName(fmt.Sprintf("threads-%d", id))); err == nil {
					worker := thr.ExportedFunction("worker")
					t.wg.Add(1)
					go func() {
						defer t.wg.Done()
						if _, err := worker.Call(context.Background(), uint64(ctrl), uint64(id)); err != nil {
							t.mu.Lock()
							t.err = cmp(t.err, fmt.Errorf("host: kernel thread %d: %w", id, err))
							t.mu.Unlock()
						}
					}()
				}
			}
		}
		if err != nil {
			r.threads = t
			return fmt.Errorf("host: instantiating kernel thread %d: %w", id, err)
		}
	}
	r.threads = t
	if _, err := t.main.ExportedFunction("setup").Call(ctx, uint64(ctrl), uint64(n-1), uint64(minWork)); err != nil {
		return fmt.Errorf("host: setting up the kernel threads: %w", err)
	}
	return nil
}

// cmp returns err if set, else next.
func cmp(err, next error) error {
	if err != nil {
		return err
	}
	return next
}

// stop ends the helpers and waits for them, at most a few seconds (a
// helper stuck in a kernel cannot be interrupted).
func (t *threads) stop(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if _, err := t.main.ExportedFunction("stop").Call(ctx); err != nil {
		return fmt.Errorf("host: stopping the kernel threads: %w", err)
	}
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		return errors.New("host: the kernel threads did not stop within 5 s")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Threads returns how many threads split the instance's matrix products.
func (r *Runtime) Threads() int {
	if r.threads == nil {
		return 1
	}
	return r.threads.n
}
