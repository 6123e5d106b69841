/*
 * The elementwise kernels of training, each one pass over an array: σ and
 * the derivatives that BP2 multiplies by (f' read off a = f(z)), and the
 * passes that check inputs (finite, their range, the largest |x|).
 * Included by _kernels.h, after its vector types and clone attributes; the
 * products (which these kernels sit between) are there.
 */
#ifndef CBP_ELEMENTWISE_H
#define CBP_ELEMENTWISE_H

/*
 * σ(z) over an array, vectorised: libm's exp is scalar, and on a wide layer
 * the activations cost as much as a fifth of the forward pass.  exp is
 * evaluated only at −|z| <= 0 (so it cannot overflow) as 2^k · p(r), with
 * r = x − k ln 2 (Cody–Waite split of ln 2), |r| <= ln2/2, and p the Taylor
 * polynomial (degree 13 for double, 7 for float: truncation below half an
 * ulp); 2^k is applied as two factors so gradual underflow stays right.
 */
typedef long long cbp_vld __attribute__((vector_size(32)));
typedef int cbp_vif __attribute__((vector_size(32)));

CBP_INLINE cbp_vd cbp_vexp_neg_d(cbp_vd x) {
    const cbp_vd lo = {-746.0, -746.0, -746.0, -746.0};
    cbp_vld small = x < lo;
    x = (cbp_vd)(((cbp_vld)x & ~small) | ((cbp_vld)lo & small));
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52: rounds to an integer */
    cbp_vd kd = x * 1.4426950408889634 + shifter;
    kd -= shifter;
    cbp_vd r = x - kd * 0.693147180369123816490;  /* ln 2, high part */
    r = r - kd * 1.90821492927058770002e-10;        /* ln 2, low part */
    cbp_vd p = r * (1.0 / 6227020800.0) + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    cbp_vld k = __builtin_convertvector(kd, cbp_vld);
    cbp_vld k1 = k >> 1, k2 = k - k1;
    cbp_vd s1 = (cbp_vd)((k1 + 1023) << 52), s2 = (cbp_vd)((k2 + 1023) << 52);
    return p * s1 * s2;
}

CBP_INLINE cbp_vf cbp_vexp_neg_f(cbp_vf x) {
    const cbp_vf lo = {-104.f, -104.f, -104.f, -104.f, -104.f, -104.f, -104.f, -104.f};
    cbp_vif small = x < lo;
    x = (cbp_vf)(((cbp_vif)x & ~small) | ((cbp_vif)lo & small));
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    cbp_vf kd = x * 1.44269504f + shifter;
    kd -= shifter;
    cbp_vf r = x - kd * 0.693145752f;   /* ln 2, high part */
    r = r - kd * 1.42860677e-06f;       /* ln 2, low part */
    cbp_vf p = r * (1.0f / 5040.0f) + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    cbp_vif k = __builtin_convertvector(kd, cbp_vif);
    cbp_vif k1 = k >> 1, k2 = k - k1;
    cbp_vf s1 = (cbp_vf)((k1 + 127) << 23), s2 = (cbp_vf)((k2 + 127) << 23);
    return p * s1 * s2;
}

#define CBP_DEFINE_SIGMOID(T, V, VI, W_, SUF)                                                 \
CBP_INLINE V cbp_vsigmoid_##SUF(V z) {                                                        \
    V zero = {0};                                                                             \
    VI neg = z < zero;                                                                        \
    V minus_abs = (V)(((VI)z & neg) | ((VI)(-z) & ~neg));                                     \
    V e = cbp_vexp_neg_##SUF(minus_abs);                                                      \
    V d = 1 / (1 + e);                                                                        \
    return (V)(((VI)(e * d) & neg) | ((VI)d & ~neg));                                         \
}                                                                                             \
                                                                                              \
/* a = σ(z) elementwise; z and a may be the same array */                                     \
CBP_CLONES                                                                                    \
static void cbp_sigmoid_##SUF(const T *z, T *a, ptrdiff_t n) {                                \
    ptrdiff_t k = 0;                                                                          \
    for (; k + W_ <= n; k += W_) *(V *)(a + k) = cbp_vsigmoid_##SUF(*(const V *)(z + k));    \
    if (k < n) {                                                                              \
        V t = {0};                                                                            \
        for (ptrdiff_t q = 0; q < n - k; q++) t[q] = z[k + q];                                \
        t = cbp_vsigmoid_##SUF(t);                                                            \
        for (ptrdiff_t q = 0; q < n - k; q++) a[k + q] = t[q];                                \
    }                                                                                         \
}

CBP_DEFINE_SIGMOID(double, cbp_vd, cbp_vld, 4, d)
CBP_DEFINE_SIGMOID(float, cbp_vf, cbp_vif, 8, f)

/*
 * BP2's Hadamard product in place, δ ← δ ⊙ f'(z), with f'(z) read off a = f(z)
 * as _derivative (_core.pyx) reads it, to the bit: C evaluates the Cython
 * there as σ' = a · (1.0 − a) and tanh' = 1.0 − a · a in double (for float
 * data a · a is rounded to float first), the result rounded to T; ReLU' is
 * [a > 0], exp' is a.  The scalar loop there was compiled for SSE2 and went
 * through double one element at a time; these loops vectorise in the
 * clones.  tanh's product is rounded before the subtraction, as the default
 * build (no FMA) rounds it: GCC fused the two into one FMA otherwise, even
 * through __builtin_assoc_barrier, and the weights changed in the last bits.
 */
#if defined(__clang__)
#define CBP_NO_FMA
#define CBP_NO_FMA_HERE _Pragma("clang fp contract(off)")
#else
#define CBP_NO_FMA __attribute__((optimize("fp-contract=off")))
#define CBP_NO_FMA_HERE
#endif
#define CBP_DEFINE_FPRIME(T, SUF)                                                             \
CBP_CLONES                                                                                    \
static void cbp_times_sigmoid_prime_##SUF(T *d, const T *a, ptrdiff_t n) {                    \
    for (ptrdiff_t k = 0; k < n; k++) d[k] *= (T)((double)a[k] * (1.0 - (double)a[k]));      \
}                                                                                             \
CBP_CLONES CBP_NO_FMA                                                                         \
static void cbp_times_tanh_prime_##SUF(T *d, const T *a, ptrdiff_t n) {                       \
    CBP_NO_FMA_HERE                                                                           \
    for (ptrdiff_t k = 0; k < n; k++) {                                                       \
        T sq = a[k] * a[k];                                                                   \
        d[k] *= (T)(1.0 - (double)sq);                                                        \
    }                                                                                         \
}                                                                                             \
CBP_CLONES                                                                                    \
static void cbp_times_relu_prime_##SUF(T *d, const T *a, ptrdiff_t n) {                       \
    for (ptrdiff_t k = 0; k < n; k++) d[k] *= a[k] > 0 ? (T)1 : (T)0;                         \
}                                                                                             \
CBP_CLONES                                                                                    \
static void cbp_times_exp_prime_##SUF(T *d, const T *a, ptrdiff_t n) {                        \
    for (ptrdiff_t k = 0; k < n; k++) d[k] *= a[k];                                           \
}

CBP_DEFINE_FPRIME(double, d)
CBP_DEFINE_FPRIME(float, f)

/*
 * One pass over x for the input checks: whether every element is finite,
 * and the smallest and largest (meaningful only when all are finite).  NumPy
 * needs three passes for this (isfinite, min, max), and at 60 MB of MNIST
 * they cost 15% of a one-epoch SGD call.  x*0 is 0 for a finite x and NaN
 * otherwise; the sum of them is tested once at the end.  Min and max blend
 * through compare masks (any x86-64; no fmin/fmax semantics needed, since
 * the range is only used when all elements are finite).
 */
#define CBP_DEFINE_SCAN(T, V, VI, SUF)                                                        \
CBP_CLONES                                                                                    \
static int cbp_scan_##SUF(const T *x, ptrdiff_t n, T *lo_out, T *hi_out) {                     \
    enum { W = (int)(sizeof(V) / sizeof(T)) };                                                \
    T lo = n ? x[0] : 0, hi = lo, bad = 0;                                                    \
    ptrdiff_t p = 0;                                                                          \
    if (n >= 2 * W) {                                                                         \
        V l0, l1, h0, h1, z0 = {0}, z1 = {0};                                                 \
        __builtin_memcpy(&l0, x, sizeof(V));                                                  \
        l1 = l0; h0 = l0; h1 = l0;                                                            \
        for (; p + 2 * W <= n; p += 2 * W) {                                                  \
            V a, b;                                                                           \
            __builtin_memcpy(&a, x + p, sizeof(V));                                           \
            __builtin_memcpy(&b, x + p + W, sizeof(V));                                       \
            z0 += a * 0; z1 += b * 0;                                                         \
            VI ma = a < l0, mb = b < l1;                                                      \
            l0 = (V)(((VI)a & ma) | ((VI)l0 & ~ma));                                          \
            l1 = (V)(((VI)b & mb) | ((VI)l1 & ~mb));                                          \
            ma = a > h0; mb = b > h1;                                                         \
            h0 = (V)(((VI)a & ma) | ((VI)h0 & ~ma));                                          \
            h1 = (V)(((VI)b & mb) | ((VI)h1 & ~mb));                                          \
        }                                                                                     \
        for (int q = 0; q < W; q++) {                                                         \
            bad += z0[q] + z1[q];                                                             \
            lo = l0[q] < lo ? l0[q] : lo; lo = l1[q] < lo ? l1[q] : lo;                       \
            hi = h0[q] > hi ? h0[q] : hi; hi = h1[q] > hi ? h1[q] : hi;                       \
        }                                                                                     \
    }                                                                                         \
    for (; p < n; p++) {                                                                      \
        bad += x[p] * 0;                                                                      \
        lo = x[p] < lo ? x[p] : lo;                                                           \
        hi = x[p] > hi ? x[p] : hi;                                                           \
    }                                                                                         \
    *lo_out = lo; *hi_out = hi;                                                               \
    return bad == 0;                                                                          \
}

CBP_DEFINE_SCAN(double, cbp_vd, cbp_vld, d)
CBP_DEFINE_SCAN(float, cbp_vf, cbp_vif, f)

/*
 * The largest |x| of n elements: NaN when one is NaN, else +Inf when one is
 * ±Inf; so "all finite" and the inputs' scale in one pass.  Training checks
 * each mini-batch's rows with it as they come into the cache, where the
 * blends of cbp_scan (x*0 sums, min and max) cost as much as a pass over
 * memory.  Here |x| is the float's bits without the sign, and for those
 * bits integer order is the order of the magnitudes, with +Inf above every
 * finite value and NaN above +Inf: one integer max per element (and, compare,
 * blend), nothing else.
 */
#define CBP_DEFINE_ABSMAX(T, VI, I, SUF)                                                      \
CBP_CLONES                                                                                    \
static T cbp_absmax_##SUF(const T *x, ptrdiff_t n) {                                          \
    enum { W = (int)(sizeof(VI) / sizeof(I)) };                                               \
    const I mag = (I)(~(unsigned long long)0 >> (65 - 8 * (int)sizeof(I)));                   \
    I best = 0, b;                                                                            \
    ptrdiff_t p = 0;                                                                          \
    if (n >= 4 * W) {                                                                         \
        VI m0 = {0}, m1 = {0}, m2 = {0}, m3 = {0};                                            \
        for (; p + 4 * W <= n; p += 4 * W) {                                                  \
            VI a0, a1, a2, a3, g;                                                             \
            __builtin_memcpy(&a0, x + p, sizeof(VI));                                         \
            __builtin_memcpy(&a1, x + p + W, sizeof(VI));                                     \
            __builtin_memcpy(&a2, x + p + 2 * W, sizeof(VI));                                 \
            __builtin_memcpy(&a3, x + p + 3 * W, sizeof(VI));                                 \
            a0 &= mag; a1 &= mag; a2 &= mag; a3 &= mag;                                       \
            g = a0 > m0; m0 = (a0 & g) | (m0 & ~g);                                           \
            g = a1 > m1; m1 = (a1 & g) | (m1 & ~g);                                           \
            g = a2 > m2; m2 = (a2 & g) | (m2 & ~g);                                           \
            g = a3 > m3; m3 = (a3 & g) | (m3 & ~g);                                           \
        }                                                                                     \
        for (int q = 0; q < W; q++) {                                                         \
            best = m0[q] > best ? m0[q] : best; best = m1[q] > best ? m1[q] : best;           \
            best = m2[q] > best ? m2[q] : best; best = m3[q] > best ? m3[q] : best;           \
        }                                                                                     \
    }                                                                                         \
    for (; p < n; p++) {                                                                      \
        __builtin_memcpy(&b, x + p, sizeof(I));                                               \
        b &= mag;                                                                             \
        best = b > best ? b : best;                                                           \
    }                                                                                         \
    T out;                                                                                    \
    __builtin_memcpy(&out, &best, sizeof(T));                                                 \
    return out;                                                                               \
}

CBP_DEFINE_ABSMAX(double, cbp_vld, long long, d)
CBP_DEFINE_ABSMAX(float, cbp_vif, int, f)

#endif
