<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN">
    <context>
        <name>rs_openvocab</name>
        <message>
            <source>Choose a polygon layer for the area.</source>
            <translation>请为区域选择一个面图层。</translation>
        </message>
        <message>
            <source>Select at least one polygon in layer '{0}' (or choose another area).</source>
            <translation>请在图层“{0}”中至少选择一个多边形（或选择其他区域）。</translation>
        </message>
        <message>
            <source>The selected features of '{0}' have no geometry.</source>
            <translation>图层“{0}”的所选要素没有几何图形。</translation>
        </message>
        <message>
            <source>The area does not overlap layer '{0}'; draw it over the layer or choose 'Whole layer'.</source>
            <translation>该区域与图层“{0}”不重叠；请在图层上绘制区域，或选择“整个图层”。</translation>
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
            <translation>基于此后端的实测</translation>
        </message>
        <message>
            <source>rough guess until the first run</source>
            <translation>首次运行前的粗略估计</translation>
        </message>
        <message>
            <source>{0} × {1} px ({2:.2f} MP), about {3} ({4})</source>
            <translation>{0} × {1} px（{2:.2f} MP），约 {3}（{4}）</translation>
        </message>
        <message>
            <source>The rs-openvocab backend at {0} does not answer ({1}); start it, or check the URL in the plugin's backend settings.</source>
            <translation>位于 {0} 的 rs-openvocab 后端没有响应（{1}）；请启动它，或检查插件后端设置中的 URL。</translation>
        </message>
        <message>
            <source>{0} answered {1} with something that is not JSON; is this URL an rs-openvocab backend?</source>
            <translation>{0} 对 {1} 的应答不是 JSON；此 URL 是 rs-openvocab 后端吗？</translation>
        </message>
        <message>
            <source>The backend refused the request (HTTP {0}).</source>
            <translation>后端拒绝了请求（HTTP {0}）。</translation>
        </message>
        <message>
            <source>The backend refused the token; copy the token from the backend's token file into the settings.</source>
            <translation>后端拒绝了令牌；请将后端令牌文件中的令牌复制到设置中。</translation>
        </message>
        <message>
            <source>The run was cancelled; nothing was written.</source>
            <translation>运行已取消；未写入任何内容。</translation>
        </message>
        <message>
            <source>The backend stopped during the run ({0}); nothing was written, run it again.</source>
            <translation>后端在运行中停止（{0}）；未写入任何内容，请重新运行。</translation>
        </message>
        <message>
            <source>The run failed on the backend.</source>
            <translation>后端运行失败。</translation>
        </message>
        <message>
            <source>The backend is version {0} and the plugin {1}; update the one that is older so that both match.</source>
            <translation>后端版本为 {0}，插件版本为 {1}；请更新较旧的一方，使两者版本一致。</translation>
        </message>
        <message>
            <source>Give the Python of the backend's environment in the plugin's backend settings, or the URL of a running 'rsov serve'.</source>
            <translation>请在插件的后端设置中指定后端环境的 Python，或正在运行的“rsov serve”的 URL。</translation>
        </message>
        <message>
            <source>rs-openvocab segmentation</source>
            <translation>rs-openvocab 分割</translation>
        </message>
        <message>
            <source>Backend</source>
            <translation>后端</translation>
        </message>
        <message>
            <source>Not connected</source>
            <translation>未连接</translation>
        </message>
        <message>
            <source>Start it from a Python environment</source>
            <translation>从 Python 环境启动</translation>
        </message>
        <message>
            <source>Connect to a running rsov serve</source>
            <translation>连接到正在运行的 rsov serve</translation>
        </message>
        <message>
            <source>Connect</source>
            <translation>连接</translation>
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
            <translation>令牌</translation>
        </message>
        <message>
            <source>Raster layer</source>
            <translation>栅格图层</translation>
        </message>
        <message>
            <source>The layer is not a file the backend can read: it is drawn at this ground resolution first.</source>
            <translation>该图层不是后端可读取的文件：将先按此地面分辨率绘制。</translation>
        </message>
        <message>
            <source>Draw at</source>
            <translation>绘制分辨率</translation>
        </message>
        <message>
            <source>Whole layer</source>
            <translation>整个图层</translation>
        </message>
        <message>
            <source>Current map extent</source>
            <translation>当前地图范围</translation>
        </message>
        <message>
            <source>Drawn on the map</source>
            <translation>在地图上绘制</translation>
        </message>
        <message>
            <source>Selected features of</source>
            <translation>图层中的所选要素</translation>
        </message>
        <message>
            <source>Area</source>
            <translation>区域</translation>
        </message>
        <message>
            <source>Draw rectangle</source>
            <translation>绘制矩形</translation>
        </message>
        <message>
            <source>Draw polygon</source>
            <translation>绘制多边形</translation>
        </message>
        <message>
            <source>Polygon layer</source>
            <translation>面图层</translation>
        </message>
        <message>
            <source>Name the classes</source>
            <translation>列出类别</translation>
        </message>
        <message>
            <source>Describe the target</source>
            <translation>描述目标</translation>
        </message>
        <message>
            <source>Name the classes: every pixel gets one of the classes you list. Describe the target: a sentence about one thing in the area, and a GeoMag model finds its mask.</source>
            <translation>列出类别：每个像素被分到所列类别之一。描述目标：用一句话描述区域中的某个目标，由 GeoMag 模型找出它的掩膜。</translation>
        </message>
        <message>
            <source>Find</source>
            <translation>查找方式</translation>
        </message>
        <message>
            <source>One class per line, synonyms by commas:
building,roof,house
road
water</source>
            <translation>每行一个类别，同义词用逗号分隔：
building,roof,house
road
water</translation>
        </message>
        <message>
            <source>Classes</source>
            <translation>类别</translation>
        </message>
        <message>
            <source>Recent</source>
            <translation>最近使用</translation>
        </message>
        <message>
            <source>Dataset preset</source>
            <translation>数据集预设</translation>
        </message>
        <message>
            <source>the small boat beside the second pier</source>
            <translation>the small boat beside the second pier（请用英文）</translation>
        </message>
        <message>
            <source>One sentence in English about the target in the area; its mask is added as a layer named after it.</source>
            <translation>用一句英文描述区域中的目标；其掩膜将作为以该句命名的图层添加。</translation>
        </message>
        <message>
            <source>GeoMag checkpoint (*.safetensors)</source>
            <translation>GeoMag 检查点 (*.safetensors)</translation>
        </message>
        <message>
            <source>All files (*)</source>
            <translation>所有文件 (*)</translation>
        </message>
        <message>
            <source>A GeoMag checkpoint file (training/geomag writes one), as a path the backend can read; its base models come through the backend's weights cache.</source>
            <translation>GeoMag 检查点文件（由 training/geomag 生成），须为后端可读取的路径；其基础模型通过后端的权重缓存获取。</translation>
        </message>
        <message>
            <source>Target</source>
            <translation>目标</translation>
        </message>
        <message>
            <source>GeoMag checkpoint</source>
            <translation>GeoMag 检查点</translation>
        </message>
        <message>
            <source>Optical</source>
            <translation>光学</translation>
        </message>
        <message>
            <source>SAR</source>
            <translation>SAR</translation>
        </message>
        <message>
            <source>Imagery</source>
            <translation>影像类型</translation>
        </message>
        <message>
            <source>Download weights</source>
            <translation>下载权重</translation>
        </message>
        <message>
            <source>Model</source>
            <translation>模型</translation>
        </message>
        <message>
            <source>Advanced</source>
            <translation>高级</translation>
        </message>
        <message>
            <source>preset</source>
            <translation>预设</translation>
        </message>
        <message>
            <source>native</source>
            <translation>原始</translation>
        </message>
        <message>
            <source>none</source>
            <translation>无</translation>
        </message>
        <message>
            <source>Lee</source>
            <translation>Lee</translation>
        </message>
        <message>
            <source>refined Lee</source>
            <translation>精致 Lee</translation>
        </message>
        <message>
            <source>SAR only: filters speckle before the dB conversion (7 × 7 window)</source>
            <translation>仅用于 SAR：在转换为 dB 之前滤除相干斑（7 × 7 窗口）</translation>
        </message>
        <message>
            <source>Also add the class raster</source>
            <translation>同时添加类别栅格</translation>
        </message>
        <message>
            <source>Read the whole area at once (no MagCrop)</source>
            <translation>一次读取整个区域（不使用 MagCrop）</translation>
        </message>
        <message>
            <source>MagCrop lets the model choose a part of the area and read it again at full resolution; without it the area is read once at the model's input size.</source>
            <translation>MagCrop 让模型选出区域的一部分并以全分辨率重新读取；不使用时，区域仅按模型的输入尺寸读取一次。</translation>
        </message>
        <message>
            <source>Window</source>
            <translation>窗口</translation>
        </message>
        <message>
            <source>Stride</source>
            <translation>步长</translation>
        </message>
        <message>
            <source>Probability threshold</source>
            <translation>概率阈值</translation>
        </message>
        <message>
            <source>Resample to GSD</source>
            <translation>重采样至地面分辨率 (GSD)</translation>
        </message>
        <message>
            <source>Simplify</source>
            <translation>简化</translation>
        </message>
        <message>
            <source>Minimum area</source>
            <translation>最小面积</translation>
        </message>
        <message>
            <source>Fill holes below</source>
            <translation>填充小于此面积的孔洞</translation>
        </message>
        <message>
            <source>Speckle filter</source>
            <translation>相干斑滤波</translation>
        </message>
        <message>
            <source>project folder / rs-openvocab / LAYER_TIME.gpkg</source>
            <translation>项目文件夹 / rs-openvocab / LAYER_TIME.gpkg</translation>
        </message>
        <message>
            <source>Save to</source>
            <translation>保存到</translation>
        </message>
        <message>
            <source>Run</source>
            <translation>运行</translation>
        </message>
        <message>
            <source>Cancel</source>
            <translation>取消</translation>
        </message>
        <message>
            <source>Export…</source>
            <translation>导出…</translation>
        </message>
        <message>
            <source>— recent class lists —</source>
            <translation>— 最近使用的类别列表 —</translation>
        </message>
        <message>
            <source>Also add the mask raster</source>
            <translation>同时添加掩膜栅格</translation>
        </message>
        <message>
            <source>default (0.5)</source>
            <translation>默认（0.5）</translation>
        </message>
        <message>
            <source>Connecting…</source>
            <translation>正在连接…</translation>
        </message>
        <message>
            <source>Connecting to the rs-openvocab backend</source>
            <translation>正在连接 rs-openvocab 后端</translation>
        </message>
        <message>
            <source>Connected: {0} · version {1} · {2}</source>
            <translation>已连接：{0} · 版本 {1} · {2}</translation>
        </message>
        <message>
            <source>— none —</source>
            <translation>— 无 —</translation>
        </message>
        <message>
            <source>{0} (weights missing)</source>
            <translation>{0}（缺少权重）</translation>
        </message>
        <message>
            <source>Downloading weights for {0}</source>
            <translation>正在下载 {0} 的权重</translation>
        </message>
        <message>
            <source>The weights are downloaded.</source>
            <translation>权重已下载。</translation>
        </message>
        <message>
            <source>Suggested from the layer: {0}</source>
            <translation>根据图层建议：{0}</translation>
        </message>
        <message>
            <source>optical</source>
            <translation>光学</translation>
        </message>
        <message>
            <source>Draw a rectangle or a polygon on the map first.</source>
            <translation>请先在地图上绘制矩形或多边形。</translation>
        </message>
        <message>
            <source>Add a raster layer to the project.</source>
            <translation>请向项目中添加栅格图层。</translation>
        </message>
        <message>
            <source>The area cannot be transformed into the layer's CRS.</source>
            <translation>无法将该区域转换到图层的坐标参考系。</translation>
        </message>
        <message>
            <source>{0} × {1} px ({2:.2f} MP)</source>
            <translation>{0} × {1} px（{2:.2f} MP）</translation>
        </message>
        <message>
            <source>Describe the target in a sentence (in English), e.g. “the small boat beside the second pier”.</source>
            <translation>请用一句（英文）描述目标，例如“the small boat beside the second pier”。</translation>
        </message>
        <message>
            <source>Choose a GeoMag checkpoint file (training/geomag writes one).</source>
            <translation>请选择 GeoMag 检查点文件（由 training/geomag 生成）。</translation>
        </message>
        <message>
            <source>The GeoMag checkpoint {0} is not a file; choose it again.</source>
            <translation>GeoMag 检查点 {0} 不是文件；请重新选择。</translation>
        </message>
        <message>
            <source>Choose a raster layer.</source>
            <translation>请选择栅格图层。</translation>
        </message>
        <message>
            <source>Type at least one class, one per line (synonyms by commas).</source>
            <translation>请至少输入一个类别，每行一个（同义词用逗号分隔）。</translation>
        </message>
        <message>
            <source>Connect to the backend and choose a model.</source>
            <translation>请连接后端并选择模型。</translation>
        </message>
        <message>
            <source>Connect to the backend first (Backend ▸ Connect).</source>
            <translation>请先连接后端（后端 ▸ 连接）。</translation>
        </message>
        <message>
            <source>Running on {0}: {1}</source>
            <translation>正在处理 {0}：{1}</translation>
        </message>
        <message>
            <source>Polygons: {0}, in {1:.1f} s ({2:.2f} MP/s), saved to {3}</source>
            <translation>多边形：{0}，用时 {1:.1f} 秒（{2:.2f} MP/s），已保存到 {3}</translation>
        </message>
        <message>
            <source>The model found nothing that “{0}” describes in the area (score {1:.2f}); the layer is empty.</source>
            <translation>模型在该区域中未找到“{0}”所描述的目标（得分 {1:.2f}）；图层为空。</translation>
        </message>
        <message>
            <source>“{0}”: {1} polygons, score {2:.2f}, in {3:.1f} s, saved to {4}</source>
            <translation>“{0}”：{1} 个多边形，得分 {2:.2f}，用时 {3:.1f} 秒，已保存到 {4}</translation>
        </message>
        <message>
            <source>Select a result layer to export.</source>
            <translation>请选择要导出的结果图层。</translation>
        </message>
        <message>
            <source>Export {0}</source>
            <translation>导出 {0}</translation>
        </message>
        <message>
            <source>Exported to {0}</source>
            <translation>已导出到 {0}</translation>
        </message>
        <message>
            <source>The backend Python {0} is not an executable file; give the python of the environment where rs-openvocab is installed (e.g. .venv/bin/python).</source>
            <translation>后端 Python {0} 不是可执行文件；请提供安装了 rs-openvocab 的环境中的 python（例如 .venv/bin/python）。</translation>
        </message>
        <message>
            <source>The backend did not start within {0:.0f} s; see {1}.</source>
            <translation>后端未能在 {0:.0f} 秒内启动；请查看 {1}。</translation>
        </message>
        <message>
            <source>The backend could not start: {0}</source>
            <translation>后端无法启动：{0}</translation>
        </message>
        <message>
            <source>Segment with text prompts</source>
            <translation>使用文本提示分割</translation>
        </message>
        <message>
            <source>Open-vocabulary segmentation: draw an area, type classes, get polygons</source>
            <translation>开放词汇分割：绘制区域，输入类别，得到多边形</translation>
        </message>
        <message>
            <source>Segment a folder of scenes</source>
            <translation>分割文件夹中的所有影像</translation>
        </message>
        <message>
            <source>Segments every raster in a folder and its subfolders on the rs-openvocab backend: a class raster and a polygon file per scene, named after it, in the output folder, and manifest.csv with each scene's status, classes found and error. Running it again skips the scenes already done. The backend is the one set in the plugin's dock, or RSOV_URL and RSOV_TOKEN.</source>
            <translation>由 rs-openvocab 后端分割文件夹及其子文件夹中的每个栅格：每个影像在输出文件夹中得到一个以其命名的类别栅格和一个多边形文件，并生成 manifest.csv，记录每个影像的状态、识别出的类别和错误。再次运行会跳过已完成的影像。后端为插件停靠窗口中设置的后端，或 RSOV_URL 和 RSOV_TOKEN。</translation>
        </message>
        <message>
            <source>Folder of scenes</source>
            <translation>影像文件夹</translation>
        </message>
        <message>
            <source>Classes, one per line (synonyms by commas)</source>
            <translation>类别，每行一个（同义词用逗号分隔）</translation>
        </message>
        <message>
            <source>Model preset</source>
            <translation>模型预设</translation>
        </message>
        <message>
            <source>Polygon format</source>
            <translation>多边形格式</translation>
        </message>
        <message>
            <source>Also write probability rasters</source>
            <translation>同时写出概率栅格</translation>
        </message>
        <message>
            <source>Output folder</source>
            <translation>输出文件夹</translation>
        </message>
        <message>
            <source>Manifest</source>
            <translation>清单</translation>
        </message>
        <message>
            <source>Scenes done</source>
            <translation>已完成的影像</translation>
        </message>
        <message>
            <source>Scenes failed</source>
            <translation>失败的影像</translation>
        </message>
        <message>
            <source>Give at least one class in CLASSES, one per line.</source>
            <translation>请在 CLASSES 中至少给出一个类别，每行一个。</translation>
        </message>
        <message>
            <source>Backend {0}, version {1}, on {2}</source>
            <translation>后端 {0}，版本 {1}，运行于 {2}</translation>
        </message>
        <message>
            <source>Cancelled; the scenes already done are in the manifest.</source>
            <translation>已取消；已完成的影像记录在清单中。</translation>
        </message>
        <message>
            <source>{0} scenes: {1} done, {2} failed, {3} skipped in {4:.1f} s</source>
            <translation>{0} 个影像：{1} 个完成，{2} 个失败，{3} 个跳过，用时 {4:.1f} 秒</translation>
        </message>
        <message>
            <source>rs-openvocab</source>
            <translation>rs-openvocab</translation>
        </message>
        <message>
            <source>Window size in pixels (0: the preset's)</source>
            <translation>窗口大小（像素，0：使用预设值）</translation>
        </message>
        <message>
            <source>Stride in pixels (0: the preset's)</source>
            <translation>步长（像素，0：使用预设值）</translation>
        </message>
        <message>
            <source>Probability threshold, 0-1 (-1: the preset's)</source>
            <translation>概率阈值，0-1（-1：使用预设值）</translation>
        </message>
        <message>
            <source>Resample to this ground resolution, m (0: native)</source>
            <translation>重采样到此地面分辨率，米（0：原始分辨率）</translation>
        </message>
        <message>
            <source>Simplify tolerance, pixels</source>
            <translation>简化容差（像素）</translation>
        </message>
        <message>
            <source>Drop polygons smaller than, m²</source>
            <translation>删除小于此面积的多边形，m²</translation>
        </message>
        <message>
            <source>Fill holes smaller than, m²</source>
            <translation>填充小于此面积的孔洞，m²</translation>
        </message>
        <message>
            <source>Segment raster with text prompts</source>
            <translation>使用文本提示分割栅格</translation>
        </message>
        <message>
            <source>Open-vocabulary segmentation by the rs-openvocab backend: type the classes, one per line (synonyms by commas, e.g. building,roof,house), and get polygons with class_name, score and area_m2. Layers that are not files (XYZ, WMS) are drawn at the render resolution first. The backend is the one set in the plugin's dock, or RSOV_URL and RSOV_TOKEN.</source>
            <translation>由 rs-openvocab 后端进行开放词汇分割：输入类别，每行一个（同义词用逗号分隔，例如 building,roof,house），得到带有 class_name、score 和 area_m2 字段的多边形。非文件图层（XYZ、WMS）会先按渲染分辨率绘制。后端为插件停靠面板中设置的后端，或由 RSOV_URL 和 RSOV_TOKEN 指定。</translation>
        </message>
        <message>
            <source>Extent</source>
            <translation>范围</translation>
        </message>
        <message>
            <source>Area of interest (polygons)</source>
            <translation>感兴趣区域（多边形）</translation>
        </message>
        <message>
            <source>auto</source>
            <translation>自动</translation>
        </message>
        <message>
            <source>Speckle filter (SAR)</source>
            <translation>相干斑滤波（SAR）</translation>
        </message>
        <message>
            <source>Dataset preset (thresholds)</source>
            <translation>数据集预设（阈值）</translation>
        </message>
        <message>
            <source>Render resolution for non-file layers, m</source>
            <translation>非文件图层的渲染分辨率，m</translation>
        </message>
        <message>
            <source>Replace existing outputs</source>
            <translation>替换已有输出</translation>
        </message>
        <message>
            <source>Polygons</source>
            <translation>多边形</translation>
        </message>
        <message>
            <source>Class raster</source>
            <translation>类别栅格</translation>
        </message>
        <message>
            <source>Choose a raster layer for INPUT.</source>
            <translation>请为 INPUT 选择栅格图层。</translation>
        </message>
        <message>
            <source>The area of interest has no polygons.</source>
            <translation>感兴趣区域中没有多边形。</translation>
        </message>
        <message>
            <source>Cancelled; nothing was written.</source>
            <translation>已取消；未写入任何内容。</translation>
        </message>
        <message>
            <source>{0} polygons, {1:.2f} MP in {2:.1f} s</source>
            <translation>{0} 个多边形，{1:.2f} MP，用时 {2:.1f} s</translation>
        </message>
        <message>
            <source>Rendering {0} × {1} px is too much; choose a smaller area or a coarser resolution.</source>
            <translation>渲染 {0} × {1} px 过大；请选择更小的区域或更粗的分辨率。</translation>
        </message>
        <message>
            <source>Cancelled.</source>
            <translation>已取消。</translation>
        </message>
        <message>
            <source>Layer '{0}' drew nothing but one colour over the area: its tiles could not be fetched or it has no data there.</source>
            <translation>图层“{0}”在该区域只绘制出单一颜色：无法获取其瓦片，或该处没有数据。</translation>
        </message>
        <message>
            <source>Layer '{0}' could not be drawn: {1}</source>
            <translation>无法绘制图层“{0}”：{1}</translation>
        </message>
        <message>
            <source>The backend wrote {0}, but QGIS cannot open it.</source>
            <translation>后端已写入 {0}，但 QGIS 无法打开它。</translation>
        </message>
        <message>
            <source>{0} lacks the fields {1}; is the backend's version the plugin's?</source>
            <translation>{0} 缺少字段 {1}；后端版本与插件版本是否一致？</translation>
        </message>
        <message>
            <source>rs-openvocab classes</source>
            <translation>rs-openvocab 类别</translation>
        </message>
        <message>
            <source>Described target</source>
            <translation>描述的目标</translation>
        </message>
        <message>
            <source>Score</source>
            <translation>得分</translation>
        </message>
        <message>
            <source>Area (m²)</source>
            <translation>面积（m²）</translation>
        </message>
        <message>
            <source>rs-openvocab described target</source>
            <translation>rs-openvocab 描述的目标</translation>
        </message>
        <message>
            <source>classes</source>
            <translation>类别</translation>
        </message>
        <message>
            <source>mask</source>
            <translation>掩膜</translation>
        </message>
        <message>
            <source>Could not write {0}: {1}</source>
            <translation>无法写入 {0}：{1}</translation>
        </message>
        <message>
            <source>Segmenting {0}</source>
            <translation>正在分割 {0}</translation>
        </message>
        <message>
            <source>The backend found no polygons of these classes in the area; nothing was written.</source>
            <translation>后端在该区域中未找到这些类别的多边形；未写入任何内容。</translation>
        </message>
        <message>
            <source>Finding “{0}” in {1}</source>
            <translation>正在 {1} 中查找“{0}”</translation>
        </message>
        <message>
            <source>The model found nothing that “{0}” describes in the area; nothing was written.</source>
            <translation>模型在该区域中未找到“{0}”所描述的目标；未写入任何内容。</translation>
        </message>
        <message>
            <source>The remote backend found more polygons than it sends back; raise its --max-polygons, or run on a smaller area.</source>
            <translation>远程后端找到的多边形多于其返回的数量；请调高其 --max-polygons，或在更小的区域上运行。</translation>
        </message>
        <message>
            <source>The run failed: {0}</source>
            <translation>运行失败：{0}</translation>
        </message>
    </context>
</TS>
