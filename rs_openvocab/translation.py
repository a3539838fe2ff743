"""Translations: every user-visible string goes through ``tr()``; ``.qm`` files load by the QGIS locale."""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, QLocale, QTranslator

CONTEXT = "rs_openvocab"
FOLDER = Path(__file__).resolve().parent / "i18n"
LANGUAGES = ("zh_CN", "de")


def tr(text: str) -> str:
    return QCoreApplication.translate(CONTEXT, text)


def qgis_locale() -> str:
    """The locale QGIS shows its interface in (its override setting, else the system's)."""
    settings = QgsSettings()
    if settings.value("locale/overrideFlag", False, type=bool):
        return settings.value("locale/userLocale", "") or QLocale.system().name()
    return QLocale.system().name()


def install_translator(locale: str | None = None) -> QTranslator | None:
    """Load the plugin's ``.qm`` for ``locale`` (zh_CN, de, or de_AT -> de); None when there is none."""
    locale = locale or qgis_locale()
    for name in (locale, locale.split("_")[0]):
        path = FOLDER / f"rs_openvocab_{name}.qm"
        if path.is_file():
            translator = QTranslator()
            if translator.load(str(path)):
                QCoreApplication.installTranslator(translator)
                return translator
    return None


def remove_translator(translator: QTranslator | None) -> None:
    if translator is not None:
        QCoreApplication.removeTranslator(translator)
