"""Print one of the README's two set-up commands exactly as written (CI runs them literally).

Usage: python .ci/readme_commands.py 1|2   (standard library only: it runs before any install)
"""

import re
import sys
from pathlib import Path

readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
blocks = re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)
if len(blocks) != 2 or any("\n" in b.strip() for b in blocks):
    sys.exit("README.md: the section 'Two commands' must hold exactly two one-line sh blocks")
print(blocks[int(sys.argv[1]) - 1].strip())
