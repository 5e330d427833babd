// Package gguf reads and writes GGUF files, the model format of ggml and
// llama.cpp.
//
// A GGUF file holds a header, typed key-value metadata, a table of tensor
// descriptions and an aligned data section with the tensors' bytes. This
// package reads versions 2 and 3 (they share one layout) and writes version
// 3, always little-endian.
//
// Parse keeps each tensor's bytes as a view into the buffer it was given, so
// loading a model needs the file's size in memory and not twice that. Parse
// never panics, never loops without consuming input and allocates at most a
// small multiple of the input's size, however hostile the input: every count
// read from the file is checked against the bytes left before anything is
// allocated for it.
package gguf

import "fmt"

// ValueType is a metadata value type as stored in the file.
type ValueType uint32

// The metadata value types of GGUF.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

// String returns the type's lower-case name ("uint32", "string", "array"),
// or "ValueType(n)" for a type GGUF does not define.
func (t ValueType) String() string {
	switch t {
	case TypeUint8:
		return "uint8"
	case TypeInt8:
		return "int8"
	case TypeUint16:
		return "uint16"
	case TypeInt16:
		return "int16"
	case TypeUint32:
		return "uint32"
	case TypeInt32:
		return "int32"
	case TypeFloat32:
		return "float32"
	case TypeBool:
		return "bool"
	case TypeString:
		return "string"
	case TypeArray:
		return "array"
	case TypeUint64:
		return "uint64"
	case TypeInt64:
		return "int64"
	case TypeFloat64:
		return "float64"
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// size returns the encoded size of a fixed-size value type, or for strings
// and arrays the smallest size their encoding can have (an empty string is
// its 8-byte length; an empty array its 4-byte type and 8-byte length). It
// returns 0 for types GGUF does not define.
func (t ValueType) size() uint64 {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64, TypeString:
		return 8
	case TypeArray:
		return 4 + 8
	}
	return 0
}

// TensorType is ggml's tensor element type.
type TensorType uint32

// The ggml tensor types that may appear in GGUF files. Numbers missing here
// (4, 5, 31–33, 36–38) belonged to types ggml has removed.
const (
	F32     TensorType = 0
	F16     TensorType = 1
	Q4_0    TensorType = 2
	Q4_1    TensorType = 3
	Q5_0    TensorType = 6
	Q5_1    TensorType = 7
	Q8_0    TensorType = 8
	Q8_1    TensorType = 9
	Q2_K    TensorType = 10
	Q3_K    TensorType = 11
	Q4_K    TensorType = 12
	Q5_K    TensorType = 13
	Q6_K    TensorType = 14
	Q8_K    TensorType = 15
	IQ2_XXS TensorType = 16
	IQ2_XS  TensorType = 17
	IQ3_XXS TensorType = 18
	IQ1_S   TensorType = 19
	IQ4_NL  TensorType = 20
	IQ3_S   TensorType = 21
	IQ2_S   TensorType = 22
	IQ4_XS  TensorType = 23
	I8      TensorType = 24
	I16     TensorType = 25
	I32     TensorType = 26
	I64     TensorType = 27
	F64     TensorType = 28
	IQ1_M   TensorType = 29
	BF16    TensorType = 30
	TQ1_0   TensorType = 34
	TQ2_0   TensorType = 35
	MXFP4   TensorType = 39
	NVFP4   TensorType = 40
	Q1_0    TensorType = 41
	Q2_0    TensorType = 42
)

// typeInfo describes a tensor type: its name, the number of elements in one
// block and the bytes one block takes. Types with a name but no block size
// are ones ggml has removed; their data cannot be located.
type typeInfo struct {
	name        string
	block, size uint64
}

func (t TensorType) info() typeInfo {
	const k = 256 // elements in a k-quant super-block
	switch t {
	case F32:
		return typeInfo{"F32", 1, 4}
	case F16:
		return typeInfo{"F16", 1, 2}
	case Q4_0:
		return typeInfo{"Q4_0", 32, 2 + 16}
	case Q4_1:
		return typeInfo{"Q4_1", 32, 2 + 2 + 16}
	case 4:
		return typeInfo{name: "Q4_2"}
	case 5:
		return typeInfo{name: "Q4_3"}
	case Q5_0:
		return typeInfo{"Q5_0", 32, 2 + 4 + 16}
	case Q5_1:
		return typeInfo{"Q5_1", 32, 2 + 2 + 4 + 16}
	case Q8_0:
		return typeInfo{"Q8_0", 32, 2 + 32}
	case Q8_1:
		return typeInfo{"Q8_1", 32, 2 + 2 + 32} // ggml's block_q8_1: two halves and 32 quants
	case Q2_K:
		return typeInfo{"Q2_K", k, 2 + 2 + k/16 + k/4}
	case Q3_K:
		return typeInfo{"Q3_K", k, 2 + k/4 + k/8 + 12}
	case Q4_K:
		return typeInfo{"Q4_K", k, 2 + 2 + k/2 + 12}
	case Q5_K:
		return typeInfo{"Q5_K", k, 2 + 2 + k/2 + k/8 + 12}
	case Q6_K:
		return typeInfo{"Q6_K", k, 2 + k/2 + k/4 + k/16}
	case Q8_K:
		return typeInfo{"Q8_K", k, 4 + k + k/8}
	case IQ2_XXS:
		return typeInfo{"IQ2_XXS", k, 2 + k/4}
	case IQ2_XS:
		return typeInfo{"IQ2_XS", k, 2 + k/4 + k/32}
	case IQ3_XXS:
		return typeInfo{"IQ3_XXS", k, 2 + k/4 + k/8}
	case IQ1_S:
		return typeInfo{"IQ1_S", k, 2 + k/8 + k/16}
	case IQ4_NL:
		return typeInfo{"IQ4_NL", 32, 2 + 16}
	case IQ3_S:
		return typeInfo{"IQ3_S", k, 2 + k/4 + k/8 + k/32 + 4}
	case IQ2_S:
		return typeInfo{"IQ2_S", k, 2 + k/4 + k/16}
	case IQ4_XS:
		return typeInfo{"IQ4_XS", k, 2 + 2 + k/2 + k/64}
	case I8:
		return typeInfo{"I8", 1, 1}
	case I16:
		return typeInfo{"I16", 1, 2}
	case I32:
		return typeInfo{"I32", 1, 4}
	case I64:
		return typeInfo{"I64", 1, 8}
	case F64:
		return typeInfo{"F64", 1, 8}
	case IQ1_M:
		return typeInfo{"IQ1_M", k, k/8 + k/16 + k/32}
	case BF16:
		return typeInfo{"BF16", 1, 2}
	case 31:
		return typeInfo{name: "Q4_0_4_4"}
	case 32:
		return typeInfo{name: "Q4_0_4_8"}
	case 33:
		return typeInfo{name: "Q4_0_8_8"}
	case TQ1_0:
		return typeInfo{"TQ1_0", k, 2 + 4*13}
	case TQ2_0:
		return typeInfo{"TQ2_0", k, 2 + 64}
	case 36:
		return typeInfo{name: "IQ4_NL_4_4"}
	case 37:
		return typeInfo{name: "IQ4_NL_4_8"}
	case 38:
		return typeInfo{name: "IQ4_NL_8_8"}
	case MXFP4:
		return typeInfo{"MXFP4", 32, 1 + 16}
	case NVFP4:
		return typeInfo{"NVFP4", 64, 4 + 32}
	case Q1_0:
		return typeInfo{"Q1_0", 128, 2 + 16}
	case Q2_0:
		return typeInfo{"Q2_0", 64, 2 + 16}
	}
	return typeInfo{}
}

// String returns ggml's name for the type ("F32", "Q4_K", "BF16"), or
// "TensorType(n)" for a number ggml never assigned.
func (t TensorType) String() string {
	if name := t.info().name; name != "" {
		return name
	}
	return fmt.Sprintf("TensorType(%d)", uint32(t))
}
