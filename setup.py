"""Only the package list, which pyproject.toml cannot state: every nas/ package found, plus the
repository's search_spaces/ and experiments/ installed as nas.search_spaces and nas.experiments
(their folders are mapped in pyproject.toml's [tool.setuptools.package-dir])."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["nas", "nas.*"]), "nas.search_spaces", "nas.experiments"])
