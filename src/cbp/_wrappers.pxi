# The py_ wrappers the tests, the teaching trace and the microbenchmarks
# call, and the FMA and barrier probes; included by _core.pyx.

# ---------------------------------------------------------------------------
# py_ wrappers: each kernel callable from Python on small arrays, for tests,
# the teaching trace and the microbenchmarks.  No checks beyond shapes.
# ---------------------------------------------------------------------------

def py_feedforward_layer(const floating[:, ::1] A__mi, const floating[:, ::1] W__oi,
                         const floating[::1] b__o, floating[:, ::1] Z__mo):
    """Z = A Wᵀ + b (z^l = W^l a^{l-1} + b^l per row)."""
    assert A__mi.shape[1] == W__oi.shape[1] and Z__mo.shape[0] == A__mi.shape[0]
    assert Z__mo.shape[1] == W__oi.shape[0] and b__o.shape[0] == W__oi.shape[0]
    cdef Py_ssize_t[::1] rows = np.empty(A__mi.shape[0], dtype=np.intp)
    cdef floating[::1] pack = np.empty(PACK, dtype=np.float64 if floating is double else np.float32)
    with nogil:
        _row_pointers(&A__mi[0, 0], A__mi.shape[0], A__mi.shape[1], <const floating**>&rows[0])
        feedforward_layer(<const floating**>&rows[0], &W__oi[0, 0], &b__o[0], &Z__mo[0, 0],
                          A__mi.shape[0], W__oi.shape[0], W__oi.shape[1], &pack[0])


def py_activate(const floating[:, ::1] Z__mo, floating[:, ::1] A__mo, int act):
    """A = f(Z)."""
    assert Z__mo.shape[0] == A__mo.shape[0] and Z__mo.shape[1] == A__mo.shape[1]
    with nogil:
        activate(&Z__mo[0, 0], &A__mo[0, 0], Z__mo.shape[0], Z__mo.shape[1], act)


def py_output_error(const floating[:, ::1] A__mo, const floating[:, ::1] Y__mo,
                    floating[:, ::1] D__mo, int act, int cost):
    """BP1."""
    assert A__mo.shape[0] == Y__mo.shape[0] == D__mo.shape[0]
    assert A__mo.shape[1] == Y__mo.shape[1] == D__mo.shape[1]
    with nogil:
        output_error(&A__mo[0, 0], &Y__mo[0, 0], &D__mo[0, 0], A__mo.shape[0], A__mo.shape[1],
                     act, cost)


def py_backpropagate_error(const floating[:, ::1] D__mo, const floating[:, ::1] W__oi,
                           const floating[:, ::1] A__mi, floating[:, ::1] D__mi, int act):
    """BP2."""
    assert D__mo.shape[1] == W__oi.shape[0] and A__mi.shape[1] == W__oi.shape[1]
    assert D__mi.shape[0] == A__mi.shape[0] == D__mo.shape[0] and D__mi.shape[1] == A__mi.shape[1]
    cdef floating[::1] pack = np.empty(PACK, dtype=np.float64 if floating is double else np.float32)
    with nogil:
        backpropagate_error(&D__mo[0, 0], &W__oi[0, 0], &A__mi[0, 0], &D__mi[0, 0],
                            D__mo.shape[0], W__oi.shape[0], W__oi.shape[1], act, &pack[0])


def py_gradient_step(const floating[:, ::1] D__mo, const floating[:, ::1] A__mi,
                     floating[:, ::1] W__oi, floating[::1] b__o, double alpha, double beta):
    """BP3/BP4 folded into W <- βW + α Σ δ aᵀ, b <- b + α Σ δ."""
    assert D__mo.shape[0] == A__mi.shape[0] and D__mo.shape[1] == W__oi.shape[0]
    assert A__mi.shape[1] == W__oi.shape[1] and b__o.shape[0] == W__oi.shape[0]
    dtype = np.float64 if floating is double else np.float32
    cdef floating[::1] Dt__om = np.empty(D__mo.shape[0] * D__mo.shape[1], dtype=dtype)
    cdef floating[::1] pack = np.empty(PACK, dtype=dtype)
    cdef Py_ssize_t[::1] rows = np.empty(A__mi.shape[0], dtype=np.intp)
    with nogil:
        _row_pointers(&A__mi[0, 0], A__mi.shape[0], A__mi.shape[1], <const floating**>&rows[0])
        gradient_step(&D__mo[0, 0], <const floating**>&rows[0], &W__oi[0, 0], &b__o[0],
                      D__mo.shape[0], W__oi.shape[0], W__oi.shape[1],
                      <floating>alpha, <floating>beta, 1, &Dt__om[0], &pack[0], D__mo.shape[1])


def py_fma_peak(long long n, bint single=False, int vector_bytes=32):
    """Run n steps of independent vector FMA chains; return (flops, checksum).

    12 chains of 32-byte vectors (they fit AVX2's 16 registers) or 16 of
    64-byte ones.

    ``single`` picks float32; ``vector_bytes`` 32 (the kernels' vectors) or
    64 (one AVX-512 register).  Time the call to get the FMA peak of a core.
    """
    cdef double r
    with nogil:
        if vector_bytes == 64:
            r = cbp_fma_peak_f64(n, 1e-7) if single else cbp_fma_peak_d64(n, 1e-12)
        else:
            r = cbp_fma_peak_f(n, 1e-7) if single else cbp_fma_peak_d(n, 1e-12)
    return 2 * (16 if vector_bytes == 64 else 12) * n * (vector_bytes // (4 if single else 8)), r


def py_barrier_ns(meetings, num_threads=2):
    """Time ``meetings`` meetings of a team at its barrier; return (team, ns per meeting).

    A probe of the machine for benchmarks, as py_fma_peak: a team of
    training threads meets its barrier a few times a mini-batch and moves
    its data between the same cores, so this cost says what a team can
    gain there.  A meeting of two threads costs about one transfer of a
    cache line each way between their cores: 32-38 ns on a 2-vCPU EPYC VM
    whose two vCPUs shared a cache, 156-180 ns while its host ran them
    apart.  OpenMP may start fewer threads than asked; (1, nan) when only
    one runs (or in a child forked after a team ran).  ``meetings`` is at
    most 10,000,000 and ``num_threads`` at most 64: more threads than cores
    yield at each meeting (~0.1 ms each), and the call cannot be
    interrupted.
    """
    cdef cbp_team_barrier bar
    cdef cbp_team_barrier* barp = &bar
    cdef int opened[2]
    cdef double t[2]
    cdef int i, team = 1, n, nt
    for name, value in (("meetings", meetings), ("num_threads", num_threads)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    if not 1 <= meetings <= 10_000_000:
        raise ValueError(f"meetings must be from 1 to 10,000,000, not {meetings}")
    if not 1 <= num_threads <= 64:
        raise ValueError(f"num_threads must be from 1 to 64, not {num_threads}")
    if num_threads < 2 or _forked_child:
        return 1, float("nan")
    n, nt = meetings, num_threads
    bar.count = bar.generation = 0
    bar.n = nt
    opened[0] = opened[1] = 0
    with nogil, parallel(num_threads=nt):
        if threadid() == 0:
            team = openmp.omp_get_num_threads()
            barp.n = team
            opened[1] = team
            cbp_team_open(&opened[0])
        else:
            cbp_team_await_open(&opened[0])
        cbp_team_wait(barp)
        if threadid() == 0:
            t[0] = openmp.omp_get_wtime()
        for i in range(n):
            cbp_team_wait(barp)
        if threadid() == 0:
            t[1] = openmp.omp_get_wtime()
    if opened[1] < 2:
        return 1, float("nan")
    return opened[1], (t[1] - t[0]) / n * 1e9


def py_prefetch_pending():
    """Rows the calling thread's prefetch queue still plans to ask for (0 between calls)."""
    return cbp_prefetch_pending()


def kernel_variant():
    """Which compiled variant of the kernels runs on this CPU (chosen at load time)."""
    return cbp_kernel_variant().decode()
