"""rs-openvocab for QGIS: open-vocabulary segmentation of raster layers through a local backend.

The plugin imports qgis/PyQt and the standard library only; torch lives in the backend's
own environment, reached over HTTP (see ``client``).
"""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from rs_openvocab.plugin import RsOpenVocabPlugin

    return RsOpenVocabPlugin(iface)
