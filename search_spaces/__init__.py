"""The shipped search spaces (YAML), installed as package data `nas.search_spaces`; see nas/space.py."""
