"""replay_pack: a replayed call's tables in one int64 buffer (header of (offset, rows,
cols), then each table) and the views Python keeps using."""
import numpy as np

from tapegrad.replay_pack import Layout, packed


def _tables():
    rng = np.random.default_rng(7)
    return [rng.integers(-9, 9, 5), rng.standard_normal(3),
            rng.integers(0, 255, (2, 3)).astype(np.uint8), np.zeros((0, 5), np.int64),
            rng.integers(-9, 9, (4, 3)), rng.standard_normal(0)]


def test_views_hold_the_tables_and_live_in_the_buffer():
    arrays = _tables()
    layout, buf, views = packed(arrays)
    assert buf.dtype == np.int64
    for a, v in zip(arrays, views):
        assert v.dtype == a.dtype and v.shape == a.shape
        np.testing.assert_array_equal(v, a)
        assert v.size == 0 or np.shares_memory(v, buf)
    views[0][2] = 123                   # a write through a view reaches the buffer
    at = buf[0]
    assert buf[at + 2] == 123


def test_header_gives_offset_rows_and_cols_as_the_kernel_reads_them():
    arrays = _tables()
    layout, buf, views = packed(arrays)
    for k, a in enumerate(arrays):
        at, rows, cols = buf[3 * k:3 * k + 3]
        rows_expected, cols_expected = a.shape if a.ndim == 2 else (a.size, 1)
        assert (rows, cols) == (rows_expected, cols_expected)
        words = buf[at:at + (a.nbytes + 7) // 8]
        np.testing.assert_array_equal(words.view(a.dtype)[:a.size].reshape(a.shape), a)
    spans = sorted((buf[3 * k], (a.nbytes + 7) // 8) for k, a in enumerate(arrays))
    for (at, words), (nxt, _) in zip(spans, spans[1:]):
        assert at + words <= nxt          # tables do not overlap
    assert spans[0][0] >= 3 * len(arrays)  # nor the header


def test_a_new_buffer_of_a_layout_carries_its_header():
    arrays = _tables()
    layout = Layout([(a.dtype, a.shape) for a in arrays])
    buf = layout.new()
    np.testing.assert_array_equal(buf[:3 * len(arrays)], packed(arrays)[1][:3 * len(arrays)])
    assert np.all(layout.new(zero=True)[3 * len(arrays):] == 0)
    assert buf.size == layout.size
