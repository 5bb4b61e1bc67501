"""Frame accounting of long diffusion-forcing videos."""
import itertools

import pytest

from skyreels_pack.sampling.df_plan import DFPlanError, plan_df_video


def official_lengths(num_frames, base, overlap):
    """The official pipeline's chunk latent lengths and output length (spec 4.5.4), simulated."""
    L = (num_frames - 1) // 4 + 1
    lb = (base - 1) // 4 + 1
    if overlap is None or num_frames <= base:
        return [L], 4 * L - 3
    lo = (overlap - 1) // 4 + 1
    n_iter = 1 + (L - lb - 1) // (lb - lo) + 1
    sizes, out = [lb], 4 * lb - 3
    for i in range(1, n_iter):
        finished = i * (lb - lo) + lo
        f = min(L - finished + lo, lb)
        sizes.append(f)
        out += 4 * f - 3 - overlap
    return sizes, out


@pytest.mark.parametrize("num_frames,expected", [(257, [25, 25, 25]), (737, [25] * 9), (377, [25, 25, 25, 25, 15])])
def test_official_examples(num_frames, expected):
    plan = plan_df_video(num_frames, 97, 17)
    assert [c.latent_frames for c in plan.chunks] == expected
    assert sum(c.new_pixel_frames for c in plan.chunks) == num_frames
    assert plan.chunks[0].new_pixel_frames == 97
    assert all(c.prefix_latents == 5 for c in plan.chunks[1:])


def test_many_combinations_match_the_official_accounting():
    checked = 0
    for base, overlap, c in itertools.product((57, 77, 97, 121), (17, 37, None), (1, 5)):
        for num_frames in range(5, 800, 4):
            try:
                plan = plan_df_video(num_frames, base, overlap, causal_block_size=c)
            except DFPlanError as e:
                msg = str(e)
                assert "causal_block_size" in msg or "overlap" in msg, msg
                continue
            sizes, out = official_lengths(num_frames, base, overlap)
            assert [ch.latent_frames for ch in plan.chunks] == sizes, (num_frames, base, overlap, c)
            assert out == num_frames == sum(ch.new_pixel_frames for ch in plan.chunks)
            assert all(ch.latent_frames % c == 0 for ch in plan.chunks)
            checked += 1
    assert checked > 1000


def test_extension_counts_new_frames():
    plan = plan_df_video(160, 97, 17, extension=True)
    assert [c.latent_frames for c in plan.chunks] == [25, 25]
    assert [c.new_pixel_frames for c in plan.chunks] == [80, 80]
    assert all(c.prefix_latents == 5 for c in plan.chunks)
    short = plan_df_video(20, 97, 17, extension=True)
    assert [c.latent_frames for c in short.chunks] == [10] and short.chunks[0].new_pixel_frames == 20


def test_async_needs_chunks_in_whole_blocks():
    plan = plan_df_video(237, 97, 17, causal_block_size=5)  # README example: last chunk 20 latents
    assert [c.latent_frames for c in plan.chunks] == [25, 25, 20]
    with pytest.raises(DFPlanError, match="Try num_frames"):
        plan_df_video(241, 97, 17, causal_block_size=5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_frames=96), "4k\\+1"),
    (dict(num_frames=97, base_num_frames=96), "base_num_frames must be 4k\\+1"),
    (dict(num_frames=257, overlap_history=16), "overlap_history must be 4k\\+1"),
    (dict(num_frames=257, overlap_history=97), "shorter than base"),
    (dict(num_frames=257, overlap_history=21, causal_block_size=5), "overlap_history 21"),
    (dict(num_frames=1, start_image=True), "nothing to generate"),
    (dict(num_frames=10, extension=True), "multiple of 4"),
    (dict(num_frames=97, causal_block_size=4), "multiple of causal_block_size"),
])
def test_impossible_requests_are_explained(kwargs, match):
    with pytest.raises(DFPlanError, match=match):
        plan_df_video(**kwargs)


def test_single_chunk_and_rows():
    plan = plan_df_video(97, 97, 17, start_image=True, end_image=True)
    assert len(plan.chunks) == 1 and plan.chunks[0].prefix_latents == 1 and plan.chunks[0].end_frame
    assert plan.total_rows(30, 0, 1) == 30
    plan = plan_df_video(257, 97, 17, causal_block_size=5)
    # async: chunk 0 has 5 blocks, later chunks 4 new blocks after a 1-block prefix
    assert plan.total_rows(30, 5, 5) == (30 + 4 * 5) + 2 * (30 + 3 * 5)
