/* Vectorised CPU kernels of ELU and Swish for float32 and bfloat16 tensors (thesis eqs. 2.18, 2.19).
 *
 * PyTorch's CPU kernels for these two widen bfloat16 to float32 element by element around a libm
 * call; here each 16-element vector is widened once, evaluated with the float32 exp of _simd.h,
 * and rounded back once. The tensors are dense in memory (any memory format), so the kernels see a
 * flat array of n elements. Forward saves nothing extra: the backward recomputes exp from x.
 *
 *   ELU:    y = x (x > 0),  a (e^x - 1) otherwise;       dy/dx = 1, resp. a e^x
 *   Swish:  y = x s(x), s = 1 / (1 + e^-x);              dy/dx = s (1 + x (1 - s))
 * e^x - 1 uses its Taylor series for |x| < 1/2 (no cancellation near 0). NaN propagates.
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

INLINE vf elu_f(vf x, float a) {
    vf neg = a * expm1_neg(vmin(x, splat(0.0f)));
    return vsel(visnan(x) | (x > 0.0f), x, neg);
}
INLINE vf elu_d(vf x, float a) {
    return vsel(visnan(x), x, vsel(x > 0.0f, splat(1.0f), a * vexp(vmin(x, splat(0.0f)))));
}

INLINE vf sigm(vf x) { return 1.0f / (1.0f + vexp(-x)); }
INLINE vf swish_f(vf x) { return vsel(visnan(x), x, x * sigm(x)); }
INLINE vf swish_d(vf x) {
    vf s = sigm(x);
    return vsel(visnan(x), x, s * (1.0f + x * (1.0f - s)));
}

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

#define POINTWISE(NAME, FWD, DER)                                                                 \
void NAME##_forward(const void *x, void *y, int bf16, int64_t n, float a, int nthreads) {         \
    (void)a;                                                                                     \
    FOR_VECTORS(n, nthreads, { vf v = load_any(x, o, nv, bf16); store_any(y, o, FWD, nv, bf16); });  \
}                                                                                                \
void NAME##_backward(const void *x, const void *gy, void *gx, int bf16, int64_t n, float a,      \
                     int nthreads) {                                                             \
    (void)a;                                                                                     \
    FOR_VECTORS(n, nthreads, {                                                                   \
        vf v = load_any(x, o, nv, bf16), g = load_any(gy, o, nv, bf16);                          \
        store_any(gx, o, g * (DER), nv, bf16);                                                   \
    });                                                                                          \
}

POINTWISE(elu, elu_f(v, a), elu_d(v, a))
POINTWISE(swish, swish_f(v), swish_d(v))
