/* Vectorised CPU kernels of the fixed activations ELU, Swish, GELU, softplus and tanh for float32 and
 * bfloat16 tensors (thesis eqs. 2.15, 2.18, 2.19; GELU and softplus as PyTorch defines them).
 *
 * PyTorch's CPU kernels for these widen bfloat16 to float32 element by element around a libm call (or
 * recompute the function in backward); here each 16-element vector is widened once, evaluated with the
 * float32 exp of _simd.h, and rounded back once. The tensors are dense in memory (any memory format), so
 * the kernels see a flat array of n elements.
 *
 * Two entry points per function:
 *   NAME_forward(x, y)        y = f(x)                       (inference, no graph)
 *   NAME_forward_d(x, y, d)   y = f(x) and d = f'(x)         (training and attacks)
 * The derivative costs a few operations more in the forward, where the exponentials are already at
 * hand; autograd then saves d instead of x (same memory) and backward is one multiplication, gy * d,
 * as cheap as ReLU's. In bfloat16, d is rounded like y (relative 2^-9), which is below the rounding of
 * the bfloat16 gradient it multiplies.
 *
 *   ELU:      y = x (x > 0),  a (e^x - 1) otherwise;       f' = 1, resp. a e^x
 *   Swish:    y = x s(x), s = 1 / (1 + e^-x);              f' = s (1 + x (1 - s))
 *   GELU:     y = x Phi(x) (exact, erf form);              f' = Phi(x) + x phi(x)
 *   softplus: y = log(1 + e^x), y = x above 20 (PyTorch's threshold);   f' = s(x), resp. 1
 *   tanh:     y = tanh(x);                                 f' = 1 - y^2
 * e^x - 1 uses its Taylor series for |x| < 1/2 (no cancellation near 0); erfc is Numerical Recipes'
 * Chebyshev fit (fractional error below 1.2e-7 everywhere). NaN propagates to y and d.
 */
#include "_simd.h"

#define CHUNK 4096 /* elements per parallel work item */

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

/* ------------------------------------------------------------------ loops */
/* Runs the body (the variadic argument) for every vector (offset o, nv valid lanes) of n elements, chunks spread over threads. */
#define FOR_VECTORS(n, nthreads, ...)                                                           \
    do {                                                                                         \
        const int64_t items = ((n) + CHUNK - 1) / CHUNK;                                         \
        _Pragma("omp parallel num_threads(nthreads)")                                            \
        {                                                                                        \
            struct fpmode fp = ftz_on();                                                         \
            _Pragma("omp for schedule(static)")                                                  \
            for (int64_t it = 0; it < items; ++it) {                                             \
                int64_t e = (it + 1) * CHUNK < (n) ? (it + 1) * CHUNK : (n);                     \
                for (int64_t o = it * CHUNK; o < e; o += VL) {                                   \
                    int nv = (int)(e - o < VL ? e - o : VL);                                     \
                    __VA_ARGS__                                                                  \
                }                                                                                \
            }                                                                                    \
            ftz_restore(fp);                                                                     \
        }                                                                                        \
    } while (0)

/* YD(v, &yv, &dv) evaluates both; NaN inputs give NaN outputs */
#define POINTWISE(NAME, YD)                                                                      \
void NAME##_forward(const void *x, void *y, int bf16, int64_t n, float a, int nthreads) {         \
    (void)a;                                                                                     \
    FOR_VECTORS(n, nthreads, {                                                                   \
        vf v = load_any(x, o, nv, bf16), yv, dv;                                                 \
        YD;                                                                                      \
        (void)dv;                                                                                \
        store_any(y, o, vsel(visnan(v), v, yv), nv, bf16);                                       \
    });                                                                                          \
}                                                                                                \
void NAME##_forward_d(const void *x, void *y, void *d, int bf16, int64_t n, float a, int nthreads) { \
    (void)a;                                                                                     \
    FOR_VECTORS(n, nthreads, {                                                                   \
        vf v = load_any(x, o, nv, bf16), yv, dv;                                                 \
        YD;                                                                                      \
        vi nan = visnan(v);                                                                      \
        store_any(y, o, vsel(nan, v, yv), nv, bf16);                                             \
        store_any(d, o, vsel(nan, v, dv), nv, bf16);                                             \
    });                                                                                          \
}

POINTWISE(elu, elu_yd(v, a, &yv, &dv))
POINTWISE(swish, swish_yd(v, &yv, &dv))
POINTWISE(gelu, gelu_yd(v, &yv, &dv))
POINTWISE(softplus, softplus_yd(v, &yv, &dv))
POINTWISE(tanh, tanh_yd(v, &yv, &dv))
