"""How well human raters recognise CREMA-D's intended emotion from voice, face, or both.

CREMA-D's ``processedResults/summaryTable.csv`` (github.com/CheyneyComputerScience/CREMA-D) holds,
for each of the 7442 clips, the crowd's majority vote when rating the voice alone (``VoiceVote``),
the face alone (``FaceVote``) and the audio-visual clip (``MultiModalVote``), as emotion letters
A, D, F, H, N, S, with ties written ``"N:H"``. The intended emotion is the third part of the clip
name (``1001_DFA_ANG_XX`` -> ANG -> A). A clip counts as recognised when the majority vote is
exactly the intended emotion; a tie counts as not recognised, and the share of ties is reported.
"""

from __future__ import annotations

import csv
from pathlib import Path

EMOTION_LETTER = {"ANG": "A", "DIS": "D", "FEA": "F", "HAP": "H", "NEU": "N", "SAD": "S"}
VOTE_COLUMNS = {"voice": "VoiceVote", "face": "FaceVote", "audio_visual": "MultiModalVote"}


def rater_agreement(summary_table_csv: str | Path) -> dict:
    """``{"voice", "face", "audio_visual"}``: fraction of clips whose majority vote is the intended emotion.

    Also ``"clips"`` (how many were counted) and ``"ties"`` (per presentation, the fraction of clips
    whose vote is a tie between emotions).
    """
    path = Path(summary_table_csv)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; it is processedResults/summaryTable.csv of the CREMA-D "
                                "repository")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = [c for c in ["FileName", *VOTE_COLUMNS.values()] if rows and c not in rows[0]]
    if not rows or missing:
        raise ValueError(f"{path} lacks columns {missing or 'and rows'}; expected FileName, VoiceVote, FaceVote, "
                         "MultiModalVote")
    hits = dict.fromkeys(VOTE_COLUMNS, 0)
    ties = dict.fromkeys(VOTE_COLUMNS, 0)
    for row in rows:
        intended = EMOTION_LETTER[row["FileName"].split("_")[2]]
        for name, column in VOTE_COLUMNS.items():
            vote = row[column].strip()
            hits[name] += vote == intended
            ties[name] += ":" in vote
    n = len(rows)
    return {**{k: v / n for k, v in hits.items()}, "clips": n, "ties": {k: v / n for k, v in ties.items()}}
