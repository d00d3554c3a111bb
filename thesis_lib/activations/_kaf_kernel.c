/* Fused CPU kernels of the Gaussian KAF (thesis eq. in section 2.4; Scardapane et al. 2019).
 *
 *   f_c(s) = sum_i alpha[c,i] * exp(-gamma[c] * (s - d[c,i])^2)
 *
 * The input is viewed as (outer, C, inner), contiguous: NCHW gives (N, C, H*W), NHWC and dense
 * N x C give (N*H*W or N, C, 1). Nothing of size N*C*H*W*D is ever stored: the forward writes y, the
 * backward recomputes the D kernel values of each element on the fly and writes dL/dx, while
 * dL/dalpha (and, for the free KAF, dL/dd and dL/dgamma) are accumulated in double precision into
 * one partial buffer per work chunk. The chunking depends only on the problem size, never on the
 * number of threads, and the partials are summed in a fixed order by the caller, so results are
 * bitwise reproducible whatever OMP_NUM_THREADS is.
 *
 * Built on first use by thesis_lib/activations/_kaf_native.py with the system C compiler
 * (-O3 -ffast-math so that the exp() in the D-loop is vectorised).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define DEFINE_KAF(T, SUF, EXP)                                                                   \
void kaf_forward_##SUF(const T *x, T *y, const T *alpha, const T *dict, const T *gamma,          \
                       int64_t outer, int64_t C, int64_t inner, int64_t D, int nthreads) {        \
    int64_t rows = outer * C;                                                                     \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                            \
    for (int64_t r = 0; r < rows; ++r) {                                                          \
        int64_t c = r % C;                                                                        \
        const T *a = alpha + c * D, *d = dict + c * D;                                            \
        const T g = gamma[c];                                                                     \
        const T *xr = x + r * inner;                                                              \
        T *yr = y + r * inner;                                                                    \
        for (int64_t j = 0; j < inner; ++j) {                                                     \
            const T s = xr[j];                                                                    \
            T acc = 0;                                                                            \
            for (int64_t i = 0; i < D; ++i) {                                                     \
                const T t = s - d[i];                                                             \
                acc += a[i] * EXP(-g * t * t);                                                    \
            }                                                                                     \
            yr[j] = acc;                                                                          \
        }                                                                                         \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* part_* have shape (nchunks, C, D) (part_gamma: (nchunks, C)) and must be zeroed by the caller; */ \
/* part_dict / part_gamma may be NULL when the dictionary and bandwidth are fixed. gx may be NULL. */ \
void kaf_backward_##SUF(const T *x, const T *gy, const T *alpha, const T *dict, const T *gamma,    \
                        T *gx, double *part_alpha, double *part_dict, double *part_gamma,         \
                        int64_t outer, int64_t C, int64_t inner, int64_t D, int64_t nchunks,       \
                        int nthreads) {                                                           \
    int64_t rows = outer * C;                                                                     \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                            \
    for (int64_t k = 0; k < nchunks; ++k) {                                                       \
        int64_t r0 = rows * k / nchunks, r1 = rows * (k + 1) / nchunks;                           \
        double *pa = part_alpha + k * C * D;                                                      \
        double *pd = part_dict ? part_dict + k * C * D : 0;                                       \
        double *pg = part_gamma ? part_gamma + k * C : 0;                                         \
        T ka[64], kd[64];                                                                         \
        for (int64_t r = r0; r < r1; ++r) {                                                       \
            int64_t c = r % C;                                                                    \
            const T *a = alpha + c * D, *d = dict + c * D;                                        \
            const T g = gamma[c];                                                                 \
            const T *xr = x + r * inner, *gyr = gy + r * inner;                                   \
            /* accumulate this row's contributions in T, flush to the double partial per row */  \
            T sa[64], sd[64];                                                                     \
            T sg = 0;                                                                             \
            for (int64_t i = 0; i < D; ++i) { sa[i] = 0; sd[i] = 0; }                             \
            for (int64_t j = 0; j < inner; ++j) {                                                 \
                const T s = xr[j], go = gyr[j];                                                   \
                T dfx = 0, dfg = 0;                                                               \
                for (int64_t i = 0; i < D; ++i) {                                                 \
                    const T t = s - d[i];                                                         \
                    const T e = EXP(-g * t * t);                                                  \
                    const T ae = a[i] * e;                                                        \
                    sa[i] += go * e;                /* dL/dalpha_i = g * k_i              */       \
                    kd[i] = ae * t;                                                               \
                    dfx += kd[i];                   /* df/ds = -2 gamma sum alpha_i k_i t_i */     \
                    dfg += kd[i] * t;               /* df/dgamma = -sum alpha_i k_i t_i^2   */     \
                    sd[i] += go * kd[i];            /* dL/dd_i = 2 gamma g alpha_i k_i t_i  */     \
                }                                                                                 \
                if (gx) gx[r * inner + j] = go * (-2 * g * dfx);                                  \
                sg += go * dfg;                                                                   \
            }                                                                                     \
            for (int64_t i = 0; i < D; ++i) pa[c * D + i] += (double)sa[i];                       \
            if (pd) for (int64_t i = 0; i < D; ++i) pd[c * D + i] += 2.0 * (double)g * (double)sd[i]; \
            if (pg) pg[c] += -(double)sg;                                                         \
            (void)ka;                                                                             \
        }                                                                                         \
    }                                                                                             \
}

DEFINE_KAF(float, f32, expf)
DEFINE_KAF(double, f64, exp)

int kaf_max_dictionary(void) { return 64; }
