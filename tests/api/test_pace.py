"""cbp._pace: team or one thread, whichever ran faster, the slower retried ever more rarely."""
from cbp import _pace


def test_nothing_to_choose_for_one_thread():
    paces = {}
    assert _pace.choose(paces, "shape", 1) == (1, None)
    assert paces == {}


def test_each_side_is_timed_once_then_the_faster_kept():
    paces = {}
    threads, pace = _pace.choose(paces, "shape", 2)
    assert threads == 2
    pace[2] = 3.0
    threads, same = _pace.choose(paces, "shape", 2)
    assert threads == 1 and same is pace
    pace[1] = 2.9                       # one thread a little faster: the team every 8th run
    picks = [_pace.choose(paces, "shape", 2)[0] for _ in range(62)]
    assert picks.count(2) == 8 and picks.count(1) == 54
    pace[2] = 1.0                       # now the team is faster
    assert {_pace.choose(paces, "shape", 2)[0] for _ in range(7)} == {2}


def test_the_slower_side_is_retried_the_more_rarely_the_slower_it_was():
    for ratio, every in ((2.0, 16), (20.0, 160), (1000.0, 512)):
        paces = {}
        pace = _pace.choose(paces, "shape", 2)[1]
        pace[2] = ratio                 # the team `ratio` times slower
        _pace.choose(paces, "shape", 2)
        pace[1] = 1.0
        picks = [_pace.choose(paces, "shape", 2)[0] for _ in range(2 * 512)]
        assert picks.count(2) == (2 * 512 + 2) // every, ratio


def test_the_table_keeps_the_newest_shapes():
    paces = {}
    for k in range(10):
        _pace.choose(paces, k, 2, limit=4)
    assert list(paces) == [6, 7, 8, 9]


def test_a_pace_is_the_mean_of_the_last_time_and_the_pace_before():
    pace = {"runs": 0}
    _pace.record(pace, 2, 4.0)
    assert pace[2] == 4.0                       # the first time as it came
    _pace.record(pace, 2, 3.0)
    assert pace[2] == 3.5
    _pace.record(pace, 1, 5.0)
    assert pace[1] == 5.0 and pace[2] == 3.5
    _pace.record(pace, 2, 7.0)                  # slower: averaged
    assert pace[2] == 5.25


def test_a_run_twice_as_fast_replaces_the_pace_after_a_passing_load():
    # A team timed while NumPy's BLAS threads spun on its second core, 12x
    # slower than one thread; its retry after the load passed, as fast as
    # it can be, takes it back at once (averaged, it took four more retries).
    paces = {}
    pace = _pace.choose(paces, "shape", 2)[1]
    _pace.record(pace, 2, 0.75)
    _pace.choose(paces, "shape", 2)
    _pace.record(pace, 1, 0.06)
    assert _pace.choose(paces, "shape", 2)[0] == 1
    _pace.record(pace, 2, 0.03)
    assert pace[2] == 0.03
    assert {_pace.choose(paces, "shape", 2)[0] for _ in range(7)} == {2}
    _pace.record(pace, 2, 0.016)                # not quite twice as fast: averaged
    assert abs(pace[2] - 0.023) < 1e-12


def test_one_slow_run_does_not_flip_the_choice_but_a_busy_core_does():
    paces = {}
    pace = _pace.choose(paces, "shape", 2)[1]
    _pace.record(pace, 2, 2.0)
    _pace.choose(paces, "shape", 2)
    _pace.record(pace, 1, 3.0)                  # the team 1.5x faster
    _pace.record(pace, 2, 3.5)                  # one run 1.75x slower than the team's pace
    assert _pace.choose(paces, "shape", 2)[0] == 2
    _pace.record(pace, 2, 40.0)                 # another process took a core: 20x slower
    assert _pace.choose(paces, "shape", 2)[0] == 1


def test_a_settling_side_is_timed_again_and_its_times_replace_each_other():
    paces = {}
    threads, pace = _pace.choose(paces, "shape", 2, settle=3)
    assert threads == 2
    for seconds in (9.0, 5.0, 1.0):             # a team warming up
        _pace.record(pace, 2, seconds)
        assert pace[2] == seconds               # replaced, not averaged
        threads, _ = _pace.choose(paces, "shape", 2)
    assert threads == 1                         # the team settled at its third time
    for seconds in (4.0, 3.0):
        _pace.record(pace, 1, seconds)
        assert _pace.choose(paces, "shape", 2)[0] == 1
    _pace.record(pace, 1, 2.0)
    assert pace[1] == 2.0
    assert _pace.choose(paces, "shape", 2)[0] == 2          # both settled: the faster
    _pace.record(pace, 2, 3.0)
    assert pace[2] == 2.0                                   # settled: the mean rule again
