package gguf

import (
	"errors"
	"fmt"
	"math"
)

// ErrMissing is returned, wrapped with the key, by File's typed getters when
// the key is absent. Test for it with errors.Is.
var ErrMissing = errors.New("key not found")

// Value returns the value of key, and whether the file has it.
func (f *File) Value(key string) (any, bool) {
	for i := range f.KV {
		if f.KV[i].Key == key {
			return f.KV[i].Value, true
		}
	}
	return nil, false
}

// Tensor returns the tensor called name, and whether the file has it. The
// pointer refers into f.Tensors.
func (f *File) Tensor(name string) (*Tensor, bool) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

func (f *File) lookup(key string) (any, error) {
	v, ok := f.Value(key)
	if !ok {
		return nil, fmt.Errorf("gguf: key %q: %w", key, ErrMissing)
	}
	return v, nil
}

func typeError(key string, v any, want string) error {
	return fmt.Errorf("gguf: key %q: is %s, want %s", key, describe(v), want)
}

// String returns the string value of key.
func (f *File) String(key string) (string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", typeError(key, v, "string")
	}
	return s, nil
}

// Uint returns the value of key, which may have any integer type, as a
// uint64. It fails if the value is negative.
func (f *File) Uint(key string) (uint64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	u, neg, ok := toUint(v)
	if !ok {
		return 0, typeError(key, v, "an integer")
	}
	if neg {
		return 0, fmt.Errorf("gguf: key %q: %s value %v is negative, want an unsigned integer", key, describe(v), v)
	}
	return u, nil
}

// Int returns the value of key, which may have any integer type, as an
// int64. It fails if a uint64 value is larger than an int64 holds.
func (f *File) Int(key string) (int64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	if i, ok := toInt(v); ok {
		return i, nil
	}
	if u, _, ok := toUint(v); ok { // a uint64 too large for an int64
		return 0, fmt.Errorf("gguf: key %q: uint64 value %d overflows an int64", key, u)
	}
	return 0, typeError(key, v, "an integer")
}

// Float returns the value of key, which may be a float32, a float64 or any
// integer type, as a float64.
func (f *File) Float(key string) (float64, error) {
	v, err := f.lookup(key)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	}
	if i, ok := toInt(v); ok {
		return float64(i), nil
	}
	if u, _, ok := toUint(v); ok {
		return float64(u), nil
	}
	return 0, typeError(key, v, "a number")
}

// Bool returns the bool value of key.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.lookup(key)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, typeError(key, v, "bool")
	}
	return b, nil
}

// Strings returns the array of strings of key. The slice is the file's own.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.([]string)
	if !ok {
		return nil, typeError(key, v, "array of string")
	}
	return s, nil
}

// Float32s returns the array of float32 of key. The slice is the file's own.
func (f *File) Float32s(key string) ([]float32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.([]float32)
	if !ok {
		return nil, typeError(key, v, "array of float32")
	}
	return s, nil
}

// Int32s returns the array of key as int32 values. It accepts arrays of
// int32 (returning the file's own slice) and, converted into a new slice,
// arrays of uint32, int16, uint16, int8 and uint8; it fails if a uint32
// element is larger than an int32 holds.
func (f *File) Int32s(key string) ([]int32, error) {
	v, err := f.lookup(key)
	if err != nil {
		return nil, err
	}
	switch s := v.(type) {
	case []int32:
		return s, nil
	case []uint32:
		out := make([]int32, len(s))
		for i, x := range s {
			if x > math.MaxInt32 {
				return nil, fmt.Errorf("gguf: key %q: element %d = %d overflows an int32", key, i, x)
			}
			out[i] = int32(x)
		}
		return out, nil
	case []int16:
		return widen[int16](s), nil
	case []uint16:
		return widen[uint16](s), nil
	case []int8:
		return widen[int8](s), nil
	case []uint8:
		return widen[uint8](s), nil
	}
	return nil, typeError(key, v, "array of int32")
}

func widen[E int8 | uint8 | int16 | uint16](s []E) []int32 {
	out := make([]int32, len(s))
	for i, x := range s {
		out[i] = int32(x)
	}
	return out
}

// toUint returns v as a uint64 if it has an integer type; neg reports a
// negative value (u is then meaningless).
func toUint(v any) (u uint64, neg, ok bool) {
	switch x := v.(type) {
	case uint8:
		return uint64(x), false, true
	case uint16:
		return uint64(x), false, true
	case uint32:
		return uint64(x), false, true
	case uint64:
		return x, false, true
	}
	if i, ok := toInt(v); ok {
		return uint64(i), i < 0, true
	}
	return 0, false, false
}

// toInt returns v as an int64 if it has an integer type and fits.
func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// describe names the GGUF type of a metadata value ("uint32", "array of
// string", "array of arrays"), or its Go type if it is not one.
func describe(v any) string {
	if t, ok := valueType(v); ok {
		if t != TypeArray {
			return t.String()
		}
		if et, ok := elemType(v); ok {
			if et == TypeArray {
				return "array of arrays"
			}
			return "array of " + et.String()
		}
	}
	return fmt.Sprintf("Go type %T", v)
}

// valueType returns the GGUF type of a Go value, if it has one.
func valueType(v any) (ValueType, bool) {
	switch v.(type) {
	case uint8:
		return TypeUint8, true
	case int8:
		return TypeInt8, true
	case uint16:
		return TypeUint16, true
	case int16:
		return TypeInt16, true
	case uint32:
		return TypeUint32, true
	case int32:
		return TypeInt32, true
	case float32:
		return TypeFloat32, true
	case bool:
		return TypeBool, true
	case string:
		return TypeString, true
	case uint64:
		return TypeUint64, true
	case int64:
		return TypeInt64, true
	case float64:
		return TypeFloat64, true
	}
	if _, ok := elemType(v); ok {
		return TypeArray, true
	}
	return 0, false
}

// elemType returns the GGUF element type of a Go slice that is a GGUF array.
func elemType(v any) (ValueType, bool) {
	switch v.(type) {
	case []uint8:
		return TypeUint8, true
	case []int8:
		return TypeInt8, true
	case []uint16:
		return TypeUint16, true
	case []int16:
		return TypeInt16, true
	case []uint32:
		return TypeUint32, true
	case []int32:
		return TypeInt32, true
	case []float32:
		return TypeFloat32, true
	case []bool:
		return TypeBool, true
	case []string:
		return TypeString, true
	case []uint64:
		return TypeUint64, true
	case []int64:
		return TypeInt64, true
	case []float64:
		return TypeFloat64, true
	case []any:
		return TypeArray, true
	}
	return 0, false
}
