;; Probe-training kernels (src/eval/linear-kernel.ts): f32 feature rows against f64 parameters, in f64x2 SIMD.
;; Every sum runs in the same order as the JavaScript reference kernel (four running sums j mod 4, combined
;; ((s0 + s1) + s2) + s3; gradients accumulated row after row), so both give bit-identical results.
;; All pointers are byte offsets into the exported memory; the caller lays the arrays out and grows it.
(module
  (memory (export "memory") 1)

  ;; Σ x[j] · w[j], j < d: x f32 at $x, w f64 at $w.
  (func $dot (param $x i32) (param $w i32) (param $d i32) (result f64)
    (local $lo v128) (local $hi v128) (local $xv v128) (local $end i32) (local $tail i32) (local $s0 f64)
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $d) (i32.const -4)) (i32.const 2))))
    (local.set $tail (i32.add (local.get $x) (i32.shl (local.get $d) (i32.const 2))))
    (block $done
      (loop $quad
        (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $xv (v128.load (local.get $x)))
        (local.set $lo (f64x2.add (local.get $lo)
          (f64x2.mul (f64x2.promote_low_f32x4 (local.get $xv)) (v128.load (local.get $w)))))
        (local.set $hi (f64x2.add (local.get $hi)
          (f64x2.mul
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xv) (local.get $xv)))
            (v128.load offset=16 (local.get $w)))))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (local.set $w (i32.add (local.get $w) (i32.const 32)))
        (br $quad)))
    (local.set $s0 (f64x2.extract_lane 0 (local.get $lo)))
    (block $done
      (loop $one
        (br_if $done (i32.ge_u (local.get $x) (local.get $tail)))
        (local.set $s0 (f64.add (local.get $s0) (f64.mul (f64.promote_f32 (f32.load (local.get $x))) (f64.load (local.get $w)))))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $w (i32.add (local.get $w) (i32.const 8)))
        (br $one)))
    (f64.add (f64.add (f64.add (local.get $s0) (f64x2.extract_lane 1 (local.get $lo)))
      (f64x2.extract_lane 0 (local.get $hi))) (f64x2.extract_lane 1 (local.get $hi))))

  ;; out[j] += g · x[j], j < d: out f64 at $out, x f32 at $x.
  (func $addScaled (param $out i32) (param $g f64) (param $x i32) (param $d i32)
    (local $gv v128) (local $xv v128) (local $end i32) (local $tail i32)
    (local.set $gv (f64x2.splat (local.get $g)))
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $d) (i32.const -4)) (i32.const 2))))
    (local.set $tail (i32.add (local.get $x) (i32.shl (local.get $d) (i32.const 2))))
    (block $done
      (loop $quad
        (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $xv (v128.load (local.get $x)))
        (v128.store (local.get $out) (f64x2.add (v128.load (local.get $out))
          (f64x2.mul (local.get $gv) (f64x2.promote_low_f32x4 (local.get $xv)))))
        (v128.store offset=16 (local.get $out) (f64x2.add (v128.load offset=16 (local.get $out))
          (f64x2.mul (local.get $gv)
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xv) (local.get $xv))))))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 32)))
        (br $quad)))
    (block $done
      (loop $one
        (br_if $done (i32.ge_u (local.get $x) (local.get $tail)))
        (f64.store (local.get $out) (f64.add (f64.load (local.get $out))
          (f64.mul (local.get $g) (f64.promote_f32 (f32.load (local.get $x))))))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $out (i32.add (local.get $out) (i32.const 8)))
        (br $one))))

;; out[c] = bias[c] + x · w[c] for the four rows w[c] = $w + c·d (f64), x loaded once: eight independent sums
  ;; (each in the order $dot keeps), so the adds overlap instead of waiting on one another.
  (func $score4 (param $x i32) (param $w i32) (param $d i32) (param $bias i32) (param $out i32)
    (local $a0 v128) (local $b0 v128) (local $a1 v128) (local $b1 v128) (local $a2 v128) (local $b2 v128)
    (local $a3 v128) (local $b3 v128) (local $xv v128) (local $lo v128) (local $hi v128)
    (local $w1 i32) (local $w2 i32) (local $w3 i32) (local $end i32) (local $tail i32)
    (local $s0 f64) (local $s1 f64) (local $s2 f64) (local $s3 f64) (local $xj f64)
    (local.set $w1 (i32.shl (local.get $d) (i32.const 3)))
    (local.set $w2 (i32.shl (local.get $w1) (i32.const 1)))
    (local.set $w3 (i32.add (local.get $w2) (local.get $w1)))
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $d) (i32.const -4)) (i32.const 2))))
    (local.set $tail (i32.add (local.get $x) (i32.shl (local.get $d) (i32.const 2))))
    (block $done
      (loop $quad
        (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $xv (v128.load (local.get $x)))
        (local.set $lo (f64x2.promote_low_f32x4 (local.get $xv)))
        (local.set $hi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xv) (local.get $xv))))
        (local.set $a0 (f64x2.add (local.get $a0) (f64x2.mul (local.get $lo) (v128.load (local.get $w)))))
        (local.set $b0 (f64x2.add (local.get $b0) (f64x2.mul (local.get $hi) (v128.load offset=16 (local.get $w)))))
        (local.set $a1 (f64x2.add (local.get $a1) (f64x2.mul (local.get $lo) (v128.load (i32.add (local.get $w) (local.get $w1))))))
        (local.set $b1 (f64x2.add (local.get $b1) (f64x2.mul (local.get $hi) (v128.load offset=16 (i32.add (local.get $w) (local.get $w1))))))
        (local.set $a2 (f64x2.add (local.get $a2) (f64x2.mul (local.get $lo) (v128.load (i32.add (local.get $w) (local.get $w2))))))
        (local.set $b2 (f64x2.add (local.get $b2) (f64x2.mul (local.get $hi) (v128.load offset=16 (i32.add (local.get $w) (local.get $w2))))))
        (local.set $a3 (f64x2.add (local.get $a3) (f64x2.mul (local.get $lo) (v128.load (i32.add (local.get $w) (local.get $w3))))))
        (local.set $b3 (f64x2.add (local.get $b3) (f64x2.mul (local.get $hi) (v128.load offset=16 (i32.add (local.get $w) (local.get $w3))))))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (local.set $w (i32.add (local.get $w) (i32.const 32)))
        (br $quad)))
    (local.set $s0 (f64x2.extract_lane 0 (local.get $a0)))
    (local.set $s1 (f64x2.extract_lane 0 (local.get $a1)))
    (local.set $s2 (f64x2.extract_lane 0 (local.get $a2)))
    (local.set $s3 (f64x2.extract_lane 0 (local.get $a3)))
    (block $done
      (loop $one
        (br_if $done (i32.ge_u (local.get $x) (local.get $tail)))
        (local.set $xj (f64.promote_f32 (f32.load (local.get $x))))
        (local.set $s0 (f64.add (local.get $s0) (f64.mul (local.get $xj) (f64.load (local.get $w)))))
        (local.set $s1 (f64.add (local.get $s1) (f64.mul (local.get $xj) (f64.load (i32.add (local.get $w) (local.get $w1))))))
        (local.set $s2 (f64.add (local.get $s2) (f64.mul (local.get $xj) (f64.load (i32.add (local.get $w) (local.get $w2))))))
        (local.set $s3 (f64.add (local.get $s3) (f64.mul (local.get $xj) (f64.load (i32.add (local.get $w) (local.get $w3))))))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $w (i32.add (local.get $w) (i32.const 8)))
        (br $one)))
    (f64.store (local.get $out) (f64.add (f64.load (local.get $bias)) (f64.add (f64.add (f64.add (local.get $s0)
      (f64x2.extract_lane 1 (local.get $a0))) (f64x2.extract_lane 0 (local.get $b0))) (f64x2.extract_lane 1 (local.get $b0)))))
    (f64.store offset=8 (local.get $out) (f64.add (f64.load offset=8 (local.get $bias)) (f64.add (f64.add (f64.add (local.get $s1)
      (f64x2.extract_lane 1 (local.get $a1))) (f64x2.extract_lane 0 (local.get $b1))) (f64x2.extract_lane 1 (local.get $b1)))))
    (f64.store offset=16 (local.get $out) (f64.add (f64.load offset=16 (local.get $bias)) (f64.add (f64.add (f64.add (local.get $s2)
      (f64x2.extract_lane 1 (local.get $a2))) (f64x2.extract_lane 0 (local.get $b2))) (f64x2.extract_lane 1 (local.get $b2)))))
    (f64.store offset=24 (local.get $out) (f64.add (f64.load offset=24 (local.get $bias)) (f64.add (f64.add (f64.add (local.get $s3)
      (f64x2.extract_lane 1 (local.get $a3))) (f64x2.extract_lane 0 (local.get $b3))) (f64x2.extract_lane 1 (local.get $b3))))))

  ;; out[j] += g0·x0[j], then += g1·x1[j], += g2·x2[j], += g3·x3[j] (the rows' order), j < d: out read and written once.
  (func $addScaled4 (param $out i32) (param $g0 f64) (param $g1 f64) (param $g2 f64) (param $g3 f64)
    (param $x0 i32) (param $x1 i32) (param $x2 i32) (param $x3 i32) (param $d i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128) (local $lo v128) (local $hi v128) (local $xv v128)
    (local $j i32) (local $end i32) (local $tail i32) (local $o f64)
    (local.set $v0 (f64x2.splat (local.get $g0)))
    (local.set $v1 (f64x2.splat (local.get $g1)))
    (local.set $v2 (f64x2.splat (local.get $g2)))
    (local.set $v3 (f64x2.splat (local.get $g3)))
    (local.set $end (i32.shl (i32.and (local.get $d) (i32.const -4)) (i32.const 2)))
    (local.set $tail (i32.shl (local.get $d) (i32.const 2)))
    (block $done
      (loop $quad
        (br_if $done (i32.ge_u (local.get $j) (local.get $end)))
        (local.set $lo (v128.load (local.get $out)))
        (local.set $hi (v128.load offset=16 (local.get $out)))
        (local.set $xv (v128.load (i32.add (local.get $x0) (local.get $j))))
        (local.set $lo (f64x2.add (local.get $lo) (f64x2.mul (local.get $v0) (f64x2.promote_low_f32x4 (local.get $xv)))))
        (local.set $hi (f64x2.add (local.get $hi) (f64x2.mul (local.get $v0)
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xv) (local.get $xv))))))
        (local.set $xv (v128.load (i32.add (local.get $x1) (local.get $j))))
        (local.set $lo (f64x2.add (local.get $lo) (f64x2.mul (local.get $v1) (f64x2.promote_low_f32x4 (local.get $xv)))))
        (local.set $hi (f64x2.add (local.get $hi) (f64x2.mul (local.get $v1)
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xv) (local.get $xv))))))
        (local.set $xv (v128.load (i32.add (local.get $x2) (local.get $j))))
        (local.set $lo (f64x2.add (local.get $lo) (f64x2.mul (local.get $v2) (f64x2.promote_low_f32x4 (local.get $xv)))))
        (local.set $hi (f64x2.add (local.get $hi) (f64x2.mul (local.get $v2)
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xv) (local.get $xv))))))
        (local.set $xv (v128.load (i32.add (local.get $x3) (local.get $j))))
        (local.set $lo (f64x2.add (local.get $lo) (f64x2.mul (local.get $v3) (f64x2.promote_low_f32x4 (local.get $xv)))))
        (local.set $hi (f64x2.add (local.get $hi) (f64x2.mul (local.get $v3)
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xv) (local.get $xv))))))
        (v128.store (local.get $out) (local.get $lo))
        (v128.store offset=16 (local.get $out) (local.get $hi))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (local.set $out (i32.add (local.get $out) (i32.const 32)))
        (br $quad)))
    (block $done
      (loop $one
        (br_if $done (i32.ge_u (local.get $j) (local.get $tail)))
        (local.set $o (f64.load (local.get $out)))
        (local.set $o (f64.add (local.get $o) (f64.mul (local.get $g0) (f64.promote_f32 (f32.load (i32.add (local.get $x0) (local.get $j)))))))
        (local.set $o (f64.add (local.get $o) (f64.mul (local.get $g1) (f64.promote_f32 (f32.load (i32.add (local.get $x1) (local.get $j)))))))
        (local.set $o (f64.add (local.get $o) (f64.mul (local.get $g2) (f64.promote_f32 (f32.load (i32.add (local.get $x2) (local.get $j)))))))
        (local.set $o (f64.add (local.get $o) (f64.mul (local.get $g3) (f64.promote_f32 (f32.load (i32.add (local.get $x3) (local.get $j)))))))
        (f64.store (local.get $out) (local.get $o))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (local.set $out (i32.add (local.get $out) (i32.const 8)))
        (br $one))))

  ;; The byte address of feature row rows[r] of the f32 dataset at $x.
  (func $rowAt (param $x i32) (param $rows i32) (param $r i32) (param $d i32) (result i32)
    (i32.add (local.get $x)
      (i32.shl (i32.mul (i32.load (i32.add (local.get $rows) (i32.shl (local.get $r) (i32.const 2)))) (local.get $d)) (i32.const 2))))

  ;; scores[r·K + k] = bias[k] + x[rows[r]] · weight[k] for r < count; weight [K, d] then bias [K] at $params.
  ;; Classes four at a time ($score4); fewer than four classes one by one.
  (func (export "scoreRows") (param $x i32) (param $rows i32) (param $count i32) (param $d i32) (param $K i32)
    (param $params i32) (param $scores i32)
    (local $r i32) (local $k i32) (local $row i32) (local $bias i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $d) (i32.const 3)))
    (local.set $bias (i32.add (local.get $params) (i32.mul (local.get $K) (local.get $rowBytes))))
    (block $rowsDone
      (loop $eachRow
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $count)))
        (local.set $row (call $rowAt (local.get $x) (local.get $rows) (local.get $r) (local.get $d)))
        (local.set $k (i32.const 0))
        (block $blocksDone
          (loop $eachBlock
            (br_if $blocksDone (i32.gt_u (i32.add (local.get $k) (i32.const 4)) (local.get $K)))
            (call $score4 (local.get $row) (i32.add (local.get $params) (i32.mul (local.get $k) (local.get $rowBytes)))
              (local.get $d) (i32.add (local.get $bias) (i32.shl (local.get $k) (i32.const 3))) (local.get $scores))
            (local.set $scores (i32.add (local.get $scores) (i32.const 32)))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $eachBlock)))
        ;; 1-3 classes left of four or more: one more block ending at the last class (recomputing a few of the
        ;; scores just written, to the same bits) rather than the slower one-class loop.
        (if (i32.and (i32.lt_u (local.get $k) (local.get $K)) (i32.ge_u (local.get $K) (i32.const 4)))
          (then
            (local.set $scores (i32.sub (local.get $scores) (i32.shl (i32.sub (local.get $k) (i32.sub (local.get $K) (i32.const 4))) (i32.const 3))))
            (local.set $k (i32.sub (local.get $K) (i32.const 4)))
            (call $score4 (local.get $row) (i32.add (local.get $params) (i32.mul (local.get $k) (local.get $rowBytes)))
              (local.get $d) (i32.add (local.get $bias) (i32.shl (local.get $k) (i32.const 3))) (local.get $scores))
            (local.set $scores (i32.add (local.get $scores) (i32.const 32)))
            (local.set $k (local.get $K))))
        (block $classesDone
          (loop $eachClass
            (br_if $classesDone (i32.ge_u (local.get $k) (local.get $K)))
            (f64.store (local.get $scores)
              (f64.add (f64.load (i32.add (local.get $bias) (i32.shl (local.get $k) (i32.const 3))))
                (call $dot (local.get $row) (i32.add (local.get $params) (i32.mul (local.get $k) (local.get $rowBytes))) (local.get $d))))
            (local.set $scores (i32.add (local.get $scores) (i32.const 8)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $eachClass)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $eachRow))))

  ;; gradient += coefficientsᵀ · x[rows] (weight [K, d]) and bias [K] += Σ coefficients, coefficients [count, K]:
  ;; class by class, each gradient row taking its rows' contributions in row order, four rows per pass.
  (func (export "addGradient") (param $x i32) (param $rows i32) (param $count i32) (param $d i32) (param $K i32)
    (param $coefficients i32) (param $gradient i32)
    (local $r i32) (local $k i32) (local $bias i32) (local $out i32) (local $g i32) (local $stride i32) (local $sum f64)
    (local.set $out (local.get $gradient))
    (local.set $bias (i32.add (local.get $gradient) (i32.shl (i32.mul (local.get $K) (local.get $d)) (i32.const 3))))
    (local.set $stride (i32.shl (local.get $K) (i32.const 3)))
    (block $classesDone
      (loop $eachClass
        (br_if $classesDone (i32.ge_u (local.get $k) (local.get $K)))
        ;; $g walks coefficients[r, k] down the column.
        (local.set $g (i32.add (local.get $coefficients) (i32.shl (local.get $k) (i32.const 3))))
        (local.set $sum (f64.load (local.get $bias)))
        (local.set $r (i32.const 0))
        (block $rowsDone
          (loop $eachRow
            (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $count)))
            (local.set $sum (f64.add (local.get $sum) (f64.load (i32.add (local.get $g) (i32.mul (local.get $r) (local.get $stride))))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $eachRow)))
        (f64.store (local.get $bias) (local.get $sum))
        (local.set $r (i32.const 0))
        (block $blocksDone
          (loop $eachBlock
            (br_if $blocksDone (i32.gt_u (i32.add (local.get $r) (i32.const 4)) (local.get $count)))
            (call $addScaled4 (local.get $out)
              (f64.load (local.get $g))
              (f64.load (i32.add (local.get $g) (local.get $stride)))
              (f64.load (i32.add (local.get $g) (i32.shl (local.get $stride) (i32.const 1))))
              (f64.load (i32.add (local.get $g) (i32.mul (local.get $stride) (i32.const 3))))
              (call $rowAt (local.get $x) (local.get $rows) (local.get $r) (local.get $d))
              (call $rowAt (local.get $x) (local.get $rows) (i32.add (local.get $r) (i32.const 1)) (local.get $d))
              (call $rowAt (local.get $x) (local.get $rows) (i32.add (local.get $r) (i32.const 2)) (local.get $d))
              (call $rowAt (local.get $x) (local.get $rows) (i32.add (local.get $r) (i32.const 3)) (local.get $d))
              (local.get $d))
            (local.set $g (i32.add (local.get $g) (i32.shl (local.get $stride) (i32.const 2))))
            (local.set $r (i32.add (local.get $r) (i32.const 4)))
            (br $eachBlock)))
        (block $rowsDone
          (loop $eachRow
            (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $count)))
            (call $addScaled (local.get $out) (f64.load (local.get $g))
              (call $rowAt (local.get $x) (local.get $rows) (local.get $r) (local.get $d)) (local.get $d))
            (local.set $g (i32.add (local.get $g) (local.get $stride)))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $eachRow)))
        (local.set $out (i32.add (local.get $out) (i32.shl (local.get $d) (i32.const 3))))
        (local.set $bias (i32.add (local.get $bias) (i32.const 8)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $eachClass))))

  ;; One Adam step over $pairs pairs of parameters (the caller pads to an even count with zeros):
  ;; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g·g; p −= (stepSize·m) / (√v / correction2 + ε).
  (func (export "adamStep") (param $params i32) (param $gradient i32) (param $m i32) (param $v i32) (param $pairs i32)
    (param $beta1 f64) (param $oneMinusBeta1 f64) (param $beta2 f64) (param $oneMinusBeta2 f64)
    (param $stepSize f64) (param $correction2 f64) (param $eps f64)
    (local $b1 v128) (local $c1 v128) (local $b2 v128) (local $c2 v128) (local $lr v128) (local $corr v128) (local $e v128)
    (local $g v128) (local $mv v128) (local $vv v128) (local $end i32)
    (local.set $b1 (f64x2.splat (local.get $beta1)))
    (local.set $c1 (f64x2.splat (local.get $oneMinusBeta1)))
    (local.set $b2 (f64x2.splat (local.get $beta2)))
    (local.set $c2 (f64x2.splat (local.get $oneMinusBeta2)))
    (local.set $lr (f64x2.splat (local.get $stepSize)))
    (local.set $corr (f64x2.splat (local.get $correction2)))
    (local.set $e (f64x2.splat (local.get $eps)))
    (local.set $end (i32.add (local.get $params) (i32.shl (local.get $pairs) (i32.const 4))))
    (block $done
      (loop $pair
        (br_if $done (i32.ge_u (local.get $params) (local.get $end)))
        (local.set $g (v128.load (local.get $gradient)))
        (local.set $mv (f64x2.add (f64x2.mul (local.get $b1) (v128.load (local.get $m))) (f64x2.mul (local.get $c1) (local.get $g))))
        (local.set $vv (f64x2.add (f64x2.mul (local.get $b2) (v128.load (local.get $v)))
          (f64x2.mul (f64x2.mul (local.get $c2) (local.get $g)) (local.get $g))))
        (v128.store (local.get $m) (local.get $mv))
        (v128.store (local.get $v) (local.get $vv))
        (v128.store (local.get $params) (f64x2.sub (v128.load (local.get $params))
          (f64x2.div (f64x2.mul (local.get $lr) (local.get $mv))
            (f64x2.add (f64x2.div (f64x2.sqrt (local.get $vv)) (local.get $corr)) (local.get $e)))))
        (local.set $params (i32.add (local.get $params) (i32.const 16)))
        (local.set $gradient (i32.add (local.get $gradient) (i32.const 16)))
        (local.set $m (i32.add (local.get $m) (i32.const 16)))
        (local.set $v (i32.add (local.get $v) (i32.const 16)))
        (br $pair)))))
