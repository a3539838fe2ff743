"""The released weight files: where each comes from, a cache, download and verification.

Files are cached under ``$RSOV_HOME/weights/<name>/<filename>`` (``RSOV_HOME`` defaults to
the user's data folder). A download goes to a temporary file beside the target and is
renamed into place only once complete and verified; offline, nothing waits on the network
and the error says which file is missing and where to put it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from backend.errors import UserInputError, WeightsUnavailable

NETWORK_TIMEOUT_S = float(os.environ.get("RSOV_NETWORK_TIMEOUT", "10"))


@dataclass(frozen=True)
class WeightSpec:
    """One released weights file."""

    name: str
    filename: str
    format: str
    description: str
    license: str
    hf_repo: str | None = None
    hf_filename: str | None = None
    url: str | None = None
    sha256: str | None = None  # of the cached file (for an archive: of the member taken out of it)
    archive_member: str | None = None  # the download is a zip archive; this member of it is the weights file
    repo_files: tuple[str, ...] = ()  # a model folder: these files of hf_repo (and the shards an index names)
    optional_files: tuple[str, ...] = ()  # files of the folder that some revisions of the repository lack

    @property
    def source(self) -> str:
        if self.hf_repo:
            where = f"Hugging Face Hub {self.hf_repo}" + ("" if self.repo_files else
                                                          f" / {self.hf_filename or self.filename}")
        else:
            where = self.url or "unknown"
        return f"{where} (member {self.archive_member} of the zip)" if self.archive_member else where


REGISTRY: dict[str, WeightSpec] = {spec.name: spec for spec in (
    WeightSpec(
        name="openai-vit-b-16",
        filename="open_clip_model.safetensors",
        format="open_clip state dict (safetensors)",
        description="OpenAI CLIP ViT-B/16 (QuickGELU), as open_clip publishes it",
        license="MIT (OpenAI CLIP)",
        hf_repo="timm/vit_base_patch16_clip_224.openai",
    ),
    WeightSpec(
        name="openai-vit-b-16-torchscript",
        filename="ViT-B-16.pt",
        format="TorchScript archive (OpenAI keys)",
        description="OpenAI CLIP ViT-B/16, OpenAI's original release",
        license="MIT (OpenAI CLIP)",
        url="https://openaipublic.azureedge.net/clip/models/"
            "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
        sha256="5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
    ),
    WeightSpec(
        name="simfeatup-jbu-one-million-aid",
        filename="xclip_jbu_one_million_aid.ckpt",
        format="Lightning checkpoint (state_dict: upsampler.*)",
        description="SimFeatUp JBU_One upsampler for CLIP ViT-B/16 features (SegEarth-OV)",
        license="not stated by the authors (SimFeatUp code: MIT)",
        url="https://raw.githubusercontent.com/likyoo/SegEarth-OV/main/"
            "simfeatup_dev/weights/xclip_jbu_one_million_aid.ckpt",
    ),
    WeightSpec(  # file name as the authors' code loads it (earth-insights/SegEarth-OV-2, segearth_segmentor.py:
        # checkpoint/AlignEarth-SAR-ViT-B-16.pt, open_clip 'ViT-B/16' without QuickGELU, strict load of the whole
        # CLIP); the hub repo's listing and a sha256 are not published where this project could read them
        name="alignearth-sar-vit-b-16",
        filename="AlignEarth-SAR-ViT-B-16.pt",
        format="open_clip checkpoint (GELU ViT-B-16)",
        description="AlignEarth SAR image encoder distilled from OpenAI CLIP (SegEarth-OV-2)",
        license="not stated by the authors",
        hf_repo="likyoo/AlignEarth-SAR-ViT-B-16",
    ),
    # FarSLIP (NJU-LHRS/FarSLIP README "Checkpoints"; Hugging Face ZhenShiL/FarSLIP, card "license: mit", GitHub
    # LICENSE MIT). The files are open_clip training checkpoints as open_clip_train/main.py saves them
    # ({"epoch", "name", "state_dict": model.state_dict() under DDP, so "module."-prefixed keys, "optimizer", ...}),
    # QuickGELU (README test commands and RS-OVSS customized_segmentor.py: force_quick_gelu). A LongCLIP text tower
    # adds positional_embedding_res, mask1 and mask2 (open_clip/model.py, long_clip="load_from_scratch"); which files
    # have one is stated two ways by the authors (README table: the ViT-B/16 files; README test commands and
    # RS-OVSS MODEL_CONFIG: the stage-2 files), so the loader reads it from the file.
    *(
        WeightSpec(
            name=f"farslip{stage}-vit-b-{patch}",
            filename=f"FarSLIP{stage}_ViT-B-{patch}.pt",
            format="open_clip training checkpoint (state_dict, module.*; QuickGELU; a LongCLIP text tower of "
                   "context 248 is read from the file where it has one)",
            description=f"FarSLIP stage {stage} fine-grained remote-sensing CLIP, ViT-B/{patch}",
            license="MIT",
            hf_repo="ZhenShiL/FarSLIP",
        )
        for stage in (1, 2) for patch in (16, 32)
    ),
    # GeoRSCLIP (om-ai-lab/RS5M README and inference/inference.py; files under ckpt/ of Hugging Face Zilun/GeoRSCLIP).
    # Plain state dicts of open_clip models (inference/convert_weight.py saves model.state_dict(); the hub lists
    # OrderedDict + FloatStorage pickles). The authors build the model as create_model_and_transforms("ViT-B/32",
    # pretrained="openai"), which open_clip before its PR #970 (Oct 2024) always built with QuickGELU. Licence: the
    # hub card's metadata says "cc" (an earlier revision "cc-by-4.0"); the RS5M code is MIT.
    *(
        WeightSpec(
            name=f"georsclip-vit-{arch.lower()}",
            filename=f"RS5M_ViT-{arch}.pt",
            format="state dict (open_clip keys, fp32; QuickGELU)",
            description=f"GeoRSCLIP ViT-{arch.replace('-', '/')} (OpenAI CLIP fine-tuned on RS5M)"
                        + ("" if arch == "B-32" else "; its loading code is not published, QuickGELU assumed as "
                           "for the OpenAI-initialised ViT-B/32"),
            license="Creative Commons, version not stated (hub card 'cc'; earlier 'cc-by-4.0'); code MIT",
            hf_repo="Zilun/GeoRSCLIP",
            hf_filename=f"ckpt/RS5M_ViT-{arch}.pt",
        )
        for arch in ("B-32", "L-14")
    ),
    # RemoteCLIP (ChenDelong1999/RemoteCLIP README "Load RemoteCLIP": hf_hub_download("chendelong/RemoteCLIP",
    # f"RemoteCLIP-{model_name}.pt"), then open_clip.create_model_and_transforms(model_name) and a strict
    # load_state_dict: plain state dicts, open_clip's GELU ViT-B-32 / ViT-L-14). Licence: the GitHub repository's
    # LICENSE is Apache-2.0; the hub repository states none. RemoteCLIP-RN50.pt is left out: a ResNet image tower.
    *(
        WeightSpec(
            name=f"remoteclip-vit-{arch.lower()}",
            filename=f"RemoteCLIP-ViT-{arch}.pt",
            format="state dict (open_clip keys, fp32; GELU)",
            description=f"RemoteCLIP ViT-{arch.replace('-', '/')} (CLIP trained on RS retrieval, detection and "
                        "segmentation data turned into captions)",
            license="Apache-2.0 (GitHub repository; the Hugging Face repository states none)",
            hf_repo="chendelong/RemoteCLIP",
        )
        for arch in ("B-32", "L-14")
    ),
    # SkyCLIP (wangzhecheng/SkyScript README "Download model checkpoints": zip files on the authors' S3 bucket;
    # inside, <name>/epoch_20.pt as RS-OVSS customized_segmentor.py MODEL_PATHS and FarSLIP's tests name them, an
    # open_clip training checkpoint from 20 epochs). ViT-L-14 was initialised from OpenAI CLIP and is tested with
    # --force-quick-gelu (test_scene_and_fine_grained_classification.ipynb); ViT-B-32 from laion2b_e16 (GELU).
    # Licence: the SkyScript repository is MIT; no separate licence is stated for the checkpoints.
    *(
        WeightSpec(
            name=f"skyclip-vit-{arch.lower()}",
            filename="epoch_20.pt",
            format=f"open_clip training checkpoint (state_dict, module.*; {act}) inside a zip",
            description=f"SkyCLIP ViT-{arch.replace('-', '/')} (CLIP continually pre-trained on the top 50 % of "
                        "SkyScript)",
            license="MIT (SkyScript repository; no separate licence stated for the checkpoints)",
            url=f"https://opendatasharing.s3.us-west-2.amazonaws.com/SkyScript/ckpt/SkyCLIP_ViT_{zipped}_top50pct.zip",
            archive_member=f"SkyCLIP_ViT_{zipped}_top50pct/epoch_20.pt",
        )
        for arch, zipped, act in (("B-32", "B32", "GELU"), ("L-14", "L14", "QuickGELU"))
    ),
    # GeoMag's base models (issue #10: the paper builds on LLaVA-v1.5-7B, SAM2 and BERT-base; no GeoMag weights are
    # published, a GeoMag checkpoint from training/geomag names these). LLaVA-1.5 in the transformers layout that
    # llava-hf publishes (three safetensors shards named by model.safetensors.index.json); its language model is
    # Vicuna-7B v1.5, fine-tuned from Llama 2, hence the Llama 2 licence.
    WeightSpec(
        name="llava-1.5-7b",
        filename="llava-1.5-7b-hf",
        format="transformers model folder (LlavaForConditionalGeneration, safetensors shards, processor)",
        description="LLaVA-1.5 7B (CLIP ViT-L/14-336 + Vicuna-7B v1.5): GeoMag's vision-language model",
        license="Llama 2 Community License (Vicuna-7B v1.5 is fine-tuned from Llama 2)",
        hf_repo="llava-hf/llava-1.5-7b-hf",
        repo_files=("config.json", "preprocessor_config.json", "tokenizer_config.json", "tokenizer.json",
                    "special_tokens_map.json", "model.safetensors.index.json"),
        optional_files=("generation_config.json", "processor_config.json", "chat_template.json", "added_tokens.json",
                        "tokenizer.model"),
    ),
    WeightSpec(
        name="bert-base-uncased",
        filename="bert-base-uncased",
        format="transformers model folder (BertModel, safetensors, tokenizer)",
        description="BERT-base uncased: GeoMag's query encoder for the task-granularity classifier (TMRA)",
        license="Apache-2.0",
        hf_repo="google-bert/bert-base-uncased",
        repo_files=("config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"),
        optional_files=("tokenizer.json",),
    ),
    # SAM 2.1 (facebookresearch/sam2 README: checkpoints on the hub as facebook/sam2.1-hiera-<size>, files
    # sam2.1_hiera_<size>.pt holding {"model": state_dict}; configs ship in the sam2 package). Apache-2.0.
    *(
        WeightSpec(
            name=f"sam2.1-hiera-{size}",
            filename=f"sam2.1_hiera_{file_size}.pt",
            format="SAM 2 checkpoint ({'model': state_dict}), config configs/sam2.1/sam2.1_hiera_" + short + ".yaml",
            description=f"SAM 2.1 Hiera-{size} image encoder: GeoMag's frozen vision encoder for masks",
            license="Apache-2.0",
            hf_repo=f"facebook/sam2.1-hiera-{size}",
        )
        for size, file_size, short in (("tiny", "tiny", "t"), ("small", "small", "s"),
                                       ("base-plus", "base_plus", "b+"), ("large", "large", "l"))
    ),
)}


def rsov_home() -> Path:
    """The project's data folder: ``$RSOV_HOME`` or the user's data directory."""
    configured = os.environ.get("RSOV_HOME")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("rs-openvocab", appauthor=False))


def spec_for(name: str) -> WeightSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UserInputError(
            f"unknown weights {name!r}; run 'rsov weights list' to see the names, or give a file path."
        ) from None


def cached_path(name: str) -> Path:
    """Where the cache keeps ``name`` (whether or not it is there yet)."""
    spec = spec_for(name)
    return rsov_home() / "weights" / spec.name / spec.filename


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _offline() -> bool:
    flag = (os.environ.get("RSOV_OFFLINE") or os.environ.get("HF_HUB_OFFLINE") or "").lower()
    return flag in {"1", "true", "yes", "on"}


def _missing_message(spec: WeightSpec, target: Path, reason: str) -> str:
    if spec.repo_files:
        how = f"download the model folder {spec.hf_repo} (e.g. with 'huggingface-cli download') to {target}"
    elif spec.archive_member:
        how = f"download {spec.url or spec.hf_filename}, unzip it and put {spec.archive_member} at {target}"
    else:
        how = f"download {spec.filename} from {spec.source} and put it at {target}"
    return (f"weights '{spec.name}' ({spec.filename}) are not in the cache and could not be downloaded "
            f"({reason}); {how}")


def _extract_member(archive: Path, member: str, destination: Path) -> None:
    """Copy ``member`` of the zip ``archive`` to ``destination`` (the one member of that file name if the
    folders differ); ValueError saying what the archive holds otherwise."""
    import zipfile

    if not zipfile.is_zipfile(archive):
        raise ValueError("the download is not a zip archive")
    with zipfile.ZipFile(archive) as bundle:
        names = [name for name in bundle.namelist() if not name.endswith("/")]
        found = [name for name in names if name == member or name.endswith("/" + member)]
        if not found:
            found = [name for name in names if name.rsplit("/", 1)[-1] == member.rsplit("/", 1)[-1]]
        if len(found) != 1:
            listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise ValueError(f"the zip holds {'no' if not found else 'several'} {member} (it has {listed})")
        with bundle.open(found[0]) as source, open(destination, "wb") as out:
            shutil.copyfileobj(source, out, length=1 << 20)


def _hub_endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return endpoint or os.environ.get("RSOV_HF_ENDPOINT") or constants.ENDPOINT


def _unreachable(url: str) -> str | None:
    """Why ``url``'s host cannot be reached (one quick connect), or None if it can."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=NETWORK_TIMEOUT_S):
            return None
    except OSError as error:
        return f"cannot reach {parts.hostname}:{port}: {error.strerror or type(error).__name__}"


def _fetch_url(url: str, destination: Path) -> None:
    with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT_S) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def _fetch_hub(spec: WeightSpec, destination: Path, endpoint: str | None) -> None:
    from huggingface_hub import hf_hub_download

    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".hub-") as staging:
        downloaded = hf_hub_download(
            spec.hf_repo, spec.hf_filename or spec.filename, local_dir=staging,
            etag_timeout=NETWORK_TIMEOUT_S, endpoint=endpoint,
        )
        shutil.move(downloaded, destination)


def download(name: str, endpoint: str | None = None, force: bool = False) -> Path:
    """Download ``name`` into the cache (verified) unless it is already there; its path."""
    spec = spec_for(name)
    target = cached_path(name)
    if target.exists() and not force:
        return target
    if _offline():
        raise WeightsUnavailable(_missing_message(spec, target, "offline mode is set"))
    if not spec.hf_repo and not spec.url:
        raise WeightsUnavailable(_missing_message(spec, target, "no download source is known"))
    source_url = _hub_endpoint(endpoint) if spec.hf_repo else spec.url
    problem = _unreachable(source_url)
    if problem:  # fail at once rather than through the hub client's retries
        raise WeightsUnavailable(_missing_message(spec, target, problem))
    target.parent.mkdir(parents=True, exist_ok=True)
    if spec.repo_files:
        return _download_folder(spec, target, source_url, force)
    partial = target.with_name(f".{target.name}.partial")
    fetched = target.with_name(f".{target.name}.zip.partial") if spec.archive_member else partial
    try:
        if spec.hf_repo:
            _fetch_hub(spec, fetched, source_url)
        else:
            _fetch_url(spec.url, fetched)
        if spec.archive_member:
            _extract_member(fetched, spec.archive_member, partial)
    except Exception as error:  # network, hub and archive errors all mean the same thing to the user
        partial.unlink(missing_ok=True)
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise WeightsUnavailable(_missing_message(spec, target, reason)) from None
    finally:
        if fetched != partial:
            fetched.unlink(missing_ok=True)
    digest = sha256_of(partial)
    if spec.sha256 and digest != spec.sha256:
        partial.unlink(missing_ok=True)
        raise WeightsUnavailable(
            f"the download of '{spec.name}' has sha256 {digest[:12]}…, expected {spec.sha256[:12]}…; "
            "it was discarded: try again, or check what serves the file."
        )
    partial.replace(target)
    target.with_name(target.name + ".sha256").write_text(digest + "\n")
    return target


def _download_folder(spec: WeightSpec, target: Path, endpoint: str, force: bool) -> Path:
    """A model folder: ``repo_files``, the ones of ``optional_files`` the repository has, and the weight shards
    its ``*.index.json`` names, into a staging folder renamed into place once all are there."""
    import json

    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        def fetch(filename: str, required: bool = True) -> Path | None:
            try:
                return Path(hf_hub_download(spec.hf_repo, filename, local_dir=staging,
                                            etag_timeout=NETWORK_TIMEOUT_S, endpoint=endpoint))
            except EntryNotFoundError:
                if required:
                    raise
                return None

        fetched = [fetch(name) for name in spec.repo_files]
        fetched += [path for path in (fetch(name, required=False) for name in spec.optional_files) if path]
        for index in [path for path in fetched if path.name.endswith(".index.json")]:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            fetched += [fetch(shard) for shard in shards]
        shutil.rmtree(staging / ".cache", ignore_errors=True)  # the hub client's bookkeeping
        digests = "".join(f"{sha256_of(path)}  {path.relative_to(staging).as_posix()}\n"
                          for path in sorted(fetched))
        if force and target.exists():
            shutil.rmtree(target)
        staging.replace(target)
    except Exception as error:  # network and hub errors all mean the same thing to the user
        shutil.rmtree(staging, ignore_errors=True)
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise WeightsUnavailable(_missing_message(spec, target, reason)) from None
    target.with_name(target.name + ".sha256").write_text(digests)
    return target


def _verify_folder(spec: WeightSpec, target: Path) -> tuple[bool, str]:
    recorded = target.with_name(target.name + ".sha256")
    if not recorded.exists():
        return True, f"present ({sum(1 for _ in target.rglob('*'))} files; no sha256 recorded)"
    for line in recorded.read_text().splitlines():
        digest, relative = line.split("  ", 1)
        path = target / relative
        if not path.is_file():
            return False, f"{relative} is missing from {target}: download '{spec.name}' again (--force)"
        if sha256_of(path) != digest:
            return False, f"{relative} has changed since the download: download '{spec.name}' again (--force)"
    return True, f"ok, {len(recorded.read_text().splitlines())} files as downloaded"


def verify(name: str) -> tuple[bool, str]:
    """Check a cached file against the registry's sha256, or the one recorded at download."""
    spec = spec_for(name)
    target = cached_path(name)
    if not target.exists():
        return False, f"missing: put {spec.filename} at {target}"
    if spec.repo_files:
        return _verify_folder(spec, target)
    digest = sha256_of(target)
    recorded = target.with_name(target.name + ".sha256")
    expected = spec.sha256 or (recorded.read_text().strip() if recorded.exists() else None)
    if expected is None:
        return True, f"present, sha256 {digest} (no reference sha256 known)"
    if digest != expected:
        return False, f"sha256 {digest[:12]}… does not match {expected[:12]}…: delete {target} and download again"
    return True, f"ok, sha256 {digest}"


def resolve_weights(name_or_path: str, download_missing: bool = True, field: str = "weights") -> Path:
    """A local file for a registry name (downloading it once) or a path given by the user (job ``field``)."""
    if name_or_path in REGISTRY:
        target = cached_path(name_or_path)
        if target.exists():
            return target
        if not download_missing:
            spec = spec_for(name_or_path)
            raise WeightsUnavailable(_missing_message(spec, target, "downloads are turned off"))
        return download(name_or_path)
    return check_reference(name_or_path, field)


def pretrained_source(name_or_path: str, download_missing: bool = True, field: str = "weights") -> str:
    """What ``from_pretrained`` should read for a base model a config names.

    A registry name, or the Hugging Face repository of a registry model folder, is its cached
    folder or file (downloaded once, with the licence the registry lists); anything else (a local
    folder, a repository the registry does not know) is returned as given.
    """
    name = next((spec.name for spec in REGISTRY.values()
                 if name_or_path == spec.name or (spec.repo_files and name_or_path == spec.hf_repo)), None)
    if name is None:
        return name_or_path
    return str(resolve_weights(name, download_missing, field))


def check_reference(name_or_path: str, field: str = "weights") -> Path | None:
    """The file a user's path names, None for a registry name; an error naming ``field`` otherwise."""
    if name_or_path in REGISTRY:
        return None
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise UserInputError(
            f"{{{field}}} {name_or_path!r} is neither a file nor a registry name; "
            "give a path to a checkpoint or a name from 'rsov weights list'.", field
        )
    return path
