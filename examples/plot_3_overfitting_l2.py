"""
Overfitting, and L2 regularisation
==================================

Chapter 3's experiment: train on only 1,000 images for many epochs.  Without
regularisation the training cost keeps falling while the test cost turns up
and the test accuracy stalls: the network learns the peculiarities of its
1,000 images.  With L2 (``lmbda``, the weights decay by 1 − ηλ/n per step)
the training cost stays higher, the test cost stays level instead of
climbing, and the test accuracy ends several points higher.  (The training
cost drawn is the data term C alone, without the L2 term.)
"""
import cbp
from cbp.datasets import load_sample

(X, y), (X_test, y_test) = load_sample()
X, y = X[:1000], y[:1000]

runs = {}
for lmbda in (0.0, 5.0):
    net = cbp.Network([784, 30, 10], cost="cross_entropy", seed=1)
    runs[lmbda] = net.SGD((X, y), 100, 10, 0.5, lmbda=lmbda, test_data=(X_test, y_test),
                          verbose=False)
for lmbda, h in runs.items():
    best = max(h["accuracy"])
    print(f"lmbda {lmbda}: training cost {h['cost'][-1]:.3f}, test cost {h['test_cost'][-1]:.3f}, "
          f"test accuracy {h['accuracy'][-1]:.1%} (best {best:.1%})")

cbp.plot.plot_history(list(runs.values()), labels=["λ = 0", "λ = 5"])
