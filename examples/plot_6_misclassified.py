"""
The digits it gets most wrong
=============================

After training, :func:`cbp.plot.plot_misclassified` ranks the misclassified
test images by the network's output for their true class, lowest first: the
images the network is most sure are something else.  Many are digits a
person would hesitate over too.
"""
import cbp
from cbp.datasets import load_sample

(X, y), (X_test, y_test) = load_sample()
net = cbp.Network([784, 100, 10], output_activation="softmax", activation="sigmoid",
                  cost="log_likelihood", init="scaled", seed=0)
history = net.SGD((X, y), 15, 10, 0.1, lmbda=1.0, test_data=(X_test, y_test), verbose=False)
wrong = len(y_test) - history["correct"][-1]
print(f"test accuracy {history['accuracy'][-1]:.1%}: {wrong} of {len(y_test)} misclassified")

cbp.plot.plot_misclassified(net, X_test, y_test, n=18)
