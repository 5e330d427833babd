//go:build !linux

package simd

import "time"

// threadCPUTime reports that the thread's CPU time is not known here.
func threadCPUTime() (time.Duration, bool) { return 0, false }
