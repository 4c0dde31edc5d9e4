"""Adapter methods applied unmerged on a shared base model."""
