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
 * exp is a degree-6 polynomial of 2^f on [-1/2, 1/2] times 2^n (relative error ~1e-7, about one
 * float32 ulp) that returns exactly 0 below 2^-126; denormals are flushed to zero inside the
 * kernels (they would cost microcode assists) and the caller's floating-point mode is restored.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#define VL 16
#ifndef TILE
#define TILE 4 /* groups processed together: independent dependency chains, shared coefficient loads */
#endif
#define MAXD 64
typedef float vf __attribute__((vector_size(VL * 4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));
typedef uint32_t vu __attribute__((vector_size(VL * 4)));
typedef uint16_t vh __attribute__((vector_size(VL * 2)));

#define INLINE static inline __attribute__((always_inline))

/* coefficient table: per channel NF floats; fields */
enum { F_DM, F_G, F_TMAX, F_C1, F_UMAX, F_AW };
#define F_AWO(D) (F_AW + (D))
#define F_W(D) (F_AW + 2 * (D))
#define F_A(D) (F_AW + 3 * (D))
#define F_D(D) (F_AW + 4 * (D))
#define NFIELDS(D) (F_AW + 5 * (D))

INLINE vf splat(float a) { return (vf){0} + a; }
INLINE vf vsel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }
INLINE vf vmax(vf a, vf b) { return vsel(a > b, a, b); }
INLINE vf vmin(vf a, vf b) { return vsel(a < b, a, b); }
INLINE vi visnan(vf a) { return a != a; }

INLINE vf vexp(vf x) {
    vf z = x * 1.44269504088896341f;
    vi ok = z >= -126.0f;
    z = vmin(vmax(z, splat(-126.0f)), splat(126.0f));
    vf r = (z + 12582912.0f) - 12582912.0f; /* round to nearest integer */
    vf f = z - r;
    vf p = splat(1.5403530393381606e-4f);
    p = p * f + 1.3333558146428443e-3f;
    p = p * f + 9.6181291076284772e-3f;
    p = p * f + 5.5504108664821580e-2f;
    p = p * f + 2.4022650695910071e-1f;
    p = p * f + 6.9314718055994531e-1f;
    p = p * f + 1.0f;
    vi n = __builtin_convertvector(r, vi);
    vf scale = (vf)((n + 127) << 23);
    return (vf)((vi)(p * scale) & ok);
}

/* exp(x) and exp(-x) from one range reduction: 2^(+-z) = 2^(+-n) * 2^(+-f), with 2^f = E(f^2) + f O(f^2)
 * split into its even and odd parts (the same degree-6 polynomial as vexp). */
INLINE void vexp_pair(vf x, vf *ep, vf *em) {
    vf z = x * 1.44269504088896341f;
    vi okp = z >= -126.0f, okm = z <= 126.0f;
    z = vmin(vmax(z, splat(-126.0f)), splat(126.0f));
    vf r = (z + 12582912.0f) - 12582912.0f;
    vf f = z - r, f2 = f * f;
    vf E = ((splat(1.5403530393381606e-4f) * f2 + 9.6181291076284772e-3f) * f2 + 2.4022650695910071e-1f) * f2 + 1.0f;
    vf O = (splat(1.3333558146428443e-3f) * f2 + 5.5504108664821580e-2f) * f2 + 6.9314718055994531e-1f;
    vi n = __builtin_convertvector(r, vi);
    *ep = (vf)((vi)((E + f * O) * (vf)((n + 127) << 23)) & okp);
    *em = (vf)((vi)((E - f * O) * (vf)((127 - n) << 23)) & okm);
}

/* ------------------------------------------------------------------ loads and stores (f32 / bf16) */
INLINE vf load_f32(const float *p, int nv) {
    vf v = {0};
    memcpy(&v, p, (size_t)nv * 4);
    return v;
}
INLINE vf load_bf16(const uint16_t *p, int nv) {
    vh h = {0};
    memcpy(&h, p, (size_t)nv * 2);
    return (vf)(__builtin_convertvector(h, vu) << 16);
}
INLINE void store_f32(float *p, vf v, int nv) { memcpy(p, &v, (size_t)nv * 4); }
INLINE void store_bf16(uint16_t *p, vf v, int nv) {
    vu b = (vu)v;
    vu r = (b + 0x7fffu + ((b >> 16) & 1u)) >> 16; /* round to nearest even */
    vu q = (vu)vsel(visnan(v), (vf)((b >> 16) | 0x40u), (vf)r); /* keep NaN a (quiet) NaN */
    vh h = __builtin_convertvector(q, vh);
    memcpy(p, &h, (size_t)nv * 2);
}
INLINE vf load_any(const void *p, int64_t off, int nv, int bf16) {
    return bf16 ? load_bf16((const uint16_t *)p + off, nv) : load_f32((const float *)p + off, nv);
}
INLINE void store_any(void *p, int64_t off, vf v, int nv, int bf16) {
    if (bf16) store_bf16((uint16_t *)p + off, v, nv);
    else store_f32((float *)p + off, v, nv);
}

/* coefficient of field f: a broadcast scalar (NCHW: stride 1 table) or a lane vector (stride 16) */
INLINE vf coef(const float *cf, int f, int vec) {
    if (vec) { vf v; memcpy(&v, cf + (int64_t)f * VL, sizeof v); return v; }
    return splat(cf[f]);
}

/* ------------------------------------------------------------------ TILE groups: forward */
INLINE void fwd_fixed(const vf *s, vf *y, const float *cf, int vec, int D, int m) {
    vf tmax = coef(cf, F_TMAX, vec), dm = coef(cf, F_DM, vec), c1 = coef(cf, F_C1, vec);
    vf ng = -coef(cf, F_G, vec), aw = coef(cf, F_AW + m, vec);
    vf t[TILE], k0[TILE], R[TILE], Ri[TILE], P[TILE], acc[TILE];
    for (int q = 0; q < TILE; ++q) {
        t[q] = vmin(vmax(s[q] - dm, -tmax), tmax);
        k0[q] = vexp(ng * t[q] * t[q]);
        vexp_pair(c1 * t[q], &R[q], &Ri[q]);
        acc[q] = aw * k0[q];
        P[q] = k0[q];
    }
    for (int i = m + 1; i < D; ++i) {
        aw = coef(cf, F_AW + i, vec);
        for (int q = 0; q < TILE; ++q) { P[q] *= R[q]; acc[q] += aw * P[q]; }
    }
    for (int q = 0; q < TILE; ++q) P[q] = k0[q];
    for (int i = m - 1; i >= 0; --i) {
        aw = coef(cf, F_AW + i, vec);
        for (int q = 0; q < TILE; ++q) { P[q] *= Ri[q]; acc[q] += aw * P[q]; }
    }
    for (int q = 0; q < TILE; ++q) y[q] = vsel(visnan(s[q]), s[q], acc[q]);
}

INLINE void fwd_direct(const vf *s, vf *y, const float *cf, int vec, int D) {
    vf ng = -coef(cf, F_G, vec), umax = coef(cf, F_UMAX, vec), acc[TILE];
    for (int q = 0; q < TILE; ++q) acc[q] = (vf){0};
    for (int i = 0; i < D; ++i) {
        vf a = coef(cf, F_A(D) + i, vec), d = coef(cf, F_D(D) + i, vec);
        for (int q = 0; q < TILE; ++q) {
            vf u = vmin(vmax(s[q] - d, -umax), umax);
            acc[q] += a * vexp(ng * u * u);
        }
    }
    for (int q = 0; q < TILE; ++q) y[q] = vsel(visnan(s[q]), s[q], acc[q]);
}

/* ------------------------------------------------------------------ TILE groups: backward */
/* S (D vectors) accumulates sum go * P_j (scaled by w_j when flushed); gx gets dL/ds. */
/* want_a: accumulate S (parameter gradients wanted); without it only dL/ds is computed (attacks). */
INLINE void bwd_fixed(const vf *s, const vf *go, vf *gx, vf *S, const float *cf, int vec, int D, int m, int want_a) {
    vf tmax = coef(cf, F_TMAX, vec), dm = coef(cf, F_DM, vec), c1 = coef(cf, F_C1, vec);
    vf ng = -coef(cf, F_G, vec);
    vf t[TILE], k0[TILE], R[TILE], Ri[TILE], P[TILE], A[TILE], B[TILE];
    vf aw = coef(cf, F_AW + m, vec), awo = coef(cf, F_AWO(D) + m, vec), acc = want_a ? S[m] : (vf){0};
    for (int q = 0; q < TILE; ++q) {
        t[q] = vmin(vmax(s[q] - dm, -tmax), tmax);
        k0[q] = vexp(ng * t[q] * t[q]);
        vexp_pair(c1 * t[q], &R[q], &Ri[q]);
        P[q] = k0[q];
        if (want_a) acc += go[q] * k0[q];
        A[q] = aw * k0[q];
        B[q] = awo * k0[q];
    }
    if (want_a) S[m] = acc;
    for (int i = m + 1; i < D; ++i) {
        aw = coef(cf, F_AW + i, vec); awo = coef(cf, F_AWO(D) + i, vec);
        if (want_a) acc = S[i];
        for (int q = 0; q < TILE; ++q) {
            P[q] *= R[q];
            if (want_a) acc += go[q] * P[q];
            A[q] += aw * P[q]; B[q] += awo * P[q];
        }
        if (want_a) S[i] = acc;
    }
    for (int q = 0; q < TILE; ++q) P[q] = k0[q];
    for (int i = m - 1; i >= 0; --i) {
        aw = coef(cf, F_AW + i, vec); awo = coef(cf, F_AWO(D) + i, vec);
        if (want_a) acc = S[i];
        for (int q = 0; q < TILE; ++q) {
            P[q] *= Ri[q];
            if (want_a) acc += go[q] * P[q];
            A[q] += aw * P[q]; B[q] += awo * P[q];
        }
        if (want_a) S[i] = acc;
    }
    vf g2 = ng * 2.0f;
    for (int q = 0; q < TILE; ++q) gx[q] = vsel(visnan(s[q]), s[q], go[q] * g2 * (t[q] * A[q] - B[q]));
}

/* S0/S1/S2 accumulate sum go k_i, sum go k_i u_i, sum go k_i u_i^2 (u_i = s - d_i); S1, S2 only if free. */
INLINE void bwd_direct(const vf *s, const vf *go, vf *gx, vf *S0, vf *S1, vf *S2, const float *cf, int vec,
                       int D, int free_, int want_a) {
    vf ng = -coef(cf, F_G, vec), umax = coef(cf, F_UMAX, vec);
    vf B[TILE];
    for (int q = 0; q < TILE; ++q) B[q] = (vf){0};
    for (int i = 0; i < D; ++i) {
        vf a = coef(cf, F_A(D) + i, vec), d = coef(cf, F_D(D) + i, vec);
        vf s0 = want_a ? S0[i] : (vf){0}, s1 = free_ ? S1[i] : (vf){0}, s2 = free_ ? S2[i] : (vf){0};
        for (int q = 0; q < TILE; ++q) {
            vf u = vmin(vmax(s[q] - d, -umax), umax);
            vf e = vexp(ng * u * u);
            vf ge = go[q] * e;
            s0 += ge;
            if (free_) { vf geu = ge * u; s1 += geu; s2 += geu * u; }
            B[q] += a * e * u;
        }
        if (want_a) S0[i] = s0;
        if (free_) { S1[i] = s1; S2[i] = s2; }
    }
    vf g2 = ng * 2.0f;
    for (int q = 0; q < TILE; ++q) gx[q] = vsel(visnan(s[q]), s[q], go[q] * g2 * B[q]);
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
        double umax = g > 0 ? sqrt(104.0 / g) : 1e30;
        double tmax = jmax * h + umax;
        if (!(g > 0) || !(h > 0) || g * h * h * jmax * jmax > 80.0 || 2.0 * g * h * tmax > 80.0) fixed = 0;
        for (int64_t i = 0; fixed && i < D; ++i) {
            double ideal = (double)d[m] + (double)(i - m) * h;
            if (fabs(ideal - d[i]) > 4e-6 * (fabs(h) + fabs(d[0]) + fabs(d[D - 1]))) fixed = 0;
        }
        row[F_DM] = d[m];
        row[F_G] = (float)g;
        row[F_TMAX] = (float)tmax;
        row[F_C1] = (float)(2.0 * g * h);
        row[F_UMAX] = (float)umax;
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
                else if (f == F_G || f == F_TMAX || f == F_UMAX) v = 1.0f;
                vt[(b * NF + f) * VL + l] = v;
            }
}

struct fpmode { unsigned int csr; };
INLINE struct fpmode ftz_on(void) {
    struct fpmode s = {0};
#if defined(__SSE__)
    s.csr = _mm_getcsr();
    _mm_setcsr(s.csr | 0x8040); /* flush-to-zero | denormals-are-zero */
#endif
    return s;
}
INLINE void ftz_restore(struct fpmode s) {
#if defined(__SSE__)
    _mm_setcsr(s.csr);
#else
    (void)s;
#endif
}

/* ------------------------------------------------------------------ forward */
static void forward_impl(const void *x, void *y, int bf16, const float *tbl, const float *vt, int fixed,
                         int64_t outer, int64_t C, int64_t inner, int64_t D, int nthreads) {
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
            vf s[TILE], o[TILE];
            int nv[TILE];
            int64_t off[TILE];
            const float *cf;
            if (vec) {
                int64_t b = it % CB, p0 = (it / CB) * TILE;
                int nvc = (int)(C - b * VL < VL ? C - b * VL : VL);
                cf = vt + b * NF * VL;
                for (int q = 0; q < TILE; ++q) { nv[q] = p0 + q < outer ? nvc : 0; off[q] = (p0 + q) * C + b * VL; }
            } else {
                const int64_t tiles = (groups + TILE - 1) / TILE, r = it / tiles, g0 = (it % tiles) * TILE;
                cf = tbl + (r % C) * NF;
                for (int q = 0; q < TILE; ++q) {
                    int64_t gi = g0 + q, left = inner - gi * VL;
                    nv[q] = gi < groups ? (int)(left < VL ? left : VL) : 0;
                    off[q] = r * inner + gi * VL;
                }
            }
            for (int q = 0; q < TILE; ++q) s[q] = load_any(x, off[q], nv[q], bf16);
            if (vec) { if (fixed) fwd_fixed(s, o, cf, 1, (int)D, m); else fwd_direct(s, o, cf, 1, (int)D); }
            else { if (fixed) fwd_fixed(s, o, cf, 0, (int)D, m); else fwd_direct(s, o, cf, 0, (int)D); }
            for (int q = 0; q < TILE; ++q) store_any(y, off[q], o[q], nv[q], bf16);
        }
        ftz_restore(fp);
    }
}

/* ------------------------------------------------------------------ backward */
/* Partials: pa, pd (nchunks, C, D) and pg (nchunks, C), zeroed by the caller; pd/pg NULL unless free;
 * pa NULL when no parameter gradient is wanted (then only gx is computed; need_free must be 0). */
static void flush(const vf *S0, const vf *S1, const vf *S2, const float *row_or_vt, int vec, int64_t c0, int64_t C,
                  int64_t D, int fixed, double *pa, double *pd, double *pg) {
    /* vec: lanes are channels c0..c0+15 with coefficients in a lane table; else all lanes are channel c0 */
    for (int l = 0; l < (vec ? VL : 1); ++l) {
        int64_t c = c0 + l;
        if (c >= C) break;
        const float *cf = vec ? row_or_vt + l : row_or_vt;
        const int64_t st = vec ? VL : 1;
        double gsum = 0.0, g = cf[F_G * st];
        for (int64_t i = 0; i < D; ++i) {
            double s0 = 0, s1 = 0, s2 = 0;
            if (vec) { s0 = S0[i][l]; if (S1) { s1 = S1[i][l]; s2 = S2[i][l]; } }
            else for (int k = 0; k < VL; ++k) { s0 += S0[i][k]; if (S1) { s1 += S1[i][k]; s2 += S2[i][k]; } }
            if (fixed) s0 *= cf[(F_W(D) + i) * st];
            pa[c * D + i] += s0;
            if (pd) {
                double a = cf[(F_A(D) + i) * st];
                pd[c * D + i] += 2.0 * g * a * s1;
                gsum -= a * s2;
            }
        }
        if (pg) pg[c] += gsum;
    }
}

static void backward_impl(const void *x, const void *gy, void *gx, int bf16, const float *tbl, const float *vt,
                          int fixed, int free_, double *pa, double *pd, double *pg, int64_t outer, int64_t C,
                          int64_t inner, int64_t D, int64_t nchunks, int nthreads) {
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
        #pragma omp for schedule(static)
        for (int64_t k = 0; k < nchunks; ++k) {
            const int64_t u0 = units * k / nchunks, u1 = units * (k + 1) / nchunks;
            double *pak = pa ? pa + k * C * D : 0, *pdk = pd ? pd + k * C * D : 0, *pgk = pg ? pg + k * C : 0;
            if (!vec) {
                const int64_t groups = (inner + VL - 1) / VL;
                for (int64_t r = u0; r < u1; ++r) {
                    const float *cf = tbl + (r % C) * NF;
                    memset(S0, 0, (size_t)nacc * 3 * sizeof(vf));
                    for (int64_t g0 = 0; g0 < groups; g0 += TILE) {
                        vf s[TILE], go[TILE], o[TILE];
                        int nv[TILE];
                        for (int q = 0; q < TILE; ++q) {
                            int64_t gi = g0 + q, left = inner - gi * VL;
                            nv[q] = gi < groups ? (int)(left < VL ? left : VL) : 0;
                            s[q] = load_any(x, r * inner + gi * VL, nv[q], bf16);
                            go[q] = load_any(gy, r * inner + gi * VL, nv[q], bf16);
                        }
                        if (fixed) { if (pa) bwd_fixed(s, go, o, S0, cf, 0, (int)D, m, 1);
                                     else bwd_fixed(s, go, o, S0, cf, 0, (int)D, m, 0); }
                        else bwd_direct(s, go, o, S0, S1, S2, cf, 0, (int)D, free_, pa != 0);
                        if (gx)
                            for (int q = 0; q < TILE; ++q) store_any(gx, r * inner + (g0 + q) * VL, o[q], nv[q], bf16);
                    }
                    if (pa) flush(S0, free_ ? S1 : 0, free_ ? S2 : 0, cf, 0, r % C, C, D, fixed, pak,
                                  free_ ? pdk : 0, free_ ? pgk : 0);
                }
            } else {
                memset(S0, 0, (size_t)nacc * 3 * sizeof(vf));
                int64_t since = 0;
                for (int64_t p0 = u0; p0 < u1; p0 += TILE) {
                    for (int64_t b = 0; b < CB; ++b) {
                        const float *cf = vt + b * NF * VL;
                        int nvc = (int)(C - b * VL < VL ? C - b * VL : VL);
                        vf s[TILE], go[TILE], o[TILE];
                        int nv[TILE];
                        for (int q = 0; q < TILE; ++q) {
                            nv[q] = p0 + q < u1 ? nvc : 0;
                            s[q] = load_any(x, (p0 + q) * C + b * VL, nv[q], bf16);
                            go[q] = load_any(gy, (p0 + q) * C + b * VL, nv[q], bf16);
                        }
                        if (fixed) { if (pa) bwd_fixed(s, go, o, S0 + b * D, cf, 1, (int)D, m, 1);
                                     else bwd_fixed(s, go, o, S0 + b * D, cf, 1, (int)D, m, 0); }
                        else bwd_direct(s, go, o, S0 + b * D, S1 + b * D, S2 + b * D, cf, 1, (int)D, free_,
                                        pa != 0);
                        if (gx)
                            for (int q = 0; q < TILE; ++q) store_any(gx, (p0 + q) * C + b * VL, o[q], nv[q], bf16);
                    }
                    if (pa && (++since == 16 || p0 + TILE >= u1)) { /* flush float sums to double every 64 pixels */
                        for (int64_t b = 0; b < CB; ++b)
                            flush(S0 + b * D, free_ ? S1 + b * D : 0, free_ ? S2 + b * D : 0, vt + b * NF * VL, 1,
                                  b * VL, C, D, fixed, pak, free_ ? pdk : 0, free_ ? pgk : 0);
                        memset(S0, 0, (size_t)nacc * 3 * sizeof(vf));
                        since = 0;
                    }
                }
            }
        }
        free(S0);
        ftz_restore(fp);
    }
}

/* ------------------------------------------------------------------ entry points (ctypes) */
/* dtype: 0 float32, 1 bfloat16 (x, y, gy, gx); parameters are float32 (C, D), (C, D), (C,).
 * want_fixed: the dictionary is evenly spaced and fixed; the recurrence is used if it is valid.
 * Returns 0 on success, -1 if out of memory or D is too large. */
int kafs_forward(const void *x, void *y, int dtype, const float *alpha, const float *dict, const float *gamma,
                 int64_t outer, int64_t C, int64_t inner, int64_t D, int want_fixed, int nthreads) {
    if (D < 1 || D > MAXD) return -1;
    const int64_t NF = NFIELDS(D), CB = (C + VL - 1) / VL;
    float *tbl = malloc((size_t)(C * NF) * sizeof(float));
    float *vt = aligned_alloc(64, (size_t)(CB * NF * VL) * sizeof(float));
    if (!tbl || !vt) { free(tbl); free(vt); return -1; }
    int fixed = build_table(alpha, dict, gamma, C, D, want_fixed, tbl);
    if (inner == 1) build_vec_table(tbl, C, D, vt);
    forward_impl(x, y, dtype == 1, tbl, vt, fixed, outer, C, inner, D, nthreads);
    free(tbl); free(vt);
    return 0;
}

int kafs_backward(const void *x, const void *gy, void *gx, int dtype, const float *alpha, const float *dict,
                  const float *gamma, double *pa, double *pd, double *pg, int64_t outer, int64_t C, int64_t inner,
                  int64_t D, int want_fixed, int need_free, int64_t nchunks, int nthreads) {
    if (D < 1 || D > MAXD) return -1;
    const int64_t NF = NFIELDS(D), CB = (C + VL - 1) / VL;
    float *tbl = malloc((size_t)(C * NF) * sizeof(float));
    float *vt = aligned_alloc(64, (size_t)(CB * NF * VL) * sizeof(float));
    if (!tbl || !vt) { free(tbl); free(vt); return -1; }
    int fixed = build_table(alpha, dict, gamma, C, D, want_fixed && !need_free, tbl);
    if (inner == 1) build_vec_table(tbl, C, D, vt);
    backward_impl(x, gy, gx, dtype == 1, tbl, vt, fixed, need_free, pa, pd, pg, outer, C, inner, D, nchunks,
                  nthreads);
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
