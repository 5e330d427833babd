;; threads.wat: the matrix products split among kernel threads.
;;
;; The Go wasm build runs on one thread, so the split lives here, on the
;; kernel side. Every thread (the engine's and N-1 helpers) has its own
;; instance of kernels.wasm and of this module, all on one shared memory.
;;
;; On the engine's thread, this module's element segment replaces the
;; forwarding table's entries of matmul_f16, matmul_f32, matmul_bf16 and
;; matmul_q (the ABI of forward.wat) by dispatchers with the same
;; parameters. A dispatcher writes the job into a control block in shared
;; memory, bumps its sequence number and wakes the helpers
;; (memory.atomic.notify), takes chunks itself, then waits until every
;; chunk is finished. Each helper runs $worker: it waits for the next
;; sequence number (a short spin, then memory.atomic.wait32), takes chunks
;; of that job and runs them with its own imported kernel, and waits again,
;; until the stop flag. (On a helper's thread the element segment fills
;; the helper's own table, which nothing calls.)
;;
;; A chunk is claimed by a compare-exchange of a word that holds the job's
;; sequence number (its low 16 bits) beside the next chunk's index, so a
;; helper that wakes late, after its job ended, claims nothing of the next
;; one, and the engine's thread waits for finished chunks, never for a
;; helper: a helper whose core is busy elsewhere costs nothing but its
;; share, which the others take.
;;
;; # Exactness
;;
;; A chunk is whole rows (one vector) or whole vectors (several): the
;; kernels' result for a row and a vector does not depend on the other rows
;; or vectors of the call, so the output is the same bits at any number of
;; threads (DESIGN.md: threads split rows, never sums).
;;
;; # Shape
;;
;; Chunks are taken from a counter rather than shared out equally, four per
;; thread, so that a thread whose core is busy with another process takes
;; fewer of them instead of the whole product waiting for its share. Row
;; chunks start at multiples of four rows, which keeps the kernels' passes
;; of four rows whole.
;;
;; A product of fewer than $min_work multiply-adds per thread runs on the
;; calling thread alone (setup's third parameter; the hosts measure it).
;;
;; A helper that dies holding a chunk would hang the engine: the dispatcher
;; waits in slices of 100 ms and traps when the finished count has not
;; moved for 2 s, which the host reports as the engine's error. A helper
;; that dies between chunks costs nothing but its share.
;;
;; # The control block (setup's ctrl, 128 bytes, 4-aligned)
;;
;;   0 seq      job sequence number, bumped per job (and by stop)
;;   4 stop     1: helpers return from $worker
;;   8 next     the job's sequence number << 16 | the next chunk to take
;;  12 finished chunks of the current job finished
;;  16 kind     0 matmul_f16, 1 matmul_f32, 2 matmul_bf16, 3 matmul_q
;;  20 chunks   how many chunks the job has
;;  24 out, 28 w, 32 x (xq), 36 rows, 40 cols, 44 n, 48 xd, 52 xs,
;;  56 xsum, 60 qt, 64 rowbytes (bytes of a row of w)
;;  68 helpers  how many helpers run $worker
(module
  (type $mm (func (param i32 i32 i32 i32 i32 i32)))
  (type $mq (func (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))

  (import "env" "memory" (memory 256 65536 shared))
  (import "simd" "table" (table 15 funcref))
  (import "kernels" "matmul_f16" (func $k_f16 (type $mm)))
  (import "kernels" "matmul_f32" (func $k_f32 (type $mm)))
  (import "kernels" "matmul_bf16" (func $k_bf16 (type $mm)))
  (import "kernels" "matmul_q" (func $k_q (type $mq)))

  ;; The table entries of the ABI of forward.wat.
  (elem (i32.const 0) func $d_f16 $d_f32)
  (elem (i32.const 11) func $d_bf16)
  (elem (i32.const 13) func $d_q)

  (export "setup" (func $setup))
  (export "stop" (func $stop))
  (export "worker" (func $worker))
  (export "matmul_f16" (func $d_f16))
  (export "matmul_f32" (func $d_f32))
  (export "matmul_bf16" (func $d_bf16))
  (export "matmul_q" (func $d_q))

  ;; The engine thread's control block, helpers and threshold (setup).
  (global $ctrl (mut i32) (i32.const 0))
  (global $helpers (mut i32) (i32.const 0))
  (global $min_work (mut i64) (i64.const 65536))

  ;; $spin is how many times a thread polls before it sleeps: chosen, not
  ;; tuned, to outlast the engine's work between the products of one
  ;; forward pass and be far shorter than a token's gap. (Measured with
  ;; site/bench/dispatch.js in Node: a round trip costs 0.4-0.6 µs beyond
  ;; the kernel while the helper spins, 10-120 µs once it sleeps.)
  (global $spin i32 (i32.const 20000))

  ;; $setup makes this instance the engine thread's dispatcher: ctrl is a
  ;; zeroed control block, helpers the number of helpers that run $worker
  ;; on it, min_work the multiply-adds per thread below which a product
  ;; stays on one thread.
  (func $setup (param $ctrl i32) (param $helpers i32) (param $min_work i32)
    (global.set $ctrl (local.get $ctrl))
    (global.set $helpers (local.get $helpers))
    (global.set $min_work (i64.extend_i32_u (local.get $min_work)))
    (i32.atomic.store offset=68 (local.get $ctrl) (local.get $helpers)))

  ;; $stop makes every helper return from $worker.
  (func $stop
    (if (i32.eqz (global.get $ctrl)) (then (return)))
    (i32.atomic.store offset=4 (global.get $ctrl) (i32.const 1))
    (drop (i32.atomic.rmw.add (global.get $ctrl) (i32.const 1)))
    (drop (memory.atomic.notify (global.get $ctrl) (i32.const -1))))

  (func $d_f16 (type $mm)
    (call $dispatch (i32.const 0) (local.get 0) (local.get 1) (local.get 2)
      (local.get 3) (local.get 4) (local.get 5) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.mul (local.get 4) (i32.const 2))))
  (func $d_f32 (type $mm)
    (call $dispatch (i32.const 1) (local.get 0) (local.get 1) (local.get 2)
      (local.get 3) (local.get 4) (local.get 5) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.mul (local.get 4) (i32.const 4))))
  (func $d_bf16 (type $mm)
    (call $dispatch (i32.const 2) (local.get 0) (local.get 1) (local.get 2)
      (local.get 3) (local.get 4) (local.get 5) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.mul (local.get 4) (i32.const 2))))
  (func $d_q (type $mq)
    (call $dispatch (i32.const 3) (local.get 0) (local.get 1) (local.get 2)
      (local.get 6) (local.get 7) (local.get 8) (local.get 3) (local.get 4) (local.get 5) (local.get 9)
      (call $rowbytes (local.get 7) (local.get 9))))

  ;; $rowbytes is QType.RowBytes: the bytes of a row of cols weights of
  ;; QType qt (simd/quant.go's table, as no data segment may write to a
  ;; shared memory at every instantiation).
  (func $rowbytes (param $cols i32) (param $qt i32) (result i32)
    (block $k (block $b32
      (block $q6k (block $q5k (block $q4k (block $q51 (block $q50 (block $q41 (block $q40 (block $q80
        (br_table $b32 $q80 $q40 $q41 $q50 $q51 $q4k $q5k $q6k $b32 (local.get $qt)))
        (return (i32.mul (i32.shr_u (local.get $cols) (i32.const 5)) (i32.const 34))))
        (return (i32.mul (i32.shr_u (local.get $cols) (i32.const 5)) (i32.const 18))))
        (return (i32.mul (i32.shr_u (local.get $cols) (i32.const 5)) (i32.const 20))))
        (return (i32.mul (i32.shr_u (local.get $cols) (i32.const 5)) (i32.const 22))))
        (return (i32.mul (i32.shr_u (local.get $cols) (i32.const 5)) (i32.const 24))))
        (return (i32.mul (i32.shr_u (local.get $cols) (i32.const 8)) (i32.const 144))))
        (return (i32.mul (i32.shr_u (local.get $cols) (i32.const 8)) (i32.const 176))))
        (return (i32.mul (i32.shr_u (local.get $cols) (i32.const 8)) (i32.const 210))))
      ;; An unknown qt: the kernel traps on it, on one thread.
      (return (i32.const 0)))
    (i32.const 0))

  ;; $direct runs the product on this thread with its own kernel.
  (func $direct (param $kind i32) (param $out i32) (param $w i32) (param $x i32)
      (param $rows i32) (param $cols i32) (param $n i32)
      (param $xd i32) (param $xs i32) (param $xsum i32) (param $qt i32)
    (block $q (block $bf16 (block $f32 (block $f16
      (br_table $f16 $f32 $bf16 $q (local.get $kind)))
      (return (call $k_f16 (local.get $out) (local.get $w) (local.get $x) (local.get $rows) (local.get $cols) (local.get $n))))
      (return (call $k_f32 (local.get $out) (local.get $w) (local.get $x) (local.get $rows) (local.get $cols) (local.get $n))))
      (return (call $k_bf16 (local.get $out) (local.get $w) (local.get $x) (local.get $rows) (local.get $cols) (local.get $n))))
    (call $k_q (local.get $out) (local.get $w) (local.get $x) (local.get $xd) (local.get $xs)
      (local.get $xsum) (local.get $rows) (local.get $cols) (local.get $n) (local.get $qt)))

  ;; $dispatch runs a product on every thread when it is large enough,
  ;; else on this one. rowbytes is the bytes of a row of w.
  (func $dispatch (param $kind i32) (param $out i32) (param $w i32) (param $x i32)
      (param $rows i32) (param $cols i32) (param $n i32)
      (param $xd i32) (param $xs i32) (param $xsum i32) (param $qt i32) (param $rowbytes i32)
    (local $c i32) (local $threads i32) (local $chunks i32) (local $seen i32) (local $stalls i32) (local $i i32) (local $seq i32)
    (local.set $c (global.get $ctrl))
    (local.set $threads (i32.add (global.get $helpers) (i32.const 1)))
    ;; Chunks of four rows (one vector) or of vectors (several), four per
    ;; thread at most; a product without two threads' work stays here.
    (if (i32.eq (local.get $n) (i32.const 1))
      (then (local.set $chunks (i32.shr_u (local.get $rows) (i32.const 2))))
      (else (local.set $chunks (local.get $n))))
    (local.set $chunks (call $min (local.get $chunks) (i32.shl (local.get $threads) (i32.const 2))))
    (if (i32.or (i32.or (i32.eqz (global.get $helpers)) (i32.lt_u (local.get $chunks) (i32.const 2)))
          (i64.lt_u
            (i64.mul (i64.mul (i64.extend_i32_u (local.get $rows)) (i64.extend_i32_u (local.get $cols)))
              (i64.extend_i32_u (local.get $n)))
            (i64.shl (global.get $min_work) (i64.const 1))))
      (then
        (call $direct (local.get $kind) (local.get $out) (local.get $w) (local.get $x) (local.get $rows)
          (local.get $cols) (local.get $n) (local.get $xd) (local.get $xs) (local.get $xsum) (local.get $qt))
        (return)))
    ;; The job, then the counters, then the sequence number that publishes
    ;; them (every atomic access is sequentially consistent).
    (i32.store offset=16 (local.get $c) (local.get $kind))
    (i32.store offset=20 (local.get $c) (local.get $chunks))
    (i32.store offset=24 (local.get $c) (local.get $out))
    (i32.store offset=28 (local.get $c) (local.get $w))
    (i32.store offset=32 (local.get $c) (local.get $x))
    (i32.store offset=36 (local.get $c) (local.get $rows))
    (i32.store offset=40 (local.get $c) (local.get $cols))
    (i32.store offset=44 (local.get $c) (local.get $n))
    (i32.store offset=48 (local.get $c) (local.get $xd))
    (i32.store offset=52 (local.get $c) (local.get $xs))
    (i32.store offset=56 (local.get $c) (local.get $xsum))
    (i32.store offset=60 (local.get $c) (local.get $qt))
    (i32.store offset=64 (local.get $c) (local.get $rowbytes))
    (i32.atomic.store offset=12 (local.get $c) (i32.const 0))
    (local.set $seq (i32.add (i32.atomic.load (local.get $c)) (i32.const 1)))
    (i32.atomic.store offset=8 (local.get $c) (i32.shl (local.get $seq) (i32.const 16)))
    (i32.atomic.store (local.get $c) (local.get $seq))
    (drop (memory.atomic.notify (local.get $c) (global.get $helpers)))
    (call $work (local.get $c) (local.get $seq))
    ;; Wait for every chunk: spin, then sleep in slices of 100 ms; trap
    ;; when the count has not moved for 20 slices (a helper died in one).
    (local.set $seen (i32.const -1))
    (block $all
      (loop $poll
        (br_if $all (i32.eq (i32.atomic.load offset=12 (local.get $c)) (local.get $chunks)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $poll (i32.lt_u (local.get $i) (global.get $spin))))
      (loop $sleep
        (local.set $i (i32.atomic.load offset=12 (local.get $c)))
        (br_if $all (i32.eq (local.get $i) (local.get $chunks)))
        (if (i32.eq (local.get $i) (local.get $seen))
          (then
            (local.set $stalls (i32.add (local.get $stalls) (i32.const 1)))
            (if (i32.ge_u (local.get $stalls) (i32.const 20)) (then (unreachable))))
          (else (local.set $seen (local.get $i)) (local.set $stalls (i32.const 0))))
        (drop (memory.atomic.wait32 (i32.add (local.get $c) (i32.const 12)) (local.get $i) (i64.const 100000000)))
        (br $sleep))))

  ;; $work takes chunks of job seq in the control block at c and runs them
  ;; with this thread's kernels until none of that job is left.
  (func $work (param $c i32) (param $seq i32)
    (local $i i32) (local $chunks i32) (local $kind i32) (local $rows i32) (local $cols i32) (local $n i32)
    (local $a i32) (local $b i32) (local $out i32) (local $w i32) (local $x i32)
    (local $xd i32) (local $xs i32) (local $xsum i32) (local $nb4 i32) (local $word i32)
    (loop $next
      ;; Claim chunk i of job seq, or return when the job has none left
      ;; (or is another's).
      (local.set $word (i32.atomic.load offset=8 (local.get $c)))
      (if (i32.ne (i32.shr_u (local.get $word) (i32.const 16)) (i32.and (local.get $seq) (i32.const 0xffff)))
        (then (return)))
      (local.set $i (i32.and (local.get $word) (i32.const 0xffff)))
      (local.set $chunks (i32.load offset=20 (local.get $c)))
      (if (i32.ge_u (local.get $i) (local.get $chunks)) (then (return)))
      (br_if $next (i32.ne (i32.atomic.rmw.cmpxchg offset=8 (local.get $c) (local.get $word)
        (i32.add (local.get $word) (i32.const 1))) (local.get $word)))
      (local.set $kind (i32.load offset=16 (local.get $c)))
      (local.set $rows (i32.load offset=36 (local.get $c)))
      (local.set $cols (i32.load offset=40 (local.get $c)))
      (local.set $n (i32.load offset=44 (local.get $c)))
      (local.set $out (i32.load offset=24 (local.get $c)))
      (local.set $w (i32.load offset=28 (local.get $c)))
      (local.set $x (i32.load offset=32 (local.get $c)))
      (local.set $xd (i32.load offset=48 (local.get $c)))
      (local.set $xs (i32.load offset=52 (local.get $c)))
      (local.set $xsum (i32.load offset=56 (local.get $c)))
      (if (i32.eq (local.get $n) (i32.const 1))
        (then
          ;; Rows [a, b): the chunk's rows of w and out.
          (local.set $a (call $bound (local.get $i) (local.get $chunks) (local.get $rows) (i32.const -4)))
          (local.set $b (call $bound (i32.add (local.get $i) (i32.const 1)) (local.get $chunks) (local.get $rows) (i32.const -4)))
          (call $direct (local.get $kind)
            (i32.add (local.get $out) (i32.shl (local.get $a) (i32.const 2)))
            (i32.add (local.get $w) (i32.mul (local.get $a) (i32.load offset=64 (local.get $c))))
            (local.get $x) (i32.sub (local.get $b) (local.get $a)) (local.get $cols) (i32.const 1)
            (local.get $xd) (local.get $xs) (local.get $xsum) (i32.load offset=60 (local.get $c))))
        (else
          ;; Vectors [a, b): the chunk's vectors of x (or of its Q8
          ;; blocks: cols values and cols/32 of d, s and sum a vector) and
          ;; of out.
          (local.set $a (call $bound (local.get $i) (local.get $chunks) (local.get $n) (i32.const -1)))
          (local.set $b (call $bound (i32.add (local.get $i) (i32.const 1)) (local.get $chunks) (local.get $n) (i32.const -1)))
          (local.set $nb4 (i32.mul (local.get $a) (i32.shr_u (local.get $cols) (i32.const 3)))) ;; a·cols/32·4
          (if (i32.eq (local.get $kind) (i32.const 3))
            (then (local.set $x (i32.add (local.get $x) (i32.mul (local.get $a) (local.get $cols)))))
            (else (local.set $x (i32.add (local.get $x) (i32.shl (i32.mul (local.get $a) (local.get $cols)) (i32.const 2))))))
          (call $direct (local.get $kind)
            (i32.add (local.get $out) (i32.shl (i32.mul (local.get $a) (local.get $rows)) (i32.const 2)))
            (local.get $w) (local.get $x) (local.get $rows) (local.get $cols) (i32.sub (local.get $b) (local.get $a))
            (i32.add (local.get $xd) (local.get $nb4)) (i32.add (local.get $xs) (local.get $nb4))
            (i32.add (local.get $xsum) (local.get $nb4)) (i32.load offset=60 (local.get $c)))))
      ;; The last chunk to finish wakes the engine's thread if it sleeps.
      (if (i32.eq (i32.add (i32.atomic.rmw.add offset=12 (local.get $c) (i32.const 1)) (i32.const 1)) (local.get $chunks))
        (then (drop (memory.atomic.notify (i32.add (local.get $c) (i32.const 12)) (i32.const 1)))))
      (br $next)))

  ;; $bound is where chunk i of chunks over [0, total) starts, its bits
  ;; under mask kept (-4: a multiple of four); chunk chunks starts at total.
  (func $bound (param $i i32) (param $chunks i32) (param $total i32) (param $mask i32) (result i32)
    (if (i32.eq (local.get $i) (local.get $chunks)) (then (return (local.get $total))))
    (i32.and (local.get $mask)
      (i32.wrap_i64 (i64.div_u (i64.mul (i64.extend_i32_u (local.get $i)) (i64.extend_i32_u (local.get $total)))
        (i64.extend_i32_u (local.get $chunks))))))

  (func $min (param $a i32) (param $b i32) (result i32)
    (select (local.get $a) (local.get $b) (i32.lt_u (local.get $a) (local.get $b))))

  ;; $worker is a helper's loop on the control block at ctrl: wait for the
  ;; next job, take chunks of it, until the stop flag.
  (func $worker (param $ctrl i32) (param $id i32)
    (local $last i32) (local $s i32) (local $i i32)
    (loop $job
      ;; Spin, then sleep, until the sequence number moves.
      (local.set $i (i32.const 0))
      (block $moved
        (loop $poll
          (local.set $s (i32.atomic.load (local.get $ctrl)))
          (br_if $moved (i32.ne (local.get $s) (local.get $last)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $poll (i32.lt_u (local.get $i) (global.get $spin))))
        (loop $sleep
          (drop (memory.atomic.wait32 (local.get $ctrl) (local.get $last) (i64.const -1)))
          (local.set $s (i32.atomic.load (local.get $ctrl)))
          (br_if $sleep (i32.eq (local.get $s) (local.get $last)))))
      (local.set $last (local.get $s))
      (if (i32.atomic.load offset=4 (local.get $ctrl)) (then (return)))
      (call $work (local.get $ctrl) (local.get $s))
      (br $job)))
)
