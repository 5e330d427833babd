//go:build amd64 && !purego

#include "textflag.h"

// The native kernels on amd64 with AVX2: one YMM accumulator holds the eight
// canonical lanes of a sum, halves are widened with the same integer trick as
// the SIMD128 kernels (sign-extend, shift by 13, mask, multiply by 2^112),
// products and sums are separate instructions (no FMA), and the lanes are
// reduced in the canonical tree. Results are bit-identical to the Go kernels.

// REDUCE8 reduces the eight lanes of Y(r) into the low lane of X(r):
// (s0+s4, s1+s5, s2+s6, s3+s7), then (a0+a2, a1+a3), then their sum.
#define REDUCE8(Y, X, T) \
	VEXTRACTF128 $1, Y, T \
	VADDPS T, X, X \
	VPERMILPS $0x0e, X, T \
	VADDPS T, X, X \
	VMOVSHDUP X, T \
	VADDSS T, X, X

// ---------------------------------------------------------------------
// Quantized matrix-vector products (quant.go fixes the order of the float
// steps). Each kernel has the Go signature
//
//	func(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)
//
// and multiplies one vector (its Q8 blocks at x, d and s) by the eight rows
// at w+offs[0..8), nb blocks each: lane k of every YMM register is row k.
// Registers: SI, DI, R8..R13 the rows, AX the byte offset of the current
// block in a row, BX, CX, DX the current activation block's q, d and s,
// R14 the blocks left. Y15 accumulates the eight results from +0.

// QARGS loads the arguments, makes the row pointers and clears AX and the
// accumulator (vet checks the argument names at each use of the macro).
#define QARGS \
	MOVQ w+0(FP), AX \
	MOVQ offs+8(FP), BX \
	MOVQ 0(BX), SI \
	ADDQ AX, SI \
	MOVQ 8(BX), DI \
	ADDQ AX, DI \
	MOVQ 16(BX), R8 \
	ADDQ AX, R8 \
	MOVQ 24(BX), R9 \
	ADDQ AX, R9 \
	MOVQ 32(BX), R10 \
	ADDQ AX, R10 \
	MOVQ 40(BX), R11 \
	ADDQ AX, R11 \
	MOVQ 48(BX), R12 \
	ADDQ AX, R12 \
	MOVQ 56(BX), R13 \
	ADDQ AX, R13 \
	MOVQ x+16(FP), BX \
	MOVQ d+24(FP), CX \
	MOVQ s+32(FP), DX \
	MOVQ nb+40(FP), R14 \
	XORQ AX, AX \
	VXORPS Y15, Y15, Y15

// QDONE stores the eight results.
#define QDONE \
	MOVQ out+48(FP), AX \
	VMOVUPS Y15, (AX) \
	VZEROUPPER \
	RET

// BCASTD broadcasts the 32-bit constant c into Y, through AX and X14
// (before QARGS).
#define BCASTD(c, Y) \
	MOVL $c, AX \
	MOVQ AX, X14 \
	VPBROADCASTD X14, Y

// GATHER4(off, Y, X, T) sets lane k of Y to the 32-bit word at offset off
// of the current block of row k (X is Y's low half, T a scratch X).
#define GATHER4(off, Y, X, T) \
	VMOVD off(SI)(AX*1), X \
	VPINSRD $1, off(DI)(AX*1), X, X \
	VPINSRD $2, off(R8)(AX*1), X, X \
	VPINSRD $3, off(R9)(AX*1), X, X \
	VMOVD off(R10)(AX*1), T \
	VPINSRD $1, off(R11)(AX*1), T, T \
	VPINSRD $2, off(R12)(AX*1), T, T \
	VPINSRD $3, off(R13)(AX*1), T, T \
	VINSERTI128 $1, T, Y, Y

// HALFLO and HALFHI widen the half in the low or high 16 bits of each lane
// of V into D as F16 does: sign-extend, shift left by 13, mask with
// 0x8fffffff (in MASK), multiply by 2^112 (in P112).
#define HALFLO(V, D, MASK, P112) \
	VPSLLD $16, V, D \
	VPSRAD $3, D, D \
	VPAND MASK, D, D \
	VMULPS P112, D, D

#define HALFHI(V, D, MASK, P112) \
	VPSRAD $16, V, D \
	VPSLLD $13, D, D \
	VPAND MASK, D, D \
	VMULPS P112, D, D

// TREED(ROW) runs ROW(row, dst) for the eight rows, each leaving eight
// int32 partial sums in dst, and reduces them with horizontal adds into Y4:
// lane k the sum of row k's. It takes Y4..Y7.
#define TREED(ROW) \
	ROW(SI, Y4) \
	ROW(DI, Y5) \
	VPHADDD Y5, Y4, Y4 \
	ROW(R8, Y5) \
	ROW(R9, Y6) \
	VPHADDD Y6, Y5, Y5 \
	VPHADDD Y5, Y4, Y4 \
	ROW(R10, Y5) \
	ROW(R11, Y6) \
	VPHADDD Y6, Y5, Y5 \
	ROW(R12, Y6) \
	ROW(R13, Y7) \
	VPHADDD Y7, Y6, Y6 \
	VPHADDD Y6, Y5, Y5 \
	VPERM2I128 $0x20, Y5, Y4, Y6 \
	VPERM2I128 $0x31, Y5, Y4, Y7 \
	VPADDD Y7, Y6, Y4

// TREEW is TREED for ROWs leaving sixteen int16 pair sums (weights 2i and
// 2i+1), for the types whose sums over sixteen weights fit int16: three
// rounds of VPHADDW (which wraps, but no partial sum leaves int16), then
// the two halves (weights 0..15 and 16..31) widened and added.
#define TREEW(ROW) \
	ROW(SI, Y4) \
	ROW(DI, Y5) \
	VPHADDW Y5, Y4, Y4 \
	ROW(R8, Y5) \
	ROW(R9, Y6) \
	VPHADDW Y6, Y5, Y5 \
	VPHADDW Y5, Y4, Y4 \
	ROW(R10, Y5) \
	ROW(R11, Y6) \
	VPHADDW Y6, Y5, Y5 \
	ROW(R12, Y6) \
	ROW(R13, Y7) \
	VPHADDW Y7, Y6, Y6 \
	VPHADDW Y6, Y5, Y5 \
	VPHADDW Y5, Y4, Y4 \
	VEXTRACTI128 $1, Y4, X5 \
	VPMOVSXWD X4, Y4 \
	VPMOVSXWD X5, Y5 \
	VPADDD Y5, Y4, Y4

// QSTEP adds t = (A·d)·float32(I) to the accumulator: A the lanes' scales,
// I the integer sums (int32, in Y4), d the block's activation scale at
// (CX). QSTEPC adds t = (A·d)·float32(I) + C·s, C the lanes' offsets and s
// the block's at (DX). Y11 and Y12 are scratch.
#define QSTEP(A) \
	VBROADCASTSS (CX), Y11 \
	VMULPS Y11, A, Y11 \
	VCVTDQ2PS Y4, Y4 \
	VMULPS Y4, Y11, Y11 \
	VADDPS Y11, Y15, Y15

#define QSTEPC(A, C) \
	VBROADCASTSS (CX), Y11 \
	VMULPS Y11, A, Y11 \
	VCVTDQ2PS Y4, Y4 \
	VMULPS Y4, Y11, Y11 \
	VBROADCASTSS (DX), Y12 \
	VMULPS Y12, C, Y12 \
	VADDPS Y12, Y11, Y11 \
	VADDPS Y11, Y15, Y15

// Q8_0: I = Σ w·x as |w| (unsigned) times x with w's sign (|x| <= 127, so
// VPSIGNB cannot overflow; a pair of products is at most 2·128·127, within
// int16). Y0 holds the activations, Y1 int16 ones.
#define ROWQ8_0(R, D) \
	VMOVDQU 2(R)(AX*1), Y8 \
	VPSIGNB Y8, Y0, Y9 \
	VPSIGNB Y8, Y8, Y8 \
	VPMADDUBSW Y9, Y8, Y8 \
	VPMADDWD Y1, Y8, D

// func dot4F16(w *uint16, stride int, x *float32, n int, out *[4]float32)
// out[k] = the eight-lane sum of w[k*stride+i]·x[i] for i < n (a multiple of 8).
TEXT ·dot4F16(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), BX
	SHLQ $1, BX
	MOVQ x+16(FP), DI
	MOVQ n+24(FP), CX
	MOVQ out+32(FP), DX
	LEAQ (SI)(BX*1), R8
	LEAQ (R8)(BX*1), R9
	LEAQ (R9)(BX*1), R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVL $0x8fffffff, AX
	MOVQ AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x77800000, AX // 2^112
	MOVQ AX, X15
	VPBROADCASTD X15, Y15
	XORQ AX, AX

loop16:
	CMPQ AX, CX
	JGE done16
	VMOVUPS (DI)(AX*4), Y4
	VPMOVSXWD (SI)(AX*2), Y5
	VPMOVSXWD (R8)(AX*2), Y6
	VPMOVSXWD (R9)(AX*2), Y7
	VPMOVSXWD (R10)(AX*2), Y8
	VPSLLD $13, Y5, Y5
	VPSLLD $13, Y6, Y6
	VPSLLD $13, Y7, Y7
	VPSLLD $13, Y8, Y8
	VPAND Y14, Y5, Y5
	VPAND Y14, Y6, Y6
	VPAND Y14, Y7, Y7
	VPAND Y14, Y8, Y8
	VMULPS Y15, Y5, Y5
	VMULPS Y15, Y6, Y6
	VMULPS Y15, Y7, Y7
	VMULPS Y15, Y8, Y8
	VMULPS Y4, Y5, Y5
	VMULPS Y4, Y6, Y6
	VMULPS Y4, Y7, Y7
	VMULPS Y4, Y8, Y8
	VADDPS Y5, Y0, Y0
	VADDPS Y6, Y1, Y1
	VADDPS Y7, Y2, Y2
	VADDPS Y8, Y3, Y3
	ADDQ $8, AX
	JMP loop16

done16:
	REDUCE8(Y0, X0, X9)
	REDUCE8(Y1, X1, X9)
	REDUCE8(Y2, X2, X9)
	REDUCE8(Y3, X3, X9)
	VMOVSS X0, 0(DX)
	VMOVSS X1, 4(DX)
	VMOVSS X2, 8(DX)
	VMOVSS X3, 12(DX)
	VZEROUPPER
	RET

// func dot4F32(a *float32, b *float32, stride int, n int, out *[4]float32)
// out[k] = the eight-lane sum of a[i]·b[k*stride+i] for i < n (a multiple of 8).
TEXT ·dot4F32(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), DI
	MOVQ b+8(FP), SI
	MOVQ stride+16(FP), BX
	SHLQ $2, BX
	MOVQ n+24(FP), CX
	MOVQ out+32(FP), DX
	LEAQ (SI)(BX*1), R8
	LEAQ (R8)(BX*1), R9
	LEAQ (R9)(BX*1), R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ AX, AX

loop32:
	CMPQ AX, CX
	JGE done32
	VMOVUPS (DI)(AX*4), Y4
	VMULPS (SI)(AX*4), Y4, Y5
	VMULPS (R8)(AX*4), Y4, Y6
	VMULPS (R9)(AX*4), Y4, Y7
	VMULPS (R10)(AX*4), Y4, Y8
	VADDPS Y5, Y0, Y0
	VADDPS Y6, Y1, Y1
	VADDPS Y7, Y2, Y2
	VADDPS Y8, Y3, Y3
	ADDQ $8, AX
	JMP loop32

done32:
	REDUCE8(Y0, X0, X9)
	REDUCE8(Y1, X1, X9)
	REDUCE8(Y2, X2, X9)
	REDUCE8(Y3, X3, X9)
	VMOVSS X0, 0(DX)
	VMOVSS X1, 4(DX)
	VMOVSS X2, 8(DX)
	VMOVSS X3, 12(DX)
	VZEROUPPER
	RET


// func mvQ8_0(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)
TEXT ·mvQ8_0(SB), NOSPLIT, $0-56
	BCASTD(0x00010001, Y1)
	BCASTD(0x8fffffff, Y2)
	BCASTD(0x77800000, Y3)
	QARGS

q8_0loop:
	VMOVDQU (BX), Y0
	TREED(ROWQ8_0)
	GATHER4(0, Y10, X10, X13)
	HALFLO(Y10, Y10, Y2, Y3)
	QSTEP(Y10)
	ADDQ $34, AX
	ADDQ $32, BX
	ADDQ $4, CX
	ADDQ $4, DX
	DECQ R14
	JNZ q8_0loop
	QDONE
