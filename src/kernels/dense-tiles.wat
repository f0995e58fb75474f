;; Dense WebAssembly SIMD loops of fwprune's standalone runtime (src/runtime/), for the layers sparse.wat has no kernel
;; for: a convolution of any stride and padding, and a max pool of any size. They work on tiles of 8 images,
;; [tile][channel][y][x][8] (one position = 8 floats = 2 vectors), like sparse.wat; every pointer and stride is bytes.
;; Regenerate src/kernels/dense-tiles-module.ts after editing: sh src/kernels/build-simd.sh (needs Debian's wabt).
(module
  (import "env" "memory" (memory 1))

  ;; out[t][co][oy][ox] = act(bias[co] + Σ_{dy,dx,ci} kernel[co][dy][dx][ci] · in[t][ci][oy·s + dy − top][ox·s + dx − left])
  ;; over the input positions inside the image (outside ones count as zero: "same" padding). act = ReLU when relu ≠ 0.
  (func (export "convTiles")
    (param $in i32) (param $out i32) (param $kernel i32) (param $bias i32)
    (param $tiles i32) (param $c i32) (param $h i32) (param $w i32) (param $co i32) (param $k i32) (param $s i32)
    (param $top i32) (param $left i32) (param $oh i32) (param $ow i32) (param $relu i32)
    (local $t i32) (local $o i32) (local $oy i32) (local $ox i32) (local $dy i32) (local $dx i32) (local $ci i32)
    (local $iy i32) (local $ix i32) (local $inT i32) (local $plane i32) (local $wp i32) (local $p i32) (local $dst i32)
    (local $wv v128) (local $a0 v128) (local $a1 v128) (local $b v128) (local $zero v128)
    (local.set $plane (i32.shl (i32.mul (local.get $h) (local.get $w)) (i32.const 5)))
    (local.set $dst (local.get $out))
    (block $tDone (loop $tLoop
      (br_if $tDone (i32.ge_u (local.get $t) (local.get $tiles)))
      (local.set $inT (i32.add (local.get $in) (i32.mul (local.get $t) (i32.mul (local.get $c) (local.get $plane)))))
      (local.set $o (i32.const 0))
      (block $oDone (loop $oLoop
        (br_if $oDone (i32.ge_u (local.get $o) (local.get $co)))
        (local.set $b (v128.load32_splat (i32.add (local.get $bias) (i32.shl (local.get $o) (i32.const 2)))))
        (local.set $oy (i32.const 0))
        (block $yDone (loop $yLoop
          (br_if $yDone (i32.ge_u (local.get $oy) (local.get $oh)))
          (local.set $ox (i32.const 0))
          (block $xDone (loop $xLoop
            (br_if $xDone (i32.ge_u (local.get $ox) (local.get $ow)))
            (local.set $a0 (local.get $b))
            (local.set $a1 (local.get $b))
            (local.set $dy (i32.const 0))
            (block $dyDone (loop $dyLoop
              (br_if $dyDone (i32.ge_u (local.get $dy) (local.get $k)))
              (local.set $iy (i32.sub (i32.add (i32.mul (local.get $oy) (local.get $s)) (local.get $dy)) (local.get $top)))
              (if (i32.lt_u (local.get $iy) (local.get $h)) (then
                (local.set $dx (i32.const 0))
                (block $dxDone (loop $dxLoop
                  (br_if $dxDone (i32.ge_u (local.get $dx) (local.get $k)))
                  (local.set $ix (i32.sub (i32.add (i32.mul (local.get $ox) (local.get $s)) (local.get $dx)) (local.get $left)))
                  (if (i32.lt_u (local.get $ix) (local.get $w)) (then
                    ;; kernel[o][dy][dx][0], and the input position (iy, ix) of channel 0
                    (local.set $wp (i32.add (local.get $kernel)
                      (i32.shl (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $o) (local.get $k)) (local.get $dy)) (local.get $k)) (local.get $dx)) (local.get $c)) (i32.const 2))))
                    (local.set $p (i32.add (local.get $inT) (i32.shl (i32.add (i32.mul (local.get $iy) (local.get $w)) (local.get $ix)) (i32.const 5))))
                    (local.set $ci (i32.const 0))
                    (block $cDone (loop $cLoop
                      (br_if $cDone (i32.ge_u (local.get $ci) (local.get $c)))
                      (local.set $wv (v128.load32_splat (local.get $wp)))
                      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $wv) (v128.load offset=0 (local.get $p)))))
                      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $wv) (v128.load offset=16 (local.get $p)))))
                      (local.set $wp (i32.add (local.get $wp) (i32.const 4)))
                      (local.set $p (i32.add (local.get $p) (local.get $plane)))
                      (local.set $ci (i32.add (local.get $ci) (i32.const 1)))
                      (br $cLoop)))))
                  (local.set $dx (i32.add (local.get $dx) (i32.const 1)))
                  (br $dxLoop)))))
              (local.set $dy (i32.add (local.get $dy) (i32.const 1)))
              (br $dyLoop)))
            (if (local.get $relu) (then
              (local.set $a0 (f32x4.max (local.get $a0) (local.get $zero)))
              (local.set $a1 (f32x4.max (local.get $a1) (local.get $zero)))))
            (v128.store offset=0 (local.get $dst) (local.get $a0))
            (v128.store offset=16 (local.get $dst) (local.get $a1))
            (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
            (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
            (br $xLoop)))
          (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
          (br $yLoop)))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $oLoop)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br $tLoop))))

  ;; A size×size, stride-size, unpadded max pool over planes [h][w][8]: out[p][i][j] = max of
  ;; in[p][size·i + 0..size][size·j + 0..size], i < h/size, j < w/size (rounded down).
  (func (export "maxPoolTiles")
    (param $in i32) (param $out i32) (param $planes i32) (param $h i32) (param $w i32) (param $size i32)
    (local $p i32) (local $i i32) (local $j i32) (local $dy i32) (local $dx i32) (local $oh i32) (local $ow i32)
    (local $plane i32) (local $q i32) (local $m0 v128) (local $m1 v128)
    (local.set $oh (i32.div_u (local.get $h) (local.get $size)))
    (local.set $ow (i32.div_u (local.get $w) (local.get $size)))
    (block $pDone (loop $pLoop
      (br_if $pDone (i32.ge_u (local.get $p) (local.get $planes)))
      (local.set $plane (i32.add (local.get $in) (i32.shl (i32.mul (local.get $p) (i32.mul (local.get $h) (local.get $w))) (i32.const 5))))
      (local.set $i (i32.const 0))
      (block $iDone (loop $iLoop
        (br_if $iDone (i32.ge_u (local.get $i) (local.get $oh)))
        (local.set $j (i32.const 0))
        (block $jDone (loop $jLoop
          (br_if $jDone (i32.ge_u (local.get $j) (local.get $ow)))
          (local.set $q (i32.add (local.get $plane)
            (i32.shl (i32.add (i32.mul (i32.mul (local.get $i) (local.get $size)) (local.get $w)) (i32.mul (local.get $j) (local.get $size))) (i32.const 5))))
          (local.set $m0 (v128.load offset=0 (local.get $q)))
          (local.set $m1 (v128.load offset=16 (local.get $q)))
          (local.set $dy (i32.const 0))
          (block $dyDone (loop $dyLoop
            (br_if $dyDone (i32.ge_u (local.get $dy) (local.get $size)))
            (local.set $dx (i32.const 0))
            (block $dxDone (loop $dxLoop
              (br_if $dxDone (i32.ge_u (local.get $dx) (local.get $size)))
              (local.set $m0 (f32x4.max (local.get $m0) (v128.load offset=0 (i32.add (local.get $q) (i32.shl (local.get $dx) (i32.const 5))))))
              (local.set $m1 (f32x4.max (local.get $m1) (v128.load offset=16 (i32.add (local.get $q) (i32.shl (local.get $dx) (i32.const 5))))))
              (local.set $dx (i32.add (local.get $dx) (i32.const 1)))
              (br $dxLoop)))
            (local.set $q (i32.add (local.get $q) (i32.shl (local.get $w) (i32.const 5))))
            (local.set $dy (i32.add (local.get $dy) (i32.const 1)))
            (br $dyLoop)))
          (v128.store offset=0 (local.get $out) (local.get $m0))
          (v128.store offset=16 (local.get $out) (local.get $m1))
          (local.set $out (i32.add (local.get $out) (i32.const 32)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $iLoop)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $pLoop))))
)
