"""Loop-form convolution and pooling, and each activation in NumPy, for the network3 tests.

Shared by the gradient checks (tests/numerics/test_network3_gradients.py) and the API
tests (tests/api/test_network3.py), which rebuild a forward pass from the layers' own
weights.
"""
import numpy as np

from cbp import network3

ACT = {network3.sigmoid: lambda z: 1 / (1 + np.exp(-z)), network3.tanh: np.tanh,
       network3.ReLU: lambda z: np.maximum(z, 0), network3.linear: lambda z: z}


def conv_valid(X, w):
    """Theano's conv2d, 'valid': a true convolution (the filters flipped), by loops."""
    M, C, H, W = X.shape
    F, _, K, _ = w.shape
    out = np.zeros((M, F, H - K + 1, W - K + 1))
    wf = w[:, :, ::-1, ::-1]
    for i in range(K):
        for j in range(K):
            patch = X[:, :, i:i + H - K + 1, j:j + W - K + 1]
            out += np.einsum("mcyx,fc->mfyx", patch, wf[:, :, i, j])
    return out


def max_pool(Z, ph, pw):
    M, F, H, W = Z.shape
    Z = Z[:, :, :H // ph * ph, :W // pw * pw]
    return Z.reshape(M, F, H // ph, ph, W // pw, pw).max(axis=(3, 5))
