"""
Uniform accuracy of deep learning (:mod:`structax.sciml.uniform`)
=================================================================

The experiment behind Berner, Grohs & Voigtlaender, "Learning ReLU networks to high uniform accuracy is
intractable" (ICLR 2023): students learn a random ReLU teacher on :math:`[-1, 1]^d` from n samples; the
L2 error falls with n, the L∞ error far more slowly.

Functions
---------
uniform_study      the whole experiment: errors per input dimension, sample size and teacher (DataFrame)
plot_study         log–log figure of L2 and L∞ error against n
fit_rates          slopes of log error against log n
interpolation_baseline  d = 1 reference: errors of the piecewise linear interpolant of the same samples
teacher_network    random ReLU teacher (depth, width), normalized to mean 0 and sd 1 on the cube
relu_network       evaluate a ReLU network given as ``[(W, b), ...]``
train_student      least-squares training of a student network (full-batch L-BFGS or minibatch Adam)
l2_error           Monte Carlo L2 distance of two networks on the cube
linf_error         L∞ distance: dense grid plus adversarial search by projected gradient ascent

Examples
--------
>>> import jax
>>> from structax.sciml import uniform
>>> t = uniform.teacher_network(jax.random.key(0), dim=1)
>>> err, where = uniform.linf_error(t, t, dim=1, grid_points=101)
>>> err
0.0
"""
from ._study import (fit_rates, interpolation_baseline, l2_error, linf_error, plot_study, relu_network,
                     teacher_network, train_student, uniform_study)

__all__ = ["uniform_study", "interpolation_baseline", "plot_study", "fit_rates", "teacher_network",
           "relu_network", "train_student", "l2_error", "linf_error"]
