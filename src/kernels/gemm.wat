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

  ;; C[r][0..8) = (accumulate ? C[r][0..8) : 0) + Σ_k A_r[k]·Bp[k][0..8) over kc values of k, for the 2 rows of A at
  ;; a0, a1 (a 6-row tile's leftovers: each element gets rows1x8's multiply-adds in the same order, B loaded once for both).
  (func $rows2x8
    (param $a0 i32) (param $a1 i32)
    (param $kc i32) (param $bp i32) (param $c i32) (param $ldc i32) (param $accumulate i32)
    (local $end i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $b0 v128) (local $b1 v128) (local $x v128)
    (if (local.get $accumulate) (then
      (local.set $c00 (v128.load offset=0 (local.get $c)))
      (local.set $c01 (v128.load offset=16 (local.get $c)))
      (local.set $c10 (v128.load offset=0 (i32.add (local.get $c) (local.get $ldc))))
      (local.set $c11 (v128.load offset=16 (i32.add (local.get $c) (local.get $ldc))))
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
      (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
      (local.set $a1 (i32.add (local.get $a1) (i32.const 4)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (br $k)))
    (v128.store offset=0 (local.get $c) (local.get $c00))
    (v128.store offset=16 (local.get $c) (local.get $c01))
    (v128.store offset=0 (i32.add (local.get $c) (local.get $ldc)) (local.get $c10))
    (v128.store offset=16 (i32.add (local.get $c) (local.get $ldc)) (local.get $c11))
  )

  ;; Whether gemmPacked takes a tile's leftover rows two at a time (rows2x8) or one at a time (rows1x8): the same bits,
  ;; switched off only by tests that check it.
  (global $twoRows (mut i32) (i32.const 1))
  (func (export "setTwoRows") (param $on i32) (global.set $twoRows (local.get $on)))

  ;; rows6x8's sums with the tile's 6 rows of A packed, ap[k][0..6) = A_r[k] (each element of C gets the same fused
  ;; multiply-adds in the same order): the k loop advances two pointers instead of seven.
  (func $packed6x8
    (param $ap i32) (param $kc i32) (param $bp i32) (param $c i32) (param $ldc i32)
    (local $end i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128) (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128) (local $c40 v128) (local $c41 v128) (local $c50 v128) (local $c51 v128)
    (local $b0 v128) (local $b1 v128) (local $x v128)
    (local.set $end (i32.add (local.get $ap) (i32.mul (local.get $kc) (i32.const 24))))
    (block $kDone (loop $k
      (br_if $kDone (i32.ge_u (local.get $ap) (local.get $end)))
      (local.set $b0 (v128.load (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $x (v128.load32_splat offset=0 (local.get $ap)))
      (local.set $c00 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c00)))
      (local.set $c01 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c01)))
      (local.set $x (v128.load32_splat offset=4 (local.get $ap)))
      (local.set $c10 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c10)))
      (local.set $c11 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c11)))
      (local.set $x (v128.load32_splat offset=8 (local.get $ap)))
      (local.set $c20 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c20)))
      (local.set $c21 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c21)))
      (local.set $x (v128.load32_splat offset=12 (local.get $ap)))
      (local.set $c30 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c30)))
      (local.set $c31 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c31)))
      (local.set $x (v128.load32_splat offset=16 (local.get $ap)))
      (local.set $c40 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c40)))
      (local.set $c41 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c41)))
      (local.set $x (v128.load32_splat offset=20 (local.get $ap)))
      (local.set $c50 (f32x4.relaxed_madd (local.get $x) (local.get $b0) (local.get $c50)))
      (local.set $c51 (f32x4.relaxed_madd (local.get $x) (local.get $b1) (local.get $c51)))
      (local.set $ap (i32.add (local.get $ap) (i32.const 24)))
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

  ;; bp[p][k][0..8) = b[k][8p..8p + 8): B [k, n] (n % 8 == 0) as panels of 8 columns, each contiguous over k.
  (func $packB (export "packB") (param $b i32) (param $bp i32) (param $k i32) (param $n i32)
    (call $packPanels (local.get $b) (local.get $bp) (local.get $k) (local.get $n) (local.get $n)))

  ;; packB for n of B's columns in rows of ldn floats: with b at B's column p and bp at panel p/8 (bp + p·k floats),
  ;; panels p/8 .. (p + n)/8 − 1 of the whole packed B.
  (func $packPanels (export "packPanels") (param $b i32) (param $bp i32) (param $k i32) (param $n i32) (param $ldn i32)
    (local $p i32) (local $kk i32) (local $src i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $ldn) (i32.const 2)))
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

  ;; packPanels from Bᵀ [n, k] (rows ldk floats long) instead of B: with bT at Bᵀ's row p and bp at panel p/8,
  ;; bp[q][kk][r] = bT[8q + r][kk] for panels p/8 .. (p + n)/8 − 1 (n % 8 == 0).
  (func (export "packPanelsTransposed") (param $bT i32) (param $bp i32) (param $k i32) (param $n i32) (param $ldk i32)
    (local $p i32) (local $kk i32) (local $r i32) (local $row i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $ldk) (i32.const 2)))
    (block $pDone (loop $pLoop
      (br_if $pDone (i32.ge_u (local.get $p) (local.get $n)))
      (local.set $r (i32.const 0))
      (block $rDone (loop $rLoop
        (br_if $rDone (i32.ge_u (local.get $r) (i32.const 8)))
        ;; row p + r of Bᵀ into lane r of every k of panel p/8
        (local.set $row (i32.add (local.get $bT) (i32.mul (i32.add (local.get $p) (local.get $r)) (local.get $rowBytes))))
        (local.set $kk (i32.const 0))
        (block $kDone (loop $kLoop
          (br_if $kDone (i32.ge_u (local.get $kk) (local.get $k)))
          (f32.store
            (i32.add (local.get $bp) (i32.shl (i32.add (i32.shl (i32.add (i32.mul (local.get $p) (local.get $k)) (i32.shl (local.get $kk) (i32.const 3))) (i32.const 0)) (local.get $r)) (i32.const 2)))
            (f32.load (i32.add (local.get $row) (i32.shl (local.get $kk) (i32.const 2)))))
          (local.set $kk (i32.add (local.get $kk) (i32.const 1)))
          (br $kLoop)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rLoop)))
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
    (call $gemmPanels (local.get $a) (local.get $table) (local.get $lda) (local.get $bp) (local.get $c)
      (local.get $m) (local.get $k) (local.get $n) (local.get $n)
      (local.get $kcMax) (local.get $runLen) (local.get $runStride) (local.get $accumulate)))

  ;; gemmPacked for n of C's columns in rows of ldn floats: with bp at packed B's panel p/8 (bp + p·k floats) and c at
  ;; C's column p, columns p..p + n − 1 of the whole product, each element's sum gemmPacked's (threads may share a
  ;; product's panels instead of its rows).
  (func $gemmPanels (export "gemmPanels")
    (param $a i32) (param $table i32) (param $lda i32) (param $bp i32) (param $c i32)
    (param $m i32) (param $k i32) (param $n i32) (param $ldn i32) (param $kcMax i32) (param $runLen i32) (param $runStride i32) (param $accumulate i32)
    (local $kb i32) (local $kc i32) (local $i i32) (local $p i32) (local $ldc i32) (local $panel i32) (local $out i32)
    (local $done i32) (local $len i32) (local $shift i32)
    (local $r0 i32) (local $r1 i32) (local $r2 i32) (local $r3 i32) (local $r4 i32) (local $r5 i32)
    (local.set $ldc (i32.shl (local.get $ldn) (i32.const 2)))
    (block $kbDone (loop $kbLoop
      (br_if $kbDone (i32.ge_u (local.get $kb) (local.get $k)))
      (local.set $kc (i32.sub (local.get $k) (local.get $kb)))
      (if (i32.gt_u (local.get $kc) (local.get $kcMax)) (then (local.set $kc (local.get $kcMax))))
      (local.set $i (i32.const 0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $m)))
        ;; where this tile's rows start (the same for every panel)
        (local.set $r0 (call $rowStart (local.get $a) (local.get $table) (local.get $lda) (local.get $i) (i32.const 0)))
        (if (i32.le_u (i32.add (local.get $i) (i32.const 2)) (local.get $m))
          (then
            (local.set $r1 (call $rowStart (local.get $a) (local.get $table) (local.get $lda) (i32.add (local.get $i) (i32.const 1)) (i32.const 0)))))
        (if (i32.le_u (i32.add (local.get $i) (i32.const 6)) (local.get $m))
          (then
            (local.set $r2 (call $rowStart (local.get $a) (local.get $table) (local.get $lda) (i32.add (local.get $i) (i32.const 2)) (i32.const 0)))
            (local.set $r3 (call $rowStart (local.get $a) (local.get $table) (local.get $lda) (i32.add (local.get $i) (i32.const 3)) (i32.const 0)))
            (local.set $r4 (call $rowStart (local.get $a) (local.get $table) (local.get $lda) (i32.add (local.get $i) (i32.const 4)) (i32.const 0)))
            (local.set $r5 (call $rowStart (local.get $a) (local.get $table) (local.get $lda) (i32.add (local.get $i) (i32.const 5)) (i32.const 0)))))
        (local.set $p (i32.const 0))
        (block $pDone (loop $pLoop
          (br_if $pDone (i32.ge_u (local.get $p) (local.get $n)))
          ;; this block's part of panel p/8, and C[i][p]
          (local.set $panel (i32.add (local.get $bp) (i32.shl (i32.add (i32.mul (local.get $p) (local.get $k)) (i32.shl (local.get $kb) (i32.const 3))) (i32.const 2))))
          (local.set $out (i32.add (local.get $c) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $ldn)) (local.get $p)) (i32.const 2))))
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
              (else (if (i32.and (global.get $twoRows) (i32.le_u (i32.add (local.get $i) (i32.const 2)) (local.get $m)))
                (then
                  (call $rows2x8
                    (i32.add (local.get $r0) (local.get $shift))
                    (i32.add (local.get $r1) (local.get $shift))
                    (local.get $len) (i32.add (local.get $panel) (i32.shl (local.get $done) (i32.const 5))) (local.get $out) (local.get $ldc)
                    (i32.or (local.get $accumulate) (i32.or (local.get $kb) (local.get $done)))))
                (else
                  (call $rows1x8
                    (i32.add (local.get $r0) (local.get $shift))
                    (local.get $len) (i32.add (local.get $panel) (i32.shl (local.get $done) (i32.const 5))) (local.get $out) (local.get $ldc)
                    (i32.or (local.get $accumulate) (i32.or (local.get $kb) (local.get $done))))))))
            (local.set $done (i32.add (local.get $done) (local.get $len)))
            (local.set $shift (i32.add (local.get $shift) (local.get $runStride)))
            (br $runLoop)))
          (local.set $p (i32.add (local.get $p) (i32.const 8)))
          (br $pLoop)))
        (local.set $i (i32.add (local.get $i)
          (select (i32.const 6)
            (select (i32.const 2) (i32.const 1) (i32.and (global.get $twoRows) (i32.le_u (i32.add (local.get $i) (i32.const 2)) (local.get $m))))
            (i32.le_u (i32.add (local.get $i) (i32.const 6)) (local.get $m)))))
        (br $iLoop)))
      (local.set $kb (i32.add (local.get $kb) (local.get $kc)))
      (br $kbLoop))))

  ;; Bit i of the result: tap i = fh·kw + fw of the output pixel in row oi, column oj lands inside the h × w input,
  ;; at (oi·sh + fh − top, oj·sw + fw − left).
  (func $tapMask (param $oi i32) (param $oj i32) (param $h i32) (param $w i32)
    (param $kh i32) (param $kw i32) (param $sh i32) (param $sw i32) (param $top i32) (param $left i32) (result i32)
    (local $fh i32) (local $fw i32) (local $ih i32) (local $iw i32) (local $mask i32)
    (block $fhDone (loop $fhLoop
      (br_if $fhDone (i32.ge_u (local.get $fh) (local.get $kh)))
      (local.set $ih (i32.sub (i32.add (i32.mul (local.get $oi) (local.get $sh)) (local.get $fh)) (local.get $top)))
      (local.set $fw (i32.const 0))
      (block $fwDone (loop $fwLoop
        (br_if $fwDone (i32.ge_u (local.get $fw) (local.get $kw)))
        (local.set $iw (i32.sub (i32.add (i32.mul (local.get $oj) (local.get $sw)) (local.get $fw)) (local.get $left)))
        ;; unsigned: a negative row or column is out of range too
        (if (i32.and (i32.lt_u (local.get $ih) (local.get $h)) (i32.lt_u (local.get $iw) (local.get $w)))
          (then (local.set $mask (i32.or (local.get $mask)
            (i32.shl (i32.const 1) (i32.add (i32.mul (local.get $fh) (local.get $kw)) (local.get $fw)))))))
        (local.set $fw (i32.add (local.get $fw) (i32.const 1)))
        (br $fwLoop)))
      (local.set $fh (i32.add (local.get $fh) (i32.const 1)))
      (br $fhLoop)))
    (local.get $mask))

  ;; A convolution's input gradient dx += col2im(dy · Wᵀ), with the column gradients never whole in memory: output
  ;; pixels in tiles of 6 (the last tile shorter), each tile's rows of dy · Wᵀ (gemmPacked's sums: bp = Wᵀ [co, K]
  ;; packed, K = kh·kw·c, c % 8 == 0) into `scratch` (6·K floats, then 6·co for the tile's rows of dy), then added into dx pixel by pixel, tap by tap,
  ;; as col2imAdd adds them (simd.wat): every dx element gets the same sums in the same order. Taps that land outside
  ;; dx for all of a tile's pixels are not computed (col2imAdd skips them). kh·kw ≤ 32; dx zeroed by the caller.
  (func (export "gemmCol2im")
    (param $dy i32) (param $bp i32) (param $dx i32) (param $scratch i32) (param $pixels i32) (param $co i32)
    (param $c i32) (param $h i32) (param $w i32) (param $oh i32) (param $ow i32)
    (param $kh i32) (param $kw i32) (param $sh i32) (param $sw i32) (param $top i32) (param $left i32)
    (local $p i32) (local $rows i32) (local $r i32) (local $mask i32) (local $q i32) (local $k i32) (local $lda i32)
    (local $ldk i32) (local $cBytes i32) (local $a i32) (local $panel i32) (local $src i32) (local $d i32) (local $v i32)
    (local $oi i32) (local $oj i32) (local $fh i32) (local $fw i32) (local $ih i32) (local $iw i32) (local $img i32)
    (local $mi i32) (local $mj i32) (local $ap i32)
    (local.set $ap (i32.add (local.get $scratch) (i32.mul (i32.mul (i32.mul (local.get $kh) (local.get $kw)) (local.get $c)) (i32.const 24))))
    (local.set $cBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $k (i32.mul (i32.mul (local.get $kh) (local.get $kw)) (local.get $c)))
    (local.set $ldk (i32.shl (local.get $k) (i32.const 2)))
    (local.set $lda (i32.shl (local.get $co) (i32.const 2)))
    (block $pDone (loop $pLoop
      (br_if $pDone (i32.ge_u (local.get $p) (local.get $pixels)))
      (local.set $rows (i32.sub (local.get $pixels) (local.get $p)))
      (if (i32.gt_u (local.get $rows) (i32.const 6)) (then (local.set $rows (i32.const 6))))
      ;; (oi, oj): the tile's first pixel's output row (in its image) and column, advanced pixel by pixel
      (local.set $mask (i32.const 0))
      (local.set $mi (local.get $oi))
      (local.set $mj (local.get $oj))
      (local.set $r (i32.const 0))
      (block $mDone (loop $mLoop
        (br_if $mDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $mask (i32.or (local.get $mask)
          (call $tapMask (local.get $mi) (local.get $mj) (local.get $h) (local.get $w)
            (local.get $kh) (local.get $kw) (local.get $sh) (local.get $sw) (local.get $top) (local.get $left))))
        (local.set $mj (i32.add (local.get $mj) (i32.const 1)))
        (if (i32.eq (local.get $mj) (local.get $ow)) (then
          (local.set $mj (i32.const 0))
          (local.set $mi (i32.add (local.get $mi) (i32.const 1)))
          (if (i32.eq (local.get $mi) (local.get $oh)) (then (local.set $mi (i32.const 0))))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $mLoop)))
      ;; the tile's rows of dy · Wᵀ, panel by panel, for the taps some pixel needs; a full tile's rows of dy packed at ap
      (local.set $a (i32.add (local.get $dy) (i32.mul (local.get $p) (local.get $lda))))
      (if (i32.eq (local.get $rows) (i32.const 6)) (then
        (local.set $v (i32.const 0))
        (block $packDone (loop $packLoop
          (br_if $packDone (i32.ge_u (local.get $v) (local.get $co)))
          (local.set $d (i32.add (local.get $ap) (i32.mul (local.get $v) (i32.const 24))))
          (local.set $src (i32.add (local.get $a) (i32.shl (local.get $v) (i32.const 2))))
          (f32.store offset=0 (local.get $d) (f32.load (local.get $src)))
          (f32.store offset=4 (local.get $d) (f32.load (i32.add (local.get $src) (local.get $lda))))
          (f32.store offset=8 (local.get $d) (f32.load (i32.add (local.get $src) (i32.mul (local.get $lda) (i32.const 2)))))
          (f32.store offset=12 (local.get $d) (f32.load (i32.add (local.get $src) (i32.mul (local.get $lda) (i32.const 3)))))
          (f32.store offset=16 (local.get $d) (f32.load (i32.add (local.get $src) (i32.mul (local.get $lda) (i32.const 4)))))
          (f32.store offset=20 (local.get $d) (f32.load (i32.add (local.get $src) (i32.mul (local.get $lda) (i32.const 5)))))
          (local.set $v (i32.add (local.get $v) (i32.const 1)))
          (br $packLoop)))))
      (local.set $q (i32.const 0))
      (block $qDone (loop $qLoop
        (br_if $qDone (i32.ge_u (local.get $q) (local.get $k)))
        (if (i32.and (i32.shr_u (local.get $mask) (i32.div_u (local.get $q) (local.get $c))) (i32.const 1))
          (then
            (local.set $panel (i32.add (local.get $bp) (i32.mul (local.get $q) (local.get $lda))))
            (if (i32.eq (local.get $rows) (i32.const 6))
              (then
                (call $packed6x8
                  (local.get $ap) (local.get $co) (local.get $panel) (i32.add (local.get $scratch) (i32.shl (local.get $q) (i32.const 2))) (local.get $ldk)))
              (else
                (local.set $r (i32.const 0))
                (block $rDone (loop $rLoop
                  (br_if $rDone (i32.ge_u (local.get $r) (local.get $rows)))
                  (call $rows1x8
                    (i32.add (local.get $a) (i32.mul (local.get $lda) (local.get $r)))
                    (local.get $co) (local.get $panel)
                    (i32.add (i32.add (local.get $scratch) (i32.mul (local.get $ldk) (local.get $r))) (i32.shl (local.get $q) (i32.const 2)))
                    (local.get $ldk) (i32.const 0))
                  (local.set $r (i32.add (local.get $r) (i32.const 1)))
                  (br $rLoop)))))))
        (local.set $q (i32.add (local.get $q) (i32.const 8)))
        (br $qLoop)))
      ;; scatter-add, pixel by pixel in order, as col2imAdd
      (local.set $r (i32.const 0))
      (block $sDone (loop $sLoop
        (br_if $sDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $src (i32.add (local.get $scratch) (i32.mul (local.get $ldk) (local.get $r))))
        ;; (ih, iw): where tap (0, 0) lands; d: its address in dx (wrapping where outside, never used there), stepped
        ;; a row of dx per fh and a pixel per fw
        (local.set $ih (i32.sub (i32.mul (local.get $oi) (local.get $sh)) (local.get $top)))
        (local.set $iw (i32.sub (i32.mul (local.get $oj) (local.get $sw)) (local.get $left)))
        (local.set $d (i32.add (local.get $dx) (i32.mul (local.get $cBytes)
          (i32.add (i32.mul (i32.add (i32.mul (local.get $img) (local.get $h)) (local.get $ih)) (local.get $w)) (local.get $iw)))))
        (local.set $fh (i32.const 0))
        (block $fhDone (loop $fhLoop
          (br_if $fhDone (i32.ge_u (local.get $fh) (local.get $kh)))
          (if (i32.lt_u (i32.add (local.get $ih) (local.get $fh)) (local.get $h))
            (then
              (local.set $a (local.get $d))
              (local.set $panel (local.get $src))
              (local.set $fw (i32.const 0))
              (block $fwDone (loop $fwLoop
                (br_if $fwDone (i32.ge_u (local.get $fw) (local.get $kw)))
                (if (i32.lt_u (i32.add (local.get $iw) (local.get $fw)) (local.get $w))
                  (then
                    (local.set $v (i32.const 0))
                    (block $vDone (loop $vLoop
                      (br_if $vDone (i32.ge_u (local.get $v) (local.get $cBytes)))
                      (v128.store offset=0 (i32.add (local.get $a) (local.get $v))
                        (f32x4.add (v128.load offset=0 (i32.add (local.get $a) (local.get $v))) (v128.load offset=0 (i32.add (local.get $panel) (local.get $v)))))
                      (v128.store offset=16 (i32.add (local.get $a) (local.get $v))
                        (f32x4.add (v128.load offset=16 (i32.add (local.get $a) (local.get $v))) (v128.load offset=16 (i32.add (local.get $panel) (local.get $v)))))
                      (local.set $v (i32.add (local.get $v) (i32.const 32)))
                      (br $vLoop)))))
                (local.set $a (i32.add (local.get $a) (local.get $cBytes)))
                (local.set $panel (i32.add (local.get $panel) (local.get $cBytes)))
                (local.set $fw (i32.add (local.get $fw) (i32.const 1)))
                (br $fwLoop)))))
          (local.set $d (i32.add (local.get $d) (i32.mul (local.get $w) (local.get $cBytes))))
          (local.set $src (i32.add (local.get $src) (i32.mul (local.get $kw) (local.get $cBytes))))
          (local.set $fh (i32.add (local.get $fh) (i32.const 1)))
          (br $fhLoop)))
        (local.set $oj (i32.add (local.get $oj) (i32.const 1)))
        (if (i32.eq (local.get $oj) (local.get $ow)) (then
          (local.set $oj (i32.const 0))
          (local.set $oi (i32.add (local.get $oi) (i32.const 1)))
          (if (i32.eq (local.get $oi) (local.get $oh)) (then
            (local.set $oi (i32.const 0))
            (local.set $img (i32.add (local.get $img) (i32.const 1)))))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $sLoop)))
      (local.set $p (i32.add (local.get $p) (local.get $rows)))
      (br $pLoop))))
)
