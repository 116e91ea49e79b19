"""Shared test set-up."""

# Import hypothesis up front: its pytest plugin otherwise imports it lazily at the terminal
# summary, deep in pytest's stack, where CPython 3.11.7's AST recursion check trips
# ("AST constructor recursion depth mismatch") when a run collected no hypothesis test.
import hypothesis  # noqa: F401
