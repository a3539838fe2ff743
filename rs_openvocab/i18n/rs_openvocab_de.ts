<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de">
    <context>
        <name>rs_openvocab</name>
        <message>
            <source>Choose a polygon layer for the area.</source>
            <translation>Wählen Sie einen Polygonlayer für das Gebiet.</translation>
        </message>
        <message>
            <source>Select at least one polygon in layer '{0}' (or choose another area).</source>
            <translation>Wählen Sie im Layer '{0}' mindestens ein Polygon aus (oder wählen Sie ein anderes Gebiet).</translation>
        </message>
        <message>
            <source>The selected features of '{0}' have no geometry.</source>
            <translation>Die ausgewählten Objekte von '{0}' haben keine Geometrie.</translation>
        </message>
        <message>
            <source>The area does not overlap layer '{0}'; draw it over the layer or choose 'Whole layer'.</source>
            <translation>Das Gebiet überschneidet sich nicht mit dem Layer '{0}'; zeichnen Sie es über dem Layer oder wählen Sie 'Gesamter Layer'.</translation>
        </message>
        <message>
            <source>{0:.0f} s</source>
            <translation>{0:.0f} s</translation>
        </message>
        <message>
            <source>{0:.0f} min</source>
            <translation>{0:.0f} min</translation>
        </message>
        <message>
            <source>{0:.1f} h</source>
            <translation>{0:.1f} h</translation>
        </message>
        <message>
            <source>measured on this backend</source>
            <translation>auf diesem Backend gemessen</translation>
        </message>
        <message>
            <source>rough guess until the first run</source>
            <translation>grobe Schätzung bis zum ersten Lauf</translation>
        </message>
        <message>
            <source>{0} × {1} px ({2:.2f} MP), about {3} ({4})</source>
            <translation>{0} × {1} px ({2:.2f} MP), etwa {3} ({4})</translation>
        </message>
        <message>
            <source>The rs-openvocab backend at {0} does not answer ({1}); start it, or check the URL in the plugin's backend settings.</source>
            <translation>Das rs-openvocab-Backend unter {0} antwortet nicht ({1}); starten Sie es oder prüfen Sie die URL in den Backend-Einstellungen des Plugins.</translation>
        </message>
        <message>
            <source>{0} answered {1} with something that is not JSON; is this URL an rs-openvocab backend?</source>
            <translation>{0} hat auf {1} nicht mit JSON geantwortet; ist diese URL ein rs-openvocab-Backend?</translation>
        </message>
        <message>
            <source>The backend refused the request (HTTP {0}).</source>
            <translation>Das Backend hat die Anfrage abgelehnt (HTTP {0}).</translation>
        </message>
        <message>
            <source>The backend refused the token; copy the token from the backend's token file into the settings.</source>
            <translation>Das Backend hat das Token abgelehnt; kopieren Sie das Token aus der Token-Datei des Backends in die Einstellungen.</translation>
        </message>
        <message>
            <source>The run was cancelled; nothing was written.</source>
            <translation>Der Lauf wurde abgebrochen; es wurde nichts geschrieben.</translation>
        </message>
        <message>
            <source>The backend stopped during the run ({0}); nothing was written, run it again.</source>
            <translation>Das Backend wurde während des Laufs beendet ({0}); es wurde nichts geschrieben, starten Sie den Lauf erneut.</translation>
        </message>
        <message>
            <source>The run failed on the backend.</source>
            <translation>Der Lauf ist im Backend fehlgeschlagen.</translation>
        </message>
        <message>
            <source>The backend is version {0} and the plugin {1}; update the one that is older so that both match.</source>
            <translation>Das Backend hat die Version {0}, das Plugin {1}; aktualisieren Sie das ältere, damit beide übereinstimmen.</translation>
        </message>
        <message>
            <source>Give the Python of the backend's environment in the plugin's backend settings, or the URL of a running 'rsov serve'.</source>
            <translation>Geben Sie in den Backend-Einstellungen des Plugins das Python der Backend-Umgebung an oder die URL eines laufenden 'rsov serve'.</translation>
        </message>
        <message>
            <source>rs-openvocab segmentation</source>
            <translation>rs-openvocab-Segmentierung</translation>
        </message>
        <message>
            <source>Backend</source>
            <translation>Backend</translation>
        </message>
        <message>
            <source>Not connected</source>
            <translation>Nicht verbunden</translation>
        </message>
        <message>
            <source>Start it from a Python environment</source>
            <translation>Aus einer Python-Umgebung starten</translation>
        </message>
        <message>
            <source>Connect to a running rsov serve</source>
            <translation>Mit einem laufenden rsov serve verbinden</translation>
        </message>
        <message>
            <source>Connect</source>
            <translation>Verbinden</translation>
        </message>
        <message>
            <source>Python</source>
            <translation>Python</translation>
        </message>
        <message>
            <source>URL</source>
            <translation>URL</translation>
        </message>
        <message>
            <source>Token</source>
            <translation>Token</translation>
        </message>
        <message>
            <source>Raster layer</source>
            <translation>Rasterlayer</translation>
        </message>
        <message>
            <source>The layer is not a file the backend can read: it is drawn at this ground resolution first.</source>
            <translation>Der Layer ist keine Datei, die das Backend lesen kann: Er wird zuerst in dieser Bodenauflösung gezeichnet.</translation>
        </message>
        <message>
            <source>Draw at</source>
            <translation>Zeichnen mit</translation>
        </message>
        <message>
            <source>Whole layer</source>
            <translation>Gesamter Layer</translation>
        </message>
        <message>
            <source>Current map extent</source>
            <translation>Aktuelle Kartenausdehnung</translation>
        </message>
        <message>
            <source>Drawn on the map</source>
            <translation>Auf der Karte gezeichnet</translation>
        </message>
        <message>
            <source>Selected features of</source>
            <translation>Ausgewählte Objekte von</translation>
        </message>
        <message>
            <source>Area</source>
            <translation>Gebiet</translation>
        </message>
        <message>
            <source>Draw rectangle</source>
            <translation>Rechteck zeichnen</translation>
        </message>
        <message>
            <source>Draw polygon</source>
            <translation>Polygon zeichnen</translation>
        </message>
        <message>
            <source>Polygon layer</source>
            <translation>Polygonlayer</translation>
        </message>
        <message>
            <source>Name the classes</source>
            <translation>Klassen benennen</translation>
        </message>
        <message>
            <source>Describe the target</source>
            <translation>Ziel beschreiben</translation>
        </message>
        <message>
            <source>Name the classes: every pixel gets one of the classes you list. Describe the target: a sentence about one thing in the area, and a GeoMag model finds its mask.</source>
            <translation>Klassen benennen: Jedes Pixel erhält eine der aufgeführten Klassen. Ziel beschreiben: Ein Satz über ein Objekt im Gebiet, und ein GeoMag-Modell findet seine Maske.</translation>
        </message>
        <message>
            <source>Find</source>
            <translation>Suchen</translation>
        </message>
        <message>
            <source>One class per line, synonyms by commas:
building,roof,house
road
water</source>
            <translation>Eine Klasse pro Zeile, Synonyme durch Kommas getrennt:
building,roof,house
road
water</translation>
        </message>
        <message>
            <source>Classes</source>
            <translation>Klassen</translation>
        </message>
        <message>
            <source>Recent</source>
            <translation>Zuletzt verwendet</translation>
        </message>
        <message>
            <source>Dataset preset</source>
            <translation>Datensatz-Voreinstellung</translation>
        </message>
        <message>
            <source>the small boat beside the second pier</source>
            <translation>the small boat beside the second pier (auf Englisch)</translation>
        </message>
        <message>
            <source>One sentence in English about the target in the area; its mask is added as a layer named after it.</source>
            <translation>Ein englischer Satz über das Ziel im Gebiet; seine Maske wird als Layer mit diesem Satz als Namen hinzugefügt.</translation>
        </message>
        <message>
            <source>GeoMag checkpoint (*.safetensors)</source>
            <translation>GeoMag-Checkpoint (*.safetensors)</translation>
        </message>
        <message>
            <source>All files (*)</source>
            <translation>Alle Dateien (*)</translation>
        </message>
        <message>
            <source>A GeoMag checkpoint file (training/geomag writes one), as a path the backend can read; its base models come through the backend's weights cache.</source>
            <translation>Eine GeoMag-Checkpoint-Datei (training/geomag schreibt eine) als Pfad, den das Backend lesen kann; ihre Basismodelle kommen über den Gewichte-Cache des Backends.</translation>
        </message>
        <message>
            <source>Target</source>
            <translation>Ziel</translation>
        </message>
        <message>
            <source>GeoMag checkpoint</source>
            <translation>GeoMag-Checkpoint</translation>
        </message>
        <message>
            <source>Optical</source>
            <translation>Optisch</translation>
        </message>
        <message>
            <source>SAR</source>
            <translation>SAR</translation>
        </message>
        <message>
            <source>Imagery</source>
            <translation>Bilddaten</translation>
        </message>
        <message>
            <source>Download weights</source>
            <translation>Gewichte herunterladen</translation>
        </message>
        <message>
            <source>Model</source>
            <translation>Modell</translation>
        </message>
        <message>
            <source>Advanced</source>
            <translation>Erweitert</translation>
        </message>
        <message>
            <source>preset</source>
            <translation>Voreinstellung</translation>
        </message>
        <message>
            <source>native</source>
            <translation>nativ</translation>
        </message>
        <message>
            <source>none</source>
            <translation>keine</translation>
        </message>
        <message>
            <source>Lee</source>
            <translation>Lee</translation>
        </message>
        <message>
            <source>refined Lee</source>
            <translation>Lee (verfeinert)</translation>
        </message>
        <message>
            <source>SAR only: filters speckle before the dB conversion (7 × 7 window)</source>
            <translation>Nur SAR: filtert Speckle vor der Umrechnung in dB (Fenster 7 × 7)</translation>
        </message>
        <message>
            <source>Also add the class raster</source>
            <translation>Auch das Klassenraster hinzufügen</translation>
        </message>
        <message>
            <source>Read the whole area at once (no MagCrop)</source>
            <translation>Das ganze Gebiet auf einmal lesen (ohne MagCrop)</translation>
        </message>
        <message>
            <source>MagCrop lets the model choose a part of the area and read it again at full resolution; without it the area is read once at the model's input size.</source>
            <translation>Mit MagCrop wählt das Modell einen Teil des Gebiets und liest ihn erneut in voller Auflösung; ohne MagCrop wird das Gebiet einmal in der Eingabegröße des Modells gelesen.</translation>
        </message>
        <message>
            <source>Window</source>
            <translation>Fenster</translation>
        </message>
        <message>
            <source>Stride</source>
            <translation>Schrittweite</translation>
        </message>
        <message>
            <source>Probability threshold</source>
            <translation>Wahrscheinlichkeitsschwelle</translation>
        </message>
        <message>
            <source>Resample to GSD</source>
            <translation>Resampling auf Bodenauflösung (GSD)</translation>
        </message>
        <message>
            <source>Simplify</source>
            <translation>Vereinfachen</translation>
        </message>
        <message>
            <source>Minimum area</source>
            <translation>Mindestfläche</translation>
        </message>
        <message>
            <source>Fill holes below</source>
            <translation>Löcher füllen unter</translation>
        </message>
        <message>
            <source>Speckle filter</source>
            <translation>Speckle-Filter</translation>
        </message>
        <message>
            <source>project folder / rs-openvocab / LAYER_TIME.gpkg</source>
            <translation>Projektordner / rs-openvocab / LAYER_TIME.gpkg</translation>
        </message>
        <message>
            <source>Save to</source>
            <translation>Speichern unter</translation>
        </message>
        <message>
            <source>Run</source>
            <translation>Starten</translation>
        </message>
        <message>
            <source>Cancel</source>
            <translation>Abbrechen</translation>
        </message>
        <message>
            <source>Export…</source>
            <translation>Exportieren…</translation>
        </message>
        <message>
            <source>— recent class lists —</source>
            <translation>— zuletzt verwendete Klassenlisten —</translation>
        </message>
        <message>
            <source>Also add the mask raster</source>
            <translation>Auch das Maskenraster hinzufügen</translation>
        </message>
        <message>
            <source>default (0.5)</source>
            <translation>Standard (0,5)</translation>
        </message>
        <message>
            <source>Connecting…</source>
            <translation>Verbindung wird hergestellt…</translation>
        </message>
        <message>
            <source>Connecting to the rs-openvocab backend</source>
            <translation>Verbindung zum rs-openvocab-Backend wird hergestellt</translation>
        </message>
        <message>
            <source>Connected: {0} · version {1} · {2}</source>
            <translation>Verbunden: {0} · Version {1} · {2}</translation>
        </message>
        <message>
            <source>— none —</source>
            <translation>— keine —</translation>
        </message>
        <message>
            <source>{0} (weights missing)</source>
            <translation>{0} (Gewichte fehlen)</translation>
        </message>
        <message>
            <source>Downloading weights for {0}</source>
            <translation>Gewichte für {0} werden heruntergeladen</translation>
        </message>
        <message>
            <source>The weights are downloaded.</source>
            <translation>Die Gewichte sind heruntergeladen.</translation>
        </message>
        <message>
            <source>Suggested from the layer: {0}</source>
            <translation>Vorschlag anhand des Layers: {0}</translation>
        </message>
        <message>
            <source>optical</source>
            <translation>optisch</translation>
        </message>
        <message>
            <source>Draw a rectangle or a polygon on the map first.</source>
            <translation>Zeichnen Sie zuerst ein Rechteck oder ein Polygon auf der Karte.</translation>
        </message>
        <message>
            <source>Add a raster layer to the project.</source>
            <translation>Fügen Sie dem Projekt einen Rasterlayer hinzu.</translation>
        </message>
        <message>
            <source>The area cannot be transformed into the layer's CRS.</source>
            <translation>Das Gebiet kann nicht in das KBS des Layers transformiert werden.</translation>
        </message>
        <message>
            <source>{0} × {1} px ({2:.2f} MP)</source>
            <translation>{0} × {1} px ({2:.2f} MP)</translation>
        </message>
        <message>
            <source>Describe the target in a sentence (in English), e.g. “the small boat beside the second pier”.</source>
            <translation>Beschreiben Sie das Ziel in einem (englischen) Satz, z. B. „the small boat beside the second pier“.</translation>
        </message>
        <message>
            <source>Choose a GeoMag checkpoint file (training/geomag writes one).</source>
            <translation>Wählen Sie eine GeoMag-Checkpoint-Datei (training/geomag schreibt eine).</translation>
        </message>
        <message>
            <source>The GeoMag checkpoint {0} is not a file; choose it again.</source>
            <translation>Der GeoMag-Checkpoint {0} ist keine Datei; wählen Sie ihn erneut.</translation>
        </message>
        <message>
            <source>Choose a raster layer.</source>
            <translation>Wählen Sie einen Rasterlayer.</translation>
        </message>
        <message>
            <source>Type at least one class, one per line (synonyms by commas).</source>
            <translation>Geben Sie mindestens eine Klasse ein, eine pro Zeile (Synonyme durch Kommas getrennt).</translation>
        </message>
        <message>
            <source>Connect to the backend and choose a model.</source>
            <translation>Verbinden Sie sich mit dem Backend und wählen Sie ein Modell.</translation>
        </message>
        <message>
            <source>Connect to the backend first (Backend ▸ Connect).</source>
            <translation>Verbinden Sie sich zuerst mit dem Backend (Backend ▸ Verbinden).</translation>
        </message>
        <message>
            <source>Running on {0}: {1}</source>
            <translation>Verarbeitung von {0}: {1}</translation>
        </message>
        <message>
            <source>Polygons: {0}, in {1:.1f} s ({2:.2f} MP/s), saved to {3}</source>
            <translation>Polygone: {0}, in {1:.1f} s ({2:.2f} MP/s), gespeichert unter {3}</translation>
        </message>
        <message>
            <source>The model found nothing that “{0}” describes in the area (score {1:.2f}); the layer is empty.</source>
            <translation>Das Modell hat im Gebiet nichts gefunden, was „{0}“ beschreibt (Wert {1:.2f}); der Layer ist leer.</translation>
        </message>
        <message>
            <source>“{0}”: {1} polygons, score {2:.2f}, in {3:.1f} s, saved to {4}</source>
            <translation>„{0}“: {1} Polygone, Wert {2:.2f}, in {3:.1f} s, gespeichert unter {4}</translation>
        </message>
        <message>
            <source>Select a result layer to export.</source>
            <translation>Wählen Sie einen Ergebnislayer zum Exportieren aus.</translation>
        </message>
        <message>
            <source>Export {0}</source>
            <translation>{0} exportieren</translation>
        </message>
        <message>
            <source>Exported to {0}</source>
            <translation>Exportiert nach {0}</translation>
        </message>
        <message>
            <source>The backend Python {0} is not an executable file; give the python of the environment where rs-openvocab is installed (e.g. .venv/bin/python).</source>
            <translation>Das Backend-Python {0} ist keine ausführbare Datei; geben Sie das python der Umgebung an, in der rs-openvocab installiert ist (z. B. .venv/bin/python).</translation>
        </message>
        <message>
            <source>The backend did not start within {0:.0f} s; see {1}.</source>
            <translation>Das Backend ist nicht innerhalb von {0:.0f} s gestartet; siehe {1}.</translation>
        </message>
        <message>
            <source>The backend could not start: {0}</source>
            <translation>Das Backend konnte nicht starten: {0}</translation>
        </message>
        <message>
            <source>Segment with text prompts</source>
            <translation>Mit Textprompts segmentieren</translation>
        </message>
        <message>
            <source>Open-vocabulary segmentation: draw an area, type classes, get polygons</source>
            <translation>Open-Vocabulary-Segmentierung: Gebiet zeichnen, Klassen eingeben, Polygone erhalten</translation>
        </message>
        <message>
            <source>Segment a folder of scenes</source>
            <translation>Einen Ordner mit Szenen segmentieren</translation>
        </message>
        <message>
            <source>Segments every raster in a folder and its subfolders on the rs-openvocab backend: a class raster and a polygon file per scene, named after it, in the output folder, and manifest.csv with each scene's status, classes found and error. Running it again skips the scenes already done. The backend is the one set in the plugin's dock, or RSOV_URL and RSOV_TOKEN.</source>
            <translation>Segmentiert jedes Raster eines Ordners und seiner Unterordner im rs-openvocab-Backend: je Szene ein Klassenraster und eine Polygondatei, nach ihr benannt, im Ausgabeordner, dazu manifest.csv mit Status, gefundenen Klassen und Fehler jeder Szene. Ein erneuter Lauf überspringt die bereits fertigen Szenen. Das Backend ist das im Dock des Plugins eingestellte, oder RSOV_URL und RSOV_TOKEN.</translation>
        </message>
        <message>
            <source>Folder of scenes</source>
            <translation>Ordner mit Szenen</translation>
        </message>
        <message>
            <source>Classes, one per line (synonyms by commas)</source>
            <translation>Klassen, eine pro Zeile (Synonyme durch Kommas getrennt)</translation>
        </message>
        <message>
            <source>Model preset</source>
            <translation>Modell-Voreinstellung</translation>
        </message>
        <message>
            <source>Polygon format</source>
            <translation>Polygonformat</translation>
        </message>
        <message>
            <source>Also write probability rasters</source>
            <translation>Auch Wahrscheinlichkeitsraster schreiben</translation>
        </message>
        <message>
            <source>Output folder</source>
            <translation>Ausgabeordner</translation>
        </message>
        <message>
            <source>Manifest</source>
            <translation>Manifest</translation>
        </message>
        <message>
            <source>Scenes done</source>
            <translation>Fertige Szenen</translation>
        </message>
        <message>
            <source>Scenes failed</source>
            <translation>Fehlgeschlagene Szenen</translation>
        </message>
        <message>
            <source>Give at least one class in CLASSES, one per line.</source>
            <translation>Geben Sie in CLASSES mindestens eine Klasse an, eine pro Zeile.</translation>
        </message>
        <message>
            <source>Backend {0}, version {1}, on {2}</source>
            <translation>Backend {0}, Version {1}, auf {2}</translation>
        </message>
        <message>
            <source>Cancelled; the scenes already done are in the manifest.</source>
            <translation>Abgebrochen; die bereits fertigen Szenen stehen im Manifest.</translation>
        </message>
        <message>
            <source>{0} scenes: {1} done, {2} failed, {3} skipped in {4:.1f} s</source>
            <translation>{0} Szenen: {1} fertig, {2} fehlgeschlagen, {3} übersprungen in {4:.1f} s</translation>
        </message>
        <message>
            <source>rs-openvocab</source>
            <translation>rs-openvocab</translation>
        </message>
        <message>
            <source>Window size in pixels (0: the preset's)</source>
            <translation>Fenstergröße in Pixeln (0: Wert der Voreinstellung)</translation>
        </message>
        <message>
            <source>Stride in pixels (0: the preset's)</source>
            <translation>Schrittweite in Pixeln (0: Wert der Voreinstellung)</translation>
        </message>
        <message>
            <source>Probability threshold, 0-1 (-1: the preset's)</source>
            <translation>Wahrscheinlichkeitsschwelle, 0-1 (-1: Wert der Voreinstellung)</translation>
        </message>
        <message>
            <source>Resample to this ground resolution, m (0: native)</source>
            <translation>Auf diese Bodenauflösung umrechnen, m (0: ursprünglich)</translation>
        </message>
        <message>
            <source>Simplify tolerance, pixels</source>
            <translation>Vereinfachungstoleranz, Pixel</translation>
        </message>
        <message>
            <source>Drop polygons smaller than, m²</source>
            <translation>Polygone kleiner als diese Fläche verwerfen, m²</translation>
        </message>
        <message>
            <source>Fill holes smaller than, m²</source>
            <translation>Löcher kleiner als diese Fläche füllen, m²</translation>
        </message>
        <message>
            <source>Segment raster with text prompts</source>
            <translation>Raster mit Textprompts segmentieren</translation>
        </message>
        <message>
            <source>Open-vocabulary segmentation by the rs-openvocab backend: type the classes, one per line (synonyms by commas, e.g. building,roof,house), and get polygons with class_name, score and area_m2. Layers that are not files (XYZ, WMS) are drawn at the render resolution first. The backend is the one set in the plugin's dock, or RSOV_URL and RSOV_TOKEN.</source>
            <translation>Open-Vocabulary-Segmentierung durch das rs-openvocab-Backend: Geben Sie die Klassen ein, eine pro Zeile (Synonyme durch Kommas getrennt, z. B. building,roof,house), und erhalten Sie Polygone mit class_name, score und area_m2. Layer, die keine Dateien sind (XYZ, WMS), werden zuerst in der Render-Auflösung gezeichnet. Das Backend ist das im Dock des Plugins eingestellte, oder es wird durch RSOV_URL und RSOV_TOKEN angegeben.</translation>
        </message>
        <message>
            <source>Extent</source>
            <translation>Ausdehnung</translation>
        </message>
        <message>
            <source>Area of interest (polygons)</source>
            <translation>Untersuchungsgebiet (Polygone)</translation>
        </message>
        <message>
            <source>auto</source>
            <translation>automatisch</translation>
        </message>
        <message>
            <source>Speckle filter (SAR)</source>
            <translation>Speckle-Filter (SAR)</translation>
        </message>
        <message>
            <source>Dataset preset (thresholds)</source>
            <translation>Datensatz-Voreinstellung (Schwellenwerte)</translation>
        </message>
        <message>
            <source>Render resolution for non-file layers, m</source>
            <translation>Render-Auflösung für Layer ohne Datei, m</translation>
        </message>
        <message>
            <source>Replace existing outputs</source>
            <translation>Vorhandene Ausgaben ersetzen</translation>
        </message>
        <message>
            <source>Polygons</source>
            <translation>Polygone</translation>
        </message>
        <message>
            <source>Class raster</source>
            <translation>Klassenraster</translation>
        </message>
        <message>
            <source>Choose a raster layer for INPUT.</source>
            <translation>Wählen Sie einen Rasterlayer für INPUT.</translation>
        </message>
        <message>
            <source>The area of interest has no polygons.</source>
            <translation>Das Untersuchungsgebiet enthält keine Polygone.</translation>
        </message>
        <message>
            <source>Cancelled; nothing was written.</source>
            <translation>Abgebrochen; es wurde nichts geschrieben.</translation>
        </message>
        <message>
            <source>{0} polygons, {1:.2f} MP in {2:.1f} s</source>
            <translation>{0} Polygone, {1:.2f} MP in {2:.1f} s</translation>
        </message>
        <message>
            <source>Rendering {0} × {1} px is too much; choose a smaller area or a coarser resolution.</source>
            <translation>{0} × {1} px zu rendern ist zu viel; wählen Sie ein kleineres Gebiet oder eine gröbere Auflösung.</translation>
        </message>
        <message>
            <source>Cancelled.</source>
            <translation>Abgebrochen.</translation>
        </message>
        <message>
            <source>Layer '{0}' drew nothing but one colour over the area: its tiles could not be fetched or it has no data there.</source>
            <translation>Layer '{0}' hat über dem Gebiet nur eine einzige Farbe gezeichnet: Seine Kacheln konnten nicht abgerufen werden, oder er hat dort keine Daten.</translation>
        </message>
        <message>
            <source>Layer '{0}' could not be drawn: {1}</source>
            <translation>Layer '{0}' konnte nicht gezeichnet werden: {1}</translation>
        </message>
        <message>
            <source>The backend wrote {0}, but QGIS cannot open it.</source>
            <translation>Das Backend hat {0} geschrieben, aber QGIS kann es nicht öffnen.</translation>
        </message>
        <message>
            <source>{0} lacks the fields {1}; is the backend's version the plugin's?</source>
            <translation>{0} fehlen die Felder {1}; passt die Version des Backends zu der des Plugins?</translation>
        </message>
        <message>
            <source>rs-openvocab classes</source>
            <translation>rs-openvocab-Klassen</translation>
        </message>
        <message>
            <source>Described target</source>
            <translation>Beschriebenes Ziel</translation>
        </message>
        <message>
            <source>Score</source>
            <translation>Wert</translation>
        </message>
        <message>
            <source>Area (m²)</source>
            <translation>Fläche (m²)</translation>
        </message>
        <message>
            <source>rs-openvocab described target</source>
            <translation>rs-openvocab beschriebenes Ziel</translation>
        </message>
        <message>
            <source>classes</source>
            <translation>Klassen</translation>
        </message>
        <message>
            <source>mask</source>
            <translation>Maske</translation>
        </message>
        <message>
            <source>Could not write {0}: {1}</source>
            <translation>{0} konnte nicht geschrieben werden: {1}</translation>
        </message>
        <message>
            <source>Segmenting {0}</source>
            <translation>{0} wird segmentiert</translation>
        </message>
        <message>
            <source>The backend found no polygons of these classes in the area; nothing was written.</source>
            <translation>Das Backend hat in diesem Gebiet keine Polygone dieser Klassen gefunden; es wurde nichts geschrieben.</translation>
        </message>
        <message>
            <source>Finding “{0}” in {1}</source>
            <translation>„{0}“ wird in {1} gesucht</translation>
        </message>
        <message>
            <source>The model found nothing that “{0}” describes in the area; nothing was written.</source>
            <translation>Das Modell hat im Gebiet nichts gefunden, was „{0}“ beschreibt; es wurde nichts geschrieben.</translation>
        </message>
        <message>
            <source>The remote backend found more polygons than it sends back; raise its --max-polygons, or run on a smaller area.</source>
            <translation>Das entfernte Backend hat mehr Polygone gefunden, als es zurücksendet; erhöhen Sie sein --max-polygons oder führen Sie den Lauf auf einem kleineren Gebiet aus.</translation>
        </message>
        <message>
            <source>The run failed: {0}</source>
            <translation>Der Lauf ist fehlgeschlagen: {0}</translation>
        </message>
    </context>
</TS>
