"""course.yml is the one place that says where the course lives: every file that shows a button
or a "get the course" instruction is in sync with it (scripts/course_location.py --check), no
placeholder address is left anywhere, and the renderer turns buttons on and off as the URLs are
set or not (checked by parsing what it writes, the way Jupyter Book reads it)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import course_location as cl  # noqa: E402

UNSET = {"repository_url": "", "branch": "main", "binderhub_url": "", "jupyterhub_url": ""}
SET = {"repository_url": "https://github.com/someone/actgrad", "branch": "spring",
       "binderhub_url": "https://mybinder.org", "jupyterhub_url": "https://hub.uni.example"}


@pytest.mark.parametrize("path", cl.targets(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_is_in_sync_with_course_yml(path):
    found = cl.problems(path, cl.load())
    assert found == [], ("\n".join(found) + "\nRun `python scripts/course_location.py` (then "
                         "`python -m course release` for the student notebooks).")


def test_the_config_block_exists_and_the_site_has_no_placeholder_button():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cl.YAML_BEGIN in (ROOT / "_config.yml").read_text(), "_config.yml has no course-location block"
    assert config["launch_buttons"].get("colab_url", "") == "", \
        "Colab cannot install actgrad (not on PyPI): no Colab button"
    loc = cl.load()
    assert config["repository"]["url"] == loc["repository_url"]
    assert config["html"]["use_repository_button"] == bool(loc["repository_url"])


def test_unset_urls_render_no_button_and_tell_how_to_get_the_course():
    config = yaml.safe_load(cl.render_config(UNSET))
    assert config["repository"]["url"] == ""
    assert not any(config["html"].values()), config["html"]
    assert not any(v for k, v in config["launch_buttons"].items() if k.endswith("_url")), config
    text = cl.render_get_course(UNSET)
    assert "git clone" not in text and "instructor" in text


def test_set_urls_render_buttons_and_a_clone_command():
    config = yaml.safe_load(cl.render_config(SET))
    assert config["repository"] == {"url": SET["repository_url"], "branch": "spring"}
    assert config["html"]["use_repository_button"] and config["html"]["use_issues_button"]
    assert config["launch_buttons"]["binderhub_url"] == SET["binderhub_url"]
    assert config["launch_buttons"]["jupyterhub_url"] == SET["jupyterhub_url"]
    assert config["launch_buttons"]["colab_url"] == ""
    assert cl.render_get_course(SET) == \
        "```bash\ngit clone --branch spring https://github.com/someone/actgrad.git && cd actgrad\n```\n"


def test_render_migrates_the_placeholder_and_is_idempotent(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("1. Get it:\n\n   ```bash\n   git clone <course repository> && cd <course repository>\n"
                    "   pip install -e .\n   ```\n")
    first = cl.render_file(page, SET)
    assert "<course repository>" not in first
    assert "   ```bash\n   git clone --branch spring https://github.com/someone/actgrad.git" in first, first
    assert first.endswith("   ```bash\n   pip install -e .\n   ```\n"), "the rest of the fence must stay"
    page.write_text(first)
    assert cl.render_file(page, SET) == first, "rendering twice must change nothing"
    assert cl.problems(page, SET) == []
    assert cl.problems(page, UNSET) == [f"{page}: out of sync with course.yml"], \
        "a block rendered for other settings must be reported as out of sync"


def test_notebook_cells_keep_their_layout(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": [
        "Set up:\n", "\n", "```bash\n", "git clone <course repository> && cd <course repository>\n",
        "pip install -e .\n", "```\n"]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "a.ipynb"
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    new = json.loads(cl.render_file(path, UNSET))
    text = "".join(new["cells"][0]["source"])
    assert "ask your instructor" in text and "<course repository>" not in text
    assert isinstance(new["cells"][0]["source"], list), "a list source must stay a list"


@pytest.mark.parametrize("bad,match", [
    ({"repository_url": "http://github.com/x/y"}, "https"),
    ({"repository_url": "https://github.com/actgrad-course/activation-functions"}, "placeholder"),
    ({"jupyterhub_url": "https://hub.uni.example"}, "repository_url"),
    ({"colab_url": "https://colab.research.google.com"}, "unknown keys"),
])
def test_bad_course_yml_is_refused(tmp_path, bad, match):
    path = tmp_path / "course.yml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ValueError, match=match):
        cl.load(path)


def test_command_line_check_exits_non_zero_when_out_of_sync(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(f"{cl.MD_BEGIN}\nstale\n{cl.MD_END}\n")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "course_location.py"), "--check", str(page)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "out of sync" in proc.stdout, proc.stdout + proc.stderr
