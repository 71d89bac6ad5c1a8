"""The inside of an opened mouth (teeth, tongue), taken from a photo that shows it.

A warp cannot open a closed mouth (it only stretches the target's lips) and the 128-px decoder paints the gap as a
blur, so where the driving mouth is open its inside comes from the first of these that shows an open mouth:

1. **the target's own photo**, its own teeth carried into place by the flow (the warped target);
2. **another face**, its inside moved onto the driving mouth by a thin-plate spline through the 20 mouth
   landmarks: by default (``mouth="exemplar"``) the checkpoint's
   :class:`~aipgan_hf.compositing.exemplar.MouthExemplar`, so that no pixel of the source person reaches the
   output; with ``mouth="source"`` the source photo or driving frame (the exemplar where there is none);
3. otherwise the decoder's paint.

A lent inside is matched to the target's lighting (:func:`lighting_gain`), and a black-and-white one takes some of
the target's tint, so that it does not open a dark or grey mouth in a bright colour face. How open is measured by the
inner-lip gap (:data:`~aipgan_hf.landmarks.INNER_LIP_GAPS`): stretching a much narrower gap gives stretched lips, not
teeth. Everything here is in crop space; :class:`~aipgan_hf.compositing.photo.PhotoWarper` samples the same fill at
the photo's resolution. docs/design.md ("The opened mouth") gives the history and figures behind these choices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..faces.pixels import LUMA
from ..landmarks import (
    EXPRESSION_REGIONS,
    INNER_LIPS,
    JAW,
    MOUTH,
    OVAL_SAMPLES,
    inner_lip_gap,
    inner_lip_outline,
    mouth_interior,
    polygon_mask,
    region_indices,
)
from ..motion.flow import evaluate_thin_plate, fit_thin_plate, identity_grid, pixels_to_normalised

MOUTH_SOURCES = ("network", "own", "source", "exemplar")
"""Where an opened mouth's inside may come from: ``"network"`` (the decoder's paint only), ``"own"`` (also the
target's own open mouth), ``"exemplar"`` (also the checkpoint's exemplar face's), ``"source"`` (also the source
photo's or driving frame's, else the exemplar's)."""

LENDING = ("source", "exemplar")
"""The modes in which another face lends its mouth's inside (the caller hands that face in as the "source")."""

DEFAULT_MOUTH = "exemplar"
"""The ``mouth=`` of every pipeline call, preset and video that does not choose one."""

OPEN_FROM, OPEN_FULL = 0.3, 0.7
"""A photo's inner-lip gap as a share of the driving gap: below 0.3 its inside is not used, from 0.7 fully."""

MIN_GAP = 1.0 / 128
"""Inner-lip gaps below this share of the crop side (1 px of a 128-px crop) count as a closed mouth; a lent inside's
share ramps up to full at twice this gap."""

GAIN_RANGE = (0.9, 2.5)
"""Bounds of :func:`lighting_gain`'s brightness ratio. Two faces' brightness ratio is lighting and skin tone together,
and teeth are about as white in any face: the gain lifts an underexposed source's teeth but hardly darkens them."""

GREY_CHROMA = (0.02, 0.05)
"""How far a face's channels stray from their mean inside its outline, as a share of its luma: up to the first value
it is black-and-white (its mouth inside takes the target's tint in full), from the second in colour (none); a ramp in
between, so that a nearly colourless clip does not flicker between the two."""

CAVITY = (0.16, 0.06, 0.06)
"""Colour (RGB in [0, 1]) of an open mouth's cavity beyond the lent teeth: dark, reddish (no lighting gain)."""

TEETH = 0.6
"""Share of the exemplar's opening, from its upper lip down, that its upper teeth fill: in a gaping mouth they are a
band that high (scaled by the mouths' widths) under the driving upper lip; below, the mouth's cavity (its smile's
teeth stretched over a jaw drop read as a grin)."""

JAW_DROP = (1.3, 1.7)
"""Driving gap over the exemplar's: up to the first the exemplar's smile is stretched as it is (a smile shows its
teeth; a cavity under them made a smile a gaping hole), from the second its teeth keep their height over the cavity
(:data:`TEETH`) and the opening is an oval (``landmarks.OVAL``, the same ramp), in part in between."""

TEETH_TAPER = 0.3
"""Share of the mouth's half width, at each corner, over which a gape's band of lent teeth narrows to nothing (the
cheeks hide the side teeth; a band cut square at the corners reads as a denture)."""

GREY_TINT = 0.5
"""How much of the target face's tint (its mean colour over its mean luma) a grey source's inside takes, as a
power: 1 would make teeth skin-coloured, 0 leaves them grey."""

BROWS = region_indices(EXPRESSION_REGIONS["brows"])


def check_mouth(mouth: str) -> str:
    """``mouth`` itself if it is one of :data:`MOUTH_SOURCES`; else ConfigError."""
    if mouth not in MOUTH_SOURCES:
        raise ConfigError(f"mouth must be one of {', '.join(map(repr, MOUTH_SOURCES))}, got {mouth!r}")
    return mouth


@dataclass
class MouthFill:
    """Where an output's mouth inside comes from, in crop space.

    Attributes:
        own: (B, 1, R, R) in [0, 1], the share of the warped target (its own mouth, moved by the flow).
        source: (B, 1, R, R) in [0, 1], the share of the source's mouth inside.
        source_read: (B, R, R, 2) where to read the source crop (grid_sample units), or None without a source.
        source_gain: (B, 3) per-channel factor of the source's inside (:func:`lighting_gain`; None: 1).
        interior: (B, 1, R, R) in [0, 1], inside the driving inner lips (``landmarks.mouth_interior``).
        cavity: (B, 1, R, R) in [0, 1], where the source's inside gives way to the mouth's dark cavity (a driving
            mouth open wider than the source's: :func:`mouth_read`), or None.
    """

    own: torch.Tensor
    source: torch.Tensor
    source_read: torch.Tensor | None
    source_gain: torch.Tensor | None = None
    interior: torch.Tensor | None = None
    lender: str = "source"
    cavity: torch.Tensor | None = None

    def origin(self, index: int = 0) -> str:
        """Where output ``index``'s mouth inside mostly comes from: "own" (the target's photo), :attr:`lender` (the
        other face: "source" for the source photo or driving frame, "exemplar"), "network" (the decoder's paint:
        the driving mouth opens, no photo shows one as open), or "closed" (the driving mouth is shut)."""
        interior = float(self.interior[index].sum()) if self.interior is not None else 0.0
        size = self.own.shape[-1]
        if interior < MIN_GAP * size * size / 8:  # a gap under MIN_GAP along an eighth of the crop: landmark noise
            return "closed"
        own, source = float(self.own[index].sum()), float(self.source[index].sum())
        if max(own, source) < 0.5 * interior:
            return "network"
        return "own" if own >= source else self.lender

    def apply(
        self, image: torch.Tensor, warped_target: torch.Tensor, source: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The (B, 3, R, R) output crop with its mouth's inside filled from the warped target and the source crop."""
        filled = image + self.own.to(image.dtype) * (warped_target - image)
        if self.source_read is None or source is None:
            return filled
        moved = F.grid_sample(
            source.to(image.dtype),
            self.source_read.to(image.dtype),
            mode="bilinear",
            padding_mode="border",
            align_corners=False,
        )
        if self.source_gain is not None:  # [-1, 1] pixels: the gain scales their brightness from black
            moved = ((moved + 1.0) * self.source_gain.to(image.dtype)[:, :, None, None] - 1.0).clamp(-1.0, 1.0)
        if self.cavity is not None:
            moved = moved + self.cavity.to(image.dtype) * (
                torch.tensor(CAVITY, dtype=image.dtype, device=image.device).view(1, 3, 1, 1) * 2.0 - 1.0 - moved
            )
        return filled + self.source.to(image.dtype) * (moved - filled)


@dataclass
class DrivingFaces:
    """Driving faces for :meth:`~aipgan_hf.pipeline.AIPGANPipeline.render` (video frames): where their mouths'
    insides are read.

    Attributes:
        frames: N (H, W, 3) uint8 frames. matrices: (N, 2, 3) frame -> crop similarities.
        crops: (N, 3, R, R) their aligned crops in [-1, 1]. landmarks: (N, 68, 2) their crop-frame landmarks.
        found: (N,) bool, which frames show a face (the others' entries are ignored).
    """

    frames: list[np.ndarray]
    matrices: np.ndarray
    crops: torch.Tensor
    landmarks: np.ndarray
    found: np.ndarray


def face_colour(image: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3) mean colour in [0, 1] of (B, 3, R, R) crops in [-1, 1] inside the face outline (jaw, then the brows),
    and (B,) how far its channels stray from their mean there (0 for a black-and-white photo); measured at 32 px
    (a mean over the face needs no more)."""
    factor = max(1, image.shape[-1] // 32)
    small = (F.avg_pool2d(image.float(), factor) + 1.0) / 2.0  # (B, 3, r, r) in [0, 1]
    outline = (torch.cat([landmarks[:, JAW], landmarks[:, BROWS].flip(1)], dim=1).float() + 0.5) / factor - 0.5
    inside = polygon_mask(outline, small.shape[-1])  # (B, 1, r, r)
    area = inside.sum(dim=(1, 2, 3)).clamp(min=1.0)
    chroma = (small - small.mean(1, keepdim=True)).abs().mean(1, keepdim=True)  # (B, 1, r, r)
    return (small * inside).sum(dim=(2, 3)) / area[:, None], (chroma * inside).sum(dim=(1, 2, 3)) / area


def lighting_gain(
    target: torch.Tensor, target_landmarks: torch.Tensor, source: torch.Tensor, source_landmarks: torch.Tensor
) -> torch.Tensor:
    """(B, 3) per-channel factor for the source's pixels: how much brighter the target's face is than the source's
    (mean luma, within :data:`GAIN_RANGE`), times, for a black-and-white source (:data:`GREY_CHROMA`), the target
    face's tint to the power :data:`GREY_TINT`, normalised to keep the brightness. A colour source gets the
    brightness ratio on every channel, unchanged."""
    luma = torch.tensor(LUMA, device=target.device)
    target_colour, _ = face_colour(target, target_landmarks)
    source_colour, source_chroma = face_colour(source, source_landmarks)
    target_luma, source_luma = (target_colour @ luma).clamp(min=1e-3), (source_colour @ luma).clamp(min=1e-3)
    gain = (target_luma / source_luma).clamp(*GAIN_RANGE)[:, None].expand(-1, 3)  # (B, 3)
    low, high = GREY_CHROMA
    grey = ((high - source_chroma / source_luma) / (high - low)).clamp(0.0, 1.0)  # (B,) 1: black-and-white, 0: colour
    tint = (target_colour / target_luma[:, None]).clamp(min=1e-3) ** (GREY_TINT * grey[:, None])
    tint = tint / (tint @ luma)[:, None]  # a tint keeps the luma
    return torch.where((grey > 0)[:, None], gain * tint, gain)


def _usable(gap: torch.Tensor, driving_gap: torch.Tensor, size: int, lent: bool = False) -> torch.Tensor:
    """(B,) in [0, 1]: how much of a photo's mouth inside to use, from its gap and the driving gap; none where the
    photo's mouth is shut (a gap under :data:`MIN_GAP`), nor where the driving mouth is: its share ramps up from 0
    at a driving gap of MIN_GAP to full at twice that (a shut mouth has no inside to fill, and a ramp does not
    flicker in a video whose mouth hovers at the threshold). The target's own photo's or a source's gap must be at
    least :data:`OPEN_FROM` of the driving gap (a narrower one shows lips, not teeth), used in full from
    :data:`OPEN_FULL` (a warp stretches their teeth). The exemplar's (``lent``) is used at any opening: its teeth keep
    their size and the rest of a wider opening is the mouth's dark cavity (:func:`mouth_read`), where the network's
    paint is a soft blur (docs/design.md, "The opened mouth")."""
    closed = MIN_GAP * size
    usable = (driving_gap / closed - 1.0).clamp(0.0, 1.0)
    if not lent:
        share = gap / driving_gap.clamp(min=closed)
        usable = usable * ((share - OPEN_FROM) / (OPEN_FULL - OPEN_FROM)).clamp(0.0, 1.0)
    return torch.where(gap >= closed, usable, torch.zeros_like(usable))


def _arch(curve: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """(B, w) the least-squares parabola through (B, U, 2) curve points, at ``columns`` (w,): teeth are rigid, so
    their edge follows the upper lip's arch, not its notches (through the three inner-lip points an upper lip often
    dips at its middle's sides, and teeth hung from it read as two fangs)."""
    centre = curve[..., 0].mean(1, keepdim=True)  # (B, 1): centred x keeps the normal equations well conditioned
    x = curve[..., 0] - centre
    powers = torch.stack([torch.ones_like(x), x, x * x], dim=-1).double()  # (B, U, 3)
    normal = powers.transpose(1, 2) @ powers + 1e-6 * torch.eye(3, dtype=torch.float64, device=curve.device)
    weights = torch.linalg.solve(normal, powers.transpose(1, 2) @ curve[..., 1:].double())  # (B, 3, 1)
    at = columns[None] - centre  # (B, w)
    return (torch.stack([torch.ones_like(at), at, at * at], dim=-1).double() @ weights)[..., 0].to(curve.dtype)


def _teeth_band(
    driving_landmarks: torch.Tensor,
    source_landmarks: torch.Tensor,
    coefficients: torch.Tensor,
    controls: torch.Tensor,
    box: tuple[int, int, int, int],
    size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """((B, h, w, 2) grid_sample positions in the source crop, (B, h, w) px past the teeth) over ``box`` (x0, y0,
    x1, y1 crop pixels) of a gaping driving mouth: the exemplar's upper teeth as a band under the driving upper lip.

    Each column reads the source under the point where the spline (``coefficients`` at ``controls``) sends the
    driving upper inner lip (its curve in :func:`~aipgan_hf.landmarks.inner_lip_outline`, 60 to 64), downwards at
    the source's own scale over the driving one (the inner mouths' widths): teeth of one height across the mouth,
    :data:`TEETH` of the source's opening scaled with the width, narrowing to nothing over :data:`TEETH_TAPER` of
    the half width at each corner. Reading along the spline instead, the teeth followed the local gap: a triangle
    hanging from the middle of a jaw drop, a wedge of cavity under it."""
    x0, y0, x1, y1 = box
    batch = driving_landmarks.shape[0]
    lip = inner_lip_outline(driving_landmarks, size)[:, : 4 * OVAL_SAMPLES + 1]  # (B, U, 2): 60, upper lip, 64
    columns = torch.arange(x0, x1, dtype=lip.dtype, device=lip.device)  # (w,)
    lip_y = _arch(lip, columns)  # (B, w): the driving upper inner lip, smoothed, over each column
    depth = (torch.arange(y0, y1, dtype=lip.dtype, device=lip.device)[None, :, None] - lip_y[:, None]).clamp(min=0.0)
    corners = INNER_LIPS.start, INNER_LIPS.start + 4
    driving_width = (driving_landmarks[:, corners[1]] - driving_landmarks[:, corners[0]]).norm(dim=-1).clamp(min=1.0)
    source_width = (source_landmarks[:, corners[1]] - source_landmarks[:, corners[0]]).norm(dim=-1)
    scale = (source_width / driving_width)[:, None]  # (B, 1) source px per driving px
    centre = driving_landmarks[:, list(corners), 0].mean(1, keepdim=True)  # (B, 1)
    edge = ((1.0 - (columns - centre).abs() / (driving_width[:, None] / 2)) / TEETH_TAPER).clamp(0.0, 1.0)
    taper = edge * edge * (3.0 - 2.0 * edge)  # (B, w) smoothstep: 0 at a corner, 1 inside
    band = TEETH * inner_lip_gap(source_landmarks).clamp(min=MIN_GAP * size)[:, None] / scale * taper  # (B, w) px
    on_lip = pixels_to_normalised(torch.stack([columns.expand(batch, -1), lip_y], dim=-1), size)  # (B, w, 2)
    read = evaluate_thin_plate(coefficients, controls, on_lip)[:, None].repeat(1, y1 - y0, 1, 1)  # (B, h, w, 2)
    read[..., 1] = read[..., 1] + depth * (scale[:, None] * (2.0 / size))
    return read, depth - band[:, None]


def mouth_read(
    driving_landmarks: torch.Tensor, source_landmarks: torch.Tensor, size: int, teeth_only: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """((B, R, R, 2) grid_sample positions in the source crop, (B, 1, R, R) cavity weight in [0, 1]).

    The positions are the thin-plate spline that sends the driving mouth's 20 landmarks to the source's (exact at
    the mouth), evaluated over the box of the driving mouths only (the only place it is read; elsewhere the
    identity). With ``teeth_only`` (the exemplar, a smile), a driving mouth that gapes well past the exemplar's
    (:data:`JAW_DROP`) shows the exemplar's upper teeth as a band of one height under its upper lip
    (:func:`_teeth_band`) and below them the mouth's dark cavity (the weight), as in a jaw drop, blended in along the
    ramp; a mouth below the ramp reads along the spline as it is (bit for bit), and else the weight is 0."""
    controls = pixels_to_normalised(driving_landmarks[:, MOUTH].float(), size)
    values = pixels_to_normalised(source_landmarks[:, MOUTH].float(), size)
    coefficients = fit_thin_plate(controls, values)
    grid = identity_grid(controls.shape[0], size, controls.device, controls.dtype).clone()
    mouths = driving_landmarks[:, MOUTH].float()
    (x0, y0), (x1, y1) = mouths.amin(dim=(0, 1)).floor().long() - 1, mouths.amax(dim=(0, 1)).ceil().long() + 2
    x0, y0, x1, y1 = max(0, int(x0)), max(0, int(y0)), min(size, int(x1)), min(size, int(y1))
    cavity = torch.zeros(controls.shape[0], 1, size, size, device=controls.device, dtype=controls.dtype)
    if x1 > x0 and y1 > y0:
        window = grid[:, y0:y1, x0:x1]
        read = evaluate_thin_plate(coefficients, controls, window.reshape(controls.shape[0], -1, 2)).view(window.shape)
        grid[:, y0:y1, x0:x1] = read
    if teeth_only and x1 > x0 and y1 > y0:
        source_gap = inner_lip_gap(source_landmarks.float()).clamp(min=MIN_GAP * size)  # (B,) px
        stretch = inner_lip_gap(driving_landmarks.float()) / source_gap
        jaw = ((stretch - JAW_DROP[0]) / (JAW_DROP[1] - JAW_DROP[0])).clamp(0.0, 1.0)  # (B,) 0: a smile, 1: a gape
        if bool((jaw > 0).any()):  # a smile keeps the spline's read as it is, bit for bit
            read = grid[:, y0:y1, x0:x1]
            band_read, past = _teeth_band(
                driving_landmarks.float(), source_landmarks.float(), coefficients, controls, (x0, y0, x1, y1), size
            )
            jaw = jaw[:, None, None]
            grid[:, y0:y1, x0:x1] = read + jaw[..., None] * (band_read - read)
            cavity[:, 0, y0:y1, x0:x1] = past.clamp(0.0, 1.0) * jaw
    return grid, cavity


def mouth_shares(
    target_landmarks: torch.Tensor,
    driving_landmarks: torch.Tensor,
    size: int,
    source_landmarks: torch.Tensor | None = None,
    mouth: str = DEFAULT_MOUTH,
    source_found: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B,) shares of an opened mouth's inside taken from the target's own photo and from the source, in [0, 1]
    (the source's is None where none may be used: no source, or ``mouth`` not one of :data:`LENDING`). From landmarks
    alone, so a video can tell which frames read their driving frame's mouth before decoding any of them.
    Arguments as :func:`plan_mouth`'s."""
    check_mouth(mouth)
    driving_gap = inner_lip_gap(driving_landmarks.float())
    own = (
        torch.zeros_like(driving_gap)
        if mouth == "network"
        else _usable(inner_lip_gap(target_landmarks.float()), driving_gap, size)
    )
    if mouth not in LENDING or source_landmarks is None:
        return own, None
    source_landmarks = torch.nan_to_num(source_landmarks.float())  # a video frame without a face: not read (below)
    share = (1.0 - own) * _usable(inner_lip_gap(source_landmarks), driving_gap, size, lent=mouth == "exemplar")
    if source_found is not None:
        share = share * source_found.to(share.device, share.dtype)
    return own, share


def plan_mouth(
    target_landmarks: torch.Tensor,
    driving_landmarks: torch.Tensor,
    size: int,
    source_landmarks: torch.Tensor | None = None,
    mouth: str = DEFAULT_MOUTH,
    target: torch.Tensor | None = None,
    source: torch.Tensor | None = None,
    source_found: torch.Tensor | None = None,
) -> MouthFill:
    """Decide where each output's mouth inside comes from (:class:`MouthFill`).

    Args:
        target_landmarks, driving_landmarks: (B, 68, 2) crop pixels.
        size: crop side R.
        source_landmarks: (B, 68, 2) crop pixels of the crops that may lend their mouth's inside (the source
            photo's, the driving frames', or the exemplar's, as ``mouth`` says), or None.
        mouth: one of :data:`MOUTH_SOURCES`.
        target, source: (B, 3, R, R) crops in [-1, 1], for the source's :func:`lighting_gain` (else none).
        source_found: (B,) bool, which sources show a face at all (video frames may not); default all.
    """
    own, share = mouth_shares(target_landmarks, driving_landmarks, size, source_landmarks, mouth, source_found)
    driving_landmarks = driving_landmarks.float()
    interior = mouth_interior(driving_landmarks, size)  # (B, 1, R, R)
    if share is None:
        return MouthFill(
            own=interior * own[:, None, None, None],
            source=torch.zeros_like(interior),
            source_read=None,
            interior=interior,
        )
    source_landmarks = torch.nan_to_num(source_landmarks.float())
    used = bool((share > 0).any())
    read, cavity = (
        mouth_read(driving_landmarks, source_landmarks, size, teeth_only=mouth == "exemplar") if used else (None, None)
    )
    gain = (
        lighting_gain(target, target_landmarks, source, source_landmarks)
        if used and target is not None and source is not None
        else None
    )
    return MouthFill(
        own=interior * own[:, None, None, None],
        source=interior * share[:, None, None, None],
        source_read=read,
        source_gain=gain,
        interior=interior,
        lender=mouth,
        cavity=cavity,
    )
