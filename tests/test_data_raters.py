"""Human raters on CREMA-D (real summary table): audio-visual beats face, face beats voice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmlib.data.raters import rater_agreement

SHARED = Path(os.environ.get("MMLIB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
TABLE = SHARED / "cremad_meta" / "processedResults" / "summaryTable.csv"


@pytest.mark.skipif(not TABLE.is_file(), reason=f"CREMA-D summary table not found at {TABLE} (set MMLIB_SHARED_DATA)")
def test_raters_recognise_audio_visual_best_and_voice_worst():
    result = rater_agreement(TABLE)
    assert result["clips"] == 7442
    assert 0 < result["voice"] < result["face"] < result["audio_visual"] < 1
    assert (round(result["voice"], 3) == 0.416 and round(result["face"], 3) == 0.663
            and round(result["audio_visual"], 3) == 0.722)


def test_tie_is_not_a_match(tmp_path):
    table = tmp_path / "summaryTable.csv"
    table.write_text(
        '"","FileName","VoiceVote","VoiceLevel","FaceVote","FaceLevel","MultiModalVote","MultiModalLevel"\n'
        '"1","1001_IEO_NEU_XX","N:H","60","N","90","N","64"\n'
        '"2","1001_IEO_HAP_LO","N","71","H","57","H","57"\n'
    )
    result = rater_agreement(table)
    assert (result["voice"], result["face"], result["audio_visual"]) == (0.0, 1.0, 1.0)
    assert result["ties"]["voice"] == 0.5
