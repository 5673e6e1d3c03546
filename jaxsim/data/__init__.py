"""Data: sources, identity splits, samplers and Grain pipelines. Knows nothing of models.

Records (what `source[i]` returns; every source also has `source.identities`, an
int numpy array [len(source)] of per-record identity ids, available without
decoding any image, so splits and samplers work on labels only):

- single-modality sources (`SyntheticFaces`, `SyntheticFingerprints`,
  `ImageFileSource` and the folder loaders, `ArrayImageSource`, `TfdsSource`):
  `{"image": float32 [H, W, C] in [0, 1], "identity": int32}`;
- paired / cross-modal sources (`FaceFingerprintSource`, `PairedImageSource`,
  `SyntheticLookalikePairs`, Totally Looks Like): `{"image_a": [H, W, Ca],
  "image_b": [H, W, Cb], "identity": int32}`, both images of the same subject (or
  the left and right image of one look-alike pair);
- `DigitsTextSource`: `{"image": [28, 28, 1], "identity": int32 digit, "text": str,
  "text_ids": int32 [L], "text_mask": bool [L]}`.

Images are float32 HWC in [0, 1] per record, float32 NHWC in [0, 1] per batch.
Batches (see `jaxsim.data.pipeline`): pairs `{"image_a", "image_b", "label"}`
(label int32, 1 = same identity); PxK and single-image `{"image", "identity"}`;
cross-modal two-tower `{"image_a", "image_b", "identity"}`; image-text
`{"image", "text_ids", "text_mask", "identity"}` (identity = digit class, never an
input of the text encoder); triplets `{"anchor", "positive", "negative", "identity"}`.

Every random choice derives from an explicit seed: a source is deterministic in
(seed, identity, index); splits in their seed; pipelines in (seed, position).
"""

from jaxsim.data import pipeline, sampling, sources, splits

__all__ = ["pipeline", "sampling", "sources", "splits"]
