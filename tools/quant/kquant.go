package quant

import "math"

// kscratch is the working memory of one super-block.
type kscratch struct {
	l      [256]uint8 // the quants, unsigned
	aux    [32]uint8
	w      [32]float32
	scales [16]float32
	mins   [8]float32
}

// fitAffine finds a scale s >= 0 and a min m <= 0 so that x[i] ≈ s·l[i] +
// m with integers l[i] in [0, nmax], minimising Σ w[i]·(s·l[i] + m - x[i])².
// It starts from the range of x (extended to include 0) and tries nstep+1
// further roundings, each with the scale (rmin + rdelta·k + nmax) quanta
// per span of the current best fit, refitting s and m to each by weighted
// least squares. It writes the best l into L and returns s and -m.
func fitAffine(x, w []float32, nmax int32, rmin, rdelta float32, nstep int, L, aux []uint8) (scale, negMin float32) {
	lo, hi := x[0], x[0]
	var sumW, sumX float64
	for i, v := range x {
		lo, hi = min(lo, v), max(hi, v)
		sumW += float64(w[i])
		sumX += float64(w[i]) * float64(v)
	}
	lo = min(lo, 0)
	if hi == lo {
		clear(L[:len(x)])
		return 0, -lo
	}
	iscale := float32(nmax) / (hi - lo)
	scale = 1 / iscale
	var best float64
	for i, v := range x {
		l := nearest(iscale*(v-lo), 0, nmax)
		L[i] = uint8(l)
		diff := float64(scale)*float64(l) + float64(lo) - float64(v)
		best += float64(w[i]) * diff * diff
	}
	for k := 0; k <= nstep; k++ {
		iscale := (rmin + rdelta*float32(k) + float32(nmax)) / (hi - lo)
		var sl, sl2, sxl float64
		for i, v := range x {
			l := nearest(iscale*(v-lo), 0, nmax)
			aux[i] = uint8(l)
			wl := float64(w[i]) * float64(l)
			sl += wl
			sl2 += wl * float64(l)
			sxl += wl * float64(v)
		}
		det := sumW*sl2 - sl*sl
		if !(det > 0) {
			continue
		}
		s := (sumW*sxl - sumX*sl) / det
		m := (sl2*sumX - sl*sxl) / det
		if m > 0 {
			m, s = 0, sxl/sl2
		}
		if !(s >= 0) {
			continue
		}
		var e float64
		for i, v := range x {
			diff := s*float64(aux[i]) + m - float64(v)
			e += float64(w[i]) * diff * diff
		}
		if e < best {
			copy(L[:len(x)], aux[:len(x)])
			best, scale, lo = e, float32(s), float32(m)
		}
	}
	return scale, -lo
}

// quantizeQxK writes one Q4_K (bits 4) or Q5_K (bits 5) super-block of 256.
func quantizeQxK(dst []byte, x []float32, bits int, k *kscratch) error {
	nmax := int32(1)<<bits - 1
	rmin, rdelta, nstep := float32(-1), float32(0.1), 20
	if bits == 5 {
		rmin, nstep = -0.5, 15
	}
	var maxScale, maxMin float32
	for j := range 8 {
		xs := x[32*j : 32*j+32]
		var s2 float64
		for _, v := range xs {
			s2 += float64(v) * float64(v)
		}
		rms := float32(math.Sqrt(s2 / 32))
		for i, v := range xs {
			k.w[i] = rms + abs(v)
		}
		k.scales[j], k.mins[j] = fitAffine(xs, k.w[:], nmax, rmin, rdelta, nstep, k.l[32*j:], k.aux[:])
		maxScale, maxMin = max(maxScale, k.scales[j]), max(maxMin, k.mins[j])
	}
	hd, d, err := half(maxScale/63, "super-block scale")
	if err != nil {
		return err
	}
	hm, dmin, err := half(maxMin/63, "super-block min")
	if err != nil {
		return err
	}
	var ls, lm [8]uint8
	id, idm := inverse(d), inverse(dmin)
	for j := range 8 {
		ls[j] = uint8(nearest(k.scales[j]*id, 0, 63))
		lm[j] = uint8(nearest(k.mins[j]*idm, 0, 63))
	}
	// Round again with the scales and mins as the kernels will see them:
	// w = (d·sc)·q - dmin·m.
	for j := range 8 {
		l := k.l[32*j : 32*j+32]
		D := d * float32(ls[j])
		if D == 0 {
			clear(l)
			continue
		}
		M := dmin * float32(lm[j])
		for i, v := range x[32*j : 32*j+32] {
			l[i] = uint8(nearest((v+M)/D, 0, nmax))
		}
	}
	put16(dst, hd)
	put16(dst[2:], hm)
	packScalesK4(dst[4:16], &ls, &lm)
	if bits == 4 {
		qs := dst[16:144]
		for c := range 4 {
			for i := range 32 {
				qs[32*c+i] = k.l[64*c+i] | k.l[64*c+32+i]<<4
			}
		}
		return nil
	}
	qh, qs := dst[16:48], dst[48:176]
	clear(qh)
	for c := range 4 {
		for i := range 32 {
			a, b := k.l[64*c+i], k.l[64*c+32+i]
			qs[32*c+i] = a&15 | b&15<<4
			qh[i] |= a>>4<<(2*c) | b>>4<<(2*c+1)
		}
	}
	return nil
}

// packScalesK4 packs eight 6-bit scales and mins into 12 bytes as ggml's
// get_scale_min_k4 unpacks them: sub-blocks 0..3 in the low six bits of
// bytes 0..3 (scales) and 4..7 (mins); sub-blocks 4..7 in the nibbles of
// bytes 8..11, their top two bits in the top bits of bytes 0..7.
func packScalesK4(s []byte, ls, lm *[8]uint8) {
	for j := range 4 {
		s[j] = ls[j] | ls[j+4]>>4<<6
		s[j+4] = lm[j] | lm[j+4]>>4<<6
		s[j+8] = ls[j+4]&15 | lm[j+4]&15<<4
	}
}

// fitSigned finds a scale s so that x[i] ≈ s·l[i] with integers l[i] in
// [-nmax, nmax-1], weighting each value by x[i]²: the value of largest
// magnitude first maps to -nmax, then 18 nearby scales are tried, keeping
// the rounding whose least-squares scale explains most of Σ w·x². It
// writes l + nmax into L and returns s (0 for an all-zero x).
func fitSigned(x []float32, nmax int32, L []uint8) float32 {
	var amax, m float32
	for _, v := range x {
		if a := abs(v); a > amax {
			amax, m = a, v
		}
	}
	if amax < 1e-15 {
		clear(L[:len(x)])
		return 0
	}
	sums := func(iscale float32, store bool) (sumlx, suml2 float64) {
		for i, v := range x {
			l := nearest(iscale*v, -nmax, nmax-1)
			if store {
				L[i] = uint8(l + nmax)
			}
			w := float64(v) * float64(v)
			sumlx += w * float64(v) * float64(l)
			suml2 += w * float64(l) * float64(l)
		}
		return
	}
	sumlx, suml2 := sums(-float32(nmax)/m, true)
	scale := sumlx / suml2
	best := scale * sumlx
	for k := -9; k <= 9; k++ {
		if k == 0 {
			continue
		}
		iscale := -(float32(nmax) + 0.1*float32(k)) / m
		sumlx, suml2 := sums(iscale, false)
		if suml2 > 0 && sumlx*sumlx > best*suml2 {
			sums(iscale, true)
			scale = sumlx / suml2
			best = scale * sumlx
		}
	}
	return float32(scale)
}

// quantizeQ6K writes one Q6_K super-block of 256.
func quantizeQ6K(dst []byte, x []float32, k *kscratch) error {
	var maxAbs, maxScale float32
	for b := range 16 {
		s := fitSigned(x[16*b:16*b+16], 32, k.l[16*b:])
		k.scales[b] = s
		if abs(s) > maxAbs {
			maxAbs, maxScale = abs(s), s
		}
	}
	if maxAbs < 1e-15 {
		clear(dst) // d = 0: every weight is zero
		return nil
	}
	h, d, err := half(maxScale/-128, "super-block scale")
	if err != nil {
		return err
	}
	var sc [16]int8
	id := inverse(d)
	for b := range 16 {
		sc[b] = int8(nearest(k.scales[b]*id, -128, 127))
	}
	for b := range 16 {
		l := k.l[16*b : 16*b+16]
		D := d * float32(sc[b])
		if D == 0 {
			for i := range l {
				l[i] = 32
			}
			continue
		}
		for i, v := range x[16*b : 16*b+16] {
			l[i] = uint8(nearest(v/D, -32, 31) + 32)
		}
	}
	ql, qh := dst[0:128], dst[128:192]
	for n := range 2 {
		L := k.l[128*n:]
		for i := range 32 {
			q1, q2, q3, q4 := L[i], L[i+32], L[i+64], L[i+96]
			ql[64*n+i] = q1&15 | q3&15<<4
			ql[64*n+i+32] = q2&15 | q4&15<<4
			qh[32*n+i] = q1>>4 | q2>>4<<2 | q3>>4<<4 | q4>>4<<6
		}
	}
	for b := range 16 {
		dst[192+b] = byte(sc[b])
	}
	put16(dst[208:], h)
	return nil
}
