//go:build !linux

package engine_test

import "time"

// threadCPUTime reports that the thread's CPU time is not known here.
func threadCPUTime() (time.Duration, bool) { return 0, false }
