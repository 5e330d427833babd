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
