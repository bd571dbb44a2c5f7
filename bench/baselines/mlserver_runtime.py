"""MLServer, the other baseline: a custom runtime serving a TorchScript file, with MLServer's
adaptive batching (max_batch_size requests, max_batch_time seconds) and inference in the
server process (parallel_workers 0), so everything runs on the one server core.

bench/servers.py writes the settings beside a copy of this file and starts `mlserver start DIR`
from MLServer's own venv (its pins differ from KServe's; bench/setup_mlserver.sh).
"""
import numpy as np
import torch
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

torch.set_num_threads(1)


class TorchScriptRuntime(MLModel):
    async def load(self) -> bool:
        self.module = torch.jit.load(self.settings.parameters.uri).eval()
        self.output = self.settings.parameters.extra["output"]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        with torch.inference_mode():
            y = self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
        return InferenceResponse(model_name=self.name, id=payload.id,
                                 outputs=[NumpyCodec.encode_output(self.output, y)])

