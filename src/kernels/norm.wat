;; Hand-written WebAssembly SIMD loops for batch norm's gradient on tfjs's wasm backend (imported memory; every
;; pointer is a byte offset). Each computes exactly the float32 operations, in the same order, that tfjs-core's
;; composite gradient runs as separate kernels, so the results are the same bits; see batch-norm-grad.ts.
;; Regenerate src/kernels/norm-module.ts after editing: sh src/kernels/build-simd.sh (needs Debian's wabt).
(module
  (import "env" "memory" (memory 1))

;; Batch norm's gradient over NHWC rows of cBytes (channels in fours), per element (c its channel):
  ;;   xm = x − mean[c]; dys = dy·s[c]
  ;;   dx = (dy·r[c])·s[c]                          (tfjs: mul(mul(dy, tile(r)), scale))
  ;;   sums (float64, rows in order, as simd.wat's sumRowsF64):
  ;;     mean: negR[c]·dys; variance: (h[c]·xm)·dys; scale: dy·(xm·r[c]); offset: dy
  ;; vecs: five float32 vectors of c, one after another: mean, r, s, h, negR. acc: four float64 vectors of c
  ;; (mean, variance, scale, offset), zeroed by the caller. Blocks of 32 rows, four channels at a time, so the
  ;; eight float64x2 sums stay in locals over a block; each channel still sums its rows in order.
  (func (export "batchNormGrad")
    (param $x i32) (param $dy i32) (param $dx i32) (param $vecs i32) (param $acc i32) (param $rows i32) (param $cBytes i32)
    (local $r0 i32) (local $r1 i32) (local $r i32) (local $k i32) (local $p i32) (local $v i32) (local $q i32)
    (local $dyv v128) (local $xm v128) (local $dys v128) (local $e v128)
    (local $m v128) (local $rv v128) (local $sv v128) (local $hv v128) (local $nv v128)
    (local $a0 v128) (local $a1 v128) (local $b0 v128) (local $b1 v128)
    (local $c0 v128) (local $c1 v128) (local $d0 v128) (local $d1 v128)
    (block $blocksDone (loop $blockLoop
      (br_if $blocksDone (i32.ge_u (local.get $r0) (local.get $rows)))
      (local.set $r1 (select (local.get $rows) (i32.add (local.get $r0) (i32.const 32))
        (i32.lt_u (i32.sub (local.get $rows) (local.get $r0)) (i32.const 32))))
      (local.set $k (i32.const 0))
      (block $kDone (loop $kLoop
        (br_if $kDone (i32.ge_u (local.get $k) (local.get $cBytes)))
        (local.set $v (i32.add (local.get $vecs) (local.get $k)))
        (local.set $m (v128.load (local.get $v)))
        (local.set $rv (v128.load (i32.add (local.get $v) (local.get $cBytes))))
        (local.set $sv (v128.load (i32.add (local.get $v) (i32.shl (local.get $cBytes) (i32.const 1)))))
        (local.set $hv (v128.load (i32.add (local.get $v) (i32.mul (local.get $cBytes) (i32.const 3)))))
        (local.set $nv (v128.load (i32.add (local.get $v) (i32.shl (local.get $cBytes) (i32.const 2)))))
        ;; the sums of channels k/4 .. k/4 + 3: at 2k within each float64 vector of 2·cBytes
        (local.set $q (i32.add (local.get $acc) (i32.shl (local.get $k) (i32.const 1))))
        (local.set $a0 (v128.load (local.get $q)))
        (local.set $a1 (v128.load offset=16 (local.get $q)))
        (local.set $q (i32.add (local.get $q) (i32.shl (local.get $cBytes) (i32.const 1))))
        (local.set $b0 (v128.load (local.get $q)))
        (local.set $b1 (v128.load offset=16 (local.get $q)))
        (local.set $q (i32.add (local.get $q) (i32.shl (local.get $cBytes) (i32.const 1))))
        (local.set $c0 (v128.load (local.get $q)))
        (local.set $c1 (v128.load offset=16 (local.get $q)))
        (local.set $q (i32.add (local.get $q) (i32.shl (local.get $cBytes) (i32.const 1))))
        (local.set $d0 (v128.load (local.get $q)))
        (local.set $d1 (v128.load offset=16 (local.get $q)))
        (local.set $p (i32.add (i32.mul (local.get $r0) (local.get $cBytes)) (local.get $k)))
        (local.set $r (local.get $r0))
        (block $rDone (loop $rLoop
          (br_if $rDone (i32.ge_u (local.get $r) (local.get $r1)))
          (local.set $dyv (v128.load (i32.add (local.get $dy) (local.get $p))))
          (local.set $xm (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $p))) (local.get $m)))
          (local.set $dys (f32x4.mul (local.get $dyv) (local.get $sv)))
          (v128.store (i32.add (local.get $dx) (local.get $p)) (f32x4.mul (f32x4.mul (local.get $dyv) (local.get $rv)) (local.get $sv)))
          (local.set $e (f32x4.mul (local.get $nv) (local.get $dys)))
          (local.set $a0 (f64x2.add (local.get $a0) (f64x2.promote_low_f32x4 (local.get $e))))
          (local.set $a1 (f64x2.add (local.get $a1)
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $e) (local.get $e)))))
          (local.set $e (f32x4.mul (f32x4.mul (local.get $hv) (local.get $xm)) (local.get $dys)))
          (local.set $b0 (f64x2.add (local.get $b0) (f64x2.promote_low_f32x4 (local.get $e))))
          (local.set $b1 (f64x2.add (local.get $b1)
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $e) (local.get $e)))))
          (local.set $e (f32x4.mul (local.get $dyv) (f32x4.mul (local.get $xm) (local.get $rv))))
          (local.set $c0 (f64x2.add (local.get $c0) (f64x2.promote_low_f32x4 (local.get $e))))
          (local.set $c1 (f64x2.add (local.get $c1)
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $e) (local.get $e)))))
          (local.set $d0 (f64x2.add (local.get $d0) (f64x2.promote_low_f32x4 (local.get $dyv))))
          (local.set $d1 (f64x2.add (local.get $d1)
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $dyv) (local.get $dyv)))))
          (local.set $p (i32.add (local.get $p) (local.get $cBytes)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br $rLoop)))
        (local.set $q (i32.add (local.get $acc) (i32.shl (local.get $k) (i32.const 1))))
        (v128.store (local.get $q) (local.get $a0))
        (v128.store offset=16 (local.get $q) (local.get $a1))
        (local.set $q (i32.add (local.get $q) (i32.shl (local.get $cBytes) (i32.const 1))))
        (v128.store (local.get $q) (local.get $b0))
        (v128.store offset=16 (local.get $q) (local.get $b1))
        (local.set $q (i32.add (local.get $q) (i32.shl (local.get $cBytes) (i32.const 1))))
        (v128.store (local.get $q) (local.get $c0))
        (v128.store offset=16 (local.get $q) (local.get $c1))
        (local.set $q (i32.add (local.get $q) (i32.shl (local.get $cBytes) (i32.const 1))))
        (v128.store (local.get $q) (local.get $d0))
        (v128.store offset=16 (local.get $q) (local.get $d1))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $kLoop)))
      (local.set $r0 (local.get $r1))
      (br $blockLoop))))
;; acc[c] += Σ_r x[r·cols + c] in float64 (acc: cols doubles, zeroed by the caller; cBytes = 4·cols, a multiple of
  ;; 16): the sums of simd.wat's sumRowsF64, with each channel's rows added in the same order, but over blocks of
  ;; 32 rows with eight channels' sums held in locals (the last group of four channels alone when cols is not in 8s).
  (func (export "sumRowsF64Blocked")
    (param $x i32) (param $acc i32) (param $rows i32) (param $cBytes i32)
    (local $r0 i32) (local $r1 i32) (local $r i32) (local $k i32) (local $p i32) (local $q i32) (local $wide i32)
    (local $v v128) (local $u v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (block $blocksDone (loop $blockLoop
      (br_if $blocksDone (i32.ge_u (local.get $r0) (local.get $rows)))
      (local.set $r1 (select (local.get $rows) (i32.add (local.get $r0) (i32.const 32))
        (i32.lt_u (i32.sub (local.get $rows) (local.get $r0)) (i32.const 32))))
      (local.set $k (i32.const 0))
      (block $kDone (loop $kLoop
        (br_if $kDone (i32.ge_u (local.get $k) (local.get $cBytes)))
        ;; two groups of four channels when both are there, else one (its second half's sums left alone)
        (local.set $wide (i32.le_u (i32.add (local.get $k) (i32.const 32)) (local.get $cBytes)))
        (local.set $q (i32.add (local.get $acc) (i32.shl (local.get $k) (i32.const 1))))
        (local.set $a0 (v128.load (local.get $q)))
        (local.set $a1 (v128.load offset=16 (local.get $q)))
        (if (local.get $wide) (then
          (local.set $a2 (v128.load offset=32 (local.get $q)))
          (local.set $a3 (v128.load offset=48 (local.get $q)))))
        (local.set $p (i32.add (i32.add (local.get $x) (i32.mul (local.get $r0) (local.get $cBytes))) (local.get $k)))
        (local.set $r (local.get $r0))
        (block $rDone (loop $rLoop
          (br_if $rDone (i32.ge_u (local.get $r) (local.get $r1)))
          (local.set $v (v128.load (local.get $p)))
          (local.set $a0 (f64x2.add (local.get $a0) (f64x2.promote_low_f32x4 (local.get $v))))
          (local.set $a1 (f64x2.add (local.get $a1)
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
          (if (local.get $wide) (then
            (local.set $u (v128.load offset=16 (local.get $p)))
            (local.set $a2 (f64x2.add (local.get $a2) (f64x2.promote_low_f32x4 (local.get $u))))
            (local.set $a3 (f64x2.add (local.get $a3)
              (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $u) (local.get $u)))))))
          (local.set $p (i32.add (local.get $p) (local.get $cBytes)))
          (local.set $r (i32.add (local.get $r) (i32.const 1)))
          (br $rLoop)))
        (v128.store (local.get $q) (local.get $a0))
        (v128.store offset=16 (local.get $q) (local.get $a1))
        (if (local.get $wide) (then
          (v128.store offset=32 (local.get $q) (local.get $a2))
          (v128.store offset=48 (local.get $q) (local.get $a3))))
        (local.set $k (i32.add (local.get $k) (select (i32.const 32) (i32.const 16) (local.get $wide))))
        (br $kLoop)))
      (local.set $r0 (local.get $r1))
      (br $blockLoop))))
;; The gradients of ReLU and of Square over n floats (bytes = 4n, a multiple of 16), as tfjs-core composes them:
  ;; Relu: dy·step(x), step(x) = 1 for x > 0, x itself for NaN (wasm's Step gives NaN), else 0;
  ;; Square: dy·(x·2).
  (func (export "reluGrad") (param $x i32) (param $dy i32) (param $out i32) (param $bytes i32)
    (local $k i32) (local $v v128)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (local.get $bytes)))
      (local.set $v (v128.load (i32.add (local.get $x) (local.get $k))))
      (v128.store (i32.add (local.get $out) (local.get $k))
        (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $k)))
          (v128.bitselect (f32x4.splat (f32.const 1)) (v128.and (local.get $v) (f32x4.ne (local.get $v) (local.get $v)))
            (f32x4.gt (local.get $v) (f32x4.splat (f32.const 0))))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $next))))

  (func (export "squareGrad") (param $x i32) (param $dy i32) (param $out i32) (param $bytes i32)
    (local $k i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (local.get $bytes)))
      (v128.store (i32.add (local.get $out) (local.get $k))
        (f32x4.mul (v128.load (i32.add (local.get $dy) (local.get $k)))
          (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $k))) (f32x4.splat (f32.const 2)))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $next))))
)
