"""Which utterance each transcribed word belongs to: for checking order, losses, doubles and times."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from tests.corpus import LongInput
from tests.wer import normalize


@dataclass(frozen=True)
class RefWord:
    word: str
    utterance: int
    position: int  # within its utterance


@dataclass(frozen=True)
class Alignment:
    """Reference words matched to hypothesis words (equal after normalizing)."""

    reference: list[RefWord]
    hypothesis: list[str]
    hyp_to_ref: dict[int, int]
    insertions: int  # hypothesis words beyond what they replace: a doubled word shows here
    hyp_to_utterance: dict[int, int]  # matched words and words that replace another ("clubs" as "clopes")

    def heard_fraction(self, utterance: int) -> float:
        words = [i for i, w in enumerate(self.reference) if w.utterance == utterance]
        matched = set(self.hyp_to_ref.values())
        return sum(1 for i in words if i in matched) / len(words)


def align(long_input: LongInput, hypothesis: str) -> Alignment:
    reference = [
        RefWord(word, index, position)
        for index, utterance in enumerate(long_input.utterances)
        for position, word in enumerate(normalize(utterance.clip.reference).split())
    ]
    hyp = normalize(hypothesis).split()
    matcher = difflib.SequenceMatcher(a=[w.word for w in reference], b=hyp, autojunk=False)
    mapping: dict[int, int] = {}
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            mapping[block.b + k] = block.a + k
    opcodes = matcher.get_opcodes()
    insertions = sum(max(0, (j2 - j1) - (i2 - i1)) for tag, i1, i2, j1, j2 in opcodes if tag in ("insert", "replace"))
    owner = {}
    for tag, i1, i2, j1, j2 in opcodes:
        # the k-th word of a range stands for its k-th reference word; words beyond them for the last
        if tag in ("equal", "replace"):
            for j in range(j1, j2):
                owner[j] = reference[min(i1 + (j - j1), i2 - 1)].utterance
    return Alignment(reference, hyp, mapping, insertions, owner)
