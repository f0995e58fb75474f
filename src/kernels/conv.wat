;; A convolution's product for fwprune's wasm kernels that gives XNNPACK's bits: each output is +0, then one
;; multiply (rounded) and one add (rounded) per tap, in the order (kh, kw, ci) — no fused multiply-add. Register-blocked
;; in tiles of 5 rows × 8 columns (10 f32x4 accumulators, two of B and a product in flight: 14 of the 15 vector
;; registers x64 V8 leaves free; a 6-row tile spilled), with B packed into 8-column panels. It runs on the memory of
;; tfjs's wasm backend (imported); every pointer is a byte offset. Plain SIMD: no relaxed SIMD needed.
;; Regenerate src/kernels/conv-module.ts after editing: sh src/kernels/build-simd.sh (needs Debian's wabt).
(module
  (import "env" "memory" (memory 1))

  ;; C[r][0..8) = (accumulate ? C[r][0..8) : +0) + A_r[k]·Bp[k][0..8), product then sum, k = 0..kc − 1 in order, for the 5 rows of A at a0..a4.
  (func $rows5x8
    (param $a0 i32) (param $a1 i32) (param $a2 i32) (param $a3 i32) (param $a4 i32)
    (param $kc i32) (param $bp i32) (param $c i32) (param $ldc i32) (param $accumulate i32)
    (local $end i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128) (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128) (local $c40 v128) (local $c41 v128)
    (local $b0 v128) (local $b1 v128) (local $x v128)
    (if (local.get $accumulate) (then
      (local.set $c00 (v128.load offset=0 (local.get $c))) (local.set $c01 (v128.load offset=16 (local.get $c)))
      (local.set $c10 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1))))) (local.set $c11 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c20 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2))))) (local.set $c21 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c30 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3))))) (local.set $c31 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))
      (local.set $c40 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4))))) (local.set $c41 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4)))))
    ))
    (local.set $end (i32.add (local.get $a0) (i32.shl (local.get $kc) (i32.const 2))))
    (block $kDone (loop $k
      (br_if $kDone (i32.ge_u (local.get $a0) (local.get $end)))
      (local.set $b0 (v128.load (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $x (v128.load32_splat (local.get $a0)))
      (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $b0))))
      (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $b1))))
      (local.set $x (v128.load32_splat (local.get $a1)))
      (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $b0))))
      (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $b1))))
      (local.set $x (v128.load32_splat (local.get $a2)))
      (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $b0))))
      (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $b1))))
      (local.set $x (v128.load32_splat (local.get $a3)))
      (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $b0))))
      (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $b1))))
      (local.set $x (v128.load32_splat (local.get $a4)))
      (local.set $c40 (f32x4.add (local.get $c40) (f32x4.mul (local.get $x) (local.get $b0))))
      (local.set $c41 (f32x4.add (local.get $c41) (f32x4.mul (local.get $x) (local.get $b1))))
      (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
      (local.set $a1 (i32.add (local.get $a1) (i32.const 4)))
      (local.set $a2 (i32.add (local.get $a2) (i32.const 4)))
      (local.set $a3 (i32.add (local.get $a3) (i32.const 4)))
      (local.set $a4 (i32.add (local.get $a4) (i32.const 4)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (br $k)))
    (v128.store offset=0 (local.get $c) (local.get $c00)) (v128.store offset=16 (local.get $c) (local.get $c01))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1))) (local.get $c10)) (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1))) (local.get $c11))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2))) (local.get $c20)) (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2))) (local.get $c21))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3))) (local.get $c30)) (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3))) (local.get $c31))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4))) (local.get $c40)) (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4))) (local.get $c41))
  )

  ;; rows5x8 over all of k at once, from +0: `runs` runs of runLen values of k, the rows' runs runStride bytes apart, the
  ;; sums kept in registers from run to run (rows5x8 run by run stores and reloads them: the same bits).
  (func $rows5x8Runs
    (param $a0 i32) (param $a1 i32) (param $a2 i32) (param $a3 i32) (param $a4 i32)
    (param $runs i32) (param $runLen i32) (param $runStride i32) (param $bp i32) (param $c i32) (param $ldc i32)
    (local $end i32) (local $skip i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128) (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128) (local $c40 v128) (local $c41 v128)
    (local $b0 v128) (local $b1 v128) (local $x v128)
    ;; from the end of one run to the start of the next
    (local.set $skip (i32.sub (local.get $runStride) (i32.shl (local.get $runLen) (i32.const 2))))
    (block $runsDone (loop $run
      (br_if $runsDone (i32.eqz (local.get $runs)))
      (local.set $end (i32.add (local.get $a0) (i32.shl (local.get $runLen) (i32.const 2))))
      (block $kDone (loop $k
        (br_if $kDone (i32.ge_u (local.get $a0) (local.get $end)))
        (local.set $b0 (v128.load (local.get $bp)))
        (local.set $b1 (v128.load offset=16 (local.get $bp)))
        (local.set $x (v128.load32_splat (local.get $a0)))
        (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $b0))))
        (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $b1))))
        (local.set $x (v128.load32_splat (local.get $a1)))
        (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $b0))))
        (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $b1))))
        (local.set $x (v128.load32_splat (local.get $a2)))
        (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $b0))))
        (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $b1))))
        (local.set $x (v128.load32_splat (local.get $a3)))
        (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $b0))))
        (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $b1))))
        (local.set $x (v128.load32_splat (local.get $a4)))
        (local.set $c40 (f32x4.add (local.get $c40) (f32x4.mul (local.get $x) (local.get $b0))))
        (local.set $c41 (f32x4.add (local.get $c41) (f32x4.mul (local.get $x) (local.get $b1))))
        (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
        (local.set $a1 (i32.add (local.get $a1) (i32.const 4)))
        (local.set $a2 (i32.add (local.get $a2) (i32.const 4)))
        (local.set $a3 (i32.add (local.get $a3) (i32.const 4)))
        (local.set $a4 (i32.add (local.get $a4) (i32.const 4)))
        (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
        (br $k)))
      (local.set $a0 (i32.add (local.get $a0) (local.get $skip)))
      (local.set $a1 (i32.add (local.get $a1) (local.get $skip)))
      (local.set $a2 (i32.add (local.get $a2) (local.get $skip)))
      (local.set $a3 (i32.add (local.get $a3) (local.get $skip)))
      (local.set $a4 (i32.add (local.get $a4) (local.get $skip)))
      (local.set $runs (i32.sub (local.get $runs) (i32.const 1)))
      (br $run)))
    (v128.store offset=0 (local.get $c) (local.get $c00)) (v128.store offset=16 (local.get $c) (local.get $c01))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1))) (local.get $c10)) (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1))) (local.get $c11))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2))) (local.get $c20)) (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2))) (local.get $c21))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3))) (local.get $c30)) (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3))) (local.get $c31))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4))) (local.get $c40)) (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4))) (local.get $c41))
  )

  ;; C[r][0..8) = (accumulate ? C[r][0..8) : +0) + A_r[k]·Bp[k][0..8), product then sum, k = 0..kc − 1 in order, for the 1 row of A at a0.
  (func $rows1x8
    (param $a0 i32)
    (param $kc i32) (param $bp i32) (param $c i32) (param $ldc i32) (param $accumulate i32)
    (local $end i32)
    (local $c00 v128) (local $c01 v128)
    (local $b0 v128) (local $b1 v128) (local $x v128)
    (if (local.get $accumulate) (then
      (local.set $c00 (v128.load offset=0 (local.get $c))) (local.set $c01 (v128.load offset=16 (local.get $c)))
    ))
    (local.set $end (i32.add (local.get $a0) (i32.shl (local.get $kc) (i32.const 2))))
    (block $kDone (loop $k
      (br_if $kDone (i32.ge_u (local.get $a0) (local.get $end)))
      (local.set $b0 (v128.load (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $x (v128.load32_splat (local.get $a0)))
      (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $b0))))
      (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $b1))))
      (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (br $k)))
    (v128.store offset=0 (local.get $c) (local.get $c00)) (v128.store offset=16 (local.get $c) (local.get $c01))
  )

  ;; bp[p][k][0..8) = b[k][8p..8p + 8): B [k, n] (n % 8 == 0) as panels of 8 columns, each contiguous over k.
  (func (export "packB") (param $b i32) (param $bp i32) (param $k i32) (param $n i32)
    (local $p i32) (local $kk i32) (local $src i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $n) (i32.const 2)))
    (block $pDone (loop $pLoop
      (br_if $pDone (i32.ge_u (local.get $p) (local.get $n)))
      (local.set $src (i32.add (local.get $b) (i32.shl (local.get $p) (i32.const 2))))
      (local.set $kk (i32.const 0))
      (block $kDone (loop $kLoop
        (br_if $kDone (i32.ge_u (local.get $kk) (local.get $k)))
        (v128.store (local.get $bp) (v128.load (local.get $src)))
        (v128.store offset=16 (local.get $bp) (v128.load offset=16 (local.get $src)))
        (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
        (local.set $src (i32.add (local.get $src) (local.get $rowBytes)))
        (local.set $kk (i32.add (local.get $kk) (i32.const 1)))
        (br $kLoop)))
      (local.set $p (i32.add (local.get $p) (i32.const 8)))
      (br $pLoop))))

  ;; Depthwise convolution's filter gradient, multiplier 1, NHWC, channels % 4 == 0, one image: out[p,q,:] = Σ
  ;; x[i·sh + p − top, j·sw + q − left, :] ⊙ dy[i,j,:] over the outputs (i, j) in raster order whose tap (p, q) reads
  ;; inside x, in float32 from +0: simd.wat's depthwiseFilterGrad's sums in the same order, but tap by tap, 32
  ;; channels at a time with their sums in registers, instead of loading and storing out at every output and tap.
  (func (export "depthwiseFilterGradTaps")
    (param $x i32) (param $dy i32) (param $out i32) (param $h i32) (param $w i32) (param $c i32) (param $oh i32) (param $ow i32)
    (param $kh i32) (param $kw i32) (param $sh i32) (param $sw i32) (param $top i32) (param $left i32)
    (local $p i32) (local $q i32) (local $j0 i32) (local $j1 i32) (local $cb i32) (local $cBytes i32) (local $tap i32) (local $xStep i32)
    (local $i i32) (local $ih i32) (local $xp i32) (local $gp i32) (local $gEnd i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local.set $cBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $xStep (i32.mul (local.get $sw) (local.get $cBytes)))
    (local.set $tap (local.get $out))
    (block $pDone (loop $pLoop
      (br_if $pDone (i32.ge_u (local.get $p) (local.get $kh)))
      (local.set $q (i32.const 0))
      (block $qDone (loop $qLoop
        (br_if $qDone (i32.ge_u (local.get $q) (local.get $kw)))
        ;; the outputs j0..j1 − 1 of a row whose column j·sw + q − left lies inside x
        (local.set $j0 (i32.const 0))
        (block $j0Done (loop $j0Loop
          (br_if $j0Done (i32.ge_s (i32.sub (i32.add (i32.mul (local.get $j0) (local.get $sw)) (local.get $q)) (local.get $left)) (i32.const 0)))
          (local.set $j0 (i32.add (local.get $j0) (i32.const 1)))
          (br $j0Loop)))
        (local.set $j1 (local.get $ow))
        (block $j1Done (loop $j1Loop
          (br_if $j1Done (i32.le_s (local.get $j1) (local.get $j0)))
          (br_if $j1Done (i32.lt_s (i32.sub (i32.add (i32.mul (i32.sub (local.get $j1) (i32.const 1)) (local.get $sw)) (local.get $q)) (local.get $left)) (local.get $w)))
          (local.set $j1 (i32.sub (local.get $j1) (i32.const 1)))
          (br $j1Loop)))
        (if (i32.gt_s (local.get $j0) (local.get $j1)) (then (local.set $j1 (local.get $j0))))
        (local.set $cb (i32.const 0))
        ;; 8 vectors (32 channels) at a time
        (block $b8Done (loop $b8Loop
          (br_if $b8Done (i32.gt_u (i32.add (local.get $cb) (i32.const 128)) (local.get $cBytes)))
          (local.set $a0 (v128.const f32x4 0 0 0 0))
          (local.set $a1 (v128.const f32x4 0 0 0 0))
          (local.set $a2 (v128.const f32x4 0 0 0 0))
          (local.set $a3 (v128.const f32x4 0 0 0 0))
          (local.set $a4 (v128.const f32x4 0 0 0 0))
          (local.set $a5 (v128.const f32x4 0 0 0 0))
          (local.set $a6 (v128.const f32x4 0 0 0 0))
          (local.set $a7 (v128.const f32x4 0 0 0 0))
          (local.set $i (i32.const 0))
          (block $b8iDone (loop $b8iLoop
            (br_if $b8iDone (i32.ge_u (local.get $i) (local.get $oh)))
            (local.set $ih (i32.sub (i32.add (i32.mul (local.get $i) (local.get $sh)) (local.get $p)) (local.get $top)))
            ;; unsigned: a negative row is out of range too
            (if (i32.lt_u (local.get $ih) (local.get $h)) (then
              (local.set $xp (i32.add (i32.add (local.get $x) (local.get $cb))
                (i32.mul (i32.add (i32.mul (local.get $ih) (local.get $w)) (i32.sub (i32.add (i32.mul (local.get $j0) (local.get $sw)) (local.get $q)) (local.get $left))) (local.get $cBytes))))
              (local.set $gp (i32.add (i32.add (local.get $dy) (local.get $cb)) (i32.mul (i32.add (i32.mul (local.get $i) (local.get $ow)) (local.get $j0)) (local.get $cBytes))))
              (local.set $gEnd (i32.add (local.get $gp) (i32.mul (i32.sub (local.get $j1) (local.get $j0)) (local.get $cBytes))))
              (block $b8jDone (loop $b8jLoop
                (br_if $b8jDone (i32.ge_u (local.get $gp) (local.get $gEnd)))
                (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=0 (local.get $xp)) (v128.load offset=0 (local.get $gp)))))
                (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=16 (local.get $xp)) (v128.load offset=16 (local.get $gp)))))
                (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=32 (local.get $xp)) (v128.load offset=32 (local.get $gp)))))
                (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=48 (local.get $xp)) (v128.load offset=48 (local.get $gp)))))
                (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (v128.load offset=64 (local.get $xp)) (v128.load offset=64 (local.get $gp)))))
                (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (v128.load offset=80 (local.get $xp)) (v128.load offset=80 (local.get $gp)))))
                (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (v128.load offset=96 (local.get $xp)) (v128.load offset=96 (local.get $gp)))))
                (local.set $a7 (f32x4.add (local.get $a7) (f32x4.mul (v128.load offset=112 (local.get $xp)) (v128.load offset=112 (local.get $gp)))))
                (local.set $xp (i32.add (local.get $xp) (local.get $xStep)))
                (local.set $gp (i32.add (local.get $gp) (local.get $cBytes)))
                (br $b8jLoop)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $b8iLoop)))
          (v128.store offset=0 (i32.add (local.get $tap) (local.get $cb)) (local.get $a0))
          (v128.store offset=16 (i32.add (local.get $tap) (local.get $cb)) (local.get $a1))
          (v128.store offset=32 (i32.add (local.get $tap) (local.get $cb)) (local.get $a2))
          (v128.store offset=48 (i32.add (local.get $tap) (local.get $cb)) (local.get $a3))
          (v128.store offset=64 (i32.add (local.get $tap) (local.get $cb)) (local.get $a4))
          (v128.store offset=80 (i32.add (local.get $tap) (local.get $cb)) (local.get $a5))
          (v128.store offset=96 (i32.add (local.get $tap) (local.get $cb)) (local.get $a6))
          (v128.store offset=112 (i32.add (local.get $tap) (local.get $cb)) (local.get $a7))
          (local.set $cb (i32.add (local.get $cb) (i32.const 128)))
          (br $b8Loop)))
        ;; 1 vector (4 channels) at a time
        (block $b1Done (loop $b1Loop
          (br_if $b1Done (i32.gt_u (i32.add (local.get $cb) (i32.const 16)) (local.get $cBytes)))
          (local.set $a0 (v128.const f32x4 0 0 0 0))
          (local.set $i (i32.const 0))
          (block $b1iDone (loop $b1iLoop
            (br_if $b1iDone (i32.ge_u (local.get $i) (local.get $oh)))
            (local.set $ih (i32.sub (i32.add (i32.mul (local.get $i) (local.get $sh)) (local.get $p)) (local.get $top)))
            ;; unsigned: a negative row is out of range too
            (if (i32.lt_u (local.get $ih) (local.get $h)) (then
              (local.set $xp (i32.add (i32.add (local.get $x) (local.get $cb))
                (i32.mul (i32.add (i32.mul (local.get $ih) (local.get $w)) (i32.sub (i32.add (i32.mul (local.get $j0) (local.get $sw)) (local.get $q)) (local.get $left))) (local.get $cBytes))))
              (local.set $gp (i32.add (i32.add (local.get $dy) (local.get $cb)) (i32.mul (i32.add (i32.mul (local.get $i) (local.get $ow)) (local.get $j0)) (local.get $cBytes))))
              (local.set $gEnd (i32.add (local.get $gp) (i32.mul (i32.sub (local.get $j1) (local.get $j0)) (local.get $cBytes))))
              (block $b1jDone (loop $b1jLoop
                (br_if $b1jDone (i32.ge_u (local.get $gp) (local.get $gEnd)))
                (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=0 (local.get $xp)) (v128.load offset=0 (local.get $gp)))))
                (local.set $xp (i32.add (local.get $xp) (local.get $xStep)))
                (local.set $gp (i32.add (local.get $gp) (local.get $cBytes)))
                (br $b1jLoop)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $b1iLoop)))
          (v128.store offset=0 (i32.add (local.get $tap) (local.get $cb)) (local.get $a0))
          (local.set $cb (i32.add (local.get $cb) (i32.const 16)))
          (br $b1Loop)))
        (local.set $tap (i32.add (local.get $tap) (local.get $cBytes)))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br $qLoop)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $pLoop)))
  )


  ;; Depthwise convolution's input gradient at stride 1, multiplier 1, NHWC, channels % 4 == 0, one image:
  ;; dx[ih,iw,:] = Σ W[p,q,:] ⊙ dy[ih + top − p, iw + left − q, :] over the taps with the output inside dy, p and q
  ;; descending (the outputs in raster order), in float32 from +0: simd.wat's depthwiseInputGrad's sums in the same
  ;; order, but each dx value summed in registers (32 channels at a time) and stored once.
  (func (export "depthwiseInputGradGather")
    (param $dx i32) (param $dy i32) (param $filter i32) (param $h i32) (param $w i32) (param $c i32) (param $oh i32) (param $ow i32)
    (param $kh i32) (param $kw i32) (param $top i32) (param $left i32)
    (local $ih i32) (local $iw i32) (local $p i32) (local $q i32) (local $i i32) (local $j i32) (local $cb i32) (local $cBytes i32)
    (local $xp i32) (local $wp i32) (local $gp i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local.set $cBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $xp (local.get $dx))
    (block $ihDone (loop $ihLoop
      (br_if $ihDone (i32.ge_u (local.get $ih) (local.get $h)))
      (local.set $iw (i32.const 0))
      (block $iwDone (loop $iwLoop
        (br_if $iwDone (i32.ge_u (local.get $iw) (local.get $w)))
        (local.set $cb (i32.const 0))
          ;; 8 vectors (32 channels) at a time
          (block $c8Done (loop $c8Loop
            (br_if $c8Done (i32.gt_u (i32.add (local.get $cb) (i32.const 128)) (local.get $cBytes)))
            (local.set $a0 (v128.const f32x4 0 0 0 0))
            (local.set $a1 (v128.const f32x4 0 0 0 0))
            (local.set $a2 (v128.const f32x4 0 0 0 0))
            (local.set $a3 (v128.const f32x4 0 0 0 0))
            (local.set $a4 (v128.const f32x4 0 0 0 0))
            (local.set $a5 (v128.const f32x4 0 0 0 0))
            (local.set $a6 (v128.const f32x4 0 0 0 0))
            (local.set $a7 (v128.const f32x4 0 0 0 0))
            (local.set $p (local.get $kh))
            (block $c8pDone (loop $c8pLoop
              (br_if $c8pDone (i32.eqz (local.get $p)))
              (local.set $p (i32.sub (local.get $p) (i32.const 1)))
              (local.set $i (i32.sub (i32.add (local.get $ih) (local.get $top)) (local.get $p)))
              ;; unsigned: a negative row or column is out of range too
              (if (i32.lt_u (local.get $i) (local.get $oh)) (then
                (local.set $q (local.get $kw))
                (block $c8qDone (loop $c8qLoop
                  (br_if $c8qDone (i32.eqz (local.get $q)))
                  (local.set $q (i32.sub (local.get $q) (i32.const 1)))
                  (local.set $j (i32.sub (i32.add (local.get $iw) (local.get $left)) (local.get $q)))
                  (if (i32.lt_u (local.get $j) (local.get $ow)) (then
                    (local.set $wp (i32.add (i32.add (local.get $filter) (local.get $cb)) (i32.mul (i32.add (i32.mul (local.get $p) (local.get $kw)) (local.get $q)) (local.get $cBytes))))
                    (local.set $gp (i32.add (i32.add (local.get $dy) (local.get $cb)) (i32.mul (i32.add (i32.mul (local.get $i) (local.get $ow)) (local.get $j)) (local.get $cBytes))))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=0 (local.get $wp)) (v128.load offset=0 (local.get $gp)))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=16 (local.get $wp)) (v128.load offset=16 (local.get $gp)))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=32 (local.get $wp)) (v128.load offset=32 (local.get $gp)))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=48 (local.get $wp)) (v128.load offset=48 (local.get $gp)))))
                    (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (v128.load offset=64 (local.get $wp)) (v128.load offset=64 (local.get $gp)))))
                    (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (v128.load offset=80 (local.get $wp)) (v128.load offset=80 (local.get $gp)))))
                    (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (v128.load offset=96 (local.get $wp)) (v128.load offset=96 (local.get $gp)))))
                    (local.set $a7 (f32x4.add (local.get $a7) (f32x4.mul (v128.load offset=112 (local.get $wp)) (v128.load offset=112 (local.get $gp)))))
                  ))
                  (br $c8qLoop)))))
              (br $c8pLoop)))
            (v128.store offset=0 (i32.add (local.get $xp) (local.get $cb)) (local.get $a0))
            (v128.store offset=16 (i32.add (local.get $xp) (local.get $cb)) (local.get $a1))
            (v128.store offset=32 (i32.add (local.get $xp) (local.get $cb)) (local.get $a2))
            (v128.store offset=48 (i32.add (local.get $xp) (local.get $cb)) (local.get $a3))
            (v128.store offset=64 (i32.add (local.get $xp) (local.get $cb)) (local.get $a4))
            (v128.store offset=80 (i32.add (local.get $xp) (local.get $cb)) (local.get $a5))
            (v128.store offset=96 (i32.add (local.get $xp) (local.get $cb)) (local.get $a6))
            (v128.store offset=112 (i32.add (local.get $xp) (local.get $cb)) (local.get $a7))
            (local.set $cb (i32.add (local.get $cb) (i32.const 128)))
            (br $c8Loop)))
          ;; 1 vector (4 channels) at a time
          (block $c1Done (loop $c1Loop
            (br_if $c1Done (i32.gt_u (i32.add (local.get $cb) (i32.const 16)) (local.get $cBytes)))
            (local.set $a0 (v128.const f32x4 0 0 0 0))
            (local.set $p (local.get $kh))
            (block $c1pDone (loop $c1pLoop
              (br_if $c1pDone (i32.eqz (local.get $p)))
              (local.set $p (i32.sub (local.get $p) (i32.const 1)))
              (local.set $i (i32.sub (i32.add (local.get $ih) (local.get $top)) (local.get $p)))
              ;; unsigned: a negative row or column is out of range too
              (if (i32.lt_u (local.get $i) (local.get $oh)) (then
                (local.set $q (local.get $kw))
                (block $c1qDone (loop $c1qLoop
                  (br_if $c1qDone (i32.eqz (local.get $q)))
                  (local.set $q (i32.sub (local.get $q) (i32.const 1)))
                  (local.set $j (i32.sub (i32.add (local.get $iw) (local.get $left)) (local.get $q)))
                  (if (i32.lt_u (local.get $j) (local.get $ow)) (then
                    (local.set $wp (i32.add (i32.add (local.get $filter) (local.get $cb)) (i32.mul (i32.add (i32.mul (local.get $p) (local.get $kw)) (local.get $q)) (local.get $cBytes))))
                    (local.set $gp (i32.add (i32.add (local.get $dy) (local.get $cb)) (i32.mul (i32.add (i32.mul (local.get $i) (local.get $ow)) (local.get $j)) (local.get $cBytes))))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=0 (local.get $wp)) (v128.load offset=0 (local.get $gp)))))
                  ))
                  (br $c1qLoop)))))
              (br $c1pLoop)))
            (v128.store offset=0 (i32.add (local.get $xp) (local.get $cb)) (local.get $a0))
            (local.set $cb (i32.add (local.get $cb) (i32.const 16)))
            (br $c1Loop)))
        (local.set $xp (i32.add (local.get $xp) (local.get $cBytes)))
        (local.set $iw (i32.add (local.get $iw) (i32.const 1)))
        (br $iwLoop)))
      (local.set $ih (i32.add (local.get $ih) (i32.const 1)))
      (br $ihLoop)))
  )


  ;; Copies outer × rows runs of rowLen floats from src (contiguous) to dst: run (o, r) to dst + o·dstOuterStride +
  ;; r·dstRowStride bytes (a zero padding's interior: dst already holds the padding value).
  (func (export "copyRows")
    (param $src i32) (param $dst i32) (param $outer i32) (param $rows i32) (param $rowLen i32) (param $dstRowStride i32) (param $dstOuterStride i32)
    (local $o i32) (local $r i32) (local $d i32) (local $end i32) (local $vecEnd i32)
    (block $oDone (loop $oLoop
      (br_if $oDone (i32.ge_u (local.get $o) (local.get $outer)))
      (local.set $r (i32.const 0))
      (block $rDone (loop $rLoop
        (br_if $rDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $d (i32.add (i32.add (local.get $dst) (i32.mul (local.get $o) (local.get $dstOuterStride))) (i32.mul (local.get $r) (local.get $dstRowStride))))
        (local.set $end (i32.add (local.get $src) (i32.shl (local.get $rowLen) (i32.const 2))))
        (local.set $vecEnd (i32.sub (local.get $end) (i32.const 16)))
        (block $vDone (loop $vLoop
          (br_if $vDone (i32.gt_s (local.get $src) (local.get $vecEnd)))
          (v128.store (local.get $d) (v128.load (local.get $src)))
          (local.set $src (i32.add (local.get $src) (i32.const 16)))
          (local.set $d (i32.add (local.get $d) (i32.const 16)))
          (br $vLoop)))
        (block $sDone (loop $sLoop
          (br_if $sDone (i32.ge_u (local.get $src) (local.get $end)))
          (i32.store (local.get $d) (i32.load (local.get $src)))
          (local.set $src (i32.add (local.get $src) (i32.const 4)))
          (local.set $d (i32.add (local.get $d) (i32.const 4)))
          (br $sLoop)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rLoop)))
      (local.set $o (i32.add (local.get $o) (i32.const 1)))
      (br $oLoop))))

  ;; C [m, n] = A [m, k] · B [k, n] with B packed (packB), n % 8 == 0, C row-major. Row i of A starts at
  ;; a + table[i] (table: an i32 array of byte offsets) and its k values lie in runs of runLen floats, runStride bytes
  ;; apart (an im2col row of an NHWC convolution read in place from its zero-padded input: one run of kw·c floats
  ;; per filter row, a padded input row apart).
  (func (export "convProduct")
    (param $a i32) (param $table i32) (param $bp i32) (param $c i32)
    (param $m i32) (param $k i32) (param $n i32) (param $runLen i32) (param $runStride i32)
    (local $i i32) (local $p i32) (local $ldc i32) (local $panel i32) (local $out i32)
    (local $done i32) (local $len i32) (local $shift i32) (local $full i32)
    (local $r0 i32) (local $r1 i32) (local $r2 i32) (local $r3 i32) (local $r4 i32)
    (local.set $ldc (i32.shl (local.get $n) (i32.const 2)))
    (block $iDone (loop $iLoop
      (br_if $iDone (i32.ge_u (local.get $i) (local.get $m)))
      (local.set $full (i32.le_u (i32.add (local.get $i) (i32.const 5)) (local.get $m)))
      ;; where this tile's rows start (the same for every panel)
      (local.set $r0 (i32.add (local.get $a) (i32.load (i32.add (local.get $table) (i32.shl (local.get $i) (i32.const 2))))))
      (if (local.get $full) (then
        (local.set $r1 (i32.add (local.get $a) (i32.load offset=4 (i32.add (local.get $table) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $r2 (i32.add (local.get $a) (i32.load offset=8 (i32.add (local.get $table) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $r3 (i32.add (local.get $a) (i32.load offset=12 (i32.add (local.get $table) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $r4 (i32.add (local.get $a) (i32.load offset=16 (i32.add (local.get $table) (i32.shl (local.get $i) (i32.const 2))))))
      ))
      (local.set $p (i32.const 0))
      (block $pDone (loop $pLoop
        (br_if $pDone (i32.ge_u (local.get $p) (local.get $n)))
        (local.set $panel (i32.add (local.get $bp) (i32.shl (i32.mul (local.get $p) (local.get $k)) (i32.const 2))))
        (local.set $out (i32.add (local.get $c) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $p)) (i32.const 2))))
        (local.set $done (i32.const 0))
        (local.set $shift (i32.const 0))
        ;; a full tile whose k is whole runs: every run at once
        (if (i32.and (local.get $full) (i32.eqz (i32.rem_u (local.get $k) (local.get $runLen)))) (then
          (call $rows5x8Runs (local.get $r0) (local.get $r1) (local.get $r2) (local.get $r3) (local.get $r4)
            (i32.div_u (local.get $k) (local.get $runLen)) (local.get $runLen) (local.get $runStride) (local.get $panel) (local.get $out) (local.get $ldc))
          (local.set $done (local.get $k))))
        (block $runDone (loop $runLoop
          (br_if $runDone (i32.ge_u (local.get $done) (local.get $k)))
          (local.set $len (i32.sub (local.get $k) (local.get $done)))
          (if (i32.gt_u (local.get $len) (local.get $runLen)) (then (local.set $len (local.get $runLen))))
          (if (local.get $full)
            (then
              (call $rows5x8
                (i32.add (local.get $r0) (local.get $shift))
                (i32.add (local.get $r1) (local.get $shift))
                (i32.add (local.get $r2) (local.get $shift))
                (i32.add (local.get $r3) (local.get $shift))
                (i32.add (local.get $r4) (local.get $shift))
                (local.get $len) (i32.add (local.get $panel) (i32.shl (local.get $done) (i32.const 5))) (local.get $out) (local.get $ldc) (local.get $done)))
            (else
              (call $rows1x8
                (i32.add (local.get $r0) (local.get $shift))
                (local.get $len) (i32.add (local.get $panel) (i32.shl (local.get $done) (i32.const 5))) (local.get $out) (local.get $ldc) (local.get $done))))
          (local.set $done (i32.add (local.get $done) (local.get $len)))
          (local.set $shift (i32.add (local.get $shift) (local.get $runStride)))
          (br $runLoop)))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br $pLoop)))
      (local.set $i (i32.add (local.get $i) (select (i32.const 5) (i32.const 1) (local.get $full))))
      (br $iLoop))))
)
