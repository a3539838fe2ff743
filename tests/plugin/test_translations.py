"""The plugin speaks Simplified Chinese and German: every tr() string is translated, and the dock shows them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from qgis.core import QgsSettings

import rs_openvocab
from rs_openvocab.translation import install_translator, remove_translator, tr

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "translations.py"
LOCALE_KEYS = ("locale/overrideFlag", "locale/userLocale")


def test_every_string_has_a_finished_zh_cn_and_de_translation():
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("locale, translated", [("zh_CN", "运行"), ("de", "Starten"), ("de_AT", "Starten")])
def test_install_translator_loads_the_language_and_remove_translator_unloads_it(locale, translated):
    translator = install_translator(locale)
    try:
        assert translator is not None and tr("Run") == translated
    finally:
        remove_translator(translator)
    assert tr("Run") == "Run"


@pytest.fixture
def plugin_in_locale(request, qgis_iface, project):
    """The plugin built while QGIS's interface language is overridden to ``request.param``; English again after."""
    settings = QgsSettings()
    saved = {key: settings.value(key) for key in LOCALE_KEYS if settings.contains(key)}
    settings.setValue("locale/overrideFlag", True)
    settings.setValue("locale/userLocale", request.param)
    plugin = rs_openvocab.classFactory(qgis_iface)
    try:
        plugin.initGui()  # installs the translator of QGIS's locale
        yield plugin
    finally:
        plugin.unload()  # removes it
        for key in LOCALE_KEYS:
            settings.setValue(key, saved[key]) if key in saved else settings.remove(key)
    assert tr("Run") == "Run", "a translator outlived the plugin"


@pytest.mark.parametrize("plugin_in_locale, widget, english, translated", [
    ("zh_CN", "run_button", "Run", "运行"),
    ("de", "connect_button", "Connect", "Verbinden"),
], indirect=["plugin_in_locale"])
def test_the_dock_shows_the_qgis_locale(plugin_in_locale, widget, english, translated):
    dock = plugin_in_locale.dock
    assert plugin_in_locale.translator is not None
    assert getattr(dock, widget).text() == translated != english
    assert dock.windowTitle() == tr("rs-openvocab segmentation") != "rs-openvocab segmentation"
