;; The load-time NaN/Inf check of weights (src/model/finite-check.ts): finds the first element whose exponent
;; bits are all ones, sixteen f32 (or thirty-two f16) per step in i32x4 / i16x8 SIMD. It runs over the staging
;; buffer in place (the staging buffer is this module's memory), so checking costs no copy.
;; Pointers are byte offsets into the exported memory; the caller grows it.
(module
  (memory (export "memory") 1)

  ;; Index of the first f32 in [ptr, ptr + 4n) that is NaN or infinite, or -1.
  (func (export "firstNonFiniteF32") (param $ptr i32) (param $n i32) (result i32)
    (local $p i32) (local $end i32) (local $mask v128)
    (local.set $mask (i32x4.splat (i32.const 0x7f800000)))
    (local.set $p (local.get $ptr))
    (local.set $end (i32.add (local.get $ptr) (i32.shl (i32.and (local.get $n) (i32.const -16)) (i32.const 2))))
    (block $hit
      (loop $blocks
        (br_if $hit (i32.ge_u (local.get $p) (local.get $end)))
        (br_if $hit (v128.any_true
          (v128.or
            (v128.or
              (i32x4.eq (v128.and (v128.load offset=0 (local.get $p)) (local.get $mask)) (local.get $mask))
              (i32x4.eq (v128.and (v128.load offset=16 (local.get $p)) (local.get $mask)) (local.get $mask)))
            (v128.or
              (i32x4.eq (v128.and (v128.load offset=32 (local.get $p)) (local.get $mask)) (local.get $mask))
              (i32x4.eq (v128.and (v128.load offset=48 (local.get $p)) (local.get $mask)) (local.get $mask))))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $blocks)))
    ;; One element at a time through the block that hit and the tail.
    (local.set $end (i32.add (local.get $ptr) (i32.shl (local.get $n) (i32.const 2))))
    (block $none
      (loop $scan
        (br_if $none (i32.ge_u (local.get $p) (local.get $end)))
        (if (i32.eq (i32.and (i32.load (local.get $p)) (i32.const 0x7f800000)) (i32.const 0x7f800000))
          (then (return (i32.shr_u (i32.sub (local.get $p) (local.get $ptr)) (i32.const 2)))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $scan)))
    (i32.const -1))

  ;; Index of the first f16 in [ptr, ptr + 2n) that is NaN or infinite, or -1.
  (func (export "firstNonFiniteF16") (param $ptr i32) (param $n i32) (result i32)
    (local $p i32) (local $end i32) (local $mask v128)
    (local.set $mask (i16x8.splat (i32.const 0x7c00)))
    (local.set $p (local.get $ptr))
    (local.set $end (i32.add (local.get $ptr) (i32.shl (i32.and (local.get $n) (i32.const -32)) (i32.const 1))))
    (block $hit
      (loop $blocks
        (br_if $hit (i32.ge_u (local.get $p) (local.get $end)))
        (br_if $hit (v128.any_true
          (v128.or
            (v128.or
              (i16x8.eq (v128.and (v128.load offset=0 (local.get $p)) (local.get $mask)) (local.get $mask))
              (i16x8.eq (v128.and (v128.load offset=16 (local.get $p)) (local.get $mask)) (local.get $mask)))
            (v128.or
              (i16x8.eq (v128.and (v128.load offset=32 (local.get $p)) (local.get $mask)) (local.get $mask))
              (i16x8.eq (v128.and (v128.load offset=48 (local.get $p)) (local.get $mask)) (local.get $mask))))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $blocks)))
    (local.set $end (i32.add (local.get $ptr) (i32.shl (local.get $n) (i32.const 1))))
    (block $none
      (loop $scan
        (br_if $none (i32.ge_u (local.get $p) (local.get $end)))
        (if (i32.eq (i32.and (i32.load16_u (local.get $p)) (i32.const 0x7c00)) (i32.const 0x7c00))
          (then (return (i32.shr_u (i32.sub (local.get $p) (local.get $ptr)) (i32.const 1)))))
        (local.set $p (i32.add (local.get $p) (i32.const 2)))
        (br $scan)))
    (i32.const -1))
)
