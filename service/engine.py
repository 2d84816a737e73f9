"""One loaded model's answering objects: the scorer, the cross-seller and the bundler, swapped as a whole."""

from __future__ import annotations

from dataclasses import dataclass

from service.bundling import Bundler
from service.config import Settings
from service.crosssell import CrossSeller
from service.loading import LoadedModel, LoadError
from service.scorer import Filters, Scorer

__all__ = ["Engine"]


@dataclass(frozen=True)
class Engine:
    """Everything that answers requests for one loaded model; swapped as a whole."""

    loaded: LoadedModel
    scorer: Scorer
    crosssell: CrossSeller
    bundler: Bundler

    @classmethod
    def build(cls, loaded: LoadedModel, settings: Settings, variant: str = "default") -> Engine:
        """Precompute the scoring objects of a loaded model and check that they answer."""
        scorer = Scorer(loaded, settings, variant)
        engine = cls(loaded, scorer, CrossSeller(scorer), Bundler(scorer, settings.min_margin))
        engine.smoke_test()
        return engine

    def smoke_test(self) -> None:
        """Recommend for a known user and cross-sell the most popular item; raise LoadError if not."""
        scorer = self.scorer
        try:
            if len(scorer.users):
                scorer.for_user(str(scorer.users.ids[0]), 5, Filters())
            top = str(scorer.catalog.ids[scorer.popular_order[0]])
            self.crosssell.suggest([(top, 1)], 5)
        except Exception as exc:
            raise LoadError(f"the model failed its smoke test: {type(exc).__name__}: {exc}") from exc

    @property
    def version(self) -> str:
        """Return the served model version."""
        return self.loaded.version
