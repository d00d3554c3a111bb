/* Shared vector helpers of the CPU kernels (_kaf_simd.c, _pointwise_simd.c, _batchnorm_simd.c): 16-lane
 * float vectors (GCC vector extensions), a float32 exp, float32/bfloat16 loads and stores, and
 * flush-to-zero for the duration of a kernel. Included, not compiled on its own. */
#ifndef THESIS_SIMD_H
#define THESIS_SIMD_H
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#define VL 16
#define FLUSH_PIXELS 64 /* pixels summed in float32 before double partials take them (BatchNorm sums) */
typedef float vf __attribute__((vector_size(VL * 4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));
typedef uint32_t vu __attribute__((vector_size(VL * 4)));
typedef uint16_t vh __attribute__((vector_size(VL * 2)));

#define INLINE static inline __attribute__((always_inline))

INLINE vf splat(float a) { return (vf){0} + a; }
INLINE vf vsel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }
/* max / min as x86 defines them: a > b ? a : b (b if either is NaN); one instruction with AVX-512, where
 * the generic select costs a compare, a mask-to-vector move and a blend */
#if defined(__AVX512F__)
#include <immintrin.h>
INLINE vf vmax(vf a, vf b) { return (vf)_mm512_max_ps((__m512)a, (__m512)b); }
INLINE vf vmin(vf a, vf b) { return (vf)_mm512_min_ps((__m512)a, (__m512)b); }
#else
INLINE vf vmax(vf a, vf b) { return vsel(a > b, a, b); }
INLINE vf vmin(vf a, vf b) { return vsel(a < b, a, b); }
#endif
INLINE vi visnan(vf a) { return a != a; }

/* 2^r for integral r in [-126, 126], times v: AVX-512's vscalefps (one instruction, exact here), else
 * the exponent built by hand; round(): nearest integer, ties to even. */
#if defined(__AVX512F__)
#include <immintrin.h>
INLINE vf scale2(vf v, vf r) { return (vf)_mm512_scalef_ps((__m512)v, (__m512)r); }
INLINE vf vround(vf z) { return (vf)_mm512_roundscale_ps((__m512)z, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
#else
INLINE vf scale2(vf v, vf r) { return v * (vf)((__builtin_convertvector(r, vi) + 127) << 23); }
INLINE vf vround(vf z) { return (z + 12582912.0f) - 12582912.0f; }
#endif

/* v * 2^r where z >= lo, else 0 (also for NaN z): with AVX-512 the comparison gives a
 * mask register and the scaling is masked, where the generic select costs a move and a blend more */
#if defined(__AVX512F__)
INLINE vf scale2_ge(vf v, vf r, vf z, float lo) {
    return (vf)_mm512_maskz_scalef_ps(_mm512_cmp_ps_mask((__m512)z, _mm512_set1_ps(lo), _CMP_GE_OQ), (__m512)v, (__m512)r);
}
#else
INLINE vf scale2_ge(vf v, vf r, vf z, float lo) { return (vf)((vi)scale2(v, r) & (z >= lo)); }
#endif

/* 2^f on [-1/2, 1/2] (vexp_pair): 1 + f (C1 + f (C2 + ...)), degree 5, fitted by iteratively reweighted
 * least squares towards minimax relative error, the constant term fixed at 1 so that 2^0 = 1: relative
 * error 9e-8 in exact arithmetic, 1.7e-7 evaluated in float32 with FMAs. */
#define EXP2_C1 0.69314700365066528f
#define EXP2_C2 0.24022242426872253f
#define EXP2_C3 0.055507335811853409f
#define EXP2_C4 0.0096714822575449944f
#define EXP2_C5 0.0013264636509120464f

/* e^x = 2^z, z = x log2(e), from u = z + 1/2: n = floor(u), g = u - n in [0, 1), 2^z = 2^n Q(g) with
 * Q(g) ~ 2^(g - 1/2) of degree 5, fitted like EXP2_C* (relative error 7.5e-8 exact, 1.7e-7 evaluated in
 * float32 with FMAs; Q(1/2) = 1 exactly, so e^0 = 1). With AVX-512, g is one vreduceps and vscalefps
 * floors u itself: one instruction fewer than rounding and subtracting. u is clamped to
 * [-125.5, 126.5]; the result is 0 below 2^-126 and for NaN. */
#define LOG2E 1.44269504088896341f
#define EXPQ_C0 0.70710670948028564f
#define EXPQ_C1 0.49013325572013855f
#define EXPQ_C2 0.16981422901153564f
#define EXPQ_C3 0.039475206285715103f
#define EXPQ_C4 0.0063564172014594078f
#define EXPQ_C5 0.0013276367681100965f

INLINE vf expq_poly(vf g) {
    vf p = splat(EXPQ_C5);
    p = p * g + EXPQ_C4;
    p = p * g + EXPQ_C3;
    p = p * g + EXPQ_C2;
    p = p * g + EXPQ_C1;
    return p * g + EXPQ_C0;
}

/* 2^(u - 1/2) for u clamped to [lo, hi] (u0 unclamped: 0 where u0 < -125.5, or NaN) */
INLINE vf vexp2_half(vf u0, vf u) {
#if defined(__AVX512F__)
    vf g = (vf)_mm512_reduce_ps((__m512)u, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    return scale2_ge(expq_poly(g), u, u0, -125.5f);
#else
    vf n = vround(u - 0.5f); /* floor(u), or u - 1 at integers: Q(1) is 2^(1/2) there, the same value */
    return scale2_ge(expq_poly(u - n), n, u0, -125.5f);
#endif
}

INLINE vf vexp(vf x) {
    vf u0 = x * LOG2E + 0.5f;
    return vexp2_half(u0, vmin(vmax(u0, splat(-125.5f)), splat(126.5f)));
}

/* 2^(u0 - 1/2) for u0 <= 1/2, given u0 = z + 1/2 (a Gaussian's exponent in base 2, its scale and the 1/2
 * folded by the caller into one multiply and one FMA): vexp's values there, without the upper clamp */
INLINE vf vexp2_neg_half(vf u0) {
#if defined(__AVX512F__)
    return vexp2_half(u0, u0); /* lanes below -125.5 (or NaN) are masked out of vscalefps: no clamp needed */
#else
    return vexp2_half(u0, vmax(u0, splat(-125.5f)));
#endif
}


/* exp(x) and exp(-x) from one range reduction, for finite |x| <= 87 (the caller guarantees it: no clamp,
 * no mask): 2^(+-z) = 2^(+-n) * 2^(+-f), with 2^f = E(f^2) + f O(f^2) split into its even and odd parts,
 * the centred polynomial EXP2_C*, whose symmetry gives both signs. */
INLINE void vexp_pair(vf x, vf *ep, vf *em) {
    vf z = x * LOG2E;
    vf r = vround(z);
    vf f = z - r, f2 = f * f;
    vf E = (splat(EXP2_C4) * f2 + EXP2_C2) * f2 + 1.0f;
    vf O = (splat(EXP2_C5) * f2 + EXP2_C3) * f2 + EXP2_C1;
    *ep = scale2(E + f * O, r);
    *em = scale2(E - f * O, -r);
}

/* s where s is NaN, else v; and v where |t| < lim, else 0 (also for NaN t). AVX-512 compares into a mask
 * register and moves under it. */
#if defined(__AVX512F__)
INLINE vf nan_or(vf s, vf v) {
    return (vf)_mm512_mask_mov_ps((__m512)v, _mm512_cmp_ps_mask((__m512)s, (__m512)s, _CMP_UNORD_Q), (__m512)s);
}
INLINE vf zero_outside(vf v, vf t, vf lim) {
    return (vf)_mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_abs_ps((__m512)t), (__m512)lim, _CMP_LT_OQ), (__m512)v);
}
#else
INLINE vf nan_or(vf s, vf v) { return vsel(visnan(s), s, v); }
INLINE vf zero_outside(vf v, vf t, vf lim) { return (vf)((vi)v & ((t < lim) & (t > -lim))); }
#endif

/* 1 / x: the AVX-512 reciprocal estimate (relative error 2^-14) refined by one Newton step (about 2^-23,
 * one float32 ulp), several times the throughput of a vector division; a division elsewhere. */
#if defined(__AVX512F__)
INLINE vf vrecip(vf x) {
    vf r = (vf)_mm512_rcp14_ps((__m512)x);
    return r * (2.0f - x * r);
}
#else
INLINE vf vrecip(vf x) { return 1.0f / x; }
#endif

/* ------------------------------------------------------------------ loads and stores (f32 / bf16) */
/* Full vectors use fixed-size copies (single vector loads/stores); only tails take the variable path. */
INLINE vf load_f32(const float *p, int nv) {
    vf v = {0};
    if (nv == VL) memcpy(&v, p, sizeof v);
    else if (nv > 0) memcpy(&v, p, (size_t)nv * 4);
    return v;
}
INLINE vf load_bf16(const uint16_t *p, int nv) {
    vh h = {0};
    if (nv == VL) memcpy(&h, p, sizeof h);
    else if (nv > 0) memcpy(&h, p, (size_t)nv * 2);
    return (vf)(__builtin_convertvector(h, vu) << 16);
}
INLINE void store_f32(float *p, vf v, int nv) {
    if (nv == VL) memcpy(p, &v, sizeof v);
    else if (nv > 0) memcpy(p, &v, (size_t)nv * 4);
}
INLINE void store_bf16(uint16_t *p, vf v, int nv) {
#if defined(__AVX512BF16__)
    /* one instruction: round to nearest even, NaN kept a quiet NaN (float32 denormals, which the kernels
     * never produce, become zero) */
    __m256bh hb = _mm512_cvtneps_pbh((__m512)v);
    vh h;
    memcpy(&h, &hb, sizeof h);
#else
    vu b = (vu)v;
    vu r = (b + 0x7fffu + ((b >> 16) & 1u)) >> 16; /* round to nearest even */
    vu q = (vu)vsel(visnan(v), (vf)((b >> 16) | 0x40u), (vf)r); /* keep NaN a (quiet) NaN */
    vh h = __builtin_convertvector(q, vh);
#endif
    if (nv == VL) memcpy(p, &h, sizeof h);
    else if (nv > 0) memcpy(p, &h, (size_t)nv * 2);
}
/* v rounded to bfloat16 and widened back: the value a bf16 store keeps */
INLINE vf round_bf16(vf v) {
    uint16_t h[VL];
    store_bf16(h, v, VL);
    return load_bf16(h, VL);
}
INLINE vf load_any(const void *p, int64_t off, int nv, int bf16) {
    return bf16 ? load_bf16((const uint16_t *)p + off, nv) : load_f32((const float *)p + off, nv);
}
INLINE void store_any(void *p, int64_t off, vf v, int nv, int bf16) {
    if (bf16) store_bf16((uint16_t *)p + off, v, nv);
    else store_f32((float *)p + off, v, nv);
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

#endif
