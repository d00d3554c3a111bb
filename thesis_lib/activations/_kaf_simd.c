/* Vectorised CPU kernels of the Gaussian KAF for float32 and bfloat16 tensors, in NCHW and in
 * channels_last / dense layouts (thesis section 2.4; Scardapane et al. 2019):
 *
 *   f_c(s) = sum_i alpha[c,i] * exp(-gamma[c] * (s - d[c,i])^2)
 *
 * Written with GCC vector extensions (16 float lanes: one AVX-512 register, two AVX2 registers,
 * plain scalar code elsewhere), so no intrinsics tie it to one instruction set. Arithmetic is
 * float32 whatever the storage type; bfloat16 input is widened on load and the output rounded to
 * nearest-even on store; parameter gradients are accumulated per work chunk in float32 and flushed
 * to double partials that the caller sums in a fixed order (bitwise reproducible for any number of
 * threads, as in _kaf_kernel.c).
 *
 * Layouts. The input is viewed as (outer, C, inner), contiguous:
 *   inner > 1  (NCHW): a "group" is 16 consecutive elements of one (n, c) plane, so every lane has
 *              the same channel and the channel's coefficients are broadcast;
 *   inner == 1 (NHWC, or dense N x C): a group is 16 consecutive channels of one pixel, so lane l
 *              has channel 16 b + l and the coefficients are loaded as vectors.
 * Either way the inner loops are the same 16-lane vector code.
 *
 * Dictionaries. An evenly spaced dictionary d_i = d_m + (i - m) h (every fixed-dictionary KAF) uses
 * the recurrence of the direct kernels' fast path in a cheaper form: with t = s - d_m,
 *     k_i = P_j * w_j,   P_j = exp(-gamma t^2) R^j,   R = exp(2 gamma h t),   w_j = exp(-gamma h^2 j^2)
 * (j = i - m), so the D kernel values cost 3 exponentials and D multiplications, and a_i w_j is
 * folded into one coefficient. P_j <= 1 / w_j stays finite whenever gamma h^2 j^2 < 80, which the
 * caller's table check enforces (the thesis and paper presets have gamma h^2 = 1/6 and 1/8).
 * Otherwise (a trained kaf_free dictionary) every kernel value is one exponential.
 *
 * exp is a degree-5 polynomial of 2^f on [-1/2, 1/2] times 2^n (_simd.h; relative error 2e-7, about two
 * float32 ulps) that returns exactly 0 below 2^-126; denormals are flushed to zero inside the
 * kernels (they would cost microcode assists) and the caller's floating-point mode is restored.
 */
#include "_simd.h"

#ifndef TILE
#define TILE 4 /* groups processed together: independent dependency chains, shared coefficient loads */
#endif
_Static_assert(FLUSH_PIXELS % TILE == 0, "the backward's float sums are flushed at tile boundaries");
#define MAXD 64

/* coefficient table: per channel NF floats; fields */
enum { F_DM, F_G, F_TMAX, F_C1, F_SLO, F_SHI, F_AW };
#define F_AWO(D) (F_AW + (D))
#define F_W(D) (F_AW + 2 * (D))
#define F_A(D) (F_AW + 3 * (D))
#define F_D(D) (F_AW + 4 * (D))
#define NFIELDS(D) (F_AW + 5 * (D))

/* coefficient of field f: a broadcast scalar (NCHW: stride 1 table) or a lane vector (stride 16) */
INLINE vf coef(const float *cf, int f, int vec) {
    if (vec) { vf v; memcpy(&v, cf + (int64_t)f * VL, sizeof v); return v; }
    return splat(cf[f]);
}

/* ------------------------------------------------------------------ TILE groups: forward */
/* The shared start of the fixed-dictionary kernels: t = s - d_m cut at +-tmax (tr: uncut; the results are 0
 * unless |tr| < tmax), k0 = exp(-gamma t^2), R = exp(2 gamma h t) and 1/R. */
INLINE void reduce_fixed(const vf *s, const float *cf, int vec, vf *tr, vf *t, vf *k0, vf *R, vf *Ri) {
    vf tmax = coef(cf, F_TMAX, vec), dm = coef(cf, F_DM, vec), c1 = coef(cf, F_C1, vec);
    vf ngl = -coef(cf, F_G, vec) * LOG2E;
    for (int q = 0; q < TILE; ++q) {
        tr[q] = s[q] - dm;
        t[q] = vmin(vmax(tr[q], -tmax), tmax);
        k0[q] = vexp2_neg_half(ngl * t[q] * t[q] + 0.5f);
        vexp_pair(c1 * t[q], &R[q], &Ri[q]); /* |c1 t| <= 80 / jmax (build_table) */
    }
}

/* Fixed dictionary: with z = R (up) and z = 1/R (down) the sums over the dictionary are polynomials,
 *     f = k0 * ( sum_{j>=0} aw_{m+j} R^j  +  sum_{j>=1} aw_{m-j} R^-j ),
 * evaluated by Horner's rule (one FMA per dictionary point). |t| is cut at tmax, where R^jmax stays
 * below e^80 and every kernel value is below e^-30 (checked per channel in build_table): beyond it
 * the output and the gradients are exactly 0. */
INLINE void fwd_fixed(const vf *s, vf *y, const float *cf, int vec, int D, int m) {
    vf tr[TILE], t[TILE], k0[TILE], R[TILE], Ri[TILE], up[TILE], dn[TILE], tmax = coef(cf, F_TMAX, vec);
    reduce_fixed(s, cf, vec, tr, t, k0, R, Ri);
    for (int q = 0; q < TILE; ++q) {
        up[q] = coef(cf, F_AW + D - 1, vec);
        dn[q] = coef(cf, F_AW, vec);
    }
    for (int i = D - 2; i >= m; --i) {
        vf aw = coef(cf, F_AW + i, vec);
        for (int q = 0; q < TILE; ++q) up[q] = up[q] * R[q] + aw;
    }
    for (int i = 1; i < m; ++i) {
        vf aw = coef(cf, F_AW + i, vec);
        for (int q = 0; q < TILE; ++q) dn[q] = dn[q] * Ri[q] + aw;
    }
    for (int q = 0; q < TILE; ++q) {
        vf acc = k0[q] * (m > 0 ? up[q] + dn[q] * Ri[q] : up[q]);
        y[q] = nan_or(s[q], zero_outside(acc, tr[q], tmax));
    }
}

/* Direct kernels: s clamped to [min d - umax, max d + umax] (per channel), outside which every kernel value is
 * exactly 0 (gamma u^2 >= 104): u = s - d_i stays finite for infinite s, where go * k * u would be NaN,
 * and the clamp costs two operations per element rather than per dictionary point. */
INLINE void clamp_s(const vf *s, vf *sc, const float *cf, int vec) {
    vf lo = coef(cf, F_SLO, vec), hi = coef(cf, F_SHI, vec);
    for (int q = 0; q < TILE; ++q) sc[q] = vmin(vmax(s[q], lo), hi);
}

INLINE void fwd_direct(const vf *s, vf *y, const float *cf, int vec, int D) {
    vf ngl = -coef(cf, F_G, vec) * LOG2E, acc[TILE], sc[TILE];
    for (int q = 0; q < TILE; ++q) acc[q] = (vf){0};
    clamp_s(s, sc, cf, vec);
    for (int i = 0; i < D; ++i) {
        vf a = coef(cf, F_A(D) + i, vec), d = coef(cf, F_D(D) + i, vec);
        for (int q = 0; q < TILE; ++q) {
            vf u = sc[q] - d;
            acc[q] += a * vexp2_neg_half(ngl * u * u + 0.5f);
        }
    }
    for (int q = 0; q < TILE; ++q) y[q] = nan_or(s[q], acc[q]);
}

/* A = sum_j aw_j k0 R^j and B = sum_j awo_j k0 R^j over the dictionary (j = i - m; R^-j below m), by
 * Horner's rule in R and 1/R: f = A and, up to -2 gamma, df/ds = t A - B. */
INLINE void horner_ab(const float *cf, int vec, int D, int m, const vf *k0, const vf *R, const vf *Ri, vf *A, vf *B) {
    vf Au[TILE], Bu[TILE], Ad[TILE], Bd[TILE];
    for (int q = 0; q < TILE; ++q) {
        Au[q] = coef(cf, F_AW + D - 1, vec); Bu[q] = coef(cf, F_AWO(D) + D - 1, vec);
        Ad[q] = coef(cf, F_AW, vec); Bd[q] = coef(cf, F_AWO(D), vec);
    }
    for (int i = D - 2; i >= m; --i) {
        vf aw = coef(cf, F_AW + i, vec), awo = coef(cf, F_AWO(D) + i, vec);
        for (int q = 0; q < TILE; ++q) { Au[q] = Au[q] * R[q] + aw; Bu[q] = Bu[q] * R[q] + awo; }
    }
    for (int i = 1; i < m; ++i) {
        vf aw = coef(cf, F_AW + i, vec), awo = coef(cf, F_AWO(D) + i, vec);
        for (int q = 0; q < TILE; ++q) { Ad[q] = Ad[q] * Ri[q] + aw; Bd[q] = Bd[q] * Ri[q] + awo; }
    }
    for (int q = 0; q < TILE; ++q) {
        A[q] = k0[q] * (m > 0 ? Au[q] + Ad[q] * Ri[q] : Au[q]);
        B[q] = k0[q] * (m > 0 ? Bu[q] + Bd[q] * Ri[q] : Bu[q]);
    }
}

/* Value and derivative in one pass (parameters frozen: attacks, the FGSM step of fast AT). The
 * derivative is the input-only backward's dL/ds with go = 1, so that backward becomes gy * d. */
INLINE void fwdd_fixed(const vf *s, vf *y, vf *dy, const float *cf, int vec, int D, int m) {
    vf ng = -coef(cf, F_G, vec);
    vf tr[TILE], t[TILE], k0[TILE], R[TILE], Ri[TILE], A[TILE], B[TILE], tmax = coef(cf, F_TMAX, vec);
    reduce_fixed(s, cf, vec, tr, t, k0, R, Ri);
    horner_ab(cf, vec, D, m, k0, R, Ri, A, B);
    vf g2 = ng * 2.0f;
    for (int q = 0; q < TILE; ++q) {
        y[q] = nan_or(s[q], zero_outside(A[q], tr[q], tmax));
        dy[q] = nan_or(s[q], zero_outside(g2 * (t[q] * A[q] - B[q]), tr[q], tmax));
    }
}

INLINE void fwdd_direct(const vf *s, vf *y, vf *dy, const float *cf, int vec, int D) {
    vf ng = -coef(cf, F_G, vec), ngl = ng * LOG2E, acc[TILE], B[TILE], sc[TILE];
    for (int q = 0; q < TILE; ++q) acc[q] = B[q] = (vf){0};
    clamp_s(s, sc, cf, vec);
    for (int i = 0; i < D; ++i) {
        vf a = coef(cf, F_A(D) + i, vec), d = coef(cf, F_D(D) + i, vec);
        for (int q = 0; q < TILE; ++q) {
            vf u = sc[q] - d;
            vf ae = a * vexp2_neg_half(ngl * u * u + 0.5f);
            acc[q] += ae;
            B[q] += ae * u;
        }
    }
    vf g2 = ng * 2.0f;
    for (int q = 0; q < TILE; ++q) {
        y[q] = nan_or(s[q], acc[q]);
        dy[q] = nan_or(s[q], g2 * B[q]);
    }
}

/* ------------------------------------------------------------------ TILE groups: backward */
/* S (D vectors) accumulates sum go * P_j (scaled by w_j when flushed); gx gets dL/ds. */
/* Backward, fixed dictionary: S_i += go * P_j, P_j = k0 R^j (scaled by w_j when flushed), and
 * A = sum aw P, B = sum awo P give dL/ds = go (-2 gamma)(t A - B). (With the parameters frozen the
 * forward keeps dy/dx instead, so every backward here also wants the parameter gradients.) */
INLINE void bwd_fixed(const vf *s, const vf *go, vf *gx, vf *S, const float *cf, int vec, int D, int m) {
    vf ng = -coef(cf, F_G, vec);
    vf tr[TILE], t[TILE], k0[TILE], R[TILE], Ri[TILE], P[TILE], A[TILE], B[TILE], gm[TILE];
    vf tmax = coef(cf, F_TMAX, vec);
    reduce_fixed(s, cf, vec, tr, t, k0, R, Ri);
    for (int q = 0; q < TILE; ++q) gm[q] = zero_outside(go[q], tr[q], tmax);
    vf aw = coef(cf, F_AW + m, vec), awo = coef(cf, F_AWO(D) + m, vec), acc = S[m];
    for (int q = 0; q < TILE; ++q) {
        P[q] = k0[q];
        acc += gm[q] * k0[q];
        A[q] = aw * k0[q];
        B[q] = awo * k0[q];
    }
    S[m] = acc;
    for (int i = m + 1; i < D; ++i) {
        aw = coef(cf, F_AW + i, vec); awo = coef(cf, F_AWO(D) + i, vec); acc = S[i];
        for (int q = 0; q < TILE; ++q) { P[q] *= R[q]; acc += gm[q] * P[q]; A[q] += aw * P[q]; B[q] += awo * P[q]; }
        S[i] = acc;
    }
    for (int q = 0; q < TILE; ++q) P[q] = k0[q];
    for (int i = m - 1; i >= 0; --i) {
        aw = coef(cf, F_AW + i, vec); awo = coef(cf, F_AWO(D) + i, vec); acc = S[i];
        for (int q = 0; q < TILE; ++q) { P[q] *= Ri[q]; acc += gm[q] * P[q]; A[q] += aw * P[q]; B[q] += awo * P[q]; }
        S[i] = acc;
    }
    vf g2 = ng * 2.0f;
    for (int q = 0; q < TILE; ++q) gx[q] = nan_or(s[q], gm[q] * g2 * (t[q] * A[q] - B[q]));
}

/* S0/S1/S2 accumulate sum go k_i, sum go k_i u_i, sum go k_i u_i^2 (u_i = s - d_i); S1, S2 only if free. */
INLINE void bwd_direct(const vf *s, const vf *go, vf *gx, vf *S0, vf *S1, vf *S2, const float *cf, int vec,
                       int D, int free_) {
    vf ng = -coef(cf, F_G, vec), ngl = ng * LOG2E;
    vf B[TILE], sc[TILE];
    for (int q = 0; q < TILE; ++q) B[q] = (vf){0};
    clamp_s(s, sc, cf, vec);
    for (int i = 0; i < D; ++i) {
        vf a = coef(cf, F_A(D) + i, vec), d = coef(cf, F_D(D) + i, vec);
        vf s0 = S0[i], s1 = free_ ? S1[i] : (vf){0}, s2 = free_ ? S2[i] : (vf){0};
        for (int q = 0; q < TILE; ++q) {
            vf u = sc[q] - d;
            vf e = vexp2_neg_half(ngl * u * u + 0.5f);
            vf ge = go[q] * e;
            s0 += ge;
            if (free_) { vf geu = ge * u; s1 += geu; s2 += geu * u; }
            B[q] += a * e * u;
        }
        S0[i] = s0;
        if (free_) { S1[i] = s1; S2[i] = s2; }
    }
    vf g2 = ng * 2.0f;
    for (int q = 0; q < TILE; ++q) gx[q] = nan_or(s[q], go[q] * g2 * B[q]);
}

/* ------------------------------------------------------------------ coefficient tables */
/* Fills tbl (C x NF). Returns 1 if the recurrence is valid for every channel (evenly spaced within
 * float32 rounding, and P_j and R finite), else 0. */
static int build_table(const float *alpha, const float *dict, const float *gamma, int64_t C, int64_t D,
                       int want_fixed, float *tbl) {
    const int64_t NF = NFIELDS(D), m = (D - 1) / 2;
    int fixed = want_fixed && D >= 2;
    for (int64_t c = 0; c < C; ++c) {
        const float *a = alpha + c * D, *d = dict + c * D;
        double g = gamma[c], h = D > 1 ? ((double)d[D - 1] - d[0]) / (double)(D - 1) : 0.0;
        float *row = tbl + c * NF;
        double jmax = (double)(m > D - 1 - m ? m : D - 1 - m);
        double umax = g > 0 ? sqrt(104.0 / g) : 1e30, dlo = d[0], dhi = d[0];
        for (int64_t i = 1; i < D; ++i) { dlo = fmin(dlo, d[i]); dhi = fmax(dhi, d[i]); }
        /* cut-off of |t|: R^jmax <= e^80 (Horner sums stay finite), and no further than where every
         * kernel value is exactly 0 in float32 anyway */
        double tmax = fmin(80.0 / (2.0 * g * h * (jmax > 0 ? jmax : 1.0)), jmax * h + umax);
        /* the recurrence needs: P_j = k0 R^j <= e^(gamma h^2 j^2) finite, and negligible (< e^-30)
         * kernel values beyond the cut-off */
        double gap = tmax - jmax * h;
        if (!(g > 0) || !(h > 0) || g * h * h * jmax * jmax > 80.0 || gap <= 0 || g * gap * gap < 30.0) fixed = 0;
        for (int64_t i = 0; fixed && i < D; ++i) {
            double ideal = (double)d[m] + (double)(i - m) * h;
            if (fabs(ideal - d[i]) > 4e-6 * (fabs(h) + fabs(d[0]) + fabs(d[D - 1]))) fixed = 0;
        }
        row[F_DM] = d[m];
        row[F_G] = (float)g;
        row[F_TMAX] = (float)tmax;
        row[F_C1] = (float)(2.0 * g * h);
        row[F_SLO] = (float)fmax(dlo - umax, -1e30);
        row[F_SHI] = (float)fmin(dhi + umax, 1e30);
        for (int64_t i = 0; i < D; ++i) {
            double j = (double)(i - m), w = exp(-g * h * h * j * j);
            row[F_AW + i] = (float)(a[i] * w);
            row[F_AWO(D) + i] = (float)(a[i] * w * j * h);
            row[F_W(D) + i] = (float)w;
            row[F_A(D) + i] = a[i];
            row[F_D(D) + i] = d[i];
        }
    }
    return fixed;
}

/* lane-vector table for the channels-innermost layout: (ceil(C/16), NF, 16), padded lanes inert */
static void build_vec_table(const float *tbl, int64_t C, int64_t D, float *vt) {
    const int64_t NF = NFIELDS(D), CB = (C + VL - 1) / VL;
    for (int64_t b = 0; b < CB; ++b)
        for (int64_t f = 0; f < NF; ++f)
            for (int l = 0; l < VL; ++l) {
                int64_t c = b * VL + l;
                float v = 0.0f;
                if (c < C) v = tbl[c * NF + f];
                else if (f == F_G || f == F_TMAX || f == F_SHI) v = 1.0f;
                vt[(b * NF + f) * VL + l] = v;
            }
}

/* ------------------------------------------------------------------ forward */
/* The input as the KAF sees it: x itself, or x * scale_c + shift_c when a BatchNorm before the KAF is
 * fused into it (its normalised output then never goes through memory). */
INLINE vf in_affine(vf x, const float *isc, vf sc, vf sh) { return isc ? x * sc + sh : x; }

static void forward_impl(const void *x, void *y, void *dy, int bf16, const float *tbl, const float *vt, int fixed,
                         int64_t outer, int64_t C, int64_t inner, int64_t D, int nthreads, const float *isc,
                         const float *ish) {
    const int64_t NF = NFIELDS(D);
    const int m = (int)((D - 1) / 2);
    const int vec = inner == 1;
    const int64_t CB = (C + VL - 1) / VL;
    const int64_t groups = (inner + VL - 1) / VL;
    /* work items: (n, c) planes in tiles of TILE groups, or tiles of TILE pixels x channel blocks */
    const int64_t items = vec ? ((outer + TILE - 1) / TILE) * CB : outer * C * ((groups + TILE - 1) / TILE);
    #pragma omp parallel num_threads(nthreads)
    {
        struct fpmode fp = ftz_on();
        #pragma omp for schedule(static)
        for (int64_t it = 0; it < items; ++it) {
            vf s[TILE], o[TILE], od[TILE];
            int nv[TILE];
            int64_t off[TILE];
            const float *cf;
            vf sc = splat(1.0f), sh = {0};
            if (vec) {
                int64_t b = it % CB, p0 = (it / CB) * TILE;
                int nvc = (int)(C - b * VL < VL ? C - b * VL : VL);
                cf = vt + b * NF * VL;
                if (isc) { sc = load_f32(isc + b * VL, nvc); sh = load_f32(ish + b * VL, nvc); }
                for (int q = 0; q < TILE; ++q) { nv[q] = p0 + q < outer ? nvc : 0; off[q] = (p0 + q) * C + b * VL; }
            } else {
                const int64_t tiles = (groups + TILE - 1) / TILE, r = it / tiles, g0 = (it % tiles) * TILE;
                cf = tbl + (r % C) * NF;
                if (isc) { sc = splat(isc[r % C]); sh = splat(ish[r % C]); }
                for (int q = 0; q < TILE; ++q) {
                    int64_t gi = g0 + q, left = inner - gi * VL;
                    nv[q] = gi < groups ? (int)(left < VL ? left : VL) : 0;
                    off[q] = r * inner + gi * VL;
                }
            }
            for (int q = 0; q < TILE; ++q) s[q] = in_affine(load_any(x, off[q], nv[q], bf16), isc, sc, sh);
            if (dy) {
                if (vec) { if (fixed) fwdd_fixed(s, o, od, cf, 1, (int)D, m); else fwdd_direct(s, o, od, cf, 1, (int)D); }
                else { if (fixed) fwdd_fixed(s, o, od, cf, 0, (int)D, m); else fwdd_direct(s, o, od, cf, 0, (int)D); }
                for (int q = 0; q < TILE; ++q) store_any(dy, off[q], od[q], nv[q], bf16);
            } else if (vec) { if (fixed) fwd_fixed(s, o, cf, 1, (int)D, m); else fwd_direct(s, o, cf, 1, (int)D); }
            else { if (fixed) fwd_fixed(s, o, cf, 0, (int)D, m); else fwd_direct(s, o, cf, 0, (int)D); }
            for (int q = 0; q < TILE; ++q) store_any(y, off[q], o[q], nv[q], bf16);
        }
        ftz_restore(fp);
    }
}

/* ------------------------------------------------------------------ backward */
/* Partials: pa, pd (nchunks, C, D) and pg (nchunks, C), zeroed by the caller; pd/pg NULL unless free;
 * gx NULL when no input gradient is wanted. */
/* NCHW flush: every lane is channel c; the float sums are added up in double, once per (n, c) plane. */
static void flush(const vf *S0, const vf *S1, const vf *S2, const float *cf, int64_t c, int64_t D, int fixed,
                  double *pa, double *pd, double *pg) {
    double gsum = 0.0, g = cf[F_G];
    for (int64_t i = 0; i < D; ++i) {
        double s0 = 0, s1 = 0, s2 = 0;
        for (int k = 0; k < VL; ++k) { s0 += S0[i][k]; if (S1) { s1 += S1[i][k]; s2 += S2[i][k]; } }
        if (fixed) s0 *= cf[F_W(D) + i];
        pa[c * D + i] += s0;
        if (pd) {
            double a = cf[F_A(D) + i];
            pd[c * D + i] += 2.0 * g * a * s1;
            gsum -= a * s2;
        }
    }
    if (pg) pg[c] += gsum;
}

/* The channels-innermost layout's flush, a vector per 8 lanes: the float sums of 16 channels (lanes) are
 * widened and added to double accumulators kept in lane order, acc0/acc1 (D x 16) and accg (16), which
 * flush_lanes_out adds to the partials once per chunk. Per lane, the same operations as flush(). */
typedef float vf8 __attribute__((vector_size(32)));
typedef double vd __attribute__((vector_size(64)));
INLINE vd half_d(const float *p) { vf8 h; memcpy(&h, p, sizeof h); return __builtin_convertvector(h, vd); }
INLINE vd load_d(const double *p) { vd v; memcpy(&v, p, sizeof v); return v; }
INLINE void store_d(double *p, vd v) { memcpy(p, &v, sizeof v); }

static void flush_lanes(const vf *S0, const vf *S1, const vf *S2, const float *cf, int64_t D, int fixed,
                        double *acc0, double *acc1, double *accg) {
    for (int h = 0; h < VL; h += 8) {
        vd g2 = 2.0 * half_d(cf + F_G * VL + h), gsum = {0};
        for (int64_t i = 0; i < D; ++i) {
            vd s0 = half_d((const float *)&S0[i] + h);
            if (fixed) s0 *= half_d(cf + (F_W(D) + i) * VL + h);
            store_d(acc0 + i * VL + h, load_d(acc0 + i * VL + h) + s0);
            if (S1) {
                vd a = half_d(cf + (F_A(D) + i) * VL + h);
                vd s1 = half_d((const float *)&S1[i] + h), s2 = half_d((const float *)&S2[i] + h);
                store_d(acc1 + i * VL + h, load_d(acc1 + i * VL + h) + g2 * a * s1);
                gsum -= a * s2;
            }
        }
        if (S1) store_d(accg + h, load_d(accg + h) + gsum);
    }
}

static void flush_lanes_out(const double *acc0, const double *acc1, const double *accg, int64_t c0, int64_t C,
                            int64_t D, double *pa, double *pd, double *pg) {
    for (int l = 0; l < VL && c0 + l < C; ++l) {
        const int64_t c = c0 + l;
        for (int64_t i = 0; i < D; ++i) {
            pa[c * D + i] += acc0[i * VL + l];
            if (pd) pd[c * D + i] += acc1[i * VL + l];
        }
        if (pg) pg[c] += accg[l];
    }
}

static void backward_impl(const void *x, const void *gy, void *gx, int bf16, const float *tbl, const float *vt,
                          int fixed, int free_, double *pa, double *pd, double *pg, int64_t outer, int64_t C,
                          int64_t inner, int64_t D, int64_t nchunks, int nthreads, const float *isc,
                          const float *ish, const float *bn_mean, double *pz) {
    const int64_t NF = NFIELDS(D);
    const int m = (int)((D - 1) / 2);
    const int vec = inner == 1;
    const int64_t CB = (C + VL - 1) / VL;
    const int64_t units = vec ? outer : outer * C; /* pixels, or (n, c) planes */
    #pragma omp parallel num_threads(nthreads)
    {
        struct fpmode fp = ftz_on();
        const int64_t nacc = (vec ? CB : 1) * D;
        vf *S0 = aligned_alloc(64, (size_t)nacc * 3 * sizeof(vf));
        vf *S1 = S0 + nacc, *S2 = S1 + nacc;
        /* double lane accumulators of the channels-innermost layout: acc0, acc1 (CB x D x 16), accg (CB x 16) */
        const int64_t nd = vec ? CB * (2 * D + 1) * VL : 0;
        double *acc0 = vec ? malloc((size_t)nd * sizeof(double)) : 0;
        double *acc1 = vec ? acc0 + CB * D * VL : 0, *accg = vec ? acc1 + CB * D * VL : 0;
        /* the fused BatchNorm's sums (pz): sum gz and sum gz (x - mean) per channel, float per FLUSH_PIXELS */
        vf *z1 = aligned_alloc(64, (size_t)(2 * CB) * sizeof(vf)), *z2 = z1 + CB;
        #pragma omp for schedule(static)
        for (int64_t k = 0; k < nchunks; ++k) {
            const int64_t u0 = units * k / nchunks, u1 = units * (k + 1) / nchunks;
            double *pak = pa + k * C * D, *pdk = pd ? pd + k * C * D : 0, *pgk = pg ? pg + k * C : 0;
            if (!vec) {
                const int64_t groups = (inner + VL - 1) / VL;
                for (int64_t r = u0; r < u1; ++r) {
                    const float *cf = tbl + (r % C) * NF;
                    vf sc = isc ? splat(isc[r % C]) : splat(1.0f), sh = isc ? splat(ish[r % C]) : (vf){0};
                    memset(S0, 0, (size_t)nacc * 3 * sizeof(vf));
                    for (int64_t g0 = 0; g0 < groups; g0 += TILE) {
                        vf s[TILE], go[TILE], o[TILE];
                        int nv[TILE];
                        for (int q = 0; q < TILE; ++q) {
                            int64_t gi = g0 + q, left = inner - gi * VL;
                            nv[q] = gi < groups ? (int)(left < VL ? left : VL) : 0;
                            s[q] = in_affine(load_any(x, r * inner + gi * VL, nv[q], bf16), isc, sc, sh);
                            go[q] = load_any(gy, r * inner + gi * VL, nv[q], bf16);
                        }
                        if (fixed) bwd_fixed(s, go, o, S0, cf, 0, (int)D, m);
                        else bwd_direct(s, go, o, S0, S1, S2, cf, 0, (int)D, free_);
                        if (gx)
                            for (int q = 0; q < TILE; ++q) store_any(gx, r * inner + (g0 + q) * VL, o[q], nv[q], bf16);
                    }
                    flush(S0, free_ ? S1 : 0, free_ ? S2 : 0, cf, r % C, D, fixed, pak,
                          free_ ? pdk : 0, free_ ? pgk : 0);
                }
            } else {
                memset(S0, 0, (size_t)nacc * 3 * sizeof(vf));
                memset(acc0, 0, (size_t)nd * sizeof(double));
                memset(z1, 0, (size_t)(2 * CB) * sizeof(vf));
                double *pzk = pz ? pz + k * 2 * C : 0;
                for (int64_t p0 = u0; p0 < u1; p0 += TILE) {
                    for (int64_t b = 0; b < CB; ++b) {
                        const float *cf = vt + b * NF * VL;
                        int nvc = (int)(C - b * VL < VL ? C - b * VL : VL);
                        vf sc = isc ? load_f32(isc + b * VL, nvc) : splat(1.0f);
                        vf sh = isc ? load_f32(ish + b * VL, nvc) : (vf){0};
                        vf s[TILE], xr[TILE], go[TILE], o[TILE];
                        int nv[TILE];
                        for (int q = 0; q < TILE; ++q) {
                            nv[q] = p0 + q < u1 ? nvc : 0;
                            xr[q] = load_any(x, (p0 + q) * C + b * VL, nv[q], bf16);
                            s[q] = in_affine(xr[q], isc, sc, sh);
                            go[q] = load_any(gy, (p0 + q) * C + b * VL, nv[q], bf16);
                        }
                        if (fixed) bwd_fixed(s, go, o, S0 + b * D, cf, 1, (int)D, m);
                        else bwd_direct(s, go, o, S0 + b * D, S1 + b * D, S2 + b * D, cf, 1, (int)D, free_);
                        if (gx)
                            for (int q = 0; q < TILE; ++q) store_any(gx, (p0 + q) * C + b * VL, o[q], nv[q], bf16);
                        if (pz) { /* gz as stored (rounded to bf16), in pixel order, as the BatchNorm's own sums */
                            vf mb = load_f32(bn_mean + b * VL, nvc);
                            for (int q = 0; q < TILE && p0 + q < u1; ++q) {
                                vf gz = bf16 ? round_bf16(o[q]) : o[q];
                                z1[b] += gz;
                                z2[b] += gz * (xr[q] - mb);
                            }
                        }
                    }
                    /* float sums to double every FLUSH_PIXELS pixels of the chunk (TILE divides it), and at its end */
                    if ((p0 + TILE - u0) % FLUSH_PIXELS != 0 && p0 + TILE < u1) continue;
                    for (int64_t b = 0; b < CB; ++b)
                        flush_lanes(S0 + b * D, free_ ? S1 + b * D : 0, free_ ? S2 + b * D : 0, vt + b * NF * VL, D,
                                    fixed, acc0 + b * D * VL, acc1 + b * D * VL, accg + b * VL);
                    memset(S0, 0, (size_t)nacc * 3 * sizeof(vf));
                    if (pz)
                        for (int64_t b = 0; b < CB; ++b) {
                            for (int l = 0; l < VL && b * VL + l < C; ++l) {
                                pzk[b * VL + l] += z1[b][l];
                                pzk[C + b * VL + l] += z2[b][l];
                            }
                            z1[b] = z2[b] = (vf){0};
                        }
                }
                for (int64_t b = 0; b < CB; ++b)
                    flush_lanes_out(acc0 + b * D * VL, acc1 + b * D * VL, accg + b * VL, b * VL, C, D, pak,
                                    free_ ? pdk : 0, free_ ? pgk : 0);
            }
        }
        free(S0);
        free(acc0);
        free(z1);
        ftz_restore(fp);
    }
}

/* ------------------------------------------------------------------ entry points (ctypes) */
/* dtype: 0 float32, 1 bfloat16 (x, y, gy, gx); parameters are float32 (C, D), (C, D), (C,).
 * want_fixed: the dictionary is evenly spaced and fixed; the recurrence is used if it is valid.
 * Returns 0 on success, -1 if out of memory or D is too large. */
/* dy: NULL, or where to write dy/dx (same dtype and layout as y). isc, ish: NULL, or C floats each: the
 * kernels see x * isc_c + ish_c instead of x (a fused BatchNorm), and gx is the gradient for that input. */
int kafs_forward(const void *x, void *y, void *dy, int dtype, const float *alpha, const float *dict,
                 const float *gamma, int64_t outer, int64_t C, int64_t inner, int64_t D, int want_fixed, int nthreads,
                 const float *isc, const float *ish) {
    if (D < 1 || D > MAXD) return -1;
    const int64_t NF = NFIELDS(D), CB = (C + VL - 1) / VL;
    float *tbl = malloc((size_t)(C * NF) * sizeof(float));
    float *vt = aligned_alloc(64, (size_t)(CB * NF * VL) * sizeof(float));
    if (!tbl || !vt) { free(tbl); free(vt); return -1; }
    int fixed = build_table(alpha, dict, gamma, C, D, want_fixed, tbl);
    if (inner == 1) build_vec_table(tbl, C, D, vt);
    forward_impl(x, y, dy, dtype == 1, tbl, vt, fixed, outer, C, inner, D, nthreads, isc, ish);
    free(tbl); free(vt);
    return 0;
}

/* bn_mean, pz: NULL, or (channels-innermost layout, gx wanted, a fused BatchNorm) the BatchNorm's batch mean
 * (C floats) and, zeroed, its backward's sums per chunk, pz (nchunks, 2, C) doubles: sum gx and
 * sum gx (x - mean) over the chunk's pixels, gx as stored. The BatchNorm backward then skips its own pass
 * over x and gx for them; the sums are taken in the same order and precision as that pass. */
int kafs_backward(const void *x, const void *gy, void *gx, int dtype, const float *alpha, const float *dict,
                  const float *gamma, double *pa, double *pd, double *pg, int64_t outer, int64_t C, int64_t inner,
                  int64_t D, int want_fixed, int need_free, int64_t nchunks, int nthreads, const float *isc,
                  const float *ish, const float *bn_mean, double *pz) {
    if (pz && (inner != 1 || !gx || !bn_mean)) return -1;
    if (D < 1 || D > MAXD) return -1;
    const int64_t NF = NFIELDS(D), CB = (C + VL - 1) / VL;
    float *tbl = malloc((size_t)(C * NF) * sizeof(float));
    float *vt = aligned_alloc(64, (size_t)(CB * NF * VL) * sizeof(float));
    if (!tbl || !vt) { free(tbl); free(vt); return -1; }
    int fixed = build_table(alpha, dict, gamma, C, D, want_fixed && !need_free, tbl);
    if (inner == 1) build_vec_table(tbl, C, D, vt);
    backward_impl(x, gy, gx, dtype == 1, tbl, vt, fixed, need_free, pa, pd, pg, outer, C, inner, D, nchunks,
                  nthreads, isc, ish, bn_mean, pz);
    free(tbl); free(vt);
    return 0;
}

/* 1 if the recurrence kernels would be used for these parameters (for tests and benchmarks). */
int kafs_uses_recurrence(const float *alpha, const float *dict, const float *gamma, int64_t C, int64_t D) {
    if (D < 1 || D > MAXD) return 0;
    float *tbl = malloc((size_t)(C * NFIELDS(D)) * sizeof(float));
    if (!tbl) return 0;
    int fixed = build_table(alpha, dict, gamma, C, D, 1, tbl);
    free(tbl);
    return fixed;
}
