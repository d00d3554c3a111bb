/* Training-mode BatchNorm of channels_last (N, H, W, C) float32 / bfloat16 tensors on CPU (Ioffe and
 * Szegedy 2015; every convolution of the thesis's networks is followed by one, sections 5.1-5.3):
 *
 *   y = (x - mean_c) / sqrt(var_c + eps) * w_c + b_c,   mean_c, var_c over the N H W pixels.
 *
 * Each step is one vector pass over the tensor, 16 channels per vector (_simd.h), arithmetic in
 * float32 whatever the storage type:
 *   forward:  statistics (read x), then y = x * scale_c + shift_c (read x, write y);
 *   backward: sum gy and sum gy (x - mean) (read x, gy), then dL/dx (read x, gy, write gx).
 * The statistics are sums of x - K_c with K_c the channel's first value (the "shifted data" method:
 * no cancellation when the mean is large next to the spread), summed in float32 over FLUSH pixels and
 * then in double, per work chunk; the chunks' partials are added in a fixed order, so the results do
 * not depend on the number of threads.
 */
#include "_simd.h"

#define FLUSH 64     /* pixels summed in float32 before the double partials take them */
#define MAXCB 64     /* channel blocks of 16: up to 1,024 channels */

/* Per chunk k: p1[k, c] += sum (a_c - K_c) v, p2[k, c] += sum (a_c - K_c)^2 v ... in one of two modes:
 *   stats:  a = x, v = 1       -> p1 = sum (x - K), p2 = sum (x - K)^2
 *   grads:  a = x, v = gy      -> p1 = sum gy, p2 = sum gy (x - K)   (K = the mean) */
static void chunk_sums(const void *x, const void *gy, int bf16, int64_t p0, int64_t p1, int64_t C, const float *K,
                       double *s1, double *s2) {
    const int64_t CB = (C + VL - 1) / VL;
    vf a1[MAXCB], a2[MAXCB], kv[MAXCB];
    for (int64_t b = 0; b < CB; ++b) {
        kv[b] = load_f32(K + b * VL, (int)(C - b * VL < VL ? C - b * VL : VL));
        a1[b] = a2[b] = (vf){0};
    }
    for (int64_t p = p0; p < p1; ++p) {
        for (int64_t b = 0; b < CB; ++b) {
            int nv = (int)(C - b * VL < VL ? C - b * VL : VL);
            vf d = load_any(x, p * C + b * VL, nv, bf16) - kv[b];
            if (gy) {
                vf g = load_any(gy, p * C + b * VL, nv, bf16);
                a1[b] += g;
                a2[b] += g * d;
            } else {
                a1[b] += d;
                a2[b] += d * d;
            }
        }
        if ((p - p0) % FLUSH == FLUSH - 1 || p == p1 - 1) {
            for (int64_t b = 0; b < CB; ++b) {
                int nv = (int)(C - b * VL < VL ? C - b * VL : VL);
                for (int l = 0; l < nv; ++l) {
                    s1[b * VL + l] += a1[b][l];
                    s2[b * VL + l] += a2[b][l];
                }
                a1[b] = a2[b] = (vf){0};
            }
        }
    }
}

/* sums over all pixels (p1, p2 of C doubles each) by nchunks chunks added in order */
static int reduce(const void *x, const void *gy, int bf16, int64_t P, int64_t C, const float *K, int64_t nchunks,
                  int nthreads, double *t1, double *t2) {
    double *part = calloc((size_t)(2 * nchunks * C), sizeof(double));
    if (!part) return -1;
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t k = 0; k < nchunks; ++k) {
        struct fpmode fp = ftz_on();
        chunk_sums(x, gy, bf16, P * k / nchunks, P * (k + 1) / nchunks, C, K, part + 2 * k * C, part + (2 * k + 1) * C);
        ftz_restore(fp);
    }
    for (int64_t c = 0; c < C; ++c) t1[c] = t2[c] = 0.0;
    for (int64_t k = 0; k < nchunks; ++k)
        for (int64_t c = 0; c < C; ++c) {
            t1[c] += part[2 * k * C + c];
            t2[c] += part[(2 * k + 1) * C + c];
        }
    free(part);
    return 0;
}

/* out = a * ka_c + (x - K_c) * kx_c + k0_c over every pixel (a = x itself when NULL) */
static void affine_pass(const void *x, const void *a, void *out, int bf16, int64_t P, int64_t C, const float *K,
                        const float *ka, const float *kx, const float *k0, int nthreads) {
    const int64_t CB = (C + VL - 1) / VL;
    #pragma omp parallel num_threads(nthreads)
    {
        struct fpmode fp = ftz_on();
        vf kv[MAXCB], av[MAXCB], xv[MAXCB], cv[MAXCB];
        for (int64_t b = 0; b < CB; ++b) {
            int nv = (int)(C - b * VL < VL ? C - b * VL : VL);
            kv[b] = load_f32(K + b * VL, nv);
            av[b] = a ? load_f32(ka + b * VL, nv) : (vf){0};
            xv[b] = load_f32(kx + b * VL, nv);
            cv[b] = load_f32(k0 + b * VL, nv);
        }
        #pragma omp for schedule(static)
        for (int64_t p = 0; p < P; ++p)
            for (int64_t b = 0; b < CB; ++b) {
                int nv = (int)(C - b * VL < VL ? C - b * VL : VL);
                vf d = load_any(x, p * C + b * VL, nv, bf16) - kv[b];
                vf o = d * xv[b] + cv[b];
                if (a) o += load_any(a, p * C + b * VL, nv, bf16) * av[b];
                store_any(out, p * C + b * VL, o, nv, bf16);
            }
        ftz_restore(fp);
    }
}

/* ------------------------------------------------------------------ entry points (ctypes) */
/* dtype: 0 float32, 1 bfloat16 (x, y); w, b float32 (C). Writes the batch mean, the biased variance
 * and 1 / sqrt(var + eps) (C floats each). Returns 0, or -1 if out of memory or C > 1,024. */
int bn_forward(const void *x, void *y, int dtype, int64_t P, int64_t C, const float *w, const float *b, float eps,
               float *mean, float *var, float *invstd, int64_t nchunks, int nthreads) {
    if (C > MAXCB * VL || P < 1) return -1;
    const int bf16 = dtype == 1;
    float *K = malloc((size_t)(4 * C) * sizeof(float)), *kx = K + C, *k0 = K + 2 * C;
    double *t = malloc((size_t)(2 * C) * sizeof(double));
    if (!K || !t) { free(K); free(t); return -1; }
    for (int64_t c = 0; c < C; ++c) {  /* the shift: the channel's first value */
        vf v = load_any(x, c, 1, bf16);
        K[c] = v[0] == v[0] ? v[0] : 0.0f;
    }
    if (reduce(x, NULL, bf16, P, C, K, nchunks, nthreads, t, t + C)) { free(K); free(t); return -1; }
    for (int64_t c = 0; c < C; ++c) {
        double m1 = t[c] / (double)P, v = t[C + c] / (double)P - m1 * m1;
        if (v < 0) v = 0;
        double is = 1.0 / sqrt(v + (double)eps);
        mean[c] = (float)(K[c] + m1);
        var[c] = (float)v;
        invstd[c] = (float)is;
        /* y = (x - K) * w is + (b + (K - mean) w is): the shifted input keeps the small difference exact */
        kx[c] = (float)(w[c] * is);
        k0[c] = (float)(b[c] - m1 * w[c] * is);
    }
    affine_pass(x, NULL, y, bf16, P, C, K, NULL, kx, k0, nthreads);
    free(K); free(t);
    return 0;
}

/* gy, gx in x's dtype; gw, gb float32 (C). dL/dx = w is (gy - mean(gy) - (x - mean) is^2 mean(gy (x - mean))). */
int bn_backward(const void *x, const void *gy, void *gx, int dtype, int64_t P, int64_t C, const float *w,
                const float *mean, const float *invstd, float *gw, float *gb, int64_t nchunks, int nthreads) {
    if (C > MAXCB * VL || P < 1) return -1;
    const int bf16 = dtype == 1;
    float *ka = malloc((size_t)(3 * C) * sizeof(float)), *kx = ka + C, *k0 = ka + 2 * C;
    double *t = malloc((size_t)(2 * C) * sizeof(double));
    if (!ka || !t) { free(ka); free(t); return -1; }
    if (reduce(x, gy, bf16, P, C, mean, nchunks, nthreads, t, t + C)) { free(ka); free(t); return -1; }
    for (int64_t c = 0; c < C; ++c) {
        double is = invstd[c], sg = t[c], sgx = t[C + c];
        gb[c] = (float)sg;
        gw[c] = (float)(sgx * is);
        ka[c] = (float)(w[c] * is);
        kx[c] = (float)(-w[c] * is * is * is * sgx / (double)P);
        k0[c] = (float)(-w[c] * is * sg / (double)P);
    }
    if (gx) affine_pass(x, gy, gx, bf16, P, C, mean, ka, kx, k0, nthreads);
    free(ka); free(t);
    return 0;
}
