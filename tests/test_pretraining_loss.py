"""The pretraining loss of sec_bert-pretraining (`_get_batch_loss_bert`) in both frameworks:
padded prediction positions (weight 0) must not change the masked-LM loss.

This is the bug of the original PyTorch code (d2l-en #2582): with reduction='mean' the weights
multiplied a scalar, so padded positions counted.
"""

import numpy
import pytest

VOCAB, BATCH, PREDS = 11, 4, 5


class FixedPredictions:
    """A stand-in network that returns given MLM and NSP scores."""

    def __init__(self, mlm_Y_hat, nsp_Y_hat):
        self.mlm_Y_hat, self.nsp_Y_hat = mlm_Y_hat, nsp_Y_hat

    def __call__(self, tokens, segments, valid_lens, pred_positions):
        return None, self.mlm_Y_hat, self.nsp_Y_hat


def _batch():
    rng = numpy.random.default_rng(0)
    weights = numpy.ones((BATCH, PREDS), dtype=numpy.float32)
    weights[:, 3:] = 0  # the last two prediction slots of every example are padding
    return {
        'mlm_Y_hat': rng.normal(size=(BATCH, PREDS, VOCAB)).astype(numpy.float32),
        'nsp_Y_hat': rng.normal(size=(BATCH, 2)).astype(numpy.float32),
        'mlm_weights': weights,
        'mlm_Y': rng.integers(0, VOCAB, size=(BATCH, PREDS)),
        'nsp_y': rng.integers(0, 2, size=BATCH),
    }


def _torch_losses(batch):
    import torch
    from torch import nn

    from d2l_extras import torch as d2l

    t = {k: torch.tensor(v) for k, v in batch.items()}
    net = FixedPredictions(t['mlm_Y_hat'], t['nsp_Y_hat'])
    dummy = torch.zeros((BATCH, 8), dtype=torch.long)
    mlm_l, nsp_l, total = d2l._get_batch_loss_bert(
        net,
        nn.CrossEntropyLoss(reduction='none'),
        VOCAB,
        dummy,
        dummy,
        torch.full((BATCH,), 8.0),
        torch.zeros((BATCH, PREDS), dtype=torch.long),
        t['mlm_weights'],
        t['mlm_Y'],
        t['nsp_y'],
    )
    return float(mlm_l), float(nsp_l), float(total)


def _mxnet_losses(batch):
    from mxnet import gluon, np

    from d2l_extras import mxnet as d2l

    m = {k: np.array(v, dtype=v.dtype) for k, v in batch.items()}
    net = FixedPredictions(m['mlm_Y_hat'], m['nsp_Y_hat'])
    dummy = np.zeros((BATCH, 8), dtype='int32')
    mlm_ls, nsp_ls, ls = d2l._get_batch_loss_bert(
        net,
        gluon.loss.SoftmaxCELoss(),
        VOCAB,
        [dummy],
        [dummy],
        [np.full((BATCH,), 8.0)],
        [np.zeros((BATCH, PREDS), dtype='int32')],
        [m['mlm_weights']],
        [m['mlm_Y']],
        [m['nsp_y']],
    )
    return float(mlm_ls[0]), float(nsp_ls[0]), float(ls[0])


def _reference_losses(batch):
    """The losses computed by hand with NumPy: a weighted mean over real positions."""

    def cross_entropy(scores, labels):
        scores = scores - scores.max(-1, keepdims=True)
        log_probs = scores - numpy.log(numpy.exp(scores).sum(-1, keepdims=True))
        return -numpy.take_along_axis(log_probs, labels[..., None], -1)[..., 0]

    weights = batch['mlm_weights']
    mlm = (cross_entropy(batch['mlm_Y_hat'], batch['mlm_Y']) * weights).sum() / weights.sum()
    nsp = cross_entropy(batch['nsp_Y_hat'], batch['nsp_y']).mean()
    return mlm, nsp


@pytest.mark.parametrize('losses', [_torch_losses, _mxnet_losses], ids=['pytorch', 'mxnet'])
def test_padded_prediction_positions_do_not_change_the_loss(losses):
    batch = _batch()
    before = losses(batch)
    changed = dict(batch, mlm_Y_hat=batch['mlm_Y_hat'].copy())
    changed['mlm_Y_hat'][:, 3:] = 50 * numpy.random.default_rng(1).normal(
        size=changed['mlm_Y_hat'][:, 3:].shape
    )
    after = losses(changed)
    assert after == pytest.approx(before, rel=1e-5)
    # ...while a change at a real position does change it, so the test can fail
    changed['mlm_Y_hat'][:, 0] += 5 * numpy.eye(VOCAB)[batch['mlm_Y'][:, 0]]
    assert losses(changed)[0] < before[0] - 0.1


@pytest.mark.parametrize('losses', [_torch_losses, _mxnet_losses], ids=['pytorch', 'mxnet'])
def test_losses_match_a_hand_computed_weighted_mean(losses):
    batch = _batch()
    mlm, nsp, total = losses(batch)
    expected_mlm, expected_nsp = _reference_losses(batch)
    assert mlm == pytest.approx(expected_mlm, rel=1e-5)
    assert nsp == pytest.approx(expected_nsp, rel=1e-5)
    assert total == pytest.approx(expected_mlm + expected_nsp, rel=1e-5)
