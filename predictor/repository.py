"""The V2 model repository extension (load and unload by name), off unless the server is started
with --enable_repository: anyone who can send an inference request could otherwise unload the
model.

When on, a load never blocks the event loop (torch loads on a thread), keeps the server's
batching overrides (flags and environment), replaces a served model only once the new one is
ready and then drains the old one, and finds a model where KServe's storage initializer puts it:
the model version's files directly in the models directory (/mnt/models/config.yaml), or in a
folder named after the model. An unloaded model's requests already accepted are still answered;
readiness turns false at once (server.PredictorDataPlane).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Callable

from kserve.model_repository import ModelRepository
from kserve.protocol.model_repository_extension import ModelRepositoryExtension

from .config import CONFIG_FILE, ModelConfig, load_model_config
from .errors import RepositoryDisabled
from .model import TorchModel

log = logging.getLogger(__name__)
Configure = Callable[[ModelConfig], ModelConfig]


class RepositoryExtension(ModelRepositoryExtension):
    """KServe's REST and gRPC load/unload endpoints call this; it refuses unless enabled (403,
    PERMISSION_DENIED) before KServe would wrap the refusal into a ModelNotReady."""

    def __init__(self, model_registry: ModelRepository, enabled: bool):
        super().__init__(model_registry)
        self.enabled = enabled

    def _check(self) -> None:
        if not self.enabled:
            raise RepositoryDisabled("the model repository extension is off; start the predictor with --enable_repository to load and unload models")

    async def load(self, model_name: str) -> None:
        self._check()
        return await super().load(model_name)

    async def unload(self, model_name: str) -> None:
        self._check()
        return await super().unload(model_name)


class TorchModelRepository(ModelRepository):
    def __init__(self, models_dir: str = "/mnt/models", *, configure: Configure = lambda config: config):
        super().__init__(models_dir)
        self._configure = configure  # the server's overrides of each config.yaml
        self._dirs: dict[str, Path] = {}
        self._draining: set[asyncio.Task] = set()

    def update(self, model, name: str | None = None) -> None:
        super().update(model, name)
        if isinstance(model, TorchModel):
            self._dirs[name or model.name] = model.model_dir

    def model_dir(self, name: str) -> Path:
        """Where `name` loads from: where it was served from, else the models directory itself
        if its config.yaml names it (KServe's storage initializer layout), else <dir>/<name>."""
        if name in self._dirs:
            return self._dirs[name]
        root = Path(self.models_dir)
        if (root / CONFIG_FILE).is_file() and load_model_config(root).name == name:
            return root
        return root / name

    async def load(self, name: str) -> bool:
        model_dir = self.model_dir(name)
        model = TorchModel(model_dir, self._configure(load_model_config(model_dir)), name=name)
        await asyncio.to_thread(model.load)  # torch loading and warm-up take seconds: off the loop
        old = self.get_model(name)
        self.update(model, name)  # the new one serves from here on
        if isinstance(old, TorchModel) and old is not model:
            self._retire(old)
        return model.ready

    def unload(self, name: str) -> None:
        model = self.get_model(name)
        if model is None:
            raise KeyError(f"model with name {name} does not exist")
        del self.models[name]  # no new request reaches it; readiness turns false
        if isinstance(model, TorchModel):
            self._retire(model)
        else:
            model.stop()

    def _retire(self, model: TorchModel) -> None:
        """Answers what the model accepted, then stops it."""

        async def drain_then_stop() -> None:
            await model.drain()
            model.stop()
            log.info("model %s version %s drained and stopped", model.name, model.config.version)

        task = asyncio.get_running_loop().create_task(drain_then_stop())
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)
