// Package sharedmem turns a WebAssembly module's memory into an imported
// shared one, so that several instances (the engine and kernel workers on
// other threads) can work on the same memory. Go's wasm build cannot
// declare shared memory; Share rewrites the module it builds, and the
// kernel module's import of the engine's memory alike.
//
// For a module that defines its memory, the rewrite removes the
// definition and appends an import of a shared memory. Imports of
// memories do not move the index space of functions, tables or globals,
// and the imported memory is memory 0 as the defined one was, so every
// instruction, data segment and export (the memory's included) stays
// valid. For a module that imports its memory, the import is renamed and
// its limits made shared. Nothing else in the module changes.
package sharedmem

import (
	"bytes"
	"errors"
	"fmt"
)

// The sections Share reads.
const (
	sectionImport = 2
	sectionMemory = 5
)

// limits flags: with a maximum, and shared (threads proposal).
const (
	flagMax    = 0x01
	flagShared = 0x02
)

// MaxPages is the largest maximum of a 32-bit memory, in 64 KiB pages (4 GiB).
const MaxPages = 65536

// Import names the import a rewritten module takes its memory from.
type Import struct {
	Module, Name string
}

// Share returns module with its memory, defined or imported, replaced by
// an import of a shared memory from imp of minPages to maxPages pages.
// The module must have exactly one memory, a plain 32-bit one, needing at
// most minPages (its data must fit there); maxPages is at most MaxPages.
func Share(module []byte, imp Import, minPages, maxPages uint32) ([]byte, error) {
	if maxPages == 0 || maxPages > MaxPages || minPages > maxPages {
		return nil, fmt.Errorf("sharedmem: limits of %d to %d pages are not within 1 to %d", minPages, maxPages, MaxPages)
	}
	if len(module) < 8 || !bytes.Equal(module[:4], []byte("\x00asm")) {
		return nil, errors.New("sharedmem: not a WebAssembly module (no \\0asm magic)")
	}
	if !bytes.Equal(module[4:8], []byte{1, 0, 0, 0}) {
		return nil, fmt.Errorf("sharedmem: WebAssembly version % x, want 01 00 00 00", module[4:8])
	}
	type section struct {
		id   byte
		body []byte
	}
	var sections []section
	for r := (reader{b: module, at: 8}); r.at < len(r.b); {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("sharedmem: section at byte %d: %w", r.at, r.err)
		}
		if id > 13 {
			return nil, fmt.Errorf("sharedmem: section id %d is not one WebAssembly defines", id)
		}
		sections = append(sections, section{id, body})
	}

	// The memory: one, defined or imported.
	var need uint32
	memAt, importAt := -1, -1
	var imported *memImport
	for i, s := range sections {
		switch s.id {
		case sectionMemory:
			r := reader{b: s.body}
			if n := r.u32(); n != 1 || r.err != nil {
				return nil, fmt.Errorf("sharedmem: the module defines %d memories, want 1", n)
			}
			flags := r.byte()
			need = r.u32()
			if flags&flagMax != 0 {
				r.u32()
			}
			if r.err != nil || r.at != len(r.b) || flags&^flagMax != 0 {
				return nil, fmt.Errorf("sharedmem: memory limits (flags %#x) are not a plain 32-bit memory's", flags)
			}
			memAt = i
		case sectionImport:
			importAt = i
			mems, err := memoryImports(s.body)
			if err != nil {
				return nil, fmt.Errorf("sharedmem: import section: %w", err)
			}
			if len(mems) > 1 {
				return nil, fmt.Errorf("sharedmem: the module imports %d memories, want 1", len(mems))
			}
			if len(mems) == 1 {
				imported = &mems[0]
				if imported.flags&^flagMax != 0 {
					return nil, fmt.Errorf("sharedmem: the imported memory's limits (flags %#x) are not a plain 32-bit memory's", imported.flags)
				}
				need = imported.min
			}
		}
	}
	switch {
	case memAt < 0 && imported == nil:
		return nil, errors.New("sharedmem: the module has no memory")
	case memAt >= 0 && imported != nil:
		return nil, errors.New("sharedmem: the module defines a memory and imports another")
	}
	if need > minPages {
		return nil, fmt.Errorf("sharedmem: the memory needs %d pages, above the shared memory's minimum of %d", need, minPages)
	}

	// The import: in place of the imported memory, or appended to the
	// import section (made if there is none, before the first section
	// that must follow it).
	var entry []byte
	entry = appendName(entry, imp.Module)
	entry = appendName(entry, imp.Name)
	entry = append(entry, 0x02, flagMax|flagShared)
	entry = appendU32(entry, minPages)
	entry = appendU32(entry, maxPages)
	switch {
	case imported != nil:
		body := sections[importAt].body
		sections[importAt].body = append(append(append([]byte(nil), body[:imported.start]...), entry...), body[imported.end:]...)
	case importAt >= 0:
		r := reader{b: sections[importAt].body}
		n := r.u32()
		body := appendU32(nil, n+1)
		body = append(body, sections[importAt].body[r.at:]...)
		sections[importAt].body = append(body, entry...)
	default:
		imports := section{sectionImport, append(appendU32(nil, 1), entry...)}
		at := len(sections)
		for i, s := range sections {
			if s.id != 0 && s.id != 1 {
				at = i
				break
			}
		}
		sections = append(sections[:at], append([]section{imports}, sections[at:]...)...)
		if at <= memAt {
			memAt++
		}
	}
	if memAt >= 0 {
		sections = append(sections[:memAt], sections[memAt+1:]...)
	}

	out := append([]byte(nil), module[:8]...)
	for _, s := range sections {
		out = append(out, s.id)
		out = appendU32(out, uint32(len(s.body)))
		out = append(out, s.body...)
	}
	return out, nil
}

// memImport is a memory import: where its entry starts and ends in the
// import section's body, and its limits.
type memImport struct {
	start, end int
	flags      byte
	min        uint32
}

// memoryImports returns the memory imports of an import section's body.
func memoryImports(body []byte) ([]memImport, error) {
	r := reader{b: body}
	n := r.u32()
	var mems []memImport
	for range n {
		start := r.at
		r.bytes(int(r.u32())) // module
		r.bytes(int(r.u32())) // name
		switch kind := r.byte(); kind {
		case 0x00: // function: type index
			r.u32()
		case 0x01: // table: reftype, limits
			r.byte()
			r.limits()
		case 0x02: // memory: limits
			m := memImport{start: start, flags: r.byte()}
			m.min = r.u32()
			if m.flags&flagMax != 0 {
				r.u32()
			}
			m.end = r.at
			mems = append(mems, m)
		case 0x03: // global: valtype, mutability
			r.byte()
			r.byte()
		default:
			if r.err == nil {
				return nil, fmt.Errorf("import of unknown kind %#x", kind)
			}
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	if r.err == nil && r.at != len(body) {
		return nil, fmt.Errorf("%d bytes after the imports", len(body)-r.at)
	}
	return mems, r.err
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// reader reads a module's bytes, remembering the first error.
type reader struct {
	b   []byte
	at  int
	err error
}

var errShort = errors.New("unexpected end of the module")

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.at >= len(r.b) {
		r.err = errShort
		return 0
	}
	c := r.b[r.at]
	r.at++
	return c
}

func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errors.New("a LEB128 number longer than 5 bytes")
	return 0
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.at {
		r.err = errShort
		return nil
	}
	b := r.b[r.at : r.at+n]
	r.at += n
	return b
}

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&flagMax != 0 {
		r.u32()
	}
}

// MemoryModule returns a module that defines a shared memory of minPages
// to maxPages pages and exports it as "memory": what a host without a
// JavaScript WebAssembly.Memory (wazero) instantiates under Import.Module
// to give a rewritten module its memory.
func MemoryModule(minPages, maxPages uint32) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	var mem []byte
	mem = appendU32(mem, 1)
	mem = append(mem, flagMax|flagShared)
	mem = appendU32(mem, minPages)
	mem = appendU32(mem, maxPages)
	b = append(b, sectionMemory)
	b = appendU32(b, uint32(len(mem)))
	b = append(b, mem...)
	var exp []byte
	exp = appendU32(exp, 1)
	exp = appendName(exp, "memory")
	exp = append(exp, 0x02, 0x00) // memory 0
	b = append(b, 7)              // the export section
	b = appendU32(b, uint32(len(exp)))
	return append(b, exp...)
}

// Memory reports the memory a module imports as shared: its import, and
// its limits in pages. ok is false when it imports no shared memory.
func Memory(module []byte) (imp Import, minPages, maxPages uint32, ok bool) {
	if len(module) < 8 {
		return Import{}, 0, 0, false
	}
	for r := (reader{b: module, at: 8}); r.at < len(r.b) && r.err == nil; {
		id := r.byte()
		body := r.bytes(int(r.u32()))
		if id != sectionImport || r.err != nil {
			continue
		}
		s := reader{b: body}
		for n := s.u32(); n > 0 && s.err == nil; n-- {
			mod := string(s.bytes(int(s.u32())))
			name := string(s.bytes(int(s.u32())))
			switch s.byte() {
			case 0x00:
				s.u32()
			case 0x01:
				s.byte()
				s.limits()
			case 0x02:
				flags := s.byte()
				lo := s.u32()
				var hi uint32
				if flags&flagMax != 0 {
					hi = s.u32()
				}
				if s.err == nil && flags&flagShared != 0 {
					return Import{mod, name}, lo, hi, true
				}
			case 0x03:
				s.byte()
				s.byte()
			default:
				return Import{}, 0, 0, false
			}
		}
	}
	return Import{}, 0, 0, false
}
