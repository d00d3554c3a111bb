/* Fused float64 CPU kernels of the Gaussian KAF (thesis eq. in section 2.4; Scardapane et al. 2019).
 * Float32 and bfloat16 tensors use the vector kernels of _kaf_simd.c; these plain loops with libm's
 * exp serve double precision (gradcheck, reference computations).
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
        T kd[64];                                                                                    \
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
        }                                                                                         \
    }                                                                                             \
}

DEFINE_KAF(double, f64, exp)


/* ---------------------------------------------------------------------------------------------
 * Fast path for an evenly spaced dictionary d_i = d_m + (i - m) h (every fixed-dictionary KAF):
 * with t = s - d_m the kernel values obey
 *     k_{i+1} = k_i * R * u_i,  R = exp(2 gamma h t),  u_i = exp(-gamma h^2 (2(i-m) + 1))
 *     k_{i-1} = k_i / R * v_i,  v_i = exp(-gamma h^2 (2(m-i) + 1))
 * so the D kernel values of an element cost 3 exponentials and D multiplications instead of D
 * exponentials. Starting from the centre m keeps every intermediate a true kernel value (<= 1).
 * t is clamped to +-T, beyond which every kernel value is exactly 0 in float64 (and float32), so
 * R stays finite; NaN inputs give NaN outputs (checked on the bits: -ffast-math may drop s != s).
 * Elements are processed in blocks of BLK so that every inner loop is a plain vectorisable loop.
 * ------------------------------------------------------------------------------------------- */
#define BLK 256
#define DEFINE_KAF_FAST(T, SUF, EXP, UINT, EXPMASK)                                               \
static inline int isnan_bits_##SUF(T v) { UINT b; memcpy(&b, &v, sizeof b);                      \
    return (b & EXPMASK) == EXPMASK && (b & ~EXPMASK & ~((UINT)1 << (sizeof(UINT) * 8 - 1))) != 0; } \
static void kaf_row_coeffs_##SUF(const T *d, T g, int64_t D, int64_t m, T *u, T *v, T *h_out,      \
                                 T *tmax_out) {                                                   \
    const T h = (d[D - 1] - d[0]) / (T)(D - 1);                                                   \
    for (int64_t i = 0; i < D; ++i) {                                                             \
        u[i] = EXP(-g * h * h * (T)(2 * (i - m) + 1));                                            \
        v[i] = EXP(-g * h * h * (T)(2 * (m - i) + 1));                                            \
    }                                                                                             \
    *h_out = h;                                                                                   \
    T half = (T)(m > D - 1 - m ? m : D - 1 - m) * h;                                              \
    *tmax_out = half + (T)sqrt(760.0 / (double)g);                                                \
}                                                                                                 \
void kaf_forward_fast_##SUF(const T *x, T *y, const T *alpha, const T *dict, const T *gamma,     \
                            int64_t outer, int64_t C, int64_t inner, int64_t D, int nthreads) {   \
    int64_t rows = outer * C, m = (D - 1) / 2;                                                    \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                            \
    for (int64_t r = 0; r < rows; ++r) {                                                          \
        int64_t c = r % C;                                                                        \
        const T *a = alpha + c * D, *d = dict + c * D;                                            \
        const T g = gamma[c], dm = d[m];                                                          \
        T u[64], v[64], h, tmax;                                                                  \
        kaf_row_coeffs_##SUF(d, g, D, m, u, v, &h, &tmax);                                        \
        const T *xr = x + r * inner;                                                              \
        T *yr = y + r * inner;                                                                    \
        T k0[BLK], R[BLK], Ri[BLK], ku[BLK], kd[BLK], acc[BLK];                                   \
        for (int64_t j0 = 0; j0 < inner; j0 += BLK) {                                             \
            const int64_t n = inner - j0 < BLK ? inner - j0 : BLK;                                \
            for (int64_t j = 0; j < n; ++j) {                                                     \
                T t = xr[j0 + j] - dm;                                                            \
                t = t > tmax ? tmax : (t < -tmax ? -tmax : t);                                    \
                k0[j] = EXP(-g * t * t);                                                          \
                R[j] = EXP(2 * g * h * t);                                                        \
                Ri[j] = EXP(-2 * g * h * t);                                                      \
                acc[j] = a[m] * k0[j]; ku[j] = k0[j]; kd[j] = k0[j];                              \
            }                                                                                     \
            for (int64_t i = m; i < D - 1; ++i) {                                                 \
                const T ui = u[i], ai = a[i + 1];                                                 \
                for (int64_t j = 0; j < n; ++j) { ku[j] *= R[j] * ui; acc[j] += ai * ku[j]; }     \
            }                                                                                     \
            for (int64_t i = m; i > 0; --i) {                                                     \
                const T vi = v[i], ai = a[i - 1];                                                 \
                for (int64_t j = 0; j < n; ++j) { kd[j] *= Ri[j] * vi; acc[j] += ai * kd[j]; }    \
            }                                                                                     \
            for (int64_t j = 0; j < n; ++j)                                                       \
                yr[j0 + j] = isnan_bits_##SUF(xr[j0 + j]) ? xr[j0 + j] : acc[j];                  \
        }                                                                                         \
    }                                                                                             \
}                                                                                                 \
void kaf_backward_fast_##SUF(const T *x, const T *gy, const T *alpha, const T *dict,             \
                             const T *gamma, T *gx, double *part_alpha, int64_t outer, int64_t C, \
                             int64_t inner, int64_t D, int64_t nchunks, int nthreads) {           \
    int64_t rows = outer * C, m = (D - 1) / 2;                                                    \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                            \
    for (int64_t kc = 0; kc < nchunks; ++kc) {                                                    \
        int64_t r0 = rows * kc / nchunks, r1 = rows * (kc + 1) / nchunks;                         \
        double *pa = part_alpha + kc * C * D;                                                     \
        T k0[BLK], R[BLK], Ri[BLK], ku[BLK], kd[BLK], tt[BLK], go[BLK], dfx[BLK];                 \
        for (int64_t r = r0; r < r1; ++r) {                                                       \
            int64_t c = r % C;                                                                    \
            const T *a = alpha + c * D, *d = dict + c * D;                                        \
            const T g = gamma[c], dm = d[m];                                                      \
            T u[64], v[64], h, tmax, sa[64];                                                      \
            kaf_row_coeffs_##SUF(d, g, D, m, u, v, &h, &tmax);                                    \
            for (int64_t i = 0; i < D; ++i) sa[i] = 0;                                            \
            const T *xr = x + r * inner, *gyr = gy + r * inner;                                   \
            for (int64_t j0 = 0; j0 < inner; j0 += BLK) {                                         \
                const int64_t n = inner - j0 < BLK ? inner - j0 : BLK;                            \
                T s0 = 0;                                                                         \
                for (int64_t j = 0; j < n; ++j) {                                                 \
                    T t = xr[j0 + j] - dm;                                                        \
                    t = t > tmax ? tmax : (t < -tmax ? -tmax : t);                                \
                    tt[j] = t; go[j] = gyr[j0 + j];                                               \
                    k0[j] = EXP(-g * t * t);                                                      \
                    R[j] = EXP(2 * g * h * t);                                                    \
                    Ri[j] = EXP(-2 * g * h * t);                                                  \
                    ku[j] = k0[j]; kd[j] = k0[j];                                                 \
                    dfx[j] = a[m] * k0[j] * t;                                                    \
                    s0 += go[j] * k0[j];                                                          \
                }                                                                                 \
                sa[m] += s0;                                                                      \
                for (int64_t i = m; i < D - 1; ++i) {                                             \
                    const T ui = u[i], ai = a[i + 1], off = (T)(i + 1 - m) * h;                   \
                    T si = 0;                                                                     \
                    for (int64_t j = 0; j < n; ++j) {                                             \
                        ku[j] *= R[j] * ui;                                                       \
                        si += go[j] * ku[j];                                                      \
                        dfx[j] += ai * ku[j] * (tt[j] - off);                                     \
                    }                                                                             \
                    sa[i + 1] += si;                                                              \
                }                                                                                 \
                for (int64_t i = m; i > 0; --i) {                                                 \
                    const T vi = v[i], ai = a[i - 1], off = (T)(i - 1 - m) * h;                   \
                    T si = 0;                                                                     \
                    for (int64_t j = 0; j < n; ++j) {                                             \
                        kd[j] *= Ri[j] * vi;                                                      \
                        si += go[j] * kd[j];                                                      \
                        dfx[j] += ai * kd[j] * (tt[j] - off);                                     \
                    }                                                                             \
                    sa[i - 1] += si;                                                              \
                }                                                                                 \
                if (gx) {                                                                         \
                    T *gxr = gx + r * inner + j0;                                                 \
                    for (int64_t j = 0; j < n; ++j)                                               \
                        gxr[j] = isnan_bits_##SUF(xr[j0 + j]) ? xr[j0 + j] : -2 * g * go[j] * dfx[j]; \
                }                                                                                 \
            }                                                                                     \
            for (int64_t i = 0; i < D; ++i) pa[c * D + i] += (double)sa[i];                       \
        }                                                                                         \
    }                                                                                             \
}

DEFINE_KAF_FAST(double, f64, exp, uint64_t, 0x7ff0000000000000ull)

int kaf_max_dictionary(void) { return 64; }
