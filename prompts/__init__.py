"""The LLM prompt templates, one YAML file each, shipped with the code as package data.

`handlers.drafting.prompts` reads them from wherever this package is installed.
"""
