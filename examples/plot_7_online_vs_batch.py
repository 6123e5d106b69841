"""
Online and batch gradient descent on one linear unit
====================================================

Note 000 (Craven & Page) starts from the simplest network: one linear output
unit, o = w0 + w1 x1 + w2 x2, and the squared error E(w) = ½ Σ_d (y_d − o_d)².
*Batch* gradient descent takes one step per pass over the data, along the
whole gradient, w ← w − η Σ_d ∂E_d/∂w; *online* (stochastic) gradient descent
takes a step after each example d, w ← w − η ∂E_d/∂w.

Here a cbp network ``[2, 1]`` with a linear unit is that unit.  Online
descent is ``update_mini_batch`` on one example at a time (m = 1); batch
descent is one ``update_mini_batch`` on all m examples with η·m, since cbp,
like the book, steps by η/m times the sum.  The inputs and targets are
centred, so the bias w0 starts and (nearly) stays at 0 and the contours show
E over (w1, w2) at w0 = 0.  The correlated inputs stretch the contours into
a valley: batch descent walks straight down its gradient, online descent
zig-zags, one example at a time, towards the same minimum.
"""
import matplotlib.pyplot as plt
import numpy as np

import cbp

rng = np.random.default_rng(0)
m = 20
x1 = rng.normal(size=m)
X = np.column_stack([x1, 0.7 * x1 + 0.6 * rng.normal(size=m)])
y = X @ np.array([1.5, -1.0]) + 0.1 * rng.normal(size=m)
X, y = X - X.mean(axis=0), (y - y.mean()).reshape(-1, 1)
eta, epochs, start = 0.04, 40, np.array([[2.6, 2.0]])


def fresh():
    net = cbp.Network([2, 1], activation="linear", cost="quadratic", seed=0)
    net.weights, net.biases = [start], [np.zeros((1, 1))]
    return net


batch, online = fresh(), fresh()
batch_path, online_path = [start.ravel()], [start.ravel()]
for epoch in range(epochs):
    batch.update_mini_batch((X, y), eta * m)           # w − η Σ_d ∂E_d/∂w
    batch_path.append(batch.weights[0].ravel())
    for d in range(m):                                 # w − η ∂E_d/∂w, example by example
        online.update_mini_batch((X[d:d + 1], y[d:d + 1]), eta)
        online_path.append(online.weights[0].ravel())
batch_path, online_path = np.array(batch_path), np.array(online_path)

w1, w2 = np.meshgrid(np.linspace(-2.5, 3.0, 200), np.linspace(-2.5, 2.5, 200))
E = 0.5 * (((X[:, 0, None, None] * w1 + X[:, 1, None, None] * w2) - y[:, :, None]) ** 2).sum(0)
best = np.linalg.lstsq(X, y, rcond=None)[0].ravel()

fig, ax = plt.subplots(figsize=(6.5, 5.5), layout="constrained")
ax.contour(w1, w2, E, levels=E.min() + np.geomspace(0.2, E.max() - E.min(), 14), colors="0.6",
           linewidths=0.7)
ax.plot(*online_path.T, ".-", color="C1", ms=3, lw=0.8,
        label=f"online: a step per example ({len(online_path) - 1} steps)")
ax.plot(*batch_path.T, "o-", color="C0", ms=5, label=f"batch: a step per epoch ({epochs} steps)")
ax.plot(*best, "*", color="k", ms=12, label="minimum of E")
ax.set_xlabel("$w_1$")
ax.set_ylabel("$w_2$")
ax.set_title("Note 000: gradient descent on $E(w) = ½ Σ_d (y_d − o_d)^2$")
ax.legend(loc="lower left", fontsize="small")
print(f"after {epochs} epochs: batch w = {batch_path[-1].round(3)}, "
      f"online w = {online_path[-1].round(3)}, minimum {best.round(3)}; "
      f"bias: batch {batch.biases[0].item():.1e}, online {online.biases[0].item():.1e}")
