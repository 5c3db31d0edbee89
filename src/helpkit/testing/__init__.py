"""Test helpers for users' suites: strategies, a frozen clock, a pytest plugin, conformance suites.

Nothing in the runtime package imports this package; it needs the ``testing`` extra
(pytest and Hypothesis) only where a module says so.
"""
