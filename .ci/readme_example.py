"""Print the Python example of the README's "Python API" section (CI type-checks it)."""

import pathlib
import re
import sys

text = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "README.md").read_text(encoding="utf-8")
section = text.split("### Python API", 1)[1]
found = re.search(r"```python\n(.*?)```", section, re.S)
if found is None:
    sys.exit("README.md: no ```python block in the Python API section")
sys.stdout.write(found.group(1))
