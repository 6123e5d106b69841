"""
What the hidden neurons see
===========================

Each of the 30 hidden neurons of a trained 784-30-10 network takes a weighted
sum of the 784 pixels; its 784 incoming weights, drawn as a 28 × 28 image,
show which strokes excite it (red) and which inhibit it (blue).  All images
share one symmetric colour scale, so white is a zero weight everywhere.
Training with a little L2 and the scaled initialisation removes the noise
of the N(0, 1) start.
"""
import cbp
from cbp.datasets import load_sample

(X, y), (X_test, y_test) = load_sample()
net = cbp.Network([784, 30, 10], cost="cross_entropy", init="scaled", seed=0)
history = net.SGD((X, y), 15, 10, 0.5, lmbda=5.0, test_data=(X_test, y_test), verbose=False)
print(f"test accuracy: {history['accuracy'][-1]:.1%}")

cbp.plot.plot_weights(net, layer=0)
