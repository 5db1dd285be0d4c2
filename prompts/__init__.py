"""Voice prompts: texts per language, and the builder that makes Asterisk-ready audio."""
