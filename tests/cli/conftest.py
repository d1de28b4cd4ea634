"""Fixtures of the command-line tests."""

import pytest

from tests.cli.test_cli import ptft


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """Real bundled MNIST digits as PNG folders, 16x16 (small and fast), made once per
    test process (`ptft demo-data`, as users run it)."""
    root = tmp_path_factory.mktemp("digits")
    ptft("demo-data", "mnist", "--out", root / "mnist", "--size", 16, cwd=root)
    return root / "mnist"
