;; Hand-written WebAssembly SIMD loops for fwprune's sparse inference (src/inference/sparse-model.ts). They run on
;; the memory of tfjs's wasm backend (imported), so they read and write tensors in place; every pointer is a byte
;; offset. Regenerate src/kernels/sparse-module.ts after editing: sh src/kernels/build-simd.sh (needs Debian's wabt).
;;
;; The sparse product keeps a weight matrix in CSR over its output rows (rowPtr, idx, vals) and its activations with
;; the batch innermost, so one output row of a segment is a run of floats and each stored weight adds
;; w · (a run of input floats) to it: the run's accumulators stay in registers over the whole row of weights, and
;; every multiply-add costs one load.
(module
  (import "env" "memory" (memory 1))

  ;; out[0..32) = act(bias + Σ_j vals[j]·in[idx[j]·scale + 0..32)) over the entries j of one row (8 vectors).
  (func $chunk8
    (param $in i32) (param $out i32) (param $idx i32) (param $end i32) (param $vals i32) (param $scale i32)
    (param $bias v128) (param $relu i32)
    (local $p i32) (local $w v128) (local $zero v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local.set $a0 (local.get $bias))
    (local.set $a1 (local.get $bias))
    (local.set $a2 (local.get $bias))
    (local.set $a3 (local.get $bias))
    (local.set $a4 (local.get $bias))
    (local.set $a5 (local.get $bias))
    (local.set $a6 (local.get $bias))
    (local.set $a7 (local.get $bias))
    (block $done (loop $entries
      (br_if $done (i32.ge_u (local.get $idx) (local.get $end)))
      (local.set $p (i32.add (local.get $in) (i32.mul (i32.load (local.get $idx)) (local.get $scale))))
      (local.set $w (v128.load32_splat (local.get $vals)))
      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $w) (v128.load offset=0 (local.get $p)))))
      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $w) (v128.load offset=16 (local.get $p)))))
      (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $w) (v128.load offset=32 (local.get $p)))))
      (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $w) (v128.load offset=48 (local.get $p)))))
      (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (local.get $w) (v128.load offset=64 (local.get $p)))))
      (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (local.get $w) (v128.load offset=80 (local.get $p)))))
      (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (local.get $w) (v128.load offset=96 (local.get $p)))))
      (local.set $a7 (f32x4.add (local.get $a7) (f32x4.mul (local.get $w) (v128.load offset=112 (local.get $p)))))
      (local.set $idx (i32.add (local.get $idx) (i32.const 4)))
      (local.set $vals (i32.add (local.get $vals) (i32.const 4)))
      (br $entries)))
    (if (local.get $relu) (then
      (local.set $a0 (f32x4.max (local.get $a0) (local.get $zero)))
      (local.set $a1 (f32x4.max (local.get $a1) (local.get $zero)))
      (local.set $a2 (f32x4.max (local.get $a2) (local.get $zero)))
      (local.set $a3 (f32x4.max (local.get $a3) (local.get $zero)))
      (local.set $a4 (f32x4.max (local.get $a4) (local.get $zero)))
      (local.set $a5 (f32x4.max (local.get $a5) (local.get $zero)))
      (local.set $a6 (f32x4.max (local.get $a6) (local.get $zero)))
      (local.set $a7 (f32x4.max (local.get $a7) (local.get $zero)))
    ))
    (v128.store offset=0 (local.get $out) (local.get $a0))
    (v128.store offset=16 (local.get $out) (local.get $a1))
    (v128.store offset=32 (local.get $out) (local.get $a2))
    (v128.store offset=48 (local.get $out) (local.get $a3))
    (v128.store offset=64 (local.get $out) (local.get $a4))
    (v128.store offset=80 (local.get $out) (local.get $a5))
    (v128.store offset=96 (local.get $out) (local.get $a6))
    (v128.store offset=112 (local.get $out) (local.get $a7))
  )

  ;; out[0..16) = act(bias + Σ_j vals[j]·in[idx[j]·scale + 0..16)) over the entries j of one row (4 vectors).
  (func $chunk4
    (param $in i32) (param $out i32) (param $idx i32) (param $end i32) (param $vals i32) (param $scale i32)
    (param $bias v128) (param $relu i32)
    (local $p i32) (local $w v128) (local $zero v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $a0 (local.get $bias))
    (local.set $a1 (local.get $bias))
    (local.set $a2 (local.get $bias))
    (local.set $a3 (local.get $bias))
    (block $done (loop $entries
      (br_if $done (i32.ge_u (local.get $idx) (local.get $end)))
      (local.set $p (i32.add (local.get $in) (i32.mul (i32.load (local.get $idx)) (local.get $scale))))
      (local.set $w (v128.load32_splat (local.get $vals)))
      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $w) (v128.load offset=0 (local.get $p)))))
      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $w) (v128.load offset=16 (local.get $p)))))
      (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $w) (v128.load offset=32 (local.get $p)))))
      (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $w) (v128.load offset=48 (local.get $p)))))
      (local.set $idx (i32.add (local.get $idx) (i32.const 4)))
      (local.set $vals (i32.add (local.get $vals) (i32.const 4)))
      (br $entries)))
    (if (local.get $relu) (then
      (local.set $a0 (f32x4.max (local.get $a0) (local.get $zero)))
      (local.set $a1 (f32x4.max (local.get $a1) (local.get $zero)))
      (local.set $a2 (f32x4.max (local.get $a2) (local.get $zero)))
      (local.set $a3 (f32x4.max (local.get $a3) (local.get $zero)))
    ))
    (v128.store offset=0 (local.get $out) (local.get $a0))
    (v128.store offset=16 (local.get $out) (local.get $a1))
    (v128.store offset=32 (local.get $out) (local.get $a2))
    (v128.store offset=48 (local.get $out) (local.get $a3))
  )

  ;; out[0..4) = act(bias + Σ_j vals[j]·in[idx[j]·scale + 0..4)) over the entries j of one row (1 vectors).
  (func $chunk1
    (param $in i32) (param $out i32) (param $idx i32) (param $end i32) (param $vals i32) (param $scale i32)
    (param $bias v128) (param $relu i32)
    (local $p i32) (local $w v128) (local $zero v128) (local $a0 v128)
    (local.set $a0 (local.get $bias))
    (block $done (loop $entries
      (br_if $done (i32.ge_u (local.get $idx) (local.get $end)))
      (local.set $p (i32.add (local.get $in) (i32.mul (i32.load (local.get $idx)) (local.get $scale))))
      (local.set $w (v128.load32_splat (local.get $vals)))
      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $w) (v128.load offset=0 (local.get $p)))))
      (local.set $idx (i32.add (local.get $idx) (i32.const 4)))
      (local.set $vals (i32.add (local.get $vals) (i32.const 4)))
      (br $entries)))
    (if (local.get $relu) (then
      (local.set $a0 (f32x4.max (local.get $a0) (local.get $zero)))
    ))
    (v128.store offset=0 (local.get $out) (local.get $a0))
  )

  ;; For each tile t, segment s and output row r (CSR row pointers rowPtr: rows + 1 i32 entry numbers; idx: i32 input
  ;; element numbers; vals: f32 weights):
  ;;   out[t·outTile + s·outSeg + r·outRow + 0..4·segVecs) =
  ;;     act(bias[r] + Σ_j vals[j] · in[t·inTile + s·inSeg + idx[j]·scale + 0..4·segVecs))
  ;; with act = ReLU when relu ≠ 0. Strides and scale in bytes. A valid stride-1 convolution over tiles [c][h][w][b]
  ;; is one call (segments = output rows, idx = (c·h + dy)·w + dx, scale = 4b); a dense layer over [features][n]
  ;; (segments = blocks of columns, idx = input feature, scale = 4n) is another.
  (func (export "spmm")
    (param $rowPtr i32) (param $idx i32) (param $vals i32) (param $bias i32) (param $in i32) (param $out i32)
    (param $rows i32) (param $tiles i32) (param $inTile i32) (param $outTile i32)
    (param $segs i32) (param $inSeg i32) (param $outSeg i32) (param $outRow i32)
    (param $segVecs i32) (param $scale i32) (param $relu i32)
    (local $t i32) (local $s i32) (local $r i32) (local $v i32) (local $inS i32) (local $outS i32) (local $o i32)
    (local $j0 i32) (local $j1 i32) (local $b v128) (local $i i32)
    (block $tDone (loop $tLoop
      (br_if $tDone (i32.ge_u (local.get $t) (local.get $tiles)))
      (local.set $s (i32.const 0))
      (block $sDone (loop $sLoop
        (br_if $sDone (i32.ge_u (local.get $s) (local.get $segs)))
        (local.set $inS (i32.add (local.get $in) (i32.add (i32.mul (local.get $t) (local.get $inTile)) (i32.mul (local.get $s) (local.get $inSeg)))))
        (local.set $outS (i32.add (local.get $out) (i32.add (i32.mul (local.get $t) (local.get $outTile)) (i32.mul (local.get $s) (local.get $outSeg)))))
        (local.set $r (i32.const 0))
        (block $rDone (loop $rLoop
          (br_if $rDone (i32.ge_u (local.get $r) (local.get $rows)))
          (local.set $j0 (i32.load (i32.add (local.get $rowPtr) (i32.shl (local.get $r) (i32.const 2)))))
          (local.set $j1 (i32.load offset=4 (i32.add (local.get $rowPtr) (i32.shl (local.get $r) (i32.const 2)))))
          (local.set $b (v128.load32_splat (i32.add (local.get $bias) (i32.shl (local.get $r) (i32.const 2)))))
          (local.set $o (i32.add (local.get $outS) (i32.mul (local.get $r) (local.get $outRow))))
          (local.set $j0 (i32.add (local.get $idx) (i32.shl (local.get $j0) (i32.const 2))))
          (local.set $j1 (i32.add (local.get $idx) (i32.shl (local.get $j1) (i32.const 2))))
          ;; vals are addressed like idx: vals + (entry pointer - idx)
          (local.set $i (i32.sub (local.get $vals) (local.get $idx)))
          (local.set $v (i32.const 0))
          (block $v8Done (loop $v8
            (br_if $v8Done (i32.gt_u (i32.add (local.get $v) (i32.const 8)) (local.get $segVecs)))
            (call $chunk8 (i32.add (local.get $inS) (i32.shl (local.get $v) (i32.const 4))) (i32.add (local.get $o) (i32.shl (local.get $v) (i32.const 4)))
              (local.get $j0) (local.get $j1) (i32.add (local.get $j0) (local.get $i)) (local.get $scale) (local.get $b) (local.get $relu))
            (local.set $v (i32.add (local.get $v) (i32.const 8)))
            (br $v8)))
          (block $v4Done (loop $v4
            (br_if $v4Done (i32.gt_u (i32.add (local.get $v) (i32.const 4)) (local.get $segVecs)))
            (call $chunk4 (i32.add (local.get $inS) (i32.shl (local.get $v) (i32.const 4))) (i32.add (local.get $o) (i32.shl (local.get $v) (i32.const 4)))
              (local.get $j0) (local.get $j1) (i32.add (local.get $j0) (local.get $i)) (local.get $scale) (local.get $b) (local.get $relu))
            (local.set $v (i32.add (local.get $v) (i32.const 4)))
            (br $v4)))
          (block $v1Done (loop $v1
            (br_if $v1Done (i32.ge_u (local.get $v) (local.get $segVecs)))
            (call $chunk1 (i32.add (local.get $inS) (i32.shl (local.get $v) (i32.const 4))) (i32.add (local.get $o) (i32.shl (local.get $v) (i32.const 4)))
              (local.get $j0) (local.get $j1) (i32.add (local.get $j0) (local.get $i)) (local.get $scale) (local.get $b) (local.get $relu))
            (local.set $v (i32.add (local.get $v) (i32.const 1)))
            (br $v1)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br $rLoop)))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $sLoop)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $tLoop))))

  ;; A 2×2, stride-2, unpadded max pool over planes [h][w][b] (b floats per position, b % 4 == 0):
  ;; out[p][i][j] = max of in[p][2i..2i+2][2j..2j+2], i < h/2, j < w/2 (rounded down).
  (func (export "maxPool2x2")
    (param $in i32) (param $out i32) (param $planes i32) (param $h i32) (param $w i32) (param $b i32)
    (local $p i32) (local $i i32) (local $j i32) (local $k i32) (local $oh i32) (local $ow i32)
    (local $posBytes i32) (local $rowBytes i32) (local $plane i32) (local $a i32)
    (local.set $oh (i32.shr_u (local.get $h) (i32.const 1)))
    (local.set $ow (i32.shr_u (local.get $w) (i32.const 1)))
    (local.set $posBytes (i32.shl (local.get $b) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $w) (local.get $posBytes)))
    (block $pDone (loop $pLoop
      (br_if $pDone (i32.ge_u (local.get $p) (local.get $planes)))
      (local.set $plane (i32.add (local.get $in) (i32.mul (local.get $p) (i32.mul (local.get $h) (local.get $rowBytes)))))
      (local.set $i (i32.const 0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $oh)))
        (local.set $j (i32.const 0))
        (block $jDone (loop $jLoop
          (br_if $jDone (i32.ge_u (local.get $j) (local.get $ow)))
          (local.set $a (i32.add (local.get $plane)
            (i32.add (i32.mul (i32.shl (local.get $i) (i32.const 1)) (local.get $rowBytes)) (i32.mul (i32.shl (local.get $j) (i32.const 1)) (local.get $posBytes)))))
          (local.set $k (i32.const 0))
          (block $kDone (loop $kLoop
            (br_if $kDone (i32.ge_u (local.get $k) (local.get $posBytes)))
            (v128.store (local.get $out)
              (f32x4.max
                (f32x4.max (v128.load (local.get $a)) (v128.load (i32.add (local.get $a) (local.get $posBytes))))
                (f32x4.max (v128.load (i32.add (local.get $a) (local.get $rowBytes)))
                           (v128.load (i32.add (i32.add (local.get $a) (local.get $rowBytes)) (local.get $posBytes))))))
            (local.set $a (i32.add (local.get $a) (i32.const 16)))
            (local.set $out (i32.add (local.get $out) (i32.const 16)))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br $kLoop)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iLoop)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $pLoop))))

  ;; out[0..8) = act(bias + max over a 2×2 window of the convolution), 8 images: the window's four positions are in
  ;; two input rows `row` bytes apart, two positions of 8 floats (32 bytes) each; for every entry j both rows add
  ;; vals[j]·in[idx[j]·scale + …]. The bias and ReLU commute with the max (both monotonic).
  (func $pool8
    (param $in i32) (param $out i32) (param $idx i32) (param $end i32) (param $vals i32) (param $scale i32)
    (param $row i32) (param $bias v128) (param $relu i32)
    (local $p i32) (local $q i32) (local $w v128) (local $m0 v128) (local $m1 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local.set $a0 (local.get $bias))
    (local.set $a1 (local.get $bias))
    (local.set $a2 (local.get $bias))
    (local.set $a3 (local.get $bias))
    (local.set $a4 (local.get $bias))
    (local.set $a5 (local.get $bias))
    (local.set $a6 (local.get $bias))
    (local.set $a7 (local.get $bias))
    (block $done (loop $entries
      (br_if $done (i32.ge_u (local.get $idx) (local.get $end)))
      (local.set $p (i32.add (local.get $in) (i32.mul (i32.load (local.get $idx)) (local.get $scale))))
      (local.set $q (i32.add (local.get $p) (local.get $row)))
      (local.set $w (v128.load32_splat (local.get $vals)))
      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $w) (v128.load offset=0 (local.get $p)))))
      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $w) (v128.load offset=16 (local.get $p)))))
      (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $w) (v128.load offset=32 (local.get $p)))))
      (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $w) (v128.load offset=48 (local.get $p)))))
      (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (local.get $w) (v128.load offset=0 (local.get $q)))))
      (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (local.get $w) (v128.load offset=16 (local.get $q)))))
      (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (local.get $w) (v128.load offset=32 (local.get $q)))))
      (local.set $a7 (f32x4.add (local.get $a7) (f32x4.mul (local.get $w) (v128.load offset=48 (local.get $q)))))
      (local.set $idx (i32.add (local.get $idx) (i32.const 4)))
      (local.set $vals (i32.add (local.get $vals) (i32.const 4)))
      (br $entries)))
    (local.set $m0 (f32x4.max (f32x4.max (local.get $a0) (local.get $a2)) (f32x4.max (local.get $a4) (local.get $a6))))
    (local.set $m1 (f32x4.max (f32x4.max (local.get $a1) (local.get $a3)) (f32x4.max (local.get $a5) (local.get $a7))))
    (if (local.get $relu) (then
      (local.set $m0 (f32x4.max (local.get $m0) (f32x4.splat (f32.const 0))))
      (local.set $m1 (f32x4.max (local.get $m1) (f32x4.splat (f32.const 0))))
    ))
    (v128.store offset=0 (local.get $out) (local.get $m0))
    (v128.store offset=16 (local.get $out) (local.get $m1))
  )

  ;; A valid stride-1 convolution followed by a 2×2 stride-2 max pool, over tiles of 8 images [c][h][w][8], in CSR
  ;; over output channels as spmm: for each tile t, pooled row i, channel r and pooled column j,
  ;;   out[t·outTile + i·outSeg + r·outRow + 32j + 0..32) = act(bias[r] + max of the window's 4 convolution outputs),
  ;; whose input starts at in + t·inTile + 2i·inRowBytes + 64j (+ idx[j]·scale for each entry). Output rows and
  ;; columns the pool leaves out (odd sizes) are not computed.
  (func (export "spconvPool2x2")
    (param $rowPtr i32) (param $idx i32) (param $vals i32) (param $bias i32) (param $in i32) (param $out i32)
    (param $rows i32) (param $tiles i32) (param $inTile i32) (param $outTile i32)
    (param $pooledRows i32) (param $pooledCols i32) (param $inRowBytes i32) (param $outSeg i32) (param $outRow i32)
    (param $scale i32) (param $relu i32)
    (local $t i32) (local $s i32) (local $r i32) (local $v i32) (local $inS i32) (local $outS i32) (local $o i32)
    (local $j0 i32) (local $j1 i32) (local $b v128) (local $i i32)
    (block $tDone (loop $tLoop
      (br_if $tDone (i32.ge_u (local.get $t) (local.get $tiles)))
      (local.set $s (i32.const 0))
      (block $sDone (loop $sLoop
        (br_if $sDone (i32.ge_u (local.get $s) (local.get $pooledRows)))
        (local.set $inS (i32.add (local.get $in) (i32.add (i32.mul (local.get $t) (local.get $inTile)) (i32.mul (i32.shl (local.get $s) (i32.const 1)) (local.get $inRowBytes)))))
        (local.set $outS (i32.add (local.get $out) (i32.add (i32.mul (local.get $t) (local.get $outTile)) (i32.mul (local.get $s) (local.get $outSeg)))))
        (local.set $r (i32.const 0))
        (block $rDone (loop $rLoop
          (br_if $rDone (i32.ge_u (local.get $r) (local.get $rows)))
          (local.set $j0 (i32.load (i32.add (local.get $rowPtr) (i32.shl (local.get $r) (i32.const 2)))))
          (local.set $j1 (i32.load offset=4 (i32.add (local.get $rowPtr) (i32.shl (local.get $r) (i32.const 2)))))
          (local.set $b (v128.load32_splat (i32.add (local.get $bias) (i32.shl (local.get $r) (i32.const 2)))))
          (local.set $o (i32.add (local.get $outS) (i32.mul (local.get $r) (local.get $outRow))))
          (local.set $j0 (i32.add (local.get $idx) (i32.shl (local.get $j0) (i32.const 2))))
          (local.set $j1 (i32.add (local.get $idx) (i32.shl (local.get $j1) (i32.const 2))))
          (local.set $i (i32.sub (local.get $vals) (local.get $idx)))
          (local.set $v (i32.const 0))
          (block $vDone (loop $vLoop
            (br_if $vDone (i32.ge_u (local.get $v) (local.get $pooledCols)))
            (call $pool8 (i32.add (local.get $inS) (i32.shl (local.get $v) (i32.const 6))) (i32.add (local.get $o) (i32.shl (local.get $v) (i32.const 5)))
              (local.get $j0) (local.get $j1) (i32.add (local.get $j0) (local.get $i)) (local.get $scale) (local.get $inRowBytes) (local.get $b) (local.get $relu))
            (local.set $v (i32.add (local.get $v) (i32.const 1)))
            (br $vLoop)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br $rLoop)))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (br $sLoop)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $tLoop))))

  ;; Tiles [t][c][h][w][8] → columns [(y·w + x)·c + ci][8t + b] (flatten's feature order, images innermost; each
  ;; column row `colBytes` long).
  (func (export "tilesToCols")
    (param $in i32) (param $out i32) (param $tiles i32) (param $c i32) (param $h i32) (param $w i32) (param $colBytes i32)
    (local $t i32) (local $ci i32) (local $pos i32) (local $plane i32) (local $dst i32) (local $step i32)
    (local.set $plane (i32.mul (local.get $h) (local.get $w)))
    (local.set $step (i32.mul (local.get $c) (local.get $colBytes)))
    (block $tDone (loop $tLoop
      (br_if $tDone (i32.ge_u (local.get $t) (local.get $tiles)))
      (local.set $ci (i32.const 0))
      (block $cDone (loop $cLoop
        (br_if $cDone (i32.ge_u (local.get $ci) (local.get $c)))
        (local.set $dst (i32.add (local.get $out) (i32.add (i32.shl (local.get $t) (i32.const 5)) (i32.mul (local.get $ci) (local.get $colBytes)))))
        (local.set $pos (i32.const 0))
        (block $pDone (loop $pLoop
          (br_if $pDone (i32.ge_u (local.get $pos) (local.get $plane)))
          (v128.store offset=0 (local.get $dst) (v128.load offset=0 (local.get $in)))
          (v128.store offset=16 (local.get $dst) (v128.load offset=16 (local.get $in)))
          (local.set $in (i32.add (local.get $in) (i32.const 32)))
          (local.set $dst (i32.add (local.get $dst) (local.get $step)))
          (local.set $pos (i32.add (local.get $pos) (i32.const 1)))
          (br $pLoop)))
        (local.set $ci (i32.add (local.get $ci) (i32.const 1)))
        (br $cLoop)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $tLoop))))

)
