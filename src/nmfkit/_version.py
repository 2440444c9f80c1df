"""The version of nmfkit, in one place (the package root, the CLI, saved models and reports read it)."""

__version__ = "0.1.0"
