"""The TOML parser every letterkit file is read with: ``tomli`` where it is installed
(a dependency: the stdlib's ``tomllib`` parser, compiled, 3x faster on long recipient
files), else the stdlib's ``tomllib``.  One place, so that a command loads one parser."""

try:
    import tomli as tomllib
except ImportError:  # pragma: no cover - pure-Python platforms
    import tomllib  # type: ignore[no-redef]

__all__ = ["tomllib"]
