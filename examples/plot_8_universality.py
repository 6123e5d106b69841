"""
Universality: a function from steps of sigmoids
===============================================

Chapter 4 of the book shows why one hidden layer of sigmoid units can
approximate any continuous function.  A sigmoid unit with a large weight w
is almost a step, at s = −b/w.  Two of them, with output weights h and −h,
make a *bump* of height h between their two steps; a hidden layer of 2n
units makes n bumps, enough to follow any function as closely as wanted.

Left: the bump of a ``[1, 2, 1]`` network whose weights are set by hand
(w = 1000, steps at s = 0.4 and 0.6, h = 0.8), and its two hidden units'
steps.  Right: the book's function f(x) = 0.2 + 0.4x² + 0.3x sin(15x) +
0.05 cos(50x) on [0, 1], approximated by a ``[1, 40, 1]`` network twice:
20 hand-set bumps (each at f's value in the middle of its interval), and
the same network trained by backpropagation (Adam, 1,500 epochs of 2,000
random points) from random weights: input weights N(0, 20²), each unit's
step at a random point s of [0, 1] (b = −w s), so that the steps start
spread over the interval as the hand-set ones are.
"""
import matplotlib.pyplot as plt
import numpy as np

import cbp


def f(x):
    return 0.2 + 0.4 * x ** 2 + 0.3 * x * np.sin(15 * x) + 0.05 * np.cos(50 * x)


x = np.linspace(0, 1, 1000).reshape(-1, 1)
w = 1000.0

# A bump from two hidden sigmoids: steps up at s1 and down at s2.
bump = cbp.Network([1, 2, 1], activation="sigmoid", output_activation="linear", seed=0)
s1, s2, h = 0.4, 0.6, 0.8
bump.weights = [np.array([[w], [w]]), np.array([[h, -h]])]
bump.biases = [np.array([[-w * s1], [-w * s2]]), np.array([[0.0]])]
steps = cbp.sigmoid(w * x - w * np.array([s1, s2]))

# n bumps, hand-set: 2n hidden units with steps at the interval edges.
n = 20
edges = np.linspace(0, 1, n + 1)
heights = f((edges[:-1] + edges[1:]) / 2)
hand = cbp.Network([1, 2 * n, 1], activation="sigmoid", output_activation="linear", seed=0)
hand.weights = [np.full((2 * n, 1), w),
                np.concatenate([heights, -heights]).reshape(1, -1)]
# The outermost steps sit outside [0, 1], so that f's ends are not halved.
up, down = edges[:-1].copy(), edges[1:].copy()
up[0], down[-1] = -1.0, 2.0
hand.biases = [np.concatenate([-w * up, -w * down]).reshape(-1, 1), np.zeros((1, 1))]

# The same shape of network, trained.
rng = np.random.default_rng(0)
X = rng.random((2000, 1))
trained = cbp.Network([1, 2 * n, 1], activation="sigmoid", output_activation="linear",
                      seed=0)
W1 = 20 * trained.weights[0]
trained.weights = [W1, trained.weights[1]]
trained.biases = [-W1 * rng.random((2 * n, 1)), trained.biases[1]]
cbp.Adam(0.01, mini_batch_size=20).run(trained, (X, f(X)), 1500)

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
left.plot(x, steps[:, 0], ":", color="C0", label=f"hidden unit 1: step at {s1}")
left.plot(x, steps[:, 1], ":", color="C1", label=f"hidden unit 2: step at {s2}")
left.plot(x, bump.feedforward(x), color="k", label=f"output: {h}·step₁ − {h}·step₂")
left.set_title("Two hidden sigmoids make a bump")
left.set_xlabel("x")
left.legend(fontsize="small", loc="upper left")
right.plot(x, f(x), color="k", lw=2.5, alpha=0.35, label="f(x)")
right.plot(x, hand.feedforward(x), color="C2", lw=1, label=f"{n} bumps set by hand")
right.plot(x, trained.feedforward(x), color="C3", lw=1.2, label="[1, 40, 1] trained")
right.set_title("A [1, 40, 1] network following f")
right.set_xlabel("x")
right.legend(fontsize="small", loc="upper left")
for name, net in (("hand-set", hand), ("trained", trained)):
    print(f"{name}: max |f(x) − a(x)| on [0, 1] = "
          f"{np.max(np.abs(net.feedforward(x) - f(x))):.3f}")
