;; A matrix product for fwprune's wasm kernels with relaxed SIMD's fused multiply-add (f32x4.relaxed_madd):
;; C = A·B, register-blocked in tiles of 6 rows × 8 columns (12 f32x4 accumulators; x64 V8 has 15 free vector
;; registers), with B packed into 8-column panels. It runs on the memory of tfjs's wasm backend (imported); every
;; pointer is a byte offset. relaxed_madd may compute a·b + c with one rounding (FMA) or two, depending on the
;; hardware and engine: results can differ across machines at rounding level (the same machine always agrees).
;; Each kernel is one plain loop: with a loop over runs of k around it, V8 spilled the 6-row tile's accumulators
;; (~35 instead of ~55 GFLOP/s here), so the driver splits k into runs; it finds a row tile's row starts once for every panel
;; (with a short k, finding them per panel cost as much as the multiply-adds). Kept apart from simd.wat because a module using relaxed SIMD does not compile where it is unavailable.
;; Regenerate src/kernels/gemm-module.ts after editing: sh src/kernels/build-simd.sh (needs Debian's wabt).
(module
  (import "env" "memory" (memory 1))

  ;; C[r][0..8) = (accumulate ? C[r][0..8) : 0) + Σ_k A_r[k]·Bp[k][0..8) over kc values of k, for the 6 rows of A at a0..a5.
  (func $rows6x8
    (param $a0 i32) (param $a1 i32) (param $a2 i32) (param $a3 i32) (param $a4 i32) (param $a5 i32)
    (param $kc i32) (param $bp i32) (param $c i32) (param $ldc i32) (param $accumulate i32)
    (local $end i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128) (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128) (local $c40 v128) (local $c41 v128) (local $c50 v128) (local $c51 v128)
    (local $b0 v128) (local $b1 v128) (local $x v128)
    (if (local.get $accumulate) (then
      (local.set $c00 (v128.load offset=0 (local.get $c)))
      (local.set $c01 (v128.load offset=16 (local.get $c)))
      (local.set $c10 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c11 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1)))))
      (local.set $c20 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c21 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2)))))
      (local.set $c30 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))
      (local.set $c31 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3)))))
      (local.set $c40 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4)))))
      (local.set $c41 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4)))))
      (local.set $c50 (v128.load offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 5)))))
      (local.set $c51 (v128.load offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 5)))))
    ))
    (local.set $end (i32.add (local.get $a0) (i32.shl (local.get $kc) (i32.const 2))))
    (block $kDone (loop $k
      (br_if $kDone (i32.ge_u (local.get $a0) (local.get $end)))
      (local.set $b0 (v128.load (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $x (v128.load32_splat (local.get $a0)))
      (local.set $c00 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c00)))
      (local.set $c01 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c01)))
      (local.set $x (v128.load32_splat (local.get $a1)))
      (local.set $c10 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c10)))
      (local.set $c11 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c11)))
      (local.set $x (v128.load32_splat (local.get $a2)))
      (local.set $c20 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c20)))
      (local.set $c21 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c21)))
      (local.set $x (v128.load32_splat (local.get $a3)))
      (local.set $c30 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c30)))
      (local.set $c31 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c31)))
      (local.set $x (v128.load32_splat (local.get $a4)))
      (local.set $c40 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c40)))
      (local.set $c41 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c41)))
      (local.set $x (v128.load32_splat (local.get $a5)))
      (local.set $c50 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c50)))
      (local.set $c51 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c51)))
      (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
      (local.set $a1 (i32.add (local.get $a1) (i32.const 4)))
      (local.set $a2 (i32.add (local.get $a2) (i32.const 4)))
      (local.set $a3 (i32.add (local.get $a3) (i32.const 4)))
      (local.set $a4 (i32.add (local.get $a4) (i32.const 4)))
      (local.set $a5 (i32.add (local.get $a5) (i32.const 4)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (br $k)))
    (v128.store offset=0 (local.get $c) (local.get $c00))
    (v128.store offset=16 (local.get $c) (local.get $c01))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1))) (local.get $c10))
    (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 1))) (local.get $c11))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2))) (local.get $c20))
    (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 2))) (local.get $c21))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3))) (local.get $c30))
    (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 3))) (local.get $c31))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4))) (local.get $c40))
    (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 4))) (local.get $c41))
    (v128.store offset=0 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 5))) (local.get $c50))
    (v128.store offset=16 (i32.add (local.get $c) (i32.mul (local.get $ldc) (i32.const 5))) (local.get $c51))
  )

  ;; C[r][0..8) = (accumulate ? C[r][0..8) : 0) + Σ_k A_r[k]·Bp[k][0..8) over kc values of k, for the row of A at a0.
  (func $rows1x8
    (param $a0 i32)
    (param $kc i32) (param $bp i32) (param $c i32) (param $ldc i32) (param $accumulate i32)
    (local $end i32)
    (local $c00 v128) (local $c01 v128)
    (local $b0 v128) (local $b1 v128) (local $x v128)
    (if (local.get $accumulate) (then
      (local.set $c00 (v128.load offset=0 (local.get $c)))
      (local.set $c01 (v128.load offset=16 (local.get $c)))
    ))
    (local.set $end (i32.add (local.get $a0) (i32.shl (local.get $kc) (i32.const 2))))
    (block $kDone (loop $k
      (br_if $kDone (i32.ge_u (local.get $a0) (local.get $end)))
      (local.set $b0 (v128.load (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $x (v128.load32_splat (local.get $a0)))
      (local.set $c00 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c00)))
      (local.set $c01 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c01)))
      (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (br $k)))
    (v128.store offset=0 (local.get $c) (local.get $c00))
    (v128.store offset=16 (local.get $c) (local.get $c01))
  )

  ;; bp[p][k][0..8) = b[k][8p..8p + 8): B [k, n] (n % 8 == 0) as panels of 8 columns, each contiguous over k.
  (func $packB (export "packB") (param $b i32) (param $bp i32) (param $k i32) (param $n i32)
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

  ;; Where row i of A starts: a + table[i] (table: an i32 array of byte offsets) or, without one (table = 0),
  ;; a + i·lda; plus `shift` bytes.
  (func $rowStart (param $a i32) (param $table i32) (param $lda i32) (param $i i32) (param $shift i32) (result i32)
    (i32.add
      (i32.add (local.get $a) (local.get $shift))
      (if (result i32) (local.get $table)
        (then (i32.load (i32.add (local.get $table) (i32.shl (local.get $i) (i32.const 2)))))
        (else (i32.mul (local.get $i) (local.get $lda))))))

  ;; C [m, n] = A [m, k] · B [k, n], all float32, B and C row-major, n % 8 == 0; bp: scratch for k·n floats (the
  ;; packed B). Row i of A starts where $rowStart says and its k values lie in runs of runLen floats, runStride
  ;; bytes apart: a plain matrix has one run (runLen ≥ k); an im2col row of a valid NHWC convolution, read in
  ;; place from the input, has one run of kw·c floats per filter row, w·c floats apart. The k values are summed in
  ;; blocks of kcMax (C accumulates across blocks, so that A's rows stay in cache while every panel uses them);
  ;; with more than one run, kcMax must be ≥ k.
  (func (export "gemm")
    (param $a i32) (param $table i32) (param $lda i32) (param $b i32) (param $bp i32) (param $c i32)
    (param $m i32) (param $k i32) (param $n i32) (param $kcMax i32) (param $runLen i32) (param $runStride i32)
    (call $packB (local.get $b) (local.get $bp) (local.get $k) (local.get $n))
    (call $gemmPacked (local.get $a) (local.get $table) (local.get $lda) (local.get $bp) (local.get $c)
      (local.get $m) (local.get $k) (local.get $n) (local.get $kcMax) (local.get $runLen) (local.get $runStride) (i32.const 0)))

  ;; gemm's product with B already packed into bp (by packB): threads share one packed B, each computing its own
  ;; rows of C (each element of C sums its k products in the same order whichever rows a call covers). accumulate ≠ 0:
  ;; C += A·B, continuing each element's sum where an earlier call over the k values before these left it.
  (func $gemmPacked (export "gemmPacked")
    (param $a i32) (param $table i32) (param $lda i32) (param $bp i32) (param $c i32)
    (param $m i32) (param $k i32) (param $n i32) (param $kcMax i32) (param $runLen i32) (param $runStride i32) (param $accumulate i32)
    (local $kb i32) (local $kc i32) (local $i i32) (local $p i32) (local $ldc i32) (local $panel i32) (local $out i32)
    (local $done i32) (local $len i32) (local $shift i32)
    (local $r0 i32) (local $r1 i32) (local $r2 i32) (local $r3 i32) (local $r4 i32) (local $r5 i32)
    (local.set $ldc (i32.shl (local.get $n) (i32.const 2)))
    (block $kbDone (loop $kbLoop
      (br_if $kbDone (i32.ge_u (local.get $kb) (local.get $k)))
      (local.set $kc (i32.sub (local.get $k) (local.get $kb)))
      (if (i32.gt_u (local.get $kc) (local.get $kcMax)) (then (local.set $kc (local.get $kcMax))))
      (local.set $i (i32.const 0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $m)))
        ;; where this tile's rows start (the same for every panel)
        (local.set $r0 (call $rowStart (local.get $a) (local.get $table) (local.get $lda) (local.get $i) (i32.const 0)))
        (if (i32.le_u (i32.add (local.get $i) (i32.const 6)) (local.get $m))
          (then
            (local.set $r1 (call $rowStart (local.get $a) (local.get $table) (local.get $lda) (i32.add (local.get $i) (i32.const 1)) (i32.const 0)))
            (local.set $r2 (call $rowStart (local.get $a) (local.get $table) (local.get $lda) (i32.add (local.get $i) (i32.const 2)) (i32.const 0)))
            (local.set $r3 (call $rowStart (local.get $a) (local.get $table) (local.get $lda) (i32.add (local.get $i) (i32.const 3)) (i32.const 0)))
            (local.set $r4 (call $rowStart (local.get $a) (local.get $table) (local.get $lda) (i32.add (local.get $i) (i32.const 4)) (i32.const 0)))
            (local.set $r5 (call $rowStart (local.get $a) (local.get $table) (local.get $lda) (i32.add (local.get $i) (i32.const 5)) (i32.const 0)))))
        (local.set $p (i32.const 0))
        (block $pDone (loop $pLoop
          (br_if $pDone (i32.ge_u (local.get $p) (local.get $n)))
          ;; this block's part of panel p/8, and C[i][p]
          (local.set $panel (i32.add (local.get $bp) (i32.shl (i32.add (i32.mul (local.get $p) (local.get $k)) (i32.shl (local.get $kb) (i32.const 3))) (i32.const 2))))
          (local.set $out (i32.add (local.get $c) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $p)) (i32.const 2))))
          (local.set $done (i32.const 0))
          (local.set $shift (i32.shl (local.get $kb) (i32.const 2)))
          (block $runDone (loop $runLoop
            (br_if $runDone (i32.ge_u (local.get $done) (local.get $kc)))
            (local.set $len (i32.sub (local.get $kc) (local.get $done)))
            (if (i32.gt_u (local.get $len) (local.get $runLen)) (then (local.set $len (local.get $runLen))))
            (if (i32.le_u (i32.add (local.get $i) (i32.const 6)) (local.get $m))
              (then
                (call $rows6x8
                  (i32.add (local.get $r0) (local.get $shift))
                  (i32.add (local.get $r1) (local.get $shift))
                  (i32.add (local.get $r2) (local.get $shift))
                  (i32.add (local.get $r3) (local.get $shift))
                  (i32.add (local.get $r4) (local.get $shift))
                  (i32.add (local.get $r5) (local.get $shift))
                  (local.get $len) (i32.add (local.get $panel) (i32.shl (local.get $done) (i32.const 5))) (local.get $out) (local.get $ldc)
                  (i32.or (local.get $accumulate) (i32.or (local.get $kb) (local.get $done)))))
              (else
                (call $rows1x8
                  (i32.add (local.get $r0) (local.get $shift))
                  (local.get $len) (i32.add (local.get $panel) (i32.shl (local.get $done) (i32.const 5))) (local.get $out) (local.get $ldc)
                  (i32.or (local.get $accumulate) (i32.or (local.get $kb) (local.get $done))))))
            (local.set $done (i32.add (local.get $done) (local.get $len)))
            (local.set $shift (i32.add (local.get $shift) (local.get $runStride)))
            (br $runLoop)))
          (local.set $p (i32.add (local.get $p) (i32.const 8)))
          (br $pLoop)))
        (local.set $i (i32.add (local.get $i) (select (i32.const 6) (i32.const 1) (i32.le_u (i32.add (local.get $i) (i32.const 6)) (local.get $m)))))
        (br $iLoop)))
      (local.set $kb (i32.add (local.get $kb) (local.get $kc)))
      (br $kbLoop))))
)
