;; Hand-written WebAssembly SIMD loops for fwprune's wasm gradient kernels. They run on the memory of
;; tfjs's wasm backend (imported), so they read and write tensors in place; every pointer is a byte offset.
;; Regenerate src/kernels/simd-module.ts after editing: sh src/kernels/build-simd.sh (needs Debian's wabt).
(module
  (import "env" "memory" (memory 1))

  ;; y of a 2×2, stride-2, unpadded max pool over NHWC x (channels % 4 == 0) for `batch` images: XNNPACK's 9-input
  ;; maximum (wasm x86 build) bit for bit, NaN and ±0 included: its inputs i0..i3 the window column by column
  ;; (i0 = (0,0), i1 = (1,0), i2 = (0,1), i3 = (1,1)), i4..i8 = i0; y = pmin(+∞, pmax(−∞, pmax(pmax(i0, pmax(i3, i2)),
  ;; pmax(pmax(pmax(i0, i1), i0), i0)))). Odd last rows/columns are left out.
  (func (export "maxPool2x2")
    (param $x i32) (param $y i32) (param $batch i32) (param $h i32) (param $w i32) (param $c i32) (param $oh i32) (param $ow i32)
    (local $b i32) (local $i i32) (local $j i32) (local $k i32)
    (local $cBytes i32) (local $rowBytes i32) (local $a i32) (local $o i32)
    (local $i0 v128) (local $i1 v128) (local $i2 v128) (local $i3 v128) (local $lo v128) (local $hi v128)
    (local.set $lo (f32x4.splat (f32.const -inf)))
    (local.set $hi (f32x4.splat (f32.const inf)))
    (local.set $cBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $w) (local.get $cBytes)))
    (local.set $o (local.get $y))
    (local.set $b (i32.const 0))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_u (local.get $b) (local.get $batch)))
      (local.set $i (i32.const 0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $oh)))
        (local.set $j (i32.const 0))
        (block $jDone (loop $jLoop
          (br_if $jDone (i32.ge_u (local.get $j) (local.get $ow)))
          ;; a = address of window (b, 2i, 2j) in x
          (local.set $a
            (i32.add (local.get $x)
              (i32.add
                (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (i32.shl (local.get $i) (i32.const 1))) (local.get $rowBytes))
                (i32.mul (i32.shl (local.get $j) (i32.const 1)) (local.get $cBytes)))))
          (local.set $k (i32.const 0))
          (block $kDone (loop $kLoop
            (br_if $kDone (i32.ge_u (local.get $k) (local.get $cBytes)))
            (local.set $i0 (v128.load (local.get $a)))
            (local.set $i1 (v128.load (i32.add (local.get $a) (local.get $rowBytes))))
            (local.set $i2 (v128.load (i32.add (local.get $a) (local.get $cBytes))))
            (local.set $i3 (v128.load (i32.add (i32.add (local.get $a) (local.get $rowBytes)) (local.get $cBytes))))
            (v128.store (local.get $o)
              (f32x4.pmin (local.get $hi)
                (f32x4.pmax (local.get $lo)
                  (f32x4.pmax
                    (f32x4.pmax (local.get $i0) (f32x4.pmax (local.get $i3) (local.get $i2)))
                    (f32x4.pmax (f32x4.pmax (f32x4.pmax (local.get $i0) (local.get $i1)) (local.get $i0)) (local.get $i0))))))
            (local.set $a (i32.add (local.get $a) (i32.const 16)))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br $kLoop)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iLoop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop))))

  ;; dx of a 2×2, stride-2, unpadded max pool over NHWC x (channels % 4 == 0): each output's gradient g goes
  ;; to the first element of its window (row-major) equal to the pooled value y, as the cpu backend does.
  ;; Rows/columns no window covers (odd sizes) are not written: the caller zeroes them.
  (func (export "maxPoolGrad2x2")
    (param $x i32) (param $y i32) (param $g i32) (param $dx i32)
    (param $batch i32) (param $h i32) (param $w i32) (param $c i32) (param $oh i32) (param $ow i32)
    (local $b i32) (local $i i32) (local $j i32) (local $k i32)
    (local $cBytes i32) (local $rowBytes i32) (local $a i32) (local $o i32)
    (local $m v128) (local $gv v128) (local $e0 v128) (local $e1 v128) (local $e2 v128) (local $e3 v128) (local $seen v128)
    (local.set $cBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $w) (local.get $cBytes)))
    (local.set $b (i32.const 0))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_u (local.get $b) (local.get $batch)))
      (local.set $i (i32.const 0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $oh)))
        (local.set $j (i32.const 0))
        (block $jDone (loop $jLoop
          (br_if $jDone (i32.ge_u (local.get $j) (local.get $ow)))
          ;; a = byte offset of window (b, 2i, 2j) within x
          (local.set $a
            (i32.add
              (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (i32.shl (local.get $i) (i32.const 1))) (local.get $rowBytes))
              (i32.mul (i32.shl (local.get $j) (i32.const 1)) (local.get $cBytes))))
          (local.set $k (i32.const 0))
          (block $kDone (loop $kLoop
            (br_if $kDone (i32.ge_u (local.get $k) (local.get $cBytes)))
            (local.set $m (v128.load (i32.add (local.get $y) (local.get $o))))
            (local.set $gv (v128.load (i32.add (local.get $g) (local.get $o))))
            (local.set $e0 (f32x4.eq (v128.load (i32.add (local.get $x) (local.get $a))) (local.get $m)))
            (local.set $e1 (v128.andnot
              (f32x4.eq (v128.load (i32.add (i32.add (local.get $x) (local.get $a)) (local.get $cBytes))) (local.get $m))
              (local.get $e0)))
            (local.set $seen (v128.or (local.get $e0) (local.get $e1)))
            (local.set $e2 (v128.andnot
              (f32x4.eq (v128.load (i32.add (i32.add (local.get $x) (local.get $a)) (local.get $rowBytes))) (local.get $m))
              (local.get $seen)))
            (local.set $seen (v128.or (local.get $seen) (local.get $e2)))
            (local.set $e3 (v128.andnot
              (f32x4.eq
                (v128.load (i32.add (i32.add (i32.add (local.get $x) (local.get $a)) (local.get $rowBytes)) (local.get $cBytes)))
                (local.get $m))
              (local.get $seen)))
            (v128.store (i32.add (local.get $dx) (local.get $a)) (v128.and (local.get $gv) (local.get $e0)))
            (v128.store (i32.add (i32.add (local.get $dx) (local.get $a)) (local.get $cBytes)) (v128.and (local.get $gv) (local.get $e1)))
            (v128.store (i32.add (i32.add (local.get $dx) (local.get $a)) (local.get $rowBytes)) (v128.and (local.get $gv) (local.get $e2)))
            (v128.store
              (i32.add (i32.add (i32.add (local.get $dx) (local.get $a)) (local.get $rowBytes)) (local.get $cBytes))
              (v128.and (local.get $gv) (local.get $e3)))
            (local.set $a (i32.add (local.get $a) (i32.const 16)))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br $kLoop)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iLoop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop))))

  ;; acc[c] += Σ_r x[r·cols + c] in float64 (acc: cols doubles, zeroed by the caller; cols % 4 == 0).
  (func (export "sumRowsF64")
    (param $x i32) (param $acc i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $c i32) (local $colBytes i32) (local $v v128) (local $p i32) (local $q i32)
    (local.set $colBytes (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $p (local.get $x))
    (local.set $r (i32.const 0))
    (block $rDone (loop $rLoop
      (br_if $rDone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $q (local.get $acc))
      (local.set $c (i32.const 0))
      (block $cDone (loop $cLoop
        (br_if $cDone (i32.ge_u (local.get $c) (local.get $colBytes)))
        (local.set $v (v128.load (i32.add (local.get $p) (local.get $c))))
        (v128.store (local.get $q) (f64x2.add (v128.load (local.get $q)) (f64x2.promote_low_f32x4 (local.get $v))))
        (v128.store offset=16 (local.get $q)
          (f64x2.add (v128.load offset=16 (local.get $q))
            (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
        (local.set $q (i32.add (local.get $q) (i32.const 32)))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (br $cLoop)))
      (local.set $p (i32.add (local.get $p) (local.get $colBytes)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rLoop))))

  ;; Filter gradient by direct summation, for convolutions with few input channels (the first layer), where a
  ;; matrix product spends its time packing dy. dw[kh,kw,ci,co] = Σ_{b,oh,ow} x[b,ih,iw,ci]·dy[b,oh,ow,co] with
  ;; ih = oh·sh + kh − top, iw = ow·sw + kw − left (taps outside x count as 0). outChannels % 32 == 0.
  (func (export "conv2DFilterGradDirect")
    (param $x i32) (param $dy i32) (param $dw i32)
    (param $batch i32) (param $h i32) (param $w i32) (param $c i32)
    (param $oh i32) (param $ow i32) (param $co i32)
    (param $kh i32) (param $kw i32) (param $sh i32) (param $sw i32) (param $top i32) (param $left i32)
    (local $fh i32) (local $fw i32) (local $ci i32) (local $cc i32)
    (local $b i32) (local $i i32) (local $j i32)
    (local $iFrom i32) (local $iTo i32) (local $jFrom i32) (local $jTo i32) (local $n i32)
    (local $xp i32) (local $dp i32) (local $xStep i32) (local $dStep i32) (local $p i32)
    (local $xv v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local.set $xStep (i32.shl (i32.mul (local.get $sw) (local.get $c)) (i32.const 2)))
    (local.set $dStep (i32.shl (local.get $co) (i32.const 2)))
    (local.set $fh (i32.const 0))
    (block $fhDone (loop $fhLoop
      (br_if $fhDone (i32.ge_s (local.get $fh) (local.get $kh)))
      ;; output rows whose tap fh lies inside x: iFrom ≤ i < iTo
      (local.set $iFrom (select
        (i32.div_s (i32.add (i32.sub (local.get $top) (local.get $fh)) (i32.sub (local.get $sh) (i32.const 1))) (local.get $sh))
        (i32.const 0)
        (i32.gt_s (i32.sub (local.get $top) (local.get $fh)) (i32.const 0))))
      (local.set $iTo (select
        (i32.add (i32.div_s (i32.add (i32.sub (i32.sub (local.get $h) (i32.const 1)) (local.get $fh)) (local.get $top)) (local.get $sh)) (i32.const 1))
        (i32.const 0)
        (i32.ge_s (i32.add (i32.sub (i32.sub (local.get $h) (i32.const 1)) (local.get $fh)) (local.get $top)) (i32.const 0))))
      (if (i32.gt_s (local.get $iTo) (local.get $oh)) (then (local.set $iTo (local.get $oh))))
      (local.set $fw (i32.const 0))
      (block $fwDone (loop $fwLoop
        (br_if $fwDone (i32.ge_s (local.get $fw) (local.get $kw)))
        (local.set $jFrom (select
          (i32.div_s (i32.add (i32.sub (local.get $left) (local.get $fw)) (i32.sub (local.get $sw) (i32.const 1))) (local.get $sw))
          (i32.const 0)
          (i32.gt_s (i32.sub (local.get $left) (local.get $fw)) (i32.const 0))))
        (local.set $jTo (select
          (i32.add (i32.div_s (i32.add (i32.sub (i32.sub (local.get $w) (i32.const 1)) (local.get $fw)) (local.get $left)) (local.get $sw)) (i32.const 1))
          (i32.const 0)
          (i32.ge_s (i32.add (i32.sub (i32.sub (local.get $w) (i32.const 1)) (local.get $fw)) (local.get $left)) (i32.const 0))))
        (if (i32.gt_s (local.get $jTo) (local.get $ow)) (then (local.set $jTo (local.get $ow))))
        (local.set $ci (i32.const 0))
        (block $ciDone (loop $ciLoop
          (br_if $ciDone (i32.ge_s (local.get $ci) (local.get $c)))
          (local.set $cc (i32.const 0))
          (block $ccDone (loop $ccLoop
            (br_if $ccDone (i32.ge_s (local.get $cc) (local.get $co)))
            (local.set $a0 (v128.const i32x4 0 0 0 0))
            (local.set $a1 (v128.const i32x4 0 0 0 0))
            (local.set $a2 (v128.const i32x4 0 0 0 0))
            (local.set $a3 (v128.const i32x4 0 0 0 0))
            (local.set $a4 (v128.const i32x4 0 0 0 0))
            (local.set $a5 (v128.const i32x4 0 0 0 0))
            (local.set $a6 (v128.const i32x4 0 0 0 0))
            (local.set $a7 (v128.const i32x4 0 0 0 0))
            (local.set $b (i32.const 0))
            (block $bDone (loop $bLoop
              (br_if $bDone (i32.ge_s (local.get $b) (local.get $batch)))
              (local.set $i (local.get $iFrom))
              (block $iDone (loop $iLoop
                (br_if $iDone (i32.ge_s (local.get $i) (local.get $iTo)))
                (if (i32.lt_s (local.get $jFrom) (local.get $jTo))
                  (then
                    ;; xp → x[b, i·sh + fh − top, jFrom·sw + fw − left, ci];  dp → dy[b, i, jFrom, cc]
                    (local.set $xp (i32.add (local.get $x) (i32.shl
                      (i32.add
                        (i32.mul
                          (i32.add
                            (i32.mul
                              (i32.add (i32.mul (local.get $b) (local.get $h))
                                (i32.sub (i32.add (i32.mul (local.get $i) (local.get $sh)) (local.get $fh)) (local.get $top)))
                              (local.get $w))
                            (i32.sub (i32.add (i32.mul (local.get $jFrom) (local.get $sw)) (local.get $fw)) (local.get $left)))
                          (local.get $c))
                        (local.get $ci))
                      (i32.const 2))))
                    (local.set $dp (i32.add (local.get $dy) (i32.shl
                      (i32.add
                        (i32.mul
                          (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $oh)) (local.get $i)) (local.get $ow)) (local.get $jFrom))
                          (local.get $co))
                        (local.get $cc))
                      (i32.const 2))))
                    (local.set $n (i32.sub (local.get $jTo) (local.get $jFrom)))
                    (loop $jLoop
                      (local.set $xv (v128.load32_splat (local.get $xp)))
                      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $xv) (v128.load (local.get $dp)))))
                      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $xv) (v128.load offset=16 (local.get $dp)))))
                      (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $xv) (v128.load offset=32 (local.get $dp)))))
                      (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $xv) (v128.load offset=48 (local.get $dp)))))
                      (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (local.get $xv) (v128.load offset=64 (local.get $dp)))))
                      (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (local.get $xv) (v128.load offset=80 (local.get $dp)))))
                      (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (local.get $xv) (v128.load offset=96 (local.get $dp)))))
                      (local.set $a7 (f32x4.add (local.get $a7) (f32x4.mul (local.get $xv) (v128.load offset=112 (local.get $dp)))))
                      (local.set $xp (i32.add (local.get $xp) (local.get $xStep)))
                      (local.set $dp (i32.add (local.get $dp) (local.get $dStep)))
                      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                      (br_if $jLoop (i32.gt_s (local.get $n) (i32.const 0))))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $iLoop)))
              (local.set $b (i32.add (local.get $b) (i32.const 1)))
              (br $bLoop)))
            (local.set $p (i32.add (local.get $dw)
              (i32.shl
                (i32.add
                  (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $fh) (local.get $kw)) (local.get $fw)) (local.get $c)) (local.get $ci)) (local.get $co))
                  (local.get $cc))
                (i32.const 2))))
            (v128.store (local.get $p) (local.get $a0))
            (v128.store offset=16 (local.get $p) (local.get $a1))
            (v128.store offset=32 (local.get $p) (local.get $a2))
            (v128.store offset=48 (local.get $p) (local.get $a3))
            (v128.store offset=64 (local.get $p) (local.get $a4))
            (v128.store offset=80 (local.get $p) (local.get $a5))
            (v128.store offset=96 (local.get $p) (local.get $a6))
            (v128.store offset=112 (local.get $p) (local.get $a7))
            (local.set $cc (i32.add (local.get $cc) (i32.const 32)))
            (br $ccLoop)))
          (local.set $ci (i32.add (local.get $ci) (i32.const 1)))
          (br $ciLoop)))
        (local.set $fw (i32.add (local.get $fw) (i32.const 1)))
        (br $fwLoop)))
      (local.set $fh (i32.add (local.get $fh) (i32.const 1)))
      (br $fhLoop))))

  ;; The transposed im2col matrix of a convolution's input for `images` images from xT = x transposed to
  ;; [c, batch, h, w] (xT: the first image's offset):
  ;; cols[(fh·kw + fw)·c + ci][(b·oh + i)·ow + j] = xT[ci, b, i·sh + fh − top, j·sw + fw − left], or 0 outside, b < images.
  (func (export "im2colRows")
    (param $xT i32) (param $cols i32)
    (param $c i32) (param $batch i32) (param $h i32) (param $w i32) (param $oh i32) (param $ow i32)
    (param $kh i32) (param $kw i32) (param $sh i32) (param $sw i32) (param $top i32) (param $left i32) (param $images i32)
    (local $fh i32) (local $fw i32) (local $ci i32) (local $b i32) (local $i i32) (local $ih i32)
    (local $jFrom i32) (local $jTo i32) (local $dst i32) (local $src i32) (local $n i32) (local $p i32)
    (local $rowBytes i32) (local $srcStep i32) (local $k i32) (local $last i32)
    (local.set $rowBytes (i32.shl (local.get $ow) (i32.const 2)))
    (local.set $srcStep (i32.shl (local.get $sw) (i32.const 2)))
    (local.set $dst (local.get $cols))
    (local.set $fh (i32.const 0))
    (block $fhDone (loop $fhLoop
      (br_if $fhDone (i32.ge_s (local.get $fh) (local.get $kh)))
      (local.set $fw (i32.const 0))
      (block $fwDone (loop $fwLoop
        (br_if $fwDone (i32.ge_s (local.get $fw) (local.get $kw)))
        ;; output columns whose tap fw lies inside x: jFrom ≤ j < jTo, 0 ≤ jFrom ≤ jTo ≤ ow
        (local.set $jFrom (select
          (i32.div_s (i32.add (i32.sub (local.get $left) (local.get $fw)) (i32.sub (local.get $sw) (i32.const 1))) (local.get $sw))
          (i32.const 0)
          (i32.gt_s (i32.sub (local.get $left) (local.get $fw)) (i32.const 0))))
        (if (i32.gt_s (local.get $jFrom) (local.get $ow)) (then (local.set $jFrom (local.get $ow))))
        (local.set $jTo (select
          (i32.add (i32.div_s (i32.add (i32.sub (i32.sub (local.get $w) (i32.const 1)) (local.get $fw)) (local.get $left)) (local.get $sw)) (i32.const 1))
          (i32.const 0)
          (i32.ge_s (i32.add (i32.sub (i32.sub (local.get $w) (i32.const 1)) (local.get $fw)) (local.get $left)) (i32.const 0))))
        (if (i32.gt_s (local.get $jTo) (local.get $ow)) (then (local.set $jTo (local.get $ow))))
        (if (i32.lt_s (local.get $jTo) (local.get $jFrom)) (then (local.set $jTo (local.get $jFrom))))
        (local.set $ci (i32.const 0))
        (block $ciDone (loop $ciLoop
          (br_if $ciDone (i32.ge_s (local.get $ci) (local.get $c)))
          (local.set $b (i32.const 0))
          (block $bDone (loop $bLoop
            (br_if $bDone (i32.ge_s (local.get $b) (local.get $images)))
            (local.set $i (i32.const 0))
            (block $iDone (loop $iLoop
              (br_if $iDone (i32.ge_s (local.get $i) (local.get $oh)))
              (local.set $ih (i32.sub (i32.add (i32.mul (local.get $i) (local.get $sh)) (local.get $fh)) (local.get $top)))
              ;; Rows are short (a few floats): plain loads and stores, no memory.fill/copy (each one a runtime call).
              (if (i32.or (i32.lt_s (local.get $ih) (i32.const 0)) (i32.ge_s (local.get $ih) (local.get $h)))
                (then (call $zeroFloats (local.get $dst) (local.get $ow)))
                (else
                  (call $zeroFloats (local.get $dst) (local.get $jFrom))
                  (call $zeroFloats (i32.add (local.get $dst) (i32.shl (local.get $jTo) (i32.const 2))) (i32.sub (local.get $ow) (local.get $jTo)))
                  (local.set $src (i32.add (local.get $xT) (i32.shl
                    (i32.add
                      (i32.mul
                        (i32.add (i32.mul (i32.add (i32.mul (local.get $ci) (local.get $batch)) (local.get $b)) (local.get $h)) (local.get $ih))
                        (local.get $w))
                      (i32.sub (i32.add (i32.mul (local.get $jFrom) (local.get $sw)) (local.get $fw)) (local.get $left)))
                    (i32.const 2))))
                  (local.set $p (i32.add (local.get $dst) (i32.shl (local.get $jFrom) (i32.const 2))))
                  (local.set $n (i32.sub (local.get $jTo) (local.get $jFrom)))
                  (if (i32.and (i32.eq (local.get $sw) (i32.const 1)) (i32.ge_s (local.get $n) (i32.const 4)))
                    (then
                      ;; whole vectors, then one last vector ending at the row's end (it may overlap the one before)
                      (local.set $last (i32.shl (i32.sub (local.get $n) (i32.const 4)) (i32.const 2)))
                      (local.set $k (i32.const 0))
                      (block $vDone (loop $vLoop
                        (br_if $vDone (i32.ge_s (local.get $k) (local.get $last)))
                        (v128.store (i32.add (local.get $p) (local.get $k)) (v128.load (i32.add (local.get $src) (local.get $k))))
                        (local.set $k (i32.add (local.get $k) (i32.const 16)))
                        (br $vLoop)))
                      (v128.store (i32.add (local.get $p) (local.get $last)) (v128.load (i32.add (local.get $src) (local.get $last)))))
                    (else
                      (block $jDone (loop $jLoop
                        (br_if $jDone (i32.le_s (local.get $n) (i32.const 0)))
                        (f32.store (local.get $p) (f32.load (local.get $src)))
                        (local.set $p (i32.add (local.get $p) (i32.const 4)))
                        (local.set $src (i32.add (local.get $src) (local.get $srcStep)))
                        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                        (br $jLoop)))))))
              (local.set $dst (i32.add (local.get $dst) (local.get $rowBytes)))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $iLoop)))
            (local.set $b (i32.add (local.get $b) (i32.const 1)))
            (br $bLoop)))
          (local.set $ci (i32.add (local.get $ci) (i32.const 1)))
          (br $ciLoop)))
        (local.set $fw (i32.add (local.get $fw) (i32.const 1)))
        (br $fwLoop)))
      (local.set $fh (i32.add (local.get $fh) (i32.const 1)))
      (br $fhLoop))))

  ;; Zero `n` floats from byte offset p (n ≤ 0: nothing).
  (func $zeroFloats (param $p i32) (param $n i32)
    (block $done (loop $next
      (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
      (f32.store (local.get $p) (f32.const 0))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next))))

  ;; Scatter-add of a convolution's column gradients into dx (the adjoint of im2col), for the output rows r = b·oh + i
  ;; in [first, first + rows), in that order (dx zeroed by the caller before the first call):
  ;; dx[b, i·sh + fh − top, j·sw + fw − left, 0:c] += dcols[(r − first)·ow + j][(fh·kw + fw)·c + 0:c] for taps inside dx.
  (func (export "col2imAdd")
    (param $dcols i32) (param $dx i32)
    (param $c i32) (param $h i32) (param $w i32) (param $oh i32) (param $ow i32)
    (param $kh i32) (param $kw i32) (param $sh i32) (param $sw i32) (param $top i32) (param $left i32)
    (param $first i32) (param $rows i32)
    (local $r i32) (local $end i32) (local $b i32) (local $i i32) (local $j i32) (local $fh i32) (local $fw i32) (local $ih i32) (local $iw i32)
    (local $src i32) (local $d i32) (local $k i32) (local $cBytes i32) (local $vecBytes i32)
    (local.set $cBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $vecBytes (i32.and (local.get $cBytes) (i32.const -16)))
    (local.set $src (local.get $dcols))
    (local.set $r (local.get $first))
    (local.set $end (i32.add (local.get $first) (local.get $rows)))
    (block $rDone (loop $rLoop
      (br_if $rDone (i32.ge_s (local.get $r) (local.get $end)))
      (local.set $b (i32.div_s (local.get $r) (local.get $oh)))
      (local.set $i (i32.sub (local.get $r) (i32.mul (local.get $b) (local.get $oh))))
      (local.set $j (i32.const 0))
      (block $jDone (loop $jLoop
        (br_if $jDone (i32.ge_s (local.get $j) (local.get $ow)))
        (local.set $fh (i32.const 0))
        (block $fhDone (loop $fhLoop
          (br_if $fhDone (i32.ge_s (local.get $fh) (local.get $kh)))
          (local.set $ih (i32.sub (i32.add (i32.mul (local.get $i) (local.get $sh)) (local.get $fh)) (local.get $top)))
          (local.set $fw (i32.const 0))
          (block $fwDone (loop $fwLoop
            (br_if $fwDone (i32.ge_s (local.get $fw) (local.get $kw)))
            (local.set $iw (i32.sub (i32.add (i32.mul (local.get $j) (local.get $sw)) (local.get $fw)) (local.get $left)))
            (if (i32.and
                  (i32.and (i32.ge_s (local.get $ih) (i32.const 0)) (i32.lt_s (local.get $ih) (local.get $h)))
                  (i32.and (i32.ge_s (local.get $iw) (i32.const 0)) (i32.lt_s (local.get $iw) (local.get $w))))
              (then
                (local.set $d (i32.add (local.get $dx)
                  (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $ih)) (local.get $w)) (local.get $iw))
                    (local.get $cBytes))))
                (local.set $k (i32.const 0))
                (block $vDone (loop $vLoop
                  (br_if $vDone (i32.ge_u (local.get $k) (local.get $vecBytes)))
                  (v128.store (i32.add (local.get $d) (local.get $k))
                    (f32x4.add (v128.load (i32.add (local.get $d) (local.get $k))) (v128.load (i32.add (local.get $src) (local.get $k)))))
                  (local.set $k (i32.add (local.get $k) (i32.const 16)))
                  (br $vLoop)))
                (block $sDone (loop $sLoop
                  (br_if $sDone (i32.ge_u (local.get $k) (local.get $cBytes)))
                  (f32.store (i32.add (local.get $d) (local.get $k))
                    (f32.add (f32.load (i32.add (local.get $d) (local.get $k))) (f32.load (i32.add (local.get $src) (local.get $k)))))
                  (local.set $k (i32.add (local.get $k) (i32.const 4)))
                  (br $sLoop)))))
            (local.set $src (i32.add (local.get $src) (local.get $cBytes)))
            (local.set $fw (i32.add (local.get $fw) (i32.const 1)))
            (br $fwLoop)))
          (local.set $fh (i32.add (local.get $fh) (i32.const 1)))
          (br $fhLoop)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $jLoop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rLoop))))

  ;; SGD with momentum (tfjs MomentumOptimizer, no Nesterov), in float32 as tfjs computes it:
  ;; acc' = acc·m + g; w' = (−lr)·acc' + w, over n values; outputs may not alias inputs partially.
  (func (export "momentumStep")
    (param $w i32) (param $acc i32) (param $g i32) (param $wOut i32) (param $accOut i32) (param $n i32)
    (param $negLr f32) (param $m f32)
    (local $i i32) (local $end i32) (local $vecEnd i32) (local $a v128) (local $mv v128) (local $lv v128) (local $s f32)
    (local.set $mv (f32x4.splat (local.get $m)))
    (local.set $lv (f32x4.splat (local.get $negLr)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vecEnd (i32.and (local.get $end) (i32.const -16)))
    (block $vDone (loop $vLoop
      (br_if $vDone (i32.ge_u (local.get $i) (local.get $vecEnd)))
      (local.set $a (f32x4.add
        (f32x4.mul (v128.load (i32.add (local.get $acc) (local.get $i))) (local.get $mv))
        (v128.load (i32.add (local.get $g) (local.get $i)))))
      (v128.store (i32.add (local.get $accOut) (local.get $i)) (local.get $a))
      (v128.store (i32.add (local.get $wOut) (local.get $i))
        (f32x4.add (f32x4.mul (local.get $lv) (local.get $a)) (v128.load (i32.add (local.get $w) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $vLoop)))
    (block $sDone (loop $sLoop
      (br_if $sDone (i32.ge_u (local.get $i) (local.get $end)))
      (local.set $s (f32.add
        (f32.mul (f32.load (i32.add (local.get $acc) (local.get $i))) (local.get $m))
        (f32.load (i32.add (local.get $g) (local.get $i)))))
      (f32.store (i32.add (local.get $accOut) (local.get $i)) (local.get $s))
      (f32.store (i32.add (local.get $wOut) (local.get $i))
        (f32.add (f32.mul (local.get $negLr) (local.get $s)) (f32.load (i32.add (local.get $w) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $sLoop))))

  ;; Depthwise convolution, multiplier 1, NHWC, channels % 4 == 0, over `batch` images:
  ;; dW[p,q,:] += x[b, i·sh + p − top, j·sw + q − left, :] ⊙ dy[b,i,j,:] for every output (b,i,j) and tap in range.
  ;; out (dW, [kh,kw,c]) accumulates in float32: the caller passes one image at a time and sums in float64.
  (func (export "depthwiseFilterGrad")
    (param $x i32) (param $dy i32) (param $out i32)
    (param $batch i32) (param $h i32) (param $w i32) (param $c i32) (param $oh i32) (param $ow i32)
    (param $kh i32) (param $kw i32) (param $sh i32) (param $sw i32) (param $top i32) (param $left i32)
    (local $b i32) (local $i i32) (local $j i32) (local $p i32) (local $q i32) (local $ih i32) (local $iw i32)
    (local $k i32) (local $cBytes i32) (local $xp i32) (local $gp i32) (local $op i32)
    (local.set $cBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $b (i32.const 0))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_u (local.get $b) (local.get $batch)))
      (local.set $i (i32.const 0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $oh)))
        (local.set $j (i32.const 0))
        (block $jDone (loop $jLoop
          (br_if $jDone (i32.ge_u (local.get $j) (local.get $ow)))
          (local.set $gp (i32.add (local.get $dy)
            (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $oh)) (local.get $i)) (local.get $ow)) (local.get $j)) (local.get $cBytes))))
          (local.set $p (i32.const 0))
          (block $pDone (loop $pLoop
            (br_if $pDone (i32.ge_u (local.get $p) (local.get $kh)))
            (local.set $ih (i32.sub (i32.add (i32.mul (local.get $i) (local.get $sh)) (local.get $p)) (local.get $top)))
            (block $pNext
              ;; unsigned: a negative row is out of range too
              (br_if $pNext (i32.ge_u (local.get $ih) (local.get $h)))
              (local.set $q (i32.const 0))
              (block $qDone (loop $qLoop
                (br_if $qDone (i32.ge_u (local.get $q) (local.get $kw)))
                (local.set $iw (i32.sub (i32.add (i32.mul (local.get $j) (local.get $sw)) (local.get $q)) (local.get $left)))
                (block $qNext
                  (br_if $qNext (i32.ge_u (local.get $iw) (local.get $w)))
                  ;; xp: (b, ih, iw) of x (or dx); op: tap (p, q) of the filter (or dW)
                  (local.set $xp (i32.add (local.get $x)
                    (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $ih)) (local.get $w)) (local.get $iw)) (local.get $cBytes))))
                  (local.set $op (i32.add (local.get $out)
                    (i32.mul (i32.add (i32.mul (local.get $p) (local.get $kw)) (local.get $q)) (local.get $cBytes))))
                  (local.set $k (i32.const 0))
                  (block $kDone (loop $kLoop
                    (br_if $kDone (i32.ge_u (local.get $k) (local.get $cBytes)))
                    (v128.store (i32.add (local.get $op) (local.get $k))
                      (f32x4.add (v128.load (i32.add (local.get $op) (local.get $k)))
                        (f32x4.mul (v128.load (i32.add (local.get $xp) (local.get $k))) (v128.load (i32.add (local.get $gp) (local.get $k))))))
                    (local.set $k (i32.add (local.get $k) (i32.const 16)))
                    (br $kLoop))))
                (local.set $q (i32.add (local.get $q) (i32.const 1)))
                (br $qLoop))))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $pLoop)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iLoop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop)))
  )

  ;; The same walk for dx: dx[b, i·sh + p − top, j·sw + q − left, :] += W[p,q,:] ⊙ dy[b,i,j,:];
  ;; here $x is dx (zeroed by the caller) and $out is the filter W.
  (func (export "depthwiseInputGrad")
    (param $x i32) (param $dy i32) (param $out i32)
    (param $batch i32) (param $h i32) (param $w i32) (param $c i32) (param $oh i32) (param $ow i32)
    (param $kh i32) (param $kw i32) (param $sh i32) (param $sw i32) (param $top i32) (param $left i32)
    (local $b i32) (local $i i32) (local $j i32) (local $p i32) (local $q i32) (local $ih i32) (local $iw i32)
    (local $k i32) (local $cBytes i32) (local $xp i32) (local $gp i32) (local $op i32)
    (local.set $cBytes (i32.shl (local.get $c) (i32.const 2)))
    (local.set $b (i32.const 0))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_u (local.get $b) (local.get $batch)))
      (local.set $i (i32.const 0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $oh)))
        (local.set $j (i32.const 0))
        (block $jDone (loop $jLoop
          (br_if $jDone (i32.ge_u (local.get $j) (local.get $ow)))
          (local.set $gp (i32.add (local.get $dy)
            (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $oh)) (local.get $i)) (local.get $ow)) (local.get $j)) (local.get $cBytes))))
          (local.set $p (i32.const 0))
          (block $pDone (loop $pLoop
            (br_if $pDone (i32.ge_u (local.get $p) (local.get $kh)))
            (local.set $ih (i32.sub (i32.add (i32.mul (local.get $i) (local.get $sh)) (local.get $p)) (local.get $top)))
            (block $pNext
              ;; unsigned: a negative row is out of range too
              (br_if $pNext (i32.ge_u (local.get $ih) (local.get $h)))
              (local.set $q (i32.const 0))
              (block $qDone (loop $qLoop
                (br_if $qDone (i32.ge_u (local.get $q) (local.get $kw)))
                (local.set $iw (i32.sub (i32.add (i32.mul (local.get $j) (local.get $sw)) (local.get $q)) (local.get $left)))
                (block $qNext
                  (br_if $qNext (i32.ge_u (local.get $iw) (local.get $w)))
                  ;; xp: (b, ih, iw) of x (or dx); op: tap (p, q) of the filter (or dW)
                  (local.set $xp (i32.add (local.get $x)
                    (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $h)) (local.get $ih)) (local.get $w)) (local.get $iw)) (local.get $cBytes))))
                  (local.set $op (i32.add (local.get $out)
                    (i32.mul (i32.add (i32.mul (local.get $p) (local.get $kw)) (local.get $q)) (local.get $cBytes))))
                  (local.set $k (i32.const 0))
                  (block $kDone (loop $kLoop
                    (br_if $kDone (i32.ge_u (local.get $k) (local.get $cBytes)))
                    (v128.store (i32.add (local.get $xp) (local.get $k))
                      (f32x4.add (v128.load (i32.add (local.get $xp) (local.get $k)))
                        (f32x4.mul (v128.load (i32.add (local.get $op) (local.get $k))) (v128.load (i32.add (local.get $gp) (local.get $k))))))
                    (local.set $k (i32.add (local.get $k) (i32.const 16)))
                    (br $kLoop))))
                (local.set $q (i32.add (local.get $q) (i32.const 1)))
                (br $qLoop))))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $pLoop)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iLoop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop)))
  )

  ;; out[r,:] = a[r,:] op b[r,:] over rows of cBytes (a multiple of 16) bytes; a and b advance by aStep / bStep
  ;; bytes a row (0: one row broadcast over all, as a per-channel vector against NHWC activations).
  (func (export "mulRows")
    (param $a i32) (param $aStep i32) (param $b i32) (param $bStep i32) (param $out i32) (param $rows i32) (param $cBytes i32)
    (local $r i32) (local $k i32)
    (local.set $r (i32.const 0))
    (block $rDone (loop $rLoop
      (br_if $rDone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $k (i32.const 0))
      (block $kDone (loop $kLoop
        (br_if $kDone (i32.ge_u (local.get $k) (local.get $cBytes)))
        (v128.store (i32.add (local.get $out) (local.get $k))
          (f32x4.mul (v128.load (i32.add (local.get $a) (local.get $k))) (v128.load (i32.add (local.get $b) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $kLoop)))
      (local.set $a (i32.add (local.get $a) (local.get $aStep)))
      (local.set $b (i32.add (local.get $b) (local.get $bStep)))
      (local.set $out (i32.add (local.get $out) (local.get $cBytes)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rLoop)))
  )

  (func (export "addRows")
    (param $a i32) (param $aStep i32) (param $b i32) (param $bStep i32) (param $out i32) (param $rows i32) (param $cBytes i32)
    (local $r i32) (local $k i32)
    (local.set $r (i32.const 0))
    (block $rDone (loop $rLoop
      (br_if $rDone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $k (i32.const 0))
      (block $kDone (loop $kLoop
        (br_if $kDone (i32.ge_u (local.get $k) (local.get $cBytes)))
        (v128.store (i32.add (local.get $out) (local.get $k))
          (f32x4.add (v128.load (i32.add (local.get $a) (local.get $k))) (v128.load (i32.add (local.get $b) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $kLoop)))
      (local.set $a (i32.add (local.get $a) (local.get $aStep)))
      (local.set $b (i32.add (local.get $b) (local.get $bStep)))
      (local.set $out (i32.add (local.get $out) (local.get $cBytes)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rLoop)))
  )

  (func (export "subRows")
    (param $a i32) (param $aStep i32) (param $b i32) (param $bStep i32) (param $out i32) (param $rows i32) (param $cBytes i32)
    (local $r i32) (local $k i32)
    (local.set $r (i32.const 0))
    (block $rDone (loop $rLoop
      (br_if $rDone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $k (i32.const 0))
      (block $kDone (loop $kLoop
        (br_if $kDone (i32.ge_u (local.get $k) (local.get $cBytes)))
        (v128.store (i32.add (local.get $out) (local.get $k))
          (f32x4.sub (v128.load (i32.add (local.get $a) (local.get $k))) (v128.load (i32.add (local.get $b) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $kLoop)))
      (local.set $a (i32.add (local.get $a) (local.get $aStep)))
      (local.set $b (i32.add (local.get $b) (local.get $bStep)))
      (local.set $out (i32.add (local.get $out) (local.get $cBytes)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rLoop)))
  )

  (func (export "divRows")
    (param $a i32) (param $aStep i32) (param $b i32) (param $bStep i32) (param $out i32) (param $rows i32) (param $cBytes i32)
    (local $r i32) (local $k i32)
    (local.set $r (i32.const 0))
    (block $rDone (loop $rLoop
      (br_if $rDone (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $k (i32.const 0))
      (block $kDone (loop $kLoop
        (br_if $kDone (i32.ge_u (local.get $k) (local.get $cBytes)))
        (v128.store (i32.add (local.get $out) (local.get $k))
          (f32x4.div (v128.load (i32.add (local.get $a) (local.get $k))) (v128.load (i32.add (local.get $b) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $kLoop)))
      (local.set $a (i32.add (local.get $a) (local.get $aStep)))
      (local.set $b (i32.add (local.get $b) (local.get $bStep)))
      (local.set $out (i32.add (local.get $out) (local.get $cBytes)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rLoop)))
  )

  ;; dst [cols, rows] = src [rows, cols]ᵀ (float32; e.g. NHWC x as [b·h·w, c] to [c, b·h·w]): 4×4 blocks through
  ;; shuffles, then the last rows % 4 rows and cols % 4 columns one value at a time. Moves values only.
  (func (export "transpose2D") (param $src i32) (param $dst i32) (param $rows i32) (param $cols i32)
    (local $i i32) (local $j i32) (local $rows4 i32) (local $cols4 i32) (local $srcRow i32) (local $rowBytes i32) (local $dstRow i32)
    (local $r0 v128) (local $r1 v128) (local $r2 v128) (local $r3 v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $rows4 (i32.and (local.get $rows) (i32.const -4)))
    (local.set $cols4 (i32.and (local.get $cols) (i32.const -4)))
    (local.set $rowBytes (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $dstRow (i32.shl (local.get $rows) (i32.const 2)))
    (block $iDone (loop $iLoop
      (br_if $iDone (i32.ge_u (local.get $i) (local.get $rows4)))
      (local.set $srcRow (i32.add (local.get $src) (i32.mul (local.get $i) (local.get $rowBytes))))
      (local.set $j (i32.const 0))
      (block $jDone (loop $jLoop
        (br_if $jDone (i32.ge_u (local.get $j) (local.get $cols4)))
        (local.set $r0 (v128.load (i32.add (local.get $srcRow) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $r1 (v128.load (i32.add (i32.add (local.get $srcRow) (local.get $rowBytes)) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $r2 (v128.load (i32.add (i32.add (local.get $srcRow) (i32.shl (local.get $rowBytes) (i32.const 1))) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $r3 (v128.load (i32.add (i32.add (local.get $srcRow) (i32.mul (local.get $rowBytes) (i32.const 3))) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r0) (local.get $r1)))
        (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r0) (local.get $r1)))
        (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r2) (local.get $r3)))
        (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r2) (local.get $r3)))
        (v128.store (i32.add (local.get $dst) (i32.add (i32.mul (local.get $j) (local.get $dstRow)) (i32.shl (local.get $i) (i32.const 2))))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
        (v128.store (i32.add (local.get $dst) (i32.add (i32.mul (i32.add (local.get $j) (i32.const 1)) (local.get $dstRow)) (i32.shl (local.get $i) (i32.const 2))))
          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
        (v128.store (i32.add (local.get $dst) (i32.add (i32.mul (i32.add (local.get $j) (i32.const 2)) (local.get $dstRow)) (i32.shl (local.get $i) (i32.const 2))))
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
        (v128.store (i32.add (local.get $dst) (i32.add (i32.mul (i32.add (local.get $j) (i32.const 3)) (local.get $dstRow)) (i32.shl (local.get $i) (i32.const 2))))
          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $jLoop)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $iLoop)))
    ;; the last columns of every row, then the last rows' first columns
    (local.set $i (i32.const 0))
    (block $eDone (loop $eLoop
      (br_if $eDone (i32.ge_u (local.get $i) (local.get $rows)))
      (local.set $j (select (local.get $cols4) (i32.const 0) (i32.lt_u (local.get $i) (local.get $rows4))))
      (block $fDone (loop $fLoop
        (br_if $fDone (i32.ge_u (local.get $j) (local.get $cols)))
        (f32.store (i32.add (local.get $dst) (i32.shl (i32.add (i32.mul (local.get $j) (local.get $rows)) (local.get $i)) (i32.const 2)))
          (f32.load (i32.add (local.get $src) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $cols)) (local.get $j)) (i32.const 2)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $fLoop)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $eLoop)))
  )
)
