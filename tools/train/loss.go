package train

import "math"

// objective says what the loss of a batch is. Rows whose target is
// negative are ignored (padding).
type objective struct {
	targets []int32 // [N]
	// teacher holds a teacher's logits, [N·Vocab], or nil for plain
	// next-token cross-entropy. With a teacher the loss of a row is
	// (1−alpha)·temp²·KL(teacher_temp ‖ student_temp) + alpha·CE.
	teacher     []float32
	temp, alpha float64
	// grad asks for the gradient of scale·Σ loss to replace the logits.
	grad  bool
	scale float64
}

// rowStats are the losses of one row.
type rowStats struct{ loss, ce, kl float64 }

// loss computes the loss of every row into rows and, when asked, replaces
// the logits by the gradient of the scaled total.
func (n *net[F]) loss(o objective, rows []rowStats) {
	V := n.c.Vocab
	f32 := isF32[F]()
	n.p.chunks(n.N, 16, func(w, lo, hi int) {
		for t := lo; t < hi; t++ {
			z := n.logits[t*V : (t+1)*V]
			y := int(o.targets[t])
			if y < 0 {
				rows[t] = rowStats{}
				if o.grad {
					clear(z)
				}
				continue
			}
			lse := logSumExp(z, 1)
			r := rowStats{ce: lse - float64(z[y])}
			r.loss = r.ce
			var zt []float32
			var lseT, lseQ float64
			if o.teacher != nil {
				zt = o.teacher[t*V : (t+1)*V]
				inv := 1 / o.temp
				lseT = logSumExp(zt, inv)
				lseQ = logSumExp(z, inv)
				var kl float64
				for i, v := range zt {
					lp := float64(v)*inv - lseT
					lq := float64(z[i])*inv - lseQ
					kl += math.Exp(lp) * (lp - lq)
				}
				r.kl = kl
				r.loss = (1-o.alpha)*o.temp*o.temp*kl + o.alpha*r.ce
			}
			rows[t] = r
			if !o.grad {
				continue
			}
			// d CE/dz = softmax(z) − onehot(y); d (τ²·KL)/dz = τ·(q_τ − p_τ).
			for i, v := range z {
				g := float64(exp(v-F(lse), f32))
				if i == y {
					g--
				}
				if zt != nil {
					inv := 1 / o.temp
					pt := math.Exp(float64(zt[i])*inv - lseT)
					qt := math.Exp(float64(v)*inv - lseQ)
					g = o.alpha*g + (1-o.alpha)*o.temp*(qt-pt)
				}
				z[i] = F(g * o.scale)
			}
		}
	})
}

// logSumExp returns log Σ exp(s·z[i]) in float64.
func logSumExp[F float](z []F, s float64) float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = max(m, float64(v)*s)
	}
	var sum float64
	for _, v := range z {
		sum += math.Exp(float64(v)*s - m)
	}
	return m + math.Log(sum)
}
