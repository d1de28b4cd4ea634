"""The README stays a front page: short, a quickstart that fits on a screen, links that
resolve inside the repository. (The quickstart itself takes over a minute; it is run by
hand and its output quoted in the README, not run here.)"""

import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..")
README = os.path.join(ROOT, "README.md")


def _readme():
    with open(README, encoding="utf-8") as f:
        return f.read()


def first_python_block(text):
    """The lines of the first ```python block of a Markdown text."""
    match = re.search(r"^```python\n(.*?)^```$", text, re.DOTALL | re.MULTILINE)
    if match is None:
        raise ValueError("no ```python block found")
    return match.group(1).splitlines()


def test_readme_is_at_most_150_lines():
    assert len(_readme().splitlines()) <= 150


def test_the_quickstart_is_the_first_python_block_and_at_most_20_lines():
    quickstart = first_python_block(_readme())
    assert 5 <= len(quickstart) <= 20, quickstart
    assert any("from_pretrained" in line for line in quickstart)  # the transfer step
    assert any("export_image_classifier(" in line for line in quickstart)


def test_first_python_block_finds_the_first_and_only_python():
    text = "```bash\nls\n```\n\n```python\na = 1\n```\n```python\nb = 2\n```\n"
    assert first_python_block(text) == ["a = 1"]


def test_links_stay_inside_the_repository_and_resolve():
    targets = re.findall(r"\]\(([^)]+)\)", _readme())
    assert targets
    outside = [t for t in targets if "://" in t or t.startswith(("/", "mailto:"))]
    assert not outside, outside
    missing = [t for t in targets if not os.path.exists(os.path.join(ROOT, t.split("#")[0]))]
    assert not missing, missing
