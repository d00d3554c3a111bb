/* Training-mode BatchNorm of channels_last (N, H, W, C) float32 / bfloat16 tensors on CPU (Ioffe and
 * Szegedy 2015; every convolution of the thesis's networks is followed by one, sections 5.1-5.3),
 * optionally fused with the element-wise activation that follows it:
 *
 *   z = (x - mean_c) / sqrt(var_c + eps) * w_c + b_c,   y = f(z),   mean_c, var_c over the N H W pixels.
 *
 * Each step is one vector pass over the tensor, 16 channels per vector (_simd.h), arithmetic in
 * float32 whatever the storage type:
 *   forward:  statistics (read x), then y = f(x * scale_c + shift_c) (read x, write y, and f'(z) where
 *             f needs it);
 *   backward: dL/dz = gy f'(z), then sum dL/dz and sum dL/dz (x - mean) (read x, gy), then dL/dx
 *             (read x, gy, write gx). After a fused KAF, whose backward kernel writes dL/dz, that kernel
 *             takes the two sums as it goes, and the pass that would read them is skipped.
 * ReLU and leaky ReLU read their derivative off the sign of z, recomputed from x, so nothing more is
 * stored; the other activations (_pointwise.h) keep f'(z) in the forward. Fused, z never goes through
 * memory: five passes fewer than BatchNorm then ReLU, and z is not rounded to bfloat16 before f.
 * The statistics are sums of x - K_c with K_c the channel's first value (the "shifted data" method:
 * no cancellation when the mean is large next to the spread), summed in float32 over FLUSH_PIXELS and
 * then in double, per work chunk; the chunks' partials are added in a fixed order, so the results do
 * not depend on the number of threads.
 */
#include "_pointwise.h"

#define MAXCB 64     /* channel blocks of 16: up to 1,024 channels */

/* the activation after the BatchNorm (the codes of thesis_lib/models/batchnorm.py); ACT_GIVEN_D, backward
 * only: dL/dz = gy d with d the derivative another kernel kept (a KAF with frozen parameters) */
enum { ACT_NONE, ACT_RELU, ACT_LEAKY_RELU, ACT_ELU, ACT_SWISH, ACT_GELU, ACT_SOFTPLUS, ACT_TANH, ACT_SIGMOID, ACT_GIVEN_D };

#define NBLOCK(C, b) ((int)((C) - (b) * VL < VL ? (C) - (b) * VL : VL))

/* per-channel coefficients (C floats) as lane vectors, one per block of 16 channels */
INLINE void channel_vectors(const float *src, int64_t C, vf *out) {
    for (int64_t b = 0; b * VL < C; ++b) out[b] = load_f32(src + b * VL, NBLOCK(C, b));
}

/* y = f(z) and, for the activations that keep it, d = f'(z); NaN stays NaN */
INLINE vf act_yd(int act, float a, vf z, vf *d) {
    vf y;
    switch (act) {
    case ACT_RELU: return vsel((z > 0.0f) | visnan(z), z, (vf){0});
    case ACT_LEAKY_RELU: return vsel(z > 0.0f, z, a * z);
    case ACT_ELU: elu_yd(z, a, &y, d); break;
    case ACT_SWISH: swish_yd(z, &y, d); break;
    case ACT_GELU: gelu_yd(z, &y, d); break;
    case ACT_SOFTPLUS: softplus_yd(z, &y, d); break;
    case ACT_TANH: tanh_yd(z, &y, d); break;
    case ACT_SIGMOID: sigmoid_yd(z, &y, d); break;
    default: return z;
    }
    vi nan = visnan(z);
    *d = vsel(nan, z, *d);
    return vsel(nan, z, y);
}

INLINE int keeps_d(int act) { return act >= ACT_ELU; }

/* Context of the backward passes: dL/dz of one vector of pixel p, channel block b. */
struct gz_ctx {
    const void *gy, *d;
    int act, bf16;
    float a;
    vf zs[MAXCB], zb[MAXCB]; /* z = (x - mean) zs + zb, for ReLU and leaky ReLU */
};

INLINE vf grad_z(const struct gz_ctx *g, int64_t off, int nv, int64_t b, vf xc) {
    vf gy = load_any(g->gy, off, nv, g->bf16);
    if (g->act == ACT_RELU || g->act == ACT_LEAKY_RELU) {
        vf z = xc * g->zs[b] + g->zb[b];
        /* PyTorch's rules: ReLU passes gy unless its output is <= 0; leaky ReLU scales gy unless z > 0 */
        if (g->act == ACT_RELU) return vsel(z <= 0.0f, (vf){0}, gy);
        return vsel(z > 0.0f, gy, g->a * gy);
    }
    if (keeps_d(g->act)) return gy * load_any(g->d, off, nv, g->bf16);
    return gy;
}

/* Per chunk of pixels [p0, p1), per channel, into the double sums s1, s2:
 *   stats (g NULL):  s1 = sum (x - K), s2 = sum (x - K)^2
 *   grads:           s1 = sum dL/dz,   s2 = sum dL/dz (x - K)   (K = the mean) */
static void chunk_sums(const void *x, const struct gz_ctx *g, int bf16, int64_t p0, int64_t p1, int64_t C,
                       const float *K, double *s1, double *s2) {
    const int64_t CB = (C + VL - 1) / VL;
    vf a1[MAXCB], a2[MAXCB], kv[MAXCB];
    channel_vectors(K, C, kv);
    for (int64_t b = 0; b < CB; ++b) a1[b] = a2[b] = (vf){0};
    for (int64_t p = p0; p < p1; ++p) {
        for (int64_t b = 0; b < CB; ++b) {
            int nv = NBLOCK(C, b);
            vf xc = load_any(x, p * C + b * VL, nv, bf16) - kv[b];
            if (g) {
                vf gz = grad_z(g, p * C + b * VL, nv, b, xc);
                a1[b] += gz;
                a2[b] += gz * xc;
            } else {
                a1[b] += xc;
                a2[b] += xc * xc;
            }
        }
        if ((p - p0) % FLUSH_PIXELS == FLUSH_PIXELS - 1 || p == p1 - 1) {
            for (int64_t b = 0; b < CB; ++b) {
                int nv = NBLOCK(C, b);
                for (int l = 0; l < nv; ++l) {
                    s1[b * VL + l] += a1[b][l];
                    s2[b * VL + l] += a2[b][l];
                }
                a1[b] = a2[b] = (vf){0};
            }
        }
    }
}

/* sums over all pixels (t1, t2: C doubles each) by nchunks chunks added in order */
static int reduce(const void *x, const struct gz_ctx *g, int bf16, int64_t P, int64_t C, const float *K,
                  int64_t nchunks, int nthreads, double *t1, double *t2) {
    double *part = calloc((size_t)(2 * nchunks * C), sizeof(double));
    if (!part) return -1;
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t k = 0; k < nchunks; ++k) {
        struct fpmode fp = ftz_on();
        chunk_sums(x, g, bf16, P * k / nchunks, P * (k + 1) / nchunks, C, K, part + 2 * k * C, part + (2 * k + 1) * C);
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

/* forward's second pass: y = f((x - K) kx + k0), and d = f'(z) where kept */
static void forward_pass(const void *x, void *y, void *d, int bf16, int64_t P, int64_t C, const float *K,
                         const float *kx, const float *k0, int act, float a, int nthreads) {
    const int64_t CB = (C + VL - 1) / VL;
    #pragma omp parallel num_threads(nthreads)
    {
        struct fpmode fp = ftz_on();
        vf kv[MAXCB], xv[MAXCB], cv[MAXCB];
        channel_vectors(K, C, kv);
        channel_vectors(kx, C, xv);
        channel_vectors(k0, C, cv);
        #pragma omp for schedule(static)
        for (int64_t p = 0; p < P; ++p)
            for (int64_t b = 0; b < CB; ++b) {
                int nv = NBLOCK(C, b);
                int64_t off = p * C + b * VL;
                vf dv = {0};
                vf z = (load_any(x, off, nv, bf16) - kv[b]) * xv[b] + cv[b];
                store_any(y, off, act_yd(act, a, z, &dv), nv, bf16);
                if (d) store_any(d, off, dv, nv, bf16);
            }
        ftz_restore(fp);
    }
}

/* backward's second pass: gx = dL/dz ka + (x - mean) kx + k0 */
static void input_grad_pass(const void *x, const struct gz_ctx *g, void *gx, int bf16, int64_t P, int64_t C,
                            const float *mean, const float *ka, const float *kx, const float *k0, int nthreads) {
    const int64_t CB = (C + VL - 1) / VL;
    #pragma omp parallel num_threads(nthreads)
    {
        struct fpmode fp = ftz_on();
        vf mv[MAXCB], av[MAXCB], xv[MAXCB], cv[MAXCB];
        channel_vectors(mean, C, mv);
        channel_vectors(ka, C, av);
        channel_vectors(kx, C, xv);
        channel_vectors(k0, C, cv);
        #pragma omp for schedule(static)
        for (int64_t p = 0; p < P; ++p)
            for (int64_t b = 0; b < CB; ++b) {
                int nv = NBLOCK(C, b);
                int64_t off = p * C + b * VL;
                vf xc = load_any(x, off, nv, bf16) - mv[b];
                store_any(gx, off, grad_z(g, off, nv, b, xc) * av[b] + xc * xv[b] + cv[b], nv, bf16);
            }
        ftz_restore(fp);
    }
}

/* ------------------------------------------------------------------ entry points (ctypes) */
/* dtype: 0 float32, 1 bfloat16 (x, y, d); w, b float32 (C); act, a: the activation and its parameter
 * (leaky ReLU's slope, ELU's alpha); d: where f'(z) goes for the activations that keep it (NULL: not
 * wanted); y NULL: the statistics only. Writes the batch mean, the biased variance and
 * 1 / sqrt(var + eps) (C floats each).
 * Returns 0, or -1 if out of memory or C > 1,024. */
int bn_forward(const void *x, void *y, void *d, int dtype, int64_t P, int64_t C, const float *w, const float *b,
               float eps, int act, float a, float *mean, float *var, float *invstd, int64_t nchunks, int nthreads) {
    if (C > MAXCB * VL || P < 1) return -1;
    const int bf16 = dtype == 1;
    float *K = malloc((size_t)(3 * C) * sizeof(float)), *kx = K + C, *k0 = K + 2 * C;
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
        /* z = (x - K) w is + (b - (mean - K) w is): the shifted input keeps the small difference exact */
        kx[c] = (float)(w[c] * is);
        k0[c] = (float)(b[c] - m1 * w[c] * is);
    }
    if (y) forward_pass(x, y, keeps_d(act) ? d : NULL, bf16, P, C, K, kx, k0, act, a, nthreads);
    free(K); free(t);
    return 0;
}

/* gy, gx, d in x's dtype; gw, gb float32 (C); gx NULL: parameter gradients only; d must be the forward's
 * f'(z) for the activations that keep it. parts: NULL, or the sums of dL/dz and dL/dz (x - mean) already
 * taken by the kernel that produced gy (nparts chunks x 2 x C doubles, added here in chunk order, as the
 * first pass would): then that pass is skipped.
 * dL/dx = w is (gz - mean(gz) - (x - mean) is^2 mean(gz (x - mean))), gz = dL/dz. */
int bn_backward(const void *x, const void *gy, const void *d, void *gx, int dtype, int64_t P, int64_t C,
                const float *w, const float *b, int act, float a, const float *mean, const float *invstd, float *gw,
                float *gb, int64_t nchunks, int nthreads, const double *parts, int64_t nparts) {
    if (C > MAXCB * VL || P < 1 || (keeps_d(act) && !d)) return -1;
    const int bf16 = dtype == 1;
    float *ka = malloc((size_t)(5 * C) * sizeof(float)), *kx = ka + C, *k0 = ka + 2 * C, *zs = ka + 3 * C,
          *zb = ka + 4 * C;
    double *t = malloc((size_t)(2 * C) * sizeof(double));
    struct gz_ctx *g = aligned_alloc(64, (sizeof(struct gz_ctx) + 63) / 64 * 64);
    if (!ka || !t || !g) { free(ka); free(t); free(g); return -1; }
    for (int64_t c = 0; c < C; ++c) {
        zs[c] = w[c] * invstd[c];
        zb[c] = b[c];
    }
    g->gy = gy; g->d = d; g->act = act; g->bf16 = bf16; g->a = a;
    channel_vectors(zs, C, g->zs);
    channel_vectors(zb, C, g->zb);
    if (parts) {
        for (int64_t c = 0; c < C; ++c) t[c] = t[C + c] = 0.0;
        for (int64_t k = 0; k < nparts; ++k)
            for (int64_t c = 0; c < C; ++c) {
                t[c] += parts[2 * k * C + c];
                t[C + c] += parts[(2 * k + 1) * C + c];
            }
    } else if (reduce(x, g, bf16, P, C, mean, nchunks, nthreads, t, t + C)) {
        free(ka); free(t); free(g);
        return -1;
    }
    for (int64_t c = 0; c < C; ++c) {
        double is = invstd[c], sg = t[c], sgx = t[C + c];
        gb[c] = (float)sg;
        gw[c] = (float)(sgx * is);
        ka[c] = (float)(w[c] * is);
        kx[c] = (float)(-w[c] * is * is * is * sgx / (double)P);
        k0[c] = (float)(-w[c] * is * sg / (double)P);
    }
    if (gx) input_grad_pass(x, g, gx, bf16, P, C, mean, ka, kx, k0, nthreads);
    free(ka); free(t); free(g);
    return 0;
}
