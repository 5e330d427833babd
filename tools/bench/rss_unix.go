//go:build unix

package main

import (
	"os"
	"regexp"
	"runtime"
	"strconv"
	"syscall"
)

var vmHWM = regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB`)

// peakRSS returns this process's peak resident set size in bytes, or 0
// when the system does not tell. On Linux it reads VmHWM: ru_maxrss
// starts from the parent's peak at fork, so a small child of a large
// parent would report the parent's.
func peakRSS() int64 {
	if st, err := os.ReadFile("/proc/self/status"); err == nil {
		if m := vmHWM.FindSubmatch(st); m != nil {
			if kb, err := strconv.ParseInt(string(m[1]), 10, 64); err == nil {
				return kb * 1024
			}
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(ru.Maxrss) // bytes there
	}
	return int64(ru.Maxrss) * 1024 // KiB elsewhere
}
