"""Base models: where their files are (built-in, local folder, Hugging Face cache), the device they run on,
and loading them with transformers (imported inside the functions that need it)."""
