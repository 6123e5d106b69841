"""
The vanishing gradient: speed of learning per layer
===================================================

Chapter 5 measures how fast each layer of a deep sigmoid network learns by
the size of its gradient: the norm of the mean bias gradient,
‖(1/n) Σ_x ∂C_x/∂b^l‖, over the first 1,000 training images, before each
epoch (the book's ``generate_gradient.py``).  ``monitor_learning_speed=True``
records exactly that (the first record is the untrained network), and
:func:`cbp.plot.plot_learning_speed` draws it.

The setup is the book's: network2's networks (cross-entropy cost, weights
N(0, 1/n_in)) with 2, 3 and 4 hidden layers of 30 units, trained on those
1,000 images by full-batch gradient descent (m = 1000, η = 0.1, λ = 5.0), for
200 epochs here (the book runs 500).  At the start each hidden layer learns
about four to five times more slowly than the one above it (0.061 and 0.280
for two hidden layers, as ``generate_gradient.py`` prints on this network),
and the gap stays through training: the vanishing gradient.  (Hidden layer
k is layer k + 1 in cbp's numbering, input layer 1.)
"""
import matplotlib.pyplot as plt

import cbp
from cbp.datasets import load_sample

(X, y), _ = load_sample()
X, y = X[:1000], y[:1000]          # generate_gradient.py's td = full_td[:1000]

fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained", sharey=True)
for ax, hidden in zip(axes, (2, 3, 4)):
    net = cbp.Network([784] + [30] * hidden + [10], cost="cross_entropy", init="scaled",
                      seed=0)
    history = net.SGD((X, y), 200, 1000, 0.1, lmbda=5.0, verbose=False,
                      monitor_learning_speed=True)
    cbp.plot.plot_learning_speed(history, ax=ax)
    first, last = history["learning_speed"][0], history["learning_speed"][-1]
    print(f"{hidden} hidden layers: before training "
          + ", ".join(f"{s:.3f}" for s in first[:-1])
          + "; before the last epoch " + ", ".join(f"{s:.1e}" for s in last[:-1]))
