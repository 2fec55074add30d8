"""securepdu's benchmark suite (see benches/README.md): ``python -m benches --quick``."""
