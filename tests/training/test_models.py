"""The models: one interface, planted structure recovered, fold-in, save and load without pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from features.association import association_stats
from features.baskets import order_baskets
from features.dataset import Dataset
from features.synthetic import SyntheticStore
from training.models import MODEL_KINDS, ModelError, best_of, create_model, load_model, save_model, top_n
from training.models.cart import create_cart_model

FAST = {
    "als": {"factors": 16, "iterations": 8},
    "bpr": {"factors": 16, "iterations": 100, "learning_rate": 0.05},
    "lmf": {"factors": 16, "iterations": 10},
    "ease": {"regularization": 50.0},
}


def _fitted(kind: str, matrix: sp.csr_matrix):
    model = create_model(kind, **FAST.get(kind, {}))
    model.fit(matrix)
    return model


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_every_model_leaves_out_seen_items_and_round_trips_through_its_files(
    kind: str, dataset: Dataset, tmp_path: Path
) -> None:
    matrix = dataset.interactions.matrix
    model = _fitted(kind, matrix)
    users = np.arange(50)
    idx, scores = model.recommend(matrix[users], 10, user_idx=users)
    assert idx.shape == (50, 10)
    seen = matrix[users].toarray() > 0
    valid = np.isfinite(scores)
    assert not seen[np.arange(50)[:, None].repeat(10, 1)[valid], idx[valid]].any()
    assert (np.diff(scores, axis=1)[np.isfinite(np.diff(scores, axis=1))] <= 1e-6).all()
    save_model(model, tmp_path / kind)
    assert not any(p.suffix == ".pkl" for p in (tmp_path / kind).iterdir())
    again = load_model(tmp_path / kind)
    idx2, scores2 = again.recommend(matrix[users], 10, user_idx=users)
    np.testing.assert_array_equal(idx, idx2)
    np.testing.assert_allclose(scores, scores2, rtol=1e-5)


def _category_share(idx: np.ndarray, item_category: np.ndarray, favourite: np.ndarray) -> float:
    return float((item_category[idx] == favourite[:, None]).mean())


@pytest.mark.parametrize("kind", ["als", "ease", "cosine", "bm25", "bpr"])
def test_models_recover_planted_tastes_clearly_above_popularity(
    kind: str, dataset: Dataset, store: SyntheticStore
) -> None:
    inter = dataset.interactions
    truth = dict(zip(store.truth.user_ids, store.truth.user_category, strict=True))
    favourite = np.array([truth[u] for u in inter.users.ids])
    item_category = inter.item_meta["category"].to_numpy(dtype=str)
    users = np.arange(len(inter.users))
    shares = {}
    for name in (kind, "popular"):
        model = _fitted(name, inter.matrix)
        idx, _ = model.recommend(inter.matrix, 10, user_idx=users)
        shares[name] = _category_share(idx, item_category, favourite)
    assert shares[kind] > 1.5 * shares["popular"], shares
    assert shares[kind] > 0.4, shares


@pytest.mark.parametrize("kind", ["als", "cosine", "ease"])
def test_fold_in_of_a_known_history_agrees_with_the_known_user(kind: str, dataset: Dataset) -> None:
    matrix = dataset.interactions.matrix
    model = _fitted(kind, matrix)
    users = np.arange(40)
    known, _ = model.recommend(matrix[users], 10, user_idx=users)
    folded, _ = model.recommend(matrix[users], 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(known, folded, strict=True)])
    assert overlap >= (0.999 if kind != "als" else 0.7)


def test_fold_in_changes_results_with_the_history(dataset: Dataset) -> None:
    model = _fitted("als", dataset.interactions.matrix)
    n = dataset.interactions.matrix.shape[1]
    first = sp.csr_matrix(([10.0, 10.0], ([0, 0], [0, 1])), shape=(1, n))
    second = sp.csr_matrix(([10.0, 10.0], ([0, 0], [n - 2, n - 1])), shape=(1, n))
    a, _ = model.recommend(first, 10)
    b, _ = model.recommend(second, 10)
    assert set(a[0]) != set(b[0])


@pytest.mark.parametrize("kind", ["cosine", "ease"])
def test_cart_models_rank_the_planted_complement_first(
    dataset: Dataset, store: SyntheticStore, kind: str
) -> None:
    inter = dataset.interactions
    baskets = order_baskets(dataset.events, inter.users, inter.items)
    assoc = association_stats(baskets, min_count=3)
    anchors = inter.items.to_index(store.truth.complements[:, 0])
    partners = inter.items.to_index(store.truth.complements[:, 1])
    bought = assoc.item_counts[np.maximum(anchors, 0)] >= 20  # enough orders to tell it from chance
    keep = (anchors >= 0) & (partners >= 0) & bought
    assert keep.sum() >= 3
    model = create_cart_model(kind)
    model.fit(baskets.matrix, baskets.timestamp)
    for anchor, partner in zip(anchors[keep], partners[keep], strict=True):
        scores = model.score_dense(np.array([anchor]))
        scores[anchor] = -np.inf
        assert int(np.argmax(scores)) == partner


def test_top_n_orders_best_first_and_puts_excluded_items_last() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7]])
    idx, vals = top_n(scores, 3, np.array([[False, True, False, False]]))
    assert idx.tolist() == [[3, 2, 0]]
    assert vals[0].tolist() == pytest.approx([0.7, 0.5, 0.1])
    idx, vals = top_n(scores, 4, sp.csr_matrix(np.array([[1.0, 1.0, 0.0, 0.0]])))
    assert idx[0, :2].tolist() == [3, 2] and np.isneginf(vals[0, 2:]).all()


def test_dense_ease_refuses_a_catalog_above_its_item_limit() -> None:
    model = create_model("ease", max_items=10, variant="dense")
    with pytest.raises(ModelError, match="dense ease is cubic in items: 20 items exceed max_items=10"):
        model.fit(sp.random(30, 20, density=0.3, format="csr", random_state=0))
    with pytest.raises(ModelError, match="parameter variant must be one of auto, dense, sparse, got 'fast'"):
        create_model("ease", variant="fast")


def test_sparse_ease_equals_the_closed_form_when_every_item_is_a_neighbour() -> None:
    x = sp.random(200, 40, density=0.5, format="csr", random_state=1)  # every pair bought together
    dense, sparse = (
        create_model("ease", regularization=5.0),
        create_model("ease", regularization=5.0, max_items=10),
    )
    dense.fit(x)
    sparse.fit(x)
    assert (dense.params.variant, sparse.params.variant) == ("dense", "sparse")  # auto: by catalog size
    assert sp.issparse(sparse.weights) and sparse.weights.nnz == 40 * 39
    np.testing.assert_allclose(sparse.weights.toarray(), dense.weights, atol=1e-5)


def test_sparse_ease_keeps_each_items_neighbours_and_saves_and_loads_without_pickle(tmp_path: Path) -> None:
    x = sp.random(300, 60, density=0.05, format="csr", random_state=2)
    model = create_model("ease", max_items=20, neighbours=5)
    model.fit(x)
    assert np.diff(sp.csc_matrix(model.weights).indptr).max() <= 5  # at most 5 predictors per item
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.params.variant == "sparse" and sp.issparse(again.weights)  # type: ignore[attr-defined]
    history = x[:7]
    np.testing.assert_allclose(again.score(history), model.score(history))
    np.testing.assert_allclose(again.item_similarity(3), model.item_similarity(3))
    np.testing.assert_allclose(again.influence(3), np.asarray(model.weights[:, 3].toarray()).ravel())  # type: ignore[attr-defined]


def test_unknown_model_or_parameter_is_refused_naming_what_is_known() -> None:
    with pytest.raises(ModelError, match="unknown model 'svd'; choose one of als"):
        create_model("svd")
    with pytest.raises(ModelError, match="als has no parameter alhpa; known: alpha, factors"):
        create_model("als", alhpa=2.0)


def test_hyperparameters_are_typed_fields_and_a_value_of_the_wrong_type_is_named() -> None:
    model = create_model("als", factors=32.0, regularization=1, random_state=None)
    assert (model.params.factors, model.params.regularization, model.params.random_state) == (32, 1.0, None)
    assert isinstance(model.params.factors, int) and model.params.as_dict()["alpha"] == 1.0
    with pytest.raises(ModelError, match=r"als: parameter factors must be int, got 'many'"):
        create_model("als", factors="many")
    with pytest.raises(ModelError, match=r"als: parameter factors must be int, got 2.5"):
        create_model("als", factors=2.5)
    with pytest.raises(ModelError, match=r"ease: parameter binary must be bool, got 1"):
        create_model("ease", binary=1)
    with pytest.raises(ModelError, match=r"noisy_or: parameter half_life_days must be float or None"):
        create_cart_model("noisy_or", half_life_days="soon")


def test_a_corrupt_model_file_fails_with_a_clear_error(dataset: Dataset, tmp_path: Path) -> None:
    model = _fitted("cosine", dataset.interactions.matrix)
    save_model(model, tmp_path / "m")
    (tmp_path / "m" / "similarity.npz").write_bytes(b"not a matrix")
    with pytest.raises(ModelError, match="cannot load the model"):
        load_model(tmp_path / "m")


def test_explanations_add_up_to_the_item_based_score(dataset: Dataset) -> None:
    matrix = dataset.interactions.matrix
    for kind in ("cosine", "ease"):
        model = _fitted(kind, matrix)
        idx, scores = model.recommend(matrix[:1], 1, user_idx=np.array([0]))
        items, parts = model.contributions(matrix[0], int(idx[0, 0]))
        assert set(items) <= set(matrix[0].indices)
        assert parts.sum() == pytest.approx(scores[0, 0], rel=1e-4)


@pytest.mark.parametrize("size", [5, 900, 20_000, 50_000])
def test_best_of_ranks_exactly_like_a_full_sort(size: int) -> None:
    rng = np.random.default_rng(size)
    scores = rng.normal(size=size).astype(np.float32)
    scores[rng.choice(size, size // 5, replace=False)] = -np.inf
    scores[rng.choice(size, 3, replace=False)] = np.nan
    scores[:4] = scores[4]  # ties go to the lower index
    for n in (1, 10, 64, 100):
        ranked = np.where(np.isnan(scores), -np.inf, scores)
        expected = np.lexsort((np.arange(size), -ranked))[: min(n, size)]
        assert best_of(scores, n).tolist() == expected.tolist()


def test_best_of_falls_back_when_most_of_the_row_is_masked() -> None:
    scores = np.full(40_000, -np.inf, dtype=np.float32)
    scores[[7, 30_001]] = [2.0, 1.0]
    assert best_of(scores, 5).tolist()[:2] == [7, 30_001]


def test_best_of_breaks_ties_at_the_cut_by_the_lower_index_on_small_rows() -> None:
    scores = np.array([1.0, 3.0, 2.0, 2.0, 2.0, 2.0, 0.5], dtype=np.float32)
    assert best_of(scores, 3).tolist() == [1, 2, 3]


def test_model_kinds_differ_by_overriding_methods_never_by_checking_their_kind() -> None:
    from pathlib import Path

    import training.models as models

    for path in sorted(Path(models.__file__).parent.glob("*.py")):
        text = path.read_text()
        assert "self.kind ==" not in text and "self.kind !=" not in text and "[self.kind]" not in text, path


def test_als_without_a_training_loss_reports_epochs_with_no_metric() -> None:
    import scipy.sparse as sp

    from training.models import create_model

    matrix = sp.random(30, 20, density=0.2, format="csr", random_state=1, dtype=np.float32)
    seen: list[tuple[int, float | None]] = []
    create_model("als", factors=4, iterations=2, report_loss=False).fit(
        matrix, lambda e, v: seen.append((e, v))
    )
    assert [v for _, v in seen] == [None, None]


def test_a_gpu_fit_is_refused_naming_why_when_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import training.models.base as base

    monkeypatch.setattr(base, "gpu_available", lambda: False)
    with pytest.raises(
        ModelError, match=r"--device gpu: no CUDA GPU here \(implicit.gpu.HAS_CUDA is false\)"
    ):
        create_model("als").on_device("gpu")
    with pytest.raises(ModelError, match="--device gpu: ease trains on the CPU only; als, bpr run on a GPU"):
        create_model("ease").on_device("gpu")
    with pytest.raises(ModelError, match="--device 'tpu': choose cpu or gpu"):
        create_model("als").on_device("tpu")


def test_a_gpu_fit_writes_the_cpu_arrays_a_cpu_fit_would(monkeypatch: pytest.MonkeyPatch) -> None:
    import training.models.base as base
    from training.models.factors import ALSModel

    class CudaStandIn:
        """Implicit's CUDA model as far as fit sees it: fits, then hands back a CPU model."""

        def __init__(self, cpu: object) -> None:
            self.cpu, self.moved = cpu, False

        def fit(self, *args: object, **kwargs: object) -> None:
            self.cpu.fit(*args, **kwargs)  # type: ignore[attr-defined]

        def to_cpu(self) -> object:
            self.moved = True
            return self.cpu

    made: list[CudaStandIn] = []

    def cuda(model: ALSModel) -> CudaStandIn:
        made.append(CudaStandIn(model._implicit()))
        return made[-1]

    monkeypatch.setattr(base, "gpu_available", lambda: True)
    monkeypatch.setattr(ALSModel, "_implicit_gpu", cuda)
    x = sp.random(40, 30, density=0.2, format="csr", random_state=3, dtype=np.float32)
    on_cpu, on_gpu = create_model("als", factors=8), create_model("als", factors=8).on_device("gpu")
    on_cpu.fit(x)
    on_gpu.fit(x)
    assert made and made[0].moved
    np.testing.assert_allclose(on_gpu.arrays()["item_factors"], on_cpu.arrays()["item_factors"])
    assert isinstance(on_gpu.arrays()["item_factors"], np.ndarray)
