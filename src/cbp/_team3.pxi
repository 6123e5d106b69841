# cbp.network3's training: runs of mini-batches by one team of threads.
#
# Included from _conv.pxi (it uses the kernels there).  The per-layer
# kernels above each open an OpenMP parallel region: some fifteen per
# mini-batch of the book's dropout net, and on a machine shared with other
# work every region's fork and join can wait a time slice for a descheduled
# thread.  Here one team lives for a whole run of mini-batches; its threads
# meet at a barrier (cbp_team_wait, the dense core's) between phases, and
# each phase is one layer's work cut into shares no two threads write:
#
#   forward:  one phase per layer (conv: examples; dense: units; an output
#             layer of one share of units, the book's 10: examples), where the
#             producer of a dropout layer's input also draws and applies that
#             layer's mask on the share it produced; then each thread the
#             softmax and the log-likelihood's error of its examples;
#   backward: each phase holds a layer's errors (dense BP2 by columns, or
#             with its step by halves of the weight rows where the layer below
#             reads the error in slices; conv: routing, patches, BP2 by
#             examples, down through the conv layers below it) and the step
#             of the layers above (by weight rows or filters), which touch
#             different arrays; then the last steps.
#
# At most 2L + 2 barriers per mini-batch for L layers (one more when the
# first layer drops out its input), fewer where a thread reads only what it
# wrote: consecutive conv layers cut the mini-batch by examples alike; an
# output layer of one share (10 units) is cut by examples, as the softmax
# after it; a dense first layer's step needs only the columns of its δ that the
# thread's BP2 share above computed; and when every layer's step ran with
# its BP2 (fused), no phase of steps is left; under a fused second layer
# that step's phase also runs into the next mini-batch's first forward
# (own0 in _l3_batch).  The book's dropout net meets 9 times a mini-batch,
# shallow twice.  Every share is cut at multiples
# of the kernels' tiles and summed in the order of the whole (see _conv.pxi), so
# the results are bit-identical for every team size; OpenMP may start fewer
# threads than asked (OMP_THREAD_LIMIT, nested regions): thread 0 then sets
# the barrier to the team that runs, before any thread counts at it, and the
# shares are cut for that team (the dense core's _epoch_team does the same).

from libc.stdlib cimport calloc, free


cdef enum:
    L3_CONV = 0
    L3_DENSE = 1


ctypedef struct Layer3:
    int kind, act, act_below, need_input, masked, patches
    int fused                # dense: BP2 and the step in one pass (_l3_dense_errors)
    int ws                   # dense: BP2 and the step by halves of W's rows (_l3_dense_halves)
    Py_ssize_t h             # ws: the halves are rows 0..h-1 and h..n_out-1
    int gh                   # conv, patches: the filters' gradient by halves of the examples
    uint64_t keep_below      # dropout: draws kept below this (see _keep_below)
    uint64_t draw0           # this layer's draws start at counter + draw0
    Py_ssize_t C, H, Wd, K, F, ph, pw, CKK, Oy, Ox, N, Pf, Pq, R
    Py_ssize_t n_in, n_out
    Py_ssize_t ld_z          # dense: z's rows (and the output's) this far apart
    Py_ssize_t ld_x          # dense: the input's, the mask's and the masked input's
    void* W                  # conv: flipped filters (F, CKK); dense: wᵀ (n_out, n_in)
    void* b
    void* Z                  # conv: z (M, F·Pf); dense: z, then the output in place
    void* A                  # the output (conv: pooled; dense: Z)
    void* mask               # dense, masked: (M, n_in)
    void* Xm                 # dense, masked: the masked input (M, n_in)
    void* E                  # δ of the input (M, n_in): the error the layer below gets
                             # (ws: the first half's BP2, before ⊙ mask ⊙ f'; see _l3_finish)
    void* E2                 # ws: the second half's BP2 (M, n_in)
    void* Dg                 # ws: the δ each half steps by, half after half (M·n_out)
    void* Dt                 # dense: (n_out, M); conv, patches: α δz filter-major (F, M·R);
                             # gh: each half of the examples' block so, half after half
    void* Gh                 # gh: each half's Σ of the filters' gradient terms (F, CKK), at g·ld_gh
    void* WfT                # conv: the filters transposed (CKK, F), for BP2
    void* Dz                 # conv: δz (M, F·Pf)
    void* G                  # conv, few taps: per-example filter gradients (M, CKK·F)
    void* prows              # conv, patches: pointers to the patch rows (M·R)
    void* zeros              # conv: F zeros
    # per-thread scratch: thread t's row at base + t·ld
    void* xpad
    void* dxpad
    void* rows               # intp, CKK + F per thread
    void* Et
    void* pool
    Py_ssize_t ld_xpad, ld_rows, ld_Et, ld_pool, ld_gh


include "_phases3.pxi"


cdef double _l3_batch(Layer3* layers, int nl, const floating* X, const int32_t* y, Py_ssize_t M,
                      floating* Derr, floating alpha, floating beta, uint64_t seed,
                      uint64_t counter, const floating** rows, floating* pack, double* lls,
                      int tid, int nt, cbp_team_barrier* bar) noexcept nogil:
    # One SGD step on the mini-batch (X, y) by thread tid of nt; returns
    # Σ −ln a[y] (thread 0; 0 for the others).
    cdef int j, k, s0, s1
    cdef Py_ssize_t lo, hi, m, o, O
    cdef Layer3* L
    cdef Layer3* nxt
    cdef Layer3* U
    cdef const floating* x = X
    cdef floating* out
    cdef double total = 0
    # A dense first layer (input unmasked, no BP2) under a fused dense layer:
    # each thread's last phase of a mini-batch (the fused BP2 and step on its
    # columns, then the first layer's step on the same units) touches only
    # the first layer's units it computes in the next forward, cut alike
    # (UNIT_COLS), and everything else the other threads read is behind the
    # barrier after that forward: the mini-batch ends without one.
    cdef bint own0 = (nl >= 2 and layers[0].kind == L3_DENSE and not layers[0].need_input
                      and not layers[0].masked and layers[1].kind == L3_DENSE and layers[1].fused)
    if layers[0].masked:
        _l3_mask_rows(&layers[0], X, _c3_cut(M, 1, tid, nt), _c3_cut(M, 1, tid + 1, nt), 0,
                      layers[0].n_in, seed, counter)
        cbp_team_wait(bar)
    for j in range(nl):
        L = &layers[j]
        nxt = &layers[j + 1] if j + 1 < nl else NULL
        if L.kind == L3_CONV:
            _l3_conv_forward(L, x, M, pack, tid, nt)
            if nxt != NULL and nxt.masked:
                _l3_mask_rows(nxt, <const floating*>L.A, _c3_cut(M, 1, tid, nt),
                              _c3_cut(M, 1, tid + 1, nt), 0, L.n_out, seed, counter)
        elif nxt == NULL and L.n_out <= UNIT_ROWS:
            # An output layer of one share of units (the book's 10): by
            # examples instead, each thread its own, as the softmax after it
            # (one thread's 10 units left the other waiting).
            lo = _c3_cut(M, 1, tid, nt)
            hi = _c3_cut(M, 1, tid + 1, nt)
            if hi > lo:
                _l3_dense_rows_forward(L, x, lo, hi, rows, pack)
        else:
            _l3_dense_forward(L, x, M, rows, pack, &lo, &hi, tid, nt,
                              UNIT_COLS if j == 0 and own0 else UNIT_ROWS)
            if nxt != NULL and nxt.masked:
                _l3_mask_rows(nxt, <const floating*>L.A, 0, M, lo, hi, seed, counter)
        # conv after conv: each thread takes the same examples, so it reads
        # only the outputs it wrote; no barrier.  Nor after an output layer
        # by examples, as the softmax is.
        if not ((L.kind == L3_CONV and nxt != NULL and nxt.kind == L3_CONV)
                or (nxt == NULL and L.kind == L3_DENSE and L.n_out <= UNIT_ROWS)):
            cbp_team_wait(bar)
        x = <const floating*>L.A
    # softmax, then BP1 of the log-likelihood (softmax_log_likelihood_error),
    # by examples; each −ln a[y] kept, and summed in order by thread 0
    L = &layers[nl - 1]
    out = <floating*>L.A
    O = L.n_out
    for m in range(_c3_cut(M, 1, tid, nt), _c3_cut(M, 1, tid + 1, nt)):
        activate(out + m * O, out + m * O, 1, O, SOFTMAX)
        for o in range(O):
            Derr[m * O + o] = out[m * O + o]
        Derr[m * O + y[m]] = Derr[m * O + y[m]] - 1
        lls[m] = log(<double>out[m * O + y[m]])
    cbp_team_wait(bar)
    if tid == 0:
        for m in range(M):
            total -= lls[m]
    # Backward, in groups: a layer, with the conv layers right below it while
    # it is one (each thread routes the same examples through all of them, so
    # no barrier between); a group's steps run in the next phase, beside the
    # next group's errors (different arrays).
    j = nl - 1
    s0 = s1 = nl        # the pending steps: layers s0..s1-1
    while j >= 0:
        for k in range(s1 - 1, s0 - 1, -1):
            _l3_step_any(&layers[k], <const floating*>(layers[k + 1].E if k + 1 < nl else Derr),
                         X if k == 0 else <const floating*>layers[k - 1].A, M, alpha, beta, rows,
                         pack, tid, nt)
        s1 = j + 1
        while True:
            L = &layers[j]
            x = X if j == 0 else <const floating*>layers[j - 1].A
            U = &layers[j + 1] if j + 1 < nl else NULL
            if L.kind == L3_CONV:
                if U != NULL and U.ws:
                    # the halves of U's BP2 added on this thread's examples,
                    # in place: the step of L reads them after the barrier
                    lo = _c3_cut(M, 1, tid, nt)
                    hi = _c3_cut(M, 1, tid + 1, nt)
                    _l3_finish(U, <const floating*>L.A, lo, hi, 0, U.n_in,
                               <floating*>U.E + lo * U.n_in, U.n_in)
                _l3_conv_errors(L, <const floating*>(U.E if U != NULL else Derr), x,
                                M, alpha, pack, tid, nt)
            elif L.ws:
                _l3_dense_halves(L, U, <const floating*>(U.E if U != NULL else Derr), x, M,
                                 alpha, beta, rows, pack, tid, nt)
            elif L.need_input:
                _l3_dense_errors(L, <const floating*>(layers[j + 1].E if j + 1 < nl else Derr), x,
                                 M, alpha, beta, rows, pack, tid, nt)
            j -= 1
            if not (L.kind == L3_CONV and j >= 0 and layers[j].kind == L3_CONV):
                break
        s0 = j + 1
        if (j == 0 and L.kind == L3_DENSE and layers[0].kind == L3_DENSE
                and not layers[0].need_input):
            # A dense first layer has no BP2: its step needs only its δ,
            # whose columns this thread has just computed (L's BP2 by shares
            # of UNIT_COLS), so it steps those rows now, without a barrier.
            _l3_dense_step(&layers[0], <const floating*>L.E, X, M, alpha, beta, rows, pack,
                           tid, nt, UNIT_COLS)
            j = -1
            if own0:
                break
        cbp_team_wait(bar)
    # The group's barrier ends the mini-batch when no step is left (but for
    # own0, where the barrier after the next forward does).
    if _l3_steps_left(layers, s0, s1):
        for k in range(s1 - 1, s0 - 1, -1):
            _l3_step_any(&layers[k], <const floating*>(layers[k + 1].E if k + 1 < nl else Derr),
                         X if k == 0 else <const floating*>layers[k - 1].A, M, alpha, beta, rows,
                         pack, tid, nt)
        cbp_team_wait(bar)
    return total


# BP2 and the step of a dense layer in one pass where the kernel allows
# (cbp_bp2_step_ok); bp2_step_fused(False) plans them apart (tests: the
# same bits either way).
cdef bint FUSE_BP2_STEP = True


# A conv layer with patches sums its filters' gradient by halves of the
# examples (_l3_conv_half); conv_step_by_halves(False) plans it by filters
# over the whole mini-batch (tests: the sums differ, two added).
cdef bint CONV_STEP_HALVES = True


def conv_step_by_halves(value=None):
    """Whether plans made from now on sum a conv layer's filter gradient by halves of the mini-batch; set it with ``value``."""
    global CONV_STEP_HALVES
    if value is not None:
        CONV_STEP_HALVES = bool(value)
    return bool(CONV_STEP_HALVES)


# Dense rows padded to whole lines where a dense layer feeds another
# (_Plan3._pad_dense_rows); dense_rows_padded(False) plans them unpadded
# (tests: the same bits either way).
cdef bint PAD_DENSE_ROWS = True


# Dense layers of at least HALVES_FROM units run BP2 and their step by
# halves of W's rows where the layer below allows (_Plan3._halves); the
# sums then differ from BP2 by columns (two sums over o added).  In-process
# on the 2-vCPU VM, two threads, alternated with plans by columns (9,000
# pairs a net, 10 minutes): near, every net x0.99-1.01; apart, the dropout
# net's [640 -> 1000] and [1000 -> 1000] x1.26 (2853 -> 2266 µs a
# mini-batch), but basic_conv's [2880 -> 100] x0.96 and dbl_conv's
# [640 -> 100] x1.01: with 100 units, the halves' errors, which each thread
# adds on rows of its own, move as many lines between the cores as W's
# rows did.  bp2_halves_from(n) sets it for plans made from then on (tests).
cdef Py_ssize_t HALVES_FROM = 256


def dense_rows_padded(value=None):
    """Whether plans made from now on pad dense layers' rows to 64-byte lines; set it with ``value``."""
    global PAD_DENSE_ROWS
    if value is not None:
        PAD_DENSE_ROWS = bool(value)
    return bool(PAD_DENSE_ROWS)


def bp2_halves_from(value=None):
    """The fewest units of a dense layer that plans made from now on run by halves of the weight rows; set it with ``value``."""
    global HALVES_FROM
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"value must be an integer, not {type(value).__name__}")
        if value < 1:
            raise ValueError(f"value must be at least 1 (units), not {value}")
        HALVES_FROM = min(int(value), 1 << 62)
    return HALVES_FROM


def bp2_step_fused(value=None):
    """Whether plans made from now on fuse a dense layer's BP2 and step; set it with ``value``."""
    global FUSE_BP2_STEP
    if value is not None:
        FUSE_BP2_STEP = bool(value)
    return bool(FUSE_BP2_STEP)


cdef class _Plan3:
    """A network3 network's layers laid out for train_batches3 (made by plan3).

    Holds the arrays it points into.  ``draws`` is the dropout draws one
    mini-batch uses.
    """
    cdef Layer3* layers
    cdef int nl
    cdef public int threads
    cdef public Py_ssize_t M
    cdef public object dtype
    cdef public Py_ssize_t draws
    cdef public int last_team     # threads OpenMP started for the last run (for tests)
    cdef public list halves       # the dense layers run by halves of W's rows (for tests)
    cdef object keep            # the arrays pointed into
    cdef object Derr, packs, rows, lls
    cdef Py_ssize_t rows_ld

    def __cinit__(self):
        self.layers = NULL

    def __dealloc__(self):
        if self.layers != NULL:
            free(self.layers)

    def __init__(self, entries, Py_ssize_t M, int threads, dtype):
        cdef Layer3* L
        cdef int j
        self.nl = len(entries)
        self.M = M
        self.threads = max(1, threads)
        self.dtype = np.dtype(dtype)
        self.layers = <Layer3*>calloc(max(1, self.nl), sizeof(Layer3))
        if self.layers == NULL:
            raise MemoryError()
        self.keep = []
        self.draws = 0
        self.last_team = 0

        def ptr(a):
            if a is None:
                return 0
            self.keep.append(a)
            return a.__array_interface__["data"][0]

        def ld(a):
            return a.shape[1] if a is not None and a.ndim == 2 else 0

        for j, e in enumerate(entries):
            L = &self.layers[j]
            L.kind = L3_CONV if e["kind"] == "conv" else L3_DENSE
            L.act = e["act"]
            L.act_below = e["act_below"]
            L.need_input = e["need_input"]
            L.fused = (e["kind"] != "conv" and L.need_input and cbp_bp2_step_ok(M)
                       and e["n_out"] * M <= PACK and FUSE_BP2_STEP)
            L.masked = e.get("p_dropout", 0.0) > 0
            L.keep_below = _keep_below(e.get("p_dropout", 0.0))
            L.draw0 = self.draws
            if L.masked:
                self.draws += M * e["n_in"]
            L.n_in = e["n_in"]
            L.n_out = e["n_out"]
            if L.kind == L3_CONV:
                L.C, L.H, L.Wd, L.K, L.F, L.ph, L.pw = (e["C"], e["H"], e["Wd"], e["K"], e["F"],
                                                        e["ph"], e["pw"])
                L.CKK = L.C * L.K * L.K
                L.Oy = L.H - L.K + 1
                L.Ox = L.Wd - L.K + 1
                L.N = L.C * L.H * L.Wd
                L.Pf = L.Oy * L.Wd
                L.Pq = (L.Oy // L.ph) * (L.Ox // L.pw)
                L.R = L.Oy * L.Ox
                L.patches = L.CKK >= PATCHES_FROM
            L.W = <void*><size_t>ptr(e["W"])
            L.b = <void*><size_t>ptr(e["b"])
            L.Z = <void*><size_t>ptr(e["Z"])
            L.A = <void*><size_t>ptr(e["A"])
            L.mask = <void*><size_t>ptr(e.get("mask"))
            L.Xm = <void*><size_t>ptr(e.get("Xm"))
            L.E = <void*><size_t>ptr(e.get("E"))
            L.Dt = <void*><size_t>ptr(e.get("Dt"))
            L.WfT = <void*><size_t>ptr(e.get("WfT"))
            L.Dz = <void*><size_t>ptr(e.get("Dz"))
            L.G = <void*><size_t>ptr(e.get("G"))
            L.prows = <void*><size_t>ptr(e.get("prows"))
            ptr(e.get("P"))             # the patches prows points into
            L.zeros = <void*><size_t>ptr(e.get("zeros"))
            L.xpad = <void*><size_t>ptr(e.get("xpad"))
            L.dxpad = <void*><size_t>ptr(e.get("dxpad"))
            L.rows = <void*><size_t>ptr(e.get("rows"))
            L.Et = <void*><size_t>ptr(e.get("Et"))
            L.pool = <void*><size_t>ptr(e.get("pool"))
            L.ld_xpad = ld(e.get("xpad"))
            L.ld_rows = ld(e.get("rows"))
            L.ld_Et = ld(e.get("Et"))
            L.ld_pool = ld(e.get("pool"))
        self._pad_dense_rows(M)
        self._halves(M)
        self._conv_halves(M)
        self.Derr = np.empty((M, entries[self.nl - 1]["n_out"]), dtype=self.dtype)
        self.lls = np.empty(M, dtype=np.float64)      # each example's ln a[y]
        self.packs = np.empty((self.threads, PACK), dtype=self.dtype)
        # each thread's row pointers on lines of their own (_l3_run aligns
        # the start): every phase rewrites them
        self.rows_ld = (M + 7) // 8 * 8
        self.rows = np.empty(self.threads * self.rows_ld + 8, dtype=np.intp)

    cdef _pad_dense_rows(self, Py_ssize_t M):
        # A dense layer under a dense one gets its output (z, a) in rows
        # padded to whole 64-byte lines, and so do the layer above's mask and
        # masked input (ld_z below = ld_x above): the team's shares of units,
        # cut at multiples of UNIT_COLS (or of UNIT_ROWS: 48 of the book's
        # 100 units), then rarely write into one line from two threads.  With
        # rows of 100 floats, the line holding a row's last 4 outputs (the
        # second thread's) and the next row's first 12 (the first thread's)
        # took turns between the cores.  Measured on the 2-vCPU VM, two
        # threads, in-process against unpadded rows: shallow and basic_conv
        # x1.02, the other two x1.00-1.01.
        cdef Layer3* L
        cdef Layer3* below
        cdef int j
        cdef Py_ssize_t per_line = 64 // self.dtype.itemsize
        for j in range(self.nl):
            L = &self.layers[j]
            below = &self.layers[j - 1] if j > 0 else NULL
            L.ld_z = L.n_out
            L.ld_x = below.ld_z if below != NULL and below.kind == L3_DENSE else L.n_in
            if (PAD_DENSE_ROWS and L.kind == L3_DENSE and j + 1 < self.nl
                    and self.layers[j + 1].kind == L3_DENSE and L.n_out % per_line):
                L.ld_z = (L.n_out + per_line - 1) // per_line * per_line
                L.Z = L.A = self._lines(M, L.ld_z)
            if L.kind == L3_DENSE and L.masked and L.ld_x != L.n_in:
                L.mask = self._lines(M, L.ld_x)
                L.Xm = self._lines(M, L.ld_x)

    cdef _halves(self, Py_ssize_t M):
        # Which dense layers run BP2 and their step by halves of W's rows
        # (_l3_dense_halves): those whose error the layer below reads only in
        # the slices it needs (a conv layer, its examples; a layer by halves,
        # its half's columns), where _l3_finish adds the halves.  The halves
        # are the two-thread team's forward shares, whatever the team.
        cdef Layer3* L
        cdef int j
        cdef Py_ssize_t lo, hi
        self.halves = []
        for j in range(1, self.nl):
            L = &self.layers[j]
            _share(L.n_out, UNIT_ROWS, 0, 2, &lo, &hi)
            L.h = hi
            L.ws = (L.n_out >= HALVES_FROM and L.kind == L3_DENSE and L.need_input and 0 < L.h < L.n_out
                    and (self.layers[j - 1].kind == L3_CONV or self.layers[j - 1].ws))
            if L.ws:
                self.halves.append(j)
                L.E2 = self._lines(M, L.n_in)
                L.Dg = self._lines(M, L.n_out)

    cdef _conv_halves(self, Py_ssize_t M):
        # Conv layers with patches sum their filters' gradient by halves of
        # the examples (_l3_conv_half), each half's sum on lines of its own.
        cdef Layer3* L
        cdef int j
        cdef Py_ssize_t per_line = 64 // self.dtype.itemsize
        for j in range(self.nl):
            L = &self.layers[j]
            L.gh = L.kind == L3_CONV and L.patches and CONV_STEP_HALVES
            if L.gh:
                L.ld_gh = (L.F * L.CKK + per_line - 1) // per_line * per_line
                L.Gh = self._lines(2, L.ld_gh)

    cdef void* _lines(self, Py_ssize_t rows, Py_ssize_t ld):
        # rows x ld of the plan's dtype from a 64-byte boundary, kept by the plan
        cdef Py_ssize_t per_line = 64 // self.dtype.itemsize
        a = np.zeros(rows * ld + per_line, dtype=self.dtype)
        self.keep.append(a)
        return <void*>((<size_t>a.__array_interface__["data"][0] + 63) & ~(<size_t>63))


def plan3(entries, Py_ssize_t M, int threads, dtype):
    """The layers of a network3 network laid out for train_batches3, for ``threads`` threads.

    ``entries``: one dict per layer (the layers' ``team_entry``), whose arrays
    the plan keeps and points into; ``M`` the mini-batch size.
    """
    return _Plan3(entries, M, threads, dtype)


cdef double _l3_run(_Plan3 plan, const floating* X, const int32_t* y, Py_ssize_t first,
                    Py_ssize_t last, floating alpha, floating beta, uint64_t seed,
                    uint64_t counter, int nt, int* stopped) except *:
    # Mini-batches first..last-1 of (X, y) by a team of at most nt threads.
    cdef Py_ssize_t M = plan.M, I = plan.layers[0].n_in, k, k0
    cdef floating* Derr = <floating*><size_t>plan.Derr.__array_interface__["data"][0]
    cdef floating* packs = <floating*><size_t>plan.packs.__array_interface__["data"][0]
    cdef double* lls = <double*><size_t>plan.lls.__array_interface__["data"][0]
    cdef Py_ssize_t* rowsp = <Py_ssize_t*>((<size_t>plan.rows.__array_interface__["data"][0]
                                            + 63) & ~(<size_t>63))
    cdef Py_ssize_t rows_ld = plan.rows_ld
    cdef Layer3* layers = plan.layers
    cdef int nl = plan.nl
    cdef uint64_t draws = <uint64_t>plan.draws
    cdef double total = 0, c = 0
    cdef double tot[1]
    cdef int opened[2]
    cdef int stop[1]
    cdef cbp_team_barrier bar
    cdef cbp_team_barrier* barp = &bar
    cdef int tid = 0, team = 1
    cdef Py_ssize_t chunk = 16
    cdef Py_ssize_t k1
    stop[0] = 0
    opened[0] = opened[1] = 0
    bar.count = bar.generation = 0
    bar.n = 1
    if nt <= 1:
        plan.last_team = 1
        with nogil:
            k0 = first
            while k0 < last and stop[0] == 0:
                k1 = min(last, k0 + chunk)
                for k in range(k0, k1):
                    total += _l3_batch(layers, nl, X + k * M * I, y + k * M, M, Derr, alpha, beta,
                                       seed, counter + <uint64_t>(k - first) * draws,
                                       <const floating**>rowsp, packs, lls, 0, 1, barp)
                k0 = k1
                if k0 < last:
                    with gil:
                        stop[0] = _check_signals() != 0
        stopped[0] = stop[0]
        return total
    bar.n = nt
    tot[0] = 0
    k = k0 = k1 = 0
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        team = openmp.omp_get_num_threads()
        if tid == 0:
            barp.n = team
            opened[1] = team
            cbp_team_open(&opened[0])
        else:
            cbp_team_await_open(&opened[0])
        k0 = first
        while k0 < last:
            k1 = min(last, k0 + chunk)
            for k in range(k0, k1):
                c = _l3_batch(layers, nl, X + k * M * I, y + k * M, M, Derr, alpha, beta, seed,
                              counter + <uint64_t>(k - first) * draws,
                              <const floating**>(rowsp + tid * rows_ld), packs + tid * PACK, lls, tid,
                              team, barp)
                if tid == 0:
                    tot[0] += c
            k0 = k1
            if k0 < last:
                # Ctrl-C lands here, between mini-batches, for the whole team
                if tid == 0:
                    with gil:
                        if _check_signals() != 0:
                            stop[0] = 1
                cbp_team_wait(barp)
                if stop[0]:
                    break
    stopped[0] = stop[0]
    plan.last_team = opened[1]
    return tot[0]


def train_batches3(_Plan3 plan, const floating[:, ::1] X, const int32_t[::1] y, Py_ssize_t first,
                   Py_ssize_t last, double alpha, double beta, uint64_t seed, uint64_t counter,
                   int num_threads=1):
    """Mini-batches ``first``..``last``-1 of (X, y) (rows k·M..), one SGD step each.

    The step of network3.Network: w <- β w + α ∂(Σ_x C_x)/∂w, b <- b + α
    ∂(Σ_x C_x)/∂b with α = −η/M; mini-batch k's dropout draws start at
    ``counter`` + (k − first)·plan.draws.  Returns the Σ over the
    mini-batches of Σ_x −ln a_x[y_x].  Ctrl-C stops the run between
    mini-batches (KeyboardInterrupt; the network as a mini-batch left it).
    """
    cdef int stopped = 0
    cdef double total
    cdef Py_ssize_t M = plan.M
    # one thread in a forked child (_team.pxi): a plan made before the fork
    # may name a team, and the child's first team would never start
    cdef int nt = 1 if _forked_child else max(1, min(num_threads, plan.threads))
    assert X.shape[1] == plan.layers[0].n_in and y.shape[0] == X.shape[0]
    assert 0 <= first <= last and last * M <= X.shape[0]
    assert np.dtype(plan.dtype).itemsize == sizeof(floating)
    if last == first:
        return 0.0
    total = _l3_run(plan, &X[0, 0], &y[0], first, last, <floating>alpha, <floating>beta, seed,
                    counter, nt, &stopped)
    if stopped:
        _reraise()
    return total
