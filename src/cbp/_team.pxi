# A team of threads on one network: the phases of a mini-batch split into
# shares, the team's run of mini-batches, and how many threads run;
# included by _core.pyx after _batch.pxi.

# ---------------------------------------------------------------------------
# One network trained by a team of threads (issue 12).  The team runs a whole
# run of mini-batches inside one parallel region; in each phase every thread
# takes a share of the layer's outputs (units for the forward pass and the
# step, columns of δ^{l-1} for BP2), cut at multiples of the kernels' tiles,
# and the threads meet at a barrier before the next phase reads the results.
# No element is summed by more than one thread and a share is cut into the
# same tiles as the whole, so the weights are bit-identical for every team
# size.  The O(M·n_out) output layer (cost, BP1) is thread 0's.
#
# Barriers per mini-batch: one after each layer's forward (none after the
# last when its units make one share, which is thread 0's, as an output
# layer of 10 does), one after the output layer, one after each BP2, and one
# at the end: 2L + 1, or 2L, for L layers, where every step had its own
# before (3L + 1; 10 for [784, 256, 256, 10]).  A step needs none: the next
# BP2 reads other weights and writes a third δ buffer, not the δ a slower
# thread may still be stepping with; the barrier after that BP2 then also
# keeps the step after it behind every thread's step before (the first
# layer's step, which has no BP2 before it, puts its α δᵀ in a free δ
# buffer instead of the shared scratch the step above uses).  Each thread
# finds its mini-batch's rows itself, so no barrier waits for thread 0 to
# gather them (but for per-example weights, whose sum thread 0 shares).
# ---------------------------------------------------------------------------

cdef enum:
    UNIT_ROWS = 12        # shares of weight rows: multiples of the 3- and 4-row tiles
    UNIT_COLS = 48        # shares of BP2's columns: multiples of its strips (3 vectors)


cdef inline void _share(Py_ssize_t n, Py_ssize_t unit, int tid, int nt,
                        Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    # Thread tid's part [lo, hi) of 0..n, cut at multiples of unit.  One
    # unit is thread 0's: it then reads what it computed without a barrier.
    cdef Py_ssize_t units = (n + unit - 1) // unit
    if units == 1:
        lo[0] = 0 if tid == 0 else n
        hi[0] = n
        return
    lo[0] = min(n, (units * tid // nt) * unit)
    hi[0] = min(n, (units * (tid + 1) // nt) * unit)


cdef double _backprop_team(const Layout* lay, floating* P, floating* T, const floating** rows0,
                           floating* work, Py_ssize_t M, const floating* Y__mo,
                           floating alpha, floating beta, floating beta_b, int tid, int nt,
                           const floating** rows, floating* pack,
                           cbp_team_barrier* bar, const floating* w__m,
                           floating* D3) noexcept nogil:
    # _backprop_batch run by each thread of the team on its shares; work and
    # D3 (a third δ buffer) are shared, work laid out as there; rows0 and
    # rows (M pointers each) and pack are the thread's own.  Σ C_x is
    # returned by thread 0 (0 by the others).
    cdef Py_ssize_t l, m, lo, hi, n_in, n_out, L = lay.L
    cdef floating* A[64]
    cdef floating* Z
    cdef floating* delta[3]       # δ of layer k's outputs in delta[k % 3]
    cdef floating* D
    cdef floating* D_below
    cdef floating* Dt
    cdef floating* out
    cdef const floating** A_in = rows0
    cdef double cost_sum = 0
    cdef Py_ssize_t O = lay.sizes[L]
    Dt = _carve(lay, work, M, A, &Z, &delta[0], &delta[1])
    delta[2] = D3

    # feedforward: each thread its share of each layer's units
    for l in range(L):
        n_in = lay.sizes[l]
        n_out = lay.sizes[l + 1]
        out = Z if l == L - 1 else A[l + 1]
        _share(n_out, UNIT_ROWS, tid, nt, &lo, &hi)
        if hi > lo:
            if floating is double:
                cbp_forward_d(A_in, P + lay.woff[l] + lo * n_in, P + lay.boff[l] + lo, out + lo,
                              M, hi - lo, n_in, n_out, pack)
            else:
                cbp_forward_f(A_in, P + lay.woff[l] + lo * n_in, P + lay.boff[l] + lo, out + lo,
                              M, hi - lo, n_in, n_out, pack)
            if l < L - 1:
                for m in range(M):
                    activate(out + m * n_out + lo, out + m * n_out + lo, 1, hi - lo, lay.hidden)
        if l < L - 1:
            _row_pointers(A[l + 1], M, n_out, rows)
            A_in = rows
        if l < L - 1 or O > UNIT_ROWS:
            cbp_team_wait(bar)
    if tid == 0:
        activate(Z, A[L], M, O, lay.output)
        cost_sum = _output_layer(lay, Z, A[L], Y__mo, delta[(L - 1) % 3], w__m, M)
    cbp_team_wait(bar)

    for l in range(L - 1, -1, -1):
        n_in = lay.sizes[l]
        n_out = lay.sizes[l + 1]
        D = delta[l % 3]
        if l > 0:
            # BP2 with the old W^l: every thread is done with it before any
            # step of W^l; and, before the next BP2 writes delta[(l-2) % 3],
            # done with the step of layer l+1, which read that buffer
            D_below = delta[(l - 1) % 3]
            _share(n_in, UNIT_COLS, tid, nt, &lo, &hi)
            if hi > lo:
                if floating is double:
                    cbp_backward_d(D, P + lay.woff[l], D_below, M, n_out, n_in, lo, hi, pack)
                else:
                    cbp_backward_f(D, P + lay.woff[l], D_below, M, n_out, n_in, lo, hi, pack)
                for m in range(M):
                    _times_derivative(D_below + m * n_in + lo, A[l] + m * n_in + lo, hi - lo,
                                      lay.hidden)
            _row_pointers(A[l], M, n_in, rows)
            cbp_team_wait(bar)
        _share(n_out, UNIT_ROWS, tid, nt, &lo, &hi)
        if hi > lo:
            # α δᵀ's scratch: the first layer's step follows the second's with
            # no barrier between (no BP2 below it), so it takes delta[2],
            # which no thread reads by then, not the rows of Dt a slower
            # thread may still be using for the layer above.
            gradient_step(D + lo, rows0 if l == 0 else rows, T + lay.woff[l] + lo * n_in,
                          T + lay.boff[l] + lo, M, hi - lo, n_in, alpha, beta, beta_b,
                          (delta[2] if l == 0 else Dt) + lo * M, pack, n_out)
    # The next mini-batch's forward writes the activations these steps read.
    cbp_team_wait(bar)
    return cost_sum


cdef double _train_team(const Layout* lay, floating* P, floating* V, const floating** rows0,
                        floating* work, Py_ssize_t M, const floating* Y__mo, floating eta,
                        floating decay, floating mu, int tid, int nt, const floating** rows,
                        floating* pack, cbp_team_barrier* bar, double mass,
                        const floating* w__m, floating* D3) noexcept nogil:
    # _train_batch by the team.
    cdef double cost_sum
    cdef Py_ssize_t lo, hi
    if mu == 0:
        return _backprop_team(lay, P, P, rows0, work, M, Y__mo, <floating>(-eta / mass),
                              1 - eta * decay, 1, tid, nt, rows, pack, bar, w__m, D3)
    cost_sum = _backprop_team(lay, P, V, rows0, work, M, Y__mo, <floating>(-eta / mass), mu, mu,
                              tid, nt, rows, pack, bar, w__m, D3)
    _share(lay.n_params, 64, tid, nt, &lo, &hi)
    if hi > lo:
        momentum_step(P + lo, V + lo, max(0, min(lay.n_weights, hi) - lo), hi - lo, eta * decay)
    # The next forward reads weights from other threads' shares of this step.
    cbp_team_wait(bar)
    return cost_sum


cdef extern from *:
    """
    #include <sched.h>
    /* The start of a team's run: thread 0 sets the barrier's count to the
       team OpenMP actually started, then opens; the others wait for that
       before their first barrier, so none can count against a stale size. */
    static inline void cbp_team_open(int *flag) {
        __atomic_store_n(flag, 1, __ATOMIC_RELEASE);
    }
    static inline void cbp_team_await_open(int *flag) {
        for (int spin = 0; !__atomic_load_n(flag, __ATOMIC_ACQUIRE); spin++)
            if (spin >= 4000) sched_yield();
    }
    """
    void cbp_team_open(int* flag) nogil
    void cbp_team_await_open(int* flag) nogil


cdef Py_ssize_t _team_area(Py_ssize_t M) noexcept nogil:
    # A thread's own scratch: pointers to its activations' rows and to its
    # mini-batch's inputs (M each, 2M slots each for either dtype), and the
    # kernels' packing buffer.
    return 4 * M + PACK


cdef Py_ssize_t _team_delta(Py_ssize_t M, Py_ssize_t widest) noexcept nogil:
    # The team's third δ buffer (shared), an even count: the areas after it
    # hold pointers.
    return (M * widest + 1) // 2 * 2


cdef Py_ssize_t _team_extra(const Py_ssize_t[::1] sizes, Py_ssize_t M, int nt) noexcept:
    # What a team of nt threads needs beyond the one-thread workspace.
    if nt <= 1:
        return 0
    return _team_delta(M, _widest(sizes)) + (nt - 1) * _team_area(M)


cdef int _team_size(const Py_ssize_t[::1] sizes, Py_ssize_t M, int requested) noexcept:
    # Threads pay when each one's share of a mini-batch is large against the
    # barriers between its phases (a few µs each): below ~1 MFLOP per
    # thread and phase, one thread is as fast.
    cdef Py_ssize_t l, flops = 0, phases = 3 * (sizes.shape[0] - 1) + 1
    cdef int nt = requested
    for l in range(sizes.shape[0] - 1):
        flops += 6 * M * sizes[l] * sizes[l + 1]
    while nt > 1 and flops // (nt * phases) < _team_min_flops:
        nt -= 1
    return nt


cdef Py_ssize_t _team_min_flops = TEAM_MIN_FLOPS


def team_min_flops(value=None):
    """The least work per thread and phase for a team to be used; set it with ``value``.

    Returns the value in force before the call.  For tests and benchmarks:
    0 makes every run with ``num_threads`` > 1 use a team.
    """
    global _team_min_flops
    old = _team_min_flops
    if value is not None:
        _team_min_flops = max(0, int(value))
    return old


cdef int _last_team = 0


def last_team_size():
    """Threads OpenMP started for the last team train_epoch formed (0: none yet).  For tests."""
    return _last_team


cdef (Py_ssize_t, Py_ssize_t, double) _epoch_team(
        const Layout* lay, floating* P, floating* V, const floating[:, ::1] X,
        const floating[:, ::1] Y, const Py_ssize_t[::1] order, Py_ssize_t mini_batch_size,
        Py_ssize_t first, Py_ssize_t last, floating eta, double decay, floating mu,
        floating* work, Py_ssize_t scratch, floating* extra, int nt, Rule* rule,
        const floating* sw, double* w2) except *:
    # The mini-batch loop of train_epoch, run by a team of at most nt threads
    # that lives for the whole run.  OpenMP may start fewer (OMP_THREAD_LIMIT,
    # OMP_DYNAMIC, a call from inside another parallel region): the barrier
    # counts, and the shares are cut for, the team that actually runs, and a
    # lone thread runs the one-thread driver.  Each step decays by
    # λ/n + α/M (α = rule.l2), as _rule_batch does on one thread; with the
    # weights sw, M is Σ w_x there too, which thread 0 sums and shares.
    global _last_team
    cdef Py_ssize_t n = order.shape[0], I = lay.sizes[0], O = lay.sizes[lay.L]
    cdef const floating** rows0 = <const floating**>(work + scratch)
    cdef floating* Yb = work + scratch + 2 * mini_batch_size
    cdef floating* wb = Yb + mini_batch_size * O
    cdef Py_ssize_t k, start, M, r, area = _team_area(mini_batch_size)
    cdef double shared_mass[1]
    cdef double mass
    cdef Py_ssize_t counts[2]
    cdef double total[1]
    cdef int stop[1]
    cdef int opened[2]        # the team is open; its size
    cdef cbp_team_barrier bar
    cdef cbp_team_barrier* barp = &bar
    cdef int tid, team
    cdef double c, l2 = rule.l2
    cdef const floating** rows
    cdef const floating** own0
    cdef floating* pack
    cdef floating* D3 = extra
    cdef floating* areas = extra + _team_delta(mini_batch_size, lay.max_width)
    cdef const floating* Xp = &X[0, 0] if X.shape[0] > 0 else NULL
    cdef const floating* Yp = &Y[0, 0] if Y.shape[0] > 0 else NULL
    cdef const Py_ssize_t* orderp = &order[0] if n > 0 else NULL
    counts[0] = counts[1] = 0
    total[0] = 0
    stop[0] = 0
    opened[0] = opened[1] = 0
    bar.count = bar.generation = 0
    bar.n = nt
    # (Cython makes these firstprivate: give them values to copy.)
    tid = team = 0
    k = start = M = r = 0
    c = 0
    mass = 0
    rows = own0 = NULL
    pack = NULL
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        team = openmp.omp_get_num_threads()
        if tid == 0:
            barp.n = team
            opened[1] = team
            cbp_team_open(&opened[0])
        else:
            cbp_team_await_open(&opened[0])
        if team == 1:
            stop[0] = _epoch_alone(lay, P, V, Xp, Yp, orderp, n, mini_batch_size, first, last,
                                   eta, decay, mu, work, scratch, rule, counts, total, sw, w2,
                                   NULL)
        else:
            if tid == 0:
                rows = <const floating**>work
                own0 = rows0
                pack = work + scratch - PACK
            else:
                rows = <const floating**>(areas + (tid - 1) * area)
                own0 = <const floating**>(areas + (tid - 1) * area + 2 * mini_batch_size)
                pack = areas + (tid - 1) * area + 4 * mini_batch_size
            for k in range(first, last):
                start = k * mini_batch_size
                M = mini_batch_size if start + mini_batch_size <= n else n - start
                for r in range(M):
                    own0[r] = &X[order[start + r], 0]
                if tid == 0:
                    for r in range(M):
                        memcpy(Yb + r * O, &Y[order[start + r], 0], O * sizeof(floating))
                    if sw != NULL:
                        shared_mass[0] = _batch_mass(sw, orderp + start, M, wb)
                # Every thread reads all of the next mini-batch's rows (its
                # forward packs them, its step reads them), so each brings
                # them into its own core's cache: prefetched by thread 0
                # alone, the others packed them from thread 0's cache or
                # from memory, 3x slower (perf, [784,256,256,10] m=64).
                for r in range(start + M, min(start + M + mini_batch_size, n)):
                    cbp_prefetch(&X[order[r], 0], I * sizeof(floating))
                if sw == NULL:
                    mass = M
                else:
                    # the sum of the examples' weights, which thread 0 gathered
                    cbp_team_wait(barp)
                    mass = shared_mass[0]
                if mass == 0:
                    # No step; every thread has read the mass before thread 0
                    # gathers the next mini-batch.
                    cbp_team_wait(barp)
                else:
                    if tid == 0 and w2 != NULL:
                        # The others only read W until a barrier thread 0 is behind.
                        w2[0] += (M / mass) * sum_of_squares(P, lay.n_weights)
                    c = _train_team(lay, P, V, own0, work, M, Yb, eta,
                                    <floating>(decay + l2 / mass), mu, tid, team, rows, pack,
                                    barp, mass, NULL if sw == NULL else wb, D3)
                    if tid == 0:
                        total[0] += c if sw == NULL else (M / mass) * c
                        counts[0] += 1
                if tid == 0:
                    counts[1] += M
                if (k - first + 1) % 16 == 0:
                    # Ctrl-C lands here, between mini-batches, for the whole team.
                    if tid == 0:
                        with gil:
                            if _check_signals() != 0:
                                stop[0] = 1
                    cbp_team_wait(barp)
                    if stop[0]:
                        break
    _last_team = opened[1]
    if stop[0]:
        _reraise()
    return counts[0], counts[1], total[0]


# -- how many threads: OpenMP's count, cut to what can run --------------------
#
# GNU OpenMP's thread pool does not survive fork(): a child forked after the
# parent ran a parallel region (multiprocessing's default start method on
# Linux) hangs in its first team.  A forked child therefore runs everything
# on one thread, never entering a parallel region: the weights are the same.

cdef bint _forked_child = False


def _after_fork_in_child():
    global _forked_child
    _forked_child = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def default_threads():
    """OpenMP's thread count for a new parallel region (OMP_NUM_THREADS, threadpoolctl).

    1 in a process forked from one that imported cbp (see :func:`usable_threads`).
    """
    return 1 if _forked_child else openmp.omp_get_max_threads()


cdef int _usable(object requested) except -1:
    # The most threads a request may get: at most OMP_THREAD_LIMIT and four
    # per core (or OMP_NUM_THREADS, if more), one in a forked child.  A team
    # of a million threads cannot start and its workspace would not fit.
    if isinstance(requested, (bool, np.bool_)) or not isinstance(requested, numbers.Integral):
        raise TypeError(f"num_threads must be an integer; got {type(requested).__name__}")
    if not 1 <= requested <= 2147483647:
        raise ValueError(f"num_threads must be an integer from 1 to 2**31 - 1; got {requested}")
    if _forked_child:
        return 1
    cdef int cap = max(4 * openmp.omp_get_num_procs(), openmp.omp_get_max_threads())
    cap = min(cap, openmp.omp_get_thread_limit())
    return max(1, min(requested, cap))


def usable_threads(requested):
    """The most threads a call asking for ``requested`` (an int >= 1) runs on.

    ``requested`` cut to ``OMP_THREAD_LIMIT`` and to four threads per core
    (or ``OMP_NUM_THREADS`` when larger); 1 in a child forked from a process
    that imported cbp, whose OpenMP thread pool does not survive the fork.
    """
    return _usable(requested)


MAX_LAYERS = 63
