"""
Chapter 6: a convolutional network next to a dense one
======================================================

The book's chapter 6 builds its networks with ``network3.py``, which needs
Theano. :mod:`cbp.network3` takes the same code with one import changed.
Here a small version of the book's ``basic_conv`` (a convolutional-pooling
layer of 20 5x5 filters, a fully connected layer of 100 neurons, a softmax
layer) trains on the embedded 5,000-image sample, beside a dense network
(784-100-10, softmax) trained the same number of epochs on the same
images.  Both start from weights drawn after ``np.random.seed(0)``.

On 4,000 training images, a few epochs give the convolutional net a clear
lead; the book's accuracies (98.78% for ``basic_conv``, 99.23% with two
conv layers, ReLU and L2) need the full 50,000 images and 60 epochs.
"""
import contextlib
import io
import time

import matplotlib.pyplot as plt
import numpy as np

import cbp
import cbp.network3 as network3
from cbp.datasets import load_sample
from cbp.network3 import ConvPoolLayer, FullyConnectedLayer, Network, SoftmaxLayer

(X, y), (X_test, y_test) = load_sample()
# float32, as the book's data; 3,500 images to train on, 500 to validate.
X, X_test = X.astype(np.float32), X_test.astype(np.float32)


def shared(images, labels):
    return network3.SharedVariable(images, "x"), network3.SharedVariable(labels.astype(np.int32), "y")


training_data = shared(X[:3500], y[:3500])
validation_data = shared(X[3500:], y[3500:])
test_data = shared(X_test, y_test)
mini_batch_size, epochs = 10, 4

# %%
# The book's code, with ``network3`` being cbp's
np.random.seed(0)
net = Network([
    ConvPoolLayer(image_shape=(mini_batch_size, 1, 28, 28), filter_shape=(20, 1, 5, 5), poolsize=(2, 2)),
    FullyConnectedLayer(n_in=20 * 12 * 12, n_out=100),
    SoftmaxLayer(n_in=100, n_out=10)], mini_batch_size)
start = time.perf_counter()
log = io.StringIO()
with contextlib.redirect_stdout(log):
    net.SGD(training_data, epochs, mini_batch_size, 0.1, validation_data, test_data)
conv_seconds = time.perf_counter() - start
print(log.getvalue())
conv_accuracy = np.mean(np.concatenate([net.test_mb_predictions(i) for i in range(len(y_test) // 10)])
                        == y_test[:len(y_test) // 10 * 10])

# %%
# A dense network on the same images (cbp.Network, softmax and log-likelihood)
dense = cbp.Network([784, 100, 10], output_activation="softmax", cost="log_likelihood", seed=0)
start = time.perf_counter()
history = dense.SGD((X[:3500], y[:3500]), epochs, mini_batch_size, 0.1, test_data=(X_test, y_test),
                    shuffle=False, verbose=False)
dense_seconds = time.perf_counter() - start
dense_accuracy = history["accuracy"][-1]

print(f"conv net  (conv-pool 20x5x5, FC 100, softmax): test accuracy {conv_accuracy:.1%} "
      f"after {epochs} epochs, {conv_seconds:.1f} s")
print(f"dense net (784-100-10, softmax):               test accuracy {dense_accuracy:.1%} "
      f"after {epochs} epochs, {dense_seconds:.1f} s")

# %%
# The first layer's 20 filters after training
filters = net.layers[0].w.get_value()
fig, axes = plt.subplots(2, 10, figsize=(8, 2))
for ax, f in zip(axes.ravel(), filters):
    ax.matshow(f[0], cmap="binary")
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("basic_conv's 5x5 filters after %d epochs on the sample" % epochs)
plt.show()
