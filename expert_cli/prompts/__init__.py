"""Prompts, shared by training and the runtime: chat templates, answer cleaning, grammar binding."""
