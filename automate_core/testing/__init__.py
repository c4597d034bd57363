"""Test bases that plugin authors import to prove their plugins keep our contracts."""
