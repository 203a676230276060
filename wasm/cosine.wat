;; Exact cosine scan for `whylesion search` (src/search/cosine-kernel.ts): rows of f32 against one query, in f32x4 SIMD.
;; Per row: dot = Σ x[j]·q[j] and sq = Σ x[j]² over four lanes and two interleaved accumulators each (j mod 8), then
;; combined lane by lane; score = dot / sqrt(sq) (the query is unit-length), or 0 for an all-zero row.
;; Pointers are byte offsets into the exported memory; the caller lays out the arrays and grows it.
(module
  (memory (export "memory") 1)

  ;; out[r] = cos(x_r, q) for r < n: x f32 [n, d] at $x, q f32 [d] at $q (unit length), out f32 [n] at $out.
  (func (export "cosineRows") (param $x i32) (param $n i32) (param $d i32) (param $q i32) (param $out i32)
    (local $row_end i32) (local $end8 i32) (local $tail i32) (local $qp i32)
    (local $dot0 v128) (local $dot1 v128) (local $sq0 v128) (local $sq1 v128) (local $a v128) (local $b v128)
    (local $dot f32) (local $sq f32) (local $v f32)
    (local.set $row_end (i32.add (local.get $x) (i32.mul (local.get $n) (i32.shl (local.get $d) (i32.const 2)))))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $x) (local.get $row_end)))
        (local.set $end8 (i32.add (local.get $x) (i32.shl (i32.and (local.get $d) (i32.const -8)) (i32.const 2))))
        (local.set $tail (i32.add (local.get $x) (i32.shl (local.get $d) (i32.const 2))))
        (local.set $qp (local.get $q))
        (local.set $dot0 (v128.const i32x4 0 0 0 0))
        (local.set $dot1 (v128.const i32x4 0 0 0 0))
        (local.set $sq0 (v128.const i32x4 0 0 0 0))
        (local.set $sq1 (v128.const i32x4 0 0 0 0))
        (block $eights_done
          (loop $eight
            (br_if $eights_done (i32.ge_u (local.get $x) (local.get $end8)))
            (local.set $a (v128.load (local.get $x)))
            (local.set $b (v128.load offset=16 (local.get $x)))
            (local.set $dot0 (f32x4.add (local.get $dot0) (f32x4.mul (local.get $a) (v128.load (local.get $qp)))))
            (local.set $dot1 (f32x4.add (local.get $dot1) (f32x4.mul (local.get $b) (v128.load offset=16 (local.get $qp)))))
            (local.set $sq0 (f32x4.add (local.get $sq0) (f32x4.mul (local.get $a) (local.get $a))))
            (local.set $sq1 (f32x4.add (local.get $sq1) (f32x4.mul (local.get $b) (local.get $b))))
            (local.set $x (i32.add (local.get $x) (i32.const 32)))
            (local.set $qp (i32.add (local.get $qp) (i32.const 32)))
            (br $eight)))
        (local.set $dot0 (f32x4.add (local.get $dot0) (local.get $dot1)))
        (local.set $sq0 (f32x4.add (local.get $sq0) (local.get $sq1)))
        (local.set $dot (f32.add
          (f32.add (f32x4.extract_lane 0 (local.get $dot0)) (f32x4.extract_lane 1 (local.get $dot0)))
          (f32.add (f32x4.extract_lane 2 (local.get $dot0)) (f32x4.extract_lane 3 (local.get $dot0)))))
        (local.set $sq (f32.add
          (f32.add (f32x4.extract_lane 0 (local.get $sq0)) (f32x4.extract_lane 1 (local.get $sq0)))
          (f32.add (f32x4.extract_lane 2 (local.get $sq0)) (f32x4.extract_lane 3 (local.get $sq0)))))
        (block $tail_done
          (loop $one
            (br_if $tail_done (i32.ge_u (local.get $x) (local.get $tail)))
            (local.set $v (f32.load (local.get $x)))
            (local.set $dot (f32.add (local.get $dot) (f32.mul (local.get $v) (f32.load (local.get $qp)))))
            (local.set $sq (f32.add (local.get $sq) (f32.mul (local.get $v) (local.get $v))))
            (local.set $x (i32.add (local.get $x) (i32.const 4)))
            (local.set $qp (i32.add (local.get $qp) (i32.const 4)))
            (br $one)))
        (f32.store (local.get $out)
          (select (f32.div (local.get $dot) (f32.sqrt (local.get $sq))) (f32.const 0) (f32.gt (local.get $sq) (f32.const 0))))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (br $row))))
)
