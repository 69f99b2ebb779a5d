"""Checkpoints of sec_bert-distributed as readers meet them: files they did not make. Loading one
never runs code from it, in either framework; checkpoints without optimizer state and with
`info` round-trip; the MXNet trainer state (Adam with a schedule) is admitted."""

import importlib
import os
import pickle

import pytest

from booktools.frameworks import FRAMEWORKS, LIBRARY_MODULES


def _library(framework):
    return importlib.import_module(f'd2l_extras.{LIBRARY_MODULES[framework]}')


class _RunsCommand:
    """A pickle payload that runs a shell command when it is unpickled."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _crafted(d2l, path, marker, where='outer'):
    """A checkpoint with a valid header whose payload would `touch marker` when unpickled."""
    payload = _RunsCommand(f'touch {marker}')
    state = {
        'params': b'',
        'trainer': pickle.dumps(payload),
        'step': 1,
        'vocab': ['<unk>'],
        'config': {},
        'info': {},
    }
    d2l._write_checkpoint_bytes(path, pickle.dumps(payload if where == 'outer' else state))


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_a_crafted_checkpoint_runs_no_code(framework, tmp_path):
    d2l = _library(framework)
    marker, path = tmp_path / 'ran', tmp_path / 'crafted.ckpt'
    _crafted(d2l, path, marker)
    for load in (d2l.load_checkpoint, d2l.load_pretrained_bert):
        with pytest.raises(ValueError, match='refused') as error:
            load(path)
        assert str(path) in str(error.value)
    assert not marker.exists(), 'loading the checkpoint ran the command in it'


def test_a_crafted_mxnet_trainer_state_runs_no_code(tmp_path):
    from d2l_extras import mxnet as d2l

    marker, path = tmp_path / 'ran', tmp_path / 'crafted.ckpt'
    _crafted(d2l, path, marker, where='trainer')
    with pytest.raises(ValueError, match=r'posix\.system|os\.system'):
        d2l.load_checkpoint(path)
    assert not marker.exists()


def _tiny(framework):
    d2l = _library(framework)
    vocab = d2l.Vocab(['a', 'b', 'c', 'a'])
    config = d2l.bert_config(num_hiddens=8, ffn_num_hiddens=16, num_heads=2, num_layers=1)
    if framework == 'mxnet':
        from mxnet import init

        net = d2l.BERTModel(len(vocab), **config)
        net.initialize(init.Xavier())
    else:
        net = d2l.BERTModel(len(vocab), **config)
    return d2l, net, vocab, config


def _one_step(framework, d2l, net, vocab, trainer):
    """One training step on a 2-pair batch, so the trainer has state to save."""
    tokens = [[1, 2, 3, 0], [2, 3, 1, 0]]
    args = [tokens, [[0, 0, 1, 0]] * 2, [3, 3], [[1], [2]], [[1.0], [1.0]], [[2], [3]], [0, 1]]
    if framework == 'mxnet':
        from mxnet import autograd, gluon, np

        batch = [[np.array(a)] for a in args]
        with autograd.record():
            _, _, ls = d2l._get_batch_loss_bert(net, gluon.loss.SoftmaxCELoss(), len(vocab), *batch)
        ls[0].backward()
        trainer.step(1)
    else:
        import torch

        batch = [torch.tensor(a) for a in args]
        loss = torch.nn.CrossEntropyLoss(reduction='none')
        trainer.zero_grad()
        d2l._get_batch_loss_bert(net, loss, len(vocab), *batch)[2].backward()
        trainer.step()


def _trainer(framework, net):
    if framework == 'mxnet':
        from mxnet import gluon, lr_scheduler

        schedule = lr_scheduler.PolyScheduler(max_update=10, base_lr=1e-3, warmup_steps=2)
        return gluon.Trainer(
            net.collect_params(), 'adam', {'learning_rate': 1e-3, 'lr_scheduler': schedule}
        )
    import torch

    return torch.optim.Adam(net.parameters(), lr=1e-3)


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_trainer_state_with_a_schedule_round_trips(framework, tmp_path):
    d2l, net, vocab, config = _tiny(framework)
    trainer = _trainer(framework, net)
    _one_step(framework, d2l, net, vocab, trainer)
    path = tmp_path / 'full.ckpt'
    d2l.save_checkpoint(path, net, trainer, 1, vocab, config, info={'note': 'x'})
    _, net2, _, _ = _tiny(framework)
    trainer2 = _trainer(framework, net2)
    _one_step(framework, d2l, net2, vocab, trainer2)  # makes the trainer's state
    state = d2l.load_checkpoint(path)
    assert d2l.restore_checkpoint(state, net2, trainer2) == 1
    assert state['info'] == {'note': 'x'}


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_a_checkpoint_without_optimizer_state_loads_but_cannot_resume(framework, tmp_path):
    d2l, net, vocab, config = _tiny(framework)
    path = tmp_path / 'weights.ckpt'
    info = {'command': 'python -m d2l_extras.pretrain', 'history': {'mlm_loss': [9.1, 8.7]}}
    d2l.save_checkpoint(path, net, None, 5, vocab, config, info=info)
    loaded, loaded_vocab = d2l.load_pretrained_bert(path)
    assert loaded_vocab.idx_to_token == vocab.idx_to_token
    state = d2l.load_checkpoint(path)
    assert state['info'] == info and state['step'] == 5
    assert d2l.checkpoint_parameters(path)  # the parameters are there
    _, net2, _, _ = _tiny(framework)
    with pytest.raises(ValueError, match='cannot resume'):
        d2l.restore_checkpoint(state, net2, _trainer(framework, net2))
