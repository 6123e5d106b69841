"""Where cbp writes (issue 18): never through another user's link, CLI outputs checked first."""
import os
import stat

import numpy as np
import pytest

import cbp
import cbp.io
from cbp.cli import main

OTHER_UID = 54321


def plant_link(monkeypatch, link, target):
    """A symbolic link at ``link`` to ``target`` owned by another user (really, as root)."""
    os.symlink(target, link)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.lchown(link, OTHER_UID, OTHER_UID)
        return
    real_lstat = os.lstat

    def lstat(path, *args, **kwargs):
        st = real_lstat(path, *args, **kwargs)
        if os.path.abspath(os.fspath(path)) == os.path.abspath(os.fspath(link)):
            fields = list(st)
            fields[stat.ST_UID] = OTHER_UID
            return os.stat_result(fields)
        return st
    monkeypatch.setattr(os, "lstat", lstat)


@pytest.fixture
def sticky(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    return shared


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX owners")
def test_save_never_replaces_through_another_users_link_in_a_sticky_directory(
        tmp_path, sticky, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = sticky / "model.npz"
    plant_link(monkeypatch, link, victim)
    net = cbp.Network([3, 2], seed=0)
    with pytest.raises(PermissionError, match="owned by another user in a sticky"):
        net.save(link)
    assert victim.read_text() == "precious"
    assert os.path.islink(link)
    # a dangling link: its target is not created either
    dangling = sticky / "other.npz"
    plant_link(monkeypatch, dangling, tmp_path / "created.npz")
    with pytest.raises(PermissionError):
        cbp.io.save(net, dangling)
    assert not (tmp_path / "created.npz").exists()
    assert not [p for p in sticky.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX owners")
def test_own_links_and_links_outside_sticky_directories_are_followed(tmp_path, sticky,
                                                                     monkeypatch):
    net = cbp.Network([3, 2], seed=0)
    mine = sticky / "mine.npz"
    os.symlink(tmp_path / "a.npz", mine)
    net.save(mine)
    assert cbp.load(tmp_path / "a.npz").sizes == [3, 2] and os.path.islink(mine)
    plain = tmp_path / "plain"
    plain.mkdir()
    theirs = plain / "theirs.npz"
    plant_link(monkeypatch, theirs, tmp_path / "b.npz")
    net.save(theirs)
    assert cbp.load(tmp_path / "b.npz").sizes == [3, 2]


# -- cbp train: every output checked before training --------------------------------


def train_fails_fast(capsys, *args):
    code = main(["train", "--epochs", "1", *map(str, args)])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Epoch" not in out, "training ran before the output was checked"
    return err


def test_save_to_a_fifo_is_refused_before_training(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "is a FIFO (named pipe), not a regular file" in train_fails_fast(capsys, "--save", fifo)


def test_save_into_a_directory_that_cannot_be_written_is_refused_before_training(capsys):
    # /proc refuses new files even to root.
    assert "cannot write in /proc" in train_fails_fast(capsys, "--save", "/proc/cbp-model.npz")


def test_a_plot_format_matplotlib_cannot_write_is_refused_before_training(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    err = train_fails_fast(capsys, "--plot", tmp_path / "curves.xyz")
    assert "not .xyz" in err and ".png" in err


@pytest.mark.parametrize("flags", [("--save", "--plot"), ("--plot", "--plot-speed"),
                                   ("--plot-weights", "--save")])
def test_two_outputs_on_one_path_are_refused(tmp_path, capsys, flags):
    path = tmp_path / "same.png"
    path.write_bytes(b"keep")
    args = []
    for flag in flags:
        args += [flag, path]
    err = train_fails_fast(capsys, *args)
    assert "both write" in err and flags[0] in err and flags[1] in err
    assert path.read_bytes() == b"keep"


def test_two_outputs_through_a_link_to_one_file_are_refused(tmp_path, capsys):
    (tmp_path / "m.npz").write_bytes(b"keep")
    os.symlink(tmp_path / "m.npz", tmp_path / "alias.npz")
    err = train_fails_fast(capsys, "--save", tmp_path / "m.npz", "--plot",
                           tmp_path / "alias.npz")
    assert "both write" in err


def test_distinct_outputs_still_train_and_write(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code = main(["train", "--epochs", "1", "--quiet", "--save", str(tmp_path / "m.npz"),
                 "--plot", str(tmp_path / "c.svg")])
    assert code == 0, capsys.readouterr()
    assert cbp.load(tmp_path / "m.npz").sizes == [784, 30, 10]
    assert (tmp_path / "c.svg").read_bytes().lstrip().startswith(b"<?xml")
    assert np.isfinite(cbp.load(tmp_path / "m.npz").weights[0]).all()
