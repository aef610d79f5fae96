"""Pure compliance domain: FLOPs formulas, accelerator peaks, threshold policies, classification.

Standard library only (an architecture test enforces it), so the training callback and a notebook can
use it without AWS or pydantic.
"""
