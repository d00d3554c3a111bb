/* The fixed activations' value and derivative on 16-lane float vectors (ELU, Swish, GELU, softplus,
 * tanh, and sigmoid), shared by the element-wise kernels (_pointwise_simd.c) and the fused BatchNorm +
 * activation kernels (_batchnorm_simd.c). The formulas and their accuracy: _pointwise_simd.c. Included,
 * not compiled on its own. */
#ifndef THESIS_POINTWISE_H
#define THESIS_POINTWISE_H
#include "_simd.h"

INLINE vf expm1_neg(vf x) { /* e^x - 1 for x <= 0 */
    vf p = splat(1.0f / 5040.0f);
    p = p * x + 1.0f / 720.0f;
    p = p * x + 1.0f / 120.0f;
    p = p * x + 1.0f / 24.0f;
    p = p * x + 1.0f / 6.0f;
    p = p * x + 0.5f;
    p = p * x + 1.0f;
    vf small = p * x;
    return vsel(x > -0.5f, small, vexp(x) - 1.0f);
}

INLINE vf vabs(vf x) { return (vf)((vi)x & 0x7fffffff); }
INLINE vf copysign_(vf mag, vf sgn) { return (vf)(((vi)mag & 0x7fffffff) | ((vi)sgn & INT32_MIN)); }

/* natural log for v >= 1 (finite): exponent and mantissa in [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(f / (2 + f)) */
INLINE vf vlog_ge1(vf v) {
    vi b = (vi)v;
    vi e = ((b >> 23) & 0xff) - 127;
    vf m = (vf)((b & 0x007fffff) | 0x3f800000);
    vi big = m > 1.41421356f;
    m = vsel(big, m * 0.5f, m);
    e = e + (big & 1);
    vf f = m - 1.0f;
    vf s = f * vrecip(f + 2.0f), s2 = s * s;
    vf p = splat(1.0f / 9.0f);
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    return __builtin_convertvector(e, vf) * 0.69314718055994531f + 2.0f * s * p;
}

/* ------------------------------------------------------------------ y and f' of each function */
INLINE void elu_yd(vf x, float a, vf *y, vf *d) {
    vf xn = vmin(x, splat(0.0f));
    vf em1 = expm1_neg(xn);
    vi pos = x > 0.0f;
    *y = vsel(pos, x, a * em1);
    *d = vsel(pos, splat(1.0f), a * (em1 + 1.0f));
}

INLINE void swish_yd(vf x, vf *y, vf *d) {
    vf s = vrecip(1.0f + vexp(-x));
    *y = x * s;
    *d = s * (1.0f + x * (1.0f - s));
}

INLINE void gelu_yd(vf x, vf *y, vf *d) {
    vf z = vmin(vabs(x), splat(14.0f)) * 0.70710678118654752f; /* |x| / sqrt(2); Phi(-14) is below float32 */
    vf t = vrecip(1.0f + 0.5f * z);
    vf p = splat(0.17087277f);
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    vf g = vexp(-z * z);                    /* e^(-x^2 / 2) */
    vf erfc = t * g * vexp(p);              /* erfc(|x| / sqrt 2) */
    vf phi_tail = 0.5f * erfc;              /* Phi(-|x|) */
    vf Phi = vsel(x < 0.0f, phi_tail, 1.0f - phi_tail);
    *y = x * Phi;
    *d = Phi + x * g * 0.39894228040143268f; /* phi(x) = e^(-x^2/2) / sqrt(2 pi) */
}

INLINE void softplus_yd(vf x, vf *y, vf *d) {
    vf e = vexp(vmin(x, splat(20.0f)));
    vf v = 1.0f + e;
    /* log1p(e) = log(v) e / (v - 1): exact where 1 + e rounds (tiny e), else the plain log */
    vf vm1 = v - 1.0f;
    vf l = vlog_ge1(v);
    vf lp = vsel(vm1 == 0.0f, e, l * e * vrecip(vsel(vm1 == 0.0f, splat(1.0f), vm1)));
    vi big = x > 20.0f;
    *y = vsel(big, x, lp);
    *d = vsel(big, splat(1.0f), e * vrecip(v));
}

INLINE void tanh_yd(vf x, vf *y, vf *d) {
    vf em = expm1_neg(-2.0f * vabs(x)); /* e^(-2|x|) - 1, in (-1, 0] */
    vf th = -em * vrecip(em + 2.0f);   /* tanh |x| */
    *y = copysign_(th, x);
    *d = 1.0f - th * th;
}

INLINE void sigmoid_yd(vf x, vf *y, vf *d) {
    vf s = vrecip(1.0f + vexp(-x));
    *y = s;
    *d = s * (1.0f - s);
}

#endif
