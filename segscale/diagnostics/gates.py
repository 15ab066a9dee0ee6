"""One cell's chain of gates: Tao et al.'s hierarchical attention written out with its numbers.

The chain (:func:`segscale.modeling.fusion.hierarchical_chain`) runs over the scales from the
coarsest up, on the common grid. At one cell, with q^s the gate head's logit and a^s = sigmoid(q^s):

    r^1_c = f^{s_1}_c                                        (the coarsest scale's scores)
    r^k_c = a^{s_k} f^{s_k}_c + (1 - a^{s_k}) r^{k-1}_c      (k = 2..S)
    g_c   = r^S_c = sum_k w^{s_k} f^{s_k}_c,   w^{s_k} = a^{s_k} prod_{j>k} (1 - a^{s_j})   (a^{s_1} read as 1)

:func:`gate_chain_at` recomputes every step in float64 from the model's float32 gate logits and
scores, so each written number can be checked against the prediction's own effective weights
(``Prediction.attention``) and fused map. Text for a terminal and LaTeX for a page are written
here, once, for ``python -m segscale inspect`` and the Pixel inspector alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..formatting import format_number, scale_label
from .formatting import floats, latex_number, latex_text, signed

WEIGHT_DIGITS = 4  # gates and effective weights, in text and LaTeX alike (Eq. 2's weights show four too)

# What the effective weights are, in one sentence a page and the command line both show beside them.
EFFECTIVE_WEIGHTS_NOTE = (
    "Hierarchical attention (Tao et al. 2020) has no softmax over scales: these are its effective weights, "
    "the products of the sigmoid gates aˢ along the chain from the coarsest scale up, "
    "wˢ = aˢ · Π over finer scales t of (1 − aᵗ) (the coarsest scale's gate read as 1). Every gate lies "
    "in [0, 1], so each step of the chain is a convex combination and the weights sum to 1 at every cell; "
    "they are computed on the common stride-8 grid, where the chain runs, and only upsampled for display."
)


@dataclass(frozen=True)
class GateChain:
    """The chain of gates at one grid cell, every tuple in chain order (coarsest scale first).

    order: (S,) index of each chain step's scale on the prediction's S axis.
    scales: (S,) the scales, coarsest first.
    gate_logits: (S,) q^s. gates: (S,) a^s = sigmoid(q^s); the coarsest one's is computed but unused.
    running: (S, C) r^k_c, the running prediction after each step (r^1 = f^{s_1}).
    weights: (S,) w^s = a^s prod_{finer t} (1 - a^t), the effective weights.
    fused: (C,) g_c = r^S_c.
    """

    order: tuple[int, ...]
    scales: tuple[float, ...]
    gate_logits: tuple[float, ...]
    gates: tuple[float, ...]
    running: tuple[tuple[float, ...], ...]
    weights: tuple[float, ...]
    fused: tuple[float, ...]

    def weights_in_scale_order(self) -> tuple[float, ...]:
        """The effective weights on the prediction's S axis (the order of ``Prediction.scales``)."""
        out = [0.0] * len(self.order)
        for step, index in enumerate(self.order):
            out[index] = self.weights[step]
        return tuple(out)

    # ---- the products, as factors

    def weight_factors(self, step: int) -> list[tuple[str, int]]:
        """w at ``step`` as its factors: ("a", k) for a^{s_k}, ("1-a", j) for (1 - a^{s_j}); the coarsest has no a."""
        factors = [] if step == 0 else [("a", step)]
        return factors + [("1-a", j) for j in range(step + 1, len(self.scales))]

    def _product(self, step: int, name, number, times: str) -> str:
        """w at ``step`` written as its product of factors, then their numbers, then its value.

        ``name(k)`` writes a^{s_k}, ``number(v)`` a number; a single factor skips the numbers
        (``w = a = 0.5``), and the only scale of a one-scale chain weighs 1."""
        factors = self.weight_factors(step)
        value = number(self.weights[step])
        if not factors:
            return f"1 = {value}"
        symbols = [name(k) if kind == "a" else f"(1 - {name(k)})" for kind, k in factors]
        numbers = [number(self.gates[k]) if kind == "a" else f"(1 - {number(self.gates[k])})" for kind, k in factors]
        if len(factors) == 1 and factors[0][0] == "a":
            return f"{symbols[0]} = {value}"
        return f"{times.join(symbols)} = {times.join(numbers)} = {value}"

    # ---- text for a terminal

    def to_text(self, scores, classes, shown) -> list[str]:
        """The chain with this cell's numbers, one line per step, for the classes ``shown``.

        ``scores``: (S, C) f^s_c at the cell, on the prediction's S axis."""
        names = [f"s={scale_label(s)}" for s in self.scales]
        width = max(len(n) for n in names)
        lines = [
            "Hierarchical chain (Tao et al. 2020), coarsest scale first:   a^s = sigmoid(q^s)",
            f"  {'scale':<{width + 2}}{'q^s':>10}{'a^s':>10}",
        ]
        for k, name in enumerate(names):
            unused = "   (coarsest: nothing coarser to weigh, unused)" if k == 0 else ""
            lines.append(
                f"  {name:<{width + 2}}{self.gate_logits[k]:10.4f}"
                f"{format_number(self.gates[k], WEIGHT_DIGITS):>10}{unused}"
            )
        lines += ["", "running prediction   r^1_c = f^(coarsest)_c,   r^k_c = a^s f^s_c + (1 - a^s) r^(k-1)_c"]
        label_width = max(len(classes[c]) for c in shown)
        for c in shown:
            for k, index in enumerate(self.order):
                step = f"  r^{k + 1}_{classes[c]:<{label_width}} = "
                if k == 0:
                    lines.append(
                        f"{step}f^{scale_label(self.scales[0])}_{classes[c]} = {format_number(self.running[0][c], 4)}"
                    )
                    continue
                gate = format_number(self.gates[k], WEIGHT_DIGITS)
                lines.append(
                    f"{step}{gate} x {signed(scores[index][c])} + (1 - {gate}) x {signed(self.running[k - 1][c])}"
                    f" = {format_number(self.running[k][c], 4)}"
                )
        lines += [
            "",
            "effective weights   w^s = a^s x prod over finer t of (1 - a^t)   (the coarsest scale's a read as 1)",
        ]
        for k in range(len(names)):
            product = self._product(
                k, lambda j: f"a^{scale_label(self.scales[j])}", lambda v: format_number(v, WEIGHT_DIGITS), " x "
            )
            lines.append(f"  w^{scale_label(self.scales[k]):<{width}} = {product}")
        lines.append(f"  {'sum':<{width + 2}} = {format_number(sum(self.weights), WEIGHT_DIGITS)}")
        fused = ", ".join(f"{classes[c]} {format_number(self.fused[c], 4)}" for c in shown)
        lines.append(f"fused g_c = r^{len(self.scales)}_c = sum_s w^s f^s_c: {fused}")
        return lines

    # ---- LaTeX for st.latex

    def latex_gates(self) -> str:
        """The gates a^s and the effective weights as products, with this cell's numbers (one aligned block)."""
        lines = [r"a^{(s)} &= \sigma(q^{(s)}) = \frac{1}{1 + e^{-q^{(s)}}}"]
        for k, scale in enumerate(self.scales):
            note = r"\quad\text{(coarsest: unused)}" if k == 0 else ""
            lines.append(
                rf"a^{{({scale_label(scale)})}} &= \sigma{_in_parentheses(latex_number(self.gate_logits[k]))} = "
                rf"{latex_number(self.gates[k], WEIGHT_DIGITS)}{note}"
            )
        lines.append(r"w^{(s_k)} &= a^{(s_k)} \prod_{j > k} \bigl(1 - a^{(s_j)}\bigr)")
        for k, scale in enumerate(self.scales):
            product = self._product(
                k,
                lambda j: rf"a^{{({scale_label(self.scales[j])})}}",
                lambda v: latex_number(v, WEIGHT_DIGITS),
                r" \cdot ",
            )
            lines.append(rf"w^{{({scale_label(scale)})}} &= {product}")
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def latex_running(self, scores, class_index: int, class_name: str) -> str:
        """The running prediction of one class, step by step, ending on its fused score g_c."""
        c = class_index
        name = latex_text(class_name)
        first = scale_label(self.scales[0])
        lines = [
            rf"r^{{(1)}}_{{\text{{{name}}}}} &= f^{{({first})}}_{{\text{{{name}}}}} "
            rf"= {latex_number(self.running[0][c])}"
        ]
        for k in range(1, len(self.scales)):
            gate = latex_number(self.gates[k], WEIGHT_DIGITS)
            lines.append(
                rf"r^{{({k + 1})}}_{{\text{{{name}}}}} &= {gate} \cdot {latex_number(scores[self.order[k]][c])} + "
                rf"(1 - {gate}) \cdot {latex_number(self.running[k - 1][c])} = {latex_number(self.running[k][c])}"
            )
        lines.append(
            rf"g_{{\text{{{name}}}}} &= r^{{({len(self.scales)})}}_{{\text{{{name}}}}} = {latex_number(self.fused[c])}"
        )
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def step_rows(self, classes, shown) -> list[dict]:
        """One row per chain step (coarsest first): scale, q^s, a^s, w^s and r^k_c of the classes shown."""
        rows = []
        for k, scale in enumerate(self.scales):
            row = {"step": k + 1, "scale": scale, "q": self.gate_logits[k], "a": self.gates[k], "w": self.weights[k]}
            row.update({f"r[{classes[c]}]": self.running[k][c] for c in shown})
            rows.append(row)
        return rows

    def to_dict(self, classes) -> dict:
        """JSON-ready plain data, in chain order (the ``gate_chain`` of ``segscale inspect --json``)."""
        return {
            "scales_coarsest_first": list(self.scales),
            "gate_logits": list(self.gate_logits),
            "gates": list(self.gates),
            "effective_weights": list(self.weights),
            "running": [dict(zip(classes, step)) for step in self.running],
            "fused": dict(zip(classes, self.fused)),
        }


def _in_parentheses(text: str) -> str:
    """``(text)``, unless latex_number already put it in parentheses (a negative or scientific number)."""
    return text if text.startswith("(") else f"({text})"


def gate_chain_at(scores: np.ndarray, gate_logits: np.ndarray, scales) -> GateChain:
    """The chain of gates at one cell, in float64.

    Args:
        scores: (S, C) f^s_c at the cell, on the prediction's S axis.
        gate_logits: (S,) q^s at the cell, same order.
        scales: (S,) the scales in that order (any order; the chain sorts them, coarsest first).
    """
    scores = np.asarray(scores, dtype=np.float64)
    gate_logits = np.asarray(gate_logits, dtype=np.float64)
    scales = tuple(float(s) for s in scales)
    if scores.ndim != 2 or gate_logits.shape != (scores.shape[0],) or len(scales) != scores.shape[0]:
        raise ValueError(
            f"a gate chain needs (S, C) scores, (S,) gate logits and S scales; got {scores.shape}, "
            f"{gate_logits.shape} and {len(scales)} scales"
        )
    order = sorted(range(len(scales)), key=lambda k: scales[k])  # coarsest first, as the model's chain
    gates = 1.0 / (1.0 + np.exp(-gate_logits[order]))
    running = [scores[order[0]]]
    for k in range(1, len(order)):
        running.append(gates[k] * scores[order[k]] + (1.0 - gates[k]) * running[-1])
    weights = []
    for k in range(len(order)):
        weight = 1.0 if k == 0 else gates[k]
        for j in range(k + 1, len(order)):
            weight *= 1.0 - gates[j]
        weights.append(weight)
    return GateChain(
        order=tuple(order),
        scales=tuple(scales[k] for k in order),
        gate_logits=floats(gate_logits[order]),
        gates=floats(gates),
        running=tuple(floats(r) for r in running),
        weights=floats(weights),
        fused=floats(running[-1]),
    )
