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
 * e^x - 1 uses its Taylor series for |x| < 1/2 (no cancellation near 0). GELU needs one exponential,
 * e^(-x^2/2), shared by Phi and phi: erfc(z) = e^(-z^2) erfcx(z), with erfcx a degree-9 polynomial in
 * t = 1 / (1 + z/2), fitted to scipy's erfcx on z in [0, 14/sqrt 2] by iteratively reweighted least
 * squares (relative error 3e-8 in exact arithmetic, 3e-7 evaluated in float32). softplus is
 * max(x, 0) + log1p(e^-|x|), the log1p from its atanh series, and its f' shares 1 / (1 + e^-|x|).
 * NaN propagates to y and d.
 */
#include "_pointwise.h"

#define CHUNK 4096 /* elements per parallel work item */

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
