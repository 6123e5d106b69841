#!/usr/bin/env bash
# Build cbp's core with AddressSanitizer in a scratch copy of the working tree
# and run a subset of the tests against it.
#
#   tools/asan.sh                        # the default subset (a few minutes)
#   tools/asan.sh tests/numerics/test_threads.py  # any pytest arguments instead
#
# The interpreter is not built with ASan, so the runtime is preloaded
# (LD_PRELOAD=libasan.so, from the compiler that builds the core).  Leak
# detection is off: CPython and NumPy keep memory until exit by design, and
# tools/memcheck.sh covers leaks.  Any out-of-bounds access, use after free
# or double free in the core (kernels included, with every thread of a
# training team) aborts the run with ASan's report; the exit status is
# pytest's.  Environment: ASAN_OUT (scratch directory; default a new
# temporary one), CC (compiler; default gcc), CBP_FUZZ_EXAMPLES (default 10).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${ASAN_OUT:-$(mktemp -d)}"
cc="${CC:-gcc}"
runtime="$("$cc" -print-file-name=libasan.so)"
[ -e "$runtime" ] || { echo "asan.sh: $cc has no libasan.so" >&2; exit 2; }

# A copy of the tree as it is (tracked files, with uncommitted edits), built
# in place: nothing of the checkout's own build is reused.
mkdir -p "$out/src"
(cd "$repo" && git ls-files -z | grep -zv '^src/cbp/.*\.c$' | xargs -0 tar -cf - ) \
    | tar -xf - -C "$out/src"
cd "$out/src"
echo "asan.sh: building in $out/src with $cc and -fsanitize=address"
CC="$cc" CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g" \
    LDFLAGS="-fsanitize=address" python setup.py build_ext --inplace -q >"$out/build.log" 2>&1 \
    || { tail -30 "$out/build.log"; exit 2; }

if [ "$#" -eq 0 ]; then
    # The kernels and the drivers (threads, odd shapes, every activation/cost
    # pair), the public entry points (fuzz), gradients and the hardening tests
    # that do not measure time or memory.
    set -- tests/numerics/test_threads.py tests/numerics/test_equivalence.py tests/numerics/test_gradients.py \
           tests/robustness/test_fuzz.py tests/robustness/test_hardening.py \
           -k "not sigint and not memory_stays_flat and not two_threads"
fi

export CBP_FUZZ_EXAMPLES="${CBP_FUZZ_EXAMPLES:-10}"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
export PYTHONPATH="$out/src/src${PYTHONPATH:+:$PYTHONPATH}"
LD_PRELOAD="$runtime" python -c 'import cbp; print("asan.sh: cbp from", cbp.__file__)'
status=0
LD_PRELOAD="$runtime" python -m pytest -q -p no:cacheprovider "$@" || status=$?
echo "asan.sh: pytest under AddressSanitizer exited with status $status"
exit "$status"
