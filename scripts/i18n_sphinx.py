"""Sphinx extension of the Chinese build (_config.zh.yml loads it), for three things Sphinx's
translation does not do by itself with this theme, myst-nb and sphinx-external-toc: the theme's
interface strings from our own catalog, glued values in translated paragraphs, and translated
part captions in the table of contents (TranslateTocCaptions below).

sphinx-book-theme 1.3.0 ships a zh_CN catalog that is partly Traditional ("列印成 PDF") and looks
its strings up at render time through the "booktheme" message catalog. Sphinx's locale_dirs cannot
override a theme's catalog (a later catalog only becomes a fallback), so this puts
locales/theme/<language>/LC_MESSAGES/booktheme.po in front of the theme's, which stays the
fallback. Sphinx's own strings ("sphinx" catalog) are overridden the ordinary way: locales/theme/ is
in locale_dirs.

It also lets translated paragraphs use {glue:text}`...` (and the other glue roles). Sphinx parses
each translation as a small Markdown document of its own, without the notebook whose outputs hold
the glued values, so myst-nb would warn "No key ... found in glue data". The notebook's renderer,
which holds those values, is kept while the notebook is read and handed to its translations.
"""
import gettext
from pathlib import Path

from sphinx import addnodes
from sphinx.locale import translators
from sphinx.transforms import SphinxTransform

CATALOG = "booktheme"


class _PoTranslations(gettext.NullTranslations):
    """The translated, non-fuzzy entries of one .po file; anything else goes to the fallback."""

    def __init__(self, path: Path):
        super().__init__()
        from babel.messages.pofile import read_po
        with open(path, "rb") as f:
            self._messages = {m.id: m.string for m in read_po(f) if m.id and m.string and not m.fuzzy}

    def gettext(self, message):
        if message in self._messages:
            return self._messages[message]
        return self._fallback.gettext(message) if self._fallback else message


def _override_theme_catalog(app):
    language = app.config.language or "en"
    path = Path(app.srcdir) / "locales" / "theme" / language / "LC_MESSAGES" / f"{CATALOG}.po"
    if not path.exists():
        return
    ours = _PoTranslations(path)
    theirs = translators.get(("general", CATALOG))
    if theirs is not None:
        ours.add_fallback(theirs)
    translators[("general", CATALOG)] = ours


_current = {"reading": None, "docname": None, "renderer": None}


def _keep_notebook_renderer():
    """Remember the notebook renderer myst-nb creates for the document being read, and give it to
    the documents Sphinx creates to parse that document's translations."""
    import myst_nb.sphinx_ as nb_sphinx
    import sphinx.transforms.i18n as sphinx_i18n
    from sphinx.io import SphinxI18nReader

    if getattr(nb_sphinx, "_actgrad_i18n_patched", False):
        return
    load_renderer = nb_sphinx.load_renderer

    def load_renderer_keeping(name):
        cls = load_renderer(name)

        def make(mdit_renderer, logger):
            element = cls(mdit_renderer, logger)
            _current["renderer"] = element
            _current["docname"] = _current["reading"]
            return element
        return make

    parse = nb_sphinx.Parser.parse

    def parse_noting_docname(self, inputstring, document):
        env = getattr(document.settings, "env", None)
        _current["reading"] = env.docname if env is not None else None
        return parse(self, inputstring, document)

    new_document = SphinxI18nReader.new_document

    def new_document_with_renderer(self):
        document = new_document(self)
        env = getattr(self.settings, "env", None)
        if env is not None and _current["renderer"] is not None and _current["docname"] == env.docname:
            document.attributes["nb_renderer"] = _current["renderer"]
        return document

    publish_msgstr = sphinx_i18n.publish_msgstr

    def publish_msgstr_then_forget(*args, **kwargs):
        # The translated nodes keep a reference to their small document, which is pickled with
        # the page: it must not hold the renderer any more.
        patch = publish_msgstr(*args, **kwargs)
        document = getattr(patch, "document", None)
        if document is not None:
            document.attributes.pop("nb_renderer", None)
        return patch

    nb_sphinx.load_renderer = load_renderer_keeping
    sphinx_i18n.publish_msgstr = publish_msgstr_then_forget
    nb_sphinx.Parser.parse = parse_noting_docname
    SphinxI18nReader.new_document = new_document_with_renderer
    nb_sphinx._actgrad_i18n_patched = True


class TranslateTocCaptions(SphinxTransform):
    """Translate the table of contents' part captions ("Foundations", ...), which the gettext
    builder extracts into the root page's catalog: sphinx-external-toc inserts the toctrees
    (priority 100) only after Sphinx has translated the page (Locale, priority 20)."""

    default_priority = 101

    def apply(self, **kwargs):
        from sphinx.builders.gettext import MessageCatalogBuilder
        from sphinx.locale import init as init_locale
        from sphinx.util.i18n import docname_to_domain

        if isinstance(self.app.builder, MessageCatalogBuilder) or not self.config.locale_dirs:
            return
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        dirs = [str(Path(self.env.srcdir) / d) for d in self.config.locale_dirs]
        catalog, found = init_locale(dirs, self.config.language, domain)
        if not found:
            return
        for toctree in self.document.findall(addnodes.toctree):
            caption = toctree.get("caption")
            if caption and catalog.gettext(caption) != caption:
                toctree["caption"] = catalog.gettext(caption)


class OutputsStayEnglish(SphinxTransform):
    """Text that a code cell printed or displayed (computed tables, printed numbers) is output,
    not prose: it stays English and is not extracted (its numbers change from build to build, as
    timings do). Figure captions and alt texts, which sit in the outputs, remain translatable.
    Runs before Sphinx translates the page (Locale, priority 20); the extraction loads it too."""

    default_priority = 15

    def apply(self, **kwargs):
        from docutils import nodes

        for out in self.document.findall(nodes.container):
            if "cell_output" not in out.get("classes", []):
                continue
            for node in out.findall(nodes.TextElement):
                if not _inside(node, (nodes.caption, nodes.legend)):
                    node["translatable"] = False


def _inside(node, kinds):
    while node is not None:
        if isinstance(node, kinds):
            return True
        node = node.parent
    return False


def setup(app):
    _keep_notebook_renderer()
    app.connect("builder-inited", _override_theme_catalog)
    app.add_transform(TranslateTocCaptions)
    app.add_transform(OutputsStayEnglish)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
