"""Real speech clips with reference transcripts, and long inputs built from them.

The clips in ``tests/data/speech`` come from Debian's ``pocketsphinx-testdata``
(see ``tests/data/speech/PROVENANCE.md``). Long inputs are concatenations with
known silent gaps, so the true start and end of every utterance are known.
"""

from __future__ import annotations

import random
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPEECH_DIR = Path(__file__).parent / "data" / "speech"
SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Clip:
    """One recorded utterance and its reference transcript."""

    name: str
    path: Path
    reference: str


@dataclass(frozen=True)
class Utterance:
    """Where one clip lies inside a long input (``start``, ``end``: the clip's file)."""

    clip: Clip
    start: float
    end: float

    @property
    def speech_start(self) -> float:
        """Where the speech begins: some clips open with half a second of room noise."""
        return self.start + speech_onset(self.clip.path)

    @property
    def speech_end(self) -> float:
        """Where the speech ends."""
        return self.start + speech_offset(self.clip.path)


@dataclass(frozen=True)
class LongInput:
    """A long input: PCM samples and the true position of each utterance."""

    samples: np.ndarray  # int16, mono, 16 kHz
    utterances: list[Utterance]

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def reference(self) -> str:
        return " ".join(u.clip.reference for u in self.utterances)


def clips() -> list[Clip]:
    """All clips with their references, in ``refs.tsv`` order."""
    rows = (SPEECH_DIR / "refs.tsv").read_text(encoding="utf-8").splitlines()
    out = []
    for row in rows:
        name, text = row.split("\t", 1)
        out.append(Clip(name=name.removesuffix(".wav"), path=SPEECH_DIR / name, reference=text))
    return out


def clip(name: str) -> Clip:
    """One clip by name (without ``.wav``)."""
    return next(c for c in clips() if c.name == name)


def read_wav(path: Path) -> np.ndarray:
    """Samples of a 16 kHz mono 16-bit WAV as int16."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == SAMPLE_RATE
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)


ONSET_BELOW_PEAK_DB = 25.0


def _levels(path: Path) -> np.ndarray:
    samples = read_wav(path).astype(np.float64)
    frames = len(samples) // 160
    energy = (samples[: frames * 160].reshape(frames, 160) ** 2).mean(axis=1)
    return np.asarray(10 * np.log10(energy + 1e-9))


def speech_onset(path: Path) -> float:
    """Seconds before the first 10 ms frame within 25 dB of the clip's loudest frame.

    Measured on the clip alone, independently of anything the gateway computes.
    """
    level = _levels(path)
    return float(np.argmax(level >= level.max() - ONSET_BELOW_PEAK_DB)) / 100


def speech_offset(path: Path) -> float:
    """Seconds to the end of the last 10 ms frame within 25 dB of the clip's loudest frame."""
    level = _levels(path)
    return float(len(level) - np.argmax(level[::-1] >= level.max() - ONSET_BELOW_PEAK_DB)) / 100


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """Write int16 mono samples as a 16 kHz WAV."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.astype(np.int16).tobytes())
    return path


def build_long_input(
    min_seconds: float,
    *,
    gaps: tuple[float, ...] = (0.5, 0.8, 1.2),
    seed: int = 7,
    shuffle: bool = True,
) -> LongInput:
    """Concatenate shuffled clips, separated by silent gaps, until ``min_seconds``.

    Every clip is used once per round before any repeats; the gaps cycle through
    ``gaps`` so that cut points do not line up with a fixed rhythm. ``shuffle=False``
    keeps the corpus order in every round.
    """
    rng = random.Random(seed)
    pool = clips()
    parts: list[np.ndarray] = []
    utterances: list[Utterance] = []
    position = 0
    gap_index = 0
    while position < min_seconds * SAMPLE_RATE:
        order = pool[:]
        if shuffle:
            rng.shuffle(order)
        for c in order:
            gap = np.zeros(round(gaps[gap_index % len(gaps)] * SAMPLE_RATE), dtype=np.int16)
            gap_index += 1
            parts.append(gap)
            position += len(gap)
            samples = read_wav(c.path)
            utterances.append(Utterance(c, start=position / SAMPLE_RATE, end=(position + len(samples)) / SAMPLE_RATE))
            parts.append(samples)
            position += len(samples)
            if position >= min_seconds * SAMPLE_RATE:
                break
    parts.append(np.zeros(SAMPLE_RATE // 2, dtype=np.int16))
    return LongInput(samples=np.concatenate(parts), utterances=utterances)


def pink_noise(length: int, rng: np.random.Generator) -> np.ndarray:
    """Noise whose power falls as 1/f (white noise shaped in the frequency domain), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise: np.ndarray = np.fft.irfft(spectrum, n=length)
    return noise / float(np.sqrt(np.mean(noise**2)))


def noisy(samples: np.ndarray, snr_db: float | None, seed: int) -> np.ndarray:
    """The speech with pink noise ``snr_db`` under its RMS (None: as it is), as 16-bit PCM; ``seed`` the noise's."""
    if snr_db is None:
        return samples
    speech = samples.astype(np.float64)
    loud = speech[np.abs(speech) > 0]  # the gaps are digital silence: the speech's own level
    level = np.sqrt(np.mean(loud**2)) / 10 ** (snr_db / 20)
    mixed = speech + level * pink_noise(len(speech), np.random.default_rng(seed))
    pcm: np.ndarray = np.clip(np.round(mixed), -32768, 32767).astype(np.int16)
    return pcm
