"""Command-line interface (Typer): parsing and printing only; the work happens in the API below."""
