module wisp

go 1.26

require (
	github.com/tetratelabs/wazero v1.12.0
	github.com/x448/float16 v0.8.4
	golang.org/x/sys v0.44.0
	golang.org/x/term v0.43.0
)
