"""
Choosing the learning rate η
============================

Chapter 3 compares learning rates by the training cost: too small and the
cost falls slowly, too large and it stalls or oscillates.  As in the book:
the cross-entropy cost, mini-batches of 10, 1,000 training images, and
η = 0.025, 0.25 and 2.5; :func:`cbp.plot.plot_history` takes the list of
histories and a label for each.
"""
import cbp
from cbp.datasets import load_sample

(X, y), (X_test, y_test) = load_sample()
X, y = X[:1000], y[:1000]

etas = [0.025, 0.25, 2.5]
histories = []
for eta in etas:
    net = cbp.Network([784, 30, 10], cost="cross_entropy", init="scaled", seed=0)
    histories.append(net.SGD((X, y), 20, 10, eta, test_data=(X_test, y_test), verbose=False))
for eta, h in zip(etas, histories):
    print(f"eta {eta:>6}: final training cost {h['cost'][-1]:.3f}, "
          f"test accuracy {h['accuracy'][-1]:.1%}")

cbp.plot.plot_history(histories, labels=[f"η = {eta}" for eta in etas])
