//go:build amd64 && !purego

#include "textflag.h"

// The native kernels on amd64 with AVX2: one YMM accumulator holds the eight
// canonical lanes of a sum, halves are widened with the same integer trick as
// the SIMD128 kernels (sign-extend, shift by 13, mask, multiply by 2^112),
// or by F16C's VCVTPH2PS for weights without exponent-31 halves, on which
// it gives the same floats (MatMulF16Finite), products and sums are separate instructions (no FMA), and the lanes are
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

// TREED(ROW, P, Q, S) runs ROW(row, dst, P, Q, S) for the eight rows, each
// leaving eight int32 partial sums in dst, and reduces them with
// horizontal adds into Y4: lane k the sum of row k's. It takes Y4..Y7.
#define TREED(ROW, P, Q, S) \
	ROW(SI, Y4, P, Q, S) \
	ROW(DI, Y5, P, Q, S) \
	VPHADDD Y5, Y4, Y4 \
	ROW(R8, Y5, P, Q, S) \
	ROW(R9, Y6, P, Q, S) \
	VPHADDD Y6, Y5, Y5 \
	VPHADDD Y5, Y4, Y4 \
	ROW(R10, Y5, P, Q, S) \
	ROW(R11, Y6, P, Q, S) \
	VPHADDD Y6, Y5, Y5 \
	ROW(R12, Y6, P, Q, S) \
	ROW(R13, Y7, P, Q, S) \
	VPHADDD Y7, Y6, Y6 \
	VPHADDD Y6, Y5, Y5 \
	VPERM2I128 $0x20, Y5, Y4, Y6 \
	VPERM2I128 $0x31, Y5, Y4, Y7 \
	VPADDD Y7, Y6, Y4

// TREEW is TREED for ROWs leaving sixteen int16 pair sums (weights 2i and
// 2i+1), for the types whose sums over sixteen weights fit int16: three
// rounds of VPHADDW (which wraps, but no partial sum leaves int16), then
// the two halves (weights 0..15 and 16..31) widened and added.
#define TREEW(ROW, P, Q, S) \
	ROW(SI, Y4, P, Q, S) \
	ROW(DI, Y5, P, Q, S) \
	VPHADDW Y5, Y4, Y4 \
	ROW(R8, Y5, P, Q, S) \
	ROW(R9, Y6, P, Q, S) \
	VPHADDW Y6, Y5, Y5 \
	VPHADDW Y5, Y4, Y4 \
	ROW(R10, Y5, P, Q, S) \
	ROW(R11, Y6, P, Q, S) \
	VPHADDW Y6, Y5, Y5 \
	ROW(R12, Y6, P, Q, S) \
	ROW(R13, Y7, P, Q, S) \
	VPHADDW Y7, Y6, Y6 \
	VPHADDW Y6, Y5, Y5 \
	VPHADDW Y5, Y4, Y4 \
	VEXTRACTI128 $1, Y4, X5 \
	VPMOVSXWD X4, Y4 \
	VPMOVSXWD X5, Y5 \
	VPADDD Y5, Y4, Y4

// QSTEP(A, j) adds t = (A·d)·float32(I) to the accumulator: A the lanes'
// scales, I the integer sums (int32, in Y4), d activation block j's scale
// at 4j(CX). QSTEPC(A, C, j) adds t = (A·d)·float32(I) + C·s, C the lanes'
// offsets and s the block's at 4j(DX). Y5 and Y6 are scratch.
#define QSTEP(A, j) \
	VBROADCASTSS (4*j)(CX), Y5 \
	VMULPS Y5, A, Y5 \
	VCVTDQ2PS Y4, Y4 \
	VMULPS Y4, Y5, Y5 \
	VADDPS Y5, Y15, Y15

#define QSTEPC(A, C, j) \
	VBROADCASTSS (4*j)(CX), Y5 \
	VMULPS Y5, A, Y5 \
	VCVTDQ2PS Y4, Y4 \
	VMULPS Y4, Y5, Y5 \
	VBROADCASTSS (4*j)(DX), Y6 \
	VMULPS Y6, C, Y6 \
	VADDPS Y6, Y5, Y5 \
	VADDPS Y5, Y15, Y15

// Q8_0: I = Σ w·x as |w| (unsigned) times x with w's sign (|x| <= 127, so
// VPSIGNB cannot overflow; a pair of products is at most 2·128·127, within
// int16). Y0 holds the activations, Y1 int16 ones.
#define ROWQ8_0(R, D, P, Q, S) \
	VMOVDQU 2(R)(AX*1), Y8 \
	VPSIGNB Y8, Y0, Y9 \
	VPSIGNB Y8, Y8, Y8 \
	VPMADDUBSW Y9, Y8, Y8 \
	VPMADDWD Y1, Y8, D

// Constants of the quantized kernels, 32 bytes each (for YMM operands).
DATA qconst<>+0(SB)/8, $0x8fffffff8fffffff // +0: the F16 mask
DATA qconst<>+8(SB)/8, $0x8fffffff8fffffff
DATA qconst<>+16(SB)/8, $0x8fffffff8fffffff
DATA qconst<>+24(SB)/8, $0x8fffffff8fffffff
DATA qconst<>+32(SB)/8, $0x7780000077800000 // +32: 2^112
DATA qconst<>+40(SB)/8, $0x7780000077800000
DATA qconst<>+48(SB)/8, $0x7780000077800000
DATA qconst<>+56(SB)/8, $0x7780000077800000
DATA qconst<>+64(SB)/8, $0x3f3f3f3f3f3f3f3f // +64: low six bits of bytes
DATA qconst<>+72(SB)/8, $0x3f3f3f3f3f3f3f3f
DATA qconst<>+80(SB)/8, $0x3f3f3f3f3f3f3f3f
DATA qconst<>+88(SB)/8, $0x3f3f3f3f3f3f3f3f
DATA qconst<>+96(SB)/8, $0x0f0f0f0f0f0f0f0f // +96: low nibbles
DATA qconst<>+104(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA qconst<>+112(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA qconst<>+120(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA qconst<>+128(SB)/8, $0x3030303030303030 // +128: bits 4, 5 of bytes
DATA qconst<>+136(SB)/8, $0x3030303030303030
DATA qconst<>+144(SB)/8, $0x3030303030303030
DATA qconst<>+152(SB)/8, $0x3030303030303030
DATA qconst<>+160(SB)/8, $0x000000ff000000ff // +160: low bytes of words
DATA qconst<>+168(SB)/8, $0x000000ff000000ff
DATA qconst<>+176(SB)/8, $0x000000ff000000ff
DATA qconst<>+184(SB)/8, $0x000000ff000000ff
DATA qconst<>+192(SB)/8, $0x8000000080000000 // +192: float sign bits
DATA qconst<>+200(SB)/8, $0x8000000080000000
DATA qconst<>+208(SB)/8, $0x8000000080000000
DATA qconst<>+216(SB)/8, $0x8000000080000000
DATA qconst<>+224(SB)/8, $0x2020202020202020 // +224: bytes 32
DATA qconst<>+232(SB)/8, $0x2020202020202020
DATA qconst<>+240(SB)/8, $0x2020202020202020
DATA qconst<>+248(SB)/8, $0x2020202020202020
DATA qconst<>+256(SB)/8, $0x0000000000000000 // +256: byte 0 eight times, byte 1 eight times
DATA qconst<>+264(SB)/8, $0x0101010101010101
DATA qconst<>+272(SB)/8, $0x0808080808080808 // +272: bytes 8
DATA qconst<>+280(SB)/8, $0x0808080808080808
DATA qconst<>+288(SB)/8, $0x0808080808080808
DATA qconst<>+296(SB)/8, $0x0808080808080808
DATA qconst<>+304(SB)/8, $0x1010101010101010 // +304: bytes 16
DATA qconst<>+312(SB)/8, $0x1010101010101010
DATA qconst<>+320(SB)/8, $0x1010101010101010
DATA qconst<>+328(SB)/8, $0x1010101010101010
DATA qconst<>+336(SB)/8, $0x0000000000000000 // +336: byte k of a word to bytes 8k..8k+8
DATA qconst<>+344(SB)/8, $0x0101010101010101
DATA qconst<>+352(SB)/8, $0x0202020202020202
DATA qconst<>+360(SB)/8, $0x0303030303030303
DATA qconst<>+368(SB)/8, $0x8040201008040201 // +368: bit i%8 of byte i
DATA qconst<>+376(SB)/8, $0x8040201008040201
DATA qconst<>+384(SB)/8, $0x8040201008040201
DATA qconst<>+392(SB)/8, $0x8040201008040201
DATA qconst<>+400(SB)/8, $0x0000000000000000 // +400: VPSRLVQ counts, 0 low and 4 high
DATA qconst<>+408(SB)/8, $0x0000000000000000
DATA qconst<>+416(SB)/8, $0x0000000000000004
DATA qconst<>+424(SB)/8, $0x0000000000000004
GLOBL qconst<>(SB), RODATA|NOPTR, $432

// q8perm puts the 32-bit groups of VPACKSSDW/VPACKSSWB's output in order.
DATA q8perm<>+0(SB)/8, $0x0000000400000000
DATA q8perm<>+8(SB)/8, $0x0000000500000001
DATA q8perm<>+16(SB)/8, $0x0000000600000002
DATA q8perm<>+24(SB)/8, $0x0000000700000003
GLOBL q8perm<>(SB), RODATA|NOPTR, $32

#define QC_F16MASK qconst<>+0(SB)
#define QC_P112 qconst<>+32(SB)
#define QC_3F qconst<>+64(SB)
#define QC_0F qconst<>+96(SB)
#define QC_30 qconst<>+128(SB)
#define QC_FF qconst<>+160(SB)
#define QC_SIGN qconst<>+192(SB)
#define QC_32 qconst<>+224(SB)
#define QC_B01 qconst<>+256(SB)
#define QC_8 qconst<>+272(SB)
#define QC_16 qconst<>+304(SB)
#define QC_BYTES qconst<>+336(SB)
#define QC_BITS qconst<>+368(SB)
#define QC_SHIFT04 qconst<>+400(SB)

// HEAD16(off) loads the 16 bytes at offset off of the current block of the
// eight rows and transposes them as 32-bit words: Y6..Y9 hold words 0..3,
// lane k row k's. It takes Y4..Y9.
#define HEAD16(off) \
	VMOVDQU off(SI)(AX*1), X4 \
	VINSERTI128 $1, off(R10)(AX*1), Y4, Y4 \
	VMOVDQU off(DI)(AX*1), X5 \
	VINSERTI128 $1, off(R11)(AX*1), Y5, Y5 \
	VMOVDQU off(R8)(AX*1), X6 \
	VINSERTI128 $1, off(R12)(AX*1), Y6, Y6 \
	VMOVDQU off(R9)(AX*1), X7 \
	VINSERTI128 $1, off(R13)(AX*1), Y7, Y7 \
	VPUNPCKLDQ Y5, Y4, Y8 \
	VPUNPCKHDQ Y5, Y4, Y9 \
	VPUNPCKLDQ Y7, Y6, Y4 \
	VPUNPCKHDQ Y7, Y6, Y5 \
	VPUNPCKLQDQ Y4, Y8, Y6 \
	VPUNPCKHQDQ Y4, Y8, Y7 \
	VPUNPCKLQDQ Y5, Y9, Y8 \
	VPUNPCKHQDQ Y5, Y9, Y9

// KSCALES turns the transposed header words of Q4_K/Q5_K super-blocks (Y6
// = d, dmin; Y7..Y9 = scales[0..12)) into Y2 = d and Y3 = dmin as floats
// and the 6-bit scales and mins of get_scale_min_k4, a byte per sub-block:
// Y10 = sc[0..4), Y11 = sc[4..8), Y12 = m[0..4), Y13 = m[4..8).
#define KSCALES \
	HALFLO(Y6, Y2, QC_F16MASK, QC_P112) \
	HALFHI(Y6, Y3, QC_F16MASK, QC_P112) \
	VPAND QC_3F, Y7, Y10 \
	VPAND QC_3F, Y8, Y12 \
	VPSRLD $2, Y7, Y4 \
	VPAND QC_30, Y4, Y4 \
	VPAND QC_0F, Y9, Y11 \
	VPOR Y4, Y11, Y11 \
	VPSRLD $2, Y8, Y4 \
	VPAND QC_30, Y4, Y4 \
	VPSRLD $4, Y9, Y13 \
	VPAND QC_0F, Y13, Y13 \
	VPOR Y4, Y13, Y13

// KSTEP(j, SC, M, sh) finishes sub-block j of a Q4_K/Q5_K super-block: Y4
// holds the lanes' Σq·x; the sub-block's scale and min are byte sh/8 of
// SC and M. I = sc·Σ, c = -(dmin·float32(m)), t = (d·d_j)·float32(I) +
// c·s_j, added to the accumulator.
#define KSTEP(j, SC, M, sh) \
	VPSRLD $sh, SC, Y5 \
	VPAND QC_FF, Y5, Y5 \
	VPMULLD Y5, Y4, Y4 \
	VPSRLD $sh, M, Y6 \
	VPAND QC_FF, Y6, Y6 \
	VCVTDQ2PS Y6, Y6 \
	VMULPS Y6, Y3, Y6 \
	VXORPS QC_SIGN, Y6, Y6 \
	VBROADCASTSS (4*j)(CX), Y7 \
	VMULPS Y7, Y2, Y7 \
	VCVTDQ2PS Y4, Y4 \
	VMULPS Y4, Y7, Y7 \
	VBROADCASTSS (4*j)(DX), Y8 \
	VMULPS Y8, Y6, Y8 \
	VADDPS Y8, Y7, Y7 \
	VADDPS Y7, Y15, Y15

// Q4_K: the nibbles of the 32 bytes at offset OFF, low (ROWQ4KLO) or high
// (ROWQ4KHI), times the activations in Y0 (Y1: 0x0f bytes); sixteen
// products add up to at most 16·15·127 = 30480, within int16 (TREEW).
#define ROWQ4KLO(R, D, OFF, Q, S) \
	VPAND OFF(R)(AX*1), Y1, Y8 \
	VPMADDUBSW Y0, Y8, D

#define ROWQ4KHI(R, D, OFF, Q, S) \
	VMOVDQU OFF(R)(AX*1), Y8 \
	VPSRLW $4, Y8, Y8 \
	VPAND Y1, Y8, Y8 \
	VPMADDUBSW Y0, Y8, D

// SUBQ4K(j, ROW, OFF, SC, M, sh) is sub-block j of a Q4_K super-block.
#define SUBQ4K(j, ROW, OFF, SC, M, sh) \
	VMOVDQU (32*j)(BX), Y0 \
	TREEW(ROW, OFF, 0, 0) \
	KSTEP(j, SC, M, sh)

// Q6_K: block j of a super-block is quarter i = j%4 of half h = j/4; its
// quants are the nibbles of ql at L = 64h + 32(i%2) (low for i < 2) with
// bits 2i, 2i+1 of qh at H = 128 + 32h as bits 4, 5; the scales of its two
// sixteens are bytes 192+2j, 193+2j. Σ(q-32)·x pairs are VPMADDUBSW(x, q)
// minus VPMADDUBSW(x, 32) (in Y3; at most 2·63·127 + 2·32·127 = 24130),
// weighted by the scales with VPMADDWD. Y1: 0x0f bytes, Y2: 0x30 bytes.
#define Q6SCALE(R, SOFF) \
	VPBROADCASTW SOFF(R)(AX*1), X9 \
	VPSHUFB QC_B01, X9, X9 \
	VPMOVSXBW X9, Y9

#define ROWQ6K0(R, D, L, H, SOFF) \
	VPAND L(R)(AX*1), Y1, Y8 \
	VMOVDQU H(R)(AX*1), Y9 \
	VPSLLW $4, Y9, Y9 \
	VPAND Y2, Y9, Y9 \
	VPOR Y9, Y8, Y8 \
	VPMADDUBSW Y0, Y8, Y8 \
	VPSUBW Y3, Y8, Y8 \
	Q6SCALE(R, SOFF) \
	VPMADDWD Y9, Y8, D

#define ROWQ6K1(R, D, L, H, SOFF) \
	VPAND L(R)(AX*1), Y1, Y8 \
	VMOVDQU H(R)(AX*1), Y9 \
	VPSLLW $2, Y9, Y9 \
	VPAND Y2, Y9, Y9 \
	VPOR Y9, Y8, Y8 \
	VPMADDUBSW Y0, Y8, Y8 \
	VPSUBW Y3, Y8, Y8 \
	Q6SCALE(R, SOFF) \
	VPMADDWD Y9, Y8, D

#define ROWQ6K2(R, D, L, H, SOFF) \
	VMOVDQU L(R)(AX*1), Y8 \
	VPSRLW $4, Y8, Y8 \
	VPAND Y1, Y8, Y8 \
	VPAND H(R)(AX*1), Y2, Y9 \
	VPOR Y9, Y8, Y8 \
	VPMADDUBSW Y0, Y8, Y8 \
	VPSUBW Y3, Y8, Y8 \
	Q6SCALE(R, SOFF) \
	VPMADDWD Y9, Y8, D

#define ROWQ6K3(R, D, L, H, SOFF) \
	VMOVDQU L(R)(AX*1), Y8 \
	VPSRLW $4, Y8, Y8 \
	VPAND Y1, Y8, Y8 \
	VMOVDQU H(R)(AX*1), Y9 \
	VPSRLW $2, Y9, Y9 \
	VPAND Y2, Y9, Y9 \
	VPOR Y9, Y8, Y8 \
	VPMADDUBSW Y0, Y8, Y8 \
	VPSUBW Y3, Y8, Y8 \
	Q6SCALE(R, SOFF) \
	VPMADDWD Y9, Y8, D

// SUBQ6K(j, ROW, L, H) is block j of a Q6_K super-block (Y10: the lanes' d).
#define SUBQ6K(j, ROW, L, H) \
	VMOVDQU (32*j)(BX), Y0 \
	VPMADDUBSW Y0, Y14, Y3 \
	TREED(ROW, L, H, 192+2*j) \
	QSTEP(Y10, j)

// The types of blocks of 32 (ROW32 macros). Q4_0 and Q4_1: the 16 bytes
// of nibbles at OFF, broadcast to both halves, the high half shifted by
// 4 (VPSRLVQ), masked with 0x0f (Y1): weights 0..15 low, 16..31 high.
#define NIBBLES32(R, OFF) \
	VBROADCASTI128 OFF(R)(AX*1), Y8 \
	VPSRLVQ QC_SHIFT04, Y8, Y8 \
	VPAND Y1, Y8, Y8

// FIFTH32 sets bit 4 of weight i to bit i of the 32-bit word at QH (Q5_0,
// Q5_1): the word's byte i/8 to byte i, bit i%8 tested, 16 where set.
#define FIFTH32(R, QH) \
	VPBROADCASTD QH(R)(AX*1), Y9 \
	VPSHUFB QC_BYTES, Y9, Y9 \
	VPAND QC_BITS, Y9, Y9 \
	VPCMPEQB QC_BITS, Y9, Y9 \
	VPAND QC_16, Y9, Y9 \
	VPOR Y9, Y8, Y8

// Q4_0: Σ(q-8)·x in int16 pairs as VPMADDUBSW(x, q) minus VPMADDUBSW(x, 8)
// (in Y3); |(q-8)·x| <= 8·127, so sixteen add up within int16 (TREEW).
#define ROWQ4_0(R, D, P, Q, S) \
	NIBBLES32(R, 2) \
	VPMADDUBSW Y0, Y8, Y8 \
	VPSUBW Y3, Y8, D

// Q4_1: Σq·x; sixteen products of at most 15·128 fit int16.
#define ROWQ4_1(R, D, P, Q, S) \
	NIBBLES32(R, 4) \
	VPMADDUBSW Y0, Y8, D

// Q5_0: Σ(q-16)·x as Q4_0 with VPMADDUBSW(x, 16) in Y3; sixteen terms of
// at most 16·127 add up to 32512 at most, within int16 (TREEW).
#define ROWQ5_0(R, D, P, Q, S) \
	NIBBLES32(R, 6) \
	FIFTH32(R, 2) \
	VPMADDUBSW Y0, Y8, Y8 \
	VPSUBW Y3, Y8, D

// Q5_1: Σq·x, q < 32: pairs widened to int32 with VPMADDWD (Y14: ones)
// for TREED, as sixteen products could reach 16·31·127.
#define ROWQ5_1(R, D, P, Q, S) \
	NIBBLES32(R, 8) \
	FIFTH32(R, 4) \
	VPMADDUBSW Y0, Y8, Y8 \
	VPMADDWD Y14, Y8, D

// Q5_K: the nibbles of ROWQ4K with bit j of qh[l] (the 32 bytes at 16) as
// bit 4: shifted into place by SHIFT $SH, masked with 16. Σq·x widened to
// int32 with VPMADDWD (Y14: ones) for TREED.
#define ROWQ5KLO(R, D, OFF, SHIFT, SH) \
	VPAND OFF(R)(AX*1), Y1, Y8 \
	VMOVDQU 16(R)(AX*1), Y9 \
	SHIFT $SH, Y9, Y9 \
	VPAND QC_16, Y9, Y9 \
	VPOR Y9, Y8, Y8 \
	VPMADDUBSW Y0, Y8, Y8 \
	VPMADDWD Y14, Y8, D

#define ROWQ5KHI(R, D, OFF, SHIFT, SH) \
	VMOVDQU OFF(R)(AX*1), Y8 \
	VPSRLW $4, Y8, Y8 \
	VPAND Y1, Y8, Y8 \
	VMOVDQU 16(R)(AX*1), Y9 \
	SHIFT $SH, Y9, Y9 \
	VPAND QC_16, Y9, Y9 \
	VPOR Y9, Y8, Y8 \
	VPMADDUBSW Y0, Y8, Y8 \
	VPMADDWD Y14, Y8, D

// SUBQ5K(j, ROW, OFF, SHIFT, SH, SC, M, sh) is sub-block j of a Q5_K
// super-block.
#define SUBQ5K(j, ROW, OFF, SHIFT, SH, SC, M, sh) \
	VMOVDQU (32*j)(BX), Y0 \
	TREED(ROW, OFF, SHIFT, SH) \
	KSTEP(j, SC, M, sh)

// The F16 matrix-vector kernels below take eight rows per pass, at
// w+offs[0..8) (byte offsets), each with its own YMM accumulator: Y0..Y7 the
// rows' eight canonical lanes, Y8 the current eight activations, Y14 the
// F16 mask, Y15 2^112, Y9..Y13 scratch. Registers SI, DI, R8..R13 point at
// the rows, DX at x, CX is n, AX the current column.

// F16ARGS loads the arguments, makes the row pointers and clears AX and the
// accumulators (vet checks the argument names at each use of the macro).
#define F16ARGS \
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
	MOVQ x+16(FP), DX \
	MOVQ n+24(FP), CX \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3 \
	VXORPS Y4, Y4, Y4 \
	VXORPS Y5, Y5, Y5 \
	VXORPS Y6, Y6, Y6 \
	VXORPS Y7, Y7, Y7 \
	MOVL $0x8fffffff, AX \
	MOVQ AX, X14 \
	VPBROADCASTD X14, Y14 \
	MOVL $0x77800000, AX \
	MOVQ AX, X15 \
	VPBROADCASTD X15, Y15 \
	XORQ AX, AX

// F16DONE reduces the eight accumulators and stores the eight sums.
#define F16DONE \
	MOVQ out+32(FP), DX \
	REDUCE8(Y0, X0, X9) \
	REDUCE8(Y1, X1, X9) \
	REDUCE8(Y2, X2, X9) \
	REDUCE8(Y3, X3, X9) \
	REDUCE8(Y4, X4, X9) \
	REDUCE8(Y5, X5, X9) \
	REDUCE8(Y6, X6, X9) \
	REDUCE8(Y7, X7, X9) \
	VMOVSS X0, 0(DX) \
	VMOVSS X1, 4(DX) \
	VMOVSS X2, 8(DX) \
	VMOVSS X3, 12(DX) \
	VMOVSS X4, 16(DX) \
	VMOVSS X5, 20(DX) \
	VMOVSS X6, 24(DX) \
	VMOVSS X7, 28(DX) \
	VZEROUPPER \
	RET

// F16ROW(R, A, T, off) adds to A the products of Y8 with the eight halves at
// byte offset off past column AX of row R, widened without their factor
// 2^112 (which Y8 carries: see dot8F16S): sign-extended, shifted and masked.
// F16ROWW widens them fully (Y8 the plain activations). F16ROWS does
// either for the eight rows.
#define F16ROW(R, A, T, off) \
	VPMOVSXWD off(R)(AX*2), T \
	VPSLLD $13, T, T \
	VPAND Y14, T, T \
	VMULPS Y8, T, T \
	VADDPS T, A, A

#define F16ROWW(R, A, T, off) \
	VPMOVSXWD off(R)(AX*2), T \
	VPSLLD $13, T, T \
	VPAND Y14, T, T \
	VMULPS Y15, T, T \
	VMULPS Y8, T, T \
	VADDPS T, A, A

#define F16ROWS(ROW, off) \
	ROW(SI, Y0, Y9, off) \
	ROW(DI, Y1, Y10, off) \
	ROW(R8, Y2, Y11, off) \
	ROW(R9, Y3, Y12, off) \
	ROW(R10, Y4, Y13, off) \
	ROW(R11, Y5, Y9, off) \
	ROW(R12, Y6, Y10, off) \
	ROW(R13, Y7, Y11, off)

// F16XS(off) sets Y8 to 2^112 times the eight activations at byte offset
// off past column AX (for dot8F16S); F16XW loads them as they are.
#define F16XS(off) VMULPS off(DX)(AX*4), Y15, Y8
#define F16XW(off) VMOVUPS off(DX)(AX*4), Y8

// F16PF asks for the line F16PFDIST bytes ahead of column AX in each row,
// non-temporally (PREFETCHNTA: into L1 without displacing the caches'
// other lines much). The eight streams run at memory speed only with it:
// on the SmolLM2-135M matrices the hardware prefetcher alone leaves them
// about a fifth slower.
#define F16PFDIST 2048
#define F16PF \
	PREFETCHNTA F16PFDIST(SI)(AX*2) \
	PREFETCHNTA F16PFDIST(DI)(AX*2) \
	PREFETCHNTA F16PFDIST(R8)(AX*2) \
	PREFETCHNTA F16PFDIST(R9)(AX*2) \
	PREFETCHNTA F16PFDIST(R10)(AX*2) \
	PREFETCHNTA F16PFDIST(R11)(AX*2) \
	PREFETCHNTA F16PFDIST(R12)(AX*2) \
	PREFETCHNTA F16PFDIST(R13)(AX*2)

// F16BODY(X, ROW, L32, L8, DONE) is a kernel after F16ARGS: 32 columns (a
// 64-byte line of each row, one prefetch each) per iteration, then eight
// at a time. X loads the activations, ROW adds one row's products.
#define F16BODY(X, ROW, L32, L8, DONE) \
	LEAQ -32(CX), BX \
L32: \
	CMPQ AX, BX \
	JGT L8 \
	F16PF \
	X(0) \
	F16ROWS(ROW, 0) \
	X(32) \
	F16ROWS(ROW, 16) \
	X(64) \
	F16ROWS(ROW, 32) \
	X(96) \
	F16ROWS(ROW, 48) \
	ADDQ $32, AX \
	JMP L32 \
L8: \
	CMPQ AX, CX \
	JGE DONE \
	X(0) \
	F16ROWS(ROW, 0) \
	ADDQ $8, AX \
	JMP L8 \
DONE: \
	F16DONE

// func dot8F16(w *uint16, offs *[8]int, x *float32, n int, out *[8]float32)
// out[k] = the eight-lane sum of F16(h)·x[i] over the halves h at
// w+offs[k] (bytes) and i < n (a multiple of 8).
TEXT ·dot8F16(SB), NOSPLIT, $0-40
	F16ARGS
	F16BODY(F16XW, F16ROWW, f16w32, f16w8, f16wdone)

// func dot8F16S(w *uint16, offs *[8]int, x *float32, n int, out *[8]float32)
// is dot8F16 for x whose |x[i]| < 2^16: it multiplies each x[i] by 2^112
// (exactly) instead of each widened half by 2^112, one VMULPS for eight
// rows instead of eight. The products round as dot8F16's: m·(x·2^112) and
// (m·2^112)·x are the same real number, m the masked bits of the half.
TEXT ·dot8F16S(SB), NOSPLIT, $0-40
	F16ARGS
	F16BODY(F16XS, F16ROW, f16s32, f16s8, f16sdone)

// F16ROWC adds to A the products of Y8 (the plain activations) with the
// eight halves at byte offset off past column AX of row R, widened by
// VCVTPH2PS: for finite halves the same floats as F16ROWW's.
#define F16ROWC(R, A, T, off) \
	VCVTPH2PS off(R)(AX*2), T \
	VMULPS Y8, T, T \
	VADDPS T, A, A

// func dot8F16C(w *uint16, offs *[8]int, x *float32, n int, out *[8]float32)
// is dot8F16 for halves none of which has exponent 31 (F16Finite), widened
// with F16C: one instruction for eight halves instead of four.
TEXT ·dot8F16C(SB), NOSPLIT, $0-40
	F16ARGS
	F16BODY(F16XW, F16ROWC, f16c32, f16c8, f16cdone)

// func f16Small(x *float32, n int) bool reports whether |x[i]| < 2^16 for
// every i < n (a multiple of 8), so that x[i]·2^112 is exact (false for
// infinities and NaNs): the largest |x[i]|'s bits, as unsigned integers.
TEXT ·f16Small(SB), NOSPLIT, $0-17
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0x7fffffff, AX
	MOVQ AX, X1
	VPBROADCASTD X1, Y1
	VPXOR Y0, Y0, Y0
	XORQ AX, AX

smallloop:
	CMPQ AX, CX
	JGE smalldone
	VPAND (SI)(AX*4), Y1, Y2
	VPMAXUD Y2, Y0, Y0
	ADDQ $8, AX
	JMP smallloop

smalldone:
	VEXTRACTI128 $1, Y0, X2
	VPMAXUD X2, X0, X0
	VPSHUFD $0x4e, X0, X2
	VPMAXUD X2, X0, X0
	VPSHUFD $0xb1, X0, X2
	VPMAXUD X2, X0, X0
	VMOVD X0, AX
	CMPL AX, $0x47800000
	SETCS ret+16(FP)
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


// ---------------------------------------------------------------------
// Matrix-matrix products (several vectors): a tile of three rows by four
// vectors per pass, twelve canonical sums in Y0-Y11, one YMM accumulator
// each. Every row's eight columns are loaded once (Y12-Y14) and multiplied
// by each vector's eight columns straight from memory into Y15, so that each
// load of w serves four vectors and each load of x three rows. Twelve
// independent sums keep both adders busy where four (dot4F32) waited on the
// latency of VADDPS. Measured on the 2-core EPYC (BenchmarkPrefillF16,
// cpu-GFLOP/s, two interleaved runs each, 1536x576 and 576x1536 by 32, 64
// and 128 vectors): F32 weights, dot4F32 by one row and four vectors 30-38
// -> this tile 46-65; F16, widened a row at a time in Go for dot4F32 28-47
// -> widened three rows at a time by widen8F16 for this tile 49-68.

// TILEROW(XP, A0, A1, A2) adds the products of the vector at XP with the
// three rows (Y12-Y14) to A0, A1 and A2.
#define TILEROW(XP, A0, A1, A2) \
	VMULPS (XP)(AX*4), Y12, Y15 \
	VADDPS Y15, A0, A0 \
	VMULPS (XP)(AX*4), Y13, Y15 \
	VADDPS Y15, A1, A1 \
	VMULPS (XP)(AX*4), Y14, Y15 \
	VADDPS Y15, A2, A2

// func tileF32(w *float32, woffs *[3]int, x *float32, xoffs *[4]int, n int, out *[12]float32)
// out[4*r+t] = the eight-lane sum of w'[i]·x'[i] for i < n (a multiple of
// 8), w' the row at w+woffs[r] and x' the vector at x+xoffs[t] (bytes).
TEXT ·tileF32(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), AX
	MOVQ woffs+8(FP), BX
	MOVQ 0(BX), DI
	ADDQ AX, DI
	MOVQ 8(BX), R8
	ADDQ AX, R8
	MOVQ 16(BX), R9
	ADDQ AX, R9
	MOVQ x+16(FP), AX
	MOVQ xoffs+24(FP), BX
	MOVQ 0(BX), SI
	ADDQ AX, SI
	MOVQ 8(BX), R10
	ADDQ AX, R10
	MOVQ 16(BX), R11
	ADDQ AX, R11
	MOVQ 24(BX), R12
	ADDQ AX, R12
	MOVQ n+32(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	XORQ AX, AX

tileloop:
	CMPQ AX, CX
	JGE tiledone
	VMOVUPS (DI)(AX*4), Y12
	VMOVUPS (R8)(AX*4), Y13
	VMOVUPS (R9)(AX*4), Y14
	TILEROW(SI, Y0, Y4, Y8)
	TILEROW(R10, Y1, Y5, Y9)
	TILEROW(R11, Y2, Y6, Y10)
	TILEROW(R12, Y3, Y7, Y11)
	ADDQ $8, AX
	JMP tileloop

tiledone:
	MOVQ out+40(FP), DX
	REDUCE8(Y0, X0, X15)
	VMOVSS X0, 0(DX)
	REDUCE8(Y1, X1, X15)
	VMOVSS X1, 4(DX)
	REDUCE8(Y2, X2, X15)
	VMOVSS X2, 8(DX)
	REDUCE8(Y3, X3, X15)
	VMOVSS X3, 12(DX)
	REDUCE8(Y4, X4, X15)
	VMOVSS X4, 16(DX)
	REDUCE8(Y5, X5, X15)
	VMOVSS X5, 20(DX)
	REDUCE8(Y6, X6, X15)
	VMOVSS X6, 24(DX)
	REDUCE8(Y7, X7, X15)
	VMOVSS X7, 28(DX)
	REDUCE8(Y8, X8, X15)
	VMOVSS X8, 32(DX)
	REDUCE8(Y9, X9, X15)
	VMOVSS X9, 36(DX)
	REDUCE8(Y10, X10, X15)
	VMOVSS X10, 40(DX)
	REDUCE8(Y11, X11, X15)
	VMOVSS X11, 44(DX)
	VZEROUPPER
	RET

// func axpy8(y *float32, a float32, x *float32, n int)
// y[i] = y[i] + a·x[i] for i < n (a multiple of 8), the product rounded
// before the sum (VMULPS, then VADDPS).
TEXT ·axpy8(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), DI
	VBROADCASTSS a+8(FP), Y15
	MOVQ x+16(FP), SI
	MOVQ n+24(FP), CX
	XORQ AX, AX

axpyloop:
	CMPQ AX, CX
	JGE axpydone
	VMULPS (SI)(AX*4), Y15, Y0
	VADDPS (DI)(AX*4), Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ $8, AX
	JMP axpyloop

axpydone:
	VZEROUPPER
	RET

// MIXTERM(off, P, A) adds to A the weight in Y15 times the eight values
// at byte offset off past R11, the product rounded first (P: scratch).
#define MIXTERM(off, P, A) \
	VMULPS off(R11), Y15, P \
	VADDPS P, A, A

// func mix8(out *float32, a *float32, v *float32, n, stride, cols int)
// out[c] = Σ a[i]·v[i·stride+c] over i < n (n > 0), for c < cols (a
// multiple of 8): each sum starts from +0 (VXORPS) and adds its terms in
// increasing i, each product rounded before the sum (VMULPS, then VADDPS),
// which is goMix's order. Sixty-four columns per pass over the positions
// (eight accumulators, so that eight independent additions hide VADDPS's
// latency), then thirty-two (four), then eight.
TEXT ·mix8(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ v+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ stride+32(FP), R8
	SHLQ $2, R8
	MOVQ cols+40(FP), R9
	XORQ R10, R10

mix64:
	LEAQ 64(R10), AX
	CMPQ AX, R9
	JGT mix32
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	LEAQ (DX)(R10*4), R11
	XORQ BX, BX

mix64pos:
	VBROADCASTSS (SI)(BX*4), Y15
	MIXTERM(0, Y8, Y0)
	MIXTERM(32, Y9, Y1)
	MIXTERM(64, Y10, Y2)
	MIXTERM(96, Y11, Y3)
	MIXTERM(128, Y12, Y4)
	MIXTERM(160, Y13, Y5)
	MIXTERM(192, Y8, Y6)
	MIXTERM(224, Y9, Y7)
	ADDQ R8, R11
	INCQ BX
	CMPQ BX, CX
	JLT mix64pos
	VMOVUPS Y0, (DI)(R10*4)
	VMOVUPS Y1, 32(DI)(R10*4)
	VMOVUPS Y2, 64(DI)(R10*4)
	VMOVUPS Y3, 96(DI)(R10*4)
	VMOVUPS Y4, 128(DI)(R10*4)
	VMOVUPS Y5, 160(DI)(R10*4)
	VMOVUPS Y6, 192(DI)(R10*4)
	VMOVUPS Y7, 224(DI)(R10*4)
	MOVQ AX, R10
	JMP mix64

mix32:
	LEAQ 32(R10), AX
	CMPQ AX, R9
	JGT mix8cols
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	LEAQ (DX)(R10*4), R11
	XORQ BX, BX

mix32pos:
	VBROADCASTSS (SI)(BX*4), Y15
	MIXTERM(0, Y4, Y0)
	MIXTERM(32, Y5, Y1)
	MIXTERM(64, Y6, Y2)
	MIXTERM(96, Y7, Y3)
	ADDQ R8, R11
	INCQ BX
	CMPQ BX, CX
	JLT mix32pos
	VMOVUPS Y0, (DI)(R10*4)
	VMOVUPS Y1, 32(DI)(R10*4)
	VMOVUPS Y2, 64(DI)(R10*4)
	VMOVUPS Y3, 96(DI)(R10*4)
	MOVQ AX, R10
	JMP mix32

mix8cols:
	CMPQ R10, R9
	JGE mixdone
	VXORPS Y0, Y0, Y0
	LEAQ (DX)(R10*4), R11
	XORQ BX, BX

mix8pos:
	VBROADCASTSS (SI)(BX*4), Y15
	MIXTERM(0, Y4, Y0)
	ADDQ R8, R11
	INCQ BX
	CMPQ BX, CX
	JLT mix8pos
	VMOVUPS Y0, (DI)(R10*4)
	ADDQ $8, R10
	JMP mix8cols

mixdone:
	VZEROUPPER
	RET

// func widen8F16(dst *float32, src *uint16, n int)
// dst[i] = F16(src[i]) for i < n (a multiple of 8), by F16's integer trick.
// It reads the matrix from memory for the tiles, three rows at a time, and
// asks for the line 4 KiB ahead at every step: without it the widening
// took a fifth of F16 prefill on the SmolLM2-135M shape, waiting on
// memory between tiles; with it that prefill ran 1.15-1.35x as fast
// (cpu-tok/s, interleaved; 2 KiB and 8 KiB ahead measured the same).
TEXT ·widen8F16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVL $0x8fffffff, AX
	MOVQ AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x77800000, AX
	MOVQ AX, X15
	VPBROADCASTD X15, Y15
	XORQ AX, AX

widenloop:
	CMPQ AX, CX
	JGE widendone
	PREFETCHT0 4096(SI)(AX*2)
	VPMOVSXWD (SI)(AX*2), Y0
	VPSLLD $13, Y0, Y0
	VPAND Y14, Y0, Y0
	VMULPS Y15, Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ $8, AX
	JMP widenloop

widendone:
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
	TREED(ROWQ8_0, 0, 0, 0)
	GATHER4(0, Y10, X10, X13)
	HALFLO(Y10, Y10, Y2, Y3)
	QSTEP(Y10, 0)
	ADDQ $34, AX
	ADDQ $32, BX
	ADDQ $4, CX
	ADDQ $4, DX
	DECQ R14
	JNZ q8_0loop
	QDONE

// ROW2Q8_0(R, DA, DB) is ROWQ8_0 for two vectors (Y0 and Y11) sharing the
// load of the row's block and its absolute values.
#define ROW2Q8_0(R, DA, DB) \
	VMOVDQU 2(R)(AX*1), Y8 \
	VPSIGNB Y8, Y0, Y9 \
	VPSIGNB Y8, Y11, Y12 \
	VPSIGNB Y8, Y8, Y8 \
	VPMADDUBSW Y9, Y8, Y9 \
	VPMADDUBSW Y12, Y8, Y12 \
	VPMADDWD Y1, Y9, DA \
	VPMADDWD Y1, Y12, DB

// TREE2 is TREED for ROW2Q8_0: the first vector's sums end in Y4 (through
// Y4..Y7), the second's in Y2 (through Y2, Y3, Y10, Y13).
#define TREE2 \
	ROW2Q8_0(SI, Y4, Y2) \
	ROW2Q8_0(DI, Y5, Y3) \
	VPHADDD Y5, Y4, Y4 \
	VPHADDD Y3, Y2, Y2 \
	ROW2Q8_0(R8, Y5, Y3) \
	ROW2Q8_0(R9, Y6, Y10) \
	VPHADDD Y6, Y5, Y5 \
	VPHADDD Y10, Y3, Y3 \
	VPHADDD Y5, Y4, Y4 \
	VPHADDD Y3, Y2, Y2 \
	ROW2Q8_0(R10, Y5, Y3) \
	ROW2Q8_0(R11, Y6, Y10) \
	VPHADDD Y6, Y5, Y5 \
	VPHADDD Y10, Y3, Y3 \
	ROW2Q8_0(R12, Y6, Y10) \
	ROW2Q8_0(R13, Y7, Y13) \
	VPHADDD Y7, Y6, Y6 \
	VPHADDD Y13, Y10, Y10 \
	VPHADDD Y6, Y5, Y5 \
	VPHADDD Y10, Y3, Y3 \
	VPERM2I128 $0x20, Y5, Y4, Y6 \
	VPERM2I128 $0x31, Y5, Y4, Y7 \
	VPADDD Y7, Y6, Y4 \
	VPERM2I128 $0x20, Y3, Y2, Y10 \
	VPERM2I128 $0x31, Y3, Y2, Y13 \
	VPADDD Y13, Y10, Y2

// func mm2Q8_0(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32, xs8 int, out1 *[8]float32)
// is mvQ8_0 for two vectors at once: the first's Q8 blocks at x and d, the
// second's at x+8·xs8 and d+xs8 (bytes), its results in out1. Each row's
// block is loaded once, its signs and absolute values computed once, and
// its scale gathered and widened once for both vectors; every lane keeps
// quant.go's float steps for each vector (Y15 the first's sums, Y14 the
// second's). BenchmarkPrefillQ (32 vectors, 576x576, 1536x576, 576x1536,
// 49152x576, cpu-GFLOP/s, two interleaved runs): one vector per pass
// 67-86 -> two 72-107. Two vectors take all sixteen YMM registers; the
// rest of the work (the products, the sums' tree, the float steps) is per
// row and vector whatever the tile, which is what keeps the quantized
// prefill at about half llama.cpp's: the canonical order needs each
// 32-weight block's whole integer sum (a horizontal reduction) before its
// float steps, where llama.cpp scales lanes of partial sums with FMA and
// reduces once per row (and scales K-quants once per super-block).
TEXT ·mm2Q8_0(SB), NOSPLIT, $0-72
	BCASTD(0x00010001, Y1)
	QARGS
	MOVQ xs8+56(FP), DX
	VXORPS Y14, Y14, Y14

q8_0m2loop:
	VMOVDQU (BX), Y0
	VMOVDQU (BX)(DX*8), Y11
	TREE2
	GATHER4(0, Y10, X10, X13)
	HALFLO(Y10, Y10, QC_F16MASK, QC_P112)
	VBROADCASTSS (CX), Y5
	VMULPS Y5, Y10, Y5
	VCVTDQ2PS Y4, Y4
	VMULPS Y4, Y5, Y5
	VADDPS Y5, Y15, Y15
	VBROADCASTSS (CX)(DX*1), Y6
	VMULPS Y6, Y10, Y6
	VCVTDQ2PS Y2, Y2
	VMULPS Y2, Y6, Y6
	VADDPS Y6, Y14, Y14
	ADDQ $34, AX
	ADDQ $32, BX
	ADDQ $4, CX
	DECQ R14
	JNZ q8_0m2loop
	MOVQ out1+64(FP), BX
	VMOVUPS Y14, (BX)
	QDONE

// func mvQ4_K(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)
TEXT ·mvQ4_K(SB), NOSPLIT, $0-56
	VMOVDQU QC_0F, Y1
	QARGS

q4_kloop:
	HEAD16(0)
	KSCALES
	SUBQ4K(0, ROWQ4KLO, 16, Y10, Y12, 0)
	SUBQ4K(1, ROWQ4KHI, 16, Y10, Y12, 8)
	SUBQ4K(2, ROWQ4KLO, 48, Y10, Y12, 16)
	SUBQ4K(3, ROWQ4KHI, 48, Y10, Y12, 24)
	SUBQ4K(4, ROWQ4KLO, 80, Y11, Y13, 0)
	SUBQ4K(5, ROWQ4KHI, 80, Y11, Y13, 8)
	SUBQ4K(6, ROWQ4KLO, 112, Y11, Y13, 16)
	SUBQ4K(7, ROWQ4KHI, 112, Y11, Y13, 24)
	ADDQ $144, AX
	ADDQ $256, BX
	ADDQ $32, CX
	ADDQ $32, DX
	DECQ R14
	JNZ q4_kloop
	QDONE

// func mvQ6_K(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)
TEXT ·mvQ6_K(SB), NOSPLIT, $0-56
	VMOVDQU QC_0F, Y1
	VMOVDQU QC_30, Y2
	VMOVDQU QC_32, Y14
	QARGS

q6_kloop:
	GATHER4(206, Y10, X10, X11)
	HALFHI(Y10, Y10, QC_F16MASK, QC_P112)
	SUBQ6K(0, ROWQ6K0, 0, 128)
	SUBQ6K(1, ROWQ6K1, 32, 128)
	SUBQ6K(2, ROWQ6K2, 0, 128)
	SUBQ6K(3, ROWQ6K3, 32, 128)
	SUBQ6K(4, ROWQ6K0, 64, 160)
	SUBQ6K(5, ROWQ6K1, 96, 160)
	SUBQ6K(6, ROWQ6K2, 64, 160)
	SUBQ6K(7, ROWQ6K3, 96, 160)
	ADDQ $210, AX
	ADDQ $256, BX
	ADDQ $32, CX
	ADDQ $32, DX
	DECQ R14
	JNZ q6_kloop
	QDONE

// MV32(name, label, bytes, TREE, ROW, PRE, STEP) is the loop of a kernel
// for blocks of 32 of the given size: PRE prepares the activation block in
// Y0 (and Y3), the lanes' first 32-bit words of the block are gathered
// into Y10 for STEP.
#define MV32(label, bytes, TREE, ROW, PRE, STEP) \
label: \
	VMOVDQU (BX), Y0 \
	PRE \
	TREE(ROW, 0, 0, 0) \
	GATHER4(0, Y10, X10, X11) \
	HALFLO(Y10, Y12, QC_F16MASK, QC_P112) \
	STEP \
	ADDQ $bytes, AX \
	ADDQ $32, BX \
	ADDQ $4, CX \
	ADDQ $4, DX \
	DECQ R14 \
	JNZ label

#define PRESUB VPMADDUBSW Y0, Y14, Y3
#define PRENONE
#define STEPA QSTEP(Y12, 0)
#define STEPAC HALFHI(Y10, Y13, QC_F16MASK, QC_P112) \
	QSTEPC(Y12, Y13, 0)

// func mvQ4_0(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)
TEXT ·mvQ4_0(SB), NOSPLIT, $0-56
	VMOVDQU QC_0F, Y1
	VMOVDQU QC_8, Y14
	QARGS
	MV32(q4_0loop, 18, TREEW, ROWQ4_0, PRESUB, STEPA)
	QDONE

// func mvQ4_1(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)
TEXT ·mvQ4_1(SB), NOSPLIT, $0-56
	VMOVDQU QC_0F, Y1
	QARGS
	MV32(q4_1loop, 20, TREEW, ROWQ4_1, PRENONE, STEPAC)
	QDONE

// func mvQ5_0(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)
TEXT ·mvQ5_0(SB), NOSPLIT, $0-56
	VMOVDQU QC_0F, Y1
	VMOVDQU QC_16, Y14
	QARGS
	MV32(q5_0loop, 22, TREEW, ROWQ5_0, PRESUB, STEPA)
	QDONE

// func mvQ5_1(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)
TEXT ·mvQ5_1(SB), NOSPLIT, $0-56
	VMOVDQU QC_0F, Y1
	BCASTD(0x00010001, Y14)
	QARGS
	MV32(q5_1loop, 24, TREED, ROWQ5_1, PRENONE, STEPAC)
	QDONE

// func mvQ5_K(w *byte, offs *[8]int, x *int8, d, s *float32, nb int, out *[8]float32)
TEXT ·mvQ5_K(SB), NOSPLIT, $0-56
	VMOVDQU QC_0F, Y1
	BCASTD(0x00010001, Y14)
	QARGS

q5_kloop:
	HEAD16(0)
	KSCALES
	SUBQ5K(0, ROWQ5KLO, 48, VPSLLW, 4, Y10, Y12, 0)
	SUBQ5K(1, ROWQ5KHI, 48, VPSLLW, 3, Y10, Y12, 8)
	SUBQ5K(2, ROWQ5KLO, 80, VPSLLW, 2, Y10, Y12, 16)
	SUBQ5K(3, ROWQ5KHI, 80, VPSLLW, 1, Y10, Y12, 24)
	SUBQ5K(4, ROWQ5KLO, 112, VPSRLW, 0, Y11, Y13, 0)
	SUBQ5K(5, ROWQ5KHI, 112, VPSRLW, 1, Y11, Y13, 8)
	SUBQ5K(6, ROWQ5KLO, 144, VPSRLW, 2, Y11, Y13, 16)
	SUBQ5K(7, ROWQ5KHI, 144, VPSRLW, 3, Y11, Y13, 24)
	ADDQ $176, AX
	ADDQ $256, BX
	ADDQ $32, CX
	ADDQ $32, DX
	DECQ R14
	JNZ q5_kloop
	QDONE

// func widenF16C(dst *[8]float32, src *[8]uint16)
// dst = VCVTPH2PS(src), for the tests that compare F16C's widening with
// F16's.
TEXT ·widenF16C(SB), NOSPLIT, $0-16
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	VCVTPH2PS (SI), Y0
	VMOVUPS Y0, (DI)
	VZEROUPPER
	RET

// func quantQ8(x *float32, q *int8, d, s *float32, sum *int32, nb int) int
// quantizes blocks of 32 floats as goQuantizeQ8 does while they are finite
// and returns how many it did: it stops before the first block holding an
// infinity or a NaN, which the caller quantizes in Go. On finite blocks
// each step is goQuantizeQ8's: amax (an integer max of the |x| bit
// patterns, which orders finite non-negative floats as floats), d =
// amax/127, id = 1/d if d >= 2^-126 and 0 otherwise, q = the saturating
// narrowing of roundTiesToEven(x·id) (VROUNDPS, then VCVTPS2DQ, exact on
// integers of at most 128 in magnitude), sum = Σq, s = d·float32(sum).
TEXT ·quantQ8(SB), NOSPLIT, $0-56
	MOVQ x+0(FP), SI
	MOVQ q+8(FP), DI
	MOVQ d+16(FP), R8
	MOVQ s+24(FP), R9
	MOVQ sum+32(FP), R10
	MOVQ nb+40(FP), CX
	XORQ AX, AX
	MOVL $0x7fffffff, R11
	MOVQ R11, X15
	VPBROADCASTD X15, Y15
	MOVL $0x42fe0000, R11 // 127
	MOVQ R11, X14
	MOVL $0x3f800000, R11 // 1
	MOVQ R11, X13
	VMOVDQU q8perm<>(SB), Y12

qloop:
	CMPQ AX, CX
	JGE qdone
	VPAND (SI), Y15, Y4
	VPAND 32(SI), Y15, Y5
	VPAND 64(SI), Y15, Y6
	VPAND 96(SI), Y15, Y7
	VPMAXUD Y5, Y4, Y4
	VPMAXUD Y7, Y6, Y6
	VPMAXUD Y6, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPMAXUD X5, X4, X4
	VPSHUFD $0x4e, X4, X5
	VPMAXUD X5, X4, X4
	VPSHUFD $0xb1, X4, X5
	VPMAXUD X5, X4, X4
	VMOVD X4, R11
	CMPL R11, $0x7f800000
	JAE qdone
	VDIVSS X14, X4, X4 // d = amax/127
	VMOVD X4, R11
	VXORPS X5, X5, X5
	CMPL R11, $0x00800000
	JB qzero
	VDIVSS X4, X13, X5 // id = 1/d
qzero:
	VBROADCASTSS X5, Y5
	VMULPS (SI), Y5, Y0
	VMULPS 32(SI), Y5, Y1
	VMULPS 64(SI), Y5, Y2
	VMULPS 96(SI), Y5, Y3
	VROUNDPS $0, Y0, Y0
	VROUNDPS $0, Y1, Y1
	VROUNDPS $0, Y2, Y2
	VROUNDPS $0, Y3, Y3
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPADDD Y1, Y0, Y6
	VPADDD Y3, Y2, Y7
	VPADDD Y7, Y6, Y6
	VEXTRACTI128 $1, Y6, X7
	VPADDD X7, X6, X6
	VPSHUFD $0x4e, X6, X7
	VPADDD X7, X6, X6
	VPSHUFD $0xb1, X6, X7
	VPADDD X7, X6, X6
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD Y0, Y12, Y0
	VMOVDQU Y0, (DI)
	VMOVSS X4, (R8)(AX*4)
	VMOVD X6, (R10)(AX*4)
	VCVTDQ2PS X6, X6
	VMULSS X6, X4, X4 // s = d·float32(sum)
	VMOVSS X4, (R9)(AX*4)
	ADDQ $128, SI
	ADDQ $32, DI
	INCQ AX
	JMP qloop

qdone:
	MOVQ AX, ret+48(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------
// SiLUMul with Exp's polynomial (simd.go), eight values per step, every
// operation of Exp a separate instruction in Exp's order: the clamp by
// VMAXPS and VMINPS with x as the operand returned for NaN, k by
// VROUNDPS to nearest even, 2^k built from its bits. SiLU's division is
// VDIVPS (IEEE, as Go's float32 division).

DATA expc<>+0(SB)/8, $0xc2ae0000c2ae0000 // +0: M87
DATA expc<>+8(SB)/8, $0xc2ae0000c2ae0000
DATA expc<>+16(SB)/8, $0xc2ae0000c2ae0000
DATA expc<>+24(SB)/8, $0xc2ae0000c2ae0000
DATA expc<>+32(SB)/8, $0x42b0000042b00000 // +32: P88
DATA expc<>+40(SB)/8, $0x42b0000042b00000
DATA expc<>+48(SB)/8, $0x42b0000042b00000
DATA expc<>+56(SB)/8, $0x42b0000042b00000
DATA expc<>+64(SB)/8, $0x3fb8aa3b3fb8aa3b // +64: LOG2E
DATA expc<>+72(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expc<>+80(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expc<>+88(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expc<>+96(SB)/8, $0x3f3172003f317200 // +96: LN2HI
DATA expc<>+104(SB)/8, $0x3f3172003f317200
DATA expc<>+112(SB)/8, $0x3f3172003f317200
DATA expc<>+120(SB)/8, $0x3f3172003f317200
DATA expc<>+128(SB)/8, $0x35bfbe8e35bfbe8e // +128: LN2LO
DATA expc<>+136(SB)/8, $0x35bfbe8e35bfbe8e
DATA expc<>+144(SB)/8, $0x35bfbe8e35bfbe8e
DATA expc<>+152(SB)/8, $0x35bfbe8e35bfbe8e
DATA expc<>+160(SB)/8, $0x3ab60b613ab60b61 // +160: C6
DATA expc<>+168(SB)/8, $0x3ab60b613ab60b61
DATA expc<>+176(SB)/8, $0x3ab60b613ab60b61
DATA expc<>+184(SB)/8, $0x3ab60b613ab60b61
DATA expc<>+192(SB)/8, $0x3c0888893c088889 // +192: C5
DATA expc<>+200(SB)/8, $0x3c0888893c088889
DATA expc<>+208(SB)/8, $0x3c0888893c088889
DATA expc<>+216(SB)/8, $0x3c0888893c088889
DATA expc<>+224(SB)/8, $0x3d2aaaab3d2aaaab // +224: C4
DATA expc<>+232(SB)/8, $0x3d2aaaab3d2aaaab
DATA expc<>+240(SB)/8, $0x3d2aaaab3d2aaaab
DATA expc<>+248(SB)/8, $0x3d2aaaab3d2aaaab
DATA expc<>+256(SB)/8, $0x3e2aaaab3e2aaaab // +256: C3
DATA expc<>+264(SB)/8, $0x3e2aaaab3e2aaaab
DATA expc<>+272(SB)/8, $0x3e2aaaab3e2aaaab
DATA expc<>+280(SB)/8, $0x3e2aaaab3e2aaaab
DATA expc<>+288(SB)/8, $0x3f0000003f000000 // +288: C2
DATA expc<>+296(SB)/8, $0x3f0000003f000000
DATA expc<>+304(SB)/8, $0x3f0000003f000000
DATA expc<>+312(SB)/8, $0x3f0000003f000000
DATA expc<>+320(SB)/8, $0x3f8000003f800000 // +320: ONE
DATA expc<>+328(SB)/8, $0x3f8000003f800000
DATA expc<>+336(SB)/8, $0x3f8000003f800000
DATA expc<>+344(SB)/8, $0x3f8000003f800000
DATA expc<>+352(SB)/8, $0x0000007f0000007f // +352: I127
DATA expc<>+360(SB)/8, $0x0000007f0000007f
DATA expc<>+368(SB)/8, $0x0000007f0000007f
DATA expc<>+376(SB)/8, $0x0000007f0000007f
DATA expc<>+384(SB)/8, $0x8000000080000000 // +384: SIGN
DATA expc<>+392(SB)/8, $0x8000000080000000
DATA expc<>+400(SB)/8, $0x8000000080000000
DATA expc<>+408(SB)/8, $0x8000000080000000
GLOBL expc<>(SB), RODATA|NOPTR, $416

#define EC_M87 expc<>+0(SB)
#define EC_P88 expc<>+32(SB)
#define EC_LOG2E expc<>+64(SB)
#define EC_LN2HI expc<>+96(SB)
#define EC_LN2LO expc<>+128(SB)
#define EC_C6 expc<>+160(SB)
#define EC_C5 expc<>+192(SB)
#define EC_C4 expc<>+224(SB)
#define EC_C3 expc<>+256(SB)
#define EC_C2 expc<>+288(SB)
#define EC_ONE expc<>+320(SB)
#define EC_I127 expc<>+352(SB)
#define EC_SIGN expc<>+384(SB)

// EXP8(X, K, P) replaces the eight values of X by Exp of them; K and P are
// scratch, Y14 and Y13 hold -87 and 88.
#define EXP8(X, K, P) \
	VMAXPS X, Y14, X \
	VMINPS X, Y13, X \
	VMULPS EC_LOG2E, X, K \
	VROUNDPS $0, K, K \
	VMULPS EC_LN2HI, K, P \
	VSUBPS P, X, X \
	VMULPS EC_LN2LO, K, P \
	VSUBPS P, X, X \
	VMOVUPS EC_C6, P \
	VMULPS X, P, P \
	VADDPS EC_C5, P, P \
	VMULPS X, P, P \
	VADDPS EC_C4, P, P \
	VMULPS X, P, P \
	VADDPS EC_C3, P, P \
	VMULPS X, P, P \
	VADDPS EC_C2, P, P \
	VMULPS X, P, P \
	VADDPS EC_ONE, P, P \
	VMULPS X, P, P \
	VADDPS EC_ONE, P, P \
	VCVTTPS2DQ K, K \
	VPADDD EC_I127, K, K \
	VPSLLD $23, K, K \
	VMULPS K, P, X

// func silu8(a, b *float32, n int)
// a[i] = (a[i] / (1 + Exp(-a[i]))) · b[i] for i < n (a multiple of 8).
TEXT ·silu8(SB), NOSPLIT, $0-24
	MOVQ a+0(FP), DI
	MOVQ b+8(FP), SI
	MOVQ n+16(FP), CX
	VMOVUPS EC_M87, Y14
	VMOVUPS EC_P88, Y13
	XORQ AX, AX

siluloop:
	CMPQ AX, CX
	JGE siludone
	VMOVUPS (DI)(AX*4), Y0
	VXORPS EC_SIGN, Y0, Y1
	EXP8(Y1, Y2, Y3)
	VADDPS EC_ONE, Y1, Y1
	VDIVPS Y1, Y0, Y1
	VMULPS (SI)(AX*4), Y1, Y1
	VMOVUPS Y1, (DI)(AX*4)
	ADDQ $8, AX
	JMP siluloop

siludone:
	VZEROUPPER
	RET

// func expShift8(x *float32, m float32, n int)
// x[i] = Exp(x[i] - m) for i < n (a multiple of 8): softmax's
// exponentials, the subtraction rounded to float32 first as Go rounds it.
TEXT ·expShift8(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), DI
	VBROADCASTSS m+8(FP), Y15
	MOVQ n+16(FP), CX
	VMOVUPS EC_M87, Y14
	VMOVUPS EC_P88, Y13
	XORQ AX, AX

exploop:
	CMPQ AX, CX
	JGE expdone
	VMOVUPS (DI)(AX*4), Y0
	VSUBPS Y15, Y0, Y0
	EXP8(Y0, Y1, Y2)
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ $8, AX
	JMP exploop

expdone:
	VZEROUPPER
	RET
