;; read.wat: the read-bandwidth kernel of make bench. It streams through a
;; block of its own memory with SIMD128 loads and folds them with xor, the
;; cheapest operation that keeps every load alive, so that its speed is the
;; speed at which one core can read memory from wasm. The module also lends
;; its memory to kernels.wasm (imported as ("engine", "memory")) when the
;; bench measures the matrix-vector kernel.
;;
;; Assemble with: wat2wasm -o read.wasm read.wat (read.wasm is committed).
(module
  (memory (export "memory") 1)

  ;; xor_sum folds the bytes [p, p+n) into one i32: n must be a multiple of
  ;; 128 and p of 16. It calls $block once per 64 KiB: V8 first runs wasm in
  ;; its baseline tier and switches a function to optimised code only when
  ;; it is called again, so a single call over a large block would run in
  ;; the baseline tier from start to end.
  (func (export "xor_sum") (param $p i32) (param $n i32) (result i32)
    (local $e i32) (local $acc i32) (local $k i32)
    (local.set $e (i32.add (local.get $p) (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $e)))
        (local.set $k (i32.sub (local.get $e) (local.get $p)))
        (if (i32.gt_u (local.get $k) (i32.const 65536))
          (then (local.set $k (i32.const 65536))))
        (local.set $acc (i32.xor (local.get $acc) (call $block (local.get $p) (local.get $k))))
        (local.set $p (i32.add (local.get $p) (local.get $k)))
        (br $next)))
    (local.get $acc))

  ;; block folds [p, p+n), n a multiple of 128, reading 128 bytes per
  ;; iteration into four independent accumulators.
  (func $block (param $p i32) (param $n i32) (result i32)
    (local $e i32) (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local.set $e (i32.add (local.get $p) (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $e)))
        (local.set $a (v128.xor (local.get $a) (v128.load offset=0 (local.get $p))))
        (local.set $b (v128.xor (local.get $b) (v128.load offset=16 (local.get $p))))
        (local.set $c (v128.xor (local.get $c) (v128.load offset=32 (local.get $p))))
        (local.set $d (v128.xor (local.get $d) (v128.load offset=48 (local.get $p))))
        (local.set $a (v128.xor (local.get $a) (v128.load offset=64 (local.get $p))))
        (local.set $b (v128.xor (local.get $b) (v128.load offset=80 (local.get $p))))
        (local.set $c (v128.xor (local.get $c) (v128.load offset=96 (local.get $p))))
        (local.set $d (v128.xor (local.get $d) (v128.load offset=112 (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 128)))
        (br $next)))
    (i32x4.extract_lane 0
      (v128.xor (v128.xor (local.get $a) (local.get $b))
                (v128.xor (local.get $c) (local.get $d))))))
