#!/usr/bin/env python3
"""Fits the polynomial coefficients of src/vmath.rs (the f32 exp, tanh and normal-CDF kernels).

Each polynomial is a weighted least-squares fit on Chebyshev nodes, reweighted toward the
largest relative error a few dozen times (close to a minimax fit), in float64 against Python's
math module. Prints the Rust constants and each fit's largest relative error. Needs numpy
(bench/.venv has it: bench/.venv/bin/python scripts/fit-kernels.py).
"""
import math

import numpy as np


def fit(f, lo, hi, degree, var=lambda x: x, n=4000):
    k = np.arange(n)
    x = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / n)
    y = np.array([f(v) for v in x])
    a = np.vander(var(x), degree + 1, increasing=True)
    w = 1 / np.abs(y)
    c, *_ = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)
    for _ in range(30):
        e = np.abs(a @ c - y) * w
        ww = w * (1 + e / e.max()) ** 4
        c, *_ = np.linalg.lstsq(a * ww[:, None], y * ww, rcond=None)
    return c, np.max(np.abs(a @ c - y) / np.abs(y))


def show(name, what, c, err):
    print(f"/// {what}; largest relative error of the fit {err:.1e}.")
    body = ", ".join(f"{v:.9e}" for v in c)
    print(f"const {name}: [f32; {len(c)}] = [{body}];")


LN2 = math.log(2)
# exp(r) = 1 + r + r^2 P(r) on |r| <= ln2 / 2.
c, e = fit(lambda r: (math.expm1(r) - r) / r**2 if abs(r) > 1e-6 else 0.5 + r / 6, -LN2 / 2, LN2 / 2, 4)
show("EXP", "`(e^r - 1 - r) / r^2` in `r`, `|r| <= ln 2 / 2`", c, e)
# tanh(x) = x + x^3 P(x^2) on |x| <= 0.625.
c, e = fit(lambda x: (math.tanh(x) - x) / x**3 if x > 1e-4 else -1 / 3, 0, 0.625, 5, var=lambda x: x * x)
show("TANH", "`(tanh x - x) / x^3` in `x^2`, `|x| <= 0.625`", c, e)
# erfc(a) = e^{-a^2} 2 / (2 + a) P(t) on 0 <= a <= 10, t = (a - 2) / (a + 2) in [-1, 2/3].
c, e = fit(lambda a: math.erfc(a) * math.exp(a * a) * (2 + a) / 2, 0, 10, 11, var=lambda a: (a - 2) / (a + 2))
show("ERFC", "`erfc(a) e^{a^2} (2 + a) / 2` in `t = (a - 2) / (a + 2)`, `0 <= a <= 10`", c, e)
# ln(1 + y) = y P(y) on 0 <= y <= 1 (the softplus of -|o|, y = e^{-|o|}).
c, e = fit(lambda y: math.log1p(y) / y if y > 1e-9 else 1.0, 0, 1, 11)
show("LOG1P", "`ln(1 + y) / y` in `y`, `0 <= y <= 1`", c, e)
