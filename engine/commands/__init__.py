"""CLI subcommands, one module per experiment family (see ``engine.cli``)."""
