"""
Learning curves
===============

Chapter 1's network, 784-30-10 with sigmoid units and the quadratic cost,
trained by mini-batch SGD (m = 10, η = 3).  The history that
:meth:`cbp.Network.SGD` returns holds the cost seen during each epoch, the
test cost and the test accuracy; :func:`cbp.plot.plot_history` draws them.
"""
import cbp
from cbp.datasets import load_sample

(X, y), (X_test, y_test) = load_sample()
net = cbp.Network([784, 30, 10], seed=0)
history = net.SGD((X, y), epochs=15, mini_batch_size=10, eta=3.0,
                  test_data=(X_test, y_test), verbose=False)
print(f"test accuracy after {len(history['epoch'])} epochs: {history['accuracy'][-1]:.1%}")

cbp.plot.plot_history(history)
