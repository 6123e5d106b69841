#!/usr/bin/env bash
# Run a representative subset of cbp's tests under valgrind memcheck and report
# the memory errors and definite leaks that involve cbp's compiled core.
#
#   tools/memcheck.sh                       # the default subset (a few minutes)
#   tools/memcheck.sh tests/api/test_model.py     # any pytest arguments instead
#
# It uses the `python` on PATH, which must have cbp (and pytest, hypothesis)
# installed: the release build tests the code as shipped; a debug build
# (CBP_DEBUG=1 pip install .) adds line numbers to the report.
#
# CPython and NumPy do not free everything at exit and have a little noise of
# their own, so valgrind's own exit status is not used.  Instead every error
# and every "definitely lost" record is read from valgrind's log and counted
# against cbp when one of its stack frames is in the core: the extension
# module (_core.*.so), its Cython functions (__pyx_*) or its kernels (cbp_*).
# The exit status is 1 when any such error or leak is found, 0 otherwise.
# Environment: MEMCHECK_OUT (where the logs go; default a new temporary
# directory), CBP_FUZZ_EXAMPLES (hypothesis examples per fuzz test; default 10).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${MEMCHECK_OUT:-$(mktemp -d)}"
mkdir -p "$out"
command -v valgrind >/dev/null || { echo "memcheck.sh: valgrind is not installed" >&2; exit 2; }

if [ "$#" -eq 0 ]; then
    # Every public entry point (fuzz), the float limits, divergence and its
    # replay, interrupts from Python, the gradients and the API tests.  Left
    # out: the timing-based thread test, the subprocess SIGINT test and the
    # RSS/tracemalloc test (valgrind's own allocator makes them meaningless).
    set -- "$repo/tests/robustness/test_fuzz.py" "$repo/tests/numerics/test_gradients.py" \
           "$repo/tests/api/test_model.py" "$repo/tests/robustness/test_hardening.py" \
           -k "not two_threads and not sigint and not memory_stays_flat"
fi

export PYTHONMALLOC=malloc              # every Python allocation through malloc: visible
export CBP_FUZZ_EXAMPLES="${CBP_FUZZ_EXAMPLES:-10}"
cd "$out"                               # not the checkout: import the installed cbp
echo "memcheck.sh: cbp from $(python -c 'import cbp; print(cbp.__file__)')"
echo "memcheck.sh: logs in $out"
status=0
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite --num-callers=40 --track-origins=no \
    --log-file="$out/memcheck.%p.log" \
    python -m pytest -q -p no:cacheprovider "$@" || status=$?
echo "memcheck.sh: pytest under valgrind exited with status $status"

python - "$out" <<'EOF'
import glob, re, sys

ours = re.compile(r"_core\.cpython|_core\.so|__pyx_|\bcbp_")
errors = {"cbp": [], "other": 0}
leaks = {"cbp": [], "other": 0}
lost = {"cbp": 0, "other": 0}
for path in sorted(glob.glob(sys.argv[1] + "/memcheck.*.log")):
    text = open(path, errors="replace").read()
    for block in re.split(r"\n==\d+== ?\n", text):
        lines = [re.sub(r"^==\d+== ?", "", l) for l in block.splitlines()]
        lines = [l for l in lines if l.strip()]
        if not lines:
            continue
        head = lines[0]
        frames = [l for l in lines[1:] if l.lstrip().startswith(("at 0x", "by 0x"))]
        if not frames:
            continue
        mine = any(ours.search(f) for f in frames)
        if "definitely lost" in head:
            size = int(re.match(r"([\d,]+) ", head).group(1).replace(",", ""))
            lost["cbp" if mine else "other"] += size
            if mine:
                leaks["cbp"].append("\n".join(lines[:14]))
            else:
                leaks["other"] += 1
        elif re.match(r"(Invalid|Conditional jump|Use of uninitialised|Mismatched|"
                      r"Source and destination overlap|Syscall param|Argument|"
                      r"Address 0x)", head):
            if mine:
                errors["cbp"].append("\n".join(lines[:14]))
            else:
                errors["other"] += 1
for kind, found in (("memory errors", errors), ("definite leaks", leaks)):
    for report in found["cbp"]:
        print(f"\n--- {kind[:-1]} in cbp ---\n{report}")
print(f"\nmemcheck.sh: memory errors involving cbp's core: {len(errors['cbp'])} "
      f"(elsewhere: {errors['other']})")
print(f"memcheck.sh: definite leaks involving cbp's core: {len(leaks['cbp'])} records, "
      f"{lost['cbp']} bytes (elsewhere: {leaks['other']} records, {lost['other']} bytes)")
sys.exit(1 if errors["cbp"] or leaks["cbp"] else 0)
EOF
