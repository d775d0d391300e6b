"""A deliberately plain, loop-based transcription of OSCAR spec 3 (mNoCoAP), used only by the
tests as an independent check of the vectorised implementation. Dense maps, one detection at a
time, one threshold at a time. ``kind``: NumPy's sort kind for both score sorts (None: NumPy's
default, as the original protocol; "stable": ties in the given order)."""
import numpy as np


def tpfp_one_image(cents, noco, gts, thr, kind=None):
    m = cents.shape[0]
    tp = np.zeros(m, dtype=np.float32)
    fp = np.zeros(m, dtype=np.float32)
    if gts.shape[0] == 0:
        fp[:] = 1
        return tp, fp
    h, w = noco.shape
    covered = [False] * gts.shape[0]
    for i in np.argsort(-cents[:, 2], kind=kind):
        cx, cy = cents[i, 0], cents[i, 1]
        row, col = int(np.round(cy)), int(np.round(cx))
        if row == h:
            row = h - 1
        if col == w:
            col = w - 1
        if noco[row, col] > thr:
            hit = -1
            for g in range(gts.shape[0]):
                if gts[g, 0] <= cx <= gts[g, 2] and gts[g, 1] <= cy <= gts[g, 3]:
                    hit = g
                    break
            if hit >= 0 and not covered[hit]:
                tp[i] = 1
                covered[hit] = True
            else:
                fp[i] = 1
        else:
            fp[i] = 1
    return tp, fp


def ap_one_threshold(cents_list, maps, gts_list, thr, kind=None):
    tps, fps = [], []
    for c, mp, g in zip(cents_list, maps, gts_list):
        tp, fp = tpfp_one_image(c, mp, g, thr, kind)
        tps.append(tp)
        fps.append(fp)
    num_gts = sum(g.shape[0] for g in gts_list)
    allc = np.vstack([c.reshape(-1, 3) for c in cents_list])
    order = np.argsort(-allc[:, -1], kind=kind)
    tp = np.cumsum(np.hstack(tps)[order])
    fp = np.cumsum(np.hstack(fps)[order])
    eps = np.finfo(np.float32).eps
    rec = tp / np.maximum(num_gts, eps)
    prec = tp / np.maximum(tp + fp, eps)
    mrec = np.hstack(([0], rec, [1])).astype(rec.dtype)
    mpre = np.hstack(([0], prec, [0])).astype(prec.dtype)
    for i in range(len(mpre) - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    ap = np.float32(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))
    return float(ap) if num_gts > 0 else 0.0


def mnocoap(cents_list, maps, gts_list, kind=None):
    thrs = np.linspace(0.1, 0.9, 9)
    aps = [ap_one_threshold(cents_list, maps, gts_list, t, kind) for t in thrs]
    return aps, sum(aps) / len(aps)
