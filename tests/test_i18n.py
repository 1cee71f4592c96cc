"""The Chinese edition (locales/, scripts/i18n.py): catalogs complete and in step with the English
text, the Chinese site built with -W from the same notebooks, language links both ways on every
page, Chinese search, Simplified Chinese interface strings.

`test_every_catalog_entry_is_translated` fails until the translators have finished.
"""
import html
import json
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import i18n  # noqa: E402

from babel.messages.pofile import read_po  # noqa: E402


def toc_pages(toc="_toc.yml"):
    data = yaml.safe_load((ROOT / toc).read_text(encoding="utf-8"))
    return [data["root"]] + [c["file"] for part in data["parts"] for c in part["chapters"]]


def entries(po):
    with open(po, "rb") as f:
        return [m for m in read_po(f) if m.id]


def article_text(page: Path) -> str:
    """The visible text of a built page's article (tags stripped, entities decoded)."""
    text = page.read_text(encoding="utf-8")
    start = text.find('<article class="bd-article"')
    end = text.find("</article>", start)
    body = text[start:end] if start >= 0 else text
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


# ---------------------------------------------------------------- without a build

def test_generated_files_are_in_sync():
    stale = [str(p.relative_to(ROOT)) for p in i18n.stale_generated()]
    assert stale == [], (f"{stale} are stale: they are generated from _config.yml, _toc.yml, "
                         "locales/glossary.yml and locales/zh_CN/site.yml; run `python scripts/i18n.py config`")


def test_there_is_one_catalog_per_page_of_the_book():
    want = set(toc_pages())
    have = {str(p.relative_to(i18n.CATALOGS).with_suffix("")) for p in i18n.catalogs()}
    assert have == want, (f"catalogs without a page: {sorted(have - want)}; pages without a catalog: "
                          f"{sorted(want - have)} (run `make catalogs`)")


def test_glossary_has_the_course_terms_once_each():
    terms = i18n.glossary_terms()
    by_en = {t["en"]: t["zh"] for t in terms}
    required = {"activation function": "激活函数", "vanishing gradient": "梯度消失",
                "exploding gradient": "梯度爆炸", "backpropagation": "反向传播", "gradient clipping": "梯度裁剪",
                "batch normalization": "批量规范化", "layer normalization": "层规范化",
                "residual connection": "残差连接", "dead neuron": "死亡神经元",
                "weight initialization": "权重初始化", "learning rate": "学习率", "loss function": "损失函数",
                "cross-entropy": "交叉熵", "automatic differentiation (autodiff)": "自动微分",
                "chain rule": "链式法则", "numerical stability": "数值稳定性", "saturation": "饱和"}
    wrong = {en: (zh, by_en.get(en)) for en, zh in required.items() if by_en.get(en) != zh}
    assert wrong == {}, f"glossary terms missing or different (expected, got): {wrong}"
    for key in ("en", "zh"):
        values = [t[key] for t in terms]
        dupes = sorted({v for v in values if values.count(v) > 1})
        assert dupes == [], f"glossary.yml: {key} values used twice: {dupes}"


def test_markup_check_catches_what_a_translation_must_keep():
    """The check translators run (scripts/i18n.py check) must see a dropped role, math or link."""
    msgid = "At rate {glue:text}`lr:.1f`, see {numref}`fig-x` and $z < 0$ in [Exercise 4](../a4.ipynb) {cite:p}`he2015`."
    good = "学习率为 {glue:text}`lr:.1f` 时，见 {numref}`fig-x` 与 $z < 0$，参见[练习 4](../a4.ipynb) {cite:p}`he2015`。"
    assert i18n.entry_problems(msgid, good) == [], "a faithful translation was flagged"
    for broken in (good.replace("{glue:text}`lr:.1f`", "0.1"), good.replace("$z < 0$", "z < 0"),
                   good.replace("(../a4.ipynb)", "(a4.ipynb)"), good.replace("{cite:p}`he2015`", "(He 2015)"),
                   good.replace("{numref}`fig-x`", "{numref}`fig-y`")):
        assert i18n.entry_problems(msgid, broken), f"not flagged: {broken!r}"


def test_catalogs_are_valid_and_keep_the_markup():
    """msgfmt -c accepts every catalog and every translation keeps its English text's math, code,
    roles and link targets (`python scripts/i18n.py check` prints the offending entries)."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "i18n.py"), "check"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_every_catalog_entry_is_translated():
    """Fails until the translation is complete (and again whenever the English text changes:
    `make catalogs` turns a changed paragraph into a fuzzy or untranslated entry)."""
    todo = {}
    for po in i18n.catalogs():
        left = [m for m in entries(po) if m.fuzzy or not m.string]
        if left:
            todo[str(po.relative_to(i18n.CATALOGS))] = (len(left), left[0].id[:80])
    assert todo == {}, ("untranslated or fuzzy entries (catalog: (count, first English text)); "
                        f"`python scripts/i18n.py stats` lists them all: {todo}")


def test_theme_catalogs_cover_the_theme_in_simplified_chinese():
    """Our catalogs replace every string of sphinx-book-theme's zh_CN catalog, and contain no
    Traditional-only characters (the theme's own has "列印成 PDF")."""
    import sphinx_book_theme
    theirs = Path(sphinx_book_theme.__file__).parent / "theme" / "sphinx_book_theme" / "static" / "locales" / \
        "zh_CN" / "LC_MESSAGES" / "booktheme.po"
    ours = i18n.THEME_CATALOGS / "zh_CN" / "LC_MESSAGES"
    missing = {m.id for m in entries(theirs)} - {m.id for m in entries(ours / "booktheme.po") if m.string}
    assert missing == set(), f"booktheme strings without our Simplified Chinese: {sorted(missing)}"
    traditional = set("們個來這說為與裡後會時還點開關頁載網擊據數碼檔轉換結設處錯誤鍵顯圖聯繫條")
    for po in ours.glob("*.po"):
        bad = [(m.id, m.string) for m in entries(po) if set(m.string) & traditional or "列印" in m.string]
        assert bad == [], f"{po.name}: Traditional Chinese in {bad}"


# ---------------------------------------------------------------- on the built sites

@pytest.fixture(scope="module")
def zh_site(built_site):
    site = Path(built_site) / "zh"
    assert (site / "index.html").is_file(), "the Chinese site was not built into _build/html/zh"
    return site


def test_catalogs_match_the_english_text(built_site, tmp_path):
    """Re-extract the English text (from the build's execution cache) and compare it with the
    committed catalogs: a changed or new English paragraph fails here until `make catalogs`
    (and then test_every_catalog_entry_is_translated until it is translated)."""
    pot = tmp_path / "pot"
    i18n.extract(pot)
    problems = []
    for template in sorted(pot.rglob("*.pot")):
        page = template.relative_to(pot).with_suffix("")
        po = i18n.CATALOGS / page.with_suffix(".po")
        english = {m.id for m in entries(template)}
        catalog = {m.id for m in entries(po)} if po.exists() else set()
        if english - catalog:
            problems.append(f"{page}: English text not in the catalog: {sorted(english - catalog)[:3]}")
        if catalog - english:
            problems.append(f"{page}: catalog entries no longer in the English text: {sorted(catalog - english)[:3]}")
    assert problems == [], "the catalogs are out of step with the book; run `make catalogs`:\n" + "\n".join(problems)


def test_figure_captions_and_answers_are_in_the_catalogs():
    """Captions live in code cells' metadata (mystnb.figure.caption) and answers in dropdowns:
    both must be extracted (oracle: the notebooks themselves)."""
    missing = []
    for page in toc_pages():
        nb = ROOT / f"{page}.ipynb"
        if not nb.exists():
            continue
        ids = {m.id for m in entries(i18n.CATALOGS / f"{page}.po")}
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            caption = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("caption")
            if caption and " ".join(caption.split()) not in ids:
                missing.append((page, caption[:60]))
    assert missing == [], f"figure captions not in the catalogs (run `make catalogs`): {missing}"
    answers = [m.id for m in entries(i18n.CATALOGS / "book" / "09_dead_neurons.po") if m.id.startswith("Answer")]
    assert answers, "the dropdown titles of book/09_dead_neurons ('Answer 1', ...) are not extracted"


def test_chinese_site_has_every_page_in_chinese(zh_site):
    pages = toc_pages("_toc.zh.yml")
    missing = [p for p in pages if not (zh_site / f"{p}.html").is_file()]
    assert missing == [], f"pages missing from the Chinese site: {missing}"
    not_zh = [p for p in pages if '<html lang="zh-CN"' not in (zh_site / f"{p}.html").read_text(encoding="utf-8")]
    assert not_zh == [], f"Chinese pages without <html lang=\"zh-CN\">: {not_zh}"
    # Sphinx's smart quotes print "LSTM's" as "LSTM’s": compare with straight apostrophes.
    glossary = article_text(zh_site / "locales" / "glossary.html").replace("\u2019", "'")
    for term in i18n.glossary_terms():
        assert term["zh"] in glossary and term["en"] in glossary, f"glossary page lacks {term}"


LINK = re.compile(r'<a class="btn btn-sm lang-switch" href="([^"]+)"')


def test_language_links_both_ways_on_every_page(built_site, zh_site):
    """Every English page links to the same page in Chinese and back, by a relative URL that
    exists (so it works from file:// and over http); the Chinese-only glossary links to the
    English home page."""
    site = Path(built_site)
    problems = []
    for page in toc_pages("_toc.zh.yml"):
        pairs = [(zh_site / f"{page}.html", site / f"{page}.html")]
        if page in i18n.ZH_ONLY:
            pairs = [(zh_site / f"{page}.html", site / f"{toc_pages()[0]}.html")]
        else:
            pairs.append((site / f"{page}.html", zh_site / f"{page}.html"))
        for source, target in pairs:
            links = LINK.findall(source.read_text(encoding="utf-8"))
            if len(links) != 1 or links[0].startswith(("/", "http:", "https:", "file:")):
                problems.append(f"{source.relative_to(site)}: language links {links} (want one, relative)")
                continue
            resolved = Path(posixpath.normpath(posixpath.join(str(source.parent), links[0])))
            if resolved != target or not resolved.is_file():
                problems.append(f"{source.relative_to(site)} -> {links[0]}: {resolved}, want {target}")
    assert problems == [], "\n".join(problems)


def test_interface_strings_are_simplified_chinese(zh_site):
    page = (zh_site / "book" / "09_dead_neurons.html").read_text(encoding="utf-8")
    for bad in ("列印", "Search this book", "Print to PDF", "Download source file", "Show code cell"):
        assert bad not in page, f"{bad!r} on a Chinese page: the theme's string is not overridden"
    for good in ("打印为 PDF", 'placeholder="搜索本书……"', "下载源文件", "显示代码"):
        assert good in page, f"{good!r} missing from a Chinese page (locales/theme, locales/zh_CN/site.yml)"


def test_hidden_cells_hide_only_code():
    """locales/zh_CN/site.yml words the hidden-cell button as "显示代码" (show the code): right only while
    the book hides inputs and nothing else."""
    other = sorted({f"{nb.name}: {tag}" for nb in (ROOT / "book").glob("*.ipynb")
                    for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]
                    for tag in cell.get("metadata", {}).get("tags", [])
                    if tag.startswith("hide-") and tag != "hide-input"})
    assert other == [], ("cells hide more than their code; reword code_prompt_show/hide in "
                         f"locales/zh_CN/site.yml (myst-nb's {{type}} would stay English): {other}")


def _search_index(site: Path):
    text = (site / "searchindex.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("(") + 1:text.rindex(")")])


def test_chinese_search_finds_the_pages_for_each_term(zh_site):
    """Every glossary term the search indexes as one word (scripts/i18n.py search_words) finds
    every Chinese page whose text contains it (oracle: the pages' HTML text); without jieba and
    the dictionary, 激活函数 and 死亡神经元 are no index terms at all."""
    index = _search_index(zh_site)
    docnames = index["docnames"]
    pages = {d: article_text(zh_site / f"{d}.html") for d in docnames if (zh_site / f"{d}.html").is_file()}
    problems = []
    for word in i18n.search_words():
        hits = index["terms"].get(word, [])
        hits = {docnames[i] for i in ([hits] if isinstance(hits, int) else hits)}
        hits |= {docnames[i] for i in (lambda h: [h] if isinstance(h, int) else h)(index["titleterms"].get(word, []))}
        want = {d for d, text in pages.items() if word in text}
        if want - hits:
            problems.append(f"{word}: not found on {sorted(want - hits)}")
    for word in ("激活函数", "梯度消失", "反向传播", "死亡神经元"):
        if word not in index["terms"]:
            problems.append(f"{word} is not an index term (jieba or locales/zh_CN/jieba_dict.txt missing?)")
    assert problems == [], "\n".join(problems)


def test_translated_text_renders_with_its_roles(built_site, tmp_path):
    """A machine 'translation' (a marker before every English text) of one chapter and of the
    home page builds with -W, and the page shows the same glued numbers, figure numbers and
    citations as the English one, the marker in its captions, answers and table of contents."""
    marker = "【译】"
    locales = tmp_path / "locales"
    for page in ("book/09_dead_neurons", "book/intro"):
        src = i18n.CATALOGS / f"{page}.po"
        with open(src, "rb") as f:
            cat = read_po(f)
        for m in cat:
            if m.id:
                m.string, m.flags = marker + m.id, set()
        dest = locales / "zh_CN" / "LC_MESSAGES" / f"{page}.po"
        dest.parent.mkdir(parents=True, exist_ok=True)
        from babel.messages.pofile import write_po
        with open(dest, "wb") as f:
            write_po(f, cat, width=0)
    config = yaml.safe_load(i18n.CONFIG_ZH.read_text(encoding="utf-8"))
    config["sphinx"]["config"]["locale_dirs"] = [str(locales), "locales/theme/"]
    config["sphinx"]["local_extensions"] = {"i18n_sphinx": str(ROOT / "scripts")}
    conf = tmp_path / "_config.yml"
    conf.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.run([str(i18n.BIN / "jupyter-book"), "build", str(ROOT), "--config", str(conf), "--toc",
                           str(i18n.TOC_ZH), "--path-output", str(out), "-W", "-n", "--keep-going"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"the translated build failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-3000:]}"
    html_dir = out / "_build" / "html"
    en = (Path(built_site) / "book" / "09_dead_neurons.html").read_text(encoding="utf-8")
    zh = (html_dir / "book" / "09_dead_neurons.html").read_text(encoding="utf-8")
    for pattern, what in ((r'class="pasted-text">([^<]*)<', "glued values"),
                          (r'class="std std-numref">[^<]*?(\d+\.\d+)<', "figure references"),
                          (r'<span class="bibtex-citation"[^>]*>\[<a [^>]*>([^<]*)<', "citations")):
        assert re.findall(pattern, zh) == re.findall(pattern, en), f"{what} differ between English and translated page"
    assert re.findall(r'class="pasted-text">', zh), "no glued value on the page: wrong chapter?"
    captions = re.findall(r'<span class="caption-text">([^<]*)<', zh)
    assert captions and all(c.startswith(marker) for c in captions), f"untranslated captions: {captions}"
    assert f"{marker}Answer 1" in zh, "dropdown titles are not translated"
    assert f'caption-text">{marker}Foundations' in zh, "the table of contents' part captions are not translated"
    shutil.rmtree(out, ignore_errors=True)
