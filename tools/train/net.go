package train

import (
	"math"

	"wisp/simd"
)

// net is the model's forward and backward pass over a batch of B sequences
// of T positions, in the style of llama2.c's train_gpt2.c: the forward pass
// keeps every activation the backward pass needs, and the backward pass is
// written out by hand, layer by layer in reverse.
//
// Every parallel loop gives each output value to one task whose result
// does not depend on the worker that runs it, and every sum runs in a fixed
// order, so results are the same to the bit for any number of workers.
type net[F float] struct {
	c       Config
	B, T, N int // N = B·T
	p       pool
	mm      matmul[F]
	w, g    weights[F] // weights and their gradients (g empty without backward)
	cos     []F        // [T][HeadDim/2]
	sin     []F

	tokens []int32 // [N]

	// Activations, per layer.
	xs         [][]F // [Layers+1][N·Dim]: the residual stream entering each block; xs[Layers] leaves the last
	rms1, rms2 [][]F // [N] inverse root mean squares
	xn1, xn2   [][]F // [N·Dim] normalised inputs of attention and feed-forward
	q, k, v    [][]F // [N·QDim], [N·KVDim] after RoPE
	att        [][]F // [B][Heads][T][T] attention probabilities
	ao         [][]F // [N·QDim] attention output before Wo
	xmid       [][]F // [N·Dim] the stream between attention and feed-forward
	gate, up   [][]F // [N·Hidden] before the activation
	act        [][]F // [N·Hidden] silu(gate)·up
	rmsF, xnF  []F   // final norm
	logits     []F   // [N·Vocab]; gradients of the loss after loss()

	// Gradient scratch, shared by the layers.
	dx, dxn, dq, dk, dv, dao, dact, dgate, dup []F
	tx, tdy, tw                                []F // transposes

	scratch [][]F // [workers][tileElems]
	as      []attnScratch[F]
}

// attnScratch is one worker's memory for the attention of one head.
type attnScratch[F float] struct {
	qh, kh, vh, oh, qhT, khT, vhT, dh, dhT, dkh, dvh []F // [T·HeadDim]
	p2, p3                                           []F // [T·T]
	tmp                                              []F
}

// newNet makes a network of B sequences of T positions over the weights w
// (c.Params() values) and, when g is not nil, their gradients.
func newNet[F float](c Config, B, T, workers int, w, g []F) *net[F] {
	c = c.withDefaults()
	N := B * T
	n := &net[F]{c: c, B: B, T: T, N: N, p: pool{max(workers, 1)}, mm: pickMatmul[F]()}
	n.w = bind(c, w)
	if g != nil {
		n.g = bind(c, g)
	}
	n.cos, n.sin = ropeTables[F](c.RopeBase, c.HeadDim, T)
	d, q, kv, h, L := c.Dim, c.QDim(), c.KVDim(), c.HiddenDim, c.Layers
	mk := func(k int) []F { return make([]F, k) }
	mkL := func(k int) [][]F {
		s := make([][]F, L)
		for i := range s {
			s[i] = mk(k)
		}
		return s
	}
	n.tokens = make([]int32, N)
	n.xs = make([][]F, L+1)
	for i := range n.xs {
		n.xs[i] = mk(N * d)
	}
	n.rms1, n.rms2 = mkL(N), mkL(N)
	n.xn1, n.xn2 = mkL(N*d), mkL(N*d)
	n.q, n.k, n.v = mkL(N*q), mkL(N*kv), mkL(N*kv)
	n.att = mkL(B * c.Heads * T * T)
	n.ao, n.xmid = mkL(N*q), mkL(N*d)
	n.gate, n.up, n.act = mkL(N*h), mkL(N*h), mkL(N*h)
	n.rmsF, n.xnF = mk(N), mk(N*d)
	n.logits = mk(N * c.Vocab)
	if g != nil {
		n.dx, n.dxn = mk(N*d), mk(N*d)
		n.dq, n.dk, n.dv, n.dao = mk(N*q), mk(N*kv), mk(N*kv), mk(N*q)
		n.dact, n.dgate, n.dup = mk(N*h), mk(N*h), mk(N*h)
		wide := max(d, q, h, c.Vocab)
		n.tx, n.tdy = mk(N*wide), mk(N*wide)
		n.tw = mk(wide * max(d, q, h))
	}
	n.scratch = make([][]F, n.p.workers)
	n.as = make([]attnScratch[F], n.p.workers)
	for i := range n.scratch {
		n.scratch[i] = mk(tileElems)
		a := &n.as[i]
		th := T * c.HeadDim
		a.qh, a.kh, a.vh, a.oh = mk(th), mk(th), mk(th), mk(th)
		a.qhT, a.khT, a.vhT = mk(th), mk(th), mk(th)
		a.dh, a.dhT, a.dkh, a.dvh = mk(th), mk(th), mk(th), mk(th)
		a.p2, a.p3 = mk(T*T), mk(T*T)
		a.tmp = mk(tileElems)
	}
	return n
}

// linear computes y = x·Wᵀ for the N rows of x: W is rows×cols.
func (n *net[F]) linear(y, x, w []F, rows, cols int) {
	parMatmul(n.p, n.mm, n.scratch, y, w, x, rows, cols, n.N, false)
}

// linearBack is the backward pass of y = x·Wᵀ: dx (+)= dy·W, adding when
// acc is set, and dW += dyᵀ·x, given xT, the cols×N transpose of x.
func (n *net[F]) linearBack(dx, dy, w, dw, xT []F, rows, cols int, acc bool) {
	parTranspose(n.p, n.tw, w, rows, cols)
	parMatmul(n.p, n.mm, n.scratch, dx, n.tw, dy, cols, rows, n.N, acc)
	parTranspose(n.p, n.tdy, dy, n.N, rows)
	parMatmul(n.p, n.mm, n.scratch, dw, xT, n.tdy, cols, n.N, rows, true)
}

// rmsnorm sets y = w·x/rms(x) for each row of x and keeps 1/rms in inv.
func (n *net[F]) rmsnorm(y, inv, x, w []F) {
	d, eps := n.c.Dim, float64(n.c.NormEps)
	n.p.chunks(n.N, 64, func(_, lo, hi int) {
		for t := lo; t < hi; t++ {
			xt, yt := x[t*d:(t+1)*d], y[t*d:(t+1)*d]
			var ss float64
			for _, v := range xt {
				ss += float64(v) * float64(v)
			}
			r := F(1 / math.Sqrt(ss/float64(d)+eps))
			inv[t] = r
			for i, v := range xt {
				yt[i] = w[i] * (v * r)
			}
		}
	})
}

// rmsnormBack is the backward pass of rmsnorm: with y = w·x·r and
// r = (Σx²/d + eps)^(-1/2),
//
//	dx = r·(w·dy) − x·r³·Σ(w·dy·x)/d,   dw += Σ_t dy·x·r.
//
// dx is set, or added to when acc is set.
func (n *net[F]) rmsnormBack(dx, dy, x, inv, w, dw []F, acc bool) {
	d := n.c.Dim
	n.p.chunks(n.N, 64, func(_, lo, hi int) {
		for t := lo; t < hi; t++ {
			xt, dyt, dxt := x[t*d:(t+1)*d], dy[t*d:(t+1)*d], dx[t*d:(t+1)*d]
			r := inv[t]
			var s float64
			for i, v := range xt {
				s += float64(w[i] * dyt[i] * v)
			}
			c := F(s) * r * r * r / F(d)
			for i, v := range xt {
				g := r*(w[i]*dyt[i]) - v*c
				if acc {
					dxt[i] += g
				} else {
					dxt[i] = g
				}
			}
		}
	})
	// The weight's gradient sums over tokens: cut by columns instead.
	n.p.chunks(d, 32, func(_, lo, hi int) {
		for t := range n.N {
			xt, dyt := x[t*d:(t+1)*d], dy[t*d:(t+1)*d]
			r := inv[t]
			for i := lo; i < hi; i++ {
				dw[i] += dyt[i] * xt[i] * r
			}
		}
	})
}

// rope rotates each head of heads·HeadDim values per row by its position.
func (n *net[F]) rope(x []F, heads int, inverse bool) {
	hd := n.c.HeadDim
	half := hd / 2
	w := heads * hd
	n.p.chunks(n.N, 64, func(_, lo, hi int) {
		for t := lo; t < hi; t++ {
			pos := t % n.T
			cos, sin := n.cos[pos*half:(pos+1)*half], n.sin[pos*half:(pos+1)*half]
			row := x[t*w : (t+1)*w]
			for h := 0; h < w; h += hd {
				v := row[h : h+hd]
				for i := range half {
					a, b := v[2*i], v[2*i+1]
					c, s := cos[i], sin[i]
					if inverse {
						s = -s
					}
					v[2*i] = a*c - b*s
					v[2*i+1] = a*s + b*c
				}
			}
		}
	})
}

// isF32 reports whether F is float32.
func isF32[F float]() bool {
	var z F
	_, ok := any(z).(float32)
	return ok
}

// exp returns e^x: with simd.Exp's float32 polynomial (relative error
// below 4e-7) when f32 is set, else with math.Exp.
func exp[F float](x F, f32 bool) F {
	if f32 {
		return F(simd.Exp(float32(x)))
	}
	return F(math.Exp(float64(x)))
}

// sigmoid is 1/(1+e^-x).
func sigmoid[F float](x F, f32 bool) F { return 1 / (1 + exp(-x, f32)) }

// swiglu sets act = silu(gate)·up.
func (n *net[F]) swiglu(act, gate, up []F) {
	f32 := isF32[F]()
	n.p.chunks(len(act), 4096, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			g := gate[i]
			act[i] = g * sigmoid(g, f32) * up[i]
		}
	})
}

// swigluBack: with s = σ(g), d silu(g)/dg = s·(1 + g·(1−s)).
func (n *net[F]) swigluBack(dgate, dup, dact, gate, up []F) {
	f32 := isF32[F]()
	n.p.chunks(len(dact), 4096, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			g := gate[i]
			s := sigmoid(g, f32)
			dgate[i] = dact[i] * up[i] * s * (1 + g*(1-s))
			dup[i] = dact[i] * g * s
		}
	})
}

// gather copies columns [off, off+w) of the T rows of a (stride cols) into
// dst, T×w.
func gather[F float](dst, a []F, T, cols, off, w int) {
	for t := range T {
		copy(dst[t*w:(t+1)*w], a[t*cols+off:t*cols+off+w])
	}
}

// scatter is the inverse of gather, adding when acc is set.
func scatter[F float](a, src []F, T, cols, off, w int, acc bool) {
	for t := range T {
		d, s := a[t*cols+off:t*cols+off+w], src[t*w:(t+1)*w]
		if acc {
			for i, v := range s {
				d[i] += v
			}
		} else {
			copy(d, s)
		}
	}
}

// attention computes, for each sequence and head, the causal softmax of
// q·kᵀ/√HeadDim (keys and values shared by the heads of a group) and its
// product with the values.
func (n *net[F]) attention(l int) {
	c, T := &n.c, n.T
	hd, qd, kvd := c.HeadDim, c.QDim(), c.KVDim()
	group := c.Heads / c.KVHeads
	scale := F(1 / math.Sqrt(float64(hd)))
	f32 := isF32[F]()
	n.p.run(n.B*c.Heads, func(w, i int) {
		b, h := i/c.Heads, i%c.Heads
		g := h / group
		s := &n.as[w]
		q, k, v := n.q[l][b*T*qd:], n.k[l][b*T*kvd:], n.v[l][b*T*kvd:]
		gather(s.qh, q, T, qd, h*hd, hd)
		gather(s.kh, k, T, kvd, g*hd, hd)
		gather(s.vh, v, T, kvd, g*hd, hd)
		transpose(s.vhT, s.vh, T, hd)
		P := n.att[l][i*T*T : (i+1)*T*T]
		n.mm(P, s.kh, s.qh, T, hd, T, false, s.tmp) // P[t][s] = k[s]·q[t]
		for t := range T {
			row := P[t*T : (t+1)*T]
			softmaxCausal(row[:t+1], scale, f32)
			clear(row[t+1:])
		}
		n.mm(s.oh, s.vhT, P, hd, T, T, false, s.tmp) // o[t] = Σ_s P[t][s]·v[s]
		scatter(n.ao[l][b*T*qd:], s.oh, T, qd, h*hd, hd, false)
	})
}

// softmaxCausal replaces row by softmax(row·scale), summing in float64.
func softmaxCausal[F float](row []F, scale F, f32 bool) {
	m := row[0] * scale
	for _, v := range row[1:] {
		m = max(m, v*scale)
	}
	var sum float64
	for i, v := range row {
		e := exp(v*scale-m, f32)
		row[i] = e
		sum += float64(e)
	}
	inv := F(1 / sum)
	for i, v := range row {
		row[i] = v * inv
	}
}

// attentionBack computes dq, dk and dv from dao, one task per sequence
// and key/value group, so that each task owns the keys and values it
// accumulates into. With P the probabilities and dO the output gradient:
//
//	dP = dO·vᵀ,  dv = Pᵀ·dO,  dS = P∘(dP − rowsum(P∘dP))/√HeadDim,
//	dq = dS·k,   dk = dSᵀ·q.
func (n *net[F]) attentionBack(l int) {
	c, T := &n.c, n.T
	hd, qd, kvd := c.HeadDim, c.QDim(), c.KVDim()
	group := c.Heads / c.KVHeads
	scale := F(1 / math.Sqrt(float64(hd)))
	n.p.run(n.B*c.KVHeads, func(w, i int) {
		b, g := i/c.KVHeads, i%c.KVHeads
		s := &n.as[w]
		q, k, v := n.q[l][b*T*qd:], n.k[l][b*T*kvd:], n.v[l][b*T*kvd:]
		dao, dq := n.dao[b*T*qd:], n.dq[b*T*qd:]
		gather(s.kh, k, T, kvd, g*hd, hd)
		transpose(s.khT, s.kh, T, hd)
		gather(s.vh, v, T, kvd, g*hd, hd)
		clear(s.dkh)
		clear(s.dvh)
		for h := g * group; h < (g+1)*group; h++ {
			P := n.att[l][(b*c.Heads+h)*T*T : (b*c.Heads+h+1)*T*T]
			dP, PT := s.p2, s.p3
			gather(s.qh, q, T, qd, h*hd, hd)
			transpose(s.qhT, s.qh, T, hd)
			gather(s.dh, dao, T, qd, h*hd, hd)
			transpose(s.dhT, s.dh, T, hd)
			n.mm(dP, s.vh, s.dh, T, hd, T, false, s.tmp) // dP[t][s] = v[s]·dO[t]
			transpose(PT, P, T, T)
			n.mm(s.dvh, s.dhT, PT, hd, T, T, true, s.tmp) // dv[s] += Σ_t P[t][s]·dO[t]
			for t := range T {
				pr, dr := P[t*T:t*T+t+1], dP[t*T:(t+1)*T]
				var dot F
				for j, p := range pr {
					dot += p * dr[j]
				}
				for j, p := range pr {
					dr[j] = p * (dr[j] - dot) * scale
				}
				clear(dr[t+1:])
			}
			n.mm(s.oh, s.khT, dP, hd, T, T, false, s.tmp) // dq[t] = Σ_s dS[t][s]·k[s]
			scatter(dq, s.oh, T, qd, h*hd, hd, false)
			transpose(PT, dP, T, T)
			n.mm(s.dkh, s.qhT, PT, hd, T, T, true, s.tmp) // dk[s] += Σ_t dS[t][s]·q[t]
		}
		scatter(n.dk[b*T*kvd:], s.dkh, T, kvd, g*hd, hd, false)
		scatter(n.dv[b*T*kvd:], s.dvh, T, kvd, g*hd, hd, false)
	})
}

// forward runs the model over n.tokens and leaves the logits in n.logits.
func (n *net[F]) forward() {
	c := &n.c
	d, qd, kvd, h := c.Dim, c.QDim(), c.KVDim(), c.HiddenDim
	x0 := n.xs[0]
	for t, tok := range n.tokens {
		copy(x0[t*d:(t+1)*d], n.w.emb[int(tok)*d:(int(tok)+1)*d])
	}
	for l := range c.Layers {
		lw := &n.w.layers[l]
		x := n.xs[l]
		n.rmsnorm(n.xn1[l], n.rms1[l], x, lw.attnNorm)
		n.linear(n.q[l], n.xn1[l], lw.wq, qd, d)
		n.linear(n.k[l], n.xn1[l], lw.wk, kvd, d)
		n.linear(n.v[l], n.xn1[l], lw.wv, kvd, d)
		n.rope(n.q[l], c.Heads, false)
		n.rope(n.k[l], c.KVHeads, false)
		n.attention(l)
		n.linear(n.xmid[l], n.ao[l], lw.wo, d, qd)
		addTo(n.p, n.xmid[l], x)
		n.rmsnorm(n.xn2[l], n.rms2[l], n.xmid[l], lw.ffnNorm)
		n.linear(n.gate[l], n.xn2[l], lw.gate, h, d)
		n.linear(n.up[l], n.xn2[l], lw.up, h, d)
		n.swiglu(n.act[l], n.gate[l], n.up[l])
		n.linear(n.xs[l+1], n.act[l], lw.down, d, h)
		addTo(n.p, n.xs[l+1], n.xmid[l])
	}
	n.rmsnorm(n.xnF, n.rmsF, n.xs[c.Layers], n.w.outNorm)
	n.linear(n.logits, n.xnF, n.w.out, c.Vocab, d)
}

// addTo adds src to dst.
func addTo[F float](p pool, dst, src []F) {
	p.chunks(len(dst), 1<<14, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			dst[i] += src[i]
		}
	})
}

// backward propagates the gradients of the loss held in n.logits (see
// loss) back through the model, adding the weights' gradients to n.g.
func (n *net[F]) backward() {
	c := &n.c
	d, qd, kvd, h, V, N := c.Dim, c.QDim(), c.KVDim(), c.HiddenDim, c.Vocab, n.N
	L := c.Layers

	// Classifier and final norm.
	parTranspose(n.p, n.tx, n.xnF, N, d)
	n.linearBack(n.dxn, n.logits, n.w.out, n.g.out, n.tx, V, d, false)
	n.rmsnormBack(n.dx, n.dxn, n.xs[L], n.rmsF, n.w.outNorm, n.g.outNorm, false)

	for l := L - 1; l >= 0; l-- {
		lw, lg := &n.w.layers[l], &n.g.layers[l]
		// n.dx is the gradient of the stream leaving the block; the
		// residual passes it unchanged to xmid, and the feed-forward adds
		// its own.
		parTranspose(n.p, n.tx, n.act[l], N, h)
		n.linearBack(n.dact, n.dx, lw.down, lg.down, n.tx, d, h, false)
		n.swigluBack(n.dgate, n.dup, n.dact, n.gate[l], n.up[l])
		parTranspose(n.p, n.tx, n.xn2[l], N, d)
		n.linearBack(n.dxn, n.dgate, lw.gate, lg.gate, n.tx, h, d, false)
		n.linearBack(n.dxn, n.dup, lw.up, lg.up, n.tx, h, d, true)
		n.rmsnormBack(n.dx, n.dxn, n.xmid[l], n.rms2[l], lw.ffnNorm, lg.ffnNorm, true)

		// n.dx is now the gradient of xmid; the same again for attention.
		parTranspose(n.p, n.tx, n.ao[l], N, qd)
		n.linearBack(n.dao, n.dx, lw.wo, lg.wo, n.tx, d, qd, false)
		n.attentionBack(l)
		n.rope(n.dq, c.Heads, true)
		n.rope(n.dk, c.KVHeads, true)
		parTranspose(n.p, n.tx, n.xn1[l], N, d)
		n.linearBack(n.dxn, n.dq, lw.wq, lg.wq, n.tx, qd, d, false)
		n.linearBack(n.dxn, n.dk, lw.wk, lg.wk, n.tx, kvd, d, true)
		n.linearBack(n.dxn, n.dv, lw.wv, lg.wv, n.tx, kvd, d, true)
		n.rmsnormBack(n.dx, n.dxn, n.xs[l], n.rms1[l], lw.attnNorm, lg.attnNorm, true)
	}

	// Embedding: each token's row gathers its gradient, cut by columns so
	// that repeated tokens add up in token order.
	n.p.chunks(d, 32, func(_, lo, hi int) {
		for t, tok := range n.tokens {
			row := n.g.emb[int(tok)*d:]
			dxt := n.dx[t*d:]
			for i := lo; i < hi; i++ {
				row[i] += dxt[i]
			}
		}
	})
}
