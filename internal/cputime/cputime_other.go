//go:build !linux

// Package cputime reads the CPU time of the calling thread, which the
// benchmarks report beside wall time: on two busy cores it is disturbed
// far less by the other work.
package cputime

import "time"

// Thread reports that the thread's CPU time is not known here.
func Thread() (time.Duration, bool) { return 0, false }
