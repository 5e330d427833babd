;; kernels.wat: the SIMD128 kernels of package simd.
;;
;; Every export computes exactly what the Go kernel of the same name in
;; gokernels.go computes, to the bit: the package comment of simd.go fixes the
;; order of operations (eight-lane canonical sums held in two f32x4
;; accumulators, no fused multiply-add, Exp's polynomial, the f16 widening by
;; integer ops and a multiply by 2^112). Pointers are byte addresses in the
;; engine's memory, counts are element counts, and no kernel is called with a
;; count of zero. Loads need no alignment beyond the element's.
;;
;; The module imports the engine's memory and the forwarding module's table
;; (forward.wat) and fills that table, so the engine's simd imports reach
;; these functions; it also exports each kernel under its own name.
;;
;; The matrix products hold nearly all the time, and their loops are shaped
;; for the two compilers they meet, wazero's and V8's:
;;
;;  - A matrix-vector product computes four rows per pass, sharing each
;;    load of x; a product with several vectors computes one row and four
;;    vectors per pass, sharing each widened weight. Either way a pass keeps
;;    eight accumulators, two (the canonical lanes 0-3 and 4-7) per sum.
;;  - A half is widened by v128.load16x4_s (one instruction with its load),
;;    i32x4.dot_i16x8_s with 8192 (the shift by 13, as one multiply: an
;;    i32x4.shl costs wazero four instructions), the mask, and for one vector
;;    no multiply by 2^112 at all when |x| < 2^16 (see $mv_f16_scaled).
;;  - Loops take sixteen columns per step and start each step with dropped
;;    one-byte loads at each pointer's last byte: wazero checks the bounds of
;;    every load, except one from the same address below an offset already
;;    checked. Longer steps help wazero more (64 columns: +10 %) but make V8
;;    hoist all their loads to the top of the step and spill (-30 %).
;;  - The four rows of a pass are a quarter of the matrix apart, so that each
;;    row pointer streams through memory: with adjacent rows the hardware
;;    prefetcher lost track and large matrices ran at a third of the speed.
;;
;; The unrolled steps are written out in full; keep their eight-column
;; blocks identical but for the offsets.
(module
  (import "engine" "memory" (memory 0))
  (import "simd" "table" (table 11 funcref))

  ;; The table order is the ABI shared with forward.wat.
  (elem (i32.const 0) func
    $matmul_f16 $matmul_f32 $dot $axpy $add $rmsnorm
    $softmax $silu_mul $rope $widen_f16 $flush_f16)

  (export "matmul_f16" (func $matmul_f16))
  (export "matmul_f32" (func $matmul_f32))
  (export "dot" (func $dot))
  (export "axpy" (func $axpy))
  (export "add" (func $add))
  (export "rmsnorm" (func $rmsnorm))
  (export "softmax" (func $softmax))
  (export "silu_mul" (func $silu_mul))
  (export "rope" (func $rope))
  (export "widen_f16" (func $widen_f16))
  (export "flush_f16" (func $flush_f16))

  ;; ------------------------------------------------------------------
  ;; Reductions.

  ;; $hsum8 reduces one canonical sum held as lanes 0-3 in $lo and lanes
  ;; 4-7 in $hi: (s0+s4 + s2+s6) + (s1+s5 + s3+s7).
  (func $hsum8 (param $lo v128) (param $hi v128) (result f32)
    (local $a v128)
    (local.set $a (f32x4.add (local.get $lo) (local.get $hi)))
    (local.set $a (f32x4.add (local.get $a)
      (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7
        (local.get $a) (local.get $a))))
    (f32.add (f32x4.extract_lane 0 (local.get $a))
             (f32x4.extract_lane 1 (local.get $a))))

  ;; $hsum8x4 reduces four canonical sums at once: lane i of the result is
  ;; $hsum8 of ($li, $hi), computed with the same additions.
  (func $hsum8x4
    (param $l0 v128) (param $h0 v128) (param $l1 v128) (param $h1 v128)
    (param $l2 v128) (param $h2 v128) (param $l3 v128) (param $h3 v128)
    (result v128)
    (local $u v128) (local $v v128)
    ;; a_i = l_i + h_i = [a0 a1 a2 a3] of sum i.
    (local.set $l0 (f32x4.add (local.get $l0) (local.get $h0)))
    (local.set $l1 (f32x4.add (local.get $l1) (local.get $h1)))
    (local.set $l2 (f32x4.add (local.get $l2) (local.get $h2)))
    (local.set $l3 (f32x4.add (local.get $l3) (local.get $h3)))
    ;; u = [a0+a2, a1+a3] of sums 0 and 1; v the same of sums 2 and 3.
    (local.set $u (f32x4.add
      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $l0) (local.get $l1))
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $l0) (local.get $l1))))
    (local.set $v (f32x4.add
      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $l2) (local.get $l3))
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $l2) (local.get $l3))))
    (f32x4.add
      (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $u) (local.get $v))
      (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $u) (local.get $v))))

  ;; $f16 widens the half at address $p to float32.
  (func $f16 (param $p i32) (result f32)
    (f32.mul
      (f32.reinterpret_i32
        (i32.and (i32.shl (i32.load16_s (local.get $p)) (i32.const 13))
                 (i32.const 0x8fffffff)))
      (f32.const 0x1p112)))

  ;; ------------------------------------------------------------------
  ;; Matrix products. out[t*rows+r] = Σ_c w[r*cols+c]·x[t*cols+c].

  ;; $matmul_f16: one vector goes through $mv_f16 (four rows per pass);
  ;; several go four at a time through $mm_f16_t4, which widens each weight
  ;; once for four vectors, and the last n%4 through $mv_f16.
  (func $matmul_f16 (param $out i32) (param $w i32) (param $x i32)
                    (param $rows i32) (param $cols i32) (param $n i32)
    (local $g i32) (local $t i32)
    (local.set $g (i32.shr_u (local.get $n) (i32.const 2)))
    (if (local.get $g)
      (then (call $mm_f16_t4 (local.get $out) (local.get $w) (local.get $x)
                             (local.get $rows) (local.get $cols) (local.get $g))))
    (local.set $t (i32.shl (local.get $g) (i32.const 2)))
    (block $done
      (loop $tok
        (br_if $done (i32.ge_u (local.get $t) (local.get $n)))
        (call $mv_f16
          (i32.add (local.get $out) (i32.shl (i32.mul (local.get $t) (local.get $rows)) (i32.const 2)))
          (local.get $w)
          (i32.add (local.get $x) (i32.shl (i32.mul (local.get $t) (local.get $cols)) (i32.const 2)))
          (local.get $rows) (local.get $cols))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $tok))))

  ;; $mv_f16 multiplies one vector. If every |x[c]| < 2^16, it runs
  ;; $mv_f16_scaled, else $mv_f16_plain.
  (func $mv_f16 (param $out i32) (param $w i32) (param $x i32)
                (param $rows i32) (param $cols i32)
    (local $p i32) (local $e4 i32) (local $e i32) (local $big v128)
    (local.set $p (local.get $x))
    (local.set $e4 (i32.add (local.get $x) (i32.shl (i32.and (local.get $cols) (i32.const -4)) (i32.const 2))))
    (local.set $e (i32.add (local.get $x) (i32.shl (local.get $cols) (i32.const 2))))
    (if (i32.lt_u (local.get $p) (local.get $e4))
      (then
        (loop $l
          (local.set $big (v128.or (local.get $big)
            (f32x4.ge (f32x4.abs (v128.load (local.get $p))) (v128.const f32x4 0x1p16 0x1p16 0x1p16 0x1p16))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br_if $l (i32.lt_u (local.get $p) (local.get $e4))))))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $p) (local.get $e)))
        (local.set $big (v128.or (local.get $big)
          (f32x4.ge (f32x4.abs (v128.load32_zero (local.get $p))) (v128.const f32x4 0x1p16 0x1p16 0x1p16 0x1p16))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $tail)))
    (if (v128.any_true (local.get $big))
      (then (call $mv_f16_plain (local.get $out) (local.get $w) (local.get $x) (local.get $rows) (local.get $cols)))
      (else (call $mv_f16_scaled (local.get $out) (local.get $w) (local.get $x) (local.get $rows) (local.get $cols)))))

  ;; $mv_f16_scaled is $mv_f16_plain for |x| < 2^16: it multiplies x by 2^112
  ;; instead of each widened weight. (w·2^-112)·(x·2^112) is the same real
  ;; number as w·x, so it rounds to the same float32, and x·2^112 is exact.
  (func $mv_f16_scaled (param $out i32) (param $w i32) (param $x i32)
                (param $rows i32) (param $cols i32)
    (local $rb i32) (local $q i32) (local $qb i32) (local $ob i32) (local $o i32) (local $end i32)
    (local $p i32) (local $s v128)
    (local.set $rb (i32.shl (local.get $cols) (i32.const 1)))
    (local.set $q (i32.shr_u (local.get $rows) (i32.const 2)))
    (local.set $qb (i32.mul (local.get $q) (local.get $rb)))
    (local.set $ob (i32.shl (local.get $q) (i32.const 2)))
    (local.set $p (local.get $w))
    (local.set $o (local.get $out))
    (local.set $end (i32.add (local.get $out) (local.get $ob)))
    (if (local.get $q)
      (then
        (loop $passes
          (local.set $s (call $mv_f16_scaled_pass (local.get $p) (local.get $qb) (local.get $x) (local.get $cols)))
          ;; out[k], out[q+k], out[2q+k], out[3q+k].
          (f32.store (local.get $o) (f32x4.extract_lane 0 (local.get $s)))
          (f32.store (i32.add (local.get $o) (local.get $ob)) (f32x4.extract_lane 1 (local.get $s)))
          (f32.store (i32.add (local.get $o) (i32.shl (local.get $ob) (i32.const 1)))
            (f32x4.extract_lane 2 (local.get $s)))
          (f32.store (i32.add (i32.add (local.get $o) (local.get $ob)) (i32.shl (local.get $ob) (i32.const 1)))
            (f32x4.extract_lane 3 (local.get $s)))
          (local.set $p (i32.add (local.get $p) (local.get $rb)))
          (local.set $o (i32.add (local.get $o) (i32.const 4)))
          (br_if $passes (i32.lt_u (local.get $o) (local.get $end))))))
    ;; The rows%4 last rows, one per pass.
    (local.set $p (i32.add (local.get $w) (i32.shl (local.get $qb) (i32.const 2))))
    (local.set $o (i32.add (local.get $out) (i32.shl (local.get $ob) (i32.const 2))))
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done
      (loop $rows1
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (f32.store (local.get $o) (call $dot_f16 (local.get $p) (local.get $x) (local.get $cols)))
        (local.set $p (i32.add (local.get $p) (local.get $rb)))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $rows1))))

  ;; $mv_f16_scaled_pass returns the products of x with the four rows at p0,
  ;; p0+qb, p0+2qb and p0+3qb. Every load of x serves the four rows, each row
  ;; keeping its two canonical accumulators.
  (func $mv_f16_scaled_pass (param $p0 i32) (param $qb i32) (param $x i32) (param $cols i32) (result v128)
    (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $px i32)
    (local $xew i32) (local $xe8 i32) (local $xe i32)
    (local $mask v128) (local $scale v128) (local $k13 v128) (local $h v128)
    (local $x0 v128) (local $x1 v128) (local $s v128)
    (local $a0 v128) (local $b0 v128) (local $a1 v128) (local $b1 v128)
    (local $a2 v128) (local $b2 v128) (local $a3 v128) (local $b3 v128)
    (local.set $mask (v128.const i32x4 0x8fffffff 0x8fffffff 0x8fffffff 0x8fffffff))
    (local.set $scale (v128.const f32x4 0x1p112 0x1p112 0x1p112 0x1p112))
    ;; As i32x4, k13 is 8192 in each lane; i32x4.dot_i16x8_s of a
    ;; sign-extended half with it is the half shifted left by 13.
    (local.set $k13 (v128.const i16x8 8192 0 8192 0 8192 0 8192 0))
    (local.set $p1 (i32.add (local.get $p0) (local.get $qb)))
    (local.set $p2 (i32.add (local.get $p1) (local.get $qb)))
    (local.set $p3 (i32.add (local.get $p2) (local.get $qb)))
    (local.set $px (local.get $x))
    (local.set $xew (i32.add (local.get $x)
      (i32.shl (i32.and (local.get $cols) (i32.const -16)) (i32.const 2))))
    (local.set $xe8 (i32.add (local.get $x)
      (i32.shl (i32.and (local.get $cols) (i32.const -8)) (i32.const 2))))
    (local.set $xe (i32.add (local.get $x) (i32.shl (local.get $cols) (i32.const 2))))
    ;; Sixteen columns per step. The dropped one-byte loads make wazero
    ;; check each pointer's bounds once per step: it skips the check of a
    ;; load that an earlier one from the same address, at a higher offset,
    ;; has covered.
    (if (i32.lt_u (local.get $px) (local.get $xew))
      (then
        (loop $wide
          (drop (i32.load8_u offset=63 (local.get $px)))
          (drop (i32.load8_u offset=31 (local.get $p0)))
          (drop (i32.load8_u offset=31 (local.get $p1)))
          (drop (i32.load8_u offset=31 (local.get $p2)))
          (drop (i32.load8_u offset=31 (local.get $p3)))
          (local.set $x1 (f32x4.mul (v128.load offset=16 (local.get $px)) (local.get $scale)))
          (local.set $x0 (f32x4.mul (v128.load offset=0 (local.get $px)) (local.get $scale)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p0)) (local.get $k13)) (local.get $mask))
            (local.get $x0))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p0)) (local.get $k13)) (local.get $mask))
            (local.get $x1))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p1)) (local.get $k13)) (local.get $mask))
            (local.get $x0))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p1)) (local.get $k13)) (local.get $mask))
            (local.get $x1))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p2)) (local.get $k13)) (local.get $mask))
            (local.get $x0))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p2)) (local.get $k13)) (local.get $mask))
            (local.get $x1))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p3)) (local.get $k13)) (local.get $mask))
            (local.get $x0))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p3)) (local.get $k13)) (local.get $mask))
            (local.get $x1))))
          (local.set $x1 (f32x4.mul (v128.load offset=48 (local.get $px)) (local.get $scale)))
          (local.set $x0 (f32x4.mul (v128.load offset=32 (local.get $px)) (local.get $scale)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=16 (local.get $p0)) (local.get $k13)) (local.get $mask))
            (local.get $x0))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=24 (local.get $p0)) (local.get $k13)) (local.get $mask))
            (local.get $x1))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=16 (local.get $p1)) (local.get $k13)) (local.get $mask))
            (local.get $x0))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=24 (local.get $p1)) (local.get $k13)) (local.get $mask))
            (local.get $x1))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=16 (local.get $p2)) (local.get $k13)) (local.get $mask))
            (local.get $x0))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=24 (local.get $p2)) (local.get $k13)) (local.get $mask))
            (local.get $x1))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=16 (local.get $p3)) (local.get $k13)) (local.get $mask))
            (local.get $x0))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=24 (local.get $p3)) (local.get $k13)) (local.get $mask))
            (local.get $x1))))
          (local.set $px (i32.add (local.get $px) (i32.const 64)))
          (local.set $p0 (i32.add (local.get $p0) (i32.const 32)))
          (local.set $p1 (i32.add (local.get $p1) (i32.const 32)))
          (local.set $p2 (i32.add (local.get $p2) (i32.const 32)))
          (local.set $p3 (i32.add (local.get $p3) (i32.const 32)))
          (br_if $wide (i32.lt_u (local.get $px) (local.get $xew))))))
    ;; Eight columns per step.
    (if (i32.lt_u (local.get $px) (local.get $xe8))
      (then
        (loop $cols8
          (local.set $x1 (f32x4.mul (v128.load offset=16 (local.get $px)) (local.get $scale)))
          (local.set $x0 (f32x4.mul (v128.load offset=0 (local.get $px)) (local.get $scale)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p0)) (local.get $k13)) (local.get $mask))
            (local.get $x0))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p0)) (local.get $k13)) (local.get $mask))
            (local.get $x1))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p1)) (local.get $k13)) (local.get $mask))
            (local.get $x0))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p1)) (local.get $k13)) (local.get $mask))
            (local.get $x1))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p2)) (local.get $k13)) (local.get $mask))
            (local.get $x0))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p2)) (local.get $k13)) (local.get $mask))
            (local.get $x1))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p3)) (local.get $k13)) (local.get $mask))
            (local.get $x0))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul
            (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p3)) (local.get $k13)) (local.get $mask))
            (local.get $x1))))
          (local.set $px (i32.add (local.get $px) (i32.const 32)))
          (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))
          (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
          (local.set $p2 (i32.add (local.get $p2) (i32.const 16)))
          (local.set $p3 (i32.add (local.get $p3) (i32.const 16)))
          (br_if $cols8 (i32.lt_u (local.get $px) (local.get $xe8))))))
    (local.set $s (call $hsum8x4 (local.get $a0) (local.get $b0) (local.get $a1) (local.get $b1)
                                 (local.get $a2) (local.get $b2) (local.get $a3) (local.get $b3)))
    ;; The last cols%8 columns, one at a time, the four rows side by side.
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $px) (local.get $xe)))
        (local.set $h (i32x4.replace_lane 3 (i32x4.replace_lane 2 (i32x4.replace_lane 1
          (i32x4.splat (i32.load16_s (local.get $p0)))
          (i32.load16_s (local.get $p1)))
          (i32.load16_s (local.get $p2)))
          (i32.load16_s (local.get $p3))))
        (local.set $s (f32x4.add (local.get $s) (f32x4.mul
          (v128.and (i32x4.dot_i16x8_s (local.get $h) (local.get $k13)) (local.get $mask))
          (f32x4.mul (v128.load32_splat (local.get $px)) (local.get $scale)))))
        (local.set $px (i32.add (local.get $px) (i32.const 4)))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 2)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 2)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 2)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 2)))
        (br $tail)))
    (local.get $s))


  ;; $mv_f16_plain multiplies one vector by a matrix of halves. A pass
  ;; computes rows k, q+k, 2q+k and 3q+k (q = rows/4), so that each of the
  ;; four row pointers reads one quarter of the matrix from start to end, a
  ;; stream the hardware prefetcher follows; the rows%4 last rows go one per
  ;; pass.
  (func $mv_f16_plain (param $out i32) (param $w i32) (param $x i32)
                (param $rows i32) (param $cols i32)
    (local $rb i32) (local $q i32) (local $qb i32) (local $ob i32) (local $o i32) (local $end i32)
    (local $p i32) (local $s v128)
    (local.set $rb (i32.shl (local.get $cols) (i32.const 1)))
    (local.set $q (i32.shr_u (local.get $rows) (i32.const 2)))
    (local.set $qb (i32.mul (local.get $q) (local.get $rb)))
    (local.set $ob (i32.shl (local.get $q) (i32.const 2)))
    (local.set $p (local.get $w))
    (local.set $o (local.get $out))
    (local.set $end (i32.add (local.get $out) (local.get $ob)))
    (if (local.get $q)
      (then
        (loop $passes
          (local.set $s (call $mv_f16_plain_pass (local.get $p) (local.get $qb) (local.get $x) (local.get $cols)))
          ;; out[k], out[q+k], out[2q+k], out[3q+k].
          (f32.store (local.get $o) (f32x4.extract_lane 0 (local.get $s)))
          (f32.store (i32.add (local.get $o) (local.get $ob)) (f32x4.extract_lane 1 (local.get $s)))
          (f32.store (i32.add (local.get $o) (i32.shl (local.get $ob) (i32.const 1)))
            (f32x4.extract_lane 2 (local.get $s)))
          (f32.store (i32.add (i32.add (local.get $o) (local.get $ob)) (i32.shl (local.get $ob) (i32.const 1)))
            (f32x4.extract_lane 3 (local.get $s)))
          (local.set $p (i32.add (local.get $p) (local.get $rb)))
          (local.set $o (i32.add (local.get $o) (i32.const 4)))
          (br_if $passes (i32.lt_u (local.get $o) (local.get $end))))))
    ;; The rows%4 last rows, one per pass.
    (local.set $p (i32.add (local.get $w) (i32.shl (local.get $qb) (i32.const 2))))
    (local.set $o (i32.add (local.get $out) (i32.shl (local.get $ob) (i32.const 2))))
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done
      (loop $rows1
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (f32.store (local.get $o) (call $dot_f16 (local.get $p) (local.get $x) (local.get $cols)))
        (local.set $p (i32.add (local.get $p) (local.get $rb)))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $rows1))))

  ;; $mv_f16_plain_pass returns the products of x with the four rows at p0,
  ;; p0+qb, p0+2qb and p0+3qb. Every load of x serves the four rows, each row
  ;; keeping its two canonical accumulators.
  (func $mv_f16_plain_pass (param $p0 i32) (param $qb i32) (param $x i32) (param $cols i32) (result v128)
    (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $px i32)
    (local $xew i32) (local $xe8 i32) (local $xe i32)
    (local $mask v128) (local $scale v128) (local $k13 v128) (local $h v128)
    (local $x0 v128) (local $x1 v128) (local $s v128)
    (local $a0 v128) (local $b0 v128) (local $a1 v128) (local $b1 v128)
    (local $a2 v128) (local $b2 v128) (local $a3 v128) (local $b3 v128)
    (local.set $mask (v128.const i32x4 0x8fffffff 0x8fffffff 0x8fffffff 0x8fffffff))
    (local.set $scale (v128.const f32x4 0x1p112 0x1p112 0x1p112 0x1p112))
    ;; As i32x4, k13 is 8192 in each lane; i32x4.dot_i16x8_s of a
    ;; sign-extended half with it is the half shifted left by 13.
    (local.set $k13 (v128.const i16x8 8192 0 8192 0 8192 0 8192 0))
    (local.set $p1 (i32.add (local.get $p0) (local.get $qb)))
    (local.set $p2 (i32.add (local.get $p1) (local.get $qb)))
    (local.set $p3 (i32.add (local.get $p2) (local.get $qb)))
    (local.set $px (local.get $x))
    (local.set $xew (i32.add (local.get $x)
      (i32.shl (i32.and (local.get $cols) (i32.const -16)) (i32.const 2))))
    (local.set $xe8 (i32.add (local.get $x)
      (i32.shl (i32.and (local.get $cols) (i32.const -8)) (i32.const 2))))
    (local.set $xe (i32.add (local.get $x) (i32.shl (local.get $cols) (i32.const 2))))
    ;; Sixteen columns per step. The dropped one-byte loads make wazero
    ;; check each pointer's bounds once per step: it skips the check of a
    ;; load that an earlier one from the same address, at a higher offset,
    ;; has covered.
    (if (i32.lt_u (local.get $px) (local.get $xew))
      (then
        (loop $wide
          (drop (i32.load8_u offset=63 (local.get $px)))
          (drop (i32.load8_u offset=31 (local.get $p0)))
          (drop (i32.load8_u offset=31 (local.get $p1)))
          (drop (i32.load8_u offset=31 (local.get $p2)))
          (drop (i32.load8_u offset=31 (local.get $p3)))
          (local.set $x1 (v128.load offset=16 (local.get $px)))
          (local.set $x0 (v128.load offset=0 (local.get $px)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p0)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x0))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p0)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x1))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p1)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x0))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p1)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x1))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p2)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x0))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p2)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x1))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p3)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x0))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p3)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x1))))
          (local.set $x1 (v128.load offset=48 (local.get $px)))
          (local.set $x0 (v128.load offset=32 (local.get $px)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=16 (local.get $p0)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x0))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=24 (local.get $p0)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x1))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=16 (local.get $p1)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x0))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=24 (local.get $p1)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x1))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=16 (local.get $p2)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x0))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=24 (local.get $p2)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x1))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=16 (local.get $p3)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x0))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=24 (local.get $p3)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x1))))
          (local.set $px (i32.add (local.get $px) (i32.const 64)))
          (local.set $p0 (i32.add (local.get $p0) (i32.const 32)))
          (local.set $p1 (i32.add (local.get $p1) (i32.const 32)))
          (local.set $p2 (i32.add (local.get $p2) (i32.const 32)))
          (local.set $p3 (i32.add (local.get $p3) (i32.const 32)))
          (br_if $wide (i32.lt_u (local.get $px) (local.get $xew))))))
    ;; Eight columns per step.
    (if (i32.lt_u (local.get $px) (local.get $xe8))
      (then
        (loop $cols8
          (local.set $x1 (v128.load offset=16 (local.get $px)))
          (local.set $x0 (v128.load offset=0 (local.get $px)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p0)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x0))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p0)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x1))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p1)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x0))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p1)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x1))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p2)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x0))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p2)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x1))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $p3)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x0))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $p3)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (local.get $x1))))
          (local.set $px (i32.add (local.get $px) (i32.const 32)))
          (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))
          (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
          (local.set $p2 (i32.add (local.get $p2) (i32.const 16)))
          (local.set $p3 (i32.add (local.get $p3) (i32.const 16)))
          (br_if $cols8 (i32.lt_u (local.get $px) (local.get $xe8))))))
    (local.set $s (call $hsum8x4 (local.get $a0) (local.get $b0) (local.get $a1) (local.get $b1)
                                 (local.get $a2) (local.get $b2) (local.get $a3) (local.get $b3)))
    ;; The last cols%8 columns, one at a time, the four rows side by side.
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $px) (local.get $xe)))
        (local.set $h (i32x4.replace_lane 3 (i32x4.replace_lane 2 (i32x4.replace_lane 1
          (i32x4.splat (i32.load16_s (local.get $p0)))
          (i32.load16_s (local.get $p1)))
          (i32.load16_s (local.get $p2)))
          (i32.load16_s (local.get $p3))))
        (local.set $s (f32x4.add (local.get $s) (f32x4.mul
          (f32x4.mul (v128.and (i32x4.dot_i16x8_s (local.get $h) (local.get $k13)) (local.get $mask)) (local.get $scale))
          (v128.load32_splat (local.get $px)))))
        (local.set $px (i32.add (local.get $px) (i32.const 4)))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 2)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 2)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 2)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 2)))
        (br $tail)))
    (local.get $s))


  ;; $dot_f16 returns Σ w[c]·x[c], c < n, w in halves, in the canonical order.
  (func $dot_f16 (param $w i32) (param $x i32) (param $n i32) (result f32)
    (local $xe8 i32) (local $xe i32) (local $a0 v128) (local $b0 v128)
    (local $mask v128) (local $scale v128) (local $k13 v128) (local $t f32)
    (local.set $mask (v128.const i32x4 0x8fffffff 0x8fffffff 0x8fffffff 0x8fffffff))
    (local.set $scale (v128.const f32x4 0x1p112 0x1p112 0x1p112 0x1p112))
    (local.set $k13 (v128.const i16x8 8192 0 8192 0 8192 0 8192 0))
    (local.set $xe8 (i32.add (local.get $x)
      (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (local.set $xe (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (if (i32.lt_u (local.get $x) (local.get $xe8))
      (then
        (loop $cols8
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s (local.get $w)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (v128.load (local.get $x)))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul
            (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $w)) (local.get $k13)) (local.get $mask)) (local.get $scale))
            (v128.load offset=16 (local.get $x)))))
          (local.set $x (i32.add (local.get $x) (i32.const 32)))
          (local.set $w (i32.add (local.get $w) (i32.const 16)))
          (br_if $cols8 (i32.lt_u (local.get $x) (local.get $xe8))))))
    (local.set $t (call $hsum8 (local.get $a0) (local.get $b0)))
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $x) (local.get $xe)))
        (local.set $t (f32.add (local.get $t)
          (f32.mul (call $f16 (local.get $w)) (f32.load (local.get $x)))))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $w (i32.add (local.get $w) (i32.const 2)))
        (br $tail)))
    (local.get $t))

  ;; $mm_f16_t4 multiplies the first 4*$g vectors, one row and four vectors
  ;; per pass. A row's weights stay in the L1 cache while its groups of four
  ;; vectors go by.
  (func $mm_f16_t4 (param $out i32) (param $w i32) (param $x i32)
                   (param $rows i32) (param $cols i32) (param $g i32)
    (local $rb i32) (local $xb4 i32) (local $ob i32) (local $row i32) (local $wend i32)
    (local $q i32) (local $qend i32) (local $o i32) (local $s v128)
    (local.set $rb (i32.shl (local.get $cols) (i32.const 1)))
    (local.set $xb4 (i32.shl (local.get $cols) (i32.const 4)))
    (local.set $ob (i32.shl (local.get $rows) (i32.const 2)))
    (local.set $qend (i32.add (local.get $x) (i32.mul (local.get $g) (local.get $xb4))))
    (local.set $row (local.get $w))
    (local.set $wend (i32.add (local.get $w) (i32.mul (local.get $rows) (local.get $rb))))
    (local.set $o (local.get $out))
    (loop $rows1
      (local.set $q (local.get $x))
      (loop $groups
        (local.set $s (call $mm_f16_t4_pass (local.get $row) (local.get $q) (local.get $cols)))
        ;; out[(4k+i)*rows + r] = s[i].
        (f32.store (local.get $o) (f32x4.extract_lane 0 (local.get $s)))
        (f32.store (i32.add (local.get $o) (local.get $ob)) (f32x4.extract_lane 1 (local.get $s)))
        (f32.store (i32.add (local.get $o) (i32.shl (local.get $ob) (i32.const 1)))
          (f32x4.extract_lane 2 (local.get $s)))
        (f32.store (i32.add (i32.add (local.get $o) (local.get $ob)) (i32.shl (local.get $ob) (i32.const 1)))
          (f32x4.extract_lane 3 (local.get $s)))
        (local.set $o (i32.add (local.get $o) (i32.shl (local.get $ob) (i32.const 2))))
        (local.set $q (i32.add (local.get $q) (local.get $xb4)))
        (br_if $groups (i32.lt_u (local.get $q) (local.get $qend))))
      ;; Back to vector 0, one row on.
      (local.set $o (i32.add (i32.sub (local.get $o) (i32.mul (local.get $g) (i32.shl (local.get $ob) (i32.const 2))))
                             (i32.const 4)))
      (local.set $row (i32.add (local.get $row) (local.get $rb)))
      (br_if $rows1 (i32.lt_u (local.get $row) (local.get $wend)))))

  ;; $mm_f16_t4_pass returns the products of the row at pw with the four
  ;; vectors at q0, q0+4·cols, q0+8·cols and q0+12·cols. Every widened weight
  ;; vector serves the four vectors, each keeping its two canonical
  ;; accumulators.
  (func $mm_f16_t4_pass (param $pw i32) (param $q0 i32) (param $cols i32) (result v128)
    (local $q1 i32) (local $q2 i32) (local $q3 i32) (local $xb i32)
    (local $wew i32) (local $we8 i32) (local $we i32)
    (local $mask v128) (local $scale v128) (local $k13 v128)
    (local $wl v128) (local $wh v128) (local $s v128)
    (local $a0 v128) (local $b0 v128) (local $a1 v128) (local $b1 v128)
    (local $a2 v128) (local $b2 v128) (local $a3 v128) (local $b3 v128)
    (local.set $mask (v128.const i32x4 0x8fffffff 0x8fffffff 0x8fffffff 0x8fffffff))
    (local.set $scale (v128.const f32x4 0x1p112 0x1p112 0x1p112 0x1p112))
    (local.set $k13 (v128.const i16x8 8192 0 8192 0 8192 0 8192 0))
    (local.set $xb (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $q1 (i32.add (local.get $q0) (local.get $xb)))
    (local.set $q2 (i32.add (local.get $q1) (local.get $xb)))
    (local.set $q3 (i32.add (local.get $q2) (local.get $xb)))
    (local.set $wew (i32.add (local.get $pw)
      (i32.shl (i32.and (local.get $cols) (i32.const -16)) (i32.const 1))))
    (local.set $we8 (i32.add (local.get $pw)
      (i32.shl (i32.and (local.get $cols) (i32.const -8)) (i32.const 1))))
    (local.set $we (i32.add (local.get $pw) (i32.shl (local.get $cols) (i32.const 1))))
    ;; Sixteen columns per step (see $mv_f16_plain_pass).
    (if (i32.lt_u (local.get $pw) (local.get $wew))
      (then
        (loop $wide
          (drop (i32.load8_u offset=31 (local.get $pw)))
          (drop (i32.load8_u offset=63 (local.get $q0)))
          (drop (i32.load8_u offset=63 (local.get $q1)))
          (drop (i32.load8_u offset=63 (local.get $q2)))
          (drop (i32.load8_u offset=63 (local.get $q3)))
          (local.set $wl (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $pw)) (local.get $k13)) (local.get $mask)) (local.get $scale)))
          (local.set $wh (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $pw)) (local.get $k13)) (local.get $mask)) (local.get $scale)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=0 (local.get $q0)) (local.get $wl))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (v128.load offset=16 (local.get $q0)) (local.get $wh))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=0 (local.get $q1)) (local.get $wl))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (v128.load offset=16 (local.get $q1)) (local.get $wh))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=0 (local.get $q2)) (local.get $wl))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (v128.load offset=16 (local.get $q2)) (local.get $wh))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=0 (local.get $q3)) (local.get $wl))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (v128.load offset=16 (local.get $q3)) (local.get $wh))))
          (local.set $wl (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=16 (local.get $pw)) (local.get $k13)) (local.get $mask)) (local.get $scale)))
          (local.set $wh (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=24 (local.get $pw)) (local.get $k13)) (local.get $mask)) (local.get $scale)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=32 (local.get $q0)) (local.get $wl))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (v128.load offset=48 (local.get $q0)) (local.get $wh))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=32 (local.get $q1)) (local.get $wl))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (v128.load offset=48 (local.get $q1)) (local.get $wh))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=32 (local.get $q2)) (local.get $wl))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (v128.load offset=48 (local.get $q2)) (local.get $wh))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=32 (local.get $q3)) (local.get $wl))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (v128.load offset=48 (local.get $q3)) (local.get $wh))))
          (local.set $pw (i32.add (local.get $pw) (i32.const 32)))
          (local.set $q0 (i32.add (local.get $q0) (i32.const 64)))
          (local.set $q1 (i32.add (local.get $q1) (i32.const 64)))
          (local.set $q2 (i32.add (local.get $q2) (i32.const 64)))
          (local.set $q3 (i32.add (local.get $q3) (i32.const 64)))
          (br_if $wide (i32.lt_u (local.get $pw) (local.get $wew))))))
    ;; Eight columns per step.
    (if (i32.lt_u (local.get $pw) (local.get $we8))
      (then
        (loop $cols8
          (local.set $wl (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=0 (local.get $pw)) (local.get $k13)) (local.get $mask)) (local.get $scale)))
          (local.set $wh (f32x4.mul (v128.and (i32x4.dot_i16x8_s (v128.load16x4_s offset=8 (local.get $pw)) (local.get $k13)) (local.get $mask)) (local.get $scale)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=0 (local.get $q0)) (local.get $wl))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (v128.load offset=16 (local.get $q0)) (local.get $wh))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=0 (local.get $q1)) (local.get $wl))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (v128.load offset=16 (local.get $q1)) (local.get $wh))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=0 (local.get $q2)) (local.get $wl))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (v128.load offset=16 (local.get $q2)) (local.get $wh))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=0 (local.get $q3)) (local.get $wl))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (v128.load offset=16 (local.get $q3)) (local.get $wh))))
          (local.set $pw (i32.add (local.get $pw) (i32.const 16)))
          (local.set $q0 (i32.add (local.get $q0) (i32.const 32)))
          (local.set $q1 (i32.add (local.get $q1) (i32.const 32)))
          (local.set $q2 (i32.add (local.get $q2) (i32.const 32)))
          (local.set $q3 (i32.add (local.get $q3) (i32.const 32)))
          (br_if $cols8 (i32.lt_u (local.get $pw) (local.get $we8))))))
    (local.set $s (call $hsum8x4 (local.get $a0) (local.get $b0) (local.get $a1) (local.get $b1)
                                 (local.get $a2) (local.get $b2) (local.get $a3) (local.get $b3)))
    ;; The last cols%8 columns, one at a time, the four vectors side by side.
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $pw) (local.get $we)))
        (local.set $s (f32x4.add (local.get $s) (f32x4.mul
          (f32x4.splat (call $f16 (local.get $pw)))
          (f32x4.replace_lane 3 (f32x4.replace_lane 2 (f32x4.replace_lane 1
            (v128.load32_zero (local.get $q0))
            (f32.load (local.get $q1)))
            (f32.load (local.get $q2)))
            (f32.load (local.get $q3))))))
        (local.set $pw (i32.add (local.get $pw) (i32.const 2)))
        (local.set $q0 (i32.add (local.get $q0) (i32.const 4)))
        (local.set $q1 (i32.add (local.get $q1) (i32.const 4)))
        (local.set $q2 (i32.add (local.get $q2) (i32.const 4)))
        (local.set $q3 (i32.add (local.get $q3) (i32.const 4)))
        (br $tail)))
    (local.get $s))


  ;; $matmul_f32 is $matmul_f16 for float32 weights.
  (func $matmul_f32 (param $out i32) (param $w i32) (param $x i32)
                    (param $rows i32) (param $cols i32) (param $n i32)
    (local $g i32) (local $t i32)
    (local.set $g (i32.shr_u (local.get $n) (i32.const 2)))
    (if (local.get $g)
      (then (call $mm_f32_t4 (local.get $out) (local.get $w) (local.get $x)
                             (local.get $rows) (local.get $cols) (local.get $g))))
    (local.set $t (i32.shl (local.get $g) (i32.const 2)))
    (block $done
      (loop $tok
        (br_if $done (i32.ge_u (local.get $t) (local.get $n)))
        (call $mv_f32
          (i32.add (local.get $out) (i32.shl (i32.mul (local.get $t) (local.get $rows)) (i32.const 2)))
          (local.get $w)
          (i32.add (local.get $x) (i32.shl (i32.mul (local.get $t) (local.get $cols)) (i32.const 2)))
          (local.get $rows) (local.get $cols))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $tok))))

  ;; $mv_f32 is $mv_f16_plain for float32 weights.
  (func $mv_f32 (param $out i32) (param $w i32) (param $x i32)
                (param $rows i32) (param $cols i32)
    (local $rb i32) (local $q i32) (local $qb i32) (local $ob i32) (local $o i32) (local $end i32)
    (local $p i32) (local $s v128)
    (local.set $rb (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $q (i32.shr_u (local.get $rows) (i32.const 2)))
    (local.set $qb (i32.mul (local.get $q) (local.get $rb)))
    (local.set $ob (i32.shl (local.get $q) (i32.const 2)))
    (local.set $p (local.get $w))
    (local.set $o (local.get $out))
    (local.set $end (i32.add (local.get $out) (local.get $ob)))
    (if (local.get $q)
      (then
        (loop $passes
          (local.set $s (call $mv_f32_pass (local.get $p) (local.get $qb) (local.get $x) (local.get $cols)))
          ;; out[k], out[q+k], out[2q+k], out[3q+k].
          (f32.store (local.get $o) (f32x4.extract_lane 0 (local.get $s)))
          (f32.store (i32.add (local.get $o) (local.get $ob)) (f32x4.extract_lane 1 (local.get $s)))
          (f32.store (i32.add (local.get $o) (i32.shl (local.get $ob) (i32.const 1)))
            (f32x4.extract_lane 2 (local.get $s)))
          (f32.store (i32.add (i32.add (local.get $o) (local.get $ob)) (i32.shl (local.get $ob) (i32.const 1)))
            (f32x4.extract_lane 3 (local.get $s)))
          (local.set $p (i32.add (local.get $p) (local.get $rb)))
          (local.set $o (i32.add (local.get $o) (i32.const 4)))
          (br_if $passes (i32.lt_u (local.get $o) (local.get $end))))))
    ;; The rows%4 last rows, one per pass.
    (local.set $p (i32.add (local.get $w) (i32.shl (local.get $qb) (i32.const 2))))
    (local.set $o (i32.add (local.get $out) (i32.shl (local.get $ob) (i32.const 2))))
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done
      (loop $rows1
        (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
        (f32.store (local.get $o) (call $dot (local.get $p) (local.get $x) (local.get $cols)))
        (local.set $p (i32.add (local.get $p) (local.get $rb)))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $rows1))))

  ;; $mv_f32_pass returns the products of x with the four rows at p0,
  ;; p0+qb, p0+2qb and p0+3qb. Every load of x serves the four rows, each row
  ;; keeping its two canonical accumulators.
  (func $mv_f32_pass (param $p0 i32) (param $qb i32) (param $x i32) (param $cols i32) (result v128)
    (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $px i32)
    (local $xew i32) (local $xe8 i32) (local $xe i32)
    (local $x0 v128) (local $x1 v128) (local $s v128)
    (local $a0 v128) (local $b0 v128) (local $a1 v128) (local $b1 v128)
    (local $a2 v128) (local $b2 v128) (local $a3 v128) (local $b3 v128)
    (local.set $p1 (i32.add (local.get $p0) (local.get $qb)))
    (local.set $p2 (i32.add (local.get $p1) (local.get $qb)))
    (local.set $p3 (i32.add (local.get $p2) (local.get $qb)))
    (local.set $px (local.get $x))
    (local.set $xew (i32.add (local.get $x)
      (i32.shl (i32.and (local.get $cols) (i32.const -16)) (i32.const 2))))
    (local.set $xe8 (i32.add (local.get $x)
      (i32.shl (i32.and (local.get $cols) (i32.const -8)) (i32.const 2))))
    (local.set $xe (i32.add (local.get $x) (i32.shl (local.get $cols) (i32.const 2))))
    ;; Sixteen columns per step. The dropped one-byte loads make wazero
    ;; check each pointer's bounds once per step: it skips the check of a
    ;; load that an earlier one from the same address, at a higher offset,
    ;; has covered.
    (if (i32.lt_u (local.get $px) (local.get $xew))
      (then
        (loop $wide
          (drop (i32.load8_u offset=63 (local.get $px)))
          (drop (i32.load8_u offset=63 (local.get $p0)))
          (drop (i32.load8_u offset=63 (local.get $p1)))
          (drop (i32.load8_u offset=63 (local.get $p2)))
          (drop (i32.load8_u offset=63 (local.get $p3)))
          (local.set $x1 (v128.load offset=16 (local.get $px)))
          (local.set $x0 (v128.load offset=0 (local.get $px)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=0 (local.get $p0)) (local.get $x0))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (v128.load offset=16 (local.get $p0)) (local.get $x1))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=0 (local.get $p1)) (local.get $x0))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (v128.load offset=16 (local.get $p1)) (local.get $x1))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=0 (local.get $p2)) (local.get $x0))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (v128.load offset=16 (local.get $p2)) (local.get $x1))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=0 (local.get $p3)) (local.get $x0))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (v128.load offset=16 (local.get $p3)) (local.get $x1))))
          (local.set $x1 (v128.load offset=48 (local.get $px)))
          (local.set $x0 (v128.load offset=32 (local.get $px)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=32 (local.get $p0)) (local.get $x0))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (v128.load offset=48 (local.get $p0)) (local.get $x1))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=32 (local.get $p1)) (local.get $x0))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (v128.load offset=48 (local.get $p1)) (local.get $x1))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=32 (local.get $p2)) (local.get $x0))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (v128.load offset=48 (local.get $p2)) (local.get $x1))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=32 (local.get $p3)) (local.get $x0))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (v128.load offset=48 (local.get $p3)) (local.get $x1))))
          (local.set $px (i32.add (local.get $px) (i32.const 64)))
          (local.set $p0 (i32.add (local.get $p0) (i32.const 64)))
          (local.set $p1 (i32.add (local.get $p1) (i32.const 64)))
          (local.set $p2 (i32.add (local.get $p2) (i32.const 64)))
          (local.set $p3 (i32.add (local.get $p3) (i32.const 64)))
          (br_if $wide (i32.lt_u (local.get $px) (local.get $xew))))))
    ;; Eight columns per step.
    (if (i32.lt_u (local.get $px) (local.get $xe8))
      (then
        (loop $cols8
          (local.set $x1 (v128.load offset=16 (local.get $px)))
          (local.set $x0 (v128.load offset=0 (local.get $px)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=0 (local.get $p0)) (local.get $x0))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (v128.load offset=16 (local.get $p0)) (local.get $x1))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=0 (local.get $p1)) (local.get $x0))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (v128.load offset=16 (local.get $p1)) (local.get $x1))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=0 (local.get $p2)) (local.get $x0))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (v128.load offset=16 (local.get $p2)) (local.get $x1))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=0 (local.get $p3)) (local.get $x0))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (v128.load offset=16 (local.get $p3)) (local.get $x1))))
          (local.set $px (i32.add (local.get $px) (i32.const 32)))
          (local.set $p0 (i32.add (local.get $p0) (i32.const 32)))
          (local.set $p1 (i32.add (local.get $p1) (i32.const 32)))
          (local.set $p2 (i32.add (local.get $p2) (i32.const 32)))
          (local.set $p3 (i32.add (local.get $p3) (i32.const 32)))
          (br_if $cols8 (i32.lt_u (local.get $px) (local.get $xe8))))))
    (local.set $s (call $hsum8x4 (local.get $a0) (local.get $b0) (local.get $a1) (local.get $b1)
                                 (local.get $a2) (local.get $b2) (local.get $a3) (local.get $b3)))
    ;; The last cols%8 columns, one at a time, the four rows side by side.
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $px) (local.get $xe)))
        (local.set $s (f32x4.add (local.get $s) (f32x4.mul
          (f32x4.replace_lane 3 (f32x4.replace_lane 2 (f32x4.replace_lane 1
            (v128.load32_zero (local.get $p0))
            (f32.load (local.get $p1)))
            (f32.load (local.get $p2)))
            (f32.load (local.get $p3)))
          (v128.load32_splat (local.get $px)))))
        (local.set $px (i32.add (local.get $px) (i32.const 4)))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 4)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 4)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 4)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 4)))
        (br $tail)))
    (local.get $s))


  ;; $mm_f32_t4 is $mm_f16_t4 for float32 weights.
  (func $mm_f32_t4 (param $out i32) (param $w i32) (param $x i32)
                   (param $rows i32) (param $cols i32) (param $g i32)
    (local $rb i32) (local $xb4 i32) (local $ob i32) (local $row i32) (local $wend i32)
    (local $q i32) (local $qend i32) (local $o i32) (local $s v128)
    (local.set $rb (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $xb4 (i32.shl (local.get $cols) (i32.const 4)))
    (local.set $ob (i32.shl (local.get $rows) (i32.const 2)))
    (local.set $qend (i32.add (local.get $x) (i32.mul (local.get $g) (local.get $xb4))))
    (local.set $row (local.get $w))
    (local.set $wend (i32.add (local.get $w) (i32.mul (local.get $rows) (local.get $rb))))
    (local.set $o (local.get $out))
    (loop $rows1
      (local.set $q (local.get $x))
      (loop $groups
        (local.set $s (call $mm_f32_t4_pass (local.get $row) (local.get $q) (local.get $cols)))
        ;; out[(4k+i)*rows + r] = s[i].
        (f32.store (local.get $o) (f32x4.extract_lane 0 (local.get $s)))
        (f32.store (i32.add (local.get $o) (local.get $ob)) (f32x4.extract_lane 1 (local.get $s)))
        (f32.store (i32.add (local.get $o) (i32.shl (local.get $ob) (i32.const 1)))
          (f32x4.extract_lane 2 (local.get $s)))
        (f32.store (i32.add (i32.add (local.get $o) (local.get $ob)) (i32.shl (local.get $ob) (i32.const 1)))
          (f32x4.extract_lane 3 (local.get $s)))
        (local.set $o (i32.add (local.get $o) (i32.shl (local.get $ob) (i32.const 2))))
        (local.set $q (i32.add (local.get $q) (local.get $xb4)))
        (br_if $groups (i32.lt_u (local.get $q) (local.get $qend))))
      ;; Back to vector 0, one row on.
      (local.set $o (i32.add (i32.sub (local.get $o) (i32.mul (local.get $g) (i32.shl (local.get $ob) (i32.const 2))))
                             (i32.const 4)))
      (local.set $row (i32.add (local.get $row) (local.get $rb)))
      (br_if $rows1 (i32.lt_u (local.get $row) (local.get $wend)))))

  ;; $mm_f32_t4_pass returns the products of the row at pw with the four
  ;; vectors at q0, q0+4·cols, q0+8·cols and q0+12·cols. Every widened weight
  ;; vector serves the four vectors, each keeping its two canonical
  ;; accumulators.
  (func $mm_f32_t4_pass (param $pw i32) (param $q0 i32) (param $cols i32) (result v128)
    (local $q1 i32) (local $q2 i32) (local $q3 i32) (local $xb i32)
    (local $wew i32) (local $we8 i32) (local $we i32)
    (local $wl v128) (local $wh v128) (local $s v128)
    (local $a0 v128) (local $b0 v128) (local $a1 v128) (local $b1 v128)
    (local $a2 v128) (local $b2 v128) (local $a3 v128) (local $b3 v128)
    (local.set $xb (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $q1 (i32.add (local.get $q0) (local.get $xb)))
    (local.set $q2 (i32.add (local.get $q1) (local.get $xb)))
    (local.set $q3 (i32.add (local.get $q2) (local.get $xb)))
    (local.set $wew (i32.add (local.get $pw)
      (i32.shl (i32.and (local.get $cols) (i32.const -16)) (i32.const 2))))
    (local.set $we8 (i32.add (local.get $pw)
      (i32.shl (i32.and (local.get $cols) (i32.const -8)) (i32.const 2))))
    (local.set $we (i32.add (local.get $pw) (i32.shl (local.get $cols) (i32.const 2))))
    ;; Sixteen columns per step (see $mv_f16_plain_pass).
    (if (i32.lt_u (local.get $pw) (local.get $wew))
      (then
        (loop $wide
          (drop (i32.load8_u offset=63 (local.get $pw)))
          (drop (i32.load8_u offset=63 (local.get $q0)))
          (drop (i32.load8_u offset=63 (local.get $q1)))
          (drop (i32.load8_u offset=63 (local.get $q2)))
          (drop (i32.load8_u offset=63 (local.get $q3)))
          (local.set $wh (v128.load offset=16 (local.get $pw)))
          (local.set $wl (v128.load offset=0 (local.get $pw)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=0 (local.get $q0)) (local.get $wl))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (v128.load offset=16 (local.get $q0)) (local.get $wh))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=0 (local.get $q1)) (local.get $wl))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (v128.load offset=16 (local.get $q1)) (local.get $wh))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=0 (local.get $q2)) (local.get $wl))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (v128.load offset=16 (local.get $q2)) (local.get $wh))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=0 (local.get $q3)) (local.get $wl))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (v128.load offset=16 (local.get $q3)) (local.get $wh))))
          (local.set $wh (v128.load offset=48 (local.get $pw)))
          (local.set $wl (v128.load offset=32 (local.get $pw)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=32 (local.get $q0)) (local.get $wl))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (v128.load offset=48 (local.get $q0)) (local.get $wh))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=32 (local.get $q1)) (local.get $wl))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (v128.load offset=48 (local.get $q1)) (local.get $wh))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=32 (local.get $q2)) (local.get $wl))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (v128.load offset=48 (local.get $q2)) (local.get $wh))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=32 (local.get $q3)) (local.get $wl))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (v128.load offset=48 (local.get $q3)) (local.get $wh))))
          (local.set $pw (i32.add (local.get $pw) (i32.const 64)))
          (local.set $q0 (i32.add (local.get $q0) (i32.const 64)))
          (local.set $q1 (i32.add (local.get $q1) (i32.const 64)))
          (local.set $q2 (i32.add (local.get $q2) (i32.const 64)))
          (local.set $q3 (i32.add (local.get $q3) (i32.const 64)))
          (br_if $wide (i32.lt_u (local.get $pw) (local.get $wew))))))
    ;; Eight columns per step.
    (if (i32.lt_u (local.get $pw) (local.get $we8))
      (then
        (loop $cols8
          (local.set $wh (v128.load offset=16 (local.get $pw)))
          (local.set $wl (v128.load offset=0 (local.get $pw)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=0 (local.get $q0)) (local.get $wl))))
          (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (v128.load offset=16 (local.get $q0)) (local.get $wh))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=0 (local.get $q1)) (local.get $wl))))
          (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (v128.load offset=16 (local.get $q1)) (local.get $wh))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=0 (local.get $q2)) (local.get $wl))))
          (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (v128.load offset=16 (local.get $q2)) (local.get $wh))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=0 (local.get $q3)) (local.get $wl))))
          (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (v128.load offset=16 (local.get $q3)) (local.get $wh))))
          (local.set $pw (i32.add (local.get $pw) (i32.const 32)))
          (local.set $q0 (i32.add (local.get $q0) (i32.const 32)))
          (local.set $q1 (i32.add (local.get $q1) (i32.const 32)))
          (local.set $q2 (i32.add (local.get $q2) (i32.const 32)))
          (local.set $q3 (i32.add (local.get $q3) (i32.const 32)))
          (br_if $cols8 (i32.lt_u (local.get $pw) (local.get $we8))))))
    (local.set $s (call $hsum8x4 (local.get $a0) (local.get $b0) (local.get $a1) (local.get $b1)
                                 (local.get $a2) (local.get $b2) (local.get $a3) (local.get $b3)))
    ;; The last cols%8 columns, one at a time, the four vectors side by side.
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $pw) (local.get $we)))
        (local.set $s (f32x4.add (local.get $s) (f32x4.mul
          (v128.load32_splat (local.get $pw))
          (f32x4.replace_lane 3 (f32x4.replace_lane 2 (f32x4.replace_lane 1
            (v128.load32_zero (local.get $q0))
            (f32.load (local.get $q1)))
            (f32.load (local.get $q2)))
            (f32.load (local.get $q3))))))
        (local.set $pw (i32.add (local.get $pw) (i32.const 4)))
        (local.set $q0 (i32.add (local.get $q0) (i32.const 4)))
        (local.set $q1 (i32.add (local.get $q1) (i32.const 4)))
        (local.set $q2 (i32.add (local.get $q2) (i32.const 4)))
        (local.set $q3 (i32.add (local.get $q3) (i32.const 4)))
        (br $tail)))
    (local.get $s))


  ;; ------------------------------------------------------------------
  ;; Vectors.

  ;; $dot returns Σ a[i]·b[i], i < n, in the canonical order.
  (func $dot (param $a i32) (param $b i32) (param $n i32) (result f32)
    (local $e8 i32) (local $e i32) (local $s0 v128) (local $s1 v128) (local $t f32)
    (local.set $e8 (i32.add (local.get $a) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (local.set $e (i32.add (local.get $a) (i32.shl (local.get $n) (i32.const 2))))
    (if (i32.lt_u (local.get $a) (local.get $e8))
      (then
        (loop $l
          (local.set $s0 (f32x4.add (local.get $s0)
            (f32x4.mul (v128.load (local.get $a)) (v128.load (local.get $b)))))
          (local.set $s1 (f32x4.add (local.get $s1)
            (f32x4.mul (v128.load offset=16 (local.get $a)) (v128.load offset=16 (local.get $b)))))
          (local.set $a (i32.add (local.get $a) (i32.const 32)))
          (local.set $b (i32.add (local.get $b) (i32.const 32)))
          (br_if $l (i32.lt_u (local.get $a) (local.get $e8))))))
    (local.set $t (call $hsum8 (local.get $s0) (local.get $s1)))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $a) (local.get $e)))
        (local.set $t (f32.add (local.get $t)
          (f32.mul (f32.load (local.get $a)) (f32.load (local.get $b)))))
        (local.set $a (i32.add (local.get $a) (i32.const 4)))
        (local.set $b (i32.add (local.get $b) (i32.const 4)))
        (br $tail)))
    (local.get $t))

  ;; $axpy sets y[i] = y[i] + a·x[i], i < n.
  (func $axpy (param $y i32) (param $a f32) (param $x i32) (param $n i32)
    (local $e4 i32) (local $e i32) (local $av v128)
    (local.set $av (f32x4.splat (local.get $a)))
    (local.set $e4 (i32.add (local.get $y) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $e (i32.add (local.get $y) (i32.shl (local.get $n) (i32.const 2))))
    (if (i32.lt_u (local.get $y) (local.get $e4))
      (then
        (loop $l
          (v128.store (local.get $y) (f32x4.add (v128.load (local.get $y))
            (f32x4.mul (local.get $av) (v128.load (local.get $x)))))
          (local.set $y (i32.add (local.get $y) (i32.const 16)))
          (local.set $x (i32.add (local.get $x) (i32.const 16)))
          (br_if $l (i32.lt_u (local.get $y) (local.get $e4))))))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $y) (local.get $e)))
        (f32.store (local.get $y) (f32.add (f32.load (local.get $y))
          (f32.mul (local.get $a) (f32.load (local.get $x)))))
        (local.set $y (i32.add (local.get $y) (i32.const 4)))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (br $tail))))

  ;; $add sets dst[i] = dst[i] + src[i], i < n.
  (func $add (param $dst i32) (param $src i32) (param $n i32)
    (local $e4 i32) (local $e i32)
    (local.set $e4 (i32.add (local.get $dst) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $e (i32.add (local.get $dst) (i32.shl (local.get $n) (i32.const 2))))
    (if (i32.lt_u (local.get $dst) (local.get $e4))
      (then
        (loop $l
          (v128.store (local.get $dst)
            (f32x4.add (v128.load (local.get $dst)) (v128.load (local.get $src))))
          (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
          (local.set $src (i32.add (local.get $src) (i32.const 16)))
          (br_if $l (i32.lt_u (local.get $dst) (local.get $e4))))))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $dst) (local.get $e)))
        (f32.store (local.get $dst)
          (f32.add (f32.load (local.get $dst)) (f32.load (local.get $src))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (br $tail))))

  ;; $rmsnorm sets out[i] = w[i]·(x[i]·inv), inv = 1/sqrt(Σx²/n + eps).
  ;; out may be x.
  (func $rmsnorm (param $out i32) (param $x i32) (param $w i32) (param $n i32) (param $eps f32)
    (local $inv f32) (local $iv v128) (local $e4 i32) (local $e i32)
    (local.set $inv (f32.div (f32.const 1)
      (f32.sqrt (f32.add
        (f32.div (call $dot (local.get $x) (local.get $x) (local.get $n))
                 (f32.convert_i32_s (local.get $n)))
        (local.get $eps)))))
    (local.set $iv (f32x4.splat (local.get $inv)))
    (local.set $e4 (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $e (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (if (i32.lt_u (local.get $x) (local.get $e4))
      (then
        (loop $l
          (v128.store (local.get $out) (f32x4.mul (v128.load (local.get $w))
            (f32x4.mul (v128.load (local.get $x)) (local.get $iv))))
          (local.set $out (i32.add (local.get $out) (i32.const 16)))
          (local.set $x (i32.add (local.get $x) (i32.const 16)))
          (local.set $w (i32.add (local.get $w) (i32.const 16)))
          (br_if $l (i32.lt_u (local.get $x) (local.get $e4))))))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $x) (local.get $e)))
        (f32.store (local.get $out) (f32.mul (f32.load (local.get $w))
          (f32.mul (f32.load (local.get $x)) (local.get $inv))))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $w (i32.add (local.get $w) (i32.const 4)))
        (br $tail))))

  ;; $exp4 is Exp (simd.go) in each lane.
  (func $exp4 (param $x v128) (result v128)
    (local $k v128) (local $r v128) (local $p v128)
    ;; pmax(x, -87) = x < -87 ? -87 : x and pmin(x, 88) = 88 < x ? 88 : x,
    ;; the clamps of Exp.
    (local.set $x (f32x4.pmin
      (f32x4.pmax (local.get $x) (v128.const f32x4 -87 -87 -87 -87))
      (v128.const f32x4 88 88 88 88)))
    (local.set $k (f32x4.nearest (f32x4.mul (local.get $x)
      (v128.const f32x4 0x1.715476p+00 0x1.715476p+00 0x1.715476p+00 0x1.715476p+00))))
    (local.set $r (f32x4.sub (local.get $x) (f32x4.mul (local.get $k)
      (v128.const f32x4 0x1.62e4p-01 0x1.62e4p-01 0x1.62e4p-01 0x1.62e4p-01))))
    (local.set $r (f32x4.sub (local.get $r) (f32x4.mul (local.get $k)
      (v128.const f32x4 0x1.7f7d1cp-20 0x1.7f7d1cp-20 0x1.7f7d1cp-20 0x1.7f7d1cp-20))))
    (local.set $p (f32x4.add (f32x4.mul
      (v128.const f32x4 0x1.6c16c2p-10 0x1.6c16c2p-10 0x1.6c16c2p-10 0x1.6c16c2p-10) (local.get $r))
      (v128.const f32x4 0x1.111112p-07 0x1.111112p-07 0x1.111112p-07 0x1.111112p-07)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 0x1.555556p-05 0x1.555556p-05 0x1.555556p-05 0x1.555556p-05)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 0x1.555556p-03 0x1.555556p-03 0x1.555556p-03 0x1.555556p-03)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 0.5 0.5 0.5 0.5)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 1 1 1 1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 1 1 1 1)))
    (f32x4.mul (local.get $p)
      (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $k))
                            (v128.const i32x4 127 127 127 127))
                 (i32.const 23))))

  ;; $softmax replaces x[i], i < n, by Exp(x[i]-max)·(1/Σ), the sum in the
  ;; canonical order.
  (func $softmax (param $x i32) (param $n i32)
    (local $p i32) (local $e8 i32) (local $e4 i32) (local $e i32)
    (local $m f32) (local $v f32) (local $mv v128) (local $ev v128)
    (local $s0 v128) (local $s1 v128) (local $sum f32) (local $iv v128)
    (local.set $e8 (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (local.set $e4 (i32.add (local.get $x) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $e (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    ;; The maximum.
    (local.set $mv (v128.load32_splat (local.get $x)))
    (local.set $p (local.get $x))
    (if (i32.lt_u (local.get $p) (local.get $e4))
      (then
        (loop $l
          (local.set $mv (f32x4.pmax (local.get $mv) (v128.load (local.get $p))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br_if $l (i32.lt_u (local.get $p) (local.get $e4))))))
    (local.set $m (f32x4.extract_lane 0 (local.get $mv)))
    (local.set $v (f32x4.extract_lane 1 (local.get $mv)))
    (local.set $m (select (local.get $v) (local.get $m) (f32.gt (local.get $v) (local.get $m))))
    (local.set $v (f32x4.extract_lane 2 (local.get $mv)))
    (local.set $m (select (local.get $v) (local.get $m) (f32.gt (local.get $v) (local.get $m))))
    (local.set $v (f32x4.extract_lane 3 (local.get $mv)))
    (local.set $m (select (local.get $v) (local.get $m) (f32.gt (local.get $v) (local.get $m))))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $p) (local.get $e)))
        (local.set $v (f32.load (local.get $p)))
        (local.set $m (select (local.get $v) (local.get $m) (f32.gt (local.get $v) (local.get $m))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $tail)))
    (local.set $mv (f32x4.splat (local.get $m)))
    ;; The exponentials and their sum.
    (local.set $p (local.get $x))
    (if (i32.lt_u (local.get $p) (local.get $e8))
      (then
        (loop $l
          (local.set $ev (call $exp4 (f32x4.sub (v128.load (local.get $p)) (local.get $mv))))
          (v128.store (local.get $p) (local.get $ev))
          (local.set $s0 (f32x4.add (local.get $s0) (local.get $ev)))
          (local.set $ev (call $exp4 (f32x4.sub (v128.load offset=16 (local.get $p)) (local.get $mv))))
          (v128.store offset=16 (local.get $p) (local.get $ev))
          (local.set $s1 (f32x4.add (local.get $s1) (local.get $ev)))
          (local.set $p (i32.add (local.get $p) (i32.const 32)))
          (br_if $l (i32.lt_u (local.get $p) (local.get $e8))))))
    (local.set $sum (call $hsum8 (local.get $s0) (local.get $s1)))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $p) (local.get $e)))
        (local.set $v (f32x4.extract_lane 0
          (call $exp4 (f32x4.sub (v128.load32_zero (local.get $p)) (local.get $mv)))))
        (f32.store (local.get $p) (local.get $v))
        (local.set $sum (f32.add (local.get $sum) (local.get $v)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $tail)))
    ;; The scaling.
    (local.set $iv (f32x4.splat (f32.div (f32.const 1) (local.get $sum))))
    (local.set $p (local.get $x))
    (if (i32.lt_u (local.get $p) (local.get $e4))
      (then
        (loop $l
          (v128.store (local.get $p) (f32x4.mul (v128.load (local.get $p)) (local.get $iv)))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br_if $l (i32.lt_u (local.get $p) (local.get $e4))))))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $p) (local.get $e)))
        (f32.store (local.get $p) (f32.mul (f32.load (local.get $p))
          (f32x4.extract_lane 0 (local.get $iv))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $tail))))

  ;; $silu_mul sets a[i] = (a[i]/(1+Exp(-a[i])))·b[i], i < n.
  (func $silu_mul (param $a i32) (param $b i32) (param $n i32)
    (local $e4 i32) (local $e i32) (local $v v128)
    (local.set $e4 (i32.add (local.get $a) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $e (i32.add (local.get $a) (i32.shl (local.get $n) (i32.const 2))))
    (if (i32.lt_u (local.get $a) (local.get $e4))
      (then
        (loop $l
          (local.set $v (v128.load (local.get $a)))
          (v128.store (local.get $a) (f32x4.mul
            (f32x4.div (local.get $v)
              (f32x4.add (v128.const f32x4 1 1 1 1) (call $exp4 (f32x4.neg (local.get $v)))))
            (v128.load (local.get $b))))
          (local.set $a (i32.add (local.get $a) (i32.const 16)))
          (local.set $b (i32.add (local.get $b) (i32.const 16)))
          (br_if $l (i32.lt_u (local.get $a) (local.get $e4))))))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $a) (local.get $e)))
        (local.set $v (v128.load32_zero (local.get $a)))
        (f32.store (local.get $a) (f32x4.extract_lane 0 (f32x4.mul
          (f32x4.div (local.get $v)
            (f32x4.add (v128.const f32x4 1 1 1 1) (call $exp4 (f32x4.neg (local.get $v)))))
          (v128.load32_zero (local.get $b)))))
        (local.set $a (i32.add (local.get $a) (i32.const 4)))
        (local.set $b (i32.add (local.get $b) (i32.const 4)))
        (br $tail))))

  ;; $rope rotates the n/headDim heads at x. A pair (a, b) becomes
  ;; (a·c - b·s, a·s + b·c) with c = cos[i], s = sin[i]; pair i is
  ;; (2i, 2i+1) if neox is 0 and (i, i+headDim/2) otherwise.
  (func $rope (param $x i32) (param $cos i32) (param $sin i32)
              (param $n i32) (param $hd i32) (param $neox i32)
    (local $half i32) (local $hb i32) (local $e i32) (local $i i32) (local $pa i32) (local $pb i32)
    (local $va v128) (local $vb v128) (local $vc v128) (local $vs v128) (local $p1 v128) (local $p2 v128)
    (local $a f32) (local $b f32) (local $c f32) (local $s f32)
    (local.set $half (i32.shr_u (local.get $hd) (i32.const 1)))
    (local.set $hb (i32.shl (local.get $half) (i32.const 2)))
    (local.set $e (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (loop $heads
      (if (local.get $neox)
        (then
          ;; Four pairs (v[i..i+4], v[half+i..half+i+4]) per step.
          (local.set $i (i32.const 0))
          (block $done
            (loop $l
              (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $half)))
              (local.set $pa (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))
              (local.set $pb (i32.add (local.get $pa) (local.get $hb)))
              (local.set $va (v128.load (local.get $pa)))
              (local.set $vb (v128.load (local.get $pb)))
              (local.set $vc (v128.load (i32.add (local.get $cos) (i32.shl (local.get $i) (i32.const 2)))))
              (local.set $vs (v128.load (i32.add (local.get $sin) (i32.shl (local.get $i) (i32.const 2)))))
              (v128.store (local.get $pa) (f32x4.sub
                (f32x4.mul (local.get $va) (local.get $vc)) (f32x4.mul (local.get $vb) (local.get $vs))))
              (v128.store (local.get $pb) (f32x4.add
                (f32x4.mul (local.get $va) (local.get $vs)) (f32x4.mul (local.get $vb) (local.get $vc))))
              (local.set $i (i32.add (local.get $i) (i32.const 4)))
              (br $l)))
          (block $done
            (loop $l
              (br_if $done (i32.ge_u (local.get $i) (local.get $half)))
              (local.set $pa (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))
              (local.set $pb (i32.add (local.get $pa) (local.get $hb)))
              (local.set $a (f32.load (local.get $pa)))
              (local.set $b (f32.load (local.get $pb)))
              (local.set $c (f32.load (i32.add (local.get $cos) (i32.shl (local.get $i) (i32.const 2)))))
              (local.set $s (f32.load (i32.add (local.get $sin) (i32.shl (local.get $i) (i32.const 2)))))
              (f32.store (local.get $pa) (f32.sub
                (f32.mul (local.get $a) (local.get $c)) (f32.mul (local.get $b) (local.get $s))))
              (f32.store (local.get $pb) (f32.add
                (f32.mul (local.get $a) (local.get $s)) (f32.mul (local.get $b) (local.get $c))))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $l))))
        (else
          ;; Two adjacent pairs [a0 b0 a1 b1] per step.
          (local.set $i (i32.const 0))
          (block $done
            (loop $l
              (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 2)) (local.get $half)))
              (local.set $pa (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 3))))
              (local.set $va (v128.load (local.get $pa)))
              ;; [c0 c0 c1 c1] and [s0 s0 s1 s1].
              (local.set $vc (i8x16.shuffle 0 1 2 3 0 1 2 3 4 5 6 7 4 5 6 7
                (v128.load64_zero (i32.add (local.get $cos) (i32.shl (local.get $i) (i32.const 2))))
                (v128.const i64x2 0 0)))
              (local.set $vs (i8x16.shuffle 0 1 2 3 0 1 2 3 4 5 6 7 4 5 6 7
                (v128.load64_zero (i32.add (local.get $sin) (i32.shl (local.get $i) (i32.const 2))))
                (v128.const i64x2 0 0)))
              ;; p1 = [a0c0 b0c0 a1c1 b1c1], p2 = [b0s0 a0s0 b1s1 a1s1].
              (local.set $p1 (f32x4.mul (local.get $va) (local.get $vc)))
              (local.set $p2 (f32x4.mul
                (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get $va) (local.get $va))
                (local.get $vs)))
              ;; [a0c0-b0s0, b0c0+a0s0, a1c1-b1s1, b1c1+a1s1].
              (v128.store (local.get $pa) (i8x16.shuffle 0 1 2 3 20 21 22 23 8 9 10 11 28 29 30 31
                (f32x4.sub (local.get $p1) (local.get $p2))
                (f32x4.add (local.get $p1) (local.get $p2))))
              (local.set $i (i32.add (local.get $i) (i32.const 2)))
              (br $l)))
          (if (i32.lt_u (local.get $i) (local.get $half))
            (then
              (local.set $pa (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 3))))
              (local.set $a (f32.load (local.get $pa)))
              (local.set $b (f32.load offset=4 (local.get $pa)))
              (local.set $c (f32.load (i32.add (local.get $cos) (i32.shl (local.get $i) (i32.const 2)))))
              (local.set $s (f32.load (i32.add (local.get $sin) (i32.shl (local.get $i) (i32.const 2)))))
              (f32.store (local.get $pa) (f32.sub
                (f32.mul (local.get $a) (local.get $c)) (f32.mul (local.get $b) (local.get $s))))
              (f32.store offset=4 (local.get $pa) (f32.add
                (f32.mul (local.get $a) (local.get $s)) (f32.mul (local.get $b) (local.get $c))))))))
      (local.set $x (i32.add (local.get $x) (i32.shl (local.get $hd) (i32.const 2))))
      (br_if $heads (i32.lt_u (local.get $x) (local.get $e)))))

  ;; $widen_f16 sets dst[i] = the float32 value of the half src[i], i < n.
  (func $widen_f16 (param $dst i32) (param $src i32) (param $n i32)
    (local $e8 i32) (local $e i32) (local $h v128) (local $mask v128) (local $scale v128)
    (local.set $mask (v128.const i32x4 0x8fffffff 0x8fffffff 0x8fffffff 0x8fffffff))
    (local.set $scale (v128.const f32x4 0x1p112 0x1p112 0x1p112 0x1p112))
    (local.set $e8 (i32.add (local.get $dst) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (local.set $e (i32.add (local.get $dst) (i32.shl (local.get $n) (i32.const 2))))
    (if (i32.lt_u (local.get $dst) (local.get $e8))
      (then
        (loop $l
          (local.set $h (v128.load (local.get $src)))
          (v128.store (local.get $dst)
            (f32x4.mul (v128.and (i32x4.shl (i32x4.extend_low_i16x8_s (local.get $h)) (i32.const 13)) (local.get $mask)) (local.get $scale)))
          (v128.store offset=16 (local.get $dst)
            (f32x4.mul (v128.and (i32x4.shl (i32x4.extend_high_i16x8_s (local.get $h)) (i32.const 13)) (local.get $mask)) (local.get $scale)))
          (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
          (local.set $src (i32.add (local.get $src) (i32.const 16)))
          (br_if $l (i32.lt_u (local.get $dst) (local.get $e8))))))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $dst) (local.get $e)))
        (f32.store (local.get $dst) (call $f16 (local.get $src)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (local.set $src (i32.add (local.get $src) (i32.const 2)))
        (br $tail))))

  ;; $flush_f16 replaces each subnormal half w[i], i < n, by a zero of the
  ;; same sign and returns how many it replaced.
  (func $flush_f16 (param $w i32) (param $n i32) (result i32)
    (local $e8 i32) (local $e i32) (local $v v128) (local $m v128) (local $c i32) (local $h i32)
    (local.set $e8 (i32.add (local.get $w) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 1))))
    (local.set $e (i32.add (local.get $w) (i32.shl (local.get $n) (i32.const 1))))
    (if (i32.lt_u (local.get $w) (local.get $e8))
      (then
        (loop $l
          (local.set $v (v128.load (local.get $w)))
          ;; m: exponent zero and mantissa not zero.
          (local.set $m (v128.andnot
            (i16x8.eq (v128.and (local.get $v) (v128.const i16x8 0x7c00 0x7c00 0x7c00 0x7c00 0x7c00 0x7c00 0x7c00 0x7c00))
                      (v128.const i64x2 0 0))
            (i16x8.eq (v128.and (local.get $v) (v128.const i16x8 0x03ff 0x03ff 0x03ff 0x03ff 0x03ff 0x03ff 0x03ff 0x03ff))
                      (v128.const i64x2 0 0))))
          (if (v128.any_true (local.get $m))
            (then
              (v128.store (local.get $w) (v128.andnot (local.get $v)
                (v128.and (local.get $m) (v128.const i16x8 0x7fff 0x7fff 0x7fff 0x7fff 0x7fff 0x7fff 0x7fff 0x7fff))))
              (local.set $c (i32.add (local.get $c) (i32.popcnt (i16x8.bitmask (local.get $m)))))))
          (local.set $w (i32.add (local.get $w) (i32.const 16)))
          (br_if $l (i32.lt_u (local.get $w) (local.get $e8))))))
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $w) (local.get $e)))
        (local.set $h (i32.load16_u (local.get $w)))
        (if (i32.and (i32.eqz (i32.and (local.get $h) (i32.const 0x7c00)))
                     (i32.ne (i32.and (local.get $h) (i32.const 0x03ff)) (i32.const 0)))
          (then
            (i32.store16 (local.get $w) (i32.and (local.get $h) (i32.const 0x8000)))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))))
        (local.set $w (i32.add (local.get $w) (i32.const 2)))
        (br $tail)))
    (local.get $c))
)
