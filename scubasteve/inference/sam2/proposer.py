"""`Sam2Proposer`: ten ranked masks for a box from Meta's SAM 2 (the `sam2` package).

`set_image` runs SAM 2's image encoder once (through upstream's `SAM2ImagePredictor`) and keeps the
embedding in a small LRU keyed by the image's bytes, so that going back to an image is free;
`prefetch` fills it for the next image on the engine's background thread. `propose(box)` then asks
the mask decoder several prompt variants (see `prompts`): SAM's three ambiguity-aware masks for the box, its
single mask, the box with its centre point, the box shrunk and grown; if that leaves fewer than `k`
distinct masks, the best masks' logits are cut at other levels (chosen so that the mask grows or
shrinks to a set share of its area: 0.7x, 1.4x, 0.5x...). Near-duplicates (IoU > 0.9) go, and the
rest are ranked by SAM's predicted IoU.

`Proposal.score` is SAM's own predicted IoU: the decoder's estimate of the mask's IoU with the
object the prompt means (about 0..1; not calibrated, and untrained weights predict noise). For a
mask cut at another logit level it is the parent's predicted IoU times the cut mask's IoU with the
parent (its area ratio: the masks are nested), so it never ranks above the mask it came from. With clicks, masks that contradict a click
(a positive click outside, a negative one inside) rank after those that honour all clicks.

Clicks follow SAM's interactive loop: box and clicks with the previous answer's low-resolution
logits as `mask_input`, a single mask out (plus multi-mask and fresh variants for the other nine).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from scubasteve.core.annotation import MaskPatch
from scubasteve.core.cancel import CancelToken, raise_if_cancelled
from scubasteve.core.geometry import Box
from scubasteve.inference.base import (
    DEFAULT_DUPLICATE_IOU,
    EngineBase,
    PromptPoint,
    Proposal,
    ProposalCallback,
    as_rgb,
    patch_iou,
    validate_box,
)
from scubasteve.inference.sam2.prompts import (
    Prompt,
    decode,
    first_prompt,
    mask_logits,
    more_prompts,
    region_for,
)
from scubasteve.inference.sam2.ranking import Ranking

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sam2Options:
    """Inference settings.

    `cache_images`: image embeddings kept (about 16 MB each on the CPU). `jitter`: the shrunk and
    grown boxes move each side by this share of the box. `area_ratios`: when the prompts left
    fewer than `k` distinct masks, the best ones are cut again at the logit levels that give these
    multiples of their area, one ratio after the other until there are `k`.
    `margin`: masks are kept within the box grown by this share (and the clicks). `bf16`: bfloat16
    autocast; None: on CUDA only, as upstream recommends. `max_encoder_side`: larger images are
    shrunk (area averaging) to this before upstream's resize to 1024 x 1024, so that a 100 MP photo
    does not become a 1.2 GB float tensor first; coordinates stay those of the full image.
    """

    cache_images: int = 4
    jitter: float = 0.05
    area_ratios: tuple[float, ...] = (0.7, 1.4, 0.5, 2.0, 0.35, 2.8, 0.25)
    duplicate_iou: float = DEFAULT_DUPLICATE_IOU
    margin: float = 0.25
    bf16: bool | None = None
    max_encoder_side: int = 2048


@dataclass(frozen=True)
class Embedding:
    """One image's SAM 2 features (tensors on the engine's device) and its (height, width)."""

    features: dict[str, Any]
    hw: tuple[int, int]


def image_key(rgb: np.ndarray) -> str:
    """A digest of the image's pixels: the embedding cache's key."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(rgb.shape).encode())
    digest.update(np.ascontiguousarray(rgb).data)
    return digest.hexdigest()


class Sam2Proposer(EngineBase):
    """The SAM 2 engine behind the `MaskProposer` protocol (see the module docstring)."""

    name = "sam2"

    def __init__(
        self,
        model: Any,
        device: str = "cpu",
        options: Sam2Options | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        from sam2.utils.transforms import SAM2Transforms

        self.model = model.to(device).eval()
        self.device = device
        self.options = options or Sam2Options()
        self.meta = dict(meta or {})
        bf16 = self.options.bf16
        self.bf16 = str(device).startswith("cuda") if bf16 is None else bool(bf16)
        self.transforms = SAM2Transforms(resolution=model.image_size, mask_threshold=0.0)
        self._cache: OrderedDict[str, Embedding] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[str, threading.Event] = {}
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] | None = None  # prefetch worker's
        self._current: Embedding | None = None
        self._current_key = ""
        #: (image key, box, clicks, best logits, [(patch, logits) of each returned mask]).
        self._last: (
            tuple[
                str,
                tuple[float, ...],
                tuple[PromptPoint, ...],
                np.ndarray,
                list[tuple[MaskPatch, np.ndarray]],
            ]
            | None
        )
        self._last = None
        #: Image encoder runs so far (a cache hit does not count); seconds of the last one.
        self.encoder_runs = 0
        self.last_encode_s = 0.0
        #: How well the prompt variants of the last `propose` agreed (see `Ranking.agreement`).
        self.last_agreement = 1.0

    # --- per-image work ---------------------------------------------------------------------------

    def _autocast(self) -> Any:
        import torch

        kind = str(self.device).split(":", 1)[0]
        return torch.autocast(kind, dtype=torch.bfloat16, enabled=self.bf16)

    def _encode(self, rgb: np.ndarray) -> Embedding:
        import torch
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        t0 = time.perf_counter()
        predictor = SAM2ImagePredictor(self.model)  # one per call: safe beside a prefetch
        with torch.inference_mode(), self._autocast():
            predictor.set_image(_bounded(rgb, self.options.max_encoder_side))
        feats = predictor._features  # upstream keeps them there; see SAM2ImagePredictor.set_image
        assert feats is not None
        emb = Embedding(
            {"image_embed": feats["image_embed"], "high_res_feats": list(feats["high_res_feats"])},
            (int(rgb.shape[0]), int(rgb.shape[1])),
        )
        with self._lock:
            self.encoder_runs += 1
            self.last_encode_s = time.perf_counter() - t0
        return emb

    def _store(self, key: str, emb: Embedding) -> None:
        with self._lock:
            self._cache[key] = emb
            self._cache.move_to_end(key)
            while len(self._cache) > max(1, self.options.cache_images):
                self._cache.popitem(last=False)

    def _cached(self, key: str) -> Embedding | None:
        """The cached embedding of `key`, waiting for a prefetch of it that is under way."""
        with self._lock:
            pending = self._pending.get(key)
        if pending is not None:
            pending.wait()
        with self._lock:
            emb = self._cache.get(key)
            if emb is not None:
                self._cache.move_to_end(key)
            return emb

    def set_image(self, image: np.ndarray, *, cancel: CancelToken | None = None) -> None:
        """Take an (H, W, 3) uint8 RGB image (grey/RGBA accepted) and compute its embedding.

        Seconds on a CPU for a new image; nothing for one in the cache. `cancel` (an extension of
        the protocol) is checked before the encoder runs (one encoder pass cannot be stopped).
        """
        rgb = as_rgb(image)
        key = image_key(rgb)
        self._current, self._current_key = None, ""
        emb = self._cached(key)
        if emb is None:
            raise_if_cancelled(cancel)
            emb = self._encode(rgb)
            self._store(key, emb)
        self._current, self._current_key = emb, key

    def prefetch(self, image: np.ndarray) -> Future[None] | None:
        """Compute `image`'s embedding in the background (the next image, say); returns a future
        that is done once it is cached, or None when it is cached or under way already.
        `set_image` of it then waits for it.

        One worker thread serves every prefetch of this engine, in order: on CUDA a thread's first
        encoder pass in bfloat16 took 0.3-0.4 s against 0.016-0.027 s for later ones (hiera-tiny,
        H200, docs/sam2.md), so a new thread per image paid that every time."""
        rgb = as_rgb(image)
        key = image_key(rgb)
        with self._lock:
            if key in self._cache or key in self._pending:
                return None
            done = self._pending[key] = threading.Event()
        future: Future[None] = Future()

        def work() -> None:
            try:
                self._store(key, self._encode(rgb))
            except Exception as exc:  # set_image will compute it again and report
                log.warning("SAM 2 prefetch failed: %s", exc)
            finally:
                with self._lock:
                    self._pending.pop(key, None)
                done.set()
                future.set_result(None)

        with self._lock:
            if self._jobs is None:
                self._jobs = queue.SimpleQueue()
                worker = threading.Thread(
                    target=_serve, args=(self._jobs,), name="sam2-prefetch", daemon=True
                )
                worker.start()
                weakref.finalize(self, self._jobs.put, None)  # the worker ends with the engine
            self._jobs.put(work)
        return future

    # --- box prompts ------------------------------------------------------------------------------

    def _previous(
        self, box: Box, points: Sequence[PromptPoint], previous: MaskPatch | None
    ) -> np.ndarray | None:
        """The low-resolution logits to give as `mask_input` (None: no earlier answer).

        With `previous` (the mask the user corrects): its logits when it is one of the last
        answer's masks on this image, else the mask itself turned into logits. Without it, when
        this request adds clicks to the last one (same image and box): the last answer's best.
        """
        last = self._last
        same_image = last is not None and last[0] == self._current_key
        if previous is not None:
            if same_image and last is not None:
                for patch, logits in last[4]:
                    if patch is previous or patch_iou(patch, previous) >= 0.99:
                        return logits
            return mask_logits(previous, self._current.hw if self._current else (1, 1))
        if last is None or not points or not same_image:
            return None
        _, last_box, last_points, logits, _ = last
        same_box = np.allclose(last_box, (box.x0, box.y0, box.x1, box.y1), atol=0.5)
        extends = tuple(points[: len(last_points)]) == last_points
        return logits if same_box and extends else None

    def propose(
        self,
        box: Box,
        k: int = 10,
        points: Sequence[PromptPoint] = (),
        *,
        previous: MaskPatch | None = None,
        cancel: CancelToken | None = None,
        on_proposal: ProposalCallback | None = None,
    ) -> list[Proposal]:
        """Up to `k` distinct masks for the object in `box`, best first (see the module docstring).

        `previous`: the mask the clicks correct; its logits become SAM's `mask_input`."""
        emb = self._current
        if emb is None:
            raise RuntimeError("call set_image before propose")
        height, width = emb.hw
        box = validate_box(box, width, height)
        if k <= 0:
            return []
        points = tuple(points)
        opts = self.options
        region = region_for(box, points, opts.margin, width, height)
        prior = self._previous(box, points, previous)
        ranking = Ranking(k, opts.duplicate_iou, points, on_proposal)

        def run(prompt: Prompt) -> None:
            raise_if_cancelled(cancel)
            with self._inference():
                logits, ious = decode(self.model, self.transforms, emb.features, emb.hw, prompt)
            # Best predicted IoU first, so that the first mask shown is SAM's own choice.
            for flat in np.argsort(-ious, axis=None, kind="stable"):
                b, c = np.unravel_index(flat, ious.shape)
                tag = f"{prompt.tag}{b if logits.shape[0] > 1 else ''}-m{c}"
                ranking.add_logits(logits[b, c], float(ious[b, c]), tag, emb.hw, region)

        run(first_prompt(box, points, prior))
        for prompt in more_prompts(box, points, prior, opts.jitter, width, height):
            run(prompt)
        self.last_agreement = ranking.agreement()
        for ratio in opts.area_ratios:
            if ranking.distinct_count() >= k:
                break
            raise_if_cancelled(cancel)
            ranking.add_cuts(ratio, emb.hw, region)
        raise_if_cancelled(cancel)
        out = ranking.ranked()
        if out:
            masks = [(p.patch, ranking.logits_of(p)) for p in out]
            coords = (box.x0, box.y0, box.x1, box.y1)
            self._last = (self._current_key, coords, points, masks[0][1], masks)
        return out

    def _inference(self) -> Any:
        import contextlib

        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(self._autocast())
        return stack


def _serve(jobs: queue.SimpleQueue[Callable[[], None] | None]) -> None:
    """The prefetch worker: run jobs one after the other until None comes."""
    while True:
        job = jobs.get()
        if job is None:
            return
        job()
        del job  # holds the engine: it must not outlive the job while the worker waits


def _bounded(rgb: np.ndarray, side: int) -> np.ndarray:
    """`rgb` shrunk so that its longer side is at most `side` (the encoder sees 1024 px anyway)."""
    h, w = rgb.shape[:2]
    if max(h, w) <= side:
        return rgb
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
