;; forward.wat: the forwarding module between the engine and kernels.wasm.
;;
;; The engine imports its kernels from module "simd" and must be
;; instantiated before kernels.wasm, which imports the engine's memory. This
;; module breaks the circle: it owns the table that kernels.wasm fills when it
;; is instantiated, and each export calls the table entry at its fixed index.
;; The names, signatures and indices are the ABI of kernels_wasm.go.
(module
  (type $mm (func (param i32 i32 i32 i32 i32 i32)))
  (type $dot (func (param i32 i32 i32) (result f32)))
  (type $axpy (func (param i32 f32 i32 i32)))
  (type $p3 (func (param i32 i32 i32)))
  (type $rms (func (param i32 i32 i32 i32 f32)))
  (type $p2 (func (param i32 i32)))
  (type $flush (func (param i32 i32) (result i32)))

  (table (export "table") 11 funcref)

  (func (export "matmul_f16") (type $mm)
    (call_indirect (type $mm) (local.get 0) (local.get 1) (local.get 2)
      (local.get 3) (local.get 4) (local.get 5) (i32.const 0)))
  (func (export "matmul_f32") (type $mm)
    (call_indirect (type $mm) (local.get 0) (local.get 1) (local.get 2)
      (local.get 3) (local.get 4) (local.get 5) (i32.const 1)))
  (func (export "dot") (type $dot)
    (call_indirect (type $dot) (local.get 0) (local.get 1) (local.get 2) (i32.const 2)))
  (func (export "axpy") (type $axpy)
    (call_indirect (type $axpy) (local.get 0) (local.get 1) (local.get 2) (local.get 3) (i32.const 3)))
  (func (export "add") (type $p3)
    (call_indirect (type $p3) (local.get 0) (local.get 1) (local.get 2) (i32.const 4)))
  (func (export "rmsnorm") (type $rms)
    (call_indirect (type $rms) (local.get 0) (local.get 1) (local.get 2)
      (local.get 3) (local.get 4) (i32.const 5)))
  (func (export "softmax") (type $p2)
    (call_indirect (type $p2) (local.get 0) (local.get 1) (i32.const 6)))
  (func (export "silu_mul") (type $p3)
    (call_indirect (type $p3) (local.get 0) (local.get 1) (local.get 2) (i32.const 7)))
  (func (export "rope") (type $mm)
    (call_indirect (type $mm) (local.get 0) (local.get 1) (local.get 2)
      (local.get 3) (local.get 4) (local.get 5) (i32.const 8)))
  (func (export "widen_f16") (type $p3)
    (call_indirect (type $p3) (local.get 0) (local.get 1) (local.get 2) (i32.const 9)))
  (func (export "flush_f16") (type $flush)
    (call_indirect (type $flush) (local.get 0) (local.get 1) (i32.const 10)))
)
