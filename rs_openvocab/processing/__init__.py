"""The Processing provider: segmentation from the toolbox, batch mode, models and qgis_process."""
