"""
The vanishing gradient: speed of learning per layer
===================================================

Chapter 5 measures how fast each layer of a deep sigmoid network learns by
the size of its gradient, the mean ``|∂C/∂b^l|`` over its units.  Training with
``monitor_learning_speed=True`` records it after every epoch, on a fixed
subset of the training data (1,000 of the 4,000 images).  With 2, 3 and 4
hidden layers of 30 units (quadratic cost, m = 10, η = 0.1) the picture is
the book's: each layer down learns more slowly than the one above it, and
the first hidden layer several times more slowly than the last.  (The first
layer is the slowest with every seed tried; with some seeds two middle
layers of the 4-layer net swap places after a few epochs.)  Deeper is not
better here: after 6 epochs all three nets are below 40% test accuracy,
where the first example's 784-30-10 net (η = 3) is at about 85%.
"""
import warnings

import matplotlib.pyplot as plt

import cbp
from cbp.datasets import load_sample

(X, y), (X_test, y_test) = load_sample()

# These nets start slowly: after the first epochs their cost is still no
# better than always answering the mean target, and cbp says so with a
# TrainingWarning.  That slow start is what this example is about.
warnings.simplefilter("ignore", cbp.TrainingWarning)

fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained", sharey=True)
for ax, hidden in zip(axes, (2, 3, 4)):
    net = cbp.Network([784] + [30] * hidden + [10], seed=0)
    history = net.SGD((X, y), 6, 10, 0.1, test_data=(X_test, y_test), verbose=False,
                      monitor_learning_speed=True)
    cbp.plot.plot_learning_speed(history, ax=ax)
    last = history["learning_speed"][-1]
    print(f"{hidden} hidden layers, last epoch: "
          + ", ".join(f"layer {l + 1} {s:.2e}" for l, s in enumerate(last[:-1]))
          + f"; test accuracy {history['accuracy'][-1]:.1%}")
