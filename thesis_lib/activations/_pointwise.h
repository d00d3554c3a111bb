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
    vf g = vexp(-z * z);                                        /* e^(-x^2 / 2) */
    /* erfcx(z) = e^(z^2) erfc(z) as a degree-9 polynomial in t = 1 / (1 + z / 2) */
    vf t = vrecip(1.0f + 0.5f * z);
    vf p = splat(-0.054887287f);
    p = p * t + 0.26303989f;
    p = p * t - 0.43952098f;
    p = p * t + 0.21869108f;
    p = p * t + 0.019055640f;
    p = p * t + 0.18024787f;
    p = p * t + 0.25011751f;
    p = p * t + 0.28103411f;
    p = p * t + 0.28222847f;
    p = p * t - 6.3426137e-06f;
    vf phi_tail = 0.5f * g * p;             /* Phi(-|x|) = erfc(|x| / sqrt 2) / 2 */
    vf Phi = vsel(x < 0.0f, phi_tail, 1.0f - phi_tail);
    *y = x * Phi;
    *d = Phi + x * g * 0.39894228040143268f; /* phi(x) = e^(-x^2/2) / sqrt(2 pi) */
}

INLINE void softplus_yd(vf x, vf *y, vf *d) {
    vf u = vexp(-vabs(x));                   /* e^-|x|, in (0, 1] */
    vf r = vrecip(1.0f + u);
    /* log1p(u) = 2 atanh(s), s = u / (2 + u) <= 1/3: the series to s^13 (next term below 2e-8 relative) */
    vf s = u * vrecip(2.0f + u), s2 = s * s;
    vf p = splat(1.0f / 13.0f);
    p = p * s2 + 1.0f / 11.0f;
    p = p * s2 + 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    vi big = x > 20.0f, neg = x < 0.0f;
    /* log(1 + e^x) = max(x, 0) + log1p(e^-|x|) */
    *y = vsel(big, x, vsel(neg, (vf){0}, x) + 2.0f * s * p);
    *d = vsel(big, splat(1.0f), vsel(neg, u * r, r)); /* sigmoid(x) */
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
