"""The trace and the plots as a notebook shows them: executed with nbclient.

The notebook is built here with nbformat and run in a fresh IPython kernel,
as Jupyter runs it; the assertions read the outputs Jupyter would display.
"""

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

CELLS = [
    # 0: a cell ending in the trace
    "from cbp.explain import explain, worked_example\n"
    "trace = explain(*worked_example(), eta=0.5)\n"
    "trace",
    # 1: no hidden layer, cross-entropy
    "import numpy as np, cbp\n"
    "flat = cbp.Network([2, 2], cost='cross_entropy', seed=0)\n"
    "flat.explain([1.0, 0.0], [0.0, 1.0])",
    # 2: a cell ending in plot_history
    "rng = np.random.default_rng(0)\n"
    "X, y = rng.random((200, 4)), rng.integers(0, 2, 200)\n"
    "h = cbp.Network([4, 5, 2], seed=0).SGD((X, y), 3, 10, 1.0, test_data=(X, y), "
    "verbose=False)\n"
    "cbp.plot.plot_history(h)",
    # 3: the same figure, assigned, then shown again in the next cell
    "fig = cbp.plot.plot_history(h, fontsize=18, dpi=60)",
    "fig",
]


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": "."}})
    client.execute()
    return nb


def _data(cell):
    return [out.get("data", {}) for out in cell.outputs
            if out.output_type in ("execute_result", "display_data")]


def test_trace_is_typeset_html(executed):
    (data,) = _data(executed.cells[0])
    html = data["text/html"]
    # Equations are TeX for the notebook's MathJax, between \( \).
    assert html.count(r"\(") == html.count(r"\)") > 20
    for piece in [r"z^{2} = W^{2} a^{1} + b^{2}",
                  r"\delta^{3} = \nabla_a C \odot \sigma'(z^{3})",
                  r"\text{BP3: }", r"\text{BP4: }",
                  r"\left((W^{3})^{\mathsf T} \delta^{3}\right) \odot \sigma'(z^{2})",
                  r"W^l \leftarrow W^l - \eta \frac{\partial C}{\partial W^l}",
                  r"\begin{bmatrix}-0.1054 &amp; -0.0492\end{bmatrix}",
                  "η = 0.5", "Output error (BP1)", "Backpropagate the error, BP2",
                  "net.weights[l−2]"]:
        assert piece.replace("&amp;", "&") in html.replace("&amp;", "&"), piece
    # W^3 − η ∂C/∂W^3 for η = 0.5: 0.51 − 0.5 · (−0.0309) = 0.5254...
    assert "0.5254" in html
    # Markdown and LaTeX come along for front ends that prefer them.
    assert "$$" in data["text/markdown"] and r"\begin{array}" in data["text/latex"]
    assert data["text/plain"].startswith("<Trace of a [2, 3, 2] network")


def test_no_hidden_layer_and_cross_entropy_bp1(executed):
    (data,) = _data(executed.cells[1])
    html = data["text/html"]
    assert "no hidden layer" in html and "sigmoid hidden" not in html
    assert r"\nabla_a C = \frac{a^{2} - y}{a^{2} \odot (1 - a^{2})}" in html
    assert r"\sigma'(z^{2}) = a^{2} \odot (1 - a^{2})" in html


def test_plot_history_shown_once(executed):
    images = [d for d in _data(executed.cells[2]) if "image/png" in d]
    assert len(images) == 1
    # Assigned: pyplot shows it once; displayed again in a later cell: once more.
    assert len([d for d in _data(executed.cells[3]) if "image/png" in d]) == 1
    assert len([d for d in _data(executed.cells[4]) if "image/png" in d]) == 1


def test_no_errors(executed):
    for cell in executed.cells:
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
        assert not [o for o in cell.outputs
                    if o.output_type == "stream" and o.name == "stderr"], cell.source
