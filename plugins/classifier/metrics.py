"""Evaluation report: accuracy, macro-F1, per-class F1 and the confusion matrix."""

from __future__ import annotations

from typing import Any


def report(truth: list[str], predicted: list[str], classes: list[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    return {
        "n": len(truth),
        "accuracy": float(accuracy_score(truth, predicted)) if truth else 0.0,
        "macro_f1": float(f1_score(truth, predicted, labels=classes, average="macro", zero_division=0)) if truth else 0.0,
        "per_class_f1": dict(zip(classes, (float(x) for x in f1_score(
            truth, predicted, labels=classes, average=None, zero_division=0)))) if truth else {},
        "classes": list(classes),
        # rows: true class, columns: predicted class (same order as `classes`)
        "confusion": confusion_matrix(truth, predicted, labels=classes).tolist() if truth else [],
    }


def format_report(rep: dict[str, Any]) -> str:
    """Markdown-ish text for terminals: the figures and the confusion matrix."""
    classes = rep["classes"]
    width = max([len(c) for c in classes] + [6])
    lines = [f"accuracy {rep['accuracy']:.3f}   macro-F1 {rep['macro_f1']:.3f}   on {rep['n']} held-out examples",
             "", "confusion matrix (rows: true, columns: predicted)",
             " " * (width + 1) + " ".join(f"{c[:6]:>6}" for c in classes)]
    for cls, row in zip(classes, rep["confusion"]):
        lines.append(f"{cls:<{width}} " + " ".join(f"{v:>6}" for v in row))
    return "\n".join(lines)
