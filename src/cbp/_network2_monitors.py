"""network2.py's monitors of training: its lines after each epoch and its four lists."""
import numpy as np

from . import training
from ._python_path import overridden


class Monitors(training.Callback):
    """network2.py's monitors after each epoch: its lines printed, its four lists kept.

    ``cost_of_rows(X, Y, lmbda)`` and ``correct_of_rows(X, labels)`` are the
    network's own, on the training rows as arrays (cbp's own methods);
    otherwise the network's ``total_cost``/``accuracy`` walk the examples.
    """

    def __init__(self, training_data, evaluation_data, lmbda, flags, cost_of_rows,
                 correct_of_rows):
        self.training_data, self.evaluation_data, self.lmbda = training_data, evaluation_data, lmbda
        (self.training_cost_on, self.training_accuracy_on, self.evaluation_cost_on,
         self.evaluation_accuracy_on) = flags
        self.cost_of_rows, self.correct_of_rows = cost_of_rows, correct_of_rows
        self.n_data = len(evaluation_data) if evaluation_data else 0
        self.n = 0
        self.training_cost, self.training_accuracy = [], []
        self.evaluation_cost, self.evaluation_accuracy = [], []
        self.last_accuracy = None

    def on_train_begin(self, run):
        self.n = run.n
        # An own feedforward (or accuracy, total_cost) computes the monitors.
        self.rows_cost = not overridden(run.net, "total_cost", "feedforward")
        self.rows_accuracy = not overridden(run.net, "accuracy", "feedforward")

    def on_epoch_end(self, run, epoch):
        net, lmbda = run.net, self.lmbda
        # On the fast path the training rows come as arrays, in their original
        # order; the Python path's monitors walk the examples in the epoch's.
        X, Y = run.X, run.Y
        examples = self.training_data if X is not None else run.ordered
        print("Epoch %s training complete" % epoch)
        if self.training_cost_on:
            cost = (self.cost_of_rows(X, Y, lmbda) if X is not None and self.rows_cost
                    else net.total_cost(examples, lmbda))
            self.training_cost.append(cost)
            print("Cost on training data: {}".format(cost))
        if self.training_accuracy_on:
            accuracy = (self.correct_of_rows(X, np.argmax(Y, axis=1))
                        if X is not None and self.rows_accuracy
                        else net.accuracy(examples, convert=True))
            self.training_accuracy.append(accuracy)
            self.last_accuracy = accuracy
            print("Accuracy on training data: {} / {}".format(accuracy, self.n))
        if self.evaluation_cost_on:
            cost = net.total_cost(self.evaluation_data, lmbda, convert=True)
            self.evaluation_cost.append(cost)
            print("Cost on evaluation data: {}".format(cost))
        if self.evaluation_accuracy_on:
            accuracy = net.accuracy(self.evaluation_data)
            self.evaluation_accuracy.append(accuracy)
            self.last_accuracy = accuracy
            print("Accuracy on evaluation data: {} / {}".format(accuracy, self.n_data))
        print()
        return None
